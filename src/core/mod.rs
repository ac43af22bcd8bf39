//! The platform-free core: procedures, their parsing and checking, the directory.
//!
//! Architecture invariant: nothing under `core` does IO or imports a chat platform crate,
//! sqlx or axum. It takes data (file bytes, dates) and returns data.

pub mod change;
pub mod check;
pub mod diagnostic;
pub mod directory;
pub mod parse;
pub mod procedure;
pub mod schedule;
pub mod snapshot;
pub mod yaml;
