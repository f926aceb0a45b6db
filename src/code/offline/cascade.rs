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
}
