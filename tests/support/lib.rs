//! Support for the black-box tests: where the local stack is, an HTTP client for it, the
//! documented example state, and direct DynamoDB access to check what a request stored.
//!
//! The stack is started by `scripts/stack.sh test` (what `make test` runs), which passes
//! `API_URL` (the local server), `AWS_ENDPOINT_URL_DYNAMODB`, `LICENSES_TABLE` and
//! `USER_SERVICES_TABLE` to the tests.

pub mod faults;
pub mod model;
pub mod schema;
pub mod server;
pub mod spec;
pub mod store;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use licensing::domain::{
    Allocation, Assignable, Audience, Authority, GroupId, GroupRef, GroupService, InstanceName,
    Licensable, License, LicenseChange, PackDefinition, PackName, TenantId, UserId, UserService,
    UserServiceConfig,
};
use licensing::store::dynamo::DynamoConfigStore;
use licensing::store::dynamo::keys::{group_pk, license_sk};
use licensing::store::dynamo::{DynamoStore, decode_license};
use licensing::store::{LicenseStore, TenantStore, UsageStore};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

pub async fn dynamo_client() -> Client {
    licensing::lambda::desktop_client().await
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run the tests through `make test` (scripts/stack.sh test)")
    })
}

pub fn licenses_table() -> String {
    env("LICENSES_TABLE")
}

pub fn user_services_table() -> String {
    env("USER_SERVICES_TABLE")
}

/// A tenant id no other test (or earlier run against a kept store) uses.
pub fn unique_tenant(label: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "{label}-{}-{nanos}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

pub fn group_ref(tenant: &str, group: &str) -> GroupRef {
    GroupRef {
        tenant: TenantId::parse(tenant).expect("test tenant id is valid"),
        group: GroupId::parse(group).expect("test group id is valid"),
    }
}

/// The group of the README's curl examples.
pub fn example_group() -> GroupRef {
    group_ref("foo", "foogroup")
}

/// The documented user-services configuration object, as instance `For_HG`.
pub fn example_config() -> UserServiceConfig {
    UserServiceConfig {
        instance_name: InstanceName::parse("For_HG").expect("instance name"),
        technical_name: UserService::parse("Basic Call Logs").expect("catalog user service"),
        display_name: "Basic Call Logs".into(),
        description: String::new(),
        no_more_assignable: false,
        audience: Audience {
            for_hg: true,
            ..Audience::default()
        },
        add_data: Default::default(),
    }
}

/// The documented service pack.
pub fn example_pack() -> PackDefinition {
    PackDefinition {
        name: PackName::parse("Basic CFx").expect("pack name"),
        description: "Call forwarding bundle".into(),
        services: ["Call Forwarding Always", "Call Forwarding Busy"]
            .into_iter()
            .map(|n| UserService::parse(n).expect("catalog user service"))
            .collect(),
    }
}

/// The licenses behind the documented GET example, with the usage each ends up with.
pub fn example_licenses() -> Vec<(Licensable, License)> {
    let user = |n| Licensable::User(UserService::parse(n).expect("catalog user service"));
    let group = |n| Licensable::Group(GroupService::parse(n).expect("catalog group service"));
    let license = |allocation, in_use, assigned| License {
        allocation,
        in_use,
        assigned,
    };
    vec![
        (
            user("Call Forwarding Always"),
            license(Allocation::Unlimited, 2, false),
        ),
        (
            user("Call Forwarding Busy"),
            license(Allocation::Limited(7), 4, false),
        ),
        (group("Hunt Group"), license(Allocation::Unlimited, 4, true)),
        (
            group("Voice Messaging Group"),
            license(Allocation::Limited(1), 0, false),
        ),
        (
            Licensable::Pack(PackName::parse("Basic CFx").expect("pack name")),
            license(Allocation::Limited(5), 0, false),
        ),
    ]
}

/// Builds the documented example in `group` through the store, usage included: users assigned
/// "Call Forwarding Always" (2) and "Call Forwarding Busy" (4), and four Hunt Group instances, so
/// every `inUse` is backed by its records. With `if_absent`, a group that holds anything at all
/// is left alone.
pub async fn seed_example_group(
    client: &Client,
    table: &str,
    group: &GroupRef,
    if_absent: bool,
) -> Result<(), String> {
    if if_absent && !partition_keys(client, table, group).await.is_empty() {
        return Ok(());
    }
    let store = DynamoStore::new(client.clone(), table);
    // Assignments check the services the configuration blocks.
    let configs = DynamoConfigStore::new(client.clone(), user_services_table());
    // A pack is licensed only once its tenant defines it.
    store
        .create_pack(&write_ctx(), &group.tenant, &example_pack())
        .await
        .map_err(|e| e.to_string())?;
    let changes: Vec<LicenseChange> = example_licenses()
        .into_iter()
        .map(|(item, license)| LicenseChange {
            item,
            allocation: license.allocation,
            auto_assign: false,
        })
        .collect();
    let failed = |e: licensing::store::StoreError| e.to_string();
    store
        .update_group_licenses(&write_ctx(), group, &changes, Authority::Operator, None)
        .await
        .map_err(failed)?;
    let service = |n| Assignable::Service(UserService::parse(n).expect("catalog user service"));
    for i in 1..=4 {
        let mut items = vec![service("Call Forwarding Busy")];
        if i <= 2 {
            items.push(service("Call Forwarding Always"));
        }
        let user = UserId::parse(format!("user{i}@example.com")).expect("user id");
        store
            .assign_to_user(&write_ctx(), group, &user, &items, &configs)
            .await
            .map_err(failed)?;
    }
    let hunt_group = GroupService::parse("Hunt Group").expect("catalog group service");
    for name in ["Sales", "Support", "Billing", "Reception"] {
        let name = InstanceName::parse(name).expect("instance name");
        store
            .add_instance(&write_ctx(), group, hunt_group, &name)
            .await
            .map_err(failed)?;
    }
    Ok(())
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
    out.item().map(decode_license)
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

/// A tenant of a test's own, with the paths of its routes and the steps tests share.
pub struct Tenant {
    pub id: String,
}

impl Tenant {
    pub fn new(label: &str) -> Self {
        Tenant {
            id: unique_tenant(label),
        }
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

/// The caller a test plays: the claims a verified JWT would carry.
#[derive(Clone, Debug)]
pub enum Caller {
    /// A bearer token that is not a JWT: refused as API Gateway's authorizer would.
    Unverified,
    /// Claims: `scope` (space-separated scopes), `tenant_id`, `group_id`, ...
    Token(serde_json::Map<String, serde_json::Value>),
}

impl Caller {
    pub fn operator() -> Self {
        Self::token("licenses/operator", None, None)
    }

    pub fn tenant_admin(tenant: &str) -> Self {
        Self::token("licenses/tenant-admin", Some(tenant), None)
    }

    pub fn group_admin(tenant: &str, group: &str) -> Self {
        Self::token("licenses/group-admin", Some(tenant), Some(group))
    }

    pub fn token(scope: &str, tenant: Option<&str>, group: Option<&str>) -> Self {
        let mut claims = serde_json::Map::new();
        claims.insert("sub".into(), "api-tests".into());
        claims.insert("scope".into(), scope.into());
        if let Some(t) = tenant {
            claims.insert("tenant_id".into(), t.into());
        }
        if let Some(g) = group {
            claims.insert("group_id".into(), g.into());
        }
        Caller::Token(claims)
    }

    /// The `Authorization` header: an unsigned JWT carrying the claims (the local server
    /// decodes it without verification, as the README says).
    pub fn authorization(&self) -> String {
        use base64::Engine;
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        match self {
            Caller::Unverified => "Bearer not-a-jwt".to_owned(),
            Caller::Token(claims) => format!(
                "Bearer {}.{}.unsigned",
                b64(r#"{"alg":"none","typ":"JWT"}"#),
                b64(&serde_json::Value::Object(claims.clone()).to_string())
            ),
        }
    }
}

/// The API under test, over real HTTP: the local server (`local-api`, what `make run` serves)
/// that `scripts/stack.sh test` started, at `API_URL`. The caller's claims travel as a bearer
/// token, so every route runs with authorization on.
pub struct Api {
    base: String,
    http: reqwest::Client,
    caller: Caller,
}

pub struct Reply {
    pub status: u16,
    pub allow: Option<String>,
    pub content_type: Option<String>,
    /// The body as JSON (`null` for an empty body).
    pub json: serde_json::Value,
    pub headers: reqwest::header::HeaderMap,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The `code` of the first error item.
    pub fn code(&self) -> &str {
        self.json["errors"][0]["code"].as_str().unwrap_or_default()
    }
}

impl Api {
    /// An operator: may do everything.
    pub fn from_env() -> Self {
        Self::as_caller(Caller::operator())
    }

    pub fn as_caller(caller: Caller) -> Self {
        Self {
            base: env("API_URL").trim_end_matches('/').to_owned(),
            http: reqwest::Client::new(),
            caller,
        }
    }

    /// Another server (one a test started) as `caller`.
    pub fn at(base: &str, caller: Caller) -> Self {
        Self {
            base: base.trim_end_matches('/').to_owned(),
            http: reqwest::Client::new(),
            caller,
        }
    }

    /// The server's base URL, for requests built by hand.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    pub fn group_licenses_path(tenant: &str, group: &str) -> String {
        format!("/api/v1/tenants/{tenant}/groups/{group}/licenses/")
    }

    /// Sends `method path` with an optional raw body; `path` is sent as given (already encoded,
    /// with any query string).
    pub fn send<'a>(&'a self, method: &str, path: &'a str, body: Option<&str>) -> Sending<'a> {
        Sending {
            api: self,
            method: reqwest::Method::from_bytes(method.as_bytes()).expect("a valid method"),
            path,
            body: body.map(str::to_owned),
            headers: Vec::new(),
        }
    }
}

/// A request on its way: await it for a JSON [`Reply`], or [`Sending::await_empty`] for the
/// status of a response without a body (a 204).
pub struct Sending<'a> {
    api: &'a Api,
    method: reqwest::Method,
    path: &'a str,
    body: Option<String>,
    headers: Vec<(String, String)>,
}

impl Sending<'_> {
    /// Adds a request header (`Idempotency-Key`, `If-Match`, ...).
    pub fn with(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    async fn answer(self) -> (u16, reqwest::header::HeaderMap, String) {
        let mut request = self
            .api
            .http
            .request(self.method, format!("{}{}", self.api.base, self.path))
            .header("authorization", self.api.caller.authorization());
        for (name, value) in &self.headers {
            request = request.header(name, value);
        }
        if let Some(body) = self.body {
            request = request
                .header("content-type", "application/json")
                .body(body);
        }
        let response = request.send().await.expect("the local server answers");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.text().await.expect("a response body");
        (status, headers, body)
    }

    /// Sends the request and returns the status, checking that a 204 has no body.
    pub async fn await_empty(self) -> u16 {
        let (status, _, body) = self.answer().await;
        if status == 204 {
            assert!(body.is_empty(), "a 204 has no body");
        }
        status
    }
}

impl<'a> std::future::IntoFuture for Sending<'a> {
    type Output = Reply;
    type IntoFuture = std::pin::Pin<Box<dyn std::future::Future<Output = Reply> + Send + 'a>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            let path = self.path;
            let (status, headers, body) = self.answer().await;
            let header = |name: &str| {
                headers
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
            };
            let json = if body.is_empty() {
                serde_json::Value::Null
            } else {
                serde_json::from_str(&body)
                    .unwrap_or_else(|e| panic!("response to {path} is not JSON ({e}): {body}"))
            };
            Reply {
                status,
                allow: header("allow"),
                content_type: header("content-type"),
                json,
                headers,
            }
        })
    }
}

impl Api {
    pub async fn get(&self, path: &str) -> Reply {
        self.send("GET", path, None).await
    }

    /// [`Api::get`] of a path built on the spot (for futures that outlive their caller's
    /// temporaries).
    pub async fn get_owned(&self, path: String) -> Reply {
        self.send("GET", &path, None).await
    }

    pub async fn put(&self, path: &str, body: &serde_json::Value) -> Reply {
        self.send("PUT", path, Some(&body.to_string())).await
    }

    pub async fn post(&self, path: &str, body: &serde_json::Value) -> Reply {
        self.send("POST", path, Some(&body.to_string())).await
    }

    pub async fn delete(&self, path: &str, body: &serde_json::Value) -> Reply {
        self.send("DELETE", path, Some(&body.to_string())).await
    }
}

/// A write outside any request: the request deadline's budget, no idempotency key.
fn write_ctx() -> licensing::store::WriteCtx {
    licensing::store::WriteCtx::within(std::time::Duration::from_secs(8))
}
