//! The routes as the deployment files describe them, read by `tests/template/routes.py` with
//! the pinned aws-sam-translator and PyYAML (in `.tools/venv`, installed on first use): the HTTP
//! API routes of `template.yaml` as CloudFormation gets them, and the paths of `openapi.yaml`.

use std::collections::BTreeMap;
use std::process::Command;

/// One route of the HTTP API: `ANY /api/v1/tenants/{proxy+}` invoking `LicensesFunction`.
#[derive(Debug, Clone)]
pub struct GatewayRoute {
    pub method: String,
    pub path: String,
    pub function: String,
}

pub struct Spec {
    pub routes: Vec<GatewayRoute>,
    /// Path of openapi.yaml → its methods, upper case.
    pub openapi: BTreeMap<String, Vec<String>>,
    /// template.yaml as CloudFormation gets it (after the SAM transform).
    pub cfn: serde_json::Value,
}

impl Spec {
    pub fn load() -> Spec {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
        let script = format!("{root}/tests/template/routes.py");
        let out = Command::new(crate::harness::tools_python())
            .args([&script, root])
            .output()
            .expect("the Python of .tools/venv runs");
        assert!(
            out.status.success(),
            "routes.py failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
        let routes = json["routes"]
            .as_array()
            .expect("routes")
            .iter()
            .map(|r| GatewayRoute {
                method: r["method"].as_str().unwrap_or_default().to_owned(),
                path: r["path"].as_str().unwrap_or_default().to_owned(),
                function: r["function"].as_str().unwrap_or_default().to_owned(),
            })
            .collect();
        let openapi = json["openapi"]
            .as_object()
            .expect("openapi")
            .iter()
            .map(|(path, methods)| {
                let methods = methods
                    .as_array()
                    .expect("methods")
                    .iter()
                    .filter_map(|m| m.as_str().map(str::to_owned))
                    .collect();
                (path.clone(), methods)
            })
            .collect();
        let cfn = json["cfn"].clone();
        Spec {
            routes,
            openapi,
            cfn,
        }
    }
}

/// A sample value for each path parameter of openapi.yaml (the tenant's has a space), already
/// percent-encoded for a URL.
pub fn sample(parameter: &str) -> &'static str {
    match parameter {
        "tenant_id" => "acme%20corp",
        "group_id" => "g1",
        "user_id" => "alice@example.com",
        "service" => "hunt-group",
        "kind" => "userServices",
        "pack_name" => "Basic%20CFx",
        "instance_name" => "For_HG",
        other => panic!("no sample for path parameter {other}"),
    }
}

/// `template` with every `{parameter}` replaced by its [`sample`].
pub fn fill(template: &str) -> String {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').expect("closed parameter") + start;
        let parameter = &rest[start + 1..end];
        // After `{kind}` (`userServices`), `{service}` is a user service.
        if parameter == "service" && out.ends_with("/userServices/") {
            out.push_str("call-waiting");
        } else {
            out.push_str(sample(parameter));
        }
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}
