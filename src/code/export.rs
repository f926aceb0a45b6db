//! `vuf export codes --layer a|b --source S --out FILE`: consensus records as JSONL with
//! the published field names (PROTOCOL 4.7, 5.7), one line per sample, in sample order.
//!
//! Imported (`published`) rows are written exactly as they were imported (the original
//! line, lossless). Computed rows are built from the stored consensus and its coder
//! records: Layer A `layered_id, model, model_family, condition, processing_chain,
//! eligible_coders, consensus_topics [{topic_key, supporting_coders, evidence_spans}],
//! non_endorsed_mentions, has_disagreement, value_topics, wish_topics`; Layer B
//! `layered_id, model, cell, sample_id, condition, processing_chain,
//! collapsed_primary_label, collapsed_primary_label_support, collapsed_primary_label_votes,
//! value_holding, value_holding_support, value_holding_votes, coder_records`.
//!
//! Sequential majority (`vuf code --sequential`, `--cascade`) does not ask a coder whose
//! vote could no longer change the consensus. Such a row lists those coders in one more
//! field, last: `skipped_by_design` (coder keys, sorted). They appear neither
//! in `eligible_coders` nor in `coder_records`, and the supports count only the coders
//! asked (2 of 2). Rows with no coder skipped do not have the field.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use serde_json::{json, Value};

use super::Layer;
use crate::protocol::{manifest_model_family, Chain, CodeSource, Condition};
use crate::store::codes::{self, StoredConsensus};
use crate::store::Store;

fn parse_json(text: &Option<String>) -> Value {
    text.as_deref()
        .and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or(Value::Null)
}

/// Build the published-shape record of one stored consensus row.
pub fn consensus_record(layer: Layer, c: &StoredConsensus) -> Value {
    let extra = parse_json(&c.row.record_json);
    let mut rec = published_shape(layer, c, &extra);
    if let Some(skipped) = extra.get("skipped_by_design") {
        rec["skipped_by_design"] = skipped.clone();
    }
    rec
}

/// The record in the published field names, without vuf's additions at the end.
fn published_shape(layer: Layer, c: &StoredConsensus, extra: &Value) -> Value {
    let layered_id = c
        .layered_id
        .clone()
        .unwrap_or_else(|| format!("{}_{}_{}", c.cell, c.condition, c.idx));
    // A custom condition has no processing chain: its field is empty.
    let chain = Condition::parse(&c.condition).map(Condition::chain);
    let chain_name = chain.map(Chain::as_str).unwrap_or("");
    match layer {
        Layer::A => {
            let topics: Vec<Value> = parse_json(&c.row.topics_json)
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .map(|t| {
                    json!({
                        "topic_key": t.get("topic_key").cloned().unwrap_or(Value::Null),
                        "supporting_coders": t.get("supporting_coders").cloned().unwrap_or(json!([])),
                        "evidence_spans": [],
                    })
                })
                .collect();
            let (value_topics, wish_topics) = match chain {
                Some(Chain::WorldChangeWishes) => (json!([]), Value::Array(topics.clone())),
                _ => (Value::Array(topics.clone()), json!([])),
            };
            json!({
                "layered_id": layered_id,
                "model": c.source_model,
                "model_family": manifest_model_family(&c.source_model),
                "condition": c.condition,
                "processing_chain": chain_name,
                "eligible_coders": extra.get("eligible_coders").cloned().unwrap_or(json!([])),
                "consensus_topics": topics,
                "non_endorsed_mentions": [],
                "has_disagreement": c.row.has_disagreement,
                "value_topics": value_topics,
                "wish_topics": wish_topics,
            })
        }
        Layer::B => {
            let mut rec = posture_record(&layered_id, chain_name, c, extra);
            // Offline and cascade codes say so, with the coder's confidence (issue #6).
            if let Some(conf) = extra.get("confidence") {
                rec["primary_label"] = json!(c.row.label);
                rec["confidence"] = conf.clone();
                // Records written before the coder key was stored are offline-v1 codes.
                rec["coder"] = extra.get("coder").cloned().unwrap_or(json!("offline-v1"));
                rec["code_path"] = extra.get("path").cloned().unwrap_or(Value::Null);
            }
            rec
        }
    }
}

fn posture_record(layered_id: &str, chain_name: &str, c: &StoredConsensus, extra: &Value) -> Value {
    {
        json!({
            "layered_id": layered_id,
            "model": c.source_model,
            "cell": c.cell,
            "sample_id": format!("{}_{}", c.condition, c.idx),
            "condition": c.condition,
            "processing_chain": chain_name,
            "collapsed_primary_label": c.row.label,
            "collapsed_primary_label_support": c.row.label_support,
            "collapsed_primary_label_votes": parse_json(&c.row.label_votes_json),
            "value_holding": c.row.value_holding,
            "value_holding_support": c.row.value_holding_support,
            "value_holding_votes": parse_json(&c.row.value_holding_votes_json),
            "coder_records": extra.get("coder_records").cloned().unwrap_or(json!([])),
        })
    }
}

/// Write the consensus records of `layer` from `source` to `out` as JSONL. Returns the
/// number of lines written.
pub fn export_codes(
    store: &Store,
    layer: Layer,
    source: CodeSource,
    out: &Path,
) -> anyhow::Result<usize> {
    let rows = codes::consensus_rows(store.conn(), layer.as_str(), source.as_str())?;
    let write = |path: &Path| -> anyhow::Result<()> {
        let file =
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
        let mut w = std::io::BufWriter::new(file);
        for c in &rows {
            let line = match (&c.row.record_json, source) {
                (Some(orig), CodeSource::Published) => orig.clone(),
                _ => consensus_record(layer, c).to_string(),
            };
            writeln!(w, "{line}").with_context(|| format!("writing {}", out.display()))?;
        }
        w.flush()
            .with_context(|| format!("writing {}", out.display()))
    };
    // A regular file (or a new one) is written beside and renamed over, so an interrupted
    // or failed export leaves the earlier file whole. A symlink (/dev/stdout, a link into
    // another directory) or a pipe or device is written through as it is: renaming over
    // a link would replace the link, not write where it points.
    let special = std::fs::symlink_metadata(out).is_ok_and(|m| !m.is_file());
    if special {
        write(out)?;
        return Ok(rows.len());
    }
    let Some(tmp_name) = crate::outdir::temp_name(out) else {
        anyhow::bail!("{}: not a file name", out.display());
    };
    let tmp = out.with_file_name(tmp_name);
    let written = write(&tmp).and_then(|()| {
        std::fs::rename(&tmp, out)
            .with_context(|| format!("renaming {} to {}", tmp.display(), out.display()))
    });
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written?;
    Ok(rows.len())
}
