//! Integration tests, one binary: the router through `oneshot`, and the real `vitals` binary.

// The whole crate is test code, helpers included.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod alerts;
mod auth;
mod cli;
mod hardening;
mod http;
mod ingest;
mod live;
mod otlp;
mod processes;
mod prometheus;
mod reports;
mod store;
mod support;
