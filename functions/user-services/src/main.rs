//! Lambda entry point of the user-services configuration API: builds the DynamoDB client once
//! per cold start and hands the function's axum router to the Lambda runtime.
//!
//! Environment: `USER_SERVICES_TABLE`.

use lambda_http::{Error, run};
use licensing::http::{front, user_services};
use licensing::lambda::{dynamo_client, env, init_logging, open_connection};
use licensing::store::dynamo::DynamoConfigStore;

// One request at a time per execution environment: a single-threaded runtime (measured by
// `make bench`: less CPU per request and less memory than the multi-threaded one, same latency).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    init_logging();
    let client = dynamo_client();
    let table = env("USER_SERVICES_TABLE")?;
    open_connection(&client, &table).await;
    let store = DynamoConfigStore::new(client, table);
    run(user_services::router(store, front::DEADLINE)).await
}
