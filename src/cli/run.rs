//! `vuf run`: the main job. Every stage that has work to do, in order.

use vuf::pipeline::{self, Stage};
use vuf::protocol::CodeSource;

/// Arguments of `vuf run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Code source to analyse [default: first available of models, published, offline].
    #[arg(long, value_parser = ["published", "models", "offline", "cascade"])]
    pub source: Option<String>,
    /// Skip collection even when the study directory has a study.toml.
    #[arg(long)]
    pub no_collect: bool,
}

/// Run `vuf run`.
pub fn run(global: &super::Global, args: RunArgs) -> anyhow::Result<()> {
    let study_file = global.study_dir.join("study.toml");
    if !args.no_collect && study_file.is_file() {
        eprintln!("[collect] {} ...", study_file.display());
        // A partial collection still gets analysed (the report shows n per cell); the
        // message says how to top up. Any other failure (bad study file, missing key) stops.
        if let Err(e) = super::collect::run(global, super::collect::CollectArgs::for_run(study_file)) {
            if !e.to_string().starts_with(super::collect::INCOMPLETE) {
                return Err(e);
            }
            eprintln!("warning: {e}; analysing what was collected");
        }
    }
    let opts = pipeline::RunOptions { source: args.source.as_deref().and_then(CodeSource::parse) };
    let mut started = std::time::Instant::now();
    let summary = pipeline::run(&global.study_dir, &opts, &mut |stage| match stage {
        Stage::Started(name) => {
            started = std::time::Instant::now();
            eprintln!("[{name}] ...");
        }
        Stage::Finished(name, what) => eprintln!("[{name}] {what} ({:.1}s)", started.elapsed().as_secs_f64()),
    })?;
    for m in &summary.analysis.messages {
        eprintln!("note: {m}");
    }
    println!("report: {}", summary.report.display());
    Ok(())
}
