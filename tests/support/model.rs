//! A reference model of the licensing rules, written from `README.md` and `openapi.yaml` (not
//! from the store): what each request must answer, and what the GETs must show afterwards.
//! Pure and small; `tests/model.rs` drives the API with random sequences of [`Step`]s and
//! compares every answer and every view with this model.
//!
//! The universe is deliberately tiny (one tenant, two groups, three users each, four user
//! services, two group services, two pack names, two instance names) so that random sequences
//! keep running into the rules: full licenses, pools, packs in use, blocked services.

use crate::helpers::named;
use licensing::domain::UserService;
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet};

pub const USER_SERVICES: [&str; 4] = [
    "Call Waiting",
    "Call Return",
    "Call Transfer",
    "Three-Way Call",
];
/// Hunt Group has instances; Voice Messaging Group counts 1 while assigned.
pub const GROUP_SERVICES: [&str; 2] = ["Hunt Group", "Voice Messaging Group"];
pub const GROUPS: [&str; 2] = ["g1", "g2"];
pub const USERS: [&str; 3] = ["u1", "u2", "u3"];
pub const PACKS: [&str; 2] = ["P1", "P2"];
pub const INSTANCES: [&str; 2] = ["i1", "i2"];

/// Something licensed: an index into [`USER_SERVICES`], [`GROUP_SERVICES`] or [`PACKS`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Item {
    User(usize),
    Group(usize),
    Pack(usize),
}

impl Item {
    pub fn name(self) -> &'static str {
        match self {
            Item::User(i) => USER_SERVICES[i],
            Item::Group(i) => GROUP_SERVICES[i],
            Item::Pack(i) => PACKS[i],
        }
    }

    fn list(self) -> &'static str {
        match self {
            Item::User(_) => "userServices",
            Item::Group(_) => "groupServices",
            Item::Pack(_) => "servicePacks",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Alloc {
    Unlimited,
    Limited(u32),
}

impl Alloc {
    fn licensed(self) -> bool {
        self != Alloc::Limited(0)
    }

    fn json(self, no_instance: Option<bool>) -> Value {
        let mut v = match self {
            Alloc::Unlimited => json!({"unlimited": true}),
            Alloc::Limited(m) => json!({"unlimited": false, "maximum": m}),
        };
        if let Some(n) = no_instance {
            v["noInstance"] = json!(n);
        }
        v
    }
}

/// What a tenant PUT entry asks of the tenant's allocation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PoolEntry {
    Set(Alloc),
    /// `"allocated": null`: no longer pooled.
    Remove,
    /// No `allocated` (the GET's read-only fields instead): left as it is.
    Keep,
}

/// Who calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Operator,
    TenantAdmin,
    /// The admin of another tenant: allowed nothing here.
    OtherTenantAdmin,
    GroupAdmin(usize),
}

/// One request of a sequence.
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    TenantPut(Vec<(Item, PoolEntry)>),
    GroupPut {
        group: usize,
        items: Vec<(Item, Alloc)>,
        auto_assign: bool,
    },
    PackCreate {
        pack: usize,
        services: Vec<usize>,
    },
    PackReplace {
        pack: usize,
        services: Vec<usize>,
    },
    PackDelete {
        pack: usize,
    },
    Assign {
        group: usize,
        user: usize,
        services: Vec<usize>,
        packs: Vec<usize>,
    },
    Unassign {
        group: usize,
        user: usize,
        services: Vec<usize>,
        packs: Vec<usize>,
    },
    GroupServices {
        group: usize,
        services: Vec<usize>,
        assign: bool,
    },
    InstanceAdd {
        group: usize,
        instance: usize,
    },
    InstanceRemove {
        group: usize,
        instance: usize,
    },
    /// Services and packs given to (`assign`) or taken from several users of a group in one
    /// request: each user once, with its services and packs.
    Bulk {
        group: usize,
        assign: bool,
        users: Vec<(usize, Vec<usize>, Vec<usize>)>,
    },
    /// The operator's configuration object of a user service, toggling `no_more_assignable`.
    Config {
        service: usize,
        blocked: bool,
    },
}

/// A request as sent: a role, an operation, and maybe an `Idempotency-Key`.
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    pub role: Role,
    pub op: Op,
    pub key: Option<String>,
}

/// What the API must answer.
#[derive(Clone, Debug, PartialEq)]
pub struct Expected {
    pub status: u16,
    /// `(code, name)` of each error item, in order.
    pub errors: Vec<(String, Option<String>)>,
    /// The success body, when the model knows it exactly.
    pub body: Option<Value>,
    /// A repeat answered from the key's record.
    pub replayed: bool,
}

impl Expected {
    fn ok(status: u16, body: Value) -> Self {
        Expected {
            status,
            errors: Vec::new(),
            body: Some(body),
            replayed: false,
        }
    }

    fn status(status: u16) -> Self {
        Expected {
            status,
            errors: Vec::new(),
            body: None,
            replayed: false,
        }
    }

    fn refused(status: u16, errors: Vec<(&str, Option<&str>)>) -> Self {
        Expected {
            status,
            errors: errors
                .into_iter()
                .map(|(c, n)| (c.to_owned(), n.map(str::to_owned)))
                .collect(),
            body: None,
            replayed: false,
        }
    }
}

impl Op {
    /// The request: method, path (under the tenant `t`), body.
    pub fn request(&self, t: &str) -> (&'static str, String, Option<Value>) {
        let group = |g: usize| format!("/api/v1/tenants/{t}/groups/{}", GROUPS[g]);
        match self {
            Op::TenantPut(items) => {
                let mut body = Map::new();
                for (item, entry) in items {
                    let entry = match entry {
                        PoolEntry::Set(a) => {
                            json!({"name": item.name(), "allocated": a.json(None)})
                        }
                        PoolEntry::Remove => json!({"name": item.name(), "allocated": null}),
                        // What a GET shows and a PUT ignores.
                        PoolEntry::Keep => json!({"name": item.name(), "pooled": true,
                            "currentlyAllocated": 7, "unlimitedGroups": 0, "remaining": 1}),
                    };
                    push(&mut body, item.list(), entry);
                }
                (
                    "PUT",
                    format!("/api/v1/tenants/{t}/licenses/"),
                    Some(Value::Object(body)),
                )
            }
            Op::GroupPut {
                group: g,
                items,
                auto_assign,
            } => {
                let mut body = Map::new();
                for (item, alloc) in items {
                    push(
                        &mut body,
                        item.list(),
                        json!({"name": item.name(), "allocated": alloc.json(None)}),
                    );
                }
                if *auto_assign {
                    body.insert("auto_assign".into(), json!(true));
                }
                (
                    "PUT",
                    format!("{}/licenses/", group(*g)),
                    Some(Value::Object(body)),
                )
            }
            Op::PackCreate { pack, services } => (
                "POST",
                format!("/api/v1/tenants/{t}/service_packs/"),
                Some(json!({"name": PACKS[*pack],
                    "services": services.iter().map(|s| USER_SERVICES[*s]).collect::<Vec<_>>()})),
            ),
            Op::PackReplace { pack, services } => (
                "PUT",
                format!("/api/v1/tenants/{t}/service_packs/{}/", PACKS[*pack]),
                Some(
                    json!({"services": services.iter().map(|s| USER_SERVICES[*s]).collect::<Vec<_>>()}),
                ),
            ),
            Op::PackDelete { pack } => (
                "DELETE",
                format!("/api/v1/tenants/{t}/service_packs/{}/", PACKS[*pack]),
                None,
            ),
            Op::Assign {
                group: g,
                user,
                services,
                packs,
            }
            | Op::Unassign {
                group: g,
                user,
                services,
                packs,
            } => {
                let mut body = Map::new();
                if !services.is_empty() {
                    body.insert(
                        "services".into(),
                        named(
                            &services
                                .iter()
                                .map(|s| USER_SERVICES[*s])
                                .collect::<Vec<_>>(),
                        ),
                    );
                }
                if !packs.is_empty() {
                    body.insert(
                        "servicePacks".into(),
                        named(&packs.iter().map(|p| PACKS[*p]).collect::<Vec<_>>()),
                    );
                }
                let method = if matches!(self, Op::Assign { .. }) {
                    "POST"
                } else {
                    "DELETE"
                };
                (
                    method,
                    format!("{}/users/{}/services/", group(*g), USERS[*user]),
                    Some(Value::Object(body)),
                )
            }
            Op::GroupServices {
                group: g,
                services,
                assign,
            } => (
                if *assign { "POST" } else { "DELETE" },
                format!("{}/services/", group(*g)),
                Some(
                    json!({"services": named(&services.iter().map(|s| GROUP_SERVICES[*s]).collect::<Vec<_>>())}),
                ),
            ),
            Op::InstanceAdd { group: g, instance } => (
                "POST",
                format!("{}/services/hunt-group/instances/", group(*g)),
                Some(json!({"name": INSTANCES[*instance]})),
            ),
            Op::InstanceRemove { group: g, instance } => (
                "DELETE",
                format!(
                    "{}/services/hunt-group/instances/{}/",
                    group(*g),
                    INSTANCES[*instance]
                ),
                None,
            ),
            Op::Bulk {
                group: g,
                assign,
                users,
            } => {
                let entries: Vec<Value> = users
                    .iter()
                    .map(|(user, services, packs)| {
                        let mut entry = json!({"user_id": USERS[*user]});
                        if !services.is_empty() {
                            entry["services"] = named(
                                &services
                                    .iter()
                                    .map(|s| USER_SERVICES[*s])
                                    .collect::<Vec<_>>(),
                            );
                        }
                        if !packs.is_empty() {
                            entry["servicePacks"] =
                                named(&packs.iter().map(|p| PACKS[*p]).collect::<Vec<_>>());
                        }
                        entry
                    })
                    .collect();
                (
                    if *assign { "POST" } else { "DELETE" },
                    format!("{}/users/services/", group(*g)),
                    Some(json!({"users": entries})),
                )
            }
            Op::Config { service, blocked } => (
                "PUT",
                format!("/api/v1/configs/user_services/{t}-cfg{service}/"),
                Some(json!({"technical_name": USER_SERVICES[*service],
                    "no_more_assignable": blocked})),
            ),
        }
    }
}

fn push(body: &mut Map<String, Value>, list: &str, entry: Value) {
    body.entry(list)
        .or_insert_with(|| json!([]))
        .as_array_mut()
        .expect("a list")
        .push(entry);
}

/// A group license as the model keeps it.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Lic {
    alloc: Alloc,
    /// Group services: assigned to the group.
    assigned: bool,
}

#[derive(Clone, Debug, Default)]
struct User {
    direct: BTreeSet<usize>,
    /// Assigned packs with the services they gave.
    packs: BTreeMap<usize, Vec<usize>>,
}

impl User {
    fn holds(&self, s: usize) -> bool {
        self.direct.contains(&s) || self.packs.values().any(|ss| ss.contains(&s))
    }

    fn is_empty(&self) -> bool {
        self.direct.is_empty() && self.packs.is_empty()
    }
}

#[derive(Clone, Debug, Default)]
struct Group {
    licenses: BTreeMap<Item, Lic>,
    version: u64,
    users: BTreeMap<usize, User>,
    instances: BTreeSet<usize>,
}

impl Group {
    fn in_use(&self, item: Item) -> u32 {
        let n = match item {
            Item::User(s) => self.users.values().filter(|u| u.holds(s)).count(),
            Item::Pack(p) => self
                .users
                .values()
                .filter(|u| u.packs.contains_key(&p))
                .count(),
            Item::Group(0) => self.instances.len(),
            Item::Group(_) => usize::from(self.licenses.get(&item).is_some_and(|l| l.assigned)),
        };
        n as u32
    }

    /// Why one more unit of `item` is refused, if it is.
    fn count_up_refusal(&self, item: Item) -> Option<&'static str> {
        self.refusal(item, 1).map(|(code, _)| code)
    }

    /// Why `n` more units of `item` are refused, if they are, and how many would fit.
    fn refusal(&self, item: Item, n: usize) -> Option<(&'static str, usize)> {
        match self.licenses.get(&item) {
            None => Some(("NOT_LICENSED", 0)),
            Some(l) if !l.alloc.licensed() => Some(("NOT_LICENSED", 0)),
            Some(Lic {
                alloc: Alloc::Limited(m),
                ..
            }) => {
                let room = m.saturating_sub(self.in_use(item)) as usize;
                (n > room).then_some(("OVER_LIMIT", room))
            }
            Some(_) => None,
        }
    }
}

/// A key's record: the request that made it and its answer.
#[derive(Clone, Debug)]
struct Kept {
    op: Op,
    answer: Expected,
}

/// The reference model.
#[derive(Clone, Debug)]
pub struct Model {
    /// The tenant's allocations (pooled items).
    pool: BTreeMap<Item, Alloc>,
    tenant_version: u64,
    /// Pack definitions.
    packs: BTreeMap<usize, Vec<usize>>,
    groups: [Group; 2],
    /// `no_more_assignable` of this run's configuration object of each service.
    configs: BTreeMap<usize, bool>,
    /// Services blocked before the run by other configuration objects.
    blocked_before: BTreeSet<usize>,
    /// Idempotency records by scope and key.
    records: BTreeMap<(String, String), Kept>,
}

/// A group's share of its tenant's pool.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Share {
    limited: u64,
    unlimited: bool,
}

fn share(alloc: Option<Alloc>) -> Share {
    match alloc {
        None | Some(Alloc::Limited(0)) => Share::default(),
        Some(Alloc::Limited(m)) => Share {
            limited: m.into(),
            unlimited: false,
        },
        Some(Alloc::Unlimited) => Share {
            limited: 0,
            unlimited: true,
        },
    }
}

impl Model {
    /// A fresh tenant; `blocked_before` are services some configuration object already blocks.
    pub fn new(blocked_before: BTreeSet<usize>) -> Self {
        Model {
            pool: BTreeMap::new(),
            tenant_version: 0,
            packs: BTreeMap::new(),
            groups: [Group::default(), Group::default()],
            configs: BTreeMap::new(),
            blocked_before,
            records: BTreeMap::new(),
        }
    }

    fn blocked(&self, s: usize) -> bool {
        self.blocked_before.contains(&s) || self.configs.get(&s).copied().unwrap_or(false)
    }

    /// (sum of the groups' limited maximums, groups holding it unlimited)
    fn held(&self, item: Item) -> (u64, u32) {
        let mut sum = (0, 0);
        for g in &self.groups {
            let s = share(g.licenses.get(&item).map(|l| l.alloc));
            sum.0 += s.limited;
            sum.1 += u32::from(s.unlimited);
        }
        sum
    }

    fn allowed(role: Role, op: &Op) -> bool {
        let usage_of = |g: usize| match role {
            Role::Operator | Role::TenantAdmin => true,
            Role::GroupAdmin(mine) => mine == g,
            Role::OtherTenantAdmin => false,
        };
        match op {
            Op::TenantPut(_) | Op::Config { .. } => role == Role::Operator,
            Op::GroupPut { .. }
            | Op::PackCreate { .. }
            | Op::PackReplace { .. }
            | Op::PackDelete { .. } => matches!(role, Role::Operator | Role::TenantAdmin),
            Op::Assign { group, .. }
            | Op::Unassign { group, .. }
            | Op::GroupServices { group, .. }
            | Op::InstanceAdd { group, .. }
            | Op::InstanceRemove { group, .. }
            | Op::Bulk { group, .. } => usage_of(*group),
        }
    }

    fn scope(role: Role) -> String {
        match role {
            Role::Operator => "operator".into(),
            Role::TenantAdmin => "tenant".into(),
            Role::OtherTenantAdmin => "other".into(),
            Role::GroupAdmin(g) => format!("group {g}"),
        }
    }

    /// Applies `step` and says what the API must answer.
    /// The tenant's state as its audit trail sees it: what a write can change, without the
    /// idempotency records (a keyed write that changes nothing still keeps its answer) and the
    /// configuration (whose trail is the configuration's own).
    pub fn tenant_state(&self) -> String {
        format!("{:?}", (&self.pool, &self.packs, &self.groups))
    }

    pub fn apply(&mut self, step: &Step) -> Expected {
        if !Self::allowed(step.role, &step.op) {
            return Expected::refused(403, vec![("FORBIDDEN", None)]);
        }
        if let Some(key) = &step.key {
            // Each function keeps its own records: the configuration's keys are apart from the
            // licenses' keys.
            let function = if matches!(step.op, Op::Config { .. }) {
                "user-services"
            } else {
                "licenses"
            };
            let id = (
                format!("{function} {}", Self::scope(step.role)),
                key.clone(),
            );
            if let Some(kept) = self.records.get(&id) {
                if kept.op == step.op {
                    let mut answer = kept.answer.clone();
                    answer.replayed = true;
                    return answer;
                }
                return Expected::refused(422, vec![("IDEMPOTENCY_KEY_REUSED", None)]);
            }
            let answer = self.run(step.role, &step.op);
            if (200..300).contains(&answer.status) {
                self.records.insert(
                    id,
                    Kept {
                        op: step.op.clone(),
                        answer: answer.clone(),
                    },
                );
            }
            return answer;
        }
        self.run(step.role, &step.op)
    }

    fn run(&mut self, role: Role, op: &Op) -> Expected {
        match op {
            Op::TenantPut(items) => self.tenant_put(items),
            Op::GroupPut {
                group,
                items,
                auto_assign,
            } => self.group_put(role, *group, items, *auto_assign),
            Op::PackCreate { pack, services } => {
                if self.packs.contains_key(pack) {
                    return Expected::refused(409, vec![("ALREADY_EXISTS", Some(PACKS[*pack]))]);
                }
                self.packs.insert(*pack, services.clone());
                Expected::ok(201, pack_view(*pack, services))
            }
            Op::PackReplace { pack, services } => {
                if !self.packs.contains_key(pack) {
                    return Expected::refused(404, vec![("NOT_FOUND", None)]);
                }
                let (limited, unlimited) = self.held(Item::Pack(*pack));
                if limited > 0 || unlimited > 0 {
                    return Expected::refused(409, vec![("PACK_IN_USE", Some(PACKS[*pack]))]);
                }
                self.packs.insert(*pack, services.clone());
                Expected::ok(200, pack_view(*pack, services))
            }
            Op::PackDelete { pack } => {
                if !self.packs.contains_key(pack) {
                    return Expected::refused(404, vec![("NOT_FOUND", None)]);
                }
                let (limited, unlimited) = self.held(Item::Pack(*pack));
                if limited > 0 || unlimited > 0 || self.pool.contains_key(&Item::Pack(*pack)) {
                    return Expected::refused(409, vec![("PACK_IN_USE", Some(PACKS[*pack]))]);
                }
                self.packs.remove(pack);
                Expected::status(204)
            }
            Op::Assign {
                group,
                user,
                services,
                packs,
            } => match self.assign(*group, &[(*user, services.clone(), packs.clone())]) {
                Ok(_) => Expected::ok(201, user_answer(services, packs, true)),
                Err(refusal) => refusal,
            },
            Op::Unassign {
                group,
                user,
                services,
                packs,
            } => {
                self.unassign(*group, &[(*user, services.clone(), packs.clone())]);
                Expected::ok(200, user_answer(services, packs, false))
            }
            Op::Bulk {
                group,
                assign: true,
                users,
            } => match self.assign(*group, users) {
                Ok(changed) => Expected::ok(201, bulk_answer(users, &changed, "assigned")),
                Err(refusal) => refusal,
            },
            Op::Bulk {
                group,
                assign: false,
                users,
            } => {
                let changed = self.unassign(*group, users);
                Expected::ok(200, bulk_answer(users, &changed, "unassigned"))
            }
            Op::GroupServices {
                group,
                services,
                assign,
            } => self.group_services(*group, services, *assign),
            Op::InstanceAdd { group, instance } => {
                let g = &mut self.groups[*group];
                if g.instances.contains(instance) {
                    return Expected::refused(409, vec![("INSTANCE_EXISTS", Some("Hunt Group"))]);
                }
                if let Some(code) = g.count_up_refusal(Item::Group(0)) {
                    return Expected::refused(409, vec![(code, Some("Hunt Group"))]);
                }
                g.instances.insert(*instance);
                if let Some(l) = g.licenses.get_mut(&Item::Group(0)) {
                    l.assigned = true;
                }
                Expected::ok(201, json!({"name": INSTANCES[*instance]}))
            }
            Op::InstanceRemove { group, instance } => {
                if !self.groups[*group].instances.remove(instance) {
                    return Expected::refused(404, vec![("NOT_FOUND", None)]);
                }
                Expected::status(204)
            }
            Op::Config { service, blocked } => {
                self.configs.insert(*service, *blocked);
                Expected::status(200)
            }
        }
    }

    fn tenant_put(&mut self, entries: &[(Item, PoolEntry)]) -> Expected {
        let entries = &in_body_order(entries);
        // Entries without `allocated` leave their item alone (and are not in the receipt).
        let items: Vec<(Item, Option<Alloc>)> = entries
            .iter()
            .filter_map(|(item, entry)| match entry {
                PoolEntry::Set(a) => Some((*item, Some(*a))),
                PoolEntry::Remove => Some((*item, None)),
                PoolEntry::Keep => None,
            })
            .collect();
        let changing: Vec<&(Item, Option<Alloc>)> = items
            .iter()
            .filter(|(item, alloc)| self.pool.get(item).copied() != *alloc)
            .collect();
        let mut unknown = Vec::new();
        let mut conflicts = Vec::new();
        for (item, alloc) in &changing {
            let Some(alloc) = alloc else { continue };
            if let Item::Pack(p) = item
                && !self.packs.contains_key(p)
            {
                unknown.push(("UNKNOWN_PACK", Some(item.name())));
                continue;
            }
            if let Alloc::Limited(m) = alloc {
                let (limited, unlimited) = self.held(*item);
                if unlimited > 0 {
                    conflicts.push(("GROUP_HOLDS_UNLIMITED", Some(item.name())));
                } else if limited > u64::from(*m) {
                    conflicts.push(("BELOW_ALLOCATED", Some(item.name())));
                }
            }
        }
        if !unknown.is_empty() {
            return Expected::refused(400, unknown);
        }
        if !conflicts.is_empty() {
            return Expected::refused(409, conflicts);
        }
        for (item, alloc) in &changing {
            match alloc {
                Some(a) => self.pool.insert(*item, *a),
                None => self.pool.remove(item),
            };
        }
        if !changing.is_empty() {
            self.tenant_version += 1;
        }
        // Every list the body carried is in the receipt, with the entries that set or removed.
        let mut answer = receipt(items.iter().map(|(i, _)| *i));
        for (item, _) in entries {
            answer
                .as_object_mut()
                .expect("a receipt is an object")
                .entry(item.list())
                .or_insert_with(|| json!([]));
        }
        Expected::ok(200, answer)
    }

    fn group_put(
        &mut self,
        role: Role,
        group: usize,
        items: &[(Item, Alloc)],
        auto_assign: bool,
    ) -> Expected {
        let items = &in_body_order(items);
        let g = &self.groups[group];
        let differs = |item: Item, alloc: Alloc| -> bool {
            let stored = g.licenses.get(&item);
            if !alloc.licensed() {
                return stored.is_some();
            }
            let Some(stored) = stored else { return true };
            stored.alloc != alloc
                || (auto_assign && matches!(item, Item::Group(_)) && !stored.assigned)
        };
        let mut unknown = Vec::new();
        let mut conflicts = Vec::new();
        let mut changing = Vec::new();
        for &(item, alloc) in items {
            if !differs(item, alloc) {
                continue;
            }
            changing.push((item, alloc));
            let stored = g.licenses.get(&item).map(|l| l.alloc);
            let in_use = g.in_use(item);
            // The group record: a limited maximum, or unlicensing, below what is in use.
            let below = match alloc {
                Alloc::Limited(m) => stored.is_some() && in_use > m,
                Alloc::Unlimited => false,
            };
            if below {
                conflicts.push(("BELOW_USAGE", Some(item.name())));
            }
            // The tenant's pool.
            let (old, new) = (share(stored), share(Some(alloc)));
            // A tenant admin gives a group more only of what the operator pooled; lowering or
            // removing is theirs to do.
            let gives_more = !old.unlimited && (new.unlimited || new.limited > old.limited);
            let covered = role == Role::TenantAdmin && !matches!(item, Item::Pack(_)) && gives_more;
            let pool = self.pool.get(&item).copied();
            let pack_undefined = matches!(item, Item::Pack(p) if !self.packs.contains_key(&p));
            let (held_limited, _) = self.held(item);
            let refused = if old == new {
                false
            } else {
                let delta = new.limited as i64 - old.limited as i64;
                let rule = if new.unlimited && !old.unlimited {
                    matches!(pool, None | Some(Alloc::Unlimited))
                } else if delta > 0 {
                    match pool {
                        None | Some(Alloc::Unlimited) => true,
                        Some(Alloc::Limited(m)) => i64::from(m) - held_limited as i64 >= delta,
                    }
                } else {
                    true
                };
                let defined = !(matches!(item, Item::Pack(_))
                    && (new.unlimited || new.limited > 0)
                    && pack_undefined);
                !rule || !defined || (covered && pool.is_none())
            };
            if refused {
                if pack_undefined {
                    unknown.push(("UNKNOWN_PACK", Some(item.name())));
                } else if role == Role::TenantAdmin
                    && pool.is_none()
                    && !matches!(item, Item::Pack(_))
                {
                    conflicts.push(("NOT_LICENSED_TO_TENANT", Some(item.name())));
                } else if alloc == Alloc::Unlimited {
                    conflicts.push(("POOL_NOT_UNLIMITED", Some(item.name())));
                } else {
                    conflicts.push(("POOL_EXHAUSTED", Some(item.name())));
                }
            }
        }
        if !unknown.is_empty() {
            return Expected::refused(400, unknown);
        }
        if !conflicts.is_empty() {
            return Expected::refused(409, conflicts);
        }
        let g = &mut self.groups[group];
        for &(item, alloc) in &changing {
            if !alloc.licensed() {
                g.licenses.remove(&item);
                continue;
            }
            let assign = auto_assign && matches!(item, Item::Group(_));
            let lic = g.licenses.entry(item).or_insert(Lic {
                alloc,
                assigned: false,
            });
            lic.alloc = alloc;
            lic.assigned |= assign;
        }
        if !changing.is_empty() {
            g.version += 1;
        }
        Expected::ok(200, receipt(items.iter().map(|(i, _)| *i)))
    }

    /// Assigns each user its services and packs, all or none: what changed per user and item,
    /// or the refusal naming every failing item (request order; at one item a pack before the
    /// services it brings). A license without room for all the request's new holders refuses
    /// the holders past its room.
    fn assign(
        &mut self,
        group: usize,
        users: &[(usize, Vec<usize>, Vec<usize>)],
    ) -> Result<Vec<Vec<bool>>, Expected> {
        let g = &self.groups[group];
        let empty = User::default();
        let catalog = |s: usize| UserService::parse(USER_SERVICES[s]).expect("a catalog service");
        let through = |p: Option<usize>| p.map(|p| PACKS[p]);
        let mut blocked: Vec<(usize, &str, Option<&str>)> = Vec::new();
        // New holders per license, in request order: (index, service, pack it came through).
        let mut pack_holders: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        let mut service_holders: BTreeMap<UserService, Vec<(usize, usize, Option<usize>)>> =
            BTreeMap::new();
        let mut changed = Vec::new();
        let mut base = 0;
        for (user, services, packs) in users {
            let u = g.users.get(user).unwrap_or(&empty);
            // New routes per service, with the first request item that brings each: services
            // come first in a request, then packs.
            let mut routes: BTreeMap<UserService, (usize, usize, Option<usize>)> = BTreeMap::new();
            let mut done = Vec::new();
            for (i, &s) in services.iter().enumerate() {
                let new = !u.direct.contains(&s);
                done.push(new);
                if new {
                    routes.entry(catalog(s)).or_insert((base + i, s, None));
                }
            }
            let mut new_packs = Vec::new();
            for (j, &p) in packs.iter().enumerate() {
                let index = base + services.len() + j;
                let new = !u.packs.contains_key(&p) && !new_packs.contains(&p);
                done.push(new);
                if !new {
                    continue;
                }
                new_packs.push(p);
                pack_holders.entry(p).or_default().push(index);
                for &s in self.packs.get(&p).map(Vec::as_slice).unwrap_or_default() {
                    routes.entry(catalog(s)).or_insert((index, s, Some(p)));
                }
            }
            for (service, (index, s, p)) in routes {
                if u.holds(s) {
                    continue;
                }
                if self.blocked(s) {
                    blocked.push((index, USER_SERVICES[s], through(p)));
                } else {
                    service_holders
                        .entry(service)
                        .or_default()
                        .push((index, s, p));
                }
            }
            changed.push(done);
            base += services.len() + packs.len();
        }
        if !blocked.is_empty() {
            blocked.sort_by_key(|b| b.0);
            return Err(refused_items(
                blocked
                    .into_iter()
                    .map(|(i, n, p)| (i, "NO_MORE_ASSIGNABLE", n, p)),
            ));
        }
        let mut failures: Vec<(usize, &str, &str, Option<&str>)> = Vec::new();
        for (p, holders) in &pack_holders {
            if let Some((code, room)) = g.refusal(Item::Pack(*p), holders.len()) {
                for index in holders.iter().skip(room) {
                    failures.push((*index, code, PACKS[*p], None));
                }
            }
        }
        for holders in service_holders.values() {
            let s = holders[0].1;
            if let Some((code, room)) = g.refusal(Item::User(s), holders.len()) {
                for (index, _, p) in holders.iter().skip(room) {
                    failures.push((*index, code, USER_SERVICES[s], through(*p)));
                }
            }
        }
        failures.sort_by_key(|f| f.0);
        if !failures.is_empty() {
            return Err(refused_items(failures.into_iter()));
        }
        for ((user, services, packs), done) in users.iter().zip(&changed) {
            let given: Vec<(usize, Vec<usize>)> = packs
                .iter()
                .zip(&done[services.len()..])
                .filter(|(_, new)| **new)
                .map(|(p, _)| (*p, self.packs.get(p).cloned().unwrap_or_default()))
                .collect();
            let u = self.groups[group].users.entry(*user).or_default();
            u.direct.extend(services.iter().copied());
            u.packs.extend(given);
        }
        Ok(changed)
    }

    /// Takes from each user its services and packs: what changed per user and item.
    fn unassign(
        &mut self,
        group: usize,
        users: &[(usize, Vec<usize>, Vec<usize>)],
    ) -> Vec<Vec<bool>> {
        let mut changed = Vec::new();
        for (user, services, packs) in users {
            let u = self.groups[group].users.entry(*user).or_default();
            let mut done: Vec<bool> = services.iter().map(|s| u.direct.remove(s)).collect();
            done.extend(packs.iter().map(|p| u.packs.remove(p).is_some()));
            if u.is_empty() {
                self.groups[group].users.remove(user);
            }
            changed.push(done);
        }
        changed
    }

    fn group_services(&mut self, group: usize, services: &[usize], assign: bool) -> Expected {
        let g = &mut self.groups[group];
        let mut refused = Vec::new();
        for &s in services {
            let item = Item::Group(s);
            if assign {
                if !g.licenses.contains_key(&item) {
                    refused.push(("NOT_LICENSED", Some(GROUP_SERVICES[s])));
                }
            } else if g.licenses.get(&item).is_some_and(|l| l.assigned)
                && s == 0
                && !g.instances.is_empty()
            {
                refused.push(("HAS_INSTANCES", Some(GROUP_SERVICES[s])));
            }
        }
        if !refused.is_empty() {
            return Expected::refused(409, refused);
        }
        for &s in services {
            if let Some(l) = g.licenses.get_mut(&Item::Group(s)) {
                l.assigned = assign;
            }
        }
        let body = json!({"services": services.iter().map(|s| json!({"name": GROUP_SERVICES[*s], "assigned": assign})).collect::<Vec<_>>()});
        Expected::ok(if assign { 201 } else { 200 }, body)
    }

    /// `GET .../groups/{g}/licenses/?licensed=true` and its weak tag.
    pub fn group_view(&self, group: usize) -> (Value, String) {
        let g = &self.groups[group];
        let entry = |item: Item, no_instance: Option<bool>| {
            g.licenses.get(&item).map(|l| {
                json!({"name": item.name(), "allocated": l.alloc.json(no_instance),
                       "inUse": g.in_use(item)})
            })
        };
        let group_services: Vec<Value> = [
            entry(Item::Group(0), Some(false)),
            entry(Item::Group(1), Some(true)),
        ]
        .into_iter()
        .flatten()
        .collect();
        let view = json!({
            "userServices": in_catalog_order().filter_map(|s| entry(Item::User(s), None)).collect::<Vec<_>>(),
            "groupServices": group_services,
            "servicePacks": (0..PACKS.len()).filter_map(|p| entry(Item::Pack(p), None)).collect::<Vec<_>>(),
        });
        (view, format!("W/\"{}\"", g.version))
    }

    /// `GET /api/v1/tenants/{t}/licenses/?licensed=true` and its weak tag.
    pub fn tenant_view(&self) -> (Value, String) {
        let entry = |item: Item, description: bool| {
            let pooled = self.pool.get(&item).copied();
            let (limited, unlimited) = self.held(item);
            if pooled.is_none() && limited == 0 && unlimited == 0 {
                return None;
            }
            let mut e = json!({"name": item.name(), "pooled": pooled.is_some(),
                               "currentlyAllocated": limited, "unlimitedGroups": unlimited});
            if description {
                e["description"] = json!("");
            }
            if let Some(a) = pooled {
                e["allocated"] = a.json(None);
                if let Alloc::Limited(m) = a {
                    e["remaining"] = json!(i64::from(m) - limited as i64);
                }
            }
            Some(e)
        };
        let view = json!({
            "userServices": in_catalog_order().filter_map(|s| entry(Item::User(s), false)).collect::<Vec<_>>(),
            "groupServices": (0..GROUP_SERVICES.len()).filter_map(|s| entry(Item::Group(s), false)).collect::<Vec<_>>(),
            "servicePacks": (0..PACKS.len())
                .filter(|p| self.packs.contains_key(p))
                .filter_map(|p| entry(Item::Pack(p), true)).collect::<Vec<_>>(),
        });
        (view, format!("W/\"{}\"", self.tenant_version))
    }

    /// `GET .../users/{u}/services/`.
    pub fn user_view(&self, group: usize, user: usize) -> Value {
        let empty = User::default();
        let u = self.groups[group].users.get(&user).unwrap_or(&empty);
        let effective: Vec<Value> = in_catalog_order()
            .filter(|s| u.holds(*s))
            .map(|s| {
                let mut via = Vec::new();
                if u.direct.contains(&s) {
                    via.push(json!("direct"));
                }
                for (p, given) in &u.packs {
                    if given.contains(&s) {
                        via.push(json!(PACKS[*p]));
                    }
                }
                json!({"name": USER_SERVICES[s], "via": via})
            })
            .collect();
        json!({
            "services": in_catalog_order().filter(|s| u.direct.contains(s))
                .map(|s| json!({"name": USER_SERVICES[s], "assigned": true})).collect::<Vec<_>>(),
            "servicePacks": u.packs.keys().map(|p| json!({"name": PACKS[*p], "assigned": true})).collect::<Vec<_>>(),
            "effectiveServices": effective,
        })
    }

    /// `GET .../services/hunt-group/instances/`.
    pub fn instances_view(&self, group: usize) -> Value {
        json!({"instances": self.groups[group].instances.iter()
            .map(|i| json!({"name": INSTANCES[*i]})).collect::<Vec<_>>()})
    }

    /// `GET .../groups/{g}/services/`: the licensed group services and whether assigned.
    pub fn group_services_view(&self, group: usize) -> Value {
        let g = &self.groups[group];
        json!({"services": (0..GROUP_SERVICES.len())
            .filter_map(|s| g.licenses.get(&Item::Group(s))
                .map(|l| json!({"name": GROUP_SERVICES[s], "assigned": l.assigned})))
            .collect::<Vec<_>>()})
    }

    /// `GET .../groups/{g}/users/`: every user holding anything, in id order.
    pub fn users_view(&self, group: usize) -> Vec<Value> {
        self.groups[group]
            .users
            .keys()
            .map(|u| {
                let mut entry = self.user_view(group, *u);
                entry["user_id"] = json!(USERS[*u]);
                entry
            })
            .collect()
    }

    /// `GET .../licenses/{kind}/{service}/holders/`: the holders of a user service or pack, in
    /// id order, with their routes.
    pub fn holders_view(&self, group: usize, item: Item) -> Value {
        let holders: Vec<Value> = self.groups[group]
            .users
            .iter()
            .filter_map(|(u, user)| {
                let via: Vec<&str> = match item {
                    Item::User(s) => user
                        .direct
                        .contains(&s)
                        .then_some("direct")
                        .into_iter()
                        .chain(
                            user.packs
                                .iter()
                                .filter(|(_, given)| given.contains(&s))
                                .map(|(p, _)| PACKS[*p]),
                        )
                        .collect(),
                    Item::Pack(p) => {
                        if user.packs.contains_key(&p) {
                            vec!["direct"]
                        } else {
                            vec![]
                        }
                    }
                    Item::Group(_) => vec![],
                };
                (!via.is_empty()).then(|| json!({"user_id": USERS[*u], "via": via}))
            })
            .collect();
        json!({"name": item.name(), "holders": holders})
    }

    /// Whether the group holds a license of `item` (for generators that aim at the rules).
    pub fn licensed(&self, group: usize, item: Item) -> bool {
        self.groups[group].licenses.contains_key(&item)
    }

    /// Whether the tenant defines the pack.
    pub fn defined(&self, pack: usize) -> bool {
        self.packs.contains_key(&pack)
    }

    /// The configuration objects this run created (to delete afterwards).
    pub fn configs(&self) -> impl Iterator<Item = usize> + '_ {
        self.configs.keys().copied()
    }
}

/// Entries as the API reads a licenses body: `userServices`, then `groupServices`, then
/// `servicePacks`, each list in its own order.
fn in_body_order<T: Clone>(items: &[(Item, T)]) -> Vec<(Item, T)> {
    let mut items = items.to_vec();
    items.sort_by_key(|(item, _)| match item {
        Item::User(_) => 0,
        Item::Group(_) => 1,
        Item::Pack(_) => 2,
    });
    items
}

/// The model's user services in catalog order (the API's order of services).
fn in_catalog_order() -> impl Iterator<Item = usize> {
    let mut order: Vec<usize> = (0..USER_SERVICES.len()).collect();
    order.sort_by_key(|s| UserService::parse(USER_SERVICES[*s]).expect("a catalog service"));
    order.into_iter()
}

fn pack_view(pack: usize, services: &[usize]) -> Value {
    json!({"name": PACKS[pack], "description": "",
           "services": services.iter().map(|s| USER_SERVICES[*s]).collect::<Vec<_>>()})
}

fn receipt(items: impl Iterator<Item = Item>) -> Value {
    let mut body = Map::new();
    for item in items {
        push(
            &mut body,
            item.list(),
            json!({"name": item.name(), "status": "updated"}),
        );
    }
    Value::Object(body)
}

fn user_answer(services: &[usize], packs: &[usize], assigned: bool) -> Value {
    json!({
        "services": services.iter().map(|s| json!({"name": USER_SERVICES[*s], "assigned": assigned})).collect::<Vec<_>>(),
        "servicePacks": packs.iter().map(|p| json!({"name": PACKS[*p], "assigned": assigned})).collect::<Vec<_>>(),
    })
}

/// A bulk answer: every user in request order, each item with what the request did to it.
fn bulk_answer(
    users: &[(usize, Vec<usize>, Vec<usize>)],
    changed: &[Vec<bool>],
    done: &str,
) -> Value {
    let status = |new: bool| if new { done } else { "already" };
    json!({"users": users.iter().zip(changed).map(|((user, services, packs), flags)| json!({
        "user_id": USERS[*user],
        "services": services.iter().zip(flags).map(|(s, new)| json!({"name": USER_SERVICES[*s], "status": status(*new)})).collect::<Vec<_>>(),
        "servicePacks": packs.iter().zip(&flags[services.len()..]).map(|(p, new)| json!({"name": PACKS[*p], "status": status(*new)})).collect::<Vec<_>>(),
    })).collect::<Vec<_>>()})
}

fn refused_items<'a>(
    items: impl Iterator<Item = (usize, &'a str, &'a str, Option<&'a str>)>,
) -> Expected {
    Expected {
        status: 409,
        errors: items
            .map(|(_, code, name, _)| (code.to_owned(), Some(name.to_owned())))
            .collect(),
        body: None,
        replayed: false,
    }
}
