//! Processors: consumers that transform, batch, sample or refuse telemetry and pass it on.
pub mod batch;
pub mod memory_limiter;
