//! Handlers of the usage routes of the licenses function: group services assigned to the group,
//! instances of group services, and services and packs assigned to users. The rules live in the
//! store's conditional writes (`store/dynamo/usage.rs`, `holdings.rs`); this file parses and renders.

use super::error::usage_error;
use super::extract::Input;
use super::licenses::Shared;
use super::path::{GroupPath, InstancePath, ServicePath, UserPath};
use super::write::Write;
use super::{ApiError, ErrorItem, json_object_body, json_response};
use crate::domain::usage::MAX_ASSIGNMENTS_PER_REQUEST;
use crate::domain::{Assignable, GroupService, InstanceName, PackName, UserService};
use crate::store::{ConfigStore, StoreError, UsageStore};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::HashSet;

#[derive(Serialize)]
struct Assigned<'a> {
    name: &'a str,
    assigned: bool,
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

/// One requested name with its JSON path, for errors.
struct Named {
    field: String,
    name: String,
}

/// Reads `{"<list>": [{"name": ...}, ...], ...}` for the lists allowed here. Each list is
/// optional; unknown fields, wrong shapes and duplicates are 400s, each naming its field.
fn named_lists(
    body: &Map<String, Value>,
    allowed: &[&'static str],
) -> Result<Vec<Vec<Named>>, ApiError> {
    let mut errors = Vec::new();
    let mut lists: Vec<Vec<Named>> = allowed.iter().map(|_| Vec::new()).collect();
    for (key, value) in body {
        let Some(slot) = allowed.iter().position(|l| l == key) else {
            errors.push(
                ErrorItem::new(
                    "UNKNOWN_FIELD",
                    format!("{key} is not a field of this request"),
                )
                .field(key.clone()),
            );
            continue;
        };
        let Value::Array(items) = value else {
            errors.push(
                ErrorItem::new("INVALID_VALUE", format!("{key} must be an array"))
                    .field(key.clone()),
            );
            continue;
        };
        let mut seen = HashSet::new();
        for (i, item) in items.iter().enumerate() {
            let path = format!("{key}[{i}]");
            let name = match item {
                Value::Object(fields) => match (fields.get("name"), fields.len()) {
                    (Some(Value::String(name)), 1) => name,
                    (Some(Value::String(_)), _) => {
                        let extra = fields
                            .keys()
                            .find(|k| *k != "name")
                            .cloned()
                            .unwrap_or_default();
                        errors.push(
                            ErrorItem::new(
                                "UNKNOWN_FIELD",
                                format!("{path}.{extra} is not a field of this request"),
                            )
                            .field(format!("{path}.{extra}")),
                        );
                        continue;
                    }
                    _ => {
                        errors.push(
                            ErrorItem::new(
                                "INVALID_VALUE",
                                format!("{path}.name must be a string"),
                            )
                            .field(format!("{path}.name")),
                        );
                        continue;
                    }
                },
                _ => {
                    errors.push(
                        ErrorItem::new("INVALID_VALUE", format!("{path} must be an object"))
                            .field(path),
                    );
                    continue;
                }
            };
            if !seen.insert(name.as_str()) {
                errors.push(
                    ErrorItem::new(
                        "DUPLICATE_NAME",
                        format!("{name} is named more than once in {key}"),
                    )
                    .field(format!("{path}.name"))
                    .name(name.clone()),
                );
                continue;
            }
            lists[slot].push(Named {
                field: format!("{path}.name"),
                name: name.clone(),
            });
        }
    }
    let total: usize = lists.iter().map(Vec::len).sum();
    if total > MAX_ASSIGNMENTS_PER_REQUEST {
        errors.push(ErrorItem::new(
            "TOO_MANY_ITEMS",
            format!("a request may name at most {MAX_ASSIGNMENTS_PER_REQUEST} services and packs; this one has {total}"),
        ));
    }
    if errors.is_empty() {
        Ok(lists)
    } else {
        Err(ApiError::BadRequest(errors))
    }
}

fn unknown_service(named: &Named, kind: &str) -> ErrorItem {
    ErrorItem::new(
        "UNKNOWN_SERVICE",
        format!("{:?} is not a {kind} service of the catalog", named.name),
    )
    .field(named.field.clone())
    .name(named.name.clone())
}

/// The group services named by a `{"services": [...]}` body.
fn group_services_body(req: &Input) -> Result<Vec<GroupService>, ApiError> {
    let body = json_object_body(req)?;
    let lists = named_lists(&body, &["services"])?;
    let mut errors = Vec::new();
    let services: Vec<GroupService> = lists[0]
        .iter()
        .filter_map(|n| {
            GroupService::parse(&n.name)
                .map_err(|_| errors.push(unknown_service(n, "group")))
                .ok()
        })
        .collect();
    if errors.is_empty() {
        Ok(services)
    } else {
        Err(ApiError::BadRequest(errors))
    }
}

/// The services and packs named by a `{"services": [...], "servicePacks": [...]}` body.
fn user_body(req: &Input) -> Result<Vec<Assignable>, ApiError> {
    let body = json_object_body(req)?;
    let lists = named_lists(&body, &["services", "servicePacks"])?;
    let mut errors = Vec::new();
    let mut items = Vec::with_capacity(lists[0].len() + lists[1].len());
    for n in &lists[0] {
        match UserService::parse(&n.name) {
            Ok(s) => items.push(Assignable::Service(s)),
            Err(_) => errors.push(unknown_service(n, "user")),
        }
    }
    for n in &lists[1] {
        match PackName::parse(n.name.as_str()) {
            Ok(p) => items.push(Assignable::Pack(p)),
            Err(e) => errors.push(
                ErrorItem::new("INVALID_VALUE", format!("a pack name {e}"))
                    .field(n.field.clone())
                    .name(n.name.clone()),
            ),
        }
    }
    if errors.is_empty() {
        Ok(items)
    } else {
        Err(ApiError::BadRequest(errors))
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

pub async fn group_services<S: UsageStore, C: Send + Sync>(
    State(app): Shared<S, C>,
    GroupPath(group): GroupPath,
) -> Result<Response, ApiError> {
    let (store, group) = (&app.licenses, &group);
    let licenses = store
        .group_service_licenses(group)
        .await
        .map_err(ApiError::store)?;
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

pub async fn assign_group_services<S: UsageStore, C: Send + Sync>(
    State(app): Shared<S, C>,
    GroupPath(group): GroupPath,
    write: Write,
    input: Input,
) -> Result<Response, ApiError> {
    let services = group_services_body(&input)?;
    let (ctx, answer) = write.answer(StatusCode::CREATED, &services_view(&services, true));
    let result = app
        .licenses
        .assign_group_services(&ctx, &group, &services)
        .await;
    group_services_result(result, &services).map(|()| answer)
}

pub async fn unassign_group_services<S: UsageStore, C: Send + Sync>(
    State(app): Shared<S, C>,
    GroupPath(group): GroupPath,
    write: Write,
    input: Input,
) -> Result<Response, ApiError> {
    let services = group_services_body(&input)?;
    let (ctx, answer) = write.answer(StatusCode::OK, &services_view(&services, false));
    let result = app
        .licenses
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

pub async fn instances<S: UsageStore, C: Send + Sync>(
    State(app): Shared<S, C>,
    ServicePath(group, service): ServicePath,
) -> Result<Response, ApiError> {
    let (store, group) = (&app.licenses, &group);
    let names = store.instances(group, service).await?;
    let view = InstancesView {
        instances: names
            .iter()
            .map(|n| InstanceView { name: n.as_str() })
            .collect(),
    };
    Ok(json_response(StatusCode::OK, &view))
}

pub async fn add_instance<S: UsageStore, C: Send + Sync>(
    State(app): Shared<S, C>,
    ServicePath(group, service): ServicePath,
    write: Write,
    input: Input,
) -> Result<Response, ApiError> {
    let body = json_object_body(&input)?;
    let mut errors = Vec::new();
    for key in body.keys().filter(|k| *k != "name") {
        errors.push(
            ErrorItem::new(
                "UNKNOWN_FIELD",
                format!("{key} is not a field of this request"),
            )
            .field(key.clone()),
        );
    }
    let name = match body.get("name") {
        Some(Value::String(s)) => InstanceName::parse(s.as_str())
            .map_err(|e| ErrorItem::new("INVALID_VALUE", format!("name {e}")).field("name")),
        Some(_) => Err(ErrorItem::new("INVALID_VALUE", "name must be a string").field("name")),
        None => Err(ErrorItem::new("MISSING_FIELD", "name is required").field("name")),
    };
    let name = match name {
        Ok(name) if errors.is_empty() => name,
        Ok(_) => return Err(ApiError::BadRequest(errors)),
        Err(e) => {
            errors.insert(0, e);
            return Err(ApiError::BadRequest(errors));
        }
    };
    let (ctx, answer) = write.answer(
        StatusCode::CREATED,
        &InstanceView {
            name: name.as_str(),
        },
    );
    app.licenses
        .add_instance(&ctx, &group, service, &name)
        .await
        .map_err(|e| {
            ApiError::from_store(e, |r| usage_error(&r.reason, service.name()).field("name"))
        })?;
    Ok(answer)
}

pub async fn remove_instance<S: UsageStore, C: Send + Sync>(
    State(app): Shared<S, C>,
    InstancePath(group, service, name): InstancePath,
    write: Write,
) -> Result<Response, ApiError> {
    let (ctx, answer) = write.no_content();
    let removed = app
        .licenses
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

pub async fn user_services<S: UsageStore, C: Send + Sync>(
    State(app): Shared<S, C>,
    UserPath(group, user): UserPath,
) -> Result<Response, ApiError> {
    let holdings = app
        .licenses
        .user_holdings(&group, &user)
        .await
        .map_err(ApiError::store)?;
    let assigned = |name| Assigned {
        name,
        assigned: true,
    };
    let view = HoldingsView {
        services: holdings.direct().map(|s| assigned(s.name())).collect(),
        service_packs: holdings
            .packs
            .iter()
            .map(|p| assigned(p.as_str()))
            .collect(),
        effective_services: holdings
            .services
            .iter()
            .map(|h| Effective {
                name: h.service.name(),
                via: h
                    .direct
                    .then_some("direct")
                    .into_iter()
                    .chain(h.packs.iter().map(|p| p.as_str()))
                    .collect(),
            })
            .collect(),
    };
    Ok(json_response(StatusCode::OK, &view))
}

/// A user's GET: what is assigned (`services` directly, `servicePacks`) and every service the
/// user holds by any route (`effectiveServices`, each with its routes: `direct` and packs).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct HoldingsView<'a> {
    services: Vec<Assigned<'a>>,
    service_packs: Vec<Assigned<'a>>,
    effective_services: Vec<Effective<'a>>,
}

#[derive(Serialize)]
struct Effective<'a> {
    name: &'static str,
    via: Vec<&'a str>,
}

/// The JSON path of `items[index]` in the request body.
fn user_field(items: &[Assignable], index: usize) -> String {
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

pub async fn assign_to_user<S: UsageStore, C: ConfigStore>(
    State(app): Shared<S, C>,
    UserPath(group, user): UserPath,
    write: Write,
    input: Input,
) -> Result<Response, ApiError> {
    let items = user_body(&input)?;
    let (ctx, answer) = write.answer(StatusCode::CREATED, &user_view(&items, true));
    app.licenses
        .assign_to_user(&ctx, &group, &user, &items, &app.configs)
        .await
        .map_err(|e| {
            ApiError::from_store(e, |r| {
                usage_error(&r.reason, items[r.index].name()).field(user_field(&items, r.index))
            })
        })?;
    Ok(answer)
}

pub async fn unassign_from_user<S: UsageStore, C: Send + Sync>(
    State(app): Shared<S, C>,
    UserPath(group, user): UserPath,
    write: Write,
    input: Input,
) -> Result<Response, ApiError> {
    let items = user_body(&input)?;
    let (ctx, answer) = write.answer(StatusCode::OK, &user_view(&items, false));
    app.licenses
        .unassign_from_user(&ctx, &group, &user, &items)
        .await?;
    Ok(answer)
}
