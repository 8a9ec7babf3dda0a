//! The Operations page (`/operations`): a sortable, filterable table of every operation with its
//! rate, success and latency percentiles, refreshed with the live stream; selecting a row shows
//! its latency over time and its distribution.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_navigate, use_query_map};
use leptos_router::NavigateOptions;

use crate::api::{get_operation_detail, get_operations};
use crate::charts::{self, TimeWindow};
use crate::components::chart::ChartPanel;
use crate::components::live::use_live;
use crate::components::metric_card::format_ms;
use crate::components::range::RangeControl;
use crate::model::history::Span;
use crate::model::live::OPERATIONS_EVERY_TICKS;
use crate::model::ops::{sort_operations, OperationSummary, SortKey, Timings};

#[component]
pub fn OperationsPage() -> impl IntoView {
    let live = use_live();
    // The range lives in the URL (`?range=24h`), so a view can be shared and survives a reload.
    let query = use_query_map();
    let span = Memo::new(move |_| {
        let q = query.read();
        let choices = Span::operations_choices();
        Span::from_query(q.get_str("range"), q.get_str("from"), q.get_str("to"), &choices)
            .unwrap_or_default()
    });
    let of = Memo::new(move |_| {
        query.read().get("of").and_then(|label| Timings::parse(&label)).unwrap_or_default()
    });
    // Changing one of the two keeps the other.
    let navigate = use_navigate();
    let go = move |of: Timings, span: Span| {
        navigate(
            &format!("/operations?of={}&{}", of.as_str(), span.to_query()),
            NavigateOptions::default(),
        );
    };
    let on_span = {
        let go = go.clone();
        Callback::new(move |chosen: Span| go(of.get_untracked(), chosen))
    };

    let sort = RwSignal::new((SortKey::P95, true));
    let filter = RwSignal::new(String::new());
    let selected = RwSignal::new(None::<String>);
    // The table refreshes every few live ticks, as often as the statistics are recomputed.
    let version = Memo::new(move |_| {
        live.history.with(|h| h.last().map_or(0, |s| s.seq / OPERATIONS_EVERY_TICKS))
    });
    let view_data = Resource::new_blocking(
        move || (of.get(), span.get(), version.get()),
        |(of, span, _)| get_operations(of, span),
    );

    view! {
        <Title text="Operations" />
        <section class="page" data-testid="page-operations">
            <div class="page-head">
                <h1>"Operations"</h1>
            </div>
            <div class="toolbar">
                <input
                    type="search"
                    placeholder="Filter by name"
                    aria-label="Filter operations by name"
                    data-testid="ops-filter"
                    prop:value=move || filter.get()
                    on:input=move |ev| filter.set(event_target_value(&ev))
                />
                <label>
                    "Show "
                    <select
                        data-testid="ops-kind"
                        on:change={
                            let go = go.clone();
                            move |ev| {
                            if let Some(chosen) = Timings::parse(&event_target_value(&ev)) {
                                selected.set(None);
                                go(chosen, span.get_untracked());
                            }
                        }}
                    >
                        {Timings::ALL
                            .into_iter()
                            .map(|t| view! {
                                <option value=t.as_str() selected=move || of.get() == t>{t.as_str()}</option>
                            })
                            .collect_view()}
                    </select>
                </label>
                <RangeControl current=span choices=Span::operations_choices() on_change=on_span />
            </div>
            <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    let data = view_data.await;
                    match data {
                        Err(e) => view! { <p class="notice">{format!("Cannot load operations: {e}")}</p> }.into_any(),
                        Ok(data) => {
                            let notice = (data.dropped_by_cap > 0).then(|| view! {
                                <p class="notice" data-testid="cap-notice">
                                    {format!(
                                        "{} samples were dropped: more than {} distinct names. Raise --max-series to keep them.",
                                        data.dropped_by_cap, data.max_series
                                    )}
                                </p>
                            });
                            let source = if data.span.is_live() { "live" } else { "from the history store" };
                            let footnote = format!(
                                "{} {} {} ({source}) · percentiles within ±{:.0} %",
                                data.operations.len(),
                                data.of.as_str(),
                                TimeWindow::of(data.span, data.now_ms).describe(),
                                data.relative_error * 100.0
                            );
                            let ops = data.operations;
                            view! {
                                {notice}
                                <OperationsTable ops sort filter selected />
                                <p class="muted" data-testid="ops-footnote">{footnote}</p>
                            }
                            .into_any()
                        }
                    }
                })}
            </Transition>
            {move || selected.get().map(|name| view! { <OperationDetailPanel of name span version on_zoom=on_span /> })}
        </section>
    }
}

const COLUMNS: [(SortKey, &str); 10] = [
    (SortKey::Name, "Operation"),
    (SortKey::Count, "Count"),
    (SortKey::Rate, "Rate/min"),
    (SortKey::Success, "Success"),
    (SortKey::P50, "p50"),
    (SortKey::P95, "p95"),
    (SortKey::P99, "p99"),
    (SortKey::Max, "Max"),
    (SortKey::Errors, "Errors"),
    (SortKey::Mean, "Mean"),
];

#[component]
fn OperationsTable(
    ops: Vec<OperationSummary>,
    sort: RwSignal<(SortKey, bool)>,
    filter: RwSignal<String>,
    selected: RwSignal<Option<String>>,
) -> impl IntoView {
    let rows = Memo::new(move |_| {
        let needle = filter.get().to_lowercase();
        let mut rows: Vec<OperationSummary> =
            ops.iter().filter(|o| o.name.to_lowercase().contains(&needle)).cloned().collect();
        let (key, descending) = sort.get();
        sort_operations(&mut rows, key, descending);
        rows
    });
    let header = move |key: SortKey, label: &'static str| {
        let aria = move || {
            let (current, descending) = sort.get();
            (current == key).then_some(if descending { "descending" } else { "ascending" })
        };
        view! {
            <th aria-sort=aria>
                <button
                    type="button"
                    data-testid=format!("sort-{}", key.as_str())
                    on:click=move |_| {
                        sort.update(|(current, descending)| {
                            if *current == key {
                                *descending = !*descending;
                            } else {
                                *current = key;
                                *descending = key.default_descending();
                            }
                        })
                    }
                >
                    {label}
                    {move || match aria() {
                        Some("descending") => " ▼",
                        Some(_) => " ▲",
                        None => "",
                    }}
                </button>
            </th>
        }
    };
    view! {
        <table class="data" data-testid="ops-table">
            <thead>
                <tr>
                    {COLUMNS.into_iter().map(|(key, label)| header(key, label)).collect_view()}
                    <th>"Class"</th>
                </tr>
            </thead>
            <tbody>
                <For
                    each=move || rows.get()
                    key=|op| (op.name.clone(), op.count, op.p95_ms.to_bits(), op.max_ms.to_bits())
                    let(op)
                >
                    <OperationRow op selected />
                </For>
            </tbody>
        </table>
        {move || rows.with(Vec::is_empty).then(|| view! {
            <p class="muted" data-testid="ops-empty">
                "No operations in this range yet. Send timings over StatsD or POST /api/v1/ingest."
            </p>
        })}
    }
}

#[component]
fn OperationRow(op: OperationSummary, selected: RwSignal<Option<String>>) -> impl IntoView {
    let name = op.name.clone();
    let is_selected = {
        let name = name.clone();
        move || selected.get().as_deref() == Some(name.as_str())
    };
    let class = op.latency_class;
    view! {
        <tr
            data-testid="op-row"
            data-name=name.clone()
            aria-selected=move || if is_selected() { "true" } else { "false" }
            on:click={
                let name = name.clone();
                move |_| selected.set(Some(name.clone()))
            }
        >
            <td class="name" title=name.clone()>{name.clone()}</td>
            <td data-col="count">{op.count}</td>
            <td>{format!("{:.1}", op.rate_per_min)}</td>
            <td>{format!("{:.1} %", op.success_pct)}</td>
            <td>{format_ms(op.p50_ms)}</td>
            <td data-col="p95">{format_ms(op.p95_ms)}</td>
            <td>{format_ms(op.p99_ms)}</td>
            <td>{format_ms(op.max_ms)}</td>
            <td>{op.error_count}</td>
            <td>{format_ms(op.mean_ms)}</td>
            <td>
                <span class=format!("class-badge class-{}", class.as_str())>{class.as_str()}</span>
            </td>
        </tr>
    }
}

#[component]
fn OperationDetailPanel(
    of: Memo<Timings>,
    name: String,
    span: Memo<Span>,
    version: Memo<u64>,
    /// A range dragged on a chart.
    on_zoom: Callback<Span>,
) -> impl IntoView {
    let title = name.clone();
    let zoom = Callback::new(move |(from, to): (u64, u64)| on_zoom.run(Span::Between(from, to)));
    let detail = Resource::new(
        move || (of.get(), name.clone(), span.get(), version.get()),
        |(of, name, span, _)| get_operation_detail(of, name, span),
    );
    view! {
        <section class="detail" data-testid="op-detail">
            <h2>{title}</h2>
            <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match detail.await {
                        Ok(Some(view)) => {
                            let window = TimeWindow::of(view.span, view.now_ms);
                            let series = &view.detail.series;
                            let latency = charts::latency_over_time_chart(series, window);
                            let throughput = charts::throughput_chart(series, window);
                            let error_rate = charts::error_rate_chart(series, window);
                            let histogram = charts::latency_histogram_chart(&view.detail.histogram);
                            view! {
                                <div class="charts">
                                    <ChartPanel
                                        title="Latency over time (p50 / p95 / p99)"
                                        testid="chart-latency"
                                        svg=Signal::stored(latency)
                                        on_zoom=zoom
                                    />
                                    <ChartPanel
                                        title="Throughput (samples per minute)"
                                        testid="chart-throughput"
                                        svg=Signal::stored(throughput)
                                        on_zoom=zoom
                                    />
                                    <ChartPanel
                                        title="Error rate (% of samples failed)"
                                        testid="chart-error-rate"
                                        svg=Signal::stored(error_rate)
                                        on_zoom=zoom
                                    />
                                    <ChartPanel
                                        title="Latency distribution"
                                        testid="chart-histogram"
                                        svg=Signal::stored(histogram)
                                    />
                                </div>
                            }
                            .into_any()
                        }
                        Ok(None) => view! { <p class="muted">"No samples in this window."</p> }.into_any(),
                        Err(e) => view! { <p class="notice">{format!("Cannot load the detail: {e}")}</p> }.into_any(),
                    }
                })}
            </Transition>
        </section>
    }
}
