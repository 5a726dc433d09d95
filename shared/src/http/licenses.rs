//! The router of the licenses function: tenant licenses and service packs (handlers in
//! `tenant.rs`), group licenses (here), and usage (handlers in `usage.rs`). [`router`] is the
//! one list of its routes; [`authorize`] the one table of who may call them.

use super::auth::Caller;
use super::conditional::{self, IfMatchHeader};
use super::error::usage_error;
use super::extract::Input;
use super::front::{self, RouteBoth};
use super::idempotency::idempotent;
use super::licenses_body::{self, Holder, LicensesPut, List, licensable_name};
use super::path::{GroupPath, PathIds};
use super::write::Write;
use super::{ApiError, ErrorItem, audience_query, bool_query, json_object_body, json_response};
use super::{tenant, usage};
use crate::domain::PoolRejection;
use crate::domain::{Allocation, GroupLicenses, License, Target, UserService};
use crate::store::idempotency::KeepsRecords;
use crate::store::{ConfigStore, LicenseStore, RejectReason, Rejection, TenantStore, UsageStore};
use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{delete, get};
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;

pub const TENANT_LICENSES: &str = "/api/v1/tenants/{tenant_id}/licenses";
pub const PACKS: &str = "/api/v1/tenants/{tenant_id}/service_packs";
pub const PACK: &str = "/api/v1/tenants/{tenant_id}/service_packs/{pack_name}";
pub const GROUP_LICENSES: &str = "/api/v1/tenants/{tenant_id}/groups/{group_id}/licenses";
pub const GROUP_SERVICES: &str = "/api/v1/tenants/{tenant_id}/groups/{group_id}/services";
pub const INSTANCES: &str =
    "/api/v1/tenants/{tenant_id}/groups/{group_id}/services/{service}/instances";
pub const INSTANCE: &str =
    "/api/v1/tenants/{tenant_id}/groups/{group_id}/services/{service}/instances/{instance_name}";
pub const USER_SERVICES: &str =
    "/api/v1/tenants/{tenant_id}/groups/{group_id}/users/{user_id}/services";

/// What the handlers share, built once per cold start: the licensing table's store, and the
/// user-services configuration (read when a GET filters by it or an assignment checks it).
pub struct Stores<S, C> {
    pub licenses: S,
    pub configs: C,
}

/// The handlers' view of [`Stores`].
pub type Shared<S, C> = State<Arc<Stores<S, C>>>;

/// Every route of the licenses function, each with and without its trailing slash; anything
/// else is a JSON 404 and a wrong method a JSON 405 with `Allow` ([`front::finish`]).
pub fn router<S, C>(licenses: S, configs: C, deadline: Duration) -> Router
where
    S: LicenseStore + UsageStore + TenantStore + KeepsRecords + 'static,
    C: ConfigStore + 'static,
{
    let records = licenses.idempotency_records();
    let routes = Router::new()
        .route_both(
            TENANT_LICENSES,
            get(tenant::get_tenant::<S, C>).put(tenant::put_tenant::<S, C>),
        )
        .route_both(
            PACKS,
            get(tenant::list_packs::<S, C>).post(tenant::create_pack::<S, C>),
        )
        .route_both(
            PACK,
            get(tenant::get_pack::<S, C>)
                .put(tenant::replace_pack::<S, C>)
                .delete(tenant::delete_pack::<S, C>),
        )
        .route_both(
            GROUP_LICENSES,
            get(get_group::<S, C>).put(put_group::<S, C>),
        )
        .route_both(
            GROUP_SERVICES,
            get(usage::group_services::<S, C>)
                .post(usage::assign_group_services::<S, C>)
                .delete(usage::unassign_group_services::<S, C>),
        )
        .route_both(
            INSTANCES,
            get(usage::instances::<S, C>).post(usage::add_instance::<S, C>),
        )
        .route_both(INSTANCE, delete(usage::remove_instance::<S, C>))
        .route_both(
            USER_SERVICES,
            get(usage::user_services::<S, C>)
                .post(usage::assign_to_user::<S, C>)
                .delete(usage::unassign_from_user::<S, C>),
        )
        .method_not_allowed_fallback(front::method_not_allowed)
        .route_layer(middleware::from_fn_with_state(records, idempotent))
        .route_layer(middleware::from_fn(authorize))
        .with_state(Arc::new(Stores { licenses, configs }));
    front::finish(routes, deadline)
}

/// Who may call what: the resource each route touches; `domain/access.rs` decides per role.
/// Runs once a route matched and before its method is checked, so a bad id is a 400 and a
/// foreign resource a 403 before any 405.
async fn authorize(
    caller: Caller,
    route: MatchedPath,
    ids: Result<PathIds, ApiError>,
    req: Request,
    next: Next,
) -> Response {
    let verdict = ids.and_then(|ids| {
        caller.check(target(route.as_str(), &ids)?, req.method())?;
        Ok(ids)
    });
    front::admit(route, verdict, req, next).await
}

fn target<'a>(route: &str, ids: &'a PathIds) -> Result<Target<'a>, ApiError> {
    Ok(match route.trim_end_matches('/') {
        TENANT_LICENSES => Target::TenantLicenses(ids.tenant()?),
        PACKS | PACK => Target::TenantData(ids.tenant()?),
        GROUP_LICENSES => Target::GroupLicenses(ids.group()?),
        GROUP_SERVICES | INSTANCES | INSTANCE | USER_SERVICES => Target::GroupUsage(ids.group()?),
        other => return Err(ApiError::internal(format!("route {other} has no target"))),
    })
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
    State(app): Shared<S, C>,
    GroupPath(group): GroupPath,
    input: Input,
) -> Result<Response, ApiError> {
    let (store, configs, group) = (&app.licenses, &app.configs, &group);
    let licensed_only = bool_query(&input, "licensed")?.unwrap_or(false);
    let filter = audience_query(&input)?;
    if !filter.is_filtering() {
        let licenses = store.tagged_group_licenses(group).await?;
        let body = render(&licenses.value, licensed_only, None);
        return Ok(conditional::weak(
            json_response(StatusCode::OK, &body),
            &licenses.etag,
        ));
    }
    // Both reads at once: the answer costs one round trip of latency.
    let (licenses, all_configs) = tokio::join!(
        store.tagged_group_licenses(group),
        configs.user_service_configs()
    );
    let (licenses, all_configs) = (licenses?, all_configs?);
    let mut offered = vec![false; UserService::count()];
    for config in all_configs.iter().filter(|c| filter.admits(&c.audience)) {
        offered[config.technical_name.index()] = true;
    }
    let body = render(&licenses.value, licensed_only, Some(&offered));
    Ok(conditional::weak(
        json_response(StatusCode::OK, &body),
        &licenses.etag,
    ))
}

#[derive(Serialize)]
pub(super) struct Status<'a> {
    name: &'a str,
    status: &'static str,
}

pub async fn put_group<S: LicenseStore, C: Send + Sync>(
    State(app): Shared<S, C>,
    caller: Caller,
    GroupPath(group): GroupPath,
    IfMatchHeader(if_match): IfMatchHeader,
    write: Write,
    input: Input,
) -> Result<Response, ApiError> {
    let body = json_object_body(&input)?;
    let put = licenses_body::parse(&body, Holder::Group).map_err(ApiError::BadRequest)?;
    let (ctx, answer) = write.answer(StatusCode::OK, &receipt(&put));
    app.licenses
        .update_group_licenses(
            &ctx,
            &group,
            &put.group_changes(),
            caller.0.authority(),
            if_match.as_ref(),
        )
        .await
        .map_err(|err| ApiError::from_store(err, |r| put_error(&put, r)))?;
    Ok(answer)
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
        (RejectReason::BelowUsage { in_use }, Some(Allocation::Limited(0))) => ErrorItem {
            message: format!("{name} has {in_use} in use and cannot be unlicensed"),
            ..item
        },
        (RejectReason::BelowUsage { in_use }, Some(Allocation::Limited(max))) => ErrorItem {
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
