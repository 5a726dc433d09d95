//! The DynamoDB adapter of the store port.
//!
//! A license record is one item: `unlimited` (BOOL), `maximum` (N, only when limited), `inUse`
//! (N) and, for group services, `assigned` (BOOL). Reads are one strongly consistent `Query`
//! (usage must be live), writes one `TransactWriteItems` whose conditions carry the rules.

use super::keys::{LICENSE_PREFIX, group_pk, parse_license_sk};
use super::retry::{self, Backoff};
use super::{IfMatch, LicenseStore, StoreError, Tagged, etag, idempotency};
use crate::domain::{Allocation, Authority, GroupLicenses, GroupRef, License, LicenseChange};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem};
use std::collections::HashMap;

pub(super) type Item = HashMap<String, AttributeValue>;

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

    /// Runs one transaction ([`transact`]).
    pub(super) async fn transact(&self, items: Vec<TransactWriteItem>) -> Transacted {
        transact(&self.client, items).await
    }
}

impl idempotency::KeepsRecords for DynamoStore {
    fn idempotency_records(&self) -> idempotency::Records {
        idempotency::Records::new(self.client.clone(), &self.table)
    }
}

/// A transaction's outcome: `Ok(Err(failed))` lists the actions whose condition failed, each
/// with the item as it was (actions ask for `ALL_OLD` on failure), so callers can say why.
pub(super) type Transacted = Result<Result<(), Vec<(usize, Option<Item>)>>, StoreError>;

/// Runs one transaction, the only way this crate writes.
///
/// - Every attempt has its own `ClientRequestToken`, which the SDK keeps for its resends of that
///   attempt, so a resend after a lost response gets the first outcome instead of running again.
/// - A `TransactionConflict` (another in-flight transaction held one of the items) is retried
///   after a backoff within the request's deadline ([`retry::Backoff`]), then `Contended`.
/// - Throttling the SDK could not retry away, and an unreachable store, are `Unavailable`.
/// - The request's idempotency claim, if any, rides along as the last action
///   ([`idempotency::Claim::action`]); a claim lost to another request is `ClaimLost`.
pub(super) async fn transact(client: &Client, mut items: Vec<TransactWriteItem>) -> Transacted {
    let claim_index = match idempotency::current() {
        Some(claim) => {
            items.push(claim.action()?);
            Some(items.len() - 1)
        }
        None => None,
    };
    if items.len() > MAX_TRANSACTION_ITEMS {
        return Err(StoreError::TooManyWrites {
            needed: items.len(),
        });
    }
    let mut backoff = Backoff::new();
    loop {
        let result = client
            .transact_write_items()
            .set_transact_items(Some(items.clone()))
            .client_request_token(retry::request_token())
            .send()
            .await;
        let err = match result {
            Ok(_) => return Ok(Ok(())),
            Err(err) => err,
        };
        let reasons = match err.as_service_error() {
            Some(TransactWriteItemsError::TransactionCanceledException(e)) => {
                e.cancellation_reasons()
            }
            _ => return Err(unavailable(err)),
        };
        let code = |i: usize| reasons.get(i).and_then(|r| r.code());
        if claim_index.is_some_and(|i| code(i) == Some("ConditionalCheckFailed")) {
            return Err(StoreError::ClaimLost);
        }
        let failed: Vec<(usize, Option<Item>)> = reasons
            .iter()
            .enumerate()
            .filter(|(_, r)| r.code() == Some("ConditionalCheckFailed"))
            .map(|(index, r)| (index, r.item().cloned()))
            .collect();
        if !failed.is_empty() {
            return Ok(Err(failed));
        }
        if reasons
            .iter()
            .any(|r| r.code() == Some("TransactionConflict"))
        {
            backoff.pause().await?;
            continue;
        }
        // ThrottlingError, ValidationError, ...: the caller may retry later.
        return Err(unavailable(err));
    }
}

/// DynamoDB's limit of actions in one transaction.
pub const MAX_TRANSACTION_ITEMS: usize = 100;

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
        group: &GroupRef,
        changes: &[LicenseChange],
        authority: Authority,
        if_match: Option<&IfMatch>,
    ) -> Result<(), StoreError> {
        self.apply_group_changes(group, changes, authority, if_match)
            .await
    }
}
