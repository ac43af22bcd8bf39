//! Fresh databases for tests: a SQLite file in a temporary folder, or a new PostgreSQL database
//! on the local server (127.0.0.1:5432, or PROCBOT_TEST_POSTGRES_URL). An unreachable
//! PostgreSQL fails the test; it is never skipped.

use std::sync::atomic::{AtomicU32, Ordering};

use procbot::store::Store;
use sqlx::Connection;

/// The server tests create their databases on.
fn admin_url() -> String {
    std::env::var("PROCBOT_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string())
}

static NEXT: AtomicU32 = AtomicU32::new(0);

pub(crate) struct TestDb {
    pub(crate) url: String,
    _dir: Option<tempfile::TempDir>,
    postgres_name: Option<String>,
}

impl TestDb {
    pub(crate) fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().unwrap();
        TestDb {
            url: format!("sqlite://{}", dir.path().join("procbot.db").display()),
            _dir: Some(dir),
            postgres_name: None,
        }
    }

    pub(crate) async fn postgres() -> TestDb {
        sqlx::any::install_default_drivers();
        let admin = admin_url();
        let mut connection = sqlx::AnyConnection::connect(&admin).await.unwrap_or_else(|error| {
            panic!(
                "PostgreSQL is needed for this test and is not reachable at {admin}: {error}. \
                 Start it (pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start) \
                 or set PROCBOT_TEST_POSTGRES_URL."
            )
        });
        let name = format!(
            "procbot_test_{}_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed),
            chrono::Utc::now().timestamp_micros() % 1_000_000
        );
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut connection)
            .await
            .unwrap();
        connection.close().await.unwrap();
        let base = admin.rsplit_once('/').map(|(base, _)| base).unwrap();
        TestDb {
            url: format!("{base}/{name}"),
            _dir: None,
            postgres_name: Some(name),
        }
    }

    /// Makes a PostgreSQL database refuse connections (and drops the open ones), or lets it
    /// take them again: the database going away for a while.
    pub(crate) async fn set_available(&self, available: bool) {
        let name = self
            .postgres_name
            .as_ref()
            .expect("a PostgreSQL test database");
        let mut connection = sqlx::AnyConnection::connect(&admin_url()).await.unwrap();
        sqlx::query(&format!(
            "ALTER DATABASE {name} ALLOW_CONNECTIONS {available}"
        ))
        .execute(&mut connection)
        .await
        .unwrap();
        if !available {
            sqlx::query(&format!(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}' AND pid <> pg_backend_pid()"
            ))
            .execute(&mut connection)
            .await
            .unwrap();
        }
        let _ = connection.close().await;
    }

    pub(crate) async fn store(&self) -> Store {
        Store::connect(&self.url).await.unwrap()
    }

    /// Drops a PostgreSQL database (a SQLite file goes with its folder).
    pub(crate) async fn finish(self) {
        if let Some(name) = &self.postgres_name {
            let mut connection = sqlx::AnyConnection::connect(&admin_url()).await.unwrap();
            sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&mut connection)
                .await
                .unwrap();
            let _ = connection.close().await;
        }
    }
}

/// Runs each listed `async fn(&TestDb)` against SQLite and against PostgreSQL.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod on_sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let db = crate::db::TestDb::sqlite();
                    super::$name(&db).await;
                    db.finish().await;
                }
            )*
        }
        mod on_postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let db = crate::db::TestDb::postgres().await;
                    super::$name(&db).await;
                    db.finish().await;
                }
            )*
        }
    };
}
pub(crate) use on_both_backends;
