//! Lookup speed: index build for 1,000 and 10,000 generated procedures, and query latency
//! (p50, p99) at 10,000, with the project's evaluation queries: raw over every run, and over
//! each query's median run. Prints a table; figures go into BENCHMARKS.md. Run with
//! `cargo bench --bench lookup`.

use std::path::Path;
use std::time::{Duration, Instant};

use procbot::core::procedure::{Procedure, ProcedureId};
use procbot::core::snapshot::build_snapshot;
use procbot::repo::{DIRECTORY_FILE, read_folder};
use procbot::search::{SearchIndex, Viewer};

/// Words mixed into generated procedures so that 10,000 of them are not 29 repeated.
const FILLER: &[&str] = &[
    "invoice",
    "kubernetes",
    "cluster",
    "vendor",
    "payroll",
    "firewall",
    "router",
    "printer",
    "badge",
    "visitor",
    "contract",
    "renewal",
    "licence",
    "audit",
    "evidence",
    "ticket",
    "queue",
    "capacity",
    "latency",
    "database",
    "replica",
    "bucket",
    "warehouse",
    "pipeline",
    "notebook",
    "model",
    "dataset",
    "label",
    "annotation",
    "consent",
    "retention",
    "archive",
    "archive",
    "escrow",
    "certificate",
    "domain",
    "dns",
    "email",
    "calendar",
    "mailbox",
    "shared drive",
    "wiki",
];

/// A deterministic generator (xorshift), so every run indexes the same text.
struct Random(u64);

impl Random {
    fn next(&mut self) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        usize::try_from(self.0 % 1_000_003).unwrap_or(0)
    }
}

fn generated_procedures(count: usize) -> Vec<Procedure> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("procedures");
    let files =
        read_folder(&root, Path::new(DIRECTORY_FILE)).expect("the starter library is readable");
    let today = chrono::NaiveDate::from_ymd_opt(2026, 12, 1).expect("a valid date");
    let snapshot = build_snapshot(files.procedures, files.directory, today, None, None);
    let starters: Vec<&Procedure> = snapshot
        .procedures
        .values()
        .map(|entry| &entry.procedure)
        .collect();
    let mut random = Random(0x5eed);
    (0..count)
        .map(|index| {
            let mut procedure = starters[index % starters.len()].clone();
            let extra: Vec<&str> = (0..4)
                .map(|_| FILLER[random.next() % FILLER.len()])
                .collect();
            procedure.id =
                ProcedureId::parse(&format!("{}-{index}", procedure.id)).expect("a valid id");
            procedure.title = format!("{} ({} {})", procedure.title, extra[0], extra[1]);
            procedure.keywords.push(extra[2].to_string());
            procedure
                .body
                .push_str(&format!("\nAlso covers {} and {}.\n", extra[2], extra[3]));
            procedure
        })
        .collect()
}

fn build(procedures: &[Procedure]) -> (SearchIndex, Duration) {
    let mut best = Duration::MAX;
    let mut index = None;
    for _ in 0..3 {
        let started = Instant::now();
        let built = SearchIndex::build(procedures.iter(), None, None).expect("the index builds");
        best = best.min(started.elapsed());
        index = Some(built);
    }
    (index.expect("built at least once"), best)
}

fn queries() -> Vec<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/lookup/queries.tsv");
    std::fs::read_to_string(path)
        .expect("the evaluation set is readable")
        .lines()
        .skip(1)
        .filter_map(|line| line.splitn(3, '\t').nth(2).map(str::to_string))
        .collect()
}

fn main() {
    // `cargo test --benches` runs benches once in test mode; keep that quick.
    if std::env::args().any(|arg| arg == "--test") {
        let procedures = generated_procedures(100);
        let (index, _) = build(&procedures);
        assert!(
            !index
                .lookup("backup", &Viewer::Operator, 5)
                .expect("lookup works")
                .results
                .is_empty()
        );
        return;
    }
    for count in [1_000, 10_000] {
        let procedures = generated_procedures(count);
        let (_, took) = build(&procedures);
        println!(
            "index build, {count:>6} procedures: {:>8.1} ms (best of 3)",
            took.as_secs_f64() * 1000.0
        );
    }
    let procedures = generated_procedures(10_000);
    let (index, _) = build(&procedures);
    let queries = queries();
    for query in &queries {
        index
            .lookup(query, &Viewer::Operator, 5)
            .expect("lookup works");
    }
    const ROUNDS: usize = 20;
    let mut latencies = Vec::new();
    for round in 0..ROUNDS {
        for query in &queries {
            let started = Instant::now();
            let result = index
                .lookup(query, &Viewer::Operator, 5)
                .expect("lookup works");
            latencies.push(started.elapsed());
            std::hint::black_box((round, result));
        }
    }
    // Each query's median over its rounds: on a shared machine, the raw tail also measures
    // whoever else is using the cores.
    let count = queries.len();
    let mut medians: Vec<(Duration, &String)> = (0..count)
        .map(|query| {
            let mut runs: Vec<Duration> = (0..ROUNDS)
                .map(|round| latencies[round * count + query])
                .collect();
            runs.sort();
            (runs[ROUNDS / 2], &queries[query])
        })
        .collect();
    medians.sort();
    latencies.sort();
    let at = |sorted: &[Duration], p: f64| {
        sorted[((sorted.len() as f64 - 1.0) * p).round() as usize].as_secs_f64() * 1000.0
    };
    let median_times: Vec<Duration> = medians.iter().map(|(time, _)| *time).collect();
    println!(
        "lookup at 10,000 procedures, {} queries: p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
        latencies.len(),
        at(&latencies, 0.50),
        at(&latencies, 0.99),
        at(&latencies, 1.0)
    );
    println!(
        "  per-query medians over {ROUNDS} rounds: p50 {:.3} ms, p99 {:.3} ms; slowest:",
        at(&median_times, 0.50),
        at(&median_times, 0.99)
    );
    for (time, query) in medians.iter().rev().take(3) {
        println!("    {:.3} ms  {query}", time.as_secs_f64() * 1000.0);
    }
}
