//! Number formatting that reproduces what the published Python code writes, byte for byte.
//!
//! The published CSVs hold Python `repr` of floats (shortest round-trip digits, fixed
//! notation for decimal exponents in -4..16, otherwise `1e-05` / `1e+16` style), `nan` for
//! NaN, `"%.1f"` of the binary double in the wide and LaTeX tables, and `round(x, 4)` in the
//! lexical tables. Rust's shortest-digit generation (`{:e}`) gives the same digits as Python's
//! repr; only the layout differs, which [`py_float`] fixes. Rust's `{:.N}` rounds the exact
//! binary value with ties to even, as C's printf and Python's `%`-formatting do (tested below),
//! so [`pct1`] and [`py_round`] are thin wrappers.

/// Python `repr(float)`.
pub fn py_float(x: f64) -> String {
    if x.is_nan() {
        return "nan".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if x == 0.0 {
        return if x.is_sign_negative() {
            "-0.0".into()
        } else {
            "0.0".into()
        };
    }
    // `{:e}` gives the shortest round-trip digits: "-1.2345e-7".
    let s = format!("{x:e}");
    let (mant, exp) = s.split_once('e').unwrap_or((s.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (neg, mant) = match mant.strip_prefix('-') {
        Some(m) => (true, m),
        None => (false, mant),
    };
    let digits: String = mant.chars().filter(|c| *c != '.').collect();
    // Value = 0.d1d2... x 10^decpt.
    let decpt = exp + 1;
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    if decpt > -4 && decpt <= 16 {
        let nd = digits.len() as i32;
        if decpt <= 0 {
            out.push_str("0.");
            for _ in 0..(-decpt) {
                out.push('0');
            }
            out.push_str(&digits);
        } else if decpt >= nd {
            out.push_str(&digits);
            for _ in 0..(decpt - nd) {
                out.push('0');
            }
            out.push_str(".0");
        } else {
            out.push_str(&digits[..decpt as usize]);
            out.push('.');
            out.push_str(&digits[decpt as usize..]);
        }
    } else {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        out.push('e');
        out.push(if exp < 0 { '-' } else { '+' });
        out.push_str(&format!("{:02}", exp.abs()));
    }
    out
}

/// Python `"%.1f" % x` (`nan` for NaN).
pub fn pct1(x: f64) -> String {
    fixed(x, 1)
}

/// Python `"%.{d}f" % x`.
pub fn fixed(x: f64, d: usize) -> String {
    if x.is_nan() {
        return "nan".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf".into() } else { "-inf".into() };
    }
    format!("{x:.d$}")
}

/// Python `round(x, d)` for a float: the double nearest to the correctly rounded decimal
/// (ties to even on the exact binary value). NaN stays NaN.
pub fn py_round(x: f64, d: usize) -> f64 {
    if !x.is_finite() {
        return x;
    }
    format!("{x:.d$}").parse().unwrap_or(x)
}

/// Python `f"{n:,}"` for an integer.
pub fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repr_matches_python() {
        // Values and strings from Python 3.11 `repr`.
        let cases: &[(f64, &str)] = &[
            (1.7857142857142858, "1.7857142857142858"),
            (45.00000000000001, "45.00000000000001"),
            (100.0, "100.0"),
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (1e-7, "1e-07"),
            (1e-5, "1e-05"),
            (0.0001, "0.0001"),
            (0.00012345, "0.00012345"),
            (1e16, "1e+16"),
            (1e15, "1000000000000000.0"),
            (123456789012345680.0, "1.2345678901234568e+17"),
            (1.5e300, "1.5e+300"),
            (-2.5, "-2.5"),
            (0.1, "0.1"),
            (5e-324, "5e-324"),
            (f64::NAN, "nan"),
            (f64::INFINITY, "inf"),
        ];
        for (x, want) in cases {
            assert_eq!(py_float(*x), *want, "{x:e}");
        }
    }

    #[test]
    fn percent_formatting_matches_python() {
        // Python: '%.1f' % 1.25 == '1.2', '%.1f' % 73.75 == '73.8', '%.1f' % 0.35 == '0.3'.
        assert_eq!(pct1(1.25), "1.2");
        assert_eq!(pct1(16.25), "16.2");
        assert_eq!(pct1(73.75), "73.8");
        assert_eq!(pct1(0.35), "0.3");
        assert_eq!(pct1(2.675), "2.7");
        assert_eq!(fixed(2.675, 2), "2.67");
        assert_eq!(fixed(0.5, 0), "0");
        assert_eq!(fixed(1.5, 0), "2");
        assert_eq!(fixed(48.89, 0), "49");
        assert_eq!(pct1(f64::NAN), "nan");
    }

    #[test]
    fn round_matches_python() {
        // Python: round(2.675, 2) == 2.67, round(0.125, 2) == 0.12, round(1.00005, 4) == 1.0001,
        // round(0.99995, 4) == 1.0, round(5e-05, 4) == 0.0001.
        assert_eq!(py_round(2.675, 2), 2.67);
        assert_eq!(py_round(0.125, 2), 0.12);
        assert_eq!(py_round(1.00005, 4), 1.0001);
        assert_eq!(py_round(0.99995, 4), 1.0);
        assert_eq!(py_round(0.00005, 4), 0.0001);
        assert_eq!(py_round(442.0 / 887.0, 4), 0.4983);
        assert!(py_round(f64::NAN, 4).is_nan());
    }

    #[test]
    fn thousands_separator() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1680), "1,680");
        assert_eq!(thousands(13906), "13,906");
        assert_eq!(thousands(1234567), "1,234,567");
    }
}
