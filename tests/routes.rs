//! The three descriptions of the API's routes agree: the paths of `openapi.yaml`, the router of
//! `cargo lambda watch` (`[workspace.metadata.lambda.watch.router]` in Cargo.toml) and the
//! `HttpApi` events of `template.yaml`, each path going to the same function. The files are read
//! as the text this project writes them in (one route per line), so no YAML or TOML parser is
//! needed.

use std::collections::{BTreeMap, BTreeSet};

fn read(file: &str) -> String {
    std::fs::read_to_string(format!("{}/../{file}", env!("CARGO_MANIFEST_DIR")))
        .unwrap_or_else(|e| panic!("{file}: {e}"))
}

/// `/a/{b}/` and `/a/{b}` are one route; both variants are served.
fn normalize(path: &str) -> String {
    path.trim_end_matches('/').to_owned()
}

/// The function API Gateway routes a path to.
fn function_of(path: &str) -> &'static str {
    if path.starts_with("/api/v1/configs/") {
        "user-services"
    } else {
        "licenses"
    }
}

/// Paths of openapi.yaml (two-space keys under `paths:`) with their methods (four-space keys).
fn openapi_routes() -> BTreeMap<String, BTreeSet<String>> {
    let mut routes: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in read("openapi.yaml").lines() {
        let path = line
            .strip_prefix("  \"")
            .and_then(|l| l.strip_suffix("\":"))
            .filter(|p| p.starts_with('/'));
        let method = line
            .strip_prefix("    ")
            .and_then(|l| l.strip_suffix(':'))
            .filter(|m| ["get", "put", "post", "delete", "patch"].contains(m));
        if let Some(path) = path {
            current = Some(path.to_owned());
            routes.entry(path.to_owned()).or_default();
        } else if !line.starts_with(' ') && !line.is_empty() {
            current = None; // past `paths:`
        } else if let (Some(path), Some(method)) = (&current, method) {
            routes
                .entry(path.clone())
                .or_default()
                .insert(method.to_uppercase());
        }
    }
    routes
}

/// Router entries of Cargo.toml: path (as written) to function.
fn router_routes() -> Vec<(String, String)> {
    let text = read("Cargo.toml");
    let section = text
        .split("[workspace.metadata.lambda.watch.router]")
        .nth(1)
        .expect("the router section");
    section
        .lines()
        .take_while(|l| !l.starts_with('['))
        .filter_map(|l| {
            let (path, function) = l.split_once(" = ")?;
            Some((
                path.trim_matches('"').to_owned(),
                function.trim_matches('"').to_owned(),
            ))
        })
        .collect()
}

/// HttpApi events of template.yaml: path (as written) to the function resource declaring it.
fn template_routes() -> Vec<(String, String)> {
    let mut routes = Vec::new();
    let mut resource = String::new();
    for line in read("template.yaml").lines() {
        if let Some(name) = line.strip_prefix("  ").and_then(|l| l.strip_suffix(':'))
            && !name.starts_with(' ')
        {
            resource = name.to_owned();
        }
        if let Some(path) = line.trim().strip_prefix("Path: ") {
            let function = match resource.as_str() {
                "LicensesFunction" => "licenses",
                "UserServicesFunction" => "user-services",
                other => panic!("an HttpApi event on {other}"),
            };
            routes.push((path.to_owned(), function.to_owned()));
        }
    }
    routes
}

/// The API routes of a list, normalized, each with its function; catch-alls (which answer the
/// JSON 404) are left out, and every route must be listed with and without its trailing slash.
fn api_routes(list: &[(String, String)], what: &str) -> BTreeMap<String, String> {
    let mut routes = BTreeMap::new();
    let mut variants: BTreeMap<String, BTreeSet<bool>> = BTreeMap::new();
    for (path, function) in list {
        if !path.starts_with("/api/") {
            continue;
        }
        let key = normalize(path);
        if let Some(previous) = routes.insert(key.clone(), function.clone()) {
            assert_eq!(&previous, function, "{what}: {key} goes to two functions");
        }
        variants.entry(key).or_default().insert(path.ends_with('/'));
    }
    for (path, slashes) in variants {
        assert_eq!(
            slashes.len(),
            2,
            "{what}: {path} needs both the / and the no-/ variant"
        );
    }
    routes
}

#[test]
fn openapi_router_and_template_describe_the_same_routes() {
    let openapi: BTreeMap<String, String> = openapi_routes()
        .keys()
        .map(|p| (normalize(p), function_of(p).to_owned()))
        .collect();
    let router = api_routes(&router_routes(), "Cargo.toml router");
    let template = api_routes(&template_routes(), "template.yaml");
    assert_eq!(
        openapi.len(),
        10,
        "every route of both functions is in openapi.yaml"
    );
    assert_eq!(router, openapi, "the router and openapi.yaml differ");
    assert_eq!(template, openapi, "template.yaml and openapi.yaml differ");
}

#[test]
fn every_unknown_path_still_reaches_a_function() {
    // So that it answers the JSON 404 rather than the gateway's own.
    assert!(
        router_routes()
            .iter()
            .any(|(p, f)| p == "/{*rest}" && f == "licenses")
    );
    assert!(
        template_routes()
            .iter()
            .any(|(p, f)| p == "/{proxy+}" && f == "licenses")
    );
}

#[test]
fn openapi_documents_methods_for_every_route() {
    for (path, methods) in openapi_routes() {
        assert!(!methods.is_empty(), "{path} has no operations");
    }
}
