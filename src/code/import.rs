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
//!   `coder_key` + `primary_label` + `congruence`; mapped with [`PostureLabel::known_draft`],
//!   the draft label kept as `original_label`.
//! - The pre-collapse draft consensus (`posture_triple/consensus.jsonl`) is superseded
//!   and skipped with a note; manifests hold no codes and are skipped with a note.
//!
//! Rows join to samples by `layered_id`, else by `cell` + `sample_id` (a trailing `.json`
//! stripped), else by the `<prefix>_<cell>_<COND>_<n>` shape of the layered id. Unmatched
//! rows are reported with file and line and counted, never dropped silently.
//!
//! Every field the analysis (or an export) reads is checked before anything of a row is
//! stored, and a row is imported whole or not at all:
//! - **errors** (the row breaks the protocol): labels go through the PROTOCOL 5.5
//!   normalisation and alias table (draft labels through the 5.8 mapping); value-holdings
//!   are one of the five and follow from the coder's label (5.2); supports are whole
//!   numbers from 1 to the row's number of coder records, and a consensus must be the
//!   majority vote of its own coder records (5.7); topic keys belong to the taxonomy of the
//!   sample's chain (4.2), consensus topics have at least two supporting coders among the
//!   eligible ones (4.7); coder keys are plain keys (not empty, no spaces or control
//!   characters; a key that is not one of the paper's three coders is imported with a
//!   warning). Messages name the field (`coder_records[1].value_holding: ...`).
//! - **conflicts** (the row disagrees with the store): an id field (`layered_id`, `cell`,
//!   `sample_id`, `condition`, `processing_chain`, `model`, `model_family`) that differs from
//!   the sample it joins (a `layered_id` other than the sample's own is accepted only when
//!   the sample has none but its default `<cell>_<COND>_<n>`); a consensus row that differs
//!   from the stored consensus of the sample; a coder vote that differs from the stored vote.
//!   The stored data is kept, never replaced.
//!
//! Importing the same file twice changes nothing: its codes and consensus rows are
//! "already stored".

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde_json::Value;

use super::consensus::{self, PostureVote};
use super::PAPER_CODERS;
use crate::protocol::topics::is_topic_of;
use crate::protocol::{manifest_model_family, Chain, Condition, PostureLabel, ValueHolding};
use crate::store::codes::{self, CodeUpsert, NewCode, NewConsensus, SampleKey};
use crate::store::Store;
use crate::text::count;

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

    /// Whether rows of this format are consensus rows.
    pub fn is_consensus(self) -> bool {
        matches!(
            self,
            CodesFormat::LayerAConsensus | CodesFormat::LayerBConsensus
        )
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
    /// What went wrong (includes the row's id when it has one, and the field).
    pub message: String,
}

/// What one file import did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileReport {
    /// File (or, with `empty_dir`, the directory named on the command line).
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
    /// Consensus rows written (new).
    pub consensus_rows: usize,
    /// Consensus rows identical to the stored ones.
    pub consensus_existing: usize,
    /// Rows that matched no sample.
    pub unmatched: Vec<RowIssue>,
    /// Rows that could not be read or break the protocol (not imported).
    pub errors: Vec<RowIssue>,
    /// Rows that disagree with what is stored (not imported; the stored data is kept).
    pub conflicts: Vec<RowIssue>,
    /// About rows that were imported (a coder key that is not one of the paper's).
    pub warnings: Vec<RowIssue>,
    /// The path is a directory that holds no `.jsonl` file (nothing to import).
    pub empty_dir: bool,
}

impl FileReport {
    fn new(path: &Path) -> FileReport {
        FileReport {
            path: path.to_path_buf(),
            format: None,
            skipped_note: None,
            rows: 0,
            codes_inserted: 0,
            codes_existing: 0,
            consensus_rows: 0,
            consensus_existing: 0,
            unmatched: Vec::new(),
            errors: Vec::new(),
            conflicts: Vec::new(),
            warnings: Vec::new(),
            empty_dir: false,
        }
    }
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
    keys: Vec<SampleKey>,
    by_lid: HashMap<String, usize>,
    by_key: HashMap<(String, String, i64), usize>,
}

impl SampleIndex {
    /// Build from the store.
    pub fn load(store: &Store) -> anyhow::Result<SampleIndex> {
        let keys = codes::sample_keys(store.conn())?;
        let mut by_lid = HashMap::new();
        let mut by_key = HashMap::new();
        for (i, k) in keys.iter().enumerate() {
            if let Some(l) = &k.layered_id {
                by_lid.insert(l.clone(), i);
            }
            by_key.insert((k.cell.clone(), k.condition.clone(), k.idx), i);
        }
        Ok(SampleIndex {
            keys,
            by_lid,
            by_key,
        })
    }

    fn by_cell_sample(&self, cell: &str, sample_id: &str) -> Option<usize> {
        let (cond, n) = split_sample_id(sample_id)?;
        self.by_key
            .get(&(cell.to_string(), cond.to_string(), n))
            .copied()
    }

    /// Parse `<prefix>_<cell>_<COND>_<n>` or `<cell>_<COND>_<n>` and look it up.
    fn by_lid_shape(&self, lid: &str) -> Option<usize> {
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
    pub fn find(&self, v: &Value) -> Option<&SampleKey> {
        let lid = v.get("layered_id").and_then(Value::as_str);
        let at = lid
            .and_then(|l| self.by_lid.get(l).copied())
            .or_else(|| {
                match (
                    v.get("cell").and_then(Value::as_str),
                    v.get("sample_id").and_then(Value::as_str),
                ) {
                    (Some(cell), Some(sid)) => self.by_cell_sample(cell, sid),
                    _ => None,
                }
            })
            .or_else(|| lid.and_then(|l| self.by_lid_shape(l)))?;
        self.keys.get(at)
    }
}

/// `<COND>_<n>` (a trailing `.json` stripped) as condition and number.
fn split_sample_id(sample_id: &str) -> Option<(&str, i64)> {
    let sid = sample_id.strip_suffix(".json").unwrap_or(sample_id);
    let (cond, n) = sid.rsplit_once('_')?;
    Some((cond, n.parse().ok()?))
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

// ------------------------------------------------------------------------------
// Checking one row.
// ------------------------------------------------------------------------------

/// Why a row is not imported.
#[derive(Debug)]
enum Reject {
    /// The row cannot be read or breaks the protocol.
    Error(String),
    /// The row disagrees with what the store holds.
    Conflict(String),
}

/// An error about one field.
fn bad(field: &str, what: impl std::fmt::Display) -> Reject {
    Reject::Error(format!("{field}: {what}"))
}

/// Characters that act on a terminal or reorder text instead of printing as themselves.
fn acts(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// A value as it appears in the file (JSON), shortened for messages. JSON escapes only the
/// C0 controls; the rest of [`acts`] (DEL, C1 controls, bidirectional controls) gets a JSON
/// `\uXXXX` escape too, so a message holds no character that acts on a terminal.
fn shown(v: &Value) -> String {
    let mut t = String::new();
    for c in v.to_string().chars() {
        if acts(c) {
            let mut units = [0u16; 2];
            for u in c.encode_utf16(&mut units) {
                t.push_str(&format!("\\u{u:04x}"));
            }
        } else {
            t.push(c);
        }
    }
    if t.chars().count() <= 80 {
        t
    } else {
        format!("{}...", t.chars().take(77).collect::<String>())
    }
}

/// A string as a JSON string (quoted, control characters escaped), shortened.
fn quoted(s: &str) -> String {
    shown(&Value::from(s))
}

/// A text field (`None` when absent or null).
fn text<'a>(v: &'a Value, at: &str, field: &str) -> Result<Option<&'a str>, Reject> {
    match v.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(bad(
            &format!("{at}{field}"),
            format!("{} is not text", shown(other)),
        )),
    }
}

/// A text field that must be there.
fn required_text<'a>(v: &'a Value, at: &str, field: &str) -> Result<&'a str, Reject> {
    text(v, at, field)?.ok_or_else(|| bad(&format!("{at}{field}"), "missing"))
}

/// A list field that must be there.
fn required_list<'a>(v: &'a Value, at: &str, field: &str) -> Result<&'a [Value], Reject> {
    match v.get(field) {
        None | Some(Value::Null) => Err(bad(&format!("{at}{field}"), "missing")),
        Some(Value::Array(a)) => Ok(a),
        Some(other) => Err(bad(
            &format!("{at}{field}"),
            format!("{} is not a list", shown(other)),
        )),
    }
}

/// A boolean field (`None` when absent or null).
fn boolean(v: &Value, field: &str) -> Result<Option<bool>, Reject> {
    match v.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(other) => Err(bad(field, format!("{} is not true or false", shown(other)))),
    }
}

/// Whether a coder key prints as itself: not empty, no spaces, control characters or
/// bidirectional-text controls (the characters [`crate::report::escape::terminal`] escapes).
fn usable_key(k: &str) -> bool {
    !k.is_empty() && !k.chars().any(|c| acts(c) || c.is_whitespace())
}

/// A coder key found in a field.
fn check_coder_key(k: &str, field: &str) -> Result<String, Reject> {
    if usable_key(k) {
        Ok(k.to_string())
    } else {
        Err(bad(
            field,
            format!(
                "{} is not a usable coder key (not empty, no spaces or control characters)",
                quoted(k)
            ),
        ))
    }
}

/// The `coder_key` of a coder record.
fn coder_key(r: &Value, at: &str) -> Result<String, Reject> {
    check_coder_key(
        required_text(r, at, "coder_key")?,
        &format!("{at}coder_key"),
    )
}

/// A list of distinct coder keys.
fn coder_list(v: &Value, at: &str, field: &str) -> Result<Vec<String>, Reject> {
    let f = format!("{at}{field}");
    let mut out: Vec<String> = Vec::new();
    for (i, c) in required_list(v, at, field)?.iter().enumerate() {
        let fi = format!("{f}[{i}]");
        let Some(k) = c.as_str() else {
            return Err(bad(&fi, format!("{} is not text", shown(c))));
        };
        let k = check_coder_key(k, &fi)?;
        if out.contains(&k) {
            return Err(bad(&fi, format!("coder {} appears twice", quoted(&k))));
        }
        out.push(k);
    }
    Ok(out)
}

/// A consensus support: a whole number from 1 to the number of coders that voted
/// (PROTOCOL 5.7: no-majority samples keep support 1, nothing has support 0).
fn support(v: &Value, field: &str, coders: usize) -> Result<i64, Reject> {
    let Some(x) = v.get(field).filter(|x| !x.is_null()) else {
        return Err(bad(field, "missing"));
    };
    match x.as_u64() {
        Some(n) if n >= 1 && n <= coders as u64 => Ok(n as i64),
        _ => Err(bad(
            field,
            format!(
                "{} is not a whole number from 1 to {coders} (the row's {}; PROTOCOL 5.7)",
                shown(x),
                count(coders, "coder record")
            ),
        )),
    }
}

/// A votes map (label or holding -> count), keys normalised by `key`; `None` when absent.
fn votes_map(
    v: &Value,
    field: &str,
    what: &str,
    key: impl Fn(&str) -> Option<&'static str>,
) -> Result<Option<BTreeMap<&'static str, u64>>, Reject> {
    let m = match v.get(field) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(m)) => m,
        Some(other) => {
            return Err(bad(
                field,
                format!("{} is not an object of vote counts", shown(other)),
            ))
        }
    };
    let mut out = BTreeMap::new();
    for (k, n) in m {
        let Some(name) = key(k) else {
            return Err(bad(field, format!("{} is not {what}", quoted(k))));
        };
        match n.as_u64() {
            Some(n) if n >= 1 => *out.entry(name).or_insert(0) += n,
            _ => {
                return Err(bad(
                    &format!("{field}.{k}"),
                    format!("{} is not a whole number of votes from 1", shown(n)),
                ))
            }
        }
    }
    Ok(Some(out))
}

fn holding_names() -> String {
    ValueHolding::ALL.map(ValueHolding::as_str).join(", ")
}

/// A value-holding name (PROTOCOL 5.2).
fn holding(raw: &str, field: &str) -> Result<ValueHolding, Reject> {
    ValueHolding::parse(raw).ok_or_else(|| {
        bad(
            field,
            format!(
                "{} is not one of {} (PROTOCOL 5.2)",
                quoted(raw),
                holding_names()
            ),
        )
    })
}

/// A collapsed posture label through the PROTOCOL 5.5 normalisation and alias table.
fn collapsed(raw: &str, field: &str) -> Result<PostureLabel, Reject> {
    PostureLabel::normalise(raw).ok_or_else(|| {
        bad(
            field,
            format!(
                "{} is not a posture label (PROTOCOL 5.5: one of the six collapsed labels or an alias of one)",
                quoted(raw)
            ),
        )
    })
}

/// One coder's checked Layer B vote.
struct PostureCode {
    coder: String,
    label: PostureLabel,
    original_label: Option<String>,
    holding: ValueHolding,
    notes: Option<String>,
}

/// Check one coder's Layer B vote: a per-coder row (`at` empty) or an entry of
/// `coder_records` (`at` = `coder_records[i].`). `draft_field` names the field holding a
/// phase-4 draft label, when the vote is one.
fn posture_code(r: &Value, at: &str, draft_field: Option<&str>) -> Result<PostureCode, Reject> {
    let coder = coder_key(r, at)?;
    let (label, original_label) = match draft_field {
        Some(df) => {
            let raw = required_text(r, at, df)?;
            let label = PostureLabel::known_draft(raw).ok_or_else(|| {
                bad(
                    &format!("{at}{df}"),
                    format!(
                        "{} is not a label of the phase-4 draft taxonomy (PROTOCOL 5.8)",
                        quoted(raw)
                    ),
                )
            })?;
            // A recorded collapsed label must be the mapping's.
            if let Some(c) = text(r, at, "collapsed_primary_label")? {
                let f = format!("{at}collapsed_primary_label");
                if collapsed(c, &f)? != label {
                    return Err(bad(
                        &f,
                        format!(
                            "{} is not the PROTOCOL 5.8 mapping of {df} {} ({label})",
                            quoted(c),
                            quoted(raw)
                        ),
                    ));
                }
            }
            (label, Some(raw.to_string()))
        }
        None => {
            let raw = required_text(r, at, "primary_label")?;
            let label = collapsed(raw, &format!("{at}primary_label"))?;
            (label, (raw != label.as_str()).then(|| raw.to_string()))
        }
    };
    // value_holding is a deterministic function of the label (PROTOCOL 5.2).
    let derived = label.value_holding();
    let holding = match text(r, at, "value_holding")? {
        None => derived,
        Some(h) => {
            let f = format!("{at}value_holding");
            let h = holding(h, &f)?;
            if h != derived {
                return Err(bad(
                    &f,
                    format!(
                        "{} does not go with the label {label}, whose value_holding is {derived} (PROTOCOL 5.2)",
                        quoted(h.as_str())
                    ),
                ));
            }
            h
        }
    };
    let notes = text(r, at, "notes")?.map(str::to_string);
    Ok(PostureCode {
        coder,
        label,
        original_label,
        holding,
        notes,
    })
}

/// The taxonomy chain of the sample a row joined.
fn chain_of(sample: &SampleKey) -> Result<Chain, Reject> {
    Condition::parse(&sample.condition)
        .map(Condition::chain)
        .ok_or_else(|| {
            bad(
                "condition",
                format!(
                    "the sample's condition {} has no Layer A taxonomy (PROTOCOL 4.2)",
                    quoted(&sample.condition)
                ),
            )
        })
}

/// A topic key of the chain's taxonomy.
fn topic_key(k: &Value, field: &str, chain: Chain) -> Result<String, Reject> {
    match k.as_str() {
        Some(t) if is_topic_of(chain, t) => Ok(t.to_string()),
        Some(t) => Err(bad(
            field,
            format!(
                "{} is not a topic of the {} taxonomy (PROTOCOL 4.2)",
                quoted(t),
                chain.as_str()
            ),
        )),
        None => Err(bad(field, format!("{} is not text", shown(k)))),
    }
}

/// `value_topics` / `wish_topics`, when present: the chain's list repeats `keys`, the
/// other chain's list is empty (PROTOCOL 4.5, 4.7; the QA chain-sanity check of 4.8).
fn chain_lists(v: &Value, chain: Chain, keys: &[String]) -> Result<(), Reject> {
    let (own, other) = match chain {
        Chain::StatedValues => ("value_topics", "wish_topics"),
        Chain::WorldChangeWishes => ("wish_topics", "value_topics"),
    };
    if let Some(list) = v.get(other).filter(|x| !x.is_null()) {
        if list.as_array().is_none_or(|a| !a.is_empty()) {
            return Err(bad(
                other,
                format!(
                    "{} must be empty for a {} sample (PROTOCOL 4.8)",
                    shown(list),
                    chain.as_str()
                ),
            ));
        }
    }
    if let Some(list) = v.get(own).filter(|x| !x.is_null()) {
        let listed: Option<Vec<&str>> = list.as_array().and_then(|a| {
            a.iter()
                .map(|t| t.get("topic_key").and_then(Value::as_str))
                .collect()
        });
        if listed.as_deref() != Some(&keys.iter().map(String::as_str).collect::<Vec<_>>()[..]) {
            return Err(bad(
                own,
                format!(
                    "{} does not list the row's topics {} (PROTOCOL 4.7)",
                    shown(list),
                    shown(&Value::from(keys.to_vec()))
                ),
            ));
        }
    }
    Ok(())
}

/// The id fields of a row, which must be text when present (they are join keys).
const ID_FIELDS: [&str; 7] = [
    "layered_id",
    "cell",
    "sample_id",
    "condition",
    "processing_chain",
    "model",
    "model_family",
];

fn id_types(v: &Value) -> Result<(), Reject> {
    if !v.is_object() {
        return Err(Reject::Error(format!("{} is not a JSON object", shown(v))));
    }
    for f in ID_FIELDS {
        text(v, "", f)?;
    }
    Ok(())
}

/// The row's id fields against the sample it joined: a difference is a conflict (the
/// stored sample keeps its identity).
fn check_identity(v: &Value, k: &SampleKey) -> Result<(), Reject> {
    let sample = format!("{}/{}_{}", k.cell, k.condition, k.idx);
    let default_id = format!("{}_{}_{}", k.cell, k.condition, k.idx);
    let stored_id = k.layered_id.clone().unwrap_or_else(|| default_id.clone());
    let differs = |field: &str, here: &str, stored: &str| {
        Reject::Conflict(format!(
            "{field}: this row says {}, the stored sample {sample} has {}; not imported",
            quoted(here),
            quoted(stored)
        ))
    };
    let get = |f: &str| v.get(f).and_then(Value::as_str);
    // A sample known only by its default id takes codes named by the published id.
    if let Some(l) = get("layered_id") {
        if l != stored_id && stored_id != default_id {
            return Err(differs("layered_id", l, &stored_id));
        }
    }
    if let Some(c) = get("cell") {
        if c != k.cell {
            return Err(differs("cell", c, &k.cell));
        }
    }
    if let Some(sid) = get("sample_id") {
        if split_sample_id(sid) != Some((k.condition.as_str(), k.idx)) {
            return Err(differs(
                "sample_id",
                sid,
                &format!("{}_{}", k.condition, k.idx),
            ));
        }
    }
    if let Some(c) = get("condition") {
        if c != k.condition {
            return Err(differs("condition", c, &k.condition));
        }
    }
    if let (Some(p), Some(cond)) = (get("processing_chain"), Condition::parse(&k.condition)) {
        if p != cond.chain().as_str() {
            return Err(differs("processing_chain", p, cond.chain().as_str()));
        }
    }
    if let Some(m) = get("model") {
        if m != k.source_model {
            return Err(differs("model", m, &k.source_model));
        }
    }
    if let Some(f) = get("model_family") {
        let family = manifest_model_family(&k.source_model);
        if f != family {
            return Err(differs("model_family", f, &family));
        }
    }
    Ok(())
}

/// A checked row, ready to store.
struct Checked {
    /// Per-coder codes.
    codes: Vec<NewCode>,
    /// The consensus row, for consensus formats.
    consensus: Option<NewConsensus>,
    /// A consensus that does not follow from the row's own votes (PROTOCOL 4.7, 5.7):
    /// reported after the comparison with a stored row, so a changed copy of a stored row
    /// is called a conflict.
    inconsistent: Option<Reject>,
    /// Coder keys of the row.
    coders: Vec<String>,
}

/// What every code built from a row shares.
struct RowContext<'a> {
    sample_id: i64,
    origin: String,
    now: &'a str,
}

impl RowContext<'_> {
    fn code(&self, layer: &str, coder: &str) -> NewCode {
        NewCode {
            sample_id: self.sample_id,
            layer: layer.into(),
            coder: coder.to_string(),
            source: "published".into(),
            rubric_hash: PUBLISHED_RUBRIC.into(),
            origin: self.origin.clone(),
            coded_at: self.now.to_string(),
            ..Default::default()
        }
    }

    /// A Layer B per-coder code from a checked vote and its record.
    fn posture(&self, p: PostureCode, r: &Value, raw_json: String) -> NewCode {
        let secondary =
            text_or_json(r.get("secondary_texture")).or_else(|| text_or_json(r.get("secondary")));
        let mut flags = serde_json::Map::new();
        if let Some(c) = r.get("congruence").or_else(|| r.get("original_congruence")) {
            flags.insert("original_congruence".into(), c.clone());
        }
        NewCode {
            label: Some(p.label.as_str().to_string()),
            original_label: p.original_label,
            value_holding: Some(p.holding.as_str().to_string()),
            secondary_texture: secondary,
            boundary_flag: json_bool(r.get("boundary_flag")),
            notes: p.notes,
            raw_text: s(r, "raw_text"),
            raw_json: Some(raw_json),
            params_json: s(r, "coder_model")
                .map(|m| serde_json::json!({ "coder_model": m }).to_string()),
            flags_json: (!flags.is_empty()).then(|| Value::Object(flags).to_string()),
            coded_at: s(r, "coded_at").unwrap_or_else(|| self.now.to_string()),
            ..self.code("b", &p.coder)
        }
    }
}

fn check_row(
    fmt: CodesFormat,
    v: &Value,
    line: &str,
    sample: &SampleKey,
    cx: &RowContext,
) -> Result<Checked, Reject> {
    match fmt {
        CodesFormat::LayerACoder => {
            let coder = coder_key(v, "")?;
            let chain = chain_of(sample)?;
            let mut topics: Vec<String> = Vec::new();
            for (i, t) in required_list(v, "", "topics")?.iter().enumerate() {
                let f = format!("topics[{i}]");
                let t = topic_key(t, &f, chain)?;
                if topics.contains(&t) {
                    return Err(bad(
                        &f,
                        format!("{} appears twice (PROTOCOL 4.5)", quoted(&t)),
                    ));
                }
                topics.push(t);
            }
            chain_lists(v, chain, &topics)?;
            let code = NewCode {
                topics: Some(topics),
                parse_clean: boolean(v, "parse_clean")?,
                raw_text: text(v, "", "raw_text")?.map(str::to_string),
                raw_json: Some(line.to_string()),
                params_json: s(v, "coder_model")
                    .map(|m| serde_json::json!({ "coder_model": m }).to_string()),
                coded_at: s(v, "coded_at").unwrap_or_else(|| cx.now.to_string()),
                ..cx.code("a", &coder)
            };
            Ok(Checked {
                codes: vec![code],
                consensus: None,
                inconsistent: None,
                coders: vec![coder],
            })
        }
        CodesFormat::LayerBCoder | CodesFormat::LayerBDraftCoder => {
            let draft = (fmt == CodesFormat::LayerBDraftCoder).then_some("primary_label");
            let p = posture_code(v, "", draft)?;
            let coder = p.coder.clone();
            Ok(Checked {
                codes: vec![cx.posture(p, v, line.to_string())],
                consensus: None,
                inconsistent: None,
                coders: vec![coder],
            })
        }
        CodesFormat::LayerBConsensus => check_posture_consensus(v, line, cx),
        CodesFormat::LayerAConsensus => check_topic_consensus(v, line, sample, cx),
    }
}

fn check_posture_consensus(v: &Value, line: &str, cx: &RowContext) -> Result<Checked, Reject> {
    let records = required_list(v, "", "coder_records")?;
    if records.is_empty() {
        return Err(bad(
            "coder_records",
            "empty; a consensus needs at least one coder's vote (PROTOCOL 5.7)",
        ));
    }
    let mut codes = Vec::new();
    let mut votes = Vec::new();
    let mut coders: Vec<String> = Vec::new();
    for (i, r) in records.iter().enumerate() {
        let at = format!("coder_records[{i}].");
        if !r.is_object() {
            return Err(bad(
                &format!("coder_records[{i}]"),
                format!("{} is not a coder record", shown(r)),
            ));
        }
        // Phase 4: original (draft) + collapsed label; phase 6: primary_label.
        let draft = r
            .get("original_primary_label")
            .is_some()
            .then_some("original_primary_label");
        let p = posture_code(r, &at, draft)?;
        if coders.contains(&p.coder) {
            return Err(bad(
                &format!("{at}coder_key"),
                format!("coder {} votes twice", quoted(&p.coder)),
            ));
        }
        coders.push(p.coder.clone());
        votes.push(PostureVote {
            coder: p.coder.clone(),
            label: p.label.as_str().to_string(),
            value_holding: Some(p.holding.as_str().to_string()),
        });
        codes.push(cx.posture(p, r, r.to_string()));
    }
    let n = records.len();
    let label = collapsed(
        required_text(v, "", "collapsed_primary_label")?,
        "collapsed_primary_label",
    )?;
    let label_support = support(v, "collapsed_primary_label_support", n)?;
    let label_votes = votes_map(v, "collapsed_primary_label_votes", "a posture label", |k| {
        PostureLabel::normalise(k).map(PostureLabel::as_str)
    })?;
    let holding_raw = required_text(v, "", "value_holding")?;
    let value_holding = holding(holding_raw, "value_holding")?;
    let holding_support = support(v, "value_holding_support", n)?;
    let holding_votes = votes_map(v, "value_holding_votes", "a value_holding", |k| {
        ValueHolding::parse(k).map(ValueHolding::as_str)
    })?;
    let Some(majority) = consensus::posture(&votes) else {
        unreachable!("at least one vote was checked above");
    };
    let counted = |votes: &[(String, u32)]| -> BTreeMap<String, u64> {
        votes.iter().map(|(k, n)| (k.clone(), *n as u64)).collect()
    };
    let as_owned = |m: &BTreeMap<&'static str, u64>| -> BTreeMap<String, u64> {
        m.iter().map(|(k, n)| (k.to_string(), *n)).collect()
    };
    let of_records = format!("the majority of the row's {} is", count(n, "coder record"));
    let inconsistent = if label != majority.label {
        Some(bad(
            "collapsed_primary_label",
            format!(
                "{} is not the label the coder records vote for: {of_records} {} (PROTOCOL 5.7)",
                quoted(label.as_str()),
                majority.label
            ),
        ))
    } else if label_support != majority.label_support as i64 {
        Some(bad(
            "collapsed_primary_label_support",
            format!(
                "{label_support} is not the number of coder records voting {label} ({})",
                majority.label_support
            ),
        ))
    } else if value_holding != majority.value_holding {
        Some(bad(
            "value_holding",
            format!(
                "{} is not the value_holding the coder records vote for: {of_records} {} (PROTOCOL 5.7)",
                quoted(holding_raw),
                majority.value_holding
            ),
        ))
    } else if holding_support != majority.value_holding_support as i64 {
        Some(bad(
            "value_holding_support",
            format!(
                "{holding_support} is not the number of coder records voting {value_holding} ({})",
                majority.value_holding_support
            ),
        ))
    } else if label_votes
        .as_ref()
        .is_some_and(|m| as_owned(m) != counted(&majority.label_votes))
    {
        Some(bad(
            "collapsed_primary_label_votes",
            format!(
                "{} does not count the coder records' labels",
                shown(&v["collapsed_primary_label_votes"])
            ),
        ))
    } else if holding_votes
        .as_ref()
        .is_some_and(|m| as_owned(m) != counted(&majority.value_holding_votes))
    {
        Some(bad(
            "value_holding_votes",
            format!(
                "{} does not count the coder records' value_holdings",
                shown(&v["value_holding_votes"])
            ),
        ))
    } else {
        None
    };
    let consensus = NewConsensus {
        sample_id: cx.sample_id,
        layer: "b".into(),
        source: "published".into(),
        rubric_hash: PUBLISHED_RUBRIC.into(),
        label: Some(label.as_str().to_string()),
        label_support: Some(label_support),
        label_votes_json: v.get("collapsed_primary_label_votes").map(Value::to_string),
        value_holding: Some(value_holding.as_str().to_string()),
        value_holding_support: Some(holding_support),
        value_holding_votes_json: v.get("value_holding_votes").map(Value::to_string),
        topics_json: None,
        has_disagreement: majority.label_disagreement(),
        record_json: Some(line.to_string()),
    };
    Ok(Checked {
        codes,
        consensus: Some(consensus),
        inconsistent,
        coders,
    })
}

fn check_topic_consensus(
    v: &Value,
    line: &str,
    sample: &SampleKey,
    cx: &RowContext,
) -> Result<Checked, Reject> {
    let chain = chain_of(sample)?;
    let eligible = coder_list(v, "", "eligible_coders")?;
    if eligible.is_empty() {
        return Err(bad(
            "eligible_coders",
            "empty; a consensus needs the coders that voted (PROTOCOL 4.7)",
        ));
    }
    let mut keys: Vec<String> = Vec::new();
    let mut topics: Vec<Value> = Vec::new();
    let mut partial: Option<(usize, String, usize)> = None;
    for (i, t) in required_list(v, "", "consensus_topics")?.iter().enumerate() {
        let at = format!("consensus_topics[{i}].");
        if !t.is_object() {
            return Err(bad(
                &format!("consensus_topics[{i}]"),
                format!("{} is not a consensus topic", shown(t)),
            ));
        }
        let f = format!("{at}topic_key");
        let key = topic_key(t.get("topic_key").unwrap_or(&Value::Null), &f, chain)?;
        if keys.contains(&key) {
            return Err(bad(&f, format!("{} appears twice", quoted(&key))));
        }
        let supporters = coder_list(t, &at, "supporting_coders")?;
        let sf = format!("{at}supporting_coders");
        if let Some(c) = supporters.iter().find(|c| !eligible.contains(c)) {
            return Err(bad(
                &sf,
                format!("coder {} is not one of the eligible_coders", quoted(c)),
            ));
        }
        if supporters.len() < 2 {
            return Err(bad(
                &sf,
                format!(
                    "{} is fewer than the two coders a consensus topic needs (PROTOCOL 4.7)",
                    shown(&t["supporting_coders"])
                ),
            ));
        }
        if supporters.len() < eligible.len() && partial.is_none() {
            partial = Some((i, key.clone(), supporters.len()));
        }
        topics.push(serde_json::json!({
            "topic_key": key,
            "supporting_coders": t["supporting_coders"].clone(),
        }));
        keys.push(key);
    }
    let has_disagreement = boolean(v, "has_disagreement")?.unwrap_or(false);
    chain_lists(v, chain, &keys)?;
    // A topic some eligible coder did not choose means their topic sets differ.
    let inconsistent = match partial {
        Some((i, key, n)) if !has_disagreement => Some(bad(
            "has_disagreement",
            format!(
                "false, but consensus_topics[{i}] ({key}) has the support of only {n} of the {} eligible coders (PROTOCOL 4.7)",
                eligible.len()
            ),
        )),
        _ => None,
    };
    let consensus = NewConsensus {
        sample_id: cx.sample_id,
        layer: "a".into(),
        source: "published".into(),
        rubric_hash: PUBLISHED_RUBRIC.into(),
        topics_json: Some(Value::Array(topics).to_string()),
        has_disagreement,
        record_json: Some(line.to_string()),
        ..Default::default()
    };
    Ok(Checked {
        codes: Vec::new(),
        consensus: Some(consensus),
        inconsistent,
        coders: eligible,
    })
}

/// How a consensus row compares with the stored one: `None` when it is the same row, else
/// what differs. The stored record is compared field by field (as JSON values, so spacing
/// and key order do not matter); a stored row without a record by its columns.
fn consensus_difference(stored: &NewConsensus, new: &NewConsensus, v: &Value) -> Option<String> {
    let old: Option<Value> = stored
        .record_json
        .as_deref()
        .and_then(|t| serde_json::from_str(t).ok());
    if let (Some(Value::Object(old)), Some(here)) = (&old, v.as_object()) {
        let keys: Vec<&String> = here
            .keys()
            .chain(old.keys().filter(|k| !here.contains_key(*k)))
            .collect();
        let diffs: Vec<String> = keys
            .into_iter()
            .filter(|k| old.get(*k) != here.get(*k))
            .map(|k| {
                let scalar =
                    |x: Option<&Value>| !matches!(x, Some(Value::Array(_) | Value::Object(_)));
                let say = |x: Option<&Value>| x.map(shown).unwrap_or_else(|| "nothing".into());
                if scalar(old.get(k)) && scalar(here.get(k)) {
                    format!(
                        "{k} (stored {}, this row {})",
                        say(old.get(k)),
                        say(here.get(k))
                    )
                } else {
                    k.to_string()
                }
            })
            .collect();
        return (!diffs.is_empty()).then(|| diffs.join(", "));
    }
    let columns = [
        ("collapsed_primary_label", stored.label != new.label),
        (
            "collapsed_primary_label_support",
            stored.label_support != new.label_support,
        ),
        (
            "collapsed_primary_label_votes",
            stored.label_votes_json != new.label_votes_json,
        ),
        ("value_holding", stored.value_holding != new.value_holding),
        (
            "value_holding_support",
            stored.value_holding_support != new.value_holding_support,
        ),
        (
            "value_holding_votes",
            stored.value_holding_votes_json != new.value_holding_votes_json,
        ),
        ("consensus_topics", stored.topics_json != new.topics_json),
        (
            "has_disagreement",
            stored.has_disagreement != new.has_disagreement,
        ),
    ];
    let diffs: Vec<&str> = columns
        .iter()
        .filter(|(_, d)| *d)
        .map(|(k, _)| *k)
        .collect();
    (!diffs.is_empty()).then(|| diffs.join(", "))
}

/// Import codes from files and directories into the store. A directory that holds no
/// `.jsonl` file gets a report with `empty_dir` set.
pub fn import_codes(store: &mut Store, paths: &[PathBuf]) -> anyhow::Result<Vec<FileReport>> {
    let index = SampleIndex::load(store)?;
    let mut reports = Vec::new();
    for p in paths {
        let files = expand_paths(std::slice::from_ref(p))?;
        if files.is_empty() && p.is_dir() {
            let mut r = FileReport::new(p);
            r.empty_dir = true;
            reports.push(r);
        }
        for f in files {
            reports.push(import_file(store, &index, &f)?);
        }
    }
    Ok(reports)
}

/// Import one file (one transaction; each row whole or not at all).
pub fn import_file(
    store: &mut Store,
    index: &SampleIndex,
    path: &Path,
) -> anyhow::Result<FileReport> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let mut rep = FileReport::new(path);
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
    // One JSON document over many lines (a trace, models.json) is not JSONL: one note
    // instead of an "invalid JSON" error per line.
    let first_line_bad = text
        .lines()
        .find(|l| !l.trim().is_empty())
        .is_some_and(|l| serde_json::from_str::<Value>(l).is_err());
    if first_line_bad && serde_json::from_str::<Value>(&text).is_ok() {
        rep.skipped_note = Some(
            "one JSON document, not JSONL (one record per line): traces and models.json are \
             read by `vuf import`; skipped"
                .into(),
        );
        return Ok(rep);
    }
    let origin_base = format!("import:{}", path.display());
    let now = super::now_utc_iso();
    // Coder keys outside the paper's three already warned about in this file.
    let mut warned: BTreeSet<String> = BTreeSet::new();
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
                rep.errors.push(issue(
                    lineno,
                    format!("record does not match the file's format {}", fmt.as_str()),
                ));
                continue;
            }
            let id_text = s(&v, "layered_id").unwrap_or_else(|| "<no layered_id>".into());
            let reject = |rep: &mut FileReport, r: Reject| match r {
                Reject::Error(m) => rep.errors.push(issue(lineno, format!("{id_text}: {m}"))),
                Reject::Conflict(m) => rep.conflicts.push(issue(lineno, format!("{id_text}: {m}"))),
            };
            if let Err(r) = id_types(&v) {
                reject(&mut rep, r);
                continue;
            }
            let Some(sample) = index.find(&v) else {
                rep.unmatched.push(issue(lineno, format!("no sample for {id_text}")));
                continue;
            };
            let cx = RowContext {
                sample_id: sample.id,
                origin: format!("{origin_base}:{lineno}"),
                now: &now,
            };
            let checked = match check_row(fmt, &v, line, sample, &cx) {
                Ok(c) => c,
                Err(r) => {
                    reject(&mut rep, r);
                    continue;
                }
            };
            if let Err(r) = check_identity(&v, sample) {
                reject(&mut rep, r);
                continue;
            }
            // A consensus row never replaces a stored one that differs.
            let mut consensus_new = None;
            if let Some(c) = &checked.consensus {
                match codes::consensus_of(tx, c.sample_id, &c.layer, &c.source)? {
                    Some(stored) => {
                        if let Some(diff) = consensus_difference(&stored, c, &v) {
                            let layer = c.layer.to_uppercase();
                            reject(
                                &mut rep,
                                Reject::Conflict(format!(
                                    "the stored layer {layer} consensus differs in {diff}; kept the stored one"
                                )),
                            );
                            continue;
                        }
                        consensus_new = Some(false);
                    }
                    None => consensus_new = Some(true),
                }
            }
            if let Some(r) = checked.inconsistent {
                reject(&mut rep, r);
                continue;
            }
            // The codes of one row go in together or not at all.
            tx.execute_batch("SAVEPOINT import_row")?;
            let (mut inserted, mut existing, mut clashes) = (0, 0, Vec::new());
            for code in &checked.codes {
                match codes::upsert_code(tx, code)? {
                    CodeUpsert::Inserted => inserted += 1,
                    CodeUpsert::Unchanged | CodeUpsert::Filled => existing += 1,
                    CodeUpsert::Conflict { existing } => clashes.push(format!(
                        "{id_text} coder {}: stored vote {existing} differs; kept",
                        code.coder
                    )),
                }
            }
            if !clashes.is_empty() {
                tx.execute_batch("ROLLBACK TO import_row; RELEASE import_row")?;
                let whole = if checked.consensus.is_some() {
                    " (nothing of this row was imported)"
                } else {
                    ""
                };
                for c in clashes {
                    rep.conflicts.push(issue(lineno, format!("{c}{whole}")));
                }
                continue;
            }
            match (consensus_new, &checked.consensus) {
                (Some(true), Some(c)) => {
                    codes::upsert_consensus(tx, c)?;
                    rep.consensus_rows += 1;
                }
                (Some(false), Some(_)) => rep.consensus_existing += 1,
                _ => {}
            }
            tx.execute_batch("RELEASE import_row")?;
            rep.codes_inserted += inserted;
            rep.codes_existing += existing;
            for c in checked.coders {
                if !PAPER_CODERS.contains(&c.as_str()) && warned.insert(c.clone()) {
                    rep.warnings.push(issue(
                        lineno,
                        format!(
                            "{id_text}: coder {} is not one of the paper's coders ({}); imported (further rows of this coder in this file are not listed)",
                            quoted(&c),
                            PAPER_CODERS.join(", ")
                        ),
                    ));
                }
            }
        }
        rep.format = format;
        Ok(())
    })?;
    Ok(rep)
}
