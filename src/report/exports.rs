//! `data/`: every analysis table as a spreadsheet-safe CSV and all of them as one JSON
//! file, plus `samples.csv`, the sample-level table for spreadsheets.
//!
//! CSV cells go through [`escape::csv_cell`] (formula guard; numbers stay numeric).
//! `tables.json` maps each table stem to its rows as objects with numbers as JSON numbers
//! and `nan`/empty as null. `samples.csv` columns: `layered_id, model, lab, cell,
//! condition, condition_family, value_holding, value_holding_support,
//! collapsed_primary_label, coders_split, topics (|-joined), lex_service_assistant_role,
//! lex_disownership, lex_policy_safety_frame, coder_votes (coder:value_holding; ...),
//! source, response_chars, response_excerpt`.
//!
//! The excerpt is the first [`EXCERPT_CHARS`] characters (with `…` when cut): with full
//! texts the sample CSV of the public corpus alone is 16.5 MB, which would make the report
//! folder outweigh its 20 MB budget. Full texts are in the analysis directory
//! (`samples.jsonl`, `tidy_values_under_fire_samples.csv`) and in `data/samples.parquet`.

use std::path::{Path, PathBuf};

use super::{csv, io_err, Error, ReportInput};

/// Write all exports into `dir`; returns the files written.
pub fn write_all(input: &ReportInput, dir: &Path) -> Result<Vec<PathBuf>, Error> {
    let mut out = Vec::new();
    let mut json = serde_json::Map::new();
    for (name, t) in &input.tables {
        let p = dir.join(format!("{name}.csv"));
        std::fs::write(&p, csv::write_safe(&t.columns, &t.rows)).map_err(io_err(&p))?;
        out.push(p);
        let rows: Vec<serde_json::Value> = t
            .rows
            .iter()
            .map(|r| {
                let mut o = serde_json::Map::new();
                for (c, v) in t.columns.iter().zip(r) {
                    o.insert(c.clone(), json_cell(v));
                }
                serde_json::Value::Object(o)
            })
            .collect();
        json.insert(name.clone(), serde_json::Value::Array(rows));
    }
    let p = dir.join("tables.json");
    let text = serde_json::to_string(&serde_json::Value::Object(json)).unwrap_or_default();
    std::fs::write(&p, text).map_err(io_err(&p))?;
    out.push(p);
    if !input.samples.is_empty() {
        let header: Vec<String> = [
            "layered_id",
            "model",
            "lab",
            "cell",
            "condition",
            "condition_family",
            "value_holding",
            "value_holding_support",
            "collapsed_primary_label",
            "coders_split",
            "topics",
            "lex_service_assistant_role",
            "lex_disownership",
            "lex_policy_safety_frame",
            "coder_votes",
            "source",
            "response_chars",
            "response_excerpt",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let flag = |s: &super::Sample, k: &str| match s.lex.get(k) {
            Some(true) => "1".to_string(),
            Some(false) => "0".to_string(),
            None => String::new(),
        };
        let rows: Vec<Vec<String>> = input
            .samples
            .iter()
            .map(|s| {
                vec![
                    s.layered_id.clone(),
                    s.model.clone(),
                    s.lab.clone(),
                    s.cell.clone(),
                    s.condition.clone(),
                    s.condition_family.clone(),
                    s.value_holding.clone(),
                    s.value_holding_support
                        .map(|v| v.to_string())
                        .unwrap_or_default(),
                    s.collapsed_primary_label.clone(),
                    if s.coders_split() { "1" } else { "0" }.to_string(),
                    s.topics.join("|"),
                    flag(s, "service_assistant_role"),
                    flag(s, "disownership"),
                    flag(s, "policy_safety_frame"),
                    s.coder_votes
                        .iter()
                        .map(|v| format!("{}:{}", v.coder, v.value_holding))
                        .collect::<Vec<_>>()
                        .join("; "),
                    s.source.clone(),
                    s.response.chars().count().to_string(),
                    excerpt(&s.response),
                ]
            })
            .collect();
        let p = dir.join("samples.csv");
        std::fs::write(&p, csv::write_safe(&header, &rows)).map_err(io_err(&p))?;
        out.push(p);
    }
    Ok(out)
}

/// Characters of each response kept in `samples.csv`.
pub const EXCERPT_CHARS: usize = 200;

fn excerpt(text: &str) -> String {
    match text.char_indices().nth(EXCERPT_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

fn json_cell(v: &str) -> serde_json::Value {
    let t = v.trim();
    if t.is_empty() || t == "nan" || t == "--" {
        return serde_json::Value::Null;
    }
    if let Ok(i) = t.parse::<i64>() {
        return serde_json::Value::from(i);
    }
    match t.parse::<f64>() {
        Ok(f) if f.is_finite() => serde_json::Value::from(f),
        _ => serde_json::Value::String(v.to_string()),
    }
}
