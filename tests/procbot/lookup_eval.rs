//! Lookup quality on the project's evaluation sets (`tests/lookup/`: the main set, a held-out
//! set and a fresh held-out set): top-1 accuracy, MRR@5 and abstention, against a plain BM25
//! baseline on the same sets.

use std::collections::BTreeMap;
use std::path::Path;

use procbot::core::procedure::Procedure;
use procbot::core::snapshot::{Snapshot, build_snapshot};
use procbot::repo::{DIRECTORY_FILE, read_folder};
use procbot::search::{SearchIndex, Viewer};
use tantivy::collector::TopDocs;
use tantivy::query::QueryParser;
use tantivy::schema::{STORED, Schema, TEXT, Value};
use tantivy::{Index, TantivyDocument, doc};

use crate::helpers::{project_root, today};

pub(crate) struct EvalQuery {
    pub(crate) category: String,
    pub(crate) expected: Option<String>,
    pub(crate) query: String,
}

pub(crate) fn eval_queries(file: &str) -> Vec<EvalQuery> {
    let text = std::fs::read_to_string(project_root().join("tests/lookup").join(file)).unwrap();
    text.lines()
        .skip(1)
        .map(|line| {
            let mut columns = line.splitn(3, '\t');
            let category = columns.next().unwrap().to_string();
            let expected = columns.next().unwrap();
            let query = columns.next().unwrap().to_string();
            EvalQuery {
                category,
                expected: (expected != "-").then(|| expected.to_string()),
                query,
            }
        })
        .collect()
}

pub(crate) fn starter_snapshot() -> Snapshot {
    let files = read_folder(
        &project_root().join("procedures"),
        Path::new(DIRECTORY_FILE),
    )
    .unwrap();
    build_snapshot(files.procedures, files.directory, today(), None, None)
}

#[derive(Default)]
struct Score {
    answerable: usize,
    top1: usize,
    reciprocal_rank: f64,
    unanswerable: usize,
    abstained: usize,
}

impl Score {
    fn add(&mut self, expected: &Option<String>, ranked: &[String]) {
        match expected {
            Some(expected) => {
                self.answerable += 1;
                if let Some(rank) = ranked.iter().take(5).position(|id| id == expected) {
                    self.reciprocal_rank += 1.0 / (rank as f64 + 1.0);
                    if rank == 0 {
                        self.top1 += 1;
                    }
                }
            }
            None => {
                self.unanswerable += 1;
                if ranked.is_empty() {
                    self.abstained += 1;
                }
            }
        }
    }

    fn top1(&self) -> f64 {
        self.top1 as f64 / self.answerable.max(1) as f64
    }

    fn mrr(&self) -> f64 {
        self.reciprocal_rank / self.answerable.max(1) as f64
    }

    fn abstention(&self) -> f64 {
        self.abstained as f64 / self.unanswerable.max(1) as f64
    }

    fn line(&self, name: &str) -> String {
        format!(
            "{name:<22} top-1 {:.3} ({}/{})  MRR@5 {:.3}  abstention {:.3} ({}/{})",
            self.top1(),
            self.top1,
            self.answerable,
            self.mrr(),
            self.abstention(),
            self.abstained,
            self.unanswerable
        )
    }
}

/// tantivy with its defaults over title and body, the top hits taken as they come.
fn baseline_rankings(procedures: &[&Procedure], queries: &[EvalQuery]) -> Vec<Vec<String>> {
    let mut schema = Schema::builder();
    let id = schema.add_text_field("id", STORED);
    let title = schema.add_text_field("title", TEXT);
    let body = schema.add_text_field("body", TEXT);
    let index = Index::create_in_ram(schema.build());
    let mut writer = index.writer_with_num_threads(1, 20_000_000).unwrap();
    for procedure in procedures {
        writer
            .add_document(doc!(id => procedure.id.as_str(), title => procedure.title.clone(), body => procedure.body.clone()))
            .unwrap();
    }
    writer.commit().unwrap();
    let searcher = index.reader().unwrap().searcher();
    // tantivy's defaults: OR of the query's terms over title and body, BM25.
    let parser = QueryParser::for_index(&index, vec![title, body]);
    queries
        .iter()
        .map(|query| {
            let (parsed, _) = parser.parse_query_lenient(&query.query);
            searcher
                .search(&parsed, &TopDocs::with_limit(5).order_by_score())
                .unwrap()
                .into_iter()
                .map(|(_, address)| {
                    let document: TantivyDocument = searcher.doc(address).unwrap();
                    document
                        .get_first(id)
                        .and_then(|v| v.as_str())
                        .unwrap_or("")
                        .to_string()
                })
                .collect()
        })
        .collect()
}

struct Evaluation {
    overall: Score,
    baseline: Score,
}

/// Scores the engine on one set. Misses are printed with the engine's explanation, except for
/// a set that must stay unseen while tuning (`show_misses` false).
fn evaluate(file: &str, show_misses: bool) -> Evaluation {
    let snapshot = starter_snapshot();
    let procedures: Vec<&Procedure> = snapshot.procedures.values().map(|e| &e.procedure).collect();
    let index = SearchIndex::build(
        procedures.iter().copied(),
        snapshot.directory.as_ref(),
        None,
    )
    .unwrap();
    let queries = eval_queries(file);

    let mut overall = Score::default();
    let mut by_category: BTreeMap<String, Score> = BTreeMap::new();
    let mut failures = Vec::new();
    for query in &queries {
        let result = index.lookup(&query.query, &Viewer::Operator, 5).unwrap();
        let ranked: Vec<String> = result
            .results
            .iter()
            .map(|hit| hit.id.as_str().to_string())
            .collect();
        overall.add(&query.expected, &ranked);
        by_category
            .entry(query.category.clone())
            .or_default()
            .add(&query.expected, &ranked);
        let correct = match &query.expected {
            Some(expected) => ranked.first() == Some(expected),
            None => ranked.is_empty(),
        };
        if !correct {
            failures.push(format!(
                "  [{}] {:?}: expected {}, got {:?}\n{}",
                query.category,
                query.query,
                query.expected.as_deref().unwrap_or("no match"),
                ranked.iter().take(3).collect::<Vec<_>>(),
                index.explain(&query.query).unwrap()
            ));
        }
    }
    let mut baseline = Score::default();
    for (query, ranked) in queries.iter().zip(baseline_rankings(&procedures, &queries)) {
        baseline.add(&query.expected, &ranked);
    }

    println!("== {file} ({} queries)", queries.len());
    println!("{}", overall.line("procbot lookup"));
    for (category, score) in &by_category {
        println!("{}", score.line(&format!("  {category}")));
    }
    println!("{}", baseline.line("BM25 baseline"));
    if show_misses {
        println!("misses ({}):\n{}", failures.len(), failures.join("\n"));
    } else {
        println!(
            "misses: {} (not shown: this set is not for tuning)",
            failures.len()
        );
    }
    Evaluation { overall, baseline }
}

#[test]
fn lookup_meets_the_quality_bar_on_the_evaluation_set() {
    let queries = eval_queries("queries.tsv");
    assert!(
        queries.len() >= 100,
        "the evaluation set needs at least 100 queries"
    );
    assert!(queries.iter().filter(|q| q.expected.is_none()).count() >= 10);
    let evaluation = evaluate("queries.tsv", true);
    let overall = &evaluation.overall;
    // The product's bar (issue "Lookup"): top-1 ≥ 0.9 and abstention ≥ 0.8.
    assert!(
        overall.top1() >= 0.9,
        "top-1 accuracy {:.3} fell below 0.9",
        overall.top1()
    );
    assert!(
        overall.abstention() >= 0.8,
        "abstention {:.3} fell below 0.8",
        overall.abstention()
    );
    assert!(overall.top1() > evaluation.baseline.top1() + 0.3);
}

/// The held-out set was written without sight of the engine or of the main set, and the
/// engine was never tuned on it: it measures how lookup generalises. Its floors sit just under
/// the level reached (BENCHMARKS.md), so a change that generalises worse fails.
#[test]
fn lookup_generalises_to_the_held_out_set() {
    let evaluation = evaluate("holdout.tsv", true);
    let overall = &evaluation.overall;
    assert!(
        overall.top1() >= 0.85,
        "held-out top-1 {:.3} fell below 0.85",
        overall.top1()
    );
    // 9 of its 12 no-match questions: one more flips the figure by 0.08.
    assert!(
        overall.abstention() >= 0.75,
        "held-out abstention {:.3} fell below 0.75",
        overall.abstention()
    );
    assert!(overall.top1() > evaluation.baseline.top1() + 0.2);
}

/// A second held-out set, written from the procedures' front matter alone before the engine
/// was changed in session 3 and never tuned on: 125 queries, 18 of them with no answer. Its
/// misses are not printed, so that nobody tunes on it by accident; its floors sit just under
/// the level reached.
#[test]
fn lookup_generalises_to_the_fresh_held_out_set() {
    let evaluation = evaluate("fresh.tsv", false);
    let overall = &evaluation.overall;
    assert!(
        overall.top1() >= 0.83,
        "fresh top-1 {:.3} fell below 0.83",
        overall.top1()
    );
    assert!(
        overall.abstention() >= 0.75,
        "fresh abstention {:.3} fell below 0.75",
        overall.abstention()
    );
    assert!(overall.top1() > evaluation.baseline.top1() + 0.2);
}
