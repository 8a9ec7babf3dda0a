//! `soak`: a long (by default hour-long) hostile-traffic soak of a running server. It sends a
//! seeded, reproducible mix of valid and hostile StatsD datagrams and HTTP requests to loopback
//! addresses only, at bounded rates, and every `--sample-secs` records the server's RSS, its CPU
//! over the interval, and the latency of a `GET /health` and a `GET /api/v1/operations` probe.
//!
//! The valid traffic includes a stream of ever-new metric names and ever-new set members, so the
//! server's caps are what keeps its memory bounded. The hostile traffic: garbage bytes, invalid
//! UTF-8, huge and non-finite values, overflowing gauge deltas, negative durations, absurd sample
//! rates, 10 KB names, thousands of tags, empty lines and datagrams near 64 KiB over StatsD; bad
//! JSON, wrong content types, huge numbers, deeply nested JSON, bodies at and over the body limit,
//! unknown fields, far timestamps, long names, many tags, foreign `Origin` headers, odd methods
//! and queries over HTTP. Any status is tolerated and counted.
//!
//! It stops by itself after `--secs`, or when the server dies. If the server died or a probe
//! failed (error, non-2xx, or slower than 5 s) it writes the last inputs it sent to
//! `--dump-file` and exits non-zero.

use std::collections::{BTreeMap, VecDeque};
use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use clap::{Parser, ValueEnum};
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use vitals_bench::http::{get_json_once, Conn};
use vitals_bench::{
    latency_summary, micros_histogram, now_unix_ms, process_cpu, record, status_bytes, OtherLoad,
};

#[derive(Parser)]
#[command(about = "Hostile-traffic soak: server RSS, CPU and probe latency over time")]
struct Args {
    /// The server's process id: its RSS and CPU are sampled, and its death ends the soak.
    #[arg(long)]
    server_pid: i32,
    /// The server's HTTP address (loopback only), e.g. 127.0.0.1:3000.
    #[arg(long)]
    http: SocketAddr,
    /// The server's StatsD address (loopback only), e.g. 127.0.0.1:8125.
    #[arg(long)]
    statsd: SocketAddr,
    /// How long to send, in seconds (at most 24 hours).
    #[arg(long, default_value_t = 3600)]
    secs: u64,
    /// Seconds between two samples of RSS, CPU and probe latency.
    #[arg(long, default_value_t = 10)]
    sample_secs: u64,
    /// Offered StatsD lines per second (a near-64 KiB datagram counts all its lines).
    #[arg(long, default_value_t = 50_000)]
    statsd_rate: u64,
    /// Offered HTTP requests per second, over all connections.
    #[arg(long, default_value_t = 50)]
    http_rate: u64,
    /// Keep-alive HTTP connections sending at once (each reopened after an error).
    #[arg(long, default_value_t = 2)]
    http_connections: usize,
    /// Seed of the traffic mix (default: from the clock). Printed, so a run can be repeated.
    #[arg(long)]
    seed: Option<u64>,
    /// The server's body limit (`--max-body-bytes`): bodies are sent at it and over it.
    #[arg(long, default_value_t = 1_048_576)]
    max_body_bytes: usize,
    /// RSS the server should stay under; the summary says whether it did.
    #[arg(long, default_value_t = 64.0)]
    rss_ceiling_mib: f64,
    /// Leave out a kind of StatsD traffic (repeatable), e.g. to find which input grows the server.
    #[arg(long, value_enum)]
    skip_statsd: Vec<StatsdKind>,
    /// Leave out a kind of HTTP traffic (repeatable).
    #[arg(long, value_enum)]
    skip_http: Vec<HttpKind>,
    /// Where to write the last inputs sent if the server dies or stops answering.
    #[arg(long)]
    dump_file: Option<PathBuf>,
}

/// Largest UDP payload over IPv4.
const MAX_DATAGRAM: usize = 65_507;
/// Inputs kept for the dump: StatsD datagrams, and HTTP requests per connection.
const KEEP_DATAGRAMS: usize = 256;
const KEEP_REQUESTS: usize = 32;
/// A probe slower than this counts as not answering.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);
/// A load request slower than this is abandoned and its connection reopened.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
const HEALTH_PATH: &str = "/health";
const OPERATIONS_PATH: &str = "/api/v1/operations?window=1h&limit=100";
const INGEST_PATH: &str = "/api/v1/ingest";
const EVIL_ORIGIN: &str = "http://evil.example";

// --- randomness ------------------------------------------------------------------------------

/// SplitMix64: small, fast and reproducible from its seed.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (0 when `n` is 0).
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next_u64() % n
        }
    }

    /// A number in `lo..hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi.saturating_sub(lo))
    }

    /// True `per_mille` times in 1,000.
    fn chance(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }

    /// A number in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }

    /// A latency-like value in milliseconds, three decimals.
    fn millis(&mut self) -> f64 {
        (self.unit() * self.unit() * 2000.0 * 1000.0).round() / 1000.0
    }

    /// `len` random letters and digits.
    fn alnum(&mut self, len: usize) -> String {
        const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
        (0..len).map(|_| self.pick(CHARS) as char).collect()
    }
}

/// A weighted choice among the kinds of traffic that are not skipped.
struct Mix<K> {
    kinds: Vec<(K, u64)>,
    total: u64,
}

impl<K: Copy + PartialEq + ValueEnum> Mix<K> {
    fn new(weights: &[(K, u64)], skip: &[K]) -> Result<Self> {
        let kinds: Vec<(K, u64)> =
            weights.iter().copied().filter(|(k, _)| !skip.contains(k)).collect();
        let total = kinds.iter().map(|(_, w)| w).sum();
        if total == 0 {
            bail!("every kind of traffic is skipped");
        }
        Ok(Self { kinds, total })
    }

    fn pick(&self, rng: &mut Rng) -> K {
        let mut x = rng.below(self.total);
        for &(kind, weight) in &self.kinds {
            if x < weight {
                return kind;
            }
            x -= weight;
        }
        self.kinds[0].0
    }
}

/// The command-line name of a kind.
fn kind_name<K: ValueEnum>(kind: &K) -> String {
    kind.to_possible_value().map_or_else(|| "?".into(), |v| v.get_name().to_string())
}

/// Paces a stream at `rate` units per second: it sleeps and never spins, and after a stall of
/// more than a second it forgets the backlog rather than bursting.
struct Pacer {
    start: Instant,
    done: f64,
    rate: f64,
}

impl Pacer {
    fn new(rate: f64) -> Self {
        Self { start: Instant::now(), done: 0.0, rate: rate.max(1e-3) }
    }

    /// How long to wait before sending more.
    fn delay(&mut self) -> Duration {
        let now = Instant::now();
        let due = self.start + Duration::from_secs_f64(self.done / self.rate);
        if now > due + Duration::from_secs(1) {
            self.start = now;
            self.done = 0.0;
            return Duration::ZERO;
        }
        due.saturating_duration_since(now)
    }

    fn sent(&mut self, units: u64) {
        self.done += units as f64;
    }
}

// --- StatsD traffic --------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq, Debug, ValueEnum)]
enum StatsdKind {
    /// `soak.op.N:V|ms` (also `h`, `d`, sample rates, tags, events, failures).
    Timer,
    /// `soak.count.N:V|c`, sometimes sampled.
    Counter,
    /// `soak.gauge.N:V|g`, absolute or `+`/`-` deltas, and the queue gauges.
    Gauge,
    /// `soak.set.N:uM|s` with an ever-new member M.
    SetMember,
    /// `soak.new.M:V|ms|c|g|s` with an ever-new name.
    NewName,
    /// `soak.op.N:V:V:V|ms`.
    MultiValue,
    /// Random bytes (invalid UTF-8 included), no newline.
    Garbage,
    /// Invalid UTF-8 in the name, value, type, tags or set member.
    InvalidUtf8,
    /// `1e308`, `1e309`, 400-digit integers and the like, of every type.
    HugeValue,
    /// `+1e308` / `-1e308` deltas on one gauge, 1e308 on one counter, until they overflow.
    GaugeOverflow,
    /// `nan`, `inf`, `-inf` and spellings of them.
    NonFinite,
    /// Negative durations.
    Negative,
    /// Sample rates 0, negative, 1e-30, 1e30, NaN, empty, text.
    BadRate,
    /// Lines missing a part, unknown types, stray separators, control characters.
    Malformed,
    /// Empty and blank lines.
    EmptyLine,
    /// 10 KB names (ever-new), and names just over and at the 200-character limit.
    LongName,
    /// One timer with thousands of tags.
    ManyTags,
    /// Set members of 1–4 KB, ever-new.
    LongMember,
    /// One timer with 2,000 values.
    ManyValues,
    /// A datagram of 60,000–65,507 bytes: packed short lines, or one huge line.
    BigDatagram,
}

/// Picks in 100,000 of each kind (a big datagram holds ~3,000 lines: about one a second at
/// 50,000 lines/s).
const STATSD_WEIGHTS: &[(StatsdKind, u64)] = &[
    (StatsdKind::Timer, 29598),
    (StatsdKind::Counter, 9000),
    (StatsdKind::Gauge, 9000),
    (StatsdKind::SetMember, 10000),
    (StatsdKind::NewName, 12000),
    (StatsdKind::MultiValue, 2000),
    (StatsdKind::Garbage, 4000),
    (StatsdKind::InvalidUtf8, 3000),
    (StatsdKind::HugeValue, 3000),
    (StatsdKind::GaugeOverflow, 1500),
    (StatsdKind::NonFinite, 3000),
    (StatsdKind::Negative, 3000),
    (StatsdKind::BadRate, 4000),
    (StatsdKind::Malformed, 4000),
    (StatsdKind::EmptyLine, 2000),
    (StatsdKind::LongName, 200),
    (StatsdKind::ManyTags, 100),
    (StatsdKind::LongMember, 500),
    (StatsdKind::ManyValues, 100),
    (StatsdKind::BigDatagram, 2),
];

impl StatsdKind {
    /// Kinds sent in a datagram of their own (they are large).
    fn alone(self) -> bool {
        matches!(self, Self::LongName | Self::ManyTags | Self::ManyValues | Self::BigDatagram)
    }
}

/// Builds the datagrams, one after another, from its seed.
struct StatsdGen {
    rng: Rng,
    mix: Mix<StatsdKind>,
    new_names: u64,
    new_members: u64,
    /// A line that did not fit in the last datagram: its kind, bytes and line count.
    pending: Option<(StatsdKind, Vec<u8>, u64)>,
}

impl StatsdGen {
    fn new(seed: u64, skip: &[StatsdKind]) -> Result<Self> {
        Ok(Self {
            rng: Rng(seed),
            mix: Mix::new(STATSD_WEIGHTS, skip)?,
            new_names: 0,
            new_members: 0,
            pending: None,
        })
    }

    /// Builds the next datagram into `out`, counting its lines by kind; returns its lines.
    fn datagram(&mut self, out: &mut Vec<u8>, lines_by_kind: &mut [u64]) -> u64 {
        out.clear();
        let separator: &[u8] = match self.rng.below(20) {
            0 => b"\r\n",
            _ => b"\n",
        };
        let wanted = self.rng.range(1, 31);
        let mut lines = 0;
        while lines < wanted {
            let (kind, line, n) = match self.pending.take() {
                Some(pending) => pending,
                None => {
                    let kind = self.mix.pick(&mut self.rng);
                    let mut line = Vec::new();
                    let n = self.line(kind, &mut line);
                    (kind, line, n)
                }
            };
            // Large kinds go alone; a line that would overflow the datagram waits for the next.
            let fits = out.is_empty()
                || (!kind.alone() && out.len() + separator.len() + line.len() <= MAX_DATAGRAM);
            if !fits {
                self.pending = Some((kind, line, n));
                break;
            }
            if !out.is_empty() {
                out.extend_from_slice(separator);
            }
            out.extend_from_slice(&line);
            lines += n;
            lines_by_kind[kind as usize] += n;
            if kind.alone() {
                break;
            }
        }
        // Every line is shorter than a datagram; this only guards that.
        out.truncate(MAX_DATAGRAM);
        if self.rng.chance(100) && out.len() < MAX_DATAGRAM {
            out.push(b'\n');
        }
        lines
    }

    /// Writes one line (or, for a big datagram, many) of `kind`; returns the lines written.
    fn line(&mut self, kind: StatsdKind, out: &mut Vec<u8>) -> u64 {
        let rng = &mut self.rng;
        let text = match kind {
            StatsdKind::Timer => {
                let op = rng.below(50);
                let name = if rng.chance(30) {
                    format!("event.soak.{}", op % 10)
                } else {
                    format!("soak.op.{op}")
                };
                let mut line =
                    format!("{name}:{}|{}", rng.millis(), rng.pick(&["ms", "ms", "h", "d"]));
                if rng.chance(200) {
                    line.push_str(rng.pick(&["|@0.5", "|@0.1", "|@1", "|@0.01"]));
                }
                if rng.chance(300) {
                    let region = rng.pick(&["eu", "us", "ap"]);
                    line.push_str(&format!("|#region:{region},host:h{}", rng.below(10)));
                    if rng.chance(100) {
                        line.push_str(rng.pick(&[
                            ",success:false",
                            ",status:error",
                            ",kind:event",
                        ]));
                    }
                }
                line
            }
            StatsdKind::Counter => {
                let rate = if rng.chance(200) { "|@0.1" } else { "" };
                format!("soak.count.{}:{}|c{rate}", rng.below(20), rng.range(1, 100))
            }
            StatsdKind::Gauge => {
                let name = match rng.below(20) {
                    0 => "queue.actions".to_string(),
                    1 => "queue.events".to_string(),
                    n => format!("soak.gauge.{n}"),
                };
                let sign = rng.pick(&["", "", "", "+", "-"]);
                format!("{name}:{sign}{}|g", rng.range(0, 1000))
            }
            StatsdKind::SetMember => {
                self.new_members += 1;
                format!("soak.set.{}:u{}|s", rng.below(20), self.new_members)
            }
            StatsdKind::NewName => {
                self.new_names += 1;
                let kind = rng.pick(&["ms", "c", "g", "s"]);
                format!("soak.new.{}:{}|{kind}", self.new_names, rng.range(1, 1000))
            }
            StatsdKind::MultiValue => {
                let values: Vec<String> =
                    (0..rng.range(2, 11)).map(|_| rng.millis().to_string()).collect();
                format!("soak.op.{}:{}|ms", rng.below(50), values.join(":"))
            }
            StatsdKind::Garbage => {
                let len = rng.range(1, 301) as usize;
                out.extend((0..len).map(|_| match rng.below(256) as u8 {
                    b'\n' => b'?',
                    b => b,
                }));
                return 1;
            }
            StatsdKind::InvalidUtf8 => {
                let bytes: &[u8] = rng.pick(&[
                    &b"soak.utf8.\xff\xfe:1|c"[..],
                    b"soak.op.1:\xc3\x28|ms",
                    b"soak.op.1:1|\xe2\x82",
                    b"soak.set.1:\xf0\x28\x8c\xbc|s",
                    b"soak.op.1:1|ms|#region:\xff",
                    b"soak.\xc0\xafop:1|ms",
                    b"soak.\xed\xa0\x80:1|g",
                    b"\xff\xff\xff\xff",
                ]);
                out.extend_from_slice(bytes);
                return 1;
            }
            StatsdKind::HugeValue => {
                let value = match rng.below(8) {
                    0 => "1e308".to_string(),
                    1 => "-1e308".to_string(),
                    2 => "1.7976931348623157e308".to_string(),
                    3 => "1e309".to_string(),
                    4 => "4.9e-324".to_string(),
                    5 => "9".repeat(400),
                    6 => "18446744073709551616".to_string(),
                    _ => "0x7fffffffffffffff".to_string(),
                };
                let kind = rng.pick(&["ms", "c", "g", "h", "d", "s"]);
                format!("soak.huge.{kind}:{value}|{kind}")
            }
            StatsdKind::GaugeOverflow => match rng.below(4) {
                0 => "soak.gauge.overflow:-1e308|g".to_string(),
                1 => "soak.count.overflow:1e308|c".to_string(),
                2 => "soak.count.overflow:1|c|@1e-300".to_string(),
                _ => "soak.gauge.overflow:+1e308|g".to_string(),
            },
            StatsdKind::NonFinite => {
                let value =
                    rng.pick(&["nan", "NaN", "inf", "-inf", "+inf", "Infinity", "-nan", "+nan"]);
                let (name, kind) =
                    rng.pick(&[("soak.op.1", "ms"), ("soak.count.1", "c"), ("soak.gauge.1", "g")]);
                format!("{name}:{value}|{kind}")
            }
            StatsdKind::Negative => {
                let value = match rng.below(4) {
                    0 => "-0".to_string(),
                    1 => "-1e308".to_string(),
                    _ => format!("-{}", rng.millis()),
                };
                let name = if rng.chance(200) { "event.soak.negative" } else { "soak.op.2" };
                format!("{name}:{value}|ms")
            }
            StatsdKind::BadRate => {
                let rate =
                    rng.pick(&["0", "-1", "1e-30", "1e30", "nan", "inf", "-0", "abc", "", "0x1"]);
                let line = rng.pick(&["soak.op.3:5|ms", "soak.count.3:1|c", "soak.gauge.3:1|g"]);
                format!("{line}|@{rate}")
            }
            StatsdKind::Malformed => rng
                .pick(&[
                    "soak.op.1",
                    "soak.op.1:",
                    ":1|c",
                    "soak.op.1:1",
                    "soak.op.1:1|",
                    "soak.op.1:1|zz",
                    "||||",
                    "soak.op.1:1|ms|#",
                    "soak.op.1:1|ms|@",
                    "soak.op.1:1:|ms",
                    "::::",
                    "soak op:1|c",
                    "soak\u{1}op:1|c",
                    "soak.op.1:1|ms|#a:b|#c:d|@0.5|@0.5",
                    "soak.op.1:1|ms|c",
                    "soak.op.1:1 |ms",
                    "soak.op.1:1|MS",
                    "soak.op.1:|ms",
                    "_e{5,4}:title|text",
                    "_sc|soak.check|0",
                ])
                .to_string(),
            StatsdKind::EmptyLine => rng.pick(&["", " ", "\t", "\r"]).to_string(),
            StatsdKind::LongName => match rng.below(4) {
                0 => format!("{}:1|c", "a".repeat(201)),
                1 => format!("{}:1|c", "é".repeat(200)),
                _ => {
                    self.new_names += 1;
                    format!("soak.long.{}.{}:1|c", self.new_names, "x".repeat(10_000))
                }
            },
            StatsdKind::ManyTags => {
                let count = rng.range(2000, 4001);
                let tags: Vec<String> = (0..count).map(|i| format!("t{i}:v{i}")).collect();
                format!("soak.op.4:{}|ms|#{}", rng.millis(), tags.join(","))
            }
            StatsdKind::LongMember => {
                self.new_members += 1;
                let len = rng.range(1000, 4001) as usize;
                format!("soak.set.{}:L{}-{}|s", rng.below(20), self.new_members, rng.alnum(len))
            }
            StatsdKind::ManyValues => {
                let values: Vec<String> = (0..2000).map(|_| rng.millis().to_string()).collect();
                format!("soak.op.5:{}|ms", values.join(":"))
            }
            StatsdKind::BigDatagram => return self.big_datagram(out),
        };
        out.extend_from_slice(text.as_bytes());
        1
    }

    /// Fills `out` to 60,000–65,507 bytes; returns its lines.
    fn big_datagram(&mut self, out: &mut Vec<u8>) -> u64 {
        let rng = &mut self.rng;
        let size = rng.range(60_000, MAX_DATAGRAM as u64 + 1) as usize;
        if rng.chance(250) {
            // One huge line.
            out.extend_from_slice(b"soak.op.6:");
            out.resize(size - 3, b'1');
            out.extend_from_slice(b"|ms");
            return 1;
        }
        let mut lines = 0;
        while out.len() < size {
            let line = format!("soak.op.{}:{}|ms\n", rng.below(50), rng.millis());
            if out.len() + line.len() > size {
                break;
            }
            out.extend_from_slice(line.as_bytes());
            lines += 1;
        }
        lines
    }
}

#[derive(Default)]
struct StatsdReport {
    lines_by_kind: Vec<u64>,
    datagrams: u64,
    bytes: u64,
    send_errors: u64,
    refused: u64,
    /// Seconds into the soak of the first "connection refused" (the server's socket is gone).
    first_refused_s: Option<f64>,
    /// The last datagrams sent (index, bytes), frozen at the first refusal if there was one.
    last: VecDeque<(u64, Vec<u8>)>,
}

/// Sends datagrams until `deadline` or `stop`, paced at `rate` lines per second.
fn send_statsd(
    addr: SocketAddr,
    rate: u64,
    mut generator: StatsdGen,
    start: Instant,
    deadline: Instant,
    stop: &AtomicBool,
    progress: &Progress,
) -> Result<StatsdReport> {
    let local = if addr.is_ipv4() { "127.0.0.1:0" } else { "[::1]:0" };
    let socket = UdpSocket::bind(local).context("bind a UDP socket")?;
    socket.connect(addr).with_context(|| format!("connect UDP {addr}"))?;
    let mut report = StatsdReport {
        lines_by_kind: vec![0; StatsdKind::value_variants().len()],
        ..Default::default()
    };
    let mut pacer = Pacer::new(rate as f64);
    let mut datagram = Vec::with_capacity(MAX_DATAGRAM);
    let mut frozen = false;
    let mut index = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        let wait = pacer.delay();
        if wait > Duration::from_millis(1) {
            std::thread::sleep(wait.min(deadline - now));
            continue;
        }
        let lines = generator.datagram(&mut datagram, &mut report.lines_by_kind);
        index += 1;
        match socket.send(&datagram) {
            Ok(_) => {
                report.datagrams += 1;
                report.bytes += datagram.len() as u64;
            }
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                report.refused += 1;
                if !frozen {
                    frozen = true;
                    report.first_refused_s = Some(start.elapsed().as_secs_f64());
                }
            }
            Err(_) => report.send_errors += 1,
        }
        if !frozen {
            report.last.push_back((index, datagram.clone()));
            if report.last.len() > KEEP_DATAGRAMS {
                report.last.pop_front();
            }
        }
        pacer.sent(lines);
        progress.statsd_lines.fetch_add(lines, Ordering::Relaxed);
        progress.statsd_bytes.fetch_add(datagram.len() as u64, Ordering::Relaxed);
    }
    Ok(report)
}

// --- HTTP traffic ----------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq, Debug, ValueEnum)]
enum HttpKind {
    /// A valid batch: operations, events, gauges, current action.
    Valid,
    /// A valid batch of ever-new operation, event and gauge names.
    NewNames,
    /// Truncated JSON, random bytes, wrong shapes, BOM, duplicate keys, NaN literals.
    BadJson,
    /// A valid body with no, or the wrong, content type.
    WrongContentType,
    /// 1e308, 1e309, u64 overflow, negative and fractional timestamps.
    HugeNumbers,
    /// 100,000-deep arrays and objects.
    DeepNesting,
    /// A valid batch of exactly the body limit.
    AtLimit,
    /// One byte over the body limit, and four times it.
    OverLimit,
    /// Unknown fields at every level, values of the wrong type.
    UnknownFields,
    /// Timestamps at 0, hours ago, in the future, in microseconds, at u64::MAX.
    FarTimestamps,
    /// Names of 200 (ever-new), 201 and 10,000 characters, control characters, empty.
    LongNames,
    /// 10,000 tags on one operation, or tags with 10 KB values.
    ManyTags,
    /// `Origin: http://evil.example` on ingest, reads, preflights and WebSocket upgrades.
    ForeignOrigin,
    /// Reads with absurd windows, limits, sorts, long names and odd paths.
    HostileQuery,
    /// GET, PUT, DELETE, PATCH on the ingest route; POST on reads.
    WrongMethod,
    /// A 60 KB header, or 300 headers.
    HugeHeader,
    /// Empty, blank and `{}` bodies.
    EmptyBody,
}

/// Requests in 1,000 of each kind.
const HTTP_WEIGHTS: &[(HttpKind, u64)] = &[
    (HttpKind::Valid, 390),
    (HttpKind::NewNames, 100),
    (HttpKind::BadJson, 60),
    (HttpKind::WrongContentType, 50),
    (HttpKind::HugeNumbers, 50),
    (HttpKind::DeepNesting, 20),
    (HttpKind::AtLimit, 5),
    (HttpKind::OverLimit, 5),
    (HttpKind::UnknownFields, 40),
    (HttpKind::FarTimestamps, 60),
    (HttpKind::LongNames, 40),
    (HttpKind::ManyTags, 20),
    (HttpKind::ForeignOrigin, 60),
    (HttpKind::HostileQuery, 50),
    (HttpKind::WrongMethod, 20),
    (HttpKind::HugeHeader, 10),
    (HttpKind::EmptyBody, 20),
];

/// Huge numbers: (variant, batch section, fields of its one item besides the name).
const HUGE_NUMBERS: &[(&str, &str, &str)] = &[
    ("duration-1e308", "operations", r#""duration_ms":1e308"#),
    ("duration-1e309", "operations", r#""duration_ms":1e309"#),
    ("duration-neg", "operations", r#""duration_ms":-1e308"#),
    ("duration-over-max", "operations", r#""duration_ms":1000000000001"#),
    ("duration-at-max", "operations", r#""duration_ms":1e12"#),
    ("duration-denormal", "operations", r#""duration_ms":4.9e-324"#),
    ("duration-30-digits", "operations", r#""duration_ms":123456789012345678901234567890"#),
    ("timestamp-u64-max", "operations", r#""duration_ms":1,"timestamp_ms":18446744073709551615"#),
    ("timestamp-u64-over", "operations", r#""duration_ms":1,"timestamp_ms":18446744073709551616"#),
    ("timestamp-negative", "operations", r#""duration_ms":1,"timestamp_ms":-1"#),
    ("timestamp-fraction", "operations", r#""duration_ms":1,"timestamp_ms":1.5"#),
    ("gauge-1e308", "gauges", r#""value":1e308"#),
    ("gauge-f64-max", "gauges", r#""value":1.7976931348623157e308"#),
    ("gauge-1e400", "gauges", r#""value":1e400"#),
    ("event-1e308", "events", r#""processing_ms":1e308"#),
];

/// Unknown fields and values of the wrong type: (variant, body).
const UNKNOWN_FIELDS: &[(&str, &str)] = &[
    ("top", r#"{"operations":[],"evil":1}"#),
    ("operation", r#"{"operations":[{"name":"soak.x","duration_ms":1,"extra":true}]}"#),
    ("event", r#"{"events":[{"processing_ms":1,"queue":"x"}]}"#),
    ("gauge", r#"{"gauges":[{"name":"soak.x","value":1,"unit":"ms"}]}"#),
    ("tag-number", r#"{"operations":[{"name":"soak.x","duration_ms":1,"tags":{"a":1}}]}"#),
    ("success-string", r#"{"operations":[{"name":"soak.x","duration_ms":1,"success":"yes"}]}"#),
    ("action-number", r#"{"current_action":5}"#),
    ("proto", r#"{"__proto__":{"admin":true},"operations":[]}"#),
    ("operations-object", r#"{"operations":{"name":"soak.x","duration_ms":1}}"#),
];

/// One request to send.
struct HttpReq {
    /// `kind/variant`, for the status table.
    label: String,
    method: Method,
    path: String,
    content_type: Option<&'static str>,
    headers: Vec<(String, String)>,
    body: Bytes,
}

impl HttpReq {
    fn new(kind: HttpKind, variant: &str, method: Method, path: &str, body: Bytes) -> Self {
        let content_type = (method == Method::POST).then_some("application/json");
        Self {
            label: format!("{}/{variant}", kind_name(&kind)),
            method,
            path: path.to_string(),
            content_type,
            headers: Vec::new(),
            body,
        }
    }

    fn ingest(kind: HttpKind, variant: &str, body: impl Into<Bytes>) -> Self {
        Self::new(kind, variant, Method::POST, INGEST_PATH, body.into())
    }

    fn get(kind: HttpKind, variant: &str, path: &str) -> Self {
        Self::new(kind, variant, Method::GET, path, Bytes::new())
    }

    fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_string(), value.into()));
        self
    }
}

/// Bodies too large to build for every request: built once at start-up.
struct BigBodies {
    at_limit: Bytes,
    over_by_one: Bytes,
    over_four_times: Bytes,
    deep_array: Bytes,
    deep_object: Bytes,
    deep_tags: Bytes,
}

impl BigBodies {
    fn build(limit: usize) -> Self {
        const DEPTH: usize = 100_000;
        Self {
            at_limit: Bytes::from(padded_batch(limit)),
            over_by_one: Bytes::from(padded_batch(limit + 1)),
            over_four_times: Bytes::from(padded_batch(limit * 4)),
            deep_array: Bytes::from(format!(
                "{{\"operations\":{}{}}}",
                "[".repeat(DEPTH),
                "]".repeat(DEPTH)
            )),
            deep_object: Bytes::from(format!(
                "{{\"current_action\":{}1{}}}",
                "{\"a\":".repeat(DEPTH),
                "}".repeat(DEPTH)
            )),
            deep_tags: Bytes::from(format!(
                concat!(
                    "{{\"operations\":[{{\"name\":\"soak.http.deep\",",
                    "\"duration_ms\":1,\"tags\":{}\"x\"{}}}]}}"
                ),
                "{\"a\":".repeat(DEPTH / 2),
                "}".repeat(DEPTH / 2)
            )),
        }
    }
}

/// A valid batch of operations padded with trailing whitespace to exactly `size` bytes.
fn padded_batch(size: usize) -> Vec<u8> {
    let mut body = b"{\"operations\":[".to_vec();
    let mut i = 0u64;
    loop {
        let op = format!(
            "{}{{\"name\":\"soak.http.big.{}\",\"duration_ms\":{}.5,\"success\":true}}",
            if i == 0 { "" } else { "," },
            i % 100,
            i % 1000
        );
        if body.len() + op.len() + 2 > size {
            break;
        }
        body.extend_from_slice(op.as_bytes());
        i += 1;
    }
    body.extend_from_slice(b"]}");
    body.resize(size.max(body.len()), b' ');
    body
}

/// Builds the requests of one connection, one after another, from its seed.
struct HttpGen {
    rng: Rng,
    mix: Mix<HttpKind>,
    connection: usize,
    new_names: u64,
    big: Arc<BigBodies>,
}

impl HttpGen {
    fn new_name(&mut self, what: &str) -> String {
        self.new_names += 1;
        format!("soak.http.new.{what}.c{}.{}", self.connection, self.new_names)
    }

    /// A valid batch; with `new_names`, every name in it is new.
    fn valid_batch(&mut self, new_names: bool) -> Vec<u8> {
        let now = now_unix_ms();
        let ops: Vec<serde_json::Value> = (0..self.rng.range(1, 51))
            .map(|_| {
                let name = if new_names {
                    self.new_name("op")
                } else {
                    format!("soak.http.op{}", self.rng.below(50))
                };
                let mut op = serde_json::json!({
                    "name": name,
                    "duration_ms": self.rng.millis(),
                    "success": !self.rng.chance(50),
                });
                if self.rng.chance(200) {
                    op["timestamp_ms"] = (now - self.rng.below(3_500_000)).into();
                }
                if self.rng.chance(300) {
                    op["tags"] = serde_json::json!({ "region": "eu", "host": "h1" });
                }
                op
            })
            .collect();
        let events: Vec<serde_json::Value> = (0..self.rng.below(6))
            .map(|_| {
                let name = if new_names {
                    self.new_name("event")
                } else {
                    format!("soak.http.event{}", self.rng.below(10))
                };
                serde_json::json!({
                    "name": name,
                    "processing_ms": self.rng.millis(),
                    "success": !self.rng.chance(50),
                })
            })
            .collect();
        let gauges: Vec<serde_json::Value> = (0..self.rng.below(4))
            .map(|_| {
                let name = match (new_names, self.rng.below(10)) {
                    (true, _) => self.new_name("gauge"),
                    (false, 0) => "queue.actions".to_string(),
                    (false, 1) => "queue.events".to_string(),
                    (false, n) => format!("soak.http.gauge{n}"),
                };
                serde_json::json!({ "name": name, "value": self.rng.range(0, 500) })
            })
            .collect();
        let mut batch =
            serde_json::json!({ "operations": ops, "events": events, "gauges": gauges });
        match self.rng.below(20) {
            0 => batch["current_action"] = serde_json::Value::Null,
            1 | 2 => batch["current_action"] = format!("soak step {}", self.rng.below(100)).into(),
            _ => {}
        }
        serde_json::to_vec(&batch).unwrap_or_default()
    }

    fn next(&mut self) -> HttpReq {
        let kind = self.mix.pick(&mut self.rng);
        match kind {
            HttpKind::Valid => HttpReq::ingest(kind, "batch", self.valid_batch(false)),
            HttpKind::NewNames => HttpReq::ingest(kind, "batch", self.valid_batch(true)),
            HttpKind::BadJson => self.bad_json(kind),
            HttpKind::WrongContentType => {
                let (variant, content_type) = self.rng.pick(&[
                    ("none", None),
                    ("text-plain", Some("text/plain")),
                    ("form", Some("application/x-www-form-urlencoded")),
                    ("utf-16", Some("application/json; charset=utf-16")),
                    ("jsonx", Some("application/jsonx")),
                    ("upper-case", Some("APPLICATION/JSON")),
                    ("multipart", Some("multipart/form-data; boundary=x")),
                    ("list", Some("application/json, text/plain")),
                ]);
                let mut req = HttpReq::ingest(kind, variant, self.valid_batch(false));
                req.content_type = content_type;
                req
            }
            HttpKind::HugeNumbers => {
                let (variant, section, fields) = self.rng.pick(HUGE_NUMBERS);
                let body = format!(r#"{{"{section}":[{{"name":"soak.http.huge",{fields}}}]}}"#);
                HttpReq::ingest(kind, variant, body)
            }
            HttpKind::DeepNesting => {
                let (variant, body) = match self.rng.below(3) {
                    0 => ("array", self.big.deep_array.clone()),
                    1 => ("object", self.big.deep_object.clone()),
                    _ => ("tags", self.big.deep_tags.clone()),
                };
                HttpReq::ingest(kind, variant, body)
            }
            HttpKind::AtLimit => HttpReq::ingest(kind, "exact", self.big.at_limit.clone()),
            HttpKind::OverLimit => {
                if self.rng.chance(500) {
                    HttpReq::ingest(kind, "by-one", self.big.over_by_one.clone())
                } else {
                    HttpReq::ingest(kind, "four-times", self.big.over_four_times.clone())
                }
            }
            HttpKind::UnknownFields => {
                let (variant, body) = self.rng.pick(UNKNOWN_FIELDS);
                HttpReq::ingest(kind, variant, body)
            }
            HttpKind::FarTimestamps => {
                let now = now_unix_ms();
                let (variant, at) = match self.rng.below(10) {
                    0 => ("zero", 0),
                    1 => ("one", 1),
                    2 => ("2h-ago", now - 7_200_000),
                    3 => ("59min-ago", now - 3_540_000),
                    4 => ("1h1s-ago", now - 3_601_000),
                    5 => ("in-60s", now + 60_000),
                    6 => ("in-61s", now + 61_000),
                    7 => ("in-10y", now + 315_360_000_000),
                    8 => ("microseconds", now.saturating_mul(1000)),
                    _ => ("u64-max", u64::MAX),
                };
                let name = if self.rng.chance(500) {
                    self.new_name("ts")
                } else {
                    format!("soak.http.op{}", self.rng.below(50))
                };
                let body = serde_json::json!({"operations": [
                    {"name": name, "duration_ms": self.rng.millis(), "timestamp_ms": at}
                ]});
                HttpReq::ingest(kind, variant, serde_json::to_vec(&body).unwrap_or_default())
            }
            HttpKind::LongNames => self.long_names(kind),
            HttpKind::ManyTags => {
                let (variant, tags) = if self.rng.chance(500) {
                    let tags: serde_json::Map<String, serde_json::Value> =
                        (0..10_000).map(|i| (format!("k{i}"), format!("v{i}").into())).collect();
                    ("10k-tags", tags)
                } else {
                    let tags: serde_json::Map<String, serde_json::Value> =
                        (0..50).map(|i| (format!("k{i}"), "v".repeat(10_000).into())).collect();
                    ("10kb-values", tags)
                };
                let body = serde_json::json!({"operations": [
                    {"name": "soak.http.tagged", "duration_ms": self.rng.millis(), "tags": tags}
                ]});
                HttpReq::ingest(kind, variant, serde_json::to_vec(&body).unwrap_or_default())
            }
            HttpKind::ForeignOrigin => match self.rng.below(5) {
                0 | 1 => HttpReq::ingest(kind, "ingest", self.valid_batch(false))
                    .header("origin", EVIL_ORIGIN)
                    .header("sec-fetch-site", "cross-site"),
                2 => {
                    HttpReq::get(kind, "operations", OPERATIONS_PATH).header("origin", EVIL_ORIGIN)
                }
                3 => HttpReq::new(kind, "preflight", Method::OPTIONS, INGEST_PATH, Bytes::new())
                    .header("origin", EVIL_ORIGIN)
                    .header("access-control-request-method", "POST")
                    .header("access-control-request-headers", "content-type,authorization"),
                _ => HttpReq::get(kind, "ws-upgrade", "/ws?history=0")
                    .header("origin", EVIL_ORIGIN)
                    .header("connection", "upgrade")
                    .header("upgrade", "websocket")
                    .header("sec-websocket-version", "13")
                    .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
            },
            HttpKind::HostileQuery => {
                let (variant, path) = match self.rng.below(16) {
                    0 => ("window-9999h", "/api/v1/operations?window=9999h".to_string()),
                    1 => ("window-empty", "/api/v1/operations?window=".to_string()),
                    2 => {
                        ("limit-huge", "/api/v1/operations?limit=99999999999999999999".to_string())
                    }
                    3 => ("limit-negative", "/api/v1/operations?limit=-1".to_string()),
                    4 => ("limit-zero", "/api/v1/operations?window=1h&limit=0".to_string()),
                    5 => ("sort-nul", "/api/v1/operations?sort=%00&order=sideways".to_string()),
                    6 => {
                        ("all-operations", "/api/v1/operations?window=1h&limit=100000".to_string())
                    }
                    7 => (
                        "long-name",
                        format!("/api/v1/operations/{}?window=5m", "x".repeat(10_000)),
                    ),
                    8 => ("bad-percent", "/api/v1/operations/%ff%fe%zz?window=5m".to_string()),
                    9 => ("one-operation", "/api/v1/operations/soak.op.1?window=1h".to_string()),
                    10 => ("metrics", "/api/v1/metrics".to_string()),
                    11 => ("ingest-stats", "/api/v1/ingest/stats".to_string()),
                    12 => ("traversal", "/pkg/../../../etc/passwd".to_string()),
                    13 => ("long-query", format!("/api/v1/operations?{}", "a=1&".repeat(2000))),
                    14 => ("page", "/operations".to_string()),
                    _ => ("unknown", "/api/v1/nope".to_string()),
                };
                HttpReq::get(kind, variant, &path)
            }
            HttpKind::WrongMethod => {
                let (variant, method, path) = match self.rng.below(7) {
                    0 => ("get-ingest", Method::GET, INGEST_PATH),
                    1 => ("put-ingest", Method::PUT, INGEST_PATH),
                    2 => ("delete-ingest", Method::DELETE, INGEST_PATH),
                    3 => ("patch-ingest", Method::PATCH, INGEST_PATH),
                    4 => ("post-health", Method::POST, HEALTH_PATH),
                    5 => ("post-operations", Method::POST, OPERATIONS_PATH),
                    _ => ("head-health", Method::HEAD, HEALTH_PATH),
                };
                let body = if method == Method::GET || method == Method::HEAD {
                    Bytes::new()
                } else {
                    Bytes::from(self.valid_batch(false))
                };
                let mut req = HttpReq::new(kind, variant, method, path, body);
                if !req.body.is_empty() {
                    req.content_type = Some("application/json");
                }
                req
            }
            HttpKind::HugeHeader => {
                let req = HttpReq::ingest(kind, "", self.valid_batch(false));
                match self.rng.below(3) {
                    0 => HttpReq { label: "huge-header/60kb".into(), ..req }
                        .header("x-soak", "a".repeat(60_000)),
                    1 => HttpReq { label: "huge-header/cookie-16kb".into(), ..req }
                        .header("cookie", format!("s={}", "b".repeat(16_000))),
                    _ => {
                        let mut req = HttpReq { label: "huge-header/300-headers".into(), ..req };
                        for i in 0..300 {
                            req = req.header(&format!("x-soak-{i}"), format!("v{i}"));
                        }
                        req
                    }
                }
            }
            HttpKind::EmptyBody => {
                let (variant, body) =
                    self.rng.pick(&[("empty", ""), ("blank", " \n"), ("object", "{}")]);
                HttpReq::ingest(kind, variant, body)
            }
        }
    }

    fn bad_json(&mut self, kind: HttpKind) -> HttpReq {
        match self.rng.below(16) {
            0 => {
                let mut body = self.valid_batch(false);
                body.truncate(self.rng.below(body.len() as u64) as usize);
                HttpReq::ingest(kind, "truncated", body)
            }
            1 => {
                let len = self.rng.range(1, 2000) as usize;
                let body: Vec<u8> = (0..len).map(|_| self.rng.below(256) as u8).collect();
                HttpReq::ingest(kind, "random-bytes", body)
            }
            n => {
                let (variant, body): (&str, &[u8]) = match n {
                    2 => ("open-brace", b"{"),
                    3 => ("array", b"[]"),
                    4 => ("null", b"null"),
                    5 => ("string", b"\"x\""),
                    6 => ("trailing-garbage", b"{}x"),
                    7 => ("bom", "\u{feff}{}".as_bytes()),
                    8 => (
                        "duplicate-key",
                        br#"{"operations":[{"name":"a","duration_ms":1,"duration_ms":2}]}"#,
                    ),
                    9 => (
                        "invalid-utf8",
                        b"{\"operations\":[{\"name\":\"\xff\xfe\",\"duration_ms\":1}]}",
                    ),
                    10 => (
                        "lone-surrogate",
                        br#"{"operations":[{"name":"a\ud800","duration_ms":1}]}"#,
                    ),
                    11 => ("nan-literal", br#"{"operations":[{"name":"a","duration_ms":NaN}]}"#),
                    12 => ("number-string", br#"{"operations":[{"name":"a","duration_ms":"5"}]}"#),
                    13 => ("comment", b"/* hi */ {}"),
                    14 => ("nul-bytes", b"{\"operations\":[]}\0\0\0"),
                    _ => ("operations-numbers", br#"{"operations":[1,2,3]}"#),
                };
                HttpReq::ingest(kind, variant, body.to_vec())
            }
        }
    }

    fn long_names(&mut self, kind: HttpKind) -> HttpReq {
        let (variant, body) = match self.rng.below(9) {
            0 => {
                // Exactly 200 characters, ever-new: valid, and one more name for the cap.
                let name = format!("{:x<200}", self.new_name("long"));
                let name: String = name.chars().take(200).collect();
                ("200-new", serde_json::json!({"operations": [{"name": name, "duration_ms": 1}]}))
            }
            1 => (
                "201",
                serde_json::json!({"operations": [{"name": "a".repeat(201), "duration_ms": 1}]}),
            ),
            2 => (
                "10k",
                serde_json::json!({"operations": [{"name": "a".repeat(10_000), "duration_ms": 1}]}),
            ),
            3 => (
                "200-4-byte",
                serde_json::json!({"operations": [{"name": "𝄞".repeat(200), "duration_ms": 1}]}),
            ),
            4 => ("empty", serde_json::json!({"operations": [{"name": "", "duration_ms": 1}]})),
            5 => (
                "control",
                serde_json::json!({"operations": [{"name": "a\u{0}b\nc", "duration_ms": 1}]}),
            ),
            6 => (
                "event-10k",
                serde_json::json!({"events": [{"name": "e".repeat(10_000), "processing_ms": 1}]}),
            ),
            7 => (
                "gauge-10k",
                serde_json::json!({"gauges": [{"name": "g".repeat(10_000), "value": 1}]}),
            ),
            _ => ("action-201", serde_json::json!({"current_action": "c".repeat(201)})),
        };
        HttpReq::ingest(kind, variant, serde_json::to_vec(&body).unwrap_or_default())
    }
}

/// One keep-alive connection that can send any method, path, headers and body.
struct RawConn {
    host: String,
    sender: SendRequest<Full<Bytes>>,
}

impl RawConn {
    async fn connect(addr: SocketAddr) -> Result<Self> {
        let stream = TcpStream::connect(addr).await.with_context(|| format!("connect {addr}"))?;
        stream.set_nodelay(true)?;
        let (sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(Self { host: addr.to_string(), sender })
    }

    /// Whether another request can go on this connection.
    async fn usable(&mut self) -> bool {
        matches!(
            tokio::time::timeout(Duration::from_secs(1), self.sender.ready()).await,
            Ok(Ok(()))
        )
    }

    /// Sends one request and reads the whole answer; returns its status, and whether the
    /// connection is done (the server said `Connection: close`, or switched protocols).
    async fn send(&mut self, req: &HttpReq) -> Result<(u16, bool)> {
        let mut builder =
            Request::builder().method(req.method.clone()).uri(&req.path).header("host", &self.host);
        if let Some(content_type) = req.content_type {
            builder = builder.header("content-type", content_type);
        }
        for (name, value) in &req.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        let request = builder.body(Full::new(req.body.clone()))?;
        let response = self.sender.send_request(request).await?;
        let status = response.status().as_u16();
        let close = status == 101
            || response
                .headers()
                .get(hyper::header::CONNECTION)
                .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close"));
        response.into_body().collect().await?;
        Ok((status, close))
    }
}

/// Status classes counted: 1xx to 5xx, transport errors, timeouts.
const CLASSES: [&str; 7] = ["1xx", "2xx", "3xx", "4xx", "5xx", "error", "timeout"];
const ERROR: usize = 5;
const TIMEOUT: usize = 6;

struct SentReq {
    index: u64,
    label: String,
    method: Method,
    path: String,
    content_type: Option<&'static str>,
    headers: Vec<(String, String)>,
    body: Bytes,
}

struct HttpReport {
    requests: u64,
    bytes: u64,
    classes: [u64; 7],
    /// `kind/variant` → status (or `error` / `timeout`) → count.
    by_label: BTreeMap<String, BTreeMap<String, u64>>,
    reconnects: u64,
    connect_failures: u64,
    latency: Histogram<u64>,
    /// Seconds into the soak of the first failed connect.
    first_connect_failure_s: Option<f64>,
    /// The last requests sent, frozen at the first failed connect if there was one.
    last: VecDeque<SentReq>,
}

/// Sends requests on one connection until `deadline` or `stop`, paced at `rate` per second.
async fn send_http(
    addr: SocketAddr,
    rate: f64,
    mut generator: HttpGen,
    start: Instant,
    deadline: Instant,
    stop: Arc<AtomicBool>,
    progress: Arc<Progress>,
) -> HttpReport {
    let mut report = HttpReport {
        requests: 0,
        bytes: 0,
        classes: [0; 7],
        by_label: BTreeMap::new(),
        reconnects: 0,
        connect_failures: 0,
        latency: micros_histogram(),
        first_connect_failure_s: None,
        last: VecDeque::new(),
    };
    let mut pacer = Pacer::new(rate);
    let mut conn: Option<RawConn> = None;
    let mut index = 0u64;
    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
        let wait = pacer.delay();
        if !wait.is_zero() {
            tokio::time::sleep(wait.min(deadline.saturating_duration_since(Instant::now()))).await;
            continue;
        }
        let usable = match conn.as_mut() {
            Some(c) => c.usable().await,
            None => false,
        };
        if !usable {
            if conn.take().is_some() {
                report.reconnects += 1;
            }
            match tokio::time::timeout(Duration::from_secs(5), RawConn::connect(addr)).await {
                Ok(Ok(c)) => conn = Some(c),
                _ => {
                    report.connect_failures += 1;
                    if report.first_connect_failure_s.is_none() {
                        report.first_connect_failure_s = Some(start.elapsed().as_secs_f64());
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            }
        }
        let Some(c) = conn.as_mut() else { continue };
        let req = generator.next();
        index += 1;
        pacer.sent(1);
        if report.first_connect_failure_s.is_none() {
            report.last.push_back(SentReq {
                index,
                label: req.label.clone(),
                method: req.method.clone(),
                path: req.path.clone(),
                content_type: req.content_type,
                headers: req.headers.clone(),
                body: req.body.clone(),
            });
            if report.last.len() > KEEP_REQUESTS {
                report.last.pop_front();
            }
        }
        let sent = Instant::now();
        let outcome = tokio::time::timeout(REQUEST_TIMEOUT, c.send(&req)).await;
        let (class, status) = match outcome {
            Ok(Ok((status, close))) => {
                record(&mut report.latency, sent.elapsed().as_micros() as u64);
                if close {
                    conn = None;
                    report.reconnects += 1;
                }
                (usize::from(status / 100).clamp(1, 5) - 1, status.to_string())
            }
            Ok(Err(_)) => (ERROR, "error".to_string()),
            Err(_) => (TIMEOUT, "timeout".to_string()),
        };
        if class >= ERROR {
            conn = None;
            report.reconnects += 1;
            progress.http_failed.fetch_add(1, Ordering::Relaxed);
        }
        if class == 4 {
            progress.http_5xx.fetch_add(1, Ordering::Relaxed);
        }
        progress.http_requests.fetch_add(1, Ordering::Relaxed);
        report.requests += 1;
        report.bytes += req.body.len() as u64;
        report.classes[class] += 1;
        *report.by_label.entry(req.label).or_default().entry(status).or_default() += 1;
    }
    report
}

// --- sampling --------------------------------------------------------------------------------

/// Running totals the senders publish for the sample rows.
#[derive(Default)]
struct Progress {
    statsd_lines: AtomicU64,
    statsd_bytes: AtomicU64,
    http_requests: AtomicU64,
    http_5xx: AtomicU64,
    http_failed: AtomicU64,
}

/// Whether `pid` is a living process (not gone, not a zombie).
fn alive(pid: i32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let state = stat.rfind(')').and_then(|i| stat[i + 1..].split_whitespace().next());
    !matches!(state, Some("Z" | "X" | "x"))
}

/// GETs `path` on a fresh connection; the latency in milliseconds, or why it failed.
async fn probe(addr: &str, path: &str) -> Result<f64, String> {
    let start = Instant::now();
    let answer = tokio::time::timeout(PROBE_TIMEOUT, async {
        let mut conn = Conn::connect(addr).await?;
        conn.request(Method::GET, path, None).await
    })
    .await;
    match answer {
        Ok(Ok((status, _))) if status.is_success() => Ok(start.elapsed().as_secs_f64() * 1e3),
        Ok(Ok((status, _))) => Err(status.as_u16().to_string()),
        Ok(Err(_)) => Err("error".into()),
        Err(_) => Err("timeout".into()),
    }
}

#[derive(Clone, Copy)]
struct Sample {
    elapsed_s: f64,
    rss_mib: f64,
}

/// Least-squares slope of RSS over time, in MiB per hour (None below three samples).
fn slope_mib_per_hour(samples: &[Sample]) -> Option<f64> {
    if samples.len() < 3 {
        return None;
    }
    let n = samples.len() as f64;
    let mean_t = samples.iter().map(|s| s.elapsed_s).sum::<f64>() / n;
    let mean_r = samples.iter().map(|s| s.rss_mib).sum::<f64>() / n;
    let cov: f64 = samples.iter().map(|s| (s.elapsed_s - mean_t) * (s.rss_mib - mean_r)).sum();
    let var: f64 = samples.iter().map(|s| (s.elapsed_s - mean_t).powi(2)).sum();
    (var > 0.0).then(|| cov / var * 3600.0)
}

fn to_mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn cell(probe: &Result<f64, String>) -> String {
    match probe {
        Ok(ms) => format!("{ms:.2}"),
        Err(why) => format!("FAIL({why})"),
    }
}

// --- the run ---------------------------------------------------------------------------------

fn check_loopback(what: &str, addr: &SocketAddr) -> Result<()> {
    if !addr.ip().is_loopback() {
        bail!("--{what} {addr}: only loopback addresses (127.0.0.0/8, ::1) are allowed");
    }
    Ok(())
}

fn main() -> Result<ExitCode> {
    let args = Args::parse();
    check_loopback("http", &args.http)?;
    check_loopback("statsd", &args.statsd)?;
    if !(1..=86_400).contains(&args.secs) {
        bail!("--secs must be from 1 to 86400");
    }
    if args.sample_secs == 0 || args.sample_secs > args.secs {
        bail!("--sample-secs must be from 1 to --secs");
    }
    if !(1..=1_000_000).contains(&args.statsd_rate) || !(1..=10_000).contains(&args.http_rate) {
        bail!("--statsd-rate must be from 1 to 1000000 and --http-rate from 1 to 10000");
    }
    if !(1..=64).contains(&args.http_connections) {
        bail!("--http-connections must be from 1 to 64");
    }
    if !alive(args.server_pid) {
        bail!("no living process {}", args.server_pid);
    }
    let seed = args.seed.unwrap_or_else(|| vitals_bench::now_unix_us() ^ 0x5eed);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(run(args, seed))
}

/// Runs the soak; fails only on set-up errors, and says by the exit code whether the server
/// lived and answered every probe.
async fn run(args: Args, seed: u64) -> Result<ExitCode> {
    let pid = args.server_pid;
    let statsd_gen = StatsdGen::new(seed, &args.skip_statsd)?;
    let big = Arc::new(BigBodies::build(args.max_body_bytes));
    let mut http_gens = Vec::new();
    for connection in 0..args.http_connections {
        http_gens.push(HttpGen {
            rng: Rng(seed ^ (0x4854_5450 + connection as u64)),
            mix: Mix::new(HTTP_WEIGHTS, &args.skip_http)?,
            connection,
            new_names: 0,
            big: Arc::clone(&big),
        });
    }
    println!(
        "soak seed={seed} secs={} sample_secs={} server_pid={pid} statsd={} statsd_rate={} \
         http={} http_rate={} http_connections={} max_body_bytes={} rss_ceiling_mib={}",
        args.secs,
        args.sample_secs,
        args.statsd,
        args.statsd_rate,
        args.http,
        args.http_rate,
        args.http_connections,
        args.max_body_bytes,
        args.rss_ceiling_mib
    );
    if !args.skip_statsd.is_empty() || !args.skip_http.is_empty() {
        let names = |k: &[String]| if k.is_empty() { "-".to_string() } else { k.join(",") };
        println!(
            "  skipped: statsd {} http {}",
            names(&args.skip_statsd.iter().map(kind_name).collect::<Vec<_>>()),
            names(&args.skip_http.iter().map(kind_name).collect::<Vec<_>>())
        );
    }

    let stop = Arc::new(AtomicBool::new(false));
    let progress = Arc::new(Progress::default());
    let other = OtherLoad::start(Some(pid))?;
    let self_pid = std::process::id() as i32;
    let self_cpu0 = process_cpu(self_pid)?;
    let server_cpu0 = process_cpu(pid)?;
    let start = Instant::now();
    let deadline = start + Duration::from_secs(args.secs);

    let statsd = {
        let (stop, progress, addr, rate) =
            (Arc::clone(&stop), Arc::clone(&progress), args.statsd, args.statsd_rate);
        std::thread::Builder::new()
            .name("soak-statsd".into())
            .spawn(move || send_statsd(addr, rate, statsd_gen, start, deadline, &stop, &progress))?
    };
    let mut http = Vec::new();
    for generator in http_gens {
        let rate = args.http_rate as f64 / args.http_connections as f64;
        http.push(tokio::spawn(send_http(
            args.http,
            rate,
            generator,
            start,
            deadline,
            Arc::clone(&stop),
            Arc::clone(&progress),
        )));
    }

    // Sample every --sample-secs (and at the end); check the server is alive every second.
    let http_addr = args.http.to_string();
    println!(
        "  sample,elapsed_s,rss_mib,rss_peak_mib,cpu_pct,health_ms,operations_ms,statsd_lines,\
         statsd_mb,http_requests,http_5xx,http_failed,series,statistics_mib,set_mib"
    );
    let stats_url = format!("http://{}/api/v1/ingest/stats", args.http);
    let mut samples = Vec::new();
    let mut health = micros_histogram();
    let mut operations = micros_histogram();
    let mut failed_probes = 0u64;
    let mut probe_failures: Vec<String> = Vec::new();
    let mut died_at: Option<f64> = None;
    let (mut last_at, mut last_cpu) = (start, server_cpu0);
    let mut next_sample = start;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tick.tick().await;
        let now = Instant::now();
        if !alive(pid) {
            died_at = Some(start.elapsed().as_secs_f64());
            stop.store(true, Ordering::Relaxed);
            println!("  server process {pid} is gone after {:.0} s", start.elapsed().as_secs_f64());
            break;
        }
        let last = now >= deadline;
        if now < next_sample && !last {
            continue;
        }
        next_sample += Duration::from_secs(args.sample_secs);
        let rss = status_bytes(pid, "VmRSS").map(to_mib).unwrap_or(f64::NAN);
        let peak = status_bytes(pid, "VmHWM").map(to_mib).unwrap_or(f64::NAN);
        let cpu = process_cpu(pid).unwrap_or(last_cpu);
        let cpu_pct = if samples.is_empty() {
            "-".to_string()
        } else {
            let secs = now.duration_since(last_at).as_secs_f64().max(1e-3);
            format!("{:.1}", cpu.saturating_sub(last_cpu).as_secs_f64() / secs * 100.0)
        };
        (last_at, last_cpu) = (now, cpu);
        let elapsed = now.duration_since(start).as_secs_f64();
        let h = probe(&http_addr, HEALTH_PATH).await;
        let o = probe(&http_addr, OPERATIONS_PATH).await;
        for (name, result, histogram) in
            [("health", &h, &mut health), ("operations", &o, &mut operations)]
        {
            match result {
                Ok(ms) => record(histogram, (ms * 1e3) as u64),
                Err(why) => {
                    failed_probes += 1;
                    probe_failures.push(format!("{name} at {elapsed:.0} s: {why}"));
                }
            }
        }
        // What the server says it holds: series, statistics and set bytes.
        let held = match tokio::time::timeout(PROBE_TIMEOUT, get_json_once(&stats_url)).await {
            Ok(Ok(stats)) => {
                let n = |field: &str| stats.get(field).and_then(serde_json::Value::as_f64);
                let mib = |field: &str| n(field).map_or("-".into(), |b| format!("{:.1}", b / 1048576.0));
                format!(
                    "{},{},{}",
                    n("series").map_or("-".into(), |s| format!("{s:.0}")),
                    mib("statistics_bytes"),
                    mib("set_bytes")
                )
            }
            _ => "-,-,-".to_string(),
        };
        println!(
            "  sample,{elapsed:.0},{rss:.1},{peak:.1},{cpu_pct},{},{},{},{:.1},{},{},{},{held}",
            cell(&h),
            cell(&o),
            progress.statsd_lines.load(Ordering::Relaxed),
            progress.statsd_bytes.load(Ordering::Relaxed) as f64 / 1e6,
            progress.http_requests.load(Ordering::Relaxed),
            progress.http_5xx.load(Ordering::Relaxed),
            progress.http_failed.load(Ordering::Relaxed),
        );
        samples.push(Sample { elapsed_s: elapsed, rss_mib: rss });
        if last {
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    let elapsed = start.elapsed();

    let statsd = statsd.join().map_err(|_| anyhow::anyhow!("the StatsD sender panicked"))??;
    let mut reports = Vec::new();
    for handle in http {
        reports.push(handle.await?);
    }
    let server_cpu = process_cpu(pid).map(|c| c.saturating_sub(server_cpu0)).ok();
    let self_cpu = process_cpu(self_pid)?.saturating_sub(self_cpu0);
    let other_pct = other.percent_of_core(elapsed);

    // What was sent.
    let statsd_lines: u64 = statsd.lines_by_kind.iter().sum();
    let by_kind: Vec<String> = StatsdKind::value_variants()
        .iter()
        .map(|k| format!("{}={}", kind_name(k), statsd.lines_by_kind[*k as usize]))
        .collect();
    println!(
        "  statsd sent            {statsd_lines} lines in {} datagrams ({:.1} MB, {:.0} lines/s), \
         {} send errors, {} refused",
        statsd.datagrams,
        statsd.bytes as f64 / 1e6,
        statsd_lines as f64 / elapsed.as_secs_f64(),
        statsd.send_errors,
        statsd.refused
    );
    println!("  statsd lines by kind   {}", by_kind.join(" "));
    let mut classes = [0u64; 7];
    let mut by_label: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    let mut latency = micros_histogram();
    let (mut requests, mut bytes, mut reconnects, mut connect_failures) = (0, 0, 0, 0);
    for r in &reports {
        requests += r.requests;
        bytes += r.bytes;
        reconnects += r.reconnects;
        connect_failures += r.connect_failures;
        for (sum, n) in classes.iter_mut().zip(r.classes) {
            *sum += n;
        }
        for (label, statuses) in &r.by_label {
            let entry = by_label.entry(label.clone()).or_default();
            for (status, n) in statuses {
                *entry.entry(status.clone()).or_default() += n;
            }
        }
        latency.add(&r.latency)?;
    }
    let class_list: Vec<String> =
        CLASSES.iter().zip(classes).map(|(name, n)| format!("{name}={n}")).collect();
    println!(
        "  http sent              {requests} requests ({:.1} MB of bodies, {:.1} requests/s), \
         {reconnects} reconnects, {connect_failures} failed connects",
        bytes as f64 / 1e6,
        requests as f64 / elapsed.as_secs_f64()
    );
    println!("  http statuses          {}", class_list.join(" "));
    println!("  http latency           {}", latency_summary(&latency));
    for (label, statuses) in &by_label {
        let list: Vec<String> = statuses.iter().map(|(s, n)| format!("{s}x{n}")).collect();
        println!("    {label:<34} {}", list.join(" "));
    }

    // What the server says it did with it.
    if died_at.is_none() {
        let url = format!("http://{}/api/v1/ingest/stats", args.http);
        if let Ok(Ok(stats)) = tokio::time::timeout(PROBE_TIMEOUT, get_json_once(&url)).await {
            for protocol in ["statsd", "http"] {
                if let Some(fields) = stats.get(protocol).and_then(|v| v.as_object()) {
                    let list: Vec<String> = fields
                        .iter()
                        .filter(|(_, v)| v.is_number())
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect();
                    println!("  server {protocol:<15} {}", list.join(" "));
                }
            }
        }
    }
    println!("  probe /health          {}", latency_summary(&health));
    println!("  probe /operations      {}", latency_summary(&operations));
    for failure in &probe_failures {
        println!("  failed probe           {failure}");
    }
    let elapsed_s = elapsed.as_secs_f64();
    let server_cpu_pct = server_cpu.map(|c| c.as_secs_f64() / elapsed_s * 100.0);
    if let Some(pct) = server_cpu_pct {
        println!("  server CPU             {pct:.1} % of one core (mean over {elapsed_s:.0} s)");
    }
    println!(
        "  client CPU (this tool) {:.1} % of one core",
        self_cpu.as_secs_f64() / elapsed_s * 100.0
    );
    println!("  other processes        {other_pct:.0} % of one core");

    let rss: Vec<f64> = samples.iter().map(|s| s.rss_mib).filter(|r| r.is_finite()).collect();
    let rss_max = rss.iter().copied().fold(f64::NAN, f64::max);
    let rss_final = rss.last().copied().unwrap_or(f64::NAN);
    let half = args.secs as f64 / 2.0;
    let second_half: Vec<Sample> =
        samples.iter().filter(|s| s.elapsed_s >= half && s.rss_mib.is_finite()).copied().collect();
    let slope = slope_mib_per_hour(&second_half);
    let mut probes = health.clone();
    probes.add(&operations)?;
    let p99 = |h: &Histogram<u64>| {
        if h.is_empty() {
            "-".to_string()
        } else {
            format!("{:.2}", h.value_at_quantile(0.99) as f64 / 1000.0)
        }
    };
    let ceiling =
        if rss_max.is_finite() && rss_max < args.rss_ceiling_mib { "met" } else { "MISSED" };
    println!(
        "summary soak secs={:.0} seed={seed} rss_max_mib={rss_max:.1} rss_final_mib={rss_final:.1} \
         rss_ceiling_mib={} ceiling={ceiling} rss_slope_2nd_half_mib_per_h={} cpu_mean_pct={} \
         probe_p99_ms={} health_p99_ms={} operations_p99_ms={} failed_probes={failed_probes} \
         statsd_lines={statsd_lines} http_requests={requests} http_5xx={} http_failed={} \
         server={} other_pct={other_pct:.0}",
        elapsed_s,
        args.rss_ceiling_mib,
        slope.map_or("-".into(), |s| format!("{s:.1}")),
        server_cpu_pct.map_or("-".into(), |p| format!("{p:.1}")),
        p99(&probes),
        p99(&health),
        p99(&operations),
        classes[4],
        classes[ERROR] + classes[TIMEOUT],
        if died_at.is_some() { "DIED" } else { "alive" },
    );

    if died_at.is_some() || failed_probes > 0 {
        dump(&args, seed, &statsd, &reports)?;
    }
    if let Some(at) = died_at {
        eprintln!("soak: FAILED: the server (pid {pid}) died after {at:.0} s");
        return Ok(ExitCode::FAILURE);
    }
    if failed_probes > 0 {
        eprintln!("soak: FAILED: {failed_probes} probes failed");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes the last inputs sent (exactly, bytes escaped) to `--dump-file`, and a glimpse of the
/// latest ones to stdout.
fn dump(args: &Args, seed: u64, statsd: &StatsdReport, http: &[HttpReport]) -> Result<()> {
    let escape = |bytes: &[u8], max: usize| {
        let shown = &bytes[..bytes.len().min(max)];
        let more =
            if bytes.len() > max { format!("... ({} bytes)", bytes.len()) } else { String::new() };
        format!("{}{more}", shown.escape_ascii())
    };
    println!(
        "  last StatsD datagrams (of {} kept; first refusal at {}):",
        statsd.last.len(),
        statsd.first_refused_s.map_or("-".into(), |s| format!("{s:.1} s"))
    );
    for (index, datagram) in statsd.last.iter().rev().take(5) {
        println!("    #{index}: {}", escape(datagram, 200));
    }
    for (connection, report) in http.iter().enumerate() {
        println!(
            "  last HTTP requests on connection {connection} (first failed connect at {}):",
            report.first_connect_failure_s.map_or("-".into(), |s| format!("{s:.1} s"))
        );
        for req in report.last.iter().rev().take(5) {
            println!(
                "    #{} {} {} {}: {}",
                req.index,
                req.label,
                req.method,
                escape(req.path.as_bytes(), 100),
                escape(&req.body, 200)
            );
        }
    }
    let Some(path) = &args.dump_file else {
        return Ok(());
    };
    let mut text = format!(
        "# soak seed={seed}: the last inputs sent, oldest first, bytes escaped as in Rust's \
         escape_ascii\n"
    );
    for (index, datagram) in &statsd.last {
        text.push_str(&format!(
            "statsd #{index} {} bytes\n{}\n",
            datagram.len(),
            escape(datagram, usize::MAX)
        ));
    }
    for (connection, report) in http.iter().enumerate() {
        for req in &report.last {
            text.push_str(&format!(
                "http c{connection} #{} {} {} {}\n",
                req.index,
                req.label,
                req.method,
                escape(req.path.as_bytes(), usize::MAX)
            ));
            if let Some(content_type) = req.content_type {
                text.push_str(&format!("  content-type: {content_type}\n"));
            }
            for (name, value) in &req.headers {
                text.push_str(&format!("  {name}: {}\n", escape(value.as_bytes(), 200)));
            }
            text.push_str(&format!(
                "  body {} bytes: {}\n",
                req.body.len(),
                escape(&req.body, 65_536)
            ));
        }
    }
    std::fs::write(path, text).with_context(|| format!("write {}", path.display()))?;
    println!("  last inputs written to {}", path.display());
    Ok(())
}
