//! `vuf analyze`: the frozen analysis of one code source, written as CSV/JSON/MD/TeX.

use std::path::PathBuf;

use vuf::pipeline;
use vuf::protocol::CodeSource;
use vuf::text::count;

/// Arguments of `vuf analyze`.
#[derive(Debug, clap::Args)]
pub struct AnalyzeArgs {
    /// Code source: `published` (imported), `models` (vuf's coder-model consensus),
    /// `offline` (built-in coder) or `cascade` [default: first available of models,
    /// published, offline; cascade instead of models or offline when it codes
    /// more samples, or as many as offline].
    #[arg(long, value_parser = ["published", "models", "offline", "cascade"])]
    pub source: Option<String>,
    /// Output directory [default: <study-dir>/analysis]. vuf replaces it whole once every
    /// file is written (until then it holds the earlier analysis as it was), so it must be
    /// new, empty, or an earlier analysis: any other directory is refused.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Also print how long loading, computing and writing took.
    #[arg(long)]
    pub timings: bool,
}

/// Run `vuf analyze`.
pub fn run(global: &super::Global, args: AnalyzeArgs) -> anyhow::Result<()> {
    let store = global.existing_store()?;
    let requested = args.source.as_deref().and_then(CodeSource::parse);
    let source = pipeline::choose_source(&store, requested)?;
    let out = args
        .out
        .unwrap_or_else(|| global.study_dir.join("analysis"));
    let t = std::time::Instant::now();
    super::process::doing(super::process::Activity::Analyze(out.clone()));
    let s = pipeline::analyze_into(&store, source, &out)?;
    for m in &s.messages {
        eprintln!("note: {}", vuf::report::escape::terminal(m));
    }
    println!(
        "analysed {} from source `{}` ({} excluded, see exclusions.csv): {} in {} ({:.2}s)",
        count(s.rows, "sample"),
        source.as_str(),
        s.excluded,
        count(s.files.len(), "file"),
        out.display(),
        t.elapsed().as_secs_f64()
    );
    if args.timings {
        let tm = s.timings;
        println!(
            "timings: load {:.3}s, compute {:.3}s, write {:.3}s",
            tm.load.as_secs_f64(),
            tm.compute.as_secs_f64(),
            tm.write.as_secs_f64()
        );
    }
    Ok(())
}
