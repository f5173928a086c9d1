//! Money moved at the back-office (`operations`), stored reconciliations of service days and
//! the voids they propose.

use std::future::Future;

use proto::record::TopUpMethod;
use proto::{
    AccountId, Cents, DeviceId, PupilId, Seq, ServiceDate, ServiceId, SiteId, Text, Timestamp,
};
use serde::{Deserialize, Serialize};

use super::{
    corrupt, parse_account, parse_pupil, parse_seq, parse_service_date, parse_site,
    parse_timestamp, seq_column,
};
use crate::store::StoreError;
use crate::store::sql::{Row, Sql, values};

/// Money moved by a back-office user rather than by a kiosk's record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Operation {
    pub kind: OperationKind,
    pub account: AccountId,
    /// Positive credits the account, negative debits it (adjustments only).
    pub amount: Cents,
    /// The user who did it.
    pub user: String,
    pub at: Timestamp,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OperationKind {
    /// Money paid in at the back-office counter.
    TopUp {
        method: TopUpMethod,
        reference: Option<Text>,
    },
    /// A correction by finance; never without a reason.
    Adjustment { reason: Text },
    /// A payment made online, credited once per provider reference.
    OnlinePayment { reference: Text },
}

impl OperationKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            OperationKind::TopUp { .. } => "top_up",
            OperationKind::Adjustment { .. } => "adjustment",
            OperationKind::OnlinePayment { .. } => "online_payment",
        }
    }

    /// What the operation row keeps beside the amount.
    pub fn detail(&self) -> String {
        match self {
            OperationKind::TopUp { method, reference } => {
                let method = match method {
                    TopUpMethod::Cash => "cash",
                    TopUpMethod::Cheque => "cheque",
                };
                match reference {
                    Some(reference) => format!("{method}: {reference}"),
                    None => method.to_owned(),
                }
            }
            OperationKind::Adjustment { reason } => reason.to_string(),
            OperationKind::OnlinePayment { reference } => reference.to_string(),
        }
    }

    pub fn payment_reference(&self) -> Option<&str> {
        match self {
            OperationKind::OnlinePayment { reference } => Some(reference.as_str()),
            _ => None,
        }
    }
}

/// A back-office operation as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredOperation {
    pub id: i64,
    /// `top_up`, `adjustment` or `online_payment`.
    pub kind: String,
    pub account: AccountId,
    pub amount: Cents,
    /// The method and reference of a top-up, the reason of an adjustment, the provider's
    /// reference of a payment.
    pub detail: String,
    pub user: String,
    pub at: Timestamp,
}

/// A stored reconciliation of one service day, for all sites (`site` none) or one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SavedReconciliation {
    pub date: ServiceDate,
    pub site: Option<SiteId>,
    /// The report as JSON (`crate::reconcile::Report`).
    pub report: String,
    pub run_at: Timestamp,
    pub run_by: String,
    /// Once set, the reconciliation never changes again.
    pub signed_off_by: Option<String>,
    pub signed_off_at: Option<Timestamp>,
}

/// What finance decided about a proposed void.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum VoidStatus {
    Pending,
    Approved,
    Rejected,
}

impl VoidStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            VoidStatus::Pending => "pending",
            VoidStatus::Approved => "approved",
            VoidStatus::Rejected => "rejected",
        }
    }

    pub fn parse(text: &str) -> Option<VoidStatus> {
        [
            VoidStatus::Pending,
            VoidStatus::Approved,
            VoidStatus::Rejected,
        ]
        .into_iter()
        .find(|status| status.as_str() == text)
    }
}

/// A meal charged twice for the same pupil and service (at two kiosks): the later meal is
/// proposed for a void, which finance approves (the account is credited back by an
/// adjustment on the next open day) or rejects.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ProposedVoid {
    /// Assigned by the store; 0 before it is saved.
    pub id: i64,
    pub date: ServiceDate,
    /// The meal proposed for the void.
    pub device: DeviceId,
    pub seq: Seq,
    /// The earlier meal of the same pupil and service, which stands.
    pub kept_device: DeviceId,
    pub kept_seq: Seq,
    pub account: AccountId,
    pub pupil: PupilId,
    pub service: ServiceId,
    /// The price charged by the meal proposed for the void.
    pub amount: Cents,
    pub status: VoidStatus,
    pub decided_by: Option<String>,
    pub decided_at: Option<Timestamp>,
    /// The day the correction of an approved void belongs to.
    pub correction_date: Option<ServiceDate>,
}

/// The columns [`read_proposed_void`] reads, in its order.
const PROPOSED_VOID_COLUMNS: &str = "id, service_date, device, seq, kept_device, kept_seq, \
    account, pupil, service, amount, status, decided_by, decided_at, correction_date";

pub trait FinanceRows: Sql {
    /// The account and amount an online payment reference was credited with, if it was.
    fn payment(
        &mut self,
        reference: &str,
    ) -> impl Future<Output = Result<Option<(AccountId, Cents)>, StoreError>> + Send {
        self.query_optional(
            "SELECT account, amount FROM operations WHERE payment_reference = $1",
            values![reference],
            |row| Ok((parse_account(&row.text(0)?)?, Cents::new(row.int(1)?))),
        )
    }

    /// Writes an operation (its effect on the balance is the caller's to write).
    fn insert_operation(
        &mut self,
        operation: &Operation,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.write(
            "INSERT INTO operations
             (kind, account, amount, detail, payment_reference, user_name, at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            values![
                operation.kind.as_str(),
                operation.account.as_str(),
                operation.amount.get(),
                operation.kind.detail(),
                operation.kind.payment_reference(),
                operation.user.as_str(),
                operation.at.unix_ms()
            ],
        )
    }

    /// Back-office operations done in `[from, to)`, in the order they were done.
    fn operations_between(
        &mut self,
        from: Timestamp,
        to: Timestamp,
    ) -> impl Future<Output = Result<Vec<StoredOperation>, StoreError>> + Send {
        self.query(
            "SELECT id, kind, account, amount, detail, user_name, at FROM operations
             WHERE at >= $1 AND at < $2 ORDER BY id",
            values![from.unix_ms(), to.unix_ms()],
            |row| {
                Ok(StoredOperation {
                    id: row.int(0)?,
                    kind: row.text(1)?,
                    account: parse_account(&row.text(2)?)?,
                    amount: Cents::new(row.int(3)?),
                    detail: row.text(4)?,
                    user: row.text(5)?,
                    at: parse_timestamp(row.int(6)?)?,
                })
            },
        )
    }

    fn reconciliation(
        &mut self,
        date: ServiceDate,
        site: Option<&SiteId>,
    ) -> impl Future<Output = Result<Option<SavedReconciliation>, StoreError>> + Send {
        self.query_optional(
            "SELECT service_date, site, report, run_at, run_by, signed_off_by, signed_off_at
             FROM reconciliations WHERE service_date = $1 AND site = $2",
            values![date.to_string(), scope_column(site)],
            read_reconciliation,
        )
    }

    /// Stores a run of a reconciliation, replacing an earlier run of the same day and scope.
    fn upsert_reconciliation(
        &mut self,
        saved: &SavedReconciliation,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.write(
            "INSERT INTO reconciliations (service_date, site, report, run_at, run_by)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (service_date, site) DO UPDATE SET
                report = $3, run_at = $4, run_by = $5",
            values![
                saved.date.to_string(),
                scope_column(saved.site.as_ref()),
                saved.report.as_str(),
                saved.run_at.unix_ms(),
                saved.run_by.as_str()
            ],
        )
    }

    fn sign_off(
        &mut self,
        date: ServiceDate,
        site: Option<&SiteId>,
        user: &str,
        at: Timestamp,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        async move {
            self.update_existing(
                "UPDATE reconciliations SET signed_off_by = $1, signed_off_at = $2
                 WHERE service_date = $3 AND site = $4",
                values![user, at.unix_ms(), date.to_string(), scope_column(site)],
                "reconciliation",
                &date.to_string(),
            )
            .await
        }
    }

    /// Adds proposals not proposed before (one per voided meal); earlier ones keep their state.
    fn insert_proposed_voids(
        &mut self,
        proposals: &[ProposedVoid],
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        async move {
            self.write_rows(
                "INSERT INTO proposed_voids (service_date, device, seq, kept_device, kept_seq,
                    account, pupil, service, amount, status)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'pending')
                 ON CONFLICT (device, seq) DO NOTHING",
                proposals,
                |proposal| {
                    values![
                        proposal.date.to_string(),
                        proposal.device.as_str(),
                        seq_column(proposal.seq),
                        proposal.kept_device.as_str(),
                        seq_column(proposal.kept_seq),
                        proposal.account.as_str(),
                        proposal.pupil.as_str(),
                        proposal.service.as_str(),
                        proposal.amount.get()
                    ]
                },
            )
            .await
        }
    }

    /// Proposed voids of one day, or of every day, by id.
    fn proposed_voids(
        &mut self,
        date: Option<ServiceDate>,
    ) -> impl Future<Output = Result<Vec<ProposedVoid>, StoreError>> + Send {
        async move {
            let sql = format!(
                "SELECT {PROPOSED_VOID_COLUMNS} FROM proposed_voids
                 WHERE CAST($1 AS TEXT) IS NULL OR service_date = $1 ORDER BY id"
            );
            self.query(
                &sql,
                values![date.map(|date| date.to_string())],
                read_proposed_void,
            )
            .await
        }
    }

    fn proposed_void(
        &mut self,
        id: i64,
    ) -> impl Future<Output = Result<Option<ProposedVoid>, StoreError>> + Send {
        async move {
            let sql = format!("SELECT {PROPOSED_VOID_COLUMNS} FROM proposed_voids WHERE id = $1");
            self.query_optional(&sql, values![id], read_proposed_void)
                .await
        }
    }

    /// How many of the day's proposed voids still wait for a decision.
    fn pending_voids(
        &mut self,
        date: ServiceDate,
    ) -> impl Future<Output = Result<i64, StoreError>> + Send {
        self.query_one(
            "SELECT COUNT(*) FROM proposed_voids WHERE service_date = $1 AND status = 'pending'",
            values![date.to_string()],
            |row| row.int(0),
        )
    }

    /// Records finance's decision on a proposed void.
    fn decide_void(
        &mut self,
        id: i64,
        status: VoidStatus,
        user: &str,
        at: Timestamp,
        correction_date: Option<ServiceDate>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        async move {
            self.update_existing(
                "UPDATE proposed_voids SET status = $1, decided_by = $2, decided_at = $3,
                    correction_date = $4
                 WHERE id = $5",
                values![
                    status.as_str(),
                    user,
                    at.unix_ms(),
                    correction_date.map(|date| date.to_string()),
                    id
                ],
                "proposed void",
                &id.to_string(),
            )
            .await
        }
    }
}

impl<T: Sql> FinanceRows for T {}

/// The `site` column of a reconciliation: empty for all sites.
fn scope_column(site: Option<&SiteId>) -> &str {
    site.map_or("", SiteId::as_str)
}

fn read_reconciliation(row: &dyn Row) -> Result<SavedReconciliation, StoreError> {
    let site = row.text(1)?;
    Ok(SavedReconciliation {
        date: parse_service_date(&row.text(0)?)?,
        site: if site.is_empty() {
            None
        } else {
            Some(parse_site(&site)?)
        },
        report: row.text(2)?,
        run_at: parse_timestamp(row.int(3)?)?,
        run_by: row.text(4)?,
        signed_off_by: row.opt_text(5)?,
        signed_off_at: row.opt_int(6)?.map(parse_timestamp).transpose()?,
    })
}

fn read_proposed_void(row: &dyn Row) -> Result<ProposedVoid, StoreError> {
    let device = |text: String| DeviceId::parse(&text).map_err(|error| corrupt("device", error));
    let status = row.text(10)?;
    Ok(ProposedVoid {
        id: row.int(0)?,
        date: parse_service_date(&row.text(1)?)?,
        device: device(row.text(2)?)?,
        seq: parse_seq(row.int(3)?)?,
        kept_device: device(row.text(4)?)?,
        kept_seq: parse_seq(row.int(5)?)?,
        account: parse_account(&row.text(6)?)?,
        pupil: parse_pupil(&row.text(7)?)?,
        service: ServiceId::parse(&row.text(8)?).map_err(|error| corrupt("service", error))?,
        amount: Cents::new(row.int(9)?),
        status: VoidStatus::parse(&status)
            .ok_or_else(|| corrupt("proposed void status", &status))?,
        decided_by: row.opt_text(11)?,
        decided_at: row.opt_int(12)?.map(parse_timestamp).transpose()?,
        correction_date: row
            .opt_text(13)?
            .map(|date| parse_service_date(&date))
            .transpose()?,
    })
}
