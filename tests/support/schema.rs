//! Table definitions, for the local stack and tests. `template.yaml` declares the same tables
//! for AWS; keep the two in step.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::create_table::CreateTableError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
};
use licensing::store::dynamo::keys::LAYOUT_PK;

/// Creates a table of this project's shape (`PK`, `SK`, both strings, on-demand) unless it exists.
/// Both tables, licenses and user-services configuration, have that shape.
pub async fn ensure_table(client: &Client, table: &str) -> Result<(), String> {
    let attr = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .map_err(|e| e.to_string())
    };
    let key = |name: &str, kind: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
            .map_err(|e| e.to_string())
    };
    let result = client
        .create_table()
        .table_name(table)
        .attribute_definitions(attr("PK")?)
        .attribute_definitions(attr("SK")?)
        .key_schema(key("PK", KeyType::Hash)?)
        .key_schema(key("SK", KeyType::Range)?)
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await;
    match result {
        Ok(_) => {
            wait_active(client, table).await?;
            enable_ttl(client, table).await
        }
        Err(SdkError::ServiceError(e))
            if matches!(e.err(), CreateTableError::ResourceInUseException(_)) =>
        {
            Ok(())
        }
        Err(e) => Err(format!(
            "{}",
            aws_sdk_dynamodb::error::DisplayErrorContext(e)
        )),
    }
}

/// In AWS a new table takes seconds to become usable (DynamoDB Local: none).
async fn wait_active(client: &Client, table: &str) -> Result<(), String> {
    use aws_sdk_dynamodb::types::TableStatus;
    for _ in 0..120 {
        let out = client
            .describe_table()
            .table_name(table)
            .send()
            .await
            .map_err(|e| aws_sdk_dynamodb::error::DisplayErrorContext(e).to_string())?;
        if out.table().and_then(|t| t.table_status()) == Some(&TableStatus::Active) {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    Err(format!("{table} did not become active within a minute"))
}

/// Deletes a table (the tables of a test run against a real DynamoDB).
pub async fn drop_table(client: &Client, table: &str) -> Result<(), String> {
    client
        .delete_table()
        .table_name(table)
        .send()
        .await
        .map_err(|e| aws_sdk_dynamodb::error::DisplayErrorContext(e).to_string())?;
    Ok(())
}

/// Idempotency records expire through the `expires` attribute, as `template.yaml` declares.
async fn enable_ttl(client: &Client, table: &str) -> Result<(), String> {
    let spec = aws_sdk_dynamodb::types::TimeToLiveSpecification::builder()
        .attribute_name("expires")
        .enabled(true)
        .build()
        .map_err(|e| e.to_string())?;
    client
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(spec)
        .send()
        .await
        .map_err(|e| aws_sdk_dynamodb::error::DisplayErrorContext(e).to_string())?;
    Ok(())
}

/// The layout of the licensing table's records this version reads and writes. 2: a user's
/// services are holdings (`USER#<u>#SVC#<s>` with `direct`, `packs`, `v`), counted once per
/// user whatever gives them. 3: pack definitions carry a content tag (`etag`), groups and
/// tenants an allocations version (`LIC#ALLOCATIONS`), and idempotency records live here.
pub const LAYOUT_VERSION: u32 = 3;

/// Checks that a kept development store was written by this layout, marking an empty one. A
/// store of an earlier layout would misbehave (counters that no longer match their records), so
/// it is refused with how to reset it.
pub async fn check_layout(client: &Client, table: &str, reset: &str) -> Result<(), String> {
    use aws_sdk_dynamodb::types::AttributeValue;
    let failed = |e: &dyn std::fmt::Display| format!("{table}: {e}");
    let marker = client
        .get_item()
        .table_name(table)
        .key("PK", AttributeValue::S(LAYOUT_PK.into()))
        .key("SK", AttributeValue::S("version".into()))
        .consistent_read(true)
        .send()
        .await
        .map_err(|e| failed(&aws_sdk_dynamodb::error::DisplayErrorContext(e)))?;
    let stale = |found: String| {
        format!(
            "the store in {table} was written by an earlier layout ({found}; this version needs {LAYOUT_VERSION}); reset it with `{reset}`"
        )
    };
    if let Some(item) = marker.item() {
        return match item.get("layout") {
            Some(AttributeValue::N(n)) if n == &LAYOUT_VERSION.to_string() => Ok(()),
            Some(AttributeValue::N(n)) => Err(stale(format!("layout {n}"))),
            _ => Err(stale("an unreadable marker".into())),
        };
    }
    let any = client
        .scan()
        .table_name(table)
        .limit(1)
        .send()
        .await
        .map_err(|e| failed(&aws_sdk_dynamodb::error::DisplayErrorContext(e)))?;
    if any.count() > 0 {
        return Err(stale("no layout marker".into()));
    }
    client
        .put_item()
        .table_name(table)
        .item("PK", AttributeValue::S(LAYOUT_PK.into()))
        .item("SK", AttributeValue::S("version".into()))
        .item("layout", AttributeValue::N(LAYOUT_VERSION.to_string()))
        .condition_expression("attribute_not_exists(PK)")
        .send()
        .await
        .map(|_| ())
        .map_err(|e| failed(&aws_sdk_dynamodb::error::DisplayErrorContext(e)))
}
