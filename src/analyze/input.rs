//! Joins, exclusions and per-model metadata (PROTOCOL 7.1, 7.2).
//!
//! The store hands over rows that already carry their posture codes; what is left here is
//! the required-field check (anything failing goes to the exclusions table with its reason,
//! never silently), the alias map, the metadata join and the lab rule, all through
//! `protocol`. Per-model metadata is taken from the model's first row, as published.

use std::collections::{BTreeMap, HashMap};

use crate::protocol::lexicon::{ApostropheMode, LexicalHits};
use crate::protocol::{canonical_model, lab_for, CodedSample, ModelMeta, ValueHolding};

use super::lexscan::{curly_from, scan_fast};
use super::{AnalysisInput, Exclusion};

/// Reason logged for a row missing `condition`, `model`, `cell` or `layered_id`.
pub const REASON_MISSING_FIELD: &str = "missing required manifest field";

/// Everything the analysis knows about one canonical model.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelInfo {
    /// Canonical model key.
    pub model: String,
    /// Display name (metadata, else the model key).
    pub display_name: String,
    /// Lab after the frozen fallbacks and overrides.
    pub lab: String,
    /// Output `family`: metadata family, else manifest `model_family`.
    pub family: String,
    /// Metadata family only (tidy `website_family`; empty when absent).
    pub website_family: String,
    /// ISO release date or empty.
    pub release_date: String,
}

/// One analysed sample with its derived fields.
#[derive(Debug, Clone)]
pub(crate) struct Sample<'a> {
    pub c: &'a CodedSample,
    /// Index of `c` in `AnalysisInput::rows`.
    pub row: usize,
    /// Index into `Prepared::models`.
    pub model: usize,
    /// Index of the value-holding in `ValueHolding::ALL`.
    pub h: usize,
    /// Published-semantics lexical hits.
    pub lex: LexicalHits,
    /// Curly-normalised hits, when the variant is requested.
    pub lex_curly: Option<LexicalHits>,
}

pub(crate) struct Prepared<'a> {
    pub samples: Vec<Sample<'a>>,
    /// Sorted by model key.
    pub models: Vec<ModelInfo>,
    pub exclusions: Vec<Exclusion>,
}

/// Index of a holding in the published column order.
pub fn holding_index(h: ValueHolding) -> usize {
    ValueHolding::ALL.iter().position(|x| *x == h).unwrap_or(0)
}

pub(crate) fn prepare<'a>(input: &'a AnalysisInput, curly: bool) -> Prepared<'a> {
    let mut exclusions = input.exclusions.clone();
    let meta: HashMap<&str, &ModelMeta> = input
        .metadata
        .iter()
        .map(|m| (m.model.as_str(), m))
        .collect();
    let mut kept: Vec<&CodedSample> = Vec::with_capacity(input.rows.len());
    let mut kept_rows: Vec<usize> = Vec::with_capacity(input.rows.len());
    for (i, r) in input.rows.iter().enumerate() {
        if r.layered_id.is_empty() || r.source_model.is_empty() || r.cell.is_empty() {
            exclusions.push(Exclusion {
                layered_id: r.layered_id.clone(),
                reason: REASON_MISSING_FIELD.into(),
            });
        } else {
            kept.push(r);
            kept_rows.push(i);
        }
    }
    // Model info from each model's first row.
    let mut first: BTreeMap<String, &CodedSample> = BTreeMap::new();
    for r in &kept {
        first
            .entry(canonical_model(&r.source_model).to_string())
            .or_insert(r);
    }
    let mut models = Vec::with_capacity(first.len());
    let mut index: HashMap<String, usize> = HashMap::new();
    for (i, (model, row)) in first.iter().enumerate() {
        let m = meta.get(model.as_str());
        let nonempty = |s: &str| {
            if s.is_empty() {
                None
            } else {
                Some(s.to_string())
            }
        };
        let website_family = m.and_then(|m| nonempty(&m.family)).unwrap_or_default();
        models.push(ModelInfo {
            model: model.clone(),
            display_name: m
                .and_then(|m| nonempty(&m.display_name))
                .unwrap_or_else(|| model.clone()),
            lab: lab_for(model, m.map(|m| m.lab.as_str()), &row.model_family),
            family: if website_family.is_empty() {
                row.model_family.clone()
            } else {
                website_family.clone()
            },
            website_family,
            release_date: m.map(|m| m.release_date.clone()).unwrap_or_default(),
        });
        index.insert(model.clone(), i);
    }
    // The lexical scan dominates the run time; it is per sample, so it is split over the
    // available cores (results are identical to a sequential scan, order preserved).
    let scan_one = |c: &CodedSample| {
        let lex = scan_fast(&c.response, ApostropheMode::Published);
        let lex_curly = curly.then(|| curly_from(&c.response, &lex));
        (lex, lex_curly)
    };
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, 8);
    let chunk = kept.len().div_ceil(threads).max(1);
    let hits: Vec<(LexicalHits, Option<LexicalHits>)> = if threads == 1 || kept.len() < 2000 {
        kept.iter().map(|c| scan_one(c)).collect()
    } else {
        std::thread::scope(|scope| {
            let handles: Vec<_> = kept
                .chunks(chunk)
                .map(|part| {
                    scope.spawn(move || part.iter().map(|c| scan_one(c)).collect::<Vec<_>>())
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                .collect()
        })
    };
    let samples = kept
        .into_iter()
        .zip(kept_rows)
        .zip(hits)
        .map(|((c, row), (lex, lex_curly))| Sample {
            c,
            row,
            model: index
                .get(canonical_model(&c.source_model))
                .copied()
                .unwrap_or(0),
            h: holding_index(c.value_holding),
            lex,
            lex_curly,
        })
        .collect();
    Prepared {
        samples,
        models,
        exclusions,
    }
}
