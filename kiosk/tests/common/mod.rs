//! A kiosk on a fresh data directory with a sample snapshot, a clock the test moves, and helpers
//! that read the ledger as an auditor would.

#![allow(dead_code, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use argon2::PasswordHasher as _;
use kiosk::clock::ManualClock;
use kiosk::config::DataDir;
use kiosk::engine::Engine;
use kiosk::ledger::Ledger;
use proto::snapshot::{
    AccountState, Card, CardHolder, KioskSettings, Language, LocalTime, Pupil, Removed, Service,
    Snapshot, StaffCredential, Tariff, Weekday,
};
use proto::{
    AccountId, BracketId, CardUid, Cents, MealType, PupilId, ServiceId, SiteId, SnapshotVersion,
    StaffId, Text,
};

/// Monday 2026-11-30, 12:00 in Paris: lunch is open.
pub const MONDAY_NOON_UTC: &str = "2026-11-30T11:00:00Z";
pub const STAFF_PIN: &str = "4711";

/// A French school's week: no lunch on Wednesday, nor at the weekend.
pub const SCHOOL_WEEK: [Weekday; 4] = [
    Weekday::Monday,
    Weekday::Tuesday,
    Weekday::Thursday,
    Weekday::Friday,
];

/// Every day of the week.
pub const WHOLE_WEEK: [Weekday; 7] = [
    Weekday::Monday,
    Weekday::Tuesday,
    Weekday::Wednesday,
    Weekday::Thursday,
    Weekday::Friday,
    Weekday::Saturday,
    Weekday::Sunday,
];

pub fn monday_noon() -> jiff::Timestamp {
    MONDAY_NOON_UTC.parse().unwrap()
}

pub fn text(value: &str) -> Text {
    Text::parse(value).unwrap()
}

pub fn pupil_card(n: usize) -> CardUid {
    let n = u32::try_from(n).unwrap().to_be_bytes();
    CardUid::parse(&[0x04, n[0], n[1], n[2], n[3], 0x80, 0x01]).unwrap()
}

pub fn staff_card() -> CardUid {
    CardUid::from_hex("5a5a5a5a").unwrap()
}

pub fn blocked_card() -> CardUid {
    CardUid::from_hex("0badcafe").unwrap()
}

pub fn pupil_id(n: usize) -> PupilId {
    PupilId::parse(&format!("P{n:05}")).unwrap()
}

pub fn account_id(n: usize) -> AccountId {
    AccountId::parse(&format!("A{n:05}")).unwrap()
}

pub fn staff_id() -> StaffId {
    StaffId::parse("S-durand").unwrap()
}

pub fn pin_hash(pin: &str) -> Text {
    let salt = argon2::password_hash::SaltString::from_b64("c2FsdHNhbHRzYWx0").unwrap();
    text(
        &argon2::Argon2::default()
            .hash_password(pin.as_bytes(), &salt)
            .unwrap()
            .to_string(),
    )
}

pub fn settings() -> KioskSettings {
    KioskSettings {
        result_display_ms: 2_000,
        sync_interval_ms: 30_000,
        staff_idle_signout_ms: 120_000,
        language: Language::Fr,
    }
}

/// `pupils` pupils, pupil n on account n with a balance of 10 € and a floor of -5 €, except
/// pupil 0, whose balance is 1 € and floor 0 € (for refusals); lunch open 11:30-13:45 on
/// weekdays but Wednesday.
pub fn snapshot(pupils: usize) -> Snapshot {
    Snapshot {
        version: SnapshotVersion(1),
        since: None,
        site: SiteId::parse("jaures").unwrap(),
        records_through: None,
        accounts: (0..pupils)
            .map(|n| AccountState {
                id: account_id(n),
                balance: Cents::new(if n == 0 { 100 } else { 1_000 }),
                overdraft_floor: Cents::new(if n == 0 { 0 } else { -500 }),
            })
            .collect(),
        pupils: (0..pupils)
            .map(|n| Pupil {
                id: pupil_id(n),
                account: account_id(n),
                first_name: text(["Chloé", "Lucas", "Inès", "Hugo", "Léa"][n % 5]),
                last_name: text(&format!("Martin{n}")),
                bracket: BracketId::parse(if n % 2 == 0 { "q1" } else { "q3" }).unwrap(),
                dietary: if n == 3 {
                    vec![text("peanut_allergy")]
                } else {
                    Vec::new()
                },
            })
            .collect(),
        cards: (0..pupils)
            .map(|n| Card {
                uid: pupil_card(n),
                holder: CardHolder::Pupil(pupil_id(n)),
            })
            .chain([Card {
                uid: staff_card(),
                holder: CardHolder::Staff(staff_id()),
            }])
            .collect(),
        hotlist: vec![blocked_card()],
        tariffs: vec![
            Tariff {
                bracket: BracketId::parse("q1").unwrap(),
                meal_type: lunch(),
                price: Cents::new(120),
            },
            Tariff {
                bracket: BracketId::parse("q3").unwrap(),
                meal_type: lunch(),
                price: Cents::new(385),
            },
        ],
        services: vec![Service {
            id: ServiceId::parse("lunch").unwrap(),
            name: text("Déjeuner"),
            meal_type: lunch(),
            weekdays: SCHOOL_WEEK.to_vec(),
            start: LocalTime::parse("11:30").unwrap(),
            end: LocalTime::parse("13:45").unwrap(),
        }],
        staff: vec![StaffCredential {
            id: staff_id(),
            name: text("Mme Durand"),
            pin_hash: pin_hash(STAFF_PIN),
        }],
        settings: Some(settings()),
        removed: Removed::default(),
    }
}

/// [`snapshot`] with lunch open all week, all day: for kiosks that run on the system clock.
pub fn snapshot_always_open(pupils: usize) -> Snapshot {
    let mut snapshot = snapshot(pupils);
    snapshot.services[0].weekdays = WHOLE_WEEK.to_vec();
    snapshot.services[0].start = LocalTime::parse("00:00").unwrap();
    snapshot.services[0].end = LocalTime::parse("23:59").unwrap();
    snapshot
}

/// A delta after `full`, at `version`, that changes nothing: what the back-office sends when
/// only `records_through` moved. Callers set that, or what else they change.
pub fn empty_delta(full: &Snapshot, version: SnapshotVersion) -> Snapshot {
    Snapshot {
        version,
        since: Some(full.version),
        accounts: Vec::new(),
        pupils: Vec::new(),
        cards: Vec::new(),
        hotlist: Vec::new(),
        tariffs: Vec::new(),
        services: Vec::new(),
        staff: Vec::new(),
        settings: None,
        removed: Removed::default(),
        ..full.clone()
    }
}

pub fn lunch() -> MealType {
    MealType::parse("lunch").unwrap()
}

/// A kiosk enrolled in a temporary directory.
pub struct TestKiosk {
    pub dir: tempfile::TempDir,
    pub data: DataDir,
    pub clock: ManualClock,
    pub engine: Engine,
}

impl TestKiosk {
    /// Enrolled, with `snapshot(pupils)` applied, on Monday at noon.
    pub fn new(pupils: usize) -> TestKiosk {
        let mut kiosk = TestKiosk::without_snapshot();
        kiosk.engine.apply_snapshot(&snapshot(pupils)).unwrap();
        kiosk
    }

    pub fn without_snapshot() -> TestKiosk {
        let dir = tempfile::tempdir().unwrap();
        let data = enrol(dir.path());
        let clock = ManualClock::new(monday_noon());
        let engine = start(&data, clock.clone());
        TestKiosk {
            dir,
            data,
            clock,
            engine,
        }
    }

    /// Stops the engine and starts a new one on the same files, as after a restart.
    pub fn restart(&mut self) {
        let engine = start(&self.data, self.clock.clone());
        self.engine = engine;
    }

    pub fn sign_in(&mut self) {
        self.engine.staff_sign_in(staff_card(), STAFF_PIN).unwrap();
    }

    /// Every record, verified as a chain with the kiosk's public key.
    pub fn verified_records(&self) -> Vec<proto::Record> {
        verified_records(&self.data)
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

pub fn enrol(path: &Path) -> DataDir {
    let data = DataDir::new(path.join("kiosk"));
    data.init(
        SiteId::parse("jaures").unwrap(),
        text("Entrée cour"),
        None,
        "Europe/Paris",
        &ring::rand::SystemRandom::new(),
    )
    .unwrap();
    data
}

/// A kiosk enrolled in `path` with [`snapshot_always_open`] of `pupils` applied by `kiosk
/// apply-snapshot`, as a site without network would: for `kiosk run` on the system clock.
pub fn enrol_always_open(path: &Path, pupils: usize) -> DataDir {
    let data = enrol(path);
    let snapshot_file = path.join("snapshot.json");
    std::fs::write(
        &snapshot_file,
        serde_json::to_string(&snapshot_always_open(pupils)).unwrap(),
    )
    .unwrap();
    let applied = Command::new(env!("CARGO_BIN_EXE_kiosk"))
        .args(["apply-snapshot", "--data-dir", data.root.to_str().unwrap()])
        .arg(&snapshot_file)
        .output()
        .unwrap();
    assert!(
        applied.status.success(),
        "{}",
        String::from_utf8_lossy(&applied.stderr)
    );
    data
}

/// `kiosk run` of `data` in a window on `display`, reading a script that waits `pause_ms`, then
/// taps pupil 1's card: the caller chooses where its output goes, and spawns it.
pub fn kiosk_run_tapping_once(data: &DataDir, display: &str, pause_ms: u64) -> Command {
    let script = data.root.with_file_name("taps.txt");
    std::fs::write(
        &script,
        format!("pause {pause_ms}\ntap {} 300\n", pupil_card(1)),
    )
    .unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_kiosk"));
    command
        .args(["run", "--data-dir", data.root.to_str().unwrap(), "--reader"])
        .arg(format!("script={}", script.display()))
        .env("DISPLAY", display);
    command
}

pub fn start(data: &DataDir, clock: ManualClock) -> Engine {
    kiosk::run::start_engine(data, Box::new(clock)).unwrap()
}

pub fn verified_records(data: &DataDir) -> Vec<proto::Record> {
    let config = data.load_config().unwrap();
    let key = data.load_key().unwrap();
    let ledger = Ledger::open(&data.ledger_path()).unwrap();
    let mut out = Vec::new();
    kiosk::export::write_records(&ledger, proto::Seq::FIRST, None, &mut out).unwrap();
    let records: Vec<proto::SignedRecord> = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|line| proto::SignedRecord::from_json(line.as_bytes()).unwrap())
        .collect();
    let report = proto::verify_chain(&config.device, &key.public_key(), &records);
    assert!(report.is_clean(), "{:?}", report.errors);
    report.records
}

pub fn kinds(records: &[proto::Record]) -> Vec<&'static str> {
    records
        .iter()
        .map(|record| record.payload().body.kind().as_str())
        .collect()
}

pub fn data_path(kiosk: &TestKiosk) -> PathBuf {
    kiosk.data.root.clone()
}

/// Voluntary context switches of each thread of a process, by thread id, with the thread's
/// name: a thread that sleeps and wakes (a timer, a timed wait, a poll) adds one each time.
pub fn thread_wakeups(pid: u32) -> std::collections::BTreeMap<u32, (String, u64)> {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .filter_map(|task| {
            let task = task.ok()?;
            let tid = task.file_name().to_str()?.parse().ok()?;
            let status = std::fs::read_to_string(task.path().join("status")).ok()?;
            let field = |name: &str| {
                status
                    .lines()
                    .find_map(|line| line.strip_prefix(name))
                    .map(str::trim)
            };
            let name = field("Name:")?.to_string();
            let wakeups = field("voluntary_ctxt_switches:")?.parse().ok()?;
            Some((tid, (name, wakeups)))
        })
        .collect()
}

/// The threads that woke between two readings of [`thread_wakeups`], with how often; threads
/// that started or ended in between count as having woken.
pub fn threads_woken(
    before: &std::collections::BTreeMap<u32, (String, u64)>,
    after: &std::collections::BTreeMap<u32, (String, u64)>,
) -> Vec<(String, u64)> {
    let mut woken = Vec::new();
    for (tid, (name, count)) in after {
        match before.get(tid) {
            Some((_, earlier)) if earlier == count => {}
            Some((_, earlier)) => woken.push((name.clone(), count - earlier)),
            None => woken.push((format!("{name} (started)"), *count)),
        }
    }
    for (tid, (name, _)) in before {
        if !after.contains_key(tid) {
            woken.push((format!("{name} (ended)"), 1));
        }
    }
    woken
}

/// Stops `child` as systemd stops a service, with SIGTERM, and waits up to `within` for it to
/// exit; says why when it could not send the signal or the child did not exit in time.
pub fn terminate(
    child: &mut std::process::Child,
    within: std::time::Duration,
) -> Result<std::process::ExitStatus, String> {
    let sent = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .is_ok_and(|status| status.success());
    if !sent {
        return Err("kill -TERM failed".into());
    }
    let deadline = std::time::Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().map_err(|error| error.to_string())? {
            return Ok(status);
        }
        if std::time::Instant::now() > deadline {
            return Err("still running after SIGTERM".into());
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// A virtual X display (`Xvfb`) for a real window. Stopped with SIGTERM when dropped, so it
/// removes its lock file and socket and leaves the display number free for the next run.
pub struct Xvfb {
    child: std::process::Child,
    /// What `DISPLAY` names it by, `:N`.
    pub display: String,
    /// The lock file that keeps the display number while the server runs.
    pub lock: PathBuf,
}

impl Xvfb {
    pub fn start() -> Xvfb {
        let socket = |n: u32| PathBuf::from(format!("/tmp/.X11-unix/X{n}"));
        let lock = |n: u32| PathBuf::from(format!("/tmp/.X{n}-lock"));
        let number = (90..200)
            .find(|&n| !socket(n).exists() && !lock(n).exists())
            .expect("a free X display between :90 and :199");
        let display = format!(":{number}");
        let child = Command::new("Xvfb")
            .args([&display, "-screen", "0", "1024x768x24", "-nolisten", "tcp"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("Xvfb must be installed (make test and make bench install it)");
        let xvfb = Xvfb {
            child,
            display,
            lock: lock(number),
        };
        let started = std::time::Instant::now();
        while !socket(number).exists() {
            assert!(
                started.elapsed() < std::time::Duration::from_secs(10),
                "Xvfb did not start"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        xvfb
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        if terminate(&mut self.child, std::time::Duration::from_secs(5)).is_err() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// A benchmark's `NAME VALUE` argument, or `default`.
pub fn bench_arg<T: std::str::FromStr>(name: &str, default: T) -> T {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A duration in milliseconds, for a benchmark's report.
#[allow(clippy::float_arithmetic)] // A report, not money.
pub fn ms(duration: std::time::Duration) -> f64 {
    duration.as_secs_f64() * 1_000.0
}
