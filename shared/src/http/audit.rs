//! The audit trails: `GET /api/v1/tenants/{tenant_id}/audit/` (a tenant's licenses, packs and
//! its groups' licenses and usage; operators and the tenant's admins, a group admin its own
//! group's events only) and `GET /api/v1/configs/user_services/audit/` (the configuration;
//! operators). Newest first, paged by an opaque `next` cursor; filters `group_id` (tenant
//! trail), `since` / `until` (RFC 3339, inclusive) and `limit` (1–100, default 50).
//!
//! The records themselves are written by the writes, each in its own transaction
//! (`store/dynamo/audit.rs`).

use super::auth::Caller;
use super::error::{ApiError, ErrorItem};
use super::path::PathIds;
use super::query::Query;
use super::response::json_response;
use super::state::{App, Configs};
use crate::domain::GroupId;
use crate::store::audit::{AuditLog, AuditPage, AuditQuery, Cursor, DEFAULT_PAGE, MAX_PAGE, Trail};
use crate::store::dynamo::DynamoConfigStore;
use aws_sdk_dynamodb::primitives::{DateTime, DateTimeFormat};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{MethodRouter, get};
use serde::Serialize;
use serde_json::Value;
use std::sync::Arc;

pub const TENANT_TRAIL: &str = "/api/v1/tenants/{tenant_id}/audit";
pub const CONFIGS_TRAIL: &str = "/api/v1/configs/user_services/audit";

pub fn tenant_trail() -> MethodRouter<Arc<super::state::Licensing>> {
    get(read_tenant_trail)
}

pub fn configs_trail() -> MethodRouter<DynamoConfigStore> {
    get(read_configs_trail)
}

#[derive(Serialize)]
struct PageView {
    events: Vec<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next: Option<String>,
}

fn answer(page: AuditPage) -> Response {
    json_response(
        StatusCode::OK,
        &PageView {
            events: page.events,
            next: page.next.map(|c| c.encode()),
        },
    )
}

async fn read_tenant_trail(
    app: App,
    Caller(caller): Caller,
    ids: PathIds,
    query: Query,
) -> Result<Response, ApiError> {
    let tenant = ids.tenant()?.clone();
    let mut wanted = audit_query(&query, true)?;
    // A group admin reads its own group's events only: the filter is forced, another is a 403.
    if let Some(own) = caller.only_group() {
        match &wanted.group {
            Some(group) if *group != own.group => return Err(ApiError::Forbidden),
            _ => wanted.group = Some(own.group.clone()),
        }
    }
    let trail = Trail::Tenant {
        tenant,
        group: None,
    };
    Ok(answer(app.store.audit_events(&trail, &wanted).await?))
}

async fn read_configs_trail(configs: Configs, query: Query) -> Result<Response, ApiError> {
    let wanted = audit_query(&query, false)?;
    Ok(answer(
        configs.audit_events(&Trail::Configs, &wanted).await?,
    ))
}

/// The trail's query parameters; every bad one is named.
fn audit_query(query: &Query, groups: bool) -> Result<AuditQuery, ApiError> {
    let mut errors = Vec::new();
    let mut bad = |name: &'static str, why: &str| {
        errors.push(ErrorItem::new("INVALID_QUERY", format!("{name} {why}")).field(name));
    };
    let mut wanted = AuditQuery {
        group: None,
        since_ms: None,
        until_ms: None,
        limit: DEFAULT_PAGE,
        after: None,
    };
    if groups && let Some(group) = query.get("group_id") {
        match GroupId::parse(group) {
            Ok(group) => wanted.group = Some(group),
            Err(e) => bad("group_id", &format!("is not a group id: {e}")),
        }
    }
    for (name, slot) in [
        ("since", &mut wanted.since_ms),
        ("until", &mut wanted.until_ms),
    ] {
        if let Some(text) = query.get(name) {
            match DateTime::from_str(text, DateTimeFormat::DateTimeWithOffset) {
                Ok(at) => *slot = Some(at.to_millis().unwrap_or(0)),
                Err(_) => bad(
                    name,
                    "must be an RFC 3339 date-time, e.g. 2026-12-02T18:00:00Z",
                ),
            }
        }
    }
    if let (Some(since), Some(until)) = (wanted.since_ms, wanted.until_ms)
        && since > until
    {
        bad("until", "must not be before since");
    }
    if let Some(limit) = query.get("limit") {
        match limit.parse::<usize>() {
            Ok(n) if (1..=MAX_PAGE).contains(&n) => wanted.limit = n,
            _ => bad("limit", &format!("must be an integer from 1 to {MAX_PAGE}")),
        }
    }
    if let Some(next) = query.get("next") {
        match Cursor::parse(next) {
            Some(cursor) => wanted.after = Some(cursor),
            None => bad("next", "is not a cursor this API handed out"),
        }
    }
    if errors.is_empty() {
        Ok(wanted)
    } else {
        Err(ApiError::BadRequest(errors))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_parameters_are_each_named() {
        let query = Query::parse(
            "group_id=&since=yesterday&until=2026-12-02T18:00:00%2B01:00&limit=101&next=zz",
        );
        let Err(ApiError::BadRequest(errors)) = audit_query(&query, true) else {
            panic!("a 400");
        };
        let fields: Vec<_> = errors.iter().filter_map(|e| e.field.as_deref()).collect();
        assert_eq!(fields, ["group_id", "since", "limit", "next"]);
    }

    #[test]
    fn times_with_offsets_are_read_as_instants() {
        let query = Query::parse("until=2026-12-02T19:00:00%2B01:00&limit=100");
        let wanted = audit_query(&query, false).unwrap();
        assert_eq!(wanted.until_ms, Some(1_796_234_400_000));
        assert_eq!(wanted.limit, 100);
    }
}
