//! The operator-defined configuration of user services: `/api/v1/configs/user_services/`
//! (list, create) and `.../user_services/{instance_name}/` (read, replace, delete). Every role
//! reads it; only operators write it (the user-services function's router).

use super::body::{
    Body, Catalog, Errors, FromBody, Object, invalid, too_long, unknown_field, unknown_service,
};
use super::conditional::{self, IfMatchHeader};
use super::error::{ApiError, ErrorItem};
use super::path::{ConfigPath, PathIds};
use super::query::Query;
use super::response::json_response;
use super::state::Configs;
use super::write::Write;
use crate::domain::{Audience, InstanceName, UserService, UserServiceConfig};
use crate::store::ConfigStore;
use crate::store::dynamo::DynamoConfigStore;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{MethodRouter, get};
use serde::Serialize;
use serde_json::Map;

pub const COLLECTION: &str = "/api/v1/configs/user_services";
pub const ITEM: &str = "/api/v1/configs/user_services/{instance_name}";
/// The path segment of the configuration's audit trail, which no instance may be named.
const AUDIT_SEGMENT: &str = "audit";

pub fn collection() -> MethodRouter<DynamoConfigStore> {
    get(list).post(create)
}

pub fn item() -> MethodRouter<DynamoConfigStore> {
    get(get_one).put(replace).delete(delete)
}

/// A configuration object. Omitted fields take their defaults. On PUT the path names the
/// instance, and a body `instance_name`, if present, must agree.
impl FromBody for UserServiceConfig {
    fn parse(body: &Object<'_>, path: &PathIds, errors: &mut Errors) -> Option<Self> {
        body.refuse_unknown(errors, |k| {
            matches!(
                k,
                "instance_name"
                    | "technical_name"
                    | "display_name"
                    | "description"
                    | "no_more_assignable"
                    | "add_data"
            ) || Audience::FIELDS.contains(&k)
        });
        let at = |key: &str| body.at_key(key);
        let instance_name = match (body.string("instance_name", errors), &path.instance) {
            (Ok(Some(name)), Some(path)) if name != path.as_str() => {
                errors.push(invalid(&at("instance_name"), "does not match the path"));
                None
            }
            (Ok(_), Some(path)) => Some(path.clone()),
            // `.../user_services/audit/` is the configuration's audit trail.
            (Ok(Some(AUDIT_SEGMENT)), None) => {
                errors.push(invalid(
                    &at("instance_name"),
                    "is reserved: .../user_services/audit/ is the audit trail",
                ));
                None
            }
            (named, None) => body
                .required("instance_name", named, errors)
                .and_then(|name| {
                    errors.take(
                        InstanceName::parse(name).map_err(|e| invalid(&at("instance_name"), e)),
                    )
                }),
            (Err(_), Some(_)) => None,
        };
        let technical_name = body
            .required(
                "technical_name",
                body.string("technical_name", errors),
                errors,
            )
            .and_then(|name| {
                errors.take(
                    UserService::parse(name)
                        .map_err(|_| unknown_service(&at("technical_name"), name, Catalog::User)),
                )
            });
        let text = |key: &str, max: usize, errors: &mut Errors| match body.string(key, errors) {
            Ok(Some(text)) if text.chars().count() > max => {
                errors.push(too_long(&at(key), max));
                Err(())
            }
            Ok(text) => Ok(text),
            Err(_) => Err(()),
        };
        let display_name = match text(
            "display_name",
            UserServiceConfig::MAX_DISPLAY_NAME_CHARS,
            errors,
        ) {
            Ok(Some("")) => {
                errors.push(invalid(&at("display_name"), "must not be empty"));
                None
            }
            other => other.ok(),
        };
        let description = text(
            "description",
            UserServiceConfig::MAX_DESCRIPTION_CHARS,
            errors,
        )
        .ok();
        let mut flag = |key: &str| body.bool(key, errors).ok().flatten().unwrap_or(false);
        let no_more_assignable = flag("no_more_assignable");
        let mut audience = Audience::default();
        for field in Audience::FIELDS {
            audience.set(field, flag(field));
        }
        let add_data = match body.object("add_data", errors) {
            Ok(None) => Some(Map::new()),
            Ok(Some(map)) => {
                let size = serde_json::to_string(map).map_or(usize::MAX, |s| s.len());
                if size > UserServiceConfig::MAX_ADD_DATA_BYTES {
                    errors.push(invalid(
                        &at("add_data"),
                        format_args!(
                            "must be at most {} bytes serialized",
                            UserServiceConfig::MAX_ADD_DATA_BYTES
                        ),
                    ));
                    None
                } else {
                    Some(map.clone())
                }
            }
            Err(_) => None,
        };
        let technical_name = technical_name?;
        Some(UserServiceConfig {
            instance_name: instance_name?,
            display_name: display_name?
                .map_or_else(|| technical_name.name().to_owned(), str::to_owned),
            technical_name,
            description: description?.unwrap_or_default().to_owned(),
            no_more_assignable,
            audience,
            add_data: add_data?,
        })
    }
}

/// The list filter some clients send as a GET body (`{"for_hg": true}`): only the four flags,
/// as booleans; an empty body filters nothing.
pub struct Filter(Audience);

impl FromBody for Filter {
    const OPTIONAL: bool = true;

    fn parse(body: &Object<'_>, _: &PathIds, errors: &mut Errors) -> Option<Self> {
        let mut filter = Audience::default();
        for key in body.keys() {
            if Audience::FIELDS.contains(&key) {
                filter.set(key, body.bool(key, errors).ok().flatten().unwrap_or(false));
            } else {
                errors.push(unknown_field(&body.at_key(key)));
            }
        }
        Some(Filter(filter))
    }
}

/// One entry of the list.
#[derive(Serialize)]
struct SummaryView<'a> {
    technical_name: &'a str,
    display_name: &'a str,
    description: &'a str,
    no_more_assignable: bool,
    instance_name: &'a str,
}

#[derive(Serialize)]
struct ListView<'a> {
    user_services: Vec<SummaryView<'a>>,
}

fn no_such(name: &InstanceName) -> ApiError {
    ApiError::NoSuch(format!(
        "there is no user-services configuration instance {:?}",
        name.as_str()
    ))
}

/// Existing clients send the filters as a JSON body on the GET; others as query parameters.
async fn list(
    store: Configs,
    query: Query,
    body: Result<Body<Filter>, ApiError>,
) -> Result<Response, ApiError> {
    // The query's errors first, then the body's.
    let from_query = query.audience()?;
    let Body(Filter(from_body)) = body?;
    let filter = from_query.and(from_body);
    let configs = store.user_service_configs().await?;
    let view = ListView {
        user_services: configs
            .iter()
            .filter(|c| filter.admits(&c.audience))
            .map(|c| SummaryView {
                technical_name: c.technical_name.name(),
                display_name: &c.display_name,
                description: &c.description,
                no_more_assignable: c.no_more_assignable,
                instance_name: c.instance_name.as_str(),
            })
            .collect(),
    };
    Ok(json_response(StatusCode::OK, &view))
}

async fn get_one(store: Configs, ConfigPath(name): ConfigPath) -> Result<Response, ApiError> {
    match store.user_service_config(&name).await? {
        Some(config) => Ok(conditional::strong(
            json_response(StatusCode::OK, &config.value.view()),
            &config.etag,
        )),
        None => Err(no_such(&name)),
    }
}

async fn create(
    store: Configs,
    write: Write,
    Body(config): Body<UserServiceConfig>,
) -> Result<Response, ApiError> {
    let (ctx, answer) = write.answer(StatusCode::CREATED, &config.view());
    if store.create_user_service_config(&ctx, &config).await? {
        Ok(answer)
    } else {
        Err(ApiError::Conflict(vec![ErrorItem::already_exists(
            "instance_name",
            "the user-services configuration instance",
            config.instance_name.as_str(),
        )]))
    }
}

async fn replace(
    store: Configs,
    IfMatchHeader(if_match): IfMatchHeader,
    write: Write,
    Body(config): Body<UserServiceConfig>,
) -> Result<Response, ApiError> {
    let (ctx, answer) = write.answer(StatusCode::OK, &config.view());
    store
        .put_user_service_config(&ctx, &config, if_match.as_ref())
        .await?;
    Ok(answer)
}

async fn delete(
    store: Configs,
    ConfigPath(name): ConfigPath,
    IfMatchHeader(if_match): IfMatchHeader,
    write: Write,
) -> Result<Response, ApiError> {
    let (ctx, answer) = write.no_content();
    if store
        .delete_user_service_config(&ctx, &name, if_match.as_ref())
        .await?
    {
        Ok(answer)
    } else {
        Err(no_such(&name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn map(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => panic!("test bodies are objects"),
        }
    }

    /// Where the instance name of an object comes from.
    enum InstanceSource<'a> {
        /// POST: the body must carry `instance_name`.
        Body,
        /// PUT: the path names it.
        Path(&'a InstanceName),
    }

    fn read<T: FromBody>(body: &Map<String, Value>, ids: &PathIds) -> Result<T, Vec<ErrorItem>> {
        let bytes = serde_json::to_vec(body).unwrap();
        match super::super::body::parse::<T>(&bytes, ids) {
            Ok(value) => Ok(value),
            Err(ApiError::BadRequest(errors)) => Err(errors),
            Err(other) => panic!("expected a 400, got {other:?}"),
        }
    }

    fn parse_config(
        body: &Map<String, Value>,
        instance: InstanceSource<'_>,
    ) -> Result<UserServiceConfig, Vec<ErrorItem>> {
        let ids = PathIds {
            instance: match instance {
                InstanceSource::Body => None,
                InstanceSource::Path(name) => Some(name.clone()),
            },
            ..PathIds::default()
        };
        read(body, &ids)
    }

    fn parse_filter(body: &Map<String, Value>) -> Result<Audience, Vec<ErrorItem>> {
        read::<Filter>(body, &PathIds::default()).map(|f| f.0)
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
