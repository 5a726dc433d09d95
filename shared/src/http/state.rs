//! What each function's handlers share, built once per cold start.

use crate::store::dynamo::{DynamoConfigStore, DynamoStore};
use axum::extract::State;
use std::sync::Arc;

/// The licenses function's stores: the licensing table, and the user-services configuration
/// (read when a GET filters by it or an assignment checks it).
pub struct Licensing {
    pub store: DynamoStore,
    pub configs: DynamoConfigStore,
}

/// The licenses function's handlers' state.
pub type App = State<Arc<Licensing>>;

/// The user-services function's handlers' state.
pub type Configs = State<DynamoConfigStore>;
