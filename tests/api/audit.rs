//! The audit trail: every accepted write leaves one record, written in its own transaction, and
//! nothing else does; read back through the routes with each role, paged without gap or repeat.

use api_tests::helpers::{Tenant, errors, named};
use api_tests::{Caller, Reply, TestApp, unique};
use serde_json::{Value, json};
use std::collections::BTreeSet;

fn trail(t: &Tenant) -> String {
    format!("/api/v1/tenants/{}/audit/", t.id)
}

const CONFIGS_TRAIL: &str = "/api/v1/configs/user_services/audit/";

fn events(reply: &Reply) -> Vec<Value> {
    assert_eq!(reply.status, 200, "{}", reply.json);
    reply.json["events"]
        .as_array()
        .unwrap_or_else(|| panic!("an events page: {}", reply.json))
        .clone()
}

/// The (method, route) of each event, newest first.
fn routes(events: &[Value]) -> Vec<(String, String)> {
    events
        .iter()
        .map(|e| {
            (
                e["method"].as_str().unwrap_or_default().to_owned(),
                e["route"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn each_accepted_write_leaves_one_record_of_who_changed_what_and_refusals_none() {
    let app = TestApp::spawn().await;
    let api = app.api();
    let t = Tenant::new("audit");
    t.define(&api, "Basic", &["Call Forwarding Always", "Call Waiting"])
        .await;
    let licenses = json!({
        "userServices": [
            {"name": "Call Forwarding Always", "allocated": {"unlimited": false, "maximum": 5}},
            {"name": "Call Waiting", "allocated": {"unlimited": true}}],
        "groupServices": [{"name": "Hunt Group", "allocated": {"unlimited": false, "maximum": 2}}],
        "servicePacks": [{"name": "Basic", "allocated": {"unlimited": false, "maximum": 3}}]});
    // Sent twice with one key: the replay leaves no second record.
    for _ in 0..2 {
        let put = api
            .send("PUT", &t.group_licenses("g1"), Some(&licenses.to_string()))
            .with("Idempotency-Key", "audit-put")
            .await;
        assert_eq!(put.status, 200, "{}", put.json);
    }
    let alice = api
        .post(
            &t.user("g1", "alice"),
            &json!({"services": named(&["Call Waiting"])}),
        )
        .await;
    assert_eq!(alice.status, 201, "{}", alice.json);
    let bob = api
        .post(
            &t.user("g1", "bob"),
            &json!({"servicePacks": named(&["Basic"])}),
        )
        .await;
    assert_eq!(bob.status, 201, "{}", bob.json);
    let sales = api
        .post(&t.instances("g1", "Hunt Group"), &json!({"name": "Sales"}))
        .await;
    assert_eq!(sales.status, 201, "{}", sales.json);
    // Refused writes: not licensed, and a tenant admin's PUT of the tenant's own licenses.
    let refused = api
        .post(
            &t.user("g1", "carol"),
            &json!({"services": named(&["Call Forwarding Busy"])}),
        )
        .await;
    assert_eq!(refused.status, 409, "{}", refused.json);
    let forbidden = app
        .as_caller(Caller::tenant_admin(&t.id))
        .put(&t.licenses(), &json!({"userServices": []}))
        .await;
    assert_eq!(forbidden.status, 403);
    // Changing nothing changes nothing: alice already holds Call Waiting.
    let again = api
        .post(
            &t.user("g1", "alice"),
            &json!({"services": named(&["Call Waiting"])}),
        )
        .await;
    assert!(again.status < 300, "{}", again.json);

    let all = events(&api.get(&trail(&t)).await);
    let group = "/api/v1/tenants/{tenant_id}/groups/{group_id}";
    let user = format!("{group}/users/{{user_id}}/services/");
    assert_eq!(
        routes(&all),
        [
            (
                "POST".into(),
                format!("{group}/services/{{service}}/instances/")
            ),
            ("POST".into(), user.clone()),
            ("POST".into(), user),
            ("PUT".into(), format!("{group}/licenses/")),
            (
                "POST".into(),
                "/api/v1/tenants/{tenant_id}/service_packs/".into()
            ),
        ]
    );
    for event in &all {
        assert_eq!(
            (&event["sub"], &event["role"], &event["tenant_id"]),
            (&json!("api-tests"), &json!("operator"), &json!(t.id)),
            "{event}"
        );
        assert!(event["request_id"].as_str().is_some_and(|r| !r.is_empty()));
        assert!(
            event["at"]
                .as_str()
                .is_some_and(|a| a.ends_with('Z') && a.len() == 24)
        );
    }
    assert_eq!(all[0]["group_id"], "g1");
    assert_eq!(
        all[0]["changes"],
        json!([{"op": "added", "kind": "groupServices", "name": "Hunt Group", "instance": "Sales"}])
    );
    // The pack assignment and the services it brought.
    assert_eq!(
        all[1]["changes"],
        json!([
            {"op": "added", "kind": "servicePacks", "name": "Basic", "user_id": "bob"},
            {"op": "added", "kind": "userServices", "name": "Call Forwarding Always", "user_id": "bob", "via": "Basic"},
            {"op": "added", "kind": "userServices", "name": "Call Waiting", "user_id": "bob", "via": "Basic"}])
    );
    assert_eq!(
        all[2]["changes"],
        json!([{"op": "added", "kind": "userServices", "name": "Call Waiting", "user_id": "alice", "via": "direct"}])
    );
    let put = all[3]["changes"].as_array().unwrap();
    assert_eq!(put.len(), 4);
    assert!(put.contains(
        &json!({"op": "set", "kind": "userServices", "name": "Call Forwarding Always",
        "before": null, "after": {"unlimited": false, "maximum": 5}})
    ));
    assert!(all[4].get("group_id").is_none());

    // Unassigning the pack gives its services back, and says so.
    let gone = api
        .delete(
            &t.user("g1", "bob"),
            &json!({"servicePacks": named(&["Basic"])}),
        )
        .await;
    assert!(gone.status < 300, "{}", gone.json);
    let latest = events(&api.get(&format!("{}?limit=1", trail(&t))).await);
    assert_eq!(
        latest[0]["changes"],
        json!([
            {"op": "removed", "kind": "servicePacks", "name": "Basic", "user_id": "bob"},
            {"op": "removed", "kind": "userServices", "name": "Call Forwarding Always", "user_id": "bob", "via": "Basic"},
            {"op": "removed", "kind": "userServices", "name": "Call Waiting", "user_id": "bob", "via": "Basic"}])
    );

    // Roles: the tenant's admin reads it all; a group admin its group's only, forced; others
    // nothing.
    let tenant_admin = app.as_caller(Caller::tenant_admin(&t.id));
    assert_eq!(events(&tenant_admin.get(&trail(&t)).await).len(), 6);
    let group_admin = app.as_caller(Caller::group_admin(&t.id, "g1"));
    let own = events(&group_admin.get(&trail(&t)).await);
    assert_eq!(own.len(), 5);
    assert!(own.iter().all(|e| e["group_id"] == "g1"));
    let other_group = group_admin.get(&format!("{}?group_id=g2", trail(&t))).await;
    assert_eq!(other_group.status, 403);
    for stranger in [
        Caller::tenant_admin("someone-else"),
        Caller::group_admin("someone-else", "g1"),
    ] {
        assert_eq!(app.as_caller(stranger).get(&trail(&t)).await.status, 403);
    }
    // Configuration trail: operators only.
    assert_eq!(tenant_admin.get(CONFIGS_TRAIL).await.status, 403);
}

#[tokio::test]
async fn only_what_changed_is_recorded() {
    let app = TestApp::spawn().await;
    let api = app.api();
    let t = Tenant::new("audit-noop");
    // auto_assign of a licensed group service: the license and the assignment.
    let body = json!({"groupServices": [
        {"name": "Call Park", "allocated": {"unlimited": false, "maximum": 1}}],
        "auto_assign": true});
    t.license(&api, "g", body.clone()).await;
    let first = events(&api.get(&trail(&t)).await);
    assert_eq!(
        first[0]["changes"],
        json!([
            {"op": "set", "kind": "groupServices", "name": "Call Park",
             "before": null, "after": {"unlimited": false, "maximum": 1}},
            {"op": "added", "kind": "groupServices", "name": "Call Park"}])
    );
    // The same PUT again, and assigning what is assigned, change nothing: no event.
    t.license(&api, "g", body).await;
    let again = api
        .post(
            &t.services("g"),
            &json!({"services": named(&["Call Park"])}),
        )
        .await;
    assert!(again.status < 300, "{}", again.json);
    assert_eq!(events(&api.get(&trail(&t)).await).len(), 1);
    // A group service assigned by the POST itself is recorded, the one already assigned not.
    t.license(
        &api,
        "g",
        json!({"groupServices": [{"name": "Hunt Group", "allocated": {"unlimited": true}}]}),
    )
    .await;
    let both = api
        .post(
            &t.services("g"),
            &json!({"services": named(&["Call Park", "Hunt Group"])}),
        )
        .await;
    assert!(both.status < 300, "{}", both.json);
    let latest = events(&api.get(&trail(&t)).await);
    assert_eq!(latest.len(), 3);
    assert_eq!(
        latest[0]["changes"],
        json!([{"op": "added", "kind": "groupServices", "name": "Hunt Group"}])
    );
    // A window that ends before it starts is the client's mistake.
    let backwards = api
        .get(&format!(
            "{}?since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z",
            trail(&t)
        ))
        .await;
    assert_eq!(backwards.status, 400);
    assert_eq!(errors(&backwards)[0]["field"], "until");
    let far = api
        .get(&format!("{}?until=2400-01-01T00:00:00Z", trail(&t)))
        .await;
    assert_eq!(events(&far).len(), 3);
}

#[tokio::test]
async fn configuration_changes_are_audited_for_operators() {
    let app = TestApp::spawn().await;
    let api = app.api();
    let name = unique("cfg");
    let object = json!({"instance_name": name, "technical_name": "Call Waiting",
        "display_name": "CW", "for_hg": true});
    assert_eq!(
        api.post("/api/v1/configs/user_services/", &object)
            .await
            .status,
        201
    );
    let path = format!("/api/v1/configs/user_services/{name}/");
    let replaced = api
        .put(
            &path,
            &json!({"technical_name": "Call Waiting", "display_name": "Waiting"}),
        )
        .await;
    assert_eq!(replaced.status, 200, "{}", replaced.json);
    let bad = api
        .put(&path, &json!({"technical_name": "No Such Service"}))
        .await;
    assert_eq!(bad.status, 400);
    assert_eq!(api.send("DELETE", &path, None).await_empty().await, 204);
    let reserved = api
        .post(
            "/api/v1/configs/user_services/",
            &json!({"instance_name": "audit", "technical_name": "Call Waiting"}),
        )
        .await;
    assert_eq!(errors(&reserved)[0]["field"], "instance_name");

    let all = events(&api.get(CONFIGS_TRAIL).await);
    let ops: Vec<&Value> = all.iter().map(|e| &e["changes"][0]["op"]).collect();
    assert_eq!(
        ops,
        [&json!("deleted"), &json!("replaced"), &json!("created")]
    );
    assert_eq!(all[1]["changes"][0]["before"]["display_name"], "CW");
    assert_eq!(all[1]["changes"][0]["after"]["display_name"], "Waiting");
    assert_eq!(all[2]["changes"][0]["after"]["for_hg"], true);
    assert_eq!(all[2]["route"], "/api/v1/configs/user_services/");
    assert!(all.iter().all(|e| e.get("tenant_id").is_none()));
    for caller in [Caller::tenant_admin("t"), Caller::group_admin("t", "g")] {
        assert_eq!(app.as_caller(caller).get(CONFIGS_TRAIL).await.status, 403);
    }
}

#[tokio::test]
async fn the_cursor_walks_a_long_history_without_gap_or_repeat() {
    let app = TestApp::spawn().await;
    let api = app.api();
    let t = Tenant::new("audit-walk");
    // 120 changes, alternating between two groups; change i sets Call Return's maximum to i.
    for i in 1..=120u32 {
        let group = if i % 2 == 0 { "even" } else { "odd" };
        let body = json!({"userServices": [
            {"name": "Call Return", "allocated": {"unlimited": false, "maximum": i}}]});
        t.license(&api, group, body).await;
    }
    let maximum = |e: &Value| e["changes"][0]["after"]["maximum"].as_u64().unwrap_or(0);
    let walk = |filter: &'static str| {
        let (api, path) = (&api, trail(&t));
        async move {
            let mut seen = Vec::new();
            let mut next: Option<String> = None;
            for _ in 0..100 {
                let page = match &next {
                    Some(n) => format!("{path}?limit=7{filter}&next={n}"),
                    None => format!("{path}?limit=7{filter}"),
                };
                let reply = api.get(&page).await;
                let events = events(&reply);
                assert!(events.len() <= 7);
                seen.extend(events.iter().map(maximum));
                match reply.json["next"].as_str() {
                    Some(n) => next = Some(n.to_owned()),
                    None => return seen,
                }
            }
            panic!("the walk did not end");
        }
    };
    let everything = walk("").await;
    assert_eq!(everything, (1..=120u64).rev().collect::<Vec<_>>());
    let even = walk("&group_id=even").await;
    assert_eq!(
        even,
        (1..=120u64)
            .rev()
            .filter(|i| i % 2 == 0)
            .collect::<Vec<_>>()
    );
    // A page that ends exactly at the last event has no `next`.
    let whole = api.get(&format!("{}?limit=100", trail(&t))).await;
    assert!(whole.json["next"].is_string());
    let rest = api
        .get(&format!(
            "{}?limit=20&next={}",
            trail(&t),
            whole.json["next"].as_str().unwrap()
        ))
        .await;
    assert_eq!(events(&rest).len(), 20);
    assert!(rest.json.get("next").is_none(), "{}", rest.json);

    // A time window: since the 100th event's time, inclusive.
    let hundredth = events(&whole)[20]["at"].as_str().unwrap().to_owned();
    assert_eq!(maximum(&events(&whole)[20]), 100);
    let since = api
        .get(&format!("{}?limit=100&since={hundredth}", trail(&t)))
        .await;
    let window: BTreeSet<u64> = events(&since).iter().map(maximum).collect();
    assert!(window.contains(&100) && window.contains(&120) && !window.contains(&50));
    let bad = api
        .get(&format!("{}?limit=0&since=yesterday", trail(&t)))
        .await;
    assert_eq!(bad.status, 400);
    assert_eq!(errors(&bad).len(), 2);
}
