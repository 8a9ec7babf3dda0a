//! How each report section reads: tables for figures, the `charts` module's SVG for series
//! (the same charts as the Operations and Dashboard pages), and a sentence when a section has
//! nothing to show.

use leptos::prelude::*;

use crate::charts::{
    cpu_memory_chart, error_rate_chart, fixed, latency_histogram_chart, latency_over_time_chart,
    rfc3339_utc, signed, throughput_chart, TimeWindow,
};
use crate::components::metric_card::format_ms;
use crate::components::sort::SortHeader;
use crate::model::ops::{sort_operations, LatencyPoint, SortKey};
use crate::model::reports::{
    AlertsSection, Comparison, ComparisonRow, DistributionsSection, ErrorsSection, HostSection,
    LatencySection, OperationRow, OperationsSection, QuantileChange, RecommendationsSection,
    Section, SectionBody, Summary, TargetResult, ThroughputSection,
};

/// One computed section.
pub fn section_view(section: Section) -> AnyView {
    if let Some(empty) = &section.empty {
        return view! { <p class="muted" data-testid="section-empty">{empty.clone()}</p> }
            .into_any();
    }
    let window = TimeWindow::between(section.from_ms, section.to_ms);
    match section.body {
        SectionBody::Summary(s) => summary(s).into_any(),
        SectionBody::Operations(OperationsSection { rows, apdex_t_ms, left_out }) => view! {
            <OperationsTable rows apdex_t_ms />
            {(left_out > 0).then(|| view! { <p class="muted">{format!("{left_out} quieter operations are left out.")}</p> })}
        }
        .into_any(),
        SectionBody::Latency(LatencySection { step_ms, series }) => series
            .into_iter()
            .map(|s| {
                let points: Vec<LatencyPoint> =
                    s.points.iter().map(|p| p.latency(step_ms)).collect();
                chart(&s.name, latency_over_time_chart(&points, window))
            })
            .collect_view()
            .into_any(),
        SectionBody::Throughput(ThroughputSection { step_ms, points }) => {
            let points: Vec<LatencyPoint> = points
                .iter()
                .map(|p| LatencyPoint {
                    at_ms: p.at_ms,
                    bucket_secs: step_ms / 1000,
                    count: p.count,
                    errors: p.errors,
                    p50_ms: 0.0,
                    p95_ms: 0.0,
                    p99_ms: 0.0,
                })
                .collect();
            view! {
                {chart("Throughput", throughput_chart(&points, window))}
                {chart("Error rate", error_rate_chart(&points, window))}
            }
            .into_any()
        }
        SectionBody::Distributions(DistributionsSection { histograms }) => histograms
            .into_iter()
            .map(|h| chart(&format!("{} ({} samples)", h.name, h.count), latency_histogram_chart(&h.bins)))
            .collect_view()
            .into_any(),
        SectionBody::Errors(ErrorsSection { rows }) => view! {
            <table class="data" data-testid="report-errors">
                <thead><tr>
                    <th>"Operation"</th><th>"Tags"</th><th>"Count"</th><th>"Errors"</th><th>"Error rate"</th>
                    <th title="The failed samples' mean duration: fast failures were refused early, slow ones waited for a timeout">"Failures' mean"</th>
                    <th>"Successes' mean"</th>
                </tr></thead>
                <tbody>
                    {rows.into_iter().map(|r| {
                        let tags: Vec<String> = r.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
                        view! {
                            <tr>
                                <td class="name">{r.name}</td>
                                <td>{tags.join(" ")}</td>
                                <td>{r.count}</td>
                                <td>{r.errors}</td>
                                <td>{format!("{} %", fixed(r.error_pct, 2))}</td>
                                <td data-col="failed-mean">{format_ms(r.failed_mean_ms.unwrap_or(f64::NAN))}</td>
                                <td data-col="ok-mean">{format_ms(r.ok_mean_ms.unwrap_or(f64::NAN))}</td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
        }
        .into_any(),
        SectionBody::Host(HostSection { fields, points, .. }) => {
            let at = |name: &str| fields.iter().position(|f| f == name);
            let (cpu, mem) = (at("cpu_pct"), at("memory_pct"));
            let pick = |p: &crate::model::history::HostPoint, i: Option<usize>| {
                i.and_then(|i| p.mean.get(i).copied().flatten()).unwrap_or(f64::NAN) as f32
            };
            let rows: Vec<(u64, f32, f32)> =
                points.iter().map(|p| (p.at_ms, pick(p, cpu), pick(p, mem))).collect();
            chart("CPU and memory (mean per step)", cpu_memory_chart(&rows, window)).into_any()
        }
        SectionBody::Alerts(AlertsSection { events, truncated }) => view! {
            <table class="data" data-testid="report-alerts">
                <thead><tr><th>"Fired at"</th><th>"Rule"</th><th>"Series"</th><th>"Severity"</th><th>"Value"</th></tr></thead>
                <tbody>
                    {events.into_iter().map(|e| view! {
                        <tr>
                            <td>{rfc3339_utc(e.at_ms)}</td>
                            <td>{e.rule}</td>
                            <td class="name">{e.series}</td>
                            <td>{e.severity.map(|s| s.as_str()).unwrap_or("")}</td>
                            <td>{e.value.map(|v| fixed(v, 2)).unwrap_or_default()}</td>
                        </tr>
                    }).collect_view()}
                </tbody>
            </table>
            {truncated.then(|| view! { <p class="muted">"More fired than are listed: narrow the range."</p> })}
        }
        .into_any(),
        SectionBody::Recommendations(RecommendationsSection { items }) => view! {
            <ul class="recommendations" data-testid="report-recommendations">
                {items.into_iter().map(|r| view! {
                    <li>
                        <strong>{r.title}</strong>
                        " — "{r.findings.join(" ")}
                        <p class="muted">{r.suggestion}</p>
                    </li>
                }).collect_view()}
            </ul>
        }
        .into_any(),
        SectionBody::Comparison(c) => comparison(*c).into_any(),
        SectionBody::NotAsked => ().into_any(),
    }
}

/// The sortable columns of a report's Operations table (Class and Apdex are not).
const COLUMNS: [(SortKey, &str); 9] = [
    (SortKey::Name, "Operation"),
    (SortKey::Count, "Count"),
    (SortKey::Rate, "Rate /min"),
    (SortKey::Success, "Success"),
    (SortKey::P50, "p50"),
    (SortKey::P90, "p90"),
    (SortKey::P95, "p95"),
    (SortKey::P99, "p99"),
    (SortKey::Max, "Max"),
];

/// The Operations section's table, busiest first, sortable by any figure on the page (the
/// export and `?full=1` show the server's order: busiest first).
#[component]
fn OperationsTable(rows: Vec<OperationRow>, apdex_t_ms: f64) -> impl IntoView {
    let sort = RwSignal::new((SortKey::Count, true));
    let sorted = Memo::new(move |_| {
        let mut rows = rows.clone();
        let (key, descending) = sort.get();
        sort_operations(&mut rows, key, descending);
        rows
    });
    view! {
        <table class="data" data-testid="report-ops">
            <thead><tr>
                {COLUMNS
                    .into_iter()
                    .map(|(key, label)| view! { <SortHeader key label=label.to_string() sort /> })
                    .collect_view()}
                <th>"Class"</th><th>{format!("Apdex (T = {})", format_ms(apdex_t_ms))}</th>
            </tr></thead>
            <tbody>
                {move || sorted.get().into_iter().map(|r| view! {
                    <tr data-testid="report-op-row" data-name=r.name.clone()>
                        <td class="name">{r.name.clone()}</td>
                        <td>{r.count}</td>
                        <td>{fixed(r.rate_per_min, 1)}</td>
                        <td>{format!("{} %", fixed(r.success_pct, 1))}</td>
                        <td>{format_ms(r.p50_ms)}</td>
                        <td>{format_ms(r.p90_ms)}</td>
                        <td>{format_ms(r.p95_ms)}</td>
                        <td>{format_ms(r.p99_ms)}</td>
                        <td>{format_ms(r.max_ms)}</td>
                        <td><span class=format!("class-badge class-{}", r.latency_class.as_str())>{r.latency_class.as_str()}</span></td>
                        <td>{fixed(r.apdex, 2)}</td>
                    </tr>
                }).collect_view()}
            </tbody>
        </table>
    }
}

fn chart(title: &str, svg: String) -> impl IntoView {
    view! {
        <figure class="report-chart">
            <figcaption>{title.to_string()}</figcaption>
            <div class="chart-svg" inner_html=svg></div>
        </figure>
    }
}

fn summary(s: Summary) -> impl IntoView {
    let passed = s.targets.iter().filter(|t| t.passed).count();
    let total = s.targets.len();
    view! {
        <dl class="report-headline" data-testid="report-headline">
            <div><dt>"Operations"</dt><dd>{s.operations}</dd></div>
            <div><dt>"Samples"</dt><dd data-testid="headline-count">{s.count}</dd></div>
            <div><dt>"Rate"</dt><dd>{format!("{} /min", fixed(s.rate_per_min, 1))}</dd></div>
            <div><dt>"Errors"</dt><dd>{format!("{} %", fixed(s.error_pct, 2))}</dd></div>
            <div><dt>"p50"</dt><dd>{format_ms(s.p50_ms)}</dd></div>
            <div><dt>"p95"</dt><dd>{format_ms(s.p95_ms)}</dd></div>
            <div><dt>"p99"</dt><dd>{format_ms(s.p99_ms)}</dd></div>
            <div><dt>"Verdict"</dt><dd><span class=format!("class-badge class-{}", s.latency_class.as_str())>{s.latency_class.as_str()}</span></dd></div>
        </dl>
        {(total > 0).then(|| {
            let (missed, met): (Vec<_>, Vec<_>) = s.targets.into_iter().partition(|t| !t.passed);
            let shown = met.len();
            view! {
                <p>{format!("Alert targets: {passed} of {total} met.")}</p>
                {(!missed.is_empty()).then(|| targets_table(missed, "report-targets-missed"))}
                // The met targets are there to read, but folded: a report over many operations
                // would otherwise open on a screenful of "met" rows (and lay them all out first).
                {(shown > 0).then(|| view! {
                    <details class="report-targets-met" data-testid="report-targets-met">
                        <summary>{format!("The {shown} met target{}", if shown == 1 { "" } else { "s" })}</summary>
                        {targets_table(met, "report-targets")}
                    </details>
                })}
            }
        })}
    }
}

/// Alert targets with their figure over the range, met or missed.
fn targets_table(targets: Vec<TargetResult>, testid: &'static str) -> impl IntoView {
    view! {
        <table class="data" data-testid=testid>
            <thead><tr><th>"Rule"</th><th>"Operation"</th><th>"Target"</th><th>"Over the range"</th><th>""</th></tr></thead>
            <tbody>
                {targets.into_iter().map(|t| view! {
                    <tr>
                        <td>{t.rule}</td>
                        <td class="name">{t.series}</td>
                        <td>{t.target}</td>
                        <td>{fixed(t.value, 2)}</td>
                        <td>{if t.passed { "met" } else { "missed" }}</td>
                    </tr>
                }).collect_view()}
            </tbody>
        </table>
    }
}

fn change_cell(q: &QuantileChange) -> impl IntoView {
    let change = q.change_pct.map(|c| format!("{} %", signed(c, 1))).unwrap_or_else(|| "–".into());
    let interval = q
        .interval_pct
        .map(|(lo, hi)| format!("[{}, {}]", signed(lo, 1), signed(hi, 1)))
        .unwrap_or_default();
    let p = q.p_value.map(|p| format!("p = {}", fixed(p, 3))).unwrap_or_default();
    let title = format!("{interval} {p}");
    view! {
        <td>{format_ms(q.before_ms)}</td>
        <td>{format_ms(q.after_ms)}</td>
        <td title=title>{change}" "<span class="muted">{interval}</span></td>
        <td data-testid="verdict" class=format!("verdict verdict-{}", q.verdict.as_str().replace(' ', "-").replace('~', "none"))>{q.verdict.as_str()}</td>
    }
}

/// A comparison's table (a report's Comparison section, and the tag comparison of `/reports`).
pub fn comparison(c: Comparison) -> impl IntoView {
    let row = |r: ComparisonRow| {
        view! {
            <tr data-testid="compare-row" data-name=r.name.clone()>
                <td class="name">{r.name.clone()}</td>
                <td>{r.before_count}" → "{r.after_count}</td>
                {change_cell(&r.p95)}
                {change_cell(&r.p99)}
                <td>{r.windows_before}" / "{r.windows_after}</td>
            </tr>
        }
    };
    let geo =
        |v: Option<f64>| v.map(|v| format!("{} %", signed(v, 1))).unwrap_or_else(|| "–".into());
    view! {
        <p class="muted">
            {format!("Before {} – {}{}; after {} – {}{}.",
                rfc3339_utc(c.before.from_ms), rfc3339_utc(c.before.to_ms),
                c.before.tag.as_ref().map(|t| format!(" ({t})")).unwrap_or_default(),
                rfc3339_utc(c.after.from_ms), rfc3339_utc(c.after.to_ms),
                c.after.tag.as_ref().map(|t| format!(" ({t})")).unwrap_or_default())}
        </p>
        <table class="data" data-testid="report-comparison">
            <thead><tr>
                <th>"Operation"</th><th>"Count"</th>
                <th>"p95 before"</th><th>"p95 after"</th><th>"Change (95 % CI)"</th><th>"Verdict"</th>
                <th>"p99 before"</th><th>"p99 after"</th><th>"Change (95 % CI)"</th><th>"Verdict"</th>
                <th>"Windows"</th>
            </tr></thead>
            <tbody>
                {c.rows.into_iter().map(row).collect_view()}
                <tr class="geomean">
                    <td>"Geometric mean"</td><td></td>
                    <td></td><td></td><td>{geo(c.geomean_p95_pct)}</td><td></td>
                    <td></td><td></td><td>{geo(c.geomean_p99_pct)}</td><td></td><td></td>
                </tr>
            </tbody>
        </table>
        <p class="muted method">{c.method}</p>
    }
}
