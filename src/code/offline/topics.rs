//! Offline Layer A: one logistic regression per topic of a chain's closed taxonomy
//! (PROTOCOL 4.2), over surface word/bigram features, coded present at probability >= the
//! file's threshold. Multi-label by construction, like the 2-of-3 consensus it imitates.
//! The chain comes from the condition (the Layer A coders saw the condition label).

use super::features::{extract, FeatureConfig, SparseVec};
use super::model::Linear;
use super::train::TopicModelFile;
use crate::protocol::topics::taxonomy;
use crate::protocol::Chain;

/// Topic decisions for one response.
#[derive(Debug, Clone, PartialEq)]
pub struct OfflineTopics {
    /// Coded topic keys, sorted alphabetically (the consensus order of PROTOCOL 4.7).
    pub topics: Vec<&'static str>,
    /// Least certain per-topic decision: `min over topics of max(p, 1 - p)`.
    pub confidence: f64,
}

/// Topic coder of one chain.
#[derive(Debug, Clone)]
pub struct TopicCoder {
    features: FeatureConfig,
    keys: Vec<&'static str>,
    threshold: f64,
    linear: Linear,
}

impl TopicCoder {
    /// Build from the file part; every topic must belong to `chain`'s taxonomy.
    pub fn from_file(f: &TopicModelFile, chain: Chain) -> Result<Self, String> {
        let tax = taxonomy(chain);
        let mut keys = Vec::with_capacity(f.topics.len());
        for t in &f.topics {
            let k = tax
                .iter()
                .find(|(_, k, _)| k == t)
                .map(|(_, k, _)| *k)
                .ok_or_else(|| format!("topic `{t}` is not in the {chain:?} taxonomy"))?;
            keys.push(k);
        }
        let linear = f.linear.to_linear()?;
        if linear.n_out != keys.len() || linear.dim != f.features.dim() {
            return Err(format!(
                "topic model shape {}x{} does not match {} topics x dim {}",
                linear.n_out,
                linear.dim,
                keys.len(),
                f.features.dim()
            ));
        }
        Ok(TopicCoder {
            features: f.features.clone(),
            keys,
            threshold: f.threshold,
            linear,
        })
    }

    /// Features for this coder.
    pub fn features(&self, prompt: &str, response: &str) -> SparseVec {
        extract(&self.features, prompt, response)
    }

    /// Code from precomputed features.
    pub fn code_features(&self, x: &SparseVec) -> OfflineTopics {
        let p = self.linear.sigmoids(x);
        let mut topics: Vec<&'static str> = self
            .keys
            .iter()
            .zip(&p)
            .filter(|(_, p)| **p >= self.threshold)
            .map(|(k, _)| *k)
            .collect();
        topics.sort_unstable();
        let confidence = p.iter().map(|p| p.max(1.0 - p)).fold(1.0, f64::min);
        OfflineTopics { topics, confidence }
    }
}
