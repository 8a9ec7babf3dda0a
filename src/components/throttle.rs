//! What a view fetches again when the alerts change (the bands on the charts, the alert history,
//! the recommendations), at most once per [`ALERT_REFETCH`]: an alert storm changes the alerts
//! on every tick, and every open page fetching on every tick would cost the server a query per
//! page per second. The first change is acted on at once, and a change during the pause that
//! follows is acted on when it ends, so the view is never left behind the last change.

use std::time::Duration;

use leptos::prelude::*;

use super::live::LiveContext;

/// The least time between two fetches that the alerts' changes cause.
pub const ALERT_REFETCH: Duration = Duration::from_secs(5);

/// Whether to act on a change now, a change at a time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Throttle {
    /// A pause is running: changes now wait for its end.
    pausing: bool,
    /// A change came during the pause.
    owed: bool,
}

impl Throttle {
    /// A change: true when it is to be acted on now (a pause then begins).
    pub fn change(&mut self) -> bool {
        if self.pausing {
            self.owed = true;
            false
        } else {
            self.pausing = true;
            true
        }
    }

    /// The pause ended: true when a change came during it, which is to be acted on now (another
    /// pause then begins).
    pub fn pause_ended(&mut self) -> bool {
        self.pausing = std::mem::take(&mut self.owed);
        self.pausing
    }
}

/// Runs `act` when the live alerts change (not for what they were when the view was made), at
/// most once per `pause`.
pub fn on_alert_changes(live: LiveContext, pause: Duration, act: impl Fn() + Clone + 'static) {
    let throttle = StoredValue::new(Throttle::default());
    Effect::new(move |made: Option<()>| {
        live.alerts_changed.track();
        if made.is_some() && throttle.try_update_value(Throttle::change) == Some(true) {
            act();
            end_pause_later(throttle, pause, act.clone());
        }
    });
}

fn end_pause_later(
    throttle: StoredValue<Throttle>,
    pause: Duration,
    act: impl Fn() + Clone + 'static,
) {
    set_timeout(
        move || {
            if throttle.try_update_value(Throttle::pause_ended) == Some(true) {
                act();
                end_pause_later(throttle, pause, act);
            }
        },
        pause,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_change_acts_at_once_and_the_rest_of_a_pause_once_at_its_end() {
        let mut t = Throttle::default();
        assert!(t.change(), "the first change");
        assert!(!t.change() && !t.change() && !t.change(), "changes during the pause wait");
        assert!(t.pause_ended(), "…and are acted on once when it ends");
        // That began another pause: a change during it waits again.
        assert!(!t.change());
        assert!(t.pause_ended());
        // A pause without changes ends quietly; the next change acts at once.
        assert!(!t.pause_ended());
        assert!(t.change());
        assert!(!t.pause_ended());
        assert!(t.change());
    }
}
