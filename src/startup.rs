//! `procbot serve`: builds the application from its configuration (repository sync, HTTP)
//! and runs it until a shutdown signal, letting in-flight work finish.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};

use crate::clock::Clock;
use crate::config::Config;
use crate::http::webhook::GitWebhook;
use crate::http::{HttpState, router};
use crate::repo::state::AnnouncedState;
use crate::repo::sync::{Source, SyncOutcome, Syncer};

/// A built application: the listener is bound (so port 0 works in tests) and the first sync
/// has been attempted.
pub struct Application {
    listener: TcpListener,
    state: Arc<HttpState>,
    syncer: Syncer,
    trigger: Arc<Notify>,
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
        let source = source_of(&config);
        let is_folder = matches!(source, Source::Folder { .. });
        if let Source::Folder { path, .. } = &source
            && !path.is_dir()
        {
            anyhow::bail!(
                "the procedures folder {} does not exist (set procedures.path, or procedures.git_url to follow a git remote)",
                path.display()
            );
        }
        let listener = TcpListener::bind(config.http.listen)
            .await
            .with_context(|| format!("listening on {}", config.http.listen))?;

        let mut syncer = Syncer::new(
            source,
            AnnouncedState::new(&config.procedures.state_file),
            clock,
            config.schedule.timezone.0,
            config.procedures.poll_every.0,
        );
        syncer.restore();
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

        let trigger = Arc::new(Notify::new());
        let state = Arc::new(HttpState {
            served: syncer.subscribe(),
            webhook: Arc::new(GitWebhook {
                secret: config.webhook.secret.clone(),
                branch: config.procedures.branch.clone(),
                trigger: trigger.clone(),
            }),
        });
        Ok(Application {
            listener,
            state,
            syncer,
            trigger,
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
        let sync_task = tokio::spawn(self.syncer.run(self.trigger, stop_receiver));
        tracing::info!(%address, "HTTP server listening");
        let served = axum::serve(self.listener, router(self.state))
            .with_graceful_shutdown(async move {
                shutdown.await;
                let _ = stop_sender.send(true);
            })
            .await
            .context("running the HTTP server");
        if let Err(error) = sync_task.await {
            tracing::error!(%error, "the repository sync task failed");
        }
        served?;
        tracing::info!("stopped");
        Ok(())
    }
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
