//! `analysis.json` (every table, numbers as numbers, NaN as null) and `samples.jsonl` (one
//! object per analysed sample, in tidy-table order), per SAMPLES_JSONL.md.

use serde_json::{json, Map, Value as J};

use crate::protocol::lexicon::LEXICON;

use super::super::input::Prepared;
use super::super::Analysis;

pub(crate) fn analysis_json(a: &Analysis) -> String {
    let mut tables = Map::new();
    for t in &a.tables {
        tables.insert(t.name.clone(), t.to_json_rows());
    }
    let inputs: Vec<J> = a
        .provenance
        .inputs
        .iter()
        .map(|f| json!({"name": f.name, "rows": f.rows, "sha256": f.sha256}))
        .collect();
    let v = json!({
        "vuf_version": env!("CARGO_PKG_VERSION"),
        "source": a.source.as_str(),
        "provenance": {"inputs": inputs, "n_rows": a.provenance.n_rows, "n_excluded": a.provenance.n_excluded},
        "messages": a.messages,
        "tables": J::Object(tables),
    });
    let mut s = serde_json::to_string_pretty(&v).unwrap_or_default();
    s.push('\n');
    s
}

pub(crate) fn build_samples(a: &mut Analysis, prep: &Prepared) {
    let mut out = String::new();
    for s in &prep.samples {
        let m = &a.models[s.model];
        let c = s.c;
        let mut lex = Map::new();
        for (g, group) in LEXICON.iter().enumerate() {
            lex.insert(group.key.to_string(), J::Bool(s.lex.any(g)));
        }
        let votes: Vec<J> = c
            .coder_votes
            .iter()
            .map(|v| {
                json!({
                    "coder": v.coder,
                    "label": v.label.map(|l| l.as_str()),
                    "value_holding": v.value_holding.map(|h| h.as_str()),
                    "notes": v.notes,
                })
            })
            .collect();
        let obj = json!({
            "layered_id": c.layered_id,
            "model": m.model,
            "source_model": c.source_model,
            "display_name": m.display_name,
            "lab": m.lab,
            "cell": c.cell,
            "condition": c.condition.as_str(),
            "condition_family": c.condition.family().as_str(),
            "sample_id": c.sample_id,
            "value_holding": c.value_holding.as_str(),
            "value_holding_support": c.value_holding_support,
            "collapsed_primary_label": c.collapsed_primary_label,
            "collapsed_primary_label_support": c.collapsed_primary_label_support,
            "topics": c.topics.clone().unwrap_or_default(),
            "lex": J::Object(lex),
            "coder_votes": votes,
            "confidence": c.confidence,
            "source": a.source.as_str(),
            "prompt": c.prompt,
            "response": c.response,
        });
        out.push_str(&obj.to_string());
        out.push('\n');
    }
    a.samples_jsonl = out;
}
