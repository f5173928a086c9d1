//! The web pages in a real browser: headless Chromium driven through chromedriver (WebDriver)
//! against the back-office serving on loopback. Each role signs in and does its work as a
//! person would: staff top up and see the balance change, block and replace a card, and are
//! kept out of finance pages and of other sites; a form without its CSRF token is refused;
//! finance reads the dashboard and the fleet, reconciles a day with a duplicate meal,
//! approves the void proposed for it, signs the day off and downloads an export; admin enrols and revokes a kiosk, adds a user and
//! imports a CSV file. Screenshots of the main pages go to `target/browser-screenshots/`.
//!
//! One browser runs at a time (`BROWSER`): Chromium is heavy for a two-core machine.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use testkit as common;

use common::Ops as _;

use std::sync::Mutex;

use backoffice::store::SqliteStore;
use backoffice::users::Role;
use proto::record::{Meal, MealVia};
use proto::snapshot::CardHolder;
use proto::{AccountId, BracketId, CardUid, Cents, MealType, PupilId, RecordBody, ServiceId};
use tokio::runtime::Runtime;

use common::SqliteDb;
use common::app::TestApp;
use common::day::{DATE, charged_twice};
use common::fixtures::registered_at;
use common::fixtures::{Kiosk, account, populate_with_users};
use common::webdriver::Browser;

static BROWSER: Mutex<()> = Mutex::new(());

const PASSWORD: &str = "correct horse battery";

/// A back-office with two sites' data, a user of each role, and two meals served today at
/// `jaures` by one kiosk (a second kiosk never synced).
struct Setup {
    runtime: Runtime,
    app: TestApp<SqliteStore>,
    _db: SqliteDb,
}

impl Setup {
    fn new() -> Setup {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let db = SqliteDb::new();
        let app = runtime.block_on(async {
            let store = db.open().await;
            populate_with_users(
                &store,
                PASSWORD,
                &[
                    ("martin", Role::Staff, Some("jaures")),
                    ("petit", Role::Staff, Some("ferry")),
                    ("compta", Role::Finance, None),
                    ("admin", Role::Admin, None),
                ],
            )
            .await;
            let app = TestApp::start(store).await;
            let mut kiosk = Kiosk::registered(&app.store, "jaures-entree", 1).await;
            app.store
                .add_device(Kiosk::new("jaures-cour", 2).device, registered_at())
                .await
                .unwrap();
            let today = backoffice::web::layout::service_day(app.clock.now()).unwrap();
            for pupil in ["P1", "P2"] {
                let record = kiosk
                    .head
                    .append(
                        &kiosk.key,
                        &kiosk.device.id,
                        app.clock.now(),
                        RecordBody::Meal(Meal {
                            service: ServiceId::parse("lunch").unwrap(),
                            service_date: today,
                            meal_type: MealType::parse("lunch").unwrap(),
                            account: account("A1"),
                            pupil: PupilId::parse(pupil).unwrap(),
                            bracket: BracketId::parse("q3").unwrap(),
                            price: Cents::new(385),
                            balance_after: Cents::new(0),
                            via: MealVia::Card(CardUid::parse(&[1, 1, 1, 1]).unwrap()),
                        }),
                    )
                    .unwrap();
                kiosk.written.push(record);
            }
            let reply = app.upload(&kiosk, kiosk.signed(1, 2)).await;
            assert_eq!(reply.status, 200, "{}", reply.text());
            app
        });
        Setup {
            runtime,
            app,
            _db: db,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.app.address)
    }

    fn balance(&self, name: &str) -> i64 {
        self.runtime
            .block_on(self.app.store.balance(&account(name)))
            .unwrap()
            .unwrap()
            .get()
    }

    /// Signs `name` in through the form and returns the page it lands on.
    fn sign_in(&self, browser: &Browser, name: &str, screenshot: Option<&str>) -> String {
        browser.open(&self.url("/sign-in"));
        browser.fill("#name", name);
        browser.fill("#password", PASSWORD);
        if let Some(screenshot) = screenshot {
            browser.screenshot(screenshot);
        }
        browser.click("button[type=submit]");
        browser.find("main h1");
        browser.url()
    }
}

fn lock() -> std::sync::MutexGuard<'static, ()> {
    BROWSER
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[test]
fn staff_top_up_replace_a_card_and_stay_in_their_site() {
    let _browser_lock = lock();
    let setup = Setup::new();
    let browser = Browser::start();
    let landed = setup.sign_in(&browser, "martin", Some("sign-in"));
    assert!(landed.ends_with("/staff"), "{landed}");
    assert_eq!(browser.heading(), "Rechercher");

    // A lost card's UID finds its pupil.
    browser.fill("#q", "01010101");
    browser.click("form[role=search] button");
    assert!(browser.text("main table").contains("P1"));
    browser.screenshot("search");
    browser.click("main table a");
    assert_eq!(browser.heading(), "Compte A1");
    let before = setup.balance("A1");
    assert_eq!(before, -770, "two meals of 3,85 €");
    assert_eq!(browser.text("#balance"), "-7,70 €");
    browser.screenshot("account");

    // Top-up: a confirmation step, then the receipt with the new balance.
    browser.fill("#amount", "12,50");
    browser.click("form[action$='/top-up'] button[type=submit]");
    assert_eq!(browser.heading(), "Confirmer le rechargement");
    assert_eq!(browser.text("#confirm-amount"), "12,50 €");
    assert_eq!(
        setup.balance("A1"),
        before,
        "nothing moves before confirmation"
    );
    browser.click("#confirm");
    assert_eq!(browser.heading(), "Reçu de rechargement");
    assert_eq!(browser.text("#receipt-balance"), "4,80 €");
    browser.screenshot("receipt");
    assert_eq!(setup.balance("A1"), before + 1_250);
    browser.click("main a.button");
    assert_eq!(browser.text("#balance"), "4,80 €");
    assert!(browser.text("#history").contains("12,50 €"));

    // A form whose CSRF token was taken out is refused and changes nothing.
    browser
        .script("document.querySelector(\"form[action$='/top-up'] input[name=csrf]\").remove();");
    browser.fill("#amount", "99");
    browser.click("form[action$='/top-up'] button[type=submit]");
    assert_eq!(
        browser.heading(),
        "Formulaire refusé : rechargez la page et recommencez."
    );
    browser.open(&setup.url("/staff/accounts/A1"));
    browser.fill("#amount", "99");
    browser.script(
        "document.querySelector(\"form[action$='/top-up'] input[name=csrf]\").value = 'forged';",
    );
    browser.click("form[action$='/top-up'] button[type=submit]");
    assert_eq!(
        browser.heading(),
        "Formulaire refusé : rechargez la page et recommencez."
    );
    assert_eq!(setup.balance("A1"), before + 1_250);

    // The lost card is blocked and a new one bound: the balance stays with the account.
    browser.open(&setup.url("/staff/accounts/A1"));
    browser.fill("#new-uid-01010101", "0A0B0C0D");
    browser.click("form[action='/staff/cards/01010101/replace'] button");
    assert!(
        browser
            .text("p.notice")
            .contains("le solde reste sur le compte")
    );
    let cards = browser.text("section[aria-label^='Léa']");
    assert!(cards.contains("01010101 bloquée"), "{cards}");
    assert!(cards.contains("0a0b0c0d active"), "{cards}");
    assert_eq!(browser.text("#balance"), "4,80 €");
    let (old, new) = setup.runtime.block_on(async {
        let store = &setup.app.store;
        (
            store
                .card(&CardUid::parse(&[1, 1, 1, 1]).unwrap())
                .await
                .unwrap(),
            store
                .card(&CardUid::parse(&[10, 11, 12, 13]).unwrap())
                .await
                .unwrap(),
        )
    });
    let p1 = CardHolder::Pupil(PupilId::parse("P1").unwrap());
    assert_eq!(old, Some((p1.clone(), true)));
    assert_eq!(new, Some((p1, false)));
    // Blocking the sibling's card outright.
    browser.click("form[action='/staff/cards/02020202/block'] button");
    assert_eq!(
        browser.text("p.notice"),
        "Carte bloquée sur toutes les bornes."
    );
    browser.screenshot("cards");

    // Dietary flags.
    browser.fill("#dietary-P1", "no_pork, peanut_allergy");
    browser.click("form[action='/staff/pupils/P1/dietary'] button");
    assert_eq!(
        browser.text("p.notice"),
        "Régimes alimentaires enregistrés."
    );
    let flags = setup.runtime.block_on(async {
        setup
            .app
            .store
            .account_pupils(&AccountId::parse("A1").unwrap())
            .await
            .unwrap()
            .into_iter()
            .find(|entry| entry.pupil.id.as_str() == "P1")
            .unwrap()
            .pupil
            .dietary
    });
    let flags: Vec<&str> = flags.iter().map(proto::Text::as_str).collect();
    assert_eq!(flags, ["no_pork", "peanut_allergy"]);

    // Today's meals at the site.
    browser.open(&setup.url("/staff/meals"));
    let count = browser.text("#meal-count");
    assert!(count.contains("2 repas servis"), "{count}");
    browser.screenshot("meals");

    // Finance and admin pages, and another site's account, are not for staff.
    for path in [
        "/finance",
        "/finance/kiosks",
        "/admin",
        "/admin/users",
        "/staff/accounts/A9",
    ] {
        browser.open(&setup.url(path));
        assert_eq!(browser.heading(), "Accès refusé", "{path}");
    }
    browser.open(&setup.url("/staff?q=P9"));
    assert_eq!(browser.text("p.notice"), "Aucun résultat.");

    // The language switch, then signing out ends the session.
    browser.click("header a[hreflang=en]");
    assert_eq!(browser.heading(), "Search");
    browser.click("header form[action='/sign-out'] button");
    assert_eq!(browser.heading(), "Sign in");
    browser.open(&setup.url("/staff"));
    assert_eq!(browser.heading(), "Sign in");
}

#[test]
fn finance_reads_the_dashboard_and_the_fleet() {
    let _browser_lock = lock();
    let setup = Setup::new();
    let browser = Browser::start();
    let landed = setup.sign_in(&browser, "compta", None);
    assert!(landed.ends_with("/finance"), "{landed}");
    assert_eq!(browser.heading(), "Tableau de bord");
    let per_site = browser.text("#per-site");
    assert!(per_site.contains("jaures 2 7,70 €"), "{per_site}");
    assert_eq!(browser.count("figure.chart svg"), 2);
    assert_eq!(browser.count("figure.chart rect"), 2 * 31);
    browser.screenshot("dashboard");

    browser.click("header a[href='/finance/kiosks']");
    assert_eq!(browser.heading(), "Bornes");
    assert_eq!(browser.text("#silent-count"), "1");
    let silent = browser.text("#fleet tr.alert");
    assert!(silent.contains("jaures-cour"), "{silent}");
    assert!(silent.contains("jamais connectée"), "{silent}");
    let fleet = browser.text("#fleet");
    assert!(fleet.contains("jaures-entree jaures en ligne"), "{fleet}");
    browser.screenshot("fleet");

    browser.open(&setup.url("/admin/devices"));
    assert_eq!(browser.heading(), "Accès refusé");

    // A day when one pupil was charged twice at two kiosks: the reconciliation shows the
    // duplicate with both signed records, finance approves the proposed void and signs off.
    setup
        .runtime
        .block_on(charged_twice(&setup.app.store, [11, 12]));
    let balance = setup.balance("A1");
    browser.open(&setup.url(&format!("/finance/reconciliations?date={DATE}")));
    assert_eq!(
        browser.text("p.notice"),
        "Cette journée n'a pas encore été rapprochée."
    );
    browser.click("#run");
    let findings = browser.text("#findings");
    assert!(findings.contains("duplicate_meal"), "{findings}");
    assert!(browser.text("#recon-kiosks").contains("kiosk-2 jaures"));
    assert!(browser.count("#findings details") >= 1, "evidence is shown");
    assert!(
        browser
            .script("return document.querySelector('#findings details pre').textContent;")
            .as_str()
            .unwrap()
            .contains("\"kind\":\"meal\""),
        "the evidence is the signed record"
    );
    browser.screenshot("reconciliation");
    browser.click("#proposed-voids form[action$='/approve'] button");
    let voids = browser.text("#proposed-voids");
    assert!(voids.contains("approuvée compta"), "{voids}");
    assert_eq!(
        setup.balance("A1"),
        balance + 385,
        "the second meal is credited back"
    );
    browser.click("#sign-off");
    let state = browser.text("#reconciliation-state");
    assert!(state.contains("clôturé par compta"), "{state}");
    assert_eq!(browser.count("#sign-off"), 0);
    let summary = browser.script(&format!(
        "const x = new XMLHttpRequest(); x.open('GET', '/finance/exports/summary?from={DATE}', false); \
         x.send(); return [x.status, x.getResponseHeader('content-disposition'), x.responseText];"
    ));
    assert_eq!(summary[0], 200, "{summary}");
    assert!(
        summary[1]
            .as_str()
            .unwrap()
            .contains("summary-2026-11-30-2026-11-30.csv")
    );
    assert!(!summary[2].as_str().unwrap().is_empty());
    browser.screenshot("signed-off");
}

#[test]
fn admin_enrols_a_kiosk_adds_a_user_and_imports_pupils() {
    let _browser_lock = lock();
    let setup = Setup::new();
    let browser = Browser::start();
    setup.sign_in(&browser, "admin", None);
    assert_eq!(browser.heading(), "Administration");

    browser.open(&setup.url("/admin/devices"));
    browser.fill("#device-id", "ferry-cantine");
    browser.fill("#device-site", "ferry");
    browser.fill(
        "#device-key",
        &common::fixtures::key(7).public_key().to_pem(),
    );
    browser.click("form[action='/admin/devices'] button");
    assert_eq!(browser.text("p.notice"), "Enregistré.");
    assert!(browser.text("#devices").contains("ferry-cantine ferry"));
    browser.screenshot("devices");
    browser.script("window.confirm = () => true;");
    browser.click("form[action='/admin/devices/ferry-cantine/revoke'] button");
    assert_eq!(browser.text("p.notice"), "Borne révoquée.");
    let device = setup
        .runtime
        .block_on(
            setup
                .app
                .store
                .device(&proto::DeviceId::parse("ferry-cantine").unwrap()),
        )
        .unwrap()
        .unwrap();
    assert!(device.revoked_at.is_some());

    browser.open(&setup.url("/admin/users"));
    browser.fill("#user-name", "durand");
    browser.fill("#user-site", "ferry");
    browser.fill("#user-password", "another long password");
    browser.click("form[action='/admin/users'] button");
    assert_eq!(browser.text("p.notice"), "Enregistré.");
    let durand = setup
        .runtime
        .block_on(setup.app.store.user("durand"))
        .unwrap()
        .unwrap();
    assert_eq!(
        (durand.role, durand.site.unwrap().as_str()),
        (Role::Staff, "ferry")
    );

    // Every error of a file is shown and nothing is written; a valid file is previewed first.
    let header = backoffice::import::HEADER.join(",");
    browser.open(&setup.url("/admin/import"));
    browser.fill(
        "#csv",
        &format!("{header}\nferry,B1,0,Q1,,Dupont,q1,,\nferry,B1,1,Q2,Tom,Dupont,q1,,zz\n"),
    );
    browser.click("form[action='/admin/import'] button");
    assert!(
        browser
            .text("#import-errors")
            .starts_with("2 ligne(s) en erreur")
    );
    let errors = browser.text("main table");
    assert!(errors.contains("first_name"), "{errors}");
    browser.fill(
        "#csv",
        &format!("{header}\nferry,B1,0,Q1,Zoé,Dupont,q1,no_pork,0c0c0c0c\nferry,B1,0,Q2,Tom,Dupont,q1,,\n"),
    );
    browser.click("form[action='/admin/import'] button");
    assert!(
        browser
            .text("#import-preview")
            .starts_with("2 Élèves, 1 comptes, 1 Cartes")
    );
    browser.screenshot("import-preview");
    assert!(
        setup
            .runtime
            .block_on(setup.app.store.account(&account("B1")))
            .unwrap()
            .is_none()
    );
    browser.click("#import-confirm");
    assert_eq!(browser.text("#import-done"), "2 élèves importés.");
    assert!(
        setup
            .runtime
            .block_on(setup.app.store.account(&account("B1")))
            .unwrap()
            .is_some()
    );

    // Tariffs and services of a site.
    browser.open(&setup.url("/admin/sites/ferry"));
    browser.fill("#bracket", "q4");
    browser.fill("#price", "4,20");
    browser.click("form[action='/admin/sites/ferry/tariffs'] button");
    assert!(browser.text("#tariffs").contains("q4 lunch 4,20 €"));
    browser.fill("#service-name", "Déjeuner");
    browser.click("form[action='/admin/sites/ferry/services'] button");
    let services = browser.text("#services");
    assert!(
        services.contains("lunch Déjeuner lunch lundi, mardi, jeudi, vendredi 11:30–13:45"),
        "{services}"
    );
    browser.screenshot("site-setup");
}
