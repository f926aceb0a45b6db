//! `vuf consensus`: recompute consensus from the per-coder codes in the store.
//!
//! Consensus source names: `published` rows are consensus records imported as they were
//! published; `models` rows are what vuf computes here from per-coder codes, whether
//! those were coded live by vuf (code source `models`) or imported from published
//! per-coder files (code source `published`). When both exist for one coder and sample,
//! the live code wins. Each computed row records the rubric hash(es) of its votes, so
//! mixing rubric versions is visible (`+`-joined hashes) and reported.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use super::consensus::{self, PostureVote, TopicVote};
use super::Layer;
use crate::store::codes::{self, NewConsensus, StoredCode};
use crate::store::Store;

/// Per-coder code sources considered, in order of preference.
pub const VOTE_SOURCES: [&str; 2] = ["models", "published"];

/// What a recompute did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecomputeReport {
    /// Samples with a consensus row written.
    pub samples: usize,
    /// Samples whose coders disagreed.
    pub disagreements: usize,
    /// Layer B samples without a majority (support 1).
    pub no_majority: usize,
    /// Samples whose votes come from more than one rubric version.
    pub mixed_rubrics: usize,
    /// Distinct vote counts per sample -> number of samples (e.g. 3 -> 2640).
    pub coders_per_sample: BTreeMap<usize, usize>,
    /// Samples with a coder skipped by design (sequential majority): fewer votes, same
    /// consensus; the skipped coders are listed in the row's `skipped_by_design`.
    pub skipped_by_design: usize,
}

fn votes_map(v: &[(String, u32)]) -> Value {
    let mut m = Map::new();
    for (k, n) in v {
        m.insert(k.clone(), json!(n));
    }
    Value::Object(m)
}

fn rubric_of(codes: &[&StoredCode]) -> String {
    let mut hs: Vec<&str> = codes.iter().map(|c| c.rubric_hash.as_str()).collect();
    hs.sort();
    hs.dedup();
    hs.join("+")
}

/// Group codes by sample, keeping the first (preferred) code per coder.
fn by_sample(rows: Vec<StoredCode>) -> BTreeMap<i64, Vec<StoredCode>> {
    let mut out: BTreeMap<i64, Vec<StoredCode>> = BTreeMap::new();
    for c in rows {
        let e = out.entry(c.sample_id).or_default();
        if !e.iter().any(|x| x.coder == c.coder) {
            e.push(c);
        }
    }
    out
}

/// The Layer A votes of one sample's stored codes.
pub(crate) fn topic_votes<'a>(codes: impl IntoIterator<Item = &'a StoredCode>) -> Vec<TopicVote> {
    codes
        .into_iter()
        .map(|c| TopicVote {
            coder: c.coder.clone(),
            topics: c.topics.clone().unwrap_or_default(),
        })
        .collect()
}

/// The Layer B votes of one sample's stored codes (codes without a label do not vote).
pub(crate) fn posture_votes<'a>(
    codes: impl IntoIterator<Item = &'a StoredCode>,
) -> Vec<PostureVote> {
    codes
        .into_iter()
        .filter_map(|c| {
            c.label.clone().map(|label| PostureVote {
                coder: c.coder.clone(),
                label,
                value_holding: c.value_holding.clone(),
            })
        })
        .collect()
}

/// Recompute the `models` consensus of one layer from per-coder codes (replacing the
/// previous `models` rows of that layer).
pub fn recompute(store: &mut Store, layer: Layer) -> anyhow::Result<RecomputeReport> {
    let rows = codes::codes_for_consensus(store.conn(), layer.as_str(), &VOTE_SOURCES)?;
    let groups = by_sample(rows);
    let skips = codes::skipped_coders(store.conn(), layer.as_str())?;
    let mut rep = RecomputeReport::default();
    store.transaction(|tx| -> anyhow::Result<()> {
        codes::delete_consensus(tx, layer.as_str(), "models")?;
        for (sample_id, group) in &groups {
            let refs: Vec<&StoredCode> = group.iter().collect();
            let rubric_hash = rubric_of(&refs);
            if rubric_hash.contains('+') {
                rep.mixed_rubrics += 1;
            }
            *rep.coders_per_sample.entry(group.len()).or_default() += 1;
            // A skip is superseded by a code that arrived later for the same coder.
            let skipped: Vec<&String> = skips
                .get(sample_id)
                .map(|v| v.iter().filter(|k| !group.iter().any(|c| &c.coder == *k)).collect())
                .unwrap_or_default();
            if !skipped.is_empty() {
                rep.skipped_by_design += 1;
            }
            let mut row = match layer {
                Layer::A => {
                    let votes = topic_votes(group);
                    let cons = consensus::topics(&votes);
                    let topics: Vec<Value> = cons
                        .topics
                        .iter()
                        .map(|t| json!({"topic_key": t.topic_key, "supporting_coders": t.supporting_coders}))
                        .collect();
                    NewConsensus {
                        sample_id: *sample_id,
                        layer: "a".into(),
                        source: "models".into(),
                        rubric_hash,
                        topics_json: Some(Value::Array(topics).to_string()),
                        has_disagreement: cons.has_disagreement,
                        record_json: Some(json!({ "eligible_coders": cons.eligible_coders }).to_string()),
                        ..Default::default()
                    }
                }
                Layer::B => {
                    let votes = posture_votes(group);
                    let Some(cons) = consensus::posture(&votes) else {
                        continue;
                    };
                    if cons.label_support == 1 && cons.coders.len() > 1 {
                        rep.no_majority += 1;
                    }
                    let mut ordered: Vec<&StoredCode> = group.iter().collect();
                    ordered.sort_by_key(|c| super::coder_rank(&c.coder, &[]));
                    let coder_records: Vec<Value> = ordered
                        .iter()
                        .map(|c| {
                            json!({
                                "coder_key": c.coder,
                                "primary_label": c.label,
                                "value_holding": c.value_holding,
                                "secondary_texture": c.secondary_texture,
                                "boundary_flag": c.boundary_flag.unwrap_or(false),
                                "notes": c.notes.clone().unwrap_or_default(),
                            })
                        })
                        .collect();
                    NewConsensus {
                        sample_id: *sample_id,
                        layer: "b".into(),
                        source: "models".into(),
                        rubric_hash,
                        label: Some(cons.label.as_str().to_string()),
                        label_support: Some(cons.label_support as i64),
                        label_votes_json: Some(votes_map(&cons.label_votes).to_string()),
                        value_holding: Some(cons.value_holding.as_str().to_string()),
                        value_holding_support: Some(cons.value_holding_support as i64),
                        value_holding_votes_json: Some(votes_map(&cons.value_holding_votes).to_string()),
                        topics_json: None,
                        has_disagreement: cons.label_disagreement(),
                        record_json: Some(json!({ "coder_records": coder_records }).to_string()),
                    }
                }
            };
            if !skipped.is_empty() {
                let mut rec: Value = row
                    .record_json
                    .as_deref()
                    .and_then(|t| serde_json::from_str(t).ok())
                    .unwrap_or_else(|| json!({}));
                rec["skipped_by_design"] = json!(skipped);
                row.record_json = Some(rec.to_string());
            }
            if row.has_disagreement {
                rep.disagreements += 1;
            }
            codes::upsert_consensus(tx, &row)?;
            rep.samples += 1;
        }
        Ok(())
    })?;
    Ok(rep)
}
