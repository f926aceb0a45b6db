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
                "The store in {dir} is complete (the analysis only reads it), but {} may now hold \
                 some files of this analysis and some of an earlier one: rerun the same command \
                 to write them all again",
                out.display()
            ),
            Activity::Report(out) => format!(
                "The store and the analysis in {dir} are complete, but {} may now hold some \
                 files of this report and some of an earlier one: rerun the same command to write \
                 them all again",
                out.display()
            ),
        }
    }
}

/// Ctrl-C during a long command: say what is kept and how to go on, instead of dying
/// silently, then exit at once (130). What is kept depends on the [`Activity`]: the store
/// commits each collected answer, each code of a coder model and each imported file, the
/// offline coder a batch at a time, and the analysis and report files are written in
/// place (a rerun writes them again).
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
