//! One transaction plan, the only way the store writes: each action pushed with what a failure
//! of its condition means ([`Plan`]), run as one `TransactWriteItems` ([`transact`]: the token,
//! the retries, the idempotency record), its cancellation read back as those meanings
//! ([`Ran`]); and the pacing of the read → plan → write loop of the writes that read
//! first ([`Rereads`]).

use super::audit;
use super::item::Item;
use super::retry::{self, Backoff, defect, unavailable};
use crate::store::audit::Change;
use crate::store::meter;
use crate::store::{Outcome, StoreError, WriteCtx};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::Config;
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{CancellationReason, TransactWriteItem};
use std::time::{Duration, Instant};

/// A transaction's outcome: `Ok(Err(failed))` lists the actions whose condition failed, each
/// with the item as it was (actions ask for `ALL_OLD` on failure), so callers can say why.
type Transacted = Result<Result<(), Vec<(usize, Option<Item>)>>, StoreError>;

/// A transaction under construction: each action with what a failure of its condition means
/// (`M`, the writer's own vocabulary), so a cancellation is read back as meanings, not indices.
pub(crate) struct Plan<M> {
    actions: Vec<TransactWriteItem>,
    meanings: Vec<M>,
    /// What the plan changes, for the request's audit record.
    changes: Vec<Change>,
}

impl<M> Plan<M> {
    pub(crate) fn new() -> Self {
        Self {
            actions: Vec::new(),
            meanings: Vec::new(),
            changes: Vec::new(),
        }
    }

    /// Notes one item the plan changes, for the audit record.
    pub(crate) fn changed(&mut self, change: Change) {
        self.changes.push(change);
    }

    pub(crate) fn push(&mut self, action: TransactWriteItem, meaning: M) {
        self.actions.push(action);
        self.meanings.push(meaning);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.actions.is_empty()
    }

    /// Runs the plan as one transaction ([`transact`]): with the request's audit record when
    /// the plan changes anything, and its idempotency record even when the plan is empty, both
    /// in `record_table`.
    pub(crate) async fn run(
        self,
        client: &Client,
        ctx: &WriteCtx,
        record_table: &str,
    ) -> Result<Ran<M>, StoreError> {
        let Plan {
            mut actions,
            meanings,
            changes,
        } = self;
        // Past the meanings: it has no condition, so it never fails as an action of the plan.
        if let Some(actor) = &ctx.actor
            && !changes.is_empty()
        {
            actions.push(audit::action(record_table, actor, &changes)?);
        }
        match transact(client, ctx, record_table, actions).await? {
            Ok(()) => Ok(Ran::Committed),
            Err(failed) => {
                let mut meanings: Vec<Option<M>> = meanings.into_iter().map(Some).collect();
                Ok(Ran::Refused(
                    failed
                        .into_iter()
                        .filter_map(|(i, old)| Some((meanings.get_mut(i)?.take()?, old)))
                        .collect(),
                ))
            }
        }
    }
}

/// What a plan's transaction came to.
pub(crate) enum Ran<M> {
    Committed,
    /// Nothing was written: the meanings of the actions whose condition failed, each with the
    /// item as it was when the action asked for it (`ALL_OLD` on failure), in plan order.
    Refused(Vec<(M, Option<Item>)>),
}

/// What one read → plan → write attempt came to.
pub(crate) enum Step<T> {
    Done(T),
    /// What was read changed before the write committed: read again, after a backoff.
    Stale,
    /// Plan again at once: the attempt was made on assumptions (nothing held, cached reads),
    /// and the next one reads.
    Replan,
}

/// The pacing of every write that reads before it writes: after each attempt,
/// [`Rereads::after`] says whether it is done, and backs off after a stale read within the
/// request's deadline (then `Contended`).
pub(crate) struct Rereads {
    backoff: Backoff,
}

impl Rereads {
    pub(crate) fn new(deadline: Instant) -> Self {
        Self {
            backoff: Backoff::new(deadline),
        }
    }

    /// `Some` with the result when the attempt is done; `None` when the caller reads again.
    pub(crate) async fn after<T>(&mut self, step: Step<T>) -> Result<Option<T>, StoreError> {
        match step {
            Step::Done(done) => Ok(Some(done)),
            Step::Stale => {
                self.stale().await?;
                Ok(None)
            }
            Step::Replan => {
                meter::retry();
                Ok(None)
            }
        }
    }

    /// What was read went stale: wait before reading again (`Contended` past the deadline).
    pub(crate) async fn stale(&mut self) -> Result<(), StoreError> {
        meter::conflict();
        self.backoff.pause().await
    }
}

/// The longest one attempt of a transaction may take (the client's attempt timeout).
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);
/// Kept back from the request's deadline to answer after the last attempt.
const ANSWER_TIME: Duration = Duration::from_millis(200);

/// How many attempts a transaction gets when they fail for a passing reason (throttling, no
/// answer, a server error), within the request's deadline. More than the
/// SDK's default of 3: a resend of a committed transaction is answered from its token, so each
/// one more is cheap and it is how a lost answer is recovered.
const TRANSIENT_ATTEMPTS: u32 = 6;

/// Runs one planned transaction, the only way this crate writes.
///
/// - The request's `Idempotency-Key` record, if any, is the last action
///   ([`idempotency::Record::action`], in `record_table`); when its condition fails, the key
///   already holds an answer: [`StoreError::Keyed`], whatever else failed.
/// - A `ClientRequestToken` for the plan, kept by every retry here of the unchanged
///   transaction once an attempt may have been applied (`TransactionInProgress`, an I/O error
///   or timeout, a server error): DynamoDB answers a resend of a committed transaction with
///   success instead of running it again, so the caller's own write is never answered as a
///   conflict with itself. Until then, an attempt DynamoDB cancelled (a `TransactionConflict`,
///   throttling) is retried with a fresh token ([`retry::next_token`]). A re-planned
///   transaction (the caller re-read) calls this again and gets a new token.
/// - Conflicts wait a backoff within the request's deadline ([`retry::Backoff`]), then
///   `Contended`. Throttling, no answer and server errors get [`TRANSIENT_ATTEMPTS`], then are
///   `Unavailable`, whose outcome is `Unknown` once an attempt may have been applied; a request
///   DynamoDB refuses as invalid is a `Defect`.
async fn transact(
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
            fit: None,
        });
    }
    let mut token = retry::request_token();
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
                meter::retry();
                maybe_applied = true;
                backoff.pause().await.map_err(|e| unknown_if(e, true))?;
                continue;
            }
            Attempt::Transient { may_have_applied } => {
                maybe_applied |= may_have_applied;
                transient += 1;
                if transient < TRANSIENT_ATTEMPTS && backoff.pause().await.is_ok() {
                    meter::retry();
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
        // An earlier attempt that may have committed shares this one's token, so it would have
        // made this one succeed: a condition failing now is the state's answer, not our own
        // write's echo.
        if !failed.is_empty() {
            return Ok(Err(failed));
        }
        if reasons
            .iter()
            .any(|r| r.code() == Some("TransactionConflict"))
        {
            meter::conflict();
            backoff
                .pause()
                .await
                .map_err(|e| unknown_if(e, maybe_applied))?;
            token = retry::next_token(token, maybe_applied);
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
                meter::retry();
                token = retry::next_token(token, maybe_applied);
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
