//! The audit trail's port: who made a write ([`Actor`], which the request knows), what it
//! changed ([`Change`], which only the store's plan knows), and the reads of a trail.
//!
//! A write whose request has an actor puts one audit record in its own transaction when its
//! plan changes anything, so a record exists exactly when its change does: a refused write, an
//! idempotent replay and a write that changes nothing leave none.

use crate::domain::{Allocation, GroupId, Licensable, TenantId};
use serde::Serialize;
use serde_json::{Value, json};
use std::future::Future;
use std::time::Duration;

/// How long an audit record is kept (the table's TTL deletes it afterwards).
pub const RETENTION: Duration = Duration::from_secs(400 * 24 * 60 * 60);

/// The most events one page of a trail holds, and the default.
pub const MAX_PAGE: usize = 100;
pub const DEFAULT_PAGE: usize = 50;

/// Whose trail a record goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trail {
    /// A tenant's: its licenses, packs, and its groups' licenses and usage.
    Tenant {
        tenant: TenantId,
        group: Option<GroupId>,
    },
    /// The user-services configuration's.
    Configs,
}

/// Who made a write, and through which request.
#[derive(Debug, Clone)]
pub struct Actor {
    /// The caller's `sub` claim (`local` under `make run` without a token).
    pub sub: String,
    /// The caller's broadest role: `operator`, `tenant-admin` or `group-admin`.
    pub role: &'static str,
    pub request_id: String,
    pub method: String,
    /// The route template, e.g. `/api/v1/tenants/{tenant_id}/licenses/`.
    pub route: String,
    pub trail: Trail,
}

/// What a change did to its item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    /// An allocation set, changed or removed (`before` / `after`).
    Set,
    /// An assignment, a route of a holding, or an instance added.
    Added,
    /// ... removed.
    Removed,
    /// A pack definition or configuration object created, replaced or deleted.
    Created,
    Replaced,
    Deleted,
}

/// One item a write changed. Which fields are present depends on `kind`:
/// - `userServices`, `groupServices`, `servicePacks` licenses: `before` / `after` allocations
///   (`null`: no record, i.e. not licensed / not pooled), `pool: true` for a tenant's own;
/// - a user's assignments: `user_id`, and `via` (`direct` or the pack it came through);
/// - a group service's instance: `instance`;
/// - `servicePackDefinition`, `userServiceConfig`: `before` / `after` objects.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    pub op: Op,
    pub kind: &'static str,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub via: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub pool: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after: Option<Value>,
}

impl Change {
    fn new(op: Op, kind: &'static str, name: impl Into<String>) -> Self {
        Change {
            op,
            kind,
            name: name.into(),
            user_id: None,
            via: None,
            instance: None,
            pool: false,
            before: None,
            after: None,
        }
    }

    /// A license's allocation moved from `before` to `after` (`None`: no record).
    pub fn allocation(
        item: &Licensable,
        before: Option<Allocation>,
        after: Option<Allocation>,
    ) -> Self {
        let mut change = Change::new(Op::Set, kind_of(item), name_of(item));
        change.before = Some(allocation_json(before));
        change.after = Some(allocation_json(after));
        change
    }

    /// A tenant's own allocation (its pool) moved.
    pub fn pool(item: &Licensable, before: Option<Allocation>, after: Option<Allocation>) -> Self {
        let mut change = Change::allocation(item, before, after);
        change.pool = true;
        change
    }

    /// A route of a user's assignment added or removed: `via` the pack it came through, or
    /// `None` for the direct one (a pack assignment itself is `via` nothing).
    pub fn assignment(op: Op, item: &Licensable, user: &str, via: Option<&str>) -> Self {
        let mut change = Change::new(op, kind_of(item), name_of(item));
        change.user_id = Some(user.to_owned());
        if !matches!(item, Licensable::Pack(_)) {
            change.via = Some(via.unwrap_or("direct").to_owned());
        }
        change
    }

    /// A group service assigned to or unassigned from the group.
    pub fn group_service(op: Op, item: &Licensable) -> Self {
        Change::new(op, kind_of(item), name_of(item))
    }

    /// An instance of a group service added or removed.
    pub fn instance(op: Op, item: &Licensable, instance: &str) -> Self {
        let mut change = Change::new(op, kind_of(item), name_of(item));
        change.instance = Some(instance.to_owned());
        change
    }

    /// An object (pack definition, configuration object) created, replaced or deleted.
    pub fn object(
        op: Op,
        kind: &'static str,
        name: &str,
        before: Option<Value>,
        after: Option<Value>,
    ) -> Self {
        let mut change = Change::new(op, kind, name);
        change.before = before;
        change.after = after;
        change
    }
}

fn kind_of(item: &Licensable) -> &'static str {
    match item {
        Licensable::User(_) => "userServices",
        Licensable::Group(_) => "groupServices",
        Licensable::Pack(_) => "servicePacks",
    }
}

fn name_of(item: &Licensable) -> String {
    match item {
        Licensable::User(s) => s.name().to_owned(),
        Licensable::Group(s) => s.name().to_owned(),
        Licensable::Pack(p) => p.as_str().to_owned(),
    }
}

/// An allocation as the API writes it; `null` for none.
fn allocation_json(allocation: Option<Allocation>) -> Value {
    match allocation {
        None => Value::Null,
        Some(Allocation::Unlimited) => json!({"unlimited": true}),
        Some(Allocation::Limited(maximum)) => json!({"unlimited": false, "maximum": maximum}),
    }
}

/// Which events of a trail to read: newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditQuery {
    /// Only this group's events.
    pub group: Option<GroupId>,
    /// Unix milliseconds, inclusive.
    pub since_ms: Option<i64>,
    pub until_ms: Option<i64>,
    /// 1..=[`MAX_PAGE`].
    pub limit: usize,
    /// The `next` cursor of the page before.
    pub after: Option<Cursor>,
}

/// Where a page of a trail ended, opaque to clients (hex of the last event's sort key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor(pub(crate) String);

impl Cursor {
    /// Parses a cursor this API handed out; `None` for anything else.
    pub fn parse(text: &str) -> Option<Cursor> {
        let sk = super::from_hex(text, 512)?;
        // Every sort key of a trail starts with its 13-digit time.
        let digits = sk.get(..13)?;
        if !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        Some(Cursor(sk))
    }

    pub fn encode(&self) -> String {
        super::to_hex(&self.0)
    }
}

/// One page of a trail: the events as recorded (JSON objects), and where the next page starts
/// (`None` on the last).
#[derive(Debug, Clone, PartialEq)]
pub struct AuditPage {
    pub events: Vec<Value>,
    pub next: Option<Cursor>,
}

/// The reads of an audit trail.
pub trait AuditLog: Send + Sync {
    fn audit_events(
        &self,
        trail: &Trail,
        query: &AuditQuery,
    ) -> impl Future<Output = Result<AuditPage, super::StoreError>> + Send;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{PackName, UserService};

    #[test]
    fn a_cursor_reads_back_only_what_encode_wrote() {
        let cursor = Cursor("1764698203123#00ff".into());
        assert_eq!(Cursor::parse(&cursor.encode()), Some(cursor));
        for bad in ["", "zz", "abc", "31", &"00".repeat(300)] {
            assert_eq!(Cursor::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn changes_name_their_item_as_the_api_does() {
        let cfa = Licensable::User(UserService::parse("Call Forwarding Always").unwrap());
        let change = Change::allocation(&cfa, None, Some(Allocation::Limited(10)));
        assert_eq!(
            serde_json::to_value(&change).unwrap(),
            json!({"op": "set", "kind": "userServices", "name": "Call Forwarding Always",
                   "before": null, "after": {"unlimited": false, "maximum": 10}})
        );
        let pack = PackName::parse("Basic").unwrap();
        let through = Change::assignment(Op::Added, &cfa, "alice", Some(pack.as_str()));
        assert_eq!(
            serde_json::to_value(&through).unwrap(),
            json!({"op": "added", "kind": "userServices", "name": "Call Forwarding Always",
                   "user_id": "alice", "via": "Basic"})
        );
        let assigned = Change::assignment(Op::Removed, &Licensable::Pack(pack), "alice", None);
        assert_eq!(
            serde_json::to_value(&assigned).unwrap(),
            json!({"op": "removed", "kind": "servicePacks", "name": "Basic", "user_id": "alice"})
        );
    }
}
