//! The API reference `make run` serves at `/docs`: Swagger UI from the pinned npm package,
//! rendering openapi.yaml. Loaded in headless Chromium (Debian's, installed by the test
//! tooling) with every host but this machine unresolvable, so the page shows every path of
//! openapi.yaml from local files alone.

use api_tests::TestApp;
use api_tests::harness::chromium;
use api_tests::spec::Spec;

#[tokio::test]
async fn the_reference_shows_every_path_in_a_browser() {
    let browser = chromium();
    let app = TestApp::spawn().await;
    let api = app.api();
    let page = api.get_text("/docs").await;
    assert_eq!(page.0, 200);
    assert!(page.1.contains("swagger-ui-bundle.js"), "{}", page.1);
    for asset in [
        "/docs/swagger-ui-bundle.js",
        "/docs/swagger-ui.css",
        "/docs/openapi.yaml",
    ] {
        assert_eq!(api.get_text(asset).await.0, 200, "{asset}");
    }
    assert_eq!(api.get_text("/docs/package.json").await.0, 404);

    let profile = std::env::temp_dir().join(api_tests::unique("chromium-profile"));
    // Not a blocking wait: the server under test runs on this test's runtime.
    let out = tokio::process::Command::new(&browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            // Nothing from outside: only this machine resolves.
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            "--virtual-time-budget=20000",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("{}/docs", api.base_url()))
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(std::time::Duration::from_secs(90), out)
        .await
        .expect("chromium finished within 90 s")
        .expect("chromium runs");
    let _ = std::fs::remove_dir_all(&profile);
    let dom = String::from_utf8_lossy(&out.stdout);
    let spec = Spec::load();
    assert!(!spec.openapi.is_empty());
    let missing: Vec<&String> = spec
        .openapi
        .keys()
        .filter(|path| !dom.contains(&format!("data-path=\"{path}\"")))
        .collect();
    assert!(
        missing.is_empty(),
        "paths not shown: {missing:?}\n{}\n{}",
        &dom[..dom.len().min(3000)],
        String::from_utf8_lossy(&out.stderr)
    );
}
