//! API tokens of machine clients (the online payment provider, scripts), made and revoked by
//! city IT. A token is 32 random bytes shown once; the store keeps its SHA-256, so a copy of
//! the database signs no one in, and checking one costs a hash, not Argon2.

use proto::{Digest, SiteId, Timestamp};

use super::{ADMIN, Actor, ManageError, in_transaction, read_as};
use crate::limits::{API_TOKEN_DAYS_MAX, DAY_MS};
use crate::store::{ApiToken, Mode, SessionRows, Store};
use crate::users::{Role, is_user_name};

/// The start of every token: a leaked one is recognisable in a log or a repository.
pub const TOKEN_PREFIX: &str = "canteen_";

/// What city IT asks for.
#[derive(Clone, Debug)]
pub struct NewToken {
    pub name: String,
    pub role: Role,
    /// The site of a staff token.
    pub site: Option<SiteId>,
    /// Days until it expires, 1 to [`API_TOKEN_DAYS_MAX`].
    pub days: i64,
}

/// Makes a token; answers it (shown once) and its row.
pub async fn create<S: Store>(
    store: &S,
    actor: &Actor,
    new: NewToken,
    now: Timestamp,
) -> Result<(String, ApiToken), ManageError> {
    actor.require(ADMIN)?;
    if !is_user_name(&new.name) {
        return Err(ManageError::Invalid(
            "a token's name is 1 to 64 letters, digits, '.', '-' or '_'".to_owned(),
        ));
    }
    if (new.role == Role::Staff) != new.site.is_some() {
        return Err(ManageError::Invalid(
            "a staff token has a site, and only a staff token".to_owned(),
        ));
    }
    if !(1..=API_TOKEN_DAYS_MAX).contains(&new.days) {
        return Err(ManageError::Invalid(format!(
            "a token lasts 1 to {API_TOKEN_DAYS_MAX} days"
        )));
    }
    let secret = crate::sign_in::random_token().map_err(|_| {
        ManageError::Invalid("the system random source failed; nothing was made".to_owned())
    })?;
    let token = format!("{TOKEN_PREFIX}{secret}");
    let expires_at = Timestamp::from_unix_ms(now.unix_ms().saturating_add(new.days * DAY_MS))
        .map_err(|error| ManageError::Invalid(error.to_string()))?;
    let row = ApiToken {
        name: new.name,
        token_hash: Digest::of(token.as_bytes()),
        role: new.role,
        site: new.site,
        created_by: actor.name.clone(),
        created_at: now,
        expires_at,
        revoked_at: None,
    };
    in_transaction(store, Mode::Write, async |transaction| {
        transaction.insert_api_token(&row).await
    })
    .await?;
    Ok((token, row))
}

/// Revokes a token from `at` on; its requests are refused from the next one.
pub async fn revoke<S: Store>(
    store: &S,
    actor: &Actor,
    name: &str,
    at: Timestamp,
) -> Result<(), ManageError> {
    actor.require(ADMIN)?;
    Ok(in_transaction(store, Mode::Write, async |transaction| {
        transaction.revoke_api_token(name, at).await
    })
    .await?)
}

/// Every token, revoked and expired ones included.
pub async fn list<S: Store>(store: &S, actor: &Actor) -> Result<Vec<ApiToken>, ManageError> {
    read_as(store, actor, ADMIN, async |rows| rows.api_tokens().await).await
}

/// The valid token `token` is, if any.
pub async fn find<S: Store>(
    store: &S,
    token: &str,
    now: Timestamp,
) -> Result<Option<ApiToken>, ManageError> {
    if !token.starts_with(TOKEN_PREFIX) {
        return Ok(None);
    }
    Ok(store
        .begin(Mode::Single)
        .await?
        .valid_api_token(&Digest::of(token.as_bytes()), now)
        .await?)
}
