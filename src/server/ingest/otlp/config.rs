//! What `--otlp-addr`, `--otlp-span-kinds` and `--otlp-attributes` mean, parsed and checked.

use std::net::SocketAddr;

use crate::server::config::ConfigError;

/// The OTLP/HTTP port when `--otlp-addr on`: the OpenTelemetry default, on loopback.
pub const DEFAULT_OTLP_ADDR: &str = "127.0.0.1:4318";
/// Span kinds that count as operations unless `--otlp-span-kinds` says otherwise: the work a
/// service does for others (a request it serves, a message it consumes). Client, producer and
/// internal spans time parts of that work, so counting them too would count it twice.
pub const DEFAULT_SPAN_KINDS: [&str; 2] = ["server", "consumer"];
/// Resource or span attributes that become tags unless `--otlp-attributes` says otherwise.
pub const DEFAULT_ATTRIBUTES: [&str; 1] = ["service.name"];
/// Most attributes `--otlp-attributes` may name (a span carries at most 32 tags).
pub const MAX_ATTRIBUTES: usize = 16;

/// OTLP settings of `vitals serve`.
#[derive(Clone, Debug, PartialEq)]
pub struct OtlpConfig {
    /// A second listener for OTLP only (the main port always serves `/v1/*` too).
    pub addr: Option<SocketAddr>,
    pub span_kinds: SpanKinds,
    /// Attribute keys (resource first, then span or data point) kept as tags.
    pub attributes: Vec<String>,
}

impl Default for OtlpConfig {
    fn default() -> Self {
        OtlpConfig {
            addr: None,
            span_kinds: SpanKinds::parse(DEFAULT_SPAN_KINDS).unwrap_or(SpanKinds(0)),
            attributes: DEFAULT_ATTRIBUTES.iter().map(|a| a.to_string()).collect(),
        }
    }
}

impl OtlpConfig {
    /// Merges the given options over the defaults; the error is the CLI's one line.
    pub fn resolve(
        addr: Option<String>,
        span_kinds: Option<Vec<String>>,
        attributes: Option<Vec<String>>,
    ) -> Result<Self, ConfigError> {
        let d = OtlpConfig::default();
        let addr = match addr.as_deref().map(str::trim) {
            None => None,
            Some(off) if off.eq_ignore_ascii_case("off") => None,
            Some(on) if on.eq_ignore_ascii_case("on") => DEFAULT_OTLP_ADDR.parse().ok(),
            Some(other) => Some(other.parse().map_err(|_| ConfigError::OutOfRange {
                name: "otlp-addr",
                rule: "off, on (127.0.0.1:4318) or an IP:PORT address",
                value: other.to_string(),
            })?),
        };
        let span_kinds = match span_kinds {
            None => d.span_kinds,
            Some(kinds) => SpanKinds::parse(kinds.iter().map(String::as_str)).ok_or_else(|| {
                ConfigError::OutOfRange {
                    name: "otlp-span-kinds",
                    rule: "a comma-separated list of server, consumer, client, producer, \
                           internal, unspecified, or all",
                    value: kinds.join(","),
                }
            })?,
        };
        let attributes = match attributes {
            None => d.attributes,
            Some(keys) => {
                let keys: Vec<String> =
                    keys.iter().map(|k| k.trim().to_string()).filter(|k| !k.is_empty()).collect();
                let valid = keys.len() <= MAX_ATTRIBUTES
                    && keys.iter().all(|k| crate::server::metrics::validate_name(k).is_ok());
                if !valid {
                    return Err(ConfigError::OutOfRange {
                        name: "otlp-attributes",
                        rule: "at most 16 comma-separated attribute keys",
                        value: keys.join(","),
                    });
                }
                keys
            }
        };
        Ok(OtlpConfig { addr, span_kinds, attributes })
    }
}

/// A set of OTLP span kinds (by their protocol numbers, 0–5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpanKinds(u8);

/// The protocol's span kinds by number.
const KIND_NAMES: [&str; 6] =
    ["unspecified", "internal", "server", "client", "producer", "consumer"];

impl SpanKinds {
    /// Parses kind names (case-insensitive; `all` is every kind); `None` for an unknown name or
    /// an empty list.
    pub fn parse<'a>(names: impl IntoIterator<Item = &'a str>) -> Option<Self> {
        let mut bits = 0u8;
        for name in names {
            let name = name.trim();
            if name.eq_ignore_ascii_case("all") {
                bits = 0b11_1111;
                continue;
            }
            let index = KIND_NAMES.iter().position(|k| k.eq_ignore_ascii_case(name))?;
            bits |= 1 << index;
        }
        (bits != 0).then_some(SpanKinds(bits))
    }

    /// Whether spans of the kind numbered `kind` count (unknown numbers count as unspecified).
    pub fn counts(self, kind: i32) -> bool {
        let index = if (0..6).contains(&kind) { kind } else { 0 };
        self.0 & (1 << index) != 0
    }

    /// The kinds' names, for the README and messages.
    pub fn names(self) -> Vec<&'static str> {
        KIND_NAMES
            .iter()
            .enumerate()
            .filter(|(i, _)| self.0 & (1 << i) != 0)
            .map(|(_, n)| *n)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_count_server_and_consumer_spans() {
        let c = OtlpConfig::default();
        assert_eq!(c.span_kinds.names(), ["server", "consumer"]);
        assert!(c.span_kinds.counts(2) && c.span_kinds.counts(5));
        assert!(!c.span_kinds.counts(1) && !c.span_kinds.counts(3) && !c.span_kinds.counts(0));
        assert!(!c.span_kinds.counts(99), "an unknown kind is unspecified");
        assert_eq!(c.attributes, ["service.name"]);
        assert_eq!(c.addr, None);
    }

    #[test]
    fn options_are_parsed_or_refused_in_one_line() {
        let on = OtlpConfig::resolve(Some("on".into()), None, None).unwrap();
        assert_eq!(on.addr, Some("127.0.0.1:4318".parse().unwrap()));
        let kinds = OtlpConfig::resolve(None, Some(vec!["Client".into(), "server".into()]), None)
            .unwrap()
            .span_kinds;
        assert_eq!(kinds.names(), ["server", "client"]);
        let all = OtlpConfig::resolve(None, Some(vec!["all".into()]), None).unwrap().span_kinds;
        assert!((0..6).all(|k| all.counts(k)));
        let attrs = OtlpConfig::resolve(None, None, Some(vec!["http.route".into(), " ".into()]))
            .unwrap()
            .attributes;
        assert_eq!(attrs, ["http.route"]);

        let err = OtlpConfig::resolve(Some("4318".into()), None, None).unwrap_err();
        assert!(err.to_string().starts_with("otlp-addr must be"), "{err}");
        let err = OtlpConfig::resolve(None, Some(vec!["servers".into()]), None).unwrap_err();
        assert!(err.to_string().contains("otlp-span-kinds"), "{err}");
        let many = (0..17).map(|i| format!("k{i}")).collect();
        assert!(OtlpConfig::resolve(None, None, Some(many)).is_err());
    }
}
