//! OTLP/gRPC: the three export services on one tonic server.

use super::{GrpcConfig, Sink, Transport};
use crate::component::ConsumeError;
use crate::extensions::bearertokenauth::BearerToken;
use crate::pdata::Batch;
use anyhow::Context;
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
    logs_service_server::{LogsService, LogsServiceServer},
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
    metrics_service_server::{MetricsService, MetricsServiceServer},
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
    trace_service_server::{TraceService, TraceServiceServer},
};
use std::sync::Arc;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tonic::codec::CompressionEncoding;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Identity, ServerTlsConfig};
use tonic::{Request, Response, Status};

#[derive(Clone)]
struct Otlp(Sink);

fn status(e: ConsumeError) -> Status {
    use tonic_types::{ErrorDetails, StatusExt};
    match (e.retryable, e.retry_after) {
        // UNAVAILABLE is what OTLP clients retry on; RetryInfo says when.
        (true, Some(delay)) => Status::with_error_details(
            tonic::Code::Unavailable,
            e.message,
            ErrorDetails::with_retry_info(Some(delay)),
        ),
        (true, None) => Status::unavailable(e.message),
        (false, _) => Status::invalid_argument(e.message),
    }
}

#[tonic::async_trait]
impl TraceService for Otlp {
    async fn export(
        &self,
        req: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let batch = Batch::Traces(req.into_inner().resource_spans);
        self.0.push(Transport::Grpc, batch).await.map_err(status)?;
        Ok(Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

#[tonic::async_trait]
impl MetricsService for Otlp {
    async fn export(
        &self,
        req: Request<ExportMetricsServiceRequest>,
    ) -> Result<Response<ExportMetricsServiceResponse>, Status> {
        let batch = Batch::Metrics(req.into_inner().resource_metrics);
        self.0.push(Transport::Grpc, batch).await.map_err(status)?;
        Ok(Response::new(ExportMetricsServiceResponse {
            partial_success: None,
        }))
    }
}

#[tonic::async_trait]
impl LogsService for Otlp {
    async fn export(
        &self,
        req: Request<ExportLogsServiceRequest>,
    ) -> Result<Response<ExportLogsServiceResponse>, Status> {
        let batch = Batch::Logs(req.into_inner().resource_logs);
        self.0.push(Transport::Grpc, batch).await.map_err(status)?;
        Ok(Response::new(ExportLogsServiceResponse {
            partial_success: None,
        }))
    }
}

pub(super) async fn serve(
    host: &crate::component::Host,
    id: &str,
    cfg: &GrpcConfig,
    token: Option<Arc<BearerToken>>,
    sink: Sink,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<JoinHandle<()>> {
    let listener = host.listeners.bind_tokio(&cfg.endpoint).with_context(|| {
        format!(
            "receivers::{id}::protocols::grpc: cannot listen on {}",
            cfg.endpoint
        )
    })?;
    let addr = listener.local_addr()?;
    let limit = (cfg.max_recv_msg_size_mib * 1024 * 1024) as usize;
    let svc = Otlp(sink.clone());
    // Every call passes this check; without `auth` it lets everything through.
    let check = move |req: tonic::Request<()>| -> Result<tonic::Request<()>, Status> {
        match &token {
            Some(t) if !t.accepts(req.metadata().get("authorization").map(|v| v.as_bytes())) => {
                Err(Status::unauthenticated("missing or wrong bearer token"))
            }
            _ => Ok(req),
        }
    };
    let mut routes = tonic::service::Routes::default();
    macro_rules! add {
        ($server:ident, $signal:expr) => {
            if sink.accepts($signal) {
                routes = routes.add_service(InterceptedService::new(
                    $server::new(svc.clone())
                        .max_decoding_message_size(limit)
                        .accept_compressed(CompressionEncoding::Gzip)
                        .accept_compressed(CompressionEncoding::Zstd)
                        .send_compressed(CompressionEncoding::Gzip),
                    check.clone(),
                ));
            }
        };
    }
    add!(TraceServiceServer, crate::pdata::Signal::Traces);
    add!(MetricsServiceServer, crate::pdata::Signal::Metrics);
    add!(LogsServiceServer, crate::pdata::Signal::Logs);
    let mut builder = tonic::transport::Server::builder();
    if let Some(tls) = &cfg.tls {
        let mut t = ServerTlsConfig::new().identity(Identity::from_pem(
            read(&tls.cert_file)?,
            read(&tls.key_file)?,
        ));
        if let Some(ca) = &tls.client_ca_file {
            t = t.client_ca_root(Certificate::from_pem(read(ca)?));
        }
        builder = builder
            .tls_config(t)
            .with_context(|| format!("receivers::{id}::protocols::grpc::tls"))?;
    }
    let router = builder.add_routes(routes);
    tracing::info!(receiver = %id, address = %addr, tls = cfg.tls.is_some(), auth = cfg.auth.is_some(), "OTLP/gRPC receiver listening");
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
    let id = id.to_string();
    Ok(tokio::spawn(async move {
        let shutdown = async move {
            let _ = stop.wait_for(|s| *s).await;
        };
        if let Err(e) = router
            .serve_with_incoming_shutdown(incoming, shutdown)
            .await
        {
            tracing::error!(receiver = %id, error = %e, "OTLP/gRPC server failed");
        }
    }))
}

fn read(path: &str) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {path}"))
}
