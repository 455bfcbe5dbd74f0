//! The device identifier: 1 to 64 characters of `[A-Za-z0-9._-]`, optionally behind an adapter
//! namespace (`ot:alice.phone` for an OwnTracks phone). Native ids can never contain `:`, so two
//! protocols never produce the same id.
//!
//! Ids arrive inside topics and payloads written by devices we do not control. Restricting the
//! alphabet means an id can never contain MQTT wildcards (`+`, `#`), a topic separator (`/`),
//! whitespace or control characters, so it is always safe to put back into a topic, a file name
//! or a log line. Anything else is rejected here, once, instead of being escaped everywhere.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Longest device id accepted, in bytes (all accepted characters are ASCII).
pub const MAX_DEVICE_ID_LEN: usize = 64;

/// A validated device id. The only way to build one is [`DeviceId::parse`].
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct DeviceId(String);

/// Why a string is not a device id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeviceIdError {
    /// The id is the empty string.
    #[error("device id is empty")]
    Empty,
    /// The id is longer than [`MAX_DEVICE_ID_LEN`] bytes.
    #[error("device id is {len} bytes long, the limit is {MAX_DEVICE_ID_LEN}")]
    TooLong { len: usize },
    /// The id contains a character outside `[A-Za-z0-9._-]`.
    #[error("device id contains {found:?}; only letters, digits, '.', '_' and '-' are allowed")]
    BadCharacter { found: char },
}

impl DeviceId {
    /// Validates `raw` as a device id.
    pub fn parse(raw: &str) -> Result<Self, DeviceIdError> {
        if raw.is_empty() {
            return Err(DeviceIdError::Empty);
        }
        if raw.len() > MAX_DEVICE_ID_LEN {
            return Err(DeviceIdError::TooLong { len: raw.len() });
        }
        if let Some(found) = raw
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
        {
            return Err(DeviceIdError::BadCharacter { found });
        }
        Ok(Self(raw.to_owned()))
    }

    /// An id in an adapter's namespace: `{namespace}:{local}`, where `local` follows the same
    /// alphabet as a native id and the whole stays within [`MAX_DEVICE_ID_LEN`].
    pub fn namespaced(namespace: &'static str, local: &str) -> Result<Self, DeviceIdError> {
        debug_assert!(namespace.chars().all(|c| c.is_ascii_lowercase()));
        let id = Self::parse(local)?;
        let full = format!("{namespace}:{}", id.0);
        if full.len() > MAX_DEVICE_ID_LEN {
            return Err(DeviceIdError::TooLong { len: full.len() });
        }
        Ok(Self(full))
    }

    /// Parses an id as a user types it: a native id, or `namespace:local` with a lowercase
    /// namespace of up to 8 letters.
    pub fn parse_qualified(raw: &str) -> Result<Self, DeviceIdError> {
        match raw.split_once(':') {
            Some((ns, local))
                if (1..=8).contains(&ns.len()) && ns.chars().all(|c| c.is_ascii_lowercase()) =>
            {
                let id = Self::parse(local)?;
                let full = format!("{ns}:{}", id.0);
                if full.len() > MAX_DEVICE_ID_LEN {
                    return Err(DeviceIdError::TooLong { len: full.len() });
                }
                Ok(Self(full))
            }
            _ => Self::parse(raw),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for DeviceId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        DeviceId::parse(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_keep_adapters_apart() {
        let ot = DeviceId::namespaced("ot", "alice.phone").unwrap();
        assert_eq!(ot.as_str(), "ot:alice.phone");
        assert_eq!(
            DeviceId::parse("ot:alice.phone"),
            Err(DeviceIdError::BadCharacter { found: ':' }),
            "a native topic can never claim an adapter's id"
        );
        assert_eq!(DeviceId::parse_qualified("ot:alice.phone"), Ok(ot));
        assert!(DeviceId::parse_qualified("OT:x").is_err());
        assert!(DeviceId::namespaced("ot", &"x".repeat(62)).is_err());
    }

    #[test]
    fn accepts_the_documented_alphabet() {
        for ok in ["a", "veh-001", "cam_7.front", &"x".repeat(64)] {
            assert!(
                DeviceId::parse(ok).is_ok(),
                "{ok:?} is within the documented alphabet"
            );
        }
    }

    #[test]
    fn rejects_ids_that_could_escape_a_topic() {
        assert_eq!(DeviceId::parse(""), Err(DeviceIdError::Empty));
        assert_eq!(
            DeviceId::parse(&"x".repeat(65)),
            Err(DeviceIdError::TooLong { len: 65 })
        );
        for (bad, found) in [
            ("a/b", '/'),
            ("a+", '+'),
            ("#", '#'),
            ("a b", ' '),
            ("é", 'é'),
            ("a\0", '\0'),
        ] {
            assert_eq!(
                DeviceId::parse(bad),
                Err(DeviceIdError::BadCharacter { found }),
                "{bad:?} would be unsafe in a topic or a log line"
            );
        }
    }
}
