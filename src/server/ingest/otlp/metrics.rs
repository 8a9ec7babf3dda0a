//! OTLP metrics become Vitals metrics. Like StatsD's, Vitals' counters and gauges are series by
//! name alone, so a metric's data points are aggregated across their attribute sets, as
//! dropping a label does:
//!
//! - **Gauge**: the sum of the values reported for the newest moment in the request, over
//!   every resource and attribute set (memory by state gives the total; two instances' queue
//!   depths add up).
//! - **Sum**, monotonic: a counter. Delta points add; cumulative points add their increase
//!   since the stream's previous point (see [`Cumulative`]). Non-monotonic (up-down) sums are
//!   gauges: cumulative ones as above, delta ones adjust the gauge.
//! - **Histogram** and **exponential histogram**: always the counters `<name>.count` and
//!   `<name>.sum`. A point whose unit is a duration (`s`, `ms`, `us`, `ns`, `min`, `h`) and
//!   whose every populated bucket pins its values within 1 % (the sketches' own error) also
//!   feeds the operation `<name>`, tagged with the configured attributes, one weighted sample
//!   per bucket at its geometric middle: percentiles of such an operation are within about
//!   2 %. The OpenTelemetry default buckets (0, 5, 10, 25 … ms) are far wider, so those
//!   histograms stay counters; an exponential histogram at scale 6 or finer qualifies.
//! - **Summary**: the counters `<name>.count` and `<name>.sum` (quantiles cannot be merged).
//!
//! Cumulative points are taken in order per stream: a point no newer than the last one seen
//! (a retry, a queue delivering out of order) adds nothing; a new start time is a reset.
//!
//! A point without a value, with a non-finite one, a negative increment, an unspecified
//! temporality or inconsistent buckets is rejected and named in the partial success; a metric
//! without a valid name or without data rejects all its points.

use std::collections::HashMap;
use std::hash::BuildHasher as _;

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::metrics::v1::{
    metric::Data, number_data_point, AggregationTemporality, ExponentialHistogramDataPoint,
    HistogramDataPoint, NumberDataPoint, SummaryDataPoint,
};
use prost::Message as _;

use super::{select, Otlp, Tally};
use crate::server::metrics::{tags, validate_name, AppMetrics, Inner, Outcome, Protocol, Timing};
use crate::server::stats::{MAX_DURATION_MS, MAX_WEIGHT};

/// Cumulative streams remembered at once.
pub const MAX_STREAMS: usize = 8_192;
/// Numbers remembered over all cumulative streams (2 MiB of them).
pub const MAX_VALUES: usize = 1 << 18;
/// Buckets one histogram point may carry.
pub const MAX_BUCKETS: usize = 512;
/// A stream not seen for this long is forgotten (its next point is a new baseline).
const IDLE_MS: u64 = 2 * 3_600_000;
/// Largest relative error a bucket may add for its histogram to feed an operation: the
/// sketches' own error, so the operation's percentiles stay within about twice it.
pub const MAX_BUCKET_ERROR: f64 = 0.01;
/// Most samples one histogram point may feed into an operation (more stay counters).
pub const MAX_POINT_SAMPLES: f64 = 1e9;
/// `DataPointFlags.NO_RECORDED_VALUE`.
const NO_RECORDED_VALUE: u32 = 1;

/// The previous point of every cumulative stream (a metric of a resource and scope with one
/// attribute set), so that each new point contributes only its increase. Bounded by
/// [`MAX_STREAMS`] and [`MAX_VALUES`]; idle streams are forgotten.
pub struct Cumulative {
    streams: HashMap<u64, Stream>,
    values: usize,
    started_ms: u64,
    calls: u32,
}

struct Stream {
    start_ns: u64,
    /// The newest point's time: an older or repeated point (a retry, a queue delivering out
    /// of order) adds nothing.
    time_ns: u64,
    seen_ms: u64,
    /// Exponential histograms: (scale, offset) of the positive buckets in `values`.
    layout: (i32, i32),
    values: Vec<f64>,
}

/// What a cumulative point contributes.
#[derive(Debug, PartialEq)]
pub enum Increase {
    /// Nothing: the first point of a stream that began before Vitals did (or long ago, or
    /// whose layout changed), which is the baseline of the next; or a point no newer than the
    /// last one seen.
    Baseline,
    /// The increase of each value (the whole value after a reset or for a new stream).
    By(Vec<f64>),
}

impl Cumulative {
    pub fn new(started_ms: u64) -> Self {
        Cumulative { streams: HashMap::new(), values: 0, started_ms, calls: 0 }
    }

    /// Streams remembered.
    pub fn len(&self) -> usize {
        self.streams.len()
    }

    pub fn is_empty(&self) -> bool {
        self.streams.is_empty()
    }

    /// The increase of stream `key` to `current` at `time_ns`.
    ///
    /// - A point no newer than the last one seen adds nothing.
    /// - A new start time is a reset: the whole value counts. So is a value going down when the
    ///   sender gives no start time (Prometheus' rule).
    /// - With the same start time the difference counts (the caller clamps what cannot go down).
    /// - A changed layout with the same start time re-baselines: nothing is added twice.
    /// - A new stream counts whole only when it began after Vitals and recently (within the
    ///   idle horizon), so a stream forgotten while idle is not counted again.
    ///
    /// `Err` when the bounds leave no room.
    pub fn increase(
        &mut self,
        key: u64,
        (start_ns, time_ns): (u64, u64),
        layout: (i32, i32),
        current: &[f64],
        now_ms: u64,
    ) -> Result<Increase, &'static str> {
        self.calls = self.calls.wrapping_add(1);
        if self.calls.is_multiple_of(1024) {
            self.prune(now_ms);
        }
        if let Some(stream) = self.streams.get_mut(&key) {
            if time_ns != 0 && time_ns <= stream.time_ns && start_ns == stream.start_ns {
                return Ok(Increase::Baseline);
            }
            let grown = self.values - stream.values.len() + current.len();
            if grown > MAX_VALUES {
                return Err("cumulative_streams");
            }
            let same_shape = stream.layout == layout && stream.values.len() == current.len();
            let went_down = current.iter().zip(&stream.values).any(|(c, p)| c < p);
            let by = if start_ns != 0 && start_ns != stream.start_ns {
                Increase::By(current.to_vec())
            } else if !same_shape {
                Increase::Baseline
            } else if start_ns == 0 && went_down {
                Increase::By(current.to_vec())
            } else {
                Increase::By(current.iter().zip(&stream.values).map(|(c, p)| c - p).collect())
            };
            self.values = grown;
            stream.values.clear();
            stream.values.extend_from_slice(current);
            stream.start_ns = start_ns;
            stream.time_ns = time_ns;
            stream.layout = layout;
            stream.seen_ms = now_ms;
            return Ok(by);
        }
        if self.streams.len() >= MAX_STREAMS || self.values + current.len() > MAX_VALUES {
            self.prune(now_ms);
            if self.streams.len() >= MAX_STREAMS || self.values + current.len() > MAX_VALUES {
                return Err("cumulative_streams");
            }
        }
        self.values += current.len();
        let stream =
            Stream { start_ns, time_ns, seen_ms: now_ms, layout, values: current.to_vec() };
        self.streams.insert(key, stream);
        let start_ms = start_ns / 1_000_000;
        if start_ns != 0 && start_ms >= self.started_ms && now_ms.saturating_sub(start_ms) < IDLE_MS
        {
            Ok(Increase::By(current.to_vec()))
        } else {
            Ok(Increase::Baseline)
        }
    }

    /// Moves a remembered exponential histogram's positive buckets (from `fixed` on) to a
    /// coarser `scale` and `offset` with `len` buckets, as an SDK does when it downscales, so
    /// the next increase is computed bucket by bucket instead of as a reset.
    pub fn rescale(&mut self, key: u64, fixed: usize, scale: i32, offset: i32, len: usize) {
        let Some(stream) = self.streams.get_mut(&key) else { return };
        let (old_scale, old_offset) = stream.layout;
        if old_scale < scale
            || (old_scale, old_offset) == (scale, offset)
            || stream.values.len() < fixed
        {
            return;
        }
        let shift = (old_scale - scale).min(62) as u32;
        let mut moved = vec![0.0; len];
        if self.values - stream.values.len() + fixed + len > MAX_VALUES {
            return;
        }
        for (j, n) in stream.values[fixed..].iter().enumerate().filter(|(_, n)| **n > 0.0) {
            let index = (i64::from(old_offset) + j as i64) >> shift;
            match usize::try_from(index - i64::from(offset)).ok().filter(|p| *p < len) {
                Some(p) => moved[p] += n,
                None => return,
            }
        }
        self.values = self.values - stream.values.len() + fixed + len;
        stream.values.truncate(fixed);
        stream.values.extend(moved);
        stream.layout = (scale, offset);
    }

    fn prune(&mut self, now_ms: u64) {
        let before = self.streams.len();
        let mut freed = 0;
        self.streams.retain(|_, s| {
            let keep = now_ms.saturating_sub(s.seen_ms) < IDLE_MS;
            if !keep {
                freed += s.values.len();
            }
            keep
        });
        self.values -= freed;
        if before != self.streams.len() {
            tracing::debug!(
                forgotten = before - self.streams.len(),
                "Idle OTLP cumulative streams forgotten."
            );
        }
    }
}

/// Records every data point of `request`; says what became of each.
pub fn record(
    app: &AppMetrics,
    otlp: &Otlp,
    request: &ExportMetricsServiceRequest,
    now_ms: u64,
) -> Tally {
    let mut tally = Tally::default();
    let mut streams = otlp.cumulative.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut m = app.lock();
    m.count_received(Protocol::Otlp);
    let mut gauges = Vec::new();
    for (r, resource_metrics) in request.resource_metrics.iter().enumerate() {
        let resource = resource_metrics.resource.as_ref().map_or(&[][..], |r| &r.attributes[..]);
        let resource_tags = select(&otlp.config.attributes, resource);
        let resource_id = attributes_id(resource);
        for (s, scope_metrics) in resource_metrics.scope_metrics.iter().enumerate() {
            let scope = scope_metrics.scope.as_ref().map_or("", |s| s.name.as_str());
            for (i, metric) in scope_metrics.metrics.iter().enumerate() {
                let mut one = Metric {
                    m: &mut m,
                    streams: &mut streams,
                    tally: &mut tally,
                    keys: &otlp.config.attributes,
                    resource_tags: &resource_tags,
                    stream: HASHER.hash_one((resource_id, scope, metric.name.as_str())),
                    path: format!("resourceMetrics[{r}].scopeMetrics[{s}].metrics[{i}]"),
                    name: &metric.name,
                    unit: &metric.unit,
                    gauges: &mut gauges,
                    now_ms,
                };
                one.record(metric.data.as_ref());
            }
        }
    }
    set_gauges(&mut m, &mut tally, gauges, now_ms);
    m.count_ignored(Protocol::Otlp, tally.ignored);
    tally
}

/// A gauge point of the request: name, time, value, and where it was.
type GaugePoint = (String, u64, f64, String);

/// Sets each gauge of the request once: the sum of its values at the newest moment reported,
/// over every resource, scope and attribute set.
fn set_gauges(m: &mut Inner, tally: &mut Tally, mut points: Vec<GaugePoint>, now_ms: u64) {
    points.sort_by(|a, b| a.0.cmp(&b.0));
    for same in points.chunk_by(|a, b| a.0 == b.0) {
        let latest = same.iter().map(|g| g.1).max().unwrap_or(0);
        let total: f64 = same.iter().filter(|g| g.1 == latest).map(|g| g.2).sum();
        let outcome = m.gauge(Protocol::Otlp, &same[0].0, total, false, now_ms);
        for g in same {
            tally.outcome(outcome, || g.3.clone());
        }
    }
}

/// A fixed hasher: stream keys must be stable for the process's life.
const HASHER: foldhash::fast::FixedState = foldhash::fast::FixedState::with_seed(0x5eed);

/// Identifies an attribute set whatever its order.
fn attributes_id(attributes: &[KeyValue]) -> u64 {
    let mut parts: Vec<(&str, Vec<u8>)> = attributes
        .iter()
        .map(|kv| {
            (kv.key.as_str(), kv.value.as_ref().map(|v| v.encode_to_vec()).unwrap_or_default())
        })
        .collect();
    parts.sort();
    HASHER.hash_one(parts)
}

/// A data point's attributes and (start, time) in ns.
macro_rules! point_times {
    ($point:expr) => {
        (&$point.attributes[..], ($point.start_time_unix_nano, $point.time_unix_nano))
    };
}

/// One metric being recorded.
struct Metric<'a, 'r> {
    m: &'a mut Inner,
    streams: &'a mut Cumulative,
    tally: &'a mut Tally,
    keys: &'a [String],
    resource_tags: &'a [(&'r str, std::borrow::Cow<'r, str>)],
    stream: u64,
    path: String,
    name: &'a str,
    unit: &'a str,
    /// Gauge points, set once per name after the whole request (see [`set_gauges`]).
    gauges: &'a mut Vec<GaugePoint>,
    now_ms: u64,
}

/// How a sum's or gauge's points are applied.
#[derive(Clone, Copy, PartialEq)]
enum Numbers {
    /// The newest moment's values, summed, set the gauge.
    Gauge,
    /// Each point adjusts the gauge.
    GaugeDelta,
    /// Each point adds to the counter.
    CounterDelta,
    /// Each point's increase adds to the counter.
    CounterCumulative,
}

impl Metric<'_, '_> {
    fn at(&self, point: usize) -> String {
        format!("{}.dataPoints[{point}] ({})", self.path, self.name)
    }

    fn reject(&mut self, point: usize, reason: &'static str, why: &str) {
        let at = self.at(point);
        self.m.note_malformed(Protocol::Otlp, self.name, why, self.now_ms);
        self.tally.reject(reason, || at, why);
    }

    fn outcome(&mut self, point: usize, outcome: Outcome) {
        let at = self.at(point);
        self.tally.outcome(outcome, || at);
    }

    fn record(&mut self, data: Option<&Data>) {
        if let Err(why) = validate_name(self.name) {
            let why = format!("the metric name {why}");
            for p in 0..points_of(data).max(1) {
                self.reject(p, "invalid_name", &why);
            }
            return;
        }
        let temporality = |t: i32| match AggregationTemporality::try_from(t) {
            Ok(AggregationTemporality::Delta) => Some(false),
            Ok(AggregationTemporality::Cumulative) => Some(true),
            _ => None,
        };
        match data {
            None => self.reject(0, "no_data", "the metric has no data"),
            Some(Data::Gauge(g)) => self.numbers(&g.data_points, Numbers::Gauge),
            Some(Data::Sum(sum)) => {
                let mode = match (temporality(sum.aggregation_temporality), sum.is_monotonic) {
                    (None, _) => return self.unspecified(sum.data_points.len()),
                    (Some(true), true) => Numbers::CounterCumulative,
                    (Some(false), true) => Numbers::CounterDelta,
                    (Some(true), false) => Numbers::Gauge,
                    (Some(false), false) => Numbers::GaugeDelta,
                };
                self.numbers(&sum.data_points, mode);
            }
            Some(Data::Histogram(h)) => match temporality(h.aggregation_temporality) {
                None => self.unspecified(h.data_points.len()),
                Some(cumulative) => {
                    for (p, point) in h.data_points.iter().enumerate() {
                        self.histogram(p, point, cumulative);
                    }
                }
            },
            Some(Data::ExponentialHistogram(h)) => match temporality(h.aggregation_temporality) {
                None => self.unspecified(h.data_points.len()),
                Some(cumulative) => {
                    for (p, point) in h.data_points.iter().enumerate() {
                        self.exponential(p, point, cumulative);
                    }
                }
            },
            Some(Data::Summary(s)) => {
                for (p, point) in s.data_points.iter().enumerate() {
                    self.summary(p, point);
                }
            }
        }
    }

    fn unspecified(&mut self, points: usize) {
        for p in 0..points {
            self.reject(p, "unspecified_temporality", "the aggregation temporality is unspecified");
        }
    }

    /// The stream key of a point with `attributes`.
    fn stream_of(&self, attributes: &[KeyValue]) -> u64 {
        HASHER.hash_one((self.stream, attributes_id(attributes)))
    }

    fn numbers(&mut self, points: &[NumberDataPoint], mode: Numbers) {
        for (p, point) in points.iter().enumerate() {
            if point.flags & NO_RECORDED_VALUE != 0 {
                self.tally.ignored += 1;
                continue;
            }
            let value = match point.value {
                Some(number_data_point::Value::AsDouble(d)) => d,
                Some(number_data_point::Value::AsInt(i)) => i as f64,
                None => {
                    self.reject(p, "no_value", "the data point has no value");
                    continue;
                }
            };
            if !value.is_finite() {
                self.reject(p, "non_finite", "the value is not a finite number");
                continue;
            }
            match mode {
                Numbers::Gauge => {
                    let at = self.at(p);
                    self.gauges.push((self.name.to_string(), point.time_unix_nano, value, at));
                }
                Numbers::GaugeDelta => {
                    let outcome = self.m.gauge(Protocol::Otlp, self.name, value, true, self.now_ms);
                    self.outcome(p, outcome);
                }
                Numbers::CounterDelta | Numbers::CounterCumulative if value < 0.0 => {
                    self.reject(p, "negative_increment", "a monotonic sum went below zero");
                }
                Numbers::CounterDelta => {
                    let outcome = self.m.counter(Protocol::Otlp, self.name, value, self.now_ms);
                    self.outcome(p, outcome);
                }
                Numbers::CounterCumulative => {
                    let times = (point.start_time_unix_nano, point.time_unix_nano);
                    let by = self.increase_of(p, &point.attributes, times, (0, 0), vec![value]);
                    if let Some(by) = by {
                        // A monotonic sum does not go down without a new start time.
                        let n = by.first().copied().unwrap_or(0.0).max(0.0);
                        let outcome = self.m.counter(Protocol::Otlp, self.name, n, self.now_ms);
                        self.outcome(p, outcome);
                    }
                }
            }
        }
    }

    /// Adds a point's count and sum to `<name>.count` and `<name>.sum`.
    fn count_and_sum(&mut self, count: f64, sum: Option<f64>) -> Outcome {
        let mut worst = Outcome::Accepted;
        let parts = [(".count", Some(count)), (".sum", sum)];
        for (suffix, value) in parts {
            let Some(value) = value.filter(|v| *v != 0.0 || suffix == ".count") else { continue };
            let name = format!("{}{suffix}", self.name);
            let outcome = self.m.counter(Protocol::Otlp, &name, value, self.now_ms);
            if outcome != Outcome::Accepted {
                worst = outcome;
            }
        }
        worst
    }

    /// What a histogram or summary point contributes: itself when delta, else its increase;
    /// counts never below zero (the sum may be, with negative values recorded).
    fn point_increase(
        &mut self,
        p: usize,
        (attributes, times): (&[KeyValue], (u64, u64)),
        layout: (i32, i32),
        values: Vec<f64>,
        cumulative: bool,
    ) -> Option<Vec<f64>> {
        let mut by = if cumulative {
            self.increase_of(p, attributes, times, layout, values)?
        } else {
            values
        };
        for (i, n) in by.iter_mut().enumerate() {
            if i != 1 {
                *n = n.max(0.0);
            }
        }
        Some(by)
    }

    /// The increase a cumulative point contributes, through the stream state. `None` when
    /// nothing is to be added (a baseline, an old point; counted as accepted) or the point was
    /// rejected.
    fn increase_of(
        &mut self,
        p: usize,
        attributes: &[KeyValue],
        times: (u64, u64),
        layout: (i32, i32),
        values: Vec<f64>,
    ) -> Option<Vec<f64>> {
        let key = self.stream_of(attributes);
        match self.streams.increase(key, times, layout, &values, self.now_ms) {
            Err(reason) => {
                self.reject(p, reason, "too many cumulative streams");
                None
            }
            Ok(Increase::Baseline) => {
                self.outcome(p, Outcome::Accepted);
                None
            }
            Ok(Increase::By(by)) => Some(by),
        }
    }

    fn histogram(&mut self, p: usize, point: &HistogramDataPoint, cumulative: bool) {
        if point.flags & NO_RECORDED_VALUE != 0 {
            self.tally.ignored += 1;
            return;
        }
        let (bounds, counts) = (&point.explicit_bounds, &point.bucket_counts);
        if counts.len() > MAX_BUCKETS {
            return self.reject(p, "too_many_buckets", "the point has more than 512 buckets");
        }
        if !counts.is_empty() && counts.len() != bounds.len() + 1 {
            return self.reject(
                p,
                "invalid_buckets",
                "bucket_counts must be one longer than explicit_bounds",
            );
        }
        if bounds.iter().any(|b| !b.is_finite()) || bounds.windows(2).any(|w| w[0] >= w[1]) {
            return self.reject(
                p,
                "invalid_buckets",
                "explicit_bounds must be finite and increasing",
            );
        }
        if [point.sum, point.min, point.max].iter().flatten().any(|v| !v.is_finite()) {
            return self.reject(p, "non_finite", "sum, min or max is not a finite number");
        }
        let mut values = vec![point.count as f64, point.sum.unwrap_or(0.0)];
        values.extend(counts.iter().map(|&n| n as f64));
        let Some(by) = self.point_increase(p, point_times!(point), (0, 0), values, cumulative)
        else {
            return;
        };
        let counted = self.count_and_sum(by[0], point.sum.map(|_| by[1]));
        let samples = || explicit_samples(bounds, &by[2..], point.min, point.max);
        self.finish(p, (&point.attributes, point.time_unix_nano), counted, samples);
    }

    fn exponential(&mut self, p: usize, point: &ExponentialHistogramDataPoint, cumulative: bool) {
        if point.flags & NO_RECORDED_VALUE != 0 {
            self.tally.ignored += 1;
            return;
        }
        let positive = point.positive.as_ref();
        let buckets = positive.map_or(&[][..], |b| &b.bucket_counts[..]);
        let negative = point.negative.as_ref().map_or(&[][..], |b| &b.bucket_counts[..]);
        if buckets.len() + negative.len() > MAX_BUCKETS {
            return self.reject(p, "too_many_buckets", "the point has more than 512 buckets");
        }
        if !(-10..=20).contains(&point.scale) {
            return self.reject(p, "invalid_buckets", "the scale must be between -10 and 20");
        }
        if [point.sum, point.min, point.max].iter().flatten().any(|v| !v.is_finite()) {
            return self.reject(p, "non_finite", "sum, min or max is not a finite number");
        }
        let offset = positive.map_or(0, |b| b.offset);
        let mut values =
            vec![point.count as f64, point.sum.unwrap_or(0.0), point.zero_count as f64];
        values.extend(buckets.iter().map(|&n| n as f64));
        if cumulative {
            let key = self.stream_of(&point.attributes);
            self.streams.rescale(key, 3, point.scale, offset, buckets.len());
        }
        let layout = (point.scale, offset);
        let Some(by) = self.point_increase(p, point_times!(point), layout, values, cumulative)
        else {
            return;
        };
        let counted = self.count_and_sum(by[0], point.sum.map(|_| by[1]));
        // Values in the zero bucket lie anywhere up to the threshold: only an exact zero
        // bucket keeps the error bound.
        let pinned = negative.iter().all(|&n| n == 0)
            && (point.zero_threshold == 0.0 || point.zero_count == 0);
        let samples = || {
            let (min, max) = (point.min, point.max);
            pinned.then(|| exponential_samples(point.scale, offset, by[2], &by[3..], min, max))?
        };
        self.finish(p, (&point.attributes, point.time_unix_nano), counted, samples);
    }

    /// A histogram point's outcome: its counters' (`counted`), and, when its unit is a
    /// duration and `samples` (in that unit) pins its values within the bound, the
    /// operation's too.
    fn finish(
        &mut self,
        p: usize,
        (attributes, time_ns): (&[KeyValue], u64),
        counted: Outcome,
        samples: impl FnOnce() -> Option<Vec<(f64, f64)>>,
    ) {
        let mut outcome = counted;
        if let Some(samples) = self.duration_factor().and_then(|factor| {
            Some(samples()?.into_iter().map(|(v, n)| (v * factor, n)).collect::<Vec<_>>())
        }) {
            let merged = self.samples(attributes, time_ns, &samples);
            if merged != Outcome::Accepted {
                outcome = merged;
            }
        }
        self.outcome(p, outcome);
    }

    fn summary(&mut self, p: usize, point: &SummaryDataPoint) {
        if point.flags & NO_RECORDED_VALUE != 0 {
            self.tally.ignored += 1;
            return;
        }
        if !point.sum.is_finite() {
            return self.reject(p, "non_finite", "the sum is not a finite number");
        }
        let values = vec![point.count as f64, point.sum];
        // Summaries are cumulative by definition.
        let Some(by) = self.point_increase(p, point_times!(point), (0, 0), values, true) else {
            return;
        };
        let outcome = self.count_and_sum(by[0], Some(by[1]));
        self.outcome(p, outcome);
    }

    /// Milliseconds per unit when the metric's unit is a duration.
    fn duration_factor(&self) -> Option<f64> {
        match self.unit {
            "s" => Some(1e3),
            "ms" => Some(1.0),
            "us" | "µs" | "μs" => Some(1e-3),
            "ns" => Some(1e-6),
            "min" => Some(6e4),
            "h" => Some(3.6e6),
            _ => None,
        }
    }

    /// Records weighted samples (ms, count) into the operation named after the metric.
    fn samples(
        &mut self,
        attributes: &[KeyValue],
        time_ns: u64,
        samples: &[(f64, f64)],
    ) -> Outcome {
        let point_tags = select(self.keys, attributes);
        let pairs =
            point_tags.iter().chain(self.resource_tags.iter()).map(|(k, v)| (*k, v.as_ref()));
        let (mut key, mut scratch) = (String::new(), Vec::new());
        tags::series_key(&mut key, &mut scratch, self.name, pairs);
        let at_ms = if time_ns == 0 { self.now_ms } else { time_ns / 1_000_000 };
        // Each bucket is recorded in weights of at most MAX_WEIGHT: a point that claims more
        // samples than MAX_POINT_SAMPLES stays counters, so one point costs a bounded time.
        if samples.iter().map(|(_, n)| n).sum::<f64>() > MAX_POINT_SAMPLES {
            return Outcome::Accepted;
        }
        let mut worst = Outcome::Accepted;
        for &(ms, count) in samples {
            if !(0.0..=MAX_DURATION_MS).contains(&ms) {
                worst = Outcome::Malformed;
                continue;
            }
            let mut left = count;
            while left > 0.0 {
                let weight = left.min(MAX_WEIGHT);
                left -= weight;
                let t = Timing::operation(&key, ms, at_ms).weighted(weight);
                let outcome = self.m.timing(Protocol::Otlp, t, self.now_ms);
                if outcome != Outcome::Accepted {
                    worst = outcome;
                    break;
                }
            }
        }
        worst
    }
}

/// The data points a metric carries.
fn points_of(data: Option<&Data>) -> usize {
    match data {
        None => 0,
        Some(Data::Gauge(g)) => g.data_points.len(),
        Some(Data::Sum(s)) => s.data_points.len(),
        Some(Data::Histogram(h)) => h.data_points.len(),
        Some(Data::ExponentialHistogram(h)) => h.data_points.len(),
        Some(Data::Summary(s)) => s.data_points.len(),
    }
}

/// A value pinned within [`MAX_BUCKET_ERROR`] for the range [lo, hi], if there is one.
fn middle(lo: f64, hi: f64) -> Option<f64> {
    if !(lo >= 0.0 && hi >= lo) {
        return None;
    }
    if hi == lo {
        return Some(lo);
    }
    (lo > 0.0 && (hi / lo).sqrt() - 1.0 <= MAX_BUCKET_ERROR).then(|| (lo * hi).sqrt())
}

/// An explicit-bounds histogram's populated buckets as (value, count), when every one of them
/// pins its values within the error bound (the outer buckets need `min` or `max`).
pub fn explicit_samples(
    bounds: &[f64],
    counts: &[f64],
    min: Option<f64>,
    max: Option<f64>,
) -> Option<Vec<(f64, f64)>> {
    let mut samples = Vec::new();
    for (i, &n) in counts.iter().enumerate().filter(|(_, n)| **n > 0.0) {
        let lo = match i.checked_sub(1).and_then(|j| bounds.get(j)) {
            Some(&b) => min.map_or(b, |m| b.max(m)),
            None => min?,
        };
        let hi = match bounds.get(i) {
            Some(&b) => max.map_or(b, |m| b.min(m)),
            None => max?,
        };
        samples.push((middle(lo, hi)?, n));
    }
    Some(samples)
}

/// An exponential histogram's zero and positive buckets as (value, count), when its scale pins
/// values within the error bound (scale 6 or finer: base 2^(1/64), ±0.54 %).
pub fn exponential_samples(
    scale: i32,
    offset: i32,
    zero_count: f64,
    counts: &[f64],
    min: Option<f64>,
    max: Option<f64>,
) -> Option<Vec<(f64, f64)>> {
    let step = (-f64::from(scale)).exp2();
    if (step / 2.0).exp2() - 1.0 > MAX_BUCKET_ERROR {
        return None;
    }
    let mut samples = Vec::new();
    if zero_count > 0.0 {
        samples.push((0.0, zero_count));
    }
    for (k, &n) in counts.iter().enumerate().filter(|(_, n)| **n > 0.0) {
        let index = f64::from(offset) + k as f64;
        let mut value = ((index + 0.5) * step).exp2();
        if let Some(min) = min.filter(|m| *m > 0.0) {
            value = value.max(min);
        }
        if let Some(max) = max {
            value = value.min(max);
        }
        samples.push((value, n));
    }
    Some(samples)
}
