//! Support of the tests: the harness ([`TestApp`]: DynamoDB Local, tables, the API served
//! in-process), the typed client, the README's examples, the helpers every test shares, the
//! DynamoDB fault proxy, the rules' reference model, and the table definitions.

pub mod client;
pub mod examples;
pub mod faults;
pub mod harness;
pub mod helpers;
pub mod model;
pub mod schema;
pub mod spec;

pub use client::{Api, Caller, Reply, Sending};
pub use harness::{TestApp, fresh_group, unique};
pub use helpers::*;
