//! Cells and samples: the typed writes and reads of the `cells` and `samples` tables.
//!
//! Every trace is one row, valid or not, with its source text kept verbatim in `payload`.
//! Writes go through [`upsert_sample`], which implements the collector's top-up rule
//! (PROTOCOL 2.7) for imports too: a valid sample is never overwritten, an invalid one
//! may be replaced, and the same content twice is a no-op. That single rule is what makes
//! every import idempotent, so it lives here and nowhere else.

use std::collections::BTreeMap;

use rusqlite::{params, Connection, OptionalExtension, Transaction};

use super::Error;
use crate::protocol::{
    canonical_model, cell_to_source_model, lab_for, manifest_model_family, Condition,
    SampleCondition,
};

/// One sample to store (every column of `samples` that a writer chooses).
#[derive(Debug, Clone, PartialEq)]
pub struct NewSample {
    /// Cell label (directory name of the trace).
    pub cell: String,
    /// Condition: one of the six, or a custom condition (a trace of a study file's
    /// `[[design.custom]]`, as `vuf export traces` writes it).
    pub condition: SampleCondition,
    /// 1-based sample index within (cell, condition).
    pub idx: u32,
    /// Join key from a coding manifest; `None` = default `<cell>_<COND>_<idx>`.
    pub layered_id: Option<String>,
    /// Valid per PROTOCOL 2.9 (non-empty response text).
    pub valid: bool,
    /// Prompt string as sent.
    pub prompt: String,
    /// Response text (None for error traces).
    pub response: Option<String>,
    /// Access-route key (`openrouter`, `anthropic`, ...).
    pub provider: Option<String>,
    /// Model id the API returned (`model` field of a valid trace).
    pub model_returned: Option<String>,
    /// Model id requested.
    pub model_requested: Option<String>,
    /// Wall time of the call.
    pub duration_ms: Option<i64>,
    /// Finish/stop reason as the API wrote it (`stop`, `length`, `MAX_TOKENS`, `incomplete`, ...).
    pub finish_reason: Option<String>,
    /// Stopped at the output-token cap (kept, flagged).
    pub truncated: bool,
    /// The choice carries an upstream error (mid-stream failure; kept, flagged).
    pub upstream_error: bool,
    /// Where the response text came from (`result`, `response`, `raw_content`, `reasoning_content`).
    pub answer_source: Option<String>,
    /// Collection error text (error traces).
    pub error: Option<String>,
    /// Why the sample is invalid (`collection_error`, `empty_response`).
    pub invalid_reason: Option<String>,
    /// HTTP status of a failed call.
    pub http_status: Option<i64>,
    /// Provider usage block as JSON text.
    pub usage_json: Option<String>,
    /// The original record text, verbatim.
    pub payload: String,
    /// Provenance (`traces:<path>`, `website:<path>`, `manifest:<path>`, `collect:<run>`).
    pub origin: String,
    /// SHA-256 of `payload`.
    pub content_sha256: String,
}

impl NewSample {
    /// The layered id this sample gets when no manifest supplies one.
    pub fn default_layered_id(&self) -> String {
        format!("{}_{}_{}", self.cell, self.condition.as_str(), self.idx)
    }
}

/// `<cell>_<COND>_<idx>`: the layered id of a sample no manifest has named.
pub fn default_layered_id(cell: &str, condition: Condition, idx: u32) -> String {
    format!("{cell}_{}_{idx}", condition.as_str())
}

/// What [`upsert_sample`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpsertOutcome {
    /// New (cell, condition, idx).
    Inserted,
    /// Already stored with the same content (or the same valid response text).
    Unchanged,
    /// An invalid sample was replaced (by a valid one, or by a different invalid one).
    ReplacedInvalid,
    /// Same valid response; the manifest's `layered_id` was attached to the stored sample.
    IdAttached,
    /// Not written: the stored sample is valid with different text, or the layered id
    /// is taken. The reason says which.
    Conflict(String),
}

/// Insert or top up one sample inside the caller's transaction.
///
/// Rules: absent -> insert; stored valid -> never overwritten (same response text is
/// `Unchanged`, or `IdAttached` when a manifest names it for the first time; different
/// text is a `Conflict`); stored invalid -> same payload is `Unchanged`, anything else
/// replaces it in place (same `id`, so first-appearance order is kept).
pub fn upsert_sample(tx: &Transaction, s: &NewSample) -> Result<UpsertOutcome, Error> {
    let existing = tx
        .prepare_cached(
            "SELECT id, valid, response, prompt, content_sha256, layered_id FROM samples
             WHERE cell = ?1 AND condition = ?2 AND idx = ?3",
        )?
        .query_row(params![s.cell, s.condition.as_str(), s.idx], |r| {
            Ok(Existing {
                id: r.get(0)?,
                valid: r.get(1)?,
                response: r.get(2)?,
                prompt: r.get(3)?,
                sha: r.get(4)?,
                layered_id: r.get(5)?,
            })
        })
        .optional()?;
    let default_id = s.default_layered_id();
    let wanted_id = s.layered_id.clone().unwrap_or_else(|| default_id.clone());
    let Some(e) = existing else {
        if let Some(other) = layered_id_owner(tx, &wanted_id)? {
            return Ok(UpsertOutcome::Conflict(format!(
                "layered_id {wanted_id} already belongs to sample {other}"
            )));
        }
        ensure_cell(tx, &s.cell)?;
        insert(tx, s, &wanted_id)?;
        return Ok(UpsertOutcome::Inserted);
    };
    if e.valid {
        if !s.valid || s.response != e.response || s.prompt != e.prompt {
            return Ok(UpsertOutcome::Conflict(if s.valid {
                let differs = match (s.response != e.response, s.prompt != e.prompt) {
                    (true, true) => "response and prompt",
                    (true, false) => "response",
                    _ => "prompt",
                };
                format!(
                    "stored valid sample {} has a different {differs}; kept the stored one",
                    e.layered_id
                )
            } else {
                format!(
                    "stored sample {} is valid; an invalid trace never replaces it",
                    e.layered_id
                )
            }));
        }
        return attach_id(tx, &e, s.layered_id.as_deref(), &default_id);
    }
    if e.sha == s.content_sha256 {
        return attach_id(tx, &e, s.layered_id.as_deref(), &default_id);
    }
    let keep_id = match &s.layered_id {
        Some(l) if *l != e.layered_id => {
            if let Some(other) = layered_id_owner(tx, l)? {
                return Ok(UpsertOutcome::Conflict(format!(
                    "layered_id {l} already belongs to sample {other}"
                )));
            }
            l.clone()
        }
        _ => e.layered_id.clone(),
    };
    replace(tx, e.id, s, &keep_id)?;
    Ok(UpsertOutcome::ReplacedInvalid)
}

struct Existing {
    id: i64,
    valid: bool,
    response: Option<String>,
    prompt: String,
    sha: String,
    layered_id: String,
}

/// Give a stored sample a manifest's layered id if it still has its default one.
fn attach_id(
    tx: &Transaction,
    e: &Existing,
    wanted: Option<&str>,
    default_id: &str,
) -> Result<UpsertOutcome, Error> {
    let Some(wanted) = wanted else {
        return Ok(UpsertOutcome::Unchanged);
    };
    if wanted == e.layered_id {
        return Ok(UpsertOutcome::Unchanged);
    }
    if e.layered_id != default_id {
        return Ok(UpsertOutcome::Conflict(format!(
            "sample already has layered_id {}; not renamed to {wanted}",
            e.layered_id
        )));
    }
    if let Some(other) = layered_id_owner(tx, wanted)? {
        return Ok(UpsertOutcome::Conflict(format!(
            "layered_id {wanted} already belongs to sample {other}"
        )));
    }
    tx.prepare_cached("UPDATE samples SET layered_id = ?1 WHERE id = ?2")?
        .execute(params![wanted, e.id])?;
    Ok(UpsertOutcome::IdAttached)
}

fn layered_id_owner(tx: &Transaction, layered_id: &str) -> Result<Option<String>, Error> {
    Ok(tx
        .prepare_cached(
            "SELECT cell || '/' || condition || '_' || idx FROM samples WHERE layered_id = ?1",
        )?
        .query_row([layered_id], |r| r.get(0))
        .optional()?)
}

/// Register a cell on first sight (its `first_seen` counter keeps first-appearance order).
fn ensure_cell(tx: &Transaction, cell: &str) -> Result<(), Error> {
    let source = cell_to_source_model(cell);
    tx.prepare_cached(
        "INSERT INTO cells (cell, source_model, model, first_seen)
         SELECT ?1, ?2, ?3, (SELECT COALESCE(MAX(first_seen), 0) + 1 FROM cells)
         WHERE NOT EXISTS (SELECT 1 FROM cells WHERE cell = ?1)",
    )?
    .execute(params![cell, source, canonical_model(source)])?;
    Ok(())
}

const COLUMNS: &str =
    "cell, condition, idx, layered_id, valid, prompt, response, provider, model_returned,
    model_requested, duration_ms, finish_reason, truncated, upstream_error, answer_source, error,
    invalid_reason, http_status, usage_json, origin, content_sha256, imported_at";

fn insert(tx: &Transaction, s: &NewSample, layered_id: &str) -> Result<(), Error> {
    let sql = format!(
        "INSERT INTO samples ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13,
         ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22)"
    );
    tx.prepare_cached(&sql)?.execute(params![
        s.cell,
        s.condition.as_str(),
        s.idx,
        layered_id,
        s.valid,
        s.prompt,
        s.response,
        s.provider,
        s.model_returned,
        s.model_requested,
        s.duration_ms,
        s.finish_reason,
        s.truncated,
        s.upstream_error,
        s.answer_source,
        s.error,
        s.invalid_reason,
        s.http_status,
        s.usage_json,
        s.origin,
        s.content_sha256,
        super::now_utc(),
    ])?;
    put_payload(tx, tx.last_insert_rowid(), &s.payload)
}

fn replace(tx: &Transaction, id: i64, s: &NewSample, layered_id: &str) -> Result<(), Error> {
    tx.prepare_cached(
        "UPDATE samples SET layered_id = ?2, valid = ?3, prompt = ?4, response = ?5, provider = ?6,
         model_returned = ?7, model_requested = ?8, duration_ms = ?9, finish_reason = ?10,
         truncated = ?11, upstream_error = ?12, answer_source = ?13, error = ?14,
         invalid_reason = ?15, http_status = ?16, usage_json = ?17, origin = ?18,
         content_sha256 = ?19, imported_at = ?20 WHERE id = ?1",
    )?
    .execute(params![
        id,
        layered_id,
        s.valid,
        s.prompt,
        s.response,
        s.provider,
        s.model_returned,
        s.model_requested,
        s.duration_ms,
        s.finish_reason,
        s.truncated,
        s.upstream_error,
        s.answer_source,
        s.error,
        s.invalid_reason,
        s.http_status,
        s.usage_json,
        s.origin,
        s.content_sha256,
        super::now_utc(),
    ])?;
    put_payload(tx, id, &s.payload)
}

/// Store (or replace) a sample's raw payload, in the caller's transaction.
pub(crate) fn put_payload(tx: &Transaction, sample_id: i64, payload: &str) -> Result<(), Error> {
    tx.prepare_cached(
        "INSERT OR REPLACE INTO sample_payloads (sample_id, payload) VALUES (?1, ?2)",
    )?
    .execute(params![sample_id, payload])?;
    Ok(())
}

/// A valid sample as the coding and analysis stages read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSample {
    /// Row id (first-appearance order).
    pub id: i64,
    /// Join key.
    pub layered_id: String,
    /// Cell label.
    pub cell: String,
    /// Source model (cell rule, PROTOCOL 2.5).
    pub source_model: String,
    /// Canonical model (alias applied, PROTOCOL 7.2).
    pub model: String,
    /// Condition: one of the six, or a custom condition of a study file.
    pub condition: SampleCondition,
    /// 1-based index.
    pub idx: u32,
    /// Prompt as sent.
    pub prompt: String,
    /// Response text (non-empty).
    pub response: String,
}

/// A stored condition label that is neither one of the six nor a custom condition id
/// (so no import and no study file wrote it): the one kind of condition that is corrupt.
fn unreadable_condition(id: i64, cell: &str, idx: u32, cond: &str) -> Error {
    Error::Corrupt(format!(
        "sample {id} ({cell}, index {idx}): condition {cond:?} is neither one of the six \
         ({}) nor a custom condition id (letters, digits and '-')",
        crate::protocol::conditions::CONDITION_LABELS
    ))
}

/// Every valid sample, in first-appearance (`id`) order. Samples of custom conditions are
/// included (as [`SampleCondition::Custom`]); only an unreadable condition label is an
/// error.
pub fn valid_samples(conn: &Connection) -> Result<Vec<StoredSample>, Error> {
    let mut stmt = conn.prepare(
        "SELECT s.id, s.layered_id, s.cell, c.source_model, c.model, s.condition, s.idx, s.prompt, s.response
         FROM samples s JOIN cells c ON c.cell = s.cell WHERE s.valid = 1 ORDER BY s.id",
    )?;
    let rows = stmt.query_map([], |r| {
        let cond: String = r.get(5)?;
        Ok((
            StoredSample {
                id: r.get(0)?,
                layered_id: r.get(1)?,
                cell: r.get(2)?,
                source_model: r.get(3)?,
                model: r.get(4)?,
                condition: SampleCondition::Published(Condition::Ctrl1),
                idx: r.get(6)?,
                prompt: r.get(7)?,
                response: r.get::<_, Option<String>>(8)?.unwrap_or_default(),
            },
            cond,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (mut s, cond) = row?;
        s.condition = SampleCondition::parse(&cond)
            .ok_or_else(|| unreadable_condition(s.id, &s.cell, s.idx, &cond))?;
        out.push(s);
    }
    Ok(out)
}

/// A stored sample with its payload, for export.
#[derive(Debug, Clone)]
pub struct SamplePayload {
    /// Cell label.
    pub cell: String,
    /// Condition: one of the six, or a custom condition of a study file.
    pub condition: SampleCondition,
    /// 1-based index.
    pub idx: u32,
    /// Provenance of the payload.
    pub origin: String,
    /// The stored record text.
    pub payload: String,
}

/// Every sample (valid or not) with its payload, in `id` order; `f` sees one at a time so
/// a large store is never held in memory twice. Samples of custom conditions are included;
/// only an unreadable condition label is an error.
pub fn for_each_payload(
    conn: &Connection,
    mut f: impl FnMut(SamplePayload) -> Result<(), Error>,
) -> Result<(), Error> {
    let mut stmt = conn.prepare(
        "SELECT s.cell, s.condition, s.idx, s.origin, p.payload, s.id
         FROM samples s JOIN sample_payloads p ON p.sample_id = s.id ORDER BY s.id",
    )?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        let (cell, cond, idx): (String, String, u32) = (r.get(0)?, r.get(1)?, r.get(2)?);
        let condition = match SampleCondition::parse(&cond) {
            Some(c) => c,
            None => return Err(unreadable_condition(r.get(5)?, &cell, idx, &cond)),
        };
        f(SamplePayload {
            cell,
            condition,
            idx,
            origin: r.get(3)?,
            payload: r.get(4)?,
        })?;
    }
    Ok(())
}

/// Valid / invalid pair.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ValidInvalid {
    /// Valid samples.
    pub valid: u64,
    /// Invalid samples.
    pub invalid: u64,
}

/// Per-lab counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct LabCount {
    /// Canonical models of the lab.
    pub models: u64,
    /// Valid samples of the lab.
    pub valid: u64,
}

/// Coded samples of one (layer, coder, source), once the codes table exists.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CodedCount {
    /// `a` or `b`.
    pub layer: String,
    /// Coder name.
    pub coder: String,
    /// `published`, `models` or `offline`.
    pub source: String,
    /// Distinct samples coded.
    pub samples: u64,
}

/// What `vuf status` shows. Field names are the stable JSON keys.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct StatusCounts {
    /// Valid samples.
    pub valid: u64,
    /// Invalid samples.
    pub invalid: u64,
    /// Cells with at least one sample.
    pub cells: u64,
    /// Canonical models (alias applied).
    pub models: u64,
    /// Labs (PROTOCOL 7.2 assignment).
    pub labs: u64,
    /// Condition -> valid/invalid (conditions with no samples are left out).
    pub by_condition: BTreeMap<String, ValidInvalid>,
    /// Lab -> models / valid samples.
    pub by_lab: BTreeMap<String, LabCount>,
    /// Valid or invalid samples flagged as stopped at the token cap.
    pub truncated: u64,
    /// Samples whose choice carries an upstream mid-stream error.
    pub upstream_error: u64,
    /// Import provenance rows (distinct imported file contents).
    pub imports: u64,
    /// Coded samples per layer / coder / source (empty before migration 0002).
    pub coded: Vec<CodedCount>,
    /// Coder calls not made by design (sequential majority) per layer / coder / source
    /// (empty when none were skipped).
    pub coder_skips: Vec<SkipCount>,
}

/// Coder calls skipped by design for one layer, coder and code source: sequential
/// majority did not ask this coder because the coders asked already agreed, so its
/// vote could not change the consensus. A skip superseded by a code that arrived later
/// for the same coder is not counted.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SkipCount {
    /// `a` or `b`.
    pub layer: String,
    /// Coder name.
    pub coder: String,
    /// Code source the skipped calls belong to (`models`: only live coder runs skip).
    pub source: String,
    /// Samples (one call each) this coder was not asked.
    pub skipped: u64,
}

/// Lab of every canonical model that has cells, using the `models` table metadata.
pub fn model_labs(conn: &Connection) -> Result<BTreeMap<String, String>, Error> {
    let mut stmt = conn.prepare(
        "SELECT c.model, MIN(c.source_model), m.lab FROM cells c LEFT JOIN models m ON m.model = c.model
         GROUP BY c.model ORDER BY c.model",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, Option<String>>(2)?,
        ))
    })?;
    let mut out = BTreeMap::new();
    for row in rows {
        let (model, source, lab) = row?;
        let lab = lab_for(&model, lab.as_deref(), &manifest_model_family(&source));
        out.insert(model, lab);
    }
    Ok(out)
}

/// What the store holds besides the default local study: the distinct providers of all
/// samples, valid or not, and whether anything was ever imported. `vuf run` runs the
/// default study only in a store that holds nothing else.
pub fn providers_and_imports(conn: &Connection) -> Result<(Vec<String>, bool), Error> {
    let mut stmt =
        conn.prepare("SELECT DISTINCT COALESCE(provider, '') FROM samples ORDER BY 1")?;
    let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
    let providers = rows.collect::<Result<Vec<_>, _>>()?;
    let imports: i64 = conn.query_row("SELECT COUNT(*) FROM import_files", [], |r| r.get(0))?;
    Ok((providers, imports > 0))
}

/// Counts for `vuf status`.
pub fn counts(conn: &Connection) -> Result<StatusCounts, Error> {
    let mut c = StatusCounts::default();
    {
        let mut stmt = conn.prepare(
            "SELECT condition, SUM(valid), SUM(1 - valid), SUM(truncated), SUM(upstream_error)
             FROM samples GROUP BY condition",
        )?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let vi = ValidInvalid {
                valid: r.get::<_, i64>(1)? as u64,
                invalid: r.get::<_, i64>(2)? as u64,
            };
            c.valid += vi.valid;
            c.invalid += vi.invalid;
            c.truncated += r.get::<_, i64>(3)? as u64;
            c.upstream_error += r.get::<_, i64>(4)? as u64;
            c.by_condition.insert(r.get(0)?, vi);
        }
    }
    c.cells = conn.query_row("SELECT COUNT(DISTINCT cell) FROM samples", [], |r| {
        r.get::<_, i64>(0)
    })? as u64;
    let labs = model_labs(conn)?;
    c.models = labs.len() as u64;
    for lab in labs.values() {
        c.by_lab.entry(lab.clone()).or_default().models += 1;
    }
    {
        let mut stmt = conn.prepare(
            "SELECT c.model, COUNT(*) FROM samples s JOIN cells c ON c.cell = s.cell WHERE s.valid = 1 GROUP BY c.model",
        )?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let model: String = r.get(0)?;
            if let Some(lab) = labs.get(&model) {
                c.by_lab.entry(lab.clone()).or_default().valid += r.get::<_, i64>(1)? as u64;
            }
        }
    }
    c.labs = c.by_lab.len() as u64;
    c.imports = conn.query_row("SELECT COUNT(*) FROM import_files", [], |r| {
        r.get::<_, i64>(0)
    })? as u64;
    c.coded = coded_counts(conn)?;
    c.coder_skips = skip_counts(conn)?;
    Ok(c)
}

/// Skipped-by-design counts from `coder_skips` (migration 0004; a store opened read-only
/// before that migration simply has none).
fn skip_counts(conn: &Connection) -> Result<Vec<SkipCount>, Error> {
    let has_skips: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'coder_skips')",
        [],
        |r| r.get(0),
    )?;
    if !has_skips {
        return Ok(Vec::new());
    }
    // Skips come from live coder runs, whose codes are source `models`.
    let mut stmt = conn.prepare(
        "SELECT k.layer, k.coder, COUNT(DISTINCT k.sample_id) FROM coder_skips k
         WHERE NOT EXISTS (SELECT 1 FROM codes c WHERE c.sample_id = k.sample_id AND c.layer = k.layer
                           AND c.coder = k.coder AND c.source = 'models')
         GROUP BY k.layer, k.coder ORDER BY k.layer, k.coder",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(SkipCount {
            layer: r.get(0)?,
            coder: r.get(1)?,
            source: "models".into(),
            skipped: r.get::<_, i64>(2)? as u64,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Coded-sample counts from the `codes` table (added by migration 0002); a store without
/// that table simply has none.
fn coded_counts(conn: &Connection) -> Result<Vec<CodedCount>, Error> {
    let has_codes: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'codes')",
        [],
        |r| r.get(0),
    )?;
    if !has_codes {
        return Ok(Vec::new());
    }
    let mut stmt = conn.prepare(
        "SELECT layer, coder, source, COUNT(DISTINCT sample_id) FROM codes
         GROUP BY layer, coder, source ORDER BY layer, coder, source",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(CodedCount {
            layer: r.get(0)?,
            coder: r.get(1)?,
            source: r.get(2)?,
            samples: r.get::<_, i64>(3)? as u64,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::attempts::{put_sample, SampleRow};
    use crate::store::Store;

    pub(crate) fn sample(
        cell: &str,
        cond: Condition,
        idx: u32,
        response: Option<&str>,
    ) -> NewSample {
        let payload = format!("{{\"result\": {response:?}}}");
        NewSample {
            cell: cell.into(),
            condition: cond.into(),
            idx,
            layered_id: None,
            valid: response.is_some(),
            prompt: cond.prompt().into(),
            response: response.map(Into::into),
            provider: None,
            model_returned: None,
            model_requested: None,
            duration_ms: None,
            finish_reason: None,
            truncated: false,
            upstream_error: false,
            answer_source: None,
            error: None,
            invalid_reason: None,
            http_status: None,
            usage_json: None,
            content_sha256: crate::store::sha256_hex(payload.as_bytes()),
            payload,
            origin: "test".into(),
        }
    }

    fn up(store: &mut Store, s: &NewSample) -> UpsertOutcome {
        store.transaction(|tx| upsert_sample(tx, s)).unwrap()
    }

    #[test]
    fn top_up_semantics() {
        let mut st = Store::open_in_memory().unwrap();
        let bad = sample("glm-5-1-or-pin-zai", Condition::G1, 3, None);
        assert_eq!(up(&mut st, &bad), UpsertOutcome::Inserted);
        assert_eq!(up(&mut st, &bad), UpsertOutcome::Unchanged);
        let good = sample(
            "glm-5-1-or-pin-zai",
            Condition::G1,
            3,
            Some("I value care."),
        );
        assert_eq!(up(&mut st, &good), UpsertOutcome::ReplacedInvalid);
        assert_eq!(up(&mut st, &good), UpsertOutcome::Unchanged);
        assert_eq!(
            up(&mut st, &bad),
            UpsertOutcome::Conflict(
                "stored sample glm-5-1-or-pin-zai_G1_3 is valid; an invalid trace never replaces it".into()
            )
        );
        let other = sample(
            "glm-5-1-or-pin-zai",
            Condition::G1,
            3,
            Some("Something else."),
        );
        assert!(matches!(up(&mut st, &other), UpsertOutcome::Conflict(_)));
        let mut named = good.clone();
        named.layered_id = Some("GLM51_glm-5-1-or-pin-zai_G1_003".into());
        named.payload = "{}".into();
        assert_eq!(up(&mut st, &named), UpsertOutcome::IdAttached);
        assert_eq!(up(&mut st, &named), UpsertOutcome::Unchanged);
        let v = valid_samples(st.conn()).unwrap();
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].layered_id, "GLM51_glm-5-1-or-pin-zai_G1_003");
        assert_eq!(v[0].response, "I value care.");
        assert_eq!(v[0].model, "glm-5-1");
    }

    /// A collected sample row (`collect`'s writer, which takes the condition as text).
    fn collected(cell: &str, cond: &str, idx: u32, prompt: &str, response: &str) -> SampleRow {
        SampleRow {
            cell: cell.into(),
            source_model: cell.into(),
            model: cell.into(),
            condition: cond.into(),
            idx,
            valid: true,
            prompt: prompt.into(),
            response: Some(response.into()),
            provider: "mock".into(),
            payload: format!("{{\n  \"condition\": \"{cond}\",\n  \"result\": \"{response}\"\n}}"),
            origin: "collect:1".into(),
            ..Default::default()
        }
    }

    #[test]
    fn custom_conditions_are_stored_conditions_and_only_unreadable_labels_are_corrupt() {
        let mut st = Store::open_in_memory().unwrap();
        st.transaction(|tx| {
            put_sample(
                tx,
                &collected("mock-a", "G1", 1, Condition::G1.prompt(), "g"),
            )?;
            put_sample(tx, &collected("mock-a", "X1", 1, "Refuse?", "x1"))?;
            put_sample(tx, &collected("mock-a", "X1", 2, "Refuse?", "x2"))
        })
        .unwrap();
        let v = valid_samples(st.conn()).unwrap();
        let got: Vec<(SampleCondition, u32, &str, &str, &str)> = v
            .iter()
            .map(|s| {
                (
                    s.condition.clone(),
                    s.idx,
                    s.prompt.as_str(),
                    s.response.as_str(),
                    s.layered_id.as_str(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (
                    SampleCondition::Published(Condition::G1),
                    1,
                    Condition::G1.prompt(),
                    "g",
                    "mock-a_G1_1"
                ),
                (
                    SampleCondition::Custom("X1".into()),
                    1,
                    "Refuse?",
                    "x1",
                    "mock-a_X1_1"
                ),
                (
                    SampleCondition::Custom("X1".into()),
                    2,
                    "Refuse?",
                    "x2",
                    "mock-a_X1_2"
                ),
            ]
        );
        let mut seen = Vec::new();
        for_each_payload(st.conn(), |p| {
            seen.push(format!(
                "{}/{}_{}: {}",
                p.cell, p.condition, p.idx, p.payload
            ));
            Ok(())
        })
        .unwrap();
        assert_eq!(
            seen,
            [
                "mock-a/G1_1: {\n  \"condition\": \"G1\",\n  \"result\": \"g\"\n}",
                "mock-a/X1_1: {\n  \"condition\": \"X1\",\n  \"result\": \"x1\"\n}",
                "mock-a/X1_2: {\n  \"condition\": \"X1\",\n  \"result\": \"x2\"\n}",
            ]
        );
        let c = counts(st.conn()).unwrap();
        assert_eq!((c.valid, c.invalid), (3, 0));
        assert_eq!(
            c.by_condition["X1"],
            ValidInvalid {
                valid: 2,
                invalid: 0
            }
        );
        // A label neither of the six nor a custom id (no study file or import writes one).
        st.transaction(|tx| put_sample(tx, &collected("mock-a", "X 1", 1, "?", "bad")))
            .unwrap();
        let want = "store: corrupt row: sample 4 (mock-a, index 1): condition \"X 1\" is neither \
                    one of the six (CTRL1, CTRL2, CTRL3, G1, G2, G3) nor a custom condition id \
                    (letters, digits and '-')";
        assert_eq!(valid_samples(st.conn()).unwrap_err().to_string(), want);
        let err = for_each_payload(st.conn(), |_| Ok(())).unwrap_err();
        assert_eq!(err.to_string(), want);
    }

    #[test]
    fn order_and_counts() {
        let mut st = Store::open_in_memory().unwrap();
        for (cell, cond, idx, resp) in [
            ("grok-4-20-or", Condition::G2, 1, Some("x")),
            ("grok-4-2", Condition::Ctrl1, 1, Some("y")),
            ("gemma-4-31b-or", Condition::Ctrl1, 2, None),
            ("grok-4-20-or", Condition::Ctrl1, 1, Some("z")),
        ] {
            up(&mut st, &sample(cell, cond, idx, resp));
        }
        let v = valid_samples(st.conn()).unwrap();
        let order: Vec<_> = v
            .iter()
            .map(|s| (s.cell.as_str(), s.idx, s.response.as_str()))
            .collect();
        assert_eq!(
            order,
            [
                ("grok-4-20-or", 1, "x"),
                ("grok-4-2", 1, "y"),
                ("grok-4-20-or", 1, "z")
            ]
        );
        let c = counts(st.conn()).unwrap();
        assert_eq!(
            (c.valid, c.invalid, c.cells, c.models, c.labs),
            (3, 1, 3, 2, 2)
        );
        assert_eq!(
            c.by_lab["xAI"],
            LabCount {
                models: 1,
                valid: 3
            }
        );
        assert_eq!(
            c.by_lab["Google"],
            LabCount {
                models: 1,
                valid: 0
            }
        );
        assert_eq!(
            c.by_condition["CTRL1"],
            ValidInvalid {
                valid: 2,
                invalid: 1
            }
        );
        assert!(c.coded.is_empty());
    }
}
