//! Lambda entry point of the licenses API: builds the DynamoDB client once per cold start, then
//! serves every request through `licensing::http::licenses`.
//!
//! Environment: `LICENSES_TABLE` (the table name). Locally, `AWS_ENDPOINT_URL_DYNAMODB` points the
//! SDK at DynamoDB Local; the code has no special branch for it.

use aws_config::timeout::TimeoutConfig;
use lambda_http::{Error, Request, run, service_fn};
use licensing::http::{licenses, serve};
use licensing::store::dynamo::DynamoStore;
use std::time::Duration;

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_current_span(false)
        .with_ansi(false)
        .init();

    let table = std::env::var("LICENSES_TABLE").map_err(|_| "LICENSES_TABLE is not set")?;
    // Bounded timeouts so an unreachable store becomes a 503 well inside the function timeout
    // instead of a hang.
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(1))
        .operation_attempt_timeout(Duration::from_secs(2))
        .operation_timeout(Duration::from_secs(5))
        .build();
    let config = aws_config::from_env().timeout_config(timeouts).load().await;
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&config), table);
    let store = &store;

    run(service_fn(move |req: Request| async move {
        Ok::<_, Error>(serve(req, |req| licenses::handle(store, req)).await)
    }))
    .await
}
