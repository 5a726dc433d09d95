//! The routers serve exactly what openapi.yaml documents: every documented path and method is
//! routed (with and without the trailing slash), and any other method of a documented path is a
//! 405 whose `Allow` lists the documented ones. Over HTTP through the local server, which puts
//! both functions' routers behind one port as template.yaml does (tests/api/template.rs).

use api_tests::TestApp;
use api_tests::spec::{Spec, fill};

#[tokio::test]
async fn every_documented_route_is_served_and_nothing_else() {
    let app = TestApp::spawn().await;
    let api = app.api();
    let spec = Spec::load();
    for (template, methods) in &spec.openapi {
        let path = fill(template);
        for variant in [path.clone(), path.trim_end_matches('/').to_owned()] {
            for method in methods {
                let body = (method != "GET").then_some("{}");
                let reply = api.send(method, &variant, body).await;
                // A 404 of a resource the route names is fine; "no route" is not.
                let message = &reply.json["errors"][0]["message"];
                assert!(
                    reply.status != 405 && message != "no route matches this path",
                    "{method} {variant}: {} {}",
                    reply.status,
                    reply.json
                );
            }
            let reply = api.send("PATCH", &variant, Some("{}")).await;
            assert_eq!(reply.status, 405, "PATCH {variant}");
            assert_eq!(reply.json["errors"][0]["code"], "METHOD_NOT_ALLOWED");
            let mut allowed: Vec<String> = reply
                .allow
                .unwrap_or_default()
                .split(',')
                .map(|m| m.trim().to_owned())
                .filter(|m| m != "HEAD")
                .collect();
            let mut documented = methods.clone();
            allowed.sort();
            documented.sort();
            assert_eq!(allowed, documented, "Allow of {variant}");
        }
    }
}

#[test]
fn every_served_route_is_documented() {
    use licensing::http::{licenses, user_services};
    let spec = Spec::load();
    let served = licenses::Route::ALL
        .iter()
        .map(|r| r.path())
        .chain(user_services::Route::ALL.iter().map(|r| r.path()));
    for path in served {
        assert!(
            spec.openapi.contains_key(&format!("{path}/")),
            "{path}/ is served but not in openapi.yaml"
        );
    }
}

#[tokio::test]
async fn undocumented_paths_are_the_json_404() {
    let app = TestApp::spawn().await;
    let api = app.api();
    for path in [
        "/",
        "/api/v1/nothing",
        "/api/v1/tenants/t/groups/g/",
        "/api/v1/tenants/t/groups/g/licenses/extra/",
        "/api/v1/configs/user_services/a/b",
        "/api/v1/configs/other",
    ] {
        let reply = api.get(path).await;
        assert_eq!(reply.status, 404, "{path}");
        assert_eq!(reply.json["errors"][0]["code"], "NOT_FOUND", "{path}");
        assert_eq!(reply.content_type.as_deref(), Some("application/json"));
    }
}
