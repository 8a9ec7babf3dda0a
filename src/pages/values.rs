//! The Values page (`/values`): every StatsD counter, gauge and set, with its current reading
//! (refreshed with the live stream) and, for the one selected, its stored history over a range.
//! The range and the selected series live in the URL (`?range=24h&kind=gauge&name=queue`).
//! (`/metrics` is Prometheus' exposition, so the page has a name of its own.)

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_navigate, use_query_map};
use leptos_router::NavigateOptions;

use crate::api::{get_value_history, get_values};
use crate::charts::{self, number, TimeWindow};
use crate::components::chart::{ChartPanel, DragHold};
use crate::components::live::use_live;
use crate::components::range::RangeControl;
use crate::model::history::Span;
use crate::model::live::OPERATIONS_EVERY_TICKS;
use crate::model::values::{ValueKind, ValueReading};

/// The range shown when the URL names none.
const DEFAULT_SPAN: Span = Span::Stored(3600);

#[component]
pub fn ValuesPage() -> impl IntoView {
    let live = use_live();
    let query = use_query_map();
    let span = Memo::new(move |_| {
        let q = query.read();
        Span::from_query(
            q.get_str("range"),
            q.get_str("from"),
            q.get_str("to"),
            &Span::values_choices(),
        )
        .filter(|s| !s.is_live())
        .unwrap_or(DEFAULT_SPAN)
    });
    let selected = Memo::new(move |_| {
        let q = query.read();
        let kind = q.get_str("kind").and_then(ValueKind::parse)?;
        Some((kind, q.get("name")?))
    });
    let navigate = use_navigate();
    let go = move |span: Span, selected: Option<(ValueKind, String)>| {
        let mut url = format!("/values?{}", span.to_query());
        if let Some((kind, name)) = selected {
            url.push_str(&format!(
                "&kind={}&name={}",
                kind.as_str(),
                crate::model::percent_encode(&name)
            ));
        }
        navigate(&url, NavigateOptions::default());
    };
    let on_span = {
        let go = go.clone();
        Callback::new(move |chosen: Span| go(chosen, selected.get_untracked()))
    };
    let on_select =
        Callback::new(move |row: (ValueKind, String)| go(span.get_untracked(), Some(row)));
    let filter = RwSignal::new(String::new());
    let version = Memo::new(move |_| {
        live.history.with(|h| h.last().map_or(0, |s| s.seq / OPERATIONS_EVERY_TICKS))
    });
    let list = Resource::new_blocking(move || version.get(), |_| get_values());

    view! {
        <Title text="Values" />
        <section class="page" data-testid="page-values">
            <div class="page-head">
                <h1>"Values"</h1>
                <p class="muted">"StatsD counters, gauges and sets"</p>
            </div>
            <div class="toolbar">
                <input
                    type="search"
                    placeholder="Filter by name"
                    aria-label="Filter values by name"
                    data-testid="values-filter"
                    prop:value=move || filter.get()
                    on:input=move |ev| filter.set(event_target_value(&ev))
                />
                <RangeControl current=span choices=Span::values_choices() on_change=on_span />
            </div>
            <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match list.await {
                        Err(e) => view! { <p class="notice">{format!("Cannot load the values: {e}")}</p> }.into_any(),
                        Ok(view) => {
                            let truncated = view.truncated.then(|| view! {
                                <p class="notice" data-testid="values-truncated">
                                    {format!("Only the first {} are listed.", view.readings.len())}
                                </p>
                            });
                            view! {
                                {truncated}
                                <ValuesTable readings=view.readings filter selected on_select />
                            }
                            .into_any()
                        }
                    }
                })}
            </Transition>
            {move || selected.get().map(|(kind, name)| view! {
                <ValueHistoryPanel kind name span version on_zoom=on_span />
            })}
        </section>
    }
    .into_any()
}

#[component]
fn ValuesTable(
    readings: Vec<ValueReading>,
    filter: RwSignal<String>,
    selected: Memo<Option<(ValueKind, String)>>,
    on_select: Callback<(ValueKind, String)>,
) -> impl IntoView {
    let rows = Memo::new(move |_| {
        // Case is ignored for ASCII letters (metric names): Unicode case folding would bring
        // its tables (13 KB) into this page's part of the bundle.
        let needle = filter.get().to_ascii_lowercase();
        readings
            .iter()
            .filter(|r| r.name.to_ascii_lowercase().contains(&needle))
            .cloned()
            .collect::<Vec<_>>()
    });
    view! {
        <table class="data" data-testid="values-table">
            <thead>
                <tr>
                    <th>"Kind"</th>
                    <th>"Name"</th>
                    <th>"Now"</th>
                    <th>"Since start"</th>
                </tr>
            </thead>
            <tbody>
                <For
                    each=move || rows.get()
                    key=|r| (r.kind, r.name.clone(), r.value.map(f64::to_bits), r.total.map(f64::to_bits))
                    let(reading)
                >
                    <ValueRow reading selected on_select />
                </For>
            </tbody>
        </table>
        {move || rows.with(Vec::is_empty).then(|| view! {
            <p class="muted" data-testid="values-empty">
                "No counters, gauges or sets yet. Send them over StatsD (name:1|c, name:5|g, name:id|s) or POST /api/v1/ingest."
            </p>
        })}
    }
}

#[component]
fn ValueRow(
    reading: ValueReading,
    selected: Memo<Option<(ValueKind, String)>>,
    on_select: Callback<(ValueKind, String)>,
) -> impl IntoView {
    let key = (reading.kind, reading.name.clone());
    let is_selected = {
        let key = key.clone();
        move || selected.with(|s| s.as_ref() == Some(&key))
    };
    let now = match (reading.kind, reading.value) {
        (_, None) => "—".to_string(),
        (ValueKind::Counter, Some(v)) => format!("{} in the last minute", number(v)),
        (ValueKind::Gauge, Some(v)) => number(v),
        (ValueKind::Set, Some(v)) => {
            let bound = if reading.lower_bound { "≥ " } else { "" };
            format!("{bound}{} unique this minute", number(v))
        }
    };
    let total = reading.total.map(number).unwrap_or_default();
    view! {
        <tr
            data-testid="value-row"
            data-kind=reading.kind.as_str()
            data-name=reading.name.clone()
            aria-selected=move || if is_selected() { "true" } else { "false" }
            tabindex="0"
            on:click={
                let key = key.clone();
                move |_| on_select.run(key.clone())
            }
            on:keydown=move |ev| {
                if crate::components::keys::activates(&ev) {
                    on_select.run(key.clone());
                }
            }
        >
            <td>{reading.kind.as_str()}</td>
            <td class="name" title=reading.name.clone()>{reading.name.clone()}</td>
            <td data-col="now">{now}</td>
            <td data-col="total">{total}</td>
        </tr>
    }
}

#[component]
fn ValueHistoryPanel(
    kind: ValueKind,
    name: String,
    span: Memo<Span>,
    version: Memo<u64>,
    on_zoom: Callback<Span>,
) -> impl IntoView {
    let title = format!("{} {name}", kind.as_str());
    let zoom = Callback::new(move |(from, to): (u64, u64)| on_zoom.run(Span::Between(from, to)));
    let hold = DragHold::new();
    let refreshes = hold.refreshes(span, version);
    let history = Resource::new(
        move || (name.clone(), span.get(), refreshes.get()),
        move |(name, span, _)| async move { (span, get_value_history(kind, name, span).await) },
    );
    view! {
        <section class="detail" data-testid="value-detail">
            <h2>{title}</h2>
            <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    let (shown, answer) = history.await;
                    match answer {
                        Ok(Some(series)) => {
                            // A range ending now ends at the answer's `to`, its "now".
                            let window = TimeWindow::of(shown, series.to_ms);
                            let svg = charts::value_chart(&series, window);
                            let title = format!("{} over time ({})", kind.title(), kind.meaning());
                            view! {
                                <div class="charts">
                                    <ChartPanel title testid="chart-value" svg=Signal::stored(svg) on_zoom=zoom hold />
                                </div>
                            }
                            .into_any()
                        }
                        Ok(None) => view! {
                            <p class="muted" data-testid="value-none">"Nothing stored for it yet: minutes are written as they end."</p>
                        }
                        .into_any(),
                        Err(e) => view! { <p class="notice">{format!("Cannot load the history: {e}")}</p> }.into_any(),
                    }
                })}
            </Transition>
        </section>
    }
}
