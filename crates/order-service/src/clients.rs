//! The calls order-service makes: inventory (reserve, release), the fraud-check Lambda
//! and payment (authorise, void), each through the traced client so the trace and the `customer.tier`
//! baggage travel with them.

use serde::Deserialize;
use serde_json::json;
use telemetry::http_client::TracedClient;

use crate::config::Config;
use crate::domain::OrderLine;

#[derive(Debug, thiserror::Error)]
pub enum DownstreamError {
    #[error("{service} is unreachable: {source}")]
    Unreachable {
        service: &'static str,
        source: reqwest::Error,
    },
    #[error("{service} answered {status}: {body}")]
    Status {
        service: &'static str,
        status: u16,
        body: String,
    },
    #[error("{service} sent an answer that cannot be read: {reason}")]
    Body {
        service: &'static str,
        reason: String,
    },
}

impl DownstreamError {
    /// Whether trying again may succeed: the service was unreachable or failed (5xx).
    pub fn may_pass(&self) -> bool {
        match self {
            DownstreamError::Unreachable { .. } => true,
            DownstreamError::Status { status, .. } => *status >= 500,
            DownstreamError::Body { .. } => false,
        }
    }
}

/// A priced reservation from inventory-service.
#[derive(Debug, Deserialize)]
pub struct Reservation {
    pub total_cents: i64,
}

#[derive(Debug)]
pub enum ReserveOutcome {
    Reserved(Reservation),
    /// 409: not enough stock of `sku`.
    OutOfStock {
        sku: String,
        message: String,
    },
    /// 404 (unknown sku) or 400 (invalid lines): the customer's mistake.
    Refused {
        sku: Option<String>,
        message: String,
    },
}

/// The fraud-check function's verdict.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct FraudVerdict {
    pub decision: String,
    pub score: f64,
}

impl FraudVerdict {
    pub fn rejects(&self) -> bool {
        self.decision == "reject"
    }
}

#[derive(Debug)]
pub enum PaymentOutcome {
    Authorized {
        payment_id: String,
    },
    /// 402: the card was declined.
    Declined {
        payment_id: Option<String>,
        reason: String,
    },
}

#[derive(Debug, Deserialize)]
struct PaymentAnswer {
    payment_id: Option<String>,
    reason: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ErrorAnswer {
    error: Option<String>,
    sku: Option<String>,
}

/// Clients for the three downstream services.
#[derive(Clone)]
pub struct Downstream {
    http: TracedClient,
    inventory_url: String,
    payment_url: String,
    fraud_check_url: String,
}

async fn read_json<T: serde::de::DeserializeOwned>(
    service: &'static str,
    response: reqwest::Response,
) -> Result<T, DownstreamError> {
    response.json().await.map_err(|e| DownstreamError::Body {
        service,
        reason: e.to_string(),
    })
}

/// The error for a request to `service` that got no answer.
fn unreachable(service: &'static str) -> impl FnOnce(reqwest::Error) -> DownstreamError {
    move |source| DownstreamError::Unreachable { service, source }
}

async fn unexpected(service: &'static str, response: reqwest::Response) -> DownstreamError {
    let status = response.status().as_u16();
    let body = response.text().await.unwrap_or_default();
    DownstreamError::Status {
        service,
        status,
        body: body.chars().take(300).collect(),
    }
}

impl Downstream {
    pub fn new(config: &Config) -> Self {
        Self {
            http: TracedClient::new(config.downstream_timeout),
            inventory_url: config.inventory_url.clone(),
            payment_url: config.payment_url.clone(),
            fraud_check_url: config.fraud_check_url.clone(),
        }
    }

    pub async fn reserve(
        &self,
        order_id: &str,
        items: &[OrderLine],
    ) -> Result<ReserveOutcome, DownstreamError> {
        const SERVICE: &str = "inventory-service";
        let request = self
            .http
            .post(format!("{}/inventory/reserve", self.inventory_url))
            .json(&json!({ "order_id": order_id, "items": items }));
        let response = self
            .http
            .send(request)
            .await
            .map_err(unreachable(SERVICE))?;
        match response.status().as_u16() {
            200 | 201 => Ok(ReserveOutcome::Reserved(
                read_json(SERVICE, response).await?,
            )),
            409 => {
                let answer: ErrorAnswer = read_json(SERVICE, response).await?;
                Ok(ReserveOutcome::OutOfStock {
                    sku: answer.sku.unwrap_or_default(),
                    message: answer.error.unwrap_or_else(|| "insufficient stock".into()),
                })
            }
            400 | 404 => {
                let answer: ErrorAnswer = read_json(SERVICE, response).await?;
                Ok(ReserveOutcome::Refused {
                    sku: answer.sku,
                    message: answer.error.unwrap_or_else(|| "items refused".into()),
                })
            }
            _ => Err(unexpected(SERVICE, response).await),
        }
    }

    /// Releases what `order_id` holds; `resend_count` says which retry this is (0: the first
    /// try), so each try's span says so.
    pub async fn release(&self, order_id: &str, resend_count: u32) -> Result<(), DownstreamError> {
        const SERVICE: &str = "inventory-service";
        let request = self
            .http
            .post(format!("{}/inventory/release", self.inventory_url))
            .json(&json!({ "order_id": order_id }));
        let response = self
            .http
            .resend(request, resend_count)
            .await
            .map_err(unreachable(SERVICE))?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(unexpected(SERVICE, response).await)
        }
    }

    pub async fn fraud_check(
        &self,
        order_id: &str,
        customer_id: &str,
        amount_cents: i64,
        item_count: i64,
    ) -> Result<FraudVerdict, DownstreamError> {
        const SERVICE: &str = "fraud-check";
        let request = self.http.post(&self.fraud_check_url).json(&json!({
            "order_id": order_id,
            "customer_id": customer_id,
            "amount_cents": amount_cents,
            "item_count": item_count,
        }));
        let response = self
            .http
            .send(request)
            .await
            .map_err(unreachable(SERVICE))?;
        if !response.status().is_success() {
            return Err(unexpected(SERVICE, response).await);
        }
        let verdict: FraudVerdict = read_json(SERVICE, response).await?;
        if verdict.decision != "approve" && verdict.decision != "reject" {
            return Err(DownstreamError::Body {
                service: SERVICE,
                reason: format!("unknown decision {:?}", verdict.decision),
            });
        }
        Ok(verdict)
    }

    pub async fn pay(
        &self,
        order_id: &str,
        amount_cents: i64,
        currency: &str,
        card_token: &str,
        drop_trace_context: bool,
    ) -> Result<PaymentOutcome, DownstreamError> {
        const SERVICE: &str = "payment-service";
        let body = json!({
            "order_id": order_id,
            "amount_cents": amount_cents,
            "currency": currency,
            "card_token": card_token,
        });
        let sent = if drop_trace_context {
            // The planted `drop_trace_context` problem: the request is built and sent on the
            // traced client's inner reqwest client (say, to give payments a timeout of their
            // own), which bypasses `TracedClient::send`: no client span and no `traceparent`
            // header, so payment-service starts a trace of its own.
            self.http
                .inner()
                .post(format!("{}/payments", self.payment_url))
                .json(&body)
                .send()
                .await
        } else {
            let request = self
                .http
                .post(format!("{}/payments", self.payment_url))
                .json(&body);
            self.http.send(request).await
        };
        let response = sent.map_err(unreachable(SERVICE))?;
        match response.status().as_u16() {
            200 | 201 => {
                let answer: PaymentAnswer = read_json(SERVICE, response).await?;
                Ok(PaymentOutcome::Authorized {
                    payment_id: answer.payment_id.unwrap_or_default(),
                })
            }
            402 => {
                let answer: PaymentAnswer = read_json(SERVICE, response).await?;
                Ok(PaymentOutcome::Declined {
                    payment_id: answer.payment_id,
                    reason: answer.reason.unwrap_or_else(|| "card_declined".into()),
                })
            }
            _ => Err(unexpected(SERVICE, response).await),
        }
    }

    /// Voids the authorisation `payment_id`, lifting the hold it put on the card.
    pub async fn void(&self, payment_id: &str) -> Result<(), DownstreamError> {
        const SERVICE: &str = "payment-service";
        let request = self
            .http
            .post(format!("{}/payments/{payment_id}/void", self.payment_url));
        let response = self
            .http
            .send(request)
            .await
            .map_err(unreachable(SERVICE))?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(unexpected(SERVICE, response).await)
        }
    }
}
