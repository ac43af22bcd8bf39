//! Change detection between the last announced snapshot and a new one, with the short human
//! summary announcements carry ("v1.1.0 → v1.2.0. Step 3 changed: …").
//!
//! Materiality follows the format spec: a new procedure or a new `version` is material
//! (staff must acknowledge); the same version is editorial. `Ack-Required:` commit trailers
//! override that per procedure.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::core::procedure::{Procedure, ProcedureId, SectionKind, Step, Version};
use crate::core::snapshot::{ContentHash, Snapshot};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ChangeKind {
    Added,
    Material,
    Editorial,
    Removed,
    Renamed,
}

impl ChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Added => "added",
            ChangeKind::Material => "material",
            ChangeKind::Editorial => "editorial",
            ChangeKind::Removed => "removed",
            ChangeKind::Renamed => "renamed",
        }
    }

    /// Whether the audience must acknowledge this change.
    pub fn requires_acknowledgement(self) -> bool {
        matches!(self, ChangeKind::Added | ChangeKind::Material)
    }
}

impl fmt::Display for ChangeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What `Ack-Required:` trailers in the commits that touched a procedure say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AckOverride {
    /// `Ack-Required: yes`: material even without a version bump.
    Required,
    /// `Ack-Required: no`: editorial even with a version bump.
    NotRequired,
}

impl AckOverride {
    /// Reads a trailer value; anything but yes/no (and their usual spellings) is ignored.
    pub fn parse(value: &str) -> Option<AckOverride> {
        match value.trim().to_ascii_lowercase().as_str() {
            "yes" | "y" | "true" | "1" | "required" => Some(AckOverride::Required),
            "no" | "n" | "false" | "0" | "none" => Some(AckOverride::NotRequired),
            _ => None,
        }
    }

    /// Several trailers on one procedure: asking for acknowledgement wins.
    pub fn combine(current: Option<AckOverride>, next: AckOverride) -> AckOverride {
        match (current, next) {
            (Some(AckOverride::Required), _) | (_, AckOverride::Required) => AckOverride::Required,
            _ => AckOverride::NotRequired,
        }
    }
}

/// One change to one procedure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcedureChange {
    pub id: ProcedureId,
    pub kind: ChangeKind,
    pub title: String,
    pub from_version: Option<Version>,
    pub to_version: Option<Version>,
    pub from_path: Option<String>,
    pub to_path: Option<String>,
    pub content_hash: Option<ContentHash>,
    /// One or two sentences for the announcement.
    pub summary: String,
}

/// Step texts longer than this are cut in summaries.
const SUMMARY_TEXT_LIMIT: usize = 100;
/// At most this many step changes are spelled out; the rest are counted.
const SUMMARY_STEP_LIMIT: usize = 3;

/// The changes from `old` (last announced) to `new`, in id order.
pub fn detect_changes(
    old: &Snapshot,
    new: &Snapshot,
    overrides: &BTreeMap<ProcedureId, AckOverride>,
) -> Vec<ProcedureChange> {
    let ids: BTreeSet<&ProcedureId> = old.procedures.keys().chain(new.procedures.keys()).collect();
    let mut changes = Vec::new();
    for id in ids {
        let pending = old
            .pending_acknowledgement
            .contains(id)
            .then_some(AckOverride::Required);
        let override_for = match (overrides.get(id).copied(), pending) {
            (Some(explicit), pending) => Some(AckOverride::combine(pending, explicit)),
            (None, pending) => pending,
        };
        match (old.get(id), new.get(id)) {
            (None, Some(added)) => {
                let procedure = &added.procedure;
                changes.push(ProcedureChange {
                    id: id.clone(),
                    kind: ChangeKind::Added,
                    title: procedure.title.clone(),
                    from_version: None,
                    to_version: procedure.version.clone(),
                    from_path: None,
                    to_path: Some(procedure.path.clone()),
                    content_hash: Some(added.content_hash),
                    summary: format!(
                        "New procedure{}: {}",
                        version_suffix(procedure.version.as_ref()),
                        procedure.summary.as_deref().unwrap_or(&procedure.title)
                    ),
                });
            }
            (Some(removed), None) => {
                let procedure = &removed.procedure;
                changes.push(ProcedureChange {
                    id: id.clone(),
                    kind: ChangeKind::Removed,
                    title: procedure.title.clone(),
                    from_version: procedure.version.clone(),
                    to_version: None,
                    from_path: Some(procedure.path.clone()),
                    to_path: None,
                    content_hash: None,
                    summary: format!(
                        "Withdrawn: {}{} is no longer in force.",
                        procedure.title,
                        version_suffix(procedure.version.as_ref())
                    ),
                });
            }
            (Some(before), Some(after)) => {
                if before.content_hash == after.content_hash
                    && before.procedure.path == after.procedure.path
                {
                    // A kept (last good) version is not the text the trailer's commit wrote:
                    // asking to acknowledge it again would ask for the wrong text.
                    if override_for == Some(AckOverride::Required) && !after.kept_despite_errors {
                        changes.push(changed(
                            id,
                            (&before.procedure, &after.procedure),
                            ChangeKind::Material,
                            after.content_hash,
                        ));
                    }
                    continue;
                }
                let old_procedure = &before.procedure;
                let new_procedure = &after.procedure;
                let version_changed = old_procedure.version != new_procedure.version;
                let material = match override_for {
                    Some(AckOverride::Required) => true,
                    Some(AckOverride::NotRequired) => false,
                    None => version_changed,
                };
                let moved = old_procedure.path != new_procedure.path;
                let kind = match (material, moved) {
                    (true, _) => ChangeKind::Material,
                    (false, true) => ChangeKind::Renamed,
                    (false, false) => ChangeKind::Editorial,
                };
                changes.push(changed(
                    id,
                    (old_procedure, new_procedure),
                    kind,
                    after.content_hash,
                ));
            }
            (None, None) => {}
        }
    }
    changes
}

/// The procedures still owed an acknowledgement request after this sync: those whose
/// `Ack-Required: yes` (now or earlier) met a broken file, so the last good version is
/// served and the request waits for the next good one.
pub fn pending_acknowledgements(
    old: &Snapshot,
    new: &Snapshot,
    overrides: &BTreeMap<ProcedureId, AckOverride>,
) -> BTreeSet<ProcedureId> {
    new.procedures
        .iter()
        .filter(|(_, entry)| entry.kept_despite_errors)
        .filter(|(id, _)| {
            overrides.get(*id) == Some(&AckOverride::Required)
                || old.pending_acknowledgement.contains(*id)
        })
        .map(|(id, _)| id.clone())
        .collect()
}

fn changed(
    id: &ProcedureId,
    (before, after): (&Procedure, &Procedure),
    kind: ChangeKind,
    content_hash: ContentHash,
) -> ProcedureChange {
    ProcedureChange {
        id: id.clone(),
        kind,
        title: after.title.clone(),
        from_version: before.version.clone(),
        to_version: after.version.clone(),
        from_path: Some(before.path.clone()),
        to_path: Some(after.path.clone()),
        content_hash: Some(content_hash),
        summary: summarise(before, after),
    }
}

fn version_suffix(version: Option<&Version>) -> String {
    version.map(|v| format!(" (v{v})")).unwrap_or_default()
}

fn shorten(text: &str) -> String {
    if text.chars().count() <= SUMMARY_TEXT_LIMIT {
        return text.to_string();
    }
    let cut: String = text.chars().take(SUMMARY_TEXT_LIMIT - 1).collect();
    format!("{}…", cut.trim_end())
}

/// A step and its sub-steps as one comparable text.
fn step_text(step: &Step) -> String {
    let mut text = step.text.clone();
    for substep in &step.substeps {
        text.push_str(" / ");
        text.push_str(&step_text(substep));
    }
    text
}

enum StepEdit {
    Changed { number: usize, text: String },
    Added { number: usize, text: String },
    Removed { number: usize, text: String },
}

/// Aligns old and new steps by their longest common subsequence; an unmatched old step
/// facing an unmatched new step is reported as changed, the rest as added or removed.
fn step_edits(old: &[String], new: &[String]) -> Vec<StepEdit> {
    let (n, m) = (old.len(), new.len());
    // Steps per procedure are few (tens), so the quadratic table is small.
    let mut lcs = vec![vec![0usize; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if old[i] == new[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let mut edits = Vec::new();
    let (mut i, mut j) = (0, 0);
    let mut removed: Vec<usize> = Vec::new();
    let mut added: Vec<usize> = Vec::new();
    let flush = |removed: &mut Vec<usize>, added: &mut Vec<usize>, edits: &mut Vec<StepEdit>| {
        let paired = removed.len().min(added.len());
        for k in 0..paired {
            edits.push(StepEdit::Changed {
                number: added[k] + 1,
                text: new[added[k]].clone(),
            });
        }
        for &index in &removed[paired..] {
            edits.push(StepEdit::Removed {
                number: index + 1,
                text: old[index].clone(),
            });
        }
        for &index in &added[paired..] {
            edits.push(StepEdit::Added {
                number: index + 1,
                text: new[index].clone(),
            });
        }
        removed.clear();
        added.clear();
    };
    while i < n || j < m {
        if i < n && j < m && old[i] == new[j] {
            flush(&mut removed, &mut added, &mut edits);
            i += 1;
            j += 1;
        } else if j < m && (i == n || lcs[i][j + 1] >= lcs[i + 1][j]) {
            added.push(j);
            j += 1;
        } else {
            removed.push(i);
            i += 1;
        }
    }
    flush(&mut removed, &mut added, &mut edits);
    edits
}

fn join_names(names: &[&str]) -> String {
    match names {
        [] => String::new(),
        [one] => (*one).to_string(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// A short human summary of what changed between two versions of a procedure.
pub fn summarise(before: &Procedure, after: &Procedure) -> String {
    let mut parts: Vec<String> = Vec::new();
    if before.version != after.version {
        let from = before
            .version
            .as_ref()
            .map_or("unversioned".to_string(), |v| format!("v{v}"));
        let to = after
            .version
            .as_ref()
            .map_or("unversioned".to_string(), |v| format!("v{v}"));
        parts.push(format!("{from} → {to}."));
    }
    if before.path != after.path {
        parts.push(format!("Moved from {} to {}.", before.path, after.path));
    }
    if before.title != after.title {
        parts.push(format!("Title is now “{}”.", after.title));
    }

    let old_steps: Vec<String> = before.steps.iter().map(step_text).collect();
    let new_steps: Vec<String> = after.steps.iter().map(step_text).collect();
    let edits = step_edits(&old_steps, &new_steps);
    for edit in edits.iter().take(SUMMARY_STEP_LIMIT) {
        parts.push(match edit {
            StepEdit::Changed { number, text } => {
                format!("Step {number} changed: {}", shorten(text))
            }
            StepEdit::Added { number, text } => format!("Step {number} added: {}", shorten(text)),
            StepEdit::Removed { number, text } => {
                format!("Step {number} removed (was: {})", shorten(text))
            }
        });
    }
    if edits.len() > SUMMARY_STEP_LIMIT {
        parts.push(format!(
            "{} more step changes.",
            edits.len() - SUMMARY_STEP_LIMIT
        ));
    }

    let section_text = |procedure: &Procedure, kind: SectionKind| {
        procedure
            .sections
            .iter()
            .filter(|section| section.kind == kind)
            .map(|section| section.markdown.clone())
            .collect::<Vec<_>>()
    };
    let mut changed_sections = Vec::new();
    for kind in [
        SectionKind::Purpose,
        SectionKind::Scope,
        SectionKind::Roles,
        SectionKind::IfSomethingGoesWrong,
        SectionKind::Records,
        SectionKind::Related,
        SectionKind::Other,
    ] {
        if section_text(before, kind) != section_text(after, kind) {
            changed_sections.push(kind.canonical_heading());
        }
    }
    if edits.is_empty()
        && section_text(before, SectionKind::Steps) != section_text(after, SectionKind::Steps)
    {
        changed_sections.insert(0, "Steps (wording around the steps)");
    }
    if !changed_sections.is_empty() {
        parts.push(format!("{} changed.", join_names(&changed_sections)));
    }

    if before.owner != after.owner
        && let Some(owner) = &after.owner
    {
        parts.push(format!("Owner is now {owner}."));
    }
    if before.audience != after.audience {
        let audience: Vec<String> = after.audience.iter().map(ToString::to_string).collect();
        parts.push(format!("Audience is now {}.", audience.join(", ")));
    }
    if before.classification != after.classification {
        parts.push(format!(
            "Classification changed from {} to {}.",
            before.classification, after.classification
        ));
    }
    if before.schedule != after.schedule {
        parts.push(match &after.schedule {
            Some(schedule) => format!("Schedule is now `{schedule}`."),
            None => "No longer scheduled.".to_string(),
        });
    }
    if before.review_every != after.review_every {
        parts.push(format!(
            "Reviewed every {} from now on.",
            after.review_every
        ));
    }
    if parts.is_empty() || (parts.len() == 1 && before.version != after.version) {
        if before.last_reviewed != after.last_reviewed
            && let Some(date) = after.last_reviewed
        {
            parts.push(format!(
                "Reviewed on {date}; no change to the procedure itself."
            ));
        } else {
            parts.push("Wording and formatting changes only.".to_string());
        }
    }
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::check::{SourceContent, SourceFile};
    use crate::core::snapshot::build_snapshot;

    fn snapshot(files: &[(&str, String)]) -> Snapshot {
        let files = files
            .iter()
            .map(|(path, text)| SourceFile {
                path: (*path).to_string(),
                content: SourceContent::Bytes(text.as_bytes().to_vec()),
            })
            .collect();
        build_snapshot(
            files,
            None,
            chrono::NaiveDate::from_ymd_opt(2026, 12, 1).unwrap(),
            None,
            None,
        )
    }

    fn procedure(version: &str, steps: &[&str]) -> String {
        let steps: String = steps
            .iter()
            .enumerate()
            .map(|(i, s)| format!("{}. {s}\n", i + 1))
            .collect();
        format!(
            "---\nid: backup\ntitle: Back up\nowner: a@example.com\naudience: everyone\nversion: {version}\nlast_reviewed: 2026-06-01\n---\n# Back up\n\n## Purpose\nKeep data.\n\n## Steps\n{steps}"
        )
    }

    const STEPS: [&str; 4] = [
        "Log in to the backup console.",
        "Start the full backup.",
        "Copy the backup to the first region.",
        "Check the report.",
    ];

    #[test]
    fn a_version_bump_is_material_with_the_changed_step() {
        let old = snapshot(&[("backup.md", procedure("1.1.0", &STEPS))]);
        let mut new_steps = STEPS;
        new_steps[2] = "Copy the backup to the second region.";
        let new = snapshot(&[("backup.md", procedure("1.2.0", &new_steps))]);
        let changes = detect_changes(&old, &new, &BTreeMap::new());
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].kind, ChangeKind::Material);
        assert_eq!(
            changes[0].summary,
            "v1.1.0 → v1.2.0. Step 3 changed: Copy the backup to the second region."
        );
    }

    #[test]
    fn the_same_version_is_editorial_unless_a_trailer_says_otherwise() {
        let old = snapshot(&[("backup.md", procedure("1.1.0", &STEPS))]);
        let mut new_steps = STEPS.to_vec();
        new_steps.insert(1, "Tell the on-call engineer.");
        let new = snapshot(&[("backup.md", procedure("1.1.0", &new_steps))]);
        let changes = detect_changes(&old, &new, &BTreeMap::new());
        assert_eq!(changes[0].kind, ChangeKind::Editorial);
        assert_eq!(
            changes[0].summary,
            "Step 2 added: Tell the on-call engineer."
        );

        let id = ProcedureId::parse("backup").unwrap();
        let yes = BTreeMap::from([(id.clone(), AckOverride::Required)]);
        assert_eq!(
            detect_changes(&old, &new, &yes)[0].kind,
            ChangeKind::Material
        );

        let bumped = snapshot(&[("backup.md", procedure("1.2.0", &STEPS[..3]))]);
        let no = BTreeMap::from([(id, AckOverride::NotRequired)]);
        let change = &detect_changes(&old, &bumped, &no)[0];
        assert_eq!(change.kind, ChangeKind::Editorial);
        assert_eq!(
            change.summary,
            "v1.1.0 → v1.2.0. Step 4 removed (was: Check the report.)"
        );
    }

    #[test]
    fn added_removed_and_renamed_are_told_apart() {
        let text = procedure("1.0.0", &STEPS);
        let old = snapshot(&[("backup.md", text.clone())]);
        let moved = snapshot(&[("ops/backup.md", text.clone())]);
        let change = &detect_changes(&old, &moved, &BTreeMap::new())[0];
        assert_eq!(change.kind, ChangeKind::Renamed);
        assert_eq!(change.summary, "Moved from backup.md to ops/backup.md.");

        let empty = snapshot(&[]);
        assert_eq!(
            detect_changes(&empty, &old, &BTreeMap::new())[0].kind,
            ChangeKind::Added
        );
        let removed = &detect_changes(&old, &empty, &BTreeMap::new())[0];
        assert_eq!(removed.kind, ChangeKind::Removed);
        assert!(
            removed.summary.starts_with("Withdrawn: Back up (v1.0.0)"),
            "{}",
            removed.summary
        );
        assert!(detect_changes(&old, &old, &BTreeMap::new()).is_empty());
    }

    #[test]
    fn an_acknowledgement_asked_for_with_a_broken_file_waits_for_the_fix() {
        let id = ProcedureId::parse("backup").unwrap();
        let good = snapshot(&[("backup.md", procedure("1.0.0", &STEPS))]);
        let broken = build_snapshot(
            vec![SourceFile {
                path: "backup.md".into(),
                content: SourceContent::Bytes(b"---\nid: backup\ntitle: [broken\n---\n".to_vec()),
            }],
            None,
            chrono::NaiveDate::from_ymd_opt(2026, 12, 1).unwrap(),
            Some(&good),
            None,
        );
        let yes = BTreeMap::from([(id.clone(), AckOverride::Required)]);
        assert!(
            detect_changes(&good, &broken, &yes).is_empty(),
            "the old text is not asked again"
        );
        let mut announced = broken.clone();
        announced.pending_acknowledgement = pending_acknowledgements(&good, &broken, &yes);
        assert!(announced.pending_acknowledgement.contains(&id));

        let fixed_text = procedure("1.0.0", &STEPS).replace("Keep data.", "Keep all data.");
        let fixed = snapshot(&[("backup.md", fixed_text)]);
        let changes = detect_changes(&announced, &fixed, &BTreeMap::new());
        assert_eq!(changes[0].kind, ChangeKind::Material);
        assert!(pending_acknowledgements(&announced, &fixed, &BTreeMap::new()).is_empty());
    }

    #[test]
    fn section_and_metadata_changes_are_named() {
        let old = snapshot(&[("backup.md", procedure("1.0.0", &STEPS))]);
        let new_text = procedure("1.0.0", &STEPS)
            .replace("Keep data.", "Keep customer data recoverable.")
            .replace("audience: everyone", "audience: [it-ops]");
        let new = snapshot(&[("backup.md", new_text)]);
        let change = &detect_changes(&old, &new, &BTreeMap::new())[0];
        assert_eq!(change.summary, "Purpose changed. Audience is now it-ops.");
    }
}
