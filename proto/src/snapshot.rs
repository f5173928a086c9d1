//! What the back-office sends a kiosk: accounts with balances at a version, pupils, cards, the
//! hotlist, tariffs, services, staff credentials and kiosk settings; whole or as a delta.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use time::Time;
use time::format_description::FormatItem;
use time::macros::format_description;

use crate::ids::{
    AccountId, BracketId, CardUid, MealType, ParseError, PupilId, Seq, ServiceId, SiteId,
    SnapshotVersion, StaffId, Text,
};
use crate::limits::{
    DIETARY_FLAGS_MAX, MEAL_PRICE_CENTS_MAX, OVERDRAFT_FLOOR_CENTS_MIN, RESULT_DISPLAY_MS,
    SNAPSHOT_ACCOUNTS_MAX, SNAPSHOT_CARDS_MAX, SNAPSHOT_HOTLIST_MAX, SNAPSHOT_PUPILS_MAX,
    SNAPSHOT_SERVICES_MAX, SNAPSHOT_STAFF_MAX, SNAPSHOT_TARIFFS_MAX, STAFF_IDLE_SIGNOUT_MS,
    SYNC_INTERVAL_MS,
};
use crate::money::Cents;

/// A kiosk's view of the back-office's data. A full snapshot replaces everything; a delta carries
/// what changed since `since` (upserts in the lists, removals in `removed`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Snapshot {
    pub version: SnapshotVersion,
    /// The version a delta applies to; none for a full snapshot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<SnapshotVersion>,
    pub site: SiteId,
    /// The balances include the receiving kiosk's own records up to this `seq`; the kiosk adds
    /// its later records on top. None when the back-office holds none of them yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub records_through: Option<Seq>,
    pub accounts: Vec<AccountState>,
    pub pupils: Vec<Pupil>,
    pub cards: Vec<Card>,
    /// Blocked UIDs, city-wide: a lost card is refused at every site.
    pub hotlist: Vec<CardUid>,
    pub tariffs: Vec<Tariff>,
    pub services: Vec<Service>,
    pub staff: Vec<StaffCredential>,
    /// Settings for this kiosk; in a delta, present only when they changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settings: Option<KioskSettings>,
    /// Only in a delta: what no longer exists.
    #[serde(default, skip_serializing_if = "Removed::is_empty")]
    pub removed: Removed,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AccountState {
    pub id: AccountId,
    /// The authoritative balance at the snapshot's version.
    pub balance: Cents,
    /// How far below zero the balance may go: 0 or negative, down to
    /// [`OVERDRAFT_FLOOR_CENTS_MIN`].
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::openapi::overdraft_floor))]
    pub overdraft_floor: Cents,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Pupil {
    pub id: PupilId,
    pub account: AccountId,
    /// Shown on the served screen.
    pub first_name: Text,
    /// Used by staff to search; never shown on the pupil-facing screen.
    pub last_name: Text,
    pub bracket: BracketId,
    /// Short codes (such as `no_pork`, `peanut_allergy`) that staff see as an alert marker.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(feature = "openapi", schema(max_items = 16))]
    pub dietary: Vec<Text>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Card {
    pub uid: CardUid,
    pub holder: CardHolder,
}

/// Written `{"pupil": id}` or `{"staff": id}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum CardHolder {
    Pupil(PupilId),
    Staff(StaffId),
}

schema_from!(CardHolder, crate::openapi::card_holder);

/// The price of one meal type for one bracket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Tariff {
    pub bracket: BracketId,
    pub meal_type: MealType,
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::openapi::meal_price))]
    pub price: Cents,
}

/// A meal window at the site, on the given weekdays, in the site's local time; it ends after it
/// starts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Service {
    pub id: ServiceId,
    pub name: Text,
    pub meal_type: MealType,
    #[cfg_attr(feature = "openapi", schema(min_items = 1))]
    pub weekdays: Vec<Weekday>,
    pub start: LocalTime,
    pub end: LocalTime,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Weekday {
    Monday,
    Tuesday,
    Wednesday,
    Thursday,
    Friday,
    Saturday,
    Sunday,
}

/// A time of day, `HH:MM`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LocalTime(Time);

const LOCAL_TIME_FORMAT: &[FormatItem<'static>] = format_description!("[hour]:[minute]");

impl LocalTime {
    pub fn parse(text: &str) -> Option<LocalTime> {
        let time = Time::parse(text, LOCAL_TIME_FORMAT).ok()?;
        Some(LocalTime(time))
    }

    pub const fn time(self) -> Time {
        self.0
    }
}

impl Serialize for LocalTime {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&format_args!("{:02}:{:02}", self.0.hour(), self.0.minute()))
    }
}

schema_from!(LocalTime, crate::openapi::local_time);

impl<'de> Deserialize<'de> for LocalTime {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<LocalTime, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        LocalTime::parse(&text)
            .ok_or_else(|| serde::de::Error::custom("time of day: expected HH:MM"))
    }
}

/// A staff member who may sign in on the kiosk with a card and PIN.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct StaffCredential {
    pub id: StaffId,
    pub name: Text,
    /// The PIN's Argon2 hash in PHC string form; the PIN itself never leaves the back-office.
    pub pin_hash: Text,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct KioskSettings {
    /// How long a pupil's result stays on screen.
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::openapi::result_display_ms))]
    pub result_display_ms: u32,
    /// How often the kiosk syncs when online.
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::openapi::sync_interval_ms))]
    pub sync_interval_ms: u32,
    /// Staff mode signs out after this much inactivity.
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::openapi::staff_idle_signout_ms))]
    pub staff_idle_signout_ms: u32,
    pub language: Language,
}

impl KioskSettings {
    /// Settings that a kiosk can work with: each duration within its bounds in `limits.rs`.
    pub fn check(&self) -> Result<(), ParseError> {
        for (what, found, range) in [
            (
                "result_display_ms",
                self.result_display_ms,
                RESULT_DISPLAY_MS,
            ),
            ("sync_interval_ms", self.sync_interval_ms, SYNC_INTERVAL_MS),
            (
                "staff_idle_signout_ms",
                self.staff_idle_signout_ms,
                STAFF_IDLE_SIGNOUT_MS,
            ),
        ] {
            if !range.contains(&found) {
                return Err(ParseError::OutOfRange {
                    what,
                    found: found.into(),
                    min: (*range.start()).into(),
                    max: (*range.end()).into(),
                });
            }
        }
        Ok(())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Language {
    Fr,
    De,
    En,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Removed {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub accounts: Vec<AccountId>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pupils: Vec<PupilId>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cards: Vec<CardUid>,
    /// UIDs taken off the hotlist (a found card unblocked).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hotlist: Vec<CardUid>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub staff: Vec<StaffId>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub services: Vec<ServiceId>,
}

impl Removed {
    pub fn is_empty(&self) -> bool {
        self.accounts.is_empty()
            && self.pupils.is_empty()
            && self.cards.is_empty()
            && self.hotlist.is_empty()
            && self.staff.is_empty()
            && self.services.is_empty()
    }
}

/// A snapshot that a kiosk must not apply. Nothing of it is applied.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    #[error("{what}: {found} entries, more than {max}")]
    TooMany {
        what: &'static str,
        found: usize,
        max: usize,
    },
    #[error("{what} {id} appears twice")]
    Duplicate { what: &'static str, id: String },
    #[error("account {account}: overdraft floor {floor} outside {OVERDRAFT_FLOOR_CENTS_MIN}..=0")]
    OverdraftFloor { account: AccountId, floor: i64 },
    #[error("tariff {bracket}/{meal_type}: price {price} outside 0..={MEAL_PRICE_CENTS_MAX}")]
    Price {
        bracket: BracketId,
        meal_type: MealType,
        price: i64,
    },
    #[error("pupil {pupil}: unknown account {account}")]
    UnknownAccount { pupil: PupilId, account: AccountId },
    #[error("pupil {pupil}: no tariff for bracket {bracket} and meal type {meal_type}")]
    UnknownTariff {
        pupil: PupilId,
        bracket: BracketId,
        meal_type: MealType,
    },
    #[error("card {uid}: holder {holder} is unknown")]
    UnknownHolder { uid: CardUid, holder: String },
    #[error("pupil {pupil}: {found} dietary flags, more than {DIETARY_FLAGS_MAX}")]
    DietaryFlags { pupil: PupilId, found: usize },
    #[error("service {service}: must end after it starts and run on at least one weekday")]
    ServiceWindow { service: ServiceId },
    #[error("a full snapshot lists removals or a `since` version")]
    FullWithDelta,
    #[error("a full snapshot has no kiosk settings")]
    MissingSettings,
}

impl Snapshot {
    pub fn is_full(&self) -> bool {
        self.since.is_none()
    }

    /// Checks what a kiosk relies on in a whole snapshot (a full one, or a delta already merged
    /// into the kiosk's state): bounds, unique ids, every reference resolved, every pupil priced
    /// for every service.
    pub fn check_complete(&self) -> Result<(), SnapshotError> {
        if self.since.is_some() || !self.removed.is_empty() {
            return Err(SnapshotError::FullWithDelta);
        }
        if self.settings.is_none() {
            return Err(SnapshotError::MissingSettings);
        }
        self.check_entries()?;
        let accounts: BTreeSet<&AccountId> = self.accounts.iter().map(|a| &a.id).collect();
        let pupils: BTreeSet<&PupilId> = self.pupils.iter().map(|p| &p.id).collect();
        let staff: BTreeSet<&StaffId> = self.staff.iter().map(|s| &s.id).collect();
        let prices: BTreeMap<(&BracketId, &MealType), Cents> = self
            .tariffs
            .iter()
            .map(|t| ((&t.bracket, &t.meal_type), t.price))
            .collect();
        let meal_types: BTreeSet<&MealType> = self.services.iter().map(|s| &s.meal_type).collect();
        for pupil in &self.pupils {
            if !accounts.contains(&pupil.account) {
                return Err(SnapshotError::UnknownAccount {
                    pupil: pupil.id.clone(),
                    account: pupil.account.clone(),
                });
            }
            if let Some(meal_type) = meal_types
                .iter()
                .find(|meal_type| !prices.contains_key(&(&pupil.bracket, **meal_type)))
            {
                return Err(SnapshotError::UnknownTariff {
                    pupil: pupil.id.clone(),
                    bracket: pupil.bracket.clone(),
                    meal_type: (*meal_type).clone(),
                });
            }
        }
        for card in &self.cards {
            let (known, holder) = match &card.holder {
                CardHolder::Pupil(pupil) => (pupils.contains(pupil), pupil.to_string()),
                CardHolder::Staff(member) => (staff.contains(member), member.to_string()),
            };
            if !known {
                return Err(SnapshotError::UnknownHolder {
                    uid: card.uid,
                    holder,
                });
            }
        }
        Ok(())
    }

    /// Checks what holds for a delta on its own: bounds, unique ids and valid values.
    pub fn check_entries(&self) -> Result<(), SnapshotError> {
        check_count("accounts", self.accounts.len(), SNAPSHOT_ACCOUNTS_MAX)?;
        check_count("pupils", self.pupils.len(), SNAPSHOT_PUPILS_MAX)?;
        check_count("cards", self.cards.len(), SNAPSHOT_CARDS_MAX)?;
        check_count("hotlist", self.hotlist.len(), SNAPSHOT_HOTLIST_MAX)?;
        check_count("tariffs", self.tariffs.len(), SNAPSHOT_TARIFFS_MAX)?;
        check_count("services", self.services.len(), SNAPSHOT_SERVICES_MAX)?;
        check_count("staff", self.staff.len(), SNAPSHOT_STAFF_MAX)?;
        check_unique("account", self.accounts.iter().map(|a| a.id.to_string()))?;
        check_unique("pupil", self.pupils.iter().map(|p| p.id.to_string()))?;
        check_unique("card", self.cards.iter().map(|c| c.uid.to_string()))?;
        check_unique("staff", self.staff.iter().map(|s| s.id.to_string()))?;
        check_unique("service", self.services.iter().map(|s| s.id.to_string()))?;
        check_unique(
            "tariff",
            self.tariffs
                .iter()
                .map(|t| format!("{}/{}", t.bracket, t.meal_type)),
        )?;
        for account in &self.accounts {
            let floor = account.overdraft_floor.get();
            if !(OVERDRAFT_FLOOR_CENTS_MIN..=0).contains(&floor) {
                return Err(SnapshotError::OverdraftFloor {
                    account: account.id.clone(),
                    floor,
                });
            }
        }
        for tariff in &self.tariffs {
            let price = tariff.price.get();
            if !(0..=MEAL_PRICE_CENTS_MAX).contains(&price) {
                return Err(SnapshotError::Price {
                    bracket: tariff.bracket.clone(),
                    meal_type: tariff.meal_type.clone(),
                    price,
                });
            }
        }
        for pupil in &self.pupils {
            if pupil.dietary.len() > DIETARY_FLAGS_MAX {
                return Err(SnapshotError::DietaryFlags {
                    pupil: pupil.id.clone(),
                    found: pupil.dietary.len(),
                });
            }
        }
        for service in &self.services {
            if service.end <= service.start || service.weekdays.is_empty() {
                return Err(SnapshotError::ServiceWindow {
                    service: service.id.clone(),
                });
            }
        }
        Ok(())
    }
}

fn check_count(what: &'static str, found: usize, max: usize) -> Result<(), SnapshotError> {
    if found > max {
        return Err(SnapshotError::TooMany { what, found, max });
    }
    Ok(())
}

fn check_unique(
    what: &'static str,
    ids: impl Iterator<Item = String>,
) -> Result<(), SnapshotError> {
    let mut seen = BTreeSet::new();
    for id in ids {
        if let Some(id) = seen.replace(id) {
            return Err(SnapshotError::Duplicate { what, id });
        }
    }
    Ok(())
}
