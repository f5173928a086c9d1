//! The tap engine: turns a card event or a staff action into a decision and, when something
//! happened, into signed records committed to the ledger before the decision is returned.
//!
//! The engine decides; the ledger persists; the UI only shows what the engine returns.

use std::collections::HashMap;

use argon2::password_hash::{PasswordHash, PasswordVerifier};
use jiff::tz::TimeZone;
use proto::record::{
    ClockChange, DayClose, KioskStart, Meal, MealVia, OfflineEnd, OfflineStart, RefusalReason,
    SnapshotApplied, StaffLockout, StaffSignIn, StaffSignOut, TapRefused, TopUp, TopUpMethod, Void,
};
use proto::snapshot::{Service, Snapshot};
use proto::{
    AccountId, CardUid, Cents, ChainHead, DeviceId, PupilId, Record, RecordBody, RecordError, Seq,
    SigningKey, StaffId, Text,
};

use crate::clock::{Clock, local_date, record_time};
use crate::day_close::{self, CloseError};
use crate::ledger::{
    CardLookup, Checkpointer, DayCounts, Ledger, LedgerCounts, LedgerError, LedgerWrite,
    PupilEntry, SnapshotApplyError, SnapshotState, service_open,
};
use crate::limits::{
    CHECKPOINT_EVERY_COMMITS, CLOCK_BACKWARDS_TOLERANCE_MS, PUPIL_SEARCH_RESULTS_MAX,
    STAFF_LOCKOUT_MS, STAFF_PIN_ATTEMPTS_MAX,
};

/// What the kiosk answers to a tap.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Charged and recorded.
    Served(Served),
    /// Already had this service's meal: nothing charged.
    AlreadyServed {
        first_name: Text,
    },
    /// The meal would take the account below its overdraft floor: nothing charged.
    InsufficientFunds {
        first_name: Text,
    },
    UnknownCard,
    /// On the hotlist (lost or stolen).
    BlockedCard,
    NoServiceNow,
    /// A staff card: the UI asks for the PIN, then calls [`Engine::staff_sign_in`] with `card`.
    StaffCard {
        card: CardUid,
        staff: StaffId,
        name: Text,
    },
    /// The kiosk cannot record anything (ledger not writable, no snapshot yet).
    OutOfService {
        reason: String,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Served {
    pub seq: Seq,
    pub pupil: PupilId,
    pub first_name: Text,
    pub price: Cents,
    pub balance_after: Cents,
    /// Dietary flags, for a discreet staff alert.
    pub dietary: Vec<Text>,
}

/// A staff action was refused; nothing was recorded.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("no member of staff is signed in")]
    NotSignedIn,
    #[error("this card is not a staff card")]
    NotStaffCard,
    #[error("wrong PIN, {remaining} attempts left")]
    WrongPin { remaining: u32 },
    #[error("card locked after too many wrong PINs; try again later")]
    LockedOut,
    #[error("amount {amount} outside 0,01 € to {max}")]
    Amount { amount: String, max: String },
    #[error("unknown account {0}")]
    UnknownAccount(AccountId),
    #[error("unknown pupil {0}")]
    UnknownPupil(PupilId),
    #[error("no service is open now")]
    NoServiceNow,
    #[error("already served this service")]
    AlreadyServed,
    #[error("the meal would take the account below its overdraft floor")]
    InsufficientFunds,
    #[error("no record {0}")]
    NoSuchRecord(Seq),
    #[error("record {seq} cannot be voided: {why}")]
    NotVoidable { seq: Seq, why: &'static str },
    #[error("no snapshot yet: the kiosk has not synced")]
    NoSnapshot,
    #[error(transparent)]
    Snapshot(#[from] SnapshotApplyError),
    #[error(transparent)]
    Close(#[from] CloseError),
    #[error(transparent)]
    Record(#[from] RecordError),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

/// What `kiosk status` and the staff status page show.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    pub device: DeviceId,
    pub counts: LedgerCounts,
    pub snapshot_version: Option<proto::SnapshotVersion>,
    pub snapshot_applied_at: Option<proto::Timestamp>,
    pub today: DayCounts,
    pub staff_signed_in: Option<StaffId>,
}

#[derive(Clone, Debug)]
struct StaffSession {
    staff: StaffId,
    last_activity: jiff::Timestamp,
}

#[derive(Clone, Copy, Debug, Default)]
struct PinFailures {
    count: u32,
    locked_until: Option<jiff::Timestamp>,
}

/// The kiosk's decision maker. One per kiosk, driven from one thread.
pub struct Engine {
    ledger: Ledger,
    key: SigningKey,
    device: DeviceId,
    /// The next link; advanced only after a commit succeeded.
    head: ChainHead,
    clock: Box<dyn Clock>,
    time_zone: TimeZone,
    snapshot: Option<SnapshotState>,
    last_record_at: Option<proto::Timestamp>,
    session: Option<StaffSession>,
    /// Wrong-PIN counts per staff card, kept in memory: a restart is itself recorded.
    pin_failures: HashMap<CardUid, PinFailures>,
    checkpointer: Checkpointer,
    commits_since_checkpoint: u32,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("device", &self.device)
            .field("head", &self.head)
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// Opens the engine on `ledger` and records the kiosk's start.
    pub fn start(
        ledger: Ledger,
        key: SigningKey,
        device: DeviceId,
        clock: Box<dyn Clock>,
        time_zone: TimeZone,
        software_version: &str,
    ) -> Result<Engine, EngineError> {
        let head = ledger.head()?;
        let snapshot = ledger.snapshot_state()?;
        let checkpointer = ledger.start_checkpointer()?;
        ledger.load_lookups();
        let last_record_at = ledger.last_record_at()?;
        let mut engine = Engine {
            ledger,
            key,
            device,
            head,
            clock,
            time_zone,
            snapshot,
            last_record_at,
            session: None,
            pin_failures: HashMap::new(),
            checkpointer,
            commits_since_checkpoint: 0,
        };
        let software_version =
            Text::parse(software_version).map_err(|error| RecordError::Malformed {
                reason: error.to_string(),
            })?;
        engine.write(vec![RecordBody::KioskStart(KioskStart {
            software_version,
        })])?;
        Ok(engine)
    }

    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    pub fn device(&self) -> &DeviceId {
        &self.device
    }

    pub fn head(&self) -> ChainHead {
        self.head
    }

    /// Background WAL checkpoints that caught up with every write so far.
    pub fn checkpoints_completed(&self) -> u64 {
        self.checkpointer.completed()
    }

    /// The pupil-facing decision for a card.
    pub fn tap(&mut self, uid: CardUid) -> Decision {
        match self.try_tap(uid) {
            Ok(decision) => decision,
            Err(error) => Decision::OutOfService {
                reason: error.to_string(),
            },
        }
    }

    fn try_tap(&mut self, uid: CardUid) -> Result<Decision, EngineError> {
        let now = self.clock.now();
        let Some(snapshot) = &self.snapshot else {
            return Ok(Decision::OutOfService {
                reason: EngineError::NoSnapshot.to_string(),
            });
        };
        let pupil_id = match self.ledger.card(&uid)? {
            CardLookup::Pupil(pupil) => pupil,
            CardLookup::Staff(staff) => {
                let name = self
                    .ledger
                    .staff(&staff)?
                    .map(|credential| credential.name)
                    .ok_or(EngineError::NotStaffCard)?;
                return Ok(Decision::StaffCard {
                    card: uid,
                    staff,
                    name,
                });
            }
            CardLookup::Blocked => {
                self.refuse(uid, RefusalReason::BlockedCard, None)?;
                return Ok(Decision::BlockedCard);
            }
            CardLookup::Unknown => {
                self.refuse(uid, RefusalReason::UnknownCard, None)?;
                return Ok(Decision::UnknownCard);
            }
        };
        let Some(service) = open_service(&snapshot.services, now, &self.time_zone) else {
            return Ok(Decision::NoServiceNow);
        };
        let Some(pupil) = self.ledger.pupil(&pupil_id)? else {
            self.refuse(uid, RefusalReason::UnknownCard, Some(&service))?;
            return Ok(Decision::UnknownCard);
        };
        match self.charge(&pupil, &service, now, MealVia::Card(uid))? {
            Charge::Served(served) => Ok(Decision::Served(served)),
            Charge::AlreadyServed => Ok(Decision::AlreadyServed {
                first_name: pupil.first_name,
            }),
            Charge::InsufficientFunds => {
                self.refuse(uid, RefusalReason::InsufficientFunds, Some(&service))?;
                Ok(Decision::InsufficientFunds {
                    first_name: pupil.first_name,
                })
            }
        }
    }

    fn charge(
        &mut self,
        pupil: &PupilEntry,
        service: &Service,
        now: jiff::Timestamp,
        via: MealVia,
    ) -> Result<Charge, EngineError> {
        let service_date = local_date(now, &self.time_zone);
        if self.ledger.served(&pupil.id, &service.id, service_date)? {
            return Ok(Charge::AlreadyServed);
        }
        let price = self
            .ledger
            .price(&pupil.bracket, &service.meal_type)?
            .ok_or_else(|| {
                LedgerError::Stored(format!("no tariff for bracket {}", pupil.bracket))
            })?;
        let records_through = self
            .snapshot
            .as_ref()
            .and_then(|state| state.records_through);
        let account = self
            .ledger
            .account(&pupil.account, records_through)?
            .ok_or_else(|| EngineError::UnknownAccount(pupil.account.clone()))?;
        let balance_after = account
            .balance
            .checked_sub(price)
            .map_err(|_| LedgerError::Stored("balance overflow".into()))?;
        if balance_after < account.overdraft_floor {
            return Ok(Charge::InsufficientFunds);
        }
        let records = self.write(vec![RecordBody::Meal(Meal {
            service: service.id.clone(),
            service_date,
            meal_type: service.meal_type.clone(),
            account: pupil.account.clone(),
            pupil: pupil.id.clone(),
            bracket: pupil.bracket.clone(),
            price,
            balance_after,
            via,
        })])?;
        let seq = records.last().expect("one record written").seq();
        Ok(Charge::Served(Served {
            seq,
            pupil: pupil.id.clone(),
            first_name: pupil.first_name.clone(),
            price,
            balance_after,
            dietary: pupil.dietary.clone(),
        }))
    }

    fn refuse(
        &mut self,
        card: CardUid,
        reason: RefusalReason,
        service: Option<&Service>,
    ) -> Result<(), EngineError> {
        let service = service.map(|service| service.id.clone());
        self.write(vec![RecordBody::TapRefused(TapRefused {
            card,
            reason,
            service,
        })])?;
        Ok(())
    }

    /// Signs in the holder of staff card `card` if `pin` matches; locks the card after
    /// [`STAFF_PIN_ATTEMPTS_MAX`] wrong PINs in a row.
    pub fn staff_sign_in(&mut self, card: CardUid, pin: &str) -> Result<StaffId, EngineError> {
        let now = self.clock.now();
        let CardLookup::Staff(staff) = self.ledger.card(&card)? else {
            return Err(EngineError::NotStaffCard);
        };
        let failures = self.pin_failures.entry(card).or_default();
        if failures.locked_until.is_some_and(|until| now < until) {
            return Err(EngineError::LockedOut);
        }
        let credential = self
            .ledger
            .staff(&staff)?
            .ok_or(EngineError::NotStaffCard)?;
        let pin_ok = PasswordHash::new(credential.pin_hash.as_str()).is_ok_and(|hash| {
            argon2::Argon2::default()
                .verify_password(pin.as_bytes(), &hash)
                .is_ok()
        });
        if !pin_ok {
            failures.count += 1;
            let count = failures.count;
            if count >= STAFF_PIN_ATTEMPTS_MAX {
                failures.locked_until = now
                    .checked_add(jiff::SignedDuration::from_millis(STAFF_LOCKOUT_MS))
                    .ok();
                failures.count = 0;
                self.write(vec![RecordBody::StaffLockout(StaffLockout {
                    card,
                    failed_attempts: count,
                })])?;
                return Err(EngineError::LockedOut);
            }
            return Err(EngineError::WrongPin {
                remaining: STAFF_PIN_ATTEMPTS_MAX - count,
            });
        }
        self.pin_failures.remove(&card);
        if let Some(previous) = self.session.take() {
            self.write(vec![RecordBody::StaffSignOut(StaffSignOut {
                staff: previous.staff,
                automatic: false,
            })])?;
        }
        self.write(vec![RecordBody::StaffSignIn(StaffSignIn {
            staff: staff.clone(),
        })])?;
        self.session = Some(StaffSession {
            staff: staff.clone(),
            last_activity: now,
        });
        Ok(staff)
    }

    pub fn staff_signed_in(&self) -> Option<&StaffId> {
        self.session.as_ref().map(|session| &session.staff)
    }

    pub fn staff_sign_out(&mut self) -> Result<(), EngineError> {
        self.end_session(false)
    }

    /// Signs staff out after the snapshot's inactivity limit; returns whether it did.
    pub fn sign_out_if_idle(&mut self) -> Result<bool, EngineError> {
        let (Some(session), Some(snapshot)) = (&self.session, &self.snapshot) else {
            return Ok(false);
        };
        let idle_ms = self
            .clock
            .now()
            .duration_since(session.last_activity)
            .as_millis();
        if idle_ms < i128::from(snapshot.settings.staff_idle_signout_ms) {
            return Ok(false);
        }
        self.end_session(true)?;
        Ok(true)
    }

    /// Records that the member of staff signed in signed out (by hand, or `automatic`ally when
    /// idle), and ends the session once that is committed.
    fn end_session(&mut self, automatic: bool) -> Result<(), EngineError> {
        let session = self.session.as_ref().ok_or(EngineError::NotSignedIn)?;
        let staff = session.staff.clone();
        self.write(vec![RecordBody::StaffSignOut(StaffSignOut {
            staff,
            automatic,
        })])?;
        self.session = None;
        Ok(())
    }

    fn staff_action(&mut self) -> Result<StaffId, EngineError> {
        let now = self.clock.now();
        let session = self.session.as_mut().ok_or(EngineError::NotSignedIn)?;
        session.last_activity = now;
        Ok(session.staff.clone())
    }

    /// Credits money paid at the kiosk; returns the top-up's `seq`.
    pub fn top_up(
        &mut self,
        account: &AccountId,
        amount: Cents,
        method: TopUpMethod,
        reference: Option<Text>,
    ) -> Result<Seq, EngineError> {
        let staff = self.staff_action()?;
        let max = Cents::new(proto::limits::KIOSK_TOP_UP_CENTS_MAX);
        if !amount.is_positive() || amount > max {
            return Err(EngineError::Amount {
                amount: amount.to_french(),
                max: max.to_french(),
            });
        }
        let records_through = self
            .snapshot
            .as_ref()
            .and_then(|state| state.records_through);
        if self.ledger.account(account, records_through)?.is_none() {
            return Err(EngineError::UnknownAccount(account.clone()));
        }
        let body = RecordBody::TopUp(TopUp {
            account: account.clone(),
            amount,
            method,
            staff,
            reference,
        });
        Ok(self.write(vec![body])?.last().expect("one record").seq())
    }

    /// Serves a pupil chosen by name (a forgotten card), with the same checks as a tap.
    pub fn serve_without_card(&mut self, pupil: &PupilId) -> Result<Served, EngineError> {
        let staff = self.staff_action()?;
        let now = self.clock.now();
        let snapshot = self.snapshot.as_ref().ok_or(EngineError::NoSnapshot)?;
        let service = open_service(&snapshot.services, now, &self.time_zone)
            .ok_or(EngineError::NoServiceNow)?;
        let entry = self
            .ledger
            .pupil(pupil)?
            .ok_or_else(|| EngineError::UnknownPupil(pupil.clone()))?;
        match self.charge(&entry, &service, now, MealVia::Staff(staff))? {
            Charge::Served(served) => Ok(served),
            Charge::AlreadyServed => Err(EngineError::AlreadyServed),
            Charge::InsufficientFunds => Err(EngineError::InsufficientFunds),
        }
    }

    /// Pupils whose first or last name starts with `prefix`.
    pub fn search_pupils(&self, prefix: &str) -> Result<Vec<PupilEntry>, EngineError> {
        Ok(self
            .ledger
            .search_pupils(prefix, PUPIL_SEARCH_RESULTS_MAX)?)
    }

    /// Voids one of today's meals or top-ups; returns the void's `seq`.
    pub fn void(&mut self, seq: Seq, reason: Text) -> Result<Seq, EngineError> {
        let staff = self.staff_action()?;
        let signed = self
            .ledger
            .record(seq)?
            .ok_or(EngineError::NoSuchRecord(seq))?;
        let payload = proto::Payload::parse(&signed.payload)?;
        let today = local_date(self.clock.now(), &self.time_zone);
        let day = match &payload.body {
            RecordBody::Meal(meal) => meal.service_date,
            RecordBody::TopUp(_) => local_date(
                jiff::Timestamp::from_millisecond(payload.at.unix_ms())
                    .map_err(|_| EngineError::NoSuchRecord(seq))?,
                &self.time_zone,
            ),
            RecordBody::Void(_) => {
                return Err(EngineError::NotVoidable {
                    seq,
                    why: "a void cannot be voided",
                });
            }
            _ => {
                return Err(EngineError::NotVoidable {
                    seq,
                    why: "only meals and top-ups can be voided",
                });
            }
        };
        if day != today {
            return Err(EngineError::NotVoidable {
                seq,
                why: "only today's records can be voided",
            });
        }
        if self.ledger.voided(seq)? {
            return Err(EngineError::NotVoidable {
                seq,
                why: "already voided",
            });
        }
        let body = RecordBody::Void(Void {
            voided_seq: seq,
            voided_hash: signed.payload_hash(),
            staff,
            reason,
        });
        Ok(self.write(vec![body])?.last().expect("one record").seq())
    }

    /// What closing the day now would record, with nothing counted yet: for the staff screen
    /// that shows the cash expected before anything is written.
    pub fn close_preview(&self) -> Result<DayClose, EngineError> {
        let staff = self
            .session
            .as_ref()
            .ok_or(EngineError::NotSignedIn)?
            .staff
            .clone();
        let previous_close = self.ledger.last_day_close()?;
        let service_date = local_date(self.clock.now(), &self.time_zone);
        Ok(day_close::compute(
            &self.ledger,
            previous_close,
            service_date,
            staff,
            Cents::ZERO,
        )?)
    }

    /// Today's meals and top-ups not yet voided, newest first, at most `limit`: what staff may
    /// void.
    pub fn voidable_today(&self, limit: usize) -> Result<Vec<(Seq, RecordBody)>, EngineError> {
        let today = local_date(self.clock.now(), &self.time_zone);
        let mut found = Vec::new();
        let mut seq = self.head.next_seq.previous();
        while let Some(current) = seq {
            if found.len() >= limit {
                break;
            }
            let Some(signed) = self.ledger.record(current)? else {
                break;
            };
            let payload = proto::Payload::parse(&signed.payload)?;
            let at = jiff::Timestamp::from_millisecond(payload.at.unix_ms())
                .map_err(|error| LedgerError::Stored(error.to_string()))?;
            if local_date(at, &self.time_zone) < today {
                break;
            }
            if matches!(payload.body, RecordBody::Meal(_) | RecordBody::TopUp(_))
                && !self.ledger.voided(current)?
            {
                found.push((current, payload.body));
            }
            seq = current.previous();
        }
        Ok(found)
    }

    /// Closes the day: a Z record of everything since the previous close.
    pub fn close_day(&mut self, cash_counted: Cents) -> Result<DayClose, EngineError> {
        let staff = self.staff_action()?;
        let previous_close = self.ledger.last_day_close()?;
        let service_date = local_date(self.clock.now(), &self.time_zone);
        let close = day_close::compute(
            &self.ledger,
            previous_close,
            service_date,
            staff,
            cash_counted,
        )?;
        self.write(vec![RecordBody::DayClose(close.clone())])?;
        Ok(close)
    }

    /// Applies a snapshot from the back-office, with its audit record, in one transaction.
    pub fn apply_snapshot(&mut self, snapshot: &Snapshot) -> Result<(), EngineError> {
        if snapshot.is_full() {
            snapshot
                .check_complete()
                .map_err(SnapshotApplyError::from)?;
        } else {
            snapshot.check_entries().map_err(SnapshotApplyError::from)?;
        }
        let applied_at = record_time(self.clock.now());
        let mut config_changes = Vec::new();
        if let (Some(old), Some(new)) = (
            self.snapshot.as_ref().map(|s| &s.settings),
            &snapshot.settings,
        ) {
            config_changes = settings_changes(old, new);
        }
        let mut bodies = vec![RecordBody::SnapshotApplied(SnapshotApplied {
            version: snapshot.version,
            full: snapshot.is_full(),
        })];
        bodies.extend(config_changes);
        self.write_with(bodies, |write| {
            write
                .apply_snapshot(snapshot, applied_at)
                .map_err(EngineError::from)
        })?;
        self.snapshot = self.ledger.snapshot_state()?;
        Ok(())
    }

    /// Records the start of a period without the back-office.
    pub fn note_offline_start(
        &mut self,
        last_sync: Option<proto::Timestamp>,
    ) -> Result<(), EngineError> {
        self.write(vec![RecordBody::OfflineStart(OfflineStart { last_sync })])?;
        Ok(())
    }

    /// Records the end of a period without the back-office.
    pub fn note_offline_end(&mut self, offline_since: proto::Timestamp) -> Result<(), EngineError> {
        self.write(vec![RecordBody::OfflineEnd(OfflineEnd { offline_since })])?;
        Ok(())
    }

    /// Records that the kiosk's clock is `drift_ms` away from the back-office's (kiosk minus
    /// back-office), as measured at `backoffice_time`.
    pub fn note_clock_drift(
        &mut self,
        backoffice_time: proto::Timestamp,
        drift_ms: i64,
    ) -> Result<(), EngineError> {
        self.write(vec![RecordBody::ClockDrift(proto::record::ClockDrift {
            backoffice_time,
            drift_ms,
        })])?;
        Ok(())
    }

    /// The service open now, if any, and the local time as `HH:MM`.
    pub fn service_now(&self) -> (Option<Text>, String) {
        let now = self.clock.now();
        let local = now.to_zoned(self.time_zone.clone());
        let time = format!("{:02}:{:02}", local.hour(), local.minute());
        let service = self
            .snapshot
            .as_ref()
            .and_then(|snapshot| open_service(&snapshot.services, now, &self.time_zone))
            .map(|service| service.name);
        (service, time)
    }

    /// Records that the back-office holds every record up to `seq`. Refuses a `seq` the kiosk
    /// has not written: an acknowledgement beyond the chain means the answer was not for us.
    pub fn record_acknowledged(&mut self, seq: Seq) -> Result<(), EngineError> {
        if seq >= self.head.next_seq {
            return Err(EngineError::NoSuchRecord(seq));
        }
        self.ledger.write(|write| write.acknowledge(seq))?;
        Ok(())
    }

    pub fn status(&self) -> Result<Status, EngineError> {
        let today = self.ledger.day_counts(self.clock.now(), &self.time_zone)?;
        Ok(Status {
            device: self.device.clone(),
            counts: self.ledger.counts()?,
            snapshot_version: self.snapshot.as_ref().map(|s| s.version),
            snapshot_applied_at: self.snapshot.as_ref().map(|s| s.applied_at),
            today,
            staff_signed_in: self.session.as_ref().map(|s| s.staff.clone()),
        })
    }

    fn write(&mut self, bodies: Vec<RecordBody>) -> Result<Vec<Record>, EngineError> {
        self.write_with(bodies, |_| Ok(()))
    }

    /// Signs `bodies` as the next links of the chain and commits them, with `extra` writes, in
    /// one transaction. A clock that moved backwards is noted first. The head moves only once
    /// the commit succeeded.
    fn write_with(
        &mut self,
        bodies: Vec<RecordBody>,
        extra: impl FnOnce(&LedgerWrite<'_>) -> Result<(), EngineError>,
    ) -> Result<Vec<Record>, EngineError> {
        let at = record_time(self.clock.now());
        let mut head = self.head;
        let mut records = Vec::with_capacity(bodies.len() + 1);
        if let Some(previous) = self.last_record_at
            && previous.unix_ms() - at.unix_ms() > CLOCK_BACKWARDS_TOLERANCE_MS
        {
            let body = RecordBody::ClockChange(ClockChange {
                previous,
                current: at,
            });
            records.push(head.append(&self.key, &self.device, at, body)?);
        }
        for body in bodies {
            records.push(head.append(&self.key, &self.device, at, body)?);
        }
        self.ledger.write(|write| {
            for record in &records {
                write.append(record)?;
            }
            extra(write)
        })?;
        self.head = head;
        self.last_record_at = Some(at);
        self.commits_since_checkpoint += 1;
        if self.commits_since_checkpoint >= CHECKPOINT_EVERY_COMMITS {
            self.checkpointer.request();
            self.commits_since_checkpoint = 0;
        }
        Ok(records)
    }
}

enum Charge {
    Served(Served),
    AlreadyServed,
    InsufficientFunds,
}

fn open_service(
    services: &[Service],
    now: jiff::Timestamp,
    time_zone: &TimeZone,
) -> Option<Service> {
    let local = now.to_zoned(time_zone.clone());
    services
        .iter()
        .find(|service| service_open(service, local.weekday(), local.time()))
        .cloned()
}

fn settings_changes(
    old: &proto::snapshot::KioskSettings,
    new: &proto::snapshot::KioskSettings,
) -> Vec<RecordBody> {
    let fields = |settings: &proto::snapshot::KioskSettings| {
        [
            ("result_display_ms", settings.result_display_ms.to_string()),
            ("sync_interval_ms", settings.sync_interval_ms.to_string()),
            (
                "staff_idle_signout_ms",
                settings.staff_idle_signout_ms.to_string(),
            ),
            (
                "language",
                format!("{:?}", settings.language).to_lowercase(),
            ),
        ]
    };
    fields(old)
        .into_iter()
        .zip(fields(new))
        .filter(|((_, before), (_, after))| before != after)
        .filter_map(|((key, before), (_, after))| {
            Some(RecordBody::ConfigChange(proto::record::ConfigChange {
                key: Text::parse(key).ok()?,
                old: Text::parse(&before).ok(),
                new: Text::parse(&after).ok(),
            }))
        })
        .collect()
}
