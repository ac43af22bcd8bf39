//! Repository-wide checking: every file parsed, plus the rules that span files (unique ids,
//! owners and audiences in the directory) and the ones that depend on today's date.

use std::collections::BTreeMap;

use chrono::NaiveDate;

use crate::core::diagnostic::{Diagnostic, DiagnosticCode, sort_diagnostics};
use crate::core::directory::Directory;
use crate::core::parse::{ParsedFile, parse_procedure};
use crate::core::procedure::{AudienceMember, Procedure};

/// The content of one file of the repository, as read by whoever does the IO.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SourceContent {
    Bytes(Vec<u8>),
    /// The file exists but could not be read; the text says why.
    Unreadable(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceFile {
    /// Path relative to the repository root, with `/` separators.
    pub path: String,
    pub content: SourceContent,
}

/// Everything `procbot check` found.
#[derive(Clone, Debug, Default)]
pub struct CheckReport {
    /// One entry per procedure file, in path order. Duplicate-id files have no procedure.
    pub files: Vec<ParsedFile>,
    pub directory: Option<Directory>,
    /// Every diagnostic, file and directory alike, sorted for reading.
    pub diagnostics: Vec<Diagnostic>,
}

impl CheckReport {
    pub fn error_count(&self) -> usize {
        self.diagnostics.iter().filter(|d| d.is_error()).count()
    }

    pub fn warning_count(&self) -> usize {
        self.diagnostics.len() - self.error_count()
    }

    /// The procedures that can be served.
    pub fn procedures(&self) -> impl Iterator<Item = &Procedure> {
        self.files.iter().filter_map(|file| file.procedure.as_ref())
    }
}

/// Parses and checks a repository. `directory` is `directory.yaml` when the repository has
/// one; without it, owners and audiences are not checked against people and teams.
pub fn check_repository(
    mut sources: Vec<SourceFile>,
    directory: Option<SourceFile>,
    today: NaiveDate,
) -> CheckReport {
    sources.sort_by(|a, b| a.path.cmp(&b.path));
    let mut report = CheckReport::default();

    if let Some(source) = directory {
        let (directory, diagnostics) = match &source.content {
            SourceContent::Bytes(bytes) => match std::str::from_utf8(bytes) {
                Ok(text) => Directory::parse(&source.path, text),
                Err(error) => (
                    Directory::default(),
                    vec![Diagnostic::new(
                        &source.path,
                        crate::core::diagnostic::Position::START,
                        DiagnosticCode::InvalidDirectory,
                        format!(
                            "the directory is not valid UTF-8 (at byte {})",
                            error.valid_up_to()
                        ),
                    )],
                ),
            },
            SourceContent::Unreadable(reason) => (
                Directory::default(),
                vec![Diagnostic::new(
                    &source.path,
                    crate::core::diagnostic::Position::START,
                    DiagnosticCode::UnreadableFile,
                    format!("the directory could not be read: {reason}"),
                )],
            ),
        };
        report.diagnostics.extend(diagnostics);
        report.directory = Some(directory);
    }

    let mut first_path_of_id: BTreeMap<String, String> = BTreeMap::new();
    // (id, later path) pairs: the first file of each id is told about the others too, so
    // whichever file the author opens names the clash.
    let mut duplicates: Vec<(String, String)> = Vec::new();
    for source in sources {
        let mut parsed = match &source.content {
            SourceContent::Bytes(bytes) => parse_procedure(&source.path, bytes),
            SourceContent::Unreadable(reason) => ParsedFile {
                path: source.path.clone(),
                procedure: None,
                diagnostics: vec![Diagnostic::new(
                    &source.path,
                    crate::core::diagnostic::Position::START,
                    DiagnosticCode::UnreadableFile,
                    format!("the file could not be read: {reason}"),
                )],
                field_positions: BTreeMap::new(),
            },
        };
        if let Some(procedure) = &parsed.procedure {
            let id = procedure.id.as_str().to_string();
            if let Some(first) = first_path_of_id.get(&id) {
                let position = parsed.position_of("id");
                parsed.diagnostics.push(Diagnostic::new(
                    &parsed.path,
                    position,
                    DiagnosticCode::DuplicateId,
                    format!("the id `{id}` is already used by {first}"),
                ));
                duplicates.push((id, parsed.path.clone()));
                parsed.procedure = None;
            } else {
                first_path_of_id.insert(id, parsed.path.clone());
            }
        }
        if let Some(procedure) = parsed.procedure.clone() {
            if let Some(directory) = &report.directory {
                check_people(&mut parsed, &procedure, directory);
            }
            check_dates(&mut parsed, &procedure, today);
        }
        report
            .diagnostics
            .extend(parsed.diagnostics.iter().cloned());
        report.files.push(parsed);
    }
    for (id, later_path) in duplicates {
        let Some(first_path) = first_path_of_id.get(&id) else {
            continue;
        };
        let Some(first) = report
            .files
            .iter_mut()
            .find(|file| &file.path == first_path)
        else {
            continue;
        };
        let diagnostic = Diagnostic::new(
            &first.path,
            first.position_of("id"),
            DiagnosticCode::DuplicateId,
            format!("the id `{id}` is also used by {later_path}"),
        );
        first.diagnostics.push(diagnostic.clone());
        report.diagnostics.push(diagnostic);
    }
    sort_diagnostics(&mut report.diagnostics);
    report
}

fn check_people(parsed: &mut ParsedFile, procedure: &Procedure, directory: &Directory) {
    if let Some(owner) = &procedure.owner
        && !directory.knows_person(owner)
    {
        let position = parsed.position_of("owner");
        parsed.diagnostics.push(Diagnostic::new(
            &parsed.path,
            position,
            DiagnosticCode::UnknownOwner,
            format!("the owner {owner} is not in the directory"),
        ));
    }
    if let Some(approver) = &procedure.approver
        && !directory.knows_person(approver)
    {
        let position = parsed.position_of("approver");
        parsed.diagnostics.push(Diagnostic::new(
            &parsed.path,
            position,
            DiagnosticCode::UnknownApprover,
            format!("the approver {approver} is not in the directory"),
        ));
    }
    check_members(parsed, "audience", &procedure.audience, directory);
    check_members(parsed, "run_by", &procedure.run_by, directory);
    if !procedure.run_by.is_empty() && procedure.schedule.is_none() {
        let position = parsed.position_of("run_by");
        parsed.diagnostics.push(Diagnostic::new(
            &parsed.path,
            position,
            DiagnosticCode::RunByWithoutSchedule,
            "`run_by` names who performs scheduled runs, but the procedure has no `schedule`",
        ));
    }
}

/// Teams and people a field names (`audience`, `run_by`) must be in the directory.
fn check_members(
    parsed: &mut ParsedFile,
    field: &str,
    members: &[AudienceMember],
    directory: &Directory,
) {
    let named = if field == "audience" {
        "the audience".to_string()
    } else {
        format!("`{field}`")
    };
    for member in members {
        let message = match member {
            AudienceMember::Everyone => continue,
            AudienceMember::Team(team) if directory.has_team(team) => continue,
            AudienceMember::Person(email) if directory.knows_person(email) => continue,
            AudienceMember::Team(team) => {
                let teams: Vec<&str> = directory.teams.keys().map(|t| t.as_str()).collect();
                format!(
                    "{named} names the team `{team}`, which is not in the directory (teams: {})",
                    if teams.is_empty() {
                        "none".to_string()
                    } else {
                        teams.join(", ")
                    }
                )
            }
            AudienceMember::Person(email) => {
                format!("{named} names {email}, who is not in the directory")
            }
        };
        let position = parsed.position_of(field);
        parsed.diagnostics.push(Diagnostic::new(
            &parsed.path,
            position,
            DiagnosticCode::UnknownAudience,
            message,
        ));
    }
}

fn check_dates(parsed: &mut ParsedFile, procedure: &Procedure, today: NaiveDate) {
    let Some(last_reviewed) = procedure.last_reviewed else {
        return;
    };
    let position = parsed.position_of("last_reviewed");
    if last_reviewed > today {
        parsed.diagnostics.push(Diagnostic::new(
            &parsed.path,
            position,
            DiagnosticCode::LastReviewedInFuture,
            format!("`last_reviewed` is {last_reviewed}, which is after today ({today})"),
        ));
        return;
    }
    if let Some(due) = procedure.review_due()
        && due < today
    {
        let days = (today - due).num_days();
        parsed.diagnostics.push(Diagnostic::new(
            &parsed.path,
            position,
            DiagnosticCode::ReviewOverdue,
            format!(
                "the review was due on {due} (last reviewed {last_reviewed}, every {}): {days} day{} overdue",
                procedure.review_every,
                if days == 1 { "" } else { "s" }
            ),
        ));
    }
}
