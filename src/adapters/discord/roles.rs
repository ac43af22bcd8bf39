//! Discord roles as teams: a team in `directory.yaml` mapped to a role (`{ discord_role: "…" }`)
//! and listing no members has as members the directory's people who hold the role. This task
//! reads, for each person with a `discord:` id, their roles in the configured guilds (one
//! member lookup each, which needs no privileged intent), publishes who holds which mapped
//! role, and asks for a sync when that changed, so the new members are asked to acknowledge.

use std::collections::BTreeSet;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use serenity::all::{GuildId, UserId};
use serenity::http::{LightMethod, Route};
use tokio::sync::{Notify, watch};

use super::rest::Rest;
use crate::core::directory::RoleMembers;
use crate::engine::Engine;

/// How often role holders are read again.
pub const ROLE_REFRESH: Duration = Duration::from_secs(10 * 60);
/// Discord's "Unknown Member": the person is not in that guild.
const UNKNOWN_MEMBER: i64 = 10007;

/// Who holds the mapped roles now, from Discord; `None` when it could not be read (kept as
/// it was, rather than emptying teams).
async fn read_holders(rest: &Rest, engine: &Engine, guilds: &[String]) -> Option<RoleMembers> {
    let served = engine.library().current()?;
    let directory = served.snapshot.directory.as_ref()?;
    let mapped = directory.mapped_roles();
    let mut holders = RoleMembers::new();
    if mapped.is_empty() {
        return Some(holders);
    }
    for person in directory.people.values() {
        let Some(user) = person
            .discord
            .as_deref()
            .and_then(|id| id.parse::<u64>().ok())
        else {
            continue;
        };
        for guild in guilds {
            let Ok(guild) = guild.parse::<u64>() else {
                continue;
            };
            let member = rest
                .call(
                    LightMethod::Get,
                    Route::GuildMember {
                        guild_id: GuildId::new(guild),
                        user_id: UserId::new(user),
                    },
                    None,
                )
                .await;
            let roles: BTreeSet<String> = match member {
                Ok(Some(member)) => member["roles"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|r| r.as_str().map(str::to_string))
                    .collect(),
                Ok(None) => BTreeSet::new(),
                Err(error) if error.code() == Some(UNKNOWN_MEMBER) => BTreeSet::new(),
                Err(error) => {
                    tracing::warn!(%error, "Discord role holders could not be read; teams keep their members");
                    return None;
                }
            };
            for role in roles.intersection(&mapped) {
                holders
                    .entry(role.clone())
                    .or_default()
                    .insert(person.email.clone());
            }
        }
    }
    Some(holders)
}

/// Reads role holders now and every `ROLE_REFRESH`, until `stop`; a change is published to
/// `published` and `resync` is notified.
pub async fn watch_roles(
    rest: Arc<Rest>,
    engine: Arc<Engine>,
    guilds: Vec<String>,
    published: Arc<RwLock<RoleMembers>>,
    resync: Arc<Notify>,
    mut stop: watch::Receiver<bool>,
) {
    if guilds.is_empty() {
        // Roles belong to guilds: with none configured there are no holders to read.
        return;
    }
    loop {
        if let Some(holders) = read_holders(&rest, &engine, &guilds).await {
            let changed = {
                let mut current = published
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                let changed = *current != holders;
                *current = holders;
                changed
            };
            if changed {
                tracing::info!("Discord role holders changed; syncing so teams follow");
                resync.notify_one();
            }
        }
        tokio::select! {
            () = tokio::time::sleep(ROLE_REFRESH) => {}
            _ = stop.wait_for(|stopping| *stopping) => return,
        }
    }
}
