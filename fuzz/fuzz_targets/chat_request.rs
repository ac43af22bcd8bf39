//! Fuzz target `chat_request`: chat text through `Request::from_text` (as typed and after a Slack mention) and through `Request::from_action` as a button id.
#![no_main]

#[allow(dead_code)]
#[path = "../../tests/procbot/fuzz_checks.rs"]
mod fuzz_checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_checks::chat_request(data));
