//! The tenant's licenses pool: `GET`/`PUT /api/v1/tenants/{tenant_id}/licenses/`. The pool rule
//! lives in the store's conditions (`store/dynamo/tenant.rs`, `pool.rs`).

use super::body::Body;
use super::conditional::{self, IfMatchHeader};
use super::error::ApiError;
use super::licenses_put::LicensesPut;
use super::path::TenantPath;
use super::query::Query;
use super::response::json_response;
use super::state::{App, Licensing};
use super::views::Allocated;
use super::write::Write;
use crate::domain::{GroupService, Licensable, PackName, TenantLicense, UserService};
use crate::store::TenantStore;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{MethodRouter, get};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

pub const PATH: &str = "/api/v1/tenants/{tenant_id}/licenses";

pub fn methods() -> MethodRouter<Arc<Licensing>> {
    get(get_tenant).put(put_tenant)
}

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

/// Every catalog service, and every pack the tenant defined or holds, with the tenant's
/// allocation and what its groups hold; with `?licensed=true`, the entries that are pooled or
/// held by a group.
async fn get_tenant(
    app: App,
    TenantPath(tenant): TenantPath,
    query: Query,
) -> Result<Response, ApiError> {
    let licensed_only = query.flag("licensed")?;
    let state = app.store.tenant_state(&tenant).await?;
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

/// The group PUT's body and answer, without `auto_assign`; `"allocated": null` removes the
/// tenant's allocation, an entry without `allocated` is left alone, and the GET's read-only
/// fields are ignored.
async fn put_tenant(
    app: App,
    TenantPath(tenant): TenantPath,
    IfMatchHeader(if_match): IfMatchHeader,
    write: Write,
    Body(put): Body<LicensesPut>,
) -> Result<Response, ApiError> {
    let (ctx, answer) = write.answer(StatusCode::OK, &put.receipt());
    app.store
        .update_tenant_licenses(&ctx, &tenant, &put.changes, if_match.as_ref())
        .await
        .map_err(|err| ApiError::from_store(err, |r| put.refused(r)))?;
    Ok(answer)
}
