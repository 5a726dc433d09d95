//! `ETag` on the answers of GETs and `If-Match` on writes (`store/dynamo/etag.rs` says what the tags
//! are and how the write's conditions enforce them).
//!
//! Group and tenant licenses answer a weak tag (`W/"7"`): it covers the allocations, not the live
//! usage in the same body. `If-Match` is compared weakly (`W/"7"` and `"7"` both match), which
//! RFC 9110 reserves for strong tags; a portal echoing the tag it read is what the API serves.

use super::error::{ApiError, ErrorItem};
use crate::store::IfMatch;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderValue, header};
use axum::response::Response;

/// The most entity tags one `If-Match` may carry. A write's condition names each tag, and
/// DynamoDB bounds an expression's operands; no client needs more than a few.
pub const MAX_TAGS: usize = 20;

/// The request's `If-Match`, if any.
pub struct IfMatchHeader(pub Option<IfMatch>);

impl<S: Send + Sync> FromRequestParts<S> for IfMatchHeader {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let values = parts
            .headers
            .get_all(header::IF_MATCH)
            .iter()
            .map(|v| v.to_str().map_err(|_| invalid()))
            .collect::<Result<Vec<&str>, ApiError>>()?;
        if values.is_empty() {
            return Ok(IfMatchHeader(None));
        }
        parse_if_match(&values.join(", ")).map(|m| IfMatchHeader(Some(m)))
    }
}

/// `*`, or a comma-separated list of 1 to [`MAX_TAGS`] entity tags (several header lines
/// joined with commas read the same).
pub fn parse_if_match(text: &str) -> Result<IfMatch, ApiError> {
    if text.split(',').any(|part| part.trim() == "*") {
        return Ok(IfMatch::Any);
    }
    let tags = parse_tags(text)?;
    if tags.len() > MAX_TAGS {
        return Err(ApiError::bad_request(
            ErrorItem::new(
                "INVALID_IF_MATCH",
                format!(
                    "If-Match carries {} entity tags; at most {MAX_TAGS} are accepted",
                    tags.len()
                ),
            )
            .field("If-Match"),
        ));
    }
    Ok(IfMatch::Tags(tags))
}

fn invalid() -> ApiError {
    ApiError::bad_request(
        ErrorItem::new(
            "INVALID_IF_MATCH",
            format!(
                "If-Match must be * or a list of at most {MAX_TAGS} entity tags such as \"3f2a\" or W/\"7\""
            ),
        )
        .field("If-Match"),
    )
}

/// The opaque parts of a comma-separated list of entity tags.
fn parse_tags(text: &str) -> Result<Vec<String>, ApiError> {
    let mut tags = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let quoted = part.strip_prefix("W/").unwrap_or(part);
        let opaque = quoted
            .strip_prefix('"')
            .and_then(|q| q.strip_suffix('"'))
            .filter(|o| !o.contains('"'))
            .ok_or_else(invalid)?;
        tags.push(opaque.to_owned());
    }
    if tags.is_empty() {
        return Err(invalid());
    }
    Ok(tags)
}

/// Adds a strong `ETag`.
pub fn strong(mut response: Response, tag: &str) -> Response {
    if let Ok(value) = HeaderValue::try_from(format!("\"{tag}\"")) {
        response.headers_mut().insert(header::ETAG, value);
    }
    response
}

/// Adds a weak `ETag`.
pub fn weak(mut response: Response, tag: &str) -> Response {
    if let Ok(value) = HeaderValue::try_from(format!("W/\"{tag}\"")) {
        response.headers_mut().insert(header::ETAG, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_lose_their_quotes_and_weakness() {
        let tags = parse_tags(r#"W/"7", "abc""#).ok();
        assert_eq!(tags, Some(vec!["7".to_owned(), "abc".to_owned()]));
        assert!(parse_tags("7").is_err());
        assert!(parse_tags(r#""a"b""#).is_err());
        assert!(parse_tags(" , ").is_err());
    }

    #[test]
    fn more_than_twenty_tags_are_a_client_error() {
        let tags = |n: usize| {
            (0..n)
                .map(|i| format!("\"t{i}\""))
                .collect::<Vec<_>>()
                .join(", ")
        };
        assert!(parse_if_match(&tags(MAX_TAGS)).is_ok());
        let refused = parse_if_match(&tags(MAX_TAGS + 1)).err();
        assert!(
            matches!(refused, Some(ApiError::BadRequest(ref e)) if e[0].code == "INVALID_IF_MATCH")
        );
        assert_eq!(parse_if_match(r#""a", *"#).ok(), Some(IfMatch::Any));
    }
}
