//! Usage: what consumes licenses (user assignments of services and packs, group-service
//! assignments, group-service instances) and why a change of usage may be refused.

use super::{PackName, UserId, UserService};
use std::collections::BTreeSet;

/// What can be assigned to a user; each assignment counts one unit of the group's license for it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Assignable {
    Service(UserService),
    Pack(PackName),
}

impl Assignable {
    pub fn name(&self) -> &str {
        match self {
            Assignable::Service(s) => s.name(),
            Assignable::Pack(p) => p.as_str(),
        }
    }
}

/// Why stored state refuses a change of usage. Storage enforces each of these with a condition on
/// the write itself, so no race can slip past them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UsageRejection {
    /// The group holds no license for it (or `maximum: 0`).
    NotLicensed,
    /// Every licensed unit is in use.
    OverLimit { maximum: u32, in_use: u32 },
    /// A group service cannot be unassigned while it has instances.
    HasInstances { in_use: u32 },
    /// The instance name is taken.
    InstanceExists,
    /// The operator's configuration marks the service `no_more_assignable`.
    NoMoreAssignable,
}

/// The most services and packs one assignment request may name: each takes two writes of one
/// DynamoDB transaction (the assignment and the counter), beside the check of the blocked
/// services, an `Idempotency-Key`'s record and the audit record, and a transaction holds at
/// most 100.
pub const MAX_ASSIGNMENTS_PER_REQUEST: usize = 48;

/// The most writes one request may make: DynamoDB's limit of actions in one transaction, and a
/// request is one transaction.
pub const MAX_WRITES_PER_REQUEST: usize = 100;

/// What one user of a bulk request is given or has taken away: the request's items for that
/// user (services first, then packs, as a single-user request lists them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserItems {
    pub user: UserId,
    pub items: Vec<Assignable>,
}

/// The actions a change of `users`' assignments may need at most, and how many of its first
/// users fit in one transaction with `fixed` more actions (the blocked-services check, an
/// `Idempotency-Key`'s record, the audit record). Per user: one holding per service named, and
/// per pack its assignment plus one holding per service of the pack (`services_of(user, pack)`);
/// once per request: one counter per service or pack any user's change moves (a counter moves
/// once, by the request's whole delta) and one check of each pack's definition (`checks`:
/// assignments check the definitions they used, unassignments do not).
pub fn actions_needed<'s>(
    users: &[UserItems],
    services_of: impl Fn(usize, &PackName) -> &'s [UserService],
    fixed: usize,
    checks: bool,
) -> Needed {
    let mut counters: BTreeSet<Assignable> = BTreeSet::new();
    let mut records = 0;
    let mut fit = 0;
    // Records, counters, the packs' definition checks and the fixed actions.
    let total = |records: usize, counters: &BTreeSet<Assignable>| {
        let checked = if checks {
            counters
                .iter()
                .filter(|c| matches!(c, Assignable::Pack(_)))
                .count()
        } else {
            0
        };
        records + counters.len() + checked + fixed
    };
    for (u, user) in users.iter().enumerate() {
        for item in &user.items {
            records += 1;
            counters.insert(item.clone());
            if let Assignable::Pack(pack) = item {
                for service in services_of(u, pack) {
                    records += 1;
                    counters.insert(Assignable::Service(*service));
                }
            }
        }
        if total(records, &counters) <= MAX_WRITES_PER_REQUEST {
            fit = u + 1;
        }
    }
    Needed {
        actions: total(records, &counters),
        fit,
    }
}

/// What [`actions_needed`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Needed {
    /// The actions of the whole request.
    pub actions: usize,
    /// How many of the request's first users fit in one transaction.
    pub fit: usize,
}

impl Needed {
    pub fn fits(self) -> bool {
        self.actions <= MAX_WRITES_PER_REQUEST
    }
}

/// The action an assignment adds: the check that the services the configuration blocks are
/// still those it read.
pub const BLOCKED_CHECK: usize = 1;

/// One user service a user holds, and by which routes: assigned directly, through packs, or
/// both. The service's license counts the user once, however many routes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holding {
    pub service: UserService,
    pub direct: bool,
    /// The packs the service comes through, in name order.
    pub packs: Vec<PackName>,
}

impl Holding {
    /// The routes that give it, as the API names them: `direct` first, then the packs.
    pub fn via(&self) -> impl Iterator<Item = &str> {
        self.direct
            .then_some("direct")
            .into_iter()
            .chain(self.packs.iter().map(PackName::as_str))
    }
}

/// What a user of a group is assigned and what that gives them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserHoldings {
    /// Packs assigned to the user, in name order.
    pub packs: Vec<PackName>,
    /// Every service the user holds, in name order.
    pub services: Vec<Holding>,
}

impl UserHoldings {
    /// The services assigned directly, in name order.
    pub fn direct(&self) -> impl Iterator<Item = UserService> + '_ {
        self.services.iter().filter(|h| h.direct).map(|h| h.service)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str, items: Vec<Assignable>) -> UserItems {
        UserItems {
            user: UserId::parse(name).unwrap(),
            items,
        }
    }

    fn service(name: &str) -> Assignable {
        Assignable::Service(UserService::parse(name).unwrap())
    }

    #[test]
    fn a_full_pack_and_forty_eight_services_each_fit_one_transaction_with_a_key() {
        // With the blocked check, an Idempotency-Key's record and the audit record; one more
        // service would not fit.
        let services: Vec<Assignable> = UserService::all()
            .take(MAX_ASSIGNMENTS_PER_REQUEST)
            .map(Assignable::Service)
            .collect();
        let most = actions_needed(&[user("a", services)], |_, _| &[], BLOCKED_CHECK + 2, true);
        assert!(most.fits() && most.actions + 2 > 100, "{most:?}");
        let pack = PackName::parse("P").unwrap();
        let of: Vec<UserService> = UserService::all().take(25).collect();
        let one = [user("a", vec![Assignable::Pack(pack.clone())])];
        let needed = actions_needed(&one, |_, _| &of, 0, true);
        assert_eq!(needed.actions, 1 + 25 + 1 + 25 + 1);
    }

    #[test]
    fn counters_move_once_per_request_and_the_fitting_users_are_counted() {
        let two = || vec![service("Call Waiting"), service("Call Forwarding Always")];
        let users: Vec<UserItems> = (0..60).map(|i| user(&format!("u{i}"), two())).collect();
        // 2 holdings per user, 2 counters, 3 fixed: 47 users fit (94 + 2 + 3 = 99).
        let needed = actions_needed(&users, |_, _| &[], 3, true);
        assert_eq!(needed.actions, 120 + 2 + 3);
        assert_eq!(needed.fit, 47);
        assert!(!needed.fits());
        let needed = actions_needed(&users[..47], |_, _| &[], 3, true);
        assert!(needed.fits() && needed.fit == 47);
        // A pack of 3 services per user: its record, 3 holdings; 4 counters and its check.
        let pack = PackName::parse("P").unwrap();
        let of = [
            UserService::parse("Call Waiting").unwrap(),
            UserService::parse("Call Forwarding Always").unwrap(),
            UserService::parse("Anonymous Call Rejection").unwrap(),
        ];
        let packs: Vec<UserItems> = (0..30)
            .map(|i| user(&format!("u{i}"), vec![Assignable::Pack(pack.clone())]))
            .collect();
        let needed = actions_needed(&packs, |_, _| &of, 3, true);
        assert_eq!(needed.actions, 30 * 4 + 4 + 1 + 3);
        assert_eq!(needed.fit, 23); // 92 + 5 + 3 = 100
        // Unassignments check no definition.
        assert_eq!(
            actions_needed(&packs[..1], |_, _| &of, 0, false).actions,
            4 + 4
        );
    }
}
