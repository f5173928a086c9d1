//! Kiosk keys, devices, accounts and signed chains for tests.

use crate::ops::Ops as _;
use proto::record::{Meal, MealVia, TopUp, TopUpMethod, Void};
use proto::{
    AccountId, BracketId, CardUid, Cents, ChainHead, DeviceId, MealType, PupilId, Record,
    RecordBody, ServiceDate, ServiceId, SignedRecord, SigningKey, SiteId, StaffId, Text, Timestamp,
};

use backoffice::store::Device;
use backoffice::users::{Role, User};
use proto::snapshot::{
    Card, CardHolder, KioskSettings, Language, LocalTime, Pupil, Service, StaffCredential, Tariff,
    Weekday,
};

/// A fixed key, so failures reproduce: the PKCS#8 v1 form of a 32-byte seed.
pub fn key(seed: u8) -> SigningKey {
    let mut der = vec![
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    der.extend_from_slice(&[seed; 32]);
    SigningKey::from_pkcs8(&der).unwrap()
}

pub fn device_id(name: &str) -> DeviceId {
    DeviceId::parse(name).unwrap()
}

pub fn account(name: &str) -> AccountId {
    AccountId::parse(name).unwrap()
}

pub fn site() -> SiteId {
    SiteId::parse("jaures").unwrap()
}

/// A registered kiosk of site `jaures` whose key is `key(seed)`.
pub fn device(name: &str, seed: u8) -> Device {
    Device {
        id: device_id(name),
        site: site(),
        key: key(seed).public_key(),
        revoked_at: None,
    }
}

/// When the tests' kiosks and users are registered: before every day the tests trade on.
pub fn registered_at() -> Timestamp {
    Timestamp::parse("2026-11-01T08:00:00.000Z").unwrap()
}

/// Where a [`crate::app::TestApp`]'s clock stands: 14:00 in Paris on the Wednesday after the
/// Monday the reconciliation tests trade on ([`crate::day::DATE`]), so that "today" at the
/// service is another day than the one finance reconciles.
pub fn app_now() -> Timestamp {
    Timestamp::parse("2026-12-02T13:00:00.000Z").unwrap()
}

pub fn at(offset_ms: i64) -> Timestamp {
    Timestamp::from_unix_ms(1_795_952_703_120 + offset_ms).unwrap()
}

pub fn meal(account_name: &str, price_cents: i64) -> RecordBody {
    RecordBody::Meal(Meal {
        service: ServiceId::parse("lunch").unwrap(),
        service_date: ServiceDate::parse("2026-11-30").unwrap(),
        meal_type: MealType::parse("lunch").unwrap(),
        account: account(account_name),
        pupil: PupilId::parse("P00001").unwrap(),
        bracket: BracketId::parse("q3").unwrap(),
        price: Cents::new(price_cents),
        balance_after: Cents::new(0),
        via: MealVia::Card(CardUid::parse(&[4, 0xa1, 0xb2, 0xc3]).unwrap()),
    })
}

pub fn top_up(account_name: &str, amount_cents: i64) -> RecordBody {
    RecordBody::TopUp(TopUp {
        account: account(account_name),
        amount: Cents::new(amount_cents),
        method: TopUpMethod::Cash,
        staff: StaffId::parse("staff-martin").unwrap(),
        reference: None,
    })
}

pub fn void(record: &Record) -> RecordBody {
    void_because(record, "served twice by mistake")
}

/// Staff member `staff-martin` voids `record` for `reason`.
pub fn void_because(record: &Record, reason: &str) -> RecordBody {
    RecordBody::Void(Void {
        voided_seq: record.seq(),
        voided_hash: record.hash(),
        staff: StaffId::parse("staff-martin").unwrap(),
        reason: Text::parse(reason).unwrap(),
    })
}

/// A kiosk writing its chain, as the kiosk's ledger would.
#[derive(Debug)]
pub struct Kiosk {
    pub device: Device,
    pub key: SigningKey,
    pub head: ChainHead,
    pub written: Vec<Record>,
}

impl Kiosk {
    pub fn new(name: &str, seed: u8) -> Kiosk {
        Kiosk {
            device: device(name, seed),
            key: key(seed),
            head: ChainHead::GENESIS,
            written: Vec::new(),
        }
    }

    /// A new kiosk whose device `store` registered (see [`register`]).
    pub async fn registered(store: &impl backoffice::store::Store, name: &str, seed: u8) -> Kiosk {
        let kiosk = Kiosk::new(name, seed);
        register(store, &kiosk.device).await;
        kiosk
    }

    pub fn write(&mut self, body: RecordBody) -> Record {
        let offset = i64::try_from(self.written.len()).unwrap() * 1_000;
        let record = self
            .head
            .append(&self.key, &self.device.id, at(offset), body)
            .unwrap();
        self.written.push(record.clone());
        record
    }

    /// Writes `count` meals of 385 cents for `account_name`.
    pub fn write_meals(&mut self, account_name: &str, count: usize) {
        for _ in 0..count {
            self.write(meal(account_name, 385));
        }
    }

    /// Records `from..=to` (1-based `seq`) as uploaded.
    pub fn signed(&self, from: u64, to: u64) -> Vec<SignedRecord> {
        self.written
            .iter()
            .filter(|record| (from..=to).contains(&record.seq().get()))
            .map(|record| record.signed().clone())
            .collect()
    }

    /// Another record at the same `seq` as the one written there, properly signed: a fork.
    pub fn fork_at(&self, seq: u64, body: RecordBody) -> SignedRecord {
        let index = usize::try_from(seq - 1).unwrap();
        let mut head = match index.checked_sub(1) {
            Some(before) => ChainHead::after(&self.written[before]),
            None => ChainHead::GENESIS,
        };
        head.append(&self.key, &self.device.id, at(-1), body)
            .unwrap()
            .signed()
            .clone()
    }
}

/// The record at `seq` with its signature replaced by another key's.
pub fn forged(record: &SignedRecord) -> SignedRecord {
    SignedRecord {
        payload: record.payload.clone(),
        signature: key(99).sign(record.payload.as_bytes()).to_base64(),
    }
}

pub fn pupil(id: &str, account_name: &str, bracket: &str) -> Pupil {
    Pupil {
        id: PupilId::parse(id).unwrap(),
        account: account(account_name),
        first_name: Text::parse("Léa").unwrap(),
        last_name: Text::parse("Martin-O'Brien; DROP TABLE pupils;--").unwrap(),
        bracket: BracketId::parse(bracket).unwrap(),
        dietary: vec![Text::parse("no_pork").unwrap()],
    }
}

pub fn card(uid: &[u8], holder: CardHolder) -> Card {
    Card {
        uid: CardUid::parse(uid).unwrap(),
        holder,
    }
}

pub fn pupil_card(uid: &[u8], pupil: &str) -> Card {
    card(uid, CardHolder::Pupil(PupilId::parse(pupil).unwrap()))
}

pub fn staff_member(id: &str) -> StaffCredential {
    StaffCredential {
        id: StaffId::parse(id).unwrap(),
        name: Text::parse("Mme Martin").unwrap(),
        pin_hash: Text::parse("$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA")
            .unwrap(),
    }
}

pub fn tariff(bracket: &str, price_cents: i64) -> Tariff {
    Tariff {
        bracket: BracketId::parse(bracket).unwrap(),
        meal_type: MealType::parse("lunch").unwrap(),
        price: Cents::new(price_cents),
    }
}

pub fn lunch_service() -> Service {
    Service {
        id: ServiceId::parse("lunch").unwrap(),
        name: Text::parse("Déjeuner").unwrap(),
        meal_type: MealType::parse("lunch").unwrap(),
        weekdays: vec![
            Weekday::Monday,
            Weekday::Tuesday,
            Weekday::Thursday,
            Weekday::Friday,
        ],
        start: LocalTime::parse("11:30").unwrap(),
        end: LocalTime::parse("13:45").unwrap(),
    }
}

pub fn settings() -> KioskSettings {
    KioskSettings {
        result_display_ms: 2_500,
        sync_interval_ms: 30_000,
        staff_idle_signout_ms: 60_000,
        language: Language::Fr,
    }
}

/// Registers `device` with `store` at [`registered_at`].
pub async fn register(store: &impl backoffice::store::Store, device: &Device) {
    store
        .add_device(device.clone(), registered_at())
        .await
        .unwrap();
}

/// [`populate`], then [`add_users`].
pub async fn populate_with_users(
    store: &impl backoffice::store::Store,
    password: &str,
    users: &[(&str, Role, Option<&str>)],
) {
    populate(store).await;
    add_users(store, password, users).await;
}

/// Adds each user `(name, role, site)`, all with `password`, registered at [`registered_at`].
pub async fn add_users(
    store: &impl backoffice::store::Store,
    password: &str,
    users: &[(&str, Role, Option<&str>)],
) {
    for &(name, role, site) in users {
        let site = site.map(|site| SiteId::parse(site).unwrap());
        store
            .add_user(
                &User::new(name, role, site, password).unwrap(),
                registered_at(),
            )
            .await
            .unwrap();
    }
}

/// Site `jaures` with two families (siblings P1 and P2 share A1), a staff member, cards,
/// tariffs, lunch and settings; and site `ferry` with one pupil, whose data `jaures`'s kiosks
/// must not receive.
pub async fn populate(store: &impl backoffice::store::Store) {
    let jaures = site();
    let ferry = SiteId::parse("ferry").unwrap();
    for (name, floor) in [("A1", -500), ("A2", 0), ("A9", 0)] {
        store
            .add_account(&account(name), Cents::new(floor), at(0))
            .await
            .unwrap();
    }
    for (bracket, price) in [("q1", 100), ("q2", 250), ("q3", 385)] {
        store
            .save_tariff(&jaures, &tariff(bracket, price))
            .await
            .unwrap();
        store
            .save_tariff(&ferry, &tariff(bracket, price))
            .await
            .unwrap();
    }
    store.save_service(&jaures, &lunch_service()).await.unwrap();
    store
        .save_kiosk_settings(&jaures, &settings())
        .await
        .unwrap();
    store
        .save_staff(&jaures, &staff_member("staff-martin"))
        .await
        .unwrap();
    for (at_site, id, account_name, bracket) in [
        (&jaures, "P1", "A1", "q3"),
        (&jaures, "P2", "A1", "q3"),
        (&jaures, "P3", "A2", "q1"),
        (&ferry, "P9", "A9", "q2"),
    ] {
        store
            .save_pupil(at_site, &pupil(id, account_name, bracket))
            .await
            .unwrap();
    }
    for (uid, holder) in [(1, "P1"), (2, "P2"), (3, "P3"), (9, "P9")] {
        store
            .assign_card(&pupil_card(&[uid; 4], holder))
            .await
            .unwrap();
    }
    store
        .assign_card(&card(
            &[5, 5, 5, 5, 5, 5, 5],
            CardHolder::Staff(StaffId::parse("staff-martin").unwrap()),
        ))
        .await
        .unwrap();
}
