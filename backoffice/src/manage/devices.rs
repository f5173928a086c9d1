//! Kiosks: registered with their public key by city IT, revoked when lost or replaced (their
//! stored records stay).

use proto::{DeviceId, Timestamp};

use super::{ADMIN, Actor, ManageError};
use crate::store::{Device, DeviceEntry, DeviceRows, Mode, Store, finish};

/// Registers a kiosk and its public key, at `at`.
pub async fn add<S: Store>(
    store: &S,
    actor: &Actor,
    device: &Device,
    at: Timestamp,
) -> Result<(), ManageError> {
    actor.require(ADMIN)?;
    let mut transaction = store.begin(Mode::Write).await?;
    let result = transaction.insert_device(device, at).await;
    Ok(finish(transaction, result).await?)
}

/// Refuses the kiosk from `at` on; its stored records stay.
pub async fn revoke<S: Store>(
    store: &S,
    actor: &Actor,
    device: &DeviceId,
    at: Timestamp,
) -> Result<(), ManageError> {
    actor.require(ADMIN)?;
    let mut transaction = store.begin(Mode::Write).await?;
    let result = transaction.revoke_device(device, at).await;
    Ok(finish(transaction, result).await?)
}

/// Every registered kiosk, revoked or not, by id; city IT.
pub async fn list<S: Store>(store: &S, actor: &Actor) -> Result<Vec<DeviceEntry>, ManageError> {
    actor.require(ADMIN)?;
    Ok(store.begin(Mode::Single).await?.devices().await?)
}
