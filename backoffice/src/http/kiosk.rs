//! The kiosk's endpoints, each a signed request: uploading records and fetching snapshots.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, OriginalUri, Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Json;
use proto::SnapshotVersion;
use proto::api::{ErrorCode, UploadRequest, UploadResponse};
use proto::limits::UPLOAD_BODY_BYTES_MAX;
use proto::snapshot::Snapshot;

use super::Failure;
use super::openapi::{KioskErrors, KioskHeaders};
use crate::kiosks::{self, AuthError};
use crate::state::SharedApp;
use crate::store::{Device, Store};

pub const RECORDS_PATH: &str = "/api/v1/kiosk/records";
pub const SNAPSHOT_PATH: &str = "/api/v1/kiosk/snapshot";

/// A kiosk fetches its site's snapshot, whole or as a delta.
///
/// Accounts with balances, pupils, cards, the city-wide hotlist, tariffs, services, staff
/// credentials (Argon2 PIN hashes) and kiosk settings. Without `since`, everything; with
/// `since=V`, what changed after version V (blocked cards listed under `removed`); a `since`
/// newer than the back-office's version gets a full snapshot. Callers: enrolled kiosks, with a
/// signed request; the snapshot is of the kiosk's own site.
#[utoipa::path(
    get,
    path = "/api/v1/kiosk/snapshot",
    tag = "kiosks",
    params(
        KioskHeaders,
        ("since" = Option<SnapshotVersion>, Query, description = "The version the kiosk holds; \
            without it, a full snapshot. The only query accepted."),
    ),
    security(("kiosk_signature" = [])),
    responses(
        (status = 200, description = "The snapshot; `since` is set for a delta only.", body = Snapshot),
        KioskErrors,
    )
)]
pub async fn snapshot<S: Store>(
    State(app): State<SharedApp<S>>,
    OriginalUri(uri): OriginalUri,
    SignedBy { device, .. }: SignedBy,
) -> Result<Json<Snapshot>, Failure> {
    let since = parse_since(uri.query())?;
    let snapshot =
        crate::snapshot::snapshot(&app.store, &device.site, Some(&device.id), since).await?;
    Ok(Json(snapshot))
}

/// The query of a snapshot request: nothing, or `since=V` with `V` a version.
fn parse_since(query: Option<&str>) -> Result<Option<SnapshotVersion>, Failure> {
    let Some(query) = query.filter(|query| !query.is_empty()) else {
        return Ok(None);
    };
    let version = query
        .strip_prefix("since=")
        .and_then(|version| version.parse::<u64>().ok())
        .ok_or_else(|| {
            Failure::bad_request("the only query is since=V, with V a snapshot version")
        })?;
    Ok(Some(SnapshotVersion(version)))
}

/// A kiosk uploads a batch of its signed records with its report of itself.
///
/// Each record is stored once; re-uploads count as duplicates; forks and forged records are
/// quarantined; records after a gap are held until it fills. Callers: enrolled kiosks, with a
/// signed request, for their own records only.
#[utoipa::path(
    post,
    path = "/api/v1/kiosk/records",
    tag = "kiosks",
    params(KioskHeaders),
    request_body = UploadRequest,
    security(("kiosk_signature" = [])),
    responses(
        (status = 200, description = "What was stored, the highest contiguous seq held, and \
            the back-office's time.", body = UploadResponse),
        KioskErrors,
    )
)]
pub async fn upload_records<S: Store>(
    State(app): State<SharedApp<S>>,
    SignedBy { device, body }: SignedBy,
) -> Result<Json<UploadResponse>, Failure> {
    let request: UploadRequest = serde_json::from_slice(&body)
        .map_err(|error| Failure::bad_request(format!("upload body: {error}")))?;
    request.check().map_err(|error| Failure {
        status: StatusCode::PAYLOAD_TOO_LARGE,
        error,
    })?;
    let received_at = app.clock.now();
    let outcome = kiosks::upload(
        &app.store,
        &device,
        request.records,
        &request.status,
        received_at,
    )
    .await?;
    app.metrics.ingested(&device.id, &outcome, received_at);
    Ok(Json(UploadResponse {
        acknowledged: outcome.acknowledged,
        stored: outcome.stored,
        duplicates: outcome.duplicates,
        quarantined: outcome.quarantined,
        backoffice_time: app.clock.now(),
    }))
}

/// A kiosk's request, authenticated: the kiosk it comes from and the body it signed. Taking it
/// reads the body within the router's limit and checks the signature, so a kiosk handler sees
/// only requests of enrolled kiosks.
#[derive(Debug)]
pub struct SignedBy {
    pub device: Device,
    pub body: Bytes,
}

impl<S: Store> FromRequest<SharedApp<S>> for SignedBy {
    type Rejection = Failure;

    async fn from_request(request: Request, app: &SharedApp<S>) -> Result<SignedBy, Failure> {
        let method = request.method().clone();
        let headers = request.headers().clone();
        // The path the kiosk signed, as sent, even where the router is nested.
        let uri = match request.extensions().get::<OriginalUri>() {
            Some(OriginalUri(uri)) => uri.clone(),
            None => request.uri().clone(),
        };
        let body = Bytes::from_request(request, app)
            .await
            .map_err(body_failure)?;
        let device = authenticate(app, &method, &uri, &headers, &body).await?;
        Ok(SignedBy { device, body })
    }
}

async fn authenticate<S: Store>(
    app: &SharedApp<S>,
    method: &Method,
    uri: &axum::http::Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Device, Failure> {
    let path = uri
        .path_and_query()
        .map_or(uri.path(), |path| path.as_str());
    let request = super::auth::signed_request(headers, method.as_str(), path, body);
    kiosks::authenticate(&app.store, request, app.clock.now())
        .await
        .map_err(|error| {
            if let AuthError::Refused(refusal) = &error {
                app.metrics.refused(refusal.as_str());
            }
            Failure::from(error)
        })
}

fn body_failure(rejection: BytesRejection) -> Failure {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return Failure::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::BodyTooLarge,
            format!("request body larger than {UPLOAD_BODY_BYTES_MAX} bytes"),
        );
    }
    Failure::bad_request(rejection.body_text())
}

#[cfg(test)]
mod tests {
    use proto::SnapshotVersion;

    use super::parse_since;

    fn check(query: Option<&str>, expected: Result<Option<u64>, ()>) {
        let parsed = parse_since(query)
            .map(|since| since.map(|SnapshotVersion(version)| version))
            .map_err(|_| ());
        assert_eq!(parsed, expected, "{query:?}");
    }

    #[test]
    fn snapshot_queries() {
        check(None, Ok(None));
        check(Some(""), Ok(None));
        check(Some("since=0"), Ok(Some(0)));
        check(Some("since=18446744073709551615"), Ok(Some(u64::MAX)));
        check(Some("since=18446744073709551616"), Err(()));
        check(Some("since=-1"), Err(()));
        check(Some("since="), Err(()));
        check(Some("since=1&since=2"), Err(()));
        check(Some("version=3"), Err(()));
        check(Some("since=1;DROP TABLE accounts"), Err(()));
    }
}
