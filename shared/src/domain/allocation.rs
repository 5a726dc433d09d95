//! How much of a service a group may use.

use std::fmt;

/// `{"unlimited": true}` or `{"unlimited": false, "maximum": N}`. `Limited(0)` means not licensed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Allocation {
    Unlimited,
    Limited(u32),
}

/// A maximum outside `0..=Allocation::MAX_LIMIT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllocationError;

impl fmt::Display for AllocationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "must be an integer from 0 to {}", Allocation::MAX_LIMIT)
    }
}

impl Allocation {
    /// The largest limited maximum a license may carry.
    pub const MAX_LIMIT: u32 = 1_000_000;

    pub const NOT_LICENSED: Allocation = Allocation::Limited(0);

    pub fn limited(maximum: u64) -> Result<Self, AllocationError> {
        match u32::try_from(maximum) {
            Ok(m) if m <= Self::MAX_LIMIT => Ok(Allocation::Limited(m)),
            _ => Err(AllocationError),
        }
    }

    /// Licensed means unlimited or a maximum above zero.
    pub fn is_licensed(self) -> bool {
        !matches!(self, Allocation::Limited(0))
    }

    /// The limit, or `None` when unlimited.
    pub fn maximum(self) -> Option<u32> {
        match self {
            Allocation::Unlimited => None,
            Allocation::Limited(m) => Some(m),
        }
    }

    /// Whether `in_use` units fit in this allocation.
    pub fn admits(self, in_use: u32) -> bool {
        match self {
            Allocation::Unlimited => true,
            Allocation::Limited(m) => in_use <= m,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limited_accepts_the_documented_range_only() {
        assert_eq!(Allocation::limited(0), Ok(Allocation::Limited(0)));
        assert_eq!(
            Allocation::limited(1_000_000),
            Ok(Allocation::Limited(1_000_000))
        );
        assert_eq!(Allocation::limited(1_000_001), Err(AllocationError));
        assert_eq!(Allocation::limited(u64::MAX), Err(AllocationError));
    }

    #[test]
    fn zero_means_not_licensed() {
        assert!(!Allocation::NOT_LICENSED.is_licensed());
        assert!(Allocation::Limited(1).is_licensed());
        assert!(Allocation::Unlimited.is_licensed());
    }

    #[test]
    fn admits_compares_against_the_maximum() {
        assert!(Allocation::Limited(5).admits(5));
        assert!(!Allocation::Limited(5).admits(6));
        assert!(Allocation::Unlimited.admits(u32::MAX));
    }
}
