//! The figures BENCHMARKS.md keeps for every run of `bench/run`: which `summary` line and field
//! each one is, its unit, its target (from the issues that set them), and which way is better.
//! Adding a benchmark's headline figure means adding it here.

use crate::results::{Run, Summary};

/// Which way a figure improves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Better {
    Lower,
    Higher,
}

/// What a figure must be.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Target {
    Below(f64),
    AtMost(f64),
    AtLeast(f64),
    /// No target: the figure is stated (and its history kept).
    State,
}

impl Target {
    /// Whether `value` meets it (`None` without a target).
    pub fn met(self, value: f64) -> Option<bool> {
        match self {
            Target::Below(t) => Some(value < t),
            Target::AtMost(t) => Some(value <= t),
            Target::AtLeast(t) => Some(value >= t),
            Target::State => None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    Ms,
    Ns,
    /// Per cent of one core.
    CorePct,
    Pct,
    MiB,
    KiB,
    /// Shown in KB (1,000 bytes), as the bundle's and pages' figures are.
    Bytes,
    MLinesPerSec,
    PerSec,
    Count,
}

/// Which summary lines a figure reads.
#[derive(Clone, Copy, Debug)]
pub enum Cond {
    /// `key=value`.
    Eq(&'static str, &'static str),
    /// `key=value`, or no `key` at all (lines written before the key existed).
    EqOrMissing(&'static str, &'static str),
    /// `key`'s value ends with the text.
    EndsWith(&'static str, &'static str),
    /// `key` is a number above zero.
    Positive(&'static str),
    /// `key` is zero.
    Zero(&'static str),
    /// A bare word after the summary's name (`startup cold`).
    Word(&'static str),
}

impl Cond {
    fn holds(self, s: &Summary) -> bool {
        match self {
            Cond::Eq(k, v) => s.get(k) == Some(v),
            Cond::EqOrMissing(k, v) => s.get(k).is_none_or(|got| got == v),
            Cond::EndsWith(k, end) => s.get(k).is_some_and(|got| got.ends_with(end)),
            Cond::Positive(k) => s.number(k).is_some_and(|n| n > 0.0),
            Cond::Zero(k) => s.number(k) == Some(0.0),
            Cond::Word(w) => s.words.iter().any(|got| got == w),
        }
    }
}

/// One figure of the table.
#[derive(Clone, Copy, Debug)]
pub struct Figure {
    /// What it is, as the table's first column says it.
    pub title: &'static str,
    /// The `## ` section (scenario) of `bench/run` it is measured in.
    pub section: &'static str,
    /// The word after `summary`.
    pub summary: &'static str,
    pub when: &'static [Cond],
    /// The field read.
    pub field: &'static str,
    pub unit: Unit,
    pub target: Target,
    pub better: Better,
    /// A change in the wrong direction larger than this (per cent of the value before) is marked
    /// as a regression; smaller ones are within this VM's run-to-run spread.
    pub noise_pct: f64,
}

impl Figure {
    /// Its value in `run`: the median over the run's matching lines (a scenario that repeats a
    /// measurement, as the in-process alert storm does five times), `None` if it has none.
    pub fn value_in(&self, run: &Run) -> Option<f64> {
        let mut values: Vec<f64> = run
            .summaries
            .iter()
            .filter(|s| s.section == self.section && s.name == self.summary)
            .filter(|s| self.when.iter().all(|c| c.holds(s)))
            .filter_map(|s| s.number(self.field))
            .collect();
        if values.is_empty() {
            return None;
        }
        values.sort_by(f64::total_cmp);
        let mid = values.len() / 2;
        Some(if values.len() % 2 == 1 {
            values[mid]
        } else {
            (values[mid - 1] + values[mid]) / 2.0
        })
    }
}

/// A figure read from `field` of the `summary` lines of `section`, with no condition, lower
/// being better (higher when the target is a floor), and a spread of 20 %.
const fn fig(
    title: &'static str,
    section: &'static str,
    summary: &'static str,
    field: &'static str,
    unit: Unit,
    target: Target,
) -> Figure {
    let better = if let Target::AtLeast(_) = target { Better::Higher } else { Better::Lower };
    Figure { title, section, summary, when: &[], field, unit, target, better, noise_pct: 20.0 }
}

impl Figure {
    /// Only the lines that meet every one of `when`.
    const fn when(self, when: &'static [Cond]) -> Figure {
        Figure { when, ..self }
    }

    /// A usual spread of `noise_pct` per cent instead of 20.
    const fn noise(self, noise_pct: f64) -> Figure {
        Figure { noise_pct, ..self }
    }

    /// Better the other way (for a figure without a target).
    const fn higher_is_better(self) -> Figure {
        Figure { better: Better::Higher, ..self }
    }
}

use Cond::{EndsWith, Eq, EqOrMissing, Positive, Word, Zero};
use Target::{AtLeast, AtMost, Below, State};
use Unit::*;

/// A page's cold first paint and the bytes it loads until hydrated (`bench/run pages`, and
/// `peers` for Glances and Netdata, which have no hydration: their bytes are until `load`).
macro_rules! page {
    ($section:literal, $label:literal, $title:literal, $fcp:expr) => {
        [
            fig(
                concat!($title, ": first contentful paint, cold"),
                $section,
                "page",
                "cold_fcp_ms",
                Ms,
                $fcp,
            )
            .when(&[Eq("label", $label)])
            .noise(25.0),
            fig(
                concat!($title, ": bytes loaded, cold"),
                $section,
                "page",
                "cold_bytes",
                Bytes,
                State,
            )
            .when(&[Eq("label", $label)])
            .noise(3.0),
        ]
    };
}

const PAGES: [[Figure; 2]; 7] = [
    page!("pages", "Dashboard", "Dashboard", Below(100.0)),
    page!("pages", "Operations", "Operations page", State),
    page!("pages", "Alerts", "Alerts page", State),
    page!("pages", "Reports", "Reports page", State),
    page!("pages", "Report", "A report's page", Below(150.0)),
    page!("peers", "Glances", "Glances (peer)", State),
    page!("peers", "Netdata", "Netdata (peer)", State),
];

/// How fast the machine was during a run: `bench/run` times a fixed one-thread workload first
/// (`calibrate`). Other figures' changes are read beside it.
pub const MACHINE: Figure = fig(
    "Machine: a fixed one-thread CPU workload (lower is faster)",
    "machine",
    "machine",
    "cpu_ms",
    Ms,
    State,
)
.noise(10.0);

const QUERY_1H: &str = "/api/v1/operations?window=1h";
const STATSD_SUSTAINED: &[Cond] = &[Eq("rate", "5000000"), Eq("lines", "10000000")];

/// Every figure, in the order of the table.
pub fn all() -> Vec<Figure> {
    let mut figures = vec![
        MACHINE,
        fig("Idle: CPU, no viewers, 1 Hz", "idle", "idle", "cpu_pct", CorePct, Below(0.2))
            .noise(30.0),
        fig("Idle: memory (highest RSS)", "idle", "idle", "rss_mib_max", MiB, Below(20.0))
            .noise(10.0),
        fig(
            "One viewer: the Dashboard's stream per 10 s",
            "viewer",
            "viewer",
            "ws_kib",
            KiB,
            Below(10.0),
        )
        .when(&[EndsWith("url", "/ws"), Eq("loaded_operations", "0"), Eq("secs", "10")])
        .noise(10.0),
        fig(
            "One viewer: the Dashboard's snapshot (90 samples)",
            "viewer",
            "viewer",
            "snapshot_bytes",
            Bytes,
            State,
        )
        .when(&[EndsWith("url", "history=90")])
        .noise(10.0),
        fig(
            "Bundle: shared part (all the Dashboard loads), gzip",
            "bundle",
            "bundle",
            "shared_gz",
            Bytes,
            State,
        )
        .noise(1.0),
        fig("Bundle: the whole app, gzip", "bundle", "bundle", "all_gz", Bytes, AtMost(300_000.0))
            .noise(1.0),
        fig(
            "Bundle: a minimal Leptos app shaped like the Dashboard (bench/leptos-floor), gzip -9",
            "leptos-floor",
            "leptos-floor",
            "gz",
            Bytes,
            State,
        )
        .noise(1.0),
        fig(
            "Bundle: the same minimal app as Leptos islands (bench/leptos-floor), gzip -9",
            "leptos-floor",
            "leptos-floor",
            "islands_gz",
            Bytes,
            State,
        )
        .noise(1.0),
    ];
    figures.push(
        fig(
            "Page floor (a one-heading static page): first contentful paint, cold",
            "pages",
            "page",
            "floor_cold_fcp_ms",
            Ms,
            State,
        )
        .when(&[Eq("label", "Dashboard")])
        .noise(25.0),
    );
    figures.extend(PAGES.iter().flatten().copied());
    figures.extend([
        fig("Fan-out: 1,000 clients, tick-to-receive p99", "fanout", "fanout", "p99_ms", Ms, State)
            .when(&[Eq("clients", "1000")])
            .noise(30.0),
        fig(
            "Fan-out: 10,000 clients, tick-to-receive p99",
            "fanout",
            "fanout",
            "p99_ms",
            Ms,
            Below(100.0),
        )
        .when(&[Eq("clients", "10000")])
        .noise(15.0),
        fig(
            "Fan-out: 10,000 clients, server RSS",
            "fanout",
            "fanout",
            "server_rss_mib",
            MiB,
            State,
        )
        .when(&[Eq("clients", "10000")])
        .noise(10.0),
        fig(
            "StatsD: 10M lines offered at 5M/s, ingested",
            "statsd",
            "statsd",
            "ingested_mlps",
            MLinesPerSec,
            AtLeast(5.0),
        )
        .when(STATSD_SUSTAINED)
        .noise(3.0),
        fig(
            "StatsD: 10M lines offered at 5M/s, lost",
            "statsd",
            "statsd",
            "loss_pct",
            Pct,
            AtMost(0.0),
        )
        .when(STATSD_SUSTAINED)
        .noise(0.0),
        fig(
            "StatsD: 10M lines offered at 5M/s, CPU per line",
            "statsd",
            "statsd",
            "cpu_ns_per_line",
            Ns,
            AtMost(150.0),
        )
        .when(STATSD_SUSTAINED)
        .noise(15.0),
        fig(
            "StatsD: 10M lines flat out, ingested",
            "statsd",
            "statsd",
            "ingested_mlps",
            MLinesPerSec,
            State,
        )
        .when(&[Eq("rate", "max"), Eq("lines", "10000000")])
        .higher_is_better()
        .noise(10.0),
        fig(
            "HTTP ingest: batches of 1,000, one connection",
            "http",
            "http",
            "ops_per_sec",
            PerSec,
            AtLeast(500_000.0),
        )
        .when(&[EqOrMissing("format", "json"), Eq("concurrency", "1")])
        .noise(15.0),
        fig(
            "OTLP/HTTP ingest: batches of 512 spans, one connection",
            "otlp",
            "http",
            "ops_per_sec",
            PerSec,
            AtLeast(500_000.0),
        )
        .when(&[Eq("format", "otlp"), Eq("concurrency", "1")])
        .noise(15.0),
        fig(
            "Operations query, 1,000 held, window 1h: p99",
            "query",
            "query",
            "p99_ms",
            Ms,
            Below(20.0),
        )
        .when(&[Eq("path", QUERY_1H)])
        .noise(30.0),
        fig(
            "The same query while StatsD ingests 1M lines/s: p99",
            "query-ingest",
            "query",
            "p99_ms",
            Ms,
            Below(20.0),
        )
        .when(&[Eq("path", QUERY_1H)])
        .noise(30.0),
        fig(
            "Prometheus /metrics, 1,000 operations held: p99",
            "metrics",
            "query",
            "p99_ms",
            Ms,
            Below(20.0),
        )
        .when(&[Eq("path", "/metrics")])
        .noise(30.0),
        fig(
            "Alerts: one evaluation, 10 rules x 1,000 operations, storm (server, CPU p50)",
            "alerts",
            "alert-eval",
            "cpu_p50_ms",
            Ms,
            Below(1.0),
        )
        .when(&[Positive("instances_listed")]),
        fig(
            "Alerts: the same rules, no alert changing (server, CPU p50)",
            "alerts",
            "alert-eval",
            "cpu_p50_ms",
            Ms,
            Below(1.0),
        )
        .when(&[Zero("instances_listed")]),
        fig(
            "Alerts: the storm in process (CPU p50, median of 5 runs)",
            "alerts",
            "alert-storm",
            "cpu_p50_ms",
            Ms,
            Below(1.0),
        )
        .when(&[Positive("alerts_held")]),
        fig(
            "Alerts: the storm's evaluation with 5,000 live viewers (server, CPU p50)",
            "alerts-viewers",
            "alert-eval",
            "cpu_p50_ms",
            Ms,
            Below(1.0),
        )
        .noise(30.0),
        fig(
            "Alerts: 5,000 live viewers during the storm, tick-to-receive p99",
            "alerts-viewers",
            "fanout",
            "p99_ms",
            Ms,
            State,
        )
        .noise(30.0),
        fig(
            "Alerts: breach to webhook receipt, p99",
            "alerts",
            "alert-breach",
            "p99_ms",
            Ms,
            Below(1500.0),
        )
        .noise(5.0),
        fig(
            "Reports: every section over 1h x 1,000 operations, cold (median)",
            "reports",
            "report",
            "cold_p50_ms",
            Ms,
            Below(300.0),
        ),
        fig(
            "Reports: the same report cached, p50",
            "reports",
            "report",
            "cached_p50_ms",
            Ms,
            Below(5.0),
        )
        .noise(30.0),
        fig(
            "Reports: HTML export, 50 operations",
            "reports",
            "report",
            "html_50_bytes",
            Bytes,
            Below(1_000_000.0),
        )
        .noise(5.0),
        fig(
            "Reports: a section appears after scrolling to it, p90",
            "reports",
            "report-scroll",
            "p90_ms",
            Ms,
            Below(100.0),
        )
        .noise(40.0),
        fig(
            "Reports: a report page's first paint, cold (median)",
            "reports",
            "report-scroll",
            "fcp_cold_median_ms",
            Ms,
            Below(150.0),
        )
        .noise(25.0),
        fig(
            "History store: extra CPU, 1,000 series at 10,000 timings/s",
            "store-write",
            "store-write",
            "extra_pct",
            CorePct,
            Below(2.0),
        )
        .noise(30.0),
        fig(
            "History store: one operation over 24 h at 1-minute steps, p99",
            "store-query",
            "store-query",
            "p99_ms",
            Ms,
            Below(20.0),
        )
        .when(&[EndsWith("path", "from=-24h&to=now&step=1m")])
        .noise(30.0),
        fig(
            "History store: one operation over 30 days, p99",
            "store-query",
            "store-query",
            "p99_ms",
            Ms,
            Below(50.0),
        )
        .when(&[EndsWith("path", "from=-30d&to=now&step=1h")])
        .noise(30.0),
        fig(
            "History store: 1,000 operations summarised over 7 days, p99",
            "store-query",
            "store-query",
            "p99_ms",
            Ms,
            Below(200.0),
        )
        .when(&[EndsWith("path", "from=-7d&to=now&limit=1000")])
        .noise(30.0),
        fig(
            "History store: start-up with a 1.1 GiB store, cold (median)",
            "store-startup",
            "startup",
            "median_ms",
            Ms,
            Below(1000.0),
        )
        .when(&[Word("cold")])
        .noise(30.0),
        fig(
            "Soak: an hour of hostile traffic, highest RSS",
            "soak",
            "soak",
            "rss_max_mib",
            MiB,
            Below(64.0),
        )
        .noise(5.0),
        fig("Soak: failed probes", "soak", "soak", "failed_probes", Count, AtMost(0.0)).noise(0.0),
    ]);
    figures
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::parse;

    fn run(lines: &str) -> Run {
        let text = format!("# Vitals benchmarks, 2026-12-06 10:00:00 UTC\n{lines}");
        parse(&text).remove(0)
    }

    fn find(title: &str) -> Figure {
        all().into_iter().find(|f| f.title == title).unwrap()
    }

    #[test]
    fn a_figure_reads_only_its_section_summary_and_conditions() {
        let r = run("## alerts: evaluation\n\
                     summary alert-eval instances_listed=4000 cpu_p50_ms=1.3\n\
                     ## alerts: quiet\n\
                     summary alert-eval instances_listed=0 cpu_p50_ms=0.6\n\
                     ## alerts-ab: pair\n\
                     summary alert-eval instances_listed=4000 cpu_p50_ms=9.9\n");
        let storm =
            find("Alerts: one evaluation, 10 rules x 1,000 operations, storm (server, CPU p50)");
        let quiet = find("Alerts: the same rules, no alert changing (server, CPU p50)");
        assert_eq!(storm.value_in(&r), Some(1.3), "the alerts-ab section is not read");
        assert_eq!(quiet.value_in(&r), Some(0.6));
        assert_eq!(find("Alerts: breach to webhook receipt, p99").value_in(&r), None);
    }

    #[test]
    fn repeated_measurements_give_their_median() {
        let r = run("## alerts: in process\n\
                     summary alert-storm alerts_held=1 cpu_p50_ms=0.9\n\
                     summary alert-storm alerts_held=0 cpu_p50_ms=0.1\n\
                     summary alert-storm alerts_held=1 cpu_p50_ms=0.7\n\
                     summary alert-storm alerts_held=1 cpu_p50_ms=0.8\n\
                     summary alert-storm alerts_held=1 cpu_p50_ms=1.6\n");
        let f = find("Alerts: the storm in process (CPU p50, median of 5 runs)");
        let median = f.value_in(&r).unwrap();
        assert!((median - 0.85).abs() < 1e-9, "median of 0.7, 0.8, 0.9, 1.6: {median}");
    }

    #[test]
    fn conditions_match_as_written() {
        let r = run("## http: batches\n\
                     summary http concurrency=4 ops_per_sec=3\n\
                     summary http concurrency=1 ops_per_sec=2\n\
                     ## otlp: spans\n\
                     summary http format=otlp concurrency=1 ops_per_sec=5\n\
                     ## viewer: one client\n\
                     summary viewer url=ws://127.0.0.1:1/ws loaded_operations=50 secs=10 ws_kib=8\n\
                     summary viewer url=ws://127.0.0.1:1/ws loaded_operations=0 secs=10 ws_kib=7\n\
                     summary viewer url=ws://127.0.0.1:1/ws?history=90 snapshot_bytes=75000\n");
        assert_eq!(find("HTTP ingest: batches of 1,000, one connection").value_in(&r), Some(2.0));
        let otlp = find("OTLP/HTTP ingest: batches of 512 spans, one connection");
        assert_eq!(otlp.value_in(&r), Some(5.0));
        assert_eq!(find("One viewer: the Dashboard's stream per 10 s").value_in(&r), Some(7.0));
        let snapshot = find("One viewer: the Dashboard's snapshot (90 samples)");
        assert_eq!(snapshot.value_in(&r), Some(75000.0));
    }

    #[test]
    fn targets_judge_their_bound() {
        assert_eq!(Below(1.0).met(0.99), Some(true));
        assert_eq!(Below(1.0).met(1.0), Some(false));
        assert_eq!(AtMost(150.0).met(150.0), Some(true));
        assert_eq!(AtLeast(5.0).met(4.99), Some(false));
        assert_eq!(State.met(1.0), None);
    }

    #[test]
    fn titles_are_unique() {
        let figures = all();
        for (i, f) in figures.iter().enumerate() {
            assert!(figures[..i].iter().all(|g| g.title != f.title), "{} twice", f.title);
        }
    }
}
