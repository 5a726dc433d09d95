//! The floor function of `make bench`: a lambda_http function built like the real ones (same
//! dependencies, client, profile and Init) that makes only the DynamoDB calls a route needs,
//! with no rules, parsing or views, so that a route's time can be read as a ratio to it.
//!
//! The event's query string says what to do:
//! - `op=query&pk=P&prefix=S`: one strongly consistent `Query` of `PK = P AND begins_with(SK, S)`;
//! - `op=write&k=K[&pk=P&prefix=S]`: with `pk`, that `Query` first; then one
//!   `TransactWriteItems` of K `Put`s of fresh items under `attribute_not_exists(SK)`.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use lambda_http::{Body, Error, Request, RequestExt, Response, run, service_fn};
use licensing::lambda::{dynamo_client, env, open_connection};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

struct Floor {
    client: Client,
    table: String,
    /// Fresh sort keys: this process's id, then a counter.
    next: AtomicU64,
}

// The same runtime as the functions (see functions/licenses/src/main.rs).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let client = dynamo_client();
    let table = env("LICENSES_TABLE")?;
    open_connection(&client, &table).await;
    let floor = Arc::new(Floor {
        client,
        table,
        next: AtomicU64::new(0),
    });
    run(service_fn(move |request: Request| {
        let floor = floor.clone();
        async move { floor.handle(request).await }
    }))
    .await
}

impl Floor {
    async fn handle(&self, request: Request) -> Result<Response<Body>, Error> {
        let params = request.query_string_parameters();
        let pk = params.first("pk");
        let prefix = params.first("prefix").unwrap_or("");
        let mut count = 0;
        if let Some(pk) = pk {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("PK = :pk AND begins_with(SK, :prefix)")
                .expression_attribute_values(":pk", AttributeValue::S(pk.to_owned()))
                .expression_attribute_values(":prefix", AttributeValue::S(prefix.to_owned()))
                .consistent_read(true)
                .send()
                .await?;
            count = out.count();
        }
        if params.first("op") == Some("write") {
            let k: usize = params.first("k").and_then(|k| k.parse().ok()).unwrap_or(1);
            let mut items = Vec::with_capacity(k);
            for _ in 0..k {
                let n = self.next.fetch_add(1, Ordering::Relaxed);
                let put = Put::builder()
                    .table_name(&self.table)
                    .item("PK", AttributeValue::S("FLOOR".into()))
                    .item(
                        "SK",
                        AttributeValue::S(format!("{}#{n}", std::process::id())),
                    )
                    .item("v", AttributeValue::N("1".into()))
                    .condition_expression("attribute_not_exists(SK)")
                    .build()?;
                items.push(TransactWriteItem::builder().put(put).build());
            }
            self.client
                .transact_write_items()
                .set_transact_items(Some(items))
                .send()
                .await?;
        }
        Ok(Response::builder()
            .status(200)
            .header("content-type", "application/json")
            .body(Body::Text(format!("{{\"count\":{count}}}")))?)
    }
}
