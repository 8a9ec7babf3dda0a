//! Reading internally tagged enums without serde's buffering.
//!
//! serde's derive for `#[serde(tag = "...")]` reads a message into a tree of its private
//! `Content` first (the tag may come anywhere in the object), then reads each variant from that
//! tree. In the browser's bundle that compiles every type such an enum carries a second time,
//! once for the tree (measured on the bundle built as one module: 17 KB of gzip for the live
//! messages, 15 KB for a report's sections; BENCHMARKS.md, "Each model type compiled once"),
//! and every message is copied once more as it arrives.
//!
//! Vitals writes these enums with the derive, which always writes the tag first; the enums
//! listed here are read back by [`tag_first_deserialize!`], which takes the tag from the first
//! field and hands the rest of the object to the variant's own type as it arrives. An object
//! whose first field is not the tag is refused with an error saying so.

/// Implements `Deserialize` for an internally tagged enum (`#[serde(tag = ...)]` on its
/// `Serialize`) whose variants hold one type each or nothing:
///
/// ```ignore
/// tag_first_deserialize!(ServerMessage, "type", {
///     "snapshot" => Snapshot(LiveSnapshot),
///     "pong" => Pong,
/// });
/// ```
///
/// A variant's fields are read by its type's own `Deserialize`, so unknown fields are passed
/// over as they are there; a unit variant passes over every other field.
macro_rules! tag_first_deserialize {
    ($enum:ident, $tag:literal, { $($name:literal => $variant:ident $(($inner:ty))?),+ $(,)? }) => {
        impl<'de> serde::Deserialize<'de> for $enum {
            fn deserialize<D: serde::Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
                struct TagFirst;

                impl<'de> serde::de::Visitor<'de> for TagFirst {
                    type Value = $enum;

                    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                        f.write_str(concat!("an object whose first field is `", $tag, "`"))
                    }

                    fn visit_map<A: serde::de::MapAccess<'de>>(
                        self,
                        mut map: A,
                    ) -> Result<$enum, A::Error> {
                        use serde::de::Error;
                        match map.next_key::<std::borrow::Cow<'de, str>>()? {
                            Some(key) if key == $tag => {}
                            Some(key) => {
                                return Err(A::Error::custom(format!(
                                    concat!("`", $tag, "` must come first, not `{}`"),
                                    key
                                )))
                            }
                            None => return Err(A::Error::missing_field($tag)),
                        }
                        let kind = map.next_value::<std::borrow::Cow<'de, str>>()?;
                        let rest = serde::de::value::MapAccessDeserializer::new(map);
                        match &*kind {
                            $($name => Ok($crate::model::tagged::tag_first_deserialize!(
                                @variant $enum, rest, $variant $(($inner))?
                            )),)+
                            other => Err(A::Error::unknown_variant(other, &[$($name),+])),
                        }
                    }
                }

                de.deserialize_map(TagFirst)
            }
        }
    };
    (@variant $enum:ident, $rest:ident, $variant:ident) => {{
        <serde::de::IgnoredAny as serde::Deserialize>::deserialize($rest)?;
        $enum::$variant
    }};
    (@variant $enum:ident, $rest:ident, $variant:ident ($inner:ty)) => {
        $enum::$variant(<$inner as serde::Deserialize>::deserialize($rest)?)
    };
}

pub(crate) use tag_first_deserialize;
