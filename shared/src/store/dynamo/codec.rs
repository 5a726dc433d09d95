//! Records to and from items: a license record is `unlimited` (BOOL), `maximum` (N, only when
//! limited), `inUse` (N) and, for group services, `assigned` (BOOL).

use super::item::{Item, number, read_bool, read_u32};
use crate::domain::{Allocation, License, PackName, UserService};
use aws_sdk_dynamodb::types::AttributeValue;
use std::collections::BTreeMap;

/// The stored attributes of a license record (without its keys).
pub fn encode_license(license: &License) -> Item {
    let mut item = Item::with_capacity(4);
    match license.allocation {
        Allocation::Unlimited => {
            item.insert("unlimited".into(), AttributeValue::Bool(true));
        }
        Allocation::Limited(max) => {
            item.insert("unlimited".into(), AttributeValue::Bool(false));
            item.insert("maximum".into(), number(max));
        }
    }
    item.insert("inUse".into(), number(license.in_use));
    if license.assigned {
        item.insert("assigned".into(), AttributeValue::Bool(true));
    }
    item
}

/// Decodes a license record. A record without a readable allocation counts as not licensed.
pub fn decode_license(item: &Item) -> License {
    let allocation = if read_bool(item, "unlimited") {
        Allocation::Unlimited
    } else {
        Allocation::Limited(read_u32(item, "maximum").unwrap_or(0))
    };
    License {
        allocation,
        in_use: read_u32(item, "inUse").unwrap_or(0),
        assigned: read_bool(item, "assigned"),
    }
}

/// A tenant's pack definitions as read: each pack's services and strong tag, by name.
pub(crate) type Definitions = BTreeMap<PackName, (Vec<UserService>, String)>;
