//! A tenant's pool of licenses, and the service packs it defines.
//!
//! The pool rule: a service with a tenant allocation is pooled. Its groups may hold limited
//! maximums only while their sum stays within the tenant maximum, and `unlimited` only while the
//! tenant's allocation is unlimited. A service without a tenant allocation record is not pooled.

use super::{Allocation, Licensable, PackName, UserService};

/// A tenant's view of one service or pack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TenantLicense {
    /// The tenant's allocation; `None` when the operator set none (not pooled).
    pub allocation: Option<Allocation>,
    /// Sum of the limited maximums the tenant's groups hold (many groups of up to
    /// [`Allocation::MAX_LIMIT`] each: a 64-bit count).
    pub currently_allocated: u64,
    /// How many of the tenant's groups hold it unlimited.
    pub unlimited_groups: u32,
}

impl TenantLicense {
    /// Pooled: the operator set a tenant allocation (a maximum of 0 included), which bounds
    /// what the tenant's groups may be given.
    pub fn pooled(&self) -> bool {
        self.allocation.is_some()
    }

    /// Some group of the tenant holds it (a limited maximum above 0, or unlimited).
    pub fn held_by_groups(&self) -> bool {
        self.currently_allocated > 0 || self.unlimited_groups > 0
    }

    /// What the pool has left for its groups: only when pooled and limited.
    pub fn remaining(&self) -> Option<i64> {
        match self.allocation {
            Some(Allocation::Limited(m)) => Some(i64::from(m) - self.currently_allocated as i64),
            _ => None,
        }
    }
}

/// One item of a tenant licenses PUT: set the tenant's allocation, or (`None`) remove it, so the
/// service is no longer pooled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolChange {
    pub item: Licensable,
    pub allocation: Option<Allocation>,
}

/// What one group license takes from its tenant's pool: a limited amount, or unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PoolShare {
    pub limited: u32,
    pub unlimited: bool,
}

impl PoolShare {
    /// Whether this share gives more than `other`: unlimited where it was not, or a larger
    /// limited maximum.
    pub fn exceeds(self, other: PoolShare) -> bool {
        !other.unlimited && (self.unlimited || self.limited > other.limited)
    }

    /// The share of a group allocation (`None`: no record, nothing taken).
    pub fn of(allocation: Option<Allocation>) -> Self {
        match allocation {
            None | Some(Allocation::Limited(0)) => PoolShare::default(),
            Some(Allocation::Limited(m)) => PoolShare {
                limited: m,
                unlimited: false,
            },
            Some(Allocation::Unlimited) => PoolShare {
                limited: 0,
                unlimited: true,
            },
        }
    }
}

/// A tenant-defined bundle of user services.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackDefinition {
    pub name: PackName,
    pub description: String,
    /// Distinct catalog user services, in request order; 1 to [`Self::MAX_SERVICES`].
    pub services: Vec<UserService>,
}

impl PackDefinition {
    /// The most services a pack holds, so that assigning one pack (2 writes, and 2 per
    /// service) stays well inside one DynamoDB transaction of 100 writes.
    pub const MAX_SERVICES: usize = 25;
}

impl PackDefinition {
    pub const MAX_DESCRIPTION_CHARS: usize = 2_000;
}

/// Why stored state refuses a change of a tenant's pool or packs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PoolRejection {
    /// A group's limited maximum would take more than the tenant has left.
    Exhausted { tenant_maximum: u32, available: u64 },
    /// A group may hold `unlimited` only while the tenant's allocation is unlimited.
    NotUnlimited { tenant_maximum: u32 },
    /// The tenant maximum would fall below what its groups hold.
    BelowAllocated { currently_allocated: u64 },
    /// The tenant allocation cannot become limited while a group holds it unlimited.
    GroupHoldsUnlimited { groups: u32 },
    /// The tenant has not defined this pack.
    PackNotDefined,
    /// The pack is held: licensed to groups (limited maximums summing to
    /// `currently_allocated`, `unlimited_groups` unlimited) or, for a delete, allocated to the
    /// tenant by the operator (`tenant`).
    PackInUse {
        currently_allocated: u64,
        unlimited_groups: u32,
        tenant: Option<Allocation>,
    },
    /// A tenant admin licensed a group a service the tenant holds no allocation of.
    NotLicensedToTenant,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_share_exceeds_another_when_it_gives_more() {
        let limited = |m| PoolShare::of(Some(Allocation::Limited(m)));
        let unlimited = PoolShare::of(Some(Allocation::Unlimited));
        assert!(limited(3).exceeds(limited(2)));
        assert!(limited(1).exceeds(PoolShare::of(None)));
        assert!(unlimited.exceeds(limited(9)));
        assert!(!limited(9).exceeds(unlimited));
        assert!(!limited(2).exceeds(limited(2)));
        assert!(!PoolShare::of(None).exceeds(limited(2)));
        assert!(!unlimited.exceeds(unlimited));
    }

    #[test]
    fn shares_count_limited_maximums_and_unlimited_separately() {
        assert_eq!(PoolShare::of(None), PoolShare::default());
        assert_eq!(
            PoolShare::of(Some(Allocation::Limited(0))),
            PoolShare::default()
        );
        assert_eq!(
            PoolShare::of(Some(Allocation::Limited(7))),
            PoolShare {
                limited: 7,
                unlimited: false
            }
        );
        assert_eq!(
            PoolShare::of(Some(Allocation::Unlimited)),
            PoolShare {
                limited: 0,
                unlimited: true
            }
        );
    }
}
