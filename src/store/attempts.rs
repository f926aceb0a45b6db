//! Collection bookkeeping (migration 0003): collect runs, every call attempt, and the
//! one-transaction commit of a finished work item into `samples`.
//!
//! Why one transaction: the collector counts a sample only after [`commit_attempt`]
//! returns, and the valid attempt and its sample row land together, so a SIGKILL at any
//! instant leaves either both (the item is done and is never called again) or neither
//! (the item is still pending and is called again). `attempts_one_valid` makes a second
//! valid attempt for the same work key impossible.
//!
//! The sample insert here is a minimal one against the 0001 columns with the top-up rule
//! of the store contract (an invalid row may be replaced, a valid row never is); the store
//! helper's `samples::upsert_sample` can replace it when merged.

use std::collections::{HashMap, HashSet};

use rusqlite::{params, OptionalExtension, Transaction};
use sha2::{Digest, Sha256};

use super::samples::put_payload;
use super::{Error, Store};

/// One call attempt as stored.
#[derive(Debug, Clone, Default)]
pub struct AttemptRow {
    /// Work-item key (content hash).
    pub work_key: String,
    /// Run that made the call.
    pub run_id: Option<i64>,
    /// Cell label.
    pub cell: String,
    /// Condition label.
    pub condition: String,
    /// 1-based sample index.
    pub idx: u32,
    /// 1-based attempt number for this work key, across runs.
    pub attempt: u32,
    /// Whether the call produced a valid sample.
    pub valid: bool,
    /// Failure reason (None when valid).
    pub reason: Option<String>,
    /// Retry class label of a failure.
    pub retry_class: Option<String>,
    /// HTTP status when a response existed.
    pub http_status: Option<u16>,
    /// Error message.
    pub error: Option<String>,
    /// Answer or partial text.
    pub response: Option<String>,
    /// Finish reason.
    pub finish_reason: Option<String>,
    /// Truncated at the cap.
    pub truncated: bool,
    /// Input tokens.
    pub input_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
    /// Cost in USD, when known.
    pub cost_usd: Option<f64>,
    /// Duration of this call.
    pub duration_ms: u64,
    /// Invalid attempt: its full error trace (JSON text). Valid attempt: what vuf read from
    /// the reply (answer source, reasoning, truncation, upstream); the full trace is the
    /// sample's `payload`, committed in the same transaction.
    pub trace_json: String,
}

/// The sample row written when a work item finishes (valid, or invalid after its attempts).
#[derive(Debug, Clone, Default)]
pub struct SampleRow {
    /// Cell label.
    pub cell: String,
    /// Source model of the cell (PROTOCOL 2.5 mapping).
    pub source_model: String,
    /// Canonical model.
    pub model: String,
    /// Condition label.
    pub condition: String,
    /// 1-based index.
    pub idx: u32,
    /// Valid sample.
    pub valid: bool,
    /// Prompt sent.
    pub prompt: String,
    /// Response text (valid samples).
    pub response: Option<String>,
    /// Trace `provider` key.
    pub provider: String,
    /// Model id returned.
    pub model_returned: Option<String>,
    /// Model id requested.
    pub model_requested: String,
    /// Duration including retry sleeps (PROTOCOL 2.7).
    pub duration_ms: Option<u64>,
    /// Finish reason.
    pub finish_reason: Option<String>,
    /// Truncated at the cap.
    pub truncated: bool,
    /// Upstream error flagged.
    pub upstream_error: bool,
    /// Which field the text came from.
    pub answer_source: Option<String>,
    /// Error text (invalid).
    pub error: Option<String>,
    /// Invalid reason.
    pub invalid_reason: Option<String>,
    /// HTTP status of the failed call.
    pub http_status: Option<u16>,
    /// Usage block as JSON text.
    pub usage_json: Option<String>,
    /// The trace file text (PROTOCOL 2.8 shape).
    pub payload: String,
    /// `collect:<run id>`.
    pub origin: String,
}

/// What happened to the sample slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutOutcome {
    /// New row.
    Inserted,
    /// An invalid row was replaced.
    ReplacedInvalid,
    /// A valid row already existed and was kept.
    KeptValid,
}

/// Current time as RFC 3339 UTC (`2026-12-03T19:45:00Z`).
pub fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0) as i64;
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn sha256_hex(s: &str) -> String {
    Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Start a collect run; returns its id.
pub fn start_run(
    store: &mut Store,
    study_name: &str,
    study_sha256: &str,
    detail_json: &str,
) -> Result<i64, Error> {
    store.transaction(|tx| {
        tx.prepare_cached("INSERT INTO collect_runs (study_name, study_sha256, started_at, status, detail_json) VALUES (?1, ?2, ?3, 'running', ?4)")?.execute(params![study_name, study_sha256, now_rfc3339(), detail_json],
        )?;
        Ok(tx.last_insert_rowid())
    })
}

/// Mark a run finished with `status` (`complete`, `incomplete`, `failed`).
pub fn finish_run(
    store: &mut Store,
    run_id: i64,
    status: &str,
    detail_json: &str,
) -> Result<(), Error> {
    store.transaction(|tx| {
        tx.prepare_cached(
            "UPDATE collect_runs SET finished_at = ?1, status = ?2, detail_json = ?3 WHERE id = ?4",
        )?
        .execute(params![now_rfc3339(), status, detail_json, run_id])?;
        Ok(())
    })
}

/// Make sure a cell row exists (keeps first-appearance order).
pub fn ensure_cell(
    tx: &Transaction,
    cell: &str,
    source_model: &str,
    model: &str,
) -> Result<(), Error> {
    tx.prepare_cached(
        "INSERT OR IGNORE INTO cells (cell, source_model, model, first_seen) \
         VALUES (?1, ?2, ?3, (SELECT COALESCE(MAX(first_seen), 0) + 1 FROM cells))",
    )?
    .execute(params![cell, source_model, model])?;
    Ok(())
}

/// Insert one attempt row.
pub fn insert_attempt(tx: &Transaction, a: &AttemptRow) -> Result<i64, Error> {
    tx.prepare_cached("INSERT INTO attempts (work_key, run_id, cell, condition, idx, attempt, valid, reason, retry_class, http_status, error, \
         response, finish_reason, truncated, input_tokens, output_tokens, cost_usd, duration_ms, trace_json, finished_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20)")?.execute(params![
            a.work_key,
            a.run_id,
            a.cell,
            a.condition,
            a.idx,
            a.attempt,
            a.valid as i64,
            a.reason,
            a.retry_class,
            a.http_status,
            a.error,
            a.response,
            a.finish_reason,
            a.truncated as i64,
            a.input_tokens as i64,
            a.output_tokens as i64,
            a.cost_usd,
            a.duration_ms as i64,
            a.trace_json,
            now_rfc3339(),
        ],
    )?;
    Ok(tx.last_insert_rowid())
}

/// Write a finished sample with the top-up rule: insert; replace an invalid row; never
/// overwrite a valid row.
pub fn put_sample(tx: &Transaction, s: &SampleRow) -> Result<PutOutcome, Error> {
    ensure_cell(tx, &s.cell, &s.source_model, &s.model)?;
    let existing: Option<(i64, i64)> = tx
        .prepare_cached(
            "SELECT id, valid FROM samples WHERE cell = ?1 AND condition = ?2 AND idx = ?3",
        )?
        .query_row(params![s.cell, s.condition, s.idx], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()?;
    let now = now_rfc3339();
    let sha = sha256_hex(&s.payload);
    match existing {
        Some((_, 1)) => Ok(PutOutcome::KeptValid),
        Some((id, _)) => {
            tx.prepare_cached("UPDATE samples SET valid = ?1, prompt = ?2, response = ?3, provider = ?4, model_returned = ?5, model_requested = ?6, \
                 duration_ms = ?7, finish_reason = ?8, truncated = ?9, upstream_error = ?10, answer_source = ?11, error = ?12, \
                 invalid_reason = ?13, http_status = ?14, usage_json = ?15, origin = ?16, content_sha256 = ?17, \
                 imported_at = ?18 WHERE id = ?19")?.execute(params![
                    s.valid as i64,
                    s.prompt,
                    s.response,
                    s.provider,
                    s.model_returned,
                    s.model_requested,
                    s.duration_ms.map(|d| d as i64),
                    s.finish_reason,
                    s.truncated as i64,
                    s.upstream_error as i64,
                    s.answer_source,
                    s.error,
                    s.invalid_reason,
                    s.http_status,
                    s.usage_json,
                    s.origin,
                    sha,
                    now,
                    id
                ],
            )?;
            put_payload(tx, id, &s.payload)?;
            Ok(PutOutcome::ReplacedInvalid)
        }
        None => {
            tx.prepare_cached("INSERT INTO samples (cell, condition, idx, layered_id, valid, prompt, response, provider, model_returned, \
                 model_requested, duration_ms, finish_reason, truncated, upstream_error, answer_source, error, invalid_reason, \
                 http_status, usage_json, origin, content_sha256, imported_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22)")?.execute(params![
                    s.cell,
                    s.condition,
                    s.idx,
                    format!("{}_{}_{}", s.cell, s.condition, s.idx),
                    s.valid as i64,
                    s.prompt,
                    s.response,
                    s.provider,
                    s.model_returned,
                    s.model_requested,
                    s.duration_ms.map(|d| d as i64),
                    s.finish_reason,
                    s.truncated as i64,
                    s.upstream_error as i64,
                    s.answer_source,
                    s.error,
                    s.invalid_reason,
                    s.http_status,
                    s.usage_json,
                    s.origin,
                    sha,
                    now
                ],
            )?;
            put_payload(tx, tx.last_insert_rowid(), &s.payload)?;
            Ok(PutOutcome::Inserted)
        }
    }
}

/// Commit one attempt and, when the item finished, its sample, in one transaction.
pub fn commit_attempt(
    tx: &Transaction,
    attempt: &AttemptRow,
    sample: Option<&SampleRow>,
) -> Result<Option<PutOutcome>, Error> {
    insert_attempt(tx, attempt)?;
    match sample {
        Some(s) => Ok(Some(put_sample(tx, s)?)),
        None => Ok(None),
    }
}

/// What the store already holds, for planning a run.
#[derive(Debug, Default, Clone)]
pub struct CollectState {
    /// Work keys with a committed valid attempt.
    pub done_keys: HashSet<String>,
    /// Highest attempt number per work key.
    pub attempts: HashMap<String, u32>,
    /// (cell, condition, idx) slots holding a valid sample, from any origin.
    pub valid_slots: HashSet<(String, String, u32)>,
}

/// Read the collection state.
pub fn collect_state(store: &Store) -> Result<CollectState, Error> {
    let conn = store.conn();
    let mut st = CollectState::default();
    let mut q =
        conn.prepare("SELECT work_key, MAX(attempt), MAX(valid) FROM attempts GROUP BY work_key")?;
    let rows = q.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, i64>(2)?,
        ))
    })?;
    for row in rows {
        let (k, a, v) = row?;
        if v == 1 {
            st.done_keys.insert(k.clone());
        }
        st.attempts.insert(k, a.max(0) as u32);
    }
    let mut q = conn.prepare("SELECT cell, condition, idx FROM samples WHERE valid = 1")?;
    let rows = q.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, i64>(2)?,
        ))
    })?;
    for row in rows {
        let (c, k, i) = row?;
        st.valid_slots.insert((c, k, i.max(0) as u32));
    }
    Ok(st)
}

/// Per-cell, per-condition counts of valid and invalid samples.
pub fn sample_counts(store: &Store) -> Result<Vec<(String, String, u64, u64)>, Error> {
    let mut q = store.conn().prepare(
        "SELECT cell, condition, SUM(valid), SUM(1 - valid) FROM samples GROUP BY cell, condition ORDER BY cell, condition",
    )?;
    let rows = q.query_map([], |r| {
        Ok((
            r.get(0)?,
            r.get(1)?,
            r.get::<_, i64>(2)? as u64,
            r.get::<_, i64>(3)? as u64,
        ))
    })?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

/// Why attempts of one collection run failed: per cell, each distinct (reason, HTTP
/// status, error) with how many attempts ended so and the start of one such response
/// body, most frequent first. Texts are as stored (redacted by the providers).
#[derive(Debug, Clone, PartialEq)]
pub struct FailureCause {
    /// Cell.
    pub cell: String,
    /// Invalidity reason (`connection`, `http_error`, ...).
    pub reason: String,
    /// HTTP status, if a response came.
    pub http_status: Option<i64>,
    /// The error text.
    pub error: String,
    /// The start of the response body (empty if none).
    pub body: String,
    /// Attempts that failed so.
    pub attempts: u64,
}

/// [`FailureCause`]s of run `run_id`.
pub fn failure_causes(store: &Store, run_id: i64) -> Result<Vec<FailureCause>, Error> {
    let mut stmt = store.conn().prepare(
        "SELECT cell, COALESCE(reason, ''), http_status, COALESCE(error, ''),
                substr(COALESCE(MAX(CASE WHEN response IS NOT NULL THEN response END), ''), 1, 300),
                COUNT(*)
         FROM attempts WHERE run_id = ?1 AND valid = 0
         GROUP BY cell, reason, http_status, error
         ORDER BY cell, COUNT(*) DESC, reason, error",
    )?;
    let rows = stmt.query_map([run_id], |r| {
        Ok(FailureCause {
            cell: r.get(0)?,
            reason: r.get(1)?,
            http_status: r.get(2)?,
            error: r.get(3)?,
            body: r.get(4)?,
            attempts: r.get::<_, i64>(5)?.max(0) as u64,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Attempt tallies: (valid attempts, invalid attempts, invalid attempts by reason).
pub fn attempt_tally(store: &Store) -> Result<(u64, u64, Vec<(String, u64)>), Error> {
    let conn = store.conn();
    let (v, i): (i64, i64) = conn.query_row(
        "SELECT COALESCE(SUM(valid), 0), COALESCE(SUM(1 - valid), 0) FROM attempts",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let mut q = conn.prepare(
        "SELECT reason, COUNT(*) FROM attempts WHERE valid = 0 GROUP BY reason ORDER BY reason",
    )?;
    let rows = q.query_map([], |r| {
        Ok((
            r.get::<_, Option<String>>(0)?.unwrap_or_default(),
            r.get::<_, i64>(1)? as u64,
        ))
    })?;
    Ok((v as u64, i as u64, rows.collect::<Result<Vec<_>, _>>()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(valid: bool, text: &str) -> SampleRow {
        SampleRow {
            cell: "m-or".into(),
            source_model: "m".into(),
            model: "m".into(),
            condition: "G1".into(),
            idx: 1,
            valid,
            prompt: "p".into(),
            response: valid.then(|| text.to_string()),
            provider: "openrouter".into(),
            model_requested: "x/m".into(),
            payload: format!("{{\"result\":\"{text}\"}}"),
            origin: "collect:1".into(),
            ..Default::default()
        }
    }

    #[test]
    fn top_up_rule_and_one_valid_attempt_per_key() {
        let mut store = Store::open_in_memory().unwrap();
        let a = AttemptRow {
            work_key: "k".into(),
            cell: "m-or".into(),
            condition: "G1".into(),
            idx: 1,
            attempt: 1,
            trace_json: "{}".into(),
            ..Default::default()
        };
        let out = store
            .transaction(|tx| commit_attempt(tx, &a, Some(&sample(false, ""))))
            .unwrap();
        assert_eq!(out, Some(PutOutcome::Inserted));
        let a2 = AttemptRow {
            attempt: 2,
            valid: true,
            ..a.clone()
        };
        let out = store
            .transaction(|tx| commit_attempt(tx, &a2, Some(&sample(true, "hi"))))
            .unwrap();
        assert_eq!(out, Some(PutOutcome::ReplacedInvalid));
        let a3 = AttemptRow {
            attempt: 3,
            valid: true,
            ..a.clone()
        };
        // A second valid attempt for the same key is refused by the partial unique index.
        assert!(store
            .transaction(|tx| commit_attempt(tx, &a3, Some(&sample(true, "other"))))
            .is_err());
        let st = collect_state(&store).unwrap();
        assert!(st.done_keys.contains("k"));
        assert_eq!(st.attempts["k"], 2);
        assert!(st
            .valid_slots
            .contains(&("m-or".to_string(), "G1".to_string(), 1)));
        assert_eq!(
            sample_counts(&store).unwrap(),
            vec![("m-or".into(), "G1".into(), 1, 0)]
        );
    }

    #[test]
    fn rfc3339_shape() {
        let s = now_rfc3339();
        assert_eq!(s.len(), 20);
        assert!(s.ends_with('Z') && s.as_bytes()[10] == b'T');
    }
}
