//! The store: one sqlx `AnyPool` over SQLite (a file, WAL; the default) or PostgreSQL (when
//! `database.url` says `postgres://`), with migrations per backend applied at start-up.
//!
//! Queries are runtime queries with `$N` placeholders and portable column types (BIGINT unix
//! milliseconds, TEXT, 0/1 flags), so the same SQL runs on both; the few places that differ
//! (claiming outbox rows) branch on `Backend`.

pub mod evidence;
pub mod ledger;
pub mod outbox;
pub mod runs;
pub mod schedule;
pub mod sync_state;

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, ConnectOptions, Connection, Executor};

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "database.url `{url}` is not supported: use sqlite://FILE or postgres://USER@HOST:PORT/DB"
    )]
    UnsupportedUrl { url: String },
    #[error("cannot open the database {url}: {source}")]
    Connect {
        url: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("cannot bring the database schema up to date: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database error: {0}")]
    Query(#[from] sqlx::Error),
    #[error("stored data is not what procbot wrote: {0}")]
    Corrupt(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A handle on the database; cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
}

/// Unix milliseconds, the store's time format.
pub fn to_millis(time: DateTime<Utc>) -> i64 {
    time.timestamp_millis()
}

pub fn from_millis(millis: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(millis)
        .single()
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// Hides the password in a database URL for messages and logs.
pub fn redact_database_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("****"));
            parsed.to_string()
        }
        _ => url.to_string(),
    }
}

impl Store {
    /// Opens (creating a SQLite file if missing) and migrates the database at `url`.
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let (backend, url_to_open) = if let Some(rest) = url.strip_prefix("sqlite:") {
            let mut url = format!("sqlite:{rest}");
            if !rest.contains("mode=") && !rest.contains(":memory:") {
                url.push(if rest.contains('?') { '&' } else { '?' });
                url.push_str("mode=rwc");
            }
            (Backend::Sqlite, url)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            (Backend::Postgres, url.to_string())
        } else {
            return Err(StoreError::UnsupportedUrl {
                url: redact_database_url(url),
            });
        };
        let connect_error = |source| StoreError::Connect {
            url: redact_database_url(url),
            source,
        };
        let options = AnyConnectOptions::from_str(&url_to_open).map_err(connect_error)?;
        // One plain connection first: a refused or misnamed server fails now, clearly, instead
        // of after the pool's acquire timeout.
        options
            .connect()
            .await
            .map_err(connect_error)?
            .close()
            .await
            .map_err(connect_error)?;
        let pool = match backend {
            Backend::Sqlite => {
                AnyPoolOptions::new()
                    // SQLite has one writer; a handful of readers is plenty.
                    .max_connections(4)
                    .acquire_timeout(Duration::from_secs(30))
                    .after_connect(|connection, _| {
                        Box::pin(async move {
                            connection
                                .execute(
                                    "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                                     PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON;",
                                )
                                .await?;
                            Ok(())
                        })
                    })
                    .connect_with(options)
                    .await
            }
            Backend::Postgres => {
                AnyPoolOptions::new()
                    .max_connections(8)
                    .acquire_timeout(Duration::from_secs(30))
                    .connect_with(options)
                    .await
            }
        }
        .map_err(connect_error)?;
        match backend {
            Backend::Sqlite => SQLITE_MIGRATIONS.run(&pool).await?,
            Backend::Postgres => POSTGRES_MIGRATIONS.run(&pool).await?,
        }
        Ok(Store { pool, backend })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Closes every connection, waiting for queries in flight.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// A write transaction. On SQLite it starts with a write so that two writers queue on the
    /// busy timeout instead of failing to upgrade a read lock.
    pub(crate) async fn begin_write(
        &self,
    ) -> Result<sqlx::Transaction<'static, sqlx::Any>, StoreError> {
        let mut transaction = self.pool.begin().await?;
        if self.backend == Backend::Sqlite {
            sqlx::query("UPDATE ledger_head SET id = id WHERE id = 1")
                .execute(&mut *transaction)
                .await?;
        }
        Ok(transaction)
    }
}
