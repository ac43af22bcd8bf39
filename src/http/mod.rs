//! The HTTP surface: `fn router(state) -> Router`. Health and readiness for now; platform
//! endpoints, webhooks and the dashboard join as they arrive.

use std::sync::{Arc, RwLock};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json};
use axum::routing::get;
use serde::Serialize;

/// What readiness reports about the procedures currently served.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ProceduresStatus {
    pub procedures: usize,
    pub errors: usize,
    pub warnings: usize,
}

/// Shared state behind the HTTP handlers.
#[derive(Debug, Default)]
pub struct HttpState {
    /// `None` until the first load of the procedures has finished.
    pub procedures: RwLock<Option<ProceduresStatus>>,
}

impl HttpState {
    pub fn set_procedures(&self, status: ProceduresStatus) {
        let mut guard = self
            .procedures
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *guard = Some(status);
    }

    fn procedures(&self) -> Option<ProceduresStatus> {
        self.procedures
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

pub fn router(state: Arc<HttpState>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(state)
}

/// Liveness: the process answers.
async fn healthz() -> &'static str {
    "ok\n"
}

#[derive(Serialize)]
struct Readiness {
    status: &'static str,
    #[serde(flatten)]
    procedures: Option<ProceduresStatus>,
}

/// Readiness: the procedures have been loaded and can be served.
async fn readyz(State(state): State<Arc<HttpState>>) -> impl IntoResponse {
    match state.procedures() {
        Some(procedures) => (
            StatusCode::OK,
            Json(Readiness {
                status: "ready",
                procedures: Some(procedures),
            }),
        ),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(Readiness {
                status: "starting",
                procedures: None,
            }),
        ),
    }
}
