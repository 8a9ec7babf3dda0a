//! Tags as dimensions: an operation or event series is a name **and** a tag set. The series
//! key is the name alone, or the name followed by its tags sorted by key then value, each
//! separated by control characters that validated names, keys and values never contain:
//! `name US key RS value US key RS value` (US = `\u{1f}`, RS = `\u{1e}`). One string keeps the
//! registry and the spool keyed as before, and the store keeps the tag part as it is.
//!
//! Tags that only steer ingestion (`kind`, `success`) are not dimensions. A name may hold at
//! most [`DEFAULT_MAX_TAG_SETS`] tag sets (`--max-tag-sets-per-name`); samples of further tag
//! sets go to the name's overflow set `_overflow:true`, so totals per name stay whole and the
//! overflow is visible.

use std::collections::BTreeMap;

/// Separates the name and each tag.
pub const TAG_SEP: char = '\u{1f}';
/// Separates a tag's key and value.
pub const KV_SEP: char = '\u{1e}';
/// Default bound on tag sets per name.
pub const DEFAULT_MAX_TAG_SETS: usize = 100;
/// The tag of the overflow set.
pub const OVERFLOW: (&str, &str) = ("_overflow", "true");
/// Tag keys that are not dimensions.
const NOT_DIMENSIONS: [&str; 2] = ["kind", "success"];

/// Whether `key` is a dimension (and `key`/`value` can be encoded).
fn usable(key: &str, value: &str) -> bool {
    !key.is_empty()
        && !NOT_DIMENSIONS.contains(&key)
        && !key.contains([TAG_SEP, KV_SEP])
        && !value.contains([TAG_SEP, KV_SEP])
}

/// Writes the series key of `name` with `tags` into `buf` (cleared first), reusing `scratch`
/// for sorting; a tag repeated with the same key keeps its first value.
pub fn series_key<'t>(
    buf: &mut String,
    scratch: &mut Vec<(&'t str, &'t str)>,
    name: &str,
    tags: impl IntoIterator<Item = (&'t str, &'t str)>,
) {
    buf.clear();
    buf.push_str(name);
    scratch.clear();
    scratch.extend(tags.into_iter().filter(|(k, v)| usable(k, v)));
    if scratch.is_empty() {
        return;
    }
    scratch.sort_by(|a, b| a.0.cmp(b.0));
    scratch.dedup_by(|b, a| a.0 == b.0);
    for (k, v) in scratch.iter() {
        buf.push(TAG_SEP);
        buf.push_str(k);
        buf.push(KV_SEP);
        buf.push_str(v);
    }
}

/// The name part of a series key.
pub fn name_of(key: &str) -> &str {
    // TAG_SEP is one ASCII byte, never part of another character: a plain byte scan finds it
    // (several times faster than a char search on short keys, and read for every series on
    // every alert evaluation).
    const SEP: u8 = TAG_SEP as u8;
    const _: () = assert!(TAG_SEP.is_ascii());
    match key.bytes().position(|b| b == SEP) {
        Some(at) => &key[..at],
        None => key,
    }
}

/// The tag part of a series key (empty for an untagged series), as stored.
pub fn tags_part(key: &str) -> &str {
    key.split_once(TAG_SEP).map_or("", |(_, tags)| tags)
}

/// The tags of a series key, in key order.
pub fn tags_of(key: &str) -> impl Iterator<Item = (&str, &str)> {
    key.split(TAG_SEP).skip(1).map(|t| t.split_once(KV_SEP).unwrap_or((t, "")))
}

/// The overflow key of `name`.
pub fn overflow_key(name: &str) -> String {
    format!("{name}{TAG_SEP}{}{KV_SEP}{}", OVERFLOW.0, OVERFLOW.1)
}

/// Whether a series key is a name's overflow set.
pub fn is_overflow(key: &str) -> bool {
    key.split_once(TAG_SEP).is_some_and(|(_, t)| t == "_overflow\u{1e}true")
}

/// A key made of a stored name and tag part.
pub fn join(name: &str, tags: &str) -> String {
    if tags.is_empty() {
        name.to_string()
    } else {
        format!("{name}{TAG_SEP}{tags}")
    }
}

pub use crate::model::tags::Selection;
use crate::model::tags::{TagValues, MAX_TAG_KEYS, MAX_TAG_VALUES};

/// How a [`Selection`] (a model type, shared with the UI) applies to series keys.
impl Selection {
    /// Whether the series `key` is kept.
    pub fn keeps(&self, key: &str) -> bool {
        self.require.iter().all(|t| tags_of(key).any(|(k, v)| k == t.key && v == t.value))
    }

    /// The group of `key`: its name and the values of the `by` keys it has.
    pub fn group_of(&self, key: &str) -> (String, BTreeMap<String, String>) {
        let tags = tags_of(key)
            .filter(|(k, _)| self.by.iter().any(|b| b == k))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        (name_of(key).to_string(), tags)
    }
}

/// The tag keys of `keys` (series keys) and their values, sorted, at most [`MAX_TAG_KEYS`]
/// keys of at most [`MAX_TAG_VALUES`] values each; the overflow tag is left out.
pub fn tag_index<'k>(keys: impl IntoIterator<Item = &'k str>) -> Vec<TagValues> {
    let mut index: BTreeMap<&str, std::collections::BTreeSet<&str>> = BTreeMap::new();
    for key in keys {
        for (k, v) in tags_of(key).filter(|(k, _)| *k != OVERFLOW.0) {
            index.entry(k).or_default().insert(v);
        }
    }
    index
        .into_iter()
        .take(MAX_TAG_KEYS)
        .map(|(key, values)| TagValues {
            key: key.to_string(),
            more: values.len() > MAX_TAG_VALUES,
            values: values.into_iter().take(MAX_TAG_VALUES).map(String::from).collect(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sort_tags_drop_steering_tags_and_split_back() {
        let (mut buf, mut scratch) = (String::new(), Vec::new());
        series_key(
            &mut buf,
            &mut scratch,
            "GET /r",
            [("region", "eu"), ("kind", "event"), ("app", "a"), ("region", "us")],
        );
        assert_eq!(name_of(&buf), "GET /r");
        assert_eq!(tags_of(&buf).collect::<Vec<_>>(), vec![("app", "a"), ("region", "eu")]);
        series_key(&mut buf, &mut scratch, "plain", [("success", "false")]);
        assert_eq!(buf, "plain");
        assert_eq!(tags_part(&buf), "");
        assert_eq!(join("n", tags_part(&overflow_key("n"))), overflow_key("n"));
    }

    #[test]
    fn selections_filter_and_group() {
        let (mut buf, mut scratch) = (String::new(), Vec::new());
        series_key(&mut buf, &mut scratch, "op", [("region", "eu"), ("v", "2")]);
        let s = Selection::parse(["region:eu"], Some("v")).unwrap();
        assert!(s.keeps(&buf));
        assert!(!Selection::parse(["region:us"], None).unwrap().keeps(&buf));
        let (name, tags) = s.group_of(&buf);
        assert_eq!((name.as_str(), tags.get("v").map(String::as_str)), ("op", Some("2")));
        assert!(Selection::parse(["nocolon"], None).is_err());
    }

    #[test]
    fn the_tag_index_lists_keys_and_values_once_without_the_overflow_tag() {
        let (mut buf, mut scratch) = (String::new(), Vec::new());
        let mut keys = vec![overflow_key("op"), "plain".to_string()];
        for (region, v) in [("eu", "2"), ("us", "2"), ("eu", "3")] {
            series_key(&mut buf, &mut scratch, "op", [("region", region), ("v", v)]);
            keys.push(buf.clone());
        }
        let index = tag_index(keys.iter().map(String::as_str));
        let flat: Vec<(&str, Vec<&str>)> = index
            .iter()
            .map(|t| (t.key.as_str(), t.values.iter().map(String::as_str).collect()))
            .collect();
        assert_eq!(flat, vec![("region", vec!["eu", "us"]), ("v", vec!["2", "3"])]);
    }
}
