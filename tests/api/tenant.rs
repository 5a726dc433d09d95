//! Black-box tests of the tenant pool and service pack definitions: HTTP through
//! the local server against DynamoDB Local. Every test works in a tenant of its own.

use api_tests::{Tenant, TestApp, entry, errors, license, limited, unlimited};
use licensing::domain::{GroupService, UserService};
use serde_json::{Value, json};

#[tokio::test]
async fn a_new_tenant_lists_the_catalog_unallocated() {
    let app = TestApp::spawn().await;
    let api = app.api();
    let t = Tenant::new("t-empty");
    let reply = api.get(&t.licenses()).await;
    assert_eq!(reply.status, 200);
    let users = reply.json["userServices"].as_array().unwrap();
    assert_eq!(users.len(), UserService::count());
    assert_eq!(
        reply.json["groupServices"].as_array().unwrap().len(),
        GroupService::count()
    );
    assert_eq!(
        users[0],
        json!({"name": "3G/4G Continuity", "pooled": false, "currentlyAllocated": 0, "unlimitedGroups": 0})
    );
    assert_eq!(reply.json["servicePacks"], json!([]));
    let licensed = api.get(&format!("{}?licensed=true", t.licenses())).await;
    assert_eq!(
        licensed.json,
        json!({"userServices": [], "groupServices": [], "servicePacks": []})
    );
}

#[tokio::test]
async fn service_packs_are_defined_read_replaced_and_deleted() {
    let app = TestApp::spawn().await;
    let api = app.api();
    let t = Tenant::new("t-packs");
    let body = json!({"name": "Basic CFx", "description": "Call forwarding bundle",
                      "services": ["Call Forwarding Always", "Call Forwarding Busy"]});
    let created = api.post(&t.packs(), &body).await;
    assert_eq!((created.status, &created.json), (201, &body));
    assert_eq!(api.get(&t.pack("Basic CFx")).await.json, body);
    let again = api.post(&t.packs(), &body).await;
    assert_eq!(again.status, 409);
    assert_eq!(errors(&again)[0]["code"], "ALREADY_EXISTS");

    // A name API Gateway could not deliver in a path is refused, naming the field.
    for name in ["A/B pack", "A?B", "A#B", "100%"] {
        let refused = api
            .post(
                &t.packs(),
                &json!({"name": name, "services": ["Call Return"]}),
            )
            .await;
        assert_eq!(refused.status, 400, "{name}");
        assert_eq!(errors(&refused)[0]["field"], "name", "{name}");
    }
    let other = json!({"name": "A + B pack", "services": ["Call Return"]});
    assert_eq!(api.post(&t.packs(), &other).await.status, 201);
    let listed = api.get(&t.packs()).await;
    assert_eq!(
        listed.json,
        json!({"servicePacks": [
            {"name": "A + B pack", "description": "", "services": ["Call Return"]},
            body.clone()]})
    );
    // A name with a space travels percent-encoded.
    assert_eq!(
        api.get(&format!("{}A%20+%20B%20pack/", t.packs()))
            .await
            .status,
        200
    );
    // An encoded slash becomes part of the id and is refused, naming the parameter.
    let slash = api.get(&format!("{}A%2FB/", t.packs())).await;
    assert_eq!(slash.status, 400);
    assert_eq!(errors(&slash)[0]["field"], "pack_name");

    let replaced = api
        .put(
            &t.pack("Basic CFx"),
            &json!({"description": "CFA only", "services": ["Call Forwarding Always"]}),
        )
        .await;
    assert_eq!(replaced.status, 200, "{}", replaced.json);
    assert_eq!(
        api.get(&t.pack("Basic CFx")).await.json,
        json!({"name": "Basic CFx", "description": "CFA only", "services": ["Call Forwarding Always"]})
    );
    let missing = api
        .put(&t.pack("Nope"), &json!({"services": ["Call Return"]}))
        .await;
    assert_eq!(missing.status, 404);

    let deleted = api
        .send("DELETE", &t.pack("Basic CFx"), None)
        .await_empty()
        .await;
    assert_eq!(deleted, 204);
    assert_eq!(api.get(&t.pack("Basic CFx")).await.status, 404);
    assert_eq!(
        api.send("DELETE", &t.pack("Basic CFx"), None)
            .await_empty()
            .await,
        404
    );
}

#[tokio::test]
async fn pack_definitions_are_validated() {
    let app = TestApp::spawn().await;
    let api = app.api();
    let t = Tenant::new("t-packval");
    let cases = [
        (json!({"name": "P", "services": []}), "services"),
        (
            json!({"name": "P", "services": ["Hunt Group"]}),
            "services[0]",
        ),
        (json!({"name": "P", "services": ["No Such"]}), "services[0]"),
        (
            json!({"name": "P", "services": ["Call Return", "Call Return"]}),
            "services[1]",
        ),
        (json!({"name": "", "services": ["Call Return"]}), "name"),
        (json!({"services": ["Call Return"]}), "name"),
        (json!({"name": "P"}), "services"),
        (
            json!({"name": "P", "services": ["Call Return"], "colour": 1}),
            "colour",
        ),
        (
            json!({"name": "P", "services": ["Call Return"], "description": 5}),
            "description",
        ),
    ];
    for (body, field) in cases {
        let reply = api.post(&t.packs(), &body).await;
        assert_eq!(reply.status, 400, "{body}");
        assert_eq!(errors(&reply)[0]["field"], field, "{body}: {}", reply.json);
    }
    assert_eq!(api.get(&t.packs()).await.json, json!({"servicePacks": []}));
    let mismatch = api
        .put(
            &t.pack("P"),
            &json!({"name": "Q", "services": ["Call Return"]}),
        )
        .await;
    assert_eq!(mismatch.status, 400);
}

#[tokio::test]
async fn packs_must_be_defined_to_be_licensed_and_are_frozen_while_licensed() {
    let app = TestApp::spawn().await;
    let api = app.api();
    let t = Tenant::new("t-packuse");
    let undefined = api
        .put(
            &t.group_licenses("g"),
            &json!({"servicePacks": [license("Basic CFx", limited(2))]}),
        )
        .await;
    assert_eq!(undefined.status, 400);
    let e = &errors(&undefined)[0];
    assert_eq!(
        (&e["code"], &e["name"], &e["field"]),
        (
            &json!("UNKNOWN_PACK"),
            &json!("Basic CFx"),
            &json!("servicePacks[0].name")
        )
    );
    let tenant_undefined = api
        .put(
            &t.licenses(),
            &json!({"servicePacks": [license("Basic CFx", limited(2))]}),
        )
        .await;
    assert_eq!(tenant_undefined.status, 400);

    api.post(
        &t.packs(),
        &json!({"name": "Basic CFx", "services": ["Call Forwarding Always"]}),
    )
    .await;
    assert_eq!(
        api.put(
            &t.group_licenses("g"),
            &json!({"servicePacks": [license("Basic CFx", limited(2))]})
        )
        .await
        .status,
        200
    );

    let frozen = api
        .put(&t.pack("Basic CFx"), &json!({"services": ["Call Return"]}))
        .await;
    assert_eq!(frozen.status, 409);
    assert_eq!(errors(&frozen)[0]["code"], "PACK_IN_USE");
    assert_eq!(
        api.send("DELETE", &t.pack("Basic CFx"), None).await.status,
        409
    );

    // Unlicensed everywhere again: the pack may change and go.
    assert_eq!(
        api.put(
            &t.group_licenses("g"),
            &json!({"servicePacks": [license("Basic CFx", limited(0))]})
        )
        .await
        .status,
        200
    );
    assert_eq!(
        api.put(&t.pack("Basic CFx"), &json!({"services": ["Call Return"]}))
            .await
            .status,
        200
    );
    assert_eq!(
        api.send("DELETE", &t.pack("Basic CFx"), None)
            .await_empty()
            .await,
        204
    );
}

#[tokio::test]
async fn the_pool_bounds_what_groups_hold() {
    let app = TestApp::spawn().await;
    let api = app.api();
    let t = Tenant::new("t-pool");
    let set = api
        .put(
            &t.licenses(),
            &json!({"userServices": [license("Call Forwarding Always", limited(10))]}),
        )
        .await;
    assert_eq!(
        (set.status, &set.json),
        (
            200,
            &json!({"userServices": [{"name": "Call Forwarding Always", "status": "updated"}]})
        )
    );

    assert_eq!(
        api.put(
            &t.group_licenses("a"),
            &json!({"userServices": [license("Call Forwarding Always", limited(6))]})
        )
        .await
        .status,
        200
    );
    let over = api
        .put(
            &t.group_licenses("b"),
            &json!({"userServices": [license("Call Forwarding Always", limited(5))]}),
        )
        .await;
    assert_eq!(over.status, 409);
    let e = &errors(&over)[0];
    assert_eq!(
        (&e["code"], &e["name"], &e["maximum"], &e["available"]),
        (
            &json!("POOL_EXHAUSTED"),
            &json!("Call Forwarding Always"),
            &json!(10),
            &json!(4)
        )
    );
    assert_eq!(
        api.put(
            &t.group_licenses("b"),
            &json!({"userServices": [license("Call Forwarding Always", limited(4))]})
        )
        .await
        .status,
        200
    );
    let not_unlimited = api
        .put(
            &t.group_licenses("c"),
            &json!({"userServices": [license("Call Forwarding Always", unlimited())]}),
        )
        .await;
    assert_eq!(errors(&not_unlimited)[0]["code"], "POOL_NOT_UNLIMITED");

    let tenant = api.get(&t.licenses()).await;
    assert_eq!(
        entry(&tenant.json["userServices"], "Call Forwarding Always"),
        &json!({"name": "Call Forwarding Always", "pooled": true, "allocated": {"unlimited": false, "maximum": 10}, "currentlyAllocated": 10, "unlimitedGroups": 0, "remaining": 0})
    );
    // Lowering a group gives units back; the tenant cannot go below what groups hold.
    assert_eq!(
        api.put(
            &t.group_licenses("a"),
            &json!({"userServices": [license("Call Forwarding Always", limited(2))]})
        )
        .await
        .status,
        200
    );
    let below = api
        .put(
            &t.licenses(),
            &json!({"userServices": [license("Call Forwarding Always", limited(5))]}),
        )
        .await;
    assert_eq!(below.status, 409);
    assert_eq!(
        (
            &errors(&below)[0]["code"],
            &errors(&below)[0]["currentlyAllocated"]
        ),
        (&json!("BELOW_ALLOCATED"), &json!(6))
    );
    assert_eq!(
        api.put(
            &t.licenses(),
            &json!({"userServices": [license("Call Forwarding Always", limited(6))]})
        )
        .await
        .status,
        200
    );
    let full = api
        .put(
            &t.group_licenses("c"),
            &json!({"userServices": [license("Call Forwarding Always", limited(1))]}),
        )
        .await;
    assert_eq!(errors(&full)[0]["available"], 0);

    let licensed = api.get(&format!("{}?licensed=true", t.licenses())).await;
    assert_eq!(
        licensed.json["userServices"],
        json!([{"name": "Call Forwarding Always", "pooled": true, "allocated": {"unlimited": false, "maximum": 6}, "currentlyAllocated": 6, "unlimitedGroups": 0, "remaining": 0}])
    );
    let no_auto_assign = api.put(&t.licenses(), &json!({"auto_assign": true})).await;
    assert_eq!(errors(&no_auto_assign)[0]["field"], "auto_assign");
}

#[tokio::test]
async fn unlimited_groups_need_an_unlimited_tenant() {
    let app = TestApp::spawn().await;
    let api = app.api();
    let t = Tenant::new("t-unl");
    assert_eq!(
        api.put(
            &t.licenses(),
            &json!({"groupServices": [license("Hunt Group", unlimited())]})
        )
        .await
        .status,
        200
    );
    assert_eq!(
        api.put(
            &t.group_licenses("a"),
            &json!({"groupServices": [license("Hunt Group", unlimited())]})
        )
        .await
        .status,
        200
    );
    assert_eq!(
        api.put(
            &t.group_licenses("b"),
            &json!({"groupServices": [license("Hunt Group", limited(12))]})
        )
        .await
        .status,
        200
    );
    let tenant = api.get(&t.licenses()).await;
    assert_eq!(
        entry(&tenant.json["groupServices"], "Hunt Group"),
        &json!({"name": "Hunt Group", "pooled": true, "allocated": {"unlimited": true}, "currentlyAllocated": 12, "unlimitedGroups": 1})
    );
    let limited_now = api
        .put(
            &t.licenses(),
            &json!({"groupServices": [license("Hunt Group", limited(100))]}),
        )
        .await;
    assert_eq!(limited_now.status, 409);
    assert_eq!(errors(&limited_now)[0]["code"], "GROUP_HOLDS_UNLIMITED");
    // Once group a is limited, the tenant may be too.
    assert_eq!(
        api.put(
            &t.group_licenses("a"),
            &json!({"groupServices": [license("Hunt Group", limited(3))]})
        )
        .await
        .status,
        200
    );
    assert_eq!(
        api.put(
            &t.licenses(),
            &json!({"groupServices": [license("Hunt Group", limited(15))]})
        )
        .await
        .status,
        200
    );
    let tenant = api.get(&t.licenses()).await;
    assert_eq!(
        entry(&tenant.json["groupServices"], "Hunt Group")["currentlyAllocated"],
        15
    );
}

#[tokio::test]
async fn services_without_a_tenant_allocation_are_not_pooled() {
    let app = TestApp::spawn().await;
    let api = app.api();
    let t = Tenant::new("t-free");
    // No tenant record: groups license freely (existing deployments keep working).
    assert_eq!(
        api.put(
            &t.group_licenses("a"),
            &json!({"userServices": [license("Call Waiting", limited(40))]})
        )
        .await
        .status,
        200
    );
    assert_eq!(
        api.put(
            &t.group_licenses("b"),
            &json!({"userServices": [license("Call Waiting", unlimited())]})
        )
        .await
        .status,
        200
    );
    let tenant = api.get(&t.licenses()).await;
    assert_eq!(
        entry(&tenant.json["userServices"], "Call Waiting"),
        &json!({"name": "Call Waiting", "pooled": false, "currentlyAllocated": 40, "unlimitedGroups": 1})
    );
    // Once the tenant sets an allocation the rule holds: it must cover what groups hold.
    let refused = api
        .put(
            &t.licenses(),
            &json!({"userServices": [license("Call Waiting", limited(50))]}),
        )
        .await;
    assert_eq!(errors(&refused)[0]["code"], "GROUP_HOLDS_UNLIMITED");
    assert_eq!(
        api.put(
            &t.licenses(),
            &json!({"userServices": [license("Call Waiting", unlimited())]})
        )
        .await
        .status,
        200
    );
}

#[tokio::test]
async fn the_tenant_view_shows_packs_with_their_descriptions() {
    let app = TestApp::spawn().await;
    let api = app.api();
    let t = Tenant::new("t-view");
    api.post(&t.packs(), &json!({"name": "Basic CFx", "description": "Call forwarding bundle", "services": ["Call Forwarding Always"]})).await;
    api.post(
        &t.packs(),
        &json!({"name": "Unused", "services": ["Call Return"]}),
    )
    .await;
    assert_eq!(
        api.put(
            &t.licenses(),
            &json!({"servicePacks": [license("Basic CFx", limited(20))]})
        )
        .await
        .status,
        200
    );
    assert_eq!(
        api.put(
            &t.group_licenses("g"),
            &json!({"servicePacks": [license("Basic CFx", limited(5))]})
        )
        .await
        .status,
        200
    );
    let reply = api.get(&t.licenses()).await;
    assert_eq!(
        reply.json["servicePacks"],
        json!([
            {"name": "Basic CFx", "description": "Call forwarding bundle", "pooled": true, "allocated": {"unlimited": false, "maximum": 20}, "currentlyAllocated": 5, "unlimitedGroups": 0, "remaining": 15},
            {"name": "Unused", "description": "", "pooled": false, "currentlyAllocated": 0, "unlimitedGroups": 0}])
    );
}

#[tokio::test]
async fn forty_eight_packs_fit_in_one_put() {
    let app = TestApp::spawn().await;
    // Each pack of a group PUT is two actions of one transaction (record and pool), plus the
    // allocations version, an Idempotency-Key's record and the audit record: the documented 48
    // items stay within DynamoDB's 100.
    let api = app.api();
    let t = Tenant::new("t-fifty");
    let names: Vec<String> = (0..48).map(|i| format!("pack {i:02}")).collect();
    for name in &names {
        let reply = api
            .post(
                &t.packs(),
                &json!({"name": name, "services": ["Call Return"]}),
            )
            .await;
        assert_eq!(reply.status, 201);
    }
    let items: Vec<Value> = names.iter().map(|n| license(n, limited(1))).collect();
    let tenant = api
        .put(&t.licenses(), &json!({"servicePacks": items}))
        .await;
    assert_eq!(tenant.status, 200, "{}", tenant.json);
    let group = api
        .send(
            "PUT",
            &t.group_licenses("g"),
            Some(&json!({"servicePacks": items}).to_string()),
        )
        .with("Idempotency-Key", "forty-eight-packs")
        .await;
    assert_eq!(group.status, 200, "{}", group.json);
    let reply = api
        .get(&format!("{}?licensed=true", t.group_licenses("g")))
        .await;
    assert_eq!(reply.json["servicePacks"].as_array().unwrap().len(), 48);
    // Every pool is now full: one more unit anywhere is refused.
    let more = api
        .put(
            &t.group_licenses("h"),
            &json!({"servicePacks": [license("pack 07", limited(1))]}),
        )
        .await;
    assert_eq!(errors(&more)[0]["code"], "POOL_EXHAUSTED");
}

#[tokio::test]
async fn a_deleted_pack_can_no_longer_be_licensed() {
    let app = TestApp::spawn().await;
    let api = app.api();
    let t = Tenant::new("t-gone");
    api.post(
        &t.packs(),
        &json!({"name": "Gone", "services": ["Call Return"]}),
    )
    .await;
    assert_eq!(
        api.send("DELETE", &t.pack("Gone"), None)
            .await_empty()
            .await,
        204
    );
    let reply = api
        .put(
            &t.group_licenses("g"),
            &json!({"servicePacks": [license("Gone", limited(1))]}),
        )
        .await;
    assert_eq!(reply.status, 400);
    assert_eq!(errors(&reply)[0]["code"], "UNKNOWN_PACK");
    assert_eq!(api.get(&t.licenses()).await.json["servicePacks"], json!([]));
}

#[tokio::test]
async fn tenant_licenses_answer_a_weak_etag_that_only_their_puts_move() {
    let app = TestApp::spawn().await;
    let api = app.api();
    let t = Tenant::new("t-etag");
    let body = json!({"userServices": [license("Call Waiting", limited(5))]});
    assert_eq!(api.put(&t.licenses(), &body).await.status, 200);
    let tag = api
        .get(&t.licenses())
        .await
        .header("etag")
        .map(str::to_owned);
    let tag = tag.expect("an ETag");
    assert!(tag.starts_with("W/\""), "{tag}");
    // A group taking from the pool moves currentlyAllocated, not the tag.
    t.license(
        &api,
        "g",
        json!({"userServices": [license("Call Waiting", limited(2))]}),
    )
    .await;
    assert_eq!(
        api.get(&t.licenses()).await.header("etag"),
        Some(tag.as_str())
    );
    let put = |max: u32| {
        let body = json!({"userServices": [license("Call Waiting", limited(max))]}).to_string();
        let (api, path, tag) = (&api, t.licenses(), tag.clone());
        async move {
            api.send("PUT", &path, Some(&body))
                .with("If-Match", &tag)
                .await
        }
    };
    assert_eq!(put(6).await.status, 200);
    let stale = put(7).await;
    assert_eq!(
        (stale.status, stale.json["errors"][0]["code"].as_str()),
        (412, Some("PRECONDITION_FAILED"))
    );
}

#[tokio::test]
async fn the_tenant_view_tells_what_groups_hold_and_round_trips_unchanged() {
    let app = TestApp::spawn().await;
    let api = app.api();
    let t = Tenant::new("t9");
    t.license(
        &api,
        "a",
        json!({"userServices": [license("Call Waiting", unlimited())]}),
    )
    .await;
    t.license(
        &api,
        "b",
        json!({"userServices": [license("Call Waiting", limited(40))]}),
    )
    .await;
    let cw = json!({"name": "Call Waiting", "pooled": false, "currentlyAllocated": 40,
                    "unlimitedGroups": 1});
    let full = api.get(&t.licenses()).await;
    assert_eq!(entry(&full.json["userServices"], "Call Waiting"), &cw);
    // Not pooled, but held by groups: listed as licensed.
    let licensed = api.get(&format!("{}?licensed=true", t.licenses())).await;
    assert_eq!(licensed.json["userServices"], json!([cw]));

    // What the GET answered, PUT back whole (the full catalog): nothing changes, tag included.
    let tag = full.header("etag").map(str::to_owned);
    let back = api.put(&t.licenses(), &full.json).await;
    assert_eq!(back.status, 200, "{}", back.json);
    let after = api.get(&t.licenses()).await;
    assert_eq!(after.json, full.json);
    assert_eq!(after.header("etag").map(str::to_owned), tag);
    // Pooling it, then `"allocated": null`, unpools it again.
    let pooled = api
        .put(
            &t.licenses(),
            &json!({"userServices": [license("Call Waiting", unlimited())]}),
        )
        .await;
    assert_eq!(pooled.status, 200, "{}", pooled.json);
    let view = api.get(&t.licenses()).await;
    assert_eq!(
        entry(&view.json["userServices"], "Call Waiting")["pooled"],
        true
    );
    assert_ne!(view.header("etag").map(str::to_owned), tag);
    let unpool = json!({"userServices": [{"name": "Call Waiting", "allocated": null}]});
    assert_eq!(api.put(&t.licenses(), &unpool).await.status, 200);
    assert_eq!(
        entry(
            &api.get(&t.licenses()).await.json["userServices"],
            "Call Waiting"
        ),
        &cw
    );
    // Only the operator sets tenant allocations.
    let admin = app.as_caller(api_tests::Caller::tenant_admin(&t.id));
    assert_eq!(admin.put(&t.licenses(), &unpool).await.status, 403);
}
