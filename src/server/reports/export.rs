//! A report as files: self-contained HTML (inline CSS and SVG, readable with JavaScript off,
//! no external URL; the same section views as the page, rendered on the server), Markdown
//! (GitHub tables, the Before / After / Change format for the comparison) and JSON.

use leptos::prelude::*;

use crate::charts::rfc3339_utc;
use crate::components::metric_card::format_ms;
use crate::model::reports::{
    AlertsSection, DistributionsSection, ErrorsSection, HostSection, LatencySection,
    OperationsSection, QuantileChange, RecommendationsSection, Report, SectionBody,
    ThroughputSection,
};
use crate::pages::reports::section_view;

/// The stylesheet the page uses, inlined into every export.
const CSS: &str = include_str!("../../../style/main.css");

/// Escapes text for HTML content and attribute values.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn range_words(report: &Report) -> String {
    let spec = &report.info.spec;
    let (from, to) =
        report.sections.first().map_or((spec.from_ms, spec.to_ms), |s| (s.from_ms, s.to_ms));
    format!("{} – {} · {}", rfc3339_utc(from), rfc3339_utc(to), spec.scope.describe())
}

/// The report as one HTML file.
pub fn html(report: &Report) -> String {
    let sections = report.sections.clone();
    let body = Owner::new().with(move || {
        view! {
            {sections
                .into_iter()
                .map(|s| {
                    let id = s.id;
                    view! {
                        <section class=format!("card report-section report-{}", id.as_str())
                            data-section=id.as_str()>
                            <h2>{id.title()}</h2>
                            {section_view(s)}
                        </section>
                    }
                })
                .collect_view()}
        }
        .to_html()
    });
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{name}</title><style>{CSS}</style></head>\
         <body><main class=\"app-main\"><section class=\"page report-page\">\
         <div class=\"page-head\"><h1>{name}</h1><p class=\"muted\">{range}</p>\
         <p class=\"muted\">Exported from Vitals at {at}.</p></div>{body}</section></main></body></html>\n",
        name = escape(&report.info.spec.name),
        range = escape(&range_words(report)),
        at = rfc3339_utc(report.sections.first().map_or(0, |s| s.computed_ms)),
    )
}

/// Text from users (names, tags, rules, globs) as Markdown: one line, and every character
/// that could start markup, a link, inline HTML or an entity escaped with a backslash (which
/// CommonMark allows before any ASCII punctuation), so it reads as the text it is.
fn cell(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '~' | '&' | '!' => {
                out.push('\\');
                out.push(c);
            }
            '\n' | '\r' => out.push(' '),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

fn change_text(q: &QuantileChange) -> String {
    let change = q.change_pct.map_or_else(|| "–".to_string(), |c| format!("{c:+.1} %"));
    match q.interval_pct {
        Some((lo, hi)) => format!("{change} [{lo:+.1}, {hi:+.1}]"),
        None => change,
    }
}

/// The report as Markdown: headline figures and every table.
pub fn markdown(report: &Report) -> String {
    let mut out = format!("# {}\n\n{}\n", cell(&report.info.spec.name), cell(&range_words(report)));
    for section in &report.sections {
        out.push_str(&format!("\n## {}\n\n", section.id.title()));
        if let Some(empty) = &section.empty {
            out.push_str(&format!("_{empty}_\n"));
            continue;
        }
        match &section.body {
            SectionBody::Summary(s) => {
                out.push_str("| Samples | Rate /min | Errors | p50 | p95 | p99 | Verdict |\n");
                out.push_str("|---:|---:|---:|---:|---:|---:|---|\n");
                out.push_str(&format!(
                    "| {} | {:.1} | {:.2} % | {} | {} | {} | {} |\n",
                    s.count,
                    s.rate_per_min,
                    s.error_pct,
                    format_ms(s.p50_ms),
                    format_ms(s.p95_ms),
                    format_ms(s.p99_ms),
                    s.latency_class.as_str()
                ));
                if !s.targets.is_empty() {
                    out.push_str("\n| Rule | Operation | Target | Over the range | |\n|---|---|---|---:|---|\n");
                    for t in &s.targets {
                        out.push_str(&format!(
                            "| {} | {} | {} | {:.2} | {} |\n",
                            cell(&t.rule),
                            cell(&t.series),
                            cell(&t.target),
                            t.value,
                            if t.passed { "met" } else { "missed" }
                        ));
                    }
                }
            }
            SectionBody::Operations(OperationsSection { rows, apdex_t_ms, left_out }) => {
                out.push_str(&format!(
                    "| Operation | Count | Rate /min | Success | p50 | p90 | p95 | p99 | Max | Class | Apdex (T = {}) |\n",
                    format_ms(*apdex_t_ms)
                ));
                out.push_str("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|\n");
                for r in rows {
                    out.push_str(&format!(
                        "| {} | {} | {:.1} | {:.1} % | {} | {} | {} | {} | {} | {} | {:.2} |\n",
                        cell(&r.name),
                        r.count,
                        r.rate_per_min,
                        r.success_pct,
                        format_ms(r.p50_ms),
                        format_ms(r.p90_ms),
                        format_ms(r.p95_ms),
                        format_ms(r.p99_ms),
                        format_ms(r.max_ms),
                        r.latency_class.as_str(),
                        r.apdex
                    ));
                }
                if *left_out > 0 {
                    out.push_str(&format!("\n{left_out} quieter operations are left out.\n"));
                }
            }
            SectionBody::Errors(ErrorsSection { rows }) => {
                out.push_str(
                    "| Operation | Tags | Count | Errors | Error rate | Failures' mean | Successes' mean |\n\
                     |---|---|---:|---:|---:|---:|---:|\n",
                );
                for r in rows {
                    let tags: Vec<String> =
                        r.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
                    out.push_str(&format!(
                        "| {} | {} | {} | {} | {:.2} % | {} | {} |\n",
                        cell(&r.name),
                        cell(&tags.join(" ")),
                        r.count,
                        r.errors,
                        r.error_pct,
                        format_ms(r.failed_mean_ms.unwrap_or(f64::NAN)),
                        format_ms(r.ok_mean_ms.unwrap_or(f64::NAN))
                    ));
                }
            }
            SectionBody::Alerts(AlertsSection { events, .. }) => {
                out.push_str("| Fired at | Rule | Series | Severity |\n|---|---|---|---|\n");
                for e in events {
                    out.push_str(&format!(
                        "| {} | {} | {} | {} |\n",
                        rfc3339_utc(e.at_ms),
                        cell(&e.rule),
                        cell(&e.series),
                        e.severity.map(|s| s.as_str()).unwrap_or("")
                    ));
                }
            }
            SectionBody::Recommendations(RecommendationsSection { items }) => {
                for r in items {
                    out.push_str(&format!(
                        "- **{}**: {} {}\n",
                        cell(&r.title),
                        cell(&r.findings.join(" ")),
                        cell(&r.suggestion)
                    ));
                }
            }
            SectionBody::Comparison(c) => {
                out.push_str("| Operation | p95 Before | p95 After | p95 Change (95 % CI) | Verdict | p99 Before | p99 After | p99 Change | Verdict |\n");
                out.push_str("|---|---:|---:|---:|---|---:|---:|---:|---|\n");
                for r in &c.rows {
                    out.push_str(&format!(
                        "| {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
                        cell(&r.name),
                        format_ms(r.p95.before_ms),
                        format_ms(r.p95.after_ms),
                        change_text(&r.p95),
                        r.p95.verdict.as_str(),
                        format_ms(r.p99.before_ms),
                        format_ms(r.p99.after_ms),
                        change_text(&r.p99),
                        r.p99.verdict.as_str()
                    ));
                }
                let geo =
                    |v: Option<f64>| v.map_or_else(|| "–".to_string(), |v| format!("{v:+.1} %"));
                out.push_str(&format!(
                    "| Geometric mean | | | {} | | | | {} | |\n\n{}\n",
                    geo(c.geomean_p95_pct),
                    geo(c.geomean_p99_pct),
                    c.method
                ));
            }
            SectionBody::Latency(LatencySection { series, .. }) => {
                out.push_str("| Operation | Steps | Highest p95 |\n|---|---:|---:|\n");
                for s in series {
                    let worst = s.points.iter().map(|p| p.p95_ms).fold(0.0, f64::max);
                    out.push_str(&format!(
                        "| {} | {} | {} |\n",
                        cell(&s.name),
                        s.points.len(),
                        format_ms(worst)
                    ));
                }
            }
            SectionBody::Throughput(ThroughputSection { points, step_ms }) => {
                let count: u64 = points.iter().map(|p| p.count).sum();
                let errors: u64 = points.iter().map(|p| p.errors).sum();
                out.push_str(&format!(
                    "{count} samples, {errors} failed, in {} steps of {} s.\n",
                    points.len(),
                    step_ms / 1000
                ));
            }
            SectionBody::Distributions(DistributionsSection { histograms }) => {
                out.push_str("| Operation | Samples | Bins |\n|---|---:|---:|\n");
                for h in histograms {
                    out.push_str(&format!(
                        "| {} | {} | {} |\n",
                        cell(&h.name),
                        h.count,
                        h.bins.len()
                    ));
                }
            }
            SectionBody::Host(HostSection { points, fields, .. }) => {
                out.push_str(&format!("{} steps of {}.\n", points.len(), fields.join(", ")));
            }
            SectionBody::NotAsked => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::cell;

    #[test]
    fn user_text_in_markdown_is_text_not_markup() {
        let hostile = "a\r<img src=x onerror=alert(1)> [x](javascript:alert(1)) *b* `c` &amp; |d";
        let md = cell(hostile);
        assert!(!md.contains('\r') && !md.contains('\n'), "{md}");
        for markup in ["<", ">", "[", "]", "*", "`", "&", "|"] {
            let bare = md.match_indices(markup).any(|(i, _)| !md[..i].ends_with('\\'));
            assert!(!bare, "{markup} unescaped in {md}");
        }
        assert_eq!(cell("api.slow"), "api.slow", "plain names stay as they are");
    }
}
