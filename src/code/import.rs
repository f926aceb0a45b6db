//! `vuf import-codes`: bring published coder files into the store (PROTOCOL 4.5, 4.7,
//! 5.5, 5.7, 5.8; data README §7).
//!
//! Formats, detected per file from its first record:
//! - Layer B consensus (`collapsed_consensus.jsonl`, `posture_collapsed/consensus.jsonl`):
//!   `collapsed_primary_label` + `coder_records`. Stored as consensus source `published`,
//!   and every entry of `coder_records` as a per-coder code (source `published`).
//! - Layer A consensus (`consensus_300.jsonl`): `consensus_topics` / `eligible_coders`.
//!   Stored as consensus source `published`.
//! - Layer A per-coder (`layer_a/<coder>.jsonl`): `coder_key` + `topics`.
//! - Layer B per-coder, collapsed taxonomy (`posture_collapsed/<coder>.jsonl`):
//!   `coder_key` + `primary_label` + `value_holding`.
//! - Layer B per-coder, phase-4 draft taxonomy (`posture_triple/<coder>.jsonl`):
//!   `coder_key` + `primary_label` + `congruence`; mapped with [`PostureLabel::from_draft`],
//!   the draft label kept as `original_label`.
//! - The pre-collapse draft consensus (`posture_triple/consensus.jsonl`) is superseded
//!   and skipped with a note; manifests hold no codes and are skipped with a note.
//!
//! Rows join to samples by `layered_id`, else by `cell` + `sample_id` (a trailing `.json`
//! stripped), else by the `<prefix>_<cell>_<COND>_<n>` shape of the layered id. Unmatched
//! rows are reported with file and line and counted, never dropped silently. Importing
//! the same file twice changes nothing (codes merge, consensus rows are replaced).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde_json::Value;

use crate::protocol::PostureLabel;
use crate::store::codes::{self, CodeUpsert, NewCode, NewConsensus};
use crate::store::Store;

/// Rubric tag stored on imported codes (the paper's prompts are not in vuf).
pub const PUBLISHED_RUBRIC: &str = "published";

/// Detected file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodesFormat {
    /// Layer B consensus with coder records.
    LayerBConsensus,
    /// Layer A consensus.
    LayerAConsensus,
    /// Layer A per-coder records.
    LayerACoder,
    /// Layer B per-coder records, collapsed taxonomy.
    LayerBCoder,
    /// Layer B per-coder records, phase-4 draft taxonomy.
    LayerBDraftCoder,
}

impl CodesFormat {
    /// Name for reports.
    pub fn as_str(self) -> &'static str {
        match self {
            CodesFormat::LayerBConsensus => "layer_b_consensus",
            CodesFormat::LayerAConsensus => "layer_a_consensus",
            CodesFormat::LayerACoder => "layer_a_coder",
            CodesFormat::LayerBCoder => "layer_b_coder",
            CodesFormat::LayerBDraftCoder => "layer_b_draft_coder",
        }
    }
}

/// Detect the format of one record; `Err(note)` for files that hold no importable codes.
pub fn detect(v: &Value) -> Result<CodesFormat, String> {
    let has = |k: &str| v.get(k).is_some();
    if has("collapsed_primary_label") {
        Ok(CodesFormat::LayerBConsensus)
    } else if has("consensus_topics") || has("eligible_coders") {
        Ok(CodesFormat::LayerAConsensus)
    } else if has("coder_key") && has("topics") {
        Ok(CodesFormat::LayerACoder)
    } else if has("coder_key") && has("primary_label") {
        if has("congruence") {
            Ok(CodesFormat::LayerBDraftCoder)
        } else {
            Ok(CodesFormat::LayerBCoder)
        }
    } else if has("primary_label_votes") {
        Err(
            "pre-collapse draft consensus (superseded by collapsed_consensus.jsonl); skipped"
                .into(),
        )
    } else if has("response") && has("prompt") {
        Err("a manifest (no codes); import it with `vuf import`; skipped".into())
    } else {
        Err("not a recognised codes format; skipped".into())
    }
}

/// One problem row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowIssue {
    /// File.
    pub path: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// What went wrong (includes the row's id when it has one).
    pub message: String,
}

/// What one file import did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileReport {
    /// File.
    pub path: PathBuf,
    /// Detected format, or `None` when skipped.
    pub format: Option<CodesFormat>,
    /// Why the file was skipped.
    pub skipped_note: Option<String>,
    /// Non-empty lines read.
    pub rows: usize,
    /// Per-coder codes inserted.
    pub codes_inserted: usize,
    /// Per-coder codes already present (unchanged or filled in).
    pub codes_existing: usize,
    /// Consensus rows written.
    pub consensus_rows: usize,
    /// Rows that matched no sample.
    pub unmatched: Vec<RowIssue>,
    /// Rows that could not be read.
    pub errors: Vec<RowIssue>,
    /// Votes that disagree with a stored vote for the same key (kept, not overwritten).
    pub conflicts: Vec<RowIssue>,
    /// Imported labels outside the six (kept; counted as uncodeable in consensus).
    pub warnings: Vec<RowIssue>,
}

/// Expand directories (recursively, sorted) into `.jsonl` files.
pub fn expand_paths(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(p)
                .with_context(|| format!("reading directory {}", p.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .collect();
            entries.sort();
            let (dirs, files): (Vec<_>, Vec<_>) = entries.into_iter().partition(|e| e.is_dir());
            out.extend(
                files
                    .into_iter()
                    .filter(|f| f.extension().is_some_and(|x| x == "jsonl")),
            );
            out.extend(expand_paths(&dirs)?);
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

/// Sample lookup for joins.
pub struct SampleIndex {
    by_lid: HashMap<String, i64>,
    by_key: HashMap<(String, String, i64), i64>,
}

impl SampleIndex {
    /// Build from the store.
    pub fn load(store: &Store) -> anyhow::Result<SampleIndex> {
        let keys = codes::sample_keys(store.conn())?;
        let mut by_lid = HashMap::new();
        let mut by_key = HashMap::new();
        for k in keys {
            if let Some(l) = &k.layered_id {
                by_lid.insert(l.clone(), k.id);
            }
            by_key.insert((k.cell.clone(), k.condition.clone(), k.idx), k.id);
        }
        Ok(SampleIndex { by_lid, by_key })
    }

    fn by_cell_sample(&self, cell: &str, sample_id: &str) -> Option<i64> {
        let sid = sample_id.strip_suffix(".json").unwrap_or(sample_id);
        let (cond, n) = sid.rsplit_once('_')?;
        let n: i64 = n.parse().ok()?;
        self.by_key
            .get(&(cell.to_string(), cond.to_string(), n))
            .copied()
    }

    /// Parse `<prefix>_<cell>_<COND>_<n>` or `<cell>_<COND>_<n>` and look it up.
    fn by_lid_shape(&self, lid: &str) -> Option<i64> {
        let mut parts = lid.rsplitn(3, '_');
        let n: i64 = parts.next()?.parse().ok()?;
        let cond = parts.next()?;
        let rest = parts.next()?;
        let look = |cell: &str| {
            self.by_key
                .get(&(cell.to_string(), cond.to_string(), n))
                .copied()
        };
        look(rest).or_else(|| rest.split_once('_').and_then(|(_, cell)| look(cell)))
    }

    /// Find the sample of a record (see module doc).
    pub fn find(&self, v: &Value) -> Option<i64> {
        let lid = v.get("layered_id").and_then(Value::as_str);
        if let Some(id) = lid.and_then(|l| self.by_lid.get(l)) {
            return Some(*id);
        }
        if let (Some(cell), Some(sid)) = (
            v.get("cell").and_then(Value::as_str),
            v.get("sample_id").and_then(Value::as_str),
        ) {
            if let Some(id) = self.by_cell_sample(cell, sid) {
                return Some(id);
            }
        }
        lid.and_then(|l| self.by_lid_shape(l))
    }
}

fn s(v: &Value, k: &str) -> Option<String> {
    v.get(k).and_then(Value::as_str).map(str::to_string)
}

fn text_or_json(v: Option<&Value>) -> Option<String> {
    match v {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => Some(other.to_string()),
    }
}

fn json_bool(v: Option<&Value>) -> Option<bool> {
    match v {
        Some(Value::Bool(b)) => Some(*b),
        Some(Value::Null) | None => None,
        Some(other) => Some(!matches!(other, Value::String(s) if s.is_empty() || s == "false")),
    }
}

/// Import codes from files and directories into the store.
pub fn import_codes(store: &mut Store, paths: &[PathBuf]) -> anyhow::Result<Vec<FileReport>> {
    let files = expand_paths(paths)?;
    let index = SampleIndex::load(store)?;
    let mut reports = Vec::new();
    for f in files {
        reports.push(import_file(store, &index, &f)?);
    }
    Ok(reports)
}

/// Import one file (one transaction).
pub fn import_file(
    store: &mut Store,
    index: &SampleIndex,
    path: &Path,
) -> anyhow::Result<FileReport> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let mut rep = FileReport {
        path: path.to_path_buf(),
        format: None,
        skipped_note: None,
        rows: 0,
        codes_inserted: 0,
        codes_existing: 0,
        consensus_rows: 0,
        unmatched: Vec::new(),
        errors: Vec::new(),
        conflicts: Vec::new(),
        warnings: Vec::new(),
    };
    let issue = |line: usize, message: String| RowIssue {
        path: path.to_path_buf(),
        line,
        message,
    };
    // A file that is not UTF-8 is reported (with the line of the first bad byte) and
    // skipped, like a bad row; the other files still import.
    let text = match String::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            let good = &e.as_bytes()[..e.utf8_error().valid_up_to()];
            let line = good.iter().filter(|b| **b == b'\n').count() + 1;
            rep.errors
                .push(issue(line, "not UTF-8 text: the file was skipped".into()));
            return Ok(rep);
        }
    };
    let origin_base = format!("import:{}", path.display());
    let now = super::now_utc_iso();
    store.transaction(|tx| -> anyhow::Result<()> {
        let mut format: Option<CodesFormat> = None;
        for (i, line) in text.lines().enumerate() {
            let lineno = i + 1;
            if line.trim().is_empty() {
                continue;
            }
            rep.rows += 1;
            let v: Value = match serde_json::from_str(line) {
                Ok(v) => v,
                Err(e) => {
                    rep.errors.push(issue(lineno, format!("invalid JSON: {e}")));
                    continue;
                }
            };
            let fmt = match format {
                Some(f) => f,
                None => match detect(&v) {
                    Ok(f) => {
                        format = Some(f);
                        f
                    }
                    Err(note) => {
                        rep.skipped_note = Some(note);
                        rep.rows = 0;
                        return Ok(());
                    }
                },
            };
            if detect(&v).ok() != Some(fmt) {
                rep.errors.push(issue(lineno, format!("record does not match the file's format {}", fmt.as_str())));
                continue;
            }
            let id_text = s(&v, "layered_id").unwrap_or_else(|| "<no layered_id>".into());
            let Some(sample_id) = index.find(&v) else {
                rep.unmatched.push(issue(lineno, format!("no sample for {id_text}")));
                continue;
            };
            let origin = format!("{origin_base}:{lineno}");
            let push_code = |code: NewCode, rep: &mut FileReport| -> anyhow::Result<()> {
                match codes::upsert_code(tx, &code)? {
                    CodeUpsert::Inserted => rep.codes_inserted += 1,
                    CodeUpsert::Unchanged | CodeUpsert::Filled => rep.codes_existing += 1,
                    CodeUpsert::Conflict { existing } => rep.conflicts.push(issue(
                        lineno,
                        format!("{id_text} coder {}: stored vote {existing} differs; kept", code.coder),
                    )),
                }
                Ok(())
            };
            match fmt {
                CodesFormat::LayerACoder => {
                    let (Some(coder), Some(topics)) = (s(&v, "coder_key"), v.get("topics").and_then(Value::as_array))
                    else {
                        rep.errors.push(issue(lineno, format!("{id_text}: missing coder_key or topics")));
                        continue;
                    };
                    let topics: Option<Vec<String>> =
                        topics.iter().map(|t| t.as_str().map(str::to_string)).collect();
                    let Some(topics) = topics else {
                        rep.errors.push(issue(lineno, format!("{id_text}: topics must be strings")));
                        continue;
                    };
                    let code = NewCode {
                        sample_id,
                        layer: "a".into(),
                        coder,
                        source: "published".into(),
                        rubric_hash: PUBLISHED_RUBRIC.into(),
                        topics: Some(topics),
                        parse_clean: json_bool(v.get("parse_clean")),
                        raw_text: s(&v, "raw_text"),
                        raw_json: Some(line.to_string()),
                        params_json: s(&v, "coder_model").map(|m| serde_json::json!({ "coder_model": m }).to_string()),
                        origin: origin.clone(),
                        coded_at: s(&v, "coded_at").unwrap_or_else(|| now.clone()),
                        ..Default::default()
                    };
                    push_code(code, &mut rep)?;
                }
                CodesFormat::LayerBCoder | CodesFormat::LayerBDraftCoder => {
                    let (Some(coder), Some(raw_label)) = (s(&v, "coder_key"), s(&v, "primary_label")) else {
                        rep.errors.push(issue(lineno, format!("{id_text}: missing coder_key or primary_label")));
                        continue;
                    };
                    let code = layer_b_code(
                        sample_id,
                        &coder,
                        &raw_label,
                        fmt == CodesFormat::LayerBDraftCoder,
                        &v,
                        line.to_string(),
                        origin.clone(),
                        &now,
                        &mut |m| rep.warnings.push(issue(lineno, format!("{id_text}: {m}"))),
                    );
                    push_code(code, &mut rep)?;
                }
                CodesFormat::LayerBConsensus => {
                    let Some(records) = v.get("coder_records").and_then(Value::as_array) else {
                        rep.errors.push(issue(lineno, format!("{id_text}: missing coder_records")));
                        continue;
                    };
                    for r in records {
                        let coder = s(r, "coder_key");
                        // Phase 4: original (draft) + collapsed label; phase 6: primary_label.
                        let draft = r.get("original_primary_label").is_some();
                        let raw_label = if draft { s(r, "original_primary_label") } else { s(r, "primary_label") };
                        let (Some(coder), Some(raw_label)) = (coder, raw_label) else {
                            rep.errors.push(issue(lineno, format!("{id_text}: coder record without coder_key or label")));
                            continue;
                        };
                        let mut code = layer_b_code(
                            sample_id,
                            &coder,
                            &raw_label,
                            draft,
                            r,
                            r.to_string(),
                            origin.clone(),
                            &now,
                            &mut |m| rep.warnings.push(issue(lineno, format!("{id_text}: {m}"))),
                        );
                        if let Some(collapsed) = s(r, "collapsed_primary_label") {
                            if code.label.as_deref() != Some(collapsed.as_str()) {
                                rep.warnings.push(issue(
                                    lineno,
                                    format!("{id_text} coder {coder}: recorded collapsed label {collapsed} kept (draft mapping gives {:?})", code.label),
                                ));
                                code.label = Some(collapsed);
                            }
                        }
                        push_code(code, &mut rep)?;
                    }
                    let label_votes = v.get("collapsed_primary_label_votes").map(Value::to_string);
                    let holding_votes = v.get("value_holding_votes").map(Value::to_string);
                    let disagreement = v
                        .get("collapsed_primary_label_votes")
                        .and_then(Value::as_object)
                        .is_some_and(|m| m.len() > 1);
                    codes::upsert_consensus(
                        tx,
                        &NewConsensus {
                            sample_id,
                            layer: "b".into(),
                            source: "published".into(),
                            rubric_hash: PUBLISHED_RUBRIC.into(),
                            label: s(&v, "collapsed_primary_label"),
                            label_support: v.get("collapsed_primary_label_support").and_then(Value::as_i64),
                            label_votes_json: label_votes,
                            value_holding: s(&v, "value_holding"),
                            value_holding_support: v.get("value_holding_support").and_then(Value::as_i64),
                            value_holding_votes_json: holding_votes,
                            topics_json: None,
                            has_disagreement: disagreement,
                            record_json: Some(line.to_string()),
                        },
                    )?;
                    rep.consensus_rows += 1;
                }
                CodesFormat::LayerAConsensus => {
                    let topics = v
                        .get("consensus_topics")
                        .or_else(|| v.get("value_topics"))
                        .and_then(Value::as_array)
                        .cloned()
                        .unwrap_or_default();
                    let topics: Vec<Value> = topics
                        .iter()
                        .map(|t| {
                            serde_json::json!({
                                "topic_key": t.get("topic_key").cloned().unwrap_or(Value::Null),
                                "supporting_coders": t.get("supporting_coders").cloned().unwrap_or(Value::Array(vec![])),
                            })
                        })
                        .collect();
                    codes::upsert_consensus(
                        tx,
                        &NewConsensus {
                            sample_id,
                            layer: "a".into(),
                            source: "published".into(),
                            rubric_hash: PUBLISHED_RUBRIC.into(),
                            topics_json: Some(Value::Array(topics).to_string()),
                            has_disagreement: json_bool(v.get("has_disagreement")).unwrap_or(false),
                            record_json: Some(line.to_string()),
                            ..Default::default()
                        },
                    )?;
                    rep.consensus_rows += 1;
                }
            }
        }
        rep.format = format;
        Ok(())
    })?;
    Ok(rep)
}

/// Build a Layer B per-coder code from a published record.
#[allow(clippy::too_many_arguments)]
fn layer_b_code(
    sample_id: i64,
    coder: &str,
    raw_label: &str,
    draft: bool,
    r: &Value,
    raw_json: String,
    origin: String,
    now: &str,
    warn: &mut dyn FnMut(String),
) -> NewCode {
    let (label, original_label) = if draft {
        (
            PostureLabel::from_draft(raw_label).as_str().to_string(),
            Some(raw_label.to_string()),
        )
    } else {
        match PostureLabel::normalise(raw_label) {
            Some(l) if l.as_str() == raw_label => (raw_label.to_string(), None),
            Some(l) => (l.as_str().to_string(), Some(raw_label.to_string())),
            None => {
                warn(format!(
                    "coder {coder}: label {raw_label} outside the six (counts as uncodeable_or_refusal)"
                ));
                (raw_label.to_string(), None)
            }
        }
    };
    let holding = s(r, "value_holding")
        .or_else(|| PostureLabel::parse(&label).map(|l| l.value_holding().as_str().to_string()));
    let secondary =
        text_or_json(r.get("secondary_texture")).or_else(|| text_or_json(r.get("secondary")));
    let mut flags = serde_json::Map::new();
    if let Some(c) = r.get("congruence").or_else(|| r.get("original_congruence")) {
        flags.insert("original_congruence".into(), c.clone());
    }
    NewCode {
        sample_id,
        layer: "b".into(),
        coder: coder.to_string(),
        source: "published".into(),
        rubric_hash: PUBLISHED_RUBRIC.into(),
        label: Some(label),
        original_label,
        value_holding: holding,
        secondary_texture: secondary,
        boundary_flag: json_bool(r.get("boundary_flag")),
        notes: s(r, "notes"),
        raw_text: s(r, "raw_text"),
        raw_json: Some(raw_json),
        params_json: s(r, "coder_model")
            .map(|m| serde_json::json!({ "coder_model": m }).to_string()),
        flags_json: (!flags.is_empty()).then(|| Value::Object(flags).to_string()),
        origin,
        coded_at: s(r, "coded_at").unwrap_or_else(|| now.to_string()),
        ..Default::default()
    }
}
