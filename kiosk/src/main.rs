//! The `kiosk` command: enrol a kiosk, inspect it, export its records.

use std::fs;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use kiosk::config::{DataDir, TIME_ZONE_DEFAULT};
use kiosk::ledger::Ledger;
use proto::{Seq, SiteId, Text};

/// The canteen kiosk.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Enrol this kiosk: create its configuration, key and ledger, and print its public key.
    Init {
        /// Where the kiosk keeps its configuration, key and ledger.
        #[arg(long, default_value = "/var/lib/kiosk")]
        data_dir: PathBuf,
        /// The site (canteen) this kiosk belongs to, as the back-office names it.
        #[arg(long)]
        site: String,
        /// A name staff recognise, such as "Entrée cour".
        #[arg(long)]
        name: String,
        /// The back-office's base URL.
        #[arg(long)]
        backoffice: Option<String>,
        /// The site's IANA time zone.
        #[arg(long, default_value = TIME_ZONE_DEFAULT)]
        time_zone: String,
    },
    /// Print the kiosk's state: device, chain, upload and snapshot state, today's counts.
    Status {
        #[arg(long, default_value = "/var/lib/kiosk")]
        data_dir: PathBuf,
    },
    /// Write signed records as JSON Lines (and the public key as PEM beside them).
    Export {
        #[arg(long, default_value = "/var/lib/kiosk")]
        data_dir: PathBuf,
        /// The JSON Lines file to write; the key goes to FILE.pem.
        #[arg(long)]
        out: PathBuf,
        /// First seq to export (default: 1).
        #[arg(long)]
        from: Option<u64>,
        /// Last seq to export (default: the last record).
        #[arg(long)]
        to: Option<u64>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("kiosk: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command) -> Result<(), String> {
    match command {
        Command::Init {
            data_dir,
            site,
            name,
            backoffice,
            time_zone,
        } => {
            let site = SiteId::parse(&site).map_err(|e| format!("--site: {e}"))?;
            let name = Text::parse(&name).map_err(|e| format!("--name: {e}"))?;
            let random = ring::rand::SystemRandom::new();
            let enrolment = DataDir::new(&data_dir)
                .init(site, name, backoffice, &time_zone, &random)
                .map_err(|e| e.to_string())?;
            println!("device:      {}", enrolment.config.device);
            println!("site:        {}", enrolment.config.site);
            println!("fingerprint: {}", enrolment.public_key.fingerprint());
            print!("{}", enrolment.public_key.to_pem());
            println!(
                "Enrol it on the back-office: backoffice device add --site {} --name '{}' --public-key FILE.pem",
                enrolment.config.site, enrolment.config.name
            );
            Ok(())
        }
        Command::Status { data_dir } => {
            let dir = DataDir::new(&data_dir);
            let config = dir.load_config().map_err(|e| e.to_string())?;
            let ledger = Ledger::open(&dir.ledger_path()).map_err(|e| e.to_string())?;
            print!(
                "{}",
                kiosk::export::status_report(&config, &ledger).map_err(|e| e.to_string())?
            );
            Ok(())
        }
        Command::Export {
            data_dir,
            out,
            from,
            to,
        } => {
            let dir = DataDir::new(&data_dir);
            let ledger = Ledger::open(&dir.ledger_path()).map_err(|e| e.to_string())?;
            let key = dir.load_key().map_err(|e| e.to_string())?;
            let from = Seq::new(from.unwrap_or(1)).map_err(|e| format!("--from: {e}"))?;
            let to = to
                .map(Seq::new)
                .transpose()
                .map_err(|e| format!("--to: {e}"))?;
            let file = fs::File::create(&out).map_err(|e| format!("{}: {e}", out.display()))?;
            let mut writer = std::io::BufWriter::new(file);
            let count = kiosk::export::write_records(&ledger, from, to, &mut writer)
                .map_err(|e| e.to_string())?;
            writer
                .into_inner()
                .map_err(|e| format!("{}: {e}", out.display()))?
                .sync_all()
                .map_err(|e| format!("{}: {e}", out.display()))?;
            let mut pem_path = out.clone().into_os_string();
            pem_path.push(".pem");
            fs::write(&pem_path, key.public_key().to_pem())
                .map_err(|e| format!("{}: {e}", out.display()))?;
            let mut stdout = std::io::stdout();
            writeln!(stdout, "{count} records written to {}", out.display())
                .map_err(|e| e.to_string())?;
            Ok(())
        }
    }
}
