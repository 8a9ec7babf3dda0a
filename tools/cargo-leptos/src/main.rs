//! Entry point of the project-local `cargo-leptos` build: same behaviour as upstream's binary,
//! built from the pinned library with downloads switched off.
use cargo_leptos::{config::Cli, run};
use clap::Parser;

#[tokio::main]
async fn main() -> color_eyre::Result<()> {
    color_eyre::install()?;
    let mut args: Vec<String> = std::env::args().collect();
    // Invoked as `cargo leptos ...`, the first argument after the binary is "leptos".
    if args.get(1).is_some_and(|a| a == "leptos") {
        args.remove(1);
    }
    let cli = Cli::parse_from(&args);
    let verbose = cli.opts().map(|o| o.verbose).unwrap_or(0);
    cargo_leptos::logger::setup(verbose, &cli.log);
    run(cli).await
}
