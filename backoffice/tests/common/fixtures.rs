//! Kiosk keys, devices, accounts and signed chains for tests.

use proto::record::{Meal, MealVia, TopUp, TopUpMethod, Void};
use proto::{
    AccountId, BracketId, CardUid, Cents, ChainHead, DeviceId, MealType, PupilId, Record,
    RecordBody, ServiceDate, ServiceId, SignedRecord, SigningKey, SiteId, StaffId, Text, Timestamp,
};

use backoffice::store::Device;

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
    RecordBody::Void(Void {
        voided_seq: record.seq(),
        voided_hash: record.hash(),
        staff: StaffId::parse("staff-martin").unwrap(),
        reason: Text::parse("served twice by mistake").unwrap(),
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
