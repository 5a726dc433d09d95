//! Idempotency records: what makes a retried write with an `Idempotency-Key` safe.
//!
//! One item per caller scope and key (`PK = IDEM#<scope>#<key>`, `SK = IDEM`) in the function's
//! own table, holding the request's fingerprint and its answer. A write's success answer is known
//! before it commits, so the record is simply one more action of the write's own transaction
//! ([`Record::action`]): a `Put` under "no live record of this key". Hence:
//! - the write and its record commit together or not at all: never a change without its answer,
//!   nor an answer without its change, and no completion write afterwards;
//! - a repeat of the request fails that condition (or conflicts and is retried until it does),
//!   and the record it gets back says what to answer ([`Earlier`]): the same answer again, or
//!   422 when the key was used for another request;
//! - a refused request (a 4xx) commits nothing, so a retry with the same key runs afresh.
//!
//! Records live 24 h: `expires` is the table's TTL attribute, and since TTL deletion lags by up
//! to days, an expired record counts as absent (the condition says so).

use super::item::{Item, built, key, number, read_number, read_str, s};
use super::retry::read_failure;
use crate::store::StoreError;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How long an answer is kept for its key.
pub const RETENTION: Duration = Duration::from_secs(24 * 60 * 60);

const SK: &str = super::keys::IDEMPOTENCY_SK;

/// The answer kept for a key: status and body (JSON, or empty for a 204).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub body: String,
}

/// What an earlier request left under the key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Earlier {
    /// The same request (same fingerprint): its answer, to give again.
    Replay(Answer),
    /// Another request used the key.
    Reused,
}

/// The record a keyed write puts in its transaction.
#[derive(Clone, Debug)]
pub struct Record {
    pk: String,
    fingerprint: String,
    answer: Answer,
}

impl Record {
    /// The record of `key` in the caller's `scope` for a request with `fingerprint` whose
    /// success answer is `answer`.
    pub fn new(scope: &str, key: &str, fingerprint: &str, answer: Answer) -> Self {
        Record {
            pk: record_pk(scope, key),
            fingerprint: fingerprint.to_owned(),
            answer,
        }
    }

    /// The same record with another success body (same status): the answer of the plan that
    /// will carry it.
    pub fn answering(&self, body: String) -> Record {
        Record {
            pk: self.pk.clone(),
            fingerprint: self.fingerprint.clone(),
            answer: Answer {
                status: self.answer.status,
                body,
            },
        }
    }

    /// The `Put` a transaction carries: the record with its answer, only where no live record
    /// of the key exists. On failure DynamoDB returns the record found, which [`Record::earlier`]
    /// reads.
    pub(super) fn action(&self, table: &str) -> Result<TransactWriteItem, StoreError> {
        let now = since_epoch().as_secs();
        let mut item = record_key(&self.pk);
        item.insert("fingerprint".into(), s(&self.fingerprint));
        item.insert("answer_status".into(), number(self.answer.status));
        item.insert("answer_body".into(), s(&self.answer.body));
        item.insert("expires".into(), number(now + RETENTION.as_secs()));
        let put = Put::builder()
            .table_name(table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(PK) OR expires < :now")
            .expression_attribute_values(":now", number(now))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        Ok(TransactWriteItem::builder()
            .put(built(put.build())?)
            .build())
    }

    /// What the record found under the key (returned by a failed [`Record::action`]) means for
    /// this request.
    pub(super) fn earlier(&self, found: &Item) -> Earlier {
        earlier(found, &self.fingerprint)
    }
}

fn earlier(found: &Item, fingerprint: &str) -> Earlier {
    if read_str(found, "fingerprint") != Some(fingerprint) {
        return Earlier::Reused;
    }
    Earlier::Replay(Answer {
        status: read_u64(found, "answer_status")
            .and_then(|v| u16::try_from(v).ok())
            .unwrap_or(500),
        body: read_str(found, "answer_body")
            .unwrap_or_default()
            .to_owned(),
    })
}

fn record_key(pk: &str) -> Item {
    key(pk, SK.to_owned())
}

fn since_epoch() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// The record's partition key. The scope is escaped like ids in keys; the key comes last.
fn record_pk(scope: &str, key: &str) -> String {
    super::keys::idempotency_pk(scope, key)
}

fn read_u64(item: &Item, name: &str) -> Option<u64> {
    read_number(item, name)
}

/// The idempotency records of one table, as the HTTP layer reads them: after a refusal, to
/// tell whether the key already holds an answer (a retry of a write that succeeded, refused
/// now because its effect is there).
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

    /// The live record of `key` in `scope`, read against `fingerprint` (one `GetItem`).
    pub async fn earlier(
        &self,
        scope: &str,
        key: &str,
        fingerprint: &str,
    ) -> Result<Option<Earlier>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(record_key(&record_pk(scope, key))))
            .consistent_read(true)
            .send()
            .await
            .map_err(read_failure)?;
        let Some(found) = out.item() else {
            return Ok(None);
        };
        let live = read_u64(found, "expires").is_some_and(|e| e >= since_epoch().as_secs());
        Ok(live.then(|| earlier(found, fingerprint)))
    }
}

/// A store that keeps idempotency records in its table.
pub trait KeepsRecords {
    fn idempotency_records(&self) -> Records;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_found_replays_only_for_the_same_fingerprint() {
        let record = Record::new(
            "tenant:acme",
            "k1",
            "f1",
            Answer {
                status: 201,
                body: "{}".into(),
            },
        );
        let mut found = record_key(&record.pk);
        found.insert("fingerprint".into(), s("f1"));
        found.insert("answer_status".into(), number(201));
        found.insert("answer_body".into(), s("{}"));
        assert_eq!(
            record.earlier(&found),
            Earlier::Replay(record.answer.clone())
        );
        found.insert("fingerprint".into(), s("f2"));
        assert_eq!(record.earlier(&found), Earlier::Reused);
    }

    #[test]
    fn scopes_cannot_run_into_keys() {
        assert_eq!(record_pk("group:a/b", "k"), "IDEM#group:a/b#k");
        assert_ne!(record_pk("a#b", "c"), record_pk("a", "b#c"));
    }
}
