//! The `git` command, wrapped: procbot uses the operator's own git (and so their ssh keys and
//! credential helpers) rather than a git library. Every call has a timeout and never prompts.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use crate::core::check::{SourceContent, SourceFile};
use crate::core::snapshot::CommitInfo;
use crate::repo::{is_procedure_file, is_skipped_folder};

/// Network operations (clone, fetch) may take this long before they are abandoned.
const NETWORK_TIMEOUT: Duration = Duration::from_secs(180);
/// Local operations may take this long.
const LOCAL_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("could not run git ({0}); is git installed?")]
    Spawn(#[source] std::io::Error),
    #[error("`git {command}` failed: {stderr}")]
    Failed { command: String, stderr: String },
    #[error("`git {command}` took longer than {seconds} s and was stopped")]
    TimedOut { command: String, seconds: u64 },
    #[error("unexpected output from `git {command}`: {detail}")]
    Output { command: String, detail: String },
}

/// A git repository (work tree or bare) that commands run in.
#[derive(Clone, Debug)]
pub struct Git {
    dir: PathBuf,
}

/// The procedure files and directory file of one commit.
#[derive(Debug, Default)]
pub struct TreeFiles {
    pub procedures: Vec<SourceFile>,
    pub directory: Option<SourceFile>,
}

/// One commit in a range, with what it touched and its `Ack-Required:` trailers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommitTouch {
    pub id: String,
    /// Paths relative to the procedures folder.
    pub paths: Vec<String>,
    pub ack_required: Vec<String>,
}

/// The text of a command for messages, with any credentials in URLs removed.
fn command_text(args: &[&str]) -> String {
    args.iter()
        .map(|arg| redact_url(arg))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A URL with its user name and password removed, for logs and messages: operators may put
/// a token in `procedures.git_url`.
pub fn redact_url(text: &str) -> String {
    match url::Url::parse(text) {
        Ok(mut url) if !url.username().is_empty() || url.password().is_some() => {
            let _ = url.set_username("");
            let _ = url.set_password(None);
            url.to_string()
        }
        _ => text.to_string(),
    }
}

/// `git` with the environment every call shares: never prompt, plain messages.
fn git_command() -> Command {
    let mut command = Command::new("git");
    command
        // Never wait for a password or a host key on a terminal nobody watches.
        .env("GIT_TERMINAL_PROMPT", "0")
        .env(
            "GIT_SSH_COMMAND",
            std::env::var("GIT_SSH_COMMAND").unwrap_or_else(|_| "ssh -o BatchMode=yes".to_string()),
        )
        .env("LC_ALL", "C")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

/// The config key procbot sets in the clones it makes, so it never deletes anything else.
pub const MANAGED_MARKER: &str = "procbot.managed";

impl Git {
    pub fn new(dir: impl Into<PathBuf>) -> Git {
        Git { dir: dir.into() }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = git_command();
        command.arg("-C").arg(&self.dir).args(args);
        command
    }

    async fn run_command(
        mut command: Command,
        args: &[&str],
        timeout: Duration,
        input: Option<Vec<u8>>,
    ) -> Result<Vec<u8>, GitError> {
        if input.is_some() {
            command.stdin(Stdio::piped());
        }
        let mut child = command.spawn().map_err(GitError::Spawn)?;
        if let Some(input) = input
            && let Some(mut stdin) = child.stdin.take()
        {
            // Written from its own task so a large answer cannot block the request.
            tokio::spawn(async move {
                let _ = stdin.write_all(&input).await;
            });
        }
        let output = tokio::time::timeout(timeout, child.wait_with_output())
            .await
            .map_err(|_| GitError::TimedOut {
                command: command_text(args),
                seconds: timeout.as_secs(),
            })?
            .map_err(GitError::Spawn)?;
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr).trim().to_string();
            return Err(GitError::Failed {
                command: command_text(args),
                stderr: if stderr.is_empty() {
                    format!("exit status {}", output.status)
                } else {
                    stderr
                },
            });
        }
        Ok(output.stdout)
    }

    async fn run(&self, args: &[&str]) -> Result<Vec<u8>, GitError> {
        Self::run_command(self.command(args), args, LOCAL_TIMEOUT, None).await
    }

    async fn run_text(&self, args: &[&str]) -> Result<String, GitError> {
        let bytes = self.run(args).await?;
        String::from_utf8(bytes).map_err(|_| GitError::Output {
            command: command_text(args),
            detail: "not UTF-8".to_string(),
        })
    }

    /// `git clone --bare` of one branch into `dir`, which must not exist yet. The clone is
    /// made beside `dir` and renamed into place, so an interrupted clone never looks finished.
    pub async fn clone_bare(url: &str, branch: &str, dir: &Path) -> Result<Git, GitError> {
        let partial = dir.with_extension("partial");
        let _ = std::fs::remove_dir_all(&partial);
        let partial_text = partial.to_string_lossy().into_owned();
        let args = [
            "clone",
            "--bare",
            "--single-branch",
            "--branch",
            branch,
            "--",
            url,
            &partial_text,
        ];
        let mut command = git_command();
        command.args(args);
        Self::run_command(command, &args, NETWORK_TIMEOUT, None).await?;
        let partial_git = Git::new(&partial);
        // Forced updates so a force-push on the remote replaces our copy of the branch.
        let refspec = format!("+refs/heads/{branch}:refs/heads/{branch}");
        partial_git
            .run(&["config", "--replace-all", "remote.origin.fetch", &refspec])
            .await?;
        partial_git.run(&["config", MANAGED_MARKER, "true"]).await?;
        std::fs::rename(&partial, dir).map_err(|error| GitError::Failed {
            command: format!("rename {} {}", partial.display(), dir.display()),
            stderr: error.to_string(),
        })?;
        Ok(Git::new(dir))
    }

    /// A git config value of this repository, if set.
    pub async fn config_value(&self, key: &str) -> Option<String> {
        self.run_text(&["config", "--get", key])
            .await
            .ok()
            .map(|value| value.trim().to_string())
    }

    /// Fetches the remote's branches into the bare clone, following force-pushes.
    pub async fn fetch(&self) -> Result<(), GitError> {
        let args = ["fetch", "--prune", "--no-tags", "origin"];
        Self::run_command(self.command(&args), &args, NETWORK_TIMEOUT, None).await?;
        Ok(())
    }

    /// The configured URL of `origin`, if any.
    pub async fn origin_url(&self) -> Option<String> {
        self.config_value("remote.origin.url").await
    }

    /// The full commit id a revision names.
    pub async fn resolve(&self, revision: &str) -> Result<String, GitError> {
        let spec = format!("{revision}^{{commit}}");
        let id = self
            .run_text(&["rev-parse", "--verify", "--quiet", &spec])
            .await
            .map_err(|_| GitError::Failed {
                command: format!("rev-parse {revision}"),
                stderr: format!("`{revision}` is not a commit in {}", self.dir.display()),
            })?;
        Ok(id.trim().to_string())
    }

    /// Where `dir` sits inside its repository (`procedures/` for a subfolder, empty at the root).
    pub async fn prefix(&self) -> Result<String, GitError> {
        let bare = self
            .run_text(&["rev-parse", "--is-bare-repository"])
            .await?;
        if bare.trim() == "true" {
            return Ok(String::new());
        }
        Ok(self
            .run_text(&["rev-parse", "--show-prefix"])
            .await?
            .trim()
            .to_string())
    }

    pub async fn commit_info(&self, revision: &str) -> Result<CommitInfo, GitError> {
        let args = [
            "show",
            "-s",
            "--format=%H%x00%an%x00%ae%x00%cn%x00%ce%x00%ct%x00%B",
            revision,
        ];
        // Lossy: a commit message in another encoding must not stop the sync.
        let text = String::from_utf8_lossy(&self.run(&args).await?).into_owned();
        let fields: Vec<&str> = text.splitn(7, '\0').collect();
        let [
            id,
            author_name,
            author_email,
            committer_name,
            committer_email,
            time,
            message,
        ] = fields[..]
        else {
            return Err(GitError::Output {
                command: command_text(&args),
                detail: "fewer fields than asked for".to_string(),
            });
        };
        let seconds: i64 = time.trim().parse().map_err(|_| GitError::Output {
            command: command_text(&args),
            detail: format!("`{time}` is not a timestamp"),
        })?;
        Ok(CommitInfo {
            id: id.trim().to_string(),
            time: DateTime::<Utc>::from_timestamp(seconds, 0).unwrap_or_default(),
            author_name: author_name.to_string(),
            author_email: author_email.to_string(),
            committer_name: committer_name.to_string(),
            committer_email: committer_email.to_string(),
            message: message.trim_end().to_string(),
        })
    }

    /// The procedure files (and the directory file) under `prefix` at `commit`, with paths
    /// relative to `prefix`.
    pub async fn read_tree(
        &self,
        commit: &str,
        prefix: &str,
        directory: &Path,
    ) -> Result<TreeFiles, GitError> {
        let args = ["ls-tree", "-r", "-z", "--full-tree", commit];
        let listing = self.run(&args).await?;
        let directory_path = format!("{prefix}{}", directory.to_string_lossy().replace('\\', "/"));
        let mut wanted: Vec<(String, String, bool)> = Vec::new();
        for entry in listing.split(|b| *b == 0).filter(|e| !e.is_empty()) {
            let entry = String::from_utf8_lossy(entry);
            let Some((meta, path)) = entry.split_once('\t') else {
                continue;
            };
            let mut meta = meta.split_whitespace();
            let (Some(_mode), Some(kind), Some(object)) = (meta.next(), meta.next(), meta.next())
            else {
                continue;
            };
            if kind != "blob" {
                continue;
            }
            if path == directory_path {
                wanted.push((path.to_string(), object.to_string(), true));
                continue;
            }
            let Some(relative) = path.strip_prefix(prefix) else {
                continue;
            };
            let mut parts: Vec<&str> = relative.split('/').collect();
            let Some(name) = parts.pop() else { continue };
            if parts.iter().any(|folder| is_skipped_folder(folder)) || !is_procedure_file(name) {
                continue;
            }
            wanted.push((relative.to_string(), object.to_string(), false));
        }
        let objects: Vec<&str> = wanted
            .iter()
            .map(|(_, object, _)| object.as_str())
            .collect();
        let contents = self.read_blobs(&objects).await?;
        let mut files = TreeFiles::default();
        for ((path, _, is_directory), bytes) in wanted.into_iter().zip(contents) {
            if is_directory {
                let relative = path.strip_prefix(prefix).unwrap_or(&path).to_string();
                files.directory = Some(SourceFile {
                    path: relative,
                    content: SourceContent::Bytes(bytes),
                });
            } else {
                files.procedures.push(SourceFile {
                    path,
                    content: SourceContent::Bytes(bytes),
                });
            }
        }
        files.procedures.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(files)
    }

    /// Reads blobs in one `git cat-file --batch` call, in the order asked.
    async fn read_blobs(&self, objects: &[&str]) -> Result<Vec<Vec<u8>>, GitError> {
        if objects.is_empty() {
            return Ok(Vec::new());
        }
        let args = ["cat-file", "--batch"];
        let input: Vec<u8> = objects
            .iter()
            .flat_map(|o| format!("{o}\n").into_bytes())
            .collect();
        let output =
            Self::run_command(self.command(&args), &args, LOCAL_TIMEOUT, Some(input)).await?;
        let malformed = |detail: &str| GitError::Output {
            command: command_text(&args),
            detail: detail.to_string(),
        };
        let mut blobs = Vec::with_capacity(objects.len());
        let mut rest = output.as_slice();
        for _ in objects {
            let header_end = rest
                .iter()
                .position(|b| *b == b'\n')
                .ok_or_else(|| malformed("missing header"))?;
            let header = String::from_utf8_lossy(&rest[..header_end]).into_owned();
            let size: usize = header
                .rsplit(' ')
                .next()
                .and_then(|size| size.parse().ok())
                .ok_or_else(|| malformed(&format!("bad header `{header}`")))?;
            let start = header_end + 1;
            let end = start + size;
            if rest.len() < end {
                return Err(malformed("truncated object"));
            }
            blobs.push(rest[start..end].to_vec());
            rest = rest.get(end + 1..).unwrap_or(&[]);
        }
        Ok(blobs)
    }

    /// Commits reachable from `to` but not from `from`, oldest first, with the paths (relative
    /// to `prefix`) they changed and their `Ack-Required:` trailers.
    pub async fn commits_between(
        &self,
        from: Option<&str>,
        to: &str,
        prefix: &str,
    ) -> Result<Vec<CommitTouch>, GitError> {
        let range = match from {
            Some(from) => format!("{from}..{to}"),
            None => to.to_string(),
        };
        let ids = self.run_text(&["rev-list", "--reverse", &range]).await?;
        let mut touches = Vec::new();
        for id in ids.lines().filter(|line| !line.is_empty()) {
            let paths = self
                .run(&[
                    "diff-tree",
                    "--no-commit-id",
                    "--name-only",
                    "-r",
                    "-z",
                    "--root",
                    "--diff-merges=first-parent",
                    id,
                ])
                .await?;
            let paths: Vec<String> = paths
                .split(|b| *b == 0)
                .filter(|p| !p.is_empty())
                .filter_map(|p| {
                    String::from_utf8_lossy(p)
                        .strip_prefix(prefix)
                        .map(str::to_string)
                })
                .collect();
            let trailers = self
                .run_text(&[
                    "show",
                    "-s",
                    "--format=%(trailers:key=Ack-Required,valueonly,separator=%x1f)",
                    id,
                ])
                .await?;
            touches.push(CommitTouch {
                id: id.to_string(),
                paths,
                ack_required: trailers
                    .split('\u{1f}')
                    .map(|value| value.trim().to_string())
                    .filter(|value| !value.is_empty())
                    .collect(),
            });
        }
        Ok(touches)
    }

    /// Commits that touched `prefix`, oldest first (first parents only: the branch's own
    /// story, as reviewers merged it).
    pub async fn commits_touching(
        &self,
        revision: &str,
        prefix: &str,
    ) -> Result<Vec<String>, GitError> {
        let pathspec = if prefix.is_empty() {
            ".".to_string()
        } else {
            format!(":(top){prefix}")
        };
        let ids = self
            .run_text(&[
                "rev-list",
                "--reverse",
                "--first-parent",
                revision,
                "--",
                &pathspec,
            ])
            .await?;
        Ok(ids
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_removed_from_urls_in_messages() {
        assert_eq!(
            redact_url("https://oauth2:glpat-secret@git.example.com/acme/procedures.git"),
            "https://git.example.com/acme/procedures.git"
        );
        assert_eq!(
            redact_url("git@host:acme/procedures.git"),
            "git@host:acme/procedures.git"
        );
        let text = command_text(&["clone", "--", "https://user:hunter2@example.com/r.git"]);
        assert!(!text.contains("hunter2"), "{text}");
    }
}
