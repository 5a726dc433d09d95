//! The tenant's service pack definitions: `/api/v1/tenants/{tenant_id}/service_packs/` (list,
//! create) and `.../service_packs/{pack_name}/` (read, replace, delete).

use super::body::{
    Body, Catalog, Errors, FromBody, Object, duplicate_name, invalid, missing, too_long,
    unknown_service, wrong_type,
};
use super::conditional::{self, IfMatchHeader};
use super::error::{ApiError, ErrorItem, usage_error};
use super::path::{PackPath, PathIds, TenantPath};
use super::response::json_response;
use super::state::{App, Licensing};
use super::write::Write;
use crate::domain::{PackDefinition, PackName, UserService};
use crate::store::{Rejection, TenantStore};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{MethodRouter, get};
use serde::Serialize;
use serde_json::Value;
use std::collections::HashSet;
use std::sync::Arc;

pub const COLLECTION: &str = "/api/v1/tenants/{tenant_id}/service_packs";
pub const ITEM: &str = "/api/v1/tenants/{tenant_id}/service_packs/{pack_name}";

pub fn collection() -> MethodRouter<Arc<Licensing>> {
    get(list_packs).post(create_pack)
}

pub fn item() -> MethodRouter<Arc<Licensing>> {
    get(get_pack).put(replace_pack).delete(delete_pack)
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

/// `{"name", "description", "services": [...]}`. On PUT the path names the pack, and a body
/// `name`, if any, must agree.
impl FromBody for PackDefinition {
    fn parse(body: &Object<'_>, path: &PathIds, errors: &mut Errors) -> Option<Self> {
        body.refuse_unknown(errors, |k| matches!(k, "name" | "description" | "services"));
        // In the order a client reads them back: unknown fields, services, name, description.
        let services = services(body, errors);
        let name_at = body.at_key("name");
        let name = match (body.get("name"), &path.pack) {
            (Some(Value::String(n)), Some(p)) if n != p.as_str() => {
                Err(invalid(&name_at, "does not match the path"))
            }
            (None | Some(Value::String(_)), Some(p)) => Ok(p.clone()),
            (Some(Value::String(n)), None) => {
                PackName::parse(n.as_str()).map_err(|e| invalid(&name_at, e))
            }
            (None, None) => Err(missing(&name_at)),
            (Some(_), _) => Err(wrong_type(&name_at, "a string")),
        };
        let description = match body.get("description") {
            None => Ok(String::new()),
            Some(Value::String(d))
                if d.chars().count() <= PackDefinition::MAX_DESCRIPTION_CHARS =>
            {
                Ok(d.clone())
            }
            Some(Value::String(_)) => Err(too_long(
                &body.at_key("description"),
                PackDefinition::MAX_DESCRIPTION_CHARS,
            )),
            Some(_) => Err(wrong_type(&body.at_key("description"), "a string")),
        };
        let (name, description) = (errors.take(name), errors.take(description));
        Some(PackDefinition {
            name: name?,
            description: description?,
            services: services?,
        })
    }
}

/// The pack's `services`: 1 to [`PackDefinition::MAX_SERVICES`] catalog user services, each
/// named once.
fn services(body: &Object<'_>, errors: &mut Errors) -> Option<Vec<UserService>> {
    let at = body.at_key("services");
    let items = body.required("services", body.array("services", errors), errors)?;
    if items.is_empty() {
        errors.push(invalid(&at, "must name at least one user service"));
        return None;
    }
    if items.len() > PackDefinition::MAX_SERVICES {
        errors.push(invalid(
            &at,
            format_args!(
                "names {} services; a pack holds at most {}",
                items.len(),
                PackDefinition::MAX_SERVICES
            ),
        ));
        return None;
    }
    let mut services = Vec::with_capacity(items.len());
    let mut seen = HashSet::new();
    for (i, item) in items.iter().enumerate() {
        let at = at.index(i);
        let Some(n) = item.as_str() else {
            errors.push(wrong_type(&at, "a string"));
            continue;
        };
        match UserService::parse(n) {
            Ok(s) if seen.insert(s) => services.push(s),
            Ok(_) => errors.push(duplicate_name(&at, n, "services")),
            Err(_) => errors.push(unknown_service(&at, n, Catalog::User)),
        }
    }
    Some(services)
}

fn no_such_pack(name: &PackName) -> ApiError {
    ApiError::NoSuch(format!(
        "the tenant has no service pack {:?}",
        name.as_str()
    ))
}

/// The error of a pack a write refused.
fn refused(name: &PackName) -> impl Fn(&Rejection) -> ErrorItem + '_ {
    move |r| usage_error(&r.reason, name.as_str()).field("name")
}

async fn list_packs(app: App, TenantPath(tenant): TenantPath) -> Result<Response, ApiError> {
    let state = app.store.tenant_state(&tenant).await?;
    let view = PacksView {
        service_packs: state.packs.iter().map(PackView::from).collect(),
    };
    Ok(json_response(StatusCode::OK, &view))
}

async fn get_pack(app: App, PackPath(tenant, name): PackPath) -> Result<Response, ApiError> {
    match app.store.pack_definition(&tenant, &name).await? {
        Some(pack) => Ok(conditional::strong(
            json_response(StatusCode::OK, &PackView::from(&pack.value)),
            &pack.etag,
        )),
        None => Err(no_such_pack(&name)),
    }
}

async fn create_pack(
    app: App,
    TenantPath(tenant): TenantPath,
    write: Write,
    Body(pack): Body<PackDefinition>,
) -> Result<Response, ApiError> {
    let (ctx, answer) = write.answer(StatusCode::CREATED, &PackView::from(&pack));
    if !app.store.create_pack(&ctx, &tenant, &pack).await? {
        return Err(ApiError::Conflict(vec![ErrorItem::already_exists(
            "name",
            "the tenant's service pack",
            pack.name.as_str(),
        )]));
    }
    Ok(answer)
}

async fn replace_pack(
    app: App,
    PackPath(tenant, name): PackPath,
    IfMatchHeader(if_match): IfMatchHeader,
    write: Write,
    Body(pack): Body<PackDefinition>,
) -> Result<Response, ApiError> {
    let (ctx, answer) = write.answer(StatusCode::OK, &PackView::from(&pack));
    let replaced = app
        .store
        .replace_pack(&ctx, &tenant, &pack, if_match.as_ref())
        .await
        .map_err(|e| ApiError::from_store(e, refused(&name)))?;
    if !replaced {
        return Err(no_such_pack(&name));
    }
    Ok(answer)
}

async fn delete_pack(
    app: App,
    PackPath(tenant, name): PackPath,
    IfMatchHeader(if_match): IfMatchHeader,
    write: Write,
) -> Result<Response, ApiError> {
    let (ctx, answer) = write.no_content();
    let deleted = app
        .store
        .delete_pack(&ctx, &tenant, &name, if_match.as_ref())
        .await
        .map_err(|e| ApiError::from_store(e, refused(&name)))?;
    if !deleted {
        return Err(no_such_pack(&name));
    }
    Ok(answer)
}
