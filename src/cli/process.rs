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

/// Ctrl-C during a long command: say that nothing finished is lost and how to go on,
/// instead of dying silently. Every stage commits as it goes, so exiting at once is safe.
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
        // Sample counts only where samples are what the command makes (collect, import).
        let stored = with_sample_counts
            .then(|| vuf::store::Store::open_read_only(&study_dir).ok().flatten())
            .flatten()
            .and_then(|s| vuf::store::samples::counts(s.conn()).ok())
            .map(|c| format!(" ({} valid and {} invalid samples)", c.valid, c.invalid))
            .unwrap_or_default();
        eprintln!(
            "\nvuf: interrupted. Everything finished so far is stored in {}{stored}; rerun the same \
             command to continue where it stopped.",
            study_dir.display()
        );
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
