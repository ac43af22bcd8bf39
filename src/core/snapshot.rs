//! Snapshots: the procedures served at one commit (or one read of a folder), immutable.
//!
//! A snapshot is built from a check report and the previous snapshot: a file whose new
//! version has errors keeps its last good version, so a broken commit never takes a
//! procedure away from the people who need it; its diagnostics travel with the snapshot.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use crate::core::check::{CheckReport, SourceContent, SourceFile, check_repository};
use crate::core::diagnostic::Diagnostic;
use crate::core::directory::Directory;
use crate::core::procedure::{Procedure, ProcedureId};

/// SHA-256 of a procedure file's bytes: acknowledgements name the exact text read.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ContentHash([u8; 32]);

impl ContentHash {
    pub fn of(bytes: &[u8]) -> ContentHash {
        ContentHash(Sha256::digest(bytes).into())
    }

    pub fn to_hex(self) -> String {
        self.0.iter().map(|byte| format!("{byte:02x}")).collect()
    }
}

impl fmt::Debug for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ContentHash({})", &self.to_hex()[..12])
    }
}

impl fmt::Display for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// Who made a commit, when, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommitInfo {
    pub id: String,
    pub time: DateTime<Utc>,
    pub author_name: String,
    pub author_email: String,
    pub committer_name: String,
    pub committer_email: String,
    pub message: String,
}

impl CommitInfo {
    /// The first line of the message.
    pub fn subject(&self) -> &str {
        self.message.lines().next().unwrap_or("")
    }

    pub fn short_id(&self) -> &str {
        self.id.get(..12).unwrap_or(&self.id)
    }
}

/// One procedure as served.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotEntry {
    pub procedure: Procedure,
    pub content_hash: ContentHash,
    /// The file's text, so a snapshot can be stored and rebuilt exactly.
    pub source: String,
    /// Set when the file's latest version is broken and this older good one is served.
    pub kept_despite_errors: bool,
}

/// The procedures served at one point in the repository's life.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// The commit, for git sources; `None` for a plain folder.
    pub commit: Option<CommitInfo>,
    pub procedures: BTreeMap<ProcedureId, SnapshotEntry>,
    pub directory: Option<Directory>,
    /// The directory file's text, for storing the snapshot.
    pub directory_source: Option<String>,
    /// Every problem found in this version of the repository.
    pub diagnostics: Vec<Diagnostic>,
    /// Procedures whose `Ack-Required: yes` came with a broken version: the next good
    /// version must be acknowledged even without a version bump.
    pub pending_acknowledgement: std::collections::BTreeSet<ProcedureId>,
}

impl Snapshot {
    pub fn get(&self, id: &ProcedureId) -> Option<&SnapshotEntry> {
        self.procedures.get(id)
    }

    pub fn error_count(&self) -> usize {
        self.diagnostics.iter().filter(|d| d.is_error()).count()
    }

    pub fn warning_count(&self) -> usize {
        self.diagnostics.len() - self.error_count()
    }

    /// The files this snapshot serves, for storing it: rebuilding from them gives the same
    /// procedures.
    pub fn source_files(&self) -> Vec<SourceFile> {
        self.procedures
            .values()
            .map(|entry| SourceFile {
                path: entry.procedure.path.clone(),
                content: SourceContent::Bytes(entry.source.clone().into_bytes()),
            })
            .collect()
    }
}

/// Builds a snapshot from a repository's files. `previous` supplies the last good version of
/// files whose new version has errors.
pub fn build_snapshot(
    files: Vec<SourceFile>,
    directory: Option<SourceFile>,
    today: chrono::NaiveDate,
    previous: Option<&Snapshot>,
    commit: Option<CommitInfo>,
) -> Snapshot {
    let sources: BTreeMap<String, Vec<u8>> = files
        .iter()
        .filter_map(|file| match &file.content {
            SourceContent::Bytes(bytes) => Some((file.path.clone(), bytes.clone())),
            SourceContent::Unreadable(_) => None,
        })
        .collect();
    let directory_source = directory.as_ref().and_then(|file| match &file.content {
        SourceContent::Bytes(bytes) => String::from_utf8(bytes.clone()).ok(),
        SourceContent::Unreadable(_) => None,
    });
    let report: CheckReport = check_repository(files, directory, today);
    let mut snapshot = Snapshot {
        commit,
        procedures: BTreeMap::new(),
        directory: report.directory.clone(),
        directory_source,
        diagnostics: report.diagnostics.clone(),
        pending_acknowledgement: Default::default(),
    };
    for file in &report.files {
        let good = file.procedure.as_ref().filter(|_| !file.has_errors());
        if let Some(procedure) = good {
            let bytes = sources.get(&file.path).cloned().unwrap_or_default();
            snapshot.procedures.insert(
                procedure.id.clone(),
                SnapshotEntry {
                    procedure: procedure.clone(),
                    content_hash: ContentHash::of(&bytes),
                    source: String::from_utf8(bytes).unwrap_or_default(),
                    kept_despite_errors: false,
                },
            );
            continue;
        }
        // The file is broken: serve its last good version, found by path, then by id.
        let Some(previous) = previous else { continue };
        let by_path = previous
            .procedures
            .values()
            .find(|entry| entry.procedure.path == file.path);
        let by_id = file
            .procedure
            .as_ref()
            .and_then(|procedure| previous.procedures.get(&procedure.id));
        if let Some(entry) = by_path.or(by_id)
            && !snapshot.procedures.contains_key(&entry.procedure.id)
        {
            let mut kept = entry.clone();
            kept.kept_despite_errors = true;
            snapshot.procedures.insert(kept.procedure.id.clone(), kept);
        }
    }
    snapshot
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, text: &str) -> SourceFile {
        SourceFile {
            path: path.into(),
            content: SourceContent::Bytes(text.as_bytes().to_vec()),
        }
    }

    fn procedure(id: &str, version: &str) -> String {
        format!(
            "---\nid: {id}\ntitle: {id}\nowner: a@example.com\naudience: everyone\nversion: {version}\nlast_reviewed: 2026-06-01\n---\n# {id}\n\n## Steps\n1. Do it.\n"
        )
    }

    fn today() -> chrono::NaiveDate {
        chrono::NaiveDate::from_ymd_opt(2026, 12, 1).unwrap()
    }

    #[test]
    fn a_broken_file_keeps_its_last_good_version() {
        let first = build_snapshot(
            vec![file("a.md", &procedure("a", "1.0.0"))],
            None,
            today(),
            None,
            None,
        );
        assert_eq!(first.procedures.len(), 1);
        let broken = build_snapshot(
            vec![file("a.md", "---\nid: a\ntitle: [broken\n---\n")],
            None,
            today(),
            Some(&first),
            None,
        );
        let entry = broken.get(&ProcedureId::parse("a").unwrap()).unwrap();
        assert!(entry.kept_despite_errors);
        assert_eq!(entry.procedure.version.as_ref().unwrap().as_str(), "1.0.0");
        assert_eq!(broken.error_count(), 1);
    }

    #[test]
    fn a_broken_new_file_is_not_served() {
        let snapshot = build_snapshot(
            vec![file("a.md", "---\nid: a\n---\n")],
            None,
            today(),
            None,
            None,
        );
        assert!(snapshot.procedures.is_empty());
        assert!(snapshot.error_count() > 0);
    }

    #[test]
    fn stored_sources_rebuild_the_same_snapshot() {
        let snapshot = build_snapshot(
            vec![
                file("x/a.md", &procedure("a", "1.0.0")),
                file("b.md", &procedure("b", "2")),
            ],
            None,
            today(),
            None,
            None,
        );
        let rebuilt = build_snapshot(snapshot.source_files(), None, today(), None, None);
        assert_eq!(rebuilt.procedures, snapshot.procedures);
    }

    #[test]
    fn content_hashes_are_sha256() {
        assert_eq!(
            ContentHash::of(b"abc").to_hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
