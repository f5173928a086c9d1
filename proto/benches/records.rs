//! Records signed and verified per second by `proto`, beside raw `ring` Ed25519 on the same bytes
//! in the same run. Run with `cargo bench -p proto --bench records [-- ROUNDS]`.
//!
//! Each round times a batch of every operation, interleaved, so machine noise hits all of them
//! alike; the report gives the median rate of each over the rounds, and the ratios.

// Rates and ratios are reports, not money.
#![allow(clippy::float_arithmetic, clippy::unwrap_used)]

use std::hint::black_box;
use std::time::Instant;

use proto::record::{Meal, MealVia};
use proto::{
    AccountId, BracketId, CardUid, Cents, ChainHead, DeviceId, MealType, PupilId, RecordBody,
    ServiceDate, ServiceId, SignedRecord, SigningKey, Timestamp, verify_chain,
};
use ring::signature::{ED25519, Ed25519KeyPair, UnparsedPublicKey};

const BATCH: usize = 1_000;
const ROUNDS_DEFAULT: usize = 15;

fn meal(n: usize) -> RecordBody {
    RecordBody::Meal(Meal {
        service: ServiceId::parse("lunch").unwrap(),
        service_date: ServiceDate::parse("2026-11-30").unwrap(),
        meal_type: MealType::parse("lunch").unwrap(),
        account: AccountId::parse(&format!("A{:05}", n % 50_000)).unwrap(),
        pupil: PupilId::parse(&format!("P{:05}", n % 60_000)).unwrap(),
        bracket: BracketId::parse("q3").unwrap(),
        price: Cents::new(385),
        balance_after: Cents::new(1_615),
        via: MealVia::Card(CardUid::parse(&[4, 0xa1, 0xb2, 0xc3, 0xd4, 0xe5, 0xf6]).unwrap()),
    })
}

fn rate(batch: usize, seconds: f64) -> f64 {
    batch as f64 / seconds
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// What every round works on: a key (as proto holds it and as raw ring does), a batch of meal
/// bodies, and the chain proto signs of them, with ring's own signatures of the same bytes.
struct Setup {
    key: SigningKey,
    raw_key: Ed25519KeyPair,
    public: proto::PublicKey,
    device: DeviceId,
    bodies: Vec<RecordBody>,
    at: Timestamp,
    chain: Vec<SignedRecord>,
    raw_signatures: Vec<Vec<u8>>,
}

fn setup() -> Setup {
    let random = ring::rand::SystemRandom::new();
    let (key, pkcs8) = SigningKey::generate(&random).unwrap();
    let raw_key = Ed25519KeyPair::from_pkcs8(&pkcs8).unwrap();
    let public = key.public_key();
    let device = DeviceId::parse("kiosk-jaures-1").unwrap();
    let bodies: Vec<RecordBody> = (0..BATCH).map(meal).collect();
    let at = Timestamp::from_unix_ms(1_795_952_703_120).unwrap();

    // A reference chain, so raw operations run on exactly the bytes proto signs and verifies.
    let mut head = ChainHead::GENESIS;
    let chain: Vec<SignedRecord> = bodies
        .iter()
        .map(|body| {
            head.append(&key, &device, at, body.clone())
                .unwrap()
                .signed()
                .clone()
        })
        .collect();
    let raw_signatures: Vec<Vec<u8>> = chain
        .iter()
        .map(|record| raw_key.sign(record.payload.as_bytes()).as_ref().to_vec())
        .collect();
    Setup {
        key,
        raw_key,
        public,
        device,
        bodies,
        at,
        chain,
        raw_signatures,
    }
}

/// The rate of each operation in each round so far.
#[derive(Default)]
struct Rates {
    raw_sign: Vec<f64>,
    proto_sign: Vec<f64>,
    raw_verify: Vec<f64>,
    proto_verify: Vec<f64>,
    proto_chain: Vec<f64>,
}

/// Times `work`, a batch of [`BATCH`] operations, and keeps its rate in `rates`.
fn timed(rates: &mut Vec<f64>, work: impl FnOnce()) {
    let start = Instant::now();
    work();
    rates.push(rate(BATCH, start.elapsed().as_secs_f64()));
}

/// One round: a batch of every operation, one after the other.
fn round(setup: &Setup, rates: &mut Rates) {
    let raw_public = UnparsedPublicKey::new(&ED25519, *setup.public.as_bytes());
    timed(&mut rates.raw_sign, || {
        for record in &setup.chain {
            black_box(setup.raw_key.sign(black_box(record.payload.as_bytes())));
        }
    });
    timed(&mut rates.proto_sign, || {
        let mut head = ChainHead::GENESIS;
        for body in &setup.bodies {
            black_box(
                head.append(&setup.key, &setup.device, setup.at, black_box(body.clone()))
                    .unwrap(),
            );
        }
    });
    timed(&mut rates.raw_verify, || {
        for (record, signature) in setup.chain.iter().zip(&setup.raw_signatures) {
            raw_public
                .verify(black_box(record.payload.as_bytes()), black_box(signature))
                .unwrap();
        }
    });
    timed(&mut rates.proto_verify, || {
        for record in &setup.chain {
            black_box(black_box(record).verify(&setup.public).unwrap());
        }
    });
    timed(&mut rates.proto_chain, || {
        let report = verify_chain(&setup.device, &setup.public, black_box(&setup.chain));
        assert!(report.is_clean());
    });
}

fn report(rates: &mut Rates, rounds: usize, payload_bytes: usize) {
    let raw_sign = median(&mut rates.raw_sign);
    let proto_sign = median(&mut rates.proto_sign);
    let raw_verify = median(&mut rates.raw_verify);
    let proto_verify = median(&mut rates.proto_verify);
    let proto_chain = median(&mut rates.proto_chain);
    println!("records: {BATCH} meal records a round, {rounds} rounds, median rates");
    println!("payload bytes: {payload_bytes}");
    println!("{:<34} {:>12}", "operation", "per second");
    println!("{:<34} {:>12.0}", "ring Ed25519 sign (raw)", raw_sign);
    println!(
        "{:<34} {:>12.0}",
        "proto sign record (encode+sign)", proto_sign
    );
    println!("{:<34} {:>12.0}", "ring Ed25519 verify (raw)", raw_verify);
    println!(
        "{:<34} {:>12.0}",
        "proto verify record (+parse)", proto_verify
    );
    println!(
        "{:<34} {:>12.0}",
        "proto verify chain (+links)", proto_chain
    );
    println!(
        "sign ratio (proto / raw):         {:.3}",
        proto_sign / raw_sign
    );
    println!(
        "verify ratio (proto / raw):       {:.3}",
        proto_verify / raw_verify
    );
    println!(
        "chain verify ratio (proto / raw): {:.3}",
        proto_chain / raw_verify
    );
}

fn main() {
    let rounds = std::env::args()
        .skip(1)
        .find_map(|arg| arg.parse::<usize>().ok())
        .unwrap_or(ROUNDS_DEFAULT);
    let setup = setup();
    let mut rates = Rates::default();
    for _ in 0..rounds {
        round(&setup, &mut rates);
    }
    report(&mut rates, rounds, setup.chain[0].payload.len());
}
