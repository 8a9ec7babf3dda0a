//! The wire contract shared by the server and the WASM client: plain serde types and the names
//! of things both sides must agree on.

pub mod alerts;
pub mod history;
pub mod live;
pub mod ops;
pub mod reports;
mod tagged;
pub mod tags;
pub mod values;

/// Product name shown in the header and titles.
pub const PRODUCT_NAME: &str = "Vitals";

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
