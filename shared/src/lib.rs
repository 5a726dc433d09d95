//! Service licensing for BroadWorks-style hosted telephony.
//!
//! The crate is split the hexagonal way:
//! - [`domain`] holds the types and rules (ids, catalog, allocations, license updates) and knows
//!   nothing of HTTP or DynamoDB;
//! - [`store`] defines the storage port and its DynamoDB adapter;
//! - [`http`] is the glue the Lambda binaries share: routing, JSON bodies, the error shape;
//!   [`lambda`] what their `main`s do once per cold start.

pub mod domain;
pub mod http;
pub mod lambda;
pub mod store;
