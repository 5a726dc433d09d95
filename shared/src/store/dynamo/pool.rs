//! The tenant pool records and the conditions that move them, shared by the group PUT
//! (`licenses.rs`) and the tenant PUT (`tenant.rs`).
//!
//! A tenant's partition (`TENANT#<tenant>`) holds one pool record per service or pack its groups
//! or itself ever licensed (`POOL#USER#<service>`, ...): counters `currentlyAllocated` (sum of the
//! groups' limited maximums), `unlimitedGroups`, and `remaining` (tenant maximum minus
//! `currentlyAllocated`), plus the tenant allocation `unlimited`/`maximum` once the tenant set one.
//! `remaining` exists so the pool rule is a plain condition (`remaining >= :delta`): DynamoDB
//! conditions cannot add. Pack definitions live beside them (`PACKDEF#<pack>`).
//!
//! A pack's pool record also carries the mark of its definition (`packDefined`), so "the pack
//! is defined" is a condition on the record a group PUT moves anyway.

use super::item::{Item, number, read_number};
use crate::domain::{Allocation, Licensable, License, LicenseChange, UsageEffect};
use aws_sdk_dynamodb::types::AttributeValue;
use std::collections::HashMap;

/// An expression with the values it references, built together so that no value goes unused
/// (DynamoDB refuses those).
#[derive(Default)]
pub(super) struct Values(pub(super) HashMap<String, AttributeValue>);

impl Values {
    pub(super) fn add(&mut self, name: &str, value: AttributeValue) -> String {
        self.0.insert(name.to_owned(), value);
        name.to_owned()
    }
}

/// "The record is still as it was read": the guard that turns a stale read into a failed write.
pub(super) fn still_as_read(old: Option<Allocation>, values: &mut Values) -> String {
    match old {
        None => "attribute_not_exists(SK)".to_owned(),
        Some(Allocation::Unlimited) => {
            format!(
                "unlimited = {}",
                values.add(":wasUnlimited", AttributeValue::Bool(true))
            )
        }
        Some(Allocation::Limited(m)) => {
            format!("maximum = {}", values.add(":wasMax", number(m)))
        }
    }
}

pub(super) fn read_i64(item: &Item, name: &str) -> i64 {
    read_number(item, name).unwrap_or(0)
}

pub(super) fn read_remaining(item: &Item) -> u64 {
    read_i64(item, "remaining").max(0) as u64
}

/// Whether a group PUT's change differs from the stored record (`None`: no record): an item
/// equal to it costs no action.
pub(super) fn differs(change: &LicenseChange, stored: Option<&License>) -> bool {
    match (change.effect(), stored) {
        (UsageEffect::Unlicense, stored) => stored.is_some(),
        (UsageEffect::License { .. }, None) => true,
        (
            UsageEffect::License {
                allocation,
                assign,
                set_in_use,
            },
            Some(stored),
        ) => {
            stored.allocation != allocation
                || (assign && !stored.assigned)
                || set_in_use.is_some_and(|n| n != stored.in_use)
        }
    }
}

/// Whether a failed pool action failed because the pack is not defined.
pub(super) fn pack_undefined(item: &Licensable, record: Option<&Item>) -> bool {
    matches!(item, Licensable::Pack(_))
        && !matches!(
            record.and_then(|r| r.get("packDefined")),
            Some(AttributeValue::Bool(true))
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guards_name_the_state_that_was_read() {
        let mut v = Values::default();
        assert_eq!(still_as_read(None, &mut v), "attribute_not_exists(SK)");
        assert_eq!(
            still_as_read(Some(Allocation::Limited(3)), &mut v),
            "maximum = :wasMax"
        );
        assert_eq!(v.0.get(":wasMax"), Some(&number(3)));
    }
}
