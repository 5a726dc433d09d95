//! A group's users as a whole: services and packs assigned to (`POST`) or taken from
//! (`DELETE`) many users at once (`.../groups/{group_id}/users/services/`, one transaction per
//! request), the users holding anything (`GET .../groups/{group_id}/users/`) and the holders of
//! one license (`GET .../groups/{group_id}/licenses/{kind}/{service}/holders/`), both paged. The
//! rules are the single-user routes' own, in the store (`store/dynamo/holdings.rs`); this file
//! parses and renders.

use super::body::{Body, Errors, FromBody, Object, duplicate_name, invalid, too_many};
use super::error::{ApiError, ErrorItem, too_many_for_one, usage_error};
use super::path::{GroupPath, HeldPath, PathIds};
use super::query::Query;
use super::response::json_response;
use super::state::{App, Licensing};
use super::usage::{assignables, user_field};
use super::views::HoldingsView;
use super::write::Write;
use crate::domain::usage::actions_needed;
use crate::domain::{Assignable, GroupRef, Licensable, UserId, UserItems};
use crate::store::{
    Holds, MAX_USERS_PAGE, Outcomes, StoreError, UsageStore, UserCursor, UsersPage,
};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{MethodRouter, get, post};
use serde::Serialize;
use std::collections::HashSet;
use std::sync::Arc;

pub const USERS: &str = "/api/v1/tenants/{tenant_id}/groups/{group_id}/users";
pub const BULK: &str = "/api/v1/tenants/{tenant_id}/groups/{group_id}/users/services";
pub const HOLDERS: &str =
    "/api/v1/tenants/{tenant_id}/groups/{group_id}/licenses/{kind}/{service}/holders";

/// The most users one bulk request names. Each user's item is at least one action of the
/// request's transaction, so more could never fit; the exact limit is counted in actions
/// ([`actions_needed`]).
pub const MAX_USERS_PER_REQUEST: usize = 100;

/// The page size of the lists when the query names none.
const DEFAULT_PAGE: usize = 50;

pub fn users_methods() -> MethodRouter<Arc<Licensing>> {
    get(list_users)
}

pub fn bulk_methods() -> MethodRouter<Arc<Licensing>> {
    post(assign).delete(unassign)
}

pub fn holders_methods() -> MethodRouter<Arc<Licensing>> {
    get(list_holders)
}

/// `{"users": [{"user_id", "services": [{"name"}], "servicePacks": [{"name"}]}, ...]}`: each
/// user once, each user's lists as a single-user request takes them.
pub struct Bulk(Vec<UserItems>);

impl FromBody for Bulk {
    fn parse(body: &Object<'_>, _: &PathIds, errors: &mut Errors) -> Option<Self> {
        body.refuse_unknown(errors, |k| k == "users");
        let at = body.at_key("users");
        let entries = body.required("users", body.array("users", errors), errors)?;
        if entries.is_empty() {
            errors.push(invalid(&at, "must name at least one user"));
            return None;
        }
        if entries.len() > MAX_USERS_PER_REQUEST {
            errors.push(too_many("users", MAX_USERS_PER_REQUEST, entries.len()).field("users"));
            return None;
        }
        let mut seen = HashSet::new();
        let mut users = Vec::with_capacity(entries.len());
        for (i, value) in entries.iter().enumerate() {
            let entry = match Object::of(value, at.index(i)) {
                Ok(entry) => entry,
                Err(e) => {
                    errors.push(e);
                    continue;
                }
            };
            let user = user_id(&entry, errors);
            // No cap per user here: the request's actions are counted below and in the store.
            let items = assignables(&entry, &["user_id"], usize::MAX, errors);
            let Some(user) = user else { continue };
            if !seen.insert(user.as_str().to_owned()) {
                errors.push(duplicate_name(
                    &entry.at_key("user_id"),
                    user.as_str(),
                    "users",
                ));
                continue;
            }
            users.push(UserItems { user, items });
        }
        // What the request needs at the least (no pack's services counted, no key, no check of
        // the blocked services): the exact count, before anything is written, is the store's.
        let least = actions_needed(&users, |_, _| &[], 1, false);
        if !least.fits() {
            // Without packs, the users said to fit are counted with a key and the check, so they
            // fit whatever the request; with packs, how many fit depends on their definitions.
            let packs = users
                .iter()
                .flat_map(|u| &u.items)
                .any(|i| matches!(i, Assignable::Pack(_)));
            let fit = (!packs).then(|| actions_needed(&users, |_, _| &[], 3, false).fit);
            errors.push(too_many_for_one(
                &format!("at least {}", least.actions),
                fit,
            ));
        }
        Some(Bulk(users))
    }
}

fn user_id(entry: &Object<'_>, errors: &mut Errors) -> Option<UserId> {
    let text = entry.required("user_id", entry.string("user_id", errors), errors)?;
    errors.take(UserId::parse(text).map_err(|e| invalid(&entry.at_key("user_id"), e)))
}

/// The answer: every user in request order, each item with what the request did to it.
#[derive(Serialize)]
struct BulkView<'a> {
    users: Vec<BulkUser<'a>>,
}

#[derive(Serialize)]
struct BulkUser<'a> {
    user_id: &'a str,
    services: Vec<ItemStatus<'a>>,
    #[serde(rename = "servicePacks")]
    service_packs: Vec<ItemStatus<'a>>,
}

/// `{"name", "status"}`: `assigned` (or `unassigned`) when the request changed it, `already`
/// when it already was so.
#[derive(Serialize)]
struct ItemStatus<'a> {
    name: &'a str,
    status: &'static str,
}

/// The answer of `users` given `outcomes`, encoded; `done` is what a changed item became.
fn render(users: &[UserItems], outcomes: &Outcomes, done: &'static str) -> String {
    let view = BulkView {
        users: users
            .iter()
            .zip(outcomes)
            .map(|(u, changed)| {
                let mut entry = BulkUser {
                    user_id: u.user.as_str(),
                    services: Vec::new(),
                    service_packs: Vec::new(),
                };
                for (item, changed) in u.items.iter().zip(changed) {
                    let status = ItemStatus {
                        name: item.name(),
                        status: if *changed { done } else { "already" },
                    };
                    match item {
                        Assignable::Service(_) => entry.services.push(status),
                        Assignable::Pack(_) => entry.service_packs.push(status),
                    }
                }
                entry
            })
            .collect(),
    };
    // Our own view of strings always serializes.
    serde_json::to_string(&view).unwrap_or_default()
}

/// The user and the position in that user's items of the `index`th item of all users' items.
fn locate(users: &[UserItems], mut index: usize) -> Option<(usize, usize)> {
    for (u, user) in users.iter().enumerate() {
        if index < user.items.len() {
            return Some((u, index));
        }
        index -= user.items.len();
    }
    None
}

/// One error per refused item, naming its user and where it is in the body.
fn refused(err: StoreError, users: &[UserItems]) -> ApiError {
    ApiError::from_store(err, |r| {
        let Some((u, i)) = locate(users, r.index) else {
            return usage_error(&r.reason, "the request");
        };
        let items = &users[u].items;
        usage_error(&r.reason, items[i].name())
            .field(format!("users[{u}].{}", user_field(items, i)))
            .user(users[u].user.as_str())
    })
}

async fn assign(
    app: App,
    GroupPath(group): GroupPath,
    write: Write,
    Body(Bulk(users)): Body<Bulk>,
) -> Result<Response, ApiError> {
    let render = |outcomes: &Outcomes| render(&users, outcomes, "assigned");
    // The answer depends on what the users already hold: the store's plan says, and the
    // idempotency record of the transaction that commits keeps that plan's answer (the store
    // gives each plan's record its body through `render`).
    let (ctx, _) = write.kept(StatusCode::CREATED, Vec::new());
    let outcomes = app
        .store
        .assign_to_users(&ctx, &group, &users, &app.configs, Some(&render))
        .await
        .map_err(|e| refused(e, &users))?;
    Ok(write
        .kept(StatusCode::CREATED, render(&outcomes).into_bytes())
        .1)
}

async fn unassign(
    app: App,
    GroupPath(group): GroupPath,
    write: Write,
    Body(Bulk(users)): Body<Bulk>,
) -> Result<Response, ApiError> {
    let render = |outcomes: &Outcomes| render(&users, outcomes, "unassigned");
    let (ctx, _) = write.kept(StatusCode::OK, Vec::new());
    let outcomes = app
        .store
        .unassign_from_users(&ctx, &group, &users, Some(&render))
        .await
        .map_err(|e| refused(e, &users))?;
    Ok(write.kept(StatusCode::OK, render(&outcomes).into_bytes()).1)
}

/// `limit` (1–100, default 50) and `next` of a list; every bad one is named.
fn page(query: &Query) -> Result<(usize, Option<UserCursor>), ApiError> {
    let mut errors = Vec::new();
    let mut limit = DEFAULT_PAGE;
    if let Some(text) = query.get("limit") {
        match text.parse::<usize>() {
            Ok(n) if (1..=MAX_USERS_PAGE).contains(&n) => limit = n,
            _ => errors.push(
                ErrorItem::new(
                    "INVALID_QUERY",
                    format!("limit must be an integer from 1 to {MAX_USERS_PAGE}"),
                )
                .field("limit"),
            ),
        }
    }
    let mut after = None;
    if let Some(text) = query.get("next") {
        match UserCursor::parse(text) {
            Some(cursor) => after = Some(cursor),
            None => errors.push(
                ErrorItem::new("INVALID_QUERY", "next is not a cursor this API handed out")
                    .field("next"),
            ),
        }
    }
    if errors.is_empty() {
        Ok((limit, after))
    } else {
        Err(ApiError::BadRequest(errors))
    }
}

#[derive(Serialize)]
struct UsersView<'a> {
    users: Vec<UserEntry<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next: Option<String>,
}

#[derive(Serialize)]
struct UserEntry<'a> {
    user_id: &'a str,
    #[serde(flatten)]
    holdings: HoldingsView<'a>,
}

async fn list_users(
    app: App,
    GroupPath(group): GroupPath,
    query: Query,
) -> Result<Response, ApiError> {
    let (limit, after) = page(&query)?;
    let UsersPage { users, next } = app
        .store
        .group_users(&group, &Holds::Anything, after.as_ref(), limit)
        .await?;
    let view = UsersView {
        users: users
            .iter()
            .map(|(user, holdings)| UserEntry {
                user_id: user.as_str(),
                holdings: HoldingsView::of(holdings),
            })
            .collect(),
        next: next.map(|c| c.encode()),
    };
    Ok(json_response(StatusCode::OK, &view))
}

#[derive(Serialize)]
struct HoldersView<'a> {
    name: &'a str,
    holders: Vec<Holder<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next: Option<String>,
}

/// A user holding the license, and by which routes (`direct`, packs).
#[derive(Serialize)]
struct Holder<'a> {
    user_id: &'a str,
    via: Vec<&'a str>,
}

async fn list_holders(
    app: App,
    HeldPath(group, held): HeldPath,
    query: Query,
) -> Result<Response, ApiError> {
    let (limit, after) = page(&query)?;
    let UsersPage { users, next } = app
        .store
        .group_users(&group, &held, after.as_ref(), limit)
        .await?;
    let holders = users
        .iter()
        .map(|(user, holdings)| Holder {
            user_id: user.as_str(),
            via: match &held {
                Holds::Service(service) => holdings
                    .services
                    .iter()
                    .filter(|h| h.service == *service)
                    .flat_map(|h| h.via())
                    .collect(),
                // A pack is assigned to a user directly.
                Holds::Pack(_) | Holds::Anything => vec!["direct"],
            },
        })
        .collect();
    let name = match &held {
        Holds::Service(service) => service.name(),
        Holds::Pack(pack) => pack.as_str(),
        Holds::Anything => "",
    };
    let view = HoldersView {
        name,
        holders,
        next: next.map(|c| c.encode()),
    };
    Ok(json_response(StatusCode::OK, &view))
}

/// The path listing who holds `item` in `group` (user services by slug); `None` for group
/// services, whose usage is their instances.
pub fn holders_path(group: &GroupRef, item: &Licensable) -> Option<String> {
    let (kind, name) = match item {
        Licensable::User(service) => ("userServices", service.slug()),
        Licensable::Pack(pack) => ("servicePacks", segment(pack.as_str())),
        Licensable::Group(_) => return None,
    };
    Some(format!(
        "/api/v1/tenants/{}/groups/{}/licenses/{kind}/{name}/holders/",
        segment(group.tenant.as_str()),
        segment(group.group.as_str())
    ))
}

/// A path segment, percent-encoded but for unreserved characters.
fn segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{GroupId, PackName, TenantId, UserService};

    fn users(counts: &[usize]) -> Vec<UserItems> {
        counts
            .iter()
            .enumerate()
            .map(|(i, n)| UserItems {
                user: UserId::parse(format!("u{i}")).unwrap(),
                items: UserService::all()
                    .take(*n)
                    .map(Assignable::Service)
                    .collect(),
            })
            .collect()
    }

    #[test]
    fn an_index_of_all_items_is_found_in_its_user() {
        let users = users(&[2, 0, 3]);
        assert_eq!(locate(&users, 0), Some((0, 0)));
        assert_eq!(locate(&users, 1), Some((0, 1)));
        assert_eq!(locate(&users, 2), Some((2, 0)));
        assert_eq!(locate(&users, 4), Some((2, 2)));
        assert_eq!(locate(&users, 5), None);
    }

    #[test]
    fn the_answer_says_per_item_what_changed_in_request_order() {
        let mut users = users(&[1, 1]);
        users[1]
            .items
            .push(Assignable::Pack(PackName::parse("Basic").unwrap()));
        let text = render(&users, &vec![vec![true], vec![false, true]], "assigned");
        let first = UserService::all().next().unwrap().name();
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&text).unwrap(),
            serde_json::json!({"users": [
                {"user_id": "u0", "services": [{"name": first, "status": "assigned"}], "servicePacks": []},
                {"user_id": "u1", "services": [{"name": first, "status": "already"}],
                 "servicePacks": [{"name": "Basic", "status": "assigned"}]},
            ]})
        );
    }

    #[test]
    fn holders_paths_are_addressable() {
        let group = GroupRef {
            tenant: TenantId::parse("acme corp").unwrap(),
            group: GroupId::parse("sales").unwrap(),
        };
        let cw = Licensable::User(UserService::parse("Call Waiting").unwrap());
        assert_eq!(
            holders_path(&group, &cw).as_deref(),
            Some(
                "/api/v1/tenants/acme%20corp/groups/sales/licenses/userServices/call-waiting/holders/"
            )
        );
        let pack = Licensable::Pack(PackName::parse("Gold + Extras").unwrap());
        assert_eq!(
            holders_path(&group, &pack).as_deref(),
            Some(
                "/api/v1/tenants/acme%20corp/groups/sales/licenses/servicePacks/Gold%20%2B%20Extras/holders/"
            )
        );
    }

    #[test]
    fn paging_parameters_are_checked() {
        assert!(page(&Query::parse("limit=0")).is_err());
        assert!(page(&Query::parse("limit=101")).is_err());
        assert!(page(&Query::parse("next=zz")).is_err());
        let (limit, after) = page(&Query::parse("limit=100&next=6131")).unwrap();
        assert_eq!(
            (limit, after.map(|c| c.encode())),
            (100, Some("6131".into()))
        );
    }
}
