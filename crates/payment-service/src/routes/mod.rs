//! One module per endpoint.

pub mod health;
pub mod payments;
