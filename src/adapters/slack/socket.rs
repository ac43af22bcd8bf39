//! Slack's Socket Mode: slack-morphism's listener on the app-level token (no public URL),
//! reconnecting on its own; commands are answered in their acknowledgement, clicks and events
//! acknowledged at once and answered through the Web API. Also the identity check both modes
//! start with (`auth.test`): a rejected token stops procbot with a clear message.

use std::sync::Arc;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use slack_morphism::prelude::*;
use tokio::sync::watch;

use super::SlackShared;
use super::api::{Client, api_error_code};
use super::inbound::SlackInbound;

/// How long the listener waits before reconnecting after a failed attempt.
const RECONNECT_SECONDS: u64 = 10;
const FIRST_RETRY: Duration = Duration::from_secs(2);
const MAX_RETRY: Duration = Duration::from_secs(300);
/// `auth.test` answers that mean the token will never work.
const REJECTED_TOKEN: &[&str] = &[
    "invalid_auth",
    "not_authed",
    "account_inactive",
    "token_revoked",
    "token_expired",
    "not_allowed_token_type",
];

/// Waits until `stop` is true (or its sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    while !*stop.borrow() {
        if stop.changed().await.is_err() {
            return;
        }
    }
}

/// Asks Slack who the bot is, retrying temporary failures with backoff. `false` when the
/// token is rejected (logged) or procbot is stopping.
async fn identify(shared: &SlackShared, stop: &mut watch::Receiver<bool>) -> bool {
    let mut delay = FIRST_RETRY;
    loop {
        match shared.identify().await {
            Ok(()) => return true,
            Err(error) if api_error_code(&error).is_some_and(|c| REJECTED_TOKEN.contains(&c)) => {
                tracing::error!(
                    error = api_error_code(&error).unwrap_or_default(),
                    "Slack rejected the bot token: check PROCBOT_SLACK__BOT_TOKEN (or slack.bot_token_file)"
                );
                return false;
            }
            Err(error) => {
                tracing::warn!(error = %error.to_string().lines().next().unwrap_or_default(), retry_in_s = delay.as_secs(), "Slack is not reachable yet");
            }
        }
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = stopped(stop) => return false,
        }
        delay = (delay * 2).min(MAX_RETRY);
    }
}

/// HTTP mode's task: identify, then stay until procbot stops (the endpoints do the work).
pub async fn identify_then_wait(shared: Arc<SlackShared>, mut stop: watch::Receiver<bool>) {
    if identify(&shared, &mut stop).await {
        stopped(&mut stop).await;
    }
}

async fn inbound_of(states: &SlackClientEventsUserState) -> Option<Arc<SlackInbound>> {
    states
        .read()
        .await
        .get_user_state::<Arc<SlackInbound>>()
        .cloned()
}

async fn on_command(
    event: SlackCommandEvent,
    _client: Arc<Client>,
    states: SlackClientEventsUserState,
) -> UserCallbackResult<SlackCommandEventResponse> {
    let inbound = inbound_of(&states)
        .await
        .ok_or("the Slack adapter's state is missing")?;
    Ok(inbound.command(&event).await)
}

async fn on_interaction(
    event: SlackInteractionEvent,
    _client: Arc<Client>,
    states: SlackClientEventsUserState,
) -> UserCallbackResult<SlackInteractionResponse> {
    if let (SlackInteractionEvent::BlockActions(actions), Some(inbound)) =
        (event, inbound_of(&states).await)
    {
        // Acknowledged when this returns; the work and its replies follow.
        tokio::spawn(async move { inbound.block_actions(&actions).await });
    }
    Ok(SlackInteractionResponse::Empty)
}

async fn on_push(
    event: SlackPushEventCallback,
    _client: Arc<Client>,
    states: SlackClientEventsUserState,
) -> UserCallbackResult<()> {
    if let Some(inbound) = inbound_of(&states).await {
        tokio::spawn(async move { inbound.push(&event).await });
    }
    Ok(())
}

fn on_error(
    error: Box<dyn std::error::Error + Send + Sync>,
    _client: Arc<Client>,
    _states: SlackClientEventsUserState,
) -> axum::http::StatusCode {
    tracing::warn!(error = %error.to_string().lines().next().unwrap_or_default(), "a Socket Mode message could not be handled");
    axum::http::StatusCode::OK
}

/// Socket Mode's task: identify, connect with the app-level token and answer until procbot
/// stops.
pub async fn run(
    inbound: Arc<SlackInbound>,
    app_token: Option<SecretString>,
    mut stop: watch::Receiver<bool>,
) {
    let Some(app_token) = app_token else {
        tracing::error!("Socket Mode needs slack.app_token");
        return;
    };
    if !identify(inbound.shared(), &mut stop).await {
        return;
    }
    let client = inbound.shared().api().client().clone();
    let environment = Arc::new(
        SlackClientEventsListenerEnvironment::new(client)
            .with_error_handler(on_error)
            .with_user_state(inbound.clone()),
    );
    let callbacks = SlackSocketModeListenerCallbacks::new()
        .with_command_events(on_command)
        .with_interaction_events(on_interaction)
        .with_push_events(on_push);
    let listener = SlackClientSocketModeListener::new(
        &SlackClientSocketModeConfig::new()
            .with_max_connections_count(1)
            .with_reconnect_timeout_in_seconds(RECONNECT_SECONDS),
        environment,
        callbacks,
    );
    let token = SlackApiToken::new(app_token.expose_secret().to_string().into());
    if let Err(error) = listener.listen_for(&token).await {
        tracing::error!(error = %error.to_string().lines().next().unwrap_or_default(), "Socket Mode could not start");
        return;
    }
    listener.start().await;
    tracing::info!("Slack Socket Mode connected");
    stopped(&mut stop).await;
    listener.shutdown().await;
}
