//! `kiosk run --ui text`: the engine's answers as lines on standard output, for a terminal
//! without a display (the demo, a diagnosis over SSH). Each decision is one line, followed by
//! the kiosk's state (records written, acknowledged, unsynced; snapshot version), so a reader of
//! the log sees balances change and records sync. Staff flows need the touchscreen.

use std::future::Future;
use std::time::Duration;

use crate::engine::{Decision, Status};
use crate::limits::{TEXT_DRAIN_WAIT_MS_MAX, TEXT_SETTLE_MS};
use crate::worker::{TapSender, Update, UpdateReceiver};
use proto::snapshot::Language;

/// Prints updates until `input_ended` completes (typed input ended, or the kiosk was asked to
/// stop), then the engine's answers to every tap already queued and a last state line. Waits on
/// the update channel and `input_ended` only: no timer runs while the kiosk is idle.
pub async fn print_until_input_ends(
    sender: &TapSender,
    updates: &mut UpdateReceiver,
    input_ended: impl Future<Output = ()>,
) {
    request_state(sender);
    // The sync publishes its state after every round: only a change is worth a line.
    let mut last_sync_line = String::new();
    let mut print = |update: Update| {
        let tapped = matches!(update, Update::Tap(_));
        if let Some(line) = describe(&update) {
            let repeated = matches!(update, Update::Sync(_)) && line == last_sync_line;
            if !repeated {
                println!("{line}");
            }
            if matches!(update, Update::Sync(_)) {
                last_sync_line = line;
            }
        }
        if tapped {
            request_state(sender);
        }
    };
    let mut input_ended = std::pin::pin!(input_ended);
    loop {
        tokio::select! {
            update = updates.recv() => match update {
                Some(update) => print(update),
                None => return,
            },
            () = &mut input_ended => break,
        }
    }
    // A deadline, not a quiet spell: the sync's state may arrive at any pace.
    let settled = tokio::time::Instant::now() + Duration::from_millis(TEXT_SETTLE_MS);
    loop {
        match tokio::time::timeout_at(settled, updates.recv()).await {
            Ok(Some(update)) => print(update),
            Ok(None) => return,
            Err(_elapsed) => break,
        }
    }
    // Jobs run in order: the state asked now comes after every queued tap's answer.
    request_state(sender);
    let drain = Duration::from_millis(TEXT_DRAIN_WAIT_MS_MAX);
    while let Ok(Some(update)) = tokio::time::timeout(drain, updates.recv()).await {
        let last = matches!(update, Update::Status(_));
        if let Some(line) = describe(&update) {
            println!("{line}");
        }
        if last {
            break;
        }
    }
}

/// Asks the engine for its state line.
fn request_state(sender: &TapSender) {
    sender.submit(|engine| match engine.status() {
        Ok(status) => Update::Status(vec![state_line(&status)]),
        Err(error) => Update::Status(vec![format!("unavailable: {error}")]),
    });
}

/// The state in one line.
pub fn state_line(status: &Status) -> String {
    let show = |value: Option<String>| value.unwrap_or_else(|| "none".to_owned());
    format!(
        "device {} · last record {} · acknowledged {} · unsynced {} · snapshot {} · today {} meals, {} top-ups",
        status.device,
        show(status.counts.last_seq.map(|seq| seq.to_string())),
        show(status.counts.acknowledged_seq.map(|seq| seq.to_string())),
        status.counts.unsynced_records,
        show(status.snapshot_version.map(|version| version.to_string())),
        status.today.meals,
        status.today.top_ups,
    )
}

/// One update as one line; the first word says what it is, for people and for scripts. None
/// for what shows nothing.
pub fn describe(update: &Update) -> Option<String> {
    let line = match update {
        Update::Tap(decision) => describe_decision(decision),
        Update::ReaderAvailable(true) => "reader    available".to_owned(),
        Update::ReaderAvailable(false) => "reader    unavailable: please see staff".to_owned(),
        Update::SignedIn(Ok(name)) => format!("staff     {name} signed in"),
        Update::SignedIn(Err(message)) => format!("staff     sign-in refused: {message}"),
        Update::SignedOut => "staff     signed out".to_owned(),
        Update::Rows(rows) => format!("rows      {}", rows.len()),
        Update::ClosePreview(Ok(expected)) => {
            format!("close     cash expected {}", expected.to_french())
        }
        Update::ClosePreview(Err(message)) | Update::Done(Err(message)) => {
            format!("refused   {message}")
        }
        Update::Done(Ok(message)) => format!("done      {message}"),
        Update::Status(lines) => format!("state     {}", lines.join(" · ")),
        Update::Sync(state) => {
            let mut line = format!(
                "sync      {} · {} unsynced · last sync {}",
                if state.online { "online" } else { "offline" },
                state.unsynced_records,
                if state.last_sync_shown.is_empty() {
                    "never"
                } else {
                    &state.last_sync_shown
                }
            );
            if !state.warnings.is_empty() {
                line.push_str(" · ");
                line.push_str(&crate::texts::sync_warnings(Language::En, &state.warnings));
            }
            line
        }
        Update::Clock { service_name, time } => {
            format!("clock     {time} {service_name}")
        }
    };
    Some(line)
}

fn describe_decision(decision: &Decision) -> String {
    match decision {
        Decision::Served(served) => {
            let mut line = format!(
                "served    {} · {} · balance {} · record {}",
                served.first_name,
                served.price.to_french(),
                served.balance_after.to_french(),
                served.seq
            );
            if !served.dietary.is_empty() {
                let flags: Vec<&str> = served.dietary.iter().map(|flag| flag.as_str()).collect();
                line.push_str(&format!(" · dietary alert: {}", flags.join(", ")));
            }
            line
        }
        Decision::AlreadyServed { first_name } => {
            format!("already   {first_name} was served this service: nothing charged")
        }
        // The operator's view may say why; the pupil's screen says only "see staff".
        Decision::InsufficientFunds { first_name } => {
            format!("see staff {first_name}: balance below the account's floor")
        }
        Decision::UnknownCard => "see staff unknown card".to_owned(),
        Decision::BlockedCard => "see staff blocked card (hotlist)".to_owned(),
        Decision::NoServiceNow => "no meal   no service open now".to_owned(),
        Decision::StaffCard { name, .. } => {
            format!("staff     {name}'s card: staff mode needs the touchscreen")
        }
        Decision::OutOfService { reason } => format!("out of service: {reason}"),
    }
}
