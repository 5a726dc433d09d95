//! `make bench` (scripts/bench.sh): the release builds of the licenses function and of the floor
//! function, each under a Lambda Runtime API on loopback (`runtime.rs`), against DynamoDB Local
//! through a counting proxy (`proxy.rs`). Per route: warm p50/p99 of the function and of the
//! floor doing the same DynamoDB calls (one `Query`; or a `TransactWriteItems` with as many
//! actions as the route's transaction, after a `Query` where the route reads first), their
//! ratio, and DynamoDB round trips per request; then cold starts and peak RSS.
//!
//! Usage: `licensing-bench <dir of release binaries>`, with `AWS_ENDPOINT_URL_DYNAMODB`,
//! `LICENSES_TABLE` and `USER_SERVICES_TABLE` set (scripts/stack.sh test sets them).

mod proxy;
mod runtime;

use licensing::domain::{GroupId, GroupRef, TenantId};
use licensing::store::dynamo::keys::{LICENSE_PREFIX, group_pk};
use runtime::Function;
use serde_json::{Value, json};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Samples per route: rounds of the function and the floor taking turns, a few requests each,
/// so that both see the same machine (DynamoDB Local's JIT and GC, the other processes).
const ROUNDS: usize = 100;
const PER_ROUND: usize = 3;
const COLD_STARTS: usize = 5;

#[tokio::main]
async fn main() -> ExitCode {
    match bench().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench: {e}");
            ExitCode::FAILURE
        }
    }
}

/// An API Gateway v2 event of an operator's request, as API Gateway delivers it.
fn event(method: &str, path: &str, query: &str, body: Option<&Value>, key: Option<&str>) -> String {
    let mut headers = json!({"content-type": "application/json", "host": "bench.local"});
    if let Some(key) = key {
        headers["idempotency-key"] = json!(key);
    }
    json!({
        "version": "2.0",
        "routeKey": "ANY /api/v1/tenants/{proxy+}",
        "rawPath": path,
        "rawQueryString": query,
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012", "apiId": "bench", "domainName": "bench.local",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1",
                     "sourceIp": "127.0.0.1", "userAgent": "bench"},
            "requestId": "bench", "routeKey": "ANY /api/v1/tenants/{proxy+}", "stage": "$default",
            "time": "02/Dec/2026:10:00:00 +0000", "timeEpoch": 1796205600000u64,
            "authorizer": {"jwt": {"claims": {"sub": "bench", "scope": "licenses/operator"},
                                   "scopes": null}}
        },
        "isBase64Encoded": false,
        "body": body.map(Value::to_string),
    })
    .to_string()
}

/// The floor's event: `query` as its query string.
fn floor_event(query: &str) -> String {
    event("GET", "/floor", query, None, None)
}

fn status(answer: &Value) -> u64 {
    answer["statusCode"].as_u64().unwrap_or(0)
}

/// Method, path, query and body of a request.
type Request = (&'static str, String, String, Option<Value>);

struct Route {
    name: &'static str,
    keyed: bool,
    /// Users each request assigns to (per-user cost of the bulk route).
    users: usize,
    /// The i-th request of the route.
    request: Box<dyn Fn(usize) -> Request>,
}

struct Row {
    name: String,
    users: usize,
    trips: f64,
    actions: Option<usize>,
    function: Vec<Duration>,
    floor: Vec<Duration>,
    /// CPU time per request of the function and of the floor.
    cpu: (Duration, Duration),
}

fn percentile(samples: &[Duration], p: f64) -> f64 {
    let mut ms: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
    ms.sort_by(f64::total_cmp);
    if ms.is_empty() {
        return f64::NAN;
    }
    let i = ((ms.len() as f64 - 1.0) * p).round() as usize;
    ms[i.min(ms.len() - 1)]
}

async fn bench() -> Result<(), String> {
    let dir = std::env::args()
        .nth(1)
        .ok_or("usage: licensing-bench <dir of release binaries>")?;
    let upstream = std::env::var("AWS_ENDPOINT_URL_DYNAMODB")
        .map_err(|_| "AWS_ENDPOINT_URL_DYNAMODB is not set (run through make bench)")?;
    let upstream = upstream
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let (endpoint, counts) = proxy::start(upstream).await?;
    let env = [("AWS_ENDPOINT_URL_DYNAMODB", endpoint.clone())];
    let logs = format!("{dir}/bench-logs");
    std::fs::create_dir_all(&logs).map_err(|e| e.to_string())?;
    let licenses_bin = format!("{dir}/licenses");
    let floor_bin = format!("{dir}/floor");

    let tenant = format!("bench-{}", std::process::id());
    let group = GroupRef {
        tenant: TenantId::parse(tenant.clone()).map_err(|e| format!("{e:?}"))?,
        group: GroupId::parse("g").map_err(|e| format!("{e:?}"))?,
    };
    let base = format!("/api/v1/tenants/{tenant}/groups/g");
    let read_group = format!("op=query&pk={}&prefix={LICENSE_PREFIX}", group_pk(&group));

    // Cold starts: process start to first answer, the median of a few.
    let mut cold = (Vec::new(), Vec::new());
    let mut first_rss = (0, 0);
    for _ in 0..COLD_STARTS {
        for (binary, event, into, rss) in [
            (
                &licenses_bin,
                event("GET", &format!("{base}/licenses/"), "", None, None),
                &mut cold.0,
                &mut first_rss.0,
            ),
            (
                &floor_bin,
                floor_event(&read_group),
                &mut cold.1,
                &mut first_rss.1,
            ),
        ] {
            let started = Instant::now();
            let function = Function::spawn(binary, &env, &format!("{logs}/cold.log")).await?;
            let (_, answer) = function.invoke(event).await?;
            if status(&answer) != 200 {
                return Err(format!("{binary}: cold request answered {answer}"));
            }
            into.push(started.elapsed());
            *rss = function.peak_rss_kib().unwrap_or(0);
            function.stop().await;
        }
    }

    let function = Function::spawn(&licenses_bin, &env, &format!("{logs}/licenses.log")).await?;
    let floor = Function::spawn(&floor_bin, &env, &format!("{logs}/floor.log")).await?;
    let call = |method: &str, path: &str, body: Value| event(method, path, "", Some(&body), None);
    let unlimited = json!({"unlimited": true});
    for (request, expected) in [
        (
            call(
                "POST",
                &format!("/api/v1/tenants/{tenant}/service_packs/"),
                json!({"name": "Duo", "services": ["Call Waiting", "Call Return"]}),
            ),
            201,
        ),
        (
            call(
                "PUT",
                &format!("{base}/licenses/"),
                json!({
                    "userServices": [{"name": "Call Waiting", "allocated": unlimited},
                                     {"name": "Call Return", "allocated": unlimited},
                                     {"name": "Call Forwarding Always", "allocated": unlimited}],
                    "groupServices": [{"name": "Hunt Group", "allocated": unlimited},
                                      {"name": "Voice Messaging Group", "allocated": unlimited}],
                    "servicePacks": [{"name": "Duo", "allocated": unlimited}]}),
            ),
            200,
        ),
    ] {
        let (_, answer) = function.invoke(request).await?;
        if status(&answer) != expected {
            return Err(format!("seeding answered {answer}"));
        }
    }

    let mut routes = Vec::new();
    let b = base.clone();
    routes.push(Route {
        name: "GET group licenses (full catalog)",
        keyed: false,
        users: 0,
        request: Box::new(move |_| ("GET", format!("{b}/licenses/"), String::new(), None)),
    });
    let b = base.clone();
    routes.push(Route {
        name: "GET group licenses ?licensed=true",
        keyed: false,
        users: 0,
        request: Box::new(move |_| {
            (
                "GET",
                format!("{b}/licenses/"),
                "licensed=true".into(),
                None,
            )
        }),
    });
    for keyed in [false, true] {
        let b = base.clone();
        routes.push(Route {
            name: "PUT group licenses (one change)",
            keyed,
            users: 1,
            request: Box::new(move |i| {
                let maximum = if keyed { 500_000 + i } else { 1000 + i };
                let body = json!({"userServices": [{"name": "Call Forwarding Always",
                    "allocated": {"unlimited": false, "maximum": maximum}}]});
                ("PUT", format!("{b}/licenses/"), String::new(), Some(body))
            }),
        });
        let b = base.clone();
        routes.push(Route {
            name: "user assignment (direct)",
            keyed,
            users: 1,
            request: Box::new(move |i| {
                let body = json!({"services": [{"name": "Call Waiting"}]});
                let user = format!("d{}-{i}@bench", u8::from(keyed));
                (
                    "POST",
                    format!("{b}/users/{user}/services/"),
                    String::new(),
                    Some(body),
                )
            }),
        });
        let b = base.clone();
        routes.push(Route {
            name: "user assignment (pack of 2)",
            keyed,
            users: 1,
            request: Box::new(move |i| {
                let body = json!({"servicePacks": [{"name": "Duo"}]});
                let user = format!("p{}-{i}@bench", u8::from(keyed));
                (
                    "POST",
                    format!("{b}/users/{user}/services/"),
                    String::new(),
                    Some(body),
                )
            }),
        });
        let b = base.clone();
        routes.push(Route {
            name: "user assignment (2 services)",
            keyed,
            users: 1,
            request: Box::new(move |i| {
                let body = json!({"services": [{"name": "Call Waiting"},
                                               {"name": "Call Return"}]});
                let user = format!("t{}-{i}@bench", u8::from(keyed));
                (
                    "POST",
                    format!("{b}/users/{user}/services/"),
                    String::new(),
                    Some(body),
                )
            }),
        });
        // The largest bulk request of 2 services per user: 48 users fill the 100 actions of
        // one transaction (96 holdings, 2 counters, the blocked check, the audit record); a key
        // takes one more action, so 47.
        let b = base.clone();
        let users = if keyed { 47 } else { 48 };
        routes.push(Route {
            name: if keyed {
                "bulk assignment (47 users x 2 services)"
            } else {
                "bulk assignment (48 users x 2 services)"
            },
            keyed,
            users,
            request: Box::new(move |i| {
                let users: Vec<Value> = (0..users)
                    .map(|k| {
                        json!({"user_id": format!("b{}-{i}-{k}@bench", u8::from(keyed)),
                               "services": [{"name": "Call Waiting"},
                                            {"name": "Call Return"}]})
                    })
                    .collect();
                (
                    "POST",
                    format!("{b}/users/services/"),
                    String::new(),
                    Some(json!({"users": users})),
                )
            }),
        });
        let b = base.clone();
        routes.push(Route {
            name: "group service assignment",
            keyed,
            users: 1,
            request: Box::new(move |_| {
                let body = json!({"services": [{"name": "Voice Messaging Group"}]});
                ("POST", format!("{b}/services/"), String::new(), Some(body))
            }),
        });
        let b = base.clone();
        routes.push(Route {
            name: "instance create",
            keyed,
            users: 1,
            request: Box::new(move |i| {
                let body = json!({"name": format!("i{}-{i}", u8::from(keyed))});
                let path = format!("{b}/services/hunt-group/instances/");
                ("POST", path, String::new(), Some(body))
            }),
        });
        let b = base.clone();
        routes.push(Route {
            name: "instance delete",
            keyed,
            users: 1,
            request: Box::new(move |i| {
                let path = format!(
                    "{b}/services/hunt-group/instances/i{}-{i}/",
                    u8::from(keyed)
                );
                ("DELETE", path, String::new(), None)
            }),
        });
    }

    // Each route numbers its requests from 0: its users, values and instance names are its
    // own, and "instance delete" deletes what "instance create" made.
    let mut rows = Vec::new();
    for route in &routes {
        let request = |i: usize| {
            let (method, path, query, body) = (route.request)(i);
            let key = route.keyed.then(|| format!("{tenant}-{}-{i}", route.name));
            event(method, &path, &query, body.as_ref(), key.as_deref())
        };
        // Warm-up (fills the instance's caches, as a warm Lambda has them); also learns the
        // actions of the route's transaction for the floor.
        let warm = 5;
        let mut trips = 0;
        counts.take_transactions();
        for i in 0..warm {
            let (_, answer) = function.invoke(request(i)).await?;
            if !(200..300).contains(&status(&answer)) {
                return Err(format!("{}: answered {answer}", route.name));
            }
        }
        let actions = counts.take_transactions().last().copied();
        let floor_query = match actions {
            None => read_group.clone(),
            Some(k) => format!("op=write&k={k}"),
        };
        let mut row = Row {
            name: format!("{}{}", route.name, if route.keyed { ", keyed" } else { "" }),
            users: route.users,
            trips: 0.0,
            actions,
            function: Vec::new(),
            floor: Vec::new(),
            cpu: Default::default(),
        };
        let mut floor_query = floor_query;
        let mut first = true;
        for round in 0..ROUNDS {
            let cpu = function.cpu();
            for j in 0..PER_ROUND {
                let i = warm + round * PER_ROUND + j;
                let before = counts.calls();
                let (took, answer) = function.invoke(request(i)).await?;
                trips += counts.calls() - before;
                if !(200..300).contains(&status(&answer)) {
                    return Err(format!("{}: answered {answer}", row.name));
                }
                row.function.push(took);
            }
            row.cpu.0 += function.cpu() - cpu;
            if first {
                // A route that reads before it writes: the floor reads the group first too.
                let per_request = trips as f64 / PER_ROUND as f64;
                if actions.is_some() && per_request >= 1.5 {
                    floor_query = format!(
                        "{floor_query}&pk={}&prefix={LICENSE_PREFIX}",
                        group_pk(&group)
                    );
                }
                first = false;
            }
            let cpu = floor.cpu();
            for _ in 0..PER_ROUND {
                let (took, answer) = floor.invoke(floor_event(&floor_query)).await?;
                if status(&answer) != 200 {
                    return Err(format!("floor answered {answer}"));
                }
                row.floor.push(took);
            }
            row.cpu.1 += floor.cpu() - cpu;
        }
        row.trips = trips as f64 / (ROUNDS * PER_ROUND) as f64;
        rows.push(row);
    }

    println!(
        "{:<44} {:>5} {:>7} {:>7} {:>7} {:>7} {:>7} {:>6} {:>7}",
        "route (warm, ms)",
        "trips",
        "actions",
        "p50",
        "p99",
        "floor50",
        "floor99",
        "ratio",
        "cpu/req"
    );
    for row in &rows {
        let (p50, f50) = (percentile(&row.function, 0.5), percentile(&row.floor, 0.5));
        let samples = (ROUNDS * PER_ROUND) as f64;
        println!(
            "{:<44} {:>5.2} {:>7} {:>7.2} {:>7.2} {:>7.2} {:>7.2} {:>6.2} {:>7}",
            row.name,
            row.trips,
            row.actions.map_or("-".to_owned(), |k| k.to_string()),
            p50,
            percentile(&row.function, 0.99),
            f50,
            percentile(&row.floor, 0.99),
            p50 / f50,
            format!(
                "{:.2}/{:.2}",
                row.cpu.0.as_secs_f64() * 1000.0 / samples,
                row.cpu.1.as_secs_f64() * 1000.0 / samples
            )
        );
    }
    // Per user: each bulk request against the single-user assignment of the same services.
    for bulk in rows.iter().filter(|r| r.users > 1) {
        let keyed = bulk.name.ends_with(", keyed");
        let Some(single) = rows.iter().find(|r| {
            r.name.starts_with("user assignment (2 services)")
                && r.name.ends_with(", keyed") == keyed
        }) else {
            continue;
        };
        let (bulk50, single50) = (
            percentile(&bulk.function, 0.5),
            percentile(&single.function, 0.5),
        );
        let per_user = bulk50 / bulk.users as f64;
        println!(
            "per user: {} p50 {bulk50:.2} ms = {per_user:.3} ms and {:.3} round trips per user; \
             {} p50 {single50:.2} ms and {:.2} round trips per user ({:.1}x the bulk's)",
            bulk.name,
            bulk.trips / bulk.users as f64,
            single.name,
            single.trips,
            single50 / per_user
        );
    }
    println!(
        "cold start to first answer (median of {COLD_STARTS}): licenses {:.1} ms, floor {:.1} ms",
        percentile(&cold.0, 0.5),
        percentile(&cold.1, 0.5)
    );
    println!(
        "peak RSS after the first answer: licenses {:.1} MiB, floor {:.1} MiB",
        first_rss.0 as f64 / 1024.0,
        first_rss.1 as f64 / 1024.0
    );
    let (rss, floor_rss) = (function.peak_rss_kib(), floor.peak_rss_kib());
    if let (Some(rss), Some(floor_rss)) = (rss, floor_rss) {
        println!(
            "peak RSS after the routes: licenses {:.1} MiB, floor {:.1} MiB ({:.2}x)",
            rss as f64 / 1024.0,
            floor_rss as f64 / 1024.0,
            rss as f64 / floor_rss as f64
        );
    }
    if let (Some((anon, file)), Some((floor_anon, floor_file))) =
        (function.resident_kib(), floor.resident_kib())
    {
        println!(
            "resident now, heap and stacks / file pages (code): licenses {:.1} / {:.1} MiB, \
             floor {:.1} / {:.1} MiB",
            anon as f64 / 1024.0,
            file as f64 / 1024.0,
            floor_anon as f64 / 1024.0,
            floor_file as f64 / 1024.0
        );
    }
    function.stop().await;
    floor.stop().await;
    Ok(())
}
