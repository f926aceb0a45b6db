//! `vuf import PATH...`: import each path with the format the store recognises, show a
//! progress counter on stderr for long imports, then one summary line per path and every
//! problem with its path and reason. Malformed inputs do not stop the import.

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use vuf::store::formats::{import_path, ImportReport};
use vuf::store::Store;

/// Arguments of `vuf import`.
#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// Trace directories (corpus root or one cell), trace files, website sample bundles,
    /// coding-manifest JSONL files or models.json files.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
}

/// Run `vuf import`.
pub fn run(global: &super::Global, args: ImportArgs) -> anyhow::Result<()> {
    let mut store = Store::open(&global.study_dir)
        .with_context(|| format!("opening the store in {}", global.study_dir.display()))?;
    let mut problems = 0usize;
    let mut read = 0u64;
    for path in &args.paths {
        let started = Instant::now();
        let mut last = Instant::now();
        let mut drew = false;
        // On a terminal the counter redraws in place; elsewhere (logs, CI) one line every 5 s.
        let tty = std::io::IsTerminal::is_terminal(&std::io::stderr());
        let every = if tty {
            Duration::from_millis(200)
        } else {
            Duration::from_secs(5)
        };
        let report = import_path(&mut store, path, &mut |p| {
            if started.elapsed() > Duration::from_secs(1)
                && (last.elapsed() > every || (tty && p.done == p.total))
            {
                if tty {
                    eprint!("\rimporting {}: {}/{}", path.display(), p.done, p.total);
                } else {
                    eprintln!("importing {}: {}/{}", path.display(), p.done, p.total);
                }
                let _ = std::io::stderr().flush();
                last = Instant::now();
                drew = true;
            }
        })
        .with_context(|| format!("importing {}", path.display()))?;
        if drew && tty {
            eprintln!();
        }
        println!("{}", summary(&report, started.elapsed()));
        for p in &report.errors {
            eprintln!("  error: {p}");
        }
        for p in &report.conflicts {
            eprintln!("  conflict: {p}");
        }
        problems += report.errors.len() + report.conflicts.len();
        read += report.read;
    }
    if problems > 0 && read == 0 {
        anyhow::bail!(
            "import: nothing was imported ({} reported above)",
            plural(problems, "problem")
        );
    }
    if problems > 0 {
        return Err(super::Problems(format!(
            "import: {} reported above; everything else was imported",
            plural(problems, "problem")
        ))
        .into());
    }
    Ok(())
}

fn summary(r: &ImportReport, took: Duration) -> String {
    let format = if r.format.is_empty() {
        "?"
    } else {
        r.format.as_str()
    };
    format!(
        "{} [{format}]: read {}, inserted {}, unchanged {}, replaced {}, ids attached {}, skipped {}, conflicts {}, errors {} ({:.2}s)",
        r.path.display(),
        r.read,
        r.inserted,
        r.unchanged,
        r.replaced,
        r.ids_attached,
        r.skipped,
        r.conflicts.len(),
        r.errors.len(),
        took.as_secs_f64()
    )
}

/// `1 problem`, `2 problems`.
fn plural(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}
