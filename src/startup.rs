//! `procbot serve`: builds the application from its configuration and runs it until a
//! shutdown signal, letting in-flight requests finish.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;

use crate::config::Config;
use crate::core::check::{CheckReport, check_repository};
use crate::http::{HttpState, ProceduresStatus, router};
use crate::repo::read_folder;

/// A built application: the listener is bound (so port 0 works in tests) and the
/// procedures are loaded.
pub struct Application {
    listener: TcpListener,
    state: Arc<HttpState>,
}

/// Reads and checks the configured procedures, logging every problem found.
pub fn load_procedures(config: &Config) -> anyhow::Result<CheckReport> {
    let files = read_folder(&config.procedures.path, &config.procedures.directory)
        .context("reading the procedures folder")?;
    let today = chrono::Utc::now()
        .with_timezone(&config.schedule.timezone.0)
        .date_naive();
    let report = check_repository(files.procedures, files.directory, today);
    for diagnostic in &report.diagnostics {
        if diagnostic.is_error() {
            tracing::error!(
                file = %diagnostic.file,
                line = diagnostic.position.line,
                code = diagnostic.code.code(),
                "{}", diagnostic.message
            );
        } else {
            tracing::warn!(
                file = %diagnostic.file,
                line = diagnostic.position.line,
                code = diagnostic.code.code(),
                "{}", diagnostic.message
            );
        }
    }
    tracing::info!(
        procedures = report.procedures().count(),
        errors = report.error_count(),
        warnings = report.warning_count(),
        path = %config.procedures.path.display(),
        "procedures loaded"
    );
    Ok(report)
}

impl Application {
    pub async fn build(config: Config) -> anyhow::Result<Application> {
        let listener = TcpListener::bind(config.http.listen)
            .await
            .with_context(|| format!("listening on {}", config.http.listen))?;
        let state = Arc::new(HttpState::default());
        let report = tokio::task::spawn_blocking(move || load_procedures(&config))
            .await
            .context("the procedure loader stopped unexpectedly")??;
        state.set_procedures(ProceduresStatus {
            procedures: report.procedures().count(),
            errors: report.error_count(),
            warnings: report.warning_count(),
        });
        Ok(Application { listener, state })
    }

    pub fn local_addr(&self) -> anyhow::Result<SocketAddr> {
        self.listener
            .local_addr()
            .context("reading the bound address")
    }

    /// Serves until `shutdown` completes, then lets open requests finish.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let address = self.local_addr()?;
        tracing::info!(%address, "HTTP server listening");
        axum::serve(self.listener, router(self.state))
            .with_graceful_shutdown(shutdown)
            .await
            .context("running the HTTP server")?;
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
