//! Lookup: an in-memory tantivy index of a snapshot's procedures, and the ranking, confidence
//! rule and access filter that turn a question into the right procedure (or an honest "no
//! match").
//!
//! tantivy finds candidates with BM25 over the concepts `query` extracts. Candidates are then
//! re-scored field by field (title > keywords/id > summary > steps > body), each concept
//! weighted by its rarity, phrases only where their words stand together, with a bonus for
//! words typed together that also stand together in the procedure, and extra evidence for a
//! question that completes one of the procedure's keywords. The best candidate is accepted
//! only when it explains enough of the question (`MIN_CONFIDENCE`); otherwise the answer is
//! "no match", with near misses as "did you mean".

mod document;
pub mod query;

use std::collections::{HashMap, HashSet};

use tantivy::collector::TopDocs;
use tantivy::query::{BooleanQuery, BoostQuery, Occur, Query, TermQuery};
use tantivy::schema::{
    FAST, Field, INDEXED, IndexRecordOption, STRING, Schema, TextFieldIndexing, TextOptions,
};
use tantivy::tokenizer::{TextAnalyzer, WhitespaceTokenizer};
use tantivy::{Index, Searcher, TantivyDocument, Term};

use crate::core::directory::Directory;
use crate::core::procedure::{Email, Procedure, ProcedureId};
use crate::search::document::{
    FIELD_COUNT, FastMap, FieldTerms, StemFilter, Stemming, field_texts, pair, stem_word,
};
use crate::search::query::{
    Concept, ParsedQuery, SynonymTable, Vocabulary, parse_query, parse_synonym_lines, words,
};

/// The built-in synonym and jargon table; a repository extends it with its own `synonyms.txt`.
pub const BUILTIN_SYNONYMS: &str = include_str!("synonyms.txt");
/// The file in a procedures repository that adds synonym groups.
pub const SYNONYMS_FILE: &str = "synonyms.txt";

/// tantivy's tokenizer for the "all" field: it receives stems made by procbot.
const TOKENIZER: &str = "procbot_stems";
/// Candidates fetched from tantivy before re-scoring.
const CANDIDATES: usize = 30;
/// At most this many (the rarest) terms of a question are used to find candidates.
const RETRIEVAL_TERMS: usize = 12;
/// The confidence rule. A procedure is accepted when
/// `explained / question + ABSOLUTE_SHARE × ln(1 + explained / unknown)` reaches
/// `MIN_CONFIDENCE`: `explained` is the rarity-weighted evidence the procedure gives for the
/// question's concepts, `question` their total weight and `unknown` the weight of a word no
/// procedure contains. The first term is the share of the question explained; the second
/// the amount explained, in units of one unknown word and so independent of library size.
/// Short questions must be mostly explained; long ones, whose names, places and times no
/// procedure shares, pass on the amount they share with one procedure.
const MIN_CONFIDENCE: f32 = 1.30;
const ABSOLUTE_SHARE: f32 = 1.5;
/// Near misses above this share of `MIN_CONFIDENCE` are offered as "did you mean".
const SUGGESTION_SHARE: f32 = 0.75;
/// Extra evidence for a concept that completes one of the procedure's keywords: keywords
/// are the author's own words for what people will ask.
const KEYWORD_BONUS: f32 = 0.8;
/// How much of the keyword bonus counts towards confidence: a keyword names a topic, but a
/// question can mention one procedure's topic while asking about something else ("a welcome
/// cake for the new starter").
const KEYWORD_CONFIDENCE: f32 = 0.5;
/// Extra evidence for each further field a concept is found in.
const BREADTH_BONUS: f32 = 0.1;
/// Extra evidence, as a share of the lighter word's weight, when two words typed together
/// also stand together in the procedure ("access review", "root account").
const PROXIMITY_BONUS: f32 = 0.5;
/// BM25 (normalised to the best candidate) breaks ties between similar coverage.
const BM25_SHARE: f32 = 0.3;
/// Results scoring below this share of the best one are dropped as noise.
const RELATIVE_CUTOFF: f32 = 0.5;
/// A synonym's weight when the word typed appears in no procedure.
const STAND_IN_WEIGHT: f32 = 0.9;

/// How strongly finding a concept in each field (title, keywords, id, summary, steps, body)
/// says "this procedure is about it".
const FIELD_EVIDENCE: [f32; FIELD_COUNT] = [1.0, 0.9, 0.9, 0.8, 0.5, 0.35];

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
    /// All the procedure's content words in one field, for BM25: which procedure talks most
    /// about them.
    all: Field,
    controls: Field,
    ordinal: Field,
}

struct DocInfo {
    id: ProcedureId,
    title: String,
    private_only: bool,
    /// Who may see a private procedure; `None` for procedures everyone may see.
    audience: Option<HashSet<Email>>,
    /// In the order of `FIELD_EVIDENCE`.
    fields: [FieldTerms; FIELD_COUNT],
    filter: StemFilter,
    /// Each keyword as content stems: the author's own words for what people will ask.
    keywords: Vec<Vec<u32>>,
    controls: Vec<String>,
}

/// A concept alternative with its stems interned (it exists in some procedure).
struct InternedAlternative {
    stems: Vec<u32>,
    weight: f32,
}

/// A concept ready for scoring.
struct Weighted {
    /// How much finding it says: its rarity in this library.
    weight: f32,
    /// The alternatives some procedure contains, for scoring.
    alternatives: Vec<InternedAlternative>,
    /// The words of every alternative whose words some procedure contains, even where no
    /// procedure has them together, with their boosts: these find the candidates.
    retrieval: Vec<(u32, f32)>,
    span: (usize, usize),
}

/// How one candidate procedure explains a question.
struct Candidate {
    doc: usize,
    score: f32,
    /// Share of the question's concept weight the procedure explains, `0..=1`.
    coverage: f32,
    /// See `MIN_CONFIDENCE`.
    confidence: f32,
    control_match: bool,
}

/// A searchable index of one snapshot's procedures. Built once per snapshot and swapped.
pub struct SearchIndex {
    /// One searcher for the index's life: the index never changes after it is built, and
    /// its segments' order is what `ordinals` follows.
    searcher: Searcher,
    /// Segment → tantivy document → the procedure's place in `docs`.
    ordinals: Vec<Vec<u32>>,
    fields: Fields,
    analyzer: TextAnalyzer,
    docs: Vec<DocInfo>,
    synonyms: SynonymTable,
    vocabulary: Vocabulary,
    /// Stem → its interned id.
    stem_ids: FastMap<String, u32>,
    /// Interned id → its stem.
    stem_names: Vec<String>,
    /// Interned stem → number of procedures containing it, for rarity weights.
    document_frequency: Vec<u32>,
    /// Phrase (interned stems) → number of procedures containing it.
    phrase_frequency: FastMap<Vec<u32>, u32>,
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
        // tantivy receives stems already made, separated by spaces: every word is stemmed
        // once per index, by procbot's cache.
        index.tokenizers().register(
            TOKENIZER,
            TextAnalyzer::from(WhitespaceTokenizer::default()),
        );
        let mut stemming = Stemming::new();

        let mut groups = parse_synonym_lines(BUILTIN_SYNONYMS);
        if let Some(extra) = extra_synonyms {
            groups.extend(parse_synonym_lines(extra));
        }
        let mut analyzer = stemming.analyzer();
        let synonyms = SynonymTable::new(&groups, &mut |word| stem_word(&mut analyzer, word));
        // Phrases come only from the synonym table, so how many procedures contain each is
        // counted while indexing, from the adjacent pairs that make them up.
        let phrases: Vec<Vec<u32>> = synonyms
            .phrases()
            .filter(|phrase| phrase.len() > 1)
            .map(|phrase| {
                phrase
                    .iter()
                    .map(|stem| stemming.intern(stem.clone()))
                    .collect()
            })
            .collect();
        let mut phrases_by_pair: FastMap<u64, Vec<usize>> = FastMap::default();
        for (index, phrase) in phrases.iter().enumerate() {
            for window in phrase.windows(2) {
                phrases_by_pair
                    .entry(pair(window[0], window[1]))
                    .or_default()
                    .push(index);
            }
        }
        let mut phrase_counted_in = vec![0u32; phrases.len()];
        let mut phrase_counts = vec![0u32; phrases.len()];

        // One indexing thread: it works while this thread prepares the next documents, and
        // procbot shares the machine with its other work.
        let mut writer = index.writer_with_num_threads(1, 50_000_000)?;
        let mut docs = Vec::new();
        let mut document_frequency: Vec<u32> = Vec::new();
        // Stem → the last document (1-based) that counted it.
        let mut counted_in: Vec<u32> = Vec::new();
        let mut tokens: Vec<u32> = Vec::new();
        let mut stem_text = String::new();
        for procedure in procedures {
            let texts = field_texts(procedure);
            tokens.clear();
            let field_terms = texts.map(|text| stemming.field(&text, &mut tokens));
            let ordinal = u32::try_from(docs.len() + 1).unwrap_or(u32::MAX);
            stem_text.clear();
            for stem in &tokens {
                let slot = *stem as usize;
                if counted_in.len() <= slot {
                    counted_in.resize(slot + 1, 0);
                    document_frequency.resize(slot + 1, 0);
                }
                if counted_in[slot] != ordinal {
                    counted_in[slot] = ordinal;
                    document_frequency[slot] += 1;
                }
                stem_text.push_str(&stemming.names[slot]);
                stem_text.push(' ');
            }
            for field in &field_terms {
                for found in field.pairs() {
                    for phrase in phrases_by_pair.get(found).into_iter().flatten() {
                        if phrase_counted_in[*phrase] != ordinal
                            && field_terms.iter().any(|f| f.has_phrase(&phrases[*phrase]))
                        {
                            phrase_counted_in[*phrase] = ordinal;
                            phrase_counts[*phrase] += 1;
                        }
                    }
                }
            }
            let mut document = TantivyDocument::default();
            document.add_text(fields.all, &stem_text);
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
                filter: StemFilter::new(&field_terms),
                fields: field_terms,
                keywords: procedure
                    .keywords
                    .iter()
                    .map(|keyword| stemming.entry(keyword))
                    .filter(|stems| !stems.is_empty())
                    .collect(),
                controls: procedure.controls.iter().map(ToString::to_string).collect(),
            });
        }
        writer.commit()?;
        // The writer holds its next segment's buffers until it is dropped.
        drop(writer);
        let searcher = index.reader()?.searcher();
        let ordinals = searcher
            .segment_readers()
            .iter()
            .map(|segment| {
                let column = segment.fast_fields().u64("ordinal")?;
                Ok((0..segment.max_doc())
                    .map(|doc| {
                        column
                            .first(doc)
                            .and_then(|ordinal| u32::try_from(ordinal).ok())
                            .unwrap_or(u32::MAX)
                    })
                    .collect())
            })
            .collect::<Result<Vec<Vec<u32>>, SearchError>>()?;
        // Synonym words are valid spellings too, so "offboardng" finds "offboarding" even
        // when only a synonym of it appears in the procedures.
        for group in &groups {
            for phrase in group {
                for word in words(phrase) {
                    stemming.learn(&word);
                }
            }
        }
        document_frequency.resize(stemming.names.len(), 0);
        Ok(SearchIndex {
            searcher,
            ordinals,
            fields,
            analyzer,
            docs,
            synonyms,
            vocabulary: stemming.vocabulary,
            stem_ids: stemming.stem_ids,
            stem_names: stemming.names,
            document_frequency,
            phrase_frequency: phrases.into_iter().zip(phrase_counts).collect(),
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

    fn rarity_frequency(&self, stems: &[u32]) -> u32 {
        match stems {
            [] => 0,
            [stem] => self.frequency(*stem),
            phrase => self.phrase_frequency.get(phrase).copied().unwrap_or(0),
        }
    }

    /// How much a concept weighs: rare words weigh most; a word no procedure contains
    /// weighs most of all.
    fn rarity(&self, stems: &[u32]) -> f32 {
        let total = self.docs.len().max(1) as f32;
        let frequency = self.rarity_frequency(stems) as f32;
        (1.0 + total / (frequency + 0.5)).ln()
    }

    /// The weight of a word no procedure contains.
    fn unknown_rarity(&self) -> f32 {
        (1.0 + self.docs.len().max(1) as f32).ln()
    }

    fn stem_name(&self, id: u32) -> Option<&str> {
        self.stem_names.get(id as usize).map(String::as_str)
    }

    /// The interned stems of a word or phrase that some procedure contains, `None` otherwise
    /// (synonym words are interned too, but may be in no procedure).
    fn intern(&self, stems: &[String]) -> Option<Vec<u32>> {
        let ids: Vec<u32> = stems
            .iter()
            .map(|stem| self.stem_ids.get(stem).copied())
            .collect::<Option<_>>()?;
        (!ids.is_empty() && self.rarity_frequency(&ids) > 0).then_some(ids)
    }

    /// Each concept's weight and its alternatives that exist in the library.
    fn weigh(&self, concepts: &[Concept]) -> Vec<Weighted> {
        concepts
            .iter()
            .map(|concept| {
                // A phrase of stopwords only ("let go") is typed but cannot be looked for.
                let typed = concept
                    .alternatives
                    .first()
                    .filter(|typed| !typed.stems.is_empty())
                    // A phrase whose words never stand together in any procedure is as absent
                    // as an unknown word: its synonyms stand in for it.
                    .and_then(|typed| self.intern(&typed.stems));
                let typed_absent = typed.is_none();
                let alternatives: Vec<InternedAlternative> = concept
                    .alternatives
                    .iter()
                    .filter(|alternative| !alternative.stems.is_empty())
                    .filter_map(|alternative| {
                        let stems = self.intern(&alternative.stems)?;
                        // When the typed word appears in no procedure, its synonyms stand in
                        // for it fully.
                        let weight = if typed_absent {
                            alternative.weight.max(STAND_IN_WEIGHT)
                        } else {
                            alternative.weight
                        };
                        Some(InternedAlternative { stems, weight })
                    })
                    .collect();
                let mut retrieval = Vec::new();
                for alternative in &concept.alternatives {
                    let Some(ids) = alternative
                        .stems
                        .iter()
                        .map(|stem| self.stem_ids.get(stem).copied())
                        .filter(|id| id.is_some_and(|id| self.frequency(id) > 0))
                        .collect::<Option<Vec<u32>>>()
                    else {
                        continue;
                    };
                    let boost = if retrieval.is_empty() { 2.0 } else { 1.0 } * alternative.weight;
                    let share = boost / ids.len().max(1) as f32;
                    retrieval.extend(ids.into_iter().map(|id| (id, share)));
                }
                let weight = match &typed {
                    Some(typed) => self.rarity(typed),
                    // Unknown two- and three-letter words are mostly typos and abbreviations.
                    None if concept.unknown && concept.typed.chars().count() < 4 => {
                        self.rarity(&[]) * 0.4
                    }
                    None => alternatives
                        .iter()
                        .map(|alternative| self.rarity(&alternative.stems))
                        .reduce(f32::min)
                        .unwrap_or_else(|| self.unknown_rarity()),
                };
                Weighted {
                    weight,
                    alternatives,
                    retrieval,
                    span: concept.span,
                }
            })
            .collect()
    }

    fn tantivy_query(&self, parsed: &ParsedQuery, concepts: &[Weighted]) -> Box<dyn Query> {
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
        for (id, share) in concepts.iter().flat_map(|concept| &concept.retrieval) {
            let entry = terms.entry(*id).or_insert(0.0);
            *entry = entry.max(*share);
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

    /// How well one procedure explains the question.
    fn assess(
        &self,
        doc_index: usize,
        concepts: &[Weighted],
        parsed: &ParsedQuery,
        stem_concepts: &FastMap<u32, (usize, f32)>,
        bm25: f32,
    ) -> Candidate {
        let doc = &self.docs[doc_index];
        let total_weight: f32 = concepts.iter().map(|concept| concept.weight).sum();
        let control_match = parsed
            .controls
            .iter()
            .any(|control| doc.controls.contains(control));
        let mut evidence = 0.0;
        let mut breadth = 0.0;
        let mut present: Vec<&InternedAlternative> = Vec::new();
        for concept in concepts {
            present.clear();
            present.extend(
                concept
                    .alternatives
                    .iter()
                    .filter(|alternative| doc.filter.may_contain(&alternative.stems)),
            );
            if present.is_empty() {
                continue;
            }
            let mut best = 0.0f32;
            let mut fields_with_concept = 0;
            for (field, field_evidence) in doc.fields.iter().zip(FIELD_EVIDENCE) {
                let mut found = false;
                for alternative in &present {
                    if field.has_phrase(&alternative.stems) {
                        found = true;
                        best = best.max(field_evidence * alternative.weight);
                    }
                }
                fields_with_concept += usize::from(found);
            }
            evidence += concept.weight * best;
            // Found in many fields, the concept is what the procedure is about: this orders
            // procedures that cover a question equally well.
            breadth +=
                concept.weight * BREADTH_BONUS * fields_with_concept.saturating_sub(1) as f32;
        }
        let proximity = self.proximity(doc, concepts);
        let keyword = KEYWORD_BONUS * Self::keyword_evidence(doc, concepts, stem_concepts);
        let (coverage, confidence) = if total_weight > 0.0 {
            let explained = evidence + KEYWORD_CONFIDENCE * keyword;
            (
                evidence / total_weight,
                explained / total_weight
                    + ABSOLUTE_SHARE * (explained / self.unknown_rarity()).ln_1p(),
            )
        } else {
            (0.0, 0.0)
        };
        let score = evidence
            + breadth
            + proximity
            + keyword
            + BM25_SHARE * total_weight * bm25
            + if control_match { 10.0 } else { 0.0 };
        Candidate {
            doc: doc_index,
            score,
            coverage,
            confidence,
            control_match,
        }
    }

    /// For each stem of the question, the concept it belongs to and how strongly (the typed
    /// word over a synonym).
    fn stem_concepts(concepts: &[Weighted]) -> FastMap<u32, (usize, f32)> {
        let mut map: FastMap<u32, (usize, f32)> = FastMap::default();
        for (index, concept) in concepts.iter().enumerate() {
            for alternative in &concept.alternatives {
                for stem in &alternative.stems {
                    let entry = map.entry(*stem).or_insert((index, 0.0));
                    if alternative.weight > entry.1 {
                        *entry = (index, alternative.weight);
                    }
                }
            }
        }
        map
    }

    /// The weight of the concepts that together complete one of the procedure's keywords
    /// ("rotate" + "api key" completes "rotate API key"), each concept counted once.
    fn keyword_evidence(
        doc: &DocInfo,
        concepts: &[Weighted],
        stem_concepts: &FastMap<u32, (usize, f32)>,
    ) -> f32 {
        // Most candidates complete no keyword: nothing is allocated for them.
        let mut completed: Vec<f32> = Vec::new();
        for keyword in &doc.keywords {
            if !keyword.iter().all(|stem| stem_concepts.contains_key(stem)) {
                continue;
            }
            if completed.is_empty() {
                completed.resize(concepts.len(), 0.0);
            }
            for (index, weight) in keyword.iter().filter_map(|stem| stem_concepts.get(stem)) {
                completed[*index] = completed[*index].max(*weight);
            }
        }
        concepts
            .iter()
            .zip(completed)
            .map(|(concept, strength)| concept.weight * strength)
            .sum()
    }

    /// Words typed next to each other that also stand next to each other in the procedure
    /// (in either order) are a phrase the question and the procedure share.
    fn proximity(&self, doc: &DocInfo, concepts: &[Weighted]) -> f32 {
        let mut bonus = 0.0;
        for (first, second) in concepts.iter().zip(concepts.iter().skip(1)) {
            if second.span.0 != first.span.1 + 1 {
                continue;
            }
            let (Some(a), Some(b)) = (
                first.alternatives.first().and_then(|a| a.stems.last()),
                second.alternatives.first().and_then(|b| b.stems.first()),
            ) else {
                continue;
            };
            let best = doc
                .fields
                .iter()
                .zip(FIELD_EVIDENCE)
                .filter(|(field, _)| field.has_pair(*a, *b) || field.has_pair(*b, *a))
                .map(|(_, evidence)| evidence)
                .fold(0.0f32, f32::max);
            bonus += PROXIMITY_BONUS * best * first.weight.min(second.weight);
        }
        bonus
    }

    /// The candidates for `text` that `viewer` may see, best first, with their assessment.
    fn rank(
        &self,
        text: &str,
        viewer: &Viewer,
    ) -> Result<(Vec<Weighted>, Vec<Candidate>), SearchError> {
        let mut analyzer = self.analyzer.clone();
        let parsed = parse_query(text, &self.synonyms, &self.vocabulary, &mut |word| {
            stem_word(&mut analyzer, word)
        });
        let concepts = self.weigh(&parsed.concepts);
        if parsed.concepts.is_empty() && parsed.controls.is_empty() {
            return Ok((concepts, Vec::new()));
        }
        let searcher = &self.searcher;
        let found = searcher.search(
            &self.tantivy_query(&parsed, &concepts),
            &TopDocs::with_limit(CANDIDATES).order_by_score(),
        )?;
        let best_bm25 = found
            .first()
            .map_or(1.0, |(score, _)| score.max(f32::EPSILON));
        let stem_concepts = Self::stem_concepts(&concepts);
        let mut candidates = Vec::with_capacity(found.len());
        for (bm25, address) in found {
            let Some(doc_index) = self
                .ordinals
                .get(address.segment_ord as usize)
                .and_then(|segment| segment.get(address.doc_id as usize))
                .map(|ordinal| *ordinal as usize)
                .filter(|ordinal| *ordinal < self.docs.len())
            else {
                continue;
            };
            if !Self::may_see(&self.docs[doc_index], viewer) {
                continue;
            }
            candidates.push(self.assess(
                doc_index,
                &concepts,
                &parsed,
                &stem_concepts,
                bm25 / best_bm25,
            ));
        }
        candidates.sort_by(|a, b| b.score.total_cmp(&a.score));
        Ok((concepts, candidates))
    }

    fn hit(&self, candidate: &Candidate) -> Hit {
        let doc = &self.docs[candidate.doc];
        Hit {
            id: doc.id.clone(),
            title: doc.title.clone(),
            score: candidate.score,
            private_only: doc.private_only,
        }
    }

    /// Looks up `text` for `viewer`; at most `limit` results.
    pub fn lookup(
        &self,
        text: &str,
        viewer: &Viewer,
        limit: usize,
    ) -> Result<LookupResult, SearchError> {
        let (_, candidates) = self.rank(text, viewer)?;
        let accepted = |candidate: &Candidate| {
            candidate.control_match || candidate.confidence >= MIN_CONFIDENCE
        };
        // The rule judges the best candidate: when it is not good enough, a lesser one that
        // happens to pass is no answer either, only a suggestion.
        let mut results: Vec<Hit> = if candidates.first().is_some_and(accepted) {
            candidates
                .iter()
                .filter(|candidate| accepted(candidate))
                .map(|candidate| self.hit(candidate))
                .collect()
        } else {
            Vec::new()
        };
        if let Some(best) = results.first().map(|hit| hit.score) {
            results.retain(|hit| hit.score >= best * RELATIVE_CUTOFF);
        }
        results.truncate(limit);
        let suggestions = if results.is_empty() {
            candidates
                .iter()
                .filter(|candidate| candidate.confidence >= MIN_CONFIDENCE * SUGGESTION_SHARE)
                .take(3)
                .map(|candidate| self.hit(candidate))
                .collect()
        } else {
            Vec::new()
        };
        Ok(LookupResult {
            results,
            suggestions,
        })
    }

    /// Why `text` finds what it finds: each concept's weight, and the best candidates with
    /// their coverage. For maintainers tuning the synonym table; not shown to people.
    pub fn explain(&self, text: &str) -> Result<String, SearchError> {
        let (concepts, candidates) = self.rank(text, &Viewer::Operator)?;
        let mut out = String::new();
        for concept in &concepts {
            let names: Vec<String> = concept
                .alternatives
                .iter()
                .take(4)
                .map(|alternative| {
                    let stems: Vec<&str> = alternative
                        .stems
                        .iter()
                        .filter_map(|id| self.stem_name(*id))
                        .collect();
                    format!("{}×{:.1}", stems.join(" "), alternative.weight)
                })
                .collect();
            out.push_str(&format!(
                "    concept w={:.2} span={:?} [{}]\n",
                concept.weight,
                concept.span,
                names.join(", ")
            ));
        }
        for candidate in candidates.iter().take(3) {
            out.push_str(&format!(
                "    {:<40} score {:.2} coverage {:.2} confidence {:.2}\n",
                self.docs[candidate.doc].id.as_str(),
                candidate.score,
                candidate.coverage,
                candidate.confidence
            ));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::parse::parse_procedure;

    fn procedure(id: &str, title: &str, keywords: &str, purpose: &str, steps: &str) -> Procedure {
        let text = format!(
            "---\nid: {id}\ntitle: {title}\nsummary: {title}.\nowner: it-lead@example.com\n\
             audience: [everyone]\nclassification: internal\nversion: 1.0.0\n\
             last_reviewed: 2026-02-01\nreview_every: 12 months\ncontrols: [A.8.13]\n\
             keywords: [{keywords}]\napprover: cto@example.com\n---\n\n# {title}\n\n\
             ## Purpose\n{purpose}\n\n## Steps\n{steps}\n"
        );
        parse_procedure(&format!("{id}.md"), text.as_bytes())
            .procedure
            .expect("the test procedure parses")
    }

    fn library() -> Vec<Procedure> {
        vec![
            procedure(
                "lost-device",
                "Report a lost laptop",
                "lost laptop",
                "Anyone who left a laptop on the train reports it.",
                "1. Tell IT within one hour.\n2. IT locks the laptop.",
            ),
            procedure(
                "awareness",
                "Run security training",
                "annual training",
                "Training left to the last minute is rushed.",
                "1. Book the train tickets for trainers.\n2. Run the course.",
            ),
            procedure(
                "secrets",
                "Keep secrets safe",
                "rotate API key, secret scanning",
                "Secrets live in the vault. Rotate them yearly; an API key is rotated too.",
                "1. Rotate each key.\n2. Record the rotation.",
            ),
            procedure(
                "deploy",
                "Deploy a change",
                "deployment",
                "Every API change is deployed; rotate on-call duty weekly; each key change is \
                 reviewed.",
                "1. Open a change request.\n2. Deploy it.",
            ),
        ]
    }

    fn top(index: &SearchIndex, query: &str) -> Option<String> {
        let found = index.lookup(query, &Viewer::Operator, 5).unwrap();
        found.results.first().map(|hit| hit.id.as_str().to_string())
    }

    #[test]
    fn a_phrase_counts_only_where_its_words_stand_together() {
        let procedures = library();
        let index = SearchIndex::build(&procedures, None, None).unwrap();
        // "awareness" has "left" and "train" too, but not together.
        assert_eq!(
            top(&index, "left on the train").as_deref(),
            Some("lost-device")
        );
    }

    #[test]
    fn a_question_that_completes_a_keyword_finds_its_procedure() {
        let procedures = library();
        let index = SearchIndex::build(&procedures, None, None).unwrap();
        assert_eq!(top(&index, "rotate api key").as_deref(), Some("secrets"));
    }

    #[test]
    fn unrelated_questions_find_nothing() {
        let procedures = library();
        let index = SearchIndex::build(&procedures, None, None).unwrap();
        for query in [
            "order pizza for the team",
            "how do i claim my travel expenses",
            "hi",
        ] {
            let found = index.lookup(query, &Viewer::Operator, 5).unwrap();
            assert!(found.results.is_empty(), "{query}: {found:?}");
        }
    }

    #[test]
    fn a_repository_synonym_finds_the_procedure_it_names() {
        let procedures = library();
        let without = SearchIndex::build(&procedures, None, None).unwrap();
        assert_eq!(top(&without, "the laptop went walkabout"), None);
        let with = SearchIndex::build(&procedures, None, Some("lost, went walkabout\n")).unwrap();
        assert_eq!(
            top(&with, "the laptop went walkabout").as_deref(),
            Some("lost-device")
        );
    }

    #[test]
    fn the_explanation_names_the_concepts_and_candidates() {
        let procedures = library();
        let index = SearchIndex::build(&procedures, None, None).unwrap();
        let explanation = index.explain("rotate the api key").unwrap();
        assert!(explanation.contains("rotat"), "{explanation}");
        assert!(explanation.contains("secrets"), "{explanation}");
    }
}
