//! Back-office users, added and changed by city IT.

use proto::Timestamp;

use super::{ADMIN, Actor, ManageError};
use crate::store::{Mode, PeopleRows, Store, finish};
use crate::users::User;

/// Adds a user (its password already hashed by [`User::new`]).
pub async fn add<S: Store>(
    store: &S,
    actor: &Actor,
    user: &User,
    at: Timestamp,
) -> Result<(), ManageError> {
    actor.require(ADMIN)?;
    let mut transaction = store.begin(Mode::Write).await?;
    let result = transaction.insert_user(user, at).await;
    Ok(finish(transaction, result).await?)
}

/// Changes an existing user's role, site and password hash.
pub async fn update<S: Store>(store: &S, actor: &Actor, user: &User) -> Result<(), ManageError> {
    actor.require(ADMIN)?;
    let mut transaction = store.begin(Mode::Write).await?;
    let result = transaction.update_user(user).await;
    Ok(finish(transaction, result).await?)
}

/// Every user, by name.
pub async fn list<S: Store>(store: &S, actor: &Actor) -> Result<Vec<User>, ManageError> {
    actor.require(ADMIN)?;
    let mut transaction = store.begin(Mode::Single).await?;
    Ok(transaction.users().await?)
}

/// One user, if the name is taken.
pub async fn get<S: Store>(
    store: &S,
    actor: &Actor,
    name: &str,
) -> Result<Option<User>, ManageError> {
    actor.require(ADMIN)?;
    Ok(store.begin(Mode::Single).await?.user(name).await?)
}
