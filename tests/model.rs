//! The licensing rules against a reference model (`support/model.rs`), found by search rather
//! than by example:
//!
//! - **Sequences**: seeded random sequences of requests by every role (operator, the tenant's
//!   admin, each group's admin, another tenant's admin) — tenant and group licenses PUTs, pack
//!   create/replace/delete, direct, pack and mixed assignments and unassignments, group services,
//!   instances, configuration objects toggling `no_more_assignable`, repeats and reuses of
//!   `Idempotency-Key`s — each answer (status, error codes and names, success body, replay
//!   header) and then every view (group and tenant licenses with their ETags, users, group
//!   services, instances) compared with the model; each run ends with `licensing-audit`. One
//!   run goes through a fault proxy that loses 20 % of committed responses: the answers must not
//!   change.
//! - **Concurrency**: parallel clients on one hot license through the fault proxy (conflicts,
//!   lost responses), mixing direct and pack assignments, unassignments and license changes;
//!   afterwards every `inUse` equals its distinct holders, nothing limited is above its maximum,
//!   and the audit is clean.
//!
//! A failing run prints its seed and the shortest sequence that still fails (steps removed while
//! the failure stays). `SEED` replays one seed, `OPS` sets the length, `MINUTES` turns the
//! sequence test into a soak over fresh random seeds (`make soak`).

use api_tests::faults::{FaultProxy, Faults, Injected};
use api_tests::model::{
    Alloc, Expected, GROUP_SERVICES, GROUPS, INSTANCES, Item, Model, Op, PACKS, PoolEntry, Role,
    Step, USER_SERVICES, USERS,
};
use api_tests::{Api, Caller, Reply, TestApp, unique};
use futures_util::future::join_all;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

/// The tests share the configuration objects (global, by service) and load the machine: one at
/// a time.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

// ---------------------------------------------------------------------------------------------
// Generating sequences

fn pick<T: Copy>(rng: &mut fastrand::Rng, items: &[T]) -> T {
    items[rng.usize(..items.len())]
}

fn some_of(rng: &mut fastrand::Rng, n: usize, at_least: usize, at_most: usize) -> Vec<usize> {
    let count = rng.usize(at_least..=at_most.min(n));
    let mut all: Vec<usize> = (0..n).collect();
    rng.shuffle(&mut all);
    all.truncate(count);
    all
}

fn alloc(rng: &mut fastrand::Rng) -> Alloc {
    match rng.u8(..20) {
        0..=3 => Alloc::Unlimited,
        4..=5 => Alloc::Limited(0),
        _ => Alloc::Limited(rng.u32(1..=3)),
    }
}

fn item(rng: &mut fastrand::Rng) -> Item {
    match rng.u8(..20) {
        0..=11 => Item::User(rng.usize(..USER_SERVICES.len())),
        12..=14 => Item::Group(rng.usize(..GROUP_SERVICES.len())),
        _ => Item::Pack(rng.usize(..PACKS.len())),
    }
}

fn items(rng: &mut fastrand::Rng, model: &Model) -> Vec<Item> {
    let mut picked: Vec<Item> = Vec::new();
    for _ in 0..rng.usize(1..=3) {
        let mut i = item(rng);
        // Mostly packs the tenant defines.
        if let Item::Pack(p) = i
            && !model.defined(p)
            && rng.u8(..4) != 0
        {
            i = Item::User(rng.usize(..USER_SERVICES.len()));
        }
        if !picked.contains(&i) {
            picked.push(i);
        }
    }
    picked
}

/// A caller for `op`: mostly one the rules allow (so sequences get somewhere), sometimes any
/// (so refusals by role are tried too).
fn role(rng: &mut fastrand::Rng, op: &Op) -> Role {
    let any = [
        Role::Operator,
        Role::TenantAdmin,
        Role::GroupAdmin(0),
        Role::GroupAdmin(1),
        Role::OtherTenantAdmin,
    ];
    if rng.u8(..100) < 15 {
        return pick(rng, &any);
    }
    match op {
        Op::TenantPut(_) | Op::Config { .. } => Role::Operator,
        Op::GroupPut { .. }
        | Op::PackCreate { .. }
        | Op::PackReplace { .. }
        | Op::PackDelete { .. } => pick(rng, &[Role::Operator, Role::Operator, Role::TenantAdmin]),
        Op::Assign { group, .. }
        | Op::Unassign { group, .. }
        | Op::GroupServices { group, .. }
        | Op::InstanceAdd { group, .. }
        | Op::InstanceRemove { group, .. }
        | Op::Bulk { group, .. } => pick(
            rng,
            &[Role::Operator, Role::TenantAdmin, Role::GroupAdmin(*group)],
        ),
    }
}

/// A random request; `model` (the state so far) steers it towards what exists, so that most
/// steps meet limits and pools rather than "not licensed".
fn op(rng: &mut fastrand::Rng, model: &Model) -> Op {
    let group = rng.usize(..GROUPS.len());
    let user = rng.usize(..USERS.len());
    match rng.u8(..100) {
        0..=11 => Op::TenantPut(
            items(rng, model)
                .into_iter()
                .map(|i| {
                    let entry = match rng.u8(..10) {
                        0..=1 => PoolEntry::Remove,
                        2 => PoolEntry::Keep,
                        _ => PoolEntry::Set(alloc(rng)),
                    };
                    (i, entry)
                })
                .collect(),
        ),
        12..=29 => Op::GroupPut {
            group,
            items: items(rng, model)
                .into_iter()
                .map(|i| (i, alloc(rng)))
                .collect(),
            auto_assign: rng.u8(..4) == 0,
        },
        30..=34 => Op::PackCreate {
            pack: rng.usize(..PACKS.len()),
            services: some_of(rng, USER_SERVICES.len(), 1, 3),
        },
        35..=36 => Op::PackReplace {
            pack: rng.usize(..PACKS.len()),
            services: some_of(rng, USER_SERVICES.len(), 1, 3),
        },
        37..=39 => Op::PackDelete {
            pack: rng.usize(..PACKS.len()),
        },
        40..=56 => {
            let (services, packs) = assignment(rng, model, group);
            Op::Assign {
                group,
                user,
                services,
                packs,
            }
        }
        57..=65 => Op::Bulk {
            group,
            assign: true,
            users: some_of(rng, USERS.len(), 2, 3)
                .into_iter()
                .map(|u| {
                    let (services, packs) = assignment(rng, model, group);
                    (u, services, packs)
                })
                .collect(),
        },
        66..=71 => Op::Unassign {
            group,
            user,
            services: some_of(rng, USER_SERVICES.len(), 0, 2),
            packs: some_of(rng, PACKS.len(), 0, 1),
        },
        72..=74 => Op::Bulk {
            group,
            assign: false,
            users: some_of(rng, USERS.len(), 1, 3)
                .into_iter()
                .map(|u| {
                    (
                        u,
                        some_of(rng, USER_SERVICES.len(), 0, 2),
                        some_of(rng, PACKS.len(), 0, 1),
                    )
                })
                .collect(),
        },
        75..=80 => Op::GroupServices {
            group,
            services: some_of(rng, GROUP_SERVICES.len(), 1, 2),
            assign: rng.bool(),
        },
        81..=89 => Op::InstanceAdd {
            group,
            instance: rng.usize(..INSTANCES.len()),
        },
        90..=94 => Op::InstanceRemove {
            group,
            instance: rng.usize(..INSTANCES.len()),
        },
        _ => Op::Config {
            service: rng.usize(..USER_SERVICES.len()),
            blocked: rng.bool(),
        },
    }
}

/// Services and packs to give a user: mostly what the group licenses, when it licenses
/// anything; never nothing.
fn assignment(rng: &mut fastrand::Rng, model: &Model, group: usize) -> (Vec<usize>, Vec<usize>) {
    let mut aim = rng.u8(..10) < 8;
    loop {
        let mut s = some_of(rng, USER_SERVICES.len(), 0, 2);
        let mut p = some_of(rng, PACKS.len(), 0, 1);
        if aim {
            s.retain(|s| model.licensed(group, Item::User(*s)));
            p.retain(|p| model.licensed(group, Item::Pack(*p)));
            aim = rng.u8(..4) != 0; // no endless search when it licenses nothing
        }
        if !s.is_empty() || !p.is_empty() {
            return (s, p);
        }
    }
}

/// A random sequence: mostly fresh requests (a third carrying a fresh key), some repeats of an
/// earlier keyed request, and some reuses of an earlier key for another request.
pub fn sequence(seed: u64, ops: usize) -> Vec<Step> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut steps: Vec<Step> = Vec::with_capacity(ops);
    // A shadow of the state the sequence builds, to steer the next step.
    let mut shadow = Model::new(BTreeSet::new());
    // A start that licenses something in each group, so that the rest meets limits rather than
    // only "not licensed" (these steps are part of the sequence, and shrink like the others).
    for group in 0..GROUPS.len() {
        if steps.len() < ops {
            let items = (0..3)
                .map(|_| Item::User(rng.usize(..USER_SERVICES.len())))
                .collect::<BTreeSet<_>>()
                .into_iter()
                .map(|i| (i, Alloc::Limited(rng.u32(1..=3))))
                .collect();
            let step = Step {
                role: Role::Operator,
                op: Op::GroupPut {
                    group,
                    items,
                    auto_assign: false,
                },
                key: None,
            };
            shadow.apply(&step);
            steps.push(step);
        }
    }
    for n in steps.len()..ops {
        let keyed: Vec<usize> = (0..steps.len())
            .filter(|i| steps[*i].key.is_some())
            .collect();
        let roll = rng.u8(..100);
        let step = if roll < 6 && !keyed.is_empty() {
            steps[pick(&mut rng, &keyed)].clone()
        } else if roll < 11 && !keyed.is_empty() {
            let earlier = &steps[pick(&mut rng, &keyed)];
            Step {
                role: earlier.role,
                op: op(&mut rng, &shadow),
                key: earlier.key.clone(),
            }
        } else {
            let op = op(&mut rng, &shadow);
            Step {
                role: role(&mut rng, &op),
                op,
                key: (rng.u8(..3) == 0).then(|| format!("k{n}")),
            }
        };
        shadow.apply(&step);
        steps.push(step);
    }
    steps
}

// ---------------------------------------------------------------------------------------------
// Playing a sequence against the API

/// The callers of one run, each with its token.
struct Callers {
    tenant: String,
    apis: Vec<(Role, Api)>,
}

impl Callers {
    fn new(base: &str, tenant: &str) -> Self {
        let other = format!("{tenant}-other");
        let apis = vec![
            (Role::Operator, Api::at(base, Caller::operator())),
            (
                Role::TenantAdmin,
                Api::at(base, Caller::tenant_admin(tenant)),
            ),
            (
                Role::OtherTenantAdmin,
                Api::at(base, Caller::tenant_admin(&other)),
            ),
            (
                Role::GroupAdmin(0),
                Api::at(base, Caller::group_admin(tenant, GROUPS[0])),
            ),
            (
                Role::GroupAdmin(1),
                Api::at(base, Caller::group_admin(tenant, GROUPS[1])),
            ),
        ];
        Callers {
            tenant: tenant.to_owned(),
            apis,
        }
    }

    fn api(&self, role: Role) -> &Api {
        &self
            .apis
            .iter()
            .find(|(r, _)| *r == role)
            .expect("every role has a caller")
            .1
    }

    fn operator(&self) -> &Api {
        self.api(Role::Operator)
    }
}

/// How one step reads in a report.
fn describe(step: &Step, tenant: &str) -> String {
    let (method, path, body) = step.op.request(tenant);
    let mut line = format!("{:?} {method} {path}", step.role);
    if let Some(body) = body {
        let _ = write!(line, " {body}");
    }
    if let Some(key) = &step.key {
        let _ = write!(line, " [Idempotency-Key {key}]");
    }
    line
}

async fn send(callers: &Callers, step: &Step) -> Reply {
    let (method, path, body) = step.op.request(&callers.tenant);
    let body = body.map(|b| b.to_string());
    let mut request = callers.api(step.role).send(method, &path, body.as_deref());
    if let Some(key) = &step.key {
        // Keys are scoped per caller and operators share theirs across tenants: unique per run.
        request = request.with("Idempotency-Key", &format!("{}-{key}", callers.tenant));
    }
    request.await
}

/// Compares an answer with the model's expectation.
fn compare(expected: &Expected, reply: &Reply) -> Result<(), String> {
    let errors: Vec<(String, Option<String>)> = reply.json["errors"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|e| {
                    (
                        e["code"].as_str().unwrap_or_default().to_owned(),
                        e["name"].as_str().map(str::to_owned),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let replayed = reply.header("idempotent-replayed") == Some("true");
    let body_differs = expected.body.as_ref().is_some_and(|b| *b != reply.json);
    if reply.status != expected.status
        || (!expected.errors.is_empty() && errors != expected.errors)
        || body_differs
        || replayed != expected.replayed
    {
        return Err(format!(
            "answered {} {} (replayed: {replayed}), the model expects {} {:?} {} (replayed: {})",
            reply.status,
            reply.json,
            expected.status,
            expected.errors,
            expected
                .body
                .as_ref()
                .map_or(String::new(), Value::to_string),
            expected.replayed
        ));
    }
    Ok(())
}

/// Every view of the run's tenant compared with the model.
async fn compare_views(callers: &Callers, model: &Model) -> Result<(), String> {
    let api = callers.operator();
    let t = &callers.tenant;
    let mut problems = Vec::new();
    let mut check = |what: String, got: &Value, want: &Value| {
        if got != want {
            problems.push(format!("{what}: shows {got}, the model {want}"));
        }
    };
    let tenant = api
        .get(&format!("/api/v1/tenants/{t}/licenses/?licensed=true"))
        .await;
    let (view, tag) = model.tenant_view();
    check("tenant licenses".into(), &tenant.json, &view);
    check(
        "tenant ETag".into(),
        &json!(tenant.header("etag")),
        &json!(tag),
    );
    for (g, name) in GROUPS.iter().enumerate() {
        let base = format!("/api/v1/tenants/{t}/groups/{name}");
        let (licenses, services, instances) = tokio::join!(
            api.get_owned(format!("{base}/licenses/?licensed=true")),
            api.get_owned(format!("{base}/services/")),
            api.get_owned(format!("{base}/services/hunt-group/instances/")),
        );
        let (view, tag) = model.group_view(g);
        check(format!("{name} licenses"), &licenses.json, &view);
        check(
            format!("{name} ETag"),
            &json!(licenses.header("etag")),
            &json!(tag),
        );
        check(
            format!("{name} services"),
            &services.json,
            &model.group_services_view(g),
        );
        check(
            format!("{name} instances"),
            &instances.json,
            &model.instances_view(g),
        );
        let users = join_all(
            USERS
                .iter()
                .map(|u| api.get_owned(format!("{base}/users/{u}/services/"))),
        )
        .await;
        for (u, reply) in users.iter().enumerate() {
            check(
                format!("{name} user {}", USERS[u]),
                &reply.json,
                &model.user_view(g, u),
            );
        }
        // The group's users, two per page, and the holders of every service and pack.
        let mut listed = Vec::new();
        let mut next: Option<String> = None;
        for _ in 0..=USERS.len() {
            let page = api
                .get_owned(match &next {
                    Some(cursor) => format!("{base}/users/?limit=2&next={cursor}"),
                    None => format!("{base}/users/?limit=2"),
                })
                .await;
            listed.extend(page.json["users"].as_array().cloned().unwrap_or_default());
            match page.json["next"].as_str() {
                Some(cursor) => next = Some(cursor.to_owned()),
                None => break,
            }
        }
        check(
            format!("{name} users"),
            &json!(listed),
            &json!(model.users_view(g)),
        );
        let held: Vec<Item> = (0..USER_SERVICES.len())
            .map(Item::User)
            .chain((0..PACKS.len()).map(Item::Pack))
            .collect();
        let holders = join_all(held.iter().map(|item| {
            let (kind, service) = match item {
                Item::Pack(p) => ("servicePacks", PACKS[*p].to_owned()),
                _ => ("userServices", item.name().replace(' ', "%20")),
            };
            api.get_owned(format!("{base}/licenses/{kind}/{service}/holders/"))
        }))
        .await;
        for (item, reply) in held.iter().zip(&holders) {
            check(
                format!("{name} holders of {}", item.name()),
                &reply.json,
                &model.holders_view(g, *item),
            );
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}

/// Services that configuration objects outside this run block already.
async fn blocked_before(api: &Api) -> BTreeSet<usize> {
    let list = api.get("/api/v1/configs/user_services/").await;
    let mut blocked = BTreeSet::new();
    for config in list.json["user_services"].as_array().into_iter().flatten() {
        if config["no_more_assignable"] == true
            && let Some(s) = USER_SERVICES
                .iter()
                .position(|s| config["technical_name"] == *s)
        {
            blocked.insert(s);
        }
    }
    blocked
}

/// Why a run failed: the step (index) and what differed.
#[derive(Debug)]
struct Failure {
    step: usize,
    what: String,
}

/// Checks the tenant's audit trail after a step: a new event (and only one) when the step
/// `changed` the tenant, none when it did not. Returns the newest event's request id.
async fn one_event_per_change(
    callers: &Callers,
    newest_before: Option<String>,
    changed: bool,
    may_rewrite: bool,
) -> Result<Option<String>, String> {
    let path = format!("/api/v1/tenants/{}/audit/?limit=2", callers.tenant);
    let reply = callers.operator().get(&path).await;
    if reply.status != 200 {
        return Err(format!("audit trail: {} {}", reply.status, reply.json));
    }
    let ids: Vec<String> = reply.json["events"]
        .as_array()
        .map(|events| {
            events
                .iter()
                .filter_map(|e| e["request_id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let newest = ids.first().cloned();
    let one_more =
        newest.is_some() && newest != newest_before && ids.get(1) == newest_before.as_ref();
    let none = newest == newest_before;
    let fine = match (changed, may_rewrite) {
        (true, _) => one_more,
        (false, false) => none,
        (false, true) => none || one_more,
    };
    if fine {
        Ok(newest)
    } else {
        Err(format!(
            "audit trail: the step {} the tenant, but the newest events are {ids:?} (before: {newest_before:?})",
            if changed { "changed" } else { "did not change" }
        ))
    }
}

/// How often each answer (status and first error code) came up: what a run exercised.
type Tally = std::collections::BTreeMap<(u16, String), usize>;

/// Plays `steps` on a fresh tenant of the server at `base`, comparing each answer with the
/// model, the views after each step when `every_step` (else after the last), and the audit at
/// the end. The run's configuration objects are deleted whatever happens.
async fn play(app: &TestApp, steps: &[Step], every_step: bool) -> Result<Tally, Failure> {
    let tenant = unique("model");
    let callers = Callers::new(&app.base, &tenant);
    let mut model = Model::new(blocked_before(callers.operator()).await);
    let mut tally = Tally::new();
    let result = async {
        let mut newest_event: Option<String> = None;
        for (i, step) in steps.iter().enumerate() {
            let state_before = model.tenant_state();
            let expected = model.apply(step);
            let changed = model.tenant_state() != state_before;
            let code = expected.errors.first().map(|e| e.0.clone());
            let code = match (expected.replayed, code) {
                (true, _) => "replayed".to_owned(),
                (false, code) => code.unwrap_or_default(),
            };
            *tally.entry((expected.status, code)).or_default() += 1;
            let reply = send(&callers, step).await;
            compare(&expected, &reply).map_err(|what| Failure { step: i, what })?;
            // Exactly one audit event for a step that changed the tenant, none otherwise (a
            // pack replaced by the same definition is written, so may leave one).
            let may_rewrite = matches!(step.op, Op::PackReplace { .. }) && reply.status == 200;
            newest_event = one_event_per_change(&callers, newest_event, changed, may_rewrite)
                .await
                .map_err(|what| Failure { step: i, what })?;
            if every_step || i + 1 == steps.len() {
                compare_views(&callers, &model)
                    .await
                    .map_err(|what| Failure { step: i, what })?;
            }
        }
        let (code, report) = app.audit_text(&tenant).await;
        if code != Some(0) {
            return Err(Failure {
                step: steps.len().saturating_sub(1),
                what: format!("licensing-audit: {report}"),
            });
        }
        Ok(tally)
    }
    .await;
    for service in model.configs() {
        let path = format!("/api/v1/configs/user_services/{tenant}-cfg{service}/");
        callers
            .operator()
            .send("DELETE", &path, None)
            .await_empty()
            .await;
    }
    result
}

/// The shortest sequence found that still fails: steps after the failing one dropped, then
/// chunks and single steps removed while the run still fails, within `budget`.
async fn shrink(app: &TestApp, steps: &[Step], failure: &Failure, budget: Duration) -> Vec<Step> {
    let started = Instant::now();
    let mut best: Vec<Step> = steps[..=failure.step].to_vec();
    let mut chunk = best.len() / 2;
    while chunk >= 1 && started.elapsed() < budget {
        let mut at = 0;
        let mut removed_any = false;
        while at < best.len() && started.elapsed() < budget {
            let end = (at + chunk).min(best.len());
            let candidate: Vec<Step> = best[..at].iter().chain(&best[end..]).cloned().collect();
            if !candidate.is_empty() && play(app, &candidate, false).await.is_err() {
                best = candidate;
                removed_any = true;
            } else {
                at += chunk;
            }
        }
        if !removed_any {
            chunk /= 2;
        }
    }
    best
}

/// Plays one seed; on failure, shrinks it and returns the report.
async fn run_seed(
    app: &TestApp,
    seed: u64,
    ops: usize,
    shrink_budget: Duration,
) -> Result<Tally, String> {
    let steps = sequence(seed, ops);
    let failure = match play(app, &steps, true).await {
        Ok(tally) => return Ok(tally),
        Err(failure) => failure,
    };
    let shortest = shrink(app, &steps, &failure, shrink_budget).await;
    let mut report = format!(
        "model: seed {seed} failed at step {} of {ops}:\n{}\n\nshortest failing sequence ({} steps; replay with SEED={seed} OPS={ops}):\n",
        failure.step + 1,
        failure.what,
        shortest.len()
    );
    for (i, step) in shortest.iter().enumerate() {
        let _ = writeln!(report, "  {:>3}. {}", i + 1, describe(step, "{tenant}"));
    }
    if let Err(last) = play(app, &shortest, true).await {
        let _ = write!(report, "it fails at step {}: {}", last.step + 1, last.what);
    }
    Err(report)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_sequences_follow_the_model() {
    let _one = ONE_AT_A_TIME.lock().await;
    let app = TestApp::spawn().await;
    let ops = env_u64("OPS").unwrap_or(100) as usize;
    if let Some(minutes) = env_u64("MINUTES") {
        // `make soak`: fresh random seeds until the time is up; every failing seed is printed.
        let until = Instant::now() + Duration::from_secs(minutes * 60);
        let (mut runs, mut failures) = (0, Vec::new());
        while Instant::now() < until {
            let seed = fastrand::u64(..);
            runs += 1;
            if let Err(report) = run_seed(&app, seed, ops, Duration::from_secs(120)).await {
                eprintln!("{report}\n");
                failures.push(seed);
            }
        }
        eprintln!(
            "soak: {runs} seeds of {ops} steps, {} failed: {failures:?}",
            failures.len()
        );
        assert!(failures.is_empty(), "failing seeds: {failures:?}");
        return;
    }
    // The sequences must reach the rules, not only the happy path: fixed seeds, from 1, until
    // every one of these answers has been seen (at least 4 seeds, at most 16).
    let wanted = [
        "OVER_LIMIT",
        "NOT_LICENSED",
        "FORBIDDEN",
        "replayed",
        "IDEMPOTENCY_KEY_REUSED",
        "PACK_IN_USE",
        "UNKNOWN_PACK",
        "BELOW_USAGE",
        "BELOW_ALLOCATED",
        "POOL_EXHAUSTED",
        "POOL_NOT_UNLIMITED",
        "NOT_LICENSED_TO_TENANT",
        "NO_MORE_ASSIGNABLE",
        "INSTANCE_EXISTS",
    ];
    let seeds: Vec<u64> = match env_u64("SEED") {
        Some(seed) => vec![seed],
        None => (1..=16).collect(),
    };
    let started = Instant::now();
    let mut covered = Tally::new();
    let missing = |covered: &Tally| -> Vec<&str> {
        wanted
            .iter()
            .copied()
            .filter(|w| !covered.keys().any(|(_, code)| code == w))
            .collect()
    };
    let mut ran = 0;
    for seed in seeds {
        match run_seed(&app, seed, ops, Duration::from_secs(60)).await {
            Ok(tally) => {
                for (answer, n) in tally {
                    *covered.entry(answer).or_default() += n;
                }
            }
            Err(report) => panic!("{report}"),
        }
        ran += 1;
        if ran >= 4 && missing(&covered).is_empty() {
            break;
        }
    }
    eprintln!(
        "model: {ran} sequences of {ops} steps passed in {:?}; answers: {covered:?}",
        started.elapsed()
    );
    let missing = missing(&covered);
    assert!(
        missing.is_empty(),
        "no step answered {missing:?}: {covered:?}"
    );
}

/// A fault proxy with `faults` in front of the tests' DynamoDB, and the API served over tables
/// of its own through it; `None` (the test is skipped) when that DynamoDB is not one the proxy
/// can stand in front of. The tables are also reachable straight (the audit reads them so).
async fn behind_proxy(faults: Faults) -> Option<(FaultProxy, TestApp)> {
    let Some(endpoint) = api_tests::harness::local_endpoint() else {
        eprintln!("skipped: no plain-HTTP DynamoDB to put the fault proxy in front of");
        return None;
    };
    let app = TestApp::spawn().await;
    let proxy = FaultProxy::start(&endpoint, faults).await;
    let server = app.behind(&proxy.endpoint()).await;
    Some((proxy, server))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_responses_change_no_answer_of_a_random_sequence() {
    let _one = ONE_AT_A_TIME.lock().await;
    let seed = env_u64("SEED").unwrap_or(7);
    let Some((proxy, server)) = behind_proxy(Faults {
        seed,
        lose: 0.2,
        ..Faults::default()
    })
    .await
    else {
        return;
    };
    let ops = env_u64("OPS").unwrap_or(100) as usize;
    if let Err(report) = run_seed(&server, seed, ops, Duration::from_secs(60)).await {
        panic!("through a proxy losing 20% of committed responses: {report}");
    }
    let injected = proxy.injected();
    assert!(
        Injected::get(&injected.lost) >= 3,
        "responses were lost: {injected:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// The concurrent phase

/// What a client of the concurrent phase may be told: success, a rule, or "try again".
fn acceptable(reply: &Reply) -> bool {
    matches!(reply.status, 200 | 201)
        || (reply.status == 409
            && [
                "OVER_LIMIT",
                "BELOW_USAGE",
                "NOT_LICENSED",
                "POOL_EXHAUSTED",
                "CONCURRENT_UPDATE",
            ]
            .contains(&reply.code()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_clients_never_exceed_a_hot_license() {
    let _one = ONE_AT_A_TIME.lock().await;
    let seed = env_u64("SEED").unwrap_or(11);
    let Some((proxy, server)) = behind_proxy(Faults {
        seed,
        conflicts: true,
        hold: Duration::from_millis(3),
        lose: 0.1,
        ..Faults::default()
    })
    .await
    else {
        return;
    };
    let tenant = unique("hot");
    let api = Api::at(&server.base, Caller::operator());
    let groups = ["g", "h"];
    let base = |g: &str| format!("/api/v1/tenants/{tenant}/groups/{g}");
    let limited = |m: u32| json!({"unlimited": false, "maximum": m});
    // Call Waiting is pooled at 6 for the tenant: the two groups' licenses race for it, while
    // users race for each group's licenses, directly and through the pack PW.
    let reply = api
        .post(
            &format!("/api/v1/tenants/{tenant}/service_packs/"),
            &json!({"name": "PW", "services": ["Call Waiting", "Call Return"]}),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.json);
    let reply = api
        .put(
            &format!("/api/v1/tenants/{tenant}/licenses/"),
            &json!({"userServices": [{"name": "Call Waiting", "allocated": limited(6)}]}),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.json);
    for g in groups {
        let reply = api
            .put(
                &format!("{}/licenses/", base(g)),
                &json!({"userServices": [{"name": "Call Waiting", "allocated": limited(3)},
                                         {"name": "Call Return", "allocated": limited(4)}],
                        "servicePacks": [{"name": "PW", "allocated": limited(2)}]}),
            )
            .await;
        assert_eq!(reply.status, 200, "{}", reply.json);
    }

    let clients = 8;
    let per_client = 25;
    let started = Instant::now();
    let runs = (0..clients).map(|c| {
        let (server, tenant, base) = (&server, &tenant, &base);
        async move {
            let mut rng = fastrand::Rng::with_seed(seed * 1000 + c);
            let group = groups[rng.usize(..groups.len())];
            // The group's admin assigns; the tenant's admin and the operator change licenses.
            let admin = Api::at(&server.base, Caller::group_admin(tenant, group));
            let tenant_admin = Api::at(&server.base, Caller::tenant_admin(tenant));
            let operator = Api::at(&server.base, Caller::operator());
            let mut log = Vec::new();
            let mut last_keyed: Option<(&str, String, Value, String)> = None;
            for n in 0..per_client {
                let user = format!("{}/users/u{}/services/", base(group), rng.u8(..6));
                let licenses = format!("{}/licenses/", base(groups[rng.usize(..groups.len())]));
                let cw = json!({"services": [{"name": "Call Waiting"}]});
                let pw = json!({"servicePacks": [{"name": "PW"}]});
                let both = json!({"services": [{"name": "Call Waiting"}],
                                  "servicePacks": [{"name": "PW"}]});
                let (method, path, body, api) = match rng.u8(..10) {
                    0..=2 => ("POST", user, cw, &admin),
                    3..=4 => ("POST", user, pw, &admin),
                    5 => ("POST", user, both, &admin),
                    6..=7 => ("DELETE", user, both, &admin),
                    8 => (
                        "PUT",
                        licenses,
                        json!({"userServices": [{"name": "Call Waiting", "allocated": limited(rng.u32(1..=4))}]}),
                        &tenant_admin,
                    ),
                    _ => (
                        "PUT",
                        licenses,
                        json!({"servicePacks": [{"name": "PW", "allocated": limited(rng.u32(0..=3))}]}),
                        &operator,
                    ),
                };
                // Some requests carry a key, and some repeat the last keyed one of an admin.
                let (method, path, body, key) = match (&last_keyed, rng.u8(..10)) {
                    (Some((m, p, b, k)), 0) if std::ptr::eq(api, &admin) => {
                        (*m, p.clone(), b.clone(), Some(k.clone()))
                    }
                    (_, 1..=2) => (method, path, body, Some(format!("{tenant}-{c}-{n}"))),
                    _ => (method, path, body, None),
                };
                let mut request = api.send(method, &path, Some(&body.to_string()));
                if let Some(key) = &key {
                    request = request.with("Idempotency-Key", key);
                }
                let reply = request.await;
                if let Some(key) = key
                    && std::ptr::eq(api, &admin)
                {
                    last_keyed = Some((method, path.clone(), body.clone(), key));
                }
                log.push((format!("{method} {path} {body}"), reply));
            }
            log
        }
    });
    let logs = join_all(runs).await;
    eprintln!(
        "concurrent phase: {} requests in {:?}; {:?}",
        clients * per_client,
        started.elapsed(),
        proxy.injected()
    );
    let mut answers = std::collections::BTreeMap::<(u16, String), usize>::new();
    for (c, log) in logs.iter().enumerate() {
        for (request, reply) in log {
            *answers
                .entry((reply.status, reply.code().to_owned()))
                .or_default() += 1;
            assert!(
                acceptable(reply),
                "seed {seed}, client {c}: {request} answered {} {}",
                reply.status,
                reply.json
            );
        }
    }
    eprintln!("concurrent phase answers: {answers:?}");
    assert!(
        answers.keys().any(|(_, code)| code == "OVER_LIMIT"),
        "the licenses were hot: {answers:?}"
    );
    assert!(Injected::get(&proxy.injected().conflicts) >= 1);

    // Every counter equals its distinct holders; nothing limited is above its maximum.
    let mut pool_held = 0;
    for g in groups {
        let licenses = api
            .get(&format!("{}/licenses/?licensed=true", base(g)))
            .await
            .json;
        let users =
            join_all((0..6).map(|u| api.get_owned(format!("{}/users/u{u}/services/", base(g)))))
                .await;
        let holders = |name: &str| {
            users
                .iter()
                .filter(|r| {
                    r.json["effectiveServices"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .any(|e| e["name"] == name)
                })
                .count() as u64
        };
        let packs = users
            .iter()
            .filter(|r| {
                r.json["servicePacks"]
                    .as_array()
                    .is_some_and(|p| !p.is_empty())
            })
            .count() as u64;
        let entry = |list: &str, name: &str| -> Value {
            licenses[list]
                .as_array()
                .into_iter()
                .flatten()
                .find(|e| e["name"] == name)
                .cloned()
                .unwrap_or(Value::Null)
        };
        for (list, name, held) in [
            ("userServices", "Call Waiting", holders("Call Waiting")),
            ("userServices", "Call Return", holders("Call Return")),
            ("servicePacks", "PW", packs),
        ] {
            let e = entry(list, name);
            let in_use = e["inUse"].as_u64().unwrap_or(0);
            assert_eq!(
                in_use, held,
                "seed {seed}, {g}: {name}: {e} but {held} holders"
            );
            if let Some(max) = e["allocated"]["maximum"].as_u64() {
                assert!(
                    in_use <= max,
                    "seed {seed}, {g}: {name} above its maximum: {e}"
                );
            }
        }
        pool_held += entry("userServices", "Call Waiting")["allocated"]["maximum"]
            .as_u64()
            .unwrap_or(0);
    }
    // The tenant's pool holds what its groups hold, within the tenant's allocation.
    let pool = api
        .get(&format!("/api/v1/tenants/{tenant}/licenses/?licensed=true"))
        .await
        .json;
    let cw = pool["userServices"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| e["name"] == "Call Waiting")
        .cloned()
        .unwrap_or(Value::Null);
    assert_eq!(cw["currentlyAllocated"], pool_held, "seed {seed}: {cw}");
    assert!(
        pool_held <= 6,
        "seed {seed}: the groups hold {pool_held} of a pool of 6"
    );
    let (code, report) = server.audit_text(&tenant).await;
    assert_eq!(code, Some(0), "seed {seed}: licensing-audit:\n{report}");
}
