//! The Reports pages: `/reports` lists the saved reports and has the form for a new one;
//! `/reports/{id}` (`report`) shows one, its sections loading as they scroll into view.

mod report;
mod sections;

use std::collections::BTreeMap;

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_navigate;

use crate::api::reports::{create_report, delete_report, list_reports};
use crate::charts::{fixed, rfc3339_utc};
use crate::components::buttons::DeleteButton;
use crate::model::reports::{RangeArg, Refused, ReportRequest, Scope, TimeArg};
pub use report::ReportPage;
pub use sections::section_view;

mod compare;

/// The range presets of the form: label and `from` (to now).
const PRESETS: [(&str, &str); 4] =
    [("Last hour", "-1h"), ("Last 24 hours", "-24h"), ("Last 7 days", "-7d"), ("Custom", "")];

#[component]
pub fn ReportsPage() -> impl IntoView {
    let version = RwSignal::new(0u64);
    view! {
        <Title text="Reports" />
        <section class="page reports-page" data-testid="page-reports">
            <div class="page-head">
                <h1>"Reports"</h1>
                <p class="muted">"Performance over a period, rendered on the server, with before/after comparisons that state their significance"</p>
            </div>
            <NewReport version />
            <compare::CompareTags />
            <SavedReports version />
        </section>
    }
}

#[component]
fn SavedReports(version: RwSignal<u64>) -> impl IntoView {
    let list = Resource::new(move || version.get(), |_| list_reports());
    let error = RwSignal::new(None::<String>);
    let remove = Action::new(move |id: &u64| {
        let id = *id;
        async move {
            match delete_report(id).await {
                Ok(Ok(())) => version.update(|v| *v += 1),
                Ok(Err(refused)) => error.set(Some(refused.error)),
                Err(e) => error.set(Some(e.to_string())),
            }
        }
    });
    view! {
        <section class="card" data-testid="saved-reports">
            <h2>"Saved reports"</h2>
            {move || error.get().map(|e| view! { <p class="error" role="alert">{e}</p> })}
            <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || list.get().map(|answer| match answer {
                    Err(e) => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
                    Ok(list) if list.reports.is_empty() => view! {
                        <p class="muted" data-testid="reports-empty">"No reports yet: make one above."</p>
                    }.into_any(),
                    Ok(list) => view! {
                        <table class="data" data-testid="reports-table">
                            <thead><tr><th>"Name"</th><th>"Range"</th><th>"Scope"</th><th>"Created"</th><th>"Size"</th><th></th></tr></thead>
                            <tbody>
                                {list.reports.into_iter().map(|r| {
                                    let id = r.id;
                                    let range = match r.spec.live_ms {
                                        Some(ms) => format!("the last {}", crate::charts::span_words(ms as f64 / 1000.0)),
                                        None => format!("{} – {}", rfc3339_utc(r.spec.from_ms), rfc3339_utc(r.spec.to_ms)),
                                    };
                                    view! {
                                        <tr data-testid="report-row">
                                            <td class="name"><a href=format!("/reports/{id}")>{r.spec.name.clone()}</a></td>
                                            <td>{range}</td>
                                            <td>{r.spec.scope.describe()}</td>
                                            <td>{rfc3339_utc(r.created_ms)}</td>
                                            <td>{if r.size_bytes == 0 { "–".to_string() } else { format!("{} KB", fixed(r.size_bytes as f64 / 1024.0, 1)) }}</td>
                                            <td><DeleteButton testid="report-delete" busy=remove.pending() act=Callback::new(move |()| { remove.dispatch(id); }) /></td>
                                        </tr>
                                    }
                                }).collect_view()}
                            </tbody>
                        </table>
                    }.into_any(),
                })}
            </Suspense>
        </section>
    }
}

/// `key=value key2=value2` into tags; `Err` names the word that is not a pair.
fn parse_tags(text: &str) -> Result<BTreeMap<String, String>, String> {
    text.split_whitespace()
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => Err(format!("'{pair}' is not key=value")),
        })
        .collect()
}

#[component]
fn NewReport(version: RwSignal<u64>) -> impl IntoView {
    let name = RwSignal::new(String::new());
    let preset = RwSignal::new("-1h".to_string());
    let from = RwSignal::new(String::new());
    let to = RwSignal::new(String::new());
    let operations = RwSignal::new(String::new());
    let tags = RwSignal::new(String::new());
    let baseline = RwSignal::new(false);
    let refused = RwSignal::new(None::<Refused>);
    let navigate = use_navigate();
    let save = Action::new(move |request: &ReportRequest| {
        let request = request.clone();
        let navigate = navigate.clone();
        async move {
            match create_report(request).await {
                Ok(Ok(created)) => {
                    version.update(|v| *v += 1);
                    navigate(&format!("/reports/{}", created.id), Default::default());
                }
                Ok(Err(r)) => refused.set(Some(r)),
                Err(e) => refused.set(Some(Refused { field: None, error: e.to_string() })),
            }
        }
    });
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        refused.set(None);
        let custom = preset.get_untracked().is_empty();
        let (from_arg, to_arg) = if custom {
            (
                TimeArg::Text(from.get_untracked()),
                Some(TimeArg::Text(to.get_untracked()))
                    .filter(|_| !to.get_untracked().trim().is_empty()),
            )
        } else {
            (TimeArg::Text(preset.get_untracked()), None)
        };
        let tags = match parse_tags(&tags.get_untracked()) {
            Ok(t) => t,
            Err(e) => {
                refused.set(Some(Refused {
                    field: Some("scope.tags".into()),
                    error: format!("scope.tags: {e}"),
                }));
                return;
            }
        };
        // "The period before": as long as the range, ending where it starts.
        let baseline =
            baseline.get_untracked().then(|| match (&from_arg, preset.get_untracked()) {
                (_, p) if !p.is_empty() => RangeArg {
                    from: TimeArg::Text(format!("-{}", double(&p[1..]))),
                    to: Some(TimeArg::Text(p.clone())),
                },
                // A range given by its ends: the server measures it.
                _ => RangeArg { from: TimeArg::Text("before".into()), to: None },
            });
        let ops = operations.get_untracked();
        save.dispatch(ReportRequest {
            name: name.get_untracked(),
            from: from_arg,
            to: to_arg,
            scope: Scope {
                operations: Some(ops.trim().to_string()).filter(|o| !o.is_empty()),
                tags,
            },
            baseline,
            apdex_t_ms: None,
        });
    };
    let error_for = move |field: &'static str| {
        move || {
            refused.with(|r| {
                r.as_ref()
                    .filter(|r| r.field.as_deref().is_some_and(|f| f == field || f.starts_with(&format!("{field}."))))
                    .map(|r| view! { <span class="field-error" role="alert">{r.error.clone()}</span> })
            })
        }
    };
    view! {
        <form class="card report-form" data-testid="report-form" on:submit=submit>
            <h2>"New report"</h2>
            <label>"Name"
                <input type="text" data-testid="report-name-input" required maxlength="200"
                    prop:value=move || name.get() on:input=move |ev| name.set(event_target_value(&ev)) />
                {error_for("name")}
            </label>
            <label>"Range"
                <select data-testid="report-range" on:change=move |ev| preset.set(event_target_value(&ev))>
                    {PRESETS.into_iter().map(|(label, value)| view! {
                        <option value=value selected=move || preset.get() == value>{label}</option>
                    }).collect_view()}
                </select>
            </label>
            {move || preset.with(String::is_empty).then(|| view! {
                <label>"From"
                    <input type="text" data-testid="report-from" placeholder="-24h, 2026-12-01T09:00:00Z or Unix ms"
                        prop:value=move || from.get() on:input=move |ev| from.set(event_target_value(&ev)) />
                    {error_for("from")}
                </label>
                <label>"To"
                    <input type="text" data-testid="report-to" placeholder="now"
                        prop:value=move || to.get() on:input=move |ev| to.set(event_target_value(&ev)) />
                    {error_for("to")}
                </label>
            })}
            <label>"Operations (glob)"
                <input type="text" data-testid="report-operations" placeholder="api.* (all when empty)"
                    prop:value=move || operations.get() on:input=move |ev| operations.set(event_target_value(&ev)) />
                {error_for("scope.operations")}
            </label>
            <label>"Tags"
                <input type="text" data-testid="report-tags" placeholder="region=eu version=1.5"
                    prop:value=move || tags.get() on:input=move |ev| tags.set(event_target_value(&ev)) />
                {error_for("scope.tags")}
            </label>
            <label class="check">
                <input type="checkbox" data-testid="report-baseline"
                    prop:checked=move || baseline.get() on:change=move |ev| baseline.set(event_target_checked(&ev)) />
                "Compare with the period before"
                {error_for("baseline")}
            </label>
            {move || refused.with(|r| r.as_ref().filter(|r| r.field.is_none()).map(|r| view! {
                <p class="error" role="alert">{r.error.clone()}</p>
            }))}
            <button type="submit" data-testid="report-create" disabled=move || save.pending().get()>"Make the report"</button>
        </form>
    }
}

/// Twice a duration written as a number and a unit (`1h` → `2h`, `7d` → `14d`).
fn double(duration: &str) -> String {
    let split = duration.find(|c: char| !c.is_ascii_digit()).unwrap_or(duration.len());
    let (n, unit) = duration.split_at(split);
    n.parse::<u64>().map_or_else(|_| duration.to_string(), |n| format!("{}{unit}", n * 2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_and_periods_from_the_form() {
        let tags = parse_tags(" region=eu  version=1.5 ").unwrap();
        assert_eq!(tags.get("region").map(String::as_str), Some("eu"));
        assert!(parse_tags("region").unwrap_err().contains("region"));
        assert_eq!(double("1h"), "2h");
        assert_eq!(double("24h"), "48h");
        assert_eq!(double("7d"), "14d");
    }
}
