//! A DynamoDB fault proxy: forwards the DynamoDB JSON protocol to DynamoDB Local and, driven by
//! a seed and per-test [`Faults`], does what AWS does and the emulator does not
//! (`../shared/DESIGN.md`, "DynamoDB"):
//!
//! - `TransactionConflict`: a `TransactWriteItems` whose items overlap a transaction still in
//!   flight is cancelled with per-item `CancellationReasons` (`TransactionConflict` on the
//!   overlapping items, `None` on the others); a single write (`PutItem`, `UpdateItem`,
//!   `DeleteItem`) on such an item gets `TransactionConflictException`. A transaction holds its
//!   items for [`Faults::hold`] before it is forwarded: that is the window.
//! - `ThrottlingException` on a share of all calls, added latency, connection resets, chosen
//!   reads made slow.
//! - Lost responses: a share of committed transactions whose answer never arrives (the
//!   connection closes), so the SDK resends them with the same `ClientRequestToken`.
//! - [`FaultProxy::stop`] / [`FaultProxy::start_again`]: DynamoDB gone (connections refused) and
//!   back, on the same port.
//!
//! `ClientRequestToken` semantics themselves come from DynamoDB Local 3.3, which implements them
//! (measured: the same token answers the first outcome; the same token with other items is
//! `IdempotentParameterMismatchException`), so the proxy passes tokens through.
//!
//! [`Injected`] counts what the proxy did, so a test can show the faults really happened.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// What the proxy does to the traffic; everything off by default.
#[derive(Clone, Debug, Default)]
pub struct Faults {
    pub seed: u64,
    /// Cancel transactions (and single writes) that touch an item of one in flight.
    pub conflicts: bool,
    /// How long each transaction waits before it is forwarded (the conflict window).
    pub hold: Duration,
    /// Share of calls answered `ThrottlingException` without reaching DynamoDB.
    pub throttle: f64,
    /// Added to every call.
    pub latency: Duration,
    /// Share of calls whose connection is reset before they reach DynamoDB.
    pub reset: f64,
    /// Share of transactions that commit but whose response is lost.
    pub lose: f64,
    /// Remove `ClientRequestToken` from transactions (a control: what a resend does without).
    pub strip_tokens: bool,
    /// Share of transactions answered `ValidationException` (a request DynamoDB refuses as
    /// invalid: our defect, which no retry fixes).
    pub invalid: f64,
    /// Share of transactions answered HTTP 503 `ServiceUnavailable`.
    pub unavailable: f64,
    /// A transaction resent with a `ClientRequestToken` seen before is throttled: a lost answer
    /// whose resends cannot get through.
    pub throttle_resends: bool,
    /// A read (`Query`, `GetItem`) whose request holds this text waits this long before it is
    /// forwarded: one read of a request's several made late, for what changes meanwhile.
    pub slow_reads: Option<(&'static str, Duration)>,
}

/// How often each fault was injected.
#[derive(Debug, Default)]
pub struct Injected {
    pub calls: AtomicU64,
    pub transactions: AtomicU64,
    pub conflicts: AtomicU64,
    pub single_write_conflicts: AtomicU64,
    pub throttled: AtomicU64,
    pub resets: AtomicU64,
    pub lost: AtomicU64,
    pub invalid: AtomicU64,
    pub unavailable: AtomicU64,
    pub slowed: AtomicU64,
    /// Transactions that reached DynamoDB, and the time they took there (µs).
    pub forwarded: AtomicU64,
    pub forward_micros: AtomicU64,
}

impl Injected {
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// A transaction's claim on its items in the conflict model, released when dropped.
struct InFlight<'a> {
    state: &'a State,
    items: Vec<ItemKey>,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if self.items.is_empty() {
            return;
        }
        let mut in_flight = match self.state.in_flight.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        for key in &self.items {
            if let Some(n) = in_flight.get_mut(key) {
                *n -= 1;
                if *n == 0 {
                    in_flight.remove(key);
                }
            }
        }
    }
}

/// Calls forwarded to DynamoDB Local at once.
const UPSTREAM_SLOTS: usize = 4;

/// An item as the conflict model sees it: table and key, as JSON text.
type ItemKey = (String, String, String);

struct State {
    upstream: String,
    faults: Faults,
    http: reqwest::Client,
    rng: Mutex<fastrand::Rng>,
    in_flight: Mutex<HashMap<ItemKey, u32>>,
    /// `ClientRequestToken`s of the transactions forwarded so far.
    tokens: Mutex<std::collections::HashSet<String>>,
    /// DynamoDB Local slows down sharply with many concurrent requests (its transactions run
    /// one at a time); DynamoDB does not. Calls queue here before they count as in flight.
    upstream_slots: tokio::sync::Semaphore,
    injected: Arc<Injected>,
}

pub struct FaultProxy {
    addr: SocketAddr,
    state: Arc<State>,
    stop: Mutex<Option<watch::Sender<bool>>>,
}

/// Why a call gets no answer: hyper closes the connection.
#[derive(Debug)]
struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by the fault proxy")
    }
}

impl std::error::Error for Dropped {}

type Answer = Result<Response<Full<Bytes>>, Dropped>;

impl FaultProxy {
    /// A proxy on a free port in front of `upstream` (DynamoDB Local's URL).
    pub async fn start(upstream: &str, faults: Faults) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a free port for the fault proxy");
        let addr = listener.local_addr().expect("a bound address");
        let state = Arc::new(State {
            upstream: upstream.trim_end_matches('/').to_owned(),
            rng: Mutex::new(fastrand::Rng::with_seed(faults.seed)),
            faults,
            http: reqwest::Client::new(),
            in_flight: Mutex::new(HashMap::new()),
            tokens: Mutex::new(std::collections::HashSet::new()),
            upstream_slots: tokio::sync::Semaphore::new(UPSTREAM_SLOTS),
            injected: Arc::new(Injected::default()),
        });
        let proxy = FaultProxy {
            addr,
            state,
            stop: Mutex::new(None),
        };
        proxy.serve(listener);
        proxy
    }

    /// The URL to give the SDK as `AWS_ENDPOINT_URL_DYNAMODB`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn injected(&self) -> Arc<Injected> {
        self.state.injected.clone()
    }

    fn serve(&self, listener: TcpListener) {
        let (tx, rx) = watch::channel(false);
        *self.stop.lock().expect("stop lock") = Some(tx);
        let state = self.state.clone();
        tokio::spawn(async move {
            let mut stopped = rx.clone();
            loop {
                let stream = tokio::select! {
                    accepted = listener.accept() => match accepted {
                        Ok((stream, _)) => {
                            // As DynamoDB's endpoints: no Nagle delay on small answers.
                            let _ = stream.set_nodelay(true);
                            stream
                        }
                        Err(_) => continue,
                    },
                    _ = stopped.changed() => return, // the listener closes: connections refused
                };
                let state = state.clone();
                let mut stopped = rx.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| handle(state.clone(), req));
                    let connection = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service);
                    tokio::select! {
                        _ = connection => {}
                        _ = stopped.changed() => {} // dropped mid-call, like a dead server
                    }
                });
            }
        });
    }

    /// DynamoDB goes away: the port refuses connections and open ones are cut.
    pub fn stop(&self) {
        if let Some(tx) = self.stop.lock().expect("stop lock").take() {
            let _ = tx.send(true);
        }
    }

    /// DynamoDB is back on the same port.
    pub async fn start_again(&self) {
        let mut tries = 0;
        let listener = loop {
            match TcpListener::bind(self.addr).await {
                Ok(listener) => break listener,
                Err(_) if tries < 50 => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("cannot listen on {} again: {e}", self.addr),
            }
        };
        self.serve(listener);
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop();
    }
}

fn chance(state: &State, rate: f64) -> bool {
    rate > 0.0 && state.rng.lock().expect("rng lock").f64() < rate
}

fn error(kind: &str, extra: Value) -> Response<Full<Bytes>> {
    let mut body = json!({"__type": format!("com.amazonaws.dynamodb.v20120810#{kind}")});
    if let (Value::Object(body), Value::Object(extra)) = (&mut body, extra) {
        body.extend(extra);
    }
    Response::builder()
        .status(StatusCode::BAD_REQUEST)
        .header("content-type", "application/x-amz-json-1.0")
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("a valid response")
}

/// The items a write touches: `(table, PK, SK)` of each.
fn items_of(operation: &str, body: &Value) -> Vec<ItemKey> {
    let key_of = |request: &Value| -> Option<ItemKey> {
        let table = request.get("TableName")?.as_str()?.to_owned();
        let key = request.get("Key").or_else(|| request.get("Item"))?;
        Some((
            table,
            key.get("PK")?.to_string(),
            key.get("SK")?.to_string(),
        ))
    };
    match operation {
        "TransactWriteItems" => body
            .get("TransactItems")
            .and_then(Value::as_array)
            .map(|items| {
                items
                    .iter()
                    .filter_map(|item| {
                        ["Put", "Update", "Delete", "ConditionCheck"]
                            .iter()
                            .find_map(|kind| item.get(*kind).and_then(key_of))
                    })
                    .collect()
            })
            .unwrap_or_default(),
        "PutItem" | "UpdateItem" | "DeleteItem" => key_of(body).into_iter().collect(),
        _ => Vec::new(),
    }
}

async fn handle(state: Arc<State>, req: Request<Incoming>) -> Answer {
    let injected = state.injected.clone();
    injected.calls.fetch_add(1, Ordering::Relaxed);
    let (parts, body) = req.into_parts();
    let body = body.collect().await.map_err(|_| Dropped)?.to_bytes();
    let operation = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .and_then(|t| t.split('.').nth(1))
        .unwrap_or_default()
        .to_owned();
    if !state.faults.latency.is_zero() {
        tokio::time::sleep(state.faults.latency).await;
    }
    if chance(&state, state.faults.reset) {
        injected.resets.fetch_add(1, Ordering::Relaxed);
        return Err(Dropped);
    }
    if chance(&state, state.faults.throttle) {
        injected.throttled.fetch_add(1, Ordering::Relaxed);
        return Ok(error(
            "ThrottlingException",
            json!({"message": "Rate of requests exceeds the allowed throughput."}),
        ));
    }
    if let Some((text, delay)) = state.faults.slow_reads
        && matches!(operation.as_str(), "Query" | "GetItem")
        && !text.is_empty()
        && body.windows(text.len()).any(|w| w == text.as_bytes())
    {
        injected.slowed.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(delay).await;
    }
    let _slot = state.upstream_slots.acquire().await.map_err(|_| Dropped)?;
    let transaction = operation == "TransactWriteItems";
    if transaction && chance(&state, state.faults.unavailable) {
        injected.unavailable.fetch_add(1, Ordering::Relaxed);
        return Ok(Response::builder()
            .status(StatusCode::SERVICE_UNAVAILABLE)
            .header("content-type", "application/x-amz-json-1.0")
            .body(Full::new(Bytes::from(
                json!({"__type": "com.amazonaws.dynamodb.v20120810#ServiceUnavailable",
                       "message": "Service unavailable"})
                .to_string(),
            )))
            .expect("a valid response"));
    }
    if transaction && state.faults.throttle_resends {
        let token = serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|v| v.get("ClientRequestToken")?.as_str().map(str::to_owned));
        if let Some(token) = token
            && !state.tokens.lock().expect("tokens lock").insert(token)
        {
            injected.throttled.fetch_add(1, Ordering::Relaxed);
            return Ok(error(
                "ThrottlingException",
                json!({"message": "Rate of requests exceeds the allowed throughput."}),
            ));
        }
    }
    if transaction && chance(&state, state.faults.invalid) {
        injected.invalid.fetch_add(1, Ordering::Relaxed);
        return Ok(error(
            "ValidationException",
            json!({"message": "Invalid ConditionExpression: too many operands"}),
        ));
    }
    if transaction {
        injected.transactions.fetch_add(1, Ordering::Relaxed);
    }
    let mut parsed: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let body = match parsed.as_object_mut() {
        Some(fields) if transaction && state.faults.strip_tokens => {
            fields.remove("ClientRequestToken");
            Bytes::from(parsed.to_string())
        }
        _ => body,
    };
    let items = if state.faults.conflicts {
        items_of(&operation, &parsed)
    } else {
        Vec::new()
    };
    // The conflict model: claim the items or be cancelled for the ones already claimed.
    if !items.is_empty() {
        let mut in_flight = state.in_flight.lock().expect("in-flight lock");
        let busy: Vec<bool> = items.iter().map(|k| in_flight.contains_key(k)).collect();
        if busy.iter().any(|b| *b) {
            drop(in_flight);
            return Ok(if transaction {
                injected.conflicts.fetch_add(1, Ordering::Relaxed);
                let reasons: Vec<Value> = busy
                    .iter()
                    .map(|b| {
                        if *b {
                            json!({"Code": "TransactionConflict", "Message": "Transaction is ongoing for the item"})
                        } else {
                            json!({"Code": "None"})
                        }
                    })
                    .collect();
                let codes: Vec<&str> = busy
                    .iter()
                    .map(|b| if *b { "TransactionConflict" } else { "None" })
                    .collect();
                error(
                    "TransactionCanceledException",
                    json!({
                        "Message": format!("Transaction cancelled, please refer cancellation reasons for specific reasons [{}]", codes.join(", ")),
                        "CancellationReasons": reasons,
                    }),
                )
            } else {
                injected
                    .single_write_conflicts
                    .fetch_add(1, Ordering::Relaxed);
                error(
                    "TransactionConflictException",
                    json!({"message": "Transaction is ongoing for the item"}),
                )
            });
        }
        if transaction {
            for key in &items {
                *in_flight.entry(key.clone()).or_default() += 1;
            }
        }
    }
    // The items stay in flight until the hold ends, or until this call is dropped (a stopped
    // proxy cuts its connections mid-call): the guard gives them back either way.
    let claimed = InFlight {
        state: &state,
        items: if transaction {
            items.clone()
        } else {
            Vec::new()
        },
    };
    // The window is the hold: DynamoDB keeps a transaction's items for the few ms of its
    // commit. DynamoDB Local's own latency (30-40 ms per transaction on two busy cores, where
    // DynamoDB takes about 10) is not counted: that would make a hot item's window several
    // times DynamoDB's. DynamoDB Local still applies what it receives one at a time, conditions
    // included.
    if transaction && !state.faults.hold.is_zero() {
        tokio::time::sleep(state.faults.hold).await;
    }
    drop(claimed);
    let started = std::time::Instant::now();
    let forwarded = forward(&state, &parts, body).await;
    if transaction {
        injected.forwarded.fetch_add(1, Ordering::Relaxed);
        injected
            .forward_micros
            .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
    }
    let response = forwarded?;
    if transaction && response.status() == StatusCode::OK && chance(&state, state.faults.lose) {
        injected.lost.fetch_add(1, Ordering::Relaxed);
        return Err(Dropped);
    }
    Ok(response)
}

async fn forward(state: &State, parts: &hyper::http::request::Parts, body: Bytes) -> Answer {
    let mut request = state.http.request(
        parts.method.clone(),
        format!("{}{}", state.upstream, parts.uri),
    );
    for (name, value) in &parts.headers {
        if !matches!(name.as_str(), "host" | "content-length" | "connection") {
            request = request.header(name, value);
        }
    }
    let response = request.body(body).send().await.map_err(|_| Dropped)?;
    let mut answer = Response::builder().status(response.status());
    for (name, value) in response.headers() {
        if !matches!(
            name.as_str(),
            "content-length" | "transfer-encoding" | "connection"
        ) {
            answer = answer.header(name, value);
        }
    }
    let bytes = response.bytes().await.map_err(|_| Dropped)?;
    answer.body(Full::new(bytes)).map_err(|_| Dropped)
}
