//! A real window: `kiosk run` under Xvfb with a simulated reader playing a scripted tap, a
//! screenshot of the X display showing the served screen, no thread of the kiosk waking once it
//! is back at rest, and SIGTERM closing the window and stopping the kiosk cleanly.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The served screen's green, `#1b6e3a` in `ui/app.slint`.
const SERVED_GREEN: [u8; 3] = [0x1b, 0x6e, 0x3a];

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Reads an X window dump (`xwd`) of a 24/32-bit TrueColor screen into RGB pixels.
fn read_xwd(bytes: &[u8]) -> (usize, usize, Vec<[u8; 3]>) {
    let field = |i: usize| u32::from_be_bytes(bytes[i * 4..i * 4 + 4].try_into().unwrap());
    let size = |i: usize| usize::try_from(field(i)).unwrap();
    let (header_size, width, height, bytes_per_line, colors) =
        (size(0), size(4), size(5), size(12), size(19));
    let (byte_order, bits_per_pixel) = (field(7), field(11));
    let (red_mask, green_mask, blue_mask) = (field(14), field(15), field(16));
    assert_eq!(bits_per_pixel, 32, "expected a 32-bit dump");
    let data = &bytes[header_size + colors * 12..];
    let channel = |pixel: u32, mask: u32| {
        u8::try_from((pixel & mask) >> mask.trailing_zeros()).unwrap_or(u8::MAX)
    };
    let mut pixels = Vec::with_capacity(width * height);
    for y in 0..height {
        for x in 0..width {
            let at = y * bytes_per_line + x * 4;
            let raw: [u8; 4] = data[at..at + 4].try_into().unwrap();
            let pixel = if byte_order == 0 {
                u32::from_le_bytes(raw)
            } else {
                u32::from_be_bytes(raw)
            };
            pixels.push([
                channel(pixel, red_mask),
                channel(pixel, green_mask),
                channel(pixel, blue_mask),
            ]);
        }
    }
    (width, height, pixels)
}

/// The X display's screen as RGB pixels, if `xwd` could dump it.
fn screen(display: &str) -> Option<(usize, usize, Vec<[u8; 3]>)> {
    let dump = Command::new("xwd")
        .args(["-root", "-silent", "-display", display])
        .output()
        .expect("xwd must be installed");
    (dump.status.success() && dump.stdout.len() > 400).then(|| read_xwd(&dump.stdout))
}

/// The share of `pixels` in the served screen's green, in percent.
fn served_green_percent(pixels: &[[u8; 3]]) -> usize {
    let green = pixels
        .iter()
        .filter(|p| p.iter().zip(SERVED_GREEN).all(|(a, b)| a.abs_diff(b) <= 8))
        .count();
    green * 100 / pixels.len()
}

fn write_ppm(path: &Path, width: usize, height: usize, pixels: &[[u8; 3]]) {
    let mut out = format!("P6\n{width} {height}\n255\n").into_bytes();
    out.extend(pixels.iter().flatten());
    std::fs::write(path, out).unwrap();
}

#[test]
fn kiosk_run_shows_the_served_screen_in_a_real_window() {
    let dir = tempfile::tempdir().unwrap();
    // The window runs on the system clock: the service is open all week, all day.
    let data = common::enrol_always_open(dir.path(), 4);

    let xvfb = common::Xvfb::start();
    let display = &xvfb.display;
    let mut run = Killed(
        common::kiosk_run_tapping_once(&data, display, 1_500)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );

    let shot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("kiosk-run-served.ppm");
    let deadline = Instant::now() + Duration::from_secs(20);
    let green_share = loop {
        if let Some(status) = run.0.try_wait().unwrap() {
            let mut stderr = String::new();
            std::io::Read::read_to_string(run.0.stderr.as_mut().unwrap(), &mut stderr).unwrap();
            panic!("kiosk run exited with {status}: {stderr}");
        }
        if let Some((width, height, pixels)) = screen(display) {
            let share = served_green_percent(&pixels);
            if share >= 40 {
                write_ppm(&shot, width, height, &pixels);
                break share;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the served screen never appeared"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(green_share >= 40);

    // At rest: once the result screen has gone back to the ready screen, nothing in the kiosk
    // wakes but the clock on the minute, neither our tasks nor a dependency's thread (no other
    // timer, no timed wait, no poll).
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if screen(display).is_some_and(|(_, _, pixels)| served_green_percent(&pixels) < 5) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the served screen never went back to ready"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_secs(1));
    // The ready screen's clock turns with the minute: measure between two turns.
    let into_minute = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
        % 60_000;
    if into_minute > 55_000 {
        let after_turn = u64::try_from(62_000 - into_minute).unwrap();
        std::thread::sleep(Duration::from_millis(after_turn));
    }
    let before = common::thread_wakeups(run.0.id());
    std::thread::sleep(Duration::from_secs(3));
    let woken = common::threads_woken(&before, &common::thread_wakeups(run.0.id()));
    assert!(
        woken.is_empty(),
        "threads woke at rest: {woken:?} (of {:?})",
        before.values().map(|(name, _)| name).collect::<Vec<_>>()
    );

    // systemd's stop: the window closes, the tasks stop, the engine finishes, the exit is clean.
    let status = common::terminate(&mut run.0, Duration::from_secs(20))
        .unwrap_or_else(|why| panic!("{why}"));
    let mut stderr = String::new();
    std::io::Read::read_to_string(run.0.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert!(status.success(), "{status}: {stderr}");
    drop(run);
    // Stopped, the X server leaves its display number free for the next run.
    let lock = xvfb.lock.clone();
    drop(xvfb);
    assert!(!lock.exists(), "Xvfb left {}", lock.display());
    let records = common::verified_records(&data);
    assert!(records.iter().any(|r| matches!(&r.payload().body, proto::RecordBody::Meal(m) if m.pupil == common::pupil_id(1))));
}
