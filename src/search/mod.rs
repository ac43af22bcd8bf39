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
    Language, LowerCaser, PreTokenizedString, RemoveLongFilter, SimpleTokenizer, Stemmer,
    TextAnalyzer, Token,
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
/// At most this many (the rarest) terms of a question are used to find candidates.
const RETRIEVAL_TERMS: usize = 16;
/// A result must cover at least this share of the question's (rarity-weighted) concepts.
const MIN_COVERAGE: f32 = 0.35;
/// How much each concept beyond two lowers `MIN_COVERAGE`, down to `MIN_COVERAGE_FLOOR`.
const COVERAGE_RELIEF_PER_CONCEPT: f32 = 0.02;
const MIN_COVERAGE_FLOOR: f32 = 0.2;
/// Extra evidence for each further field a concept is found in.
const BREADTH_BONUS: f32 = 0.1;
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
    /// All the procedure's text in one field, for BM25: which procedure talks most about it.
    all: Field,
    controls: Field,
    ordinal: Field,
}

/// How strongly finding a concept in each field (title, keywords, id, summary, steps, body)
/// says "this procedure is about it".
const FIELD_EVIDENCE: [f32; 6] = [1.0, 0.9, 0.9, 0.8, 0.5, 0.35];

struct DocInfo {
    id: ProcedureId,
    title: String,
    private_only: bool,
    /// Who may see a private procedure; `None` for procedures everyone may see.
    audience: Option<HashSet<Email>>,
    /// Interned stems of each field, sorted, in the order of `FIELD_EVIDENCE`.
    field_stems: [Vec<u32>; 6],
    controls: Vec<String>,
}

impl DocInfo {
    fn field_has(&self, field: usize, stems: &[u32]) -> bool {
        stems
            .iter()
            .all(|stem| self.field_stems[field].binary_search(stem).is_ok())
    }
}

/// A concept alternative with its stems interned; `None` when a stem is in no procedure.
struct InternedAlternative {
    stems: Option<Vec<u32>>,
    weight: f32,
}

/// A searchable index of one snapshot's procedures. Built once per snapshot and swapped.
pub struct SearchIndex {
    reader: IndexReader,
    fields: Fields,
    analyzer: TextAnalyzer,
    docs: Vec<DocInfo>,
    synonyms: SynonymTable,
    vocabulary: Vocabulary,
    /// Stem → its interned id.
    stem_ids: HashMap<String, u32>,
    /// Interned id → its stem.
    stem_names: Vec<String>,
    /// Interned stem → number of procedures containing it, for rarity weights.
    document_frequency: Vec<u32>,
    /// Phrase (interned stems) → number of procedures containing all its words.
    phrase_frequencies: std::sync::Mutex<HashMap<Vec<u32>, u32>>,
}

fn analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(40))
        .filter(LowerCaser)
        .filter(Stemmer::new(Language::English))
        .build()
}

fn stem_word(analyzer: &mut TextAnalyzer, word: &str) -> String {
    let mut stream = analyzer.token_stream(word);
    if stream.advance() {
        stream.token().text.clone()
    } else {
        word.to_string()
    }
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

/// Everything needed to turn text into interned stems once per distinct word.
struct Stemming {
    analyzer: TextAnalyzer,
    words: TextAnalyzer,
    /// Raw word → interned stem.
    cache: HashMap<String, u32>,
    stem_ids: HashMap<String, u32>,
    /// Interned stem → its text.
    names: Vec<String>,
    vocabulary: Vocabulary,
}

impl Stemming {
    fn intern(&mut self, stem: String) -> u32 {
        if let Some(id) = self.stem_ids.get(&stem) {
            return *id;
        }
        let id = u32::try_from(self.names.len()).unwrap_or(u32::MAX);
        self.names.push(stem.clone());
        self.stem_ids.insert(stem, id);
        id
    }

    /// The interned stems of `text` in order; new words join the vocabulary.
    fn stems(&mut self, text: &str) -> Vec<u32> {
        let mut ids = Vec::new();
        let mut stream = self.words.token_stream(text);
        let mut new_words = Vec::new();
        while stream.advance() {
            let word = &stream.token().text;
            match self.cache.get(word) {
                Some(id) => ids.push(*id),
                None => new_words.push(word.clone()),
            }
        }
        drop(stream);
        for word in new_words {
            let id = match self.cache.get(&word) {
                Some(id) => *id,
                None => {
                    let stem = stem_word(&mut self.analyzer, &word);
                    self.vocabulary.add(&word, &stem);
                    let id = self.intern(stem);
                    self.cache.insert(word, id);
                    id
                }
            };
            ids.push(id);
        }
        ids
    }
}

impl SearchIndex {
    /// Indexes `procedures`. `directory` resolves the audiences of private procedures;
    /// `extra_synonyms` is the repository's own `synonyms.txt`, if any.
    pub fn build<'a>(
        procedures: impl IntoIterator<Item = &'a Procedure>,
        directory: Option<&Directory>,
        extra_synonyms: Option<&str>,
    ) -> Result<SearchIndex, SearchError> {
        // Frequencies without positions: re-scoring checks phrases, BM25 needs only counts.
        let text = TextOptions::default().set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer(TOKENIZER)
                .set_index_option(IndexRecordOption::WithFreqs),
        );
        let mut schema = Schema::builder();
        let fields = Fields {
            all: schema.add_text_field("all", text),
            controls: schema.add_text_field("controls", STRING),
            ordinal: schema.add_u64_field("ordinal", FAST | INDEXED),
        };
        let index = Index::create_in_ram(schema.build());
        index.tokenizers().register(TOKENIZER, analyzer());
        let mut stemming = Stemming {
            analyzer: analyzer(),
            words: TextAnalyzer::builder(SimpleTokenizer::default())
                .filter(RemoveLongFilter::limit(40))
                .filter(LowerCaser)
                .build(),
            cache: HashMap::new(),
            stem_ids: HashMap::new(),
            names: Vec::new(),
            vocabulary: Vocabulary::default(),
        };

        let procedures: Vec<&Procedure> = procedures.into_iter().collect();
        // One indexing thread: a second one does not speed this up (preparing documents is
        // the bottleneck), and procbot shares the machine with its other work.
        let mut writer = index.writer_with_num_threads(1, 50_000_000)?;
        let mut docs = Vec::new();
        let mut document_frequency: Vec<u32> = Vec::new();
        for procedure in procedures {
            let keywords = procedure.keywords.join("\n");
            let identifier = procedure.id.as_str().replace('-', " ");
            let summary = procedure.summary.clone().unwrap_or_default();
            let steps = steps_text(procedure);
            let body = body_text(procedure);
            let texts = [
                procedure.title.as_str(),
                keywords.as_str(),
                identifier.as_str(),
                summary.as_str(),
                steps.as_str(),
                body.as_str(),
            ];
            let sequences = texts.map(|text| stemming.stems(text));
            // tantivy gets the stems already made, so every word is stemmed once per index.
            let tokens: Vec<Token> = sequences
                .iter()
                .flatten()
                .enumerate()
                .map(|(position, id)| Token {
                    offset_from: 0,
                    offset_to: 0,
                    position,
                    text: stemming.names[*id as usize].clone(),
                    position_length: 1,
                })
                .collect();
            let field_stems = sequences.map(|mut ids| {
                ids.sort_unstable();
                ids.dedup();
                ids
            });
            let mut distinct: Vec<u32> = field_stems.iter().flatten().copied().collect();
            distinct.sort_unstable();
            distinct.dedup();
            for stem in distinct {
                let slot = stem as usize;
                if document_frequency.len() <= slot {
                    document_frequency.resize(slot + 1, 0);
                }
                document_frequency[slot] += 1;
            }

            let mut document = TantivyDocument::default();
            document.add_pre_tokenized_text(
                fields.all,
                PreTokenizedString {
                    text: String::new(),
                    tokens,
                },
            );
            for control in &procedure.controls {
                document.add_text(fields.controls, control.to_string());
            }
            document.add_u64(fields.ordinal, docs.len() as u64);
            writer.add_document(document)?;

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
        let mut analyzer = stemming.analyzer.clone();
        let synonyms = SynonymTable::new(&groups, &mut |word| stem_word(&mut analyzer, word));
        // Synonym words are valid spellings too, so "offboardng" finds "offboarding" even
        // when only a synonym of it appears in the procedures.
        let mut vocabulary = stemming.vocabulary;
        for group in &groups {
            for phrase in group {
                for word in words(phrase) {
                    if !vocabulary.knows_word(&word) {
                        let stem = stem_word(&mut analyzer, &word);
                        vocabulary.add(&word, &stem);
                    }
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
            stem_ids: stemming.stem_ids,
            stem_names: stemming.names,
            document_frequency,
            phrase_frequencies: std::sync::Mutex::new(HashMap::new()),
        })
    }

    pub fn len(&self) -> usize {
        self.docs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.docs.is_empty()
    }

    fn frequency(&self, stem: u32) -> u32 {
        self.document_frequency
            .get(stem as usize)
            .copied()
            .unwrap_or(0)
    }

    /// How much a concept weighs: rare words weigh most.
    fn rarity(&self, stems: &[u32]) -> f32 {
        let total = self.docs.len().max(1) as f32;
        let frequency = match stems {
            [] => 0,
            [stem] => self.frequency(*stem),
            phrase => self.phrase_frequency(phrase),
        } as f32;
        (1.0 + total / (frequency + 0.5)).ln()
    }

    /// How many procedures contain every word of a phrase: "management review" is rarer than
    /// "management" or "review". Counted once per phrase and remembered.
    fn phrase_frequency(&self, phrase: &[u32]) -> u32 {
        let mut cache = self
            .phrase_frequencies
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(frequency) = cache.get(phrase) {
            return *frequency;
        }
        let frequency = self
            .docs
            .iter()
            .filter(|doc| {
                phrase.iter().all(|stem| {
                    (0..FIELD_EVIDENCE.len())
                        .any(|field| doc.field_has(field, std::slice::from_ref(stem)))
                })
            })
            .count();
        let frequency = u32::try_from(frequency).unwrap_or(u32::MAX);
        cache.insert(phrase.to_vec(), frequency);
        frequency
    }

    /// The weight of a word no procedure contains.
    fn unknown_rarity(&self) -> f32 {
        (1.0 + self.docs.len().max(1) as f32).ln()
    }

    fn stem_name(&self, id: u32) -> Option<&str> {
        self.stem_names.get(id as usize).map(String::as_str)
    }

    fn intern(&self, stems: &[String]) -> Option<Vec<u32>> {
        stems
            .iter()
            .map(|stem| self.stem_ids.get(stem).copied())
            .collect()
    }

    fn tantivy_query(&self, parsed: &ParsedQuery) -> Box<dyn Query> {
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        for control in &parsed.controls {
            let term = Term::from_field_text(self.fields.controls, control);
            let query = Box::new(TermQuery::new(term, IndexRecordOption::Basic));
            clauses.push((Occur::Should, Box::new(BoostQuery::new(query, 6.0))));
        }
        // A flat disjunction of boosted terms over one field, limited to the rarest terms:
        // they find the candidates; common words would only make every procedure one.
        // Phrases are split into their words here; re-scoring checks fields and phrases.
        let mut terms: HashMap<u32, f32> = HashMap::new();
        for concept in &parsed.concepts {
            for (index, alternative) in concept.alternatives.iter().enumerate() {
                let boost = if index == 0 { 2.0 } else { 1.0 } * alternative.weight;
                let share = boost / alternative.stems.len().max(1) as f32;
                for stem in &alternative.stems {
                    if let Some(id) = self.stem_ids.get(stem) {
                        let entry = terms.entry(*id).or_insert(0.0);
                        *entry = entry.max(share);
                    }
                }
            }
        }
        let mut terms: Vec<(u32, f32)> = terms.into_iter().collect();
        terms.sort_by_key(|(id, _)| (self.frequency(*id), *id));
        for (id, boost) in terms.into_iter().take(RETRIEVAL_TERMS) {
            let Some(stem) = self.stem_name(id) else {
                continue;
            };
            let term = Term::from_field_text(self.fields.all, stem);
            let query = Box::new(TermQuery::new(term, IndexRecordOption::WithFreqs));
            clauses.push((Occur::Should, Box::new(BoostQuery::new(query, boost))));
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

        let interned: Vec<Vec<InternedAlternative>> = parsed
            .concepts
            .iter()
            .map(|concept| {
                concept
                    .alternatives
                    .iter()
                    .map(|alternative| InternedAlternative {
                        stems: self.intern(&alternative.stems),
                        weight: alternative.weight,
                    })
                    .collect()
            })
            .collect();
        // Each concept weighs as much as its typed form is rare; unknown words weigh most,
        // so a question about something no procedure mentions does not match by accident.
        let concept_weights: Vec<f32> = parsed
            .concepts
            .iter()
            .zip(&interned)
            .map(|(concept, alternatives)| {
                match alternatives.first().and_then(|typed| typed.stems.as_ref()) {
                    Some(typed) => self.rarity(typed),
                    // Unknown two- and three-letter words are mostly typos and abbreviations.
                    None if concept.unknown && concept.typed.chars().count() < 4 => {
                        self.rarity(&[]) * 0.4
                    }
                    None => alternatives
                        .iter()
                        .filter_map(|alternative| alternative.stems.as_ref())
                        .map(|stems| self.rarity(stems))
                        .reduce(f32::min)
                        .unwrap_or_else(|| self.unknown_rarity()),
                }
            })
            .collect();
        // When the typed word appears in no procedure, its synonyms stand in for it fully.
        let typed_absent: Vec<bool> = interned
            .iter()
            .map(|alternatives| {
                alternatives
                    .first()
                    .is_none_or(|typed| typed.stems.is_none())
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
            let mut breadth = 0.0;
            for ((alternatives, weight), absent) in
                interned.iter().zip(&concept_weights).zip(&typed_absent)
            {
                let mut best = 0.0f32;
                let mut fields_with_concept = [false; 6];
                for alternative in alternatives {
                    let Some(stems) = &alternative.stems else {
                        continue;
                    };
                    let alternative_weight = if *absent {
                        alternative.weight.max(STAND_IN_WEIGHT)
                    } else {
                        alternative.weight
                    };
                    for (field, field_evidence) in FIELD_EVIDENCE.iter().enumerate() {
                        if doc.field_has(field, stems) {
                            fields_with_concept[field] = true;
                            best = best.max(field_evidence * alternative_weight);
                        }
                    }
                }
                evidence += weight * best;
                // Found in many fields, the concept is what the procedure is about: this
                // orders procedures that cover a question equally well.
                let fields = fields_with_concept.iter().filter(|found| **found).count();
                breadth += weight * BREADTH_BONUS * fields.saturating_sub(1) as f32;
            }
            let coverage = if total_weight > 0.0 {
                evidence / total_weight
            } else {
                0.0
            };
            let score = evidence
                + breadth
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
