//! Entry point of the project-local `cargo-leptos` build: same behaviour as upstream's binary,
//! built from the pinned library with downloads switched off, plus one addition: the site
//! settings are read from the project's `Leptos.toml` (the one place they live) and passed on
//! as the `LEPTOS_*` variables cargo-leptos honours. A variable already set wins, as it does in
//! cargo-leptos. `split = true` there turns on `--split` (lazily loaded WASM parts), a setting
//! cargo-leptos takes only from its command line. Settings cargo-leptos can only take from
//! `Cargo.toml` (the features and the WASM profile) stay there.
//!
//! And one change: `build --release --precompress` writes its gzip files with zopfli. The
//! library's own gzip (libflate) made the site's gzip files a fifth larger than zopfli does
//! (956,620 against 792,854 bytes; BENCHMARKS.md, "Every gzip file by zopfli"), and the server
//! sends the `.gz` files as they are to every client that does not take Brotli. The server
//! embeds the site when it is compiled, so the build runs in two steps: the site (bundle,
//! styles, precompression), the gzip files made again, then the server.
use std::path::Path;
use std::time::Instant;

use cargo_leptos::config::{Cli, Commands, Opts};
use cargo_leptos::run;
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
    let doc: toml::Table =
        text.parse().map_err(|e| color_eyre::eyre::eyre!("{}: {e}", path.display()))?;
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
            color_eyre::eyre::bail!(
                "{}: `{key}` is not a site setting this build reads",
                path.display()
            );
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
    match &cli.command {
        Commands::Build(opts)
            if opts.release && opts.precompress && !opts.frontend_only && !opts.server_only =>
        {
            let opts = opts.clone();
            build_with_zopfli(cli, opts).await
        }
        _ => run(cli).await,
    }
}

/// `build --release --precompress` as the site, its gzip files made again, then the server.
async fn build_with_zopfli(cli: Cli, opts: Opts) -> color_eyre::Result<()> {
    let step = |opts: Opts| Cli {
        manifest_path: cli.manifest_path.clone(),
        log: cli.log.clone(),
        command: Commands::Build(opts),
    };
    run(step(Opts { frontend_only: true, ..opts.clone() })).await?;
    // cargo-leptos has made the project's directory the current one.
    let site = std::env::var("LEPTOS_SITE_ROOT").unwrap_or_else(|_| "target/site".into());
    let started = Instant::now();
    let (files, before, after) =
        tokio::task::spawn_blocking(move || regzip(Path::new(&site))).await??;
    eprintln!(
        "     Zopfli {files} gzip files again, {before} -> {after} bytes, in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    run(step(Opts { server_only: true, ..opts })).await
}

/// Writes every `X.gz` under `dir` again from `X` with zopfli (kept when not smaller); returns
/// how many there were and their bytes before and after. The files are shared among threads,
/// largest first, so that the bundle's first part does not wait behind the others.
fn regzip(dir: &Path) -> std::io::Result<(usize, u64, u64)> {
    let mut files = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for entry in std::fs::read_dir(&d)? {
            let path = entry?.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "gz") {
                let plain = path.with_extension("");
                if plain.is_file() {
                    let size = std::fs::metadata(&plain)?.len();
                    files.push((size, plain, path));
                }
            }
        }
    }
    files.sort_by(|a, b| b.0.cmp(&a.0));
    let count = files.len();
    let queue = std::sync::Mutex::new(files.into_iter());
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let totals = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| -> std::io::Result<(u64, u64)> {
                    let (mut before, mut after) = (0, 0);
                    loop {
                        let next = queue.lock().unwrap_or_else(|e| e.into_inner()).next();
                        let Some((_, plain, gz)) = next else { return Ok((before, after)) };
                        let old = std::fs::metadata(&gz)?.len();
                        let data = std::fs::read(&plain)?;
                        let mut new = Vec::with_capacity(old as usize);
                        zopfli::compress(
                            zopfli::Options::default(),
                            zopfli::Format::Gzip,
                            data.as_slice(),
                            &mut new,
                        )?;
                        before += old;
                        if (new.len() as u64) < old {
                            // Whole or not at all: written beside it, then renamed over it.
                            let part = gz.with_extension("gz.zopfli");
                            std::fs::write(&part, &new)?;
                            std::fs::rename(&part, &gz)?;
                            after += new.len() as u64;
                        } else {
                            after += old;
                        }
                    }
                })
            })
            .collect();
        workers.into_iter().try_fold((0, 0), |(b, a), w| {
            let (wb, wa) = w.join().expect("a zopfli thread panicked")?;
            Ok::<_, std::io::Error>((b + wb, a + wa))
        })
    })?;
    Ok((count, totals.0, totals.1))
}
