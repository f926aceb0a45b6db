//! `vuf disagreements`: samples where the coders split, with each coder's vote and note,
//! for a researcher to inspect. Filterable by model, condition and label.

use super::Layer;
use crate::protocol::CodeSource;
use crate::store::codes;
use crate::store::Store;

/// Filters (all optional; a label matches the consensus label or any coder's label).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Source model (cell's model).
    pub model: Option<String>,
    /// Condition label.
    pub condition: Option<String>,
    /// Posture label (Layer B) or topic key (Layer A).
    pub label: Option<String>,
}

/// One coder's vote on a disputed sample.
#[derive(Debug, Clone, PartialEq)]
pub struct CoderLine {
    /// Coder.
    pub coder: String,
    /// Code source of the vote.
    pub source: String,
    /// Layer B label, or Layer A topics joined by spaces.
    pub vote: String,
    /// Notes (Layer B) or reply text (Layer A).
    pub notes: String,
}

/// A disputed sample.
#[derive(Debug, Clone, PartialEq)]
pub struct Disagreement {
    /// Sample.
    pub layered_id: String,
    /// Source model.
    pub model: String,
    /// Condition.
    pub condition: String,
    /// Consensus label (B) or topics (A).
    pub consensus: String,
    /// Support of the consensus label (B).
    pub support: Option<i64>,
    /// The coders' votes.
    pub coders: Vec<CoderLine>,
}

/// Disputed samples of a layer in a consensus source, in sample order.
pub fn disagreements(
    store: &Store,
    layer: Layer,
    source: CodeSource,
    f: &Filter,
) -> anyhow::Result<Vec<Disagreement>> {
    let rows = codes::consensus_rows(store.conn(), layer.as_str(), source.as_str())?;
    let mut out = Vec::new();
    for c in rows.into_iter().filter(|c| c.row.has_disagreement) {
        if f.model.as_ref().is_some_and(|m| *m != c.source_model)
            || f.condition.as_ref().is_some_and(|x| *x != c.condition)
        {
            continue;
        }
        let consensus = match layer {
            Layer::B => c.row.label.clone().unwrap_or_default(),
            Layer::A => {
                let t: Vec<serde_json::Value> = c
                    .row
                    .topics_json
                    .as_deref()
                    .and_then(|t| serde_json::from_str(t).ok())
                    .unwrap_or_default();
                t.iter()
                    .filter_map(|x| x["topic_key"].as_str())
                    .collect::<Vec<_>>()
                    .join(" ")
            }
        };
        let mut coders: Vec<CoderLine> =
            codes::codes_of_sample(store.conn(), c.row.sample_id, layer.as_str())?
                .into_iter()
                .filter(|k| k.source != "offline")
                .map(|k| CoderLine {
                    vote: match layer {
                        Layer::B => k.label.clone().unwrap_or_default(),
                        Layer::A => k.topics.clone().unwrap_or_default().join(" "),
                    },
                    notes: match layer {
                        Layer::B => k.notes.clone().unwrap_or_default(),
                        Layer::A => k.raw_text.clone().unwrap_or_default(),
                    },
                    coder: k.coder,
                    source: k.source,
                })
                .collect();
        coders.sort_by_key(|k| super::coder_rank(&k.coder, &[]));
        if let Some(l) = &f.label {
            let hit = consensus.split(' ').any(|x| x == l)
                || coders.iter().any(|k| k.vote.split(' ').any(|x| x == l));
            if !hit {
                continue;
            }
        }
        out.push(Disagreement {
            layered_id: c
                .layered_id
                .clone()
                .unwrap_or_else(|| format!("{}_{}_{}", c.cell, c.condition, c.idx)),
            model: c.source_model,
            condition: c.condition,
            consensus,
            support: c.row.label_support,
            coders,
        });
    }
    Ok(out)
}

/// The samples [`disagreements`] cannot show: those whose consensus was settled by
/// sequential majority, with a coder skipped by design because the coders asked agreed
/// (the consensus row's `skipped_by_design`). Their `has_disagreement` is false, as the
/// votes cast agree; whether a coder not asked would have split is unknown. Counts the
/// samples passing the model and condition filters (and, for a label filter, whose
/// consensus has that label or topic: the coders asked agreed on it), and names the coders
/// not asked.
pub fn settled_with_skips(
    store: &Store,
    layer: Layer,
    source: CodeSource,
    f: &Filter,
) -> anyhow::Result<(usize, Vec<String>)> {
    let rows = codes::consensus_rows(store.conn(), layer.as_str(), source.as_str())?;
    let mut n = 0;
    let mut coders: Vec<String> = Vec::new();
    for c in rows {
        let skipped: Vec<String> = c
            .row
            .record_json
            .as_deref()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(t).ok())
            .and_then(|v| {
                v.get("skipped_by_design").and_then(|s| {
                    s.as_array().map(|a| {
                        a.iter()
                            .filter_map(|x| x.as_str().map(str::to_string))
                            .collect()
                    })
                })
            })
            .unwrap_or_default();
        if skipped.is_empty()
            || f.model.as_ref().is_some_and(|m| *m != c.source_model)
            || f.condition.as_ref().is_some_and(|x| *x != c.condition)
        {
            continue;
        }
        if let Some(l) = &f.label {
            let hit = match layer {
                Layer::B => c.row.label.as_deref() == Some(l.as_str()),
                Layer::A => c
                    .row
                    .topics_json
                    .as_deref()
                    .and_then(|t| serde_json::from_str::<Vec<serde_json::Value>>(t).ok())
                    .is_some_and(|t| t.iter().any(|x| x["topic_key"].as_str() == Some(l))),
            };
            if !hit {
                continue;
            }
        }
        n += 1;
        for k in skipped {
            if !coders.contains(&k) {
                coders.push(k);
            }
        }
    }
    coders.sort_by_key(|k| super::coder_rank(k, &[]));
    Ok((n, coders))
}
