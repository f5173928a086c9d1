//! What the web pages read and write beyond the API's needs: browser sessions, sign-in
//! failures, searches, account histories, a site's meals and the per-day totals.

use proto::record::{Meal, MealVia};
use proto::snapshot::Pupil;
use proto::{
    AccountId, CardUid, Cents, DeviceId, Digest, MealType, PupilId, Record, RecordBody, Seq,
    ServiceDate, ServiceId, SiteId, StaffId, Timestamp,
};

/// A signed-in browser. The browser holds a random token; the store keeps only its SHA-256,
/// so a copy of the database opens no session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebSession {
    pub token_hash: Digest,
    pub user: String,
    /// The token every form of this session must carry back.
    pub csrf: String,
    pub expires_at: Timestamp,
}

/// A pupil with their site and cards, as the staff pages list them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PupilEntry {
    pub site: SiteId,
    pub pupil: Pupil,
    /// Every card bound to the pupil, and whether it is blocked.
    pub cards: Vec<(CardUid, bool)>,
}

/// One line of an account's history: a kiosk record's movement or a back-office operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountLine {
    pub at: Timestamp,
    pub amount: Cents,
    /// The record kind (`meal`, `top_up`, `void`) or operation kind (`top_up`, `adjustment`,
    /// `online_payment`).
    pub kind: String,
    /// The kiosk for a record; the user and detail for an operation.
    pub detail: String,
}

/// Meals served at a site on a service day, and what they were charged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MealDay {
    pub site: SiteId,
    pub date: ServiceDate,
    pub meals: i64,
    pub revenue: Cents,
}

/// A meal as a site's meals page lists it. Ingest keeps one row per stored meal record in the
/// `meals` table, ordered by site and service date, so a site's day is one index range read
/// with no payload to parse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServedMeal {
    pub device: DeviceId,
    pub seq: Seq,
    /// The kiosk's clock when it served the meal.
    pub kiosk_at: Timestamp,
    pub service: ServiceId,
    pub meal_type: MealType,
    pub account: AccountId,
    pub pupil: PupilId,
    pub via: MealVia,
    pub price: Cents,
}

/// Search words are matched as given; a longer text is refused rather than scanned for.
pub const SEARCH_CHARS_MAX: usize = 64;

pub(super) fn parse_site(site: &str) -> Result<SiteId, super::StoreError> {
    SiteId::parse(site).map_err(|error| super::corrupt("site", error))
}

/// A `pupils` row and its cards' `(uid, blocked)` columns.
pub(super) fn pupil_entry(
    site: &str,
    data: &str,
    cards: Vec<(Vec<u8>, bool)>,
) -> Result<PupilEntry, super::StoreError> {
    let pupil: Pupil =
        serde_json::from_str(data).map_err(|error| super::corrupt("pupil", error))?;
    let cards = cards
        .into_iter()
        .map(|(uid, blocked)| {
            CardUid::parse(&uid)
                .map(|uid| (uid, blocked))
                .map_err(|error| super::corrupt("card uid", error))
        })
        .collect::<Result<_, _>>()?;
    Ok(PupilEntry {
        site: parse_site(site)?,
        pupil,
        cards,
    })
}

pub(super) fn tariff(
    bracket: &str,
    meal_type: &str,
    price: i64,
) -> Result<proto::snapshot::Tariff, super::StoreError> {
    Ok(proto::snapshot::Tariff {
        bracket: proto::BracketId::parse(bracket)
            .map_err(|error| super::corrupt("bracket", error))?,
        meal_type: MealType::parse(meal_type)
            .map_err(|error| super::corrupt("meal type", error))?,
        price: Cents::new(price),
    })
}

pub(super) fn service(data: &str) -> Result<proto::snapshot::Service, super::StoreError> {
    serde_json::from_str(data).map_err(|error| super::corrupt("service", error))
}

pub(super) fn meal_day(
    site: &str,
    date: &str,
    meals: i64,
    revenue: i64,
) -> Result<MealDay, super::StoreError> {
    Ok(MealDay {
        site: parse_site(site)?,
        date: ServiceDate::parse(date).map_err(|error| super::corrupt("service date", error))?,
        meals,
        revenue: Cents::new(revenue),
    })
}

/// The meal records of an appended batch, for the `meals` table.
pub(super) fn meals_of(append: &[Record]) -> impl Iterator<Item = (&Record, &Meal)> {
    append
        .iter()
        .filter_map(|record| match &record.payload().body {
            RecordBody::Meal(meal) => Some((record, meal)),
            _ => None,
        })
}

/// The `via_card` and `via_staff` columns of a meal: exactly one is set.
pub(super) fn via_columns(via: &MealVia) -> (Option<String>, Option<&str>) {
    match via {
        MealVia::Card(uid) => (Some(uid.to_string()), None),
        MealVia::Staff(staff) => (None, Some(staff.as_str())),
    }
}

/// A `meals` row, in its columns' order: device, seq, kiosk_at, service, meal_type, account,
/// pupil, via_card, via_staff, price.
pub(super) struct MealRow {
    pub device: String,
    pub seq: i64,
    pub kiosk_at: i64,
    pub service: String,
    pub meal_type: String,
    pub account: String,
    pub pupil: String,
    pub via_card: Option<String>,
    pub via_staff: Option<String>,
    pub price: i64,
}

pub(super) fn served_meal(row: MealRow) -> Result<ServedMeal, super::StoreError> {
    use super::corrupt;
    let via = match (row.via_card, row.via_staff) {
        (Some(uid), None) => {
            MealVia::Card(CardUid::from_hex(&uid).map_err(|error| corrupt("card uid", error))?)
        }
        (None, Some(staff)) => {
            MealVia::Staff(StaffId::parse(&staff).map_err(|error| corrupt("staff", error))?)
        }
        _ => {
            return Err(super::StoreError::Corrupt(
                "a meal served two ways".to_owned(),
            ));
        }
    };
    Ok(ServedMeal {
        device: DeviceId::parse(&row.device).map_err(|error| corrupt("device", error))?,
        seq: super::parse_seq(row.seq)?,
        kiosk_at: super::parse_timestamp(row.kiosk_at)?,
        service: ServiceId::parse(&row.service).map_err(|error| corrupt("service", error))?,
        meal_type: MealType::parse(&row.meal_type).map_err(|error| corrupt("meal type", error))?,
        account: AccountId::parse(&row.account).map_err(|error| corrupt("account", error))?,
        pupil: PupilId::parse(&row.pupil).map_err(|error| corrupt("pupil", error))?,
        via,
        price: Cents::new(row.price),
    })
}

/// The `LIKE` pattern that finds `text` anywhere, with `\` escaping `%` and `_`.
pub(super) fn contains_pattern(text: &str) -> String {
    let mut pattern = String::from("%");
    for c in text.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// A row count bound as a database integer.
pub(super) fn limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}
