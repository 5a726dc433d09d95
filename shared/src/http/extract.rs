//! What a handler reads of a request besides its path: the body (bounded, then parsed as a JSON
//! object) and the query string. Rejections keep the API's error shape.

use super::strict_json::{self, StrictError};
use super::{ApiError, ErrorItem, MAX_BODY_BYTES};
use crate::domain::Audience;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use serde_json::{Map, Value};

/// The request's body (at most [`MAX_BODY_BYTES`], else 413) and query parameters. lambda_http
/// has already decoded a body API Gateway sent base64-encoded, so these are the client's bytes.
pub struct Input {
    body: Bytes,
    query: Vec<(String, String)>,
}

impl<S: Send + Sync> FromRequest<S> for Input {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, ApiError> {
        let query = req
            .uri()
            .query()
            .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
            .unwrap_or_default();
        let body = axum::body::to_bytes(req.into_body(), MAX_BODY_BYTES)
            .await
            .map_err(|_| ApiError::PayloadTooLarge {
                limit: MAX_BODY_BYTES,
            })?;
        Ok(Input { body, query })
    }
}

impl Input {
    /// An input made of parts, for unit tests of body and query parsing.
    pub fn new(body: impl Into<Bytes>, query: &[(&str, &str)]) -> Self {
        Input {
            body: body.into(),
            query: query
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    fn query(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The request body as a JSON object, or the 400 a client needs to fix it.
pub fn json_object_body(input: &Input) -> Result<Map<String, Value>, ApiError> {
    optional_json_object_body(input)?.ok_or_else(|| {
        ApiError::bad_request(ErrorItem::new(
            "INVALID_BODY",
            "a JSON object body is required",
        ))
    })
}

/// Like [`json_object_body`], but an empty (or all-whitespace) body is `None`.
pub fn optional_json_object_body(input: &Input) -> Result<Option<Map<String, Value>>, ApiError> {
    let bytes: &[u8] = &input.body;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    // Bytes that are not UTF-8 (a binary body API Gateway sent base64-encoded) fail here too.
    match strict_json::parse(bytes) {
        Ok(Value::Object(map)) => Ok(Some(map)),
        Ok(_) => Err(ApiError::bad_request(ErrorItem::new(
            "INVALID_BODY",
            "the body must be a JSON object",
        ))),
        Err(StrictError::Duplicate(path)) => Err(ApiError::bad_request(
            ErrorItem::new(
                "DUPLICATE_FIELD",
                format!("{path} appears more than once in its object"),
            )
            .field(path),
        )),
        Err(StrictError::Invalid(e)) => Err(ApiError::bad_request(ErrorItem::new(
            "INVALID_JSON",
            format!("the body is not valid UTF-8 JSON: {e}"),
        ))),
    }
}

/// A boolean query parameter: absent, `true` or `false`; anything else is a 400 so a typo
/// never widens an answer silently.
pub fn bool_query(input: &Input, name: &'static str) -> Result<Option<bool>, ApiError> {
    match input.query(name) {
        None => Ok(None),
        Some("true") => Ok(Some(true)),
        Some("false") => Ok(Some(false)),
        Some(_) => Err(ApiError::bad_request(
            ErrorItem::new("INVALID_QUERY", format!("{name} must be true or false")).field(name),
        )),
    }
}

/// The user-services filters (`for_hg`, `for_cc`, `for_ivr`, `for_enduser`) of the query string.
pub fn audience_query(input: &Input) -> Result<Audience, ApiError> {
    let mut filter = Audience::default();
    let mut errors = Vec::new();
    for field in Audience::FIELDS {
        match bool_query(input, field) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_that_are_not_utf8_json_objects_are_400s() {
        for body in [&b"\xff\xfe{}"[..], b"[1]", b"{\"a\": ", b"null"] {
            let err = json_object_body(&Input::new(body.to_vec(), &[])).unwrap_err();
            assert!(matches!(err, ApiError::BadRequest(_)), "{body:?}");
        }
        assert!(
            optional_json_object_body(&Input::new(" \n", &[]))
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn boolean_queries_accept_only_true_and_false() {
        let input = Input::new("", &[("licensed", "true"), ("for_hg", "yes")]);
        assert_eq!(bool_query(&input, "licensed").unwrap(), Some(true));
        assert_eq!(bool_query(&input, "for_cc").unwrap(), None);
        assert!(audience_query(&input).is_err());
    }
}
