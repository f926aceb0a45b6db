//! A faster evaluation of [`crate::protocol::lexicon::scan`] for whole-corpus runs.
//!
//! The rule is unchanged and still lives in `protocol` (the 49 terms, full Unicode
//! lowercasing, plain substring, the optional curly-apostrophe mapping): this module only
//! evaluates it in one pass instead of 49. All terms are ASCII and at least two bytes long,
//! and UTF-8 is self-synchronising, so "term occurs as a substring of the lowercased text"
//! equals "some byte offset starts with the term's bytes". Candidate terms are looked up by
//! the first two bytes at each offset.
//!
//! Lowercasing: only two non-ASCII characters lowercase to something containing ASCII
//! (U+0130 -> `i` + U+0307, U+212A KELVIN SIGN -> `k`; a test checks every char). Every other
//! non-ASCII character lowercases to non-ASCII bytes, which no ASCII term can touch, so for
//! texts without those two the byte-wise ASCII lowercase of the original has exactly the
//! same term matches as the full Unicode lowercase, at a fraction of the cost; texts with
//! them take the full `to_lowercase` path. Tests (here and in the acceptance test, over every
//! response of the labelled subset) prove the result equals `protocol::lexicon::scan`.

use std::sync::OnceLock;

use crate::protocol::lexicon::{ApostropheMode, LexicalHits, LEXICON};

struct Index {
    /// `start[k]..start[k + 1]` indexes `entries` for the two-byte key k.
    start: Vec<u32>,
    /// (group, term index, term bytes).
    entries: Vec<(u8, u8, &'static [u8])>,
    /// Whether any term starts with this byte (skips most offsets cheaply).
    first: [bool; 256],
}

fn index() -> &'static Index {
    static INDEX: OnceLock<Index> = OnceLock::new();
    INDEX.get_or_init(|| {
        let mut all: Vec<(u16, u8, u8, &'static [u8])> = Vec::new();
        for (g, group) in LEXICON.iter().enumerate() {
            for (t, term) in group.terms.iter().enumerate() {
                let b = term.as_bytes();
                assert!(b.len() >= 2 && b.is_ascii(), "lexicon terms are ASCII, >= 2 bytes");
                all.push((u16::from_be_bytes([b[0], b[1]]), g as u8, t as u8, b));
            }
        }
        all.sort_by_key(|e| e.0);
        let mut start = vec![0u32; 65537];
        for e in &all {
            start[e.0 as usize + 1] += 1;
        }
        for k in 0..65536 {
            start[k + 1] += start[k];
        }
        let mut first = [false; 256];
        for e in &all {
            first[e.3[0] as usize] = true;
        }
        Index {
            start,
            entries: all.into_iter().map(|(_, g, t, b)| (g, t, b)).collect(),
            first,
        }
    })
}

/// The non-ASCII characters whose lowercase contains ASCII (checked by a test over all chars).
const LOWER_TO_ASCII: [char; 2] = ['\u{130}', '\u{212A}'];

/// Bytes with the same ASCII-term matches as the lowercased (and, in the curly mode,
/// apostrophe-normalised) response.
fn lowered(response: &str, mode: ApostropheMode) -> Vec<u8> {
    if response.contains(LOWER_TO_ASCII) {
        let mut lower = response.to_lowercase();
        if mode == ApostropheMode::NormaliseCurly {
            lower = lower.replace(['\u{2019}', '\u{2018}'], "'");
        }
        return lower.into_bytes();
    }
    let mut out = response.as_bytes().to_vec();
    out.make_ascii_lowercase();
    if mode == ApostropheMode::NormaliseCurly && response.contains(['\u{2019}', '\u{2018}']) {
        // U+2018 / U+2019 are E2 80 98 / E2 80 99 in UTF-8.
        let mut j = 0;
        let mut i = 0;
        while i < out.len() {
            if out[i] == 0xE2 && i + 2 < out.len() && out[i + 1] == 0x80 && (out[i + 2] == 0x98 || out[i + 2] == 0x99) {
                out[j] = b'\'';
                i += 3;
            } else {
                out[j] = out[i];
                i += 1;
            }
            j += 1;
        }
        out.truncate(j);
    }
    out
}

/// Same result as `protocol::lexicon::scan(response, mode)`.
pub fn scan_fast(response: &str, mode: ApostropheMode) -> LexicalHits {
    let idx = index();
    let lower = lowered(response, mode);
    let bytes = lower.as_slice();
    let mut found = [[false; 20]; 3];
    if bytes.len() >= 2 {
        for i in 0..bytes.len() - 1 {
            if !idx.first[bytes[i] as usize] {
                continue;
            }
            let k = u16::from_be_bytes([bytes[i], bytes[i + 1]]) as usize;
            let (a, b) = (idx.start[k] as usize, idx.start[k + 1] as usize);
            for &(g, t, term) in &idx.entries[a..b] {
                if bytes[i..].starts_with(term) {
                    found[g as usize][t as usize] = true;
                }
            }
        }
    }
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
