//! Broker secrets: the MQTT password and the client certificate's private key, kept in the OS
//! credential store (the `keyring` crate: the Secret Service on Linux, such as GNOME Keyring or
//! KWallet; the Keychain on macOS; the Credential Manager on Windows), never in the config file
//! and never in a log line.
//!
//! Each secret is filed under the service [`SERVICE`] and an account naming what it is for:
//! `mqtt-password:{host}:{port}:{username}` or `mqtt-client-key:{host}:{port}`, so a console
//! that talks to two brokers keeps their secrets apart, and a secret stored for one broker is
//! never sent to another.
//!
//! Settings resolution reads secrets through the [`SecretStore`] trait: [`OsKeyring`] in the
//! program, [`MemoryStore`] in tests.

use std::collections::HashMap;
use std::sync::Mutex;

/// The keyring service every Watchfloor secret is filed under.
pub const SERVICE: &str = "watchfloor";

/// Which secret.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SecretKey {
    /// The password of `username` at the broker `host:port`.
    Password { broker: String, username: String },
    /// The PEM private key of the client certificate used with the broker `host:port`.
    ClientKey { broker: String },
}

impl SecretKey {
    pub fn password(broker: &str, username: &str) -> Self {
        Self::Password {
            broker: broker.to_owned(),
            username: username.to_owned(),
        }
    }

    pub fn client_key(broker: &str) -> Self {
        Self::ClientKey {
            broker: broker.to_owned(),
        }
    }

    /// The keyring account name.
    pub fn account(&self) -> String {
        match self {
            SecretKey::Password { broker, username } => {
                format!("mqtt-password:{broker}:{username}")
            }
            SecretKey::ClientKey { broker } => format!("mqtt-client-key:{broker}"),
        }
    }
}

impl std::fmt::Display for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SecretKey::Password { broker, username } => {
                write!(f, "the password of {username} at {broker}")
            }
            SecretKey::ClientKey { broker } => write!(f, "the client key for {broker}"),
        }
    }
}

/// Why a secret could not be read or written. It never carries the secret.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// No credential store answers (no Secret Service on this desktop, a locked keyring).
    #[error("the OS keyring cannot be reached: {0}")]
    Unavailable(String),
    /// The store answered with an error.
    #[error("the OS keyring refused: {0}")]
    Failed(String),
}

/// Where secrets are kept.
pub trait SecretStore: Send + Sync {
    /// The secret, or `None` when none is stored.
    fn get(&self, key: &SecretKey) -> Result<Option<Vec<u8>>, SecretError>;
    fn set(&self, key: &SecretKey, secret: &[u8]) -> Result<(), SecretError>;
    /// Removes the secret; `false` when there was none.
    fn delete(&self, key: &SecretKey) -> Result<bool, SecretError>;
}

/// The OS credential store.
#[derive(Debug, Default, Clone, Copy)]
pub struct OsKeyring;

impl OsKeyring {
    fn entry(key: &SecretKey) -> Result<keyring::Entry, SecretError> {
        keyring::Entry::new(SERVICE, &key.account()).map_err(from_keyring)
    }
}

fn from_keyring(e: keyring::Error) -> SecretError {
    match e {
        keyring::Error::NoStorageAccess(inner) => SecretError::Unavailable(inner.to_string()),
        keyring::Error::PlatformFailure(inner) => SecretError::Unavailable(inner.to_string()),
        // BadEncoding carries the bytes: say what it is without them.
        keyring::Error::BadEncoding(_) => {
            SecretError::Failed("the stored secret is not text".into())
        }
        other => SecretError::Failed(other.to_string()),
    }
}

impl SecretStore for OsKeyring {
    fn get(&self, key: &SecretKey) -> Result<Option<Vec<u8>>, SecretError> {
        match Self::entry(key)?.get_secret() {
            Ok(s) => Ok(Some(s)),
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(e) => Err(from_keyring(e)),
        }
    }

    fn set(&self, key: &SecretKey, secret: &[u8]) -> Result<(), SecretError> {
        Self::entry(key)?.set_secret(secret).map_err(from_keyring)
    }

    fn delete(&self, key: &SecretKey) -> Result<bool, SecretError> {
        match Self::entry(key)?.delete_credential() {
            Ok(()) => Ok(true),
            Err(keyring::Error::NoEntry) => Ok(false),
            Err(e) => Err(from_keyring(e)),
        }
    }
}

/// Secrets in memory: for tests, and for settings resolved where no store is wanted.
#[derive(Debug, Default)]
pub struct MemoryStore {
    secrets: Mutex<HashMap<SecretKey, Vec<u8>>>,
    /// When set, every call fails as an unreachable store does.
    unavailable: Option<String>,
}

impl MemoryStore {
    /// A store every call of which fails as an unreachable one does.
    pub fn unreachable(why: &str) -> Self {
        Self {
            unavailable: Some(why.to_owned()),
            ..Self::default()
        }
    }

    pub fn with(entries: impl IntoIterator<Item = (SecretKey, Vec<u8>)>) -> Self {
        Self {
            secrets: Mutex::new(entries.into_iter().collect()),
            unavailable: None,
        }
    }

    fn check(&self) -> Result<(), SecretError> {
        match &self.unavailable {
            Some(why) => Err(SecretError::Unavailable(why.clone())),
            None => Ok(()),
        }
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<SecretKey, Vec<u8>>> {
        self.secrets.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl SecretStore for MemoryStore {
    fn get(&self, key: &SecretKey) -> Result<Option<Vec<u8>>, SecretError> {
        self.check()?;
        Ok(self.map().get(key).cloned())
    }

    fn set(&self, key: &SecretKey, secret: &[u8]) -> Result<(), SecretError> {
        self.check()?;
        self.map().insert(key.clone(), secret.to_vec());
        Ok(())
    }

    fn delete(&self, key: &SecretKey) -> Result<bool, SecretError> {
        self.check()?;
        Ok(self.map().remove(key).is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounts_keep_brokers_and_users_apart() {
        let a = SecretKey::password("broker.example:8883", "console-1");
        let b = SecretKey::password("other.example:8883", "console-1");
        assert_ne!(a.account(), b.account());
        assert_eq!(a.account(), "mqtt-password:broker.example:8883:console-1");
        assert_eq!(
            SecretKey::client_key("broker.example:8883").account(),
            "mqtt-client-key:broker.example:8883"
        );
        assert_eq!(
            a.to_string(),
            "the password of console-1 at broker.example:8883"
        );
    }

    #[test]
    fn the_memory_store_round_trips_and_can_be_unreachable() {
        let key = SecretKey::password("b:1", "u");
        let store = MemoryStore::default();
        assert_eq!(store.get(&key).unwrap(), None);
        store.set(&key, b"s3cret").unwrap();
        assert_eq!(store.get(&key).unwrap().as_deref(), Some(&b"s3cret"[..]));
        assert!(store.delete(&key).unwrap());
        assert!(!store.delete(&key).unwrap());
        let down = MemoryStore::unreachable("no Secret Service");
        assert!(matches!(down.get(&key), Err(SecretError::Unavailable(_))));
    }
}
