//! What every function's `main` does once per cold start: JSON logs, and one DynamoDB client
//! with bounded timeouts so an unreachable store becomes a 503 well inside the function's
//! timeout instead of a hang.

use aws_config::timeout::TimeoutConfig;
use std::time::Duration;

/// JSON log lines, filtered by `RUST_LOG` (default `info`).
pub fn init_logging() {
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_current_span(false)
        .with_ansi(false)
        .init();
}

/// The DynamoDB client. Locally, `AWS_ENDPOINT_URL_DYNAMODB` points it at DynamoDB Local; the
/// code has no branch for that.
pub async fn dynamo_client() -> aws_sdk_dynamodb::Client {
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(1))
        .operation_attempt_timeout(Duration::from_secs(2))
        .operation_timeout(Duration::from_secs(5))
        .build();
    let config = aws_config::from_env().timeout_config(timeouts).load().await;
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
