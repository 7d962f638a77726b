//! Extensions: services beside the pipelines.
pub mod bearertokenauth;
pub mod file_storage;
pub mod health_check;
pub mod jaeger_query;
pub mod jaeger_storage;
