//! Integration tests, one binary: the router through `oneshot`, and the real `vitals` binary.

mod cli;
mod http;
mod live;
mod support;
