//! Lambda entry point of the licenses API: builds the DynamoDB client once per cold start, then
//! serves every request through `licensing::http::licenses`.
//!
//! Environment: `LICENSES_TABLE`, and `USER_SERVICES_TABLE` (read when a licenses GET filters by
//! the user-services configuration).

use lambda_http::{Error, Request, run, service_fn};
use licensing::http::{licenses, serve};
use licensing::lambda::{dynamo_client, env, init_logging};
use licensing::store::dynamo::DynamoStore;
use licensing::store::dynamo_configs::DynamoConfigStore;

#[tokio::main]
async fn main() -> Result<(), Error> {
    init_logging();
    let client = dynamo_client().await;
    let store = DynamoStore::new(client.clone(), env("LICENSES_TABLE")?);
    let configs = DynamoConfigStore::new(client, env("USER_SERVICES_TABLE")?);
    let (store, configs) = (&store, &configs);

    run(service_fn(move |req: Request| async move {
        Ok::<_, Error>(serve(req, |req| licenses::handle(store, configs, req)).await)
    }))
    .await
}
