//! Sequential majority: ask a layer's coders in the fixed order and stop as soon as the
//! coders not yet asked cannot change the consensus. With the paper's three coders that
//! means: ask the first two; if they agree on everything the consensus votes on, the
//! third cannot change any majority, so it is not asked.
//!
//! What the consensus votes on (`consensus`, PROTOCOL 4.7 and 5.7), and why two agreeing
//! coders fix it:
//! - Layer B votes twice, independently: the collapsed label and value_holding. Each is a
//!   plurality with a fixed-order tie rule. Two votes for one value out of three cannot
//!   be tied or beaten, so both must agree (a reflective / world-change pair agrees on
//!   value_holding but not on the label, and so is not settled).
//! - Layer A keeps a topic iff at least two coders chose it. Two identical topic sets fix
//!   every topic: a shared topic already has two votes, any other has at most one.
//!
//! The rule here is the general one, for any number of coders, and never leans on the
//! tie rule: a vote is settled when its leader leads the runner-up by more than the
//! number of coders still to ask, and at least two coders have voted (so one coder's
//! vote is never the consensus by default when another coder failed).
//!
//! What it changes, by design: support counts (2 of 2 instead of 2 or 3 of 3),
//! `has_disagreement` (it compares only the coders that voted) and inter-coder
//! reliability, which needs every coder on every unit: the skipped votes are missing
//! *because* the first two agreed, so the analysis treats them as missing and says so.

use std::collections::BTreeMap;

use super::consensus::{PostureVote, TopicVote};

/// Whether a plurality over `values` is settled with `remaining` votes still possible.
fn plurality_settled<K: Ord>(values: impl IntoIterator<Item = K>, remaining: usize) -> bool {
    let mut counts: BTreeMap<K, usize> = BTreeMap::new();
    for v in values {
        *counts.entry(v).or_default() += 1;
    }
    let mut c: Vec<usize> = counts.into_values().collect();
    c.sort_unstable_by(|a, b| b.cmp(a));
    let leader = c.first().copied().unwrap_or(0);
    let runner_up = c.get(1).copied().unwrap_or(0);
    runner_up + remaining < leader
}

/// One vote per coder (the first), like the consensus functions count them.
fn distinct<T>(votes: &[T], coder: impl Fn(&T) -> &str) -> Vec<&T> {
    let mut seen: Vec<&str> = Vec::new();
    let mut out = Vec::new();
    for v in votes {
        if !seen.contains(&coder(v)) {
            seen.push(coder(v));
            out.push(v);
        }
    }
    out
}

/// Layer B: true when the coders still to ask (`remaining`) cannot change the consensus
/// label or value_holding of `votes`.
pub fn posture_settled(votes: &[PostureVote], remaining: usize) -> bool {
    if remaining == 0 {
        return true;
    }
    let votes = distinct(votes, |v| v.coder.as_str());
    votes.len() >= 2
        && plurality_settled(votes.iter().map(|v| v.counted_label().as_str()), remaining)
        && plurality_settled(
            votes.iter().map(|v| v.counted_holding().as_str()),
            remaining,
        )
}

/// Layer A: true when the coders still to ask cannot change the consensus topic set of
/// `votes`: no topic can still reach two coders (or fall below, which never happens).
pub fn topics_settled(votes: &[TopicVote], remaining: usize) -> bool {
    if remaining == 0 {
        return true;
    }
    let votes = distinct(votes, |v| v.coder.as_str());
    if votes.len() < 2 || remaining >= 2 {
        // Two coders still to ask could put any topic into the consensus.
        return false;
    }
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for v in &votes {
        let set: std::collections::BTreeSet<&str> = v.topics.iter().map(String::as_str).collect();
        for t in set {
            *counts.entry(t).or_default() += 1;
        }
    }
    counts.values().all(|&n| n >= 2 || n + remaining < 2)
}

/// Replay sequential majority over recorded votes in the fixed coder order (`None` = that
/// coder has no record, e.g. a call that failed for good: it is charged as a call and
/// gives no vote). Returns the calls made and the votes collected.
pub fn replay<V: Clone>(
    in_order: &[Option<V>],
    settled: impl Fn(&[V], usize) -> bool,
) -> (usize, Vec<V>) {
    let mut votes = Vec::new();
    for (k, v) in in_order.iter().enumerate() {
        if settled(&votes, in_order.len() - k) {
            return (k, votes);
        }
        if let Some(v) = v {
            votes.push(v.clone());
        }
    }
    (in_order.len(), votes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::code::consensus;

    fn pv(c: &str, l: &str) -> PostureVote {
        PostureVote {
            coder: c.into(),
            label: l.into(),
            value_holding: None,
        }
    }

    fn tv(c: &str, t: &[&str]) -> TopicVote {
        TopicVote {
            coder: c.into(),
            topics: t.iter().map(|s| s.to_string()).collect(),
        }
    }

    const D: &str = "disowned_service_frame";
    const R: &str = "owned_reflective_experiential";
    const W: &str = "owned_world_change_advocacy";
    const S: &str = "split_or_relocated_ownership";

    #[test]
    fn two_agreeing_of_three_settle_posture() {
        assert!(posture_settled(&[pv("k", D), pv("g", D)], 1));
        // Same holding, different label: the label is still open.
        assert!(!posture_settled(&[pv("k", R), pv("g", W)], 1));
        assert!(!posture_settled(&[pv("k", D), pv("g", S)], 1));
        // One vote is never settled while others can still vote.
        assert!(!posture_settled(&[pv("g", D)], 1));
        assert!(!posture_settled(&[pv("k", D)], 2));
        assert!(posture_settled(&[pv("k", D)], 0));
        // A recorded holding that differs from the label's counts on its own.
        let mut odd = pv("g", D);
        odd.value_holding = Some("owned".into());
        assert!(!posture_settled(&[pv("k", D), odd], 1));
        // Five coders: 2-0 with three to go is open; 3-0 with two to go is settled.
        assert!(!posture_settled(&[pv("a", D), pv("b", D)], 3));
        assert!(posture_settled(&[pv("a", D), pv("b", D), pv("c", D)], 2));
    }

    #[test]
    fn identical_sets_settle_topics() {
        assert!(topics_settled(
            &[tv("k", &["a", "b"]), tv("g", &["b", "a", "a"])],
            1
        ));
        assert!(topics_settled(&[tv("k", &[]), tv("g", &[])], 1));
        assert!(!topics_settled(&[tv("k", &["a", "b"]), tv("g", &["a"])], 1));
        // Four coders: two still to ask could add any topic.
        assert!(!topics_settled(&[tv("k", &["a"]), tv("g", &["a"])], 2));
        assert!(!topics_settled(&[tv("g", &[])], 1));
    }

    /// Exhaustive over every three-coder label combination: the consensus of the votes
    /// sequential majority collects equals the full consensus on label and holding.
    #[test]
    fn replay_gives_the_full_consensus_for_every_label_triple() {
        use crate::protocol::PostureLabel;
        let coders = crate::code::PAPER_CODERS;
        let labels = PostureLabel::ALL;
        for a in labels {
            for b in labels {
                for c in labels {
                    let all: Vec<PostureVote> = [a, b, c]
                        .iter()
                        .zip(coders)
                        .map(|(l, k)| pv(k, l.as_str()))
                        .collect();
                    let recs: Vec<Option<PostureVote>> = all.iter().cloned().map(Some).collect();
                    let (calls, got) = replay(&recs, posture_settled);
                    assert_eq!(calls, if a == b { 2 } else { 3 });
                    let full = consensus::posture(&all).unwrap();
                    let seq = consensus::posture(&got).unwrap();
                    assert_eq!(
                        (seq.label, seq.value_holding),
                        (full.label, full.value_holding)
                    );
                }
            }
        }
    }

    /// Exhaustive over every three-coder vote pattern on a two-topic taxonomy.
    #[test]
    fn replay_gives_the_full_topic_consensus() {
        let sets: [&[&str]; 4] = [&[], &["x"], &["y"], &["x", "y"]];
        for a in sets {
            for b in sets {
                for c in sets {
                    let all = vec![tv("k", a), tv("g", b), tv("q", c)];
                    let recs: Vec<Option<TopicVote>> = all.iter().cloned().map(Some).collect();
                    let (calls, got) = replay(&recs, topics_settled);
                    assert_eq!(calls, if a == b { 2 } else { 3 });
                    let keys = |v: &[TopicVote]| -> Vec<String> {
                        consensus::topics(v)
                            .topics
                            .into_iter()
                            .map(|t| t.topic_key)
                            .collect()
                    };
                    assert_eq!(keys(&got), keys(&all));
                }
            }
        }
        // A missing first record: charged, no vote, the other two are asked.
        let (calls, got) = replay(
            &[None, Some(tv("g", &["x"])), Some(tv("q", &["x"]))],
            topics_settled,
        );
        assert_eq!((calls, got.len()), (3, 2));
    }
}
