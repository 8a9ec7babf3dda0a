//! The wire contract shared by the server and the WASM client: plain serde types and the names
//! of things both sides must agree on.

pub mod history;
pub mod live;
pub mod ops;

/// Product name shown in the header and titles.
pub const PRODUCT_NAME: &str = "Vitals";
