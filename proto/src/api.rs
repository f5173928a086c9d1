//! The kiosk-to-back-office API: request and response bodies, and how a kiosk signs a request.

use serde::{Deserialize, Serialize};

use crate::crypto::{Digest, PublicKey, Signature, SigningKey};
use crate::ids::{DeviceId, Seq, SnapshotVersion, Text, Timestamp};
use crate::limits::{REQUEST_CLOCK_SKEW_MS_MAX, REQUEST_NONCE_CHARS_MAX, UPLOAD_BATCH_RECORDS_MAX};
use crate::record::SignedRecord;

/// `POST /api/v1/kiosk/records`: a batch of records, in `seq` order, with the kiosk's state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UploadRequest {
    /// At most [`UPLOAD_BATCH_RECORDS_MAX`].
    #[cfg_attr(feature = "openapi", schema(max_items = 500))]
    pub records: Vec<SignedRecord>,
    pub status: KioskReport,
}

impl UploadRequest {
    pub fn check(&self) -> Result<(), ApiError> {
        if self.records.len() > UPLOAD_BATCH_RECORDS_MAX {
            return Err(ApiError::new(
                ErrorCode::BatchTooLarge,
                format!(
                    "{} records in one batch, at most {UPLOAD_BATCH_RECORDS_MAX}",
                    self.records.len()
                ),
            ));
        }
        Ok(())
    }
}

/// What a kiosk reports of itself on every sync, for the fleet view.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct KioskReport {
    pub software_version: Text,
    pub reader: ReaderState,
    pub unsynced_records: u64,
    pub kiosk_time: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_version: Option<SnapshotVersion>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ReaderState {
    Ready,
    Unavailable,
}

/// The answer to an upload.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UploadResponse {
    /// The highest `seq` up to which the back-office holds every record of this kiosk; none when
    /// it holds none. The kiosk may forget nothing, but it stops re-sending up to here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acknowledged: Option<Seq>,
    /// Records stored by this request.
    pub stored: u32,
    /// Records already held, identical: harmless re-uploads.
    pub duplicates: u32,
    /// Records refused and kept aside as evidence (fork, bad signature).
    pub quarantined: u32,
    /// The back-office's clock, so the kiosk can measure its drift.
    pub backoffice_time: Timestamp,
}

/// The body of every 4xx and 5xx answer of the API.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
#[error("{code:?}: {message}")]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            message: message.into(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    BadRequest,
    BatchTooLarge,
    BodyTooLarge,
    Unauthenticated,
    Replayed,
    Forbidden,
    NotFound,
    Conflict,
    Unavailable,
}

/// Header names of a signed kiosk request.
pub const HEADER_DEVICE: &str = "x-canteen-device";
pub const HEADER_TIMESTAMP: &str = "x-canteen-timestamp";
pub const HEADER_NONCE: &str = "x-canteen-nonce";
pub const HEADER_SIGNATURE: &str = "x-canteen-signature";

/// The parts of a kiosk request that its signature covers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestToSign<'a> {
    pub device: &'a DeviceId,
    pub method: &'a str,
    /// Path and query, as sent.
    pub path: &'a str,
    pub at: Timestamp,
    /// Unique per request from this device (the back-office remembers recent ones).
    pub nonce: &'a str,
    pub body: &'a [u8],
}

/// A signed request was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RequestAuthError {
    #[error(
        "request timestamp is more than {REQUEST_CLOCK_SKEW_MS_MAX} ms from the server's clock"
    )]
    ClockSkew,
    #[error("request nonce must be 16 to {REQUEST_NONCE_CHARS_MAX} letters or digits")]
    Nonce,
    #[error("request signature does not verify")]
    Signature,
}

impl RequestToSign<'_> {
    /// The exact bytes signed: one field a line, the body as its SHA-256.
    pub fn signing_bytes(&self) -> Vec<u8> {
        format!(
            "canteen-request-v1\n{}\n{}\n{}\n{}\n{}\n{}",
            self.device,
            self.method,
            self.path,
            self.at,
            self.nonce,
            Digest::of(self.body)
        )
        .into_bytes()
    }

    pub fn sign(&self, key: &SigningKey) -> Signature {
        key.sign(&self.signing_bytes())
    }

    /// Checks the nonce's form, the timestamp against `now`, and the signature. Whether the nonce
    /// was seen before is the server's to check.
    pub fn verify(
        &self,
        key: &PublicKey,
        signature: &Signature,
        now: Timestamp,
    ) -> Result<(), RequestAuthError> {
        let nonce_ok = (16..=REQUEST_NONCE_CHARS_MAX).contains(&self.nonce.len())
            && self.nonce.bytes().all(|b| b.is_ascii_alphanumeric());
        if !nonce_ok {
            return Err(RequestAuthError::Nonce);
        }
        let skew = self.at.unix_ms().abs_diff(now.unix_ms());
        if skew > REQUEST_CLOCK_SKEW_MS_MAX.unsigned_abs() {
            return Err(RequestAuthError::ClockSkew);
        }
        if !key.verify(&self.signing_bytes(), signature) {
            return Err(RequestAuthError::Signature);
        }
        Ok(())
    }
}
