//! The `kiosk` command: enrol a kiosk, inspect it, export its records.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use kiosk::config::{DataDir, TIME_ZONE_DEFAULT};
use kiosk::ledger::Ledger;
use kiosk::limits::SNAPSHOT_FILE_BYTES_MAX;
use kiosk::run::{ReaderSource, RunOptions, UiMode};
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
        #[arg(long, env = "KIOSK_DATA_DIR", default_value = "/var/lib/kiosk")]
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
        #[arg(long, env = "KIOSK_DATA_DIR", default_value = "/var/lib/kiosk")]
        data_dir: PathBuf,
        /// Print one JSON object (device, site, version, last_seq, acknowledged_seq,
        /// unsynced_records, snapshot_version, ...) for scripts.
        #[arg(long)]
        json: bool,
    },
    /// Run the kiosk: engine, card reader and touchscreen, until the window is closed.
    Run {
        #[arg(long, env = "KIOSK_DATA_DIR", default_value = "/var/lib/kiosk")]
        data_dir: PathBuf,
        /// `pcsc` (a real reader, the default), `script=FILE` (a simulated reader playing `tap UID`,
        /// `pause MS` lines) or `stdin` (the same lines typed on standard input).
        #[arg(long, env = "KIOSK_READER", default_value = "pcsc")]
        reader: String,
        /// With `--reader pcsc`: use the first reader whose name contains this text.
        #[arg(long, env = "KIOSK_READER_NAME")]
        reader_name: Option<String>,
        /// Cover the whole screen, as on a kiosk.
        #[arg(long, env = "KIOSK_FULLSCREEN")]
        fullscreen: bool,
        /// `window` (the touchscreen, needs a display) or `text` (each decision and the
        /// kiosk's state as lines on standard output; ends when `--reader stdin` input ends).
        #[arg(long, env = "KIOSK_UI", default_value = "window")]
        ui: String,
    },
    /// List card readers and print each card event live, to diagnose a site.
    Readers {
        /// Keep watching the chosen reader and print its events until Ctrl-C.
        #[arg(long)]
        watch: bool,
        /// Watch the first reader whose name contains this text.
        #[arg(long)]
        reader_name: Option<String>,
    },
    /// Apply a snapshot file brought from the back-office by hand (a site without network).
    ApplySnapshot {
        #[arg(long, env = "KIOSK_DATA_DIR", default_value = "/var/lib/kiosk")]
        data_dir: PathBuf,
        /// The snapshot, as JSON.
        file: PathBuf,
    },
    /// Write signed records as JSON Lines (and the public key as PEM beside them).
    Export {
        #[arg(long, env = "KIOSK_DATA_DIR", default_value = "/var/lib/kiosk")]
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

fn read_limited(path: &Path, max: u64) -> Result<Vec<u8>, String> {
    let size = fs::metadata(path)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .len();
    if size > max {
        return Err(format!("{}: {size} bytes, more than {max}", path.display()));
    }
    fs::read(path).map_err(|e| format!("{}: {e}", path.display()))
}

fn run(command: Command) -> Result<(), String> {
    match command {
        Command::Init {
            data_dir,
            site,
            name,
            backoffice,
            time_zone,
        } => init(&data_dir, &site, &name, backoffice, &time_zone),
        Command::Run {
            data_dir,
            reader,
            reader_name,
            fullscreen,
            ui,
        } => run_kiosk(data_dir, &reader, reader_name, fullscreen, &ui),
        Command::Readers { watch, reader_name } => readers(watch, reader_name.as_deref()),
        Command::ApplySnapshot { data_dir, file } => apply_snapshot(&data_dir, &file),
        Command::Status { data_dir, json } => status(&data_dir, json),
        Command::Export {
            data_dir,
            out,
            from,
            to,
        } => export(&data_dir, &out, from, to),
    }
}

fn init(
    data_dir: &Path,
    site: &str,
    name: &str,
    backoffice: Option<String>,
    time_zone: &str,
) -> Result<(), String> {
    let site = SiteId::parse(site).map_err(|e| format!("--site: {e}"))?;
    let name = Text::parse(name).map_err(|e| format!("--name: {e}"))?;
    let random = ring::rand::SystemRandom::new();
    let enrolment = DataDir::new(data_dir)
        .init(site, name, backoffice, time_zone, &random)
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

fn run_kiosk(
    data_dir: PathBuf,
    reader: &str,
    reader_name: Option<String>,
    fullscreen: bool,
    ui: &str,
) -> Result<(), String> {
    let ui = match ui {
        "window" => UiMode::Window,
        "text" => UiMode::Text,
        other => return Err(format!("--ui {other}: expected window or text")),
    };
    let reader = match reader {
        "pcsc" => ReaderSource::Pcsc {
            name_pattern: reader_name,
        },
        "stdin" => ReaderSource::Stdin,
        other => match other.strip_prefix("script=") {
            Some(path) => ReaderSource::Script(path.into()),
            None => {
                return Err(format!(
                    "--reader {other}: expected pcsc, stdin or script=FILE"
                ));
            }
        },
    };
    kiosk::run::run(&RunOptions {
        data_dir,
        reader,
        fullscreen,
        ui,
    })
    .map_err(|e| e.to_string())
}

fn readers(watch: bool, reader_name: Option<&str>) -> Result<(), String> {
    let mut stdout = std::io::stdout();
    let readers = hardware::diagnose::list_readers().map_err(|e| e.to_string())?;
    hardware::diagnose::print_readers(&readers, &mut stdout).map_err(|e| e.to_string())?;
    if watch {
        let selector =
            hardware::ReaderSelector::from_pattern(reader_name).map_err(|e| e.to_string())?;
        let config = hardware::PcscConfig { reader: selector };
        hardware::diagnose::watch(config, &mut stdout, |_| true).map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn apply_snapshot(data_dir: &Path, file: &Path) -> Result<(), String> {
    let bytes = read_limited(file, SNAPSHOT_FILE_BYTES_MAX)?;
    let snapshot: proto::snapshot::Snapshot =
        serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", file.display()))?;
    let mut engine =
        kiosk::run::start_engine(&DataDir::new(data_dir), Box::new(kiosk::clock::SystemClock))
            .map_err(|e| e.to_string())?;
    engine
        .apply_snapshot(&snapshot)
        .map_err(|e| e.to_string())?;
    println!("snapshot version {} applied", snapshot.version);
    Ok(())
}

fn status(data_dir: &Path, json: bool) -> Result<(), String> {
    let dir = DataDir::new(data_dir);
    let config = dir.load_config().map_err(|e| e.to_string())?;
    let ledger = Ledger::open(&dir.ledger_path()).map_err(|e| e.to_string())?;
    let report = kiosk::export::StatusReport::read(&config, &ledger).map_err(|e| e.to_string())?;
    if json {
        println!(
            "{}",
            serde_json::to_string(&report).map_err(|e| e.to_string())?
        );
    } else {
        print!("{}", report.to_text());
    }
    Ok(())
}

fn export(data_dir: &Path, out: &Path, from: Option<u64>, to: Option<u64>) -> Result<(), String> {
    let dir = DataDir::new(data_dir);
    let ledger = Ledger::open(&dir.ledger_path()).map_err(|e| e.to_string())?;
    let key = dir.load_key().map_err(|e| e.to_string())?;
    let from = Seq::new(from.unwrap_or(1)).map_err(|e| format!("--from: {e}"))?;
    let to = to
        .map(Seq::new)
        .transpose()
        .map_err(|e| format!("--to: {e}"))?;
    let out_error = |e: std::io::Error| format!("{}: {e}", out.display());
    let file = fs::File::create(out).map_err(out_error)?;
    let mut writer = std::io::BufWriter::new(file);
    let count =
        kiosk::export::write_records(&ledger, from, to, &mut writer).map_err(|e| e.to_string())?;
    writer
        .into_inner()
        .map_err(|e| out_error(e.into_error()))?
        .sync_all()
        .map_err(out_error)?;
    let mut pem_path = out.to_owned().into_os_string();
    pem_path.push(".pem");
    fs::write(&pem_path, key.public_key().to_pem()).map_err(out_error)?;
    let mut stdout = std::io::stdout();
    writeln!(stdout, "{count} records written to {}", out.display()).map_err(|e| e.to_string())?;
    Ok(())
}
