//! The dashboard (`/`): eight live metric cards, four charts and a strip of host details. The
//! charts show the last 60 seconds live, or a stored range from the history store (`?range=24h`,
//! `?from=&to=`, or a range dragged on a chart). The server renders the current values first;
//! the live socket takes over after hydration.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_navigate, use_query_map};
use leptos_router::NavigateOptions;

use crate::api::{
    get_host_history, get_live_snapshot, get_recording_paused, refresh_now, DASHBOARD_FIELDS,
};
use crate::charts::{self, fixed, TimeWindow};
use crate::components::alert_spans::{filtered, use_alert_spans, HOST_SERIES};
use crate::components::chart::{ChartPanel, DragHold};
use crate::components::live::{use_live, CLIENT_HISTORY};
use crate::components::metric_card::{format_bytes, format_ms, Level, MetricCard};
use crate::components::range::RangeControl;
use crate::model::alerts::AlertSpan;
use crate::model::history::{HostHistory, Span};
use crate::model::live::{LiveSnapshot, Sample};

/// A stored range ending now is fetched again every this many live ticks.
const STORED_REFRESH_TICKS: u64 = 10;
/// Whether recording is paused is asked again every this many live ticks.
const PAUSED_CHECK_TICKS: u64 = 5;

/// The charts' window.
pub const CHART_WINDOW_MS: u64 = 60_000;

#[component]
pub fn DashboardPage() -> impl IntoView {
    let initial = Resource::new_blocking(|| (), |_| get_live_snapshot(CLIENT_HISTORY));
    // The range lives in the URL, so a view can be shared and survives a reload.
    let query = use_query_map();
    let span = Memo::new(move |_| {
        let q = query.read();
        let choices = Span::dashboard_choices();
        Span::from_query(q.get_str("range"), q.get_str("from"), q.get_str("to"), &choices)
            .unwrap_or(Span::Live(crate::model::ops::Window::M1))
    });
    let navigate = use_navigate();
    let on_span = Callback::new(move |chosen: Span| {
        let url =
            if chosen.is_live() { "/".to_string() } else { format!("/?{}", chosen.to_query()) };
        navigate(&url, NavigateOptions::default());
    });
    view! {
        <Title text="Dashboard" />
        <section class="page" data-testid="page-dashboard">
            <div class="page-head">
                <h1>"Dashboard"</h1>
                <RefreshButton />
            </div>
            <div class="toolbar">
                <RangeControl current=span choices=Span::dashboard_choices() on_change=on_span />
            </div>
            <PausedNotice />
            <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    let seed = initial.await.unwrap_or_default();
                    view! { <DashboardBody seed span on_span /> }
                })}
            </Suspense>
        </section>
    }
}

/// Says so while recording to the history store is paused (live figures go on).
#[component]
fn PausedNotice() -> impl IntoView {
    let live = use_live();
    let check = Memo::new(move |_| {
        live.history.with(|h| h.last().map_or(0, |s| s.seq / PAUSED_CHECK_TICKS))
    });
    let paused = Resource::new(move || check.get(), |_| get_recording_paused());
    view! {
        <Transition fallback=|| ()>
            {move || Suspend::new(async move {
                paused.await.unwrap_or(false).then(|| view! {
                    <p class="notice" role="status" data-testid="paused-notice">
                        "Recording is paused: live figures go on, but nothing is stored until "
                        <code>"POST /api/v1/monitor/resume"</code>
                        ". The history will show the pause as a gap."
                    </p>
                })
            })}
        </Transition>
    }
}

/// Takes a sample now and broadcasts it to every viewer.
#[component]
fn RefreshButton() -> impl IntoView {
    let live = use_live();
    let refresh = Action::new(|_: &()| refresh_now());
    Effect::new(move |_| {
        if let Some(Ok(sample)) = refresh.value().get() {
            live.push_sample(sample);
        }
    });
    // A button of its own, not `ActionButton`: the Dashboard loads only the shared part of the
    // bundle, which would then carry the component (3.7 KB of gzip, measured).
    view! {
        <button
            type="button"
            class="btn"
            data-testid="refresh"
            disabled=move || refresh.pending().get()
            on:click=move |_| {
                refresh.dispatch(());
            }
        >
            {move || if refresh.pending().get() { "Refreshing…" } else { "Refresh now" }}
        </button>
    }
}

#[component]
fn DashboardBody(seed: LiveSnapshot, span: Memo<Span>, on_span: Callback<Span>) -> impl IntoView {
    let live = use_live();
    // In the browser the page's samples start the live history, so that the socket's first
    // snapshot brings only newer ones instead of all of them again.
    #[cfg(feature = "hydrate")]
    live.seed(&seed.history);
    let seed_history = seed.history;
    let history = Memo::new(move |_| {
        let current = live.history.get();
        if current.is_empty() {
            seed_history.clone()
        } else {
            current
        }
    });
    let latest = Memo::new(move |_| history.get().last().cloned().unwrap_or_default());
    let pick = move |f: fn(&Sample) -> String| Signal::derive(move || f(&latest.get()));

    let cpu = Signal::derive(move || latest.get().system.cpu_pct as f64);
    let mem = Signal::derive(move || latest.get().system.memory_pct as f64);
    let success = Signal::derive(move || latest.get().actions.success_pct);
    let aq = Signal::derive(move || latest.get().actions.queue_depth);
    let eq = Signal::derive(move || latest.get().events.queue_depth);
    let errors = Signal::derive(move || latest.get().actions.error_count as f64);

    // Stored ranges ending now are fetched again every few ticks, but not while a range is
    // being dragged (the new charts would drop the drag); fixed ranges once.
    let hold = DragHold::new();
    let ticks = Memo::new(move |_| match span.get() {
        Span::Stored(_) => {
            live.history.with(|h| h.last().map_or(0, |s| s.seq / STORED_REFRESH_TICKS))
        }
        _ => 0,
    });
    let refresh = hold.refreshes(span, ticks);
    let stored = Resource::new(
        move || (span.get(), refresh.get()),
        |(span, _)| async move {
            if span.is_live() {
                Ok(None)
            } else {
                get_host_history(span).await.map(Some)
            }
        },
    );
    let live_points = Signal::derive(move || {
        history.with(|h| {
            let now = h.last().map_or(0, |s| s.at_ms);
            let window = TimeWindow::last(CHART_WINDOW_MS, now);
            let rows = h.iter().filter(|s| s.at_ms >= window.start_ms()).map(ChartRow::of);
            (rows.collect(), window)
        })
    });
    let zoom = Callback::new(move |(from, to): (u64, u64)| on_span.run(Span::Between(from, to)));
    let alerts = use_alert_spans(span.into(), Vec::new());
    let charts = move || {
        if span.get().is_live() {
            return view! { <DashboardCharts data=live_points zoom alerts hold /> }.into_any();
        }
        view! {
            <Transition fallback=|| view! { <p class="muted">"Loading history…"</p> }>
                {move || Suspend::new(async move {
                    match stored.await {
                        Ok(Some(h)) => {
                            let window = TimeWindow::of(span.get_untracked(), h.to_ms);
                            let note = format!(
                                "{} · from the history store ({} rows, one point per {})",
                                window.describe(),
                                h.tier.as_str(),
                                charts::span_words(h.step_ms as f64 / 1000.0),
                            );
                            let data = Signal::stored((ChartRow::from_history(&h), window));
                            view! {
                                <p class="muted" data-testid="history-note">{note}</p>
                                <DashboardCharts data zoom alerts hold />
                            }.into_any()
                        }
                        Ok(None) => ().into_any(),
                        Err(e) => view! {
                            <p class="notice" data-testid="history-error">{format!("Cannot load the history: {e}")}</p>
                        }.into_any(),
                    }
                })}
            </Transition>
        }
        .into_any()
    };

    view! {
        <div class="cards" data-testid="cards">
            <MetricCard
                label="CPU"
                testid="card-cpu"
                value=pick(|s| format!("{} %", fixed(s.system.cpu_pct.into(), 1)))
                level=Signal::derive(move || Level::rising(cpu.get(), 70.0, 90.0))
                detail=pick(|s| format!("{} cores · load {}", s.system.per_core_pct.len(), fixed(s.system.load_avg_1, 2)))
            />
            <MetricCard
                label="Memory"
                testid="card-memory"
                value=pick(|s| format!("{} %", fixed(s.system.memory_pct.into(), 1)))
                level=Signal::derive(move || Level::rising(mem.get(), 75.0, 90.0))
                detail=pick(|s| format!(
                    "{} of {}",
                    format_bytes(s.system.memory_used_bytes as f64),
                    format_bytes(s.system.memory_total_bytes as f64)
                ))
            />
            <MetricCard
                label="Actions/min"
                testid="card-actions"
                value=pick(|s| fixed(s.actions.actions_per_min, 0))
                level=Signal::derive(|| Level::Neutral)
                detail=pick(|s| format!("avg {}", format_ms(s.actions.avg_duration_ms)))
            />
            <MetricCard
                label="Success rate"
                testid="card-success"
                value=pick(|s| match s.actions.success_pct {
                    Some(pct) => format!("{} %", fixed(pct, 1)),
                    None => "no data".to_string(),
                })
                level=Signal::derive(move || match success.get() {
                    Some(pct) => Level::falling(pct, 99.0, 95.0),
                    None => Level::Neutral,
                })
                detail=pick(|s| format!("{} events failed/min", s.events.failed))
            />
            <MetricCard
                label="Action queue"
                testid="card-action-queue"
                value=pick(|s| fixed(s.actions.queue_depth, 0))
                level=Signal::derive(move || Level::rising(aq.get(), 10.0, 100.0))
            />
            <MetricCard
                label="Event queue"
                testid="card-event-queue"
                value=pick(|s| fixed(s.events.queue_depth, 0))
                level=Signal::derive(move || Level::rising(eq.get(), 10.0, 100.0))
                detail=pick(|s| format!(
                    "{} processed/min · avg {}",
                    s.events.processed,
                    format_ms(s.events.avg_processing_ms)
                ))
            />
            <MetricCard
                label="Errors"
                testid="card-errors"
                value=pick(|s| s.actions.error_count.to_string())
                level=Signal::derive(move || Level::rising(errors.get(), 1.0, 10.0))
                detail=pick(|_| "in the last minute".to_string())
            />
            <MetricCard
                label="Processes"
                testid="card-processes"
                value=pick(|s| s.system.process_count.to_string())
                level=Signal::derive(|| Level::Neutral)
                detail=pick(|s| format!("{} threads", s.system.thread_count))
            />
        </div>
        <p class="current-action" data-testid="current-action">
            "Current action: "
            <code>
                {move || latest.get().actions.current_action.unwrap_or_else(|| "idle".to_string())}
            </code>
        </p>
        {charts}
        <dl class="host-strip" data-testid="host-strip">
            <div>
                <dt>"Swap"</dt>
                <dd>{move || format_bytes(latest.get().system.swap_used_bytes as f64)}</dd>
            </div>
            <div>
                <dt>"Load 1/5/15"</dt>
                <dd>
                    {move || {
                        let s = latest.get().system;
                        format!("{} / {} / {}", fixed(s.load_avg_1, 2), fixed(s.load_avg_5, 2), fixed(s.load_avg_15, 2))
                    }}
                </dd>
            </div>
            <div>
                <dt>"Network in / out"</dt>
                <dd>
                    {move || {
                        let s = latest.get().system;
                        format!(
                            "{}/s / {}/s",
                            format_bytes(s.net_rx_bytes_per_sec),
                            format_bytes(s.net_tx_bytes_per_sec)
                        )
                    }}
                </dd>
            </div>
            <div>
                <dt>"Disk read / write"</dt>
                <dd>
                    {move || {
                        let s = latest.get().system;
                        format!(
                            "{}/s / {}/s",
                            format_bytes(s.disk_read_bytes_per_sec),
                            format_bytes(s.disk_write_bytes_per_sec)
                        )
                    }}
                </dd>
            </div>
            <div>
                <dt>"Vitals itself"</dt>
                <dd data-testid="self-cost">
                    {move || {
                        let s = latest.get().system;
                        format!("{} % CPU · {}", fixed(s.self_cpu_pct.into(), 1), format_bytes(s.self_rss_bytes as f64))
                    }}
                </dd>
            </div>
        </dl>
    }
}

/// What the four charts draw of one sample or stored step.
#[derive(Clone, Copy, Debug, PartialEq)]
struct ChartRow {
    at_ms: u64,
    cpu_pct: f32,
    memory_pct: f32,
    actions_per_min: f64,
    avg_duration_ms: f64,
    action_queue: f64,
    event_queue: f64,
    errors: u64,
}

impl ChartRow {
    fn of(s: &Sample) -> Self {
        ChartRow {
            at_ms: s.at_ms,
            cpu_pct: s.system.cpu_pct,
            memory_pct: s.system.memory_pct,
            actions_per_min: s.actions.actions_per_min,
            avg_duration_ms: s.actions.avg_duration_ms,
            action_queue: s.actions.queue_depth,
            event_queue: s.events.queue_depth,
            errors: s.actions.error_count,
        }
    }

    /// Stored steps (their means) in [`DASHBOARD_FIELDS`] order; a missing value is a gap.
    fn from_history(h: &HostHistory) -> Vec<Self> {
        let index = |name: &str| h.fields.iter().position(|f| f == name);
        let idx: Vec<Option<usize>> = DASHBOARD_FIELDS.iter().map(|f| index(f)).collect();
        h.points
            .iter()
            .map(|p| {
                let v = |i: usize| {
                    idx[i].and_then(|j| p.mean.get(j).copied().flatten()).unwrap_or(f64::NAN)
                };
                ChartRow {
                    at_ms: p.at_ms,
                    cpu_pct: v(0) as f32,
                    memory_pct: v(1) as f32,
                    actions_per_min: v(2),
                    avg_duration_ms: v(3),
                    action_queue: v(4),
                    event_queue: v(5),
                    errors: idx[6]
                        .and_then(|j| p.max.get(j).copied().flatten())
                        .filter(|v| v.is_finite())
                        .map_or(0, |v| v.round().max(0.0) as u64),
                }
            })
            .collect()
    }
}

/// The four charts of `data` (rows and their window), redrawn when it changes; dragging across
/// one zooms into that range.
#[component]
fn DashboardCharts(
    data: Signal<(Vec<ChartRow>, TimeWindow)>,
    zoom: Callback<(u64, u64)>,
    /// When alerts fired: host alerts over CPU and memory, the others over actions and errors.
    alerts: Signal<Vec<AlertSpan>>,
    /// Told while a range is dragged, so the page holds its history refreshes.
    hold: DragHold,
) -> impl IntoView {
    fn chart<P: 'static>(
        data: Signal<(Vec<ChartRow>, TimeWindow)>,
        point: fn(&ChartRow) -> P,
        draw: fn(&[P], TimeWindow) -> String,
    ) -> Signal<String> {
        Signal::derive(move || {
            data.with(|(rows, window)| draw(&rows.iter().map(point).collect::<Vec<_>>(), *window))
        })
    }
    let cpu = chart(data, |r| (r.at_ms, r.cpu_pct, r.memory_pct), charts::cpu_memory_chart);
    let actions =
        chart(data, |r| (r.at_ms, r.actions_per_min, r.avg_duration_ms), charts::action_chart);
    let queues = chart(data, |r| (r.at_ms, r.action_queue, r.event_queue), charts::queue_chart);
    let errors = chart(data, |r| (r.at_ms, r.errors), charts::errors_chart);
    let host_alerts = filtered(alerts, |s| s.series == HOST_SERIES);
    let app_alerts = filtered(alerts, |s| s.series != HOST_SERIES);
    view! {
        <div class="charts">
            <ChartPanel title="CPU and memory (%)" testid="chart-cpu-memory" svg=cpu on_zoom=zoom hold alerts=host_alerts />
            <ChartPanel title="Action performance" testid="chart-actions" svg=actions on_zoom=zoom hold alerts=app_alerts />
            <ChartPanel title="Queue depths" testid="chart-queues" svg=queues on_zoom=zoom hold />
            <ChartPanel title="Errors" testid="chart-errors" svg=errors on_zoom=zoom hold alerts=app_alerts />
        </div>
    }
}
