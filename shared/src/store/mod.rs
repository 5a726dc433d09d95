//! The storage port: what the domain needs from a store, whatever the database.
//!
//! [`dynamo::DynamoStore`] is the production adapter. Every operation is one round trip, and
//! every rule that depends on stored state (usage below a maximum, ...) is enforced by the store
//! atomically with the write, never by a read before it.

pub mod audit;
pub mod dynamo;
pub mod meter;

/// The request's idempotency record travels with its write ([`WriteCtx`]).
pub use dynamo::idempotency;

use crate::domain::{
    Assignable, Authority, GroupLicenses, GroupRef, GroupService, InstanceName, Licensable,
    License, LicenseChange, PackDefinition, PackName, PoolChange, PoolRejection, TenantId,
    TenantLicense, UsageRejection, UserHoldings, UserId, UserItems, UserService, UserServiceConfig,
};
use std::fmt;
use std::future::Future;
use std::time::{Duration, Instant};

/// Why a write was refused: the rule the stored state broke, per request item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// Index of the refused item in the list of changes handed to the store.
    pub index: usize,
    pub reason: RejectReason,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RejectReason {
    /// The new limited maximum (or unlicensing) would leave fewer units than are in use.
    BelowUsage { in_use: u32 },
    /// A change of usage the stored state refuses.
    Usage(UsageRejection),
    /// A change the tenant's pool or pack definitions refuse.
    Pool(PoolRejection),
    /// A service a pack assignment would newly give the user is refused.
    ThroughPack {
        service: UserService,
        pack: PackName,
        reason: UsageRejection,
    },
}

#[derive(Debug)]
pub enum StoreError {
    /// The request was well formed but the stored state refuses it; nothing was written.
    Rejected(Vec<Rejection>),
    /// The store could not be reached, throttled the request past the SDK's retries, or failed
    /// on its side: a retry may help. `outcome` says whether a write may have been applied.
    Unavailable { why: String, outcome: Outcome },
    /// A defect of ours (a request DynamoDB refuses as invalid, a broken invariant): retrying
    /// cannot help. Nothing was written.
    Defect(String),
    /// Other requests kept changing the same items until the request's time ran out; nothing
    /// was written and a retry may succeed.
    Contended,
    /// A write's `If-Match` no longer matches what is stored; nothing was written.
    PreconditionFailed,
    /// The request would need more writes than one transaction holds; nothing was written.
    /// `fit`: for a change of several users, how many of its first users fit in one.
    TooManyWrites { needed: usize, fit: Option<usize> },
    /// A licenses PUT would change more items than one transaction holds; nothing was written.
    TooManyChanges { changing: usize },
    /// The request's `Idempotency-Key` already holds the answer of an earlier request; nothing
    /// was written.
    Keyed(idempotency::Earlier),
}

/// Whether a failed write may have been applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing was written (a read, or a write DynamoDB refused before applying it).
    NotWritten,
    /// A write was sent and no answer came back (I/O error, timeout, a server error): it may
    /// have been applied.
    Unknown,
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Rejected(r) => write!(f, "{} item(s) rejected by stored state", r.len()),
            StoreError::Unavailable { why, outcome } => {
                write!(f, "storage unavailable ({outcome:?}): {why}")
            }
            StoreError::Defect(why) => write!(f, "defect: {why}"),
            StoreError::Contended => f.write_str("too many concurrent changes of the same items"),
            StoreError::PreconditionFailed => f.write_str("If-Match no longer matches"),
            StoreError::TooManyWrites { needed, .. } => {
                write!(f, "the request needs {needed} writes in one transaction")
            }
            StoreError::TooManyChanges { changing } => {
                write!(
                    f,
                    "the request changes {changing} licenses in one transaction"
                )
            }
            StoreError::Keyed(_) => f.write_str("the Idempotency-Key was used before"),
        }
    }
}

impl std::error::Error for StoreError {}

/// What every write carries besides its data: the time by which its request must answer (the
/// store's retries stop before it), the `Idempotency-Key` record to put in the write's own
/// transaction, if the request has a key, and who makes the write, whose audit record the
/// transaction puts when it changes anything (none for tools and store tests).
#[derive(Debug, Clone)]
pub struct WriteCtx {
    pub deadline: Instant,
    pub record: Option<idempotency::Record>,
    pub actor: Option<audit::Actor>,
}

impl WriteCtx {
    /// A write with `budget` from now, no key and no audit record (tools, store tests).
    pub fn within(budget: Duration) -> Self {
        WriteCtx {
            deadline: Instant::now() + budget,
            record: None,
            actor: None,
        }
    }

    /// The actions the write's transaction holds besides its own: the idempotency record and
    /// the audit record.
    pub fn extra_actions(&self) -> usize {
        usize::from(self.record.is_some()) + usize::from(self.actor.is_some())
    }

    /// The same deadline with nothing recorded: for a transaction of checks only, which
    /// confirms what a refusal was read from and writes nothing (a refusal changes nothing).
    pub fn unrecorded(&self) -> WriteCtx {
        WriteCtx {
            deadline: self.deadline,
            record: None,
            actor: None,
        }
    }

    /// The same write answering `body` instead: for a write whose answer depends on what its
    /// plan finds, so the record its transaction puts keeps the answer that plan gives.
    pub fn answering(&self, body: String) -> WriteCtx {
        WriteCtx {
            deadline: self.deadline,
            record: self.record.as_ref().map(|r| r.answering(body)),
            actor: self.actor.clone(),
        }
    }
}

/// What each item of a change of several users' assignments came to, per user and item in
/// request order: `true` when it changed (assigned, or unassigned), `false` when it already was
/// so.
pub type Outcomes = Vec<Vec<bool>>;

/// Renders a write's success answer from its outcomes, for the idempotency record its
/// transaction puts.
pub type Render<'a> = &'a (dyn Fn(&Outcomes) -> String + Send + Sync);

/// Which of a group's users a list selects: those holding anything, or a service, or a pack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Holds {
    Anything,
    Service(UserService),
    Pack(PackName),
}

/// Where a page of a group's users ended, opaque to clients (hex of the last user's key part).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserCursor(pub(crate) String);

impl UserCursor {
    /// Parses a cursor this API handed out; `None` for anything else.
    pub fn parse(text: &str) -> Option<UserCursor> {
        let part = from_hex(text, 1024)?;
        // A user's key part is escaped: it never holds `#`.
        (!part.contains('#')).then_some(UserCursor(part))
    }

    pub fn encode(&self) -> String {
        to_hex(&self.0)
    }
}

/// A cursor's text: the hex of a key's bytes (opaque to clients, and safe in a query string).
fn to_hex(key: &str) -> String {
    key.bytes().map(|b| format!("{b:02x}")).collect()
}

/// The key a cursor's text of at most `max` characters stands for; `None` for anything that is
/// not the hex of a non-empty UTF-8 string.
fn from_hex(text: &str, max: usize) -> Option<String> {
    if text.is_empty() || text.len() > max || !text.len().is_multiple_of(2) {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect();
    String::from_utf8(bytes?).ok()
}

/// One page of a group's users, each with what it holds, in key order; `next` is absent on
/// the last page.
#[derive(Debug, Clone, PartialEq)]
pub struct UsersPage {
    pub users: Vec<(UserId, UserHoldings)>,
    pub next: Option<UserCursor>,
}

/// The most users one page of a group's users lists.
pub const MAX_USERS_PAGE: usize = 100;

/// A write's `If-Match`: any current representation (`*`), or one of these tags (the opaque
/// part, without quotes or `W/`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IfMatch {
    Any,
    Tags(Vec<String>),
}

/// A value read with its entity tag (the opaque part; `store/dynamo/etag.rs`).
#[derive(Debug, Clone, PartialEq)]
pub struct Tagged<T> {
    pub value: T,
    pub etag: String,
}

/// Licensing state of groups.
pub trait LicenseStore: Send + Sync {
    /// Every license record of the group (one `Query`).
    fn group_licenses(
        &self,
        group: &GroupRef,
    ) -> impl Future<Output = Result<GroupLicenses, StoreError>> + Send;

    /// The same, tagged with the group's allocations version (the same `Query`).
    fn tagged_group_licenses(
        &self,
        group: &GroupRef,
    ) -> impl Future<Output = Result<Tagged<GroupLicenses>, StoreError>> + Send;

    /// Applies all changes or none: one read of the group's records, then one transaction of
    /// the changes that differ from what is stored (an item equal to its record costs nothing).
    /// A change whose rule fails against the stored state yields a [`StoreError::Rejected`]
    /// naming it: `BelowUsage`, or `Pool` (`Exhausted`, `NotUnlimited`, `PackNotDefined`, and
    /// under a tenant's [`Authority`] `NotLicensedToTenant`). More than
    /// [`LicenseChange::MAX_PER_REQUEST`] differing items is `TooManyWrites`. Moves the group's
    /// allocations version when anything changes; with `if_match`, only from a version it names
    /// (else `PreconditionFailed`).
    fn update_group_licenses(
        &self,
        ctx: &WriteCtx,
        group: &GroupRef,
        changes: &[LicenseChange],
        authority: Authority,
        if_match: Option<&IfMatch>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// The operator-defined user-services configuration.
pub trait ConfigStore: Send + Sync {
    /// Every configuration object, ordered by instance name (one `Query`).
    fn user_service_configs(
        &self,
    ) -> impl Future<Output = Result<Vec<UserServiceConfig>, StoreError>> + Send;

    /// One object with its strong tag.
    fn user_service_config(
        &self,
        name: &InstanceName,
    ) -> impl Future<Output = Result<Option<Tagged<UserServiceConfig>>, StoreError>> + Send;

    /// Stores `config` unless its instance exists; `Ok(false)` when it does. One conditional
    /// write, so of two racing creates exactly one succeeds.
    fn create_user_service_config(
        &self,
        ctx: &WriteCtx,
        config: &UserServiceConfig,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Creates or replaces; with `if_match`, only replaces an object it matches (else
    /// `PreconditionFailed`).
    fn put_user_service_config(
        &self,
        ctx: &WriteCtx,
        config: &UserServiceConfig,
        if_match: Option<&IfMatch>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Deletes the instance if present; `Ok(false)` when there was none. One conditional write.
    /// With `if_match`, only an object it matches (else `PreconditionFailed`).
    fn delete_user_service_config(
        &self,
        ctx: &WriteCtx,
        name: &InstanceName,
        if_match: Option<&IfMatch>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// The services some configuration object marks `no_more_assignable`, with what an
    /// assignment in `group` that relies on them checks to be still current: as this instance
    /// last read them (`Cached`, no round trip once read), or read now (`Fresh`, one `GetItem`).
    /// The transaction's check makes a stale copy cost a retry, never a wrong answer.
    fn blocked_services(
        &self,
        group: &GroupRef,
        read: Read,
    ) -> impl Future<Output = Result<Blocked, StoreError>> + Send;
}

/// Whether a read of something that changes rarely may be answered from what this instance
/// read before (the write that uses it checks that it is still current).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Read {
    Cached,
    Fresh,
}

/// The services nobody may be newly given (a configuration object marks them
/// `no_more_assignable`), as read: an assignment's transaction checks that the set it used is
/// still the current one, so a configuration change that commits meanwhile makes it re-read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Blocked {
    pub services: Vec<UserService>,
    /// Where the set was read (table, copy) and the version read (none: nothing to check).
    pub(crate) guard: Option<(String, usize, u64)>,
}

/// Usage of a group's licenses. Every write moves the license counter (`inUse`) in the same
/// transaction as the assignment or instance it counts, under conditions that keep
/// `inUse <= maximum` and the counter equal to the records, whatever the concurrency.
pub trait UsageStore: Send + Sync {
    /// The group's licensed group services with their license records (one `Query`).
    fn group_service_licenses(
        &self,
        group: &GroupRef,
    ) -> impl Future<Output = Result<Vec<(GroupService, License)>, StoreError>> + Send;

    /// Assigns group services to the group; already assigned ones stay as they are. A `noInstance`
    /// service then counts 1. Rejections (by index): `NotLicensed`.
    fn assign_group_services(
        &self,
        ctx: &WriteCtx,
        group: &GroupRef,
        services: &[GroupService],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Unassigns group services; ones not assigned are left alone. Rejections: `HasInstances`.
    fn unassign_group_services(
        &self,
        ctx: &WriteCtx,
        group: &GroupRef,
        services: &[GroupService],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// A group service's instances, in name order.
    fn instances(
        &self,
        group: &GroupRef,
        service: GroupService,
    ) -> impl Future<Output = Result<Vec<InstanceName>, StoreError>> + Send;

    /// Creates an instance, counting one unit and assigning the service to the group.
    /// Rejections (index 0): `InstanceExists`, `NotLicensed`, `OverLimit`.
    fn add_instance(
        &self,
        ctx: &WriteCtx,
        group: &GroupRef,
        service: GroupService,
        name: &InstanceName,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Removes an instance and gives its unit back; `Ok(false)` when there was none.
    fn remove_instance(
        &self,
        ctx: &WriteCtx,
        group: &GroupRef,
        service: GroupService,
        name: &InstanceName,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// What the user is assigned and holds (one `Query`).
    fn user_holdings(
        &self,
        group: &GroupRef,
        user: &UserId,
    ) -> impl Future<Output = Result<UserHoldings, StoreError>> + Send;

    /// Assigns all of `items` to the user or none, in one transaction. Already assigned items
    /// count as done. A new pack takes a unit of the pack's license and, for each of its
    /// services the user does not hold yet, a unit of that service's; a new direct service one
    /// unit unless the user already holds it through a pack. The definition of each new pack is
    /// checked by the transaction to be the one read. Services `configs` marks no longer
    /// assignable ([`ConfigStore::blocked_services`]) are refused when they would be newly held,
    /// by whatever route, and the transaction checks that set is still current. Rejections (by
    /// index into `items`): `Usage(NotLicensed | OverLimit | NoMoreAssignable)`, or
    /// `ThroughPack` naming the service; a request needing more than 100 writes is
    /// `TooManyWrites`.
    fn assign_to_user<C: ConfigStore>(
        &self,
        ctx: &WriteCtx,
        group: &GroupRef,
        user: &UserId,
        items: &[Assignable],
        configs: &C,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Removes all of `items` from the user that are assigned: a pack gives back its unit and the
    /// unit of each of its services the user then holds by no other route; a direct service its
    /// unit unless a pack still gives it.
    fn unassign_from_user(
        &self,
        ctx: &WriteCtx,
        group: &GroupRef,
        user: &UserId,
        items: &[Assignable],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// [`UsageStore::assign_to_user`] for several users at once, all or none, in one
    /// transaction: each holding and pack assignment one action, each counter moved once by the
    /// request's whole delta under "still room for all of it". Rejections index the items of
    /// all users in order (the first user's items, then the second's, ...); a counter without
    /// room for every new holder refuses the holders past its room, in request order. More than
    /// one transaction holds is `TooManyWrites` with how many first users fit. `render` gives
    /// the answer the idempotency record keeps, from the outcomes of the plan that commits.
    fn assign_to_users<C: ConfigStore>(
        &self,
        ctx: &WriteCtx,
        group: &GroupRef,
        users: &[UserItems],
        configs: &C,
        render: Option<Render<'_>>,
    ) -> impl Future<Output = Result<Outcomes, StoreError>> + Send;

    /// [`UsageStore::unassign_from_user`] for several users at once, in one transaction.
    fn unassign_from_users(
        &self,
        ctx: &WriteCtx,
        group: &GroupRef,
        users: &[UserItems],
        render: Option<Render<'_>>,
    ) -> impl Future<Output = Result<Outcomes, StoreError>> + Send;

    /// A page of the group's users that hold what `holds` selects (strongly consistent
    /// `Query`s of the users' records after `after`): at most `limit` users. A page may come
    /// back short (even empty) with a `next` when a selective list reads its bound of records.
    fn group_users(
        &self,
        group: &GroupRef,
        holds: &Holds,
        after: Option<&UserCursor>,
        limit: usize,
    ) -> impl Future<Output = Result<UsersPage, StoreError>> + Send;
}

/// A tenant's pool and pack definitions, in the tenant's own partition.
pub trait TenantStore: Send + Sync {
    /// The tenant's pool records and pack definitions (one `Query`): every licensable with a
    /// record, and every defined pack.
    fn tenant_state(
        &self,
        tenant: &TenantId,
    ) -> impl Future<Output = Result<TenantState, StoreError>> + Send;

    /// Sets or removes tenant allocations, all or none: one read of the tenant's pool, then one
    /// transaction of the changes that differ from it. Rejections: `Pool(BelowAllocated)`,
    /// `Pool(GroupHoldsUnlimited)`, `Pool(PackNotDefined)`; more than
    /// [`LicenseChange::MAX_PER_REQUEST`] differing items is `TooManyWrites`. Moves the tenant's
    /// allocations version when anything changes; with `if_match`, only from a version it names
    /// (else `PreconditionFailed`).
    fn update_tenant_licenses(
        &self,
        ctx: &WriteCtx,
        tenant: &TenantId,
        changes: &[PoolChange],
        if_match: Option<&IfMatch>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    fn pack_definition(
        &self,
        tenant: &TenantId,
        name: &PackName,
    ) -> impl Future<Output = Result<Option<Tagged<PackDefinition>>, StoreError>> + Send;

    /// Stores a new pack; `Ok(false)` when the name exists.
    fn create_pack(
        &self,
        ctx: &WriteCtx,
        tenant: &TenantId,
        pack: &PackDefinition,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Replaces an existing pack; `Ok(false)` when there is none. Rejection: `Pool(PackInUse)`
    /// while a group licenses it; with `if_match`, `PreconditionFailed` unless it matches.
    fn replace_pack(
        &self,
        ctx: &WriteCtx,
        tenant: &TenantId,
        pack: &PackDefinition,
        if_match: Option<&IfMatch>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Deletes a pack; `Ok(false)` when there is none. Rejection: `Pool(PackInUse)` while a
    /// group licenses it or the tenant holds an allocation of it; with `if_match`,
    /// `PreconditionFailed` unless it matches.
    fn delete_pack(
        &self,
        ctx: &WriteCtx,
        tenant: &TenantId,
        name: &PackName,
        if_match: Option<&IfMatch>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// Everything a tenant holds of its own.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TenantState {
    /// Pool records, sorted by licensable.
    pub pool: Vec<(Licensable, TenantLicense)>,
    /// Pack definitions, in name order.
    pub packs: Vec<PackDefinition>,
    /// The allocations version (the tenant licenses' weak tag; `store/dynamo/etag.rs`).
    pub version: u64,
}
