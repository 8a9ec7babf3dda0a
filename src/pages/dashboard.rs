//! The dashboard (`/`): eight live metric cards, four live charts over the last 60 seconds and a
//! strip of host details. The server renders the current values first; the live socket takes
//! over after hydration.

use leptos::prelude::*;
use leptos_meta::Title;

use crate::api::{get_live_snapshot, refresh_now};
use crate::charts;
use crate::components::chart::ChartPanel;
use crate::components::live::{use_live, CLIENT_HISTORY};
use crate::components::metric_card::{format_bytes, format_ms, Level, MetricCard};
use crate::model::live::{LiveSnapshot, Sample};

/// The charts' window.
pub const CHART_WINDOW_MS: u64 = 60_000;

#[component]
pub fn DashboardPage() -> impl IntoView {
    let initial = Resource::new_blocking(|| (), |_| get_live_snapshot(CLIENT_HISTORY));
    view! {
        <Title text="Dashboard" />
        <section class="page" data-testid="page-dashboard">
            <div class="page-head">
                <h1>"Dashboard"</h1>
                <RefreshButton />
            </div>
            <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    let seed = initial.await.unwrap_or_default();
                    view! { <DashboardBody seed /> }
                })}
            </Suspense>
        </section>
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
fn DashboardBody(seed: LiveSnapshot) -> impl IntoView {
    let live = use_live();
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

    let window = move || {
        let h = history.get();
        let now = h.last().map_or(0, |s| s.at_ms);
        let from = now.saturating_sub(CHART_WINDOW_MS);
        (h.into_iter().filter(|s| s.at_ms >= from).collect::<Vec<_>>(), now)
    };
    let cpu_chart = Signal::derive(move || {
        let (w, now) = window();
        let points: Vec<_> =
            w.iter().map(|s| (s.at_ms, s.system.cpu_pct, s.system.memory_pct)).collect();
        charts::cpu_memory_chart(&points, CHART_WINDOW_MS, now)
    });
    let action_chart = Signal::derive(move || {
        let (w, now) = window();
        let points: Vec<_> = w
            .iter()
            .map(|s| (s.at_ms, s.actions.actions_per_min, s.actions.avg_duration_ms))
            .collect();
        charts::action_chart(&points, CHART_WINDOW_MS, now)
    });
    let queue_chart = Signal::derive(move || {
        let (w, now) = window();
        let points: Vec<_> =
            w.iter().map(|s| (s.at_ms, s.actions.queue_depth, s.events.queue_depth)).collect();
        charts::queue_chart(&points, CHART_WINDOW_MS, now)
    });
    let errors_chart = Signal::derive(move || {
        let (w, now) = window();
        let points: Vec<_> = w.iter().map(|s| (s.at_ms, s.actions.error_count)).collect();
        charts::errors_chart(&points, CHART_WINDOW_MS, now)
    });

    view! {
        <div class="cards" data-testid="cards">
            <MetricCard
                label="CPU"
                testid="card-cpu"
                value=pick(|s| format!("{:.1} %", s.system.cpu_pct))
                level=Signal::derive(move || Level::rising(cpu.get(), 70.0, 90.0))
                detail=pick(|s| format!("{} cores · load {:.2}", s.system.per_core_pct.len(), s.system.load_avg_1))
            />
            <MetricCard
                label="Memory"
                testid="card-memory"
                value=pick(|s| format!("{:.1} %", s.system.memory_pct))
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
                value=pick(|s| format!("{:.0}", s.actions.actions_per_min))
                level=Signal::derive(|| Level::Neutral)
                detail=pick(|s| format!("avg {}", format_ms(s.actions.avg_duration_ms)))
            />
            <MetricCard
                label="Success rate"
                testid="card-success"
                value=pick(|s| match s.actions.success_pct {
                    Some(pct) => format!("{pct:.1} %"),
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
                value=pick(|s| format!("{:.0}", s.actions.queue_depth))
                level=Signal::derive(move || Level::rising(aq.get(), 10.0, 100.0))
            />
            <MetricCard
                label="Event queue"
                testid="card-event-queue"
                value=pick(|s| format!("{:.0}", s.events.queue_depth))
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
        <div class="charts">
            <ChartPanel title="CPU and memory (%)" testid="chart-cpu-memory" svg=cpu_chart />
            <ChartPanel title="Action performance" testid="chart-actions" svg=action_chart />
            <ChartPanel title="Queue depths" testid="chart-queues" svg=queue_chart />
            <ChartPanel title="Errors" testid="chart-errors" svg=errors_chart />
        </div>
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
                        format!("{:.2} / {:.2} / {:.2}", s.load_avg_1, s.load_avg_5, s.load_avg_15)
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
                        format!("{:.1} % CPU · {}", s.self_cpu_pct, format_bytes(s.self_rss_bytes as f64))
                    }}
                </dd>
            </div>
        </dl>
    }
}
