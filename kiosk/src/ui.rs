//! The touchscreen: the Slint UI of `ui/app.slint` wired to the engine's worker.
//!
//! The UI thread runs Slint's event loop and owns [`KioskUi`]. It sends the engine jobs through a
//! [`TapSender`] and applies the [`Update`]s that come back when a [`crate::worker::UiWaker`]
//! asks it to (`kiosk run`: through Slint's event loop; tests: by polling). It never touches the
//! ledger and never waits for a disk write.

use std::cell::RefCell;
use std::rc::Rc;

use proto::record::TopUpMethod;
use proto::snapshot::Language;
use proto::{AccountId, CardUid, Cents, PupilId, Seq, Text};
use slint::{ComponentHandle as _, ModelRc, SharedString, VecModel};

use crate::engine::{Decision, EngineError};
use crate::limits::{AMOUNT_DIGITS_MAX, LIST_ROWS_MAX, PIN_DIGITS_MAX};
use crate::sound::{Cue, Speaker};
use crate::texts;
use crate::worker::{TapSender, Update, UpdateReceiver};

/// The code the Slint compiler generates from `ui/app.slint`; not ours to lint.
#[allow(
    unsafe_code,
    unused_qualifications,
    missing_debug_implementations,
    clippy::all,
    clippy::pedantic,
    clippy::unwrap_used,
    clippy::float_arithmetic,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::todo,
    clippy::dbg_macro
)]
mod generated {
    slint::include_modules!();
}
pub use generated::{AppWindow, Kiosk, ListRow, Screen};

/// A staff flow in progress.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Flow {
    None,
    Pin {
        card: CardUid,
        name: String,
    },
    TopUpChoose,
    TopUp {
        account: AccountId,
        name: String,
        confirming: bool,
    },
    Serve,
    Void {
        confirming: Option<Seq>,
    },
    Close {
        expected: Cents,
        confirming: bool,
    },
    Status,
}

#[derive(Debug)]
struct UiState {
    flow: Flow,
    staff_signed_in: bool,
    entry: String,
    rows: Vec<(String, String)>,
    result_display_ms: u64,
}

/// The UI thread's side: the window, what staff are doing, and the way to the engine.
pub struct KioskUi {
    window: AppWindow,
    tap_sender: TapSender,
    updates: RefCell<UpdateReceiver>,
    state: RefCell<UiState>,
    language: Language,
    /// Returns from a result screen after the display time; restarted by every result.
    result_timer: slint::Timer,
    /// Plays the pupil-facing result's sound cue.
    speaker: RefCell<Speaker>,
}

impl std::fmt::Debug for KioskUi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KioskUi")
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl KioskUi {
    /// Builds the window for `language` and wires its callbacks. The caller shows it.
    pub fn new(
        tap_sender: TapSender,
        updates: UpdateReceiver,
        language: Language,
        result_display_ms: u64,
    ) -> Result<Rc<KioskUi>, slint::PlatformError> {
        let window = AppWindow::new()?;
        select_language(language);
        let ui = Rc::new(KioskUi {
            window,
            tap_sender,
            updates: RefCell::new(updates),
            state: RefCell::new(UiState {
                flow: Flow::None,
                staff_signed_in: false,
                entry: String::new(),
                rows: Vec::new(),
                result_display_ms,
            }),
            language,
            result_timer: slint::Timer::default(),
            speaker: RefCell::new(Speaker::silent()),
        });
        ui.wire();
        ui.set_base_screen();
        Ok(ui)
    }

    /// Sets how sound cues are played (silent until set).
    pub fn set_speaker(&self, speaker: Speaker) {
        *self.speaker.borrow_mut() = speaker;
    }

    pub fn window(&self) -> &AppWindow {
        &self.window
    }

    pub fn tap_sender(&self) -> TapSender {
        self.tap_sender.clone()
    }

    /// Applies every pending update; returns how many there were.
    pub fn apply_updates(&self) -> usize {
        let mut applied = 0;
        loop {
            // The borrow ends before `apply`, which may queue jobs whose answers come here.
            let next = self.updates.borrow_mut().try_recv();
            let Ok(update) = next else {
                return applied;
            };
            self.apply(update);
            applied += 1;
        }
    }

    /// Sets the ready screen's service name and clock.
    pub fn set_clock(&self, service_name: &str, clock: &str, dimmed: bool) {
        let kiosk = self.window.global::<Kiosk>();
        kiosk.set_service_name(service_name.into());
        kiosk.set_clock(clock.into());
        kiosk.set_dimmed(dimmed);
    }

    fn wire(self: &Rc<Self>) {
        let kiosk = self.window.global::<Kiosk>();
        let weak = Rc::downgrade(self);
        kiosk.on_key(move |key| {
            if let Some(ui) = weak.upgrade() {
                ui.key(&key);
            }
        });
        let weak = Rc::downgrade(self);
        kiosk.on_submit(move || {
            if let Some(ui) = weak.upgrade() {
                ui.submit();
            }
        });
        let weak = Rc::downgrade(self);
        kiosk.on_cancel(move || {
            if let Some(ui) = weak.upgrade() {
                ui.cancel();
            }
        });
        let weak = Rc::downgrade(self);
        kiosk.on_staff_action(move |action| {
            if let Some(ui) = weak.upgrade() {
                ui.staff_action(&action);
            }
        });
        let weak = Rc::downgrade(self);
        kiosk.on_choose(move |key| {
            if let Some(ui) = weak.upgrade() {
                ui.choose(&key);
            }
        });
        let weak = Rc::downgrade(self);
        kiosk.on_set_cheque(move |cheque| {
            if let Some(ui) = weak.upgrade() {
                ui.window.global::<Kiosk>().set_cheque(cheque);
            }
        });
        let weak = Rc::downgrade(self);
        kiosk.on_open_alert(move || {
            if let Some(ui) = weak.upgrade() {
                let kiosk = ui.window.global::<Kiosk>();
                kiosk.set_alert_open(!kiosk.get_alert_open());
            }
        });
        let weak = Rc::downgrade(self);
        kiosk.on_sign_out(move || {
            if let Some(ui) = weak.upgrade() {
                ui.tap_sender
                    .submit(|engine| match engine.staff_sign_out() {
                        Ok(()) | Err(EngineError::NotSignedIn) => Update::SignedOut,
                        Err(error) => Update::Done(Err(error.to_string())),
                    });
            }
        });
        let weak = Rc::downgrade(self);
        kiosk.on_touched(move || {
            if let Some(ui) = weak.upgrade() {
                ui.window.global::<Kiosk>().set_dimmed(false);
            }
        });
    }

    fn apply(&self, update: Update) {
        let kiosk = self.window.global::<Kiosk>();
        match update {
            Update::Tap(decision) => self.show_decision(decision),
            Update::ReaderAvailable(true) => self.set_base_screen(),
            Update::ReaderAvailable(false) => kiosk.set_screen(Screen::ReaderUnavailable),
            Update::SignedIn(result) => self.signed_in(result),
            Update::SignedOut => {
                let mut state = self.state.borrow_mut();
                state.staff_signed_in = false;
                state.flow = Flow::None;
                drop(state);
                self.set_base_screen();
            }
            Update::Rows(rows) => self.show_rows(rows),
            Update::ClosePreview(Ok(expected)) => {
                self.state.borrow_mut().flow = Flow::Close {
                    expected,
                    confirming: false,
                };
                kiosk.set_close_expected(expected.to_french().into());
                self.refresh_close();
                kiosk.set_screen(Screen::StaffClose);
            }
            Update::ClosePreview(Err(message)) | Update::Done(Err(message)) => {
                kiosk.set_message(message.into());
            }
            Update::Done(Ok(message)) => self.done(message),
            Update::Status(lines) => {
                let lines: Vec<SharedString> = lines.into_iter().map(Into::into).collect();
                kiosk.set_status_lines(ModelRc::new(VecModel::from(lines)));
                kiosk.set_screen(Screen::StaffStatus);
            }
            Update::Clock { service_name, time } => {
                let dimmed = service_name.is_empty();
                self.set_clock(&service_name, &time, dimmed);
            }
            Update::Sync(state) => {
                kiosk.set_online(state.online);
                kiosk.set_unsynced(i32::try_from(state.unsynced_records).unwrap_or(i32::MAX));
                kiosk.set_last_sync(state.last_sync_shown.into());
                let warnings = texts::sync_warnings(self.language, &state.warnings);
                kiosk.set_sync_warning(warnings.into());
            }
        }
    }

    /// The staff menu after a PIN was accepted, or the PIN screen again with why not.
    fn signed_in(&self, result: Result<String, String>) {
        let kiosk = self.window.global::<Kiosk>();
        let mut state = self.state.borrow_mut();
        state.entry.clear();
        kiosk.set_entry(SharedString::new());
        match result {
            Ok(name) => {
                state.staff_signed_in = true;
                state.flow = Flow::None;
                kiosk.set_staff_name(name.into());
                kiosk.set_message(SharedString::new());
                kiosk.set_screen(Screen::StaffMenu);
            }
            Err(message) => kiosk.set_message(message.into()),
        }
    }

    fn show_rows(&self, rows: Vec<(String, String)>) {
        let model: Vec<ListRow> = rows
            .iter()
            .map(|(key, label)| ListRow {
                key: key.into(),
                label: label.into(),
            })
            .collect();
        self.window
            .global::<Kiosk>()
            .set_rows(ModelRc::new(VecModel::from(model)));
        self.state.borrow_mut().rows = rows;
    }

    /// A staff action was recorded: back to the menu with its message.
    fn done(&self, message: String) {
        let kiosk = self.window.global::<Kiosk>();
        let mut state = self.state.borrow_mut();
        state.flow = Flow::None;
        state.entry.clear();
        kiosk.set_entry(SharedString::new());
        kiosk.set_message(message.into());
        kiosk.set_screen(Screen::StaffMenu);
    }

    fn show_decision(&self, decision: Decision) {
        let kiosk = self.window.global::<Kiosk>();
        kiosk.set_dimmed(false);
        kiosk.set_alert_open(false);
        kiosk.set_dietary_alert(false);
        let screen = match decision {
            Decision::Served(served) => {
                kiosk.set_first_name(served.first_name.as_str().into());
                kiosk.set_balance(served.balance_after.to_french().into());
                kiosk.set_dietary_alert(!served.dietary.is_empty());
                let flags: Vec<SharedString> = served
                    .dietary
                    .iter()
                    .map(|flag| flag.as_str().into())
                    .collect();
                kiosk.set_alert_flags(ModelRc::new(VecModel::from(flags)));
                Screen::Served
            }
            Decision::AlreadyServed { first_name } => {
                kiosk.set_first_name(first_name.as_str().into());
                Screen::AlreadyServed
            }
            // Never an amount owed on the pupil's screen: the same neutral words for all three.
            Decision::InsufficientFunds { .. } | Decision::UnknownCard | Decision::BlockedCard => {
                Screen::SeeStaff
            }
            Decision::NoServiceNow => Screen::NoService,
            Decision::OutOfService { .. } => Screen::OutOfService,
            Decision::StaffCard { card, name, .. } => {
                let mut state = self.state.borrow_mut();
                if state.staff_signed_in {
                    return;
                }
                state.flow = Flow::Pin {
                    card,
                    name: name.to_string(),
                };
                state.entry.clear();
                kiosk.set_staff_name(name.as_str().into());
                kiosk.set_entry(SharedString::new());
                kiosk.set_message(SharedString::new());
                kiosk.set_screen(Screen::StaffPin);
                return;
            }
        };
        kiosk.set_screen(screen);
        let cue = match screen {
            Screen::Served => Cue::Served,
            Screen::AlreadyServed => Cue::AlreadyServed,
            _ => Cue::SeeStaff,
        };
        self.speaker.borrow().play(cue);
        let display_ms = self.state.borrow().result_display_ms;
        let weak = self.window.as_weak();
        let staff = self.state.borrow().staff_signed_in;
        self.result_timer.start(
            slint::TimerMode::SingleShot,
            std::time::Duration::from_millis(display_ms),
            move || {
                if let Some(window) = weak.upgrade() {
                    window.global::<Kiosk>().set_screen(base_screen(staff));
                }
            },
        );
    }

    fn set_base_screen(&self) {
        let staff_signed_in = self.state.borrow().staff_signed_in;
        self.window
            .global::<Kiosk>()
            .set_screen(base_screen(staff_signed_in));
    }

    fn key(&self, key: &str) {
        let kiosk = self.window.global::<Kiosk>();
        let mut state = self.state.borrow_mut();
        let limit = match state.flow {
            Flow::Pin { .. } => PIN_DIGITS_MAX,
            Flow::Serve => proto::limits::TEXT_CHARS_MAX,
            _ => AMOUNT_DIGITS_MAX,
        };
        if key == "back" {
            state.entry.pop();
        } else if state.entry.chars().count() < limit {
            state.entry.push_str(key);
        }
        if let Flow::TopUp { confirming, .. } | Flow::Close { confirming, .. } = &mut state.flow {
            *confirming = false;
        }
        let flow = state.flow.clone();
        let entry = state.entry.clone();
        drop(state);
        match flow {
            Flow::Pin { .. } => kiosk.set_entry("•".repeat(entry.chars().count()).into()),
            Flow::TopUp { .. } => kiosk.set_entry(parse_amount(&entry).to_french().into()),
            Flow::Close { .. } => self.refresh_close(),
            Flow::Serve | Flow::TopUpChoose => {
                kiosk.set_entry(entry.clone().into());
                self.search(entry);
            }
            _ => {}
        }
    }

    fn refresh_close(&self) {
        let kiosk = self.window.global::<Kiosk>();
        let state = self.state.borrow();
        if let Flow::Close { expected, .. } = state.flow {
            let counted = parse_amount(&state.entry);
            kiosk.set_entry(counted.to_french().into());
            let difference = counted.checked_sub(expected).unwrap_or(Cents::ZERO);
            kiosk.set_close_difference(difference.to_french().into());
        }
    }

    fn search(&self, prefix: String) {
        self.tap_sender.submit(move |engine| {
            let rows = engine
                .search_pupils(&prefix)
                .map(|pupils| {
                    pupils
                        .into_iter()
                        .take(LIST_ROWS_MAX)
                        .map(|p| {
                            (
                                format!("{}|{}|{}", p.id, p.account, p.first_name),
                                format!("{} {}", p.first_name, p.last_name),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            Update::Rows(rows)
        });
    }

    fn submit(&self) {
        let kiosk = self.window.global::<Kiosk>();
        let mut state = self.state.borrow_mut();
        let entry = state.entry.clone();
        match &mut state.flow {
            Flow::Pin { card, .. } => {
                let card = *card;
                state.entry.clear();
                kiosk.set_entry(SharedString::new());
                let language = self.language;
                self.tap_sender
                    .submit(move |engine| match engine.staff_sign_in(card, &entry) {
                        Ok(staff) => Update::SignedIn(Ok(staff.to_string())),
                        Err(error) => Update::SignedIn(Err(texts::staff_error(language, &error))),
                    });
            }
            Flow::TopUp {
                account,
                name,
                confirming,
            } => {
                let amount = parse_amount(&entry);
                let method = if kiosk.get_cheque() {
                    TopUpMethod::Cheque
                } else {
                    TopUpMethod::Cash
                };
                if !*confirming {
                    *confirming = true;
                    kiosk.set_message(
                        texts::confirm_top_up(self.language, amount, method, name).into(),
                    );
                    return;
                }
                let account = account.clone();
                let language = self.language;
                self.tap_sender.submit(move |engine| {
                    match engine.top_up(&account, amount, method, None) {
                        Ok(seq) => Update::Done(Ok(texts::top_up_done(language, amount, seq))),
                        Err(error) => Update::Done(Err(texts::staff_error(language, &error))),
                    }
                });
            }
            Flow::Close { confirming, .. } => {
                let counted = parse_amount(&entry);
                if !*confirming {
                    *confirming = true;
                    kiosk.set_message(texts::confirm_close(self.language, counted).into());
                    return;
                }
                let language = self.language;
                self.tap_sender
                    .submit(move |engine| match engine.close_day(counted) {
                        Ok(close) => {
                            Update::Done(Ok(texts::close_done(language, close.cash_difference)))
                        }
                        Err(error) => Update::Done(Err(texts::staff_error(language, &error))),
                    });
            }
            _ => {}
        }
    }

    fn cancel(&self) {
        let kiosk = self.window.global::<Kiosk>();
        let mut state = self.state.borrow_mut();
        state.entry.clear();
        kiosk.set_entry(SharedString::new());
        kiosk.set_message(SharedString::new());
        state.flow = Flow::None;
        drop(state);
        self.set_base_screen();
    }

    fn staff_action(&self, action: &str) {
        let kiosk = self.window.global::<Kiosk>();
        let mut state = self.state.borrow_mut();
        state.entry.clear();
        kiosk.set_entry(SharedString::new());
        kiosk.set_message(SharedString::new());
        kiosk.set_rows(ModelRc::new(VecModel::from(Vec::<ListRow>::new())));
        let language = self.language;
        match action {
            "top-up" => {
                state.flow = Flow::TopUpChoose;
                kiosk.set_screen(Screen::StaffServe);
            }
            "serve" => {
                state.flow = Flow::Serve;
                kiosk.set_screen(Screen::StaffServe);
            }
            "void" => {
                state.flow = Flow::Void { confirming: None };
                kiosk.set_screen(Screen::StaffVoid);
                self.tap_sender.submit(move |engine| {
                    let rows = engine
                        .voidable_today(LIST_ROWS_MAX)
                        .map(|records| {
                            records
                                .into_iter()
                                .map(|(seq, body)| {
                                    (seq.to_string(), texts::record_row(language, seq, &body))
                                })
                                .collect()
                        })
                        .unwrap_or_default();
                    Update::Rows(rows)
                });
            }
            "close" => {
                self.tap_sender.submit(move |engine| {
                    Update::ClosePreview(
                        engine
                            .close_preview()
                            .map(|close| close.cash_expected)
                            .map_err(|e| texts::staff_error(language, &e)),
                    )
                });
            }
            "status" => {
                state.flow = Flow::Status;
                self.tap_sender.submit(move |engine| match engine.status() {
                    Ok(status) => Update::Status(texts::status_lines(language, &status)),
                    Err(error) => Update::Done(Err(texts::staff_error(language, &error))),
                });
            }
            _ => {}
        }
    }

    fn choose(&self, key: &str) {
        let kiosk = self.window.global::<Kiosk>();
        let mut state = self.state.borrow_mut();
        let language = self.language;
        match &mut state.flow {
            Flow::TopUpChoose => {
                let mut parts = key.split('|');
                let (Some(_pupil), Some(account), Some(name)) =
                    (parts.next(), parts.next(), parts.next())
                else {
                    return;
                };
                let Ok(account) = AccountId::parse(account) else {
                    return;
                };
                state.flow = Flow::TopUp {
                    account,
                    name: name.to_owned(),
                    confirming: false,
                };
                state.entry.clear();
                kiosk.set_first_name(name.into());
                kiosk.set_entry(Cents::ZERO.to_french().into());
                kiosk.set_cheque(false);
                kiosk.set_screen(Screen::StaffTopUp);
            }
            Flow::Serve => {
                let Some(pupil) = key.split('|').next().and_then(|id| PupilId::parse(id).ok())
                else {
                    return;
                };
                self.tap_sender
                    .submit(move |engine| match engine.serve_without_card(&pupil) {
                        Ok(served) => Update::Done(Ok(texts::served_by_staff(
                            language,
                            &served.first_name,
                            served.balance_after,
                        ))),
                        Err(error) => Update::Done(Err(texts::staff_error(language, &error))),
                    });
            }
            Flow::Void { confirming } => {
                let Some(seq) = key.parse::<u64>().ok().and_then(|seq| Seq::new(seq).ok()) else {
                    return;
                };
                if *confirming != Some(seq) {
                    *confirming = Some(seq);
                    kiosk.set_message(texts::confirm_void(language, seq).into());
                    return;
                }
                let reason = Text::parse(texts::VOID_REASON).expect("a valid reason");
                self.tap_sender
                    .submit(move |engine| match engine.void(seq, reason) {
                        Ok(_) => Update::Done(Ok(texts::void_done(language, seq))),
                        Err(error) => Update::Done(Err(texts::staff_error(language, &error))),
                    });
            }
            _ => {}
        }
    }
}

/// The screen the kiosk rests on: the staff menu while staff are signed in, else the ready
/// screen.
fn base_screen(staff_signed_in: bool) -> Screen {
    if staff_signed_in {
        Screen::StaffMenu
    } else {
        Screen::Ready
    }
}

fn parse_amount(digits: &str) -> Cents {
    Cents::new(digits.parse::<i64>().unwrap_or(0))
}

/// Selects the bundled translation; French is the source language.
pub fn select_language(language: Language) {
    let code = match language {
        Language::Fr => "",
        Language::De => "de",
        Language::En => "en",
    };
    // Both translations are compiled in; a failure here is a build defect the UI tests catch.
    let _ = slint::select_bundled_translation(code);
}
