//! Setup shared by the store tests: a DynamoDB Local client (`scripts/stack.sh test` sets
//! `AWS_ENDPOINT_URL_DYNAMODB`), a table per test binary, a tenant per test.

use crate::schema::ensure_table;
use aws_sdk_dynamodb::Client;
use licensing::domain::{GroupId, GroupRef, TenantId};
use std::sync::atomic::{AtomicU32, Ordering};
use tokio::sync::OnceCell;

/// The client, and the name of this test binary's own table (created on first use).
pub async fn client_and_table(table: &'static OnceCell<String>, label: &str) -> (Client, String) {
    assert!(
        std::env::var("AWS_ENDPOINT_URL_DYNAMODB").is_ok(),
        "AWS_ENDPOINT_URL_DYNAMODB is not set: run through `make test` (scripts/stack.sh test)"
    );
    let client = licensing::lambda::dynamo_client();
    let name = table
        .get_or_init(|| async {
            let name = format!("{label}-{}", std::process::id());
            ensure_table(&client, &name)
                .await
                .expect("create the test table");
            name
        })
        .await
        .clone();
    (client, name)
}

/// A group in a tenant no other test uses.
pub fn fresh_group(label: &str) -> GroupRef {
    static N: AtomicU32 = AtomicU32::new(0);
    GroupRef {
        tenant: TenantId::parse(format!("{label}-{}", N.fetch_add(1, Ordering::Relaxed)))
            .expect("valid tenant id"),
        group: GroupId::parse("g").expect("valid group id"),
    }
}
