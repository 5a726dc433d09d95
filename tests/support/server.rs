//! A server of its own for a test: the `local-api` binary (what `make run` serves) started with
//! `AWS_ENDPOINT_URL_DYNAMODB` pointing wherever the test says (a [`crate::faults::FaultProxy`]),
//! stopped when dropped; and [`audit_clean`], which runs the `licensing-audit` binary.

use std::process::Stdio;
use std::time::{Duration, Instant};

fn binary(name: &str) -> String {
    format!("{}/../target/debug/{name}", env!("CARGO_MANIFEST_DIR"))
}

pub struct LocalServer {
    pub base: String,
    _child: tokio::process::Child,
}

impl LocalServer {
    /// Starts `local-api` against `dynamodb` and waits until it accepts connections.
    pub async fn start(dynamodb: &str) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        // Below DynamoDB Local's priority: in AWS the store runs on its own fleet, here it
        // shares two cores with the server and the test; a starved emulator would make every
        // transaction (and so every conflict window) several times longer than in AWS.
        let child = tokio::process::Command::new("nice")
            .args(["-n", "10", &binary("local-api")])
            .env("PORT", port.to_string())
            .env("AWS_ENDPOINT_URL_DYNAMODB", dynamodb)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("local-api is built by scripts/stack.sh");
        let started = Instant::now();
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "local-api did not start"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        LocalServer {
            base: format!("http://127.0.0.1:{port}"),
            _child: child,
        }
    }
}

/// Runs `licensing-audit` on the tenant's partitions of the test table (straight to DynamoDB
/// Local, not through any proxy): its exit code and report.
pub async fn audit(tenant: &str) -> (Option<i32>, String) {
    let out = tokio::process::Command::new(binary("licensing-audit"))
        .args(["--table", &crate::licenses_table(), "--tenant", tenant])
        .output()
        .await
        .expect("licensing-audit is built by scripts/stack.sh");
    let report =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code(), report)
}

/// [`audit`], failing the test with the report unless it is clean.
pub async fn audit_clean(tenant: &str) {
    let (code, report) = audit(tenant).await;
    assert_eq!(
        code,
        Some(0),
        "licensing-audit found discrepancies for {tenant}:\n{report}"
    );
    assert!(
        report.contains(" 1 tenants,"),
        "the audit read the tenant: {report}"
    );
}
