//! `vuf export <what> DIR`: write stored data back out in a published format.
//! `traces` writes the trace layout `<cell>/<COND>_<n>.json`; `codes` writes consensus
//! records as JSONL.

use std::path::PathBuf;

use anyhow::Context;
use vuf::code::export::export_codes;
use vuf::code::Layer;
use vuf::protocol::CodeSource;
use vuf::store::formats::traces::export_traces;
use vuf::text::{count, plural};

/// Arguments of `vuf export`.
#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    #[command(subcommand)]
    what: ExportWhat,
}

#[derive(Debug, clap::Subcommand)]
enum ExportWhat {
    /// Every stored sample as `DIR/<cell>/<COND>_<n>.json` (the published trace layout).
    Traces(TracesArgs),
    /// Consensus codes as JSONL, one line per sample, with the published field names
    /// (PROTOCOL 4.7 for Layer A, 5.7 for Layer B).
    Codes(CodesArgs),
}

/// Arguments of `vuf export codes`.
#[derive(Debug, clap::Args)]
struct CodesArgs {
    /// Layer: `a` (topics) or `b` (posture).
    #[arg(long, value_parser = ["a", "b"])]
    layer: String,
    /// Code source: published, models, offline or cascade [default: the first available
    /// of models, published, offline (cascade instead of models or offline when it codes more
    /// samples, or as many as offline),
    /// as for `vuf analyze`].
    #[arg(long, value_parser = ["published", "models", "offline", "cascade"])]
    source: Option<String>,
    /// Output JSONL file (replaced whole if it exists: written beside it and renamed over; its
    /// directory must exist).
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
}

/// Arguments of `vuf export traces`.
#[derive(Debug, clap::Args)]
struct TracesArgs {
    /// Output directory: a new or empty one (created if missing). A directory that holds
    /// anything is refused unless --force is given.
    dir: PathBuf,
    /// Write into a directory that is not empty: trace files of the same name are
    /// replaced, every other file is kept.
    #[arg(long)]
    force: bool,
}

/// Refuse a trace export that would write over something: `dir` must be missing, an
/// empty directory, or (with `force`) a directory. Checked before anything is written.
fn check_trace_dir(dir: &std::path::Path, force: bool) -> anyhow::Result<()> {
    let Ok(meta) = std::fs::metadata(dir) else {
        return Ok(());
    };
    if !meta.is_dir() {
        anyhow::bail!(
            "{} is a file, not a directory: `vuf export traces` writes a directory of \
             <cell>/<COND>_<n>.json files; name a new directory",
            dir.display()
        );
    }
    let held = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .count();
    if held > 0 && !force {
        anyhow::bail!(
            "{} is not empty ({held} {}): name a new or empty directory, or pass --force to \
             write into it (trace files of the same name are replaced, other files are kept)",
            dir.display(),
            if held == 1 { "entry" } else { "entries" }
        );
    }
    Ok(())
}

/// Run `vuf export`.
pub fn run(global: &super::Global, args: ExportArgs) -> anyhow::Result<()> {
    let store = global.existing_store()?;
    match args.what {
        ExportWhat::Traces(t) => {
            check_trace_dir(&t.dir, t.force)?;
            let r = export_traces(&store, &t.dir)
                .with_context(|| format!("exporting traces to {}", t.dir.display()))?;
            println!(
                "wrote {} in {} to {}",
                count(r.files, "trace file"),
                count(r.cells, "cell"),
                t.dir.display()
            );
        }
        ExportWhat::Codes(c) => {
            if c.out.is_dir() {
                anyhow::bail!(
                    "--out {} is a directory: --out names the JSONL file to write, for example {}",
                    c.out.display(),
                    c.out.join(format!("codes_{}.jsonl", c.layer)).display()
                );
            }
            if let Some(parent) = c.out.parent().filter(|p| !p.as_os_str().is_empty()) {
                anyhow::ensure!(
                    parent.is_dir(),
                    "--out {}: the directory {} does not exist; create it first or name a file in an existing one",
                    c.out.display(),
                    parent.display()
                );
            }
            let layer = Layer::parse(&c.layer).context("--layer must be a or b")?;
            // The same choice as `vuf analyze`: a named source must have codes, so an export
            // is never silently empty.
            let requested = match c.source.as_deref() {
                None => None,
                Some(s) => Some(CodeSource::parse(s).with_context(|| {
                    format!("--source {s}: not one of published, models, offline, cascade")
                })?),
            };
            let source = vuf::pipeline::choose_source_in(&store, requested, layer.as_str())?;
            let n = export_codes(&store, layer, source, &c.out)
                .with_context(|| format!("exporting codes to {}", c.out.display()))?;
            println!(
                "wrote {n} {} {} (layer {}) to {}",
                source.as_str(),
                plural(n, "consensus record"),
                layer.as_str(),
                c.out.display()
            );
        }
    }
    Ok(())
}
