//! Fuzz target `slack_render`: a message built from the fuzzer's bytes, rendered as Block Kit (a message and the Home tab).
#![no_main]

#[allow(dead_code)]
#[path = "../../tests/procbot/fuzz_checks.rs"]
mod fuzz_checks;

libfuzzer_sys::fuzz_target!(|input: procbot_fuzz::FuzzMessage| fuzz_checks::slack_render(&input.0));
