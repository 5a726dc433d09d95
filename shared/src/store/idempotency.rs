//! Idempotency records: what makes a retried write with an `Idempotency-Key` safe.
//!
//! One item per caller scope and key (`PK = IDEM#<scope>#<key>`, `SK = IDEM`) in the function's
//! own table, moving `IN_PROGRESS` → `COMMITTED` → `COMPLETED`:
//! - [`claim`] puts it `IN_PROGRESS` with the request's fingerprint, an owner token and a lease
//!   (the request's deadline), unless a live record exists; then the old record says what to
//!   answer (its answer, 422 for another request, 409 while it runs).
//! - Every transaction the request then runs carries [`Claim::action`]: `SET status = COMMITTED`
//!   under `owner = :me`. So the write and the mark are one atomic step: a request whose lease
//!   ran out and was taken over can no longer commit, and a record is `COMMITTED` exactly when
//!   its write was applied. A crash or timeout between steps never runs the write twice.
//! - [`complete`] stores the answer; [`release`] deletes a claim whose request wrote nothing and
//!   answered something worth retrying (a 503, a 409 `CONCURRENT_UPDATE`).
//!
//! Records live 24 h: `expires` is the table's TTL attribute, and since TTL deletion lags by up
//! to days, [`claim`] treats an expired record as absent.

use super::StoreError;
use super::dynamo::{Item, built, unavailable};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};
use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long an answer is kept for its key.
pub const RETENTION: Duration = Duration::from_secs(24 * 60 * 60);
/// Kept beyond the request's deadline before a claim counts as abandoned: a Lambda function's
/// timeout is a little longer than the request deadline.
const LEASE_MARGIN: Duration = Duration::from_secs(3);

const SK: &str = "IDEM";
const IN_PROGRESS: &str = "IN_PROGRESS";
const COMMITTED: &str = "COMMITTED";
const COMPLETED: &str = "COMPLETED";

tokio::task_local! {
    static CLAIM: Claim;
}

/// A request's hold on its key, carried into every transaction it runs.
#[derive(Clone, Debug)]
pub struct Claim {
    table: String,
    pk: String,
    owner: String,
}

/// The answer kept for a key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub body: String,
    pub etag: Option<String>,
}

/// What [`claim`] found.
#[derive(Debug)]
pub enum Claimed {
    /// The key is this request's: run it.
    Mine(Claim),
    /// The key's first request finished with this answer.
    Replay(Answer),
    /// The key was used for another request (method, path or body differ).
    Reused,
    /// The key's first request still runs (or stopped after its write was applied and before
    /// its answer was kept: `applied`).
    InProgress { applied: bool },
}

impl Claim {
    /// The update a transaction carries: it commits only while this request owns the key, and
    /// marks the key's write as applied.
    pub(super) fn action(&self) -> Result<TransactWriteItem, StoreError> {
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(&self.pk)))
            .update_expression("SET #st = :committed")
            .condition_expression("#owner = :me")
            .expression_attribute_names("#st", "status")
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_values(":committed", s(COMMITTED))
            .expression_attribute_values(":me", s(&self.owner));
        Ok(TransactWriteItem::builder()
            .update(built(update.build())?)
            .build())
    }
}

/// The claim of the request running now, if it has one.
pub(super) fn current() -> Option<Claim> {
    CLAIM.try_with(Claim::clone).ok()
}

/// Runs `work` as the holder of `claim`.
pub async fn holding<F: std::future::Future>(claim: Claim, work: F) -> F::Output {
    CLAIM.scope(claim, work).await
}

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_owned())
}

fn n(v: u128) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn key(pk: &str) -> Item {
    HashMap::from([("PK".to_owned(), s(pk)), ("SK".to_owned(), s(SK))])
}

fn since_epoch() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// The record's partition key. The scope is escaped like ids in keys; the key comes last.
fn record_pk(scope: &str, key: &str) -> String {
    let mut pk = String::with_capacity(6 + scope.len() + key.len());
    pk.push_str("IDEM#");
    for c in scope.chars() {
        match c {
            '%' => pk.push_str("%25"),
            '#' => pk.push_str("%23"),
            c => pk.push(c),
        }
    }
    pk.push('#');
    pk.push_str(key);
    pk
}

fn text<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Some(v),
        _ => None,
    }
}

fn number(item: &Item, name: &str) -> Option<u128> {
    match item.get(name) {
        Some(AttributeValue::N(v)) => v.parse().ok(),
        _ => None,
    }
}

/// Claims `key` in `scope` for the request whose fingerprint is `fingerprint` and which must
/// answer by `deadline`. One conditional put; on refusal the old record (returned by the same
/// call) decides.
pub async fn claim(
    client: &Client,
    table: &str,
    scope: &str,
    key: &str,
    fingerprint: &str,
    deadline: Instant,
) -> Result<Claimed, StoreError> {
    let now = since_epoch();
    let lease = now + deadline.saturating_duration_since(Instant::now()) + LEASE_MARGIN;
    let pk = record_pk(scope, key);
    let owner = super::retry::request_token();
    let mut item = self::key(&pk);
    item.insert("status".into(), s(IN_PROGRESS));
    item.insert("fingerprint".into(), s(fingerprint));
    item.insert("owner".into(), s(&owner));
    item.insert("lease".into(), n(lease.as_millis()));
    item.insert("expires".into(), n((now + RETENTION).as_secs().into()));
    let result = client
        .put_item()
        .table_name(table)
        .set_item(Some(item))
        // Free, expired, or abandoned by the same request before it wrote anything.
        .condition_expression(
            "attribute_not_exists(PK) OR expires < :now_s \
             OR (#st = :in_progress AND lease < :now_ms AND fingerprint = :fp)",
        )
        .expression_attribute_names("#st", "status")
        .expression_attribute_values(":now_s", n(now.as_secs().into()))
        .expression_attribute_values(":now_ms", n(now.as_millis()))
        .expression_attribute_values(":in_progress", s(IN_PROGRESS))
        .expression_attribute_values(":fp", s(fingerprint))
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
        .send()
        .await;
    let old = match result {
        Ok(_) => {
            return Ok(Claimed::Mine(Claim {
                table: table.to_owned(),
                pk,
                owner,
            }));
        }
        Err(err) => match err.as_service_error() {
            Some(PutItemError::ConditionalCheckFailedException(e)) => {
                e.item().cloned().unwrap_or_default()
            }
            // The first request's transaction, carrying the claim, is committing right now.
            Some(PutItemError::TransactionConflictException(_)) => {
                return Ok(Claimed::InProgress { applied: false });
            }
            _ => return Err(unavailable(err)),
        },
    };
    if text(&old, "fingerprint") != Some(fingerprint) {
        return Ok(Claimed::Reused);
    }
    Ok(match text(&old, "status") {
        Some(COMPLETED) => Claimed::Replay(Answer {
            status: number(&old, "answer_status")
                .and_then(|v| u16::try_from(v).ok())
                .unwrap_or(500),
            body: text(&old, "answer_body").unwrap_or_default().to_owned(),
            etag: text(&old, "answer_etag").map(str::to_owned),
        }),
        Some(COMMITTED) => Claimed::InProgress { applied: true },
        _ => Claimed::InProgress { applied: false },
    })
}

/// Keeps `answer` for the claim's key. Refused (and logged) if the claim was lost meanwhile.
pub async fn complete(client: &Client, claim: &Claim, answer: &Answer) -> Result<(), StoreError> {
    let mut update = client
        .update_item()
        .table_name(&claim.table)
        .set_key(Some(key(&claim.pk)))
        .condition_expression("#owner = :me")
        .expression_attribute_names("#st", "status")
        .expression_attribute_names("#owner", "owner")
        .expression_attribute_values(":me", s(&claim.owner))
        .expression_attribute_values(":completed", s(COMPLETED))
        .expression_attribute_values(":status", n(answer.status.into()))
        .expression_attribute_values(":body", s(&answer.body));
    let mut set = "SET #st = :completed, answer_status = :status, answer_body = :body".to_owned();
    if let Some(etag) = &answer.etag {
        set.push_str(", answer_etag = :etag");
        update = update.expression_attribute_values(":etag", s(etag));
    }
    update
        .update_expression(set)
        .send()
        .await
        .map_err(unavailable)?;
    Ok(())
}

/// Gives the key back when the request wrote nothing: a later retry runs afresh. A claim whose
/// write was applied (`COMMITTED`) is kept, so the write never runs twice.
pub async fn release(client: &Client, claim: &Claim) -> Result<(), StoreError> {
    let result = client
        .delete_item()
        .table_name(&claim.table)
        .set_key(Some(key(&claim.pk)))
        .condition_expression("#owner = :me AND #st = :in_progress")
        .expression_attribute_names("#st", "status")
        .expression_attribute_names("#owner", "owner")
        .expression_attribute_values(":me", s(&claim.owner))
        .expression_attribute_values(":in_progress", s(IN_PROGRESS))
        .send()
        .await;
    match result {
        Ok(_) => Ok(()),
        // Applied (kept on purpose) or taken over: either way not ours to delete.
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
        {
            Ok(())
        }
        Err(e) => Err(unavailable(e)),
    }
}

/// The idempotency records of one table, as the HTTP layer uses them.
#[derive(Clone, Debug)]
pub struct Records {
    client: Client,
    table: String,
}

impl Records {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Records {
            client,
            table: table.into(),
        }
    }

    pub async fn claim(
        &self,
        scope: &str,
        key: &str,
        fingerprint: &str,
        deadline: Instant,
    ) -> Result<Claimed, StoreError> {
        claim(&self.client, &self.table, scope, key, fingerprint, deadline).await
    }

    pub async fn complete(&self, claim: &Claim, answer: &Answer) -> Result<(), StoreError> {
        complete(&self.client, claim, answer).await
    }

    pub async fn release(&self, claim: &Claim) -> Result<(), StoreError> {
        release(&self.client, claim).await
    }
}

/// A store that keeps idempotency records in its table.
pub trait KeepsRecords {
    fn idempotency_records(&self) -> Records;
}
