//! The tenant pool in DynamoDB: the group licenses PUT that moves it, the tenant licenses PUT,
//! and pack definitions.
//!
//! A tenant's partition (`TENANT#<tenant>`) holds one pool record per service or pack its groups
//! or itself ever licensed (`POOL#USER#<service>`, ...): counters `currentlyAllocated` (sum of the
//! groups' limited maximums), `unlimitedGroups`, and `remaining` (tenant maximum minus
//! `currentlyAllocated`), plus the tenant allocation `unlimited`/`maximum` once the tenant set one.
//! `remaining` exists so the pool rule is a plain condition (`remaining >= :delta`): DynamoDB
//! conditions cannot add. Pack definitions live beside them (`PACKDEF#<pack>`).
//!
//! A group PUT reads the group's records once (to know which changes differ from them and what
//! each moves), then writes one transaction of the differing items: each group record guarded by
//! "still as read" plus the usage rule, each pool record moved by the difference under the pool
//! rule, and the group's allocations version moved under "still the version read". A stale read
//! fails a guard and the PUT is re-read and retried; a pool refusal names the service, the
//! tenant maximum and what is left. The tenant PUT works the same way on the tenant's partition.
//!
//! A pack's pool record also carries the mark of its definition (`packDefined`), so "the pack
//! is defined" is a condition on the record a group PUT moves anyway. A pack that a group
//! licenses cannot be redefined or deleted, nor one the operator allocated to the tenant
//! deleted: a tenant admin cannot shed the operator's cap by deleting and re-creating it.

use super::dynamo::{
    DynamoStore, Item, built, decode_license, key, number, read_failure, read_u32,
};
use super::keys::{
    LICENSE_PREFIX, PACKDEF_PREFIX, group_pk, license_sk, packdef_sk, parse_license_sk,
    parse_pool_sk, pool_sk, tenant_pk,
};
use super::retry::Backoff;
use super::{
    IfMatch, RejectReason, Rejection, StoreError, Tagged, TenantState, TenantStore, WriteCtx, etag,
};
use crate::domain::{
    Allocation, Authority, GroupRef, Licensable, License, LicenseChange, PackDefinition, PackName,
    PoolChange, PoolRejection, PoolShare, TenantId, TenantLicense, UsageEffect, UserService,
};
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Delete, Put, ReturnValuesOnConditionCheckFailure,
    TransactWriteItem, Update,
};
use std::collections::HashMap;

fn signed(n: i64) -> AttributeValue {
    AttributeValue::N(n.to_string())
}

/// An expression with the values it references, built together so that no value goes unused
/// (DynamoDB refuses those).
#[derive(Default)]
struct Values(HashMap<String, AttributeValue>);

impl Values {
    fn add(&mut self, name: &str, value: AttributeValue) -> String {
        self.0.insert(name.to_owned(), value);
        name.to_owned()
    }
}

/// "The record is still as it was read": the guard that turns a stale read into a failed write.
fn still_as_read(old: Option<Allocation>, values: &mut Values) -> String {
    match old {
        None => "attribute_not_exists(SK)".to_owned(),
        Some(Allocation::Unlimited) => {
            format!(
                "unlimited = {}",
                values.add(":wasUnlimited", AttributeValue::Bool(true))
            )
        }
        Some(Allocation::Limited(m)) => {
            format!("maximum = {}", values.add(":wasMax", number(m)))
        }
    }
}

fn read_i64(item: &Item, name: &str) -> i64 {
    match item.get(name) {
        Some(AttributeValue::N(n)) => n.parse().unwrap_or(0),
        _ => 0,
    }
}

fn decode_pool(item: &Item) -> TenantLicense {
    let allocation = match item.get("unlimited") {
        Some(AttributeValue::Bool(true)) => Some(Allocation::Unlimited),
        Some(AttributeValue::Bool(false)) => {
            Some(Allocation::Limited(read_u32(item, "maximum").unwrap_or(0)))
        }
        _ => None,
    };
    TenantLicense {
        allocation,
        currently_allocated: read_i64(item, "currentlyAllocated").max(0) as u64,
        unlimited_groups: read_u32(item, "unlimitedGroups").unwrap_or(0),
    }
}

fn read_remaining(item: &Item) -> u64 {
    read_i64(item, "remaining").max(0) as u64
}

/// Whether a group PUT's change differs from the stored record (`None`: no record): an item
/// equal to it costs no action.
fn differs(change: &LicenseChange, stored: Option<&License>) -> bool {
    match (change.effect(), stored) {
        (UsageEffect::Unlicense, stored) => stored.is_some(),
        (UsageEffect::License { .. }, None) => true,
        (
            UsageEffect::License {
                allocation,
                assign,
                set_in_use,
            },
            Some(stored),
        ) => {
            stored.allocation != allocation
                || (assign && !stored.assigned)
                || set_in_use.is_some_and(|n| n != stored.in_use)
        }
    }
}

/// Whether a failed pool action failed because the pack is not defined.
fn pack_undefined(item: &Licensable, record: Option<&Item>) -> bool {
    matches!(item, Licensable::Pack(_))
        && !matches!(
            record.and_then(|r| r.get("packDefined")),
            Some(AttributeValue::Bool(true))
        )
}

/// What each action of a group PUT transaction stands for, to explain a failure.
enum Action {
    Group {
        change: usize,
        old: Option<Allocation>,
    },
    Pool {
        change: usize,
    },
    /// The group's allocations version (`store/etag.rs`).
    Version,
}

impl DynamoStore {
    fn group_record_write(
        &self,
        pk: &str,
        change: &LicenseChange,
        old: Option<Allocation>,
    ) -> Result<Option<TransactWriteItem>, StoreError> {
        let key = key(pk, license_sk(&change.item));
        let mut values = Values::default();
        let guard = still_as_read(old, &mut values);
        let write = match change.effect() {
            UsageEffect::Unlicense if old.is_none() => return Ok(None), // nothing to remove
            UsageEffect::Unlicense => {
                let zero = values.add(":zero", number(0));
                let delete = Delete::builder()
                    .table_name(self.table())
                    .set_key(Some(key))
                    .condition_expression(format!(
                        "({guard}) AND (attribute_not_exists(inUse) OR inUse <= {zero})"
                    ))
                    .set_expression_attribute_values(Some(values.0))
                    .return_values_on_condition_check_failure(
                        ReturnValuesOnConditionCheckFailure::AllOld,
                    );
                TransactWriteItem::builder().delete(built(delete.build())?)
            }
            UsageEffect::License {
                allocation,
                assign,
                set_in_use,
            } => {
                let mut set = format!(
                    "SET unlimited = {}",
                    values.add(
                        ":unlimited",
                        AttributeValue::Bool(allocation == Allocation::Unlimited)
                    )
                );
                match set_in_use {
                    Some(n) => {
                        set.push_str(&format!(", inUse = {}", values.add(":inUse", number(n))))
                    }
                    None => set.push_str(&format!(
                        ", inUse = if_not_exists(inUse, {})",
                        values.add(":zero", number(0))
                    )),
                }
                if assign {
                    set.push_str(&format!(
                        ", assigned = {}",
                        values.add(":assigned", AttributeValue::Bool(true))
                    ));
                }
                let condition = match allocation {
                    Allocation::Unlimited => {
                        set.push_str(" REMOVE maximum");
                        guard
                    }
                    Allocation::Limited(max) => {
                        let max = values.add(":max", number(max));
                        set.push_str(&format!(", maximum = {max}"));
                        format!("({guard}) AND (attribute_not_exists(inUse) OR inUse <= {max})")
                    }
                };
                let update = Update::builder()
                    .table_name(self.table())
                    .set_key(Some(key))
                    .update_expression(set)
                    .condition_expression(condition)
                    .set_expression_attribute_values(Some(values.0))
                    .return_values_on_condition_check_failure(
                        ReturnValuesOnConditionCheckFailure::AllOld,
                    );
                TransactWriteItem::builder().update(built(update.build())?)
            }
        };
        Ok(Some(write.build()))
    }

    /// Moves the tenant's pool record by the difference between two group shares; the pool rule
    /// is a condition only when the group takes more. With `covered` (a tenant admin's PUT that
    /// gives the group more), the tenant must hold an allocation of the item.
    fn pool_move(
        &self,
        tenant: &TenantId,
        item: &Licensable,
        old: PoolShare,
        new: PoolShare,
        covered: bool,
    ) -> Result<Option<TransactWriteItem>, StoreError> {
        if old == new {
            return Ok(None);
        }
        let key = key(&tenant_pk(tenant), pool_sk(item));
        let coverage = "attribute_exists(unlimited)";
        let delta = i64::from(new.limited) - i64::from(old.limited);
        let unlimited_delta = i64::from(new.unlimited) - i64::from(old.unlimited);
        let mut update = Update::builder()
            .table_name(self.table())
            .set_key(Some(key))
            .update_expression(
                "ADD currentlyAllocated :delta, remaining :negDelta, unlimitedGroups :unlimitedDelta",
            )
            .expression_attribute_values(":delta", signed(delta))
            .expression_attribute_values(":negDelta", signed(-delta))
            .expression_attribute_values(":unlimitedDelta", signed(unlimited_delta))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        let mut conditions = Vec::new();
        if new.unlimited && !old.unlimited {
            conditions.push("(attribute_not_exists(unlimited) OR unlimited = :true)");
        } else if delta > 0 {
            conditions.push(
                "(attribute_not_exists(unlimited) OR unlimited = :true OR remaining >= :delta)",
            );
        }
        // A pack is licensed only while its tenant defines it; the definition marks the pool
        // record, so the check costs no extra action in the transaction.
        if matches!(item, Licensable::Pack(_)) && (new.unlimited || new.limited > 0) {
            conditions.push("packDefined = :true");
        }
        if covered {
            conditions.push(coverage);
        }
        if !conditions.is_empty() {
            update = update.condition_expression(conditions.join(" AND "));
            if conditions.iter().any(|c| c.contains(":true")) {
                update = update.expression_attribute_values(":true", AttributeValue::Bool(true));
            }
        }
        Ok(Some(
            TransactWriteItem::builder()
                .update(built(update.build())?)
                .build(),
        ))
    }

    /// The group licenses PUT (see the module comment).
    pub(super) async fn apply_group_changes(
        &self,
        ctx: &WriteCtx,
        group: &GroupRef,
        changes: &[LicenseChange],
        authority: Authority,
        if_match: Option<&IfMatch>,
    ) -> Result<(), StoreError> {
        let pk = group_pk(group);
        let mut backoff = Backoff::new(ctx.deadline);
        loop {
            let current = self.query_prefix(&pk, LICENSE_PREFIX).await?;
            let mut stored: HashMap<Licensable, License> = HashMap::with_capacity(current.len());
            let mut version = 0;
            for item in &current {
                let Some(AttributeValue::S(sk)) = item.get("SK") else {
                    continue;
                };
                if sk == etag::VERSION_SK {
                    version = etag::version_of(item);
                } else if let Some(licensable) = parse_license_sk(sk) {
                    stored.insert(licensable, decode_license(item));
                }
            }
            if if_match.is_some_and(|m| !etag::admits_version(m, version)) {
                return Err(StoreError::PreconditionFailed);
            }
            let changing: Vec<usize> = (0..changes.len())
                .filter(|&i| differs(&changes[i], stored.get(&changes[i].item)))
                .collect();
            if changing.len() > LicenseChange::MAX_PER_REQUEST {
                return Err(StoreError::TooManyChanges {
                    changing: changing.len(),
                });
            }
            let mut actions = Vec::with_capacity(changing.len() * 2 + 1);
            let mut meaning = Vec::with_capacity(changing.len() * 2 + 1);
            for &i in &changing {
                let change = &changes[i];
                let was = stored.get(&change.item).map(|l| l.allocation);
                if let Some(write) = self.group_record_write(&pk, change, was)? {
                    actions.push(write);
                    meaning.push(Action::Group {
                        change: i,
                        old: was,
                    });
                }
                let (old, new) = (PoolShare::of(was), PoolShare::of(Some(change.allocation)));
                // A tenant admin gives a group more only of services the operator allocated to
                // the tenant (lowering or removing is always theirs to do); packs consume their
                // services, so need no allocation of their own.
                let covered = authority == Authority::Tenant
                    && !matches!(change.item, Licensable::Pack(_))
                    && new.exceeds(old);
                if let Some(pool) =
                    self.pool_move(&group.tenant, &change.item, old, new, covered)?
                {
                    actions.push(pool);
                    meaning.push(Action::Pool { change: i });
                }
            }
            if !actions.is_empty() {
                actions.push(etag::version_move(self.table(), &pk, version)?);
                meaning.push(Action::Version);
            }
            let failed = match self.transact(ctx, actions).await? {
                Ok(()) => return Ok(()),
                Err(failed) => failed,
            };
            // Another PUT moved the allocations since the read: plan again from a new read
            // (which re-checks `If-Match`).
            let mut stale = failed
                .iter()
                .any(|(i, _)| matches!(meaning[*i], Action::Version));
            let mut rejections = Vec::new();
            for (index, record) in failed {
                match &meaning[index] {
                    Action::Version => {} // handled above
                    Action::Group { change, old } => {
                        let now = record.as_ref().map(decode_license);
                        if now.map(|l| l.allocation) != *old {
                            stale = true;
                        } else {
                            rejections.push(Rejection {
                                index: *change,
                                reason: RejectReason::BelowUsage {
                                    in_use: now.map_or(0, |l| l.in_use),
                                },
                            });
                        }
                    }
                    Action::Pool { change }
                        if pack_undefined(&changes[*change].item, record.as_ref()) =>
                    {
                        rejections.push(Rejection {
                            index: *change,
                            reason: RejectReason::Pool(PoolRejection::PackNotDefined),
                        });
                    }
                    Action::Pool { change }
                        if authority == Authority::Tenant
                            && record
                                .as_ref()
                                .map(decode_pool)
                                .and_then(|p| p.allocation)
                                .is_none()
                            && !matches!(changes[*change].item, Licensable::Pack(_)) =>
                    {
                        rejections.push(Rejection {
                            index: *change,
                            reason: RejectReason::Pool(PoolRejection::NotLicensedToTenant),
                        });
                    }
                    Action::Pool { change } => {
                        let pool = record.as_ref().map(decode_pool).unwrap_or_default();
                        let tenant_maximum =
                            pool.allocation.and_then(Allocation::maximum).unwrap_or(0);
                        let reason = if changes[*change].allocation == Allocation::Unlimited {
                            PoolRejection::NotUnlimited { tenant_maximum }
                        } else {
                            PoolRejection::Exhausted {
                                tenant_maximum,
                                available: record.as_ref().map_or(0, read_remaining),
                            }
                        };
                        rejections.push(Rejection {
                            index: *change,
                            reason: RejectReason::Pool(reason),
                        });
                    }
                }
            }
            // A stale read explains any other refusal of the same transaction (the pool had
            // room for what the group really held): read again before blaming a rule.
            if stale {
                backoff.pause().await?;
                continue;
            }
            if !rejections.is_empty() {
                rejections.sort_by_key(|r| r.index);
                return Err(StoreError::Rejected(rejections));
            }
            return Err(StoreError::Defect(
                "a licenses transaction was refused without a reason".into(),
            ));
        }
    }
}

fn encode_pack(tenant: &TenantId, pack: &PackDefinition) -> Item {
    let mut item = key(&tenant_pk(tenant), packdef_sk(&pack.name));
    item.insert(
        "description".into(),
        AttributeValue::S(pack.description.clone()),
    );
    item.insert(
        "services".into(),
        AttributeValue::L(
            pack.services
                .iter()
                .map(|s| AttributeValue::S(s.name().to_owned()))
                .collect(),
        ),
    );
    etag::tagged(item)
}

fn decode_pack(item: &Item) -> Option<PackDefinition> {
    let AttributeValue::S(sk) = item.get("SK")? else {
        return None;
    };
    let name = PackName::parse(sk.strip_prefix(PACKDEF_PREFIX)?).ok()?;
    let description = match item.get("description") {
        Some(AttributeValue::S(d)) => d.clone(),
        _ => String::new(),
    };
    let services = match item.get("services") {
        Some(AttributeValue::L(list)) => list
            .iter()
            .filter_map(|v| match v {
                AttributeValue::S(s) => UserService::parse(s).ok(),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    Some(PackDefinition {
        name,
        description,
        services,
    })
}

/// The pack's pool record, where the definition leaves its mark (`packDefined`).
fn pack_pool_key(tenant: &TenantId, pack: &PackName) -> Item {
    key(&tenant_pk(tenant), pool_sk(&Licensable::Pack(pack.clone())))
}

/// "No group holds this pack": the condition on its pool record for changing a definition.
const NOT_IN_USE: &str = "attribute_not_exists(SK) OR \
    ((attribute_not_exists(currentlyAllocated) OR currentlyAllocated = :zero) \
     AND (attribute_not_exists(unlimitedGroups) OR unlimitedGroups = :zero))";

/// ... nor does the tenant hold an allocation of it: the condition for deleting a definition.
const NOT_HELD: &str = "attribute_not_exists(SK) OR \
    ((attribute_not_exists(currentlyAllocated) OR currentlyAllocated = :zero) \
     AND (attribute_not_exists(unlimitedGroups) OR unlimitedGroups = :zero) \
     AND attribute_not_exists(unlimited))";

impl DynamoStore {
    /// Replaces (`undefine: false`) or deletes (`undefine: true`) a definition under "exists"
    /// and "not held" (by groups; for a delete, by the tenant's allocation too); `Ok(false)`
    /// when there is no such pack. Deleting also deletes the pack's pool record (its mark), so
    /// groups can no longer license the pack and a new definition of the name starts from
    /// nothing; the operator's allocation cannot be lost that way, since it blocks the delete.
    async fn change_pack(
        &self,
        ctx: &WriteCtx,
        tenant: &TenantId,
        name: &PackName,
        write: TransactWriteItem,
        undefine: bool,
        if_match: bool,
    ) -> Result<bool, StoreError> {
        let guard = if undefine {
            let delete = Delete::builder()
                .table_name(self.table())
                .set_key(Some(pack_pool_key(tenant, name)))
                .condition_expression(NOT_HELD)
                .expression_attribute_values(":zero", number(0))
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                );
            TransactWriteItem::builder()
                .delete(built(delete.build())?)
                .build()
        } else {
            let check = ConditionCheck::builder()
                .table_name(self.table())
                .set_key(Some(pack_pool_key(tenant, name)))
                .condition_expression(NOT_IN_USE)
                .expression_attribute_values(":zero", number(0))
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                );
            TransactWriteItem::builder()
                .condition_check(built(check.build())?)
                .build()
        };
        let failed = match self.transact(ctx, vec![write, guard]).await? {
            Ok(()) => return Ok(true),
            Err(failed) => failed,
        };
        if failed.iter().any(|(i, _)| *i == 0) {
            // `If-Match` names a representation; none, or another, is a failed precondition.
            return if if_match {
                Err(StoreError::PreconditionFailed)
            } else {
                Ok(false)
            };
        }
        let pool = failed
            .iter()
            .find(|(i, _)| *i == 1)
            .and_then(|(_, record)| record.as_ref())
            .map(decode_pool)
            .unwrap_or_default();
        Err(StoreError::Rejected(vec![Rejection {
            index: 0,
            reason: RejectReason::Pool(PoolRejection::PackInUse {
                currently_allocated: pool.currently_allocated,
                unlimited_groups: pool.unlimited_groups,
                tenant: if undefine { pool.allocation } else { None },
            }),
        }]))
    }

    /// The action of one tenant PUT item that differs from the pool record.
    fn pool_allocation_write(
        &self,
        pk: &str,
        change: &PoolChange,
    ) -> Result<TransactWriteItem, StoreError> {
        // A pack is allocated only while the tenant defines it (the definition marks the pool
        // record).
        let pack = matches!(change.item, Licensable::Pack(_)) && change.allocation.is_some();
        let mut update = Update::builder()
            .table_name(self.table())
            .set_key(Some(key(pk, pool_sk(&change.item))))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        update = match change.allocation {
            // Not pooled any more: the groups keep what they hold, without a tenant bound.
            None => update.update_expression("REMOVE unlimited, maximum, remaining"),
            Some(Allocation::Unlimited) => {
                update = update
                    .update_expression("SET unlimited = :true REMOVE maximum, remaining")
                    .expression_attribute_values(":true", AttributeValue::Bool(true));
                if pack {
                    update = update.condition_expression("packDefined = :true");
                }
                update
            }
            // A limited tenant allocation (0 included: the tenant holds none) must cover what
            // the groups hold, and no group may hold it unlimited.
            Some(Allocation::Limited(max)) => {
                let rule = "(attribute_not_exists(currentlyAllocated) OR currentlyAllocated <= :max) \
                            AND (attribute_not_exists(unlimitedGroups) OR unlimitedGroups = :zero)";
                update = update
                    .update_expression(
                        "SET unlimited = :false, maximum = :max, \
                         remaining = :max - if_not_exists(currentlyAllocated, :zero)",
                    )
                    .expression_attribute_values(":false", AttributeValue::Bool(false))
                    .expression_attribute_values(":max", number(max))
                    .expression_attribute_values(":zero", number(0));
                if pack {
                    update
                        .condition_expression(format!("packDefined = :true AND {rule}"))
                        .expression_attribute_values(":true", AttributeValue::Bool(true))
                } else {
                    update.condition_expression(rule)
                }
            }
        };
        Ok(TransactWriteItem::builder()
            .update(built(update.build())?)
            .build())
    }
}

impl TenantStore for DynamoStore {
    async fn tenant_state(&self, tenant: &TenantId) -> Result<TenantState, StoreError> {
        let items = self.query_prefix(&tenant_pk(tenant), "").await?;
        let mut state = TenantState::default();
        for item in &items {
            let Some(AttributeValue::S(sk)) = item.get("SK") else {
                continue;
            };
            if sk == etag::VERSION_SK {
                state.version = etag::version_of(item);
            } else if sk.starts_with(PACKDEF_PREFIX) {
                state.packs.extend(decode_pack(item));
            } else if let Some(licensable) = parse_pool_sk(sk) {
                state.pool.push((licensable, decode_pool(item)));
            }
        }
        state.pool.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(state)
    }

    async fn update_tenant_licenses(
        &self,
        ctx: &WriteCtx,
        tenant: &TenantId,
        changes: &[PoolChange],
        if_match: Option<&IfMatch>,
    ) -> Result<(), StoreError> {
        let pk = tenant_pk(tenant);
        let mut backoff = Backoff::new(ctx.deadline);
        loop {
            let state = self.tenant_state(tenant).await?;
            if if_match.is_some_and(|m| !etag::admits_version(m, state.version)) {
                return Err(StoreError::PreconditionFailed);
            }
            let stored: HashMap<&Licensable, Option<Allocation>> = state
                .pool
                .iter()
                .map(|(item, pool)| (item, pool.allocation))
                .collect();
            let changing: Vec<usize> = (0..changes.len())
                .filter(|&i| {
                    stored.get(&changes[i].item).copied().flatten() != changes[i].allocation
                })
                .collect();
            if changing.len() > LicenseChange::MAX_PER_REQUEST {
                return Err(StoreError::TooManyChanges {
                    changing: changing.len(),
                });
            }
            let mut actions = Vec::with_capacity(changing.len() + 1);
            for &i in &changing {
                actions.push(self.pool_allocation_write(&pk, &changes[i])?);
            }
            let version = actions.len();
            if !actions.is_empty() {
                actions.push(etag::version_move(self.table(), &pk, state.version)?);
            }
            let failed = match self.transact(ctx, actions).await? {
                Ok(()) => return Ok(()),
                Err(failed) => failed,
            };
            if failed.iter().any(|(i, _)| *i == version) {
                // Another PUT moved the allocations since the read: plan again.
                backoff.pause().await?;
                continue;
            }
            return Err(StoreError::Rejected(
                failed
                    .into_iter()
                    .map(|(action, record)| {
                        let index = changing[action];
                        let pool = record.as_ref().map(decode_pool).unwrap_or_default();
                        let reason = if pack_undefined(&changes[index].item, record.as_ref()) {
                            PoolRejection::PackNotDefined
                        } else if pool.unlimited_groups > 0 {
                            PoolRejection::GroupHoldsUnlimited {
                                groups: pool.unlimited_groups,
                            }
                        } else {
                            PoolRejection::BelowAllocated {
                                currently_allocated: pool.currently_allocated,
                            }
                        };
                        Rejection {
                            index,
                            reason: RejectReason::Pool(reason),
                        }
                    })
                    .collect(),
            ));
        }
    }

    async fn pack_definition(
        &self,
        tenant: &TenantId,
        name: &PackName,
    ) -> Result<Option<Tagged<PackDefinition>>, StoreError> {
        let out = self
            .client()
            .get_item()
            .table_name(self.table())
            .set_key(Some(key(&tenant_pk(tenant), packdef_sk(name))))
            .consistent_read(true)
            .send()
            .await
            .map_err(read_failure)?;
        Ok(out.item().and_then(|item| {
            Some(Tagged {
                value: decode_pack(item)?,
                etag: etag::stored(item),
            })
        }))
    }

    async fn create_pack(
        &self,
        ctx: &WriteCtx,
        tenant: &TenantId,
        pack: &PackDefinition,
    ) -> Result<bool, StoreError> {
        let put = Put::builder()
            .table_name(self.table())
            .set_item(Some(encode_pack(tenant, pack)))
            .condition_expression("attribute_not_exists(SK)");
        let mark = Update::builder()
            .table_name(self.table())
            .set_key(Some(pack_pool_key(tenant, &pack.name)))
            .update_expression("SET packDefined = :true")
            .expression_attribute_values(":true", AttributeValue::Bool(true));
        let actions = vec![
            TransactWriteItem::builder()
                .put(built(put.build())?)
                .build(),
            TransactWriteItem::builder()
                .update(built(mark.build())?)
                .build(),
        ];
        Ok(self.transact(ctx, actions).await?.is_ok())
    }

    async fn replace_pack(
        &self,
        ctx: &WriteCtx,
        tenant: &TenantId,
        pack: &PackDefinition,
        if_match: Option<&IfMatch>,
    ) -> Result<bool, StoreError> {
        let (condition, values) = etag::existing(if_match);
        let put = Put::builder()
            .table_name(self.table())
            .set_item(Some(encode_pack(tenant, pack)))
            .condition_expression(condition)
            .set_expression_attribute_values(values);
        let write = TransactWriteItem::builder()
            .put(built(put.build())?)
            .build();
        self.change_pack(ctx, tenant, &pack.name, write, false, if_match.is_some())
            .await
    }

    async fn delete_pack(
        &self,
        ctx: &WriteCtx,
        tenant: &TenantId,
        name: &PackName,
        if_match: Option<&IfMatch>,
    ) -> Result<bool, StoreError> {
        let (condition, values) = etag::existing(if_match);
        let delete = Delete::builder()
            .table_name(self.table())
            .set_key(Some(key(&tenant_pk(tenant), packdef_sk(name))))
            .condition_expression(condition)
            .set_expression_attribute_values(values);
        let write = TransactWriteItem::builder()
            .delete(built(delete.build())?)
            .build();
        self.change_pack(ctx, tenant, name, write, true, if_match.is_some())
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guards_name_the_state_that_was_read() {
        let mut v = Values::default();
        assert_eq!(still_as_read(None, &mut v), "attribute_not_exists(SK)");
        assert_eq!(
            still_as_read(Some(Allocation::Limited(3)), &mut v),
            "maximum = :wasMax"
        );
        assert_eq!(v.0.get(":wasMax"), Some(&number(3)));
    }
}
