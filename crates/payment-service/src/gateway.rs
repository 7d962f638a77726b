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
    telemetry::faults::skewed_latency(60.0, 0.6, 20.0, 300.0)
}

/// Void latency: a void only lifts a hold the gateway already granted, so it answers in
/// about half an authorisation's time (10..=150 ms, the same skewed shape).
pub fn sample_void_latency() -> Duration {
    sample_latency() / 2
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
        async move {
            let latency = match behaviour {
                CardBehaviour::Timeout => self.hang(),
                _ => sample_latency(),
            };
            self.answer_within_deadline(latency).await?;
            let decision = match behaviour {
                CardBehaviour::Decline => GatewayDecision::Declined {
                    reason: "card_declined".to_owned(),
                },
                // A hanging gateway never answers within the deadline: only approvals are left.
                _ => GatewayDecision::Approved {
                    authorization_code: format!(
                        "AUTH{:06}",
                        rand::rng().random_range(0..1_000_000)
                    ),
                },
            };
            let label = match &decision {
                GatewayDecision::Approved { .. } => "approved",
                GatewayDecision::Declined { .. } => "declined",
            };
            tracing::Span::current().record("payment.gateway.decision", label);
            Ok(decision)
        }
        .instrument(self.call_span("authorize"))
        .await
    }

    /// Asks the gateway to lift the hold of an authorisation, within the deadline.
    /// `decline_all` does not apply: declining is about a card, and a void only gives back
    /// what was already granted.
    pub async fn void(&self, overrides: GatewayOverrides) -> Result<(), GatewayError> {
        self.follow_up("void", "voided", overrides).await
    }

    /// Captures an authorised payment (takes the money the authorisation held): about a
    /// void's time.
    pub async fn capture(&self, overrides: GatewayOverrides) -> Result<(), GatewayError> {
        self.follow_up("capture", "captured", overrides).await
    }

    /// A call on an authorisation the gateway granted (void, capture): about half an
    /// authorisation's time, recorded as `decision` when it answers in time.
    async fn follow_up(
        &self,
        operation: &'static str,
        decision: &'static str,
        overrides: GatewayOverrides,
    ) -> Result<(), GatewayError> {
        async move {
            let latency = if overrides.timeout_all {
                self.hang()
            } else {
                sample_void_latency()
            };
            self.answer_within_deadline(latency).await?;
            tracing::Span::current().record("payment.gateway.decision", decision);
            Ok(())
        }
        .instrument(self.call_span(operation))
        .await
    }

    /// Who is called, in the current conventions: `peer.service` is deprecated (renamed
    /// `service.peer.name`, the logical name of the remote service), and `server.address`
    /// is the host a real call connects to, as the HTTP client spans carry it. The
    /// simulated gateway has no host of its own: its name stands in, the way a Kubernetes
    /// Service name does for the lab's own services.
    fn call_span(&self, operation: &'static str) -> tracing::Span {
        tracing::info_span!(
            "payment.gateway_call",
            otel.kind = "client",
            service.peer.name = GATEWAY_NAME,
            server.address = GATEWAY_NAME,
            payment.gateway.operation = operation,
            payment.gateway.deadline_ms = self.deadline.as_millis() as i64,
            payment.gateway.decision = Empty,
            error.type = Empty,
        )
    }

    /// A gateway that hangs: answers well after anyone still waits.
    fn hang(&self) -> Duration {
        self.deadline + Duration::from_secs(5)
    }

    /// Waits `latency` for the gateway's answer; past the deadline, the current span (the
    /// gateway call) records the timeout.
    async fn answer_within_deadline(&self, latency: Duration) -> Result<(), GatewayError> {
        if tokio::time::timeout(self.deadline, tokio::time::sleep(latency))
            .await
            .is_ok()
        {
            return Ok(());
        }
        let err = GatewayError::Timeout(self.deadline);
        let span = tracing::Span::current();
        span.record("payment.gateway.decision", "timeout");
        // The conventions' value for a call that ran out of time.
        span.record("error.type", "timeout");
        telemetry::record_error(&err);
        tracing::error!(error = %err, "card gateway timed out");
        Err(err)
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
            let void = sample_void_latency();
            assert!(void >= Duration::from_millis(10));
            assert!(void <= Duration::from_millis(150));
        }
    }
}
