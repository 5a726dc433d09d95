//! The built binaries, run as they run in production: each function under a Lambda Runtime API
//! (a small one of our own, here), given one API Gateway v2 event; its `main` must build its
//! client, serve the event through its router and post back an API Gateway response whose body
//! is text. And `licensing-audit`, whose exit code and report operators script against.
//!
//! The binaries are debug builds made here first, with the workspace's features (those `cargo
//! test --workspace` built the dependencies with, so only the binaries are compiled here; the
//! release builds of `make package` and `make bench` are the functions' own); DynamoDB is the
//! harness's, with the README's examples in this test's tables.

use api_tests::{TestApp, fixture};
use aws_sdk_dynamodb::types::AttributeValue;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use serde_json::{Value, json};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

/// The runtime API's state: the one event to hand out, and where answers go.
struct Runtime {
    event: Mutex<Option<String>>,
    answers: mpsc::UnboundedSender<(String, Value)>,
}

async fn next(State(rt): State<Arc<Runtime>>) -> impl IntoResponse {
    let event = rt.event.lock().ok().and_then(|mut e| e.take());
    let Some(event) = event else {
        // One event per run: later polls wait until the function is stopped.
        std::future::pending::<()>().await;
        unreachable!()
    };
    let mut headers = HeaderMap::new();
    let deadline = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() + 10_000)
        .unwrap_or_default();
    for (name, value) in [
        ("lambda-runtime-aws-request-id", "smoke-1".to_owned()),
        ("lambda-runtime-deadline-ms", deadline.to_string()),
        (
            "lambda-runtime-invoked-function-arn",
            "arn:aws:lambda:eu-west-1:123456789012:function:smoke".to_owned(),
        ),
        (
            "lambda-runtime-trace-id",
            "Root=1-00000000-000000000000000000000000".to_owned(),
        ),
    ] {
        headers.insert(name, value.parse().expect("header value"));
    }
    (headers, event)
}

async fn answer(
    State(rt): State<Arc<Runtime>>,
    Path((id, kind)): Path<(String, String)>,
    body: String,
) -> &'static str {
    let json = serde_json::from_str(&body).unwrap_or(Value::String(body));
    let _ = rt.answers.send((format!("{id}/{kind}"), json));
    "{}"
}

async fn init_error(State(rt): State<Arc<Runtime>>, body: String) -> &'static str {
    let _ = rt.answers.send(("init/error".into(), Value::String(body)));
    "{}"
}

/// Runs `binary` under the runtime API with `event`; returns what it posted back and what it
/// wrote to standard output.
async fn run_once(test: &TestApp, binary: &str, event: &str) -> (String, Value, String) {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let runtime = Arc::new(Runtime {
        event: Mutex::new(Some(event.to_owned())),
        answers: tx,
    });
    let app = Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next))
        .route("/2018-06-01/runtime/invocation/{id}/{kind}", post(answer))
        .route("/2018-06-01/runtime/init/error", post(init_error))
        .with_state(runtime);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let path = self::binary(binary);
    let endpoint = api_tests::harness::local_endpoint().expect("a local DynamoDB");
    let mut child = tokio::process::Command::new(&path)
        .env("AWS_LAMBDA_RUNTIME_API", address.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", binary)
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "smoke")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "smoke")
        .env("LICENSES_TABLE", &test.licenses_table)
        .env("USER_SERVICES_TABLE", &test.user_services_table)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "local")
        .env("AWS_SECRET_ACCESS_KEY", "local")
        .env("AWS_ENDPOINT_URL_DYNAMODB", &endpoint)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("{path}: {e}"));
    let got = tokio::time::timeout(Duration::from_secs(30), rx.recv())
        .await
        .expect("the function answered within 30 s")
        .expect("an answer");
    let _ = child.kill().await;
    server.abort();
    let mut stdout = String::new();
    if let Some(mut out) = child.stdout.take() {
        use tokio::io::AsyncReadExt;
        let _ = out.read_to_string(&mut stdout).await;
    }
    (got.0, got.1, stdout)
}

/// The request's JSON log line and its EMF document, as the function wrote them to standard
/// output: the line with API Gateway's request id, the X-Ray trace id and the caller, the document
/// in namespace `Licensing` with its dimensions (`http/metrics.rs` checks it against the EMF
/// specification).
fn check_log_and_metrics(binary: &str, status: u16, request_id: &str, stdout: &str) {
    let lines: Vec<Value> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let line = lines
        .iter()
        .find(|l| l["fields"]["message"] == "request")
        .unwrap_or_else(|| panic!("{binary}: a request line in {stdout}"));
    let fields = &line["fields"];
    assert_eq!(fields["status"], status, "{line}");
    // API Gateway's request id, not the Lambda invocation's (`smoke-1`).
    assert_eq!(fields["request_id"], request_id, "{line}");
    assert_eq!(
        fields["trace_id"], "Root=1-00000000-000000000000000000000000",
        "{line}"
    );
    assert!(fields["round_trips"].is_u64(), "{line}");
    if status == 200 {
        assert!(
            fields["role"].is_string() && fields["sub"].is_string(),
            "{line}"
        );
    } else {
        assert_eq!(fields["error_code"], "UNAUTHENTICATED", "{line}");
    }
    let emf = lines
        .iter()
        .find(|l| l.get("_aws").is_some())
        .unwrap_or_else(|| panic!("{binary}: an EMF document in {stdout}"));
    let directives = emf["_aws"]["CloudWatchMetrics"]
        .as_array()
        .expect("directives");
    assert!(
        directives.iter().all(|d| d["Namespace"] == "Licensing"),
        "{emf}"
    );
    assert_eq!(emf["StatusClass"], format!("{}xx", status / 100), "{emf}");
    assert!(
        emf["Route"].as_str().is_some_and(|r| r.starts_with("GET ")),
        "{emf}"
    );
    assert_eq!(
        (&emf["Requests"], &emf["request_id"]),
        (&json!(1), &json!(request_id))
    );
    assert!(
        emf["Latency"].is_number() && emf["DynamoDbRoundTrips"].is_u64(),
        "{emf}"
    );
    if status != 200 {
        assert_eq!(
            (&emf["ErrorCode"], &emf["Refusals"]),
            (&json!("UNAUTHENTICATED"), &json!(1))
        );
    }
}

/// Where cargo puts the debug binaries.
fn binary(name: &str) -> String {
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| api_tests::harness::root().join("target"));
    target
        .join("debug")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

/// `cargo build` of the binaries (the test process is not cargo's build, so it may run one),
/// without the variables cargo set for this test process: a build seeing them does not match
/// the last one and builds everything again.
fn build_the_binaries() {
    let mut command = std::process::Command::new("cargo");
    for (name, _) in std::env::vars() {
        let set_for_the_test = [
            "CARGO_PKG_",
            "CARGO_MANIFEST_",
            "CARGO_BIN_EXE_",
            "RUSTUP_TOOLCHAIN",
        ]
        .iter()
        .any(|prefix| name.starts_with(prefix))
            || [
                "CARGO",
                "CARGO_CRATE_NAME",
                "CARGO_PRIMARY_PACKAGE",
                "CARGO_TARGET_TMPDIR",
                "RUST_TEST_THREADS",
                "RUST_RECURSION_COUNT",
            ]
            .contains(&name.as_str());
        if set_for_the_test {
            command.env_remove(name);
        }
    }
    // With the workspace's features, which `cargo test --workspace` has built the
    // dependencies with: only the binaries themselves are compiled here.
    let status = command
        .args(["build", "--quiet", "--workspace"])
        .args([
            "--bin",
            "licenses",
            "--bin",
            "user-services",
            "--bin",
            "licensing-audit",
        ])
        .current_dir(api_tests::harness::root())
        .status()
        .expect("cargo runs");
    assert!(status.success(), "cargo build of the binaries");
}

#[tokio::test]
async fn each_binary_runs_as_in_production() {
    let Some(endpoint) = api_tests::harness::local_endpoint() else {
        eprintln!("skipped: the binaries are run against a local DynamoDB only");
        return;
    };
    build_the_binaries();
    let app = TestApp::spawn().await;
    app.seed_readme().await;
    for (binary, file, status) in [
        ("licenses", "operator-get-group-licenses.json", 200),
        (
            "user-services",
            "group-admin-get-user-services-config.json",
            200,
        ),
        ("licenses", "anonymous-get-group-licenses.json", 401),
    ] {
        let event = fixture(file);
        let (kind, response, stdout) = run_once(&app, binary, &event).await;
        let gateway_id: Value = serde_json::from_str(&event).expect("a JSON event");
        let gateway_id = gateway_id["requestContext"]["requestId"]
            .as_str()
            .unwrap_or_default();
        check_log_and_metrics(binary, status, gateway_id, &stdout);
        assert_eq!(kind, "smoke-1/response", "{binary} {file}: {response}");
        assert_eq!(
            response["statusCode"], status,
            "{binary} {file}: {response}"
        );
        assert_eq!(
            response["isBase64Encoded"], false,
            "{binary}: the body goes back as text"
        );
        let body: Value =
            serde_json::from_str(response["body"].as_str().expect("a body")).expect("a JSON body");
        assert!(body.is_object(), "{body}");
    }

    // licensing-audit: clean, then a counter moved by hand is a discrepancy and exit code 1.
    let audit = || {
        let out = std::process::Command::new(binary("licensing-audit"))
            .args(["--table", &app.licenses_table, "--tenant", "foo"])
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "local")
            .env("AWS_SECRET_ACCESS_KEY", "local")
            .env("AWS_ENDPOINT_URL_DYNAMODB", &endpoint)
            .output()
            .expect("licensing-audit runs");
        let report = String::from_utf8_lossy(&out.stdout).into_owned();
        (out.status.code(), report)
    };
    let (code, report) = audit();
    assert_eq!(code, Some(0), "{report}");
    assert!(report.contains(": 1 tenants, 1 groups,"), "{report}");
    assert!(report.trim_end().ends_with("; 0 discrepancies"), "{report}");
    let group = licensing::store::dynamo::keys::group_pk(&api_tests::examples::example_group());
    app.client
        .update_item()
        .table_name(&app.licenses_table)
        .key("PK", AttributeValue::S(group))
        .key(
            "SK",
            AttributeValue::S("LIC#USER#Call Forwarding Busy".into()),
        )
        .update_expression("SET inUse = :n")
        .expression_attribute_values(":n", AttributeValue::N("5".into()))
        .send()
        .await
        .expect("the counter moved");
    let (code, report) = audit();
    assert_eq!(code, Some(1), "{report}");
    assert!(report.contains("inUse 5 but 4 holders"), "{report}");
    assert!(report.trim_end().ends_with("; 1 discrepancies"), "{report}");
}
