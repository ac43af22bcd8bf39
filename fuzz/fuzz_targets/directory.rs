//! Fuzz target `directory`: `directory.yaml` text through `Directory::parse`, and its first lines as schedules through `Schedule::parse` and the next and latest firing.
#![no_main]

#[allow(dead_code)]
#[path = "../../tests/procbot/fuzz_checks.rs"]
mod fuzz_checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_checks::directory(data));
