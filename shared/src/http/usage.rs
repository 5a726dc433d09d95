//! A group's usage: group services assigned to the group
//! (`.../groups/{group_id}/services/`), instances of group services
//! (`.../services/{service}/instances/[{instance_name}/]`), and services and packs assigned to
//! users (`.../users/{user_id}/services/`). The rules live in the store's conditional writes
//! (`store/dynamo/usage.rs`, `holdings.rs`); this file parses and renders.

use super::body::{
    At, Body, Catalog, Errors, FromBody, Object, duplicate_name, invalid, too_many, unknown_field,
    unknown_service, wrong_type,
};
use super::error::{ApiError, usage_error};
use super::path::{GroupPath, InstancePath, PathIds, ServicePath, UserPath};
use super::response::json_response;
use super::state::{App, Licensing};
use super::views::{Assigned, HoldingsView};
use super::write::Write;
use crate::domain::usage::MAX_ASSIGNMENTS_PER_REQUEST;
use crate::domain::{Assignable, GroupService, InstanceName, PackName, UserService};
use crate::store::{StoreError, UsageStore};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{MethodRouter, delete, get};
use serde::Serialize;
use std::collections::HashSet;
use std::sync::Arc;

pub const GROUP_SERVICES: &str = "/api/v1/tenants/{tenant_id}/groups/{group_id}/services";
pub const INSTANCES: &str =
    "/api/v1/tenants/{tenant_id}/groups/{group_id}/services/{service}/instances";
pub const INSTANCE: &str =
    "/api/v1/tenants/{tenant_id}/groups/{group_id}/services/{service}/instances/{instance_name}";
pub const USER_SERVICES: &str =
    "/api/v1/tenants/{tenant_id}/groups/{group_id}/users/{user_id}/services";

pub fn group_services_methods() -> MethodRouter<Arc<Licensing>> {
    get(group_services)
        .post(assign_group_services)
        .delete(unassign_group_services)
}

pub fn instances_methods() -> MethodRouter<Arc<Licensing>> {
    get(instances).post(add_instance)
}

pub fn instance_methods() -> MethodRouter<Arc<Licensing>> {
    delete(remove_instance)
}

pub fn user_services_methods() -> MethodRouter<Arc<Licensing>> {
    get(user_services)
        .post(assign_to_user)
        .delete(unassign_from_user)
}

#[derive(Serialize)]
struct ServicesView<'a> {
    services: Vec<Assigned<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct UserView<'a> {
    services: Vec<Assigned<'a>>,
    service_packs: Vec<Assigned<'a>>,
}

/// Reads `{"<list>": [{"name": ...}, ...], ...}` for the lists allowed here: each list
/// optional, each name with where it is. Unknown fields (but `others`, which the caller reads),
/// wrong shapes and duplicates are errors, each naming its field, in the body's order; so is
/// naming more than `most` names.
fn named_lists<'v>(
    body: &Object<'v>,
    allowed: &[&'static str],
    others: &[&str],
    most: usize,
    errors: &mut Errors,
) -> Vec<Vec<(At, &'v str)>> {
    let mut lists = vec![Vec::new(); allowed.len()];
    for key in body.keys() {
        let Some(slot) = allowed.iter().position(|l| *l == key) else {
            if !others.contains(&key) {
                errors.push(unknown_field(&body.at_key(key)));
            }
            continue;
        };
        let Ok(Some(items)) = body.array(key, errors) else {
            continue;
        };
        let mut seen = HashSet::new();
        for (i, item) in items.iter().enumerate() {
            let entry = match Object::of(item, body.at_key(key).index(i)) {
                Ok(entry) => entry,
                Err(e) => {
                    errors.push(e);
                    continue;
                }
            };
            let at = entry.at_key("name");
            // A name first; then nothing but the name.
            let Some(name) = entry.get("name").and_then(|n| n.as_str()) else {
                errors.push(wrong_type(&at, "a string"));
                continue;
            };
            if let Some(e) = entry.first_unknown(|k| k == "name") {
                errors.push(e);
                continue;
            }
            if !seen.insert(name) {
                errors.push(duplicate_name(&at, name, key));
                continue;
            }
            lists[slot].push((at, name));
        }
    }
    let total: usize = lists.iter().map(Vec::len).sum();
    if total > most {
        errors.push(too_many("services and packs", most, total));
    }
    lists
}

/// The group services named by a `{"services": [{"name"}, ...]}` body.
pub struct GroupServices(Vec<GroupService>);

impl FromBody for GroupServices {
    fn parse(body: &Object<'_>, _: &PathIds, errors: &mut Errors) -> Option<Self> {
        let lists = named_lists(
            body,
            &["services"],
            &[],
            MAX_ASSIGNMENTS_PER_REQUEST,
            errors,
        );
        let services = lists[0]
            .iter()
            .filter_map(|(at, name)| {
                errors.take(
                    GroupService::parse(name)
                        .map_err(|_| unknown_service(at, name, Catalog::Group)),
                )
            })
            .collect();
        Some(GroupServices(services))
    }
}

/// The services and packs named by a `{"services": [...], "servicePacks": [...]}` body, in
/// that order.
pub struct Assignments(Vec<Assignable>);

impl FromBody for Assignments {
    fn parse(body: &Object<'_>, _: &PathIds, errors: &mut Errors) -> Option<Self> {
        Some(Assignments(assignables(
            body,
            &[],
            MAX_ASSIGNMENTS_PER_REQUEST,
            errors,
        )))
    }
}

/// The services and packs a `{"services": [...], "servicePacks": [...]}` object names (with
/// `others` fields the caller reads), services first, at most `most` of them.
pub(super) fn assignables(
    body: &Object<'_>,
    others: &[&str],
    most: usize,
    errors: &mut Errors,
) -> Vec<Assignable> {
    let lists = named_lists(body, &["services", "servicePacks"], others, most, errors);
    let mut items = Vec::with_capacity(lists[0].len() + lists[1].len());
    for (at, name) in &lists[0] {
        let service =
            UserService::parse(name).map_err(|_| unknown_service(at, name, Catalog::User));
        items.extend(errors.take(service).map(Assignable::Service));
    }
    for (at, name) in &lists[1] {
        let pack = PackName::parse(*name).map_err(|e| invalid(at, e).name(*name));
        items.extend(errors.take(pack).map(Assignable::Pack));
    }
    items
}

/// `{"name": ...}`: an instance to create.
pub struct NewInstance(InstanceName);

impl FromBody for NewInstance {
    fn parse(body: &Object<'_>, _: &PathIds, errors: &mut Errors) -> Option<Self> {
        // The name's error first, then any other field's.
        let name = body
            .required("name", body.string("name", errors), errors)
            .and_then(|name| {
                errors.take(InstanceName::parse(name).map_err(|e| invalid(&body.at_key("name"), e)))
            });
        body.refuse_unknown(errors, |k| k == "name");
        name.map(NewInstance)
    }
}

fn user_view(items: &[Assignable], assigned: bool) -> UserView<'_> {
    fn entry(i: &Assignable, assigned: bool) -> Assigned<'_> {
        Assigned {
            name: i.name(),
            assigned,
        }
    }
    UserView {
        services: items
            .iter()
            .filter(|i| matches!(i, Assignable::Service(_)))
            .map(|i| entry(i, assigned))
            .collect(),
        service_packs: items
            .iter()
            .filter(|i| matches!(i, Assignable::Pack(_)))
            .map(|i| entry(i, assigned))
            .collect(),
    }
}

async fn group_services(app: App, GroupPath(group): GroupPath) -> Result<Response, ApiError> {
    let licenses = app.store.group_service_licenses(&group).await?;
    let view = ServicesView {
        services: licenses
            .iter()
            .map(|(s, l)| Assigned {
                name: s.name(),
                assigned: l.assigned,
            })
            .collect(),
    };
    Ok(json_response(StatusCode::OK, &view))
}

async fn assign_group_services(
    app: App,
    GroupPath(group): GroupPath,
    write: Write,
    Body(GroupServices(services)): Body<GroupServices>,
) -> Result<Response, ApiError> {
    let (ctx, answer) = write.answer(StatusCode::CREATED, &services_view(&services, true));
    let result = app
        .store
        .assign_group_services(&ctx, &group, &services)
        .await;
    group_services_result(result, &services).map(|()| answer)
}

async fn unassign_group_services(
    app: App,
    GroupPath(group): GroupPath,
    write: Write,
    Body(GroupServices(services)): Body<GroupServices>,
) -> Result<Response, ApiError> {
    let (ctx, answer) = write.answer(StatusCode::OK, &services_view(&services, false));
    let result = app
        .store
        .unassign_group_services(&ctx, &group, &services)
        .await;
    group_services_result(result, &services).map(|()| answer)
}

/// Each requested group service with its new state.
fn services_view(services: &[GroupService], assigned: bool) -> ServicesView<'_> {
    ServicesView {
        services: services
            .iter()
            .map(|s| Assigned {
                name: s.name(),
                assigned,
            })
            .collect(),
    }
}

/// One error per group service the stored state refused.
fn group_services_result(
    result: Result<(), StoreError>,
    services: &[GroupService],
) -> Result<(), ApiError> {
    result.map_err(|e| {
        ApiError::from_store(e, |r| {
            usage_error(&r.reason, services[r.index].name())
                .field(format!("services[{}].name", r.index))
        })
    })
}

#[derive(Serialize)]
struct InstanceView<'a> {
    name: &'a str,
}

#[derive(Serialize)]
struct InstancesView<'a> {
    instances: Vec<InstanceView<'a>>,
}

async fn instances(
    app: App,
    ServicePath(group, service): ServicePath,
) -> Result<Response, ApiError> {
    let names = app.store.instances(&group, service).await?;
    let view = InstancesView {
        instances: names
            .iter()
            .map(|n| InstanceView { name: n.as_str() })
            .collect(),
    };
    Ok(json_response(StatusCode::OK, &view))
}

async fn add_instance(
    app: App,
    ServicePath(group, service): ServicePath,
    write: Write,
    Body(NewInstance(name)): Body<NewInstance>,
) -> Result<Response, ApiError> {
    let (ctx, answer) = write.answer(
        StatusCode::CREATED,
        &InstanceView {
            name: name.as_str(),
        },
    );
    app.store
        .add_instance(&ctx, &group, service, &name)
        .await
        .map_err(|e| {
            ApiError::from_store(e, |r| usage_error(&r.reason, service.name()).field("name"))
        })?;
    Ok(answer)
}

async fn remove_instance(
    app: App,
    InstancePath(group, service, name): InstancePath,
    write: Write,
) -> Result<Response, ApiError> {
    let (ctx, answer) = write.no_content();
    let removed = app
        .store
        .remove_instance(&ctx, &group, service, &name)
        .await?;
    if !removed {
        return Err(ApiError::NoSuch(format!(
            "{} has no instance {:?} in this group",
            service.name(),
            name.as_str()
        )));
    }
    Ok(answer)
}

async fn user_services(app: App, UserPath(group, user): UserPath) -> Result<Response, ApiError> {
    let holdings = app.store.user_holdings(&group, &user).await?;
    Ok(json_response(StatusCode::OK, &HoldingsView::of(&holdings)))
}

/// The JSON path of `items[index]` in the request body.
pub(super) fn user_field(items: &[Assignable], index: usize) -> String {
    let (list, position) = match &items[index] {
        Assignable::Service(_) => (
            "services",
            items[..index]
                .iter()
                .filter(|i| matches!(i, Assignable::Service(_)))
                .count(),
        ),
        Assignable::Pack(_) => (
            "servicePacks",
            items[..index]
                .iter()
                .filter(|i| matches!(i, Assignable::Pack(_)))
                .count(),
        ),
    };
    format!("{list}[{position}].name")
}

async fn assign_to_user(
    app: App,
    UserPath(group, user): UserPath,
    write: Write,
    Body(Assignments(items)): Body<Assignments>,
) -> Result<Response, ApiError> {
    let (ctx, answer) = write.answer(StatusCode::CREATED, &user_view(&items, true));
    app.store
        .assign_to_user(&ctx, &group, &user, &items, &app.configs)
        .await
        .map_err(|e| {
            ApiError::from_store(e, |r| {
                usage_error(&r.reason, items[r.index].name()).field(user_field(&items, r.index))
            })
        })?;
    Ok(answer)
}

async fn unassign_from_user(
    app: App,
    UserPath(group, user): UserPath,
    write: Write,
    Body(Assignments(items)): Body<Assignments>,
) -> Result<Response, ApiError> {
    let (ctx, answer) = write.answer(StatusCode::OK, &user_view(&items, false));
    app.store
        .unassign_from_user(&ctx, &group, &user, &items)
        .await?;
    Ok(answer)
}
