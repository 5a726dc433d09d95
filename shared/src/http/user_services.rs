//! Routes of the user-services function (the operator-defined configuration).
//!
//! | route                                              | methods          |
//! |----------------------------------------------------|------------------|
//! | `/api/v1/configs/user_services/`                   | GET (list), POST |
//! | `/api/v1/configs/user_services/{instance_name}/`   | GET, PUT, DELETE |

use super::auth::{AuthMode, Routes, admit};
use super::path::{decode, segments};
use super::user_services_body::{InstanceSource, parse_config, parse_filter};
use super::{
    ApiError, ErrorItem, audience_query, json_object_body, json_response, optional_json_object_body,
};
use crate::domain::{InstanceName, Target, UserServiceConfig};
use crate::store::ConfigStore;
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};
use serde::Serialize;
use serde_json::{Map, Value};

#[derive(Debug, PartialEq)]
pub enum Route {
    List,
    Instance(InstanceName),
}

const LIST: &str = "/api/v1/configs/user_services/";
const INSTANCE: &str = "/api/v1/configs/user_services/{instance_name}/";

impl Route {
    pub fn template(&self) -> &'static str {
        match self {
            Route::List => LIST,
            Route::Instance(_) => INSTANCE,
        }
    }

    pub fn parse(path: &str) -> Result<Route, ApiError> {
        let mut s = segments(path);
        let mut next = || s.next();
        match (next(), next(), next(), next(), next(), next()) {
            (Some("api"), Some("v1"), Some("configs"), Some("user_services"), None, None) => {
                Ok(Route::List)
            }
            (Some("api"), Some("v1"), Some("configs"), Some("user_services"), Some(raw), None) => {
                let bad = |message: String| {
                    ApiError::bad_request(
                        ErrorItem::new("INVALID_ID", message).field("instance_name"),
                    )
                };
                let name = decode(raw)
                    .ok_or_else(|| bad("instance_name is not valid UTF-8 once decoded".into()))?;
                InstanceName::parse(name.into_owned())
                    .map(Route::Instance)
                    .map_err(|e| bad(format!("instance_name {e}")))
            }
            _ => Err(ApiError::NotFound),
        }
    }
}

impl Routes for Route {
    fn parse(path: &str) -> Result<Route, ApiError> {
        Route::parse(path)
    }

    fn template(&self) -> &'static str {
        Route::template(self)
    }

    /// Every route here is configuration.
    fn target(&self) -> Target<'_> {
        Target::Configs
    }
}

/// Handles one request of the user-services function; returns the route template for the log.
pub async fn handle<C: ConfigStore>(
    store: &C,
    auth: AuthMode,
    req: Request,
) -> (&'static str, Response<Body>) {
    let route = match admit::<Route>(&req, auth) {
        Ok(route) => route,
        Err((name, refusal)) => return (name, refusal.into_response()),
    };
    let template = route.template();
    let result = match (route, req.method()) {
        (Route::List, &Method::GET) => list(store, &req).await,
        (Route::List, &Method::POST) => create(store, &req).await,
        (Route::List, _) => Err(ApiError::MethodNotAllowed("GET, POST")),
        (Route::Instance(name), &Method::GET) => get(store, &name).await,
        (Route::Instance(name), &Method::PUT) => replace(store, &name, &req).await,
        (Route::Instance(name), &Method::DELETE) => delete(store, &name).await,
        (Route::Instance(_), _) => Err(ApiError::MethodNotAllowed("GET, PUT, DELETE")),
    };
    (template, result.unwrap_or_else(ApiError::into_response))
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
        "there is no user-services configuration instance {name:?}"
    ))
}

fn unavailable<E>(_: E) -> ApiError {
    ApiError::Unavailable
}

async fn list<C: ConfigStore>(store: &C, req: &Request) -> Result<Response<Body>, ApiError> {
    // Existing clients send the filters as a JSON body on the GET; others as query parameters.
    let from_query = audience_query(req)?;
    let from_body = match optional_json_object_body(req)? {
        Some(body) => parse_filter(&body).map_err(ApiError::BadRequest)?,
        None => Default::default(),
    };
    let filter = from_query.and(from_body);
    let configs = store.user_service_configs().await.map_err(unavailable)?;
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

async fn get<C: ConfigStore>(store: &C, name: &InstanceName) -> Result<Response<Body>, ApiError> {
    match store.user_service_config(name).await.map_err(unavailable)? {
        Some(config) => Ok(json_response(StatusCode::OK, &ConfigView::from(&config))),
        None => Err(no_such(name)),
    }
}

async fn create<C: ConfigStore>(store: &C, req: &Request) -> Result<Response<Body>, ApiError> {
    let body = json_object_body(req)?;
    let config = parse_config(&body, InstanceSource::Body).map_err(ApiError::BadRequest)?;
    if store
        .create_user_service_config(&config)
        .await
        .map_err(unavailable)?
    {
        Ok(json_response(
            StatusCode::CREATED,
            &ConfigView::from(&config),
        ))
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
    store: &C,
    name: &InstanceName,
    req: &Request,
) -> Result<Response<Body>, ApiError> {
    let body = json_object_body(req)?;
    let config = parse_config(&body, InstanceSource::Path(name)).map_err(ApiError::BadRequest)?;
    store
        .put_user_service_config(&config)
        .await
        .map_err(unavailable)?;
    Ok(json_response(StatusCode::OK, &ConfigView::from(&config)))
}

async fn delete<C: ConfigStore>(
    store: &C,
    name: &InstanceName,
) -> Result<Response<Body>, ApiError> {
    if store
        .delete_user_service_config(name)
        .await
        .map_err(unavailable)?
    {
        let mut response = Response::new(Body::Empty);
        *response.status_mut() = StatusCode::NO_CONTENT;
        Ok(response)
    } else {
        Err(no_such(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_decode_instance_names() {
        assert_eq!(
            Route::parse("/api/v1/configs/user_services/").unwrap(),
            Route::List
        );
        assert_eq!(
            Route::parse("/api/v1/configs/user_services").unwrap(),
            Route::List
        );
        assert_eq!(
            Route::parse("/api/v1/configs/user_services/Basic%20Call%20Logs/").unwrap(),
            Route::Instance(InstanceName::parse("Basic Call Logs").unwrap())
        );
        assert!(matches!(
            Route::parse("/api/v1/configs/user_services/a%2Fb/"),
            Err(ApiError::BadRequest(_))
        ));
        assert!(matches!(
            Route::parse("/api/v1/configs/user_services/a/b/"),
            Err(ApiError::NotFound)
        ));
        assert!(matches!(
            Route::parse("/api/v1/configs/"),
            Err(ApiError::NotFound)
        ));
    }
}
