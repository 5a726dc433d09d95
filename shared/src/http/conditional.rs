//! `ETag` on the answers of GETs and `If-Match` on writes (`store/etag.rs` says what the tags
//! are and how the write's conditions enforce them).
//!
//! Group and tenant licenses answer a weak tag (`W/"7"`): it covers the allocations, not the live
//! usage in the same body. `If-Match` is compared weakly (`W/"7"` and `"7"` both match), which
//! RFC 9110 reserves for strong tags; a portal echoing the tag it read is what the API serves.

use super::{ApiError, ErrorItem};
use crate::store::IfMatch;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderValue, header};
use axum::response::Response;

/// The request's `If-Match`, if any.
pub struct IfMatchHeader(pub Option<IfMatch>);

impl<S: Send + Sync> FromRequestParts<S> for IfMatchHeader {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let mut values = parts.headers.get_all(header::IF_MATCH).iter().peekable();
        if values.peek().is_none() {
            return Ok(IfMatchHeader(None));
        }
        let mut tags = Vec::new();
        for value in values {
            let text = value.to_str().map_err(|_| invalid())?;
            if text.trim() == "*" {
                return Ok(IfMatchHeader(Some(IfMatch::Any)));
            }
            tags.extend(parse_tags(text)?);
        }
        Ok(IfMatchHeader(Some(IfMatch::Tags(tags))))
    }
}

fn invalid() -> ApiError {
    ApiError::bad_request(
        ErrorItem::new(
            "INVALID_IF_MATCH",
            "If-Match must be * or a list of entity tags such as \"3f2a\" or W/\"7\"",
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
}
