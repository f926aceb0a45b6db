//! `vuf report`: render the report from an analysis output directory.

use std::path::PathBuf;

use anyhow::Context;

/// Arguments of `vuf report`.
#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// Analysis output directory to read [default: <study-dir>/analysis].
    #[arg(long, value_name = "DIR")]
    pub analysis: Option<PathBuf>,
    /// Directory to write the report into [default: <study-dir>/report].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

/// Run `vuf report`.
pub fn run(global: &super::Global, args: ReportArgs) -> anyhow::Result<()> {
    let analysis = args
        .analysis
        .unwrap_or_else(|| global.study_dir.join("analysis"));
    let out = args.out.unwrap_or_else(|| global.study_dir.join("report"));
    let input = vuf::report::load(&analysis)
        .with_context(|| format!("reading analysis directory {}", analysis.display()))?;
    let opts = vuf::report::ReportOptions::default();
    let files = vuf::report::write_report(&input, &out, &opts)
        .with_context(|| format!("writing report into {}", out.display()))?;
    let pngs = files
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "png"))
        .count();
    if pngs == 0 {
        eprintln!(
            "vuf report: PNG figures not written (font {} unavailable); SVG figures are in {}",
            opts.font_path.display(),
            out.join("figures").display()
        );
    }
    for m in &input.missing {
        eprintln!("vuf report: note: {m} not in {}", analysis.display());
    }
    println!(
        "{} ({} files)",
        out.join("report.html").display(),
        files.len()
    );
    Ok(())
}
