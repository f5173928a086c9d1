//! The finance subcommands: reconcile a day, export a period, verify a records export.

use anyhow::Context as _;
use backoffice::export::{self, ExportKind, Period};
use backoffice::manage::Actor;
use backoffice::reconcile::{self, Settings};
use backoffice::store::Store;
use proto::{DeviceId, ServiceDate, SiteId, Timestamp};

use crate::args::{ExportArgs, ReconcileArgs};
use crate::people::arg;

/// Reconciles and stores a day; prints the summary (or the JSON report) and exits 2 when a
/// finding is a defect.
pub async fn reconcile<S: Store>(
    store: &S,
    actor: &Actor,
    command: ReconcileArgs,
    now: Timestamp,
) -> anyhow::Result<()> {
    let settings = Settings::new(&command.time_zone).context("--time-zone")?;
    let date = arg("--date", &command.date, ServiceDate::parse)?;
    let site = command
        .site
        .map(|site| arg("--site", &site, SiteId::parse))
        .transpose()?;
    let terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let report = reconcile::run_and_save(
        store,
        actor,
        date,
        site.as_ref(),
        &settings,
        now,
        |done, total| {
            if terminal {
                eprint!("\r{}", progress_bar(done, total));
            }
        },
    )
    .await?;
    if terminal {
        eprintln!();
    }
    if command.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", summary(&report));
    }
    if !report.is_clean() {
        std::process::exit(2);
    }
    Ok(())
}

/// Writes an export to `--out` or standard output.
pub async fn export<S: Store>(store: &S, actor: &Actor, command: ExportArgs) -> anyhow::Result<()> {
    let settings = Settings::new(&command.time_zone).context("--time-zone")?;
    let kind = ExportKind::parse(&command.kind)?;
    let from = arg("--from", &command.from, ServiceDate::parse)?;
    let to = command
        .to
        .map(|to| arg("--to", &to, ServiceDate::parse))
        .transpose()?
        .unwrap_or(from);
    let period = Period::new(from, to)?;
    let site = command
        .site
        .map(|site| arg("--site", &site, SiteId::parse))
        .transpose()?;
    let site = site.as_ref();
    let lines = match &command.out {
        Some(path) => {
            let file = std::fs::File::create(path)
                .with_context(|| format!("creating {}", path.display()))?;
            let mut writer = std::io::BufWriter::new(file);
            export::write(store, actor, kind, period, site, &settings, &mut writer).await?
        }
        None => {
            let mut writer = std::io::BufWriter::new(std::io::stdout());
            export::write(store, actor, kind, period, site, &settings, &mut writer).await?
        }
    };
    if let Some(path) = command.out {
        eprintln!("{lines} lines written to {}", path.display());
    }
    Ok(())
}

/// `backoffice verify FILE`: every violation on standard output, non-zero exit if any.
pub fn verify(file: &std::path::Path) -> anyhow::Result<()> {
    let reader = std::io::BufReader::new(
        std::fs::File::open(file).with_context(|| format!("opening {}", file.display()))?,
    );
    let verification = export::verify(reader)?;
    for violation in &verification.violations {
        let device = violation
            .device
            .as_ref()
            .map_or_else(|| "-".to_owned(), ToString::to_string);
        let seq = violation
            .seq
            .map_or_else(|| "-".to_owned(), |seq| seq.to_string());
        println!("{device}\t{seq}\t{violation}");
    }
    println!(
        "{}: {} kiosk(s), {} record(s), {} violation(s)",
        file.display(),
        verification.devices,
        verification.records,
        verification.violations.len()
    );
    if !verification.violations.is_empty() {
        std::process::exit(1);
    }
    Ok(())
}

/// `[#####.....] 12/500 kiosks`, for a terminal.
fn progress_bar(done: usize, total: usize) -> String {
    const WIDTH: usize = 40;
    let filled = (done * WIDTH).checked_div(total).unwrap_or(WIDTH);
    format!(
        "reconciling [{}{}] {done}/{total} kiosks",
        "#".repeat(filled),
        ".".repeat(WIDTH - filled)
    )
}

/// The report in a few lines, then every finding.
fn summary(report: &reconcile::Report) -> String {
    let mut text = format!(
        "reconciliation of {} ({}), {} records checked\n",
        report.date,
        report
            .site
            .as_ref()
            .map_or_else(|| "all sites".to_owned(), ToString::to_string),
        report.records_checked
    );
    for site in &report.sites {
        text.push_str(&format!(
            "site {}: {} kiosk(s), {} meals, revenue {} cents, cash expected {} counted {} \
             (difference {})\n",
            site.site.as_ref().map_or("-", SiteId::as_str),
            site.kiosks,
            site.meals,
            site.revenue.get(),
            site.cash_expected.get(),
            site.cash_counted.get(),
            site.cash_difference.get()
        ));
    }
    for line in &report.top_ups {
        text.push_str(&format!(
            "top-ups {:?} {:?}: {} for {} cents\n",
            line.source,
            line.method,
            line.count,
            line.total.get()
        ));
    }
    if let Some(balances) = &report.balances {
        text.push_str(&format!(
            "balances: opening {} + movements {} = closing {}: {}\n",
            balances.opening.get(),
            balances.movements.get(),
            balances.closing.get(),
            if balances.holds {
                "holds"
            } else {
                "DOES NOT HOLD"
            }
        ));
    }
    for finding in &report.findings {
        text.push_str(&format!(
            "{:?}\t{}\t{}\t{}\t-> {}\n",
            finding.kind,
            finding.device.as_ref().map_or("-", DeviceId::as_str),
            finding
                .seq
                .map_or_else(|| "-".to_owned(), |seq| seq.to_string()),
            finding.detail,
            finding.action
        ));
    }
    text.push_str(if report.is_clean() {
        "clean: no defect found\n"
    } else {
        "DEFECTS FOUND: do not sign off before they are resolved\n"
    });
    text
}
