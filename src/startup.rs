//! Building procbot from its configuration: the store, the engine, repository sync and the
//! outbox (`Services`, shared by `serve` and `chat`), and `procbot serve` itself (HTTP on top),
//! run until a shutdown signal, letting in-flight work finish.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};

use crate::adapters::{Connection, Inbound};
use crate::clock::Clock;
use crate::config::Config;
use crate::core::port::ChatPort;
use crate::core::reminders::Calendar;
use crate::delivery::{OutboxWorker, Pace};
use crate::engine::library::Library;
use crate::engine::{Engine, Target};
use crate::http::webhook::GitWebhook;
use crate::http::{HttpState, router};
use crate::repo::state::AnnouncedState;
use crate::repo::sync::{Source, SyncOutcome, Syncer};
use crate::scheduler::{ReminderPolicy, Scheduler};
use crate::store::Store;

/// A built application: the listener is bound (so port 0 works in tests) and the first sync
/// has been attempted.
pub struct Application {
    listener: TcpListener,
    state: Arc<HttpState>,
    services: Services,
    trigger: Arc<Notify>,
    /// The chat platforms' inbound sides: routes merged into the router, supervised tasks.
    inbound: Vec<Inbound>,
}

/// The parts every way of running procbot shares: store, served procedures, engine,
/// repository sync (announcing through the engine) and the outbox worker.
pub struct Services {
    pub store: Store,
    pub library: Arc<Library>,
    pub engine: Arc<Engine>,
    pub syncer: Syncer,
    pub outbox: OutboxWorker,
    pub outbox_wake: Arc<Notify>,
    pub scheduler: Scheduler,
    /// Who holds the Discord roles teams are mapped to (filled by the Discord adapter).
    pub role_members: Arc<std::sync::RwLock<crate::core::directory::RoleMembers>>,
}

/// Working hours, days, the digest and the security lead from the configuration.
pub fn reminder_policy(config: &Config) -> ReminderPolicy {
    ReminderPolicy {
        calendar: Calendar {
            time_zone: config.schedule.timezone.0,
            start: config.schedule.working_hours.start,
            end: config.schedule.working_hours.end,
            working_days: config.schedule.working_days.0.clone(),
        },
        digest: Some(config.schedule.digest.0.clone()),
        security_lead: config.schedule.security_lead.clone().map(|e| e.0),
    }
}

impl Services {
    /// Opens the store, restores the announced state and, for a local folder, syncs at once
    /// (announcing what changed while procbot was stopped). A git clone is left to `run`.
    pub async fn build(
        config: &Config,
        clock: Arc<dyn Clock>,
        ports: Vec<(Arc<dyn ChatPort>, Option<String>)>,
        instance: &str,
    ) -> anyhow::Result<Services> {
        let source = source_of(config);
        let is_folder = matches!(source, Source::Folder { .. });
        if let Source::Folder { path, .. } = &source
            && !path.is_dir()
        {
            anyhow::bail!(
                "the procedures folder {} does not exist (set procedures.path, or procedures.git_url to follow a git remote)",
                path.display()
            );
        }
        let store = Store::connect(config.database.url.as_str())
            .await
            .context("opening the database (database.url)")?;
        let extra_synonyms = match &source {
            Source::Folder { path, .. } => {
                std::fs::read_to_string(path.join(crate::search::SYNONYMS_FILE)).ok()
            }
            Source::Git { .. } => None,
        };
        let library = Arc::new(Library::new(extra_synonyms));
        let role_members = Arc::new(std::sync::RwLock::new(Default::default()));
        let outbox_wake = Arc::new(Notify::new());
        let targets: Vec<Target> = ports
            .iter()
            .map(|(port, channel)| Target {
                platform: port.platform(),
                announce_channel: channel.clone(),
            })
            .collect();
        let policy = reminder_policy(config);
        let engine = Arc::new(
            Engine::new(
                store.clone(),
                clock.clone(),
                library.clone(),
                targets.clone(),
                outbox_wake.clone(),
            )
            .with_security_lead(policy.security_lead.clone())
            .with_time_zone(config.schedule.timezone.0)
            .with_web_url(config.procedures.web_url.clone().map(|t| t.0)),
        );
        let scheduler = Scheduler::new(
            store.clone(),
            clock.clone(),
            library.clone(),
            targets,
            policy,
            outbox_wake.clone(),
        )
        .with_runs(engine.clone());
        let mut outbox = OutboxWorker::new(store.clone(), clock.clone(), instance);
        for (port, _) in ports {
            let pace = match port.platform() {
                crate::core::port::Platform::Slack => Pace {
                    per_second: Some(config.slack.max_messages_per_second.0),
                },
                platform => Pace::for_platform(platform),
            };
            outbox = outbox.with_port(port, pace);
        }
        let mut syncer = Syncer::new(
            source,
            AnnouncedState::in_store(store.clone(), &config.procedures.state_file),
            clock,
            config.schedule.timezone.0,
            config.procedures.poll_every.0,
        )
        .with_announcer(engine.clone())
        .with_instance(instance)
        .with_role_members(role_members.clone());
        syncer.restore().await;
        // A folder is read at once, so the server starts ready. A git clone can take minutes:
        // it runs in the background sync task, with the server already answering (readyz says
        // "starting") and Ctrl-C/SIGTERM already honoured.
        if is_folder {
            match syncer.sync_once().await {
                SyncOutcome::Failed { .. } => {
                    tracing::warn!("starting without a fresh sync; retrying in the background");
                }
                SyncOutcome::Baseline { procedures } => {
                    tracing::info!(procedures, "procedures loaded")
                }
                SyncOutcome::Unchanged => {
                    tracing::info!("procedures loaded; nothing changed since the last announcement")
                }
                SyncOutcome::Changed(changes) => tracing::info!(
                    changes = changes.len(),
                    "procedures loaded; changes since the last run detected"
                ),
            }
        }
        if let Some(snapshot) = syncer.served() {
            let building = library.clone();
            tokio::task::spawn_blocking(move || building.serve(snapshot))
                .await
                .context("building the search index")?
                .context("building the search index")?;
        }
        Ok(Services {
            store,
            library,
            engine,
            syncer,
            outbox,
            outbox_wake,
            scheduler,
            role_members,
        })
    }
}

/// The chat platforms the configuration enables (a bot token present), connected: their
/// ports and inbound sides, not yet started. Nothing here waits on the network.
pub fn connect_platforms(
    config: &Config,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<Vec<Connection>> {
    let mut connections = Vec::new();
    if config.slack.enabled() {
        connections.push(
            crate::adapters::slack::connect(&config.slack, clock.clone())
                .context("setting up Slack")?,
        );
    }
    if config.discord.enabled() {
        connections.push(
            crate::adapters::discord::connect(&config.discord, clock.clone())
                .context("setting up Discord")?,
        );
    }
    Ok(connections)
}

/// Where the configuration says procedures come from.
pub fn source_of(config: &Config) -> Source {
    match &config.procedures.git_url {
        Some(url) => Source::Git {
            url: url.clone(),
            branch: config.procedures.branch.clone(),
            checkout: config.procedures.path.clone(),
            directory: config.procedures.directory.clone(),
        },
        None => Source::Folder {
            path: config.procedures.path.clone(),
            directory: config.procedures.directory.clone(),
        },
    }
}

impl Application {
    pub async fn build(config: Config, clock: Arc<dyn Clock>) -> anyhow::Result<Application> {
        let listener = TcpListener::bind(config.http.listen)
            .await
            .with_context(|| format!("listening on {}", config.http.listen))?;
        let connections = connect_platforms(&config, clock.clone())?;
        let ports = connections
            .iter()
            .map(|c| (c.port.clone(), c.announce_channel.clone()))
            .collect();
        let services = Services::build(&config, clock.clone(), ports, &instance_name()).await?;
        let trigger = Arc::new(Notify::new());
        let inbound = connections
            .into_iter()
            .map(|connection| {
                (connection.start)(crate::adapters::InboundContext {
                    engine: services.engine.clone(),
                    role_members: services.role_members.clone(),
                    resync: trigger.clone(),
                })
            })
            .collect();
        let state = Arc::new(HttpState {
            served: services.syncer.subscribe(),
            webhook: Arc::new(GitWebhook {
                secret: config.webhook.secret.clone(),
                branch: config.procedures.branch.clone(),
                trigger: trigger.clone(),
            }),
            store: Some(services.store.clone()),
            dashboard: config.dashboard.token.clone().map(|token| {
                Arc::new(crate::http::dashboard::Dashboard {
                    token,
                    store: services.store.clone(),
                    library: services.library.clone(),
                    clock: clock.clone(),
                    time_zone: config.schedule.timezone.0,
                })
            }),
            metrics: Some(Arc::new(crate::http::dashboard::Metrics {
                store: services.store.clone(),
                library: services.library.clone(),
                clock: clock.clone(),
                time_zone: config.schedule.timezone.0,
            })),
        });
        Ok(Application {
            listener,
            state,
            services,
            trigger,
            inbound,
        })
    }

    pub fn local_addr(&self) -> anyhow::Result<SocketAddr> {
        self.listener
            .local_addr()
            .context("reading the bound address")
    }

    /// Serves until `shutdown` completes, then stops syncing and lets open requests finish.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let address = self.local_addr()?;
        let (stop_sender, stop_receiver) = watch::channel(false);
        let Services {
            store,
            library,
            syncer,
            outbox,
            outbox_wake,
            scheduler,
            ..
        } = self.services;
        // Supervised tasks: if one ends or panics while procbot is not stopping, everything
        // stops with an error, so a service manager restarts a whole procbot rather than
        // leaving one that answers HTTP but no longer syncs or delivers.
        let mut tasks = tokio::task::JoinSet::new();
        let snapshots = syncer.subscribe();
        let trigger = self.trigger;
        let sync_stop = stop_receiver.clone();
        tasks.spawn(async move {
            syncer.run(trigger, sync_stop).await;
            "repository sync"
        });
        let outbox_stop = stop_receiver.clone();
        let mut loaded = snapshots.clone();
        tasks.spawn(async move {
            // DMs go to people the directory names: nothing is sent before it is loaded (a
            // git clone in the background).
            let mut stop = outbox_stop.clone();
            tokio::select! {
                _ = loaded.wait_for(Option::is_some) => {}
                _ = stop.wait_for(|stop| *stop) => return "outbox delivery",
            }
            outbox.run(outbox_wake, outbox_stop).await;
            "outbox delivery"
        });
        tasks.spawn(async move {
            library.follow(snapshots).await;
            "search index"
        });
        let scheduler_stop = stop_receiver.clone();
        tasks.spawn(async move {
            scheduler.run(scheduler_stop).await;
            "scheduler"
        });
        let mut app = router(self.state);
        for inbound in self.inbound {
            if let Some(routes) = inbound.routes {
                app = app.merge(routes);
            }
            if let Some((name, task)) = inbound.task {
                let stop = stop_receiver.clone();
                tasks.spawn(async move {
                    task(stop).await;
                    name
                });
            }
        }
        let crashed = Arc::new(Notify::new());
        let stopping = stop_receiver;
        let monitor = tokio::spawn({
            let crashed = crashed.clone();
            async move {
                let mut unexpected: Option<String> = None;
                while let Some(result) = tasks.join_next().await {
                    let stopping = *stopping.borrow();
                    match result {
                        Ok(_) if stopping => {}
                        Ok(task) => {
                            tracing::error!(task, "a task stopped unexpectedly; shutting down");
                            unexpected.get_or_insert_with(|| format!("the {task} task stopped"));
                            crashed.notify_one();
                        }
                        Err(error) => {
                            tracing::error!(%error, "a task failed; shutting down");
                            unexpected.get_or_insert_with(|| format!("a task failed: {error}"));
                            crashed.notify_one();
                        }
                    }
                }
                unexpected
            }
        });
        tracing::info!(%address, "HTTP server listening");
        let served = axum::serve(self.listener, app)
            .with_graceful_shutdown(async move {
                tokio::select! {
                    () = shutdown => {}
                    () = crashed.notified() => {}
                }
                // Sync stops, and deliveries in flight finish their round before the outbox
                // worker stops.
                let _ = stop_sender.send(true);
            })
            .await
            .context("running the HTTP server");
        let unexpected = monitor.await.context("supervising tasks")?;
        store.close().await;
        served?;
        if let Some(reason) = unexpected {
            anyhow::bail!("{reason}; procbot stopped so that it can be restarted whole");
        }
        tracing::info!("stopped");
        Ok(())
    }
}

/// What the scheduler would send at `at`, from the procedures as last announced (a folder is
/// read as it is now) and the store: a dry run, recording and sending nothing.
pub async fn preview_reminders(
    config: &Config,
    at: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<Vec<crate::core::reminders::Reminder>> {
    let store = Store::connect(config.database.url.as_str())
        .await
        .context("opening the database (database.url)")?;
    let today = at.with_timezone(&config.schedule.timezone.0).date_naive();
    let snapshot = match source_of(config) {
        Source::Folder { path, directory } => {
            let files = crate::repo::read_folder(&path, &directory)
                .with_context(|| format!("reading {}", path.display()))?;
            crate::core::snapshot::build_snapshot(
                files.procedures,
                files.directory,
                today,
                None,
                None,
            )
        }
        Source::Git { directory, .. } => {
            AnnouncedState::in_store(store.clone(), &config.procedures.state_file)
                .load(today, &directory.to_string_lossy())
                .await
                .context("reading the announced state")?
                .context("no procedures have been synced from git yet: run `procbot serve` first")?
        }
    };
    let scheduler = Scheduler::new(
        store.clone(),
        Arc::new(crate::clock::SystemClock),
        Arc::new(Library::default()),
        Vec::new(),
        reminder_policy(config),
        Arc::new(Notify::new()),
    );
    let reminders = scheduler.plan_for(&snapshot, at).await?;
    store.close().await;
    Ok(reminders)
}

/// This instance's name in outbox leases: host name, process id and start time, so that two
/// containers that both run as process 1 still differ.
pub fn instance_name() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "procbot".to_string());
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{host}-{}-{started:x}", std::process::id())
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "could not listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "could not listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => tracing::info!("Ctrl-C received, shutting down"),
        () = terminate => tracing::info!("SIGTERM received, shutting down"),
    }
}
