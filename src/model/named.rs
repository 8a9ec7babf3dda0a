//! Reading unit enums by their wire names without serde's derive.
//!
//! serde's derive reads a unit enum through a visitor of its own per enum (names as strings,
//! bytes and indices, and the `{"variant": null}` form), about 1.5 KB of the browser's bundle
//! each (BENCHMARKS.md, "Every gzip file by zopfli"). The enums listed with
//! [`deserialize_by_name!`] are read as a string and matched against their `as_str` names: the
//! same names the derived `Serialize` writes, and the same "unknown variant" error.

/// Implements `Deserialize` for a unit enum from the names its `const fn as_str` gives:
///
/// ```ignore
/// deserialize_by_name!(Severity, [Severity::Warning, Severity::Critical]);
/// ```
macro_rules! deserialize_by_name {
    ($enum:ty, [$($variant:expr),+ $(,)?]) => {
        impl<'de> serde::Deserialize<'de> for $enum {
            fn deserialize<D: serde::Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
                const ALL: &[$enum] = &[$($variant),+];
                const NAMES: &[&str] = &[$($variant.as_str()),+];
                let name = String::deserialize(de)?;
                ALL.iter()
                    .copied()
                    .find(|v| v.as_str() == name)
                    .ok_or_else(|| serde::de::Error::unknown_variant(&name, NAMES))
            }
        }
    };
}

pub(crate) use deserialize_by_name;

#[cfg(test)]
mod tests {
    use crate::model::alerts::{AlertState, Severity};
    use crate::model::history::Tier;
    use crate::model::ops::{LatencyClass, Window};

    fn round_trip<T>(all: &[T])
    where
        T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
    {
        for v in all {
            let text = serde_json::to_string(v).unwrap();
            assert_eq!(&serde_json::from_str::<T>(&text).unwrap(), v, "{text}");
        }
    }

    #[test]
    fn unit_enums_read_back_what_they_write_and_name_what_they_take() {
        round_trip(&Window::ALL);
        round_trip(&[Severity::Warning, Severity::Critical]);
        round_trip(&[LatencyClass::Excellent, LatencyClass::Good, LatencyClass::Slow]);
        round_trip(&[AlertState::Inactive, AlertState::Recovering, AlertState::Resolved]);
        round_trip(&[Tier::Raw, Tier::MinuteAndHour, Tier::DayAndFiner]);
        assert_eq!(serde_json::from_str::<Window>("\"1h\"").unwrap(), Window::H1);
        let e = serde_json::from_str::<Severity>("\"fatal\"").unwrap_err().to_string();
        assert!(e.starts_with("unknown variant `fatal`, expected `warning` or `critical`"), "{e}");
        let e = serde_json::from_str::<Window>("5").unwrap_err().to_string();
        assert!(e.starts_with("invalid type: integer `5`, expected a string"), "{e}");
    }
}
