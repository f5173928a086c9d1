//! The endpoints of back-office users (staff, finance, admin, the payment provider): accounts,
//! money, pupils, cards, tariffs, services, staff, settings and monitoring. Each names the
//! roles it admits; staff act only within their own site.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Json;
use base64::Engine as _;
use proto::api::ErrorCode;
use proto::record::TopUpMethod;
use proto::snapshot::{AccountState, Card, CardHolder, KioskSettings, Pupil, Service, Tariff};
use proto::{
    AccountId, CardUid, Cents, PupilId, ServiceId, SiteId, SnapshotVersion, StaffId, Text,
};
use serde::{Deserialize, Serialize};

use super::{Failure, SharedApp};
use crate::manage::{self, Invalid};
use crate::store::{Operation, Store};
use crate::users::{Role, User};

pub use crate::manage::{ADJUSTMENT_CENTS_MAX, COUNTER_TOP_UP_CENTS_MAX, ONLINE_PAYMENT_CENTS_MAX};

impl From<Invalid> for Failure {
    fn from(invalid: Invalid) -> Failure {
        Failure::bad_request(invalid.0)
    }
}

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

/// The signed-in user, or a refusal: 401 without valid credentials, 403 without the role.
pub(super) async fn user_with<S: Store>(
    app: &SharedApp<S>,
    headers: &HeaderMap,
    roles: &[Role],
) -> Result<User, Failure> {
    let unauthenticated = || {
        Failure::new(
            StatusCode::UNAUTHORIZED,
            ErrorCode::Unauthenticated,
            "sign in with HTTP Basic authentication",
        )
    };
    let credentials = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Basic "))
        .and_then(|encoded| {
            base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .ok()
        })
        .and_then(|decoded| String::from_utf8(decoded).ok())
        .ok_or_else(unauthenticated)?;
    let (name, password) = credentials.split_once(':').ok_or_else(unauthenticated)?;
    let Some(user) = app.store.user(name).await? else {
        return Err(unauthenticated());
    };
    let password = password.to_owned();
    // Argon2 is deliberately slow: keep it off the threads that serve requests.
    let (user, verified) = tokio::task::spawn_blocking(move || {
        let verified = user.verify_password(&password);
        (user, verified)
    })
    .await
    .map_err(|_| unavailable())?;
    if !verified {
        return Err(unauthenticated());
    }
    if !roles.contains(&user.role) {
        return Err(forbidden("your role may not do this"));
    }
    Ok(user)
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

/// Staff act only within their own site; other roles anywhere.
fn check_site(user: &User, site: &SiteId) -> Result<(), Failure> {
    match (&user.role, &user.site) {
        (Role::Staff, Some(own)) if own != site => Err(forbidden("this belongs to another site")),
        _ => Ok(()),
    }
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

/// `GET /api/v1/accounts/{account}`: staff, finance, admin.
pub async fn get_account<S: Store>(
    State(app): State<SharedApp<S>>,
    headers: HeaderMap,
    account: Result<Path<String>, PathRejection>,
) -> Result<Json<AccountState>, Failure> {
    user_with(&app, &headers, &[Role::Staff, Role::Finance, Role::Admin]).await?;
    let account = parse("account", &path(account)?, AccountId::parse)?;
    let state = app.store.account(&account).await?.ok_or_else(|| {
        Failure::new(
            StatusCode::NOT_FOUND,
            ErrorCode::NotFound,
            format!("account {account} does not exist"),
        )
    })?;
    Ok(Json(state))
}

/// `PUT /api/v1/accounts/{account}`: opens an account (201), or changes the overdraft floor of
/// an existing one (200); staff, admin.
pub async fn save_account<S: Store>(
    State(app): State<SharedApp<S>>,
    headers: HeaderMap,
    account: Result<Path<String>, PathRejection>,
    request: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<AccountState>), Failure> {
    user_with(&app, &headers, &[Role::Staff, Role::Admin]).await?;
    let account = parse("account", &path(account)?, AccountId::parse)?;
    let request: AccountRequest = body(request)?;
    manage::check_overdraft_floor(request.overdraft_floor)?;
    let opened = manage::save_account(
        &app.store,
        &account,
        request.overdraft_floor,
        app.clock.now(),
    )
    .await?;
    let status = if opened {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let state = app.store.account(&account).await?.ok_or_else(|| {
        Failure::new(
            StatusCode::NOT_FOUND,
            ErrorCode::NotFound,
            format!("account {account} does not exist"),
        )
    })?;
    Ok((status, Json(state)))
}

async fn operate<S: Store>(
    app: &SharedApp<S>,
    operation: Operation,
) -> Result<Json<MoneyMoved>, Failure> {
    let outcome = app.store.apply_operation(&operation).await?;
    tracing::info!(
        account = %operation.account,
        amount = operation.amount.get(),
        user = operation.user,
        replayed = outcome.replayed,
        "money moved"
    );
    Ok(Json(MoneyMoved {
        balance: outcome.balance,
        version: outcome.version,
        replayed: outcome.replayed,
    }))
}

/// `POST /api/v1/accounts/{account}/top-ups`: staff, admin.
pub async fn top_up<S: Store>(
    State(app): State<SharedApp<S>>,
    headers: HeaderMap,
    account: Result<Path<String>, PathRejection>,
    request: Result<Bytes, BytesRejection>,
) -> Result<Json<MoneyMoved>, Failure> {
    let user = user_with(&app, &headers, &[Role::Staff, Role::Admin]).await?;
    let account = parse("account", &path(account)?, AccountId::parse)?;
    let request: TopUpRequest = body(request)?;
    let operation = manage::top_up(
        account,
        request.amount,
        request.method,
        request.reference,
        user.name,
        app.clock.now(),
    )?;
    operate(&app, operation).await
}

/// `POST /api/v1/accounts/{account}/adjustments`: finance, admin; a reason is required.
pub async fn adjust<S: Store>(
    State(app): State<SharedApp<S>>,
    headers: HeaderMap,
    account: Result<Path<String>, PathRejection>,
    request: Result<Bytes, BytesRejection>,
) -> Result<Json<MoneyMoved>, Failure> {
    let user = user_with(&app, &headers, &[Role::Finance, Role::Admin]).await?;
    let account = parse("account", &path(account)?, AccountId::parse)?;
    let request: AdjustmentRequest = body(request)?;
    let operation = manage::adjustment(
        account,
        request.amount,
        request.reason,
        user.name,
        app.clock.now(),
    )?;
    operate(&app, operation).await
}

/// `POST /api/v1/payments`: the online payment provider (role payments), admin. Idempotent by
/// the provider's reference.
pub async fn credit_payment<S: Store>(
    State(app): State<SharedApp<S>>,
    headers: HeaderMap,
    request: Result<Bytes, BytesRejection>,
) -> Result<Json<MoneyMoved>, Failure> {
    let user = user_with(&app, &headers, &[Role::Payments, Role::Admin]).await?;
    let request: PaymentRequest = body(request)?;
    let operation = manage::online_payment(
        request.account,
        request.amount,
        request.reference,
        user.name,
        app.clock.now(),
    )?;
    operate(&app, operation).await
}

/// `PUT /api/v1/pupils/{pupil}`: creates or edits a pupil; staff of the pupil's site, admin.
pub async fn save_pupil<S: Store>(
    State(app): State<SharedApp<S>>,
    headers: HeaderMap,
    pupil: Result<Path<String>, PathRejection>,
    request: Result<Bytes, BytesRejection>,
) -> Result<Json<Changed>, Failure> {
    let user = user_with(&app, &headers, &[Role::Staff, Role::Admin]).await?;
    let id = parse("pupil", &path(pupil)?, PupilId::parse)?;
    let request: PupilRequest = body(request)?;
    if request.pupil.id != id {
        return Err(Failure::bad_request(
            "the body's pupil id differs from the path's",
        ));
    }
    check_site(&user, &request.site)?;
    let stored_site = app.store.holder_site(&CardHolder::Pupil(id)).await?;
    if let Some(site) = &stored_site {
        check_site(&user, site)?;
    }
    manage::check_pupil(&request.site, &request.pupil, stored_site.as_ref())?;
    let version = app.store.save_pupil(&request.site, &request.pupil).await?;
    Ok(Json(Changed { version }))
}

/// The site of a card's holder, which must exist.
async fn holder_site<S: Store>(app: &SharedApp<S>, holder: &CardHolder) -> Result<SiteId, Failure> {
    app.store.holder_site(holder).await?.ok_or_else(|| {
        Failure::new(
            StatusCode::NOT_FOUND,
            ErrorCode::NotFound,
            "the card's holder does not exist",
        )
    })
}

/// The holder of a card, which must exist.
async fn card_holder<S: Store>(app: &SharedApp<S>, uid: &CardUid) -> Result<CardHolder, Failure> {
    let (holder, _) = app.store.card(uid).await?.ok_or_else(|| {
        Failure::new(
            StatusCode::NOT_FOUND,
            ErrorCode::NotFound,
            format!("card {uid} does not exist"),
        )
    })?;
    Ok(holder)
}

/// `POST /api/v1/cards`: binds a new card; staff of the holder's site, admin.
pub async fn assign_card<S: Store>(
    State(app): State<SharedApp<S>>,
    headers: HeaderMap,
    request: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Changed>), Failure> {
    let user = user_with(&app, &headers, &[Role::Staff, Role::Admin]).await?;
    let card: Card = body(request)?;
    check_site(&user, &holder_site(&app, &card.holder).await?)?;
    let version = app.store.assign_card(&card).await?;
    Ok((StatusCode::CREATED, Json(Changed { version })))
}

/// `POST /api/v1/cards/{uid}/block`: a lost card; staff of the holder's site, admin.
pub async fn block_card<S: Store>(
    State(app): State<SharedApp<S>>,
    headers: HeaderMap,
    uid: Result<Path<String>, PathRejection>,
) -> Result<Json<Changed>, Failure> {
    let user = user_with(&app, &headers, &[Role::Staff, Role::Admin]).await?;
    let uid = parse("card", &path(uid)?, CardUid::from_hex)?;
    let holder = card_holder(&app, &uid).await?;
    check_site(&user, &holder_site(&app, &holder).await?)?;
    let version = app.store.block_card(&uid).await?;
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
    let user = user_with(&app, &headers, &[Role::Staff, Role::Admin]).await?;
    let uid = parse("card", &path(uid)?, CardUid::from_hex)?;
    let request: ReplaceCardRequest = body(request)?;
    let holder = card_holder(&app, &uid).await?;
    check_site(&user, &holder_site(&app, &holder).await?)?;
    let version = app.store.replace_card(&uid, &request.new_uid).await?;
    Ok(Json(Changed { version }))
}

/// `PUT /api/v1/sites/{site}/tariffs`: one bracket's price of one meal type; admin.
pub async fn save_tariff<S: Store>(
    State(app): State<SharedApp<S>>,
    headers: HeaderMap,
    site: Result<Path<String>, PathRejection>,
    request: Result<Bytes, BytesRejection>,
) -> Result<Json<Changed>, Failure> {
    user_with(&app, &headers, &[Role::Admin]).await?;
    let site = parse("site", &path(site)?, SiteId::parse)?;
    let tariff: Tariff = body(request)?;
    manage::check_tariff(&tariff)?;
    let version = app.store.save_tariff(&site, &tariff).await?;
    Ok(Json(Changed { version }))
}

/// `PUT /api/v1/sites/{site}/services/{service}`: a meal window; admin.
pub async fn save_service<S: Store>(
    State(app): State<SharedApp<S>>,
    headers: HeaderMap,
    ids: Result<Path<(String, String)>, PathRejection>,
    request: Result<Bytes, BytesRejection>,
) -> Result<Json<Changed>, Failure> {
    user_with(&app, &headers, &[Role::Admin]).await?;
    let (site, service_id) = path(ids)?;
    let site = parse("site", &site, SiteId::parse)?;
    let service_id = parse("service", &service_id, ServiceId::parse)?;
    let service: Service = body(request)?;
    if service.id != service_id {
        return Err(Failure::bad_request(
            "the body's service id differs from the path's",
        ));
    }
    manage::check_service(&service)?;
    let version = app.store.save_service(&site, &service).await?;
    Ok(Json(Changed { version }))
}

/// `PUT /api/v1/sites/{site}/staff/{staff}`: a staff member and their kiosk PIN; admin.
pub async fn save_staff<S: Store>(
    State(app): State<SharedApp<S>>,
    headers: HeaderMap,
    ids: Result<Path<(String, String)>, PathRejection>,
    request: Result<Bytes, BytesRejection>,
) -> Result<Json<Changed>, Failure> {
    user_with(&app, &headers, &[Role::Admin]).await?;
    let (site, staff_id) = path(ids)?;
    let site = parse("site", &site, SiteId::parse)?;
    let id = parse("staff", &staff_id, StaffId::parse)?;
    let request: StaffRequest = body(request)?;
    // Argon2 is deliberately slow: keep it off the threads that serve requests.
    let staff = tokio::task::spawn_blocking(move || {
        manage::staff_credential(id, request.name, &request.pin)
    })
    .await
    .map_err(|_| unavailable())??;
    let version = app.store.save_staff(&site, &staff).await?;
    Ok(Json(Changed { version }))
}

/// `PUT /api/v1/sites/{site}/settings`: the site's kiosk settings; admin.
pub async fn save_settings<S: Store>(
    State(app): State<SharedApp<S>>,
    headers: HeaderMap,
    site: Result<Path<String>, PathRejection>,
    request: Result<Bytes, BytesRejection>,
) -> Result<Json<Changed>, Failure> {
    user_with(&app, &headers, &[Role::Admin]).await?;
    let site = parse("site", &path(site)?, SiteId::parse)?;
    let settings: KioskSettings = body(request)?;
    let version = app.store.save_kiosk_settings(&site, &settings).await?;
    Ok(Json(Changed { version }))
}

/// `GET /api/v1/anomalies`: finance, admin.
pub async fn anomalies<S: Store>(
    State(app): State<SharedApp<S>>,
    headers: HeaderMap,
) -> Result<Json<Vec<AnomalyView>>, Failure> {
    user_with(&app, &headers, &[Role::Finance, Role::Admin]).await?;
    let anomalies = app.store.anomalies().await?;
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
    user_with(&app, &headers, &[Role::Finance, Role::Admin]).await?;
    let statuses = app.store.kiosk_statuses().await?;
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
