//! template.yaml routes every documented path to the function that serves it, under the rules
//! of API Gateway HTTP API, as aws-sam-translator turns the template into CloudFormation:
//!
//! - SAM creates no route for a path ending in `/` (aws/serverless-application-model#1949), so
//!   none may; and no two routes may share a key;
//! - a request picks the exact route first, then the parameter route with the most literal
//!   segments, then the greedy `{proxy+}` route with the longest prefix; `{param}` matches one
//!   non-empty segment, so `/x/` does not match `/x` or `/x/{id}`;
//! - `/x/{proxy+}` takes everything below `/x/`, including `/x/` itself (assumed; not measured
//!   on AWS here).
//!
//! Every openapi.yaml path, with and without its trailing slash and with a sample value for each
//! parameter (the tenant's has a space, as API Gateway delivers it decoded), must reach its
//! function.

use api_tests::spec::{GatewayRoute, Spec, fill};
use std::collections::HashSet;

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Match {
    /// Greedy, by prefix length: the lowest priority.
    Greedy(usize),
    /// With parameters, by number of literal segments.
    Parameters(usize),
    Exact,
}

fn segments(path: &str) -> Vec<&str> {
    path.strip_prefix('/').unwrap_or(path).split('/').collect()
}

fn literal_or_parameter(route: &str, segment: &str) -> Option<bool> {
    let parameter = route.starts_with('{') && route.ends_with('}');
    match (parameter, route == segment) {
        (true, _) if !segment.is_empty() => Some(false),
        (false, true) => Some(true),
        _ => None,
    }
}

/// How `route` matches the decoded `path`, if it does.
fn matches(route: &str, path: &str) -> Option<Match> {
    let (route, path) = (segments(route), segments(path));
    if route.last() == Some(&"{proxy+}") {
        let prefix = &route[..route.len() - 1];
        if path.len() < route.len() {
            return None;
        }
        for (r, p) in prefix.iter().zip(&path) {
            literal_or_parameter(r, p)?;
        }
        return Some(Match::Greedy(prefix.len()));
    }
    if route.len() != path.len() {
        return None;
    }
    let mut literals = 0;
    for (r, p) in route.iter().zip(&path) {
        literals += usize::from(literal_or_parameter(r, p)?);
    }
    Some(if literals == route.len() {
        Match::Exact
    } else {
        Match::Parameters(literals)
    })
}

/// The route API Gateway selects for `method path`.
fn select<'a>(routes: &'a [GatewayRoute], method: &str, path: &str) -> Option<&'a GatewayRoute> {
    routes
        .iter()
        .filter(|r| r.method == "ANY" || r.method == method)
        .filter_map(|r| matches(&r.path, path).map(|m| (m, r.method != "ANY", r)))
        .max_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)))
        .map(|(_, _, r)| r)
}

fn function_of(path: &str) -> &'static str {
    if path.starts_with("/api/v1/configs/") {
        "UserServicesFunction"
    } else {
        "LicensesFunction"
    }
}

#[test]
fn no_route_ends_in_a_slash_and_no_key_repeats() {
    let spec = Spec::load();
    assert!(!spec.routes.is_empty());
    let mut keys = HashSet::new();
    for route in &spec.routes {
        assert!(
            route.path == "/" || !route.path.ends_with('/'),
            "{route:?}: SAM creates no route for a path ending in /"
        );
        assert!(
            keys.insert(format!("{} {}", route.method, route.path)),
            "two routes share the key {} {}",
            route.method,
            route.path
        );
    }
}

#[test]
fn every_documented_path_reaches_the_function_that_serves_it() {
    let spec = Spec::load();
    assert!(spec.openapi.len() >= 10, "openapi.yaml has its paths");
    for (template, methods) in &spec.openapi {
        let filled = fill(template).replace("%20", " ");
        let bare = filled.trim_end_matches('/').to_owned();
        for path in [filled.clone(), bare] {
            for method in methods {
                let route = select(&spec.routes, method, &path)
                    .unwrap_or_else(|| panic!("{method} {path} matches no route"));
                assert_eq!(
                    route.function,
                    function_of(template),
                    "{method} {path} goes to {route:?}"
                );
            }
        }
    }
}

#[test]
fn unknown_paths_still_reach_a_function_for_the_json_404() {
    let spec = Spec::load();
    for path in [
        "/",
        "/api",
        "/api/v2/x/",
        "/api/v1/configs/other",
        "/favicon.ico",
    ] {
        assert!(
            select(&spec.routes, "GET", path).is_some(),
            "{path} would get API Gateway's own 404"
        );
    }
}

#[test]
fn the_selection_rules_are_http_apis() {
    let route = |method: &str, path: &str, function: &str| GatewayRoute {
        method: method.into(),
        path: path.into(),
        function: function.into(),
    };
    let routes = [
        route("ANY", "/x", "bare"),
        route("ANY", "/x/{id}", "param"),
        route("GET", "/x/fixed", "exact"),
        route("ANY", "/x/{proxy+}", "greedy"),
        route("ANY", "/{proxy+}", "root"),
    ];
    let to = |method: &str, path: &str| select(&routes, method, path).map(|r| r.function.as_str());
    assert_eq!(to("GET", "/x"), Some("bare"));
    assert_eq!(to("GET", "/x/fixed"), Some("exact"));
    assert_eq!(to("PUT", "/x/fixed"), Some("param"));
    assert_eq!(to("GET", "/x/a b"), Some("param"));
    assert_eq!(to("GET", "/x/"), Some("greedy"), "/x/ does not match /x");
    assert_eq!(to("GET", "/x/a/b"), Some("greedy"));
    assert_eq!(to("GET", "/y"), Some("root"));
    assert_eq!(matches("/x", "/x/"), None);
    assert_eq!(matches("/x/{id}", "/x/"), None);
}

/// What operators run the service with, as CloudFormation gets it: X-Ray tracing and a log group
/// of the retention parameter for each function, and the alarms, each notifying the one SNS
/// topic (which `AlarmEmail`, when given, is subscribed to).
#[test]
fn the_functions_are_traced_logged_and_alarmed() {
    use serde_json::{Value, json};
    let spec = Spec::load();
    let resources = spec.cfn["Resources"].as_object().expect("resources");
    let of_type = |kind: &str| -> Vec<(&String, &Value)> {
        resources
            .iter()
            .filter(|(_, r)| r["Type"] == kind)
            .collect()
    };
    let functions = of_type("AWS::Lambda::Function");
    assert_eq!(functions.len(), 2);
    for (name, function) in &functions {
        let properties = &function["Properties"];
        assert_eq!(properties["TracingConfig"]["Mode"], "Active", "{name}");
        let group = properties["LoggingConfig"]["LogGroup"]["Ref"]
            .as_str()
            .unwrap_or_else(|| panic!("{name} logs to a log group of the stack"));
        assert_eq!(resources[group]["Type"], "AWS::Logs::LogGroup", "{name}");
        assert_eq!(
            resources[group]["Properties"]["RetentionInDays"],
            json!({"Ref": "LogRetentionDays"}),
            "{name}"
        );
    }
    assert_eq!(spec.cfn["Parameters"]["LogRetentionDays"]["Default"], 30);
    assert_eq!(spec.cfn["Parameters"]["AlarmEmail"]["Default"], "");
    let subscription = of_type("AWS::SNS::Subscription");
    assert_eq!(subscription.len(), 1);
    assert_eq!(subscription[0].1["Condition"], "HasAlarmEmail");

    // Each alarm: the metrics it watches, and where it goes.
    let mut watched = Vec::new();
    for (name, alarm) in of_type("AWS::CloudWatch::Alarm") {
        let properties = &alarm["Properties"];
        assert_eq!(
            properties["AlarmActions"],
            json!([{"Ref": "AlarmTopic"}]),
            "{name}"
        );
        let metrics: Vec<&Value> = match properties["Metrics"].as_array() {
            Some(metrics) => metrics
                .iter()
                .filter_map(|m| m.get("MetricStat").map(|s| &s["Metric"]))
                .collect(),
            None => vec![properties],
        };
        for metric in metrics {
            let dimension = &metric["Dimensions"][0]["Value"]["Ref"];
            watched.push(format!(
                "{} {} {}",
                metric["Namespace"].as_str().unwrap_or_default(),
                metric["MetricName"].as_str().unwrap_or_default(),
                dimension.as_str().unwrap_or_default()
            ));
        }
    }
    watched.sort();
    let mut expected = vec![
        "AWS/Lambda Errors LicensesFunction",
        "AWS/Lambda Throttles LicensesFunction",
        "AWS/Lambda Errors UserServicesFunction",
        "AWS/Lambda Throttles UserServicesFunction",
        "AWS/ApiGateway 5xx LicensingApi",
        "AWS/ApiGateway Count LicensingApi",
        "AWS/DynamoDB ReadThrottleEvents LicensesTable",
        "AWS/DynamoDB WriteThrottleEvents LicensesTable",
        "AWS/DynamoDB ReadThrottleEvents UserServicesTable",
        "AWS/DynamoDB WriteThrottleEvents UserServicesTable",
        "AWS/DynamoDB TransactionConflict LicensesTable",
    ];
    expected.sort();
    assert_eq!(watched, expected);
}
