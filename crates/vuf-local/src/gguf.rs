//! GGUF reader: header, metadata and tensor directory of a GGUF v2/v3 file, memory-mapped.
//!
//! Owns the file format only (layout per the GGUF spec in ggml's `docs/gguf.md`): it knows
//! nothing about llama layers or tokenizers. Every length, count and offset read from the
//! file is checked against what is left of the file before it is used, so a truncated or
//! corrupted file gives a [`GgufError`] that says what was being read and where, never a
//! panic or an allocation sized by garbage. Tensor data stays in the mapping (zero copy),
//! which keeps the resident memory close to the file size, as llama.cpp's loader does.

use std::fmt;
use std::fs::File;
use std::path::{Path, PathBuf};

use memmap2::Mmap;

/// The GGUF magic, `GGUF` in ASCII.
const MAGIC: &[u8; 4] = b"GGUF";
/// Tensor data alignment when `general.alignment` is absent (GGUF spec).
const DEFAULT_ALIGNMENT: u64 = 32;
/// Upper bounds that no real model reaches; a count above them means a corrupt header.
const MAX_ENTRIES: u64 = 1 << 24;
const MAX_DIMS: u32 = 4;

/// What went wrong reading a GGUF file.
#[derive(Debug, thiserror::Error)]
pub enum GgufError {
    /// The file could not be opened or mapped.
    #[error("{path}: {source}")]
    Io {
        /// File.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The bytes do not form a GGUF file vuf can read.
    #[error("{path}: not a usable GGUF file: {message}")]
    Format {
        /// File.
        path: PathBuf,
        /// What is wrong, naming the field and byte offset.
        message: String,
    },
}

/// A ggml tensor element type (the `ggml_type` numbering of the GGUF spec).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GgmlType {
    /// 32-bit float.
    F32,
    /// IEEE half.
    F16,
    /// 4-bit, blocks of 32 with one f16 scale.
    Q4_0,
    /// 4-bit, blocks of 32 with f16 scale and minimum.
    Q4_1,
    /// 5-bit legacy quant (parsed, not computed).
    Q5_0,
    /// 5-bit legacy quant with minimum (parsed, not computed).
    Q5_1,
    /// 8-bit, blocks of 32 with one f16 scale.
    Q8_0,
    /// A k-quant or other type vuf can size but not compute (name kept for errors).
    Other(&'static str, u32),
}

impl GgmlType {
    fn from_id(id: u32) -> Option<GgmlType> {
        Some(match id {
            0 => GgmlType::F32,
            1 => GgmlType::F16,
            2 => GgmlType::Q4_0,
            3 => GgmlType::Q4_1,
            6 => GgmlType::Q5_0,
            7 => GgmlType::Q5_1,
            8 => GgmlType::Q8_0,
            10 => GgmlType::Other("Q2_K", id),
            11 => GgmlType::Other("Q3_K", id),
            12 => GgmlType::Other("Q4_K", id),
            13 => GgmlType::Other("Q5_K", id),
            14 => GgmlType::Other("Q6_K", id),
            15 => GgmlType::Other("Q8_K", id),
            24 => GgmlType::Other("I8", id),
            25 => GgmlType::Other("I16", id),
            26 => GgmlType::Other("I32", id),
            27 => GgmlType::Other("I64", id),
            28 => GgmlType::Other("F64", id),
            30 => GgmlType::Other("BF16", id),
            _ => return None,
        })
    }

    /// (elements per block, bytes per block).
    pub fn block(self) -> (u64, u64) {
        match self {
            GgmlType::F32 => (1, 4),
            GgmlType::F16 => (1, 2),
            GgmlType::Q4_0 => (32, 18),
            GgmlType::Q4_1 => (32, 20),
            GgmlType::Q5_0 => (32, 22),
            GgmlType::Q5_1 => (32, 24),
            GgmlType::Q8_0 => (32, 34),
            GgmlType::Other(_, id) => match id {
                10 => (256, 84),
                11 => (256, 110),
                12 => (256, 144),
                13 => (256, 176),
                14 => (256, 210),
                15 => (256, 292),
                24 => (1, 1),
                25 | 30 => (1, 2),
                26 => (1, 4),
                _ => (1, 8),
            },
        }
    }

    /// The type's name as ggml prints it.
    pub fn name(self) -> &'static str {
        match self {
            GgmlType::F32 => "F32",
            GgmlType::F16 => "F16",
            GgmlType::Q4_0 => "Q4_0",
            GgmlType::Q4_1 => "Q4_1",
            GgmlType::Q5_0 => "Q5_0",
            GgmlType::Q5_1 => "Q5_1",
            GgmlType::Q8_0 => "Q8_0",
            GgmlType::Other(n, _) => n,
        }
    }
}

impl fmt::Display for GgmlType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A metadata value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Any unsigned integer type, widened.
    UInt(u64),
    /// Any signed integer type, widened.
    Int(i64),
    /// f32 or f64, widened.
    Float(f64),
    /// Boolean.
    Bool(bool),
    /// UTF-8 string.
    Str(String),
    /// Array (elements of one type).
    Array(Vec<Value>),
}

impl Value {
    /// As an unsigned integer (non-negative signed values too).
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Value::UInt(v) => Some(v),
            Value::Int(v) if v >= 0 => Some(v as u64),
            _ => None,
        }
    }

    /// As a float (integers too).
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Value::Float(v) => Some(v),
            Value::UInt(v) => Some(v as f64),
            Value::Int(v) => Some(v as f64),
            _ => None,
        }
    }

    /// As a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// As an array.
    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(v) => Some(v),
            _ => None,
        }
    }
}

/// One entry of the tensor directory, already checked against the file size.
#[derive(Debug, Clone)]
pub struct TensorInfo {
    /// Tensor name (`blk.0.attn_q.weight`).
    pub name: String,
    /// Dimensions, fastest-varying first (`[ne0, ne1, ...]`): a matrix is `[cols, rows]`.
    pub dims: Vec<u64>,
    /// Element type.
    pub ty: GgmlType,
    /// Absolute byte offset of the data in the file.
    pub offset: u64,
    /// Byte length of the data.
    pub len: u64,
}

impl TensorInfo {
    /// Number of elements.
    pub fn elements(&self) -> u64 {
        self.dims.iter().product()
    }
}

/// An open GGUF file.
pub struct Gguf {
    path: PathBuf,
    map: Mmap,
    /// Format version (2 or 3).
    pub version: u32,
    /// Metadata in file order.
    pub metadata: Vec<(String, Value)>,
    /// Tensor directory in file order.
    pub tensors: Vec<TensorInfo>,
}

impl fmt::Debug for Gguf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Gguf")
            .field("path", &self.path)
            .field("version", &self.version)
            .field("metadata", &self.metadata.len())
            .field("tensors", &self.tensors.len())
            .finish()
    }
}

/// A bounds-checked little-endian reader over the mapped bytes.
struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: u64, what: &dyn Fn() -> String) -> Result<&'a [u8], String> {
        let left = (self.bytes.len() - self.pos) as u64;
        if n > left {
            return Err(format!(
                "file is truncated: {} needs {n} bytes at offset {} but only {left} remain",
                what(),
                self.pos
            ));
        }
        let s = &self.bytes[self.pos..self.pos + n as usize];
        self.pos += n as usize;
        Ok(s)
    }

    fn u32(&mut self, what: &dyn Fn() -> String) -> Result<u32, String> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self, what: &dyn Fn() -> String) -> Result<u64, String> {
        let b = self.take(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    fn string(&mut self, what: &dyn Fn() -> String) -> Result<String, String> {
        let n = self.u64(&|| format!("the length of {}", what()))?;
        let b = self.take(n, what)?;
        String::from_utf8(b.to_vec()).map_err(|_| format!("{} is not valid UTF-8", what()))
    }

    /// Read one value of type `ty`. Arrays are checked against the bytes left before any
    /// element is read, so a corrupt count cannot make the reader allocate gigabytes.
    fn value(&mut self, ty: u32, what: &dyn Fn() -> String, depth: u32) -> Result<Value, String> {
        let fixed = |c: &mut Cursor<'a>, n: u64| c.take(n, what).map(|b| b.to_vec());
        Ok(match ty {
            0 => Value::UInt(u64::from(fixed(self, 1)?[0])),
            1 => Value::Int(i64::from(fixed(self, 1)?[0] as i8)),
            2 => {
                let b = fixed(self, 2)?;
                Value::UInt(u64::from(u16::from_le_bytes([b[0], b[1]])))
            }
            3 => {
                let b = fixed(self, 2)?;
                Value::Int(i64::from(i16::from_le_bytes([b[0], b[1]])))
            }
            4 => Value::UInt(u64::from(self.u32(what)?)),
            5 => Value::Int(i64::from(self.u32(what)? as i32)),
            6 => Value::Float(f64::from(f32::from_bits(self.u32(what)?))),
            7 => match fixed(self, 1)?[0] {
                0 => Value::Bool(false),
                1 => Value::Bool(true),
                b => return Err(format!("{} is a bool with byte value {b}", what())),
            },
            8 => Value::Str(self.string(what)?),
            9 => {
                if depth > 2 {
                    return Err(format!("{} nests arrays too deeply", what()));
                }
                let ety = self.u32(&|| format!("the element type of {}", what()))?;
                let n = self.u64(&|| format!("the length of {}", what()))?;
                let min = match ety {
                    0 | 1 | 7 => 1,
                    2 | 3 => 2,
                    4..=6 => 4,
                    8 | 10..=12 => 8,
                    9 => 12,
                    t => return Err(format!("{} has unknown element type {t}", what())),
                };
                let left = (self.bytes.len() - self.pos) as u64;
                if n.saturating_mul(min) > left {
                    return Err(format!(
                        "file is truncated or corrupt: {} claims {n} elements but only {left} bytes remain at offset {}",
                        what(),
                        self.pos
                    ));
                }
                let mut v = Vec::with_capacity(n as usize);
                for i in 0..n {
                    v.push(self.value(ety, &|| format!("element {i} of {}", what()), depth + 1)?);
                }
                Value::Array(v)
            }
            10 => Value::UInt(self.u64(what)?),
            11 => Value::Int(self.u64(what)? as i64),
            12 => Value::Float(f64::from_bits(self.u64(what)?)),
            t => return Err(format!("{} has unknown value type {t}", what())),
        })
    }
}

impl Gguf {
    /// Map and parse `path`.
    pub fn open(path: &Path) -> Result<Gguf, GgufError> {
        let io = |source| GgufError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = File::open(path).map_err(io)?;
        // SAFETY: the mapping is read-only and private to this process; vuf never writes
        // model files, and a file changed underneath a running study is outside its contract
        // (llama.cpp maps model files the same way).
        let map = unsafe { Mmap::map(&file) }.map_err(io)?;
        Gguf::parse(path, map)
    }

    fn parse(path: &Path, map: Mmap) -> Result<Gguf, GgufError> {
        let fail = |message: String| GgufError::Format {
            path: path.to_path_buf(),
            message,
        };
        let (version, metadata, tensors) = Gguf::parse_bytes(&map).map_err(fail)?;
        Ok(Gguf {
            path: path.to_path_buf(),
            map,
            version,
            metadata,
            tensors,
        })
    }

    #[allow(clippy::type_complexity)]
    fn parse_bytes(bytes: &[u8]) -> Result<(u32, Vec<(String, Value)>, Vec<TensorInfo>), String> {
        let mut c = Cursor { bytes, pos: 0 };
        let magic = c.take(4, &|| "the magic number".into())?;
        if magic != MAGIC {
            return Err(format!(
                "the file does not start with the GGUF magic (found {:02x?}); is it a GGUF model?",
                magic
            ));
        }
        let version = c.u32(&|| "the version".into())?;
        if !(2..=3).contains(&version) {
            return Err(format!(
                "GGUF version {version} is not supported (vuf reads versions 2 and 3)"
            ));
        }
        let n_tensors = c.u64(&|| "the tensor count".into())?;
        let n_kv = c.u64(&|| "the metadata count".into())?;
        if n_tensors > MAX_ENTRIES || n_kv > MAX_ENTRIES {
            return Err(format!(
                "the header claims {n_tensors} tensors and {n_kv} metadata entries, which is corrupt"
            ));
        }
        let mut metadata = Vec::with_capacity(n_kv as usize);
        for i in 0..n_kv {
            let key = c.string(&|| format!("the key of metadata entry {i}"))?;
            let ty = c.u32(&|| format!("the type of metadata {key:?}"))?;
            let v = c.value(ty, &|| format!("metadata {key:?}"), 0)?;
            metadata.push((key, v));
        }
        let alignment = match metadata.iter().find(|(k, _)| k == "general.alignment") {
            None => DEFAULT_ALIGNMENT,
            Some((_, v)) => match v.as_u64() {
                Some(a) if a > 0 && a.is_power_of_two() => a,
                _ => return Err(format!("general.alignment {v:?} is not a power of two")),
            },
        };
        let mut raw = Vec::with_capacity(n_tensors as usize);
        for i in 0..n_tensors {
            let name = c.string(&|| format!("the name of tensor {i}"))?;
            let nd = c.u32(&|| format!("the dimension count of tensor {name:?}"))?;
            if nd == 0 || nd > MAX_DIMS {
                return Err(format!(
                    "tensor {name:?} has {nd} dimensions (1 to {MAX_DIMS} allowed)"
                ));
            }
            let mut dims = Vec::with_capacity(nd as usize);
            for d in 0..nd {
                dims.push(c.u64(&|| format!("dimension {d} of tensor {name:?}"))?);
            }
            let ty_id = c.u32(&|| format!("the type of tensor {name:?}"))?;
            let ty = GgmlType::from_id(ty_id)
                .ok_or_else(|| format!("tensor {name:?} has unknown ggml type {ty_id}"))?;
            let off = c.u64(&|| format!("the data offset of tensor {name:?}"))?;
            raw.push((name, dims, ty, off));
        }
        let data_start = (c.pos as u64).div_ceil(alignment) * alignment;
        let file_len = bytes.len() as u64;
        let mut tensors = Vec::with_capacity(raw.len());
        for (name, dims, ty, off) in raw {
            let (per_block, block_bytes) = ty.block();
            let mut elements: u64 = 1;
            for d in &dims {
                elements = elements
                    .checked_mul(*d)
                    .ok_or_else(|| format!("tensor {name:?} dimensions {dims:?} overflow"))?;
            }
            if dims[0] % per_block != 0 {
                return Err(format!(
                    "tensor {name:?} ({ty}) has a row of {} elements, not a multiple of its block size {per_block}",
                    dims[0]
                ));
            }
            let len = (elements / per_block)
                .checked_mul(block_bytes)
                .ok_or_else(|| format!("tensor {name:?} dimensions {dims:?} overflow"))?;
            let offset = data_start
                .checked_add(off)
                .filter(|o| o.checked_add(len).is_some_and(|end| end <= file_len))
                .ok_or_else(|| {
                    format!(
                        "file is truncated or corrupt: tensor {name:?} ({ty}, {dims:?}) needs bytes {}..{} but the file has {file_len}",
                        data_start.saturating_add(off),
                        data_start.saturating_add(off).saturating_add(len)
                    )
                })?;
            tensors.push(TensorInfo {
                name,
                dims,
                ty,
                offset,
                len,
            });
        }
        Ok((version, metadata, tensors))
    }

    /// The file this was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// File size in bytes.
    pub fn file_len(&self) -> u64 {
        self.map.len() as u64
    }

    /// A metadata value by key.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.metadata.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// A tensor by name.
    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.tensors.iter().find(|t| t.name == name)
    }

    /// The data bytes of a tensor (bounds were checked when the file was opened).
    pub fn data(&self, t: &TensorInfo) -> &[u8] {
        &self.map[t.offset as usize..(t.offset + t.len) as usize]
    }

    /// `len` bytes at absolute `offset` (a range inside a tensor checked at open).
    pub(crate) fn range(&self, offset: usize, len: usize) -> &[u8] {
        &self.map[offset..offset + len]
    }

    /// A cheap fingerprint of the file: FNV-1a over its length, header and metadata bytes,
    /// and 64 KiB samples spread over the tensor data. Hashing all of a multi-gigabyte file
    /// on every load would cost seconds; this catches a different file or a different
    /// quantisation of the same model, which is what a trace needs to say.
    pub fn fingerprint(&self) -> String {
        let b: &[u8] = &self.map;
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let mut eat = |s: &[u8]| {
            for &x in s {
                h ^= u64::from(x);
                h = h.wrapping_mul(0x0000_0100_0000_01b3);
            }
        };
        eat(&(b.len() as u64).to_le_bytes());
        let head = b.len().min(4 << 20);
        eat(&b[..head]);
        const SAMPLES: usize = 16;
        const SPAN: usize = 64 << 10;
        if b.len() > SPAN {
            for i in 0..SAMPLES {
                let at = (b.len() - SPAN) / (SAMPLES - 1) * i;
                eat(&b[at..at + SPAN]);
            }
        }
        format!("fnv1a64:{h:016x}")
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A tiny GGUF v3 writer for tests (only what the tests need).
    pub(crate) struct Writer {
        kv: Vec<u8>,
        n_kv: u64,
        tensors: Vec<(String, Vec<u64>, u32, Vec<u8>)>,
    }

    impl Writer {
        pub(crate) fn new() -> Writer {
            Writer {
                kv: Vec::new(),
                n_kv: 0,
                tensors: Vec::new(),
            }
        }

        fn key(&mut self, k: &str, ty: u32) {
            self.kv.extend((k.len() as u64).to_le_bytes());
            self.kv.extend(k.as_bytes());
            self.kv.extend(ty.to_le_bytes());
            self.n_kv += 1;
        }

        pub(crate) fn u32(mut self, k: &str, v: u32) -> Writer {
            self.key(k, 4);
            self.kv.extend(v.to_le_bytes());
            self
        }

        pub(crate) fn f32(mut self, k: &str, v: f32) -> Writer {
            self.key(k, 6);
            self.kv.extend(v.to_le_bytes());
            self
        }

        pub(crate) fn str(mut self, k: &str, v: &str) -> Writer {
            self.key(k, 8);
            self.kv.extend((v.len() as u64).to_le_bytes());
            self.kv.extend(v.as_bytes());
            self
        }

        pub(crate) fn strs(mut self, k: &str, v: &[&str]) -> Writer {
            self.key(k, 9);
            self.kv.extend(8u32.to_le_bytes());
            self.kv.extend((v.len() as u64).to_le_bytes());
            for s in v {
                self.kv.extend((s.len() as u64).to_le_bytes());
                self.kv.extend(s.as_bytes());
            }
            self
        }

        pub(crate) fn tensor(mut self, name: &str, dims: &[u64], ty: u32, data: Vec<u8>) -> Writer {
            self.tensors.push((name.into(), dims.to_vec(), ty, data));
            self
        }

        pub(crate) fn finish(self) -> Vec<u8> {
            let mut out = Vec::new();
            out.extend(MAGIC);
            out.extend(3u32.to_le_bytes());
            out.extend((self.tensors.len() as u64).to_le_bytes());
            out.extend(self.n_kv.to_le_bytes());
            out.extend(&self.kv);
            let mut off = 0u64;
            let mut offs = Vec::new();
            for (name, dims, ty, data) in &self.tensors {
                out.extend((name.len() as u64).to_le_bytes());
                out.extend(name.as_bytes());
                out.extend((dims.len() as u32).to_le_bytes());
                for d in dims {
                    out.extend(d.to_le_bytes());
                }
                out.extend(ty.to_le_bytes());
                out.extend(off.to_le_bytes());
                offs.push(off);
                off += (data.len() as u64).div_ceil(32) * 32;
            }
            while out.len() % 32 != 0 {
                out.push(0);
            }
            for ((_, _, _, data), o) in self.tensors.iter().zip(offs) {
                let start = out.len() as u64;
                assert_eq!(start % 32, 0);
                let _ = o;
                out.extend(data);
                while out.len() % 32 != 0 {
                    out.push(0);
                }
            }
            out
        }
    }

    pub(crate) fn write_tmp(bytes: &[u8], name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("vuf-local-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    fn sample() -> Vec<u8> {
        Writer::new()
            .str("general.architecture", "llama")
            .u32("llama.block_count", 2)
            .f32("llama.rope.freq_base", 10000.0)
            .strs("tokenizer.ggml.tokens", &["a", "b", "ab"])
            .tensor("w", &[4, 2], 0, vec![0u8; 32])
            .tensor("q", &[32, 1], 8, vec![1u8; 34])
            .finish()
    }

    #[test]
    fn reads_what_the_writer_wrote() {
        let p = write_tmp(&sample(), "ok.gguf");
        let g = Gguf::open(&p).unwrap();
        assert_eq!(g.version, 3);
        assert_eq!(
            g.get("general.architecture").unwrap().as_str(),
            Some("llama")
        );
        assert_eq!(g.get("llama.block_count").unwrap().as_u64(), Some(2));
        assert_eq!(
            g.get("llama.rope.freq_base").unwrap().as_f64(),
            Some(10000.0)
        );
        assert_eq!(
            g.get("tokenizer.ggml.tokens")
                .unwrap()
                .as_array()
                .unwrap()
                .len(),
            3
        );
        let w = g.tensor("w").unwrap();
        assert_eq!((w.ty, w.len, w.elements()), (GgmlType::F32, 32, 8));
        let q = g.tensor("q").unwrap();
        assert_eq!((q.ty, q.len), (GgmlType::Q8_0, 34));
        assert_eq!(g.data(q), &[1u8; 34][..]);
        assert!(g.fingerprint().starts_with("fnv1a64:"));
    }

    /// Every truncation of a valid file, and a set of single-byte corruptions, must give an
    /// error (or, for corruptions in bytes that carry no structure, a successful parse), and
    /// never a panic.
    #[test]
    fn truncations_and_corruptions_error_cleanly() {
        let good = sample();
        for cut in 0..good.len() - 1 {
            let end = good.len() - 1 - cut;
            // The trailing padding of the last tensor is not needed, so cuts inside it parse.
            let bytes = &good[..end];
            match Gguf::parse_bytes(bytes) {
                Ok(_) => assert!(end >= good.len() - 32, "cut at {end} parsed"),
                Err(m) => assert!(!m.is_empty()),
            }
        }
        let e = Gguf::parse_bytes(&good[..10]).unwrap_err();
        assert!(e.contains("truncated") && e.contains("tensor count"), "{e}");
        let mut state = 0x1234_5678u32;
        for _ in 0..3000 {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            let mut b = good.clone();
            let at = (state as usize) % b.len();
            b[at] = (state >> 8) as u8;
            let _ = Gguf::parse_bytes(&b);
        }
        let mut b = good.clone();
        b[0] = b'X';
        assert!(Gguf::parse_bytes(&b).unwrap_err().contains("magic"));
        let mut b = good.clone();
        b[4] = 9;
        assert!(Gguf::parse_bytes(&b).unwrap_err().contains("version 9"));
    }

    #[test]
    fn huge_counts_do_not_allocate() {
        let mut b = sample();
        // The metadata count: absurdly large.
        b[16..24].copy_from_slice(&u64::MAX.to_le_bytes());
        let e = Gguf::parse_bytes(&b).unwrap_err();
        assert!(e.contains("corrupt"), "{e}");
    }

    #[test]
    fn open_names_the_file() {
        let p = write_tmp(b"GGUF\x03\x00", "short.gguf");
        let e = Gguf::open(&p).unwrap_err().to_string();
        assert!(e.contains("short.gguf") && e.contains("truncated"), "{e}");
        let e = Gguf::open(Path::new("/nonexistent/x.gguf"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("/nonexistent/x.gguf"), "{e}");
    }
}
