//! The evidence ledger: acknowledgements, reviews, announcements and lookups appended to a
//! hash chain. Each entry's hash commits to its own fields and the previous entry's hash, so
//! altering or deleting any row breaks the chain from there on; `verify` finds the first
//! break.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::Row;

use crate::store::{Store, StoreError, from_millis, to_millis};

/// The hash the first entry points back to.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Rows read per query while verifying, so a large ledger is never held in memory.
const VERIFY_PAGE: i64 = 1000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    Announcement,
    Acknowledgement,
    Review,
    Lookup,
    /// A procedure run started, a step's outcome or note, a run finished.
    Run,
}

impl EntryKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::Announcement => "announcement",
            EntryKind::Acknowledgement => "acknowledgement",
            EntryKind::Review => "review",
            EntryKind::Lookup => "lookup",
            EntryKind::Run => "run",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LedgerEntry {
    pub seq: i64,
    pub recorded_at: DateTime<Utc>,
    pub kind: String,
    pub subject: String,
    pub payload: String,
    pub prev_hash: String,
    pub hash: String,
}

/// The hash of one entry: SHA-256 over its fields, newline-separated, ending with the
/// previous entry's hash.
pub fn entry_hash(
    seq: i64,
    recorded_at_millis: i64,
    kind: &str,
    subject: &str,
    payload: &str,
    prev_hash: &str,
) -> String {
    let mut hasher = Sha256::new();
    for part in [
        seq.to_string().as_str(),
        recorded_at_millis.to_string().as_str(),
        kind,
        subject,
        payload,
        prev_hash,
    ] {
        hasher.update(part.len().to_string().as_bytes());
        hasher.update(b":");
        hasher.update(part.as_bytes());
        hasher.update(b"\n");
    }
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Appends one entry inside the caller's transaction, so the evidence and its ledger entry
/// are written together or not at all. Appends are serialised by the `ledger_head` row lock.
pub(crate) async fn append(
    transaction: &mut sqlx::Transaction<'static, sqlx::Any>,
    now: DateTime<Utc>,
    kind: EntryKind,
    subject: &str,
    payload: &impl Serialize,
) -> Result<i64, StoreError> {
    let payload = serde_json::to_string(payload)
        .map_err(|error| StoreError::Corrupt(format!("ledger payload: {error}")))?;
    let head = sqlx::query("UPDATE ledger_head SET seq = seq + 1 WHERE id = 1 RETURNING seq, hash")
        .fetch_one(&mut **transaction)
        .await?;
    let seq: i64 = head.try_get("seq")?;
    let prev_hash: String = head.try_get("hash")?;
    let recorded_at = to_millis(now);
    let hash = entry_hash(
        seq,
        recorded_at,
        kind.as_str(),
        subject,
        &payload,
        &prev_hash,
    );
    sqlx::query(
        "INSERT INTO ledger (seq, recorded_at, kind, subject, payload, prev_hash, hash) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(seq)
    .bind(recorded_at)
    .bind(kind.as_str())
    .bind(subject)
    .bind(&payload)
    .bind(&prev_hash)
    .bind(&hash)
    .execute(&mut **transaction)
    .await?;
    sqlx::query("UPDATE ledger_head SET hash = $1 WHERE id = 1")
        .bind(&hash)
        .execute(&mut **transaction)
        .await?;
    Ok(seq)
}

/// What `verify` found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Verification {
    /// Entries checked and found intact before the first problem (all of them when none).
    pub intact: i64,
    pub problem: Option<LedgerProblem>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LedgerProblem {
    /// The first entry that is wrong or missing.
    pub seq: i64,
    pub reason: String,
}

impl Store {
    /// Recomputes the whole chain and names the first entry that was altered or deleted.
    pub async fn verify_ledger(&self) -> Result<Verification, StoreError> {
        // The tip first: entries appended while the check runs lie beyond it and are left for
        // the next check, instead of looking like a deleted tail.
        let head = sqlx::query("SELECT seq, hash FROM ledger_head WHERE id = 1")
            .fetch_one(self.pool())
            .await?;
        let head_seq: i64 = head.try_get("seq")?;
        let head_hash: String = head.try_get("hash")?;
        let mut expected_seq = 1i64;
        let mut prev_hash = GENESIS_HASH.to_string();
        loop {
            let rows = sqlx::query(
                "SELECT seq, recorded_at, kind, subject, payload, prev_hash, hash FROM ledger \
                 WHERE seq >= $1 AND seq <= $2 ORDER BY seq LIMIT $3",
            )
            .bind(expected_seq)
            .bind(head_seq)
            .bind(VERIFY_PAGE)
            .fetch_all(self.pool())
            .await?;
            if rows.is_empty() {
                break;
            }
            for row in rows {
                let entry = entry_from_row(&row)?;
                let problem = |reason: String| {
                    Ok(Verification {
                        intact: expected_seq - 1,
                        problem: Some(LedgerProblem {
                            seq: expected_seq,
                            reason,
                        }),
                    })
                };
                if entry.seq != expected_seq {
                    return problem(if entry.seq - expected_seq == 1 {
                        format!("entry {expected_seq} is missing (deleted)")
                    } else {
                        format!(
                            "entries {expected_seq} to {} are missing (deleted)",
                            entry.seq - 1
                        )
                    });
                }
                if entry.prev_hash != prev_hash {
                    return problem(format!(
                        "entry {} does not point back to entry {}'s hash",
                        entry.seq,
                        entry.seq - 1
                    ));
                }
                let recomputed = entry_hash(
                    entry.seq,
                    to_millis(entry.recorded_at),
                    &entry.kind,
                    &entry.subject,
                    &entry.payload,
                    &entry.prev_hash,
                );
                if recomputed != entry.hash {
                    return problem(format!(
                        "entry {} ({} {}) was altered: its content no longer matches its hash",
                        entry.seq, entry.kind, entry.subject
                    ));
                }
                prev_hash = entry.hash;
                expected_seq += 1;
            }
        }
        let last = expected_seq - 1;
        if head_seq > last {
            return Ok(Verification {
                intact: last,
                problem: Some(LedgerProblem {
                    seq: last + 1,
                    reason: if head_seq == last + 1 {
                        format!("entry {} is missing (deleted)", last + 1)
                    } else {
                        format!("entries {} to {head_seq} are missing (deleted)", last + 1)
                    },
                }),
            });
        }
        if head_hash != prev_hash {
            return Ok(Verification {
                intact: last,
                problem: Some(LedgerProblem {
                    seq: last,
                    reason: "the chain's recorded tip does not match its last entry".to_string(),
                }),
            });
        }
        Ok(Verification {
            intact: last,
            problem: None,
        })
    }

    /// How many entries of each kind the ledger holds.
    pub async fn ledger_counts(
        &self,
    ) -> Result<std::collections::BTreeMap<String, i64>, StoreError> {
        let rows = sqlx::query("SELECT kind, COUNT(*) AS n FROM ledger GROUP BY kind")
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|row| Ok((row.try_get("kind")?, row.try_get("n")?)))
            .collect()
    }

    /// Lookup entries (newest first, at most `limit`) whose payload mentions `needle`.
    pub async fn lookups_mentioning(
        &self,
        needle: &str,
        limit: i64,
    ) -> Result<Vec<LedgerEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, recorded_at, kind, subject, payload, prev_hash, hash FROM ledger \
             WHERE kind = 'lookup' AND payload LIKE $1 ORDER BY seq DESC LIMIT $2",
        )
        .bind(format!("%\"{}\"%", needle.replace(['%', '_', '"'], "")))
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(entry_from_row).collect()
    }

    /// The chain's tip: the last entry's number and hash (0 and the genesis hash when empty).
    pub async fn ledger_head(&self) -> Result<(i64, String), StoreError> {
        let head = sqlx::query("SELECT seq, hash FROM ledger_head WHERE id = 1")
            .fetch_one(self.pool())
            .await?;
        Ok((head.try_get("seq")?, head.try_get("hash")?))
    }

    /// Ledger entries from `from_seq` on, at most `limit`, oldest first.
    pub async fn ledger_entries(
        &self,
        from_seq: i64,
        limit: i64,
    ) -> Result<Vec<LedgerEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, recorded_at, kind, subject, payload, prev_hash, hash FROM ledger \
             WHERE seq >= $1 ORDER BY seq LIMIT $2",
        )
        .bind(from_seq)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(entry_from_row).collect()
    }
}

fn entry_from_row(row: &sqlx::any::AnyRow) -> Result<LedgerEntry, StoreError> {
    Ok(LedgerEntry {
        seq: row.try_get("seq")?,
        recorded_at: from_millis(row.try_get("recorded_at")?),
        kind: row.try_get("kind")?,
        subject: row.try_get("subject")?,
        payload: row.try_get("payload")?,
        prev_hash: row.try_get("prev_hash")?,
        hash: row.try_get("hash")?,
    })
}
