//! What kiosks ask of the back-office, as use cases: who a signed request comes from, its
//! upload (records and report, in one transaction), and the fleet as the kiosks last reported
//! it.
//!
//! A request is a kiosk's when the kiosk is registered and not revoked, its signature over the
//! request verifies (`proto::api::RequestToSign`), its timestamp is within the clock skew bound,
//! and its nonce was never used by that kiosk. Nonces older than the skew bound are forgotten:
//! such a request is refused for its timestamp before its nonce is looked at.

use proto::api::{KioskReport, RequestAuthError, RequestToSign};
use proto::{DeviceId, Signature, SignedRecord, Timestamp};

use crate::ingest::IngestOutcome;
use crate::manage::{Actor, FINANCE, ManageError, in_transaction, read_as};
use crate::store::{
    Device, DeviceEntry, DeviceRows, KioskStatus, Mode, Store, StoreError, Transaction,
};

/// Why a signed request was refused, as counted in the metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Refusal {
    MissingHeader,
    UnknownDevice,
    RevokedDevice,
    ClockSkew,
    Nonce,
    Signature,
    Replayed,
}

impl Refusal {
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::MissingHeader => "missing_header",
            Refusal::UnknownDevice => "unknown_device",
            Refusal::RevokedDevice => "revoked_device",
            Refusal::ClockSkew => "clock_skew",
            Refusal::Nonce => "nonce",
            Refusal::Signature => "signature",
            Refusal::Replayed => "replayed",
        }
    }
}

/// A signed request that was refused, or could not be checked.
#[derive(Debug)]
pub enum AuthError {
    Refused(Refusal),
    Store(StoreError),
}

impl From<StoreError> for AuthError {
    fn from(error: StoreError) -> AuthError {
        AuthError::Store(error)
    }
}

/// A kiosk's request as it arrived: its four signature headers (none when missing) and what
/// they sign.
#[derive(Clone, Copy, Debug)]
pub struct SignedRequest<'a> {
    pub device: Option<&'a str>,
    pub timestamp: Option<&'a str>,
    pub nonce: Option<&'a str>,
    pub signature: Option<&'a str>,
    pub method: &'a str,
    pub path_and_query: &'a str,
    pub body: &'a [u8],
}

/// The kiosk a request comes from. Nothing is stored for a refused request but the nonce of
/// one that verified.
pub async fn authenticate<S: Store>(
    store: &S,
    request: SignedRequest<'_>,
    now: Timestamp,
) -> Result<Device, AuthError> {
    let missing = || AuthError::Refused(Refusal::MissingHeader);
    let device = request.device.ok_or_else(missing)?;
    let device = DeviceId::parse(device).map_err(|_| missing())?;
    let at = Timestamp::parse(request.timestamp.ok_or_else(missing)?).map_err(|_| missing())?;
    let nonce = request.nonce.ok_or_else(missing)?;
    let signature = Signature::from_base64(request.signature.ok_or_else(missing)?)
        .map_err(|_| AuthError::Refused(Refusal::Signature))?;
    in_transaction(store, Mode::Write, async |transaction| {
        let Some(device) = transaction.device(&device).await? else {
            return Err(AuthError::Refused(Refusal::UnknownDevice));
        };
        if device.revoked_at.is_some() {
            return Err(AuthError::Refused(Refusal::RevokedDevice));
        }
        let signed = RequestToSign {
            device: &device.id,
            method: request.method,
            path: request.path_and_query,
            at,
            nonce,
            body: request.body,
        };
        signed
            .verify(&device.key, &signature, now)
            .map_err(|error| {
                AuthError::Refused(match error {
                    RequestAuthError::ClockSkew => Refusal::ClockSkew,
                    RequestAuthError::Nonce => Refusal::Nonce,
                    RequestAuthError::Signature => Refusal::Signature,
                })
            })?;
        match remember_nonce_in(transaction, &device.id, nonce, at, now).await? {
            NonceOutcome::Fresh => Ok(device),
            NonceOutcome::Replayed => Err(AuthError::Refused(Refusal::Replayed)),
        }
    })
    .await
}

/// Whether a signed request's nonce was new.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NonceOutcome {
    Fresh,
    Replayed,
}

/// Remembers a signed request's nonce; a nonce seen before from the same kiosk is a replay.
/// `request_at` is the request's signed timestamp: nonces older than the clock skew bound
/// before `now` are forgotten, since such a request is refused anyway.
pub async fn remember_nonce<S: Store>(
    store: &S,
    device: &DeviceId,
    nonce: &str,
    request_at: Timestamp,
    now: Timestamp,
) -> Result<NonceOutcome, StoreError> {
    in_transaction(store, Mode::Write, async |transaction| {
        remember_nonce_in(transaction, device, nonce, request_at, now).await
    })
    .await
}

async fn remember_nonce_in<X: Transaction>(
    transaction: &mut X,
    device: &DeviceId,
    nonce: &str,
    request_at: Timestamp,
    now: Timestamp,
) -> Result<NonceOutcome, StoreError> {
    let forget_before = Timestamp::from_unix_ms(
        now.unix_ms()
            .saturating_sub(proto::limits::REQUEST_CLOCK_SKEW_MS_MAX),
    )
    .unwrap_or(now);
    transaction.forget_nonces(device, forget_before).await?;
    if transaction.insert_nonce(device, nonce, request_at).await? {
        Ok(NonceOutcome::Fresh)
    } else {
        Ok(NonceOutcome::Replayed)
    }
}

/// Stores an upload's records and the kiosk's report of itself, in one transaction.
pub async fn upload<S: Store>(
    store: &S,
    device: &Device,
    records: Vec<SignedRecord>,
    report: &KioskReport,
    received_at: Timestamp,
) -> Result<IngestOutcome, StoreError> {
    crate::ingest::ingest_with_report(store, device, records, Some(report), received_at).await
}

/// The fleet as last reported; finance and city IT.
pub async fn fleet<S: Store>(store: &S, actor: &Actor) -> Result<Vec<KioskStatus>, ManageError> {
    read_as(store, actor, FINANCE, async |rows| {
        rows.kiosk_statuses().await
    })
    .await
}

/// Every registered kiosk with its last report, if any; finance and city IT.
pub async fn fleet_view<S: Store>(
    store: &S,
    actor: &Actor,
) -> Result<Vec<(DeviceEntry, Option<KioskStatus>)>, ManageError> {
    actor.require(FINANCE)?;
    in_transaction(store, Mode::Read, async |transaction| {
        let devices = transaction.devices().await?;
        let mut statuses: std::collections::BTreeMap<DeviceId, KioskStatus> = transaction
            .kiosk_statuses()
            .await?
            .into_iter()
            .map(|status| (status.device.clone(), status))
            .collect();
        Ok(devices
            .into_iter()
            .map(|entry| {
                let status = statuses.remove(&entry.device.id);
                (entry, status)
            })
            .collect())
    })
    .await
}
