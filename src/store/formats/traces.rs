//! The published trace layout `<cell>/<COND>_<n>.json` (PROTOCOL 2.2, 2.8): import of a
//! corpus root (a directory of cell directories), a single cell directory or a single
//! trace file, and the export that writes the same layout back.
//!
//! Files are read and parsed on all cores (`std::thread::scope`) in chunks, then each
//! chunk is written in one transaction in a fixed order (cells by name, then condition,
//! then index), so the store's first-appearance order does not depend on thread timing.
//! One trace file is one row, so a chunk transaction never holds half a file.

use std::path::{Path, PathBuf};

use super::trace_json::{check_cell_label, parse_object, record_to_sample, Key};
use super::{read_text, ImportFormat, ImportReport, Problem, Progress};
use crate::protocol::SampleCondition;
use crate::store::imports::{record_import, ImportFile};
use crate::store::samples::{for_each_payload, upsert_sample, NewSample};
use crate::store::{now_utc, sha256_hex, Error, Store};

/// Files parsed in parallel and written in one transaction.
const CHUNK: usize = 2048;

/// The trace directory layout (and single trace files).
pub struct TracesFormat;

impl ImportFormat for TracesFormat {
    fn name(&self) -> &'static str {
        "traces"
    }

    fn detect(&self, path: &Path, _head: &[u8]) -> bool {
        path.is_dir()
            || path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(trace_file_key)
                .is_some()
    }

    fn import(
        &self,
        store: &mut Store,
        path: &Path,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<ImportReport, Error> {
        let mut report = ImportReport::new(path, self.name());
        let jobs = match plan(path, &mut report) {
            Ok(j) => j,
            Err(reason) => {
                report.errors.push(Problem::file(path, reason));
                return Ok(report);
            }
        };
        let total = jobs.len() as u64;
        let mut digest = String::new();
        let mut done = 0u64;
        for chunk in jobs.chunks(CHUNK) {
            let parsed = parse_parallel(chunk);
            store.transaction(|tx| -> Result<(), Error> {
                for (job, res) in chunk.iter().zip(parsed) {
                    match res {
                        Ok(sample) => {
                            digest.push_str(&format!(
                                "{}/{}\0{}\n",
                                job.cell, job.name, sample.content_sha256
                            ));
                            report.read += 1;
                            let outcome = upsert_sample(tx, &sample)?;
                            report.check_sample(&sample, &outcome, &job.path, None, "");
                            report.count(outcome, &job.path, None);
                        }
                        Err(reason) => report.errors.push(Problem::file(&job.path, reason)),
                    }
                }
                Ok(())
            })?;
            done += chunk.len() as u64;
            progress(Progress { done, total });
        }
        if report.read > 0 {
            let row = ImportFile {
                path: path.display().to_string(),
                format: self.name().into(),
                sha256: sha256_hex(digest.as_bytes()),
                rows: report.read,
                skipped: report.skipped,
                errors: report.errors.len() as u64,
                imported_at: now_utc(),
            };
            store.transaction(|tx| record_import(tx, &row))?;
        }
        Ok(report)
    }
}

/// `CTRL1_7.json` -> (CTRL1, 7), and a custom condition's `X1_7.json` -> (X1, 7) (as
/// `vuf export traces` writes a study file's `[[design.custom]]` samples); anything else
/// (including `G1_07.json`) is `None`. The record's `condition` field must then agree.
pub fn trace_file_key(name: &str) -> Option<(SampleCondition, u32)> {
    // (A file that fails this is reported with `MISNAMED`.)
    let stem = name.strip_suffix(".json")?;
    let (cond, n) = stem.rsplit_once('_')?;
    if n.starts_with('0') || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let idx: u32 = n.parse().ok().filter(|i| *i > 0)?;
    let c = SampleCondition::parse(cond)?;
    (c.as_str() == cond).then_some((c, idx))
}

/// Why a file of a trace directory was not read.
const MISNAMED: &str = "file name is not <COND>_<n>.json, with <COND> one of CTRL1 CTRL2 CTRL3 G1 G2 G3 (or a custom condition's id: letters, digits and '-', not one of the six in other case) and <n> the sample number (1, 2, ...; no leading zero)";

struct Job {
    cell: String,
    name: String,
    path: PathBuf,
    key: (SampleCondition, u32),
}

/// List the trace files under `path` in import order; misnamed files go straight to the
/// report. `Err` = the path as a whole cannot be read as this layout.
fn plan(path: &Path, report: &mut ImportReport) -> Result<Vec<Job>, String> {
    if !path.is_dir() {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        let key = trace_file_key(&name).ok_or(MISNAMED)?;
        let cell = cell_name(path.parent().unwrap_or(Path::new("")))
            .ok_or("a single trace file must sit in its cell directory")?;
        return Ok(vec![Job {
            cell,
            name,
            path: path.to_path_buf(),
            key,
        }]);
    }
    let entries = list_dir(path)?;
    let has_subdirs = entries.iter().any(|(_, is_dir)| *is_dir);
    let mut jobs = Vec::new();
    if has_subdirs {
        for (p, is_dir) in entries {
            if is_dir {
                plan_cell(&p, report, &mut jobs);
            } else {
                report.skip("files beside the cell directories (not traces: a corpus root holds cell directories)");
            }
        }
    } else {
        plan_cell(path, report, &mut jobs);
    }
    if jobs.is_empty() && report.errors.is_empty() {
        return Err("no <COND>_<n>.json trace files found".into());
    }
    Ok(jobs)
}

/// List one cell directory's trace files into `jobs`. Whatever is wrong with the directory
/// (it cannot be listed, its name is not a usable cell label) costs that directory only:
/// it is reported per file, which the CLI shows as one line with the number of files.
fn plan_cell(dir: &Path, report: &mut ImportReport, jobs: &mut Vec<Job>) {
    let cell = cell_name(dir)
        .ok_or_else(|| "cell directory name is not UTF-8: cannot tell the cell".to_string())
        .and_then(|c| check_cell_label(&c).map(|()| c));
    let entries = match list_dir(dir) {
        Ok(e) => e,
        Err(reason) => {
            report.errors.push(Problem::file(dir, reason));
            return;
        }
    };
    let mut here = Vec::new();
    for (p, is_dir) in entries {
        if is_dir {
            report.errors.push(Problem::file(
                &p,
                "unexpected directory inside a cell directory",
            ));
            continue;
        }
        // A FIFO or device named like a trace would block the read for ever.
        if !p.is_file() {
            let why = if std::fs::metadata(&p).is_err() {
                "a symlink to nothing (its target is missing): not read"
            } else {
                "not a regular file (a pipe, socket or device): not read"
            };
            report.errors.push(Problem::file(&p, why));
            continue;
        }
        let name = p.file_name().and_then(|n| n.to_str()).map(str::to_string);
        // A README or notes file beside the traces is not a malformed trace: skipped and
        // counted. A `.json` file that is misnamed still is an error (it may be a trace).
        if name
            .as_deref()
            .is_some_and(|n| !n.to_ascii_lowercase().ends_with(".json"))
        {
            report.skip("files in a cell directory that are not .json (not traces)");
            continue;
        }
        match (name.as_deref().and_then(trace_file_key), &cell) {
            (None, _) => report.errors.push(Problem::file(&p, MISNAMED)),
            (Some(_), Err(reason)) => report.errors.push(Problem::file(&p, reason.clone())),
            (Some(key), Ok(cell)) => here.push(Job {
                cell: cell.clone(),
                name: name.unwrap_or_default(),
                path: p,
                key,
            }),
        }
    }
    here.sort_by(|a, b| a.key.cmp(&b.key));
    jobs.extend(here);
}

/// Non-hidden entries of a directory, sorted by name, with "is a directory".
fn list_dir(dir: &Path) -> Result<Vec<(PathBuf, bool)>, String> {
    // The caller's problem names the directory.
    let rd = std::fs::read_dir(dir).map_err(|e| format!("cannot list the directory: {e}"))?;
    let mut out = Vec::new();
    for entry in rd {
        let entry = entry.map_err(|e| format!("cannot list the directory: {e}"))?;
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let p = entry.path();
        out.push((p.clone(), p.is_dir()));
    }
    out.sort();
    Ok(out)
}

fn cell_name(dir: &Path) -> Option<String> {
    let dir = if dir.as_os_str().is_empty() || dir == Path::new(".") {
        std::fs::canonicalize(".").ok()?
    } else {
        dir.to_path_buf()
    };
    dir.file_name()?
        .to_str()
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// Read and parse a chunk on all cores; results come back in job order.
fn parse_parallel(jobs: &[Job]) -> Vec<Result<NewSample, String>> {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, 8);
    let per = jobs.len().div_ceil(threads).max(1);
    std::thread::scope(|s| {
        let handles: Vec<_> = jobs
            .chunks(per)
            .map(|part| s.spawn(move || part.iter().map(parse_job).collect::<Vec<_>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| {
                h.join()
                    .unwrap_or_else(|_| vec![Err("internal error: parser thread panicked".into())])
            })
            .collect()
    })
}

fn parse_job(job: &Job) -> Result<NewSample, String> {
    let (_, text) = read_text(&job.path)?;
    let obj = parse_object(&text)?;
    let key = Key {
        cell: &job.cell,
        condition: job.key.0.clone(),
        idx: job.key.1,
    };
    record_to_sample(key, &obj, text, format!("traces:{}", job.path.display()))
}

/// What [`export_traces`] wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExportReport {
    /// Trace files written.
    pub files: u64,
    /// Cell directories written.
    pub cells: u64,
}

/// Write every stored sample (valid and invalid) as `<dir>/<cell>/<COND>_<n>.json`, those
/// of custom conditions (`[[design.custom]]`) as `<ID>_<n>.json`.
///
/// A payload that is already a pretty-printed trace (as imported from the published
/// layout or written by the collector) is written byte for byte; other payloads (website
/// bundle entries, manifest rows) are pretty-printed with 2-space indent and `\uXXXX`
/// escapes like the published files, so importing the export gives the same samples.
pub fn export_traces(store: &Store, dir: &Path) -> Result<ExportReport, Error> {
    let io = |path: &Path, source: std::io::Error| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let mut report = ExportReport::default();
    let mut cells = std::collections::BTreeSet::new();
    for_each_payload(store.conn(), |p| {
        let cell_dir = dir.join(&p.cell);
        if cells.insert(p.cell.clone()) {
            std::fs::create_dir_all(&cell_dir).map_err(|e| io(&cell_dir, e))?;
        }
        let file = cell_dir.join(format!("{}_{}.json", p.condition.as_str(), p.idx));
        let text = if p.payload.starts_with("{\n") {
            p.payload
        } else {
            pretty_ascii(&p.payload, &file)?
        };
        std::fs::write(&file, text).map_err(|e| io(&file, e))?;
        report.files += 1;
        Ok(())
    })?;
    report.cells = cells.len() as u64;
    Ok(report)
}

/// Re-indent a JSON text the way the published traces are written (Python `json.dumps`
/// with `indent=2`: non-ASCII as `\uXXXX`, no trailing newline).
fn pretty_ascii(payload: &str, file: &Path) -> Result<String, Error> {
    let value: serde_json::Value = serde_json::from_str(payload)
        .map_err(|e| Error::Corrupt(format!("payload for {} is not JSON: {e}", file.display())))?;
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(&mut out, AsciiPretty::default());
    serde::Serialize::serialize(&value, &mut ser).map_err(|e| {
        Error::Corrupt(format!(
            "cannot serialise payload for {}: {e}",
            file.display()
        ))
    })?;
    String::from_utf8(out)
        .map_err(|e| Error::Corrupt(format!("serialised payload is not UTF-8: {e}")))
}

/// serde_json's pretty printer with non-ASCII characters escaped.
#[derive(Default)]
struct AsciiPretty {
    inner: serde_json::ser::PrettyFormatter<'static>,
}

impl serde_json::ser::Formatter for AsciiPretty {
    fn write_string_fragment<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        fragment: &str,
    ) -> std::io::Result<()> {
        for ch in fragment.chars() {
            if ch.is_ascii() {
                w.write_all(&[ch as u8])?;
            } else {
                let mut units = [0u16; 2];
                for u in ch.encode_utf16(&mut units) {
                    write!(w, "\\u{u:04x}")?;
                }
            }
        }
        Ok(())
    }
    fn begin_array<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.inner.begin_array(w)
    }
    fn end_array<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.inner.end_array(w)
    }
    fn begin_array_value<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        self.inner.begin_array_value(w, first)
    }
    fn end_array_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.inner.end_array_value(w)
    }
    fn begin_object<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.inner.begin_object(w)
    }
    fn end_object<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.inner.end_object(w)
    }
    fn begin_object_key<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        self.inner.begin_object_key(w, first)
    }
    fn begin_object_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.inner.begin_object_value(w)
    }
    fn end_object_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.inner.end_object_value(w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Condition;

    #[test]
    fn file_names() {
        assert_eq!(trace_file_key("G1_7.json"), Some((Condition::G1.into(), 7)));
        assert_eq!(
            trace_file_key("CTRL3_10.json"),
            Some((Condition::Ctrl3.into(), 10))
        );
        // A custom condition's id (the record's `condition` must then say the same).
        let custom = |id: &str| SampleCondition::Custom(id.into());
        assert_eq!(trace_file_key("X1_3.json"), Some((custom("X1"), 3)));
        assert_eq!(
            trace_file_key("refuse-2_12.json"),
            Some((custom("refuse-2"), 12))
        );
        assert_eq!(trace_file_key("G1_07.json"), None);
        assert_eq!(trace_file_key("G1_0.json"), None);
        assert_eq!(trace_file_key("G1_7.json.json"), None);
        assert_eq!(trace_file_key("G1_7.txt"), None);
        assert_eq!(trace_file_key("G1_+7.json"), None);
        assert_eq!(trace_file_key("_7.json"), None);
        assert_eq!(trace_file_key("X 1_7.json"), None);
        assert_eq!(trace_file_key("X.1_7.json"), None);
        assert_eq!(trace_file_key("G1_99999999999.json"), None);
    }

    #[test]
    fn ascii_pretty_matches_python_style() {
        let out = pretty_ascii(
            "{\"a\":\"I don\u{2019}t \u{1F600}\",\"b\":[1,{}]}",
            Path::new("x"),
        )
        .unwrap();
        assert_eq!(
            out,
            "{\n  \"a\": \"I don\\u2019t \\ud83d\\ude00\",\n  \"b\": [\n    1,\n    {}\n  ]\n}"
        );
    }
}
