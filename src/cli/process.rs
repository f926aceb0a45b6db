//! Process-level behaviour shared by every command: exit codes and error text, what a
//! Ctrl-C prints, and quiet exits on a closed pipe.

use std::path::PathBuf;

/// An error and its causes, each cause once (most error types here already quote their
/// cause in their own message, so the plain chain would print it twice), made safe for the
/// terminal: errors quote paths, file contents and provider replies, which are untrusted
/// text. Each line is escaped on its own, so a message's own line breaks stay.
pub(crate) fn message(e: &anyhow::Error) -> String {
    raw_message(e)
        .split('\n')
        .map(|line| vuf::report::escape::terminal(line).into_owned())
        .collect::<Vec<_>>()
        .join("\n")
}

fn raw_message(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if out.is_empty() {
            out = text;
        } else if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
    }
    out
}

/// What a command is doing at the moment, for the message a Ctrl-C prints: what is kept
/// when the process stops there differs from stage to stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Activity {
    /// Collecting answers (`vuf collect`, the collect stage of `vuf run`).
    Collect,
    /// `vuf import`.
    Import,
    /// `vuf import-codes`.
    ImportCodes,
    /// Coding with coder models.
    CodeModels,
    /// Coding with the offline coder.
    CodeOffline,
    /// `vuf consensus`.
    Consensus,
    /// Writing the analysis into this directory.
    Analyze(PathBuf),
    /// Writing the report into this directory.
    Report(PathBuf),
}

static ACTIVITY: std::sync::Mutex<Option<Activity>> = std::sync::Mutex::new(None);

/// Say what the command is doing now (see [`Activity`]).
pub(crate) fn doing(activity: Activity) {
    if let Ok(mut a) = ACTIVITY.lock() {
        *a = Some(activity);
    }
}

impl Activity {
    /// What is kept when the process stops during this activity, and what a rerun does.
    fn kept(&self, study_dir: &std::path::Path, samples: &str) -> String {
        let dir = study_dir.display();
        match self {
            Activity::Collect => format!(
                "Every answer received so far is stored in {dir}{samples}, committed as it \
                 arrived; rerun the same command to continue where it stopped (it collects only \
                 what is missing)"
            ),
            Activity::Import => format!(
                "Every file imported so far is stored in {dir}{samples}; the one being read is \
                 not (trace directories are stored in chunks of files, each whole or not at \
                 all); rerun the same command to import the rest (what is stored is unchanged)"
            ),
            Activity::ImportCodes => format!(
                "Every code file imported so far is stored in {dir}; the one being read is not \
                 (each file is stored whole or not at all); rerun the same command to import the rest"
            ),
            Activity::CodeModels => format!(
                "Every code the coder models returned so far is stored in {dir} (and their \
                 replies cached), but the consensus of the layer being coded is not brought up to \
                 date yet: rerun the same command to code the rest and recompute it (or `vuf \
                 consensus` for the consensus alone)"
            ),
            Activity::CodeOffline => format!(
                "The offline coder stores its codes every {} samples: those stored in {dir} are \
                 kept, the batch being coded is not (seconds of work); rerun the same command to \
                 code the rest",
                vuf::code::offline::apply::BATCH
            ),
            Activity::Consensus => format!(
                "Consensus is recomputed one layer at a time, each in one transaction: the layer \
                 being recomputed keeps its earlier consensus in {dir}; rerun the same command"
            ),
            Activity::Analyze(out) => format!(
                "The store in {dir} is complete (the analysis only reads it), and {} holds a whole \
                 analysis, never a mix of two: the earlier one as it was (none if there was none), \
                 or this one if it had finished writing; rerun the same command (it also removes \
                 what this one left unfinished in {} beside it)",
                out.display(),
                unfinished(out)
            ),
            Activity::Report(out) => format!(
                "The store and the analysis in {dir} are complete, and {} holds a whole report, \
                 never a mix of two: the earlier one as it was (none if there was none), or this \
                 one if it had finished writing; rerun the same command (it also removes what this \
                 one left unfinished in {} beside it)",
                out.display(),
                unfinished(out)
            ),
        }
    }
}

/// The temporary directory this process writes the output directory `out` into.
fn unfinished(out: &std::path::Path) -> String {
    vuf::outdir::temp_name(out)
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "a temporary directory".into())
}

/// Ctrl-C during a long command: say what is kept and how to go on, instead of dying
/// silently, then exit at once (130). What is kept depends on the [`Activity`]: the store
/// commits each collected answer, each code of a coder model and each imported file, the
/// offline coder a batch at a time, and the analysis and the report are written beside
/// their directory and swapped in whole once complete ([`vuf::outdir`]; the exit waits
/// for a swap under way, so it never stops between its two renames).
pub(crate) fn report_interrupts(study_dir: PathBuf, with_sample_counts: bool) {
    std::thread::spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
        else {
            return;
        };
        if rt.block_on(tokio::signal::ctrl_c()).is_err() {
            return;
        }
        // Held until the exit: no output directory is left renamed aside.
        let _swaps = vuf::outdir::hold_swaps();
        let activity = ACTIVITY.lock().ok().and_then(|a| a.clone());
        // Sample counts only where samples are what the command makes (collect, import).
        let counted = with_sample_counts
            && matches!(activity, None | Some(Activity::Collect | Activity::Import));
        let stored = counted
            .then(|| vuf::store::Store::open_read_only(&study_dir).ok().flatten())
            .flatten()
            .and_then(|s| vuf::store::samples::counts(s.conn()).ok())
            .map(|c| format!(" ({} valid and {} invalid samples)", c.valid, c.invalid))
            .unwrap_or_default();
        let kept = match &activity {
            Some(a) => a.kept(&study_dir, &stored),
            None => format!(
                "This command had not started to write yet: {} holds what it held before{stored}; \
                 rerun the same command",
                study_dir.display()
            ),
        };
        eprintln!("\nvuf: interrupted. {kept}.");
        std::process::exit(130);
    });
}

/// Writing into a closed pipe (`vuf ... | head`) ends the process quietly, as other
/// command-line tools do, instead of panicking in `println!`.
pub(crate) fn restore_sigpipe() {
    #[cfg(unix)]
    // SAFETY: called first thing in main, before any other thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// A command that finished its work but met problems it reported along the way (exit
/// code 1, so scripts notice; a hard error is exit code 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Problems(pub String);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_interrupted_analysis_or_report_names_the_unfinished_directory_the_rerun_removes() {
        let study = std::path::Path::new("s");
        let pid = std::process::id();
        let analysis = Activity::Analyze(study.join("analysis")).kept(study, "");
        assert!(
            analysis.contains("s/analysis holds a whole analysis, never a mix of two")
                && analysis.ends_with(&format!(
                    "rerun the same command (it also removes what this one left unfinished in \
                     .analysis.tmp-{pid} beside it)"
                )),
            "{analysis}"
        );
        let report = Activity::Report(study.join("out/r")).kept(study, "");
        assert!(
            report.contains("s/out/r holds a whole report")
                && report.contains(&format!("unfinished in .r.tmp-{pid} beside it")),
            "{report}"
        );
    }

    #[test]
    fn error_text_is_escaped_per_line_and_each_cause_is_printed_once() {
        let e = anyhow::anyhow!("inner \u{1b}[2J cause")
            .context("reading x.json: inner \u{1b}[2J cause")
            .context("line one\nline\u{7} two");
        assert_eq!(
            message(&e),
            "line one\nline\\u{7} two: reading x.json: inner \\u{1b}[2J cause"
        );
    }
}
