//! An auditor with only `openssl` can check what a kiosk signs.

#![allow(clippy::unwrap_used)]

use proto::{ChainHead, DeviceId, SignedRecord, SigningKey, Timestamp};

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("canteen-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn openssl_verifies_records_and_refuses_tampered_ones() {
    let random = ring::rand::SystemRandom::new();
    let (key, _pkcs8) = SigningKey::generate(&random).unwrap();
    let device = DeviceId::parse("kiosk-jaures-1").unwrap();
    let mut head = ChainHead::GENESIS;
    let body = proto::RecordBody::KioskStart(proto::record::KioskStart {
        software_version: proto::Text::parse("0.1.0 « é »").unwrap(),
    });
    let at = Timestamp::from_unix_ms(1_795_952_703_120).unwrap();
    let record = head.append(&key, &device, at, body).unwrap();
    let dir = temp_dir("openssl");

    assert!(tests::openssl::verifies(
        &dir,
        &key.public_key(),
        record.signed()
    ));

    let tampered = SignedRecord {
        payload: record.signed().payload.replace("0.1.0", "0.1.1"),
        signature: record.signed().signature.clone(),
    };
    assert!(!tests::openssl::verifies(
        &dir,
        &key.public_key(),
        &tampered
    ));

    let (other, _) = SigningKey::generate(&random).unwrap();
    assert!(!tests::openssl::verifies(
        &dir,
        &other.public_key(),
        record.signed()
    ));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn openssl_reads_our_public_key_pem() {
    let random = ring::rand::SystemRandom::new();
    let (key, _) = SigningKey::generate(&random).unwrap();
    let dir = temp_dir("pem");
    let file = dir.join("kiosk.pem");
    std::fs::write(&file, key.public_key().to_pem()).unwrap();
    let output = std::process::Command::new("openssl")
        .args(["pkey", "-pubin", "-noout", "-text", "-in"])
        .arg(&file)
        .output()
        .expect("openssl must be installed (make test installs it)");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(text.contains("ED25519 Public-Key"), "{text}");
    std::fs::remove_dir_all(dir).unwrap();
}
