//! Lambda entry point of the licenses API: builds the DynamoDB client once per cold start and
//! hands the function's axum router to the Lambda runtime.
//!
//! Environment: `LICENSES_TABLE`, and `USER_SERVICES_TABLE` (read when a licenses GET filters by
//! the user-services configuration or an assignment checks it).

use lambda_http::{Error, run};
use licensing::http::{front, licenses};
use licensing::lambda::{dynamo_client, env, init_logging, open_connection};
use licensing::store::dynamo::DynamoConfigStore;
use licensing::store::dynamo::DynamoStore;

// One request at a time per execution environment: a single-threaded runtime (measured by
// `make bench`: less CPU per request and less memory than the multi-threaded one, same latency).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    init_logging();
    let client = dynamo_client();
    let table = env("LICENSES_TABLE")?;
    open_connection(&client, &table).await;
    let store = DynamoStore::new(client.clone(), table);
    let configs = DynamoConfigStore::new(client, env("USER_SERVICES_TABLE")?);
    run(licenses::router(store, configs, front::DEADLINE)).await
}
