//! Lambda entry point of the user-services configuration API: builds the DynamoDB client once
//! per cold start, then serves every request through `licensing::http::user_services`.
//!
//! Environment: `USER_SERVICES_TABLE`, and `AUTH_DISABLED=true` only for local development
//! without an authorizer.

use lambda_http::{Error, Request, run, service_fn};
use licensing::http::auth::AuthMode;
use licensing::http::{serve, user_services};
use licensing::lambda::{dynamo_client, env, init_logging};
use licensing::store::dynamo_configs::DynamoConfigStore;

#[tokio::main]
async fn main() -> Result<(), Error> {
    init_logging();
    let store = DynamoConfigStore::new(dynamo_client().await, env("USER_SERVICES_TABLE")?);
    let auth = AuthMode::from_env();
    let store = &store;

    run(service_fn(move |req: Request| async move {
        Ok::<_, Error>(serve(req, |req| user_services::handle(store, auth, req)).await)
    }))
    .await
}
