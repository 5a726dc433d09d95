//! The DynamoDB adapter of the user-services configuration.
//!
//! All objects share the partition `PK = CONFIG#user_services` with `SK = <instance name>`, so the
//! list is one `Query` returned in instance-name order. The set is operator-curated and small
//! (one per offered service and audience); `add_data` is kept as its JSON text so any JSON object
//! round-trips unchanged.
//!
//! Beside them, a record keeps what the objects block: per technical name, how many objects mark
//! it `no_more_assignable` (`n#<name>`), and a version `v` that every change of those counts
//! moves. Each object write moves the counts in its own transaction (under "the object is still
//! as read"), so the record is always what the objects say. An assignment uses the record as its
//! function instance last read it (one `GetItem` the first time) and checks in its transaction
//! that `v` is still that version, so an object written meanwhile makes it read again.
//!
//! A transaction's items conflict with every other transaction that includes them, a check
//! included: one record checked by every assignment of every tenant would serialise them all. So
//! the record has [`COPIES`] identical copies, each its own partition (`PK =
//! CONFIG#blocked#<n>`); a group's assignments check the copy its key hashes to, and an object
//! write (rare: operators curate them) moves every copy. The copies are created, from the objects
//! then stored, by the first assignment or object write that finds one missing.

use super::codec::{config_key, decode_config, encode_config};
use super::etag;
use super::item::{Item, built, key, number, read_bool, read_number, read_str, s};
use super::keys::{BLOCKED_SK, CONFIGS_PK, blocked_copy_pk};
use super::query::query_all;
use super::retry::read_failure;
use super::tx::{Plan, Ran, Rereads, Step};
use crate::domain::{GroupRef, InstanceName, UserService, UserServiceConfig};
use crate::store::audit::{AuditLog, AuditPage, AuditQuery, Change, Op, Trail};
use crate::store::{Blocked, ConfigStore, IfMatch, Read, StoreError, Tagged, WriteCtx};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Delete, Put, TransactWriteItem, Update,
};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

#[derive(Clone, Debug)]
pub struct DynamoConfigStore {
    client: Client,
    table: String,
    /// The copies of the blocked services as this instance last read them, by copy number:
    /// they change only with the configuration, and every assignment checks the one it used.
    blocked: Arc<Mutex<HashMap<usize, Blocked>>>,
}

impl DynamoConfigStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client: crate::store::meter::metered(client),
            table: table.into(),
            blocked: Arc::default(),
        }
    }

    fn cached_blocked(&self, copy: usize) -> Option<Blocked> {
        let cache = self.blocked.lock().unwrap_or_else(|e| e.into_inner());
        cache.get(&copy).cloned()
    }
}

impl AuditLog for DynamoConfigStore {
    async fn audit_events(
        &self,
        trail: &Trail,
        query: &AuditQuery,
    ) -> Result<AuditPage, StoreError> {
        super::audit::events(&self.client, &self.table, trail, query).await
    }
}

impl super::idempotency::KeepsRecords for DynamoConfigStore {
    fn idempotency_records(&self) -> super::idempotency::Records {
        super::idempotency::Records::new(self.client.clone(), &self.table)
    }
}

/// How many copies of the blocked counts there are (see the module comment). An object write
/// moves them all in its transaction, beside the object and an Idempotency-Key's record.
const COPIES: usize = 16;

fn copy_key(copy: usize) -> Item {
    key(&blocked_copy_pk(copy), BLOCKED_SK.to_owned())
}

/// The copy a group's assignments check: its key hashed (FNV-1a, stable across builds).
fn copy_for(group: &GroupRef) -> usize {
    let mut hash: u32 = 0x811c_9dc5;
    let key = [group.tenant.as_str(), group.group.as_str()];
    for byte in key.join("/").bytes() {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash as usize % COPIES
}

/// The attribute counting the objects that block the service named `technical_name`.
fn count_of(technical_name: &str) -> String {
    format!("n#{technical_name}")
}

/// The blocked services and the version of a copy read back.
fn decode_blocked(item: &Item) -> (Vec<UserService>, u64) {
    let mut services: Vec<UserService> = item
        .iter()
        .filter_map(|(name, value)| {
            let service = UserService::parse(name.strip_prefix("n#")?).ok()?;
            match value {
                AttributeValue::N(n) if n.parse::<i64>().is_ok_and(|n| n > 0) => Some(service),
                _ => None,
            }
        })
        .collect();
    services.sort();
    (services, read_number(item, "v").unwrap_or(0))
}

/// The actions of an object's write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ObjectPart {
    /// The object, under "still as read".
    Object,
    /// A copy of the blocked counts, which must exist.
    BlockedCopy,
}

/// A version for the copies of the blocked services: random, so no two states share one.
fn fresh_version() -> AttributeValue {
    number(fastrand::u64(1..))
}

/// The check an assignment's transaction makes of the blocked services it used: its copy is
/// still the version read. `None` when there is nothing to check.
pub(super) fn blocked_unchanged(
    blocked: &Blocked,
) -> Result<Option<TransactWriteItem>, StoreError> {
    let Some((table, copy, version)) = &blocked.guard else {
        return Ok(None);
    };
    let check = ConditionCheck::builder()
        .table_name(table)
        .set_key(Some(copy_key(*copy)))
        .condition_expression("v = :v")
        .expression_attribute_values(":v", number(version));
    Ok(Some(
        TransactWriteItem::builder()
            .condition_check(built(check.build())?)
            .build(),
    ))
}

/// The technical name a stored object blocks, as stored (also a name this version's catalog
/// no longer knows): what the counts count.
fn blocks(item: Option<&Item>) -> Option<String> {
    let item = item?;
    read_bool(item, "no_more_assignable")
        .then(|| read_str(item, "technical_name").map(str::to_owned))
        .flatten()
}

impl DynamoConfigStore {
    /// Every object as stored (one `Query`, paged).
    async fn stored_objects(&self) -> Result<Vec<Item>, StoreError> {
        query_all(&self.client, &self.table, CONFIGS_PK, "").await
    }

    /// The object as stored now (one `GetItem`), whatever this version can decode of it.
    async fn stored(&self, name: &InstanceName) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(config_key(name)))
            .consistent_read(true)
            .send()
            .await
            .map_err(read_failure)?;
        Ok(out.item)
    }

    /// The moves of the blocked counts, one per copy, for an object going from `old` to `new`
    /// (stored items; `None`: no such object). None when no count changes. Each requires its
    /// copy to exist.
    fn blocked_moves(
        &self,
        old: Option<&Item>,
        new: Option<&Item>,
    ) -> Result<Vec<TransactWriteItem>, StoreError> {
        let (was, now) = (blocks(old), blocks(new));
        if was == now {
            return Ok(Vec::new());
        }
        // A fresh random version, never a counter: an assignment's check `v = :read` must not
        // pass again on other contents (a copy re-created after its table was, a cached copy
        // that outlived it), which a counter restarting at 1 would allow.
        let mut set = vec!["v = :v".to_owned()];
        let mut names = HashMap::new();
        let mut values = HashMap::from([
            (":v".to_owned(), fresh_version()),
            (":zero".to_owned(), number(0)),
        ]);
        for (i, (name, delta)) in [(was, -1), (now, 1)].into_iter().enumerate() {
            let Some(name) = name else { continue };
            let (attribute, value) = (format!("#n{i}"), format!(":d{i}"));
            set.push(format!(
                "{attribute} = if_not_exists({attribute}, :zero) + {value}"
            ));
            names.insert(attribute, count_of(&name));
            values.insert(value, number(delta));
        }
        (0..COPIES)
            .map(|copy| {
                let update = Update::builder()
                    .table_name(&self.table)
                    .set_key(Some(copy_key(copy)))
                    .update_expression(format!("SET {}", set.join(", ")))
                    .condition_expression("attribute_exists(v)")
                    .set_expression_attribute_names(Some(names.clone()))
                    .set_expression_attribute_values(Some(values.clone()));
                Ok(TransactWriteItem::builder()
                    .update(built(update.build())?)
                    .build())
            })
            .collect()
    }

    /// Creates the copies that do not exist yet, from the objects stored now: the first
    /// assignment or object write that finds one missing does it, once per deployment. From
    /// then on every object write moves every copy with it (it requires them all), so a copy
    /// created later from the objects equals the others.
    async fn create_copies(&self) -> Result<(), StoreError> {
        let mut counts: HashMap<String, u64> = HashMap::new();
        for object in self.stored_objects().await? {
            if let Some(name) = blocks(Some(&object)) {
                *counts.entry(name).or_default() += 1;
            }
        }
        for copy in 0..COPIES {
            let mut item = copy_key(copy);
            item.insert("v".into(), fresh_version());
            for (name, count) in &counts {
                item.insert(count_of(name), number(count));
            }
            let result = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(PK)")
                .send()
                .await;
            match result {
                Ok(_) => {}
                // The copy exists; or a check of it is in flight (the writer retries).
                Err(e)
                    if e.as_service_error().is_some_and(|e| {
                        e.is_conditional_check_failed_exception()
                            || e.is_transaction_conflict_exception()
                    }) => {}
                Err(e) => return Err(read_failure(e)),
            }
        }
        Ok(())
    }

    /// Writes an object (`Some`) or deletes one (`None`) with the moves of the blocked counts,
    /// in one transaction, `condition` being "the object is still as read": `Ok(Ok(()))`,
    /// `Ok(Err(true))` when the object was not as read, `Ok(Err(false))` when a copy of the
    /// counts was missing and has been created since (write again).
    async fn write_object(
        &self,
        ctx: &WriteCtx,
        name: &InstanceName,
        object: Option<&UserServiceConfig>,
        old: Option<&Item>,
    ) -> Result<Result<(), bool>, StoreError> {
        // Still as read: absent; or the tag it had; or, an object written before tags were
        // stored, still without one.
        let (condition, values) = match old {
            None => ("attribute_not_exists(PK)".to_owned(), None),
            Some(old) => match read_str(old, etag::ATTRIBUTE) {
                Some(tag) => (
                    format!("{} = :tag", etag::ATTRIBUTE),
                    Some(HashMap::from([(":tag".to_owned(), s(tag))])),
                ),
                None => (
                    format!(
                        "attribute_exists(PK) AND attribute_not_exists({})",
                        etag::ATTRIBUTE
                    ),
                    None,
                ),
            },
        };
        let new = object.map(encode_config);
        let write = match &new {
            Some(item) => {
                let put = Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(item.clone()))
                    .condition_expression(condition)
                    .set_expression_attribute_values(values);
                TransactWriteItem::builder()
                    .put(built(put.build())?)
                    .build()
            }
            None => {
                let delete = Delete::builder()
                    .table_name(&self.table)
                    .set_key(Some(config_key(name)))
                    .condition_expression(condition)
                    .set_expression_attribute_values(values);
                TransactWriteItem::builder()
                    .delete(built(delete.build())?)
                    .build()
            }
        };
        let mut plan = Plan::new();
        plan.push(write, ObjectPart::Object);
        let shown = |c: &UserServiceConfig| serde_json::to_value(c.view()).ok();
        let before = old.and_then(decode_config);
        let op = match (&before, object) {
            (None, _) => Op::Created,
            (Some(_), Some(_)) => Op::Replaced,
            (Some(_), None) => Op::Deleted,
        };
        plan.changed(Change::object(
            op,
            "userServiceConfig",
            name.as_str(),
            before.as_ref().and_then(shown),
            object.and_then(shown),
        ));
        for copy in self.blocked_moves(old, new.as_ref())? {
            plan.push(copy, ObjectPart::BlockedCopy);
        }
        match plan.run(&self.client, ctx, &self.table).await? {
            Ran::Committed => Ok(Ok(())),
            Ran::Refused(failed) if failed.iter().any(|(p, _)| *p == ObjectPart::Object) => {
                Ok(Err(true))
            }
            Ran::Refused(_) => {
                self.create_copies().await?;
                Ok(Err(false))
            }
        }
    }

    /// Replaces (`Some(config)`) or deletes (`None`) the object `name`: read it, check
    /// `If-Match` against what was read, then write under "still as read". `Ok(false)`: there
    /// was no object to delete.
    async fn change(
        &self,
        ctx: &WriteCtx,
        name: &InstanceName,
        config: Option<&UserServiceConfig>,
        if_match: Option<&IfMatch>,
    ) -> Result<bool, StoreError> {
        let mut rereads = Rereads::new(ctx.deadline);
        loop {
            let old = self.stored(name).await?;
            let matches = match (if_match, &old) {
                (None, _) => true,
                (Some(_), None) => false,
                (Some(IfMatch::Any), Some(_)) => true,
                (Some(IfMatch::Tags(tags)), Some(old)) => tags.contains(&etag::stored(old)),
            };
            if !matches {
                return Err(StoreError::PreconditionFailed);
            }
            if old.is_none() && config.is_none() {
                return Ok(false);
            }
            let step = match self.write_object(ctx, name, config, old.as_ref()).await? {
                Ok(()) => Step::Done(true),
                // Changed since it was read, or the counts' copies were just created: read
                // again (If-Match is checked again).
                Err(_) => Step::Stale,
            };
            if let Some(done) = rereads.after(step).await? {
                return Ok(done);
            }
        }
    }
}

impl ConfigStore for DynamoConfigStore {
    async fn user_service_configs(&self) -> Result<Vec<UserServiceConfig>, StoreError> {
        Ok(self
            .stored_objects()
            .await?
            .iter()
            .filter_map(decode_config)
            .collect())
    }

    async fn user_service_config(
        &self,
        name: &InstanceName,
    ) -> Result<Option<Tagged<UserServiceConfig>>, StoreError> {
        Ok(self.stored(name).await?.and_then(|item| {
            Some(Tagged {
                value: decode_config(&item)?,
                etag: etag::stored(&item),
            })
        }))
    }

    async fn create_user_service_config(
        &self,
        ctx: &WriteCtx,
        config: &UserServiceConfig,
    ) -> Result<bool, StoreError> {
        let mut rereads = Rereads::new(ctx.deadline);
        loop {
            let step = match self
                .write_object(ctx, &config.instance_name, Some(config), None)
                .await?
            {
                Ok(()) => Step::Done(true),
                Err(true) => Step::Done(false), // the instance exists
                Err(false) => Step::Stale,      // the copies were just created
            };
            if let Some(done) = rereads.after(step).await? {
                return Ok(done);
            }
        }
    }

    async fn put_user_service_config(
        &self,
        ctx: &WriteCtx,
        config: &UserServiceConfig,
        if_match: Option<&IfMatch>,
    ) -> Result<(), StoreError> {
        self.change(ctx, &config.instance_name, Some(config), if_match)
            .await
            .map(|_| ())
    }

    async fn delete_user_service_config(
        &self,
        ctx: &WriteCtx,
        name: &InstanceName,
        if_match: Option<&IfMatch>,
    ) -> Result<bool, StoreError> {
        self.change(ctx, name, None, if_match).await
    }

    async fn blocked_services(&self, group: &GroupRef, read: Read) -> Result<Blocked, StoreError> {
        let copy = copy_for(group);
        if read == Read::Cached
            && let Some(blocked) = self.cached_blocked(copy)
        {
            return Ok(blocked);
        }
        for _ in 0..2 {
            let out = self
                .client
                .get_item()
                .table_name(&self.table)
                .set_key(Some(copy_key(copy)))
                .consistent_read(true)
                .send()
                .await
                .map_err(read_failure)?;
            if let Some(item) = out.item() {
                let (services, version) = decode_blocked(item);
                let blocked = Blocked {
                    services,
                    guard: Some((self.table.clone(), copy, version)),
                };
                let mut cache = self.blocked.lock().unwrap_or_else(|e| e.into_inner());
                cache.insert(copy, blocked.clone());
                return Ok(blocked);
            }
            // Once per deployment: no write has created the copies yet.
            self.create_copies().await?;
        }
        Err(StoreError::Defect(
            "the copies of the blocked services could not be created".into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{GroupId, TenantId};

    #[test]
    fn groups_spread_over_the_copies_the_same_way_every_time() {
        let group = |t: &str, g: &str| GroupRef {
            tenant: TenantId::parse(t).unwrap(),
            group: GroupId::parse(g).unwrap(),
        };
        assert_eq!(
            copy_for(&group("foo", "foogroup")),
            copy_for(&group("foo", "foogroup"))
        );
        let used: std::collections::BTreeSet<usize> = (0..200)
            .map(|i| copy_for(&group("acme", &format!("g{i}"))))
            .collect();
        assert_eq!(used.len(), COPIES, "200 groups reach every copy");
    }

    #[test]
    fn a_copy_reads_back_the_services_counted_above_zero() {
        let mut item = copy_key(3);
        item.insert("v".into(), AttributeValue::N("4".into()));
        item.insert(count_of("Call Waiting"), AttributeValue::N("2".into()));
        item.insert(count_of("Call Return"), AttributeValue::N("0".into()));
        item.insert(count_of("No Such Service"), AttributeValue::N("1".into()));
        let (services, version) = decode_blocked(&item);
        assert_eq!(services, [UserService::parse("Call Waiting").unwrap()]);
        assert_eq!(version, 4);
    }
}
