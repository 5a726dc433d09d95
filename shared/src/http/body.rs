//! The API's one JSON body parser. A handler takes [`Body<T>`]; `T` says how it reads itself
//! ([`FromBody::parse`]) with a cursor over the body's objects ([`Object`]) that records every
//! problem with the JSON path of the offending value ([`Errors`]), so a client fixing a body sees
//! all of its mistakes at once. Each kind of error has one constructor here, with one message.
//!
//! The body is read in full (at most [`MAX_BODY_BYTES`], else 413), parsed refusing repeated
//! keys (`strict_json.rs`), and must be a JSON object. Unknown fields are refused: a typo must
//! never pass silently.

use super::error::{ApiError, ErrorItem};
use super::path::PathIds;
use super::strict_json::{self, StrictError};
use axum::extract::{FromRequest, FromRequestParts, Request};
use serde_json::{Map, Value};
use std::fmt;

/// Largest request body any route reads.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// A body type: read from the body's top object, knowing the route's ids (a PUT whose path
/// names the object checks the body against it). `None` when something was refused; each
/// refusal is in `errors`.
pub trait FromBody: Sized {
    /// Whether an empty body is accepted, read as `{}`.
    const OPTIONAL: bool = false;

    fn parse(body: &Object<'_>, path: &PathIds, errors: &mut Errors) -> Option<Self>;
}

/// The parsed body of a request (an extractor; its rejection is the 400 listing every error).
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: FromBody> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        // The route's ids (a body may be checked against them): those the authorization layer
        // parsed, else parsed here.
        let (mut parts, body) = req.into_parts();
        let ids = PathIds::from_request_parts(&mut parts, state).await?;
        // lambda_http has already decoded a body API Gateway sent base64-encoded.
        let bytes = axum::body::to_bytes(body, MAX_BODY_BYTES)
            .await
            .map_err(|_| ApiError::PayloadTooLarge {
                limit: MAX_BODY_BYTES,
            })?;
        parse(&bytes, &ids).map(Body)
    }
}

/// Reads `bytes` as the body `T`, for the route with `ids`.
pub fn parse<T: FromBody>(bytes: &[u8], ids: &PathIds) -> Result<T, ApiError> {
    let empty = Map::new();
    let value;
    let map = if bytes.iter().all(u8::is_ascii_whitespace) {
        if !T::OPTIONAL {
            return Err(ApiError::bad_request(ErrorItem::new(
                "INVALID_BODY",
                "a JSON object body is required",
            )));
        }
        &empty
    } else {
        value = json_object(bytes)?;
        &value
    };
    let mut errors = Errors::default();
    let parsed = T::parse(&Object::new(At::default(), map), ids, &mut errors);
    errors.finish(parsed)
}

/// The body as a JSON object. Bytes that are not UTF-8 (a binary body API Gateway sent
/// base64-encoded) fail here too.
fn json_object(bytes: &[u8]) -> Result<Map<String, Value>, ApiError> {
    match strict_json::parse(bytes) {
        Ok(Value::Object(map)) => Ok(map),
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

/// The JSON path of a value in the body, e.g. `userServices[1].allocated.maximum`; empty for
/// the body itself.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct At(String);

impl At {
    pub fn key(&self, key: &str) -> At {
        if self.0.is_empty() {
            At(key.to_owned())
        } else {
            At(format!("{}.{key}", self.0))
        }
    }

    pub fn index(&self, i: usize) -> At {
        At(format!("{}[{i}]", self.0))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for At {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The errors of one body, in the order found.
#[derive(Debug, Default)]
pub struct Errors(Vec<ErrorItem>);

impl Errors {
    pub fn push(&mut self, item: ErrorItem) {
        self.0.push(item);
    }

    /// The parsed value when nothing was refused; else the 400 listing every error.
    pub fn finish<T>(self, value: Option<T>) -> Result<T, ApiError> {
        match value {
            Some(value) if self.0.is_empty() => Ok(value),
            // A parser that refused without saying why is a defect of ours.
            _ if self.0.is_empty() => Err(ApiError::internal(
                "a body parser refused a body without an error",
            )),
            _ => Err(ApiError::BadRequest(self.0)),
        }
    }

    /// Records the error of a `Result`, keeping its value.
    pub fn take<T>(&mut self, result: Result<T, ErrorItem>) -> Option<T> {
        result.map_err(|e| self.push(e)).ok()
    }
}

/// A field as read: `Ok(None)` absent, `Ok(Some(v))` present with the right type, `Err(Refused)`
/// present but refused (its error is already recorded).
pub type Field<T> = Result<Option<T>, Refused>;

/// A value whose error is already recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused;

/// A JSON object of the body under reading, at its path.
pub struct Object<'v> {
    at: At,
    map: &'v Map<String, Value>,
}

impl<'v> Object<'v> {
    pub fn new(at: At, map: &'v Map<String, Value>) -> Self {
        Object { at, map }
    }

    /// `value` (at `at`) as an object, or its error.
    pub fn of(value: &'v Value, at: At) -> Result<Self, ErrorItem> {
        match value {
            Value::Object(map) => Ok(Object { at, map }),
            _ => Err(wrong_type(&at, "an object")),
        }
    }

    /// Where its field `key` is.
    pub fn at_key(&self, key: &str) -> At {
        self.at.key(key)
    }

    pub fn get(&self, key: &str) -> Option<&'v Value> {
        self.map.get(key)
    }

    pub fn keys(&self) -> impl Iterator<Item = &'v str> + use<'v> {
        self.map.keys().map(String::as_str)
    }

    /// The first field whose name is not `known`, as its error.
    pub fn first_unknown(&self, known: impl Fn(&str) -> bool) -> Option<ErrorItem> {
        self.keys()
            .find(|k| !known(k))
            .map(|k| unknown_field(&self.at_key(k)))
    }

    /// Records an error for every field whose name is not `known`.
    pub fn refuse_unknown(&self, errors: &mut Errors, known: impl Fn(&str) -> bool) {
        for key in self.keys().filter(|k| !known(k)) {
            errors.push(unknown_field(&self.at_key(key)));
        }
    }

    fn typed<T>(
        &self,
        key: &str,
        errors: &mut Errors,
        expected: &str,
        pick: impl FnOnce(&'v Value) -> Option<T>,
    ) -> Field<T> {
        match self.map.get(key) {
            None => Ok(None),
            Some(value) => match pick(value) {
                Some(v) => Ok(Some(v)),
                None => {
                    errors.push(wrong_type(&self.at_key(key), expected));
                    Err(Refused)
                }
            },
        }
    }

    pub fn string(&self, key: &str, errors: &mut Errors) -> Field<&'v str> {
        self.typed(key, errors, "a string", Value::as_str)
    }

    pub fn bool(&self, key: &str, errors: &mut Errors) -> Field<bool> {
        self.typed(key, errors, "a boolean", Value::as_bool)
    }

    pub fn array(&self, key: &str, errors: &mut Errors) -> Field<&'v [Value]> {
        self.typed(key, errors, "an array", |v| v.as_array().map(Vec::as_slice))
    }

    pub fn object(&self, key: &str, errors: &mut Errors) -> Field<&'v Map<String, Value>> {
        self.typed(key, errors, "an object", Value::as_object)
    }

    /// A field that must be present: absent is its `MISSING_FIELD` error.
    pub fn required<T>(&self, key: &str, field: Field<T>, errors: &mut Errors) -> Option<T> {
        match field {
            Ok(Some(v)) => Some(v),
            Ok(None) => {
                errors.push(missing(&self.at_key(key)));
                None
            }
            Err(Refused) => None,
        }
    }
}

// One constructor per kind of error, each with its one message. Messages are sentences that
// name the offending value, so they read well on their own.

/// `UNKNOWN_FIELD`: a field no body of this request has.
pub fn unknown_field(at: &At) -> ErrorItem {
    ErrorItem::new(
        "UNKNOWN_FIELD",
        format!("{at} is not a field of this request"),
    )
    .field(at.as_str())
}

/// `MISSING_FIELD`: a required field is absent.
pub fn missing(at: &At) -> ErrorItem {
    ErrorItem::new("MISSING_FIELD", format!("{at} is required")).field(at.as_str())
}

/// `INVALID_VALUE`: a value of the wrong JSON type; `expected` is e.g. "a string".
pub fn wrong_type(at: &At, expected: &str) -> ErrorItem {
    invalid(at, format_args!("must be {expected}"))
}

/// `INVALID_VALUE`: a value its type refuses; `why` completes the sentence "{at} ...", and
/// comes from the constant or type that enforces the rule (e.g. `must be an integer from 0 to
/// 1000000` from `Allocation::MAX_LIMIT`).
pub fn invalid(at: &At, why: impl fmt::Display) -> ErrorItem {
    ErrorItem::new("INVALID_VALUE", format!("{at} {why}")).field(at.as_str())
}

/// `INVALID_VALUE`: a text longer than its limit.
pub fn too_long(at: &At, max_chars: usize) -> ErrorItem {
    invalid(at, format_args!("must be at most {max_chars} characters"))
}

/// `DUPLICATE_NAME`: a name repeated within one list.
pub fn duplicate_name(at: &At, name: &str, list: &str) -> ErrorItem {
    ErrorItem::new(
        "DUPLICATE_NAME",
        format!("{name} is named more than once in {list}"),
    )
    .field(at.as_str())
    .name(name)
}

/// Which catalog a service name was looked up in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Catalog {
    User,
    Group,
}

/// `UNKNOWN_SERVICE`: a name that is no service of the catalog.
pub fn unknown_service(at: &At, name: &str, catalog: Catalog) -> ErrorItem {
    let kind = match catalog {
        Catalog::User => "user",
        Catalog::Group => "group",
    };
    ErrorItem::new(
        "UNKNOWN_SERVICE",
        format!("{name:?} is not a {kind} service of the catalog"),
    )
    .field(at.as_str())
    .name(name)
}

/// `TOO_MANY_ITEMS`: a request naming more than one request may (`limit`, from the constant
/// that enforces it).
pub fn too_many(what: &str, limit: usize, count: usize) -> ErrorItem {
    ErrorItem::new(
        "TOO_MANY_ITEMS",
        format!("a request may name at most {limit} {what}; this one names {count}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Anything;

    impl FromBody for Anything {
        fn parse(_: &Object<'_>, _: &PathIds, _: &mut Errors) -> Option<Self> {
            Some(Anything)
        }
    }

    struct Filter;

    impl FromBody for Filter {
        const OPTIONAL: bool = true;

        fn parse(_: &Object<'_>, _: &PathIds, _: &mut Errors) -> Option<Self> {
            Some(Filter)
        }
    }

    fn code(result: Result<Anything, ApiError>) -> &'static str {
        match result {
            Err(ApiError::BadRequest(items)) => items[0].code,
            Err(other) => panic!("expected a 400, got {other:?}"),
            Ok(_) => panic!("expected a 400"),
        }
    }

    #[test]
    fn bodies_that_are_not_utf8_json_objects_are_400s() {
        let ids = PathIds::default();
        assert_eq!(code(parse(b"\xff\xfe{}", &ids)), "INVALID_JSON");
        assert_eq!(code(parse(b"[1]", &ids)), "INVALID_BODY");
        assert_eq!(code(parse(b"{\"a\": ", &ids)), "INVALID_JSON");
        assert_eq!(code(parse(b"null", &ids)), "INVALID_BODY");
        assert_eq!(code(parse(b" \n", &ids)), "INVALID_BODY");
        assert_eq!(code(parse(br#"{"a": 1, "a": 2}"#, &ids)), "DUPLICATE_FIELD");
        assert!(parse::<Filter>(b" \n", &ids).is_ok());
        assert!(parse::<Anything>(b"{}", &ids).is_ok());
    }

    #[test]
    fn the_cursor_names_every_problem_with_its_path() {
        let value = serde_json::json!({"a": {"b": 1, "c": "x"}, "d": true});
        let map = value.as_object().unwrap();
        let body = Object::new(At::default(), map);
        let mut errors = Errors::default();
        let a = Object::new(
            body.at_key("a"),
            body.object("a", &mut errors).unwrap().unwrap(),
        );
        assert_eq!(a.string("b", &mut errors), Err(Refused));
        assert_eq!(a.string("c", &mut errors), Ok(Some("x")));
        assert_eq!(a.required("e", a.bool("e", &mut errors), &mut errors), None);
        body.refuse_unknown(&mut errors, |k| k == "a");
        let fields: Vec<_> = errors.0.iter().map(|e| (e.code, e.field.clone())).collect();
        assert_eq!(
            fields,
            [
                ("INVALID_VALUE", Some("a.b".to_owned())),
                ("MISSING_FIELD", Some("a.e".to_owned())),
                ("UNKNOWN_FIELD", Some("d".to_owned())),
            ]
        );
        assert_eq!(errors.0[0].message, "a.b must be a string");
    }
}
