//! The procedures being served right now and their search index, swapped as a whole when a
//! sync produces a new snapshot, so a lookup never sees half of two versions.

use std::sync::{Arc, RwLock};

use tokio::sync::watch;

use crate::core::snapshot::Snapshot;
use crate::search::{SearchError, SearchIndex};

/// One snapshot and the index built from it.
pub struct Served {
    pub snapshot: Arc<Snapshot>,
    pub index: SearchIndex,
}

#[derive(Default)]
pub struct Library {
    current: RwLock<Option<Arc<Served>>>,
    /// The repository's own `synonyms.txt`, added to the built-in table.
    extra_synonyms: Option<String>,
}

impl Library {
    pub fn new(extra_synonyms: Option<String>) -> Library {
        Library {
            current: RwLock::new(None),
            extra_synonyms,
        }
    }

    pub fn current(&self) -> Option<Arc<Served>> {
        self.current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Builds the index for `snapshot` and serves both. CPU-bound: call it off the async
    /// workers (`spawn_blocking`) for large libraries.
    pub fn serve(&self, snapshot: Arc<Snapshot>) -> Result<(), SearchError> {
        let index = SearchIndex::build(
            snapshot.procedures.values().map(|entry| &entry.procedure),
            snapshot.directory.as_ref(),
            self.extra_synonyms.as_deref(),
        )?;
        let served = Arc::new(Served { snapshot, index });
        *self
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(served);
        Ok(())
    }

    /// Follows the syncer's served snapshot until the sender is dropped.
    pub async fn follow(self: Arc<Self>, mut snapshots: watch::Receiver<Option<Arc<Snapshot>>>) {
        loop {
            let latest = snapshots.borrow_and_update().clone();
            if let Some(snapshot) = latest {
                let is_new = self
                    .current()
                    .is_none_or(|served| !Arc::ptr_eq(&served.snapshot, &snapshot));
                if is_new {
                    let library = self.clone();
                    let built = tokio::task::spawn_blocking(move || library.serve(snapshot)).await;
                    match built {
                        Ok(Ok(())) => {}
                        Ok(Err(error)) => {
                            tracing::error!(%error, "the search index could not be built; the previous one stays")
                        }
                        Err(error) => tracing::error!(%error, "the index builder stopped"),
                    }
                }
            }
            if snapshots.changed().await.is_err() {
                return;
            }
        }
    }
}
