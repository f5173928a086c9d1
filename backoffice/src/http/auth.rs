//! Kiosk requests are signed with the kiosk's key: device, method, path, timestamp, nonce and
//! the body's hash (`proto::api::RequestToSign`). A nonce is accepted once per kiosk.

use axum::http::{HeaderMap, StatusCode};
use proto::api::{
    ErrorCode, HEADER_DEVICE, HEADER_NONCE, HEADER_SIGNATURE, HEADER_TIMESTAMP, RequestAuthError,
    RequestToSign,
};
use proto::{DeviceId, Signature, Timestamp};

use super::Failure;
use crate::store::{Device, NonceOutcome, Store, StoreError};

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

/// Checks a kiosk's signed request and returns the kiosk. Nothing is stored for a refused
/// request but the nonce of one that verified.
pub async fn authenticate<S: Store>(
    store: &S,
    method: &str,
    path_and_query: &str,
    headers: &HeaderMap,
    body: &[u8],
    now: Timestamp,
) -> Result<Device, AuthError> {
    let device = header(headers, HEADER_DEVICE)?;
    let device = DeviceId::parse(device).map_err(|_| refuse(Refusal::MissingHeader))?;
    let at = Timestamp::parse(header(headers, HEADER_TIMESTAMP)?)
        .map_err(|_| refuse(Refusal::MissingHeader))?;
    let nonce = header(headers, HEADER_NONCE)?;
    let signature = Signature::from_base64(header(headers, HEADER_SIGNATURE)?)
        .map_err(|_| refuse(Refusal::Signature))?;
    let Some(device) = store.device(&device).await.map_err(store_failure)? else {
        return Err(refuse(Refusal::UnknownDevice));
    };
    if device.revoked_at.is_some() {
        return Err(refuse(Refusal::RevokedDevice));
    }
    let request = RequestToSign {
        device: &device.id,
        method,
        path: path_and_query,
        at,
        nonce,
        body,
    };
    request
        .verify(&device.key, &signature, now)
        .map_err(|error| {
            refuse(match error {
                RequestAuthError::ClockSkew => Refusal::ClockSkew,
                RequestAuthError::Nonce => Refusal::Nonce,
                RequestAuthError::Signature => Refusal::Signature,
            })
        })?;
    match store
        .remember_nonce(&device.id, nonce, at, now)
        .await
        .map_err(store_failure)?
    {
        NonceOutcome::Fresh => Ok(device),
        NonceOutcome::Replayed => Err(refuse(Refusal::Replayed)),
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Result<&'a str, AuthError> {
    headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .ok_or_else(|| refuse(Refusal::MissingHeader))
}

fn store_failure(error: StoreError) -> AuthError {
    AuthError::Store(error)
}

fn refuse(refusal: Refusal) -> AuthError {
    AuthError::Refused(refusal)
}

/// A signed request that was refused, or could not be checked.
#[derive(Debug)]
pub enum AuthError {
    Refused(Refusal),
    Store(StoreError),
}

impl From<AuthError> for Failure {
    fn from(error: AuthError) -> Failure {
        match error {
            AuthError::Refused(refusal) => refusal.failure(),
            AuthError::Store(error) => Failure::from(error),
        }
    }
}

impl Refusal {
    fn failure(self) -> Failure {
        let (status, code, message) = match self {
            Refusal::MissingHeader => (
                StatusCode::UNAUTHORIZED,
                ErrorCode::Unauthenticated,
                "a signed kiosk request needs the device, timestamp, nonce and signature headers",
            ),
            Refusal::UnknownDevice => (
                StatusCode::UNAUTHORIZED,
                ErrorCode::Unauthenticated,
                "unknown device",
            ),
            Refusal::RevokedDevice => (
                StatusCode::FORBIDDEN,
                ErrorCode::Forbidden,
                "this device is revoked",
            ),
            Refusal::ClockSkew => (
                StatusCode::UNAUTHORIZED,
                ErrorCode::Unauthenticated,
                "request timestamp too far from the server's clock",
            ),
            Refusal::Nonce => (
                StatusCode::UNAUTHORIZED,
                ErrorCode::Unauthenticated,
                "request nonce must be 16 to 64 letters or digits",
            ),
            Refusal::Signature => (
                StatusCode::UNAUTHORIZED,
                ErrorCode::Unauthenticated,
                "request signature does not verify",
            ),
            Refusal::Replayed => (
                StatusCode::UNAUTHORIZED,
                ErrorCode::Replayed,
                "this request was already received",
            ),
        };
        Failure::new(status, code, message)
    }
}
