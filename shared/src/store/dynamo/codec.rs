//! Records to and from items: licenses, tenant pool records, pack definitions (and the services
//! a pack assignment keeps), configuration objects. A license record is `unlimited` (BOOL),
//! `maximum` (N, only when limited), `inUse` (N) and, for group services, `assigned` (BOOL).

use super::etag;
use super::item::{Item, key, read_bool, read_number, read_u32, s};
use super::keys::{CONFIGS_PK, PACKDEF_PREFIX, packdef_sk, tenant_pk};
use crate::domain::{
    Allocation, Audience, InstanceName, License, PackDefinition, PackName, TenantId, TenantLicense,
    UserService, UserServiceConfig,
};
use aws_sdk_dynamodb::types::AttributeValue;
use std::collections::BTreeMap;

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

/// A tenant's pool record for one service or pack.
pub(crate) fn decode_pool(item: &Item) -> TenantLicense {
    let allocation = match item.get("unlimited") {
        Some(AttributeValue::Bool(true)) => Some(Allocation::Unlimited),
        Some(AttributeValue::Bool(false)) => {
            Some(Allocation::Limited(read_u32(item, "maximum").unwrap_or(0)))
        }
        _ => None,
    };
    TenantLicense {
        allocation,
        currently_allocated: read_number::<i64>(item, "currentlyAllocated")
            .unwrap_or(0)
            .max(0) as u64,
        unlimited_groups: read_u32(item, "unlimitedGroups").unwrap_or(0),
    }
}

/// The services of a pack definition or assignment, as stored (a list of names).
pub(crate) fn services_list(services: &[UserService]) -> AttributeValue {
    AttributeValue::L(services.iter().map(|service| s(service.name())).collect())
}

/// The services a pack definition or assignment stores (names this catalog no longer knows
/// left out).
pub(crate) fn read_services(item: &Item) -> Vec<UserService> {
    match item.get("services") {
        Some(AttributeValue::L(list)) => list
            .iter()
            .filter_map(|v| match v {
                AttributeValue::S(name) => UserService::parse(name).ok(),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// A pack definition as stored, with its strong tag.
pub(crate) fn encode_pack(tenant: &TenantId, pack: &PackDefinition) -> Item {
    let mut item = key(&tenant_pk(tenant), packdef_sk(&pack.name));
    item.insert(
        "description".into(),
        AttributeValue::S(pack.description.clone()),
    );
    item.insert("services".into(), services_list(&pack.services));
    etag::tagged(item)
}

/// A stored pack definition; `None` for an item that is not one.
pub(crate) fn decode_pack(item: &Item) -> Option<PackDefinition> {
    let AttributeValue::S(sk) = item.get("SK")? else {
        return None;
    };
    let name = PackName::parse(sk.strip_prefix(PACKDEF_PREFIX)?).ok()?;
    let description = match item.get("description") {
        Some(AttributeValue::S(d)) => d.clone(),
        _ => String::new(),
    };
    let services = read_services(item);
    Some(PackDefinition {
        name,
        description,
        services,
    })
}

/// The tenant's pack definitions from the items of its `PACKDEF#` records.
pub(crate) fn decode_definitions(items: &[Item]) -> Definitions {
    items
        .iter()
        .filter_map(|item| match item.get("SK") {
            Some(AttributeValue::S(sk)) => {
                let name = PackName::parse(sk.strip_prefix(PACKDEF_PREFIX)?).ok()?;
                Some((name, (read_services(item), etag::stored(item))))
            }
            _ => None,
        })
        .collect()
}

/// The key of a configuration object.
pub(crate) fn config_key(name: &InstanceName) -> Item {
    key(CONFIGS_PK, name.as_str().to_owned())
}

/// A configuration object as stored, with its strong tag; `add_data` kept as its JSON text.
pub(crate) fn encode_config(config: &UserServiceConfig) -> Item {
    let mut item = config_key(&config.instance_name);
    item.insert("technical_name".into(), s(config.technical_name.name()));
    item.insert("display_name".into(), s(&config.display_name));
    item.insert("description".into(), s(&config.description));
    item.insert(
        "no_more_assignable".into(),
        AttributeValue::Bool(config.no_more_assignable),
    );
    for field in Audience::FIELDS {
        let flag = config.audience.get(field).unwrap_or(false);
        item.insert(field.into(), AttributeValue::Bool(flag));
    }
    // A serde_json::Map always serializes.
    let add_data = serde_json::Value::Object(config.add_data.clone()).to_string();
    item.insert("add_data".into(), AttributeValue::S(add_data));
    etag::tagged(item)
}

/// Decodes a stored object; `None` for one this version cannot read (its technical name left the
/// catalog, say), which readers skip rather than fail the whole list.
pub(crate) fn decode_config(item: &Item) -> Option<UserServiceConfig> {
    let text = |name: &str| match item.get(name) {
        Some(AttributeValue::S(s)) => Some(s.as_str()),
        _ => None,
    };
    let flag = |name: &str| matches!(item.get(name), Some(AttributeValue::Bool(true)));
    let mut audience = Audience::default();
    for field in Audience::FIELDS {
        audience.set(field, flag(field));
    }
    let add_data = match text("add_data").map(serde_json::from_str) {
        Some(Ok(serde_json::Value::Object(map))) => map,
        _ => serde_json::Map::new(),
    };
    let technical_name = text("technical_name")?;
    let config = UserServiceConfig {
        instance_name: InstanceName::parse(text("SK")?).ok()?,
        technical_name: match UserService::parse(technical_name) {
            Ok(s) => s,
            Err(_) => {
                tracing::warn!(
                    technical_name,
                    "stored configuration names an unknown service"
                );
                return None;
            }
        },
        display_name: text("display_name").unwrap_or(technical_name).to_owned(),
        description: text("description").unwrap_or_default().to_owned(),
        no_more_assignable: flag("no_more_assignable"),
        audience,
        add_data,
    };
    Some(config)
}
