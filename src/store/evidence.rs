//! Evidence: announced versions, who had to acknowledge them, acknowledgements, reviews,
//! lookups and chat identities. Each write that is evidence also appends to the ledger in the
//! same transaction.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::Row;

use crate::core::announce::{CurrentRequirement, PlannedAnnouncement};
use crate::core::port::Platform;
use crate::core::procedure::Email;
use crate::store::ledger::{self, EntryKind};
use crate::store::outbox::{self, NewOutboxMessage};
use crate::store::{Store, StoreError, from_millis, to_millis};

/// One version of a procedure as announced.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StoredVersion {
    pub procedure_id: String,
    pub content_hash: String,
    pub version: Option<String>,
    pub title: String,
    pub owner: Option<String>,
    pub classification: String,
    pub path: String,
    pub commit_id: Option<String>,
    pub commit_author: Option<String>,
    pub committed_at: Option<DateTime<Utc>>,
}

#[derive(Serialize)]
struct AnnouncementPayload<'a> {
    kind: &'a str,
    from_version: Option<&'a str>,
    to_version: Option<&'a str>,
    content_hash: &'a str,
    commit: Option<&'a str>,
    summary: &'a str,
    must_acknowledge: &'a [String],
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BatchRecorded {
    /// Announcements recorded now (not already recorded by an earlier, interrupted run).
    pub announcements: usize,
    pub queued: usize,
}

/// Who clicked, typed or otherwise acknowledged, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewAcknowledgement {
    pub email: String,
    pub procedure_id: String,
    /// The version text, empty for a procedure without one.
    pub version: String,
    pub content_hash: String,
    pub platform: Platform,
    pub workspace: String,
    pub user_id: String,
    pub message_ref: Option<String>,
    /// True when the person was not asked to acknowledge (outside the audience).
    pub voluntary: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AckOutcome {
    Recorded {
        at: DateTime<Utc>,
    },
    /// The same person had already acknowledged the same version: nothing new is written.
    AlreadyRecorded {
        at: DateTime<Utc>,
    },
}

impl AckOutcome {
    pub fn at(self) -> DateTime<Utc> {
        match self {
            AckOutcome::Recorded { at } | AckOutcome::AlreadyRecorded { at } => at,
        }
    }
}

/// A version someone still has to acknowledge.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PendingAck {
    pub procedure_id: String,
    pub content_hash: String,
    pub version: Option<String>,
    pub required_since: DateTime<Utc>,
}

/// The version of a procedure people currently have to acknowledge, and how far they are.
/// The version of a procedure its audience must acknowledge now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequiredVersion {
    pub content_hash: String,
    pub version: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AckProgress {
    pub content_hash: String,
    pub version: Option<String>,
    pub required: i64,
    pub acknowledged: i64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewReview {
    pub procedure_id: String,
    pub content_hash: String,
    pub version: Option<String>,
    pub email: String,
    pub outcome: String,
    pub snooze_until: Option<DateTime<Utc>>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StoredReview {
    pub procedure_id: String,
    pub content_hash: String,
    pub version: Option<String>,
    pub email: String,
    pub outcome: String,
    pub reviewed_at: DateTime<Utc>,
    pub snooze_until: Option<DateTime<Utc>>,
}

/// A lookup made in chat, for the ledger.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LookupRecord {
    pub platform: Platform,
    pub user_id: String,
    pub email: Option<String>,
    pub query: String,
    /// (procedure id, version) shown, best first.
    pub shown: Vec<(String, Option<String>)>,
}

/// One person's standing on one version, for the report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ReportPerson {
    pub email: String,
    pub required: bool,
    pub acknowledged_at: Option<DateTime<Utc>>,
    pub platform: Option<String>,
    pub user_id: Option<String>,
    pub message_ref: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VersionStatus {
    /// The version people have to acknowledge now.
    Current,
    /// A later version replaced it; its acknowledgements are kept as history.
    Superseded,
    /// The procedure was removed; its evidence stays.
    Withdrawn,
}

/// One acknowledgeable version of one procedure, with its audience.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ReportVersion {
    pub procedure_id: String,
    pub title: String,
    pub version: Option<String>,
    pub content_hash: String,
    pub announced_at: DateTime<Utc>,
    pub status: VersionStatus,
    pub people: Vec<ReportPerson>,
}

impl ReportVersion {
    pub fn pending(&self) -> impl Iterator<Item = &ReportPerson> {
        self.people
            .iter()
            .filter(|p| p.required && p.acknowledged_at.is_none())
    }
}

/// Selects, from `announcements a`, each procedure's latest announcement that asked for
/// acknowledgement, unless the procedure was withdrawn after it: the version people must
/// acknowledge now.
const LATEST_REQUIRED: &str = "a.requires_ack = 1 \
    AND a.id = (SELECT MAX(b.id) FROM announcements b \
        WHERE b.procedure_id = a.procedure_id AND b.requires_ack = 1) \
    AND NOT EXISTS (SELECT 1 FROM announcements w WHERE w.procedure_id = a.procedure_id \
        AND w.kind = 'removed' AND w.id > a.id)";

/// A repeated review answer within this window is the same answer delivered twice.
pub const REVIEW_REPEAT_WINDOW: chrono::Duration = chrono::Duration::minutes(10);

/// Rows per multi-row INSERT: well under both backends' limits on bound parameters.
pub(crate) const ROWS_PER_INSERT: usize = 100;

/// `($1, $2, $3), ($4, $5, $6), …` for `rows` rows of `columns` values.
pub(crate) fn values_placeholders(rows: usize, columns: usize) -> String {
    (0..rows)
        .map(|row| {
            let cells: Vec<String> = (1..=columns)
                .map(|column| format!("${}", row * columns + column))
                .collect();
            format!("({})", cells.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn optional_text(row: &sqlx::any::AnyRow, column: &str) -> Result<Option<String>, StoreError> {
    Ok(row.try_get::<Option<String>, _>(column)?)
}

impl Store {
    /// Records one sync's announcements, the people who must acknowledge each, and the
    /// messages to send, in one transaction: all of it or none. Replaying the same batch
    /// (after a crash before the announced snapshot was saved) records and queues nothing new.
    pub async fn record_announcements(
        &self,
        now: DateTime<Utc>,
        versions: &[StoredVersion],
        announcements: &[PlannedAnnouncement],
        messages: &[NewOutboxMessage],
    ) -> Result<BatchRecorded, StoreError> {
        let mut transaction = self.begin_write().await?;
        let at = to_millis(now);
        for version in versions {
            sqlx::query(
                "INSERT INTO procedure_versions (procedure_id, content_hash, version, title, \
                 owner, classification, path, commit_id, commit_author, committed_at, \
                 first_seen_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
                 ON CONFLICT (procedure_id, content_hash) DO NOTHING",
            )
            .bind(&version.procedure_id)
            .bind(&version.content_hash)
            .bind(version.version.as_deref())
            .bind(&version.title)
            .bind(version.owner.as_deref())
            .bind(&version.classification)
            .bind(&version.path)
            .bind(version.commit_id.as_deref())
            .bind(version.commit_author.as_deref())
            .bind(version.committed_at.map(to_millis))
            .bind(at)
            .execute(&mut *transaction)
            .await?;
        }
        let mut recorded = BatchRecorded::default();
        for announcement in announcements {
            let inserted = sqlx::query(
                "INSERT INTO announcements (announce_key, procedure_id, kind, from_version, \
                 to_version, content_hash, title, summary, commit_id, requires_ack, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
                 ON CONFLICT (announce_key) DO NOTHING RETURNING id",
            )
            .bind(&announcement.key)
            .bind(announcement.id.as_str())
            .bind(&announcement.kind)
            .bind(announcement.from_version.as_deref())
            .bind(announcement.to_version.as_deref())
            .bind(&announcement.content_hash)
            .bind(&announcement.title)
            .bind(&announcement.summary)
            .bind(announcement.commit_id.as_deref())
            .bind(i64::from(announcement.requires_ack))
            .bind(at)
            .fetch_optional(&mut *transaction)
            .await?;
            let Some(row) = inserted else { continue };
            let id: i64 = row.try_get("id")?;
            recorded.announcements += 1;
            let audience: Vec<String> = announcement
                .must_acknowledge
                .iter()
                .map(ToString::to_string)
                .collect();
            let must_acknowledge: &[String] = if announcement.requires_ack {
                &audience
            } else {
                &[]
            };
            // Large audiences are written in multi-row statements: one round trip per
            // `ROWS_PER_INSERT` people instead of one per person.
            for chunk in must_acknowledge.chunks(ROWS_PER_INSERT) {
                let sql = format!(
                    "INSERT INTO ack_requirements (procedure_id, content_hash, email, version, \
                     announcement_id, required_since) VALUES {} \
                     ON CONFLICT (procedure_id, content_hash, email) DO NOTHING",
                    values_placeholders(chunk.len(), 6)
                );
                let mut query = sqlx::query(&sql);
                for email in chunk {
                    query = query
                        .bind(announcement.id.as_str())
                        .bind(&announcement.content_hash)
                        .bind(email)
                        .bind(announcement.to_version.as_deref())
                        .bind(id)
                        .bind(at);
                }
                query.execute(&mut *transaction).await?;
            }
            ledger::append(
                &mut transaction,
                now,
                EntryKind::Announcement,
                announcement.id.as_str(),
                &AnnouncementPayload {
                    kind: &announcement.kind,
                    from_version: announcement.from_version.as_deref(),
                    to_version: announcement.to_version.as_deref(),
                    content_hash: &announcement.content_hash,
                    commit: announcement.commit_id.as_deref(),
                    summary: &announcement.summary,
                    must_acknowledge,
                },
            )
            .await?;
        }
        recorded.queued = outbox::enqueue_many(&mut transaction, now, messages).await?;
        transaction.commit().await?;
        Ok(recorded)
    }

    /// Every announced version, oldest first within each procedure.
    pub async fn stored_versions(&self) -> Result<Vec<StoredVersion>, StoreError> {
        let rows = sqlx::query(
            "SELECT procedure_id, content_hash, version, title, owner, classification, path, \
             commit_id, commit_author, committed_at FROM procedure_versions \
             ORDER BY procedure_id, first_seen_at",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(version_from_row).collect()
    }

    /// The announced version of `procedure_id` whose content hash starts with `prefix`.
    pub async fn version_by_prefix(
        &self,
        procedure_id: &str,
        prefix: &str,
    ) -> Result<Option<StoredVersion>, StoreError> {
        if prefix.is_empty() || !prefix.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(None);
        }
        let row = sqlx::query(
            "SELECT procedure_id, content_hash, version, title, owner, classification, path, \
             commit_id, commit_author, committed_at FROM procedure_versions \
             WHERE procedure_id = $1 AND content_hash LIKE $2 \
             ORDER BY first_seen_at DESC LIMIT 1",
        )
        .bind(procedure_id)
        .bind(format!("{}%", prefix.to_ascii_lowercase()))
        .fetch_optional(self.pool())
        .await?;
        row.map(|row| version_from_row(&row)).transpose()
    }

    /// The version of `procedure_id` people must acknowledge now (the latest announcement
    /// that asked for it), unless the procedure was withdrawn since.
    /// The version people must acknowledge now for one procedure (without counting who has:
    /// that is `requirement_progress`), read on every acknowledgement.
    pub async fn current_requirement(
        &self,
        procedure_id: &str,
    ) -> Result<Option<RequiredVersion>, StoreError> {
        let sql = format!(
            "SELECT a.content_hash, a.to_version FROM announcements a \
             WHERE a.procedure_id = $1 AND {LATEST_REQUIRED}"
        );
        let row = sqlx::query(&sql)
            .bind(procedure_id)
            .fetch_optional(self.pool())
            .await?;
        row.map(|row| {
            Ok(RequiredVersion {
                content_hash: row.try_get("content_hash")?,
                version: optional_text(&row, "to_version")?,
            })
        })
        .transpose()
    }

    /// For every live procedure (or one), the version people must acknowledge now and how
    /// many of those asked have: one query, for pages and digests that list them all.
    pub async fn requirement_progress(
        &self,
        procedure_id: Option<&str>,
    ) -> Result<BTreeMap<String, AckProgress>, StoreError> {
        let which = if procedure_id.is_some() {
            "a.procedure_id = $1 AND"
        } else {
            ""
        };
        let sql = format!(
            "SELECT a.procedure_id, a.content_hash, a.to_version, \
             (SELECT COUNT(*) FROM ack_requirements r WHERE r.procedure_id = a.procedure_id \
                 AND r.content_hash = a.content_hash) AS required, \
             (SELECT COUNT(*) FROM ack_requirements r JOIN acknowledgements k \
                 ON k.email = r.email AND k.procedure_id = r.procedure_id \
                 AND k.content_hash = r.content_hash \
                 WHERE r.procedure_id = a.procedure_id AND r.content_hash = a.content_hash) \
                 AS acknowledged \
             FROM announcements a WHERE {which} {LATEST_REQUIRED}"
        );
        let mut query = sqlx::query(&sql);
        if let Some(procedure_id) = procedure_id {
            query = query.bind(procedure_id);
        }
        let mut progress = BTreeMap::new();
        for row in query.fetch_all(self.pool()).await? {
            progress.insert(
                row.try_get("procedure_id")?,
                AckProgress {
                    content_hash: row.try_get("content_hash")?,
                    version: optional_text(&row, "to_version")?,
                    required: row.try_get("required")?,
                    acknowledged: row.try_get("acknowledged")?,
                },
            );
        }
        Ok(progress)
    }

    /// Per live procedure, the version people currently acknowledge and who was asked to.
    pub async fn current_requirements(
        &self,
    ) -> Result<BTreeMap<String, CurrentRequirement>, StoreError> {
        let latest = sqlx::query(&format!(
            "SELECT a.procedure_id, a.content_hash, a.to_version FROM announcements a \
             WHERE {LATEST_REQUIRED}"
        ))
        .fetch_all(self.pool())
        .await?;
        let mut current = BTreeMap::new();
        for row in &latest {
            let procedure_id: String = row.try_get("procedure_id")?;
            current.insert(
                procedure_id,
                CurrentRequirement {
                    content_hash: row.try_get("content_hash")?,
                    version: optional_text(row, "to_version")?,
                    audience: Default::default(),
                },
            );
        }
        let people = sqlx::query("SELECT procedure_id, content_hash, email FROM ack_requirements")
            .fetch_all(self.pool())
            .await?;
        for row in &people {
            let procedure_id: String = row.try_get("procedure_id")?;
            let Some(requirement) = current.get_mut(&procedure_id) else {
                continue;
            };
            if requirement.content_hash != row.try_get::<String, _>("content_hash")? {
                continue;
            }
            let email: String = row.try_get("email")?;
            if let Ok(email) = Email::parse(&email) {
                requirement.audience.insert(email);
            }
        }
        Ok(current)
    }

    /// Whether `email` was asked to acknowledge this exact version.
    pub async fn is_required(
        &self,
        email: &str,
        procedure_id: &str,
        content_hash: &str,
    ) -> Result<bool, StoreError> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM ack_requirements \
             WHERE email = $1 AND procedure_id = $2 AND content_hash = $3",
        )
        .bind(email)
        .bind(procedure_id)
        .bind(content_hash)
        .fetch_one(self.pool())
        .await?;
        Ok(row.try_get::<i64, _>("n")? > 0)
    }

    /// What `email` still has to acknowledge: for each live procedure, its current version,
    /// when they were asked to and have not.
    pub async fn pending_for(&self, email: &str) -> Result<Vec<PendingAck>, StoreError> {
        Ok(self
            .pending(Some(email))
            .await?
            .into_values()
            .next()
            .unwrap_or_default())
    }

    /// Pending acknowledgements by email: one person's, or everyone's. An item is pending
    /// when the person was asked about the version people acknowledge now, the procedure was
    /// not withdrawn since, and they have not acknowledged that version.
    pub(crate) async fn pending(
        &self,
        email: Option<&str>,
    ) -> Result<BTreeMap<String, Vec<PendingAck>>, StoreError> {
        let who = if email.is_some() {
            "r.email = $1"
        } else {
            "1 = 1"
        };
        let sql = format!(
            "SELECT r.email, r.procedure_id, r.content_hash, r.version, r.required_since \
             FROM ack_requirements r \
             WHERE {who} \
             AND r.content_hash = (SELECT a.content_hash FROM announcements a \
                 WHERE a.procedure_id = r.procedure_id AND a.requires_ack = 1 \
                 ORDER BY a.id DESC LIMIT 1) \
             AND NOT EXISTS (SELECT 1 FROM announcements w WHERE w.procedure_id = r.procedure_id \
                 AND w.kind = 'removed' AND w.id > (SELECT MAX(a.id) FROM announcements a \
                     WHERE a.procedure_id = r.procedure_id AND a.requires_ack = 1)) \
             AND NOT EXISTS (SELECT 1 FROM acknowledgements k WHERE k.email = r.email \
                 AND k.procedure_id = r.procedure_id AND k.content_hash = r.content_hash) \
             ORDER BY r.email, r.required_since, r.procedure_id"
        );
        let mut query = sqlx::query(&sql);
        if let Some(email) = email {
            query = query.bind(email);
        }
        let mut pending: BTreeMap<String, Vec<PendingAck>> = BTreeMap::new();
        for row in query.fetch_all(self.pool()).await? {
            pending
                .entry(row.try_get("email")?)
                .or_default()
                .push(PendingAck {
                    procedure_id: row.try_get("procedure_id")?,
                    content_hash: row.try_get("content_hash")?,
                    version: optional_text(&row, "version")?,
                    required_since: from_millis(row.try_get("required_since")?),
                });
        }
        Ok(pending)
    }

    /// Records an acknowledgement once; a second click, or a redelivered event, finds the
    /// first and writes nothing.
    pub async fn acknowledge(
        &self,
        now: DateTime<Utc>,
        ack: &NewAcknowledgement,
    ) -> Result<AckOutcome, StoreError> {
        let mut transaction = self.begin_write().await?;
        let inserted = sqlx::query(
            "INSERT INTO acknowledgements (email, procedure_id, version, content_hash, \
             acknowledged_at, platform, workspace, user_id, message_ref, voluntary) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
             ON CONFLICT (email, procedure_id, content_hash) DO NOTHING RETURNING id",
        )
        .bind(&ack.email)
        .bind(&ack.procedure_id)
        .bind(&ack.version)
        .bind(&ack.content_hash)
        .bind(to_millis(now))
        .bind(ack.platform.as_str())
        .bind(&ack.workspace)
        .bind(&ack.user_id)
        .bind(ack.message_ref.as_deref())
        .bind(i64::from(ack.voluntary))
        .fetch_optional(&mut *transaction)
        .await?;
        if inserted.is_none() {
            transaction.rollback().await?;
            let row = sqlx::query(
                "SELECT acknowledged_at FROM acknowledgements WHERE email = $1 \
                 AND procedure_id = $2 AND content_hash = $3",
            )
            .bind(&ack.email)
            .bind(&ack.procedure_id)
            .bind(&ack.content_hash)
            .fetch_one(self.pool())
            .await?;
            return Ok(AckOutcome::AlreadyRecorded {
                at: from_millis(row.try_get("acknowledged_at")?),
            });
        }
        #[derive(Serialize)]
        struct Payload<'a> {
            email: &'a str,
            version: &'a str,
            content_hash: &'a str,
            platform: &'a str,
            workspace: &'a str,
            user_id: &'a str,
            message: Option<&'a str>,
            voluntary: bool,
        }
        ledger::append(
            &mut transaction,
            now,
            EntryKind::Acknowledgement,
            &ack.procedure_id,
            &Payload {
                email: &ack.email,
                version: &ack.version,
                content_hash: &ack.content_hash,
                platform: ack.platform.as_str(),
                workspace: &ack.workspace,
                user_id: &ack.user_id,
                message: ack.message_ref.as_deref(),
                voluntary: ack.voluntary,
            },
        )
        .await?;
        transaction.commit().await?;
        Ok(AckOutcome::Recorded { at: now })
    }

    /// Records an owner's answer and queues `messages` (telling the security lead) in one
    /// transaction. The same answer from the same person about the same version within
    /// `REVIEW_REPEAT_WINDOW` (a double click, a redelivered event) is recorded once: returns
    /// false then.
    pub async fn record_review(
        &self,
        now: DateTime<Utc>,
        review: &NewReview,
        messages: &[NewOutboxMessage],
    ) -> Result<bool, StoreError> {
        let mut transaction = self.begin_write().await?;
        let repeat = sqlx::query(
            "SELECT COUNT(*) AS n FROM reviews WHERE procedure_id = $1 AND content_hash = $2 \
             AND email = $3 AND outcome = $4 AND reviewed_at > $5",
        )
        .bind(&review.procedure_id)
        .bind(&review.content_hash)
        .bind(&review.email)
        .bind(&review.outcome)
        .bind(to_millis(now - REVIEW_REPEAT_WINDOW))
        .fetch_one(&mut *transaction)
        .await?;
        if repeat.try_get::<i64, _>("n")? > 0 {
            transaction.rollback().await?;
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO reviews (procedure_id, content_hash, version, email, outcome, \
             reviewed_at, snooze_until) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&review.procedure_id)
        .bind(&review.content_hash)
        .bind(review.version.as_deref())
        .bind(&review.email)
        .bind(&review.outcome)
        .bind(to_millis(now))
        .bind(review.snooze_until.map(to_millis))
        .execute(&mut *transaction)
        .await?;
        #[derive(Serialize)]
        struct Payload<'a> {
            email: &'a str,
            version: Option<&'a str>,
            content_hash: &'a str,
            outcome: &'a str,
            snooze_until: Option<DateTime<Utc>>,
        }
        ledger::append(
            &mut transaction,
            now,
            EntryKind::Review,
            &review.procedure_id,
            &Payload {
                email: &review.email,
                version: review.version.as_deref(),
                content_hash: &review.content_hash,
                outcome: &review.outcome,
                snooze_until: review.snooze_until,
            },
        )
        .await?;
        outbox::enqueue_many(&mut transaction, now, messages).await?;
        transaction.commit().await?;
        Ok(true)
    }

    /// Every review answer, oldest first, by procedure.
    pub async fn review_history(&self) -> Result<BTreeMap<String, Vec<StoredReview>>, StoreError> {
        let rows = sqlx::query(
            "SELECT procedure_id, content_hash, version, email, outcome, reviewed_at, \
             snooze_until FROM reviews ORDER BY reviewed_at, id",
        )
        .fetch_all(self.pool())
        .await?;
        let mut history: BTreeMap<String, Vec<StoredReview>> = BTreeMap::new();
        for row in rows {
            let review = review_from_row(&row)?;
            history
                .entry(review.procedure_id.clone())
                .or_default()
                .push(review);
        }
        Ok(history)
    }

    /// Appends a chat lookup to the ledger: who asked what, and what they were shown.
    pub async fn record_lookup(
        &self,
        now: DateTime<Utc>,
        lookup: &LookupRecord,
    ) -> Result<(), StoreError> {
        let mut transaction = self.begin_write().await?;
        ledger::append(
            &mut transaction,
            now,
            EntryKind::Lookup,
            lookup.email.as_deref().unwrap_or(&lookup.user_id),
            lookup,
        )
        .await?;
        transaction.commit().await?;
        Ok(())
    }

    /// Links a chat account to a person, with the time zone of its profile when the platform
    /// tells one; a later link for the same account replaces it.
    pub async fn link_identity(
        &self,
        now: DateTime<Utc>,
        platform: Platform,
        workspace: &str,
        user_id: &str,
        email: &str,
        time_zone: Option<&str>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO identities (platform, workspace, user_id, email, updated_at, time_zone) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (platform, workspace, user_id) \
             DO UPDATE SET email = excluded.email, updated_at = excluded.updated_at, \
             time_zone = COALESCE(excluded.time_zone, identities.time_zone)",
        )
        .bind(platform.as_str())
        .bind(workspace)
        .bind(user_id)
        .bind(email)
        .bind(to_millis(now))
        .bind(time_zone)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The account most recently linked to `email` on `platform`, if any.
    pub async fn identity_user_id(
        &self,
        platform: Platform,
        email: &str,
    ) -> Result<Option<String>, StoreError> {
        let row = sqlx::query(
            "SELECT user_id FROM identities WHERE platform = $1 AND email = $2 \
             ORDER BY updated_at DESC LIMIT 1",
        )
        .bind(platform.as_str())
        .bind(email)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.map(|row| row.try_get("user_id")).transpose()?)
    }

    /// Time zones chat profiles gave, per person (the most recent link wins); zones that are
    /// not IANA names are left out.
    pub async fn profile_time_zones(&self) -> Result<BTreeMap<Email, chrono_tz::Tz>, StoreError> {
        let rows = sqlx::query(
            "SELECT email, time_zone FROM identities WHERE time_zone IS NOT NULL \
             ORDER BY updated_at",
        )
        .fetch_all(self.pool())
        .await?;
        let mut zones = BTreeMap::new();
        for row in rows {
            let email: String = row.try_get("email")?;
            let zone: String = row.try_get("time_zone")?;
            if let (Ok(email), Ok(zone)) = (Email::parse(&email), zone.parse::<chrono_tz::Tz>()) {
                zones.insert(email, zone);
            }
        }
        Ok(zones)
    }

    pub async fn identity_email(
        &self,
        platform: Platform,
        workspace: &str,
        user_id: &str,
    ) -> Result<Option<String>, StoreError> {
        let row = sqlx::query(
            "SELECT email FROM identities WHERE platform = $1 AND workspace = $2 AND user_id = $3",
        )
        .bind(platform.as_str())
        .bind(workspace)
        .bind(user_id)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.map(|row| row.try_get("email")).transpose()?)
    }

    /// Every acknowledgeable version with its audience and acknowledgements, plus voluntary
    /// reads, for the evidence report. Oldest procedure versions first within a procedure.
    pub async fn acknowledgement_report(&self) -> Result<Vec<ReportVersion>, StoreError> {
        let announcements = sqlx::query(
            "SELECT a.id, a.procedure_id, a.kind, a.content_hash, a.to_version, a.title, \
             a.requires_ack, a.created_at FROM announcements a ORDER BY a.procedure_id, a.id",
        )
        .fetch_all(self.pool())
        .await?;
        // The latest acknowledgeable announcement and the latest removal, per procedure.
        let mut latest_required: BTreeMap<String, i64> = BTreeMap::new();
        let mut latest_removal: BTreeMap<String, i64> = BTreeMap::new();
        let mut versions: Vec<(i64, ReportVersion)> = Vec::new();
        for row in &announcements {
            let id: i64 = row.try_get("id")?;
            let procedure_id: String = row.try_get("procedure_id")?;
            let kind: String = row.try_get("kind")?;
            if kind == "removed" {
                latest_removal.insert(procedure_id, id);
                continue;
            }
            if row.try_get::<i64, _>("requires_ack")? == 0 {
                continue;
            }
            let content_hash: String = row.try_get("content_hash")?;
            if let Some(existing) = versions
                .iter_mut()
                .find(|(_, v)| v.procedure_id == procedure_id && v.content_hash == content_hash)
            {
                // The same version asked of more people later (they joined the audience).
                existing.0 = id;
                latest_required.insert(procedure_id, id);
                continue;
            }
            latest_required.insert(procedure_id.clone(), id);
            versions.push((
                id,
                ReportVersion {
                    procedure_id,
                    title: row.try_get("title")?,
                    version: optional_text(row, "to_version")?,
                    content_hash,
                    announced_at: from_millis(row.try_get("created_at")?),
                    status: VersionStatus::Current,
                    people: Vec::new(),
                },
            ));
        }
        let people = sqlx::query(
            "SELECT r.procedure_id, r.content_hash, r.email, k.acknowledged_at, k.platform, \
             k.user_id, k.message_ref FROM ack_requirements r LEFT JOIN acknowledgements k \
             ON k.email = r.email AND k.procedure_id = r.procedure_id \
             AND k.content_hash = r.content_hash ORDER BY r.email",
        )
        .fetch_all(self.pool())
        .await?;
        let voluntary = sqlx::query(
            "SELECT k.procedure_id, k.content_hash, k.email, k.acknowledged_at, k.platform, \
             k.user_id, k.message_ref FROM acknowledgements k WHERE NOT EXISTS \
             (SELECT 1 FROM ack_requirements r WHERE r.email = k.email \
             AND r.procedure_id = k.procedure_id AND r.content_hash = k.content_hash) \
             ORDER BY k.email",
        )
        .fetch_all(self.pool())
        .await?;
        let mut index: BTreeMap<(String, String), usize> = BTreeMap::new();
        for (position, (id, version)) in versions.iter_mut().enumerate() {
            let removed_after = latest_removal
                .get(&version.procedure_id)
                .is_some_and(|removal| removal > id);
            version.status = if removed_after {
                VersionStatus::Withdrawn
            } else if latest_required.get(&version.procedure_id) == Some(id) {
                VersionStatus::Current
            } else {
                VersionStatus::Superseded
            };
            index.insert(
                (version.procedure_id.clone(), version.content_hash.clone()),
                position,
            );
        }
        for (rows, required) in [(&people, true), (&voluntary, false)] {
            for row in rows {
                let key = (
                    row.try_get::<String, _>("procedure_id")?,
                    row.try_get::<String, _>("content_hash")?,
                );
                let Some(&position) = index.get(&key) else {
                    continue;
                };
                versions[position].1.people.push(ReportPerson {
                    email: row.try_get("email")?,
                    required,
                    acknowledged_at: row
                        .try_get::<Option<i64>, _>("acknowledged_at")?
                        .map(from_millis),
                    platform: optional_text(row, "platform")?,
                    user_id: optional_text(row, "user_id")?,
                    message_ref: optional_text(row, "message_ref")?,
                });
            }
        }
        Ok(versions.into_iter().map(|(_, version)| version).collect())
    }
}

fn review_from_row(row: &sqlx::any::AnyRow) -> Result<StoredReview, StoreError> {
    Ok(StoredReview {
        procedure_id: row.try_get("procedure_id")?,
        content_hash: row.try_get("content_hash")?,
        version: optional_text(row, "version")?,
        email: row.try_get("email")?,
        outcome: row.try_get("outcome")?,
        reviewed_at: from_millis(row.try_get("reviewed_at")?),
        snooze_until: row
            .try_get::<Option<i64>, _>("snooze_until")?
            .map(from_millis),
    })
}

fn version_from_row(row: &sqlx::any::AnyRow) -> Result<StoredVersion, StoreError> {
    Ok(StoredVersion {
        procedure_id: row.try_get("procedure_id")?,
        content_hash: row.try_get("content_hash")?,
        version: optional_text(row, "version")?,
        title: row.try_get("title")?,
        owner: optional_text(row, "owner")?,
        classification: row.try_get("classification")?,
        path: row.try_get("path")?,
        commit_id: optional_text(row, "commit_id")?,
        commit_author: optional_text(row, "commit_author")?,
        committed_at: row
            .try_get::<Option<i64>, _>("committed_at")?
            .map(from_millis),
    })
}

#[cfg(test)]
mod tests {
    use super::values_placeholders;

    #[test]
    fn placeholders_number_rows_and_columns() {
        assert_eq!(values_placeholders(2, 3), "($1, $2, $3), ($4, $5, $6)");
        assert_eq!(values_placeholders(1, 1), "($1)");
    }
}
