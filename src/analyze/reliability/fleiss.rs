//! Fleiss' kappa (Fleiss 1971) on a subjects x categories count table with the same number
//! of ratings per subject. Units with a different number of ratings are the caller's to drop
//! (the analysis keeps only units coded by every coder, as statsmodels and R `irr` do).

/// Fleiss' kappa with its parts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FleissResult {
    /// Kappa; NaN when undefined (no units, fewer than 2 raters, or P_e = 1).
    pub kappa: f64,
    /// Mean observed agreement P-bar.
    pub p_bar: f64,
    /// Expected agreement P_e-bar.
    pub p_e: f64,
}

/// Kappa of `counts[i][j]` = raters putting subject i in category j. Rows whose total
/// differs from the first row's total are ignored.
pub fn fleiss_kappa(counts: &[Vec<usize>]) -> FleissResult {
    let nan = FleissResult {
        kappa: f64::NAN,
        p_bar: f64::NAN,
        p_e: f64::NAN,
    };
    let Some(first) = counts.first() else {
        return nan;
    };
    let m: usize = first.iter().sum();
    let k = first.len();
    let rows: Vec<&Vec<usize>> = counts
        .iter()
        .filter(|r| r.len() == k && r.iter().sum::<usize>() == m)
        .collect();
    if m < 2 || rows.is_empty() {
        return nan;
    }
    let n = rows.len() as f64;
    let mf = m as f64;
    let mut p_j = vec![0.0; k];
    let mut p_bar = 0.0;
    for r in &rows {
        let mut s = 0.0;
        for (j, &c) in r.iter().enumerate() {
            p_j[j] += c as f64;
            s += (c * c) as f64;
        }
        p_bar += (s - mf) / (mf * (mf - 1.0));
    }
    p_bar /= n;
    let p_e: f64 = p_j.iter().map(|t| (t / (n * mf)).powi(2)).sum();
    let kappa = if (1.0 - p_e).abs() < 1e-15 {
        f64::NAN
    } else {
        (p_bar - p_e) / (1.0 - p_e)
    };
    FleissResult { kappa, p_bar, p_e }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(ratings: &[[usize; 6]], k: usize) -> Vec<Vec<usize>> {
        ratings
            .iter()
            .map(|r| {
                let mut c = vec![0; k];
                for &v in r {
                    c[v - 1] += 1;
                }
                c
            })
            .collect()
    }

    #[test]
    fn fleiss_1971_diagnoses() {
        // PEERS-AND-CRATES B.3 (R irr::diagnoses): kappa = 0.4302445.
        let d: [[usize; 6]; 30] = [
            [4, 4, 4, 4, 4, 4],
            [2, 2, 2, 5, 5, 5],
            [2, 3, 3, 3, 3, 5],
            [5, 5, 5, 5, 5, 5],
            [2, 2, 2, 4, 4, 4],
            [1, 1, 3, 3, 3, 3],
            [3, 3, 3, 3, 5, 5],
            [1, 1, 3, 3, 3, 4],
            [1, 1, 4, 4, 4, 4],
            [5, 5, 5, 5, 5, 5],
            [1, 4, 4, 4, 4, 4],
            [1, 2, 4, 4, 4, 4],
            [2, 2, 2, 3, 3, 3],
            [1, 4, 4, 4, 4, 4],
            [2, 2, 4, 4, 4, 5],
            [3, 3, 3, 3, 3, 5],
            [1, 1, 1, 4, 5, 5],
            [1, 1, 1, 1, 1, 2],
            [2, 2, 4, 4, 4, 4],
            [1, 3, 3, 5, 5, 5],
            [5, 5, 5, 5, 5, 5],
            [2, 4, 4, 4, 4, 4],
            [2, 2, 4, 5, 5, 5],
            [1, 1, 4, 4, 4, 4],
            [1, 4, 4, 4, 4, 5],
            [2, 2, 2, 2, 2, 4],
            [1, 1, 1, 1, 5, 5],
            [2, 2, 4, 4, 4, 4],
            [1, 3, 3, 3, 3, 3],
            [5, 5, 5, 5, 5, 5],
        ];
        let r = fleiss_kappa(&table(&d, 5));
        assert!((r.kappa - 0.4302445).abs() < 1e-6, "{}", r.kappa);
        assert!((r.p_bar - 0.55556).abs() < 1e-5);
        assert!((r.p_e - 0.21994).abs() < 1e-5);
    }

    #[test]
    fn wikipedia_example() {
        // PEERS-AND-CRATES B.4: kappa = 0.209931, P-bar 0.378, P_e 0.213.
        let t: Vec<Vec<usize>> = vec![
            vec![0, 0, 0, 0, 14],
            vec![0, 2, 6, 4, 2],
            vec![0, 0, 3, 5, 6],
            vec![0, 3, 9, 2, 0],
            vec![2, 2, 8, 1, 1],
            vec![7, 7, 0, 0, 0],
            vec![3, 2, 6, 3, 0],
            vec![2, 5, 3, 2, 2],
            vec![6, 5, 2, 1, 0],
            vec![0, 2, 2, 3, 7],
        ];
        let r = fleiss_kappa(&t);
        assert!((r.kappa - 0.209931).abs() < 1e-6, "{}", r.kappa);
        assert!((r.p_bar - 0.378).abs() < 5e-4);
        assert!((r.p_e - 0.213).abs() < 5e-4);
        // statsmodels check: [[7,1],[3,5]] -> 0.161905
        let r2 = fleiss_kappa(&[vec![7, 1], vec![3, 5]]);
        assert!((r2.kappa - 0.161905).abs() < 1e-6);
    }

    #[test]
    fn degenerate_inputs_are_nan() {
        assert!(fleiss_kappa(&[]).kappa.is_nan());
        assert!(fleiss_kappa(&[vec![3, 0], vec![3, 0]]).kappa.is_nan());
    }
}
