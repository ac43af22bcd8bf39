//! Query understanding: what a person typed, turned into concepts to look for.
//!
//! "how do I get 2FA reset on my new macbook??" becomes the concepts {mfa, 2fa, two factor,
//! …}, {reset}, {laptop, macbook, …}: scaffolding and filler words are dropped, synonym and
//! jargon phrases are recognised (longest first), unknown words get spelling corrections
//! from the index's own vocabulary, and Annex A control ids are picked out.

use std::collections::HashSet;

use crate::search::document::{FastMap, FastSet};

use crate::core::procedure::ControlId;

/// Words that carry no topic in a lookup: question scaffolding, pronouns, filler, and words
/// every procedure shares ("procedure", "process").
const STOPWORDS: &[&str] = &[
    "a",
    "about",
    "after",
    "again",
    "all",
    "also",
    "am",
    "an",
    "and",
    "any",
    "anyone",
    "anything",
    "are",
    "as",
    "at",
    "be",
    "been",
    "before",
    "being",
    "but",
    "by",
    "can",
    "could",
    "d",
    "did",
    "do",
    "does",
    "doing",
    "done",
    "dont",
    "each",
    "for",
    "from",
    "get",
    "gets",
    "getting",
    "go",
    "got",
    "had",
    "has",
    "have",
    "he",
    "hello",
    "help",
    "her",
    "here",
    "hey",
    "hi",
    "him",
    "his",
    "how",
    "i",
    "if",
    "im",
    "in",
    "into",
    "is",
    "it",
    "its",
    "just",
    "know",
    "let",
    "ll",
    "m",
    "may",
    "me",
    "might",
    "must",
    "my",
    "need",
    "needs",
    "now",
    "of",
    "on",
    "or",
    "our",
    "ours",
    "please",
    "pls",
    "plz",
    "policy",
    "procedure",
    "procedures",
    "process",
    "re",
    "s",
    "shall",
    "she",
    "should",
    "show",
    "so",
    "some",
    "someone",
    "something",
    "steps",
    "t",
    "tell",
    "than",
    "thank",
    "thanks",
    "that",
    "the",
    "their",
    "them",
    "then",
    "there",
    "these",
    "they",
    "this",
    "those",
    "to",
    "us",
    "ve",
    "want",
    "wants",
    "was",
    "way",
    "we",
    "were",
    "what",
    "whats",
    "when",
    "where",
    "which",
    "who",
    "whom",
    "why",
    "will",
    "with",
    "would",
    "you",
    "your",
    "u",
    "ur",
    "we're",
    "ive",
    "id",
    // Chat filler: context people add that says nothing about which procedure they need.
    "actually",
    "came",
    "come",
    "comes",
    "coming",
    "gave",
    "give",
    "given",
    "gives",
    "giving",
    "said",
    "say",
    "saying",
    "says",
    "seem",
    "seemed",
    "seems",
    "anybody",
    "ask",
    "asking",
    "basically",
    "bit",
    "etc",
    "everyone",
    "guy",
    "guys",
    "happen",
    "happens",
    "idea",
    "kind",
    "lot",
    "maybe",
    "ok",
    "okay",
    "one",
    "point",
    "question",
    "quick",
    "really",
    "somebody",
    "sort",
    "stuff",
    "sure",
    "thing",
    "things",
    "think",
    "thought",
    "wondering",
    "wonder",
    "yeah",
    "yes",
    "cheers",
    "team",
    "all",
    "does",
    "anyone",
    "whether",
    "whose",
    "whoever",
    "whatever",
    "wherever",
    "myself",
    "yourself",
    "ourselves",
    "themselves",
    "pretty",
    "very",
    // When: days and times set the scene but never pick the procedure.
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
    "today",
    "tomorrow",
    "yesterday",
    "tonight",
    "morning",
    "afternoon",
    "evening",
    "weekend",
    "january",
    "february",
    "march",
    "april",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
    "asap",
    "soon",
    "later",
    // Words around control ids ("annex a 8.13").
    "annex",
    "control",
    "iso",
    "27001",
];

/// Words longer than this are never corrected (the index keeps none that long).
const MAX_WORD_LENGTH: usize = 40;
/// Only this much of a question is read: enough for any real one, bounded for hostile input.
pub const MAX_QUERY_CHARS: usize = 1_000;

/// How much a synonym counts compared with the word the person typed.
pub const SYNONYM_WEIGHT: f32 = 0.6;
/// How much a spelling correction counts compared with the word the person typed.
pub const CORRECTION_WEIGHT: f32 = 0.8;

/// One way a concept can appear in a procedure: a word or phrase, as the stems of its
/// content words (stopwords inside a phrase, as in "left on the train", are skipped on both
/// sides, so the phrase matches where its content words stand next to each other).
#[derive(Clone, Debug, PartialEq)]
pub struct Alternative {
    pub stems: Vec<String>,
    pub weight: f32,
}

/// Something the person is looking for, with the ways it may be written.
#[derive(Clone, Debug, PartialEq)]
pub struct Concept {
    /// The words as typed (for "did you mean" and debugging).
    pub typed: String,
    pub alternatives: Vec<Alternative>,
    /// True when no alternative exists in any procedure: an unknown word.
    pub unknown: bool,
    /// The first and last content word the concept covers, counted without stopwords:
    /// concepts whose spans touch were typed next to each other.
    pub span: (usize, usize),
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct ParsedQuery {
    /// Annex A control ids, normalised (`A.8.13`).
    pub controls: Vec<String>,
    pub concepts: Vec<Concept>,
}

/// Splits text into lowercase words the way the index tokenizer does (on anything that is
/// not a letter or digit).
pub fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|word| !word.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// True for words that never pick a procedure; procedures are indexed without them too.
pub fn is_stopword(word: &str) -> bool {
    STOPWORDS.contains(&word)
}

/// A phrase of a synonym group: every word's stem (to recognise it in a question) and the
/// stems of its content words (to look for it in procedures).
#[derive(Clone, Debug)]
struct Phrase {
    stems: Vec<String>,
    content: Vec<String>,
}

impl Phrase {
    /// True for a phrase that cannot be looked for: only stopwords ("let go"), or a single
    /// content word that means something else alone ("log in").
    fn collapses(&self) -> bool {
        self.content.is_empty() || (self.stems.len() > 1 && self.content.len() < 2)
    }
}

/// Synonym groups as stem sequences.
#[derive(Clone, Debug, Default)]
pub struct SynonymTable {
    groups: Vec<Vec<Phrase>>,
    /// First stem of a phrase → (group, phrase) pairs starting with it.
    by_first_stem: FastMap<String, Vec<(usize, usize)>>,
}

impl SynonymTable {
    /// Builds the table from groups of phrases, stemming each word with `stem`.
    pub fn new(groups: &[Vec<String>], stem: &mut dyn FnMut(&str) -> String) -> SynonymTable {
        let mut table = SynonymTable::default();
        for group in groups {
            let phrases: Vec<Phrase> = group
                .iter()
                .map(|phrase| {
                    let words = words(phrase);
                    Phrase {
                        stems: words.iter().map(|word| stem(word)).collect(),
                        content: words
                            .iter()
                            .filter(|word| !is_stopword(word))
                            .map(|word| stem(word))
                            .collect(),
                    }
                })
                .filter(|phrase| !phrase.stems.is_empty())
                .collect();
            // A phrase made only of stopwords ("let go") is recognised in questions, but only
            // phrases with content words can be looked for in procedures.
            let searchable = phrases.iter().filter(|p| !p.collapses()).count();
            if phrases.len() < 2 || searchable == 0 {
                continue;
            }
            let index = table.groups.len();
            for (phrase_index, phrase) in phrases.iter().enumerate() {
                table
                    .by_first_stem
                    .entry(phrase.stems[0].clone())
                    .or_default()
                    .push((index, phrase_index));
            }
            table.groups.push(phrases);
        }
        table
    }

    /// The longest phrase starting at `stems[0]`: (group, phrase length).
    fn longest_match(&self, stems: &[String]) -> Option<(usize, usize)> {
        let first = stems.first()?;
        self.by_first_stem
            .get(first)?
            .iter()
            .filter_map(|(group, phrase)| {
                let phrase = &self.groups[*group][*phrase].stems;
                (stems.len() >= phrase.len() && stems[..phrase.len()] == phrase[..])
                    .then_some((*group, phrase.len()))
            })
            .max_by_key(|(_, length)| *length)
    }

    fn group(&self, index: usize) -> &[Phrase] {
        &self.groups[index]
    }

    /// Every phrase's content stems, for counting how many procedures contain each.
    pub fn phrases(&self) -> impl Iterator<Item = &[String]> {
        self.groups
            .iter()
            .flatten()
            .filter(|phrase| !phrase.collapses())
            .map(|phrase| phrase.content.as_slice())
    }

    pub fn len(&self) -> usize {
        self.groups.len()
    }

    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }
}

/// Parses synonym group lines: comma-separated phrases, `#` comments.
pub fn parse_synonym_lines(text: &str) -> Vec<Vec<String>> {
    text.lines()
        .map(|line| line.split('#').next().unwrap_or("").trim())
        .filter(|line| !line.is_empty())
        .map(|line| {
            line.split(',')
                .map(|phrase| phrase.trim().to_string())
                .filter(|phrase| !phrase.is_empty())
                .collect::<Vec<_>>()
        })
        .filter(|group| group.len() >= 2)
        .collect()
}

/// The spelling dictionary: words seen in procedures (and the synonym table), indexed by
/// their one-character deletions so that near misses are found without scanning every word.
#[derive(Clone, Debug, Default)]
pub struct Vocabulary {
    /// Raw word → its stem.
    words: FastMap<String, String>,
    /// Stems present in the index.
    stems: FastSet<String>,
    /// Deletion variant → words it comes from.
    deletions: FastMap<String, Vec<String>>,
}

fn deletion_variants(word: &str) -> Vec<String> {
    let chars: Vec<char> = word.chars().collect();
    (0..chars.len())
        .map(|skip| {
            chars
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != skip)
                .map(|(_, c)| c)
                .collect()
        })
        .collect()
}

/// Damerau-Levenshtein distance (optimal string alignment).
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut table = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in table.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in table[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (table[i - 1][j] + 1)
                .min(table[i][j - 1] + 1)
                .min(table[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(table[i - 2][j - 2] + 1);
            }
            table[i][j] = best;
        }
    }
    table[a.len()][b.len()]
}

impl Vocabulary {
    pub fn add(&mut self, word: &str, stem: &str) {
        if word.chars().count() < 3 || self.words.contains_key(word) {
            return;
        }
        self.words.insert(word.to_string(), stem.to_string());
        self.stems.insert(stem.to_string());
        for variant in deletion_variants(word) {
            self.deletions
                .entry(variant)
                .or_default()
                .push(word.to_string());
        }
    }

    pub fn knows_word(&self, word: &str) -> bool {
        self.words.contains_key(word)
    }

    pub fn knows_stem(&self, stem: &str) -> bool {
        self.stems.contains(stem)
    }

    /// Words within one edit (two for long words) of `word`, closest first.
    pub fn corrections(&self, word: &str) -> Vec<(String, String)> {
        let length = word.chars().count();
        // Longer words are not in the index (it drops tokens over 40 bytes), and the
        // deletion variants of a huge "word" would cost memory in the square of its length.
        if !(4..=MAX_WORD_LENGTH).contains(&length) || !word.chars().all(char::is_alphabetic) {
            return Vec::new();
        }
        // Two edits only for long words: on shorter ones they turn words into other words.
        let allowed = if length >= 10 { 2 } else { 1 };
        let mut probes: Vec<String> = vec![word.to_string()];
        let first_deletions = deletion_variants(word);
        if allowed >= 2 {
            for variant in &first_deletions {
                probes.extend(deletion_variants(variant));
            }
        }
        probes.extend(first_deletions);
        let mut candidates: FastSet<&String> = FastSet::default();
        for probe in &probes {
            if let Some((known, _)) = self.words.get_key_value(probe.as_str()) {
                candidates.insert(known);
            }
            if let Some(sources) = self.deletions.get(probe) {
                candidates.extend(sources.iter());
            }
        }
        let mut scored: Vec<(usize, String, String)> = candidates
            .into_iter()
            .filter_map(|candidate| {
                let distance = edit_distance(word, candidate);
                (distance <= allowed && distance > 0)
                    .then(|| (distance, candidate.clone(), self.words[candidate].clone()))
            })
            .collect();
        scored.sort();
        let best = scored.first().map(|(distance, ..)| *distance);
        scored
            .into_iter()
            .filter(|(distance, ..)| Some(*distance) == best)
            .take(3)
            .map(|(_, word, stem)| (word, stem))
            .collect()
    }
}

/// Finds Annex A control ids in the text and returns them with the rest of the text.
fn extract_controls(text: &str) -> (Vec<String>, String) {
    let mut controls = Vec::new();
    let mut rest = Vec::new();
    for token in text.split_whitespace() {
        let trimmed = token.trim_matches(|c: char| !c.is_alphanumeric() && c != '.');
        let trimmed = trimmed.trim_end_matches('.');
        let looks_like_control = trimmed.contains('.')
            && trimmed.chars().filter(|c| *c == '.').count() <= 2
            && trimmed.chars().any(|c| c.is_ascii_digit())
            && trimmed
                .chars()
                .all(|c| c.is_ascii_digit() || c == '.' || c == 'a' || c == 'A');
        match ControlId::parse(trimmed) {
            Ok(control) if looks_like_control => {
                let control = control.to_string();
                if !controls.contains(&control) {
                    controls.push(control);
                }
            }
            _ => rest.push(token),
        }
    }
    (controls, rest.join(" "))
}

/// Turns what a person typed into concepts. `stem` must be the index's own stemmer.
pub fn parse_query(
    text: &str,
    synonyms: &SynonymTable,
    vocabulary: &Vocabulary,
    stem: &mut dyn FnMut(&str) -> String,
) -> ParsedQuery {
    let text: String = text.chars().take(MAX_QUERY_CHARS).collect();
    let (controls, rest) = extract_controls(&text);
    let tokens = words(&rest);
    let mut stopword: Vec<bool> = tokens.iter().map(|word| is_stopword(word)).collect();
    let mut stems: Vec<String> = tokens.iter().map(|word| stem(word)).collect();
    // Spelling first, so a corrected word can still join a phrase ("locekd out").
    let mut corrections: Vec<Vec<(String, String)>> = vec![Vec::new(); tokens.len()];
    for (index, word) in tokens.iter().enumerate() {
        if stopword[index] || vocabulary.knows_stem(&stems[index]) {
            continue;
        }
        let found = vocabulary.corrections(word);
        match found.first() {
            // "whta", "teh": a misspelt stopword is still a stopword.
            Some((best_word, _)) if is_stopword(best_word) => stopword[index] = true,
            Some((_, best_stem)) => {
                stems[index] = best_stem.clone();
                corrections[index] = found;
            }
            None => {}
        }
    }
    // Each token's place among the content words, for telling which concepts were adjacent.
    let mut content_position = Vec::with_capacity(tokens.len());
    let mut next = 0;
    for is_stop in &stopword {
        content_position.push(next);
        if !is_stop {
            next += 1;
        }
    }
    let span_of = |from: usize, to: usize| {
        let start = content_position[from];
        let end = (from..to)
            .rev()
            .find(|index| !stopword[*index])
            .map_or(start, |index| content_position[index]);
        (start, end)
    };

    let mut concepts: Vec<Concept> = Vec::new();
    let mut seen: HashSet<Vec<String>> = HashSet::new();
    let mut push = |concept: Concept, concepts: &mut Vec<Concept>| {
        let key: Vec<String> = concept
            .alternatives
            .first()
            .map(|a| a.stems.clone())
            .unwrap_or_default();
        if seen.insert(key) {
            concepts.push(concept);
        }
    };

    let mut groups_seen: HashSet<usize> = HashSet::new();
    let mut position = 0;
    while position < tokens.len() {
        if let Some((group, length)) = synonyms.longest_match(&stems[position..]) {
            // A lone stopword is not a phrase ("it" in "it" ≠ IT department); "let go" is.
            if length > 1 || !stopword[position] {
                let phrases = synonyms.group(group);
                let mut matched: Vec<String> = (position..position + length)
                    .filter(|index| !stopword[*index])
                    .map(|index| stems[index].clone())
                    .collect();
                // "log in" is not "log": a phrase whose meaning was in its stopwords is
                // recognised, but looked for only through the other phrases of its group.
                if length > 1 && matched.len() < 2 {
                    matched.clear();
                }
                let corrected = corrections[position..position + length]
                    .iter()
                    .any(|c| !c.is_empty());
                let weight = if corrected { CORRECTION_WEIGHT } else { 1.0 };
                // Two phrases of one group ("locked out, can't log in") are one concept.
                if groups_seen.insert(group) {
                    let alternatives = std::iter::once(Alternative {
                        stems: matched.clone(),
                        weight,
                    })
                    .chain(
                        phrases
                            .iter()
                            .filter(|phrase| !phrase.collapses() && phrase.content != matched)
                            .map(|phrase| Alternative {
                                stems: phrase.content.clone(),
                                // "back up" is "backup" with a space: the same word.
                                weight: if phrase.content.concat() == matched.concat() {
                                    weight
                                } else {
                                    weight * SYNONYM_WEIGHT
                                },
                            }),
                    )
                    .collect();
                    push(
                        Concept {
                            typed: tokens[position..position + length].join(" "),
                            alternatives,
                            unknown: false,
                            span: span_of(position, position + length),
                        },
                        &mut concepts,
                    );
                }
                position += length;
                continue;
            }
        }
        let index = position;
        position += 1;
        if stopword[index] {
            continue;
        }
        let word = &tokens[index];
        let word_corrections = &corrections[index];
        let alternatives = if word_corrections.is_empty() {
            vec![Alternative {
                stems: vec![stems[index].clone()],
                weight: 1.0,
            }]
        } else {
            word_corrections
                .iter()
                .map(|(_, corrected_stem)| Alternative {
                    stems: vec![corrected_stem.clone()],
                    weight: CORRECTION_WEIGHT,
                })
                .collect()
        };
        push(
            Concept {
                typed: word.clone(),
                alternatives,
                unknown: word_corrections.is_empty() && !vocabulary.knows_stem(&stems[index]),
                span: span_of(index, index + 1),
            },
            &mut concepts,
        );
    }
    ParsedQuery { controls, concepts }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive_stem(word: &str) -> String {
        word.trim_end_matches('s').to_string()
    }

    fn setup() -> (SynonymTable, Vocabulary) {
        let groups = parse_synonym_lines(
            "# comment\nonboarding, new starter, joiner\nmfa, 2fa, two factor\nphishing, suspicious link\n",
        );
        let table = SynonymTable::new(&groups, &mut naive_stem);
        let mut vocabulary = Vocabulary::default();
        for word in [
            "backup",
            "laptop",
            "phishing",
            "onboarding",
            "restore",
            "reset",
        ] {
            vocabulary.add(word, &naive_stem(word));
        }
        (table, vocabulary)
    }

    #[test]
    fn scaffolding_goes_and_synonym_phrases_become_one_concept() {
        let (table, vocabulary) = setup();
        let query = parse_query(
            "How do I reset 2FA for a new starter?",
            &table,
            &vocabulary,
            &mut naive_stem,
        );
        let typed: Vec<&str> = query.concepts.iter().map(|c| c.typed.as_str()).collect();
        assert_eq!(typed, ["reset", "2fa", "new starter"]);
        let starter = &query.concepts[2];
        assert!(
            starter
                .alternatives
                .iter()
                .any(|a| a.stems == ["onboarding"])
        );
    }

    #[test]
    fn typos_are_corrected_from_the_vocabulary() {
        let (table, vocabulary) = setup();
        let query = parse_query("bakcup", &table, &vocabulary, &mut naive_stem);
        assert_eq!(query.concepts[0].alternatives[0].stems, ["backup"]);
        let query = parse_query("phising", &table, &vocabulary, &mut naive_stem);
        assert!(
            query.concepts[0]
                .alternatives
                .iter()
                .any(|a| a.stems == ["suspiciou", "link"])
        );
        let query = parse_query("pizza", &table, &vocabulary, &mut naive_stem);
        assert!(query.concepts[0].unknown);
    }

    #[test]
    fn control_ids_are_recognised_in_their_usual_spellings() {
        let (table, vocabulary) = setup();
        for text in [
            "A.8.13",
            "8.13",
            "a.8.13",
            "annex a 8.13",
            "what covers A.8.13?",
        ] {
            let query = parse_query(text, &table, &vocabulary, &mut naive_stem);
            assert_eq!(query.controls, ["A.8.13"], "{text}");
        }
        let query = parse_query(
            "version 1.2 of backup",
            &table,
            &vocabulary,
            &mut naive_stem,
        );
        assert!(query.controls.is_empty());
    }

    #[test]
    fn edit_distance_counts_transpositions_once() {
        assert_eq!(edit_distance("bakcup", "backup"), 1);
        assert_eq!(edit_distance("offboardng", "offboarding"), 1);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }
}

#[cfg(test)]
mod hostile_input_tests {
    use super::*;

    #[test]
    fn huge_words_and_questions_stay_cheap() {
        let groups = parse_synonym_lines("backup, snapshot\n");
        let table = SynonymTable::new(&groups, &mut |w: &str| w.to_string());
        let mut vocabulary = Vocabulary::default();
        vocabulary.add("backup", "backup");
        let word = "a".repeat(100_000);
        let started = std::time::Instant::now();
        let query = parse_query(&word, &table, &vocabulary, &mut |w: &str| w.to_string());
        assert!(query.concepts.len() <= 1);
        let many = "backup ".repeat(50_000);
        let query = parse_query(&many, &table, &vocabulary, &mut |w: &str| w.to_string());
        assert_eq!(query.concepts.len(), 1);
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }
}
