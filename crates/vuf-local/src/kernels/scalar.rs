//! Portable kernels: the reference the AVX2 path is tested against, and the path used on
//! CPUs without AVX2 (or other architectures). Integer products per block, one float
//! multiply-add per block, the same arithmetic as the vector path.

use super::{f16_to_f32, BlockQ8, MatVec, WeightType};

fn f16_at(b: &[u8], i: usize) -> f32 {
    f16_to_f32(u16::from_le_bytes([b[i], b[i + 1]]))
}

/// Q4_0 row . Q8 activations: sum over blocks of `d_w * d_x * sum((q - 8) * x)`.
pub fn dot_q4_0(w: &[u8], x: &[BlockQ8]) -> f32 {
    let mut acc = 0f32;
    for (blk, a) in w.chunks_exact(18).zip(x) {
        let d = f16_at(blk, 0);
        let qs = &blk[2..18];
        let mut isum = 0i32;
        for (j, &q) in qs.iter().enumerate() {
            let lo = i32::from(q & 0x0f) - 8;
            let hi = i32::from(q >> 4) - 8;
            isum += lo * i32::from(a.qs[j]) + hi * i32::from(a.qs[j + 16]);
        }
        acc += d * a.d * isum as f32;
    }
    acc
}

/// Q4_1 row . Q8 activations: `d_w * d_x * sum(q * x) + m_w * s_x` per block.
pub fn dot_q4_1(w: &[u8], x: &[BlockQ8]) -> f32 {
    let mut acc = 0f32;
    let mut mins = 0f32;
    for (blk, a) in w.chunks_exact(20).zip(x) {
        let d = f16_at(blk, 0);
        let m = f16_at(blk, 2);
        let qs = &blk[4..20];
        let mut isum = 0i32;
        for (j, &q) in qs.iter().enumerate() {
            isum += i32::from(q & 0x0f) * i32::from(a.qs[j])
                + i32::from(q >> 4) * i32::from(a.qs[j + 16]);
        }
        acc += d * a.d * isum as f32;
        mins += m * a.s;
    }
    acc + mins
}

/// Q8_0 row . Q8 activations.
pub fn dot_q8_0(w: &[u8], x: &[BlockQ8]) -> f32 {
    let mut acc = 0f32;
    for (blk, a) in w.chunks_exact(34).zip(x) {
        let d = f16_at(blk, 0);
        let mut isum = 0i32;
        for j in 0..32 {
            isum += i32::from(blk[2 + j] as i8) * i32::from(a.qs[j]);
        }
        acc += d * a.d * isum as f32;
    }
    acc
}

/// F32 row . float activations.
pub fn dot_f32(w: &[u8], x: &[f32]) -> f32 {
    w.chunks_exact(4)
        .zip(x)
        .map(|(b, v)| f32::from_le_bytes([b[0], b[1], b[2], b[3]]) * v)
        .sum()
}

/// F16 row . float activations.
pub fn dot_f16(w: &[u8], x: &[f32]) -> f32 {
    w.chunks_exact(2)
        .zip(x)
        .map(|(b, v)| f16_to_f32(u16::from_le_bytes([b[0], b[1]])) * v)
        .sum()
}

/// Dequantise one row of `cols` weights into `out`.
pub fn dequantize_row(ty: WeightType, w: &[u8], out: &mut [f32]) {
    match ty {
        WeightType::Q4_0 => {
            for (blk, o) in w.chunks_exact(18).zip(out.chunks_exact_mut(32)) {
                let d = f16_at(blk, 0);
                for j in 0..16 {
                    o[j] = d * (f32::from(blk[2 + j] & 0x0f) - 8.0);
                    o[j + 16] = d * (f32::from(blk[2 + j] >> 4) - 8.0);
                }
            }
        }
        WeightType::Q4_1 => {
            for (blk, o) in w.chunks_exact(20).zip(out.chunks_exact_mut(32)) {
                let d = f16_at(blk, 0);
                let m = f16_at(blk, 2);
                for j in 0..16 {
                    o[j] = d * f32::from(blk[4 + j] & 0x0f) + m;
                    o[j + 16] = d * f32::from(blk[4 + j] >> 4) + m;
                }
            }
        }
        WeightType::Q8_0 => {
            for (blk, o) in w.chunks_exact(34).zip(out.chunks_exact_mut(32)) {
                let d = f16_at(blk, 0);
                for j in 0..32 {
                    o[j] = d * f32::from(blk[2 + j] as i8);
                }
            }
        }
        WeightType::F32 => {
            for (b, o) in w.chunks_exact(4).zip(out) {
                *o = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            }
        }
        WeightType::F16 => {
            for (b, o) in w.chunks_exact(2).zip(out) {
                *o = f16_to_f32(u16::from_le_bytes([b[0], b[1]]));
            }
        }
    }
}

/// One row . one token's activations.
pub fn dot(mv: &MatVec<'_>, row: &[u8], q8: &[BlockQ8], xf: &[f32]) -> f32 {
    match mv.ty {
        WeightType::Q4_0 => dot_q4_0(row, q8),
        WeightType::Q4_1 => dot_q4_1(row, q8),
        WeightType::Q8_0 => dot_q8_0(row, q8),
        WeightType::F32 => dot_f32(row, xf),
        WeightType::F16 => dot_f16(row, xf),
    }
}

/// Scalar [`MatVec::rows`].
///
/// # Safety
/// As [`MatVec::rows`].
pub unsafe fn rows(mv: &MatVec<'_>, r0: usize, r1: usize, out: *mut f32, out_stride: usize) {
    let rb = mv.ty.row_bytes(mv.cols);
    let nb = mv.cols / 32;
    for r in r0..r1 {
        let row = &mv.w[r * rb..(r + 1) * rb];
        for t in 0..mv.tokens {
            let q8 = mv.q8.get(t * nb..(t + 1) * nb).unwrap_or(&[]);
            let xf = mv.xf.get(t * mv.cols..(t + 1) * mv.cols).unwrap_or(&[]);
            *out.add(t * out_stride + r) = dot(mv, row, q8, xf);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{f32_to_f16, quantize_q8};
    use super::*;

    fn h(x: f32) -> [u8; 2] {
        f32_to_f16(x).to_le_bytes()
    }

    /// One Q4_1 block worked by hand: d = 0.5, m = -1, nibble j = j % 16 (low) and 15 - j % 16
    /// (high); activations: d_x = 1, x_j = 1 for j < 16 and 2 for j >= 16.
    /// Weights: low half 0.5 * j - 1, high half 0.5 * (15 - j) - 1.
    /// Dot = sum_j (0.5 j - 1) * 1 + sum_j (0.5 (15 - j) - 1) * 2
    ///     = (0.5 * 120 - 16) + 2 * (0.5 * 120 - 16) = 44 + 88 = 132.
    #[test]
    fn q4_1_block_by_hand() {
        let mut blk = Vec::new();
        blk.extend(h(0.5));
        blk.extend(h(-1.0));
        for j in 0..16u8 {
            blk.push(j | ((15 - j) << 4));
        }
        let mut a = BlockQ8 {
            d: 1.0,
            ..Default::default()
        };
        for j in 0..32 {
            a.qs[j] = if j < 16 { 1 } else { 2 };
        }
        a.s = 48.0;
        assert_eq!(dot_q4_1(&blk, &[a]), 132.0);
        let mut w = [0f32; 32];
        dequantize_row(WeightType::Q4_1, &blk, &mut w);
        assert_eq!((w[0], w[3], w[16], w[31]), (-1.0, 0.5, 6.5, -1.0));
    }

    /// Q4_0: d = 2, nibbles 8 +- 1 alternate: weights +-2; x = 3 everywhere with d_x = 1:
    /// the products cancel in pairs -> 0; with x_j = j: sum_{j even} 2j*... checked against
    /// the dequantised float dot.
    #[test]
    fn q4_0_and_q8_0_match_their_dequantised_dots() {
        let mut blk = Vec::new();
        blk.extend(h(2.0));
        for j in 0..16u8 {
            let lo = if j % 2 == 0 { 9 } else { 7 };
            blk.push(lo | (9 << 4));
        }
        let x: Vec<f32> = (0..32).map(|j| j as f32).collect();
        let mut a = [BlockQ8::default()];
        quantize_q8(&x, &mut a);
        let mut w = [0f32; 32];
        dequantize_row(WeightType::Q4_0, &blk, &mut w);
        // By hand: low half alternates +2/-2 on x = 0..15 -> 2 * (0 - 1 + 2 - 3 ... - 15) = -16;
        // high half all +2 on x = 16..31 -> 2 * 376 = 752. Total 736 (before activation rounding).
        let exact: f32 = w.iter().zip(&x).map(|(a, b)| a * b).sum();
        assert_eq!(exact, 736.0);
        let got = dot_q4_0(&blk, &a);
        assert!((got - exact).abs() < 4.0, "{got}");
        let mut q = Vec::new();
        q.extend(h(0.25));
        for j in 0..32i8 {
            q.push((j - 16) as u8);
        }
        let mut w8 = [0f32; 32];
        dequantize_row(WeightType::Q8_0, &q, &mut w8);
        assert_eq!((w8[0], w8[31]), (-4.0, 3.75));
        let exact8: f32 = w8.iter().zip(&x).map(|(a, b)| a * b).sum();
        assert!((dot_q8_0(&q, &a) - exact8).abs() < 2.0);
    }
}
