//! `kiosk run` as a process, wired as it runs at a site: typed taps through the simulated reader
//! reach the engine, the sync uploads them to a back-office over HTTP, everything but the screen
//! and the readers runs on one tokio runtime, and SIGTERM stops it cleanly.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, Sender};
use std::time::{Duration, Instant};

use kiosk::ledger::Ledger;
use proto::snapshot::Snapshot;

/// How long any step may take on a loaded machine.
const STEP_WAIT: Duration = Duration::from_secs(30);

/// A back-office that takes every upload and has no news: each upload is acknowledged up to its
/// last record and reported to the test; each snapshot request gets a delta that changes
/// nothing. One request per connection.
struct FakeBackOffice {
    url: String,
    /// The `seq`s of each upload, in order.
    uploads: Receiver<Vec<u64>>,
}

impl FakeBackOffice {
    fn start(snapshot: Snapshot) -> FakeBackOffice {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let (report, uploads) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut acknowledged = 0_u64;
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                answer(stream, &snapshot, &mut acknowledged, &report);
            }
        });
        FakeBackOffice { url, uploads }
    }

    /// Waits for an upload that carries `seq`.
    fn wait_for_upload_of(&self, seq: u64) {
        let deadline = Instant::now() + STEP_WAIT;
        loop {
            let wait = deadline.saturating_duration_since(Instant::now());
            let upload = self
                .uploads
                .recv_timeout(wait)
                .unwrap_or_else(|_| panic!("record {seq} was never uploaded"));
            if upload.contains(&seq) {
                return;
            }
        }
    }
}

fn answer(
    mut stream: TcpStream,
    snapshot: &Snapshot,
    acknowledged: &mut u64,
    report: &Sender<Vec<u64>>,
) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut request_line = String::new();
    reader.read_line(&mut request_line).unwrap();
    let mut content_length = 0;
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).unwrap();
        if header.trim_end().is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            content_length = value.trim().parse().unwrap();
        }
    }
    let mut body = vec![0; content_length];
    reader.read_exact(&mut body).unwrap();
    let target = request_line.split_whitespace().nth(1).unwrap_or_default();
    let answer = if request_line.starts_with("POST ") && target.ends_with("/kiosk/records") {
        let request: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let seqs: Vec<u64> = request["records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|record| {
                let payload: serde_json::Value =
                    serde_json::from_str(record["payload"].as_str().unwrap()).unwrap();
                payload["seq"].as_u64().unwrap()
            })
            .collect();
        *acknowledged = seqs.iter().copied().fold(*acknowledged, u64::max);
        let _ = report.send(seqs.clone());
        serde_json::to_vec(&proto::api::UploadResponse {
            acknowledged: (*acknowledged > 0).then(|| proto::Seq::new(*acknowledged).unwrap()),
            stored: u32::try_from(seqs.len()).unwrap(),
            duplicates: 0,
            quarantined: 0,
            backoffice_time: proto::Timestamp::from_unix_ms(
                jiff::Timestamp::now().as_millisecond(),
            )
            .unwrap(),
        })
        .unwrap()
    } else {
        serde_json::to_vec(&common::empty_delta(snapshot, snapshot.version)).unwrap()
    };
    let head = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        answer.len()
    );
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(&answer);
}

/// Ends the child if the test fails before it exited.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Standard output, line by line, from a thread of its own.
fn lines_of(child: &mut Child) -> Receiver<String> {
    let stdout = child.stdout.take().unwrap();
    let (send, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if send.send(line).is_err() {
                return;
            }
        }
    });
    lines
}

/// The first line that `wanted` accepts; every line read goes to `seen`.
fn wait_for_line(
    lines: &Receiver<String>,
    seen: &mut Vec<String>,
    what: &str,
    wanted: impl Fn(&str) -> bool,
) -> String {
    let deadline = Instant::now() + STEP_WAIT;
    loop {
        let wait = deadline.saturating_duration_since(Instant::now());
        let Ok(line) = lines.recv_timeout(wait) else {
            panic!("no {what} line in {seen:#?}");
        };
        seen.push(line.clone());
        if wanted(&line) {
            return line;
        }
    }
}

/// The names of the process's threads, as the kernel shows them.
fn thread_names(pid: u32) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .map(|name| name.trim_end().to_owned())
        .collect();
    names.sort();
    names
}

fn enrol_with_backoffice(dir: &Path, backoffice_url: &str) -> kiosk::config::DataDir {
    let data = common::enrol(dir);
    let mut config = data.load_config().unwrap();
    config.backoffice_url = Some(backoffice_url.to_owned());
    config.sync.interval_ms = Some(100);
    std::fs::write(data.config_path(), toml::to_string(&config).unwrap()).unwrap();
    let mut engine = common::start(&data, kiosk::clock::ManualClock::new(common::monday_noon()));
    engine
        .apply_snapshot(&common::snapshot_always_open(3))
        .unwrap();
    data
}

#[test]
fn a_typed_tap_is_served_uploaded_and_acknowledged_and_sigterm_stops_the_kiosk() {
    let snapshot = common::snapshot_always_open(3);
    let backoffice = FakeBackOffice::start(snapshot);
    let dir = tempfile::tempdir().unwrap();
    let data = enrol_with_backoffice(dir.path(), &backoffice.url);
    let mut child = Running(
        Command::new(env!("CARGO_BIN_EXE_kiosk"))
            .args(["run", "--ui", "text", "--reader", "stdin", "--data-dir"])
            .arg(&data.root)
            .env_remove("NOTIFY_SOCKET")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    );
    let lines = lines_of(&mut child.0);
    let mut seen = Vec::new();
    wait_for_line(&lines, &mut seen, "ready", |line| line.contains(": ready"));

    // Everything but the screen and the readers runs on the kiosk's one runtime: no thread of
    // its own for the engine, the reader bridge, the sync or the watchdog.
    let names = thread_names(child.0.id());
    assert!(
        names.iter().any(|name| name == "kiosk-runtime"),
        "{names:?}"
    );
    for own_thread in ["engine", "reader-bridge", "sync", "watchdog"] {
        assert!(!names.iter().any(|name| name == own_thread), "{names:?}");
    }

    let card = common::pupil_card(1);
    writeln!(child.0.stdin.as_mut().unwrap(), "tap {card}").unwrap();
    let served = wait_for_line(&lines, &mut seen, "served", |line| {
        line.starts_with("served ")
    });
    let seq: u64 = served
        .rsplit("record ")
        .next()
        .and_then(|seq| seq.trim().parse().ok())
        .unwrap_or_else(|| panic!("no record in {served:?}"));
    backoffice.wait_for_upload_of(seq);
    // The engine records the acknowledgement the sync brought back.
    let deadline = Instant::now() + STEP_WAIT;
    while Ledger::open_reader(&data.ledger_path())
        .unwrap()
        .counts()
        .unwrap()
        .acknowledged_seq
        .map(proto::Seq::get)
        != Some(seq)
    {
        assert!(Instant::now() < deadline, "record {seq} never acknowledged");
        std::thread::sleep(Duration::from_millis(20));
    }

    // systemd stops a service with SIGTERM: the kiosk stops its tasks and its engine, says its
    // last state and exits successfully, with standard input still open.
    let status = common::terminate(&mut child.0, STEP_WAIT).unwrap_or_else(|why| panic!("{why}"));
    seen.extend(lines.iter());
    assert!(status.success(), "{status}: {seen:#?}");
    assert!(
        seen.iter()
            .any(|line| line.starts_with("sync      online · 0 unsynced")),
        "{seen:#?}"
    );
    assert!(
        seen.last().is_some_and(|line| line.starts_with("state ")),
        "{seen:#?}"
    );

    let counts = Ledger::open(&data.ledger_path()).unwrap().counts().unwrap();
    assert_eq!(counts.last_seq.map(proto::Seq::get), Some(seq));
    assert_eq!(counts.acknowledged_seq.map(proto::Seq::get), Some(seq));
    assert_eq!(counts.unsynced_records, 0);
    let kinds = common::kinds(&common::verified_records(&data));
    assert_eq!(kinds.last(), Some(&"meal"), "{kinds:?}");
}
