//! Fuzz target `discord_render`: a message built from the fuzzer's bytes, rendered as Discord messages, before and after a click.
#![no_main]

#[allow(dead_code)]
#[path = "../../tests/procbot/fuzz_checks.rs"]
mod fuzz_checks;

libfuzzer_sys::fuzz_target!(
    |input: procbot_fuzz::FuzzMessage| fuzz_checks::discord_render(&input.0)
);
