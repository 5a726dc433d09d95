//! Domain types and rules. Nothing here performs I/O.

pub mod access;
pub mod allocation;
pub mod catalog;
pub mod ids;
pub mod licenses;
pub mod tenant;
pub mod usage;
pub mod user_service_config;

pub use access::{Action, Authority, Principal, Role, Target};
pub use allocation::{Allocation, AllocationError};
pub use catalog::{GroupService, UnknownService, UserService};
pub use ids::{GroupId, GroupRef, IdError, InstanceName, PackName, TenantId, UserId};
pub use licenses::{GroupLicenses, Licensable, License, LicenseChange, UsageEffect};
pub use tenant::{PackDefinition, PoolChange, PoolRejection, PoolShare, TenantLicense};
pub use usage::{Assignable, Holding, UsageRejection, UserHoldings, UserItems};
pub use user_service_config::{Audience, UserServiceConfig};
