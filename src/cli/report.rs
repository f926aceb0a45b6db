//! `vuf report`: render the report from an analysis output directory.

use std::path::PathBuf;

/// Arguments of `vuf report`.
#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// Analysis output directory to read [default: <study-dir>/analysis].
    #[arg(long, value_name = "DIR")]
    pub analysis: Option<PathBuf>,
    /// Directory to write the report into [default: <study-dir>/report]. vuf replaces it
    /// whole once every file is written (until then it holds the earlier report as it was),
    /// so it must be new, empty, or an earlier report: any other directory is refused.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

/// Run `vuf report`.
pub fn run(global: &super::Global, args: ReportArgs) -> anyhow::Result<()> {
    let named = args.analysis.is_some();
    let analysis = args
        .analysis
        .unwrap_or_else(|| global.study_dir.join("analysis"));
    let out = args.out.unwrap_or_else(|| global.study_dir.join("report"));
    let input = match vuf::report::load(&analysis) {
        Ok(input) => input,
        Err(vuf::report::Error::NotAnalysis { msg, .. }) => {
            return Err(no_analysis(global, named, &analysis, &msg))
        }
        // Every other error names the file (and line) it is about.
        Err(e) => return Err(e.into()),
    };
    let opts = vuf::report::ReportOptions::default();
    super::process::doing(super::process::Activity::Report(out.clone()));
    let files = vuf::report::write_report(&input, &out, &opts).map_err(|e| match e {
        // Already about the directory, by name.
        e @ vuf::report::Error::Output(_) => anyhow::Error::from(e),
        e => anyhow::Error::from(e).context(format!("writing report into {}", out.display())),
    })?;
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
        "{} ({})",
        out.join("report.html").display(),
        vuf::text::count(files.len(), "file")
    );
    Ok(())
}

/// `vuf report` found no analysis to read in `analysis` (`why`: what is missing): say so
/// once, and what writes one.
fn no_analysis(
    global: &super::Global,
    named: bool,
    analysis: &std::path::Path,
    why: &str,
) -> anyhow::Error {
    // Without a study there is nothing to analyse yet either: that comes first.
    if !named && !global.study_dir.join(vuf::store::STORE_FILE).is_file() {
        if let Err(e) = global.existing_store() {
            return e;
        }
    }
    let what = if !analysis.exists() {
        format!("no analysis yet: {} does not exist", analysis.display())
    } else if !analysis.is_dir() {
        format!(
            "{} is a file, not an analysis directory (move it away first)",
            analysis.display()
        )
    } else {
        format!("no analysis in {} ({why})", analysis.display())
    };
    let next = if named {
        format!(
            "pass --analysis the output directory of a `vuf analyze` run, or write one there with `{}`",
            global.command(&format!("analyze --out {}", super::shell_word(analysis)))
        )
    } else if has_no_codes(global) {
        format!(
            "the study has no codes to analyse yet either: run `{}` (it codes offline what is \
             uncoded, analyses and reports), or code first (`{}`, or `{}` with coder models) \
             and then run `{}`",
            global.command("run"),
            global.command("code --offline"),
            global.command("code"),
            global.command("analyze")
        )
    } else {
        format!(
            "run `{}` first (it writes the analysis there), then `{}` again; `{}` does every stage",
            global.command("analyze"),
            global.command("report"),
            global.command("run")
        )
    };
    anyhow::anyhow!("{what}; {next}")
}

/// Whether the study's store holds no codes of any source (false when it cannot tell).
fn has_no_codes(global: &super::Global) -> bool {
    vuf::store::Store::open_read_only(&global.study_dir)
        .ok()
        .flatten()
        .and_then(|s| vuf::store::coded::available_sources(s.conn()).ok())
        .is_some_and(|sources| sources.is_empty())
}
