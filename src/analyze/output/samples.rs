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

use super::super::input::ModelInfo;
use super::super::table::{write_field, write_record};
use super::super::{Analysis, Error};
use crate::protocol::CodedSample;

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
fn topics_field(topics: Option<&Vec<String>>) -> (String, usize) {
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

/// Write `samples.jsonl` to `path`: one line per analysed sample.
pub(crate) fn write_jsonl(a: &Analysis, path: &Path) -> Result<(), Error> {
    let mut w = create(path)?;
    let mut buf: Vec<u8> = Vec::with_capacity(1 << 16);
    for s in &a.analysed {
        buf.clear();
        sample_line(
            &mut buf,
            a.source.as_str(),
            &a.models[s.model],
            &a.rows[s.row],
            s.lex_any,
        );
        w.write_all(&buf).map_err(|source| Error::Write {
            path: path.to_path_buf(),
            source,
        })?;
    }
    finish(w, path)
}

/// One line of `samples.jsonl`, newline included, keys in the contract's order. Written
/// by hand rather than through serde: per-field serialisation was most of this file's
/// cost. The output is what serde_json writes for the same object (a test checks).
fn sample_line(out: &mut Vec<u8>, source: &str, m: &ModelInfo, c: &CodedSample, lex: [bool; 3]) {
    // Keys are plain ASCII names: nothing in them needs escaping.
    fn key(out: &mut Vec<u8>, k: &str) {
        out.extend_from_slice(b",\"");
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(b"\":");
    }
    fn opt(out: &mut Vec<u8>, v: Option<&str>) {
        match v {
            Some(v) => json_str(out, v),
            None => out.extend_from_slice(b"null"),
        }
    }
    let bool_str = |b: bool| if b { "true" } else { "false" };
    out.extend_from_slice(b"{\"layered_id\":");
    json_str(out, &c.layered_id);
    for (k, v) in [
        ("model", m.model.as_str()),
        ("source_model", &c.source_model),
        ("display_name", &m.display_name),
        ("lab", &m.lab),
        ("cell", &c.cell),
        ("condition", c.condition.as_str()),
        ("condition_family", c.condition.family().as_str()),
        ("sample_id", &c.sample_id),
        ("value_holding", c.value_holding.as_str()),
    ] {
        key(out, k);
        json_str(out, v);
    }
    key(out, "value_holding_support");
    let _ = write!(out, "{}", c.value_holding_support);
    key(out, "collapsed_primary_label");
    json_str(out, &c.collapsed_primary_label);
    key(out, "collapsed_primary_label_support");
    let _ = write!(out, "{}", c.collapsed_primary_label_support);
    key(out, "topics");
    out.push(b'[');
    for (i, t) in c.topics.iter().flatten().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        json_str(out, t);
    }
    out.push(b']');
    key(out, "lex");
    debug_assert_eq!(LEXICON[0].key, "service_assistant_role");
    out.extend_from_slice(b"{\"service_assistant_role\":");
    out.extend_from_slice(bool_str(lex[0]).as_bytes());
    out.extend_from_slice(b",\"disownership\":");
    out.extend_from_slice(bool_str(lex[1]).as_bytes());
    out.extend_from_slice(b",\"policy_safety_frame\":");
    out.extend_from_slice(bool_str(lex[2]).as_bytes());
    out.push(b'}');
    key(out, "coder_votes");
    out.push(b'[');
    for (i, v) in c.coder_votes.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"coder\":");
        json_str(out, &v.coder);
        key(out, "label");
        opt(out, v.label.map(|l| l.as_str()));
        key(out, "value_holding");
        opt(out, v.value_holding.map(|h| h.as_str()));
        key(out, "notes");
        json_str(out, &v.notes);
        out.push(b'}');
    }
    out.push(b']');
    key(out, "confidence");
    match c.confidence.filter(|x| x.is_finite()) {
        // serde_json's float format (shortest round-trip), as every other number here.
        Some(x) => {
            let _ = serde_json::to_writer(&mut *out, &x);
        }
        None => out.extend_from_slice(b"null"),
    }
    key(out, "source");
    json_str(out, source);
    key(out, "prompt");
    json_str(out, &c.prompt);
    key(out, "response");
    json_str(out, &c.response);
    out.extend_from_slice(b"}\n");
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
    use super::*;
    use crate::protocol::{CoderVote, Condition, PostureLabel, ValueHolding};

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

    /// The line as SAMPLES_JSONL.md lists it, serialised by serde_json: the oracle for
    /// the hand-written `sample_line`.
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
        prompt: &'a str,
        response: &'a str,
    }

    fn oracle(source: &'static str, m: &ModelInfo, c: &CodedSample, lex: [bool; 3]) -> String {
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
                service_assistant_role: lex[0],
                disownership: lex[1],
                policy_safety_frame: lex[2],
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
            source,
            prompt: &c.prompt,
            response: &c.response,
        };
        serde_json::to_string(&line).unwrap() + "\n"
    }

    #[test]
    fn sample_line_is_what_serde_json_writes() {
        let m = ModelInfo {
            model: "m\"1".into(),
            display_name: "M <1>".into(),
            lab: "Lab\\".into(),
            family: "f".into(),
            website_family: "f".into(),
            release_date: "2026-01-01".into(),
        };
        let base = CodedSample {
            layered_id: "c_CTRL1_0".into(),
            source_model: "m/1".into(),
            model_family: "m".into(),
            cell: "c".into(),
            sample_id: "CTRL1_0.json".into(),
            condition: Condition::G2,
            prompt: "Not as an assistant.\nWhat do you want?".into(),
            response: "I \"want\"\t\u{1}\r\n日本 💡 \\end".into(),
            value_holding: ValueHolding::Owned,
            value_holding_support: 3,
            collapsed_primary_label: "owned_reflective_experiential".into(),
            collapsed_primary_label_support: 2,
            topics: None,
            coder_votes: Vec::new(),
            skipped_coders: Vec::new(),
            confidence: None,
        };
        let mut with_all = base.clone();
        with_all.topics = Some(vec!["a_topic".into(), "b \"q\"".into()]);
        with_all.confidence = Some(0.1 + 0.2);
        with_all.coder_votes = vec![
            CoderVote {
                coder: "kimi".into(),
                label: Some(PostureLabel::OwnedReflectiveExperiential),
                value_holding: Some(ValueHolding::Owned),
                notes: "says \"yes\"\n".into(),
            },
            CoderVote {
                coder: "glm".into(),
                label: None,
                value_holding: None,
                notes: String::new(),
            },
        ];
        let mut nan = base.clone();
        nan.confidence = Some(f64::NAN);
        nan.topics = Some(vec![]);
        for (c, lex) in [
            (&base, [false; 3]),
            (&with_all, [true, false, true]),
            (&nan, [false, true, false]),
        ] {
            let mut ours = Vec::new();
            sample_line(&mut ours, "offline", &m, c, lex);
            assert_eq!(
                String::from_utf8(ours).unwrap(),
                oracle("offline", &m, c, lex)
            );
        }
    }

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
