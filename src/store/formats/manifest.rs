//! Coding-manifest JSONL (`manifest_*.jsonl`, PROTOCOL 3): one valid sample per line with
//! its `layered_id`. A row naming a stored sample with the same response text attaches
//! its layered id to it; a row for a sample not stored yet (e.g. the post-paper Qwen
//! phase, which has no trace files here) inserts it. The phase-6 `sample_id` quirk
//! (`CTRL1_1.json`) is accepted. A malformed line is reported with its line number and
//! skipped; the other lines of the file land together in one transaction.

use std::path::Path;

use serde_json::Value;

use super::trace_json::{condition_field, parse_object, record_to_sample, Key};
use super::website::contains;
use super::{first_byte, has_ext, json_type, ImportFormat, ImportReport, Problem, Progress};
use crate::protocol::conditions::check_sample_id;
use crate::store::imports::{record_import, ImportFile};
use crate::store::samples::{upsert_sample, NewSample};
use crate::store::{now_utc, sha256_hex, Error, Store};

/// Coding-manifest JSONL.
pub struct ManifestFormat;

impl ImportFormat for ManifestFormat {
    fn name(&self) -> &'static str {
        "manifest"
    }

    fn detect(&self, path: &Path, head: &[u8]) -> bool {
        has_ext(path, "jsonl")
            && first_byte(head) == Some(b'{')
            && contains(head, b"\"layered_id\"")
    }

    fn import(
        &self,
        store: &mut Store,
        path: &Path,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<ImportReport, Error> {
        let mut report = ImportReport::new(path, self.name());
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) => {
                report
                    .errors
                    .push(Problem::file(path, format!("cannot read: {e}")));
                return Ok(report);
            }
        };
        let origin = format!("manifest:{}", path.display());
        let mut rows = Vec::new();
        // Line by line, so one line that is not UTF-8 costs that line, like bad JSON does.
        for (i, raw) in bytes.split(|b| *b == b'\n').enumerate() {
            let n = i as u64 + 1;
            let Ok(line) = std::str::from_utf8(raw) else {
                report
                    .errors
                    .push(Problem::at(path, n, "not valid UTF-8: line skipped"));
                continue;
            };
            let line = if i == 0 {
                line.trim_start_matches('\u{feff}')
            } else {
                line
            };
            if line.trim().is_empty() {
                continue;
            }
            match row_to_sample(line, &origin) {
                Ok(s) => rows.push((n, s)),
                Err(reason) => report.errors.push(Problem::at(path, n, reason)),
            }
        }
        report.read = rows.len() as u64;
        let total = report.read;
        let row = ImportFile {
            path: path.display().to_string(),
            format: self.name().into(),
            sha256: sha256_hex(&bytes),
            rows: report.read,
            skipped: 0,
            errors: report.errors.len() as u64,
            imported_at: now_utc(),
        };
        store.transaction(|tx| -> Result<(), Error> {
            for (n, s) in &rows {
                let outcome = upsert_sample(tx, s)?;
                report.check_sample(s, &outcome, path, Some(*n), "");
                report.count(outcome, path, Some(*n));
            }
            if report.read > 0 {
                record_import(tx, &row)?;
            }
            Ok(())
        })?;
        progress(Progress { done: total, total });
        Ok(report)
    }
}

fn row_to_sample(line: &str, origin: &str) -> Result<NewSample, String> {
    let obj = parse_object(line)?;
    let get = |field: &str| match obj.get(field) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.as_str()),
        Some(Value::String(_)) => Err(format!("field `{field}` is empty")),
        Some(v) => Err(format!(
            "field `{field}`: expected string, found {}",
            json_type(v)
        )),
        None => Err(format!("missing field `{field}`")),
    };
    get("layered_id")?;
    let cell = get("cell")?;
    let sample_id = get("sample_id")?;
    // The `condition` field first: a row of an unknown condition says so, not that its
    // `sample_id` (which repeats the condition) is malformed.
    condition_field(&obj)?;
    let (condition, idx) =
        check_sample_id(sample_id).map_err(|e| format!("field `sample_id`: {e}"))?;
    if !obj.contains_key("response") {
        return Err("missing field `response`".into());
    }
    let mut s = record_to_sample(
        Key {
            cell,
            condition: condition.into(),
            idx,
        },
        &obj,
        line.to_string(),
        origin.to_string(),
    )?;
    // A manifest's `model` is the source model, not the id an API returned.
    s.model_returned = None;
    Ok(s)
}
