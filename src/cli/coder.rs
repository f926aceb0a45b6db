//! `vuf coder train|eval`: build the offline coder's shipped file from the published
//! labelled data, and evaluate it leave-one-model-out (report + cascade CSV).

use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;
use sha2::{Digest, Sha256};

use vuf::code::offline::{cascade, corpus, data, eval, train, OfflineCoder};

/// Arguments of `vuf coder`.
#[derive(Debug, clap::Args)]
pub struct CoderArgs {
    #[command(subcommand)]
    cmd: CoderCmd,
}

#[derive(Debug, Subcommand)]
enum CoderCmd {
    /// Train the offline coder on the labelled phases and write the model file.
    Train {
        /// The shared data root (holds `labelled/` and `extra-manifests/`).
        #[arg(long, env = "VUF_SHARED_DATA", default_value = "../shared/data")]
        data: PathBuf,
        /// Model file to write.
        #[arg(long, default_value = "coders/offline-v2.json")]
        out: PathBuf,
    },
    /// Leave-one-model-out evaluation, coder-model bars and the cascade curve.
    Eval {
        /// The shared data root.
        #[arg(long, env = "VUF_SHARED_DATA", default_value = "../shared/data")]
        data: PathBuf,
        /// Markdown report to write.
        #[arg(long, default_value = "coders/offline-v2.eval.md")]
        out: PathBuf,
        /// Cascade curve CSV to write.
        #[arg(long, default_value = "coders/offline-v2.cascade.csv")]
        csv: PathBuf,
    },
    /// Code the whole public corpus with the shipped coder and compare its posture
    /// distribution per family with the published consensus.
    CheckCorpus {
        /// The shared data root (holds `corpus-v2-values/`, `extra-manifests/`, `reference/`).
        #[arg(long, env = "VUF_SHARED_DATA", default_value = "../shared/data")]
        data: PathBuf,
        /// Markdown report to write.
        #[arg(long, default_value = "coders/offline-v2.corpus.md")]
        out: PathBuf,
    },
}

/// Run `vuf coder ...`.
/// Fail before the work, not after it, when an output cannot be written: the defaults
/// (`coders/...`) are the repository's shipped files, so outside the repository they do
/// not exist.
fn check_writable(paths: &[&PathBuf]) -> anyhow::Result<()> {
    for p in paths {
        let parent = p
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(std::path::Path::new("."));
        if !parent.is_dir() {
            anyhow::bail!(
                "cannot write {}: the directory {} does not exist. The defaults are the \
                 repository's own coders/ files: run from the repository root, or pass --out (and --csv)",
                p.display(),
                parent.display()
            );
        }
    }
    Ok(())
}

pub fn run(_global: &super::Global, args: CoderArgs) -> anyhow::Result<()> {
    match &args.cmd {
        CoderCmd::Train { out, .. } | CoderCmd::CheckCorpus { out, .. } => check_writable(&[out])?,
        CoderCmd::Eval { out, csv, .. } => check_writable(&[out, csv])?,
    }
    match args.cmd {
        CoderCmd::Train { data, out } => {
            let samples = data::load_labelled(&data)
                .with_context(|| format!("loading labelled data from {}", data.display()))?;
            let file = train::train(&samples);
            let bytes = file.to_bytes().context("serialising model")?;
            std::fs::write(&out, &bytes).with_context(|| format!("writing {}", out.display()))?;
            eprintln!(
                "trained on {} samples from {} models; wrote {} ({} bytes, data sha256 {})",
                samples.len(),
                file.training.models.len(),
                out.display(),
                bytes.len(),
                file.training.data_sha256
            );
        }
        CoderCmd::Eval { data, out, csv } => {
            let samples = data::load_labelled(&data)
                .with_context(|| format!("loading labelled data from {}", data.display()))?;
            let r = eval::evaluate(&samples, |m, k, n| {
                eprintln!("fold {k}/{n}: holding out {m}")
            })?;
            let sha: String = {
                let mut h = Sha256::new();
                h.update(vuf::code::offline::DEFAULT_MODEL_JSON.as_bytes());
                h.finalize().iter().map(|b| format!("{b:02x}")).collect()
            };
            std::fs::write(&out, eval::report_markdown(&r, &sha))
                .with_context(|| format!("writing {}", out.display()))?;
            std::fs::write(&csv, cascade::to_csv(&r.cascade))
                .with_context(|| format!("writing {}", csv.display()))?;
            eprintln!(
                "LOMO label kappa {:.3} (acc {:.3}), value_holding kappa {:.3} (acc {:.3}); topics micro F1 {:.3} macro F1 {:.3}; wrote {} and {}",
                r.label.kappa,
                r.label.accuracy,
                r.holding.kappa,
                r.holding.accuracy,
                r.topics.micro_f1,
                r.topics.macro_f1,
                out.display(),
                csv.display()
            );
            for cf in [
                &r.cascade_budget_cf,
                &r.cascade_target_cf,
                &r.cascade_budget_cf_seq,
                &r.cascade_target_cf_seq,
            ] {
                eprintln!(
                    "cascade, cross-fitted, {}: {:.2} calls/response, value_holding agreement {:.4}",
                    match cf.cost {
                        cascade::CostModel::AllCoders => "all coders",
                        cascade::CostModel::Sequential => "sequential majority",
                    },
                    cf.calls_per_response,
                    cf.agreement_holding
                );
            }
        }
        CoderCmd::CheckCorpus { data, out } => {
            let rows = corpus::load_corpus(&data)
                .with_context(|| format!("loading corpus from {}", data.display()))?;
            let coder =
                OfflineCoder::load_default().context("loading the shipped offline coder")?;
            let csv_path =
                data.join("reference/values-under-fire/results/lexical_trace_by_posture.csv");
            let published = std::fs::read_to_string(&csv_path)
                .with_context(|| format!("reading {}", csv_path.display()))?;
            let t0 = std::time::Instant::now();
            let c = corpus::check(&coder, &rows);
            let secs = t0.elapsed().as_secs_f64();
            std::fs::write(
                &out,
                corpus::report_markdown(&c, &corpus::published_counts(&published), secs),
            )
            .with_context(|| format!("writing {}", out.display()))?;
            eprintln!(
                "coded {} responses in {secs:.1} s; wrote {}",
                rows.len(),
                out.display()
            );
        }
    }
    Ok(())
}
