//! `Idempotency-Key` on writes (POST, PUT, DELETE), with Stripe's and Powertools' semantics: the
//! first request with a key runs and its answer (status, body) is kept 24 h; a repeat with the
//! same key, method, path and body gets that answer again without running (marked
//! `Idempotent-Replayed: true`); the same key with another request is a 422
//! `IDEMPOTENCY_KEY_REUSED`; a repeat while the first runs is a 409 `IN_PROGRESS`. Keys are
//! scoped to the caller's tenant (operators share the operator scope).
//!
//! The records and why a crash never runs a write twice: `store/idempotency.rs`. This layer
//! claims the key, runs the route holding the claim (its transactions carry it), then keeps the
//! answer, or gives the key back when the answer says nothing about the request (contention, an
//! unavailable store, the deadline: [`Transient`]), so that a retry runs afresh.

use super::error::Transient;
use super::{ApiError, ErrorItem, MAX_BODY_BYTES};
use crate::domain::Principal;
use crate::store::etag::hex;
use crate::store::idempotency::{self, Answer, Claimed, Records};
use crate::store::retry;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use std::time::Duration;

pub const HEADER: &str = "idempotency-key";
/// Kept back from the request's deadline to keep the answer (or give the key back).
const RESERVE: Duration = Duration::from_millis(1000);

/// The key as sent, if it is 1-255 printable ASCII characters.
fn parse_key(value: &HeaderValue) -> Result<&str, ApiError> {
    let bytes = value.as_bytes();
    if (1..=255).contains(&bytes.len()) && bytes.iter().all(|b| (b' '..=b'~').contains(b)) {
        // Printable ASCII is UTF-8.
        if let Ok(key) = value.to_str() {
            return Ok(key);
        }
    }
    Err(ApiError::bad_request(
        ErrorItem::new(
            "INVALID_IDEMPOTENCY_KEY",
            "Idempotency-Key must be 1-255 printable ASCII characters",
        )
        .field("Idempotency-Key"),
    ))
}

/// What makes two requests "the same": method, path with query, and body.
fn fingerprint(method: &Method, uri: &axum::http::Uri, body: &[u8]) -> String {
    let mut hash = Sha256::new();
    hash.update(method.as_str().as_bytes());
    hash.update([0]);
    hash.update(uri.path_and_query().map_or("", |p| p.as_str()).as_bytes());
    hash.update([0]);
    hash.update(body);
    hex(&hash.finalize())
}

fn replay(answer: Answer) -> Response {
    let mut response = Response::new(Body::from(answer.body));
    *response.status_mut() =
        axum::http::StatusCode::from_u16(answer.status).unwrap_or(axum::http::StatusCode::OK);
    let empty = response.status() == axum::http::StatusCode::NO_CONTENT;
    let headers = response.headers_mut();
    if !empty {
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
    }
    if let Some(etag) = answer.etag.and_then(|e| HeaderValue::try_from(e).ok()) {
        headers.insert(header::ETAG, etag);
    }
    headers.insert("idempotent-replayed", HeaderValue::from_static("true"));
    response
}

/// The layer (a `route_layer` inside authorization, so the caller is known and allowed).
pub async fn idempotent(State(records): State<Records>, req: Request, next: Next) -> Response {
    if !matches!(*req.method(), Method::POST | Method::PUT | Method::DELETE) {
        return next.run(req).await;
    }
    let Some(value) = req.headers().get(HEADER) else {
        return next.run(req).await;
    };
    let key = match parse_key(value) {
        Ok(key) => key.to_owned(),
        Err(refusal) => return refusal.into_response(),
    };
    let Some(scope) = req
        .extensions()
        .get::<Principal>()
        .map(Principal::key_scope)
    else {
        return ApiError::Unauthenticated.into_response();
    };
    let (parts, body) = req.into_parts();
    let Ok(body) = axum::body::to_bytes(body, MAX_BODY_BYTES).await else {
        return ApiError::PayloadTooLarge {
            limit: MAX_BODY_BYTES,
        }
        .into_response();
    };
    let print = fingerprint(&parts.method, &parts.uri, &body);
    let deadline = retry::deadline();
    let claim = match records.claim(&scope, &key, &print, deadline).await {
        Ok(Claimed::Mine(claim)) => claim,
        Ok(Claimed::Replay(answer)) => return replay(answer),
        Ok(Claimed::Reused) => return ApiError::IdempotencyKeyReused.into_response(),
        Ok(Claimed::InProgress { applied }) => {
            return ApiError::InProgress { applied }.into_response();
        }
        Err(_) => return ApiError::Unavailable.into_response(),
    };

    // The route gets the request's time less what keeping the answer needs.
    let until = deadline.checked_sub(RESERVE).unwrap_or(deadline);
    let run = idempotency::holding(
        claim.clone(),
        retry::with_deadline(
            until,
            next.run(Request::from_parts(parts, Body::from(body))),
        ),
    );
    let response = match tokio::time::timeout_at(until.into(), run).await {
        Ok(response) => response,
        Err(_) => ApiError::DeadlineExceeded.into_response(),
    };
    if response.extensions().get::<Transient>().is_some() {
        // Failing to give the key back only delays a retry until the claim's lease ends.
        let _ = records.release(&claim).await;
        return response;
    }
    let (parts, body) = response.into_parts();
    let body: Bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let answer = Answer {
        status: parts.status.as_u16(),
        body: String::from_utf8_lossy(&body).into_owned(),
        etag: parts
            .headers
            .get(header::ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    };
    // Not kept (store unreachable): a repeat is told the write is applied or, if it wrote
    // nothing, runs again once the lease ends. Either way the answer below stands.
    if records.complete(&claim, &answer).await.is_err() {
        tracing::warn!("the answer of an idempotent request could not be kept");
    }
    Response::from_parts(parts, Body::from(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_1_to_255_printable_ascii() {
        let ok = |s: &str| parse_key(&HeaderValue::from_str(s).unwrap()).is_ok();
        assert!(ok("a"));
        assert!(ok("order 42/#?~"));
        assert!(ok(&"k".repeat(255)));
        assert!(!ok(&"k".repeat(256)));
        assert!(!ok(""));
        assert!(!ok("tab\there"));
        assert!(parse_key(&HeaderValue::from_bytes(b"caf\xc3\xa9").unwrap()).is_err());
    }

    #[test]
    fn fingerprints_tell_method_path_and_body_apart() {
        let uri = |s: &str| s.parse::<axum::http::Uri>().unwrap();
        let a = fingerprint(&Method::PUT, &uri("/x/"), b"{}");
        assert_eq!(a, fingerprint(&Method::PUT, &uri("/x/"), b"{}"));
        assert_ne!(a, fingerprint(&Method::POST, &uri("/x/"), b"{}"));
        assert_ne!(a, fingerprint(&Method::PUT, &uri("/x"), b"{}"));
        assert_ne!(a, fingerprint(&Method::PUT, &uri("/x/"), b"{ }"));
    }
}
