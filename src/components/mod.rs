//! Reusable views shared by several pages.

pub mod alert_spans;
pub mod buttons;
pub mod chart;
pub mod keys;
pub mod live;
#[cfg(feature = "hydrate")]
pub mod live_socket;
pub mod metric_card;
pub mod range;
pub mod sort;
pub mod tags;
pub mod throttle;
pub mod visible;
