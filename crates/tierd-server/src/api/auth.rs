//! Bearer-token authentication of the admin API, compared in constant time.

use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::Response;

use super::ApiError;
pub use tierd_config::api::Token;

/// Middleware: lets the request through only with `Authorization: Bearer <token>`.
pub async fn require_token(State(token): State<Token>, request: Request, next: Next) -> Response {
    let presented = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "))
        .map(<[u8]>::trim_ascii);
    match presented {
        Some(p) if token.matches(p) => next.run(request).await,
        Some(_) => ApiError::unauthorized("the bearer token is wrong").into_response_with_challenge(),
        None => ApiError::unauthorized("send the API token as `Authorization: Bearer <token>`")
            .into_response_with_challenge(),
    }
}
