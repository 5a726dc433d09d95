//! API Gateway v2 events, shaped as AWS delivers them (decoded `rawPath`, `scopes: null` with
//! the scope in the claims, a flattened `scp`, numbers as strings, base64 bodies), fed through
//! `lambda_http::request::from_str` into each function's router in-process, against DynamoDB
//! Local. The fixtures of `events/` work with `sam local invoke -e` and
//! `cargo lambda invoke --data-file` too.

use api_tests::{TestApp, fixture};
use axum::Router;
use licensing::http::{front, licenses, user_services};
use licensing::store::dynamo::DynamoConfigStore;
use licensing::store::dynamo::DynamoStore;
use serde_json::Value;
use std::time::Duration;
use tower::ServiceExt;

/// Each function's router, as its binary builds it, over the test's tables.
fn routers(app: &TestApp, deadline: Duration) -> (Router, Router) {
    (
        licenses::router(app.store(), app.configs(), deadline),
        user_services::router(app.configs(), deadline),
    )
}

/// What the function answers to `event`, as the Lambda runtime would send it back: status and
/// body, the body checked to go back as text, not base64.
async fn invoke(router: &Router, event: &str) -> (u16, Value) {
    let request = lambda_http::request::from_str(event).expect("an API Gateway v2 event");
    let response = router.clone().oneshot(request).await.expect("infallible");
    let response = lambda_http::IntoResponse::into_response(response).await;
    let status = response.status().as_u16();
    let body = match response.into_body() {
        lambda_http::Body::Empty => Value::Null,
        lambda_http::Body::Text(text) if text.is_empty() => Value::Null,
        lambda_http::Body::Text(text) => serde_json::from_str(&text).expect("a JSON body"),
        lambda_http::Body::Binary(_) => panic!("a response went back base64-encoded"),
        _ => panic!("an unknown body kind"),
    };
    (status, body)
}

#[tokio::test]
async fn the_event_fixtures_answer_as_documented() {
    let app = TestApp::spawn().await;
    app.seed_readme().await;
    let (licenses, user_services) = routers(&app, front::DEADLINE);
    let expected: [(&str, u16, Option<&str>); 13] = [
        ("operator-get-group-licenses.json", 200, None),
        ("operator-put-group-licenses.json", 200, None),
        ("tenant-admin-get-tenant-licenses.json", 200, None),
        (
            "tenant-admin-put-tenant-licenses-denied.json",
            403,
            Some("FORBIDDEN"),
        ),
        ("group-admin-post-user-services.json", 201, None),
        (
            "group-admin-put-group-licenses-denied.json",
            403,
            Some("FORBIDDEN"),
        ),
        ("group-admin-get-user-services-config.json", 200, None),
        (
            "anonymous-get-group-licenses.json",
            401,
            Some("UNAUTHENTICATED"),
        ),
        ("tenant-admin-flattened-scp-decoded-space.json", 200, None),
        (
            "operator-invalid-utf8-base64-body.json",
            400,
            Some("INVALID_JSON"),
        ),
        ("operator-base64-json-body.json", 201, None),
        (
            "operator-delete-instance-decoded-question-mark.json",
            400,
            Some("INVALID_PATH"),
        ),
        ("operator-get-instances-by-slug.json", 200, None),
    ];
    let mut files: Vec<String> =
        std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../events"))
            .expect("events/ exists")
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .collect();
    files.sort();
    let mut listed: Vec<String> = expected.iter().map(|(f, ..)| f.to_string()).collect();
    listed.sort();
    assert_eq!(files, listed, "every fixture is checked here");
    for (file, status, code) in expected {
        let text = fixture(file);
        let event: Value = serde_json::from_str(&text).expect("a JSON fixture");
        // As template.yaml routes them.
        let router = match event["rawPath"].as_str() {
            Some(path) if path.starts_with("/api/v1/configs/user_services") => &user_services,
            _ => &licenses,
        };
        let (got, body) = invoke(router, &text).await;
        assert_eq!(got, status, "{file}: {body}");
        if let Some(code) = code {
            assert_eq!(body["errors"][0]["code"], code, "{file}");
        }
    }
    // The cut path deleted nothing: the seeded instance Sales is still there.
    let (_, instances) = invoke(&licenses, &fixture("operator-get-instances-by-slug.json")).await;
    assert!(
        instances["instances"]
            .as_array()
            .is_some_and(|list| list.iter().any(|i| i["name"] == "Sales")),
        "{instances}"
    );
    // The decoded space reached the group "foo group"; the flattened scp made a tenant admin.
    let (_, view) = invoke(
        &licenses,
        &fixture("tenant-admin-flattened-scp-decoded-space.json"),
    )
    .await;
    assert!(view["userServices"].is_array(), "{view}");
}

/// The licenses router against a DynamoDB at `endpoint`, with a deadline.
async fn router_at(endpoint: String, deadline: Duration) -> Router {
    let client = api_tests::harness::local_client(&endpoint);
    let store = DynamoStore::new(client.clone(), "licenses");
    let configs = DynamoConfigStore::new(client, "user-services");
    licenses::router(store, configs, deadline)
}

#[tokio::test]
async fn an_unreachable_store_is_a_503_json_error_with_retry_after() {
    // A port nobody listens on: every connection is refused.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let endpoint = format!("http://{}", closed.local_addr().expect("address"));
    drop(closed);
    let router = router_at(endpoint, front::DEADLINE).await;
    let get = fixture("operator-get-group-licenses.json");
    let filtered = get.replace(
        "\"rawQueryString\": \"\"",
        "\"rawQueryString\": \"for_hg=true\"",
    );
    assert_ne!(get, filtered, "the fixture has an empty query");
    for event in [get, filtered, fixture("operator-put-group-licenses.json")] {
        let request = lambda_http::request::from_str(&event).expect("an event");
        let response = router.clone().oneshot(request).await.expect("infallible");
        assert_eq!(response.status().as_u16(), 503);
        assert_eq!(
            response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok()),
            Some("1")
        );
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .expect("a body");
        let body: Value = serde_json::from_slice(&bytes).expect("JSON");
        assert_eq!(body["errors"][0]["code"], "STORAGE_UNAVAILABLE", "{body}");
    }
}

/// A DynamoDB that accepts connections and never answers.
async fn black_hole() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    format!("http://{address}")
}

#[tokio::test]
async fn past_the_deadline_the_answer_is_a_503_json_error() {
    let endpoint = black_hole().await;
    let router = router_at(endpoint, Duration::from_millis(300)).await;
    let started = std::time::Instant::now();
    let (status, body) = invoke(&router, &fixture("operator-get-group-licenses.json")).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["errors"][0]["code"], "DEADLINE_EXCEEDED");
    // The message names the router's own deadline, not the Lambda default.
    let message = body["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(message.contains("within 300 ms"), "{message}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}
