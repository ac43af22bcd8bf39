//! The Discord adapter: `connect` turns the `[discord]` configuration into a `Connection` (the
//! outbound port, and an inbound side started with the engine), without touching the network.
//! Gateway mode (the default) receives interactions over serenity's gateway connection; HTTP
//! mode serves `POST /discord/interactions`. Both answer through `interaction::Interactions`
//! and render with `render`.

pub mod endpoint;
pub mod gateway;
pub mod interaction;
pub mod port;
pub mod render;
pub mod rest;
pub mod roles;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::Context;
use secrecy::ExposeSecret;

use crate::adapters::{Connection, Inbound};
use crate::clock::Clock;
use crate::config::{DiscordConfig, DiscordMode};
use interaction::Interactions;
use port::DiscordPort;
use rest::Rest;

/// How the inbound side behaves; `Default` is production.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// How long the engine may take before an interaction is deferred (type 5 or 6) and
    /// answered by editing the original response; zero defers every time.
    pub answer_within: Duration,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            answer_within: interaction::ANSWER_WITHIN,
        }
    }
}

/// What replaces `https://discord.com` in request URLs: `api_base_url` stands for
/// `https://discord.com/api`, so it must end in `/api`.
pub fn origin_of(api_base_url: &str) -> anyhow::Result<String> {
    let trimmed = api_base_url.trim_end_matches('/');
    trimmed
        .strip_suffix("/api")
        .filter(|origin| !origin.is_empty())
        .map(str::to_string)
        .with_context(|| {
            format!("discord.api_base_url `{api_base_url}` must end in /api (it stands for https://discord.com/api)")
        })
}

pub fn connect(config: &DiscordConfig, clock: Arc<dyn Clock>) -> anyhow::Result<Connection> {
    connect_with(config, clock, Options::default())
}

pub fn connect_with(
    config: &DiscordConfig,
    clock: Arc<dyn Clock>,
    options: Options,
) -> anyhow::Result<Connection> {
    let token = config
        .token
        .clone()
        .context("discord.token is not set (PROCBOT_DISCORD__TOKEN or discord.token_file)")?;
    let origin = config
        .api_base_url
        .as_ref()
        .map(|url| origin_of(url.0.as_str()))
        .transpose()?;
    let rest = Arc::new(
        Rest::new(token.expose_secret(), origin.as_deref())
            .map_err(anyhow::Error::msg)
            .context("setting up Discord's REST client")?,
    );
    let verifier = match config.mode {
        DiscordMode::Http => {
            let key = config.public_key.as_ref().context(
                "discord.public_key is needed in HTTP mode (PROCBOT_DISCORD__PUBLIC_KEY or discord.public_key_file)",
            )?;
            Some(endpoint::verifier(key.expose_secret()).map_err(anyhow::Error::msg)?)
        }
        DiscordMode::Gateway => None,
    };
    let engine_cell = Arc::new(OnceLock::new());
    let port = Arc::new(DiscordPort::new(rest.clone(), engine_cell.clone()));
    let application_id = Arc::new(OnceLock::new());
    let settings = gateway::Settings {
        token,
        mode: config.mode,
        origin,
        guild_ids: config.guild_ids.iter().map(|g| g.0.clone()).collect(),
    };
    let name = match config.mode {
        DiscordMode::Gateway => "Discord gateway",
        DiscordMode::Http => "Discord start-up",
    };
    Ok(Connection {
        port,
        announce_channel: config.announce_channel_id.as_ref().map(|c| c.0.clone()),
        start: Box::new(move |context: crate::adapters::InboundContext| {
            let engine = context.engine.clone();
            let _ = engine_cell.set(engine.clone());
            let interactions = Arc::new(Interactions::new(
                engine,
                rest.clone(),
                application_id.clone(),
                options.answer_within,
            ));
            let routes =
                verifier.map(|verifier| endpoint::routes(verifier, clock, interactions.clone()));
            Inbound {
                routes,
                task: Some((
                    name,
                    gateway::task(settings, rest, application_id, interactions, context),
                )),
            }
        }),
    })
}
