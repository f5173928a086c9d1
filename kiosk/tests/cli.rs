//! The `kiosk` command as an installer uses it.

#![allow(clippy::unwrap_used)]

mod common;

use std::os::unix::fs::PermissionsExt as _;
use std::process::{Command, Output};

fn kiosk(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kiosk"))
        .args(args)
        .output()
        .unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn init_enrols_once_and_refuses_twice() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("kiosk");
    let data = data.to_str().unwrap();
    let args = [
        "init",
        "--data-dir",
        data,
        "--site",
        "jaures",
        "--name",
        "Entrée cour",
        "--backoffice",
        "https://backoffice.example:8443",
    ];
    let first = kiosk(&args);
    assert!(first.status.success(), "{}", stderr(&first));
    let text = stdout(&first);
    assert!(text.contains("device:      jaures-"), "{text}");
    assert!(text.contains("-----BEGIN PUBLIC KEY-----"), "{text}");
    let pem_start = text.find("-----BEGIN").unwrap();
    let pem_end = text.find("-----END PUBLIC KEY-----").unwrap() + "-----END PUBLIC KEY-----".len();
    let public_key = proto::PublicKey::from_pem(&text[pem_start..pem_end]).unwrap();
    assert!(text.contains(&public_key.fingerprint()));

    let key_path = std::path::Path::new(data).join("kiosk.key");
    let mode = std::fs::metadata(&key_path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let key_bytes = std::fs::read(&key_path).unwrap();
    assert_eq!(
        proto::SigningKey::from_pkcs8(&key_bytes)
            .unwrap()
            .public_key(),
        public_key
    );
    // The private key never appears in what init prints.
    assert!(!text.contains(&format!("{key_bytes:?}")));

    let config = std::fs::read_to_string(std::path::Path::new(data).join("kiosk.toml")).unwrap();
    let snapshot_of_files = |path: &str| {
        let mut files: Vec<_> = std::fs::read_dir(path)
            .unwrap()
            .map(|entry| {
                let entry = entry.unwrap();
                (entry.file_name(), std::fs::read(entry.path()).unwrap())
            })
            .collect();
        files.sort();
        files
    };
    let before = snapshot_of_files(data);
    let second = kiosk(&args);
    assert!(!second.status.success());
    assert!(
        stderr(&second).contains("already initialised"),
        "{}",
        stderr(&second)
    );
    assert_eq!(
        snapshot_of_files(data),
        before,
        "a refused init changes nothing"
    );
    assert!(
        config.contains("backoffice_url = \"https://backoffice.example:8443\""),
        "{config}"
    );
    assert!(config.contains("time_zone = \"Europe/Paris\""), "{config}");
}

#[test]
fn init_refuses_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("kiosk");
    let data = data.to_str().unwrap();
    for (args, expected) in [
        (vec!["--site", "jau res", "--name", "x"], "--site"),
        (vec!["--site", "jaures", "--name", " "], "--name"),
        (
            vec![
                "--site",
                "jaures",
                "--name",
                "x",
                "--time-zone",
                "Mars/Olympus",
            ],
            "time zone",
        ),
    ] {
        let mut full = vec!["init", "--data-dir", data];
        full.extend(args);
        let output = kiosk(&full);
        assert!(!output.status.success());
        assert!(
            stderr(&output).contains(expected),
            "{full:?}: {}",
            stderr(&output)
        );
        assert!(!std::path::Path::new(data).join("kiosk.toml").exists());
    }
}

#[test]
fn status_and_export() {
    let mut kiosk_under_test = common::TestKiosk::new(4);
    let kiosk::engine::Decision::Served(_) = kiosk_under_test.engine.tap(common::pupil_card(1))
    else {
        panic!()
    };
    let data = kiosk_under_test.data.root.to_str().unwrap().to_owned();
    let device = kiosk_under_test.data.load_config().unwrap().device;

    let status = kiosk(&["status", "--data-dir", &data]);
    assert!(status.status.success(), "{}", stderr(&status));
    let text = stdout(&status);
    for expected in [
        format!("device:            {device}"),
        "last seq:          3".to_owned(),
        "acknowledged seq:  none".to_owned(),
        "unsynced records:  3".to_owned(),
        "snapshot version:  1".to_owned(),
    ] {
        assert!(text.contains(&expected), "missing {expected:?} in\n{text}");
    }

    let out = kiosk_under_test.path().join("export.jsonl");
    let out = out.to_str().unwrap();
    let export = kiosk(&["export", "--data-dir", &data, "--out", out]);
    assert!(export.status.success(), "{}", stderr(&export));
    assert!(stdout(&export).contains("3 records written"));
    let key = proto::PublicKey::from_pem(&std::fs::read_to_string(format!("{out}.pem")).unwrap())
        .unwrap();
    let records: Vec<proto::SignedRecord> = std::fs::read_to_string(out)
        .unwrap()
        .lines()
        .map(|line| proto::SignedRecord::from_json(line.as_bytes()).unwrap())
        .collect();
    let report = proto::verify_chain(&device, &key, &records);
    assert!(report.is_clean(), "{:?}", report.errors);
    assert_eq!(report.records.len(), 3);

    let range = kiosk(&[
        "export",
        "--data-dir",
        &data,
        "--out",
        out,
        "--from",
        "2",
        "--to",
        "2",
    ]);
    assert!(range.status.success(), "{}", stderr(&range));
    assert_eq!(std::fs::read_to_string(out).unwrap().lines().count(), 1);
    let zero = kiosk(&["export", "--data-dir", &data, "--out", out, "--from", "0"]);
    assert!(!zero.status.success());
}

#[test]
fn readers_lists_the_pcsc_readers() {
    // make test starts pcscd with vsmartcard's virtual readers (deploy/dev/start-pcscd.sh).
    let output = kiosk(&["readers"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(text.contains("\"Virtual PCD 00 00\""), "{text}");
    assert!(text.contains("no card"), "{text}");
}
