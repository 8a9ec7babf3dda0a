//! When alerts fired over a view's span, for the bands its charts draw ([`ChartPanel`]'s
//! `alerts`). Fetched in the browser only (the server-rendered page has no bands, so hydration
//! matches), and again whenever the live stream says the alerts changed or the span moves.
//!
//! [`ChartPanel`]: super::chart::ChartPanel

use leptos::prelude::*;

use crate::api::get_alert_spans;
use crate::components::live::use_live;
use crate::model::alerts::AlertSpan;
use crate::model::history::Span;

/// The series name of alerts on host metrics (`targets::HOST_SERIES` on the server).
pub const HOST_SERIES: &str = "host";

/// The alert spans over `span` of the instances labelled with every one of `labels` (empty
/// until fetched, and when the fetch fails: bands are an aid, never a reason to fail a page).
pub fn use_alert_spans(
    span: Signal<Span>,
    labels: Vec<(String, String)>,
) -> Signal<Vec<AlertSpan>> {
    let live = use_live();
    let spans = LocalResource::new(move || {
        live.alerts.track();
        let (span, labels) = (span.get(), labels.clone());
        async move { get_alert_spans(span, labels).await.map(|a| a.spans).unwrap_or_default() }
    });
    Signal::derive(move || spans.get().unwrap_or_default())
}

/// The spans of `spans` that `keep` keeps, as a signal of their own.
pub fn filtered(
    spans: Signal<Vec<AlertSpan>>,
    keep: fn(&AlertSpan) -> bool,
) -> Signal<Vec<AlertSpan>> {
    Signal::derive(move || spans.with(|s| s.iter().filter(|s| keep(s)).cloned().collect()))
}
