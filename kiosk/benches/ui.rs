//! The touchscreen's costs. Run with `cargo bench -p kiosk --bench ui [-- --taps N --idle-s S]`.
//!
//! 1. From the engine's decision reaching the UI thread to the result screen's first frame drawn
//!    by the software renderer (1024x768), for served taps: p50/p99, target p99 <= 16 ms.
//! 2. `kiosk run` with its window on a virtual X display, at rest after one tap: CPU used over
//!    `--idle-s` seconds (target <= 0.5% of one core), resident memory (target <= 60 MB), and
//!    how often its threads woke (context switches, from `/proc`; no target, none expected but
//!    the minute clock's).

#![allow(
    clippy::float_arithmetic,
    clippy::unwrap_used,
    clippy::cast_precision_loss
)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::process::Stdio;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kiosk::ui::{KioskUi, Screen};
use kiosk::worker::{EngineWorker, NoWaker};
use slint::platform::software_renderer::{MinimalSoftwareWindow, RepaintBufferType};
use slint::platform::{Platform, WindowAdapter};
use slint::{ComponentHandle as _, Rgb8Pixel};

struct BenchPlatform {
    window: Rc<MinimalSoftwareWindow>,
}

impl Platform for BenchPlatform {
    fn create_window_adapter(&self) -> Result<Rc<dyn WindowAdapter>, slint::PlatformError> {
        Ok(self.window.clone())
    }
}

fn frame_times(taps: usize) {
    let window = MinimalSoftwareWindow::new(RepaintBufferType::NewBuffer);
    slint::platform::set_platform(Box::new(BenchPlatform {
        window: window.clone(),
    }))
    .unwrap();
    let common::TestKiosk {
        dir: _dir, engine, ..
    } = common::TestKiosk::new(taps + 1);
    let runtime = kiosk::run::runtime().unwrap();
    let (worker, sender, updates) =
        EngineWorker::start(runtime.handle(), engine, Arc::new(NoWaker));
    let ui = KioskUi::new(
        sender.clone(),
        updates,
        proto::snapshot::Language::Fr,
        2_000,
    )
    .unwrap();
    window.set_size(slint::PhysicalSize::new(1024, 768));
    ui.window().show().unwrap();
    let mut buffer = vec![Rgb8Pixel { r: 0, g: 0, b: 0 }; 1024 * 768];
    let mut times = Vec::with_capacity(taps);
    for n in 1..=taps {
        sender.tap(common::pupil_card(n));
        let started = loop {
            let started = Instant::now();
            if ui.apply_updates() > 0 {
                break started;
            }
            std::thread::yield_now();
        };
        slint::platform::update_timers_and_animations();
        window.draw_if_needed(|renderer| {
            renderer.render(&mut buffer, 1024);
        });
        times.push(started.elapsed());
        assert_eq!(
            ui.window().global::<kiosk::ui::Kiosk>().get_screen(),
            Screen::Served
        );
    }
    drop(worker.stop());
    times.sort();
    let p50 = common::ms(times[times.len() / 2]);
    let p99 = common::ms(times[(times.len() - 1) * 99 / 100]);
    println!(
        "decision to first frame drawn ({taps} served taps): p50 {p50:.2} ms, p99 {p99:.2} ms; p99 / 16 ms target = {:.2}",
        p99 / 16.0
    );
}

fn process_cpu_ms(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    // utime and stime, fields 14 and 15 of stat, in clock ticks (100 a second on Linux).
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    ticks * 10
}

fn process_rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn at_rest(idle_s: u64) {
    let dir = tempfile::tempdir().unwrap();
    let data = common::enrol_always_open(dir.path(), 200);
    let xvfb = common::Xvfb::start();
    let mut run = common::kiosk_run_tapping_once(&data, &xvfb.display, 500)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Let the tap be served and its result screen time out, then measure the kiosk at rest.
    std::thread::sleep(Duration::from_secs(5));
    let pid = run.id();
    let cpu_before = process_cpu_ms(pid);
    let wakeups_before = common::thread_wakeups(pid);
    let started = Instant::now();
    std::thread::sleep(Duration::from_secs(idle_s));
    let cpu_ms = process_cpu_ms(pid) - cpu_before;
    let woken = common::threads_woken(&wakeups_before, &common::thread_wakeups(pid));
    let wall_ms = started.elapsed().as_millis() as f64;
    let rss_mb = process_rss_kb(pid) as f64 / 1024.0;
    let _ = run.kill();
    let _ = run.wait();
    drop(xvfb);
    let cpu_percent = cpu_ms as f64 * 100.0 / wall_ms;
    println!(
        "kiosk run at rest for {idle_s} s: CPU {cpu_ms} ms = {cpu_percent:.3}% of one core (target 0.5%, ratio {:.2}); resident {rss_mb:.1} MB (target 60 MB, ratio {:.2}); threads woken: {}",
        cpu_percent / 0.5,
        rss_mb / 60.0,
        if woken.is_empty() {
            "none".to_string()
        } else {
            format!("{woken:?}")
        }
    );
}

fn main() {
    let taps: usize = common::bench_arg("--taps", 300);
    let idle_s = common::bench_arg("--idle-s", 60);
    at_rest(idle_s);
    frame_times(taps);
}
