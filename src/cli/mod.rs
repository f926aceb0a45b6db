//! Command-line layer: clap definitions (one file per subcommand), the global
//! `--study-dir` option, progress drawing and exit codes. No SQL, wire formats or
//! statistics here.

mod analyze;
mod causes;
mod code;
mod coder;
mod collect;
mod consensus;
mod disagreements;
mod export;
mod import;
mod import_codes;
mod process;
mod report;
mod run;
mod status;

use std::path::{Path, PathBuf};

pub(crate) use process::Problems;
use process::{doing, message, report_interrupts, restore_sigpipe, Activity};

use clap::{Parser, Subcommand};

/// The study directory when neither `--study-dir` nor `VUF_STUDY_DIR` names one.
pub const DEFAULT_STUDY_DIR: &str = "vuf-study";

/// Options every command takes.
#[derive(Debug, Clone, clap::Args)]
pub struct Global {
    /// Study directory holding the store, config and outputs (`VUF_STUDY_DIR` set but
    /// empty counts as unset).
    #[arg(
        long,
        global = true,
        env = "VUF_STUDY_DIR",
        default_value = DEFAULT_STUDY_DIR
    )]
    pub study_dir: PathBuf,
}

/// `path` as one word a POSIX shell reads back unchanged: as it is when it holds only
/// characters no shell treats specially, else in single quotes.
pub fn shell_word(path: &Path) -> String {
    let text = path.to_string_lossy();
    let plain = |c: char| c.is_ascii_alphanumeric() || "/._-+=:@,%".contains(c);
    if !text.is_empty() && text.chars().all(plain) {
        text.into_owned()
    } else {
        format!("'{}'", text.replace('\'', "'\\''"))
    }
}

impl Global {
    /// The command line that runs `vuf ARGS` on this study, for messages that say what to
    /// do next: `--study-dir` is named unless it is the default.
    pub fn command(&self, args: &str) -> String {
        if self.study_dir == Path::new(DEFAULT_STUDY_DIR) {
            format!("vuf {args}")
        } else {
            format!("vuf --study-dir {} {args}", shell_word(&self.study_dir))
        }
    }

    /// A `--study-dir` that names a file is a mistake to name, not an I/O error to pass on.
    pub fn not_a_file(&self) -> anyhow::Result<()> {
        let dir = &self.study_dir;
        if dir.exists() && !dir.is_dir() {
            anyhow::bail!(
                "--study-dir {} is a file, not a study directory",
                dir.display()
            );
        }
        Ok(())
    }

    /// Exclusive use of the study by one writing command at a time (import, collect, code,
    /// consensus, run): two writers would do the same paid work twice and then trip over
    /// each other's rows. The lock is an OS file lock on `<study-dir>/vuf.lock`, released
    /// when the process ends however it ends. Reading commands do not take it.
    /// With `creates` false (a command that needs an existing study) a missing study is
    /// left alone (`None`): the command itself says there is no study, and nothing is made.
    pub fn lock_study(&self, creates: bool) -> anyhow::Result<Option<StudyLock>> {
        let dir = &self.study_dir;
        self.not_a_file()?;
        if !creates && !dir.join(vuf::store::STORE_FILE).is_file() {
            return Ok(None);
        }
        // The directories this invocation makes, deepest first, so that a command that
        // fails before storing anything can take them away again (and nothing else).
        let created: Vec<PathBuf> = dir
            .ancestors()
            .filter(|a| !a.as_os_str().is_empty())
            .take_while(|a| !a.exists())
            .map(Path::to_path_buf)
            .collect();
        std::fs::create_dir_all(dir)
            .map_err(|e| anyhow::anyhow!("creating the study directory {}: {e}", dir.display()))?;
        let path = dir.join(LOCK_FILE);
        let had_lock = path.exists();
        let had_store = store_files().iter().any(|f| dir.join(f).exists());
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| anyhow::anyhow!("opening {}: {e}", path.display()))?;
        match file.try_lock() {
            Ok(()) => Ok(Some(StudyLock {
                _file: file,
                dir: dir.clone(),
                created,
                had_lock,
                had_store,
            })),
            Err(std::fs::TryLockError::WouldBlock) => anyhow::bail!(
                "another vuf command is writing to the study in {} right now; wait for it to finish \
                 (or stop it), then rerun this one. Reading commands (status, analyze, report) work meanwhile.",
                dir.display()
            ),
            Err(std::fs::TryLockError::Error(e)) => Err(anyhow::anyhow!("locking {}: {e}", path.display())),
        }
    }

    /// The study's store for a command that only reads or adds to an existing study: a
    /// mistyped `--study-dir` must say so, not create an empty study that looks valid.
    pub fn existing_store(&self) -> anyhow::Result<vuf::store::Store> {
        let dir = &self.study_dir;
        self.not_a_file()?;
        if !dir.join(vuf::store::STORE_FILE).is_file() {
            anyhow::bail!(
                "no study in {}: there is no {} yet. Import a corpus (`vuf import PATH`), collect \
                 (`vuf collect` with a study.toml) or run the default study (`vuf run`) first, or \
                 pass the right --study-dir",
                dir.display(),
                vuf::store::STORE_FILE
            );
        }
        vuf::store::Store::open(dir).map_err(|e| {
            let hint = if e.to_string().contains("not a database") {
                format!(
                    " ({} is not a vuf store; move it away, or pass another --study-dir)",
                    dir.join(vuf::store::STORE_FILE).display()
                )
            } else {
                String::new()
            };
            anyhow::anyhow!("opening the study in {}: {e}{hint}", dir.display())
        })
    }
}

/// Name of the lock file of a study directory.
pub const LOCK_FILE: &str = "vuf.lock";

/// A writing command's hold on its study (see [`Global::lock_study`]).
pub struct StudyLock {
    _file: std::fs::File,
    dir: PathBuf,
    /// Directories this invocation created, deepest first.
    created: Vec<PathBuf>,
    /// Whether the lock file was there before this invocation.
    had_lock: bool,
    /// Whether the store (or any of SQLite's files beside it) was there before.
    had_store: bool,
}

/// The store file and the files SQLite keeps beside it.
fn store_files() -> [String; 4] {
    ["", "-wal", "-shm", "-journal"].map(|suffix| format!("{}{suffix}", vuf::store::STORE_FILE))
}

impl StudyLock {
    /// After a failed command: take away what this invocation made and did not use, so a
    /// refused command leaves no study behind. That is the store when this invocation
    /// created it and it holds nothing (only the schema and the paper's model table, which
    /// opening writes), the lock file when this invocation created it, and then the
    /// directories it created, each only if empty. Nothing that was there before is
    /// touched, and a store with anything in it is kept whole.
    pub fn remove_if_unused(self) {
        if !self.had_store && self.dir.join(vuf::store::STORE_FILE).exists() {
            let unused = vuf::store::Store::open_read_only(&self.dir)
                .ok()
                .flatten()
                .and_then(|s| s.holds_nothing().ok())
                .unwrap_or(false);
            if !unused {
                return;
            }
            for f in store_files() {
                match std::fs::remove_file(self.dir.join(f)) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => return,
                    _ => {}
                }
            }
        }
        // Still holding the lock: no other writer can have started in the meantime.
        if !self.had_lock && std::fs::remove_file(self.dir.join(LOCK_FILE)).is_err() {
            return;
        }
        for d in &self.created {
            // `remove_dir` removes only an empty directory.
            if std::fs::remove_dir(d).is_err() {
                return;
            }
        }
    }
}

/// vuf: run values-under-fire studies on language models.
#[derive(Debug, Parser)]
#[command(name = "vuf", version, about, long_about = None)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Import traces, website sample bundles, coding manifests or models.json (auto-detected).
    Import(import::ImportArgs),
    /// Show what the store holds (samples, cells, models, labs; --json for the stable form).
    Status(status::StatusArgs),
    /// Write stored data back out in a published format.
    Export(export::ExportArgs),
    /// Import published coder files (per-coder and consensus).
    ///
    /// Every row is checked against the protocol (labels, value-holdings, supports, topic
    /// keys, coder keys, ids) and imported whole or not at all; a row that differs from
    /// what the study holds (a stored consensus row, a coder's vote, a sample's ids) is a
    /// conflict and is not imported. Exit code 1 when rows were left out, 2 when nothing was
    /// imported (for example a directory without `.jsonl` files).
    ImportCodes(import_codes::Args),
    /// Code samples: with coder models (the paper's three, or `[[coders]]` in the study
    /// file), with the built-in offline coder (`--offline`), or as a cascade of both.
    Code(code::Args),
    /// Recompute consensus from per-coder codes.
    Consensus(consensus::Args),
    /// List samples where the coders disagree.
    Disagreements(disagreements::Args),
    /// Train or evaluate the built-in offline coder.
    Coder(coder::CoderArgs),
    /// Run the frozen analysis on one code source.
    Analyze(analyze::AnalyzeArgs),
    /// The main job: collect (study.toml, or the default local study), code what is
    /// uncoded, analyse, report.
    Run(run::RunArgs),
    /// Render the report (HTML, Markdown, LaTeX, figures, exports) from an analysis directory.
    Report(report::ReportArgs),
    /// Collect responses from the study's cells (crash-safe top-up).
    Collect(collect::CollectArgs),
}

/// Parse arguments, run, and return the process exit code.
pub fn main() -> i32 {
    restore_sigpipe();
    // `VUF_STUDY_DIR=` (set but empty, as `export VUF_STUDY_DIR=` or a blank line in an env
    // file leaves it) means no study directory was chosen: the default, as if unset, and
    // not an error about a missing value.
    // The same for the other variables that stand in for options.
    for var in ["VUF_STUDY_DIR", "VUF_SHARED_DATA"] {
        if std::env::var_os(var).is_some_and(|v| v.is_empty()) {
            // Changing the environment is sound only while no other thread reads it: this
            // is the start of main, before any thread is spawned.
            std::env::remove_var(var);
        }
    }
    let cli = Cli::parse();
    let g = &cli.global;
    // Writing commands: (may create the study, makes samples). They hold the study's lock
    // until the process ends, and say what is stored when interrupted.
    let writer = match cli.command {
        // A dry run only reads: it takes no lock and creates nothing.
        Command::Collect(ref a) if a.dry_run => None,
        Command::Run(_) | Command::Collect(_) | Command::Import(_) => Some((true, true)),
        Command::ImportCodes(_) => Some((true, false)),
        Command::Code(_) | Command::Consensus(_) => Some((false, false)),
        _ => None,
    };
    // `vuf collect` reads its study file before the lock, which creates the study
    // directory: a collect that refuses (no or bad study file) must leave no trace.
    let mut collect_study = match &cli.command {
        Command::Collect(args) => match collect::load(g, args) {
            Ok(loaded) => Some(loaded),
            Err(e) => {
                eprintln!("vuf: error: {}", message(&e));
                return 2;
            }
        },
        _ => None,
    };
    // `vuf run` checks its options and finds the local model before the lock, for the same
    // reason: a refused run must not leave a study directory behind.
    let mut run_plan = match &cli.command {
        Command::Run(args) => match run::prepare(g, args) {
            Ok(plan) => Some(plan),
            Err(e) => {
                eprintln!("vuf: error: {}", message(&e));
                return 2;
            }
        },
        _ => None,
    };
    let lock = match writer.map(|(creates, _)| g.lock_study(creates)) {
        Some(Err(e)) => {
            eprintln!("vuf: error: {}", message(&e));
            return 2;
        }
        Some(Ok(f)) => f,
        None => None,
    };
    // Long commands say what is kept when interrupted: the writers, and the two that write
    // files from the store (analyze, report).
    match (&cli.command, writer) {
        (_, Some((_, makes_samples))) => report_interrupts(g.study_dir.clone(), makes_samples),
        (Command::Analyze(_) | Command::Report(_), None) => {
            report_interrupts(g.study_dir.clone(), false)
        }
        _ => {}
    }
    match &cli.command {
        Command::Import(_) => doing(Activity::Import),
        Command::ImportCodes(_) => doing(Activity::ImportCodes),
        Command::Consensus(_) => doing(Activity::Consensus),
        _ => {}
    }
    let result: anyhow::Result<()> = match cli.command {
        Command::Import(args) => import::run(g, args),
        Command::Status(args) => status::run(g, args),
        Command::Export(args) => export::run(g, args),
        Command::ImportCodes(a) => import_codes::run(g, &a),
        Command::Code(a) => code::run(g, &a),
        Command::Consensus(a) => consensus::run(g, &a),
        Command::Disagreements(a) => disagreements::run(g, &a),
        Command::Coder(args) => coder::run(g, args),
        Command::Report(args) => report::run(g, args),
        Command::Analyze(args) => analyze::run(g, args),
        Command::Run(args) => run::run(g, args, run_plan.take()),
        Command::Collect(args) => match collect_study.take() {
            Some((study, text)) => collect::execute(g, study, &text, args),
            None => collect::run(g, args),
        },
    };
    if result.is_err() {
        if let Some(lock) = lock {
            lock.remove_if_unused();
        }
    }
    match result {
        Ok(()) => 0,
        Err(e) if e.downcast_ref::<Problems>().is_some() => {
            eprintln!("vuf: {}", message(&e));
            1
        }
        Err(e) => {
            eprintln!("vuf: error: {}", message(&e));
            2
        }
    }
}
