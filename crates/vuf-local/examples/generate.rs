//! Generate from a GGUF model: `cargo run --release -p vuf-local --example generate --
//! MODEL.gguf "question" [max_tokens] [threads] [scalar|avx2] [temperature] [seed]`.
//! Prints the answer and the prefill/decode speeds; used to try the engine by hand.

use std::path::Path;

use vuf_local::{Engine, GenerateParams, KernelPath, LoadOptions, Message, SamplingParams};

fn main() {
    let a: Vec<String> = std::env::args().collect();
    if a.len() < 3 {
        eprintln!("usage: generate MODEL.gguf QUESTION [max_tokens] [threads] [scalar|avx2] [temperature] [seed]");
        std::process::exit(2);
    }
    let max_tokens = a.get(3).and_then(|s| s.parse().ok()).unwrap_or(100);
    let threads = a.get(4).and_then(|s| s.parse().ok()).unwrap_or(0);
    let kernels = match a.get(5).map(String::as_str) {
        Some("scalar") => Some(KernelPath::Scalar),
        Some("avx2") => Some(KernelPath::Avx2),
        _ => None,
    };
    let temperature = a.get(6).and_then(|s| s.parse().ok()).unwrap_or(0.0);
    let seed = a.get(7).and_then(|s| s.parse().ok()).unwrap_or(0);
    let t = std::time::Instant::now();
    let engine = match Engine::load(Path::new(&a[1]), LoadOptions { threads, kernels }) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    };
    eprintln!(
        "loaded in {:.2}s: {:?}",
        t.elapsed().as_secs_f64(),
        engine.info()
    );
    let params = GenerateParams {
        max_tokens,
        sampling: SamplingParams {
            temperature,
            top_p: 0.95,
            seed,
        },
        stop: vec![],
        ignore_eos: false,
    };
    match engine.chat(&[Message::user(a[2].clone())], &params, &mut |_| {}) {
        Ok(g) => {
            println!("{}", g.text);
            eprintln!(
                "prompt {} tokens in {:.3}s ({:.1} tok/s); {} tokens in {:.3}s ({:.1} tok/s); finish {}",
                g.prompt_tokens,
                g.prefill.as_secs_f64(),
                g.prompt_tokens as f64 / g.prefill.as_secs_f64(),
                g.completion_tokens,
                g.decode.as_secs_f64(),
                g.completion_tokens as f64 / g.decode.as_secs_f64(),
                g.finish.as_str()
            );
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}
