//! The outbox table: every outbound message is a row with an idempotency key before anything
//! is sent. Workers claim due rows with a lease (PostgreSQL: `FOR UPDATE SKIP LOCKED`, so two
//! instances never take the same row; SQLite: one writer at a time), and a crashed worker's
//! rows come back when its lease runs out.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::Row;

use crate::core::message::Message;
use crate::core::port::{Destination, MessageRef, Platform};
use crate::store::evidence::ROWS_PER_INSERT;
use crate::store::{Backend, Store, StoreError, from_millis, to_millis};

/// A message to queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewOutboxMessage {
    /// Same key, same message: queuing it twice (a retried sync, a second instance) queues once.
    pub idempotency_key: String,
    pub platform: Platform,
    pub destination: Destination,
    pub message: Message,
}

/// A claimed row, ready to deliver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboxRow {
    pub id: i64,
    pub idempotency_key: String,
    pub platform: Platform,
    pub destination: Destination,
    pub message: Message,
    /// Delivery attempts so far, this one included.
    pub attempts: i64,
    /// An earlier attempt handed it to the platform without learning the outcome (its worker
    /// died, or the send timed out): it may already be there.
    pub maybe_sent: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OutboxStatus {
    Pending,
    Delivered,
    Failed,
}

impl OutboxStatus {
    fn as_str(self) -> &'static str {
        match self {
            OutboxStatus::Pending => "pending",
            OutboxStatus::Delivered => "delivered",
            OutboxStatus::Failed => "failed",
        }
    }
}

/// A delivery that will not heal, kept for people to see.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FailedDelivery {
    pub id: i64,
    pub platform: String,
    pub destination: String,
    pub attempts: i64,
    pub error: String,
    pub failed_at: DateTime<Utc>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct OutboxCounts {
    pub pending: i64,
    pub delivered: i64,
    pub failed: i64,
}

fn decode_destination(text: &str) -> Result<Destination, StoreError> {
    serde_json::from_str(text)
        .map_err(|error| StoreError::Corrupt(format!("outbox destination `{text}`: {error}")))
}

pub(crate) fn encode<T: Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|error| StoreError::Corrupt(error.to_string()))
}

/// Queues many messages inside the caller's transaction, in multi-row statements. Returns how
/// many were new.
pub(crate) async fn enqueue_many(
    transaction: &mut sqlx::Transaction<'static, sqlx::Any>,
    now: DateTime<Utc>,
    messages: &[NewOutboxMessage],
) -> Result<usize, StoreError> {
    let mut queued = 0;
    let at = to_millis(now);
    for chunk in messages.chunks(ROWS_PER_INSERT) {
        let sql = format!(
            "INSERT INTO outbox (idempotency_key, platform, destination, message, status, \
             attempts, next_attempt_at, created_at) VALUES {} \
             ON CONFLICT (idempotency_key) DO NOTHING",
            (0..chunk.len())
                .map(|row| {
                    let base = row * 5;
                    format!(
                        "(${}, ${}, ${}, ${}, 'pending', 0, ${}, ${})",
                        base + 1,
                        base + 2,
                        base + 3,
                        base + 4,
                        base + 5,
                        base + 5
                    )
                })
                .collect::<Vec<_>>()
                .join(", ")
        );
        let mut query = sqlx::query(&sql);
        for message in chunk {
            query = query
                .bind(&message.idempotency_key)
                .bind(message.platform.as_str())
                .bind(encode(&message.destination)?)
                .bind(encode(&message.message)?)
                .bind(at);
        }
        let inserted = query.execute(&mut **transaction).await?;
        queued += usize::try_from(inserted.rows_affected()).unwrap_or(usize::MAX);
    }
    Ok(queued)
}

impl Store {
    /// Queues messages outside any other write.
    pub async fn enqueue(
        &self,
        now: DateTime<Utc>,
        messages: &[NewOutboxMessage],
    ) -> Result<usize, StoreError> {
        let mut transaction = self.begin_write().await?;
        let queued = enqueue_many(&mut transaction, now, messages).await?;
        transaction.commit().await?;
        Ok(queued)
    }

    /// Claims up to `limit` due rows for `platform`, leased to `owner` until `lease_until`:
    /// the longest due first, in the order they were queued (the `outbox_claim` index's order,
    /// so a claim reads only the rows it takes).
    pub async fn claim_outbox(
        &self,
        platform: Platform,
        owner: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        let lock = match self.backend() {
            Backend::Postgres => "FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let sql = format!(
            "UPDATE outbox SET lease_owner = $1, lease_until = $2, attempts = attempts + 1 \
             WHERE id IN (SELECT id FROM outbox WHERE status = 'pending' AND platform = $3 \
             AND next_attempt_at <= $4 AND (lease_until IS NULL OR lease_until <= $4) \
             ORDER BY next_attempt_at, id LIMIT $5 {lock}) \
             RETURNING id, idempotency_key, platform, destination, message, attempts, sending"
        );
        let mut transaction = self.begin_write().await?;
        let rows = sqlx::query(&sql)
            .bind(owner)
            .bind(to_millis(lease_until))
            .bind(platform.as_str())
            .bind(to_millis(now))
            .bind(limit)
            .fetch_all(&mut *transaction)
            .await?;
        transaction.commit().await?;
        let mut claimed = Vec::with_capacity(rows.len());
        for row in rows {
            let platform_name: String = row.try_get("platform")?;
            let message: String = row.try_get("message")?;
            claimed.push(OutboxRow {
                id: row.try_get("id")?,
                idempotency_key: row.try_get("idempotency_key")?,
                platform: Platform::parse(&platform_name).ok_or_else(|| {
                    StoreError::Corrupt(format!("outbox platform `{platform_name}`"))
                })?,
                destination: decode_destination(&row.try_get::<String, _>("destination")?)?,
                message: serde_json::from_str(&message)
                    .map_err(|error| StoreError::Corrupt(format!("outbox message: {error}")))?,
                attempts: row.try_get("attempts")?,
                maybe_sent: row.try_get::<i64, _>("sending")? != 0,
            });
        }
        claimed.sort_by_key(|row| row.id);
        Ok(claimed)
    }

    /// Extends this worker's lease on one row just before sending it, and marks it as being
    /// sent. False when the lease was lost (it ran out and another worker took the row): the
    /// row must not be sent.
    pub async fn renew_lease(
        &self,
        id: i64,
        owner: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let updated = sqlx::query(
            "UPDATE outbox SET lease_until = $1, sending = 1 WHERE id = $2 AND lease_owner = $3 \
             AND status = 'pending' AND lease_until > $4",
        )
        .bind(to_millis(until))
        .bind(id)
        .bind(owner)
        .bind(to_millis(now))
        .execute(self.pool())
        .await?;
        Ok(updated.rows_affected() == 1)
    }

    /// Records a delivery. Only the lease holder may; returns false when the lease was lost
    /// (another worker took the row over after this one stalled).
    pub async fn mark_delivered(
        &self,
        id: i64,
        owner: &str,
        now: DateTime<Utc>,
        message_ref: &MessageRef,
    ) -> Result<bool, StoreError> {
        let updated = sqlx::query(
            "UPDATE outbox SET status = 'delivered', delivered_at = $1, message_ref = $2, \
             lease_owner = NULL, lease_until = NULL, last_error = NULL \
             WHERE id = $3 AND lease_owner = $4 AND status = 'pending'",
        )
        .bind(to_millis(now))
        .bind(&message_ref.0)
        .bind(id)
        .bind(owner)
        .execute(self.pool())
        .await?;
        Ok(updated.rows_affected() == 1)
    }

    /// Puts a row back for a later attempt. A rate-limited attempt does not count. `refused`
    /// says the platform certainly does not have the message (a 429); after other failures it
    /// may (a timeout after the platform took it).
    pub async fn reschedule(
        &self,
        id: i64,
        owner: &str,
        next_attempt_at: DateTime<Utc>,
        error: &str,
        counts_as_attempt: bool,
        refused: bool,
    ) -> Result<(), StoreError> {
        let uncount = if counts_as_attempt { 0i64 } else { 1 };
        sqlx::query(
            "UPDATE outbox SET next_attempt_at = $1, last_error = $2, lease_owner = NULL, \
             lease_until = NULL, attempts = attempts - $3, \
             sending = CASE WHEN $6 = 1 THEN 0 ELSE sending END \
             WHERE id = $4 AND lease_owner = $5 AND status = 'pending'",
        )
        .bind(to_millis(next_attempt_at))
        .bind(error)
        .bind(uncount)
        .bind(id)
        .bind(owner)
        .bind(i64::from(refused))
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Gives up on a row: it stays, marked failed with the reason, for people to see.
    pub async fn mark_failed(
        &self,
        id: i64,
        owner: &str,
        now: DateTime<Utc>,
        error: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE outbox SET status = 'failed', last_error = $1, delivered_at = $2, \
             lease_owner = NULL, lease_until = NULL \
             WHERE id = $3 AND lease_owner = $4 AND status = 'pending'",
        )
        .bind(error)
        .bind(to_millis(now))
        .bind(id)
        .bind(owner)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    pub async fn outbox_counts(&self) -> Result<OutboxCounts, StoreError> {
        let rows = sqlx::query("SELECT status, COUNT(*) AS n FROM outbox GROUP BY status")
            .fetch_all(self.pool())
            .await?;
        let mut counts = OutboxCounts::default();
        for row in rows {
            let status: String = row.try_get("status")?;
            let n: i64 = row.try_get("n")?;
            match status.as_str() {
                s if s == OutboxStatus::Pending.as_str() => counts.pending = n,
                s if s == OutboxStatus::Delivered.as_str() => counts.delivered = n,
                s if s == OutboxStatus::Failed.as_str() => counts.failed = n,
                other => return Err(StoreError::Corrupt(format!("outbox status `{other}`"))),
            }
        }
        Ok(counts)
    }

    /// When the oldest message still waiting was queued.
    pub async fn oldest_pending(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let row =
            sqlx::query("SELECT MIN(created_at) AS oldest FROM outbox WHERE status = 'pending'")
                .fetch_one(self.pool())
                .await?;
        Ok(row.try_get::<Option<i64>, _>("oldest")?.map(from_millis))
    }

    /// The earliest time a pending row for `platform` falls due, if any.
    pub async fn next_outbox_due(
        &self,
        platform: Platform,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        let row = sqlx::query(
            "SELECT MIN(CASE WHEN lease_until IS NOT NULL AND lease_until > next_attempt_at \
             THEN lease_until ELSE next_attempt_at END) AS due \
             FROM outbox WHERE status = 'pending' AND platform = $1",
        )
        .bind(platform.as_str())
        .fetch_one(self.pool())
        .await?;
        let due: Option<i64> = row.try_get("due")?;
        Ok(due.map(from_millis))
    }

    /// The platform's handle on the latest message delivered to `destination` (a channel
    /// named in the configuration resolves to the id its platform gave back).
    pub async fn last_delivered_ref(
        &self,
        platform: Platform,
        destination: &Destination,
    ) -> Result<Option<MessageRef>, StoreError> {
        let row = sqlx::query(
            "SELECT message_ref FROM outbox WHERE platform = $1 AND destination = $2 \
             AND status = 'delivered' AND message_ref IS NOT NULL ORDER BY id DESC LIMIT 1",
        )
        .bind(platform.as_str())
        .bind(encode(destination)?)
        .fetch_optional(self.pool())
        .await?;
        Ok(row
            .map(|row| row.try_get::<String, _>("message_ref"))
            .transpose()?
            .map(MessageRef))
    }

    pub async fn failed_deliveries(&self) -> Result<Vec<FailedDelivery>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, platform, destination, attempts, last_error, delivered_at FROM outbox \
             WHERE status = 'failed' ORDER BY id",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                let destination: String = row.try_get("destination")?;
                Ok(FailedDelivery {
                    id: row.try_get("id")?,
                    platform: row.try_get("platform")?,
                    destination: decode_destination(&destination)
                        .map(|d| d.to_string())
                        .unwrap_or(destination),
                    attempts: row.try_get("attempts")?,
                    error: row
                        .try_get::<Option<String>, _>("last_error")?
                        .unwrap_or_default(),
                    failed_at: from_millis(
                        row.try_get::<Option<i64>, _>("delivered_at")?.unwrap_or(0),
                    ),
                })
            })
            .collect()
    }

    /// The message a platform delivered as `message_ref`, and where it went, to update it
    /// after a click.
    pub async fn delivered_message(
        &self,
        platform: Platform,
        message_ref: &MessageRef,
    ) -> Result<Option<(i64, Destination, Message)>, StoreError> {
        let row = sqlx::query(
            "SELECT id, destination, message FROM outbox WHERE platform = $1 AND message_ref = $2 \
             ORDER BY id DESC LIMIT 1",
        )
        .bind(platform.as_str())
        .bind(&message_ref.0)
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row else { return Ok(None) };
        let message: String = row.try_get("message")?;
        let message = serde_json::from_str(&message)
            .map_err(|error| StoreError::Corrupt(format!("outbox message: {error}")))?;
        let destination = decode_destination(&row.try_get::<String, _>("destination")?)?;
        Ok(Some((row.try_get("id")?, destination, message)))
    }

    /// Remembers how a delivered message now looks, so a second click updates the latest form.
    pub async fn set_delivered_message(
        &self,
        id: i64,
        message: &Message,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE outbox SET message = $1 WHERE id = $2")
            .bind(encode(message)?)
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }
}
