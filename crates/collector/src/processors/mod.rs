//! Processors: consumers that transform, batch, sample or refuse telemetry and pass it on.
pub mod attributes;
pub mod batch;
pub mod filter;
pub mod memory_limiter;
pub mod probabilistic_sampler;
pub mod resource;
pub mod tail_sampling;
