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
//! Every handler names the roles it admits ([`session::viewer`], or [`session::signed_form`]
//! for a posted form, which also checks its CSRF token); staff see and change only their own
//! site's pupils and accounts.

pub mod admin;
pub mod chart;
pub mod finance;
pub mod headers;
pub mod i18n;
pub mod layout;
pub mod reconcile;
pub mod session;
pub mod staff;

use axum::handler::Handler;
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};

use maud::{Markup, html};
use proto::ServiceDate;
use serde::Deserialize;

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
    vec![
        // Signing in and out, and the language.
        get_route("/", session::home::<S>),
        get_route("/sign-in", session::sign_in_page::<S>),
        post_route("/sign-in", session::sign_in::<S>),
        post_route("/sign-out", session::sign_out::<S>),
        get_route("/language", session::switch_language),
        // The canteen staff's pages.
        get_route("/staff", staff::search::<S>),
        get_route("/staff/accounts/{account}", staff::account::<S>),
        post_route("/staff/accounts/{account}/top-up", staff::top_up::<S>),
        post_route("/staff/cards/{uid}/block", staff::block_card::<S>),
        post_route("/staff/cards/{uid}/replace", staff::replace_card::<S>),
        post_route("/staff/pupils/{pupil}/dietary", staff::dietary::<S>),
        get_route("/staff/meals", staff::meals::<S>),
        // The finance office's dashboard and kiosk fleet.
        get_route("/finance", finance::dashboard::<S>),
        get_route("/finance/kiosks", finance::kiosks::<S>),
        // A day's reconciliation, its proposed voids, sign-off and exports.
        get_route("/finance/reconciliations", reconcile::day::<S>),
        post_route("/finance/reconciliations", reconcile::run::<S>),
        post_route(
            "/finance/reconciliations/{date}/sign-off",
            reconcile::sign_off::<S>,
        ),
        post_route(
            "/finance/proposed-voids/{id}/approve",
            reconcile::approve::<S>,
        ),
        post_route(
            "/finance/proposed-voids/{id}/reject",
            reconcile::reject::<S>,
        ),
        get_route("/finance/exports/{kind}", reconcile::download::<S>),
        // City IT's pages: kiosks, users, sites and the CSV import.
        get_route("/admin", admin::index::<S>),
        get_route("/admin/devices", admin::devices::<S>),
        post_route("/admin/devices", admin::enrol::<S>),
        post_route("/admin/devices/{device}/revoke", admin::revoke::<S>),
        get_route("/admin/users", admin::users::<S>),
        post_route("/admin/users", admin::add_user::<S>),
        post_route("/admin/users/{name}", admin::update_user::<S>),
        post_route(
            "/admin/users/{name}/disabled",
            admin::set_user_disabled::<S>,
        ),
        get_route("/admin/sites/{site}", admin::site::<S>),
        post_route("/admin/sites/{site}/tariffs", admin::save_tariff::<S>),
        post_route("/admin/sites/{site}/services", admin::save_service::<S>),
        get_route("/admin/import", admin::import_page::<S>),
        post_route("/admin/import", admin::import::<S>),
    ]
}

/// A page read with `GET`: the method is named once, for the table and the router alike.
fn get_route<S: Store, H: Handler<T, SharedApp<S>>, T: 'static>(
    path: &'static str,
    handler: H,
) -> Route<S> {
    (Method::GET, path, get(handler))
}

/// A form posted with `POST`.
fn post_route<S: Store, H: Handler<T, SharedApp<S>>, T: 'static>(
    path: &'static str,
    handler: H,
) -> Route<S> {
    (Method::POST, path, post(handler))
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

    /// A form field that breaks a rule: the field's name, then the rule.
    pub fn field(lang: Lang, what: Msg, error: impl std::fmt::Display) -> PageError {
        PageError::invalid(lang, format!("{}: {error}", what.text(lang)))
    }

    /// A path whose identifier does not parse names no page.
    pub fn not_found<E>(lang: Lang) -> impl FnOnce(E) -> PageError {
        move |_| PageError::new(lang, PageErrorKind::NotFound)
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

/// What a form just did, for the page it goes back to: `?done=saved`.
#[derive(Debug, Deserialize)]
pub struct DoneQuery {
    #[serde(default)]
    pub done: String,
}

impl DoneQuery {
    /// The notice of what was done, if `done` is one of `notices`' codes; else nothing.
    pub fn notice(&self, lang: Lang, notices: &[(&str, Msg)]) -> Markup {
        let done = notices.iter().find(|(code, _)| *code == self.done);
        html! { @if let Some((_, msg)) = done { p.notice role="status" { (msg.text(lang)) } } }
    }
}

/// A page's result.
pub type PageResult = Result<Response, PageError>;

/// A 303 to `path`, after a form that changed something.
pub fn see_other(path: &str) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, path.to_owned())]).into_response()
}

/// The sites' service day now, by the service's clock.
pub fn service_today<S: Store>(app: &SharedApp<S>, lang: Lang) -> Result<ServiceDate, PageError> {
    layout::service_day(app.clock.now()).ok_or_else(|| PageError::invalid(lang, "clock"))
}
