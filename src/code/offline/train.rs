//! Training: labelled samples -> [`ModelFile`] (the versioned JSON that ships in
//! `coders/`). Feature setups and hyperparameters are constants fixed a priori (not tuned on
//! the evaluation), and the file records them together with a SHA-256 of the training
//! input, so the same data always gives the same bytes and anyone can check which data a
//! shipped file came from. No timestamps or host details go into the file.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::data::LabelledSample;
use super::features::{extract, FeatureConfig, SparseVec};
use super::model::{train_sigmoids_soft, train_softmax_soft, QuantLinear, TrainParams};
use crate::protocol::topics::taxonomy;
use crate::protocol::{Chain, PostureLabel};

/// `format` field of the model file.
pub const FORMAT: &str = "vuf-offline-coder";
/// Version of the file layout (bump when fields change meaning). Version 2 added
/// [`TrainingInfo::posture_targets`], [`TrainingInfo::topic_targets`] and
/// [`TrainingInfo::model_weighting`]; the weights' layout is unchanged, so version 1 files
/// still load.
pub const VERSION: u32 = 2;

/// `posture_targets` of files this code writes: the Layer B softmax learns each response's
/// share of the three coders' votes, not only the majority.
pub const POSTURE_TARGETS: &str = "coder_vote_shares";
/// `topic_targets` of files this code writes: each Layer A topic model learns the share of
/// the coders naming the topic.
pub const TOPIC_TARGETS: &str = "coder_vote_shares";
/// `model_weighting` of files this code writes: every responding model carries the same
/// total weight in the loss of both layers.
pub const MODEL_WEIGHTING: &str = "equal_per_model";

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
    /// What the Layer B softmax is fitted to ([`POSTURE_TARGETS`]; "consensus" in v1).
    #[serde(default = "consensus_targets")]
    pub posture_targets: String,
    /// What the Layer A topic models are fitted to ([`TOPIC_TARGETS`]; "consensus" in v1).
    #[serde(default = "consensus_targets")]
    pub topic_targets: String,
    /// How samples are weighted in both layers ([`MODEL_WEIGHTING`]; "none" in v1).
    #[serde(default = "no_weighting")]
    pub model_weighting: String,
}

fn consensus_targets() -> String {
    "consensus".into()
}

fn no_weighting() -> String {
    "none".into()
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
        for l in &s.coder_labels {
            h.update(l.map_or("-", |l| l.as_str()).as_bytes());
            h.update([0u8]);
        }
        if let Some(t) = &s.topics {
            h.update(t.join(",").as_bytes());
        }
        for t in &s.coder_topics {
            h.update([0u8]);
            h.update(
                t.as_ref()
                    .map_or("-".to_string(), |t| t.join(","))
                    .as_bytes(),
            );
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
    let chain_include: Vec<usize> = include
        .iter()
        .copied()
        .filter(|&i| samples[i].topics.is_some() && samples[i].condition.chain() == chain)
        .collect();
    let xs: Vec<SparseVec> = chain_include
        .iter()
        .map(|&i| prep.topic[i].clone())
        .collect();
    let keys: Vec<&str> = tax.iter().map(|(_, k, _)| *k).collect();
    let ys: Vec<Vec<f64>> = chain_include
        .iter()
        .map(|&i| topic_shares(&samples[i], &keys))
        .collect();
    let m = train_sigmoids_soft(
        &xs,
        &ys,
        &model_weights(samples, &chain_include),
        tax.len(),
        cfg.dim(),
        &train_params(),
    );
    TopicModelFile {
        features: cfg,
        topics: tax.iter().map(|(_, k, _)| k.to_string()).collect(),
        threshold: TOPIC_THRESHOLD,
        n_samples: xs.len(),
        linear: QuantLinear::from_linear(&m),
    }
}

/// Layer A targets of one response: per topic, the share of the coders' topic sets that
/// name it; with no per-coder set, the consensus (0 or 1). Why: a topic named by two of
/// three coders is present by majority but disputed, and p >= 0.5 on a model fitted to the
/// shares approximates the majority rule itself.
fn topic_shares(s: &LabelledSample, keys: &[&str]) -> Vec<f64> {
    let sets: Vec<&Vec<String>> = s.coder_topics.iter().flatten().collect();
    keys.iter()
        .map(|k| {
            if sets.is_empty() {
                let named = s.topics.as_ref().is_some_and(|t| t.iter().any(|x| x == k));
                if named {
                    1.0
                } else {
                    0.0
                }
            } else {
                sets.iter().filter(|t| t.iter().any(|x| x == k)).count() as f64 / sets.len() as f64
            }
        })
        .collect()
}

/// Layer B target of one response: each coder's label gets an equal share of the vote
/// ([`POSTURE_TARGETS`]); a response with no per-coder record falls back to its consensus.
///
/// Why: a 2-1 split is a borderline response, and the shares tell the model so, where a
/// one-hot majority says the two cases are the same.
fn vote_shares(s: &LabelledSample) -> Vec<f64> {
    let mut t = vec![0.0; PostureLabel::ALL.len()];
    let votes: Vec<PostureLabel> = s.coder_labels.iter().flatten().copied().collect();
    if votes.is_empty() {
        t[label_index(s.label)] = 1.0;
    } else {
        for v in &votes {
            t[label_index(*v)] += 1.0 / votes.len() as f64;
        }
    }
    t
}

/// Per-sample weights giving every responding model the same total weight
/// ([`MODEL_WEIGHTING`]), scaled to a mean of 1 so the SGD step size is unchanged.
///
/// Why: one model (glm-5-1) is 64% of the labelled data, and the coder is meant for models
/// it has not seen, so no single model's style should dominate what it learns.
fn model_weights(samples: &[LabelledSample], include: &[usize]) -> Vec<f64> {
    let mut per_model: std::collections::BTreeMap<&str, usize> = Default::default();
    for &i in include {
        *per_model.entry(samples[i].model.as_str()).or_default() += 1;
    }
    let (n, k) = (include.len() as f64, per_model.len() as f64);
    include
        .iter()
        .map(|&i| n / (k * per_model[samples[i].model.as_str()] as f64))
        .collect()
}

/// Train on the samples at `include` (indices into `samples`, in that order).
pub fn train_on(samples: &[LabelledSample], prep: &Prepared, include: &[usize]) -> ModelFile {
    let cfg = posture_features();
    let xs: Vec<SparseVec> = include.iter().map(|&i| prep.posture[i].clone()).collect();
    let targets: Vec<Vec<f64>> = include.iter().map(|&i| vote_shares(&samples[i])).collect();
    let m = train_softmax_soft(
        &xs,
        &targets,
        &model_weights(samples, include),
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
            posture_targets: POSTURE_TARGETS.into(),
            topic_targets: TOPIC_TARGETS.into(),
            model_weighting: MODEL_WEIGHTING.into(),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{Condition, PostureLabel::*};

    fn s(model: &str, label: PostureLabel, votes: [Option<PostureLabel>; 3]) -> LabelledSample {
        LabelledSample {
            layered_id: format!("{model}_{}", label.as_str()),
            model: model.into(),
            condition: Condition::Ctrl1,
            prompt: String::new(),
            response: String::new(),
            label,
            value_holding: label.value_holding(),
            coder_labels: votes,
            coder_holdings: [None; 3],
            topics: None,
            coder_topics: [None, None, None],
        }
    }

    #[test]
    fn vote_shares_split_the_votes_and_fall_back_to_consensus() {
        let ix = |l| label_index(l);
        let two_one = vote_shares(&s(
            "m",
            OwnedReflectiveExperiential,
            [
                Some(SplitOrRelocatedOwnership),
                Some(OwnedReflectiveExperiential),
                Some(OwnedReflectiveExperiential),
            ],
        ));
        assert!((two_one[ix(SplitOrRelocatedOwnership)] - 1.0 / 3.0).abs() < 1e-12);
        assert!((two_one[ix(OwnedReflectiveExperiential)] - 2.0 / 3.0).abs() < 1e-12);
        // A missing coder record: the two present votes share the target.
        let one_missing = vote_shares(&s(
            "m",
            DisownedServiceFrame,
            [Some(DisownedServiceFrame), None, Some(ExposedMechanism)],
        ));
        assert_eq!(one_missing[ix(DisownedServiceFrame)], 0.5);
        assert_eq!(one_missing[ix(ExposedMechanism)], 0.5);
        let none = vote_shares(&s("m", ExposedMechanism, [None; 3]));
        assert_eq!(none[ix(ExposedMechanism)], 1.0);
        assert_eq!(none.iter().sum::<f64>(), 1.0);
    }

    #[test]
    fn topic_shares_count_the_coders_naming_each_topic() {
        let mut x = s("m", DisownedServiceFrame, [None; 3]);
        x.topics = Some(vec!["honesty_truth".into()]);
        let keys = ["helpfulness_usefulness", "honesty_truth", "harm_reduction"];
        // No per-coder sets: the consensus, 0 or 1.
        assert_eq!(topic_shares(&x, &keys), vec![0.0, 1.0, 0.0]);
        // Two of three coders name honesty, one names harm reduction, one set is empty.
        x.coder_topics = [
            Some(vec!["honesty_truth".into(), "harm_reduction".into()]),
            Some(vec!["honesty_truth".into()]),
            Some(vec![]),
        ];
        let t = topic_shares(&x, &keys);
        assert_eq!(t[0], 0.0);
        assert!((t[1] - 2.0 / 3.0).abs() < 1e-12 && (t[2] - 1.0 / 3.0).abs() < 1e-12);
        // A missing coder record: the shares are over the two sets present.
        x.coder_topics[2] = None;
        assert_eq!(topic_shares(&x, &keys), vec![0.0, 1.0, 0.5]);
    }

    #[test]
    fn model_weights_give_each_model_the_same_total() {
        // Model a has 3 samples, b has 1: n = 4, k = 2, so a's weigh 4/(2*3) = 2/3 each and
        // b's 4/(2*1) = 2; both models total 2 and the mean weight is 1.
        let v = [None; 3];
        let samples = vec![
            s("a", DisownedServiceFrame, v),
            s("a", DisownedServiceFrame, v),
            s("b", DisownedServiceFrame, v),
            s("a", DisownedServiceFrame, v),
        ];
        let w = model_weights(&samples, &[0, 1, 2, 3]);
        assert!((w[0] - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(w[2], 2.0);
        // Only the included samples count: without sample 3, a has 2 of 3 samples.
        let w = model_weights(&samples, &[0, 1, 2]);
        assert!((w[0] - 0.75).abs() < 1e-12);
        assert!((w[2] - 1.5).abs() < 1e-12);
    }
}
