//! A faster evaluation of [`crate::protocol::lexicon::scan`] for whole-corpus runs.
//!
//! The rule is unchanged and still lives in `protocol` (the 49 terms, full Unicode
//! lowercasing, plain substring, the optional curly-apostrophe mapping): this module only
//! evaluates it in one pass instead of 49. All terms are lowercase ASCII, and UTF-8 is
//! self-synchronising, so "term occurs as a substring of the lowercased text" equals "some
//! byte offset of the lowercased bytes starts with the term's bytes". A leftmost-first
//! Aho-Corasick search over all 49 terms (SIMD-accelerated) finds the leftmost offset where
//! any term starts; every term is then checked at that offset, and the search resumes one
//! byte later, so terms that overlap or share a start are all seen, and the text between
//! hits is skipped at memchr-like speed.
//!
//! Lowercasing: only two non-ASCII characters lowercase to something containing ASCII
//! (U+0130 -> `i` + U+0307, U+212A KELVIN SIGN -> `k`; a test checks every char). Every other
//! non-ASCII character lowercases to non-ASCII bytes, which no ASCII term can touch, so for
//! texts without those two the byte-wise ASCII lowercase of the original has exactly the
//! same term matches as the full Unicode lowercase, at a fraction of the cost; texts with
//! them take the full `to_lowercase` path. Tests (here and in the acceptance test, over every response of
//! the labelled subset) prove the result equals `protocol::lexicon::scan`.

use std::sync::OnceLock;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, Input, MatchKind};

use crate::protocol::lexicon::{ApostropheMode, LexicalHits, LEXICON};

/// Term hits as a (group, term) matrix.
type Found = [[bool; 20]; 3];

/// One automaton over a set of terms.
struct Searcher {
    /// Finds the leftmost offset where some term starts.
    automaton: AhoCorasick,
    /// Terms by first byte: (group, term index, term bytes).
    by_first: Vec<Vec<(u8, u8, &'static [u8])>>,
}

impl Searcher {
    fn new(keep: impl Fn(&str) -> bool) -> Searcher {
        let mut patterns: Vec<&'static str> = Vec::new();
        let mut by_first = vec![Vec::new(); 256];
        for (g, group) in LEXICON.iter().enumerate() {
            for (t, term) in group.terms.iter().enumerate() {
                assert!(
                    term.is_ascii() && !term.is_empty() && *term == term.to_lowercase(),
                    "lexicon terms are lowercase ASCII"
                );
                if keep(term) {
                    patterns.push(term);
                    by_first[term.as_bytes()[0] as usize].push((g as u8, t as u8, term.as_bytes()));
                }
            }
        }
        let automaton = AhoCorasickBuilder::new()
            .match_kind(MatchKind::LeftmostFirst)
            .build(&patterns)
            .expect("the lexicon builds an automaton");
        Searcher {
            automaton,
            by_first,
        }
    }

    /// Mark every term of this searcher that occurs in `bytes`.
    fn mark(&self, bytes: &[u8], found: &mut Found) {
        let mut pos = 0;
        while let Some(m) = self
            .automaton
            .find(Input::new(bytes).span(pos..bytes.len()))
        {
            let at = m.start();
            for &(g, t, term) in &self.by_first[bytes[at] as usize] {
                if bytes[at..].starts_with(term) {
                    found[g as usize][t as usize] = true;
                }
            }
            pos = at + 1;
        }
    }
}

struct Index {
    /// All 49 terms.
    all: Searcher,
    /// The terms that contain an apostrophe: the only ones the curly variant can change.
    apostrophe: Searcher,
}

fn index() -> &'static Index {
    static INDEX: OnceLock<Index> = OnceLock::new();
    INDEX.get_or_init(|| Index {
        all: Searcher::new(|_| true),
        apostrophe: Searcher::new(|t| t.contains('\'')),
    })
}

/// The non-ASCII characters whose lowercase contains ASCII (checked by a test over all
/// chars); `has_lower_to_ascii` looks for exactly these.
#[cfg(test)]
const LOWER_TO_ASCII: [char; 2] = ['\u{130}', '\u{212A}'];

/// Whether `text` holds U+0130 or U+212A (same as `text.contains(LOWER_TO_ASCII)`), by a
/// memchr scan for their lead bytes: `str::contains` with a char set decodes every
/// character and took a tenth of the scan's time.
fn has_lower_to_ascii(text: &str) -> bool {
    let b = text.as_bytes();
    memchr::memchr2_iter(0xC4, 0xE2, b).any(|i| {
        b[i..].starts_with("\u{130}".as_bytes()) || b[i..].starts_with("\u{212A}".as_bytes())
    })
}

/// Whether `text` holds a curly apostrophe, U+2018 or U+2019 (same as `str::contains`).
fn has_curly(text: &str) -> bool {
    let b = text.as_bytes();
    memchr::memchr_iter(0xE2, b).any(|i| {
        b[i..].starts_with("\u{2018}".as_bytes()) || b[i..].starts_with("\u{2019}".as_bytes())
    })
}

/// Bytes with the same ASCII-term matches as the lowercased (and, in the curly mode,
/// apostrophe-normalised) response.
fn lowered(response: &str, mode: ApostropheMode) -> Vec<u8> {
    if has_lower_to_ascii(response) {
        let mut lower = response.to_lowercase();
        if mode == ApostropheMode::NormaliseCurly {
            lower = lower.replace(['\u{2019}', '\u{2018}'], "'");
        }
        return lower.into_bytes();
    }
    // The curly mode is only asked for responses that hold a curly quote (`curly_from`).
    let mut out = match mode {
        ApostropheMode::NormaliseCurly => {
            response.replace(['\u{2019}', '\u{2018}'], "'").into_bytes()
        }
        ApostropheMode::Published => response.as_bytes().to_vec(),
    };
    out.make_ascii_lowercase();
    out
}

/// Same result as `protocol::lexicon::scan(response, mode)`.
pub fn scan_fast(response: &str, mode: ApostropheMode) -> LexicalHits {
    let published = scan_published(response);
    match mode {
        ApostropheMode::Published => published,
        ApostropheMode::NormaliseCurly => curly_from(response, &published),
    }
}

fn scan_published(response: &str) -> LexicalHits {
    let mut found = [[false; 20]; 3];
    index()
        .all
        .mark(&lowered(response, ApostropheMode::Published), &mut found);
    hits(&found)
}

/// The curly-apostrophe variant's hits, given the published hits of the same response.
/// A term without an apostrophe matches the same text either way: it can neither contain
/// a replaced quote nor span one. So only the apostrophe terms are searched again, in the
/// normalised text, and only when the response has a curly quote at all.
pub fn curly_from(response: &str, published: &LexicalHits) -> LexicalHits {
    if !has_curly(response) {
        return published.clone();
    }
    let mut found = [[false; 20]; 3];
    for (g, terms) in published.hits.iter().enumerate() {
        for &t in terms {
            found[g][t as usize] = true;
        }
    }
    index().apostrophe.mark(
        &lowered(response, ApostropheMode::NormaliseCurly),
        &mut found,
    );
    hits(&found)
}

fn hits(found: &Found) -> LexicalHits {
    let mut out = LexicalHits::default();
    for (g, f) in found.iter().enumerate() {
        for (t, hit) in f.iter().enumerate().take(LEXICON[g].terms.len()) {
            if *hit {
                out.hits[g].push(t as u8);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::lexicon::scan;

    #[test]
    fn only_two_chars_lowercase_to_ascii() {
        let found: Vec<char> = (0x80u32..=0x10FFFF)
            .filter_map(char::from_u32)
            .filter(|c| c.to_lowercase().any(|l| l.is_ascii()))
            .collect();
        assert_eq!(found, LOWER_TO_ASCII);
    }

    #[test]
    fn byte_checks_equal_char_checks() {
        for t in [
            "",
            "plain",
            "\u{130}x",
            "x\u{212A}",
            "\u{2018}",
            "a\u{2019}b",
            "\u{2014}\u{2026}\u{c4}\u{e2}",
            "\u{2013}\u{2010}\u{2017}",
        ] {
            assert_eq!(has_lower_to_ascii(t), t.contains(LOWER_TO_ASCII), "{t:?}");
            assert_eq!(has_curly(t), t.contains(['\u{2019}', '\u{2018}']), "{t:?}");
        }
    }

    #[test]
    fn equals_the_protocol_scan() {
        let texts = [
            "",
            "a",
            "As an AI assistant, I don't have personal feelings; I'M AN AI built to serve.",
            "I don\u{2019}t have feelings. Unsafe harmless POLICIES, ethical guidelines, responsible AI.",
            "\u{130}stanbul \u{1E9E} ß — i do not experience; i cannot care; not sentient; avoid harm",
            "my purpose: to provide information and support users; trained to, programmed to, designed to",
            "helpfulness usefulness guardrails no consciousness no subjective experience i can't care",
            "I\u{2018}M AN AI \u{130} DON\u{2019}T CARE, \u{212A}ELVIN; I DON\u{2019}T HAVE WANTS",
            "\u{2019}\u{2018}\u{2019}",
        ];
        for t in texts {
            for m in [ApostropheMode::Published, ApostropheMode::NormaliseCurly] {
                assert_eq!(scan_fast(t, m), scan(t, m), "{t:?} {m:?}");
            }
        }
    }
}
