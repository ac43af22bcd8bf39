//! Importers that bring procedures from other tools into procbot's format.

pub mod comply;

use std::path::{Path, PathBuf};

use crate::import::comply::{Conversion, ImportOptions, convert};
use crate::repo::is_procedure_file;

/// The outcome for one source file.
#[derive(Debug)]
pub struct ImportedFile {
    pub source: PathBuf,
    pub result: Result<(PathBuf, Conversion), String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{path} could not be read: {source}")]
    ReadSource {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} could not be created: {source}")]
    CreateDestination {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Converts every comply procedure in `source` (a comply project, whose procedures are in
/// `procedures/`, or that folder itself) into `destination`. Existing files are kept unless
/// `overwrite` is set.
pub fn import_comply(
    source: &Path,
    destination: &Path,
    options: &ImportOptions,
    overwrite: bool,
) -> Result<Vec<ImportedFile>, ImportError> {
    let folder = if source.join("procedures").is_dir() {
        source.join("procedures")
    } else {
        source.to_path_buf()
    };
    let entries = std::fs::read_dir(&folder).map_err(|error| ImportError::ReadSource {
        path: folder.clone(),
        source: error,
    })?;
    // comply reads only the files directly inside `procedures/`.
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .filter(|entry| entry.file_type().is_ok_and(|t| t.is_file()))
        .filter(|entry| is_procedure_file(&entry.file_name().to_string_lossy()))
        .map(|entry| entry.path())
        .collect();
    files.sort();
    std::fs::create_dir_all(destination).map_err(|error| ImportError::CreateDestination {
        path: destination.to_path_buf(),
        source: error,
    })?;

    let mut imported = Vec::new();
    let mut written_ids = std::collections::BTreeSet::new();
    for path in files {
        let file_name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let result = std::fs::read(&path)
            .map_err(|error| format!("could not read the file: {error}"))
            .and_then(|bytes| {
                String::from_utf8(bytes).map_err(|_| "the file is not UTF-8 text".to_string())
            })
            .and_then(|text| convert(&file_name, &text, options))
            .and_then(|conversion| {
                if !written_ids.insert(conversion.id.clone()) {
                    return Err(format!(
                        "another file already has the id `{}`",
                        conversion.id
                    ));
                }
                let target = destination.join(format!("{}.md", conversion.id));
                if target.exists() && !overwrite {
                    return Err(format!(
                        "{} already exists (use --force to replace it)",
                        target.display()
                    ));
                }
                std::fs::write(&target, &conversion.markdown)
                    .map_err(|error| format!("could not write {}: {error}", target.display()))?;
                Ok((target, conversion))
            });
        imported.push(ImportedFile {
            source: path,
            result,
        });
    }
    Ok(imported)
}
