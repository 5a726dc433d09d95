//! Every test of the API and the store, in one binary and in process. A test spawns the API
//! (`TestApp::spawn`: the local server's router on a free port, over the binary's licensing
//! table and a configuration table of its own) or a store, and talks to it over real HTTP and a
//! real DynamoDB connection (DynamoDB Local, which the harness starts when
//! `AWS_ENDPOINT_URL_DYNAMODB` names none). `cargo test -p api-tests --test api` runs them all;
//! a module's name filters (`cargo test --test api packs::`).

mod audit;
mod authorization;
mod bulk;
mod client;
mod docs;
mod events;
mod faults;
mod group_licenses;
mod layout;
mod packs;
mod routes;
mod store;
mod store_configs;
mod template;
mod tenant;
mod usage;
mod usage_races;
mod user_services;
