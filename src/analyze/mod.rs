//! The frozen analysis (PROTOCOL 7): plain [`CodedSample`] rows in, typed tables out.
//!
//! [`analyze`] does no I/O: it joins metadata, computes every quantity of PROTOCOL 7 and
//! renders every output (CSV tables, the published Markdown and LaTeX texts) into an
//! [`Analysis`], which also keeps the input rows and what was found per sample.
//! [`write_outputs`] writes those to a directory, rendering the two sample-level files
//! (the tidy sample table and `samples.jsonl`) from the rows as it writes them.
//!
//! Why this shape: the published outputs are the contract, down to the last bit of a float,
//! so the summation orders (see `rates`), the number formats (`pyfmt`) and the CSV quoting
//! (`table`) each live in one small module that says exactly what it reproduces. Every
//! statistic vuf adds beyond the paper (Wilson, bootstrap, reliability, topics, trends,
//! per-term lexical counts) is its own module with worked-example tests, and each writes
//! its own extra table so the published files stay byte-identical.
//!
//! Proof (`tests/it/analyze_expected.rs`): on the input rebuilt from the labelled subset
//! exactly as `shared/data/expected/README.md` describes (the built files' SHA-256 match),
//! all 18 files the published scripts wrote are reproduced: every CSV byte-identical, every
//! `.tex` byte-identical, the two summaries byte-identical except the sentence saying who
//! generated them ([`MIRRORED_TEXTS`]), and `data_snapshot.md` identical except its
//! environment lines (`Generated:` and the four repository lines; vuf has no repository
//! paths or commits to report).
//!
//! Behaviour the subset cannot exercise, so it follows the protocol text and is unverified
//! against the published code: `website_family` is empty for a model without metadata;
//! `figures_lab_trends.tex` puts `\clearpage` after every figure (one lab here); NaN rates
//! sort last in the results-summary top-15 lists; lab tables keep labs whose models are all
//! small-n (NaN means, `n_models` 0); model tables always have 6 (3) rows per model, small-n
//! rows included; `exclusions.csv` is always written (header only when empty), while the
//! published code writes it only when non-empty.

pub mod bootstrap;
pub mod custom;
pub mod input;
pub mod labels;
pub mod lexical;
pub mod lexscan;
pub mod output;
pub mod pyfmt;
pub mod rates;
pub mod reliability;
pub mod spearman;
pub mod table;
pub mod wilson;

mod checks;
mod published;
mod topics;
mod trends;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::protocol::{CodeSource, CodedSample, CustomSample, ModelMeta};

pub use input::ModelInfo;
pub use labels::Label;
pub use output::samples::AnalysedSample;
pub use published::{generated_by, published_generated_by, MIRRORED_TEXTS};
pub use rates::{Counts, LabRate, Unit, UnitRate};
pub use table::{Table, Value};

/// A row left out of the analysis, with the reason (PROTOCOL 7.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exclusion {
    /// The row's join key.
    pub layered_id: String,
    /// Why it was left out (e.g. `missing posture consensus`).
    pub reason: String,
}

/// One consumed input file, for the provenance record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputFile {
    /// File name as shown in `data_snapshot.md`.
    pub name: String,
    /// Row count.
    pub rows: usize,
    /// SHA-256 hex.
    pub sha256: String,
}

/// Everything the analysis reads.
#[derive(Debug, Clone)]
pub struct AnalysisInput {
    /// Joined rows in manifest order (first-appearance order of cells sets summation order).
    /// Shared, because the [`Analysis`] keeps them to write the sample-level outputs.
    pub rows: Arc<Vec<CodedSample>>,
    /// Per-model metadata (canonical model keys).
    pub metadata: Vec<ModelMeta>,
    /// Rows already excluded upstream (e.g. `missing posture consensus`).
    pub exclusions: Vec<Exclusion>,
    /// Where the codes came from.
    pub source: CodeSource,
    /// Input files for the provenance table.
    pub inputs: Vec<InputFile>,
    /// Invalid traces known to the store (reported, never analysed).
    pub invalid_trace_rows: usize,
    /// What coded the source (rubric hashes, coders), as `(key, value)` lines for the
    /// provenance record; empty when unknown.
    pub code_provenance: Vec<(String, String)>,
    /// Warnings about the codes (e.g. mixed rubric versions), passed on as messages.
    pub code_warnings: Vec<String>,
    /// Valid samples of custom conditions (also in `exclusions`): outside the frozen
    /// analysis, counted in `custom_conditions.csv` only ([`custom`]).
    pub custom: Vec<CustomSample>,
}

/// Analysis options.
#[derive(Debug, Clone)]
pub struct AnalyzeOptions {
    /// Cell-bootstrap replicates (10,000, frozen).
    pub bootstrap_replicates: usize,
    /// Bootstrap seed (20260521, frozen).
    pub seed: u64,
    /// Also compute the curly-apostrophe-normalised lexical variant, side by side.
    pub curly_apostrophe_variant: bool,
    /// Text of the `Generated:` line of `data_snapshot.md` (`unknown` when `None`).
    pub generated_at: Option<String>,
}

impl Default for AnalyzeOptions {
    fn default() -> Self {
        AnalyzeOptions {
            bootstrap_replicates: 10_000,
            seed: 20260521,
            curly_apostrophe_variant: true,
            generated_at: None,
        }
    }
}

/// Provenance of one analysis run.
#[derive(Debug, Clone, PartialEq)]
pub struct Provenance {
    /// Input files.
    pub inputs: Vec<InputFile>,
    /// Rows handed in (before exclusions here).
    pub n_input_rows: usize,
    /// Manifest rows: rows handed in plus rows excluded upstream.
    pub n_manifest_rows: usize,
    /// Rows analysed.
    pub n_rows: usize,
    /// Rows excluded (upstream + here).
    pub n_excluded: usize,
    /// Invalid traces.
    pub invalid_trace_rows: usize,
    /// Rubric hashes and coders behind the codes.
    pub code_provenance: Vec<(String, String)>,
}

/// The result: typed aggregates plus every rendered output.
#[derive(Debug, Clone)]
pub struct Analysis {
    /// Code source of the input.
    pub source: CodeSource,
    /// Provenance.
    pub provenance: Provenance,
    /// Models, sorted by key.
    pub models: Vec<ModelInfo>,
    /// Model x condition primary rates (model order, then CTRL1, CTRL2, G1, G2, CTRL3, G3).
    pub model_conditions: Vec<UnitRate>,
    /// Model x family primary rates (model order, then direct, cache-broken, world-change).
    pub model_families: Vec<UnitRate>,
    /// Lab x condition aggregates (lab order, condition order).
    pub lab_conditions: Vec<LabRate>,
    /// Lab x family aggregates.
    pub lab_families: Vec<LabRate>,
    /// Exclusions.
    pub exclusions: Vec<Exclusion>,
    /// Every CSV table, in writing order, except the sample-level table (see `analysed`).
    pub tables: Vec<Table>,
    /// Text outputs: (file name, content).
    pub texts: Vec<(String, String)>,
    /// The input rows, shared with the input (not copied): the sample-level outputs are
    /// rendered from them when written.
    pub rows: Arc<Vec<CodedSample>>,
    /// The analysed samples in output order (exclusions left out), pointing into `rows`.
    pub analysed: Vec<AnalysedSample>,
    /// Human-readable notes about bad states (no rows, small-n units, one-model labs...).
    pub messages: Vec<String>,
}

impl Analysis {
    /// A table by stem.
    pub fn table(&self, name: &str) -> Option<&Table> {
        self.tables.iter().find(|t| t.name == name)
    }
}

/// Errors of [`write_outputs`].
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be written.
    #[error("writing {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The output directory could not be prepared or swapped in (see [`crate::outdir`]).
    #[error("{0}")]
    Output(#[from] crate::outdir::Error),
}

/// A scoped thread's result, its panic passed on.
fn join<T>(h: std::thread::ScopedJoinHandle<'_, T>) -> T {
    h.join().unwrap_or_else(|e| std::panic::resume_unwind(e))
}

/// Tables and text files made by one output builder.
#[derive(Debug, Default)]
pub(crate) struct Part {
    tables: Vec<Table>,
    texts: Vec<(String, String)>,
}

impl Part {
    fn tables(tables: Vec<Table>) -> Part {
        Part {
            tables,
            texts: Vec::new(),
        }
    }
}

/// Run the whole frozen analysis (no I/O).
pub fn analyze(input: &AnalysisInput, opts: &AnalyzeOptions) -> Analysis {
    let prep = input::prepare(input, opts.curly_apostrophe_variant);
    let mut messages = input.code_warnings.clone();
    messages.extend(custom::note(&input.custom));
    if prep.samples.is_empty() {
        messages.push("no analysable rows: every table below is empty (no codes yet?)".to_string());
    }
    // Samples per model, input order.
    let mut by_model: Vec<Vec<&input::Sample>> = vec![Vec::new(); prep.models.len()];
    for s in &prep.samples {
        by_model[s.model].push(s);
    }
    let mut model_conditions = Vec::new();
    let mut model_families = Vec::new();
    for (m, rows) in by_model.iter().enumerate() {
        for c in crate::protocol::Condition::REPORT_ORDER {
            model_conditions.push(rates::unit_rate(m, Unit::Condition(c), rows));
        }
        for f in crate::protocol::Family::ALL {
            model_families.push(rates::unit_rate(m, Unit::Family(f), rows));
        }
    }
    for r in model_conditions.iter().chain(&model_families) {
        if r.eligible_cells == 0 {
            messages.push(format!(
                "{} x {}: no cell with >= {} rows ({} in {}): reported as small_n with NaN rates",
                prep.models[r.model].model,
                r.unit.as_str(),
                rates::MIN_CELL_ROWS,
                crate::text::count(r.n_valid, "row"),
                crate::text::count(r.excluded_small_cells, "small cell")
            ));
        }
    }
    let mut labs: Vec<String> = prep.models.iter().map(|m| m.lab.clone()).collect();
    labs.sort();
    labs.dedup();
    let lab_of = |lab: &str, unit: Unit, src: &[UnitRate]| {
        let rs: Vec<&UnitRate> = src
            .iter()
            .filter(|r| r.unit == unit && prep.models[r.model].lab == lab)
            .collect();
        rates::lab_rate(lab, unit, &rs)
    };
    let mut lab_conditions = Vec::new();
    let mut lab_families = Vec::new();
    for lab in &labs {
        for c in crate::protocol::Condition::ALL {
            lab_conditions.push(lab_of(lab, Unit::Condition(c), &model_conditions));
        }
        for f in crate::protocol::Family::ALL {
            lab_families.push(lab_of(lab, Unit::Family(f), &model_families));
        }
        let n = prep.models.iter().filter(|m| &m.lab == lab).count();
        if n == 1 {
            messages.push(format!(
                "lab {lab} has one model: its lab mean is that model's rate"
            ));
        }
    }
    let mut analysis = Analysis {
        source: input.source,
        provenance: Provenance {
            inputs: input.inputs.clone(),
            n_input_rows: input.rows.len(),
            n_manifest_rows: input.rows.len() + input.exclusions.len(),
            n_rows: prep.samples.len(),
            n_excluded: prep.exclusions.len(),
            invalid_trace_rows: input.invalid_trace_rows,
            code_provenance: input.code_provenance.clone(),
        },
        models: prep.models.clone(),
        model_conditions,
        model_families,
        lab_conditions,
        lab_families,
        exclusions: prep.exclusions.clone(),
        tables: Vec::new(),
        texts: Vec::new(),
        rows: Arc::clone(&input.rows),
        analysed: prep
            .samples
            .iter()
            .map(|s| AnalysedSample {
                row: s.row,
                model: s.model,
                lex_any: [s.lex.any(0), s.lex.any(1), s.lex.any(2)],
            })
            .collect(),
        messages,
    };
    // The output builders only read the rates above, so they run on two threads (the
    // checks split off their headline bootstraps onto a third); their parts are appended
    // in a fixed order, so the outputs do not depend on the timing.
    let (checks, rest) = std::thread::scope(|scope| {
        let checks = scope.spawn(|| checks::build(&analysis, &prep, &by_model, opts));
        let rest = [
            published::build(&analysis, &prep, opts),
            lexical::build(&analysis, &prep),
            topics::build(&analysis, &prep),
            trends::build(&analysis),
        ];
        (join(checks), rest)
    });
    let [published, lexical, topics, trends] = rest;
    for part in [published, lexical, checks, topics, trends] {
        analysis.tables.extend(part.tables);
        analysis.texts.extend(part.texts);
    }
    // Last, and only when there are custom-condition samples: every other table (and
    // analysis.json for a study of the six conditions) stays as it was.
    analysis.tables.extend(custom::table(&input.custom));
    analysis
}

/// Write every output of an analysis into `dir` (created if missing). Returns the paths.
///
/// `dir` is replaced whole, and only once every file is written: until then it holds the
/// earlier analysis as it was, and a failure leaves it so ([`crate::outdir`]). It must be
/// absent, empty or an earlier vuf analysis; any other directory is refused untouched.
pub fn write_outputs(analysis: &Analysis, dir: &Path) -> Result<Vec<PathBuf>, Error> {
    output::write_all(analysis, dir)
}
