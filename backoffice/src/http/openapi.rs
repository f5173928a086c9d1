//! The OpenAPI 3.1 document of the API, generated from each handler's `#[utoipa::path]` and the
//! types it reads and writes (proto's with its `openapi` feature), so it cannot drift from them.
//! A test checks that it lists exactly the routed endpoints; `make test` validates it.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use axum::http::header;
use axum::response::IntoResponse;
use proto::api::{ApiError, HEADER_DEVICE, HEADER_NONCE, HEADER_SIGNATURE, HEADER_TIMESTAMP};
use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, Required, Response, ResponseBuilder};
use utoipa::{IntoParams, IntoResponses, Modify, OpenApi, PartialSchema, ToResponse, ToSchema};

use super::{finance, kiosk, people, transfer};

/// The API as a whole: every documented operation, listed by its handler.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Canteen back-office",
        description = "Kiosk sync, the back-office's people (staff, finance, admin, the online \
            payment provider) and monitoring. Every refusal and failure answers with an \
            `ApiError` body. Staff act only within their own site: an account, pupil or card of \
            another site is refused (403)."
    ),
    paths(
        super::healthz,
        super::metrics,
        document,
        kiosk::upload_records,
        kiosk::snapshot,
        people::get_account,
        people::save_account,
        people::top_up,
        people::adjust,
        people::credit_payment,
        people::save_pupil,
        people::assign_card,
        people::block_card,
        people::replace_card,
        people::save_tariff,
        people::save_service,
        people::save_staff,
        people::save_settings,
        people::anomalies,
        people::kiosks,
        finance::run,
        finance::get,
        finance::sign_off,
        finance::proposed_voids,
        finance::approve,
        finance::reject,
        finance::download,
        transfer::upload,
    ),
    components(
        responses(
            BadRequest,
            Unauthenticated,
            Forbidden,
            NotFound,
            Conflict,
            TooLarge,
            Unprocessable,
            Unavailable
        )
    ),
    modifiers(&SecuritySchemes)
)]
#[derive(Debug)]
pub struct ApiDoc;

/// The document, serialized once.
static DOCUMENT: LazyLock<String> =
    LazyLock::new(|| ApiDoc::openapi().to_pretty_json().unwrap_or_default());

/// The OpenAPI 3.1 document of this API.
#[utoipa::path(
    get,
    path = "/api/openapi.json",
    tag = "service",
    responses((status = 200, description = "This document.", content_type = "application/json"))
)]
pub async fn document() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        DOCUMENT.as_str(),
    )
}

/// The security schemes the operations name, and the error body their error responses name.
#[derive(Debug)]
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let mut schemas = vec![(ApiError::name().into_owned(), ApiError::schema())];
        ApiError::schemas(&mut schemas);
        components.schemas.extend(schemas);
        let http = |scheme, description: &str| {
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(scheme)
                    .description(Some(description))
                    .build(),
            )
        };
        components.add_security_scheme(
            "bearer",
            http(
                HttpAuthScheme::Bearer,
                "An API token (`canteen_...`) made with `backoffice token create`: its name, role \
                 and site stand for the caller.",
            ),
        );
        components.add_security_scheme(
            "basic",
            http(
                HttpAuthScheme::Basic,
                "A person's name and password, checked and locked out as the web sign-in is.",
            ),
        );
        components.add_security_scheme(
            "metrics_token",
            http(
                HttpAuthScheme::Bearer,
                "The token of `--metrics-token-file`; a scraper on this machine needs none.",
            ),
        );
        components.add_security_scheme(
            "kiosk_signature",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                HEADER_SIGNATURE,
                "Not a key: the standard base64 Ed25519 signature, by the kiosk's enrolled key, \
                 of `canteen-request-v1`, the device id, method, path and query, timestamp, \
                 nonce and the body's SHA-256 in lowercase hex, one a line \
                 (`proto::api::RequestToSign`). The other three headers are the operation's \
                 parameters.",
            ))),
        );
    }
}

/// The headers of a signed kiosk request besides its signature (the `kiosk_signature` scheme).
#[derive(Debug)]
pub struct KioskHeaders;

impl IntoParams for KioskHeaders {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        let header = |name: &str, schema: RefOr<utoipa::openapi::schema::Schema>, about: &str| {
            ParameterBuilder::new()
                .name(name)
                .parameter_in(ParameterIn::Header)
                .required(Required::True)
                .schema(Some(schema))
                .description(Some(about))
                .build()
        };
        vec![
            header(
                HEADER_DEVICE,
                proto::DeviceId::schema(),
                "The kiosk's device id.",
            ),
            header(
                HEADER_TIMESTAMP,
                proto::Timestamp::schema(),
                "When the kiosk signed the request; refused beyond 5 minutes from the \
                 back-office's clock.",
            ),
            header(
                HEADER_NONCE,
                proto::openapi::nonce().into(),
                "A nonce seen before from this kiosk is refused (replayed).",
            ),
        ]
    }
}

/// Defines each error answer: a response component with an [`ApiError`] body, and its status
/// for the operations' `responses(...)`.
macro_rules! error_responses {
    ($($name:ident($status:literal): $description:literal;)*) => {$(
        #[doc = $description]
        #[derive(Debug)]
        pub struct $name;

        impl<'r> ToResponse<'r> for $name {
            fn response() -> (&'r str, RefOr<Response>) {
                (stringify!($name), error_response($description))
            }
        }

        impl IntoResponses for $name {
            fn responses() -> BTreeMap<String, RefOr<Response>> {
                BTreeMap::from([(
                    $status.to_string(),
                    Ref::from_response_name(stringify!($name)).into(),
                )])
            }
        }
    )*};
}

error_responses! {
    BadRequest(400): "The path, query or body does not parse, or the change breaks a rule; \
        nothing was done.";
    Unauthenticated(401): "No valid credentials: for people, an API token or HTTP Basic (after \
        five failed sign-ins under a name from one address within 15 minutes, that name is \
        refused from there for 15 minutes, with that reason); for kiosks, a signed request (unknown device, clock skew, bad nonce or signature, or a \
        replayed request, code `replayed`).";
    Forbidden(403): "The caller's role may not do this, staff asked about another site, or the \
        kiosk is revoked.";
    NotFound(404): "What the path or body names does not exist.";
    Conflict(409): "It already exists, or a concurrent change won.";
    TooLarge(413): "The body is larger than this endpoint accepts, or a batch holds too many \
        records.";
    Unprocessable(422): "Refused in the state the data is in, such as a day already signed off.";
    Unavailable(503): "The database does not answer; try again later.";
}

/// The refusals every person's request can meet: credentials, role or site, lock-out, database.
#[derive(Debug)]
pub struct UserErrors;

impl IntoResponses for UserErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        merged([
            Unauthenticated::responses,
            Forbidden::responses,
            Unavailable::responses,
        ])
    }
}

/// The refusals every signed kiosk request can meet.
#[derive(Debug)]
pub struct KioskErrors;

impl IntoResponses for KioskErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        merged([
            BadRequest::responses,
            Unauthenticated::responses,
            Forbidden::responses,
            TooLarge::responses,
            Unavailable::responses,
        ])
    }
}

/// An operation's responses by status, as `IntoResponses` gives them.
type Responses = BTreeMap<String, RefOr<Response>>;

/// The responses of each of `groups`, as one operation lists them.
fn merged<const N: usize>(groups: [fn() -> Responses; N]) -> Responses {
    groups
        .into_iter()
        .flat_map(|responses| responses())
        .collect()
}

fn error_response(description: &str) -> RefOr<Response> {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name(ApiError::name())))
                .build(),
        )
        .into()
}
