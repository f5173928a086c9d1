//! A site's tariffs, meal services and kiosk settings, set up by city IT.

use proto::limits::MEAL_PRICE_CENTS_MAX;
use proto::snapshot::{KioskSettings, Service, Tariff};
use proto::{SiteId, SnapshotVersion};

use super::{ADMIN, Actor, ManageError, in_range};
use crate::store::{ChainRows, Mode, PeopleRows, Stamp, Store, finish};

/// A meal costs 0 to [`MEAL_PRICE_CENTS_MAX`].
pub fn check_tariff(tariff: &Tariff) -> Result<(), ManageError> {
    in_range("price", tariff.price, 0..=MEAL_PRICE_CENTS_MAX)
}

/// A service ends after it starts, on at least one weekday.
pub fn check_service(service: &Service) -> Result<(), ManageError> {
    if service.end <= service.start || service.weekdays.is_empty() {
        return Err(ManageError::Invalid(
            "a service ends after it starts, on at least one weekday".to_owned(),
        ));
    }
    Ok(())
}

/// One bracket's price of one meal type at `site`.
pub async fn save_tariff<S: Store>(
    store: &S,
    actor: &Actor,
    site: &SiteId,
    tariff: &Tariff,
) -> Result<SnapshotVersion, ManageError> {
    actor.require(ADMIN)?;
    check_tariff(tariff)?;
    let mut transaction = store.begin(Mode::Write).await?;
    let result = async {
        transaction.upsert_tariff(site, tariff).await?;
        let stamp = Stamp::Tariff {
            site: site.clone(),
            bracket: tariff.bracket.clone(),
            meal_type: tariff.meal_type.clone(),
        };
        Ok(transaction.take_version(&[stamp]).await?)
    }
    .await;
    finish(transaction, result).await
}

/// A meal window at `site`.
pub async fn save_service<S: Store>(
    store: &S,
    actor: &Actor,
    site: &SiteId,
    service: &Service,
) -> Result<SnapshotVersion, ManageError> {
    actor.require(ADMIN)?;
    check_service(service)?;
    let mut transaction = store.begin(Mode::Write).await?;
    let result = async {
        transaction.upsert_service(site, service).await?;
        let stamp = Stamp::Service {
            site: site.clone(),
            id: service.id.clone(),
        };
        Ok(transaction.take_version(&[stamp]).await?)
    }
    .await;
    finish(transaction, result).await
}

/// The kiosk settings of `site`.
pub async fn save_settings<S: Store>(
    store: &S,
    actor: &Actor,
    site: &SiteId,
    settings: &KioskSettings,
) -> Result<SnapshotVersion, ManageError> {
    actor.require(ADMIN)?;
    settings.check()?;
    let mut transaction = store.begin(Mode::Write).await?;
    let result = async {
        transaction.upsert_settings(site, settings).await?;
        Ok(transaction
            .take_version(&[Stamp::Settings(site.clone())])
            .await?)
    }
    .await;
    finish(transaction, result).await
}

/// Sites named by kiosks, pupils, tariffs or services; city IT.
pub async fn list<S: Store>(store: &S, actor: &Actor) -> Result<Vec<SiteId>, ManageError> {
    actor.require(ADMIN)?;
    Ok(store.begin(Mode::Single).await?.sites().await?)
}

/// A site's tariffs and services; city IT.
pub async fn setup<S: Store>(
    store: &S,
    actor: &Actor,
    site: &SiteId,
) -> Result<(Vec<Tariff>, Vec<Service>), ManageError> {
    actor.require(ADMIN)?;
    Ok(store.begin(Mode::Single).await?.site_setup(site).await?)
}
