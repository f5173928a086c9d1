//! Building a kiosk's snapshot from what the store read, the same way for both databases.
//! A full snapshot holds everything the kiosk's site needs; a delta holds what changed after a
//! version, with replaced and blocked cards listed as removed.

use proto::snapshot::{
    AccountState, Card, CardHolder, KioskSettings, Language, Pupil, Removed, Service, Snapshot,
    StaffCredential, Tariff,
};
use proto::{
    AccountId, BracketId, CardUid, Cents, MealType, PupilId, Seq, SiteId, SnapshotVersion, StaffId,
};

use crate::store::StoreError;

/// Settings a site's kiosks use until the back-office sets others.
pub const DEFAULT_KIOSK_SETTINGS: KioskSettings = KioskSettings {
    result_display_ms: 3_000,
    sync_interval_ms: 30_000,
    staff_idle_signout_ms: 120_000,
    language: Language::Fr,
};

/// A card row: who holds it and whether it is blocked.
#[derive(Clone, Debug)]
pub struct CardRow {
    pub uid: Vec<u8>,
    pub holder_kind: String,
    pub holder: String,
    pub blocked: bool,
}

/// The rows a snapshot is built from, as both stores read them in one consistent transaction.
#[derive(Clone, Debug, Default)]
pub struct SnapshotRows {
    pub version: i64,
    /// `(id, balance, overdraft_floor)`.
    pub accounts: Vec<(String, i64, i64)>,
    /// Each pupil as stored: the JSON of [`Pupil`].
    pub pupils: Vec<String>,
    /// The site's cards, held by its pupils and staff.
    pub cards: Vec<CardRow>,
    /// Blocked UIDs, city-wide.
    pub hotlist: Vec<Vec<u8>>,
    /// `(bracket, meal_type, price)`.
    pub tariffs: Vec<(String, String, i64)>,
    /// JSON of [`Service`].
    pub services: Vec<String>,
    /// JSON of [`StaffCredential`].
    pub staff: Vec<String>,
    /// JSON of [`KioskSettings`], if the site has its own.
    pub settings: Option<String>,
}

/// The snapshot from `rows`; `records_through` is the requesting kiosk's highest stored `seq`.
pub fn build(
    site: &SiteId,
    since: Option<SnapshotVersion>,
    rows: SnapshotRows,
    records_through: Option<Seq>,
) -> Result<Snapshot, StoreError> {
    let version = SnapshotVersion(
        u64::try_from(rows.version).map_err(|error| corrupt("snapshot version", error))?,
    );
    let mut removed = Removed::default();
    let mut cards = Vec::new();
    for row in rows.cards {
        let uid = CardUid::parse(&row.uid).map_err(|error| corrupt("card", error))?;
        if row.blocked {
            // Only a delta lists removals; a full snapshot simply leaves the card out.
            if since.is_some() {
                removed.cards.push(uid);
            }
            continue;
        }
        let holder = match row.holder_kind.as_str() {
            "pupil" => CardHolder::Pupil(
                PupilId::parse(&row.holder).map_err(|error| corrupt("card holder", error))?,
            ),
            "staff" => CardHolder::Staff(
                StaffId::parse(&row.holder).map_err(|error| corrupt("card holder", error))?,
            ),
            other => return Err(corrupt("card holder kind", other)),
        };
        cards.push(Card { uid, holder });
    }
    let settings = match (rows.settings, since) {
        (Some(json), _) => Some(parse_json::<KioskSettings>("kiosk settings", &json)?),
        (None, None) => Some(DEFAULT_KIOSK_SETTINGS),
        (None, Some(_)) => None,
    };
    Ok(Snapshot {
        version,
        since,
        site: site.clone(),
        records_through,
        accounts: rows
            .accounts
            .into_iter()
            .map(|(id, balance, overdraft_floor)| {
                Ok(AccountState {
                    id: AccountId::parse(&id).map_err(|error| corrupt("account", error))?,
                    balance: Cents::new(balance),
                    overdraft_floor: Cents::new(overdraft_floor),
                })
            })
            .collect::<Result<_, StoreError>>()?,
        pupils: rows
            .pupils
            .iter()
            .map(|json| parse_json::<Pupil>("pupil", json))
            .collect::<Result<_, _>>()?,
        cards,
        hotlist: rows
            .hotlist
            .iter()
            .map(|uid| CardUid::parse(uid).map_err(|error| corrupt("hotlist", error)))
            .collect::<Result<_, _>>()?,
        tariffs: rows
            .tariffs
            .into_iter()
            .map(|(bracket, meal_type, price)| {
                Ok(Tariff {
                    bracket: BracketId::parse(&bracket)
                        .map_err(|error| corrupt("tariff", error))?,
                    meal_type: MealType::parse(&meal_type)
                        .map_err(|error| corrupt("tariff", error))?,
                    price: Cents::new(price),
                })
            })
            .collect::<Result<_, StoreError>>()?,
        services: rows
            .services
            .iter()
            .map(|json| parse_json::<Service>("service", json))
            .collect::<Result<_, _>>()?,
        staff: rows
            .staff
            .iter()
            .map(|json| parse_json::<StaffCredential>("staff", json))
            .collect::<Result<_, _>>()?,
        settings,
        removed,
    })
}

fn parse_json<T: serde::de::DeserializeOwned>(what: &str, json: &str) -> Result<T, StoreError> {
    serde_json::from_str(json).map_err(|error| corrupt(what, error))
}

fn corrupt(what: &str, error: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {error}"))
}

/// The JSON a store keeps for a value it hands back in snapshots.
pub fn to_json(value: &impl serde::Serialize) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|error| corrupt("encoding", error))
}
