//! Table tool of the local stack (`scripts/stack.sh`):
//!
//! - `local-db create-tables` creates the tables named by `LICENSES_TABLE` if missing;
//! - `local-db seed` writes the README's example group (`foo`/`foogroup`), item by item and only
//!   where no record exists, so a developer's own changes survive restarts.
//!
//! The SDK finds DynamoDB Local through `AWS_ENDPOINT_URL_DYNAMODB`.

use api_tests::{example_group, seed_example_group};
use licensing::store::schema::ensure_licenses_table;
use std::process::ExitCode;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let command = std::env::args().nth(1).unwrap_or_default();
    let Ok(table) = std::env::var("LICENSES_TABLE") else {
        eprintln!("local-db: LICENSES_TABLE is not set");
        return ExitCode::FAILURE;
    };
    let client = api_tests::dynamo_client().await;
    let result = match command.as_str() {
        "create-tables" => ensure_licenses_table(&client, &table).await,
        "seed" => seed_example_group(&client, &table, &example_group(), true).await,
        _ => Err("usage: local-db create-tables|seed".to_owned()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("local-db {command}: {e}");
            ExitCode::FAILURE
        }
    }
}
