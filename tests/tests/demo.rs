//! `make demo` headless, as a newcomer without a display runs it: the demo seeds the back-office,
//! enrols a kiosk, and answers keys; taps are served, refused and synced, the back-office's
//! balances follow, and Ctrl-C (SIGINT) stops everything it started.

#![allow(clippy::unwrap_used)]

use std::io::{BufRead as _, BufReader, Write as _};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use tests::workspace;

/// Seeding 300 pupils through the CLI with debug binaries on a busy machine.
const START_WAIT_S_MAX: u64 = 600;
/// A tap's answer, a sync, a balance.
const ANSWER_WAIT_S_MAX: u64 = 60;

struct Demo {
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<String>,
    seen: Vec<String>,
    dir: tempfile::TempDir,
    port: u16,
}

impl Demo {
    fn start() -> Demo {
        let dir = tempfile::tempdir().unwrap();
        let port = workspace::free_port();
        workspace::binary("kiosk");
        workspace::binary("backoffice");
        // As from a terminal: a run started in the background (a CI job, `nohup ... &`) would
        // hand the script an ignored SIGINT, which a shell cannot trap, and Ctrl-C is the point.
        let mut child = Command::new("env")
            .arg("--default-signal=INT")
            .arg(workspace::root().join("deploy/demo/demo.sh"))
            .env("DEMO_BIN_DIR", workspace::binary_dir())
            .env("DEMO_DIR", dir.path().join("demo"))
            .env("DEMO_PORT", port.to_string())
            .env("DEMO_UI", "text")
            .env_remove("DISPLAY")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (send, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if send.send(line).is_err() {
                    return;
                }
            }
        });
        Demo {
            child,
            stdin,
            lines,
            seen: Vec::new(),
            dir,
            port,
        }
    }

    /// Waits for a line starting with `prefix` and containing `text`; returns it.
    fn expect(&mut self, prefix: &str, text: &str, wait_s: u64) -> String {
        let deadline = Instant::now() + Duration::from_secs(wait_s);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.starts_with(prefix) && line.contains(text) {
                        return line;
                    }
                }
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => panic!(
                    "no line {prefix:?} with {text:?} in {wait_s} s; the demo said:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }

    fn key(&mut self, key: &str) {
        writeln!(self.stdin, "{key}").unwrap();
    }
}

#[test]
fn the_demo_serves_refuses_syncs_reconciles_and_stops_cleanly_on_sigint() {
    let mut demo = Demo::start();
    demo.expect("ready", "", START_WAIT_S_MAX);
    let listing = demo.seen.join("\n");
    assert!(
        listing.contains(&format!("http://127.0.0.1:{}", demo.port)),
        "{listing}"
    );
    assert!(listing.contains("finance / finance-demo-2025"), "{listing}");

    // Each key is a card tapped, and the kiosk's answer to it. Léa and her brother share one
    // account: 25,00 € less two meals of 3,45 €.
    let taps = [
        ("1", "served    ", "Léa · 3,45 € · balance 21,55 €"),
        ("2", "served    ", "Hugo · 3,45 € · balance 18,10 €"),
        ("1", "already   ", "Léa"),
        ("3", "see staff ", "Inès"),
        ("4", "served    ", "Noah · 2,10 € · balance 1,10 € · record"),
        ("5", "see staff ", "blocked card"),
        ("6", "see staff ", "unknown card"),
    ];
    for (key, answer, text) in taps {
        demo.key(key);
        demo.expect(answer, text, ANSWER_WAIT_S_MAX);
    }
    demo.expect("state     ", "today 3 meals", ANSWER_WAIT_S_MAX);

    // The kiosk uploads its records; the back-office's balances follow.
    let deadline = Instant::now() + Duration::from_secs(ANSWER_WAIT_S_MAX);
    loop {
        demo.key("b");
        let line = demo.expect("back-office fam-0001", "balance", ANSWER_WAIT_S_MAX);
        if line.contains("balance: 1810 cents") {
            break;
        }
        assert!(Instant::now() < deadline, "never synced: {line}");
        std::thread::sleep(Duration::from_secs(1));
    }
    demo.expect(
        "back-office fam-0003",
        "balance: 110 cents",
        ANSWER_WAIT_S_MAX,
    );
    assert!(
        demo.seen.iter().any(|line| line.starts_with("synced    ")),
        "{}",
        demo.seen.join("\n")
    );

    // Finance's reconciliation of today, run at the back-office on what the kiosk uploaded.
    demo.key("r");
    demo.expect("reconcile ", "reconciliation of", ANSWER_WAIT_S_MAX);
    demo.expect(
        "reconcile site jaures: 1 kiosk(s), 3 meals",
        "",
        ANSWER_WAIT_S_MAX,
    );
    // Before the kiosk's day close the report says what is missing and what to do.
    demo.expect("reconcile NoDayClose", "close the day", ANSWER_WAIT_S_MAX);

    // Ctrl-C: the script stops the back-office and the kiosk and waits for them.
    let pid = demo.child.id().to_string();
    let signal = Command::new("kill").args(["-INT", &pid]).status().unwrap();
    assert!(signal.success());
    let deadline = Instant::now() + Duration::from_secs(ANSWER_WAIT_S_MAX);
    let status = loop {
        if let Some(status) = demo.child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the demo did not stop on SIGINT");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
    demo.expect("demo stopped", "", ANSWER_WAIT_S_MAX);
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", demo.port)).is_err(),
        "the back-office still listens"
    );
    let demo_dir = demo.dir.path().display().to_string();
    let leftovers: Vec<String> = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|entry| std::fs::read(entry.ok()?.path().join("cmdline")).ok())
        .map(|cmdline| String::from_utf8_lossy(&cmdline).replace('\0', " "))
        .filter(|cmdline| cmdline.contains(&demo_dir) && !cmdline.contains("sleep"))
        .collect();
    assert!(leftovers.is_empty(), "still running: {leftovers:?}");
}
