//! Cell bootstrap of a model-level rate (PROTOCOL 7.9; FROZEN_CRITERIA 5.3).
//!
//! Reproducing an interval bit for bit needs only this description:
//!
//! 1. Units are model x condition family with at least 3 eligible cells (>= 10 rows).
//!    The cells are taken in the same order as the primary rate (first appearance in the
//!    input rows), each with its five per-cell rates `100 * n_h / n`.
//! 2. Every unit gets its own generator: `ChaCha8Rng::seed_from_u64(seed)` (rand_chacha 0.9,
//!    seed 20260521 by default), so a unit's interval does not depend on which other models
//!    are in the data.
//! 3. For each replicate r = 0..R (R = 10,000), draw k cell indices (k = eligible cells), one
//!    after another: `u = rng.next_u64()`, `index = floor(u * k / 2^64)` (a 128-bit multiply;
//!    no rejection step, bias below k / 2^64). The replicate statistic for each value-holding
//!    is the drawn cells' rates summed left to right in draw order, divided by k. All five
//!    holdings use the same draws.
//! 4. The interval is the 2.5th and 97.5th percentile of the R replicate values, with linear
//!    interpolation between order statistics (numpy's default): sort ascending, position
//!    `p * (R - 1)`, `v[floor] + (v[floor + 1] - v[floor]) * frac`.

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A percentile interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval {
    /// 2.5th percentile.
    pub low: f64,
    /// 97.5th percentile.
    pub high: f64,
}

/// Bootstrap the unweighted mean of per-cell rates. `cells[c][h]` is cell c's rate for
/// holding h. Returns one interval per holding, or `None` when fewer than 3 cells exist
/// or `replicates == 0`.
pub fn cell_bootstrap(cells: &[[f64; 5]], replicates: usize, seed: u64) -> Option<[Interval; 5]> {
    let k = cells.len();
    if k < 3 || replicates == 0 {
        return None;
    }
    // Cells that all hold the same rates give every replicate the same sums (the same
    // value added k times, in the same order), so every percentile is that one replicate's
    // mean: computed once, bit for bit what the 10,000 draws would give. Fully clamped or
    // fully open models are mostly like this.
    let bits = |c: &[f64; 5]| c.map(f64::to_bits);
    if cells.iter().all(|c| bits(c) == bits(&cells[0])) {
        return Some(cells[0].map(|v| {
            let mut acc = 0.0f64;
            for _ in 0..k {
                acc += v;
            }
            let mean = acc / k as f64;
            Interval {
                low: mean,
                high: mean,
            }
        }));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut stats: [Vec<f64>; 5] = Default::default();
    for s in stats.iter_mut() {
        s.reserve(replicates);
    }
    let mut draws = vec![0usize; k];
    for _ in 0..replicates {
        for d in draws.iter_mut() {
            let u = rng.next_u64();
            *d = ((u as u128 * k as u128) >> 64) as usize;
        }
        // Each holding's sum still runs left to right in draw order (same bits as five
        // separate loops); one pass over the draws just does the five at once.
        let mut sum = [0.0f64; 5];
        for &d in &draws {
            for (acc, v) in sum.iter_mut().zip(&cells[d]) {
                *acc += v;
            }
        }
        for (s, acc) in stats.iter_mut().zip(sum) {
            s.push(acc / k as f64);
        }
    }
    let mut out = [Interval {
        low: f64::NAN,
        high: f64::NAN,
    }; 5];
    for (h, s) in stats.iter_mut().enumerate() {
        out[h] = Interval {
            low: percentile_unsorted(s, 0.025),
            high: percentile_unsorted(s, 0.975),
        };
    }
    Some(out)
}

/// [`percentile`] of values in any order, by selection instead of a full sort: the two
/// order statistics it interpolates between are the same numbers a sort would put there,
/// so the result is bit for bit the same (a test checks), at a fraction of the cost.
/// Reorders `values`.
pub fn percentile_unsorted(values: &mut [f64], p: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let (lo, frac) = position(values.len(), p);
    if lo + 1 >= values.len() {
        return values
            .iter()
            .copied()
            .max_by(f64::total_cmp)
            .unwrap_or(f64::NAN);
    }
    let (_, at, right) = values.select_nth_unstable_by(lo, f64::total_cmp);
    let a = *at;
    let b = right.iter().copied().min_by(f64::total_cmp).unwrap_or(a);
    a + (b - a) * frac
}

/// numpy's linear-interpolation position `p * (n - 1)`: the lower order statistic's index
/// and the fraction towards the next one (`n` > 0).
fn position(n: usize, p: f64) -> (usize, f64) {
    let pos = p * (n - 1) as f64;
    let lo = pos.floor() as usize;
    (lo, pos - lo as f64)
}

/// Linear-interpolation percentile of sorted values (`p` in 0..=1); NaN when empty.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let (lo, frac) = position(sorted.len(), p);
    if lo + 1 >= sorted.len() {
        return sorted[sorted.len() - 1];
    }
    sorted[lo] + (sorted[lo + 1] - sorted[lo]) * frac
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_across_runs_and_bounded() {
        let cells = [
            [10.0, 0.0, 90.0, 0.0, 0.0],
            [50.0, 10.0, 40.0, 0.0, 0.0],
            [30.0, 30.0, 40.0, 0.0, 0.0],
        ];
        let a = cell_bootstrap(&cells, 10_000, 20260521).unwrap();
        let b = cell_bootstrap(&cells, 10_000, 20260521).unwrap();
        assert_eq!(a, b);
        assert!(a[0].low >= 10.0 && a[0].high <= 50.0 && a[0].low < a[0].high);
        assert_eq!(
            a[3],
            Interval {
                low: 0.0,
                high: 0.0
            }
        );
        // With more distinct cells the interval depends on the seed.
        let six: Vec<[f64; 5]> = [3.1, 17.4, 22.9, 41.0, 55.5, 80.2]
            .iter()
            .map(|v| [*v, 0.0, 0.0, 0.0, 0.0])
            .collect();
        let x = cell_bootstrap(&six, 101, 20260521).unwrap();
        let y = cell_bootstrap(&six, 101, 1).unwrap();
        assert_ne!(x[0], y[0]);
        let pinned = cell_bootstrap(&six, 10_000, 20260521).unwrap();
        // Regression pin (recorded from this implementation, not an external value): the
        // ChaCha8 stream, the integer index mapping and IEEE sums are the same on every
        // platform, so this must never change unless the documented procedure changes.
        assert_eq!(
            pinned[0],
            Interval {
                low: 17.515833333333333,
                high: 57.38333333333333
            }
        );
    }

    #[test]
    fn selection_percentile_equals_the_sorted_one() {
        let mut x: u64 = 7;
        for n in [1usize, 2, 3, 10, 101, 10_000] {
            let v: Vec<f64> = (0..n)
                .map(|_| {
                    x = x
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    // Few distinct values, so ties are common (as with bootstrap means).
                    ((x >> 33) % 97) as f64 / 7.0
                })
                .collect();
            let mut sorted = v.clone();
            sorted.sort_by(f64::total_cmp);
            for p in [0.0, 0.025, 0.25, 0.5, 0.975, 1.0] {
                let mut w = v.clone();
                assert_eq!(
                    percentile_unsorted(&mut w, p).to_bits(),
                    percentile(&sorted, p).to_bits(),
                    "n={n} p={p}"
                );
            }
        }
    }

    /// The module doc's procedure, written out plainly (sorted percentiles, one holding at
    /// a time), as the reference for the shortcut and the one-pass sums.
    fn by_the_doc(cells: &[[f64; 5]], replicates: usize, seed: u64) -> [Interval; 5] {
        let k = cells.len();
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let draws: Vec<Vec<usize>> = (0..replicates)
            .map(|_| {
                (0..k)
                    .map(|_| ((rng.next_u64() as u128 * k as u128) >> 64) as usize)
                    .collect()
            })
            .collect();
        std::array::from_fn(|h| {
            let mut v: Vec<f64> = draws
                .iter()
                .map(|d| d.iter().fold(0.0, |acc, &i| acc + cells[i][h]) / k as f64)
                .collect();
            v.sort_by(f64::total_cmp);
            Interval {
                low: percentile(&v, 0.025),
                high: percentile(&v, 0.975),
            }
        })
    }

    #[test]
    fn equal_cells_shortcut_is_bit_identical_to_the_draws() {
        // 0.1 and 1/3 do not sum exactly, so the shortcut must add k times as the draws do.
        for (cell, k) in [
            ([0.1, 33.333333333333336, 0.0, 100.0, 66.66666666666667], 3),
            ([0.1, 10.0, 70.0, 0.7, 19.2], 7),
        ] {
            let cells = vec![cell; k];
            let fast = cell_bootstrap(&cells, 2_000, 20260521).unwrap();
            assert_eq!(fast, by_the_doc(&cells, 2_000, 20260521));
            assert_ne!(
                fast[0].low, 0.1,
                "0.1 added {k} times and divided is not 0.1"
            );
        }
        // Some holdings equal in every cell, others not.
        let mixed = [
            [0.1, 0.0, 99.9, 1.0 / 3.0, 0.0],
            [0.1, 5.0, 94.9, 1.0 / 3.0, 0.0],
            [0.1, 2.5, 97.4, 1.0 / 3.0, 0.0],
            [0.1, 7.5, 92.4, 1.0 / 3.0, 0.0],
        ];
        assert_eq!(
            cell_bootstrap(&mixed, 2_000, 9).unwrap(),
            by_the_doc(&mixed, 2_000, 9)
        );
        // Unequal cells go through the draws and match the plain procedure too.
        let cells = [
            [0.1, 0.0, 99.9, 0.0, 0.0],
            [0.1, 0.0, 99.9, 0.0, 0.0],
            [0.2, 0.0, 99.8, 0.0, 0.0],
        ];
        assert_eq!(
            cell_bootstrap(&cells, 2_000, 5).unwrap(),
            by_the_doc(&cells, 2_000, 5)
        );
    }

    #[test]
    fn needs_three_cells() {
        assert!(cell_bootstrap(&[[1.0; 5], [2.0; 5]], 100, 1).is_none());
    }

    #[test]
    fn percentile_interpolates_like_numpy() {
        // numpy.percentile([1,2,3,4], 25) == 1.75
        assert_eq!(percentile(&[1.0, 2.0, 3.0, 4.0], 0.25), 1.75);
        assert_eq!(percentile(&[5.0], 0.975), 5.0);
    }
}
