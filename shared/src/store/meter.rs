//! What the store did for one request, for its log line and metrics: DynamoDB round trips
//! (every attempt of every call, counted by an SDK interceptor on the store's clients),
//! retries (a transaction sent again, a write read and planned again), and of those the
//! conflicts (after a `TransactionConflict`, or a read gone stale before its write).
//!
//! The counts live in a task-local [`Meter`] that the front opens around each request
//! ([`measure`]); the store's work runs in the request's task (its concurrent reads are joined,
//! not spawned), so nothing is passed through the store's signatures, and work outside a
//! request (tools, tests) counts nowhere.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

/// A request's counts.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub round_trips: u32,
    pub retries: u32,
    pub conflicts: u32,
}

#[derive(Debug, Default)]
struct Meter {
    round_trips: AtomicU32,
    retries: AtomicU32,
    conflicts: AtomicU32,
}

tokio::task_local! {
    static METER: Arc<Meter>;
}

/// Runs `request`, counting what the store does for it.
pub async fn measure<F: Future>(request: F) -> (F::Output, Counts) {
    let meter = Arc::new(Meter::default());
    let output = METER.scope(meter.clone(), request).await;
    let counts = Counts {
        round_trips: meter.round_trips.load(Ordering::Relaxed),
        retries: meter.retries.load(Ordering::Relaxed),
        conflicts: meter.conflicts.load(Ordering::Relaxed),
    };
    (output, counts)
}

fn count(field: fn(&Meter) -> &AtomicU32) {
    // Outside a request there is nothing to count into.
    let _ = METER.try_with(|m| field(m).fetch_add(1, Ordering::Relaxed));
}

/// The store tries again (a transaction resent, a write read again).
pub(crate) fn retry() {
    count(|m| &m.retries);
}

/// The store tries again because another writer got there first.
pub(crate) fn conflict() {
    count(|m| &m.retries);
    count(|m| &m.conflicts);
}

/// Counts every attempt of every DynamoDB call as one round trip.
#[derive(Debug)]
struct CountRoundTrips;

impl Intercept for CountRoundTrips {
    fn name(&self) -> &'static str {
        "CountRoundTrips"
    }

    fn read_before_attempt(
        &self,
        _: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        count(|m| &m.round_trips);
        Ok(())
    }
}

/// `client` with its round trips counted (once per store, at cold start; the HTTP client and
/// its connections are shared).
pub(crate) fn metered(client: Client) -> Client {
    Client::from_conf(
        client
            .config()
            .to_builder()
            .interceptor(CountRoundTrips)
            .build(),
    )
}
