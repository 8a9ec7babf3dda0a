//! The Leptos site settings at run time: Leptos.toml (the one place they live, embedded at
//! build time) read by leptos_config, as Leptos reads its configuration (`LEPTOS_*` variables
//! override, e.g. `LEPTOS_SITE_ADDR`). The bundle names must match what was embedded, so they
//! come from the build (see `assets`), not from a variable set at run time.

use std::net::SocketAddr;
use std::sync::OnceLock;

use leptos::prelude::LeptosOptions;

/// Leptos.toml as it was when the binary was built.
pub const LEPTOS_TOML: &str = include_str!("../../Leptos.toml");

/// The Leptos options of Leptos.toml, with the bundle names of the embedded site.
pub fn options() -> &'static LeptosOptions {
    static OPTIONS: OnceLock<LeptosOptions> = OnceLock::new();
    OPTIONS.get_or_init(|| {
        let mut options = leptos_config::get_config_from_str(LEPTOS_TOML).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "Cannot read the Leptos settings; using Leptos' defaults.");
            LeptosOptions::builder().output_name(super::assets::OUTPUT_NAME).build()
        });
        options.output_name = super::assets::OUTPUT_NAME.into();
        options.site_pkg_dir = super::assets::PKG_DIR.into();
        options
    })
}

/// The default listen address: Leptos.toml's `site-addr`.
pub fn default_addr() -> SocketAddr {
    options().site_addr
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_settings_come_from_leptos_toml() {
        let o = options();
        assert_eq!(o.output_name.as_ref(), "vitals");
        assert_eq!(o.site_pkg_dir.as_ref(), "pkg");
        assert_eq!(o.site_root.as_ref(), "target/site");
        assert_eq!(default_addr(), "127.0.0.1:3000".parse().unwrap());
        assert!(LEPTOS_TOML.contains("site-addr = \"127.0.0.1:3000\""));
    }
}
