//! `procbot runs [--procedure ID] [--json]`: procedure runs from the store, newest first, with
//! the version each followed, its steps and how it ended.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::evidence::RunRecord;
use crate::store::Store;

#[derive(Serialize)]
struct JsonRuns<'a> {
    runs: &'a [RunRecord],
}

/// The runs of one procedure, or of all.
pub async fn gather(
    store: &Store,
    procedure: Option<&str>,
    now: DateTime<Utc>,
) -> anyhow::Result<Vec<RunRecord>> {
    Ok(store
        .runs(procedure)
        .await?
        .iter()
        .map(|run| RunRecord::of(run, now))
        .collect())
}

/// `{"runs": [...]}`, each run as in the evidence pack.
pub fn render_json(runs: &[RunRecord]) -> String {
    serde_json::to_string_pretty(&JsonRuns { runs }).unwrap_or_default()
}

fn time(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// One paragraph per run: its line, then its steps.
pub fn render_human(runs: &[RunRecord]) -> String {
    if runs.is_empty() {
        return "no procedure runs recorded\n".to_string();
    }
    let mut out = String::new();
    for run in runs {
        let version = run
            .version
            .as_deref()
            .map(|v| format!(" v{v}"))
            .unwrap_or_default();
        let started = match run.scheduled_for {
            Some(at) => format!("scheduled for {}", time(at)),
            None => format!(
                "started {}{}",
                time(run.started_at),
                run.started_by
                    .as_deref()
                    .map(|by| format!(" by {by}"))
                    .unwrap_or_default()
            ),
        };
        let ended = match (&run.finished_at, &run.finished_by, run.duration_seconds) {
            (Some(at), Some(by), Some(seconds)) => format!(
                "{} {} by {by} after {} min, {} deviation{}",
                run.status,
                time(*at),
                seconds / 60,
                run.deviations,
                if run.deviations == 1 { "" } else { "s" }
            ),
            _ => match run.due_at {
                Some(due) => format!("{} (due {})", run.status, time(due)),
                None => run.status.to_string(),
            },
        };
        out.push_str(&format!(
            "#{} {} ({}){version}, content {}: {started}; {ended}\n",
            run.id,
            run.title,
            run.procedure_id,
            run.content_hash.get(..12).unwrap_or(&run.content_hash)
        ));
        for step in &run.steps {
            out.push_str(&format!(
                "   {}. {}: {}{}{}\n",
                step.number,
                step.text,
                step.outcome.unwrap_or("open"),
                match (&step.by, step.at) {
                    (Some(by), Some(at)) => format!(" by {by} at {}", time(at)),
                    _ => String::new(),
                },
                step.note
                    .as_deref()
                    .map(|n| format!(" — {n}"))
                    .unwrap_or_default()
            ));
        }
    }
    out
}
