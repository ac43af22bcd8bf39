//! Keeping the served snapshot current: read the folder or fetch the git remote, build the new
//! snapshot, detect what changed since the last announced one, and remember it.
//!
//! Failures never take the bot down: the last good snapshot stays served, retries back off
//! exponentially (capped), an outage is reported once when it starts and once when it ends.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDate;
use tokio::sync::{Notify, watch};

use crate::clock::Clock;
use crate::core::change::{ProcedureChange, detect_changes, pending_acknowledgements};
use crate::core::directory::RoleMembers;
use crate::core::snapshot::{Snapshot, build_snapshot};
use crate::repo::git::{Git, MANAGED_MARKER};
use crate::repo::history::GitProcedures;
use crate::repo::read_folder;
use crate::repo::state::AnnouncedState;

/// Process-wide counts for `/metrics`: syncs attempted, syncs failed, changes detected.
pub static SYNCS_TOTAL: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
pub static SYNC_FAILURES_TOTAL: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
pub static CHANGES_TOTAL: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// The first retry after a failure waits this long; each further one doubles it.
const FIRST_RETRY: Duration = Duration::from_secs(5);
/// Retries never wait longer than this.
const MAX_RETRY: Duration = Duration::from_secs(600);
/// Pushes often come in bursts; wait this long after a webhook before syncing.
pub const WEBHOOK_DEBOUNCE: Duration = Duration::from_secs(2);

/// Where procedures come from.
#[derive(Clone, Debug)]
pub enum Source {
    /// A local folder, re-read on every sync.
    Folder { path: PathBuf, directory: PathBuf },
    /// A git remote, cloned (bare) into `checkout` and fetched on every sync.
    Git {
        url: String,
        branch: String,
        checkout: PathBuf,
        directory: PathBuf,
    },
}

impl Source {
    fn directory(&self) -> &Path {
        match self {
            Source::Folder { directory, .. } | Source::Git { directory, .. } => directory,
        }
    }

    fn describe(&self) -> String {
        match self {
            Source::Folder { path, .. } => path.display().to_string(),
            Source::Git { url, branch, .. } => {
                format!("{} ({branch})", crate::repo::git::redact_url(url))
            }
        }
    }
}

/// Records what a sync found (announcements, people to ask) before the announced snapshot
/// moves on. If it fails, the snapshot is not saved and the next sync tries again.
pub trait Announcer: Send + Sync {
    fn announce<'a>(
        &'a self,
        previous: Option<&'a Snapshot>,
        snapshot: &'a Snapshot,
        changes: &'a [ProcedureChange],
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), String>> + Send + 'a>>;
}

/// What one sync did.
#[derive(Debug)]
pub enum SyncOutcome {
    /// First start: the current snapshot became the baseline; nothing was announced.
    Baseline {
        procedures: usize,
    },
    Unchanged,
    Changed(Vec<ProcedureChange>),
    Failed {
        error: String,
        /// True for the failure that started an outage (the one that is reported).
        first_in_outage: bool,
    },
}

#[derive(Debug)]
struct Outage {
    attempts: u32,
    since: chrono::DateTime<chrono::Utc>,
}

/// Owns the served snapshot and the last announced one.
pub struct Syncer {
    source: Source,
    state: AnnouncedState,
    clock: Arc<dyn Clock>,
    time_zone: chrono_tz::Tz,
    poll_every: Duration,
    /// Shared with what is served when they are the same (no second copy of every file).
    announced: Option<Arc<Snapshot>>,
    served: watch::Sender<Option<Arc<Snapshot>>>,
    outage: Option<Outage>,
    git: Option<GitProcedures>,
    /// Whether a sync has been attempted since start.
    synced_once: bool,
    announcer: Option<Arc<dyn Announcer>>,
    /// Whether the announcer has seen a snapshot since start: the first sync always asks it,
    /// so a fresh or restored database catches up with the announced state.
    announcer_caught_up: bool,
    /// This instance's name in the announce lock (with a shared announced state).
    instance: String,
    /// Who holds the Discord roles teams are mapped to, as the Discord adapter last read it,
    /// and the holders the last served snapshot was built with.
    role_members: Option<Arc<std::sync::RwLock<RoleMembers>>>,
    applied_roles: RoleMembers,
}

/// The lock under which one instance at a time compares and announces.
const ANNOUNCE_LOCK: &str = "announce";
/// How long the lock holds without being renewed: a holder that dies frees it this soon.
const ANNOUNCE_LOCK_TTL: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
enum SyncError {
    #[error(transparent)]
    Git(#[from] crate::repo::git::GitError),
    #[error(transparent)]
    Folder(#[from] crate::repo::FolderError),
    #[error(transparent)]
    State(#[from] crate::repo::state::StateError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("{0}")]
    Other(String),
}

impl Syncer {
    pub fn new(
        source: Source,
        state: AnnouncedState,
        clock: Arc<dyn Clock>,
        time_zone: chrono_tz::Tz,
        poll_every: Duration,
    ) -> Syncer {
        let (served, _) = watch::channel(None);
        Syncer {
            source,
            state,
            clock,
            time_zone,
            poll_every,
            announced: None,
            served,
            outage: None,
            git: None,
            synced_once: false,
            announcer: None,
            announcer_caught_up: false,
            instance: "procbot".to_string(),
            role_members: None,
            applied_roles: RoleMembers::new(),
        }
    }

    /// Builds every snapshot's directory with the current holders of the Discord roles teams
    /// are mapped to (a team listing no members has the role's holders as members).
    pub fn with_role_members(mut self, holders: Arc<std::sync::RwLock<RoleMembers>>) -> Syncer {
        self.role_members = Some(holders);
        self
    }

    fn current_roles(&self) -> RoleMembers {
        self.role_members
            .as_ref()
            .map(|h| {
                h.read()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .clone()
            })
            .unwrap_or_default()
    }

    /// Names this instance in the announce lock that instances sharing a database take.
    pub fn with_instance(mut self, instance: impl Into<String>) -> Syncer {
        self.instance = instance.into();
        self
    }

    /// Whether this instance may announce now: always when the announced state is its own;
    /// with a shared one, when it holds (or has just renewed) the announce lock.
    async fn hold_announce_lock(&self) -> Result<bool, SyncError> {
        let Some(store) = self.state.store() else {
            return Ok(true);
        };
        let ttl =
            chrono::Duration::from_std(ANNOUNCE_LOCK_TTL).unwrap_or(chrono::Duration::seconds(60));
        Ok(store
            .try_lock(ANNOUNCE_LOCK, &self.instance, self.clock.now(), ttl)
            .await?)
    }

    async fn release_announce_lock(&self) {
        if let Some(store) = self.state.store()
            && let Err(error) = store.release_lock(ANNOUNCE_LOCK, &self.instance).await
        {
            tracing::warn!(%error, "could not release the announce lock; it expires on its own");
        }
    }

    /// Records each sync's outcome through `announcer` before the announced snapshot is saved.
    pub fn with_announcer(mut self, announcer: Arc<dyn Announcer>) -> Syncer {
        self.announcer = Some(announcer);
        self
    }

    async fn run_announcer(
        announcer: Option<&Arc<dyn Announcer>>,
        previous: Option<&Snapshot>,
        snapshot: &Snapshot,
        changes: &[ProcedureChange],
    ) -> Result<(), SyncError> {
        if let Some(announcer) = announcer {
            announcer
                .announce(previous, snapshot, changes)
                .await
                .map_err(|error| SyncError::Other(format!("recording announcements: {error}")))?;
        }
        Ok(())
    }

    /// The served snapshot: `None` until the first successful sync (or stored state).
    pub fn subscribe(&self) -> watch::Receiver<Option<Arc<Snapshot>>> {
        self.served.subscribe()
    }

    pub fn served(&self) -> Option<Arc<Snapshot>> {
        self.served.borrow().clone()
    }

    fn today(&self) -> NaiveDate {
        self.clock.now().with_timezone(&self.time_zone).date_naive()
    }

    fn directory_path(&self) -> String {
        self.source.directory().to_string_lossy().replace('\\', "/")
    }

    /// Loads the last announced snapshot and serves it until the first sync succeeds. An
    /// unreadable state is moved aside, never deleted.
    pub async fn restore(&mut self) {
        match self.state.load(self.today(), &self.directory_path()).await {
            Ok(Some(snapshot)) => {
                tracing::info!(
                    procedures = snapshot.procedures.len(),
                    commit = snapshot.commit.as_ref().map(|c| c.short_id().to_string()),
                    "restored the last announced snapshot"
                );
                let snapshot = Arc::new(snapshot);
                self.served.send_replace(Some(snapshot.clone()));
                self.announced = Some(snapshot);
            }
            Ok(None) => {}
            Err(error) => {
                let aside = self.state.set_aside().await;
                tracing::error!(%error, aside = ?aside.ok(), "the announced state could not be read; it was moved aside and the next sync starts a new baseline");
            }
        }
    }

    /// How long to wait before the next sync: the poll interval, or the backoff in an outage.
    pub fn next_delay(&self) -> Duration {
        match &self.outage {
            None => self.poll_every,
            Some(outage) => backoff_delay(outage.attempts).min(self.poll_every.max(FIRST_RETRY)),
        }
    }

    pub fn in_outage(&self) -> bool {
        self.outage.is_some()
    }

    /// One sync: fetch or read, build, compare, remember.
    pub async fn sync_once(&mut self) -> SyncOutcome {
        use std::sync::atomic::Ordering::Relaxed;
        self.synced_once = true;
        SYNCS_TOTAL.fetch_add(1, Relaxed);
        match self.try_sync().await {
            Ok(outcome) => {
                if let SyncOutcome::Changed(changes) = &outcome {
                    CHANGES_TOTAL.fetch_add(changes.len() as u64, Relaxed);
                }
                if let Some(outage) = self.outage.take() {
                    tracing::info!(
                        source = %self.source.describe(),
                        attempts = outage.attempts,
                        down_since = %outage.since,
                        "procedures source reachable again"
                    );
                }
                outcome
            }
            Err(error) => {
                SYNC_FAILURES_TOTAL.fetch_add(1, Relaxed);
                let error = error.to_string();
                let first_in_outage = self.outage.is_none();
                let outage = self.outage.get_or_insert(Outage {
                    attempts: 0,
                    since: self.clock.now(),
                });
                outage.attempts += 1;
                let retry_in = backoff_delay(outage.attempts).min(self.poll_every.max(FIRST_RETRY));
                if first_in_outage {
                    tracing::error!(
                        source = %self.source.describe(),
                        %error,
                        retry_in_seconds = retry_in.as_secs(),
                        "cannot sync procedures; serving the last good version and retrying"
                    );
                } else {
                    tracing::debug!(%error, attempts = outage.attempts, "sync still failing");
                }
                SyncOutcome::Failed {
                    error,
                    first_in_outage,
                }
            }
        }
    }

    async fn try_sync(&mut self) -> Result<SyncOutcome, SyncError> {
        // Instances sharing a database announce one at a time, each from the state the last
        // one saved.
        let may_announce = self.hold_announce_lock().await?;
        let outcome = self.try_sync_holding(may_announce).await;
        if may_announce {
            self.release_announce_lock().await;
        }
        outcome
    }

    async fn try_sync_holding(&mut self, may_announce: bool) -> Result<SyncOutcome, SyncError> {
        if may_announce && self.state.store().is_some() {
            let shared = self
                .state
                .load(self.today(), &self.directory_path())
                .await?;
            if let Some(shared) = shared {
                self.announced = Some(Arc::new(shared));
            }
        }
        let today = self.today();
        let previous = self.served();
        let (snapshot, overrides) = match self.source.clone() {
            Source::Folder { path, directory } => {
                let files = tokio::task::spawn_blocking(move || read_folder(&path, &directory))
                    .await
                    .map_err(|error| {
                        SyncError::Other(format!("the folder reader stopped: {error}"))
                    })??;
                let snapshot = build_snapshot(
                    files.procedures,
                    files.directory,
                    today,
                    previous.as_deref(),
                    None,
                );
                (snapshot, Default::default())
            }
            Source::Git {
                url,
                branch,
                checkout,
                directory,
            } => {
                let procedures = self
                    .open_clone(&url, &branch, &checkout, &directory)
                    .await?;
                procedures.git.fetch().await?;
                let head = procedures
                    .git
                    .resolve(&format!("refs/heads/{branch}"))
                    .await?;
                // Nothing to do only when the head is the commit already announced and served
                // (a served but unannounced snapshot, after a failed save, must be retried).
                let announced_head = self
                    .announced
                    .as_ref()
                    .and_then(|a| a.commit.as_ref())
                    .map(|c| c.id.as_str());
                let served_head = previous
                    .as_ref()
                    .and_then(|s| s.commit.as_ref())
                    .map(|c| c.id.as_str());
                if self.announcer_caught_up
                    && announced_head == Some(head.as_str())
                    && served_head == Some(head.as_str())
                    && self.current_roles() == self.applied_roles
                {
                    return Ok(SyncOutcome::Unchanged);
                }
                let snapshot = procedures
                    .snapshot_at(&head, today, previous.as_deref())
                    .await?;
                let overrides = match self.announced.as_ref().and_then(|a| a.commit.as_ref()) {
                    Some(announced_commit) => {
                        let announced = self.announced.clone().unwrap_or_default();
                        let announced = announced.as_ref();
                        match procedures
                            .overrides(Some(&announced_commit.id), &head, announced, &snapshot)
                            .await
                        {
                            Ok(overrides) => overrides,
                            Err(error) => {
                                // A force-push can leave the announced commit unknown to git.
                                tracing::warn!(%error, "commit trailers between the announced and the new commit could not be read; materiality follows versions only");
                                Default::default()
                            }
                        }
                    }
                    None => Default::default(),
                };
                (snapshot, overrides)
            }
        };

        let report_problems = previous
            .as_ref()
            .is_none_or(|p| p.diagnostics != snapshot.diagnostics);
        if report_problems {
            for diagnostic in &snapshot.diagnostics {
                if diagnostic.is_error() {
                    tracing::warn!(file = %diagnostic.file, line = diagnostic.position.line, code = diagnostic.code.code(), "{}", diagnostic.message);
                }
            }
            for entry in snapshot
                .procedures
                .values()
                .filter(|e| e.kept_despite_errors)
            {
                tracing::warn!(procedure = %entry.procedure.id, file = %entry.procedure.path, "the new version has errors; the last good version stays served");
            }
        }

        let mut snapshot = snapshot;
        let roles = self.current_roles();
        if let Some(directory) = snapshot.directory.as_mut() {
            directory.role_members = roles.clone();
        }
        let roles_changed = roles != self.applied_roles;
        self.applied_roles = roles;
        if let Some(announced) = &self.announced {
            snapshot.pending_acknowledgement =
                pending_acknowledgements(announced, &snapshot, &overrides);
        }
        let snapshot = Arc::new(snapshot);
        self.served.send_replace(Some(snapshot.clone()));
        // Another instance is announcing: serve what was read, compare next time.
        if !may_announce || !self.hold_announce_lock().await? {
            tracing::debug!("another instance holds the announce lock; serving without announcing");
            return Ok(SyncOutcome::Unchanged);
        }
        let Some(announced) = &self.announced else {
            Self::run_announcer(self.announcer.as_ref(), None, &snapshot, &[]).await?;
            self.announcer_caught_up = true;
            self.state.save(&snapshot, &self.directory_path()).await?;
            self.announced = Some(snapshot.clone());
            tracing::info!(
                procedures = snapshot.procedures.len(),
                "first sync: this version is the baseline; nothing is announced"
            );
            return Ok(SyncOutcome::Baseline {
                procedures: snapshot.procedures.len(),
            });
        };
        let changes = detect_changes(announced, &snapshot, &overrides);
        if changes.is_empty() {
            if announced.commit != snapshot.commit
                || announced.pending_acknowledgement != snapshot.pending_acknowledgement
                || announced.directory_source != snapshot.directory_source
                || roles_changed
            {
                // New commits that change no procedure (a README, a broken file, the
                // directory): move on, asking people new to an audience.
                Self::run_announcer(self.announcer.as_ref(), Some(announced), &snapshot, &[])
                    .await?;
                self.announcer_caught_up = true;
                self.state.save(&snapshot, &self.directory_path()).await?;
                self.announced = Some(snapshot.clone());
            } else if !self.announcer_caught_up {
                Self::run_announcer(self.announcer.as_ref(), Some(announced), &snapshot, &[])
                    .await?;
                self.announcer_caught_up = true;
            }
            return Ok(SyncOutcome::Unchanged);
        }
        for change in &changes {
            tracing::info!(
                procedure = %change.id,
                kind = change.kind.as_str(),
                from_version = change.from_version.as_ref().map(ToString::to_string),
                to_version = change.to_version.as_ref().map(ToString::to_string),
                "{}", change.summary
            );
        }
        Self::run_announcer(
            self.announcer.as_ref(),
            Some(announced),
            &snapshot,
            &changes,
        )
        .await?;
        self.announcer_caught_up = true;
        self.state.save(&snapshot, &self.directory_path()).await?;
        self.announced = Some(snapshot.clone());
        Ok(SyncOutcome::Changed(changes))
    }

    /// Opens procbot's bare clone, making it (again) when missing or pointing elsewhere.
    async fn open_clone(
        &mut self,
        url: &str,
        branch: &str,
        checkout: &Path,
        directory: &Path,
    ) -> Result<GitProcedures, SyncError> {
        if let Some(procedures) = &self.git {
            return Ok(procedures.clone());
        }
        let existing = Git::new(checkout);
        let expected_refspec = format!("+refs/heads/{branch}:refs/heads/{branch}");
        let ours = checkout.join("HEAD").is_file()
            && existing.config_value(MANAGED_MARKER).await.as_deref() == Some("true");
        let usable = ours
            && existing.origin_url().await.as_deref() == Some(url)
            && existing
                .config_value("remote.origin.fetch")
                .await
                .as_deref()
                == Some(expected_refspec.as_str());
        if !usable {
            if checkout.exists() {
                let is_empty = std::fs::read_dir(checkout)
                    .map(|mut d| d.next().is_none())
                    .unwrap_or(false);
                if !ours && !is_empty {
                    return Err(SyncError::Other(format!(
                        "procedures.path {} exists and is not a clone procbot made; point it at an empty or missing folder",
                        checkout.display()
                    )));
                }
                tracing::info!(path = %checkout.display(), "re-cloning: the remote or branch changed");
                std::fs::remove_dir_all(checkout).map_err(|error| {
                    SyncError::Other(format!("cannot replace {}: {error}", checkout.display()))
                })?;
            }
            if let Some(parent) = checkout.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent).map_err(|error| {
                    SyncError::Other(format!("cannot create {}: {error}", parent.display()))
                })?;
            }
            Git::clone_bare(url, branch, checkout).await?;
        }
        let procedures = GitProcedures {
            git: Git::new(checkout),
            prefix: String::new(),
            directory: directory.to_path_buf(),
        };
        self.git = Some(procedures.clone());
        Ok(procedures)
    }

    /// Syncs on every poll interval and soon after each trigger (a push webhook), until
    /// `shutdown` turns true. Triggers that arrive during a sync cause one more sync, never a
    /// second one in parallel.
    pub async fn run(mut self, trigger: Arc<Notify>, mut shutdown: watch::Receiver<bool>) {
        // A syncer that has not synced yet (a git clone left to the background at start-up)
        // does so at once. Until it is done, shutdown interrupts it: git is killed, and the
        // announced state is only written after the last await of a sync.
        if !self.synced_once {
            tokio::select! {
                _ = self.sync_once() => {}
                _ = shutdown.changed() => return,
            }
        }
        loop {
            tokio::select! {
                () = tokio::time::sleep(self.next_delay()) => {}
                () = trigger.notified() => {
                    tokio::select! {
                        () = tokio::time::sleep(WEBHOOK_DEBOUNCE) => {}
                        _ = shutdown.changed() => return,
                    }
                }
                _ = shutdown.changed() => return,
            }
            if *shutdown.borrow() {
                return;
            }
            self.sync_once().await;
        }
    }
}

/// Capped exponential backoff: 5 s, 10 s, 20 s, … up to 10 minutes.
pub fn backoff_delay(attempts: u32) -> Duration {
    let exponent = attempts.saturating_sub(1).min(16);
    FIRST_RETRY.saturating_mul(1 << exponent).min(MAX_RETRY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let delays: Vec<u64> = (1..=9).map(|n| backoff_delay(n).as_secs()).collect();
        assert_eq!(delays, [5, 10, 20, 40, 80, 160, 320, 600, 600]);
        assert_eq!(backoff_delay(u32::MAX), MAX_RETRY);
    }
}
