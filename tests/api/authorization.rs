//! Who may do what, with the check on: every role against every route family, allowed and
//! denied, over HTTP through the local server, whose bearer tokens carry the claims API
//! Gateway's authorizer would pass. The Lambda side of claims (events) is in `events.rs`.

use api_tests::{Api, Caller, Reply, TestApp, unique};
use serde_json::{Value, json};

/// One request of a route family.
struct Call {
    family: &'static str,
    method: &'static str,
    path: String,
    body: Option<Value>,
}

/// A request of every route family, for tenant `t` and group `g`.
fn calls(t: &str, g: &str) -> Vec<Call> {
    let group = format!("/api/v1/tenants/{t}/groups/{g}");
    let call = |family, method, path: String, body: Option<Value>| Call {
        family,
        method,
        path,
        body,
    };
    vec![
        call(
            "configs read",
            "GET",
            "/api/v1/configs/user_services/".into(),
            None,
        ),
        call(
            "configs write",
            "POST",
            "/api/v1/configs/user_services/".into(),
            Some(json!({"instance_name": unique("cfg"), "technical_name": "Call Return"})),
        ),
        call(
            "tenant licenses read",
            "GET",
            format!("/api/v1/tenants/{t}/licenses/"),
            None,
        ),
        call(
            "tenant licenses write",
            "PUT",
            format!("/api/v1/tenants/{t}/licenses/"),
            Some(
                json!({"userServices": [{"name": "Call Return", "allocated": {"unlimited": true}}]}),
            ),
        ),
        call(
            "packs read",
            "GET",
            format!("/api/v1/tenants/{t}/service_packs/"),
            None,
        ),
        call(
            "packs write",
            "POST",
            format!("/api/v1/tenants/{t}/service_packs/"),
            Some(json!({"name": unique("pack"), "services": ["Call Return"]})),
        ),
        call(
            "group licenses read",
            "GET",
            format!("{group}/licenses/"),
            None,
        ),
        call(
            "group licenses write",
            "PUT",
            format!("{group}/licenses/"),
            Some(
                json!({"userServices": [{"name": "Call Waiting", "allocated": {"unlimited": true}}]}),
            ),
        ),
        call(
            "group services read",
            "GET",
            format!("{group}/services/"),
            None,
        ),
        call(
            "group services write",
            "POST",
            format!("{group}/services/"),
            Some(json!({"services": [{"name": "Voice Messaging Group"}]})),
        ),
        call(
            "instances read",
            "GET",
            format!("{group}/services/Hunt%20Group/instances/"),
            None,
        ),
        call(
            "instances write",
            "POST",
            format!("{group}/services/Hunt%20Group/instances/"),
            Some(json!({"name": unique("inst")})),
        ),
        call(
            "instance delete",
            "DELETE",
            format!("{group}/services/Hunt%20Group/instances/none/"),
            None,
        ),
        call(
            "user services read",
            "GET",
            format!("{group}/users/alice/services/"),
            None,
        ),
        call(
            "user services write",
            "POST",
            format!("{group}/users/alice/services/"),
            Some(json!({"services": [{"name": "Call Waiting"}]})),
        ),
    ]
}

async fn send(api: &Api, call: &Call) -> Reply {
    let body = call.body.as_ref().map(Value::to_string);
    api.send(call.method, &call.path, body.as_deref()).await
}

/// Sends every call as `caller` and checks which are allowed: a refused one is a 403 with the
/// JSON error; an allowed one is anything but 401/403.
async fn check(caller: Caller, t: &str, g: &str, allowed: &[&str]) {
    let app = TestApp::spawn().await;
    let api = app.as_caller(caller.clone());
    for call in calls(t, g) {
        let reply = send(&api, &call).await;
        if allowed.contains(&call.family) {
            assert!(
                reply.status != 401 && reply.status != 403,
                "{caller:?} should be allowed {}: {} {}",
                call.family,
                reply.status,
                reply.json
            );
        } else {
            assert_eq!(
                reply.status, 403,
                "{caller:?} {}: {}",
                call.family, reply.json
            );
            assert_eq!(reply.json["errors"][0]["code"], "FORBIDDEN");
        }
    }
}

const EVERYTHING: [&str; 15] = [
    "configs read",
    "configs write",
    "tenant licenses read",
    "tenant licenses write",
    "packs read",
    "packs write",
    "group licenses read",
    "group licenses write",
    "group services read",
    "group services write",
    "instances read",
    "instances write",
    "instance delete",
    "user services read",
    "user services write",
];

#[tokio::test]
async fn operators_may_do_everything() {
    let t = unique("auth-op");
    check(Caller::operator(), &t, "g", &EVERYTHING).await;
}

#[tokio::test]
async fn tenant_admins_may_do_all_in_their_tenant_but_set_its_pool() {
    let t = unique("auth-ta");
    let allowed: Vec<&str> = EVERYTHING
        .into_iter()
        .filter(|f| !matches!(*f, "configs write" | "tenant licenses write"))
        .collect();
    check(Caller::tenant_admin(&t), &t, "g", &allowed).await;
}

#[tokio::test]
async fn a_tenant_admin_of_another_tenant_gets_403_whatever_the_method() {
    let app = TestApp::spawn().await;
    let t = unique("auth-other");
    check(
        Caller::tenant_admin("someone-else"),
        &t,
        "g",
        &["configs read"],
    )
    .await;
    let api = app.as_caller(Caller::tenant_admin("someone-else"));
    for method in ["PATCH", "HEAD", "OPTIONS", "DELETE"] {
        // A HEAD answer carries no body over HTTP.
        let status = api
            .send(method, &format!("/api/v1/tenants/{t}/licenses/"), None)
            .await_empty()
            .await;
        assert_eq!(status, 403, "{method}");
    }
}

#[tokio::test]
async fn group_admins_read_their_group_and_change_its_usage_only() {
    let t = unique("auth-ga");
    let allowed = [
        "configs read",
        "group licenses read",
        "group services read",
        "group services write",
        "instances read",
        "instances write",
        "instance delete",
        "user services read",
        "user services write",
    ];
    check(Caller::group_admin(&t, "g"), &t, "g", &allowed).await;
    // Another group of the same tenant is not theirs.
    check(Caller::group_admin(&t, "other"), &t, "g", &["configs read"]).await;
}

#[tokio::test]
async fn a_refused_write_changes_nothing() {
    let app = TestApp::spawn().await;
    let t = unique("auth-nochange");
    let operator = app.api();
    let path = format!("/api/v1/tenants/{t}/groups/g/licenses/");
    let before = operator.get(&format!("{path}?licensed=true")).await.json;
    let admin = app.as_caller(Caller::group_admin(&t, "g"));
    let refused = admin
        .put(
            &path,
            &json!({"userServices": [{"name": "Call Return", "allocated": {"unlimited": true}}]}),
        )
        .await;
    assert_eq!(refused.status, 403);
    assert_eq!(
        operator.get(&format!("{path}?licensed=true")).await.json,
        before
    );
}

#[tokio::test]
async fn no_verified_claims_is_401_everywhere() {
    let app = TestApp::spawn().await;
    let t = unique("auth-anon");
    let api = app.as_caller(Caller::Unverified);
    for call in calls(&t, "g") {
        let reply = send(&api, &call).await;
        assert_eq!(reply.status, 401, "{}", call.family);
        assert_eq!(reply.json["errors"][0]["code"], "UNAUTHENTICATED");
    }
    // A token without a role of this API covers nothing.
    let stranger = app.as_caller(Caller::token("openid profile", Some(&t), Some("g")));
    let reply = stranger
        .get(&format!("/api/v1/tenants/{t}/groups/g/licenses/"))
        .await;
    assert_eq!(reply.status, 403);
    // A tenant-admin scope without its tenant_id claim covers nothing either.
    let incomplete = app.as_caller(Caller::token("licenses/tenant-admin", None, None));
    let reply = incomplete
        .get(&format!("/api/v1/tenants/{t}/licenses/"))
        .await;
    assert_eq!(reply.status, 403);
}

#[tokio::test]
async fn the_local_server_takes_a_request_without_a_token_as_an_operator() {
    let app = TestApp::spawn().await;
    // Local development only (README): the Lambda binaries have no such default, see
    // events.rs, where an event without authorizer claims is a 401.
    let api = app.api();
    let http = reqwest::Client::new();
    let response = http
        .get(format!(
            "{}/api/v1/tenants/{}/licenses/",
            api.base_url(),
            unique("anon")
        ))
        .send()
        .await
        .expect("the local server answers");
    assert_eq!(response.status().as_u16(), 200);
}
