//! The two sample-level outputs: `tidy_values_under_fire_samples.csv` (the published
//! sample table, PROTOCOL 7.14) and `samples.jsonl` (one object per analysed sample, per
//! SAMPLES_JSONL.md), both in analysis order.
//!
//! Why they are written straight from the rows rather than built in memory first:
//! together they carry every prompt and response twice (about 44 MB for the corpus), and
//! rendering them into buffers cost more in fresh pages and copies than the rendering
//! itself. Each file goes out through one buffered writer, a row at a time.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use crate::protocol::lexicon::LEXICON;

use super::super::table::{write_field, write_record};
use super::super::{Analysis, Error};

/// File stem of the sample-level table. It is left out of `analysis.json`: `samples.jsonl`
/// carries the same rows (and more), and doubling every response there would make that
/// file the slowest output to write and to read.
pub(crate) const TIDY_TABLE: &str = "tidy_values_under_fire_samples";

/// The published sample table's columns, in order.
pub(crate) const TIDY_COLUMNS: [&str; 22] = [
    "layered_id",
    "source_model",
    "model",
    "display_name",
    "lab",
    "website_family",
    "model_family",
    "cell",
    "condition",
    "condition_family",
    "sample_id",
    "release_date",
    "value_holding",
    "collapsed_primary_label",
    "collapsed_primary_label_support",
    "topics",
    "n_topics",
    "lex_service_assistant_role_any",
    "lex_disownership_any",
    "lex_policy_safety_frame_any",
    "prompt",
    "response",
];

/// One analysed sample, as the sample-level outputs need it: the row of the input it
/// came from and what the analysis found for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnalysedSample {
    /// Index into [`Analysis::rows`].
    pub row: usize,
    /// Index into [`Analysis::models`].
    pub model: usize,
    /// `lex_<group>_any` of the three lexical groups, published semantics.
    pub lex_any: [bool; 3],
}

const BUFFER: usize = 1 << 19;

fn create(path: &Path) -> Result<BufWriter<File>, Error> {
    File::create(path)
        .map(|f| BufWriter::with_capacity(BUFFER, f))
        .map_err(|source| Error::Write {
            path: path.to_path_buf(),
            source,
        })
}

fn finish(w: BufWriter<File>, path: &Path) -> Result<(), Error> {
    w.into_inner()
        .map(drop)
        .map_err(|e| e.into_error())
        .map_err(|source| Error::Write {
            path: path.to_path_buf(),
            source,
        })
}

/// Sorted, `|`-joined topic keys and their count ("" and 0 without Layer A).
pub(crate) fn topics_field(topics: Option<&Vec<String>>) -> (String, usize) {
    match topics {
        Some(t) => {
            let mut t: Vec<&str> = t.iter().map(|x| x.as_str()).collect();
            t.sort_unstable();
            (t.join("|"), t.len())
        }
        None => (String::new(), 0),
    }
}

/// Write the published sample table to `path`.
pub(crate) fn write_tidy(a: &Analysis, path: &Path) -> Result<(), Error> {
    let mut w = create(path)?;
    let mut line = String::with_capacity(4096);
    write_record(&mut line, TIDY_COLUMNS.iter().copied());
    let io = |e| Error::Write {
        path: path.to_path_buf(),
        source: e,
    };
    w.write_all(line.as_bytes()).map_err(io)?;
    for s in &a.analysed {
        let c = &a.rows[s.row];
        let m = &a.models[s.model];
        let (topics, n_topics) = topics_field(c.topics.as_ref());
        line.clear();
        let text = [
            c.layered_id.as_str(),
            &c.source_model,
            &m.model,
            &m.display_name,
            &m.lab,
            &m.website_family,
            &c.model_family,
            &c.cell,
            c.condition.as_str(),
            c.condition.family().as_str(),
            &c.sample_id,
            &m.release_date,
            c.value_holding.as_str(),
            &c.collapsed_primary_label,
        ];
        for f in text {
            write_field(&mut line, f);
            line.push(',');
        }
        // Integers never need quoting.
        let flag = |b: bool| if b { '1' } else { '0' };
        let _ = std::fmt::Write::write_fmt(
            &mut line,
            format_args!("{},", c.collapsed_primary_label_support),
        );
        write_field(&mut line, &topics);
        let _ = std::fmt::Write::write_fmt(
            &mut line,
            format_args!(
                ",{n_topics},{},{},{},",
                flag(s.lex_any[0]),
                flag(s.lex_any[1]),
                flag(s.lex_any[2])
            ),
        );
        write_field(&mut line, &c.prompt);
        line.push(',');
        write_field(&mut line, &c.response);
        line.push('\n');
        w.write_all(line.as_bytes()).map_err(io)?;
    }
    finish(w, path)
}

#[derive(serde::Serialize)]
struct Lex {
    service_assistant_role: bool,
    disownership: bool,
    policy_safety_frame: bool,
}

#[derive(serde::Serialize)]
struct Vote<'a> {
    coder: &'a str,
    label: Option<&'static str>,
    value_holding: Option<&'static str>,
    notes: &'a str,
}

/// One line of `samples.jsonl`; field order is the contract's key order.
#[derive(serde::Serialize)]
struct SampleLine<'a> {
    layered_id: &'a str,
    model: &'a str,
    source_model: &'a str,
    display_name: &'a str,
    lab: &'a str,
    cell: &'a str,
    condition: &'static str,
    condition_family: &'static str,
    sample_id: &'a str,
    value_holding: &'static str,
    value_holding_support: u8,
    collapsed_primary_label: &'a str,
    collapsed_primary_label_support: u8,
    topics: Vec<&'a str>,
    lex: Lex,
    coder_votes: Vec<Vote<'a>>,
    confidence: Option<f64>,
    source: &'static str,
    // `prompt` and `response` follow, written by `json_str` (see `write_jsonl`).
}

/// Write `samples.jsonl` to `path`: one line per analysed sample.
pub(crate) fn write_jsonl(a: &Analysis, path: &Path) -> Result<(), Error> {
    debug_assert_eq!(LEXICON[0].key, "service_assistant_role");
    let mut w = create(path)?;
    let mut buf: Vec<u8> = Vec::with_capacity(1 << 16);
    for s in &a.analysed {
        let m = &a.models[s.model];
        let c = &a.rows[s.row];
        let line = SampleLine {
            layered_id: &c.layered_id,
            model: &m.model,
            source_model: &c.source_model,
            display_name: &m.display_name,
            lab: &m.lab,
            cell: &c.cell,
            condition: c.condition.as_str(),
            condition_family: c.condition.family().as_str(),
            sample_id: &c.sample_id,
            value_holding: c.value_holding.as_str(),
            value_holding_support: c.value_holding_support,
            collapsed_primary_label: &c.collapsed_primary_label,
            collapsed_primary_label_support: c.collapsed_primary_label_support,
            topics: c.topics.iter().flatten().map(|t| t.as_str()).collect(),
            lex: Lex {
                service_assistant_role: s.lex_any[0],
                disownership: s.lex_any[1],
                policy_safety_frame: s.lex_any[2],
            },
            coder_votes: c
                .coder_votes
                .iter()
                .map(|v| Vote {
                    coder: &v.coder,
                    label: v.label.map(|l| l.as_str()),
                    value_holding: v.value_holding.map(|h| h.as_str()),
                    notes: &v.notes,
                })
                .collect(),
            confidence: c.confidence.filter(|x| x.is_finite()),
            source: a.source.as_str(),
        };
        // Everything but the two texts goes through serde; the texts, most of the bytes,
        // through `json_str`, which escapes exactly as serde_json does but skips clean
        // runs eight bytes at a time (serde_json's byte loop was half of this file's cost).
        buf.clear();
        // Plain strings, bools and finite numbers cannot fail to serialise.
        let _ = serde_json::to_writer(&mut buf, &line);
        buf.pop(); // the closing brace
        buf.extend_from_slice(b",\"prompt\":");
        json_str(&mut buf, &c.prompt);
        buf.extend_from_slice(b",\"response\":");
        json_str(&mut buf, &c.response);
        buf.extend_from_slice(b"}\n");
        w.write_all(&buf).map_err(|source| Error::Write {
            path: path.to_path_buf(),
            source,
        })?;
    }
    finish(w, path)
}

/// Append `s` as a JSON string, quotes included, escaped byte for byte as serde_json does:
/// `\"`, `\\`, `\b \t \n \f \r`, other control bytes as `\u00xx`; nothing else.
pub(crate) fn json_str(out: &mut Vec<u8>, s: &str) {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // Whether any byte of `w` is below 0x20, a quote or a backslash. Each test is exact
    // for "any byte" (a borrow only starts at a byte that matches).
    let special = |w: u64| {
        let zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
        (w.wrapping_sub(0x20 * ONES) & !w & HIGH)
            | zero(w ^ (0x22 * ONES))
            | zero(w ^ (0x5c * ONES))
            != 0
    };
    let b = s.as_bytes();
    out.reserve(b.len() + 2);
    out.push(b'"');
    let (mut start, mut i) = (0, 0);
    while i < b.len() {
        if let Some(chunk) = b.get(i..i + 8) {
            let mut w = [0u8; 8];
            w.copy_from_slice(chunk);
            if !special(u64::from_le_bytes(w)) {
                i += 8;
                continue;
            }
        }
        let c = b[i];
        let short: &[u8] = match c {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            0x08 => b"\\b",
            0x09 => b"\\t",
            0x0a => b"\\n",
            0x0c => b"\\f",
            0x0d => b"\\r",
            0x00..=0x1f => b"",
            _ => {
                i += 1;
                continue;
            }
        };
        out.extend_from_slice(&b[start..i]);
        if short.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[(c >> 4) as usize],
                HEX[(c & 15) as usize],
            ]);
        } else {
            out.extend_from_slice(short);
        }
        i += 1;
        start = i;
    }
    out.extend_from_slice(&b[start..]);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::json_str;

    fn ours(s: &str) -> String {
        let mut v = Vec::new();
        json_str(&mut v, s);
        String::from_utf8(v).expect("utf-8")
    }

    #[test]
    fn json_str_escapes_as_serde_json_does() {
        // Every ASCII byte alone, at each offset of an 8-byte word, and next to text.
        for c in 0u8..0x80 {
            let ch = c as char;
            for pad in 0..10 {
                let s = format!("{}{ch}{}", "a".repeat(pad), "é".repeat(pad % 3));
                assert_eq!(
                    ours(&s),
                    serde_json::to_string(&s).unwrap(),
                    "byte {c:#x} pad {pad}"
                );
            }
        }
        // Hand-written expectations (not only the oracle).
        assert_eq!(
            ours("a\"b\\c\n\u{1}\u{7f}é"),
            "\"a\\\"b\\\\c\\n\\u0001\u{7f}é\""
        );
        assert_eq!(ours(""), "\"\"");
        // Seeded random mixes of clean runs, control bytes, quotes and multi-byte text.
        let pieces = [
            "plain text ",
            "\n",
            "\"",
            "\\",
            "\t",
            "\u{1f}",
            "ü",
            "日本",
            "\u{2028}",
            "💡",
            "12345678",
            "\r\n",
        ];
        let mut x: u64 = 20260521;
        for _ in 0..2000 {
            let mut s = String::new();
            for _ in 0..(x % 40) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                s.push_str(pieces[(x % pieces.len() as u64) as usize]);
            }
            assert_eq!(ours(&s), serde_json::to_string(&s).unwrap());
        }
    }
}
