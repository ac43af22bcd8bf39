//! The last announced snapshot, kept in a file so change detection survives restarts.
//!
//! The file holds the served files' text and the commit they came from; loading parses them
//! again, so the stored form never drifts from what the parser understands.

use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::core::check::{SourceContent, SourceFile};
use crate::core::parse::parse_procedure;
use crate::core::procedure::ProcedureId;
use crate::core::snapshot::{CommitInfo, ContentHash, Snapshot, SnapshotEntry, build_snapshot};

const FORMAT_VERSION: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("could not read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("could not write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a procbot state file: {message}")]
    Corrupt { path: PathBuf, message: String },
}

#[derive(Serialize, Deserialize)]
struct StoredCommit {
    id: String,
    time: DateTime<Utc>,
    author_name: String,
    author_email: String,
    committer_name: String,
    committer_email: String,
    message: String,
}

#[derive(Serialize, Deserialize)]
struct StoredFile {
    path: String,
    text: String,
}

#[derive(Serialize, Deserialize)]
struct StoredSnapshot {
    format: u32,
    /// Ids owed an acknowledgement request once their file is good again.
    #[serde(default)]
    pending_acknowledgement: Vec<String>,
    commit: Option<StoredCommit>,
    directory: Option<StoredFile>,
    files: Vec<StoredFile>,
}

/// The file that remembers the last announced snapshot.
#[derive(Clone, Debug)]
pub struct AnnouncedState {
    path: PathBuf,
}

impl AnnouncedState {
    pub fn new(path: impl Into<PathBuf>) -> AnnouncedState {
        AnnouncedState { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The last announced snapshot, or `None` on first start.
    pub fn load(
        &self,
        today: NaiveDate,
        directory_path: &str,
    ) -> Result<Option<Snapshot>, StateError> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(StateError::Read {
                    path: self.path.clone(),
                    source,
                });
            }
        };
        let mut stored: StoredSnapshot =
            serde_json::from_str(&text).map_err(|error| StateError::Corrupt {
                path: self.path.clone(),
                message: error.to_string(),
            })?;
        if stored.format != FORMAT_VERSION {
            return Err(StateError::Corrupt {
                path: self.path.clone(),
                message: format!(
                    "format {} is not the supported format {FORMAT_VERSION}",
                    stored.format
                ),
            });
        }
        let stored_pending = std::mem::take(&mut stored.pending_acknowledgement);
        let files: Vec<SourceFile> = stored
            .files
            .into_iter()
            .map(|file| SourceFile {
                path: file.path,
                content: SourceContent::Bytes(file.text.into_bytes()),
            })
            .collect();
        let directory = stored.directory.map(|file| SourceFile {
            path: if file.path.is_empty() {
                directory_path.to_string()
            } else {
                file.path
            },
            content: SourceContent::Bytes(file.text.into_bytes()),
        });
        let commit = stored.commit.map(|commit| CommitInfo {
            id: commit.id,
            time: commit.time,
            author_name: commit.author_name,
            author_email: commit.author_email,
            committer_name: commit.committer_name,
            committer_email: commit.committer_email,
            message: commit.message,
        });
        let mut snapshot = build_snapshot(files.clone(), directory, today, None, commit);
        // A stored entry may be a last good version kept despite errors elsewhere (say, its
        // owner left the directory): re-checking would drop it, so it is restored as kept.
        for file in files {
            let SourceContent::Bytes(bytes) = &file.content else {
                continue;
            };
            let bytes = bytes.as_slice();
            if snapshot
                .procedures
                .values()
                .any(|entry| entry.procedure.path == file.path)
            {
                continue;
            }
            let Some(procedure) = parse_procedure(&file.path, bytes).procedure else {
                continue;
            };
            if snapshot.procedures.contains_key(&procedure.id) {
                continue;
            }
            snapshot.procedures.insert(
                procedure.id.clone(),
                SnapshotEntry {
                    procedure,
                    content_hash: ContentHash::of(bytes),
                    source: String::from_utf8_lossy(bytes).into_owned(),
                    kept_despite_errors: true,
                },
            );
        }
        snapshot.pending_acknowledgement = stored_pending
            .iter()
            .filter_map(|id| ProcedureId::parse(id).ok())
            .collect();
        Ok(Some(snapshot))
    }

    /// Saves `snapshot` as the last announced one. Written to a temporary file and renamed,
    /// so a crash leaves either the old state or the new one, never half of each.
    pub fn save(&self, snapshot: &Snapshot, directory_path: &str) -> Result<(), StateError> {
        let stored = StoredSnapshot {
            format: FORMAT_VERSION,
            pending_acknowledgement: snapshot
                .pending_acknowledgement
                .iter()
                .map(ToString::to_string)
                .collect(),
            commit: snapshot.commit.as_ref().map(|commit| StoredCommit {
                id: commit.id.clone(),
                time: commit.time,
                author_name: commit.author_name.clone(),
                author_email: commit.author_email.clone(),
                committer_name: commit.committer_name.clone(),
                committer_email: commit.committer_email.clone(),
                message: commit.message.clone(),
            }),
            directory: snapshot.directory_source.as_ref().map(|text| StoredFile {
                path: directory_path.to_string(),
                text: text.clone(),
            }),
            files: snapshot
                .procedures
                .values()
                .map(|entry| StoredFile {
                    path: entry.procedure.path.clone(),
                    text: entry.source.clone(),
                })
                .collect(),
        };
        let write_error = |source| StateError::Write {
            path: self.path.clone(),
            source,
        };
        if let Some(parent) = self.path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(write_error)?;
        }
        let json = serde_json::to_vec_pretty(&stored)
            .map_err(|error| write_error(std::io::Error::other(error)))?;
        let temporary = self.path.with_extension("json.tmp");
        {
            use std::io::Write as _;
            let mut file = std::fs::File::create(&temporary).map_err(write_error)?;
            file.write_all(&json).map_err(write_error)?;
            // On disk before the rename, so a power cut leaves the old state or the new one.
            file.sync_all().map_err(write_error)?;
        }
        std::fs::rename(&temporary, &self.path).map_err(write_error)?;
        if let Some(parent) = self.path.parent().filter(|p| !p.as_os_str().is_empty())
            && let Ok(folder) = std::fs::File::open(parent)
        {
            let _ = folder.sync_all();
        }
        Ok(())
    }

    /// Moves an unreadable state file aside (never deleting it) so a fresh one can start.
    pub fn set_aside(&self) -> Result<PathBuf, StateError> {
        let aside = self.path.with_extension(format!(
            "corrupt-{}.json",
            Utc::now().format("%Y%m%dT%H%M%S")
        ));
        std::fs::rename(&self.path, &aside).map_err(|source| StateError::Write {
            path: aside.clone(),
            source,
        })?;
        Ok(aside)
    }
}
