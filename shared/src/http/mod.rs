//! HTTP glue shared by the Lambda binaries: one axum [`Router`](axum::Router) per function
//! ([`licenses::router`], [`user_services::router`]), the front every router wears
//! ([`front`]: log line, deadline, panics, 401/404/405), the extractors that parse requests at
//! the boundary ([`extract`], [`path`]) and the one error shape ([`error`]).

pub mod auth;
pub mod conditional;
pub mod error;
pub mod extract;
pub mod front;
pub mod idempotency;
pub mod licenses;
mod licenses_body;
pub mod path;
mod strict_json;
mod tenant;
mod usage;
pub mod user_services;
mod user_services_body;
pub mod write;

pub use error::{ApiError, ErrorItem};
pub use extract::{Input, audience_query, bool_query, json_object_body, optional_json_object_body};

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use serde::Serialize;

/// Largest request body any route reads.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// A JSON response. Serializing our own response types cannot fail; if it ever did, the
/// caller still gets a JSON error rather than a broken body.
pub fn json_response<T: Serialize + ?Sized>(status: StatusCode, body: &T) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => json_bytes(status, bytes),
        Err(_) => json_bytes(
            StatusCode::INTERNAL_SERVER_ERROR,
            br#"{"errors":[{"code":"INTERNAL","message":"response could not be encoded"}]}"#
                .to_vec(),
        ),
    }
}

/// A response of JSON already encoded.
pub fn json_bytes(status: StatusCode, bytes: Vec<u8>) -> Response {
    let mut response = Response::new(Body::from(bytes));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// A response without a body (204).
pub fn no_content() -> Response {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::NO_CONTENT;
    response
}
