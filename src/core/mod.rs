//! The platform-free core: procedures, their parsing and checking, the directory.
//!
//! Architecture invariant: nothing under `core` does IO or imports a chat platform crate,
//! sqlx or axum. It takes data (file bytes, dates) and returns data.

pub mod announce;
pub mod change;
pub mod check;
pub mod compose;
pub mod diagnostic;
pub mod directory;
pub mod message;
pub mod parse;
pub mod port;
pub mod procedure;
pub mod reminders;
pub mod request;
pub mod runs;
pub mod schedule;
pub mod snapshot;
pub mod yaml;
