//! The built site (WASM, JS, CSS, favicon) embedded in the binary, served with the right type,
//! caching and pre-compressed encodings.
//!
//! Release builds embed the site folder (`site-root` of Leptos.toml, `target/site`) at compile
//! time (cargo-leptos builds the site before the server when run with `--precompress`), so the
//! binary stands alone. Debug builds read the same folder from disk at run time. The `/pkg` files are served under a content hash
//! (`/pkg/<hash>/vitals.js`) so they can be cached for a year and change URL when they change.

use std::collections::HashMap;
use std::sync::OnceLock;

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

#[derive(rust_embed::Embed)]
#[folder = "$VITALS_SITE_ROOT/"]
#[allow_missing = true]
struct Site;

/// Name of the WASM/JS/CSS bundle: `output-name` of Leptos.toml (build.rs hands it over).
pub const OUTPUT_NAME: &str = env!("VITALS_OUTPUT_NAME");
/// Folder of the bundle inside the site: `site-pkg-dir` of Leptos.toml.
pub const PKG_DIR: &str = env!("VITALS_SITE_PKG_DIR");

/// The part of a site path (no leading slash) inside the bundle folder, if it is there.
pub fn in_pkg(path: &str) -> Option<&str> {
    path.strip_prefix(PKG_DIR).and_then(|rest| rest.strip_prefix('/'))
}

const IMMUTABLE: &str = "public, max-age=31536000, immutable";
const SHORT: &str = "public, max-age=3600";

/// The embedded site as the server uses it.
#[derive(Clone, Debug)]
pub struct SiteAssets {
    hash: String,
    /// Whether the bundle was split into its lazily loaded parts: an unsplit one still imports
    /// wasm-split's placeholder module in place of the loader. Read once; the site is embedded.
    split: bool,
}

impl SiteAssets {
    /// Hashes the bundle's files so their URLs change whenever their content does.
    pub fn load() -> Self {
        let mut combined: u64 = 0xcbf2_9ce4_8422_2325;
        for name in Site::iter().filter(|n| in_pkg(n).is_some()) {
            if let Some(file) = Site::get(&name) {
                for byte in name.bytes().chain(file.metadata.sha256_hash()) {
                    combined ^= u64::from(byte);
                    combined = combined.wrapping_mul(0x0100_0000_01b3);
                }
            }
        }
        let split = Site::get(&format!("{PKG_DIR}/{OUTPUT_NAME}.js"))
            .is_some_and(|js| !contains(&js.data, b"__wasm_split_placeholder__"));
        SiteAssets { hash: format!("{combined:016x}")[..12].to_string(), split }
    }

    /// The content hash used in bundle URLs.
    pub fn hash(&self) -> &str {
        &self.hash
    }

    /// The bundle folder as the page refers to it, e.g. `pkg/3f2a9c01b2d4`.
    pub fn pkg_url_dir(&self) -> String {
        format!("{PKG_DIR}/{}", self.hash)
    }

    /// The bundle's own health: degraded when the WASM bundle is missing, or was built without
    /// splitting (its lazily loaded pages then import a module that does not exist, and no page
    /// hydrates).
    pub fn health(&self) -> (crate::server::health::Status, String) {
        use crate::server::health::Status;
        let how = "pages render but do not hydrate; build with \
                   `cargo leptos build --release --precompress` (the project's cargo-leptos, \
                   which splits the bundle as Leptos.toml says)";
        if !self.bundle_present() {
            (Status::Degraded, format!("WASM bundle missing: {how}"))
        } else if !self.split {
            (Status::Degraded, format!("WASM bundle built without `--split`: {how}"))
        } else {
            (Status::Ok, format!("embedded, hash {}", self.hash()))
        }
    }

    pub fn bundle_present(&self) -> bool {
        Site::get(&format!("{PKG_DIR}/{OUTPUT_NAME}.wasm")).is_some()
    }

    /// Serves `path` (without a leading slash) if it is an embedded file: bundle files only under
    /// the current hash, other files from the site root. `None` means "not an asset".
    pub fn respond(&self, path: &str, request_headers: &HeaderMap) -> Option<Response> {
        let (file, cache) = match in_pkg(path) {
            Some(rest) => {
                let (hash, file) = rest.split_once('/')?;
                if hash != self.hash {
                    return None;
                }
                (format!("{PKG_DIR}/{file}"), IMMUTABLE)
            }
            None => (path.to_string(), SHORT),
        };
        if file.ends_with(".br") || file.ends_with(".gz") || file.ends_with('/') || file.is_empty()
        {
            return None;
        }
        let original = Site::get(&file)?;
        let mut encoding = None;
        let mut body = original.data.clone();
        for (coding, suffix) in [("br", ".br"), ("gzip", ".gz")] {
            if accepts_encoding(request_headers, coding) {
                if let Some(pre) = Site::get(&format!("{file}{suffix}")) {
                    encoding = Some(coding);
                    body = pre.data;
                    break;
                }
            }
        }
        let mime = mime_guess::from_path(&file).first_or_octet_stream();
        let mut response = Body::from(body.into_owned()).into_response();
        let headers = response.headers_mut();
        if let Ok(value) = HeaderValue::from_str(mime.as_ref()) {
            headers.insert(header::CONTENT_TYPE, value);
        }
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
        headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
        if let Some(coding) = encoding {
            headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static(coding));
        }
        Some(response)
    }
}

/// Whether `Accept-Encoding` accepts `coding`: listed (in any case) with a q above 0, or not
/// listed and `*` is. `br;q=0` is a client saying it cannot decode Brotli.
fn accepts_encoding(request_headers: &HeaderMap, coding: &str) -> bool {
    let named = |wanted: &str| {
        request_headers
            .get_all(header::ACCEPT_ENCODING)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|list| super::negotiate::listed(list, wanted))
    };
    named(coding).or_else(|| named("*")).unwrap_or(false)
}

/// The split bundle's loader and manifest, as cargo-leptos names them.
const SPLIT_LOADER_PREFIX: &str = "__wasm_split.";
const SPLIT_MANIFEST: &str = "__wasm_split_manifest.json";

/// The file name of the split bundle's loader (`__wasm_split.<…>.js`), when the bundle is split.
pub fn split_loader() -> Option<String> {
    static LOADER: OnceLock<Option<String>> = OnceLock::new();
    LOADER
        .get_or_init(|| {
            Site::iter().find_map(|name| {
                let file = in_pkg(&name)?;
                (file.starts_with(SPLIT_LOADER_PREFIX) && file.ends_with(".js"))
                    .then(|| file.to_string())
            })
        })
        .clone()
}

/// The parts of the split bundle (file names without `.wasm`) that the lazily loaded route
/// `route` (its type's name, e.g. `OperationsRoute`) needs, from the manifest cargo-leptos
/// writes; none when the bundle is not split.
pub fn split_parts(route: &str) -> Vec<String> {
    static MANIFEST: OnceLock<HashMap<String, Vec<String>>> = OnceLock::new();
    let manifest = MANIFEST.get_or_init(|| {
        Site::get(&format!("{PKG_DIR}/{SPLIT_MANIFEST}"))
            .and_then(|file| serde_json::from_slice(&file.data).ok())
            .unwrap_or_default()
    });
    // Leptos names a route's part `__<route in snake case>_view_<hash>`.
    let mut snake = String::new();
    for (i, c) in route.chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            snake.push('_');
        }
        snake.extend(c.to_lowercase());
    }
    let prefix = format!("__{snake}_view_");
    manifest
        .iter()
        .find(|(key, _)| key.starts_with(&prefix))
        .map(|(_, parts)| parts.clone())
        .unwrap_or_default()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The answer for a `/pkg/...` path that is not (or no longer) part of the bundle.
pub fn stale_asset() -> Response {
    (StatusCode::NOT_FOUND, "no such asset (the page may be from an older version: reload it)")
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accepted(accept_encoding: &str) -> [bool; 2] {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT_ENCODING, HeaderValue::from_str(accept_encoding).unwrap());
        ["br", "gzip"].map(|coding| accepts_encoding(&headers, coding))
    }

    #[test]
    fn an_encoding_is_sent_only_when_the_client_accepts_it() {
        // [br, gzip]
        assert_eq!(accepted("br;q=0, gzip"), [false, true]);
        assert_eq!(accepted("br; q=0.0, gzip;q=0.000"), [false, false]);
        assert_eq!(accepted("BR"), [true, false]);
        assert_eq!(accepted("gzip;q=0.5"), [false, true]);
        assert_eq!(accepted("gzip, deflate, br;q=1.0"), [true, true]);
        assert_eq!(accepted("*"), [true, true]);
        assert_eq!(accepted("*;q=0"), [false, false]);
        assert_eq!(accepted("br;q=0, *"), [false, true]);
        assert_eq!(accepted("gzip, *;q=0"), [false, true]);
        assert_eq!(accepted("identity"), [false, false]);
        assert_eq!(accepted(""), [false, false]);
        assert!(!accepts_encoding(&HeaderMap::new(), "br"));
    }
}
