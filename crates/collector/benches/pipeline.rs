//! decode → batch → encode, the path every span takes through a forwarding collector, and
//! the fan-out of a batch to several exporters.

use collector::component::{BuildContext, ConsumeError, Consumer, Host, SharedConsumer, fanout};
use collector::config::{ComponentId, GoDuration};
use collector::otlp_codec::{self, Encoding};
use collector::pdata::{Batch, Signal};
use collector::processors::batch;
use collector::telemetry::SelfTelemetry;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use std::hint::black_box;
use std::sync::Arc;

fn kv(k: &str, v: &str) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(v.into())),
        }),
        ..Default::default()
    }
}

/// A request shaped like the lab's: one service, 512 spans with a handful of attributes.
fn request(spans: usize) -> Batch {
    let spans = (0..spans)
        .map(|i| Span {
            trace_id: (i as u128 / 8).to_be_bytes().to_vec(),
            span_id: (i as u64 + 1).to_be_bytes().to_vec(),
            name: "POST /orders".into(),
            kind: 2,
            start_time_unix_nano: 1_700_000_000_000_000_000 + i as u64,
            end_time_unix_nano: 1_700_000_000_050_000_000 + i as u64,
            attributes: vec![
                kv("http.request.method", "POST"),
                kv("http.route", "/orders"),
                kv("url.path", "/orders"),
                kv("order.id", &format!("ord-{i}")),
            ],
            ..Default::default()
        })
        .collect();
    Batch::Traces(vec![ResourceSpans {
        resource: Some(Resource {
            attributes: vec![
                kv("service.name", "order-service"),
                kv("k8s.pod.name", "order-service-7d9f"),
            ],
            ..Default::default()
        }),
        scope_spans: vec![ScopeSpans {
            spans,
            ..Default::default()
        }],
        ..Default::default()
    }])
}

/// An exporter that only reads what it is given (as the trace store, span metrics and the
/// file exporter do): it counts the spans.
struct CountSpans(std::sync::atomic::AtomicUsize);

#[async_trait::async_trait]
impl Consumer for CountSpans {
    async fn consume(&self, batch: Batch) -> Result<(), ConsumeError> {
        self.consume_shared(&batch).await
    }
    fn mutates_data(&self) -> bool {
        false
    }
    async fn consume_shared(&self, batch: &Batch) -> Result<(), ConsumeError> {
        self.0
            .fetch_add(batch.item_count(), std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }
}

fn bench(c: &mut Criterion) {
    let batch = request(512);
    let proto = otlp_codec::encode(&batch, Encoding::Protobuf);
    let json = otlp_codec::encode(&batch, Encoding::Json);
    let gz = otlp_codec::gzip(&proto);
    let mut g = c.benchmark_group("traces_512_spans");
    g.throughput(Throughput::Elements(512));
    g.bench_function("decode_protobuf", |b| {
        b.iter(|| {
            otlp_codec::decode(Signal::Traces, Encoding::Protobuf, black_box(&proto)).unwrap()
        })
    });
    g.bench_function("decode_gzip_protobuf", |b| {
        b.iter(|| {
            let raw = otlp_codec::decompress(black_box(&gz), Some("gzip"), 20 << 20).unwrap();
            otlp_codec::decode(Signal::Traces, Encoding::Protobuf, &raw).unwrap()
        })
    });
    g.bench_function("decode_json", |b| {
        b.iter(|| otlp_codec::decode(Signal::Traces, Encoding::Json, black_box(&json)).unwrap())
    });
    g.bench_function("batch_8_requests_and_split_1024", |b| {
        b.iter_batched(
            || vec![batch.clone(); 8],
            |requests| {
                let mut acc = Batch::empty(Signal::Traces);
                for request in requests {
                    acc.append(request);
                }
                acc.split_into(1024)
            },
            BatchSize::SmallInput,
        )
    });
    g.bench_function("encode_protobuf", |b| {
        b.iter(|| otlp_codec::encode(black_box(&batch), Encoding::Protobuf))
    });
    g.bench_function("decode_batch_encode_gzip", |b| {
        b.iter(|| {
            let raw = otlp_codec::decompress(black_box(&gz), Some("gzip"), 20 << 20).unwrap();
            let mut acc = Batch::empty(Signal::Traces);
            acc.append(otlp_codec::decode(Signal::Traces, Encoding::Protobuf, &raw).unwrap());
            otlp_codec::gzip(&otlp_codec::encode(&acc, Encoding::Protobuf))
        })
    });
    // The lab gateway's traces pipeline ends in three read-only consumers (trace store, file,
    // span metrics).
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let out = fanout(
        (0..3)
            .map(|_| Arc::new(CountSpans(Default::default())) as SharedConsumer)
            .collect(),
    );
    g.bench_function("fanout_to_3_read_only_exporters", |b| {
        b.iter_batched(
            || batch.clone(),
            |batch| runtime.block_on(out.consume(batch)).unwrap(),
            BatchSize::LargeInput,
        )
    });
    g.finish();

    // An agent's traces pipeline: many small requests (a service's batches of 16 spans)
    // gathered to send_batch_size 8192 and sent on in pieces of at most 1000.
    let mut g = c.benchmark_group("batch_processor");
    g.throughput(Throughput::Elements(8192));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    // Keeps what it is sent, so that dropping the spans (an exporter's business) is done
    // outside the measurement, in the next iteration's setup.
    #[derive(Default)]
    struct Keep(std::sync::Mutex<Vec<Batch>>);
    #[async_trait::async_trait]
    impl Consumer for Keep {
        async fn consume(&self, batch: Batch) -> Result<(), ConsumeError> {
            self.0.lock().unwrap().push(batch);
            Ok(())
        }
    }
    let sink = Arc::new(Keep::default());
    let processor = runtime.block_on(async {
        batch::start(
            batch::BatchConfig {
                send_batch_size: 8192,
                send_batch_max_size: 1000,
                timeout: GoDuration::millis(60_000),
                wait_for_result: false,
            },
            &BuildContext {
                id: ComponentId::parse("batch").unwrap(),
                telemetry: Arc::new(SelfTelemetry::default()),
                host: Arc::new(Host::default()),
            },
            Signal::Traces,
            sink.clone(),
        )
    });
    let small = request(16);
    g.bench_function("512_requests_of_16_spans_split_1000", |b| {
        b.iter_batched(
            || {
                sink.0.lock().unwrap().clear();
                vec![small.clone(); 512]
            },
            |requests| {
                runtime.block_on(async {
                    for request in requests {
                        processor.consume(request).await.unwrap();
                    }
                })
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
    assert!(!sink.0.lock().unwrap().is_empty());
}

criterion_group!(benches, bench);
criterion_main!(benches);
