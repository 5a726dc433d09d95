//! Bulk assignment (`POST`/`DELETE .../groups/{g}/users/services/`) and the lists of a group's
//! users and of a license's holders: answers per user and item, refusals naming every failing
//! item, the transaction limit stated before anything is written, keys, the audit record, roles,
//! and the pages walked without gap or repeat.

use api_tests::helpers::{Tenant, errors, limited, named};
use api_tests::{Caller, Reply, TestApp};
use serde_json::{Value, json};
use std::collections::BTreeSet;

fn bulk(t: &Tenant, group: &str) -> String {
    format!("/api/v1/tenants/{}/groups/{group}/users/services/", t.id)
}

fn users(t: &Tenant, group: &str) -> String {
    format!("/api/v1/tenants/{}/groups/{group}/users/", t.id)
}

fn holders(t: &Tenant, group: &str, kind: &str, service: &str) -> String {
    format!(
        "/api/v1/tenants/{}/groups/{group}/licenses/{kind}/{service}/holders/",
        t.id
    )
}

fn trail_len(reply: &Reply) -> usize {
    assert_eq!(reply.status, 200, "{}", reply.json);
    reply.json["events"].as_array().map_or(0, Vec::len)
}

async fn events(api: &api_tests::Api, t: &Tenant) -> usize {
    trail_len(
        &api.get(&format!("/api/v1/tenants/{}/audit/?limit=100", t.id))
            .await,
    )
}

/// `{"users": [...]}` of `n` users `u0..` each given `services`.
fn onboarding(prefix: &str, n: usize, services: &[&str]) -> Value {
    json!({"users": (0..n)
        .map(|i| json!({"user_id": format!("{prefix}{i}"), "services": named(services)}))
        .collect::<Vec<_>>()})
}

/// A tenant with Call Waiting (maximum `cw`), Call Forwarding Always (unlimited) and the pack
/// Basic (both, maximum 10) licensed to group `g`.
async fn licensed(api: &api_tests::Api, label: &str, cw: u32) -> Tenant {
    let t = Tenant::new(label);
    t.define(api, "Basic", &["Call Forwarding Always", "Call Waiting"])
        .await;
    t.license(
        api,
        "g",
        json!({
            "userServices": [
                {"name": "Call Waiting", "allocated": limited(cw)},
                {"name": "Call Forwarding Always", "allocated": {"unlimited": true}}],
            "servicePacks": [{"name": "Basic", "allocated": limited(10)}]}),
    )
    .await;
    t
}

#[tokio::test]
async fn one_request_gives_every_user_what_it_names_and_says_what_changed() {
    let app = TestApp::spawn().await;
    let api = app.api();
    let t = licensed(&api, "bulk", 100).await;
    let alice = api
        .post(
            &t.user("g", "alice"),
            &json!({"services": named(&["Call Waiting"])}),
        )
        .await;
    assert_eq!(alice.status, 201, "{}", alice.json);
    let before = events(&api, &t).await;

    let body = json!({"users": [
        {"user_id": "alice", "services": named(&["Call Waiting", "Call Forwarding Always"])},
        {"user_id": "bob", "services": named(&["Call Waiting"]), "servicePacks": named(&["Basic"])},
        {"user_id": "carol", "servicePacks": named(&["Basic"])},
    ]});
    let reply = api.post(&bulk(&t, "g"), &body).await;
    assert_eq!(reply.status, 201, "{}", reply.json);
    assert_eq!(
        reply.json,
        json!({"users": [
            {"user_id": "alice", "services": [
                {"name": "Call Waiting", "status": "already"},
                {"name": "Call Forwarding Always", "status": "assigned"}], "servicePacks": []},
            {"user_id": "bob", "services": [{"name": "Call Waiting", "status": "assigned"}],
             "servicePacks": [{"name": "Basic", "status": "assigned"}]},
            {"user_id": "carol", "services": [],
             "servicePacks": [{"name": "Basic", "status": "assigned"}]},
        ]})
    );
    // Each holder counted once, whatever its routes.
    for (list, name, used) in [
        ("userServices", "Call Waiting", 3),
        ("userServices", "Call Forwarding Always", 3),
        ("servicePacks", "Basic", 2),
    ] {
        assert_eq!(t.in_use(&api, "g", list, name).await, Some(used), "{name}");
    }
    assert_eq!(
        api.get(&t.user("g", "bob")).await.json,
        json!({"services": [{"name": "Call Waiting", "assigned": true}],
               "servicePacks": [{"name": "Basic", "assigned": true}],
               "effectiveServices": [
                   {"name": "Call Forwarding Always", "via": ["Basic"]},
                   {"name": "Call Waiting", "via": ["direct", "Basic"]}]})
    );
    // One audit record for the request, naming every assignment it made.
    assert_eq!(events(&api, &t).await, before + 1);
    let trail = api
        .get(&format!("/api/v1/tenants/{}/audit/?limit=1", t.id))
        .await;
    let event = &trail.json["events"][0];
    assert_eq!(
        event["route"],
        "/api/v1/tenants/{tenant_id}/groups/{group_id}/users/services/"
    );
    assert_eq!(
        event["changes"].as_array().map(Vec::len),
        Some(8),
        "{event}"
    );

    // Sent again: everything is already so, nothing changes, nothing is recorded.
    let again = api.post(&bulk(&t, "g"), &body).await;
    assert_eq!(again.status, 201, "{}", again.json);
    let statuses: BTreeSet<&str> = again.json["users"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|u| {
            u["services"]
                .as_array()
                .into_iter()
                .flatten()
                .chain(u["servicePacks"].as_array().into_iter().flatten())
        })
        .filter_map(|i| i["status"].as_str())
        .collect();
    assert_eq!(statuses, ["already"].into());
    assert_eq!(events(&api, &t).await, before + 1);
    assert_eq!(
        t.in_use(&api, "g", "userServices", "Call Waiting").await,
        Some(3)
    );

    // Taken back from several users at once: what was not held is `already`.
    let back = api
        .delete(
            &bulk(&t, "g"),
            &json!({"users": [
                {"user_id": "bob", "services": named(&["Call Waiting"]), "servicePacks": named(&["Basic"])},
                {"user_id": "carol", "services": named(&["Call Waiting"])},
                {"user_id": "nobody", "servicePacks": named(&["Basic"])},
            ]}),
        )
        .await;
    assert_eq!(back.status, 200, "{}", back.json);
    assert_eq!(
        back.json,
        json!({"users": [
            {"user_id": "bob", "services": [{"name": "Call Waiting", "status": "unassigned"}],
             "servicePacks": [{"name": "Basic", "status": "unassigned"}]},
            {"user_id": "carol", "services": [{"name": "Call Waiting", "status": "already"}], "servicePacks": []},
            {"user_id": "nobody", "services": [], "servicePacks": [{"name": "Basic", "status": "already"}]},
        ]})
    );
    for (list, name, used) in [
        ("userServices", "Call Waiting", 2),
        ("userServices", "Call Forwarding Always", 2),
        ("servicePacks", "Basic", 1),
    ] {
        assert_eq!(t.in_use(&api, "g", list, name).await, Some(used), "{name}");
    }
    assert_eq!(events(&api, &t).await, before + 2);
    app.audit_clean(&t.id).await;
}

#[tokio::test]
async fn a_refusal_names_every_failing_item_with_its_user_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let api = app.api();
    // Call Waiting: 3 units, one in use, so 2 more fit.
    let t = licensed(&api, "bulk409", 3).await;
    let x = api
        .post(
            &t.user("g", "x"),
            &json!({"services": named(&["Call Waiting"])}),
        )
        .await;
    assert_eq!(x.status, 201, "{}", x.json);
    let before = events(&api, &t).await;
    let body = json!({"users": (0..4)
        .map(|i| json!({"user_id": format!("u{i}"),
                        "services": named(&["Call Waiting", "Call Forwarding Busy"])}))
        .collect::<Vec<_>>()});
    let reply = api.post(&bulk(&t, "g"), &body).await;
    assert_eq!(reply.status, 409, "{}", reply.json);
    let got: Vec<(String, String, String, String)> = errors(&reply)
        .iter()
        .map(|e| {
            let text = |k: &str| e[k].as_str().unwrap_or_default().to_owned();
            (text("code"), text("user_id"), text("field"), text("name"))
        })
        .collect();
    let want = |code: &str, u: usize, j: usize, name: &str| {
        (
            code.to_owned(),
            format!("u{u}"),
            format!("users[{u}].services[{j}].name"),
            name.to_owned(),
        )
    };
    // The first two new holders of Call Waiting fit; the others do not. Call Forwarding Busy
    // is not licensed to anyone.
    assert_eq!(
        got,
        [
            want("NOT_LICENSED", 0, 1, "Call Forwarding Busy"),
            want("NOT_LICENSED", 1, 1, "Call Forwarding Busy"),
            want("OVER_LIMIT", 2, 0, "Call Waiting"),
            want("NOT_LICENSED", 2, 1, "Call Forwarding Busy"),
            want("OVER_LIMIT", 3, 0, "Call Waiting"),
            want("NOT_LICENSED", 3, 1, "Call Forwarding Busy"),
        ]
    );
    assert_eq!(errors(&reply)[2]["maximum"], 3);
    assert_eq!(errors(&reply)[2]["inUse"], 1);
    assert_eq!(
        t.in_use(&api, "g", "userServices", "Call Waiting").await,
        Some(1)
    );
    assert_eq!(t.records(&app, "g", |k| k.starts_with("USER#u")).await, 0);
    assert_eq!(events(&api, &t).await, before);

    // A service the configuration blocks, through a pack: named with the pack and the user.
    let config = format!("/api/v1/configs/user_services/{}-cfa/", t.id);
    let blocking = json!({"technical_name": "Call Forwarding Always", "no_more_assignable": true});
    assert_eq!(api.put(&config, &blocking).await.status, 200);
    let reply = api
        .post(
            &bulk(&t, "g"),
            &json!({"users": [
                {"user_id": "p0", "services": named(&["Call Waiting"])},
                {"user_id": "p1", "servicePacks": named(&["Basic"])}]}),
        )
        .await;
    assert_eq!(reply.status, 409, "{}", reply.json);
    let refusal = &errors(&reply)[..];
    assert_eq!(refusal.len(), 1, "{}", reply.json);
    assert_eq!(refusal[0]["code"], "NO_MORE_ASSIGNABLE");
    assert_eq!(refusal[0]["user_id"], "p1");
    assert_eq!(refusal[0]["name"], "Call Forwarding Always");
    assert_eq!(refusal[0]["servicePack"], "Basic");
    assert_eq!(refusal[0]["field"], "users[1].servicePacks[0].name");
    assert_eq!(
        t.in_use(&api, "g", "userServices", "Call Waiting").await,
        Some(1)
    );
    assert_eq!(api.send("DELETE", &config, None).await_empty().await, 204);
    app.audit_clean(&t.id).await;
}

#[tokio::test]
async fn a_request_past_one_transaction_is_refused_before_anything_is_written() {
    let app = TestApp::spawn().await;
    let api = app.api();
    let t = licensed(&api, "bulkmax", 1000).await;
    let two = ["Call Waiting", "Call Forwarding Always"];
    // 50 users with 2 services need 100 holdings: refused as the body is read.
    let reply = api.post(&bulk(&t, "g"), &onboarding("a", 50, &two)).await;
    assert_eq!(reply.status, 400, "{}", reply.json);
    assert_eq!(reply.code(), "TOO_MANY_ITEMS");
    let message = errors(&reply)[0]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(message.contains("the first 47 users fit"), "{message}");
    // 48 users fit without a key (96 holdings, 2 counters, the blocked check, the audit
    // record) but not with one: refused by the store, before it writes.
    let keyed = api
        .send(
            "POST",
            &bulk(&t, "g"),
            Some(&onboarding("b", 48, &two).to_string()),
        )
        .with("Idempotency-Key", "bulk-48")
        .await;
    assert_eq!(keyed.status, 400, "{}", keyed.json);
    let message = errors(&keyed)[0]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(message.contains("needs up to 101 actions"), "{message}");
    assert!(message.contains("the first 47 users fit"), "{message}");
    assert_eq!(t.records(&app, "g", |k| k.starts_with("USER#")).await, 0);
    // The largest request stated: 47 users with 2 services, with a key.
    let largest = api
        .send(
            "POST",
            &bulk(&t, "g"),
            Some(&onboarding("c", 47, &two).to_string()),
        )
        .with("Idempotency-Key", "bulk-47")
        .await;
    assert_eq!(largest.status, 201, "{}", largest.json);
    assert_eq!(
        t.in_use(&api, "g", "userServices", "Call Waiting").await,
        Some(47)
    );
    let plain = api.post(&bulk(&t, "g"), &onboarding("d", 48, &two)).await;
    assert_eq!(plain.status, 201, "{}", plain.json);
    assert_eq!(
        t.in_use(&api, "g", "userServices", "Call Waiting").await,
        Some(95)
    );

    // Bad bodies, each problem named.
    for (body, field) in [
        (json!({}), "users"),
        (json!({"users": []}), "users"),
        (
            json!({"users": [{"services": named(&["Call Waiting"])}]}),
            "users[0].user_id",
        ),
        (
            json!({"users": [{"user_id": "a"}, {"user_id": "a"}]}),
            "users[1].user_id",
        ),
        (
            json!({"users": [{"user_id": "a", "services": named(&["Nope"])}]}),
            "users[0].services[0].name",
        ),
        (
            json!({"users": [{"user_id": "a", "extra": 1}]}),
            "users[0].extra",
        ),
        (json!({"users": [{"user_id": "a/b"}]}), "users[0].user_id"),
    ] {
        let reply = api.post(&bulk(&t, "g"), &body).await;
        assert_eq!(reply.status, 400, "{body}: {}", reply.json);
        assert_eq!(errors(&reply)[0]["field"], field, "{body}: {}", reply.json);
    }
    app.audit_clean(&t.id).await;
}

#[tokio::test]
async fn a_keyed_bulk_request_is_answered_once_however_often_it_is_sent() {
    let app = TestApp::spawn().await;
    let api = app.api();
    let t = licensed(&api, "bulkkey", 100).await;
    let alice = api
        .post(
            &t.user("g", "alice"),
            &json!({"services": named(&["Call Waiting"])}),
        )
        .await;
    assert_eq!(alice.status, 201);
    let before = events(&api, &t).await;
    let body = json!({"users": [
        {"user_id": "alice", "services": named(&["Call Waiting"])},
        {"user_id": "bob", "services": named(&["Call Waiting"])}]})
    .to_string();
    let path = bulk(&t, "g");
    let send = || {
        api.send("POST", &path, Some(&body))
            .with("Idempotency-Key", "onboard-1")
    };
    let first = send().await;
    assert_eq!(first.status, 201, "{}", first.json);
    assert_eq!(first.json["users"][0]["services"][0]["status"], "already");
    assert_eq!(first.json["users"][1]["services"][0]["status"], "assigned");
    // bob now holds it; the replay still gives the first answer.
    let second = send().await;
    assert_eq!(second.status, 201);
    assert_eq!(second.json, first.json);
    assert_eq!(second.header("Idempotent-Replayed"), Some("true"));
    assert_eq!(
        t.in_use(&api, "g", "userServices", "Call Waiting").await,
        Some(2)
    );
    assert_eq!(events(&api, &t).await, before + 1);
}

#[tokio::test]
async fn the_routes_admit_whom_the_group_usage_admits() {
    let app = TestApp::spawn().await;
    let api = app.api();
    let t = licensed(&api, "bulkroles", 100).await;
    let one = json!({"users": [{"user_id": "u", "services": named(&["Call Waiting"])}]});
    let paths = [
        users(&t, "g"),
        holders(&t, "g", "userServices", "call-waiting"),
    ];
    for (caller, allowed) in [
        (Caller::operator(), true),
        (Caller::tenant_admin(&t.id), true),
        (Caller::group_admin(&t.id, "g"), true),
        (Caller::group_admin(&t.id, "other"), false),
        (Caller::tenant_admin("someone-else"), false),
    ] {
        let as_caller = app.as_caller(caller);
        let status = if allowed { 201 } else { 403 };
        assert_eq!(as_caller.post(&bulk(&t, "g"), &one).await.status, status);
        let status = if allowed { 200 } else { 403 };
        assert_eq!(as_caller.delete(&bulk(&t, "g"), &one).await.status, status);
        for path in &paths {
            assert_eq!(as_caller.get(path).await.status, status, "{path}");
        }
    }
    // The single-user routes are still reachable for a user named `services`.
    let named_services = api
        .post(
            &t.user("g", "services"),
            &json!({"services": named(&["Call Waiting"])}),
        )
        .await;
    assert_eq!(named_services.status, 201, "{}", named_services.json);
    assert_eq!(
        api.get(&t.user("g", "services")).await.json["services"],
        json!([{"name": "Call Waiting", "assigned": true}])
    );
    assert_eq!(api.get(&bulk(&t, "g")).await.status, 405);
}

/// Every page of `path` (with `limit`), as (`user_id`, entry) in order; `next` absent exactly
/// on the last page.
async fn walk(api: &api_tests::Api, path: &str, list: &str, limit: usize) -> Vec<(String, Value)> {
    let mut all = Vec::new();
    let mut next: Option<String> = None;
    loop {
        let url = match &next {
            Some(cursor) => format!("{path}?limit={limit}&next={cursor}"),
            None => format!("{path}?limit={limit}"),
        };
        let page = api.get(&url).await;
        assert_eq!(page.status, 200, "{url}: {}", page.json);
        let entries = page.json[list].as_array().cloned().unwrap_or_default();
        assert!(entries.len() <= limit);
        for e in entries {
            all.push((e["user_id"].as_str().unwrap_or_default().to_owned(), e));
        }
        match page.json["next"].as_str() {
            Some(cursor) => next = Some(cursor.to_owned()),
            None => return all,
        }
    }
}

#[tokio::test]
async fn the_users_and_the_holders_of_a_license_are_listed_in_pages() {
    let app = TestApp::spawn().await;
    let api = app.api();
    let t = licensed(&api, "bulklist", 100).await;
    // 23 users with Call Waiting; every third also with Basic; u5 with the pack only.
    let mut entries = Vec::new();
    for i in 0..23 {
        let mut entry = json!({"user_id": format!("u{i:02}")});
        if i != 5 {
            entry["services"] = named(&["Call Waiting"]);
        }
        if i % 3 == 2 {
            entry["servicePacks"] = named(&["Basic"]);
        }
        entries.push(entry);
    }
    let reply = api.post(&bulk(&t, "g"), &json!({"users": entries})).await;
    assert_eq!(reply.status, 201, "{}", reply.json);
    // A user of another group is not listed.
    let other = api
        .post(
            &t.user("h", "stranger"),
            &json!({"services": named(&["Call Waiting"])}),
        )
        .await;
    assert_eq!(other.status, 409); // not licensed there: nothing held

    let listed = walk(&api, &users(&t, "g"), "users", 7).await;
    let ids: Vec<&str> = listed.iter().map(|(u, _)| u.as_str()).collect();
    let want: Vec<String> = (0..23).map(|i| format!("u{i:02}")).collect();
    assert_eq!(ids, want);
    for (user, entry) in &listed {
        let single = api.get(&t.user("g", user)).await.json;
        let mut expected = single.clone();
        expected["user_id"] = json!(user);
        assert_eq!(entry, &expected, "{user}");
    }
    // One page of everything, and the last page without `next`.
    let all = api.get(&format!("{}?limit=100", users(&t, "g"))).await;
    assert_eq!(all.json["users"].as_array().map(Vec::len), Some(23));
    assert!(all.json.get("next").is_none(), "{}", all.json);

    // Holders of Call Waiting, by slug and by name, with their routes.
    let by_slug = walk(
        &api,
        &holders(&t, "g", "userServices", "call-waiting"),
        "holders",
        4,
    )
    .await;
    assert_eq!(by_slug.len(), 23);
    for (user, entry) in &by_slug {
        let i: usize = user[1..].parse().unwrap_or_default();
        let via = match (i == 5, i % 3 == 2) {
            (true, _) => json!(["Basic"]),
            (false, true) => json!(["direct", "Basic"]),
            (false, false) => json!(["direct"]),
        };
        assert_eq!(entry["via"], via, "{user}");
    }
    let by_name = api
        .get(&holders(&t, "g", "userServices", "Call%20Waiting"))
        .await;
    assert_eq!(by_name.status, 200);
    assert_eq!(by_name.json["name"], "Call Waiting");
    assert_eq!(by_name.json["holders"].as_array().map(Vec::len), Some(23));
    let pack = walk(
        &api,
        &holders(&t, "g", "servicePacks", "Basic"),
        "holders",
        3,
    )
    .await;
    let pack_ids: Vec<&str> = pack.iter().map(|(u, _)| u.as_str()).collect();
    assert_eq!(pack_ids, ["u02", "u05", "u08", "u11", "u14", "u17", "u20"]);
    assert!(pack.iter().all(|(_, e)| e["via"] == json!(["direct"])));
    let none = api
        .get(&holders(&t, "g", "userServices", "call-forwarding-busy"))
        .await;
    assert_eq!(
        none.json,
        json!({"name": "Call Forwarding Busy", "holders": []})
    );

    // Bad parameters and unknown names.
    for query in ["limit=0", "limit=101", "limit=x", "next=zz", "next=23"] {
        let reply = api.get(&format!("{}?{query}", users(&t, "g"))).await;
        assert_eq!(reply.status, 400, "{query}");
        assert_eq!(reply.code(), "INVALID_QUERY");
    }
    assert_eq!(
        api.get(&holders(&t, "g", "groupServices", "hunt-group"))
            .await
            .status,
        404
    );
    assert_eq!(
        api.get(&holders(&t, "g", "userServices", "nope"))
            .await
            .status,
        404
    );
    let empty = api.get(&users(&t, "nobody")).await;
    assert_eq!(empty.json, json!({"users": []}));
}

#[tokio::test]
async fn below_usage_names_where_the_holders_are_listed() {
    let app = TestApp::spawn().await;
    let api = app.api();
    let t = licensed(&api, "bulkbelow", 100).await;
    let reply = api
        .post(&bulk(&t, "g"), &onboarding("u", 3, &["Call Waiting"]))
        .await;
    assert_eq!(reply.status, 201, "{}", reply.json);
    let lower = api
        .put(
            &t.group_licenses("g"),
            &json!({"userServices": [{"name": "Call Waiting", "allocated": limited(2)}]}),
        )
        .await;
    assert_eq!(lower.status, 409, "{}", lower.json);
    let refusal = &errors(&lower)[0];
    assert_eq!(refusal["code"], "BELOW_USAGE");
    let path = format!(
        "/api/v1/tenants/{}/groups/g/licenses/userServices/call-waiting/holders/",
        t.id
    );
    assert_eq!(refusal["holders"], path.as_str());
    assert!(
        refusal["message"]
            .as_str()
            .unwrap_or_default()
            .contains(&path)
    );
    let listed = api.get(&path).await;
    assert_eq!(listed.json["holders"].as_array().map(Vec::len), Some(3));
}
