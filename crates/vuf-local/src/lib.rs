//! # vuf-local: vuf's embedded inference engine
//!
//! Loads a llama-architecture GGUF model file and generates chat completions on the CPU,
//! in pure Rust, so `vuf run` can run a real study with no key, no server and no network.
//!
//! The pieces follow the data: [`gguf`] maps and validates the file; [`tokenizer`] rebuilds
//! the byte-level BPE tokenizer from its metadata; [`template`] renders the model's own
//! Jinja chat template; [`model`] runs the transformer over [`kernels`] (scalar and AVX2,
//! chosen at run time) on a [`pool`] of threads; [`sampler`] picks tokens; [`locate`] finds
//! the default model file. [`Engine`] ties them together. It knows nothing about vuf's
//! studies, traces or providers: the `vuf` crate adapts it to its `Provider` trait.
//!
//! Why its own engine: candle's generic build decodes this model at a quarter of
//! llama.cpp's speed and its fast paths are compile-time only; llama.cpp bindings need
//! cmake, libclang and a C++ build. A llama-only engine with runtime-dispatched integer
//! kernels is under 4,000 lines of Rust (tests included), needs no native build step, and
//! decodes faster than llama.cpp on the same file (docs/local-model.md, BENCHMARKS.md).
#![warn(missing_docs)]

pub mod gguf;
pub mod kernels;
pub mod locate;
pub mod model;
pub mod pool;
pub mod sampler;
pub mod template;
pub mod tokenizer;

use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub use gguf::{Gguf, GgufError};
pub use kernels::KernelPath;
pub use model::{KvCache, Model};
pub use sampler::SamplingParams;
pub use template::{ChatTemplate, Message};
pub use tokenizer::Tokenizer;

/// The engine's name in traces.
pub const ENGINE_NAME: &str = "vuf-local";
/// The engine's version in traces.
pub const ENGINE_VERSION: &str = env!("CARGO_PKG_VERSION");

/// More compute threads than this never help a CPU decoder (and a typo must not spawn
/// thousands of threads).
pub const MAX_THREADS: usize = 256;

/// The compute threads a model runs with when `requested` are asked for: 0 means one per
/// core (`std::thread::available_parallelism`), and a request above the core count is cut
/// to it. The pool's workers wait by spinning, so a thread without a core of its own only
/// takes time from the others (8 threads on 2 cores decode about 7x slower than 2); the
/// answers do not depend on the thread count.
pub fn effective_threads(requested: usize) -> usize {
    let cores = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(MAX_THREADS);
    if requested == 0 {
        cores
    } else {
        requested.min(cores)
    }
}

/// Errors of loading or running a model.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file is missing, unreadable, truncated or not GGUF.
    #[error(transparent)]
    Gguf(#[from] GgufError),
    /// The file is valid GGUF but uses something the engine does not implement.
    #[error("{path}: unsupported model: {message}")]
    UnsupportedModel {
        /// File.
        path: String,
        /// What is unsupported.
        message: String,
    },
    /// An unsupported feature (wrapped with the path by [`Engine::load`]).
    #[error("{0}")]
    Unsupported(String),
    /// The tokenizer metadata is unusable.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// The chat template does not compile or render.
    #[error("chat template: {0}")]
    Template(String),
    /// The request does not fit the model (context length, bad token).
    #[error("{0}")]
    Context(String),
}

/// How to load a model.
#[derive(Debug, Clone, Copy, Default)]
pub struct LoadOptions {
    /// Compute threads; 0 = `std::thread::available_parallelism`, and never more than
    /// that ([`effective_threads`]).
    pub threads: usize,
    /// Force a kernel path (tests, benchmarks); `None` = the fastest this CPU supports.
    pub kernels: Option<KernelPath>,
}

/// What one generation is asked to do.
#[derive(Debug, Clone)]
pub struct GenerateParams {
    /// Cap on generated tokens.
    pub max_tokens: u32,
    /// Temperature, top-p, seed.
    pub sampling: SamplingParams,
    /// Stop strings: generation ends before the first occurrence of any.
    pub stop: Vec<String>,
    /// Keep generating through end-of-generation tokens (benchmarks that need a fixed
    /// answer length, as llama.cpp's `ignore_eos`).
    pub ignore_eos: bool,
}

/// Why a generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finish {
    /// An end-of-generation token or a stop string.
    Stop,
    /// The token cap (or the context length).
    Length,
}

impl Finish {
    /// The OpenAI-style `finish_reason`.
    pub fn as_str(self) -> &'static str {
        match self {
            Finish::Stop => "stop",
            Finish::Length => "length",
        }
    }
}

/// The result of one generation.
#[derive(Debug, Clone)]
pub struct Generation {
    /// Generated text (control tokens and any stop string removed).
    pub text: String,
    /// Prompt tokens evaluated.
    pub prompt_tokens: usize,
    /// Tokens generated (the end-of-generation token not counted).
    pub completion_tokens: usize,
    /// Generated token ids.
    pub tokens: Vec<u32>,
    /// Why it ended.
    pub finish: Finish,
    /// Time spent evaluating the prompt.
    pub prefill: Duration,
    /// Time spent generating.
    pub decode: Duration,
}

/// What is loaded, for traces.
#[derive(Debug, Clone, PartialEq)]
pub struct EngineInfo {
    /// GGUF file name (no directory).
    pub file_name: String,
    /// File size in bytes.
    pub file_size: u64,
    /// [`Gguf::fingerprint`].
    pub fingerprint: String,
    /// `general.name`, if any.
    pub model_name: Option<String>,
    /// Distinct tensor types.
    pub quant_types: Vec<String>,
    /// Compute threads.
    pub threads: usize,
    /// Kernel path.
    pub kernels: KernelPath,
    /// Training context length.
    pub n_ctx_train: usize,
}

/// A loaded model with its tokenizer and chat template. Generations are serialised (one
/// at a time per engine): each already uses every compute thread.
pub struct Engine {
    model: Model,
    tokenizer: Tokenizer,
    template: ChatTemplate,
    info: EngineInfo,
    lock: Mutex<()>,
}

impl Engine {
    /// Load `path`.
    pub fn load(path: &Path, opts: LoadOptions) -> Result<Engine, Error> {
        let gguf = Gguf::open(path)?;
        let with_path = |e: Error| match e {
            Error::Unsupported(message) => Error::UnsupportedModel {
                path: path.display().to_string(),
                message,
            },
            other => other,
        };
        let tokenizer = Tokenizer::from_gguf(&gguf).map_err(with_path)?;
        let src = gguf
            .get("tokenizer.chat_template")
            .and_then(|v| v.as_str())
            .ok_or_else(|| Error::Template("the GGUF has no tokenizer.chat_template".into()))?;
        let tok = |id: Option<u32>| {
            id.and_then(|i| tokenizer.token_text(i))
                .unwrap_or("")
                .to_string()
        };
        let template = ChatTemplate::new(src, &tok(tokenizer.bos), &tok(tokenizer.eos))?;
        let threads = effective_threads(opts.threads);
        let kernels = match opts.kernels {
            Some(k) if k.available() => k,
            Some(k) => {
                return Err(Error::Unsupported(format!(
                    "kernel path {} is not available on this CPU",
                    k.as_str()
                )))
            }
            None => KernelPath::detect(),
        };
        let file_name = path
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let model_name = gguf
            .get("general.name")
            .and_then(|v| v.as_str())
            .map(str::to_string);
        let fingerprint = gguf.fingerprint();
        let file_size = gguf.file_len();
        let model = Model::load(gguf, threads, kernels).map_err(with_path)?;
        if model.config.n_vocab != tokenizer.len() {
            return Err(with_path(Error::Unsupported(format!(
                "the tokenizer has {} tokens but the output layer {}",
                tokenizer.len(),
                model.config.n_vocab
            ))));
        }
        let info = EngineInfo {
            file_name,
            file_size,
            fingerprint,
            model_name,
            quant_types: model.quant_types(),
            threads: model.threads(),
            kernels,
            n_ctx_train: model.config.n_ctx_train,
        };
        Ok(Engine {
            model,
            tokenizer,
            template,
            info,
            lock: Mutex::new(()),
        })
    }

    /// What is loaded.
    pub fn info(&self) -> &EngineInfo {
        &self.info
    }

    /// The tokenizer.
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// The model.
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// Render a conversation with the model's chat template (generation prompt added).
    pub fn render(&self, messages: &[Message]) -> Result<String, Error> {
        self.template.render(messages, true)
    }

    /// Tokenise a rendered prompt as generation does (specials parsed, BOS if the model
    /// asks for one).
    pub fn prompt_tokens(&self, prompt: &str) -> Vec<u32> {
        let mut ids = self.tokenizer.encode(prompt, true);
        if self.tokenizer.add_bos {
            if let Some(b) = self.tokenizer.bos {
                if ids.first() != Some(&b) {
                    ids.insert(0, b);
                }
            }
        }
        ids
    }

    /// Render `messages` and generate the assistant's reply.
    pub fn chat(
        &self,
        messages: &[Message],
        params: &GenerateParams,
        on_token: &mut dyn FnMut(usize),
    ) -> Result<Generation, Error> {
        let prompt = self.render(messages)?;
        self.generate(&prompt, params, on_token)
    }

    /// Generate from a rendered prompt. `on_token(n)` is called after each new token.
    pub fn generate(
        &self,
        prompt: &str,
        params: &GenerateParams,
        on_token: &mut dyn FnMut(usize),
    ) -> Result<Generation, Error> {
        let _one_at_a_time = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let ids = self.prompt_tokens(prompt);
        let n_ctx = self.model.config.n_ctx_train;
        if ids.len() >= n_ctx {
            return Err(Error::Context(format!(
                "the prompt has {} tokens; the model's context is {n_ctx}",
                ids.len()
            )));
        }
        let mut cache = KvCache::default();
        let t0 = Instant::now();
        let mut logits = self.model.forward(&ids, &mut cache)?;
        let prefill = t0.elapsed();
        let t1 = Instant::now();
        let mut sampler = sampler::Sampler::new(params.sampling);
        let mut out: Vec<u32> = Vec::new();
        let mut bytes: Vec<u8> = Vec::new();
        let mut cut: Option<usize> = None;
        let finish = loop {
            if out.len() >= params.max_tokens as usize {
                break Finish::Length;
            }
            let next = sampler.sample(&logits);
            if !params.ignore_eos && self.tokenizer.is_end_of_generation(next) {
                break Finish::Stop;
            }
            out.push(next);
            bytes.extend(self.tokenizer.token_bytes(next, false));
            on_token(out.len());
            if !params.stop.is_empty() {
                let text = String::from_utf8_lossy(&bytes);
                if let Some(at) = params
                    .stop
                    .iter()
                    .filter(|s| !s.is_empty())
                    .filter_map(|s| text.find(s.as_str()))
                    .min()
                {
                    cut = Some(at);
                    break Finish::Stop;
                }
            }
            if out.len() >= params.max_tokens as usize || cache.len() + 1 >= n_ctx {
                break Finish::Length;
            }
            logits = self.model.forward(&[next], &mut cache)?;
        };
        let mut text = String::from_utf8_lossy(&bytes).into_owned();
        if let Some(at) = cut {
            text.truncate(at);
        }
        Ok(Generation {
            text,
            prompt_tokens: ids.len(),
            completion_tokens: out.len(),
            tokens: out,
            finish,
            prefill,
            decode: t1.elapsed(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::effective_threads;

    #[test]
    fn threads_are_one_per_core_at_most() {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        assert_eq!(effective_threads(0), cores);
        assert_eq!(effective_threads(1), 1);
        assert_eq!(effective_threads(cores), cores);
        assert_eq!(effective_threads(cores + 1), cores);
        assert_eq!(effective_threads(1000), cores.min(1000));
        assert_eq!(effective_threads(usize::MAX), cores);
    }
}
