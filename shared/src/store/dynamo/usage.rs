//! The DynamoDB adapter of usage: assignments and instances beside the license records of the
//! group's partition (key layout in `keys.rs`).
//!
//! Each write is one `TransactWriteItems` pairing the record that is created or deleted with the
//! move of the license counter, each action under a condition:
//!
//! - assignment or instance put: `attribute_not_exists(SK)`, so a retry cannot count twice;
//! - counter up: `attribute_exists(SK) AND (unlimited = true OR inUse < maximum)`;
//! - record delete: `attribute_exists(SK)`; counter down: `inUse >= 1`.
//!
//! Operations whose answer depends on what exists ("already assigned counts as success") read
//! first, then write only the difference; the conditions make a stale read fail the transaction,
//! which is then re-read and retried, never half-applied. What users hold (services directly and
//! through packs) is in `holdings.rs`.

use super::DynamoStore;
use super::codec::decode_license;
use super::item::{Item, built, key, number};
use super::keys::{
    GROUP_LICENSE_PREFIX, group_pk, instance_prefix, instance_sk, license_sk, parse_license_sk,
};
use super::query::query_all;
use super::tx::{Plan, Ran, Rereads, Step};
use crate::domain::{
    Allocation, Assignable, GroupRef, GroupService, InstanceName, Licensable, License,
    UsageRejection, UserHoldings, UserId, UserItems,
};
use crate::store::audit::{Change, Op};
use crate::store::meter;
use crate::store::{
    ConfigStore, Holds, Outcomes, RejectReason, Rejection, Render, StoreError, UsageStore,
    UserCursor, UsersPage, WriteCtx,
};
use aws_sdk_dynamodb::types::{
    AttributeValue, Delete, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};

/// Puts a record that must not exist yet.
fn put_new(table: &str, pk: &str, sk: String) -> Result<TransactWriteItem, StoreError> {
    let put = built(
        Put::builder()
            .table_name(table)
            .set_item(Some(key(pk, sk)))
            .condition_expression("attribute_not_exists(SK)")
            .build(),
    )?;
    Ok(TransactWriteItem::builder().put(put).build())
}

/// Deletes a record that must exist.
fn delete_existing(table: &str, pk: &str, sk: String) -> Result<TransactWriteItem, StoreError> {
    let delete = built(
        Delete::builder()
            .table_name(table)
            .set_key(Some(key(pk, sk)))
            .condition_expression("attribute_exists(SK)")
            .build(),
    )?;
    Ok(TransactWriteItem::builder().delete(delete).build())
}

/// One more unit of a license, only while it has room; `assign` also marks a group service
/// assigned. Returns the old record on failure to tell "not licensed" from "full".
pub(super) fn count_up(
    table: &str,
    pk: &str,
    item: &Licensable,
    assign: bool,
) -> Result<TransactWriteItem, StoreError> {
    let mut update = Update::builder()
        .table_name(table)
        .set_key(Some(key(pk, license_sk(item))))
        .condition_expression("attribute_exists(SK) AND (unlimited = :true OR inUse < maximum)")
        .expression_attribute_values(":one", number(1))
        .expression_attribute_values(":true", AttributeValue::Bool(true))
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
    update = update.update_expression(if assign {
        "SET inUse = inUse + :one, assigned = :true"
    } else {
        "SET inUse = inUse + :one"
    });
    Ok(TransactWriteItem::builder()
        .update(built(update.build())?)
        .build())
}

/// `n` more units of a license at once, only while all of them fit: `inUse + n <= maximum`.
/// DynamoDB's conditions compare but do not add, so the condition pins the allocation read
/// (`planned`) and bounds the counter by what it leaves: `maximum = :max AND inUse <= :room`
/// with `room = max - n` (or `unlimited = true`). A failure whose record no longer has that
/// allocation is a stale read ([`count_up_refusal`]). `n = 1` is [`count_up`], which needs no
/// read.
pub(super) fn count_up_by(
    table: &str,
    pk: &str,
    item: &Licensable,
    n: usize,
    planned: Allocation,
) -> Result<TransactWriteItem, StoreError> {
    let mut update = Update::builder()
        .table_name(table)
        .set_key(Some(key(pk, license_sk(item))))
        .update_expression("SET inUse = inUse + :n")
        .expression_attribute_values(":n", number(n))
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
    update = match planned {
        Allocation::Unlimited => update
            .condition_expression("unlimited = :true")
            .expression_attribute_values(":true", AttributeValue::Bool(true)),
        Allocation::Limited(max) => update
            .condition_expression("maximum = :max AND inUse <= :room")
            .expression_attribute_values(":max", number(max))
            .expression_attribute_values(":room", number(i64::from(max) - n as i64)),
    };
    Ok(TransactWriteItem::builder()
        .update(built(update.build())?)
        .build())
}

/// Why a failed count-up of a license (read as `planned`, `None` for [`count_up`]'s form)
/// failed, from the record as it was: `None` when the allocation is no longer the one read (a
/// stale read, to plan again), else the rule and how many units were left.
pub(super) fn count_up_refusal(
    old: Option<&Item>,
    planned: Option<Allocation>,
) -> Option<(UsageRejection, usize)> {
    let allocation = old.map_or(Allocation::NOT_LICENSED, |o| decode_license(o).allocation);
    if planned.is_some_and(|p| p != allocation && (p.is_licensed() || allocation.is_licensed())) {
        return None;
    }
    let reason = full_or_unlicensed(old);
    let room = match reason {
        UsageRejection::OverLimit { maximum, in_use } => maximum.saturating_sub(in_use) as usize,
        _ => 0,
    };
    Some((reason, room))
}

/// One unit of a license back.
pub(super) fn count_down(
    table: &str,
    pk: &str,
    item: &Licensable,
) -> Result<TransactWriteItem, StoreError> {
    count_down_by(table, pk, item, 1)
}

/// `n` units of a license back at once.
pub(super) fn count_down_by(
    table: &str,
    pk: &str,
    item: &Licensable,
    n: usize,
) -> Result<TransactWriteItem, StoreError> {
    let update = Update::builder()
        .table_name(table)
        .set_key(Some(key(pk, license_sk(item))))
        .update_expression("SET inUse = inUse - :n")
        .condition_expression("inUse >= :n")
        .expression_attribute_values(":n", number(n));
    Ok(TransactWriteItem::builder()
        .update(built(update.build())?)
        .build())
}

/// Why a failed `count_up` failed, from the record as it was.
pub(super) fn full_or_unlicensed(old: Option<&Item>) -> UsageRejection {
    match old.map(decode_license) {
        Some(License {
            allocation, in_use, ..
        }) if allocation.is_licensed() => UsageRejection::OverLimit {
            maximum: allocation.maximum().unwrap_or(u32::MAX),
            in_use,
        },
        _ => UsageRejection::NotLicensed,
    }
}

/// The two actions of an instance write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    /// The instance record, created or deleted.
    Record,
    /// The group service's counter beside it.
    Counter,
}

fn rejected(items: Vec<(usize, UsageRejection)>) -> StoreError {
    StoreError::Rejected(
        items
            .into_iter()
            .map(|(index, r)| Rejection {
                index,
                reason: RejectReason::Usage(r),
            })
            .collect(),
    )
}

impl DynamoStore {
    /// Every item of the partition whose sort key starts with `prefix` (one `Query`, paged); an
    /// empty prefix reads the whole partition.
    pub(super) async fn query_prefix(
        &self,
        pk: &str,
        prefix: &str,
    ) -> Result<Vec<Item>, StoreError> {
        query_all(self.client(), self.table(), pk, prefix).await
    }
}

fn sort_key(item: &Item) -> Option<&str> {
    match item.get("SK") {
        Some(AttributeValue::S(sk)) => Some(sk),
        _ => None,
    }
}

impl UsageStore for DynamoStore {
    async fn group_service_licenses(
        &self,
        group: &GroupRef,
    ) -> Result<Vec<(GroupService, License)>, StoreError> {
        let items = self
            .query_prefix(&group_pk(group), GROUP_LICENSE_PREFIX)
            .await?;
        let mut licenses: Vec<(GroupService, License)> = items
            .iter()
            .filter_map(|item| match parse_license_sk(sort_key(item)?)? {
                Licensable::Group(service) => Some((service, decode_license(item))),
                _ => None,
            })
            .filter(|(_, l)| l.allocation.is_licensed())
            .collect();
        licenses.sort_by_key(|(s, _)| *s);
        Ok(licenses)
    }

    async fn assign_group_services(
        &self,
        ctx: &WriteCtx,
        group: &GroupRef,
        services: &[GroupService],
    ) -> Result<(), StoreError> {
        let pk = group_pk(group);
        // No read first: each update assigns a service that is licensed (its record exists;
        // maximum 0 deletes it) and not assigned yet, so the transaction writes, and the audit
        // record names, only what it changes. A failed condition's record (`ALL_OLD`) says
        // which: none is not licensed, the answer; an assigned one is left out of the next
        // plan. Each plan has fewer services than the last, so this ends.
        let mut pending: Vec<usize> = (0..services.len()).collect();
        let mut rereads = Rereads::new(ctx.deadline);
        loop {
            // Each update means the request item it assigns.
            let mut plan = Plan::new();
            for &index in &pending {
                let service = services[index];
                let mut update = Update::builder()
                    .table_name(self.table())
                    .set_key(Some(key(&pk, license_sk(&Licensable::Group(service)))))
                    .condition_expression("attribute_exists(SK) AND attribute_not_exists(assigned)")
                    .expression_attribute_values(":true", AttributeValue::Bool(true))
                    .return_values_on_condition_check_failure(
                        ReturnValuesOnConditionCheckFailure::AllOld,
                    );
                update = if service.no_instance() {
                    update
                        .update_expression("SET assigned = :true, inUse = :one")
                        .expression_attribute_values(":one", number(1))
                } else {
                    update.update_expression("SET assigned = :true")
                };
                let action = TransactWriteItem::builder()
                    .update(built(update.build())?)
                    .build();
                plan.push(action, index);
                plan.changed(Change::group_service(
                    Op::Added,
                    &Licensable::Group(service),
                ));
            }
            let failed = match self.run(ctx, plan).await? {
                Ran::Committed => return Ok(()),
                Ran::Refused(failed) => failed,
            };
            let unlicensed: Vec<(usize, UsageRejection)> = failed
                .iter()
                .filter(|(_, old)| old.is_none())
                .map(|(index, _)| (*index, UsageRejection::NotLicensed))
                .collect();
            if !unlicensed.is_empty() {
                return Err(rejected(unlicensed));
            }
            // Assigned already (by an earlier request): nothing to do for it. Any other failure
            // (the record changed under us) is planned again as it was, after a backoff.
            let before = pending.len();
            pending.retain(|index| {
                !failed.iter().any(|(i, old)| {
                    i == index && old.as_ref().is_some_and(|o| decode_license(o).assigned)
                })
            });
            if pending.len() == before {
                rereads.stale().await?;
            } else {
                meter::retry();
            }
        }
    }

    async fn unassign_group_services(
        &self,
        ctx: &WriteCtx,
        group: &GroupRef,
        services: &[GroupService],
    ) -> Result<(), StoreError> {
        let pk = group_pk(group);
        let mut rereads = Rereads::new(ctx.deadline);
        loop {
            let current = self.group_service_licenses(group).await?;
            let mut plan = Plan::new();
            let mut refused = Vec::new();
            for (index, service) in services.iter().enumerate() {
                let Some((_, license)) = current.iter().find(|(s, _)| s == service) else {
                    continue; // not licensed, so not assigned: nothing to do
                };
                if !license.assigned {
                    continue;
                }
                if !service.no_instance() && license.in_use > 0 {
                    refused.push((
                        index,
                        UsageRejection::HasInstances {
                            in_use: license.in_use,
                        },
                    ));
                    continue;
                }
                // The conditions re-check what was read: still assigned, and (instance
                // services) still without instances.
                let mut update = Update::builder()
                    .table_name(self.table())
                    .set_key(Some(key(&pk, license_sk(&Licensable::Group(*service)))))
                    .expression_attribute_values(":true", AttributeValue::Bool(true))
                    .expression_attribute_values(":zero", number(0));
                update = if service.no_instance() {
                    update
                        .update_expression("SET inUse = :zero REMOVE assigned")
                        .condition_expression("assigned = :true")
                } else {
                    update
                        .update_expression("REMOVE assigned")
                        .condition_expression("assigned = :true AND inUse = :zero")
                };
                let action = TransactWriteItem::builder()
                    .update(built(update.build())?)
                    .build();
                // Every condition re-checks the read: its failure means a stale read.
                plan.push(action, ());
                plan.changed(Change::group_service(
                    Op::Removed,
                    &Licensable::Group(*service),
                ));
            }
            if !refused.is_empty() {
                return Err(rejected(refused));
            }
            let step = match self.run(ctx, plan).await? {
                Ran::Committed => Step::Done(()),
                Ran::Refused(_) => Step::Stale,
            };
            if let Some(done) = rereads.after(step).await? {
                return Ok(done);
            }
        }
    }

    async fn instances(
        &self,
        group: &GroupRef,
        service: GroupService,
    ) -> Result<Vec<InstanceName>, StoreError> {
        let prefix = instance_prefix(service);
        let items = self.query_prefix(&group_pk(group), &prefix).await?;
        Ok(items
            .iter()
            .filter_map(|item| sort_key(item)?.strip_prefix(prefix.as_str()))
            .filter_map(|name| InstanceName::parse(name).ok())
            .collect())
    }

    async fn add_instance(
        &self,
        ctx: &WriteCtx,
        group: &GroupRef,
        service: GroupService,
        name: &InstanceName,
    ) -> Result<(), StoreError> {
        let pk = group_pk(group);
        let mut plan = Plan::new();
        plan.push(
            put_new(self.table(), &pk, instance_sk(service, name))?,
            Part::Record,
        );
        plan.push(
            count_up(self.table(), &pk, &Licensable::Group(service), true)?,
            Part::Counter,
        );
        plan.changed(Change::instance(
            Op::Added,
            &Licensable::Group(service),
            name.as_str(),
        ));
        match self.run(ctx, plan).await? {
            Ran::Committed => Ok(()),
            Ran::Refused(failed) => {
                // The name clash is the first thing a caller can fix; report it alone.
                let reason = match failed.iter().find(|(part, _)| *part == Part::Record) {
                    Some(_) => UsageRejection::InstanceExists,
                    None => full_or_unlicensed(failed.first().and_then(|(_, old)| old.as_ref())),
                };
                Err(rejected(vec![(0, reason)]))
            }
        }
    }

    async fn remove_instance(
        &self,
        ctx: &WriteCtx,
        group: &GroupRef,
        service: GroupService,
        name: &InstanceName,
    ) -> Result<bool, StoreError> {
        let pk = group_pk(group);
        let mut plan = Plan::new();
        plan.push(
            delete_existing(self.table(), &pk, instance_sk(service, name))?,
            Part::Record,
        );
        plan.push(
            count_down(self.table(), &pk, &Licensable::Group(service))?,
            Part::Counter,
        );
        plan.changed(Change::instance(
            Op::Removed,
            &Licensable::Group(service),
            name.as_str(),
        ));
        match self.run(ctx, plan).await? {
            Ran::Committed => Ok(true),
            Ran::Refused(failed) if failed.iter().any(|(part, _)| *part == Part::Record) => {
                Ok(false)
            }
            // The instance existed but its counter was already 0: a broken invariant, which
            // must not be papered over by a write.
            Ran::Refused(_) => Err(StoreError::Defect(format!(
                "instance counter of {} is inconsistent",
                service.name()
            ))),
        }
    }

    async fn user_holdings(
        &self,
        group: &GroupRef,
        user: &UserId,
    ) -> Result<UserHoldings, StoreError> {
        self.holdings(group, user).await
    }

    async fn assign_to_user<C: ConfigStore>(
        &self,
        ctx: &WriteCtx,
        group: &GroupRef,
        user: &UserId,
        items: &[Assignable],
        configs: &C,
    ) -> Result<(), StoreError> {
        let one = [UserItems {
            user: user.clone(),
            items: items.to_vec(),
        }];
        self.assign_holdings(ctx, group, &one, configs, None)
            .await
            .map(drop)
    }

    async fn unassign_from_user(
        &self,
        ctx: &WriteCtx,
        group: &GroupRef,
        user: &UserId,
        items: &[Assignable],
    ) -> Result<(), StoreError> {
        let one = [UserItems {
            user: user.clone(),
            items: items.to_vec(),
        }];
        self.unassign_holdings(ctx, group, &one, None)
            .await
            .map(drop)
    }

    async fn assign_to_users<C: ConfigStore>(
        &self,
        ctx: &WriteCtx,
        group: &GroupRef,
        users: &[UserItems],
        configs: &C,
        render: Option<Render<'_>>,
    ) -> Result<Outcomes, StoreError> {
        self.assign_holdings(ctx, group, users, configs, render)
            .await
    }

    async fn unassign_from_users(
        &self,
        ctx: &WriteCtx,
        group: &GroupRef,
        users: &[UserItems],
        render: Option<Render<'_>>,
    ) -> Result<Outcomes, StoreError> {
        self.unassign_holdings(ctx, group, users, render).await
    }

    async fn group_users(
        &self,
        group: &GroupRef,
        holds: &Holds,
        after: Option<&UserCursor>,
        limit: usize,
    ) -> Result<UsersPage, StoreError> {
        self.users_page(group, holds, after, limit).await
    }
}
