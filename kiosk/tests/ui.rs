//! The touchscreen, driven as pupils and staff use it: Slint's testing backend finds elements by
//! their accessible labels and touches them; the real engine runs on the kiosk's runtime.

#![allow(clippy::unwrap_used)]

mod common;

use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{pupil_card, staff_card};
use i_slint_backend_testing::ElementHandle;
use kiosk::sync::{EngineAccess as _, SyncState, SyncWarning};
use kiosk::ui::{Kiosk, KioskUi, Screen};
use kiosk::worker::{EngineWorker, NoWaker};
use proto::snapshot::Language;
use slint::{ComponentHandle as _, Model as _};

struct UiTest {
    ui: Rc<KioskUi>,
    worker: Option<EngineWorker>,
    data: kiosk::config::DataDir,
    _dir: tempfile::TempDir,
    /// Last: dropped after the engine stopped.
    _runtime: tokio::runtime::Runtime,
}

impl UiTest {
    fn new(language: Language) -> UiTest {
        i_slint_backend_testing::init_no_event_loop();
        let common::TestKiosk {
            dir,
            data,
            clock: _,
            engine,
        } = common::TestKiosk::new(10);
        let runtime = kiosk::run::runtime().unwrap();
        let (worker, sender, updates) =
            EngineWorker::start(runtime.handle(), engine, Arc::new(NoWaker));
        let ui = KioskUi::new(sender, updates, language, 2_000).unwrap();
        ui.window()
            .window()
            .set_size(slint::PhysicalSize::new(1024, 768));
        ui.window().show().unwrap();
        UiTest {
            ui,
            worker: Some(worker),
            data,
            _dir: dir,
            _runtime: runtime,
        }
    }

    fn kiosk(&self) -> Kiosk<'_> {
        self.ui.window().global::<Kiosk>()
    }

    fn screen(&self) -> Screen {
        self.kiosk().get_screen()
    }

    /// Applies the engine's updates until `done` holds.
    fn wait_until(&self, what: &str, done: impl Fn(&UiTest) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            self.ui.apply_updates();
            if done(self) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "waited for {what}; screen is {:?}",
                self.screen()
            );
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    fn wait_for(&self, screen: Screen) {
        self.wait_until(&format!("{screen:?}"), |test| test.screen() == screen);
    }

    fn tap(&self, uid: proto::CardUid) {
        self.ui.tap_sender().tap(uid);
    }

    fn touch(&self, label: &str) {
        let element = ElementHandle::find_by_accessible_label(self.ui.window(), label)
            .next()
            .unwrap_or_else(|| panic!("no element labelled {label:?} on {:?}", self.screen()));
        element.mock_single_click(slint::platform::PointerEventButton::Left);
    }

    fn type_digits(&self, digits: &str) {
        for digit in digits.chars() {
            self.touch(&digit.to_string());
        }
    }

    fn label_exists(&self, label: &str) -> bool {
        ElementHandle::find_by_accessible_label(self.ui.window(), label)
            .next()
            .is_some()
    }

    fn records(&mut self) -> Vec<proto::Record> {
        drop(self.worker.take().unwrap().stop());
        common::verified_records(&self.data)
    }
}

#[test]
fn pupil_screens() {
    let test = UiTest::new(Language::Fr);
    // Each result plays its cue: the player here copies the WAV it is given into a file.
    let cues = tempfile::tempdir().unwrap();
    let player = format!("cat > {}/cue-$$.wav", cues.path().display());
    test.ui
        .set_speaker(kiosk::sound::Speaker::with_command("sh", &["-c", &player]));
    assert_eq!(test.screen(), Screen::Ready);
    assert!(test.label_exists("Prêt"));

    test.tap(pupil_card(1));
    test.wait_for(Screen::Served);
    assert_eq!(test.kiosk().get_first_name(), "Lucas");
    assert_eq!(test.kiosk().get_balance(), "6,15 €");
    assert!(test.label_exists("Bon appétit, Lucas !"));
    assert!(!test.kiosk().get_dietary_alert());
    test.wait_until("the served cue", |_| {
        std::fs::read_dir(cues.path()).unwrap().count() == 1
    });
    let cue_file = std::fs::read_dir(cues.path())
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    test.wait_until("the whole cue", |_| {
        std::fs::read(&cue_file).unwrap() == kiosk::sound::Cue::Served.wav()
    });

    test.tap(pupil_card(1));
    test.wait_for(Screen::AlreadyServed);
    assert!(test.label_exists("Déjà servi, Lucas"));

    // Insufficient funds, unknown and blocked cards: the same neutral screen, no amount.
    for card in [
        pupil_card(0),
        proto::CardUid::from_hex("01020304").unwrap(),
        common::blocked_card(),
    ] {
        test.tap(pupil_card(2));
        test.wait_until("another result", |t| t.screen() != Screen::SeeStaff);
        test.tap(card);
        test.wait_for(Screen::SeeStaff);
        assert!(test.label_exists("Merci de voir un adulte"));
        assert!(!test.label_exists("Solde : 1,00 €"));
    }

    // Dietary flags: a discreet marker that staff can open; no detail until then.
    test.tap(pupil_card(3));
    test.wait_for(Screen::Served);
    assert!(test.kiosk().get_dietary_alert());
    assert!(!test.label_exists("Régimes à respecter"));
    test.touch("Alerte repas");
    assert!(test.label_exists("Régimes à respecter"));

    // The result goes away by itself after the display time.
    i_slint_backend_testing::mock_elapsed_time(Duration::from_millis(2_100));
    assert_eq!(test.screen(), Screen::Ready);

    test.ui.tap_sender().reader_available(false);
    test.wait_for(Screen::ReaderUnavailable);
    assert!(test.label_exists("Lecteur indisponible"));
    test.ui.tap_sender().reader_available(true);
    test.wait_for(Screen::Ready);
}

#[test]
fn staff_flows() {
    let mut test = UiTest::new(Language::Fr);
    test.tap(staff_card());
    test.wait_for(Screen::StaffPin);
    test.type_digits("0000");
    test.touch("Valider");
    test.wait_until("a wrong-PIN message", |t| {
        t.kiosk().get_message().contains("Code incorrect")
    });
    test.type_digits(common::STAFF_PIN);
    assert_eq!(test.kiosk().get_entry(), "••••");
    test.touch("Valider");
    test.wait_for(Screen::StaffMenu);
    assert_eq!(test.kiosk().get_staff_name(), "S-durand");

    // Top-up: choose the pupil by name, type the amount, cash, confirm twice.
    test.touch("Recharger un compte");
    test.wait_for(Screen::StaffServe);
    for letter in ["M", "A", "R", "T", "I", "N"] {
        test.touch(letter);
    }
    test.wait_until("search results", |t| t.kiosk().get_rows().row_count() > 0);
    test.touch("Lucas Martin1");
    test.wait_for(Screen::StaffTopUp);
    test.type_digits("2000");
    assert_eq!(test.kiosk().get_entry(), "20,00 €");
    test.touch("Valider");
    assert!(
        test.kiosk().get_message().contains("Recharger 20,00 €"),
        "{}",
        test.kiosk().get_message()
    );
    test.touch("Valider");
    test.wait_until("the top-up", |t| {
        t.kiosk()
            .get_message()
            .contains("Recharge de 20,00 € enregistrée")
    });
    assert_eq!(test.screen(), Screen::StaffMenu);

    // Serve without a card.
    test.touch("Servir sans carte");
    for letter in ["M", "A", "R"] {
        test.touch(letter);
    }
    test.wait_until("search results", |t| t.kiosk().get_rows().row_count() > 0);
    test.touch("Léa Martin4");
    test.wait_until("the meal", |t| {
        t.kiosk().get_message().contains("Léa servi(e)")
    });

    // Void it: the list shows today's records; touching one twice voids it.
    test.touch("Annuler une opération");
    test.wait_until("voidable records", |t| t.kiosk().get_rows().row_count() > 0);
    let first = test.kiosk().get_rows().row_data(0).unwrap();
    assert!(first.label.contains("repas P00004"), "{}", first.label);
    test.touch(first.label.as_ref());
    assert!(test.kiosk().get_message().contains("Touchez-la à nouveau"));
    test.touch(first.label.as_ref());
    test.wait_until("the void", |t| t.kiosk().get_message().contains("annulée"));

    // Close the day: 20,00 € expected in cash; 19,50 € counted.
    test.touch("Clôturer la journée");
    test.wait_for(Screen::StaffClose);
    assert_eq!(test.kiosk().get_close_expected(), "20,00 €");
    test.type_digits("1950");
    assert_eq!(test.kiosk().get_close_difference(), "-0,50 €");
    test.touch("Valider");
    test.touch("Valider");
    test.wait_until("the close", |t| {
        t.kiosk()
            .get_message()
            .contains("Journée clôturée, écart -0,50 €")
    });

    test.touch("État de la borne");
    test.wait_for(Screen::StaffStatus);
    let lines: Vec<String> = (0..test.kiosk().get_status_lines().row_count())
        .map(|i| {
            test.kiosk()
                .get_status_lines()
                .row_data(i)
                .unwrap()
                .to_string()
        })
        .collect();
    assert!(
        lines.iter().any(|line| line.starts_with("Borne : jaures-")),
        "{lines:?}"
    );
    test.touch("Retour");
    test.touch("Se déconnecter");
    test.wait_for(Screen::Ready);

    let kinds = common::kinds(&test.records());
    let tail: Vec<_> = kinds.iter().rev().take(6).rev().copied().collect();
    assert_eq!(
        tail,
        [
            "staff_sign_in",
            "top_up",
            "meal",
            "void",
            "day_close",
            "staff_sign_out"
        ]
    );
}

#[test]
fn german_and_english() {
    let drift = SyncWarning::ClockDrift { drift_ms: 120_000 };
    for (language, ready, served, warning_label, warning) in [
        (
            Language::Fr,
            "Prêt",
            "Bon appétit, Lucas !",
            "Avertissement de synchronisation",
            "Horloge décalée de 120 s",
        ),
        (
            Language::De,
            "Bereit",
            "Guten Appetit, Lucas!",
            "Synchronisierungswarnung",
            "Uhr um 120 s verstellt",
        ),
        (
            Language::En,
            "Ready",
            "Enjoy your meal, Lucas!",
            "Sync warning",
            "Clock off by 120 s",
        ),
    ] {
        let drift = drift.clone();
        let test = std::thread::spawn(move || {
            let test = UiTest::new(language);
            assert!(test.label_exists(ready), "{language:?}");
            test.tap(pupil_card(1));
            test.wait_for(Screen::Served);
            assert!(test.label_exists(served), "{language:?}");
            assert_eq!(
                test.kiosk().get_balance(),
                "6,15 €",
                "money the French way in every language"
            );
            // The staff's sync warning: its words and its label in the kiosk's language.
            assert!(!test.label_exists(warning_label), "{language:?}");
            test.ui.tap_sender().publish(&SyncState {
                warnings: vec![drift],
                ..SyncState::default()
            });
            test.wait_until("the sync warning", |t| {
                t.kiosk().get_sync_warning().starts_with(warning)
            });
            assert!(test.label_exists(warning_label), "{language:?}");
        });
        test.join().unwrap();
    }
}

/// Every text the UI marks for translation has a German and an English translation.
#[test]
fn every_text_of_the_ui_is_translated() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("ui");
    let slint = std::fs::read_to_string(root.join("app.slint")).unwrap();
    let marked: std::collections::BTreeSet<&str> = slint
        .split("@tr(\"")
        .skip(1)
        .map(|rest| &rest[..rest.find('"').unwrap()])
        .collect();
    assert!(marked.len() > 40, "{marked:?}");
    for language in ["de", "en"] {
        let po =
            std::fs::read_to_string(root.join(format!("lang/{language}/LC_MESSAGES/kiosk.po")))
                .unwrap();
        let translated: std::collections::BTreeSet<&str> = po
            .split("\nmsgid \"")
            .skip(1)
            .filter_map(|entry| {
                let (id, rest) = entry.split_once("\"\nmsgstr \"")?;
                let text = &rest[..rest.find('"')?];
                (!text.is_empty()).then_some(id)
            })
            .collect();
        let missing: Vec<_> = marked.difference(&translated).collect();
        assert!(
            missing.is_empty(),
            "{language}: no translation of {missing:?}"
        );
    }
}
