//! Cohen's kappa between two coders on the units both coded.

/// Kappa and the number of paired units, for two coders' codes (`None` = missing) over
/// categories `0..k`. Kappa is NaN when no unit is paired or expected agreement is 1.
pub fn cohen_kappa(a: &[Option<usize>], b: &[Option<usize>], k: usize) -> (f64, usize) {
    let mut table = vec![0usize; k * k];
    let mut n = 0usize;
    for (x, y) in a.iter().zip(b) {
        if let (Some(x), Some(y)) = (x, y) {
            if *x < k && *y < k {
                table[x * k + y] += 1;
                n += 1;
            }
        }
    }
    if n == 0 {
        return (f64::NAN, 0);
    }
    let nf = n as f64;
    let p_o = (0..k).map(|i| table[i * k + i]).sum::<usize>() as f64 / nf;
    let mut p_e = 0.0;
    for i in 0..k {
        let row: usize = (0..k).map(|j| table[i * k + j]).sum();
        let col: usize = (0..k).map(|j| table[j * k + i]).sum();
        p_e += (row as f64 / nf) * (col as f64 / nf);
    }
    if (1.0 - p_e).abs() < 1e-15 {
        return (f64::NAN, n);
    }
    ((p_o - p_e) / (1.0 - p_e), n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wikipedia_two_by_two() {
        // PEERS-AND-CRATES B.5: 20 yes/yes, 5 yes/no, 10 no/yes, 15 no/no -> kappa 0.4.
        let mut a = Vec::new();
        let mut b = Vec::new();
        for (x, y, c) in [(0, 0, 20), (0, 1, 5), (1, 0, 10), (1, 1, 15)] {
            for _ in 0..c {
                a.push(Some(x));
                b.push(Some(y));
            }
        }
        a.push(None);
        b.push(Some(0));
        let (kappa, n) = cohen_kappa(&a, &b, 2);
        assert_eq!(n, 50);
        assert!((kappa - 0.4).abs() < 1e-12);
        // Krippendorff alpha on the same data is also 0.4 (B.5 cross-check).
        let units: Vec<Vec<Option<usize>>> = a.iter().zip(&b).map(|(x, y)| vec![*x, *y]).collect();
        let alpha = super::super::krippendorff_alpha_nominal(&units, 2);
        assert!((alpha - 0.4).abs() < 1e-6, "{alpha}");
    }

    #[test]
    fn no_pairs_is_nan() {
        assert!(cohen_kappa(&[None], &[Some(1)], 2).0.is_nan());
    }
}
