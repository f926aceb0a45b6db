//! `vuf import PATH...`: import each path with the format the store recognises, show a
//! progress counter on stderr for long imports, then one summary line per path and every
//! problem with its path and reason. Malformed inputs do not stop the import.

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use vuf::report::escape::terminal;
use vuf::store::formats::{group_problems, import_path, ImportReport};
use vuf::store::Store;
use vuf::text::count;

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
    let (mut flagged, mut warnings) = (0usize, 0usize);
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
        // One line per distinct problem: the same reason for many files of one directory
        // (or lines of one file) is one line that says how many.
        for g in group_problems(&report.errors) {
            eprintln!("  error: {}", terminal(&g.to_string()));
        }
        for g in group_problems(&report.conflicts) {
            eprintln!("  conflict: {}", terminal(&g.to_string()));
        }
        for g in group_problems(report.warnings.iter().map(|w| &w.at)) {
            eprintln!("  warning: {}", terminal(&g.to_string()));
        }
        problems += report.errors.len() + report.conflicts.len();
        flagged += report.problem_warnings();
        warnings += report.warnings.len() - report.problem_warnings();
        read += report.read;
    }
    if problems > 0 && read == 0 {
        anyhow::bail!(
            "import: nothing was imported ({} reported above)",
            count(problems, "problem")
        );
    }
    // Warnings are about entries that were imported: the data is real and kept. Those
    // that bear on what a sample measures (a prompt that is not its condition's) count
    // as problems (exit code 1), so scripts notice; the others are shown only.
    let shown_only = (warnings > 0).then(|| {
        let (it, is) = if warnings == 1 {
            ("it", "is")
        } else {
            ("they", "are")
        };
        format!(
            "{} shown only (imported as {it} {is})",
            count(warnings, "warning")
        )
    });
    if problems + flagged > 0 {
        let mismatch = (flagged > 0).then(|| {
            let (was, it) = if flagged == 1 {
                ("was", "it")
            } else {
                ("were", "them")
            };
            format!(
                "{} whose prompt is not its condition's {was} imported (warnings above): check \
                 {it} before analysing",
                count(flagged, "sample")
            )
        });
        let mut msg = match (problems, mismatch) {
            (0, Some(m)) => format!("import: {m}"),
            (n, None) => format!(
                "import: {} reported above; everything else was imported",
                count(n, "problem")
            ),
            (n, Some(m)) => format!(
                "import: {} reported above; everything else was imported, and {m}",
                count(n, "problem")
            ),
        };
        if let Some(w) = shown_only {
            msg.push_str(&format!("; {w}"));
        }
        return Err(super::Problems(msg).into());
    }
    if let Some(w) = shown_only {
        eprintln!("import: {w}; everything was imported");
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
        "{} [{format}]: read {}, inserted {}, unchanged {}, replaced {}, ids attached {}, skipped {}{}, conflicts {}, errors {}, warnings {} ({:.2}s)",
        terminal(&r.path.display().to_string()),
        r.read,
        r.inserted,
        r.unchanged,
        r.replaced,
        r.ids_attached,
        r.skipped,
        skipped_why(r),
        r.conflicts.len(),
        r.errors.len(),
        r.warnings.len(),
        took.as_secs_f64()
    )
}

/// ` (entries of type "freeflow": another probe, ...)`: what was skipped and why, with a
/// count per reason when there are several.
fn skipped_why(r: &ImportReport) -> String {
    match r.skipped_why.len() {
        0 => String::new(),
        1 => format!(
            " ({})",
            r.skipped_why.keys().next().map_or("", |k| k.as_str())
        ),
        _ => {
            let parts: Vec<String> = r
                .skipped_why
                .iter()
                .map(|(why, n)| format!("{why}: {n}"))
                .collect();
            format!(" ({})", parts.join("; "))
        }
    }
}
