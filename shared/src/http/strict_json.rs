//! JSON parsing that refuses an object with a repeated key. serde_json keeps the last of two
//! equal keys silently (`{"maximum": 7, "maximum": 0}` is a maximum of 0), so a client's typo or
//! a merge gone wrong would change what it meant; here it is a 400 naming the key's JSON path.

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use std::fmt;

const DUPLICATE: &str = "duplicate field ";

/// Why a body was refused.
#[derive(Debug, PartialEq)]
pub enum StrictError {
    /// The JSON path of the repeated key, e.g. `userServices[0].allocated.maximum`.
    Duplicate(String),
    /// Not JSON (or not UTF-8); the parser's message.
    Invalid(String),
}

/// Parses `bytes` as JSON, refusing any object that names a key twice.
pub fn parse(bytes: &[u8]) -> Result<Value, StrictError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = Strict {
        path: String::new(),
    }
    .deserialize(&mut deserializer)
    .and_then(|v| deserializer.end().map(|()| v))
    .map_err(|e| {
        let message = e.to_string();
        match message.strip_prefix(DUPLICATE) {
            // serde_json appends " at line L column C" to a custom error.
            Some(rest) => StrictError::Duplicate(
                rest.rfind(" at line ")
                    .map_or(rest, |end| &rest[..end])
                    .to_owned(),
            ),
            None => StrictError::Invalid(message),
        }
    })?;
    Ok(value)
}

/// A value at `path`, with its own path for the keys below it.
struct Strict {
    path: String,
}

impl Strict {
    fn child(&self, key: &str) -> Strict {
        Strict {
            path: if self.path.is_empty() {
                key.to_owned()
            } else {
                format!("{}.{key}", self.path)
            },
        }
    }
}

impl<'de> DeserializeSeed<'de> for Strict {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Strict {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        loop {
            let seed = Strict {
                path: format!("{}[{}]", self.path, items.len()),
            };
            match seq.next_element_seed(seed)? {
                Some(item) => items.push(item),
                None => return Ok(Value::Array(items)),
            }
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let child = self.child(&key);
            if object.contains_key(&key) {
                return Err(de::Error::custom(format!("{DUPLICATE}{}", child.path)));
            }
            let value = map.next_value_seed(child)?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_keys_are_refused_with_their_path() {
        assert_eq!(
            parse(br#"{"unlimited": false, "maximum": 7, "maximum": 0}"#),
            Err(StrictError::Duplicate("maximum".into()))
        );
        assert_eq!(
            parse(br#"{"userServices": [], "userServices": []}"#),
            Err(StrictError::Duplicate("userServices".into()))
        );
        assert_eq!(
            parse(br#"{"a": [{"b": {"c": 1, "c": 2}}]}"#),
            Err(StrictError::Duplicate("a[0].b.c".into()))
        );
    }

    #[test]
    fn everything_else_parses_as_serde_json_does() {
        let text = r#"{"a": [1, -2, 3.5, "x", null, true, {"b": {}}], "c": {"a": 1}}"#;
        assert_eq!(
            parse(text.as_bytes()).unwrap(),
            serde_json::from_str::<Value>(text).unwrap()
        );
        assert!(matches!(parse(b"{} x"), Err(StrictError::Invalid(_))));
        assert!(matches!(parse(b"\xff"), Err(StrictError::Invalid(_))));
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        assert!(matches!(
            parse(deep.as_bytes()),
            Err(StrictError::Invalid(_))
        ));
    }
}
