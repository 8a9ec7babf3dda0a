//! The wire contract shared by the server and the WASM client: plain serde types and the names
//! of things both sides must agree on.

pub mod alerts;
pub mod history;
pub mod live;
mod named;
pub mod ops;
pub mod reports;
mod tagged;
pub mod tags;
pub mod values;

/// Product name shown in the header and titles.
pub const PRODUCT_NAME: &str = "Vitals";

/// The latest time (Unix ms) a request may name: 9999-12-31T23:59:59.999Z, the last that RFC 3339
/// can write. Later ones are refused where they arrive, so that no arithmetic on a time overflows
/// and every time fits the store's signed columns.
pub const MAX_TIME_MS: u64 = 253_402_300_799_999;

/// Percent-encodes everything but unreserved characters (RFC 3986), for a URL query value.
pub fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
