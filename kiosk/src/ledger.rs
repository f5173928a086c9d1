//! The kiosk's offline ledger: one SQLite file holding the kiosk's own signed records
//! (append-only, each with the account movement it makes), what they derive (meals served,
//! voids), the current snapshot, and how far the back-office has acknowledged the chain.
//!
//! Every write is one transaction committed with `synchronous=FULL` in WAL mode: when
//! [`Ledger::write`] returns `Ok`, the records are on disk.

mod lookups;
mod rows;

use std::cell::RefCell;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use proto::rules::Effect;
use proto::snapshot::{
    AccountState, Card, CardHolder, KioskSettings, LocalTime, Pupil, Service, Snapshot,
    StaffCredential, Tariff,
};
use proto::{
    AccountId, BracketId, CardUid, Cents, ChainHead, Digest, MealType, PupilId, Record, RecordBody,
    Seq, ServiceDate, ServiceId, SignedRecord, SnapshotVersion, StaffId, Text,
};
use rusqlite::{Connection, OpenFlags, OptionalExtension, Transaction, params};

use crate::limits::{
    CHECKPOINT_PASSES_MAX, CHECKPOINT_REQUESTS_MAX, LEDGER_BUSY_TIMEOUT_MS, LEDGER_CACHE_KIB,
    LEDGER_MMAP_BYTES_MAX, RECORDS_PAGE_MAX, WAL_KEPT_BYTES_MAX, WAL_RESTART_FRAMES,
};
use lookups::{Changes, Lookups};
pub use rows::{LedgerError, PupilEntry};
use rows::{pupil_columns, seq_sql, stored, to_seq};

/// A schema migration: its SQL, then the append-only triggers of the tables it names.
struct Migration {
    sql: &'static str,
    /// Tables whose rows are never edited or deleted, each with its name in the refusal.
    append_only: &'static [(&'static str, &'static str)],
}

impl Migration {
    /// The migration's SQL with a trigger refusing every `UPDATE` and every `DELETE` of each
    /// append-only table.
    fn statements(&self) -> String {
        let mut sql = self.sql.to_owned();
        for (table, name) in self.append_only {
            for action in ["UPDATE", "DELETE"] {
                sql.push_str(&format!(
                    "CREATE TRIGGER {table}_no_{} BEFORE {action} ON {table}\n    \
                     BEGIN SELECT RAISE(ABORT, '{name} are append-only'); END;\n",
                    action.to_lowercase()
                ));
            }
        }
        sql
    }
}

/// Schema migrations, applied in order; `PRAGMA user_version` counts those applied.
const MIGRATIONS: &[Migration] = &[Migration {
    // Nothing written by a kiosk is ever edited or deleted.
    append_only: &[
        ("records", "records"),
        ("meals", "meals"),
        ("voids", "voids"),
        ("top_ups", "top-ups"),
        ("day_closes", "day closes"),
    ],
    sql: r#"
CREATE TABLE records (
    seq INTEGER PRIMARY KEY CHECK (seq >= 1),
    kind TEXT NOT NULL,
    at TEXT NOT NULL,
    hash BLOB NOT NULL CHECK (length(hash) = 32),
    payload TEXT NOT NULL,
    signature TEXT NOT NULL,
    -- The record's movement of an account's money, if any (a meal's debit is negative): in the
    -- record's own row, so a meal writes two B-tree entries (record, meal) before its commit
    -- returns, and this kiosk's movements after a snapshot's `records_through` are one range.
    account TEXT,
    delta_cents INTEGER,
    CHECK ((account IS NULL) = (delta_cents IS NULL))
) STRICT;
-- What records derive, written in the same transaction as the record. Keyed for the tap's
-- lookup and without rowids, so it is one B-tree.
CREATE TABLE meals (
    service_date TEXT NOT NULL,
    pupil TEXT NOT NULL,
    service TEXT NOT NULL,
    seq INTEGER NOT NULL REFERENCES records (seq),
    PRIMARY KEY (service_date, pupil, service, seq)
) STRICT, WITHOUT ROWID;
CREATE TABLE voids (
    voided_seq INTEGER PRIMARY KEY REFERENCES records (seq),
    void_seq INTEGER NOT NULL UNIQUE REFERENCES records (seq)
) STRICT;
CREATE TABLE top_ups (
    seq INTEGER PRIMARY KEY REFERENCES records (seq),
    at TEXT NOT NULL
) STRICT;
CREATE TABLE day_closes (
    seq INTEGER PRIMARY KEY REFERENCES records (seq)
) STRICT;

CREATE TABLE upload_state (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    acknowledged_seq INTEGER
) STRICT;
INSERT INTO upload_state (id, acknowledged_seq) VALUES (1, NULL);

-- The current snapshot: replaced whole or changed by a delta, in one transaction.
CREATE TABLE snapshot_state (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL,
    records_through INTEGER,
    applied_at TEXT NOT NULL,
    site TEXT NOT NULL,
    settings TEXT NOT NULL
) STRICT;
CREATE TABLE accounts (
    id TEXT PRIMARY KEY,
    balance_cents INTEGER NOT NULL,
    overdraft_floor_cents INTEGER NOT NULL
) STRICT;
CREATE TABLE pupils (
    id TEXT PRIMARY KEY,
    account TEXT NOT NULL,
    first_name TEXT NOT NULL,
    last_name TEXT NOT NULL,
    bracket TEXT NOT NULL,
    dietary TEXT NOT NULL
) STRICT;
CREATE INDEX pupils_by_account ON pupils (account);
CREATE TABLE cards (
    uid TEXT PRIMARY KEY,
    pupil TEXT,
    staff TEXT,
    CHECK ((pupil IS NULL) <> (staff IS NULL))
) STRICT;
CREATE TABLE hotlist (uid TEXT PRIMARY KEY) STRICT;
CREATE TABLE tariffs (
    bracket TEXT NOT NULL,
    meal_type TEXT NOT NULL,
    price_cents INTEGER NOT NULL,
    PRIMARY KEY (bracket, meal_type)
) STRICT;
CREATE TABLE services (
    id TEXT PRIMARY KEY,
    body TEXT NOT NULL
) STRICT;
CREATE TABLE staff (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    pin_hash TEXT NOT NULL
) STRICT;
"#,
}];

/// The kiosk's SQLite ledger. One writer: the engine.
#[derive(Debug)]
pub struct Ledger {
    connection: Connection,
    path: std::path::PathBuf,
    /// What a tap reads, in memory; none until loaded, or after a refresh failed, when reads go
    /// to the tables until it loads again.
    lookups: RefCell<Option<Lookups>>,
    /// Set when loading the copy failed: reads go to the tables without trying again until the
    /// next snapshot, so a row that cannot be parsed does not cost every tap a reload.
    lookups_failed: std::cell::Cell<bool>,
    /// Held through each write transaction; the [`Checkpointer`] takes it to keep the writer off.
    write_turn: Arc<Mutex<()>>,
}

/// What the kiosk knows of the snapshot it last applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotState {
    pub version: SnapshotVersion,
    pub records_through: Option<Seq>,
    pub applied_at: proto::Timestamp,
    pub settings: KioskSettings,
    pub services: Vec<Service>,
}

/// Who a card belongs to, if anyone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CardLookup {
    Unknown,
    Blocked,
    Pupil(PupilId),
    Staff(StaffId),
}

/// An account's balance as the kiosk sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AccountView {
    /// Snapshot balance plus this kiosk's movements not yet in the snapshot.
    pub balance: Cents,
    pub overdraft_floor: Cents,
}

/// A day's activity at this kiosk.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DayCounts {
    /// Meals served and not voided.
    pub meals: u64,
    pub top_ups: u64,
}

/// Counts a staff member or `kiosk status` wants at a glance.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LedgerCounts {
    pub last_seq: Option<Seq>,
    pub acknowledged_seq: Option<Seq>,
    pub unsynced_records: u64,
}

impl Ledger {
    /// Creates a new ledger file; refuses if one is there.
    pub fn create(path: &Path) -> Result<Ledger, LedgerError> {
        if path.exists() {
            return Err(LedgerError::AlreadyExists {
                path: path.display().to_string(),
            });
        }
        Ledger::open(path)
    }

    /// Opens (or creates) the ledger and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Ledger, LedgerError> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let connection = Connection::open_with_flags(path, flags)?;
        configure(&connection)?;
        let mut ledger = Ledger {
            connection,
            path: path.to_owned(),
            lookups: RefCell::new(None),
            lookups_failed: std::cell::Cell::new(false),
            write_turn: Arc::default(),
        };
        ledger.migrate()?;
        ledger.check_last_record()?;
        Ok(ledger)
    }

    /// A second connection to an existing ledger that only reads, for a reader beside the engine:
    /// the sync client reads unsynced records and the snapshot's version through it. In WAL
    /// mode it reads while the engine writes and never takes the write lock.
    pub fn open_reader(path: &Path) -> Result<Ledger, LedgerError> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let connection = Connection::open_with_flags(path, flags)?;
        connection.busy_timeout(Duration::from_millis(LEDGER_BUSY_TIMEOUT_MS))?;
        connection.pragma_update(None, "query_only", true)?;
        Ok(Ledger {
            connection,
            path: path.to_owned(),
            // A reader beside the engine never sees the engine's commits move an in-memory copy,
            // so it always reads the tables.
            lookups: RefCell::new(None),
            lookups_failed: std::cell::Cell::new(true),
            write_turn: Arc::default(),
        })
    }

    fn migrate(&mut self) -> Result<(), LedgerError> {
        let supported = i64::try_from(MIGRATIONS.len()).expect("few migrations");
        let found: i64 = self
            .connection
            .pragma_query_value(None, "user_version", |row| row.get(0))?;
        if found > supported {
            return Err(LedgerError::SchemaTooNew { found, supported });
        }
        for (index, migration) in MIGRATIONS
            .iter()
            .enumerate()
            .skip(usize::try_from(found).unwrap_or(0))
        {
            let transaction = self.connection.transaction()?;
            transaction.execute_batch(&migration.statements())?;
            transaction.pragma_update(None, "user_version", index + 1)?;
            transaction.commit()?;
        }
        Ok(())
    }

    /// The last record's stored hash must be the hash of its stored payload: a cheap check at
    /// every start that the tail of the chain was not altered behind the kiosk's back.
    fn check_last_record(&self) -> Result<(), LedgerError> {
        let last: Option<(i64, Vec<u8>, String)> = self
            .connection
            .query_row(
                "SELECT seq, hash, payload FROM records ORDER BY seq DESC LIMIT 1",
                [],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
            )
            .optional()?;
        if let Some((seq, hash, payload)) = last
            && Digest::of(payload.as_bytes()).as_bytes()[..] != hash[..]
        {
            return Err(LedgerError::Corrupt {
                seq: seq.unsigned_abs(),
            });
        }
        Ok(())
    }

    /// Where the chain continues.
    pub fn head(&self) -> Result<ChainHead, LedgerError> {
        let last: Option<(i64, Vec<u8>)> = self
            .connection
            .query_row(
                "SELECT seq, hash FROM records ORDER BY seq DESC LIMIT 1",
                [],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()?;
        let Some((seq, hash)) = last else {
            return Ok(ChainHead::GENESIS);
        };
        let hash: [u8; 32] = hash.try_into().map_err(|_| stored("record hash length"))?;
        Ok(ChainHead {
            next_seq: to_seq(seq)?.next(),
            prev: Digest::from_bytes(hash),
        })
    }

    /// Runs `work` in one transaction and commits it durably, or changes nothing.
    pub fn write<T, E: From<LedgerError>>(
        &mut self,
        work: impl FnOnce(&LedgerWrite<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        let turn = self
            .write_turn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let transaction = self
            .connection
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(LedgerError::from)?;
        let write = LedgerWrite {
            transaction: &transaction,
            changes: RefCell::new(Changes::default()),
        };
        let value = work(&write)?;
        let changes = write.changes.into_inner();
        transaction.commit().map_err(LedgerError::from)?;
        drop(turn);
        // Committed: the write has succeeded whatever happens to the in-memory copy, which is
        // dropped (and reloaded from the tables when next read) if it cannot follow.
        if changes.snapshot_applied() {
            self.lookups_failed.set(false);
        }
        let lookups = self.lookups.get_mut();
        if let Some(current) = lookups
            && current.apply(&self.connection, changes).is_err()
        {
            *lookups = None;
        }
        Ok(value)
    }

    /// Runs `read` on the in-memory copy of the tap's tables, loading it first if needed; `None`
    /// when it cannot be loaded, and the caller reads the tables.
    fn with_lookups<T>(&self, read: impl FnOnce(&Lookups) -> T) -> Option<T> {
        let mut lookups = self.lookups.borrow_mut();
        if lookups.is_none() && !self.lookups_failed.get() {
            *lookups = Lookups::load(&self.connection).ok();
            self.lookups_failed.set(lookups.is_none());
        }
        lookups.as_ref().map(read)
    }

    /// Loads the in-memory copy of what a tap reads now, rather than at the first tap. Reads load
    /// it anyway when needed, so a command that only reads records never pays for it; when it
    /// cannot be loaded (a stored row that does not parse), reads go to the tables.
    pub fn load_lookups(&self) {
        self.with_lookups(|_| ());
    }

    /// Whether the in-memory copy of what a tap reads equals the tables: the tests' check that
    /// it is kept in step with every commit.
    pub fn lookups_match_tables(&self) -> Result<bool, LedgerError> {
        let fresh = Lookups::load(&self.connection)?;
        Ok(self.lookups.borrow().as_ref() == Some(&fresh))
    }

    /// The kiosk time of the last record, if any.
    pub fn last_record_at(&self) -> Result<Option<proto::Timestamp>, LedgerError> {
        let at: Option<String> = self
            .connection
            .query_row(
                "SELECT at FROM records ORDER BY seq DESC LIMIT 1",
                [],
                |row| row.get(0),
            )
            .optional()?;
        at.map(|at| proto::Timestamp::parse(&at).map_err(stored))
            .transpose()
    }

    /// Meals served and top-ups written on the site's calendar day at `now`.
    pub fn day_counts(
        &self,
        now: jiff::Timestamp,
        time_zone: &jiff::tz::TimeZone,
    ) -> Result<DayCounts, LedgerError> {
        let date = crate::clock::local_date(now, time_zone);
        let start = now
            .to_zoned(time_zone.clone())
            .start_of_day()
            .map_err(stored)?;
        let end = start.tomorrow().map_err(stored)?;
        let (from, to) = (
            crate::clock::record_time(start.timestamp()),
            crate::clock::record_time(end.timestamp()),
        );
        let meals: i64 = self
            .connection
            .prepare_cached(
                "SELECT COUNT(*) FROM meals m WHERE m.service_date = ?1
                   AND NOT EXISTS (SELECT 1 FROM voids v WHERE v.voided_seq = m.seq)",
            )?
            .query_row([date.to_string()], |row| row.get(0))?;
        let top_ups: i64 = self
            .connection
            .prepare_cached("SELECT COUNT(*) FROM top_ups WHERE at >= ?1 AND at < ?2")?
            .query_row([from.to_string(), to.to_string()], |row| row.get(0))?;
        Ok(DayCounts {
            meals: meals.unsigned_abs(),
            top_ups: top_ups.unsigned_abs(),
        })
    }

    pub fn snapshot_state(&self) -> Result<Option<SnapshotState>, LedgerError> {
        let row: Option<(i64, Option<i64>, String, String)> = self
            .connection
            .query_row(
                "SELECT version, records_through, applied_at, settings FROM snapshot_state",
                [],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)),
            )
            .optional()?;
        let Some((version, records_through, applied_at, settings)) = row else {
            return Ok(None);
        };
        let mut statement = self
            .connection
            .prepare_cached("SELECT body FROM services ORDER BY id")?;
        let services = statement
            .query_map([], |row| row.get::<_, String>(0))?
            .map(|body| -> Result<Service, LedgerError> {
                serde_json::from_str(&body?).map_err(stored)
            })
            .collect::<Result<Vec<Service>, LedgerError>>()?;
        Ok(Some(SnapshotState {
            version: SnapshotVersion(version.unsigned_abs()),
            records_through: records_through.map(to_seq).transpose()?,
            applied_at: proto::Timestamp::parse(&applied_at).map_err(stored)?,
            settings: serde_json::from_str(&settings).map_err(stored)?,
            services,
        }))
    }

    pub fn card(&self, uid: &CardUid) -> Result<CardLookup, LedgerError> {
        let found = self.with_lookups(|lookups| {
            if lookups.hotlist.contains(uid) {
                return CardLookup::Blocked;
            }
            match lookups.cards.get(uid) {
                None => CardLookup::Unknown,
                Some(CardHolder::Pupil(pupil)) => CardLookup::Pupil(pupil.clone()),
                Some(CardHolder::Staff(staff)) => CardLookup::Staff(staff.clone()),
            }
        });
        if let Some(found) = found {
            return Ok(found);
        }
        self.stored_card(uid)
    }

    fn stored_card(&self, uid: &CardUid) -> Result<CardLookup, LedgerError> {
        let uid = uid.to_string();
        let blocked = self
            .connection
            .prepare_cached("SELECT 1 FROM hotlist WHERE uid = ?1")?
            .exists([&uid])?;
        if blocked {
            return Ok(CardLookup::Blocked);
        }
        let row: Option<(Option<String>, Option<String>)> = self
            .connection
            .prepare_cached("SELECT pupil, staff FROM cards WHERE uid = ?1")?
            .query_row([&uid], |row| Ok((row.get(0)?, row.get(1)?)))
            .optional()?;
        Ok(match row {
            None => CardLookup::Unknown,
            Some((Some(pupil), _)) => CardLookup::Pupil(PupilId::parse(&pupil).map_err(stored)?),
            Some((None, Some(staff))) => CardLookup::Staff(StaffId::parse(&staff).map_err(stored)?),
            Some((None, None)) => return Err(stored("card without holder")),
        })
    }

    pub fn pupil(&self, id: &PupilId) -> Result<Option<PupilEntry>, LedgerError> {
        if let Some(found) = self.with_lookups(|lookups| lookups.pupils.get(id).cloned()) {
            return Ok(found);
        }
        self.connection
            .prepare_cached(
                "SELECT id, account, first_name, last_name, bracket, dietary FROM pupils WHERE id = ?1",
            )?
            .query_row([id.as_str()], pupil_columns)
            .optional()?
            .transpose()
    }

    /// Pupils whose first or last name starts with `prefix` (case-insensitive), for serving a
    /// pupil who forgot their card; at most `limit`.
    pub fn search_pupils(
        &self,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<PupilEntry>, LedgerError> {
        let prefix = prefix.trim();
        if prefix.is_empty() {
            return Ok(Vec::new());
        }
        // The prefix is matched literally: LIKE's wildcards in it are escaped.
        let escaped = prefix
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        let pattern = format!("{escaped}%");
        let mut statement = self.connection.prepare_cached(
            "SELECT id, account, first_name, last_name, bracket, dietary FROM pupils
             WHERE first_name LIKE ?1 ESCAPE '\\' OR last_name LIKE ?1 ESCAPE '\\'
             ORDER BY last_name, first_name LIMIT ?2",
        )?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = statement.query_map(params![pattern, limit], pupil_columns)?;
        rows.map(|row| row?).collect()
    }

    pub fn staff(&self, id: &StaffId) -> Result<Option<StaffCredential>, LedgerError> {
        self.connection
            .prepare_cached("SELECT id, name, pin_hash FROM staff WHERE id = ?1")?
            .query_row([id.as_str()], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, String>(2)?,
                ))
            })
            .optional()?
            .map(|(id, name, pin_hash)| {
                Ok(StaffCredential {
                    id: StaffId::parse(&id).map_err(stored)?,
                    name: Text::parse(&name).map_err(stored)?,
                    pin_hash: Text::parse(&pin_hash).map_err(stored)?,
                })
            })
            .transpose()
    }

    /// The account's balance: the snapshot's, plus this kiosk's movements after
    /// `records_through` (debits negative, top-ups positive).
    pub fn account(
        &self,
        id: &AccountId,
        records_through: Option<Seq>,
    ) -> Result<Option<AccountView>, LedgerError> {
        let found = self.with_lookups(|lookups| {
            if lookups.records_through != records_through {
                return None;
            }
            let Some(row) = lookups.accounts.get(id) else {
                return Some(Ok(None));
            };
            let pending = lookups.pending.get(id).copied().unwrap_or(Cents::ZERO);
            Some(
                row.balance
                    .checked_add(pending)
                    .map_err(|_| stored("balance overflow"))
                    .map(|balance| {
                        Some(AccountView {
                            balance,
                            overdraft_floor: row.overdraft_floor,
                        })
                    }),
            )
        });
        if let Some(Some(found)) = found {
            return found;
        }
        self.stored_account(id, records_through)
    }

    /// [`Ledger::account`] from the tables alone.
    pub fn stored_account(
        &self,
        id: &AccountId,
        records_through: Option<Seq>,
    ) -> Result<Option<AccountView>, LedgerError> {
        let row: Option<(i64, i64)> = self
            .connection
            .prepare_cached(
                "SELECT balance_cents, overdraft_floor_cents FROM accounts WHERE id = ?1",
            )?
            .query_row([id.as_str()], |row| Ok((row.get(0)?, row.get(1)?)))
            .optional()?;
        let Some((balance, floor)) = row else {
            return Ok(None);
        };
        let after = records_through.map_or(0, seq_sql);
        let pending: i64 = self
            .connection
            .prepare_cached(
                "SELECT COALESCE(SUM(delta_cents), 0) FROM records WHERE seq > ?2 AND account = ?1",
            )?
            .query_row(params![id.as_str(), after], |row| row.get(0))?;
        let balance = Cents::new(balance)
            .checked_add(Cents::new(pending))
            .map_err(|_| stored("balance overflow"))?;
        Ok(Some(AccountView {
            balance,
            overdraft_floor: Cents::new(floor),
        }))
    }

    pub fn price(
        &self,
        bracket: &BracketId,
        meal_type: &MealType,
    ) -> Result<Option<Cents>, LedgerError> {
        let key = (bracket.clone(), meal_type.clone());
        if let Some(found) = self.with_lookups(|lookups| lookups.tariffs.get(&key).copied()) {
            return Ok(found);
        }
        Ok(self
            .connection
            .prepare_cached(
                "SELECT price_cents FROM tariffs WHERE bracket = ?1 AND meal_type = ?2",
            )?
            .query_row([bracket.as_str(), meal_type.as_str()], |row| {
                row.get::<_, i64>(0)
            })
            .optional()?
            .map(Cents::new))
    }

    /// Whether `pupil` has a meal of `service` on `date` that was not voided.
    pub fn served(
        &self,
        pupil: &PupilId,
        service: &ServiceId,
        date: ServiceDate,
    ) -> Result<bool, LedgerError> {
        Ok(self
            .connection
            .prepare_cached(
                "SELECT 1 FROM meals m
                 WHERE m.pupil = ?1 AND m.service_date = ?2 AND m.service = ?3
                   AND NOT EXISTS (SELECT 1 FROM voids v WHERE v.voided_seq = m.seq)",
            )?
            .exists(params![pupil.as_str(), date.to_string(), service.as_str()])?)
    }

    /// One stored record, as signed.
    pub fn record(&self, seq: Seq) -> Result<Option<SignedRecord>, LedgerError> {
        Ok(self
            .connection
            .prepare_cached("SELECT payload, signature FROM records WHERE seq = ?1")?
            .query_row([seq_sql(seq)], |row| {
                Ok(SignedRecord {
                    payload: row.get(0)?,
                    signature: row.get(1)?,
                })
            })
            .optional()?)
    }

    /// Whether the record at `seq` has been voided.
    pub fn voided(&self, seq: Seq) -> Result<bool, LedgerError> {
        Ok(self
            .connection
            .prepare_cached("SELECT 1 FROM voids WHERE voided_seq = ?1")?
            .exists([seq_sql(seq)])?)
    }

    /// Records with `from <= seq <= to`, in order, at most [`RECORDS_PAGE_MAX`].
    pub fn records(&self, from: Seq, to: Option<Seq>) -> Result<Vec<SignedRecord>, LedgerError> {
        Ok(self
            .records_page(from, to)?
            .into_iter()
            .map(|(_, record)| record)
            .collect())
    }

    /// Calls `visit` on every record with `from <= seq <= to` (to the last when unbounded), in
    /// order, reading [`RECORDS_PAGE_MAX`] at a time; stops at the first error.
    pub fn visit_records<E: From<LedgerError>>(
        &self,
        from: Seq,
        to: Option<Seq>,
        mut visit: impl FnMut(&SignedRecord) -> Result<(), E>,
    ) -> Result<(), E> {
        let mut next = from;
        loop {
            let page = self.records_page(next, to)?;
            let Some((last, _)) = page.last() else {
                return Ok(());
            };
            next = last.next();
            for (_, record) in &page {
                visit(record)?;
            }
        }
    }

    fn records_page(
        &self,
        from: Seq,
        to: Option<Seq>,
    ) -> Result<Vec<(Seq, SignedRecord)>, LedgerError> {
        let to = to.map_or(i64::MAX, seq_sql);
        let mut statement = self.connection.prepare_cached(
            "SELECT seq, payload, signature FROM records WHERE seq >= ?1 AND seq <= ?2 ORDER BY seq LIMIT ?3",
        )?;
        let limit = i64::try_from(RECORDS_PAGE_MAX).expect("small page");
        let rows = statement.query_map(params![seq_sql(from), to, limit], |row| {
            let record = SignedRecord {
                payload: row.get(1)?,
                signature: row.get(2)?,
            };
            Ok((row.get::<_, i64>(0)?, record))
        })?;
        rows.map(|row| {
            let (seq, record) = row?;
            Ok((to_seq(seq)?, record))
        })
        .collect()
    }

    /// The `seq` of the last day close, if any.
    pub fn last_day_close(&self) -> Result<Option<Seq>, LedgerError> {
        let seq: Option<i64> = self
            .connection
            .prepare_cached("SELECT MAX(seq) FROM day_closes")?
            .query_row([], |row| row.get(0))?;
        seq.map(to_seq).transpose()
    }

    pub fn counts(&self) -> Result<LedgerCounts, LedgerError> {
        let last: Option<i64> =
            self.connection
                .query_row("SELECT MAX(seq) FROM records", [], |row| row.get(0))?;
        let acknowledged: Option<i64> =
            self.connection
                .query_row("SELECT acknowledged_seq FROM upload_state", [], |row| {
                    row.get(0)
                })?;
        let unsynced = last.unwrap_or(0) - acknowledged.unwrap_or(0);
        Ok(LedgerCounts {
            last_seq: last.map(to_seq).transpose()?,
            acknowledged_seq: acknowledged.map(to_seq).transpose()?,
            unsynced_records: unsynced.unsigned_abs(),
        })
    }

    /// Runs SQLite's own consistency check; `Ok` holds its findings ("ok" when clean).
    pub fn integrity_check(&self) -> Result<Vec<String>, LedgerError> {
        let mut statement = self.connection.prepare("PRAGMA integrity_check")?;
        let rows = statement.query_map([], |row| row.get::<_, String>(0))?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Stops SQLite from checkpointing the WAL inside this connection's commits and starts the
    /// [`Checkpointer`] that does it instead, so a tap never waits for a checkpoint.
    pub fn start_checkpointer(&self) -> Result<Checkpointer, LedgerError> {
        self.connection
            .pragma_update(None, "wal_autocheckpoint", 0)?;
        Checkpointer::start(&self.path, Arc::clone(&self.write_turn))
    }

    /// Limits the file to `pages` pages, so tests can fill the "disk" without filling the disk.
    pub fn set_max_page_count(&self, pages: u64) -> Result<(), LedgerError> {
        self.connection
            .pragma_update(None, "max_page_count", pages)?;
        Ok(())
    }

    /// Makes the connection refuse writes, as a ledger on a read-only file system would.
    pub fn set_query_only(&self, query_only: bool) -> Result<(), LedgerError> {
        self.connection
            .pragma_update(None, "query_only", query_only)?;
        Ok(())
    }
}

/// Copies the WAL back into the database file on its own thread and connection, when asked:
/// checkpoints leave the tap path, and nothing runs while nothing is written.
///
/// SQLite restarts the WAL from its start when a write begins after a checkpoint copied every
/// frame. Taps that follow each other without a pause keep appending while a checkpoint runs,
/// so no write would ever begin at such a moment and the WAL file would only grow, each commit's
/// sync then also writing the file's new size. Past [`WAL_RESTART_FRAMES`] the checkpoint's last
/// pass holds the writer off, so the next write restarts the WAL.
#[derive(Debug)]
pub struct Checkpointer {
    /// Holds [`CHECKPOINT_REQUESTS_MAX`] requests: a request while one is pending adds nothing.
    requests: Option<std::sync::mpsc::SyncSender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// Checkpoints that copied the whole WAL, after which the next write restarts it.
    completed: Arc<AtomicU64>,
}

impl Checkpointer {
    fn start(path: &Path, write_turn: Arc<Mutex<()>>) -> Result<Checkpointer, LedgerError> {
        let connection = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        connection.busy_timeout(Duration::from_millis(LEDGER_BUSY_TIMEOUT_MS))?;
        let (requests, received) = std::sync::mpsc::sync_channel::<()>(CHECKPOINT_REQUESTS_MAX);
        let completed = Arc::new(AtomicU64::new(0));
        let completed_by_thread = Arc::clone(&completed);
        let thread = std::thread::Builder::new()
            .name("ledger-checkpoint".into())
            .spawn(move || {
                while received.recv().is_ok() {
                    // PASSIVE never blocks the writer. Passes repeat while the writer keeps
                    // appending, so a burst of taps is caught up with; a checkpoint that cannot
                    // finish only leaves the WAL longer until the next request. Nothing is lost.
                    let mut pass = None;
                    for _ in 0..CHECKPOINT_PASSES_MAX {
                        pass = passive_checkpoint(&connection).ok();
                        if pass.is_none_or(|(in_wal, copied)| in_wal <= copied) {
                            break;
                        }
                    }
                    if pass.is_some_and(|(in_wal, _)| in_wal >= WAL_RESTART_FRAMES) {
                        // The passes left what the last few taps wrote: a tap that comes now
                        // waits for those pages, once in hundreds of taps without a pause.
                        let _turn = write_turn
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner);
                        pass = passive_checkpoint(&connection).ok();
                    }
                    if pass.is_some_and(|(in_wal, copied)| in_wal <= copied) {
                        completed_by_thread.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
            .map_err(|error| stored(format!("checkpoint thread: {error}")))?;
        Ok(Checkpointer {
            requests: Some(requests),
            thread: Some(thread),
            completed,
        })
    }

    /// How many checkpoints copied the whole WAL so far.
    pub fn completed(&self) -> u64 {
        self.completed.load(Ordering::Relaxed)
    }

    /// Asks for a checkpoint without waiting.
    pub fn request(&self) {
        if let Some(requests) = &self.requests {
            let _ = requests.try_send(());
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        drop(self.requests.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// One `PRAGMA wal_checkpoint(PASSIVE)`: the frames in the WAL and the frames copied.
fn passive_checkpoint(connection: &Connection) -> rusqlite::Result<(i64, i64)> {
    connection.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
        Ok((row.get(1)?, row.get(2)?))
    })
}

/// The writes of one transaction.
#[derive(Debug)]
pub struct LedgerWrite<'a> {
    transaction: &'a Transaction<'a>,
    /// What the in-memory lookups take on once the transaction has committed.
    changes: RefCell<Changes>,
}

impl LedgerWrite<'_> {
    /// Appends a record and what it derives. The record must continue the stored chain.
    pub fn append(&self, record: &Record) -> Result<(), LedgerError> {
        let signed = record.signed();
        let seq = seq_sql(record.seq());
        let body = &record.payload().body;
        let movement = self.movement(body)?;
        self.transaction
            .prepare_cached(
                "INSERT INTO records (seq, kind, at, hash, payload, signature, account, delta_cents)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?
            .execute(params![
                seq,
                body.kind().as_str(),
                record.payload().at.to_string(),
                &record.hash().as_bytes()[..],
                signed.payload,
                signed.signature,
                movement.as_ref().map(|(account, _)| account.as_str()),
                movement.as_ref().map(|(_, delta)| delta.get()),
            ])?;
        if let Some((account, delta)) = &movement {
            self.changes
                .borrow_mut()
                .movement(record.seq(), account, *delta);
        }
        match body {
            RecordBody::Meal(meal) => {
                self.transaction
                    .prepare_cached(
                        "INSERT INTO meals (service_date, pupil, service, seq) VALUES (?1, ?2, ?3, ?4)",
                    )?
                    .execute(params![
                        meal.service_date.to_string(),
                        meal.pupil.as_str(),
                        meal.service.as_str(),
                        seq
                    ])?;
            }
            RecordBody::TopUp(_) => {
                self.transaction
                    .prepare_cached("INSERT INTO top_ups (seq, at) VALUES (?1, ?2)")?
                    .execute(params![seq, record.payload().at.to_string()])?;
            }
            RecordBody::Void(void) => {
                self.transaction
                    .prepare_cached("INSERT INTO voids (voided_seq, void_seq) VALUES (?1, ?2)")?
                    .execute(params![seq_sql(void.voided_seq), seq])?;
            }
            RecordBody::DayClose(_) => {
                self.transaction
                    .prepare_cached("INSERT INTO day_closes (seq) VALUES (?1)")?
                    .execute([seq])?;
            }
            _ => {}
        }
        Ok(())
    }

    /// The money `body` moves, by `proto`'s rule ([`proto::rules::effect`]): a meal debits its
    /// price, a top-up credits its amount, a void reverses what the voided record moved.
    fn movement(&self, body: &RecordBody) -> Result<Option<(AccountId, Cents)>, LedgerError> {
        match proto::rules::effect(body) {
            Effect::Move { account, amount } => Ok(Some((account, amount))),
            Effect::Reverse { seq, hash } => self.reversal(seq, hash),
            Effect::None => Ok(None),
        }
    }

    /// The reverse of what the record at `seq`, which must be the one with `hash`, moved.
    fn reversal(&self, seq: Seq, hash: Digest) -> Result<Option<(AccountId, Cents)>, LedgerError> {
        // The voided record says whose money it moved, and by how much.
        let moved: Option<(Vec<u8>, Option<String>, Option<i64>)> = self
            .transaction
            .prepare_cached("SELECT hash, account, delta_cents FROM records WHERE seq = ?1")?
            .query_row([seq_sql(seq)], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?))
            })
            .optional()?;
        let (stored_hash, account, delta) =
            moved.ok_or_else(|| stored(format!("voided record {seq} missing")))?;
        if stored_hash[..] != hash.as_bytes()[..] {
            return Err(stored(format!("voided record {seq} has another hash")));
        }
        let (Some(account), Some(delta)) = (account, delta) else {
            return Ok(None);
        };
        let reversed = Cents::new(delta)
            .checked_neg()
            .map_err(|_| stored("overflow"))?;
        Ok(Some((
            AccountId::parse(&account).map_err(stored)?,
            reversed,
        )))
    }

    /// Records that the back-office holds every record up to `seq`. Never moves backwards.
    pub fn acknowledge(&self, seq: Seq) -> Result<(), LedgerError> {
        self.transaction.execute(
            "UPDATE upload_state SET acknowledged_seq = MAX(COALESCE(acknowledged_seq, 0), ?1)",
            [seq_sql(seq)],
        )?;
        Ok(())
    }

    /// Replaces the whole snapshot (`snapshot.since` is none) or applies a delta. The caller has
    /// checked a full snapshot with [`Snapshot::check_complete`]; a delta is checked here, after
    /// it is merged, and an inconsistent result rolls the transaction back.
    pub fn apply_snapshot(
        &self,
        snapshot: &Snapshot,
        applied_at: proto::Timestamp,
    ) -> Result<(), SnapshotApplyError> {
        let tx = self.transaction;
        if snapshot.is_full() {
            tx.execute_batch(
                "DELETE FROM accounts; DELETE FROM pupils; DELETE FROM cards; DELETE FROM hotlist;
                 DELETE FROM tariffs; DELETE FROM services; DELETE FROM staff;",
            )?;
        } else {
            let current: Option<i64> = tx
                .query_row("SELECT version FROM snapshot_state", [], |row| row.get(0))
                .optional()?;
            let since = snapshot.since.map(|v| v.0);
            if current.map(i64::unsigned_abs) != since {
                return Err(SnapshotApplyError::WrongBase {
                    have: current.map(|v| SnapshotVersion(v.unsigned_abs())),
                    delta_since: snapshot.since,
                });
            }
            self.remove(snapshot)?;
        }
        self.upsert(snapshot)?;
        let settings = match &snapshot.settings {
            Some(settings) => serde_json::to_string(settings).map_err(stored)?,
            None => tx
                .query_row("SELECT settings FROM snapshot_state", [], |row| row.get(0))
                .optional()?
                .ok_or(SnapshotApplyError::MissingSettings)?,
        };
        tx.execute(
            "INSERT INTO snapshot_state (id, version, records_through, applied_at, site, settings)
             VALUES (1, ?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (id) DO UPDATE SET version = ?1, records_through = ?2, applied_at = ?3,
                 site = ?4, settings = ?5",
            params![
                i64::try_from(snapshot.version.0).map_err(|_| stored("snapshot version"))?,
                snapshot.records_through.map(seq_sql),
                applied_at.to_string(),
                snapshot.site.as_str(),
                settings
            ],
        )?;
        if !snapshot.is_full() {
            self.check_references()?;
        }
        self.changes.borrow_mut().snapshot(snapshot);
        Ok(())
    }

    /// Deletes the rows a delta removes.
    fn remove(&self, snapshot: &Snapshot) -> Result<(), LedgerError> {
        let removed = &snapshot.removed;
        self.delete_each("DELETE FROM accounts WHERE id = ?1", &removed.accounts)?;
        self.delete_each("DELETE FROM pupils WHERE id = ?1", &removed.pupils)?;
        self.delete_each("DELETE FROM cards WHERE uid = ?1", &removed.cards)?;
        self.delete_each("DELETE FROM hotlist WHERE uid = ?1", &removed.hotlist)?;
        self.delete_each("DELETE FROM staff WHERE id = ?1", &removed.staff)?;
        self.delete_each("DELETE FROM services WHERE id = ?1", &removed.services)
    }

    /// Runs `sql` once for each of `keys`, as text.
    fn delete_each(&self, sql: &str, keys: &[impl std::fmt::Display]) -> Result<(), LedgerError> {
        self.execute_each(sql, keys.iter().map(|key| Ok([key.to_string()])))
    }

    /// Writes every row `snapshot` carries, over the rows with the same key. Each row is taken
    /// apart whole, so a field added to the snapshot does not compile until it is written.
    fn upsert(&self, snapshot: &Snapshot) -> Result<(), LedgerError> {
        self.execute_each(
            "INSERT OR REPLACE INTO accounts (id, balance_cents, overdraft_floor_cents)
             VALUES (?1, ?2, ?3)",
            snapshot.accounts.iter().map(
                |AccountState {
                     id,
                     balance,
                     overdraft_floor,
                 }| Ok((id.as_str(), balance.get(), overdraft_floor.get())),
            ),
        )?;
        self.execute_each(
            "INSERT OR REPLACE INTO pupils (id, account, first_name, last_name, bracket, dietary)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            snapshot.pupils.iter().map(pupil_row),
        )?;
        self.execute_each(
            "INSERT OR REPLACE INTO cards (uid, pupil, staff) VALUES (?1, ?2, ?3)",
            snapshot.cards.iter().map(|Card { uid, holder }| {
                Ok(match holder {
                    CardHolder::Pupil(pupil) => (uid.to_string(), Some(pupil.as_str()), None),
                    CardHolder::Staff(staff) => (uid.to_string(), None, Some(staff.as_str())),
                })
            }),
        )?;
        self.execute_each(
            "INSERT OR IGNORE INTO hotlist (uid) VALUES (?1)",
            snapshot.hotlist.iter().map(|uid| Ok([uid.to_string()])),
        )?;
        self.execute_each(
            "INSERT OR REPLACE INTO tariffs (bracket, meal_type, price_cents) VALUES (?1, ?2, ?3)",
            snapshot.tariffs.iter().map(
                |Tariff {
                     bracket,
                     meal_type,
                     price,
                 }| Ok((bracket.as_str(), meal_type.as_str(), price.get())),
            ),
        )?;
        self.execute_each(
            "INSERT OR REPLACE INTO services (id, body) VALUES (?1, ?2)",
            snapshot.services.iter().map(|service| {
                Ok((
                    service.id.as_str(),
                    serde_json::to_string(service).map_err(stored)?,
                ))
            }),
        )?;
        self.execute_each(
            "INSERT OR REPLACE INTO staff (id, name, pin_hash) VALUES (?1, ?2, ?3)",
            snapshot
                .staff
                .iter()
                .map(|StaffCredential { id, name, pin_hash }| {
                    Ok((id.as_str(), name.as_str(), pin_hash.as_str()))
                }),
        )
    }

    /// Runs `sql`, prepared once, with each of `rows` as its parameters.
    fn execute_each<P: rusqlite::Params>(
        &self,
        sql: &str,
        rows: impl IntoIterator<Item = Result<P, LedgerError>>,
    ) -> Result<(), LedgerError> {
        let mut statement = self.transaction.prepare_cached(sql)?;
        for row in rows {
            statement.execute(row?)?;
        }
        Ok(())
    }

    /// After a delta: every reference resolves and every pupil has a price for every service.
    fn check_references(&self) -> Result<(), SnapshotApplyError> {
        let tx = self.transaction;
        let first = |sql: &str| -> Result<Option<String>, LedgerError> {
            Ok(tx.query_row(sql, [], |row| row.get(0)).optional()?)
        };
        if let Some(pupil) = first(
            "SELECT p.id FROM pupils p LEFT JOIN accounts a ON a.id = p.account WHERE a.id IS NULL LIMIT 1",
        )? {
            return Err(SnapshotApplyError::Inconsistent(format!(
                "pupil {pupil}: unknown account"
            )));
        }
        if let Some(pupil) = first(
            "SELECT p.id FROM pupils p, services s
             WHERE NOT EXISTS (SELECT 1 FROM tariffs t
                               WHERE t.bracket = p.bracket AND t.meal_type = json_extract(s.body, '$.meal_type'))
             LIMIT 1",
        )? {
            return Err(SnapshotApplyError::Inconsistent(format!("pupil {pupil}: no tariff for a service")));
        }
        if let Some(uid) = first(
            "SELECT c.uid FROM cards c
             WHERE (c.pupil IS NOT NULL AND NOT EXISTS (SELECT 1 FROM pupils p WHERE p.id = c.pupil))
                OR (c.staff IS NOT NULL AND NOT EXISTS (SELECT 1 FROM staff s WHERE s.id = c.staff))
             LIMIT 1",
        )? {
            return Err(SnapshotApplyError::Inconsistent(format!("card {uid}: unknown holder")));
        }
        if let Some(price) =
            first("SELECT CAST(price_cents AS TEXT) FROM tariffs WHERE price_cents < 0 LIMIT 1")?
        {
            return Err(SnapshotApplyError::Inconsistent(format!(
                "negative price {price}"
            )));
        }
        Ok(())
    }
}

/// A snapshot was refused; the ledger is unchanged.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotApplyError {
    #[error("snapshot refused: {0}")]
    Invalid(#[from] proto::snapshot::SnapshotError),
    #[error("delta applies to version {delta_since:?} but the kiosk has {have:?}")]
    WrongBase {
        have: Option<SnapshotVersion>,
        delta_since: Option<SnapshotVersion>,
    },
    #[error("a delta cannot be the first snapshot: it has no settings")]
    MissingSettings,
    #[error("snapshot refused: after the delta, {0}")]
    Inconsistent(String),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

impl From<rusqlite::Error> for SnapshotApplyError {
    fn from(error: rusqlite::Error) -> SnapshotApplyError {
        SnapshotApplyError::Ledger(error.into())
    }
}

fn configure(connection: &Connection) -> Result<(), LedgerError> {
    // Every pragma set explicitly: durability must not depend on a build's defaults.
    connection.busy_timeout(Duration::from_millis(LEDGER_BUSY_TIMEOUT_MS))?;
    let mode: String =
        connection.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(stored(format!("journal_mode is {mode}, WAL required")));
    }
    connection.pragma_update(None, "synchronous", "FULL")?;
    connection.pragma_update(None, "foreign_keys", true)?;
    // Keep the WAL from growing without bound between checkpoints.
    connection.pragma_update(None, "journal_size_limit", WAL_KEPT_BYTES_MAX)?;
    // A year of records is a few hundred MB: keep the hot index pages in memory and read the rest
    // through a memory map, so a tap's lookups cost no system calls as the ledger grows.
    connection.pragma_update(None, "cache_size", -LEDGER_CACHE_KIB)?;
    connection.pragma_update(None, "mmap_size", LEDGER_MMAP_BYTES_MAX)?;
    Ok(())
}

/// A pupil's row in the `pupils` table, its dietary flags as JSON.
fn pupil_row(pupil: &Pupil) -> Result<(&str, &str, &str, &str, &str, String), LedgerError> {
    let Pupil {
        id,
        account,
        first_name,
        last_name,
        bracket,
        dietary,
    } = pupil;
    Ok((
        id.as_str(),
        account.as_str(),
        first_name.as_str(),
        last_name.as_str(),
        bracket.as_str(),
        serde_json::to_string(dietary).map_err(stored)?,
    ))
}

/// Whether `service` is open at local `time` on `weekday`.
pub fn service_open(
    service: &Service,
    weekday: jiff::civil::Weekday,
    time: jiff::civil::Time,
) -> bool {
    use proto::snapshot::Weekday as W;
    let day = match weekday {
        jiff::civil::Weekday::Monday => W::Monday,
        jiff::civil::Weekday::Tuesday => W::Tuesday,
        jiff::civil::Weekday::Wednesday => W::Wednesday,
        jiff::civil::Weekday::Thursday => W::Thursday,
        jiff::civil::Weekday::Friday => W::Friday,
        jiff::civil::Weekday::Saturday => W::Saturday,
        jiff::civil::Weekday::Sunday => W::Sunday,
    };
    let minutes =
        |local: LocalTime| i32::from(local.time().hour()) * 60 + i32::from(local.time().minute());
    let now = i32::from(time.hour()) * 60 + i32::from(time.minute());
    service.weekdays.contains(&day) && minutes(service.start) <= now && now < minutes(service.end)
}
