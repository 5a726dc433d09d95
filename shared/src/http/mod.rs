//! The HTTP layer of the two Lambda functions, by resource. Each function's router
//! ([`licenses::router`], [`user_services::router`]) merges the fragments of its resources
//! ([`tenant_licenses`], [`packs`], [`group_licenses`], [`usage`], [`users`], [`audit`]; [`configs`]) and wears the
//! [`front`] (log line, deadline, panics, 401/404/405). Requests are parsed at the boundary:
//! ids ([`path`]), bodies ([`body`]), the query ([`query`]), `If-Match` ([`conditional`]); every
//! failure becomes the one error shape ([`error`]).
//!
//! Lower modules never import higher ones: `response` ← `error` ← extractors and `front` ←
//! resources ← routers.

pub mod audit;
pub mod auth;
pub mod body;
pub mod conditional;
pub mod configs;
pub mod error;
pub mod front;
pub mod group_licenses;
pub mod idempotency;
pub mod licenses;
mod licenses_put;
pub mod metrics;
pub mod packs;
pub mod path;
pub mod query;
pub mod response;
pub mod state;
mod strict_json;
pub mod tenant_licenses;
pub mod usage;
pub mod user_services;
pub mod users;
pub mod views;
pub mod write;
