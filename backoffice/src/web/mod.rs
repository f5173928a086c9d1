//! The web pages of staff, finance and city IT, rendered on the server (maud templates, checked
//! by the compiler) in French, English or German, with every style and script embedded: the
//! pages download nothing from anywhere.
//!
//! - [`session`]: signing in and out, sessions in the store, lock-out, CSRF tokens, languages.
//! - [`layout`]: the page shell, the style sheet and formatting of money and time.
//! - [`i18n`]: every text of the pages in the three languages.
//! - [`staff`]: search, an account's page, top-ups with receipt, cards, dietary flags, today's
//!   meals.
//! - [`finance`]: meals and revenue per day and site, the kiosk fleet.
//! - [`reconcile`]: a day's reconciliation, its findings and evidence, proposed voids,
//!   sign-off and exports.
//! - [`admin`]: kiosks, users, tariffs and services, CSV import.
//! - [`chart`]: bar charts drawn as SVG on the server.
//! - [`headers`]: the security headers of every answer (content security policy, no framing).
//!
//! Every handler names the roles it admits ([`session::viewer`]); staff see and change only
//! their own site's pupils and accounts.

pub mod admin;
pub mod chart;
pub mod finance;
pub mod headers;
pub mod i18n;
pub mod layout;
pub mod reconcile;
pub mod session;
pub mod staff;

use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};

use crate::manage::ManageError;
use crate::reconcile::ReconcileError;
use crate::state::SharedApp;
use crate::store::{Store, StoreError};
pub use headers::security_headers;
use i18n::{Lang, Msg};

/// The time zone of the city's sites: service days and the times shown are local.
pub const SITE_TIME_ZONE: &str = "Europe/Paris";

/// A page: method, path as routed, handler.
type Route<S> = (Method, &'static str, MethodRouter<SharedApp<S>>);

/// Every page: method, path as routed, handler.
pub fn routes<S: Store>() -> Vec<(Method, &'static str, MethodRouter<SharedApp<S>>)> {
    [
        session_routes::<S>(),
        staff_routes::<S>(),
        finance_routes::<S>(),
        reconciliation_routes::<S>(),
        admin_routes::<S>(),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// Signing in and out, and the language.
fn session_routes<S: Store>() -> Vec<Route<S>> {
    vec![
        (Method::GET, "/", get(session::home::<S>)),
        (Method::GET, "/sign-in", get(session::sign_in_page::<S>)),
        (Method::POST, "/sign-in", post(session::sign_in::<S>)),
        (Method::POST, "/sign-out", post(session::sign_out::<S>)),
        (Method::GET, "/language", get(session::switch_language)),
    ]
}

/// The canteen staff's pages.
fn staff_routes<S: Store>() -> Vec<Route<S>> {
    vec![
        (Method::GET, "/staff", get(staff::search::<S>)),
        (
            Method::GET,
            "/staff/accounts/{account}",
            get(staff::account::<S>),
        ),
        (
            Method::POST,
            "/staff/accounts/{account}/top-up",
            post(staff::top_up::<S>),
        ),
        (
            Method::POST,
            "/staff/cards/{uid}/block",
            post(staff::block_card::<S>),
        ),
        (
            Method::POST,
            "/staff/cards/{uid}/replace",
            post(staff::replace_card::<S>),
        ),
        (
            Method::POST,
            "/staff/pupils/{pupil}/dietary",
            post(staff::dietary::<S>),
        ),
        (Method::GET, "/staff/meals", get(staff::meals::<S>)),
    ]
}

/// The finance office's dashboard and kiosk fleet.
fn finance_routes<S: Store>() -> Vec<Route<S>> {
    vec![
        (Method::GET, "/finance", get(finance::dashboard::<S>)),
        (Method::GET, "/finance/kiosks", get(finance::kiosks::<S>)),
    ]
}

/// A day's reconciliation, its proposed voids, sign-off and exports.
fn reconciliation_routes<S: Store>() -> Vec<Route<S>> {
    vec![
        (
            Method::GET,
            "/finance/reconciliations",
            get(reconcile::day::<S>),
        ),
        (
            Method::POST,
            "/finance/reconciliations",
            post(reconcile::run::<S>),
        ),
        (
            Method::POST,
            "/finance/reconciliations/{date}/sign-off",
            post(reconcile::sign_off::<S>),
        ),
        (
            Method::POST,
            "/finance/proposed-voids/{id}/approve",
            post(reconcile::approve::<S>),
        ),
        (
            Method::POST,
            "/finance/proposed-voids/{id}/reject",
            post(reconcile::reject::<S>),
        ),
        (
            Method::GET,
            "/finance/exports/{kind}",
            get(reconcile::download::<S>),
        ),
    ]
}

/// City IT's pages: kiosks, users, sites and the CSV import.
fn admin_routes<S: Store>() -> Vec<Route<S>> {
    vec![
        (Method::GET, "/admin", get(admin::index::<S>)),
        (Method::GET, "/admin/devices", get(admin::devices::<S>)),
        (Method::POST, "/admin/devices", post(admin::enrol::<S>)),
        (
            Method::POST,
            "/admin/devices/{device}/revoke",
            post(admin::revoke::<S>),
        ),
        (Method::GET, "/admin/users", get(admin::users::<S>)),
        (Method::POST, "/admin/users", post(admin::add_user::<S>)),
        (
            Method::POST,
            "/admin/users/{name}",
            post(admin::update_user::<S>),
        ),
        (
            Method::POST,
            "/admin/users/{name}/disabled",
            post(admin::set_user_disabled::<S>),
        ),
        (Method::GET, "/admin/sites/{site}", get(admin::site::<S>)),
        (
            Method::POST,
            "/admin/sites/{site}/tariffs",
            post(admin::save_tariff::<S>),
        ),
        (
            Method::POST,
            "/admin/sites/{site}/services",
            post(admin::save_service::<S>),
        ),
        (Method::GET, "/admin/import", get(admin::import_page::<S>)),
        (Method::POST, "/admin/import", post(admin::import::<S>)),
    ]
}

/// A page that could not be shown as asked.
#[derive(Debug)]
pub struct PageError {
    pub lang: Lang,
    pub kind: PageErrorKind,
}

#[derive(Debug)]
pub enum PageErrorKind {
    /// No session: go and sign in.
    SignIn,
    /// The role may not see this, or it belongs to another site.
    Forbidden,
    /// A form without this session's CSRF token.
    Csrf,
    NotFound,
    /// A form's content breaks a rule; the message says which.
    Invalid(String),
    Store(StoreError),
}

impl PageError {
    pub fn new(lang: Lang, kind: PageErrorKind) -> PageError {
        PageError { lang, kind }
    }

    pub fn invalid(lang: Lang, message: impl Into<String>) -> PageError {
        PageError::new(lang, PageErrorKind::Invalid(message.into()))
    }

    pub fn store(lang: Lang) -> impl FnOnce(StoreError) -> PageError {
        move |error| PageError::new(lang, PageErrorKind::Store(error))
    }

    /// A use case's refusal, as a page.
    pub fn manage(lang: Lang) -> impl FnOnce(ManageError) -> PageError {
        move |error| match error {
            ManageError::Forbidden(_) => PageError::new(lang, PageErrorKind::Forbidden),
            ManageError::Invalid(message) | ManageError::Conflict(message) => {
                PageError::invalid(lang, message)
            }
            ManageError::Store(error) => PageError::new(lang, PageErrorKind::Store(error)),
        }
    }

    /// A reconciliation's refusal, as a page.
    pub fn reconcile(lang: Lang) -> impl FnOnce(ReconcileError) -> PageError {
        move |error| match error {
            ReconcileError::Store(error) => PageError::new(lang, PageErrorKind::Store(error)),
            ReconcileError::Forbidden(_) => PageError::new(lang, PageErrorKind::Forbidden),
            error => PageError::invalid(lang, error.to_string()),
        }
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let lang = self.lang;
        let (status, title, detail) = match self.kind {
            PageErrorKind::SignIn => {
                return (StatusCode::SEE_OTHER, [(header::LOCATION, "/sign-in")]).into_response();
            }
            PageErrorKind::Forbidden => (StatusCode::FORBIDDEN, Msg::Forbidden, None),
            PageErrorKind::Csrf => (StatusCode::FORBIDDEN, Msg::CsrfRefused, None),
            PageErrorKind::NotFound => (StatusCode::NOT_FOUND, Msg::NotFound, None),
            PageErrorKind::Invalid(message) => {
                (StatusCode::BAD_REQUEST, Msg::Invalid, Some(message))
            }
            PageErrorKind::Store(error) => {
                let message = error.to_string();
                match error {
                    StoreError::NotFound { .. } => {
                        (StatusCode::NOT_FOUND, Msg::NotFound, Some(message))
                    }
                    StoreError::AlreadyExists { .. } | StoreError::Constraint(_) => {
                        (StatusCode::CONFLICT, Msg::Invalid, Some(message))
                    }
                    StoreError::Refused(_) => (
                        StatusCode::UNPROCESSABLE_ENTITY,
                        Msg::Invalid,
                        Some(message),
                    ),
                    // The log has the cause; the page says only to try again.
                    StoreError::Corrupt(_) => {
                        tracing::error!(%error, "storage failed");
                        (StatusCode::INTERNAL_SERVER_ERROR, Msg::Unavailable, None)
                    }
                    StoreError::Unavailable(_) | StoreError::SchemaTooNew { .. } => {
                        tracing::error!(%error, "storage failed");
                        (StatusCode::SERVICE_UNAVAILABLE, Msg::Unavailable, None)
                    }
                }
            }
        };
        let body = layout::error_page(lang, title, detail.as_deref());
        (status, body).into_response()
    }
}

/// A page's result.
pub type PageResult = Result<Response, PageError>;

/// A 303 to `path`, after a form that changed something.
pub fn see_other(path: &str) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, path.to_owned())]).into_response()
}
