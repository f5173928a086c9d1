//! The shared language of the canteen kiosk and back-office. No I/O, no clock, no randomness of
//! its own: callers pass time and random sources in.
//!
//! - [`money`]: [`Cents`], integer euro cents with checked arithmetic.
//! - [`ids`]: identifiers, card UIDs, sequence numbers, dates and timestamps that parse rather
//!   than validate.
//! - [`crypto`]: Ed25519 keys and signatures through `ring`, SHA-256 digests, PEM public keys.
//! - [`record`]: the signed record of the audit format and every record kind.
//! - [`chain`]: writing a kiosk's hash chain and verifying one with every defect named.
//! - [`rules`]: what a record does to balances and the day-close line it counts on, the rules
//!   the kiosk and the back-office both apply.
//! - [`snapshot`]: what the back-office sends a kiosk, and its consistency checks.
//! - [`api`]: kiosk-to-back-office request and response bodies and request signing.
//! - [`limits`]: every bound, named.
//! - `openapi` (with the `openapi` feature): the JSON Schemas of the types that parse.

/// `$type`'s JSON Schema in the back-office's OpenAPI document is `$schema` (a function of
/// `openapi.rs`), for the types that parse rather than derive.
macro_rules! schema_from {
    ($type:ty, $schema:path) => {
        #[cfg(feature = "openapi")]
        impl utoipa::PartialSchema for $type {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                $schema().into()
            }
        }

        #[cfg(feature = "openapi")]
        impl utoipa::ToSchema for $type {}
    };
}

pub mod api;
pub mod chain;
pub mod crypto;
pub mod ids;
pub mod limits;
pub mod money;
#[cfg(feature = "openapi")]
pub mod openapi;
pub mod record;
pub mod rules;
pub mod snapshot;
#[cfg(feature = "tls")]
pub mod tls;

pub use chain::{
    ChainError, ChainHead, ChainReport, ChainVerifier, CheckedRecord, verify_anchored, verify_chain,
};
pub use crypto::{Digest, KeyError, PublicKey, Signature, SigningKey};
pub use ids::{
    AccountId, BracketId, CardUid, DeviceId, MealType, ParseError, PupilId, Seq, ServiceDate,
    ServiceId, SiteId, SnapshotVersion, StaffId, Text, Timestamp,
};
pub use money::Cents;
pub use record::{
    FORMAT_VERSION, Payload, Record, RecordBody, RecordError, RecordKind, SignedRecord,
};
