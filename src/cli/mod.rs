//! Command-line layer: clap definitions (one file per subcommand), the global
//! `--study-dir` option, progress drawing and exit codes. No SQL, wire formats or
//! statistics here.

mod collect;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Options every command takes.
#[derive(Debug, Clone, clap::Args)]
pub struct Global {
    /// Study directory holding the store, config and outputs.
    #[arg(long, global = true, env = "VUF_STUDY_DIR", default_value = "vuf-study")]
    pub study_dir: PathBuf,
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
    /// Collect responses from the study's cells (crash-safe top-up).
    Collect(collect::CollectArgs),
}

/// Parse arguments, run, and return the process exit code.
pub fn main() -> i32 {
    let cli = Cli::parse();
    let result: anyhow::Result<()> = match cli.command {
        Command::Collect(args) => collect::run(&cli.global, args),
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("vuf: error: {e:#}");
            2
        }
    }
}
