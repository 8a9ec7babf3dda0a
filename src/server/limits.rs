//! Rate limits on the requests that make the server recompute or resample (a well-kept GCRA
//! implementation, `governor`): a refused request is answered at once (429 over HTTP, an
//! `error` message over the WebSocket) and counted, and costs nothing else.
//!
//! | what | per connection | whole server |
//! |---|---|---|
//! | `request_metrics` over `/ws` (a fresh snapshot), and a client's own snapshot of more than a page's samples on connecting | 2/s, burst 5 (`request_metrics`) | 50/s, burst 100 |
//! | manual refresh (a sample out of schedule) | — | 2/s, burst 4 |
//! | statistics queries (`/api/v1/operations…`, the Operations page) | — | 200/s, burst 400 |

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::http::StatusCode;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

use super::error::ApiError;

fn quota(per_second: u32, burst: u32) -> Quota {
    let rate = NonZeroU32::new(per_second).unwrap_or(NonZeroU32::MIN);
    let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
    Quota::per_second(rate).allow_burst(burst)
}

/// One limit with a count of what it refused.
pub struct Limit {
    what: &'static str,
    limiter: DefaultDirectRateLimiter,
    refused: AtomicU64,
}

impl Limit {
    pub fn new(what: &'static str, per_second: u32, burst: u32) -> Self {
        let limiter = RateLimiter::direct(quota(per_second, burst));
        Limit { what, limiter, refused: AtomicU64::new(0) }
    }

    /// Takes one request's permit; false (and counted) when the limit is reached.
    pub fn admit(&self) -> bool {
        let ok = self.limiter.check().is_ok();
        if !ok {
            self.refused.fetch_add(1, Ordering::Relaxed);
        }
        ok
    }

    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// [`Self::admit`] as an HTTP answer: a 429 (with `Retry-After`) when refused.
    pub fn check(&self) -> Result<(), ApiError> {
        if self.admit() {
            Ok(())
        } else {
            Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                format!("too many {} requests: try again in a second", self.what),
            ))
        }
    }
}

/// The server-wide limits on HTTP requests (the live hub holds those of `/ws`).
pub struct RateLimits {
    pub refresh: Limit,
    pub queries: Limit,
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            refresh: Limit::new("refresh", 2, 4),
            queries: Limit::new("statistics query", 200, 400),
        }
    }
}

impl RateLimits {
    pub fn shared() -> Arc<Self> {
        Arc::new(Self::default())
    }
}

/// The whole server's limit on snapshots made for one client over `/ws`: `request_metrics`,
/// and a client's own snapshot on connecting when it holds more than a page's samples.
pub fn all_snapshot_requests() -> Limit {
    Limit::new("snapshot", 50, 100)
}

/// One connection's limit on `request_metrics`.
pub fn connection_snapshot_requests() -> Limit {
    Limit::new("snapshot", 2, 5)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_beyond_the_limit_is_refused_and_counted() {
        let limit = Limit::new("test", 1, 3);
        let admitted = (0..10).filter(|_| limit.admit()).count();
        assert_eq!(admitted, 3);
        assert_eq!(limit.refused(), 7);
        use axum::response::IntoResponse;
        let response = limit.check().unwrap_err().into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[axum::http::header::RETRY_AFTER], "1");
    }
}
