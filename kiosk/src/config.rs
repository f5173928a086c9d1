//! The kiosk's data directory: its configuration (TOML), its private key and its ledger, and
//! `kiosk init`, which creates all three.

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use proto::{DeviceId, PublicKey, SigningKey, SiteId, Text};
use serde::{Deserialize, Serialize};

use crate::ledger::{Ledger, LedgerError};
use crate::limits::CONFIG_BYTES_MAX;

pub const CONFIG_FILE: &str = "kiosk.toml";
pub const KEY_FILE: &str = "kiosk.key";
pub const LEDGER_FILE: &str = "ledger.sqlite";

/// The time zone of French canteens, the default for new kiosks.
pub const TIME_ZONE_DEFAULT: &str = "Europe/Paris";

/// `kiosk.toml`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KioskConfig {
    /// This kiosk's identity in its records; derived from its key at enrolment.
    pub device: DeviceId,
    pub site: SiteId,
    /// A name staff recognise, such as "Entrée cour".
    pub name: Text,
    /// The back-office's base URL, once known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoffice_url: Option<String>,
    /// IANA time zone of the site; services open and close in it.
    pub time_zone: String,
    /// How the kiosk reaches the back-office; every key has a default.
    #[serde(default, skip_serializing_if = "SyncConfig::is_default")]
    pub sync: SyncConfig,
}

/// The `[sync]` section of `kiosk.toml`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncConfig {
    /// PEM file of the CA that signed the back-office's certificate. When set, it is the only
    /// authority the kiosk trusts; otherwise the system's roots are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// Time between two syncs. When unset, the snapshot's setting (or
    /// [`crate::limits::SYNC_INTERVAL_MS_DEFAULT`] before the first snapshot).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval_ms: Option<u64>,
    /// How far the kiosk's clock may be from the back-office's before staff are warned and a
    /// `clock_drift` record is written ([`crate::limits::CLOCK_DRIFT_MS_MAX_DEFAULT`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock_drift_ms_max: Option<i64>,
    /// Days without a successful sync before staff are warned
    /// ([`crate::limits::OFFLINE_DAYS_MAX_DEFAULT`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offline_days_max: Option<u32>,
}

impl SyncConfig {
    fn is_default(&self) -> bool {
        *self == SyncConfig::default()
    }
}

/// The kiosk's data directory could not be set up or read.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{dir}: already initialised ({file} exists); nothing was changed")]
    AlreadyInitialised { dir: String, file: String },
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {reason}")]
    Invalid { path: String, reason: String },
    #[error("unknown time zone {0:?}")]
    TimeZone(String),
    #[error("key generation failed: {0}")]
    Key(#[from] proto::KeyError),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ConfigError + '_ {
    move |source| ConfigError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// What `kiosk init` prints for enrolment.
#[derive(Debug)]
pub struct Enrolment {
    pub config: KioskConfig,
    pub public_key: PublicKey,
}

/// The files of a kiosk's data directory.
#[derive(Clone, Debug)]
pub struct DataDir {
    pub root: PathBuf,
}

impl DataDir {
    pub fn new(root: impl Into<PathBuf>) -> DataDir {
        DataDir { root: root.into() }
    }

    pub fn config_path(&self) -> PathBuf {
        self.root.join(CONFIG_FILE)
    }

    pub fn key_path(&self) -> PathBuf {
        self.root.join(KEY_FILE)
    }

    pub fn ledger_path(&self) -> PathBuf {
        self.root.join(LEDGER_FILE)
    }

    /// Creates the configuration, the key (mode 0600) and the ledger. Refuses, changing nothing,
    /// if any of them exists. The configuration is written last: its presence means a complete
    /// enrolment.
    pub fn init(
        &self,
        site: SiteId,
        name: Text,
        backoffice_url: Option<String>,
        time_zone: &str,
        random: &dyn ring::rand::SecureRandom,
    ) -> Result<Enrolment, ConfigError> {
        for path in [self.config_path(), self.key_path(), self.ledger_path()] {
            if path.exists() {
                return Err(ConfigError::AlreadyInitialised {
                    dir: self.root.display().to_string(),
                    file: path
                        .file_name()
                        .map(|f| f.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                });
            }
        }
        jiff::tz::TimeZone::get(time_zone)
            .map_err(|_| ConfigError::TimeZone(time_zone.to_owned()))?;
        fs::create_dir_all(&self.root).map_err(io(&self.root))?;
        let (key, pkcs8) = SigningKey::generate(random)?;
        let public_key = key.public_key();
        let device = device_id(&site, &public_key);
        let key_path = self.key_path();
        let mut key_file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&key_path)
            .map_err(io(&key_path))?;
        key_file.write_all(&pkcs8).map_err(io(&key_path))?;
        key_file.sync_all().map_err(io(&key_path))?;
        Ledger::create(&self.ledger_path())?;
        let config = KioskConfig {
            device,
            site,
            name,
            backoffice_url,
            time_zone: time_zone.to_owned(),
            sync: SyncConfig::default(),
        };
        let text = format!(
            "# Kiosk configuration, written by `kiosk init`.\n{}",
            toml::to_string(&config).map_err(|error| ConfigError::Invalid {
                path: self.config_path().display().to_string(),
                reason: error.to_string(),
            })?
        );
        write_new_durably(&self.config_path(), text.as_bytes())?;
        Ok(Enrolment { config, public_key })
    }

    pub fn load_config(&self) -> Result<KioskConfig, ConfigError> {
        let path = self.config_path();
        let size = fs::metadata(&path).map_err(io(&path))?.len();
        if size > CONFIG_BYTES_MAX {
            return Err(ConfigError::Invalid {
                path: path.display().to_string(),
                reason: "too large".into(),
            });
        }
        let text = fs::read_to_string(&path).map_err(io(&path))?;
        let config: KioskConfig = toml::from_str(&text).map_err(|error| ConfigError::Invalid {
            path: path.display().to_string(),
            reason: error.to_string(),
        })?;
        jiff::tz::TimeZone::get(&config.time_zone)
            .map_err(|_| ConfigError::TimeZone(config.time_zone.clone()))?;
        Ok(config)
    }

    pub fn load_key(&self) -> Result<SigningKey, ConfigError> {
        let path = self.key_path();
        let pkcs8 = fs::read(&path).map_err(io(&path))?;
        SigningKey::from_pkcs8(&pkcs8).map_err(|error| ConfigError::Invalid {
            path: path.display().to_string(),
            reason: error.to_string(),
        })
    }
}

/// A device id unique to the key: the site, then the first 8 hex digits of the key's fingerprint.
/// A reinstalled kiosk, with a new key, is a new device, and its old records stay distinct.
pub fn device_id(site: &SiteId, key: &PublicKey) -> DeviceId {
    let fingerprint: String = key
        .fingerprint()
        .chars()
        .filter(|c| *c != '-')
        .take(8)
        .collect();
    let site: String = site
        .as_str()
        .chars()
        .take(proto::limits::ID_CHARS_MAX - 9)
        .collect();
    DeviceId::parse(&format!("{site}-{fingerprint}"))
        .expect("site id characters and hex digits form a device id")
}

/// Writes a new file and syncs it and its directory, so a power cut leaves either no file or the
/// whole file.
fn write_new_durably(path: &Path, bytes: &[u8]) -> Result<(), ConfigError> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(io(path))?;
    file.write_all(bytes).map_err(io(path))?;
    file.sync_all().map_err(io(path))?;
    if let Some(dir) = path.parent() {
        fs::File::open(dir)
            .and_then(|dir| dir.sync_all())
            .map_err(io(dir))?;
    }
    Ok(())
}
