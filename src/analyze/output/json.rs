//! `analysis.json` (every table, numbers as numbers, NaN as null) and `samples.jsonl` (one
//! object per analysed sample, in tidy-table order), per SAMPLES_JSONL.md.

use serde_json::{json, Value as J};

use crate::protocol::lexicon::LEXICON;

use super::super::input::Prepared;
use super::super::table::{JsonRows, Table};
use super::super::Analysis;

/// The sample-level tidy table is left out of `analysis.json`: `samples.jsonl` carries the
/// same rows (and more), and doubling 13,906 responses would make this file the slowest
/// output to write and to read. `analysis.json` names where they are instead.
pub(crate) const SAMPLE_LEVEL_TABLE: &str = "tidy_values_under_fire_samples";

pub(crate) fn analysis_json(a: &Analysis) -> String {
    #[derive(serde::Serialize)]
    struct Doc<'a> {
        vuf_version: &'static str,
        source: &'static str,
        provenance: J,
        messages: &'a [String],
        sample_level_rows: &'static str,
        tables: Tables<'a>,
    }
    struct Tables<'a>(&'a [Table]);
    impl serde::Serialize for Tables<'_> {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            use serde::ser::SerializeMap;
            let mut m = s.serialize_map(None)?;
            for t in self.0.iter().filter(|t| t.name != SAMPLE_LEVEL_TABLE) {
                m.serialize_entry(&t.name, &JsonRows(t))?;
            }
            m.end()
        }
    }
    let inputs: Vec<J> = a
        .provenance
        .inputs
        .iter()
        .map(|f| json!({"name": f.name, "rows": f.rows, "sha256": f.sha256}))
        .collect();
    let doc = Doc {
        vuf_version: env!("CARGO_PKG_VERSION"),
        source: a.source.as_str(),
        provenance: {
            let mut p = json!({"inputs": inputs, "n_rows": a.provenance.n_rows, "n_excluded": a.provenance.n_excluded});
            for (k, v) in &a.provenance.code_provenance {
                p[k.as_str()] = J::String(v.clone());
            }
            p
        },
        messages: &a.messages,
        sample_level_rows: "samples.jsonl",
        tables: Tables(&a.tables),
    };
    let mut s = serde_json::to_string_pretty(&doc).unwrap_or_default();
    s.push('\n');
    s
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

/// `samples.jsonl`: one line per analysed sample.
pub(crate) fn build_samples(a: &Analysis, prep: &Prepared) -> String {
    debug_assert_eq!(LEXICON[0].key, "service_assistant_role");
    // Sized up front (about 25 MB for the corpus) instead of grown by doubling.
    let text: usize = prep
        .samples
        .iter()
        .map(|s| s.c.response.len() + s.c.prompt.len())
        .sum();
    let mut out: Vec<u8> = Vec::with_capacity(text + text / 16 + 640 * prep.samples.len());
    for s in &prep.samples {
        let m = &a.models[s.model];
        let c = s.c;
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
                service_assistant_role: s.lex.any(0),
                disownership: s.lex.any(1),
                policy_safety_frame: s.lex.any(2),
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
        // Serialising plain strings, bools and finite numbers cannot fail.
        if serde_json::to_writer(&mut out, &line).is_ok() {
            out.push(b'\n');
        }
    }
    String::from_utf8(out).unwrap_or_default()
}
