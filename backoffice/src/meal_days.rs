//! Meals and revenue per site and service day, kept as running totals that ingest updates in
//! the same transaction as the records, so the finance dashboard reads a few hundred rows
//! instead of a year of records.
//!
//! A meal counts on its service day; a void of a meal takes it back from that same day, so a
//! day's totals are what was finally charged for it.

use std::collections::BTreeMap;

use proto::record::Meal;
use proto::{Record, RecordBody, Seq, ServiceDate};

pub use crate::store::rows::chain::DayChange;
use crate::store::rows::chain::Movement;

/// The changes `append` makes to its site's days. `movements` are the batch's applied
/// movements: a void counts only if it reversed money. `stored_meal` reads a meal stored
/// before the batch, for voids of earlier records.
pub fn changes(
    append: &[Record],
    movements: &[Movement],
    stored_meal: impl Fn(Seq) -> Option<Meal>,
) -> BTreeMap<ServiceDate, DayChange> {
    let mut days: BTreeMap<ServiceDate, DayChange> = BTreeMap::new();
    let mut batch_meals = BTreeMap::new();
    for record in append {
        if let RecordBody::Meal(meal) = &record.payload().body {
            let day = days.entry(meal.service_date).or_default();
            day.meals += 1;
            day.revenue_cents += meal.price.get();
            batch_meals.insert(record.seq(), meal);
        }
    }
    for movement in movements {
        let Some(voided) = movement.reverses else {
            continue;
        };
        let meal = match batch_meals.get(&voided) {
            Some(meal) => Some((*meal).clone()),
            None => stored_meal(voided),
        };
        if let Some(meal) = meal {
            let day = days.entry(meal.service_date).or_default();
            day.meals -= 1;
            day.revenue_cents -= meal.price.get();
        }
    }
    days
}

/// The meal in a stored payload, if it is one.
pub fn meal_of(payload: &str) -> Option<Meal> {
    match proto::record::Payload::parse(payload).ok()?.body {
        RecordBody::Meal(meal) => Some(meal),
        _ => None,
    }
}

/// Meals and revenue per site and service day, from `from` to `to` inclusive; finance and city
/// IT.
pub async fn days<S: crate::store::Store>(
    store: &S,
    actor: &crate::manage::Actor,
    from: ServiceDate,
    to: ServiceDate,
) -> Result<Vec<crate::store::MealDay>, crate::manage::ManageError> {
    use crate::store::PeopleRows as _;
    actor.require(crate::manage::FINANCE)?;
    Ok(store
        .begin(crate::store::Mode::Single)
        .await?
        .meal_days(from, to)
        .await?)
}
