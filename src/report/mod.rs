//! The report a researcher opens: self-contained HTML, Markdown, LaTeX, figures and exports.
//!
//! Owns: reading one analysis output directory ([`load`] → [`ReportInput`]) and writing the
//! report ([`write_report`]). Must not know: SQL, providers, statistics. Every number shown
//! is read from a CSV the analysis wrote (or is a plain count/mean over such rows, named
//! with its source table), so each traces to a CSV row; if a number is missing, it belongs
//! in `analyze`. The contract for the input directory is the analysis output contract
//! (`samples.jsonl`, `analysis.json`, the published CSVs and vuf's extra CSVs); any extra
//! table may be absent, and the report says which ones are.
//!
//! Shape: one small module per output format (`html`, `markdown`, `latex`, `exports`,
//! `figures/`), all reading the typed [`view::Study`] built once from the tables, and one
//! module ([`escape`]) holding every escaping rule, because all text from the data is
//! untrusted model output.

pub mod csv;
pub mod escape;
mod exports;
pub mod figures;
mod html;
mod latex;
mod markdown;
#[cfg(feature = "parquet")]
pub mod parquet;
pub mod view;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Errors while reading an analysis directory or writing a report.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A CSV file is malformed.
    #[error("{path}:{line}: {msg}")]
    Csv {
        /// The CSV file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        msg: String,
    },
    /// A JSON or JSONL file is malformed.
    #[error("{path}:{line}: {msg}")]
    Json {
        /// The JSON file.
        path: PathBuf,
        /// 1-based line (1 for a whole-file JSON document).
        line: usize,
        /// What is wrong, naming the field when known.
        msg: String,
    },
    /// The analysis directory does not exist or holds none of the core tables.
    #[error("{path}: not an analysis output directory ({msg})")]
    NotAnalysis {
        /// The directory.
        path: PathBuf,
        /// What is missing.
        msg: String,
    },
    /// An export (Parquet) could not be written.
    #[error("export {name}: {msg}")]
    Export {
        /// File name.
        name: String,
        /// Library error text.
        msg: String,
    },
    /// A figure could not be drawn.
    #[error("figure {name}: {msg}")]
    Figure {
        /// Figure file stem.
        name: String,
        /// Backend error text.
        msg: String,
    },
    /// The report directory could not be prepared or swapped in (see [`crate::outdir`]).
    #[error("{0}")]
    Output(#[from] crate::outdir::Error),
}

pub(crate) fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// One CSV table as written by the analysis: header plus rows of raw strings.
#[derive(Debug, Clone, Default)]
pub struct Table {
    /// File stem (`model_disclosure_summary`).
    pub name: String,
    /// Header names in file order.
    pub columns: Vec<String>,
    /// Data rows; each has `columns.len()` cells (short rows are padded with "").
    pub rows: Vec<Vec<String>>,
}

impl Table {
    /// Index of a column by name.
    pub fn col(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c == name)
    }

    /// Iterate rows with by-name access.
    pub fn iter(&self) -> impl Iterator<Item = Row<'_>> {
        self.rows
            .iter()
            .map(move |cells| Row { table: self, cells })
    }
}

/// A borrowed row of a [`Table`] with by-name access.
#[derive(Debug, Clone, Copy)]
pub struct Row<'a> {
    table: &'a Table,
    cells: &'a [String],
}

impl<'a> Row<'a> {
    /// Cell text, "" when the column is absent.
    pub fn get(&self, col: &str) -> &'a str {
        self.table
            .col(col)
            .and_then(|i| self.cells.get(i))
            .map(String::as_str)
            .unwrap_or("")
    }

    /// Cell as a finite number; `None` for absent, empty, `nan`, `--` or unparsable cells.
    pub fn num(&self, col: &str) -> Option<f64> {
        self.get(col)
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
    }
}

/// One coder's vote on a sample, as `samples.jsonl` carries it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct CoderVote {
    /// Coder key.
    #[serde(deserialize_with = "lenient_string")]
    pub coder: String,
    /// Collapsed primary label the coder chose.
    #[serde(deserialize_with = "lenient_string")]
    pub label: String,
    /// Value-holding category the coder chose.
    #[serde(deserialize_with = "lenient_string")]
    pub value_holding: String,
    /// Free-text notes (untrusted model text).
    #[serde(deserialize_with = "lenient_string")]
    pub notes: String,
}

/// One analysed sample, one line of `samples.jsonl` (SAMPLES_JSONL contract).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
#[allow(missing_docs)]
pub struct Sample {
    #[serde(deserialize_with = "lenient_string")]
    pub layered_id: String,
    #[serde(deserialize_with = "lenient_string")]
    pub model: String,
    #[serde(deserialize_with = "lenient_string")]
    pub source_model: String,
    #[serde(deserialize_with = "lenient_string")]
    pub display_name: String,
    #[serde(deserialize_with = "lenient_string")]
    pub lab: String,
    #[serde(deserialize_with = "lenient_string")]
    pub cell: String,
    #[serde(deserialize_with = "lenient_string")]
    pub condition: String,
    #[serde(deserialize_with = "lenient_string")]
    pub condition_family: String,
    #[serde(deserialize_with = "lenient_string")]
    pub sample_id: String,
    #[serde(deserialize_with = "lenient_string")]
    pub value_holding: String,
    pub value_holding_support: Option<u32>,
    #[serde(deserialize_with = "lenient_string")]
    pub collapsed_primary_label: String,
    pub collapsed_primary_label_support: Option<u32>,
    pub topics: Vec<String>,
    pub lex: BTreeMap<String, bool>,
    pub coder_votes: Vec<CoderVote>,
    pub confidence: Option<f64>,
    #[serde(deserialize_with = "lenient_string")]
    pub source: String,
    #[serde(deserialize_with = "lenient_string")]
    pub prompt: String,
    #[serde(deserialize_with = "lenient_string")]
    pub response: String,
}

impl Sample {
    /// Coders split: value-holding support below the number of votes, or votes disagreeing.
    pub fn coders_split(&self) -> bool {
        let votes_split = self
            .coder_votes
            .windows(2)
            .any(|w| w[0].value_holding != w[1].value_holding || w[0].label != w[1].label);
        let support_split = match (self.value_holding_support, self.coder_votes.len()) {
            (Some(s), n) if n > 0 => (s as usize) < n,
            (Some(s), _) => s < 3,
            (None, _) => false,
        };
        votes_split || support_split
    }
}

fn lenient_string<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let v = serde_json::Value::deserialize(d)?;
    Ok(match v {
        serde_json::Value::Null => String::new(),
        serde_json::Value::String(s) => s,
        other => other.to_string(),
    })
}

/// One input file named in `analysis.json` provenance.
#[derive(Debug, Clone, Default)]
pub struct InputFile {
    /// File name.
    pub name: String,
    /// Row count, when given.
    pub rows: Option<u64>,
    /// SHA-256 hex digest.
    pub sha256: String,
}

/// Provenance from `analysis.json`.
#[derive(Debug, Clone, Default)]
pub struct Provenance {
    /// vuf version that ran the analysis.
    pub vuf_version: String,
    /// Code source: `published`, `models`, `offline` or `cascade`.
    pub source: String,
    /// Input files with row counts and hashes.
    pub inputs: Vec<InputFile>,
    /// Analysed rows.
    pub n_rows: Option<u64>,
    /// Excluded rows.
    pub n_excluded: Option<u64>,
    /// Any other provenance key (rubric hashes, seeds, ...), flattened to text.
    pub other: Vec<(String, String)>,
}

/// Everything the report needs, read from one analysis output directory.
#[derive(Debug, Clone, Default)]
pub struct ReportInput {
    /// The analysis directory.
    pub dir: PathBuf,
    /// Every CSV table in the directory by file stem (the tidy sample CSV excepted:
    /// `samples.jsonl` carries the same rows).
    pub tables: BTreeMap<String, Table>,
    /// Provenance, when `analysis.json` exists.
    pub provenance: Option<Provenance>,
    /// Analysed samples from `samples.jsonl` (empty when absent).
    pub samples: Vec<Sample>,
    /// Expected files that are absent (the report says so instead of failing).
    pub missing: Vec<String>,
}

/// Core published tables: at least one must exist for a directory to be an analysis.
pub const CORE_TABLES: &[&str] = &[
    "model_disclosure_summary",
    "model_question_owned_disclosure",
];

/// Files the report uses when present, in the order it lists them as missing.
pub const EXPECTED_FILES: &[&str] = &[
    "analysis.json",
    "samples.jsonl",
    "model_disclosure_summary.csv",
    "model_question_owned_disclosure.csv",
    "lab_question_owned_disclosure.csv",
    "coder_support_by_condition.csv",
    "lexical_trace_by_posture.csv",
    "lexical_trace_by_lab.csv",
    "lexical_trace_breakthroughs.csv",
    "lab_trend_figures.csv",
    "model_family_intervals.csv",
    "bootstrap_intervals.csv",
    "version_trends.csv",
];

const TIDY_CSV: &str = "tidy_values_under_fire_samples";

/// Read an analysis output directory (see the module doc for what is optional).
pub fn load(dir: &Path) -> Result<ReportInput, Error> {
    // A `vuf analyze` swapping the directory in waits, and this waits for one doing so.
    let _reading = crate::outdir::hold_for_reading(dir);
    if !dir.is_dir() {
        return Err(Error::NotAnalysis {
            path: dir.to_path_buf(),
            msg: "directory does not exist".into(),
        });
    }
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io_err(dir))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "csv") && p.is_file())
        .collect();
    names.sort();
    let mut tables = BTreeMap::new();
    for path in names {
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        if stem == TIDY_CSV {
            continue;
        }
        tables.insert(stem.clone(), read_table(&path, &stem)?);
    }
    if !CORE_TABLES.iter().any(|t| tables.contains_key(*t)) {
        return Err(Error::NotAnalysis {
            path: dir.to_path_buf(),
            msg: format!("none of {} found", CORE_TABLES.join(".csv, ") + ".csv"),
        });
    }
    let json_path = dir.join("analysis.json");
    let provenance = if json_path.is_file() {
        Some(read_provenance(&json_path)?)
    } else {
        None
    };
    let samples_path = dir.join("samples.jsonl");
    let samples = if samples_path.is_file() {
        read_samples(&samples_path)?
    } else {
        Vec::new()
    };
    let missing = EXPECTED_FILES
        .iter()
        .filter(|f| !dir.join(f).is_file())
        .map(|f| f.to_string())
        .collect();
    Ok(ReportInput {
        dir: dir.to_path_buf(),
        tables,
        provenance,
        samples,
        missing,
    })
}

fn read_table(path: &Path, stem: &str) -> Result<Table, Error> {
    let text = std::fs::read_to_string(path).map_err(io_err(path))?;
    let mut records = crate::report::csv::parse(&text).map_err(|(line, msg)| Error::Csv {
        path: path.to_path_buf(),
        line,
        msg,
    })?;
    if records.is_empty() {
        // Python's lexical script writes an empty CSV as a 0-byte file.
        return Ok(Table {
            name: stem.to_string(),
            ..Table::default()
        });
    }
    let columns = records.remove(0);
    let mut rows = Vec::with_capacity(records.len());
    for (i, mut r) in records.into_iter().enumerate() {
        if r.len() > columns.len() {
            return Err(Error::Csv {
                path: path.to_path_buf(),
                line: i + 2,
                msg: format!("{} fields, header has {}", r.len(), columns.len()),
            });
        }
        if r.len() == 1 && r[0].is_empty() {
            continue;
        }
        r.resize(columns.len(), String::new());
        rows.push(r);
    }
    Ok(Table {
        name: stem.to_string(),
        columns,
        rows,
    })
}

fn read_provenance(path: &Path) -> Result<Provenance, Error> {
    let text = std::fs::read_to_string(path).map_err(io_err(path))?;
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| Error::Json {
        path: path.to_path_buf(),
        line: e.line(),
        msg: e.to_string(),
    })?;
    let s = |v: Option<&serde_json::Value>| match v {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(serde_json::Value::Null) | None => String::new(),
        Some(o) => o.to_string(),
    };
    let prov = v.get("provenance");
    let mut p = Provenance {
        vuf_version: s(v.get("vuf_version")),
        source: s(v.get("source")),
        ..Provenance::default()
    };
    if let Some(prov) = prov.and_then(|p| p.as_object()) {
        for (k, val) in prov {
            match k.as_str() {
                "inputs" => {
                    for inp in val.as_array().into_iter().flatten() {
                        p.inputs.push(InputFile {
                            name: s(inp.get("name")),
                            rows: inp.get("rows").and_then(|r| r.as_u64()),
                            sha256: s(inp.get("sha256")),
                        });
                    }
                }
                "n_rows" => p.n_rows = val.as_u64(),
                "n_excluded" => p.n_excluded = val.as_u64(),
                _ => p.other.push((k.clone(), s(Some(val)))),
            }
        }
    }
    Ok(p)
}

fn read_samples(path: &Path) -> Result<Vec<Sample>, Error> {
    let text = std::fs::read_to_string(path).map_err(io_err(path))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let s: Sample = serde_json::from_str(line).map_err(|e| Error::Json {
            path: path.to_path_buf(),
            line: i + 1,
            msg: e.to_string(),
        })?;
        out.push(s);
    }
    Ok(out)
}

/// Options for [`write_report`].
#[derive(Debug, Clone)]
pub struct ReportOptions {
    /// Report title.
    pub title: String,
    /// Example responses shown per posture per model (first by `layered_id`).
    pub examples_per_posture: usize,
    /// Disagreements listed in full in the HTML; the rest are counted.
    pub max_disagreements: usize,
    /// TrueType font used to draw PNG figures; PNGs are skipped when it cannot be read.
    pub font_path: PathBuf,
    /// Write PNG figures at all.
    pub png: bool,
}

impl Default for ReportOptions {
    fn default() -> Self {
        Self {
            title: "Values under fire: study report".into(),
            examples_per_posture: 2,
            max_disagreements: 150,
            font_path: PathBuf::from("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"),
            png: true,
        }
    }
}

/// Write the report into `out_dir` and return the files written, in write order:
/// `report.html`, `models/<anchor>.html` (one page per model), `summary.md`, `tables.tex`, `figures/*.svg`, `figures/*.png` (when the
/// font is available), `data/*.csv` (spreadsheet-safe copies of every table plus
/// `samples.csv`), `data/tables.json` and, with feature `parquet`, `data/samples.parquet`.
///
/// `out_dir` is replaced whole, and only once every file is written: until then it holds
/// the earlier report as it was, and a failure leaves it so ([`crate::outdir`]). It must be
/// absent, empty or an earlier vuf report; any other directory is refused untouched.
pub fn write_report(
    input: &ReportInput,
    out_dir: &Path,
    opts: &ReportOptions,
) -> Result<Vec<PathBuf>, Error> {
    let study = view::Study::build(input);
    let figs = figures::build_all(&study)?;
    let staging = crate::outdir::Staging::begin(out_dir, KIND)?;
    let tmp = staging.dir().to_path_buf();
    let written = write_into(input, &study, &figs, opts, &tmp)?;
    staging.commit()?;
    Ok(written
        .iter()
        .map(|p| out_dir.join(p.strip_prefix(&tmp).unwrap_or(p)))
        .collect())
}

/// A report directory: what [`crate::outdir::Staging`] may replace whole is one holding
/// the entry page and the table exports vuf writes.
pub const KIND: crate::outdir::Kind = crate::outdir::Kind {
    what: "report",
    is_earlier: |dir| dir.join("report.html").is_file() && dir.join("data/tables.json").is_file(),
};

/// Write every file of the report into the existing, empty directory `out_dir`.
fn write_into(
    input: &ReportInput,
    study: &view::Study<'_>,
    figs: &[figures::Figure],
    opts: &ReportOptions,
    out_dir: &Path,
) -> Result<Vec<PathBuf>, Error> {
    let fig_dir = out_dir.join("figures");
    let data_dir = out_dir.join("data");
    for d in [&fig_dir, &data_dir] {
        std::fs::create_dir_all(d).map_err(io_err(d))?;
    }
    let mut written = Vec::new();
    let png_note = if opts.png {
        figures::load_font(&opts.font_path).err()
    } else {
        Some("PNG figures disabled".to_string())
    };
    let html_text = html::render(input, study, figs, opts, png_note.as_deref());
    written.push(write(out_dir.join("report.html"), html_text.as_bytes())?);
    let model_dir = out_dir.join("models");
    std::fs::create_dir_all(&model_dir).map_err(io_err(&model_dir))?;
    for (name, page) in html::render_model_pages(study, opts) {
        written.push(write(model_dir.join(name), page.as_bytes())?);
    }
    let md = markdown::render(input, study, png_note.as_deref());
    written.push(write(out_dir.join("summary.md"), md.as_bytes())?);
    written.push(write(
        out_dir.join("tables.tex"),
        latex::render(study).as_bytes(),
    )?);
    for f in figs {
        written.push(write(
            fig_dir.join(format!("{}.svg", f.name)),
            f.svg.as_bytes(),
        )?);
    }
    if png_note.is_none() {
        for f in figs {
            let p = fig_dir.join(format!("{}.png", f.name));
            f.write_png(study, &p)?;
            written.push(p);
        }
    }
    written.extend(exports::write_all(input, &data_dir)?);
    #[cfg(feature = "parquet")]
    if !input.samples.is_empty() {
        written.push(parquet::write_samples(input, &data_dir)?);
    }
    Ok(written)
}

fn write(path: PathBuf, bytes: &[u8]) -> Result<PathBuf, Error> {
    std::fs::write(&path, bytes).map_err(io_err(&path))?;
    Ok(path)
}

#[cfg(test)]
mod tests;
