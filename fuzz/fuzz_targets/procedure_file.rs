//! Fuzz target `procedure_file`: a procedure file's bytes through the parser, the checks, a snapshot, and both platforms' rendering of the procedure.
#![no_main]

#[allow(dead_code)]
#[path = "../../tests/procbot/fuzz_checks.rs"]
mod fuzz_checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_checks::procedure_file(data));
