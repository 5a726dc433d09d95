//! A group's licenses: `GET`/`PUT /api/v1/tenants/{tenant_id}/groups/{group_id}/licenses/`.

use super::auth::Caller;
use super::body::Body;
use super::conditional::{self, IfMatchHeader};
use super::error::{ApiError, ErrorItem};
use super::licenses_put::LicensesPut;
use super::path::GroupPath;
use super::query::Query;
use super::response::json_response;
use super::state::{App, Licensing};
use super::users;
use super::views::Allocated;
use super::write::Write;
use crate::domain::{GroupLicenses, License, UserService};
use crate::store::{ConfigStore, LicenseStore, RejectReason};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{MethodRouter, get};
use serde::Serialize;
use std::sync::Arc;

pub const PATH: &str = "/api/v1/tenants/{tenant_id}/groups/{group_id}/licenses";

pub fn methods() -> MethodRouter<Arc<Licensing>> {
    get(get_group).put(put_group)
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

async fn get_group(
    app: App,
    GroupPath(group): GroupPath,
    query: Query,
) -> Result<Response, ApiError> {
    let licensed_only = query.flag("licensed")?;
    let filter = query.audience()?;
    if !filter.is_filtering() {
        let licenses = app.store.tagged_group_licenses(&group).await?;
        let body = render(&licenses.value, licensed_only, None);
        return Ok(conditional::weak(
            json_response(StatusCode::OK, &body),
            &licenses.etag,
        ));
    }
    // Both reads at once: the answer costs one round trip of latency.
    let (licenses, all_configs) = tokio::join!(
        app.store.tagged_group_licenses(&group),
        app.configs.user_service_configs()
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

async fn put_group(
    app: App,
    caller: Caller,
    GroupPath(group): GroupPath,
    IfMatchHeader(if_match): IfMatchHeader,
    write: Write,
    Body(put): Body<LicensesPut>,
) -> Result<Response, ApiError> {
    let (ctx, answer) = write.answer(StatusCode::OK, &put.receipt());
    app.store
        .update_group_licenses(
            &ctx,
            &group,
            &put.group_changes(),
            caller.0.authority(),
            if_match.as_ref(),
        )
        .await
        .map_err(|err| {
            ApiError::from_store(err, |r| {
                let item = put.refused(r);
                // Who holds it is what the operator acts on.
                match (&r.reason, put.item(r.index)) {
                    (RejectReason::BelowUsage { .. }, Some(licensable)) => {
                        match users::holders_path(&group, licensable) {
                            Some(path) => ErrorItem {
                                message: format!("{}; its holders: {path}", item.message),
                                ..item.holders(path)
                            },
                            None => item,
                        }
                    }
                    _ => item,
                }
            })
        })?;
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Allocation;

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
