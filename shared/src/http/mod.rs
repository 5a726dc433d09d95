//! HTTP glue shared by the Lambda binaries: JSON responses, the error shape, path decoding,
//! body limits and the per-request log line. Route handlers live in one file per function.

pub mod auth;
pub mod error;
pub mod licenses;
mod licenses_body;
pub mod path;
mod tenant;
mod usage;
pub mod user_services;
mod user_services_body;

pub use error::{ApiError, ErrorItem};

use crate::domain::Audience;
use lambda_http::http::{HeaderValue, StatusCode, header};
use lambda_http::{Body, Request, RequestExt, Response};
use serde::Serialize;
use serde_json::{Map, Value};
use std::time::Instant;

/// Largest request body any route reads.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// A JSON response. Serializing our own response types cannot fail; if it ever did, the
/// caller still gets a JSON error rather than a broken body.
pub fn json_response<T: Serialize + ?Sized>(status: StatusCode, body: &T) -> Response<Body> {
    let (status, bytes) = match serde_json::to_vec(body) {
        Ok(bytes) => (status, bytes),
        Err(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            br#"{"errors":[{"code":"INTERNAL","message":"response could not be encoded"}]}"#
                .to_vec(),
        ),
    };
    let mut response = Response::new(Body::Binary(bytes));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// The request body as a JSON object, or the 400/413 a client needs to fix it.
pub fn json_object_body(req: &Request) -> Result<Map<String, Value>, ApiError> {
    optional_json_object_body(req)?.ok_or_else(|| {
        ApiError::bad_request(ErrorItem::new(
            "INVALID_BODY",
            "a JSON object body is required",
        ))
    })
}

/// Like [`json_object_body`], but an empty (or all-whitespace) body is `None`.
pub fn optional_json_object_body(req: &Request) -> Result<Option<Map<String, Value>>, ApiError> {
    let bytes: &[u8] = req.body().as_ref();
    if bytes.len() > MAX_BODY_BYTES {
        return Err(ApiError::PayloadTooLarge {
            limit: MAX_BODY_BYTES,
        });
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    match serde_json::from_slice(bytes) {
        Ok(Value::Object(map)) => Ok(Some(map)),
        Ok(_) => Err(ApiError::bad_request(ErrorItem::new(
            "INVALID_BODY",
            "the body must be a JSON object",
        ))),
        Err(e) => Err(ApiError::bad_request(ErrorItem::new(
            "INVALID_JSON",
            format!("the body is not valid JSON: {e}"),
        ))),
    }
}

/// A boolean query parameter: absent, `true` or `false`; anything else is a 400 so a typo
/// never widens an answer silently.
pub fn bool_query(req: &Request, name: &'static str) -> Result<Option<bool>, ApiError> {
    let value = req
        .query_string_parameters_ref()
        .and_then(|params| params.first(name));
    match value {
        None => Ok(None),
        Some("true") => Ok(Some(true)),
        Some("false") => Ok(Some(false)),
        Some(_) => Err(ApiError::bad_request(
            ErrorItem::new("INVALID_QUERY", format!("{name} must be true or false")).field(name),
        )),
    }
}

/// The user-services filters (`for_hg`, `for_cc`, `for_ivr`, `for_enduser`) of the query string.
pub fn audience_query(req: &Request) -> Result<Audience, ApiError> {
    let mut filter = Audience::default();
    let mut errors = Vec::new();
    for field in Audience::FIELDS {
        match bool_query(req, field) {
            Ok(value) => {
                filter.set(field, value.unwrap_or(false));
            }
            Err(ApiError::BadRequest(mut e)) => errors.append(&mut e),
            Err(other) => return Err(other),
        }
    }
    if errors.is_empty() {
        Ok(filter)
    } else {
        Err(ApiError::BadRequest(errors))
    }
}

/// Runs one request through `handler` and writes the request's log line: method, route,
/// status, latency and the Lambda request id (never bodies). A panic in the handler becomes a
/// JSON 500 and the function goes on serving.
pub async fn serve<F, Fut>(req: Request, handler: F) -> Response<Body>
where
    F: FnOnce(Request) -> Fut,
    Fut: std::future::Future<Output = (&'static str, Response<Body>)>,
{
    use futures_util::FutureExt;
    let started = Instant::now();
    let method = req.method().clone();
    let request_id = req
        .lambda_context_ref()
        .map(|c| c.request_id.clone())
        .unwrap_or_default();
    let outcome = std::panic::AssertUnwindSafe(async move { handler(req).await })
        .catch_unwind()
        .await;
    let (route, response) = outcome.unwrap_or_else(|_| {
        tracing::error!(method = %method, request_id = %request_id, "handler panicked");
        ("panic", ApiError::Internal.into_response())
    });
    tracing::info!(
        method = %method,
        route,
        status = response.status().as_u16(),
        latency_ms = started.elapsed().as_secs_f64() * 1000.0,
        request_id = %request_id,
        "request"
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panicking_handler_answers_a_json_500_and_serving_goes_on() {
        let response = serve(Request::default(), |_req| async {
            if true {
                panic!("a defect");
            }
            ("never", Response::new(Body::Empty))
        })
        .await;
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let json: Value = serde_json::from_slice(response.body()).unwrap();
        assert_eq!(json["errors"][0]["code"], "INTERNAL");

        let next = serve(Request::default(), |_req| async {
            ("ok", json_response(StatusCode::OK, &serde_json::json!({})))
        })
        .await;
        assert_eq!(next.status(), StatusCode::OK);
    }
}
