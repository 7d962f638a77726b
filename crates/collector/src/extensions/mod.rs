//! Extensions: services beside the pipelines.
pub mod health_check;
