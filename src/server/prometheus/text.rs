//! Writing the Prometheus text exposition format 0.0.4 and OpenMetrics 1.0.0: families with
//! `HELP` and `TYPE`, samples with escaped labels, names sanitised by the Prometheus rules.
//!
//! The two formats differ where it matters here: OpenMetrics names a counter family without
//! `_total` (its sample has it), wants `# EOF` at the end, escapes `"` in `HELP` and has its own
//! content type. Everything else (gauges, summaries, label escaping) is written the same.

use std::collections::HashSet;
use std::fmt::Write as _;

/// Which format a scraper gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `text/plain; version=0.0.4`, what Prometheus asks for by default.
    Text,
    OpenMetrics,
}

impl Format {
    /// OpenMetrics when the `Accept` header lists it with a q above 0 (as Prometheus does when
    /// configured to prefer it), otherwise the classic text format.
    pub fn from_accept(accept: Option<&str>) -> Self {
        let wants_openmetrics = accept
            .and_then(|a| crate::server::negotiate::listed(a, "application/openmetrics-text"))
            .unwrap_or(false);
        if wants_openmetrics {
            Format::OpenMetrics
        } else {
            Format::Text
        }
    }

    pub const fn content_type(self) -> &'static str {
        match self {
            Format::Text => "text/plain; version=0.0.4; charset=utf-8",
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

/// The type of a metric family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Gauge,
    Counter,
    Summary,
}

impl Kind {
    const fn as_str(self) -> &'static str {
        match self {
            Kind::Gauge => "gauge",
            Kind::Counter => "counter",
            Kind::Summary => "summary",
        }
    }
}

/// An exposition being written. Each family name is written once: a second family whose
/// sanitised name is taken (two StatsD names that sanitise alike) is skipped and counted. So is
/// a series whose label set is taken within its family (tags `a.b` and `a-b` are both `a_b`).
pub struct Exposition {
    format: Format,
    out: String,
    names: HashSet<String>,
    skipped: usize,
}

impl Exposition {
    pub fn new(format: Format) -> Self {
        Exposition {
            format,
            out: String::with_capacity(64 * 1024),
            names: HashSet::new(),
            skipped: 0,
        }
    }

    /// Starts the family `name` (sanitised; a counter's without its `_total`), or `None`
    /// when that name was written already.
    pub fn family(&mut self, name: &str, kind: Kind, help: &str) -> Option<Family<'_>> {
        let base = metric_name(name);
        let base = match kind {
            Kind::Counter => base.strip_suffix("_total").map(str::to_owned).unwrap_or(base),
            _ => base,
        };
        // A family owns its sample names too: `x_total` for a counter, `x_sum` and `x_count`
        // for a summary, so no other family may take those.
        let owned: Vec<String> = match kind {
            Kind::Gauge => vec![base.clone()],
            Kind::Counter => vec![base.clone(), format!("{base}_total")],
            Kind::Summary => vec![base.clone(), format!("{base}_sum"), format!("{base}_count")],
        };
        if owned.iter().any(|n| self.names.contains(n)) {
            self.skipped += 1;
            return None;
        }
        self.names.extend(owned);
        let declared = match (kind, self.format) {
            (Kind::Counter, Format::Text) => format!("{base}_total"),
            _ => base.clone(),
        };
        let _ = writeln!(self.out, "# HELP {declared} {}", escape_help(help, self.format));
        let _ = writeln!(self.out, "# TYPE {declared} {}", kind.as_str());
        Some(Family {
            out: &mut self.out,
            base,
            kind,
            label_sets: HashSet::new(),
            skipped: &mut self.skipped,
        })
    }

    /// Families skipped because their sanitised name was taken, and series because their label
    /// set was.
    pub fn skipped(&self) -> usize {
        self.skipped
    }

    /// The text, ended as the format requires.
    pub fn finish(mut self) -> String {
        if self.format == Format::OpenMetrics {
            self.out.push_str("# EOF\n");
        }
        self.out
    }
}

/// One family's samples, one series (label set) per call.
pub struct Family<'a> {
    out: &'a mut String,
    base: String,
    kind: Kind,
    /// Label sets written: Prometheus refuses a scrape that repeats a sample.
    label_sets: HashSet<String>,
    skipped: &'a mut usize,
}

impl Family<'_> {
    /// A gauge's value, or a counter's (written as `<name>_total`).
    pub fn value(&mut self, labels: &Labels, value: f64) -> &mut Self {
        let suffix = if self.kind == Kind::Counter { "_total" } else { "" };
        if let Some(labels) = self.admit(labels) {
            self.sample(suffix, &labels, None, value);
        }
        self
    }

    /// A summary's `(quantile, value)` pairs (0.5 is written `0.5`), `_sum` and `_count`.
    pub fn summary(
        &mut self,
        labels: &Labels,
        quantiles: &[(f64, f64)],
        sum: f64,
        count: u64,
    ) -> &mut Self {
        if let Some(labels) = self.admit(labels) {
            for &(q, value) in quantiles {
                self.sample("", &labels, Some(&format_value(q)), value);
            }
            self.sample("_sum", &labels, None, sum);
            self.sample("_count", &labels, None, count as f64);
        }
        self
    }

    /// The label set written out (`a="1",b="2"`), or `None`, counted, when the family has it.
    fn admit(&mut self, labels: &Labels) -> Option<String> {
        let mut text = String::new();
        for (i, (k, v)) in labels.pairs.iter().enumerate() {
            let comma = if i > 0 { "," } else { "" };
            let _ = write!(text, "{comma}{k}=\"{}\"", escape_label_value(v));
        }
        if self.label_sets.insert(text.clone()) {
            Some(text)
        } else {
            *self.skipped += 1;
            None
        }
    }

    fn sample(&mut self, suffix: &str, labels: &str, quantile: Option<&str>, value: f64) {
        let out = &mut *self.out;
        out.push_str(&self.base);
        out.push_str(suffix);
        if !labels.is_empty() || quantile.is_some() {
            out.push('{');
            out.push_str(labels);
            if let Some(q) = quantile {
                let comma = if labels.is_empty() { "" } else { "," };
                let _ = write!(out, "{comma}quantile=\"{q}\"");
            }
            out.push('}');
        }
        out.push(' ');
        out.push_str(&format_value(value));
        out.push('\n');
    }
}

/// Label names and values for one sample. Names are sanitised; a name that sanitises to one
/// already present, or to a reserved one (`quantile`, `le`, or starting with `__`), is
/// written `tag_<name>`, and dropped if that is taken too.
#[derive(Clone, Debug, Default)]
pub struct Labels {
    pairs: Vec<(String, String)>,
}

/// Label names the exposition itself uses.
const RESERVED: [&str; 2] = ["quantile", "le"];

impl Labels {
    pub fn new() -> Self {
        Labels::default()
    }

    /// Adds `name="value"`.
    pub fn with(mut self, name: &str, value: &str) -> Self {
        self.push(name, value);
        self
    }

    pub fn push(&mut self, name: &str, value: &str) {
        let mut name = label_name(name);
        let taken = |n: &str, pairs: &[(String, String)]| pairs.iter().any(|(k, _)| k == n);
        if RESERVED.contains(&name.as_str()) || name.starts_with("__") || taken(&name, &self.pairs)
        {
            name = format!("tag_{}", name.trim_start_matches('_'));
        }
        if !taken(&name, &self.pairs) {
            self.pairs.push((name, value.to_owned()));
        }
    }
}

/// A metric name by the Prometheus rules (`[a-zA-Z_:][a-zA-Z0-9_:]*`): every other character
/// becomes `_`, and a leading digit gets a `_` before it.
pub fn metric_name(name: &str) -> String {
    sanitise(name, |c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// A label name by the Prometheus rules (`[a-zA-Z_][a-zA-Z0-9_]*`).
pub fn label_name(name: &str) -> String {
    sanitise(name, |c| c.is_ascii_alphanumeric() || c == '_')
}

fn sanitise(name: &str, allowed: impl Fn(char) -> bool) -> String {
    let mut out = String::with_capacity(name.len() + 1);
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        out.push('_');
    }
    out.extend(name.chars().map(|c| if allowed(c) { c } else { '_' }));
    out
}

/// A label value with `\`, `"` and line feeds escaped.
fn escape_label_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// `HELP` text with `\` and line feeds escaped, and `"` too in OpenMetrics (the text format
/// 0.0.4 does not escape it there: its parsers would keep the backslash).
fn escape_help(help: &str, format: Format) -> String {
    let escaped = help.replace('\\', "\\\\").replace('\n', "\\n");
    match format {
        Format::Text => escaped,
        Format::OpenMetrics => escaped.replace('"', "\\\""),
    }
}

/// A value as Prometheus reads it: whole numbers without a fraction, others in Rust's
/// shortest round-trip form (`0.25`, `1e-7`). Vitals holds only finite numbers; a non-finite
/// one would be written as Prometheus spells it.
pub fn format_value(value: f64) -> String {
    if value.is_nan() {
        "NaN".into()
    } else if value.is_infinite() {
        if value > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{}", value as i64)
    } else {
        format!("{value:?}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_sanitised_by_the_prometheus_rules() {
        assert_eq!(metric_name("api.checkout-time"), "api_checkout_time");
        assert_eq!(metric_name("9lives"), "_9lives");
        assert_eq!(metric_name("a:b"), "a:b");
        assert_eq!(metric_name("ünï"), "_n_");
        assert_eq!(label_name("a:b"), "a_b");
        assert_eq!(label_name(""), "_");
    }

    #[test]
    fn labels_are_escaped_and_never_collide() {
        let labels = Labels::new()
            .with("operation", "say \"hi\"\\\nnow")
            .with("quantile", "x")
            .with("__name__", "y")
            .with("region", "eu")
            .with("region", "us");
        let mut exp = Exposition::new(Format::Text);
        exp.family("t", Kind::Gauge, "help").unwrap().value(&labels, 1.0);
        let text = exp.finish();
        assert!(
            text.contains(
                r#"t{operation="say \"hi\"\\\nnow",tag_quantile="x",tag_name__="y",region="eu",tag_region="us"} 1"#
            ),
            "{text}"
        );
    }

    #[test]
    fn counters_and_summaries_follow_each_format() {
        for format in [Format::Text, Format::OpenMetrics] {
            let mut exp = Exposition::new(format);
            exp.family("vitals_received_total", Kind::Counter, "Received.")
                .unwrap()
                .value(&Labels::new().with("protocol", "statsd"), 3.0);
            let mut latency = exp.family("latency_seconds", Kind::Summary, "Latency.").unwrap();
            latency.summary(&Labels::new(), &[(0.5, 0.25)], 1.5, 6);
            let text = exp.finish();
            let declared =
                if format == Format::Text { "vitals_received_total" } else { "vitals_received" };
            assert!(text.contains(&format!("# TYPE {declared} counter\n")), "{text}");
            assert!(text.contains("vitals_received_total{protocol=\"statsd\"} 3\n"), "{text}");
            assert!(text.contains("latency_seconds{quantile=\"0.5\"} 0.25\n"), "{text}");
            assert!(text.contains("latency_seconds_sum 1.5\nlatency_seconds_count 6\n"), "{text}");
            assert_eq!(text.ends_with("# EOF\n"), format == Format::OpenMetrics);
        }
    }

    #[test]
    fn a_name_taken_is_skipped_with_the_sample_names_it_owns() {
        let mut exp = Exposition::new(Format::Text);
        assert!(exp.family("a.b", Kind::Gauge, "").is_some());
        assert!(exp.family("a_b", Kind::Gauge, "").is_none());
        assert!(exp.family("s", Kind::Summary, "").is_some());
        assert!(exp.family("s_count", Kind::Gauge, "").is_none());
        assert!(exp.family("c", Kind::Counter, "").is_some());
        assert!(exp.family("c_total", Kind::Gauge, "").is_none());
        assert_eq!(exp.skipped(), 3);
    }

    #[test]
    fn a_label_set_taken_in_its_family_is_skipped_and_counted() {
        let mut exp = Exposition::new(Format::Text);
        let dotted = Labels::new().with("operation", "checkout").with("a.b", "1");
        let dashed = Labels::new().with("operation", "checkout").with("a-b", "1");
        exp.family("d", Kind::Summary, "")
            .unwrap()
            .summary(&dotted, &[(0.5, 0.005)], 0.005, 1)
            .summary(&dashed, &[(0.5, 0.007)], 0.007, 1);
        exp.family("e", Kind::Counter, "").unwrap().value(&dotted, 0.0).value(&dashed, 0.0);
        // The same labels in another family are no repeat.
        exp.family("f", Kind::Gauge, "").unwrap().value(&dotted, 1.0);
        assert_eq!(exp.skipped(), 2);
        let text = exp.finish();
        let samples: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(
            samples,
            [
                r#"d{operation="checkout",a_b="1",quantile="0.5"} 0.005"#,
                r#"d_sum{operation="checkout",a_b="1"} 0.005"#,
                r#"d_count{operation="checkout",a_b="1"} 1"#,
                r#"e_total{operation="checkout",a_b="1"} 0"#,
                r#"f{operation="checkout",a_b="1"} 1"#,
            ]
        );
    }

    #[test]
    fn help_is_escaped_as_each_format_requires() {
        // A StatsD name may hold a quote, a backslash, even a line feed.
        let help = "StatsD gauge say\"hi\"\\now\nthen.";
        for (format, written) in [
            (Format::Text, r#"# HELP g StatsD gauge say"hi"\\now\nthen."#),
            (Format::OpenMetrics, r#"# HELP g StatsD gauge say\"hi\"\\now\nthen."#),
        ] {
            let mut exp = Exposition::new(format);
            exp.family("g", Kind::Gauge, help).unwrap().value(&Labels::new(), 1.0);
            let text = exp.finish();
            assert!(
                text.starts_with(&format!("{written}\n# TYPE g gauge\n")),
                "{format:?}: {text}"
            );
        }
    }

    #[test]
    fn formats_are_chosen_by_accept() {
        assert_eq!(Format::from_accept(None), Format::Text);
        assert_eq!(Format::from_accept(Some("text/plain;version=0.0.4")), Format::Text);
        let prometheus = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert_eq!(Format::from_accept(Some(prometheus)), Format::OpenMetrics);
        // A media type refused with q=0 is not chosen, however it is spelt.
        for refused in [
            "application/openmetrics-text;q=0",
            "application/openmetrics-text; version=1.0.0; q=0.0, text/plain",
            "Application/OpenMetrics-Text;Q=0",
        ] {
            assert_eq!(Format::from_accept(Some(refused)), Format::Text, "{refused}");
        }
        assert_eq!(
            Format::from_accept(Some("APPLICATION/OPENMETRICS-TEXT; q=0.1")),
            Format::OpenMetrics
        );
    }

    #[test]
    fn values_are_written_as_prometheus_reads_them() {
        assert_eq!(format_value(3.0), "3");
        assert_eq!(format_value(0.25), "0.25");
        assert_eq!(format_value(1e-7), "1e-7");
        assert_eq!(format_value(1e300), "1e300");
        assert_eq!(format_value(-2.5), "-2.5");
    }
}
