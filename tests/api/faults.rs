//! The API as DynamoDB in AWS makes it behave: each test serves the API (what `make run`
//! serves) a second time over its tables, with a fault proxy (`support/faults.rs`) in front of
//! DynamoDB Local, drives it over HTTP, checks every answer, shows the faults really happened,
//! and ends with the audit (`licensing-audit`'s checks) on the test's tenant.
//!
//! Those that load the machine on purpose, or whose answers depend on timing (the conflict
//! model, the deadline), run alone among the fault tests (`LOAD.write()`); the others, which
//! mostly wait (retries, held transactions), run beside each other (`LOAD.read()`).

use api_tests::faults::{FaultProxy, Faults, Injected};
use api_tests::{Api, Caller, Reply, Tenant, TestApp, limited, named, tally};
use futures_util::future::join_all;
use serde_json::{Value, json};
use std::future::IntoFuture;
use std::time::{Duration, Instant};

static LOAD: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

/// A test's API (`app`, straight to DynamoDB), a fault proxy with `faults` in front of its
/// DynamoDB, and a second server over the same tables whose DynamoDB is the proxy; `None`
/// when the tests' DynamoDB is not one the proxy can stand in front of (plain HTTP).
struct Stack {
    app: TestApp,
    proxy: FaultProxy,
    server: TestApp,
}

async fn stack(faults: Faults) -> Option<Stack> {
    let Some(upstream) = api_tests::harness::local_endpoint() else {
        eprintln!("fault tests skipped: the tests' DynamoDB is not a local one");
        return None;
    };
    let app = TestApp::spawn().await;
    let proxy = FaultProxy::start(&upstream, faults).await;
    let server = app.behind(&proxy.endpoint()).await;
    Some(Stack { app, proxy, server })
}

/// The conflict model on: every transaction held a few ms, so overlapping ones cancel.
fn conflicts(seed: u64) -> Faults {
    Faults {
        seed,
        conflicts: true,
        hold: Duration::from_millis(3),
        ..Faults::default()
    }
}

/// Every transaction held 1.5 s at the proxy: long enough to change what it read meanwhile.
fn held(seed: u64) -> Faults {
    Faults {
        seed,
        hold: Duration::from_millis(1500),
        ..Faults::default()
    }
}

/// Reads whose request holds `text` answered 1.5 s late; everything else at once.
fn slow_reads(seed: u64, text: &'static str) -> Faults {
    Faults {
        seed,
        slow_reads: Some((text, Duration::from_millis(1500))),
        ..Faults::default()
    }
}

/// The stage of a race between a bulk assignment and another change: a tenant whose group `g`
/// licenses 5 units of `service`, the operator's API straight to DynamoDB (`direct`) and
/// through the proxy with `faults` (`slow`).
struct Race {
    stack: Stack,
    t: Tenant,
    direct: Api,
    slow: Api,
}

async fn race_stage(faults: Faults, tenant: &str, service: &str) -> Option<Race> {
    let stack = stack(faults).await?;
    let direct = stack.app.api();
    let t = Tenant::new(tenant);
    t.license(
        &direct,
        "g",
        json!({"userServices": [{"name": service, "allocated": limited(5)}]}),
    )
    .await;
    let slow = Api::at(&stack.server.base, Caller::operator());
    Some(Race {
        stack,
        t,
        direct,
        slow,
    })
}

/// The `status` of each user's first service in a bulk answer.
fn first_statuses(reply: &Reply) -> Vec<Value> {
    reply.json["users"]
        .as_array()
        .map(|users| {
            users
                .iter()
                .map(|u| u["services"][0]["status"].clone())
                .collect()
        })
        .unwrap_or_default()
}

/// The bulk POST giving `service` to each of `users` in group `g`: its path and body.
fn bulk_assignment(t: &Tenant, service: &str, users: &[&str]) -> (String, Value) {
    let path = format!("/api/v1/tenants/{}/groups/g/users/services/", t.id);
    let users: Vec<Value> = users
        .iter()
        .map(|user| json!({"user_id": user, "services": named(&[service])}))
        .collect();
    (path, json!({ "users": users }))
}

/// 200 users at once for one service: the license counter is the hot item.
async fn race(api: &Api, t: &Tenant, group: &str, maximum: u32) -> Vec<Reply> {
    t.license(
        api,
        group,
        json!({"userServices": [{"name": "Call Waiting", "allocated": limited(maximum)}]}),
    )
    .await;
    let paths: Vec<String> = (0..200).map(|i| t.user(group, &format!("u{i}"))).collect();
    let body = json!({"services": named(&["Call Waiting"])});
    let started = Instant::now();
    let replies = join_all(paths.iter().map(|p| api.post(p, &body))).await;
    eprintln!(
        "200 assignments, maximum {maximum}: {:?}",
        started.elapsed()
    );
    replies
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_assignments_under_conflicts_count_exactly() {
    let _alone = LOAD.write().await;
    let Some(Stack { app, proxy, server }) = stack(conflicts(1)).await else {
        return;
    };
    let api = Api::at(&server.base, Caller::operator());
    let t = Tenant::new("race200");

    // DynamoDB Local's JIT is cold at the start of the run and then several times slower than
    // later (DynamoDB has no such phase): the same load once through the stack's own server
    // first, nothing asserted.
    race(&app.api(), &t, "warm-up", 1000).await;

    let replies = race(&api, &t, "big", 1000).await;
    assert_eq!(
        tally(&replies),
        [((201, String::new()), 200)].into(),
        "maximum 1000"
    );
    assert_eq!(
        t.in_use(&api, "big", "userServices", "Call Waiting").await,
        Some(200)
    );

    let replies = race(&api, &t, "g", 150).await;
    assert_eq!(
        tally(&replies),
        [
            ((201, String::new()), 150),
            ((409, "OVER_LIMIT".into()), 50)
        ]
        .into(),
        "maximum 150"
    );
    assert_eq!(
        t.in_use(&api, "g", "userServices", "Call Waiting").await,
        Some(150)
    );

    let injected = proxy.injected();
    assert!(
        Injected::get(&injected.conflicts) >= 100,
        "the race met conflicts: {injected:?}"
    );
    app.audit_clean(&t.id).await;
}

/// One provisioning script, every answer recorded with the tenant's name taken out.
async fn script(api: &Api, t: &Tenant) -> Vec<(u16, Value)> {
    let g = t.group_licenses("g");
    let hunt = format!(
        "/api/v1/tenants/{}/groups/g/services/Hunt%20Group/instances/",
        t.id
    );
    let mut answers = Vec::new();
    let mut record = |r: Reply| {
        let text = r.json.to_string().replace(&t.id, "TENANT");
        answers.push((r.status, serde_json::from_str(&text).unwrap_or(Value::Null)));
    };
    let pack = json!({"name": "Basic", "services": ["Call Forwarding Always", "Call Waiting"]});
    record(api.post(&t.packs(), &pack).await);
    record(api.post(&t.packs(), &pack).await);
    record(
        api.put(
            &g,
            &json!({
                "userServices": [
                    {"name": "Call Waiting", "allocated": limited(2)},
                    {"name": "Call Forwarding Always", "allocated": {"unlimited": true}},
                ],
                "groupServices": [{"name": "Hunt Group", "allocated": limited(1)}],
                "servicePacks": [{"name": "Basic", "allocated": limited(1)}],
            }),
        )
        .await,
    );
    let cw = json!({"services": named(&["Call Waiting"])});
    let basic = json!({"servicePacks": named(&["Basic"])});
    for (user, body) in [
        ("u1", &cw),
        ("u2", &cw),
        ("u3", &cw),
        ("u1", &basic),
        ("u3", &basic),
        ("u1", &cw),
    ] {
        record(api.post(&t.user("g", user), body).await);
    }
    for name in ["Sales", "Sales", "Support"] {
        record(api.post(&hunt, &json!({"name": name})).await);
    }
    record(api.send("DELETE", &format!("{hunt}Sales"), None).await);
    record(api.send("DELETE", &format!("{hunt}Sales"), None).await);
    for answer in churn(api, t).await {
        record(answer);
    }
    for (user, body) in [("u2", &cw), ("u2", &cw), ("u1", &basic)] {
        record(api.delete(&t.user("g", user), body).await);
    }
    record(api.send("DELETE", &t.pack("Basic"), None).await);
    record(api.get(&g).await);
    record(api.get(&t.user("g", "u1")).await);
    answers
}

/// Creates and deletes: each, run twice, would answer differently (exists, 404).
async fn churn(api: &Api, t: &Tenant) -> Vec<Reply> {
    let hunt = format!(
        "/api/v1/tenants/{}/groups/g/services/Hunt%20Group/instances/",
        t.id
    );
    let mut answers = Vec::new();
    for round in 0..8 {
        let name = format!("Line {round}");
        answers.push(api.post(&hunt, &json!({"name": name})).await);
        answers.push(
            api.send("DELETE", &format!("{hunt}Line%20{round}"), None)
                .await,
        );
        let pack = json!({"name": format!("P{round}"), "services": ["Call Waiting"]});
        answers.push(api.post(&t.packs(), &pack).await);
        answers.push(
            api.send("DELETE", &t.pack(&format!("P{round}")), None)
                .await,
        );
    }
    answers
}

/// The control of the test below: with the proxy dropping `ClientRequestToken`s, the same
/// losses do change answers (a resent create finds its own item, a resent delete finds none),
/// so the test below can tell.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_request_tokens_lost_responses_would_change_answers() {
    let _beside = LOAD.read().await;
    let Some(Stack {
        app: _,
        proxy: _proxy,
        server,
    }) = stack(Faults {
        seed: 7,
        lose: 0.3,
        strip_tokens: true,
        ..Faults::default()
    })
    .await
    else {
        return;
    };
    let api = Api::at(&server.base, Caller::operator());
    let t = Tenant::new("tokenless");
    t.license(
        &api,
        "g",
        json!({"groupServices": [{"name": "Hunt Group", "allocated": limited(1)}]}),
    )
    .await;
    let changed = churn(&api, &t)
        .await
        .iter()
        .filter(|r| r.status >= 400)
        .count();
    assert!(
        changed > 0,
        "some resent write answered for its own first run"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_responses_change_no_answer() {
    let _beside = LOAD.read().await;
    let Some(Stack { app, proxy, server }) = stack(Faults {
        seed: 2,
        lose: 0.2,
        ..Faults::default()
    })
    .await
    else {
        return;
    };
    let faulty = Api::at(&server.base, Caller::operator());
    let without = script(&app.api(), &Tenant::new("lost")).await;
    // Twice on the faulty path gives the loss enough transactions to hit.
    let (a, b) = (Tenant::new("lost"), Tenant::new("lost"));
    assert_eq!(script(&faulty, &a).await, without);
    assert_eq!(script(&faulty, &b).await, without);
    let injected = proxy.injected();
    eprintln!("lost responses: {injected:?}");
    assert!(
        Injected::get(&injected.lost) >= 10,
        "responses were lost: {injected:?}"
    );
    app.audit_clean(&a.id).await;
    app.audit_clean(&b.id).await;
}

/// A success, or a 503 JSON that says when to retry.
fn success_or_retry_later(r: &Reply, what: &str) {
    if (200..300).contains(&r.status) {
        return;
    }
    assert_eq!(r.status, 503, "{what}: {}", r.json);
    assert_eq!(r.header("retry-after"), Some("1"), "{what}");
    assert!(
        ["STORAGE_UNAVAILABLE", "DEADLINE_EXCEEDED"].contains(&r.code()),
        "{what}: {}",
        r.json
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_answers_success_or_503_with_retry_after() {
    let _alone = LOAD.write().await;
    let Some(Stack { app, proxy, server }) = stack(Faults {
        seed: 3,
        throttle: 0.3,
        ..Faults::default()
    })
    .await
    else {
        return;
    };
    let api = Api::at(&server.base, Caller::operator());
    let t = Tenant::new("throttled");
    // Forty user services, one per user, licensed through the stack's own server: forty
    // writes at once, each on a counter of its own, so what they meet is the throttling (a hot
    // counter's conflicts are the subject of other tests).
    let services: Vec<&str> = licensing::domain::UserService::all()
        .take(40)
        .map(|s| s.name())
        .collect();
    let unlimited: Vec<Value> = services
        .iter()
        .map(|s| json!({"name": s, "allocated": {"unlimited": true}}))
        .collect();
    t.license(&app.api(), "g", json!({"userServices": unlimited}))
        .await;
    let paths: Vec<String> = (0..40).map(|i| t.user("g", &format!("u{i}"))).collect();
    let api = &api;
    let writes = join_all(paths.iter().zip(&services).map(|(p, service)| {
        let body = json!({"services": named(&[service])});
        async move { api.post(p, &body).await }
    }))
    .await;
    let reads = join_all(paths.iter().map(|p| api.get(p))).await;
    let mut retry_later = 0;
    for (r, what) in writes
        .iter()
        .zip(paths.iter())
        .chain(reads.iter().zip(paths.iter()))
    {
        // Forty assignments in one group also check the group's shared items; on a loaded
        // machine, throttling's backoffs plus those conflicts can outlast the deadline: the
        // documented 409 CONCURRENT_UPDATE (nothing changed, retry), never anything else.
        if r.status == 409 && r.code() == "CONCURRENT_UPDATE" {
            retry_later += 1;
            continue;
        }
        success_or_retry_later(r, what);
        retry_later += usize::from(r.status == 503);
    }
    assert!(
        writes.iter().any(|r| r.status == 201),
        "some assignments got through: {:?}",
        tally(&writes)
    );
    let injected = proxy.injected();
    assert!(
        Injected::get(&injected.throttled) >= 10,
        "calls were throttled: {injected:?}"
    );
    eprintln!("throttling: {retry_later} of 80 answers were 503; {injected:?}");
    app.audit_clean(&t.id).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_stopped_is_503_within_the_deadline_then_served_again() {
    let _alone = LOAD.write().await;
    let Some(Stack { app, proxy, server }) = stack(conflicts(4)).await else {
        return;
    };
    let api = Api::at(&server.base, Caller::operator());
    let t = Tenant::new("stopped");
    t.license(
        &api,
        "g",
        json!({"userServices": [{"name": "Call Waiting", "allocated": {"unlimited": true}}]}),
    )
    .await;
    let body = json!({"services": named(&["Call Waiting"])});
    // Load, then DynamoDB goes away.
    let warm: Vec<String> = (0..20).map(|i| t.user("g", &format!("w{i}"))).collect();
    let load = join_all(warm.iter().map(|p| api.post(p, &body)));
    let (before, ()) = tokio::join!(load, async {
        tokio::time::sleep(Duration::from_millis(30)).await;
        proxy.stop();
    });
    for r in &before {
        assert!(
            r.status == 201 || r.status == 503,
            "{} {}",
            r.status,
            r.json
        );
    }
    let paths: Vec<String> = (0..20).map(|i| t.user("g", &format!("s{i}"))).collect();
    let timed = |p: String| {
        let api = &api;
        let body = &body;
        async move {
            let started = Instant::now();
            let reply = if p.ends_with("s0/services/") {
                api.get(&p).await
            } else {
                api.post(&p, body).await
            };
            (reply, started.elapsed())
        }
    };
    let during = join_all(paths.iter().cloned().map(timed)).await;
    for (r, took) in &during {
        assert_eq!(r.status, 503, "{}", r.json);
        success_or_retry_later(r, "while stopped");
        assert!(
            *took < Duration::from_secs(8),
            "answered within the deadline: {took:?}"
        );
    }

    proxy.start_again().await;
    let started = Instant::now();
    loop {
        let r = api.post(&t.user("g", "after"), &body).await;
        if r.status == 201 {
            break;
        }
        success_or_retry_later(&r, "after the restart");
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "the server serves again after the restart"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    app.audit_clean(&t.id).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_idempotency_key_sent_ten_times_runs_once() {
    let _alone = LOAD.write().await;
    // Slow transactions, so the repeats arrive while the first runs.
    let Some(Stack {
        app,
        proxy: _proxy,
        server,
    }) = stack(Faults {
        seed: 5,
        conflicts: true,
        hold: Duration::from_millis(300),
        ..Faults::default()
    })
    .await
    else {
        return;
    };
    let api = Api::at(&server.base, Caller::operator());
    let t = Tenant::new("idem");
    t.license(
        &api,
        "g",
        json!({"groupServices": [{"name": "Hunt Group", "allocated": limited(5)}]}),
    )
    .await;
    let hunt = format!(
        "/api/v1/tenants/{}/groups/g/services/Hunt%20Group/instances/",
        t.id
    );
    let body = json!({"name": "Sales"}).to_string();
    let send = || {
        api.send("POST", &hunt, Some(&body))
            .with("Idempotency-Key", "create-sales-1")
    };
    let replies = join_all((0..10).map(|_| send().into_future())).await;
    // The record is an action of the write's own transaction: one request commits it, and each
    // repeat meets it (after waiting out the conflict) and gets the same answer, replayed.
    let (mut ran, mut replayed) = (0, 0);
    for r in &replies {
        match r.status {
            201 => {
                assert_eq!(r.json, json!({"name": "Sales"}));
                if r.header("idempotent-replayed") == Some("true") {
                    replayed += 1;
                } else {
                    ran += 1;
                }
            }
            // Only when the repeats kept conflicting until their time ran out.
            409 => assert_eq!(r.code(), "CONCURRENT_UPDATE", "{}", r.json),
            other => panic!("{other}: {}", r.json),
        }
    }
    assert_eq!(ran, 1, "exactly one request ran: {:?}", tally(&replies));
    assert!(replayed >= 1, "the repeats were replayed");
    // Once it finished, a repeat replays the answer without running.
    let replay = send().await;
    assert_eq!(
        (replay.status, &replay.json),
        (201, &json!({"name": "Sales"}))
    );
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    assert_eq!(
        t.in_use(&api, "g", "groupServices", "Hunt Group").await,
        Some(1)
    );

    // The same key for another request: 422, nothing done.
    let other = api
        .send("POST", &hunt, Some(&json!({"name": "Support"}).to_string()))
        .with("Idempotency-Key", "create-sales-1")
        .await;
    assert_eq!(
        (other.status, other.code()),
        (422, "IDEMPOTENCY_KEY_REUSED")
    );
    // Keys are per tenant: another tenant's admin with the same key runs its own request.
    let u = Tenant::new("idem-other");
    let admin = Api::at(&server.base, Caller::tenant_admin(&u.id));
    let theirs = admin
        .send(
            "POST",
            &u.packs(),
            Some(&json!({"name": "P", "services": ["Call Waiting"]}).to_string()),
        )
        .with("Idempotency-Key", "create-sales-1")
        .await;
    assert_eq!(theirs.status, 201, "{}", theirs.json);
    let bad = api
        .send("POST", &hunt, Some(&body))
        .with("Idempotency-Key", "caf\u{e9}")
        .await;
    assert_eq!((bad.status, bad.code()), (400, "INVALID_IDEMPOTENCY_KEY"));
    assert_eq!(
        t.in_use(&api, "g", "groupServices", "Hunt Group").await,
        Some(1)
    );
    app.audit_clean(&t.id).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_portals_saving_the_same_version_one_wins_one_412() {
    let _alone = LOAD.write().await;
    let Some(Stack {
        app,
        proxy: _proxy,
        server,
    }) = stack(conflicts(6)).await
    else {
        return;
    };
    let api = Api::at(&server.base, Caller::operator());
    let t = Tenant::new("portals");
    t.license(
        &api,
        "g",
        json!({"userServices": [{"name": "Call Waiting", "allocated": limited(5)}]}),
    )
    .await;
    let read = api.get(&t.group_licenses("g")).await;
    let tag = read.header("etag").expect("an ETag").to_owned();
    assert!(tag.starts_with("W/\""), "a weak tag: {tag}");
    // Usage moves without moving the tag.
    let assigned = api
        .post(
            &t.user("g", "u1"),
            &json!({"services": named(&["Call Waiting"])}),
        )
        .await;
    assert_eq!(assigned.status, 201);
    assert_eq!(
        api.get(&t.group_licenses("g")).await.header("etag"),
        Some(tag.as_str())
    );

    let save = |max: u32| {
        let body = json!({"userServices": [{"name": "Call Waiting", "allocated": limited(max)}]})
            .to_string();
        let path = t.group_licenses("g");
        let (api, tag) = (&api, tag.clone());
        async move {
            api.send("PUT", &path, Some(&body))
                .with("If-Match", &tag)
                .await
        }
    };
    let (a, b) = tokio::join!(save(7), save(9));
    let mut statuses = [a.status, b.status];
    statuses.sort();
    assert_eq!(statuses, [200, 412], "{} / {}", a.json, b.json);
    let (winner, loser) = if a.status == 200 { (7, &b) } else { (9, &a) };
    assert_eq!(loser.code(), "PRECONDITION_FAILED");
    let now = api.get(&t.group_licenses("g")).await;
    assert_ne!(now.header("etag"), Some(tag.as_str()));
    let cw = now.json["userServices"]
        .as_array()
        .and_then(|l| l.iter().find(|e| e["name"] == "Call Waiting").cloned())
        .unwrap_or_default();
    assert_eq!(cw["allocated"], limited(winner), "the winner's save stands");
    // The stale tag stays refused; the new one is accepted.
    assert_eq!(save(3).await.status, 412);
    let fresh = now.header("etag").unwrap_or_default().to_owned();
    let body =
        json!({"userServices": [{"name": "Call Waiting", "allocated": limited(3)}]}).to_string();
    let ok = api
        .send("PUT", &t.group_licenses("g"), Some(&body))
        .with("If-Match", &fresh)
        .await;
    assert_eq!(ok.status, 200, "{}", ok.json);

    // Packs: a strong tag of what the GET returns, enforced on PUT and DELETE.
    t.define(&api, "Basic", &["Call Waiting"]).await;
    let pack = api.get(&t.pack("Basic")).await;
    let strong = pack.header("etag").expect("an ETag").to_owned();
    assert!(strong.starts_with('"'), "a strong tag: {strong}");
    let redefine = json!({"services": ["Call Waiting", "Call Forwarding Always"]}).to_string();
    let put = |tag: String| {
        let (api, body, path) = (&api, redefine.clone(), t.pack("Basic"));
        async move {
            api.send("PUT", &path, Some(&body))
                .with("If-Match", &tag)
                .await
        }
    };
    assert_eq!(put(strong.clone()).await.status, 200);
    assert_eq!(put(strong.clone()).await.status, 412);
    let gone = api
        .send("DELETE", &t.pack("Basic"), None)
        .with("If-Match", &strong)
        .await;
    assert_eq!((gone.status, gone.code()), (412, "PRECONDITION_FAILED"));
    let current = api.get(&t.pack("Basic")).await;
    assert_ne!(current.header("etag"), Some(strong.as_str()));
    let deleted = api
        .send("DELETE", &t.pack("Basic"), None)
        .with("If-Match", current.header("etag").unwrap_or_default())
        .await;
    assert_eq!(deleted.status, 204);
    app.audit_clean(&t.id).await;
}

/// The audit is not a rubber stamp: a counter moved by hand, a holding without a route and a pool
/// figure off by one are each reported, with exit code 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_reports_each_broken_invariant() {
    let app = TestApp::spawn().await;
    use aws_sdk_dynamodb::types::AttributeValue;
    let api = app.api();
    let t = Tenant::new("audited");
    let pool = json!({"userServices": [{"name": "Call Waiting", "allocated": limited(10)}]});
    let tenant = api.put(&t.licenses(), &pool).await;
    assert_eq!(tenant.status, 200, "{}", tenant.json);
    t.license(
        &api,
        "g",
        json!({"userServices": [{"name": "Call Waiting", "allocated": limited(3)}]}),
    )
    .await;
    let body = json!({"services": named(&["Call Waiting"])});
    assert_eq!(api.post(&t.user("g", "u1"), &body).await.status, 201);
    app.audit_clean(&t.id).await;

    let client = &app.client;
    let table = app.licenses_table.clone();
    let group_pk =
        licensing::store::dynamo::keys::group_pk(&api_tests::examples::group_ref(&t.id, "g"));
    let set = |pk: String, sk: &str, update: &str, value: AttributeValue| {
        client
            .update_item()
            .table_name(&table)
            .key("PK", AttributeValue::S(pk))
            .key("SK", AttributeValue::S(sk.to_owned()))
            .update_expression(update)
            .expression_attribute_values(":v", value)
            .send()
    };
    let n = |v: &str| AttributeValue::N(v.to_owned());
    set(
        group_pk.clone(),
        "LIC#USER#Call Waiting",
        "SET inUse = :v",
        n("2"),
    )
    .await
    .expect("counter moved");
    let (code, report) = app.audit_text(&t.id).await;
    assert_eq!(code, Some(1), "{report}");
    assert!(report.contains("inUse 2 but 1 holders"), "{report}");

    set(
        group_pk,
        "USER#u1#SVC#Call Waiting",
        "SET direct = :v",
        AttributeValue::Bool(false),
    )
    .await
    .expect("route removed");
    let tenant_pk = licensing::store::dynamo::keys::tenant_pk(
        &licensing::domain::TenantId::parse(&t.id).unwrap(),
    );
    set(
        tenant_pk,
        "POOL#USER#Call Waiting",
        "SET currentlyAllocated = :v",
        n("4"),
    )
    .await
    .expect("pool figure moved");
    let (code, report) = app.audit_text(&t.id).await;
    assert_eq!(code, Some(1), "{report}");
    assert!(report.contains("by no route"), "{report}");
    assert!(
        report.contains("currentlyAllocated is 4 but its groups hold 3"),
        "{report}"
    );
    assert!(report.contains("3 discrepancies"), "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_dynamodb_refuses_as_invalid_is_a_logged_500_not_a_retry_later() {
    let _beside = LOAD.read().await;
    let Some(Stack { app, proxy, server }) = stack(Faults {
        seed: 9,
        invalid: 1.0,
        ..Faults::default()
    })
    .await
    else {
        return;
    };
    let api = Api::at(&server.base, Caller::operator());
    let t = Tenant::new("invalid");
    let reply = api
        .put(
            &t.group_licenses("g"),
            &json!({"userServices": [{"name": "Call Waiting", "allocated": limited(3)}]}),
        )
        .await;
    // Retrying cannot fix a request DynamoDB refuses as invalid: a defect, not an outage.
    assert_eq!(
        (reply.status, reply.code()),
        (500, "INTERNAL"),
        "{}",
        reply.json
    );
    assert_eq!(reply.header("retry-after"), None);
    assert!(Injected::get(&proxy.injected().invalid) >= 1);
    // Nothing was written.
    let reply = app.api().get(&t.group_licenses("g")).await;
    assert_eq!(reply.header("etag"), Some("W/\"0\""));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_responses_on_a_hot_counter_never_answer_a_callers_own_create_as_taken() {
    let _alone = LOAD.write().await;
    // Eight function instances creating instances of one group service: its counter is hot, so
    // the SDK's resend of a committed transaction meets conflicts, and the retry must keep the
    // transaction's token to be recognised as the same write.
    let Some(Stack { app, proxy, server }) = stack(Faults {
        seed: 12,
        conflicts: true,
        hold: Duration::from_millis(3),
        lose: 0.2,
        ..Faults::default()
    })
    .await
    else {
        return;
    };
    let api = Api::at(&server.base, Caller::operator());
    let t = Tenant::new("own");
    t.license(
        &api,
        "g",
        json!({"groupServices": [{"name": "Hunt Group", "allocated": {"unlimited": true}}]}),
    )
    .await;
    let path = format!(
        "/api/v1/tenants/{}/groups/g/services/hunt-group/instances/",
        t.id
    );
    let clients = (0..8).map(|c| {
        let api = &api;
        let path = &path;
        async move {
            let mut replies = Vec::new();
            for i in 0..5 {
                replies.push(api.post(path, &json!({"name": format!("c{c}-{i}")})).await);
            }
            replies
        }
    });
    let replies: Vec<Reply> = join_all(clients).await.into_iter().flatten().collect();
    let injected = proxy.injected();
    eprintln!("own creates: {:?}; {injected:?}", tally(&replies));
    assert_eq!(
        tally(&replies),
        [((201, String::new()), 40)].into(),
        "every create is the caller's own"
    );
    assert!(
        Injected::get(&injected.lost) >= 3,
        "responses were lost: {injected:?}"
    );
    assert!(
        Injected::get(&injected.conflicts) >= 1,
        "the counter was hot: {injected:?}"
    );
    let listed = api.get(&path).await;
    assert_eq!(listed.json["instances"].as_array().map(Vec::len), Some(40));
    app.audit_clean(&t.id).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_assignment_uses_the_pack_definition_its_transaction_checks() {
    let _beside = LOAD.read().await;
    // Transactions wait at the proxy long enough for the pack to be redefined meanwhile.
    let Some(Stack {
        app,
        proxy: _proxy,
        server,
    }) = stack(held(14)).await
    else {
        return;
    };
    let direct = app.api();
    let t = Tenant::new("redefined");
    t.define(&direct, "Flex", &["Call Waiting"]).await;
    let pack = |max: u32| json!({"servicePacks": [{"name": "Flex", "allocated": limited(max)}]});
    t.license(
        &direct,
        "g",
        json!({"userServices": [{"name": "Call Waiting", "allocated": limited(5)},
                                {"name": "Call Return", "allocated": limited(5)}],
               "servicePacks": [{"name": "Flex", "allocated": limited(5)}]}),
    )
    .await;
    let slow = Api::at(&server.base, Caller::operator());
    let user = t.user("g", "ursula");
    let flex = json!({"servicePacks": named(&["Flex"])});
    let assign = slow.post(&user, &flex);
    let redefine = async {
        // The assignment has read the definition and its transaction waits at the proxy.
        tokio::time::sleep(Duration::from_millis(500)).await;
        t.license(&direct, "g", pack(0)).await;
        let replaced = direct
            .send(
                "PUT",
                &t.pack("Flex"),
                Some(&json!({"services": ["Call Return"]}).to_string()),
            )
            .await;
        assert_eq!(replaced.status, 200, "{}", replaced.json);
        t.license(&direct, "g", pack(5)).await;
    };
    let (assigned, ()) = tokio::join!(assign, redefine);
    assert_eq!(assigned.status, 201, "{}", assigned.json);
    // The user holds what the pack gives now, not what it gave when first read.
    assert_eq!(
        direct.get(&user).await.json["effectiveServices"],
        json!([{"name": "Call Return", "via": ["Flex"]}])
    );
    assert_eq!(
        t.in_use(&direct, "g", "userServices", "Call Waiting").await,
        Some(0)
    );
    assert_eq!(
        t.in_use(&direct, "g", "userServices", "Call Return").await,
        Some(1)
    );
    app.audit_clean(&t.id).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bulk_answer_of_already_is_still_true_when_it_commits() {
    let _beside = LOAD.read().await;
    // Transactions wait at the proxy long enough for a user's service to be taken meanwhile.
    let Some(Race {
        stack,
        t,
        direct,
        slow,
    }) = race_stage(held(23), "already", "Call Waiting").await
    else {
        return;
    };
    let cw = json!({"services": named(&["Call Waiting"])});
    let alice = t.user("g", "alice");
    assert_eq!(direct.post(&alice, &cw).await.status, 201);
    let (path, body) = bulk_assignment(&t, "Call Waiting", &["alice", "bob"]);
    let assign = slow.post(&path, &body);
    let take = async {
        // The first transaction (assuming nothing held) fails on alice's holding after its
        // hold; the second, made of fresh reads (alice: already), is held when she loses it.
        tokio::time::sleep(Duration::from_millis(2200)).await;
        let taken = direct.delete(&alice, &cw).await;
        assert_eq!(taken.status, 200, "{}", taken.json);
    };
    let (assigned, ()) = tokio::join!(assign, take);
    assert_eq!(assigned.status, 201, "{}", assigned.json);
    // Whatever the answer says of alice is true of what was committed with bob's assignment.
    let said = first_statuses(&assigned)[0].clone();
    let holds = direct.get(&alice).await.json["services"]
        == json!([{"name": "Call Waiting", "assigned": true}]);
    assert!(
        holds,
        "alice must hold it after a bulk POST: {}",
        assigned.json
    );
    assert_eq!(said, "assigned", "{}", assigned.json);
    assert_eq!(
        t.in_use(&direct, "g", "userServices", "Call Waiting").await,
        Some(2)
    );
    stack.app.audit_clean(&t.id).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bulk_answer_of_already_for_every_user_was_true_of_all_at_once() {
    let _alone = LOAD.write().await;
    // One user's records are read 1.5 s after the other's: long enough for the other's to
    // change in between.
    let Some(Race {
        stack,
        t,
        direct,
        slow,
    }) = race_stage(slow_reads(29, "USER#slowpoke#"), "at-once", "Call Waiting").await
    else {
        return;
    };
    let cw = json!({"services": named(&["Call Waiting"])});
    let alice = t.user("g", "alice");
    for user in [&alice, &t.user("g", "slowpoke")] {
        assert_eq!(direct.post(user, &cw).await.status, 201);
    }
    let (path, body) = bulk_assignment(&t, "Call Waiting", &["alice", "slowpoke"]);
    let assign = slow.post(&path, &body);
    let take = async {
        // The first transaction (assuming nothing held) fails at once; of the fresh reads,
        // alice's answers at once (she holds it) and slowpoke's 1.5 s later (he holds it).
        // Between the two she loses it.
        tokio::time::sleep(Duration::from_millis(700)).await;
        let taken = direct.delete(&alice, &cw).await;
        assert_eq!(taken.status, 200, "{}", taken.json);
    };
    let (assigned, ()) = tokio::join!(assign, take);
    assert_eq!(assigned.status, 201, "{}", assigned.json);
    assert!(Injected::get(&stack.proxy.injected().slowed) >= 1);
    // "Both already" was never true at one moment: the answer is what was committed after
    // her DELETE (she gets it again), and she holds it.
    assert_eq!(
        first_statuses(&assigned),
        [json!("assigned"), json!("already")],
        "{}",
        assigned.json
    );
    let holds = direct.get(&alice).await.json["services"]
        == json!([{"name": "Call Waiting", "assigned": true}]);
    assert!(
        holds,
        "alice must hold it after a bulk POST: {}",
        assigned.json
    );
    assert_eq!(
        t.in_use(&direct, "g", "userServices", "Call Waiting").await,
        Some(2)
    );
    stack.app.audit_clean(&t.id).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_of_a_blocked_service_was_true_when_it_is_answered() {
    let _alone = LOAD.write().await;
    // The blocked services are read 1.5 s late: long enough for a user to be given the
    // service, and the service blocked, between the read of her records and theirs.
    // No other test assigns or blocks it: a block holds for every tenant of the DynamoDB.
    const SERVICE: &str = "Automatic Callback";
    let Some(Race {
        stack,
        t,
        direct,
        slow,
    }) = race_stage(slow_reads(31, "CONFIG#blocked"), "blocked-late", SERVICE).await
    else {
        return;
    };
    let given = json!({"services": named(&[SERVICE])});
    assert_eq!(direct.post(&t.user("g", "vic"), &given).await.status, 201);
    // The instance's copy of the blocked services cached, as after its first assignment.
    let warm = slow.post(&t.user("g", "warm"), &given).await;
    assert_eq!(warm.status, 201, "{}", warm.json);
    let (path, body) = bulk_assignment(&t, SERVICE, &["vic", "uma"]);
    let config = format!("/api/v1/configs/user_services/{}-late/", t.id);
    let assign = slow.post(&path, &body);
    let change = async {
        // The first transaction fails at once (vic holds it); of the fresh reads, uma's
        // records answer at once (she holds nothing) and the blocked services 1.5 s later.
        // Between the two she is given the service, and then it is blocked.
        tokio::time::sleep(Duration::from_millis(700)).await;
        let uma = direct.post(&t.user("g", "uma"), &given).await;
        assert_eq!(uma.status, 201, "{}", uma.json);
        let blocking = json!({"technical_name": SERVICE, "no_more_assignable": true});
        assert_eq!(direct.put(&config, &blocking).await.status, 200);
    };
    let (assigned, ()) = tokio::join!(assign, change);
    assert_eq!(
        direct.send("DELETE", &config, None).await_empty().await,
        204
    );
    assert!(Injected::get(&stack.proxy.injected().slowed) >= 2);
    // No moment saw uma without the service while it was blocked: not a refusal, and both
    // already hold it.
    assert_eq!(assigned.status, 201, "{}", assigned.json);
    assert_eq!(
        first_statuses(&assigned),
        [json!("already"), json!("already")],
        "{}",
        assigned.json
    );
    assert_eq!(
        t.in_use(&direct, "g", "userServices", SERVICE).await,
        Some(3)
    );
    stack.app.audit_clean(&t.id).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_reports_each_state_it_used_to_miss() {
    let app = TestApp::spawn().await;
    use aws_sdk_dynamodb::types::AttributeValue;
    let _beside = LOAD.read().await;
    let api = app.api();
    let t = Tenant::new("audit-more");
    t.define(&api, "Gold", &["Call Waiting"]).await;
    t.define(&api, "Silver", &["Call Return"]).await;
    assert_eq!(
        api.put(
            &t.licenses(),
            &json!({"servicePacks": [{"name": "Gold", "allocated": limited(2)}]})
        )
        .await
        .status,
        200
    );
    t.license(
        &api,
        "g",
        json!({"userServices": [{"name": "Call Waiting", "allocated": limited(3)},
                                {"name": "Call Return", "allocated": limited(3)}],
               "groupServices": [{"name": "Voice Messaging Group", "allocated": limited(1)}],
               "servicePacks": [{"name": "Gold", "allocated": limited(2)}]}),
    )
    .await;
    let gold = json!({"servicePacks": named(&["Gold"])});
    assert_eq!(api.post(&t.user("g", "u1"), &gold).await.status, 201);
    app.audit_clean(&t.id).await;

    let client = &app.client;
    let table = app.licenses_table.clone();
    let group_pk =
        licensing::store::dynamo::keys::group_pk(&api_tests::examples::group_ref(&t.id, "g"));
    let tenant_pk = licensing::store::dynamo::keys::tenant_pk(
        &licensing::domain::TenantId::parse(&t.id).unwrap(),
    );
    let s = |v: &str| AttributeValue::S(v.to_owned());
    let put = |pk: &str, sk: &str, extra: Vec<(&str, AttributeValue)>| {
        let mut item =
            std::collections::HashMap::from([("PK".to_owned(), s(pk)), ("SK".to_owned(), s(sk))]);
        for (name, value) in extra {
            item.insert(name.to_owned(), value);
        }
        client
            .put_item()
            .table_name(&table)
            .set_item(Some(item))
            .send()
    };
    // 1. A license record limited without a maximum.
    put(
        &group_pk,
        "LIC#USER#Call Return",
        vec![
            ("unlimited", AttributeValue::Bool(false)),
            ("inUse", AttributeValue::N("0".into())),
        ],
    )
    .await
    .expect("record broken");
    // 2. A pack assignment whose services differ from the definition (and its holding).
    put(
        &group_pk,
        "USER#u1#PACK#Gold",
        vec![(
            "services",
            AttributeValue::L(vec![s("Call Waiting"), s("Call Return")]),
        )],
    )
    .await
    .expect("assignment broken");
    // 3. A packDefined mark without its definition.
    client
        .delete_item()
        .table_name(&table)
        .key("PK", s(&tenant_pk))
        .key("SK", s("PACKDEF#Silver"))
        .send()
        .await
        .expect("definition deleted");
    // 4. An instance under a noInstance group service.
    put(&group_pk, "INST#Voice Messaging Group#Lobby", vec![])
        .await
        .expect("instance written");
    // 5. Groups holding a pack beyond the tenant's allocation.
    client
        .update_item()
        .table_name(&table)
        .key("PK", s(&tenant_pk))
        .key("SK", s("POOL#PACK#Gold"))
        .update_expression("SET maximum = :m, remaining = :r")
        .expression_attribute_values(":m", AttributeValue::N("1".into()))
        .expression_attribute_values(":r", AttributeValue::N("-1".into()))
        .send()
        .await
        .expect("allocation lowered");

    let (code, report) = app.audit_text(&t.id).await;
    assert_eq!(code, Some(1), "{report}");
    for expected in [
        "user service \"Call Return\" has no readable allocation",
        "user \"u1\" holds pack \"Gold\" with services",
        "service pack \"Silver\" is marked packDefined but the pack has no definition",
        "group service \"Voice Messaging Group\" has instances",
        "groups hold 2, beyond the tenant's allocation of maximum 1",
    ] {
        assert_eq!(
            report.matches(expected).count(),
            1,
            "one line says {expected:?}:\n{report}"
        );
    }
}

/// A keyed write through a proxy that keeps its outcome from the server (`faults`): the answer
/// is a 503 that says the outcome is unknown, never "nothing was changed"; the write was
/// applied, and the same request with its key (DynamoDB reachable again) learns that with the
/// first answer, instead of an IN_PROGRESS limbo or a conflict with itself.
async fn unknown_outcome_then_replayed(faults: Faults, label: &str) {
    let Some(Stack { app, proxy, server }) = stack(faults).await else {
        return;
    };
    let t = Tenant::new(label);
    let direct = app.api();
    t.license(
        &direct,
        "g",
        json!({"groupServices": [{"name": "Hunt Group", "allocated": limited(5)}]}),
    )
    .await;
    let path = format!(
        "/api/v1/tenants/{}/groups/g/services/hunt-group/instances/",
        t.id
    );
    let body = json!({"name": "Sales"}).to_string();
    let key = format!("{}-sales", t.id);
    let faulty = Api::at(&server.base, Caller::operator());
    let lost = faulty
        .send("POST", &path, Some(&body))
        .with("Idempotency-Key", &key)
        .await;
    assert_eq!(
        (lost.status, lost.code()),
        (503, "STORAGE_UNAVAILABLE"),
        "{label}: {}",
        lost.json
    );
    let message = lost.json["errors"][0]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(
        message.contains("may or may not have been applied")
            && !message.contains("nothing was changed"),
        "{label}: the answer says the outcome is unknown: {message}"
    );
    assert!(Injected::get(&proxy.injected().lost) >= 1, "{label}");
    let again = direct
        .send("POST", &path, Some(&body))
        .with("Idempotency-Key", &key)
        .await;
    assert_eq!(
        (again.status, &again.json),
        (201, &json!({"name": "Sales"})),
        "{label}"
    );
    assert_eq!(again.header("idempotent-replayed"), Some("true"), "{label}");
    assert_eq!(
        t.in_use(&direct, "g", "groupServices", "Hunt Group").await,
        Some(1),
        "{label}"
    );
    app.audit_clean(&t.id).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_whose_outcome_is_unknown_says_so_and_its_key_then_tells_the_outcome() {
    let _beside = LOAD.read().await;
    // Every committed answer is lost, however often the write is resent.
    unknown_outcome_then_replayed(
        Faults {
            seed: 13,
            lose: 1.0,
            ..Faults::default()
        },
        "unknown",
    )
    .await;
    // The first answer is lost, and every resend (the same token) is throttled: the resends
    // say nothing of the first attempt.
    unknown_outcome_then_replayed(
        Faults {
            seed: 15,
            lose: 1.0,
            throttle_resends: true,
            ..Faults::default()
        },
        "throttled-resend",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_answering_503_is_a_retry_later_not_a_defect() {
    let _beside = LOAD.read().await;
    let Some(Stack { app, proxy, server }) = stack(Faults {
        seed: 16,
        unavailable: 1.0,
        ..Faults::default()
    })
    .await
    else {
        return;
    };
    let t = Tenant::new("dynamo-503");
    let api = Api::at(&server.base, Caller::operator());
    let reply = api
        .put(
            &t.group_licenses("g"),
            &json!({"userServices": [{"name": "Call Waiting", "allocated": limited(3)}]}),
        )
        .await;
    success_or_retry_later(&reply, "DynamoDB answering 503");
    assert_eq!(reply.status, 503, "{}", reply.json);
    // A server error may come after the write applied: the answer does not claim otherwise.
    let message = reply.json["errors"][0]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(
        message.contains("may or may not have been applied"),
        "{message}"
    );
    assert!(Injected::get(&proxy.injected().unavailable) >= 1);
    // Here nothing reached DynamoDB: nothing changed.
    let stored = app.api().get(&t.group_licenses("g")).await;
    assert_eq!(stored.header("etag"), Some("W/\"0\""));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_blocked_while_an_assignment_commits_is_not_given() {
    let _beside = LOAD.read().await;
    // The assignment's transaction waits at the proxy while the operator blocks the service.
    let Some(Stack {
        app,
        proxy: _proxy,
        server,
    }) = stack(held(17)).await
    else {
        return;
    };
    let direct = app.api();
    let t = Tenant::new("blocked-meanwhile");
    t.license(
        &direct,
        "g",
        json!({"userServices": [{"name": "Call Waiting", "allocated": {"unlimited": true}},
                                {"name": "Priority Alert", "allocated": {"unlimited": true}}]}),
    )
    .await;
    let slow = Api::at(&server.base, Caller::operator());
    let config = format!("/api/v1/configs/user_services/{}-late/", t.id);
    let body = json!({"services": named(&["Call Waiting", "Priority Alert"])});
    let user = t.user("g", "bert");
    let assign = slow.post(&user, &body);
    let block = async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let blocked = json!({"technical_name": "Priority Alert", "no_more_assignable": true});
        direct.put(&config, &blocked).await.status
    };
    let (assigned, blocked) = tokio::join!(assign, block);
    let cleanup = direct.send("DELETE", &config, None).await_empty().await;
    assert_eq!(blocked, 200);
    assert_eq!(cleanup, 204);
    // The transaction found the blocked services changed since its read, read again, and
    // refused.
    assert_eq!(
        (assigned.status, assigned.code()),
        (409, "NO_MORE_ASSIGNABLE"),
        "{}",
        assigned.json
    );
    assert_eq!(
        t.in_use(&direct, "g", "userServices", "Priority Alert")
            .await,
        Some(0)
    );
    assert_eq!(
        t.in_use(&direct, "g", "userServices", "Call Waiting").await,
        Some(0)
    );
    app.audit_clean(&t.id).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotency_key_costs_no_round_trip() {
    let _beside = LOAD.read().await;
    let Some(Stack {
        app: _,
        proxy,
        server,
    }) = stack(Faults {
        seed: 18,
        ..Faults::default()
    })
    .await
    else {
        return;
    };
    let api = Api::at(&server.base, Caller::operator());
    let t = Tenant::new("round-trips");
    t.define(&api, "Duo", &["Call Waiting", "Call Return"])
        .await;
    t.license(
        &api,
        "g",
        json!({"userServices": [{"name": "Call Waiting", "allocated": {"unlimited": true}},
                                {"name": "Call Return", "allocated": {"unlimited": true}}],
               "groupServices": [{"name": "Hunt Group", "allocated": {"unlimited": true}},
                                 {"name": "Call Park", "allocated": {"unlimited": true}}],
               "servicePacks": [{"name": "Duo", "allocated": {"unlimited": true}}]}),
    )
    .await;
    // The copies of the blocked services exist after the first assignment or configuration
    // write of a deployment (which creates them): the steady state measured below.
    let warm = format!("/api/v1/configs/user_services/{}-warm/", t.id);
    let blocking = json!({"technical_name": "Priority Alert", "no_more_assignable": true});
    assert_eq!(api.put(&warm, &blocking).await.status, 200);
    assert_eq!(api.send("DELETE", &warm, None).await_empty().await, 204);
    // The instance's caches filled (the blocked services of the group's copy, the tenant's pack
    // definitions), as they are after a function instance's first assignment.
    let warming = api
        .post(
            &t.user("g", "warm"),
            &json!({"services": named(&["Call Return"]), "servicePacks": named(&["Duo"])}),
        )
        .await;
    assert_eq!(warming.status, 201, "{}", warming.json);
    let injected = proxy.injected();
    // DynamoDB calls of one request (the proxy counts them), with and without a key.
    let calls = |method: &'static str, path: String, body: Option<Value>, key: Option<String>| {
        let (api, injected) = (&api, &injected);
        async move {
            let before = Injected::get(&injected.calls);
            let body = body.map(|b| b.to_string());
            let mut request = api.send(method, &path, body.as_deref());
            if let Some(key) = &key {
                request = request.with("Idempotency-Key", key);
            }
            let reply = request.await;
            let expected = match method {
                "POST" => 201,
                "DELETE" => 204,
                _ => 200,
            };
            assert_eq!(reply.status, expected, "{method} {path}: {}", reply.json);
            Injected::get(&injected.calls) - before
        }
    };
    let direct = json!({"services": named(&["Call Waiting"])});
    let pack = json!({"servicePacks": named(&["Duo"])});
    let instances = format!(
        "/api/v1/tenants/{}/groups/g/services/hunt-group/instances/",
        t.id
    );
    let licenses = t.group_licenses("g");
    let cfa = |maximum: u32| {
        json!({"userServices": [{"name": "Call Forwarding Always",
                                 "allocated": {"unlimited": false, "maximum": maximum}}]})
    };
    let group_service = json!({"services": named(&["Hunt Group"])});
    let another_group_service = json!({"services": named(&["Call Park"])});
    let group_services = format!("/api/v1/tenants/{}/groups/g/services/", t.id);
    let instance = |name: &str| format!("{instances}{name}/");
    let mut figures = Vec::new();
    // Each route twice, plain and keyed, on things not yet there (a new user, instance, value).
    type Call = (&'static str, String, Option<Value>);
    let routes: [(&str, Call, Call); 6] = [
        (
            "direct assignment",
            ("POST", t.user("g", "a"), Some(direct.clone())),
            ("POST", t.user("g", "a2"), Some(direct)),
        ),
        (
            "pack assignment",
            ("POST", t.user("g", "b"), Some(pack.clone())),
            ("POST", t.user("g", "b2"), Some(pack)),
        ),
        (
            "group service assignment",
            ("POST", group_services.clone(), Some(group_service)),
            ("POST", group_services, Some(another_group_service)),
        ),
        (
            "instance create",
            ("POST", instances.clone(), Some(json!({"name": "one"}))),
            ("POST", instances.clone(), Some(json!({"name": "two"}))),
        ),
        (
            "instance delete",
            ("DELETE", instance("one"), None),
            ("DELETE", instance("two"), None),
        ),
        (
            "licenses PUT",
            ("PUT", licenses.clone(), Some(cfa(5))),
            ("PUT", licenses, Some(cfa(6))),
        ),
    ];
    for (what, (m1, p1, b1), (m2, p2, b2)) in routes {
        let plain = calls(m1, p1, b1, None).await;
        let keyed = calls(m2, p2, b2, Some(format!("{}-{what}", t.id))).await;
        assert_eq!(plain, keyed, "{what}: a key adds no DynamoDB call");
        figures.push((what, plain));
    }
    eprintln!("DynamoDB calls per request: {figures:?}");
    // Each write is one transaction when nothing is in the way (an assignment writes first,
    // with the cached definitions and blocked services checked in its transaction); a licenses
    // PUT reads the group once, then writes what changes.
    assert_eq!(
        figures,
        [
            ("direct assignment", 1),
            ("pack assignment", 1),
            ("group service assignment", 1),
            ("instance create", 1),
            ("instance delete", 1),
            ("licenses PUT", 2),
        ]
    );
}
