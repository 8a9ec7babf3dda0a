//! Guessing the token is slow: failed token attempts are limited per client address, and a
//! flood of failures from many addresses closes token checks for the whole server briefly.
//!
//! - An address may fail [`FAILURES_PER_ADDRESS`] times, each within [`LOCKOUT`] of the one
//!   before; after that every token it presents (`Authorization`, `X-Vitals-Token`, the
//!   sign-in form) is refused with 429 before being compared, until [`LOCKOUT`] has passed
//!   since its last failure. Right tokens are not recorded: a script that sends the right one
//!   is never limited unless its address is locked out.
//! - The check and the record have no `await` between them: concurrent guesses from one
//!   address get at most one more comparison per runtime thread past the limit.
//! - An IPv6 client counts by its /64 network (one host usually holds the whole of it).
//! - At most [`ADDRESSES_HELD`] addresses are remembered (least recently failed go first).
//!   Beyond [`SERVER_FAILURES_PER_SEC`] failures a second (burst [`SERVER_FAILURE_BURST`])
//!   from everywhere together, every token check is refused for [`SERVER_PAUSE`] (429 with
//!   `Retry-After: 1`): an attacker with more addresses than are held pauses token checks
//!   for all, but cannot guess faster.
//! - The address is the TCP peer's; with `--trust-forwarded` and a peer on this host or a
//!   private network (where a reverse proxy would be), the last address of
//!   `X-Forwarded-For` (the one the proxy appended). Sessions (cookies) are not counted: a
//!   stale cookie after a restart locks no browser out.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::HeaderMap;
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

    /// The client of a request from the TCP peer `peer`: with `trust_forwarded` and a peer
    /// where a reverse proxy of ours would be ([`proxy_may_be_at`]), the last address of the
    /// last `X-Forwarded-For` header when it parses.
    pub fn resolve(headers: &HeaderMap, peer: Peer, trust_forwarded: bool) -> Client {
        let forwarded = || {
            let last = headers.get_all("x-forwarded-for").iter().next_back()?;
            let addr = last.to_str().ok()?.rsplit(',').next()?.trim();
            // `[v6]:port` and `v4:port` forms, as some proxies write them.
            addr.parse::<IpAddr>().ok().or_else(|| addr.parse::<SocketAddr>().ok().map(|s| s.ip()))
        };
        let believed = trust_forwarded && peer.0.is_some_and(proxy_may_be_at);
        let ip = if believed { forwarded().or(peer.0) } else { peer.0 };
        ip.map_or(Client::Unknown, Client::of)
    }
}

/// Whether a reverse proxy in front of Vitals may be at `ip`: this host, or a private network
/// (RFC 1918, IPv6 unique-local and link-local, as container networks are). A client from
/// the internet that reaches the port directly names no other client.
fn proxy_may_be_at(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback() || v4.is_private() || v4.is_link_local(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => proxy_may_be_at(IpAddr::V4(v4)),
            None => {
                let first = v6.segments()[0];
                v6.is_loopback() || (first & 0xfe00) == 0xfc00 || (first & 0xffc0) == 0xfe80
            }
        },
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

/// Why a token was not compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Its address failed too often; it may try again after this many seconds.
    LockedOut { retry_after_secs: u64 },
    /// Wrong tokens from everywhere ran over: every check pauses for [`SERVER_PAUSE`].
    Paused,
}

/// An address's failures: how many, and when the last one was (ms since the start). Older
/// than the lockout, they are forgotten.
#[derive(Clone, Copy, Debug)]
struct Failures {
    count: u32,
    last_ms: u64,
}

/// The failures of each address and of the whole server.
pub struct Attempts {
    /// Its time to live only frees memory: whether failures still count is decided by their
    /// `last_ms` (the cache would also restart the time at every read-and-write).
    failures: Cache<Client, Failures>,
    allowed: u32,
    lockout_ms: u64,
    server: Limit,
    started: Instant,
    /// Milliseconds since `started` until which every check is refused.
    paused_until_ms: AtomicU64,
    /// Wrong tokens since the start.
    wrong: AtomicU64,
    /// Tokens refused uncompared since the start (an address locked out, or checks paused).
    refused: AtomicU64,
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
            lockout_ms: lockout.as_millis() as u64,
            server: Limit::new("token attempt", SERVER_FAILURES_PER_SEC, SERVER_FAILURE_BURST),
            started: Instant::now(),
            paused_until_ms: AtomicU64::new(0),
            wrong: AtomicU64::new(0),
            refused: AtomicU64::new(0),
        }
    }

    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// Whether a token from `client` may be compared now. Checked and recorded without an
    /// `await` between them, so concurrent guesses from one address get at most one more
    /// comparison per runtime thread past the limit.
    pub fn check(&self, client: Client) -> Result<(), Refusal> {
        let refusal = self.refusal(client);
        if refusal.is_some() {
            self.refused.fetch_add(1, Ordering::Relaxed);
        }
        refusal.map_or(Ok(()), Err)
    }

    fn refusal(&self, client: Client) -> Option<Refusal> {
        let now = self.now_ms();
        if now < self.paused_until_ms.load(Ordering::Relaxed) {
            return Some(Refusal::Paused);
        }
        let failures = self.failures.get(&client)?;
        let since = now.saturating_sub(failures.last_ms);
        (failures.count >= self.allowed && since < self.lockout_ms).then(|| Refusal::LockedOut {
            retry_after_secs: (self.lockout_ms - since).div_ceil(1000).max(1),
        })
    }

    /// `client`'s token was wrong: counted for it, and the server's checks pause when wrong
    /// tokens from everywhere run over their limit.
    pub fn wrong(&self, client: Client) {
        self.wrong.fetch_add(1, Ordering::Relaxed);
        let now = self.now_ms();
        let lockout_ms = self.lockout_ms;
        self.failures.entry(client).and_upsert_with(|entry| match entry {
            Some(e) if now.saturating_sub(e.value().last_ms) < lockout_ms => {
                Failures { count: e.value().count.saturating_add(1), last_ms: now }
            }
            _ => Failures { count: 1, last_ms: now },
        });
        if !self.server.admit() {
            let until = now + SERVER_PAUSE.as_millis() as u64;
            self.paused_until_ms.fetch_max(until, Ordering::Relaxed);
        }
    }

    /// Wrong tokens, and tokens refused uncompared, since the start.
    pub fn counts(&self) -> (u64, u64) {
        (self.wrong.load(Ordering::Relaxed), self.refused.load(Ordering::Relaxed))
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
            attempts.check(a).expect("under the limit");
            attempts.wrong(a);
        }
        let refusal = attempts.check(a).expect_err("a fourth guess is refused before comparing");
        assert_eq!(refusal, Refusal::LockedOut { retry_after_secs: 60 });
        assert_eq!(attempts.counts(), (3, 1));
        attempts.check(v4("10.0.0.2")).expect("another address is not locked out");
    }

    #[test]
    fn right_tokens_are_never_limited_and_leave_no_trace() {
        let attempts = Attempts::with(2, Duration::from_secs(60));
        let a = v4("10.0.0.1");
        attempts.wrong(a);
        for _ in 0..100 {
            // A right token is checked, never recorded.
            attempts.check(a).expect("one failure of two allowed");
        }
        attempts.wrong(a);
        assert!(attempts.check(a).is_err());
    }

    #[test]
    fn failures_are_forgotten_a_lockout_after_the_last_one() {
        let attempts = Attempts::with(2, Duration::from_millis(200));
        let a = v4("10.0.0.1");
        attempts.wrong(a);
        attempts.wrong(a);
        assert!(attempts.check(a).is_err());
        let deadline = Instant::now() + Duration::from_secs(10);
        while attempts.check(a).is_err() {
            assert!(Instant::now() < deadline, "the lockout did not end");
            std::thread::yield_now();
        }
        // The old failures no longer count: one new one does not lock it out again.
        attempts.wrong(a);
        attempts.check(a).expect("one failure after the lockout ended");
    }

    #[test]
    fn failures_from_many_addresses_pause_every_check_for_a_second() {
        let attempts = Attempts::with(FAILURES_PER_ADDRESS, LOCKOUT);
        let mut paused = None;
        for i in 0..1000u32 {
            match attempts.check(Client::V4(i)) {
                Ok(()) => attempts.wrong(Client::V4(i)),
                Err(refusal) => {
                    paused = Some(refusal);
                    break;
                }
            }
        }
        assert_eq!(paused, Some(Refusal::Paused), "a flood from 1,000 addresses");
        assert_eq!(attempts.check(v4("192.0.2.9")), Err(Refusal::Paused), "a fresh one waits");
    }

    #[test]
    fn the_client_is_the_peer_unless_a_proxy_it_trusts_names_it() {
        let peer = Peer(Some("127.0.0.1".parse().unwrap()));
        let mut headers = HeaderMap::new();
        headers.append("x-forwarded-for", HeaderValue::from_static("203.0.113.7, 198.51.100.2"));
        assert_eq!(Client::resolve(&headers, peer, false), v4("127.0.0.1"));
        assert_eq!(Client::resolve(&headers, peer, true), v4("198.51.100.2"));
        let private = Peer(Some("10.1.2.3".parse().unwrap()));
        assert_eq!(Client::resolve(&headers, private, true), v4("198.51.100.2"));
        // A peer on the public internet is no proxy of ours: it names no one.
        let public = Peer(Some("203.0.113.50".parse().unwrap()));
        assert_eq!(Client::resolve(&headers, public, true), v4("203.0.113.50"));
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
