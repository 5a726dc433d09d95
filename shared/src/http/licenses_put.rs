//! The body of the licenses PUT (group and tenant), its answer and the errors of its refused
//! items: what the two resources share.
//!
//! Every bad item gets its own error with the JSON path of the offending value; the read-only
//! fields of a GET round-trip, so a body that is what the GET answered changes nothing. Group
//! entries may carry `inUse` and `noInstance`; tenant entries `pooled`, `currentlyAllocated`,
//! `unlimitedGroups`, `remaining` and `description`, and their `allocated` may be `null` (the
//! tenant's allocation is removed) or absent (left as it is).

use super::body::{
    At, Catalog, Errors, FromBody, Object, duplicate_name, invalid, missing, too_many,
    unknown_field, unknown_service, wrong_type,
};
use super::error::{ErrorItem, usage_error};
use super::path::PathIds;
use crate::domain::{
    Allocation, AllocationError, GroupService, Licensable, LicenseChange, PackName, PoolChange,
    PoolRejection, UserService,
};
use crate::store::{RejectReason, Rejection};
use serde::Serialize;
use serde_json::Value;
use std::collections::HashSet;

/// The three lists of a licenses body, in response order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum List {
    UserServices,
    GroupServices,
    ServicePacks,
}

impl List {
    pub const ALL: [List; 3] = [List::UserServices, List::GroupServices, List::ServicePacks];

    pub fn key(self) -> &'static str {
        match self {
            List::UserServices => "userServices",
            List::GroupServices => "groupServices",
            List::ServicePacks => "servicePacks",
        }
    }
}

/// The most entries one licenses body may name: the whole catalog (what a GET answers) and
/// the tenant's packs fit. How many of them may *change* in one request is
/// [`LicenseChange::MAX_PER_REQUEST`], which the store checks against what is stored.
pub const MAX_ENTRIES: usize = 1_000;

/// A validated PUT: the entries that set or remove an allocation, in request order, and where
/// each came from. (A tenant entry without `allocated` leaves its item alone and is not here.)
#[derive(Debug)]
pub struct LicensesPut {
    /// The requested allocation of each item; `None` (tenant only) removes it.
    pub changes: Vec<PoolChange>,
    pub auto_assign: bool,
    /// `origins[i]` is the list and position of `changes[i]` in the request.
    pub origins: Vec<(List, usize)>,
    /// Which lists the request carried (the response echoes exactly those).
    pub present: [bool; 3],
}

impl LicensesPut {
    pub fn field(&self, index: usize, suffix: &str) -> String {
        let (list, i) = self.origins[index];
        format!("{}[{i}]{suffix}", list.key())
    }

    /// The changes of a group PUT (whose entries always carry an allocation).
    pub fn group_changes(&self) -> Vec<LicenseChange> {
        self.changes
            .iter()
            .map(|c| LicenseChange {
                item: c.item.clone(),
                allocation: c.allocation.unwrap_or(Allocation::NOT_LICENSED),
                auto_assign: self.auto_assign,
            })
            .collect()
    }

    /// The item of the change at `index`.
    pub fn item(&self, index: usize) -> Option<&Licensable> {
        self.changes.get(index).map(|c| &c.item)
    }

    /// The error of one refused item.
    pub fn refused(&self, r: &Rejection) -> ErrorItem {
        let change = &self.changes[r.index];
        let name = licensable_name(&change.item);
        let suffix = match r.reason {
            RejectReason::Pool(PoolRejection::PackNotDefined) => ".name",
            _ => ".allocated.maximum",
        };
        let item = usage_error(&r.reason, name).field(self.field(r.index, suffix));
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

    /// The success answer: `{"userServices": [{"name", "status": "updated"}], ...}`, one entry
    /// per requested item in request order, a list present exactly when the request carried it.
    pub fn receipt(&self) -> Receipt<'_> {
        let list = |list: List| {
            self.present[list as usize].then(|| {
                self.changes
                    .iter()
                    .zip(&self.origins)
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
}

#[derive(Serialize)]
pub struct Status<'a> {
    name: &'a str,
    status: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Receipt<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    user_services: Option<Vec<Status<'a>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    group_services: Option<Vec<Status<'a>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    service_packs: Option<Vec<Status<'a>>>,
}

/// Whose licenses a PUT sets: a group's (which may `auto_assign`) or a tenant's; the route
/// says which.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holder {
    Group,
    Tenant,
}

impl FromBody for LicensesPut {
    fn parse(body: &Object<'_>, path: &PathIds, errors: &mut Errors) -> Option<Self> {
        let holder = if path.group.is_some() {
            Holder::Group
        } else {
            Holder::Tenant
        };
        let mut auto_assign = false;
        let mut lists: [Option<&[Value]>; 3] = [None; 3];
        for key in body.keys() {
            match key {
                "auto_assign" if holder == Holder::Group => {
                    auto_assign = body.bool(key, errors).ok().flatten().unwrap_or(false);
                }
                other => match List::ALL.iter().position(|l| l.key() == other) {
                    Some(i) => lists[i] = body.array(key, errors).ok().flatten(),
                    None => errors.push(unknown_field(&body.at_key(key))),
                },
            }
        }
        let total: usize = lists.iter().flatten().map(|l| l.len()).sum();
        if total > MAX_ENTRIES {
            errors.push(too_many("licenses", MAX_ENTRIES, total));
            return None;
        }

        let mut put = LicensesPut {
            changes: Vec::with_capacity(total),
            auto_assign,
            origins: Vec::with_capacity(total),
            present: List::ALL.map(|l| body.get(l.key()).is_some()),
        };
        for (list, items) in List::ALL.into_iter().zip(lists) {
            let Some(items) = items else { continue };
            let at = body.at_key(list.key());
            let mut seen = HashSet::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                match parse_item(list, &at.index(i), item, holder) {
                    Ok((item, _)) if !seen.insert(item.clone()) => {
                        let name = licensable_name(&item);
                        errors.push(duplicate_name(&at.index(i).key("name"), name, list.key()));
                    }
                    Ok((item, Requested::Set(allocation))) => {
                        put.changes.push(PoolChange { item, allocation });
                        put.origins.push((list, i));
                    }
                    Ok((_, Requested::Keep)) => {}
                    Err(e) => errors.push(e),
                }
            }
        }
        Some(put)
    }
}

pub fn licensable_name(item: &Licensable) -> &str {
    match item {
        Licensable::User(s) => s.name(),
        Licensable::Group(s) => s.name(),
        Licensable::Pack(p) => p.as_str(),
    }
}

/// What an entry asks of its item's allocation.
enum Requested {
    /// Set it (`Some`), or remove the tenant's (`None`, from `"allocated": null`).
    Set(Option<Allocation>),
    /// Leave it as it is (a tenant entry without `allocated`).
    Keep,
}

/// The fields an entry may carry besides `name` and `allocated`: what the holder's GET answers
/// and a PUT ignores.
fn read_only(holder: Holder, key: &str) -> bool {
    match holder {
        Holder::Group => key == "inUse",
        Holder::Tenant => matches!(
            key,
            "pooled" | "currentlyAllocated" | "unlimitedGroups" | "remaining" | "description"
        ),
    }
}

/// One item of a list (at `at`); the first problem found is its error.
fn parse_item(
    list: List,
    at: &At,
    item: &Value,
    holder: Holder,
) -> Result<(Licensable, Requested), ErrorItem> {
    let entry = Object::of(item, at.clone())?;
    let name_at = at.key("name");
    let name = match entry.get("name") {
        Some(Value::String(s)) => s.as_str(),
        Some(_) => return Err(wrong_type(&name_at, "a string")),
        None => return Err(missing(&name_at)),
    };
    let named = |e: ErrorItem| e.name(name);
    if let Some(e) =
        entry.first_unknown(|k| matches!(k, "name" | "allocated") || read_only(holder, k))
    {
        return Err(named(e));
    }
    let item = match list {
        List::UserServices => UserService::parse(name)
            .map(Licensable::User)
            .map_err(|_| unknown_service(&name_at, name, Catalog::User)),
        List::GroupServices => GroupService::parse(name)
            .map(Licensable::Group)
            .map_err(|_| unknown_service(&name_at, name, Catalog::Group)),
        List::ServicePacks => PackName::parse(name)
            .map(Licensable::Pack)
            .map_err(|e| invalid(&name_at, e)),
    }
    .map_err(named)?;

    let allocated_at = at.key("allocated");
    let allocated = match (entry.get("allocated"), holder) {
        (Some(value @ Value::Object(_)), _) => Object::of(value, allocated_at)?,
        (Some(Value::Null), Holder::Tenant) => return Ok((item, Requested::Set(None))),
        (None, Holder::Tenant) => return Ok((item, Requested::Keep)),
        (Some(_), Holder::Tenant) => {
            return Err(named(wrong_type(&allocated_at, "an object or null")));
        }
        (Some(_), Holder::Group) => return Err(named(wrong_type(&allocated_at, "an object"))),
        (None, Holder::Group) => return Err(named(missing(&allocated_at))),
    };
    if let Some(e) = allocated.first_unknown(|k| match k {
        "unlimited" | "maximum" => true,
        "noInstance" => list == List::GroupServices,
        _ => false,
    }) {
        return Err(named(e));
    }
    let unlimited_at = allocated.at_key("unlimited");
    let unlimited = match allocated.get("unlimited") {
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(named(wrong_type(&unlimited_at, "a boolean"))),
        None => return Err(named(missing(&unlimited_at))),
    };
    let allocation = if unlimited {
        // With `unlimited: true` a maximum is ignored, as documented.
        Allocation::Unlimited
    } else {
        let maximum_at = allocated.at_key("maximum");
        match allocated.get("maximum") {
            // The message comes from `Allocation::MAX_LIMIT`, which enforces it.
            Some(v) => v
                .as_u64()
                .ok_or(AllocationError)
                .and_then(Allocation::limited)
                .map_err(|e| named(invalid(&maximum_at, e)))?,
            None => return Err(named(missing(&maximum_at))),
        }
    };
    Ok((item, Requested::Set(Some(allocation))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{GroupId, GroupRef, TenantId};
    use crate::http::error::ApiError;
    use serde_json::{Map, json};

    fn body(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => panic!("test bodies are objects"),
        }
    }

    /// The body parsed as the route of `holder` reads it.
    fn parse(body: &Map<String, Value>, holder: Holder) -> Result<LicensesPut, Vec<ErrorItem>> {
        let tenant = TenantId::parse("t").unwrap();
        let group = (holder == Holder::Group).then(|| GroupRef {
            tenant: tenant.clone(),
            group: GroupId::parse("g").unwrap(),
        });
        let ids = PathIds {
            tenant: Some(tenant),
            group,
            ..PathIds::default()
        };
        let bytes = serde_json::to_vec(body).unwrap();
        match super::super::body::parse::<LicensesPut>(&bytes, &ids) {
            Ok(put) => Ok(put),
            Err(ApiError::BadRequest(errors)) => Err(errors),
            Err(other) => panic!("expected a 400, got {other:?}"),
        }
    }

    fn parse_group(body: &Map<String, Value>) -> Result<LicensesPut, Vec<ErrorItem>> {
        parse(body, Holder::Group)
    }

    fn errors(v: Value) -> Vec<ErrorItem> {
        parse_group(&body(v)).expect_err("body should be refused")
    }

    #[test]
    fn a_tenant_put_has_no_auto_assign() {
        let errs = parse(
            &body(json!({"auto_assign": true, "servicePacks": []})),
            Holder::Tenant,
        )
        .expect_err("auto_assign is a group field");
        assert_eq!(errs[0].field.as_deref(), Some("auto_assign"));
        assert_eq!(errs[0].code, "UNKNOWN_FIELD");
    }

    #[test]
    fn the_documented_example_parses_in_request_order() {
        let put = parse_group(&body(json!({
            "userServices":  [{"name": "Call Forwarding Always", "allocated": {"unlimited": true}}],
            "groupServices": [{"name": "Hunt Group", "allocated": {"unlimited": false, "maximum": 5}}],
            "servicePacks":  [{"name": "Basic CFx", "allocated": {"unlimited": false, "maximum": 5}}],
            "auto_assign": true
        })))
        .unwrap();
        assert_eq!(put.present, [true, true, true]);
        assert_eq!(put.changes.len(), 3);
        let changes = put.group_changes();
        assert_eq!(changes[0].allocation, Allocation::Unlimited);
        assert_eq!(changes[1].allocation, Allocation::Limited(5));
        assert!(changes.iter().all(|c| c.auto_assign));
        assert_eq!(put.field(2, ".name"), "servicePacks[0].name");
    }

    #[test]
    fn get_items_round_trip_with_read_only_fields() {
        let put = parse_group(&body(json!({
            "groupServices": [{"name": "Voice Messaging Group",
                               "allocated": {"unlimited": false, "maximum": 1, "noInstance": true},
                               "inUse": 0}],
            "userServices": [{"name": "Call Forwarding Always",
                              "allocated": {"unlimited": true}, "inUse": 2}]
        })))
        .unwrap();
        assert_eq!(put.present, [true, true, false]);
        // Response order is userServices first whatever the key order of the body.
        assert_eq!(put.origins[0].0, List::UserServices);
    }

    #[test]
    fn unlimited_ignores_any_maximum() {
        let put = parse_group(&body(json!({
            "userServices": [{"name": "Call Return", "allocated": {"unlimited": true, "maximum": -3}}]
        })))
        .unwrap();
        assert_eq!(put.changes[0].allocation, Some(Allocation::Unlimited));
    }

    #[test]
    fn each_bad_item_gets_one_error_with_its_path() {
        let errs = errors(json!({
            "userServices": [
                {"name": "Call Forwarding Always", "allocated": {"unlimited": true}},
                {"name": "Call Forwarding Busy", "allocated": {"unlimited": false, "maximum": 1000001}},
                {"name": "Hunt Group", "allocated": {"unlimited": true}},
                {"name": "Call Return", "allocated": {"unlimited": false}},
                {"name": "Call Waiting", "allocated": {"unlimited": false, "maximum": 2.5}},
                {"name": "Call Notify", "allocated": {"unlimited": "yes"}},
                {"name": "Call Me Now", "alocated": {"unlimited": true}}
            ]
        }));
        let got: Vec<(&str, Option<&str>, Option<&str>)> = errs
            .iter()
            .map(|e| (e.code, e.field.as_deref(), e.name.as_deref()))
            .collect();
        assert_eq!(
            got,
            [
                (
                    "INVALID_VALUE",
                    Some("userServices[1].allocated.maximum"),
                    Some("Call Forwarding Busy")
                ),
                (
                    "UNKNOWN_SERVICE",
                    Some("userServices[2].name"),
                    Some("Hunt Group")
                ),
                (
                    "MISSING_FIELD",
                    Some("userServices[3].allocated.maximum"),
                    Some("Call Return")
                ),
                (
                    "INVALID_VALUE",
                    Some("userServices[4].allocated.maximum"),
                    Some("Call Waiting")
                ),
                (
                    "INVALID_VALUE",
                    Some("userServices[5].allocated.unlimited"),
                    Some("Call Notify")
                ),
                (
                    "UNKNOWN_FIELD",
                    Some("userServices[6].alocated"),
                    Some("Call Me Now")
                ),
            ]
        );
    }

    #[test]
    fn unknown_top_level_fields_and_wrong_types_are_refused() {
        let errs = errors(json!({"userServicess": [], "auto_assign": "yes", "groupServices": {}}));
        let fields: Vec<_> = errs.iter().filter_map(|e| e.field.as_deref()).collect();
        assert_eq!(fields, ["auto_assign", "groupServices", "userServicess"]);
    }

    #[test]
    fn no_instance_is_read_only_on_group_services_only() {
        let errs = errors(json!({"userServices": [
            {"name": "Call Return", "allocated": {"unlimited": true, "noInstance": true}}]}));
        assert_eq!(
            errs[0].field.as_deref(),
            Some("userServices[0].allocated.noInstance")
        );
    }

    #[test]
    fn duplicates_in_one_list_are_refused_but_not_across_lists() {
        let errs = errors(json!({"userServices": [
            {"name": "Call Return", "allocated": {"unlimited": true}},
            {"name": "Call Return", "allocated": {"unlimited": false, "maximum": 1}}]}));
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].code, "DUPLICATE_NAME");
        assert_eq!(errs[0].field.as_deref(), Some("userServices[1].name"));

        // "Find-me/Follow-me" is both a user and a group service.
        assert!(
            parse_group(&body(json!({
                "userServices": [{"name": "Find-me/Follow-me", "allocated": {"unlimited": true}}],
                "groupServices": [{"name": "Find-me/Follow-me", "allocated": {"unlimited": true}}]
            })))
            .is_ok()
        );
    }

    #[test]
    fn pack_names_are_bounded() {
        let errs = errors(json!({"servicePacks": [
            {"name": "", "allocated": {"unlimited": true}},
            {"name": "x".repeat(81), "allocated": {"unlimited": true}},
            {"name": "x".repeat(80), "allocated": {"unlimited": true}}]}));
        assert_eq!(errs.len(), 2);
        assert_eq!(errs[1].field.as_deref(), Some("servicePacks[1].name"));
    }

    #[test]
    fn more_than_the_documented_number_of_entries_is_refused() {
        let items = |n: usize| -> Vec<Value> {
            (0..n)
                .map(|i| json!({"name": format!("pack {i}"), "allocated": {"unlimited": true}}))
                .collect()
        };
        let errs = errors(json!({"servicePacks": items(MAX_ENTRIES + 1)}));
        assert_eq!(errs[0].code, "TOO_MANY_ITEMS");
        assert!(parse_group(&body(json!({"servicePacks": items(MAX_ENTRIES)}))).is_ok());
    }

    #[test]
    fn a_tenant_entry_removes_with_null_keeps_without_allocated_and_ignores_read_only_fields() {
        let put = parse(
            &body(json!({"userServices": [
                {"name": "Call Waiting", "allocated": null, "pooled": true},
                {"name": "Call Return", "pooled": false, "currentlyAllocated": 40,
                 "unlimitedGroups": 1},
                {"name": "Call Notify", "allocated": {"unlimited": false, "maximum": 3},
                 "remaining": 3, "currentlyAllocated": 0, "description": ""}
            ]})),
            Holder::Tenant,
        )
        .unwrap();
        let got: Vec<(&str, Option<Allocation>)> = put
            .changes
            .iter()
            .map(|c| (licensable_name(&c.item), c.allocation))
            .collect();
        assert_eq!(
            got,
            [
                ("Call Waiting", None),
                ("Call Notify", Some(Allocation::Limited(3)))
            ]
        );
        assert_eq!(put.field(1, ".allocated"), "userServices[2].allocated");
        // A group entry needs its allocation, and knows none of the tenant's fields.
        let errs = errors(json!({"userServices": [{"name": "Call Waiting", "allocated": null}]}));
        assert_eq!(errs[0].code, "INVALID_VALUE");
        let errs = errors(
            json!({"userServices": [{"name": "Call Waiting", "pooled": true,
            "allocated": {"unlimited": true}}]}),
        );
        assert_eq!(errs[0].code, "UNKNOWN_FIELD");
    }
}
