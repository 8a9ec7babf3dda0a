//! The `vitals` command: parses the command line, sets up logging and runs the server.

use std::process::ExitCode;

use clap::error::ErrorKind;
use tracing_subscriber::EnvFilter;
use vitals::server::config::{one_line, parse_cli, Command};

fn main() -> ExitCode {
    let cli = match parse_cli(std::env::args_os()) {
        Ok(cli) => cli,
        Err(e) => {
            return match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
                    let _ = e.print();
                    ExitCode::SUCCESS
                }
                ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
                    let _ = e.print();
                    ExitCode::from(2)
                }
                _ => {
                    eprintln!("{}", one_line(&e));
                    ExitCode::from(2)
                }
            };
        }
    };
    match cli.command {
        Command::Serve(args) => {
            let config = match args.resolve() {
                Ok(config) => config,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            };
            // Before any thread exists: glibc reads M_ARENA_MAX when a thread first allocates.
            vitals::server::memory::configure();
            let log = init_logging();
            if let Err(e) = vitals::server::memory::spawn_trimmer() {
                eprintln!("error: cannot start the memory trimmer: {e}");
                return ExitCode::FAILURE;
            }
            let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
                Ok(runtime) => runtime,
                Err(e) => {
                    eprintln!("error: cannot start the async runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let served = runtime.block_on(vitals::server::serve(config));
            // What was logged comes out before the last line below.
            drop(log);
            match served {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    // A store that cannot be opened is the user's to fix, like a bad setting.
                    if e.downcast_ref::<vitals::server::store::OpenError>().is_some() {
                        ExitCode::from(2)
                    } else {
                        ExitCode::FAILURE
                    }
                }
            }
        }
    }
}

/// Logs to stderr from a thread of its own (hold the guard until exit: dropping it writes what
/// is queued); `RUST_LOG` (or `VITALS_LOG`) sets the filter, default `info`.
fn init_logging() -> tracing_appender::non_blocking::WorkerGuard {
    let filter = std::env::var("VITALS_LOG")
        .ok()
        .and_then(|spec| EnvFilter::try_new(spec).ok())
        .or_else(|| EnvFilter::try_from_default_env().ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    // The queue is allocated whole up front (32 bytes a line): 1,024 lines, not the crate's
    // 128,000 (4 MiB). A burst beyond it is dropped, not waited for.
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .buffered_lines_limit(1_024)
        .lossy(true)
        .thread_name("vitals-log")
        .finish(std::io::stderr());
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(writer).init();
    guard
}
