//! Discord's long-running side: at start-up (in the background, never blocking procbot) the
//! application's id is learnt, which also checks the bot token, and `/procedure` is
//! registered per configured guild or globally; then, in gateway mode, serenity's gateway
//! connection delivers interactions and DMs until procbot stops. A rejected token is logged
//! and ends the task, which stops procbot with that reason.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serenity::all::{Context, EventHandler, GatewayIntents, Ready};
use serenity::http::{HttpBuilder, LightMethod, Route};
use serenity::model::id::{ApplicationId, GuildId};
use tokio::sync::watch;

use super::interaction::{Interactions, command_definition, parse};
use super::port::snowflake;
use super::rest::{Rest, RestError};
use crate::adapters::InboundTask;
use crate::config::DiscordMode;

/// Only DMs: interactions reach a bot without any intent, and DM text is readable without the
/// privileged message-content intent.
pub const INTENTS: GatewayIntents = GatewayIntents::DIRECT_MESSAGES;
/// Retries of start-up calls wait at most this long between tries.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

pub struct Settings {
    pub token: SecretString,
    pub mode: DiscordMode,
    /// What replaces `https://discord.com` (from `discord.api_base_url`).
    pub origin: Option<String>,
    pub guild_ids: Vec<String>,
}

/// Waits `delay`, or returns `true` if procbot is stopping meanwhile.
async fn wait_or_stop(stop: &mut watch::Receiver<bool>, delay: Duration) -> bool {
    let stopped = tokio::select! {
        stopping = stop.wait_for(|stopping| *stopping) => stopping.is_ok(),
        () = tokio::time::sleep(delay) => false,
    };
    stopped || *stop.borrow()
}

/// Calls `GET path` until it answers, procbot stops (`None`) or the token is rejected.
async fn until_answered(
    rest: &Rest,
    route: fn() -> Route<'static>,
    what: &str,
    stop: &mut watch::Receiver<bool>,
) -> Option<serde_json::Value> {
    let mut backoff = Duration::from_secs(1);
    loop {
        match rest.call(LightMethod::Get, route(), None).await {
            Ok(Some(answer)) => return Some(answer),
            Err(RestError::Refused { status: 401, .. }) => {
                tracing::error!(
                    "Discord rejected the bot token (discord.token): check PROCBOT_DISCORD__TOKEN or discord.token_file; the Discord adapter stops"
                );
                return None;
            }
            Ok(None) => tracing::warn!(what, "Discord answered without a body; retrying"),
            Err(error) => tracing::warn!(what, %error, "Discord did not answer; retrying"),
        }
        if wait_or_stop(stop, backoff).await {
            return None;
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

async fn register(rest: &Rest, application: ApplicationId, guild_ids: &[String]) {
    let commands = serde_json::json!([command_definition()]);
    if guild_ids.is_empty() {
        match rest
            .call(
                LightMethod::Put,
                Route::Commands {
                    application_id: application,
                },
                Some(&commands),
            )
            .await
        {
            Ok(_) => tracing::info!(
                "/procedure registered globally (Discord may take up to an hour to show it everywhere)"
            ),
            Err(error) => tracing::error!(%error, "registering /procedure globally failed"),
        }
        return;
    }
    for guild in guild_ids {
        let Some(guild_id) = snowflake(guild).map(GuildId::new) else {
            continue;
        };
        match rest
            .call(
                LightMethod::Put,
                Route::GuildCommands {
                    application_id: application,
                    guild_id,
                },
                Some(&commands),
            )
            .await
        {
            Ok(_) => tracing::info!(guild = %guild, "/procedure registered"),
            Err(error) => {
                tracing::error!(guild = %guild, %error, "registering /procedure failed (is the bot in that guild, with the applications.commands scope?)")
            }
        }
    }
}

struct Handler {
    interactions: Arc<Interactions>,
}

#[serenity::async_trait]
impl EventHandler for Handler {
    async fn ready(&self, _context: Context, ready: Ready) {
        tracing::info!(bot = %ready.user.name, guilds = ready.guilds.len(), "connected to the Discord gateway");
    }

    async fn interaction_create(
        &self,
        _context: Context,
        interaction: serenity::model::application::Interaction,
    ) {
        // serenity has parsed it; procbot reads the fields it uses from the same JSON, as the
        // HTTP endpoint does.
        let parsed = serde_json::to_vec(&interaction)
            .map_err(|e| e.to_string())
            .and_then(|json| parse(&json).map_err(|e| e.to_string()));
        match parsed {
            Ok(parsed) => self.interactions.answer_over_rest(parsed).await,
            Err(error) => {
                tracing::warn!(%error, "an interaction from the gateway was not understood")
            }
        }
    }

    async fn message(&self, _context: Context, message: serenity::model::channel::Message) {
        if message.guild_id.is_some() || message.author.bot || message.content.trim().is_empty() {
            return;
        }
        self.interactions
            .answer_direct_message(
                &message.author.id.to_string(),
                &message.channel_id.to_string(),
                &message.content,
            )
            .await;
    }
}

async fn run_gateway(
    settings: &Settings,
    rest: &Rest,
    interactions: Arc<Interactions>,
    stop: &mut watch::Receiver<bool>,
) {
    let mut http = HttpBuilder::new(settings.token.expose_secret());
    // With a base URL, the gateway's address comes from that API too, never from Discord's
    // default, so a test or a proxy set-up never connects to Discord itself.
    let gateway_url = match &settings.origin {
        Some(origin) => {
            http = http.proxy(origin.clone()).ratelimiter_disabled(true);
            let Some(answer) =
                until_answered(rest, || Route::Gateway, "gateway address", stop).await
            else {
                return;
            };
            let Some(url) = answer.get("url").and_then(serde_json::Value::as_str) else {
                tracing::error!("GET /gateway answered without a url; the Discord adapter stops");
                return;
            };
            Some(url.to_string())
        }
        None => None,
    };
    let built = serenity::client::ClientBuilder::new_with_http(http.build(), INTENTS)
        .event_handler(Handler { interactions })
        .await;
    let mut client = match built {
        Ok(client) => client,
        Err(error) => {
            tracing::error!(%error, "the Discord gateway client could not be built");
            return;
        }
    };
    if let Some(url) = gateway_url {
        *client.ws_url.lock().await = url;
    }
    let shards = client.shard_manager.clone();
    let stopping = tokio::select! {
        result = client.start() => {
            match result {
                Ok(()) => tracing::error!("the Discord gateway connection ended"),
                Err(error) => tracing::error!(%error, "the Discord gateway connection failed (a rejected token closes it with 4004)"),
            }
            false
        }
        stopping = stop.wait_for(|stopping| *stopping) => stopping.is_ok(),
    };
    if stopping {
        shards.shutdown_all().await;
    }
}

/// The supervised task: identify the application, register the command, then (gateway mode)
/// hold the gateway connection, or (HTTP mode) wait for procbot to stop.
pub fn task(
    settings: Settings,
    rest: Arc<Rest>,
    application_id: Arc<OnceLock<String>>,
    interactions: Arc<Interactions>,
    context: crate::adapters::InboundContext,
) -> InboundTask {
    Box::new(move |mut stop: watch::Receiver<bool>| {
        Box::pin(async move {
            let Some(application) = until_answered(
                &rest,
                || Route::Oauth2ApplicationCurrent,
                "application",
                &mut stop,
            )
            .await
            else {
                return;
            };
            let Some(id) = application
                .get("id")
                .and_then(serde_json::Value::as_str)
                .and_then(snowflake)
            else {
                tracing::error!(
                    "Discord described the application without an id; the Discord adapter stops"
                );
                return;
            };
            let _ = application_id.set(id.to_string());
            rest.http().set_application_id(ApplicationId::new(id));
            register(&rest, ApplicationId::new(id), &settings.guild_ids).await;
            // Teams mapped to roles follow who holds them, alongside the rest.
            let roles = tokio::spawn(super::roles::watch_roles(
                rest.clone(),
                context.engine.clone(),
                settings.guild_ids.clone(),
                context.role_members.clone(),
                context.resync.clone(),
                stop.clone(),
            ));
            match settings.mode {
                DiscordMode::Http => {
                    let _ = stop.wait_for(|stopping| *stopping).await;
                }
                DiscordMode::Gateway => {
                    run_gateway(&settings, &rest, interactions, &mut stop).await
                }
            }
            roles.abort();
        })
    })
}
