//! Fuzz target `slack_payloads`: Slack's HTTP bodies (command form, interaction `payload=`, Events API JSON), the `v0` signature check and `allowed_response_url`; the first byte picks which.
#![no_main]

#[allow(dead_code)]
#[path = "../../tests/procbot/fuzz_checks.rs"]
mod fuzz_checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_checks::slack_payloads(data));
