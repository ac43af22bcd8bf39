//! Repository sync state shared by every instance on one database: the last announced
//! snapshot (as the JSON `repo::state` writes), and the lock under which one instance at a
//! time announces what changed.

use chrono::{DateTime, Duration, Utc};
use sqlx::Row;

use crate::store::{Store, StoreError, to_millis};

impl Store {
    /// The announced state saved under `name`, if any.
    pub async fn announced_state(&self, name: &str) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT state FROM announced_state WHERE name = $1")
            .bind(name)
            .fetch_optional(self.pool())
            .await?;
        Ok(row.map(|row| row.try_get("state")).transpose()?)
    }

    /// Saves the announced state under `name`, replacing what was there.
    pub async fn save_announced_state(
        &self,
        now: DateTime<Utc>,
        name: &str,
        state: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO announced_state (name, state, saved_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET state = excluded.state, saved_at = excluded.saved_at",
        )
        .bind(name)
        .bind(state)
        .bind(to_millis(now))
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Moves the state saved under `name` to `aside` (an unreadable one, kept for people to
    /// look at), so a new one can start.
    pub async fn set_announced_state_aside(
        &self,
        name: &str,
        aside: &str,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE announced_state SET name = $1 WHERE name = $2")
            .bind(aside)
            .bind(name)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Takes the lock `name` for `holder` until `now + ttl`, or extends it: true when
    /// `holder` has it, false when another holder's lock has not run out.
    pub async fn try_lock(
        &self,
        name: &str,
        holder: &str,
        now: DateTime<Utc>,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let mut transaction = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO sync_locks (name, holder, until) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, until = excluded.until \
             WHERE sync_locks.until <= $4 OR sync_locks.holder = excluded.holder",
        )
        .bind(name)
        .bind(holder)
        .bind(to_millis(now + ttl))
        .bind(to_millis(now))
        .execute(&mut *transaction)
        .await?;
        let row = sqlx::query("SELECT holder FROM sync_locks WHERE name = $1")
            .bind(name)
            .fetch_one(&mut *transaction)
            .await?;
        transaction.commit().await?;
        Ok(row.try_get::<String, _>("holder")? == holder)
    }

    /// Lets go of the lock `name`, if `holder` has it.
    pub async fn release_lock(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM sync_locks WHERE name = $1 AND holder = $2")
            .bind(name)
            .bind(holder)
            .execute(self.pool())
            .await?;
        Ok(())
    }
}
