//! Tag selections: which tagged series of an operation or event a view keeps (`tag=key:value`,
//! every one must match) and how it groups them (`by=key`: one row per name and value of the
//! key; without it, one row per name). The API takes them as query parameters, the Operations
//! page keeps them in its URL, and the server functions take the same type. How a series key
//! holds its tags is the server's business (`server::metrics::tags`).

use serde::{Deserialize, Serialize};

/// One required tag.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Tag {
    pub key: String,
    pub value: String,
}

impl Tag {
    /// `key:value` (the value may hold further colons).
    pub fn parse(text: &str) -> Result<Tag, String> {
        match text.split_once(':') {
            Some((key, value)) if !key.trim().is_empty() => {
                Ok(Tag { key: key.trim().to_string(), value: value.trim().to_string() })
            }
            _ => Err(format!("tag: must be key:value (got {text})")),
        }
    }

    pub fn as_text(&self) -> String {
        format!("{}:{}", self.key, self.value)
    }
}

/// Which series a query keeps and how it groups them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Selection {
    #[serde(default)]
    pub require: Vec<Tag>,
    #[serde(default)]
    pub by: Vec<String>,
}

/// Most tags one selection may require, and most keys it may group by.
pub const MAX_SELECTED: usize = 16;

impl Selection {
    /// Parses `tag=k:v` values and `by=k1,k2`.
    pub fn parse<'a>(
        tags: impl IntoIterator<Item = &'a str>,
        by: Option<&str>,
    ) -> Result<Selection, String> {
        // Limits checked as the lists grow: each new entry is compared with those before it.
        let mut require = Vec::new();
        for text in tags {
            let tag = Tag::parse(text)?;
            if !require.contains(&tag) {
                if require.len() == MAX_SELECTED {
                    return Err(format!("tag: at most {MAX_SELECTED} tags"));
                }
                require.push(tag);
            }
        }
        let mut keys: Vec<String> = Vec::new();
        for key in by.unwrap_or_default().split(',').map(str::trim).filter(|k| !k.is_empty()) {
            if !keys.iter().any(|k| k == key) {
                if keys.len() == MAX_SELECTED {
                    return Err(format!("by: at most {MAX_SELECTED} keys"));
                }
                keys.push(key.to_string());
            }
        }
        Ok(Selection { require, by: keys })
    }

    /// Keeps every series and groups by name only.
    pub fn is_empty(&self) -> bool {
        self.require.is_empty() && self.by.is_empty()
    }

    /// The same selection narrowed to one group's tags (a row of a grouped table).
    pub fn narrowed(&self, group: &std::collections::BTreeMap<String, String>) -> Selection {
        let mut require = self.require.clone();
        for (key, value) in group {
            let tag = Tag { key: key.clone(), value: value.clone() };
            if !require.contains(&tag) {
                require.push(tag);
            }
        }
        Selection { require, by: Vec::new() }
    }

    /// The URL query parameters of the selection (`tag=…&by=…`, percent-encoded), empty when
    /// it keeps everything; without a leading `&`.
    pub fn to_query(&self) -> String {
        let mut parts: Vec<String> = self
            .require
            .iter()
            .map(|t| format!("tag={}", super::percent_encode(&t.as_text())))
            .collect();
        if !self.by.is_empty() {
            parts.push(format!("by={}", super::percent_encode(&self.by.join(","))));
        }
        parts.join("&")
    }
}

/// A tag key seen on the series of a view, with its values (sorted, at most
/// [`MAX_TAG_VALUES`]), for the filter's suggestions and the group-by choices.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TagValues {
    pub key: String,
    pub values: Vec<String>,
    /// Whether more values exist than `values` holds.
    #[serde(default)]
    pub more: bool,
}

/// Most tag keys a view lists, and most values per key.
pub const MAX_TAG_KEYS: usize = 32;
pub const MAX_TAG_VALUES: usize = 50;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_dedups_and_names_the_field_of_a_mistake() {
        let s =
            Selection::parse(["region:eu", "region:eu", "url:http://x"], Some("v, app,v")).unwrap();
        assert_eq!(s.require.len(), 2);
        assert_eq!(s.require[1], Tag { key: "url".into(), value: "http://x".into() });
        assert_eq!(s.by, vec!["v", "app"]);
        assert!(Selection::parse(["nocolon"], None).unwrap_err().starts_with("tag:"));
        assert!(Selection::parse([":eu"], None).is_err());
        assert!(Selection::parse([], None).unwrap().is_empty());
    }

    #[test]
    fn query_text_is_percent_encoded_and_narrowing_adds_the_group() {
        let s = Selection::parse(["path:/a b&c"], Some("region")).unwrap();
        assert_eq!(s.to_query(), "tag=path%3A%2Fa%20b%26c&by=region");
        let row = std::collections::BTreeMap::from([("region".to_string(), "eu".to_string())]);
        let one = s.narrowed(&row);
        assert!(one.by.is_empty());
        assert_eq!(one.to_query(), "tag=path%3A%2Fa%20b%26c&tag=region%3Aeu");
        assert_eq!(Selection::default().to_query(), "");
    }
}
