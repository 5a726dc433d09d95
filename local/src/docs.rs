//! `make run`'s API reference at `/docs`: Swagger UI (the pinned npm package `swagger-ui-dist`,
//! installed into `.tools/` like the other tools) rendering `openapi.yaml`, every file served
//! from this machine, so nothing is fetched from outside when the page loads. The YAML is read
//! at each request, so an edit shows on reload.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use std::path::PathBuf;
use std::sync::Arc;

/// Where the reference's files are.
#[derive(Clone, Debug)]
pub struct Docs {
    /// `openapi.yaml`.
    pub openapi: PathBuf,
    /// The `swagger-ui-dist` package's directory.
    pub swagger_ui: PathBuf,
}

impl Docs {
    /// The files of a checkout at `root`, with its `.tools/`.
    pub fn of_checkout(root: &std::path::Path) -> Docs {
        Docs {
            openapi: root.join("openapi.yaml"),
            swagger_ui: root.join(".tools/node_modules/swagger-ui-dist"),
        }
    }
}

/// The files of Swagger UI the page loads, and their types: no other file of the package is
/// served.
const ASSETS: &[(&str, &str)] = &[
    ("swagger-ui.css", "text/css"),
    ("swagger-ui-bundle.js", "text/javascript"),
    ("favicon-32x32.png", "image/png"),
];

/// The page: Swagger UI on `/docs/openapi.yaml`, without the online validator (which would
/// send the spec to validator.swagger.io).
const PAGE: &str = r##"<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Service licensing API</title>
  <link rel="icon" href="/docs/favicon-32x32.png">
  <link rel="stylesheet" href="/docs/swagger-ui.css">
</head>
<body>
  <div id="reference"></div>
  <script src="/docs/swagger-ui-bundle.js"></script>
  <script>
    window.ui = SwaggerUIBundle({
      url: "/docs/openapi.yaml",
      dom_id: "#reference",
      validatorUrl: null,
      deepLinking: true,
      docExpansion: "list",
    });
  </script>
</body>
</html>
"##;

/// `/docs` (with or without the slash), the spec and the page's assets.
pub fn router(docs: Docs) -> Router {
    Router::new()
        .route("/docs", get(page))
        .route("/docs/", get(page))
        .route("/docs/openapi.yaml", get(openapi))
        .route("/docs/{file}", get(asset))
        .with_state(Arc::new(docs))
}

async fn page() -> Html<&'static str> {
    Html(PAGE)
}

async fn openapi(State(docs): State<Arc<Docs>>) -> Response {
    file(&docs.openapi, "application/yaml").await
}

async fn asset(State(docs): State<Arc<Docs>>, Path(name): Path<String>) -> Response {
    match ASSETS.iter().find(|(asset, _)| *asset == name) {
        Some((asset, kind)) => file(&docs.swagger_ui.join(asset), kind).await,
        None => (StatusCode::NOT_FOUND, "no such file of the reference").into_response(),
    }
}

async fn file(path: &std::path::Path, kind: &'static str) -> Response {
    match tokio::fs::read(path).await {
        Ok(bytes) => ([(header::CONTENT_TYPE, kind)], bytes).into_response(),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "{} cannot be read ({e}); `make run` installs the reference's files",
                path.display()
            ),
        )
            .into_response(),
    }
}
