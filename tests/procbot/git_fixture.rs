//! Real git repositories for tests: a bare "remote" reached over file:// and a working clone.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::helpers::procedure_text;

/// Runs git in `dir` with a fixed identity and no global configuration surprises.
pub(crate) fn git(dir: &Path, args: &[&str]) -> String {
    let output = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args([
            "-c",
            "user.name=Ida Lead",
            "-c",
            "user.email=it-lead@example.com",
        ])
        .args([
            "-c",
            "commit.gpgsign=false",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_DATE", "2026-11-02T10:00:00Z")
        .env("GIT_COMMITTER_DATE", "2026-11-02T10:00:00Z")
        .output()
        .expect("git runs");
    assert!(
        output.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// A bare remote plus a working clone whose procedures live in `procedures/` (or at the root
/// of the branch, as in a repository of procedures only).
pub(crate) struct GitFixture {
    pub(crate) root: tempfile::TempDir,
    subfolder: &'static str,
}

impl GitFixture {
    /// Procedures in `procedures/`, as in this project's own repository.
    pub(crate) fn new() -> GitFixture {
        GitFixture::with_subfolder("procedures/")
    }

    /// Procedures at the root of the branch.
    pub(crate) fn at_root() -> GitFixture {
        GitFixture::with_subfolder("")
    }

    fn with_subfolder(subfolder: &'static str) -> GitFixture {
        let root = tempfile::tempdir().unwrap();
        git(root.path(), &["init", "--bare", "-q", "remote.git"]);
        git(root.path(), &["init", "-q", "work"]);
        let fixture = GitFixture { root, subfolder };
        git(
            &fixture.work(),
            &["remote", "add", "origin", &fixture.remote_url()],
        );
        std::fs::create_dir_all(fixture.procedures()).unwrap();
        fixture
    }

    pub(crate) fn work(&self) -> PathBuf {
        self.root.path().join("work")
    }

    pub(crate) fn procedures(&self) -> PathBuf {
        self.work().join(self.subfolder)
    }

    pub(crate) fn remote(&self) -> PathBuf {
        self.root.path().join("remote.git")
    }

    pub(crate) fn remote_url(&self) -> String {
        format!("file://{}", self.remote().display())
    }

    pub(crate) fn write(&self, relative: &str, text: &str) {
        let path = self.procedures().join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    pub(crate) fn remove(&self, relative: &str) {
        git(
            &self.work(),
            &["rm", "-q", &format!("{}{relative}", self.subfolder)],
        );
    }

    pub(crate) fn rename(&self, from: &str, to: &str) {
        let target = self.procedures().join(to);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        let subfolder = self.subfolder;
        git(
            &self.work(),
            &[
                "mv",
                &format!("{subfolder}{from}"),
                &format!("{subfolder}{to}"),
            ],
        );
    }

    /// Commits everything; returns the commit id.
    pub(crate) fn commit(&self, message: &str) -> String {
        git(&self.work(), &["add", "-A"]);
        git(
            &self.work(),
            &["commit", "-q", "--allow-empty", "-m", message],
        );
        git(&self.work(), &["rev-parse", "HEAD"])
    }

    pub(crate) fn push(&self) {
        git(
            &self.work(),
            &["push", "-q", "origin", "HEAD:refs/heads/main"],
        );
    }

    /// Commits and pushes; returns the commit id.
    pub(crate) fn publish(&self, message: &str) -> String {
        let commit = self.commit(message);
        self.push();
        commit
    }

    /// Replaces the branch's whole history with one new commit of the current files.
    pub(crate) fn rewrite_history(&self, message: &str) -> String {
        git(&self.work(), &["checkout", "-q", "--orphan", "rewritten"]);
        let commit = self.commit(message);
        git(
            &self.work(),
            &["push", "-q", "--force", "origin", "HEAD:refs/heads/main"],
        );
        commit
    }
}

/// A procedure with the given id, version and steps.
pub(crate) fn procedure(id: &str, version: &str, steps: &[&str]) -> String {
    let fields: Vec<(String, String)> = [
        ("id", id),
        ("title", &format!("Procedure {id}")),
        ("owner", "it-lead@example.com"),
        ("audience", "[it-ops]"),
        ("version", version),
        ("last_reviewed", "2026-06-01"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let steps: String = steps
        .iter()
        .enumerate()
        .map(|(i, s)| format!("{}. {s}\n", i + 1))
        .collect();
    procedure_text(
        &fields,
        &format!("# Procedure {id}\n\n## Purpose\nWhy {id} matters.\n\n## Steps\n{steps}"),
    )
}
