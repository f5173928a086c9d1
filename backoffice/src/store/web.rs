//! What the web pages read and write beyond the API's needs: browser sessions, sign-in
//! failures, searches, account histories, a site's meals and the per-day totals.

use proto::snapshot::Pupil;
use proto::{CardUid, Cents, Digest, ServiceDate, SiteId, Timestamp};

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
        meal_type: proto::MealType::parse(meal_type)
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
