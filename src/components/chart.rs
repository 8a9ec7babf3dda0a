//! A chart panel: a titled box holding an SVG drawn by [`crate::charts`], redrawn reactively.
//! Given `on_zoom`, dragging across a time chart selects a range: the band follows the pointer
//! and, on release, `on_zoom` gets the chosen span in Unix ms (read from the time range the
//! chart states on its `<svg>`, see `charts::frame::render_over`).

use leptos::prelude::*;

use crate::charts::{alert_bands, fixed};
use crate::model::alerts::AlertSpan;
use crate::model::history::Span;

/// A drag narrower than this share of the chart's width is a click, not a zoom.
const MIN_DRAG_SHARE: f64 = 0.01;

/// Holds a view's refreshes while a range is being dragged on one of its charts. A view that
/// re-creates its charts when it refreshes would otherwise drop a drag under way: the new chart
/// does not know where it started.
#[derive(Clone, Copy)]
pub struct DragHold(RwSignal<bool>);

impl DragHold {
    pub fn new() -> Self {
        DragHold(RwSignal::new(false))
    }

    /// The refresh counter a view over `span` should follow: `version` for ranges that move
    /// (a live window, the last so long), 0 for a fixed range (its answer does not change), and
    /// held at its last value while a drag is under way.
    pub fn refreshes(self, span: Memo<Span>, version: Memo<u64>) -> Memo<u64> {
        Memo::new(move |previous: Option<&u64>| {
            if matches!(span.get(), Span::Between(..)) {
                0
            } else if self.0.get() {
                previous.copied().unwrap_or_else(|| version.get_untracked())
            } else {
                version.get()
            }
        })
    }
}

impl Default for DragHold {
    fn default() -> Self {
        Self::new()
    }
}

/// `svg` is recomputed whenever its inputs change; the markup comes from our own chart code.
#[component]
pub fn ChartPanel(
    #[prop(into)] title: String,
    #[prop(into)] testid: String,
    #[prop(into)] svg: Signal<String>,
    /// Called with `(from_ms, to_ms)` when a range is dragged across the chart.
    #[prop(optional, into)]
    on_zoom: Option<Callback<(u64, u64)>>,
    /// Told while a drag is under way, so the view holds its refreshes.
    #[prop(optional)]
    hold: Option<DragHold>,
    /// When alerts fired: drawn as bands over the chart's span, coloured by severity.
    #[prop(optional, into)]
    alerts: Option<Signal<Vec<AlertSpan>>>,
) -> impl IntoView {
    // The drag in progress: where it started and where the pointer is, as shares of the width.
    let drag = RwSignal::new(None::<(f64, f64)>);
    let holding = move |on: bool| {
        if let Some(DragHold(held)) = hold {
            if held.get_untracked() != on {
                held.set(on);
            }
        }
    };
    let zoomable = on_zoom.is_some();
    let band_style = move || {
        drag.get().map(|(a, b)| {
            let (left, right) = (a.min(b), a.max(b));
            format!(
                "left: {}%; width: {}%",
                fixed(left * 100.0, 2),
                fixed((right - left) * 100.0, 2)
            )
        })
    };
    view! {
        <figure class="chart-panel" data-testid=testid>
            <figcaption>{title}</figcaption>
            <div
                class="chart"
                class:zoomable=zoomable
                title=zoomable.then_some("Drag across the chart to zoom into a range")
                on:pointerdown=move |ev| {
                    if zoomable && ev.button() == 0 {
                        let x = share_of(&ev);
                        drag.set(x.map(|x| (x, x)));
                        holding(x.is_some());
                        capture(&ev);
                    }
                }
                on:pointermove=move |ev| {
                    if drag.with_untracked(Option::is_some) {
                        if let Some(x) = share_of(&ev) {
                            drag.update(|d| if let Some(d) = d { d.1 = x });
                        }
                    }
                }
                on:pointerup=move |ev| {
                    let Some((a, _)) = drag.get_untracked() else { return };
                    drag.set(None);
                    holding(false);
                    let (Some(b), Some(on_zoom)) = (share_of(&ev), on_zoom) else { return };
                    if (a - b).abs() < MIN_DRAG_SHARE {
                        return;
                    }
                    if let Some(range) = time_range_of(&ev, a.min(b), a.max(b)) {
                        on_zoom.run(range);
                    }
                }
                on:pointercancel=move |_| {
                    drag.set(None);
                    holding(false);
                }
            >
                <div class="chart-svg" inner_html=move || svg.get()></div>
                {move || {
                    let spans = alerts?;
                    // Either signal may be gone while this view waits to be replaced (a
                    // `Transition` keeps the old charts on screen while new ones load, and an
                    // alert refetch can land then): no bands, rather than a panic.
                    let bands =
                        svg.try_with(|svg| spans.try_with(|spans| alert_bands(svg, spans)))??;
                    Some(bands.into_iter().map(|b| view! {
                        <div
                            class=format!("alert-band {}", b.severity.as_str())
                            data-testid="alert-band"
                            data-rule=b.rule
                            title=b.title
                            style=format!("left: {}%; width: {}%", fixed(b.left_pct, 2), fixed(b.width_pct, 2))
                        ></div>
                    }).collect_view())
                }}
                {move || band_style().map(|style| view! {
                    <div class="zoom-band" data-testid="zoom-band" style=style></div>
                })}
            </div>
        </figure>
    }
}

/// Where the pointer is across the chart's box, 0.0 (left edge) ..= 1.0.
#[cfg(feature = "hydrate")]
fn share_of(ev: &leptos::ev::PointerEvent) -> Option<f64> {
    use wasm_bindgen::JsCast;
    let target = ev.current_target()?.dyn_into::<web_sys::Element>().ok()?;
    let rect = target.get_bounding_client_rect();
    (rect.width() > 0.0)
        .then(|| ((f64::from(ev.client_x()) - rect.left()) / rect.width()).clamp(0.0, 1.0))
}

#[cfg(not(feature = "hydrate"))]
fn share_of(_: &leptos::ev::PointerEvent) -> Option<f64> {
    None
}

/// Keeps the pointer's events on the chart while dragging past its edge.
fn capture(ev: &leptos::ev::PointerEvent) {
    #[cfg(feature = "hydrate")]
    {
        use wasm_bindgen::JsCast;
        if let Some(target) =
            ev.current_target().and_then(|t| t.dyn_into::<web_sys::Element>().ok())
        {
            let _ = target.set_pointer_capture(ev.pointer_id());
        }
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = ev;
}

/// The span between shares `a` and `b` of the box's width, mapped through where the chart's
/// `<svg>` says its time range is drawn; `None` for a chart without them.
#[cfg(feature = "hydrate")]
fn time_range_of(ev: &leptos::ev::PointerEvent, a: f64, b: f64) -> Option<(u64, u64)> {
    use wasm_bindgen::JsCast;
    let target = ev.current_target()?.dyn_into::<web_sys::Element>().ok()?;
    let svg = target.query_selector("svg[data-from-ms]").ok()??;
    // Whole numbers (see `charts::frame::render_over`).
    let attr = |name: &str| svg.get_attribute(name)?.parse::<u64>().ok().map(|v| v as f64);
    let (from, to) = (attr("data-from-ms")?, attr("data-to-ms")?);
    let (x0, x1) = (attr("data-plot-x0")?, attr("data-plot-x1")?);
    let width = f64::from(crate::charts::WIDTH_PX);
    let time_at = |share: f64| {
        let plot = ((share * width - x0) / (x1 - x0)).clamp(0.0, 1.0);
        (from + plot * (to - from)).round() as u64
    };
    let (start, end) = (time_at(a), time_at(b));
    (end > start).then_some((start, end))
}

#[cfg(not(feature = "hydrate"))]
fn time_range_of(_: &leptos::ev::PointerEvent, _: f64, _: f64) -> Option<(u64, u64)> {
    None
}
