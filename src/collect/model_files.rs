//! One local cell, one model file. A local cell's keys name the model by its file stem, so
//! two different GGUF files of the same name (another folder, another quantisation saved
//! under the old name) would resume each other's cell: the new file's answers would mix
//! with the old one's, or, with the cell complete, nothing would be collected and the old
//! model's answers analysed as the new one's. Every local trace records the file's
//! fingerprint, so the stored samples say which file they came from; this check refuses a
//! file whose fingerprint is not theirs before anything is collected.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::study::Study;
use super::CollectError;
use crate::providers::local::{file_fingerprint, recorded_settings, LocalError};
use crate::store::{samples, Store};

/// Refuse when a local cell's stored samples were drawn from another model file than the
/// one it is now given. Cells without a resolved model path, or without stored samples
/// that record a fingerprint (traces of older vuf versions), pass.
pub fn check_local_model_files(study: &Study, store: &Store) -> Result<(), CollectError> {
    let cells: BTreeMap<&str, &PathBuf> = study
        .cells
        .iter()
        .filter_map(|c| {
            let path = c.local.as_ref()?.model_path.as_ref()?;
            Some((c.name.as_str(), path))
        })
        .collect();
    if cells.is_empty() {
        return Ok(());
    }
    // Per cell, the (fingerprint, file) pairs its stored samples record.
    let mut stored: BTreeMap<String, BTreeSet<(String, String)>> = BTreeMap::new();
    samples::for_each_payload(store.conn(), |p| {
        if !cells.contains_key(p.cell.as_str()) {
            return Ok(());
        }
        let recorded = serde_json::from_str(&p.payload)
            .ok()
            .as_ref()
            .and_then(recorded_settings);
        if let Some(fp) = recorded.as_ref().and_then(|r| r.fingerprint.clone()) {
            let file = recorded.and_then(|r| r.file).unwrap_or_default();
            stored.entry(p.cell).or_default().insert((fp, file));
        }
        Ok(())
    })?;
    let mut fingerprints: BTreeMap<&Path, String> = BTreeMap::new();
    for (cell, path) in cells {
        let Some(seen) = stored.get(cell) else {
            continue;
        };
        if !fingerprints.contains_key(path.as_path()) {
            let fp = match file_fingerprint(path) {
                Ok(fp) => fp,
                // A build without the engine cannot read the file; it refuses to collect
                // from it anyway (`providers_for`).
                Err(LocalError::NotBuilt) => return Ok(()),
                Err(e) => return Err(CollectError::Setup(format!("cell {cell}: {e}"))),
            };
            fingerprints.insert(path.as_path(), fp);
        }
        let now = &fingerprints[path.as_path()];
        if seen.iter().any(|(fp, _)| fp != now) {
            let was: Vec<String> = seen
                .iter()
                .filter(|(fp, _)| fp != now)
                .map(|(fp, file)| format!("{file} ({fp})"))
                .collect();
            return Err(CollectError::Setup(format!(
                "cell {cell}: its stored samples come from another model file, {}, than {} ({now}); \
                 a cell holds one model's answers: use a new --study-dir for this file, or give it a cell of its own in the study file",
                was.join(" and "),
                path.display()
            )));
        }
    }
    Ok(())
}
