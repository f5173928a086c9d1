//! Signing in and out, and what every page checks first.
//!
//! A session is a row in the store (`web_sessions`), found by the SHA-256 of a random token
//! that the browser keeps in a `Secure`, `HttpOnly`, `SameSite=Strict` cookie. A server-side
//! row rather than a signed cookie: signing out ends the session for good, a changed role
//! applies at the next request, and several back-office instances in front of one database
//! share sessions without sharing a key.
//!
//! Every form carries the session's CSRF token in a hidden field, compared with the stored
//! one; the sign-in form, before any session, carries a token that must equal the one in its
//! own cookie. After [`SIGN_IN_FAILURES_MAX`] failed sign-ins under one name within
//! [`SIGN_IN_LOCK_MS`], that name is locked for the rest of the window, whatever the password.

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use proto::{Digest, Timestamp};
use ring::rand::{SecureRandom, SystemRandom};
use serde::Deserialize;

use super::i18n::{Lang, Msg};
use super::{PageError, PageErrorKind, PageResult, layout, see_other};
use crate::http::SharedApp;
use crate::store::{Store, WebSession};
use crate::users::{Role, User};

/// How long a session lasts: a working day.
pub const SESSION_DURATION_MS: i64 = 10 * 60 * 60 * 1_000;

/// Failed sign-ins under one name before it is locked.
pub const SIGN_IN_FAILURES_MAX: u32 = 5;

/// The window in which failures count, and so the longest lock.
pub const SIGN_IN_LOCK_MS: i64 = 15 * 60 * 1_000;

/// Random bytes in a session token and a CSRF token.
const TOKEN_BYTES: usize = 32;

pub const SESSION_COOKIE: &str = "canteen_session";
pub const SIGN_IN_COOKIE: &str = "canteen_sign_in";
pub const LANGUAGE_COOKIE: &str = "canteen_lang";

/// The name of the hidden field that carries the CSRF token.
pub const CSRF_FIELD: &str = "csrf";

/// The signed-in user of a request.
#[derive(Debug)]
pub struct Viewer {
    pub user: User,
    pub csrf: String,
    pub lang: Lang,
    token_hash: Digest,
}

impl Viewer {
    /// Staff see their site only; other roles every site.
    pub fn may_see_site(&self, site: &proto::SiteId) -> bool {
        match (&self.user.role, &self.user.site) {
            (Role::Staff, Some(own)) => own == site,
            (Role::Staff, None) => false,
            _ => true,
        }
    }

    pub fn check_site(&self, site: &proto::SiteId) -> Result<(), PageError> {
        if self.may_see_site(site) {
            Ok(())
        } else {
            Err(PageError::new(self.lang, PageErrorKind::Forbidden))
        }
    }
}

/// The signed-in user, if their role is one of `roles`: without a session the page answers
/// with the sign-in page, with another role 403.
pub async fn viewer<S: Store>(
    app: &SharedApp<S>,
    headers: &HeaderMap,
    roles: &[Role],
) -> Result<Viewer, PageError> {
    let lang = language(headers);
    let Some(token) = cookie(headers, SESSION_COOKIE) else {
        return Err(PageError::new(lang, PageErrorKind::SignIn));
    };
    let token_hash = Digest::of(token.as_bytes());
    let Some((session, user)) = app
        .store
        .web_session(&token_hash, app.clock.now())
        .await
        .map_err(PageError::store(lang))?
    else {
        return Err(PageError::new(lang, PageErrorKind::SignIn));
    };
    if !roles.contains(&user.role) {
        return Err(PageError::new(lang, PageErrorKind::Forbidden));
    }
    Ok(Viewer {
        user,
        csrf: session.csrf,
        lang,
        token_hash,
    })
}

/// A submitted form's fields, in order (a field may repeat).
#[derive(Debug)]
pub struct Form(Vec<(String, String)>);

impl Form {
    pub fn parse(body: &[u8]) -> Form {
        Form(form_urlencoded::parse(body).into_owned().collect())
    }

    /// The first value of `name`, trimmed; empty when absent.
    pub fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(field, _)| field == name)
            .map_or("", |(_, value)| value.trim())
    }

    /// Every value of `name`.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(field, _)| field == name)
            .map(|(_, value)| value.as_str())
            .collect()
    }
}

/// The form of a signed-in user, refused unless it carries the session's CSRF token.
pub fn checked_form(viewer: &Viewer, body: &Bytes) -> Result<Form, PageError> {
    let form = Form::parse(body);
    if !same_secret(form.get(CSRF_FIELD), &viewer.csrf) {
        tracing::warn!(
            user = viewer.user.name,
            "form without a valid CSRF token refused"
        );
        return Err(PageError::new(viewer.lang, PageErrorKind::Csrf));
    }
    Ok(form)
}

/// Compares secrets in time independent of where they differ.
fn same_secret(given: &str, expected: &str) -> bool {
    given.len() == expected.len()
        && !expected.is_empty()
        && given
            .bytes()
            .zip(expected.bytes())
            .fold(0_u8, |difference, (a, b)| difference | (a ^ b))
            == 0
}

/// The page language: the cookie set by the language switch, else the browser's first
/// language we have, else French.
pub fn language(headers: &HeaderMap) -> Lang {
    if let Some(lang) = cookie(headers, LANGUAGE_COOKIE).and_then(|code| Lang::parse(&code)) {
        return lang;
    }
    headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|value| value.to_str().ok())
        .and_then(Lang::from_accept_language)
        .unwrap_or(Lang::Fr)
}

/// The value of cookie `name`.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.to_owned())
}

fn set_cookie(name: &str, value: &str, max_age_s: i64) -> HeaderValue {
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; Max-Age={max_age_s}; HttpOnly; Secure; SameSite=Strict"
    ))
    .expect("cookie names and base64url values are valid header text")
}

fn random_token() -> Result<String, ring::error::Unspecified> {
    let mut bytes = [0_u8; TOKEN_BYTES];
    SystemRandom::new().fill(&mut bytes)?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// Where each role starts.
pub fn home_path(role: Role) -> &'static str {
    match role {
        Role::Staff | Role::Payments => "/staff",
        Role::Finance => "/finance",
        Role::Admin => "/admin",
    }
}

/// Roles that use the pages; the payment provider has only the API.
const PAGE_ROLES: [Role; 3] = [Role::Staff, Role::Finance, Role::Admin];

/// `GET /`: the signed-in user's start page.
pub async fn home<S: Store>(State(app): State<SharedApp<S>>, headers: HeaderMap) -> PageResult {
    let viewer = viewer(&app, &headers, &PAGE_ROLES).await?;
    Ok(see_other(home_path(viewer.user.role)))
}

/// `GET /sign-in`.
pub async fn sign_in_page<S: Store>(
    State(_app): State<SharedApp<S>>,
    headers: HeaderMap,
) -> PageResult {
    Ok(sign_in_form(
        language(&headers),
        &headers,
        None,
        StatusCode::OK,
    ))
}

/// The sign-in form, with its pre-session CSRF token (kept from its cookie, or new).
fn sign_in_form(
    lang: Lang,
    headers: &HeaderMap,
    error: Option<Msg>,
    status: StatusCode,
) -> Response {
    let token = match cookie(headers, SIGN_IN_COOKIE).filter(|token| token.len() >= 32) {
        Some(token) => token,
        None => match random_token() {
            Ok(token) => token,
            Err(_) => return unavailable(lang),
        },
    };
    let page = layout::sign_in_page(lang, &token, error);
    let mut response = (status, page).into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(SIGN_IN_COOKIE, &token, SIGN_IN_LOCK_MS / 1_000),
    );
    response
}

fn unavailable(lang: Lang) -> Response {
    PageError::new(
        lang,
        PageErrorKind::Store(crate::store::StoreError::Unavailable(
            "the system random source failed".to_owned(),
        )),
    )
    .into_response()
}

/// `POST /sign-in`: name and password; a session on success.
pub async fn sign_in<S: Store>(
    State(app): State<SharedApp<S>>,
    headers: HeaderMap,
    body: Bytes,
) -> PageResult {
    let lang = language(&headers);
    let form = Form::parse(&body);
    let expected = cookie(&headers, SIGN_IN_COOKIE).unwrap_or_default();
    if !same_secret(form.get(CSRF_FIELD), &expected) {
        return Err(PageError::new(lang, PageErrorKind::Csrf));
    }
    let name = form.get("name").to_owned();
    let password = form.get("password").to_owned();
    let now = app.clock.now();
    let window_start = Timestamp::from_unix_ms(now.unix_ms() - SIGN_IN_LOCK_MS)
        .map_err(|_| PageError::new(lang, PageErrorKind::SignIn))?;
    let store = &app.store;
    let failures = store
        .failed_sign_ins(&name, window_start)
        .await
        .map_err(PageError::store(lang))?;
    if failures >= SIGN_IN_FAILURES_MAX {
        tracing::warn!(
            user = name,
            "sign-in refused: locked after repeated failures"
        );
        return Ok(sign_in_form(
            lang,
            &headers,
            Some(Msg::SignInLocked),
            StatusCode::TOO_MANY_REQUESTS,
        ));
    }
    let user = store.user(&name).await.map_err(PageError::store(lang))?;
    // Argon2 is deliberately slow: keep it off the threads that serve requests.
    let verified = match user {
        Some(user) => tokio::task::spawn_blocking(move || {
            let verified = user.verify_password(&password);
            verified.then_some(user)
        })
        .await
        .map_err(|_| PageError::new(lang, PageErrorKind::SignIn))?,
        None => None,
    };
    let Some(user) = verified.filter(|user| PAGE_ROLES.contains(&user.role)) else {
        store
            .record_failed_sign_in(&name, now, window_start)
            .await
            .map_err(PageError::store(lang))?;
        tracing::warn!(user = name, "sign-in failed");
        return Ok(sign_in_form(
            lang,
            &headers,
            Some(Msg::SignInFailed),
            StatusCode::UNAUTHORIZED,
        ));
    };
    store
        .clear_failed_sign_ins(&name)
        .await
        .map_err(PageError::store(lang))?;
    let (Ok(token), Ok(csrf)) = (random_token(), random_token()) else {
        return Ok(unavailable(lang));
    };
    let expires_at = Timestamp::from_unix_ms(now.unix_ms() + SESSION_DURATION_MS)
        .map_err(|_| PageError::new(lang, PageErrorKind::SignIn))?;
    let session = WebSession {
        token_hash: Digest::of(token.as_bytes()),
        user: user.name.clone(),
        csrf,
        expires_at,
    };
    store
        .create_web_session(&session, now)
        .await
        .map_err(PageError::store(lang))?;
    tracing::info!(user = user.name, role = user.role.as_str(), "signed in");
    let mut response = see_other(home_path(user.role));
    let headers = response.headers_mut();
    headers.append(
        header::SET_COOKIE,
        set_cookie(SESSION_COOKIE, &token, SESSION_DURATION_MS / 1_000),
    );
    headers.append(header::SET_COOKIE, set_cookie(SIGN_IN_COOKIE, "", 0));
    Ok(response)
}

/// `POST /sign-out`: ends the session in the store and forgets the cookie.
pub async fn sign_out<S: Store>(
    State(app): State<SharedApp<S>>,
    headers: HeaderMap,
    body: Bytes,
) -> PageResult {
    let viewer = viewer(&app, &headers, &Role::ALL).await?;
    checked_form(&viewer, &body)?;
    app.store
        .end_web_session(&viewer.token_hash)
        .await
        .map_err(PageError::store(viewer.lang))?;
    tracing::info!(user = viewer.user.name, "signed out");
    let mut response = see_other("/sign-in");
    response
        .headers_mut()
        .append(header::SET_COOKIE, set_cookie(SESSION_COOKIE, "", 0));
    Ok(response)
}

#[derive(Debug, Deserialize)]
pub struct LanguageQuery {
    to: String,
    #[serde(default)]
    back: String,
}

/// `GET /language?to=de&back=/staff`: remembers the language and goes back. Only a path of
/// this site is followed, so the switch cannot send anyone elsewhere.
pub async fn switch_language(Query(query): Query<LanguageQuery>) -> Response {
    let Some(lang) = Lang::parse(&query.to) else {
        return see_other("/");
    };
    let back = if query.back.starts_with('/') && !query.back.starts_with("//") {
        query.back.as_str()
    } else {
        "/"
    };
    let mut response = see_other(back);
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(LANGUAGE_COOKIE, lang.code(), 365 * 24 * 60 * 60),
    );
    response
}

#[cfg(test)]
mod tests {
    use axum::http::{HeaderMap, HeaderValue, header};

    use super::{Lang, cookie, language, same_secret};

    fn check(cookies: &str, accept: &str, expected: Lang) {
        let mut headers = HeaderMap::new();
        if !cookies.is_empty() {
            headers.insert(header::COOKIE, HeaderValue::from_str(cookies).unwrap());
        }
        if !accept.is_empty() {
            headers.insert(
                header::ACCEPT_LANGUAGE,
                HeaderValue::from_str(accept).unwrap(),
            );
        }
        assert_eq!(language(&headers), expected, "{cookies} / {accept}");
    }

    #[test]
    fn languages() {
        check("", "", Lang::Fr);
        check("", "de-DE,de;q=0.9,en;q=0.8", Lang::De);
        check("", "en-GB", Lang::En);
        check("", "es-ES, it", Lang::Fr);
        check("", "es-ES, en;q=0.5", Lang::En);
        check("canteen_lang=de", "en-GB", Lang::De);
        check("a=b; canteen_lang=en", "de", Lang::En);
        check("canteen_lang=xx", "de", Lang::De);
    }

    #[test]
    fn cookies_and_secrets() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; canteen_session=abc=; b=2"),
        );
        assert_eq!(cookie(&headers, "canteen_session").as_deref(), Some("abc="));
        assert_eq!(cookie(&headers, "c"), None);
        assert!(same_secret("token", "token"));
        assert!(!same_secret("token", "tokem"));
        assert!(!same_secret("", ""));
        assert!(!same_secret("tok", "token"));
    }
}
