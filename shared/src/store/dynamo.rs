//! The DynamoDB adapter of the store port.
//!
//! A license record is one item: `unlimited` (BOOL), `maximum` (N, only when limited), `inUse`
//! (N) and, for group services, `assigned` (BOOL). Reads are one strongly consistent `Query`
//! (usage must be live), writes one `TransactWriteItems` whose conditions carry the rules.

use super::dynamo_holdings::Definitions;
use super::keys::{LICENSE_PREFIX, group_pk, parse_license_sk};
use super::retry::{self, Backoff};
use super::{IfMatch, LicenseStore, Outcome, StoreError, Tagged, WriteCtx, etag, idempotency};
use crate::domain::{
    Allocation, Authority, GroupLicenses, GroupRef, License, LicenseChange, TenantId,
};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::Config;
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, CancellationReason, TransactWriteItem};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub(super) type Item = HashMap<String, AttributeValue>;

#[derive(Clone, Debug)]
pub struct DynamoStore {
    client: Client,
    table: String,
    /// Each tenant's pack definitions as this instance last read them: they change rarely
    /// (never while a group licenses the pack), and an assignment checks those it used.
    pub(super) definitions: Arc<Mutex<HashMap<TenantId, Arc<Definitions>>>>,
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
            definitions: Arc::default(),
        }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// Runs one transaction ([`transact`]), the request's idempotency record in this table.
    pub(super) async fn transact(
        &self,
        ctx: &WriteCtx,
        items: Vec<TransactWriteItem>,
    ) -> Transacted {
        transact(&self.client, ctx, &self.table, items).await
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

/// The longest one attempt of a transaction may take (the client's attempt timeout).
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);
/// Kept back from the request's deadline to answer after the last attempt.
const ANSWER_TIME: Duration = Duration::from_millis(200);

/// How many attempts a transaction gets when they fail for a passing reason (throttling, no
/// answer, a server error), all with its token and within the request's deadline. More than the
/// SDK's default of 3: a resend of a committed transaction is answered from its token, so each
/// one more is cheap and it is how a lost answer is recovered.
const TRANSIENT_ATTEMPTS: u32 = 6;

/// Runs one planned transaction, the only way this crate writes.
///
/// - The request's `Idempotency-Key` record, if any, is the last action
///   ([`idempotency::Record::action`], in `record_table`); when its condition fails, the key
///   already holds an answer: [`StoreError::Keyed`], whatever else failed.
/// - One `ClientRequestToken` for the plan, kept by every retry here of the unchanged
///   transaction (after a `TransactionConflict`, `TransactionInProgress`, throttling, an I/O
///   error or timeout). DynamoDB answers a resend of a committed transaction with success
///   instead of running it again, so the caller's own write is never answered as a conflict
///   with itself. A re-planned transaction (the caller re-read) calls this again and gets a new
///   token.
/// - Conflicts wait a backoff within the request's deadline ([`retry::Backoff`]), then
///   `Contended`. Throttling, no answer and server errors get [`TRANSIENT_ATTEMPTS`], then are
///   `Unavailable`, whose outcome is `Unknown` once an attempt may have been applied; a request
///   DynamoDB refuses as invalid is a `Defect`.
pub(super) async fn transact(
    client: &Client,
    ctx: &WriteCtx,
    record_table: &str,
    mut items: Vec<TransactWriteItem>,
) -> Transacted {
    let record_index = match &ctx.record {
        Some(record) => {
            items.push(record.action(record_table)?);
            Some(items.len() - 1)
        }
        None => None,
    };
    if items.is_empty() {
        return Ok(Ok(()));
    }
    if items.len() > MAX_TRANSACTION_ITEMS {
        return Err(StoreError::TooManyWrites {
            needed: items.len(),
        });
    }
    let token = retry::request_token();
    let mut backoff = Backoff::new(ctx.deadline);
    // Once an attempt may have been applied, every later failure leaves the outcome unknown.
    let mut maybe_applied = false;
    let mut transient = 0;
    loop {
        // An attempt may take no longer than the request has left, so that a store that does
        // not answer is told as such (with what may have been applied) before the deadline.
        let left = ctx
            .deadline
            .saturating_duration_since(Instant::now())
            .saturating_sub(ANSWER_TIME)
            .min(ATTEMPT_TIMEOUT);
        if left.is_zero() {
            return Err(unknown_if(StoreError::Contended, maybe_applied));
        }
        // The SDK's own retries are off for this call: each attempt's failure is seen here, so
        // the answer can say whether the write may have been applied.
        let attempt = Config::builder()
            .retry_config(RetryConfig::disabled())
            .timeout_config(
                TimeoutConfig::builder()
                    .operation_attempt_timeout(left)
                    .operation_timeout(left)
                    .build(),
            );
        let result = client
            .transact_write_items()
            .set_transact_items(Some(items.clone()))
            .client_request_token(&token)
            .customize()
            .config_override(attempt)
            .send()
            .await;
        let err = match result {
            Ok(_) => return Ok(Ok(())),
            Err(err) => err,
        };
        let reasons = match classify(&err) {
            Attempt::Cancelled(reasons) => reasons,
            Attempt::Defect => return Err(defect(&err)),
            // Our own token is still being applied elsewhere: its outcome is coming.
            Attempt::InProgress => {
                maybe_applied = true;
                backoff.pause().await.map_err(|e| unknown_if(e, true))?;
                continue;
            }
            Attempt::Transient { may_have_applied } => {
                maybe_applied |= may_have_applied;
                transient += 1;
                if transient < TRANSIENT_ATTEMPTS && backoff.pause().await.is_ok() {
                    continue;
                }
                return Err(unavailable(&err, outcome(maybe_applied)));
            }
        };
        let code = |i: usize| reasons.get(i).and_then(|r| r.code());
        if let (Some(i), Some(record)) = (record_index, &ctx.record)
            && code(i) == Some("ConditionalCheckFailed")
        {
            return match reasons[i].item() {
                Some(found) => Err(StoreError::Keyed(record.earlier(found))),
                None => Err(StoreError::Defect(
                    "an idempotency record refused without the record".into(),
                )),
            };
        }
        let failed: Vec<(usize, Option<Item>)> = reasons
            .iter()
            .enumerate()
            .filter(|(_, r)| r.code() == Some("ConditionalCheckFailed"))
            .map(|(index, r)| (index, r.item().cloned()))
            .collect();
        // With the same token, an earlier attempt that committed would have made this one
        // succeed: a condition failing now is the state's answer, not our own write's echo.
        if !failed.is_empty() {
            return Ok(Err(failed));
        }
        if reasons
            .iter()
            .any(|r| r.code() == Some("TransactionConflict"))
        {
            backoff
                .pause()
                .await
                .map_err(|e| unknown_if(e, maybe_applied))?;
            continue;
        }
        if reasons.iter().any(|r| {
            matches!(
                r.code(),
                Some("ThrottlingError" | "ProvisionedThroughputExceeded")
            )
        }) {
            transient += 1;
            if transient < TRANSIENT_ATTEMPTS && backoff.pause().await.is_ok() {
                continue;
            }
            return Err(unavailable(&err, outcome(maybe_applied)));
        }
        // ValidationError, ItemCollectionSizeLimitExceeded, ...: retrying cannot help.
        return Err(defect(&err));
    }
}

fn outcome(maybe_applied: bool) -> Outcome {
    if maybe_applied {
        Outcome::Unknown
    } else {
        Outcome::NotWritten
    }
}

/// What one attempt of a transaction came to, short of success.
enum Attempt {
    /// DynamoDB cancelled it: nothing of it was applied; the reasons say why, per action.
    Cancelled(Vec<CancellationReason>),
    /// Another attempt with the same token is being applied.
    InProgress,
    /// Worth another attempt: throttled (nothing applied), or no answer / a server error
    /// (`may_have_applied`).
    Transient { may_have_applied: bool },
    /// A request DynamoDB refuses as invalid, or one we could not build: retrying cannot help.
    Defect,
}

fn classify(err: &SdkError<TransactWriteItemsError, HttpResponse>) -> Attempt {
    match err {
        SdkError::ServiceError(service) => match service.err() {
            TransactWriteItemsError::TransactionCanceledException(e) => {
                Attempt::Cancelled(e.cancellation_reasons().to_vec())
            }
            TransactWriteItemsError::TransactionInProgressException(_) => Attempt::InProgress,
            TransactWriteItemsError::ThrottlingException(_)
            | TransactWriteItemsError::ProvisionedThroughputExceededException(_)
            | TransactWriteItemsError::RequestLimitExceeded(_) => Attempt::Transient {
                may_have_applied: false,
            },
            TransactWriteItemsError::InternalServerError(_) => Attempt::Transient {
                may_have_applied: true,
            },
            // Any other answer of the server side (503 ServiceUnavailable, 500 InternalFailure,
            // ...): it may have applied. A 4xx (ValidationException, ...) is ours.
            _ if service.raw().status().is_server_error() => Attempt::Transient {
                may_have_applied: true,
            },
            _ => Attempt::Defect,
        },
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            Attempt::Transient {
                may_have_applied: true,
            }
        }
        // ConstructionFailure, ...: a request we could not build.
        _ => Attempt::Defect,
    }
}

/// A request that ran out of time after an attempt that may have been applied does not know
/// its outcome.
fn unknown_if(err: StoreError, maybe_applied: bool) -> StoreError {
    match err {
        StoreError::Contended if maybe_applied => StoreError::Unavailable {
            why: "the write's outcome is unknown and the request ran out of time".into(),
            outcome: Outcome::Unknown,
        },
        other => other,
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

/// A request builder's result; a missing required field is our defect, reported as such
/// rather than a panic.
pub(super) fn built<T, E: std::fmt::Display>(r: Result<T, E>) -> Result<T, StoreError> {
    r.map_err(|e| StoreError::Defect(e.to_string()))
}

pub(super) fn number(n: u32) -> AttributeValue {
    AttributeValue::N(n.to_string())
}

/// Every item of the partition `pk` whose sort key starts with `prefix` (one strongly
/// consistent `Query`, paged); an empty prefix reads the whole partition.
pub(super) async fn query_all(
    client: &Client,
    table: &str,
    pk: &str,
    prefix: &str,
) -> Result<Vec<Item>, StoreError> {
    let mut items = Vec::new();
    let mut start: Option<Item> = None;
    loop {
        let mut query = client
            .query()
            .table_name(table)
            .expression_attribute_values(":pk", AttributeValue::S(pk.to_owned()));
        query = if prefix.is_empty() {
            query.key_condition_expression("PK = :pk")
        } else {
            query
                .key_condition_expression("PK = :pk AND begins_with(SK, :prefix)")
                .expression_attribute_values(":prefix", AttributeValue::S(prefix.to_owned()))
        };
        let page = query
            .consistent_read(true)
            .set_exclusive_start_key(start.take())
            .send()
            .await
            .map_err(read_failure)?;
        items.extend(page.items.unwrap_or_default());
        match page.last_evaluated_key {
            Some(key) if !key.is_empty() => start = Some(key),
            _ => return Ok(items),
        }
    }
}

/// A string attribute of an item.
pub(super) fn read_str<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    match item.get(name) {
        Some(AttributeValue::S(s)) => Some(s),
        _ => None,
    }
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

/// A storage failure whose outcome is `outcome`: logged, and a 503 for the caller.
pub(super) fn unavailable<E, R>(err: &SdkError<E, R>, outcome: Outcome) -> StoreError
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let message = DisplayErrorContext(err).to_string();
    tracing::error!(error = %message, ?outcome, "dynamodb request failed");
    StoreError::Unavailable {
        why: message,
        outcome,
    }
}

/// A request DynamoDB refuses as invalid (or any failure retrying cannot fix): our defect.
pub(super) fn defect<E, R>(err: &SdkError<E, R>) -> StoreError
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug,
{
    StoreError::Defect(DisplayErrorContext(err).to_string())
}

/// The failure of a read (or of a single write refused before it applied anything): throttling,
/// server errors, timeouts and I/O are `Unavailable` (nothing written); anything else, a
/// `ValidationException` say, a `Defect`.
pub(super) fn read_failure<E, R>(err: SdkError<E, R>) -> StoreError
where
    E: std::error::Error + ProvideErrorMetadata + 'static,
    R: std::fmt::Debug,
{
    let transient = match &err {
        SdkError::ServiceError(service) => matches!(
            service.err().code(),
            Some(
                "ThrottlingException"
                    | "ProvisionedThroughputExceededException"
                    | "RequestLimitExceeded"
                    | "InternalServerError"
                    | "ServiceUnavailable"
            )
        ),
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        _ => false,
    };
    if transient {
        unavailable(&err, Outcome::NotWritten)
    } else {
        defect(&err)
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
