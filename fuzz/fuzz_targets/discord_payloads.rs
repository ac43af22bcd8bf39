//! Fuzz target `discord_payloads`: interaction bodies through the lenient reader, what they ask, and the Ed25519 signature check.
#![no_main]

#[allow(dead_code)]
#[path = "../../tests/procbot/fuzz_checks.rs"]
mod fuzz_checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_checks::discord_payloads(data));
