//! Compute kernels: dot products of quantised weight rows with quantised activations.
//!
//! Weight rows stay in the GGUF's own block formats (Q4_0, Q4_1, Q8_0; F32 and F16 too),
//! read straight from the memory map. Activations are quantised once per matrix product to
//! 8-bit blocks of 32 ([`BlockQ8`]), as llama.cpp does, so the inner loop is an integer dot
//! product: 4-bit x 8-bit products summed in 16/32-bit lanes, one float multiply per block.
//!
//! Two implementations with the same results up to float summation order: a portable scalar
//! one ([`scalar`]) and an AVX2/FMA/F16C one ([`avx2`]). The path is chosen **at run time**
//! ([`KernelPath::detect`]), never by compile flags, so one binary runs on any x86-64 (and
//! other) CPU and is fast where the instructions exist.

#[cfg(target_arch = "x86_64")]
pub mod avx2;
pub mod scalar;

use crate::gguf::GgmlType;

/// Which implementation the kernels use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KernelPath {
    /// Portable Rust.
    Scalar,
    /// x86-64 AVX2 + FMA + F16C (checked at run time).
    Avx2,
}

impl KernelPath {
    /// The fastest path this CPU supports.
    pub fn detect() -> KernelPath {
        #[cfg(target_arch = "x86_64")]
        {
            if is_x86_feature_detected!("avx2")
                && is_x86_feature_detected!("fma")
                && is_x86_feature_detected!("f16c")
            {
                return KernelPath::Avx2;
            }
        }
        KernelPath::Scalar
    }

    /// Whether this CPU can run `self`.
    pub fn available(self) -> bool {
        match self {
            KernelPath::Scalar => true,
            KernelPath::Avx2 => KernelPath::detect() == KernelPath::Avx2,
        }
    }

    /// Label written into traces.
    pub fn as_str(self) -> &'static str {
        match self {
            KernelPath::Scalar => "scalar",
            KernelPath::Avx2 => "avx2",
        }
    }
}

/// Weight formats the matrix kernels compute with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightType {
    /// 32 weights: f16 scale d, 16 bytes of nibbles; w = d * (q - 8).
    Q4_0,
    /// 32 weights: f16 scale d and minimum m, 16 bytes of nibbles; w = d * q + m.
    Q4_1,
    /// 32 weights: f16 scale d, 32 signed bytes; w = d * q.
    Q8_0,
    /// Plain f32.
    F32,
    /// Plain f16.
    F16,
}

impl WeightType {
    /// The weight type of a ggml type, if the kernels support it.
    pub fn from_ggml(t: GgmlType) -> Option<WeightType> {
        Some(match t {
            GgmlType::Q4_0 => WeightType::Q4_0,
            GgmlType::Q4_1 => WeightType::Q4_1,
            GgmlType::Q8_0 => WeightType::Q8_0,
            GgmlType::F32 => WeightType::F32,
            GgmlType::F16 => WeightType::F16,
            _ => return None,
        })
    }

    /// Bytes of one row of `cols` weights.
    pub fn row_bytes(self, cols: usize) -> usize {
        match self {
            WeightType::Q4_0 => cols / 32 * 18,
            WeightType::Q4_1 => cols / 32 * 20,
            WeightType::Q8_0 => cols / 32 * 34,
            WeightType::F32 => cols * 4,
            WeightType::F16 => cols * 2,
        }
    }
}

/// One block of 32 activations quantised to 8 bits: `x[i] ~= d * qs[i]`, with
/// `s = d * sum(qs)` precomputed for the Q4_1 minimum term. `d` and `s` are rounded
/// through f16 exactly as ggml's `block_q8_1` stores them, so products match llama.cpp's
/// as closely as the summation order allows.
#[derive(Debug, Clone, Copy)]
#[repr(C, align(32))]
pub struct BlockQ8 {
    /// The 32 quantised values.
    pub qs: [i8; 32],
    /// Scale.
    pub d: f32,
    /// `d * sum(qs)`.
    pub s: f32,
}

impl Default for BlockQ8 {
    fn default() -> Self {
        BlockQ8 {
            qs: [0; 32],
            d: 0.0,
            s: 0.0,
        }
    }
}

/// Quantise `x` (length a multiple of 32) into `out` (`x.len() / 32` blocks).
/// Round-half-to-even, as ggml's AVX2 quantiser (`_mm256_round_ps` nearest) does.
pub fn quantize_q8(x: &[f32], out: &mut [BlockQ8]) {
    debug_assert_eq!(x.len(), out.len() * 32);
    for (b, chunk) in out.iter_mut().zip(x.chunks_exact(32)) {
        let amax = chunk.iter().fold(0f32, |m, v| m.max(v.abs()));
        let d = amax / 127.0;
        let id = if amax != 0.0 { 127.0 / amax } else { 0.0 };
        let mut sum = 0i32;
        for (q, v) in b.qs.iter_mut().zip(chunk) {
            let r = round_even(v * id) as i32;
            *q = r.clamp(-127, 127) as i8;
            sum += i32::from(*q);
        }
        b.d = f16_round(d);
        b.s = f16_round(d * sum as f32);
    }
}

/// Round half to even for |x| < 2^22 (the quantiser's range is +-127): adding and
/// subtracting 1.5 * 2^23 leaves no fraction bits, and the FPU's default mode rounds ties
/// to even. `f32::round_ties_even` gives the same result but compiles to a libm call on
/// baseline x86-64, which cost 5% of decode time.
#[inline]
fn round_even(x: f32) -> f32 {
    const MAGIC: f32 = 12_582_912.0;
    (x + MAGIC) - MAGIC
}

/// f16 bits to f32 (exact; handles subnormals, infinities and NaN).
pub fn f16_to_f32(h: u16) -> f32 {
    let sign = u32::from(h >> 15) << 31;
    let exp = u32::from((h >> 10) & 0x1f);
    let man = u32::from(h & 0x3ff);
    let bits = match (exp, man) {
        (0, 0) => sign,
        (0, m) => {
            // Subnormal: value = m * 2^-24.
            let v = m as f32 * (1.0 / 16_777_216.0);
            return if sign != 0 { -v } else { v };
        }
        (31, 0) => sign | 0x7f80_0000,
        (31, m) => sign | 0x7fc0_0000 | (m << 13),
        (e, m) => sign | ((e + 112) << 23) | (m << 13),
    };
    f32::from_bits(bits)
}

/// f32 to f16 bits, round to nearest even (what `_cvtss_sh(x, 0)` does).
pub fn f32_to_f16(x: f32) -> u16 {
    let b = x.to_bits();
    let sign = ((b >> 16) & 0x8000) as u16;
    let exp = ((b >> 23) & 0xff) as i32;
    let man = b & 0x7f_ffff;
    if exp == 0xff {
        return sign | 0x7c00 | if man != 0 { 0x200 } else { 0 };
    }
    let e = exp - 127 + 15;
    if e >= 31 {
        return sign | 0x7c00;
    }
    if e <= 0 {
        if e < -10 {
            return sign;
        }
        let m = man | 0x80_0000;
        let shift = (14 - e) as u32;
        let half = 1u32 << (shift - 1);
        let rest = m & ((1 << shift) - 1);
        let mut r = m >> shift;
        if rest > half || (rest == half && r & 1 == 1) {
            r += 1;
        }
        return sign | r as u16;
    }
    let mut r = ((e as u32) << 10) | (man >> 13);
    let rest = man & 0x1fff;
    if rest > 0x1000 || (rest == 0x1000 && r & 1 == 1) {
        r += 1;
    }
    sign | r as u16
}

/// `x` rounded to the nearest f16 value, kept as f32.
pub fn f16_round(x: f32) -> f32 {
    f16_to_f32(f32_to_f16(x))
}

/// Dot products of weight rows with every token's activations:
/// `out[t * out_stride + r] = row_r . act_t` for `r` in `rows`.
///
/// `q8` holds `tokens` runs of `cols / 32` blocks (used by quantised weights); `xf` holds
/// `tokens` runs of `cols` floats (used by F32/F16 weights).
pub struct MatVec<'a> {
    /// Weight format.
    pub ty: WeightType,
    /// Row-major weight bytes.
    pub w: &'a [u8],
    /// Weights per row.
    pub cols: usize,
    /// Quantised activations.
    pub q8: &'a [BlockQ8],
    /// Float activations.
    pub xf: &'a [f32],
    /// Number of tokens.
    pub tokens: usize,
}

impl MatVec<'_> {
    /// Compute rows `r0..r1` into `out` (see the type doc for the layout).
    ///
    /// # Safety
    /// `out` must be valid for writes at `t * out_stride + r` for every token `t` and row
    /// `r` in `r0..r1`, and no other thread may write those elements meanwhile.
    pub unsafe fn rows(
        &self,
        path: KernelPath,
        r0: usize,
        r1: usize,
        out: *mut f32,
        out_stride: usize,
    ) {
        match path {
            #[cfg(target_arch = "x86_64")]
            KernelPath::Avx2 => avx2::rows(self, r0, r1, out, out_stride),
            _ => scalar::rows(self, r0, r1, out, out_stride),
        }
    }
}

/// `a . b` over f32 on `path` (attention scores).
pub fn dot_f32(path: KernelPath, a: &[f32], b: &[f32]) -> f32 {
    match path {
        // SAFETY: the Avx2 path is only chosen when the CPU has the instructions.
        #[cfg(target_arch = "x86_64")]
        KernelPath::Avx2 => unsafe { avx2::dot_f32(a, b) },
        _ => {
            // Eight lane sums, added in lane order: the arithmetic `avx2::dot_f32` repeats.
            let mut s = [0f32; 8];
            let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
            let (ra, rb) = (ca.remainder(), cb.remainder());
            for (x, y) in ca.zip(cb) {
                for i in 0..8 {
                    s[i] += x[i] * y[i];
                }
            }
            let mut tot: f32 = s.iter().sum();
            for (x, y) in ra.iter().zip(rb) {
                tot += x * y;
            }
            tot
        }
    }
}

/// `y += p * x` over f32 on `path` (attention-weighted values).
pub fn axpy(path: KernelPath, p: f32, x: &[f32], y: &mut [f32]) {
    match path {
        // SAFETY: as in `dot_f32`.
        #[cfg(target_arch = "x86_64")]
        KernelPath::Avx2 => unsafe { avx2::axpy(p, x, y) },
        _ => {
            for (a, b) in y.iter_mut().zip(x) {
                *a += p * b;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_helpers_agree_across_paths() {
        let a: Vec<f32> = (0..67).map(|i| i as f32 * 0.5 - 7.0).collect();
        let b: Vec<f32> = (0..67).map(|i| 3.0 - i as f32 * 0.25).collect();
        let exact: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        for path in [KernelPath::Scalar, KernelPath::detect()] {
            assert!((dot_f32(path, &a, &b) - exact).abs() < 1e-3, "{path:?}");
            let mut y = b.clone();
            axpy(path, 2.0, &a, &mut y);
            assert!(y
                .iter()
                .zip(a.iter().zip(&b))
                .all(|(v, (x, w))| (v - (w + 2.0 * x)).abs() < 1e-5));
        }
        // The two paths are bit-identical (see `avx2::dot_f32`).
        let (d0, d1) = (
            dot_f32(KernelPath::Scalar, &a, &b),
            dot_f32(KernelPath::detect(), &a, &b),
        );
        assert_eq!(d0.to_bits(), d1.to_bits());
        let (mut y0, mut y1) = (b.clone(), b.clone());
        axpy(KernelPath::Scalar, 0.3, &a, &mut y0);
        axpy(KernelPath::detect(), 0.3, &a, &mut y1);
        assert_eq!(y0, y1);
    }

    #[test]
    fn f16_conversions_round_trip_known_values() {
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x7bff), 65504.0);
        assert_eq!(f16_to_f32(0x0001), 5.960_464_5e-8);
        assert_eq!(f32_to_f16(1.0), 0x3c00);
        assert_eq!(f32_to_f16(65504.0), 0x7bff);
        assert_eq!(f32_to_f16(1e6), 0x7c00);
        // 1 + 2^-11 is exactly halfway between two f16 values: ties go to even (1.0).
        assert_eq!(f32_to_f16(1.0 + 1.0 / 2048.0), 0x3c00);
        assert_eq!(f32_to_f16(1.0 + 3.0 / 2048.0), 0x3c02);
        for h in 0..=0x7bffu16 {
            assert_eq!(f32_to_f16(f16_to_f32(h)), h, "{h:#x}");
        }
    }

    #[test]
    fn round_even_matches_std() {
        for i in -300_000..300_000 {
            let x = i as f32 / 1000.0;
            assert_eq!(round_even(x), x.round_ties_even(), "{x}");
        }
        assert_eq!(
            (round_even(0.5), round_even(1.5), round_even(-2.5)),
            (0.0, 2.0, -2.0)
        );
    }

    #[test]
    fn quantize_q8_by_hand() {
        // amax 127 -> d = 1: values are their own codes; sum = 0+1+...+31 = 496.
        let x: Vec<f32> = (0..32)
            .map(|i| if i == 31 { 127.0 } else { i as f32 })
            .collect();
        let mut b = [BlockQ8::default()];
        quantize_q8(&x, &mut b);
        assert_eq!(b[0].d, 1.0);
        assert_eq!(b[0].qs[5], 5);
        assert_eq!(b[0].qs[31], 127);
        assert_eq!(b[0].s, (0..31).sum::<i32>() as f32 + 127.0);
        let z = [0f32; 32];
        quantize_q8(&z, &mut b);
        assert_eq!((b[0].d, b[0].s, b[0].qs[0]), (0.0, 0.0, 0));
    }
}
