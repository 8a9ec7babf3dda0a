//! Shared pieces of the Vitals load generators: a small HTTP/1.1 client on one keep-alive
//! connection, `/proc` readers for a server's CPU time and memory, and histogram reports.
//!
//! Nothing here links the server's code: the generators speak only the public protocols.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context, Result};
use hdrhistogram::Histogram;

pub mod http {
    //! One HTTP/1.1 keep-alive connection driven by hyper's low-level client.

    use anyhow::{anyhow, Context, Result};
    use bytes::Bytes;
    use http_body_util::{BodyExt, Full};
    use hyper::client::conn::http1::SendRequest;
    use hyper::{Method, Request, StatusCode, Uri};
    use hyper_util::rt::TokioIo;
    use tokio::net::TcpStream;

    /// The address (`host:port`) and the path with query of an `http://` URL.
    pub fn split_url(url: &str) -> Result<(String, String)> {
        let uri: Uri = url.parse().with_context(|| format!("bad URL {url}"))?;
        if uri.scheme_str() != Some("http") {
            return Err(anyhow!("only http:// URLs are supported: {url}"));
        }
        let authority = uri.authority().ok_or_else(|| anyhow!("no host in {url}"))?;
        let port = authority.port_u16().unwrap_or(80);
        let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_string();
        Ok((format!("{}:{port}", authority.host()), path))
    }

    /// One open connection; requests go one after another.
    pub struct Conn {
        addr: String,
        sender: SendRequest<Full<Bytes>>,
        token: Option<String>,
        content_type: &'static str,
    }

    impl Conn {
        /// Connects to `addr` (`host:port`).
        pub async fn connect(addr: &str) -> Result<Self> {
            let stream =
                TcpStream::connect(addr).await.with_context(|| format!("connect {addr}"))?;
            stream.set_nodelay(true)?;
            let (sender, connection) =
                hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
            tokio::spawn(async move {
                let _ = connection.await;
            });
            Ok(Self { addr: addr.to_string(), sender, token: None, content_type: "application/json" })
        }

        /// Sends bodies with this `Content-Type` (default `application/json`).
        pub fn with_content_type(mut self, content_type: &'static str) -> Self {
            self.content_type = content_type;
            self
        }

        /// Sends `Authorization: Bearer <token>` with every later request.
        pub fn with_token(mut self, token: Option<String>) -> Self {
            self.token = token;
            self
        }

        /// Sends one request and reads the whole answer.
        pub async fn request(
            &mut self,
            method: Method,
            path: &str,
            body: Option<Bytes>,
        ) -> Result<(StatusCode, Bytes)> {
            self.sender.ready().await?;
            let mut request =
                Request::builder().method(method).uri(path).header("host", &self.addr);
            if body.is_some() {
                request = request.header("content-type", self.content_type);
            }
            if let Some(token) = &self.token {
                request = request.header("authorization", format!("Bearer {token}"));
            }
            let request = request.body(Full::new(body.unwrap_or_default()))?;
            let response = self.sender.send_request(request).await?;
            let status = response.status();
            let body = response.into_body().collect().await?.to_bytes();
            Ok((status, body))
        }

        /// `GET path`, expecting 200 and JSON.
        pub async fn get_json(&mut self, path: &str) -> Result<serde_json::Value> {
            let (status, body) = self.request(Method::GET, path, None).await?;
            if !status.is_success() {
                return Err(anyhow!("GET {path}: {status}: {}", String::from_utf8_lossy(&body)));
            }
            Ok(serde_json::from_slice(&body)?)
        }
    }

    /// Opens a connection, GETs one JSON document and closes.
    pub async fn get_json_once(url: &str) -> Result<serde_json::Value> {
        let (addr, path) = split_url(url)?;
        Conn::connect(&addr).await?.get_json(&path).await
    }
}

/// A small deterministic generator (xorshift64*) for reproducible loads.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in (0, 1).
    pub fn unit(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    /// A log-normal duration in ms with the given median and sigma (of the log), rounded to
    /// 0.01 ms, as a service's latencies roughly are.
    pub fn lognormal_ms(&mut self, median_ms: f64, sigma: f64) -> f64 {
        let (u1, u2) = (self.unit(), self.unit());
        let normal = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
        ((median_ms * (sigma * normal).exp()) * 100.0).round().max(1.0) / 100.0
    }
}

/// A few fields of `GET /api/v1/store/stats`.
#[derive(Clone, Debug, Default)]
pub struct StoreStats {
    pub file_bytes: u64,
    pub wal_bytes: u64,
    pub write_queue: u64,
    pub batches_written: u64,
    pub rows_written: u64,
    pub dropped_queue_full: u64,
    pub dropped_write_errors: u64,
    pub write_errors: u64,
    /// `(table, rows, oldest_ms, newest_ms)`.
    pub tiers: Vec<(String, u64, Option<u64>, Option<u64>)>,
}

impl StoreStats {
    pub fn from_json(v: &serde_json::Value) -> Self {
        let n = |k: &str| v.get(k).and_then(serde_json::Value::as_u64).unwrap_or(0);
        let tiers = v
            .get("tiers")
            .and_then(|t| t.as_array())
            .map(|t| {
                t.iter()
                    .map(|t| {
                        let s = |k: &str| t.get(k).and_then(serde_json::Value::as_u64);
                        let table = t.get("table").and_then(|x| x.as_str()).unwrap_or("?");
                        (table.to_string(), s("rows").unwrap_or(0), s("oldest_ms"), s("newest_ms"))
                    })
                    .collect()
            })
            .unwrap_or_default();
        StoreStats {
            file_bytes: n("file_bytes"),
            wal_bytes: n("wal_bytes"),
            write_queue: n("write_queue"),
            batches_written: n("batches_written"),
            rows_written: n("rows_written"),
            dropped_queue_full: n("dropped_queue_full"),
            dropped_write_errors: n("dropped_write_errors"),
            write_errors: n("write_errors"),
            tiers,
        }
    }

    /// Rows and newest `at_ms` of one table.
    pub fn tier(&self, table: &str) -> (u64, Option<u64>) {
        self.tiers.iter().find(|t| t.0 == table).map_or((0, None), |t| (t.1, t.3))
    }

    /// One line: sizes, rows per table, writer counters.
    pub fn line(&self) -> String {
        let rows: Vec<String> = self.tiers.iter().map(|t| format!("{}={}", t.0, t.1)).collect();
        format!(
            "file {} MiB, wal {} MiB, rows {}, queue {}, batches {}, rows written {}, dropped \
             (queue full {}, write errors {})",
            mib(self.file_bytes),
            mib(self.wal_bytes),
            rows.join(" "),
            self.write_queue,
            self.batches_written,
            self.rows_written,
            self.dropped_queue_full,
            self.dropped_write_errors
        )
    }
}

/// Wall-clock time in microseconds since the Unix epoch.
pub fn now_unix_us() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64)
}

/// Wall-clock time in milliseconds since the Unix epoch.
pub fn now_unix_ms() -> u64 {
    now_unix_us() / 1000
}

/// Kernel clock ticks per second (`_SC_CLK_TCK`), the unit of `/proc/PID/stat` CPU times.
pub fn clock_ticks_per_sec() -> u64 {
    // SAFETY: sysconf only reads a configuration value.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 {
        ticks as u64
    } else {
        100
    }
}

/// The fields of a `/proc/.../stat` line after the parenthesised command name (field 3 on).
fn stat_fields(text: &str) -> Result<Vec<&str>> {
    let close = text.rfind(')').ok_or_else(|| anyhow!("no ')' in stat line"))?;
    Ok(text[close + 1..].split_whitespace().collect())
}

/// User + system CPU time of a whole process (all threads, living and exited), from
/// `/proc/PID/stat`, as a duration (resolution: one clock tick, usually 10 ms).
pub fn process_cpu(pid: i32) -> Result<Duration> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("read /proc/{pid}/stat"))?;
    ticks_to_duration(&text)
}

fn ticks_to_duration(stat: &str) -> Result<Duration> {
    let fields = stat_fields(stat)?;
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    let utime: u64 = fields.get(11).ok_or_else(|| anyhow!("short stat"))?.parse()?;
    let stime: u64 = fields.get(12).ok_or_else(|| anyhow!("short stat"))?.parse()?;
    let tck = clock_ticks_per_sec();
    Ok(Duration::from_nanos((utime + stime) * 1_000_000_000 / tck))
}

/// Busy CPU time of the whole machine, summed over its cores (`/proc/stat`: user, nice,
/// system, irq, softirq, steal).
pub fn machine_busy() -> Result<Duration> {
    let text = std::fs::read_to_string("/proc/stat")?;
    let line =
        text.lines().find(|l| l.starts_with("cpu ")).ok_or_else(|| anyhow!("no cpu line"))?;
    let v: Vec<u64> = line.split_whitespace().skip(1).map(|x| x.parse().unwrap_or(0)).collect();
    let field = |i: usize| v.get(i).copied().unwrap_or(0);
    let busy = field(0) + field(1) + field(2) + field(5) + field(6) + field(7);
    Ok(Duration::from_nanos(busy * 1_000_000_000 / clock_ticks_per_sec()))
}

/// Watches how much CPU processes other than the server and this tool use over a span, so a
/// figure skewed by other work on the machine (a build, say) is seen as such.
pub struct OtherLoad {
    pids: Vec<i32>,
    machine: Duration,
    ours: Duration,
}

impl OtherLoad {
    /// Starts watching; `server` is the server's pid, if known (this process always counts).
    pub fn start(server: Option<i32>) -> Result<Self> {
        let mut pids = vec![std::process::id() as i32];
        pids.extend(server);
        let ours = pids.iter().map(|&p| process_cpu(p).unwrap_or_default()).sum();
        Ok(Self { pids, machine: machine_busy()?, ours })
    }

    /// CPU time used by everything else since `start` (kernel work for nobody in particular
    /// included), as a share of one core over `elapsed`, in percent.
    pub fn percent_of_core(&self, elapsed: Duration) -> f64 {
        let ours: Duration = self.pids.iter().map(|&p| process_cpu(p).unwrap_or_default()).sum();
        let machine = machine_busy().unwrap_or(self.machine);
        let other =
            (machine.saturating_sub(self.machine)).saturating_sub(ours.saturating_sub(self.ours));
        other.as_secs_f64() / elapsed.as_secs_f64().max(1e-3) * 100.0
    }
}

/// Nanosecond-precise time the living threads of `pid` named `name` spent running and spent
/// runnable but waiting for a CPU (`/proc/PID/task/*/schedstat`).
pub fn threads_schedstat(pid: i32, name: &str) -> Result<(Duration, Duration)> {
    let (mut run, mut wait) = (0u64, 0u64);
    for entry in std::fs::read_dir(format!("/proc/{pid}/task"))? {
        let dir = entry?.path();
        let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
        if comm.trim_end() != name {
            continue;
        }
        let text = std::fs::read_to_string(dir.join("schedstat")).unwrap_or_default();
        let mut fields = text.split_whitespace().map(|f| f.parse::<u64>().unwrap_or(0));
        run += fields.next().unwrap_or(0);
        wait += fields.next().unwrap_or(0);
    }
    Ok((Duration::from_nanos(run), Duration::from_nanos(wait)))
}

/// Nanosecond-precise CPU time summed over the living threads of `pid`
/// (`/proc/PID/task/*/schedstat`; threads that exited are not included).
pub fn living_threads_cpu_ns(pid: i32) -> Result<u64> {
    let mut total = 0u64;
    for entry in std::fs::read_dir(format!("/proc/{pid}/task"))? {
        let path = entry?.path().join("schedstat");
        if let Ok(text) = std::fs::read_to_string(path) {
            total += text.split_whitespace().next().unwrap_or("0").parse::<u64>().unwrap_or(0);
        }
    }
    Ok(total)
}

/// A `kB` field of `/proc/PID/status` (`VmRSS`, `VmHWM`, ...) in bytes.
pub fn status_bytes(pid: i32, field: &str) -> Result<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("read /proc/{pid}/status"))?;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix(field).and_then(|r| r.strip_prefix(':')) {
            let kb: u64 = rest.trim().trim_end_matches("kB").trim().parse()?;
            return Ok(kb * 1024);
        }
    }
    bail!("no {field} in /proc/{pid}/status")
}

/// The number of threads of `pid`.
pub fn thread_count(pid: i32) -> Result<usize> {
    Ok(std::fs::read_dir(format!("/proc/{pid}/task"))?.count())
}

/// Bytes as MiB with one decimal.
pub fn mib(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / (1024.0 * 1024.0))
}

/// A histogram of microseconds from 1 µs to 10 minutes, 3 significant figures.
pub fn micros_histogram() -> Histogram<u64> {
    // The bounds are constants that `new_with_bounds` accepts.
    Histogram::new_with_bounds(1, 600_000_000, 3).unwrap_or_else(|_| unreachable!())
}

/// `p50 / p99 / max` of a microsecond histogram, in milliseconds.
pub fn latency_summary(h: &Histogram<u64>) -> String {
    if h.is_empty() {
        return "no samples".into();
    }
    format!(
        "p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms (n = {})",
        ms(h.value_at_quantile(0.50)),
        ms(h.value_at_quantile(0.90)),
        ms(h.value_at_quantile(0.99)),
        ms(h.value_at_quantile(0.999)),
        ms(h.max()),
        h.len()
    )
}

/// Microseconds as milliseconds.
pub fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

/// Records `value_us`, clamped into the histogram's range.
pub fn record(h: &mut Histogram<u64>, value_us: u64) {
    let _ = h.record(value_us.clamp(1, h.high()));
}

/// Reads the `Udp:` counters of `/proc/net/snmp` (`InDatagrams`, `RcvbufErrors`, ...).
pub fn udp_snmp() -> Result<Vec<(String, u64)>> {
    let text = std::fs::read_to_string("/proc/net/snmp")?;
    let mut lines = text.lines().filter(|l| l.starts_with("Udp:"));
    let names = lines.next().ok_or_else(|| anyhow!("no Udp: header in /proc/net/snmp"))?;
    let values = lines.next().ok_or_else(|| anyhow!("no Udp: values in /proc/net/snmp"))?;
    Ok(names
        .split_whitespace()
        .skip(1)
        .zip(values.split_whitespace().skip(1))
        .map(|(n, v)| (n.to_string(), v.parse().unwrap_or(0)))
        .collect())
}

/// One counter out of [`udp_snmp`]'s answer (0 when absent).
pub fn snmp_value(counters: &[(String, u64)], name: &str) -> u64 {
    counters.iter().find(|(n, _)| n == name).map_or(0, |(_, v)| *v)
}

/// The median of some numbers (the mean of the middle two for an even count).
pub fn median(values: &[f64]) -> f64 {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    }
}

/// Finds the unsigned integer value of `"key":` in a JSON text without parsing the whole text
/// (the live update puts `at_ms` and `seq` first).
pub fn json_u64_field(text: &str, key: &str) -> Option<u64> {
    let needle = format!("\"{key}\":");
    let start = text.find(&needle)? + needle.len();
    let digits: &str = text[start..].trim_start();
    let end = digits.find(|c: char| !c.is_ascii_digit()).unwrap_or(digits.len());
    digits[..end].parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_fields_in_an_update() {
        let text = r#"{"type":"update","sample":{"at_ms":1763900000123,"seq":42,"system":{}}}"#;
        assert_eq!(json_u64_field(text, "at_ms"), Some(1_763_900_000_123));
        assert_eq!(json_u64_field(text, "seq"), Some(42));
        assert_eq!(json_u64_field(text, "nope"), None);
    }

    #[test]
    fn reads_cpu_ticks_past_a_name_with_spaces() {
        let stat = "42 (tokio (x) y) S 1 2 3 4 5 6 7 8 9 10 300 200 0 0";
        let tck = clock_ticks_per_sec();
        assert_eq!(
            ticks_to_duration(stat).unwrap(),
            Duration::from_nanos(500 * 1_000_000_000 / tck)
        );
    }

    #[test]
    fn medians() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
    }
}
