//! Who a person is: a name and a password checked against its Argon2 hash, with a lock-out
//! after [`SIGN_IN_FAILURES_MAX`] failures under one name within [`SIGN_IN_LOCK_MS`]; and the
//! web sessions a successful sign-in opens.
//!
//! A session is a row in the store (`web_sessions`), found by the SHA-256 of a random token the
//! browser keeps in a cookie: signing out ends it for good, a changed role applies at the next
//! request, and several instances in front of one database share sessions without sharing a
//! key.

use base64::Engine as _;
use proto::{Digest, Timestamp};
use ring::rand::{SecureRandom, SystemRandom};

use crate::limits::{SESSION_DURATION_MS, SIGN_IN_FAILURES_MAX, SIGN_IN_LOCK_MS};
use crate::store::{Mode, PeopleRows, SessionRows, Store, StoreError, WebSession};
use crate::users::{Role, User};

/// Random bytes in a session token and a CSRF token.
const TOKEN_BYTES: usize = 32;

/// What a sign-in came to.
#[derive(Debug)]
pub enum SignIn {
    /// The password matched a user with one of the roles asked for.
    Known(User),
    /// Too many failures under this name lately: refused whatever the password.
    Locked,
    /// Unknown name, wrong password, or a role not admitted here.
    Failed,
}

/// Checks `password` for `name`, admitting `roles` only, and counts a failure against the name.
pub async fn check_password<S: Store>(
    store: &S,
    name: &str,
    password: String,
    roles: &[Role],
    now: Timestamp,
) -> Result<SignIn, StoreError> {
    let window_start = Timestamp::from_unix_ms(now.unix_ms().saturating_sub(SIGN_IN_LOCK_MS))
        .map_err(|error| StoreError::Unavailable(error.to_string()))?;
    let failures = store
        .begin(Mode::Single)
        .await?
        .failed_sign_ins(name, window_start)
        .await?;
    if failures >= SIGN_IN_FAILURES_MAX {
        tracing::warn!(
            user = name,
            "sign-in refused: locked after repeated failures"
        );
        return Ok(SignIn::Locked);
    }
    let user = store.begin(Mode::Single).await?.user(name).await?;
    // Argon2 is deliberately slow: keep it off the threads that serve requests.
    let verified = match user {
        Some(user) => tokio::task::spawn_blocking(move || {
            let verified = user.verify_password(&password);
            verified.then_some(user)
        })
        .await
        .map_err(|error| StoreError::Unavailable(error.to_string()))?,
        None => None,
    };
    let mut transaction = store.begin(Mode::Single).await?;
    let Some(user) = verified.filter(|user| roles.contains(&user.role)) else {
        transaction
            .insert_failed_sign_in(name, now, window_start)
            .await?;
        tracing::warn!(user = name, "sign-in failed");
        return Ok(SignIn::Failed);
    };
    transaction.clear_failed_sign_ins(name).await?;
    Ok(SignIn::Known(user))
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
