//! The llama-architecture transformer: weights from a [`Gguf`], a KV cache, one forward pass.
//!
//! Supported subset (what SmolLM2, Llama 2/3 and most llama-family GGUFs use): RMSNorm,
//! rotary position embeddings in the "normal" (adjacent-pair) layout that GGUF's llama
//! converter produces by permuting the Q/K weights, grouped-query attention, a SwiGLU
//! feed-forward block, and an output projection that falls back to the token embedding
//! when `output.weight` is absent (tied embeddings). Matrices may be Q4_0, Q4_1, Q8_0, F16
//! or F32; anything else is refused at load with the tensor's name and type.
//!
//! Numerics follow llama.cpp's CPU path where that is cheap: activations are quantised to
//! 8-bit blocks before each matrix product, RMSNorm and softmax sum in f64, RoPE angles are
//! accumulated in f32 the way ggml does, and K, V and Q are rounded through f16 as ggml's
//! default f16 KV cache does. That keeps greedy decoding on the same tokens as llama.cpp
//! for as long as float summation order allows.

use crate::gguf::{Gguf, TensorInfo};
use crate::kernels::{
    self, f16_round, quantize_q8, scalar, BlockQ8, KernelPath, MatVec, WeightType,
};
use crate::pool::{split, Pool};
use crate::Error;

/// Hyper-parameters read from the GGUF metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Transformer blocks.
    pub n_layer: usize,
    /// Embedding width.
    pub n_embd: usize,
    /// Query heads.
    pub n_head: usize,
    /// Key/value heads (grouped-query attention when fewer than `n_head`).
    pub n_head_kv: usize,
    /// Width of one head.
    pub head_dim: usize,
    /// Feed-forward width.
    pub n_ff: usize,
    /// Vocabulary size (rows of the output projection).
    pub n_vocab: usize,
    /// Context length the model was trained for: the hard limit of a generation.
    pub n_ctx_train: usize,
    /// RoPE frequency base.
    pub rope_base: f32,
    /// Dimensions rotated per head.
    pub rope_dim: usize,
    /// RMSNorm epsilon.
    pub rms_eps: f32,
}

/// A weight matrix: `rows` rows of `cols` weights, stored in the mapping.
#[derive(Debug, Clone)]
struct Matrix {
    ty: WeightType,
    rows: usize,
    cols: usize,
    offset: usize,
    len: usize,
}

struct Layer {
    attn_norm: Vec<f32>,
    wq: Matrix,
    wk: Matrix,
    wv: Matrix,
    wo: Matrix,
    ffn_norm: Vec<f32>,
    gate: Matrix,
    up: Matrix,
    down: Matrix,
}

/// The loaded model (weights stay in the GGUF mapping).
pub struct Model {
    gguf: Gguf,
    /// Hyper-parameters.
    pub config: Config,
    tok_embd: Matrix,
    out_norm: Vec<f32>,
    output: Matrix,
    layers: Vec<Layer>,
    path: KernelPath,
    pool: Pool,
}

/// Keys and values of the positions seen so far, per layer, `n_head_kv * head_dim` floats
/// per position. Grows with the sequence, so a short answer costs a small cache.
#[derive(Debug, Clone, Default)]
pub struct KvCache {
    k: Vec<Vec<f32>>,
    v: Vec<Vec<f32>>,
    len: usize,
}

impl KvCache {
    /// Positions cached.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

#[derive(Clone, Copy)]
struct Out(*mut f32);
// SAFETY: threads write disjoint index ranges of the buffer behind the pointer, and the
// region ends (Pool::run returns) before the buffer is read or freed.
unsafe impl Send for Out {}
unsafe impl Sync for Out {}

impl Out {
    /// The pointer. A method rather than `.0` so closures capture the whole `Out` (which
    /// is `Sync`), not the raw-pointer field (which is not).
    fn ptr(self) -> *mut f32 {
        self.0
    }
}

fn meta_u(g: &Gguf, key: &str) -> Result<usize, Error> {
    g.get(key)
        .and_then(|v| v.as_u64())
        .map(|v| v as usize)
        .ok_or_else(|| Error::Unsupported(format!("metadata {key} is missing or not an integer")))
}

impl Model {
    /// Build the model over an opened GGUF, with `threads` compute threads.
    pub fn load(gguf: Gguf, threads: usize, path: KernelPath) -> Result<Model, Error> {
        let arch = gguf
            .get("general.architecture")
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_string();
        if arch != "llama" {
            return Err(Error::Unsupported(format!(
                "architecture {arch:?}: vuf's engine runs llama-architecture models only"
            )));
        }
        let k = |s: &str| format!("{arch}.{s}");
        let n_embd = meta_u(&gguf, &k("embedding_length"))?;
        let n_head = meta_u(&gguf, &k("attention.head_count"))?;
        let n_head_kv = gguf
            .get(&k("attention.head_count_kv"))
            .and_then(|v| v.as_u64())
            .map(|v| v as usize)
            .unwrap_or(n_head);
        if n_head == 0 || n_head_kv == 0 || n_embd % n_head != 0 || n_head % n_head_kv != 0 {
            return Err(Error::Unsupported(format!(
                "head counts {n_head}/{n_head_kv} do not divide the embedding width {n_embd}"
            )));
        }
        let head_dim = n_embd / n_head;
        let rope_dim = gguf
            .get(&k("rope.dimension_count"))
            .and_then(|v| v.as_u64())
            .map(|v| v as usize)
            .unwrap_or(head_dim);
        if rope_dim != head_dim || head_dim % 2 != 0 {
            return Err(Error::Unsupported(format!(
                "partial rotary embeddings (rope dims {rope_dim} of head width {head_dim})"
            )));
        }
        if gguf
            .get(&k("rope.scaling.type"))
            .and_then(|v| v.as_str())
            .is_some_and(|s| s != "none")
        {
            return Err(Error::Unsupported("RoPE scaling".into()));
        }
        let tok = gguf
            .tensor("token_embd.weight")
            .ok_or_else(|| Error::Unsupported("tensor token_embd.weight is missing".into()))?
            .clone();
        let n_vocab = tok.dims.get(1).copied().unwrap_or(0) as usize;
        let config = Config {
            n_layer: meta_u(&gguf, &k("block_count"))?,
            n_embd,
            n_head,
            n_head_kv,
            head_dim,
            n_ff: meta_u(&gguf, &k("feed_forward_length"))?,
            n_vocab,
            n_ctx_train: meta_u(&gguf, &k("context_length"))?,
            rope_base: gguf
                .get(&k("rope.freq_base"))
                .and_then(|v| v.as_f64())
                .unwrap_or(10000.0) as f32,
            rope_dim,
            rms_eps: gguf
                .get(&k("attention.layer_norm_rms_epsilon"))
                .and_then(|v| v.as_f64())
                .unwrap_or(1e-5) as f32,
        };
        if !config.n_embd.is_multiple_of(32) || !config.n_ff.is_multiple_of(32) {
            return Err(Error::Unsupported(format!(
                "widths {}/{} are not multiples of 32",
                config.n_embd, config.n_ff
            )));
        }
        let kvd = n_head_kv * head_dim;
        let matrix = |name: &str, cols: usize, rows: usize| -> Result<Matrix, Error> {
            let t = gguf
                .tensor(name)
                .ok_or_else(|| Error::Unsupported(format!("tensor {name} is missing")))?;
            as_matrix(t, cols, rows)
        };
        let vector = |name: &str, n: usize| -> Result<Vec<f32>, Error> {
            let t = gguf
                .tensor(name)
                .ok_or_else(|| Error::Unsupported(format!("tensor {name} is missing")))?;
            if t.elements() != n as u64 {
                return Err(Error::Unsupported(format!(
                    "tensor {name} has {} elements, expected {n}",
                    t.elements()
                )));
            }
            let ty = WeightType::from_ggml(t.ty)
                .filter(|w| matches!(w, WeightType::F32 | WeightType::F16));
            let Some(ty) = ty else {
                return Err(Error::Unsupported(format!(
                    "tensor {name} has type {}; norms must be F32 or F16",
                    t.ty
                )));
            };
            let mut v = vec![0f32; n];
            scalar::dequantize_row(ty, gguf.data(t), &mut v);
            Ok(v)
        };
        // Capacity bounded by what the file can hold: a corrupt block count must fail on
        // its first missing tensor, not on a giant allocation.
        let mut layers = Vec::with_capacity(config.n_layer.min(gguf.tensors.len()));
        for l in 0..config.n_layer {
            let b = |s: &str| format!("blk.{l}.{s}.weight");
            layers.push(Layer {
                attn_norm: vector(&b("attn_norm"), n_embd)?,
                wq: matrix(&b("attn_q"), n_embd, n_embd)?,
                wk: matrix(&b("attn_k"), n_embd, kvd)?,
                wv: matrix(&b("attn_v"), n_embd, kvd)?,
                wo: matrix(&b("attn_output"), n_embd, n_embd)?,
                ffn_norm: vector(&b("ffn_norm"), n_embd)?,
                gate: matrix(&b("ffn_gate"), n_embd, config.n_ff)?,
                up: matrix(&b("ffn_up"), n_embd, config.n_ff)?,
                down: matrix(&b("ffn_down"), config.n_ff, n_embd)?,
            });
        }
        let tok_embd = as_matrix(&tok, n_embd, n_vocab)?;
        let output = match gguf.tensor("output.weight") {
            Some(t) => as_matrix(t, n_embd, n_vocab)?,
            None => tok_embd.clone(),
        };
        let out_norm = vector("output_norm.weight", n_embd)?;
        Ok(Model {
            gguf,
            config,
            tok_embd,
            out_norm,
            output,
            layers,
            path,
            pool: Pool::new(threads),
        })
    }

    /// The GGUF the weights live in.
    pub fn gguf(&self) -> &Gguf {
        &self.gguf
    }

    /// Compute threads.
    pub fn threads(&self) -> usize {
        self.pool.threads()
    }

    /// Kernel path in use.
    pub fn kernel_path(&self) -> KernelPath {
        self.path
    }

    /// Distinct ggml types of the weight matrices, in first-seen order.
    pub fn quant_types(&self) -> Vec<String> {
        let mut v: Vec<String> = Vec::new();
        for t in &self.gguf.tensors {
            let n = t.ty.name().to_string();
            if !v.contains(&n) {
                v.push(n);
            }
        }
        v
    }

    fn bytes(&self, m: &Matrix) -> &[u8] {
        self.gguf.range(m.offset, m.len)
    }

    /// Run `tokens` through the model at the positions after `cache`, append their keys
    /// and values to it, and return the logits of the last token.
    pub fn forward(&self, tokens: &[u32], cache: &mut KvCache) -> Result<Vec<f32>, Error> {
        let c = &self.config;
        let t_n = tokens.len();
        if t_n == 0 {
            return Err(Error::Context("no tokens to evaluate".into()));
        }
        if cache.len + t_n > c.n_ctx_train {
            return Err(Error::Context(format!(
                "{} tokens exceed the model's context length {}",
                cache.len + t_n,
                c.n_ctx_train
            )));
        }
        if let Some(bad) = tokens.iter().find(|&&t| t as usize >= c.n_vocab) {
            return Err(Error::Context(format!(
                "token id {bad} is outside the vocabulary"
            )));
        }
        if cache.k.is_empty() {
            cache.k = vec![Vec::new(); c.n_layer];
            cache.v = vec![Vec::new(); c.n_layer];
        }
        let d = c.n_embd;
        let kvd = c.n_head_kv * c.head_dim;
        let pos0 = cache.len;

        let mut x = vec![0f32; t_n * d];
        let erb = self.tok_embd.ty.row_bytes(d);
        let emb = self.bytes(&self.tok_embd);
        for (i, &t) in tokens.iter().enumerate() {
            let row = &emb[t as usize * erb..(t as usize + 1) * erb];
            scalar::dequantize_row(self.tok_embd.ty, row, &mut x[i * d..(i + 1) * d]);
        }
        let rope = rope_table(c, pos0, t_n);

        let mut xn = vec![0f32; t_n * d];
        let mut q8 = vec![BlockQ8::default(); t_n * c.n_ff.max(d) / 32];
        let mut q = vec![0f32; t_n * d];
        let mut k = vec![0f32; t_n * kvd];
        let mut v = vec![0f32; t_n * kvd];
        let mut att = vec![0f32; t_n * d];
        let mut tmp = vec![0f32; t_n * d];
        let mut g = vec![0f32; t_n * c.n_ff];
        let mut u = vec![0f32; t_n * c.n_ff];

        for (l, layer) in self.layers.iter().enumerate() {
            rms_norm(&x, &layer.attn_norm, c.rms_eps, &mut xn);
            quantize_rows(&xn, d, &mut q8);
            self.matmul(
                &mut [
                    (&layer.wq, &mut q),
                    (&layer.wk, &mut k),
                    (&layer.wv, &mut v),
                ],
                &q8[..t_n * d / 32],
                &xn,
                t_n,
            );
            apply_rope(&mut q, c.n_head, c.head_dim, &rope);
            apply_rope(&mut k, c.n_head_kv, c.head_dim, &rope);
            for val in q.iter_mut().chain(k.iter_mut()).chain(v.iter_mut()) {
                *val = f16_round(*val);
            }
            cache.k[l].extend_from_slice(&k);
            cache.v[l].extend_from_slice(&v);
            self.attention(&q, &cache.k[l], &cache.v[l], pos0, t_n, &mut att);
            quantize_rows(&att, d, &mut q8);
            self.matmul(&mut [(&layer.wo, &mut tmp)], &q8[..t_n * d / 32], &att, t_n);
            add(&mut x, &tmp);

            rms_norm(&x, &layer.ffn_norm, c.rms_eps, &mut xn);
            quantize_rows(&xn, d, &mut q8);
            self.matmul(
                &mut [(&layer.gate, &mut g), (&layer.up, &mut u)],
                &q8[..t_n * d / 32],
                &xn,
                t_n,
            );
            for (a, b) in g.iter_mut().zip(&u) {
                *a = *a / (1.0 + (-*a).exp()) * b;
            }
            quantize_rows(&g, c.n_ff, &mut q8);
            self.matmul(
                &mut [(&layer.down, &mut tmp)],
                &q8[..t_n * c.n_ff / 32],
                &g,
                t_n,
            );
            add(&mut x, &tmp);
        }
        cache.len += t_n;

        let last = &x[(t_n - 1) * d..];
        let mut xl = vec![0f32; d];
        rms_norm(last, &self.out_norm, c.rms_eps, &mut xl);
        let mut ql = vec![BlockQ8::default(); d / 32];
        quantize_q8(&xl, &mut ql);
        let mut logits = vec![0f32; c.n_vocab];
        self.matmul(&mut [(&self.output, &mut logits)], &ql, &xl, 1);
        Ok(logits)
    }

    /// Several matrix products over the same activations as one parallel region: the rows
    /// of all matrices are split evenly over the threads (Q, K and V together; gate and up
    /// together), so no thread idles while another finishes a small matrix.
    fn matmul(
        &self,
        tasks: &mut [(&Matrix, &mut Vec<f32>)],
        q8: &[BlockQ8],
        xf: &[f32],
        tokens: usize,
    ) {
        for (m, o) in tasks.iter() {
            assert!(o.len() >= m.rows * tokens);
        }
        let total: usize = tasks.iter().map(|(m, _)| m.rows).sum();
        let jobs: Vec<(MatVec<'_>, usize, Out)> = tasks
            .iter_mut()
            .map(|(m, o)| (*m, Out(o.as_mut_ptr())))
            .map(|(m, out)| {
                (
                    MatVec {
                        ty: m.ty,
                        w: self.bytes(m),
                        cols: m.cols,
                        q8,
                        xf,
                        tokens,
                    },
                    m.rows,
                    out,
                )
            })
            .collect();
        let path = self.path;
        self.pool.run(&|i, n| {
            let (a, b) = split(total, i, n, 16);
            let mut base = 0;
            for (mv, rows, out) in &jobs {
                let (lo, hi) = (a.max(base), b.min(base + rows));
                if lo < hi {
                    // SAFETY: rows lo..hi of this matrix belong to this thread alone, and
                    // `out` holds `rows * tokens` floats (asserted above).
                    unsafe { mv.rows(path, lo - base, hi - base, out.ptr(), *rows) };
                }
                base += rows;
            }
        });
    }

    /// Causal grouped-query attention of the `t_n` new queries over every cached position.
    fn attention(
        &self,
        q: &[f32],
        kc: &[f32],
        vc: &[f32],
        pos0: usize,
        t_n: usize,
        out: &mut [f32],
    ) {
        let c = &self.config;
        let hd = c.head_dim;
        let kvd = c.n_head_kv * hd;
        let group = c.n_head / c.n_head_kv;
        let scale = 1.0 / (hd as f32).sqrt();
        let tasks = t_n * c.n_head;
        let out_p = Out(out.as_mut_ptr());
        let path = self.path;
        self.pool.run(&|i, n| {
            let (a, b) = split(tasks, i, n, 1);
            let mut scores = vec![0f32; pos0 + t_n];
            for task in a..b {
                let (t, h) = (task / c.n_head, task % c.n_head);
                let kvh = h / group;
                let qv = &q[t * c.n_embd + h * hd..t * c.n_embd + (h + 1) * hd];
                let span = pos0 + t + 1;
                let mut max = f32::NEG_INFINITY;
                for (j, s) in scores[..span].iter_mut().enumerate() {
                    let kv = &kc[j * kvd + kvh * hd..j * kvd + (kvh + 1) * hd];
                    *s = kernels::dot_f32(path, qv, kv) * scale;
                    max = max.max(*s);
                }
                let mut sum = 0f64;
                for s in &mut scores[..span] {
                    *s = (*s - max).exp();
                    sum += f64::from(*s);
                }
                let inv = (1.0 / sum) as f32;
                // SAFETY: each (token, head) task owns its own `hd` output floats.
                let o = unsafe {
                    std::slice::from_raw_parts_mut(out_p.ptr().add(t * c.n_embd + h * hd), hd)
                };
                o.fill(0.0);
                for (j, s) in scores[..span].iter().enumerate() {
                    let p = s * inv;
                    let vv = &vc[j * kvd + kvh * hd..j * kvd + (kvh + 1) * hd];
                    kernels::axpy(path, p, vv, o);
                }
            }
        });
    }
}

fn as_matrix(t: &TensorInfo, cols: usize, rows: usize) -> Result<Matrix, Error> {
    let ty = WeightType::from_ggml(t.ty).ok_or_else(|| {
        Error::Unsupported(format!(
            "tensor {} has quantisation type {}, which vuf's engine does not compute (supported: Q4_0, Q4_1, Q8_0, F16, F32)",
            t.name, t.ty
        ))
    })?;
    if t.dims.len() != 2 || t.dims[0] != cols as u64 || t.dims[1] != rows as u64 {
        return Err(Error::Unsupported(format!(
            "tensor {} has shape {:?}, expected [{cols}, {rows}]",
            t.name, t.dims
        )));
    }
    Ok(Matrix {
        ty,
        rows,
        cols,
        offset: t.offset as usize,
        len: t.len as usize,
    })
}

fn add(x: &mut [f32], y: &[f32]) {
    for (a, b) in x.iter_mut().zip(y) {
        *a += b;
    }
}

/// Row-wise RMSNorm: `out = x / sqrt(mean(x^2) + eps) * w` (sum in f64, as ggml).
fn rms_norm(x: &[f32], w: &[f32], eps: f32, out: &mut [f32]) {
    let d = w.len();
    for (xr, or) in x.chunks_exact(d).zip(out.chunks_exact_mut(d)) {
        let ss: f64 = xr.iter().map(|v| f64::from(*v) * f64::from(*v)).sum();
        let mean = (ss / d as f64) as f32;
        let scale = 1.0 / (mean + eps).sqrt();
        for ((o, v), g) in or.iter_mut().zip(xr).zip(w) {
            *o = v * scale * g;
        }
    }
}

fn quantize_rows(x: &[f32], width: usize, out: &mut [BlockQ8]) {
    let nb = width / 32;
    for (r, row) in x.chunks_exact(width).enumerate() {
        quantize_q8(row, &mut out[r * nb..(r + 1) * nb]);
    }
}

/// (cos, sin) per token and rotated pair: ggml's angle recurrence, in f32.
fn rope_table(c: &Config, pos0: usize, t_n: usize) -> Vec<Vec<(f32, f32)>> {
    let theta_scale = c.rope_base.powf(-2.0 / c.rope_dim as f32);
    (0..t_n)
        .map(|t| {
            let mut theta = (pos0 + t) as f32;
            (0..c.rope_dim / 2)
                .map(|_| {
                    let cs = (theta.cos(), theta.sin());
                    theta *= theta_scale;
                    cs
                })
                .collect()
        })
        .collect()
}

/// Rotate adjacent pairs `(x[2i], x[2i+1])` of every head by the token's angles.
fn apply_rope(x: &mut [f32], heads: usize, hd: usize, table: &[Vec<(f32, f32)>]) {
    let width = heads * hd;
    for (row, angles) in x.chunks_exact_mut(width).zip(table) {
        for head in row.chunks_exact_mut(hd) {
            for (pair, &(cos, sin)) in head.chunks_exact_mut(2).zip(angles) {
                let (a, b) = (pair[0], pair[1]);
                pair[0] = a * cos - b * sin;
                pair[1] = a * sin + b * cos;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rms_norm_by_hand() {
        // x = [3, 4]: mean of squares 12.5, 1/sqrt(12.5) = 0.2828...; w = [1, 2].
        let mut o = [0f32; 2];
        rms_norm(&[3.0, 4.0], &[1.0, 2.0], 0.0, &mut o);
        assert!((o[0] - 0.848_528_1).abs() < 1e-6 && (o[1] - 2.262_741_7).abs() < 1e-6);
    }

    #[test]
    fn rope_rotates_pairs_by_position() {
        let c = Config {
            n_layer: 1,
            n_embd: 4,
            n_head: 1,
            n_head_kv: 1,
            head_dim: 4,
            n_ff: 32,
            n_vocab: 1,
            n_ctx_train: 8,
            rope_base: 10000.0,
            rope_dim: 4,
            rms_eps: 1e-5,
        };
        // Position 1: pair 0 turns by 1 rad, pair 1 by 10000^(-1/2) = 0.01 rad.
        let t = rope_table(&c, 1, 1);
        let mut x = vec![1.0, 0.0, 1.0, 0.0];
        apply_rope(&mut x, 1, 4, &t);
        assert!((x[0] - 1f32.cos()).abs() < 1e-6 && (x[1] - 1f32.sin()).abs() < 1e-6);
        assert!((x[2] - 0.01f32.cos()).abs() < 1e-6 && (x[3] - 0.01f32.sin()).abs() < 1e-6);
        // Position 0 leaves x unchanged.
        let t0 = rope_table(&c, 0, 1);
        let mut y = vec![0.5, -2.0, 3.0, 1.0];
        apply_rope(&mut y, 1, 4, &t0);
        assert_eq!(y, vec![0.5, -2.0, 3.0, 1.0]);
    }
}
