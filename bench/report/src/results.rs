//! The raw results `bench/run` writes: runs, each opened by its header (`# Vitals benchmarks,
//! <UTC time>`, then `# machine:` and `# server: ... main at <commit>`), sections opened by
//! `## <scenario>: ...`, and one `summary <name> key=value ...` line per measurement.
//!
//! Only the files `bench/run` writes by default, `bench/results/YYYY-MM-DD.txt`, are the record:
//! files named otherwise hold comparisons made by hand (an old build beside a new one, a change
//! tried and dropped) whose figures are not the project's at that commit.

use std::io;
use std::path::Path;

/// One invocation of `bench/run`.
#[derive(Clone, Debug, PartialEq)]
pub struct Run {
    /// When it started, `YYYY-MM-DD HH:MM:SS` in UTC (sorts as time).
    pub at: String,
    /// Cores, CPU and memory as the header gives them, without the kernel (which a VM's host
    /// changes between sessions while the machine stays the same kind).
    pub machine: String,
    /// The commit `main` was at, `+` added when `src/` had uncommitted changes, `?` when unknown.
    pub commit: String,
    pub summaries: Vec<Summary>,
}

/// One `summary` line.
#[derive(Clone, Debug, PartialEq)]
pub struct Summary {
    /// The scenario it was measured in: the first word of the last `## ` heading before it.
    pub section: String,
    /// The word after `summary` (`idle`, `statsd`, `page`, ...).
    pub name: String,
    /// Words without `=` after the name (`startup cold ...` has `cold`).
    pub words: Vec<String>,
    /// The `key=value` pairs, in order.
    pub fields: Vec<(String, String)>,
}

impl Summary {
    /// The text of `key`, if the line has it.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// The value of `key` as a finite number (`-` and lists are not numbers).
    pub fn number(&self, key: &str) -> Option<f64> {
        self.get(key)?.parse::<f64>().ok().filter(|v| v.is_finite())
    }
}

const RUN_HEADER: &str = "# Vitals benchmarks, ";

/// The runs in `text`, the content of a results file. Lines before the first
/// run header, and `summary` lines with anything before the word (an A/B tool's `before summary`),
/// are not part of any run's record.
pub fn parse(text: &str) -> Vec<Run> {
    let mut runs: Vec<Run> = Vec::new();
    let mut section = String::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix(RUN_HEADER) {
            let at = rest.trim().trim_end_matches(" UTC").trim().to_string();
            runs.push(Run {
                at,
                machine: "unknown machine".to_string(),
                commit: "?".to_string(),
                summaries: Vec::new(),
            });
            section.clear();
            continue;
        }
        let Some(run) = runs.last_mut() else { continue };
        if let Some(rest) = line.strip_prefix("# machine: ") {
            run.machine = rest.split(", kernel").next().unwrap_or(rest).trim().to_string();
        } else if let Some(rest) = line.strip_prefix("# server: ") {
            run.commit = commit_of(rest);
        } else if let Some(rest) = line.strip_prefix("## ") {
            let heading = rest.split(':').next().unwrap_or_default();
            section = heading.split_whitespace().next().unwrap_or_default().to_string();
        } else if let Some(rest) = line.strip_prefix("summary ") {
            if let Some(summary) = summary_of(&section, rest) {
                run.summaries.push(summary);
            }
        }
    }
    runs
}

/// `... main at 0a1b2c3` → `0a1b2c3`; `... main at 0a1b2c3 + uncommitted changes in src/` →
/// `0a1b2c3+`.
fn commit_of(server: &str) -> String {
    let Some((_, after)) = server.rsplit_once("main at ") else { return "?".to_string() };
    let mut words = after.split_whitespace();
    let commit = words.next().unwrap_or("?");
    if words.next() == Some("+") {
        format!("{commit}+")
    } else {
        commit.to_string()
    }
}

fn summary_of(section: &str, rest: &str) -> Option<Summary> {
    let mut tokens = rest.split_whitespace();
    let name = tokens.next()?.to_string();
    let mut words = Vec::new();
    let mut fields = Vec::new();
    for token in tokens {
        match token.split_once('=') {
            Some((key, value)) => fields.push((key.to_string(), value.to_string())),
            None => words.push(token.to_string()),
        }
    }
    Some(Summary { section: section.to_string(), name, words, fields })
}

/// Whether `file_name` is one `bench/run` writes by default: `YYYY-MM-DD.txt`.
pub fn is_record(file_name: &str) -> bool {
    let Some(date) = file_name.strip_suffix(".txt") else { return false };
    let bytes = date.as_bytes();
    bytes.len() == 10
        && bytes.iter().enumerate().all(|(i, b)| match i {
            4 | 7 => *b == b'-',
            _ => b.is_ascii_digit(),
        })
}

/// Every run of the record files in `dir`, oldest first.
pub fn read_dir(dir: &Path) -> io::Result<Vec<Run>> {
    let mut runs = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if is_record(&name) {
            let text = std::fs::read_to_string(entry.path())?;
            runs.extend(parse(&text));
        }
    }
    runs.sort_by(|a, b| a.at.cmp(&b.at));
    Ok(runs)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "\
stray line before any run
summary idle cpu_pct=9.9
# Vitals benchmarks, 2026-12-03 13:15:21 UTC
# command: bench/run idle startup
# machine: 2 cores, AMD EPYC, 23.5 GiB RAM, kernel 6.18.44-fc-v1252
# server: /w/target/release/vitals (17392592 bytes, built 2026-12-03 13:03:08, sha256 58cb74fdd2ff7b36), main at f97f015
## idle: no viewers, 1 Hz (load average 0.1)
summary idle cpu_pct=0.283 rss_mib_max=14.0 server_cpu_pct=-
## big store: backfilling
## store-startup: exec to the first 200
summary startup cold db_mib=1103.5 median_ms=445.8
before summary startup cold median_ms=1
# Vitals benchmarks, 2026-12-04 22:22:08 UTC
# server: /tmp/vitals-b (1 bytes), main at d92ebf2 + uncommitted changes in src/
## statsd sustained: 10,000,000 lines at rate 5000000
summary statsd rate=5000000 ingested_mlps=5.00
";

    #[test]
    fn runs_sections_and_summaries_are_read_as_bench_run_writes_them() {
        let runs = parse(TEXT);
        assert_eq!(runs.len(), 2);
        let first = &runs[0];
        assert_eq!(first.at, "2026-12-03 13:15:21");
        assert_eq!(first.machine, "2 cores, AMD EPYC, 23.5 GiB RAM");
        assert_eq!(first.commit, "f97f015");
        assert_eq!(first.summaries.len(), 2, "the stray and the prefixed lines are not read");
        let idle = &first.summaries[0];
        assert_eq!((idle.section.as_str(), idle.name.as_str()), ("idle", "idle"));
        assert_eq!(idle.number("cpu_pct"), Some(0.283));
        assert_eq!(idle.number("server_cpu_pct"), None, "`-` is no number");
        assert_eq!(idle.number("missing"), None);
        let startup = &first.summaries[1];
        assert_eq!(startup.section, "store-startup");
        assert_eq!(startup.words, ["cold"]);
        assert_eq!(startup.number("median_ms"), Some(445.8));

        let second = &runs[1];
        assert_eq!(second.commit, "d92ebf2+");
        assert_eq!(second.machine, "unknown machine");
        assert_eq!(second.summaries[0].section, "statsd", "the heading's first word");
    }

    #[test]
    fn only_the_dated_files_are_the_record() {
        assert!(is_record("2026-12-05.txt"));
        for name in ["2026-12-05-soak.txt", "2026-12-05.txt.bak", "notes.txt", "2026-1-05.txt"] {
            assert!(!is_record(name), "{name}");
        }
    }
}
