//! `vuf export <what> DIR`: write stored data back out in a published format.
//! `traces` writes the trace layout `<cell>/<COND>_<n>.json`; `codes` is added by the
//! codes stage (see the marked place in [`ExportWhat`]).

use std::path::PathBuf;

use anyhow::Context;
use vuf::store::formats::traces::export_traces;
use vuf::store::Store;

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
    // `Codes(CodesArgs)`: added by the codes helper (export of codes / consensus).
}

/// Arguments of `vuf export traces`.
#[derive(Debug, clap::Args)]
struct TracesArgs {
    /// Output directory (created if missing; existing trace files are overwritten).
    dir: PathBuf,
}

/// Run `vuf export`.
pub fn run(global: &super::Global, args: ExportArgs) -> anyhow::Result<()> {
    let store = Store::open(&global.study_dir)
        .with_context(|| format!("opening the store in {}", global.study_dir.display()))?;
    match args.what {
        ExportWhat::Traces(t) => {
            let r =
                export_traces(&store, &t.dir).with_context(|| format!("exporting traces to {}", t.dir.display()))?;
            println!("wrote {} trace files in {} cells to {}", r.files, r.cells, t.dir.display());
        }
    }
    Ok(())
}
