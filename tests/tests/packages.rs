//! The Debian packages as an installer meets them: `deploy/package.sh` builds each from the
//! binaries of this build, `dpkg-deb` reads them back, they unpack into a scratch root with the
//! right files and modes, systemd accepts their units and rates their exposure low, and their
//! maintainer scripts create the users and directories without ever touching existing data, and
//! refuse a kiosk upgrade while records are unsynced.

#![allow(clippy::unwrap_used)]

use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;

use tests::workspace;

fn run(command: &mut Command) -> Output {
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{command:?}: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// `package`'s .deb built from this build's binaries, once for all the tests of this file.
fn build(package: &str) -> PathBuf {
    static BUILT: Mutex<Vec<(String, PathBuf)>> = Mutex::new(Vec::new());
    let mut built = BUILT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some((_, deb)) = built.iter().find(|(name, _)| name == package) {
        return deb.clone();
    }
    workspace::binary(package);
    let out = workspace::binary_dir().join("package-test");
    let output = run(Command::new(workspace::root().join("deploy/package.sh"))
        .arg(package)
        .arg(workspace::binary_dir())
        .arg(&out)
        .env("PACKAGE_COMPRESSION", "none"));
    let deb = PathBuf::from(stdout(&output).trim());
    built.push((package.to_owned(), deb.clone()));
    deb
}

/// A package unpacked into a scratch root, with its control files in `root/DEBIAN`.
struct Unpacked {
    _dir: tempfile::TempDir,
    root: PathBuf,
    deb: PathBuf,
}

fn unpack(package: &str) -> Unpacked {
    let dir = tempfile::tempdir().unwrap();
    let deb = build(package);
    let root = dir.path().join("root");
    run(Command::new("dpkg").arg("-x").arg(&deb).arg(&root));
    run(Command::new("dpkg-deb")
        .arg("-e")
        .arg(&deb)
        .arg(root.join("DEBIAN")));
    Unpacked {
        _dir: dir,
        root,
        deb,
    }
}

/// Each `(path, mode)` of `files` is in the package's listing with that mode, owned by root.
fn check_listed(unpacked: &Unpacked, files: &[(&str, &str)]) {
    let listing = stdout(&run(Command::new("dpkg-deb")
        .arg("--contents")
        .arg(&unpacked.deb)));
    for (path, mode) in files {
        let line = listing
            .lines()
            .find(|line| line.ends_with(&format!(" .{path}")))
            .unwrap_or_else(|| panic!("{path} is not in the package:\n{listing}"));
        assert!(line.starts_with(mode), "{path}: {line}");
        assert!(line.contains(" root/root "), "{path}: {line}");
    }
}

fn control_field(unpacked: &Unpacked, field: &str) -> String {
    let output = run(Command::new("dpkg-deb")
        .arg("--field")
        .arg(&unpacked.deb)
        .arg(field));
    stdout(&output).trim().to_owned()
}

#[test]
fn the_kiosk_package_holds_its_binary_units_options_and_runbooks() {
    let unpacked = unpack("kiosk");
    check_listed(
        &unpacked,
        &[
            ("/usr/bin/kiosk", "-rwxr-xr-x"),
            ("/usr/lib/systemd/system/kiosk.service", "-rw-r--r--"),
            (
                "/usr/lib/systemd/system/kiosk-display.service",
                "-rw-r--r--",
            ),
            ("/usr/lib/sysusers.d/kiosk.conf", "-rw-r--r--"),
            ("/etc/default/kiosk", "-rw-r--r--"),
            ("/usr/share/doc/kiosk/examples/kiosk.toml", "-rw-r--r--"),
            ("/usr/share/doc/kiosk/examples/wg0.conf", "-rw-r--r--"),
            ("/usr/share/doc/kiosk/enrolment.md", "-rw-r--r--"),
            ("/usr/share/doc/kiosk/upgrade.md", "-rw-r--r--"),
            ("/usr/share/doc/kiosk/wireguard.md", "-rw-r--r--"),
            ("/usr/share/doc/kiosk/copyright", "-rw-r--r--"),
        ],
    );
    assert_eq!(control_field(&unpacked, "Package"), "kiosk");
    assert_eq!(
        control_field(&unpacked, "Version"),
        env!("CARGO_PKG_VERSION")
    );
    let depends = control_field(&unpacked, "Depends");
    for needed in [
        "pcscd",
        "libpcsclite1",
        "fonts-dejavu-core",
        "libxkbcommon-x11-0",
    ] {
        assert!(depends.contains(needed), "Depends: {depends}");
    }
    assert!(control_field(&unpacked, "Recommends").contains("alsa-utils"));
    let conffiles = std::fs::read_to_string(unpacked.root.join("DEBIAN/conffiles")).unwrap();
    assert_eq!(conffiles, "/etc/default/kiosk\n");
    for script in ["preinst", "postinst", "prerm", "postrm"] {
        let mode = std::fs::metadata(unpacked.root.join("DEBIAN").join(script))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o755, "{script}");
        run(Command::new("sh")
            .arg("-n")
            .arg(unpacked.root.join("DEBIAN").join(script)));
    }
    // The unpacked binary is this build's kiosk.
    let version = run(Command::new(unpacked.root.join("usr/bin/kiosk")).arg("--version"));
    assert!(stdout(&version).contains(env!("CARGO_PKG_VERSION")));
}

#[test]
fn the_backoffice_package_keeps_its_options_private() {
    let unpacked = unpack("backoffice");
    check_listed(
        &unpacked,
        &[
            ("/usr/bin/backoffice", "-rwxr-xr-x"),
            ("/usr/lib/systemd/system/backoffice.service", "-rw-r--r--"),
            ("/usr/lib/sysusers.d/backoffice.conf", "-rw-r--r--"),
            // May hold the database password.
            ("/etc/default/backoffice", "-rw-r-----"),
            (
                "/usr/share/doc/backoffice/examples/prometheus.yml",
                "-rw-r--r--",
            ),
            (
                "/usr/share/doc/backoffice/examples/alerts.yml",
                "-rw-r--r--",
            ),
            ("/usr/share/doc/backoffice/postgresql.md", "-rw-r--r--"),
            ("/usr/share/doc/backoffice/monitoring.md", "-rw-r--r--"),
        ],
    );
    assert_eq!(control_field(&unpacked, "Package"), "backoffice");
    let conffiles = std::fs::read_to_string(unpacked.root.join("DEBIAN/conffiles")).unwrap();
    assert_eq!(conffiles, "/etc/default/backoffice\n");
}

/// The keys a unit must have, as `(section, line)`.
fn check_unit_keys(unit: &str, text: &str, required: &[&str]) {
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    for key in required {
        assert!(lines.contains(key), "{unit}: missing {key:?}\n{text}");
    }
}

/// Every option in an /etc/default file is documented and commented out.
fn check_defaults_commented(path: &Path) {
    let text = std::fs::read_to_string(path).unwrap();
    let options: Vec<&str> = text
        .lines()
        .filter(|line| line.starts_with('#') && line.contains('=') && !line.contains(' '))
        .collect();
    assert!(options.len() >= 3, "{}: {text}", path.display());
    for line in text.lines() {
        assert!(
            line.is_empty() || line.starts_with('#'),
            "{}: an option is set: {line}",
            path.display()
        );
    }
}

#[test]
fn units_are_hardened_and_systemd_accepts_them() {
    let kiosk = unpack("kiosk");
    let backoffice = unpack("backoffice");
    let hardening = [
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "PrivateTmp=yes",
        "ProtectHome=yes",
        "CapabilityBoundingSet=",
        "Restart=on-failure",
        "UMask=0077",
        "SystemCallArchitectures=native",
        "SystemCallFilter=@system-service",
        "SystemCallFilter=~@privileged @resources",
        "MemoryDenyWriteExecute=yes",
    ];
    let kiosk_keys = [
        "Type=notify",
        "WatchdogSec=30",
        "User=kiosk",
        "ReadWritePaths=/var/lib/kiosk",
        "Wants=pcscd.socket kiosk-display.service network-online.target",
        "After=pcscd.socket pcscd.service kiosk-display.service network-online.target",
        "ExecStart=/usr/bin/kiosk run",
        "EnvironmentFile=-/etc/default/kiosk",
        "ConditionPathExists=/var/lib/kiosk/kiosk.toml",
    ];
    let backoffice_keys = [
        "Type=notify",
        "User=backoffice",
        "ReadWritePaths=/var/lib/backoffice",
        "ExecStart=/usr/bin/backoffice serve",
        "EnvironmentFile=-/etc/default/backoffice",
    ];
    for (unpacked, unit, keys) in [
        (&kiosk, "kiosk.service", &kiosk_keys[..]),
        (&backoffice, "backoffice.service", &backoffice_keys[..]),
    ] {
        let text = std::fs::read_to_string(unpacked.root.join("usr/lib/systemd/system").join(unit))
            .unwrap();
        check_unit_keys(unit, &text, &hardening);
        check_unit_keys(unit, &text, keys);
    }
    check_defaults_commented(&kiosk.root.join("etc/default/kiosk"));
    check_defaults_commented(&backoffice.root.join("etc/default/backoffice"));

    // systemd's own check, with the binaries at their unpacked paths (the host has none in
    // /usr/bin) and the host's units for the rest (pcscd.socket, network-online.target).
    let verify = tempfile::tempdir().unwrap();
    let mut units = Vec::new();
    for (unpacked, unit) in [
        (&kiosk, "kiosk.service"),
        (&kiosk, "kiosk-display.service"),
        (&backoffice, "backoffice.service"),
    ] {
        let text = std::fs::read_to_string(unpacked.root.join("usr/lib/systemd/system").join(unit))
            .unwrap();
        let text = text
            .replace(
                "/usr/bin/kiosk",
                &kiosk.root.join("usr/bin/kiosk").display().to_string(),
            )
            .replace(
                "/usr/bin/backoffice",
                &backoffice
                    .root
                    .join("usr/bin/backoffice")
                    .display()
                    .to_string(),
            );
        let path = verify.path().join(unit);
        std::fs::write(&path, text).unwrap();
        units.push(path);
    }
    let output = Command::new("systemd-analyze")
        .arg("verify")
        .args(&units)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    // Xorg is recommended, not required: a test machine has none.
    let xorg_missing = "kiosk-display.service: Command /usr/bin/Xorg is not executable";
    let complaints: Vec<&str> = stderr
        .lines()
        .filter(|line| !line.starts_with(xorg_missing) || Path::new("/usr/bin/Xorg").exists())
        .collect();
    assert!(complaints.is_empty(), "systemd-analyze verify:\n{stderr}");
}

/// The highest exposure a shipped unit may have in `systemd-analyze security` (0 to 10).
const EXPOSURE_MAX: f64 = 2.0;

/// The overall exposure `systemd-analyze security` reports for `unit`, installed as the
/// package ships it in its unpacked root, with its full listing.
fn exposure(unpacked: &Unpacked, unit: &str) -> (f64, String) {
    // Offline: the unit file alone is judged, as written, without a running systemd; the
    // unpacked root is where it is looked up.
    let output = Command::new("systemd-analyze")
        .arg("security")
        .arg("--offline=true")
        .arg("--no-pager")
        .arg(format!("--root={}", unpacked.root.display()))
        .arg(unit)
        .output()
        .unwrap();
    let listing = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "systemd-analyze security {unit}:\n{listing}"
    );
    let prefix = format!("Overall exposure level for {unit}:");
    let level = listing
        .lines()
        .find_map(|line| {
            line.split_once(prefix.as_str())?
                .1
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("{unit}: no overall exposure level in:\n{listing}"));
    (level, listing)
}

#[test]
fn units_expose_little_to_systemd_analyze_security() {
    for (package, unit) in [
        ("kiosk", "kiosk.service"),
        ("backoffice", "backoffice.service"),
    ] {
        let unpacked = unpack(package);
        let (level, listing) = exposure(&unpacked, unit);
        assert!(
            level <= EXPOSURE_MAX,
            "{unit}: exposure {level} > {EXPOSURE_MAX}\n{listing}"
        );
    }
}

/// Runs a maintainer script of `unpacked` into its own root (`DPKG_ROOT`), as root; returns
/// its output whatever its status.
fn maintainer_script(
    unpacked: &Unpacked,
    script: &str,
    args: &[&str],
    env: &[(&str, &str)],
) -> Output {
    let mut command = Command::new(unpacked.root.join("DEBIAN").join(script));
    command
        .args(args)
        .env("DPKG_ROOT", &unpacked.root)
        .env_remove("KIOSK_UPGRADE_FORCE");
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().unwrap()
}

fn id_in(root: &Path, file: &str, name: &str) -> u32 {
    let text = std::fs::read_to_string(root.join(file)).unwrap();
    let line = text
        .lines()
        .find(|line| line.starts_with(&format!("{name}:")))
        .unwrap_or_else(|| panic!("no {name} in {file}:\n{text}"));
    line.split(':').nth(2).unwrap().parse().unwrap()
}

#[test]
fn postinst_creates_users_and_directories_and_never_touches_existing_data() {
    // Creating users and chowning into a scratch root needs root, as dpkg runs the scripts.
    let whoami = run(Command::new("id").arg("-u"));
    assert_eq!(
        stdout(&whoami).trim(),
        "0",
        "the maintainer script test runs as root (as `make test` does in its container)"
    );
    for package in ["kiosk", "backoffice"] {
        let unpacked = unpack(package);
        let data = unpacked.root.join("var/lib").join(package);
        let first = maintainer_script(&unpacked, "postinst", &["configure"], &[]);
        assert!(first.status.success(), "{package}: {first:?}");
        let uid = id_in(&unpacked.root, "etc/passwd", package);
        let gid = id_in(&unpacked.root, "etc/group", package);
        assert!(uid > 0 && uid < 1000, "{package}: a system user, uid {uid}");
        let metadata = std::fs::metadata(&data).unwrap();
        assert_eq!((metadata.uid(), metadata.gid()), (uid, gid), "{package}");
        assert_eq!(metadata.permissions().mode() & 0o7777, 0o750, "{package}");
        if package == "kiosk" {
            let group = std::fs::read_to_string(unpacked.root.join("etc/group")).unwrap();
            assert!(
                group
                    .lines()
                    .any(|line| line.starts_with("audio:") && line.ends_with("kiosk")),
                "{group}"
            );
        }

        // Data an administrator tightened, then an upgrade and a purge: nothing changes.
        let ledger = data.join("ledger.sqlite");
        std::fs::write(&ledger, b"signed records").unwrap();
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o700)).unwrap();
        let upgrade = maintainer_script(&unpacked, "postinst", &["configure", "0.0.9"], &[]);
        assert!(upgrade.status.success(), "{package}: {upgrade:?}");
        let purge = maintainer_script(&unpacked, "postrm", &["purge"], &[]);
        assert!(purge.status.success(), "{package}: {purge:?}");
        let remove = maintainer_script(&unpacked, "prerm", &["remove"], &[]);
        assert!(remove.status.success(), "{package}: {remove:?}");
        assert_eq!(std::fs::read(&ledger).unwrap(), b"signed records");
        let metadata = std::fs::metadata(&data).unwrap();
        assert_eq!(metadata.permissions().mode() & 0o7777, 0o700, "{package}");
        assert_eq!(id_in(&unpacked.root, "etc/passwd", package), uid);
    }
}

#[test]
fn a_kiosk_upgrade_is_refused_while_records_are_unsynced_unless_forced() {
    let unpacked = unpack("kiosk");
    let data = unpacked.root.join("var/lib/kiosk");
    // A kiosk enrolled with this build.
    run(Command::new(unpacked.root.join("usr/bin/kiosk"))
        .args([
            "init",
            "--site",
            "jaures",
            "--name",
            "Entrée cour",
            "--data-dir",
        ])
        .arg(&data));
    // A start writes its audit record, which only this kiosk holds until it syncs.
    run(Command::new(unpacked.root.join("usr/bin/kiosk"))
        .args(["run", "--ui", "text", "--reader", "stdin", "--data-dir"])
        .arg(&data)
        .stdin(std::process::Stdio::null()));
    let status = run(Command::new(unpacked.root.join("usr/bin/kiosk"))
        .args(["status", "--json", "--data-dir"])
        .arg(&data));
    let report: serde_json::Value = serde_json::from_str(&stdout(&status)).unwrap();
    let unsynced = report["unsynced_records"].as_u64().unwrap();
    assert!(unsynced > 0, "{report}");

    let refused = maintainer_script(&unpacked, "preinst", &["upgrade", "0.0.9"], &[]);
    assert!(!refused.status.success(), "{refused:?}");
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(
        message.contains(&format!("{unsynced} records are not yet acknowledged")),
        "{message}"
    );
    assert!(message.contains("KIOSK_UPGRADE_FORCE=1"), "{message}");

    let forced = maintainer_script(
        &unpacked,
        "preinst",
        &["upgrade", "0.0.9"],
        &[("KIOSK_UPGRADE_FORCE", "1")],
    );
    assert!(forced.status.success(), "{forced:?}");
    // A fresh install is not an upgrade: nothing to check.
    let install = maintainer_script(&unpacked, "preinst", &["install"], &[]);
    assert!(install.status.success(), "{install:?}");

    // The installed kiosk reports everything acknowledged: the upgrade goes ahead.
    let kiosk = unpacked.root.join("usr/bin/kiosk");
    std::fs::write(
        &kiosk,
        "#!/bin/sh\necho '{\"device\":\"jaures-00000000\",\"unsynced_records\":0}'\n",
    )
    .unwrap();
    let synced = maintainer_script(&unpacked, "preinst", &["upgrade", "0.0.9"], &[]);
    assert!(synced.status.success(), "{synced:?}");
    // A kiosk whose state cannot be read is not upgraded blindly.
    std::fs::write(&kiosk, "#!/bin/sh\nexit 1\n").unwrap();
    let unreadable = maintainer_script(&unpacked, "preinst", &["upgrade", "0.0.9"], &[]);
    assert!(!unreadable.status.success(), "{unreadable:?}");
}
