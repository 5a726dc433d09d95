//! Items and attributes: the one place that builds keys and reads or writes attribute values.
//! Imports nothing from the files beside it.

use crate::store::StoreError;
use aws_sdk_dynamodb::types::AttributeValue;
use std::collections::HashMap;

/// A DynamoDB item: attribute name to value.
pub type Item = HashMap<String, AttributeValue>;

/// The primary key of an item.
pub(crate) fn key(pk: &str, sk: String) -> Item {
    HashMap::from([
        ("PK".to_owned(), AttributeValue::S(pk.to_owned())),
        ("SK".to_owned(), AttributeValue::S(sk)),
    ])
}

/// A request builder's result; a missing required field is our defect, reported as such
/// rather than a panic.
pub(crate) fn built<T, E: std::fmt::Display>(r: Result<T, E>) -> Result<T, StoreError> {
    r.map_err(|e| StoreError::Defect(e.to_string()))
}

/// A string attribute value.
pub(crate) fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_owned())
}

/// A number attribute value (`u32`, `u64`, `i64`…).
pub(crate) fn number(n: impl std::fmt::Display) -> AttributeValue {
    AttributeValue::N(n.to_string())
}

/// A string attribute of an item.
pub(crate) fn read_str<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    match item.get(name) {
        Some(AttributeValue::S(s)) => Some(s),
        _ => None,
    }
}

/// A number attribute of an item, if it is one of type `T`.
pub(crate) fn read_number<T: std::str::FromStr>(item: &Item, name: &str) -> Option<T> {
    match item.get(name) {
        Some(AttributeValue::N(n)) => n.parse().ok(),
        _ => None,
    }
}

pub(crate) fn read_u32(item: &Item, name: &str) -> Option<u32> {
    read_number(item, name)
}

pub(crate) fn read_bool(item: &Item, name: &str) -> bool {
    matches!(item.get(name), Some(AttributeValue::Bool(true)))
}
