//! Rates and aggregation (PROTOCOL 7.4-7.6): cell rates, the >= 10-row cell rule, model
//! rates as unweighted means over eligible cells, sample-weighted sensitivity, lab means.
//!
//! Summation order is part of the published output's last bits, so it is fixed here: cells
//! in first-appearance order of the unit's rows (input order), models in sorted order, each
//! mean a left-to-right sum divided by the count. A cell rate is `100 * n_h / n`; the sample-weighted rate is `sum n_h / sum n * 100` (the two
//! operation orders differ in the last bit, e.g. 20/60: 33.333333333333336 vs
//! 33.33333333333333, and the published files use one each).

#![allow(clippy::needless_range_loop)] // five holdings indexed in parallel arrays

use crate::protocol::{Condition, Family};

use super::input::Sample;
use super::labels::{label, Label};

/// Minimum rows for a cell to be eligible (PROTOCOL 7.4).
pub const MIN_CELL_ROWS: usize = 10;

/// Row counts of a set of samples: total and per holding (published column order).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Rows.
    pub n: usize,
    /// Rows per holding.
    pub k: [usize; 5],
}

impl Counts {
    /// Add one sample of holding index `h`.
    pub fn add(&mut self, h: usize) {
        self.n += 1;
        self.k[h] += 1;
    }

    /// Add another count.
    pub fn merge(&mut self, o: &Counts) {
        self.n += o.n;
        for h in 0..5 {
            self.k[h] += o.k[h];
        }
    }

    /// `100 * n_h / n` per holding, the published cell rate (NaN when n = 0).
    pub fn cell_rates(&self) -> [f64; 5] {
        let mut r = [f64::NAN; 5];
        if self.n > 0 {
            for h in 0..5 {
                r[h] = 100.0 * self.k[h] as f64 / self.n as f64;
            }
        }
        r
    }

    /// `n_h / n * 100` per holding, the published pooled (sample-weighted) rate (NaN when n = 0).
    pub fn rates(&self) -> [f64; 5] {
        let mut r = [f64::NAN; 5];
        if self.n > 0 {
            for h in 0..5 {
                r[h] = self.k[h] as f64 / self.n as f64 * 100.0;
            }
        }
        r
    }
}

/// What a rate is computed over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Unit {
    /// One condition.
    Condition(Condition),
    /// One condition family.
    Family(Family),
}

impl Unit {
    /// Whether a condition belongs to the unit.
    pub fn contains(self, c: Condition) -> bool {
        match self {
            Unit::Condition(x) => x == c,
            Unit::Family(f) => c.family() == f,
        }
    }

    /// `condition` or `condition_family`.
    pub fn kind(self) -> &'static str {
        match self {
            Unit::Condition(_) => "condition",
            Unit::Family(_) => "condition_family",
        }
    }

    /// Label of the unit (`G1`, `cache_broken_stated_values`).
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Condition(c) => c.as_str(),
            Unit::Family(f) => f.as_str(),
        }
    }

    /// Family of the unit.
    pub fn family(self) -> Family {
        match self {
            Unit::Condition(c) => c.family(),
            Unit::Family(f) => f,
        }
    }
}

/// Primary model-level rate of one unit.
#[derive(Debug, Clone, PartialEq)]
pub struct UnitRate {
    /// Index into the analysis model list.
    pub model: usize,
    /// The unit.
    pub unit: Unit,
    /// Sum of eligible cells' rows; all rows when no cell is eligible.
    pub n_valid: usize,
    /// Eligible cells.
    pub eligible_cells: usize,
    /// Cells below the row minimum.
    pub excluded_small_cells: usize,
    /// Unweighted mean over eligible cells (NaN when none).
    pub rates: [f64; 5],
    /// Counts over eligible cells (0 when none).
    pub counts: [usize; 5],
    /// Descriptive label (`small_n` when no eligible cell).
    pub label: Label,
    /// Eligible cells' rates, in summation order (for the bootstrap).
    pub cell_rates: Vec<[f64; 5]>,
    /// Counts over all rows of the unit, small cells included (sample-weighted sensitivity).
    pub all: Counts,
}

/// Cells of a unit in first-appearance order with their counts.
pub(crate) fn cells_of<'a>(
    samples: impl Iterator<Item = &'a Sample<'a>>,
) -> Vec<(&'a str, Counts)> {
    let mut cells: Vec<(&str, Counts)> = Vec::new();
    for s in samples {
        let cell = s.c.cell.as_str();
        // Few cells per model: a linear scan keeps first-appearance order without hashing.
        match cells.iter_mut().rev().find(|(c, _)| *c == cell) {
            Some((_, cnt)) => cnt.add(s.h),
            None => {
                let mut cnt = Counts::default();
                cnt.add(s.h);
                cells.push((cell, cnt));
            }
        }
    }
    cells
}

/// Primary rate of `model` over `unit` from that model's samples (in input order).
pub(crate) fn unit_rate<'a>(
    model: usize,
    unit: Unit,
    model_samples: &[&'a Sample<'a>],
) -> UnitRate {
    let cells = cells_of(
        model_samples
            .iter()
            .copied()
            .filter(|s| unit.contains(s.c.condition)),
    );
    let mut all = Counts::default();
    let mut eligible = Counts::default();
    let mut sums = [0.0f64; 5];
    let mut cell_rates = Vec::new();
    let mut n_small = 0;
    for (_, cnt) in &cells {
        all.merge(cnt);
        if cnt.n >= MIN_CELL_ROWS {
            eligible.merge(cnt);
            let r = cnt.cell_rates();
            for h in 0..5 {
                sums[h] += r[h];
            }
            cell_rates.push(r);
        } else {
            n_small += 1;
        }
    }
    let e = cell_rates.len();
    if e == 0 {
        return UnitRate {
            model,
            unit,
            n_valid: all.n,
            eligible_cells: 0,
            excluded_small_cells: n_small,
            rates: [f64::NAN; 5],
            counts: [0; 5],
            label: Label::SmallN,
            cell_rates,
            all,
        };
    }
    let rates = sums.map(|s| s / e as f64);
    UnitRate {
        model,
        unit,
        n_valid: eligible.n,
        eligible_cells: e,
        excluded_small_cells: n_small,
        rates,
        counts: eligible.k,
        label: label(rates[0], rates[1], rates[2]),
        cell_rates,
        all,
    }
}

/// Lab x unit aggregate (PROTOCOL 7.5, 7.6).
#[derive(Debug, Clone, PartialEq)]
pub struct LabRate {
    /// Lab name.
    pub lab: String,
    /// The unit.
    pub unit: Unit,
    /// Models with at least one eligible cell.
    pub n_models: usize,
    /// Sum of those models' `n_valid`.
    pub n_valid: usize,
    /// Unweighted mean of model rates (NaN when no model).
    pub model_mean: [f64; 5],
    /// `sum n_h / sum n_valid * 100` over the lab's models (eligible cells only).
    pub sample_weighted: [f64; 5],
}

/// Aggregate the unit rates of one lab's models (given in sorted model order).
pub(crate) fn lab_rate(lab: &str, unit: Unit, model_rates: &[&UnitRate]) -> LabRate {
    let used: Vec<&&UnitRate> = model_rates
        .iter()
        .filter(|r| r.eligible_cells > 0)
        .collect();
    let mut sums = [0.0; 5];
    let mut pooled = Counts::default();
    for r in &used {
        for h in 0..5 {
            sums[h] += r.rates[h];
        }
        pooled.merge(&Counts {
            n: r.n_valid,
            k: r.counts,
        });
    }
    let m = used.len();
    LabRate {
        lab: lab.to_string(),
        unit,
        n_models: m,
        n_valid: pooled.n,
        model_mean: if m == 0 {
            [f64::NAN; 5]
        } else {
            sums.map(|s| s / m as f64)
        },
        sample_weighted: pooled.rates(),
    }
}

/// Unweighted mean of values, left to right (NaN when empty).
pub fn mean(values: impl IntoIterator<Item = f64>) -> f64 {
    let mut s = 0.0;
    let mut n = 0usize;
    for v in values {
        s += v;
        n += 1;
    }
    if n == 0 {
        f64::NAN
    } else {
        s / n as f64
    }
}
