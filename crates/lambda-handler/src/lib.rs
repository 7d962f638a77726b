//! The `fraud-check` AWS Lambda function of otel-lab, and a local Lambda emulator to run it.
//!
//! In the lab's diagram, order-service calls fraud-check over its Function URL before it
//! charges a card. The function (binary `bootstrap`, built on `lambda_runtime`) scores the
//! order, continues the caller's W3C trace, records the FaaS metrics (`faas.invoke_duration`,
//! `faas.coldstarts`, `faas.errors`) and `fraud_check.decisions` ([`metrics`]), and flushes
//! spans, logs and metrics straight to the collector gateway at the end of every invocation,
//! within a time budget ([`flush`]), because a Lambda environment may be frozen as soon as it
//! answers. Faults come from `FAULT_*`, read when an execution environment starts
//! ([`function`]).
//!
//! Locally there is no Lambda, so `lambda-emulator` ([`emulator`]) serves the Lambda Runtime
//! API to the unmodified `bootstrap` and exposes it on a Function URL (port 9000), with cold
//! starts, idle shutdown, timeouts and crash recovery; its `GET|POST /admin/faults` is the
//! function's configuration, as `aws lambda update-function-configuration` would change it.

pub mod emulator;
pub mod flush;
pub mod fraud;
pub mod fulfilment;
pub mod function;
pub mod lambda_env;
pub mod metrics;
