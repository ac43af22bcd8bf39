//! The last announced snapshot, kept so change detection survives restarts: in the database
//! (shared by every instance on it; what `serve` uses) or in a file.
//!
//! The stored form holds the served files' text and the commit they came from; loading parses
//! them again, so it never drifts from what the parser understands.

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
    #[error("the announced state in the database: {0}")]
    Store(#[from] crate::store::StoreError),
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

/// Where the last announced snapshot is kept.
#[derive(Clone, Debug)]
enum Keeping {
    File(PathBuf),
    /// In the database under `name`; `import` is a state file from before, read once when
    /// the database has none yet.
    Store {
        store: crate::store::Store,
        name: String,
        import: PathBuf,
    },
}

/// The last announced snapshot: loaded at start, saved after each announced sync.
#[derive(Clone, Debug)]
pub struct AnnouncedState {
    keeping: Keeping,
}

/// The name the procedures' announced state has in the database.
pub const STORE_NAME: &str = "procedures";

impl AnnouncedState {
    /// Kept in a file.
    pub fn new(path: impl Into<PathBuf>) -> AnnouncedState {
        AnnouncedState {
            keeping: Keeping::File(path.into()),
        }
    }

    /// Kept in the database (so several instances share it); the state file of an earlier
    /// procbot, if there is one, is read once to carry on from it.
    pub fn in_store(store: crate::store::Store, import: impl Into<PathBuf>) -> AnnouncedState {
        AnnouncedState {
            keeping: Keeping::Store {
                store,
                name: STORE_NAME.to_string(),
                import: import.into(),
            },
        }
    }

    /// The database it is kept in, if any.
    pub fn store(&self) -> Option<&crate::store::Store> {
        match &self.keeping {
            Keeping::Store { store, .. } => Some(store),
            Keeping::File(_) => None,
        }
    }

    fn label(&self) -> PathBuf {
        match &self.keeping {
            Keeping::File(path) => path.clone(),
            Keeping::Store { name, .. } => {
                PathBuf::from(format!("database announced_state `{name}`"))
            }
        }
    }

    /// The last announced snapshot, or `None` on first start.
    pub async fn load(
        &self,
        today: NaiveDate,
        directory_path: &str,
    ) -> Result<Option<Snapshot>, StateError> {
        let text = match &self.keeping {
            Keeping::File(path) => read_file(path)?,
            Keeping::Store {
                store,
                name,
                import,
            } => match store.announced_state(name).await? {
                Some(text) => Some(text),
                None => read_file(import)?,
            },
        };
        match text {
            Some(text) => decode(&text, &self.label(), today, directory_path).map(Some),
            None => Ok(None),
        }
    }

    /// Saves `snapshot` as the last announced one: a database row replaced in one statement,
    /// or a temporary file renamed, so a crash leaves the old state or the new one, never
    /// half of each.
    pub async fn save(&self, snapshot: &Snapshot, directory_path: &str) -> Result<(), StateError> {
        let json = encode(snapshot, directory_path);
        match &self.keeping {
            Keeping::File(path) => write_file(path, json.as_bytes()),
            Keeping::Store { store, name, .. } => {
                store.save_announced_state(Utc::now(), name, &json).await?;
                Ok(())
            }
        }
    }

    /// Moves an unreadable state aside (never deleting it) so a fresh one can start; says
    /// where it went.
    pub async fn set_aside(&self) -> Result<PathBuf, StateError> {
        let stamp = Utc::now().format("%Y%m%dT%H%M%S");
        match &self.keeping {
            Keeping::File(path) => {
                let aside = path.with_extension(format!("corrupt-{stamp}.json"));
                std::fs::rename(path, &aside).map_err(|source| StateError::Write {
                    path: aside.clone(),
                    source,
                })?;
                Ok(aside)
            }
            Keeping::Store {
                store,
                name,
                import,
            } => {
                let aside = format!("{name}.corrupt-{stamp}");
                store.set_announced_state_aside(name, &aside).await?;
                // An old state file that could not be read is moved aside too.
                if import.is_file() {
                    let moved = import.with_extension(format!("corrupt-{stamp}.json"));
                    let _ = std::fs::rename(import, moved);
                }
                Ok(PathBuf::from(format!("database announced_state `{aside}`")))
            }
        }
    }
}

/// The stored form of `snapshot`, as JSON, written from borrowed text (no copy of every file
/// on the way).
fn encode(snapshot: &Snapshot, directory_path: &str) -> String {
    #[derive(Serialize)]
    struct File<'a> {
        path: &'a str,
        text: &'a str,
    }
    #[derive(Serialize)]
    struct Commit<'a> {
        id: &'a str,
        time: DateTime<Utc>,
        author_name: &'a str,
        author_email: &'a str,
        committer_name: &'a str,
        committer_email: &'a str,
        message: &'a str,
    }
    #[derive(Serialize)]
    struct Stored<'a> {
        format: u32,
        pending_acknowledgement: Vec<&'a str>,
        commit: Option<Commit<'a>>,
        directory: Option<File<'a>>,
        files: Vec<File<'a>>,
    }
    let stored = Stored {
        format: FORMAT_VERSION,
        pending_acknowledgement: snapshot
            .pending_acknowledgement
            .iter()
            .map(|id| id.as_str())
            .collect(),
        commit: snapshot.commit.as_ref().map(|commit| Commit {
            id: &commit.id,
            time: commit.time,
            author_name: &commit.author_name,
            author_email: &commit.author_email,
            committer_name: &commit.committer_name,
            committer_email: &commit.committer_email,
            message: &commit.message,
        }),
        directory: snapshot.directory_source.as_ref().map(|text| File {
            path: directory_path,
            text,
        }),
        files: snapshot
            .procedures
            .values()
            .map(|entry| File {
                path: &entry.procedure.path,
                text: &entry.source,
            })
            .collect(),
    };
    // Plain data of strings and numbers: serialising it cannot fail.
    serde_json::to_string(&stored).unwrap_or_default()
}

fn write_file(path: &Path, json: &[u8]) -> Result<(), StateError> {
    let write_error = |source| StateError::Write {
        path: path.to_path_buf(),
        source,
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(write_error)?;
    }
    let temporary = path.with_extension("json.tmp");
    {
        use std::io::Write as _;
        let mut file = std::fs::File::create(&temporary).map_err(write_error)?;
        file.write_all(json).map_err(write_error)?;
        // On disk before the rename, so a power cut leaves the old state or the new one.
        file.sync_all().map_err(write_error)?;
    }
    std::fs::rename(&temporary, path).map_err(write_error)?;
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty())
        && let Ok(folder) = std::fs::File::open(parent)
    {
        let _ = folder.sync_all();
    }
    Ok(())
}

fn read_file(path: &Path) -> Result<Option<String>, StateError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(StateError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// The snapshot a stored state describes.
fn decode(
    text: &str,
    path: &Path,
    today: NaiveDate,
    directory_path: &str,
) -> Result<Snapshot, StateError> {
    let mut stored: StoredSnapshot =
        serde_json::from_str(text).map_err(|error| StateError::Corrupt {
            path: path.to_path_buf(),
            message: error.to_string(),
        })?;
    if stored.format != FORMAT_VERSION {
        return Err(StateError::Corrupt {
            path: path.to_path_buf(),
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
    Ok(snapshot)
}
