//! A Lambda Runtime API on loopback, as Lambda runs a function: the function polls `next` for an
//! event and posts its answer back. Each invocation is timed from the moment its event is handed
//! out to the moment the answer arrives, which is what Lambda bills as duration.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use serde_json::Value;
use std::collections::HashMap;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::{mpsc, oneshot};

type Answer = Result<Value, String>;

struct Shared {
    events: tokio::sync::Mutex<mpsc::UnboundedReceiver<(String, String)>>,
    waiting: Mutex<HashMap<String, oneshot::Sender<Answer>>>,
}

/// One function process under its own runtime API.
pub struct Function {
    child: tokio::process::Child,
    shared: Arc<Shared>,
    events: mpsc::UnboundedSender<(String, String)>,
    ids: AtomicU64,
    server: tokio::task::JoinHandle<()>,
}

async fn next(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    let (id, event) = {
        let mut events = shared.events.lock().await;
        match events.recv().await {
            Some(next) => next,
            None => return (HeaderMap::new(), String::new()).into_response(),
        }
    };
    let deadline = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() + 30_000)
        .unwrap_or_default();
    let mut headers = HeaderMap::new();
    for (name, value) in [
        ("lambda-runtime-aws-request-id", id),
        ("lambda-runtime-deadline-ms", deadline.to_string()),
        (
            "lambda-runtime-invoked-function-arn",
            "arn:aws:lambda:us-east-1:123456789012:function:bench".to_owned(),
        ),
        (
            "lambda-runtime-trace-id",
            "Root=1-00000000-000000000000000000000000".to_owned(),
        ),
    ] {
        if let Ok(value) = value.parse() {
            headers.insert(name, value);
        }
    }
    (headers, event).into_response()
}

async fn answer(
    State(shared): State<Arc<Shared>>,
    Path((id, kind)): Path<(String, String)>,
    body: String,
) -> &'static str {
    let answer = match (kind.as_str(), serde_json::from_str(&body)) {
        ("response", Ok(json)) => Ok(json),
        _ => Err(format!("{kind}: {body}")),
    };
    let waiting = shared.waiting.lock().ok().and_then(|mut w| w.remove(&id));
    if let Some(waiting) = waiting {
        let _ = waiting.send(answer);
    }
    "{}"
}

async fn init_error(body: String) -> &'static str {
    eprintln!("init error: {body}");
    "{}"
}

impl Function {
    /// Starts `binary` with `env` under a new runtime API; it is stopped when dropped.
    pub async fn spawn(binary: &str, env: &[(&str, String)], log: &str) -> Result<Self, String> {
        let (events, receiver) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            events: tokio::sync::Mutex::new(receiver),
            waiting: Mutex::new(HashMap::new()),
        });
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route("/2018-06-01/runtime/invocation/{id}/{kind}", post(answer))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| e.to_string())?;
        let address = listener.local_addr().map_err(|e| e.to_string())?;
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let log = std::fs::File::create(log).map_err(|e| format!("{log}: {e}"))?;
        let mut command = tokio::process::Command::new(binary);
        command
            .env("AWS_LAMBDA_RUNTIME_API", address.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", "bench")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", "bench")
            .stdout(Stdio::from(log.try_clone().map_err(|e| e.to_string())?))
            .stderr(Stdio::from(log))
            .kill_on_drop(true);
        for (name, value) in env {
            command.env(name, value);
        }
        let child = command.spawn().map_err(|e| format!("{binary}: {e}"))?;
        Ok(Self {
            child,
            shared,
            events,
            ids: AtomicU64::new(0),
            server,
        })
    }

    /// Hands `event` to the function; its answer (the API Gateway response) and how long it
    /// took from the hand-out.
    pub async fn invoke(&self, event: String) -> Result<(Duration, Value), String> {
        let id = format!("bench-{}", self.ids.fetch_add(1, Ordering::Relaxed));
        let (tx, rx) = oneshot::channel();
        self.shared
            .waiting
            .lock()
            .map_err(|_| "poisoned")?
            .insert(id.clone(), tx);
        let started = Instant::now();
        self.events
            .send((id, event))
            .map_err(|_| "the runtime API stopped")?;
        let answer = tokio::time::timeout(Duration::from_secs(30), rx)
            .await
            .map_err(|_| "no answer within 30 s")?
            .map_err(|_| "the runtime API stopped")??;
        Ok((started.elapsed(), answer))
    }

    /// The process's peak resident set (`VmHWM`), in KiB.
    pub fn peak_rss_kib(&self) -> Option<u64> {
        self.status_kib("VmHWM:")
    }

    /// What is resident now: anonymous memory (heap, stacks) and file pages (the binary's code
    /// and data, shared libraries), in KiB.
    pub fn resident_kib(&self) -> Option<(u64, u64)> {
        Some((self.status_kib("RssAnon:")?, self.status_kib("RssFile:")?))
    }

    fn status_kib(&self, field: &str) -> Option<u64> {
        let pid = self.child.id()?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    }

    /// CPU time the process has used so far (user + system), from `/proc/<pid>/stat`.
    pub fn cpu(&self) -> Duration {
        let ticks = self.child.id().and_then(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // Fields after the command name (which may hold spaces) start at its closing ')'.
            let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
            let user: u64 = fields.get(11)?.parse().ok()?;
            let system: u64 = fields.get(12)?.parse().ok()?;
            Some(user + system)
        });
        // Linux reports these in clock ticks of 1/100 s (USER_HZ).
        Duration::from_millis(ticks.unwrap_or(0) * 10)
    }

    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
        self.server.abort();
    }
}
