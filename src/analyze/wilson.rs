//! Wilson 95% score interval (PROTOCOL 7.8), in percent.

/// The z of a two-sided 95% interval, as frozen in PROTOCOL 7.8.
pub const Z95: f64 = 1.959963984540054;

/// Wilson interval for `k` successes in `n` trials, in percent (0-100). `n == 0` gives
/// `(NaN, NaN)`, the documented "no data" value. At `k == 0` and `k == n` the formula's
/// bound is exactly 0 or 100; it is returned as such rather than as the float round-off
/// of the formula (`99.99999999999999`).
pub fn wilson(k: usize, n: usize) -> (f64, f64) {
    if n == 0 {
        return (f64::NAN, f64::NAN);
    }
    let n = n as f64;
    let p = k as f64 / n;
    let z2 = Z95 * Z95;
    let denominator = 1.0 + z2 / n;
    let centre = p + z2 / (2.0 * n);
    let margin = Z95 * ((p * (1.0 - p) + z2 / (4.0 * n)) / n).sqrt();
    let low = if k == 0 {
        0.0
    } else {
        (centre - margin) / denominator * 100.0
    };
    let high = if k as f64 == n {
        100.0
    } else {
        (centre + margin) / denominator * 100.0
    };
    (low, high)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_vectors() {
        // PROTOCOL 7.8 test vectors (percent, 4 decimals).
        let cases = [
            (17, 30, 39.1973, 72.6225),
            (0, 60, 0.0, 6.0172),
            (60, 60, 93.9828, 100.0),
            (34, 178, 14.0032, 25.5045),
            (1, 10, 1.7876, 40.4150),
            (3463, 6948, 48.6664, 51.0171),
        ];
        for (k, n, lo, hi) in cases {
            let (l, h) = wilson(k, n);
            assert!((l - lo).abs() < 5e-5, "{k}/{n} low {l}");
            assert!((h - hi).abs() < 5e-5, "{k}/{n} high {h}");
        }
        // The bounds at 0 and n are exact, not the formula's round-off.
        for n in [1, 10, 60, 6948] {
            assert_eq!(wilson(n, n).1, 100.0, "{n}/{n}");
            assert_eq!(wilson(0, n).0, 0.0, "0/{n}");
        }
        let (l, h) = wilson(0, 0);
        assert!(l.is_nan() && h.is_nan());
    }
}
