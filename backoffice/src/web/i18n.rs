//! Every text of the web pages, in French (the source language), English and German. A text
//! is a [`Msg`] variant with its three translations side by side, so a missing translation
//! does not compile.

/// A language of the pages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    Fr,
    En,
    De,
}

impl Lang {
    pub const ALL: [Lang; 3] = [Lang::Fr, Lang::En, Lang::De];

    /// The ISO 639-1 code, as in `lang` attributes and the language cookie.
    pub fn code(self) -> &'static str {
        match self {
            Lang::Fr => "fr",
            Lang::En => "en",
            Lang::De => "de",
        }
    }

    /// The language's name in itself, for the switch.
    pub fn name(self) -> &'static str {
        match self {
            Lang::Fr => "Français",
            Lang::En => "English",
            Lang::De => "Deutsch",
        }
    }

    pub fn parse(code: &str) -> Option<Lang> {
        Lang::ALL.into_iter().find(|lang| lang.code() == code)
    }

    /// The first language of an `Accept-Language` header that the pages speak, in the order
    /// given (browsers list by preference; weights are not needed for that).
    pub fn from_accept_language(header: &str) -> Option<Lang> {
        header.split(',').find_map(|item| {
            let tag = item.split(';').next()?.trim();
            let primary = tag.split('-').next()?.to_ascii_lowercase();
            Lang::parse(&primary)
        })
    }
}

macro_rules! messages {
    ($($name:ident => $fr:literal, $en:literal, $de:literal;)*) => {
        /// A text of the pages.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum Msg { $($name,)* }

        impl Msg {
            pub const ALL: &[Msg] = &[$(Msg::$name,)*];

            pub fn text(self, lang: Lang) -> &'static str {
                match (self, lang) {
                    $(
                        (Msg::$name, Lang::Fr) => $fr,
                        (Msg::$name, Lang::En) => $en,
                        (Msg::$name, Lang::De) => $de,
                    )*
                }
            }
        }
    };
}

messages! {
    AppName => "Cantine · gestion", "Canteen back-office", "Kantine · Verwaltung";
    NavLabel => "Navigation principale", "Main navigation", "Hauptnavigation";
    LanguageLabel => "Langue", "Language", "Sprache";
    NavSearch => "Rechercher", "Search", "Suche";
    NavMeals => "Repas du jour", "Today's meals", "Heutige Essen";
    NavDashboard => "Tableau de bord", "Dashboard", "Übersicht";
    NavFleet => "Bornes", "Kiosks", "Terminals";
    NavAdmin => "Administration", "Administration", "Verwaltung";
    NavDevices => "Bornes enrôlées", "Enrolled kiosks", "Registrierte Terminals";
    NavUsers => "Utilisateurs", "Users", "Benutzer";
    NavImport => "Import CSV", "CSV import", "CSV-Import";
    SignIn => "Connexion", "Sign in", "Anmelden";
    SignOut => "Déconnexion", "Sign out", "Abmelden";
    SignInFailed => "Nom ou mot de passe incorrect.", "Wrong name or password.", "Falscher Name oder falsches Passwort.";
    SignInLocked => "Trop d'échecs depuis cet appareil : ce compte y est bloqué pendant 15 minutes.", "Too many failures from this device: this account is locked here for 15 minutes.", "Zu viele Fehlversuche von diesem Gerät: dieses Konto ist hier 15 Minuten gesperrt.";
    SignInBusy => "Trop de connexions en même temps : réessayez dans un instant.", "Too many sign-ins at once: try again in a moment.", "Zu viele Anmeldungen gleichzeitig: versuchen Sie es gleich noch einmal.";
    UserName => "Nom d'utilisateur", "User name", "Benutzername";
    Password => "Mot de passe", "Password", "Passwort";
    NewPassword => "Nouveau mot de passe (facultatif)", "New password (optional)", "Neues Passwort (optional)";
    RoleStaff => "personnel de cantine", "canteen staff", "Kantinenpersonal";
    RoleFinance => "finances", "finance", "Finanzen";
    RoleAdmin => "administration", "administration", "Verwaltung";
    RolePayments => "paiement en ligne", "online payments", "Online-Zahlungen";
    Forbidden => "Accès refusé", "Access denied", "Zugriff verweigert";
    CsrfRefused => "Formulaire refusé : rechargez la page et recommencez.", "Form refused: reload the page and try again.", "Formular abgelehnt: Seite neu laden und erneut versuchen.";
    NotFound => "Introuvable", "Not found", "Nicht gefunden";
    Invalid => "Saisie refusée", "Input refused", "Eingabe abgelehnt";
    Unavailable => "Service momentanément indisponible ; réessayez.", "Service unavailable for now; try again.", "Dienst vorübergehend nicht verfügbar; bitte erneut versuchen.";
    BackHome => "Retour à l'accueil", "Back to the start page", "Zur Startseite";
    Search => "Rechercher", "Search", "Suchen";
    SearchLabel => "Nom, numéro d'élève, de compte ou de carte", "Name, pupil, account or card number", "Name, Schüler-, Konto- oder Kartennummer";
    SearchResults => "Résultats de la recherche", "Search results", "Suchergebnisse";
    SearchTooLong => "Recherche trop longue.", "Search text too long.", "Suchtext zu lang.";
    NoResults => "Aucun résultat.", "Nothing found.", "Nichts gefunden.";
    Pupil => "Élève", "Pupil", "Schüler";
    Pupils => "Élèves", "Pupils", "Schüler";
    PupilId => "N° élève", "Pupil no.", "Schüler-Nr.";
    Site => "Site", "Site", "Standort";
    AllSites => "Tous les sites", "All sites", "Alle Standorte";
    Account => "Compte", "Account", "Konto";
    Accounts => "comptes", "accounts", "Konten";
    Card => "Carte", "Card", "Karte";
    Cards => "Cartes", "Cards", "Karten";
    NoCards => "Aucune carte.", "No card.", "Keine Karte.";
    Active => "active", "active", "aktiv";
    Blocked => "bloquée", "blocked", "gesperrt";
    BlockCard => "Bloquer (perdue)", "Block (lost)", "Sperren (verloren)";
    ReplaceCard => "Remplacer", "Replace", "Ersetzen";
    NewCardUid => "N° de la nouvelle carte", "New card number", "Nummer der neuen Karte";
    Balance => "Solde", "Balance", "Guthaben";
    NewBalance => "Nouveau solde", "New balance", "Neues Guthaben";
    OverdraftFloor => "Découvert autorisé jusqu'à", "Overdraft allowed down to", "Überziehung erlaubt bis";
    TopUp => "Rechargement", "Top-up", "Aufladung";
    AmountEuros => "Montant (€)", "Amount (€)", "Betrag (€)";
    Amount => "Montant", "Amount", "Betrag";
    AmountInvalid => "Montant invalide : des euros avec au plus deux décimales.", "Invalid amount: euros with at most two decimals.", "Ungültiger Betrag: Euro mit höchstens zwei Nachkommastellen.";
    Method => "Moyen de paiement", "Payment method", "Zahlungsart";
    MethodInvalid => "Moyen de paiement inconnu.", "Unknown payment method.", "Unbekannte Zahlungsart.";
    Cash => "Espèces", "Cash", "Bargeld";
    Cheque => "Chèque", "Cheque", "Scheck";
    Reference => "Référence (n° de chèque)", "Reference (cheque no.)", "Referenz (Schecknr.)";
    Continue => "Continuer", "Continue", "Weiter";
    ConfirmTopUpTitle => "Confirmer le rechargement", "Confirm the top-up", "Aufladung bestätigen";
    ConfirmTopUp => "Vérifiez avant d'enregistrer :", "Check before recording:", "Vor dem Buchen prüfen:";
    Confirm => "Confirmer", "Confirm", "Bestätigen";
    Cancel => "Annuler", "Cancel", "Abbrechen";
    Receipt => "Reçu de rechargement", "Top-up receipt", "Aufladebeleg";
    Operator => "Saisi par", "Recorded by", "Erfasst von";
    Print => "Imprimer", "Print", "Drucken";
    BackToAccount => "Retour au compte", "Back to the account", "Zurück zum Konto";
    DoneTopUp => "Rechargement enregistré.", "Top-up recorded.", "Aufladung gebucht.";
    DoneBlocked => "Carte bloquée sur toutes les bornes.", "Card blocked on every kiosk.", "Karte an allen Terminals gesperrt.";
    DoneReplaced => "Ancienne carte bloquée, nouvelle carte associée ; le solde reste sur le compte.", "Old card blocked, new card bound; the balance stays with the account.", "Alte Karte gesperrt, neue Karte zugeordnet; das Guthaben bleibt auf dem Konto.";
    DoneDietary => "Régimes alimentaires enregistrés.", "Dietary flags saved.", "Ernährungshinweise gespeichert.";
    DoneSaved => "Enregistré.", "Saved.", "Gespeichert.";
    DoneRevoked => "Borne révoquée.", "Kiosk revoked.", "Terminal widerrufen.";
    Bracket => "tranche", "bracket", "Stufe";
    DietaryFlags => "Régimes alimentaires", "Dietary flags", "Ernährungshinweise";
    DietaryHelp => "séparés par des virgules, par ex. sans_porc, allergie_arachide", "separated by commas, e.g. no_pork, peanut_allergy", "durch Kommas getrennt, z. B. kein_schwein, erdnussallergie";
    Save => "Enregistrer", "Save", "Speichern";
    DisableUser => "Désactiver", "Disable", "Deaktivieren";
    EnableUser => "Réactiver", "Enable", "Reaktivieren";
    UserDisabled => "désactivé", "disabled", "deaktiviert";
    History => "Derniers mouvements", "Recent movements", "Letzte Buchungen";
    NoHistory => "Aucun mouvement.", "No movement yet.", "Noch keine Buchung.";
    When => "Date", "When", "Zeitpunkt";
    What => "Opération", "What", "Vorgang";
    Detail => "Détail", "Detail", "Einzelheiten";
    KindMeal => "Repas", "Meal", "Essen";
    KindVoid => "Annulation", "Void", "Storno";
    KindAdjustment => "Régularisation", "Adjustment", "Korrektur";
    KindOnlinePayment => "Paiement en ligne", "Online payment", "Online-Zahlung";
    Day => "Jour", "Day", "Tag";
    DayInvalid => "Jour invalide.", "Invalid day.", "Ungültiger Tag.";
    Show => "Afficher", "Show", "Anzeigen";
    MealsServed => "repas servis", "meals served", "Essen ausgegeben";
    Time => "Heure", "Time", "Uhrzeit";
    Service => "Service", "Service", "Ausgabe";
    Services => "Services", "Services", "Ausgaben";
    Via => "Par", "Via", "Über";
    ByStaff => "personnel", "staff", "Personal";
    Kiosk => "Borne", "Kiosk", "Terminal";
    Price => "Prix", "Price", "Preis";
    PriceEuros => "Prix (€)", "Price (€)", "Preis (€)";
    Meals => "Repas", "Meals", "Essen";
    Revenue => "Recettes", "Revenue", "Einnahmen";
    MealsPerDay => "Repas par jour", "Meals per day", "Essen pro Tag";
    RevenuePerDay => "Recettes par jour", "Revenue per day", "Einnahmen pro Tag";
    PerSite => "Par site", "Per site", "Pro Standort";
    PerDay => "Par jour", "Per day", "Pro Tag";
    Period => "Période", "Period", "Zeitraum";
    KiosksSilent => "borne(s) sans nouvelles depuis trop longtemps", "kiosk(s) silent for too long", "Terminal(s) zu lange ohne Meldung";
    State => "État", "State", "Zustand";
    Online => "en ligne", "online", "online";
    Silent => "silencieuse", "silent", "stumm";
    Revoked => "révoquée", "revoked", "widerrufen";
    LastSeen => "Dernier contact", "Last seen", "Zuletzt gesehen";
    NeverSeen => "jamais connectée", "never seen", "nie gesehen";
    Version => "Version", "Version", "Version";
    Unsynced => "Non transmis", "Unsynced", "Nicht übertragen";
    Reader => "Lecteur", "Reader", "Leser";
    ReaderReady => "prêt", "ready", "bereit";
    ReaderUnavailable => "indisponible", "unavailable", "nicht verfügbar";
    ClockDrift => "Décalage d'horloge", "Clock drift", "Uhrabweichung";
    DevicesHelp => "Enrôler une borne à partir de sa clé publique, ou la révoquer.", "Enrol a kiosk from its public key, or revoke one.", "Ein Terminal mit seinem öffentlichen Schlüssel registrieren oder widerrufen.";
    UsersHelp => "Comptes du personnel, des finances et de l'administration.", "Staff, finance and administration users.", "Benutzer von Personal, Finanzen und Verwaltung.";
    ImportHelp => "Importer comptes, élèves et cartes depuis un fichier CSV.", "Import accounts, pupils and cards from a CSV file.", "Konten, Schüler und Karten aus einer CSV-Datei importieren.";
    SitesTitle => "Sites : tarifs et services", "Sites: tariffs and services", "Standorte: Tarife und Ausgaben";
    OtherSite => "Autre site", "Other site", "Anderer Standort";
    EnrolKiosk => "Enrôler une borne", "Enrol a kiosk", "Terminal registrieren";
    PublicKeyPem => "Clé publique (PEM affiché par « kiosk init »)", "Public key (the PEM that \"kiosk init\" printed)", "Öffentlicher Schlüssel (PEM-Ausgabe von „kiosk init“)";
    Enrol => "Enrôler", "Enrol", "Registrieren";
    KeyFingerprint => "Empreinte de la clé", "Key fingerprint", "Schlüssel-Fingerabdruck";
    Revoke => "Révoquer", "Revoke", "Widerrufen";
    RevokeConfirm => "Révoquer cette borne ? Elle sera refusée dès maintenant.", "Revoke this kiosk? It is refused from now on.", "Dieses Terminal widerrufen? Es wird ab sofort abgewiesen.";
    AddUser => "Ajouter un utilisateur", "Add a user", "Benutzer hinzufügen";
    Role => "Rôle", "Role", "Rolle";
    SiteForStaff => "Site (personnel de cantine seulement)", "Site (canteen staff only)", "Standort (nur Kantinenpersonal)";
    Tariffs => "Tarifs", "Tariffs", "Tarife";
    MealType => "Type de repas", "Meal type", "Essensart";
    Name => "Nom", "Name", "Name";
    Weekdays => "Jours", "Weekdays", "Wochentage";
    Hours => "Horaires", "Hours", "Uhrzeiten";
    Start => "Début", "Start", "Beginn";
    End => "Fin", "End", "Ende";
    Monday => "lundi", "Monday", "Montag";
    Tuesday => "mardi", "Tuesday", "Dienstag";
    Wednesday => "mercredi", "Wednesday", "Mittwoch";
    Thursday => "jeudi", "Thursday", "Donnerstag";
    Friday => "vendredi", "Friday", "Freitag";
    Saturday => "samedi", "Saturday", "Samstag";
    Sunday => "dimanche", "Sunday", "Sonntag";
    ImportColumns => "Colonnes, avec une ligne d'en-tête :", "Columns, with a header line:", "Spalten, mit einer Kopfzeile:";
    CsvFile => "Fichier CSV", "CSV file", "CSV-Datei";
    CsvText => "Contenu CSV", "CSV content", "CSV-Inhalt";
    Check => "Vérifier", "Check", "Prüfen";
    ImportErrors => "ligne(s) en erreur ; rien n'a été importé.", "line(s) in error; nothing was imported.", "fehlerhafte Zeile(n); nichts wurde importiert.";
    ImportNothingWritten => "Rien n'est encore enregistré.", "Nothing is written yet.", "Noch nichts gespeichert.";
    ImportConfirm => "Importer", "Import", "Importieren";
    ImportDone => "élèves importés.", "pupils imported.", "Schüler importiert.";
    Line => "Ligne", "Line", "Zeile";
    Error => "Erreur", "Error", "Fehler";
    NavReconciliation => "Rapprochement", "Reconciliation", "Abstimmung";
    SiteOptional => "Site (vide : tous)", "Site (empty: all)", "Standort (leer: alle)";
    RunReconciliation => "Lancer le rapprochement", "Run the reconciliation", "Abstimmung ausführen";
    RunBy => "Rapprochement fait par", "Reconciled by", "Abgestimmt von";
    SignedOff => "clôturé par", "signed off by", "abgeschlossen von";
    NotSignedOff => "non clôturé", "not signed off", "nicht abgeschlossen";
    SignOff => "Clôturer la journée", "Sign the day off", "Tag abschließen";
    RecordsChecked => "Enregistrements vérifiés", "Records checked", "Geprüfte Datensätze";
    Clean => "conforme", "clean", "in Ordnung";
    NeedsAttention => "à examiner", "needs attention", "zu prüfen";
    CashExpected => "Espèces attendues", "Cash expected", "Erwartetes Bargeld";
    CashCounted => "Espèces comptées", "Cash counted", "Gezähltes Bargeld";
    CashDifference => "Écart de caisse", "Cash difference", "Kassendifferenz";
    PerKiosk => "Par borne", "Per kiosk", "Pro Terminal";
    Records => "Enregistrements", "Records", "Datensätze";
    DayClose => "Clôture (Z)", "Day close (Z)", "Tagesabschluss (Z)";
    Chain => "Chaîne", "Chain", "Kette";
    Missing => "absente", "missing", "fehlt";
    Findings => "Anomalies", "Findings", "Befunde";
    NoFindings => "Aucune anomalie.", "No findings.", "Keine Befunde.";
    Defect => "défaut", "defect", "Mangel";
    Evidence => "Preuves signées", "Signed evidence", "Signierte Belege";
    Signature => "signature", "signature", "Signatur";
    NotReconciled => "Cette journée n'a pas encore été rapprochée.", "This day is not reconciled yet.", "Dieser Tag ist noch nicht abgestimmt.";
    ProposedVoids => "Annulations proposées", "Proposed voids", "Vorgeschlagene Stornos";
    NoProposedVoids => "Aucune annulation proposée.", "No proposed void.", "Kein vorgeschlagenes Storno.";
    Kept => "Repas conservé", "Meal kept", "Behaltenes Essen";
    Proposed => "proposée", "proposed", "vorgeschlagen";
    Approved => "approuvée", "approved", "genehmigt";
    Rejected => "rejetée", "rejected", "abgelehnt";
    Approve => "Approuver", "Approve", "Genehmigen";
    Reject => "Rejeter", "Reject", "Ablehnen";
    Exports => "Exports", "Exports", "Exporte";
}

#[cfg(test)]
mod tests {
    use super::{Lang, Msg};

    #[test]
    fn every_text_is_translated() {
        for msg in Msg::ALL {
            for lang in Lang::ALL {
                assert!(!msg.text(lang).trim().is_empty(), "{msg:?} in {lang:?}");
            }
        }
    }

    fn check(header: &str, expected: Option<Lang>) {
        assert_eq!(Lang::from_accept_language(header), expected, "{header}");
    }

    #[test]
    fn accept_language() {
        check("de-CH,de;q=0.9", Some(Lang::De));
        check("en-US,en;q=0.9,fr;q=0.8", Some(Lang::En));
        check("pt-BR, fr", Some(Lang::Fr));
        check("*", None);
        check("", None);
    }
}
