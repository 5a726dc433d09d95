//! Usage: what consumes licenses (user assignments of services and packs, group-service
//! assignments, group-service instances) and why a change of usage may be refused.

use super::{PackName, UserService};

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

/// The writes an assignment change of `services` direct services and of packs with
/// `pack_sizes` services each may need at most: per service its holding and its counter; per
/// pack its assignment, its counter, the check of its definition, and per service of the pack a
/// holding and a counter. (An assignment adds [`BLOCKED_CHECK`].)
pub fn writes_needed(services: usize, pack_sizes: &[usize]) -> usize {
    2 * services + pack_sizes.iter().map(|k| 3 + 2 * k).sum::<usize>()
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

    #[test]
    fn a_full_pack_and_forty_eight_services_each_fit_one_transaction_with_a_key() {
        // With the blocked check, an Idempotency-Key's record and the audit record; one more
        // service would not fit.
        let most = writes_needed(MAX_ASSIGNMENTS_PER_REQUEST, &[]) + BLOCKED_CHECK + 2;
        assert!(most <= 100 && most + 2 > 100);
        assert_eq!(writes_needed(0, &[25]), 53);
        assert_eq!(writes_needed(0, &[25, 25]), 106);
        assert_eq!(writes_needed(1, &[1]), 7);
    }
}
