//! `vuf run`: the main job. Every stage that has work to do, in order.

use vuf::pipeline::{self, Stage};
use vuf::protocol::CodeSource;

/// Arguments of `vuf run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Code source to analyse [default: first available of models, published, offline].
    #[arg(long, value_parser = ["published", "models", "offline", "cascade"])]
    pub source: Option<String>,
}

/// Run `vuf run`.
pub fn run(global: &super::Global, args: RunArgs) -> anyhow::Result<()> {
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
