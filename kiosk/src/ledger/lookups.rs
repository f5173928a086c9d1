//! What a tap reads, held in memory: the current snapshot's cards, hotlist, pupils, accounts and
//! tariffs, and the sum of this kiosk's movements after the snapshot's `records_through` per
//! account. A tap then reads no table but `meals`.
//!
//! The tables stay the truth: this is a copy of them, loaded when the ledger opens, refreshed
//! from them after a snapshot is committed, and moved by each committed movement. Nothing here
//! changes before the transaction that changes the tables has committed.

use std::collections::{HashMap, HashSet};

use proto::snapshot::{CardHolder, Snapshot};
use proto::{AccountId, BracketId, CardUid, Cents, MealType, PupilId, Seq};
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::rows::{LedgerError, PupilEntry, pupil_columns, stored, to_seq};

/// An account as the snapshot gave it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct AccountRow {
    pub balance: Cents,
    pub overdraft_floor: Cents,
}

/// The in-memory copy of the tables a tap reads.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Lookups {
    pub hotlist: HashSet<CardUid>,
    pub cards: HashMap<CardUid, CardHolder>,
    pub pupils: HashMap<PupilId, PupilEntry>,
    pub accounts: HashMap<AccountId, AccountRow>,
    pub tariffs: HashMap<(BracketId, MealType), Cents>,
    /// The snapshot's `records_through`: `pending` sums the movements after it.
    pub records_through: Option<Seq>,
    /// Per account, this kiosk's movements after `records_through` (debits negative). An
    /// account with none has no entry.
    pub pending: HashMap<AccountId, Cents>,
}

/// What one committed transaction changes in [`Lookups`], gathered while it runs.
#[derive(Debug, Default)]
pub(super) struct Changes {
    movements: Vec<(Seq, AccountId, Cents)>,
    snapshot: Option<SnapshotKeys>,
}

/// The rows a snapshot touched: all of them for a full snapshot, else the keys a delta names.
#[derive(Debug)]
enum SnapshotKeys {
    Full,
    Delta {
        cards: Vec<CardUid>,
        pupils: Vec<PupilId>,
        accounts: Vec<AccountId>,
        tariffs: Vec<(BracketId, MealType)>,
    },
}

impl Changes {
    pub fn movement(&mut self, seq: Seq, account: &AccountId, delta: Cents) {
        self.movements.push((seq, account.clone(), delta));
    }

    /// Whether the transaction applied a snapshot, which changes the tables the copy is read from.
    pub fn snapshot_applied(&self) -> bool {
        self.snapshot.is_some()
    }

    pub fn snapshot(&mut self, snapshot: &Snapshot) {
        let keys = if snapshot.is_full() {
            SnapshotKeys::Full
        } else {
            let removed = &snapshot.removed;
            SnapshotKeys::Delta {
                cards: (snapshot.cards.iter().map(|card| card.uid))
                    .chain(removed.cards.iter().copied())
                    .chain(snapshot.hotlist.iter().copied())
                    .chain(removed.hotlist.iter().copied())
                    .collect(),
                pupils: (snapshot.pupils.iter().map(|pupil| pupil.id.clone()))
                    .chain(removed.pupils.iter().cloned())
                    .collect(),
                accounts: (snapshot.accounts.iter().map(|account| account.id.clone()))
                    .chain(removed.accounts.iter().cloned())
                    .collect(),
                tariffs: (snapshot.tariffs.iter())
                    .map(|tariff| (tariff.bracket.clone(), tariff.meal_type.clone()))
                    .collect(),
            }
        };
        self.snapshot = Some(keys);
    }
}

impl Lookups {
    /// Reads every row a tap needs from the tables.
    pub fn load(connection: &Connection) -> Result<Lookups, LedgerError> {
        let mut lookups = Lookups {
            hotlist: collect_rows(connection, "SELECT uid FROM hotlist", |row| {
                Ok(CardUid::from_hex(&row.get::<_, String>(0)?).map_err(stored))
            })?,
            cards: collect_rows(
                connection,
                "SELECT uid, pupil, staff FROM cards",
                card_columns,
            )?,
            pupils: collect_rows(
                connection,
                "SELECT id, account, first_name, last_name, bracket, dietary FROM pupils",
                |row| Ok(pupil_columns(row)?.map(|pupil| (pupil.id.clone(), pupil))),
            )?,
            accounts: collect_rows(
                connection,
                "SELECT id, balance_cents, overdraft_floor_cents FROM accounts",
                account_columns,
            )?,
            tariffs: collect_rows(
                connection,
                "SELECT bracket, meal_type, price_cents FROM tariffs",
                tariff_columns,
            )?,
            ..Lookups::default()
        };
        lookups.load_pending(connection)?;
        Ok(lookups)
    }

    /// Re-reads `records_through` and the movements after it: only this kiosk's unsynced
    /// records, found by `seq`.
    fn load_pending(&mut self, connection: &Connection) -> Result<(), LedgerError> {
        let records_through: Option<i64> = connection
            .query_row("SELECT records_through FROM snapshot_state", [], |row| {
                row.get(0)
            })
            .optional()?
            .flatten();
        self.records_through = records_through.map(to_seq).transpose()?;
        self.pending.clear();
        let mut statement = connection.prepare_cached(
            "SELECT account, SUM(delta_cents) FROM records
             WHERE seq > ?1 AND account IS NOT NULL GROUP BY account",
        )?;
        let rows = statement.query_map([records_through.unwrap_or(0)], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
        })?;
        for row in rows {
            let (account, sum) = row?;
            self.pending
                .insert(AccountId::parse(&account).map_err(stored)?, Cents::new(sum));
        }
        Ok(())
    }

    /// Brings the copy in step with a committed transaction. On an error the copy is no longer
    /// trusted and the caller drops it.
    pub fn apply(&mut self, connection: &Connection, changes: Changes) -> Result<(), LedgerError> {
        match changes.snapshot {
            None => {}
            Some(SnapshotKeys::Full) => {
                *self = Lookups::load(connection)?;
                return Ok(());
            }
            Some(SnapshotKeys::Delta {
                cards,
                pupils,
                accounts,
                tariffs,
            }) => {
                for uid in cards {
                    self.refresh_card(connection, uid)?;
                }
                for id in pupils {
                    self.refresh_pupil(connection, id)?;
                }
                for id in accounts {
                    self.refresh_account(connection, id)?;
                }
                for key in tariffs {
                    self.refresh_tariff(connection, key)?;
                }
                // The movements of this transaction are in the tables already.
                return self.load_pending(connection);
            }
        }
        for (seq, account, delta) in changes.movements {
            if self.records_through.is_some_and(|through| seq <= through) {
                continue;
            }
            let sum = self.pending.entry(account).or_insert(Cents::ZERO);
            *sum = sum
                .checked_add(delta)
                .map_err(|_| stored("balance overflow"))?;
        }
        Ok(())
    }

    fn refresh_card(&mut self, connection: &Connection, uid: CardUid) -> Result<(), LedgerError> {
        let text = uid.to_string();
        let blocked = connection
            .prepare_cached("SELECT 1 FROM hotlist WHERE uid = ?1")?
            .exists([&text])?;
        if blocked {
            self.hotlist.insert(uid);
        } else {
            self.hotlist.remove(&uid);
        }
        let card = read_row(
            connection,
            "SELECT uid, pupil, staff FROM cards WHERE uid = ?1",
            [&text],
            card_columns,
        )?;
        refresh_entry(&mut self.cards, uid, card.map(|(_, holder)| holder));
        Ok(())
    }

    fn refresh_pupil(&mut self, connection: &Connection, id: PupilId) -> Result<(), LedgerError> {
        let pupil = read_row(
            connection,
            "SELECT id, account, first_name, last_name, bracket, dietary FROM pupils WHERE id = ?1",
            [id.as_str()],
            pupil_columns,
        )?;
        refresh_entry(&mut self.pupils, id, pupil);
        Ok(())
    }

    fn refresh_account(
        &mut self,
        connection: &Connection,
        id: AccountId,
    ) -> Result<(), LedgerError> {
        let account = read_row(
            connection,
            "SELECT id, balance_cents, overdraft_floor_cents FROM accounts WHERE id = ?1",
            [id.as_str()],
            account_columns,
        )?;
        refresh_entry(&mut self.accounts, id, account.map(|(_, row)| row));
        Ok(())
    }

    fn refresh_tariff(
        &mut self,
        connection: &Connection,
        key: TariffKey,
    ) -> Result<(), LedgerError> {
        let tariff = read_row(
            connection,
            "SELECT bracket, meal_type, price_cents FROM tariffs
             WHERE bracket = ?1 AND meal_type = ?2",
            params![key.0.as_str(), key.1.as_str()],
            tariff_columns,
        )?;
        refresh_entry(&mut self.tariffs, key, tariff.map(|(_, price)| price));
        Ok(())
    }
}

/// The row `sql` selects with `key`, read by `read`; none when the table has none.
fn read_row<T>(
    connection: &Connection,
    sql: &str,
    key: impl rusqlite::Params,
    read: impl FnOnce(&Row<'_>) -> Columns<T>,
) -> Result<Option<T>, LedgerError> {
    connection
        .prepare_cached(sql)?
        .query_row(key, read)
        .optional()?
        .transpose()
}

/// `map` as the table now is at `key`: holding `found`, or nothing when the row is gone.
fn refresh_entry<K: Eq + std::hash::Hash, V>(map: &mut HashMap<K, V>, key: K, found: Option<V>) {
    match found {
        Some(value) => map.insert(key, value),
        None => map.remove(&key),
    };
}

/// A row read: SQLite's error reading its columns, or what they parse to.
type Columns<T> = rusqlite::Result<Result<T, LedgerError>>;

/// A tariff's key: the bracket and the meal type it prices.
type TariffKey = (BracketId, MealType);

/// Every row `sql` selects, each read by `read`.
fn collect_rows<T, C: FromIterator<T>>(
    connection: &Connection,
    sql: &str,
    read: impl FnMut(&Row<'_>) -> Columns<T>,
) -> Result<C, LedgerError> {
    let mut statement = connection.prepare(sql)?;
    let rows = statement.query_map([], read)?;
    rows.map(|row| row?).collect()
}

/// A `cards` row: `uid, pupil, staff`.
fn card_columns(row: &Row<'_>) -> Columns<(CardUid, CardHolder)> {
    let uid: String = row.get(0)?;
    let (pupil, staff) = (row.get(1)?, row.get(2)?);
    Ok(CardUid::from_hex(&uid)
        .map_err(stored)
        .and_then(|uid| Ok((uid, card_holder(pupil, staff)?))))
}

/// An `accounts` row: `id, balance_cents, overdraft_floor_cents`.
fn account_columns(row: &Row<'_>) -> Columns<(AccountId, AccountRow)> {
    let id: String = row.get(0)?;
    let account = AccountRow {
        balance: Cents::new(row.get(1)?),
        overdraft_floor: Cents::new(row.get(2)?),
    };
    Ok(AccountId::parse(&id)
        .map_err(stored)
        .map(|id| (id, account)))
}

/// A `tariffs` row: `bracket, meal_type, price_cents`.
fn tariff_columns(row: &Row<'_>) -> Columns<(TariffKey, Cents)> {
    let bracket: String = row.get(0)?;
    let meal_type: String = row.get(1)?;
    let price = Cents::new(row.get(2)?);
    Ok((|| {
        Ok((
            (
                BracketId::parse(&bracket).map_err(stored)?,
                MealType::parse(&meal_type).map_err(stored)?,
            ),
            price,
        ))
    })())
}

fn card_holder(pupil: Option<String>, staff: Option<String>) -> Result<CardHolder, LedgerError> {
    match (pupil, staff) {
        (Some(pupil), _) => Ok(CardHolder::Pupil(PupilId::parse(&pupil).map_err(stored)?)),
        (None, Some(staff)) => Ok(CardHolder::Staff(
            proto::StaffId::parse(&staff).map_err(stored)?,
        )),
        (None, None) => Err(stored("card without holder")),
    }
}
