//! The `backoffice` command line run as an operator would, on a test's SQLite database. The
//! binary's path is the caller's: only the back-office's own tests know it
//! (`env!("CARGO_BIN_EXE_backoffice")`).

use std::io::Write as _;
use std::process::{Command, ExitStatus, Stdio};

use crate::SqliteDb;

/// What one command did: its exit status and what it wrote.
#[derive(Debug)]
pub struct Ran {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    /// Standard output then standard error, as an operator's terminal shows them.
    pub fn text(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

/// Runs `bin --db URL args…` on `db`, with `stdin` and a newline on its standard input, if any.
pub fn run(bin: &str, db: &SqliteDb, args: &[&str], stdin: Option<&str>) -> Ran {
    let mut command = Command::new(bin);
    command.arg("--db").arg(db.url()).args(args);
    let output = match stdin {
        None => command.output().unwrap(),
        Some(line) => {
            let mut child = command
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            writeln!(child.stdin.take().unwrap(), "{line}").unwrap();
            child.wait_with_output().unwrap()
        }
    };
    Ran {
        status: output.status,
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}
