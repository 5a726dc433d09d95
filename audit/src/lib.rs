//! `licensing-audit`: reads the licensing table (paged, strongly consistent `Scan`, nothing
//! written) and checks every invariant the write paths promise:
//!
//! - each license's `inUse` equals what it counts: a user service's the users holding it, a
//!   pack's the users assigned it, an instance group service's its instances, a `noInstance`
//!   one 1 while assigned (and instances only under an assigned service);
//! - no limited `inUse` above its `maximum`, and nothing in use without a license;
//! - each user's holdings match their assignments and packs: a holding has a route (direct or a
//!   pack), every pack it names is assigned to the user and gives the service, and every service
//!   an assigned pack gave is held through it;
//! - each tenant pool's `currentlyAllocated`, `unlimitedGroups` and `remaining` equal the sums
//!   over its groups' licenses and the tenant allocation;
//! - every pack a group licenses is defined by its tenant, each definition carries its mark on
//!   the pack's pool record (`packDefined`) and each mark its definition, and every user's
//!   assignment of a pack gave the services the definition names;
//! - every license record is readable: a limited one has its `maximum`;
//! - instances exist only under group services that have instances.
//!
//! Run it against a quiet table (or accept that a write landing mid-scan can show as a
//! discrepancy that a second run no longer reports).

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use licensing::domain::{GroupService, Licensable, TenantId, UserService};
use licensing::store::dynamo::keys::{
    GroupKey, PACKDEF_PREFIX, parse_group_sk, parse_partition as partition, parse_pool_sk,
    tenant_pk,
};
use std::collections::{BTreeMap, BTreeSet, HashMap};

type Item = HashMap<String, AttributeValue>;

/// What an audit found.
#[derive(Debug, Default)]
pub struct Report {
    pub tenants: usize,
    pub groups: usize,
    pub items: usize,
    pub discrepancies: Vec<String>,
}

impl Report {
    /// What `licensing-audit` prints: each discrepancy on its line, then the totals.
    pub fn text(&self, table: &str) -> String {
        let mut text = String::new();
        for line in &self.discrepancies {
            text.push_str(line);
            text.push('\n');
        }
        text.push_str(&format!(
            "{table}: {} tenants, {} groups, {} items checked; {} discrepancies\n",
            self.tenants,
            self.groups,
            self.items,
            self.discrepancies.len()
        ));
        text
    }
}

/// One license record as stored.
#[derive(Debug, Default, Clone, Copy)]
struct Lic {
    unlimited: bool,
    /// `unlimited` is stored at all (a record without it is unreadable).
    has_unlimited: bool,
    maximum: Option<u64>,
    in_use: u64,
    assigned: bool,
}

impl Lic {
    fn licensed(&self) -> bool {
        self.unlimited || self.maximum.is_some_and(|m| m > 0)
    }
}

/// What one group partition holds.
#[derive(Debug, Default)]
struct Group {
    licenses: BTreeMap<Licensable, Lic>,
    /// Instances per group service.
    instances: BTreeMap<String, u64>,
    /// Holdings: (user, service) → (direct, packs).
    holdings: BTreeMap<(String, String), (bool, BTreeSet<String>)>,
    /// Pack assignments: (user, pack) → services given.
    packs: BTreeMap<(String, String), Vec<String>>,
}

/// What one tenant partition holds.
#[derive(Debug, Default)]
struct Tenant {
    pool: BTreeMap<Licensable, Item>,
    /// Pack definitions: name → services.
    defined: BTreeMap<String, Vec<String>>,
    groups: BTreeMap<String, Group>,
}

fn number(item: &Item, name: &str) -> Option<i64> {
    match item.get(name) {
        Some(AttributeValue::N(n)) => n.parse().ok(),
        _ => None,
    }
}

fn flag(item: &Item, name: &str) -> bool {
    matches!(item.get(name), Some(AttributeValue::Bool(true)))
}

fn text<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    match item.get(name) {
        Some(AttributeValue::S(s)) => Some(s),
        _ => None,
    }
}

fn lic(item: &Item) -> Lic {
    Lic {
        unlimited: flag(item, "unlimited"),
        has_unlimited: matches!(item.get("unlimited"), Some(AttributeValue::Bool(_))),
        maximum: number(item, "maximum").map(|m| m.max(0) as u64),
        in_use: number(item, "inUse").unwrap_or(0).max(0) as u64,
        assigned: flag(item, "assigned"),
    }
}

fn name(l: &Licensable) -> String {
    match l {
        Licensable::User(s) => format!("user service {:?}", s.name()),
        Licensable::Group(s) => format!("group service {:?}", s.name()),
        Licensable::Pack(p) => format!("service pack {:?}", p.as_str()),
    }
}

/// The `services` list of a pack definition or assignment.
fn services(item: &Item) -> Vec<String> {
    match item.get("services") {
        Some(AttributeValue::L(list)) => list
            .iter()
            .filter_map(|v| match v {
                AttributeValue::S(s) => Some(s.clone()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

fn add_group_item(group: &mut Group, sk: &str, item: &Item) {
    match parse_group_sk(sk) {
        Some(GroupKey::License(licensable)) => {
            group.licenses.insert(licensable, lic(item));
        }
        Some(GroupKey::Instance { service, .. }) => {
            *group.instances.entry(service.to_owned()).or_default() += 1;
        }
        Some(GroupKey::Holding { user, service }) => {
            let packs = match item.get("packs") {
                Some(AttributeValue::Ss(p)) => p.iter().cloned().collect(),
                _ => BTreeSet::new(),
            };
            group.holdings.insert(
                (user.to_owned(), service.to_owned()),
                (flag(item, "direct"), packs),
            );
        }
        Some(GroupKey::PackAssignment { user, pack }) => {
            group
                .packs
                .insert((user.to_owned(), pack.to_owned()), services(item));
        }
        None => {}
    }
}

/// Reads the table (only `tenant`'s partitions if given) and checks it.
pub async fn audit(client: &Client, table: &str, tenant: Option<&str>) -> Result<Report, String> {
    let mut tenants: BTreeMap<String, Tenant> = BTreeMap::new();
    let mut report = Report::default();
    let filter = match tenant {
        Some(t) => Some(tenant_pk(
            &TenantId::parse(t).map_err(|e| format!("tenant {t:?}: {e}"))?,
        )),
        None => None,
    };
    let mut start = None;
    loop {
        let mut scan = client
            .scan()
            .table_name(table)
            .consistent_read(true)
            .set_exclusive_start_key(start.take());
        if let Some(pk) = &filter {
            scan = scan
                .filter_expression("PK = :t OR begins_with(PK, :g)")
                .expression_attribute_values(":t", AttributeValue::S(pk.clone()))
                .expression_attribute_values(":g", AttributeValue::S(format!("{pk}#GROUP#")));
        }
        let page = scan
            .send()
            .await
            .map_err(|e| aws_sdk_dynamodb::error::DisplayErrorContext(e).to_string())?;
        for item in page.items() {
            let (Some(pk), Some(sk)) = (text(item, "PK"), text(item, "SK")) else {
                continue;
            };
            let Some((t, g)) = partition(pk) else {
                continue; // META#layout, IDEM#...: not licensing state
            };
            report.items += 1;
            let entry = tenants.entry(t.to_owned()).or_default();
            match g {
                Some(g) => add_group_item(entry.groups.entry(g.to_owned()).or_default(), sk, item),
                None => {
                    if let Some(pack) = sk.strip_prefix(PACKDEF_PREFIX) {
                        entry.defined.insert(pack.to_owned(), services(item));
                    } else if let Some(licensable) = parse_pool_sk(sk) {
                        entry.pool.insert(licensable, item.clone());
                    }
                }
            }
        }
        match page.last_evaluated_key {
            Some(key) if !key.is_empty() => start = Some(key),
            _ => break,
        }
    }
    report.tenants = tenants.len();
    for (t, tenant) in &tenants {
        report.groups += tenant.groups.len();
        check_tenant(t, tenant, &mut report.discrepancies);
    }
    Ok(report)
}

fn check_tenant(t: &str, tenant: &Tenant, out: &mut Vec<String>) {
    // Each definition marks its pack's pool record, and each mark has its definition.
    for pack in tenant.defined.keys() {
        let marked = licensing::domain::PackName::parse(pack.as_str())
            .ok()
            .and_then(|p| tenant.pool.get(&Licensable::Pack(p)))
            .is_some_and(|record| flag(record, "packDefined"));
        if !marked {
            out.push(format!(
                "tenant {t:?} defines service pack {pack:?} but its pool record is not marked packDefined"
            ));
        }
    }
    for (l, record) in &tenant.pool {
        if let Licensable::Pack(p) = l
            && flag(record, "packDefined")
            && !tenant.defined.contains_key(p.as_str())
        {
            out.push(format!(
                "tenant {t:?} pool of {} is marked packDefined but the pack has no definition",
                name(l)
            ));
        }
    }
    // Sums over the groups, per licensable: (sum of limited maximums, unlimited groups).
    let mut sums: BTreeMap<&Licensable, (u64, u64)> = BTreeMap::new();
    for (g, group) in &tenant.groups {
        let at = format!("tenant {t:?} group {g:?}");
        check_group(&at, group, out);
        // A pack assigned to a user gave the services of the definition: a licensed pack's
        // definition cannot change, so the two agree.
        for ((user, pack), given) in &group.packs {
            if let Some(defined) = tenant.defined.get(pack) {
                let given: BTreeSet<&String> = given.iter().collect();
                let defined: BTreeSet<&String> = defined.iter().collect();
                if given != defined {
                    out.push(format!(
                        "{at}: user {user:?} holds pack {pack:?} with services {given:?}, but its definition names {defined:?}"
                    ));
                }
            }
        }
        for (l, license) in &group.licenses {
            let sum = sums.entry(l).or_default();
            if license.unlimited {
                sum.1 += 1;
            } else {
                sum.0 += license.maximum.unwrap_or(0);
            }
            if let Licensable::Pack(p) = l
                && license.licensed()
                && !tenant.defined.contains_key(p.as_str())
            {
                out.push(format!(
                    "{at}: licenses {} which the tenant does not define",
                    name(l)
                ));
            }
        }
    }
    let keys: BTreeSet<&Licensable> = sums.keys().copied().chain(tenant.pool.keys()).collect();
    for l in keys {
        let (allocated, unlimited) = sums.get(l).copied().unwrap_or_default();
        let record = tenant.pool.get(l);
        let stored = |field: &str| record.and_then(|r| number(r, field)).unwrap_or(0);
        let at = format!("tenant {t:?} pool of {}", name(l));
        if stored("currentlyAllocated") != allocated as i64 {
            out.push(format!(
                "{at}: currentlyAllocated is {} but its groups hold {allocated}",
                stored("currentlyAllocated")
            ));
        }
        if stored("unlimitedGroups") != unlimited as i64 {
            out.push(format!(
                "{at}: unlimitedGroups is {} but {unlimited} groups hold it unlimited",
                stored("unlimitedGroups")
            ));
        }
        let Some(record) = record else { continue };
        // Under a limited tenant allocation (an unlimited one has no `remaining` to check).
        if let Some(AttributeValue::Bool(false)) = record.get("unlimited") {
            let maximum = number(record, "maximum").unwrap_or(0);
            if stored("remaining") != maximum - allocated as i64 {
                out.push(format!(
                    "{at}: remaining is {} but the tenant maximum {maximum} less {allocated} allocated is {}",
                    stored("remaining"),
                    maximum - allocated as i64
                ));
            }
            if allocated as i64 > maximum {
                out.push(format!(
                    "{at}: groups hold {allocated}, beyond the tenant's allocation of maximum {maximum}"
                ));
            }
            if unlimited > 0 {
                out.push(format!(
                    "{at}: {unlimited} groups hold unlimited under a limited tenant allocation"
                ));
            }
        }
    }
}

fn check_group(at: &str, group: &Group, out: &mut Vec<String>) {
    // Holders per user service, assignments per pack.
    let mut holders: BTreeMap<&str, u64> = BTreeMap::new();
    for ((user, service), (direct, packs)) in &group.holdings {
        *holders.entry(service).or_default() += 1;
        if !direct && packs.is_empty() {
            out.push(format!(
                "{at}: user {user:?} holds {service:?} by no route (neither direct nor a pack)"
            ));
        }
        for pack in packs {
            match group.packs.get(&(user.clone(), pack.clone())) {
                Some(services) if services.iter().any(|s| s == service) => {}
                Some(_) => out.push(format!(
                    "{at}: user {user:?} holds {service:?} through pack {pack:?}, which does not give it"
                )),
                None => out.push(format!(
                    "{at}: user {user:?} holds {service:?} through pack {pack:?}, which the user is not assigned"
                )),
            }
        }
    }
    let mut assigned: BTreeMap<&str, u64> = BTreeMap::new();
    for ((user, pack), services) in &group.packs {
        *assigned.entry(pack).or_default() += 1;
        for service in services {
            let through = group
                .holdings
                .get(&(user.clone(), service.clone()))
                .is_some_and(|(_, packs)| packs.contains(pack));
            if !through {
                out.push(format!(
                    "{at}: user {user:?} is assigned pack {pack:?} but does not hold its {service:?} through it"
                ));
            }
        }
    }

    // Instances only under group services that have instances.
    for service in group.instances.keys() {
        if GroupService::parse(service).is_ok_and(|s| s.no_instance()) {
            out.push(format!(
                "{at}: group service {service:?} has instances, but it is assigned to the group as a whole"
            ));
        }
    }

    // Every counter equals what it counts; every count has a license.
    let mut counted: BTreeSet<Licensable> = BTreeSet::new();
    for (l, license) in &group.licenses {
        counted.insert(l.clone());
        if !license.has_unlimited || (!license.unlimited && license.maximum.is_none()) {
            out.push(format!(
                "{at}: {} has no readable allocation (unlimited {}, maximum {:?}); the API reads it as not licensed",
                name(l),
                if license.has_unlimited { license.unlimited.to_string() } else { "missing".into() },
                license.maximum
            ));
        }
        let (what, actual) = match l {
            Licensable::User(s) => ("holders", holders.get(s.name()).copied().unwrap_or(0)),
            Licensable::Pack(p) => (
                "users assigned",
                assigned.get(p.as_str()).copied().unwrap_or(0),
            ),
            Licensable::Group(s) if s.no_instance() => ("assignment", u64::from(license.assigned)),
            Licensable::Group(s) => (
                "instances",
                group.instances.get(s.name()).copied().unwrap_or(0),
            ),
        };
        if license.in_use != actual {
            out.push(format!(
                "{at}: {} has inUse {} but {actual} {what}",
                name(l),
                license.in_use
            ));
        }
        if !license.unlimited
            && let Some(max) = license.maximum
            && license.in_use > max
        {
            out.push(format!(
                "{at}: {} has inUse {} above its maximum {max}",
                name(l),
                license.in_use
            ));
        }
        if let Licensable::Group(s) = l
            && !s.no_instance()
            && actual > 0
            && !license.assigned
        {
            out.push(format!(
                "{at}: {} has instances but is not assigned",
                name(l)
            ));
        }
    }
    let unlicensed = holders
        .keys()
        .filter_map(|s| UserService::parse(s).ok().map(Licensable::User))
        .chain(assigned.keys().filter_map(|p| {
            licensing::domain::PackName::parse(*p)
                .ok()
                .map(Licensable::Pack)
        }))
        .chain(
            group
                .instances
                .keys()
                .filter_map(|s| GroupService::parse(s).ok().map(Licensable::Group)),
        );
    for l in unlicensed {
        if !counted.contains(&l) {
            out.push(format!(
                "{at}: {} is in use without a license record",
                name(&l)
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_split_at_the_escaped_separator() {
        assert_eq!(partition("TENANT#a"), Some(("a", None)));
        assert_eq!(
            partition("TENANT#a%23b#GROUP#g"),
            Some(("a%23b", Some("g")))
        );
        assert_eq!(partition("META#layout"), None);
    }

    #[test]
    fn a_counter_off_by_one_and_a_routeless_holding_are_reported() {
        let mut group = Group::default();
        group.licenses.insert(
            Licensable::User(UserService::parse("Call Waiting").unwrap()),
            Lic {
                unlimited: false,
                has_unlimited: true,
                maximum: Some(1),
                in_use: 2,
                assigned: false,
            },
        );
        group.holdings.insert(
            ("u1".into(), "Call Waiting".into()),
            (false, BTreeSet::new()),
        );
        let mut out = Vec::new();
        check_group("g", &group, &mut out);
        assert_eq!(out.len(), 3, "{out:#?}");
    }
}
