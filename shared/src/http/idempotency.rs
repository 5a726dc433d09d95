//! `Idempotency-Key` on writes (POST, PUT, DELETE), with Stripe's semantics: the first request
//! with a key runs and its answer (status, body) is kept 24 h; a repeat with the same key and the
//! same meaning gets that answer again without running (marked `Idempotent-Replayed: true`); the
//! same key with another request is a 422 `IDEMPOTENCY_KEY_REUSED`. A refused request (a 4xx)
//! keeps nothing, so a retry with its key runs afresh.
//!
//! This layer only reads the key and fingerprints the request ([`Keyed`]); the record itself is
//! one more action of the write's own transaction, with the answer the handler computed before
//! writing ([`super::write::Write`], `store/idempotency.rs`), so a repeat is answered by that
//! transaction's condition: no claim before, no completion after, no extra round trip. A repeat
//! that the handler refuses before any transaction (its effect is already there: "no such
//! instance" for a DELETE that succeeded) is checked against the record once, here.
//!
//! Keys are scoped to what the caller can reach ([`crate::domain::Principal::key_scope`]).

use super::body::MAX_BODY_BYTES;
use super::conditional::parse_if_match;
use super::error::{ApiError, ErrorItem};
use super::error::{Replay, replay};
use super::path::PathIds;
use crate::domain::Principal;
use crate::store::IfMatch;
use crate::store::dynamo::etag::hex;
use crate::store::idempotency::{Earlier, Records};
use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use sha2::{Digest, Sha256};

pub const HEADER: &str = "idempotency-key";

/// A request with an `Idempotency-Key`: what its write's record is filed under and what makes a
/// repeat "the same request". Left in the request's extensions for [`super::write::Write`].
#[derive(Clone, Debug)]
pub struct Keyed {
    pub scope: String,
    pub key: String,
    pub fingerprint: String,
}

/// Marks a success whose answer went into its write's record; a keyed success without it is
/// a handler that forgot its record (logged as a defect).
#[derive(Clone, Copy, Debug)]
pub struct Kept;

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

/// What makes two requests "the same": their meaning, not their spelling. The method; the
/// matched route with its parsed ids (so a trailing slash, a slug for the catalog name, or the
/// percent-encoding of a path do not matter); the query's parameters in order of name; the body
/// as parsed JSON with its keys sorted (whitespace and key order do not matter; a body that is
/// not JSON counts as its bytes); and `If-Match`, parsed.
pub fn fingerprint(
    method: &Method,
    route: &str,
    ids: &PathIds,
    query: Option<&str>,
    body: &[u8],
    if_match: Option<&str>,
) -> String {
    let mut hash = Sha256::new();
    let mut part = |bytes: &[u8]| {
        hash.update((bytes.len() as u64).to_be_bytes());
        hash.update(bytes);
    };
    part(method.as_str().as_bytes());
    part(route.trim_end_matches('/').as_bytes());
    for (name, id) in [
        ("tenant_id", ids.tenant.as_ref().map(|t| t.as_str())),
        ("group_id", ids.group.as_ref().map(|g| g.group.as_str())),
        ("user_id", ids.user.as_ref().map(|u| u.as_str())),
        ("service", ids.service.map(|s| s.name())),
        ("pack_name", ids.pack.as_ref().map(|p| p.as_str())),
        ("instance_name", ids.instance.as_ref().map(|i| i.as_str())),
    ] {
        if let Some(id) = id {
            part(name.as_bytes());
            part(id.as_bytes());
        }
    }
    let mut pairs: Vec<(String, String)> = query
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default();
    pairs.sort();
    for (name, value) in &pairs {
        part(name.as_bytes());
        part(value.as_bytes());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(value) => {
            let mut canonical = String::with_capacity(body.len());
            write_canonical(&value, &mut canonical);
            part(b"json");
            part(canonical.as_bytes());
        }
        Err(_) => {
            part(b"bytes");
            part(body);
        }
    }
    match if_match.map(|v| (v, parse_if_match(v))) {
        None => part(b"no If-Match"),
        Some((_, Ok(IfMatch::Any))) => part(b"*"),
        Some((_, Ok(IfMatch::Tags(mut tags)))) => {
            tags.sort();
            tags.dedup();
            for tag in tags {
                part(tag.as_bytes());
            }
        }
        Some((raw, Err(_))) => part(raw.as_bytes()),
    }
    hex(&hash.finalize())
}

/// JSON with object keys in sorted order and no whitespace.
fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(&map[key], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// The layer (a `route_layer` inside authorization, so the caller is known and allowed, and the
/// route's ids are parsed).
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
    let (mut parts, body) = req.into_parts();
    let Ok(body) = axum::body::to_bytes(body, MAX_BODY_BYTES).await else {
        return ApiError::PayloadTooLarge {
            limit: MAX_BODY_BYTES,
        }
        .into_response();
    };
    let route = parts
        .extensions
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned())
        .unwrap_or_default();
    let ids = parts
        .extensions
        .get::<PathIds>()
        .cloned()
        .unwrap_or_default();
    let if_match: Option<String> = {
        let values: Vec<&str> = parts
            .headers
            .get_all(header::IF_MATCH)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        (!values.is_empty()).then(|| values.join(", "))
    };
    let keyed = Keyed {
        scope,
        fingerprint: fingerprint(
            &parts.method,
            &route,
            &ids,
            parts.uri.query(),
            &body,
            if_match.as_deref(),
        ),
        key,
    };
    parts.extensions.insert(keyed.clone());
    let response = next.run(Request::from_parts(parts, Body::from(body))).await;

    let status = response.status();
    if status.is_success() {
        if response.extensions().get::<Kept>().is_none()
            && response.extensions().get::<Replay>().is_none()
        {
            tracing::error!(route, "a keyed write answered without keeping its answer");
        }
        return response;
    }
    // A refusal may be a repeat whose first request succeeded (its effect is why this one is
    // refused): the key's record, if any, is the answer. Storage failures and defects say
    // nothing about the key; a 422 already is the record's answer.
    if status.is_server_error() || status == axum::http::StatusCode::UNPROCESSABLE_ENTITY {
        return response;
    }
    match records
        .earlier(&keyed.scope, &keyed.key, &keyed.fingerprint)
        .await
    {
        Ok(Some(Earlier::Replay(answer))) => replay(answer),
        Ok(Some(Earlier::Reused)) => ApiError::IdempotencyKeyReused.into_response(),
        // No record (the refusal stands), or it cannot be read now: the refusal, which says
        // nothing was changed, is still true of this request.
        Ok(None) | Err(_) => response,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{GroupService, TenantId};

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
    fn fingerprints_follow_meaning_not_spelling() {
        let ids = PathIds {
            tenant: Some(TenantId::parse("acme").unwrap()),
            service: Some(GroupService::from_path("hunt-group").unwrap()),
            ..PathIds::default()
        };
        let print = |method: &Method, route: &str, body: &[u8], if_match: Option<&str>| {
            fingerprint(method, route, &ids, None, body, if_match)
        };
        let a = print(
            &Method::POST,
            "/x/{service}/",
            br#"{"name":"N1","b":[1,2]}"#,
            None,
        );
        // Trailing slash, whitespace and key order are spelling.
        assert_eq!(
            a,
            print(
                &Method::POST,
                "/x/{service}",
                b"{ \"b\": [1, 2], \"name\": \"N1\" }",
                None
            )
        );
        // Method, body values, array order and If-Match are meaning.
        assert_ne!(
            a,
            print(
                &Method::PUT,
                "/x/{service}",
                br#"{"name":"N1","b":[1,2]}"#,
                None
            )
        );
        assert_ne!(
            a,
            print(
                &Method::POST,
                "/x/{service}",
                br#"{"name":"N2","b":[1,2]}"#,
                None
            )
        );
        assert_ne!(
            a,
            print(
                &Method::POST,
                "/x/{service}",
                br#"{"name":"N1","b":[2,1]}"#,
                None
            )
        );
        let tagged = print(
            &Method::POST,
            "/x/{service}",
            br#"{"name":"N1","b":[1,2]}"#,
            Some(r#""a", W/"b""#),
        );
        assert_ne!(a, tagged);
        assert_eq!(
            tagged,
            print(
                &Method::POST,
                "/x/{service}",
                br#"{"name":"N1","b":[1,2]}"#,
                Some(r#"W/"b","a""#)
            )
        );
    }
}
