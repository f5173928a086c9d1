//! A real back-office serving on a free loopback port in front of a fresh SQLite or PostgreSQL
//! database, and a site to serve meals at.

use std::sync::Arc;

use backoffice::store::{Device, Operation, OperationKind, Store};
use proto::record::TopUpMethod;
use proto::snapshot::{
    Card, CardHolder, KioskSettings, Language, LocalTime, Pupil, Service, Tariff, Weekday,
};
use proto::{
    AccountId, BracketId, CardUid, Cents, DeviceId, MealType, PublicKey, PupilId, ServiceId,
    SiteId, Text, Timestamp,
};
use testkit::Ops as _;
pub use testkit::app::TestApp as BackOffice;
pub use testkit::{PostgresDb, SqliteDb};

/// The site every kiosk of these tests belongs to.
pub const SITE: &str = "jaures";

/// The price of lunch for every pupil.
pub const LUNCH_CENTS: i64 = 385;

/// What every account holds before the first meal: 1,000.00 €.
pub const OPENING_BALANCE_CENTS: i64 = 100_000;

/// The back-office of these tests: serving plain HTTP on loopback, its clock at [`now`].
pub async fn serve_backoffice<S: Store>(store: S) -> BackOffice<S> {
    BackOffice::serve(store, None, now()).await
}

/// The back-office serving HTTPS with `tls`, its clock at [`now`].
pub async fn serve_backoffice_tls<S: Store>(
    store: S,
    tls: Arc<rustls::ServerConfig>,
) -> BackOffice<S> {
    BackOffice::serve(store, Some(tls), now()).await
}

pub fn site() -> SiteId {
    SiteId::parse(SITE).expect("a site id")
}

pub fn account(index: usize) -> AccountId {
    AccountId::parse(&format!("A{index:04}")).expect("an account id")
}

pub fn pupil(index: usize) -> PupilId {
    PupilId::parse(&format!("P{index:04}")).expect("a pupil id")
}

/// Pupil `index`'s card.
pub fn card(index: usize) -> CardUid {
    let [high, low] = u16::try_from(index).expect("few pupils").to_be_bytes();
    CardUid::parse(&[0x04, high, low, 0x5a]).expect("a card UID")
}

/// Lunch every day of the week, all day long, so a test can serve at any hour: the kiosks'
/// engines run on a clock set by hand to a day's noon.
pub fn lunch() -> Service {
    Service {
        id: ServiceId::parse("lunch").expect("a service id"),
        name: Text::parse("Déjeuner").expect("a name"),
        meal_type: MealType::parse("lunch").expect("a meal type"),
        weekdays: vec![
            Weekday::Monday,
            Weekday::Tuesday,
            Weekday::Wednesday,
            Weekday::Thursday,
            Weekday::Friday,
            Weekday::Saturday,
            Weekday::Sunday,
        ],
        start: LocalTime::parse("00:00").expect("a time"),
        end: LocalTime::parse("23:59").expect("a time"),
    }
}

/// Site `jaures` with `pupils` pupils, each on an account of their own holding
/// [`OPENING_BALANCE_CENTS`], with a card; lunch at [`LUNCH_CENTS`].
pub async fn populate_site(store: &impl Store, pupils: usize) {
    let site = site();
    let at = now();
    store
        .save_tariff(
            &site,
            &Tariff {
                bracket: BracketId::parse("q1").expect("a bracket"),
                meal_type: MealType::parse("lunch").expect("a meal type"),
                price: Cents::new(LUNCH_CENTS),
            },
        )
        .await
        .expect("the tariff is saved");
    store
        .save_service(&site, &lunch())
        .await
        .expect("the service is saved");
    store
        .save_kiosk_settings(
            &site,
            &KioskSettings {
                result_display_ms: 2_000,
                sync_interval_ms: 30_000,
                staff_idle_signout_ms: 60_000,
                language: Language::Fr,
            },
        )
        .await
        .expect("the settings are saved");
    for index in 0..pupils {
        store
            .add_account(&account(index), Cents::new(-500), at)
            .await
            .expect("the account is opened");
        top_up(store, &account(index), OPENING_BALANCE_CENTS).await;
        store
            .save_pupil(
                &site,
                &Pupil {
                    id: pupil(index),
                    account: account(index),
                    first_name: Text::parse(&format!("Léa {index}")).expect("a name"),
                    last_name: Text::parse("Martin").expect("a name"),
                    bracket: BracketId::parse("q1").expect("a bracket"),
                    dietary: Vec::new(),
                },
            )
            .await
            .expect("the pupil is saved");
        store
            .assign_card(&Card {
                uid: card(index),
                holder: CardHolder::Pupil(pupil(index)),
            })
            .await
            .expect("the card is assigned");
    }
}

/// Money paid in at the back-office counter.
pub async fn top_up(store: &impl Store, account: &AccountId, cents: i64) {
    store
        .apply_operation(&Operation {
            kind: OperationKind::TopUp {
                method: TopUpMethod::Cash,
                reference: None,
            },
            account: account.clone(),
            amount: Cents::new(cents),
            user: "test".to_owned(),
            at: now(),
        })
        .await
        .expect("the top-up is applied");
}

/// Where the clocks of every back-office and of every kiosk's sync stand in these tests: an hour
/// after the kiosks' engines start. Fixed, so that no test depends on the day it runs.
pub const NOW_UNIX_MS: i64 = crate::kiosk::ENGINE_START_UNIX_MS + 3_600_000;

/// [`NOW_UNIX_MS`] as the back-office writes it.
pub fn now() -> Timestamp {
    Timestamp::from_unix_ms(NOW_UNIX_MS).expect("a timestamp")
}

/// When the tests' kiosks and users are registered: a month before [`now`].
pub fn registered_at() -> Timestamp {
    Timestamp::from_unix_ms(NOW_UNIX_MS - 30 * 24 * 3_600_000).expect("a timestamp")
}

/// Registers kiosk `id` of the test site, whose key is `key`, at [`registered_at`].
pub async fn register_device(store: &impl Store, id: &DeviceId, key: PublicKey) {
    store
        .add_device(
            Device {
                id: id.clone(),
                site: site(),
                key,
                revoked_at: None,
            },
            registered_at(),
        )
        .await
        .expect("the back-office registers the kiosk");
}

/// A back-office user and the `authorization` header that signs them in.
pub async fn user(
    store: &impl Store,
    name: &str,
    role: backoffice::users::Role,
) -> (&'static str, String) {
    let password = "correct horse battery staple";
    let user = backoffice::users::User::new(name, role, None, password).expect("a valid user");
    store
        .add_user(&user, registered_at())
        .await
        .expect("the user is added");
    testkit::app::basic_auth(name, password)
}

/// A counter from the back-office's `/metrics`, such as
/// `canteen_records_total{outcome="duplicate"}`.
pub async fn metric<S: Store>(backoffice: &BackOffice<S>, name: &str) -> u64 {
    backoffice
        .get("/metrics")
        .await
        .text()
        .lines()
        .find_map(|line| line.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or(0)
}
