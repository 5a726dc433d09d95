//! One CloudWatch Embedded Metric Format document per request, namespace `Licensing`, written
//! to standard output beside the request's log line (in Lambda, CloudWatch Logs turns it into
//! metrics; under `make run` it is printed as is):
//!
//! - `Requests` (Count) and `Latency` (Milliseconds) by `Route` and `StatusClass`;
//! - `DynamoDbRoundTrips` and `Conflicts` (Count) by `Route`;
//! - `Refusals` (Count) by `ErrorCode`, when the answer is an error.
//!
//! The request id and trace id ride along as properties, so a metric's spike leads to its log
//! lines. Written only once [`enable`]d (the functions' and the local server's `main`), so tests
//! serving the routers in process print nothing.

use crate::store::meter::Counts;
use serde_json::{Value, json};
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

pub const NAMESPACE: &str = "Licensing";

static ENABLED: AtomicBool = AtomicBool::new(false);

/// Writes every request's document to standard output from now on.
pub fn enable() {
    ENABLED.store(true, Ordering::Relaxed);
}

/// What a request's document reports.
#[derive(Debug, Clone)]
pub struct RequestMetrics<'a> {
    /// `METHOD template`, e.g. `GET /api/v1/tenants/{tenant_id}/licenses/`, or `unmatched`.
    pub route: &'a str,
    pub status: u16,
    pub latency_ms: f64,
    pub counts: Counts,
    /// The first error code of an error answer.
    pub error_code: Option<&'a str>,
    pub request_id: &'a str,
    pub trace_id: Option<&'a str>,
}

impl RequestMetrics<'_> {
    /// The EMF document, stamped `timestamp_ms` (Unix milliseconds).
    pub fn document(&self, timestamp_ms: u64) -> Value {
        let mut directives = vec![
            json!({"Namespace": NAMESPACE, "Dimensions": [["Route", "StatusClass"]],
                   "Metrics": [{"Name": "Requests", "Unit": "Count"},
                               {"Name": "Latency", "Unit": "Milliseconds"}]}),
            json!({"Namespace": NAMESPACE, "Dimensions": [["Route"]],
                   "Metrics": [{"Name": "DynamoDbRoundTrips", "Unit": "Count"},
                               {"Name": "Conflicts", "Unit": "Count"}]}),
        ];
        let mut document = json!({
            "Route": self.route,
            "StatusClass": format!("{}xx", self.status / 100),
            "Requests": 1,
            "Latency": (self.latency_ms * 1000.0).round() / 1000.0,
            "DynamoDbRoundTrips": self.counts.round_trips,
            "Conflicts": self.counts.conflicts,
            "request_id": self.request_id,
        });
        if let Some(code) = self.error_code {
            directives.push(
                json!({"Namespace": NAMESPACE, "Dimensions": [["ErrorCode"]],
                                   "Metrics": [{"Name": "Refusals", "Unit": "Count"}]}),
            );
            document["ErrorCode"] = json!(code);
            document["Refusals"] = json!(1);
        }
        if let Some(trace) = self.trace_id {
            document["trace_id"] = json!(trace);
        }
        document["_aws"] = json!({"Timestamp": timestamp_ms, "CloudWatchMetrics": directives});
        document
    }

    /// Writes the document as one line of standard output, if enabled.
    pub fn emit(&self) {
        if !ENABLED.load(Ordering::Relaxed) {
            return;
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let line = format!("{}\n", self.document(now));
        // One write of the whole line, so concurrent requests' lines do not interleave.
        let _ = std::io::stdout().lock().write_all(line.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rules of the EMF specification
    /// (docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html)
    /// a document must follow, checked one by one.
    fn check_emf(doc: &Value) {
        let root = doc.as_object().expect("a JSON object");
        let aws = root["_aws"].as_object().expect("_aws, an object");
        assert!(aws["Timestamp"].is_u64(), "Timestamp: epoch milliseconds");
        let directives = aws["CloudWatchMetrics"]
            .as_array()
            .expect("CloudWatchMetrics");
        assert!(!directives.is_empty());
        const UNITS: &[&str] = &[
            "Seconds",
            "Microseconds",
            "Milliseconds",
            "Bytes",
            "Kilobytes",
            "Megabytes",
            "Gigabytes",
            "Terabytes",
            "Bits",
            "Kilobits",
            "Megabits",
            "Gigabits",
            "Terabits",
            "Percent",
            "Count",
            "Bytes/Second",
            "Kilobytes/Second",
            "Megabytes/Second",
            "Gigabytes/Second",
            "Terabytes/Second",
            "Bits/Second",
            "Kilobits/Second",
            "Megabits/Second",
            "Gigabits/Second",
            "Terabits/Second",
            "Count/Second",
            "None",
        ];
        for directive in directives {
            let namespace = directive["Namespace"].as_str().expect("Namespace");
            assert!(!namespace.is_empty() && namespace.len() <= 1024);
            let dimension_sets = directive["Dimensions"].as_array().expect("Dimensions");
            for set in dimension_sets {
                let set = set.as_array().expect("a dimension set is an array");
                assert!(set.len() <= 30, "at most 30 dimensions per set");
                for name in set {
                    let name = name.as_str().expect("dimension names are strings");
                    let value = root[name].as_str().unwrap_or_else(|| {
                        panic!("dimension {name} must be a string member of the root")
                    });
                    assert!(!value.is_empty() && value.len() <= 1024, "{name}");
                }
            }
            let metrics = directive["Metrics"].as_array().expect("Metrics");
            assert!(metrics.len() <= 100, "at most 100 metrics per directive");
            for metric in metrics {
                let name = metric["Name"].as_str().expect("Name");
                assert!(
                    root[name].is_number(),
                    "metric {name} must be a number of the root"
                );
                if let Some(unit) = metric.get("Unit") {
                    assert!(UNITS.contains(&unit.as_str().expect("Unit")), "{unit}");
                }
            }
        }
    }

    fn sample(error_code: Option<&str>) -> RequestMetrics<'_> {
        RequestMetrics {
            route: "POST /api/v1/tenants/{tenant_id}/groups/{group_id}/users/{user_id}/services/",
            status: if error_code.is_some() { 409 } else { 201 },
            latency_ms: 12.3456,
            counts: Counts {
                round_trips: 3,
                retries: 1,
                conflicts: 1,
            },
            error_code,
            request_id: "req-1",
            trace_id: Some("Root=1-00000000-000000000000000000000000"),
        }
    }

    #[test]
    fn a_success_reports_requests_latency_round_trips_and_conflicts() {
        let doc = sample(None).document(1_764_699_403_120);
        check_emf(&doc);
        assert_eq!(doc["StatusClass"], "2xx");
        assert_eq!(
            doc["_aws"]["CloudWatchMetrics"].as_array().unwrap().len(),
            2
        );
        assert_eq!(
            (
                &doc["Requests"],
                &doc["Latency"],
                &doc["DynamoDbRoundTrips"],
                &doc["Conflicts"]
            ),
            (&json!(1), &json!(12.346), &json!(3), &json!(1))
        );
        assert!(doc.get("Refusals").is_none());
    }

    #[test]
    fn a_refusal_counts_by_its_error_code() {
        let doc = sample(Some("OVER_LIMIT")).document(1);
        check_emf(&doc);
        assert_eq!(doc["StatusClass"], "4xx");
        assert_eq!(
            (&doc["ErrorCode"], &doc["Refusals"]),
            (&json!("OVER_LIMIT"), &json!(1))
        );
        assert_eq!(
            doc["_aws"]["CloudWatchMetrics"][2]["Dimensions"],
            json!([["ErrorCode"]])
        );
    }
}
