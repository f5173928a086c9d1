//! The HTTP side of a kiosk's signed request: its four headers read into a
//! [`kiosks::SignedRequest`](crate::kiosks::SignedRequest), and a refusal answered with its
//! status and reason.

use axum::http::{HeaderMap, StatusCode};
use proto::api::{ErrorCode, HEADER_DEVICE, HEADER_NONCE, HEADER_SIGNATURE, HEADER_TIMESTAMP};

use super::Failure;
use crate::kiosks::{AuthError, Refusal, SignedRequest};

/// The request as [`crate::kiosks::authenticate`] checks it.
pub fn signed_request<'a>(
    headers: &'a HeaderMap,
    method: &'a str,
    path_and_query: &'a str,
    body: &'a [u8],
) -> SignedRequest<'a> {
    let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    SignedRequest {
        device: header(HEADER_DEVICE),
        timestamp: header(HEADER_TIMESTAMP),
        nonce: header(HEADER_NONCE),
        signature: header(HEADER_SIGNATURE),
        method,
        path_and_query,
        body,
    }
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
