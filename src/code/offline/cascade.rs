//! Cascade simulation on held-out predictions: a response whose offline confidence is at
//! least t keeps the offline code (0 coder-model calls); the rest get the full three-coder
//! consensus, simulated by the published consensus. The curve is agreement with the full
//! consensus against mean calls per response, under two ways of asking the coder models:
//! - all coders (the published design): 3 coders x 2 layers = 6 calls per uncertain response;
//! - sequential majority (`code::sequential`): per layer the first two coders, and the third
//!   only where they disagree, replayed on the recorded per-coder codes; 4 to 6 calls. Its
//!   consensus is the same, so agreement does not depend on the cost model.

use super::data::LabelledSample;
use super::OfflinePosture;
use crate::code::consensus::{PostureVote, TopicVote};
use crate::code::sequential;
use crate::protocol::{PostureLabel, ValueHolding};

/// Coder-model calls an uncertain response costs when every coder is asked: 3 coders x 2 layers.
pub const CALLS_PER_UNCERTAIN: f64 = 6.0;

/// How the coder models are asked for an uncertain response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CostModel {
    /// Every coder, every layer (6 calls).
    AllCoders,
    /// Sequential majority (2 or 3 calls per layer).
    Sequential,
}

/// Calls sequential majority spends on one response, per layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeqCalls {
    /// Layer A calls (2 or 3).
    pub a: usize,
    /// Layer B calls (2 or 3).
    pub b: usize,
}

impl SeqCalls {
    /// Both layers.
    pub fn total(self) -> f64 {
        (self.a + self.b) as f64
    }
}

/// The Layer B votes of a labelled sample in the fixed coder order (`None` = no record).
pub fn posture_votes(s: &LabelledSample) -> Vec<Option<PostureVote>> {
    (0..3)
        .map(|k| {
            s.coder_labels[k].map(|l| PostureVote {
                coder: super::data::CODER_KEYS[k].to_string(),
                label: l.as_str().to_string(),
                value_holding: s.coder_holdings[k].map(|h| h.as_str().to_string()),
            })
        })
        .collect()
}

/// The Layer A votes of a labelled sample in the fixed coder order (`None` = no record).
pub fn topic_votes(s: &LabelledSample) -> Vec<Option<TopicVote>> {
    (0..3)
        .map(|k| {
            s.coder_topics[k].as_ref().map(|t| TopicVote {
                coder: super::data::CODER_KEYS[k].to_string(),
                topics: t.clone(),
            })
        })
        .collect()
}

/// What sequential majority would really spend on each sample, replayed on its recorded
/// per-coder codes in the fixed order (PROTOCOL 5.7: kimi, glm, qwen; the order is the
/// protocol's, not chosen on these results). A missing record is charged as a call that
/// gave no vote (the next coder is then asked), so a layer with no records costs 3.
pub fn sequential_calls(samples: &[LabelledSample]) -> Vec<SeqCalls> {
    samples
        .iter()
        .map(|s| SeqCalls {
            a: sequential::replay(&topic_votes(s), sequential::topics_settled).0,
            b: sequential::replay(&posture_votes(s), sequential::posture_settled).0,
        })
        .collect()
}

/// One threshold's outcome.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CascadePoint {
    /// Confidence threshold.
    pub threshold: f64,
    /// Share of responses that keep the offline code.
    pub offline_share: f64,
    /// Mean coder-model calls per response, asking every coder (6 per uncertain response).
    pub calls_per_response: f64,
    /// Mean coder-model calls per response under sequential majority.
    pub calls_per_response_seq: f64,
    /// Agreement with the full consensus on value_holding.
    pub agreement_holding: f64,
    /// Agreement with the full consensus on the collapsed label.
    pub agreement_label: f64,
}

impl CascadePoint {
    /// Calls per response under `cost`.
    pub fn calls(&self, cost: CostModel) -> f64 {
        match cost {
            CostModel::AllCoders => self.calls_per_response,
            CostModel::Sequential => self.calls_per_response_seq,
        }
    }

    /// Mean sequential-majority calls per response sent to the coder models (NaN if none).
    pub fn calls_per_uncertain_seq(&self) -> f64 {
        self.calls_per_response_seq / (1.0 - self.offline_share)
    }
}

/// The default grid: 0.00 to 1.00 in steps of 0.01, then 1.01 (everything to the models).
pub fn default_grid() -> Vec<f64> {
    (0..=101).map(|k| k as f64 / 100.0).collect()
}

/// Curve over `thresholds` (held-out predictions, the consensus and each sample's
/// sequential-majority calls, parallel slices).
pub fn curve(
    pred: &[OfflinePosture],
    gold_label: &[PostureLabel],
    gold_holding: &[ValueHolding],
    seq: &[SeqCalls],
    thresholds: &[f64],
) -> Vec<CascadePoint> {
    let n = pred.len().max(1) as f64;
    thresholds
        .iter()
        .map(|&t| {
            let mut kept = 0usize;
            let mut ok_h = 0usize;
            let mut ok_l = 0usize;
            let mut seq_calls = 0f64;
            for (((p, gl), gh), sc) in pred.iter().zip(gold_label).zip(gold_holding).zip(seq) {
                if p.confidence >= t {
                    kept += 1;
                    ok_h += usize::from(p.value_holding == *gh);
                    ok_l += usize::from(p.label == *gl);
                } else {
                    seq_calls += sc.total();
                    ok_h += 1;
                    ok_l += 1;
                }
            }
            let share = kept as f64 / n;
            CascadePoint {
                threshold: t,
                offline_share: share,
                calls_per_response: CALLS_PER_UNCERTAIN * (1.0 - share),
                calls_per_response_seq: seq_calls / n,
                agreement_holding: ok_h as f64 / n,
                agreement_label: ok_l as f64 / n,
            }
        })
        .collect()
}

/// Highest value_holding agreement among points spending at most `max_calls` under `cost`.
pub fn best_within_budget(
    c: &[CascadePoint],
    max_calls: f64,
    cost: CostModel,
) -> Option<CascadePoint> {
    c.iter()
        .filter(|p| p.calls(cost) <= max_calls + 1e-12)
        .copied()
        .max_by(|a, b| {
            a.agreement_holding
                .total_cmp(&b.agreement_holding)
                .then(b.calls(cost).total_cmp(&a.calls(cost)))
        })
}

/// Fewest calls under `cost` among points reaching `min_agreement` on value_holding.
pub fn cheapest_reaching(
    c: &[CascadePoint],
    min_agreement: f64,
    cost: CostModel,
) -> Option<CascadePoint> {
    c.iter()
        .filter(|p| p.agreement_holding >= min_agreement)
        .copied()
        .min_by(|a, b| a.calls(cost).total_cmp(&b.calls(cost)))
}

/// Outcome of a threshold chosen without looking at the group it is applied to.
#[derive(Debug, Clone, PartialEq)]
pub struct CrossFold {
    /// Cost model the thresholds were picked and charged under.
    pub cost: CostModel,
    /// Mean coder-model calls per response over all groups.
    pub calls_per_response: f64,
    /// value_holding agreement over all groups.
    pub agreement_holding: f64,
    /// Label agreement over all groups.
    pub agreement_label: f64,
    /// Threshold used for each group (held-out model), sorted by group.
    pub thresholds: Vec<(String, f64)>,
}

/// Cross-fitted cascade: for each group (held-out model) the threshold is picked by `pick`
/// on the curve of all *other* groups' predictions, then applied to this group and charged
/// under `cost`. No group's labels influence its own threshold, so the result is free of
/// the selection effect of reading a threshold off the pooled curve. Groups with no
/// pickable point send everything to the models.
pub fn cross_fold(
    pred: &[OfflinePosture],
    gold_label: &[PostureLabel],
    gold_holding: &[ValueHolding],
    seq: &[SeqCalls],
    groups: &[&str],
    cost: CostModel,
    pick: impl Fn(&[CascadePoint]) -> Option<CascadePoint>,
) -> CrossFold {
    let mut names: Vec<&str> = groups.to_vec();
    names.sort_unstable();
    names.dedup();
    let (mut calls, mut ok_h, mut ok_l) = (0f64, 0usize, 0usize);
    let mut thresholds = Vec::new();
    for g in names {
        let other: Vec<usize> = (0..pred.len()).filter(|&i| groups[i] != g).collect();
        let p: Vec<OfflinePosture> = other.iter().map(|&i| pred[i]).collect();
        let l: Vec<PostureLabel> = other.iter().map(|&i| gold_label[i]).collect();
        let h: Vec<ValueHolding> = other.iter().map(|&i| gold_holding[i]).collect();
        let s: Vec<SeqCalls> = other.iter().map(|&i| seq[i]).collect();
        let t =
            pick(&curve(&p, &l, &h, &s, &default_grid())).map_or(f64::INFINITY, |c| c.threshold);
        thresholds.push((g.to_string(), t));
        for i in (0..pred.len()).filter(|&i| groups[i] == g) {
            if pred[i].confidence >= t {
                ok_h += usize::from(pred[i].value_holding == gold_holding[i]);
                ok_l += usize::from(pred[i].label == gold_label[i]);
            } else {
                calls += match cost {
                    CostModel::AllCoders => CALLS_PER_UNCERTAIN,
                    CostModel::Sequential => seq[i].total(),
                };
                ok_h += 1;
                ok_l += 1;
            }
        }
    }
    let n = pred.len().max(1) as f64;
    CrossFold {
        cost,
        calls_per_response: calls / n,
        agreement_holding: ok_h as f64 / n,
        agreement_label: ok_l as f64 / n,
        thresholds,
    }
}

/// CSV of the curve (header + one row per threshold). The sequential-majority columns
/// come last, so readers of the older five columns are unaffected.
pub fn to_csv(c: &[CascadePoint]) -> String {
    let mut s = String::from(
        "threshold,offline_share,calls_per_response,agreement_value_holding,agreement_label,\
         calls_per_response_seq_majority,calls_per_uncertain_seq_majority\n",
    );
    for p in c {
        let per_uncertain = p.calls_per_uncertain_seq();
        s.push_str(&format!(
            "{:.2},{:.4},{:.4},{:.4},{:.4},{:.4},{}\n",
            p.threshold,
            p.offline_share,
            p.calls_per_response,
            p.agreement_holding,
            p.agreement_label,
            p.calls_per_response_seq,
            if per_uncertain.is_finite() {
                format!("{per_uncertain:.4}")
            } else {
                String::new()
            }
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_worked_curve() {
        use PostureLabel::*;
        let mk = |l: PostureLabel, c: f64| OfflinePosture {
            label: l,
            value_holding: l.value_holding(),
            confidence: c,
            label_confidence: c,
        };
        // Two confident right, one confident wrong, one unsure wrong.
        let pred = [
            mk(DisownedServiceFrame, 0.99),
            mk(OwnedReflectiveExperiential, 0.9),
            mk(DisownedServiceFrame, 0.8),
            mk(ExposedMechanism, 0.4),
        ];
        let gl = [
            DisownedServiceFrame,
            OwnedWorldChangeAdvocacy,
            OwnedReflectiveExperiential,
            DisownedServiceFrame,
        ];
        let gh: Vec<ValueHolding> = gl.iter().map(|l| l.value_holding()).collect();
        // Sequential majority would spend 4, 5, 6 and 5 calls on them.
        let seq = [(2, 2), (2, 3), (3, 3), (3, 2)].map(|(a, b)| SeqCalls { a, b });
        let c = curve(&pred, &gl, &gh, &seq, &[0.0, 0.5, 0.85, 1.01]);
        // t=0: all offline; holding right for items 0,1 -> 2/4; label right only item 0.
        assert_eq!(
            (
                c[0].offline_share,
                c[0].agreement_holding,
                c[0].agreement_label
            ),
            (1.0, 0.5, 0.25)
        );
        // t=0.5: item 3 to models -> 3/4 holding, calls 6 * 1/4.
        assert_eq!(
            (c[1].agreement_holding, c[1].calls_per_response),
            (0.75, 1.5)
        );
        // t=0.85: items 2,3 to models -> holding 4/4, label 3/4, calls 3.
        assert_eq!(
            (
                c[2].agreement_holding,
                c[2].agreement_label,
                c[2].calls_per_response
            ),
            (1.0, 0.75, 3.0)
        );
        assert_eq!(
            (c[3].agreement_holding, c[3].calls_per_response),
            (1.0, 6.0)
        );
        // Sequential: t=0.5 sends item 3 (5 calls); t=0.85 items 2, 3 (6 + 5); all: 20.
        let seq_calls: Vec<f64> = c.iter().map(|p| p.calls_per_response_seq).collect();
        assert_eq!(seq_calls, [0.0, 1.25, 2.75, 5.0]);
        assert_eq!(c[2].calls_per_uncertain_seq(), 5.5);
        assert!(c[0].calls_per_uncertain_seq().is_nan());
        use CostModel::*;
        assert_eq!(
            best_within_budget(&c, 2.0, AllCoders).map(|p| p.threshold),
            Some(0.5)
        );
        assert_eq!(
            cheapest_reaching(&c, 0.95, AllCoders).map(|p| p.threshold),
            Some(0.85)
        );
        // Within 3 calls: all-coders only affords t=0.85 (3.0); sequential also t=0.85 (2.75).
        assert_eq!(
            best_within_budget(&c, 2.9, AllCoders).map(|p| p.threshold),
            Some(0.5)
        );
        assert_eq!(
            best_within_budget(&c, 2.9, Sequential).map(|p| p.threshold),
            Some(0.85)
        );
        let csv = to_csv(&c);
        assert!(csv.lines().next().unwrap().ends_with(
            "agreement_label,calls_per_response_seq_majority,calls_per_uncertain_seq_majority"
        ));
        assert_eq!(
            csv.lines().nth(1).unwrap(),
            "0.00,1.0000,0.0000,0.5000,0.2500,0.0000,"
        );
        assert_eq!(
            csv.lines().nth(3).unwrap(),
            "0.85,0.5000,3.0000,1.0000,0.7500,2.7500,5.5000"
        );
    }

    #[test]
    fn cross_fold_never_uses_own_group() {
        use PostureLabel::*;
        let mk = |l: PostureLabel, c: f64| OfflinePosture {
            label: l,
            value_holding: l.value_holding(),
            confidence: c,
            label_confidence: c,
        };
        // Group a: confident and right. Group b: confident (0.9) but wrong.
        let pred = [
            mk(DisownedServiceFrame, 0.95),
            mk(DisownedServiceFrame, 0.9),
        ];
        let gl = [DisownedServiceFrame, OwnedReflectiveExperiential];
        let gh: Vec<ValueHolding> = gl.iter().map(|l| l.value_holding()).collect();
        // Pick: the lowest threshold that reaches full agreement on the other group.
        let seq = [SeqCalls { a: 2, b: 3 }; 2];
        let r = cross_fold(
            &pred,
            &gl,
            &gh,
            &seq,
            &["a", "b"],
            CostModel::AllCoders,
            |c| cheapest_reaching(c, 1.0, CostModel::AllCoders),
        );
        // For a: curve on b alone -> needs t > 0.9 -> cheapest 0.91; a (0.95) kept, right.
        // For b: curve on a alone -> t = 0.0 suffices; b kept, wrong.
        assert_eq!(
            r.thresholds,
            vec![("a".to_string(), 0.91), ("b".to_string(), 0.0)]
        );
        assert_eq!((r.agreement_holding, r.calls_per_response), (0.5, 0.0));
        // Demanding a threshold above both confidences sends both: 6 or 5 calls each.
        for (cost, calls) in [(CostModel::AllCoders, 6.0), (CostModel::Sequential, 5.0)] {
            let r = cross_fold(&pred, &gl, &gh, &seq, &["a", "b"], cost, |c| {
                c.iter().copied().find(|p| p.threshold > 0.95)
            });
            assert_eq!((r.agreement_holding, r.calls_per_response), (1.0, calls));
        }
    }
}
