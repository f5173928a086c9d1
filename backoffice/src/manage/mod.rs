//! Every change a person makes, and what they may read of people and money: the one entry the
//! HTTP API, the web pages, the CLI and the CSV import call. Each function takes the [`Actor`]
//! who asks, checks who may do it (roles, and the site rule: staff act only within their own
//! site) and what a valid change is, then reads and writes in one transaction, so no caller can
//! write without the checks.
//!
//! - [`accounts`]: opening accounts, overdraft floors, money moved at the back-office (counter
//!   top-ups, adjustments, online payments), what staff and finance read of an account.
//! - [`people`]: pupils, cards (bind, block, replace), kiosk staff and their PINs.
//! - [`sites`]: a site's tariffs, services and kiosk settings.
//! - [`devices`]: registering and revoking kiosks.
//! - [`users`]: back-office users.
//! - [`tokens`]: API tokens of machine clients.

pub mod accounts;
pub mod devices;
pub mod people;
pub mod sites;
pub mod tokens;
pub mod users;

use proto::{AccountId, Cents, SiteId, SnapshotVersion};

use crate::store::{ChainRows, Mode, PeopleRows, PupilEntry, Stamp, Store, StoreError, finish};
use crate::users::{Role, User};

/// Who asks: a signed-in user of the pages or the API, or the city's own tools.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Actor {
    /// As operations and logs record it.
    pub name: String,
    pub role: Role,
    /// Staff belong to one site; the other roles to none.
    pub site: Option<SiteId>,
}

impl Actor {
    pub fn user(user: &User) -> Actor {
        Actor {
            name: user.name.clone(),
            role: user.role,
            site: user.site.clone(),
        }
    }

    /// City IT at the server (the CLI, the nightly run): every right, recorded under `name`.
    pub fn operator(name: impl Into<String>) -> Actor {
        Actor {
            name: name.into(),
            role: Role::Admin,
            site: None,
        }
    }

    /// Refuses unless the actor has one of `roles`.
    pub fn require(&self, roles: &[Role]) -> Result<(), ManageError> {
        if roles.contains(&self.role) {
            return Ok(());
        }
        Err(ManageError::Forbidden(
            "your role may not do this".to_owned(),
        ))
    }

    /// Staff act only within their own site (staff without one, nowhere); the other roles
    /// everywhere.
    pub fn may_act_at(&self, site: &SiteId) -> bool {
        match (self.role, &self.site) {
            (Role::Staff, Some(own)) => own == site,
            (Role::Staff, None) => false,
            _ => true,
        }
    }

    /// Refuses what belongs to another site than the actor's.
    pub fn check_site(&self, site: &SiteId) -> Result<(), ManageError> {
        if self.may_act_at(site) {
            return Ok(());
        }
        Err(ManageError::Forbidden(
            "this belongs to another site".to_owned(),
        ))
    }

    /// The pupils of `account` the actor may see. Staff reach an account only through a pupil
    /// of theirs: an account with none of their site's pupils is another site's.
    pub async fn reach_account<X: PeopleRows>(
        &self,
        transaction: &mut X,
        account: &AccountId,
    ) -> Result<Vec<PupilEntry>, ManageError> {
        let pupils = existing_account_pupils(transaction, account).await?;
        let own = self.own_pupils(pupils);
        if self.role == Role::Staff && own.is_empty() {
            return Err(other_site_account());
        }
        Ok(own)
    }

    /// Refuses an account whose pupils are all at another site than a staff actor's; an
    /// account with no pupil yet belongs to no site, and staff may give it one of theirs.
    pub async fn may_attach_account<X: PeopleRows>(
        &self,
        transaction: &mut X,
        account: &AccountId,
    ) -> Result<(), ManageError> {
        let pupils = existing_account_pupils(transaction, account).await?;
        let claimed = !pupils.is_empty();
        if self.role == Role::Staff && claimed && self.own_pupils(pupils).is_empty() {
            return Err(other_site_account());
        }
        Ok(())
    }

    fn own_pupils(&self, mut pupils: Vec<PupilEntry>) -> Vec<PupilEntry> {
        if self.role == Role::Staff {
            pupils.retain(|entry| self.may_act_at(&entry.site));
        }
        pupils
    }
}

/// The pupils of an account, which must exist.
async fn existing_account_pupils<X: PeopleRows>(
    transaction: &mut X,
    account: &AccountId,
) -> Result<Vec<PupilEntry>, ManageError> {
    if transaction.account(account).await?.is_none() {
        return Err(StoreError::NotFound {
            what: "account",
            id: account.to_string(),
        }
        .into());
    }
    Ok(transaction.account_pupils(account).await?)
}

fn other_site_account() -> ManageError {
    ManageError::Forbidden("this account belongs to another site".to_owned())
}

/// A change refused, or storage failing.
#[derive(Debug, thiserror::Error)]
pub enum ManageError {
    /// The actor may not do this (their role, or another site's data).
    #[error("{0}")]
    Forbidden(String),
    /// The change breaks a rule; nothing was written.
    #[error("{0}")]
    Invalid(String),
    /// The change is well formed but contradicts what is stored; nothing was written.
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<proto::ParseError> for ManageError {
    fn from(error: proto::ParseError) -> ManageError {
        ManageError::Invalid(error.to_string())
    }
}

impl From<crate::users::UserError> for ManageError {
    fn from(error: crate::users::UserError) -> ManageError {
        ManageError::Invalid(error.to_string())
    }
}

/// Who may read and change pupils, cards and accounts at the counter.
pub const COUNTER: &[Role] = &[Role::Staff, Role::Admin];
/// Who may read accounts.
pub const READERS: &[Role] = &[Role::Staff, Role::Finance, Role::Admin];
/// Who may adjust balances, read anomalies and the fleet.
pub const FINANCE: &[Role] = &[Role::Finance, Role::Admin];
/// Who may credit online payments.
pub const PAYMENTS: &[Role] = &[Role::Payments, Role::Admin];
/// Who may set up sites, kiosks and users.
pub const ADMIN: &[Role] = &[Role::Admin];

/// Runs `work` in one transaction of `mode`: commits what it did, or rolls back its failure, so
/// no use case leaves a transaction open or half written.
pub(crate) async fn in_transaction<S: Store, T, E: From<StoreError>>(
    store: &S,
    mode: Mode,
    work: impl AsyncFnOnce(&mut S::Tx) -> Result<T, E>,
) -> Result<T, E> {
    let mut transaction = store.begin(mode).await?;
    let result = work(&mut transaction).await;
    finish(transaction, result).await
}

/// What one query answers, for an actor with one of `roles`: the role is checked before the
/// store is asked.
pub(crate) async fn read_as<S: Store, T>(
    store: &S,
    actor: &Actor,
    roles: &[Role],
    query: impl AsyncFnOnce(&mut S::Tx) -> Result<T, StoreError>,
) -> Result<T, ManageError> {
    actor.require(roles)?;
    let mut transaction = store.begin(Mode::Single).await?;
    Ok(query(&mut transaction).await?)
}

/// Changes what the kiosks' snapshots hold: `change` writes and answers the stamps of what it
/// changed; their snapshot version is taken last, in the same transaction.
async fn change_snapshot<S: Store>(
    store: &S,
    change: impl AsyncFnOnce(&mut S::Tx) -> Result<Vec<Stamp>, ManageError>,
) -> Result<SnapshotVersion, ManageError> {
    in_transaction(store, Mode::Write, async |transaction| {
        let stamps = change(transaction).await?;
        Ok(transaction.take_version(&stamps).await?)
    })
    .await
}

/// An amount within `range` cents, or a refusal naming it.
fn in_range(
    what: &str,
    amount: Cents,
    range: std::ops::RangeInclusive<i64>,
) -> Result<(), ManageError> {
    if range.contains(&amount.get()) {
        return Ok(());
    }
    Err(ManageError::Invalid(format!(
        "{what} {} outside {}..={} cents",
        amount.get(),
        range.start(),
        range.end()
    )))
}

/// Argon2 is deliberately slow: hashing runs on a blocking thread, off the async workers.
async fn hashed<T: Send + 'static>(
    hash: impl FnOnce() -> Result<T, crate::users::UserError> + Send + 'static,
) -> Result<T, ManageError> {
    tokio::task::spawn_blocking(hash)
        .await
        .map_err(|_| ManageError::Store(StoreError::Unavailable("hashing failed".to_owned())))?
        .map_err(ManageError::from)
}
