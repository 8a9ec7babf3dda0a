//! `bench-report`: reads every run `bench/run` has recorded in `bench/results/YYYY-MM-DD.txt`
//! and writes each headline figure, its target, its latest value and its history into
//! BENCHMARKS.md, between the lines `<!-- bench-report:begin ... -->` and
//! `<!-- bench-report:end -->`. `bench/run` calls it after every run; `--check` says whether the
//! file is up to date with the results (`scripts/test` runs that).

mod figures;
mod render;
mod results;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Arg, ArgAction, Command};

fn main() -> ExitCode {
    let matches = Command::new("bench-report")
        .about("Writes the figures of bench/run's results, with targets and history, into BENCHMARKS.md")
        .arg(
            Arg::new("results")
                .long("results")
                .value_name("DIR")
                .default_value("bench/results")
                .help("Where bench/run writes its results (YYYY-MM-DD.txt files are read)"),
        )
        .arg(
            Arg::new("doc")
                .long("doc")
                .value_name("FILE")
                .default_value("BENCHMARKS.md")
                .help("The file whose generated part is rewritten"),
        )
        .arg(
            Arg::new("check")
                .long("check")
                .action(ArgAction::SetTrue)
                .help("Write nothing; fail if the file's figures are not those of the results"),
        )
        .get_matches();
    let dir = PathBuf::from(matches.get_one::<String>("results").map_or("", String::as_str));
    let doc_path = PathBuf::from(matches.get_one::<String>("doc").map_or("", String::as_str));
    let check = matches.get_flag("check");

    let runs = match results::read_dir(&dir) {
        Ok(runs) => runs,
        Err(e) => return fail(&format!("cannot read {}: {e}", dir.display())),
    };
    let doc = match std::fs::read_to_string(&doc_path) {
        Ok(doc) => doc,
        Err(e) => return fail(&format!("cannot read {}: {e}", doc_path.display())),
    };
    let block = render::block(&figures::all(), &runs);
    let updated = match render::splice(&doc, &block) {
        Ok(updated) => updated,
        Err(e) => return fail(&format!("{}: {e}", doc_path.display())),
    };
    if check {
        if updated == doc {
            println!("{} is up to date with {} runs", doc_path.display(), runs.len());
            return ExitCode::SUCCESS;
        }
        eprintln!(
            "bench-report: {}'s figures are not those of {}; run `bench/run report`",
            doc_path.display(),
            dir.display()
        );
        return ExitCode::FAILURE;
    }
    if updated != doc {
        if let Err(e) = std::fs::write(&doc_path, &updated) {
            return fail(&format!("cannot write {}: {e}", doc_path.display()));
        }
    }
    println!("{}: figures of {} runs written", doc_path.display(), runs.len());
    ExitCode::SUCCESS
}

fn fail(message: &str) -> ExitCode {
    eprintln!("bench-report: {message}");
    ExitCode::from(2)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The project's own record reads: runs known from BENCHMARKS.md's history give their
    /// figures, and the table has a row with a value for them.
    #[test]
    fn the_recorded_results_give_the_known_figures() {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../results");
        let runs = results::read_dir(&dir).unwrap();
        assert!(runs.len() >= 20, "{} runs", runs.len());
        let figures = figures::all();
        let value = |at: &str, title: &str| {
            let run = runs.iter().find(|r| r.at == at).unwrap();
            figures.iter().find(|f| f.title == title).unwrap().value_in(run)
        };
        // bench/results/2026-12-05.txt: idle 0.133 % of a core.
        assert_eq!(value("2026-12-05 02:19:44", "Idle: CPU, no viewers, 1 Hz"), Some(0.133));
        // bench/results/2026-12-06.txt: the Dashboard's cold paint, 136 ms.
        let fcp = value("2026-12-06 02:04:22", "Dashboard: first contentful paint, cold");
        assert_eq!(fcp, Some(136.0));
        let block = render::block(&figures, &runs);
        assert!(
            block.contains("| Idle: CPU, no viewers, 1 Hz | < 0.200 % of a core | 0."),
            "{block}"
        );
    }
}
