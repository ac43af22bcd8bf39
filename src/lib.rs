//! procbot: keeps ISO/IEC 27001 documented operating procedures alive in chat.
//!
//! See ARCHITECTURE.md for the map. `core` is platform-free and does no IO; everything else
//! wraps it with IO (files, HTTP, configuration).

pub mod adapters;
pub mod cli;
pub mod clock;
pub mod config;
pub mod core;
pub mod delivery;
pub mod engine;
pub mod evidence;
pub mod html;
pub mod http;
pub mod import;
pub mod repo;
pub mod scheduler;
pub mod search;
pub mod startup;
pub mod store;
pub mod telemetry;
