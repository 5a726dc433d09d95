//! The DynamoDB adapter of the user-services configuration.
//!
//! All objects share the partition `PK = CONFIG#user_services` with `SK = <instance name>`, so the
//! list is one `Query` returned in instance-name order. The set is operator-curated and small
//! (one per offered service and audience); `add_data` is kept as its JSON text so any JSON object
//! round-trips unchanged.

use super::dynamo::{built, read_failure, transact};
use super::{ConfigStore, IfMatch, StoreError, Tagged, WriteCtx, etag};
use crate::domain::{Audience, InstanceName, UserService, UserServiceConfig};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem};
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

impl DynamoConfigStore {
    /// One write as a transaction ([`transact`]): conflicts are retried, the request's
    /// idempotency record rides along, and `Ok(false)` says its condition failed.
    async fn write(&self, ctx: &WriteCtx, action: TransactWriteItem) -> Result<bool, StoreError> {
        Ok(transact(&self.client, ctx, &self.table, vec![action])
            .await?
            .is_ok())
    }
}

/// A refused write under `If-Match` is a failed precondition; without one, `Ok(false)`.
fn unless_precondition(applied: bool, if_match: Option<&IfMatch>) -> Result<bool, StoreError> {
    match (applied, if_match) {
        (false, Some(_)) => Err(StoreError::PreconditionFailed),
        (applied, _) => Ok(applied),
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
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(encode(config)))
            .condition_expression("attribute_not_exists(PK)");
        self.write(
            ctx,
            TransactWriteItem::builder()
                .put(built(put.build())?)
                .build(),
        )
        .await
    }

    async fn put_user_service_config(
        &self,
        ctx: &WriteCtx,
        config: &UserServiceConfig,
        if_match: Option<&IfMatch>,
    ) -> Result<(), StoreError> {
        // Creates or replaces; only `If-Match` makes it conditional.
        let mut put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(encode(config)));
        if if_match.is_some() {
            let (condition, values) = etag::existing(if_match);
            put = put
                .condition_expression(condition)
                .set_expression_attribute_values(values);
        }
        let put = TransactWriteItem::builder()
            .put(built(put.build())?)
            .build();
        unless_precondition(self.write(ctx, put).await?, if_match).map(|_| ())
    }

    async fn delete_user_service_config(
        &self,
        ctx: &WriteCtx,
        name: &InstanceName,
        if_match: Option<&IfMatch>,
    ) -> Result<bool, StoreError> {
        let (condition, values) = etag::existing(if_match);
        let delete = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(key_of(name)))
            .condition_expression(condition)
            .set_expression_attribute_values(values);
        let delete = TransactWriteItem::builder()
            .delete(built(delete.build())?)
            .build();
        unless_precondition(self.write(ctx, delete).await?, if_match)
    }
}
