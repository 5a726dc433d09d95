//! Table tool of the local stack (`scripts/stack.sh`):
//!
//! - `local-db create-tables` creates the tables named by `LICENSES_TABLE` and
//!   `USER_SERVICES_TABLE` if missing, and checks that kept data was written by this version's
//!   record layout (`make run` keeps `.local/`), marking new tables;
//! - `local-db seed` writes the README's examples, the group `foo`/`foogroup` and the
//!   user-services configuration `For_HG`, only where nothing exists yet, so a developer's own
//!   changes survive restarts.
//!
//! - `local-db drop-tables` deletes both (the tables a test run made in a real DynamoDB).
//!
//! The SDK finds DynamoDB Local through `AWS_ENDPOINT_URL_DYNAMODB`.

use api_tests::examples::{example_config, example_group, seed_example_group};
use api_tests::partition_keys;
use api_tests::schema::{check_layout, drop_table, ensure_table};
use api_tests::write_ctx;
use aws_sdk_dynamodb::Client;
use licensing::lambda::env;
use licensing::store::ConfigStore;
use licensing::store::dynamo::{DynamoConfigStore, DynamoStore};
use std::process::ExitCode;

async fn create_tables(client: &Client) -> Result<(), String> {
    let licenses = env("LICENSES_TABLE")?;
    ensure_table(client, &licenses).await?;
    ensure_table(client, &env("USER_SERVICES_TABLE")?).await?;
    check_layout(client, &licenses, "rm -rf .local").await
}

async fn drop_tables(client: &Client) -> Result<(), String> {
    drop_table(client, &env("LICENSES_TABLE")?).await?;
    drop_table(client, &env("USER_SERVICES_TABLE")?).await
}

async fn seed(client: &Client) -> Result<(), String> {
    let licenses = env("LICENSES_TABLE")?;
    let configs = DynamoConfigStore::new(client.clone(), env("USER_SERVICES_TABLE")?);
    let group = example_group();
    if partition_keys(client, &licenses, &group).await.is_empty() {
        let store = DynamoStore::new(client.clone(), licenses);
        seed_example_group(&store, &configs, &group).await?;
    }
    configs
        .create_user_service_config(&write_ctx(), &example_config())
        .await
        .map(|_created| ())
        .map_err(|e| e.to_string())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let command = std::env::args().nth(1).unwrap_or_default();
    let client = licensing::lambda::desktop_client().await;
    let result = match command.as_str() {
        "create-tables" => create_tables(&client).await,
        "seed" => seed(&client).await,
        "drop-tables" => drop_tables(&client).await,
        _ => Err("usage: local-db create-tables|seed|drop-tables".to_owned()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("local-db {command}: {e}");
            ExitCode::FAILURE
        }
    }
}
