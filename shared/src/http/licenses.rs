//! Routes of the licenses function.
//!
//! | route                                                     | methods  | handler          |
//! |-----------------------------------------------------------|----------|------------------|
//! | `/api/v1/tenants/{tenant_id}/groups/{group_id}/licenses/` | GET, PUT | [`get_group`], [`put_group`] |
//!
//! Anything else is a JSON 404.

use super::licenses_body::{self, LicensesPut, List, licensable_name};
use super::path::{decode, segments};
use super::{ApiError, ErrorItem, audience_query, bool_query, json_object_body, json_response};
use crate::domain::{
    Allocation, GroupId, GroupLicenses, GroupRef, IdError, License, TenantId, UserService,
};
use crate::store::{ConfigStore, LicenseStore, RejectReason, StoreError};
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, RequestExt, Response};
use serde::Serialize;

/// A matched route with its decoded, validated path parameters.
#[derive(Debug, PartialEq)]
pub enum Route {
    GroupLicenses(GroupRef),
}

const GROUP_LICENSES: &str = "/api/v1/tenants/{tenant_id}/groups/{group_id}/licenses/";

impl Route {
    /// The route template, for logs.
    pub fn template(&self) -> &'static str {
        match self {
            Route::GroupLicenses(_) => GROUP_LICENSES,
        }
    }

    pub fn parse(path: &str) -> Result<Route, ApiError> {
        let mut s = segments(path);
        let mut next = || s.next();
        match (
            next(),
            next(),
            next(),
            next(),
            next(),
            next(),
            next(),
            next(),
        ) {
            (
                Some("api"),
                Some("v1"),
                Some("tenants"),
                Some(t),
                Some("groups"),
                Some(g),
                Some("licenses"),
                None,
            ) => Ok(Route::GroupLicenses(GroupRef {
                tenant: path_id("tenant_id", t, TenantId::parse)?,
                group: path_id("group_id", g, GroupId::parse)?,
            })),
            _ => Err(ApiError::NotFound),
        }
    }
}

fn path_id<T>(
    field: &'static str,
    raw: &str,
    parse: impl FnOnce(String) -> Result<T, IdError>,
) -> Result<T, ApiError> {
    let bad =
        |message: String| ApiError::bad_request(ErrorItem::new("INVALID_ID", message).field(field));
    let decoded =
        decode(raw).ok_or_else(|| bad(format!("{field} is not valid UTF-8 once decoded")))?;
    parse(decoded.into_owned()).map_err(|e| bad(format!("{field} {e}")))
}

/// Handles one request of the licenses function; returns the route template for the log line.
/// `configs` is read only when a licenses GET filters by the user-services configuration.
pub async fn handle<S: LicenseStore, C: ConfigStore>(
    store: &S,
    configs: &C,
    req: Request,
) -> (&'static str, Response<Body>) {
    let route = match Route::parse(req.raw_http_path()) {
        Ok(route) => route,
        Err(e) => return ("unmatched", e.into_response()),
    };
    let template = route.template();
    let result = match (route, req.method()) {
        (Route::GroupLicenses(group), &Method::GET) => {
            get_group(store, configs, &group, &req).await
        }
        (Route::GroupLicenses(group), &Method::PUT) => put_group(store, &group, &req).await,
        (Route::GroupLicenses(_), _) => Err(ApiError::MethodNotAllowed("GET, PUT")),
    };
    (template, result.unwrap_or_else(ApiError::into_response))
}

#[derive(Serialize)]
struct Allocated {
    unlimited: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    maximum: Option<u32>,
    #[serde(rename = "noInstance", skip_serializing_if = "Option::is_none")]
    no_instance: Option<bool>,
}

#[derive(Serialize)]
struct Entry<'a> {
    name: &'a str,
    allocated: Allocated,
    #[serde(rename = "inUse", skip_serializing_if = "Option::is_none")]
    in_use: Option<u32>,
}

impl<'a> Entry<'a> {
    fn new(name: &'a str, license: &License, no_instance: Option<bool>) -> Self {
        let licensed = license.allocation.is_licensed();
        Entry {
            name,
            allocated: Allocated {
                unlimited: license.allocation == Allocation::Unlimited,
                maximum: license.allocation.maximum(),
                no_instance,
            },
            in_use: licensed.then_some(license.in_use),
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct LicensesView<'a> {
    user_services: Vec<Entry<'a>>,
    group_services: Vec<Entry<'a>>,
    service_packs: Vec<Entry<'a>>,
}

/// `offered`, when present, marks (by catalog index) the user services to list.
fn render<'a>(
    licenses: &'a GroupLicenses,
    licensed_only: bool,
    offered: Option<&[bool]>,
) -> LicensesView<'a> {
    let keep = |l: &License| !licensed_only || l.allocation.is_licensed();
    LicensesView {
        user_services: licenses
            .user_services()
            .filter(|(s, l)| keep(l) && offered.is_none_or(|o| o[s.index()]))
            .map(|(s, l)| Entry::new(s.name(), l, None))
            .collect(),
        group_services: licenses
            .group_services()
            .filter(|(_, l)| keep(l))
            .map(|(s, l)| Entry::new(s.name(), l, Some(s.no_instance())))
            .collect(),
        service_packs: licenses
            .service_packs()
            .filter(|(_, l)| keep(l))
            .map(|(p, l)| Entry::new(p.as_str(), l, None))
            .collect(),
    }
}

pub async fn get_group<S: LicenseStore, C: ConfigStore>(
    store: &S,
    configs: &C,
    group: &GroupRef,
    req: &Request,
) -> Result<Response<Body>, ApiError> {
    let licensed_only = bool_query(req, "licensed")?.unwrap_or(false);
    let filter = audience_query(req)?;
    if !filter.is_filtering() {
        let licenses = store
            .group_licenses(group)
            .await
            .map_err(|_| ApiError::Unavailable)?;
        return Ok(json_response(
            StatusCode::OK,
            &render(&licenses, licensed_only, None),
        ));
    }
    // Both reads at once: the answer costs one round trip of latency.
    let (licenses, all_configs) =
        tokio::join!(store.group_licenses(group), configs.user_service_configs());
    let (licenses, all_configs) = (
        licenses.map_err(|_| ApiError::Unavailable)?,
        all_configs.map_err(|_| ApiError::Unavailable)?,
    );
    let mut offered = vec![false; UserService::count()];
    for config in all_configs.iter().filter(|c| filter.admits(&c.audience)) {
        offered[config.technical_name.index()] = true;
    }
    Ok(json_response(
        StatusCode::OK,
        &render(&licenses, licensed_only, Some(&offered)),
    ))
}

#[derive(Serialize)]
struct Status<'a> {
    name: &'a str,
    status: &'static str,
}

pub async fn put_group<S: LicenseStore>(
    store: &S,
    group: &GroupRef,
    req: &Request,
) -> Result<Response<Body>, ApiError> {
    let body = json_object_body(req)?;
    let put = licenses_body::parse(&body).map_err(ApiError::BadRequest)?;
    match store.update_group_licenses(group, &put.changes).await {
        Ok(()) => Ok(json_response(StatusCode::OK, &receipt(&put))),
        Err(StoreError::Rejected(rejections)) => Err(ApiError::Conflict(
            rejections
                .into_iter()
                .map(|r| {
                    let change = &put.changes[r.index];
                    let name = licensable_name(&change.item);
                    match r.reason {
                        RejectReason::BelowUsage { in_use } => {
                            let message = match change.allocation {
                                Allocation::Limited(0) => {
                                    format!("{name} has {in_use} in use and cannot be unlicensed")
                                }
                                a => format!(
                                    "{name} has {in_use} in use; maximum {} is below that",
                                    a.maximum().unwrap_or(0)
                                ),
                            };
                            ErrorItem {
                                in_use: Some(in_use),
                                ..ErrorItem::new("BELOW_USAGE", message)
                                    .field(put.field(r.index, ".allocated.maximum"))
                                    .name(name)
                            }
                        }
                    }
                })
                .collect(),
        )),
        Err(StoreError::Unavailable(_)) => Err(ApiError::Unavailable),
    }
}

/// `{"userServices": [{"name", "status": "updated"}], ...}`: one entry per requested item, in
/// request order, a list present exactly when the request carried it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Receipt<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    user_services: Option<Vec<Status<'a>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    group_services: Option<Vec<Status<'a>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    service_packs: Option<Vec<Status<'a>>>,
}

fn receipt(put: &LicensesPut) -> Receipt<'_> {
    let list = |list: List| {
        put.present[list as usize].then(|| {
            put.changes
                .iter()
                .zip(&put.origins)
                .filter(|(_, (l, _))| *l == list)
                .map(|(c, _)| Status {
                    name: licensable_name(&c.item),
                    status: "updated",
                })
                .collect()
        })
    };
    Receipt {
        user_services: list(List::UserServices),
        group_services: list(List::GroupServices),
        service_packs: list(List::ServicePacks),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{InstanceName, LicenseChange, UserServiceConfig};

    /// A store that is down: checks the mapping to 503, not storage (that is tests/dynamo_store.rs).
    struct Down;

    impl LicenseStore for Down {
        async fn group_licenses(&self, _: &GroupRef) -> Result<GroupLicenses, StoreError> {
            Err(StoreError::Unavailable("down".into()))
        }
        async fn update_group_licenses(
            &self,
            _: &GroupRef,
            _: &[LicenseChange],
        ) -> Result<(), StoreError> {
            Err(StoreError::Unavailable("down".into()))
        }
    }

    impl ConfigStore for Down {
        async fn user_service_configs(&self) -> Result<Vec<UserServiceConfig>, StoreError> {
            Err(StoreError::Unavailable("down".into()))
        }
        async fn user_service_config(
            &self,
            _: &InstanceName,
        ) -> Result<Option<UserServiceConfig>, StoreError> {
            Err(StoreError::Unavailable("down".into()))
        }
        async fn create_user_service_config(
            &self,
            _: &UserServiceConfig,
        ) -> Result<bool, StoreError> {
            Err(StoreError::Unavailable("down".into()))
        }
        async fn put_user_service_config(&self, _: &UserServiceConfig) -> Result<(), StoreError> {
            Err(StoreError::Unavailable("down".into()))
        }
        async fn delete_user_service_config(&self, _: &InstanceName) -> Result<bool, StoreError> {
            Err(StoreError::Unavailable("down".into()))
        }
    }

    fn request(method: &str, body: &str) -> Request {
        let req = lambda_http::http::Request::builder()
            .method(method)
            .body(Body::Text(body.to_owned()))
            .expect("valid test request");
        req.with_raw_http_path("/api/v1/tenants/t/groups/g/licenses/")
    }

    #[tokio::test]
    async fn storage_failure_is_a_503_json_error() {
        for (method, body) in [("GET", ""), ("PUT", r#"{"servicePacks": []}"#)] {
            let (_, response) = handle(&Down, &Down, request(method, body)).await;
            assert_eq!(
                response.status(),
                StatusCode::SERVICE_UNAVAILABLE,
                "{method}"
            );
            let json: serde_json::Value = serde_json::from_slice(response.body()).unwrap();
            assert_eq!(json["errors"][0]["code"], "STORAGE_UNAVAILABLE");
        }
    }

    #[test]
    fn routes_decode_and_validate_ids() {
        let r = Route::parse("/api/v1/tenants/foo/groups/foo%20group/licenses/").unwrap();
        assert_eq!(
            r,
            Route::GroupLicenses(GroupRef {
                tenant: TenantId::parse("foo").unwrap(),
                group: GroupId::parse("foo group").unwrap(),
            })
        );
        assert!(Route::parse("/api/v1/tenants/foo/groups/g/licenses").is_ok());
        assert!(matches!(
            Route::parse("/api/v1/tenants/a%2Fb/groups/g/licenses/"),
            Err(ApiError::BadRequest(_))
        ));
        assert!(matches!(
            Route::parse("/api/v1/tenants//groups/g/licenses/"),
            Err(ApiError::BadRequest(_))
        ));
    }

    #[test]
    fn other_paths_are_not_found() {
        for p in [
            "/",
            "/api/v1/tenants/foo/groups/g/",
            "/api/v1/tenants/foo/groups/g/licenses/extra",
            "/api/v2/tenants/foo/groups/g/licenses/",
        ] {
            assert!(matches!(Route::parse(p), Err(ApiError::NotFound)), "{p}");
        }
    }

    #[test]
    fn rendering_follows_the_presence_rules() {
        let view = serde_json::to_value(Entry::new(
            "x",
            &License {
                allocation: Allocation::Limited(0),
                in_use: 0,
                assigned: false,
            },
            None,
        ))
        .unwrap();
        assert_eq!(
            view,
            serde_json::json!({"name": "x", "allocated": {"unlimited": false, "maximum": 0}})
        );
        let view = serde_json::to_value(Entry::new(
            "y",
            &License {
                allocation: Allocation::Unlimited,
                in_use: 4,
                assigned: true,
            },
            Some(false),
        ))
        .unwrap();
        assert_eq!(
            view,
            serde_json::json!({"name": "y", "allocated": {"unlimited": true, "noInstance": false}, "inUse": 4})
        );
    }
}
