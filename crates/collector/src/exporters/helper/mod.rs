//! What exporters share, as the Go collector's exporterhelper: the sending queue (in
//! memory or persistent) with its retries, and the HTTP client the HTTP-based exporters
//! post with.
pub mod http_client;
pub mod persistent_queue;
pub mod queue;
