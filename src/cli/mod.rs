//! Command-line layer: clap definitions (one file per subcommand), the global
//! `--study-dir` option, progress drawing and exit codes. No SQL, wire formats or
//! statistics here.

mod export;
mod import;
mod status;

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
    /// Import traces, website sample bundles, coding manifests or models.json (auto-detected).
    Import(import::ImportArgs),
    /// Show what the store holds (samples, cells, models, labs; --json for the stable form).
    Status(status::StatusArgs),
    /// Write stored data back out in a published format.
    Export(export::ExportArgs),
}

/// Parse arguments, run, and return the process exit code.
pub fn main() -> i32 {
    let cli = Cli::parse();
    let result: anyhow::Result<()> = match cli.command {
        Command::Import(args) => import::run(&cli.global, args),
        Command::Status(args) => status::run(&cli.global, args),
        Command::Export(args) => export::run(&cli.global, args),
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("vuf: error: {e:#}");
            2
        }
    }
}
