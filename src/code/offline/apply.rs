//! Applying the offline coder to a study store (`vuf code --offline`) and building the
//! cascade (`vuf code --cascade T`).
//!
//! Offline codes are stored like any coder's codes, under source `offline` and coder key
//! [`DEFAULT_CODER_KEY`], with the model file's hash as the "rubric" hash, so a retrained
//! model never mixes with codes of an older one. A single coder has no majority to take:
//! its consensus row is its own code with support 1 (documented in the analysis output,
//! where the support table then shows only 1s).
//!
//! The cascade keeps the offline code where its value-holding confidence is at least the
//! threshold and uses the coder models' consensus (source `models`) everywhere else; its
//! rows are stored under source `cascade` and say in `record_json` which path each took.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde_json::json;

use super::{OfflineCoder, OfflinePosture, DEFAULT_CODER_KEY, DEFAULT_MODEL_JSON};
use crate::store::codes::{self, NewCode, NewConsensus, SampleToCode};
use crate::store::{self, sha256_hex, Store};

/// Hash that keys offline codes: the coder key plus the model file's sha256 prefix.
pub fn model_tag() -> String {
    format!(
        "{DEFAULT_CODER_KEY}:{}",
        &sha256_hex(DEFAULT_MODEL_JSON.as_bytes())[..16]
    )
}

/// What `code_store` did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApplyReport {
    /// Samples coded now.
    pub coded: usize,
    /// Samples that already had offline codes from this model.
    pub already: usize,
    /// Of the samples coded now, those whose Layer A was not coded because their condition
    /// is not one of the six (a custom condition has no Layer A taxonomy,
    /// [`crate::code::layer_a_chain`]), per condition.
    pub layer_a_skipped: BTreeMap<String, usize>,
}

/// One coded sample.
struct Coded {
    posture: OfflinePosture,
    /// Layer A topics; `None` for a condition outside the six (not coded).
    topics: Option<Vec<&'static str>>,
}

/// Samples coded and committed together: an interrupted run loses at most one batch
/// (under a second of coding), and a rerun codes only what is missing.
pub const BATCH: usize = 2_000;

/// Code every valid sample lacking an offline code from this model, in parallel, and
/// store each sample's codes plus consensus, a batch per transaction.
pub fn code_store(store: &mut Store, coder: &OfflineCoder) -> Result<ApplyReport, store::Error> {
    let tag = model_tag();
    let done = coded_ids(store.conn(), &tag)?;
    let todo: Vec<SampleToCode> = codes::samples_to_code(store.conn())?
        .into_iter()
        .filter(|s| !done.contains(&s.id))
        .collect();
    let already = done.len();
    let mut layer_a_skipped: BTreeMap<String, usize> = BTreeMap::new();
    for s in &todo {
        if crate::code::layer_a_chain(&s.condition).is_none() {
            *layer_a_skipped.entry(s.condition.clone()).or_default() += 1;
        }
    }
    let now = store::now_utc();
    for batch in todo.chunks(BATCH) {
        let coded = code_parallel(coder, batch);
        store.transaction(|tx| {
            for (s, c) in batch.iter().zip(&coded) {
                write_codes(tx, s, c, &tag, &now)?;
            }
            Ok::<_, store::Error>(())
        })?;
    }
    Ok(ApplyReport {
        coded: todo.len(),
        already,
        layer_a_skipped,
    })
}

fn coded_ids(conn: &rusqlite::Connection, tag: &str) -> Result<HashSet<i64>, store::Error> {
    let mut stmt = conn.prepare(
        "SELECT sample_id FROM codes WHERE layer = 'b' AND source = 'offline' AND rubric_hash = ?1",
    )?;
    let ids = stmt.query_map([tag], |r| r.get::<_, i64>(0))?;
    Ok(ids.collect::<Result<_, _>>()?)
}

fn code_parallel(coder: &OfflineCoder, todo: &[SampleToCode]) -> Vec<Coded> {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .max(1);
    let chunk = todo.len().div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = todo
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .map(|s| Coded {
                            posture: coder.code_posture(&s.prompt, &s.response),
                            topics: crate::protocol::Condition::parse(&s.condition)
                                .map(|c| coder.code_topics(c, &s.prompt, &s.response)),
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    })
}

fn write_codes(
    tx: &rusqlite::Transaction,
    s: &SampleToCode,
    c: &Coded,
    tag: &str,
    now: &str,
) -> Result<(), store::Error> {
    let p = &c.posture;
    let topics: Option<Vec<String>> = c
        .topics
        .as_ref()
        .map(|t| t.iter().map(|t| t.to_string()).collect());
    let base = NewCode {
        sample_id: s.id,
        layer: "b".into(),
        coder: DEFAULT_CODER_KEY.into(),
        source: "offline".into(),
        rubric_hash: tag.into(),
        topics: None,
        parse_clean: None,
        label: Some(p.label.as_str().into()),
        original_label: None,
        value_holding: Some(p.value_holding.as_str().into()),
        secondary_texture: None,
        boundary_flag: None,
        notes: Some(format!("offline coder, confidence {:.3}", p.confidence)),
        confidence: Some(p.confidence),
        raw_text: None,
        raw_json: None,
        params_json: None,
        flags_json: None,
        origin: format!("offline:{tag}"),
        coded_at: now.into(),
    };
    codes::upsert_code(tx, &base)?;
    if let Some(topics) = &topics {
        codes::upsert_code(
            tx,
            &NewCode {
                layer: "a".into(),
                topics: Some(topics.clone()),
                parse_clean: Some(true),
                label: None,
                value_holding: None,
                notes: None,
                ..base.clone()
            },
        )?;
    }
    codes::upsert_consensus(
        tx,
        &posture_consensus(s.id, "offline", tag, p, json!({"path": "offline"})),
    )?;
    if let Some(topics) = &topics {
        codes::upsert_consensus(tx, &topic_consensus(s.id, "offline", tag, topics))?;
    }
    Ok(())
}

fn posture_consensus(
    id: i64,
    source: &str,
    tag: &str,
    p: &OfflinePosture,
    record: serde_json::Value,
) -> NewConsensus {
    let mut record = record;
    record["coder"] = json!(DEFAULT_CODER_KEY);
    record["confidence"] = json!(p.confidence);
    NewConsensus {
        sample_id: id,
        layer: "b".into(),
        source: source.into(),
        rubric_hash: tag.into(),
        label: Some(p.label.as_str().into()),
        label_support: Some(1),
        label_votes_json: Some(json!({ p.label.as_str(): 1 }).to_string()),
        value_holding: Some(p.value_holding.as_str().into()),
        value_holding_support: Some(1),
        value_holding_votes_json: Some(json!({ p.value_holding.as_str(): 1 }).to_string()),
        topics_json: None,
        has_disagreement: false,
        record_json: Some(record.to_string()),
    }
}

fn topic_consensus(id: i64, source: &str, tag: &str, topics: &[String]) -> NewConsensus {
    let list: Vec<_> = topics
        .iter()
        .map(|t| json!({"topic_key": t, "supporting_coders": [DEFAULT_CODER_KEY]}))
        .collect();
    NewConsensus {
        sample_id: id,
        layer: "a".into(),
        source: source.into(),
        rubric_hash: tag.into(),
        label: None,
        label_support: None,
        label_votes_json: None,
        value_holding: None,
        value_holding_support: None,
        value_holding_votes_json: None,
        topics_json: Some(serde_json::Value::Array(list).to_string()),
        has_disagreement: false,
        record_json: None,
    }
}

/// What `build_cascade` did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CascadeReport {
    /// Samples whose offline code was confident enough to keep.
    pub kept_offline: usize,
    /// Uncertain samples with a coder-model consensus, used instead.
    pub from_models: usize,
    /// Uncertain samples still waiting for coder-model codes (`pending` ids).
    pub pending: Vec<i64>,
    /// Coder-model codes (both layers, every coder) stored for the uncertain samples:
    /// the calls the cascade spent, not counting retries and re-asks.
    pub model_codes: usize,
}

/// Build (or rebuild) the `cascade` consensus rows at `threshold` from the offline codes
/// and the `models` consensus already in the store. Offline codes must exist
/// (`code_store` first). Returns the uncertain samples that still need model coding.
pub fn build_cascade(store: &mut Store, threshold: f64) -> Result<CascadeReport, store::Error> {
    let tag = model_tag();
    let offline: HashMap<i64, (String, String, f64)> = {
        let mut stmt = store.conn().prepare(
            "SELECT sample_id, label, value_holding, confidence FROM codes
             WHERE layer = 'b' AND source = 'offline' AND rubric_hash = ?1",
        )?;
        let rows = stmt.query_map([&tag], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                (
                    r.get(1)?,
                    r.get(2)?,
                    r.get::<_, Option<f64>>(3)?.unwrap_or(0.0),
                ),
            ))
        })?;
        rows.collect::<Result<_, _>>()?
    };
    let models_b: HashMap<i64, codes::StoredConsensus> =
        codes::consensus_rows(store.conn(), "b", "models")?
            .into_iter()
            .map(|c| (c.row.sample_id, c))
            .collect();
    // Layer A consensus per sample: topics, and the coders skipped by design (models only).
    let topics_a = |source: &str| -> Result<HashMap<i64, LayerA>, store::Error> {
        Ok(codes::consensus_rows(store.conn(), "a", source)?
            .into_iter()
            .map(|c| {
                (
                    c.row.sample_id,
                    (c.row.topics_json, skipped_by_design(&c.row.record_json)),
                )
            })
            .collect())
    };
    let models_a = topics_a("models")?;
    let offline_a = topics_a("offline")?;
    // Samples Layer A does not code (custom conditions): the cascade gives them a Layer B
    // row only, as the offline coder and the coder models do.
    let no_layer_a: HashSet<i64> = codes::samples_to_code(store.conn())?
        .into_iter()
        .filter(|s| crate::code::layer_a_chain(&s.condition).is_none())
        .map(|s| s.id)
        .collect();
    let mut report = CascadeReport::default();
    let mut rows = Vec::new();
    let mut ids: Vec<i64> = offline.keys().copied().collect();
    ids.sort_unstable();
    for id in ids {
        let (label, holding, conf) = &offline[&id];
        if *conf >= threshold {
            report.kept_offline += 1;
            let mut b = NewConsensus {
                sample_id: id,
                layer: "b".into(),
                source: "cascade".into(),
                rubric_hash: tag.clone(),
                label: Some(label.clone()),
                label_support: Some(1),
                label_votes_json: Some(json!({ label: 1 }).to_string()),
                value_holding: Some(holding.clone()),
                value_holding_support: Some(1),
                value_holding_votes_json: Some(json!({ holding: 1 }).to_string()),
                topics_json: None,
                has_disagreement: false,
                record_json: Some(
                    json!({"path": "offline", "confidence": conf, "threshold": threshold})
                        .to_string(),
                ),
            };
            rows.push(b.clone());
            if no_layer_a.contains(&id) {
                continue;
            }
            b.layer = "a".into();
            b.label = None;
            b.label_support = None;
            b.label_votes_json = None;
            b.value_holding = None;
            b.value_holding_support = None;
            b.value_holding_votes_json = None;
            b.topics_json = offline_a.get(&id).and_then(|(t, _)| t.clone());
            rows.push(b);
        } else if let Some(m) = models_b.get(&id) {
            report.from_models += 1;
            let mut b = m.row.clone();
            b.source = "cascade".into();
            let mut rec =
                json!({"path": "models", "offline_confidence": conf, "threshold": threshold});
            let base = rec.clone();
            if let Some(skipped) = skipped_by_design(&m.row.record_json) {
                rec["skipped_by_design"] = skipped;
            }
            b.record_json = Some(rec.to_string());
            rows.push(b.clone());
            if no_layer_a.contains(&id) {
                continue;
            }
            let mut a = b;
            // Layer A's own skips, not Layer B's.
            let mut rec_a = base;
            let from_models = models_a.get(&id);
            if let Some(skipped) = from_models.and_then(|(_, k)| k.clone()) {
                rec_a["skipped_by_design"] = skipped;
            }
            a.record_json = Some(rec_a.to_string());
            a.layer = "a".into();
            a.label = None;
            a.label_support = None;
            a.label_votes_json = None;
            a.value_holding = None;
            a.value_holding_support = None;
            a.value_holding_votes_json = None;
            a.topics_json = from_models
                .and_then(|(t, _)| t.clone())
                .or_else(|| offline_a.get(&id).and_then(|(t, _)| t.clone()));
            rows.push(a);
        } else {
            report.pending.push(id);
        }
    }
    let uncertain: HashSet<i64> = offline
        .iter()
        .filter(|(_, (_, _, conf))| *conf < threshold)
        .map(|(id, _)| *id)
        .collect();
    {
        let mut stmt = store
            .conn()
            .prepare("SELECT sample_id FROM codes WHERE source = 'models'")?;
        let ids = stmt.query_map([], |r| r.get::<_, i64>(0))?;
        for id in ids {
            report.model_codes += usize::from(uncertain.contains(&id?));
        }
    }
    store.transaction(|tx| {
        codes::delete_consensus(tx, "b", "cascade")?;
        codes::delete_consensus(tx, "a", "cascade")?;
        for r in &rows {
            codes::upsert_consensus(tx, r)?;
        }
        Ok::<_, store::Error>(())
    })?;
    Ok(report)
}

/// One sample's Layer A consensus as the cascade copies it: topics JSON, and the coders
/// skipped by design.
type LayerA = (Option<String>, Option<serde_json::Value>);

/// The `skipped_by_design` list of a computed consensus row's record, if any.
fn skipped_by_design(record_json: &Option<String>) -> Option<serde_json::Value> {
    record_json
        .as_deref()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(t).ok())
        .and_then(|v| v.get("skipped_by_design").cloned())
}
