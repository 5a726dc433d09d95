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
/// DynamoDB transaction (the assignment and the counter), and a transaction holds at most 100.
pub const MAX_ASSIGNMENTS_PER_REQUEST: usize = 50;
