//! What users hold, in DynamoDB: services assigned directly or through packs, as in BroadWorks,
//! where a user's services are the union of both and a service's usage counts its holders.
//!
//! In the group's partition, per user (`USER#<user>#`):
//! - `SVC#<service>`: the **holding** of a service, one per user and service however many routes
//!   give it: `direct` (true when assigned directly), `packs` (string set of the packs that give
//!   it) and `v` (a version every change moves). The service's license `inUse` counts holdings.
//! - `PACK#<pack>`: the assignment of a pack, with the pack's `services` as assigned (a licensed
//!   pack's definition cannot change, so they stay what the definition says). The pack's
//!   license `inUse` counts these.
//!
//! An assignment writes first, in one round trip: it assumes the user holds none of what it
//! gives, so each holding and pack assignment is created under `attribute_not_exists`, each
//! counter moved beside it under its rule, with a check that the pack definitions and the
//! blocked services it used (as this function instance last read them) are still current. When
//! nothing is in the way that is the whole request. When a condition fails (something already
//! held, a counter full, a definition or the blocked services changed) it reads what it needs
//! (the user's records; the definitions and blocked services afresh) and writes again under
//! "still as read": each holding created, changed or deleted under "still version v". A stale
//! read fails a guard and the change is read again; a refusal is the answer only when it comes
//! from a plan made of fresh reads whose guards all held, so a 409 never blames a license for a
//! race or a cache. An unassignment reads the user's records first (it must know which routes
//! to take away).

use super::DynamoStore;
use super::codec::{Definitions, decode_definitions, read_services, services_list};
use super::configs::blocked_unchanged;
use super::etag;
use super::item::{Item, built, key, number, read_bool, read_number, s};
use super::keys::{
    PACKDEF_PREFIX, assignment_sk, group_pk, packdef_sk, parse_assignment_sk, tenant_pk,
    user_prefix,
};
use super::tx::{Plan, Ran, Rereads, Step};
use super::usage::{count_down_by, count_up, count_up_by, count_up_refusal};
use crate::domain::usage::{BLOCKED_CHECK, actions_needed};
use crate::domain::{
    Allocation, Assignable, GroupLicenses, GroupRef, Holding, Licensable, PackName, UsageRejection,
    UserHoldings, UserId, UserItems, UserService,
};
use crate::store::audit::{Change, Op};
use crate::store::{
    ConfigStore, Holds, LicenseStore, Outcomes, Read, RejectReason, Rejection, Render, StoreError,
    WriteCtx,
};
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Delete, Put, TransactWriteItem, Update,
};
use futures_util::future::try_join_all;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// A holding as read: its routes and version.
#[derive(Debug, Clone, Default, PartialEq)]
struct Held {
    direct: bool,
    packs: BTreeSet<PackName>,
    version: u64,
}

impl Held {
    fn is_empty(&self) -> bool {
        !self.direct && self.packs.is_empty()
    }
}

impl UserRecords {
    /// What the user holds, as the API shows it.
    pub(super) fn into_holdings(self) -> UserHoldings {
        UserHoldings {
            packs: self.packs.into_keys().collect(),
            services: self
                .holdings
                .into_iter()
                .map(|(service, held)| Holding {
                    service,
                    direct: held.direct,
                    packs: held.packs.into_iter().collect(),
                })
                .collect(),
        }
    }

    /// Whether the user holds what `holds` selects.
    pub(super) fn holds(&self, holds: &Holds) -> bool {
        match holds {
            Holds::Anything => !self.holdings.is_empty() || !self.packs.is_empty(),
            Holds::Service(service) => self.holdings.contains_key(service),
            Holds::Pack(pack) => self.packs.contains_key(pack),
        }
    }
}

impl UserRecords {
    /// The check that the record of `item` (the user's `prefix`) is still as read: a holding at
    /// its version or absent, a pack assigned or not. What a request answers `already` and does
    /// not write must still be so when its transaction commits.
    fn still_as_read(
        &self,
        table: &str,
        pk: &str,
        prefix: &str,
        item: &Assignable,
    ) -> Result<TransactWriteItem, StoreError> {
        match item {
            Assignable::Service(service) => {
                let state = match self.holdings.get(service) {
                    Some(held) => Still::At(held.version),
                    None => Still::Absent,
                };
                still(table, pk, holding_sk(prefix, *service), state)
            }
            Assignable::Pack(pack) => {
                let state = if self.packs.contains_key(pack) {
                    Still::There
                } else {
                    Still::Absent
                };
                still(table, pk, pack_sk(prefix, pack), state)
            }
        }
    }
}

/// The user's records as read.
#[derive(Debug, Default)]
pub(super) struct UserRecords {
    holdings: BTreeMap<UserService, Held>,
    /// Assigned packs with the services they were assigned with.
    packs: BTreeMap<PackName, Vec<UserService>>,
}

fn holding_sk(prefix: &str, service: UserService) -> String {
    assignment_sk(prefix, &Assignable::Service(service))
}

fn pack_sk(prefix: &str, pack: &PackName) -> String {
    assignment_sk(prefix, &Assignable::Pack(pack.clone()))
}

pub(super) fn decode(prefix: &str, items: &[Item]) -> UserRecords {
    let mut records = UserRecords::default();
    for item in items {
        let Some(AttributeValue::S(sk)) = item.get("SK") else {
            continue;
        };
        match parse_assignment_sk(prefix, sk) {
            Some(Assignable::Service(service)) => {
                let packs = match item.get("packs") {
                    Some(AttributeValue::Ss(packs)) => packs
                        .iter()
                        .filter_map(|p| PackName::parse(p.as_str()).ok())
                        .collect(),
                    _ => BTreeSet::new(),
                };
                let held = Held {
                    direct: read_bool(item, "direct"),
                    packs,
                    version: read_number(item, "v").unwrap_or(0),
                };
                records.holdings.insert(service, held);
            }
            Some(Assignable::Pack(pack)) => {
                records.packs.insert(pack, read_services(item));
            }
            None => {}
        }
    }
    records
}

/// Where a route of a holding came from in the request, to name it in a refusal: the item's
/// index among all users' items (the first user's, then the second's, ...), and the pack.
#[derive(Debug, Clone)]
struct Origin {
    index: usize,
    pack: Option<PackName>,
}

/// What a transaction action stands for.
enum Meaning {
    /// A holding or pack assignment guarded by what was read: its failure means a stale read.
    Guard,
    /// A counter moved up by one unit per new holding or pack assignment (`origins`, in request
    /// order), the license read as `planned` when it moves by more than one.
    CountUp {
        origins: Vec<Origin>,
        service: Option<UserService>,
        planned: Option<Allocation>,
    },
    /// A counter moved down.
    CountDown,
}

/// A holding's next version: random, so that a holding deleted and created again never comes
/// back with a version a stale plan read (a counter from 1 would, and its guard would pass).
fn fresh_version() -> AttributeValue {
    number(fastrand::u64(1..))
}

/// What the transaction checks of a record the plan relies on but does not write.
enum Still {
    /// The holding is still at the version read.
    At(u64),
    /// The record still exists (a pack assigned).
    There,
    /// The record still does not exist.
    Absent,
}

/// The check that the record `sk` is still as the plan read it: an item answered `already`
/// must still be so when the transaction commits.
fn still(table: &str, pk: &str, sk: String, state: Still) -> Result<TransactWriteItem, StoreError> {
    let check = ConditionCheck::builder()
        .table_name(table)
        .set_key(Some(key(pk, sk)));
    let check = match state {
        Still::At(version) => check
            .condition_expression("v = :v")
            .expression_attribute_values(":v", number(version)),
        Still::There => check.condition_expression("attribute_exists(SK)"),
        Still::Absent => check.condition_expression("attribute_not_exists(SK)"),
    };
    Ok(TransactWriteItem::builder()
        .condition_check(built(check.build())?)
        .build())
}

/// Writes `held` as the new state of a holding read at `was` (None: not held).
fn write_holding(
    table: &str,
    pk: &str,
    sk: String,
    was: Option<&Held>,
    held: &Held,
) -> Result<TransactWriteItem, StoreError> {
    let action = match was {
        None => {
            let mut item = key(pk, sk);
            if held.direct {
                item.insert("direct".into(), AttributeValue::Bool(true));
            }
            if !held.packs.is_empty() {
                item.insert("packs".into(), pack_set(&held.packs));
            }
            item.insert("v".into(), fresh_version());
            let put = Put::builder()
                .table_name(table)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(SK)");
            TransactWriteItem::builder()
                .put(built(put.build())?)
                .build()
        }
        Some(was) if held.is_empty() => {
            let delete = Delete::builder()
                .table_name(table)
                .set_key(Some(key(pk, sk)))
                .condition_expression("v = :v")
                .expression_attribute_values(":v", number(was.version));
            TransactWriteItem::builder()
                .delete(built(delete.build())?)
                .build()
        }
        Some(was) => {
            let mut set = vec!["v = :next"];
            let mut remove = Vec::new();
            let mut update = Update::builder()
                .table_name(table)
                .set_key(Some(key(pk, sk)))
                .condition_expression("v = :v")
                .expression_attribute_values(":v", number(was.version))
                .expression_attribute_values(":next", fresh_version());
            if held.direct {
                set.push("direct = :true");
                update = update.expression_attribute_values(":true", AttributeValue::Bool(true));
            } else {
                remove.push("direct");
            }
            if held.packs.is_empty() {
                remove.push("packs");
            } else {
                set.push("packs = :packs");
                update = update.expression_attribute_values(":packs", pack_set(&held.packs));
            }
            let mut expression = format!("SET {}", set.join(", "));
            if !remove.is_empty() {
                expression.push_str(&format!(" REMOVE {}", remove.join(", ")));
            }
            TransactWriteItem::builder()
                .update(built(update.update_expression(expression).build())?)
                .build()
        }
    };
    Ok(action)
}

/// Notes for the audit record the routes of `service` that `to` has and `from` has not: added
/// ones (`from` as read, `to` as written) or, with the two swapped, removed ones.
fn note_routes(
    plan: &mut Plan<Meaning>,
    op: Op,
    user: &UserId,
    service: UserService,
    from: Option<&Held>,
    to: &Held,
) {
    let item = Licensable::User(service);
    if to.direct && !from.is_some_and(|f| f.direct) {
        plan.changed(Change::assignment(op, &item, user.as_str(), None));
    }
    for pack in &to.packs {
        if !from.is_some_and(|f| f.packs.contains(pack)) {
            plan.changed(Change::assignment(
                op,
                &item,
                user.as_str(),
                Some(pack.as_str()),
            ));
        }
    }
}

fn pack_set(packs: &BTreeSet<PackName>) -> AttributeValue {
    AttributeValue::Ss(packs.iter().map(|p| p.as_str().to_owned()).collect())
}

impl DynamoStore {
    async fn user_records(
        &self,
        group: &GroupRef,
        user: &UserId,
    ) -> Result<UserRecords, StoreError> {
        let prefix = user_prefix(user);
        let items = self.query_prefix(&group_pk(group), &prefix).await?;
        Ok(decode(&prefix, &items))
    }

    /// The services of each pack the tenant defines, with the definition's strong tag: as this
    /// instance last read them (`Cached`), or read now (one `Query` of its definitions), which
    /// the cache then keeps.
    async fn pack_definitions(
        &self,
        group: &GroupRef,
        read: Read,
    ) -> Result<Arc<Definitions>, StoreError> {
        let tenant = &group.tenant;
        if read == Read::Cached
            && let Some(definitions) = self.definitions.get(tenant)
        {
            return Ok(definitions);
        }
        let items = self
            .query_prefix(&tenant_pk(tenant), PACKDEF_PREFIX)
            .await?;
        Ok(self
            .definitions
            .keep(tenant.clone(), decode_definitions(&items)))
    }

    /// The group's licenses, for their allocations: as this instance last read them
    /// (`Cached`), or read now (one `Query`), which the cache then keeps.
    async fn allocations(
        &self,
        group: &GroupRef,
        read: Read,
    ) -> Result<Arc<GroupLicenses>, StoreError> {
        if read == Read::Cached
            && let Some(licenses) = self.allocations.get(group)
        {
            return Ok(licenses);
        }
        let licenses = self.group_licenses(group).await?;
        Ok(self.allocations.keep(group.clone(), licenses))
    }

    /// The transaction's check that a pack's definition is still the one read (`tag`), or still
    /// absent (`None`).
    fn definition_check(
        &self,
        group: &GroupRef,
        pack: &PackName,
        tag: Option<&str>,
    ) -> Result<TransactWriteItem, StoreError> {
        let check = ConditionCheck::builder()
            .table_name(self.table())
            .set_key(Some(key(&tenant_pk(&group.tenant), packdef_sk(pack))));
        let check = match tag {
            Some(tag) => check
                .condition_expression("#etag = :etag")
                .expression_attribute_names("#etag", etag::ATTRIBUTE)
                .expression_attribute_values(":etag", s(tag)),
            None => check.condition_expression("attribute_not_exists(SK)"),
        };
        Ok(TransactWriteItem::builder()
            .condition_check(built(check.build())?)
            .build())
    }

    pub(super) async fn holdings(
        &self,
        group: &GroupRef,
        user: &UserId,
    ) -> Result<UserHoldings, StoreError> {
        Ok(self.user_records(group, user).await?.into_holdings())
    }

    /// Each user's records (one `Query` per user, all at once: one round trip of latency).
    async fn users_records(
        &self,
        group: &GroupRef,
        users: &[UserItems],
    ) -> Result<Vec<UserRecords>, StoreError> {
        try_join_all(users.iter().map(|u| self.user_records(group, &u.user))).await
    }

    pub(super) async fn assign_holdings<C: ConfigStore>(
        &self,
        ctx: &WriteCtx,
        group: &GroupRef,
        users: &[UserItems],
        configs: &C,
        render: Option<Render<'_>>,
    ) -> Result<Outcomes, StoreError> {
        distinct(users)?;
        let pk = group_pk(group);
        let wants_packs = users
            .iter()
            .flat_map(|u| &u.items)
            .any(|i| matches!(i, Assignable::Pack(_)));
        // With several users a counter may move by more than one, whose condition needs the
        // license as read ([`count_up_by`]).
        let several = users.len() > 1;
        // The first plan assumes the users hold none of it and uses the definitions, the blocked
        // services and (with several users) the licenses as this instance last read them: no
        // read at all once they are cached. After a failed condition every plan is made of
        // fresh reads.
        let mut fresh = false;
        let mut rereads = Rereads::new(ctx.deadline);
        loop {
            let read = if fresh { Read::Fresh } else { Read::Cached };
            let records = async {
                if fresh {
                    self.users_records(group, users).await
                } else {
                    Ok(users.iter().map(|_| UserRecords::default()).collect())
                }
            };
            let definitions = async {
                if wants_packs {
                    self.pack_definitions(group, read).await
                } else {
                    Ok(Arc::default())
                }
            };
            let licenses = async {
                if several {
                    self.allocations(group, read).await.map(Some)
                } else {
                    Ok(None)
                }
            };
            // The reads at once: one round trip of latency.
            let (records, definitions, blocked, licenses) = tokio::join!(
                records,
                definitions,
                configs.blocked_services(group, read),
                licenses
            );
            let (records, definitions, blocked, licenses) =
                (records?, definitions?, blocked?, licenses?);
            // Packs the tenant does not define cannot be licensed, so a count-up refuses them
            // as not licensed; they give no services.
            let pack_of = |p: &PackName| -> &[UserService] {
                definitions.get(p).map_or(&[], |(services, _)| services)
            };
            let needed = actions_needed(
                users,
                |_, p| pack_of(p),
                BLOCKED_CHECK + ctx.extra_actions(),
                true,
            );
            if !needed.fits() {
                // The sizes may come from cached definitions: refuse on fresh ones only.
                if !fresh {
                    fresh = true;
                    continue;
                }
                return Err(StoreError::TooManyWrites {
                    needed: needed.actions,
                    fit: several.then_some(needed.fit),
                });
            }

            let mut plan = Plan::new();
            let mut counters: BTreeMap<Licensable, Vec<Origin>> = BTreeMap::new();
            let mut checked = BTreeSet::new();
            let mut refused = Vec::new();
            // That each refused holding is still not held, and each pack it came through still
            // gives it (see the refusal below).
            let mut still_refused = Vec::new();
            let mut refused_packs = BTreeSet::new();
            let mut gives_new = false;
            // Checks that what is answered `already` still is (see below).
            let mut checks = Vec::new();
            let mut outcomes = Vec::with_capacity(users.len());
            let mut base = 0;
            for (UserItems { user, items }, records) in users.iter().zip(&records) {
                let prefix = user_prefix(user);
                // New routes per service, with the first request item that brings each.
                let mut routes: BTreeMap<UserService, (Held, Origin)> = BTreeMap::new();
                let mut add_route = |service: UserService, origin: Origin| {
                    let entry = routes.entry(service).or_insert_with(|| {
                        let held = records.holdings.get(&service).cloned().unwrap_or_default();
                        (held, origin.clone())
                    });
                    match &origin.pack {
                        Some(pack) => {
                            entry.0.packs.insert(pack.clone());
                        }
                        None => entry.0.direct = true,
                    }
                };
                let mut seen_packs = BTreeSet::new();
                let mut changes = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    let index = base + i;
                    match item {
                        Assignable::Service(service) => {
                            let new = !records.holdings.get(service).is_some_and(|h| h.direct);
                            changes.push(new);
                            if new {
                                add_route(*service, Origin { index, pack: None });
                            }
                        }
                        Assignable::Pack(pack) => {
                            if records.packs.contains_key(pack) || !seen_packs.insert(pack.clone())
                            {
                                changes.push(false);
                                continue;
                            }
                            changes.push(true);
                            let services = pack_of(pack);
                            let mut record = key(&pk, pack_sk(&prefix, pack));
                            record.insert("services".into(), services_list(services));
                            let put = Put::builder()
                                .table_name(self.table())
                                .set_item(Some(record))
                                .condition_expression("attribute_not_exists(SK)");
                            plan.push(
                                TransactWriteItem::builder()
                                    .put(built(put.build())?)
                                    .build(),
                                Meaning::Guard,
                            );
                            counters
                                .entry(Licensable::Pack(pack.clone()))
                                .or_default()
                                .push(Origin { index, pack: None });
                            plan.changed(Change::assignment(
                                Op::Added,
                                &Licensable::Pack(pack.clone()),
                                user.as_str(),
                                None,
                            ));
                            // The services come from the definition read: the transaction
                            // holds only while it is still that definition.
                            if checked.insert(pack.clone()) {
                                let tag = definitions.get(pack).map(|(_, tag)| tag.as_str());
                                plan.push(self.definition_check(group, pack, tag)?, Meaning::Guard);
                            }
                            for service in services {
                                add_route(
                                    *service,
                                    Origin {
                                        index,
                                        pack: Some(pack.clone()),
                                    },
                                );
                            }
                        }
                    }
                }
                for (service, (held, origin)) in &routes {
                    let was = records.holdings.get(service);
                    gives_new |= was.is_none();
                    let sk = holding_sk(&prefix, *service);
                    if was.is_none() && blocked.services.contains(service) {
                        refused.push(rejection(
                            origin,
                            *service,
                            UsageRejection::NoMoreAssignable,
                        ));
                        still_refused.push(still(self.table(), &pk, sk, Still::Absent)?);
                        if let Some(pack) = &origin.pack
                            && refused_packs.insert(pack.clone())
                        {
                            let tag = definitions.get(pack).map(|(_, tag)| tag.as_str());
                            still_refused.push(self.definition_check(group, pack, tag)?);
                        }
                        continue;
                    }
                    plan.push(
                        write_holding(self.table(), &pk, sk, was, held)?,
                        Meaning::Guard,
                    );
                    note_routes(&mut plan, Op::Added, user, *service, was, held);
                    if was.is_none() {
                        counters
                            .entry(Licensable::User(*service))
                            .or_default()
                            .push(origin.clone());
                    }
                }
                // What is answered `already` must still be so when this commits (unless the
                // plan writes it anyway, under its own guard: a holding it gives another route,
                // a pack it puts).
                for (item, changed) in items.iter().zip(&changes) {
                    let writes = match item {
                        Assignable::Service(service) => routes.contains_key(service),
                        Assignable::Pack(pack) => !records.packs.contains_key(pack),
                    };
                    if !changed && !writes {
                        checks.push(records.still_as_read(self.table(), &pk, &prefix, item)?);
                    }
                }
                outcomes.push(changes);
                base += items.len();
            }
            if !refused.is_empty() {
                // Refused only on what is read now: the user may hold it already, or the
                // cached blocked services be stale.
                if !fresh {
                    fresh = true;
                    continue;
                }
                // The users' records, the pack definitions and the blocked services were read
                // by separate calls, so "not held, given by the pack, and blocked" may never
                // have been true at once: a transaction of checks (nothing written, no record)
                // makes it so before it is answered.
                let mut confirm = Plan::new();
                for check in blocked_unchanged(&blocked)?
                    .into_iter()
                    .chain(still_refused)
                {
                    confirm.push(check, Meaning::Guard);
                }
                if let Settled::Done = self.settle(&ctx.unrecorded(), confirm).await? {
                    refused.sort_by_key(|r| r.index);
                    return Err(StoreError::Rejected(refused));
                }
                rereads.stale().await?;
                continue;
            }
            // Each counter once, by its whole delta: packs first, so that a pack refused with
            // its services is named before them.
            let (packs, services): (Vec<_>, Vec<_>) = counters
                .into_iter()
                .partition(|(item, _)| matches!(item, Licensable::Pack(_)));
            for (item, origins) in packs.into_iter().chain(services) {
                let (action, planned) = if origins.len() == 1 {
                    (count_up(self.table(), &pk, &item, false)?, None)
                } else {
                    let allocation = licenses
                        .as_ref()
                        .map_or(Allocation::NOT_LICENSED, |l| allocation_of(l, &item));
                    let action = count_up_by(self.table(), &pk, &item, origins.len(), allocation)?;
                    (action, Some(allocation))
                };
                let service = match item {
                    Licensable::User(service) => Some(service),
                    _ => None,
                };
                plan.push(
                    action,
                    Meaning::CountUp {
                        origins,
                        service,
                        planned,
                    },
                );
            }
            // What was not blocked when read must still not be when this commits.
            if gives_new && let Some(check) = blocked_unchanged(&blocked)? {
                plan.push(check, Meaning::Guard);
            }
            let step = match self
                .settle_outcomes(ctx, plan, checks, render, &outcomes)
                .await?
            {
                Settled::Done => Step::Done(outcomes),
                // The first plan was a guess (nothing held, caches current): read, at once.
                Settled::Stale | Settled::Refused(_) if !fresh => {
                    fresh = true;
                    Step::Replan
                }
                Settled::Stale => Step::Stale,
                Settled::Refused(rejections) => return Err(StoreError::Rejected(rejections)),
            };
            if let Some(done) = rereads.after(step).await? {
                return Ok(done);
            }
        }
    }

    pub(super) async fn unassign_holdings(
        &self,
        ctx: &WriteCtx,
        group: &GroupRef,
        users: &[UserItems],
        render: Option<Render<'_>>,
    ) -> Result<Outcomes, StoreError> {
        distinct(users)?;
        let pk = group_pk(group);
        let mut rereads = Rereads::new(ctx.deadline);
        loop {
            let records = self.users_records(group, users).await?;
            let needed = actions_needed(
                users,
                |u, p| records[u].packs.get(p).map_or(&[], Vec::as_slice),
                ctx.extra_actions(),
                false,
            );
            if !needed.fits() {
                return Err(StoreError::TooManyWrites {
                    needed: needed.actions,
                    fit: (users.len() > 1).then_some(needed.fit),
                });
            }
            let mut plan = Plan::new();
            let mut counters: BTreeMap<Licensable, usize> = BTreeMap::new();
            let mut checks = Vec::new();
            let mut outcomes = Vec::with_capacity(users.len());
            for (UserItems { user, items }, records) in users.iter().zip(&records) {
                let prefix = user_prefix(user);
                let mut changed: BTreeMap<UserService, Held> = BTreeMap::new();
                let mut drop_route = |service: UserService, pack: Option<&PackName>| {
                    let Some(was) = records.holdings.get(&service) else {
                        return;
                    };
                    let held = changed.entry(service).or_insert_with(|| was.clone());
                    match pack {
                        Some(pack) => {
                            held.packs.remove(pack);
                        }
                        None => held.direct = false,
                    }
                };
                let mut seen_packs = BTreeSet::new();
                let mut changes = Vec::with_capacity(items.len());
                for item in items {
                    match item {
                        Assignable::Service(service) => {
                            let held = records.holdings.get(service).is_some_and(|h| h.direct);
                            changes.push(held);
                            if held {
                                drop_route(*service, None);
                            }
                        }
                        Assignable::Pack(pack) => {
                            let Some(services) = records.packs.get(pack) else {
                                changes.push(false);
                                continue;
                            };
                            if !seen_packs.insert(pack.clone()) {
                                changes.push(false);
                                continue;
                            }
                            changes.push(true);
                            let delete = Delete::builder()
                                .table_name(self.table())
                                .set_key(Some(key(&pk, pack_sk(&prefix, pack))))
                                .condition_expression("attribute_exists(SK)");
                            plan.push(
                                TransactWriteItem::builder()
                                    .delete(built(delete.build())?)
                                    .build(),
                                Meaning::Guard,
                            );
                            *counters.entry(Licensable::Pack(pack.clone())).or_default() += 1;
                            plan.changed(Change::assignment(
                                Op::Removed,
                                &Licensable::Pack(pack.clone()),
                                user.as_str(),
                                None,
                            ));
                            for service in services {
                                drop_route(*service, Some(pack));
                            }
                        }
                    }
                }
                let mut written = BTreeSet::new();
                for (service, held) in &changed {
                    let was = records.holdings.get(service);
                    if was == Some(held) {
                        continue;
                    }
                    written.insert(*service);
                    let sk = holding_sk(&prefix, *service);
                    plan.push(
                        write_holding(self.table(), &pk, sk, was, held)?,
                        Meaning::Guard,
                    );
                    if let Some(was) = was {
                        note_routes(&mut plan, Op::Removed, user, *service, Some(held), was);
                    }
                    if held.is_empty() {
                        *counters.entry(Licensable::User(*service)).or_default() += 1;
                    }
                }
                // What is answered `already` must still be so when this commits (unless the
                // plan writes it anyway, under its own guard: a holding it changes, a pack it
                // deletes).
                for (item, done) in items.iter().zip(&changes) {
                    let writes = match item {
                        Assignable::Service(service) => written.contains(service),
                        Assignable::Pack(pack) => records.packs.contains_key(pack),
                    };
                    if !done && !writes {
                        checks.push(records.still_as_read(self.table(), &pk, &prefix, item)?);
                    }
                }
                outcomes.push(changes);
            }
            // Each counter once, by its whole delta.
            for (item, n) in counters {
                plan.push(
                    count_down_by(self.table(), &pk, &item, n)?,
                    Meaning::CountDown,
                );
            }
            let step = match self
                .settle_outcomes(ctx, plan, checks, render, &outcomes)
                .await?
            {
                Settled::Done => Step::Done(outcomes),
                Settled::Stale => Step::Stale,
                Settled::Refused(rejections) => return Err(StoreError::Rejected(rejections)),
            };
            if let Some(done) = rereads.after(step).await? {
                return Ok(done);
            }
        }
    }

    /// [`Self::settle`] for a plan whose answer is `outcomes`: with the `checks` that what it
    /// answers `already` still is, and the idempotency record answering what `render` makes of
    /// the outcomes. A plan that changes something commits its `already` answers with it. One
    /// user's plan that changes nothing is answered as of its one read and sends no checks;
    /// several users' are read by one `Query` each, at different moments, so their `already`
    /// answers are true together only once a transaction of the checks commits.
    async fn settle_outcomes(
        &self,
        ctx: &WriteCtx,
        mut plan: Plan<Meaning>,
        checks: Vec<TransactWriteItem>,
        render: Option<Render<'_>>,
        outcomes: &Outcomes,
    ) -> Result<Settled, StoreError> {
        if !plan.is_empty() || outcomes.len() > 1 {
            for check in checks {
                plan.push(check, Meaning::Guard);
            }
        }
        match render {
            Some(render) => self.settle(&ctx.answering(render(outcomes)), plan).await,
            None => self.settle(ctx, plan).await,
        }
    }

    /// Runs a plan's transaction (with the request's idempotency record, even when the plan is
    /// empty) and says what its outcome means.
    async fn settle(&self, ctx: &WriteCtx, plan: Plan<Meaning>) -> Result<Settled, StoreError> {
        let failed = match self.run(ctx, plan).await? {
            Ran::Committed => return Ok(Settled::Done),
            Ran::Refused(failed) => failed,
        };
        if failed.iter().any(|(m, _)| matches!(m, Meaning::Guard)) {
            return Ok(Settled::Stale);
        }
        let mut rejections = Vec::new();
        for (meaning, old) in failed {
            match meaning {
                Meaning::CountUp {
                    origins,
                    service,
                    planned,
                } => {
                    // The license is no longer the one the plan read: read again.
                    let Some((reason, room)) = count_up_refusal(old.as_ref(), planned) else {
                        return Ok(Settled::Stale);
                    };
                    // The first `room` new holders would fit; the others are refused.
                    for origin in origins.iter().skip(room) {
                        rejections.push(match service {
                            Some(service) => rejection(origin, service, reason.clone()),
                            None => Rejection {
                                index: origin.index,
                                reason: RejectReason::Usage(reason.clone()),
                            },
                        });
                    }
                }
                // Only a counter below its delta refuses a count-down: a broken invariant,
                // which must not be papered over by a write.
                Meaning::CountDown => {
                    return Err(StoreError::Defect(
                        "a usage counter is below its records".into(),
                    ));
                }
                Meaning::Guard => {}
            }
        }
        if rejections.is_empty() {
            return Ok(Settled::Stale);
        }
        rejections.sort_by_key(|r| r.index);
        Ok(Settled::Refused(rejections))
    }
}

/// The allocation of a user service or pack as read among the group's licenses.
fn allocation_of(licenses: &GroupLicenses, item: &Licensable) -> Allocation {
    match item {
        Licensable::User(service) => licenses.user_service(*service).allocation,
        Licensable::Group(service) => licenses.group_service(*service).allocation,
        Licensable::Pack(pack) => licenses
            .service_packs()
            .find(|(p, _)| *p == pack)
            .map_or(Allocation::NOT_LICENSED, |(_, l)| l.allocation),
    }
}

/// One change of several users names each user once (the request's parser refuses a repeated
/// user): two actions of one transaction on one item would be refused as invalid.
fn distinct(users: &[UserItems]) -> Result<(), StoreError> {
    let mut seen = BTreeSet::new();
    if users.iter().all(|u| seen.insert(u.user.as_str())) {
        Ok(())
    } else {
        Err(StoreError::Defect(
            "a change of several users names a user twice".into(),
        ))
    }
}

enum Settled {
    Done,
    /// A guard failed: what was read changed; read again.
    Stale,
    /// Every guard held and counters refused to count up.
    Refused(Vec<Rejection>),
}

/// The refusal of `service` for the request item `origin`, through its pack if it has one.
fn rejection(origin: &Origin, service: UserService, reason: UsageRejection) -> Rejection {
    Rejection {
        index: origin.index,
        reason: match &origin.pack {
            Some(pack) => RejectReason::ThroughPack {
                service,
                pack: pack.clone(),
                reason,
            },
            None => RejectReason::Usage(reason),
        },
    }
}
