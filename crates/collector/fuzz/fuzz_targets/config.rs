//! Any text as a collector config: loading and validating report errors, never panic.
#![no_main]

use collector::config::{self, Errors};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut errors = Errors::default();
    if let Some(cfg) = config::load_str("fuzz.yaml", text, &mut errors) {
        collector::service::validate(&cfg, &mut errors);
    }
    for e in &errors.errors {
        let _ = e.to_string();
    }
});
