//! The texts Rust writes for staff, in the kiosk's three languages (French, the source, German
//! and English): on the touchscreen's staff screens, and the sync's warnings in the text mode.
//! The pupil-facing screens' texts are Slint's own (`ui/app.slint`, `ui/lang`).

use proto::record::TopUpMethod;
use proto::snapshot::Language;
use proto::{Cents, RecordBody, Seq, Text};

use crate::engine::{EngineError, Status};
use crate::sync::SyncWarning;

/// The reason recorded with a void made at the kiosk.
pub const VOID_REASON: &str = "annulé à la borne par le personnel";

fn pick(language: Language, fr: String, de: String, en: String) -> String {
    match language {
        Language::Fr => fr,
        Language::De => de,
        Language::En => en,
    }
}

pub fn staff_error(language: Language, error: &EngineError) -> String {
    match error {
        EngineError::WrongPin { remaining } => pick(
            language,
            format!("Code incorrect, {remaining} essais restants"),
            format!("Falsche PIN, noch {remaining} Versuche"),
            format!("Wrong PIN, {remaining} attempts left"),
        ),
        EngineError::LockedOut => pick(
            language,
            "Carte bloquée : trop d'essais. Réessayez plus tard.".into(),
            "Karte gesperrt: zu viele Versuche. Später erneut versuchen.".into(),
            "Card locked: too many attempts. Try again later.".into(),
        ),
        EngineError::Amount { max, .. } => pick(
            language,
            format!("Montant entre 0,01 € et {max}"),
            format!("Betrag zwischen 0,01 € und {max}"),
            format!("Amount between 0,01 € and {max}"),
        ),
        EngineError::AlreadyServed => pick(
            language,
            "Déjà servi pour ce service".into(),
            "Für diese Ausgabe schon bedient".into(),
            "Already served this service".into(),
        ),
        EngineError::InsufficientFunds => pick(
            language,
            "Solde insuffisant".into(),
            "Guthaben reicht nicht".into(),
            "Balance too low".into(),
        ),
        EngineError::NoServiceNow => pick(
            language,
            "Pas de service maintenant".into(),
            "Gerade keine Essensausgabe".into(),
            "No meal service now".into(),
        ),
        EngineError::NotVoidable { .. } => pick(
            language,
            "Cette opération ne peut pas être annulée".into(),
            "Dieser Vorgang kann nicht storniert werden".into(),
            "This record cannot be voided".into(),
        ),
        EngineError::NotSignedIn => pick(
            language,
            "Session terminée".into(),
            "Sitzung beendet".into(),
            "Session ended".into(),
        ),
        other => pick(
            language,
            format!("Erreur : {other}"),
            format!("Fehler: {other}"),
            format!("Error: {other}"),
        ),
    }
}

fn method_name(language: Language, method: TopUpMethod) -> String {
    match (method, language) {
        (TopUpMethod::Cash, Language::Fr) => "espèces",
        (TopUpMethod::Cash, Language::De) => "bar",
        (TopUpMethod::Cash, Language::En) => "cash",
        (TopUpMethod::Cheque, Language::Fr) => "chèque",
        (TopUpMethod::Cheque, Language::De) => "Scheck",
        (TopUpMethod::Cheque, Language::En) => "cheque",
    }
    .into()
}

pub fn confirm_top_up(
    language: Language,
    amount: Cents,
    method: TopUpMethod,
    name: &str,
) -> String {
    let amount = amount.to_french();
    let method = method_name(language, method);
    pick(
        language,
        format!("Recharger {amount} ({method}) pour {name} ? Valider pour confirmer."),
        format!("{amount} ({method}) für {name} aufladen? Zum Bestätigen erneut bestätigen."),
        format!("Top up {amount} ({method}) for {name}? Confirm again to proceed."),
    )
}

pub fn top_up_done(language: Language, amount: Cents, seq: Seq) -> String {
    let amount = amount.to_french();
    pick(
        language,
        format!("Recharge de {amount} enregistrée (n° {seq})"),
        format!("Aufladung von {amount} erfasst (Nr. {seq})"),
        format!("Top-up of {amount} recorded (no. {seq})"),
    )
}

pub fn confirm_close(language: Language, counted: Cents) -> String {
    let counted = counted.to_french();
    pick(
        language,
        format!("Clôturer avec {counted} comptés ? Valider pour confirmer."),
        format!("Mit {counted} gezählt abschließen? Zum Bestätigen erneut bestätigen."),
        format!("Close with {counted} counted? Confirm again to proceed."),
    )
}

pub fn close_done(language: Language, difference: Cents) -> String {
    let difference = difference.to_french();
    pick(
        language,
        format!("Journée clôturée, écart {difference}"),
        format!("Tag abgeschlossen, Differenz {difference}"),
        format!("Day closed, difference {difference}"),
    )
}

pub fn served_by_staff(language: Language, first_name: &Text, balance: Cents) -> String {
    let balance = balance.to_french();
    pick(
        language,
        format!("{first_name} servi(e), solde {balance}"),
        format!("{first_name} bedient, Guthaben {balance}"),
        format!("{first_name} served, balance {balance}"),
    )
}

pub fn confirm_void(language: Language, seq: Seq) -> String {
    pick(
        language,
        format!("Annuler l'opération n° {seq} ? Touchez-la à nouveau."),
        format!("Vorgang Nr. {seq} stornieren? Erneut antippen."),
        format!("Void record no. {seq}? Touch it again."),
    )
}

pub fn void_done(language: Language, seq: Seq) -> String {
    pick(
        language,
        format!("Opération n° {seq} annulée"),
        format!("Vorgang Nr. {seq} storniert"),
        format!("Record no. {seq} voided"),
    )
}

pub fn record_row(language: Language, seq: Seq, body: &RecordBody) -> String {
    match body {
        RecordBody::Meal(meal) => pick(
            language,
            format!(
                "n° {seq} · repas {} · {}",
                meal.pupil,
                meal.price.to_french()
            ),
            format!(
                "Nr. {seq} · Essen {} · {}",
                meal.pupil,
                meal.price.to_french()
            ),
            format!(
                "no. {seq} · meal {} · {}",
                meal.pupil,
                meal.price.to_french()
            ),
        ),
        RecordBody::TopUp(top_up) => pick(
            language,
            format!(
                "n° {seq} · recharge {} · {}",
                top_up.account,
                top_up.amount.to_french()
            ),
            format!(
                "Nr. {seq} · Aufladung {} · {}",
                top_up.account,
                top_up.amount.to_french()
            ),
            format!(
                "no. {seq} · top-up {} · {}",
                top_up.account,
                top_up.amount.to_french()
            ),
        ),
        other => {
            let kind = other.kind().as_str();
            pick(
                language,
                format!("n° {seq} · {kind}"),
                format!("Nr. {seq} · {kind}"),
                format!("no. {seq} · {kind}"),
            )
        }
    }
}

/// The sync's warnings for staff, on one line.
pub fn sync_warnings(language: Language, warnings: &[SyncWarning]) -> String {
    warnings
        .iter()
        .map(|warning| sync_warning(language, warning))
        .collect::<Vec<_>>()
        .join(" · ")
}

/// A sync warning for staff.
fn sync_warning(language: Language, warning: &SyncWarning) -> String {
    match warning {
        SyncWarning::ClockDrift { drift_ms } => {
            let seconds = drift_ms / 1_000;
            pick(
                language,
                format!("Horloge décalée de {seconds} s : prévenir le service informatique"),
                format!("Uhr um {seconds} s verstellt: IT-Dienst benachrichtigen"),
                format!("Clock off by {seconds} s: tell IT"),
            )
        }
        SyncWarning::OfflineTooLong { days } => pick(
            language,
            format!("Pas de synchronisation depuis {days} jours : exporter les données"),
            format!("Seit {days} Tagen nicht synchronisiert: Daten exportieren"),
            format!("Not synced for {days} days: export the records"),
        ),
        SyncWarning::RecordsQuarantined { count } => pick(
            language,
            format!("{count} enregistrements refusés par le serveur"),
            format!("{count} Einträge vom Server abgelehnt"),
            format!("{count} records refused by the back-office"),
        ),
    }
}

pub fn status_lines(language: Language, status: &Status) -> Vec<String> {
    let none = || pick(language, "aucun".into(), "keine".into(), "none".into());
    let show = |seq: Option<Seq>| seq.map_or_else(none, |seq| seq.to_string());
    let (device, last, acknowledged, unsynced, snapshot, today) = match language {
        Language::Fr => (
            "Borne",
            "Dernier n°",
            "Dernier n° reçu",
            "Non synchronisés",
            "Version des données",
            "Aujourd'hui",
        ),
        Language::De => (
            "Terminal",
            "Letzte Nr.",
            "Zuletzt bestätigt",
            "Nicht synchronisiert",
            "Datenversion",
            "Heute",
        ),
        Language::En => (
            "Kiosk",
            "Last no.",
            "Last acknowledged",
            "Not synced",
            "Data version",
            "Today",
        ),
    };
    vec![
        format!("{device} : {}", status.device),
        format!("{last} : {}", show(status.counts.last_seq)),
        format!("{acknowledged} : {}", show(status.counts.acknowledged_seq)),
        format!("{unsynced} : {}", status.counts.unsynced_records),
        format!(
            "{snapshot} : {}",
            status.snapshot_version.map_or_else(none, |v| v.to_string())
        ),
        format!(
            "{today} : {} / {}",
            status.today.meals, status.today.top_ups
        ),
    ]
}
