//! The `openssl` command line as an independent verifier of our signatures.

use std::fs;
use std::path::Path;
use std::process::Command;

use proto::{PublicKey, SignedRecord};

/// Verifies `record`'s signature with `openssl pkeyutl -verify -rawin`, from files in `dir`, as
/// an auditor would: the payload bytes, the decoded signature and the PEM key. Returns whether
/// openssl said "Signature Verified Successfully"; panics if openssl cannot be run at all, since a
/// missing tool must fail the test, not pass it.
pub fn verifies(dir: &Path, key: &PublicKey, record: &SignedRecord) -> bool {
    use base64::Engine as _;
    let signature = base64::engine::general_purpose::STANDARD
        .decode(&record.signature)
        .expect("signature is base64");
    let key_file = dir.join("kiosk.pem");
    let payload_file = dir.join("payload.json");
    let signature_file = dir.join("payload.sig");
    fs::write(&key_file, key.to_pem()).expect("write key");
    fs::write(&payload_file, record.payload.as_bytes()).expect("write payload");
    fs::write(&signature_file, signature).expect("write signature");
    let output = Command::new("openssl")
        .args(["pkeyutl", "-verify", "-pubin", "-inkey"])
        .arg(&key_file)
        .arg("-rawin")
        .arg("-in")
        .arg(&payload_file)
        .arg("-sigfile")
        .arg(&signature_file)
        .output()
        .expect("openssl must be installed (make test installs it)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    output.status.success() && stdout.contains("Signature Verified Successfully")
}

/// The lowercase hex SHA-256 of `bytes` as `openssl dgst -sha256` computes it: what a record's
/// `prev` must hold for the record before it.
pub fn sha256_hex(dir: &Path, bytes: &[u8]) -> String {
    let file = dir.join("digest-input");
    fs::write(&file, bytes).expect("write digest input");
    let output = Command::new("openssl")
        .args(["dgst", "-sha256", "-r"])
        .arg(&file)
        .output()
        .expect("openssl must be installed (make test installs it)");
    assert!(output.status.success(), "openssl dgst failed");
    String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .next()
        .expect("openssl dgst prints the digest first")
        .to_owned()
}
