//! The `vitals` command line and its configuration: flags, `VITALS_*` environment variables and
//! an optional TOML file, merged in that order of precedence and validated into [`ServeConfig`].

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand};
use serde::Deserialize;

use crate::model::ops::LatencyThresholds;
use crate::server::auth::AuthMode;
use crate::server::store::{Retention, StoreConfig};

pub const DEFAULT_INTERVAL_SECS: f64 = 1.0;
pub const DEFAULT_DATA_DIR: &str = "./vitals-data";
/// Largest accepted request body, in bytes.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;
pub const DEFAULT_REQUEST_TIMEOUT_SECS: u64 = 30;
/// Samples kept in memory (5 minutes at 1 Hz).
pub const DEFAULT_HISTORY: usize = 300;
pub const DEFAULT_MAX_CLIENTS: u64 = 10_000;
pub const DEFAULT_STATSD: &str = "127.0.0.1:8125";
pub const DEFAULT_MAX_SERIES: usize = 10_000;
/// Default bound on the store's size, in MiB: 16 GiB holds 30 days of minute rows and 400 days
/// of hour rows for 500 busy series (10 timings/s each: 659 KB of minute rows and 24 KB of hour
/// rows per series and day, measured in BENCHMARKS.md), 13.7 GiB, plus raw host samples. The
/// file only grows with data; this is a ceiling, not a reservation.
pub const DEFAULT_MAX_DISK_MB: u64 = 16_384;
/// Most samples `--history` may keep in memory (24 hours at 1 Hz; about 500 bytes each).
pub const MAX_HISTORY: usize = 86_400;

#[derive(Debug, Parser)]
#[command(
    name = "vitals",
    version,
    about = "A self-hosted, real-time performance dashboard.",
    long_about = "A self-hosted, real-time performance dashboard.\n\nEvery `serve` option can also \
                  come from a VITALS_* environment variable or from the TOML file given with \
                  --config (keys are the option names, e.g. `interval-secs = 2`). Flags win, then \
                  the environment, then the file."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the dashboard server.
    Serve(ServeArgs),
}

/// `vitals serve` options as given on the command line or in the environment; `None` means
/// "not given here", so the config file or the default decides.
#[derive(Debug, Default, Args)]
pub struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1]. Anything but loopback needs --token.
    #[arg(long, env = "VITALS_HOST")]
    pub host: Option<String>,
    /// TCP port to listen on; 0 picks a free port [default: 3000].
    #[arg(long, env = "VITALS_PORT", allow_negative_numbers = true)]
    pub port: Option<u16>,
    /// Seconds between two samples, > 0 [default: 1].
    #[arg(long, env = "VITALS_INTERVAL_SECS", allow_negative_numbers = true)]
    pub interval_secs: Option<f64>,
    /// Directory for Vitals' data, created if missing [default: ./vitals-data].
    #[arg(long, env = "VITALS_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// TOML file with any of these options.
    #[arg(long, env = "VITALS_CONFIG")]
    pub config: Option<PathBuf>,
    /// Shared secret clients send as `Authorization: Bearer <token>`; required off loopback.
    #[arg(long, env = "VITALS_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Largest accepted request body in bytes [default: 1048576].
    #[arg(long, env = "VITALS_MAX_BODY_BYTES")]
    pub max_body_bytes: Option<usize>,
    /// Seconds before a request is answered 408 [default: 30].
    #[arg(long, env = "VITALS_REQUEST_TIMEOUT_SECS")]
    pub request_timeout_secs: Option<u64>,
    /// Samples of history kept in memory per series [default: 300].
    #[arg(long, env = "VITALS_HISTORY")]
    pub history: Option<usize>,
    /// Most WebSocket clients at once; more are refused with 503 [default: 10000].
    #[arg(long, env = "VITALS_MAX_CLIENTS")]
    pub max_clients: Option<u64>,
    /// UDP address for StatsD/DogStatsD, or `off` [default: 127.0.0.1:8125].
    #[arg(long, env = "VITALS_STATSD")]
    pub statsd: Option<String>,
    /// Most distinct metric names; new names beyond it are dropped and counted [default: 10000].
    #[arg(long, env = "VITALS_MAX_SERIES")]
    pub max_series: Option<usize>,
    /// Run a built-in traffic simulator that sends realistic data through StatsD and HTTP.
    #[arg(long, env = "VITALS_DEMO", num_args = 0..=1, default_missing_value = "true")]
    pub demo: Option<bool>,
    /// p95 below this is "excellent", in ms [default: 100].
    #[arg(long, env = "VITALS_LATENCY_EXCELLENT_MS")]
    pub latency_excellent_ms: Option<f64>,
    /// p95 below this is "good", in ms [default: 2000].
    #[arg(long, env = "VITALS_LATENCY_GOOD_MS")]
    pub latency_good_ms: Option<f64>,
    /// p95 below this is "acceptable" (else "slow"), in ms [default: 5000].
    #[arg(long, env = "VITALS_LATENCY_ACCEPTABLE_MS")]
    pub latency_acceptable_ms: Option<f64>,
    /// Unique members stored per StatsD set and minute; more are counted as dropped
    /// [default: 10000].
    #[arg(long, env = "VITALS_MAX_SET_MEMBERS")]
    pub max_set_members: Option<usize>,
    /// Bytes of set members stored over all sets [default: 2097152].
    #[arg(long, env = "VITALS_MAX_SET_BYTES")]
    pub max_set_bytes: Option<usize>,
    /// Megabytes the operation and event statistics may hold together; at it, new series are
    /// dropped and counted, over it the series idle longest leave memory [default: 12].
    #[arg(long, env = "VITALS_MAX_STATISTICS_MB")]
    pub max_statistics_mb: Option<usize>,
    /// More host names the server answers to (comma-separated), besides IP addresses,
    /// localhost and --host; any other `Host` is refused (DNS rebinding).
    #[arg(long, env = "VITALS_ALLOWED_HOSTS", value_delimiter = ',')]
    pub allowed_hosts: Vec<String>,
    /// More origins (`https://host[:port]`, comma-separated) whose pages may change state or
    /// open the live stream, besides the server's own.
    #[arg(long, env = "VITALS_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Vec<String>,
    /// Believe X-Forwarded-Proto and X-Forwarded-Host, and X-Forwarded-For's last address when
    /// counting wrong tokens (only behind a reverse proxy that sets them).
    #[arg(long, env = "VITALS_TRUST_FORWARDED", num_args = 0..=1, default_missing_value = "true")]
    pub trust_forwarded: Option<bool>,
    /// What the token protects: `ingest` (writes only) or `all` (pages, APIs and /ws too;
    /// browsers sign in at /login) [default: all].
    #[arg(long, env = "VITALS_AUTH")]
    pub auth: Option<String>,
    /// Tag sets one operation or event name may hold; samples of more go to the name's
    /// `_overflow:true` set [default: 100].
    #[arg(long, env = "VITALS_MAX_TAG_SETS_PER_NAME")]
    pub max_tag_sets_per_name: Option<usize>,
    /// Hours raw host samples are kept in the store [default: 48].
    #[arg(long, env = "VITALS_RETENTION_RAW_HOURS")]
    pub retention_raw_hours: Option<u64>,
    /// Days minute rows are kept [default: 30].
    #[arg(long, env = "VITALS_RETENTION_MINUTE_DAYS")]
    pub retention_minute_days: Option<u64>,
    /// Days hour and day rows are kept [default: 400].
    #[arg(long, env = "VITALS_RETENTION_HOUR_DAYS")]
    pub retention_hour_days: Option<u64>,
    /// Most megabytes the store may use; beyond, the oldest rows of the finest tier go first
    /// [default: 16384].
    #[arg(long, env = "VITALS_MAX_DISK_MB")]
    pub max_disk_mb: Option<u64>,
    /// A TOML file of alert rules (`[[rules]]`, see docs/alert-rules.example.toml), added to
    /// those of the config file's `[[alerts.rules]]`.
    #[arg(long, env = "VITALS_ALERT_RULES")]
    pub alert_rules: Option<PathBuf>,
    /// Whether the built-in alert rules (host CPU, memory and disk, slow and failing
    /// operations, live stream latency, StatsD drops) are on [default: true].
    #[arg(long, env = "VITALS_DEFAULT_ALERTS")]
    pub default_alerts: Option<bool>,
    /// http:// URL that receives a JSON POST for every alert notification (repeatable,
    /// comma-separated in the environment).
    #[arg(long = "webhook", env = "VITALS_WEBHOOKS", value_delimiter = ',')]
    pub webhooks: Vec<String>,
    /// Base http:// URL of a Prometheus Alertmanager to push alerts to (its v2 API).
    #[arg(long, env = "VITALS_ALERTMANAGER")]
    pub alertmanager: Option<String>,
    /// Write a report of each past day or week (UTC) as HTML into DATA_DIR/reports and post
    /// it to the webhooks: `daily` or `weekly` [default: off].
    #[arg(long, env = "VITALS_REPORT_EVERY")]
    pub report_every: Option<String>,
    /// A second listener for OTLP/HTTP only: `off`, `on` (127.0.0.1:4318) or IP:PORT; the
    /// main port serves /v1/traces and /v1/metrics either way [default: off].
    #[arg(long, env = "VITALS_OTLP_ADDR")]
    pub otlp_addr: Option<String>,
    /// OTLP span kinds that count as operations (comma-separated: server, consumer, client,
    /// producer, internal, unspecified, all) [default: server,consumer].
    #[arg(long, env = "VITALS_OTLP_SPAN_KINDS", value_delimiter = ',')]
    pub otlp_span_kinds: Vec<String>,
    /// OTLP resource, span and data-point attributes kept as tags (comma-separated)
    /// [default: service.name].
    #[arg(long, env = "VITALS_OTLP_ATTRIBUTES", value_delimiter = ',')]
    pub otlp_attributes: Vec<String>,
}

/// The config file's shape: the same options as the flags, all optional; unknown keys are errors.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FileConfig {
    host: Option<String>,
    port: Option<u16>,
    interval_secs: Option<f64>,
    data_dir: Option<PathBuf>,
    token: Option<String>,
    max_body_bytes: Option<usize>,
    request_timeout_secs: Option<u64>,
    history: Option<usize>,
    max_clients: Option<u64>,
    statsd: Option<String>,
    max_series: Option<usize>,
    demo: Option<bool>,
    latency_excellent_ms: Option<f64>,
    latency_good_ms: Option<f64>,
    latency_acceptable_ms: Option<f64>,
    max_set_members: Option<usize>,
    max_set_bytes: Option<usize>,
    max_statistics_mb: Option<usize>,
    allowed_hosts: Option<Vec<String>>,
    allowed_origins: Option<Vec<String>>,
    trust_forwarded: Option<bool>,
    auth: Option<String>,
    max_tag_sets_per_name: Option<usize>,
    retention_raw_hours: Option<u64>,
    retention_minute_days: Option<u64>,
    retention_hour_days: Option<u64>,
    max_disk_mb: Option<u64>,
    alert_rules: Option<PathBuf>,
    report_every: Option<String>,
    otlp_addr: Option<String>,
    otlp_span_kinds: Option<Vec<String>>,
    otlp_attributes: Option<Vec<String>>,
    /// `[alerts]`: rules, receivers and flapping (see `alerts::config`).
    alerts: Option<crate::server::alerts::config::AlertsFile>,
}

/// A secret that never shows in logs or debug output.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Validated settings of `vitals serve`.
#[derive(Clone, Debug)]
pub struct ServeConfig {
    pub host: String,
    pub port: u16,
    pub interval_secs: f64,
    pub data_dir: PathBuf,
    pub token: Option<Secret>,
    pub max_body_bytes: usize,
    pub request_timeout_secs: u64,
    pub history: usize,
    pub max_clients: u64,
    /// StatsD address; `None` when disabled.
    pub statsd: Option<SocketAddr>,
    pub max_series: usize,
    pub demo: bool,
    pub thresholds: LatencyThresholds,
    pub max_set_members: usize,
    pub max_set_bytes: usize,
    pub max_statistics_mb: usize,
    pub allowed_hosts: Vec<String>,
    pub allowed_origins: Vec<String>,
    pub trust_forwarded: bool,
    /// What `token` protects (only meaningful with a token).
    pub auth: AuthMode,
    pub max_tag_sets_per_name: usize,
    pub retention: Retention,
    pub max_disk_mb: u64,
    pub alerts: crate::server::alerts::AlertsConfig,
    /// Scheduled reports, when on.
    pub report_every: Option<crate::server::reports::schedule::Every>,
    /// OTLP/HTTP ingestion: the optional second listener, span kinds and tag attributes.
    pub otlp: crate::server::ingest::otlp::OtlpConfig,
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            // Leptos.toml's `site-addr`: loopback only.
            host: crate::server::site::default_addr().ip().to_string(),
            port: crate::server::site::default_addr().port(),
            interval_secs: DEFAULT_INTERVAL_SECS,
            data_dir: PathBuf::from(DEFAULT_DATA_DIR),
            token: None,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            request_timeout_secs: DEFAULT_REQUEST_TIMEOUT_SECS,
            history: DEFAULT_HISTORY,
            max_clients: DEFAULT_MAX_CLIENTS,
            statsd: DEFAULT_STATSD.parse().ok(),
            max_series: DEFAULT_MAX_SERIES,
            demo: false,
            thresholds: LatencyThresholds::default(),
            max_set_members: crate::server::metrics::DEFAULT_MAX_SET_MEMBERS,
            max_set_bytes: crate::server::metrics::DEFAULT_MAX_SET_BYTES,
            max_statistics_mb: crate::server::metrics::DEFAULT_MAX_STATISTICS_BYTES >> 20,
            allowed_hosts: Vec::new(),
            allowed_origins: Vec::new(),
            trust_forwarded: false,
            auth: AuthMode::default(),
            max_tag_sets_per_name: crate::server::metrics::tags::DEFAULT_MAX_TAG_SETS,
            retention: Retention::default(),
            max_disk_mb: DEFAULT_MAX_DISK_MB,
            alerts: crate::server::alerts::AlertsConfig::default(),
            report_every: None,
            otlp: Default::default(),
        }
    }
}

/// A configuration problem, worded for the one line the CLI prints.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {reason}")]
    Unreadable { path: String, reason: String },
    #[error("invalid config file {path}: {reason}")]
    Invalid { path: String, reason: String },
    #[error("{name} must be {rule} (got {value})")]
    OutOfRange { name: &'static str, rule: &'static str, value: String },
}

impl ServeArgs {
    /// Merges these options over the config file (if any) and the defaults, then validates.
    pub fn resolve(self) -> Result<ServeConfig, ConfigError> {
        let file = match &self.config {
            Some(path) => load_file(path)?,
            None => FileConfig::default(),
        };
        let d = ServeConfig::default();
        let rules_file = self.alert_rules.clone().or(file.alert_rules.clone());
        let alert_args = crate::server::alerts::config::AlertArgs {
            webhooks: &self.webhooks,
            alertmanager: self.alertmanager.as_deref(),
            rules_file: rules_file.as_deref(),
            default_rules: self.default_alerts,
        };
        let alerts = crate::server::alerts::config::resolve(
            &alert_args,
            file.alerts,
            self.config.as_deref(),
        )?;
        let token = self.token.or(file.token).filter(|t| !t.is_empty()).map(Secret::new);
        let config = ServeConfig {
            host: self.host.or(file.host).unwrap_or(d.host),
            port: self.port.or(file.port).unwrap_or(d.port),
            interval_secs: self.interval_secs.or(file.interval_secs).unwrap_or(d.interval_secs),
            data_dir: self.data_dir.or(file.data_dir).unwrap_or(d.data_dir),
            token,
            max_body_bytes: self.max_body_bytes.or(file.max_body_bytes).unwrap_or(d.max_body_bytes),
            request_timeout_secs: self
                .request_timeout_secs
                .or(file.request_timeout_secs)
                .unwrap_or(d.request_timeout_secs),
            history: self.history.or(file.history).unwrap_or(d.history),
            max_clients: self.max_clients.or(file.max_clients).unwrap_or(d.max_clients),
            statsd: match self.statsd.or(file.statsd) {
                None => d.statsd,
                Some(s) if s.eq_ignore_ascii_case("off") => None,
                Some(s) => Some(s.parse().map_err(|_| ConfigError::OutOfRange {
                    name: "statsd",
                    rule: "an IP:PORT address such as 127.0.0.1:8125, or off",
                    value: s.clone(),
                })?),
            },
            max_series: self.max_series.or(file.max_series).unwrap_or(d.max_series),
            demo: self.demo.or(file.demo).unwrap_or(d.demo),
            thresholds: LatencyThresholds {
                excellent_ms: self
                    .latency_excellent_ms
                    .or(file.latency_excellent_ms)
                    .unwrap_or(d.thresholds.excellent_ms),
                good_ms: self
                    .latency_good_ms
                    .or(file.latency_good_ms)
                    .unwrap_or(d.thresholds.good_ms),
                acceptable_ms: self
                    .latency_acceptable_ms
                    .or(file.latency_acceptable_ms)
                    .unwrap_or(d.thresholds.acceptable_ms),
            },
            max_set_members: self
                .max_set_members
                .or(file.max_set_members)
                .unwrap_or(d.max_set_members),
            max_set_bytes: self.max_set_bytes.or(file.max_set_bytes).unwrap_or(d.max_set_bytes),
            max_statistics_mb: self
                .max_statistics_mb
                .or(file.max_statistics_mb)
                .unwrap_or(d.max_statistics_mb),
            allowed_hosts: non_empty(self.allowed_hosts)
                .or(file.allowed_hosts)
                .unwrap_or(d.allowed_hosts),
            allowed_origins: non_empty(self.allowed_origins)
                .or(file.allowed_origins)
                .unwrap_or(d.allowed_origins),
            trust_forwarded: self
                .trust_forwarded
                .or(file.trust_forwarded)
                .unwrap_or(d.trust_forwarded),
            auth: match self.auth.or(file.auth) {
                None => d.auth,
                Some(mode) => AuthMode::parse(&mode).ok_or(ConfigError::OutOfRange {
                    name: "auth",
                    rule: "ingest or all",
                    value: mode.clone(),
                })?,
            },
            max_tag_sets_per_name: self
                .max_tag_sets_per_name
                .or(file.max_tag_sets_per_name)
                .unwrap_or(d.max_tag_sets_per_name),
            retention: Retention {
                raw_hours: self
                    .retention_raw_hours
                    .or(file.retention_raw_hours)
                    .unwrap_or(d.retention.raw_hours),
                minute_days: self
                    .retention_minute_days
                    .or(file.retention_minute_days)
                    .unwrap_or(d.retention.minute_days),
                hour_days: self
                    .retention_hour_days
                    .or(file.retention_hour_days)
                    .unwrap_or(d.retention.hour_days),
            },
            max_disk_mb: self.max_disk_mb.or(file.max_disk_mb).unwrap_or(d.max_disk_mb),
            alerts,
            report_every: match self.report_every.or(file.report_every) {
                None => None,
                Some(text) => Some(crate::server::reports::schedule::Every::parse(&text).ok_or(
                    ConfigError::OutOfRange {
                        name: "report-every",
                        rule: "daily or weekly",
                        value: text,
                    },
                )?),
            },
            otlp: crate::server::ingest::otlp::OtlpConfig::resolve(
                self.otlp_addr.or(file.otlp_addr),
                non_empty(self.otlp_span_kinds).or(file.otlp_span_kinds),
                non_empty(self.otlp_attributes).or(file.otlp_attributes),
            )?,
        };
        config.validate()?;
        Ok(config)
    }
}

impl ServeConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if !(self.interval_secs.is_finite()
            && self.interval_secs > 0.0
            && self.interval_secs <= 3600.0)
        {
            return Err(ConfigError::OutOfRange {
                name: "interval-secs",
                rule: "a number of seconds > 0 and <= 3600",
                value: self.interval_secs.to_string(),
            });
        }
        if self.host.trim().is_empty() {
            return Err(ConfigError::OutOfRange {
                name: "host",
                rule: "a host name or IP address",
                value: "an empty string".into(),
            });
        }
        if self.max_body_bytes == 0 {
            return Err(ConfigError::OutOfRange {
                name: "max-body-bytes",
                rule: "> 0",
                value: "0".into(),
            });
        }
        if !(1..=MAX_HISTORY).contains(&self.history) {
            return Err(ConfigError::OutOfRange {
                name: "history",
                rule: "between 1 and 86400 samples",
                value: self.history.to_string(),
            });
        }
        if self.max_set_members == 0 || self.max_set_bytes == 0 {
            return Err(ConfigError::OutOfRange {
                name: "max-set-members / max-set-bytes",
                rule: "> 0",
                value: "0".into(),
            });
        }
        if !(1..=65_536).contains(&self.max_statistics_mb) {
            return Err(ConfigError::OutOfRange {
                name: "max-statistics-mb",
                rule: "1 to 65536",
                value: self.max_statistics_mb.to_string(),
            });
        }
        for origin in &self.allowed_origins {
            if !is_origin(origin) {
                return Err(ConfigError::OutOfRange {
                    name: "allowed-origins",
                    rule: "origins like https://vitals.example or http://127.0.0.1:3000",
                    value: origin.clone(),
                });
            }
        }
        for host in &self.allowed_hosts {
            if host.is_empty() || host.contains(['/', ':', ' '].as_slice()) {
                return Err(ConfigError::OutOfRange {
                    name: "allowed-hosts",
                    rule: "host names without scheme or port, like vitals.example",
                    value: host.clone(),
                });
            }
        }
        if self.max_series == 0 {
            return Err(ConfigError::OutOfRange {
                name: "max-series",
                rule: "> 0",
                value: "0".into(),
            });
        }
        let t = self.thresholds;
        let ordered = t.excellent_ms.is_finite()
            && t.acceptable_ms.is_finite()
            && 0.0 < t.excellent_ms
            && t.excellent_ms < t.good_ms
            && t.good_ms < t.acceptable_ms;
        if !ordered {
            return Err(ConfigError::OutOfRange {
                name: "latency thresholds",
                rule: "positive with excellent < good < acceptable",
                value: format!("{} / {} / {} ms", t.excellent_ms, t.good_ms, t.acceptable_ms),
            });
        }
        let r = self.retention;
        let ordered = r.raw_hours >= 1
            && r.minute_days >= 1
            && r.minute_days <= r.hour_days
            && r.hour_days <= 36_500
            && r.raw_hours <= r.minute_days * 24;
        if !ordered {
            return Err(ConfigError::OutOfRange {
                name: "retention",
                rule: "at least 1 for each tier, raw <= minute <= hour days, hour days <= 36500",
                value: format!(
                    "raw {} h, minute {} d, hour {} d",
                    r.raw_hours, r.minute_days, r.hour_days
                ),
            });
        }
        if self.max_tag_sets_per_name == 0 {
            return Err(ConfigError::OutOfRange {
                name: "max-tag-sets-per-name",
                rule: "> 0",
                value: "0".into(),
            });
        }
        if self.max_disk_mb < 16 {
            return Err(ConfigError::OutOfRange {
                name: "max-disk-mb",
                rule: "at least 16",
                value: self.max_disk_mb.to_string(),
            });
        }
        if self.request_timeout_secs == 0 {
            return Err(ConfigError::OutOfRange {
                name: "request-timeout-secs",
                rule: "> 0",
                value: "0".into(),
            });
        }
        Ok(())
    }

    /// How to open the history store.
    pub fn store_config(&self) -> StoreConfig {
        StoreConfig {
            retention: self.retention,
            max_disk_bytes: Some(self.max_disk_mb.saturating_mul(1024 * 1024)),
            cached_ids: self.max_series,
            ..StoreConfig::new(&self.data_dir)
        }
    }

    /// The sampling interval as a [`std::time::Duration`].
    pub fn interval(&self) -> std::time::Duration {
        std::time::Duration::from_secs_f64(self.interval_secs)
    }
}

/// `scheme://host[:port]` with scheme http or https and nothing after.
fn is_origin(origin: &str) -> bool {
    let Some((scheme, rest)) = origin.trim_end_matches('/').split_once("://") else {
        return false;
    };
    matches!(scheme, "http" | "https") && !rest.is_empty() && !rest.contains(['/', '?', '#'])
}

/// A list flag that was given (non-empty).
fn non_empty(list: Vec<String>) -> Option<Vec<String>> {
    let list: Vec<String> =
        list.into_iter().map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect();
    (!list.is_empty()).then_some(list)
}

fn load_file(path: &Path) -> Result<FileConfig, ConfigError> {
    load_toml(path)
}

/// Reads and parses a TOML file; an error is one line naming the file and the line.
pub fn load_toml<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, ConfigError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::Unreadable { path: shown.clone(), reason: io_reason(&e) })?;
    toml::from_str(&text).map_err(|e| {
        let line =
            e.span().map(|span| 1 + text[..span.start.min(text.len())].matches('\n').count());
        let message = e.message().trim().replace('\n', " ");
        let message = message.replace("unknown field", "unknown key");
        let reason = match line {
            Some(line) => format!("line {line}: {message}"),
            None => message,
        };
        ConfigError::Invalid { path: shown, reason }
    })
}

/// An I/O error as a short lower-case phrase without the OS error number.
pub fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => {
            let text = e.to_string();
            text.split(" (os error").next().unwrap_or(&text).to_lowercase()
        }
    }
}

/// Parses the command line (and environment). On a usage error returns the single line to print;
/// `--help` and `--version` come back as `Ok(Err(text))` to print as they are.
pub fn parse_cli<I, T>(args: I) -> Result<Cli, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    Cli::try_parse_from(args)
}

/// The first line of a clap error, without its usage block, plus a pointer to `--help`.
pub fn one_line(error: &clap::Error) -> String {
    let rendered = error.render().to_string();
    let first = rendered.lines().find(|l| !l.trim().is_empty()).unwrap_or("invalid arguments");
    let first = first.trim().trim_start_matches("error: ");
    format!("error: {first} (see `vitals --help`)")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn serve(args: &[&str]) -> Result<ServeArgs, clap::Error> {
        let mut all = vec!["vitals", "serve"];
        all.extend_from_slice(args);
        parse_cli(all).map(|cli| match cli.command {
            Command::Serve(a) => a,
        })
    }

    fn file(text: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(text.as_bytes()).unwrap();
        f
    }

    #[test]
    fn defaults_are_loopback_3000_every_second() {
        let c = serve(&[]).unwrap().resolve().unwrap();
        assert_eq!(c.host, "127.0.0.1");
        assert_eq!(c.port, 3000);
        assert_eq!(c.interval_secs, 1.0);
        assert_eq!(c.data_dir, PathBuf::from("./vitals-data"));
        assert!(c.token.is_none());
    }

    #[test]
    fn flags_win_over_the_file_and_the_file_over_defaults() {
        let f = file("port = 4000\ninterval-secs = 2.5\nhost = \"127.0.0.2\"\n");
        let path = f.path().to_str().unwrap();
        let c = serve(&["--config", path, "--port", "5000"]).unwrap().resolve().unwrap();
        assert_eq!(c.port, 5000);
        assert_eq!(c.interval_secs, 2.5);
        assert_eq!(c.host, "127.0.0.2");
    }

    #[test]
    fn unknown_config_key_names_the_key_and_line() {
        let f = file("port = 4000\ncolour = \"red\"\n");
        let path = f.path().to_str().unwrap();
        let err = serve(&["--config", path]).unwrap().resolve().unwrap_err().to_string();
        assert!(err.contains("unknown key `colour`"), "{err}");
        assert!(err.contains("line 2"), "{err}");
        assert!(!err.contains('\n'), "{err}");
    }

    #[test]
    fn wrong_type_in_config_is_one_line() {
        let f = file("port = \"eighty\"\n");
        let path = f.path().to_str().unwrap();
        let err = serve(&["--config", path]).unwrap().resolve().unwrap_err().to_string();
        assert!(err.starts_with("invalid config file"), "{err}");
        assert!(!err.contains('\n'), "{err}");
    }

    #[test]
    fn missing_config_file_is_reported() {
        let err = serve(&["--config", "/nonexistent/vitals.toml"]).unwrap().resolve().unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot read config file /nonexistent/vitals.toml: no such file or directory"
        );
    }

    #[test]
    fn report_every_is_daily_or_weekly() {
        let err = serve(&["--report-every", "hourly"]).unwrap().resolve().unwrap_err();
        assert_eq!(err.to_string(), "report-every must be daily or weekly (got hourly)");
        let f = file("report-every = \"weekly\"\n");
        let config = serve(&["--config", f.path().to_str().unwrap()]).unwrap().resolve().unwrap();
        assert_eq!(config.report_every, Some(crate::server::reports::schedule::Every::Weekly));
    }

    #[test]
    fn interval_must_be_positive() {
        for bad in ["0", "-1", "NaN"] {
            let err = serve(&["--interval-secs", bad]).unwrap().resolve().unwrap_err();
            assert!(err.to_string().starts_with("interval-secs must be"), "{bad}: {err}");
        }
        let f = file("interval-secs = 0\n");
        let err = serve(&["--config", f.path().to_str().unwrap()]).unwrap().resolve();
        assert!(err.is_err());
    }

    #[test]
    fn bad_port_is_one_clear_line() {
        for bad in ["70000", "abc", "-1"] {
            let err = serve(&["--port", bad]).unwrap_err();
            let line = one_line(&err);
            assert!(line.contains("--port"), "{line}");
            assert!(!line.contains('\n'), "{line}");
        }
    }

    #[test]
    fn origins_and_hosts_lists_come_from_flags_or_the_file() {
        let c = serve(&["--allowed-origins", "https://a.example,http://b.example:8080"])
            .unwrap()
            .resolve()
            .unwrap();
        assert_eq!(c.allowed_origins, vec!["https://a.example", "http://b.example:8080"]);
        let f = file("allowed-hosts = [\"vitals.example\"]\ntrust-forwarded = true\n");
        let c = serve(&["--config", f.path().to_str().unwrap()]).unwrap().resolve().unwrap();
        assert_eq!(c.allowed_hosts, vec!["vitals.example"]);
        assert!(c.trust_forwarded);
        for bad in ["evil.example", "https://a.example/path", "ftp://a.example"] {
            let err = serve(&["--allowed-origins", bad]).unwrap().resolve().unwrap_err();
            assert!(err.to_string().starts_with("allowed-origins must be"), "{bad}: {err}");
        }
        let err = serve(&["--allowed-hosts", "a.example:80"]).unwrap().resolve().unwrap_err();
        assert!(err.to_string().starts_with("allowed-hosts must be"), "{err}");
        let err = serve(&["--auth", "some"]).unwrap().resolve().unwrap_err();
        assert_eq!(err.to_string(), "auth must be ingest or all (got some)");
        let err = serve(&["--history", "86401"]).unwrap().resolve().unwrap_err();
        assert!(err.to_string().contains("86400"), "{err}");
    }

    #[test]
    fn secrets_do_not_show_in_debug_output() {
        let c = serve(&["--token", "hunter2-hunter2"]).unwrap().resolve().unwrap();
        assert!(!format!("{c:?}").contains("hunter2"));
        assert_eq!(c.token.unwrap().expose(), "hunter2-hunter2");
    }
}
