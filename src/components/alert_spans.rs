//! When alerts fired over a view's span, for the bands its charts draw ([`ChartPanel`]'s
//! `alerts`). Fetched in the browser only (the server-rendered page has no bands, so hydration
//! matches), and again when the span moves or, at most every few seconds, when the live stream
//! says the alerts changed.
//!
//! [`ChartPanel`]: super::chart::ChartPanel

use leptos::prelude::*;

use crate::api::get_alert_spans;
use crate::components::live::use_live;
use crate::components::throttle::{on_alert_changes, ALERT_REFETCH};
use crate::model::alerts::AlertSpan;
use crate::model::history::Span;

/// The series name of alerts on host metrics (`targets::HOST_SERIES` on the server).
pub const HOST_SERIES: &str = "host";

/// The alert spans over `span` of the instances labelled with every one of `labels` (empty
/// until fetched, and when the fetch fails: bands are an aid, never a reason to fail a page).
///
/// A plain signal set by an effect, not a resource: read inside a `Transition`, a resource
/// would hold the view's other content back while it refetches.
pub fn use_alert_spans(
    span: Signal<Span>,
    labels: Vec<(String, String)>,
) -> Signal<Vec<AlertSpan>> {
    let live = use_live();
    let spans = RwSignal::new(Vec::new());
    // Only the answer to the latest request is kept (answers may arrive out of order).
    let latest = StoredValue::new(0u64);
    let fetch = move || {
        let (span, labels) = (span.get_untracked(), labels.clone());
        let request = latest.try_update_value(|n| {
            *n += 1;
            *n
        });
        leptos::task::spawn_local(async move {
            let Ok(answer) = get_alert_spans(span, labels).await else { return };
            if request.is_some() && latest.try_get_value() == request {
                spans.try_set(answer.spans);
            }
        });
    };
    // A moved span at once; the alerts' changes at most every few seconds.
    let now = fetch.clone();
    Effect::new(move |_| {
        span.track();
        now();
    });
    on_alert_changes(live, ALERT_REFETCH, fetch);
    spans.into()
}

/// The spans of `spans` that `keep` keeps, as a signal of their own.
pub fn filtered(
    spans: Signal<Vec<AlertSpan>>,
    keep: fn(&AlertSpan) -> bool,
) -> Signal<Vec<AlertSpan>> {
    Signal::derive(move || spans.with(|s| s.iter().filter(|s| keep(s)).cloned().collect()))
}
