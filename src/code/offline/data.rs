//! Loader for the published labelled phases (`shared/data/labelled/`, README §7): joins
//! response texts, Layer B consensus, the three per-coder Layer B labels and the Layer A
//! consensus by `layered_id` into one [`LabelledSample`] per response.
//!
//! It lives here (not in `store`) because the offline coder trains from these files
//! directly: `vuf coder train --data DIR` must work without a study store. Every error names
//! the file, line and field. Output order is sorted by `layered_id`, so training sees the
//! same sequence whatever the file order.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::protocol::{Condition, PostureLabel, ValueHolding};

/// Coder keys in the fixed order of PROTOCOL 5.7.
pub const CODER_KEYS: [&str; 3] = ["kimi-k2-6", "glm-4-7", "qwen3-6-35b-a3b"];

/// One labelled response.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelledSample {
    /// Join key of every labelled file.
    pub layered_id: String,
    /// Responding model (the unit of leave-one-model-out).
    pub model: String,
    /// Condition of the prompt.
    pub condition: Condition,
    /// Exact prompt text shown to the coders.
    pub prompt: String,
    /// Response text.
    pub response: String,
    /// Consensus collapsed label.
    pub label: PostureLabel,
    /// Consensus value_holding (voted independently, PROTOCOL 5.7).
    pub value_holding: ValueHolding,
    /// Per-coder labels in [`CODER_KEYS`] order (`None` if the record is missing).
    pub coder_labels: [Option<PostureLabel>; 3],
    /// Per-coder value_holding in [`CODER_KEYS`] order.
    pub coder_holdings: [Option<ValueHolding>; 3],
    /// Layer A consensus topic keys (sorted), or `None` if no Layer A record.
    pub topics: Option<Vec<String>>,
    /// Per-coder Layer A topic keys (sorted) in [`CODER_KEYS`] order.
    pub coder_topics: [Option<Vec<String>>; 3],
}

/// Why loading failed; always names the file and, where known, line and field.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// File could not be opened or read.
    #[error("{path}: {source}")]
    Io {
        /// File.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// A line is not valid JSON or lacks a field.
    #[error("{path}:{line}: {msg}")]
    Record {
        /// File.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        msg: String,
    },
    /// A cross-file join failed.
    #[error("{path}: {msg}")]
    Join {
        /// File.
        path: PathBuf,
        /// What is wrong.
        msg: String,
    },
}

fn read_jsonl(path: &Path) -> Result<Vec<(usize, Value)>, LoadError> {
    let f = File::open(path).map_err(|source| LoadError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut out = Vec::new();
    for (i, line) in BufReader::new(f).lines().enumerate() {
        let line = line.map_err(|source| LoadError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        if line.trim().is_empty() {
            continue;
        }
        let v: Value = serde_json::from_str(&line).map_err(|e| LoadError::Record {
            path: path.to_path_buf(),
            line: i + 1,
            msg: format!("invalid JSON: {e}"),
        })?;
        out.push((i + 1, v));
    }
    Ok(out)
}

fn field<'a>(v: &'a Value, name: &str, path: &Path, line: usize) -> Result<&'a str, LoadError> {
    v.get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| LoadError::Record {
            path: path.to_path_buf(),
            line,
            msg: format!("missing or non-string field `{name}`"),
        })
}

struct Text {
    model: String,
    condition: Condition,
    prompt: String,
    response: String,
}

fn load_manifest(path: &Path) -> Result<BTreeMap<String, Text>, LoadError> {
    let mut out = BTreeMap::new();
    for (line, v) in read_jsonl(path)? {
        let id = field(&v, "layered_id", path, line)?.to_string();
        let cond = field(&v, "condition", path, line)?;
        let condition = Condition::parse(cond).ok_or_else(|| LoadError::Record {
            path: path.to_path_buf(),
            line,
            msg: format!("unknown condition `{cond}`"),
        })?;
        let t = Text {
            model: field(&v, "model", path, line)?.to_string(),
            condition,
            prompt: field(&v, "prompt", path, line)?.to_string(),
            response: field(&v, "response", path, line)?.to_string(),
        };
        if out.insert(id.clone(), t).is_some() {
            return Err(LoadError::Record {
                path: path.to_path_buf(),
                line,
                msg: format!("duplicate layered_id `{id}`"),
            });
        }
    }
    Ok(out)
}

struct Posture {
    label: PostureLabel,
    holding: ValueHolding,
    coder_labels: [Option<PostureLabel>; 3],
    coder_holdings: [Option<ValueHolding>; 3],
}

fn parse_label(s: &str, path: &Path, line: usize, name: &str) -> Result<PostureLabel, LoadError> {
    PostureLabel::parse(s).ok_or_else(|| LoadError::Record {
        path: path.to_path_buf(),
        line,
        msg: format!("field `{name}`: unknown collapsed label `{s}`"),
    })
}

fn parse_holding(s: &str, path: &Path, line: usize, name: &str) -> Result<ValueHolding, LoadError> {
    ValueHolding::parse(s).ok_or_else(|| LoadError::Record {
        path: path.to_path_buf(),
        line,
        msg: format!("field `{name}`: unknown value_holding `{s}`"),
    })
}

fn coder_index(key: &str) -> Option<usize> {
    CODER_KEYS.iter().position(|k| *k == key)
}

/// Consensus file; per-coder labels come from `coder_records` when `embedded_coders`.
/// Draft (phase-4) labels are mapped with [`PostureLabel::from_draft`] (PROTOCOL 5.8).
fn load_posture_consensus(
    path: &Path,
    embedded_coders: bool,
) -> Result<BTreeMap<String, Posture>, LoadError> {
    let mut out = BTreeMap::new();
    for (line, v) in read_jsonl(path)? {
        let id = field(&v, "layered_id", path, line)?.to_string();
        let label = parse_label(
            field(&v, "collapsed_primary_label", path, line)?,
            path,
            line,
            "collapsed_primary_label",
        )?;
        let holding = parse_holding(
            field(&v, "value_holding", path, line)?,
            path,
            line,
            "value_holding",
        )?;
        let mut p = Posture {
            label,
            holding,
            coder_labels: [None; 3],
            coder_holdings: [None; 3],
        };
        if embedded_coders {
            let recs = v
                .get("coder_records")
                .and_then(Value::as_array)
                .ok_or_else(|| LoadError::Record {
                    path: path.to_path_buf(),
                    line,
                    msg: "missing array `coder_records`".into(),
                })?;
            for r in recs {
                let key = field(r, "coder_key", path, line)?;
                let Some(ix) = coder_index(key) else { continue };
                let raw = r
                    .get("original_primary_label")
                    .and_then(Value::as_str)
                    .or_else(|| r.get("primary_label").and_then(Value::as_str))
                    .ok_or_else(|| LoadError::Record {
                        path: path.to_path_buf(),
                        line,
                        msg: format!(
                            "coder_records[{key}]: no `original_primary_label` or `primary_label`"
                        ),
                    })?;
                let l = PostureLabel::from_draft(raw);
                p.coder_labels[ix] = Some(l);
                p.coder_holdings[ix] = Some(match r.get("value_holding").and_then(Value::as_str) {
                    Some(h) => parse_holding(h, path, line, "coder_records.value_holding")?,
                    None => l.value_holding(),
                });
            }
        }
        if out.insert(id.clone(), p).is_some() {
            return Err(LoadError::Record {
                path: path.to_path_buf(),
                line,
                msg: format!("duplicate layered_id `{id}`"),
            });
        }
    }
    Ok(out)
}

/// One per-coder collapsed Layer B file: id -> (label, holding). Labels go through the
/// alias table of PROTOCOL 5.5; a label outside it counts as uncodeable (PROTOCOL 5.7).
fn load_coder_file(
    path: &Path,
) -> Result<BTreeMap<String, (PostureLabel, ValueHolding)>, LoadError> {
    let mut out = BTreeMap::new();
    for (line, v) in read_jsonl(path)? {
        let id = field(&v, "layered_id", path, line)?.to_string();
        let l = PostureLabel::normalise(field(&v, "primary_label", path, line)?)
            .unwrap_or(PostureLabel::UncodeableOrRefusal);
        let h = match v.get("value_holding").and_then(Value::as_str) {
            Some(h) => parse_holding(h, path, line, "value_holding")?,
            None => l.value_holding(),
        };
        out.insert(id, (l, h));
    }
    Ok(out)
}

/// Topic lists of a Layer A file: `consensus_topics` (objects with `topic_key`) in the
/// consensus file, `topics` (plain keys) in a per-coder file.
fn load_topics(path: &Path, list: &str) -> Result<BTreeMap<String, Vec<String>>, LoadError> {
    let mut out = BTreeMap::new();
    for (line, v) in read_jsonl(path)? {
        let id = field(&v, "layered_id", path, line)?.to_string();
        let arr = v
            .get(list)
            .and_then(Value::as_array)
            .ok_or_else(|| LoadError::Record {
                path: path.to_path_buf(),
                line,
                msg: format!("missing array `{list}`"),
            })?;
        let mut keys = Vec::with_capacity(arr.len());
        for t in arr {
            let k = match t.as_str() {
                Some(k) => k,
                None => field(t, "topic_key", path, line)?,
            };
            keys.push(k.to_string());
        }
        keys.sort();
        keys.dedup();
        out.insert(id, keys);
    }
    Ok(out)
}

/// The two labelled phases under a data dir (the `shared/data` root).
struct Phase {
    manifest: PathBuf,
    consensus: PathBuf,
    embedded_coders: bool,
    coder_dir: Option<PathBuf>,
    layer_a: PathBuf,
}

fn phases(data_dir: &Path) -> [Phase; 2] {
    let lab = data_dir.join("labelled");
    [
        Phase {
            manifest: lab.join("phase4_glm_5_1/manifest_glm_5_1.jsonl"),
            consensus: lab.join("phase4_glm_5_1/posture_triple/collapsed_consensus.jsonl"),
            embedded_coders: true,
            coder_dir: None,
            layer_a: lab.join("phase4_glm_5_1/layer_a/consensus_300.jsonl"),
        },
        Phase {
            manifest: data_dir.join("extra-manifests/manifest_qwen_20260522.jsonl"),
            consensus: lab.join("phase6_qwen_20260522/posture_collapsed/consensus.jsonl"),
            embedded_coders: false,
            coder_dir: Some(lab.join("phase6_qwen_20260522/posture_collapsed")),
            layer_a: lab.join("phase6_qwen_20260522/layer_a/consensus_300.jsonl"),
        },
    ]
}

/// Load every labelled response under `data_dir` (the `shared/data` root: it holds
/// `labelled/` and `extra-manifests/`). Every Layer B consensus row must join to a manifest
/// text; Layer A rows (consensus and the per-coder `layer_a/<coder>.jsonl`, used for the
/// coder bars) are optional per sample. Sorted by `layered_id`.
pub fn load_labelled(data_dir: &Path) -> Result<Vec<LabelledSample>, LoadError> {
    let mut out = Vec::new();
    for ph in phases(data_dir) {
        let texts = load_manifest(&ph.manifest)?;
        let mut posture = load_posture_consensus(&ph.consensus, ph.embedded_coders)?;
        if let Some(dir) = &ph.coder_dir {
            for (ix, key) in CODER_KEYS.iter().enumerate() {
                let path = dir.join(format!("{key}.jsonl"));
                for (id, (l, h)) in load_coder_file(&path)? {
                    let p = posture.get_mut(&id).ok_or_else(|| LoadError::Join {
                        path: path.clone(),
                        msg: format!("layered_id `{id}` has no consensus record"),
                    })?;
                    p.coder_labels[ix] = Some(l);
                    p.coder_holdings[ix] = Some(h);
                }
            }
        }
        let mut topics = load_topics(&ph.layer_a, "consensus_topics")?;
        let mut coder_topics: Vec<BTreeMap<String, Vec<String>>> = Vec::new();
        if let Some(dir) = ph.layer_a.parent() {
            for key in CODER_KEYS {
                let path = dir.join(format!("{key}.jsonl"));
                coder_topics.push(if path.is_file() {
                    load_topics(&path, "topics")?
                } else {
                    BTreeMap::new()
                });
            }
        }
        for (id, p) in posture {
            let t = texts.get(&id).ok_or_else(|| LoadError::Join {
                path: ph.consensus.clone(),
                msg: format!("layered_id `{id}` is not in {}", ph.manifest.display()),
            })?;
            out.push(LabelledSample {
                topics: topics.remove(&id),
                coder_topics: [0, 1, 2]
                    .map(|k| coder_topics.get_mut(k).and_then(|m| m.remove(&id))),
                layered_id: id,
                model: t.model.clone(),
                condition: t.condition,
                prompt: t.prompt.clone(),
                response: t.response.clone(),
                label: p.label,
                value_holding: p.holding,
                coder_labels: p.coder_labels,
                coder_holdings: p.coder_holdings,
            });
        }
    }
    out.sort_by(|a, b| a.layered_id.cmp(&b.layered_id));
    Ok(out)
}
