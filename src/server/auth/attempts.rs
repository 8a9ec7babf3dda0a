//! Guessing the token is slow: failed token attempts are limited per client address, and a
//! flood of failures from many addresses closes token checks for the whole server briefly.
//!
//! - An address may fail [`FAILURES_PER_ADDRESS`] times; after that every token it presents
//!   (`Authorization`, `X-Vitals-Token`, the sign-in form) is refused with 429 before being
//!   compared, until [`LOCKOUT`] has passed since its last failure. A right token gives its
//!   attempt back, so a script that always sends the right token is never limited.
//! - The attempt is taken before the token is compared (and given back when it was right), so
//!   concurrent guesses from one address cannot slip past the count.
//! - An IPv6 client counts by its /64 network (one host usually holds the whole of it).
//! - At most [`ADDRESSES_HELD`] addresses are remembered (least recently failed go first).
//!   Beyond [`SERVER_FAILURES_PER_SEC`] failures a second (burst [`SERVER_FAILURE_BURST`])
//!   from everywhere together, every token check is refused for [`SERVER_PAUSE`]: an attacker
//!   with more addresses than are held pauses sign-in for all, but cannot guess faster.
//! - The address is the TCP peer's; with `--trust-forwarded`, the last address of
//!   `X-Forwarded-For` (the one the reverse proxy appended). Sessions (cookies) are not
//!   counted: a stale cookie after a restart locks no browser out.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::HeaderMap;
use moka::ops::compute::Op;
use moka::policy::EvictionPolicy;
use moka::sync::Cache;

use crate::server::limits::Limit;

/// Failed token attempts an address may make before it is locked out.
pub const FAILURES_PER_ADDRESS: u32 = 10;
/// How long an address stays locked out after its last failure.
pub const LOCKOUT: Duration = Duration::from_secs(60);
/// Addresses whose failures are remembered.
pub const ADDRESSES_HELD: u64 = 10_000;
/// Failures a second, from every address together, before token checks pause.
pub const SERVER_FAILURES_PER_SEC: u32 = 20;
/// The burst of [`SERVER_FAILURES_PER_SEC`].
pub const SERVER_FAILURE_BURST: u32 = 100;
/// How long token checks pause after the server-wide failures ran over.
pub const SERVER_PAUSE: Duration = Duration::from_secs(1);

/// Whom an attempt counts against: an IPv4 address, an IPv6 /64 network, or (no peer known,
/// as for a router driven in process) everyone unknown together.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Client {
    V4(u32),
    V6Net(u64),
    Unknown,
}

impl Client {
    fn of(ip: IpAddr) -> Client {
        match ip {
            IpAddr::V4(v4) => Client::V4(v4.into()),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Client::V4(v4.into()),
                None => Client::V6Net((u128::from(v6) >> 64) as u64),
            },
        }
    }

    /// The client of a request from the TCP peer `peer`: with `trust_forwarded`, the last
    /// address of the last `X-Forwarded-For` header when it parses.
    pub fn resolve(headers: &HeaderMap, peer: Peer, trust_forwarded: bool) -> Client {
        let forwarded = || {
            let last = headers.get_all("x-forwarded-for").iter().next_back()?;
            let addr = last.to_str().ok()?.rsplit(',').next()?.trim();
            // `[v6]:port` and `v4:port` forms, as some proxies write them.
            addr.parse::<IpAddr>().ok().or_else(|| addr.parse::<SocketAddr>().ok().map(|s| s.ip()))
        };
        let ip = if trust_forwarded { forwarded().or(peer.0) } else { peer.0 };
        ip.map_or(Client::Unknown, Client::of)
    }
}

/// The TCP peer's address, when the listener recorded it (`into_make_service_with_connect_info`).
#[derive(Clone, Copy, Debug, Default)]
pub struct Peer(pub Option<IpAddr>);

impl Peer {
    pub fn of(extensions: &axum::http::Extensions) -> Peer {
        Peer(extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip()))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Peer::of(&parts.extensions))
    }
}

/// An attempt taken by [`Attempts::take`]: give it back when the token was right.
#[must_use]
pub struct Taken(Client);

/// The failures of each address and of the whole server.
pub struct Attempts {
    failures: Cache<Client, u32>,
    allowed: u32,
    server: Limit,
    started: Instant,
    /// Milliseconds since `started` until which every check is refused.
    paused_until_ms: AtomicU64,
}

impl Attempts {
    pub fn new() -> Self {
        Self::with(FAILURES_PER_ADDRESS, LOCKOUT)
    }

    /// With other limits (tests).
    pub fn with(allowed: u32, lockout: Duration) -> Self {
        Attempts {
            failures: Cache::builder()
                .max_capacity(ADDRESSES_HELD)
                .eviction_policy(EvictionPolicy::lru())
                .time_to_live(lockout)
                .build(),
            allowed,
            server: Limit::new("token attempt", SERVER_FAILURES_PER_SEC, SERVER_FAILURE_BURST),
            started: Instant::now(),
            paused_until_ms: AtomicU64::new(0),
        }
    }

    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// Takes one attempt of `client`'s; `None` (compare nothing) when it is locked out or the
    /// server's checks are paused.
    pub fn take(&self, client: Client) -> Option<Taken> {
        if self.now_ms() < self.paused_until_ms.load(Ordering::Relaxed) {
            return None;
        }
        let allowed = self.allowed;
        let result = self.failures.entry(client).and_compute_with(|entry| match entry {
            Some(e) if *e.value() >= allowed => Op::Nop,
            Some(e) => Op::Put(e.value() + 1),
            None => Op::Put(1),
        });
        match result {
            moka::ops::compute::CompResult::Unchanged(_) => None,
            _ => Some(Taken(client)),
        }
    }

    /// The token was right: the attempt is given back.
    pub fn right(&self, taken: Taken) {
        self.failures.entry(taken.0).and_compute_with(|entry| match entry {
            Some(e) if *e.value() > 1 => Op::Put(e.value() - 1),
            Some(_) => Op::Remove,
            None => Op::Nop,
        });
    }

    /// The token was wrong: the attempt stays counted, and the server's checks pause when
    /// failures everywhere run over their limit.
    pub fn wrong(&self, taken: Taken) {
        let Taken(_) = taken;
        if !self.server.admit() {
            let until = self.now_ms() + SERVER_PAUSE.as_millis() as u64;
            self.paused_until_ms.fetch_max(until, Ordering::Relaxed);
        }
    }

    /// Attempts refused so far because the server's failures ran over (each address's own
    /// lockouts are not counted here).
    pub fn server_refusals(&self) -> u64 {
        self.server.refused()
    }
}

impl Default for Attempts {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn v4(text: &str) -> Client {
        Client::of(text.parse().unwrap())
    }

    #[test]
    fn an_address_is_locked_out_after_its_failures_and_others_are_not() {
        let attempts = Attempts::with(3, Duration::from_secs(60));
        let a = v4("10.0.0.1");
        for _ in 0..3 {
            let taken = attempts.take(a).expect("under the limit");
            attempts.wrong(taken);
        }
        assert!(attempts.take(a).is_none(), "a fourth guess is refused before comparing");
        let b = v4("10.0.0.2");
        let taken = attempts.take(b).expect("another address is not locked out");
        attempts.right(taken);
    }

    #[test]
    fn a_right_token_gives_its_attempt_back() {
        let attempts = Attempts::with(2, Duration::from_secs(60));
        let a = v4("10.0.0.1");
        for _ in 0..100 {
            let taken = attempts.take(a).expect("right tokens are never limited");
            attempts.right(taken);
        }
        let taken = attempts.take(a).unwrap();
        attempts.wrong(taken);
        let taken = attempts.take(a).unwrap();
        attempts.right(taken);
        let taken = attempts.take(a).expect("one failure of two allowed");
        attempts.wrong(taken);
        assert!(attempts.take(a).is_none());
    }

    #[test]
    fn a_lockout_ends_after_its_time() {
        let attempts = Attempts::with(1, Duration::from_millis(200));
        let a = v4("10.0.0.1");
        let taken = attempts.take(a).unwrap();
        attempts.wrong(taken);
        assert!(attempts.take(a).is_none());
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(taken) = attempts.take(a) {
                attempts.right(taken);
                break;
            }
            assert!(Instant::now() < deadline, "the lockout did not end");
            std::thread::yield_now();
        }
    }

    #[test]
    fn failures_from_many_addresses_pause_every_check() {
        let attempts = Attempts::with(FAILURES_PER_ADDRESS, LOCKOUT);
        let mut refused = false;
        for i in 0..1000u32 {
            let client = Client::V4(i);
            match attempts.take(client) {
                Some(taken) => attempts.wrong(taken),
                None => {
                    refused = true;
                    break;
                }
            }
        }
        assert!(refused, "a flood from 1,000 addresses was never paused");
        assert!(attempts.take(v4("192.0.2.9")).is_none(), "a fresh address waits too");
        assert!(attempts.server_refusals() > 0);
    }

    #[test]
    fn the_client_is_the_peer_unless_a_trusted_proxy_names_it() {
        let peer = Peer(Some("127.0.0.1".parse().unwrap()));
        let mut headers = HeaderMap::new();
        headers.append("x-forwarded-for", HeaderValue::from_static("203.0.113.7, 198.51.100.2"));
        assert_eq!(Client::resolve(&headers, peer, false), v4("127.0.0.1"));
        assert_eq!(Client::resolve(&headers, peer, true), v4("198.51.100.2"));
        headers.append("x-forwarded-for", HeaderValue::from_static("[2001:db8::1]:443"));
        let net = Client::resolve(&headers, peer, true);
        assert_eq!(net, Client::of("2001:db8::ffff".parse().unwrap()), "one /64");
        assert_ne!(net, Client::of("2001:db8:0:1::1".parse().unwrap()));
        let garbage = {
            let mut h = HeaderMap::new();
            h.insert("x-forwarded-for", HeaderValue::from_static("not an address"));
            h
        };
        assert_eq!(Client::resolve(&garbage, peer, true), v4("127.0.0.1"));
        assert_eq!(Client::resolve(&HeaderMap::new(), Peer(None), true), Client::Unknown);
        assert_eq!(v4("10.1.2.3"), Client::of("::ffff:10.1.2.3".parse().unwrap()));
    }
}
