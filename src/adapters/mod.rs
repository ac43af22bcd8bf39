//! Chat adapters: each turns its platform's events into `Request`s and renders the neutral
//! `Message` model for its platform. The console adapter is the first; Slack and Discord follow.

pub mod console;
