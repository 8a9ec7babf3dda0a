//! Hands the site settings of `Leptos.toml` (the one place they live) to the compiler: the
//! server embeds the site folder it names and serves the bundle by the names it gives.

use std::path::Path;

fn main() {
    println!("cargo:rerun-if-changed=Leptos.toml");
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".into());
    let path = Path::new(&manifest_dir).join("Leptos.toml");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let doc: toml::Table = text.parse().unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let site = doc
        .get("package")
        .and_then(|p| p.get("metadata"))
        .and_then(|m| m.get("leptos"))
        .and_then(|l| l.as_table())
        .unwrap_or_else(|| panic!("{}: no [package.metadata.leptos] table", path.display()));
    let setting = |key: &str| {
        site.get(key)
            .and_then(|v| v.as_str())
            .unwrap_or_else(|| panic!("{}: `{key}` is missing", path.display()))
            .to_string()
    };
    // Relative, as Leptos.toml has it: the embedding resolves it against the package being
    // compiled. An absolute path here would be kept by a build cache shared between two clones
    // of the project (cargo reruns this script only when Leptos.toml changes), and the second
    // clone's server would embed the first one's site, or none.
    let site_root = setting("site-root");
    if Path::new(&site_root).is_absolute() {
        panic!("{}: `site-root` must be relative to the project", path.display());
    }
    println!("cargo:rustc-env=VITALS_SITE_ROOT={site_root}");
    println!("cargo:rustc-env=VITALS_SITE_PKG_DIR={}", setting("site-pkg-dir"));
    println!("cargo:rustc-env=VITALS_OUTPUT_NAME={}", setting("output-name"));
}
