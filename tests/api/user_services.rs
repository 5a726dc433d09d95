//! Black-box tests of the user-services configuration API and the licenses filter built on it:
//! HTTP through the local server against DynamoDB Local. Each test has a configuration table of
//! its own (`TestApp`), and still names its instances uniquely.

use api_tests::{Reply, TestApp, unique};
use licensing::domain::InstanceName;
use licensing::store::ConfigStore;
use serde_json::{Value, json};

const LIST: &str = "/api/v1/configs/user_services/";

fn instance_path(name: &str) -> String {
    format!("{LIST}{name}/")
}

fn codes(reply: &Reply) -> Vec<(String, Option<String>)> {
    reply.json["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("an error body: {}", reply.json))
        .iter()
        .map(|e| {
            assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()), "{e}");
            (
                e["code"].as_str().unwrap().to_owned(),
                e["field"].as_str().map(str::to_owned),
            )
        })
        .collect()
}

fn listed<'a>(reply: &'a Reply, prefix: &str) -> Vec<&'a Value> {
    reply.json["user_services"]
        .as_array()
        .unwrap_or_else(|| panic!("a list: {}", reply.json))
        .iter()
        .filter(|e| {
            e["instance_name"]
                .as_str()
                .is_some_and(|n| n.starts_with(prefix))
        })
        .collect()
}

#[tokio::test]
async fn create_fills_defaults_and_get_returns_the_whole_object() {
    let app = TestApp::spawn().await;
    let api = app.api();
    let name = unique("create");
    let reply = api
        .post(
            LIST,
            &json!({"instance_name": name, "technical_name": "Basic Call Logs", "for_hg": true}),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.json);
    let expected = json!({
        "technical_name": "Basic Call Logs", "display_name": "Basic Call Logs", "description": "",
        "no_more_assignable": false, "for_hg": true, "for_ivr": false, "for_cc": false,
        "for_enduser": false, "add_data": {}, "instance_name": name});
    assert_eq!(reply.json, expected);
    let got = api.get(&instance_path(&name)).await;
    assert_eq!((got.status, got.json), (200, expected));

    let stored = app
        .configs()
        .user_service_config(&InstanceName::parse(name.as_str()).unwrap())
        .await
        .unwrap()
        .expect("stored");
    assert_eq!(stored.value.technical_name.name(), "Basic Call Logs");
    assert!(stored.value.audience.for_hg && !stored.value.audience.for_cc);
}

#[tokio::test]
async fn the_documented_object_round_trips() {
    let app = TestApp::spawn().await;
    let api = app.api();
    let name = unique("doc");
    let object = json!({
        "technical_name": "Basic Call Logs", "display_name": "Basic Call Logs", "description": "",
        "no_more_assignable": false, "for_hg": true, "for_ivr": false, "for_cc": false,
        "for_enduser": false, "add_data": {"portal": {"icon": "logs.svg", "order": [1, 2.5, null]}}});
    let mut with_name = object.clone();
    with_name["instance_name"] = json!(name);
    let reply = api.post(LIST, &with_name).await;
    assert_eq!((reply.status, &reply.json), (201, &with_name));
    assert_eq!(api.get(&instance_path(&name)).await.json, with_name);
}

#[tokio::test]
async fn creating_an_existing_instance_is_a_409_and_keeps_it() {
    let app = TestApp::spawn().await;
    let api = app.api();
    let name = unique("dup");
    let first = api
        .post(
            LIST,
            &json!({"instance_name": name, "technical_name": "Call Return"}),
        )
        .await;
    assert_eq!(first.status, 201);
    let second = api
        .post(
            LIST,
            &json!({"instance_name": name, "technical_name": "Call Waiting", "for_cc": true}),
        )
        .await;
    assert_eq!(second.status, 409);
    assert_eq!(
        codes(&second),
        [("ALREADY_EXISTS".into(), Some("instance_name".into()))]
    );
    assert_eq!(
        api.get(&instance_path(&name)).await.json["technical_name"],
        "Call Return"
    );
}

#[tokio::test]
async fn concurrent_creates_of_one_instance_give_exactly_one_201() {
    let app = TestApp::spawn().await;
    let api = app.api();
    let name = unique("race");
    let body = json!({"instance_name": name, "technical_name": "Call Return"});
    let replies = futures_util::future::join_all((0..20).map(|_| api.post(LIST, &body))).await;
    let mut statuses: Vec<u16> = replies.iter().map(|r| r.status).collect();
    statuses.sort();
    let mut expected = vec![201];
    expected.extend([409; 19]);
    assert_eq!(statuses, expected);
}

#[tokio::test]
async fn put_creates_and_replaces_with_defaults_for_omitted_fields() {
    let app = TestApp::spawn().await;
    let api = app.api();
    let name = unique("put");
    let full = json!({"technical_name": "Call Waiting", "display_name": "Waiting", "description": "d",
                      "no_more_assignable": true, "for_cc": true, "add_data": {"a": 1}});
    let created = api.put(&instance_path(&name), &full).await;
    assert_eq!(created.status, 200, "{}", created.json);
    assert_eq!(created.json["display_name"], "Waiting");
    assert_eq!(created.json["instance_name"], json!(name));

    let replaced = api
        .put(
            &instance_path(&name),
            &json!({"technical_name": "Call Return"}),
        )
        .await;
    assert_eq!(replaced.status, 200);
    let expected = json!({
        "technical_name": "Call Return", "display_name": "Call Return", "description": "",
        "no_more_assignable": false, "for_hg": false, "for_ivr": false, "for_cc": false,
        "for_enduser": false, "add_data": {}, "instance_name": name});
    assert_eq!(replaced.json, expected);
    assert_eq!(api.get(&instance_path(&name)).await.json, expected);

    let mismatch = api
        .put(
            &instance_path(&name),
            &json!({"instance_name": "other", "technical_name": "Call Return"}),
        )
        .await;
    assert_eq!(mismatch.status, 400);
    assert_eq!(
        codes(&mismatch),
        [("INVALID_VALUE".into(), Some("instance_name".into()))]
    );
}

#[tokio::test]
async fn delete_removes_once_then_404() {
    let app = TestApp::spawn().await;
    let api = app.api();
    let name = unique("del");
    api.post(
        LIST,
        &json!({"instance_name": name, "technical_name": "Call Return"}),
    )
    .await;
    let deleted = api
        .send("DELETE", &instance_path(&name), None)
        .await_empty()
        .await;
    assert_eq!(deleted, 204);
    assert_eq!(api.get(&instance_path(&name)).await.status, 404);
    let again = api
        .send("DELETE", &instance_path(&name), None)
        .await_empty()
        .await;
    assert_eq!(again, 404);
    assert!(
        app.configs()
            .user_service_config(&InstanceName::parse(name.as_str()).unwrap())
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn instance_names_are_percent_decoded() {
    let app = TestApp::spawn().await;
    let api = app.api();
    let label = unique("enc");
    let reply = api
        .put(
            &format!("{LIST}{label}%20Basic%20Call%20Logs/"),
            &json!({"technical_name": "Basic Call Logs"}),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.json);
    assert_eq!(
        reply.json["instance_name"],
        json!(format!("{label} Basic Call Logs"))
    );
    let got = api
        .get(&format!("{LIST}{label}%20Basic%20Call%20Logs"))
        .await;
    assert_eq!(got.status, 200);
    let bad = api.get(&format!("{LIST}a%2Fb/")).await;
    assert_eq!(bad.status, 400);
    assert_eq!(
        codes(&bad),
        [("INVALID_ID".into(), Some("instance_name".into()))]
    );
}

#[tokio::test]
async fn the_list_is_ordered_summarised_and_filtered() {
    let app = TestApp::spawn().await;
    let api = app.api();
    let p = unique("list");
    for (suffix, flags) in [
        ("c", json!({"for_hg": true, "for_cc": true})),
        ("a", json!({"for_hg": true})),
        ("b", json!({"for_cc": true, "no_more_assignable": true})),
    ] {
        let mut body = flags.clone();
        body["instance_name"] = json!(format!("{p}-{suffix}"));
        body["technical_name"] = json!("Call Return");
        assert_eq!(api.post(LIST, &body).await.status, 201);
    }
    let all = api.get(LIST).await;
    assert_eq!(all.status, 200);
    let names: Vec<String> = all.json["user_services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["instance_name"].as_str().unwrap().to_owned())
        .collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted, "ordered by instance name");
    assert_eq!(
        listed(&all, &p)[1],
        &json!({"technical_name": "Call Return", "display_name": "Call Return", "description": "",
                "no_more_assignable": true, "instance_name": format!("{p}-b")})
    );
    let mine = |r: &Reply| -> Vec<String> {
        listed(r, &p)
            .iter()
            .map(|e| e["instance_name"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        mine(&all),
        [format!("{p}-a"), format!("{p}-b"), format!("{p}-c")]
    );

    let hg = api.get(&format!("{LIST}?for_hg=true")).await;
    assert_eq!(mine(&hg), [format!("{p}-a"), format!("{p}-c")]);
    let hg_cc = api.get(&format!("{LIST}?for_hg=true&for_cc=true")).await;
    assert_eq!(mine(&hg_cc), [format!("{p}-c")]);
    let cc_false = api.get(&format!("{LIST}?for_cc=false")).await;
    assert_eq!(mine(&cc_false).len(), 3, "false filters nothing");

    // The filter as a JSON body on the GET, as existing clients send it; it ANDs with the query.
    let body_cc = api.send("GET", LIST, Some(r#"{"for_cc": true}"#)).await;
    assert_eq!(body_cc.status, 200, "{}", body_cc.json);
    assert_eq!(mine(&body_cc), [format!("{p}-b"), format!("{p}-c")]);
    let both = api
        .send(
            "GET",
            &format!("{LIST}?for_hg=true"),
            Some(r#"{"for_cc": true}"#),
        )
        .await;
    assert_eq!(mine(&both), [format!("{p}-c")]);

    let bad = api.get(&format!("{LIST}?for_hg=maybe")).await;
    assert_eq!(bad.status, 400);
    assert_eq!(
        codes(&bad),
        [("INVALID_QUERY".into(), Some("for_hg".into()))]
    );
    let bad_body = api
        .send("GET", LIST, Some(r#"{"for_hg": "yes", "for_xx": true}"#))
        .await;
    assert_eq!(bad_body.status, 400);
    assert_eq!(
        codes(&bad_body),
        [
            ("INVALID_VALUE".into(), Some("for_hg".into())),
            ("UNKNOWN_FIELD".into(), Some("for_xx".into()))
        ]
    );
}

#[tokio::test]
async fn invalid_objects_name_each_bad_field_and_store_nothing() {
    let app = TestApp::spawn().await;
    let api = app.api();
    let name = unique("invalid");
    let reply = api
        .post(
            LIST,
            &json!({"instance_name": name, "technical_name": "Hunt Group", "display_name": "x".repeat(201),
                    "description": "y".repeat(2001), "for_hg": 1, "add_data": {"big": "z".repeat(16 * 1024)},
                    "colour": "red"}),
        )
        .await;
    assert_eq!(reply.status, 400);
    let mut fields: Vec<String> = codes(&reply).into_iter().filter_map(|(_, f)| f).collect();
    fields.sort();
    assert_eq!(
        fields,
        [
            "add_data",
            "colour",
            "description",
            "display_name",
            "for_hg",
            "technical_name"
        ]
    );
    assert_eq!(api.get(&instance_path(&name)).await.status, 404);

    let missing = api
        .post(LIST, &json!({"technical_name": "Call Return"}))
        .await;
    assert_eq!(
        codes(&missing),
        [("MISSING_FIELD".into(), Some("instance_name".into()))]
    );
    let unknown = api
        .post(
            LIST,
            &json!({"instance_name": name, "technical_name": "No Such Service"}),
        )
        .await;
    assert_eq!(
        codes(&unknown),
        [("UNKNOWN_SERVICE".into(), Some("technical_name".into()))]
    );
    let not_object = api.send("POST", LIST, Some("[]")).await;
    assert_eq!(codes(&not_object), [("INVALID_BODY".into(), None)]);
}

#[tokio::test]
async fn licenses_filtered_by_configuration_list_only_offered_user_services() {
    let app = TestApp::spawn().await;
    let api = app.api();
    let p = unique("offer");
    // Services no other test configures: Call Notify for hunt groups, Call Me Now for call centers.
    for (suffix, service, flags) in [
        (
            "hg",
            "Call Notify",
            json!({"for_hg": true, "for_ivr": true}),
        ),
        ("cc", "Call Me Now", json!({"for_cc": true})),
    ] {
        let mut body = flags;
        body["instance_name"] = json!(format!("{p}-{suffix}"));
        body["technical_name"] = json!(service);
        assert_eq!(api.post(LIST, &body).await.status, 201);
    }
    let group = format!("/api/v1/tenants/{p}/groups/g/licenses/");
    let put = api
        .put(
            &group,
            &json!({"userServices": [
            {"name": "Call Notify", "allocated": {"unlimited": false, "maximum": 3}},
            {"name": "Call Me Now", "allocated": {"unlimited": true}}],
            "groupServices": [{"name": "Hunt Group", "allocated": {"unlimited": true}}]}),
        )
        .await;
    assert_eq!(put.status, 200);

    let names = |r: &Reply| -> Vec<String> {
        r.json["userServices"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let hg = api.get(&format!("{group}?for_hg=true")).await;
    assert_eq!(hg.status, 200);
    let hg_names = names(&hg);
    assert!(hg_names.contains(&"Call Notify".to_owned()));
    assert!(!hg_names.contains(&"Call Me Now".to_owned()));
    assert_eq!(
        hg.json["userServices"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == "Call Notify")
            .unwrap(),
        &json!({"name": "Call Notify", "allocated": {"unlimited": false, "maximum": 3}, "inUse": 0})
    );
    // Group services and packs are not filtered.
    assert_eq!(hg.json["groupServices"].as_array().unwrap().len(), 32);

    let hg_ivr = api
        .get(&format!("{group}?for_hg=true&for_ivr=true&licensed=true"))
        .await;
    assert!(names(&hg_ivr).contains(&"Call Notify".to_owned()));
    assert!(names(&hg_ivr).iter().all(|n| n != "Call Me Now"));
    let cc = api.get(&format!("{group}?for_cc=true&licensed=true")).await;
    assert!(names(&cc).contains(&"Call Me Now".to_owned()));
    assert!(!names(&cc).contains(&"Call Notify".to_owned()));
    let hg_cc = api.get(&format!("{group}?for_hg=true&for_cc=true")).await;
    assert!(!names(&hg_cc).contains(&"Call Notify".to_owned()));
    assert!(!names(&hg_cc).contains(&"Call Me Now".to_owned()));

    let bad = api.get(&format!("{group}?for_enduser=1")).await;
    assert_eq!(
        codes(&bad),
        [("INVALID_QUERY".into(), Some("for_enduser".into()))]
    );
}

#[tokio::test]
async fn configuration_objects_answer_a_strong_etag_and_honour_if_match_and_idempotency_keys() {
    let app = TestApp::spawn().await;
    let api = app.api();
    let name = unique("tagged");
    let path = instance_path(&name);
    let body = json!({"technical_name": "Call Return", "display_name": "One"}).to_string();
    // A PUT with a key: run once, then replayed without running.
    let put = |body: String, key: &'static str| {
        let (api, path) = (&api, path.clone());
        async move {
            api.send("PUT", &path, Some(&body))
                .with("Idempotency-Key", key)
                .await
        }
    };
    let first = put(body.clone(), "config-put-1").await;
    assert_eq!(first.status, 200, "{}", first.json);
    let again = put(body.clone(), "config-put-1").await;
    assert_eq!((again.status, &again.json), (200, &first.json));
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    let reused = put(body.replace("One", "Two"), "config-put-1").await;
    assert_eq!(
        (reused.status, reused.json["errors"][0]["code"].as_str()),
        (422, Some("IDEMPOTENCY_KEY_REUSED"))
    );

    let read = api.get(&path).await;
    let tag = read.header("etag").expect("an ETag").to_owned();
    assert!(tag.starts_with('"') && tag.len() > 2, "a strong tag: {tag}");
    assert_eq!(
        api.get(&path).await.header("etag"),
        Some(tag.as_str()),
        "stable"
    );
    let edit = |display: &str, tag: &str| {
        let body = json!({"technical_name": "Call Return", "display_name": display}).to_string();
        let (api, path, tag) = (&api, path.clone(), tag.to_owned());
        async move {
            api.send("PUT", &path, Some(&body))
                .with("If-Match", &tag)
                .await
        }
    };
    assert_eq!(edit("Two", &tag).await.status, 200);
    let stale = edit("Three", &tag).await;
    assert_eq!(
        (stale.status, stale.json["errors"][0]["code"].as_str()),
        (412, Some("PRECONDITION_FAILED"))
    );
    let now = api.get(&path).await;
    assert_eq!(
        now.json["display_name"], "Two",
        "the stale edit changed nothing"
    );
    assert_ne!(now.header("etag"), Some(tag.as_str()));
    let malformed = api
        .send("DELETE", &path, None)
        .with("If-Match", "no-quotes")
        .await;
    assert_eq!(malformed.status, 400);
    let deleted = api
        .send("DELETE", &path, None)
        .with("If-Match", now.header("etag").unwrap_or_default())
        .await;
    assert_eq!(deleted.status, 204);
    // If-Match on what no longer exists: 412, not a create.
    assert_eq!(edit("Four", "*").await.status, 412);
}
