//! Announcement fan-out: one material change to a procedure whose audience is 10,000 people,
//! planned, recorded (announcement, 10,000 acknowledgement requirements, ledger entry) and
//! queued (10,000 DMs and a channel post) in one transaction. Target: under 1 s.
//! Run with `cargo bench --bench fanout`; set PROCBOT_BENCH_POSTGRES_URL (a database URL on a
//! server where the bench may create databases) to measure PostgreSQL too.

use std::sync::Arc;

use procbot::adapters::console::ConsolePort;
use procbot::clock::SystemClock;
use procbot::core::check::{SourceContent, SourceFile};
use procbot::core::port::ChatPort;
use procbot::core::snapshot::{Snapshot, build_snapshot};
use procbot::engine::library::Library;
use procbot::engine::{Engine, Target};
use procbot::store::Store;
use tokio::sync::Notify;

const PEOPLE: usize = 10_000;

fn main() {
    divan::main();
}

fn snapshot() -> Snapshot {
    let members: Vec<String> = (0..PEOPLE).map(|n| format!("p{n}@example.com")).collect();
    let directory = format!("teams:\n  staff: [{}]\n", members.join(", "));
    let procedure = "---\nid: backup\ntitle: Back up\nowner: p0@example.com\naudience: [staff]\nversion: 1.0.0\nlast_reviewed: 2026-06-01\n---\n# Back up\n\n## Purpose\nKeep data.\n\n## Steps\n1. Back up.\n";
    build_snapshot(
        vec![SourceFile {
            path: "backup.md".into(),
            content: SourceContent::Bytes(procedure.as_bytes().to_vec()),
        }],
        Some(SourceFile {
            path: "directory.yaml".into(),
            content: SourceContent::Bytes(directory.into_bytes()),
        }),
        chrono::NaiveDate::from_ymd_opt(2026, 12, 1).unwrap(),
        None,
        None,
    )
}

struct Fresh {
    runtime: tokio::runtime::Runtime,
    engine: Engine,
    _dir: tempfile::TempDir,
}

fn fresh(url: Option<&str>) -> Fresh {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = runtime.block_on(async {
        let url = match url {
            Some(admin) => {
                use sqlx::Connection;
                sqlx::any::install_default_drivers();
                let name = format!("procbot_bench_{}", std::process::id());
                let mut connection = sqlx::AnyConnection::connect(admin).await.unwrap();
                sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut connection)
                    .await
                    .unwrap();
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(&mut connection)
                    .await
                    .unwrap();
                format!("{}/{name}", admin.rsplit_once('/').unwrap().0)
            }
            None => format!("sqlite://{}", dir.path().join("bench.db").display()),
        };
        Store::connect(&url).await.unwrap()
    });
    let port: Arc<dyn ChatPort> = Arc::new(ConsolePort::new());
    let engine = Engine::new(
        store,
        Arc::new(SystemClock),
        Arc::new(Library::default()),
        vec![Target {
            platform: port.platform(),
            announce_channel: Some("#procedures".into()),
        }],
        Arc::new(Notify::new()),
    );
    Fresh {
        runtime,
        engine,
        _dir: dir,
    }
}

fn announce(fresh: &Fresh, snapshot: &Snapshot) {
    let recorded = fresh
        .runtime
        .block_on(fresh.engine.announce(None, snapshot, &[]))
        .unwrap();
    assert_eq!(recorded.queued, PEOPLE);
}

#[divan::bench(sample_count = 5, sample_size = 1)]
fn queue_10k_recipients_sqlite(bencher: divan::Bencher) {
    let snapshot = snapshot();
    bencher
        .with_inputs(|| fresh(None))
        .bench_local_refs(|fresh| announce(fresh, &snapshot));
}

#[divan::bench(sample_count = 5, sample_size = 1)]
fn queue_10k_recipients_postgres(bencher: divan::Bencher) {
    let Ok(url) = std::env::var("PROCBOT_BENCH_POSTGRES_URL") else {
        eprintln!("PROCBOT_BENCH_POSTGRES_URL is not set: PostgreSQL not measured");
        return;
    };
    let snapshot = snapshot();
    bencher
        .with_inputs(|| fresh(Some(&url)))
        .bench_local_refs(|fresh| announce(fresh, &snapshot));
}

/// The pure part: deciding who gets what, and composing 10,000 DMs.
#[divan::bench(sample_count = 5, sample_size = 1)]
fn plan_10k_recipients(bencher: divan::Bencher) {
    let snapshot = snapshot();
    bencher.bench_local(|| {
        let plan =
            procbot::core::announce::plan_announcements(None, &snapshot, &[], &Default::default());
        assert_eq!(plan.direct.len(), PEOPLE);
        plan
    });
}
