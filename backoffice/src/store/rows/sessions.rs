//! Signed-in browsers (`web_sessions`, keyed by the hash of the cookie's token), failed
//! sign-ins (`sign_in_failures`), which the lock-out counts, and the API tokens of machine
//! clients (`api_tokens`, keyed by the token's hash).

use std::future::Future;

use proto::{Digest, SiteId, Timestamp};

use super::{corrupt, parse_digest, parse_site, parse_timestamp};
use crate::store::StoreError;
use crate::store::sql::{Row, Sql, values};
use crate::users::{Role, User};

/// A signed-in browser.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebSession {
    /// The SHA-256 of the cookie's random token: a copy of the table signs no one in.
    pub token_hash: Digest,
    pub user: String,
    /// The token every form of the session carries.
    pub csrf: String,
    pub expires_at: Timestamp,
}

/// A machine client's API token, as stored: its hash, never the token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiToken {
    /// What city IT called it (the provider, the script): the name its actions are logged under.
    pub name: String,
    pub token_hash: Digest,
    pub role: Role,
    pub site: Option<SiteId>,
    pub created_by: String,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
}

const API_TOKEN_COLUMNS: &str =
    "name, token_hash, role, site, created_by, created_at, expires_at, revoked_at";

pub trait SessionRows: Sql {
    fn insert_api_token(
        &mut self,
        token: &ApiToken,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        async move {
            self.insert_new(
                &format!(
                    "INSERT INTO api_tokens ({API_TOKEN_COLUMNS})
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
                ),
                values![
                    token.name.as_str(),
                    token.token_hash.as_bytes().as_slice(),
                    token.role.as_str(),
                    token.site.as_ref().map(SiteId::as_str),
                    token.created_by.as_str(),
                    token.created_at.unix_ms(),
                    token.expires_at.unix_ms(),
                    token.revoked_at.map(Timestamp::unix_ms)
                ],
                "API token",
                &token.name,
            )
            .await
        }
    }

    /// The token with this hash, unrevoked and unexpired at `now`.
    fn valid_api_token(
        &mut self,
        token_hash: &Digest,
        now: Timestamp,
    ) -> impl Future<Output = Result<Option<ApiToken>, StoreError>> + Send {
        async move {
            let sql = format!(
                "SELECT {API_TOKEN_COLUMNS} FROM api_tokens
                 WHERE token_hash = $1 AND revoked_at IS NULL AND expires_at > $2"
            );
            self.query_optional(
                &sql,
                values![token_hash.as_bytes().as_slice(), now.unix_ms()],
                read_api_token,
            )
            .await
        }
    }

    /// Every token, by name.
    fn api_tokens(&mut self) -> impl Future<Output = Result<Vec<ApiToken>, StoreError>> + Send {
        async move {
            let sql = format!("SELECT {API_TOKEN_COLUMNS} FROM api_tokens ORDER BY name");
            self.query(&sql, Vec::new(), read_api_token).await
        }
    }

    fn revoke_api_token(
        &mut self,
        name: &str,
        at: Timestamp,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.update_existing(
            "UPDATE api_tokens SET revoked_at = $1 WHERE name = $2 AND revoked_at IS NULL",
            values![at.unix_ms(), name],
            "unrevoked API token",
            name,
        )
    }

    /// Opens a session, forgetting sessions that expired before `now`.
    fn insert_web_session(
        &mut self,
        session: &WebSession,
        now: Timestamp,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        async move {
            self.write(
                "DELETE FROM web_sessions WHERE expires_at <= $1",
                values![now.unix_ms()],
            )
            .await?;
            self.write(
                "INSERT INTO web_sessions (token_hash, user_name, csrf, expires_at)
                 VALUES ($1, $2, $3, $4)",
                values![
                    session.token_hash.as_bytes().as_slice(),
                    session.user.as_str(),
                    session.csrf.as_str(),
                    session.expires_at.unix_ms()
                ],
            )
            .await
        }
    }

    /// The unexpired session with this token hash, and its user as stored now (a changed role
    /// applies at the next request).
    fn web_session(
        &mut self,
        token_hash: &Digest,
        now: Timestamp,
    ) -> impl Future<Output = Result<Option<(WebSession, User)>, StoreError>> + Send {
        self.query_optional(
            "SELECT u.name, u.role, u.site, u.password_hash, u.disabled_at, s.token_hash,
                    s.csrf, s.expires_at
             FROM web_sessions s JOIN users u ON u.name = s.user_name
             WHERE s.token_hash = $1 AND s.expires_at > $2 AND u.disabled_at IS NULL",
            values![token_hash.as_bytes().as_slice(), now.unix_ms()],
            |row| {
                let user = super::people::read_user(row)?;
                let session = WebSession {
                    token_hash: parse_digest(&row.bytes(5)?)?,
                    user: user.name.clone(),
                    csrf: row.text(6)?,
                    expires_at: parse_timestamp(row.int(7)?)?,
                };
                Ok((session, user))
            },
        )
    }

    /// Signs a session out.
    fn delete_web_session(
        &mut self,
        token_hash: &Digest,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.write(
            "DELETE FROM web_sessions WHERE token_hash = $1",
            values![token_hash.as_bytes().as_slice()],
        )
    }

    /// Ends every session of `user`.
    fn delete_web_sessions_of(
        &mut self,
        user: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.write(
            "DELETE FROM web_sessions WHERE user_name = $1",
            values![user],
        )
    }

    /// The failed sign-ins under `name` from `client` since `since`.
    fn failed_sign_ins(
        &mut self,
        name: &str,
        client: &str,
        since: Timestamp,
    ) -> impl Future<Output = Result<u32, StoreError>> + Send {
        async move {
            let count = self
                .query_one(
                    "SELECT COUNT(*) FROM sign_in_failures
                     WHERE user_name = $1 AND client = $2 AND at >= $3",
                    values![name, client, since.unix_ms()],
                    |row| row.int(0),
                )
                .await?;
            Ok(u32::try_from(count).unwrap_or(u32::MAX))
        }
    }

    /// Counts a sign-in attempt under `name` from `client` as failed (until it succeeds),
    /// forgetting failures before `forget_before`.
    fn insert_failed_sign_in(
        &mut self,
        name: &str,
        client: &str,
        at: Timestamp,
        forget_before: Timestamp,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        async move {
            self.write(
                "DELETE FROM sign_in_failures WHERE at < $1",
                values![forget_before.unix_ms()],
            )
            .await?;
            self.write(
                "INSERT INTO sign_in_failures (user_name, client, at) VALUES ($1, $2, $3)",
                values![name, client, at.unix_ms()],
            )
            .await
        }
    }

    fn clear_failed_sign_ins(
        &mut self,
        name: &str,
        client: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.write(
            "DELETE FROM sign_in_failures WHERE user_name = $1 AND client = $2",
            values![name, client],
        )
    }
}

impl<T: Sql> SessionRows for T {}

fn read_api_token(row: &dyn Row) -> Result<ApiToken, StoreError> {
    let role = row.text(2)?;
    Ok(ApiToken {
        name: row.text(0)?,
        token_hash: parse_digest(&row.bytes(1)?)?,
        role: Role::parse(&role).ok_or_else(|| corrupt("role", &role))?,
        site: row.opt_text(3)?.map(|site| parse_site(&site)).transpose()?,
        created_by: row.text(4)?,
        created_at: parse_timestamp(row.int(5)?)?,
        expires_at: parse_timestamp(row.int(6)?)?,
        revoked_at: row.opt_int(7)?.map(parse_timestamp).transpose()?,
    })
}
