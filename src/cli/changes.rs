//! `procbot changes` and `procbot history`: what git history says, for people and for tools.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::core::change::ProcedureChange;
use crate::evidence::RunRecord;
use crate::repo::history::{HistoryEntry, RevisionChanges};

#[derive(Serialize)]
struct JsonChange<'a> {
    id: &'a str,
    kind: &'static str,
    from_version: Option<String>,
    to_version: Option<String>,
    summary: &'a str,
}

#[derive(Serialize)]
struct JsonChanges<'a> {
    from: &'a str,
    to: &'a str,
    changes: Vec<JsonChange<'a>>,
}

fn short(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

fn version_text(change: &ProcedureChange) -> String {
    match (&change.from_version, &change.to_version) {
        (Some(from), Some(to)) if from != to => format!("{from} → {to}"),
        (_, Some(to)) => to.to_string(),
        (Some(from), None) => format!("{from} → withdrawn"),
        (None, None) => "unversioned".to_string(),
    }
}

pub fn render_changes_json(result: &RevisionChanges) -> String {
    let json = JsonChanges {
        from: &result.from,
        to: &result.to,
        changes: result
            .changes
            .iter()
            .map(|change| JsonChange {
                id: change.id.as_str(),
                kind: change.kind.as_str(),
                from_version: change.from_version.as_ref().map(ToString::to_string),
                to_version: change.to_version.as_ref().map(ToString::to_string),
                summary: &change.summary,
            })
            .collect(),
    };
    let mut text = serde_json::to_string_pretty(&json).unwrap_or_default();
    text.push('\n');
    text
}

pub fn render_changes_human(result: &RevisionChanges) -> String {
    let mut text = format!(
        "changes from {} to {}: ",
        short(&result.from),
        short(&result.to)
    );
    if result.changes.is_empty() {
        text.push_str("none; nothing would be announced\n");
        return text;
    }
    let to_acknowledge = result
        .changes
        .iter()
        .filter(|c| c.kind.requires_acknowledgement())
        .count();
    text.push_str(&format!(
        "{} ({} to acknowledge)\n\n",
        result.changes.len(),
        to_acknowledge
    ));
    for change in &result.changes {
        text.push_str(&format!(
            "{:<9} {} ({})\n          {}\n",
            change.kind.as_str(),
            change.id,
            version_text(change),
            change.summary
        ));
    }
    text
}

#[derive(Serialize)]
struct JsonVersion<'a> {
    commit: &'a str,
    date: String,
    author: &'a str,
    author_email: &'a str,
    committer: &'a str,
    committer_email: &'a str,
    message: &'a str,
    kind: &'static str,
    version: Option<String>,
    path: Option<&'a str>,
    content_hash: Option<String>,
    summary: &'a str,
    /// With `--runs-from`: the runs that followed this version.
    #[serde(skip_serializing_if = "Option::is_none")]
    runs: Option<&'a [RunRecord]>,
}

/// Runs per content hash, when asked for.
pub type RunsByVersion = BTreeMap<String, Vec<RunRecord>>;

fn runs_of<'a>(runs: Option<&'a RunsByVersion>, entry: &HistoryEntry) -> Option<&'a [RunRecord]> {
    let runs = runs?;
    let hash = entry
        .change
        .content_hash
        .map(|h| h.to_hex())
        .unwrap_or_default();
    Some(runs.get(&hash).map(Vec::as_slice).unwrap_or(&[]))
}

#[derive(Serialize)]
struct JsonHistory<'a> {
    id: &'a str,
    title: &'a str,
    versions: Vec<JsonVersion<'a>>,
}

pub fn render_history_json(
    id: &str,
    entries: &[HistoryEntry],
    runs: Option<&RunsByVersion>,
) -> String {
    let title = entries
        .last()
        .map_or("", |entry| entry.change.title.as_str());
    let json = JsonHistory {
        id,
        title,
        versions: entries
            .iter()
            .map(|entry| JsonVersion {
                commit: &entry.commit.id,
                date: entry.commit.time.to_rfc3339(),
                author: &entry.commit.author_name,
                author_email: &entry.commit.author_email,
                committer: &entry.commit.committer_name,
                committer_email: &entry.commit.committer_email,
                message: &entry.commit.message,
                kind: entry.change.kind.as_str(),
                version: entry.change.to_version.as_ref().map(ToString::to_string),
                path: entry.change.to_path.as_deref(),
                content_hash: entry.change.content_hash.map(|hash| hash.to_hex()),
                summary: &entry.change.summary,
                runs: runs_of(runs, entry),
            })
            .collect(),
    };
    let mut text = serde_json::to_string_pretty(&json).unwrap_or_default();
    text.push('\n');
    text
}

pub fn render_history_human(
    id: &str,
    entries: &[HistoryEntry],
    runs: Option<&RunsByVersion>,
) -> String {
    let title = entries
        .last()
        .map_or("", |entry| entry.change.title.as_str());
    let mut text = format!("{id}: {title}\n\n");
    for entry in entries {
        let version = entry
            .change
            .to_version
            .as_ref()
            .map_or("-".to_string(), |v| format!("v{v}"));
        text.push_str(&format!(
            "{}  {}  {:<9} {:<9} {} <{}>  \"{}\"\n            {}\n",
            entry.commit.time.format("%Y-%m-%d"),
            entry.commit.short_id(),
            version,
            entry.change.kind.as_str(),
            entry.commit.author_name,
            entry.commit.author_email,
            entry.commit.subject(),
            entry.change.summary
        ));
        if entry.commit.committer_email != entry.commit.author_email {
            text.push_str(&format!(
                "            committed by {} <{}>\n",
                entry.commit.committer_name, entry.commit.committer_email
            ));
        }
        if let Some(version_runs) = runs_of(runs, entry) {
            let listed: Vec<String> = version_runs
                .iter()
                .map(|run| {
                    format!(
                        "#{} {} {}",
                        run.id,
                        run.status,
                        run.started_at.format("%Y-%m-%d")
                    )
                })
                .collect();
            text.push_str(&format!(
                "            runs: {}\n",
                if listed.is_empty() {
                    "none".to_string()
                } else {
                    listed.join(", ")
                }
            ));
        }
    }
    text
}
