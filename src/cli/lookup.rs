//! `procbot lookup`: one question (or a batch from stdin) against the procedures.

use std::io::{BufRead, Write};

use serde::Serialize;

use crate::search::{Hit, LookupResult};

#[derive(Serialize)]
struct JsonHit<'a> {
    id: &'a str,
    title: &'a str,
    score: f64,
}

#[derive(Serialize)]
struct JsonLookup<'a> {
    query: &'a str,
    results: Vec<JsonHit<'a>>,
}

fn rounded(score: f32) -> f64 {
    (f64::from(score) * 1000.0).round() / 1000.0
}

/// `{"query": "...", "results": [{"id", "title", "score"}]}`, best first.
pub fn render_json(query: &str, result: &LookupResult) -> String {
    let json = JsonLookup {
        query,
        results: result
            .results
            .iter()
            .map(|hit| JsonHit {
                id: hit.id.as_str(),
                title: &hit.title,
                score: rounded(hit.score),
            })
            .collect(),
    };
    serde_json::to_string(&json).unwrap_or_default()
}

fn line(hit: &Hit) -> String {
    let privacy = if hit.private_only {
        "  [private: show only in a DM]"
    } else {
        ""
    };
    format!("{} ({}){privacy}", hit.title, hit.id)
}

pub fn render_human(query: &str, result: &LookupResult) -> String {
    if result.results.is_empty() {
        let mut text = format!("No procedure matches “{query}”.\n");
        if !result.suggestions.is_empty() {
            text.push_str("Did you mean:\n");
            for hit in &result.suggestions {
                text.push_str(&format!("  - {}\n", line(hit)));
            }
        }
        text.push_str("Try other words, or list every procedure with `procbot check` or `/procedure list` in chat.\n");
        return text;
    }
    let mut text = String::new();
    for (rank, hit) in result.results.iter().enumerate() {
        text.push_str(&format!(
            "{}. {}  score {:.2}\n",
            rank + 1,
            line(hit),
            hit.score
        ));
    }
    text
}

/// Reads one query a line from `input` and writes one JSON line per query.
pub fn run_batch(
    input: &mut dyn BufRead,
    output: &mut dyn Write,
    mut lookup: impl FnMut(&str) -> Result<LookupResult, String>,
) -> Result<(), String> {
    let mut line = String::new();
    loop {
        line.clear();
        let read = input
            .read_line(&mut line)
            .map_err(|error| format!("reading stdin: {error}"))?;
        if read == 0 {
            return Ok(());
        }
        let query = line.trim();
        if query.is_empty() {
            continue;
        }
        let result = lookup(query)?;
        writeln!(output, "{}", render_json(query, &result))
            .map_err(|error| format!("writing: {error}"))?;
    }
}
