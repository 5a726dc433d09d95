//! The router of the user-services function: the operator-defined configuration of user
//! services. [`router`] is the one list of its routes; every route is configuration, which
//! `domain/access.rs` lets every role read and only operators write ([`authorize`]).

use super::auth::Caller;
use super::conditional::{self, IfMatchHeader};
use super::extract::Input;
use super::front::{self, RouteBoth};
use super::idempotency::idempotent;
use super::path::{ConfigPath, PathIds};
use super::user_services_body::{InstanceSource, parse_config, parse_filter};
use super::write::Write;
use super::{
    ApiError, ErrorItem, audience_query, json_object_body, json_response, optional_json_object_body,
};
use crate::domain::{InstanceName, Target, UserServiceConfig};
use crate::store::ConfigStore;
use crate::store::idempotency::KeepsRecords;
use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;
use serde::Serialize;
use serde_json::{Map, Value};
use std::sync::Arc;
use std::time::Duration;

pub const CONFIGS: &str = "/api/v1/configs/user_services";
pub const CONFIG: &str = "/api/v1/configs/user_services/{instance_name}";

type Shared<C> = State<Arc<C>>;

/// Every route of the user-services function, each with and without its trailing slash.
pub fn router<C: ConfigStore + KeepsRecords + 'static>(store: C, deadline: Duration) -> Router {
    let records = store.idempotency_records();
    let routes = Router::new()
        .route_both(CONFIGS, get(list::<C>).post(create::<C>))
        .route_both(
            CONFIG,
            get(get_one::<C>).put(replace::<C>).delete(delete::<C>),
        )
        .method_not_allowed_fallback(front::method_not_allowed)
        .route_layer(middleware::from_fn_with_state(records, idempotent))
        .route_layer(middleware::from_fn(authorize))
        .with_state(Arc::new(store));
    front::finish(routes, deadline)
}

/// Who may call what: every route here touches the configuration.
async fn authorize(
    caller: Caller,
    route: MatchedPath,
    ids: Result<PathIds, ApiError>,
    req: Request,
    next: Next,
) -> Response {
    let verdict = ids.and_then(|ids| {
        caller.check(Target::Configs, req.method())?;
        Ok(ids)
    });
    front::admit(route, verdict, req, next).await
}

/// The whole object, as GET, POST and PUT answer it.
#[derive(Serialize)]
struct ConfigView<'a> {
    technical_name: &'a str,
    display_name: &'a str,
    description: &'a str,
    no_more_assignable: bool,
    for_hg: bool,
    for_ivr: bool,
    for_cc: bool,
    for_enduser: bool,
    add_data: &'a Map<String, Value>,
    instance_name: &'a str,
}

impl<'a> From<&'a UserServiceConfig> for ConfigView<'a> {
    fn from(c: &'a UserServiceConfig) -> Self {
        ConfigView {
            technical_name: c.technical_name.name(),
            display_name: &c.display_name,
            description: &c.description,
            no_more_assignable: c.no_more_assignable,
            for_hg: c.audience.for_hg,
            for_ivr: c.audience.for_ivr,
            for_cc: c.audience.for_cc,
            for_enduser: c.audience.for_enduser,
            add_data: &c.add_data,
            instance_name: c.instance_name.as_str(),
        }
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

async fn list<C: ConfigStore>(State(store): Shared<C>, input: Input) -> Result<Response, ApiError> {
    let req = &input;
    // Existing clients send the filters as a JSON body on the GET; others as query parameters.
    let from_query = audience_query(req)?;
    let from_body = match optional_json_object_body(req)? {
        Some(body) => parse_filter(&body).map_err(ApiError::BadRequest)?,
        None => Default::default(),
    };
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

async fn get_one<C: ConfigStore>(
    State(store): Shared<C>,
    ConfigPath(name): ConfigPath,
) -> Result<Response, ApiError> {
    let name = &name;
    match store.user_service_config(name).await? {
        Some(config) => Ok(conditional::strong(
            json_response(StatusCode::OK, &ConfigView::from(&config.value)),
            &config.etag,
        )),
        None => Err(no_such(name)),
    }
}

async fn create<C: ConfigStore>(
    State(store): Shared<C>,
    write: Write,
    input: Input,
) -> Result<Response, ApiError> {
    let body = json_object_body(&input)?;
    let config = parse_config(&body, InstanceSource::Body).map_err(ApiError::BadRequest)?;
    let (ctx, answer) = write.answer(StatusCode::CREATED, &ConfigView::from(&config));
    if store.create_user_service_config(&ctx, &config).await? {
        Ok(answer)
    } else {
        Err(ApiError::Conflict(vec![
            ErrorItem::new(
                "ALREADY_EXISTS",
                format!("instance {} already exists", config.instance_name),
            )
            .field("instance_name")
            .name(config.instance_name.as_str()),
        ]))
    }
}

async fn replace<C: ConfigStore>(
    State(store): Shared<C>,
    ConfigPath(name): ConfigPath,
    IfMatchHeader(if_match): IfMatchHeader,
    write: Write,
    input: Input,
) -> Result<Response, ApiError> {
    let body = json_object_body(&input)?;
    let config = parse_config(&body, InstanceSource::Path(&name)).map_err(ApiError::BadRequest)?;
    let (ctx, answer) = write.answer(StatusCode::OK, &ConfigView::from(&config));
    store
        .put_user_service_config(&ctx, &config, if_match.as_ref())
        .await?;
    Ok(answer)
}

async fn delete<C: ConfigStore>(
    State(store): Shared<C>,
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
