//! Entity tags and the write conditions that enforce `If-Match`.
//!
//! - A pack definition and a configuration object carry a strong tag of their content (`etag`,
//!   a hash of the stored attributes), written with every write; `If-Match` becomes the write's
//!   condition `etag IN (...)`.
//! - A group's (tenant's) licenses carry a weak tag: the allocations version `v` of one record
//!   in the group's (tenant's) partition, which every licenses PUT moves in its transaction
//!   ([`version_action`]).
//!   Live usage moves without it, so a portal's save is not refused because a user was assigned
//!   meanwhile. `If-Match` becomes the condition `v IN (...)` of that move.
//!
//! Either way the condition, not a read before the write, decides: of two writes sent with one
//! tag, exactly one commits.

use super::dynamo::{Item, built, key, number};
use super::{IfMatch, StoreError};
use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, TransactWriteItem, Update};
use sha2::{Digest, Sha256};
use std::collections::HashMap;

/// The attribute holding a strong tag.
pub const ATTRIBUTE: &str = "etag";

/// A strong tag of an item's content: a hash of its attributes in name order (the tag itself
/// excluded), so equal content has equal tags whoever wrote it.
pub fn of_content(item: &Item) -> String {
    let mut names: Vec<&String> = item.keys().filter(|k| *k != ATTRIBUTE).collect();
    names.sort();
    let mut hash = Sha256::new();
    for name in names {
        hash.update(name.as_bytes());
        hash.update([0]);
        hash.update(format!("{:?}", item[name]).as_bytes());
        hash.update([0]);
    }
    hex(&hash.finalize()[..16])
}

/// Lower-case hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// The item with its strong tag added.
pub fn tagged(mut item: Item) -> Item {
    let tag = of_content(&item);
    item.insert(ATTRIBUTE.into(), AttributeValue::S(tag));
    item
}

/// The stored tag of an item read back.
pub fn stored(item: &Item) -> String {
    match item.get(ATTRIBUTE) {
        Some(AttributeValue::S(tag)) => tag.clone(),
        _ => of_content(item),
    }
}

/// A condition expression with the values it names.
pub type Condition = (String, Vec<(String, AttributeValue)>);

/// Expression values as the SDK's builders take them (`None` when there are none).
pub type Values = Option<HashMap<String, AttributeValue>>;

/// The condition of a write on an existing item: "it exists", and with `If-Match` "it is one of
/// these tags" (`*`: any).
pub fn existing(if_match: Option<&IfMatch>) -> (String, Values) {
    let Some(IfMatch::Tags(tags)) = if_match else {
        return ("attribute_exists(SK)".into(), None);
    };
    let values: HashMap<String, AttributeValue> = tags
        .iter()
        .enumerate()
        .map(|(i, t)| (format!(":ifMatch{i}"), AttributeValue::S(t.clone())))
        .collect();
    let mut names: Vec<&str> = values.keys().map(String::as_str).collect();
    names.sort_unstable();
    let condition = format!("{ATTRIBUTE} IN ({})", names.join(", "));
    (condition, Some(values))
}

/// Sort key of the allocations version in a group's and in a tenant's partition. Not a license
/// or pool key, so readers of those skip it.
pub const VERSION_SK: &str = "LIC#ALLOCATIONS";

/// The allocations version of a partition read back (0 before the first PUT).
pub fn version_of(item: &Item) -> u64 {
    match item.get("v") {
        Some(AttributeValue::N(v)) => v.parse().unwrap_or(0),
        _ => 0,
    }
}

/// The version a weak tag names; other tags never match.
fn versions(if_match: &IfMatch) -> Option<Vec<u64>> {
    match if_match {
        IfMatch::Any => None,
        IfMatch::Tags(tags) => Some(tags.iter().filter_map(|t| t.parse().ok()).collect()),
    }
}

/// The condition on the version record for `If-Match`: `Ok(None)` when there is nothing to
/// check, `Err(PreconditionFailed)` when no tag can match.
fn version_condition(if_match: Option<&IfMatch>) -> Result<Option<Condition>, StoreError> {
    let Some(versions) = if_match.and_then(versions) else {
        return Ok(None);
    };
    if versions.is_empty() {
        return Err(StoreError::PreconditionFailed);
    }
    let mut values = Vec::new();
    let mut terms = Vec::new();
    for (i, v) in versions.iter().enumerate() {
        let name = format!(":ifMatch{i}");
        terms.push(if *v == 0 {
            format!("attribute_not_exists(v) OR v = {name}")
        } else {
            format!("v = {name}")
        });
        values.push((name, number_u64(*v)));
    }
    Ok(Some((terms.join(" OR "), values)))
}

fn number_u64(v: u64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// The action on a partition's allocations version that a licenses PUT adds: when it changes
/// something, the version moves (under `If-Match` if given); when it changes nothing, an
/// `If-Match` is still checked; otherwise there is nothing to do (`None`).
pub fn version_action(
    table: &str,
    pk: &str,
    changes: bool,
    if_match: Option<&IfMatch>,
) -> Result<Option<TransactWriteItem>, StoreError> {
    let condition = version_condition(if_match)?;
    let key = Some(key(pk, VERSION_SK.into()));
    if changes {
        let mut update = Update::builder()
            .table_name(table)
            .set_key(key)
            .update_expression("SET v = if_not_exists(v, :zero) + :one")
            .expression_attribute_values(":zero", number(0))
            .expression_attribute_values(":one", number(1));
        if let Some((condition, values)) = condition {
            update = update.condition_expression(condition);
            for (name, value) in values {
                update = update.expression_attribute_values(name, value);
            }
        }
        return Ok(Some(
            TransactWriteItem::builder()
                .update(built(update.build())?)
                .build(),
        ));
    }
    let Some((condition, values)) = condition else {
        return Ok(None);
    };
    let mut check = ConditionCheck::builder()
        .table_name(table)
        .set_key(key)
        .condition_expression(condition);
    for (name, value) in values {
        check = check.expression_attribute_values(name, value);
    }
    Ok(Some(
        TransactWriteItem::builder()
            .condition_check(built(check.build())?)
            .build(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_tags_follow_content_not_order_or_old_tags() {
        let a = Item::from([
            ("PK".into(), AttributeValue::S("p".into())),
            ("x".into(), AttributeValue::Bool(true)),
        ]);
        let b = tagged(a.clone());
        assert_eq!(of_content(&a), stored(&b));
        let mut c = a.clone();
        c.insert("x".into(), AttributeValue::Bool(false));
        assert_ne!(of_content(&a), of_content(&c));
    }

    #[test]
    fn weak_tags_that_are_no_version_never_match() {
        let tags = IfMatch::Tags(vec!["abc".into()]);
        assert!(matches!(
            version_condition(Some(&tags)),
            Err(StoreError::PreconditionFailed)
        ));
        assert!(version_condition(Some(&IfMatch::Any)).unwrap().is_none());
        let (condition, _) = version_condition(Some(&IfMatch::Tags(vec!["0".into(), "4".into()])))
            .unwrap()
            .unwrap();
        assert_eq!(
            condition,
            "attribute_not_exists(v) OR v = :ifMatch0 OR v = :ifMatch1"
        );
    }
}
