//! Spearman rank correlation with average ranks for ties (PROTOCOL 7.13).

/// Average (fractional) ranks, 1-based; ties share the mean of their positions.
pub fn average_ranks(x: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..x.len()).collect();
    idx.sort_by(|&a, &b| x[a].total_cmp(&x[b]));
    let mut ranks = vec![0.0; x.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && x[idx[j + 1]] == x[idx[i]] {
            j += 1;
        }
        let r = (i + j) as f64 / 2.0 + 1.0;
        for &k in &idx[i..=j] {
            ranks[k] = r;
        }
        i = j + 1;
    }
    ranks
}

/// Pearson correlation; NaN when fewer than 2 points or a variable is constant.
pub fn pearson(x: &[f64], y: &[f64]) -> f64 {
    let n = x.len();
    if n < 2 || y.len() != n {
        return f64::NAN;
    }
    let mx = x.iter().sum::<f64>() / n as f64;
    let my = y.iter().sum::<f64>() / n as f64;
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for i in 0..n {
        let (dx, dy) = (x[i] - mx, y[i] - my);
        sxy += dx * dy;
        sxx += dx * dx;
        syy += dy * dy;
    }
    if sxx == 0.0 || syy == 0.0 {
        return f64::NAN;
    }
    sxy / (sxx * syy).sqrt()
}

/// Spearman's rho: Pearson correlation of average ranks. NaN (documented) when n < 2, a
/// variable is constant, or any value is NaN.
pub fn spearman(x: &[f64], y: &[f64]) -> f64 {
    if x.iter().chain(y).any(|v| v.is_nan()) {
        return f64::NAN;
    }
    pearson(&average_ranks(x), &average_ranks(y))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn textbook_without_ties() {
        // Wikipedia "Spearman's rank correlation coefficient" example: IQ vs hours of TV,
        // rho = -29/165 = -0.175757...
        let iq = [
            106.0, 100.0, 86.0, 101.0, 99.0, 103.0, 97.0, 113.0, 112.0, 110.0,
        ];
        let tv = [7.0, 27.0, 2.0, 50.0, 28.0, 29.0, 20.0, 12.0, 6.0, 17.0];
        assert!((spearman(&iq, &tv) - (-29.0 / 165.0)).abs() < 1e-12);
    }

    #[test]
    fn ties_use_average_ranks() {
        assert_eq!(
            average_ranks(&[10.0, 20.0, 20.0, 30.0]),
            vec![1.0, 2.5, 2.5, 4.0]
        );
        // x = 1..5, y = [1, 2, 2, 3, 5]: ranks y = [1, 2.5, 2.5, 4, 5];
        // Pearson on ranks = 9.5 / sqrt(10 * 9.5) = 0.974679434...
        let rho = spearman(&[1.0, 2.0, 3.0, 4.0, 5.0], &[1.0, 2.0, 2.0, 3.0, 5.0]);
        assert!((rho - 9.5 / (10.0f64 * 9.5).sqrt()).abs() < 1e-12);
        assert!(spearman(&[1.0, 2.0, 3.0], &[4.0, 4.0, 4.0]).is_nan());
        assert!(spearman(&[1.0], &[2.0]).is_nan());
    }
}
