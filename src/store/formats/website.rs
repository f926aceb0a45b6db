//! The website sample bundle (`{"model": ..., "samples": [...]}`, e.g.
//! `extra-manifests/gemini-3-5-flash.json`): values entries are trace records with a
//! `cell` and `sample_id`; entries of other probes (`type: "freeflow"`) are skipped and
//! counted, with their type as the reason. Each entry's exact text is kept as its payload.

use std::path::Path;

use serde_json::value::RawValue;
use serde_json::Value;

use super::trace_json::{condition_field, record_to_sample, Key};
use super::{
    first_byte, has_ext, json_type, read_text, ImportFormat, ImportReport, Problem, Progress,
};
use crate::protocol::conditions::check_sample_id;
use crate::store::imports::{record_import, ImportFile};
use crate::store::samples::upsert_sample;
use crate::store::{now_utc, sha256_hex, Error, Store};

/// The website sample bundle.
pub struct WebsiteFormat;

#[derive(serde::Deserialize)]
struct Bundle<'a> {
    #[serde(borrow)]
    samples: Vec<&'a RawValue>,
}

impl ImportFormat for WebsiteFormat {
    fn name(&self) -> &'static str {
        "website"
    }

    fn detect(&self, path: &Path, head: &[u8]) -> bool {
        has_ext(path, "json") && first_byte(head) == Some(b'{') && contains(head, b"\"samples\"")
    }

    fn import(
        &self,
        store: &mut Store,
        path: &Path,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<ImportReport, Error> {
        let mut report = ImportReport::new(path, self.name());
        let (bytes, text) = match read_text(path) {
            Ok(t) => t,
            Err(reason) => {
                report.errors.push(Problem::file(path, reason));
                return Ok(report);
            }
        };
        let bundle: Bundle<'_> = match serde_json::from_str(&text) {
            Ok(b) => b,
            Err(e) => {
                report.errors.push(Problem::file(
                    path,
                    format!("not a website sample bundle: {e}"),
                ));
                return Ok(report);
            }
        };
        let total = bundle.samples.len() as u64;
        let origin = format!("website:{}", path.display());
        let mut samples = Vec::new();
        for (i, raw) in bundle.samples.iter().enumerate() {
            let entry = i as u64 + 1;
            match entry_to_sample(raw, &origin) {
                Ok(Entry::Values(s)) => samples.push((entry, *s)),
                Ok(Entry::OtherProbe(kind)) => report.skip(format!(
                    "entries of type {kind:?}: another probe, not one of the six values conditions"
                )),
                Err(reason) => report.errors.push(Problem::at(
                    path,
                    entry,
                    format!("sample entry {entry}: {reason}"),
                )),
            }
        }
        report.read = samples.len() as u64;
        let row = ImportFile {
            path: path.display().to_string(),
            format: self.name().into(),
            sha256: sha256_hex(&bytes),
            rows: report.read,
            skipped: report.skipped,
            errors: report.errors.len() as u64,
            imported_at: now_utc(),
        };
        store.transaction(|tx| -> Result<(), Error> {
            for (entry, s) in &samples {
                let outcome = upsert_sample(tx, s)?;
                report.check_sample(
                    s,
                    &outcome,
                    path,
                    Some(*entry),
                    &format!("sample entry {entry}: "),
                );
                report.count(outcome, path, Some(*entry));
            }
            record_import(tx, &row)?;
            Ok(())
        })?;
        progress(Progress { done: total, total });
        Ok(report)
    }
}

/// One bundle entry: a sample of the values probe, or an entry of another probe.
enum Entry {
    Values(Box<crate::store::samples::NewSample>),
    /// The entry's `type` (e.g. `freeflow`), shortened for messages.
    OtherProbe(String),
}

fn entry_to_sample(raw: &RawValue, origin: &str) -> Result<Entry, String> {
    let value: Value = serde_json::from_str(raw.get()).map_err(|e| format!("bad JSON: {e}"))?;
    let Value::Object(obj) = value else {
        return Err(format!("expected an object, found {}", json_type(&value)));
    };
    match obj.get("type") {
        Some(Value::String(t)) if t == "values" => {}
        Some(Value::String(t)) => return Ok(Entry::OtherProbe(t.chars().take(40).collect())),
        Some(v) => {
            return Err(format!(
                "field `type`: expected string, found {}",
                json_type(v)
            ))
        }
        None => return Err("missing field `type`".into()),
    }
    let cell = match obj.get("cell") {
        Some(Value::String(c)) => c.clone(),
        Some(v) => {
            return Err(format!(
                "field `cell`: expected string, found {}",
                json_type(v)
            ))
        }
        None => return Err("missing field `cell`".into()),
    };
    // The `condition` field first: an entry of an unknown condition says so, not that its
    // `sample_id` (which repeats the condition) is malformed.
    condition_field(&obj)?;
    let (condition, idx) = match obj.get("sample_id") {
        Some(Value::String(id)) => {
            check_sample_id(id).map_err(|e| format!("field `sample_id`: {e}"))?
        }
        Some(v) => {
            return Err(format!(
                "field `sample_id`: expected string, found {}",
                json_type(v)
            ))
        }
        None => return Err("missing field `sample_id`".into()),
    };
    record_to_sample(
        Key {
            cell: &cell,
            condition: condition.into(),
            idx,
        },
        &obj,
        raw.get().to_string(),
        origin.to_string(),
    )
    .map(|s| Entry::Values(Box::new(s)))
}

pub(crate) fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}
