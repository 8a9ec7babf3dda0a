//! The Operations page (`/operations`): a sortable, filterable table of the operations (or
//! events) with their rate, success and latency percentiles over a live window or a stored
//! range (the server filters and sorts them and sends the first rows, "Show more" the next),
//! refreshed with the live stream, narrowed to tags (`tag=key:value`) and grouped by a tag key
//! (`by=key`), all kept in the URL; selecting a row shows its latency, throughput and error rate
//! over time and its distribution.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_navigate, use_query_map};
use leptos_router::NavigateOptions;

use crate::api::{get_operation_detail, get_operations};
use crate::charts::{self, fixed, TimeWindow};
use crate::components::alert_spans::use_alert_spans;
use crate::components::chart::{ChartPanel, DragHold};
use crate::components::live::use_live;
use crate::components::metric_card::format_ms;
use crate::components::range::RangeControl;
use crate::components::sort::SortHeader;
use crate::components::tags::TagControl;
use crate::model::history::Span;
use crate::model::live::OPERATIONS_EVERY_TICKS;
use crate::model::ops::{
    OperationSummary, RowsWanted, SortKey, Timings, MAX_TABLE_ROWS, TABLE_ROWS,
};
use crate::model::tags::{Selection, TagValues};

/// A row of the table: a name and the values of the tags it is grouped by.
type RowKey = (String, std::collections::BTreeMap<String, String>);

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
    // `tag=key:value` (repeatable) and `by=key`; a bad one in a typed URL is shown, not used.
    let parsed_selection = Memo::new(move |_| {
        let q = query.read();
        let tags = q.get_all("tag").unwrap_or_default();
        Selection::parse(tags.iter().map(String::as_str), q.get_str("by"))
    });
    let selection = Memo::new(move |_| parsed_selection.get().unwrap_or_default());
    // `op=name` (a recommendation's link) opens that operation's charts and filters the table
    // to it.
    let linked = query.with_untracked(|q| q.get("op")).filter(|name| !name.is_empty());
    let selected: RwSignal<Option<RowKey>> =
        RwSignal::new(linked.clone().map(|name| (name, Default::default())));
    // Changing one of them keeps the others, and the operation shown (unless a group's row).
    let navigate = use_navigate();
    let go = move |of: Timings, span: Span, selection: Selection| {
        let mut url = format!("/operations?of={}&{}", of.as_str(), span.to_query());
        let tags = selection.to_query();
        if !tags.is_empty() {
            url.push('&');
            url.push_str(&tags);
        }
        if let Some((name, _)) = selected.get_untracked().filter(|(_, group)| group.is_empty()) {
            url.push_str("&op=");
            url.push_str(&crate::model::percent_encode(&name));
        }
        navigate(&url, NavigateOptions::default());
    };
    let on_span = {
        let go = go.clone();
        Callback::new(move |chosen: Span| go(of.get_untracked(), chosen, selection.get_untracked()))
    };
    let on_selection = {
        let go = go.clone();
        Callback::new(move |chosen: Selection| {
            selected.set(None);
            go(of.get_untracked(), span.get_untracked(), chosen)
        })
    };

    // The server filters, sorts and cuts the table: a page holds the first rows, not all.
    let sort = RwSignal::new((SortKey::P95, true));
    let filter = RwSignal::new(linked.unwrap_or_default());
    let limit = RwSignal::new(TABLE_ROWS);
    // Another `op=` while on this page (back and forward through ranges chosen) selects it.
    Effect::new(move |last: Option<Option<String>>| {
        let op = query.with(|q| q.get("op")).filter(|name| !name.is_empty());
        let changed = last.is_some_and(|last| last != op);
        if let Some(name) = op.clone().filter(|_| changed) {
            let row: RowKey = (name.clone(), Default::default());
            if selected.with_untracked(|s| s.as_ref() != Some(&row)) {
                selected.set(Some(row));
                limit.set(TABLE_ROWS);
                filter.set(name);
            }
        }
        op
    });
    let wanted = Memo::new(move |_| {
        let (sort, descending) = sort.get();
        RowsWanted { sort, descending, filter: filter.get(), limit: limit.get() }
    });
    // The table refreshes every few live ticks, as often as the statistics are recomputed.
    let version = Memo::new(move |_| {
        live.history.with(|h| h.last().map_or(0, |s| s.seq / OPERATIONS_EVERY_TICKS))
    });
    let view_data = Resource::new_blocking(
        move || (of.get(), span.get(), selection.get(), wanted.get(), version.get()),
        |(of, span, selection, wanted, _)| get_operations(of, span, selection, wanted),
    );
    // The tags in view, for the tag control (outside the table, so typing survives refreshes).
    let known = RwSignal::new(Vec::<TagValues>::new());
    Effect::new(move |_| {
        if let Some(Ok(data)) = view_data.get() {
            if known.with_untracked(|k| *k != data.tags) {
                known.set(data.tags);
            }
        }
    });

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
                    on:input=move |ev| {
                        limit.set(TABLE_ROWS);
                        filter.set(event_target_value(&ev));
                    }
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
                                go(chosen, span.get_untracked(), selection.get_untracked());
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
                <TagControl current=selection known on_change=on_selection />
            </div>
            {move || parsed_selection.get().err().map(|e| view! {
                <p class="notice" data-testid="tag-url-error">{format!("Ignoring the tags in the address: {e}")}</p>
            })}
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
                            let memory = data.memory;
                            let memory_notice = (memory.dropped + memory.evicted > 0).then(|| view! {
                                <p class="notice" data-testid="memory-notice">
                                    {format!(
                                        "The statistics reached their memory budget of {} MiB: {} samples of new series were dropped and {} idle series left memory (their history stays stored). Raise --max-statistics-mb to keep more.",
                                        memory.max_mb, memory.dropped, memory.evicted
                                    )}
                                </p>
                            });
                            let kernel_notice = (data.statsd_kernel_dropped > 0).then(|| view! {
                                <p class="notice" data-testid="kernel-drop-notice">
                                    {format!(
                                        "The kernel dropped {} StatsD datagrams before Vitals could read them: the socket's receive buffer was full. Raise net.core.rmem_max, or let Vitals force a larger buffer (CAP_NET_ADMIN); see \"Zero loss\" in the README.",
                                        data.statsd_kernel_dropped
                                    )}
                                </p>
                            });
                            let source = if data.span.is_live() { "live" } else { "from the history store" };
                            let mut tagged: Vec<String> = Vec::new();
                            if !data.selection.require.is_empty() {
                                let tags: Vec<String> = data.selection.require.iter().map(|t| t.as_text()).collect();
                                tagged.push(format!(" · tagged {}", tags.join(", ")));
                            }
                            if !data.selection.by.is_empty() {
                                tagged.push(format!(" · grouped by {}", data.selection.by.join(", ")));
                            }
                            let footnote = format!(
                                "{} {} {} ({source}){} · percentiles within ±{} %",
                                data.total,
                                data.of.as_str(),
                                TimeWindow::of(data.span, data.now_ms).describe(),
                                tagged.concat(),
                                fixed(data.relative_error * 100.0, 0)
                            );
                            let shown = data.operations.len();
                            let more = data.matched.saturating_sub(shown);
                            let filtered = if data.matched < data.total {
                                format!(" matching “{}”", data.wanted.filter.trim())
                            } else {
                                String::new()
                            };
                            let cut = (more > 0).then(|| view! {
                                <p class="muted" data-testid="ops-more">
                                    {format!("Showing the first {shown} of {}{filtered}, in the order chosen. ", data.matched)}
                                    <button
                                        type="button"
                                        data-testid="ops-show-more"
                                        on:click=move |_| limit.update(|l| *l = (*l + TABLE_ROWS).min(MAX_TABLE_ROWS))
                                    >
                                        {format!("Show {} more", more.min(TABLE_ROWS))}
                                    </button>
                                </p>
                            });
                            let empty = data.operations.is_empty().then(|| {
                                let text = if data.total == 0 {
                                    "No operations in this range yet. Send timings over StatsD or POST /api/v1/ingest.".to_string()
                                } else {
                                    format!("No name holds “{}”.", data.wanted.filter.trim())
                                };
                                view! { <p class="muted" data-testid="ops-empty">{text}</p> }
                            });
                            let ops = data.operations;
                            view! {
                                {notice}
                                {memory_notice}
                                {kernel_notice}
                                <OperationsTable ops sort selected />
                                {empty}
                                {cut}
                                <p class="muted" data-testid="ops-footnote">{footnote}</p>
                            }
                            .into_any()
                        }
                    }
                })}
            </Transition>
            {move || selected.get().map(|row| view! {
                <OperationDetailPanel of row selection span version on_zoom=on_span />
            })}
        </section>
    }
}

/// A row's group tags as words: `region=eu v=2`.
fn tag_words(tags: &std::collections::BTreeMap<String, String>) -> String {
    tags.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" ")
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
    /// The rows, in the order the server sorted them.
    ops: Vec<OperationSummary>,
    sort: RwSignal<(SortKey, bool)>,
    selected: RwSignal<Option<RowKey>>,
) -> impl IntoView {
    view! {
        <table class="data" data-testid="ops-table">
            <thead>
                <tr>
                    {COLUMNS
                        .into_iter()
                        .map(|(key, label)| view! { <SortHeader key label=label.to_string() sort /> })
                        .collect_view()}
                    <th>"Class"</th>
                </tr>
            </thead>
            <tbody>
                <For
                    each=move || ops.clone()
                    key=|op| {
                        (op.name.clone(), op.tags.clone(), op.count, op.p95_ms.to_bits(), op.max_ms.to_bits())
                    }
                    let(op)
                >
                    <OperationRow op selected />
                </For>
            </tbody>
        </table>

    }
}

#[component]
fn OperationRow(op: OperationSummary, selected: RwSignal<Option<RowKey>>) -> impl IntoView {
    let name = op.name.clone();
    let row: RowKey = (name.clone(), op.tags.clone());
    let is_selected = {
        let row = row.clone();
        move || selected.with(|s| s.as_ref() == Some(&row))
    };
    let tags = tag_words(&op.tags);
    let class = op.latency_class;
    view! {
        <tr
            data-testid="op-row"
            data-name=name.clone()
            data-tags=tags.clone()
            aria-selected=move || if is_selected() { "true" } else { "false" }
            tabindex="0"
            on:click={
                let row = row.clone();
                move |_| selected.set(Some(row.clone()))
            }
            on:keydown=move |ev| {
                if crate::components::keys::activates(&ev) {
                    selected.set(Some(row.clone()));
                }
            }
        >
            <td class="name" title=name.clone()>
                {name.clone()}
                {(!tags.is_empty()).then(|| view! { <span class="row-tags" data-testid="row-tags">{tags.clone()}</span> })}
            </td>
            <td data-col="count">{op.count}</td>
            <td>{fixed(op.rate_per_min, 1)}</td>
            <td>{format!("{} %", fixed(op.success_pct, 1))}</td>
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
    /// The row shown: a name and its group's tags.
    row: RowKey,
    /// The page's selection, narrowed to the row's group.
    selection: Memo<Selection>,
    span: Memo<Span>,
    version: Memo<u64>,
    /// A range dragged on a chart.
    on_zoom: Callback<Span>,
) -> impl IntoView {
    let (name, group) = row;
    let title = match tag_words(&group) {
        words if words.is_empty() => name.clone(),
        words => format!("{name} · {words}"),
    };
    let zoom = Callback::new(move |(from, to): (u64, u64)| on_zoom.run(Span::Between(from, to)));
    let hold = DragHold::new();
    let refreshes = hold.refreshes(span, version);
    let label = match of.get_untracked() {
        Timings::Operations => "operation",
        Timings::Events => "event",
    };
    let alerts = use_alert_spans(span.into(), vec![(label.to_string(), name.clone())]);
    let detail = Resource::new(
        move || {
            (of.get(), name.clone(), span.get(), selection.get().narrowed(&group), refreshes.get())
        },
        |(of, name, span, selection, _)| get_operation_detail(of, name, span, selection),
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
                                        hold
                                        alerts
                                    />
                                    <ChartPanel
                                        title="Throughput (samples per minute)"
                                        testid="chart-throughput"
                                        svg=Signal::stored(throughput)
                                        on_zoom=zoom
                                        hold
                                        alerts
                                    />
                                    <ChartPanel
                                        title="Error rate (% of samples failed)"
                                        testid="chart-error-rate"
                                        svg=Signal::stored(error_rate)
                                        on_zoom=zoom
                                        hold
                                        alerts
                                    />
                                    <ChartPanel
                                        title="Latency distribution"
                                        testid="chart-histogram"
                                        svg=Signal::stored(histogram)
                                    />
                                </div>
                                {failures_line(&view.detail.summary)}
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

/// How long the failures took against the successes (fast: refused early; slow: timeouts);
/// nothing without failures or when their durations are unknown.
fn failures_line(s: &OperationSummary) -> Option<impl IntoView> {
    let failed = format_ms(s.error_mean_ms?);
    let text = match s.ok_mean_ms {
        Some(ok) => format!(
            "{} failed, taking {failed} on average; successes {}.",
            s.error_count,
            format_ms(ok)
        ),
        None => format!("Every sample failed, taking {failed} on average."),
    };
    Some(view! { <p class="muted" data-testid="op-failures">{text}</p> })
}
