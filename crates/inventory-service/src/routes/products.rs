//! `GET /inventory` and `GET /inventory/{sku}`.

use axum::Json;
use axum::extract::{Path, State};

use super::ApiError;
use crate::app::AppState;
use crate::domain::Sku;
use crate::store::{Product, StoreError};

pub async fn list(State(state): State<AppState>) -> Result<Json<Vec<Product>>, ApiError> {
    Ok(Json(state.store.list_products().await?))
}

pub async fn show(
    State(state): State<AppState>,
    Path(sku): Path<String>,
) -> Result<Json<Product>, ApiError> {
    let parsed = Sku::parse(&sku)?;
    state
        .store
        .product(parsed)
        .await?
        .map(Json)
        .ok_or_else(|| StoreError::UnknownSku(sku).into())
}
