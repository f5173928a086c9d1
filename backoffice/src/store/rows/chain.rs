//! Kiosks' records as stored: each kiosk's contiguous chain (`records`), records held beyond a
//! gap (`held_records`), the money each stored record moved (`movements`), refused records kept
//! as evidence (`anomalies`), the meals listed per site and day (`meals`, `meal_days`), the
//! balances they move, and the snapshot version every change of what kiosks see takes.

use std::collections::BTreeMap;
use std::future::Future;

use proto::record::{Meal, MealVia};
use proto::{
    AccountId, CardUid, Cents, ChainHead, DeviceId, Digest, PupilId, Record, Seq, ServiceDate,
    SignedRecord, SiteId, SnapshotVersion, StaffId, Timestamp,
};

use super::{
    corrupt, parse_account, parse_digest, parse_seq, parse_service_date, parse_timestamp,
    seq_column,
};
use crate::store::StoreError;
use crate::store::sql::{Dialect, Read, Row, Sql, Value, values};

/// Why a record was refused or did not move money; finance acts on each. Stored by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AnomalyReason {
    /// Same `seq` as a record already held, other content.
    Fork,
    /// Signature, encoding or payload did not verify.
    BadRecord,
    /// Signed by this kiosk's key but naming another device.
    WrongDevice,
    /// `prev` does not link to the record before it.
    BrokenLink,
    /// A meal or top-up for an account the back-office does not know.
    UnknownAccount,
    /// A void whose referenced record is not the one stored at that `seq`.
    VoidUnmatched,
    /// A second void of the same record.
    VoidRepeated,
    /// Applying the record would take a balance out of range.
    BalanceOverflow,
    /// Records are held beyond missing ones (computed from the held records, never stored).
    Gap,
}

impl AnomalyReason {
    pub const ALL: [AnomalyReason; 9] = [
        AnomalyReason::Fork,
        AnomalyReason::BadRecord,
        AnomalyReason::WrongDevice,
        AnomalyReason::BrokenLink,
        AnomalyReason::UnknownAccount,
        AnomalyReason::VoidUnmatched,
        AnomalyReason::VoidRepeated,
        AnomalyReason::BalanceOverflow,
        AnomalyReason::Gap,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AnomalyReason::Fork => "fork",
            AnomalyReason::BadRecord => "bad_record",
            AnomalyReason::WrongDevice => "wrong_device",
            AnomalyReason::BrokenLink => "broken_link",
            AnomalyReason::UnknownAccount => "unknown_account",
            AnomalyReason::VoidUnmatched => "void_unmatched",
            AnomalyReason::VoidRepeated => "void_repeated",
            AnomalyReason::BalanceOverflow => "balance_overflow",
            AnomalyReason::Gap => "gap",
        }
    }

    pub fn parse(text: &str) -> Option<AnomalyReason> {
        AnomalyReason::ALL
            .into_iter()
            .find(|reason| reason.as_str() == text)
    }
}

/// Something finance must look at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Anomaly {
    pub device: DeviceId,
    pub seq: Option<Seq>,
    pub reason: AnomalyReason,
    pub detail: String,
    /// The record concerned, kept as evidence; none for a gap.
    pub evidence: Option<SignedRecord>,
}

/// A refused record to keep, with why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewAnomaly {
    pub seq: Option<Seq>,
    pub reason: AnomalyReason,
    pub detail: String,
    pub record: SignedRecord,
}

/// A kiosk's records held beyond its first missing one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeldGap {
    pub device: DeviceId,
    pub first_held: Seq,
    pub last_stored: Option<Seq>,
}

/// A stored record with the back-office's receive time beside the kiosk's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredRecord {
    pub seq: Seq,
    pub record: SignedRecord,
    pub kiosk_at: Timestamp,
    pub received_at: Timestamp,
}

/// One balance movement of a stored record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Movement {
    pub account: AccountId,
    pub amount: Cents,
    /// The record that moved the money.
    pub seq: Seq,
    /// For a void, the record it reverses.
    pub reverses: Option<Seq>,
}

/// What a batch changes in a site's day: meals served (or voided, negative) and their revenue.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DayChange {
    pub meals: i64,
    pub revenue_cents: i64,
}

/// An account whose stored balance differs from the sum of its movements.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BalanceMismatch {
    pub account: AccountId,
    pub balance: Cents,
    pub movements_sum: Cents,
}

/// Sums of every balance movement (kiosks' records and back-office operations) by the
/// back-office's clock, around a period `[from, to)`, and the sum of all balances now.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LedgerTotals {
    pub balances_now: Cents,
    pub before: Cents,
    pub during: Cents,
    pub after: Cents,
}

/// Rows a change wrote that kiosks see: [`ChainRows::take_version`] stamps them with the
/// snapshot version the change takes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stamp {
    Accounts(Vec<AccountId>),
    Pupil(PupilId),
    Staff(StaffId),
    Cards(Vec<CardUid>),
    Tariff {
        site: SiteId,
        bracket: proto::BracketId,
        meal_type: proto::MealType,
    },
    Service {
        site: SiteId,
        id: proto::ServiceId,
    },
    Settings(SiteId),
}

pub trait ChainRows: Sql {
    /// Where the kiosk's stored, contiguous chain continues.
    fn chain_head(
        &mut self,
        device: &DeviceId,
    ) -> impl Future<Output = Result<ChainHead, StoreError>> + Send {
        async move {
            let last = self
                .query_optional(
                    "SELECT seq, hash FROM records WHERE device = $1 ORDER BY seq DESC LIMIT 1",
                    values![device.as_str()],
                    |row| Ok((parse_seq(row.int(0)?)?, parse_digest(&row.bytes(1)?)?)),
                )
                .await?;
            Ok(match last {
                None => ChainHead::GENESIS,
                Some((seq, prev)) => ChainHead {
                    next_seq: seq.next(),
                    prev,
                },
            })
        }
    }

    /// The kiosk's highest stored `seq`.
    fn records_through(
        &mut self,
        device: &DeviceId,
    ) -> impl Future<Output = Result<Option<Seq>, StoreError>> + Send {
        async move {
            let last = self
                .query_one(
                    "SELECT MAX(seq) FROM records WHERE device = $1",
                    values![device.as_str()],
                    |row| row.opt_int(0),
                )
                .await?;
            last.map(parse_seq).transpose()
        }
    }

    /// Records verified earlier but held beyond a gap, in `seq` order.
    fn held_records(
        &mut self,
        device: &DeviceId,
    ) -> impl Future<Output = Result<Vec<SignedRecord>, StoreError>> + Send {
        self.query(
            "SELECT payload, signature FROM held_records WHERE device = $1 ORDER BY seq",
            values![device.as_str()],
            read_signed,
        )
    }

    /// Replaces the kiosk's held records.
    fn replace_held_records(
        &mut self,
        device: &DeviceId,
        held: &[Record],
        received_at: Timestamp,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        async move {
            self.write(
                "DELETE FROM held_records WHERE device = $1",
                values![device.as_str()],
            )
            .await?;
            self.write_rows(
                "INSERT INTO held_records (device, seq, payload, signature, received_at)
                 VALUES ($1, $2, $3, $4, $5)",
                held,
                |record| {
                    values![
                        device.as_str(),
                        seq_column(record.seq()),
                        record.signed().payload.as_str(),
                        record.signed().signature.as_str(),
                        received_at.unix_ms()
                    ]
                },
            )
            .await
        }
    }

    /// The stored records at `seqs`, by `seq`.
    fn records_at(
        &mut self,
        device: &DeviceId,
        seqs: &[Seq],
    ) -> impl Future<Output = Result<BTreeMap<Seq, SignedRecord>, StoreError>> + Send {
        query_at_seqs(
            self,
            "SELECT seq, payload, signature FROM records
             WHERE device = $1 AND seq IN (SELECT value FROM json_each($2))",
            "SELECT seq, payload, signature FROM records WHERE device = $1 AND seq = ANY($2)",
            device,
            seqs,
            |row| {
                Ok((
                    parse_seq(row.int(0)?)?,
                    SignedRecord {
                        payload: row.text(1)?,
                        signature: row.text(2)?,
                    },
                ))
            },
        )
    }

    /// The stored hash of each record at `seqs`.
    fn record_hashes(
        &mut self,
        device: &DeviceId,
        seqs: &[Seq],
    ) -> impl Future<Output = Result<BTreeMap<Seq, Digest>, StoreError>> + Send {
        query_at_seqs(
            self,
            "SELECT seq, hash FROM records
             WHERE device = $1 AND seq IN (SELECT value FROM json_each($2))",
            "SELECT seq, hash FROM records WHERE device = $1 AND seq = ANY($2)",
            device,
            seqs,
            |row| Ok((parse_seq(row.int(0)?)?, parse_digest(&row.bytes(1)?)?)),
        )
    }

    /// Appends records to the kiosk's chain.
    fn insert_records(
        &mut self,
        device: &DeviceId,
        records: &[Record],
        received_at: Timestamp,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.write_batch(
            records,
            "INSERT INTO records
             (device, seq, hash, kind, payload, signature, kiosk_at, received_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            move |record| {
                values![
                    device.as_str(),
                    seq_column(record.seq()),
                    record.hash().as_bytes().as_slice(),
                    record.payload().body.kind().as_str(),
                    record.signed().payload.as_str(),
                    record.signed().signature.as_str(),
                    record.payload().at.unix_ms(),
                    received_at.unix_ms()
                ]
            },
            "INSERT INTO records
             (device, seq, hash, kind, payload, signature, kiosk_at, received_at)
             SELECT $1, u.seq, u.hash, u.kind, u.payload, u.signature, u.kiosk_at, $8
             FROM UNNEST($2::BIGINT[], $3::BYTEA[], $4::TEXT[], $5::TEXT[],
                         $6::TEXT[], $7::BIGINT[])
                  AS u (seq, hash, kind, payload, signature, kiosk_at)",
            move |records| {
                let texts = |text: fn(&Record) -> &str| {
                    Value::Texts(records.iter().map(|r| text(r).to_owned()).collect())
                };
                vec![
                    device.as_str().into(),
                    Value::Ints(records.iter().map(|r| seq_column(r.seq())).collect()),
                    Value::Blobs(
                        records
                            .iter()
                            .map(|r| r.hash().as_bytes().to_vec())
                            .collect(),
                    ),
                    texts(|r| r.payload().body.kind().as_str()),
                    texts(|r| r.signed().payload.as_str()),
                    texts(|r| r.signed().signature.as_str()),
                    Value::Ints(records.iter().map(|r| r.payload().at.unix_ms()).collect()),
                    received_at.unix_ms().into(),
                ]
            },
        )
    }

    /// Those of the kiosk's records at `seqs` whose meal finance credited back by approving a
    /// proposed void.
    fn approved_voids_of(
        &mut self,
        device: &DeviceId,
        seqs: &[Seq],
    ) -> impl Future<Output = Result<Vec<Seq>, StoreError>> + Send {
        query_at_seqs(
            self,
            "SELECT seq FROM proposed_voids WHERE device = $1 AND status = 'approved'
             AND seq IN (SELECT value FROM json_each($2)) ORDER BY seq",
            "SELECT seq FROM proposed_voids WHERE device = $1 AND status = 'approved'
             AND seq = ANY($2) ORDER BY seq",
            device,
            seqs,
            |row| parse_seq(row.int(0)?),
        )
    }

    /// The movements of the kiosk's records at `seqs`, and of the records that reversed them.
    fn movements_of(
        &mut self,
        device: &DeviceId,
        seqs: &[Seq],
    ) -> impl Future<Output = Result<Vec<Movement>, StoreError>> + Send {
        query_at_seqs(
            self,
            "SELECT seq, account, amount, reverses_seq FROM movements
             WHERE device = $1 AND (seq IN (SELECT value FROM json_each($2))
                                    OR reverses_seq IN (SELECT value FROM json_each($2)))
             ORDER BY id",
            "SELECT seq, account, amount, reverses_seq FROM movements
             WHERE device = $1 AND (seq = ANY($2) OR reverses_seq = ANY($2))
             ORDER BY id",
            device,
            seqs,
            |row| {
                Ok(Movement {
                    seq: parse_seq(row.int(0)?)?,
                    account: parse_account(&row.text(1)?)?,
                    amount: Cents::new(row.int(2)?),
                    reverses: row.opt_int(3)?.map(parse_seq).transpose()?,
                })
            },
        )
    }

    /// Writes the movements of the kiosk's records.
    fn insert_movements(
        &mut self,
        device: &DeviceId,
        movements: &[Movement],
        at: Timestamp,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.write_batch(
            movements,
            "INSERT INTO movements (account, amount, device, seq, reverses_seq, at)
             VALUES ($1, $2, $3, $4, $5, $6)",
            move |movement| {
                values![
                    movement.account.as_str(),
                    movement.amount.get(),
                    device.as_str(),
                    seq_column(movement.seq),
                    movement.reverses.map(seq_column),
                    at.unix_ms()
                ]
            },
            "INSERT INTO movements (account, amount, device, seq, reverses_seq, at)
             SELECT u.account, u.amount, $1, u.seq, u.reverses, $6
             FROM UNNEST($2::TEXT[], $3::BIGINT[], $4::BIGINT[], $5::BIGINT[])
                  AS u (account, amount, seq, reverses)",
            move |movements| {
                vec![
                    device.as_str().into(),
                    Value::Texts(movements.iter().map(|m| m.account.to_string()).collect()),
                    Value::Ints(movements.iter().map(|m| m.amount.get()).collect()),
                    Value::Ints(movements.iter().map(|m| seq_column(m.seq)).collect()),
                    Value::OptInts(
                        movements
                            .iter()
                            .map(|m| m.reverses.map(seq_column))
                            .collect(),
                    ),
                    at.unix_ms().into(),
                ]
            },
        )
    }

    /// The balances of the accounts that exist among `accounts`, held until the end of the
    /// transaction (in `id` order, so two writers lock them in the same order).
    fn lock_balances(
        &mut self,
        accounts: &[AccountId],
    ) -> impl Future<Output = Result<BTreeMap<AccountId, i64>, StoreError>> + Send {
        async move {
            if accounts.is_empty() {
                return Ok(BTreeMap::new());
            }
            let (sql, list) = match self.dialect() {
                Dialect::Sqlite => (
                    "SELECT id, balance FROM accounts
                     WHERE id IN (SELECT value FROM json_each($1)) ORDER BY id",
                    json_list(accounts.iter().map(|account| account.as_str())),
                ),
                Dialect::Postgres => (
                    "SELECT id, balance FROM accounts WHERE id = ANY($1) ORDER BY id
                     FOR NO KEY UPDATE",
                    Value::Texts(accounts.iter().map(ToString::to_string).collect()),
                ),
            };
            let rows = self
                .query(sql, vec![list], |row| {
                    Ok((parse_account(&row.text(0)?)?, row.int(1)?))
                })
                .await?;
            Ok(rows.into_iter().collect())
        }
    }

    /// Writes new balances (their version is stamped by [`ChainRows::take_version`]).
    fn set_balances(
        &mut self,
        balances: &BTreeMap<AccountId, i64>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        async move {
            let balances: Vec<(&AccountId, i64)> = balances
                .iter()
                .map(|(account, balance)| (account, *balance))
                .collect();
            self.write_batch(
                &balances,
                "UPDATE accounts SET balance = $1 WHERE id = $2",
                |(account, balance)| values![*balance, account.as_str()],
                "UPDATE accounts SET balance = u.balance
                 FROM UNNEST($1::TEXT[], $2::BIGINT[]) AS u (id, balance)
                 WHERE accounts.id = u.id",
                |balances| {
                    vec![
                        Value::Texts(balances.iter().map(|(id, _)| id.to_string()).collect()),
                        Value::Ints(balances.iter().map(|(_, balance)| *balance).collect()),
                    ]
                },
            )
            .await
        }
    }

    /// Keeps refused records as evidence; the same record refused again for the same reason is
    /// kept once.
    /// How many anomalies of `device` were kept since `since`.
    fn anomalies_since(
        &mut self,
        device: &DeviceId,
        since: Timestamp,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send {
        async move {
            let count = self
                .query_one(
                    "SELECT COUNT(*) FROM anomalies WHERE device = $1 AND received_at >= $2",
                    values![device.as_str(), since.unix_ms()],
                    |row| row.int(0),
                )
                .await?;
            Ok(u64::try_from(count).unwrap_or(0))
        }
    }

    fn insert_anomalies(
        &mut self,
        device: &DeviceId,
        anomalies: &[NewAnomaly],
        received_at: Timestamp,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        async move {
            self.write_rows(
                "INSERT INTO anomalies
                 (device, seq, reason, detail, payload, signature, evidence_hash, received_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING",
                anomalies,
                |anomaly| {
                    values![
                        device.as_str(),
                        anomaly.seq.map(seq_column),
                        anomaly.reason.as_str(),
                        anomaly.detail.as_str(),
                        anomaly.record.payload.as_str(),
                        anomaly.record.signature.as_str(),
                        evidence_hash(&anomaly.record).as_bytes().as_slice(),
                        received_at.unix_ms()
                    ]
                },
            )
            .await
        }
    }

    /// Refused records kept as evidence, in the order they came.
    fn anomaly_rows(&mut self) -> impl Future<Output = Result<Vec<Anomaly>, StoreError>> + Send {
        self.query(
            "SELECT device, seq, reason, detail, payload, signature FROM anomalies ORDER BY id",
            Vec::new(),
            |row| {
                let reason = row.text(2)?;
                Ok(Anomaly {
                    device: parse_device(&row.text(0)?)?,
                    seq: row.opt_int(1)?.map(parse_seq).transpose()?,
                    reason: AnomalyReason::parse(&reason)
                        .ok_or_else(|| corrupt("anomaly reason", &reason))?,
                    detail: row.text(3)?,
                    evidence: Some(SignedRecord {
                        payload: row.text(4)?,
                        signature: row.text(5)?,
                    }),
                })
            },
        )
    }

    /// Each kiosk holding records beyond a gap, by device.
    fn held_gaps(&mut self) -> impl Future<Output = Result<Vec<HeldGap>, StoreError>> + Send {
        self.query(
            "SELECT held_records.device, MIN(held_records.seq),
                    (SELECT MAX(seq) FROM records WHERE records.device = held_records.device)
             FROM held_records GROUP BY held_records.device ORDER BY held_records.device",
            Vec::new(),
            |row| {
                Ok(HeldGap {
                    device: parse_device(&row.text(0)?)?,
                    first_held: parse_seq(row.int(1)?)?,
                    last_stored: row.opt_int(2)?.map(parse_seq).transpose()?,
                })
            },
        )
    }

    /// Lists meals in their site's `meals`.
    fn insert_meals(
        &mut self,
        site: &SiteId,
        device: &DeviceId,
        meals: &[(&Record, &Meal)],
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.write_batch(
            meals,
            "INSERT INTO meals (site, service_date, kiosk_at, device, seq, service, meal_type,
                                account, pupil, via_card, via_staff, price)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
            move |(record, meal)| meal_row(site, device, record, meal),
            "INSERT INTO meals (site, service_date, kiosk_at, device, seq, service, meal_type,
                                account, pupil, via_card, via_staff, price)
             SELECT $1, u.service_date, u.kiosk_at, $2, u.seq, u.service, u.meal_type,
                    u.account, u.pupil, u.via_card, u.via_staff, u.price
             FROM UNNEST($3::TEXT[], $4::BIGINT[], $5::BIGINT[], $6::TEXT[],
                         $7::TEXT[], $8::TEXT[], $9::TEXT[], $10::TEXT[],
                         $11::TEXT[], $12::BIGINT[])
                  AS u (service_date, kiosk_at, seq, service, meal_type, account,
                        pupil, via_card, via_staff, price)",
            move |meals| meal_columns(site, device, meals),
        )
    }

    /// Adds to a site's meals and revenue per day.
    fn add_meal_days(
        &mut self,
        site: &SiteId,
        days: &BTreeMap<ServiceDate, DayChange>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        async move {
            self.write_rows(
                "INSERT INTO meal_days (site, service_date, meals, revenue) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (site, service_date) DO UPDATE SET
                    meals = meal_days.meals + excluded.meals,
                    revenue = meal_days.revenue + excluded.revenue",
                days,
                |(date, change)| {
                    values![
                        site.as_str(),
                        date.to_string(),
                        change.meals,
                        change.revenue_cents
                    ]
                },
            )
            .await
        }
    }

    /// The kiosk's stored chain from `from` to `to` (to the end when none), in `seq` order.
    fn record_range(
        &mut self,
        device: &DeviceId,
        from: Seq,
        to: Option<Seq>,
    ) -> impl Future<Output = Result<Vec<StoredRecord>, StoreError>> + Send {
        self.query(
            "SELECT seq, payload, signature, kiosk_at, received_at FROM records
             WHERE device = $1 AND seq >= $2 AND seq <= $3 ORDER BY seq",
            values![
                device.as_str(),
                seq_column(from),
                to.map_or(i64::MAX, seq_column)
            ],
            |row| {
                Ok(StoredRecord {
                    seq: parse_seq(row.int(0)?)?,
                    record: SignedRecord {
                        payload: row.text(1)?,
                        signature: row.text(2)?,
                    },
                    kiosk_at: parse_timestamp(row.int(3)?)?,
                    received_at: parse_timestamp(row.int(4)?)?,
                })
            },
        )
    }

    /// The `seq` and service date of each of the kiosk's stored day closes, in `seq` order.
    fn day_closes(
        &mut self,
        device: &DeviceId,
    ) -> impl Future<Output = Result<Vec<(Seq, ServiceDate)>, StoreError>> + Send {
        let sql = self.dialect().pick(
            "SELECT seq, json_extract(payload, '$.service_date') FROM records
             WHERE device = $1 AND kind = 'day_close' ORDER BY seq",
            "SELECT seq, payload::jsonb ->> 'service_date' FROM records
             WHERE device = $1 AND kind = 'day_close' ORDER BY seq",
        );
        self.query(sql, values![device.as_str()], |row| {
            let date = row
                .opt_text(1)?
                .ok_or_else(|| corrupt("day close", "no service_date"))?;
            Ok((parse_seq(row.int(0)?)?, parse_service_date(&date)?))
        })
    }

    /// Accounts whose balance is not the sum of their movements and operations.
    fn balance_mismatches(
        &mut self,
    ) -> impl Future<Output = Result<Vec<BalanceMismatch>, StoreError>> + Send {
        self.query(
            "SELECT id, balance, total FROM (
                SELECT id, balance,
                    CAST((SELECT COALESCE(SUM(amount), 0) FROM movements
                          WHERE movements.account = accounts.id)
                         + (SELECT COALESCE(SUM(amount), 0) FROM operations
                            WHERE operations.account = accounts.id) AS BIGINT) AS total
                FROM accounts) AS sums
             WHERE balance != total ORDER BY id",
            Vec::new(),
            |row| {
                Ok(BalanceMismatch {
                    account: parse_account(&row.text(0)?)?,
                    balance: Cents::new(row.int(1)?),
                    movements_sum: Cents::new(row.int(2)?),
                })
            },
        )
    }

    /// Sums of the ledger before, during and after `[from, to)`.
    fn ledger_totals(
        &mut self,
        from: Timestamp,
        to: Timestamp,
    ) -> impl Future<Output = Result<LedgerTotals, StoreError>> + Send {
        self.query_one(
            "SELECT
                CAST((SELECT COALESCE(SUM(balance), 0) FROM accounts) AS BIGINT),
                CAST(COALESCE(SUM(CASE WHEN at < $1 THEN amount END), 0) AS BIGINT),
                CAST(COALESCE(SUM(CASE WHEN at >= $1 AND at < $2 THEN amount END), 0) AS BIGINT),
                CAST(COALESCE(SUM(CASE WHEN at >= $2 THEN amount END), 0) AS BIGINT)
             FROM (SELECT amount, at FROM movements
                   UNION ALL SELECT amount, at FROM operations) AS money",
            values![from.unix_ms(), to.unix_ms()],
            |row| {
                Ok(LedgerTotals {
                    balances_now: Cents::new(row.int(0)?),
                    before: Cents::new(row.int(1)?),
                    during: Cents::new(row.int(2)?),
                    after: Cents::new(row.int(3)?),
                })
            },
        )
    }

    /// The snapshot version of what is committed, without taking a new one.
    fn current_version(
        &mut self,
    ) -> impl Future<Output = Result<SnapshotVersion, StoreError>> + Send {
        async move {
            let version = self
                .query_one(
                    "SELECT version FROM snapshot_version WHERE id = 1",
                    Vec::new(),
                    |row| row.int(0),
                )
                .await?;
            snapshot_version(version)
        }
    }

    /// Takes the next snapshot version and stamps it on the rows `stamps` name: the last
    /// statement of every transaction that changes what kiosks see, right before COMMIT.
    ///
    /// The counter's row lock orders the writers, so versions become visible in the order they
    /// were taken: a snapshot that reads version V sees every change stamped V or lower, and a
    /// change that commits later is stamped higher, so no delta misses it. Taken last, the lock
    /// is held only for this and the commit, not for a whole ingest; the rows stamped are rows
    /// this transaction already wrote (so already holds): a transaction holding the counter
    /// never waits for another lock. On PostgreSQL this is one statement; SQLite's writers take
    /// turns anyway.
    fn take_version(
        &mut self,
        stamps: &[Stamp],
    ) -> impl Future<Output = Result<SnapshotVersion, StoreError>> + Send {
        async move {
            const NEXT: &str =
                "UPDATE snapshot_version SET version = version + 1 WHERE id = 1 RETURNING version";
            match self.dialect() {
                Dialect::Postgres => {
                    let mut sql = format!("WITH next AS ({NEXT})");
                    let mut parameters = Vec::new();
                    for (index, stamp) in stamps.iter().enumerate() {
                        let version = "(SELECT version FROM next)";
                        let (update, values) =
                            stamp_statement(stamp, version, parameters.len(), Dialect::Postgres);
                        sql.push_str(&format!(", stamp_{index} AS ({update})"));
                        parameters.extend(values);
                    }
                    sql.push_str(" SELECT version FROM next");
                    let version = self.query_one(&sql, parameters, |row| row.int(0)).await?;
                    snapshot_version(version)
                }
                Dialect::Sqlite => {
                    let version = self.query_one(NEXT, Vec::new(), |row| row.int(0)).await?;
                    for stamp in stamps {
                        let (update, keys) = stamp_statement(stamp, "$1", 1, Dialect::Sqlite);
                        let each = match stamp {
                            // One row a statement: `keys` holds one key per row.
                            Stamp::Accounts(_) | Stamp::Cards(_) => keys
                                .into_iter()
                                .map(|key| vec![Value::Int(version), key])
                                .collect(),
                            _ => vec![std::iter::once(Value::Int(version)).chain(keys).collect()],
                        };
                        self.execute_each(&update, each).await?;
                    }
                    snapshot_version(version)
                }
            }
        }
    }
}

impl<T: Sql> ChainRows for T {}

/// One stamp's `UPDATE`, setting `version` to `version` (SQL), its own parameters numbered from
/// `first + 1`. On SQLite, accounts and cards are stamped one row per statement (`$2` the key);
/// on PostgreSQL, all at once (`= ANY`).
fn stamp_statement(
    stamp: &Stamp,
    version: &str,
    first: usize,
    dialect: Dialect,
) -> (String, Vec<Value>) {
    let p = |offset: usize| format!("${}", first + offset);
    let set = |table: &str, condition: String| {
        format!("UPDATE {table} SET version = {version} WHERE {condition}")
    };
    match (stamp, dialect) {
        (Stamp::Accounts(ids), Dialect::Postgres) => (
            set("accounts", format!("id = ANY({})", p(1))),
            vec![Value::Texts(ids.iter().map(ToString::to_string).collect())],
        ),
        (Stamp::Accounts(ids), Dialect::Sqlite) => (
            set("accounts", format!("id = {}", p(1))),
            ids.iter().map(|id| Value::from(id.as_str())).collect(),
        ),
        (Stamp::Cards(uids), Dialect::Postgres) => (
            set("cards", format!("uid = ANY({})", p(1))),
            vec![Value::Blobs(
                uids.iter().map(|uid| uid.as_bytes().to_vec()).collect(),
            )],
        ),
        (Stamp::Cards(uids), Dialect::Sqlite) => (
            set("cards", format!("uid = {}", p(1))),
            uids.iter().map(|uid| Value::from(uid.as_bytes())).collect(),
        ),
        (Stamp::Pupil(id), _) => (
            set("pupils", format!("id = {}", p(1))),
            values![id.as_str()],
        ),
        (Stamp::Staff(id), _) => (set("staff", format!("id = {}", p(1))), values![id.as_str()]),
        (
            Stamp::Tariff {
                site,
                bracket,
                meal_type,
            },
            _,
        ) => (
            set(
                "tariffs",
                format!(
                    "site = {} AND bracket = {} AND meal_type = {}",
                    p(1),
                    p(2),
                    p(3)
                ),
            ),
            values![site.as_str(), bracket.as_str(), meal_type.as_str()],
        ),
        (Stamp::Service { site, id }, _) => (
            set("services", format!("site = {} AND id = {}", p(1), p(2))),
            values![site.as_str(), id.as_str()],
        ),
        (Stamp::Settings(site), _) => (
            set("kiosk_settings", format!("site = {}", p(1))),
            values![site.as_str()],
        ),
    }
}

/// The parameters of a meal's `meals` row.
fn meal_row(site: &SiteId, device: &DeviceId, record: &Record, meal: &Meal) -> Vec<Value> {
    let (via_card, via_staff) = via_columns(&meal.via);
    values![
        site.as_str(),
        meal.service_date.to_string(),
        record.payload().at.unix_ms(),
        device.as_str(),
        seq_column(record.seq()),
        meal.service.as_str(),
        meal.meal_type.as_str(),
        meal.account.as_str(),
        meal.pupil.as_str(),
        via_card,
        via_staff,
        meal.price.get()
    ]
}

/// The parameters of every meal at once, one array per column, for `UNNEST`.
fn meal_columns(site: &SiteId, device: &DeviceId, meals: &[(&Record, &Meal)]) -> Vec<Value> {
    let texts_of = |value: fn(&Record, &Meal) -> String| {
        Value::Texts(meals.iter().map(|(r, m)| value(r, m)).collect())
    };
    vec![
        site.as_str().into(),
        device.as_str().into(),
        texts_of(|_, meal| meal.service_date.to_string()),
        Value::Ints(
            meals
                .iter()
                .map(|(r, _)| r.payload().at.unix_ms())
                .collect(),
        ),
        Value::Ints(meals.iter().map(|(r, _)| seq_column(r.seq())).collect()),
        texts_of(|_, meal| meal.service.to_string()),
        texts_of(|_, meal| meal.meal_type.to_string()),
        texts_of(|_, meal| meal.account.to_string()),
        texts_of(|_, meal| meal.pupil.to_string()),
        Value::OptTexts(meals.iter().map(|(_, m)| via_columns(&m.via).0).collect()),
        Value::OptTexts(meals.iter().map(|(_, m)| via_columns(&m.via).1).collect()),
        Value::Ints(meals.iter().map(|(_, m)| m.price.get()).collect()),
    ]
}

fn snapshot_version(version: i64) -> Result<SnapshotVersion, StoreError> {
    u64::try_from(version)
        .map(SnapshotVersion)
        .map_err(|error| corrupt("snapshot version", error))
}

fn read_signed(row: &dyn Row) -> Result<SignedRecord, StoreError> {
    Ok(SignedRecord {
        payload: row.text(0)?,
        signature: row.text(1)?,
    })
}

fn parse_device(text: &str) -> Result<DeviceId, StoreError> {
    DeviceId::parse(text).map_err(|error| corrupt("device", error))
}

/// The rows of a query about the kiosk's records at `seqs`, written `sqlite` and `postgres`
/// with `$1` the device and `$2` the list of `seq`s ([`seq_list`]). No `seqs`, no query.
async fn query_at_seqs<S: Sql + ?Sized, T: Send + 'static, C: FromIterator<T>>(
    sql: &mut S,
    sqlite: &str,
    postgres: &str,
    device: &DeviceId,
    seqs: &[Seq],
    read: Read<T>,
) -> Result<C, StoreError> {
    if seqs.is_empty() {
        return Ok(C::from_iter([]));
    }
    let dialect = sql.dialect();
    let parameters = vec![device.as_str().into(), seq_list(dialect, seqs)];
    let rows = sql
        .query(dialect.pick(sqlite, postgres), parameters, read)
        .await?;
    Ok(rows.into_iter().collect())
}

/// A list of `seq`s as a parameter: a JSON array for SQLite's `json_each`, an array for
/// PostgreSQL's `ANY`.
fn seq_list(dialect: Dialect, seqs: &[Seq]) -> Value {
    match dialect {
        Dialect::Sqlite => json_list(seqs.iter().map(|seq| seq.get())),
        Dialect::Postgres => Value::Ints(seqs.iter().map(|seq| seq_column(*seq)).collect()),
    }
}

/// A JSON array of `items`, as SQLite's `json_each` reads a list.
fn json_list<T: serde::Serialize>(items: impl Iterator<Item = T>) -> Value {
    Value::Text(serde_json::to_string(&items.collect::<Vec<T>>()).unwrap_or_default())
}

/// The meal's card or staff column.
pub(crate) fn via_columns(via: &MealVia) -> (Option<String>, Option<String>) {
    match via {
        MealVia::Card(uid) => (Some(uid.to_string()), None),
        MealVia::Staff(staff) => (None, Some(staff.to_string())),
    }
}

/// Identifies a piece of evidence, so the same refused record uploaded again is kept once.
fn evidence_hash(record: &SignedRecord) -> Digest {
    let mut bytes = Vec::with_capacity(record.payload.len() + record.signature.len() + 1);
    bytes.extend_from_slice(record.payload.as_bytes());
    bytes.push(b'\n');
    bytes.extend_from_slice(record.signature.as_bytes());
    Digest::of(&bytes)
}
