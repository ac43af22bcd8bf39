//! Integration tests for procbot, compiled as one binary.

mod announce_e2e;
mod bot;
mod browser;
mod changes_cli;
mod chat_cli;
mod check_cli;
mod check_codes;
mod dashboard;
mod db;
mod discord;
mod discord_fake;
mod git_fixture;
mod helpers;
mod import_comply;
mod lookup_cli;
mod lookup_eval;
mod parser_robustness;
mod reminders_year;
mod secrets;
mod serve;
mod starter_library;
mod store_contract;
mod sync;
mod tidy;
mod webhook;
