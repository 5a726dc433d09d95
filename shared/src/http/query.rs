//! The query string: parsed once into its parameters ([`Query`], an extractor), read as the
//! typed flags the routes document. A flag is `true` or `false`; anything else is a 400, so a
//! typo never widens an answer silently.

use super::error::{ApiError, ErrorItem};
use crate::domain::Audience;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use std::convert::Infallible;

/// The request's query parameters, decoded.
pub struct Query(Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for Query {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Infallible> {
        Ok(Query::parse(parts.uri.query().unwrap_or_default()))
    }
}

impl Query {
    /// The parameters of a query string (`a=1&b=x%20y`).
    pub fn parse(query: &str) -> Self {
        Query(
            form_urlencoded::parse(query.as_bytes())
                .into_owned()
                .collect(),
        )
    }

    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// A boolean flag: absent is `false`.
    pub fn flag(&self, name: &'static str) -> Result<bool, ApiError> {
        match self.get(name) {
            None | Some("false") => Ok(false),
            Some("true") => Ok(true),
            Some(_) => Err(ApiError::bad_request(invalid_flag(name))),
        }
    }

    /// The user-services filters (`for_hg`, `for_cc`, `for_ivr`, `for_enduser`); every bad one
    /// is named.
    pub fn audience(&self) -> Result<Audience, ApiError> {
        let mut filter = Audience::default();
        let mut errors = Vec::new();
        for field in Audience::FIELDS {
            match self.get(field) {
                None | Some("false") => {}
                Some("true") => {
                    filter.set(field, true);
                }
                Some(_) => errors.push(invalid_flag(field)),
            }
        }
        if errors.is_empty() {
            Ok(filter)
        } else {
            Err(ApiError::BadRequest(errors))
        }
    }
}

fn invalid_flag(name: &str) -> ErrorItem {
    ErrorItem::new("INVALID_QUERY", format!("{name} must be true or false")).field(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_accept_only_true_and_false() {
        let query = Query::parse("licensed=true&for_hg=yes&for_cc=false");
        assert!(query.flag("licensed").unwrap());
        assert!(!query.flag("for_ivr").unwrap());
        assert!(query.flag("for_hg").is_err());
        assert!(query.audience().is_err());
        let filter = Query::parse("for_cc=true").audience().unwrap();
        assert!(filter.for_cc && !filter.for_hg);
    }
}
