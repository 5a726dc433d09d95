//! The DynamoDB adapter of the user-services configuration.
//!
//! All objects share the partition `PK = CONFIG#user_services` with `SK = <instance name>`, so the
//! list is one `Query` returned in instance-name order. The set is operator-curated and small
//! (one per offered service and audience); `add_data` is kept as its JSON text so any JSON object
//! round-trips unchanged.
//!
//! Beside them, one record (`PK = SK = CONFIG#blocked`) keeps what the objects block: per
//! technical name, how many objects mark it `no_more_assignable` (`n#<name>`), and a version
//! `v` that every change of those counts moves. Each object write moves the counts in its own
//! transaction (under "the object is still as read"), so the record is always what the objects
//! say; an assignment reads it with one `GetItem` and checks in its transaction that `v` is still
//! the version it read. The record is created by the first write that changes a count, from the
//! objects then stored; until then an assignment checks that it still does not exist.

use super::dynamo::{built, read_failure, transact};
use super::retry::Backoff;
use super::{Blocked, ConfigStore, IfMatch, StoreError, Tagged, WriteCtx, etag};
use crate::domain::{Audience, InstanceName, UserService, UserServiceConfig};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Delete, Put, TransactWriteItem, Update,
};
use std::collections::HashMap;

type Item = HashMap<String, AttributeValue>;

const PARTITION: &str = "CONFIG#user_services";

#[derive(Clone, Debug)]
pub struct DynamoConfigStore {
    client: Client,
    table: String,
}

impl DynamoConfigStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }
}

impl super::idempotency::KeepsRecords for DynamoConfigStore {
    fn idempotency_records(&self) -> super::idempotency::Records {
        super::idempotency::Records::new(self.client.clone(), &self.table)
    }
}

fn key_of(name: &InstanceName) -> Item {
    HashMap::from([
        ("PK".to_owned(), AttributeValue::S(PARTITION.to_owned())),
        ("SK".to_owned(), AttributeValue::S(name.as_str().to_owned())),
    ])
}

fn encode(config: &UserServiceConfig) -> Item {
    let mut item = key_of(&config.instance_name);
    let s = |v: &str| AttributeValue::S(v.to_owned());
    item.insert("technical_name".into(), s(config.technical_name.name()));
    item.insert("display_name".into(), s(&config.display_name));
    item.insert("description".into(), s(&config.description));
    item.insert(
        "no_more_assignable".into(),
        AttributeValue::Bool(config.no_more_assignable),
    );
    for field in Audience::FIELDS {
        let flag = config.audience.get(field).unwrap_or(false);
        item.insert(field.into(), AttributeValue::Bool(flag));
    }
    // A serde_json::Map always serializes.
    let add_data = serde_json::Value::Object(config.add_data.clone()).to_string();
    item.insert("add_data".into(), AttributeValue::S(add_data));
    etag::tagged(item)
}

/// Decodes a stored object; `None` for one this version cannot read (its technical name left the
/// catalog, say), which readers skip rather than fail the whole list.
fn decode(item: &Item) -> Option<UserServiceConfig> {
    let text = |name: &str| match item.get(name) {
        Some(AttributeValue::S(s)) => Some(s.as_str()),
        _ => None,
    };
    let flag = |name: &str| matches!(item.get(name), Some(AttributeValue::Bool(true)));
    let mut audience = Audience::default();
    for field in Audience::FIELDS {
        audience.set(field, flag(field));
    }
    let add_data = match text("add_data").map(serde_json::from_str) {
        Some(Ok(serde_json::Value::Object(map))) => map,
        _ => serde_json::Map::new(),
    };
    let technical_name = text("technical_name")?;
    let config = UserServiceConfig {
        instance_name: InstanceName::parse(text("SK")?).ok()?,
        technical_name: match UserService::parse(technical_name) {
            Ok(s) => s,
            Err(_) => {
                tracing::warn!(
                    technical_name,
                    "stored configuration names an unknown service"
                );
                return None;
            }
        },
        display_name: text("display_name").unwrap_or(technical_name).to_owned(),
        description: text("description").unwrap_or_default().to_owned(),
        no_more_assignable: flag("no_more_assignable"),
        audience,
        add_data,
    };
    Some(config)
}

/// The key of the record of what the objects block.
const BLOCKED: &str = "CONFIG#blocked";

fn blocked_key() -> Item {
    HashMap::from([
        ("PK".to_owned(), AttributeValue::S(BLOCKED.to_owned())),
        ("SK".to_owned(), AttributeValue::S(BLOCKED.to_owned())),
    ])
}

/// The attribute counting the objects that block `service`.
fn count_of(service: UserService) -> String {
    format!("n#{}", service.name())
}

/// The blocked services and the version of a record read back.
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
    let version = match item.get("v") {
        Some(AttributeValue::N(v)) => v.parse().unwrap_or(0),
        _ => 0,
    };
    (services, version)
}

/// The check an assignment's transaction makes of the set it used: still version `version`
/// (0: the record still does not exist). `None` when there is nothing to check.
pub(super) fn blocked_unchanged(
    blocked: &Blocked,
) -> Result<Option<TransactWriteItem>, StoreError> {
    let Some((table, version)) = &blocked.guard else {
        return Ok(None);
    };
    let check = ConditionCheck::builder()
        .table_name(table)
        .set_key(Some(blocked_key()));
    let check = if *version == 0 {
        check.condition_expression("attribute_not_exists(PK)")
    } else {
        check
            .condition_expression("v = :v")
            .expression_attribute_values(":v", AttributeValue::N(version.to_string()))
    };
    Ok(Some(
        TransactWriteItem::builder()
            .condition_check(built(check.build())?)
            .build(),
    ))
}

/// Whether an object blocks its service: the count it adds.
fn blocks(config: Option<&UserServiceConfig>) -> Option<UserService> {
    config
        .filter(|c| c.no_more_assignable)
        .map(|c| c.technical_name)
}

impl DynamoConfigStore {
    /// One write as a transaction ([`transact`]): conflicts are retried, the request's
    /// idempotency record rides along.
    async fn write(
        &self,
        ctx: &WriteCtx,
        actions: Vec<TransactWriteItem>,
    ) -> Result<Result<(), Vec<usize>>, StoreError> {
        Ok(transact(&self.client, ctx, &self.table, actions)
            .await?
            .map_err(|failed| failed.into_iter().map(|(i, _)| i).collect()))
    }

    /// The move of the blocked counts for an object going from `old` to `new` (`None`: no
    /// such object): `None` when no count changes. Requires the record to exist.
    fn blocked_move(
        &self,
        old: Option<&UserServiceConfig>,
        new: Option<&UserServiceConfig>,
    ) -> Result<Option<TransactWriteItem>, StoreError> {
        let (was, now) = (blocks(old), blocks(new));
        if was == now {
            return Ok(None);
        }
        let mut update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(blocked_key()))
            .condition_expression("attribute_exists(v)")
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .expression_attribute_values(":zero", AttributeValue::N("0".into()));
        let mut set = vec!["v = v + :one".to_owned()];
        for (i, (service, delta)) in [(was, -1), (now, 1)].into_iter().enumerate() {
            let Some(service) = service else { continue };
            let (name, value) = (format!("#n{i}"), format!(":d{i}"));
            set.push(format!("{name} = if_not_exists({name}, :zero) + {value}"));
            update = update
                .expression_attribute_names(&name, count_of(service))
                .expression_attribute_values(&value, AttributeValue::N(delta.to_string()));
        }
        let update = update.update_expression(format!("SET {}", set.join(", ")));
        Ok(Some(
            TransactWriteItem::builder()
                .update(built(update.build())?)
                .build(),
        ))
    }

    /// Creates the blocked record from the objects stored now, unless it exists. The first
    /// write that moves a count does it, then writes again: from then on every object write
    /// moves the counts with it.
    async fn create_blocked(&self) -> Result<(), StoreError> {
        let configs = self.user_service_configs().await?;
        let mut item = blocked_key();
        item.insert("v".into(), AttributeValue::N("1".into()));
        for config in &configs {
            if let Some(service) = blocks(Some(config)) {
                let count = item
                    .entry(count_of(service))
                    .or_insert_with(|| AttributeValue::N("0".into()));
                if let AttributeValue::N(n) = count {
                    *n = (n.parse::<u64>().unwrap_or(0) + 1).to_string();
                }
            }
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
            Ok(_) => Ok(()),
            // Created meanwhile by another write: as good.
            Err(e)
                if e.as_service_error().is_some_and(|e| {
                    e.is_conditional_check_failed_exception()
                        || e.is_transaction_conflict_exception()
                }) =>
            {
                Ok(())
            }
            Err(e) => Err(read_failure(e)),
        }
    }

    /// The object as stored now, with its strong tag.
    async fn stored(
        &self,
        name: &InstanceName,
    ) -> Result<Option<(UserServiceConfig, String)>, StoreError> {
        Ok(self
            .user_service_config(name)
            .await?
            .map(|tagged| (tagged.value, tagged.etag)))
    }

    /// Replaces (`Some(config)`) or deletes (`None`) the object `name`: read it, check
    /// `If-Match` against what was read, then one transaction of the object's write under "still
    /// as read" and the move of the blocked counts. `Ok(false)`: there was no object to delete.
    async fn change(
        &self,
        ctx: &WriteCtx,
        name: &InstanceName,
        config: Option<&UserServiceConfig>,
        if_match: Option<&IfMatch>,
    ) -> Result<bool, StoreError> {
        let mut backoff = Backoff::new(ctx.deadline);
        loop {
            let old = self.stored(name).await?;
            let matches = match (if_match, &old) {
                (None, _) => true,
                (Some(_), None) => false,
                (Some(IfMatch::Any), Some(_)) => true,
                (Some(IfMatch::Tags(tags)), Some((_, tag))) => tags.contains(tag),
            };
            if !matches {
                return Err(StoreError::PreconditionFailed);
            }
            if old.is_none() && config.is_none() {
                return Ok(false);
            }
            let still_as_read = |tag: Option<&String>| match tag {
                None => ("attribute_not_exists(PK)".to_owned(), None),
                Some(tag) => (
                    format!("{} = :tag", etag::ATTRIBUTE),
                    Some(HashMap::from([(
                        ":tag".to_owned(),
                        AttributeValue::S(tag.clone()),
                    )])),
                ),
            };
            let (condition, values) = still_as_read(old.as_ref().map(|(_, tag)| tag));
            let write = match config {
                Some(config) => {
                    let put = Put::builder()
                        .table_name(&self.table)
                        .set_item(Some(encode(config)))
                        .condition_expression(condition)
                        .set_expression_attribute_values(values);
                    TransactWriteItem::builder()
                        .put(built(put.build())?)
                        .build()
                }
                None => {
                    let delete = Delete::builder()
                        .table_name(&self.table)
                        .set_key(Some(key_of(name)))
                        .condition_expression(condition)
                        .set_expression_attribute_values(values);
                    TransactWriteItem::builder()
                        .delete(built(delete.build())?)
                        .build()
                }
            };
            let mut actions = vec![write];
            actions.extend(self.blocked_move(old.as_ref().map(|(c, _)| c), config)?);
            match self.write(ctx, actions).await? {
                Ok(()) => return Ok(true),
                // The blocked record does not exist yet: create it, then write again.
                Err(failed) if failed == [1] => self.create_blocked().await?,
                // The object changed since it was read: read again (If-Match is checked again).
                Err(_) => backoff.pause().await?,
            }
        }
    }
}

impl ConfigStore for DynamoConfigStore {
    async fn user_service_configs(&self) -> Result<Vec<UserServiceConfig>, StoreError> {
        let mut configs = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("PK = :pk")
                .expression_attribute_values(":pk", AttributeValue::S(PARTITION.into()))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(read_failure)?;
            configs.extend(page.items().iter().filter_map(decode));
            match page.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(configs),
            }
        }
    }

    async fn user_service_config(
        &self,
        name: &InstanceName,
    ) -> Result<Option<Tagged<UserServiceConfig>>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key_of(name)))
            .consistent_read(true)
            .send()
            .await
            .map_err(read_failure)?;
        Ok(out.item().and_then(|item| {
            Some(Tagged {
                value: decode(item)?,
                etag: etag::stored(item),
            })
        }))
    }

    async fn create_user_service_config(
        &self,
        ctx: &WriteCtx,
        config: &UserServiceConfig,
    ) -> Result<bool, StoreError> {
        loop {
            let put = Put::builder()
                .table_name(&self.table)
                .set_item(Some(encode(config)))
                .condition_expression("attribute_not_exists(PK)");
            let mut actions = vec![
                TransactWriteItem::builder()
                    .put(built(put.build())?)
                    .build(),
            ];
            actions.extend(self.blocked_move(None, Some(config))?);
            match self.write(ctx, actions).await? {
                Ok(()) => return Ok(true),
                Err(failed) if failed.contains(&0) => return Ok(false),
                // The blocked record does not exist yet: create it, then write again.
                Err(_) => self.create_blocked().await?,
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

    async fn blocked_services(&self) -> Result<Blocked, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(blocked_key()))
            .consistent_read(true)
            .send()
            .await
            .map_err(read_failure)?;
        let (services, version) = match out.item() {
            Some(item) => decode_blocked(item),
            // No object ever blocked anything through this version: read the objects.
            None => {
                let mut services: Vec<UserService> = self
                    .user_service_configs()
                    .await?
                    .iter()
                    .filter_map(|c| blocks(Some(c)))
                    .collect();
                services.sort();
                services.dedup();
                (services, 0)
            }
        };
        Ok(Blocked {
            services,
            guard: Some((self.table.clone(), version)),
        })
    }
}
