//! Ingestion: protocol adapters only. Each parses and validates what arrives on its door
//! (HTTP batches, StatsD datagrams, OTLP requests) and hands the samples to the metrics store
//! (`server::metrics`), which owns every value, bound and counter.

pub mod http;
pub mod otlp;
pub mod statsd;
pub mod udp;
