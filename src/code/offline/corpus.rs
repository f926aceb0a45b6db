//! Corpus-level check: code every valid response of the public corpus (README §5: the
//! 13,786 traces of `corpus-v2-values/` with a non-empty `result`, plus the 120 values
//! samples of `extra-manifests/gemini-3-5-flash.json` = 13,906) with the offline coder and
//! put its posture distribution per condition family next to the published counts and the
//! model-mean owned rates (PROTOCOL 7.4, 8.2).
//!
//! This is a minimal reader for a sanity check of the coder, not the store's importer
//! (which owns validity rules, provenance and all the other fields). The model-mean rate
//! follows PROTOCOL 7.4: per cell owned share, cells with >= 10 rows in the family,
//! unweighted mean over a model's cells, then over models.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use serde_json::Value;

use super::data::LoadError;
use super::OfflineCoder;
use crate::protocol::{canonical_model, cell_to_source_model, Condition, Family, ValueHolding};

/// One valid corpus response.
#[derive(Debug, Clone)]
pub struct CorpusResponse {
    /// Cell label.
    pub cell: String,
    /// Condition.
    pub condition: Condition,
    /// Prompt text.
    pub prompt: String,
    /// Response text.
    pub response: String,
}

fn io(path: &Path, source: std::io::Error) -> LoadError {
    LoadError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn rec(path: &Path, msg: String) -> LoadError {
    LoadError::Record {
        path: path.to_path_buf(),
        line: 1,
        msg,
    }
}

fn parse_cond(path: &Path, v: &Value) -> Result<Condition, LoadError> {
    let c = v
        .get("condition")
        .and_then(Value::as_str)
        .ok_or_else(|| rec(path, "missing `condition`".into()))?;
    Condition::parse(c).ok_or_else(|| rec(path, format!("unknown condition `{c}`")))
}

/// Load the 13,906 valid responses (sorted by cell, then file name).
pub fn load_corpus(data_dir: &Path) -> Result<Vec<CorpusResponse>, LoadError> {
    let root = data_dir.join("corpus-v2-values");
    let mut cells: Vec<_> = std::fs::read_dir(&root)
        .map_err(|e| io(&root, e))?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    cells.sort();
    let mut out = Vec::new();
    for cell_dir in cells {
        let cell = cell_dir
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        let mut files: Vec<_> = std::fs::read_dir(&cell_dir)
            .map_err(|e| io(&cell_dir, e))?
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        for f in files {
            let text = std::fs::read_to_string(&f).map_err(|e| io(&f, e))?;
            let v: Value =
                serde_json::from_str(&text).map_err(|e| rec(&f, format!("invalid JSON: {e}")))?;
            let Some(result) = v
                .get("result")
                .and_then(Value::as_str)
                .filter(|r| !r.is_empty())
            else {
                continue;
            };
            out.push(CorpusResponse {
                cell: cell.clone(),
                condition: parse_cond(&f, &v)?,
                prompt: v
                    .get("prompt")
                    .and_then(Value::as_str)
                    .ok_or_else(|| rec(&f, "missing `prompt`".into()))?
                    .to_string(),
                response: result.to_string(),
            });
        }
    }
    let g = data_dir.join("extra-manifests/gemini-3-5-flash.json");
    let text = std::fs::read_to_string(&g).map_err(|e| io(&g, e))?;
    let v: Value =
        serde_json::from_str(&text).map_err(|e| rec(&g, format!("invalid JSON: {e}")))?;
    let samples = v
        .get("samples")
        .and_then(Value::as_array)
        .ok_or_else(|| rec(&g, "missing `samples`".into()))?;
    for s in samples
        .iter()
        .filter(|s| s.get("type").and_then(Value::as_str) == Some("values"))
    {
        let Some(result) = s
            .get("result")
            .and_then(Value::as_str)
            .filter(|r| !r.is_empty())
        else {
            continue;
        };
        out.push(CorpusResponse {
            cell: s
                .get("cell")
                .and_then(Value::as_str)
                .ok_or_else(|| rec(&g, "sample without `cell`".into()))?
                .to_string(),
            condition: parse_cond(&g, s)?,
            prompt: s
                .get("prompt")
                .and_then(Value::as_str)
                .ok_or_else(|| rec(&g, "sample without `prompt`".into()))?
                .to_string(),
            response: result.to_string(),
        });
    }
    Ok(out)
}

/// Offline distribution for one family.
#[derive(Debug, Clone, Default)]
pub struct FamilyCheck {
    /// Responses.
    pub n: usize,
    /// Counts per holding, `ValueHolding::ALL` order.
    pub counts: [usize; 5],
    /// Model-mean owned rate (percent), PROTOCOL 7.4.
    pub model_mean_owned_pct: f64,
    /// Models with an eligible cell.
    pub models: usize,
}

/// Layer B holdings of all rows, in order, using every available core (chunked, so the
/// result is the same whatever the thread count).
pub fn code_all(coder: &OfflineCoder, rows: &[CorpusResponse]) -> Vec<ValueHolding> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 8);
    let chunk = rows.len().div_ceil(threads).max(1);
    std::thread::scope(|s| {
        let handles: Vec<_> = rows
            .chunks(chunk)
            .map(|part| {
                s.spawn(move || {
                    part.iter()
                        .map(|r| coder.code_posture(&r.prompt, &r.response).value_holding)
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    })
}

/// Code all rows and summarise per family (`Family` order of the enum).
pub fn check(coder: &OfflineCoder, rows: &[CorpusResponse]) -> BTreeMap<Family, FamilyCheck> {
    let holdings = code_all(coder, rows);
    let mut out: BTreeMap<Family, FamilyCheck> = BTreeMap::new();
    // family -> model -> cell -> (n, owned)
    let mut cells: BTreeMap<Family, BTreeMap<String, BTreeMap<String, (usize, usize)>>> =
        BTreeMap::new();
    for (r, h) in rows.iter().zip(&holdings) {
        let fam = r.condition.family();
        let e = out.entry(fam).or_default();
        e.n += 1;
        if let Some(ix) = ValueHolding::ALL.iter().position(|x| x == h) {
            e.counts[ix] += 1;
        }
        let model = canonical_model(cell_to_source_model(&r.cell)).to_string();
        let c = cells
            .entry(fam)
            .or_default()
            .entry(model)
            .or_default()
            .entry(r.cell.clone())
            .or_default();
        c.0 += 1;
        c.1 += usize::from(*h == ValueHolding::Owned);
    }
    for (fam, models) in cells {
        let mut rates = Vec::new();
        for cs in models.values() {
            let eligible: Vec<f64> = cs
                .values()
                .filter(|(n, _)| *n >= 10)
                .map(|(n, o)| 100.0 * *o as f64 / *n as f64)
                .collect();
            if !eligible.is_empty() {
                rates.push(eligible.iter().sum::<f64>() / eligible.len() as f64);
            }
        }
        if let Some(e) = out.get_mut(&fam) {
            e.models = rates.len();
            e.model_mean_owned_pct = rates.iter().sum::<f64>() / rates.len().max(1) as f64;
        }
    }
    out
}

/// Published counts by (family, holding) from `lexical_trace_by_posture.csv`.
pub fn published_counts(csv: &str) -> BTreeMap<(String, String), usize> {
    let mut out = BTreeMap::new();
    for line in csv.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        if let (Some(fam), Some(h), Some(n)) =
            (f.first(), f.get(1), f.get(2).and_then(|n| n.parse().ok()))
        {
            out.insert((fam.to_string(), h.to_string()), n);
        }
    }
    out
}

/// Published model-mean owned rates by family (PROTOCOL 8.2).
pub const PUBLISHED_MODEL_MEAN_OWNED_PCT: [(Family, f64); 3] = [
    (Family::DirectStatedValues, 21.39164),
    (Family::CacheBrokenStatedValues, 43.03365),
    (Family::WorldChangePrompts, 95.91232),
];

/// Markdown comparison table.
pub fn report_markdown(
    c: &BTreeMap<Family, FamilyCheck>,
    published: &BTreeMap<(String, String), usize>,
    seconds: f64,
) -> String {
    let mut o = String::new();
    let total: usize = c.values().map(|f| f.n).sum();
    let _ = writeln!(o, "# Offline coder: corpus-level check\n\nGenerated by `vuf coder check-corpus`: the shipped offline coder on all {total} valid responses of the public corpus (coding took {seconds:.1} s in this build). Published = the three-coder consensus (`lexical_trace_by_posture.csv`; model means from PROTOCOL 8.2). Note: the offline coder was trained on glm-5-1 responses that are part of this corpus, so this is a sanity check, not a held-out evaluation.\n");
    let _ = writeln!(o, "| family | value_holding | offline n | offline % | published n | published % |\n|---|---|---:|---:|---:|---:|");
    for (fam, fc) in c {
        let pub_total: usize = ValueHolding::ALL
            .iter()
            .filter_map(|h| published.get(&(fam.as_str().to_string(), h.as_str().to_string())))
            .sum();
        for (i, h) in ValueHolding::ALL.iter().enumerate() {
            let p = published
                .get(&(fam.as_str().to_string(), h.as_str().to_string()))
                .copied()
                .unwrap_or(0);
            let _ = writeln!(
                o,
                "| {} | {} | {} | {:.1} | {} | {:.1} |",
                fam.as_str(),
                h.as_str(),
                fc.counts[i],
                100.0 * fc.counts[i] as f64 / fc.n.max(1) as f64,
                p,
                100.0 * p as f64 / pub_total.max(1) as f64
            );
        }
    }
    let _ = writeln!(o, "\n| family | offline model-mean owned % | published model-mean owned % | models |\n|---|---:|---:|---:|");
    for (fam, want) in PUBLISHED_MODEL_MEAN_OWNED_PCT {
        if let Some(fc) = c.get(&fam) {
            let _ = writeln!(
                o,
                "| {} | {:.1} | {:.1} | {} |",
                fam.as_str(),
                fc.model_mean_owned_pct,
                want,
                fc.models
            );
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn loads_valid_traces_and_bundle_values_only() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        let cell = d.join("corpus-v2-values/x-model-or");
        std::fs::create_dir_all(&cell).unwrap();
        let ok = json!({"condition": "G1", "prompt": Condition::G1.prompt(), "result": "I care."});
        let bad = json!({"condition": "G1", "prompt": Condition::G1.prompt(), "error": "429"});
        std::fs::write(cell.join("G1_1.json"), ok.to_string()).unwrap();
        std::fs::write(cell.join("G1_2.json"), bad.to_string()).unwrap();
        std::fs::create_dir_all(d.join("extra-manifests")).unwrap();
        let bundle = json!({"model": "g", "samples": [
            {"type": "values", "cell": "g-or-pin-google", "condition": "CTRL3", "prompt": Condition::Ctrl3.prompt(), "result": "Less war."},
            {"type": "freeflow", "cell": "g-or-pin-google", "condition": "CTRL3", "prompt": "x", "result": "y"}]});
        std::fs::write(
            d.join("extra-manifests/gemini-3-5-flash.json"),
            bundle.to_string(),
        )
        .unwrap();
        let rows = load_corpus(d).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(
            (rows[0].cell.as_str(), rows[0].condition),
            ("x-model-or", Condition::G1)
        );
        assert_eq!(
            (rows[1].cell.as_str(), rows[1].response.as_str()),
            ("g-or-pin-google", "Less war.")
        );
    }

    #[test]
    fn published_counts_parse() {
        let c = published_counts(
            "condition_family,value_holding,n,x\ndirect_stated_values,owned,346,0.1\n",
        );
        assert_eq!(
            c.get(&("direct_stated_values".to_string(), "owned".to_string())),
            Some(&346)
        );
    }
}
