//! Entry point of the project-local `cargo-leptos` build: same behaviour as upstream's binary,
//! built from the pinned library with downloads switched off, plus one addition: the site
//! settings are read from the project's `Leptos.toml` (the one place they live) and passed on
//! as the `LEPTOS_*` variables cargo-leptos honours. A variable already set wins, as it does in
//! cargo-leptos. `split = true` there turns on `--split` (lazily loaded WASM parts), a setting
//! cargo-leptos takes only from its command line. Settings cargo-leptos can only take from
//! `Cargo.toml` (the features and the WASM profile) stay there.
use cargo_leptos::{config::Cli, run};
use clap::Parser;

/// `Leptos.toml` keys and the variables cargo-leptos reads them from.
const SETTINGS: [(&str, &str); 8] = [
    ("output-name", "LEPTOS_OUTPUT_NAME"),
    ("site-root", "LEPTOS_SITE_ROOT"),
    ("site-pkg-dir", "LEPTOS_SITE_PKG_DIR"),
    ("style-file", "LEPTOS_STYLE_FILE"),
    ("assets-dir", "LEPTOS_ASSETS_DIR"),
    ("site-addr", "LEPTOS_SITE_ADDR"),
    ("reload-port", "LEPTOS_RELOAD_PORT"),
    ("browserquery", "LEPTOS_BROWSERQUERY"),
];

/// The `Leptos.toml` key that turns on `--split` for every build, watch and serve.
const SPLIT: &str = "split";

/// Exports the settings of `Leptos.toml` (found in this directory or an ancestor); returns
/// whether it asks for `--split`.
fn export_leptos_toml() -> color_eyre::Result<bool> {
    let mut dir = std::env::current_dir()?;
    let path = loop {
        let candidate = dir.join("Leptos.toml");
        if candidate.is_file() {
            break candidate;
        }
        if !dir.pop() {
            return Ok(false);
        }
    };
    let text = std::fs::read_to_string(&path)?;
    let doc: toml::Table = text
        .parse()
        .map_err(|e| color_eyre::eyre::eyre!("{}: {e}", path.display()))?;
    let site = doc
        .get("package")
        .and_then(|p| p.get("metadata"))
        .and_then(|m| m.get("leptos"))
        .and_then(|l| l.as_table())
        .ok_or_else(|| {
            color_eyre::eyre::eyre!("{}: no [package.metadata.leptos] table", path.display())
        })?;
    let mut split = false;
    for (key, value) in site {
        if key == SPLIT {
            split = value.as_bool().ok_or_else(|| {
                color_eyre::eyre::eyre!("{}: `{SPLIT}` must be true or false", path.display())
            })?;
            continue;
        }
        let Some((_, var)) = SETTINGS.iter().find(|(k, _)| k == key) else {
            color_eyre::eyre::bail!("{}: `{key}` is not a site setting this build reads", path.display());
        };
        if std::env::var_os(var).is_some() {
            continue;
        }
        let value = match value {
            toml::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        // Before the runtime starts: no other thread reads the environment yet.
        std::env::set_var(var, value);
    }
    Ok(split)
}

fn main() -> color_eyre::Result<()> {
    color_eyre::install()?;
    let split = export_leptos_toml()?;
    tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(leptos(split))
}

async fn leptos(split: bool) -> color_eyre::Result<()> {
    let mut args: Vec<String> = std::env::args().collect();
    // Invoked as `cargo leptos ...`, the first argument after the binary is "leptos".
    if args.get(1).is_some_and(|a| a == "leptos") {
        args.remove(1);
    }
    let mut cli = Cli::parse_from(&args);
    if split {
        if let Some(opts) = cli.opts_mut() {
            opts.split = true;
        }
    }
    let verbose = cli.opts().map(|o| o.verbose).unwrap_or(0);
    cargo_leptos::logger::setup(verbose, &cli.log);
    run(cli).await
}
