//! The plain record that flows from the store into the analysis: one valid sample with
//! its consensus codes from one named code source. Kept here (not in `store` or
//! `analyze`) because both sides speak it and neither may depend on the other.

use super::{Condition, PostureLabel, ValueHolding};

/// Where a set of codes came from (issue: analysis `--source`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CodeSource {
    /// Consensus imported with `vuf import-codes` (the published codes).
    Published,
    /// vuf's own coder-model consensus.
    Models,
    /// The built-in offline coder.
    Offline,
    /// Offline coder where confident, coder models elsewhere.
    Cascade,
}

impl CodeSource {
    /// All sources, in the default preference order of `vuf analyze`
    /// (models, published, offline; the cascade instead of models when it codes more
    /// samples, and instead of offline when it codes as many, as after `vuf code --cascade`).
    pub const DEFAULT_PREFERENCE: [CodeSource; 3] = [
        CodeSource::Models,
        CodeSource::Published,
        CodeSource::Offline,
    ];

    /// Storage / CLI name.
    pub fn as_str(self) -> &'static str {
        match self {
            CodeSource::Published => "published",
            CodeSource::Models => "models",
            CodeSource::Offline => "offline",
            CodeSource::Cascade => "cascade",
        }
    }

    /// Parse a storage / CLI name.
    pub fn parse(s: &str) -> Option<CodeSource> {
        [
            CodeSource::Published,
            CodeSource::Models,
            CodeSource::Offline,
            CodeSource::Cascade,
        ]
        .into_iter()
        .find(|c| c.as_str() == s)
    }
}

/// One coder's Layer B vote on a sample (kept for reliability statistics and audit views).
#[derive(Debug, Clone, PartialEq)]
pub struct CoderVote {
    /// Coder key, e.g. `kimi-k2-6`.
    pub coder: String,
    /// The coder's collapsed label (`None` if its label was outside the six).
    pub label: Option<PostureLabel>,
    /// The coder's value-holding.
    pub value_holding: Option<ValueHolding>,
    /// The coder's one-sentence note.
    pub notes: String,
}

/// One analysed sample (a row of the published tidy table before metadata joins).
#[derive(Debug, Clone, PartialEq)]
pub struct CodedSample {
    /// Unique join key.
    pub layered_id: String,
    /// Source model (cell -> model rule) before aliasing, as in the manifest `model`.
    pub source_model: String,
    /// Manifest `model_family` (PROTOCOL 3).
    pub model_family: String,
    /// Cell label.
    pub cell: String,
    /// Sample id as recorded by the code source (may carry the phase-6 `.json` quirk).
    pub sample_id: String,
    /// Condition.
    pub condition: Condition,
    /// Exact prompt sent.
    pub prompt: String,
    /// Response text.
    pub response: String,
    /// Consensus value-holding.
    pub value_holding: ValueHolding,
    /// Votes for the winning value-holding (1..=3).
    pub value_holding_support: u8,
    /// Consensus collapsed label as recorded (kept as text: published files may hold anything).
    pub collapsed_primary_label: String,
    /// Votes for the winning label.
    pub collapsed_primary_label_support: u8,
    /// Layer A consensus topic keys, `None` when the sample has no Layer A record.
    pub topics: Option<Vec<String>>,
    /// Per-coder Layer B votes, in the fixed coder order, when known.
    pub coder_votes: Vec<CoderVote>,
    /// Layer B coders not asked by design (sequential majority): missing votes that are
    /// missing because the coders asked agreed, not at random.
    pub skipped_coders: Vec<String>,
    /// Confidence of the code (offline coder only).
    pub confidence: Option<f64>,
}

/// A valid sample of a custom condition (`[[design.custom]]`), as the analysis reports it
/// beside the frozen analysis, which covers the six conditions only (PROTOCOL 7): it is
/// listed in `exclusions.csv` and counted in `custom_conditions.csv`, never pooled with
/// the six.
#[derive(Debug, Clone, PartialEq)]
pub struct CustomSample {
    /// Join key.
    pub layered_id: String,
    /// Source model (cell -> model rule) before aliasing.
    pub source_model: String,
    /// Cell label.
    pub cell: String,
    /// The custom condition's id.
    pub condition: String,
    /// Exact prompt sent.
    pub prompt: String,
    /// Consensus value-holding of the code source, `None` when it has not coded the sample.
    pub value_holding: Option<ValueHolding>,
}
