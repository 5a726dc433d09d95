//! Lambda entry point of the licenses API: builds the DynamoDB client once per cold start, then
//! serves every request through `licensing::http::licenses`.
//!
//! Environment: `LICENSES_TABLE`, `USER_SERVICES_TABLE` (read when a licenses GET filters by
//! the user-services configuration or an assignment checks it), and `AUTH_DISABLED=true` only
//! for local development without an authorizer.

use lambda_http::{Error, Request, run, service_fn};
use licensing::http::auth::AuthMode;
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
    let auth = AuthMode::from_env();
    let (store, configs) = (&store, &configs);

    run(service_fn(move |req: Request| async move {
        Ok::<_, Error>(serve(req, |req| licenses::handle(store, configs, auth, req)).await)
    }))
    .await
}
