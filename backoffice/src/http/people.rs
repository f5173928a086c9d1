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
use proto::limits::OVERDRAFT_FLOOR_CENTS_MIN;
use proto::record::TopUpMethod;
use proto::snapshot::{AccountState, Card, KioskSettings, Pupil, Service, Tariff};
use proto::{
    AccountId, CardUid, Cents, PupilId, ServiceId, SiteId, SnapshotVersion, StaffId, Text,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa::openapi::Object;
use utoipa::openapi::schema::{ObjectBuilder, Type};

use super::Failure;
use super::input::{body, body_named, path};
use super::openapi::{BadRequest, Conflict, NotFound, TooLarge, UserErrors};
use crate::limits::{
    ADJUSTMENT_CENTS_MAX, COUNTER_TOP_UP_CENTS_MAX, ONLINE_PAYMENT_CENTS_MAX, PIN_DIGITS_MAX,
    PIN_DIGITS_MIN,
};
use crate::manage::{self, Actor, accounts, people, sites, tokens};
use crate::sign_in::{self, Attempt, SignIn};
use crate::state::SharedApp;
use crate::store::Store;
use crate::users::{Role, User};

/// Every change answers with the snapshot version it made.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Changed {
    pub version: SnapshotVersion,
}

/// The answer to a money operation.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MoneyMoved {
    pub balance: Cents,
    pub version: SnapshotVersion,
    /// The same online payment was credited before; nothing changed.
    pub replayed: bool,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccountRequest {
    #[schema(schema_with = overdraft_floor)]
    pub overdraft_floor: Cents,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TopUpRequest {
    #[schema(schema_with = counter_top_up)]
    pub amount: Cents,
    pub method: TopUpMethod,
    #[serde(default)]
    pub reference: Option<Text>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdjustmentRequest {
    /// Positive credits, negative debits.
    #[schema(schema_with = adjustment)]
    pub amount: Cents,
    pub reason: Text,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PaymentRequest {
    /// The provider's payment reference: a payment is credited once per reference.
    pub reference: Text,
    pub account: AccountId,
    #[schema(schema_with = online_payment)]
    pub amount: Cents,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PupilRequest {
    pub site: SiteId,
    /// The pupil; the path names it, so its `id` may be left out.
    #[schema(schema_with = pupil_named_by_path)]
    pub pupil: Pupil,
}

/// A service as `PUT` takes it: the path names it, so its `id` may be left out.
#[derive(Debug)]
pub struct ServiceNamedByPath;

impl utoipa::PartialSchema for ServiceNamedByPath {
    fn schema() -> Schemas {
        without_id(<Service as utoipa::PartialSchema>::schema())
    }
}

impl ToSchema for ServiceNamedByPath {}

fn pupil_named_by_path() -> Schemas {
    without_id(<Pupil as utoipa::PartialSchema>::schema())
}

type Schemas = utoipa::openapi::RefOr<utoipa::openapi::Schema>;

/// `schema` without its `id` property: the request's path gives it (`input::body_named`).
fn without_id(mut schema: Schemas) -> Schemas {
    if let utoipa::openapi::RefOr::T(utoipa::openapi::Schema::Object(object)) = &mut schema {
        object.properties.shift_remove("id");
        object.required.retain(|name| name != "id");
    }
    schema
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplaceCardRequest {
    pub new_uid: CardUid,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StaffRequest {
    pub name: Text,
    /// 4 to 8 digits; only its Argon2 hash is kept.
    #[schema(schema_with = pin)]
    pub pin: String,
}

/// One anomaly for finance, as listed.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AnomalyView {
    pub device: String,
    pub seq: Option<u64>,
    pub reason: String,
    pub detail: String,
}

/// One kiosk of the fleet, as listed.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct KioskView {
    pub device: String,
    pub last_seen: proto::Timestamp,
    pub report: proto::api::KioskReport,
}

fn overdraft_floor() -> Object {
    proto::openapi::cents_within(
        OVERDRAFT_FLOOR_CENTS_MIN,
        0,
        "Euro cents: how far below zero the balance may go.",
    )
}

fn counter_top_up() -> Object {
    proto::openapi::cents_within(1, COUNTER_TOP_UP_CENTS_MAX, "Euro cents paid in.")
}

/// Not zero: a debit of up to the maximum, or a credit of up to it.
fn adjustment() -> utoipa::openapi::Schema {
    utoipa::openapi::schema::OneOfBuilder::new()
        .description(Some(
            "Euro cents, not 0: positive credits, negative debits.",
        ))
        .item(proto::openapi::cents_within(
            -ADJUSTMENT_CENTS_MAX,
            -1,
            "A debit.",
        ))
        .item(proto::openapi::cents_within(
            1,
            ADJUSTMENT_CENTS_MAX,
            "A credit.",
        ))
        .into()
}

fn online_payment() -> Object {
    proto::openapi::cents_within(1, ONLINE_PAYMENT_CENTS_MAX, "Euro cents paid online.")
}

fn pin() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(format!(
            "^[0-9]{{{PIN_DIGITS_MIN},{PIN_DIGITS_MAX}}}$"
        )))
        .description(Some("The kiosk PIN; only its Argon2 hash is kept."))
        .build()
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

/// The message of credentials refused because the name is locked out from this address.
pub const LOCKED_OUT: &str =
    "too many failed sign-ins under this name from here: try again in 15 minutes";

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
        // Refused credentials, as any client expects them: 401, the reason in the message.
        SignIn::Locked => Err(Failure::new(
            StatusCode::UNAUTHORIZED,
            ErrorCode::Unauthenticated,
            LOCKED_OUT,
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

fn parse<T>(
    what: &str,
    text: &str,
    parse: impl Fn(&str) -> Result<T, proto::ParseError>,
) -> Result<T, Failure> {
    parse(text).map_err(|error| Failure::bad_request(format!("{what}: {error}")))
}

/// An account's balance and overdraft floor.
///
/// Roles: staff (of the site of one of the account's pupils), finance, admin.
#[utoipa::path(
    get,
    path = "/api/v1/accounts/{account}",
    tag = "accounts",
    params(("account" = AccountId, Path, description = "The account.")),
    security(("bearer" = []), ("basic" = [])),
    responses(
        (status = 200, description = "The account.", body = AccountState),
        BadRequest, NotFound, UserErrors,
    )
)]
pub async fn get_account<S: Store>(
    State(app): State<SharedApp<S>>,
    headers: HeaderMap,
    account: Result<Path<String>, PathRejection>,
) -> Result<Json<AccountState>, Failure> {
    let actor = actor_with(&app, &headers, manage::READERS).await?;
    let account = parse("account", &path(account)?, AccountId::parse)?;
    Ok(Json(accounts::account(&app.store, &actor, &account).await?))
}

/// Opens an account with a zero balance, or changes the overdraft floor of an existing one.
///
/// Roles: staff (of the site of one of the account's pupils), admin.
#[utoipa::path(
    put,
    path = "/api/v1/accounts/{account}",
    tag = "accounts",
    params(("account" = AccountId, Path, description = "The account.")),
    request_body = AccountRequest,
    security(("bearer" = []), ("basic" = [])),
    responses(
        (status = 200, description = "The floor changed.", body = AccountState),
        (status = 201, description = "The account opened.", body = AccountState),
        BadRequest, Conflict, TooLarge, UserErrors,
    )
)]
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

/// Money paid in at the back-office counter.
///
/// Roles: staff (of the site of one of the account's pupils), admin.
#[utoipa::path(
    post,
    path = "/api/v1/accounts/{account}/top-ups",
    tag = "accounts",
    params(("account" = AccountId, Path, description = "The account.")),
    request_body = TopUpRequest,
    security(("bearer" = []), ("basic" = [])),
    responses(
        (status = 200, description = "Credited.", body = MoneyMoved),
        BadRequest, NotFound, Conflict, TooLarge, UserErrors,
    )
)]
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

/// A correction of a balance, with its reason.
///
/// Roles: finance, admin.
#[utoipa::path(
    post,
    path = "/api/v1/accounts/{account}/adjustments",
    tag = "accounts",
    params(("account" = AccountId, Path, description = "The account.")),
    request_body = AdjustmentRequest,
    security(("bearer" = []), ("basic" = [])),
    responses(
        (status = 200, description = "Adjusted.", body = MoneyMoved),
        BadRequest, NotFound, Conflict, TooLarge, UserErrors,
    )
)]
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

/// Credits an online payment, once per provider reference: a retry answers `replayed`.
///
/// Roles: payments (the online payment provider), admin.
#[utoipa::path(
    post,
    path = "/api/v1/payments",
    tag = "accounts",
    request_body = PaymentRequest,
    security(("bearer" = []), ("basic" = [])),
    responses(
        (status = 200, description = "Credited, or credited before (`replayed`).", body = MoneyMoved),
        BadRequest, NotFound, Conflict, TooLarge, UserErrors,
    )
)]
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

/// Creates or edits a pupil of a site; the body's pupil id is the path's.
///
/// Roles: staff (of the pupil's site), admin.
#[utoipa::path(
    put,
    path = "/api/v1/pupils/{pupil}",
    tag = "pupils and cards",
    params(("pupil" = PupilId, Path, description = "The pupil.")),
    request_body = PupilRequest,
    security(("bearer" = []), ("basic" = [])),
    responses(
        (status = 200, description = "Saved.", body = Changed),
        BadRequest, NotFound, Conflict, TooLarge, UserErrors,
    )
)]
pub async fn save_pupil<S: Store>(
    State(app): State<SharedApp<S>>,
    headers: HeaderMap,
    pupil: Result<Path<String>, PathRejection>,
    request: Result<Bytes, BytesRejection>,
) -> Result<Json<Changed>, Failure> {
    let actor = actor_with(&app, &headers, manage::COUNTER).await?;
    let id = parse("pupil", &path(pupil)?, PupilId::parse)?;
    let request: PupilRequest = body_named(request, "/pupil", "pupil", id.as_str())?;
    let version = people::save_pupil(&app.store, &actor, &request.site, &request.pupil).await?;
    Ok(Json(Changed { version }))
}

/// Binds a new card to a pupil or a staff member.
///
/// Roles: staff (of the holder's site), admin.
#[utoipa::path(
    post,
    path = "/api/v1/cards",
    tag = "pupils and cards",
    request_body = Card,
    security(("bearer" = []), ("basic" = [])),
    responses(
        (status = 201, description = "Bound.", body = Changed),
        BadRequest, NotFound, Conflict, TooLarge, UserErrors,
    )
)]
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

/// Blocks a lost card: it goes on every kiosk's hotlist.
///
/// Roles: staff (of the holder's site), admin.
#[utoipa::path(
    post,
    path = "/api/v1/cards/{uid}/block",
    tag = "pupils and cards",
    params(("uid" = CardUid, Path, description = "The card.")),
    security(("bearer" = []), ("basic" = [])),
    responses(
        (status = 200, description = "Blocked.", body = Changed),
        BadRequest, NotFound, Conflict, UserErrors,
    )
)]
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

/// Blocks a card and binds a new one to its holder; the balance stays with the account.
///
/// Roles: staff (of the holder's site), admin.
#[utoipa::path(
    post,
    path = "/api/v1/cards/{uid}/replace",
    tag = "pupils and cards",
    params(("uid" = CardUid, Path, description = "The card.")),
    request_body = ReplaceCardRequest,
    security(("bearer" = []), ("basic" = [])),
    responses(
        (status = 200, description = "Replaced.", body = Changed),
        BadRequest, NotFound, Conflict, TooLarge, UserErrors,
    )
)]
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

/// One bracket's price for one meal type.
///
/// Roles: admin.
#[utoipa::path(
    put,
    path = "/api/v1/sites/{site}/tariffs",
    tag = "sites",
    params(("site" = SiteId, Path, description = "The site.")),
    request_body = Tariff,
    security(("bearer" = []), ("basic" = [])),
    responses(
        (status = 200, description = "Saved.", body = Changed),
        BadRequest, NotFound, Conflict, TooLarge, UserErrors,
    )
)]
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

/// A meal window of the site; the body's service id is the path's.
///
/// Roles: admin.
#[utoipa::path(
    put,
    path = "/api/v1/sites/{site}/services/{service}",
    tag = "sites",
    params(
        ("site" = SiteId, Path, description = "The site."),
        ("service" = ServiceId, Path, description = "The service."),
    ),
    request_body = ServiceNamedByPath,
    security(("bearer" = []), ("basic" = [])),
    responses(
        (status = 200, description = "Saved.", body = Changed),
        BadRequest, NotFound, Conflict, TooLarge, UserErrors,
    )
)]
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
    let service: Service = body_named(request, "", "service", service_id.as_str())?;
    let version = sites::save_service(&app.store, &actor, &site, &service).await?;
    Ok(Json(Changed { version }))
}

/// A staff member and their kiosk PIN (kept only as an Argon2 hash).
///
/// Roles: admin.
#[utoipa::path(
    put,
    path = "/api/v1/sites/{site}/staff/{staff}",
    tag = "sites",
    params(
        ("site" = SiteId, Path, description = "The site."),
        ("staff" = StaffId, Path, description = "The staff member."),
    ),
    request_body = StaffRequest,
    security(("bearer" = []), ("basic" = [])),
    responses(
        (status = 200, description = "Saved.", body = Changed),
        BadRequest, NotFound, Conflict, TooLarge, UserErrors,
    )
)]
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

/// The site's kiosk settings.
///
/// Roles: admin.
#[utoipa::path(
    put,
    path = "/api/v1/sites/{site}/settings",
    tag = "sites",
    params(("site" = SiteId, Path, description = "The site.")),
    request_body = KioskSettings,
    security(("bearer" = []), ("basic" = [])),
    responses(
        (status = 200, description = "Saved.", body = Changed),
        BadRequest, NotFound, Conflict, TooLarge, UserErrors,
    )
)]
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

/// Quarantined records, records that moved no money, and open gaps.
///
/// Roles: finance, admin.
#[utoipa::path(
    get,
    path = "/api/v1/anomalies",
    tag = "monitoring",
    security(("bearer" = []), ("basic" = [])),
    responses(
        (status = 200, description = "Every anomaly.", body = Vec<AnomalyView>),
        UserErrors,
    )
)]
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

/// Each kiosk's last report: when it was last seen, its version, unsynced records, reader.
///
/// Roles: finance, admin.
#[utoipa::path(
    get,
    path = "/api/v1/kiosks",
    tag = "monitoring",
    security(("bearer" = []), ("basic" = [])),
    responses(
        (status = 200, description = "The fleet.", body = Vec<KioskView>),
        UserErrors,
    )
)]
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
