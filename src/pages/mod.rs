//! One module per route.

pub mod alerts;
pub mod dashboard;
pub mod not_found;
pub mod operations;
pub mod reports;
pub mod values;
