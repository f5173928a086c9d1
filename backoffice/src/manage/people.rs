//! Pupils, their cards and the kiosks' staff. A pupil stays at the site they were enrolled at;
//! a card is bound once (a lost one is blocked and its holder gets a new one, so the balance
//! stays with the account); staff change only their own site's pupils and cards.

use proto::limits::DIETARY_FLAGS_MAX;
use proto::snapshot::{Card, CardHolder, Pupil, StaffCredential};
use proto::{CardUid, PupilId, ServiceDate, SiteId, SnapshotVersion, StaffId, Text};

use super::{ADMIN, Actor, COUNTER, ManageError, READERS, change_snapshot, hashed, in_transaction};
use crate::limits::{SEARCH_CHARS_MAX, SEARCH_RESULTS_MAX, SITE_MEALS_MAX};
use crate::store::{
    ChainRows, Mode, PeopleRows, PupilEntry, ServedMeal, Stamp, Store, StoreError, Transaction,
};
use crate::users::{Role, hash_pin};

/// A pupil has at most [`DIETARY_FLAGS_MAX`] dietary flags and stays at the site they were
/// enrolled at (`stored_site`, if they exist).
pub fn check_pupil(
    site: &SiteId,
    pupil: &Pupil,
    stored_site: Option<&SiteId>,
) -> Result<(), ManageError> {
    if pupil.dietary.len() > DIETARY_FLAGS_MAX {
        return Err(ManageError::Invalid(format!(
            "at most {DIETARY_FLAGS_MAX} dietary flags"
        )));
    }
    if stored_site.is_some_and(|stored| stored != site) {
        return Err(ManageError::Conflict(
            "a pupil stays at their site; enrol them anew".to_owned(),
        ));
    }
    Ok(())
}

/// Creates or edits a pupil of `site`, on an existing account.
pub async fn save_pupil<S: Store>(
    store: &S,
    actor: &Actor,
    site: &SiteId,
    pupil: &Pupil,
) -> Result<SnapshotVersion, ManageError> {
    actor.require(COUNTER)?;
    in_transaction(store, Mode::Write, async |transaction| {
        save_pupil_in(transaction, actor, site, pupil).await
    })
    .await
}

/// [`save_pupil`] inside a transaction (the CSV import writes many in one).
pub(crate) async fn save_pupil_in<X: Transaction>(
    transaction: &mut X,
    actor: &Actor,
    site: &SiteId,
    pupil: &Pupil,
) -> Result<SnapshotVersion, ManageError> {
    actor.check_site(site)?;
    let stored_site = transaction
        .holder_site(&CardHolder::Pupil(pupil.id.clone()))
        .await?;
    if let Some(stored) = &stored_site {
        actor.check_site(stored)?;
    }
    check_pupil(site, pupil, stored_site.as_ref())?;
    actor
        .may_attach_account(transaction, &pupil.account)
        .await?;
    transaction.upsert_pupil(site, pupil).await?;
    // The account joins the site's snapshots with its first pupil there.
    Ok(transaction
        .take_version(&[
            Stamp::Pupil(pupil.id.clone()),
            Stamp::Accounts(vec![pupil.account.clone()]),
        ])
        .await?)
}

/// Replaces a pupil's dietary flags.
pub async fn set_dietary<S: Store>(
    store: &S,
    actor: &Actor,
    pupil: &PupilId,
    dietary: Vec<Text>,
) -> Result<Pupil, ManageError> {
    actor.require(COUNTER)?;
    in_transaction(store, Mode::Write, async |transaction| {
        let Some(entry) = transaction
            .search_pupils(pupil.as_str(), None, 1)
            .await?
            .into_iter()
            .find(|entry| entry.pupil.id == *pupil)
        else {
            return Err(StoreError::NotFound {
                what: "pupil",
                id: pupil.to_string(),
            }
            .into());
        };
        let changed = Pupil {
            dietary,
            ..entry.pupil
        };
        save_pupil_in(transaction, actor, &entry.site, &changed).await?;
        Ok(changed)
    })
    .await
}

/// Binds a new card to a pupil or staff member of the actor's site.
pub async fn assign_card<S: Store>(
    store: &S,
    actor: &Actor,
    card: &Card,
) -> Result<SnapshotVersion, ManageError> {
    actor.require(COUNTER)?;
    in_transaction(store, Mode::Write, async |transaction| {
        assign_card_in(transaction, actor, card).await
    })
    .await
}

/// [`assign_card`] inside a transaction; a UID already bound to the same holder is kept.
pub(crate) async fn assign_card_in<X: Transaction>(
    transaction: &mut X,
    actor: &Actor,
    card: &Card,
) -> Result<SnapshotVersion, ManageError> {
    let Some(site) = transaction.holder_site(&card.holder).await? else {
        return Err(StoreError::NotFound {
            what: "card holder",
            id: holder_name(&card.holder),
        }
        .into());
    };
    actor.check_site(&site)?;
    transaction
        .insert_card(&card.uid, &site, &card.holder)
        .await?;
    Ok(transaction
        .take_version(&[Stamp::Cards(vec![card.uid])])
        .await?)
}

/// Puts a lost card on every kiosk's hotlist.
pub async fn block_card<S: Store>(
    store: &S,
    actor: &Actor,
    uid: &CardUid,
) -> Result<SnapshotVersion, ManageError> {
    actor.require(COUNTER)?;
    change_snapshot(store, async |transaction| {
        card_of_site(transaction, actor, uid).await?;
        transaction.block_card(uid).await?;
        Ok(vec![Stamp::Cards(vec![*uid])])
    })
    .await
}

/// Blocks a lost card and binds `new` to its holder. The balance is the account's, so it stays.
pub async fn replace_card<S: Store>(
    store: &S,
    actor: &Actor,
    old: &CardUid,
    new: &CardUid,
) -> Result<SnapshotVersion, ManageError> {
    actor.require(COUNTER)?;
    change_snapshot(store, async |transaction| {
        let (site, holder) = card_of_site(transaction, actor, old).await?;
        transaction.block_card(old).await?;
        transaction.insert_card(new, &site, &holder).await?;
        Ok(vec![Stamp::Cards(vec![*old, *new])])
    })
    .await
}

/// The site and holder of a card, which must exist and be at the actor's site.
async fn card_of_site<X: Transaction>(
    transaction: &mut X,
    actor: &Actor,
    uid: &CardUid,
) -> Result<(SiteId, CardHolder), ManageError> {
    let Some(card) = transaction.card(uid).await? else {
        return Err(StoreError::NotFound {
            what: "card",
            id: uid.to_string(),
        }
        .into());
    };
    actor.check_site(&card.site)?;
    Ok((card.site, card.holder))
}

/// The holder of a card, for the pages' "back to the account" links.
pub async fn card_holder<S: Store>(
    store: &S,
    actor: &Actor,
    uid: &CardUid,
) -> Result<CardHolder, ManageError> {
    actor.require(COUNTER)?;
    let mut transaction = store.begin(Mode::Single).await?;
    Ok(card_of_site(&mut transaction, actor, uid).await?.1)
}

/// A staff member of `site` and the Argon2 hash of their kiosk PIN (4 to 8 digits).
pub async fn save_staff<S: Store>(
    store: &S,
    actor: &Actor,
    site: &SiteId,
    id: StaffId,
    name: Text,
    pin: String,
) -> Result<SnapshotVersion, ManageError> {
    actor.require(ADMIN)?;
    let pin_hash = hashed(move || hash_pin(&pin)).await?;
    let pin_hash =
        Text::parse(&pin_hash).map_err(|error| ManageError::Invalid(error.to_string()))?;
    let staff = StaffCredential { id, name, pin_hash };
    change_snapshot(store, async |transaction| {
        transaction.upsert_staff(site, &staff).await?;
        Ok(vec![Stamp::Staff(staff.id.clone())])
    })
    .await
}

fn holder_name(holder: &CardHolder) -> String {
    match holder {
        CardHolder::Pupil(pupil) => pupil.to_string(),
        CardHolder::Staff(staff) => staff.to_string(),
    }
}

/// Pupils whose id or account is `text`, whose names contain it, or who hold the card whose UID
/// it is (blocked or not: a lost card is how staff start); staff find their site's pupils only.
pub async fn search<S: Store>(
    store: &S,
    actor: &Actor,
    text: &str,
) -> Result<Vec<PupilEntry>, ManageError> {
    actor.require(READERS)?;
    let text = text.trim();
    if text.chars().count() > SEARCH_CHARS_MAX {
        return Err(ManageError::Invalid(format!(
            "a search is at most {SEARCH_CHARS_MAX} characters"
        )));
    }
    if text.is_empty() {
        return Ok(Vec::new());
    }
    let site = own_site(actor);
    Ok(in_transaction(store, Mode::Read, async |transaction| {
        if let Ok(uid) = CardUid::from_hex(&text.to_ascii_lowercase())
            && let Some(card) = transaction.card(&uid).await?
            && let CardHolder::Pupil(pupil) = card.holder
        {
            let mut found = transaction
                .search_pupils(pupil.as_str(), site.as_ref(), 1)
                .await?;
            found.retain(|entry| entry.pupil.id == pupil);
            if !found.is_empty() {
                return Ok(found);
            }
        }
        transaction
            .search_pupils(text, site.as_ref(), SEARCH_RESULTS_MAX)
            .await
    })
    .await?)
}

/// The sites the actor sees: staff their own, the other roles every site.
pub async fn visible_sites<S: Store>(store: &S, actor: &Actor) -> Result<Vec<SiteId>, ManageError> {
    actor.require(READERS)?;
    if let Some(site) = own_site(actor) {
        return Ok(vec![site]);
    }
    Ok(store.begin(Mode::Single).await?.sites().await?)
}

/// The meals served at `site` on `date`, in kiosk time order; staff see their own site only.
pub async fn site_meals<S: Store>(
    store: &S,
    actor: &Actor,
    site: &SiteId,
    date: ServiceDate,
) -> Result<Vec<ServedMeal>, ManageError> {
    actor.require(READERS)?;
    actor.check_site(site)?;
    Ok(store
        .begin(Mode::Single)
        .await?
        .site_meals(site, date, SITE_MEALS_MAX)
        .await?)
}

/// Where a staff member's searches are bounded: their site; none for the other roles.
fn own_site(actor: &Actor) -> Option<SiteId> {
    match actor.role {
        Role::Staff => actor.site.clone(),
        _ => None,
    }
}
