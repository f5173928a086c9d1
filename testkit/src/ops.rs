//! What the tests do to a back-office, under short names: each call is one use case (as city IT
//! at the server, or as the user named) or one read in a transaction of its own, and answers
//! with the store's error, so a test reads as the story it tells.

use std::future::Future;

use backoffice::ingest::IngestOutcome;
use backoffice::kiosks::NonceOutcome;
use backoffice::manage::accounts::Moved;
use backoffice::manage::{Actor, ManageError};
use backoffice::store::{
    Anomaly, BalanceMismatch, ChainRows, Device, DeviceEntry, DeviceRows, FinanceRows, KioskStatus,
    LedgerTotals, Mode, Operation, PeopleRows, ProposedVoid, PupilEntry, SavedReconciliation,
    ServedMeal, Stamp, Store, StoreError, StoredOperation, StoredRecord, finish,
};
use backoffice::users::{Role, User};
use proto::api::KioskReport;
use proto::snapshot::{
    AccountState, Card, CardHolder, KioskSettings, Pupil, Service, Snapshot, StaffCredential,
    Tariff,
};
use proto::{
    AccountId, CardUid, Cents, DeviceId, Seq, ServiceDate, SignedRecord, SiteId, SnapshotVersion,
    Timestamp,
};

/// City IT at the server: every right.
pub fn operator() -> Actor {
    Actor::operator("test")
}

/// A finance user named `name`.
pub fn finance(name: &str) -> Actor {
    Actor {
        name: name.to_owned(),
        role: Role::Finance,
        site: None,
    }
}

/// A use case's refusal as the store's error a test expects.
fn stored<T>(result: Result<T, ManageError>) -> Result<T, StoreError> {
    result.map_err(|error| match error {
        ManageError::Store(error) => error,
        refused => StoreError::Refused(refused.to_string()),
    })
}

pub trait Ops: Store {
    fn add_device(
        &self,
        device: Device,
        at: Timestamp,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        async move { stored(backoffice::manage::devices::add(self, &operator(), &device, at).await) }
    }

    fn revoke_device(
        &self,
        device: &DeviceId,
        at: Timestamp,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        async move { stored(backoffice::manage::devices::revoke(self, &operator(), device, at).await) }
    }

    fn device(
        &self,
        device: &DeviceId,
    ) -> impl Future<Output = Result<Option<Device>, StoreError>> + Send {
        async move { self.begin(Mode::Single).await?.device(device).await }
    }

    fn devices(&self) -> impl Future<Output = Result<Vec<DeviceEntry>, StoreError>> + Send {
        async move { self.begin(Mode::Single).await?.devices().await }
    }

    fn remember_nonce(
        &self,
        device: &DeviceId,
        nonce: &str,
        request_at: Timestamp,
        now: Timestamp,
    ) -> impl Future<Output = Result<NonceOutcome, StoreError>> + Send {
        backoffice::kiosks::remember_nonce(self, device, nonce, request_at, now)
    }

    /// Opens an account with a zero balance (a second time: [`StoreError::AlreadyExists`]).
    fn add_account(
        &self,
        account: &AccountId,
        overdraft_floor: Cents,
        at: Timestamp,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        async move {
            let mut transaction = self.begin(Mode::Write).await?;
            let result = async {
                transaction
                    .insert_account(account, overdraft_floor, at)
                    .await?;
                transaction
                    .take_version(&[Stamp::Accounts(vec![account.clone()])])
                    .await
                    .map(drop)
            }
            .await;
            finish(transaction, result).await
        }
    }

    fn set_overdraft_floor(
        &self,
        account: &AccountId,
        overdraft_floor: Cents,
    ) -> impl Future<Output = Result<SnapshotVersion, StoreError>> + Send {
        async move {
            let mut transaction = self.begin(Mode::Write).await?;
            let result = async {
                transaction
                    .set_overdraft_floor(account, overdraft_floor)
                    .await?;
                transaction
                    .take_version(&[Stamp::Accounts(vec![account.clone()])])
                    .await
            }
            .await;
            finish(transaction, result).await
        }
    }

    fn balance(
        &self,
        account: &AccountId,
    ) -> impl Future<Output = Result<Option<Cents>, StoreError>> + Send {
        async move { Ok(self.account(account).await?.map(|state| state.balance)) }
    }

    fn account(
        &self,
        account: &AccountId,
    ) -> impl Future<Output = Result<Option<AccountState>, StoreError>> + Send {
        async move { PeopleRows::account(&mut self.begin(Mode::Single).await?, account).await }
    }

    fn ingest(
        &self,
        device: &Device,
        batch: Vec<SignedRecord>,
        received_at: Timestamp,
    ) -> impl Future<Output = Result<IngestOutcome, StoreError>> + Send {
        backoffice::ingest::ingest(self, device, batch, received_at)
    }

    fn record_kiosk_report(
        &self,
        device: &DeviceId,
        report: &KioskReport,
        received_at: Timestamp,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        async move {
            self.begin(Mode::Single)
                .await?
                .save_kiosk_report(device, report, received_at)
                .await
        }
    }

    fn kiosk_statuses(&self) -> impl Future<Output = Result<Vec<KioskStatus>, StoreError>> + Send {
        async move { self.begin(Mode::Single).await?.kiosk_statuses().await }
    }

    /// The kiosk's stored chain, in `seq` order.
    fn records(
        &self,
        device: &DeviceId,
    ) -> impl Future<Output = Result<Vec<StoredRecord>, StoreError>> + Send {
        self.record_range(device, Seq::FIRST, None)
    }

    fn record_range(
        &self,
        device: &DeviceId,
        from: Seq,
        to: Option<Seq>,
    ) -> impl Future<Output = Result<Vec<StoredRecord>, StoreError>> + Send {
        async move {
            self.begin(Mode::Single)
                .await?
                .record_range(device, from, to)
                .await
        }
    }

    fn anomalies(&self) -> impl Future<Output = Result<Vec<Anomaly>, StoreError>> + Send {
        backoffice::ingest::anomalies(self)
    }

    fn balance_mismatches(
        &self,
    ) -> impl Future<Output = Result<Vec<BalanceMismatch>, StoreError>> + Send {
        async move { self.begin(Mode::Single).await?.balance_mismatches().await }
    }

    fn save_pupil(
        &self,
        site: &SiteId,
        pupil: &Pupil,
    ) -> impl Future<Output = Result<SnapshotVersion, StoreError>> + Send {
        async move {
            stored(backoffice::manage::people::save_pupil(self, &operator(), site, pupil).await)
        }
    }

    /// A staff member with a PIN already hashed.
    fn save_staff(
        &self,
        site: &SiteId,
        staff: &StaffCredential,
    ) -> impl Future<Output = Result<SnapshotVersion, StoreError>> + Send {
        async move {
            let mut transaction = self.begin(Mode::Write).await?;
            let result = async {
                transaction.upsert_staff(site, staff).await?;
                transaction
                    .take_version(&[Stamp::Staff(staff.id.clone())])
                    .await
            }
            .await;
            finish(transaction, result).await
        }
    }

    fn assign_card(
        &self,
        card: &Card,
    ) -> impl Future<Output = Result<SnapshotVersion, StoreError>> + Send {
        async move { stored(backoffice::manage::people::assign_card(self, &operator(), card).await) }
    }

    fn block_card(
        &self,
        uid: &CardUid,
    ) -> impl Future<Output = Result<SnapshotVersion, StoreError>> + Send {
        async move { stored(backoffice::manage::people::block_card(self, &operator(), uid).await) }
    }

    fn replace_card(
        &self,
        old: &CardUid,
        new: &CardUid,
    ) -> impl Future<Output = Result<SnapshotVersion, StoreError>> + Send {
        async move {
            stored(backoffice::manage::people::replace_card(self, &operator(), old, new).await)
        }
    }

    /// The holder of a card, and whether it is blocked.
    fn card(
        &self,
        uid: &CardUid,
    ) -> impl Future<Output = Result<Option<(CardHolder, bool)>, StoreError>> + Send {
        async move {
            let card = PeopleRows::card(&mut self.begin(Mode::Single).await?, uid).await?;
            Ok(card.map(|card| (card.holder, card.blocked)))
        }
    }

    fn holder_site(
        &self,
        holder: &CardHolder,
    ) -> impl Future<Output = Result<Option<SiteId>, StoreError>> + Send {
        async move { self.begin(Mode::Single).await?.holder_site(holder).await }
    }

    fn save_tariff(
        &self,
        site: &SiteId,
        tariff: &Tariff,
    ) -> impl Future<Output = Result<SnapshotVersion, StoreError>> + Send {
        async move {
            stored(backoffice::manage::sites::save_tariff(self, &operator(), site, tariff).await)
        }
    }

    fn save_service(
        &self,
        site: &SiteId,
        service: &Service,
    ) -> impl Future<Output = Result<SnapshotVersion, StoreError>> + Send {
        async move {
            stored(backoffice::manage::sites::save_service(self, &operator(), site, service).await)
        }
    }

    fn save_kiosk_settings(
        &self,
        site: &SiteId,
        settings: &KioskSettings,
    ) -> impl Future<Output = Result<SnapshotVersion, StoreError>> + Send {
        async move {
            let actor = operator();
            stored(backoffice::manage::sites::save_settings(self, &actor, site, settings).await)
        }
    }

    fn add_user(
        &self,
        user: &User,
        at: Timestamp,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        async move { stored(backoffice::manage::users::add(self, &operator(), user, at).await) }
    }

    fn user(&self, name: &str) -> impl Future<Output = Result<Option<User>, StoreError>> + Send {
        async move { PeopleRows::user(&mut self.begin(Mode::Single).await?, name).await }
    }

    /// Moves money by an operation as given, with no limit but the store's.
    fn apply_operation(
        &self,
        operation: &Operation,
    ) -> impl Future<Output = Result<Moved, StoreError>> + Send {
        async move {
            let mut transaction = self.begin(Mode::Write).await?;
            let result = backoffice::manage::accounts::apply(&mut transaction, operation).await;
            finish(transaction, result).await
        }
    }

    fn snapshot(
        &self,
        site: &SiteId,
        device: Option<&DeviceId>,
        since: Option<SnapshotVersion>,
    ) -> impl Future<Output = Result<Snapshot, StoreError>> + Send {
        backoffice::snapshot::snapshot(self, site, device, since)
    }

    fn ledger_totals(
        &self,
        from: Timestamp,
        to: Timestamp,
    ) -> impl Future<Output = Result<LedgerTotals, StoreError>> + Send {
        async move {
            self.begin(Mode::Single)
                .await?
                .ledger_totals(from, to)
                .await
        }
    }

    fn operations_between(
        &self,
        from: Timestamp,
        to: Timestamp,
    ) -> impl Future<Output = Result<Vec<StoredOperation>, StoreError>> + Send {
        async move {
            self.begin(Mode::Single)
                .await?
                .operations_between(from, to)
                .await
        }
    }

    fn save_reconciliation(
        &self,
        saved: &SavedReconciliation,
        proposals: &[ProposedVoid],
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        backoffice::reconcile::save(self, saved, proposals)
    }

    fn reconciliation(
        &self,
        date: ServiceDate,
        site: Option<&SiteId>,
    ) -> impl Future<Output = Result<Option<SavedReconciliation>, StoreError>> + Send {
        async move {
            self.begin(Mode::Single)
                .await?
                .reconciliation(date, site)
                .await
        }
    }

    /// Signs a day off as finance user `user`.
    fn sign_off_reconciliation(
        &self,
        date: ServiceDate,
        site: Option<&SiteId>,
        user: &str,
        at: Timestamp,
    ) -> impl Future<Output = Result<SavedReconciliation, StoreError>> + Send {
        async move {
            let actor = finance(user);
            backoffice::reconcile::sign_off(self, &actor, date, site, at)
                .await
                .map_err(|error| match error {
                    backoffice::reconcile::ReconcileError::Store(error) => error,
                    other => StoreError::Refused(other.to_string()),
                })
        }
    }

    fn proposed_voids(
        &self,
        date: Option<ServiceDate>,
    ) -> impl Future<Output = Result<Vec<ProposedVoid>, StoreError>> + Send {
        async move { self.begin(Mode::Single).await?.proposed_voids(date).await }
    }

    fn account_pupils(
        &self,
        account: &AccountId,
    ) -> impl Future<Output = Result<Vec<PupilEntry>, StoreError>> + Send {
        async move {
            self.begin(Mode::Single)
                .await?
                .account_pupils(account)
                .await
        }
    }

    fn site_meals(
        &self,
        site: &SiteId,
        date: ServiceDate,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<ServedMeal>, StoreError>> + Send {
        async move {
            self.begin(Mode::Single)
                .await?
                .site_meals(site, date, limit)
                .await
        }
    }
}

impl<S: Store> Ops for S {}
