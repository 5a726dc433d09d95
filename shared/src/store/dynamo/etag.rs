//! Entity tags and the write conditions that enforce `If-Match`.
//!
//! - A pack definition and a configuration object carry a strong tag of their content (`etag`,
//!   a hash of the stored attributes), written with every write; `If-Match` becomes the write's
//!   condition `etag IN (...)`.
//! - A group's (tenant's) licenses carry a weak tag: the allocations version `v` of one record
//!   in the group's (tenant's) partition, which every licenses PUT that changes something moves
//!   in its transaction ([`version_move`]).
//!   Live usage moves without it, so a portal's save is not refused because a user was assigned
//!   meanwhile. `If-Match` is checked against the version the PUT read, and the move's condition
//!   "still that version" carries it to the commit.
//!
//! Either way the condition, not a read before the write, decides: of two writes sent with one
//! tag, exactly one commits.

use super::item::{Item, built, key, number, read_number};
use crate::store::{IfMatch, StoreError};
use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem, Update};
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
pub const VERSION_SK: &str = super::keys::ALLOCATIONS_SK;

/// The allocations version of a partition read back (0 before the first PUT).
pub fn version_of(item: &Item) -> u64 {
    read_number(item, "v").unwrap_or(0)
}

/// Whether `if_match` admits the allocations version `version` (`*` admits any; a tag that is
/// no version never matches).
pub fn admits_version(if_match: &IfMatch, version: u64) -> bool {
    match if_match {
        IfMatch::Any => true,
        IfMatch::Tags(tags) => tags.iter().any(|t| t.parse() == Ok(version)),
    }
}

/// The action a licenses PUT that changes something adds: the partition's allocations version
/// moves on from the version its read saw, under the condition that it still is that version.
/// So the read the PUT planned from (which items differ, what each moves in the pool) is
/// re-checked by the write, and `If-Match`, checked against that read, holds at the commit.
pub fn version_move(table: &str, pk: &str, read: u64) -> Result<TransactWriteItem, StoreError> {
    let update = Update::builder()
        .table_name(table)
        .set_key(Some(key(pk, VERSION_SK.into())))
        .update_expression("SET v = :next")
        .expression_attribute_values(":next", number(read + 1));
    let update = if read == 0 {
        update.condition_expression("attribute_not_exists(v)")
    } else {
        update
            .condition_expression("v = :read")
            .expression_attribute_values(":read", number(read))
    };
    Ok(TransactWriteItem::builder()
        .update(built(update.build())?)
        .build())
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
        let tags = IfMatch::Tags(vec!["abc".into(), "4".into()]);
        assert!(!admits_version(&tags, 0));
        assert!(admits_version(&tags, 4));
        assert!(admits_version(&IfMatch::Any, 9));
    }
}
