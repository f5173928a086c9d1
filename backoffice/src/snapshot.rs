//! A kiosk's snapshot: everything its site needs (full), or what changed after a version
//! (delta), with blocked cards listed as removed, read in one transaction so that every row is
//! from the same state of the database.

use proto::snapshot::{Card, KioskSettings, Language, Removed, Snapshot};
use proto::{DeviceId, Seq, SiteId, SnapshotVersion};

use crate::store::rows::people::SiteRows;
use crate::store::{ChainRows, Mode, PeopleRows, Store, StoreError, finish};

/// Settings a site's kiosks use until the back-office sets others.
pub const DEFAULT_KIOSK_SETTINGS: KioskSettings = KioskSettings {
    result_display_ms: 3_000,
    sync_interval_ms: 30_000,
    staff_idle_signout_ms: 120_000,
    language: Language::Fr,
};

/// What `site`'s kiosks need: everything, or what changed after `since`. A `since` newer than
/// the store's version (a database restored from a backup) gets a full snapshot. For `device`,
/// the snapshot says up to which of its records the balances include (`records_through`),
/// read in the same transaction as the balances.
pub async fn snapshot<S: Store>(
    store: &S,
    site: &SiteId,
    device: Option<&DeviceId>,
    since: Option<SnapshotVersion>,
) -> Result<Snapshot, StoreError> {
    let mut transaction = store.begin(Mode::Read).await?;
    let result = async {
        let version = transaction.current_version().await?;
        let since = since.filter(|since| since.0 <= version.0);
        let rows = transaction.site_rows(site, since).await?;
        let records_through = match device {
            Some(device) => transaction.records_through(device).await?,
            None => None,
        };
        Ok((version, since, rows, records_through))
    }
    .await;
    let (version, since, rows, records_through) = finish(transaction, result).await?;
    Ok(build(site, version, since, rows, records_through))
}

/// The snapshot of `rows`: a delta lists blocked cards as removed, a full snapshot leaves them
/// out, and a site without settings of its own gets [`DEFAULT_KIOSK_SETTINGS`] in full.
fn build(
    site: &SiteId,
    version: SnapshotVersion,
    since: Option<SnapshotVersion>,
    rows: SiteRows,
    records_through: Option<Seq>,
) -> Snapshot {
    let mut removed = Removed::default();
    let mut cards = Vec::new();
    for row in rows.cards {
        if !row.blocked {
            cards.push(Card {
                uid: row.uid,
                holder: row.holder,
            });
        } else if since.is_some() {
            removed.cards.push(row.uid);
        }
    }
    let settings = match (rows.settings, since) {
        (Some(settings), _) => Some(settings),
        (None, None) => Some(DEFAULT_KIOSK_SETTINGS),
        (None, Some(_)) => None,
    };
    Snapshot {
        version,
        since,
        site: site.clone(),
        records_through,
        accounts: rows.accounts,
        pupils: rows.pupils,
        cards,
        hotlist: rows.hotlist,
        tariffs: rows.tariffs,
        services: rows.services,
        staff: rows.staff,
        settings,
        removed,
    }
}
