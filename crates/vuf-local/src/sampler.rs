//! Next-token choice: greedy, or temperature + nucleus (top-p) sampling from a seeded RNG.
//!
//! Determinism: the only randomness is one uniform draw per generated token from a
//! xoshiro256** generator seeded (through SplitMix64) by the request's seed, so the same
//! seed, prompt and model give the same tokens on every run and every thread count (the
//! kernels' results do not depend on how rows are split over threads).

/// Sampling parameters of one generation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SamplingParams {
    /// Softmax temperature; 0 (or below) means greedy.
    pub temperature: f32,
    /// Nucleus mass in (0, 1]; 1 disables the cut.
    pub top_p: f32,
    /// RNG seed.
    pub seed: u64,
}

impl Default for SamplingParams {
    fn default() -> Self {
        SamplingParams {
            temperature: 0.0,
            top_p: 1.0,
            seed: 0,
        }
    }
}

/// xoshiro256** (Blackman & Vigna): small, fast, and fully specified, so seeded runs
/// reproduce across platforms and crate versions.
#[derive(Debug, Clone)]
pub struct Rng {
    s: [u64; 4],
}

impl Rng {
    /// Seed via SplitMix64, as the xoshiro authors recommend.
    pub fn new(seed: u64) -> Rng {
        let mut z = seed;
        let mut next = || {
            z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut x = z;
            x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            x ^ (x >> 31)
        };
        Rng {
            s: [next(), next(), next(), next()],
        }
    }

    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let r = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        r
    }

    /// Uniform in [0, 1) with 53 bits.
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

/// A sampler for one generation.
#[derive(Debug, Clone)]
pub struct Sampler {
    params: SamplingParams,
    rng: Rng,
}

/// Candidates kept before the nucleus cut: the cut is exact whenever these already hold
/// `top_p` of the mass (they almost always do); otherwise every token is sorted.
const FIRST_CUT: usize = 256;

impl Sampler {
    /// A sampler with its own RNG stream.
    pub fn new(params: SamplingParams) -> Sampler {
        Sampler {
            params,
            rng: Rng::new(params.seed),
        }
    }

    /// Choose the next token from `logits`.
    pub fn sample(&mut self, logits: &[f32]) -> u32 {
        if self.params.temperature <= 0.0 || !self.params.temperature.is_finite() {
            return argmax(logits);
        }
        let inv_t = 1.0 / self.params.temperature;
        let max = logits.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
        let mut cand: Vec<(u32, f32)> = logits
            .iter()
            .enumerate()
            .map(|(i, &l)| (i as u32, ((l - max) * inv_t).exp()))
            .collect();
        let total: f64 = cand.iter().map(|c| f64::from(c.1)).sum();
        let top_p = f64::from(self.params.top_p.clamp(0.0, 1.0));
        let by_prob = |a: &(u32, f32), b: &(u32, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
        let kept = if top_p >= 1.0 {
            cand.len()
        } else {
            let mut keep = None;
            if cand.len() > FIRST_CUT {
                cand.select_nth_unstable_by(FIRST_CUT - 1, by_prob);
                cand[..FIRST_CUT].sort_by(by_prob);
                keep = nucleus(&cand[..FIRST_CUT], total, top_p);
            }
            match keep {
                Some(k) => k,
                None => {
                    cand.sort_by(by_prob);
                    nucleus(&cand, total, top_p).unwrap_or(cand.len())
                }
            }
        };
        let cand = &cand[..kept.max(1)];
        let mass: f64 = cand.iter().map(|c| f64::from(c.1)).sum();
        let mut r = self.rng.uniform() * mass;
        for c in cand {
            r -= f64::from(c.1);
            if r < 0.0 {
                return c.0;
            }
        }
        cand[cand.len() - 1].0
    }
}

/// How many of the sorted `cand` make up `top_p` of `total` (None: not reached).
fn nucleus(cand: &[(u32, f32)], total: f64, top_p: f64) -> Option<usize> {
    let mut acc = 0f64;
    for (i, c) in cand.iter().enumerate() {
        acc += f64::from(c.1) / total;
        if acc >= top_p {
            return Some(i + 1);
        }
    }
    None
}

/// Index of the largest logit (the first on ties).
pub fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &v) in logits.iter().enumerate() {
        if v > logits[best] {
            best = i;
        }
    }
    best as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xoshiro_reference_values() {
        // Seeded by SplitMix64 from 0; the first SplitMix64 output is the published
        // 0xe220a8397b1dcdaf.
        let mut z = 0u64;
        z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut x = z;
        x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        assert_eq!(x ^ (x >> 31), 0xe220_a839_7b1d_cdaf);
        let mut a = Rng::new(7);
        let mut b = Rng::new(7);
        let va: Vec<u64> = (0..5).map(|_| a.next_u64()).collect();
        let vb: Vec<u64> = (0..5).map(|_| b.next_u64()).collect();
        assert_eq!(va, vb);
        assert_ne!(Rng::new(8).next_u64(), va[0]);
        let u = Rng::new(1).uniform();
        assert!((0.0..1.0).contains(&u));
    }

    #[test]
    fn greedy_and_nucleus() {
        let logits = [0.0, 5.0, 1.0, 4.9];
        assert_eq!(Sampler::new(SamplingParams::default()).sample(&logits), 1);
        // top_p tiny: only the best token survives, whatever the draw.
        let mut s = Sampler::new(SamplingParams {
            temperature: 1.0,
            top_p: 0.01,
            seed: 3,
        });
        for _ in 0..50 {
            assert_eq!(s.sample(&logits), 1);
        }
        // top_p 0.9 over a big vocabulary: only the two near-equal leaders are drawn.
        let mut big = vec![-20f32; 1000];
        big[10] = 5.0;
        big[900] = 5.0;
        let mut s = Sampler::new(SamplingParams {
            temperature: 1.0,
            top_p: 0.9,
            seed: 11,
        });
        let draws: Vec<u32> = (0..200).map(|_| s.sample(&big)).collect();
        assert!(draws.iter().all(|&d| d == 10 || d == 900));
        assert!(draws.contains(&10) && draws.contains(&900));
        // Same seed, same draws.
        let mut s2 = Sampler::new(SamplingParams {
            temperature: 1.0,
            top_p: 0.9,
            seed: 11,
        });
        let again: Vec<u32> = (0..200).map(|_| s2.sample(&big)).collect();
        assert_eq!(draws, again);
    }
}
