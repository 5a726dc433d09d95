//! Tenant licenses and pack definitions in DynamoDB, in the tenant's partition
//! (`TENANT#<tenant>`): the tenant PUT sets the tenant allocations of the pool records
//! (`pool.rs`) under the same read -> diff -> one transaction as the group PUT; pack
//! definitions live beside them (`PACKDEF#<pack>`). A pack that a group licenses cannot be
//! redefined or deleted, nor one the operator allocated to the tenant deleted: a tenant admin
//! cannot shed the operator's cap by deleting and re-creating it.

use super::DynamoStore;
use super::codec::{decode_pack, decode_pool, encode_pack};
use super::etag;
use super::item::{Item, built, key, number};
use super::keys::{PACKDEF_PREFIX, packdef_sk, parse_pool_sk, pool_sk, tenant_pk};
use super::pool::pack_undefined;
use super::retry::read_failure;
use super::tx::{Plan, Ran, Rereads};
use crate::store::audit::{Change, Op};

/// The audit kind of a pack definition.
const PACK_DEFINITION: &str = "servicePackDefinition";

/// A pack definition written (its services and description as the request gave them; a
/// replacement's earlier definition is in the record of the write that made it).
fn pack_change(op: Op, pack: &PackDefinition) -> Change {
    let after = serde_json::json!({
        "description": pack.description,
        "services": pack.services.iter().map(|s| s.name()).collect::<Vec<_>>(),
    });
    Change::object(op, PACK_DEFINITION, pack.name.as_str(), None, Some(after))
}
use crate::domain::{
    Allocation, Licensable, LicenseChange, PackDefinition, PackName, PoolChange, PoolRejection,
    TenantId,
};
use crate::store::{
    IfMatch, RejectReason, Rejection, StoreError, Tagged, TenantState, TenantStore, WriteCtx,
};
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Delete, Put, ReturnValuesOnConditionCheckFailure,
    TransactWriteItem, Update,
};
use std::collections::HashMap;

/// The two actions of a pack definition's write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PackPart {
    /// The definition itself (`PACKDEF#<pack>`).
    Definition,
    /// The pack's pool record: its `packDefined` mark, or the check that no group holds it.
    Pool,
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
    /// when there is no such pack; `write` is the definition's action with its audit entry.
    /// Deleting also deletes the pack's pool record (its mark), so
    /// groups can no longer license the pack and a new definition of the name starts from
    /// nothing; the operator's allocation cannot be lost that way, since it blocks the delete.
    async fn change_pack(
        &self,
        ctx: &WriteCtx,
        tenant: &TenantId,
        name: &PackName,
        (write, change): (TransactWriteItem, Change),
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
        let mut plan = Plan::new();
        plan.push(write, PackPart::Definition);
        plan.push(guard, PackPart::Pool);
        plan.changed(change);
        let failed = match self.run(ctx, plan).await? {
            Ran::Committed => return Ok(true),
            Ran::Refused(failed) => failed,
        };
        if failed.iter().any(|(part, _)| *part == PackPart::Definition) {
            // `If-Match` names a representation; none, or another, is a failed precondition.
            return if if_match {
                Err(StoreError::PreconditionFailed)
            } else {
                Ok(false)
            };
        }
        let pool = failed
            .iter()
            .find(|(part, _)| *part == PackPart::Pool)
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
        let mut rereads = Rereads::new(ctx.deadline);
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
            // Each pool write means the request item it changes; `None`, the version.
            let mut plan = Plan::new();
            for &i in &changing {
                plan.push(self.pool_allocation_write(&pk, &changes[i])?, Some(i));
                let change = &changes[i];
                let was = stored.get(&change.item).copied().flatten();
                plan.changed(Change::pool(&change.item, was, change.allocation));
            }
            if !plan.is_empty() {
                plan.push(etag::version_move(self.table(), &pk, state.version)?, None);
            }
            let failed = match self.run(ctx, plan).await? {
                Ran::Committed => return Ok(()),
                Ran::Refused(failed) => failed,
            };
            if failed.iter().any(|(change, _)| change.is_none()) {
                // Another PUT moved the allocations since the read: plan again.
                rereads.stale().await?;
                continue;
            }
            return Err(StoreError::Rejected(
                failed
                    .into_iter()
                    .filter_map(|(change, record)| Some((change?, record)))
                    .map(|(index, record)| {
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
        let mut plan = Plan::new();
        // Only the definition is conditional: its failure means the pack exists.
        plan.push(
            TransactWriteItem::builder()
                .put(built(put.build())?)
                .build(),
            PackPart::Definition,
        );
        plan.push(
            TransactWriteItem::builder()
                .update(built(mark.build())?)
                .build(),
            PackPart::Pool,
        );
        plan.changed(pack_change(Op::Created, pack));
        Ok(matches!(self.run(ctx, plan).await?, Ran::Committed))
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
        let change = pack_change(Op::Replaced, pack);
        self.change_pack(
            ctx,
            tenant,
            &pack.name,
            (write, change),
            false,
            if_match.is_some(),
        )
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
        let change = Change::object(Op::Deleted, PACK_DEFINITION, name.as_str(), None, None);
        self.change_pack(ctx, tenant, name, (write, change), true, if_match.is_some())
            .await
    }
}
