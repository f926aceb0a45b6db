//! `vuf import-codes PATH...`: published coder files (per-coder and consensus) into the store.

use std::path::PathBuf;

use vuf::code::import;
use vuf::store::Store;

use super::Global;
use vuf::text::count;

/// Arguments of `vuf import-codes`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Files or directories (searched recursively for `.jsonl`) of published codes.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Print every unmatched / bad row (default: the first 5 per file).
    #[arg(long)]
    pub verbose: bool,
}

/// Run it.
pub fn run(global: &Global, args: &Args) -> anyhow::Result<()> {
    let mut store = Store::open(&global.study_dir)?;
    let reports = import::import_codes(&mut store, &args.paths)?;
    let mut problems = 0;
    for r in &reports {
        // The path may come from a corpus: untrusted text on the terminal.
        let shown = r.path.display().to_string();
        let shown = vuf::report::escape::terminal(&shown);
        match (&r.format, &r.skipped_note) {
            _ if r.empty_dir => {
                eprintln!(
                    "  error: {shown}: no .jsonl files found in this directory (or below it); nothing to import"
                );
                problems += 1;
            }
            (_, Some(note)) => println!("{shown}: {note}"),
            (Some(f), None) => {
                // Consensus files also say how many of their rows were stored already.
                let consensus = if f.is_consensus() {
                    format!(
                        "{} new, {} already stored",
                        count(r.consensus_rows, "consensus row"),
                        r.consensus_existing
                    )
                } else {
                    count(r.consensus_rows, "consensus row")
                };
                println!(
                    "{shown}: {} as {}: {} new, {} already stored, {consensus}, {} unmatched, {}, {}",
                    count(r.rows, "row"),
                    f.as_str(),
                    count(r.codes_inserted, "code"),
                    r.codes_existing,
                    r.unmatched.len(),
                    count(r.errors.len(), "error"),
                    count(r.conflicts.len(), "conflict")
                )
            }
            (None, None) if r.rows == 0 && r.errors.is_empty() => {
                eprintln!("  error: {shown}: empty file, nothing to import");
                problems += 1;
            }
            (None, None) => println!(
                "{shown}: nothing imported ({})",
                count(r.errors.len(), "error")
            ),
        }
        let n = if args.verbose { usize::MAX } else { 5 };
        let issues: Vec<_> = r
            .unmatched
            .iter()
            .chain(&r.errors)
            .chain(&r.conflicts)
            .chain(&r.warnings)
            .collect();
        for i in issues.iter().take(n) {
            let line = format!("{}:{}: {}", i.path.display(), i.line, i.message);
            eprintln!("  {}", vuf::report::escape::terminal(&line));
        }
        if issues.len() > n {
            eprintln!(
                "  ... and {} more in this file (--verbose lists every one)",
                issues.len() - n
            );
        }
        problems += r.unmatched.len() + r.errors.len() + r.conflicts.len();
    }
    // Codes already stored count as imported: a rerun is not "nothing done".
    let stored: usize = reports
        .iter()
        .map(|r| r.codes_inserted + r.codes_existing + r.consensus_rows + r.consensus_existing)
        .sum();
    // Skipped files (a manifest, a draft consensus) are fine beside codes, but a command
    // that read no codes at all has done nothing a script should take as success.
    if problems == 0 && stored == 0 && reports.iter().all(|r| r.skipped_note.is_some()) {
        anyhow::bail!(
            "import-codes: nothing was imported: no file held codes in a format vuf reads \
             (PROTOCOL 4.7 / 5.7 consensus or per-coder records)"
        );
    }
    if problems > 0 {
        let problems = count(problems, "problem");
        if stored == 0 {
            anyhow::bail!("import-codes: nothing was imported ({problems} reported above)");
        }
        return Err(super::Problems(format!(
            "import-codes: {problems} reported above; everything else was imported"
        ))
        .into());
    }
    Ok(())
}
