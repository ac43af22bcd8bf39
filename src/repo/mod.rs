//! Reading a procedures repository from disk: which files are procedures, and their bytes.
//!
//! A repository is a plain folder or a git repository (read through the `git` command);
//! `sync` keeps the served snapshot current and detects what changed.

pub mod git;
pub mod history;
pub mod state;
pub mod sync;

use std::path::{Path, PathBuf};

use crate::core::check::{SourceContent, SourceFile};

/// The name of the optional directory file at the repository root.
pub const DIRECTORY_FILE: &str = "directory.yaml";

#[derive(Debug, thiserror::Error)]
pub enum FolderError {
    #[error("{path} does not exist")]
    NotFound { path: PathBuf },
    #[error("{path} is not a folder")]
    NotAFolder { path: PathBuf },
    #[error("{path} could not be read: {source}")]
    Unreadable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The procedure files and the directory of a repository, read from disk.
#[derive(Clone, Debug, Default)]
pub struct RepositoryFiles {
    pub procedures: Vec<SourceFile>,
    pub directory: Option<SourceFile>,
}

/// Whether a file name is a procedure: Markdown, not a README.
pub fn is_procedure_file(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    (lower.ends_with(".md") || lower.ends_with(".markdown"))
        && !lower.starts_with("readme")
        && !name.starts_with('.')
}

/// Folders starting with `.` or `_` hold no procedures (`.git`, `_drafts`, `_templates`).
pub fn is_skipped_folder(name: &str) -> bool {
    name.starts_with('.') || name.starts_with('_')
}

fn read(path: &Path, relative: String) -> SourceFile {
    let content = match std::fs::read(path) {
        Ok(bytes) => SourceContent::Bytes(bytes),
        Err(error) => SourceContent::Unreadable(error.to_string()),
    };
    SourceFile {
        path: relative,
        content,
    }
}

/// Reads every procedure below `root`, recursively, in path order. `directory` is the
/// directory file relative to `root` (normally [`DIRECTORY_FILE`]); a missing one is fine.
/// Folder symlinks are not followed, so a link loop cannot trap the walk.
pub fn read_folder(root: &Path, directory: &Path) -> Result<RepositoryFiles, FolderError> {
    let metadata = std::fs::metadata(root).map_err(|source| match source.kind() {
        std::io::ErrorKind::NotFound => FolderError::NotFound {
            path: root.to_path_buf(),
        },
        _ => FolderError::Unreadable {
            path: root.to_path_buf(),
            source,
        },
    })?;
    if !metadata.is_dir() {
        return Err(FolderError::NotAFolder {
            path: root.to_path_buf(),
        });
    }

    let mut files = RepositoryFiles::default();
    let mut pending: Vec<(PathBuf, String)> = vec![(root.to_path_buf(), String::new())];
    while let Some((folder, prefix)) = pending.pop() {
        let entries = std::fs::read_dir(&folder).map_err(|source| FolderError::Unreadable {
            path: folder.clone(),
            source,
        })?;
        for entry in entries {
            let entry = entry.map_err(|source| FolderError::Unreadable {
                path: folder.clone(),
                source,
            })?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let relative = format!("{prefix}{name}");
            let Ok(file_type) = entry.file_type() else {
                continue;
            };
            if file_type.is_dir() {
                if !is_skipped_folder(&name) {
                    pending.push((entry.path(), format!("{relative}/")));
                }
            } else if is_procedure_file(&name)
                && (file_type.is_file() || (file_type.is_symlink() && entry.path().is_file()))
            {
                files.procedures.push(read(&entry.path(), relative));
            }
        }
    }
    files.procedures.sort_by(|a, b| a.path.cmp(&b.path));

    let directory_path = root.join(directory);
    if directory_path.is_file() {
        let relative = directory.to_string_lossy().replace('\\', "/");
        files.directory = Some(read(&directory_path, relative));
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readmes_and_hidden_or_underscore_folders_are_skipped() {
        let root = tempfile::tempdir().unwrap();
        let write = |path: &str, text: &str| {
            let full = root.path().join(path);
            std::fs::create_dir_all(full.parent().unwrap()).unwrap();
            std::fs::write(full, text).unwrap();
        };
        write("a.md", "# A");
        write("README.md", "# readme");
        write("ops/b.md", "# B");
        write("ops/Readme.markdown", "# readme");
        write(".git/c.md", "# C");
        write("_drafts/d.md", "# D");
        write("notes.txt", "text");
        write("directory.yaml", "teams: {}");
        let files = read_folder(root.path(), Path::new(DIRECTORY_FILE)).unwrap();
        let paths: Vec<&str> = files.procedures.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["a.md", "ops/b.md"]);
        assert_eq!(files.directory.unwrap().path, "directory.yaml");
    }

    #[test]
    fn a_missing_root_is_an_error() {
        let error =
            read_folder(Path::new("/nonexistent/procbot"), Path::new(DIRECTORY_FILE)).unwrap_err();
        assert!(matches!(error, FolderError::NotFound { .. }));
    }
}
