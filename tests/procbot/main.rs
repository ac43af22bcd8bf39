//! Integration tests for procbot, compiled as one binary.

mod check_cli;
mod check_codes;
mod helpers;
mod import_comply;
mod parser_robustness;
mod serve;
mod starter_library;
mod tidy;
