//! Signed-in browsers (`web_sessions`, keyed by the hash of the cookie's token) and failed
//! sign-ins (`sign_in_failures`), which the lock-out counts.

use std::future::Future;

use proto::{Digest, Timestamp};

use super::{parse_digest, parse_timestamp};
use crate::store::StoreError;
use crate::store::sql::{Sql, at_most_one, one, values};
use crate::users::User;

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

pub trait SessionRows: Sql {
    /// Opens a session, forgetting sessions that expired before `now`.
    fn insert_web_session(
        &mut self,
        session: &WebSession,
        now: Timestamp,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        async move {
            self.execute(
                "DELETE FROM web_sessions WHERE expires_at <= $1",
                values![now.unix_ms()],
            )
            .await?;
            self.execute(
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
            .map(drop)
        }
    }

    /// The unexpired session with this token hash, and its user as stored now (a changed role
    /// applies at the next request).
    fn web_session(
        &mut self,
        token_hash: &Digest,
        now: Timestamp,
    ) -> impl Future<Output = Result<Option<(WebSession, User)>, StoreError>> + Send {
        async move {
            let rows = self
                .query(
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
                .await?;
            at_most_one(rows)
        }
    }

    /// Signs a session out.
    fn delete_web_session(
        &mut self,
        token_hash: &Digest,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        async move {
            self.execute(
                "DELETE FROM web_sessions WHERE token_hash = $1",
                values![token_hash.as_bytes().as_slice()],
            )
            .await
            .map(drop)
        }
    }

    /// Ends every session of `user`.
    fn delete_web_sessions_of(
        &mut self,
        user: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        async move {
            self.execute(
                "DELETE FROM web_sessions WHERE user_name = $1",
                values![user],
            )
            .await
            .map(drop)
        }
    }

    /// The failed sign-ins under `name` from `client` since `since`.
    fn failed_sign_ins(
        &mut self,
        name: &str,
        client: &str,
        since: Timestamp,
    ) -> impl Future<Output = Result<u32, StoreError>> + Send {
        async move {
            let count = one(self
                .query(
                    "SELECT COUNT(*) FROM sign_in_failures
                     WHERE user_name = $1 AND client = $2 AND at >= $3",
                    values![name, client, since.unix_ms()],
                    |row| row.int(0),
                )
                .await?)?;
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
            self.execute(
                "DELETE FROM sign_in_failures WHERE at < $1",
                values![forget_before.unix_ms()],
            )
            .await?;
            self.execute(
                "INSERT INTO sign_in_failures (user_name, client, at) VALUES ($1, $2, $3)",
                values![name, client, at.unix_ms()],
            )
            .await
            .map(drop)
        }
    }

    fn clear_failed_sign_ins(
        &mut self,
        name: &str,
        client: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        async move {
            self.execute(
                "DELETE FROM sign_in_failures WHERE user_name = $1 AND client = $2",
                values![name, client],
            )
            .await
            .map(drop)
        }
    }
}

impl<T: Sql> SessionRows for T {}
