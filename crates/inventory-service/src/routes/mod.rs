//! One module per group of endpoints, and the JSON error answer they share.

pub mod health;
pub mod products;
pub mod reservations;

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::domain::ValidationError;
use crate::store::StoreError;

/// An error answer: status plus `{"error": message, ...details}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    body: serde_json::Value,
}

impl ApiError {
    pub fn bad_request(message: impl std::fmt::Display) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            body: json!({ "error": message.to_string() }),
        }
    }
}

impl From<ValidationError> for ApiError {
    fn from(err: ValidationError) -> Self {
        Self::bad_request(err)
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        let message = err.to_string();
        match err {
            StoreError::UnknownSku(sku) => Self {
                status: StatusCode::NOT_FOUND,
                body: json!({ "error": message, "sku": sku }),
            },
            StoreError::InsufficientStock {
                sku,
                requested,
                available,
            } => Self {
                status: StatusCode::CONFLICT,
                body: json!({
                    "error": message,
                    "sku": sku,
                    "requested": requested,
                    "available": available,
                }),
            },
            StoreError::NoReservation(order_id) => Self {
                status: StatusCode::CONFLICT,
                body: json!({ "error": message, "order_id": order_id }),
            },
            StoreError::Database(_) | StoreError::Task(_) => {
                telemetry::record_error(&err);
                tracing::error!(error = %message, "inventory store failed");
                Self {
                    status: StatusCode::INTERNAL_SERVER_ERROR,
                    body: json!({ "error": message }),
                }
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body)).into_response()
    }
}
