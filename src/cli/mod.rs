//! Command-line layer: clap definitions (one file per subcommand), the global
//! `--study-dir` option, progress drawing and exit codes. No SQL, wire formats or
//! statistics here.

mod analyze;
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

use std::path::PathBuf;

pub(crate) use process::Problems;
use process::{message, report_interrupts, restore_sigpipe};

use clap::{Parser, Subcommand};

/// Options every command takes.
#[derive(Debug, Clone, clap::Args)]
pub struct Global {
    /// Study directory holding the store, config and outputs.
    #[arg(
        long,
        global = true,
        env = "VUF_STUDY_DIR",
        default_value = "vuf-study"
    )]
    pub study_dir: PathBuf,
}

impl Global {
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
    pub fn lock_study(&self, creates: bool) -> anyhow::Result<Option<std::fs::File>> {
        let dir = &self.study_dir;
        self.not_a_file()?;
        if !creates && !dir.join(vuf::store::STORE_FILE).is_file() {
            return Ok(None);
        }
        std::fs::create_dir_all(dir)
            .map_err(|e| anyhow::anyhow!("creating the study directory {}: {e}", dir.display()))?;
        let path = dir.join("vuf.lock");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| anyhow::anyhow!("opening {}: {e}", path.display()))?;
        match file.try_lock() {
            Ok(()) => Ok(Some(file)),
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
    ImportCodes(import_codes::Args),
    /// Code samples with the configured coder models.
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
    let cli = Cli::parse();
    let g = &cli.global;
    // Writing commands: (may create the study, makes samples). They hold the study's lock
    // until the process ends, and say what is stored when interrupted.
    let writer = match cli.command {
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
    let _lock = match writer.map(|(creates, _)| g.lock_study(creates)) {
        Some(Err(e)) => {
            eprintln!("vuf: error: {}", message(&e));
            return 2;
        }
        Some(Ok(f)) => f,
        None => None,
    };
    if let Some((_, makes_samples)) = writer {
        report_interrupts(g.study_dir.clone(), makes_samples);
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
        Command::Run(args) => run::run(g, args),
        Command::Collect(args) => match collect_study.take() {
            Some((study, text)) => collect::execute(g, study, &text, args),
            None => collect::run(g, args),
        },
    };
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
