//! The accounting journal in the French FEC layout.

use std::collections::BTreeMap;
use std::io::Write;

use proto::ServiceDate;

use super::ExportError;
use super::rows::{Rows, SiteSums};

/// The accounts of the journal: number, label, and what moves through it.
pub const ACCOUNTS: [(&str, &str, &str); 8] = [
    (
        "4191",
        "Familles - avances reçues",
        "families' prepaid balances: credited by top-ups, debited by meals",
    ),
    (
        "706",
        "Prestations de services - repas",
        "meal revenue, net of voided meals",
    ),
    (
        "530",
        "Caisse",
        "cash paid in at kiosks and at the counter, as counted",
    ),
    (
        "5112",
        "Chèques à encaisser",
        "cheques paid in at kiosks and at the counter",
    ),
    (
        "467",
        "Prestataire de paiement en ligne",
        "online payments, due from the payment provider",
    ),
    (
        "658",
        "Charges diverses de gestion courante",
        "cash shortfalls and credits by finance",
    ),
    (
        "758",
        "Produits divers de gestion courante",
        "cash surpluses and debits by finance",
    ),
    (
        "471",
        "Compte d'attente",
        "reserved: never used by these exports",
    ),
];

/// The FEC columns, in order.
pub const FEC_COLUMNS: [&str; 18] = [
    "JournalCode",
    "JournalLib",
    "EcritureNum",
    "EcritureDate",
    "CompteNum",
    "CompteLib",
    "CompAuxNum",
    "CompAuxLib",
    "PieceRef",
    "PieceDate",
    "EcritureLib",
    "Debit",
    "Credit",
    "EcritureLet",
    "DateLet",
    "ValidDate",
    "Montantdevise",
    "Idevise",
];

/// A journal: its code and its label.
type Journal = (&'static str, &'static str);

const SALES: Journal = ("VT", "Ventes de repas");
const CASH: Journal = ("CA", "Caisse");
const CHEQUES: Journal = ("CH", "Chèques");
const ONLINE: Journal = ("WEB", "Paiements en ligne");
const MISC: Journal = ("OD", "Opérations diverses");

/// The label of the back-office's own entries, where a site's name would be.
const BACK_OFFICE: &str = "back-office";

/// One double entry: debit one account, credit another.
struct Entry<'a> {
    journal: Journal,
    date: ServiceDate,
    site: &'a str,
    label: String,
    debit: &'static str,
    credit: &'static str,
    amount: i64,
}

pub(super) fn write_journal(rows: &Rows, out: &mut impl Write) -> Result<u64, ExportError> {
    let mut entries = Vec::new();
    for ((date, site), sums) in &rows.sums {
        site_entries(&mut entries, *date, site, sums);
    }
    for row in rows.top_ups.iter().filter(|row| row.source == "online") {
        entries.push(Entry {
            journal: ONLINE,
            date: row.date,
            site: BACK_OFFICE,
            label: format!("Paiement en ligne {}", row.reference),
            debit: "467",
            credit: "4191",
            amount: row.amount.get(),
        });
    }
    for (date, (credits, debits)) in &rows.adjustments {
        adjustment_entries(&mut entries, *date, *credits, *debits);
    }
    entries.sort_by(|a, b| (a.journal.0, a.date).cmp(&(b.journal.0, b.date)));
    write_fec(&entries, out)
}

/// The entries of one site's day (or the counter's, `site` empty): meals, voids, top-ups and
/// the cash difference.
fn site_entries<'a>(
    entries: &mut Vec<Entry<'a>>,
    date: ServiceDate,
    site: &'a str,
    sums: &SiteSums,
) {
    let place = if site.is_empty() { BACK_OFFICE } else { site };
    let mut push = |journal, label: &str, debit, credit, amount: i64| {
        // An amount of the other sign swaps the sides, so every line is positive.
        let (debit, credit, amount) = if amount < 0 {
            (credit, debit, -amount)
        } else {
            (debit, credit, amount)
        };
        if amount != 0 {
            entries.push(Entry {
                journal,
                date,
                site: place,
                label: format!("{label} {place} {date}"),
                debit,
                credit,
                amount,
            });
        }
    };
    push(SALES, "Repas", "4191", "706", sums.meals);
    push(SALES, "Repas annulés", "706", "4191", sums.voided_meals);
    push(CASH, "Recharges espèces", "530", "4191", sums.cash);
    push(
        CASH,
        "Recharges espèces annulées",
        "4191",
        "530",
        sums.voided_cash,
    );
    push(CHEQUES, "Recharges chèques", "5112", "4191", sums.cheques);
    push(
        CHEQUES,
        "Recharges chèques annulées",
        "4191",
        "5112",
        sums.voided_cheques,
    );
    // Counted minus expected: a surplus is a gain, a shortfall a charge.
    if sums.cash_difference > 0 {
        push(
            CASH,
            "Excédent de caisse",
            "530",
            "758",
            sums.cash_difference,
        );
    } else {
        push(
            CASH,
            "Manquant de caisse",
            "658",
            "530",
            -sums.cash_difference,
        );
    }
}

/// Finance's corrections of a day: credits to families are a charge, debits a gain.
fn adjustment_entries(entries: &mut Vec<Entry<'_>>, date: ServiceDate, credits: i64, debits: i64) {
    for (label, debit, credit, amount) in [
        ("Corrections en faveur des familles", "658", "4191", credits),
        ("Corrections au débit des familles", "4191", "758", debits),
    ] {
        if amount != 0 {
            entries.push(Entry {
                journal: MISC,
                date,
                site: BACK_OFFICE,
                label: format!("{label} {date}"),
                debit,
                credit,
                amount,
            });
        }
    }
}

/// Writes the entries in the FEC layout, two lines each (debit, credit), numbered per journal.
fn write_fec(entries: &[Entry<'_>], out: &mut impl Write) -> Result<u64, ExportError> {
    let label_of = |number: &str| {
        ACCOUNTS
            .iter()
            .find(|(account, _, _)| *account == number)
            .map_or("", |(_, label, _)| label)
    };
    writeln!(out, "{}", FEC_COLUMNS.join("\t"))?;
    let mut lines = 1;
    let mut numbers: BTreeMap<&str, u64> = BTreeMap::new();
    for entry in entries {
        let number = numbers.entry(entry.journal.0).or_insert(0);
        *number += 1;
        let ecriture = format!("{}{:06}", entry.journal.0, number);
        let date = fec_date(entry.date);
        let piece = format!("{}-{}", entry.date, entry.site);
        for (account, debit, credit) in [
            (entry.debit, entry.amount, 0),
            (entry.credit, 0, entry.amount),
        ] {
            let fields = [
                entry.journal.0,
                entry.journal.1,
                &ecriture,
                &date,
                account,
                label_of(account),
                "",
                "",
                &piece,
                &date,
                &entry.label.replace(['\t', '\n', '\r'], " "),
                &fec_amount(debit),
                &fec_amount(credit),
                "",
                "",
                &date,
                "",
                "",
            ];
            writeln!(out, "{}", fields.join("\t"))?;
            lines += 1;
        }
    }
    out.flush()?;
    Ok(lines)
}

fn fec_date(date: ServiceDate) -> String {
    date.to_string().replace('-', "")
}

/// Cents as FEC writes amounts: `1234,50`.
fn fec_amount(cents: i64) -> String {
    format!("{},{:02}", cents / 100, (cents % 100).abs())
}
