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
    key.split(TAG_SEP).next().unwrap_or(key)
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

/// Which series a query keeps (`tag=k:v`, all must match) and how it groups them
/// (`by=k`: one row per name and value of `k`; without it, one row per name).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selection {
    pub require: Vec<(String, String)>,
    pub by: Vec<String>,
}

impl Selection {
    /// Parses `tag=k:v` values and `by=k1,k2`.
    pub fn parse<'a>(
        tags: impl IntoIterator<Item = &'a str>,
        by: Option<&str>,
    ) -> Result<Selection, String> {
        let mut require = Vec::new();
        for t in tags {
            let (k, v) =
                t.split_once(':').ok_or_else(|| format!("tag: must be key:value (got {t})"))?;
            if k.is_empty() {
                return Err(format!("tag: must be key:value (got {t})"));
            }
            require.push((k.to_string(), v.to_string()));
        }
        let by = by
            .map(|b| {
                b.split(',').map(str::trim).filter(|k| !k.is_empty()).map(String::from).collect()
            })
            .unwrap_or_default();
        Ok(Selection { require, by })
    }

    /// Whether the series `key` is kept.
    pub fn keeps(&self, key: &str) -> bool {
        self.require.iter().all(|(k, v)| tags_of(key).any(|(tk, tv)| tk == k && tv == v))
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
}
