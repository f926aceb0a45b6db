//! Linear models over [`SparseVec`] features: a multinomial logistic regression (posture)
//! and a set of independent logistic regressions (one per topic), trained by plain SGD with
//! L2 decay, a fixed seed, fixed epochs and a deterministic shuffle; plus the compact
//! serialised form (per-row int8 quantisation, base64) that ships in `coders/`.
//!
//! Why this shape: a linear model is fast (one sparse dot product per class), has no
//! dependency, and trains bit-for-bit identically from identical input on one platform
//! (single thread, fixed order, no hash-map iteration). Quantising to int8 keeps the file a
//! few hundred KB; evaluation always runs the *quantised* model, so reported numbers are
//! those of what ships.

use serde::{Deserialize, Serialize};

use super::features::SparseVec;

/// Training hyperparameters (fixed a priori, recorded in the model file).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainParams {
    /// Passes over the data.
    pub epochs: u32,
    /// Initial learning rate; epoch `e` uses `eta0 / (1 + e/2)`.
    pub eta0: f64,
    /// L2 strength per step.
    pub lambda: f64,
    /// Shuffle seed.
    pub seed: u64,
}

/// Dense linear map: `n_out` rows of `dim` weights plus a bias per row.
#[derive(Debug, Clone, PartialEq)]
pub struct Linear {
    /// Outputs.
    pub n_out: usize,
    /// Input width.
    pub dim: usize,
    /// Row-major weights (`n_out * dim`).
    pub w: Vec<f32>,
    /// Bias per output.
    pub b: Vec<f32>,
}

impl Linear {
    fn zeros(n_out: usize, dim: usize) -> Self {
        Linear {
            n_out,
            dim,
            w: vec![0.0; n_out * dim],
            b: vec![0.0; n_out],
        }
    }

    /// Raw scores `w x + b`.
    pub fn scores(&self, x: &SparseVec) -> Vec<f64> {
        let mut s: Vec<f64> = self.b.iter().map(|&b| b as f64).collect();
        for (o, so) in s.iter_mut().enumerate() {
            let row = &self.w[o * self.dim..(o + 1) * self.dim];
            let mut acc = 0f64;
            for (&i, &v) in x.idx.iter().zip(&x.val) {
                if let Some(w) = row.get(i as usize) {
                    acc += (*w as f64) * (v as f64);
                }
            }
            *so += acc;
        }
        s
    }

    /// Softmax probabilities over the rows.
    pub fn softmax(&self, x: &SparseVec) -> Vec<f64> {
        softmax(&self.scores(x))
    }

    /// Independent sigmoid probability per row.
    pub fn sigmoids(&self, x: &SparseVec) -> Vec<f64> {
        self.scores(x).into_iter().map(sigmoid).collect()
    }
}

fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

fn softmax(s: &[f64]) -> Vec<f64> {
    let m = s.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = s.iter().map(|v| (v - m).exp()).collect();
    let z: f64 = e.iter().sum();
    e.into_iter().map(|v| v / z).collect()
}

/// splitmix64: a tiny, stable PRNG so the shuffle never changes with a crate upgrade.
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn shuffle(order: &mut [usize], state: &mut u64) {
    for i in (1..order.len()).rev() {
        let j = (splitmix(state) % (i as u64 + 1)) as usize;
        order.swap(i, j);
    }
}

/// Shared SGD loop. `grad(x_index, probs_out)` fills the per-output gradient of the loss
/// w.r.t. the scores given current scores; weights are kept as `scale * v` so L2 decay is
/// O(1) per step.
fn sgd(
    xs: &[SparseVec],
    n_out: usize,
    dim: usize,
    p: &TrainParams,
    mut grad: impl FnMut(usize, &[f64], &mut [f64]),
) -> Linear {
    let mut m = Linear::zeros(n_out, dim);
    let mut v: Vec<f64> = vec![0.0; n_out * dim];
    let mut b: Vec<f64> = vec![0.0; n_out];
    let mut scale = 1.0f64;
    let mut order: Vec<usize> = (0..xs.len()).collect();
    let mut rng = p.seed;
    let mut scores = vec![0.0f64; n_out];
    let mut g = vec![0.0f64; n_out];
    for epoch in 0..p.epochs {
        shuffle(&mut order, &mut rng);
        let eta = p.eta0 / (1.0 + epoch as f64 / 2.0);
        for &k in &order {
            let x = &xs[k];
            for o in 0..n_out {
                let row = &v[o * dim..(o + 1) * dim];
                let mut acc = 0f64;
                for (&i, &val) in x.idx.iter().zip(&x.val) {
                    acc += row[i as usize] * val as f64;
                }
                scores[o] = acc * scale + b[o];
            }
            grad(k, &scores, &mut g);
            scale *= 1.0 - eta * p.lambda;
            for o in 0..n_out {
                if g[o] == 0.0 {
                    continue;
                }
                let step = eta * g[o] / scale;
                let row = &mut v[o * dim..(o + 1) * dim];
                for (&i, &val) in x.idx.iter().zip(&x.val) {
                    row[i as usize] -= step * val as f64;
                }
                b[o] -= eta * g[o];
            }
            if scale < 1e-6 {
                for w in v.iter_mut() {
                    *w *= scale;
                }
                scale = 1.0;
            }
        }
    }
    for (dst, src) in m.w.iter_mut().zip(&v) {
        *dst = (src * scale) as f32;
    }
    for (dst, src) in m.b.iter_mut().zip(&b) {
        *dst = *src as f32;
    }
    m
}

/// Multinomial logistic regression; `ys[i] < n_classes`. The same as
/// [`train_softmax_soft`] with one-hot targets and unit weights.
pub fn train_softmax(
    xs: &[SparseVec],
    ys: &[usize],
    n_classes: usize,
    dim: usize,
    p: &TrainParams,
) -> Linear {
    let targets: Vec<Vec<f64>> = ys
        .iter()
        .map(|&y| {
            (0..n_classes)
                .map(|c| if c == y { 1.0 } else { 0.0 })
                .collect()
        })
        .collect();
    train_softmax_soft(xs, &targets, &vec![1.0; ys.len()], n_classes, dim, p)
}

/// Multinomial logistic regression on soft targets (`targets[i]` sums to 1) with a
/// weight per sample (mean 1 keeps the step size of [`train_softmax`]).
pub fn train_softmax_soft(
    xs: &[SparseVec],
    targets: &[Vec<f64>],
    weights: &[f64],
    n_classes: usize,
    dim: usize,
    p: &TrainParams,
) -> Linear {
    sgd(xs, n_classes, dim, p, |k, s, g| {
        let pr = softmax(s);
        for c in 0..n_classes {
            g[c] = weights[k] * (pr[c] - targets[k][c]);
        }
    })
}

/// Independent logistic regressions; `ys[i][o]` is the target of output `o`. The same as
/// [`train_sigmoids_soft`] with 0/1 targets and unit weights.
pub fn train_sigmoids(
    xs: &[SparseVec],
    ys: &[Vec<bool>],
    n_out: usize,
    dim: usize,
    p: &TrainParams,
) -> Linear {
    let targets: Vec<Vec<f64>> = ys
        .iter()
        .map(|y| y.iter().map(|&b| if b { 1.0 } else { 0.0 }).collect())
        .collect();
    train_sigmoids_soft(xs, &targets, &vec![1.0; ys.len()], n_out, dim, p)
}

/// Independent logistic regressions on targets in [0, 1] (`targets[i][o]`) with a weight
/// per sample.
pub fn train_sigmoids_soft(
    xs: &[SparseVec],
    targets: &[Vec<f64>],
    weights: &[f64],
    n_out: usize,
    dim: usize,
    p: &TrainParams,
) -> Linear {
    sgd(xs, n_out, dim, p, |k, s, g| {
        for o in 0..n_out {
            g[o] = weights[k] * (sigmoid(s[o]) - targets[k][o]);
        }
    })
}

/// Serialised linear map: per-row scale, int8 weights as base64, f32 biases.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuantLinear {
    /// Outputs.
    pub n_out: usize,
    /// Input width.
    pub dim: usize,
    /// Bias per row.
    pub bias: Vec<f32>,
    /// Dequantisation factor per row (`w = q * scale`).
    pub scale: Vec<f32>,
    /// Row weights, int8, base64 (standard alphabet, padded).
    pub weights_b64: Vec<String>,
}

impl QuantLinear {
    /// Quantise each row to int8 with a per-row scale of `max|w| / 127`.
    pub fn from_linear(m: &Linear) -> Self {
        let mut scale = Vec::with_capacity(m.n_out);
        let mut rows = Vec::with_capacity(m.n_out);
        for o in 0..m.n_out {
            let row = &m.w[o * m.dim..(o + 1) * m.dim];
            let max = row.iter().fold(0f32, |a, w| a.max(w.abs()));
            let s = if max > 0.0 { max / 127.0 } else { 1.0 };
            let q: Vec<u8> = row
                .iter()
                .map(|w| ((w / s).round().clamp(-127.0, 127.0) as i8) as u8)
                .collect();
            scale.push(s);
            rows.push(b64_encode(&q));
        }
        QuantLinear {
            n_out: m.n_out,
            dim: m.dim,
            bias: m.b.clone(),
            scale,
            weights_b64: rows,
        }
    }

    /// Dequantise; errors name the row that is malformed.
    pub fn to_linear(&self) -> Result<Linear, String> {
        if self.bias.len() != self.n_out
            || self.scale.len() != self.n_out
            || self.weights_b64.len() != self.n_out
        {
            return Err(format!(
                "expected {} rows of bias/scale/weights",
                self.n_out
            ));
        }
        let mut w = Vec::with_capacity(self.n_out * self.dim);
        for (o, r) in self.weights_b64.iter().enumerate() {
            let q = b64_decode(r).ok_or_else(|| format!("row {o}: invalid base64"))?;
            if q.len() != self.dim {
                return Err(format!(
                    "row {o}: {} weights, expected {}",
                    q.len(),
                    self.dim
                ));
            }
            w.extend(q.into_iter().map(|b| (b as i8) as f32 * self.scale[o]));
        }
        Ok(Linear {
            n_out: self.n_out,
            dim: self.dim,
            w,
            b: self.bias.clone(),
        })
    }
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard padded base64.
pub fn b64_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for ch in data.chunks(3) {
        let n = (ch[0] as u32) << 16
            | (*ch.get(1).unwrap_or(&0) as u32) << 8
            | *ch.get(2).unwrap_or(&0) as u32;
        out.push(B64[(n >> 18) as usize & 63] as char);
        out.push(B64[(n >> 12) as usize & 63] as char);
        out.push(if ch.len() > 1 {
            B64[(n >> 6) as usize & 63] as char
        } else {
            '='
        });
        out.push(if ch.len() > 2 {
            B64[n as usize & 63] as char
        } else {
            '='
        });
    }
    out
}

/// Decode standard padded base64; `None` on any invalid input.
pub fn b64_decode(s: &str) -> Option<Vec<u8>> {
    let s = s.as_bytes();
    if !s.len().is_multiple_of(4) {
        return None;
    }
    let val = |c: u8| -> Option<u32> { B64.iter().position(|&b| b == c).map(|p| p as u32) };
    let mut out = Vec::with_capacity(s.len() / 4 * 3);
    for ch in s.chunks(4) {
        let pad = ch.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 {
            return None;
        }
        let mut n = 0u32;
        for (i, &c) in ch.iter().enumerate() {
            let d = if i >= 4 - pad { 0 } else { val(c)? };
            n = n << 6 | d;
        }
        out.push((n >> 16) as u8);
        if pad < 2 {
            out.push((n >> 8) as u8);
        }
        if pad < 1 {
            out.push(n as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sv(pairs: &[(u32, f32)]) -> SparseVec {
        SparseVec {
            idx: pairs.iter().map(|p| p.0).collect(),
            val: pairs.iter().map(|p| p.1).collect(),
        }
    }

    fn params() -> TrainParams {
        TrainParams {
            epochs: 20,
            eta0: 0.5,
            lambda: 1e-4,
            seed: 7,
        }
    }

    #[test]
    fn base64_round_trip() {
        for n in 0..10u8 {
            let data: Vec<u8> = (0..n)
                .map(|i| i.wrapping_mul(37).wrapping_add(200))
                .collect();
            assert_eq!(b64_decode(&b64_encode(&data)).as_deref(), Some(&data[..]));
        }
        assert_eq!(b64_encode(b"Man"), "TWFu");
        assert_eq!(b64_encode(b"Ma"), "TWE=");
        assert_eq!(b64_decode("T!Fu"), None);
    }

    #[test]
    fn softmax_learns_the_obvious_rule_and_is_deterministic() {
        // Feature 0 -> class 0, feature 1 -> class 1, feature 2 -> class 2; 4 is noise.
        let mut xs = Vec::new();
        let mut ys = Vec::new();
        for k in 0..30 {
            let c = k % 3;
            xs.push(sv(&[(c as u32, 1.0), (4, 0.5)]));
            ys.push(c);
        }
        let m = train_softmax(&xs, &ys, 3, 5, &params());
        for c in 0..3 {
            let p = m.softmax(&sv(&[(c as u32, 1.0)]));
            let best = (0..3).max_by(|a, b| p[*a].total_cmp(&p[*b])).unwrap();
            assert_eq!(best, c);
            assert!(p[c] > 0.8, "{p:?}");
        }
        let m2 = train_softmax(&xs, &ys, 3, 5, &params());
        assert_eq!(m, m2);
        let q = QuantLinear::from_linear(&m);
        let back = q.to_linear().unwrap();
        for (a, b) in m.w.iter().zip(&back.w) {
            assert!((a - b).abs() <= q.scale.iter().cloned().fold(0.0, f32::max));
        }
    }

    #[test]
    fn soft_targets_are_learned_as_shares() {
        // One constant feature, every target 1/4 : 3/4. Cross-entropy is smallest where the
        // predicted distribution equals the target, so the model must land near it.
        let xs: Vec<SparseVec> = (0..40).map(|_| sv(&[(0, 1.0)])).collect();
        let targets = vec![vec![0.25, 0.75]; 40];
        let m = train_softmax_soft(&xs, &targets, &[1.0; 40], 2, 1, &params());
        let p = m.softmax(&sv(&[(0, 1.0)]));
        assert!((p[0] - 0.25).abs() < 0.03, "{p:?}");
    }

    #[test]
    fn soft_sigmoid_targets_are_learned_as_shares() {
        // Output 0 always 2/3, output 1 always 0: the fitted probabilities must sit there.
        let xs: Vec<SparseVec> = (0..40).map(|_| sv(&[(0, 1.0)])).collect();
        let targets = vec![vec![2.0 / 3.0, 0.0]; 40];
        let m = train_sigmoids_soft(&xs, &targets, &[1.0; 40], 2, 1, &params());
        let p = m.sigmoids(&sv(&[(0, 1.0)]));
        assert!((p[0] - 2.0 / 3.0).abs() < 0.03, "{p:?}");
        assert!(p[1] < 0.1, "{p:?}");
    }

    #[test]
    fn sample_weights_rebalance_the_classes() {
        // 30 samples of class 0 at weight 0.25 and 10 of class 1 at weight 0.75 on the same
        // input: the weighted shares are 7.5 : 7.5, so the model must sit near 1/2 : 1/2,
        // where unweighted it would sit near 3/4 : 1/4.
        let xs: Vec<SparseVec> = (0..40).map(|_| sv(&[(0, 1.0)])).collect();
        let ys: Vec<usize> = (0..40).map(|k| usize::from(k % 4 == 0)).collect();
        let onehot: Vec<Vec<f64>> = ys
            .iter()
            .map(|&y| {
                if y == 0 {
                    vec![1.0, 0.0]
                } else {
                    vec![0.0, 1.0]
                }
            })
            .collect();
        let w: Vec<f64> = ys
            .iter()
            .map(|&y| if y == 0 { 0.25 } else { 0.75 })
            .collect();
        let m = train_softmax_soft(&xs, &onehot, &w, 2, 1, &params());
        let p = m.softmax(&sv(&[(0, 1.0)]));
        assert!((p[0] - 0.5).abs() < 0.05, "{p:?}");
        let plain = train_softmax(&xs, &ys, 2, 1, &params()).softmax(&sv(&[(0, 1.0)]));
        assert!((plain[0] - 0.75).abs() < 0.05, "{plain:?}");
    }

    #[test]
    fn sigmoids_learn_independent_outputs() {
        let xs = vec![
            sv(&[(0, 1.0)]),
            sv(&[(1, 1.0)]),
            sv(&[(0, 0.7), (1, 0.7)]),
            sv(&[(2, 1.0)]),
        ];
        let ys = vec![
            vec![true, false],
            vec![false, true],
            vec![true, true],
            vec![false, false],
        ];
        let m = train_sigmoids(
            &xs,
            &ys,
            2,
            3,
            &TrainParams {
                epochs: 200,
                ..params()
            },
        );
        for (x, y) in xs.iter().zip(&ys) {
            let p = m.sigmoids(x);
            for o in 0..2 {
                assert_eq!(p[o] > 0.5, y[o], "{p:?} vs {y:?}");
            }
        }
    }
}
