//! Contention in one place: how long a request may keep retrying, and how long it waits between
//! attempts.
//!
//! In AWS two transactions touching one item at once cancel one with `TransactionConflict`, and
//! a read-then-write finds what it read changed; hot items (a popular service's license, a
//! tenant's pool record) see both on every burst. Every such retry waits a full-jitter
//! exponential backoff (AWS Architecture Blog, "Exponential Backoff And Jitter") so racing
//! requests spread out instead of colliding again in lockstep, and stops while the request still
//! has time to answer: then the caller gets a 409 `CONCURRENT_UPDATE`, which is safe to retry.
//!
//! The request's deadline reaches the store in each write's [`super::WriteCtx`].

use crate::store::{Outcome, StoreError};
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use std::time::{Duration, Instant};

/// First backoff ceiling; each retry doubles it up to [`CAP`].
const BASE: Duration = Duration::from_millis(8);
const CAP: Duration = Duration::from_millis(500);
/// Kept back from the deadline for the last attempt and the answer.
const RESERVE: Duration = Duration::from_millis(500);

/// The waits of one operation's retries.
pub(crate) struct Backoff {
    attempt: u32,
    until: Instant,
}

impl Backoff {
    pub(crate) fn new(deadline: Instant) -> Self {
        Backoff {
            attempt: 0,
            until: deadline.checked_sub(RESERVE).unwrap_or(deadline),
        }
    }

    /// Waits before the next attempt, or says the request has no time left for one.
    pub(crate) async fn pause(&mut self) -> Result<(), StoreError> {
        let ceiling = BASE.saturating_mul(1 << self.attempt.min(8)).min(CAP);
        let wait = ceiling.mul_f64(fastrand::f64());
        if Instant::now() + wait >= self.until {
            return Err(StoreError::Contended);
        }
        self.attempt += 1;
        tokio::time::sleep(wait).await;
        Ok(())
    }
}

/// A fresh `ClientRequestToken` for one planned transaction: the SDK resends it with every retry
/// of an attempt (after a lost response, an I/O error or a 2 s attempt timeout), and so do our
/// own retries of the unchanged transaction while an earlier attempt may have been applied;
/// DynamoDB answers a resend of a committed transaction with success instead of running it
/// again.
pub(crate) fn request_token() -> String {
    format!("{:032x}", fastrand::u128(..))
}

/// The token for the next attempt after one DynamoDB cancelled (a conflict, throttling):
/// `token` again while an earlier attempt may have been applied (its outcome must answer the
/// resend), else a fresh one, so that a retry never depends on what DynamoDB does with a
/// cancelled transaction's token. (DynamoDB Local 3.3 runs it again; AWS does not document
/// it, and were it to answer the cancellation again, every retry of a conflict would fail.)
pub(crate) fn next_token(token: String, maybe_applied: bool) -> String {
    if maybe_applied {
        token
    } else {
        request_token()
    }
}

/// A storage failure whose outcome is `outcome`: logged, and a 503 for the caller.
pub(crate) fn unavailable<E, R>(err: &SdkError<E, R>, outcome: Outcome) -> StoreError
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
pub(crate) fn defect<E, R>(err: &SdkError<E, R>) -> StoreError
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug,
{
    StoreError::Defect(DisplayErrorContext(err).to_string())
}

/// The failure of a read (or of a single write refused before it applied anything): throttling,
/// server errors, timeouts and I/O are `Unavailable` (nothing written); anything else, a
/// `ValidationException` say, a `Defect`.
pub(crate) fn read_failure<E, R>(err: SdkError<E, R>) -> StoreError
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn backoff_gives_up_before_the_deadline() {
        let deadline = Instant::now() + RESERVE + Duration::from_millis(300);
        let started = Instant::now();
        let outcome = async {
            let mut backoff = Backoff::new(deadline);
            loop {
                if let Err(e) = backoff.pause().await {
                    return e;
                }
            }
        }
        .await;
        assert!(matches!(outcome, StoreError::Contended));
        // It stopped within the time it had, keeping the reserve for the answer: at most the
        // 300 ms it had, plus what its timers overshot on a loaded machine (a few ms per sleep,
        // measured up to tens under `make test`), far from the 500 ms reserve.
        let spent = started.elapsed();
        assert!(
            spent < Duration::from_millis(300) + RESERVE / 5,
            "{spent:?}"
        );
    }

    #[test]
    fn tokens_are_distinct_and_short_enough() {
        let (a, b) = (request_token(), request_token());
        assert_ne!(a, b);
        assert_eq!(a.len(), 32); // DynamoDB allows 1-36 characters
    }

    #[test]
    fn a_token_is_kept_only_while_an_attempt_may_have_been_applied() {
        let token = request_token();
        assert_eq!(next_token(token.clone(), true), token);
        let next = next_token(token.clone(), false);
        assert_ne!(next, token);
        assert_eq!(next.len(), 32);
    }
}
