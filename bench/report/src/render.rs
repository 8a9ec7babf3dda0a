//! The table of figures written into BENCHMARKS.md between its two `bench-report` marker lines,
//! and the splice that puts it there and leaves the rest of the file as it was.

use std::fmt::Write;

use crate::figures::{Better, Figure, Target, Unit, MACHINE};
use crate::results::Run;

/// The first line of the generated part (the rest of the line is free text).
pub const BEGIN: &str = "<!-- bench-report:begin";
/// The last line of the generated part.
pub const END: &str = "<!-- bench-report:end -->";

/// How many values the history column shows.
const HISTORY: usize = 5;

/// The generated part, marker lines included, for `figures` over `runs` (oldest first).
pub fn block(figures: &[Figure], runs: &[Run]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{BEGIN}: written by bench/run (bench/report); edit bench/report/src/figures.rs, not this table -->"
    );
    out.push('\n');
    let dated = runs.iter().map(|r| r.at.get(..10).unwrap_or(&r.at));
    let (first, last) = (dated.clone().min(), dated.max());
    let span = match (first, last) {
        (Some(a), Some(b)) if a == b => format!(" on {a}"),
        (Some(a), Some(b)) => format!(", {a} to {b}"),
        _ => String::new(),
    };
    let _ = writeln!(
        out,
        "Read from the {} runs of `bench/run` recorded in `bench/results/YYYY-MM-DD.txt`{span}. Each \
         row gives the figure's target, its latest value with that run's date and commit, the value \
         of the run before it on the same kind of machine, and its last {HISTORY} values there (oldest \
         first). **worse** marks a change in the wrong direction larger than the figure's usual \
         spread on this VM.",
        runs.len()
    );
    out.push('\n');
    out.push_str("| figure | target | latest | | run | before | change | last five |\n");
    out.push_str("|---|---|---|---|---|---|---|---|\n");
    for figure in figures {
        out.push_str(&row(figure, runs));
    }
    out.push('\n');
    out.push_str(END);
    out.push('\n');
    out
}

/// One figure's row.
fn row(figure: &Figure, runs: &[Run]) -> String {
    let points: Vec<(&Run, f64)> =
        runs.iter().filter_map(|run| Some((run, figure.value_in(run)?))).collect();
    let target = target_text(figure.target, figure.unit);
    let Some(&(latest_run, latest)) = points.last() else {
        return format!("| {} | {target} | not in the record yet | | | | | |\n", figure.title);
    };
    let same: Vec<(&Run, f64)> =
        points.into_iter().filter(|(run, _)| run.machine == latest_run.machine).collect();
    let before = same.len().checked_sub(2).map(|i| same[i]);
    let verdict = match figure.target.met(latest) {
        Some(true) => "met",
        Some(false) => "**missed**",
        None => "",
    };
    let when =
        format!("{}, {}", latest_run.at.get(..16).unwrap_or(&latest_run.at), latest_run.commit);
    let (before_text, change_text) = match before {
        Some((before_run, b)) => {
            let mut change = change_text(figure, b, latest);
            if figure.title != MACHINE.title {
                change.push_str(&machine_text(before_run, latest_run));
            }
            (value_text(b, figure.unit), change)
        }
        None => ("—".to_string(), String::new()),
    };
    let history: Vec<String> = same[same.len().saturating_sub(HISTORY)..]
        .iter()
        .map(|(_, v)| number(*v, figure.unit))
        .collect();
    format!(
        "| {} | {target} | {} | {verdict} | {when} | {before_text} | {change_text} | {} |\n",
        figure.title,
        value_text(latest, figure.unit),
        history.join(" · ")
    )
}

/// `+14 %`, `−3 %`, with **worse** after it when the change goes the wrong way by more than the
/// figure's spread.
pub fn change_text(figure: &Figure, before: f64, latest: f64) -> String {
    let worse_way = match figure.better {
        Better::Lower => latest > before,
        Better::Higher => latest < before,
    };
    if before == 0.0 {
        return match (latest == 0.0, worse_way) {
            (true, _) => "±0 %".to_string(),
            (false, true) => "from 0, **worse**".to_string(),
            (false, false) => "from 0".to_string(),
        };
    }
    let pct = (latest - before) / before.abs() * 100.0;
    let sign = if pct > 0.0 {
        "+"
    } else if pct < 0.0 {
        "−"
    } else {
        "±"
    };
    let mut text = format!("{sign}{:.0} %", pct.abs());
    if worse_way && pct.abs() > figure.noise_pct {
        text.push_str(", **worse**");
    }
    text
}

/// `; machine 40 % slower` when the machine's own figure moved by 5 % or more between the two
/// runs (nothing when it did not, or when either run did not time it).
fn machine_text(before: &Run, latest: &Run) -> String {
    let (Some(b), Some(l)) = (MACHINE.value_in(before), MACHINE.value_in(latest)) else {
        return String::new();
    };
    if b <= 0.0 {
        return String::new();
    }
    let pct = (l - b) / b * 100.0;
    match pct {
        p if p >= 5.0 => format!("; machine {p:.0} % slower"),
        p if p <= -5.0 => format!("; machine {:.0} % faster", -p),
        _ => String::new(),
    }
}

fn target_text(target: Target, unit: Unit) -> String {
    match target {
        Target::Below(t) => format!("< {}", value_text(t, unit)),
        Target::AtMost(t) => format!("≤ {}", value_text(t, unit)),
        Target::AtLeast(t) => format!("≥ {}", value_text(t, unit)),
        Target::State => "state it".to_string(),
    }
}

/// A value with its unit.
pub fn value_text(value: f64, unit: Unit) -> String {
    let n = number(value, unit);
    match unit {
        Unit::Ms => format!("{n} ms"),
        Unit::Ns => format!("{n} ns"),
        Unit::CorePct => format!("{n} % of a core"),
        Unit::Pct => format!("{n} %"),
        Unit::MiB => format!("{n} MiB"),
        Unit::KiB => format!("{n} KiB"),
        Unit::Bytes => format!("{n} KB"),
        Unit::MLinesPerSec => format!("{n}M lines/s"),
        Unit::PerSec => format!("{n} /s"),
        Unit::Count => n,
    }
}

/// A value without its unit: bytes in KB to one decimal, others to three significant figures
/// or whole numbers with thousands separated.
pub fn number(value: f64, unit: Unit) -> String {
    if unit == Unit::Bytes {
        let tenths = (value / 100.0).round();
        let whole = (tenths / 10.0).trunc();
        return format!("{}.{}", grouped(whole), tenths - whole * 10.0);
    }
    let a = value.abs();
    if a >= 100.0 {
        let sign = if value < 0.0 { "-" } else { "" };
        format!("{sign}{}", grouped(a.round()))
    } else if a >= 10.0 {
        format!("{value:.1}")
    } else if a >= 1.0 {
        format!("{value:.2}")
    } else if a == 0.0 {
        "0".to_string()
    } else {
        format!("{value:.3}")
    }
}

/// A whole number with commas between thousands.
fn grouped(whole: f64) -> String {
    let digits = format!("{whole:.0}");
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `doc` with the part between its marker lines replaced by `block`.
pub fn splice(doc: &str, block: &str) -> Result<String, String> {
    let begin = line_start(doc, BEGIN)
        .ok_or_else(|| format!("no line starting with `{BEGIN}` to write the figures after"))?;
    let end = doc[begin..]
        .find(END)
        .map(|i| begin + i + END.len())
        .ok_or_else(|| format!("no `{END}` line after `{BEGIN}`"))?;
    let end = if doc[end..].starts_with('\n') { end + 1 } else { end };
    Ok(format!("{}{block}{}", &doc[..begin], &doc[end..]))
}

/// Where the first line starting with `prefix` starts.
fn line_start(doc: &str, prefix: &str) -> Option<usize> {
    let mut at = 0;
    for line in doc.split_inclusive('\n') {
        if line.starts_with(prefix) {
            return Some(at);
        }
        at += line.len();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::figures::{Better, Cond, Figure, Target, Unit};
    use crate::results::parse;

    const CPU: Figure = Figure {
        title: "Idle CPU",
        section: "idle",
        summary: "idle",
        when: &[],
        field: "cpu_pct",
        unit: Unit::CorePct,
        target: Target::Below(0.2),
        better: Better::Lower,
        noise_pct: 20.0,
    };
    const RATE: Figure = Figure {
        title: "Ingest rate",
        section: "http",
        summary: "http",
        when: &[Cond::Eq("concurrency", "1")],
        field: "ops_per_sec",
        unit: Unit::PerSec,
        target: Target::AtLeast(500_000.0),
        better: Better::Higher,
        noise_pct: 10.0,
    };

    fn runs(values: &[(&str, &str, &str)]) -> Vec<Run> {
        let mut text = String::new();
        for (i, (machine, commit, lines)) in values.iter().enumerate() {
            text.push_str(&format!(
                "# Vitals benchmarks, 2026-12-0{} 10:00:00 UTC\n# machine: {machine}, kernel 6\n\
                 # server: x, main at {commit}\n{lines}\n",
                i + 1
            ));
        }
        parse(&text)
    }

    #[test]
    fn a_row_gives_latest_verdict_the_run_before_and_the_history() {
        let r = runs(&[
            ("AMD", "a1", "## idle: x\nsummary idle cpu_pct=0.10"),
            ("Intel", "b2", "## idle: x\nsummary idle cpu_pct=0.90"),
            ("AMD", "c3", "## idle: x\nsummary idle cpu_pct=0.12"),
            ("AMD", "d4", "## fanout: x\nsummary fanout p99_ms=1"),
            ("AMD", "e5", "## idle: x\nsummary idle cpu_pct=0.25"),
        ]);
        let row = row(&CPU, &r);
        assert_eq!(
            row,
            "| Idle CPU | < 0.200 % of a core | 0.250 % of a core | **missed** | 2026-12-05 10:00, e5 \
             | 0.120 % of a core | +108 %, **worse** | 0.100 · 0.120 · 0.250 |\n",
            "the Intel run is another machine's; the fanout run has no such figure"
        );
    }

    #[test]
    fn a_change_says_how_the_machine_moved_between_the_two_runs() {
        let machine = |ms: u32, cpu: f64| {
            format!("## machine: x\nsummary machine cpu_ms={ms}\n## idle: x\nsummary idle cpu_pct={cpu}")
        };
        let (a, b, c) = (machine(100, 0.10), machine(160, 0.15), machine(162, 0.15));
        let r = runs(&[
            ("AMD", "a1", &a),
            ("AMD", "b2", &b),
            ("AMD", "c3", &c),
            ("AMD", "d4", "## idle: x\nsummary idle cpu_pct=0.12"),
        ]);
        let first = row(&CPU, &r[..2]);
        assert!(first.contains("| +50 %, **worse**; machine 60 % slower |"), "{first}");
        assert!(row(&CPU, &r[..3]).contains("| ±0 % |"), "within 5 %: not said");
        assert!(row(&CPU, &r).contains("| −20 % |"), "the latest run did not time it");
        let speed = row(&MACHINE, &r[..2]);
        assert!(speed.contains("| +60 %, **worse** |"), "{speed}");
    }

    #[test]
    fn a_change_is_worse_only_the_wrong_way_and_beyond_the_spread() {
        assert_eq!(change_text(&CPU, 0.10, 0.11), "+10 %", "within the 20 % spread");
        assert_eq!(change_text(&CPU, 0.10, 0.05), "−50 %", "lower is better");
        assert_eq!(change_text(&CPU, 0.10, 0.13), "+30 %, **worse**");
        assert_eq!(change_text(&RATE, 1000.0, 1200.0), "+20 %", "higher is better");
        assert_eq!(change_text(&RATE, 1000.0, 800.0), "−20 %, **worse**");
        assert_eq!(change_text(&CPU, 0.0, 0.0), "±0 %");
        assert_eq!(change_text(&CPU, 0.0, 0.1), "from 0, **worse**");
    }

    #[test]
    fn a_figure_not_in_the_record_says_so() {
        let r = runs(&[("AMD", "a1", "## http: x\nsummary http concurrency=4 ops_per_sec=9")]);
        assert_eq!(
            row(&RATE, &r),
            "| Ingest rate | ≥ 500,000 /s | not in the record yet | | | | | |\n"
        );
    }

    #[test]
    fn numbers_read_as_the_tables_write_them() {
        assert_eq!(value_text(487_975.0, Unit::Bytes), "488.0 KB");
        assert_eq!(value_text(1_038_296.0, Unit::Bytes), "1,038.3 KB");
        assert_eq!(value_text(1_342_946.0, Unit::PerSec), "1,342,946 /s");
        assert_eq!(value_text(137.6, Unit::Ms), "138 ms");
        assert_eq!(value_text(20.37, Unit::Ms), "20.4 ms");
        assert_eq!(value_text(5.0, Unit::MLinesPerSec), "5.00M lines/s");
        assert_eq!(value_text(0.071, Unit::Ms), "0.071 ms");
        assert_eq!(value_text(0.0, Unit::Count), "0");
    }

    #[test]
    fn the_splice_replaces_only_the_generated_part() {
        let doc = "# Benchmarks\n\nprose\n<!-- bench-report:begin: old -->\nold table\n\
                   <!-- bench-report:end -->\n\n## Machine\n";
        let block = "<!-- bench-report:begin: new -->\nnew table\n<!-- bench-report:end -->\n";
        let out = splice(doc, block).unwrap();
        assert_eq!(out, format!("# Benchmarks\n\nprose\n{block}\n## Machine\n"));
        assert_eq!(splice(&out, block).unwrap(), out, "writing it again changes nothing");
        assert!(splice("# Benchmarks\n", block).unwrap_err().contains("no line starting"));
        let no_end = "<!-- bench-report:begin -->\nx\n";
        assert!(splice(no_end, block).unwrap_err().contains("bench-report:end"));
    }
}
