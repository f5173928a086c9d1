//! Kiosks: registered with their public key by city IT, revoked when lost or replaced (their
//! stored records stay).

use proto::{DeviceId, Timestamp};

use super::{ADMIN, Actor, ManageError, in_transaction, read_as};
use crate::store::{Device, DeviceEntry, DeviceRows, Mode, Store};

/// Registers a kiosk and its public key, at `at`.
pub async fn add<S: Store>(
    store: &S,
    actor: &Actor,
    device: &Device,
    at: Timestamp,
) -> Result<(), ManageError> {
    actor.require(ADMIN)?;
    Ok(in_transaction(store, Mode::Write, async |transaction| {
        transaction.insert_device(device, at).await
    })
    .await?)
}

/// Refuses the kiosk from `at` on; its stored records stay.
pub async fn revoke<S: Store>(
    store: &S,
    actor: &Actor,
    device: &DeviceId,
    at: Timestamp,
) -> Result<(), ManageError> {
    actor.require(ADMIN)?;
    Ok(in_transaction(store, Mode::Write, async |transaction| {
        transaction.revoke_device(device, at).await
    })
    .await?)
}

/// Every registered kiosk, revoked or not, by id; city IT.
pub async fn list<S: Store>(store: &S, actor: &Actor) -> Result<Vec<DeviceEntry>, ManageError> {
    read_as(store, actor, ADMIN, async |rows| rows.devices().await).await
}
