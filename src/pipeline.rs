//! `vuf run`: every stage that has work to do, in order, as plain library calls.
//!
//! The stages are the crate's modules in data-flow order: (collect) -> code -> consensus
//! -> analyze -> report. Each stage reads what the previous one stored and is safe to
//! re-run: coding skips what is coded, analysis and report are recomputed from the store.
//! This module only strings them together and reports what each did; it prints nothing
//! (the CLI turns [`Stage`] events into progress lines).

use std::path::{Path, PathBuf};

use crate::analyze::{self, AnalysisInput, AnalyzeOptions, Exclusion, InputFile};
use crate::code::offline::{apply, OfflineCoder};
use crate::protocol::CodeSource;
use crate::report;
use crate::store::{self, coded, Store};
use crate::text::{count, plural, verb};

/// Errors of the pipeline, each naming the stage.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] store::Error),
    /// The offline coder's model file could not be loaded.
    #[error("offline coder: {0}")]
    OfflineModel(#[from] crate::code::offline::ModelError),
    /// Writing the analysis failed.
    #[error("analysis: {0}")]
    Analyze(#[from] analyze::Error),
    /// Loading or writing the report failed.
    #[error("report: {0}")]
    Report(#[from] report::Error),
    /// Nothing to analyse.
    #[error("{0}")]
    Nothing(String),
}

/// Name of the offline coding stage of `run`.
pub const CODE_OFFLINE: &str = "code (offline)";
/// Name of the analysis stage of `run` (it writes `<study-dir>/analysis`).
pub const ANALYZE: &str = "analyze";
/// Name of the report stage of `run` (it writes `<study-dir>/report`).
pub const REPORT: &str = "report";

/// One progress event of `run`.
#[derive(Debug, Clone, PartialEq)]
pub enum Stage {
    /// A stage started.
    Started(&'static str),
    /// A stage finished, with a one-line summary.
    Finished(&'static str, String),
}

/// Pick the code source to analyse: the requested one if it has codes, else the first
/// available of models, published, offline (issue: analysis `--source`), with the cascade
/// instead of models or offline when it codes more samples, or as many as offline (after
/// `vuf code --cascade`).
pub fn choose_source(store: &Store, requested: Option<CodeSource>) -> Result<CodeSource, Error> {
    choose_source_in(store, requested, "b")
}

/// [`choose_source`] by the codes of one layer (`a` or `b`): `vuf export codes --layer a`
/// can export a source that has only Layer A codes.
pub fn choose_source_in(
    store: &Store,
    requested: Option<CodeSource>,
    layer: &str,
) -> Result<CodeSource, Error> {
    let available = coded::available_sources_in(store.conn(), layer)?;
    if let Some(s) = requested {
        if available.contains(&s) {
            return Ok(s);
        }
        let names: Vec<&str> = available.iter().map(|s| s.as_str()).collect();
        return Err(Error::Nothing(format!(
            "no `{}` codes in the store (available: {}); {}",
            s.as_str(),
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            },
            match s {
                CodeSource::Offline => "run `vuf code --offline` first",
                CodeSource::Cascade => "run `vuf code --cascade 0.9` (or another threshold) first",
                CodeSource::Published => {
                    "published codes come from `vuf import-codes` (the study's own consensus files)"
                }
                CodeSource::Models => "run `vuf code` first",
            }
        )));
    }
    let first = CodeSource::DEFAULT_PREFERENCE
        .into_iter()
        .find(|s| available.contains(s))
        .ok_or_else(|| {
            Error::Nothing(
                "no codes in the store yet: run `vuf code --offline` (no key needed), `vuf code`, or `vuf import-codes`"
                    .into(),
            )
        })?;
    // After `vuf code --cascade`, the coder models have coded only the samples the offline
    // coder was unsure of, and the offline codes are the cascade's first guesses: the
    // cascade, which covers them all, is what was asked for.
    if available.contains(&CodeSource::Cascade) {
        let cov = coded::coverage_in(store.conn(), layer)?;
        let n = |s: CodeSource| cov.iter().find(|c| c.0 == s).map_or(0, |c| c.1);
        let cascade = n(CodeSource::Cascade);
        let takes_over = match first {
            CodeSource::Models => cascade > n(first),
            CodeSource::Offline => cascade >= n(first),
            CodeSource::Published | CodeSource::Cascade => false,
        };
        if takes_over {
            return Ok(CodeSource::Cascade);
        }
    }
    Ok(first)
}

/// A note when the analysed source codes fewer samples than another source in the store:
/// the default choice (models, then published, then offline) takes a source however few
/// samples it covers, so a trial `vuf code --limit 2`, or the published codes of one model
/// imported into a corpus, would otherwise quietly replace a complete analysis.
fn partial_source(coverage: &[(CodeSource, usize)], source: CodeSource) -> Option<String> {
    let n = coverage
        .iter()
        .find(|(s, _)| *s == source)
        .map_or(0, |c| c.1);
    let (best, most) = coverage
        .iter()
        .filter(|(s, _)| *s != source)
        .max_by_key(|(s, m)| (*m, std::cmp::Reverse(*s)))?;
    (*most > n).then(|| {
        format!(
            "source `{}` codes {}, source `{}` {most}: this analysis covers only the first; `--source {}` analyses the other",
            source.as_str(),
            crate::text::count(n, "sample"),
            best.as_str(),
            best.as_str()
        )
    })
}

/// A note when offline codes behind the source come from another offline model than the
/// one this build ships (say a study coded by offline-v1, analysed by a vuf that ships
/// offline-v2): the rates are those of the older coder, which is not wrong, but should be
/// a choice. `vuf run` codes again by itself; `vuf analyze` only reads.
fn stale_offline_codes(
    conn: &rusqlite::Connection,
    source: CodeSource,
) -> Result<Option<String>, Error> {
    if !matches!(source, CodeSource::Offline | CodeSource::Cascade) {
        return Ok(None);
    }
    let current = apply::model_tag();
    let older: Vec<String> = coded::consensus_versions(conn, source)?
        .into_iter()
        .filter(|v| v.contains(':') && *v != current)
        .collect();
    if older.is_empty() {
        return Ok(None);
    }
    Ok(Some(format!(
        "the offline codes of source `{}` come from {} ({}), not from the offline coder of this build ({current}): run `vuf code {}` to code them again with it (`vuf run` does so itself)",
        source.as_str(),
        if older.len() == 1 { "another offline coder" } else { "other offline coders" },
        older.join(", "),
        if source == CodeSource::Cascade { "--cascade T" } else { "--offline" },
    )))
}

/// Assemble the analysis input of one source from the store.
pub fn analysis_input(store: &Store, source: CodeSource) -> Result<AnalysisInput, Error> {
    let conn = store.conn();
    // Two more read-only connections: consensus and votes are read beside the samples.
    let sides = [store.reader()?, store.reader()?]
        .into_iter()
        .flatten()
        .collect();
    let set = coded::coded_samples_with(conn, source, sides)?;
    let (code_provenance, mut code_warnings) = coded::code_provenance(conn, source)?;
    code_warnings.extend(stale_offline_codes(conn, source)?);
    code_warnings.extend(partial_source(&coded::coverage(conn)?, source));
    Ok(AnalysisInput {
        code_provenance,
        code_warnings,
        rows: std::sync::Arc::new(set.rows),
        metadata: coded::metadata(conn)?,
        exclusions: set
            .excluded
            .into_iter()
            .map(|(layered_id, reason)| Exclusion { layered_id, reason })
            .collect(),
        source,
        inputs: coded::input_files(conn)?
            .into_iter()
            .map(|(name, rows, sha256)| InputFile { name, rows, sha256 })
            .collect(),
        invalid_trace_rows: coded::invalid_count(conn)?,
        custom: set.custom,
    })
}

/// What `analyze_into` did.
#[derive(Debug, Clone)]
pub struct AnalyzeSummary {
    /// The source analysed.
    pub source: CodeSource,
    /// Rows analysed.
    pub rows: usize,
    /// Rows excluded (with reasons in `exclusions.csv`).
    pub excluded: usize,
    /// Files written.
    pub files: Vec<PathBuf>,
    /// Plain-language notes about bad states (small cells, empty families...).
    pub messages: Vec<String>,
    /// Where the time went (for `vuf analyze --timings` and BENCHMARKS.md).
    pub timings: AnalyzeTimings,
}

/// Wall time of the three steps of `analyze_into`.
#[derive(Debug, Clone, Copy, Default)]
pub struct AnalyzeTimings {
    /// Reading samples, codes and metadata from the store.
    pub load: std::time::Duration,
    /// The analysis itself (no I/O).
    pub compute: std::time::Duration,
    /// Rendering and writing every output file.
    pub write: std::time::Duration,
}

/// Run the frozen analysis of one source and write every output into `out`.
pub fn analyze_into(
    store: &Store,
    source: CodeSource,
    out: &Path,
) -> Result<AnalyzeSummary, Error> {
    let started = std::time::Instant::now();
    let input = analysis_input(store, source)?;
    let loaded = started.elapsed();
    if input.rows.is_empty() && !input.custom.is_empty() {
        let others = input.exclusions.len() - input.custom.len();
        return Err(Error::Nothing(format!(
            "no valid sample of the six published conditions has `{}` codes, and the frozen \
             analysis covers only those: {} {} of custom conditions, outside it{}; get their \
             responses and codes with `vuf export traces DIR` and `vuf export codes --layer b \
             --out FILE`",
            source.as_str(),
            count(input.custom.len(), "valid sample"),
            verb(input.custom.len(), "is", "are"),
            if others > 0 {
                format!(
                    ", and {others} other {} {} them",
                    plural(others, "sample"),
                    verb(others, "lacks", "lack")
                )
            } else {
                String::new()
            }
        )));
    }
    if input.rows.is_empty() {
        return Err(Error::Nothing(format!(
            "no valid sample has `{}` codes ({} {} them)",
            source.as_str(),
            count(input.exclusions.len(), "valid sample"),
            verb(input.exclusions.len(), "lacks", "lack")
        )));
    }
    let analysis = analyze::analyze(&input, &AnalyzeOptions::default());
    let computed = started.elapsed();
    let files = analyze::write_outputs(&analysis, out)?;
    let (rows, excluded, messages) = (
        input.rows.len(),
        input.exclusions.len(),
        analysis.messages.clone(),
    );
    // Freeing every sample and table of a corpus takes about as long as writing them; it
    // happens on another thread so the caller does not wait for it.
    std::thread::spawn(move || drop((analysis, input)));
    Ok(AnalyzeSummary {
        source,
        rows,
        excluded,
        files,
        messages,
        timings: AnalyzeTimings {
            load: loaded,
            compute: computed - loaded,
            write: started.elapsed() - computed,
        },
    })
}

/// Options of `run`.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Code source to analyse (`None` = the default preference).
    pub source: Option<CodeSource>,
}

/// What `run` did.
#[derive(Debug, Clone)]
pub struct RunSummary {
    /// Offline coding counts.
    pub offline: apply::ApplyReport,
    /// The analysis.
    pub analysis: AnalyzeSummary,
    /// The report's entry page.
    pub report: PathBuf,
}

/// Code (offline, where not yet coded), analyse and report a study directory.
/// Collection and model coding are separate commands the CLI calls first when a study
/// file asks for them.
pub fn run(
    study_dir: &Path,
    opts: &RunOptions,
    on: &mut dyn FnMut(Stage),
) -> Result<RunSummary, Error> {
    let mut store = Store::open(study_dir)?;
    let counts = store::samples::counts(store.conn())?;
    if counts.valid == 0 {
        let held = if counts.invalid > 0 {
            format!(
                " ({} invalid: see `vuf status` and `vuf export traces`)",
                counts.invalid
            )
        } else {
            String::new()
        };
        return Err(Error::Nothing(format!(
            "the study in {} holds no valid samples{held}: import a corpus (`vuf import PATH`) or \
             collect (`vuf collect` with a study.toml); in a directory holding nothing else, `vuf run` \
             collects the default local study",
            study_dir.display()
        )));
    }
    on(Stage::Started(CODE_OFFLINE));
    let coder = OfflineCoder::load_default()?;
    let offline = apply::code_store(&mut store, &coder)?;
    on(Stage::Finished(
        CODE_OFFLINE,
        format!(
            "{} coded, {} already coded",
            count(offline.coded, "sample"),
            offline.already
        ),
    ));
    on(Stage::Started(ANALYZE));
    let source = choose_source(&store, opts.source)?;
    let out = study_dir.join("analysis");
    let analysis = analyze_into(&store, source, &out)?;
    on(Stage::Finished(
        ANALYZE,
        format!(
            "source {}: {} analysed, {} excluded, {} in {}",
            source.as_str(),
            count(analysis.rows, "sample"),
            analysis.excluded,
            count(analysis.files.len(), "file"),
            out.display()
        ),
    ));
    on(Stage::Started(REPORT));
    let input = report::load(&out)?;
    let report_dir = study_dir.join("report");
    report::write_report(&input, &report_dir, &report::ReportOptions::default())?;
    let entry = report_dir.join("report.html");
    on(Stage::Finished(REPORT, format!("{}", entry.display())));
    Ok(RunSummary {
        offline,
        analysis,
        report: entry,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn consensus(conn: &rusqlite::Connection, id: i64, source: &str, rubric: &str) {
        conn.execute(
            "INSERT INTO consensus (sample_id, layer, source, rubric_hash, has_disagreement)
             VALUES (?1, 'b', ?2, ?3, 0)",
            rusqlite::params![id, source, rubric],
        )
        .unwrap();
    }

    #[test]
    fn a_source_covering_fewer_samples_than_another_is_pointed_out() {
        use CodeSource::*;
        let cov = [(Models, 2), (Offline, 12)];
        assert_eq!(
            partial_source(&cov, Models).as_deref(),
            Some("source `models` codes 2 samples, source `offline` 12: this analysis covers only the first; `--source offline` analyses the other")
        );
        assert_eq!(partial_source(&cov, Offline), None);
        // Equal coverage is no news; a source with no rows at all counts as 0.
        assert_eq!(
            partial_source(&[(Published, 5), (Offline, 5)], Published),
            None
        );
        assert_eq!(
            partial_source(&[(Offline, 1)], Cascade).as_deref(),
            Some("source `cascade` codes 0 samples, source `offline` 1: this analysis covers only the first; `--source offline` analyses the other")
        );
        // The best-covered other source is named; a tie goes to the first in source order.
        let cov = [(Published, 1680), (Models, 13906), (Offline, 13906)];
        assert!(partial_source(&cov, Published)
            .unwrap()
            .contains("source `models` 13906"));
    }

    #[test]
    fn offline_codes_of_another_offline_model_are_pointed_out() {
        let store = Store::open_in_memory().unwrap();
        let conn = store.conn();
        conn.pragma_update(None, "foreign_keys", "OFF").unwrap();
        let current = apply::model_tag();
        consensus(conn, 1, "offline", &current);
        assert_eq!(
            stale_offline_codes(conn, CodeSource::Offline).unwrap(),
            None
        );
        consensus(conn, 2, "offline", "offline-v1:0123456789abcdef");
        let note = stale_offline_codes(conn, CodeSource::Offline)
            .unwrap()
            .unwrap();
        assert!(
            note.contains("come from another offline coder (offline-v1:0123456789abcdef)")
                && note.contains(&format!(
                    "not from the offline coder of this build ({current})"
                ))
                && note.contains("run `vuf code --offline`"),
            "{note}"
        );
        // A cascade's model-coded rows carry a rubric hash (no colon): not an offline model.
        consensus(conn, 3, "cascade", &"ab".repeat(32));
        consensus(conn, 4, "cascade", &current);
        assert_eq!(
            stale_offline_codes(conn, CodeSource::Cascade).unwrap(),
            None
        );
        // Model codes are never offline codes.
        consensus(conn, 5, "models", "offline-v1:0123456789abcdef");
        assert_eq!(stale_offline_codes(conn, CodeSource::Models).unwrap(), None);
    }
}
