//! Chat adapters: each turns its platform's events into `Request`s and renders the neutral
//! `Message` model for its platform. `Connection` is how a platform plugs into procbot: the
//! port the outbox delivers through, and an inbound side started once the engine exists.

pub mod console;
pub mod discord;
pub mod slack;

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, RwLock};

use tokio::sync::{Notify, watch};

use crate::core::directory::RoleMembers;
use crate::core::port::ChatPort;
use crate::engine::Engine;

/// A long-running inbound task (Socket Mode, the Discord gateway): runs until `stop` turns
/// true. Returning early is an error the supervisor reports (procbot stops whole), so a task
/// that can no longer work (a rejected token) says why and returns.
pub type InboundTask =
    Box<dyn FnOnce(watch::Receiver<bool>) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send>;

/// What a platform's inbound side contributes once started.
#[derive(Default)]
pub struct Inbound {
    /// HTTP routes the platform posts to (merged into procbot's router).
    pub routes: Option<axum::Router>,
    /// A supervised task, with the name the logs give it.
    pub task: Option<(&'static str, InboundTask)>,
}

/// What a platform's inbound side starts with.
pub struct InboundContext {
    /// Answers its requests.
    pub engine: Arc<Engine>,
    /// Who holds the Discord roles teams are mapped to; the syncer builds directories with it.
    pub role_members: Arc<RwLock<RoleMembers>>,
    /// Asks for a sync at once (as a push webhook does).
    pub resync: Arc<Notify>,
}

/// Starts a platform's inbound side.
pub type StartInbound = Box<dyn FnOnce(InboundContext) -> Inbound + Send>;

/// A chat platform procbot is configured for.
pub struct Connection {
    pub port: Arc<dyn ChatPort>,
    /// Where announcements are posted on this platform.
    pub announce_channel: Option<String>,
    pub start: StartInbound,
}
