//! Lookup: an in-memory tantivy index of a snapshot's procedures, and the ranking, confidence
//! rule and access filter that turn a question into the right procedure (or an honest "no
//! match").
//!
//! tantivy finds candidates with BM25 over weighted fields (title, keywords, id, summary,
//! steps, body, controls), using the concepts `query` extracts. Candidates are then re-scored
//! by how much of the question they cover, each concept weighted by its rarity (an unknown
//! word such as "pizza" weighs most), and dropped below a confidence threshold.

pub mod query;

use std::collections::{HashMap, HashSet};

use tantivy::collector::TopDocs;
use tantivy::query::{BooleanQuery, BoostQuery, Occur, Query, TermQuery};
use tantivy::schema::{
    FAST, Field, INDEXED, IndexRecordOption, STRING, Schema, TextFieldIndexing, TextOptions,
};
use tantivy::tokenizer::{
    Language, LowerCaser, RemoveLongFilter, SimpleTokenizer, Stemmer, TextAnalyzer,
};
use tantivy::{Index, IndexReader, TantivyDocument, Term};

use crate::core::directory::Directory;
use crate::core::procedure::{Email, Procedure, ProcedureId, SectionKind};
use crate::search::query::{
    ParsedQuery, SynonymTable, Vocabulary, parse_query, parse_synonym_lines, words,
};

/// The built-in synonym and jargon table; a repository extends it with its own `synonyms.txt`.
pub const BUILTIN_SYNONYMS: &str = include_str!("synonyms.txt");
/// The file in a procedures repository that adds synonym groups.
pub const SYNONYMS_FILE: &str = "synonyms.txt";

const TOKENIZER: &str = "procbot_en";
/// Candidates fetched from tantivy before re-scoring.
const CANDIDATES: usize = 50;
/// A result must cover at least this share of the question's (rarity-weighted) concepts.
const MIN_COVERAGE: f32 = 0.35;
/// How much each concept beyond two lowers `MIN_COVERAGE`, down to `MIN_COVERAGE_FLOOR`.
const COVERAGE_RELIEF_PER_CONCEPT: f32 = 0.02;
const MIN_COVERAGE_FLOOR: f32 = 0.2;
/// BM25 (normalised to the best candidate) breaks ties between similar coverage.
const BM25_SHARE: f32 = 0.3;
/// Results scoring below this share of the best one are dropped as noise.
const RELATIVE_CUTOFF: f32 = 0.5;
/// A synonym's weight when the word typed appears in no procedure.
const STAND_IN_WEIGHT: f32 = 0.9;
/// Near misses with at least this coverage are offered as "did you mean".
const SUGGESTION_COVERAGE: f32 = 0.25;

#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    #[error("search index: {0}")]
    Index(#[from] tantivy::TantivyError),
}

/// Who is looking, for the access rule.
#[derive(Clone, Debug)]
pub enum Viewer {
    /// An operator at the command line: may see everything.
    Operator,
    /// A person (their email, when known).
    Person(Option<Email>),
}

/// One procedure found.
#[derive(Clone, Debug, PartialEq)]
pub struct Hit {
    pub id: ProcedureId,
    pub title: String,
    pub score: f32,
    /// Confidential and restricted procedures may only be shown privately (ephemeral or DM).
    pub private_only: bool,
}

/// What a lookup found: results best first (empty when nothing matches well enough), and
/// "did you mean" suggestions when nothing did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LookupResult {
    pub results: Vec<Hit>,
    pub suggestions: Vec<Hit>,
}

#[derive(Clone, Copy)]
struct Fields {
    title: Field,
    summary: Field,
    keywords: Field,
    identifier: Field,
    controls: Field,
    steps: Field,
    body: Field,
    /// Everything above in one field: synonyms and corrections are looked up here only, which
    /// keeps queries with many alternatives cheap.
    all: Field,
    ordinal: Field,
}

/// Text fields and their weight in BM25 scoring.
fn weighted_fields(fields: &Fields) -> [(Field, f32); 6] {
    [
        (fields.title, 3.0),
        (fields.keywords, 2.5),
        (fields.identifier, 2.0),
        (fields.summary, 1.5),
        (fields.steps, 0.8),
        (fields.body, 0.5),
    ]
}

struct DocInfo {
    id: ProcedureId,
    title: String,
    private_only: bool,
    /// Who may see a private procedure; `None` for procedures everyone may see.
    audience: Option<HashSet<Email>>,
    /// Stems of each field, in the order of `FIELD_EVIDENCE`.
    field_stems: [HashSet<String>; 6],
    controls: Vec<String>,
}

/// How strongly finding a concept in each field (title, keywords, id, summary, steps, body)
/// says "this procedure is about it".
const FIELD_EVIDENCE: [f32; 6] = [1.0, 0.9, 0.9, 0.8, 0.5, 0.35];

/// A searchable index of one snapshot's procedures. Built once per snapshot and swapped.
pub struct SearchIndex {
    reader: IndexReader,
    fields: Fields,
    analyzer: TextAnalyzer,
    docs: Vec<DocInfo>,
    synonyms: SynonymTable,
    vocabulary: Vocabulary,
    /// Stem → number of procedures containing it, for rarity weights.
    document_frequency: HashMap<String, u32>,
}

fn analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(40))
        .filter(LowerCaser)
        .filter(Stemmer::new(Language::English))
        .build()
}

fn stems_of(analyzer: &mut TextAnalyzer, text: &str) -> Vec<String> {
    let mut stems = Vec::new();
    let mut stream = analyzer.token_stream(text);
    while stream.advance() {
        stems.push(stream.token().text.clone());
    }
    stems
}

fn stem_word(analyzer: &mut TextAnalyzer, word: &str) -> String {
    stems_of(analyzer, word)
        .into_iter()
        .next()
        .unwrap_or_else(|| word.to_string())
}

fn steps_text(procedure: &Procedure) -> String {
    fn collect(steps: &[crate::core::procedure::Step], out: &mut String) {
        for step in steps {
            out.push_str(&step.text);
            out.push('\n');
            collect(&step.substeps, out);
        }
    }
    let mut text = String::new();
    collect(&procedure.steps, &mut text);
    text
}

fn body_text(procedure: &Procedure) -> String {
    procedure
        .sections
        .iter()
        .filter(|section| section.kind != SectionKind::Steps)
        .map(|section| format!("{}\n{}\n", section.heading, section.markdown))
        .collect()
}

impl SearchIndex {
    /// Indexes `procedures`. `directory` resolves the audiences of private procedures;
    /// `extra_synonyms` is the repository's own `synonyms.txt`, if any.
    pub fn build<'a>(
        procedures: impl IntoIterator<Item = &'a Procedure>,
        directory: Option<&Directory>,
        extra_synonyms: Option<&str>,
    ) -> Result<SearchIndex, SearchError> {
        let text = TextOptions::default().set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer(TOKENIZER)
                .set_index_option(IndexRecordOption::WithFreqsAndPositions),
        );
        let mut schema = Schema::builder();
        let fields = Fields {
            title: schema.add_text_field("title", text.clone()),
            summary: schema.add_text_field("summary", text.clone()),
            keywords: schema.add_text_field("keywords", text.clone()),
            identifier: schema.add_text_field("identifier", text.clone()),
            controls: schema.add_text_field("controls", STRING),
            steps: schema.add_text_field("steps", text.clone()),
            body: schema.add_text_field("body", text.clone()),
            all: schema.add_text_field("all", text),
            ordinal: schema.add_u64_field("ordinal", FAST | INDEXED),
        };
        let index = Index::create_in_ram(schema.build());
        index.tokenizers().register(TOKENIZER, analyzer());
        let mut analyzer = analyzer();
        let mut raw_words = TextAnalyzer::builder(SimpleTokenizer::default())
            .filter(RemoveLongFilter::limit(40))
            .filter(LowerCaser)
            .build();

        // One indexing thread: results do not depend on it, and procbot shares the machine.
        let mut writer = index.writer_with_num_threads(1, 50_000_000)?;
        let mut docs = Vec::new();
        let mut vocabulary = Vocabulary::default();
        let mut document_frequency: HashMap<String, u32> = HashMap::new();
        for procedure in procedures {
            let keywords = procedure.keywords.join("\n");
            let identifier = procedure.id.as_str().replace('-', " ");
            let summary = procedure.summary.clone().unwrap_or_default();
            let steps = steps_text(procedure);
            let body = body_text(procedure);
            let mut document = TantivyDocument::default();
            document.add_text(fields.title, &procedure.title);
            document.add_text(fields.summary, &summary);
            document.add_text(fields.keywords, &keywords);
            document.add_text(fields.identifier, &identifier);
            for control in &procedure.controls {
                document.add_text(fields.controls, control.to_string());
            }
            document.add_text(fields.steps, &steps);
            document.add_text(fields.body, &body);
            document.add_text(
                fields.all,
                format!(
                    "{}\n{summary}\n{keywords}\n{identifier}\n{steps}\n{body}",
                    procedure.title
                ),
            );
            document.add_u64(fields.ordinal, docs.len() as u64);
            writer.add_document(document)?;

            let strong_text = format!("{}\n{summary}\n{keywords}\n{identifier}", procedure.title);
            let field_stems = [
                procedure.title.as_str(),
                keywords.as_str(),
                identifier.as_str(),
                summary.as_str(),
                steps.as_str(),
                body.as_str(),
            ]
            .map(|text| {
                stems_of(&mut analyzer, text)
                    .into_iter()
                    .collect::<HashSet<String>>()
            });
            let all: HashSet<&String> = field_stems.iter().flatten().collect();
            for stem in all {
                *document_frequency.entry(stem.clone()).or_default() += 1;
            }
            let full_text = format!("{strong_text}\n{steps}\n{body}");
            let mut stream = raw_words.token_stream(&full_text);
            while stream.advance() {
                let word = &stream.token().text;
                if word.chars().count() >= 3 && !vocabulary.knows_word(word) {
                    let stem = stem_word(&mut analyzer, word);
                    vocabulary.add(word, &stem);
                }
            }
            let private_only = procedure.classification.is_private();
            let audience = private_only.then(|| {
                directory
                    .map(|directory| directory.resolve(&procedure.audience).into_iter().collect())
                    .unwrap_or_default()
            });
            docs.push(DocInfo {
                id: procedure.id.clone(),
                title: procedure.title.clone(),
                private_only,
                audience,
                field_stems,
                controls: procedure.controls.iter().map(ToString::to_string).collect(),
            });
        }
        writer.commit()?;
        let reader = index.reader()?;

        let mut groups = parse_synonym_lines(BUILTIN_SYNONYMS);
        if let Some(extra) = extra_synonyms {
            groups.extend(parse_synonym_lines(extra));
        }
        let synonyms = SynonymTable::new(&groups, &mut |word| stem_word(&mut analyzer, word));
        // Synonym words are valid spellings too, so "offboardng" finds "offboarding" even
        // when only a synonym of it appears in the procedures.
        for group in &groups {
            for phrase in group {
                for word in words(phrase) {
                    let stem = stem_word(&mut analyzer, &word);
                    vocabulary.add(&word, &stem);
                }
            }
        }
        Ok(SearchIndex {
            reader,
            fields,
            analyzer,
            docs,
            synonyms,
            vocabulary,
            document_frequency,
        })
    }

    pub fn len(&self) -> usize {
        self.docs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.docs.is_empty()
    }

    /// How much an unmatched or matched concept weighs: rare words weigh most.
    fn rarity(&self, stems: &[String]) -> f32 {
        let total = self.docs.len().max(1) as f32;
        let frequency = stems
            .iter()
            .map(|stem| self.document_frequency.get(stem).copied().unwrap_or(0))
            .min()
            .unwrap_or(0) as f32;
        (1.0 + total / (frequency + 0.5)).ln()
    }

    /// The weight of a word no procedure contains.
    fn unknown_rarity(&self) -> f32 {
        (1.0 + self.docs.len().max(1) as f32).ln()
    }

    fn tantivy_query(&self, parsed: &ParsedQuery) -> Box<dyn Query> {
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        for control in &parsed.controls {
            let term = Term::from_field_text(self.fields.controls, control);
            clauses.push((
                Occur::Should,
                Box::new(BoostQuery::new(
                    Box::new(TermQuery::new(term, IndexRecordOption::Basic)),
                    6.0,
                )),
            ));
        }
        // A flat disjunction of boosted terms: tantivy answers it with block-max WAND, which
        // skips most documents. Phrases are split into their words here; the re-scoring that
        // follows checks them whole.
        let mut push_terms = |field: Field, stems: &[String], boost: f32| {
            let share = boost / stems.len().max(1) as f32;
            for stem in stems {
                let query = TermQuery::new(
                    Term::from_field_text(field, stem),
                    IndexRecordOption::WithFreqs,
                );
                clauses.push((
                    Occur::Should,
                    Box::new(BoostQuery::new(Box::new(query), share)),
                ));
            }
        };
        for concept in &parsed.concepts {
            let mut alternatives = concept.alternatives.iter();
            // The words as typed are scored per field; synonyms and corrections in `all`.
            if let Some(typed) = alternatives.next() {
                for (field, boost) in weighted_fields(&self.fields) {
                    push_terms(field, &typed.stems, boost * typed.weight);
                }
                // How much the whole procedure is about it (term frequency across fields).
                push_terms(self.fields.all, &typed.stems, 2.0 * typed.weight);
            }
            for alternative in alternatives {
                push_terms(
                    self.fields.all,
                    &alternative.stems,
                    1.5 * alternative.weight,
                );
            }
        }
        Box::new(BooleanQuery::new(clauses))
    }

    fn may_see(doc: &DocInfo, viewer: &Viewer) -> bool {
        match (&doc.audience, viewer) {
            (None, _) | (_, Viewer::Operator) => true,
            (Some(audience), Viewer::Person(Some(email))) => audience.contains(email),
            (Some(_), Viewer::Person(None)) => false,
        }
    }

    /// Looks up `text` for `viewer`; at most `limit` results.
    pub fn lookup(
        &self,
        text: &str,
        viewer: &Viewer,
        limit: usize,
    ) -> Result<LookupResult, SearchError> {
        let mut analyzer = self.analyzer.clone();
        let parsed = parse_query(text, &self.synonyms, &self.vocabulary, &mut |word| {
            stem_word(&mut analyzer, word)
        });
        if parsed.concepts.is_empty() && parsed.controls.is_empty() {
            return Ok(LookupResult::default());
        }
        let searcher = self.reader.searcher();
        let candidates = searcher.search(
            &self.tantivy_query(&parsed),
            &TopDocs::with_limit(CANDIDATES).order_by_score(),
        )?;

        // Each concept weighs as much as its typed form is rare; unknown words weigh most,
        // so a question about something no procedure mentions does not match by accident.
        let present = |stems: &[String]| {
            stems
                .iter()
                .all(|stem| self.document_frequency.contains_key(stem))
        };
        let concept_weights: Vec<f32> = parsed
            .concepts
            .iter()
            .map(|concept| {
                let existing = concept
                    .alternatives
                    .iter()
                    .filter(|alternative| present(&alternative.stems));
                match concept.alternatives.first() {
                    Some(typed) if present(&typed.stems) => self.rarity(&typed.stems),
                    // Unknown two- and three-letter words are mostly typos and abbreviations.
                    _ if concept.unknown && concept.typed.chars().count() < 4 => {
                        self.rarity(&[]) * 0.4
                    }
                    _ => existing
                        .map(|alternative| self.rarity(&alternative.stems))
                        .reduce(f32::min)
                        .unwrap_or_else(|| self.unknown_rarity()),
                }
            })
            .collect();
        // When the typed word appears in no procedure, its synonyms stand in for it fully.
        let typed_absent: Vec<bool> = parsed
            .concepts
            .iter()
            .map(|concept| {
                concept
                    .alternatives
                    .first()
                    .is_none_or(|typed| !present(&typed.stems))
            })
            .collect();
        let total_weight: f32 = concept_weights.iter().sum();

        let mut accepted: Vec<Hit> = Vec::new();
        let mut near_misses: Vec<(f32, Hit)> = Vec::new();
        let best_bm25 = candidates
            .first()
            .map_or(1.0, |(score, _)| score.max(f32::EPSILON));
        let mut ordinal_columns = HashMap::new();
        for (bm25, address) in candidates {
            if let std::collections::hash_map::Entry::Vacant(slot) =
                ordinal_columns.entry(address.segment_ord)
            {
                slot.insert(
                    searcher
                        .segment_reader(address.segment_ord)
                        .fast_fields()
                        .u64("ordinal")?,
                );
            }
            let ordinal = ordinal_columns
                .get(&address.segment_ord)
                .and_then(|column| column.first(address.doc_id));
            let Some(doc) = ordinal
                .and_then(|o| usize::try_from(o).ok())
                .and_then(|o| self.docs.get(o))
            else {
                continue;
            };
            if !Self::may_see(doc, viewer) {
                continue;
            }
            let control_match = parsed
                .controls
                .iter()
                .any(|control| doc.controls.contains(control));
            let mut evidence = 0.0;
            for ((concept, weight), absent) in parsed
                .concepts
                .iter()
                .zip(&concept_weights)
                .zip(&typed_absent)
            {
                let best = concept
                    .alternatives
                    .iter()
                    .map(|alternative| {
                        let field = doc
                            .field_stems
                            .iter()
                            .zip(FIELD_EVIDENCE)
                            .filter(|(stems, _)| {
                                alternative.stems.iter().all(|stem| stems.contains(stem))
                            })
                            .map(|(_, evidence)| evidence)
                            .fold(0.0, f32::max);
                        let weight = if *absent {
                            alternative.weight.max(STAND_IN_WEIGHT)
                        } else {
                            alternative.weight
                        };
                        field * weight
                    })
                    .fold(0.0, f32::max);
                evidence += weight * best;
            }
            let coverage = if total_weight > 0.0 {
                evidence / total_weight
            } else {
                0.0
            };
            let score = evidence
                + BM25_SHARE * total_weight * bm25 / best_bm25
                + if control_match { 10.0 } else { 0.0 };
            let hit = Hit {
                id: doc.id.clone(),
                title: doc.title.clone(),
                score,
                private_only: doc.private_only,
            };
            // Long messages carry context words no procedure needs to share ("my new designer
            // starts monday"), so each concept beyond two lowers the bar a little.
            let extra_concepts = parsed.concepts.len().saturating_sub(2) as f32;
            let required = (MIN_COVERAGE - COVERAGE_RELIEF_PER_CONCEPT * extra_concepts)
                .max(MIN_COVERAGE_FLOOR);
            if control_match || coverage >= required {
                accepted.push(hit);
            } else if coverage >= SUGGESTION_COVERAGE {
                near_misses.push((score, hit));
            }
        }
        accepted.sort_by(|a, b| b.score.total_cmp(&a.score));
        if let Some(best) = accepted.first().map(|hit| hit.score) {
            accepted.retain(|hit| hit.score >= best * RELATIVE_CUTOFF);
        }
        accepted.truncate(limit);
        let suggestions = if accepted.is_empty() {
            near_misses.sort_by(|a, b| b.0.total_cmp(&a.0));
            near_misses
                .into_iter()
                .take(3)
                .map(|(_, hit)| hit)
                .collect()
        } else {
            Vec::new()
        };
        Ok(LookupResult {
            results: accepted,
            suggestions,
        })
    }
}
