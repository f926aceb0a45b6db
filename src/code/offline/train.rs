//! Training: labelled samples -> [`ModelFile`] (the versioned JSON that ships in
//! `coders/`). Feature setups and hyperparameters are constants fixed a priori (not tuned on
//! the evaluation), and the file records them together with a SHA-256 of the training
//! input, so the same data always gives the same bytes and anyone can check which data a
//! shipped file came from. No timestamps or host details go into the file.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::data::LabelledSample;
use super::features::{extract, FeatureConfig, SparseVec};
use super::model::{train_sigmoids, train_softmax, QuantLinear, TrainParams};
use crate::protocol::topics::taxonomy;
use crate::protocol::{Chain, PostureLabel};

/// `format` field of the model file.
pub const FORMAT: &str = "vuf-offline-coder";
/// Version of the file layout (bump when fields change meaning).
pub const VERSION: u32 = 1;

/// Posture features: words + bigrams + opening tokens + char 4-grams + rubric cues.
pub fn posture_features() -> FeatureConfig {
    FeatureConfig {
        hash_bits: 14,
        word_bigrams: true,
        char_ngram: 4,
        opening_tokens: 30,
        cues: true,
    }
}

/// Topic features: surface words and bigrams only (Layer A codes surface content).
pub fn topic_features() -> FeatureConfig {
    FeatureConfig {
        hash_bits: 12,
        word_bigrams: true,
        char_ngram: 0,
        opening_tokens: 0,
        cues: false,
    }
}

/// SGD settings for both layers.
pub fn train_params() -> TrainParams {
    TrainParams {
        epochs: 15,
        eta0: 0.5,
        lambda: 1e-4,
        seed: 6,
    }
}

/// Probability above which a topic is coded present (fixed a priori).
pub const TOPIC_THRESHOLD: f64 = 0.5;

/// What the model was trained on and how.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingInfo {
    /// SHA-256 (hex) over the training input, in `layered_id` order.
    pub data_sha256: String,
    /// Posture training samples.
    pub n_samples: usize,
    /// Responding models in the training set (sorted).
    pub models: Vec<String>,
    /// SGD settings.
    pub params: TrainParams,
}

/// Layer B part of the file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PostureModelFile {
    /// Feature setup.
    pub features: FeatureConfig,
    /// Row order of the linear map (collapsed label names).
    pub labels: Vec<String>,
    /// Weights.
    pub linear: QuantLinear,
}

/// Layer A part of the file for one chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopicModelFile {
    /// Feature setup.
    pub features: FeatureConfig,
    /// Row order (topic keys of the chain's taxonomy, PROTOCOL 4.2 order).
    pub topics: Vec<String>,
    /// Presence threshold on each topic's probability.
    pub threshold: f64,
    /// Training samples of this chain.
    pub n_samples: usize,
    /// Weights.
    pub linear: QuantLinear,
}

/// The whole shipped file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelFile {
    /// Always [`FORMAT`].
    pub format: String,
    /// Always [`VERSION`] for files this code writes.
    pub version: u32,
    /// Provenance.
    pub training: TrainingInfo,
    /// Layer B.
    pub posture: PostureModelFile,
    /// Layer A, stated-values chain.
    pub topics_stated: TopicModelFile,
    /// Layer A, world-change chain.
    pub topics_wish: TopicModelFile,
}

impl ModelFile {
    /// Canonical bytes: pretty JSON plus a final newline.
    pub fn to_bytes(&self) -> Result<Vec<u8>, serde_json::Error> {
        let mut v = serde_json::to_vec_pretty(self)?;
        v.push(b'\n');
        Ok(v)
    }
}

/// Features of every sample, computed once (they do not depend on the training set).
pub struct Prepared {
    /// Posture features per sample.
    pub posture: Vec<SparseVec>,
    /// Topic features per sample.
    pub topic: Vec<SparseVec>,
}

/// Compute features of all samples.
pub fn prepare(samples: &[LabelledSample]) -> Prepared {
    let pc = posture_features();
    let tc = topic_features();
    Prepared {
        posture: samples
            .iter()
            .map(|s| extract(&pc, &s.prompt, &s.response))
            .collect(),
        topic: samples
            .iter()
            .map(|s| extract(&tc, &s.prompt, &s.response))
            .collect(),
    }
}

fn digest(samples: &[LabelledSample], include: &[usize]) -> String {
    let mut h = Sha256::new();
    for &i in include {
        let s = &samples[i];
        for part in [
            &s.layered_id,
            &s.model,
            s.condition.as_str(),
            &s.prompt,
            &s.response,
            s.label.as_str(),
            s.value_holding.as_str(),
        ] {
            h.update(part.as_bytes());
            h.update([0u8]);
        }
        if let Some(t) = &s.topics {
            h.update(t.join(",").as_bytes());
        }
        h.update(b"\n");
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

fn label_index(l: PostureLabel) -> usize {
    PostureLabel::ALL
        .iter()
        .position(|x| *x == l)
        .unwrap_or(PostureLabel::ALL.len() - 1)
}

fn train_topics(
    samples: &[LabelledSample],
    prep: &Prepared,
    include: &[usize],
    chain: Chain,
) -> TopicModelFile {
    let cfg = topic_features();
    let tax = taxonomy(chain);
    let mut xs = Vec::new();
    let mut ys = Vec::new();
    for &i in include {
        let s = &samples[i];
        let Some(t) = &s.topics else { continue };
        if s.condition.chain() != chain {
            continue;
        }
        xs.push(prep.topic[i].clone());
        ys.push(
            tax.iter()
                .map(|(_, k, _)| t.iter().any(|x| x == k))
                .collect::<Vec<bool>>(),
        );
    }
    let m = train_sigmoids(&xs, &ys, tax.len(), cfg.dim(), &train_params());
    TopicModelFile {
        features: cfg,
        topics: tax.iter().map(|(_, k, _)| k.to_string()).collect(),
        threshold: TOPIC_THRESHOLD,
        n_samples: xs.len(),
        linear: QuantLinear::from_linear(&m),
    }
}

/// Train on the samples at `include` (indices into `samples`, in that order).
pub fn train_on(samples: &[LabelledSample], prep: &Prepared, include: &[usize]) -> ModelFile {
    let cfg = posture_features();
    let xs: Vec<SparseVec> = include.iter().map(|&i| prep.posture[i].clone()).collect();
    let ys: Vec<usize> = include
        .iter()
        .map(|&i| label_index(samples[i].label))
        .collect();
    let m = train_softmax(
        &xs,
        &ys,
        PostureLabel::ALL.len(),
        cfg.dim(),
        &train_params(),
    );
    let mut models: Vec<String> = include.iter().map(|&i| samples[i].model.clone()).collect();
    models.sort();
    models.dedup();
    ModelFile {
        format: FORMAT.to_string(),
        version: VERSION,
        training: TrainingInfo {
            data_sha256: digest(samples, include),
            n_samples: include.len(),
            models,
            params: train_params(),
        },
        posture: PostureModelFile {
            features: cfg,
            labels: PostureLabel::ALL
                .iter()
                .map(|l| l.as_str().to_string())
                .collect(),
            linear: QuantLinear::from_linear(&m),
        },
        topics_stated: train_topics(samples, prep, include, Chain::StatedValues),
        topics_wish: train_topics(samples, prep, include, Chain::WorldChangeWishes),
    }
}

/// Train on all samples (what `vuf coder train` ships).
pub fn train(samples: &[LabelledSample]) -> ModelFile {
    let prep = prepare(samples);
    let all: Vec<usize> = (0..samples.len()).collect();
    train_on(samples, &prep, &all)
}
