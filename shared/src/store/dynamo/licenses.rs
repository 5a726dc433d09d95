//! Group licenses in DynamoDB: the GET (one `Query` of the group's license records and their
//! version) and the PUT that moves the tenant pool (`pool.rs`).
//!
//! A group PUT reads the group's records once (to know which changes differ from them and what
//! each moves), then writes one transaction of the differing items: each group record guarded by
//! "still as read" plus the usage rule, each pool record moved by the difference under the pool
//! rule, and the group's allocations version moved under "still the version read". A stale read
//! fails a guard and the PUT is re-read and retried; a pool refusal names the service, the
//! tenant maximum and what is left.

use super::DynamoStore;
use super::codec::decode_license;
use super::codec::decode_pool;
use super::etag;
use super::item::{built, key, number};
use super::keys::{LICENSE_PREFIX, group_pk, license_sk, parse_license_sk, pool_sk, tenant_pk};
use super::pool::{Values, differs, pack_undefined, read_remaining, still_as_read};
use super::tx::{Plan, Ran, Rereads};
use crate::domain::{
    Allocation, Authority, GroupLicenses, GroupRef, Licensable, License, LicenseChange,
    PoolRejection, PoolShare, TenantId, UsageEffect,
};
use crate::store::audit::{Change, Op};
use crate::store::{IfMatch, LicenseStore, RejectReason, Rejection, StoreError, Tagged, WriteCtx};
use aws_sdk_dynamodb::types::{
    AttributeValue, Delete, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};
use std::collections::HashMap;

/// What each action of a group PUT transaction stands for, to explain a failure.
enum Action {
    Group {
        change: usize,
        old: Option<Allocation>,
    },
    Pool {
        change: usize,
    },
    /// The group's allocations version (`etag.rs`).
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
            .expression_attribute_values(":delta", number(delta))
            .expression_attribute_values(":negDelta", number(-delta))
            .expression_attribute_values(":unlimitedDelta", number(unlimited_delta))
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
        let mut rereads = Rereads::new(ctx.deadline);
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
            let mut plan = Plan::new();
            for &i in &changing {
                let change = &changes[i];
                let was = stored.get(&change.item).map(|l| l.allocation);
                let after = Some(change.allocation).filter(|a| a.is_licensed());
                if was != after {
                    plan.changed(Change::allocation(&change.item, was, after));
                }
                // `auto_assign` of a group service that was not assigned yet.
                if let UsageEffect::License { assign: true, .. } = change.effect()
                    && !stored.get(&change.item).is_some_and(|l| l.assigned)
                {
                    plan.changed(Change::group_service(Op::Added, &change.item));
                }
                if let Some(write) = self.group_record_write(&pk, change, was)? {
                    plan.push(
                        write,
                        Action::Group {
                            change: i,
                            old: was,
                        },
                    );
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
                    plan.push(pool, Action::Pool { change: i });
                }
            }
            if !plan.is_empty() {
                plan.push(
                    etag::version_move(self.table(), &pk, version)?,
                    Action::Version,
                );
            }
            let failed = match self.run(ctx, plan).await? {
                Ran::Committed => return Ok(()),
                Ran::Refused(failed) => failed,
            };
            // Another PUT moved the allocations since the read: plan again from a new read
            // (which re-checks `If-Match`).
            let mut stale = failed.iter().any(|(a, _)| matches!(a, Action::Version));
            let mut rejections = Vec::new();
            for (action, record) in failed {
                match &action {
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
                rereads.stale().await?;
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

impl LicenseStore for DynamoStore {
    async fn group_licenses(&self, group: &GroupRef) -> Result<GroupLicenses, StoreError> {
        Ok(self.tagged_group_licenses(group).await?.value)
    }

    async fn tagged_group_licenses(
        &self,
        group: &GroupRef,
    ) -> Result<Tagged<GroupLicenses>, StoreError> {
        let mut licenses = GroupLicenses::default();
        let mut version = 0;
        // The allocations version shares the license prefix, so one Query reads both.
        for item in self.query_prefix(&group_pk(group), LICENSE_PREFIX).await? {
            let Some(AttributeValue::S(sk)) = item.get("SK") else {
                continue;
            };
            if sk == etag::VERSION_SK {
                version = etag::version_of(&item);
            } else if let Some(licensable) = parse_license_sk(sk) {
                licenses.insert(licensable, decode_license(&item));
            }
        }
        Ok(Tagged {
            value: licenses,
            etag: version.to_string(),
        })
    }

    async fn update_group_licenses(
        &self,
        ctx: &WriteCtx,
        group: &GroupRef,
        changes: &[LicenseChange],
        authority: Authority,
        if_match: Option<&IfMatch>,
    ) -> Result<(), StoreError> {
        self.apply_group_changes(ctx, group, changes, authority, if_match)
            .await
    }
}
