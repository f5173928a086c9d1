//! Ingest: a kiosk's batch of signed records, checked, judged against its stored chain
//! ([`plan`]), and written exactly once with its effect on balances, its meals and its
//! anomalies, in one transaction, the same way on both databases.

pub mod money;
pub mod plan;

use std::collections::BTreeSet;

use proto::api::KioskReport;
use proto::{CheckedRecord, DeviceId, PublicKey, Record, RecordBody, Seq, SignedRecord, Timestamp};

use crate::limits::{ANOMALIES_PER_KIOSK_PER_DAY_MAX, DAY_MS};
use crate::store::rows::chain::{AnomalyReason, HeldGap};
use crate::store::{
    Anomaly, ChainRows, Device, DeviceRows, Mode, NewAnomaly, Stamp, Store, StoreError,
    Transaction, finish,
};
use money::LedgerBefore;
use plan::{IngestPlan, StoredChain};

/// What one upload did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IngestOutcome {
    /// The highest `seq` up to which every record of the kiosk is stored.
    pub acknowledged: Option<Seq>,
    pub stored: u32,
    pub duplicates: u32,
    pub quarantined: u32,
    /// Anomalies of this upload not kept: the kiosk had used up its
    /// [`ANOMALIES_PER_KIOSK_PER_DAY_MAX`] (an alert fires on it).
    pub anomalies_dropped: u32,
}

/// Verifies a batch of a kiosk's records against its stored chain and stores each exactly
/// once, applying its effect on balances, all in one transaction. Signatures are checked
/// before the transaction begins, so the database waits only for the reads and writes.
pub async fn ingest<S: Store>(
    store: &S,
    device: &Device,
    batch: Vec<SignedRecord>,
    received_at: Timestamp,
) -> Result<IngestOutcome, StoreError> {
    ingest_with_report(store, device, batch, None, received_at).await
}

/// [`ingest`], keeping the kiosk's report of itself in the same transaction.
pub async fn ingest_with_report<S: Store>(
    store: &S,
    device: &Device,
    batch: Vec<SignedRecord>,
    report: Option<&KioskReport>,
    received_at: Timestamp,
) -> Result<IngestOutcome, StoreError> {
    let batch = check(device.key, batch).await?;
    let mut transaction = store.begin(Mode::Write).await?;
    let result = ingest_in(&mut transaction, device, &batch, report, received_at).await;
    finish(transaction, result).await
}

/// Checks a batch's signatures on a blocking thread: hundreds of Ed25519 verifications would
/// hold up every other request on an async worker.
async fn check(key: PublicKey, batch: Vec<SignedRecord>) -> Result<Vec<CheckedRecord>, StoreError> {
    tokio::task::spawn_blocking(move || plan::check(&key, batch))
        .await
        .map_err(|error| StoreError::Unavailable(error.to_string()))
}

async fn ingest_in<X: Transaction>(
    transaction: &mut X,
    device: &Device,
    batch: &[CheckedRecord],
    report: Option<&KioskReport>,
    received_at: Timestamp,
) -> Result<IngestOutcome, StoreError> {
    let id = &device.id;
    // Instances racing the same kiosk's uploads take turns from here.
    transaction.lock_device(id).await?;
    let head = transaction.chain_head(id).await?;
    let held = transaction.held_records(id).await?;
    let claimed = plan::claimed_seqs_below_head(&head, batch);
    let stored_below_head = transaction.records_at(id, &claimed).await?;
    let had_held = !held.is_empty();
    let stored = StoredChain {
        head,
        held,
        stored_below_head,
    };
    let plan = plan::plan(id, &device.key, &stored, batch);

    transaction
        .insert_records(id, &plan.append, received_at)
        .await?;
    let before = ledger_before(transaction, id, &plan.append).await?;
    let after = money::apply_effects(&plan.append, before);
    transaction
        .insert_movements(id, &after.movements, received_at)
        .await?;
    let mut anomalies = moved_nothing(&plan.append, &after.anomalies)?;
    anomalies.extend(plan.quarantine.iter().cloned());
    let anomalies_dropped = within_budget(transaction, id, &mut anomalies, received_at).await?;
    transaction
        .insert_anomalies(id, &anomalies, received_at)
        .await?;
    if had_held || !plan.hold.is_empty() {
        transaction
            .replace_held_records(id, &plan.hold, received_at)
            .await?;
    }
    // The site's day totals are one row every kiosk of the site updates: held from here to
    // the commit only.
    add_meals(transaction, device, &plan.append, &after.movements).await?;
    if let Some(report) = report {
        transaction
            .save_kiosk_report(id, report, received_at)
            .await?;
    }
    // Balances a kiosk sees changed: they belong to a new snapshot version, taken last. Records
    // that moved no money change nothing a kiosk sees, and take none.
    if !after.balances.is_empty() {
        transaction.set_balances(&after.balances).await?;
        let accounts = after.balances.keys().cloned().collect();
        transaction
            .take_version(&[Stamp::Accounts(accounts)])
            .await?;
    }
    Ok(IngestOutcome {
        anomalies_dropped,
        ..outcome(&plan)
    })
}

/// Keeps of `anomalies` what fits in the kiosk's budget of the last day, and says how many it
/// dropped: a kiosk that sends junk without end (a stolen key, a broken build) cannot fill
/// the database, while its records still move money and the drop is counted for an alert.
async fn within_budget<X: Transaction>(
    transaction: &mut X,
    device: &DeviceId,
    anomalies: &mut Vec<NewAnomaly>,
    received_at: Timestamp,
) -> Result<u32, StoreError> {
    if anomalies.is_empty() {
        return Ok(0);
    }
    let day_before = Timestamp::from_unix_ms(received_at.unix_ms().saturating_sub(DAY_MS))
        .map_err(|error| StoreError::Unavailable(error.to_string()))?;
    let kept = transaction.anomalies_since(device, day_before).await?;
    let room =
        usize::try_from(ANOMALIES_PER_KIOSK_PER_DAY_MAX.saturating_sub(kept)).unwrap_or(usize::MAX);
    if anomalies.len() <= room {
        return Ok(0);
    }
    let dropped = anomalies.split_off(room);
    tracing::error!(
        device = %device,
        dropped = dropped.len(),
        budget = ANOMALIES_PER_KIOSK_PER_DAY_MAX,
        "a kiosk's anomalies of the last day are over budget: those of this upload are dropped"
    );
    Ok(count(dropped.len()))
}

/// Reads what the batch's effects touch: the accounts it names (their rows held to the
/// commit) and the records its voids name.
async fn ledger_before<X: Transaction>(
    transaction: &mut X,
    device: &DeviceId,
    append: &[Record],
) -> Result<LedgerBefore, StoreError> {
    let (mut accounts, voided) = money::ledger_needs(append);
    let voided: Vec<Seq> = voided.into_iter().collect();
    let mut before = LedgerBefore {
        voided_hashes: transaction.record_hashes(device, &voided).await?,
        ..LedgerBefore::default()
    };
    for movement in transaction.movements_of(device, &voided).await? {
        if voided.contains(&movement.seq) {
            accounts.insert(movement.account.clone());
            before
                .voided_movements
                .entry(movement.seq)
                .or_default()
                .push((movement.account, movement.amount));
        }
        if let Some(reverses) = movement.reverses.filter(|seq| voided.contains(seq)) {
            before.already_reversed.insert(reverses);
        }
    }
    // A meal finance credited back by approving a proposed void is reversed already: the
    // kiosk's own later void of it moves no money again.
    before
        .already_reversed
        .extend(transaction.approved_voids_of(device, &voided).await?);
    let accounts: Vec<_> = accounts.into_iter().collect();
    before.balances = transaction.lock_balances(&accounts).await?;
    Ok(before)
}

/// The appended records that moved no money, kept with their reason.
fn moved_nothing(
    append: &[Record],
    refused: &[(Seq, AnomalyReason, String)],
) -> Result<Vec<NewAnomaly>, StoreError> {
    refused
        .iter()
        .map(|(seq, reason, detail)| {
            let record = append
                .iter()
                .find(|record| record.seq() == *seq)
                .ok_or_else(|| StoreError::Corrupt(format!("no record at seq {seq}")))?;
            Ok(NewAnomaly {
                seq: Some(*seq),
                reason: *reason,
                detail: detail.clone(),
                record: record.signed().clone(),
            })
        })
        .collect()
}

/// Lists the batch's meals in its site's `meals` and adds them, and the meals it voids, to
/// the site's day totals.
async fn add_meals<X: Transaction>(
    transaction: &mut X,
    device: &Device,
    append: &[Record],
    movements: &[crate::store::rows::chain::Movement],
) -> Result<(), StoreError> {
    let meals: Vec<_> = append
        .iter()
        .filter_map(|record| match &record.payload().body {
            RecordBody::Meal(meal) => Some((record, meal)),
            _ => None,
        })
        .collect();
    transaction
        .insert_meals(&device.site, &device.id, &meals)
        .await?;
    // Meals voided by this batch but stored before it: read first, the rule needs no I/O.
    let in_batch: BTreeSet<Seq> = append.iter().map(Record::seq).collect();
    let voided_before: Vec<Seq> = movements
        .iter()
        .filter_map(|movement| movement.reverses)
        .filter(|voided| !in_batch.contains(voided))
        .collect();
    let stored = transaction.records_at(&device.id, &voided_before).await?;
    let days = crate::meal_days::changes(append, movements, |seq| {
        stored
            .get(&seq)
            .and_then(|record| crate::meal_days::meal_of(&record.payload))
    });
    transaction.add_meal_days(&device.site, &days).await
}

fn outcome(plan: &IngestPlan) -> IngestOutcome {
    IngestOutcome {
        acknowledged: plan.head.next_seq.previous(),
        stored: count(plan.append.len()),
        duplicates: plan.duplicates,
        quarantined: count(plan.quarantine.len()),
        anomalies_dropped: 0,
    }
}

/// A count within one batch, bounded by `proto::limits::UPLOAD_BATCH_RECORDS_MAX` plus the
/// held records.
fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Quarantined records, records that moved no money, and gaps still open, for finance.
pub async fn anomalies<S: Store>(store: &S) -> Result<Vec<Anomaly>, StoreError> {
    let mut transaction = store.begin(Mode::Read).await?;
    let result = async {
        let mut anomalies = transaction.anomaly_rows().await?;
        for gap in transaction.held_gaps().await? {
            anomalies.push(gap_anomaly(gap)?);
        }
        Ok(anomalies)
    }
    .await;
    finish(transaction, result).await
}

/// The gap before a kiosk's first held record.
fn gap_anomaly(gap: HeldGap) -> Result<Anomaly, StoreError> {
    let from = gap.last_stored.map_or(Seq::FIRST, Seq::next);
    let to = gap
        .first_held
        .previous()
        .ok_or_else(|| StoreError::Corrupt("a record held at seq 1".to_owned()))?;
    Ok(Anomaly {
        device: gap.device,
        seq: Some(from),
        reason: AnomalyReason::Gap,
        detail: format!("seq {from} to {to} missing; later records held until they arrive"),
        evidence: None,
    })
}
