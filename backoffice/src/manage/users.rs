//! Back-office users, added and changed by city IT.

use proto::Timestamp;

use super::{ADMIN, Actor, ManageError, in_transaction, read_as};
use crate::store::{Mode, PeopleRows, SessionRows, Store, StoreError, Transaction};
use crate::users::User;

/// Adds a user (its password already hashed by [`User::new`]).
pub async fn add<S: Store>(
    store: &S,
    actor: &Actor,
    user: &User,
    at: Timestamp,
) -> Result<(), ManageError> {
    actor.require(ADMIN)?;
    Ok(in_transaction(store, Mode::Write, async |transaction| {
        transaction.insert_user(user, at).await
    })
    .await?)
}

/// Changes an existing user's role, site and password hash. A new password ends every session
/// the user had open: whoever knew the old one is signed out.
pub async fn update<S: Store>(store: &S, actor: &Actor, user: &User) -> Result<(), ManageError> {
    actor.require(ADMIN)?;
    Ok(in_transaction(store, Mode::Write, async |transaction| {
        update_in(transaction, user).await
    })
    .await?)
}

async fn update_in<X: Transaction>(transaction: &mut X, user: &User) -> Result<(), StoreError> {
    let stored = transaction
        .user(&user.name)
        .await?
        .ok_or_else(|| StoreError::NotFound {
            what: "user",
            id: user.name.clone(),
        })?;
    transaction.update_user(user).await?;
    if stored.password_hash != user.password_hash {
        transaction.delete_web_sessions_of(&user.name).await?;
    }
    Ok(())
}

/// Disables a user from `at` on (their sessions end, they sign in no more; what they did keeps
/// their name), or enables them again. City IT cannot disable themselves.
pub async fn set_disabled<S: Store>(
    store: &S,
    actor: &Actor,
    name: &str,
    disabled: bool,
    at: Timestamp,
) -> Result<(), ManageError> {
    actor.require(ADMIN)?;
    if disabled && name == actor.name {
        return Err(ManageError::Invalid(
            "you cannot disable yourself: ask another administrator".to_owned(),
        ));
    }
    Ok(in_transaction(store, Mode::Write, async |transaction| {
        transaction
            .set_user_disabled(name, disabled.then_some(at))
            .await?;
        transaction.delete_web_sessions_of(name).await
    })
    .await?)
}

/// Every user, by name.
pub async fn list<S: Store>(store: &S, actor: &Actor) -> Result<Vec<User>, ManageError> {
    read_as(store, actor, ADMIN, async |rows| rows.users().await).await
}

/// One user, if the name is taken.
pub async fn get<S: Store>(
    store: &S,
    actor: &Actor,
    name: &str,
) -> Result<Option<User>, ManageError> {
    read_as(store, actor, ADMIN, async |rows| rows.user(name).await).await
}
