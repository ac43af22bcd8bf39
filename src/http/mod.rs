//! The HTTP surface: `fn router(state) -> Router`. Health, readiness, metrics, the git push
//! webhook, the dashboard and the evidence export; platform endpoints join as they arrive.

pub mod dashboard;
pub mod webhook;

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json};
use axum::routing::{get, post};
use serde::Serialize;
use tokio::sync::watch;

use crate::core::snapshot::Snapshot;
use crate::http::webhook::{GitWebhook, git_webhook};
use crate::store::Store;
use crate::store::outbox::OutboxCounts;

/// Forges send push payloads of up to 25 MB.
const WEBHOOK_BODY_LIMIT: usize = 25 * 1024 * 1024;

/// Shared state behind the HTTP handlers.
#[derive(Debug)]
pub struct HttpState {
    /// The served snapshot; `None` until procedures have been loaded once.
    pub served: watch::Receiver<Option<Arc<Snapshot>>>,
    pub webhook: Arc<GitWebhook>,
    /// The store, for the outbox figures readiness reports; `None` in tests of HTTP alone.
    pub store: Option<Store>,
    /// The dashboard, when `dashboard.token` is set.
    pub dashboard: Option<Arc<dashboard::Dashboard>>,
    pub metrics: Option<Arc<dashboard::Metrics>>,
}

pub fn router(state: Arc<HttpState>) -> Router {
    let webhook = Router::new()
        .route("/webhooks/git", post(git_webhook))
        .layer(DefaultBodyLimit::max(WEBHOOK_BODY_LIMIT))
        .with_state(state.webhook.clone());
    let dashboard = dashboard::routes(state.dashboard.clone(), state.metrics.clone());
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(state)
        .merge(webhook)
        .merge(dashboard)
}

/// Liveness: the process answers.
async fn healthz() -> &'static str {
    "ok\n"
}

#[derive(Serialize)]
struct Readiness {
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    procedures: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    errors: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    warnings: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    commit: Option<String>,
    /// Messages waiting, delivered and failed for good.
    #[serde(skip_serializing_if = "Option::is_none")]
    outbox: Option<OutboxCounts>,
}

/// Readiness: procedures have been loaded and the database answers.
async fn readyz(State(state): State<Arc<HttpState>>) -> impl IntoResponse {
    let served = state.served.borrow().clone();
    let outbox = match &state.store {
        Some(store) => match store.outbox_counts().await {
            Ok(counts) => Some(counts),
            Err(error) => {
                tracing::warn!(%error, "readiness: the database does not answer");
                return (
                    StatusCode::SERVICE_UNAVAILABLE,
                    Json(Readiness {
                        status: "database unavailable",
                        procedures: None,
                        errors: None,
                        warnings: None,
                        commit: None,
                        outbox: None,
                    }),
                );
            }
        },
        None => None,
    };
    match served {
        Some(snapshot) => (
            StatusCode::OK,
            Json(Readiness {
                status: "ready",
                outbox,
                procedures: Some(snapshot.procedures.len()),
                errors: Some(snapshot.error_count()),
                warnings: Some(snapshot.warning_count()),
                commit: snapshot.commit.as_ref().map(|commit| commit.id.clone()),
            }),
        ),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(Readiness {
                status: "starting",
                outbox,
                procedures: None,
                errors: None,
                warnings: None,
                commit: None,
            }),
        ),
    }
}
