//! `POST /api/v1/transfers`: a `kiosk export` file brought by hand, ingested as the kiosk's own
//! uploads would be (`crate::transfer`).

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::Json;
use proto::api::ErrorCode;
use serde::Serialize;

use super::openapi::{BadRequest, NotFound, TooLarge, UserErrors};
use super::{Failure, people};
use crate::limits::TRANSFER_BYTES_MAX;
use crate::manage::FINANCE;
use crate::state::SharedApp;
use crate::store::Store;
use crate::transfer::{self, TransferError};

pub const TRANSFER_PATH: &str = "/api/v1/transfers";

/// What a transfer did.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TransferView {
    pub device: String,
    /// The highest `seq` up to which the back-office holds every record of the kiosk.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acknowledged: Option<u64>,
    pub stored: u32,
    pub duplicates: u32,
    pub quarantined: u32,
}

/// Ingests a kiosk's export file brought by hand, as the kiosk's own uploads would be.
///
/// The body is the file `kiosk export` wrote: JSON Lines, one signed record a line, all of one
/// kiosk. Records already held count as duplicates, and so do the same records when the kiosk
/// later uploads them itself. Roles: finance, admin.
// Who asks is checked first: the body, up to [`TRANSFER_BYTES_MAX`], is read only for them.
#[utoipa::path(
    post,
    path = "/api/v1/transfers",
    tag = "kiosks",
    request_body(
        content = String,
        content_type = "application/jsonl",
        description = "The export file: one `SignedRecord` (JSON) a line."
    ),
    security(("bearer" = []), ("basic" = [])),
    responses(
        (status = 200, description = "What was stored.", body = TransferView),
        BadRequest, NotFound, TooLarge, UserErrors,
    )
)]
pub async fn upload<S: Store>(
    State(app): State<SharedApp<S>>,
    request: Request,
) -> Result<Json<TransferView>, Failure> {
    let (parts, body) = request.into_parts();
    let actor = people::actor_with(&app, &parts.headers, FINANCE).await?;
    let body = axum::body::to_bytes(body, TRANSFER_BYTES_MAX)
        .await
        .map_err(|_| {
            Failure::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                ErrorCode::BodyTooLarge,
                format!("a transfer is at most {TRANSFER_BYTES_MAX} bytes, sent whole"),
            )
        })?;
    let text = std::str::from_utf8(&body)
        .map_err(|_| Failure::bad_request("a transfer is UTF-8 JSON Lines"))?;
    let parsed = transfer::parse(text).map_err(failure)?;
    let device = parsed.device.to_string();
    let outcome = transfer::ingest(&app.store, &actor, parsed, app.clock.now())
        .await
        .map_err(failure)?;
    Ok(Json(TransferView {
        device,
        acknowledged: outcome.acknowledged.map(proto::Seq::get),
        stored: outcome.stored,
        duplicates: outcome.duplicates,
        quarantined: outcome.quarantined,
    }))
}

fn failure(error: TransferError) -> Failure {
    match error {
        TransferError::Refused(error) => Failure::from(error),
        TransferError::UnknownDevice(_) => Failure::new(
            StatusCode::NOT_FOUND,
            ErrorCode::NotFound,
            error.to_string(),
        ),
        TransferError::RevokedDevice(_) => Failure::new(
            StatusCode::FORBIDDEN,
            ErrorCode::Forbidden,
            error.to_string(),
        ),
        TransferError::TooLarge | TransferError::TooManyRecords => Failure::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::BodyTooLarge,
            error.to_string(),
        ),
        TransferError::Empty | TransferError::Line { .. } | TransferError::MixedDevices { .. } => {
            Failure::bad_request(error.to_string())
        }
    }
}
