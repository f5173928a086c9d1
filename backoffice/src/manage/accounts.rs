//! Accounts and the money moved at the back-office: opening an account and its overdraft floor,
//! counter top-ups, adjustments by finance, online payments credited once per reference, and
//! what staff and finance read of an account.

use proto::limits::OVERDRAFT_FLOOR_CENTS_MIN;
use proto::record::TopUpMethod;
use proto::snapshot::AccountState;
use proto::{AccountId, Cents, SnapshotVersion, Text, Timestamp};

use super::{Actor, COUNTER, FINANCE, ManageError, PAYMENTS, READERS, in_range, in_transaction};
use crate::limits::{
    ADJUSTMENT_CENTS_MAX, COUNTER_TOP_UP_CENTS_MAX, HISTORY_LINES_MAX, ONLINE_PAYMENT_CENTS_MAX,
};
use crate::store::{
    AccountLine, ChainRows, FinanceRows, Mode, Operation, OperationKind, PeopleRows, PupilEntry,
    Stamp, Store, StoreError, Transaction,
};

/// What a money operation did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Moved {
    pub balance: Cents,
    pub version: SnapshotVersion,
    /// The same online payment was credited before: nothing changed this time.
    pub replayed: bool,
}

/// An account as staff and finance see it: its pupils the viewer may see, and its latest lines.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountView {
    pub state: AccountState,
    pub pupils: Vec<PupilEntry>,
    pub history: Vec<AccountLine>,
}

/// An overdraft floor is zero or down to [`OVERDRAFT_FLOOR_CENTS_MIN`].
pub fn check_overdraft_floor(floor: Cents) -> Result<(), ManageError> {
    in_range("overdraft floor", floor, OVERDRAFT_FLOOR_CENTS_MIN..=0)
}

/// Money paid in at the counter: 1 cent to [`COUNTER_TOP_UP_CENTS_MAX`].
pub fn check_top_up(amount: Cents) -> Result<(), ManageError> {
    in_range("top-up", amount, 1..=COUNTER_TOP_UP_CENTS_MAX)
}

/// Opens the account, or changes the floor of an existing one; true when it was opened.
pub async fn save_account<S: Store>(
    store: &S,
    actor: &Actor,
    account: &AccountId,
    floor: Cents,
    at: Timestamp,
) -> Result<(AccountState, bool), ManageError> {
    actor.require(COUNTER)?;
    check_overdraft_floor(floor)?;
    in_transaction(store, Mode::Write, async |transaction| {
        let opened = match transaction.insert_account(account, floor, at).await {
            Ok(()) => true,
            Err(StoreError::AlreadyExists { .. }) => {
                actor.may_attach_account(transaction, account).await?;
                transaction.set_overdraft_floor(account, floor).await?;
                false
            }
            Err(error) => return Err(error.into()),
        };
        transaction
            .take_version(&[Stamp::Accounts(vec![account.clone()])])
            .await?;
        let state = existing(transaction.account(account).await?, account)?;
        Ok((state, opened))
    })
    .await
}

/// An account's balance and floor.
pub async fn account<S: Store>(
    store: &S,
    actor: &Actor,
    account: &AccountId,
) -> Result<AccountState, ManageError> {
    Ok(view(store, actor, account, 0).await?.state)
}

/// An account, the pupils of it the actor may see, and its latest `history_lines` lines.
pub async fn view<S: Store>(
    store: &S,
    actor: &Actor,
    account: &AccountId,
    history_lines: usize,
) -> Result<AccountView, ManageError> {
    actor.require(READERS)?;
    in_transaction(store, Mode::Read, async |transaction| {
        let state = existing(transaction.account(account).await?, account)?;
        let pupils = actor.reach_account(transaction, account).await?;
        let history = if history_lines == 0 {
            Vec::new()
        } else {
            let lines = history_lines.min(HISTORY_LINES_MAX);
            transaction.account_history(account, lines).await?
        };
        Ok(AccountView {
            state,
            pupils,
            history,
        })
    })
    .await
}

/// Money paid in at the counter by staff of one of the account's pupils' site (or admin).
pub async fn top_up<S: Store>(
    store: &S,
    actor: &Actor,
    account: &AccountId,
    amount: Cents,
    method: TopUpMethod,
    reference: Option<Text>,
    at: Timestamp,
) -> Result<Moved, ManageError> {
    actor.require(COUNTER)?;
    check_top_up(amount)?;
    let kind = OperationKind::TopUp { method, reference };
    operate(store, actor, kind, account, amount, at).await
}

/// A correction either way by finance, up to [`ADJUSTMENT_CENTS_MAX`], never zero, always with
/// a reason.
pub async fn adjust<S: Store>(
    store: &S,
    actor: &Actor,
    account: &AccountId,
    amount: Cents,
    reason: Text,
    at: Timestamp,
) -> Result<Moved, ManageError> {
    actor.require(FINANCE)?;
    in_range(
        "adjustment",
        amount,
        -ADJUSTMENT_CENTS_MAX..=ADJUSTMENT_CENTS_MAX,
    )?;
    if amount == Cents::ZERO {
        return Err(ManageError::Invalid(
            "an adjustment of 0 changes nothing".to_owned(),
        ));
    }
    let kind = OperationKind::Adjustment { reason };
    operate(store, actor, kind, account, amount, at).await
}

/// A payment made online, 1 cent to [`ONLINE_PAYMENT_CENTS_MAX`], credited once per reference.
pub async fn credit_payment<S: Store>(
    store: &S,
    actor: &Actor,
    reference: Text,
    account: &AccountId,
    amount: Cents,
    at: Timestamp,
) -> Result<Moved, ManageError> {
    actor.require(PAYMENTS)?;
    in_range("payment", amount, 1..=ONLINE_PAYMENT_CENTS_MAX)?;
    let kind = OperationKind::OnlinePayment { reference };
    operate(store, actor, kind, account, amount, at).await
}

/// Moves `amount` on `account` by an operation of `kind`, recorded under the actor's name, once
/// the actor reaches the account.
async fn operate<S: Store>(
    store: &S,
    actor: &Actor,
    kind: OperationKind,
    account: &AccountId,
    amount: Cents,
    at: Timestamp,
) -> Result<Moved, ManageError> {
    let operation = Operation {
        kind,
        account: account.clone(),
        amount,
        user: actor.name.clone(),
        at,
    };
    let moved = in_transaction(store, Mode::Write, async |transaction| {
        actor.reach_account(transaction, &operation.account).await?;
        Ok::<_, ManageError>(apply(transaction, &operation).await?)
    })
    .await?;
    tracing::info!(
        account = %operation.account,
        amount = operation.amount.get(),
        user = operation.user,
        replayed = moved.replayed,
        "money moved"
    );
    Ok(moved)
}

/// Moves money by a back-office operation inside `transaction`, taking the snapshot version
/// last. An online payment whose reference was credited before changes nothing (and must name
/// the same account and amount).
pub async fn apply<X: Transaction>(
    transaction: &mut X,
    operation: &Operation,
) -> Result<Moved, StoreError> {
    let account = &operation.account;
    let Some(balance) = transaction.lock_account(account).await? else {
        return Err(StoreError::NotFound {
            what: "account",
            id: account.to_string(),
        });
    };
    if let Some(reference) = operation.kind.payment_reference()
        && let Some((earlier_account, earlier_amount)) = transaction.payment(reference).await?
    {
        if earlier_account != *account || earlier_amount != operation.amount {
            return Err(StoreError::AlreadyExists {
                what: "payment reference with another account or amount",
                id: operation.kind.detail(),
            });
        }
        return Ok(Moved {
            balance: Cents::new(balance),
            version: transaction.current_version().await?,
            replayed: true,
        });
    }
    let new_balance = balance
        .checked_add(operation.amount.get())
        .ok_or_else(|| StoreError::Refused("the balance would leave its range".to_owned()))?;
    transaction
        .set_balances(&[(account.clone(), new_balance)].into_iter().collect())
        .await?;
    match transaction.insert_operation(operation).await {
        // Another instance credited the same payment first: the provider retries and then
        // gets the replayed answer.
        Err(StoreError::Constraint(_)) if operation.kind.payment_reference().is_some() => {
            return Err(StoreError::Unavailable(
                "the same payment is being credited concurrently".to_owned(),
            ));
        }
        other => other?,
    }
    let version = transaction
        .take_version(&[Stamp::Accounts(vec![account.clone()])])
        .await?;
    Ok(Moved {
        balance: Cents::new(new_balance),
        version,
        replayed: false,
    })
}

fn existing(state: Option<AccountState>, account: &AccountId) -> Result<AccountState, StoreError> {
    state.ok_or_else(|| StoreError::NotFound {
        what: "account",
        id: account.to_string(),
    })
}
