//! The DynamoDB adapter of the store ports.
//!
//! At the bottom, importing nothing from the files above them: `item.rs` (items, keys and
//! attributes), `keys.rs` (every PK/SK format and its parser), `codec.rs` (records to and from
//! items), `retry.rs` (backoff, tokens, which failures a retry can help), `query.rs` (the one
//! paging loop), `etag.rs`, `idempotency.rs` (the request's record), `tx.rs` (one transaction).
//! Above them one file per port implementation: `licenses.rs` (group licenses, with `pool.rs`,
//! the tenant pool records both PUTs move), `tenant.rs` (tenant licenses and packs), `usage.rs`
//! and `holdings.rs` (assignments and instances), `users.rs` (a group's users, listed),
//! `configs.rs` (the user-services configuration). Reads are one strongly consistent `Query`
//! (usage must be live), writes one `TransactWriteItems` whose conditions carry the rules.

mod audit;
mod codec;
mod configs;
pub mod etag;
mod holdings;
pub mod idempotency;
mod item;
pub mod keys;
mod licenses;
mod pool;
mod query;
mod retry;
mod tenant;
mod tx;
mod usage;
mod users;

pub use configs::DynamoConfigStore;
pub use tx::MAX_TRANSACTION_ITEMS;

use crate::domain::{GroupLicenses, GroupRef, TenantId};
use crate::store::audit::{AuditLog, AuditPage, AuditQuery, Trail};
use crate::store::{StoreError, WriteCtx};
use aws_sdk_dynamodb::Client;
use codec::Definitions;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use tx::{Plan, Ran};

#[derive(Clone, Debug)]
pub struct DynamoStore {
    client: Client,
    table: String,
    /// Each tenant's pack definitions as this instance last read them: they change rarely
    /// (never while a group licenses the pack), and an assignment checks those it used.
    definitions: Arc<Recent<TenantId, Definitions>>,
    /// Each group's licenses as this instance last read them, for the allocations a change of
    /// several users' assignments moves counters under: each counter's condition pins the
    /// allocation it used, so a stale one costs a re-plan, never a wrong answer.
    allocations: Arc<Recent<GroupRef, GroupLicenses>>,
}

/// What a function instance last read of something that changes rarely, by key; at most
/// `bound` keys, after which it starts again from none. The writes that use a value check it
/// is still current, so a stale one costs a retry, never a wrong answer.
#[derive(Debug)]
struct Recent<K, V> {
    values: Mutex<HashMap<K, Arc<V>>>,
    bound: usize,
}

impl<K: Eq + Hash, V> Recent<K, V> {
    fn new(bound: usize) -> Self {
        Recent {
            values: Mutex::new(HashMap::new()),
            bound,
        }
    }

    fn get(&self, key: &K) -> Option<Arc<V>> {
        let values = self.values.lock().unwrap_or_else(|e| e.into_inner());
        values.get(key).cloned()
    }

    /// Keeps `value` as the last read of `key`, and returns it.
    fn keep(&self, key: K, value: V) -> Arc<V> {
        let value = Arc::new(value);
        let mut values = self.values.lock().unwrap_or_else(|e| e.into_inner());
        if values.len() >= self.bound {
            values.clear();
        }
        values.insert(key, value.clone());
        value
    }
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client: crate::store::meter::metered(client),
            table: table.into(),
            // Tenants' definitions; groups' licenses are a few KB each.
            definitions: Arc::new(Recent::new(1024)),
            allocations: Arc::new(Recent::new(256)),
        }
    }

    pub(crate) fn client(&self) -> &Client {
        &self.client
    }

    pub(crate) fn table(&self) -> &str {
        &self.table
    }

    /// Runs one transaction plan ([`Plan::run`]), the request's idempotency record in this
    /// table.
    async fn run<M>(&self, ctx: &WriteCtx, plan: Plan<M>) -> Result<Ran<M>, StoreError> {
        plan.run(&self.client, ctx, &self.table).await
    }
}

impl AuditLog for DynamoStore {
    async fn audit_events(
        &self,
        trail: &Trail,
        query: &AuditQuery,
    ) -> Result<AuditPage, StoreError> {
        audit::events(&self.client, &self.table, trail, query).await
    }
}

impl idempotency::KeepsRecords for DynamoStore {
    fn idempotency_records(&self) -> idempotency::Records {
        idempotency::Records::new(self.client.clone(), &self.table)
    }
}
