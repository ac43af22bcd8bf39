//! The auditor's evidence pack: per procedure and version, the audience and each person's
//! acknowledgement (time, platform, message) or pending, voluntary reads, reviews, the commit
//! that introduced the version, failed deliveries, and the ledger's tip with how to verify it.
//! Procedure runs with every step (who, when, outcome, note) and their deviations, per
//! version. One gathering, three renderings (CSV rows per person, JSON, printable HTML),
//! shared by `procbot report` and `GET /evidence`; `RunRecord` is also `procbot runs --json`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::core::runs::Run;
use crate::html::{escape, page};
use crate::store::evidence::{ReportVersion, StoredReview, StoredVersion, VersionStatus};
use crate::store::ledger::Verification;
use crate::store::outbox::FailedDelivery;
use crate::store::{Store, StoreError};

#[derive(Clone, Debug, Serialize)]
pub struct EvidenceVersion {
    #[serde(flatten)]
    pub version: ReportVersion,
    pub required: usize,
    pub acknowledged: usize,
    /// Who still has to acknowledge (current versions only).
    pub pending: Vec<String>,
    pub reviews: Vec<StoredReview>,
    pub commit: Option<String>,
    pub commit_author: Option<String>,
    pub committed_at: Option<DateTime<Utc>>,
}

/// A procedure run as evidence: the version it followed, who did each step when, and how
/// it ended.
#[derive(Clone, Debug, Serialize)]
pub struct RunRecord {
    pub id: i64,
    pub procedure_id: String,
    pub title: String,
    pub version: Option<String>,
    pub content_hash: String,
    pub commit: Option<String>,
    pub trigger: &'static str,
    pub scheduled_for: Option<DateTime<Utc>>,
    pub due_at: Option<DateTime<Utc>>,
    pub started_at: DateTime<Utc>,
    pub started_by: Option<String>,
    pub assignees: Vec<String>,
    /// `open`, `overdue`, `completed` or `deviated` (finished with a problem step).
    pub status: &'static str,
    pub finished_at: Option<DateTime<Utc>>,
    pub finished_by: Option<String>,
    pub duration_seconds: Option<i64>,
    pub deviations: usize,
    pub steps: Vec<RunStepRecord>,
}

#[derive(Clone, Debug, Serialize)]
pub struct RunStepRecord {
    pub number: usize,
    pub text: String,
    pub outcome: Option<&'static str>,
    pub note: Option<String>,
    pub by: Option<String>,
    pub at: Option<DateTime<Utc>>,
}

impl RunRecord {
    pub fn of(run: &Run, now: DateTime<Utc>) -> RunRecord {
        let status = match &run.finished {
            Some(finished) if finished.deviations > 0 => "deviated",
            Some(_) => "completed",
            None if run.is_overdue(now) => "overdue",
            None => "open",
        };
        RunRecord {
            id: run.id,
            procedure_id: run.procedure_id.to_string(),
            title: run.title.clone(),
            version: run.version.clone(),
            content_hash: run.content_hash.clone(),
            commit: run.commit_id.clone(),
            trigger: run.trigger.as_str(),
            scheduled_for: run.scheduled_for,
            due_at: run.due_at,
            started_at: run.started_at,
            started_by: run.started_by.as_ref().map(ToString::to_string),
            assignees: run.assignees.iter().map(ToString::to_string).collect(),
            status,
            finished_at: run.finished.as_ref().map(|f| f.at),
            finished_by: run.finished.as_ref().map(|f| f.by.to_string()),
            duration_seconds: run
                .finished
                .as_ref()
                .map(|f| (f.at - run.started_at).num_seconds()),
            deviations: run.finished.as_ref().map_or(0, |f| f.deviations),
            steps: run
                .steps
                .iter()
                .map(|step| RunStepRecord {
                    number: step.number,
                    text: step.text.clone(),
                    outcome: step.outcome.map(|o| o.as_str()),
                    note: step.note.clone(),
                    by: step.by.as_ref().map(ToString::to_string),
                    at: step.at,
                })
                .collect(),
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct LedgerTip {
    pub entries: i64,
    pub head_hash: String,
    pub verification: Verification,
    pub how_to_verify: &'static str,
}

#[derive(Clone, Debug, Serialize)]
pub struct EvidencePack {
    pub generated_at: DateTime<Utc>,
    pub versions: Vec<EvidenceVersion>,
    /// Every procedure run, newest first, with the version it followed.
    pub runs: Vec<RunRecord>,
    pub failed_deliveries: Vec<FailedDelivery>,
    pub ledger: LedgerTip,
}

const HOW_TO_VERIFY: &str = "Each ledger entry's SHA-256 hash covers its fields and the previous entry's hash. Run `procbot audit verify` against the same database: it recomputes every hash and must end at the head hash above.";

impl EvidencePack {
    pub async fn gather(store: &Store, now: DateTime<Utc>) -> Result<EvidencePack, StoreError> {
        let report = store.acknowledgement_report().await?;
        let reviews = store.review_history().await?;
        let stored: BTreeMap<(String, String), StoredVersion> = store
            .stored_versions()
            .await?
            .into_iter()
            .map(|v| ((v.procedure_id.clone(), v.content_hash.clone()), v))
            .collect();
        let versions = report
            .into_iter()
            .map(|version| {
                let commit =
                    stored.get(&(version.procedure_id.clone(), version.content_hash.clone()));
                EvidenceVersion {
                    required: version.people.iter().filter(|p| p.required).count(),
                    acknowledged: version
                        .people
                        .iter()
                        .filter(|p| p.required && p.acknowledged_at.is_some())
                        .count(),
                    pending: if version.status == VersionStatus::Current {
                        version.pending().map(|p| p.email.clone()).collect()
                    } else {
                        Vec::new()
                    },
                    reviews: reviews
                        .get(&version.procedure_id)
                        .map(|all| {
                            all.iter()
                                .filter(|r| r.content_hash == version.content_hash)
                                .cloned()
                                .collect()
                        })
                        .unwrap_or_default(),
                    commit: commit.and_then(|c| c.commit_id.clone()),
                    commit_author: commit.and_then(|c| c.commit_author.clone()),
                    committed_at: commit.and_then(|c| c.committed_at),
                    version,
                }
            })
            .collect();
        let (entries, head_hash) = store.ledger_head().await?;
        let runs = store
            .runs(None)
            .await?
            .iter()
            .map(|run| RunRecord::of(run, now))
            .collect();
        Ok(EvidencePack {
            generated_at: now,
            versions,
            runs,
            failed_deliveries: store.failed_deliveries().await?,
            ledger: LedgerTip {
                entries,
                head_hash,
                verification: store.verify_ledger().await?,
                how_to_verify: HOW_TO_VERIFY,
            },
        })
    }
}

/// A cell for a spreadsheet: quoted when needed, and never read as a formula.
pub fn csv_cell(text: &str) -> String {
    let text = if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_string()
    };
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

pub fn status_name(status: VersionStatus) -> &'static str {
    match status {
        VersionStatus::Current => "current",
        VersionStatus::Superseded => "superseded",
        VersionStatus::Withdrawn => "withdrawn",
    }
}

/// The header of the CSV export: one row per person and version.
pub const CSV_HEADER: &str = "procedure_id,title,version,content_hash,status,announced_at,email,required,state,acknowledged_at,platform,user_id,message_ref";

/// One row per person and version.
pub fn render_csv(versions: &[ReportVersion]) -> String {
    let mut out = format!("{CSV_HEADER}\n");
    for version in versions {
        for person in &version.people {
            let state = match (person.acknowledged_at, person.required) {
                (Some(_), true) => "acknowledged",
                (Some(_), false) => "voluntary",
                (None, _) if version.status == VersionStatus::Current => "pending",
                (None, _) => "not acknowledged",
            };
            let cells = [
                version.procedure_id.clone(),
                version.title.clone(),
                version.version.clone().unwrap_or_default(),
                version.content_hash.clone(),
                status_name(version.status).to_string(),
                version.announced_at.to_rfc3339(),
                person.email.clone(),
                person.required.to_string(),
                state.to_string(),
                person
                    .acknowledged_at
                    .map(|at| at.to_rfc3339())
                    .unwrap_or_default(),
                person.platform.clone().unwrap_or_default(),
                person.user_id.clone().unwrap_or_default(),
                person.message_ref.clone().unwrap_or_default(),
            ];
            let row: Vec<String> = cells.iter().map(|c| csv_cell(c)).collect();
            out.push_str(&row.join(","));
            out.push('\n');
        }
    }
    out
}

pub fn render_json(pack: &EvidencePack) -> String {
    serde_json::to_string_pretty(pack).unwrap_or_default()
}

fn time(at: Option<DateTime<Utc>>) -> String {
    at.map(|at| at.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_default()
}

/// A printable page (A4) with the whole pack.
pub fn render_html(pack: &EvidencePack, navigation: bool) -> String {
    let mut body = format!(
        "<h1>Evidence pack: documented operating procedures (ISO/IEC 27001 A.5.37)</h1>\
         <p class=\"muted\">Generated {}. {} procedure versions.</p>\
         <div class=\"card\"><strong>Ledger</strong>: {} entries; head hash <span class=\"hash\">{}</span>; {}.<br><span class=\"muted\">{}</span></div>",
        time(Some(pack.generated_at)),
        pack.versions.len(),
        pack.ledger.entries,
        escape(&pack.ledger.head_hash),
        match &pack.ledger.verification.problem {
            None => "<span class=\"ok\">chain verified intact</span>".to_string(),
            Some(problem) => format!(
                "<span class=\"bad\">chain BROKEN at entry {}: {}</span>",
                problem.seq,
                escape(&problem.reason)
            ),
        },
        escape(pack.ledger.how_to_verify)
    );
    for version in &pack.versions {
        let v = &version.version;
        body.push_str(&format!(
            "<section class=\"version\"><h2>{} {} <span class=\"muted\">({}, {})</span></h2>\
             <p>Announced {}; content <span class=\"hash\">{}</span>{}. Acknowledged by {} of {} required.</p>",
            escape(&v.title),
            escape(&v.version.as_deref().map(|x| format!("v{x}")).unwrap_or_default()),
            escape(&v.procedure_id),
            status_name(v.status),
            time(Some(v.announced_at)),
            escape(&v.content_hash),
            match (&version.commit, &version.commit_author) {
                (Some(commit), author) => format!(
                    "; commit <span class=\"hash\">{}</span>{}{}",
                    escape(commit.get(..12).unwrap_or(commit)),
                    author
                        .as_ref()
                        .map(|a| format!(" by {}", escape(a)))
                        .unwrap_or_default(),
                    version
                        .committed_at
                        .map(|at| format!(" on {}", time(Some(at))))
                        .unwrap_or_default()
                ),
                (None, _) => String::new(),
            },
            version.acknowledged,
            version.required
        ));
        body.push_str("<table><tr><th>Person</th><th>Required</th><th>State</th><th>When</th><th>Where</th></tr>");
        for person in &v.people {
            let (class, state) = match (person.acknowledged_at, person.required) {
                (Some(_), true) => ("ok", "acknowledged"),
                (Some(_), false) => ("muted", "voluntary read"),
                (None, _) if v.status == VersionStatus::Current => ("pending", "pending"),
                (None, _) => ("muted", "not acknowledged"),
            };
            body.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td class=\"{class}\">{state}</td><td>{}</td><td>{}</td></tr>",
                escape(&person.email),
                if person.required { "yes" } else { "no" },
                time(person.acknowledged_at),
                escape(
                    &[
                        person.platform.clone().unwrap_or_default(),
                        person.message_ref.clone().unwrap_or_default()
                    ]
                    .iter()
                    .filter(|s| !s.is_empty())
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(" · ")
                )
            ));
        }
        body.push_str("</table>");
        if !version.reviews.is_empty() {
            body.push_str("<p><strong>Reviews</strong>: ");
            let reviews: Vec<String> = version
                .reviews
                .iter()
                .map(|r| {
                    format!(
                        "{} by {} on {}",
                        escape(&r.outcome),
                        escape(&r.email),
                        time(Some(r.reviewed_at))
                    )
                })
                .collect();
            body.push_str(&reviews.join("; "));
            body.push_str("</p>");
        }
        body.push_str("</section>");
    }
    if !pack.runs.is_empty() {
        body.push_str(&render_runs_html(&pack.runs));
    }
    if !pack.failed_deliveries.is_empty() {
        body.push_str("<h2>Messages that could not be delivered</h2><table><tr><th>Platform</th><th>To</th><th>Attempts</th><th>Reason</th></tr>");
        for failed in &pack.failed_deliveries {
            body.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&failed.platform),
                escape(&failed.destination),
                failed.attempts,
                escape(&failed.error)
            ));
        }
        body.push_str("</table>");
    }
    page("Evidence pack", navigation, &body)
}

/// Runs as an HTML section: one table row per run, its steps beneath it.
pub fn render_runs_html(runs: &[RunRecord]) -> String {
    let mut body = String::from(
        "<section class=\"version\"><h2>Procedure runs</h2><p class=\"muted\">Each run follows one procedure version; every step records who did it, when, its outcome and any note or link given as evidence.</p>\
         <table><tr><th>Run</th><th>Procedure</th><th>Trigger</th><th>Started</th><th>Finished</th><th>Status</th></tr>",
    );
    for run in runs {
        let class = match run.status {
            "completed" => "ok",
            "deviated" | "overdue" => "bad",
            _ => "pending",
        };
        body.push_str(&format!(
            "<tr><td>#{}</td><td>{} {} <span class=\"hash\">{}</span></td><td>{}{}</td><td>{}</td><td>{}</td><td class=\"{class}\">{}{}</td></tr>",
            run.id,
            escape(&run.title),
            escape(&run.version.as_deref().map(|v| format!("v{v}")).unwrap_or_default()),
            escape(run.content_hash.get(..12).unwrap_or(&run.content_hash)),
            run.trigger,
            run.scheduled_for
                .map(|at| format!(" for {}", time(Some(at))))
                .unwrap_or_default(),
            time(Some(run.started_at)),
            match (&run.finished_at, &run.finished_by) {
                (Some(at), Some(by)) => format!("{} by {}", time(Some(*at)), escape(by)),
                _ => String::new(),
            },
            run.status,
            if run.deviations > 0 {
                format!(" ({})", run.deviations)
            } else {
                String::new()
            }
        ));
        let steps: Vec<String> = run
            .steps
            .iter()
            .map(|step| {
                format!(
                    "{}. {}: {}{}{}",
                    step.number,
                    escape(&step.text),
                    step.outcome.unwrap_or("not done"),
                    match (&step.by, step.at) {
                        (Some(by), Some(at)) => format!(" by {} at {}", escape(by), time(Some(at))),
                        _ => String::new(),
                    },
                    step.note
                        .as_ref()
                        .map(|n| format!(" — {}", escape(n)))
                        .unwrap_or_default()
                )
            })
            .collect();
        body.push_str(&format!(
            "<tr><td></td><td colspan=\"5\" class=\"muted\">{}</td></tr>",
            steps.join("<br>")
        ));
    }
    body.push_str("</table></section>");
    body
}
