//! Black-box tests of usage: group services assigned to groups, instances, user assignments, and
//! the racing scenarios of `usage_races.rs` sent as parallel HTTP requests, which
//! the local server (axum, no emulator) serves concurrently against DynamoDB Local.

use api_tests::{Api, Tenant, TestApp, errors, named, unique};
use futures_util::future::join_all;
use serde_json::{Value, json};

#[tokio::test]
async fn group_services_are_assigned_and_unassigned() {
    let app = TestApp::spawn().await;
    let api = app.api();
    let g = Tenant::new("gsvc");
    g.license(
        &api,
        "g",
        json!({"groupServices": [
        {"name": "Voice Messaging Group", "allocated": {"unlimited": false, "maximum": 1}},
        {"name": "Hunt Group", "allocated": {"unlimited": false, "maximum": 2}}]}),
    )
    .await;

    let listed = api.get(&g.services("g")).await;
    assert_eq!(listed.status, 200);
    assert_eq!(
        listed.json,
        json!({"services": [{"name": "Hunt Group", "assigned": false},
                            {"name": "Voice Messaging Group", "assigned": false}]})
    );

    let assign = api
        .post(
            &g.services("g"),
            &json!({"services": named(&["Voice Messaging Group"])}),
        )
        .await;
    assert_eq!(
        (assign.status, &assign.json),
        (
            201,
            &json!({"services": [{"name": "Voice Messaging Group", "assigned": true}]})
        )
    );
    assert_eq!(
        g.in_use(&api, "g", "groupServices", "Voice Messaging Group")
            .await,
        Some(1)
    );
    // Already assigned: success, no change.
    assert_eq!(
        api.post(
            &g.services("g"),
            &json!({"services": named(&["Voice Messaging Group"])})
        )
        .await
        .status,
        201
    );
    assert_eq!(
        g.in_use(&api, "g", "groupServices", "Voice Messaging Group")
            .await,
        Some(1)
    );

    // Not licensed: 409 naming it, and nothing of the request is assigned.
    let refused = api
        .post(
            &g.services("g"),
            &json!({"services": named(&["Hunt Group", "Music On Hold"])}),
        )
        .await;
    assert_eq!(refused.status, 409);
    let errs = errors(&refused);
    assert_eq!(errs.len(), 1);
    assert_eq!(
        (&errs[0]["code"], &errs[0]["name"], &errs[0]["field"]),
        (
            &json!("NOT_LICENSED"),
            &json!("Music On Hold"),
            &json!("services[1].name")
        )
    );
    let listed = api.get(&g.services("g")).await;
    assert_eq!(
        listed.json["services"][0],
        json!({"name": "Hunt Group", "assigned": false})
    );

    let unassign = api
        .delete(
            &g.services("g"),
            &json!({"services": named(&["Voice Messaging Group", "Hunt Group", "Call Park"])}),
        )
        .await;
    assert_eq!(unassign.status, 200, "{}", unassign.json);
    assert_eq!(
        unassign.json["services"][0],
        json!({"name": "Voice Messaging Group", "assigned": false})
    );
    assert_eq!(
        g.in_use(&api, "g", "groupServices", "Voice Messaging Group")
            .await,
        Some(0)
    );
    assert_eq!(
        api.get(&g.services("g")).await.json["services"][1],
        json!({"name": "Voice Messaging Group", "assigned": false})
    );

    let unknown = api
        .post(
            &g.services("g"),
            &json!({"services": named(&["Call Waiting"])}),
        )
        .await;
    assert_eq!(unknown.status, 400);
    assert_eq!(errors(&unknown)[0]["code"], "UNKNOWN_SERVICE");
    let bad = api
        .post(
            &g.services("g"),
            &json!({"services": [{"name": "Hunt Group", "x": 1}], "extra": []}),
        )
        .await;
    assert_eq!(bad.status, 400);
    assert_eq!(errors(&bad).len(), 2);
}

#[tokio::test]
async fn instances_count_against_the_license() {
    let app = TestApp::spawn().await;
    let api = app.api();
    let g = Tenant::new("inst");
    g.license(&api, "g", json!({"groupServices": [{"name": "Hunt Group", "allocated": {"unlimited": false, "maximum": 2}}]})).await;
    let hg = g.instances("g", "Hunt Group");

    let sales = api.post(&hg, &json!({"name": "Sales"})).await;
    assert_eq!(
        (sales.status, &sales.json),
        (201, &json!({"name": "Sales"}))
    );
    // Implicitly assigned to the group.
    assert_eq!(
        api.get(&g.services("g")).await.json["services"],
        json!([{"name": "Hunt Group", "assigned": true}])
    );
    let again = api.post(&hg, &json!({"name": "Sales"})).await;
    assert_eq!(again.status, 409);
    assert_eq!(errors(&again)[0]["code"], "INSTANCE_EXISTS");
    assert_eq!(
        api.post(&hg, &json!({"name": "Second Line Support"}))
            .await
            .status,
        201
    );
    let full = api.post(&hg, &json!({"name": "Third"})).await;
    assert_eq!(full.status, 409);
    let e = &errors(&full)[0];
    assert_eq!(
        (&e["code"], &e["maximum"], &e["inUse"], &e["name"]),
        (
            &json!("OVER_LIMIT"),
            &json!(2),
            &json!(2),
            &json!("Hunt Group")
        )
    );
    assert_eq!(
        g.in_use(&api, "g", "groupServices", "Hunt Group").await,
        Some(2)
    );
    assert_eq!(
        api.get(&hg).await.json,
        json!({"instances": [{"name": "Sales"}, {"name": "Second Line Support"}]})
    );

    // Rules that now bite elsewhere: no unassigning, no maximum below usage, no unlicensing.
    let unassign = api
        .delete(
            &g.services("g"),
            &json!({"services": named(&["Hunt Group"])}),
        )
        .await;
    assert_eq!(unassign.status, 409);
    assert_eq!(errors(&unassign)[0]["code"], "HAS_INSTANCES");
    let lower = api.put(&g.group_licenses("g"), &json!({"groupServices": [{"name": "Hunt Group", "allocated": {"unlimited": false, "maximum": 1}}]})).await;
    assert_eq!(lower.status, 409);
    assert_eq!(
        (&errors(&lower)[0]["code"], &errors(&lower)[0]["inUse"]),
        (&json!("BELOW_USAGE"), &json!(2))
    );

    let removed = api
        .send("DELETE", &format!("{hg}Second%20Line%20Support/"), None)
        .await_empty()
        .await;
    assert_eq!(removed, 204);
    assert_eq!(
        api.send("DELETE", &format!("{hg}Second%20Line%20Support/"), None)
            .await_empty()
            .await,
        404
    );
    assert_eq!(
        g.in_use(&api, "g", "groupServices", "Hunt Group").await,
        Some(1)
    );
    assert_eq!(
        g.records(&app, "g", |k| k.starts_with("INST#Hunt Group#"))
            .await,
        1
    );

    let no_instances = api
        .post(
            &g.instances("g", "Voice Messaging Group"),
            &json!({"name": "x"}),
        )
        .await;
    assert_eq!(no_instances.status, 400);
    assert_eq!(errors(&no_instances)[0]["code"], "NO_INSTANCES");
    let unlicensed = api
        .post(
            &g.instances("g", "Auto Attendant"),
            &json!({"name": "Main"}),
        )
        .await;
    assert_eq!(unlicensed.status, 409);
    assert_eq!(errors(&unlicensed)[0]["code"], "NOT_LICENSED");
    assert_eq!(
        api.get(&g.instances("g", "No Such Service")).await.status,
        404
    );
    let bad_name = api.post(&hg, &json!({"name": "a/b"})).await;
    assert_eq!(bad_name.status, 400);
}

#[tokio::test]
async fn user_assignments_count_and_are_all_or_nothing() {
    let app = TestApp::spawn().await;
    let api = app.api();
    let g = Tenant::new("user");
    g.define(
        &api,
        "Basic CFx",
        &["Call Forwarding Always", "Call Forwarding Busy"],
    )
    .await;
    g.license(&api, "g", json!({
        "userServices": [{"name": "Call Forwarding Always", "allocated": {"unlimited": false, "maximum": 2}},
                         {"name": "Call Forwarding Busy", "allocated": {"unlimited": false, "maximum": 1}},
                         {"name": "Call Return", "allocated": {"unlimited": true}}],
        "servicePacks": [{"name": "Basic CFx", "allocated": {"unlimited": false, "maximum": 1}}]}))
        .await;
    let alice = g.user("g", "alice@example.com");
    let body = json!({"services": named(&["Call Forwarding Always"]), "servicePacks": named(&["Basic CFx"])});
    let assigned = api.post(&alice, &body).await;
    assert_eq!(assigned.status, 201, "{}", assigned.json);
    let expected = json!({"services": [{"name": "Call Forwarding Always", "assigned": true}],
                          "servicePacks": [{"name": "Basic CFx", "assigned": true}]});
    assert_eq!(assigned.json, expected);
    let mut held = expected.clone();
    held["effectiveServices"] = json!([
        {"name": "Call Forwarding Always", "via": ["direct", "Basic CFx"]},
        {"name": "Call Forwarding Busy", "via": ["Basic CFx"]}]);
    assert_eq!(api.get(&alice).await.json, held);
    // Already assigned: success, no change in counts.
    assert_eq!(api.post(&alice, &body).await.status, 201);
    assert_eq!(
        g.in_use(&api, "g", "userServices", "Call Forwarding Always")
            .await,
        Some(1)
    );
    assert_eq!(
        g.in_use(&api, "g", "servicePacks", "Basic CFx").await,
        Some(1)
    );

    // Bob: the pack is full and so is Call Forwarding Busy; one error each, nothing assigned.
    let bob = g.user("g", "bob");
    let refused = api
        .post(&bob, &json!({"services": named(&["Call Return", "Call Forwarding Busy"]), "servicePacks": named(&["Basic CFx"])}))
        .await;
    assert_eq!(refused.status, 409, "{}", refused.json);
    let mut got: Vec<(String, String, String)> = errors(&refused)
        .iter()
        .map(|e| {
            (
                e["code"].as_str().unwrap().into(),
                e["name"].as_str().unwrap().into(),
                e["field"].as_str().unwrap().into(),
            )
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            (
                "OVER_LIMIT".into(),
                "Basic CFx".into(),
                "servicePacks[0].name".into()
            ),
            (
                "OVER_LIMIT".into(),
                "Call Forwarding Busy".into(),
                "services[1].name".into()
            ),
        ]
    );
    assert_eq!(
        api.get(&bob).await.json,
        json!({"services": [], "servicePacks": [], "effectiveServices": []})
    );
    assert_eq!(
        g.in_use(&api, "g", "userServices", "Call Return").await,
        Some(0)
    );

    let unknown = api
        .post(&bob, &json!({"services": named(&["Hunt Group"])}))
        .await;
    assert_eq!(
        (unknown.status, &errors(&unknown)[0]["code"]),
        (400, &json!("UNKNOWN_SERVICE"))
    );

    // Unlicensing what is in use is refused.
    let unlicense = api.put(&g.group_licenses("g"), &json!({"userServices": [{"name": "Call Forwarding Always", "allocated": {"unlimited": false, "maximum": 0}}]})).await;
    assert_eq!(unlicense.status, 409);
    assert_eq!(errors(&unlicense)[0]["inUse"], 1);

    let removed = api
        .delete(
            &alice,
            &json!({"services": named(&["Call Forwarding Always", "Call Return"])}),
        )
        .await;
    assert_eq!(removed.status, 200, "{}", removed.json);
    // Still held through the pack: the unit stays.
    assert_eq!(
        g.in_use(&api, "g", "userServices", "Call Forwarding Always")
            .await,
        Some(1)
    );
    assert_eq!(
        api.delete(
            &alice,
            &json!({"services": named(&["Call Forwarding Always"])})
        )
        .await
        .status,
        200
    );
    assert_eq!(
        g.in_use(&api, "g", "userServices", "Call Forwarding Always")
            .await,
        Some(1)
    );
    assert_eq!(
        api.get(&alice).await.json["servicePacks"],
        json!([{"name": "Basic CFx", "assigned": true}])
    );

    let long = g.user("g", &"u".repeat(162));
    assert_eq!(api.get(&long).await.status, 400);
    assert_eq!(api.get(&g.user("g", &"u".repeat(161))).await.status, 200);
}

#[tokio::test]
async fn no_more_assignable_blocks_new_assignments_only() {
    let app = TestApp::spawn().await;
    let api = app.api();
    let g = Tenant::new("nomore");
    g.license(
        &api,
        "g",
        json!({"userServices": [{"name": "Call Transfer", "allocated": {"unlimited": true}}]}),
    )
    .await;
    let carol = g.user("g", "carol");
    assert_eq!(
        api.post(&carol, &json!({"services": named(&["Call Transfer"])}))
            .await
            .status,
        201
    );

    let config = json!({"instance_name": format!("{}-retired", g.id), "technical_name": "Call Transfer", "no_more_assignable": true});
    assert_eq!(
        api.post("/api/v1/configs/user_services/", &config)
            .await
            .status,
        201
    );

    let dave = api
        .post(
            &g.user("g", "dave"),
            &json!({"services": named(&["Call Transfer"])}),
        )
        .await;
    assert_eq!(dave.status, 409);
    assert_eq!(errors(&dave)[0]["code"], "NO_MORE_ASSIGNABLE");
    // Carol keeps hers; asking again is still a success; removing it works.
    assert_eq!(
        api.post(&carol, &json!({"services": named(&["Call Transfer"])}))
            .await
            .status,
        201
    );
    assert_eq!(
        api.delete(&carol, &json!({"services": named(&["Call Transfer"])}))
            .await
            .status,
        200
    );
    assert_eq!(
        g.in_use(&api, "g", "userServices", "Call Transfer").await,
        Some(0)
    );
    let cleanup = api
        .send(
            "DELETE",
            &format!("/api/v1/configs/user_services/{}-retired/", g.id),
            None,
        )
        .await_empty()
        .await;
    assert_eq!(cleanup, 204);
}

#[tokio::test]
async fn fifty_parallel_assignments_of_twenty_licenses_give_exactly_twenty() {
    let app = TestApp::spawn().await;
    let api = app.api();
    let g = Tenant::new("race-users");
    g.license(&api, "g", json!({"userServices": [{"name": "Call Waiting", "allocated": {"unlimited": false, "maximum": 20}}]})).await;
    let paths: Vec<String> = (0..50)
        .map(|i| g.user("g", &format!("user{i:02}")))
        .collect();
    let body = json!({"services": named(&["Call Waiting"])});
    let replies = join_all(paths.iter().map(|p| api.post(p, &body))).await;
    let created = replies.iter().filter(|r| r.status == 201).count();
    let over = replies
        .iter()
        .filter(|r| r.status == 409 && errors(r)[0]["code"] == "OVER_LIMIT")
        .count();
    assert_eq!(
        (created, over),
        (20, 30),
        "{:?}",
        replies.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    assert_eq!(
        g.in_use(&api, "g", "userServices", "Call Waiting").await,
        Some(20)
    );
    assert_eq!(
        g.records(&app, "g", |k| k.ends_with("#SVC#Call Waiting"))
            .await,
        20
    );
}

#[tokio::test]
async fn parallel_assign_and_unassign_of_one_user_keep_the_count_exact() {
    let app = TestApp::spawn().await;
    let api = app.api();
    let g = Tenant::new("race-flip");
    g.license(&api, "g", json!({"userServices": [{"name": "Call Waiting", "allocated": {"unlimited": false, "maximum": 1}}]})).await;
    let erin = g.user("g", "erin");
    let body = json!({"services": named(&["Call Waiting"])});
    for _round in 0..3 {
        let replies = join_all((0..30).map(|i| {
            let (api, erin, body) = (&api, &erin, &body);
            async move {
                if i % 2 == 0 {
                    api.post(erin, body).await
                } else {
                    api.delete(erin, body).await
                }
            }
        }))
        .await;
        assert!(
            replies.iter().all(|r| r.status < 500),
            "{:?}",
            replies
                .iter()
                .map(|r| (r.status, r.json.clone()))
                .collect::<Vec<_>>()
        );
        let records = g
            .records(&app, "g", |k| k.ends_with("#SVC#Call Waiting"))
            .await as u64;
        assert!(records <= 1);
        assert_eq!(
            g.in_use(&api, "g", "userServices", "Call Waiting").await,
            Some(records)
        );
    }
}

#[tokio::test]
async fn parallel_instances_never_exceed_the_maximum() {
    let app = TestApp::spawn().await;
    let api = app.api();
    let g = Tenant::new("race-inst");
    g.license(&api, "g", json!({"groupServices": [{"name": "Auto Attendant", "allocated": {"unlimited": false, "maximum": 5}}]})).await;
    let aa = g.instances("g", "Auto Attendant");
    let bodies: Vec<Value> = (0..60)
        .map(|i| json!({"name": format!("aa{i:02}")}))
        .collect();
    let replies = join_all(bodies.iter().map(|b| api.post(&aa, b))).await;
    assert_eq!(replies.iter().filter(|r| r.status == 201).count(), 5);
    assert!(replies.iter().all(|r| r.status == 201 || r.status == 409));
    assert_eq!(
        g.in_use(&api, "g", "groupServices", "Auto Attendant").await,
        Some(5)
    );
    assert_eq!(
        g.records(&app, "g", |k| k.starts_with("INST#Auto Attendant#"))
            .await,
        5
    );

    // Create and delete one name in parallel: the count follows the records.
    let listed = api.get(&aa).await.json["instances"][0]["name"]
        .as_str()
        .unwrap()
        .to_owned();
    let one = format!("{aa}{listed}/");
    let name = json!({"name": listed});
    let replies = join_all((0..30).map(|i| {
        let (api, aa, one, name) = (&api, &aa, &one, &name);
        async move {
            if i % 2 == 0 {
                api.post(aa, name).await.status
            } else {
                api.send("DELETE", one, None).await_empty().await
            }
        }
    }))
    .await;
    assert!(replies.iter().all(|s| *s < 500), "{replies:?}");
    let records = g
        .records(&app, "g", |k| k.starts_with("INST#Auto Attendant#"))
        .await as u64;
    assert_eq!(
        g.in_use(&api, "g", "groupServices", "Auto Attendant").await,
        Some(records)
    );
}

#[tokio::test]
async fn no_more_assignable_holds_for_a_body_that_names_only_packs() {
    let app = TestApp::spawn().await;
    let api = app.api();
    let g = Tenant::new("xfer");
    let config = format!("/api/v1/configs/user_services/{}-blocked/", g.id);
    // A service no other test of this binary assigns: the configuration is global.
    let blocked = json!({"technical_name": "Priority Alert", "no_more_assignable": true});
    assert_eq!(api.put(&config, &blocked).await.status, 200);
    g.define(&api, "Xfer", &["Priority Alert"]).await;
    g.license(
        &api,
        "g",
        json!({"userServices": [{"name": "Priority Alert", "allocated": {"unlimited": true}},
                                {"name": "Call Waiting", "allocated": {"unlimited": true}}],
               "servicePacks": [{"name": "Xfer", "allocated": {"unlimited": true}}]}),
    )
    .await;
    let mixed = api
        .post(
            &g.user("g", "ulf"),
            &json!({"services": named(&["Call Waiting"]), "servicePacks": named(&["Xfer"])}),
        )
        .await;
    let packs_only = api
        .post(
            &g.user("g", "ulf"),
            &json!({"servicePacks": named(&["Xfer"])}),
        )
        .await;
    let cleanup = api.send("DELETE", &config, None).await_empty().await;
    for reply in [&mixed, &packs_only] {
        assert_eq!(reply.status, 409, "{}", reply.json);
        assert_eq!(
            (
                &errors(reply)[0]["code"],
                &errors(reply)[0]["name"],
                &errors(reply)[0]["servicePack"]
            ),
            (
                &json!("NO_MORE_ASSIGNABLE"),
                &json!("Priority Alert"),
                &json!("Xfer")
            )
        );
    }
    assert_eq!(
        g.in_use(&api, "g", "userServices", "Priority Alert").await,
        Some(0)
    );
    assert_eq!(g.in_use(&api, "g", "servicePacks", "Xfer").await, Some(0));
    assert_eq!(cleanup, 204);
}

#[tokio::test]
async fn a_repeat_is_the_same_request_however_it_is_spelled() {
    let app = TestApp::spawn().await;
    let api = app.api();
    let g = Tenant::new("spelling");
    g.license(
        &api,
        "g",
        json!({"groupServices": [{"name": "Hunt Group", "allocated": {"unlimited": true}}]}),
    )
    .await;
    let key = format!("{}-k2", g.id);
    let by_slug = g.instances("g", "hunt-group");
    let first = api
        .send("POST", &by_slug, Some(r#"{"name":"N1"}"#))
        .with("Idempotency-Key", &key)
        .await;
    assert_eq!((first.status, &first.json), (201, &json!({"name": "N1"})));
    // Without the trailing slash, by catalog name, with other whitespace: the same request.
    for (path, body) in [
        (by_slug.trim_end_matches('/').to_owned(), r#"{"name":"N1"}"#),
        (g.instances("g", "Hunt Group"), r#"{"name":"N1"}"#),
        (by_slug.clone(), "{ \"name\" :  \"N1\" }\n"),
    ] {
        let again = api
            .send("POST", &path, Some(body))
            .with("Idempotency-Key", &key)
            .await;
        assert_eq!(
            (
                again.status,
                &again.json,
                again.header("idempotent-replayed")
            ),
            (201, &json!({"name": "N1"}), Some("true")),
            "{path} {body}"
        );
    }
    // Another name is another request.
    let other = api
        .send("POST", &by_slug, Some(r#"{"name":"N2"}"#))
        .with("Idempotency-Key", &key)
        .await;
    assert_eq!(
        (other.status, &errors(&other)[0]["code"]),
        (422, &json!("IDEMPOTENCY_KEY_REUSED"))
    );
    assert_eq!(
        g.in_use(&api, "g", "groupServices", "Hunt Group").await,
        Some(1)
    );
}

#[tokio::test]
async fn a_group_admins_keys_are_its_groups_own() {
    let app = TestApp::spawn().await;
    let operator = app.api();
    let tenant = unique("keys");
    let licenses = |g: &str| format!("/api/v1/tenants/{tenant}/groups/{g}/licenses/");
    let instances =
        |g: &str| format!("/api/v1/tenants/{tenant}/groups/{g}/services/hunt-group/instances/");
    for g in ["g1", "g2"] {
        let reply = operator
            .put(
                &licenses(g),
                &json!({"groupServices": [{"name": "Hunt Group", "allocated": {"unlimited": true}}]}),
            )
            .await;
        assert_eq!(reply.status, 200);
    }
    let admin = |g: &str| app.as_caller(api_tests::Caller::group_admin(&tenant, g));
    let key = format!("{tenant}-shared");
    let create = |api: Api, g: &'static str, name: &'static str| {
        let key = key.clone();
        let path = instances(g);
        async move {
            api.send("POST", &path, Some(&json!({"name": name}).to_string()))
                .with("Idempotency-Key", &key)
                .await
        }
    };
    let first = create(admin("g1"), "g1", "Lobby").await;
    assert_eq!(first.status, 201, "{}", first.json);
    // The other group's admin, same key, its own request: it runs (neither replayed from nor
    // refused because of another group's key).
    let second = create(admin("g2"), "g2", "Desk").await;
    assert_eq!(
        (second.status, &second.json),
        (201, &json!({"name": "Desk"}))
    );
    assert_eq!(second.header("idempotent-replayed"), None);
    // The tenant's admin has a scope of its own too.
    let tenant_admin = app.as_caller(api_tests::Caller::tenant_admin(&tenant));
    let third = create(tenant_admin, "g1", "Hall").await;
    assert_eq!((third.status, &third.json), (201, &json!({"name": "Hall"})));
}
