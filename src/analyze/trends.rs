//! Version trends (PROTOCOL 7.13, exploratory): per model family (metadata `family`, else
//! the manifest family), the models with an eligible primary rate for the metric's family,
//! ordered by release date (models without a date are left out, so the order never rests
//! on a guessed version label); families with >= 3 such versions get Spearman's rho between
//! version order (1..n) and the rate. Families are never pooled.

use crate::protocol::Family;

use super::rates::Unit;
use super::spearman::spearman;
use super::table::{Table, Value};
use super::{Analysis, Part};

const METRICS: [(&str, Family, usize); 3] = [
    (
        "cache_broken_owned_rate",
        Family::CacheBrokenStatedValues,
        0,
    ),
    ("clamping_rate", Family::CacheBrokenStatedValues, 2),
    ("normative_wish_owned_rate", Family::WorldChangePrompts, 0),
];

pub(crate) fn build(a: &Analysis) -> Part {
    let mut t = Table::new(
        "version_trends",
        &[
            "model_family",
            "metric",
            "n_versions",
            "models",
            "release_dates",
            "rates",
            "ordering",
            "spearman_rho",
            "status",
        ],
    );
    let mut fams: Vec<&str> = a.models.iter().map(|m| m.family.as_str()).collect();
    fams.sort();
    fams.dedup();
    for fam in fams {
        for (metric, family, h) in METRICS {
            let mut pts: Vec<(&str, &str, f64)> = a
                .model_families
                .iter()
                .filter(|r| r.unit == Unit::Family(family) && r.eligible_cells > 0)
                .map(|r| &a.models[r.model])
                .zip(
                    a.model_families
                        .iter()
                        .filter(|r| r.unit == Unit::Family(family) && r.eligible_cells > 0),
                )
                .filter(|(m, _)| m.family == fam && !m.release_date.is_empty())
                .map(|(m, r)| (m.release_date.as_str(), m.model.as_str(), r.rates[h]))
                .collect();
            pts.sort_by(|x, y| (x.0, x.1).cmp(&(y.0, y.1)));
            if pts.is_empty() {
                continue;
            }
            let n = pts.len();
            let order: Vec<f64> = (1..=n).map(|i| i as f64).collect();
            let rates: Vec<f64> = pts.iter().map(|p| p.2).collect();
            let (rho, status) = if n >= 3 {
                let r = spearman(&order, &rates);
                (
                    r,
                    if r.is_nan() {
                        "exploratory; rho undefined (constant rate)"
                    } else {
                        "exploratory"
                    },
                )
            } else {
                (f64::NAN, "fewer than 3 dated versions: no trend statistic")
            };
            t.push(vec![
                fam.into(),
                metric.into(),
                n.into(),
                pts.iter().map(|p| p.1).collect::<Vec<_>>().join("|").into(),
                pts.iter().map(|p| p.0).collect::<Vec<_>>().join("|").into(),
                rates
                    .iter()
                    .map(|x| super::pyfmt::py_float(*x))
                    .collect::<Vec<_>>()
                    .join("|")
                    .into(),
                "release_date".into(),
                Value::Float(rho),
                status.into(),
            ]);
        }
    }
    Part::tables(vec![t])
}
