//! `vuf code`: code the store's valid samples with the configured coder models.

use anyhow::Context;
use std::sync::atomic::{AtomicUsize, Ordering};

use vuf::code::client::HttpClient;
use vuf::code::offline::{apply, OfflineCoder};
use vuf::code::rubric::Rubric;
use vuf::code::runner::{self, Progress, RunOptions};
use vuf::code::{recompute, Layer};

use super::process::{doing, Activity};
use super::Global;
use vuf::text::{count, verb};

/// Arguments of `vuf code`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Layer to code (`a`, `b`); both (A first) when omitted.
    #[arg(long, value_parser = ["a", "b"])]
    pub layer: Option<String>,
    /// Layer B: hide the prompt from the coders (PROTOCOL 5.3).
    #[arg(long)]
    pub mask_prompt: bool,
    /// Only code the first N samples with the coder models (trial runs; not with
    /// --offline, which codes every sample in seconds).
    #[arg(long)]
    pub limit: Option<usize>,
    /// Study file with a `[[coders]]` section (default `<study-dir>/study.toml` if present,
    /// else the paper's three coders via OpenRouter).
    #[arg(long)]
    pub study: Option<std::path::PathBuf>,
    /// Code every valid sample with the built-in offline coder (no key, no network).
    /// Its codes are stored and analysed as source `offline`, always marked as such.
    #[arg(long, conflicts_with_all = ["cascade", "layer", "mask_prompt", "sequential", "limit"])]
    pub offline: bool,
    /// Cascade: keep the offline code where its confidence is at least THRESHOLD (0-1)
    /// and send only the other samples to the coder models (source `cascade`), asked by
    /// sequential majority unless --all-coders is given.
    #[arg(long, value_name = "THRESHOLD")]
    pub cascade: Option<f64>,
    /// Sequential majority: per layer ask the first two coders (in the fixed order) and a
    /// third only where they disagree on what the consensus votes on. Same consensus,
    /// fewer calls; the skipped coders are recorded as skipped by design, support counts
    /// are then out of 2, and reliability statistics treat the skips as missing. The
    /// default with --cascade; without it every coder is asked (the published design).
    #[arg(long, conflicts_with = "all_coders")]
    pub sequential: bool,
    /// With --cascade: ask every coder for every uncertain sample (the published design,
    /// needed for full inter-coder reliability) instead of sequential majority.
    #[arg(long, requires = "cascade")]
    pub all_coders: bool,
}

/// Run it.
pub fn run(global: &Global, args: &Args) -> anyhow::Result<()> {
    if args.offline {
        return offline(global);
    }
    if let Some(t) = args.cascade {
        anyhow::ensure!(
            (0.0..=1.0).contains(&t),
            "--cascade takes a threshold between 0 and 1, not {t}"
        );
        return cascade(global, args, t);
    }
    models(global, args, None, "code")
}

/// `vuf code --offline`.
fn offline(global: &Global) -> anyhow::Result<()> {
    let mut store = global.existing_store()?;
    doing(Activity::CodeOffline);
    let coder = OfflineCoder::load_default()?;
    let t = std::time::Instant::now();
    let r = apply::code_store(&mut store, &coder)?;
    println!(
        "offline coder {}: {} coded, {} already coded ({:.1}s); analyse with `{}`",
        apply::model_tag(),
        count(r.coded, "sample"),
        r.already,
        t.elapsed().as_secs_f64(),
        global.command("analyze --source offline")
    );
    if let Some(note) = vuf::code::layer_a_skipped_note(&r.layer_a_skipped) {
        println!("{}", vuf::report::escape::terminal(&note));
    }
    Ok(())
}

/// `vuf code --cascade T`: offline first, coder models for the uncertain rest.
fn cascade(global: &Global, args: &Args, threshold: f64) -> anyhow::Result<()> {
    let mut store = global.existing_store()?;
    doing(Activity::CodeOffline);
    let coded = apply::code_store(&mut store, &OfflineCoder::load_default()?)?;
    if let Some(note) = vuf::code::layer_a_skipped_note(&coded.layer_a_skipped) {
        println!("offline coder: {}", vuf::report::escape::terminal(&note));
    }
    let first = apply::build_cascade(&mut store, threshold)?;
    let total = first.kept_offline + first.from_models + first.pending.len();
    println!(
        "cascade at {threshold}: {} of {} {} the offline code; {} {} the coder models ({} already coded)",
        first.kept_offline,
        count(total, "sample"),
        verb(first.kept_offline, "keeps", "keep"),
        first.pending.len() + first.from_models,
        verb(first.pending.len() + first.from_models, "needs", "need"),
        first.from_models
    );
    if first.pending.is_empty() {
        return Ok(());
    }
    drop(store);
    let rerun = format!(
        "code --cascade {threshold}{}",
        if args.all_coders { " --all-coders" } else { "" }
    );
    let coded = models(
        global,
        args,
        Some(first.pending.iter().copied().collect()),
        &rerun,
    );
    // The codes that came in are stored whatever else went wrong: the cascade takes them
    // now, not only after a rerun.
    let mut store = global.existing_store()?;
    finish_cascade(global, args, &mut store, threshold)?;
    coded
}

/// Rebuild the cascade from the codes now stored and say what it holds.
fn finish_cascade(
    global: &Global,
    args: &Args,
    store: &mut vuf::store::Store,
    threshold: f64,
) -> anyhow::Result<()> {
    let r = apply::build_cascade(store, threshold)?;
    let total = (r.kept_offline + r.from_models + r.pending.len()).max(1);
    println!(
        "cascade: {} offline, {} coder-model consensus, {} still pending; {:.2} coder-model codes per response \
         ({}); analyse with `{}`",
        r.kept_offline,
        r.from_models,
        r.pending.len(),
        r.model_codes as f64 / total as f64,
        if args.all_coders {
            "every coder x 2 layers per uncertain response"
        } else {
            "sequential majority: 2 or 3 coders per layer per uncertain response"
        },
        global.command("analyze --source cascade")
    );
    Ok(())
}

/// Code with the configured coder models (optionally only some samples).
///
/// `rerun` is the command (after `vuf`) that codes outstanding failures again.
fn models(
    global: &Global,
    args: &Args,
    only: Option<std::collections::HashSet<i64>>,
    rerun: &str,
) -> anyhow::Result<()> {
    let study = args
        .study
        .clone()
        .unwrap_or_else(|| global.study_dir.join("study.toml"));
    let coders = if study.is_file() {
        let text = std::fs::read_to_string(&study)
            .with_context(|| format!("reading study file {}", study.display()))?;
        runner::coders_from_toml(&text)
            .with_context(|| format!("study file {}: [[coders]]", study.display()))?
    } else {
        runner::default_coders()
    };
    // Check every coder's key before any work, like `vuf collect`: a run that can call no
    // coder must fail up front, not report samples as processed.
    let missing: Vec<String> = coders
        .iter()
        .filter_map(|c| {
            let var = c.api_key_env.as_deref().filter(|v| !v.is_empty())?;
            vuf::providers::ApiKey::from_env(var)
                .is_none()
                .then(|| format!("{var} (coder {})", c.key))
        })
        .collect();
    if !missing.is_empty() {
        anyhow::bail!(
            "coder API key not set: {}. Set the variable, configure other coders under [[coders]] in {}, \
             or code without a key: `vuf code --offline`",
            missing.join(", "),
            study.display()
        );
    }
    let mut store = global.existing_store()?;
    doing(Activity::CodeModels);
    let layers = match args.layer.as_deref().and_then(Layer::parse) {
        Some(l) => vec![l],
        None => vec![Layer::A, Layer::B],
    };
    let client = HttpClient::default();
    let mut stopped: Vec<String> = Vec::new();
    for layer in layers {
        let rubric = Rubric::load(&global.study_dir, layer)?;
        let mut opts = RunOptions::paper(layer, rubric);
        opts.mask_prompt = args.mask_prompt;
        opts.limit = args.limit;
        opts.only = only.clone();
        opts.sequential = args.sequential || (args.cascade.is_some() && !args.all_coders);
        let done = AtomicUsize::new(0);
        let total = AtomicUsize::new(0);
        let progress = |p: &Progress| match p {
            Progress::Planned {
                coder,
                pending,
                existing,
            } => {
                total.fetch_add(*pending, Ordering::Relaxed);
                eprintln!(
                    "layer {}: {coder}: {pending} to code, {existing} already coded",
                    layer.as_str()
                );
            }
            Progress::Item { .. } => {
                let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                if n.is_multiple_of(25) || n == total.load(Ordering::Relaxed) {
                    eprintln!(
                        "layer {}: {n}/{} processed",
                        layer.as_str(),
                        total.load(Ordering::Relaxed)
                    );
                }
            }
            Progress::CoderStopped { coder, error } => {
                eprintln!("layer {}: {coder} stopped: {error}", layer.as_str())
            }
        };
        let report = runner::run(&mut store, &client, &coders, &opts, &progress)?;
        if let Some(note) = vuf::code::layer_a_skipped_note(&report.layer_a_skipped) {
            println!("{}", vuf::report::escape::terminal(&note));
        }
        for (coder, s) in &report.coders {
            println!(
                "layer {} {coder}: {} clean, {} unclean, {} parse failed, {} call failed, {} stopped, {} skipped by design, {} cached, {} requests, {} prompt + {} completion tokens",
                layer.as_str(),
                s.clean,
                s.unclean,
                s.parse_failed,
                s.call_failed,
                s.stopped,
                s.skipped,
                s.cache_hits,
                s.http_requests,
                s.prompt_tokens,
                s.completion_tokens
            );
        }
        let r = recompute::recompute(&mut store, layer)?;
        println!(
            "layer {}: consensus over {} ({} with a coder skipped by design)",
            layer.as_str(),
            count(r.samples, "sample"),
            r.skipped_by_design
        );
        stopped.extend(
            report
                .fatal
                .iter()
                .map(|(c, e)| format!("layer {} {c}: {e}", layer.as_str())),
        );
    }
    // Failures of coders this study no longer asks never clear by coding again: counted
    // apart, so they do not turn every later run into exit code 1.
    let keys: Vec<&str> = coders.iter().map(|c| c.key.as_str()).collect();
    let by_coder = vuf::store::codes::outstanding_failures_by_coder(store.conn())?;
    let (mine, others): (Vec<_>, Vec<_>) = by_coder
        .iter()
        .partition(|(k, _)| keys.contains(&k.as_str()));
    let outstanding: i64 = mine.iter().map(|(_, n)| n).sum();
    println!("outstanding coder failures: {outstanding}");
    if !others.is_empty() {
        let names: Vec<String> = others
            .iter()
            .map(|(k, n)| format!("{} ({n})", vuf::report::escape::terminal(k)))
            .collect();
        println!(
            "  and failures of coders this study does not ask (kept in the store, not retried): {}",
            names.join(", ")
        );
    }
    print_failure_causes(&vuf::store::codes::outstanding_failure_causes(
        store.conn(),
    )?);
    if !stopped.is_empty() {
        anyhow::bail!(
            "some coders were stopped, so coding is incomplete: {}",
            stopped.join("; ")
        );
    }
    if outstanding > 0 {
        // Done, but not every code is in: the README's exit code 1, so scripts notice.
        return Err(super::Problems(format!(
            "{} outstanding in the failure ledger (calls or replies that failed after their retries); `{}` codes them again",
            count(outstanding, "coder failure"),
            global.command(rerun)
        ))
        .into());
    }
    Ok(())
}

/// Why coder calls failed: per layer and coder, each distinct error with its number of
/// samples (most first), and the start of the reply a parse failure could not read.
fn print_failure_causes(causes: &[vuf::store::codes::FailureCause]) {
    use super::causes::one_line;
    let (shown, more) =
        super::causes::first_of_each(causes, |c| (c.layer.as_str(), c.coder.as_str()));
    for c in shown {
        let reply = if c.reply.trim().is_empty() {
            String::new()
        } else {
            format!("; reply: {}", one_line(&c.reply, 200))
        };
        println!(
            "  layer {} {}: {} {}: {}{reply}",
            c.layer,
            one_line(&c.coder, 80),
            count(c.samples as usize, "sample"),
            c.kind.replace('_', " "),
            one_line(&c.error, 300),
        );
    }
    for ((layer, coder), n) in more {
        println!(
            "  layer {layer} {}: {} more (see `vuf status`)",
            one_line(coder, 80),
            count(n, "cause")
        );
    }
}
