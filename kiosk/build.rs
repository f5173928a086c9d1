//! Compiles the touchscreen UI (`ui/app.slint`) with its bundled translations (`ui/lang`).
//! Debug builds carry the element ids the UI tests look up.

fn main() {
    let debug = std::env::var("PROFILE").is_ok_and(|profile| profile == "debug");
    let config = slint_build::CompilerConfiguration::new()
        .with_bundled_translations("ui/lang")
        .with_default_translation_context(slint_build::DefaultTranslationContext::None)
        .with_debug_info(debug);
    slint_build::compile_with_config("ui/app.slint", config).expect("the kiosk UI compiles");
}
