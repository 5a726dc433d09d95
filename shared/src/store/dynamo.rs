//! The DynamoDB adapter of the store port.
//!
//! A license record is one item: `unlimited` (BOOL), `maximum` (N, only when limited), `inUse`
//! (N) and, for group services, `assigned` (BOOL). Reads are one strongly consistent `Query`
//! (usage must be live), writes one `TransactWriteItems` whose conditions carry the rules.

use super::keys::{LICENSE_PREFIX, group_pk, parse_license_sk};
use super::{LicenseStore, StoreError};
use crate::domain::{Allocation, Authority, GroupLicenses, GroupRef, License, LicenseChange};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem};
use std::collections::HashMap;

pub(super) type Item = HashMap<String, AttributeValue>;

/// How often a transaction that lost a race with another transaction on the same items is
/// retried before the caller is told to retry.
const CONFLICT_RETRIES: u32 = 5;

#[derive(Clone, Debug)]
pub struct DynamoStore {
    client: Client,
    table: String,
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// Runs one transaction. `Ok(Err(failed))` lists the actions whose condition failed, each with
    /// the item as it was (actions ask for `ALL_OLD` on failure), so callers can say why. A
    /// transaction that lost a race with another on the same items is retried a few times.
    pub(super) async fn transact(
        &self,
        items: Vec<TransactWriteItem>,
    ) -> Result<Result<(), Vec<(usize, Option<Item>)>>, StoreError> {
        let mut attempt = 0;
        loop {
            let result = self
                .client
                .transact_write_items()
                .set_transact_items(Some(items.clone()))
                .send()
                .await;
            let err = match result {
                Ok(_) => return Ok(Ok(())),
                Err(err) => err,
            };
            let reasons = match &err {
                SdkError::ServiceError(service) => match service.err() {
                    TransactWriteItemsError::TransactionCanceledException(e) => {
                        e.cancellation_reasons()
                    }
                    _ => return Err(unavailable(err)),
                },
                _ => return Err(unavailable(err)),
            };
            let failed: Vec<(usize, Option<Item>)> = reasons
                .iter()
                .enumerate()
                .filter(|(_, r)| r.code() == Some("ConditionalCheckFailed"))
                .map(|(index, r)| (index, r.item().cloned()))
                .collect();
            if !failed.is_empty() {
                return Ok(Err(failed));
            }
            let conflict = reasons
                .iter()
                .any(|r| r.code() == Some("TransactionConflict"));
            if !conflict || attempt == CONFLICT_RETRIES {
                return Err(unavailable(err));
            }
            attempt += 1;
            // Jittered backoff, so racing requests do not collide again in lockstep.
            let jitter = u64::from(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.subsec_nanos())
                    % 10,
            );
            tokio::time::sleep(std::time::Duration::from_millis((5 << attempt) + jitter)).await;
        }
    }
}

/// The primary key of an item.
pub(super) fn key(pk: &str, sk: String) -> Item {
    HashMap::from([
        ("PK".to_owned(), AttributeValue::S(pk.to_owned())),
        ("SK".to_owned(), AttributeValue::S(sk)),
    ])
}

/// A request builder's result; a missing required field is our defect, reported as unavailable
/// rather than a panic.
pub(super) fn built<T, E: std::fmt::Display>(r: Result<T, E>) -> Result<T, StoreError> {
    r.map_err(|e| StoreError::Unavailable(e.to_string()))
}

pub(super) fn number(n: u32) -> AttributeValue {
    AttributeValue::N(n.to_string())
}

pub(super) fn read_u32(item: &Item, name: &str) -> Option<u32> {
    match item.get(name) {
        Some(AttributeValue::N(n)) => n.parse().ok(),
        _ => None,
    }
}

fn read_bool(item: &Item, name: &str) -> bool {
    matches!(item.get(name), Some(AttributeValue::Bool(true)))
}

/// The stored attributes of a license record (without its keys).
pub fn encode_license(license: &License) -> Item {
    let mut item = Item::with_capacity(4);
    match license.allocation {
        Allocation::Unlimited => {
            item.insert("unlimited".into(), AttributeValue::Bool(true));
        }
        Allocation::Limited(max) => {
            item.insert("unlimited".into(), AttributeValue::Bool(false));
            item.insert("maximum".into(), number(max));
        }
    }
    item.insert("inUse".into(), number(license.in_use));
    if license.assigned {
        item.insert("assigned".into(), AttributeValue::Bool(true));
    }
    item
}

/// Decodes a license record. A record without a readable allocation counts as not licensed.
pub fn decode_license(item: &Item) -> License {
    let allocation = if read_bool(item, "unlimited") {
        Allocation::Unlimited
    } else {
        Allocation::Limited(read_u32(item, "maximum").unwrap_or(0))
    };
    License {
        allocation,
        in_use: read_u32(item, "inUse").unwrap_or(0),
        assigned: read_bool(item, "assigned"),
    }
}

pub(super) fn unavailable<E, R>(err: SdkError<E, R>) -> StoreError
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let message = DisplayErrorContext(&err).to_string();
    tracing::error!(error = %message, "dynamodb request failed");
    StoreError::Unavailable(message)
}

impl LicenseStore for DynamoStore {
    async fn group_licenses(&self, group: &GroupRef) -> Result<GroupLicenses, StoreError> {
        let mut licenses = GroupLicenses::default();
        let mut start: Option<Item> = None;
        let pk = AttributeValue::S(group_pk(group));
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("PK = :pk AND begins_with(SK, :lic)")
                .expression_attribute_values(":pk", pk.clone())
                .expression_attribute_values(":lic", AttributeValue::S(LICENSE_PREFIX.into()))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(unavailable)?;
            for item in page.items() {
                let Some(AttributeValue::S(sk)) = item.get("SK") else {
                    continue;
                };
                if let Some(licensable) = parse_license_sk(sk) {
                    licenses.insert(licensable, decode_license(item));
                }
            }
            match page.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(licenses),
            }
        }
    }

    async fn update_group_licenses(
        &self,
        group: &GroupRef,
        changes: &[LicenseChange],
        authority: Authority,
    ) -> Result<(), StoreError> {
        self.apply_group_changes(group, changes, authority).await
    }
}
