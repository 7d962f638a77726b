//! One module per group of endpoints.

pub mod health;
pub mod orders;
