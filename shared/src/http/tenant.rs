//! Handlers of the tenant routes of the licenses function: the tenant's licenses pool and its
//! service pack definitions. Routing is in `licenses.rs`; the pool rule lives in the store's
//! conditions (`store/dynamo/tenant.rs`, `pool.rs`).

use super::conditional::{self, IfMatchHeader};
use super::extract::Input;
use super::licenses::Shared;
use super::licenses::{Allocated, put_error, receipt};
use super::licenses_body::{self, Holder};
use super::path::{PackPath, TenantPath};
use super::write::Write;
use super::{ApiError, ErrorItem, bool_query, json_object_body, json_response};
use crate::domain::{
    GroupService, Licensable, PackDefinition, PackName, TenantLicense, UserService,
};
use crate::store::TenantStore;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap, HashSet};

/// One entry of the tenant view: the tenant's allocation when it is pooled, and what its groups
/// hold either way.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PoolEntry<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    /// The operator set a tenant allocation, which bounds what the groups may be given.
    pooled: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    allocated: Option<Allocated>,
    /// Sum of the groups' limited maximums.
    currently_allocated: u64,
    /// Groups holding it unlimited.
    unlimited_groups: u32,
    /// What the pool has left, when pooled and limited.
    #[serde(skip_serializing_if = "Option::is_none")]
    remaining: Option<i64>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TenantView<'a> {
    user_services: Vec<PoolEntry<'a>>,
    group_services: Vec<PoolEntry<'a>>,
    service_packs: Vec<PoolEntry<'a>>,
}

fn entry<'a>(name: &'a str, description: Option<&'a str>, pool: TenantLicense) -> PoolEntry<'a> {
    PoolEntry {
        name,
        description,
        pooled: pool.pooled(),
        allocated: pool.allocation.map(|a| Allocated::of(a, None)),
        currently_allocated: pool.currently_allocated,
        unlimited_groups: pool.unlimited_groups,
        remaining: pool.remaining(),
    }
}

/// `GET /api/v1/tenants/{tenant_id}/licenses/`: every catalog service, and every pack the tenant
/// defined or holds, with the tenant's allocation and what its groups hold; with
/// `?licensed=true`, the entries that are pooled or held by a group.
pub async fn get_tenant<S: TenantStore, C: Send + Sync>(
    State(app): Shared<S, C>,
    TenantPath(tenant): TenantPath,
    input: Input,
) -> Result<Response, ApiError> {
    let licensed_only = bool_query(&input, "licensed")?.unwrap_or(false);
    let state = app.licenses.tenant_state(&tenant).await?;
    let pool: HashMap<&Licensable, TenantLicense> =
        state.pool.iter().map(|(item, l)| (item, *l)).collect();
    let of = |item: Licensable| pool.get(&item).copied().unwrap_or_default();
    let keep = |l: &TenantLicense| !licensed_only || l.pooled() || l.held_by_groups();
    // Packs: defined ones with their description, and any with a pool record, by name.
    let mut packs: BTreeMap<&PackName, (Option<&str>, TenantLicense)> = BTreeMap::new();
    for pack in &state.packs {
        packs.insert(
            &pack.name,
            (Some(pack.description.as_str()), TenantLicense::default()),
        );
    }
    for (item, l) in &state.pool {
        // A pack no longer defined stays listed while the tenant allocates it or groups hold it.
        if let Licensable::Pack(name) = item
            && (packs.contains_key(name) || *l != TenantLicense::default())
        {
            packs.entry(name).or_insert((Some(""), *l)).1 = *l;
        }
    }
    let view = TenantView {
        user_services: UserService::all()
            .map(|s| (s, of(Licensable::User(s))))
            .filter(|(_, l)| keep(l))
            .map(|(s, l)| entry(s.name(), None, l))
            .collect(),
        group_services: GroupService::all()
            .map(|s| (s, of(Licensable::Group(s))))
            .filter(|(_, l)| keep(l))
            .map(|(s, l)| entry(s.name(), None, l))
            .collect(),
        service_packs: packs
            .into_iter()
            .filter(|(_, (_, l))| keep(l))
            .map(|(name, (description, l))| entry(name.as_str(), description, l))
            .collect(),
    };
    Ok(conditional::weak(
        json_response(StatusCode::OK, &view),
        &state.version.to_string(),
    ))
}

/// `PUT /api/v1/tenants/{tenant_id}/licenses/`: the group PUT's body and answer, without
/// `auto_assign`; `"allocated": null` removes the tenant's allocation, an entry without
/// `allocated` is left alone, and the GET's read-only fields are ignored.
pub async fn put_tenant<S: TenantStore, C: Send + Sync>(
    State(app): Shared<S, C>,
    TenantPath(tenant): TenantPath,
    IfMatchHeader(if_match): IfMatchHeader,
    write: Write,
    input: Input,
) -> Result<Response, ApiError> {
    let body = json_object_body(&input)?;
    let put = licenses_body::parse(&body, Holder::Tenant).map_err(ApiError::BadRequest)?;
    let (ctx, answer) = write.answer(StatusCode::OK, &receipt(&put));
    app.licenses
        .update_tenant_licenses(&ctx, &tenant, &put.changes, if_match.as_ref())
        .await
        .map_err(|err| ApiError::from_store(err, |r| put_error(&put, r)))?;
    Ok(answer)
}

#[derive(Serialize)]
struct PackView<'a> {
    name: &'a str,
    description: &'a str,
    services: Vec<&'static str>,
}

impl<'a> From<&'a PackDefinition> for PackView<'a> {
    fn from(p: &'a PackDefinition) -> Self {
        PackView {
            name: p.name.as_str(),
            description: &p.description,
            services: p.services.iter().map(|s| s.name()).collect(),
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PacksView<'a> {
    service_packs: Vec<PackView<'a>>,
}

fn error(code: &'static str, field: &str, message: impl std::fmt::Display) -> ErrorItem {
    ErrorItem::new(code, format!("{field} {message}")).field(field)
}

/// A pack definition body: `{"name", "description", "services": [...]}`. On PUT the path names
/// the pack, and a body `name`, if any, must agree.
fn parse_pack(
    body: &Map<String, Value>,
    path: Option<&PackName>,
) -> Result<PackDefinition, ApiError> {
    let mut errors = Vec::new();
    for key in body.keys() {
        if !matches!(key.as_str(), "name" | "description" | "services") {
            errors.push(error(
                "UNKNOWN_FIELD",
                key,
                "is not a field of a service pack",
            ));
        }
    }
    let name = match (body.get("name"), path) {
        (Some(Value::String(n)), Some(p)) if n != p.as_str() => Err(error(
            "INVALID_VALUE",
            "name",
            "does not match the pack of the path",
        )),
        (None, Some(p)) | (Some(Value::String(_)), Some(p)) => Ok(p.clone()),
        (Some(Value::String(n)), None) => {
            PackName::parse(n.as_str()).map_err(|e| error("INVALID_VALUE", "name", e))
        }
        (None, None) => Err(error("MISSING_FIELD", "name", "is required")),
        (Some(_), _) => Err(error("INVALID_VALUE", "name", "must be a string")),
    };
    let description = match body.get("description") {
        None => Ok(String::new()),
        Some(Value::String(d)) if d.chars().count() <= PackDefinition::MAX_DESCRIPTION_CHARS => {
            Ok(d.clone())
        }
        Some(Value::String(_)) => Err(error(
            "INVALID_VALUE",
            "description",
            format_args!(
                "must be at most {} characters",
                PackDefinition::MAX_DESCRIPTION_CHARS
            ),
        )),
        Some(_) => Err(error("INVALID_VALUE", "description", "must be a string")),
    };
    let mut services = Vec::new();
    match body.get("services") {
        Some(Value::Array(items)) if items.is_empty() => errors.push(error(
            "INVALID_VALUE",
            "services",
            "must name at least one user service",
        )),
        Some(Value::Array(items)) if items.len() > PackDefinition::MAX_SERVICES => {
            errors.push(error(
                "INVALID_VALUE",
                "services",
                format_args!(
                    "names {} services; a pack holds at most {}",
                    items.len(),
                    PackDefinition::MAX_SERVICES
                ),
            ))
        }
        Some(Value::Array(items)) => {
            let mut seen = HashSet::new();
            for (i, item) in items.iter().enumerate() {
                let field = format!("services[{i}]");
                let Value::String(n) = item else {
                    errors.push(error("INVALID_VALUE", &field, "must be a string"));
                    continue;
                };
                match UserService::parse(n) {
                    Ok(s) if seen.insert(s) => services.push(s),
                    Ok(_) => errors.push(
                        error("DUPLICATE_NAME", &field, format_args!("repeats {n}"))
                            .name(n.clone()),
                    ),
                    Err(_) => errors.push(
                        ErrorItem::new(
                            "UNKNOWN_SERVICE",
                            format!("{n:?} is not a user service of the catalog"),
                        )
                        .field(field)
                        .name(n.clone()),
                    ),
                }
            }
        }
        Some(_) => errors.push(error("INVALID_VALUE", "services", "must be an array")),
        None => errors.push(error("MISSING_FIELD", "services", "is required")),
    }
    let name = name.map_err(|e| errors.push(e)).ok();
    let description = description.map_err(|e| errors.push(e)).ok();
    match (name, description) {
        (Some(name), Some(description)) if errors.is_empty() => Ok(PackDefinition {
            name,
            description,
            services,
        }),
        _ => Err(ApiError::BadRequest(errors)),
    }
}

fn no_such_pack(name: &PackName) -> ApiError {
    ApiError::NoSuch(format!(
        "the tenant has no service pack {:?}",
        name.as_str()
    ))
}

fn pack_error(name: &PackName) -> impl Fn(&crate::store::Rejection) -> ErrorItem + '_ {
    move |r| super::error::usage_error(&r.reason, name.as_str()).field("name")
}

pub async fn list_packs<S: TenantStore, C: Send + Sync>(
    State(app): Shared<S, C>,
    TenantPath(tenant): TenantPath,
) -> Result<Response, ApiError> {
    let state = app.licenses.tenant_state(&tenant).await?;
    let view = PacksView {
        service_packs: state.packs.iter().map(PackView::from).collect(),
    };
    Ok(json_response(StatusCode::OK, &view))
}

pub async fn get_pack<S: TenantStore, C: Send + Sync>(
    State(app): Shared<S, C>,
    PackPath(tenant, name): PackPath,
) -> Result<Response, ApiError> {
    match app.licenses.pack_definition(&tenant, &name).await? {
        Some(pack) => Ok(conditional::strong(
            json_response(StatusCode::OK, &PackView::from(&pack.value)),
            &pack.etag,
        )),
        None => Err(no_such_pack(&name)),
    }
}

pub async fn create_pack<S: TenantStore, C: Send + Sync>(
    State(app): Shared<S, C>,
    TenantPath(tenant): TenantPath,
    write: Write,
    input: Input,
) -> Result<Response, ApiError> {
    let pack = parse_pack(&json_object_body(&input)?, None)?;
    let (ctx, answer) = write.answer(StatusCode::CREATED, &PackView::from(&pack));
    if !app.licenses.create_pack(&ctx, &tenant, &pack).await? {
        return Err(ApiError::Conflict(vec![
            ErrorItem::new(
                "ALREADY_EXISTS",
                format!(
                    "the tenant already has a service pack {:?}",
                    pack.name.as_str()
                ),
            )
            .field("name")
            .name(pack.name.as_str()),
        ]));
    }
    Ok(answer)
}

pub async fn replace_pack<S: TenantStore, C: Send + Sync>(
    State(app): Shared<S, C>,
    PackPath(tenant, name): PackPath,
    IfMatchHeader(if_match): IfMatchHeader,
    write: Write,
    input: Input,
) -> Result<Response, ApiError> {
    let pack = parse_pack(&json_object_body(&input)?, Some(&name))?;
    let (ctx, answer) = write.answer(StatusCode::OK, &PackView::from(&pack));
    let replaced = app
        .licenses
        .replace_pack(&ctx, &tenant, &pack, if_match.as_ref())
        .await
        .map_err(|e| ApiError::from_store(e, pack_error(&name)))?;
    if !replaced {
        return Err(no_such_pack(&name));
    }
    Ok(answer)
}

pub async fn delete_pack<S: TenantStore, C: Send + Sync>(
    State(app): Shared<S, C>,
    PackPath(tenant, name): PackPath,
    IfMatchHeader(if_match): IfMatchHeader,
    write: Write,
) -> Result<Response, ApiError> {
    let (ctx, answer) = write.no_content();
    let deleted = app
        .licenses
        .delete_pack(&ctx, &tenant, &name, if_match.as_ref())
        .await
        .map_err(|e| ApiError::from_store(e, pack_error(&name)))?;
    if !deleted {
        return Err(no_such_pack(&name));
    }
    Ok(answer)
}
