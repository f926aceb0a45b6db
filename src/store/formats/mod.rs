//! Import formats: one file per on-disk format, each behind the small [`ImportFormat`]
//! trait (recognise a path from its name and first bytes, then import it).
//!
//! The driver [`import_path`] picks the first format that recognises a path, so adding a
//! format is one file plus one line in [`FORMATS`]. Formats never print: they return an
//! [`ImportReport`] (counts plus every malformed entry with its path and reason) and send
//! [`Progress`] to a callback, and the CLI decides what to show.
//!
//! Shared rules for every format: a malformed file or entry is reported and skipped; the
//! rest proceeds; writes happen in transactions that hold whole files, so a failure never
//! leaves half a file stored; re-importing the same input changes nothing (the top-up
//! rule of [`super::samples::upsert_sample`]).

pub mod manifest;
pub mod models_json;
pub(crate) mod trace_json;
pub mod traces;
pub mod website;

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::samples::{NewSample, UpsertOutcome};
use super::{Error, Store};

/// One import format.
pub trait ImportFormat: Sync {
    /// Short name stored in `import_files.format` (`traces`, `website`, `manifest`, `models`).
    fn name(&self) -> &'static str;
    /// Whether this format reads `path`; `head` is up to the first 8 KiB of a file (empty for a directory).
    fn detect(&self, path: &Path, head: &[u8]) -> bool;
    /// Import `path` into the store.
    fn import(
        &self,
        store: &mut Store,
        path: &Path,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<ImportReport, Error>;
}

/// Every format `vuf import` knows, in detection order.
pub const FORMATS: &[&dyn ImportFormat] = &[
    &traces::TracesFormat,
    &website::WebsiteFormat,
    &manifest::ManifestFormat,
    &models_json::ModelsJsonFormat,
];

/// Progress of one import (entries done out of total).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Entries processed so far.
    pub done: u64,
    /// Entries in this path.
    pub total: u64,
}

/// A malformed entry or a refused write: where, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Problem {
    /// File concerned.
    pub path: PathBuf,
    /// 1-based line (JSONL) or entry number (JSON arrays), when the problem is inside a file.
    pub line: Option<u64>,
    /// What is wrong.
    pub reason: String,
}

impl Problem {
    /// A problem with a whole file.
    pub fn file(path: &Path, reason: impl Into<String>) -> Problem {
        Problem {
            path: path.to_path_buf(),
            line: None,
            reason: reason.into(),
        }
    }

    /// A problem with one line / entry of a file.
    pub fn at(path: &Path, line: u64, reason: impl Into<String>) -> Problem {
        Problem {
            path: path.to_path_buf(),
            line: Some(line),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(l) => write!(f, "{}:{l}: {}", self.path.display(), self.reason),
            None => write!(f, "{}: {}", self.path.display(), self.reason),
        }
    }
}

/// Problems as `vuf import` shows them: one line per distinct problem. The same reason
/// for several files of one directory (a cell directory whose name is unusable, a
/// directory of misnamed files) is one group, which says how many files it affected and
/// names the first few; different reasons stay apart, and so do problems located by line
/// or entry (each names its own). Groups keep the order in which their first problem came.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProblemGroup<'a> {
    /// The first problem of the group.
    pub first: &'a Problem,
    /// The names of the files concerned, in order (just the one for a single problem).
    pub files: Vec<String>,
}

/// How many file names a collapsed group shows before `...`.
const GROUP_NAMES: usize = 3;

/// Group `problems` as [`ProblemGroup`] describes.
pub fn group_problems<'a>(
    problems: impl IntoIterator<Item = &'a Problem>,
) -> Vec<ProblemGroup<'a>> {
    let mut groups: Vec<ProblemGroup<'a>> = Vec::new();
    // (directory, reason) -> index in `groups`
    let mut index: std::collections::HashMap<(&Path, &str), usize> = Default::default();
    for p in problems {
        let (Some(dir), Some(name), None) = (p.path.parent(), p.path.file_name(), p.line) else {
            groups.push(ProblemGroup {
                first: p,
                files: vec![p.path.display().to_string()],
            });
            continue;
        };
        let name = name.to_string_lossy().into_owned();
        match index.get(&(dir, p.reason.as_str())) {
            Some(&i) => groups[i].files.push(name),
            None => {
                index.insert((dir, p.reason.as_str()), groups.len());
                groups.push(ProblemGroup {
                    first: p,
                    files: vec![name],
                });
            }
        }
    }
    groups
}

impl fmt::Display for ProblemGroup<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.files.len();
        if n == 1 {
            return fmt::Display::fmt(self.first, f);
        }
        let mut names = self.files[..n.min(GROUP_NAMES)].join(", ");
        if n > GROUP_NAMES {
            names.push_str(", ...");
        }
        let dir = self.first.path.parent().unwrap_or(Path::new(""));
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        write!(
            f,
            "{}: {} ({n} files: {names})",
            dir.display(),
            self.first.reason
        )
    }
}

/// Something questionable about an entry that was imported anyway: the data is real and
/// is kept as it is, but the user should know. Which kinds also count as a problem (exit
/// code 1) is [`WarningKind::is_problem`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Warning {
    /// What kind of oddity.
    pub kind: WarningKind,
    /// Where (file, line or entry) and what.
    #[serde(flatten)]
    pub at: Problem,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.at, f)
    }
}

/// The kinds of [`Warning`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WarningKind {
    /// The `prompt` differs from the exact prompt of the record's condition (PROTOCOL
    /// 2.1): the sample may not answer the question its condition stands for, and the
    /// analysis would pool it with that condition.
    PromptMismatch,
    /// No response text (PROTOCOL 2.9), e.g. `"result": null`, and no `error` saying why:
    /// stored as an invalid sample, as the validity rule says, which the analysis leaves
    /// out like the collector's error traces.
    NoResponseText,
    /// `duration_ms` is negative: provenance only (the analysis never reads it).
    NegativeDuration,
}

impl WarningKind {
    /// Whether this warning makes the import finish "with problems" (exit code 1), so
    /// scripts notice. A prompt mismatch does: it bears on what the sample measures, and
    /// the analysis would pool it with its condition. The others are shown only: a sample
    /// with no response text is stored invalid by the validity rule, so the analysis leaves
    /// it out as it does an error trace and no rate counts it; a negative duration is a
    /// broken clock in the collector, which the analysis never reads.
    pub fn is_problem(self) -> bool {
        match self {
            WarningKind::PromptMismatch => true,
            WarningKind::NoResponseText | WarningKind::NegativeDuration => false,
        }
    }
}

/// What importing one path did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ImportReport {
    /// Path as given.
    pub path: PathBuf,
    /// Format that read it (empty if none recognised it).
    pub format: String,
    /// Entries (files, rows, models) read successfully.
    pub read: u64,
    /// New samples / models written.
    pub inserted: u64,
    /// Entries already stored with the same content.
    pub unchanged: u64,
    /// Invalid samples replaced.
    pub replaced: u64,
    /// Stored samples that received a manifest's layered id.
    pub ids_attached: u64,
    /// Entries skipped on purpose (e.g. freeflow samples of a website bundle).
    pub skipped: u64,
    /// Why they were skipped: reason -> count (the counts add up to `skipped`).
    pub skipped_why: std::collections::BTreeMap<String, u64>,
    /// Writes refused by the top-up rule (stored valid sample differs, id taken).
    pub conflicts: Vec<Problem>,
    /// Malformed files or entries (reported, counted, skipped).
    pub errors: Vec<Problem>,
    /// Entries imported despite something questionable (reported, counted, kept).
    pub warnings: Vec<Warning>,
}

impl ImportReport {
    fn new(path: &Path, format: &str) -> ImportReport {
        ImportReport {
            path: path.to_path_buf(),
            format: format.into(),
            ..Default::default()
        }
    }

    /// Count one entry skipped on purpose, and why.
    pub(crate) fn skip(&mut self, why: impl Into<String>) {
        self.skipped += 1;
        *self.skipped_why.entry(why.into()).or_default() += 1;
    }

    /// Record the warnings a parsed sample deserves (see [`trace_json::sample_warnings`]);
    /// `path` and `line` locate it, `prefix` goes before each reason. Only a sample this
    /// import stored (`outcome`) is warned about: one kept as stored before (unchanged, or
    /// a conflict reported as such) was not "imported anyway".
    pub(crate) fn check_sample(
        &mut self,
        sample: &NewSample,
        outcome: &UpsertOutcome,
        path: &Path,
        line: Option<u64>,
        prefix: &str,
    ) {
        if !matches!(
            outcome,
            UpsertOutcome::Inserted | UpsertOutcome::ReplacedInvalid
        ) {
            return;
        }
        for (kind, reason) in trace_json::sample_warnings(sample) {
            self.warnings.push(Warning {
                kind,
                at: Problem {
                    path: path.to_path_buf(),
                    line,
                    reason: format!("{prefix}{reason}"),
                },
            });
        }
    }

    /// Warnings that count as problems (exit code 1), see [`WarningKind::is_problem`].
    pub fn problem_warnings(&self) -> usize {
        self.warnings.iter().filter(|w| w.kind.is_problem()).count()
    }

    /// Count one upsert outcome; `path` and `line` locate a conflict.
    pub(crate) fn count(&mut self, outcome: UpsertOutcome, path: &Path, line: Option<u64>) {
        match outcome {
            UpsertOutcome::Inserted => self.inserted += 1,
            UpsertOutcome::Unchanged => self.unchanged += 1,
            UpsertOutcome::ReplacedInvalid => self.replaced += 1,
            UpsertOutcome::IdAttached => self.ids_attached += 1,
            UpsertOutcome::Conflict(reason) => self.conflicts.push(Problem {
                path: path.to_path_buf(),
                line,
                reason,
            }),
        }
    }
}

/// Import one path with the first format that recognises it. An unreadable or
/// unrecognised path is reported in the returned report, not as an `Err`; `Err` is kept
/// for store failures, which stop the import.
pub fn import_path(
    store: &mut Store,
    path: &Path,
    progress: &mut dyn FnMut(Progress),
) -> Result<ImportReport, Error> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) => {
            let mut r = ImportReport::new(path, "");
            r.errors
                .push(Problem::file(path, format!("cannot read: {e}")));
            return Ok(r);
        }
    };
    if !meta.is_dir() && !meta.is_file() {
        // A FIFO or device would block the read for ever.
        let mut r = ImportReport::new(path, "");
        r.errors.push(Problem::file(
            path,
            "not a regular file or directory (a pipe, socket or device): not read",
        ));
        return Ok(r);
    }
    let head = if meta.is_dir() {
        Vec::new()
    } else {
        match read_head(path) {
            Ok(h) => h,
            Err(e) => {
                let mut r = ImportReport::new(path, "");
                r.errors
                    .push(Problem::file(path, format!("cannot read: {e}")));
                return Ok(r);
            }
        }
    };
    for format in FORMATS {
        if format.detect(path, &head) {
            return format.import(store, path, progress);
        }
    }
    let mut r = ImportReport::new(path, "");
    let reason = if !meta.is_dir() && head.iter().all(|b| b.is_ascii_whitespace()) {
        "empty file".to_string()
    } else {
        "unrecognised format (expected a trace directory or <COND>_<n>.json trace, a website sample \
         bundle, a coding-manifest JSONL or models.json)"
            .to_string()
    };
    r.errors.push(Problem::file(path, reason));
    Ok(r)
}

fn read_head(path: &Path) -> std::io::Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(8192);
    std::fs::File::open(path)?
        .take(8192)
        .read_to_end(&mut buf)?;
    Ok(buf)
}

/// First non-whitespace byte of `head` (after a UTF-8 BOM).
pub(crate) fn first_byte(head: &[u8]) -> Option<u8> {
    let head = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    head.iter().copied().find(|b| !b.is_ascii_whitespace())
}

/// Whether `path` has extension `ext` (case-insensitive).
pub(crate) fn has_ext(path: &Path, ext: &str) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case(ext))
}

/// Read a whole file as UTF-8, with reasons a user can act on.
pub(crate) fn read_text(path: &Path) -> Result<(Vec<u8>, String), String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read: {e}"))?;
    let text = String::from_utf8(bytes.clone()).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let line = bytes[..at].iter().filter(|b| **b == b'\n').count() + 1;
        format!("not valid UTF-8 (first bad byte on line {line}, byte offset {at}): the file was skipped; save it as UTF-8")
    })?;
    // A UTF-8 byte-order mark (some editors add one) is not part of the JSON.
    let text = match text.strip_prefix('\u{feff}') {
        Some(rest) => rest.to_string(),
        None => text,
    };
    Ok((bytes, text))
}

/// Short JSON type name for error messages.
pub(crate) fn json_type(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "boolean",
        serde_json::Value::Number(_) => "number",
        serde_json::Value::String(_) => "string",
        serde_json::Value::Array(_) => "array",
        serde_json::Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_problems_of_one_directory_are_one_line_with_the_file_count() {
        let bad = "not a usable cell label";
        let problems = [
            Problem::file(Path::new("c/x/G1_1.json"), bad),
            Problem::file(Path::new("c/x/G1_2.json"), "bad JSON"),
            Problem::file(Path::new("c/x/G1_3.json"), bad),
            Problem::file(Path::new("c/y/G1_1.json"), bad),
            Problem::file(Path::new("c/x/G1_4.json"), bad),
            Problem::file(Path::new("c/x/G2_1.json"), bad),
            Problem::at(Path::new("m.jsonl"), 2, "bad JSON"),
            Problem::at(Path::new("m.jsonl"), 5, "bad JSON"),
            Problem::file(Path::new("G1_1.json"), "empty file"),
            Problem::file(Path::new("G1_2.json"), "empty file"),
        ];
        let shown: Vec<String> = group_problems(&problems)
            .iter()
            .map(|g| g.to_string())
            .collect();
        assert_eq!(
            shown,
            [
                "c/x: not a usable cell label (4 files: G1_1.json, G1_3.json, G1_4.json, ...)",
                "c/x/G1_2.json: bad JSON",
                "c/y/G1_1.json: not a usable cell label",
                "m.jsonl:2: bad JSON",
                "m.jsonl:5: bad JSON",
                ".: empty file (2 files: G1_1.json, G1_2.json)",
            ]
        );
    }

    #[test]
    fn read_text_drops_a_bom_and_names_the_line_of_a_bad_byte() {
        let dir = tempfile::tempdir().unwrap();
        let bom = dir.path().join("bom.json");
        std::fs::write(&bom, b"\xEF\xBB\xBF{\"a\": 1}").unwrap();
        let (bytes, text) = read_text(&bom).unwrap();
        assert_eq!(text, "{\"a\": 1}");
        assert_eq!(bytes.len(), 11, "the hash still covers the file as it is");
        let bad = dir.path().join("bad.json");
        std::fs::write(&bad, b"{\n\"a\":\n\"\xff\"}").unwrap();
        let e = read_text(&bad).unwrap_err();
        assert!(e.contains("line 3, byte offset 8"), "{e}");
    }
}
