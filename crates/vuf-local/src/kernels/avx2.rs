//! AVX2 + FMA + F16C kernels, compiled into every x86-64 build with `#[target_feature]`
//! and called only after [`super::KernelPath::detect`] found the instructions at run time.
//!
//! The inner loop per block of 32: expand the 16 nibble bytes to 32 unsigned bytes,
//! `maddubs` them against the 32 signed activation bytes (pairwise i16 sums, which cannot
//! overflow: 15 * 127 * 2 < 2^15), widen with `madd` against ones to eight i32 lanes,
//! convert, and fuse-multiply-add with the block's combined scale. Two rows are computed
//! per pass so each activation block is loaded once for both, and the two dependency chains
//! keep the FMA units busy.

use std::arch::x86_64::*;

use super::{scalar, BlockQ8, MatVec, WeightType};

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn hsum(v: __m256) -> f32 {
    let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    let s = _mm_add_ss(s, _mm_movehdup_ps(s));
    _mm_cvtss_f32(s)
}

/// Two consecutive f16 values at `p` as f32 (lanes 0 and 1).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn f16x2(p: *const u8) -> __m128 {
    _mm_cvtph_ps(_mm_cvtsi32_si128((p as *const i32).read_unaligned()))
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn f16x1(p: *const u8) -> f32 {
    _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(i32::from(
        (p as *const u16).read_unaligned(),
    ))))
}

/// 16 bytes of nibbles -> 32 bytes: low nibbles in lanes 0..16, high nibbles in 16..32
/// (the element order of ggml's 4-bit blocks).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn nibbles(p: *const u8) -> __m256i {
    let raw = _mm_loadu_si128(p as *const __m128i);
    let both = _mm256_set_m128i(_mm_srli_epi16(raw, 4), raw);
    _mm256_and_si256(both, _mm256_set1_epi8(0x0f))
}

/// Unsigned bytes `u` times signed bytes `s`, summed to eight f32 lanes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn mul_sum_us8(u: __m256i, s: __m256i) -> __m256 {
    let p16 = _mm256_maddubs_epi16(u, s);
    _mm256_cvtepi32_ps(_mm256_madd_epi16(p16, _mm256_set1_epi16(1)))
}

/// Signed bytes times signed bytes (sign trick: |a| * (b with a's sign)).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn mul_sum_i8(a: __m256i, b: __m256i) -> __m256 {
    mul_sum_us8(_mm256_sign_epi8(a, a), _mm256_sign_epi8(b, a))
}

/// Q4_1 dot of two rows `w0`, `w1` with the same activations.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn dot2_q4_1(w0: *const u8, w1: *const u8, x: *const BlockQ8, nb: usize) -> (f32, f32) {
    let mut acc0 = _mm256_setzero_ps();
    let mut acc1 = _mm256_setzero_ps();
    let mut mins0 = _mm_setzero_ps();
    let mut mins1 = _mm_setzero_ps();
    for i in 0..nb {
        let a = &*x.add(i);
        let qy = _mm256_load_si256(a.qs.as_ptr() as *const __m256i);
        let dy = _mm_set_ss(a.d);
        let sy = _mm_set_ss(a.s);
        let b0 = w0.add(i * 20);
        let b1 = w1.add(i * 20);
        let dm0 = f16x2(b0);
        let dm1 = f16x2(b1);
        mins0 = _mm_fmadd_ss(_mm_movehdup_ps(dm0), sy, mins0);
        mins1 = _mm_fmadd_ss(_mm_movehdup_ps(dm1), sy, mins1);
        let s0 = _mm256_broadcastss_ps(_mm_mul_ss(dm0, dy));
        let s1 = _mm256_broadcastss_ps(_mm_mul_ss(dm1, dy));
        acc0 = _mm256_fmadd_ps(s0, mul_sum_us8(nibbles(b0.add(4)), qy), acc0);
        acc1 = _mm256_fmadd_ps(s1, mul_sum_us8(nibbles(b1.add(4)), qy), acc1);
    }
    (
        hsum(acc0) + _mm_cvtss_f32(mins0),
        hsum(acc1) + _mm_cvtss_f32(mins1),
    )
}

/// Tokens per tile of the batched (prompt) kernel.
const TILE: usize = 4;

/// Q4_1 dots of two rows with `TILE` tokens' activations (`x` + `t * nb` for token `t`):
/// a 2 x 4 tile. Each weight block's nibbles are expanded once for four tokens and each
/// activation block is loaded once for two rows, which is what makes prompt evaluation
/// faster per token than decoding.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn tile_q4_1(
    w0: *const u8,
    w1: *const u8,
    x: *const BlockQ8,
    nb: usize,
) -> [[f32; TILE]; 2] {
    let mut acc = [[_mm256_setzero_ps(); TILE]; 2];
    let mut mins = [[0f32; TILE]; 2];
    for i in 0..nb {
        let b0 = w0.add(i * 20);
        let b1 = w1.add(i * 20);
        let dm0 = f16x2(b0);
        let dm1 = f16x2(b1);
        let (d0, m0) = (_mm_cvtss_f32(dm0), _mm_cvtss_f32(_mm_movehdup_ps(dm0)));
        let (d1, m1) = (_mm_cvtss_f32(dm1), _mm_cvtss_f32(_mm_movehdup_ps(dm1)));
        let q0 = nibbles(b0.add(4));
        let q1 = nibbles(b1.add(4));
        for t in 0..TILE {
            let a = &*x.add(t * nb + i);
            let qy = _mm256_load_si256(a.qs.as_ptr() as *const __m256i);
            acc[0][t] = _mm256_fmadd_ps(_mm256_set1_ps(d0 * a.d), mul_sum_us8(q0, qy), acc[0][t]);
            acc[1][t] = _mm256_fmadd_ps(_mm256_set1_ps(d1 * a.d), mul_sum_us8(q1, qy), acc[1][t]);
            mins[0][t] += m0 * a.s;
            mins[1][t] += m1 * a.s;
        }
    }
    let mut out = [[0f32; TILE]; 2];
    for r in 0..2 {
        for t in 0..TILE {
            out[r][t] = hsum(acc[r][t]) + mins[r][t];
        }
    }
    out
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn dot_q4_1(w: *const u8, x: *const BlockQ8, nb: usize) -> f32 {
    let mut acc = _mm256_setzero_ps();
    let mut mins = _mm_setzero_ps();
    for i in 0..nb {
        let a = &*x.add(i);
        let b = w.add(i * 20);
        let dm = f16x2(b);
        mins = _mm_fmadd_ss(_mm_movehdup_ps(dm), _mm_set_ss(a.s), mins);
        let s = _mm256_broadcastss_ps(_mm_mul_ss(dm, _mm_set_ss(a.d)));
        let qy = _mm256_load_si256(a.qs.as_ptr() as *const __m256i);
        acc = _mm256_fmadd_ps(s, mul_sum_us8(nibbles(b.add(4)), qy), acc);
    }
    hsum(acc) + _mm_cvtss_f32(mins)
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn dot_q4_0(w: *const u8, x: *const BlockQ8, nb: usize) -> f32 {
    let mut acc = _mm256_setzero_ps();
    let eight = _mm256_set1_epi8(8);
    for i in 0..nb {
        let a = &*x.add(i);
        let b = w.add(i * 18);
        let qx = _mm256_sub_epi8(nibbles(b.add(2)), eight);
        let qy = _mm256_load_si256(a.qs.as_ptr() as *const __m256i);
        let s = _mm256_set1_ps(f16x1(b) * a.d);
        acc = _mm256_fmadd_ps(s, mul_sum_i8(qx, qy), acc);
    }
    hsum(acc)
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn dot_q8_0(w: *const u8, x: *const BlockQ8, nb: usize) -> f32 {
    let mut acc = _mm256_setzero_ps();
    for i in 0..nb {
        let a = &*x.add(i);
        let b = w.add(i * 34);
        let qx = _mm256_loadu_si256(b.add(2) as *const __m256i);
        let qy = _mm256_load_si256(a.qs.as_ptr() as *const __m256i);
        let s = _mm256_set1_ps(f16x1(b) * a.d);
        acc = _mm256_fmadd_ps(s, mul_sum_i8(qx, qy), acc);
    }
    hsum(acc)
}

/// `a . b` over f32, for attention scores, bit-identical to the scalar version: eight
/// lane sums built with a separate multiply and add (no FMA), then added lane 0 to 7 in
/// order. Attention feeds the 8-bit requantisation of the next matrix product, where a
/// last-bit difference can flip a rounding and, thirty layers later, a greedy token; with
/// identical arithmetic the two paths cannot part here.
///
/// # Safety
/// The CPU must support AVX2.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
    let len = a.len().min(b.len());
    let n = len / 8 * 8;
    let mut acc = _mm256_setzero_ps();
    let mut i = 0;
    while i < n {
        let p = _mm256_mul_ps(
            _mm256_loadu_ps(a.as_ptr().add(i)),
            _mm256_loadu_ps(b.as_ptr().add(i)),
        );
        acc = _mm256_add_ps(acc, p);
        i += 8;
    }
    let mut lanes = [0f32; 8];
    _mm256_storeu_ps(lanes.as_mut_ptr(), acc);
    let mut s: f32 = lanes.iter().sum();
    for j in n..len {
        s += a[j] * b[j];
    }
    s
}

/// `y += p * x` over f32, for the attention-weighted sum of values.
///
/// # Safety
/// The CPU must support AVX2.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn axpy(p: f32, x: &[f32], y: &mut [f32]) {
    let n = x.len().min(y.len()) / 8 * 8;
    let pv = _mm256_set1_ps(p);
    let mut i = 0;
    while i < n {
        // Multiply, then add (no FMA): bit-identical to the scalar version, see `dot_f32`.
        let yp = y.as_mut_ptr().add(i);
        let px = _mm256_mul_ps(pv, _mm256_loadu_ps(x.as_ptr().add(i)));
        _mm256_storeu_ps(yp, _mm256_add_ps(_mm256_loadu_ps(yp), px));
        i += 8;
    }
    for j in n..x.len().min(y.len()) {
        y[j] += p * x[j];
    }
}

/// AVX2 [`MatVec::rows`].
///
/// # Safety
/// As [`MatVec::rows`], and the CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn rows(mv: &MatVec<'_>, r0: usize, r1: usize, out: *mut f32, out_stride: usize) {
    let rb = mv.ty.row_bytes(mv.cols);
    let nb = mv.cols / 32;
    assert!(r1 * rb <= mv.w.len(), "weight rows out of range");
    if matches!(
        mv.ty,
        WeightType::Q4_1 | WeightType::Q4_0 | WeightType::Q8_0
    ) {
        assert!(mv.q8.len() >= mv.tokens * nb, "activations too short");
    }
    let w = mv.w.as_ptr();
    let x = mv.q8.as_ptr();
    match mv.ty {
        WeightType::Q4_1 => {
            let mut r = r0;
            while r + 2 <= r1 {
                let mut t = 0;
                while t + TILE <= mv.tokens {
                    let o = tile_q4_1(w.add(r * rb), w.add((r + 1) * rb), x.add(t * nb), nb);
                    for (k, (a, b)) in o[0].iter().zip(&o[1]).enumerate() {
                        *out.add((t + k) * out_stride + r) = *a;
                        *out.add((t + k) * out_stride + r + 1) = *b;
                    }
                    t += TILE;
                }
                for t in t..mv.tokens {
                    let (a, b) = dot2_q4_1(w.add(r * rb), w.add((r + 1) * rb), x.add(t * nb), nb);
                    *out.add(t * out_stride + r) = a;
                    *out.add(t * out_stride + r + 1) = b;
                }
                r += 2;
            }
            if r < r1 {
                for t in 0..mv.tokens {
                    *out.add(t * out_stride + r) = dot_q4_1(w.add(r * rb), x.add(t * nb), nb);
                }
            }
        }
        WeightType::Q4_0 => {
            for r in r0..r1 {
                for t in 0..mv.tokens {
                    *out.add(t * out_stride + r) = dot_q4_0(w.add(r * rb), x.add(t * nb), nb);
                }
            }
        }
        WeightType::Q8_0 => {
            for r in r0..r1 {
                for t in 0..mv.tokens {
                    *out.add(t * out_stride + r) = dot_q8_0(w.add(r * rb), x.add(t * nb), nb);
                }
            }
        }
        WeightType::F32 | WeightType::F16 => scalar::rows(mv, r0, r1, out, out_stride),
    }
}

#[cfg(test)]
mod tests {
    use super::super::{f32_to_f16, quantize_q8, KernelPath};
    use super::*;

    /// A deterministic pseudo-random byte stream (xorshift).
    fn bytes(n: usize, seed: u32) -> Vec<u8> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                (s >> 11) as u8
            })
            .collect()
    }

    /// Random weight rows in each format, with sane f16 scales written over the random bytes.
    fn weights(ty: WeightType, rows: usize, cols: usize) -> Vec<u8> {
        let rb = ty.row_bytes(cols);
        let mut w = bytes(rows * rb, 7);
        let (block, scales) = match ty {
            WeightType::Q4_0 => (18, 1),
            WeightType::Q4_1 => (20, 2),
            WeightType::Q8_0 => (34, 1),
            _ => return w,
        };
        for (i, blk) in w.chunks_exact_mut(block).enumerate() {
            for s in 0..scales {
                let v = 0.01 + (i % 7) as f32 * 0.003 - s as f32 * 0.05;
                blk[2 * s..2 * s + 2].copy_from_slice(&f32_to_f16(v).to_le_bytes());
            }
        }
        w
    }

    #[test]
    fn avx2_matches_scalar() {
        if !KernelPath::Avx2.available() {
            println!("SKIP: this CPU has no AVX2/FMA/F16C");
            return;
        }
        let (rows_n, cols, tokens) = (7, 576, 6);
        let x: Vec<f32> = bytes(cols * tokens, 3)
            .iter()
            .map(|b| (*b as f32 - 128.0) / 37.0)
            .collect();
        let mut q8 = vec![BlockQ8::default(); cols / 32 * tokens];
        quantize_q8(&x, &mut q8);
        for ty in [WeightType::Q4_0, WeightType::Q4_1, WeightType::Q8_0] {
            let w = weights(ty, rows_n, cols);
            let mv = MatVec {
                ty,
                w: &w,
                cols,
                q8: &q8,
                xf: &x,
                tokens,
            };
            let mut a = vec![0f32; rows_n * tokens];
            let mut b = vec![0f32; rows_n * tokens];
            unsafe {
                scalar::rows(&mv, 0, rows_n, a.as_mut_ptr(), rows_n);
                rows(&mv, 0, rows_n, b.as_mut_ptr(), rows_n);
            }
            for (u, v) in a.iter().zip(&b) {
                assert!(
                    (u - v).abs() <= 1e-4 * u.abs().max(1.0),
                    "{ty:?}: {u} vs {v}"
                );
            }
        }
    }
}
