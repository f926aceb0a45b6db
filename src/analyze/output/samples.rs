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
    prompt: &'a str,
    response: &'a str,
}

/// Write `samples.jsonl` to `path`: one line per analysed sample.
pub(crate) fn write_jsonl(a: &Analysis, path: &Path) -> Result<(), Error> {
    debug_assert_eq!(LEXICON[0].key, "service_assistant_role");
    let mut w = create(path)?;
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
            prompt: &c.prompt,
            response: &c.response,
        };
        // Plain strings, bools and finite numbers: only the file can fail.
        serde_json::to_writer(&mut w, &line)
            .map_err(std::io::Error::from)
            .and_then(|()| w.write_all(b"\n"))
            .map_err(|source| Error::Write {
                path: path.to_path_buf(),
                source,
            })?;
    }
    finish(w, path)
}
