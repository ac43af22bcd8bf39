//! Load, delivery and memory of procbot as it runs, measured against the fake Slack on
//! loopback: signed slash commands over HTTP (latency at 500 requests/s and at saturation),
//! acknowledgement ingestion on SQLite and PostgreSQL, one announcement's fan-out delivered
//! against a workspace posting limit, and the memory of `procbot serve` idle and loaded with
//! 1,000 procedures. Prints tables for BENCHMARKS.md.
//!
//! `cargo bench --bench load` runs everything; `cargo bench --bench load -- slash` (or
//! `acks`, `fanout`, `memory`) one part. PROCBOT_BENCH_POSTGRES_URL adds PostgreSQL to `acks`;
//! PROCBOT_BENCH_FANOUT (recipients, default 10000) and PROCBOT_BENCH_RATE (posts a second
//! the fake allows and procbot is set to, default 200) shape `fanout`.

// The fake Slack and the process helpers of the integration tests, shared rather than copied;
// the benchmark uses only part of each.
#[allow(dead_code)]
#[path = "../tests/procbot/fake_slack.rs"]
mod fake_slack;
#[allow(dead_code)]
#[path = "../tests/procbot/helpers.rs"]
mod helpers;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use fake_slack::FakeSlack;
use helpers::{ServeProcess, TestRepo};

const SIGNING_SECRET: &str = "load-bench-signing-secret";

fn main() {
    let part = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let all = part.is_none();
    let wanted = |name: &str| all || part.as_deref() == Some(name);
    if wanted("slash") {
        runtime.block_on(slash());
    }
    if wanted("acks") {
        runtime.block_on(acks());
    }
    if wanted("fanout") {
        runtime.block_on(fanout());
    }
    if wanted("memory") {
        runtime.block_on(memory());
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn millis(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn serve_env(
    repo: &Path,
    fake: &FakeSlack,
    extra: &[(&'static str, String)],
) -> Vec<(&'static str, String)> {
    let mut env = vec![
        (
            "PROCBOT_PROCEDURES__STATE_FILE",
            repo.join("state.json").display().to_string(),
        ),
        (
            "PROCBOT_DATABASE__URL",
            format!("sqlite://{}", repo.join("procbot.db").display()),
        ),
        ("PROCBOT_SLACK__BOT_TOKEN", "xoxb-load".to_string()),
        ("PROCBOT_SLACK__MODE", "http".to_string()),
        ("PROCBOT_SLACK__SIGNING_SECRET", SIGNING_SECRET.to_string()),
        ("PROCBOT_SLACK__API_BASE_URL", fake.api_url()),
        (
            "PROCBOT_LOG__LEVEL",
            "warn,procbot::startup=info".to_string(),
        ),
    ];
    env.extend_from_slice(extra);
    env
}

async fn start(dir: &Path, env: Vec<(&'static str, String)>) -> ServeProcess {
    let dir = dir.to_path_buf();
    tokio::task::spawn_blocking(move || ServeProcess::start(&dir, &env))
        .await
        .unwrap()
}

/// A signed slash command from the CEO of the starter directory.
fn command(text: &str) -> (String, String, String) {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("team_id", "T0ACME"),
            ("channel_id", "C0GENERAL"),
            ("user_id", "U01CEO0001"),
            ("command", "/procedure"),
            ("text", text),
            (
                "response_url",
                "https://hooks.slack.com/commands/T0ACME/1/x",
            ),
            ("trigger_id", "1.2.3"),
        ])
        .finish();
    let timestamp = chrono::Utc::now().timestamp().to_string();
    let mut mac = Hmac::<Sha256>::new_from_slice(SIGNING_SECRET.as_bytes()).unwrap();
    mac.update(format!("v0:{timestamp}:{body}").as_bytes());
    let signature: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    (body, timestamp, format!("v0={signature}"))
}

fn queries() -> Vec<String> {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/lookup/queries.tsv"),
    )
    .unwrap();
    text.lines()
        .skip(1)
        .filter_map(|line| line.splitn(3, '\t').nth(2).map(str::to_string))
        .collect()
}

async fn one_command(client: &reqwest::Client, url: &str, query: &str) -> bool {
    let (body, timestamp, signature) = command(query);
    match client
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-slack-request-timestamp", timestamp)
        .header("x-slack-signature", signature)
        .body(body)
        .send()
        .await
    {
        Ok(response) => response.status().is_success() && response.bytes().await.is_ok(),
        Err(_) => false,
    }
}

fn report(label: &str, mut latencies: Vec<Duration>, errors: usize, elapsed: Duration) {
    latencies.sort();
    #[allow(clippy::cast_precision_loss)]
    let throughput = latencies.len() as f64 / elapsed.as_secs_f64();
    println!(
        "| {label} | {} | {:.0}/s | {} | {} | {} | {} | {errors} |",
        latencies.len(),
        throughput,
        millis(percentile(&latencies, 0.5)),
        millis(percentile(&latencies, 0.9)),
        millis(percentile(&latencies, 0.99)),
        millis(latencies.last().copied().unwrap_or_default()),
    );
}

/// Signed slash commands (signature check, lookup, recording the lookup in the ledger,
/// Block Kit rendering) at 500 a second, then as fast as 16 clients can send them.
async fn slash() {
    let fake = FakeSlack::start(Vec::new()).await;
    let data = TestRepo::new();
    let procedures = Path::new(env!("CARGO_MANIFEST_DIR")).join("procedures");
    let env = serve_env(
        data.path(),
        &fake,
        &[("PROCBOT_PROCEDURES__PATH", procedures.display().to_string())],
    );
    let mut server = start(data.path(), env).await;
    let url = format!("http://{}/slack/commands", server.address);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()
        .unwrap();
    let queries = Arc::new(queries());
    // Warm up: connections, caches.
    for query in queries.iter().take(50) {
        one_command(&client, &url, query).await;
    }
    println!("\nSlash commands over HTTP (starter library, SQLite, one process on 2 cores):\n");
    println!("| load | requests | throughput | p50 | p90 | p99 | max | errors |");
    println!("|---|---|---|---|---|---|---|---|");
    // Open loop: a request every 2 ms whatever the answers do; latency counts from when
    // the request was due, so a stall shows.
    let seconds = 10;
    let total = 500 * seconds;
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(total);
    for i in 0..total {
        let due = started + Duration::from_micros(2_000 * i as u64);
        tokio::time::sleep_until(due.into()).await;
        let client = client.clone();
        let url = url.clone();
        let query = queries[i % queries.len()].clone();
        tasks.push(tokio::spawn(async move {
            let ok = one_command(&client, &url, &query).await;
            (due.elapsed(), ok)
        }));
    }
    let mut latencies = Vec::with_capacity(total);
    let mut errors = 0;
    for task in tasks {
        let (latency, ok) = task.await.unwrap();
        if ok {
            latencies.push(latency);
        } else {
            errors += 1;
        }
    }
    report("500 requests/s, 10 s", latencies, errors, started.elapsed());
    // Closed loop: 16 clients, each sending its next request when the last is answered.
    let started = Instant::now();
    let until = started + Duration::from_secs(10);
    let mut workers = Vec::new();
    for worker in 0..16 {
        let client = client.clone();
        let url = url.clone();
        let queries = queries.clone();
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0;
            let mut i = worker;
            while Instant::now() < until {
                let sent = Instant::now();
                if one_command(&client, &url, &queries[i % queries.len()]).await {
                    latencies.push(sent.elapsed());
                } else {
                    errors += 1;
                }
                i += 16;
            }
            (latencies, errors)
        }));
    }
    let mut latencies = Vec::new();
    let mut errors = 0;
    for worker in workers {
        let (mut l, e) = worker.await.unwrap();
        latencies.append(&mut l);
        errors += e;
    }
    report(
        "saturation, 16 clients, 10 s",
        latencies,
        errors,
        started.elapsed(),
    );
    server.signal("TERM");
}

/// Acknowledgements typed in chat (`ack <id>`: the engine resolves the person, records the
/// acknowledgement and its ledger entry), one after another and from 8 people at once.
async fn acks() {
    use procbot::clock::SystemClock;
    use procbot::core::port::Platform;
    use procbot::core::request::Request;
    use procbot::engine::library::Library;
    use procbot::engine::{Actor, Engine, Origin, Target};

    const PEOPLE: usize = 4_000;
    let members: Vec<String> = (0..PEOPLE).map(|n| format!("p{n}@example.com")).collect();
    let directory = format!("teams:\n  staff: [{}]\n", members.join(", "));
    let procedure = "---\nid: backup\ntitle: Back up\nowner: p0@example.com\naudience: [staff]\nversion: 1.0.0\nlast_reviewed: 2026-06-01\n---\n# Back up\n\n## Steps\n1. Back up.\n";
    let snapshot = procbot::core::snapshot::build_snapshot(
        vec![procbot::core::check::SourceFile {
            path: "backup.md".into(),
            content: procbot::core::check::SourceContent::Bytes(procedure.as_bytes().to_vec()),
        }],
        Some(procbot::core::check::SourceFile {
            path: "directory.yaml".into(),
            content: procbot::core::check::SourceContent::Bytes(directory.into_bytes()),
        }),
        chrono::NaiveDate::from_ymd_opt(2026, 12, 1).unwrap(),
        None,
        None,
    );
    println!("\nAcknowledgement ingestion ({PEOPLE} people asked, each acknowledges once):\n");
    println!("| database | one at a time | 8 at once |");
    println!("|---|---|---|");
    let data = TestRepo::new();
    let mut backends = vec![(
        "SQLite (file, WAL)",
        format!("sqlite://{}", data.path().join("acks.db").display()),
    )];
    if let Ok(admin) = std::env::var("PROCBOT_BENCH_POSTGRES_URL") {
        use sqlx::Connection;
        sqlx::any::install_default_drivers();
        let name = format!("procbot_bench_acks_{}", std::process::id());
        let mut connection = sqlx::AnyConnection::connect(&admin).await.unwrap();
        sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&mut connection)
            .await
            .unwrap();
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut connection)
            .await
            .unwrap();
        backends.push((
            "PostgreSQL 15 (local)",
            format!("{}/{name}", admin.rsplit_once('/').unwrap().0),
        ));
    } else {
        eprintln!("PROCBOT_BENCH_POSTGRES_URL is not set: PostgreSQL not measured");
    }
    for (label, url) in backends {
        let store = procbot::store::Store::connect(&url).await.unwrap();
        let library = Arc::new(Library::default());
        library.serve(Arc::new(snapshot.clone())).unwrap();
        let engine = Arc::new(Engine::new(
            store.clone(),
            Arc::new(SystemClock),
            library,
            vec![Target {
                platform: Platform::Console,
                announce_channel: None,
            }],
            Arc::new(tokio::sync::Notify::new()),
        ));
        engine.announce(None, &snapshot, &[]).await.unwrap();
        let actor = |n: usize| Actor {
            platform: Platform::Console,
            workspace: "local".into(),
            user_id: format!("p{n}@example.com"),
            email: procbot::core::procedure::Email::parse(&format!("p{n}@example.com")).ok(),
        };
        let half = PEOPLE / 2;
        let started = Instant::now();
        for n in 0..half {
            engine
                .handle(
                    &actor(n),
                    Request::from_text("ack backup"),
                    &Origin::default(),
                )
                .await;
        }
        #[allow(clippy::cast_precision_loss)]
        let sequential = half as f64 / started.elapsed().as_secs_f64();
        let started = Instant::now();
        let mut tasks = Vec::new();
        for worker in 0..8 {
            let engine = engine.clone();
            tasks.push(tokio::spawn(async move {
                let mut n = half + worker;
                while n < PEOPLE {
                    engine
                        .handle(
                            &actor(n),
                            Request::from_text("ack backup"),
                            &Origin::default(),
                        )
                        .await;
                    n += 8;
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        #[allow(clippy::cast_precision_loss)]
        let concurrent = (PEOPLE - half) as f64 / started.elapsed().as_secs_f64();
        let pending = store.pending_for("p1@example.com").await.unwrap();
        assert!(pending.is_empty(), "every acknowledgement recorded");
        println!("| {label} | {sequential:.0}/s | {concurrent:.0}/s |");
        store.close().await;
    }
}

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One first start announcing to N people, delivered through the fake Slack that allows R
/// posts a second across the workspace, with procbot set to the same rate.
async fn fanout() {
    let people = env_number("PROCBOT_BENCH_FANOUT", 10_000);
    let rate = env_number("PROCBOT_BENCH_RATE", 200);
    let fake = FakeSlack::start(Vec::new()).await;
    #[allow(clippy::cast_precision_loss)]
    fake.enforce_post_rate(rate as f64);
    let data = TestRepo::new();
    let mut directory = String::from("people:\n");
    for n in 0..people {
        directory.push_str(&format!(
            "  p{n}@example.com: {{ name: P{n}, slack: U{n:06} }}\n"
        ));
    }
    data.write("procedures/directory.yaml", directory);
    data.write(
        "procedures/clean-desk.md",
        "---\nid: clean-desk\ntitle: Keep a clean desk\nowner: p0@example.com\naudience: [everyone]\nversion: 1.0.0\nlast_reviewed: 2026-06-01\n---\n# Keep a clean desk\n\n## Steps\n1. Lock your screen.\n",
    );
    let env = serve_env(
        data.path(),
        &fake,
        &[
            (
                "PROCBOT_PROCEDURES__PATH",
                data.path().join("procedures").display().to_string(),
            ),
            ("PROCBOT_SLACK__MAX_MESSAGES_PER_SECOND", rate.to_string()),
        ],
    );
    let started = Instant::now();
    let mut server = start(data.path(), env).await;
    loop {
        let delivered = fake.posted_count();
        if delivered >= people {
            let elapsed = started.elapsed();
            #[allow(clippy::cast_precision_loss)]
            let minimum = people as f64 / rate as f64;
            let duplicates: usize = (0..people)
                .map(|n| fake.posted_to(&format!("U{n:06}")).len().saturating_sub(1))
                .sum();
            println!(
                "\nFan-out of one announcement through the fake Slack ({rate} posts/s allowed, procbot set to {rate}/s):\n"
            );
            println!(
                "| recipients | delivered in | theoretical minimum | ratio | 429s received | duplicates |"
            );
            println!("|---|---|---|---|---|---|");
            println!(
                "| {people} | {:.1} s | {minimum:.1} s | {:.2} | {} | {duplicates} |",
                elapsed.as_secs_f64(),
                elapsed.as_secs_f64() / minimum,
                fake.rate_limited()
            );
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(3600),
            "fan-out stalled at {delivered}: {}",
            server.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    server.signal("TERM");
}

fn resident_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kib| kib.parse().ok())
        })
        .unwrap_or(0)
}

/// `procbot serve` with 1,000 procedures (the starter library's files under new ids): its
/// resident memory once idle, and after 5,000 slash commands.
async fn memory() {
    let data = TestRepo::new();
    let starter = Path::new(env!("CARGO_MANIFEST_DIR")).join("procedures");
    let mut sources = Vec::new();
    for entry in std::fs::read_dir(&starter).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            for inner in std::fs::read_dir(&path).unwrap().flatten() {
                sources.push(inner.path());
            }
        } else {
            sources.push(path);
        }
    }
    let sources: Vec<String> = sources
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .filter(|p| {
            !p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("README"))
        })
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .collect();
    for n in 0..1_000 {
        let text = &sources[n % sources.len()];
        let text = text
            .lines()
            .map(|line| match line.strip_prefix("id: ") {
                Some(id) => format!("id: {id}-{n}"),
                None => line.to_string(),
            })
            .collect::<Vec<_>>()
            .join("\n");
        data.write(&format!("procedures/p{n}.md"), text);
    }
    let directory = std::fs::read_to_string(starter.join("directory.yaml")).unwrap();
    data.write("procedures/directory.yaml", directory);
    let fake = FakeSlack::start(Vec::new()).await;
    let env = serve_env(
        data.path(),
        &fake,
        &[(
            "PROCBOT_PROCEDURES__PATH",
            data.path().join("procedures").display().to_string(),
        )],
    );
    let mut server = start(data.path(), env).await;
    let pid = server.child.id();
    // Let the welcome DMs go and the first minute's scheduler tick pass.
    tokio::time::sleep(Duration::from_secs(10)).await;
    let idle = resident_kib(pid);
    let url = format!("http://{}/slack/commands", server.address);
    let client = reqwest::Client::new();
    let queries = queries();
    for i in 0..5_000 {
        one_command(&client, &url, &queries[i % queries.len()]).await;
    }
    let loaded = resident_kib(pid);
    println!("\nMemory of procbot serve with 1,000 procedures (VmRSS):\n");
    println!("| state | resident |");
    println!("|---|---|");
    println!(
        "| idle, 10 s after start | {:.1} MB |",
        idle as f64 / 1024.0
    );
    println!(
        "| after 5,000 slash commands | {:.1} MB |",
        loaded as f64 / 1024.0
    );
    server.signal("TERM");
}
