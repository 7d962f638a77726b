//! The `fraud-check` AWS Lambda function of otel-lab, and a local Lambda emulator to run it.
//!
//! In the lab's diagram, order-service calls fraud-check over its Function URL before it
//! charges a card. The function (binary `bootstrap`, built on `lambda_runtime`) scores the
//! order, continues the caller's W3C trace, and flushes its telemetry straight to the
//! collector gateway at the end of every invocation, because a Lambda environment may be
//! frozen as soon as it answers. Locally there is no Lambda, so `lambda-emulator` serves the
//! Lambda Runtime API to the unmodified `bootstrap` and exposes it on a Function URL
//! (port 9000), with cold starts, idle shutdown, timeouts and crash recovery.

pub mod emulator;
pub mod fraud;
pub mod function;
pub mod lambda_env;
