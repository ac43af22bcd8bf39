//! What git history says about procedures: the snapshot at any revision, the changes between
//! two revisions (`procbot changes`), and each procedure's versions (`procbot history`).

use std::collections::BTreeMap;
use std::path::Path;

use chrono::NaiveDate;

use crate::core::change::{AckOverride, ProcedureChange, detect_changes};
use crate::core::procedure::ProcedureId;
use crate::core::snapshot::{CommitInfo, Snapshot, build_snapshot};
use crate::repo::git::{CommitTouch, Git, GitError};

/// A procedures folder inside a git repository.
#[derive(Clone, Debug)]
pub struct GitProcedures {
    pub git: Git,
    /// Where the procedures folder sits in the repository (`procedures/`, or empty).
    pub prefix: String,
    /// The directory file, relative to the procedures folder.
    pub directory: std::path::PathBuf,
}

impl GitProcedures {
    /// Opens the procedures folder `dir`, which must be inside a git repository.
    pub async fn open(dir: &Path, directory: &Path) -> Result<GitProcedures, GitError> {
        let git = Git::new(dir);
        let prefix = git.prefix().await?;
        Ok(GitProcedures {
            git,
            prefix,
            directory: directory.to_path_buf(),
        })
    }

    /// The snapshot at `commit`; `previous` lends last good versions to broken files.
    pub async fn snapshot_at(
        &self,
        commit: &str,
        today: NaiveDate,
        previous: Option<&Snapshot>,
    ) -> Result<Snapshot, GitError> {
        let info = self.git.commit_info(commit).await?;
        let files = self
            .git
            .read_tree(&info.id, &self.prefix, &self.directory)
            .await?;
        Ok(build_snapshot(
            files.procedures,
            files.directory,
            today,
            previous,
            Some(info),
        ))
    }

    /// `Ack-Required:` trailers per procedure, from the commits in `from..to` that touched
    /// its file (under its old or new path).
    pub async fn overrides(
        &self,
        from: Option<&str>,
        to: &str,
        old: &Snapshot,
        new: &Snapshot,
    ) -> Result<BTreeMap<ProcedureId, AckOverride>, GitError> {
        let touches = self.git.commits_between(from, to, &self.prefix).await?;
        Ok(overrides_from(&touches, old, new))
    }

    /// What would be announced between two revisions.
    pub async fn changes_between(
        &self,
        from: &str,
        to: &str,
        today: NaiveDate,
    ) -> Result<RevisionChanges, GitError> {
        let from_id = self.git.resolve(from).await?;
        let to_id = self.git.resolve(to).await?;
        let old = self.snapshot_at(&from_id, today, None).await?;
        let new = self.snapshot_at(&to_id, today, Some(&old)).await?;
        let overrides = self.overrides(Some(&from_id), &to_id, &old, &new).await?;
        let changes = detect_changes(&old, &new, &overrides);
        Ok(RevisionChanges {
            from: from_id,
            to: to_id,
            changes,
            new_snapshot: new,
        })
    }

    /// Every version of procedure `id` on the branch at `revision`, oldest first, following
    /// the procedure through renames (it is tracked by id, not by path).
    pub async fn history(
        &self,
        id: &ProcedureId,
        revision: &str,
        today: NaiveDate,
    ) -> Result<Vec<HistoryEntry>, GitError> {
        let commits = self.git.commits_touching(revision, &self.prefix).await?;
        let mut entries = Vec::new();
        let mut previous = Snapshot::default();
        let mut previous_commit: Option<String> = None;
        for commit in commits {
            let snapshot = self.snapshot_at(&commit, today, Some(&previous)).await?;
            let touches = self
                .git
                .commits_between(previous_commit.as_deref(), &commit, &self.prefix)
                .await?;
            // The trailers of every commit this first-parent step brings in (a merge brings
            // its branch's commits), as sync would see them.
            let overrides = overrides_from(&touches, &previous, &snapshot);

            for change in detect_changes(&previous, &snapshot, &overrides) {
                if &change.id == id
                    && let Some(info) = &snapshot.commit
                {
                    entries.push(HistoryEntry {
                        commit: info.clone(),
                        change,
                    });
                }
            }
            previous = snapshot;
            previous_commit = Some(commit);
        }
        Ok(entries)
    }
}

/// The result of `procbot changes`.
#[derive(Debug)]
pub struct RevisionChanges {
    pub from: String,
    pub to: String,
    pub changes: Vec<ProcedureChange>,
    pub new_snapshot: Snapshot,
}

/// One version of a procedure: the commit that made it and what changed.
#[derive(Clone, Debug)]
pub struct HistoryEntry {
    pub commit: CommitInfo,
    pub change: ProcedureChange,
}

/// Combines the trailers of the commits that touched each procedure's old or new path.
pub fn overrides_from(
    touches: &[CommitTouch],
    old: &Snapshot,
    new: &Snapshot,
) -> BTreeMap<ProcedureId, AckOverride> {
    let mut paths_of: BTreeMap<&str, Vec<&ProcedureId>> = BTreeMap::new();
    for snapshot in [old, new] {
        for (id, entry) in &snapshot.procedures {
            paths_of
                .entry(entry.procedure.path.as_str())
                .or_default()
                .push(id);
        }
    }
    let mut overrides: BTreeMap<ProcedureId, AckOverride> = BTreeMap::new();
    for touch in touches {
        let values: Vec<AckOverride> = touch
            .ack_required
            .iter()
            .filter_map(|v| AckOverride::parse(v))
            .collect();
        if values.is_empty() {
            continue;
        }
        for path in &touch.paths {
            for id in paths_of.get(path.as_str()).into_iter().flatten() {
                for value in &values {
                    let current = overrides.get(*id).copied();
                    overrides.insert((*id).clone(), AckOverride::combine(current, *value));
                }
            }
        }
    }
    overrides
}
