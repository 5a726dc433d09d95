//! The JSON of user-services configuration objects and list filters, parsed into domain types.
//! Every bad field gets its own error naming it; unknown fields are refused.

use super::ErrorItem;
use crate::domain::{Audience, InstanceName, UserService, UserServiceConfig};
use serde_json::{Map, Value};

/// Where the instance name of an object comes from.
pub enum InstanceSource<'a> {
    /// POST: the body must carry `instance_name`.
    Body,
    /// PUT: the path names it; a body `instance_name`, if present, must agree.
    Path(&'a InstanceName),
}

fn error(code: &'static str, field: &str, message: impl std::fmt::Display) -> ErrorItem {
    ErrorItem::new(code, format!("{field} {message}")).field(field)
}

fn string<'a>(body: &'a Map<String, Value>, field: &str) -> Result<Option<&'a str>, ErrorItem> {
    match body.get(field) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(error("INVALID_VALUE", field, "must be a string")),
    }
}

fn bounded(value: &str, field: &str, max_chars: usize) -> Result<(), ErrorItem> {
    if value.chars().count() > max_chars {
        return Err(error(
            "INVALID_VALUE",
            field,
            format_args!("must be at most {max_chars} characters"),
        ));
    }
    Ok(())
}

/// Parses a configuration object. Omitted fields take their defaults.
pub fn parse_config(
    body: &Map<String, Value>,
    instance: InstanceSource<'_>,
) -> Result<UserServiceConfig, Vec<ErrorItem>> {
    let mut errors = Vec::new();
    let mut check = |r: Result<(), ErrorItem>| {
        if let Err(e) = r {
            errors.push(e);
        }
    };

    for key in body.keys() {
        let known = matches!(
            key.as_str(),
            "instance_name"
                | "technical_name"
                | "display_name"
                | "description"
                | "no_more_assignable"
                | "add_data"
        ) || Audience::FIELDS.contains(&key.as_str());
        if !known {
            check(Err(error(
                "UNKNOWN_FIELD",
                key,
                "is not a field of this object",
            )));
        }
    }

    let instance_name = match (string(body, "instance_name"), instance) {
        (Err(e), _) => Err(e),
        (Ok(None), InstanceSource::Body) => {
            Err(error("MISSING_FIELD", "instance_name", "is required"))
        }
        (Ok(Some(name)), InstanceSource::Body) => {
            InstanceName::parse(name).map_err(|e| error("INVALID_VALUE", "instance_name", e))
        }
        (Ok(None), InstanceSource::Path(path)) => Ok(path.clone()),
        (Ok(Some(name)), InstanceSource::Path(path)) if name == path.as_str() => Ok(path.clone()),
        (Ok(Some(_)), InstanceSource::Path(_)) => Err(error(
            "INVALID_VALUE",
            "instance_name",
            "does not match the instance name of the path",
        )),
    };
    let instance_name = instance_name.map_err(|e| check(Err(e))).ok();

    let technical_name = match string(body, "technical_name") {
        Ok(Some(name)) => UserService::parse(name).map_err(|_| {
            error(
                "UNKNOWN_SERVICE",
                "technical_name",
                format_args!("{name:?} is not a user service of the catalog"),
            )
            .name(name)
        }),
        Ok(None) => Err(error("MISSING_FIELD", "technical_name", "is required")),
        Err(e) => Err(e),
    };
    let technical_name = technical_name.map_err(|e| check(Err(e))).ok();

    let display_name = match string(body, "display_name") {
        Ok(Some("")) => Err(error("INVALID_VALUE", "display_name", "must not be empty")),
        Ok(Some(name)) => bounded(
            name,
            "display_name",
            UserServiceConfig::MAX_DISPLAY_NAME_CHARS,
        )
        .map(|()| Some(name.to_owned())),
        Ok(None) => Ok(None),
        Err(e) => Err(e),
    };
    let display_name = display_name.map_err(|e| check(Err(e))).ok().flatten();

    let description = match string(body, "description") {
        Ok(Some(text)) => bounded(
            text,
            "description",
            UserServiceConfig::MAX_DESCRIPTION_CHARS,
        )
        .map(|()| text.to_owned()),
        Ok(None) => Ok(String::new()),
        Err(e) => Err(e),
    };
    let description = description
        .map_err(|e| check(Err(e)))
        .ok()
        .unwrap_or_default();

    let mut flag = |field: &str| match body.get(field) {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            check(Err(error("INVALID_VALUE", field, "must be a boolean")));
            false
        }
    };
    let no_more_assignable = flag("no_more_assignable");
    let mut audience = Audience::default();
    for field in Audience::FIELDS {
        audience.set(field, flag(field));
    }

    let add_data = match body.get("add_data") {
        None => Ok(Map::new()),
        Some(Value::Object(map)) => {
            let size = serde_json::to_string(map).map_or(usize::MAX, |s| s.len());
            if size > UserServiceConfig::MAX_ADD_DATA_BYTES {
                Err(error(
                    "INVALID_VALUE",
                    "add_data",
                    format_args!(
                        "must be at most {} bytes serialized",
                        UserServiceConfig::MAX_ADD_DATA_BYTES
                    ),
                ))
            } else {
                Ok(map.clone())
            }
        }
        Some(_) => Err(error("INVALID_VALUE", "add_data", "must be a JSON object")),
    };
    let add_data = add_data.map_err(|e| check(Err(e))).ok();

    match (instance_name, technical_name, add_data) {
        (Some(instance_name), Some(technical_name), Some(add_data)) if errors.is_empty() => {
            Ok(UserServiceConfig {
                instance_name,
                display_name: display_name.unwrap_or_else(|| technical_name.name().to_owned()),
                technical_name,
                description,
                no_more_assignable,
                audience,
                add_data,
            })
        }
        _ => Err(errors),
    }
}

/// The list filter of a GET body (`{"for_hg": true}`): only the four flags, as booleans.
pub fn parse_filter(body: &Map<String, Value>) -> Result<Audience, Vec<ErrorItem>> {
    let mut filter = Audience::default();
    let mut errors = Vec::new();
    for (key, value) in body {
        match value {
            Value::Bool(b) if filter.set(key, *b) => {}
            _ if Audience::FIELDS.contains(&key.as_str()) => {
                errors.push(error("INVALID_VALUE", key, "must be a boolean"));
            }
            _ => errors.push(error("UNKNOWN_FIELD", key, "is not a filter of this list")),
        }
    }
    if errors.is_empty() {
        Ok(filter)
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => panic!("test bodies are objects"),
        }
    }

    #[test]
    fn omitted_fields_take_their_defaults() {
        let c = parse_config(
            &map(json!({"instance_name": "For_HG", "technical_name": "Basic Call Logs"})),
            InstanceSource::Body,
        )
        .unwrap();
        assert_eq!(c.instance_name.as_str(), "For_HG");
        assert_eq!(c.display_name, "Basic Call Logs");
        assert_eq!(c.description, "");
        assert!(!c.no_more_assignable);
        assert_eq!(c.audience, Audience::default());
        assert!(c.add_data.is_empty());
    }

    #[test]
    fn the_documented_object_parses() {
        let c = parse_config(
            &map(json!({"technical_name": "Basic Call Logs", "display_name": "Basic Call Logs",
                        "description": "", "no_more_assignable": false, "for_hg": true,
                        "for_ivr": false, "for_cc": false, "for_enduser": false, "add_data": {"k": [1]}})),
            InstanceSource::Path(&InstanceName::parse("For_HG").unwrap()),
        )
        .unwrap();
        assert!(c.audience.for_hg && !c.audience.for_cc);
        assert_eq!(c.add_data, map(json!({"k": [1]})));
    }

    #[test]
    fn every_bad_field_is_named() {
        let errs = parse_config(
            &map(
                json!({"instance_name": "a/b", "technical_name": "Hunt Group",
                        "display_name": "x".repeat(201), "description": 3, "for_hg": "yes",
                        "add_data": [], "colour": "red"}),
            ),
            InstanceSource::Body,
        )
        .unwrap_err();
        let mut fields: Vec<_> = errs.iter().filter_map(|e| e.field.clone()).collect();
        fields.sort();
        assert_eq!(
            fields,
            [
                "add_data",
                "colour",
                "description",
                "display_name",
                "for_hg",
                "instance_name",
                "technical_name"
            ]
        );
    }

    #[test]
    fn limits_are_inclusive() {
        let ok = parse_config(
            &map(
                json!({"instance_name": "x".repeat(80), "technical_name": "Call Return",
                        "display_name": "d".repeat(200), "description": "e".repeat(2000),
                        "add_data": {"p": "z".repeat(UserServiceConfig::MAX_ADD_DATA_BYTES - 8)}}),
            ),
            InstanceSource::Body,
        );
        assert!(ok.is_ok(), "{ok:?}");
        let big = parse_config(
            &map(
                json!({"instance_name": "i", "technical_name": "Call Return",
                        "add_data": {"p": "z".repeat(UserServiceConfig::MAX_ADD_DATA_BYTES - 7)}}),
            ),
            InstanceSource::Body,
        )
        .unwrap_err();
        assert_eq!(big[0].field.as_deref(), Some("add_data"));
    }

    #[test]
    fn a_body_instance_name_must_match_the_path() {
        let path = InstanceName::parse("A").unwrap();
        let errs = parse_config(
            &map(json!({"instance_name": "B", "technical_name": "Call Return"})),
            InstanceSource::Path(&path),
        )
        .unwrap_err();
        assert_eq!(errs[0].field.as_deref(), Some("instance_name"));
        assert!(
            parse_config(
                &map(json!({"instance_name": "A", "technical_name": "Call Return"})),
                InstanceSource::Path(&path)
            )
            .is_ok()
        );
    }

    #[test]
    fn filters_accept_only_the_four_flags_as_booleans() {
        let f = parse_filter(&map(json!({"for_hg": true, "for_cc": false}))).unwrap();
        assert!(f.for_hg && !f.for_cc);
        let errs = parse_filter(&map(json!({"for_hg": "true", "for_xx": true}))).unwrap_err();
        assert_eq!(errs.len(), 2);
    }
}
