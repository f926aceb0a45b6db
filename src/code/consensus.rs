//! Consensus over per-coder votes, as published (PROTOCOL 4.7, 5.7). Pure functions:
//! no store, no I/O, so `vuf consensus` can recompute from whatever codes exist.
//!
//! Votes are put in the fixed coder order (`kimi-k2-6`, `glm-4-7`, `qwen3-6-35b-a3b`,
//! then any other coder alphabetically) before counting, because that order decides
//! three-way ties: the winner is the value cast by the first coder in that order that
//! cast one of the tied values, which is what a first-inserted-wins counter does.

use crate::protocol::{PostureLabel, ValueHolding};

use super::coder_rank;

/// One coder's Layer A vote: its topic keys (an unclean reply is an empty vote; a failed
/// call is no vote at all).
#[derive(Debug, Clone, PartialEq)]
pub struct TopicVote {
    /// Coder key.
    pub coder: String,
    /// Topic keys the coder chose.
    pub topics: Vec<String>,
}

/// A consensus topic with the coders that chose it (sorted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsensusTopic {
    /// Topic key.
    pub topic_key: String,
    /// Distinct coders that chose it, sorted alphabetically.
    pub supporting_coders: Vec<String>,
}

/// Layer A consensus of one sample.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicConsensus {
    /// Topics chosen by at least two distinct coders, sorted by key.
    pub topics: Vec<ConsensusTopic>,
    /// True iff at least two coders' topic sets differ.
    pub has_disagreement: bool,
    /// Coders that voted, in the fixed order.
    pub eligible_coders: Vec<String>,
}

fn ordered<T: Clone>(votes: &[T], coder: impl Fn(&T) -> &str) -> Vec<T> {
    let mut v = votes.to_vec();
    v.sort_by_key(|x| coder_rank(coder(x), &[]));
    v
}

/// Layer A consensus (PROTOCOL 4.7): a topic is kept iff at least 2 distinct coders chose
/// it; topics sorted by key; supporting coders sorted. A coder listing a topic twice
/// still gives it one vote; two records of the same coder count once.
pub fn topics(votes: &[TopicVote]) -> TopicConsensus {
    let votes = ordered(votes, |v| v.coder.as_str());
    let mut eligible: Vec<String> = Vec::new();
    let mut support: std::collections::BTreeMap<&str, Vec<String>> = Default::default();
    let mut sets: Vec<std::collections::BTreeSet<&str>> = Vec::new();
    for v in &votes {
        if eligible.contains(&v.coder) {
            continue;
        }
        eligible.push(v.coder.clone());
        let set: std::collections::BTreeSet<&str> = v.topics.iter().map(String::as_str).collect();
        for t in &set {
            support.entry(t).or_default().push(v.coder.clone());
        }
        sets.push(set);
    }
    let topics = support
        .into_iter()
        .filter(|(_, coders)| coders.len() >= 2)
        .map(|(k, mut coders)| {
            coders.sort();
            ConsensusTopic {
                topic_key: k.to_string(),
                supporting_coders: coders,
            }
        })
        .collect();
    let has_disagreement = sets.windows(2).any(|w| w[0] != w[1]);
    TopicConsensus {
        topics,
        has_disagreement,
        eligible_coders: eligible,
    }
}

/// One coder's Layer B vote as stored: the label text and, if recorded, its value-holding.
#[derive(Debug, Clone, PartialEq)]
pub struct PostureVote {
    /// Coder key.
    pub coder: String,
    /// Collapsed label as recorded (may be outside the six in imported data).
    pub label: String,
    /// The coder's value-holding as recorded, if any.
    pub value_holding: Option<String>,
}

impl PostureVote {
    /// The label this vote counts as: outside the six -> `uncodeable_or_refusal` (5.7 step 1).
    pub fn counted_label(&self) -> PostureLabel {
        PostureLabel::parse(&self.label).unwrap_or(PostureLabel::UncodeableOrRefusal)
    }

    /// The holding this vote counts as: the recorded one when valid, else derived from
    /// the counted label.
    pub fn counted_holding(&self) -> ValueHolding {
        self.value_holding
            .as_deref()
            .and_then(ValueHolding::parse)
            .unwrap_or_else(|| self.counted_label().value_holding())
    }
}

/// Layer B consensus of one sample (PROTOCOL 5.7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostureConsensus {
    /// Winning label.
    pub label: PostureLabel,
    /// Votes for it.
    pub label_support: u32,
    /// Label -> count, in order of first appearance in the fixed coder order.
    pub label_votes: Vec<(String, u32)>,
    /// Winning value-holding (voted independently of the label).
    pub value_holding: ValueHolding,
    /// Votes for it.
    pub value_holding_support: u32,
    /// Holding -> count, in order of first appearance.
    pub value_holding_votes: Vec<(String, u32)>,
    /// Coders that voted, in the fixed order.
    pub coders: Vec<String>,
}

impl PostureConsensus {
    /// Whether the coders' labels were not unanimous.
    pub fn label_disagreement(&self) -> bool {
        self.label_votes.len() > 1
    }
}

/// Count in first-appearance order and pick the most frequent; ties go to the value that
/// appeared first (= cast by the first coder in the fixed order).
fn majority(values: &[&'static str]) -> (usize, Vec<(String, u32)>) {
    let mut counts: Vec<(String, u32)> = Vec::new();
    for v in values {
        match counts.iter_mut().find(|(k, _)| k == v) {
            Some((_, n)) => *n += 1,
            None => counts.push((v.to_string(), 1)),
        }
    }
    let max = counts.iter().map(|(_, n)| *n).max().unwrap_or(0);
    let winner = counts.iter().position(|(_, n)| *n == max).unwrap_or(0);
    (winner, counts)
}

/// Layer B consensus (PROTOCOL 5.7): label and value_holding voted independently, with
/// support counts and the fixed-order tie rule. `None` when there are no votes. A coder
/// with two votes counts once (its first in the given slice).
pub fn posture(votes: &[PostureVote]) -> Option<PostureConsensus> {
    let mut seen: Vec<String> = Vec::new();
    let votes: Vec<PostureVote> = ordered(votes, |v| v.coder.as_str())
        .into_iter()
        .filter(|v| {
            let new = !seen.contains(&v.coder);
            seen.push(v.coder.clone());
            new
        })
        .collect();
    if votes.is_empty() {
        return None;
    }
    let labels: Vec<&'static str> = votes.iter().map(|v| v.counted_label().as_str()).collect();
    let holdings: Vec<&'static str> = votes.iter().map(|v| v.counted_holding().as_str()).collect();
    let (li, label_votes) = majority(&labels);
    let (hi, value_holding_votes) = majority(&holdings);
    Some(PostureConsensus {
        label: PostureLabel::parse(&label_votes[li].0)?,
        label_support: label_votes[li].1,
        value_holding: ValueHolding::parse(&value_holding_votes[hi].0)?,
        value_holding_support: value_holding_votes[hi].1,
        label_votes,
        value_holding_votes,
        coders: votes.iter().map(|v| v.coder.clone()).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tv(c: &str, t: &[&str]) -> TopicVote {
        TopicVote {
            coder: c.into(),
            topics: t.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn pv(c: &str, l: &str) -> PostureVote {
        PostureVote {
            coder: c.into(),
            label: l.into(),
            value_holding: None,
        }
    }

    #[test]
    fn topics_two_of_three() {
        let c = topics(&[
            tv("qwen3-6-35b-a3b", &["honesty_truth", "harm_reduction"]),
            tv(
                "kimi-k2-6",
                &["harm_reduction", "honesty_truth", "honesty_truth"],
            ),
            tv("glm-4-7", &["harm_reduction", "clear_thinking"]),
        ]);
        assert_eq!(
            c.eligible_coders,
            ["kimi-k2-6", "glm-4-7", "qwen3-6-35b-a3b"]
        );
        assert_eq!(
            c.topics,
            vec![
                ConsensusTopic {
                    topic_key: "harm_reduction".into(),
                    supporting_coders: vec![
                        "glm-4-7".into(),
                        "kimi-k2-6".into(),
                        "qwen3-6-35b-a3b".into()
                    ]
                },
                ConsensusTopic {
                    topic_key: "honesty_truth".into(),
                    supporting_coders: vec!["kimi-k2-6".into(), "qwen3-6-35b-a3b".into()]
                },
            ]
        );
        assert!(c.has_disagreement);
        // Same sets in different order: no disagreement. A duplicate coder counts once.
        let c = topics(&[tv("a", &["x", "y"]), tv("b", &["y", "x"]), tv("a", &["z"])]);
        assert!(!c.has_disagreement);
        assert_eq!(c.topics.len(), 2);
    }

    #[test]
    fn posture_majority_and_independent_holding() {
        // reflective / world-change / reflective: label support 2, holding support 3.
        let c = posture(&[
            pv("kimi-k2-6", "owned_reflective_experiential"),
            pv("glm-4-7", "owned_world_change_advocacy"),
            pv("qwen3-6-35b-a3b", "owned_reflective_experiential"),
        ])
        .unwrap();
        assert_eq!(
            (c.label, c.label_support),
            (PostureLabel::OwnedReflectiveExperiential, 2)
        );
        assert_eq!(
            (c.value_holding, c.value_holding_support),
            (ValueHolding::Owned, 3)
        );
    }

    #[test]
    fn posture_three_way_tie_goes_to_first_coder() {
        // reflective(glm) / world-change(qwen) / disowned(kimi), given out of order:
        // label = kimi's, support 1; holding owned with support 2 (PROTOCOL 5.7 step 4).
        let c = posture(&[
            pv("glm-4-7", "owned_reflective_experiential"),
            pv("qwen3-6-35b-a3b", "owned_world_change_advocacy"),
            pv("kimi-k2-6", "disowned_service_frame"),
        ])
        .unwrap();
        assert_eq!(
            (c.label, c.label_support),
            (PostureLabel::DisownedServiceFrame, 1)
        );
        assert_eq!(
            (c.value_holding, c.value_holding_support),
            (ValueHolding::Owned, 2)
        );
        assert_eq!(c.label_votes[0], ("disowned_service_frame".to_string(), 1));
        // Without kimi, glm's vote wins the tie.
        let c = posture(&[
            pv("qwen3-6-35b-a3b", "exposed_mechanism"),
            pv("glm-4-7", "disowned_service_frame"),
        ])
        .unwrap();
        assert_eq!(c.label, PostureLabel::DisownedServiceFrame);
    }

    #[test]
    fn posture_label_outside_six_is_uncodeable() {
        let c = posture(&[
            pv("kimi-k2-6", "congruence_high"),
            pv("glm-4-7", "uncodeable_or_refusal"),
            pv("qwen3-6-35b-a3b", "owned_reflective_experiential"),
        ])
        .unwrap();
        assert_eq!(
            (c.label, c.label_support),
            (PostureLabel::UncodeableOrRefusal, 2)
        );
        assert_eq!(c.value_holding, ValueHolding::Uncodeable);
        assert!(posture(&[]).is_none());
    }
}
