//! Routes of the licenses function.
//!
//! Tenant routes, under `/api/v1/tenants/{tenant_id}/` (handlers in `tenant.rs`):
//!
//! | route                  | methods          | handlers                                 |
//! |------------------------|------------------|------------------------------------------|
//! | `licenses/`            | GET, PUT         | `tenant::get_tenant`, `put_tenant`       |
//! | `service_packs/`       | GET, POST        | `tenant::list_packs`, `create_pack`      |
//! | `service_packs/{name}/`| GET, PUT, DELETE | `tenant::get_pack`, `replace_pack`, `delete_pack` |
//!
//! Group routes, under `/api/v1/tenants/{tenant_id}/groups/{group_id}/`:
//!
//! | route                                   | methods           | handlers                        |
//! |-----------------------------------------|-------------------|---------------------------------|
//! | `licenses/`                             | GET, PUT          | [`get_group`], [`put_group`]    |
//! | `services/`                             | GET, POST, DELETE | `usage::group_services*`        |
//! | `services/{service}/instances/`         | GET, POST         | `usage::instances`, `add_instance` |
//! | `services/{service}/instances/{name}/`  | DELETE            | `usage::remove_instance`        |
//! | `users/{user_id}/services/`             | GET, POST, DELETE | `usage::user_services*`         |
//!
//! Anything else is a JSON 404.

use super::auth::{AuthMode, Routes, admit};
use super::error::usage_error;
use super::licenses_body::{self, Holder, LicensesPut, List, licensable_name};
use super::path::{decode, segments};
use super::{ApiError, ErrorItem, audience_query, bool_query, json_object_body, json_response};
use super::{tenant, usage};
use crate::domain::{
    Allocation, GroupId, GroupLicenses, GroupRef, GroupService, IdError, InstanceName, License,
    TenantId, UserId, UserService,
};
use crate::domain::{PackName, PoolRejection, Target};
use crate::store::{ConfigStore, LicenseStore, RejectReason, Rejection, TenantStore, UsageStore};
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};
use serde::Serialize;

/// A matched route with its decoded, validated path parameters.
/// A matched route with its decoded, validated path parameters.
#[derive(Debug, PartialEq)]
pub enum Route {
    TenantLicenses(TenantId),
    Packs(TenantId),
    Pack(TenantId, PackName),
    GroupLicenses(GroupRef),
    GroupServices(GroupRef),
    Instances(GroupRef, GroupService),
    Instance(GroupRef, GroupService, InstanceName),
    UserServices(GroupRef, UserId),
}

impl Routes for Route {
    fn parse(path: &str) -> Result<Route, ApiError> {
        Route::parse(path)
    }

    fn template(&self) -> &'static str {
        Route::template(self)
    }

    fn target(&self) -> Target<'_> {
        match self {
            Route::TenantLicenses(t) => Target::TenantLicenses(t),
            Route::Packs(t) | Route::Pack(t, _) => Target::TenantData(t),
            Route::GroupLicenses(g) => Target::GroupLicenses(g),
            Route::GroupServices(g)
            | Route::Instances(g, _)
            | Route::Instance(g, ..)
            | Route::UserServices(g, _) => Target::GroupUsage(g),
        }
    }
}

impl Route {
    /// The route template, for logs.
    pub fn template(&self) -> &'static str {
        match self {
            Route::TenantLicenses(_) => "/api/v1/tenants/{tenant_id}/licenses/",
            Route::Packs(_) => "/api/v1/tenants/{tenant_id}/service_packs/",
            Route::Pack(..) => "/api/v1/tenants/{tenant_id}/service_packs/{name}/",
            Route::GroupLicenses(_) => "/api/v1/tenants/{tenant_id}/groups/{group_id}/licenses/",
            Route::GroupServices(_) => "/api/v1/tenants/{tenant_id}/groups/{group_id}/services/",
            Route::Instances(..) => {
                "/api/v1/tenants/{tenant_id}/groups/{group_id}/services/{service}/instances/"
            }
            Route::Instance(..) => {
                "/api/v1/tenants/{tenant_id}/groups/{group_id}/services/{service}/instances/{name}/"
            }
            Route::UserServices(..) => {
                "/api/v1/tenants/{tenant_id}/groups/{group_id}/users/{user_id}/services/"
            }
        }
    }

    pub fn parse(path: &str) -> Result<Route, ApiError> {
        let mut parts = [""; 12];
        let mut count = 0;
        for segment in segments(path) {
            if count == parts.len() {
                return Err(ApiError::NotFound);
            }
            parts[count] = segment;
            count += 1;
        }
        let ["api", "v1", "tenants", t, rest @ ..] = &parts[..count] else {
            return Err(ApiError::NotFound);
        };
        let tenant = || path_id("tenant_id", t, TenantId::parse);
        let (g, rest) = match rest {
            ["licenses"] => return Ok(Route::TenantLicenses(tenant()?)),
            ["service_packs"] => return Ok(Route::Packs(tenant()?)),
            ["service_packs", name] => {
                let tenant = tenant()?;
                return Ok(Route::Pack(tenant, path_id("name", name, PackName::parse)?));
            }
            ["groups", g, rest @ ..] => (g, rest),
            _ => return Err(ApiError::NotFound),
        };
        let group = || -> Result<GroupRef, ApiError> {
            Ok(GroupRef {
                tenant: tenant()?,
                group: path_id("group_id", g, GroupId::parse)?,
            })
        };
        match rest {
            ["licenses"] => Ok(Route::GroupLicenses(group()?)),
            ["services"] => Ok(Route::GroupServices(group()?)),
            ["services", service, "instances"] => {
                let group = group()?;
                Ok(Route::Instances(group, instance_service(service)?))
            }
            ["services", service, "instances", name] => {
                let group = group()?;
                let service = instance_service(service)?;
                Ok(Route::Instance(
                    group,
                    service,
                    path_id("name", name, InstanceName::parse)?,
                ))
            }
            ["users", user, "services"] => {
                let group = group()?;
                Ok(Route::UserServices(
                    group,
                    path_id("user_id", user, UserId::parse)?,
                ))
            }
            _ => Err(ApiError::NotFound),
        }
    }
}

/// The `{service}` of the instance routes: a catalog group service that has instances.
fn instance_service(raw: &str) -> Result<GroupService, ApiError> {
    let name = decode(raw).ok_or(ApiError::NotFound)?;
    let service = GroupService::parse(&name)
        .map_err(|_| ApiError::NoSuch(format!("{name:?} is not a group service of the catalog")))?;
    if service.no_instance() {
        return Err(ApiError::bad_request(
            ErrorItem::new(
                "NO_INSTANCES",
                format!("{name} is assigned to the group as a whole and has no instances"),
            )
            .field("service")
            .name(service.name()),
        ));
    }
    Ok(service)
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
pub async fn handle<S: LicenseStore + UsageStore + TenantStore, C: ConfigStore>(
    store: &S,
    configs: &C,
    auth: AuthMode,
    req: Request,
) -> (&'static str, Response<Body>) {
    let route = match admit::<Route>(&req, auth) {
        Ok(route) => route,
        Err((name, refusal)) => return (name, refusal.into_response()),
    };
    let template = route.template();
    let result = match (route, req.method()) {
        (Route::TenantLicenses(tenant), &Method::GET) => {
            tenant::get_tenant(store, &tenant, &req).await
        }
        (Route::TenantLicenses(tenant), &Method::PUT) => {
            tenant::put_tenant(store, &tenant, &req).await
        }
        (Route::TenantLicenses(_), _) => Err(ApiError::MethodNotAllowed("GET, PUT")),
        (Route::Packs(tenant), &Method::GET) => tenant::list_packs(store, &tenant).await,
        (Route::Packs(tenant), &Method::POST) => tenant::create_pack(store, &tenant, &req).await,
        (Route::Packs(_), _) => Err(ApiError::MethodNotAllowed("GET, POST")),
        (Route::Pack(tenant, name), &Method::GET) => tenant::get_pack(store, &tenant, &name).await,
        (Route::Pack(tenant, name), &Method::PUT) => {
            tenant::replace_pack(store, &tenant, &name, &req).await
        }
        (Route::Pack(tenant, name), &Method::DELETE) => {
            tenant::delete_pack(store, &tenant, &name).await
        }
        (Route::Pack(..), _) => Err(ApiError::MethodNotAllowed("GET, PUT, DELETE")),
        (Route::GroupLicenses(group), &Method::GET) => {
            get_group(store, configs, &group, &req).await
        }
        (Route::GroupLicenses(group), &Method::PUT) => put_group(store, &group, &req).await,
        (Route::GroupLicenses(_), _) => Err(ApiError::MethodNotAllowed("GET, PUT")),
        (Route::GroupServices(group), &Method::GET) => usage::group_services(store, &group).await,
        (Route::GroupServices(group), &Method::POST) => {
            usage::assign_group_services(store, &group, &req).await
        }
        (Route::GroupServices(group), &Method::DELETE) => {
            usage::unassign_group_services(store, &group, &req).await
        }
        (Route::GroupServices(_), _) => Err(ApiError::MethodNotAllowed("GET, POST, DELETE")),
        (Route::Instances(group, service), &Method::GET) => {
            usage::instances(store, &group, service).await
        }
        (Route::Instances(group, service), &Method::POST) => {
            usage::add_instance(store, &group, service, &req).await
        }
        (Route::Instances(..), _) => Err(ApiError::MethodNotAllowed("GET, POST")),
        (Route::Instance(group, service, name), &Method::DELETE) => {
            usage::remove_instance(store, &group, service, &name).await
        }
        (Route::Instance(..), _) => Err(ApiError::MethodNotAllowed("DELETE")),
        (Route::UserServices(group, user), &Method::GET) => {
            usage::user_services(store, &group, &user).await
        }
        (Route::UserServices(group, user), &Method::POST) => {
            usage::assign_to_user(store, configs, &group, &user, &req).await
        }
        (Route::UserServices(group, user), &Method::DELETE) => {
            usage::unassign_from_user(store, &group, &user, &req).await
        }
        (Route::UserServices(..), _) => Err(ApiError::MethodNotAllowed("GET, POST, DELETE")),
    };
    (template, result.unwrap_or_else(ApiError::into_response))
}

/// `{"unlimited": true}` or `{"unlimited": false, "maximum": N}`, with `noInstance` on group
/// services.
#[derive(Serialize)]
pub(super) struct Allocated {
    unlimited: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    maximum: Option<u32>,
    #[serde(rename = "noInstance", skip_serializing_if = "Option::is_none")]
    no_instance: Option<bool>,
}

impl Allocated {
    pub(super) fn of(allocation: Allocation, no_instance: Option<bool>) -> Self {
        Allocated {
            unlimited: allocation == Allocation::Unlimited,
            maximum: allocation.maximum(),
            no_instance,
        }
    }
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
            allocated: Allocated::of(license.allocation, no_instance),
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
pub(super) struct Status<'a> {
    name: &'a str,
    status: &'static str,
}

pub async fn put_group<S: LicenseStore>(
    store: &S,
    group: &GroupRef,
    req: &Request,
) -> Result<Response<Body>, ApiError> {
    let body = json_object_body(req)?;
    let put = licenses_body::parse(&body, Holder::Group).map_err(ApiError::BadRequest)?;
    store
        .update_group_licenses(group, &put.changes)
        .await
        .map_err(|err| ApiError::from_store(err, |r| put_error(&put, r)))?;
    Ok(json_response(StatusCode::OK, &receipt(&put)))
}

/// The error of one refused item of a licenses PUT (group or tenant).
pub(super) fn put_error(put: &LicensesPut, r: &Rejection) -> ErrorItem {
    let change = &put.changes[r.index];
    let name = licensable_name(&change.item);
    let suffix = match r.reason {
        RejectReason::Pool(PoolRejection::PackNotDefined) => ".name",
        _ => ".allocated.maximum",
    };
    let item = usage_error(&r.reason, name).field(put.field(r.index, suffix));
    match (&r.reason, change.allocation) {
        (RejectReason::BelowUsage { in_use }, Allocation::Limited(0)) => ErrorItem {
            message: format!("{name} has {in_use} in use and cannot be unlicensed"),
            ..item
        },
        (RejectReason::BelowUsage { in_use }, Allocation::Limited(max)) => ErrorItem {
            message: format!("{name} has {in_use} in use; maximum {max} is below that"),
            ..item
        },
        _ => item,
    }
}

/// `{"userServices": [{"name", "status": "updated"}], ...}`: one entry per requested item, in
/// request order, a list present exactly when the request carried it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Receipt<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    user_services: Option<Vec<Status<'a>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    group_services: Option<Vec<Status<'a>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    service_packs: Option<Vec<Status<'a>>>,
}

pub(super) fn receipt(put: &LicensesPut) -> Receipt<'_> {
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
    use crate::store::StoreError;
    use lambda_http::RequestExt;

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
        let group = GroupRef {
            tenant: TenantId::parse("t").unwrap(),
            group: GroupId::parse("g").unwrap(),
        };
        let get = get_group(&Down, &Down, &group, &request("GET", "")).await;
        let filtered = get_group(
            &Down,
            &Down,
            &group,
            &request("GET", "").with_query_string_parameters(
                [("for_hg".to_owned(), "true".to_owned())]
                    .into_iter()
                    .collect::<std::collections::HashMap<_, _>>(),
            ),
        )
        .await;
        let put = put_group(&Down, &group, &request("PUT", r#"{"servicePacks": []}"#)).await;
        for result in [get, filtered, put] {
            let response = result.unwrap_err().into_response();
            assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
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
    fn usage_routes_parse_their_parameters() {
        let base = "/api/v1/tenants/t/groups/g";
        let group = GroupRef {
            tenant: TenantId::parse("t").unwrap(),
            group: GroupId::parse("g").unwrap(),
        };
        let hunt = GroupService::parse("Hunt Group").unwrap();
        assert_eq!(
            Route::parse(&format!("{base}/services/")).unwrap(),
            Route::GroupServices(group.clone())
        );
        assert_eq!(
            Route::parse(&format!("{base}/services/Hunt%20Group/instances")).unwrap(),
            Route::Instances(group.clone(), hunt)
        );
        assert_eq!(
            Route::parse(&format!(
                "{base}/services/Hunt%20Group/instances/Night%20Line/"
            ))
            .unwrap(),
            Route::Instance(
                group.clone(),
                hunt,
                InstanceName::parse("Night Line").unwrap()
            )
        );
        assert_eq!(
            Route::parse(&format!("{base}/users/alice@example.com/services/")).unwrap(),
            Route::UserServices(group, UserId::parse("alice@example.com").unwrap())
        );
        // A noInstance service has no instance routes; an unknown service is not found.
        assert!(matches!(
            Route::parse(&format!("{base}/services/Music%20On%20Hold/instances/")),
            Err(ApiError::BadRequest(_))
        ));
        assert!(matches!(
            Route::parse(&format!("{base}/services/Nope/instances/")),
            Err(ApiError::NoSuch(_))
        ));
        assert!(matches!(
            Route::parse(&format!("{base}/services/Hunt%20Group/")),
            Err(ApiError::NotFound)
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
