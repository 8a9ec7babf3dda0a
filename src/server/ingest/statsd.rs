//! StatsD / DogStatsD line protocol: a pure, allocation-free parser that hands every sample of a
//! datagram (or the reason a line was rejected) to a caller-supplied [`StatsdSink`].
//!
//! Accepted per line (lines split on `\n`, surrounding ASCII whitespace and `\r` trimmed, empty
//! lines ignored):
//!
//! ```text
//! name:value[:value...]|type[|@rate][|#key:value,tag][|c:container][|T<unix secs>][|e:..]
//! ```
//!
//! * `c` counter (delta scaled by `1/rate`), `ms` / `h` / `d` timer in milliseconds (weight
//!   `1/rate`), `g` gauge (a leading `+` or `-` makes the value a delta, else it is set), `s` set
//!   (the whole text after the first `:` is one member; sets take no multi-value form).
//! * Optional fields may come in any order; `c:`, `T`, `e:` and `card:` fields are skipped.
//! * A timer is failed when tagged `success:false` or `status:error` (values case-insensitive).
//! * A line with several values is checked whole before anything is emitted: one bad value
//!   rejects the line.

use std::fmt;

pub use crate::server::metrics::MAX_NAME_CHARS;

/// How many lines of one datagram were accepted and how many were rejected.
///
/// Empty lines count as neither. A multi-value line counts once.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DatagramCounts {
    /// Lines whose samples reached the sink.
    pub good_lines: usize,
    /// Lines reported through [`StatsdSink::malformed`].
    pub malformed_lines: usize,
}

/// The DogStatsD tags of one line (`k:v,k2`), parsed lazily; borrowed from the datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Tags<'a> {
    raw: &'a str,
}

impl<'a> Tags<'a> {
    /// Wraps the text of a tags field without its leading `#`.
    #[must_use]
    pub const fn new(raw: &'a str) -> Self {
        Tags { raw }
    }

    /// The tags as they came on the wire (without the `#`), e.g. for hashing a series key.
    #[must_use]
    pub const fn as_str(&self) -> &'a str {
        self.raw
    }

    /// True when there is no non-empty tag.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }

    /// Iterates `(key, value)` pairs in wire order; `value` is `None` for a bare tag such as
    /// `canary`. Empty tags (`a,,b`) are skipped; the split is on the first `:`.
    #[must_use]
    pub fn iter(&self) -> TagIter<'a> {
        TagIter { rest: self.raw }
    }
}

impl<'a> IntoIterator for &Tags<'a> {
    type Item = (&'a str, Option<&'a str>);
    type IntoIter = TagIter<'a>;

    fn into_iter(self) -> TagIter<'a> {
        self.iter()
    }
}

/// Iterator over the `(key, value)` pairs of [`Tags`].
#[derive(Debug, Clone)]
pub struct TagIter<'a> {
    rest: &'a str,
}

impl<'a> Iterator for TagIter<'a> {
    type Item = (&'a str, Option<&'a str>);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.rest.is_empty() {
                return None;
            }
            let bytes = self.rest.as_bytes();
            let comma = find_byte(bytes, 0, b',');
            let tag = &self.rest[..comma];
            self.rest = if comma == bytes.len() { "" } else { &self.rest[comma + 1..] };
            if tag.is_empty() {
                continue;
            }
            let colon = find_byte(tag.as_bytes(), 0, b':');
            return Some(if colon == tag.len() {
                (tag, None)
            } else {
                (&tag[..colon], Some(&tag[colon + 1..]))
            });
        }
    }
}

/// Receives what [`parse_datagram`] finds, one call per sample, in datagram order.
///
/// Every `&str` borrows from the datagram: copy what must outlive the call.
pub trait StatsdSink {
    /// One timing sample (`ms`, `h` or `d`): `value_ms >= 0`, `weight = 1/rate >= 1`.
    fn timer(&mut self, name: &str, value_ms: f64, weight: f64, success: bool, tags: &Tags<'_>);
    /// One counter increment, already scaled by `1/rate` (may be negative).
    fn counter(&mut self, name: &str, delta: f64, tags: &Tags<'_>);
    /// One gauge update: add `value` when `is_delta`, else set the gauge to `value`.
    fn gauge(&mut self, name: &str, value: f64, is_delta: bool, tags: &Tags<'_>);
    /// One set member to count as a unique value (non-empty, arbitrary text).
    fn set(&mut self, name: &str, member: &str, tags: &Tags<'_>);
    /// A rejected line (trimmed) and why; nothing else was emitted for it.
    fn malformed(&mut self, line: &[u8], error: LineError<'_>);
}

/// Why a line was rejected. Borrowed parts point into the datagram; [`fmt::Display`] quotes at
/// most 32 characters of them, escaped, so the message is safe to log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineError<'a> {
    /// The line is not valid UTF-8.
    InvalidUtf8,
    /// Nothing before the `:`.
    EmptyName,
    /// More than [`MAX_NAME_CHARS`] characters.
    NameTooLong,
    /// The name holds whitespace, a control character, `@` or `#`.
    InvalidName,
    /// No `:` before the first `|`, or nothing after it.
    MissingValue,
    /// No `|type` field.
    MissingType,
    /// A type other than `c`, `ms`, `h`, `d`, `g`, `s`.
    UnknownType(&'a str),
    /// A value that is not a finite number.
    InvalidValue(&'a str),
    /// A timer value below zero.
    NegativeTimer(&'a str),
    /// A `@rate` field outside `0 < rate <= 1` (the text includes the `@`).
    InvalidSampleRate(&'a str),
    /// Two `@rate` fields.
    DuplicateSampleRate,
    /// Two `#tags` fields.
    DuplicateTags,
    /// An empty field between two `|`, or a trailing `|`.
    EmptyField,
    /// A field that is none of `@`, `#`, `c:`, `T`, `e:`, `card:`.
    UnknownField(&'a str),
}

impl LineError<'_> {
    /// A stable snake_case label, e.g. for a `reason` field or a per-reason counter.
    #[must_use]
    pub const fn code(&self) -> &'static str {
        match self {
            LineError::InvalidUtf8 => "invalid_utf8",
            LineError::EmptyName => "empty_name",
            LineError::NameTooLong => "name_too_long",
            LineError::InvalidName => "invalid_name",
            LineError::MissingValue => "missing_value",
            LineError::MissingType => "missing_type",
            LineError::UnknownType(_) => "unknown_type",
            LineError::InvalidValue(_) => "invalid_value",
            LineError::NegativeTimer(_) => "negative_timer",
            LineError::InvalidSampleRate(_) => "invalid_sample_rate",
            LineError::DuplicateSampleRate => "duplicate_sample_rate",
            LineError::DuplicateTags => "duplicate_tags",
            LineError::EmptyField => "empty_field",
            LineError::UnknownField(_) => "unknown_field",
        }
    }
}

/// Writes up to 32 characters of wire text, escaped for logs.
struct Snippet<'a>(&'a str);

impl fmt::Display for Snippet<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const MAX_CHARS: usize = 32;
        for (i, c) in self.0.chars().enumerate() {
            if i == MAX_CHARS {
                return f.write_str("...");
            }
            fmt::Display::fmt(&c.escape_debug(), f)?;
        }
        Ok(())
    }
}

impl fmt::Display for LineError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            LineError::InvalidUtf8 => f.write_str("invalid UTF-8"),
            LineError::EmptyName => f.write_str("empty name"),
            LineError::NameTooLong => {
                write!(f, "name longer than {MAX_NAME_CHARS} characters")
            }
            LineError::InvalidName => f.write_str("invalid character in name"),
            LineError::MissingValue => f.write_str("missing value"),
            LineError::MissingType => f.write_str("missing type"),
            LineError::UnknownType(t) => write!(f, "unknown type '{}'", Snippet(t)),
            LineError::InvalidValue(v) => write!(f, "invalid value '{}'", Snippet(v)),
            LineError::NegativeTimer(v) => write!(f, "negative timer value '{}'", Snippet(v)),
            LineError::InvalidSampleRate(r) => {
                write!(f, "invalid sample rate '{}'", Snippet(r))
            }
            LineError::DuplicateSampleRate => f.write_str("duplicate sample rate"),
            LineError::DuplicateTags => f.write_str("duplicate tags"),
            LineError::EmptyField => f.write_str("empty field"),
            LineError::UnknownField(x) => write!(f, "unknown field '{}'", Snippet(x)),
        }
    }
}

impl std::error::Error for LineError<'_> {}

/// Parses every line of one datagram, calling `sink` for each sample or rejected line.
///
/// Never allocates and never panics, whatever the bytes: invalid UTF-8, bad values and
/// unknown fields make that line malformed and parsing goes on with the next line.
pub fn parse_datagram<S: StatsdSink + ?Sized>(datagram: &[u8], sink: &mut S) -> DatagramCounts {
    let mut counts = DatagramCounts::default();
    // A datagram valid as a whole (the usual case) has valid lines: one check serves them all.
    let whole = std::str::from_utf8(datagram).ok();
    let mut line_start = 0;
    while line_start <= datagram.len() {
        let line_end = find_byte(datagram, line_start, b'\n');
        let raw_line = &datagram[line_start..line_end];
        let lead = raw_line.len() - raw_line.trim_ascii_start().len();
        let line = raw_line.trim_ascii();
        let from = line_start + lead;
        line_start = line_end + 1;
        if line.is_empty() {
            continue;
        }
        // Lines start and end at ASCII bytes, so they slice the valid text at char boundaries.
        let text = whole.and_then(|w| w.get(from..from + line.len()));
        let parsed = match text.map_or_else(|| std::str::from_utf8(line), Ok) {
            Ok(text) => parse_line(text),
            Err(_) => Err(LineError::InvalidUtf8),
        };
        match parsed {
            Ok(metric) => {
                metric.emit(sink);
                counts.good_lines += 1;
            }
            Err(error) => {
                sink.malformed(line, error);
                counts.malformed_lines += 1;
            }
        }
    }
    counts
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Counter,
    Timer,
    Gauge,
    Set,
}

/// One validated line. Values after the first stay as text (already checked) so that a
/// multi-value line needs no buffer; they are parsed again while emitting.
struct Metric<'a> {
    name: &'a str,
    kind: Kind,
    /// The first value as on the wire, or the whole set member.
    first_raw: &'a str,
    /// The first value as emitted (counters already scaled; unused for sets).
    first_value: f64,
    /// The values after the first (`2:3` of `1:2:3`), if any.
    more_values: Option<&'a str>,
    /// `1/rate`, at least 1.
    weight: f64,
    tags: Tags<'a>,
}

/// Inlined into the datagram loop, so that the line's fields stay in registers instead of
/// coming back through a large result in memory.
#[inline(always)]
fn parse_line(line: &str) -> Result<Metric<'_>, LineError<'_>> {
    let bytes = line.as_bytes();
    let len = bytes.len();

    // The name runs to the first `:` or `|`; classify its bytes on the way.
    let mut name_end = 0;
    let mut name_flags = 0u8;
    while name_end < len {
        let class = NAME_CLASS[usize::from(bytes[name_end])];
        if class == NAME_END {
            break;
        }
        name_flags |= class;
        name_end += 1;
    }
    if name_end == len {
        return Err(LineError::MissingType);
    }
    if bytes[name_end] == b'|' {
        return Err(LineError::MissingValue);
    }
    let values_start = name_end + 1;
    let type_bar = find_byte(bytes, values_start, b'|');
    if type_bar == len {
        return Err(LineError::MissingType);
    }
    let name = &line[..name_end];
    check_name(name, name_flags)?;
    let raw_values = &line[values_start..type_bar];

    let type_start = type_bar + 1;
    let type_end = find_byte(bytes, type_start, b'|');
    let kind = match &bytes[type_start..type_end] {
        b"ms" | b"h" | b"d" => Kind::Timer,
        b"c" => Kind::Counter,
        b"g" => Kind::Gauge,
        b"s" => Kind::Set,
        b"" => return Err(LineError::MissingType),
        _ => return Err(LineError::UnknownType(&line[type_start..type_end])),
    };

    let mut rate: Option<f64> = None;
    let mut tags: Option<&str> = None;
    let mut field_bar = type_end;
    while field_bar < len {
        let start = field_bar + 1;
        let end = find_byte(bytes, start, b'|');
        match &bytes[start..end] {
            [] => return Err(LineError::EmptyField),
            [b'@', ..] => {
                if rate.is_some() {
                    return Err(LineError::DuplicateSampleRate);
                }
                rate = Some(parse_rate(&line[start..end])?);
            }
            [b'#', ..] => {
                if tags.is_some() {
                    return Err(LineError::DuplicateTags);
                }
                tags = Some(&line[start + 1..end]);
            }
            // DogStatsD timestamp, container id, external data, cardinality: not used here.
            [b'T', ..] | [b'c' | b'e', b':', ..] | [b'c', b'a', b'r', b'd', b':', ..] => {}
            _ => return Err(LineError::UnknownField(&line[start..end])),
        }
        field_bar = end;
    }

    if raw_values.is_empty() {
        return Err(LineError::MissingValue);
    }
    let weight = rate.map_or(1.0, |r| 1.0 / r);
    let mut metric = Metric {
        name,
        kind,
        first_raw: raw_values,
        first_value: 0.0,
        more_values: None,
        weight,
        tags: Tags::new(tags.unwrap_or("")),
    };
    if kind != Kind::Set {
        let first_end = find_byte(raw_values.as_bytes(), 0, b':');
        metric.first_raw = &raw_values[..first_end];
        metric.first_value = parse_value(metric.first_raw, kind, weight)?;
        if first_end < raw_values.len() {
            let more = &raw_values[first_end + 1..];
            for raw in Values::new(more) {
                parse_value(raw, kind, weight)?;
            }
            metric.more_values = Some(more);
        }
    }
    Ok(metric)
}

impl Metric<'_> {
    fn emit<S: StatsdSink + ?Sized>(&self, sink: &mut S) {
        let tags = &self.tags;
        match self.kind {
            Kind::Set => sink.set(self.name, self.first_raw, tags),
            Kind::Counter => {
                self.for_each_value(|_, delta| sink.counter(self.name, delta, tags));
            }
            Kind::Timer => {
                let success = timer_succeeded(tags.as_str());
                self.for_each_value(|_, v| sink.timer(self.name, v, self.weight, success, tags));
            }
            Kind::Gauge => self.for_each_value(|raw, v| {
                let is_delta = matches!(raw.as_bytes().first(), Some(b'+' | b'-'));
                sink.gauge(self.name, v, is_delta, tags);
            }),
        }
    }

    /// Calls `f(text, value)` for each value; [`parse_line`] already validated them all, so the
    /// first is reused and only the rest of a multi-value line are parsed again.
    fn for_each_value(&self, mut f: impl FnMut(&str, f64)) {
        f(self.first_raw, self.first_value);
        if let Some(more) = self.more_values {
            for raw in Values::new(more) {
                if let Ok(v) = parse_value(raw, self.kind, self.weight) {
                    f(raw, v);
                }
            }
        }
    }
}

/// Splits `1:2:3` on `:`; yields one empty item for an empty input.
struct Values<'a> {
    rest: Option<&'a str>,
}

impl<'a> Values<'a> {
    fn new(raw: &'a str) -> Self {
        Values { rest: Some(raw) }
    }
}

impl<'a> Iterator for Values<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let rest = self.rest?;
        let colon = find_byte(rest.as_bytes(), 0, b':');
        if colon == rest.len() {
            self.rest = None;
            Some(rest)
        } else {
            self.rest = Some(&rest[colon + 1..]);
            Some(&rest[..colon])
        }
    }
}

/// Index of the first `needle` at or after `from`, or `bytes.len()` (also when `from` is past
/// the end). Scans eight bytes per step in a `u64` ("SWAR"), then byte by byte.
#[inline]
fn find_byte(bytes: &[u8], from: usize, needle: u8) -> usize {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    let pattern = ONES * u64::from(needle);
    let mut i = from;
    while let Some(chunk) = bytes.get(i..i + 8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let x = u64::from_le_bytes(word) ^ pattern;
        // High bit set in each zero byte of `x` (and maybe above the first: borrows only move
        // up), so the lowest one marks the first match.
        let zeros = x.wrapping_sub(ONES) & !x & HIGHS;
        if zeros != 0 {
            return i + (zeros.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < bytes.len() && bytes[i] != needle {
        i += 1;
    }
    i.min(bytes.len())
}

/// Name byte classes, or-ed together while scanning a name.
const NAME_BAD: u8 = 1;
const NAME_NON_ASCII: u8 = 2;
const NAME_END: u8 = 4;

/// Printable ASCII other than `@ # : |` is fine; `:` and `|` end the name; bytes >= 0x80 need a
/// per-character check.
static NAME_CLASS: [u8; 256] = {
    let mut table = [NAME_BAD; 256];
    let mut b = 0x21;
    while b <= 0x7e {
        table[b] = 0;
        b += 1;
    }
    b = 0x80; // 0x7f (DEL) stays bad.
    while b < 256 {
        table[b] = NAME_NON_ASCII;
        b += 1;
    }
    table[b'@' as usize] = NAME_BAD;
    table[b'#' as usize] = NAME_BAD;
    table[b':' as usize] = NAME_END;
    table[b'|' as usize] = NAME_END;
    table
};

/// Checks 1..=200 characters, none of them whitespace, control, `@`, `#`; `flags` are the
/// or-ed [`NAME_CLASS`] of its bytes.
fn check_name(name: &str, flags: u8) -> Result<(), LineError<'_>> {
    if name.is_empty() {
        return Err(LineError::EmptyName);
    }
    if flags & NAME_NON_ASCII == 0 {
        if name.len() > MAX_NAME_CHARS {
            return Err(LineError::NameTooLong);
        }
        return if flags & NAME_BAD == 0 { Ok(()) } else { Err(LineError::InvalidName) };
    }
    let mut chars = 0usize;
    for c in name.chars() {
        if c.is_control() || c.is_whitespace() || c == '@' || c == '#' {
            return Err(LineError::InvalidName);
        }
        chars += 1;
    }
    if chars > MAX_NAME_CHARS {
        return Err(LineError::NameTooLong);
    }
    Ok(())
}

/// Parses one value as it will be emitted: a finite number, `>= 0` for timers, and for
/// counters multiplied by `weight` (still finite).
fn parse_value(raw: &str, kind: Kind, weight: f64) -> Result<f64, LineError<'_>> {
    let value = parse_finite(raw.as_bytes()).ok_or(LineError::InvalidValue(raw))?;
    match kind {
        Kind::Timer if value < 0.0 => Err(LineError::NegativeTimer(raw)),
        // `-0` passes the check above; report it as plain 0.
        Kind::Timer => Ok(value.abs()),
        Kind::Counter => {
            let delta = value * weight;
            delta.is_finite().then_some(delta).ok_or(LineError::InvalidValue(raw))
        }
        _ => Ok(value),
    }
}

/// Parses an `@rate` field into `0 < rate <= 1` (with a finite `1/rate`).
fn parse_rate(field: &str) -> Result<f64, LineError<'_>> {
    match parse_finite(&field.as_bytes()[1..]) {
        Some(rate) if rate > 0.0 && rate <= 1.0 && (1.0 / rate).is_finite() => Ok(rate),
        _ => Err(LineError::InvalidSampleRate(field)),
    }
}

/// A finite decimal number (`12`, `-0.5`, `+3`, `1e3`); `None` for anything else, including
/// `nan`, `inf` and values that overflow.
fn parse_finite(raw: &[u8]) -> Option<f64> {
    match fast_float2::parse::<f64, _>(raw) {
        Ok(v) if v.is_finite() => Some(v),
        _ => None,
    }
}

/// A timer failed when tagged `success:false` or `status:error` (values case-insensitive).
fn timer_succeeded(tags: &str) -> bool {
    const SHORTEST_FAILURE: usize = "status:error".len();
    let bytes = tags.as_bytes();
    let mut start = 0;
    while bytes.len() - start >= SHORTEST_FAILURE {
        let end = find_byte(bytes, start, b',');
        let failed = match &bytes[start..end] {
            [b's', b'u', b'c', b'c', b'e', b's', b's', b':', value @ ..] => {
                value.eq_ignore_ascii_case(b"false")
            }
            [b's', b't', b'a', b't', b'u', b's', b':', value @ ..] => {
                value.eq_ignore_ascii_case(b"error")
            }
            _ => false,
        };
        if failed {
            return false;
        }
        if end == bytes.len() {
            break;
        }
        start = end + 1;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, PartialEq)]
    enum Event {
        Timer { name: String, value_ms: f64, weight: f64, success: bool, tags: String },
        Counter { name: String, delta: f64, tags: String },
        Gauge { name: String, value: f64, is_delta: bool, tags: String },
        Set { name: String, member: String, tags: String },
        Malformed { line: Vec<u8>, code: &'static str, message: String },
    }

    #[derive(Default)]
    struct Recorder {
        events: Vec<Event>,
    }

    impl StatsdSink for Recorder {
        fn timer(
            &mut self,
            name: &str,
            value_ms: f64,
            weight: f64,
            success: bool,
            tags: &Tags<'_>,
        ) {
            self.events.push(Event::Timer {
                name: name.into(),
                value_ms,
                weight,
                success,
                tags: tags.as_str().into(),
            });
        }
        fn counter(&mut self, name: &str, delta: f64, tags: &Tags<'_>) {
            self.events.push(Event::Counter {
                name: name.into(),
                delta,
                tags: tags.as_str().into(),
            });
        }
        fn gauge(&mut self, name: &str, value: f64, is_delta: bool, tags: &Tags<'_>) {
            self.events.push(Event::Gauge {
                name: name.into(),
                value,
                is_delta,
                tags: tags.as_str().into(),
            });
        }
        fn set(&mut self, name: &str, member: &str, tags: &Tags<'_>) {
            self.events.push(Event::Set {
                name: name.into(),
                member: member.into(),
                tags: tags.as_str().into(),
            });
        }
        fn malformed(&mut self, line: &[u8], error: LineError<'_>) {
            self.events.push(Event::Malformed {
                line: line.to_vec(),
                code: error.code(),
                message: error.to_string(),
            });
        }
    }

    fn parse(input: &[u8]) -> (DatagramCounts, Vec<Event>) {
        let mut sink = Recorder::default();
        let counts = parse_datagram(input, &mut sink);
        (counts, sink.events)
    }

    fn timer(name: &str, value_ms: f64, weight: f64, success: bool, tags: &str) -> Event {
        Event::Timer { name: name.into(), value_ms, weight, success, tags: tags.into() }
    }
    fn counter(name: &str, delta: f64, tags: &str) -> Event {
        Event::Counter { name: name.into(), delta, tags: tags.into() }
    }
    fn gauge(name: &str, value: f64, is_delta: bool, tags: &str) -> Event {
        Event::Gauge { name: name.into(), value, is_delta, tags: tags.into() }
    }
    fn set(name: &str, member: &str, tags: &str) -> Event {
        Event::Set { name: name.into(), member: member.into(), tags: tags.into() }
    }

    #[test]
    fn good_lines_emit_expected_samples() {
        let cases: Vec<(&str, Vec<Event>)> = vec![
            // Counters.
            ("hits:1|c", vec![counter("hits", 1.0, "")]),
            ("hits:-4|c", vec![counter("hits", -4.0, "")]),
            ("hits:2.5|c", vec![counter("hits", 2.5, "")]),
            ("hits:3|c|@0.1", vec![counter("hits", 30.0, "")]),
            ("hits:1|c|@0.25", vec![counter("hits", 4.0, "")]),
            ("hits:7|c|@1", vec![counter("hits", 7.0, "")]),
            // Timers and their aliases.
            ("db.query:12.5|ms", vec![timer("db.query", 12.5, 1.0, true, "")]),
            ("db.query:0|ms", vec![timer("db.query", 0.0, 1.0, true, "")]),
            ("db.query:-0|ms", vec![timer("db.query", 0.0, 1.0, true, "")]),
            ("db.query:.5|ms", vec![timer("db.query", 0.5, 1.0, true, "")]),
            ("db.query:1e3|ms", vec![timer("db.query", 1000.0, 1.0, true, "")]),
            ("db.query:8|h", vec![timer("db.query", 8.0, 1.0, true, "")]),
            ("db.query:9|d", vec![timer("db.query", 9.0, 1.0, true, "")]),
            ("db.query:5|ms|@0.5", vec![timer("db.query", 5.0, 2.0, true, "")]),
            ("db.query:5|ms|@0.01", vec![timer("db.query", 5.0, 100.0, true, "")]),
            // Gauges: a sign makes a delta.
            ("queue:42|g", vec![gauge("queue", 42.0, false, "")]),
            ("queue:0|g", vec![gauge("queue", 0.0, false, "")]),
            ("queue:+3|g", vec![gauge("queue", 3.0, true, "")]),
            ("queue:-5|g", vec![gauge("queue", -5.0, true, "")]),
            ("queue:-0.5|g|@0.5", vec![gauge("queue", -0.5, true, "")]),
            // Sets: the member is text, colons included.
            ("users:alice|s", vec![set("users", "alice", "")]),
            ("users:42|s", vec![set("users", "42", "")]),
            ("users:a:b:c|s", vec![set("users", "a:b:c", "")]),
            ("users:bob|s|@0.1|#env:prod", vec![set("users", "bob", "env:prod")]),
            // Tags and their position relative to the rate.
            (
                "api.checkout:123.4|ms|@0.5|#env:prod,success:true",
                vec![timer("api.checkout", 123.4, 2.0, true, "env:prod,success:true")],
            ),
            (
                "api.checkout:123.4|ms|#env:prod,success:true|@0.5",
                vec![timer("api.checkout", 123.4, 2.0, true, "env:prod,success:true")],
            ),
            ("hits:2|c|#env:prod|@0.5", vec![counter("hits", 4.0, "env:prod")]),
            ("hits:2|c|#", vec![counter("hits", 2.0, "")]),
            // Failed timers.
            ("api:5|ms|#success:false", vec![timer("api", 5.0, 1.0, false, "success:false")]),
            (
                "api:5|ms|#route:/x,status:error",
                vec![timer("api", 5.0, 1.0, false, "route:/x,status:error")],
            ),
            ("api:5|ms|#status:ERROR", vec![timer("api", 5.0, 1.0, false, "status:ERROR")]),
            ("api:5|ms|#success:False|@0.5", vec![timer("api", 5.0, 2.0, false, "success:False")]),
            (
                "api:5|ms|#status:ok,success:true",
                vec![timer("api", 5.0, 1.0, true, "status:ok,success:true")],
            ),
            ("api:5|ms|#success", vec![timer("api", 5.0, 1.0, true, "success")]),
            ("api:5|ms|#xsuccess:false", vec![timer("api", 5.0, 1.0, true, "xsuccess:false")]),
            // DogStatsD fields that are skipped.
            ("api:5|ms|c:abc123|#a:b", vec![timer("api", 5.0, 1.0, true, "a:b")]),
            ("api:5|ms|T1700000000|@0.5", vec![timer("api", 5.0, 2.0, true, "")]),
            ("hits:1|c|e:it-false,cn-x|card:high|#k", vec![counter("hits", 1.0, "k")]),
            // Multi-value lines.
            (
                "api:1:2.5:3|ms|@0.5|#env:dev",
                vec![
                    timer("api", 1.0, 2.0, true, "env:dev"),
                    timer("api", 2.5, 2.0, true, "env:dev"),
                    timer("api", 3.0, 2.0, true, "env:dev"),
                ],
            ),
            ("hits:1:2|c|@0.5", vec![counter("hits", 2.0, ""), counter("hits", 4.0, "")]),
            (
                "queue:10:+2:-3|g",
                vec![
                    gauge("queue", 10.0, false, ""),
                    gauge("queue", 2.0, true, ""),
                    gauge("queue", -3.0, true, ""),
                ],
            ),
            // Names: punctuation and non-ASCII letters are fine.
            ("svc-a/b_c.d[0]:1|c", vec![counter("svc-a/b_c.d[0]", 1.0, "")]),
            ("café.latency:1|ms", vec![timer("café.latency", 1.0, 1.0, true, "")]),
            // Surrounding whitespace is trimmed.
            ("  hits:1|c \t", vec![counter("hits", 1.0, "")]),
        ];
        for (line, expected) in cases {
            let (counts, events) = parse(line.as_bytes());
            assert_eq!(events, expected, "line {line:?}");
            assert_eq!(
                counts,
                DatagramCounts { good_lines: 1, malformed_lines: 0 },
                "line {line:?}"
            );
        }
    }

    #[test]
    fn malformed_lines_report_reason() {
        let long_name = "n".repeat(MAX_NAME_CHARS + 1);
        let long_line = format!("{long_name}:1|c");
        let long_unicode = format!("{}:1|c", "é".repeat(MAX_NAME_CHARS + 1));
        let cases: Vec<(&str, &str, &str)> = vec![
            ("hits:1", "missing_type", "missing type"),
            ("hits:1|", "missing_type", "missing type"),
            ("hits:1|x", "unknown_type", "unknown type 'x'"),
            ("hits:1|C", "unknown_type", "unknown type 'C'"),
            ("hits:1|msx|@0.5", "unknown_type", "unknown type 'msx'"),
            ("hits|c", "missing_value", "missing value"),
            ("hits:|c", "missing_value", "missing value"),
            ("users:|s", "missing_value", "missing value"),
            ("hits:abc|c", "invalid_value", "invalid value 'abc'"),
            ("hits:1,5|c", "invalid_value", "invalid value '1,5'"),
            ("hits: 1|c", "invalid_value", "invalid value ' 1'"),
            ("hits:NaN|c", "invalid_value", "invalid value 'NaN'"),
            ("hits:inf|g", "invalid_value", "invalid value 'inf'"),
            ("hits:-infinity|g", "invalid_value", "invalid value '-infinity'"),
            ("hits:1e400|ms", "invalid_value", "invalid value '1e400'"),
            ("hits:0x10|c", "invalid_value", "invalid value '0x10'"),
            ("hits:+|g", "invalid_value", "invalid value '+'"),
            ("api:-1|ms", "negative_timer", "negative timer value '-1'"),
            ("api:-0.001|d", "negative_timer", "negative timer value '-0.001'"),
            ("hits:1|c|@2", "invalid_sample_rate", "invalid sample rate '@2'"),
            ("hits:1|c|@0", "invalid_sample_rate", "invalid sample rate '@0'"),
            ("hits:1|c|@-0.5", "invalid_sample_rate", "invalid sample rate '@-0.5'"),
            ("hits:1|c|@", "invalid_sample_rate", "invalid sample rate '@'"),
            ("hits:1|c|@nan", "invalid_sample_rate", "invalid sample rate '@nan'"),
            ("hits:1|c|@abc", "invalid_sample_rate", "invalid sample rate '@abc'"),
            ("hits:1|c|@1e-320", "invalid_sample_rate", "invalid sample rate '@1e-320'"),
            ("hits:1e300|c|@1e-10", "invalid_value", "invalid value '1e300'"),
            ("hits:1|c|@0.5|@0.5", "duplicate_sample_rate", "duplicate sample rate"),
            ("hits:1|c|#a|#b", "duplicate_tags", "duplicate tags"),
            ("hits:1|c|", "empty_field", "empty field"),
            ("hits:1|c||#a", "empty_field", "empty field"),
            ("hits:1|c|x:y", "unknown_field", "unknown field 'x:y'"),
            ("hits:1|c|0.5", "unknown_field", "unknown field '0.5'"),
            (":1|c", "empty_name", "empty name"),
            ("hits now:1|c", "invalid_name", "invalid character in name"),
            ("hits\tnow:1|c", "invalid_name", "invalid character in name"),
            ("hits\u{1}:1|c", "invalid_name", "invalid character in name"),
            ("hits\u{7f}:1|c", "invalid_name", "invalid character in name"),
            ("hits@x:1|c", "invalid_name", "invalid character in name"),
            ("hits#x:1|c", "invalid_name", "invalid character in name"),
            ("héllo\u{a0}:1|c", "invalid_name", "invalid character in name"),
            ("héllo#x:1|c", "invalid_name", "invalid character in name"),
            ("héllo@x:1|c", "invalid_name", "invalid character in name"),
            ("héllo x:1|c", "invalid_name", "invalid character in name"),
            ("héllo\u{85}:1|c", "invalid_name", "invalid character in name"),
            (&long_line, "name_too_long", "name longer than 200 characters"),
            (&long_unicode, "name_too_long", "name longer than 200 characters"),
            // Multi-value: one bad value rejects the whole line.
            ("api:1:2:x|ms", "invalid_value", "invalid value 'x'"),
            ("api:1:-2:3|ms", "negative_timer", "negative timer value '-2'"),
            ("api:1::3|ms", "invalid_value", "invalid value ''"),
            ("api:1:2:|ms", "invalid_value", "invalid value ''"),
            ("hits:1:nan|c", "invalid_value", "invalid value 'nan'"),
        ];
        for (line, code, message) in cases {
            let (counts, events) = parse(line.as_bytes());
            let expected =
                Event::Malformed { line: line.as_bytes().to_vec(), code, message: message.into() };
            assert_eq!(events, vec![expected], "line {line:?}");
            assert_eq!(
                counts,
                DatagramCounts { good_lines: 0, malformed_lines: 1 },
                "line {line:?}"
            );
        }
    }

    #[test]
    fn negative_zero_timer_is_reported_as_zero() {
        let (_, events) = parse(b"t:-0|ms");
        match events.as_slice() {
            [Event::Timer { value_ms, .. }] => assert!(value_ms.is_sign_positive()),
            other => panic!("unexpected events {other:?}"),
        }
    }

    #[test]
    fn longest_names_are_accepted() {
        let ascii = format!("{}:1|c", "n".repeat(MAX_NAME_CHARS));
        let (counts, _) = parse(ascii.as_bytes());
        assert_eq!(counts.good_lines, 1);
        // 200 two-byte characters: the limit is in characters, not bytes.
        let unicode = format!("{}:1|c", "é".repeat(MAX_NAME_CHARS));
        let (counts, events) = parse(unicode.as_bytes());
        assert_eq!(counts.good_lines, 1);
        assert_eq!(events, vec![counter(&"é".repeat(MAX_NAME_CHARS), 1.0, "")]);
    }

    #[test]
    fn invalid_utf8_is_malformed() {
        let (counts, events) = parse(b"ok:1|c\nb\xffad:1|c\nok:2|c");
        assert_eq!(counts, DatagramCounts { good_lines: 2, malformed_lines: 1 });
        assert_eq!(
            events,
            vec![
                counter("ok", 1.0, ""),
                Event::Malformed {
                    line: b"b\xffad:1|c".to_vec(),
                    code: "invalid_utf8",
                    message: "invalid UTF-8".into(),
                },
                counter("ok", 2.0, ""),
            ]
        );
    }

    #[test]
    fn several_lines_crlf_and_blank_lines() {
        let datagram = b"\r\na:1|c\r\nb:2|ms\n\n  \r\nc:+1|g\r\nd:x|s\n";
        let (counts, events) = parse(datagram);
        assert_eq!(counts, DatagramCounts { good_lines: 4, malformed_lines: 0 });
        assert_eq!(
            events,
            vec![
                counter("a", 1.0, ""),
                timer("b", 2.0, 1.0, true, ""),
                gauge("c", 1.0, true, ""),
                set("d", "x", ""),
            ]
        );
        assert_eq!(parse(b"").0, DatagramCounts::default());
        assert_eq!(parse(b"\n\r\n\n").0, DatagramCounts::default());
    }

    #[test]
    fn mixed_datagram_yields_exactly_the_good_lines() {
        let datagram = b"good.a:1|c\nbad.a:1|q\ngood.b:2:3|ms|#success:false\nbad.b:1:x:3|ms\n\
                         :1|c\ngood.c:-2|g\nbad.c:1|c|@7\ngood.d:u1|s|#k:v\nbad.d";
        let (counts, events) = parse(datagram);
        assert_eq!(counts, DatagramCounts { good_lines: 4, malformed_lines: 5 });
        let good: Vec<Event> =
            events.iter().filter(|e| !matches!(e, Event::Malformed { .. })).cloned().collect();
        assert_eq!(
            good,
            vec![
                counter("good.a", 1.0, ""),
                timer("good.b", 2.0, 1.0, false, "success:false"),
                timer("good.b", 3.0, 1.0, false, "success:false"),
                gauge("good.c", -2.0, true, ""),
                set("good.d", "u1", "k:v"),
            ]
        );
        let bad: Vec<&'static str> = events
            .iter()
            .filter_map(|e| match e {
                Event::Malformed { code, .. } => Some(*code),
                _ => None,
            })
            .collect();
        assert_eq!(
            bad,
            vec![
                "unknown_type",
                "invalid_value",
                "empty_name",
                "invalid_sample_rate",
                "missing_type"
            ]
        );
    }

    #[test]
    fn tags_iterate_lazily_in_order() {
        let tags = Tags::new("env:prod,canary,,url:http://x:80/,k:");
        let pairs: Vec<_> = tags.iter().collect();
        assert_eq!(
            pairs,
            vec![
                ("env", Some("prod")),
                ("canary", None),
                ("url", Some("http://x:80/")),
                ("k", Some("")),
            ]
        );
        assert!(!tags.is_empty());
        assert!(Tags::new("").is_empty());
        assert!(Tags::new(",,").is_empty());
        assert_eq!((&Tags::new("a")).into_iter().count(), 1);
    }

    #[test]
    fn sink_sees_tags_through_iter() {
        struct TagSink(Vec<(String, Option<String>)>);
        impl StatsdSink for TagSink {
            fn timer(&mut self, _: &str, _: f64, _: f64, _: bool, tags: &Tags<'_>) {
                self.0.extend(tags.iter().map(|(k, v)| (k.to_owned(), v.map(str::to_owned))));
            }
            fn counter(&mut self, _: &str, _: f64, _: &Tags<'_>) {}
            fn gauge(&mut self, _: &str, _: f64, _: bool, _: &Tags<'_>) {}
            fn set(&mut self, _: &str, _: &str, _: &Tags<'_>) {}
            fn malformed(&mut self, _: &[u8], _: LineError<'_>) {}
        }
        let mut sink = TagSink(Vec::new());
        parse_datagram(b"t:1|ms|@0.5|#env:prod,canary", &mut sink);
        assert_eq!(
            sink.0,
            vec![("env".to_owned(), Some("prod".to_owned())), ("canary".to_owned(), None)]
        );
    }

    #[test]
    fn error_display_escapes_and_truncates() {
        let long = "x".repeat(40);
        let message = LineError::InvalidValue(&long).to_string();
        assert_eq!(message, format!("invalid value '{}...'", "x".repeat(32)));
        assert_eq!(
            LineError::UnknownType("a\u{1b}[31m").to_string(),
            "unknown type 'a\\u{1b}[31m'"
        );
    }

    #[test]
    fn find_byte_matches_a_plain_search() {
        let mut rng = Rng(7);
        for _ in 0..20_000 {
            let len = rng.below(40);
            // Few distinct bytes, so needles, near-needles (needle ^ 1) and zeros are common.
            let bytes: Vec<u8> = (0..len).map(|_| b"|}\x00\x01:;\xff"[rng.below(7)]).collect();
            for needle in [b'|', b':', 0u8, 0xff] {
                for from in 0..=len + 2 {
                    let expected = bytes
                        .get(from..)
                        .and_then(|rest| rest.iter().position(|&b| b == needle))
                        .map_or(len, |p| from + p);
                    assert_eq!(find_byte(&bytes, from, needle), expected, "{bytes:?} {from}");
                }
            }
        }
    }

    /// xorshift64*: deterministic bytes without a dependency.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    /// Every non-blank line is counted exactly once, and samples only come from good lines.
    fn check_invariants(datagram: &[u8]) {
        let (counts, events) = parse(datagram);
        let lines = datagram.split(|&b| b == b'\n').filter(|l| !l.trim_ascii().is_empty()).count();
        assert_eq!(counts.good_lines + counts.malformed_lines, lines, "{datagram:?}");
        let malformed = events.iter().filter(|e| matches!(e, Event::Malformed { .. })).count();
        assert_eq!(malformed, counts.malformed_lines, "{datagram:?}");
        assert!(events.len() - malformed >= counts.good_lines, "{datagram:?}");
        for event in &events {
            match event {
                Event::Timer { value_ms, weight, .. } => {
                    assert!(value_ms.is_finite() && *value_ms >= 0.0 && *weight >= 1.0);
                }
                Event::Counter { delta, .. } => assert!(delta.is_finite()),
                Event::Gauge { value, .. } => assert!(value.is_finite()),
                Event::Set { member, .. } => assert!(!member.is_empty()),
                Event::Malformed { .. } => {}
            }
        }
    }

    #[test]
    fn random_bytes_never_panic() {
        const ALPHABET: &[u8] = b"ab.:|@#,c ms hgd+-0123456789eE\r\n\xff\xc3\xa9T";
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for round in 0..20_000 {
            let len = rng.below(64);
            let datagram: Vec<u8> = (0..len)
                .map(|_| {
                    if round % 2 == 0 {
                        rng.next() as u8
                    } else {
                        ALPHABET[rng.below(ALPHABET.len())]
                    }
                })
                .collect();
            check_invariants(&datagram);
        }
    }

    #[test]
    fn mutated_good_lines_never_panic() {
        let seeds: &[&[u8]] = &[
            b"api.checkout:123.4|ms|@0.5|#env:prod,success:true",
            b"queue:1:+2:-3|g|#a|c:xyz|T123",
            b"users:\xc3\xa9l\xc3\xa8ve|s\r\nhits:1|c|@0.1",
        ];
        let mut rng = Rng(42);
        for _ in 0..20_000 {
            let mut line = seeds[rng.below(seeds.len())].to_vec();
            for _ in 0..=rng.below(4) {
                let at = rng.below(line.len() + 1);
                match rng.below(3) {
                    0 if at < line.len() => line[at] = rng.next() as u8,
                    1 if at < line.len() => {
                        line.remove(at);
                    }
                    _ => line.insert(at, b":|@#\n-"[rng.below(6)]),
                }
            }
            check_invariants(&line);
        }
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]

            /// Any line written by the rules is read back as exactly what was written.
            #[test]
            fn written_lines_read_back_exactly(
                name in "[a-z][a-z0-9_.]{0,40}",
                value in 0.0f64..1e9,
                kind in prop::sample::select(vec!["ms", "c", "g"]),
                rate in prop::option::of(0.001f64..=1.0),
                tags in prop::collection::vec(("[a-z]{1,8}", "[a-z0-9]{1,8}"), 0..4),
            ) {
                let mut line = format!("{name}:{value}|{kind}");
                if let Some(rate) = rate {
                    line.push_str(&format!("|@{rate}"));
                }
                let tag_text: Vec<String> = tags.iter().map(|(k, v)| format!("{k}:{v}")).collect();
                if !tags.is_empty() {
                    line.push_str(&format!("|#{}", tag_text.join(",")));
                }
                let (counts, events) = parse(line.as_bytes());
                prop_assert_eq!(counts.good_lines, 1, "{}", line);
                prop_assert_eq!(events.len(), 1);
                let weight = 1.0 / rate.unwrap_or(1.0);
                let tags = tag_text.join(",");
                let expected = match kind {
                    "ms" => Event::Timer { name, value_ms: value, weight, success: true, tags },
                    "c" => Event::Counter { name, delta: value * weight, tags },
                    _ => Event::Gauge { name, value, is_delta: false, tags },
                };
                prop_assert_eq!(&events[0], &expected);
            }

            /// Whatever the bytes, every non-blank line is counted once and nothing emitted is
            /// out of range.
            #[test]
            fn arbitrary_datagrams_keep_the_invariants(
                bytes in prop::collection::vec(any::<u8>(), 0..512),
            ) {
                check_invariants(&bytes);
            }

            /// Good lines survive any bad line next to them.
            #[test]
            fn good_lines_survive_bad_neighbours(
                garbage in prop::collection::vec(any::<u8>(), 0..64),
                value in 0u32..100_000,
            ) {
                let garbage: Vec<u8> = garbage.into_iter().filter(|&b| b != b'\n').collect();
                let mut datagram = garbage.clone();
                datagram.extend_from_slice(format!("\nsurvivor:{value}|ms\n").as_bytes());
                datagram.extend_from_slice(&garbage);
                let (_, events) = parse(&datagram);
                let survivor = Event::Timer {
                    name: "survivor".into(),
                    value_ms: f64::from(value),
                    weight: 1.0,
                    success: true,
                    tags: String::new(),
                };
                prop_assert!(events.contains(&survivor), "{:?}", events);
            }
        }
    }
}
