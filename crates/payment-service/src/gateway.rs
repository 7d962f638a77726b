//! The simulated card gateway: the external call whose latency and failures a learner
//! sees inside `payment.authorize` as the `payment.gateway_call` span.

use std::time::Duration;

use rand::Rng as _;
use tracing::Instrument as _;
use tracing::field::Empty;

use crate::domain::{CardBehaviour, Payment};

/// What the gateway answered in time.
#[derive(Debug, Clone, PartialEq)]
pub enum GatewayDecision {
    Approved { authorization_code: String },
    Declined { reason: String },
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum GatewayError {
    #[error("card gateway did not answer within {} ms", .0.as_millis())]
    Timeout(Duration),
}

/// Forces an outcome for every call, from the fault scenarios.
#[derive(Debug, Clone, Copy, Default)]
pub struct GatewayOverrides {
    pub timeout_all: bool,
    pub decline_all: bool,
}

/// The card gateway's name on the `payment.gateway_call` span.
pub const GATEWAY_NAME: &str = "card-gateway";

/// The simulated gateway with its answer deadline.
#[derive(Debug, Clone)]
pub struct CardGateway {
    deadline: Duration,
}

/// Gateway latency: log-normal (median about 60 ms, a long right tail) clamped to
/// 20..=300 ms, the skewed shape real payment APIs show on a latency histogram.
pub fn sample_latency() -> Duration {
    let mut rng = rand::rng();
    // Box-Muller: one standard normal sample from two uniforms.
    let u1: f64 = rng.random_range(f64::EPSILON..1.0);
    let u2: f64 = rng.random();
    let normal = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
    let millis = (60f64.ln() + 0.6 * normal).exp().clamp(20.0, 300.0);
    Duration::from_micros((millis * 1000.0) as u64)
}

impl CardGateway {
    pub fn new(deadline: Duration) -> Self {
        Self { deadline }
    }

    /// Calls the gateway for `payment` within the deadline.
    pub async fn authorize(
        &self,
        payment: &Payment,
        overrides: GatewayOverrides,
    ) -> Result<GatewayDecision, GatewayError> {
        let behaviour = if overrides.timeout_all {
            CardBehaviour::Timeout
        } else if overrides.decline_all {
            CardBehaviour::Decline
        } else {
            payment.card
        };
        // Who is called, in the current conventions: `peer.service` is deprecated (renamed
        // `service.peer.name`, the logical name of the remote service), and `server.address`
        // is the host a real call connects to, as the HTTP client spans carry it. The
        // simulated gateway has no host of its own: its name stands in, the way a
        // Kubernetes Service name does for the lab's own services.
        let span = tracing::info_span!(
            "payment.gateway_call",
            otel.kind = "client",
            service.peer.name = GATEWAY_NAME,
            server.address = GATEWAY_NAME,
            payment.gateway.deadline_ms = self.deadline.as_millis() as u64,
            payment.gateway.decision = Empty,
            error.type = Empty,
        );
        let deadline = self.deadline;
        async move {
            let latency = match behaviour {
                // A gateway that hangs: answers well after anyone still waits.
                CardBehaviour::Timeout => deadline + Duration::from_secs(5),
                _ => sample_latency(),
            };
            let answer = async {
                tokio::time::sleep(latency).await;
                match behaviour {
                    CardBehaviour::Decline => GatewayDecision::Declined {
                        reason: "card_declined".to_owned(),
                    },
                    _ => GatewayDecision::Approved {
                        authorization_code: format!(
                            "AUTH{:06}",
                            rand::rng().random_range(0..1_000_000)
                        ),
                    },
                }
            };
            match tokio::time::timeout(deadline, answer).await {
                Ok(decision) => {
                    let label = match &decision {
                        GatewayDecision::Approved { .. } => "approved",
                        GatewayDecision::Declined { .. } => "declined",
                    };
                    tracing::Span::current().record("payment.gateway.decision", label);
                    Ok(decision)
                }
                Err(_) => {
                    let err = GatewayError::Timeout(deadline);
                    let span = tracing::Span::current();
                    span.record("payment.gateway.decision", "timeout");
                    // The conventions' value for a call that ran out of time.
                    span.record("error.type", "timeout");
                    telemetry::record_error(&err);
                    tracing::error!(error = %err, "card gateway timed out");
                    Err(err)
                }
            }
        }
        .instrument(span)
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_stays_within_the_documented_range() {
        for _ in 0..1000 {
            let latency = sample_latency();
            assert!(latency >= Duration::from_millis(20));
            assert!(latency <= Duration::from_millis(300));
        }
    }
}
