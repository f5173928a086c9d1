//! Kiosks as the back-office registered them, the nonces of their signed requests, and the
//! report each sends of itself with every upload.

use std::future::Future;

use proto::api::KioskReport;
use proto::{DeviceId, PublicKey, SiteId, Timestamp};

use super::{corrupt, parse_site, parse_timestamp};
use crate::store::StoreError;
use crate::store::sql::{Dialect, Row, Sql, values};

/// A kiosk registered with the back-office.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Device {
    /// The kiosk's name, as it signs its records and requests.
    pub id: DeviceId,
    pub site: SiteId,
    pub key: PublicKey,
    /// When it was revoked; a revoked kiosk is refused.
    pub revoked_at: Option<Timestamp>,
}

/// A registered kiosk and when it was registered: what a reconciliation needs to know which
/// kiosks were expected to trade on a day.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceEntry {
    pub device: Device,
    pub added_at: Timestamp,
}

/// What the back-office knows of a kiosk's last sync.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KioskStatus {
    pub device: DeviceId,
    pub last_seen: Timestamp,
    pub report: KioskReport,
}

pub trait DeviceRows: Sql {
    /// Registers a kiosk; [`StoreError::AlreadyExists`] if its name is taken.
    fn insert_device(
        &mut self,
        device: &Device,
        added_at: Timestamp,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.insert_new(
            "INSERT INTO devices (id, site, public_key, added_at, revoked_at)
             VALUES ($1, $2, $3, $4, $5)",
            values![
                device.id.as_str(),
                device.site.as_str(),
                device.key.as_bytes().as_slice(),
                added_at.unix_ms(),
                device.revoked_at.map(Timestamp::unix_ms)
            ],
            "device",
            device.id.as_str(),
        )
    }

    /// Marks a kiosk revoked from `at` (a second revocation keeps the first moment).
    fn revoke_device(
        &mut self,
        id: &DeviceId,
        at: Timestamp,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.update_existing(
            "UPDATE devices SET revoked_at = COALESCE(revoked_at, $1) WHERE id = $2",
            values![at.unix_ms(), id.as_str()],
            "device",
            id.as_str(),
        )
    }

    fn device(
        &mut self,
        id: &DeviceId,
    ) -> impl Future<Output = Result<Option<Device>, StoreError>> + Send {
        async move {
            let entry = self
                .query_optional(
                    "SELECT id, site, public_key, revoked_at, added_at FROM devices WHERE id = $1",
                    values![id.as_str()],
                    read_device_entry,
                )
                .await?;
            Ok(entry.map(|entry| entry.device))
        }
    }

    /// Every registered kiosk, revoked or not, by id.
    fn devices(&mut self) -> impl Future<Output = Result<Vec<DeviceEntry>, StoreError>> + Send {
        self.query(
            "SELECT id, site, public_key, revoked_at, added_at FROM devices ORDER BY id",
            Vec::new(),
            read_device_entry,
        )
    }

    /// Waits for, then holds until the end of the transaction, the kiosk's turn to write its
    /// chain: instances racing the same kiosk's uploads take turns. SQLite's writers take turns
    /// anyway.
    fn lock_device(
        &mut self,
        id: &DeviceId,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        async move {
            if self.dialect() == Dialect::Postgres {
                self.execute(
                    "SELECT id FROM devices WHERE id = $1 FOR UPDATE",
                    values![id.as_str()],
                )
                .await?;
            }
            Ok(())
        }
    }

    /// Forgets the kiosk's nonces of requests signed before `before`.
    fn forget_nonces(
        &mut self,
        device: &DeviceId,
        before: Timestamp,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.write(
            "DELETE FROM nonces WHERE device = $1 AND request_at < $2",
            values![device.as_str(), before.unix_ms()],
        )
    }

    /// Remembers a nonce; false when the kiosk used it before.
    fn insert_nonce(
        &mut self,
        device: &DeviceId,
        nonce: &str,
        request_at: Timestamp,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        async move {
            let inserted = self
                .execute(
                    "INSERT INTO nonces (device, nonce, request_at) VALUES ($1, $2, $3)
                     ON CONFLICT DO NOTHING",
                    values![device.as_str(), nonce, request_at.unix_ms()],
                )
                .await?;
            Ok(inserted == 1)
        }
    }

    /// Keeps the kiosk's latest report of itself.
    fn save_kiosk_report(
        &mut self,
        device: &DeviceId,
        report: &KioskReport,
        received_at: Timestamp,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        async move {
            let report = super::to_json(report)?;
            self.write(
                "INSERT INTO kiosks (device, last_seen, report) VALUES ($1, $2, $3)
                 ON CONFLICT (device) DO UPDATE SET last_seen = $2, report = $3",
                values![device.as_str(), received_at.unix_ms(), report],
            )
            .await
        }
    }

    fn kiosk_statuses(
        &mut self,
    ) -> impl Future<Output = Result<Vec<KioskStatus>, StoreError>> + Send {
        self.query(
            "SELECT device, last_seen, report FROM kiosks ORDER BY device",
            Vec::new(),
            |row| {
                Ok(KioskStatus {
                    device: DeviceId::parse(&row.text(0)?)
                        .map_err(|error| corrupt("device", error))?,
                    last_seen: parse_timestamp(row.int(1)?)?,
                    report: super::parse_json("kiosk report", &row.text(2)?)?,
                })
            },
        )
    }
}

impl<T: Sql> DeviceRows for T {}

fn read_device_entry(row: &dyn Row) -> Result<DeviceEntry, StoreError> {
    Ok(DeviceEntry {
        device: Device {
            id: DeviceId::parse(&row.text(0)?).map_err(|error| corrupt("device", error))?,
            site: parse_site(&row.text(1)?)?,
            key: PublicKey::from_bytes(&row.bytes(2)?)
                .map_err(|error| corrupt("public key", error))?,
            revoked_at: row.opt_int(3)?.map(parse_timestamp).transpose()?,
        },
        added_at: parse_timestamp(row.int(4)?)?,
    })
}
