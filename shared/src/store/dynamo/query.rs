//! The one paging loop: every item of a partition under a sort-key prefix.

use super::item::Item;
use super::retry::read_failure;
use crate::store::StoreError;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;

/// Every item of the partition `pk` whose sort key starts with `prefix` (one strongly
/// consistent `Query`, paged); an empty prefix reads the whole partition.
pub(crate) async fn query_all(
    client: &Client,
    table: &str,
    pk: &str,
    prefix: &str,
) -> Result<Vec<Item>, StoreError> {
    let mut items = Vec::new();
    let mut start: Option<Item> = None;
    loop {
        let mut query = client
            .query()
            .table_name(table)
            .expression_attribute_values(":pk", AttributeValue::S(pk.to_owned()));
        query = if prefix.is_empty() {
            query.key_condition_expression("PK = :pk")
        } else {
            query
                .key_condition_expression("PK = :pk AND begins_with(SK, :prefix)")
                .expression_attribute_values(":prefix", AttributeValue::S(prefix.to_owned()))
        };
        let page = query
            .consistent_read(true)
            .set_exclusive_start_key(start.take())
            .send()
            .await
            .map_err(read_failure)?;
        items.extend(page.items.unwrap_or_default());
        match page.last_evaluated_key {
            Some(key) if !key.is_empty() => start = Some(key),
            _ => return Ok(items),
        }
    }
}
