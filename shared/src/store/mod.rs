//! The storage port: what the domain needs from a store, whatever the database.
//!
//! [`dynamo::DynamoStore`] is the production adapter. Every operation is one round trip, and
//! every rule that depends on stored state (usage below a maximum, ...) is enforced by the store
//! atomically with the write, never by a read before it.

pub mod dynamo;
pub mod dynamo_configs;
pub mod keys;
pub mod schema;

use crate::domain::{GroupLicenses, GroupRef, InstanceName, LicenseChange, UserServiceConfig};
use std::fmt;
use std::future::Future;

/// Why a write was refused: the rule the stored state broke, per request item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// Index of the refused item in the list of changes handed to the store.
    pub index: usize,
    pub reason: RejectReason,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RejectReason {
    /// The new limited maximum (or unlicensing) would leave fewer units than are in use.
    BelowUsage { in_use: u32 },
}

#[derive(Debug)]
pub enum StoreError {
    /// The request was well formed but the stored state refuses it; nothing was written.
    Rejected(Vec<Rejection>),
    /// The store could not be reached or did not answer in time; nothing is known to be written.
    Unavailable(String),
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Rejected(r) => write!(f, "{} item(s) rejected by stored state", r.len()),
            StoreError::Unavailable(why) => write!(f, "storage unavailable: {why}"),
        }
    }
}

impl std::error::Error for StoreError {}

/// Licensing state of groups.
pub trait LicenseStore: Send + Sync {
    /// Every license record of the group (one `Query`).
    fn group_licenses(
        &self,
        group: &GroupRef,
    ) -> impl Future<Output = Result<GroupLicenses, StoreError>> + Send;

    /// Applies all changes or none (one transaction). A change whose rule fails against the
    /// stored state yields a [`StoreError::Rejected`] naming it.
    fn update_group_licenses(
        &self,
        group: &GroupRef,
        changes: &[LicenseChange],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// The operator-defined user-services configuration.
pub trait ConfigStore: Send + Sync {
    /// Every configuration object, ordered by instance name (one `Query`).
    fn user_service_configs(
        &self,
    ) -> impl Future<Output = Result<Vec<UserServiceConfig>, StoreError>> + Send;

    fn user_service_config(
        &self,
        name: &InstanceName,
    ) -> impl Future<Output = Result<Option<UserServiceConfig>, StoreError>> + Send;

    /// Stores `config` unless its instance exists; `Ok(false)` when it does. One conditional
    /// write, so of two racing creates exactly one succeeds.
    fn create_user_service_config(
        &self,
        config: &UserServiceConfig,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Creates or replaces.
    fn put_user_service_config(
        &self,
        config: &UserServiceConfig,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Deletes the instance if present; `Ok(false)` when there was none. One conditional write.
    fn delete_user_service_config(
        &self,
        name: &InstanceName,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}
