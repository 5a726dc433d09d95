//! Service packs consume their services, as in BroadWorks: a user's services are the union of
//! those assigned directly and those of the user's packs, and a service's `inUse` counts the
//! users holding it however they got it. Also: limits hold for every role, 409s tell the truth
//! under races, and a repeated JSON key is refused. Over HTTP through the local server.

use api_tests::{Caller, Reply, Tenant, TestApp, limited, named};
use futures_util::future::join_all;
use serde_json::{Value, json};

fn first_error(reply: &Reply) -> &Value {
    &reply.json["errors"][0]
}

#[tokio::test]
async fn a_pack_cannot_carry_a_service_past_its_license() {
    let app = TestApp::spawn().await;
    let api = app.api();
    let t = Tenant::new("bypass");
    let cw = json!([{"name": "Call Waiting", "allocated": limited(0)}]);
    assert_eq!(
        api.put(&t.licenses(), &json!({"userServices": cw}))
            .await
            .status,
        200
    );
    let refused = api
        .put(
            &t.group_licenses("g1"),
            &json!({"userServices": [{"name": "Call Waiting", "allocated": limited(1)}]}),
        )
        .await;
    assert_eq!(
        (refused.status, &first_error(&refused)["code"]),
        (409, &json!("POOL_EXHAUSTED"))
    );
    t.define(&api, "Wrap", &["Call Waiting"]).await;
    t.license(
        &api,
        "g1",
        json!({"servicePacks": [{"name": "Wrap", "allocated": {"unlimited": true}}]}),
    )
    .await;
    for u in ["u1@x", "u2@x", "u3@x"] {
        let reply = api
            .post(&t.user("g1", u), &json!({"servicePacks": named(&["Wrap"])}))
            .await;
        assert_eq!(reply.status, 409, "{}", reply.json);
        let error = first_error(&reply);
        assert_eq!(error["code"], "NOT_LICENSED");
        assert_eq!(error["name"], "Call Waiting");
        assert_eq!(error["servicePack"], "Wrap");
        assert_eq!(error["field"], "servicePacks[0].name");
        assert_eq!(
            api.get(&t.user("g1", u)).await.json,
            json!({"services": [], "servicePacks": [], "effectiveServices": []})
        );
    }
    assert_eq!(t.in_use(&api, "g1", "servicePacks", "Wrap").await, Some(0));
    assert_eq!(
        t.in_use(&api, "g1", "userServices", "Call Waiting").await,
        None
    );
}

#[tokio::test]
async fn a_tenant_admin_licenses_groups_only_what_the_tenant_holds() {
    let app = TestApp::spawn().await;
    let t = Tenant::new("unpooled");
    let admin = app.as_caller(Caller::tenant_admin(&t.id));
    let body = json!({
        "userServices": [{"name": "Call Waiting", "allocated": {"unlimited": true}}],
        "groupServices": [{"name": "Hunt Group", "allocated": {"unlimited": true}}]});
    let refused = admin.put(&t.group_licenses("g1"), &body).await;
    assert_eq!(refused.status, 409, "{}", refused.json);
    let mut named: Vec<(String, String)> = refused.json["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["code"].as_str().unwrap().into(),
                e["name"].as_str().unwrap().into(),
            )
        })
        .collect();
    named.sort();
    assert_eq!(
        named,
        [
            (
                "NOT_LICENSED_TO_TENANT".to_owned(),
                "Call Waiting".to_owned()
            ),
            ("NOT_LICENSED_TO_TENANT".to_owned(), "Hunt Group".to_owned())
        ]
    );
    let operator = app.api();
    let unchanged = operator
        .get(&format!("{}?licensed=true", t.group_licenses("g1")))
        .await;
    assert_eq!(
        unchanged.json,
        json!({"userServices": [], "groupServices": [], "servicePacks": []})
    );
    // Once the operator allocates them to the tenant, the tenant admin may; an operator always.
    assert_eq!(
        operator.put(&t.group_licenses("g2"), &body).await.status,
        200
    );
    let pool = json!({
        "userServices": [{"name": "Call Waiting", "allocated": {"unlimited": true}}],
        "groupServices": [{"name": "Hunt Group", "allocated": {"unlimited": true}}]});
    assert_eq!(operator.put(&t.licenses(), &pool).await.status, 200);
    assert_eq!(admin.put(&t.group_licenses("g1"), &body).await.status, 200);
}

#[tokio::test]
async fn a_service_counts_its_holders_once_whatever_the_routes() {
    let app = TestApp::spawn().await;
    let api = app.api();
    let t = Tenant::new("union");
    t.define(&api, "P1", &["Call Waiting", "Call Return"]).await;
    t.define(&api, "P2", &["Call Waiting"]).await;
    t.license(&api, "g", json!({
        "userServices": [{"name": "Call Waiting", "allocated": limited(1)},
                         {"name": "Call Return", "allocated": limited(5)}],
        "servicePacks": [{"name": "P1", "allocated": limited(5)}, {"name": "P2", "allocated": limited(5)}]}))
        .await;
    let ann = t.user("g", "ann");
    let all = json!({"services": named(&["Call Waiting"]), "servicePacks": named(&["P1", "P2"])});
    let reply = api.post(&ann, &all).await;
    assert_eq!(reply.status, 201, "{}", reply.json);
    let cw = || t.in_use(&api, "g", "userServices", "Call Waiting");
    assert_eq!(cw().await, Some(1), "one user, three routes, one unit");
    assert_eq!(
        api.get(&ann).await.json["effectiveServices"],
        json!([{"name": "Call Return", "via": ["P1"]},
               {"name": "Call Waiting", "via": ["direct", "P1", "P2"]}])
    );
    // Call Waiting is full (1 of 1): a second user cannot get it through a pack either.
    let ben = api
        .post(
            &t.user("g", "ben"),
            &json!({"servicePacks": named(&["P2"])}),
        )
        .await;
    assert_eq!(
        (ben.status, &first_error(&ben)["code"]),
        (409, &json!("OVER_LIMIT"))
    );
    assert_eq!(first_error(&ben)["servicePack"], "P2");
    // Removing the routes one by one frees the unit only at the last.
    for (body, left) in [
        (json!({"services": named(&["Call Waiting"])}), Some(1)),
        (json!({"servicePacks": named(&["P1"])}), Some(1)),
        (json!({"servicePacks": named(&["P2"])}), Some(0)),
    ] {
        assert_eq!(api.delete(&ann, &body).await.status, 200);
        assert_eq!(cw().await, left, "after {body}");
    }
    assert_eq!(
        t.in_use(&api, "g", "userServices", "Call Return").await,
        Some(0)
    );
    assert_eq!(
        api.get(&ann).await.json,
        json!({"services": [], "servicePacks": [], "effectiveServices": []})
    );
}

#[tokio::test]
async fn racing_pack_and_direct_assignments_count_every_holder_once() {
    let app = TestApp::spawn().await;
    let api = app.api();
    let t = Tenant::new("union-race");
    t.define(&api, "A", &["Call Waiting", "Call Return"]).await;
    t.define(&api, "B", &["Call Waiting", "Call Transfer"])
        .await;
    t.license(&api, "g", json!({
        "userServices": [{"name": "Call Waiting", "allocated": {"unlimited": true}},
                         {"name": "Call Return", "allocated": {"unlimited": true}},
                         {"name": "Call Transfer", "allocated": {"unlimited": true}}],
        "servicePacks": [{"name": "A", "allocated": {"unlimited": true}}, {"name": "B", "allocated": {"unlimited": true}}]}))
        .await;
    let users: Vec<String> = (0..8).map(|i| t.user("g", &format!("user{i}"))).collect();
    let bodies = [
        json!({"servicePacks": named(&["A"])}),
        json!({"servicePacks": named(&["B"])}),
        json!({"services": named(&["Call Waiting", "Call Transfer"])}),
    ];
    let mut requests = Vec::new();
    for user in &users {
        for body in &bodies {
            requests.push(api.post(user, body));
        }
    }
    for reply in join_all(requests).await {
        assert_eq!(reply.status, 201, "{}", reply.json);
    }
    // And take some routes away again, in parallel.
    let pack_a = json!({"servicePacks": named(&["A"])});
    let removals = users.iter().step_by(2).map(|u| api.delete(u, &pack_a));
    for reply in join_all(removals).await {
        assert_eq!(reply.status, 200, "{}", reply.json);
    }
    let mut holders = std::collections::BTreeMap::<String, u64>::new();
    for user in &users {
        let view = api.get(user).await.json;
        for held in view["effectiveServices"].as_array().unwrap() {
            *holders
                .entry(held["name"].as_str().unwrap().to_owned())
                .or_default() += 1;
        }
    }
    for (service, count) in [
        ("Call Waiting", 8),
        ("Call Transfer", 8),
        ("Call Return", 4),
    ] {
        assert_eq!(holders.get(service).copied(), Some(count), "{service}");
        assert_eq!(
            t.in_use(&api, "g", "userServices", service).await,
            Some(count),
            "{service}"
        );
    }
}

#[tokio::test]
async fn two_identical_requests_racing_for_the_last_unit_both_succeed() {
    let app = TestApp::spawn().await;
    let api = app.api();
    let t = Tenant::new("truth");
    t.license(
        &api,
        "g",
        json!({"userServices": [{"name": "Call Waiting", "allocated": limited(1)}]}),
    )
    .await;
    let carl = t.user("g", "carl");
    let body = json!({"services": named(&["Call Waiting"])});
    for _ in 0..5 {
        let replies = join_all([api.post(&carl, &body), api.post(&carl, &body)]).await;
        for reply in replies {
            assert_eq!(reply.status, 201, "{}", reply.json);
        }
    }
    assert_eq!(
        t.in_use(&api, "g", "userServices", "Call Waiting").await,
        Some(1)
    );

    // Two identical group PUTs under a pool with room for exactly that: both succeed.
    let pool = json!({"userServices": [{"name": "Call Return", "allocated": limited(3)}]});
    assert_eq!(api.put(&t.licenses(), &pool).await.status, 200);
    let put = json!({"userServices": [{"name": "Call Return", "allocated": limited(3)}]});
    for g in ["h1", "h2", "h3"] {
        let path = t.group_licenses(g);
        let replies = join_all([api.put(&path, &put), api.put(&path, &put)]).await;
        let statuses: Vec<u16> = replies.iter().map(|r| r.status).collect();
        if g == "h1" {
            assert_eq!(
                statuses,
                [200, 200],
                "{:?}",
                replies.iter().map(|r| &r.json).collect::<Vec<_>>()
            );
        } else {
            // The pool is spent by h1: both answers say so, truthfully.
            for reply in &replies {
                assert_eq!(
                    first_error(reply)["code"],
                    "POOL_EXHAUSTED",
                    "{}",
                    reply.json
                );
                assert_eq!(first_error(reply)["available"], 0);
            }
        }
    }
}

#[tokio::test]
async fn packs_hold_one_to_twenty_five_services_and_requests_fit_one_transaction() {
    let app = TestApp::spawn().await;
    let api = app.api();
    let t = Tenant::new("pack-size");
    let catalog = api.get(&t.group_licenses("g")).await.json["userServices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap().to_owned())
        .collect::<Vec<_>>();
    let services = |from: usize, n: usize| catalog[from..from + n].to_vec();
    let too_big = api
        .post(
            &t.packs(),
            &json!({"name": "Big", "services": services(0, 26)}),
        )
        .await;
    assert_eq!(
        (too_big.status, &first_error(&too_big)["field"]),
        (400, &json!("services"))
    );
    for (name, from) in [("Full A", 0), ("Full B", 25)] {
        let reply = api
            .post(
                &t.packs(),
                &json!({"name": name, "services": services(from, 25)}),
            )
            .await;
        assert_eq!(reply.status, 201, "{}", reply.json);
    }
    // Two full packs need 104 writes: refused before anything is written.
    let both = api
        .post(
            &t.user("g", "dora"),
            &json!({"servicePacks": named(&["Full A", "Full B"])}),
        )
        .await;
    assert_eq!(
        (both.status, &first_error(&both)["code"]),
        (400, &json!("TOO_MANY_ITEMS"))
    );
    assert_eq!(
        api.get(&t.user("g", "dora")).await.json["servicePacks"],
        json!([])
    );
}

#[tokio::test]
async fn a_pack_defined_again_starts_from_nothing() {
    let app = TestApp::spawn().await;
    let api = app.api();
    let t = Tenant::new("redefine");
    t.define(&api, "Again", &["Call Waiting"]).await;
    let allocate = json!({"servicePacks": [{"name": "Again", "allocated": limited(7)}]});
    assert_eq!(api.put(&t.licenses(), &allocate).await.status, 200);
    let pack = format!("{}Again/", t.packs());
    // The operator's allocation holds the pack: it cannot be deleted from under it.
    let held = api.send("DELETE", &pack, None).await;
    assert_eq!(
        (held.status, held.code()),
        (409, "PACK_IN_USE"),
        "{}",
        held.json
    );
    assert_eq!(held.json["errors"][0]["maximum"], 7, "{}", held.json);
    // Once the operator removes the allocation nothing holds it, and a new definition of the
    // name starts from nothing.
    let remove = json!({"servicePacks": [{"name": "Again", "allocated": null}]});
    assert_eq!(api.put(&t.licenses(), &remove).await.status, 200);
    assert_eq!(api.send("DELETE", &pack, None).await_empty().await, 204);
    t.define(&api, "Again", &["Call Return"]).await;
    let view = api.get(&t.licenses()).await.json;
    let entry = view["servicePacks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "Again")
        .cloned()
        .unwrap();
    assert_eq!(
        entry,
        json!({"name": "Again", "description": "", "pooled": false, "currentlyAllocated": 0,
               "unlimitedGroups": 0}),
        "{view}"
    );
}

#[tokio::test]
async fn a_repeated_json_key_is_refused_in_every_route_family() {
    let app = TestApp::spawn().await;
    let api = app.api();
    let t = Tenant::new("dup");
    let cases = [
        (
            "PUT",
            t.group_licenses("g"),
            r#"{"userServices": [{"name": "Call Waiting", "allocated": {"unlimited": false, "maximum": 7, "maximum": 0}}]}"#,
            "userServices[0].allocated.maximum",
        ),
        (
            "PUT",
            t.licenses(),
            r#"{"userServices": [], "userServices": []}"#,
            "userServices",
        ),
        (
            "POST",
            t.packs(),
            r#"{"name": "X", "name": "Y", "services": ["Call Waiting"]}"#,
            "name",
        ),
        (
            "POST",
            t.user("g", "u"),
            r#"{"services": [{"name": "Call Waiting", "name": "Call Return"}]}"#,
            "services[0].name",
        ),
        (
            "POST",
            format!("/api/v1/tenants/{}/groups/g/services/", t.id),
            r#"{"services": [], "services": []}"#,
            "services",
        ),
        (
            "POST",
            format!(
                "/api/v1/tenants/{}/groups/g/services/hunt-group/instances/",
                t.id
            ),
            r#"{"name": "a", "name": "b"}"#,
            "name",
        ),
        (
            "POST",
            "/api/v1/configs/user_services/".to_owned(),
            r#"{"instance_name": "x", "instance_name": "y"}"#,
            "instance_name",
        ),
    ];
    for (method, path, body, field) in cases {
        let reply = api.send(method, &path, Some(body)).await;
        assert_eq!(reply.status, 400, "{method} {path}: {}", reply.json);
        assert_eq!(first_error(&reply)["code"], "DUPLICATE_FIELD", "{path}");
        assert_eq!(first_error(&reply)["field"], field, "{path}");
    }
    assert_eq!(
        t.in_use(&api, "g", "userServices", "Call Waiting").await,
        None
    );
}

#[tokio::test]
async fn a_tenant_admin_cannot_shed_the_operators_cap_on_a_pack() {
    let app = TestApp::spawn().await;
    let operator = app.api();
    let t = Tenant::new("acme");
    let admin = app.as_caller(Caller::tenant_admin(&t.id));
    let gold = json!({"name": "Gold", "services": ["Call Waiting"]});
    assert_eq!(operator.post(&t.packs(), &gold).await.status, 201);
    let cap = json!({"servicePacks": [{"name": "Gold", "allocated": limited(2)}]});
    assert_eq!(operator.put(&t.licenses(), &cap).await.status, 200);
    let tag = operator
        .get(&t.licenses())
        .await
        .header("etag")
        .map(str::to_owned);

    let unlimited = json!({"servicePacks": [{"name": "Gold", "allocated": {"unlimited": true}}]});
    let refused = admin.put(&t.group_licenses("g1"), &unlimited).await;
    assert_eq!(
        (refused.status, refused.code()),
        (409, "POOL_NOT_UNLIMITED")
    );
    // Deleting the pack would take the operator's allocation with it: refused, naming it.
    let delete = admin.send("DELETE", &t.pack("Gold"), None).await;
    assert_eq!(
        (delete.status, delete.code()),
        (409, "PACK_IN_USE"),
        "{}",
        delete.json
    );
    assert!(
        first_error(&delete)["message"]
            .as_str()
            .is_some_and(|m| m.contains("allocated to the tenant by the operator (maximum 2)")),
        "{}",
        delete.json
    );
    assert_eq!(admin.post(&t.packs(), &gold).await.code(), "ALREADY_EXISTS");
    for group in ["g1", "g2"] {
        let again = admin.put(&t.group_licenses(group), &unlimited).await;
        assert_eq!((again.status, again.code()), (409, "POOL_NOT_UNLIMITED"));
    }
    let view = operator.get(&t.licenses()).await;
    assert_eq!(view.header("etag").map(str::to_owned), tag);
    assert_eq!(
        view.json["servicePacks"],
        json!([{"name": "Gold", "description": "", "pooled": true, "allocated": limited(2),
                "currentlyAllocated": 0, "unlimitedGroups": 0, "remaining": 2}])
    );
    // Nor can the tenant admin lift or remove the cap itself.
    let lift = json!({"servicePacks": [{"name": "Gold", "allocated": null}]});
    assert_eq!(admin.put(&t.licenses(), &lift).await.status, 403);
}

#[tokio::test]
async fn an_if_match_is_bounded_and_a_long_one_is_the_clients_error() {
    let app = TestApp::spawn().await;
    let api = app.api();
    let t = Tenant::new("tags");
    t.define(&api, "Tagged", &["Call Waiting"]).await;
    let strong: Vec<String> = (0..101).map(|i| format!("\"tag{i}\"")).collect();
    let replaced = api
        .send(
            "PUT",
            &t.pack("Tagged"),
            Some(&json!({"services": ["Call Return"]}).to_string()),
        )
        .with("If-Match", &strong.join(", "))
        .await;
    assert_eq!(
        (replaced.status, replaced.code()),
        (400, "INVALID_IF_MATCH"),
        "{}",
        replaced.json
    );
    assert_eq!(
        api.get(&t.pack("Tagged")).await.json["services"],
        json!(["Call Waiting"]),
        "a refused replace changes nothing"
    );
    let weak: Vec<String> = (0..200).map(|i| format!("W/\"{i}\"")).collect();
    let put = api
        .send(
            "PUT",
            &t.group_licenses("g"),
            Some(
                &json!({"userServices": [{"name": "Call Waiting", "allocated": limited(1)}]})
                    .to_string(),
            ),
        )
        .with("If-Match", &weak.join(", "))
        .await;
    assert_eq!(
        (put.status, put.code()),
        (400, "INVALID_IF_MATCH"),
        "{}",
        put.json
    );
    // Twenty tags are fine: the one that matches wins.
    let tag = api
        .get(&t.pack("Tagged"))
        .await
        .header("etag")
        .map(str::to_owned);
    let mut twenty: Vec<String> = (0..19).map(|i| format!("\"other{i}\"")).collect();
    twenty.push(tag.unwrap_or_default());
    let replaced = api
        .send(
            "PUT",
            &t.pack("Tagged"),
            Some(&json!({"services": ["Call Return"]}).to_string()),
        )
        .with("If-Match", &twenty.join(", "))
        .await;
    assert_eq!(replaced.status, 200, "{}", replaced.json);
    // Nothing else changed.
    assert_eq!(
        api.get(&t.group_licenses("g")).await.header("etag"),
        Some("W/\"0\"")
    );
}

/// The function instance keeps the pack definitions and the blocked services it read; an
/// assignment checks in its transaction that what it used is still current. So a definition
/// replaced, or a service blocked or unblocked, after the instance cached it costs a retry,
/// never a wrong answer.
#[tokio::test]
async fn a_stale_cache_costs_a_retry_never_a_wrong_answer() {
    let app = TestApp::spawn().await;
    let api = app.api();
    let t = Tenant::new("stale-cache");
    t.define(&api, "Duo", &["Call Waiting", "Call Return"])
        .await;
    t.define(&api, "Solo", &["Call Waiting"]).await;
    let unlimited = json!({"unlimited": true});
    t.license(
        &api,
        "g",
        json!({"userServices": [{"name": "Call Waiting", "allocated": unlimited},
                                {"name": "Call Return", "allocated": unlimited},
                                {"name": "Call Forwarding Busy", "allocated": unlimited}],
               "servicePacks": [{"name": "Duo", "allocated": unlimited}]}),
    )
    .await;
    // Both caches filled: the definitions (Duo, Solo) and the blocked services (none).
    let warm = api
        .post(
            &t.user("g", "warm"),
            &json!({"servicePacks": named(&["Duo"])}),
        )
        .await;
    assert_eq!(warm.status, 201, "{}", warm.json);

    // Solo is redefined (no group licenses it), then licensed: it gives the new service.
    let redefined = api
        .put(&t.pack("Solo"), &json!({"services": ["Call Return"]}))
        .await;
    assert_eq!(redefined.status, 200, "{}", redefined.json);
    t.license(
        &api,
        "g",
        json!({"servicePacks": [{"name": "Solo", "allocated": unlimited}]}),
    )
    .await;
    let solo = api
        .post(
            &t.user("g", "solo"),
            &json!({"servicePacks": named(&["Solo"])}),
        )
        .await;
    assert_eq!(solo.status, 201, "{}", solo.json);
    assert_eq!(
        api.get(&t.user("g", "solo")).await.json["effectiveServices"],
        json!([{"name": "Call Return", "via": ["Solo"]}])
    );

    // A service blocked after the cache was filled is refused…
    let config = format!("/api/v1/configs/user_services/{}-busy/", t.id);
    let blocking = json!({"technical_name": "Call Forwarding Busy", "no_more_assignable": true});
    assert_eq!(api.put(&config, &blocking).await.status, 200);
    let busy = json!({"services": named(&["Call Forwarding Busy"])});
    let refused = api.post(&t.user("g", "b1"), &busy).await;
    assert_eq!(refused.status, 409, "{}", refused.json);
    assert_eq!(first_error(&refused)["code"], "NO_MORE_ASSIGNABLE");
    assert_eq!(
        t.in_use(&api, "g", "userServices", "Call Forwarding Busy")
            .await,
        Some(0)
    );
    // …and assignable again once unblocked, though the cache last said blocked.
    assert_eq!(api.send("DELETE", &config, None).await_empty().await, 204);
    let given = api.post(&t.user("g", "b1"), &busy).await;
    assert_eq!(given.status, 201, "{}", given.json);
    assert_eq!(
        t.in_use(&api, "g", "userServices", "Call Forwarding Busy")
            .await,
        Some(1)
    );
}
