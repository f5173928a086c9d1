//! A service day of kiosks for the reconciliation and export tests: chains written at chosen
//! times, day closes computed from them, and raw access to each backend's database to tamper
//! with stored rows as an attacker with database access would.

use crate::ops::Ops as _;
use std::collections::BTreeMap;

use backoffice::store::{PostgresStore, SqliteStore, Store};
use proto::record::{
    CloseCategory, CloseLine, DayClose, GrandTotals, Meal, MealVia, TopUp, TopUpMethod,
};
use proto::{
    BracketId, CardUid, Cents, ChainHead, MealType, PupilId, Record, RecordBody, ServiceDate,
    ServiceId, SigningKey, StaffId, Timestamp,
};

use crate::fixtures::{account, device, key, register, void_because};

/// The day every test reconciles: a Monday, with lunch at `jaures`.
pub const DATE: &str = "2026-11-30";

pub fn date() -> ServiceDate {
    ServiceDate::parse(DATE).unwrap()
}

/// `minutes` after 11:45 UTC on [`DATE`] (12:45 in Paris).
pub fn lunch(minutes: i64) -> Timestamp {
    Timestamp::from_unix_ms(
        Timestamp::parse("2026-11-30T11:45:00.000Z")
            .unwrap()
            .unix_ms()
            + minutes * 60_000,
    )
    .unwrap()
}

/// The night after [`DATE`], 02:00 in Paris: when the nightly run reconciles it.
pub fn night_after() -> Timestamp {
    Timestamp::parse("2026-12-01T01:00:00.000Z").unwrap()
}

pub fn settings() -> backoffice::reconcile::Settings {
    backoffice::reconcile::Settings::new("Europe/Paris").unwrap()
}

pub fn meal_for(pupil: &str, account_name: &str, price: i64, balance_after: i64) -> RecordBody {
    RecordBody::Meal(Meal {
        service: ServiceId::parse("lunch").unwrap(),
        service_date: date(),
        meal_type: MealType::parse("lunch").unwrap(),
        account: account(account_name),
        pupil: PupilId::parse(pupil).unwrap(),
        bracket: BracketId::parse("q3").unwrap(),
        price: Cents::new(price),
        balance_after: Cents::new(balance_after),
        via: MealVia::Card(CardUid::parse(&[1, 1, 1, 1]).unwrap()),
    })
}

pub fn cash(account_name: &str, amount: i64) -> RecordBody {
    RecordBody::TopUp(TopUp {
        account: account(account_name),
        amount: Cents::new(amount),
        method: TopUpMethod::Cash,
        staff: StaffId::parse("staff-martin").unwrap(),
        reference: None,
    })
}

pub fn void_of(record: &Record) -> RecordBody {
    void_because(record, "wrong pupil")
}

/// What a day close adds up separately: a category, and a meal's type and bracket.
type LineKey = (CloseCategory, Option<MealType>, Option<BracketId>);

/// The line of a day close that `meal` counts in under `category`.
fn meal_line(category: CloseCategory, meal: &Meal) -> LineKey {
    (
        category,
        Some(meal.meal_type.clone()),
        Some(meal.bracket.clone()),
    )
}

/// Pupil P1 charged twice for lunch on [`DATE`]: at `kiosk-1` and at `kiosk-2` (keys of
/// `seeds`), both registered, each closing its day, both uploaded.
pub async fn charged_twice(store: &impl Store, seeds: [u8; 2]) -> (Till, Till) {
    let mut k1 = Till::registered(store, "kiosk-1", seeds[0]).await;
    let mut k2 = Till::registered(store, "kiosk-2", seeds[1]).await;
    k1.write(lunch(0), meal_for("P1", "A1", 385, 0));
    k1.close(lunch(100), date(), 0);
    k2.write(lunch(3), meal_for("P1", "A1", 385, 0));
    k2.close(lunch(101), date(), 0);
    k1.upload(store, lunch(180)).await;
    k2.upload(store, lunch(180)).await;
    (k1, k2)
}

/// Pupils P1 (account A1) and P3 (account A2) each served lunch on [`DATE`] at `kiosk-1` and
/// again at `kiosk-2` (keys of seeds 1 and 2), both registered, each closing its day, both
/// uploaded: kiosk-2's two meals are the duplicates.
pub async fn two_duplicate_meals(store: &impl Store) -> (Till, Till) {
    let mut k1 = Till::registered(store, "kiosk-1", 1).await;
    let mut k2 = Till::registered(store, "kiosk-2", 2).await;
    k1.write(lunch(0), meal_for("P1", "A1", 385, 0));
    k1.write(lunch(1), meal_for("P3", "A2", 100, 0));
    k1.close(lunch(100), date(), 0);
    k2.write(lunch(3), meal_for("P1", "A1", 385, 0));
    k2.write(lunch(4), meal_for("P3", "A2", 100, 0));
    k2.close(lunch(101), date(), 0);
    k1.upload(store, lunch(180)).await;
    k2.upload(store, lunch(180)).await;
    (k1, k2)
}

/// A kiosk of `jaures` writing its chain at chosen times.
#[derive(Debug)]
pub struct Till {
    pub device: backoffice::store::Device,
    pub key: SigningKey,
    pub head: ChainHead,
    pub written: Vec<Record>,
    /// The `seq` of the last day close written.
    pub last_close: Option<usize>,
}

impl Till {
    pub fn new(name: &str, seed: u8) -> Till {
        Till {
            device: device(name, seed),
            key: key(seed),
            head: ChainHead::GENESIS,
            written: Vec::new(),
            last_close: None,
        }
    }

    /// A new till whose device `store` registered (see [`register`]).
    pub async fn registered(store: &impl Store, name: &str, seed: u8) -> Till {
        let till = Till::new(name, seed);
        register(store, &till.device).await;
        till
    }

    pub fn write(&mut self, at: Timestamp, body: RecordBody) -> Record {
        let record = self
            .head
            .append(&self.key, &self.device.id, at, body)
            .unwrap();
        self.written.push(record.clone());
        record
    }

    /// The day close of every record since the previous one, as the kiosk computes it (written
    /// here again, apart from `proto::rules`, so that the tests check that code against it).
    pub fn close_body(&self, date: ServiceDate, cash_counted: i64) -> DayClose {
        let from = self.last_close.map_or(0, |index| index + 1);
        let previous = self.last_close.map(|index| &self.written[index]);
        let mut grand_totals = match previous.map(|record| &record.payload().body) {
            Some(RecordBody::DayClose(close)) => close.grand_totals.clone(),
            _ => GrandTotals::default(),
        };
        let (lines, cash_expected) = self.close_lines(from);
        add_lines(&mut grand_totals, &lines);
        DayClose {
            service_date: date,
            staff: StaffId::parse("staff-martin").unwrap(),
            previous_close: previous.map(Record::seq),
            lines: lines
                .into_iter()
                .map(
                    |((category, meal_type, bracket), (count, total))| CloseLine {
                        category,
                        meal_type,
                        bracket,
                        count,
                        total: Cents::new(total),
                    },
                )
                .collect(),
            cash_expected: Cents::new(cash_expected),
            cash_counted: Cents::new(cash_counted),
            cash_difference: Cents::new(cash_counted - cash_expected),
            grand_totals,
        }
    }

    /// The close's lines (count and total of each) of the records from index `from`, and the
    /// cash they expect in the drawer.
    fn close_lines(&self, from: usize) -> (BTreeMap<LineKey, (u32, i64)>, i64) {
        let mut lines: BTreeMap<LineKey, (u32, i64)> = BTreeMap::new();
        let mut cash_expected = 0;
        for record in &self.written[from..] {
            let (key, amount, cash) = match &record.payload().body {
                RecordBody::Meal(meal) => {
                    let category = match meal.via {
                        MealVia::Card(_) => CloseCategory::MealByCard,
                        MealVia::Staff(_) => CloseCategory::MealByStaff,
                    };
                    (meal_line(category, meal), meal.price.get(), 0)
                }
                RecordBody::TopUp(top_up) => (
                    (CloseCategory::TopUpCash, None, None),
                    top_up.amount.get(),
                    top_up.amount.get(),
                ),
                RecordBody::Void(void) => {
                    let voided = &self.written[usize::try_from(void.voided_seq.get()).unwrap() - 1];
                    match &voided.payload().body {
                        RecordBody::Meal(meal) => (
                            meal_line(CloseCategory::VoidedMeal, meal),
                            meal.price.get(),
                            0,
                        ),
                        RecordBody::TopUp(top_up) => (
                            (CloseCategory::VoidedTopUp, None, None),
                            top_up.amount.get(),
                            -top_up.amount.get(),
                        ),
                        _ => continue,
                    }
                }
                _ => continue,
            };
            let line = lines.entry(key).or_insert((0, 0));
            line.0 += 1;
            line.1 += amount;
            cash_expected += cash;
        }
        (lines, cash_expected)
    }

    /// Writes the day close of `date` with `cash_counted`.
    pub fn close(&mut self, at: Timestamp, date: ServiceDate, cash_counted: i64) -> Record {
        let body = self.close_body(date, cash_counted);
        let record = self.write(at, RecordBody::DayClose(body));
        self.last_close = Some(self.written.len() - 1);
        record
    }

    /// Uploads everything written, received at `received_at`.
    pub async fn upload(&self, store: &impl Store, received_at: Timestamp) {
        let batch = self
            .written
            .iter()
            .map(|record| record.signed().clone())
            .collect();
        store
            .ingest(&self.device, batch, received_at)
            .await
            .unwrap();
    }
}

/// Adds a close's lines to the running grand totals.
fn add_lines(grand_totals: &mut GrandTotals, lines: &BTreeMap<LineKey, (u32, i64)>) {
    for ((category, _, _), (count, total)) in lines {
        match category {
            CloseCategory::MealByCard | CloseCategory::MealByStaff => {
                grand_totals.meal_count += u64::from(*count);
                grand_totals.meals = Cents::new(grand_totals.meals.get() + total);
            }
            CloseCategory::TopUpCash | CloseCategory::TopUpCheque => {
                grand_totals.top_ups = Cents::new(grand_totals.top_ups.get() + total);
            }
            CloseCategory::VoidedMeal | CloseCategory::VoidedTopUp => {
                grand_totals.voided = Cents::new(grand_totals.voided.get() + total);
            }
        }
    }
}

/// A fresh database of either backend, with raw SQL access beside the store.
#[derive(Debug)]
pub enum Db {
    Sqlite(crate::SqliteDb),
    Postgres(crate::PostgresDb),
}

impl Db {
    pub fn url(&self) -> String {
        match self {
            Db::Sqlite(db) => db.url(),
            Db::Postgres(db) => db.url(),
        }
    }

    /// Runs SQL straight on the database, bypassing the store.
    pub async fn tamper(&self, sql: &str) {
        self.try_tamper(sql).await.unwrap();
    }

    /// Runs SQL straight on the database, bypassing the store; the database's refusal, if any.
    pub async fn try_tamper(&self, sql: &str) -> Result<(), String> {
        match self {
            Db::Sqlite(db) => {
                let connection = rusqlite::Connection::open(db.path()).unwrap();
                connection
                    .execute_batch(sql)
                    .map_err(|error| error.to_string())
            }
            Db::Postgres(db) => {
                let (client, connection) =
                    tokio_postgres::connect(&db.url(), tokio_postgres::NoTls)
                        .await
                        .unwrap();
                let task = tokio::spawn(connection);
                let result = client
                    .batch_execute(sql)
                    .await
                    .map_err(|error| format!("{error:?}"));
                drop(client);
                task.await.unwrap().unwrap();
                result
            }
        }
    }
}

impl Db {
    pub async fn sqlite() -> (Db, SqliteStore) {
        let db = crate::SqliteDb::new();
        let store = db.open().await;
        (Db::Sqlite(db), store)
    }

    pub async fn postgres() -> (Db, PostgresStore) {
        let db = crate::PostgresDb::new().await;
        let store = db.open().await;
        (Db::Postgres(db), store)
    }
}

/// A SQL string literal.
pub fn quoted(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}
