//! The scheduler's memory: which jobs are done, recorded together with the messages they
//! queue, so a reminder is sent once however often, and by however many instances, it is
//! planned.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use sqlx::Row;

use crate::store::evidence::{PendingAck, ROWS_PER_INSERT, values_placeholders};
use crate::store::outbox::{NewOutboxMessage, enqueue_many};
use crate::store::{Store, StoreError, to_millis};

impl Store {
    /// Which of `keys` are done.
    pub async fn jobs_done(&self, keys: &[String]) -> Result<BTreeSet<String>, StoreError> {
        let mut done = BTreeSet::new();
        for chunk in keys.chunks(ROWS_PER_INSERT) {
            let placeholders: Vec<String> = (1..=chunk.len()).map(|n| format!("${n}")).collect();
            let sql = format!(
                "SELECT job_key FROM scheduled_jobs WHERE job_key IN ({})",
                placeholders.join(", ")
            );
            let mut query = sqlx::query(&sql);
            for key in chunk {
                query = query.bind(key);
            }
            for row in query.fetch_all(self.pool()).await? {
                done.insert(row.try_get("job_key")?);
            }
        }
        Ok(done)
    }

    /// Marks `key` (and `also`) done and queues `messages`, in one transaction. Returns false,
    /// changing nothing, when `key` was already done (by this or another instance).
    pub async fn record_job(
        &self,
        now: DateTime<Utc>,
        key: &str,
        also: &[String],
        messages: &[NewOutboxMessage],
    ) -> Result<bool, StoreError> {
        let mut transaction = self.begin_write().await?;
        let claimed = sqlx::query(
            "INSERT INTO scheduled_jobs (job_key, done_at) VALUES ($1, $2) \
             ON CONFLICT (job_key) DO NOTHING RETURNING job_key",
        )
        .bind(key)
        .bind(to_millis(now))
        .fetch_optional(&mut *transaction)
        .await?;
        if claimed.is_none() {
            transaction.rollback().await?;
            return Ok(false);
        }
        for chunk in also.chunks(ROWS_PER_INSERT) {
            let sql = format!(
                "INSERT INTO scheduled_jobs (job_key, done_at) VALUES {} \
                 ON CONFLICT (job_key) DO NOTHING",
                values_placeholders(chunk.len(), 2)
            );
            let mut query = sqlx::query(&sql);
            for key in chunk {
                query = query.bind(key).bind(to_millis(now));
            }
            query.execute(&mut *transaction).await?;
        }
        enqueue_many(&mut transaction, now, messages).await?;
        transaction.commit().await?;
        Ok(true)
    }

    /// Everyone's pending acknowledgements, by email.
    pub async fn all_pending(&self) -> Result<BTreeMap<String, Vec<PendingAck>>, StoreError> {
        self.pending(None).await
    }
}
