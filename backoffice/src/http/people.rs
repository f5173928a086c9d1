//! The endpoints of back-office users (staff, finance, admin, the payment provider): accounts,
//! money, pupils, cards, tariffs, services, staff, settings and monitoring. Each authenticates
//! its caller with the roles the use case admits and calls it; `manage` decides the rest (staff
//! act only within their own site).

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Json;
use base64::Engine as _;
use proto::api::ErrorCode;
use proto::record::TopUpMethod;
use proto::snapshot::{AccountState, Card, KioskSettings, Pupil, Service, Tariff};
use proto::{
    AccountId, CardUid, Cents, PupilId, ServiceId, SiteId, SnapshotVersion, StaffId, Text,
};
use serde::{Deserialize, Serialize};

use super::Failure;
use crate::manage::{self, Actor, accounts, people, sites, tokens};
use crate::sign_in::{self, Attempt, SignIn};
use crate::state::SharedApp;
use crate::store::Store;
use crate::users::{Role, User};

/// Every change answers with the snapshot version it made.
#[derive(Debug, Serialize, Deserialize)]
pub struct Changed {
    pub version: SnapshotVersion,
}

/// The answer to a money operation.
#[derive(Debug, Serialize, Deserialize)]
pub struct MoneyMoved {
    pub balance: Cents,
    pub version: SnapshotVersion,
    /// The same online payment was credited before; nothing changed.
    pub replayed: bool,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountRequest {
    pub overdraft_floor: Cents,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopUpRequest {
    pub amount: Cents,
    pub method: TopUpMethod,
    #[serde(default)]
    pub reference: Option<Text>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdjustmentRequest {
    /// Positive credits, negative debits.
    pub amount: Cents,
    pub reason: Text,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaymentRequest {
    /// The provider's payment reference: a payment is credited once per reference.
    pub reference: Text,
    pub account: AccountId,
    pub amount: Cents,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PupilRequest {
    pub site: SiteId,
    pub pupil: Pupil,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplaceCardRequest {
    pub new_uid: CardUid,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaffRequest {
    pub name: Text,
    /// 4 to 8 digits; only its Argon2 hash is kept.
    pub pin: String,
}

/// One anomaly for finance, as listed.
#[derive(Debug, Serialize, Deserialize)]
pub struct AnomalyView {
    pub device: String,
    pub seq: Option<u64>,
    pub reason: String,
    pub detail: String,
}

/// One kiosk of the fleet, as listed.
#[derive(Debug, Serialize, Deserialize)]
pub struct KioskView {
    pub device: String,
    pub last_seen: proto::Timestamp,
    pub report: proto::api::KioskReport,
}

/// The signed-in user, or a refusal: 401 without valid credentials, 403 without the role. A
/// machine client sends `Authorization: Bearer` with its API token; a person HTTP Basic with
/// their name and password, under the same lock-out as the web sign-in.
pub(super) async fn user_with<S: Store>(
    app: &SharedApp<S>,
    headers: &HeaderMap,
    roles: &[Role],
) -> Result<User, Failure> {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    let user = match authorization.strip_prefix("Bearer ") {
        Some(token) => token_user(app, token).await?,
        None => password_user(app, headers, authorization).await?,
    };
    if !roles.contains(&user.role) {
        return Err(forbidden("your role may not do this"));
    }
    Ok(user)
}

fn unauthenticated() -> Failure {
    Failure::new(
        StatusCode::UNAUTHORIZED,
        ErrorCode::Unauthenticated,
        "sign in with an API token (Bearer) or HTTP Basic authentication",
    )
}

/// The user a valid API token stands for: the token's name, role and site.
async fn token_user<S: Store>(app: &SharedApp<S>, token: &str) -> Result<User, Failure> {
    let found = tokens::find(&app.store, token, app.clock.now()).await?;
    let token = found.ok_or_else(unauthenticated)?;
    // Named apart from people (a user name has no colon), in logs and on what it does.
    Ok(User {
        name: format!("token:{}", token.name),
        role: token.role,
        site: token.site,
        password_hash: String::new(),
        disabled: false,
    })
}

/// The user of HTTP Basic credentials, checked as a web sign-in is.
async fn password_user<S: Store>(
    app: &SharedApp<S>,
    headers: &HeaderMap,
    authorization: &str,
) -> Result<User, Failure> {
    let credentials = authorization
        .strip_prefix("Basic ")
        .and_then(|encoded| {
            base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .ok()
        })
        .and_then(|decoded| String::from_utf8(decoded).ok())
        .ok_or_else(unauthenticated)?;
    let (name, password) = credentials.split_once(':').ok_or_else(unauthenticated)?;
    let attempt = Attempt {
        name: name.to_owned(),
        password: password.to_owned(),
        client: sign_in::client_of(headers),
    };
    // Every role may sign in here; the role is judged by the caller, so a wrong role is a 403.
    match sign_in::check_password(&app.store, attempt, &Role::ALL, app.clock.now()).await? {
        SignIn::Known(user) => Ok(user),
        SignIn::Failed => Err(unauthenticated()),
        SignIn::Locked => Err(Failure::new(
            StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::Unauthenticated,
            "too many failed sign-ins under this name from here: try again in 15 minutes",
        )),
        SignIn::Busy => Err(unavailable()),
    }
}

/// The signed-in user as the use cases see them, or a refusal (401, 403).
pub(super) async fn actor_with<S: Store>(
    app: &SharedApp<S>,
    headers: &HeaderMap,
    roles: &[Role],
) -> Result<Actor, Failure> {
    Ok(Actor::user(&user_with(app, headers, roles).await?))
}

fn unavailable() -> Failure {
    Failure::new(
        StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::Unavailable,
        "try again later",
    )
}

fn forbidden(message: &str) -> Failure {
    Failure::new(StatusCode::FORBIDDEN, ErrorCode::Forbidden, message)
}

pub(super) fn body<T: serde::de::DeserializeOwned>(
    body: Result<Bytes, BytesRejection>,
) -> Result<T, Failure> {
    let body = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Failure::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                ErrorCode::BodyTooLarge,
                "body too large",
            )
        } else {
            Failure::bad_request(rejection.body_text())
        }
    })?;
    serde_json::from_slice(&body).map_err(|error| Failure::bad_request(format!("body: {error}")))
}

pub(super) fn path<T>(path: Result<Path<T>, PathRejection>) -> Result<T, Failure> {
    path.map(|Path(value)| value)
        .map_err(|rejection| Failure::bad_request(rejection.body_text()))
}

fn parse<T>(
    what: &str,
    text: &str,
    parse: impl Fn(&str) -> Result<T, proto::ParseError>,
) -> Result<T, Failure> {
    parse(text).map_err(|error| Failure::bad_request(format!("{what}: {error}")))
}

/// `GET /api/v1/accounts/{account}`: staff (of one of its pupils' site), finance, admin.
pub async fn get_account<S: Store>(
    State(app): State<SharedApp<S>>,
    headers: HeaderMap,
    account: Result<Path<String>, PathRejection>,
) -> Result<Json<AccountState>, Failure> {
    let actor = actor_with(&app, &headers, manage::READERS).await?;
    let account = parse("account", &path(account)?, AccountId::parse)?;
    Ok(Json(accounts::account(&app.store, &actor, &account).await?))
}

/// `PUT /api/v1/accounts/{account}`: opens an account (201), or changes the overdraft floor of
/// an existing one (200); staff, admin.
pub async fn save_account<S: Store>(
    State(app): State<SharedApp<S>>,
    headers: HeaderMap,
    account: Result<Path<String>, PathRejection>,
    request: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<AccountState>), Failure> {
    let actor = actor_with(&app, &headers, manage::COUNTER).await?;
    let account = parse("account", &path(account)?, AccountId::parse)?;
    let request: AccountRequest = body(request)?;
    let now = app.clock.now();
    let (state, opened) =
        accounts::save_account(&app.store, &actor, &account, request.overdraft_floor, now).await?;
    let status = if opened {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(state)))
}

fn money_moved(moved: accounts::Moved) -> Json<MoneyMoved> {
    Json(MoneyMoved {
        balance: moved.balance,
        version: moved.version,
        replayed: moved.replayed,
    })
}

/// `POST /api/v1/accounts/{account}/top-ups`: staff (of one of its pupils' site), admin.
pub async fn top_up<S: Store>(
    State(app): State<SharedApp<S>>,
    headers: HeaderMap,
    account: Result<Path<String>, PathRejection>,
    request: Result<Bytes, BytesRejection>,
) -> Result<Json<MoneyMoved>, Failure> {
    let actor = actor_with(&app, &headers, manage::COUNTER).await?;
    let account = parse("account", &path(account)?, AccountId::parse)?;
    let request: TopUpRequest = body(request)?;
    let moved = accounts::top_up(
        &app.store,
        &actor,
        &account,
        request.amount,
        request.method,
        request.reference,
        app.clock.now(),
    )
    .await?;
    Ok(money_moved(moved))
}

/// `POST /api/v1/accounts/{account}/adjustments`: finance, admin; a reason is required.
pub async fn adjust<S: Store>(
    State(app): State<SharedApp<S>>,
    headers: HeaderMap,
    account: Result<Path<String>, PathRejection>,
    request: Result<Bytes, BytesRejection>,
) -> Result<Json<MoneyMoved>, Failure> {
    let actor = actor_with(&app, &headers, manage::FINANCE).await?;
    let account = parse("account", &path(account)?, AccountId::parse)?;
    let request: AdjustmentRequest = body(request)?;
    let now = app.clock.now();
    let moved = accounts::adjust(
        &app.store,
        &actor,
        &account,
        request.amount,
        request.reason,
        now,
    )
    .await?;
    Ok(money_moved(moved))
}

/// `POST /api/v1/payments`: the online payment provider (role payments), admin. Idempotent by
/// the provider's reference.
pub async fn credit_payment<S: Store>(
    State(app): State<SharedApp<S>>,
    headers: HeaderMap,
    request: Result<Bytes, BytesRejection>,
) -> Result<Json<MoneyMoved>, Failure> {
    let actor = actor_with(&app, &headers, manage::PAYMENTS).await?;
    let request: PaymentRequest = body(request)?;
    let moved = accounts::credit_payment(
        &app.store,
        &actor,
        request.reference,
        &request.account,
        request.amount,
        app.clock.now(),
    )
    .await?;
    Ok(money_moved(moved))
}

/// `PUT /api/v1/pupils/{pupil}`: creates or edits a pupil; staff of the pupil's site, admin.
pub async fn save_pupil<S: Store>(
    State(app): State<SharedApp<S>>,
    headers: HeaderMap,
    pupil: Result<Path<String>, PathRejection>,
    request: Result<Bytes, BytesRejection>,
) -> Result<Json<Changed>, Failure> {
    let actor = actor_with(&app, &headers, manage::COUNTER).await?;
    let id = parse("pupil", &path(pupil)?, PupilId::parse)?;
    let request: PupilRequest = body(request)?;
    if request.pupil.id != id {
        return Err(Failure::bad_request(
            "the body's pupil id differs from the path's",
        ));
    }
    let version = people::save_pupil(&app.store, &actor, &request.site, &request.pupil).await?;
    Ok(Json(Changed { version }))
}

/// `POST /api/v1/cards`: binds a new card; staff of the holder's site, admin.
pub async fn assign_card<S: Store>(
    State(app): State<SharedApp<S>>,
    headers: HeaderMap,
    request: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Changed>), Failure> {
    let actor = actor_with(&app, &headers, manage::COUNTER).await?;
    let card: Card = body(request)?;
    let version = people::assign_card(&app.store, &actor, &card).await?;
    Ok((StatusCode::CREATED, Json(Changed { version })))
}

/// `POST /api/v1/cards/{uid}/block`: a lost card; staff of the holder's site, admin.
pub async fn block_card<S: Store>(
    State(app): State<SharedApp<S>>,
    headers: HeaderMap,
    uid: Result<Path<String>, PathRejection>,
) -> Result<Json<Changed>, Failure> {
    let actor = actor_with(&app, &headers, manage::COUNTER).await?;
    let uid = parse("card", &path(uid)?, CardUid::from_hex)?;
    let version = people::block_card(&app.store, &actor, &uid).await?;
    Ok(Json(Changed { version }))
}

/// `POST /api/v1/cards/{uid}/replace`: blocks the card and binds a new one to its holder;
/// staff of the holder's site, admin.
pub async fn replace_card<S: Store>(
    State(app): State<SharedApp<S>>,
    headers: HeaderMap,
    uid: Result<Path<String>, PathRejection>,
    request: Result<Bytes, BytesRejection>,
) -> Result<Json<Changed>, Failure> {
    let actor = actor_with(&app, &headers, manage::COUNTER).await?;
    let uid = parse("card", &path(uid)?, CardUid::from_hex)?;
    let request: ReplaceCardRequest = body(request)?;
    let version = people::replace_card(&app.store, &actor, &uid, &request.new_uid).await?;
    Ok(Json(Changed { version }))
}

/// `PUT /api/v1/sites/{site}/tariffs`: one bracket's price of one meal type; admin.
pub async fn save_tariff<S: Store>(
    State(app): State<SharedApp<S>>,
    headers: HeaderMap,
    site: Result<Path<String>, PathRejection>,
    request: Result<Bytes, BytesRejection>,
) -> Result<Json<Changed>, Failure> {
    let actor = actor_with(&app, &headers, manage::ADMIN).await?;
    let site = parse("site", &path(site)?, SiteId::parse)?;
    let tariff: Tariff = body(request)?;
    let version = sites::save_tariff(&app.store, &actor, &site, &tariff).await?;
    Ok(Json(Changed { version }))
}

/// `PUT /api/v1/sites/{site}/services/{service}`: a meal window; admin.
pub async fn save_service<S: Store>(
    State(app): State<SharedApp<S>>,
    headers: HeaderMap,
    ids: Result<Path<(String, String)>, PathRejection>,
    request: Result<Bytes, BytesRejection>,
) -> Result<Json<Changed>, Failure> {
    let actor = actor_with(&app, &headers, manage::ADMIN).await?;
    let (site, service_id) = path(ids)?;
    let site = parse("site", &site, SiteId::parse)?;
    let service_id = parse("service", &service_id, ServiceId::parse)?;
    let service: Service = body(request)?;
    if service.id != service_id {
        return Err(Failure::bad_request(
            "the body's service id differs from the path's",
        ));
    }
    let version = sites::save_service(&app.store, &actor, &site, &service).await?;
    Ok(Json(Changed { version }))
}

/// `PUT /api/v1/sites/{site}/staff/{staff}`: a staff member and their kiosk PIN; admin.
pub async fn save_staff<S: Store>(
    State(app): State<SharedApp<S>>,
    headers: HeaderMap,
    ids: Result<Path<(String, String)>, PathRejection>,
    request: Result<Bytes, BytesRejection>,
) -> Result<Json<Changed>, Failure> {
    let actor = actor_with(&app, &headers, manage::ADMIN).await?;
    let (site, staff_id) = path(ids)?;
    let site = parse("site", &site, SiteId::parse)?;
    let id = parse("staff", &staff_id, StaffId::parse)?;
    let request: StaffRequest = body(request)?;
    let version =
        people::save_staff(&app.store, &actor, &site, id, request.name, request.pin).await?;
    Ok(Json(Changed { version }))
}

/// `PUT /api/v1/sites/{site}/settings`: the site's kiosk settings; admin.
pub async fn save_settings<S: Store>(
    State(app): State<SharedApp<S>>,
    headers: HeaderMap,
    site: Result<Path<String>, PathRejection>,
    request: Result<Bytes, BytesRejection>,
) -> Result<Json<Changed>, Failure> {
    let actor = actor_with(&app, &headers, manage::ADMIN).await?;
    let site = parse("site", &path(site)?, SiteId::parse)?;
    let settings: KioskSettings = body(request)?;
    let version = sites::save_settings(&app.store, &actor, &site, &settings).await?;
    Ok(Json(Changed { version }))
}

/// `GET /api/v1/anomalies`: finance, admin.
pub async fn anomalies<S: Store>(
    State(app): State<SharedApp<S>>,
    headers: HeaderMap,
) -> Result<Json<Vec<AnomalyView>>, Failure> {
    actor_with(&app, &headers, manage::FINANCE).await?;
    let anomalies = crate::ingest::anomalies(&app.store).await?;
    Ok(Json(
        anomalies
            .into_iter()
            .map(|anomaly| AnomalyView {
                device: anomaly.device.to_string(),
                seq: anomaly.seq.map(proto::Seq::get),
                reason: anomaly.reason.as_str().to_owned(),
                detail: anomaly.detail,
            })
            .collect(),
    ))
}

/// `GET /api/v1/kiosks`: the fleet as last reported; finance, admin.
pub async fn kiosks<S: Store>(
    State(app): State<SharedApp<S>>,
    headers: HeaderMap,
) -> Result<Json<Vec<KioskView>>, Failure> {
    let actor = actor_with(&app, &headers, manage::FINANCE).await?;
    let statuses = crate::kiosks::fleet(&app.store, &actor).await?;
    Ok(Json(
        statuses
            .into_iter()
            .map(|status| KioskView {
                device: status.device.to_string(),
                last_seen: status.last_seen,
                report: status.report,
            })
            .collect(),
    ))
}
