//! Model metadata file (`models.json`: a JSON array of `{model, display_name, lab,
//! family, release_date, ...}`), overriding the embedded paper table model by model.
//! Other keys (website markdown, benchmarks) are ignored.

use std::path::Path;

use serde_json::{Map, Value};

use super::{
    first_byte, has_ext, json_type, read_text, ImportFormat, ImportReport, Problem, Progress,
};
use crate::store::imports::{record_import, ImportFile};
use crate::store::models::{upsert_model, ModelRow, Upsert};
use crate::store::{now_utc, sha256_hex, Error, Store};

/// `models.json`.
pub struct ModelsJsonFormat;

impl ImportFormat for ModelsJsonFormat {
    fn name(&self) -> &'static str {
        "models"
    }

    fn detect(&self, path: &Path, head: &[u8]) -> bool {
        has_ext(path, "json") && first_byte(head) == Some(b'[')
    }

    fn import(
        &self,
        store: &mut Store,
        path: &Path,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<ImportReport, Error> {
        let mut report = ImportReport::new(path, self.name());
        let parsed =
            read_text(path).and_then(|(bytes, text)| match serde_json::from_str::<Value>(&text) {
                Ok(Value::Array(a)) => Ok((bytes, a)),
                Ok(v) => Err(format!(
                    "expected a JSON array of models, found {}",
                    json_type(&v)
                )),
                Err(e) => Err(format!("bad JSON: {e}")),
            });
        let (bytes, entries) = match parsed {
            Ok(p) => p,
            Err(reason) => {
                report.errors.push(Problem::file(path, reason));
                return Ok(report);
            }
        };
        let origin = format!("models.json:{}", path.display());
        let mut rows = Vec::new();
        for (i, v) in entries.iter().enumerate() {
            let n = i as u64 + 1;
            match v {
                Value::Object(obj) => match model_row(obj, &origin) {
                    Ok(r) => rows.push(r),
                    Err(reason) => report.errors.push(Problem::at(
                        path,
                        n,
                        format!("model entry {n}: {reason}"),
                    )),
                },
                other => report.errors.push(Problem::at(
                    path,
                    n,
                    format!(
                        "model entry {n}: expected object, found {}",
                        json_type(other)
                    ),
                )),
            }
        }
        report.read = rows.len() as u64;
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
            for r in &rows {
                match upsert_model(tx, r)? {
                    Upsert::Inserted => report.inserted += 1,
                    Upsert::Replaced => report.replaced += 1,
                    Upsert::Unchanged => report.unchanged += 1,
                }
            }
            if report.read > 0 {
                record_import(tx, &row)?;
            }
            Ok(())
        })?;
        progress(Progress {
            done: entries.len() as u64,
            total: entries.len() as u64,
        });
        Ok(report)
    }
}

fn model_row(obj: &Map<String, Value>, origin: &str) -> Result<ModelRow, String> {
    let field = |name: &str| match obj.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(v) => Err(format!(
            "field `{name}`: expected string, found {}",
            json_type(v)
        )),
    };
    let model = field("model")?.ok_or("missing field `model`")?;
    Ok(ModelRow {
        model,
        display_name: field("display_name")?,
        lab: field("lab")?,
        family: field("family")?,
        release_date: field("release_date")?,
        origin: origin.to_string(),
    })
}
