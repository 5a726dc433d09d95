//! Black-box tests of the group licenses endpoints: HTTP through the local server against
//! DynamoDB Local, as `make test` runs them. Every test works in a tenant of its own.

use api_tests::examples::{example_licenses, group_ref};
use api_tests::{
    TestApp, entry, error_fields, group_licenses_path, group_service, pack, partition_keys,
    stored_license, unique, user,
};
use licensing::domain::{Allocation, GroupService, Licensable, License, UserService};
use serde_json::{Value, json};

/// A tenant holding the documented example group's state.
async fn seeded(app: &TestApp) -> (String, &'static str) {
    let tenant = unique("seed");
    app.seed_example(&group_ref(&tenant, "foogroup"), false)
        .await;
    (tenant, "foogroup")
}

#[tokio::test]
async fn get_answers_the_documented_example() {
    let app = TestApp::spawn().await;
    let api = app.api();
    let (t, g) = seeded(&app).await;
    let reply = api.get(&group_licenses_path(&t, g)).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.content_type.as_deref(), Some("application/json"));
    let body = &reply.json;

    // The documented entries, exactly.
    let users = &body["userServices"];
    assert_eq!(
        entry(users, "Call Forwarding Always"),
        &json!({"name": "Call Forwarding Always", "allocated": {"unlimited": true}, "inUse": 2})
    );
    assert_eq!(
        entry(users, "Call Forwarding Busy"),
        &json!({"name": "Call Forwarding Busy", "allocated": {"unlimited": false, "maximum": 7}, "inUse": 4})
    );
    assert_eq!(
        entry(users, "Anonymous Call Rejection"),
        &json!({"name": "Anonymous Call Rejection", "allocated": {"unlimited": false, "maximum": 0}})
    );
    let groups = &body["groupServices"];
    assert_eq!(
        entry(groups, "Hunt Group"),
        &json!({"name": "Hunt Group", "allocated": {"unlimited": true, "noInstance": false}, "inUse": 4})
    );
    assert_eq!(
        entry(groups, "Voice Messaging Group"),
        &json!({"name": "Voice Messaging Group", "allocated": {"unlimited": false, "maximum": 1, "noInstance": true}, "inUse": 0})
    );
    assert_eq!(
        body["servicePacks"],
        json!([{"name": "Basic CFx", "allocated": {"unlimited": false, "maximum": 5}, "inUse": 0}])
    );

    // The whole catalog is listed, in catalog order, licensed or not.
    let names: Vec<&str> = users
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    let catalog: Vec<&str> = UserService::all().map(|s| s.name()).collect();
    assert_eq!(names, catalog);
    assert_eq!(groups.as_array().unwrap().len(), GroupService::count());
    for e in groups.as_array().unwrap() {
        let s = GroupService::parse(e["name"].as_str().unwrap()).unwrap();
        assert_eq!(e["allocated"]["noInstance"], s.no_instance(), "{e}");
    }
}

#[tokio::test]
async fn licensed_true_lists_only_licensed_entries() {
    let app = TestApp::spawn().await;
    let api = app.api();
    let (t, g) = seeded(&app).await;
    let reply = api
        .get(&format!("{}?licensed=true", group_licenses_path(&t, g)))
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.json,
        json!({
            "userServices": [
                {"name": "Call Forwarding Always", "allocated": {"unlimited": true}, "inUse": 2},
                {"name": "Call Forwarding Busy", "allocated": {"unlimited": false, "maximum": 7}, "inUse": 4}],
            "groupServices": [
                {"name": "Hunt Group", "allocated": {"unlimited": true, "noInstance": false}, "inUse": 4},
                {"name": "Voice Messaging Group", "allocated": {"unlimited": false, "maximum": 1, "noInstance": true}, "inUse": 0}],
            "servicePacks": [{"name": "Basic CFx", "allocated": {"unlimited": false, "maximum": 5}, "inUse": 0}]
        })
    );
    let all = api
        .get(&format!("{}?licensed=false", group_licenses_path(&t, g)))
        .await;
    assert_eq!(
        all.json["userServices"].as_array().unwrap().len(),
        UserService::count()
    );

    let bad = api
        .get(&format!("{}?licensed=maybe", group_licenses_path(&t, g)))
        .await;
    assert_eq!(bad.status, 400);
    assert_eq!(
        error_fields(&bad),
        [("INVALID_QUERY".into(), Some("licensed".into()), None)]
    );
}

#[tokio::test]
async fn a_group_never_written_is_the_catalog_unlicensed() {
    let app = TestApp::spawn().await;
    let api = app.api();
    let reply = api
        .get(&group_licenses_path(&unique("never"), "nogroup"))
        .await;
    assert_eq!(reply.status, 200);
    let users = reply.json["userServices"].as_array().unwrap();
    let groups = reply.json["groupServices"].as_array().unwrap();
    assert_eq!(users.len(), UserService::count());
    assert_eq!(groups.len(), GroupService::count());
    assert!(users.iter().all(
        |e| e["allocated"] == json!({"unlimited": false, "maximum": 0}) && e.get("inUse").is_none()
    ));
    assert!(
        groups
            .iter()
            .all(|e| e["allocated"]["maximum"] == 0 && e.get("inUse").is_none())
    );
    assert_eq!(reply.json["servicePacks"], json!([]));
}

#[tokio::test]
async fn put_answers_the_documented_example_and_stores_it() {
    let app = TestApp::spawn().await;
    let api = app.api();
    let (t, g) = seeded(&app).await;
    let reply = api
        .put(
            &group_licenses_path(&t, g),
            &json!({
                "userServices":  [{"name": "Call Forwarding Always", "allocated": {"unlimited": true}}],
                "groupServices": [{"name": "Hunt Group", "allocated": {"unlimited": false, "maximum": 5}}],
                "servicePacks":  [{"name": "Basic CFx", "allocated": {"unlimited": false, "maximum": 5}}],
                "auto_assign": true
            }),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.json);
    assert_eq!(
        reply.json,
        json!({"userServices": [{"name": "Call Forwarding Always", "status": "updated"}],
               "groupServices": [{"name": "Hunt Group", "status": "updated"}],
               "servicePacks": [{"name": "Basic CFx", "status": "updated"}]})
    );

    let client = &app.client;
    let table = &app.licenses_table;
    let group = group_ref(&t, g);
    let stored = |item: Licensable| {
        let (client, table, group) = (&client, &table, &group);
        async move { stored_license(client, table, group, &item).await }
    };
    // Usage survives a change of allocation; auto_assign records the Hunt Group assignment.
    assert_eq!(
        stored(group_service("Hunt Group")).await,
        Some(License {
            allocation: Allocation::Limited(5),
            in_use: 4,
            assigned: true
        })
    );
    assert_eq!(
        stored(user("Call Forwarding Always")).await,
        Some(License {
            allocation: Allocation::Unlimited,
            in_use: 2,
            assigned: false
        })
    );
    assert_eq!(
        stored(pack("Basic CFx")).await,
        Some(License {
            allocation: Allocation::Limited(5),
            in_use: 0,
            assigned: false
        })
    );
    let after = api.get(&group_licenses_path(&t, g)).await;
    assert_eq!(
        entry(&after.json["groupServices"], "Hunt Group"),
        &json!({"name": "Hunt Group", "allocated": {"unlimited": false, "maximum": 5, "noInstance": false}, "inUse": 4})
    );
}

#[tokio::test]
async fn the_response_echoes_only_the_lists_sent_in_request_order() {
    let app = TestApp::spawn().await;
    let api = app.api();
    let t = unique("order");
    let reply = api
        .put(
            &group_licenses_path(&t, "g"),
            &json!({"userServices": [
                {"name": "Call Waiting", "allocated": {"unlimited": false, "maximum": 3}},
                {"name": "Call Return", "allocated": {"unlimited": true}}]}),
        )
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.json,
        json!({"userServices": [{"name": "Call Waiting", "status": "updated"},
                                {"name": "Call Return", "status": "updated"}]})
    );
    let empty = api
        .put(&group_licenses_path(&t, "g"), &json!({"servicePacks": []}))
        .await;
    assert_eq!(
        (empty.status, empty.json),
        (200, json!({"servicePacks": []}))
    );
}

#[tokio::test]
async fn auto_assign_counts_a_no_instance_group_service_once() {
    let app = TestApp::spawn().await;
    let api = app.api();
    let t = unique("assign");
    let reply = api
        .put(
            &group_licenses_path(&t, "g"),
            &json!({"groupServices": [
                {"name": "Voice Messaging Group", "allocated": {"unlimited": false, "maximum": 1}},
                {"name": "Music On Hold", "allocated": {"unlimited": true}},
                {"name": "Call Park", "allocated": {"unlimited": false, "maximum": 0}}],
                "auto_assign": true}),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.json);
    let after = api
        .get(&format!("{}?licensed=true", group_licenses_path(&t, "g")))
        .await;
    assert_eq!(
        after.json["groupServices"],
        json!([
            {"name": "Music On Hold", "allocated": {"unlimited": true, "noInstance": true}, "inUse": 1},
            {"name": "Voice Messaging Group", "allocated": {"unlimited": false, "maximum": 1, "noInstance": true}, "inUse": 1}])
    );
    let client = &app.client;
    let vmg = stored_license(
        client,
        &app.licenses_table,
        &group_ref(&t, "g"),
        &group_service("Voice Messaging Group"),
    )
    .await;
    assert_eq!(vmg.map(|l| l.assigned), Some(true));
    // Not licensed, so not assigned and not stored.
    assert_eq!(
        stored_license(
            client,
            &app.licenses_table,
            &group_ref(&t, "g"),
            &group_service("Call Park")
        )
        .await,
        None
    );

    // Without auto_assign nothing is assigned.
    let t2 = unique("noassign");
    api.put(
        &group_licenses_path(&t2, "g"),
        &json!({"groupServices": [{"name": "Music On Hold", "allocated": {"unlimited": true}}]}),
    )
    .await;
    let moh = stored_license(
        client,
        &app.licenses_table,
        &group_ref(&t2, "g"),
        &group_service("Music On Hold"),
    )
    .await;
    assert_eq!(
        moh,
        Some(License {
            allocation: Allocation::Unlimited,
            in_use: 0,
            assigned: false
        })
    );
}

#[tokio::test]
async fn a_maximum_below_usage_is_a_409_and_nothing_changes() {
    let app = TestApp::spawn().await;
    let api = app.api();
    let (t, g) = seeded(&app).await;
    let before = api.get(&group_licenses_path(&t, g)).await.json;
    let reply = api
        .put(
            &group_licenses_path(&t, g),
            &json!({
                "userServices": [
                    {"name": "Call Return", "allocated": {"unlimited": true}},
                    {"name": "Call Forwarding Busy", "allocated": {"unlimited": false, "maximum": 3}}],
                "groupServices": [{"name": "Hunt Group", "allocated": {"unlimited": false, "maximum": 0}}]
            }),
        )
        .await;
    assert_eq!(reply.status, 409, "{}", reply.json);
    let errs = reply.json["errors"].as_array().unwrap();
    assert_eq!(errs.len(), 2, "{}", reply.json);
    assert_eq!(errs[0]["code"], "BELOW_USAGE");
    assert_eq!(errs[0]["name"], "Call Forwarding Busy");
    assert_eq!(errs[0]["field"], "userServices[1].allocated.maximum");
    assert_eq!(errs[0]["inUse"], 4);
    assert_eq!(errs[1]["name"], "Hunt Group");
    assert_eq!(errs[1]["inUse"], 4);
    assert_eq!(
        api.get(&group_licenses_path(&t, g)).await.json,
        before,
        "a refused PUT changes nothing"
    );
}

#[tokio::test]
async fn maximum_zero_removes_the_licensing() {
    let app = TestApp::spawn().await;
    let api = app.api();
    let (t, g) = seeded(&app).await;
    let reply = api
        .put(
            &group_licenses_path(&t, g),
            &json!({
                "groupServices": [{"name": "Voice Messaging Group", "allocated": {"unlimited": false, "maximum": 0}}],
                "servicePacks": [{"name": "Basic CFx", "allocated": {"unlimited": false, "maximum": 0}}]
            }),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.json);
    let after = api.get(&group_licenses_path(&t, g)).await.json;
    assert_eq!(
        entry(&after["groupServices"], "Voice Messaging Group"),
        &json!({"name": "Voice Messaging Group", "allocated": {"unlimited": false, "maximum": 0, "noInstance": true}})
    );
    assert_eq!(after["servicePacks"], json!([]));
    let client = &app.client;
    assert_eq!(
        stored_license(
            client,
            &app.licenses_table,
            &group_ref(&t, g),
            &pack("Basic CFx")
        )
        .await,
        None
    );
}

#[tokio::test]
async fn a_get_body_can_be_sent_back_as_is() {
    let app = TestApp::spawn().await;
    let api = app.api();
    let (t, g) = seeded(&app).await;
    let before = api.get(&group_licenses_path(&t, g)).await.json;
    let mut licensed = api
        .get(&format!("{}?licensed=true", group_licenses_path(&t, g)))
        .await
        .json;
    licensed["auto_assign"] = json!(false);
    let reply = api.put(&group_licenses_path(&t, g), &licensed).await;
    assert_eq!(reply.status, 200, "{}", reply.json);
    assert_eq!(reply.json["groupServices"].as_array().unwrap().len(), 2);
    assert_eq!(api.get(&group_licenses_path(&t, g)).await.json, before);
}

#[tokio::test]
async fn invalid_items_get_one_error_each_and_change_nothing() {
    let app = TestApp::spawn().await;
    let api = app.api();
    let (t, g) = seeded(&app).await;
    let before = api.get(&group_licenses_path(&t, g)).await.json;
    let reply = api
        .put(
            &group_licenses_path(&t, g),
            &json!({
                "userServices": [
                    {"name": "Call Forwarding Always", "allocated": {"unlimited": false, "maximum": 1}},
                    {"name": "Call Forwarding Busy", "allocated": {"unlimited": false, "maximum": 1000001}},
                    {"name": "Hunt Group", "allocated": {"unlimited": true}},
                    {"name": "Call Return", "allocated": {"unlimited": false}},
                    {"name": "Call Forwarding Always", "allocated": {"unlimited": true}}],
                "groupServices": [
                    {"name": "Call Waiting", "allocated": {"unlimited": true}},
                    {"name": "Music On Hold", "allocated": {"unlimited": true}, "colour": "red"}],
                "servicePacks": [{"name": "", "allocated": {"unlimited": true}}]
            }),
        )
        .await;
    assert_eq!(reply.status, 400);
    let s = |v: &str| Some(v.to_owned());
    assert_eq!(
        error_fields(&reply),
        [
            (
                "INVALID_VALUE".into(),
                s("userServices[1].allocated.maximum"),
                s("Call Forwarding Busy")
            ),
            (
                "UNKNOWN_SERVICE".into(),
                s("userServices[2].name"),
                s("Hunt Group")
            ),
            (
                "MISSING_FIELD".into(),
                s("userServices[3].allocated.maximum"),
                s("Call Return")
            ),
            (
                "DUPLICATE_NAME".into(),
                s("userServices[4].name"),
                s("Call Forwarding Always")
            ),
            (
                "UNKNOWN_SERVICE".into(),
                s("groupServices[0].name"),
                s("Call Waiting")
            ),
            (
                "UNKNOWN_FIELD".into(),
                s("groupServices[1].colour"),
                s("Music On Hold")
            ),
            ("INVALID_VALUE".into(), s("servicePacks[0].name"), s("")),
        ]
    );
    assert_eq!(
        api.get(&group_licenses_path(&t, g)).await.json,
        before,
        "a refused PUT changes nothing"
    );
}

#[tokio::test]
async fn malformed_bodies_are_400s() {
    let app = TestApp::spawn().await;
    let api = app.api();
    let p = group_licenses_path(&unique("malformed"), "g");
    // Nesting far past the parser's depth limit is refused, not followed.
    let deep = format!(
        "{{\"userServices\": {}{}}}",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    for (body, code) in [
        ("{\"userServices\": [", "INVALID_JSON"),
        ("[1, 2]", "INVALID_BODY"),
        ("\"text\"", "INVALID_BODY"),
        ("", "INVALID_BODY"),
        (deep.as_str(), "INVALID_JSON"),
    ] {
        let reply = api.send("PUT", &p, Some(body)).await;
        assert_eq!(reply.status, 400, "{}", &body[..body.len().min(40)]);
        assert_eq!(
            error_fields(&reply)[0].0,
            code,
            "{}",
            &body[..body.len().min(40)]
        );
    }
    let reply = api
        .put(&p, &json!({"userService": [], "auto_assign": 1}))
        .await;
    assert_eq!(reply.status, 400);
    let fields: Vec<_> = error_fields(&reply).into_iter().map(|e| e.1).collect();
    assert_eq!(
        fields,
        [
            Some("auto_assign".to_owned()),
            Some("userService".to_owned())
        ]
    );
}

#[tokio::test]
async fn at_most_forty_eight_items_per_put() {
    let app = TestApp::spawn().await;
    let api = app.api();
    let t = unique("limit");
    let services = |n: usize| -> Value {
        let items: Vec<Value> = UserService::all()
            .take(n)
            .map(|s| json!({"name": s.name(), "allocated": {"unlimited": false, "maximum": 1}}))
            .collect();
        json!({"userServices": items})
    };
    let over = api.put(&group_licenses_path(&t, "g"), &services(49)).await;
    assert_eq!(over.status, 400);
    assert_eq!(error_fields(&over)[0].0, "TOO_MANY_ITEMS");
    let licensed = format!("{}?licensed=true", group_licenses_path(&t, "g"));
    assert_eq!(api.get(&licensed).await.json["userServices"], json!([]));

    // The most: 48 limited licenses, each moving the tenant pool too, with an Idempotency-Key
    // and the audit record.
    let most = api
        .send(
            "PUT",
            &group_licenses_path(&t, "g"),
            Some(&services(48).to_string()),
        )
        .with("Idempotency-Key", "forty-eight")
        .await;
    assert_eq!(most.status, 200, "{}", most.json);
    let listed = api.get(&licensed).await.json;
    assert_eq!(listed["userServices"].as_array().unwrap().len(), 48);
}

#[tokio::test]
async fn bodies_over_256_kib_are_413() {
    let app = TestApp::spawn().await;
    let api = app.api();
    let big = format!(
        "{{\"servicePacks\": [], \"pad\": \"{}\"}}",
        "x".repeat(256 * 1024)
    );
    let reply = api
        .send("PUT", &group_licenses_path(&unique("big"), "g"), Some(&big))
        .await;
    assert_eq!(reply.status, 413);
    assert_eq!(error_fields(&reply)[0].0, "PAYLOAD_TOO_LARGE");
}

#[tokio::test]
async fn ids_are_decoded_and_validated() {
    let app = TestApp::spawn().await;
    let api = app.api();
    let t = unique("ids");
    // An encoded space reaches the group "my group".
    let reply = api
        .put(
            &format!("/api/v1/tenants/{t}/groups/my%20group/licenses/"),
            &json!({"userServices": [{"name": "Call Return", "allocated": {"unlimited": true}}]}),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.json);
    let client = &app.client;
    assert!(
        stored_license(
            client,
            &app.licenses_table,
            &group_ref(&t, "my group"),
            &user("Call Return")
        )
        .await
        .is_some()
    );

    let long = "x".repeat(81);
    for (p, field) in [
        (
            format!("/api/v1/tenants/{long}/groups/g/licenses/"),
            "tenant_id",
        ),
        (
            format!("/api/v1/tenants/{t}/groups/{long}/licenses/"),
            "group_id",
        ),
        (
            format!("/api/v1/tenants/{t}/groups/a%2Fb/licenses/"),
            "group_id",
        ),
        (
            "/api/v1/tenants/a%0Ab/groups/g/licenses/".to_owned(),
            "tenant_id",
        ),
        (
            format!("/api/v1/tenants/{t}/groups/%FF/licenses/"),
            "group_id",
        ),
    ] {
        let reply = api.get(&p).await;
        assert_eq!(reply.status, 400, "{p}");
        assert_eq!(
            error_fields(&reply),
            [("INVALID_ID".to_owned(), Some(field.to_owned()), None)],
            "{p}"
        );
    }
    assert_eq!(
        api.get(&format!(
            "/api/v1/tenants/{}/groups/g/licenses/",
            "x".repeat(80)
        ))
        .await
        .status,
        200
    );
}

#[tokio::test]
async fn seeding_builds_usage_from_records_and_keeps_changes() {
    let app = TestApp::spawn().await;
    // `make run` seeds the example group at every start; a developer's change must survive.
    let api = app.api();
    let client = &app.client;
    let table = &app.licenses_table;
    let tenant = unique("reseed");
    let group = group_ref(&tenant, "foogroup");
    app.seed_example(&group, true).await;
    // Every seeded inUse is backed by its records: 2 + 4 user assignments, 4 instances.
    let keys = partition_keys(client, table, &group).await;
    assert_eq!(
        keys.iter()
            .filter(|k| k.ends_with("#SVC#Call Forwarding Always"))
            .count(),
        2
    );
    assert_eq!(
        keys.iter()
            .filter(|k| k.ends_with("#SVC#Call Forwarding Busy"))
            .count(),
        4
    );
    assert_eq!(
        keys.iter()
            .filter(|k| k.starts_with("INST#Hunt Group#"))
            .count(),
        4
    );
    for (item, license) in example_licenses() {
        assert_eq!(
            stored_license(client, table, &group, &item).await,
            Some(license)
        );
    }

    let p = group_licenses_path(&tenant, "foogroup");
    let change = json!({"userServices": [{"name": "Call Forwarding Busy", "allocated": {"unlimited": false, "maximum": 9}}]});
    assert_eq!(api.put(&p, &change).await.status, 200);
    app.seed_example(&group, true).await;
    let cfb = stored_license(client, table, &group, &user("Call Forwarding Busy")).await;
    assert_eq!(cfb.map(|l| l.allocation), Some(Allocation::Limited(9)));
}
