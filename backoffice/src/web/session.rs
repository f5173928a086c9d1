//! Signing in and out, and what every page checks first: the session's cookie (`Secure`,
//! `HttpOnly`, `SameSite=Strict`; `crate::sign_in` keeps the sessions and the lock-out), the
//! viewer's role, and on every form the session's CSRF token in a hidden field, compared with
//! the stored one. The sign-in form, before any session, carries a token that must equal the
//! one in its own cookie.

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use proto::{Digest, Timestamp};
use serde::Deserialize;

use super::i18n::{Lang, Msg};
use super::{PageError, PageErrorKind, PageResult, layout, see_other};
use crate::limits::{SESSION_DURATION_MS, SIGN_IN_LOCK_MS};
use crate::manage::Actor;
use crate::sign_in::{self, SignIn, random_token};
use crate::state::SharedApp;
use crate::store::Store;
use crate::users::{Role, User};

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
    /// The viewer as the use cases see them.
    pub fn actor(&self) -> Actor {
        Actor::user(&self.user)
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
    let Some((session, user)) = sign_in::session(&app.store, &token, app.clock.now())
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

/// The signed-in user, if their role is one of `roles`, and the form they posted, refused
/// unless it carries their session's CSRF token.
pub async fn signed_form<S: Store>(
    app: &SharedApp<S>,
    headers: &HeaderMap,
    roles: &[Role],
    body: &Bytes,
) -> Result<(Viewer, Form), PageError> {
    let viewer = viewer(app, headers, roles).await?;
    let form = checked_form(&viewer, body)?;
    Ok((viewer, form))
}

/// The form of a signed-in user, refused unless it carries the session's CSRF token.
fn checked_form(viewer: &Viewer, body: &Bytes) -> Result<Form, PageError> {
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
    let attempt = sign_in::Attempt {
        name: form.get("name").to_owned(),
        password: form.get("password").to_owned(),
        client: sign_in::client_of(&headers),
    };
    let now = app.clock.now();
    let checked = sign_in::check_password(&app.store, attempt, &PAGE_ROLES, now)
        .await
        .map_err(PageError::store(lang))?;
    let (refusal, status) = match checked {
        SignIn::Known(user) => return signed_in(&app, lang, &user, now).await,
        SignIn::Locked => (Msg::SignInLocked, StatusCode::TOO_MANY_REQUESTS),
        SignIn::Failed => (Msg::SignInFailed, StatusCode::UNAUTHORIZED),
        SignIn::Busy => (Msg::SignInBusy, StatusCode::SERVICE_UNAVAILABLE),
    };
    Ok(sign_in_form(lang, &headers, Some(refusal), status))
}

/// A new session for `user` from `now`, its cookie set and the pre-session one forgotten, and
/// their start page.
async fn signed_in<S: Store>(
    app: &SharedApp<S>,
    lang: Lang,
    user: &User,
    now: Timestamp,
) -> PageResult {
    let (token, _) = sign_in::open_session(&app.store, user, now)
        .await
        .map_err(PageError::store(lang))?;
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
    let (viewer, _) = signed_form(&app, &headers, &Role::ALL, &body).await?;
    sign_in::end_session(&app.store, &viewer.token_hash)
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
    let mut response = see_other(local_path(&query.back).unwrap_or("/"));
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(LANGUAGE_COOKIE, lang.code(), 365 * 24 * 60 * 60),
    );
    response
}

/// `back` when it is a path of this site as a browser reads it: one leading slash, and neither a
/// backslash nor a control character or space (browsers read `/\host` and `/<tab>/host` as
/// `//host`, another site).
fn local_path(back: &str) -> Option<&str> {
    let local = back.starts_with('/')
        && !back.starts_with("//")
        && !back
            .chars()
            .any(|c| c == '\\' || c.is_control() || c.is_whitespace());
    local.then_some(back)
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
