//! Who a person is: a name and a password checked against its Argon2 hash, with a lock-out
//! after [`SIGN_IN_FAILURES_MAX`] failures under one name from one client within
//! [`SIGN_IN_LOCK_MS`] and at most [`PASSWORD_CHECKS_IN_FLIGHT_MAX`] checks at once; and the
//! web sessions a successful sign-in opens.
//!
//! A session is a row in the store (`web_sessions`), found by the SHA-256 of a random token the
//! browser keeps in a cookie: signing out ends it for good, a changed role applies at the next
//! request, and several instances in front of one database share sessions without sharing a
//! key.

use std::time::Duration;

use axum::http::HeaderMap;
use base64::Engine as _;
use proto::{Digest, Timestamp};
use ring::rand::{SecureRandom, SystemRandom};
use tokio::sync::Semaphore;

use crate::limits::{
    PASSWORD_CHECK_WAIT_MS, PASSWORD_CHECKS_IN_FLIGHT_MAX, SESSION_DURATION_MS,
    SIGN_IN_FAILURES_MAX, SIGN_IN_LOCK_MS,
};
use crate::store::{Mode, PeopleRows, SessionRows, Store, StoreError, WebSession};
use crate::users::{Role, User};

/// Random bytes in a session token and a CSRF token.
const TOKEN_BYTES: usize = 32;

/// What a sign-in came to.
#[derive(Debug)]
pub enum SignIn {
    /// The password matched a user with one of the roles asked for.
    Known(User),
    /// Too many failures under this name from this client lately: refused whatever the
    /// password.
    Locked,
    /// Unknown name, wrong password, or a role not admitted here.
    Failed,
    /// Too many password checks are running: try again in a moment.
    Busy,
}

/// The header in which the service's outer layer passes a request's client address to the
/// handlers (`crate::app`); a copy sent by the client is removed first.
pub const CLIENT_HEADER: &str = "x-canteen-client";

/// The client address of a request, as the outer layer set it.
pub fn client_of(headers: &HeaderMap) -> String {
    headers
        .get(CLIENT_HEADER)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// A name and password, from a client address (the lock-out's other half).
#[derive(Debug)]
pub struct Attempt {
    pub name: String,
    pub password: String,
    pub client: String,
}

/// The password checks running now, at most [`PASSWORD_CHECKS_IN_FLIGHT_MAX`].
static CHECKS: Semaphore = Semaphore::const_new(PASSWORD_CHECKS_IN_FLIGHT_MAX);

/// Checks `attempt`, admitting `roles` only: the web sign-in and the API's Basic credentials
/// both come here. The attempt counts as a failure before the password is checked (and stops
/// counting when it matched), so concurrent guesses each see the others: no more than
/// [`SIGN_IN_FAILURES_MAX`] of them are ever checked per name and client within
/// [`SIGN_IN_LOCK_MS`]. An unknown name takes as long as a known one; a name no user can have
/// is neither stored nor logged.
pub async fn check_password<S: Store>(
    store: &S,
    attempt: Attempt,
    roles: &[Role],
    now: Timestamp,
) -> Result<SignIn, StoreError> {
    let Attempt {
        name,
        password,
        client,
    } = attempt;
    if !crate::users::is_user_name(&name) {
        return Ok(SignIn::Failed);
    }
    let window_start = Timestamp::from_unix_ms(now.unix_ms().saturating_sub(SIGN_IN_LOCK_MS))
        .map_err(|error| StoreError::Unavailable(error.to_string()))?;
    let mut transaction = store.begin(Mode::Single).await?;
    transaction
        .insert_failed_sign_in(&name, &client, now, window_start)
        .await?;
    let failures = transaction
        .failed_sign_ins(&name, &client, window_start)
        .await?;
    drop(transaction);
    if failures > SIGN_IN_FAILURES_MAX {
        tracing::warn!(
            user = name,
            client,
            "sign-in refused: locked after repeated failures"
        );
        return Ok(SignIn::Locked);
    }
    let user = store.begin(Mode::Single).await?.user(&name).await?;
    let Some(verified) = verified(user, password).await? else {
        return Ok(SignIn::Busy);
    };
    let admitted = |user: &User| !user.disabled && roles.contains(&user.role);
    let Some(user) = verified.filter(admitted) else {
        tracing::warn!(user = name, client, "sign-in failed");
        return Ok(SignIn::Failed);
    };
    store
        .begin(Mode::Single)
        .await?
        .clear_failed_sign_ins(&name, &client)
        .await?;
    Ok(SignIn::Known(user))
}

/// `user` if `password` is theirs, checked on a blocking thread (Argon2 is deliberately slow)
/// once a place among the checks in flight is free; `None` when none freed in time.
async fn verified(
    user: Option<User>,
    password: String,
) -> Result<Option<Option<User>>, StoreError> {
    let wait = Duration::from_millis(PASSWORD_CHECK_WAIT_MS);
    let Ok(Ok(_place)) = tokio::time::timeout(wait, CHECKS.acquire()).await else {
        return Ok(None);
    };
    tokio::task::spawn_blocking(move || match user {
        Some(user) => user.verify_password(&password).then_some(user),
        None => {
            crate::users::verify_nobody(&password);
            None
        }
    })
    .await
    .map(Some)
    .map_err(|error| StoreError::Unavailable(error.to_string()))
}

/// A new web session for `user`: its token (for the cookie) and its row.
pub async fn open_session<S: Store>(
    store: &S,
    user: &User,
    now: Timestamp,
) -> Result<(String, WebSession), StoreError> {
    let unavailable = |_| StoreError::Unavailable("the system random source failed".to_owned());
    let token = random_token().map_err(unavailable)?;
    let csrf = random_token().map_err(unavailable)?;
    let expires_at = Timestamp::from_unix_ms(now.unix_ms().saturating_add(SESSION_DURATION_MS))
        .map_err(|error| StoreError::Unavailable(error.to_string()))?;
    let session = WebSession {
        token_hash: Digest::of(token.as_bytes()),
        user: user.name.clone(),
        csrf,
        expires_at,
    };
    store
        .begin(Mode::Single)
        .await?
        .insert_web_session(&session, now)
        .await?;
    tracing::info!(user = user.name, role = user.role.as_str(), "signed in");
    Ok((token, session))
}

/// The unexpired session of `token`, and its user as stored now.
pub async fn session<S: Store>(
    store: &S,
    token: &str,
    now: Timestamp,
) -> Result<Option<(WebSession, User)>, StoreError> {
    store
        .begin(Mode::Single)
        .await?
        .web_session(&Digest::of(token.as_bytes()), now)
        .await
}

/// Signs a session out.
pub async fn end_session<S: Store>(store: &S, token_hash: &Digest) -> Result<(), StoreError> {
    store
        .begin(Mode::Single)
        .await?
        .delete_web_session(token_hash)
        .await
}

/// A random token, URL-safe base64.
pub fn random_token() -> Result<String, ring::error::Unspecified> {
    let mut bytes = [0_u8; TOKEN_BYTES];
    SystemRandom::new().fill(&mut bytes)?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}
