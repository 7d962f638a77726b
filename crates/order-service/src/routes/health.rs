//! `GET /healthz`.

pub async fn healthz() -> &'static str {
    "ok"
}
