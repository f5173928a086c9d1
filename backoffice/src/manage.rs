//! The rules of the changes back-office users make (accounts, money, pupils, tariffs, services,
//! staff), shared by the HTTP API and the CLI so both accept and refuse the same things. Who may
//! make a change is the caller's business; what a valid change is, is decided here.

use proto::limits::{DIETARY_FLAGS_MAX, MEAL_PRICE_CENTS_MAX, OVERDRAFT_FLOOR_CENTS_MIN};
use proto::record::TopUpMethod;
use proto::snapshot::{Pupil, Service, StaffCredential, Tariff};
use proto::{AccountId, Cents, SiteId, StaffId, Text, Timestamp};

use crate::store::{Operation, OperationKind, Store, StoreError};
use crate::users::hash_pin;

/// The largest top-up at the back-office counter: 5,000.00 €.
pub const COUNTER_TOP_UP_CENTS_MAX: i64 = 500_000;

/// The largest adjustment either way: 5,000.00 €.
pub const ADJUSTMENT_CENTS_MAX: i64 = 500_000;

/// The largest online payment: 1,000.00 €.
pub const ONLINE_PAYMENT_CENTS_MAX: i64 = 100_000;

/// A change that breaks a rule; nothing was written.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

fn in_range(
    what: &str,
    amount: Cents,
    range: std::ops::RangeInclusive<i64>,
) -> Result<(), Invalid> {
    if range.contains(&amount.get()) {
        return Ok(());
    }
    Err(Invalid(format!(
        "{what} {} outside {}..={} cents",
        amount.get(),
        range.start(),
        range.end()
    )))
}

/// An overdraft floor is zero or down to [`OVERDRAFT_FLOOR_CENTS_MIN`].
pub fn check_overdraft_floor(floor: Cents) -> Result<(), Invalid> {
    in_range("overdraft floor", floor, OVERDRAFT_FLOOR_CENTS_MIN..=0)
}

/// Opens the account, or changes the floor of an existing one; true when it was opened. The
/// floor must have passed [`check_overdraft_floor`].
pub async fn save_account<S: Store>(
    store: &S,
    account: &AccountId,
    floor: Cents,
    at: Timestamp,
) -> Result<bool, StoreError> {
    match store.add_account(account, floor, at).await {
        Ok(()) => Ok(true),
        Err(StoreError::AlreadyExists { .. }) => {
            store.set_overdraft_floor(account, floor).await?;
            Ok(false)
        }
        Err(error) => Err(error),
    }
}

/// Money paid in at the counter: 1 cent to [`COUNTER_TOP_UP_CENTS_MAX`].
pub fn top_up(
    account: AccountId,
    amount: Cents,
    method: TopUpMethod,
    reference: Option<Text>,
    user: String,
    at: Timestamp,
) -> Result<Operation, Invalid> {
    in_range("top-up", amount, 1..=COUNTER_TOP_UP_CENTS_MAX)?;
    Ok(Operation {
        kind: OperationKind::TopUp { method, reference },
        account,
        amount,
        user,
        at,
    })
}

/// A correction either way, up to [`ADJUSTMENT_CENTS_MAX`], never zero, always with a reason.
pub fn adjustment(
    account: AccountId,
    amount: Cents,
    reason: Text,
    user: String,
    at: Timestamp,
) -> Result<Operation, Invalid> {
    in_range(
        "adjustment",
        amount,
        -ADJUSTMENT_CENTS_MAX..=ADJUSTMENT_CENTS_MAX,
    )?;
    if amount == Cents::ZERO {
        return Err(Invalid("an adjustment of 0 changes nothing".to_owned()));
    }
    Ok(Operation {
        kind: OperationKind::Adjustment { reason },
        account,
        amount,
        user,
        at,
    })
}

/// A payment made online: 1 cent to [`ONLINE_PAYMENT_CENTS_MAX`].
pub fn online_payment(
    account: AccountId,
    amount: Cents,
    reference: Text,
    user: String,
    at: Timestamp,
) -> Result<Operation, Invalid> {
    in_range("payment", amount, 1..=ONLINE_PAYMENT_CENTS_MAX)?;
    Ok(Operation {
        kind: OperationKind::OnlinePayment { reference },
        account,
        amount,
        user,
        at,
    })
}

/// A pupil has at most [`DIETARY_FLAGS_MAX`] dietary flags and stays at the site they were
/// enrolled at (`stored_site`, if they exist).
pub fn check_pupil(
    site: &SiteId,
    pupil: &Pupil,
    stored_site: Option<&SiteId>,
) -> Result<(), Invalid> {
    if pupil.dietary.len() > DIETARY_FLAGS_MAX {
        return Err(Invalid(format!(
            "at most {DIETARY_FLAGS_MAX} dietary flags"
        )));
    }
    if stored_site.is_some_and(|stored| stored != site) {
        return Err(Invalid(
            "a pupil stays at their site; enrol them anew".to_owned(),
        ));
    }
    Ok(())
}

/// A meal costs 0 to [`MEAL_PRICE_CENTS_MAX`].
pub fn check_tariff(tariff: &Tariff) -> Result<(), Invalid> {
    in_range("price", tariff.price, 0..=MEAL_PRICE_CENTS_MAX)
}

/// A service ends after it starts, on at least one weekday.
pub fn check_service(service: &Service) -> Result<(), Invalid> {
    if service.end <= service.start || service.weekdays.is_empty() {
        return Err(Invalid(
            "a service ends after it starts, on at least one weekday".to_owned(),
        ));
    }
    Ok(())
}

/// A staff member with the Argon2 hash of their PIN (4 to 8 digits). Slow on purpose: an async
/// caller runs it on a blocking thread.
pub fn staff_credential(id: StaffId, name: Text, pin: &str) -> Result<StaffCredential, Invalid> {
    let pin_hash = hash_pin(pin).map_err(|error| Invalid(error.to_string()))?;
    let pin_hash = Text::parse(&pin_hash).map_err(|error| Invalid(error.to_string()))?;
    Ok(StaffCredential { id, name, pin_hash })
}
