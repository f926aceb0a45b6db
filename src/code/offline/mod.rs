//! The built-in offline coder: a deterministic, key-free, network-free imitation of the
//! three-model consensus for Layer B (six collapsed posture labels, hence value_holding)
//! and Layer A (topics of the chain's taxonomy), with a confidence per decision so a
//! cascade can send only uncertain responses to the coder models.
//!
//! Shape: `data` loads the published labelled phases; `features` turns (prompt, response)
//! into hashed n-grams plus rubric cues; `model` is a plain linear learner and its compact
//! file form; `train` produces the versioned file shipped in `coders/`; `topics` is the
//! Layer A coder; `eval` does leave-one-model-out evaluation and the coder-model baselines;
//! `cascade` simulates the cascade; `corpus` is the corpus-level sanity check. It must not know SQL, providers or report formats:
//! the store and CLI call [`OfflineCoder`]. Method and measured quality:
//! `docs/offline-coder.md`.

pub mod apply;
pub mod cascade;
pub mod corpus;
pub mod data;
pub mod eval;
pub mod features;
pub mod model;
pub mod topics;
pub mod train;

use crate::protocol::{Chain, Condition, PostureLabel, ValueHolding};

use features::{extract, FeatureConfig, SparseVec};
use model::Linear;
pub use topics::OfflineTopics;
use topics::TopicCoder;
use train::ModelFile;

/// The shipped model file (`coders/offline-v2.json`), produced by `vuf coder train`.
pub const DEFAULT_MODEL_JSON: &str = include_str!("../../../coders/offline-v2.json");
/// Name under which offline codes are marked (coder key in stores and reports).
pub const DEFAULT_CODER_KEY: &str = "offline-v2";

/// A Layer B decision.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OfflinePosture {
    /// Collapsed label (the most probable label inside the chosen value_holding).
    pub label: PostureLabel,
    /// `label.value_holding()`.
    pub value_holding: ValueHolding,
    /// Probability of `value_holding` (sum over its labels): what the cascade thresholds.
    pub confidence: f64,
    /// Probability of `label` itself.
    pub label_confidence: f64,
}

/// Error loading a model file.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// Not JSON of the expected shape.
    #[error("model file: {0}")]
    Json(#[from] serde_json::Error),
    /// JSON fine, content wrong.
    #[error("model file: {0}")]
    Invalid(String),
}

/// The loaded offline coder. Pure and `Sync`: share one across threads.
#[derive(Debug, Clone)]
pub struct OfflineCoder {
    posture_features: FeatureConfig,
    labels: Vec<PostureLabel>,
    posture: Linear,
    stated: TopicCoder,
    wish: TopicCoder,
}

impl OfflineCoder {
    /// The coder shipped with this build.
    pub fn load_default() -> Result<Self, ModelError> {
        Self::from_json(DEFAULT_MODEL_JSON)
    }

    /// Load a model file's text.
    pub fn from_json(text: &str) -> Result<Self, ModelError> {
        let f: ModelFile = serde_json::from_str(text)?;
        Self::from_file(&f)
    }

    /// Build from a parsed model file, checking format, version, labels and shapes.
    pub fn from_file(f: &ModelFile) -> Result<Self, ModelError> {
        if f.format != train::FORMAT || !(1..=train::VERSION).contains(&f.version) {
            return Err(ModelError::Invalid(format!(
                "unsupported format {} v{} (expected {} v1 to v{})",
                f.format,
                f.version,
                train::FORMAT,
                train::VERSION
            )));
        }
        let labels = f
            .posture
            .labels
            .iter()
            .map(|l| {
                PostureLabel::parse(l)
                    .ok_or_else(|| ModelError::Invalid(format!("unknown posture label `{l}`")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let posture = f
            .posture
            .linear
            .to_linear()
            .map_err(|e| ModelError::Invalid(format!("posture: {e}")))?;
        if posture.n_out != labels.len() || posture.dim != f.posture.features.dim() {
            return Err(ModelError::Invalid(
                "posture weights do not match labels/features".into(),
            ));
        }
        Ok(OfflineCoder {
            posture_features: f.posture.features.clone(),
            labels,
            posture,
            stated: TopicCoder::from_file(&f.topics_stated, Chain::StatedValues)
                .map_err(|e| ModelError::Invalid(format!("topics_stated: {e}")))?,
            wish: TopicCoder::from_file(&f.topics_wish, Chain::WorldChangeWishes)
                .map_err(|e| ModelError::Invalid(format!("topics_wish: {e}")))?,
        })
    }

    /// Layer B code of one response. The prompt is used (as the coder models saw it);
    /// the condition label is not.
    pub fn code_posture(&self, prompt: &str, response: &str) -> OfflinePosture {
        self.posture_from_features(&extract(&self.posture_features, prompt, response))
    }

    /// Label probabilities in [`PostureLabel::ALL`] order.
    pub fn posture_probabilities(&self, prompt: &str, response: &str) -> [f64; 6] {
        self.probs(&extract(&self.posture_features, prompt, response))
    }

    fn probs(&self, x: &SparseVec) -> [f64; 6] {
        let p = self.posture.softmax(x);
        let mut out = [0.0; 6];
        for (l, p) in self.labels.iter().zip(p) {
            if let Some(ix) = PostureLabel::ALL.iter().position(|a| a == l) {
                out[ix] += p;
            }
        }
        out
    }

    /// Decision rule: pick the value_holding with the largest total probability (the
    /// analysis is about value_holding), then the most probable label inside it. Ties go
    /// to the earlier item of `ValueHolding::ALL` / `PostureLabel::ALL`.
    pub(crate) fn posture_from_features(&self, x: &SparseVec) -> OfflinePosture {
        decide(&self.probs(x))
    }

    /// Layer A topics of one response, over `condition`'s chain taxonomy.
    pub fn code_topics(
        &self,
        condition: Condition,
        prompt: &str,
        response: &str,
    ) -> Vec<&'static str> {
        self.code_topics_scored(condition, prompt, response).topics
    }

    /// Layer A topics with their confidence.
    pub fn code_topics_scored(
        &self,
        condition: Condition,
        prompt: &str,
        response: &str,
    ) -> OfflineTopics {
        let c = self.topic_coder(condition.chain());
        c.code_features(&c.features(prompt, response))
    }

    pub(crate) fn topic_coder(&self, chain: Chain) -> &TopicCoder {
        match chain {
            Chain::StatedValues => &self.stated,
            Chain::WorldChangeWishes => &self.wish,
        }
    }
}

/// The decision rule of [`OfflineCoder::code_posture`] on label probabilities.
pub fn decide(p: &[f64; 6]) -> OfflinePosture {
    let mut best_h = ValueHolding::ALL[0];
    let mut best_hp = f64::NEG_INFINITY;
    for h in ValueHolding::ALL {
        let hp: f64 = PostureLabel::ALL
            .iter()
            .zip(p)
            .filter(|(l, _)| l.value_holding() == h)
            .map(|(_, p)| p)
            .sum();
        if hp > best_hp {
            best_hp = hp;
            best_h = h;
        }
    }
    let mut best_l = PostureLabel::ALL[0];
    let mut best_lp = f64::NEG_INFINITY;
    for (l, &lp) in PostureLabel::ALL.iter().zip(p) {
        if l.value_holding() == best_h && lp > best_lp {
            best_lp = lp;
            best_l = *l;
        }
    }
    OfflinePosture {
        label: best_l,
        value_holding: best_h,
        confidence: best_hp,
        label_confidence: best_lp,
    }
}

#[cfg(test)]
mod tests;
