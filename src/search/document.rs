//! Document preparation: each procedure's fields as interned stems and adjacent stem pairs,
//! every distinct word stemmed once per index.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

use tantivy::tokenizer::{
    Language, LowerCaser, RemoveLongFilter, SimpleTokenizer, Stemmer, TextAnalyzer,
};

use crate::core::procedure::{Procedure, SectionKind, Step};
use crate::search::query::{Vocabulary, is_stopword};

/// The fields of a procedure, most telling first: title, keywords, id, summary, steps, body.
pub(crate) const FIELD_COUNT: usize = 6;
/// Words longer than this are dropped, as tantivy's own tokenizer would.
const MAX_WORD_BYTES: usize = 40;

/// The Fx hash (as in rustc): much faster than the default SipHash for the short keys of
/// the stem caches; their keys come from the library, not from strangers.
#[derive(Default, Clone, Copy)]
pub(crate) struct FastHasher(u64);

impl Hasher for FastHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }

    fn write_u8(&mut self, value: u8) {
        self.write_u64(u64::from(value));
    }

    fn write_u32(&mut self, value: u32) {
        self.write_u64(u64::from(value));
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = (self.0.rotate_left(5) ^ value).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }

    fn write_usize(&mut self, value: usize) {
        self.write_u64(value as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

pub(crate) type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<FastHasher>>;
pub(crate) type FastSet<K> = HashSet<K, BuildHasherDefault<FastHasher>>;

/// A Bloom filter over a procedure's stems: most of a question's alternatives are in no
/// given procedure, and two bit tests say so without searching six fields.
pub(crate) struct StemFilter([u64; FILTER_WORDS]);

const FILTER_WORDS: usize = 64;

impl StemFilter {
    fn bits(stem: u32) -> [usize; 2] {
        let hash = u64::from(stem).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let size = (FILTER_WORDS * 64) as u64;
        [(hash % size) as usize, ((hash >> 32) % size) as usize]
    }

    pub(crate) fn new(fields: &[FieldTerms]) -> StemFilter {
        let mut words = [0u64; FILTER_WORDS];
        for stem in fields.iter().flat_map(|field| &field.stems) {
            for bit in Self::bits(*stem) {
                words[bit / 64] |= 1 << (bit % 64);
            }
        }
        StemFilter(words)
    }

    /// False when some stem is certainly absent; true when all may be present.
    pub(crate) fn may_contain(&self, stems: &[u32]) -> bool {
        stems.iter().all(|stem| {
            Self::bits(*stem)
                .iter()
                .all(|bit| self.0[bit / 64] & (1 << (bit % 64)) != 0)
        })
    }
}

/// One field of one procedure.
#[derive(Default)]
pub(crate) struct FieldTerms {
    /// Interned stems, sorted and distinct.
    stems: Vec<u32>,
    /// Stems that stand next to each other (stopwords skipped, never across a sentence or
    /// list item), as `first << 32 | second`, sorted and distinct.
    pairs: Vec<u64>,
}

pub(crate) fn pair(first: u32, second: u32) -> u64 {
    (u64::from(first) << 32) | u64::from(second)
}

impl FieldTerms {
    pub(crate) fn has(&self, stem: u32) -> bool {
        self.stems.binary_search(&stem).is_ok()
    }

    pub(crate) fn pairs(&self) -> &[u64] {
        &self.pairs
    }

    pub(crate) fn has_pair(&self, first: u32, second: u32) -> bool {
        self.pairs.binary_search(&pair(first, second)).is_ok()
    }

    /// True when the phrase's stems stand in this field in order, each next to the next.
    pub(crate) fn has_phrase(&self, stems: &[u32]) -> bool {
        match stems {
            [] => false,
            [stem] => self.has(*stem),
            _ => stems.windows(2).all(|w| self.has_pair(w[0], w[1])),
        }
    }
}

/// The analyzer the index uses for every word: lowercase, English stemming.
pub(crate) fn analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(MAX_WORD_BYTES))
        .filter(LowerCaser)
        .filter(Stemmer::new(Language::English))
        .build()
}

/// The stem of one (lowercase) word.
pub(crate) fn stem_word(analyzer: &mut TextAnalyzer, word: &str) -> String {
    let mut stream = analyzer.token_stream(word);
    if stream.advance() {
        stream.token().text.clone()
    } else {
        word.to_string()
    }
}

/// Text that ends a run of adjacent words: sentence and clause ends, list items, brackets.
fn is_break(c: char) -> bool {
    matches!(
        c,
        '\n' | '.' | ',' | ';' | ':' | '!' | '?' | '(' | ')' | '[' | ']' | '|'
    )
}

/// Interns stems and remembers each distinct word's stem, so the library's millions of words
/// cost one hash look-up each.
pub(crate) struct Stemming {
    analyzer: TextAnalyzer,
    /// Lowercase word → its interned stem, `None` for stopwords.
    cache: FastMap<String, Option<u32>>,
    pub(crate) stem_ids: FastMap<String, u32>,
    /// Interned id → its stem.
    pub(crate) names: Vec<String>,
    /// Every word seen, for spelling corrections.
    pub(crate) vocabulary: Vocabulary,
    lowercase: String,
}

impl Stemming {
    pub(crate) fn new() -> Stemming {
        Stemming {
            analyzer: analyzer(),
            cache: FastMap::default(),
            stem_ids: FastMap::default(),
            names: Vec::new(),
            vocabulary: Vocabulary::default(),
            lowercase: String::new(),
        }
    }

    pub(crate) fn intern(&mut self, stem: String) -> u32 {
        if let Some(id) = self.stem_ids.get(&stem) {
            return *id;
        }
        let id = u32::try_from(self.names.len()).unwrap_or(u32::MAX);
        self.names.push(stem.clone());
        self.stem_ids.insert(stem, id);
        id
    }

    /// The interned stem of a word as written, `None` for stopwords and over-long words.
    fn word(&mut self, word: &str) -> Option<u32> {
        if word.len() > MAX_WORD_BYTES {
            return None;
        }
        let lowercase: &str = if word.chars().any(char::is_uppercase) {
            self.lowercase.clear();
            self.lowercase
                .extend(word.chars().flat_map(char::to_lowercase));
            &self.lowercase
        } else {
            word
        };
        if let Some(id) = self.cache.get(lowercase) {
            return *id;
        }
        let lowercase = lowercase.to_string();
        let stem = stem_word(&mut self.analyzer, &lowercase);
        self.vocabulary.add(&lowercase, &stem);
        let id = (!is_stopword(&lowercase)).then(|| self.intern(stem));
        self.cache.insert(lowercase, id);
        id
    }

    /// One field's terms; its content stems are also appended to `tokens`, in order.
    pub(crate) fn field(&mut self, text: &str, tokens: &mut Vec<u32>) -> FieldTerms {
        let start = tokens.len();
        let mut pairs = Vec::new();
        for run in text.split(is_break) {
            let mut previous: Option<u32> = None;
            for word in run.split(|c: char| !c.is_alphanumeric()) {
                if word.is_empty() {
                    continue;
                }
                let Some(id) = self.word(word) else {
                    continue;
                };
                tokens.push(id);
                if let Some(previous) = previous {
                    pairs.push(pair(previous, id));
                }
                previous = Some(id);
            }
        }
        let mut stems = tokens[start..].to_vec();
        stems.sort_unstable();
        stems.dedup();
        pairs.sort_unstable();
        pairs.dedup();
        FieldTerms { stems, pairs }
    }

    /// The content stems of a short text such as one keyword, in order.
    pub(crate) fn entry(&mut self, text: &str) -> Vec<u32> {
        text.split(|c: char| !c.is_alphanumeric())
            .filter(|word| !word.is_empty())
            .filter_map(|word| self.word(word))
            .collect()
    }

    /// The stem of a word outside the procedures (synonym table words), for the vocabulary.
    pub(crate) fn learn(&mut self, word: &str) {
        if !self.vocabulary.knows_word(word) {
            let stem = stem_word(&mut self.analyzer, word);
            self.vocabulary.add(word, &stem);
        }
    }

    pub(crate) fn analyzer(&self) -> TextAnalyzer {
        self.analyzer.clone()
    }
}

fn steps_text(steps: &[Step], out: &mut String) {
    for step in steps {
        out.push_str(&step.text);
        out.push('\n');
        steps_text(&step.substeps, out);
    }
}

/// A procedure's searchable text, one string per field in the order of the fields.
pub(crate) fn field_texts(procedure: &Procedure) -> [String; FIELD_COUNT] {
    let mut steps = String::new();
    steps_text(&procedure.steps, &mut steps);
    let mut body = String::new();
    for section in &procedure.sections {
        // Steps are their own field; "Related procedures" names other procedures, so its
        // words say what this one is not about.
        if matches!(section.kind, SectionKind::Steps | SectionKind::Related) {
            continue;
        }
        body.push_str(&section.heading);
        body.push('\n');
        body.push_str(&section.markdown);
        body.push('\n');
    }
    [
        procedure.title.clone(),
        procedure.keywords.join("\n"),
        procedure.id.as_str().replace('-', " "),
        procedure.summary.clone().unwrap_or_default(),
        steps,
        body,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn the_stem_filter_never_misses_a_stem_it_holds(
            stems in proptest::collection::vec(0u32..50_000, 0..600),
            probe in 0u32..50_000,
        ) {
            let mut sorted = stems.clone();
            sorted.sort_unstable();
            sorted.dedup();
            let field = FieldTerms { stems: sorted, pairs: Vec::new() };
            let filter = StemFilter::new(std::slice::from_ref(&field));
            for stem in &stems {
                prop_assert!(filter.may_contain(&[*stem]));
            }
            if !filter.may_contain(&[probe]) {
                prop_assert!(!field.has(probe));
            }
        }
    }

    #[test]
    fn pairs_stop_at_sentence_ends_and_skip_stopwords() {
        let mut stemming = Stemming::new();
        let mut tokens = Vec::new();
        let field = stemming.field("I left it on the train. Backup runs", &mut tokens);
        let id = |stemming: &mut Stemming, word: &str| stemming.entry(word)[0];
        let (left, train, backup) = (
            id(&mut stemming, "left"),
            id(&mut stemming, "train"),
            id(&mut stemming, "backup"),
        );
        assert!(field.has_phrase(&[left, train]));
        assert!(!field.has_pair(train, backup));
        assert_eq!(tokens.len(), 4);
    }
}
