//! Krippendorff's alpha for nominal data with missing values (Krippendorff 2011).
//!
//! Coincidence matrix from every unit with at least two values: each ordered pair of values
//! from different coders adds 1/(m_u - 1). alpha = 1 - D_o / D_e with the nominal metric.

/// Alpha for `units[u][c]` = coder c's category for unit u (`None` = missing); categories
/// are indices `0..n_categories`. NaN when fewer than two pairable values or no variation.
pub fn krippendorff_alpha_nominal(units: &[Vec<Option<usize>>], n_categories: usize) -> f64 {
    let k = n_categories;
    let mut o = vec![0.0f64; k * k];
    for unit in units {
        let vals: Vec<usize> = unit.iter().flatten().copied().filter(|&v| v < k).collect();
        let m = vals.len();
        if m < 2 {
            continue;
        }
        let w = 1.0 / (m as f64 - 1.0);
        for (i, &a) in vals.iter().enumerate() {
            for (j, &b) in vals.iter().enumerate() {
                if i != j {
                    o[a * k + b] += w;
                }
            }
        }
    }
    let n_c: Vec<f64> = (0..k).map(|c| (0..k).map(|b| o[c * k + b]).sum()).collect();
    let n: f64 = n_c.iter().sum();
    if n < 2.0 {
        return f64::NAN;
    }
    let observed_disagreement: f64 = (0..k)
        .flat_map(|a| (0..k).map(move |b| (a, b)))
        .filter(|(a, b)| a != b)
        .map(|(a, b)| o[a * k + b])
        .sum();
    let mut expected = 0.0;
    for a in 0..k {
        for b in 0..k {
            if a != b {
                expected += n_c[a] * n_c[b];
            }
        }
    }
    if expected == 0.0 {
        return f64::NAN;
    }
    1.0 - (n - 1.0) * observed_disagreement / expected
}

#[cfg(test)]
mod tests {
    use super::*;

    fn by_units(coders: &[&[Option<usize>]]) -> Vec<Vec<Option<usize>>> {
        (0..coders[0].len())
            .map(|u| coders.iter().map(|c| c[u]).collect())
            .collect()
    }

    #[test]
    fn canonical_example_with_missing() {
        // PEERS-AND-CRATES B.1 (Krippendorff 2011): alpha nominal = 0.743421.
        let n = None;
        let s = Some;
        let a = [
            s(1),
            s(2),
            s(3),
            s(3),
            s(2),
            s(1),
            s(4),
            s(1),
            s(2),
            n,
            n,
            n,
        ];
        let b = [
            s(1),
            s(2),
            s(3),
            s(3),
            s(2),
            s(2),
            s(4),
            s(1),
            s(2),
            s(5),
            n,
            s(3),
        ];
        let c = [
            n,
            s(3),
            s(3),
            s(3),
            s(2),
            s(3),
            s(4),
            s(2),
            s(2),
            s(5),
            s(1),
            n,
        ];
        let d = [
            s(1),
            s(2),
            s(3),
            s(3),
            s(2),
            s(4),
            s(4),
            s(1),
            s(2),
            s(5),
            s(1),
            n,
        ];
        let alpha = krippendorff_alpha_nominal(&by_units(&[&a, &b, &c, &d]), 6);
        assert!((alpha - 0.743421).abs() < 1e-6, "{alpha}");
    }

    #[test]
    fn binary_two_coders() {
        // PEERS-AND-CRATES B.2: alpha = 0.095238.
        let a: Vec<Option<usize>> = [0, 1, 0, 0, 0, 0, 0, 0, 1, 0]
            .iter()
            .map(|&v| Some(v))
            .collect();
        let b: Vec<Option<usize>> = [1, 1, 1, 0, 0, 1, 0, 0, 0, 0]
            .iter()
            .map(|&v| Some(v))
            .collect();
        let alpha = krippendorff_alpha_nominal(&by_units(&[&a, &b]), 2);
        assert!((alpha - 0.095238).abs() < 1e-6, "{alpha}");
    }

    #[test]
    fn degenerate_is_nan() {
        assert!(krippendorff_alpha_nominal(&[], 3).is_nan());
        assert!(krippendorff_alpha_nominal(&[vec![Some(1), Some(1)]], 3).is_nan());
    }
}
