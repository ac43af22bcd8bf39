//! The scheduler's memory: which jobs are done, recorded together with the messages they
//! queue, so a reminder is sent once however often, and by however many instances, it is
//! planned.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use sqlx::Row;

use crate::store::evidence::{PendingAck, ROWS_PER_INSERT, values_placeholders};
use crate::store::outbox::{NewOutboxMessage, enqueue_many};
use crate::store::{Store, StoreError, from_millis, to_millis};

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
        let rows = sqlx::query(
            "SELECT r.email, r.procedure_id, r.content_hash, r.version, r.required_since \
             FROM ack_requirements r \
             WHERE r.content_hash = (SELECT a.content_hash FROM announcements a \
                 WHERE a.procedure_id = r.procedure_id AND a.requires_ack = 1 \
                 ORDER BY a.id DESC LIMIT 1) \
             AND NOT EXISTS (SELECT 1 FROM announcements w WHERE w.procedure_id = r.procedure_id \
                 AND w.kind = 'removed' AND w.id > (SELECT MAX(a.id) FROM announcements a \
                     WHERE a.procedure_id = r.procedure_id AND a.requires_ack = 1)) \
             AND NOT EXISTS (SELECT 1 FROM acknowledgements k WHERE k.email = r.email \
                 AND k.procedure_id = r.procedure_id AND k.content_hash = r.content_hash) \
             ORDER BY r.email, r.required_since, r.procedure_id",
        )
        .fetch_all(self.pool())
        .await?;
        let mut pending: BTreeMap<String, Vec<PendingAck>> = BTreeMap::new();
        for row in rows {
            pending
                .entry(row.try_get("email")?)
                .or_default()
                .push(PendingAck {
                    procedure_id: row.try_get("procedure_id")?,
                    content_hash: row.try_get("content_hash")?,
                    version: row.try_get::<Option<String>, _>("version")?,
                    required_since: from_millis(row.try_get("required_since")?),
                });
        }
        Ok(pending)
    }
}
