//! What every function's `main` does once per cold start: JSON logs, and one DynamoDB client
//! with bounded timeouts so an unreachable store becomes a 503 well inside the function's
//! timeout instead of a hang.

use aws_sdk_dynamodb::config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region, SharedHttpClient};
use std::time::Duration;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// JSON log lines and, beside each request's line, its EMF document (`http/metrics.rs`), both on
/// standard output; the lines are filtered by `RUST_LOG` (default `info`): a level, or per-target directives
/// such as `info,licensing=debug` (no span or field filters, which would compile a regex
/// engine into the binary).
pub fn init_logging() {
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|f| f.parse::<tracing_subscriber::filter::Targets>().ok())
        .unwrap_or_else(|| {
            tracing_subscriber::filter::Targets::new()
                .with_default(tracing_subscriber::filter::LevelFilter::INFO)
        });
    let format = tracing_subscriber::fmt::layer()
        .json()
        .with_current_span(false)
        .with_ansi(false);
    tracing_subscriber::registry()
        .with(format)
        .with(filter)
        .init();
    crate::http::metrics::enable();
}

/// The one HTTPS client compiled in: hyper 1 and rustls with ring. The SDK's default client
/// would bring aws-lc, whose size and jitter-entropy start-up (tens of milliseconds of CPU on
/// the first request of a throttled Lambda) buy nothing here (see the workspace Cargo.toml).
pub fn https_client() -> SharedHttpClient {
    use aws_smithy_http_client::{Builder, tls};
    Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https()
}

/// Bounded waits: a store that does not answer is a 503 well inside the function's timeout.
pub fn timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(1))
        .operation_attempt_timeout(Duration::from_secs(2))
        .operation_timeout(Duration::from_secs(5))
        .build()
}

/// A function's DynamoDB client configuration, from what Lambda puts in its environment:
/// `AWS_REGION`, the execution role's credentials (`AWS_ACCESS_KEY_ID`,
/// `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, valid for the execution environment's life)
/// and, locally, `AWS_ENDPOINT_URL_DYNAMODB` (or `AWS_ENDPOINT_URL`) for DynamoDB Local. No
/// credential chain (profiles, SSO, IMDS, STS) is compiled in: a function never uses one.
pub fn dynamo_config() -> aws_sdk_dynamodb::config::Builder {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let mut config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .http_client(https_client())
        .timeout_config(timeouts());
    if let Some(region) = var("AWS_REGION").or_else(|| var("AWS_DEFAULT_REGION")) {
        config = config.region(Region::new(region));
    }
    if let (Some(id), Some(secret)) = (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY")) {
        let token = var("AWS_SESSION_TOKEN");
        config = config.credentials_provider(Credentials::new(id, secret, token, None, "env"));
    }
    if let Some(endpoint) = var("AWS_ENDPOINT_URL_DYNAMODB").or_else(|| var("AWS_ENDPOINT_URL")) {
        config = config.endpoint_url(endpoint);
    }
    config
}

/// The DynamoDB client of a function (see [`dynamo_config`]).
pub fn dynamo_client() -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::from_conf(dynamo_config().build())
}

/// The DynamoDB client of a tool run on a desktop (`make run`, the audit, the tests): the SDK's
/// whole credential chain (profiles, SSO, …) with the same HTTPS client and timeouts.
#[cfg(feature = "desktop")]
pub async fn desktop_client() -> aws_sdk_dynamodb::Client {
    let config = aws_config::defaults(BehaviorVersion::latest())
        .http_client(https_client())
        .timeout_config(timeouts())
        .load()
        .await;
    aws_sdk_dynamodb::Client::new(&config)
}

/// Opens the connection to DynamoDB while the function initialises: one `GetItem` of a key no
/// record has, in `table`. In Lambda the Init phase runs on a full CPU, while requests of a
/// 128 MB function run throttled; the TLS handshake of the first call is most of its cost, so
/// paying it here keeps it off the first request. A failure is only logged: the first request
/// then connects as usual.
pub async fn open_connection(client: &aws_sdk_dynamodb::Client, table: &str) {
    use aws_sdk_dynamodb::types::AttributeValue;
    let result = client
        .get_item()
        .table_name(table)
        .key("PK", AttributeValue::S("INIT".into()))
        .key("SK", AttributeValue::S("INIT".into()))
        .send()
        .await;
    if let Err(e) = result {
        tracing::warn!(
            error = %aws_sdk_dynamodb::error::DisplayErrorContext(&e),
            "opening the DynamoDB connection during init failed"
        );
    }
}

/// A required environment variable, such as a table name.
pub fn env(name: &str) -> Result<String, String> {
    std::env::var(name).map_err(|_| format!("{name} is not set"))
}
