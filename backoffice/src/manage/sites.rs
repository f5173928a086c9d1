//! A site's tariffs, meal services and kiosk settings, set up by city IT.

use proto::limits::MEAL_PRICE_CENTS_MAX;
use proto::snapshot::{KioskSettings, Service, Tariff};
use proto::{SiteId, SnapshotVersion};

use super::{ADMIN, Actor, ManageError, change_snapshot, in_range, read_as};
use crate::store::{PeopleRows, Stamp, Store};

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
    change_snapshot(store, async |transaction| {
        transaction.upsert_tariff(site, tariff).await?;
        Ok(vec![Stamp::Tariff {
            site: site.clone(),
            bracket: tariff.bracket.clone(),
            meal_type: tariff.meal_type.clone(),
        }])
    })
    .await
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
    change_snapshot(store, async |transaction| {
        transaction.upsert_service(site, service).await?;
        Ok(vec![Stamp::Service {
            site: site.clone(),
            id: service.id.clone(),
        }])
    })
    .await
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
    change_snapshot(store, async |transaction| {
        transaction.upsert_settings(site, settings).await?;
        Ok(vec![Stamp::Settings(site.clone())])
    })
    .await
}

/// Sites named by kiosks, pupils, tariffs or services; city IT.
pub async fn list<S: Store>(store: &S, actor: &Actor) -> Result<Vec<SiteId>, ManageError> {
    read_as(store, actor, ADMIN, async |rows| rows.sites().await).await
}

/// A site's tariffs and services; city IT.
pub async fn setup<S: Store>(
    store: &S,
    actor: &Actor,
    site: &SiteId,
) -> Result<(Vec<Tariff>, Vec<Service>), ManageError> {
    read_as(store, actor, ADMIN, async |rows| {
        rows.site_setup(site).await
    })
    .await
}
