//! Every screen in each language, rendered with Slint's software renderer and compared with the
//! reference images in `tests/screenshots/`, so a layout regression fails. The images rendered
//! are written under `target/tmp/screenshots/` for a person to look at; `UPDATE_SCREENSHOTS=1`
//! writes them as the new references after a deliberate change.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::rc::Rc;

use kiosk::ui::{AppWindow, Kiosk, ListRow, Screen};
use slint::platform::software_renderer::{MinimalSoftwareWindow, RepaintBufferType};
use slint::platform::{Platform, WindowAdapter};
use slint::{ComponentHandle as _, ModelRc, Rgb8Pixel, SharedString, VecModel};

const WIDTH: u32 = 1024;
const HEIGHT: u32 = 768;
/// A pixel differs when a channel moves by more than this (font hinting, rounding).
const CHANNEL_TOLERANCE: u8 = 24;
/// Differing pixels allowed, in thousandths of the image.
const DIFFERING_PERMILLE_MAX: usize = 5;

struct ScreenshotPlatform {
    window: Rc<MinimalSoftwareWindow>,
}

impl Platform for ScreenshotPlatform {
    fn create_window_adapter(&self) -> Result<Rc<dyn WindowAdapter>, slint::PlatformError> {
        Ok(self.window.clone())
    }
}

fn strings(values: &[&str]) -> ModelRc<SharedString> {
    ModelRc::new(VecModel::from(
        values
            .iter()
            .map(|v| SharedString::from(*v))
            .collect::<Vec<_>>(),
    ))
}

/// Sets what each screen shows, as the engine would.
fn prepare(kiosk: &Kiosk<'_>, screen: Screen) {
    kiosk.set_screen(screen);
    kiosk.set_service_name("Déjeuner".into());
    kiosk.set_clock("12:05".into());
    kiosk.set_dimmed(false);
    kiosk.set_first_name("Chloé".into());
    kiosk.set_balance("12,40 €".into());
    kiosk.set_dietary_alert(true);
    kiosk.set_alert_open(false);
    kiosk.set_alert_flags(strings(&["peanut_allergy"]));
    kiosk.set_online(true);
    kiosk.set_unsynced(3);
    kiosk.set_last_sync("12:04".into());
    kiosk.set_staff_name("Mme Durand".into());
    kiosk.set_message(SharedString::new());
    kiosk.set_entry(match screen {
        Screen::StaffPin => "••••".into(),
        Screen::StaffTopUp | Screen::StaffClose => "20,00 €".into(),
        Screen::StaffServe => "MAR".into(),
        _ => SharedString::new(),
    });
    kiosk.set_rows(ModelRc::new(VecModel::from(match screen {
        Screen::StaffServe => vec![
            ListRow {
                key: "P1".into(),
                label: "Chloé Martin".into(),
            },
            ListRow {
                key: "P2".into(),
                label: "Lucas Martinez".into(),
            },
        ],
        Screen::StaffVoid => vec![ListRow {
            key: "12".into(),
            label: "n° 12 · repas P00004 · 3,85 €".into(),
        }],
        _ => Vec::new(),
    })));
    kiosk.set_close_expected("20,50 €".into());
    kiosk.set_close_difference("-0,50 €".into());
    kiosk.set_status_lines(strings(&[
        "Borne : jaures-3f9a0c7e",
        "Dernier n° : 42",
        "Non synchronisés : 3",
    ]));
}

fn render(window: &MinimalSoftwareWindow) -> Vec<Rgb8Pixel> {
    let mut buffer = vec![Rgb8Pixel { r: 0, g: 0, b: 0 }; (WIDTH * HEIGHT) as usize];
    slint::platform::update_timers_and_animations();
    window.request_redraw();
    window.draw_if_needed(|renderer| {
        renderer.render(&mut buffer, WIDTH as usize);
    });
    buffer
}

fn write_png(path: &Path, pixels: &[Rgb8Pixel]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut encoder = png::Encoder::new(file, WIDTH, HEIGHT);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let bytes: Vec<u8> = pixels.iter().flat_map(|p| [p.r, p.g, p.b]).collect();
    encoder
        .write_header()
        .unwrap()
        .write_image_data(&bytes)
        .unwrap();
}

fn read_png(path: &Path) -> Option<Vec<u8>> {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).ok()?));
    let mut reader = decoder.read_info().unwrap();
    let mut bytes = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut bytes).unwrap();
    assert_eq!(
        (info.width, info.height),
        (WIDTH, HEIGHT),
        "{}",
        path.display()
    );
    bytes.truncate(info.buffer_size());
    Some(bytes)
}

fn differing_permille(actual: &[Rgb8Pixel], reference: &[u8]) -> usize {
    let differing = actual
        .iter()
        .zip(reference.chunks_exact(3))
        .filter(|(a, r)| {
            [a.r, a.g, a.b]
                .iter()
                .zip(r.iter())
                .any(|(x, y)| x.abs_diff(*y) > CHANNEL_TOLERANCE)
        })
        .count();
    differing * 1000 / actual.len()
}

#[test]
fn every_screen_in_every_language_matches_its_reference() {
    let window = MinimalSoftwareWindow::new(RepaintBufferType::NewBuffer);
    slint::platform::set_platform(Box::new(ScreenshotPlatform {
        window: window.clone(),
    }))
    .unwrap();
    let app = AppWindow::new().unwrap();
    window.set_size(slint::PhysicalSize::new(WIDTH, HEIGHT));
    app.show().unwrap();
    let references = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/screenshots");
    let rendered = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
    let update = std::env::var_os("UPDATE_SCREENSHOTS").is_some();
    let screens = [
        ("ready", Screen::Ready),
        ("served", Screen::Served),
        ("already-served", Screen::AlreadyServed),
        ("see-staff", Screen::SeeStaff),
        ("no-service", Screen::NoService),
        ("reader-unavailable", Screen::ReaderUnavailable),
        ("out-of-service", Screen::OutOfService),
        ("staff-pin", Screen::StaffPin),
        ("staff-menu", Screen::StaffMenu),
        ("staff-top-up", Screen::StaffTopUp),
        ("staff-serve", Screen::StaffServe),
        ("staff-void", Screen::StaffVoid),
        ("staff-close", Screen::StaffClose),
        ("staff-status", Screen::StaffStatus),
    ];
    let mut failures = Vec::new();
    let mut previous: Option<Vec<Rgb8Pixel>> = None;
    for (language, code) in [
        (proto::snapshot::Language::Fr, "fr"),
        (proto::snapshot::Language::De, "de"),
        (proto::snapshot::Language::En, "en"),
    ] {
        kiosk::ui::select_language(language);
        for (name, screen) in screens {
            prepare(&app.global::<Kiosk>(), screen);
            let pixels = render(&window);
            assert!(
                previous.as_ref() != Some(&pixels),
                "{code}/{name} rendered the same as the screen before"
            );
            let file = format!("{code}/{name}.png");
            write_png(&rendered.join(&file), &pixels);
            if update {
                write_png(&references.join(&file), &pixels);
            }
            match read_png(&references.join(&file)) {
                None => failures.push(format!(
                    "{file}: no reference (run with UPDATE_SCREENSHOTS=1 after checking {})",
                    rendered.join(&file).display()
                )),
                Some(reference) => {
                    let permille = differing_permille(&pixels, &reference);
                    if permille > DIFFERING_PERMILLE_MAX {
                        failures.push(format!(
                            "{file}: {permille}‰ of pixels differ; see {}",
                            rendered.join(&file).display()
                        ));
                    }
                }
            }
            previous = Some(pixels);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
