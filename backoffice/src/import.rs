//! `backoffice import FILE.csv`: accounts, pupils, their tariff brackets and cards from one CSV
//! file, one pupil a row. Every row is checked first and every error reported with its line;
//! nothing is written unless the whole file is valid. Importing the same file again leaves
//! the data as it was. The rows are written through `manage`, with the same rules as every
//! other change (a pupil stays at their site, a card is bound once), in one transaction.
//!
//! Columns, with a header row: `site,account,overdraft_floor,pupil,first_name,last_name,
//! bracket,dietary,card`. `overdraft_floor` is in cents (0 or negative); `dietary` holds flags
//! separated by `|`; `card` is the card UID in hex, or empty.

use std::collections::BTreeMap;

use proto::snapshot::{Card, CardHolder, Pupil};
use proto::{AccountId, BracketId, CardUid, Cents, PupilId, SiteId, Text, Timestamp};

use crate::limits::IMPORT_ROWS_MAX;
use crate::manage::accounts::check_overdraft_floor;
use crate::manage::people::{assign_card_in, check_pupil, save_pupil_in};
use crate::manage::{ADMIN, Actor, ManageError};
use crate::store::{Mode, PeopleRows, Store, StoreError, Transaction, finish};

/// The header the file must start with.
pub const HEADER: [&str; 9] = [
    "site",
    "account",
    "overdraft_floor",
    "pupil",
    "first_name",
    "last_name",
    "bracket",
    "dietary",
    "card",
];

/// One valid row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportRow {
    /// Its line in the file, for errors found when it is written.
    pub line: u64,
    pub site: SiteId,
    pub overdraft_floor: Cents,
    pub pupil: Pupil,
    pub card: Option<CardUid>,
}

/// What is wrong with one line of the file.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct LineError {
    pub line: u64,
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{} invalid lines, nothing imported:\n{}", .0.len(), display_lines(.0))]
    Invalid(Vec<LineError>),
    #[error(transparent)]
    Refused(#[from] ManageError),
}

impl From<StoreError> for ImportError {
    fn from(error: StoreError) -> ImportError {
        ImportError::Refused(ManageError::Store(error))
    }
}

fn display_lines(errors: &[LineError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Checks every row of `text`; returns them all, or every error found.
pub fn parse(text: &str) -> Result<Vec<ImportRow>, Vec<LineError>> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut errors = Vec::new();
    let mut rows = Vec::new();
    let mut records = reader.records();
    match records.next() {
        Some(Ok(header)) if header.iter().map(str::trim).eq(HEADER) => {}
        _ => {
            return Err(vec![LineError {
                line: 1,
                message: format!("the first line must be the header {}", HEADER.join(",")),
            }]);
        }
    }
    for record in records {
        let record = match record {
            Ok(record) => record,
            Err(error) => {
                let line = error.position().map_or(0, csv::Position::line);
                errors.push(LineError {
                    line,
                    message: error.to_string(),
                });
                continue;
            }
        };
        let line = record.position().map_or(0, csv::Position::line);
        if rows.len() + errors.len() >= IMPORT_ROWS_MAX {
            errors.push(LineError {
                line,
                message: format!("more than {IMPORT_ROWS_MAX} rows"),
            });
            break;
        }
        match parse_row(line, &record) {
            Ok(row) => rows.push((line, row)),
            Err(message) => errors.push(LineError { line, message }),
        }
    }
    check_across_rows(&rows, &mut errors);
    if !errors.is_empty() {
        errors.sort_by_key(|error| error.line);
        return Err(errors);
    }
    Ok(rows.into_iter().map(|(_, row)| row).collect())
}

fn parse_row(line: u64, record: &csv::StringRecord) -> Result<ImportRow, String> {
    if record.len() != HEADER.len() {
        return Err(format!(
            "{} fields, expected {}",
            record.len(),
            HEADER.len()
        ));
    }
    let field = |index: usize| record.get(index).unwrap_or_default().trim();
    let named = |index: usize, error: proto::ParseError| format!("{}: {error}", HEADER[index]);
    let site = SiteId::parse(field(0)).map_err(|error| named(0, error))?;
    let account = AccountId::parse(field(1)).map_err(|error| named(1, error))?;
    let overdraft_floor = field(2)
        .parse::<i64>()
        .map(Cents::new)
        .map_err(|error| format!("{}: {error}", HEADER[2]))?;
    check_overdraft_floor(overdraft_floor).map_err(|error| format!("{}: {error}", HEADER[2]))?;
    let id = PupilId::parse(field(3)).map_err(|error| named(3, error))?;
    let first_name = Text::parse(field(4)).map_err(|error| named(4, error))?;
    let last_name = Text::parse(field(5)).map_err(|error| named(5, error))?;
    let bracket = BracketId::parse(field(6)).map_err(|error| named(6, error))?;
    let dietary = field(7)
        .split('|')
        .map(str::trim)
        .filter(|flag| !flag.is_empty())
        .map(|flag| Text::parse(flag).map_err(|error| named(7, error)))
        .collect::<Result<Vec<_>, _>>()?;
    let card = match field(8) {
        "" => None,
        hex => Some(CardUid::from_hex(hex).map_err(|error| named(8, error))?),
    };
    let pupil = Pupil {
        id,
        account,
        first_name,
        last_name,
        bracket,
        dietary,
    };
    check_pupil(&site, &pupil, None).map_err(|error| format!("{}: {error}", HEADER[7]))?;
    Ok(ImportRow {
        line,
        site,
        overdraft_floor,
        pupil,
        card,
    })
}

/// A pupil or card twice, or one account with two overdraft floors, is an error of the file.
fn check_across_rows(rows: &[(u64, ImportRow)], errors: &mut Vec<LineError>) {
    let mut pupils = BTreeMap::new();
    let mut cards = BTreeMap::new();
    let mut floors = BTreeMap::new();
    for (line, row) in rows {
        if let Some(first) = pupils.insert(&row.pupil.id, *line) {
            errors.push(LineError {
                line: *line,
                message: format!("pupil {} already on line {first}", row.pupil.id),
            });
        }
        if let Some(card) = &row.card
            && let Some(first) = cards.insert(card, *line)
        {
            errors.push(LineError {
                line: *line,
                message: format!("card {card} already on line {first}"),
            });
        }
        let (first_line, floor) = *floors
            .entry(&row.pupil.account)
            .or_insert((*line, row.overdraft_floor));
        if floor != row.overdraft_floor {
            errors.push(LineError {
                line: *line,
                message: format!(
                    "account {} has overdraft floor {} on line {first_line}",
                    row.pupil.account,
                    floor.get()
                ),
            });
        }
    }
}

/// Writes valid rows in one transaction: accounts first (kept if they exist), then pupils and
/// their cards (a card already bound to the same pupil is kept), each through the same rules as
/// a change made one by one; a row the stored data refuses (a pupil enrolled at another site)
/// is reported with its line, and nothing is written. Calls `progress` after each row.
pub async fn apply<S: Store>(
    store: &S,
    actor: &Actor,
    rows: &[ImportRow],
    at: Timestamp,
    progress: impl FnMut(usize),
) -> Result<(), ImportError> {
    actor.require(ADMIN)?;
    let mut transaction = store.begin(Mode::Write).await?;
    let result = apply_in(&mut transaction, actor, rows, at, progress).await;
    finish(transaction, result).await
}

async fn apply_in<X: Transaction>(
    transaction: &mut X,
    actor: &Actor,
    rows: &[ImportRow],
    at: Timestamp,
    mut progress: impl FnMut(usize),
) -> Result<(), ImportError> {
    let mut accounts = BTreeMap::new();
    for row in rows {
        accounts.insert(&row.pupil.account, row.overdraft_floor);
    }
    for (account, floor) in accounts {
        match transaction.insert_account(account, floor, at).await {
            Ok(()) | Err(StoreError::AlreadyExists { .. }) => {}
            Err(error) => return Err(error.into()),
        }
    }
    let mut refused = Vec::new();
    for (done, row) in rows.iter().enumerate() {
        if let Err(error) = write_row(transaction, actor, row).await {
            match error {
                ManageError::Store(error) => return Err(error.into()),
                error => refused.push(LineError {
                    line: row.line,
                    message: error.to_string(),
                }),
            }
        }
        progress(done + 1);
    }
    if !refused.is_empty() {
        return Err(ImportError::Invalid(refused));
    }
    Ok(())
}

async fn write_row<X: Transaction>(
    transaction: &mut X,
    actor: &Actor,
    row: &ImportRow,
) -> Result<(), ManageError> {
    save_pupil_in(transaction, actor, &row.site, &row.pupil).await?;
    let Some(uid) = row.card else {
        return Ok(());
    };
    let holder = CardHolder::Pupil(row.pupil.id.clone());
    match transaction.card(&uid).await? {
        Some(bound) if bound.holder == holder => Ok(()),
        Some(_) => Err(ManageError::Invalid(format!(
            "card {uid} is bound to another holder"
        ))),
        None => assign_card_in(transaction, actor, &Card { uid, holder })
            .await
            .map(drop),
    }
}

#[cfg(test)]
mod tests {
    use super::{HEADER, parse};

    /// Parses `rows` under the header; expects the pupils' ids, or the lines in error.
    fn check(rows: &str, expected: Result<&[&str], &[u64]>) {
        let text = format!("{}\n{rows}", HEADER.join(","));
        let parsed = parse(&text);
        match (parsed, expected) {
            (Ok(rows), Ok(ids)) => {
                let found: Vec<&str> = rows.iter().map(|row| row.pupil.id.as_str()).collect();
                assert_eq!(found, ids, "{rows:?}");
            }
            (Err(errors), Err(lines)) => {
                let found: Vec<u64> = errors.iter().map(|error| error.line).collect();
                assert_eq!(found, lines, "{errors:?}");
            }
            (parsed, expected) => panic!("{rows}: {parsed:?}, expected {expected:?}"),
        }
    }

    #[test]
    fn rows() {
        let good = "jaures,A1,-500,P1,Léa,Martin,q3,no_pork|peanut_allergy,04a1b2c3\n";
        check(good, Ok(&["P1"]));
        check(
            "jaures,A1,0,P1,Léa,\"Martin, dite \"\"Lili\"\"\",q3,,\njaures,A1,0,P2,Tom,Martin,q3,,",
            Ok(&["P1", "P2"]),
        );
        check(
            "jaures,A1,0,P1,Léa,Martin,q3,,\njaures,A1,-100,P2,Tom,Martin,q3,,",
            Err(&[3]),
        );
        check(
            "jaures,A1,0,P1,Léa,Martin,q3,,0a0b0c0d\njaures,A2,0,P1,Tom,Petit,q3,,0a0b0c0d",
            Err(&[3, 3]),
        );
        check(
            "jaures,A1,0,P1,,Martin,q3,,\n\
             jaures,A 1,0,P2,Léa,Martin,q3,,\n\
             jaures,A1,100,P3,Léa,Martin,q3,,\n\
             jaures,A1,0,P4,Léa,Martin,q3,,zz\n\
             jaures,A1,0,P5,Léa,Martin\n\
             jaures,A1,0,P6,Léa,Martin,q3,,",
            Err(&[2, 3, 4, 5, 6]),
        );
        check(
            "x'; DROP TABLE pupils;--,A1,0,P1,Léa,Martin,q3,,",
            Err(&[2]),
        );
    }

    #[test]
    fn a_file_without_the_header_is_refused() {
        let errors = parse("jaures,A1,0,P1,Léa,Martin,q3,,\n").unwrap_err();
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].line, 1);
    }
}
