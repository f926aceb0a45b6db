//! Typed view of the analysis tables that every output format reads.
//!
//! Built once per report from [`ReportInput`]: per-model rates by family and by condition
//! (from `model_disclosure_summary.csv` and `model_question_owned_disclosure.csv`), the
//! intervals the analysis wrote (any `*interval*` table, or `owned_ci_low`/`owned_ci_high`
//! columns on the rate rows), headline model means, label counts, and deterministic example
//! and disagreement picks from `samples.jsonl`. The only arithmetic here is a mean or a
//! count over rows of a named CSV, so every number still traces to CSV rows.

use std::collections::BTreeMap;

use super::{escape, ReportInput, Row, Sample};

/// The three condition families: (key, conditions, human label).
pub const FAMILIES: [(&str, &str, &str); 3] = [
    (
        "direct_stated_values",
        "CTRL1+CTRL2",
        "Direct stated values (CTRL1/2)",
    ),
    (
        "cache_broken_stated_values",
        "G1+G2",
        "Cache-broken stated values (G1/2)",
    ),
    (
        "world_change_prompts",
        "CTRL3+G3",
        "World-change prompts (CTRL3/G3)",
    ),
];

/// The six conditions in report order.
pub const CONDITIONS: [&str; 6] = ["CTRL1", "CTRL2", "G1", "G2", "CTRL3", "G3"];

/// The five value-holding categories in report order.
pub const POSTURES: [&str; 5] = [
    "owned",
    "relocated_or_partial",
    "recited_not_owned",
    "indeterminate",
    "uncodeable",
];

/// Rates of one model for one condition or family (percent, 0-100).
#[derive(Debug, Clone, Default)]
pub struct Rates {
    /// `owned_rate` etc. in [`POSTURES`] order; `None` when NaN or absent.
    pub rates: [Option<f64>; 5],
    /// `n_valid`.
    pub n_valid: Option<f64>,
    /// `eligible_cells`.
    pub eligible_cells: Option<f64>,
    /// `excluded_small_cells`.
    pub excluded_small_cells: Option<f64>,
    /// Descriptive label (§7.7).
    pub label: String,
    /// Owned-rate interval (percent) and the table it came from.
    pub owned_ci: Option<(f64, f64, String)>,
}

impl Rates {
    fn from_row(r: &Row<'_>) -> Self {
        let mut rates = [None; 5];
        for (i, p) in POSTURES.iter().enumerate() {
            rates[i] = r.num(&format!("{p}_rate"));
        }
        let own_ci = match (r.num("owned_ci_low"), r.num("owned_ci_high")) {
            (Some(l), Some(h)) => Some((l, h, "Wilson (analysis)".to_string())),
            _ => None,
        };
        Rates {
            rates,
            n_valid: r.num("n_valid"),
            eligible_cells: r.num("eligible_cells"),
            excluded_small_cells: r.num("excluded_small_cells"),
            label: r.get("label").to_string(),
            owned_ci: own_ci,
        }
    }

    /// Owned rate.
    pub fn owned(&self) -> Option<f64> {
        self.rates[0]
    }
}

/// One model's rows.
#[derive(Debug, Clone, Default)]
pub struct ModelView {
    /// Canonical model key.
    pub model: String,
    /// Display name.
    pub display_name: String,
    /// Lab.
    pub lab: String,
    /// Model family.
    pub family: String,
    /// Release date (`YYYY-MM-DD` or empty).
    pub release_date: String,
    /// Rates by condition family key.
    pub families: BTreeMap<String, Rates>,
    /// Rates by condition.
    pub conditions: BTreeMap<String, Rates>,
    /// Fragment id for the model's page: `m<index>-<slug>`, closed alphabet.
    pub anchor: String,
    /// Cells seen in `samples.jsonl` with their sample counts.
    pub cells: Vec<(String, usize)>,
}

impl ModelView {
    /// Rates of a family, when present.
    pub fn fam(&self, key: &str) -> Option<&Rates> {
        self.families.get(key)
    }
}

/// A corpus-level headline: unweighted mean over models of a family's owned rate.
#[derive(Debug, Clone)]
pub struct Headline {
    /// Family key.
    pub family: &'static str,
    /// Human label.
    pub label: &'static str,
    /// Mean of `owned_rate` over the family's rows with `eligible_cells > 0`.
    pub mean_owned: Option<f64>,
    /// Number of models in the mean.
    pub n_models: usize,
    /// Interval from an analysis interval table, with its table name.
    pub ci: Option<(f64, f64, String)>,
}

/// Everything derived from the input, shared by every output format.
#[derive(Debug)]
pub struct Study<'a> {
    /// The raw input.
    pub input: &'a ReportInput,
    /// Models in alphabetical order of key.
    pub models: Vec<ModelView>,
    /// The three family headlines.
    pub headline: Vec<Headline>,
    /// G1+G2 label counts (`model_disclosure_summary.csv`, family cache-broken).
    pub g1g2_labels: BTreeMap<String, usize>,
    /// Code source from provenance, or from the samples' `source`, else "unknown".
    pub source: String,
    /// Sample indices per model, sorted by `layered_id`.
    pub samples_by_model: BTreeMap<String, Vec<usize>>,
}

impl<'a> Study<'a> {
    /// Build the view.
    pub fn build(input: &'a ReportInput) -> Self {
        let mut models: BTreeMap<String, ModelView> = BTreeMap::new();
        let ensure = |r: &Row<'_>, models: &mut BTreeMap<String, ModelView>| {
            let key = r.get("model").to_string();
            models.entry(key.clone()).or_insert_with(|| ModelView {
                model: key,
                display_name: r.get("display_name").to_string(),
                lab: r.get("lab").to_string(),
                family: r.get("family").to_string(),
                release_date: r.get("release_date").to_string(),
                ..ModelView::default()
            });
        };
        if let Some(t) = input.tables.get("model_disclosure_summary") {
            for r in t.iter() {
                ensure(&r, &mut models);
                let m = models.get_mut(r.get("model")).expect("inserted above");
                m.families
                    .insert(r.get("condition_family").to_string(), Rates::from_row(&r));
            }
        }
        if let Some(t) = input.tables.get("model_question_owned_disclosure") {
            for r in t.iter() {
                ensure(&r, &mut models);
                let m = models.get_mut(r.get("model")).expect("inserted above");
                m.conditions
                    .insert(r.get("condition").to_string(), Rates::from_row(&r));
            }
        }
        // Intervals from vuf's extra tables.
        for (name, t) in &input.tables {
            if !name.contains("interval") || t.col("model").is_none() {
                continue;
            }
            for r in t.iter() {
                if !is_owned_measure(&r) {
                    continue;
                }
                let Some((lo, hi)) = ci_of(&r) else { continue };
                let Some(m) = models.get_mut(r.get("model")) else {
                    continue;
                };
                let unit = unit_of(&r);
                let target = if m.families.contains_key(unit) {
                    m.families.get_mut(unit)
                } else {
                    m.conditions.get_mut(unit)
                };
                if let Some(rates) = target {
                    if rates.owned_ci.is_none() {
                        rates.owned_ci = Some((lo, hi, name.clone()));
                    }
                }
            }
        }
        let mut samples_by_model: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for (i, s) in input.samples.iter().enumerate() {
            samples_by_model.entry(s.model.clone()).or_default().push(i);
        }
        for v in samples_by_model.values_mut() {
            v.sort_by(|a, b| {
                input.samples[*a]
                    .layered_id
                    .cmp(&input.samples[*b].layered_id)
            });
        }
        let mut models: Vec<ModelView> = models.into_values().collect();
        for (i, m) in models.iter_mut().enumerate() {
            m.anchor = format!("m{}-{}", i + 1, escape::slug(&m.model));
            let mut cells: BTreeMap<String, usize> = BTreeMap::new();
            for &si in samples_by_model
                .get(&m.model)
                .map(|v| v.as_slice())
                .unwrap_or(&[])
            {
                *cells.entry(input.samples[si].cell.clone()).or_default() += 1;
            }
            m.cells = cells.into_iter().collect();
        }
        let headline = FAMILIES
            .iter()
            .map(|(key, _, label)| {
                let vals: Vec<f64> = models
                    .iter()
                    .filter_map(|m| m.fam(key))
                    .filter(|r| r.eligible_cells.unwrap_or(0.0) > 0.0)
                    .filter_map(|r| r.owned())
                    .collect();
                let mean = if vals.is_empty() {
                    None
                } else {
                    Some(vals.iter().sum::<f64>() / vals.len() as f64)
                };
                Headline {
                    family: key,
                    label,
                    mean_owned: mean,
                    n_models: vals.len(),
                    ci: headline_ci(input, key),
                }
            })
            .collect();
        let mut g1g2_labels = BTreeMap::new();
        for m in &models {
            if let Some(r) = m.fam("cache_broken_stated_values") {
                *g1g2_labels.entry(r.label.clone()).or_insert(0) += 1;
            }
        }
        let source = input
            .provenance
            .as_ref()
            .map(|p| p.source.clone())
            .filter(|s| !s.is_empty())
            .or_else(|| {
                let mut srcs: Vec<&str> = input.samples.iter().map(|s| s.source.as_str()).collect();
                srcs.sort_unstable();
                srcs.dedup();
                srcs.retain(|s| !s.is_empty());
                (!srcs.is_empty()).then(|| srcs.join("+"))
            })
            .unwrap_or_else(|| "unknown".to_string());
        Study {
            input,
            models,
            headline,
            g1g2_labels,
            source,
            samples_by_model,
        }
    }

    /// Up to `k` example samples per posture for a model: the first by `layered_id`.
    pub fn examples(&self, model: &str, k: usize) -> Vec<(&'static str, Vec<&'a Sample>)> {
        let idx = self
            .samples_by_model
            .get(model)
            .map(|v| v.as_slice())
            .unwrap_or(&[]);
        POSTURES
            .iter()
            .map(|p| {
                let picked = idx
                    .iter()
                    .map(|&i| &self.input.samples[i])
                    .filter(|s| s.value_holding == *p)
                    .take(k)
                    .collect();
                (*p, picked)
            })
            .collect()
    }

    /// All samples whose coders split, ordered by support (lowest first), then model,
    /// then `layered_id`.
    pub fn disagreements(&self) -> Vec<&'a Sample> {
        let mut v: Vec<&Sample> = self
            .input
            .samples
            .iter()
            .filter(|s| s.coders_split())
            .collect();
        v.sort_by(|a, b| {
            a.value_holding_support
                .unwrap_or(0)
                .cmp(&b.value_holding_support.unwrap_or(0))
                .then_with(|| a.model.cmp(&b.model))
                .then_with(|| a.layered_id.cmp(&b.layered_id))
        });
        v
    }

    /// Whether the code source is the offline coder (always marked in every output).
    pub fn is_offline(&self) -> bool {
        self.source.contains("offline")
    }

    /// A human description of the code source.
    pub fn source_description(&self) -> String {
        let what = match self.source.as_str() {
            "published" => "published consensus codes (the paper's three-coder majority vote)",
            "models" => "model-coder consensus computed by vuf (three coder models, majority vote)",
            "offline" => "OFFLINE CODER: codes from vuf's offline classifier, not from coder models",
            "cascade" => "cascade: offline coder first, coder models where it was unsure (codes partly OFFLINE)",
            _ => "unknown code source",
        };
        format!("{} — {}", self.source, what)
    }
}

fn unit_of<'r>(r: &Row<'r>) -> &'r str {
    for c in ["condition_family", "condition", "family", "unit", "group"] {
        let v = r.get(c);
        if !v.is_empty() {
            return v;
        }
    }
    ""
}

fn is_owned_measure(r: &Row<'_>) -> bool {
    for c in [
        "measure",
        "outcome",
        "statistic",
        "rate",
        "metric",
        "value_holding",
    ] {
        let v = r.get(c);
        if !v.is_empty() && v.parse::<f64>().is_err() {
            return v == "owned" || v == "owned_rate";
        }
    }
    true
}

fn ci_of(r: &Row<'_>) -> Option<(f64, f64)> {
    for (lo, hi) in [
        ("owned_ci_low", "owned_ci_high"),
        ("owned_rate_ci_low", "owned_rate_ci_high"),
        ("ci_low", "ci_high"),
        ("wilson_low", "wilson_high"),
        ("low", "high"),
        ("lower", "upper"),
    ] {
        if let (Some(l), Some(h)) = (r.num(lo), r.num(hi)) {
            return Some((l, h));
        }
    }
    None
}

fn headline_ci(input: &ReportInput, family: &str) -> Option<(f64, f64, String)> {
    for (name, t) in &input.tables {
        if !(name.contains("interval") || name.contains("headline")) {
            continue;
        }
        for r in t.iter() {
            let model = r.get("model");
            let corpus = t.col("model").is_none()
                || matches!(model, "" | "all" | "__all__" | "corpus" | "*" | "ALL");
            if corpus && unit_of(&r) == family && is_owned_measure(&r) {
                if let Some((l, h)) = ci_of(&r) {
                    return Some((l, h, name.clone()));
                }
            }
        }
    }
    None
}
