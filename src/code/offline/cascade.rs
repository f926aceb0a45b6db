//! Cascade simulation on held-out predictions: a response whose offline confidence is
//! >= t keeps the offline code (0 coder-model calls); the rest get the full three-coder
//! consensus, simulated by the published consensus (3 coders x 2 layers = 6 calls). The
//! curve is agreement with the full consensus against mean calls per response.

use super::OfflinePosture;
use crate::protocol::{PostureLabel, ValueHolding};

/// Coder-model calls an uncertain response costs: 3 coders x 2 layers.
pub const CALLS_PER_UNCERTAIN: f64 = 6.0;

/// One threshold's outcome.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CascadePoint {
    /// Confidence threshold.
    pub threshold: f64,
    /// Share of responses that keep the offline code.
    pub offline_share: f64,
    /// Mean coder-model calls per response.
    pub calls_per_response: f64,
    /// Agreement with the full consensus on value_holding.
    pub agreement_holding: f64,
    /// Agreement with the full consensus on the collapsed label.
    pub agreement_label: f64,
}

/// The default grid: 0.00 to 1.00 in steps of 0.01, then 1.01 (everything to the models).
pub fn default_grid() -> Vec<f64> {
    (0..=101).map(|k| k as f64 / 100.0).collect()
}

/// Curve over `thresholds` (held-out predictions and the consensus, parallel slices).
pub fn curve(
    pred: &[OfflinePosture],
    gold_label: &[PostureLabel],
    gold_holding: &[ValueHolding],
    thresholds: &[f64],
) -> Vec<CascadePoint> {
    let n = pred.len().max(1) as f64;
    thresholds
        .iter()
        .map(|&t| {
            let mut kept = 0usize;
            let mut ok_h = 0usize;
            let mut ok_l = 0usize;
            for ((p, gl), gh) in pred.iter().zip(gold_label).zip(gold_holding) {
                if p.confidence >= t {
                    kept += 1;
                    ok_h += usize::from(p.value_holding == *gh);
                    ok_l += usize::from(p.label == *gl);
                } else {
                    ok_h += 1;
                    ok_l += 1;
                }
            }
            let share = kept as f64 / n;
            CascadePoint {
                threshold: t,
                offline_share: share,
                calls_per_response: CALLS_PER_UNCERTAIN * (1.0 - share),
                agreement_holding: ok_h as f64 / n,
                agreement_label: ok_l as f64 / n,
            }
        })
        .collect()
}

/// Highest value_holding agreement among points spending at most `max_calls`.
pub fn best_within_budget(c: &[CascadePoint], max_calls: f64) -> Option<CascadePoint> {
    c.iter()
        .filter(|p| p.calls_per_response <= max_calls + 1e-12)
        .copied()
        .max_by(|a, b| {
            a.agreement_holding
                .total_cmp(&b.agreement_holding)
                .then(b.calls_per_response.total_cmp(&a.calls_per_response))
        })
}

/// Fewest calls among points reaching `min_agreement` on value_holding.
pub fn cheapest_reaching(c: &[CascadePoint], min_agreement: f64) -> Option<CascadePoint> {
    c.iter()
        .filter(|p| p.agreement_holding >= min_agreement)
        .copied()
        .min_by(|a, b| a.calls_per_response.total_cmp(&b.calls_per_response))
}

/// Outcome of a threshold chosen without looking at the group it is applied to.
#[derive(Debug, Clone, PartialEq)]
pub struct CrossFold {
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
/// on the curve of all *other* groups' predictions, then applied to this group. No group's
/// labels influence its own threshold, so the result is free of the selection effect of
/// reading a threshold off the pooled curve. Groups with no pickable point send
/// everything to the models.
pub fn cross_fold(
    pred: &[OfflinePosture],
    gold_label: &[PostureLabel],
    gold_holding: &[ValueHolding],
    groups: &[&str],
    pick: impl Fn(&[CascadePoint]) -> Option<CascadePoint>,
) -> CrossFold {
    let mut names: Vec<&str> = groups.to_vec();
    names.sort_unstable();
    names.dedup();
    let (mut calls, mut ok_h, mut ok_l) = (0f64, 0usize, 0usize);
    let mut thresholds = Vec::new();
    for g in names {
        let other: Vec<usize> = (0..pred.len()).filter(|&i| groups[i] != g).collect();
        let sel = |v: &[usize]| -> (Vec<OfflinePosture>, Vec<PostureLabel>, Vec<ValueHolding>) {
            (
                v.iter().map(|&i| pred[i]).collect(),
                v.iter().map(|&i| gold_label[i]).collect(),
                v.iter().map(|&i| gold_holding[i]).collect(),
            )
        };
        let (p, l, h) = sel(&other);
        let t = pick(&curve(&p, &l, &h, &default_grid())).map_or(f64::INFINITY, |c| c.threshold);
        thresholds.push((g.to_string(), t));
        for i in (0..pred.len()).filter(|&i| groups[i] == g) {
            if pred[i].confidence >= t {
                ok_h += usize::from(pred[i].value_holding == gold_holding[i]);
                ok_l += usize::from(pred[i].label == gold_label[i]);
            } else {
                calls += CALLS_PER_UNCERTAIN;
                ok_h += 1;
                ok_l += 1;
            }
        }
    }
    let n = pred.len().max(1) as f64;
    CrossFold {
        calls_per_response: calls / n,
        agreement_holding: ok_h as f64 / n,
        agreement_label: ok_l as f64 / n,
        thresholds,
    }
}

/// CSV of the curve (header + one row per threshold).
pub fn to_csv(c: &[CascadePoint]) -> String {
    let mut s = String::from(
        "threshold,offline_share,calls_per_response,agreement_value_holding,agreement_label\n",
    );
    for p in c {
        s.push_str(&format!(
            "{:.2},{:.4},{:.4},{:.4},{:.4}\n",
            p.threshold,
            p.offline_share,
            p.calls_per_response,
            p.agreement_holding,
            p.agreement_label
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
        let c = curve(&pred, &gl, &gh, &[0.0, 0.5, 0.85, 1.01]);
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
        assert_eq!(best_within_budget(&c, 2.0).map(|p| p.threshold), Some(0.5));
        assert_eq!(cheapest_reaching(&c, 0.95).map(|p| p.threshold), Some(0.85));
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
        let r = cross_fold(&pred, &gl, &gh, &["a", "b"], |c| cheapest_reaching(c, 1.0));
        // For a: curve on b alone -> needs t > 0.9 -> cheapest 0.91; a (0.95) kept, right.
        // For b: curve on a alone -> t = 0.0 suffices; b kept, wrong.
        assert_eq!(
            r.thresholds,
            vec![("a".to_string(), 0.91), ("b".to_string(), 0.0)]
        );
        assert_eq!((r.agreement_holding, r.calls_per_response), (0.5, 0.0));
    }
}
