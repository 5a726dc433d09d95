//! The helpers the tests share: request bodies, reading answers, a tenant's paths and steps,
//! and records read straight from the table.

use crate::client::{Api, Reply};
use crate::harness::{TestApp, unique};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use licensing::domain::{
    Allocation, GroupRef, GroupService, Licensable, License, PackName, UserService,
};
use licensing::store::dynamo::keys::{group_pk, license_sk};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::collections::HashMap;

/// `[{"name": a}, {"name": b}, ...]`: the names of a usage body.
pub fn named(names: &[&str]) -> Value {
    Value::Array(names.iter().map(|n| json!({"name": n})).collect())
}

/// `{"unlimited": false, "maximum": max}`.
pub fn limited(max: u32) -> Value {
    json!({"unlimited": false, "maximum": max})
}

/// `{"unlimited": true}`.
pub fn unlimited() -> Value {
    json!({"unlimited": true})
}

/// `{"name", "allocated"}`: an entry of a licenses PUT.
pub fn license(name: &str, allocated: Value) -> Value {
    json!({"name": name, "allocated": allocated})
}

/// The `errors` of an error answer.
pub fn errors(reply: &Reply) -> Vec<Value> {
    reply.json["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("an error body: {} {}", reply.status, reply.json))
        .clone()
}

/// Each error's `(code, field, name)`, every message checked to be a sentence.
pub fn error_fields(reply: &Reply) -> Vec<(String, Option<String>, Option<String>)> {
    errors(reply)
        .iter()
        .map(|e| {
            assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()), "{e}");
            let text = |key: &str| e[key].as_str().map(str::to_owned);
            (
                text("code").expect("an error code"),
                text("field"),
                text("name"),
            )
        })
        .collect()
}

/// The entry named `name` of a list of a licenses answer.
pub fn entry<'a>(list: &'a Value, name: &str) -> &'a Value {
    list.as_array()
        .unwrap_or_else(|| panic!("a list: {list}"))
        .iter()
        .find(|e| e["name"] == name)
        .unwrap_or_else(|| panic!("{name} is listed in {list}"))
}

/// How many answers had each status and error code.
pub fn tally(replies: &[Reply]) -> BTreeMap<(u16, String), usize> {
    let mut tally = BTreeMap::new();
    for r in replies {
        *tally.entry((r.status, r.code().to_owned())).or_default() += 1;
    }
    tally
}

/// A catalog user service, as a licensable item.
pub fn user(name: &str) -> Licensable {
    Licensable::User(UserService::parse(name).expect("a catalog user service"))
}

/// A catalog group service, as a licensable item.
pub fn group_service(name: &str) -> Licensable {
    Licensable::Group(GroupService::parse(name).expect("a catalog group service"))
}

/// A pack, as a licensable item.
pub fn pack(name: &str) -> Licensable {
    Licensable::Pack(PackName::parse(name).expect("a pack name"))
}

/// The path of a group's licenses.
pub fn group_licenses_path(tenant: &str, group: &str) -> String {
    format!("/api/v1/tenants/{tenant}/groups/{group}/licenses/")
}

/// A tenant of a test's own, with the paths of its routes and the steps tests share.
pub struct Tenant {
    pub id: String,
}

impl Tenant {
    pub fn new(label: &str) -> Self {
        Tenant { id: unique(label) }
    }

    pub fn licenses(&self) -> String {
        format!("/api/v1/tenants/{}/licenses/", self.id)
    }

    pub fn packs(&self) -> String {
        format!("/api/v1/tenants/{}/service_packs/", self.id)
    }

    pub fn pack(&self, name: &str) -> String {
        format!("{}{}/", self.packs(), name.replace(' ', "%20"))
    }

    pub fn group_licenses(&self, group: &str) -> String {
        format!("/api/v1/tenants/{}/groups/{group}/licenses/", self.id)
    }

    pub fn services(&self, group: &str) -> String {
        format!("/api/v1/tenants/{}/groups/{group}/services/", self.id)
    }

    /// The instances of a group service (its name encoded for the path).
    pub fn instances(&self, group: &str, service: &str) -> String {
        format!(
            "/api/v1/tenants/{}/groups/{group}/services/{}/instances/",
            self.id,
            service.replace(' ', "%20")
        )
    }

    pub fn user(&self, group: &str, user: &str) -> String {
        format!(
            "/api/v1/tenants/{}/groups/{group}/users/{user}/services/",
            self.id
        )
    }

    /// Defines a service pack (201 expected).
    pub async fn define(&self, api: &Api, pack: &str, services: &[&str]) {
        let body = serde_json::json!({"name": pack, "services": services});
        let reply = api.post(&self.packs(), &body).await;
        assert_eq!(reply.status, 201, "{}", reply.json);
    }

    /// PUTs the group's licenses (200 expected).
    pub async fn license(&self, api: &Api, group: &str, body: serde_json::Value) {
        let reply = api.put(&self.group_licenses(group), &body).await;
        assert_eq!(reply.status, 200, "{}", reply.json);
    }

    /// How many records of the group's partition have a sort key that satisfies `keep`.
    pub async fn records(&self, app: &TestApp, group: &str, keep: impl Fn(&str) -> bool) -> usize {
        let group = crate::examples::group_ref(&self.id, group);
        partition_keys(&app.client, &app.licenses_table, &group)
            .await
            .iter()
            .filter(|k| keep(k))
            .count()
    }

    /// `inUse` of an entry of the group's licenses (None when not licensed).
    pub async fn in_use(&self, api: &Api, group: &str, list: &str, name: &str) -> Option<u64> {
        let reply = api.get(&self.group_licenses(group)).await;
        reply.json[list]
            .as_array()
            .unwrap_or_else(|| panic!("a licenses body: {}", reply.json))
            .iter()
            .find(|e| e["name"] == name)
            .and_then(|e| e["inUse"].as_u64())
    }
}

/// The stored record, read straight from the table, bypassing the API.
pub async fn stored_license(
    client: &Client,
    table: &str,
    group: &GroupRef,
    item: &Licensable,
) -> Option<License> {
    let out = client
        .get_item()
        .table_name(table)
        .key("PK", AttributeValue::S(group_pk(group)))
        .key("SK", AttributeValue::S(license_sk(item)))
        .consistent_read(true)
        .send()
        .await
        .expect("DynamoDB Local answers GetItem");
    out.item().map(read_license)
}

/// Every sort key of the group's partition, read straight from the table: the records a test
/// counts against `inUse`.
pub async fn partition_keys(client: &Client, table: &str, group: &GroupRef) -> Vec<String> {
    let mut keys = Vec::new();
    let mut start = None;
    loop {
        let page = client
            .query()
            .table_name(table)
            .key_condition_expression("PK = :pk")
            .expression_attribute_values(":pk", AttributeValue::S(group_pk(group)))
            .consistent_read(true)
            .set_exclusive_start_key(start.take())
            .send()
            .await
            .expect("DynamoDB Local answers Query");
        for item in page.items() {
            if let Some(AttributeValue::S(sk)) = item.get("SK") {
                keys.push(sk.clone());
            }
        }
        match page.last_evaluated_key {
            Some(k) if !k.is_empty() => start = Some(k),
            _ => return keys,
        }
    }
}

/// A license record as the table stores it (`unlimited`, `maximum`, `inUse`, `assigned`):
/// the tests read and write the format themselves, independently of the store's codec.
pub fn license_record(license: &License) -> HashMap<String, AttributeValue> {
    let number = |n: u32| AttributeValue::N(n.to_string());
    let mut record = HashMap::from([
        (
            "unlimited".to_owned(),
            AttributeValue::Bool(license.allocation == Allocation::Unlimited),
        ),
        ("inUse".to_owned(), number(license.in_use)),
    ]);
    if let Allocation::Limited(max) = license.allocation {
        record.insert("maximum".to_owned(), number(max));
    }
    if license.assigned {
        record.insert("assigned".to_owned(), AttributeValue::Bool(true));
    }
    record
}

/// A stored license record read back (see [`license_record`]).
pub fn read_license(record: &HashMap<String, AttributeValue>) -> License {
    let number = |name: &str| match record.get(name) {
        Some(AttributeValue::N(n)) => n.parse().unwrap_or_else(|_| panic!("{name}: {n}")),
        _ => 0,
    };
    let flag = |name: &str| matches!(record.get(name), Some(AttributeValue::Bool(true)));
    License {
        allocation: if flag("unlimited") {
            Allocation::Unlimited
        } else {
            Allocation::Limited(number("maximum"))
        },
        in_use: number("inUse"),
        assigned: flag("assigned"),
    }
}

/// A write outside any request: the request deadline's budget, no idempotency key.
pub fn write_ctx() -> licensing::store::WriteCtx {
    licensing::store::WriteCtx::within(std::time::Duration::from_secs(8))
}

/// An API Gateway v2 event of `events/`.
pub fn fixture(file: &str) -> String {
    let path = crate::harness::root().join("events").join(file);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}
