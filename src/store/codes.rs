//! SQL for codes (migration 0002): per-coder codes, consensus rows, the coder failure
//! ledger and the coder request cache.
//!
//! Per-coder codes are facts keyed by (sample, layer, coder, source, rubric hash); the
//! same vote arriving twice (e.g. a phase-4 coder file and the `coder_records` of the
//! consensus file) merges, filling missing columns, and a different vote for the same
//! key is reported as a conflict, never overwritten. Consensus rows are derived and may
//! be deleted and recomputed. Layers and sources are plain strings at this edge
//! (`a`/`b`; `published`/`models`/`offline`).

use rusqlite::{params, Connection, OptionalExtension};

use super::Error;

/// A per-coder code to store.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NewCode {
    /// `samples.id`.
    pub sample_id: i64,
    /// `a` or `b`.
    pub layer: String,
    /// Coder key.
    pub coder: String,
    /// `published` (imported), `models` (coded live by vuf) or `offline`.
    pub source: String,
    /// sha256 of the rubric text (or a tag such as `published` for imported codes).
    pub rubric_hash: String,
    /// Layer A topic keys.
    pub topics: Option<Vec<String>>,
    /// Layer A parse_clean.
    pub parse_clean: Option<bool>,
    /// Layer B collapsed label.
    pub label: Option<String>,
    /// Layer B label as the coder wrote it / draft label.
    pub original_label: Option<String>,
    /// Layer B value-holding.
    pub value_holding: Option<String>,
    /// Layer B secondary texture.
    pub secondary_texture: Option<String>,
    /// Layer B boundary flag.
    pub boundary_flag: Option<bool>,
    /// Layer B notes.
    pub notes: Option<String>,
    /// Confidence (offline coders).
    pub confidence: Option<f64>,
    /// Reply text.
    pub raw_text: Option<String>,
    /// Full provider response / original record (JSON text).
    pub raw_json: Option<String>,
    /// Call parameters (JSON text).
    pub params_json: Option<String>,
    /// Parse flags or unclean reason (JSON text).
    pub flags_json: Option<String>,
    /// Where it came from (`import:<path>:<line>`, `live:<run>`).
    pub origin: String,
    /// UTC ISO-8601.
    pub coded_at: String,
}

/// Outcome of [`upsert_code`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeUpsert {
    /// New row.
    Inserted,
    /// Same vote already stored; nothing new.
    Unchanged,
    /// Same vote already stored; missing columns filled in.
    Filled,
    /// A different vote is stored under the same key; kept, not overwritten.
    Conflict {
        /// The stored vote (label or topics).
        existing: String,
    },
}

fn topics_json(t: &Option<Vec<String>>) -> Option<String> {
    t.as_ref()
        .map(|v| serde_json::Value::from(v.clone()).to_string())
}

/// Insert a per-coder code, or merge it with the same stored vote (see module doc).
pub fn upsert_code(conn: &Connection, c: &NewCode) -> Result<CodeUpsert, Error> {
    let tj = topics_json(&c.topics);
    let existing: Option<(i64, Option<String>, Option<String>, Option<String>)> = conn
        .query_row(
            "SELECT id, topics_json, label, value_holding FROM codes
             WHERE sample_id=?1 AND layer=?2 AND coder=?3 AND source=?4 AND rubric_hash=?5",
            params![c.sample_id, c.layer, c.coder, c.source, c.rubric_hash],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .optional()?;
    let Some((id, e_topics, e_label, e_holding)) = existing else {
        conn.execute(
            "INSERT INTO codes (sample_id, layer, coder, source, rubric_hash, topics_json, parse_clean,
               label, original_label, value_holding, secondary_texture, boundary_flag, notes, confidence,
               raw_text, raw_json, params_json, flags_json, origin, coded_at)
             VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17,?18,?19,?20)",
            params![
                c.sample_id,
                c.layer,
                c.coder,
                c.source,
                c.rubric_hash,
                tj,
                c.parse_clean,
                c.label,
                c.original_label,
                c.value_holding,
                c.secondary_texture,
                c.boundary_flag,
                c.notes,
                c.confidence,
                c.raw_text,
                c.raw_json,
                c.params_json,
                c.flags_json,
                c.origin,
                c.coded_at
            ],
        )?;
        return Ok(CodeUpsert::Inserted);
    };
    let same_vote = e_topics == tj
        && e_label == c.label
        && (c.value_holding.is_none() || e_holding == c.value_holding);
    if !same_vote {
        let existing = e_label.or(e_topics).unwrap_or_default();
        return Ok(CodeUpsert::Conflict { existing });
    }
    let changed = conn.execute(
        "UPDATE codes SET
            parse_clean = COALESCE(parse_clean, ?2), original_label = COALESCE(original_label, ?3),
            value_holding = COALESCE(value_holding, ?4), secondary_texture = COALESCE(secondary_texture, ?5),
            boundary_flag = COALESCE(boundary_flag, ?6), notes = COALESCE(notes, ?7),
            raw_text = COALESCE(raw_text, ?8), raw_json = COALESCE(raw_json, ?9),
            params_json = COALESCE(params_json, ?10), flags_json = COALESCE(flags_json, ?11)
         WHERE id = ?1 AND (
            (parse_clean IS NULL AND ?2 IS NOT NULL) OR (original_label IS NULL AND ?3 IS NOT NULL) OR
            (value_holding IS NULL AND ?4 IS NOT NULL) OR (secondary_texture IS NULL AND ?5 IS NOT NULL) OR
            (boundary_flag IS NULL AND ?6 IS NOT NULL) OR (notes IS NULL AND ?7 IS NOT NULL) OR
            (raw_text IS NULL AND ?8 IS NOT NULL) OR (raw_json IS NULL AND ?9 IS NOT NULL) OR
            (params_json IS NULL AND ?10 IS NOT NULL) OR (flags_json IS NULL AND ?11 IS NOT NULL))",
        params![
            id,
            c.parse_clean,
            c.original_label,
            c.value_holding,
            c.secondary_texture,
            c.boundary_flag,
            c.notes,
            c.raw_text,
            c.raw_json,
            c.params_json,
            c.flags_json
        ],
    )?;
    Ok(if changed > 0 {
        CodeUpsert::Filled
    } else {
        CodeUpsert::Unchanged
    })
}

/// A stored per-coder code.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredCode {
    /// Row id.
    pub id: i64,
    /// `samples.id`.
    pub sample_id: i64,
    /// Coder key.
    pub coder: String,
    /// Source.
    pub source: String,
    /// Rubric hash.
    pub rubric_hash: String,
    /// Layer A topics.
    pub topics: Option<Vec<String>>,
    /// Layer A parse_clean.
    pub parse_clean: Option<bool>,
    /// Layer B label.
    pub label: Option<String>,
    /// Layer B original label.
    pub original_label: Option<String>,
    /// Layer B value-holding.
    pub value_holding: Option<String>,
    /// Layer B texture.
    pub secondary_texture: Option<String>,
    /// Layer B boundary flag.
    pub boundary_flag: Option<bool>,
    /// Notes.
    pub notes: Option<String>,
    /// Reply text.
    pub raw_text: Option<String>,
    /// When coded.
    pub coded_at: String,
}

fn stored_code(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredCode> {
    let topics: Option<String> = r.get(5)?;
    Ok(StoredCode {
        id: r.get(0)?,
        sample_id: r.get(1)?,
        coder: r.get(2)?,
        source: r.get(3)?,
        rubric_hash: r.get(4)?,
        topics: topics.and_then(|t| serde_json::from_str(&t).ok()),
        parse_clean: r.get(6)?,
        label: r.get(7)?,
        original_label: r.get(8)?,
        value_holding: r.get(9)?,
        secondary_texture: r.get(10)?,
        boundary_flag: r.get(11)?,
        notes: r.get(12)?,
        raw_text: r.get(13)?,
        coded_at: r.get(14)?,
    })
}

const CODE_COLS: &str =
    "id, sample_id, coder, source, rubric_hash, topics_json, parse_clean, label, original_label,
    value_holding, secondary_texture, boundary_flag, notes, raw_text, coded_at";

/// Per-coder codes of a layer from the given sources, ordered by sample, coder, then
/// preference: sources in the order given, newest first. Callers take the first row
/// per (sample, coder).
pub fn codes_for_consensus(
    conn: &Connection,
    layer: &str,
    sources: &[&str],
) -> Result<Vec<StoredCode>, Error> {
    let mut out = Vec::new();
    let mut stmt = conn.prepare(&format!(
        "SELECT {CODE_COLS} FROM codes WHERE layer = ?1 AND source = ?2 ORDER BY sample_id, coder, coded_at DESC, id DESC"
    ))?;
    for (rank, source) in sources.iter().enumerate() {
        let rows = stmt.query_map(params![layer, source], stored_code)?;
        for r in rows {
            out.push((rank, r?));
        }
    }
    out.sort_by(|(ra, a), (rb, b)| (a.sample_id, &a.coder, *ra).cmp(&(b.sample_id, &b.coder, *rb)));
    Ok(out.into_iter().map(|(_, c)| c).collect())
}

/// Whether a code exists for this key (resume: the runner skips it).
pub fn code_exists(
    conn: &Connection,
    sample_id: i64,
    layer: &str,
    coder: &str,
    source: &str,
    rubric_hash: &str,
) -> Result<bool, Error> {
    Ok(conn
        .query_row(
            "SELECT 1 FROM codes WHERE sample_id=?1 AND layer=?2 AND coder=?3 AND source=?4 AND rubric_hash=?5",
            params![sample_id, layer, coder, source, rubric_hash],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

/// Per-coder codes of one sample and layer (all sources), for audit views.
pub fn codes_of_sample(
    conn: &Connection,
    sample_id: i64,
    layer: &str,
) -> Result<Vec<StoredCode>, Error> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {CODE_COLS} FROM codes WHERE sample_id = ?1 AND layer = ?2 ORDER BY coder, source, id"
    ))?;
    let rows = stmt.query_map(params![sample_id, layer], stored_code)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Count of codes per (layer, coder, source), for `vuf status`.
pub fn code_counts(conn: &Connection) -> Result<Vec<(String, String, String, i64)>, Error> {
    let mut stmt = conn.prepare(
        "SELECT layer, coder, source, COUNT(*) FROM codes GROUP BY layer, coder, source ORDER BY layer, coder, source",
    )?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// A consensus row to store.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NewConsensus {
    /// `samples.id`.
    pub sample_id: i64,
    /// `a` / `b`.
    pub layer: String,
    /// `published` / `models` / `offline`.
    pub source: String,
    /// Rubric hash(es) of the votes (`+`-joined when mixed).
    pub rubric_hash: String,
    /// Layer B winning label.
    pub label: Option<String>,
    /// Its support.
    pub label_support: Option<i64>,
    /// Label votes (JSON object text).
    pub label_votes_json: Option<String>,
    /// Winning holding.
    pub value_holding: Option<String>,
    /// Its support.
    pub value_holding_support: Option<i64>,
    /// Holding votes (JSON object text).
    pub value_holding_votes_json: Option<String>,
    /// Layer A consensus topics (JSON list of `{topic_key, supporting_coders}`).
    pub topics_json: Option<String>,
    /// Whether coders disagreed.
    pub has_disagreement: bool,
    /// Original imported record, or the computed record.
    pub record_json: Option<String>,
}

/// Insert or replace a consensus row.
pub fn upsert_consensus(conn: &Connection, c: &NewConsensus) -> Result<(), Error> {
    conn.execute(
        "INSERT OR REPLACE INTO consensus (sample_id, layer, source, rubric_hash, label, label_support,
           label_votes_json, value_holding, value_holding_support, value_holding_votes_json, topics_json,
           has_disagreement, record_json)
         VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13)",
        params![
            c.sample_id,
            c.layer,
            c.source,
            c.rubric_hash,
            c.label,
            c.label_support,
            c.label_votes_json,
            c.value_holding,
            c.value_holding_support,
            c.value_holding_votes_json,
            c.topics_json,
            c.has_disagreement,
            c.record_json
        ],
    )?;
    Ok(())
}

/// The stored consensus row of one sample, layer and source, if any.
pub fn consensus_of(
    conn: &Connection,
    sample_id: i64,
    layer: &str,
    source: &str,
) -> Result<Option<NewConsensus>, Error> {
    Ok(conn
        .prepare_cached(
            "SELECT rubric_hash, label, label_support, label_votes_json, value_holding,
                    value_holding_support, value_holding_votes_json, topics_json, has_disagreement,
                    record_json
             FROM consensus WHERE sample_id = ?1 AND layer = ?2 AND source = ?3",
        )?
        .query_row(params![sample_id, layer, source], |r| {
            Ok(NewConsensus {
                sample_id,
                layer: layer.to_string(),
                source: source.to_string(),
                rubric_hash: r.get(0)?,
                label: r.get(1)?,
                label_support: r.get(2)?,
                label_votes_json: r.get(3)?,
                value_holding: r.get(4)?,
                value_holding_support: r.get(5)?,
                value_holding_votes_json: r.get(6)?,
                topics_json: r.get(7)?,
                has_disagreement: r.get(8)?,
                record_json: r.get(9)?,
            })
        })
        .optional()?)
}

/// Delete the consensus rows of a layer and source (before a recompute).
pub fn delete_consensus(conn: &Connection, layer: &str, source: &str) -> Result<usize, Error> {
    Ok(conn.execute(
        "DELETE FROM consensus WHERE layer = ?1 AND source = ?2",
        params![layer, source],
    )?)
}

/// A stored consensus row joined with its sample.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredConsensus {
    /// The consensus columns.
    pub row: NewConsensus,
    /// Sample join key.
    pub layered_id: Option<String>,
    /// Cell.
    pub cell: String,
    /// Source model of the cell.
    pub source_model: String,
    /// Condition label.
    pub condition: String,
    /// Sample index.
    pub idx: i64,
}

/// Consensus rows of a layer and source, in sample order.
pub fn consensus_rows(
    conn: &Connection,
    layer: &str,
    source: &str,
) -> Result<Vec<StoredConsensus>, Error> {
    let mut stmt = conn.prepare(
        "SELECT c.sample_id, c.layer, c.source, c.rubric_hash, c.label, c.label_support, c.label_votes_json,
                c.value_holding, c.value_holding_support, c.value_holding_votes_json, c.topics_json,
                c.has_disagreement, c.record_json, s.layered_id, s.cell, cl.source_model, s.condition, s.idx
         FROM consensus c JOIN samples s ON s.id = c.sample_id JOIN cells cl ON cl.cell = s.cell
         WHERE c.layer = ?1 AND c.source = ?2 ORDER BY c.sample_id",
    )?;
    let rows = stmt.query_map(params![layer, source], |r| {
        Ok(StoredConsensus {
            row: NewConsensus {
                sample_id: r.get(0)?,
                layer: r.get(1)?,
                source: r.get(2)?,
                rubric_hash: r.get(3)?,
                label: r.get(4)?,
                label_support: r.get(5)?,
                label_votes_json: r.get(6)?,
                value_holding: r.get(7)?,
                value_holding_support: r.get(8)?,
                value_holding_votes_json: r.get(9)?,
                topics_json: r.get(10)?,
                has_disagreement: r.get(11)?,
                record_json: r.get(12)?,
            },
            layered_id: r.get(13)?,
            cell: r.get(14)?,
            source_model: r.get(15)?,
            condition: r.get(16)?,
            idx: r.get(17)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// A sample's join keys (for matching imported code rows).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SampleKey {
    /// `samples.id`.
    pub id: i64,
    /// Layered id, if any.
    pub layered_id: Option<String>,
    /// Cell.
    pub cell: String,
    /// Condition.
    pub condition: String,
    /// Index.
    pub idx: i64,
    /// Whether the sample is valid.
    pub valid: bool,
    /// Source model of the sample's cell (empty if the cell is unknown).
    pub source_model: String,
}

/// Every sample's join keys, in id order.
pub fn sample_keys(conn: &Connection) -> Result<Vec<SampleKey>, Error> {
    let mut stmt = conn.prepare(
        "SELECT s.id, s.layered_id, s.cell, s.condition, s.idx, s.valid, COALESCE(c.source_model, '')
         FROM samples s LEFT JOIN cells c ON c.cell = s.cell ORDER BY s.id",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(SampleKey {
            id: r.get(0)?,
            layered_id: r.get(1)?,
            cell: r.get(2)?,
            condition: r.get(3)?,
            idx: r.get(4)?,
            valid: r.get(5)?,
            source_model: r.get(6)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// A sample to code: join keys plus the text the coders see.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleToCode {
    /// `samples.id`.
    pub id: i64,
    /// Layered id (or `<cell>_<COND>_<idx>`).
    pub layered_id: String,
    /// Cell.
    pub cell: String,
    /// Condition label.
    pub condition: String,
    /// Index.
    pub idx: i64,
    /// Prompt.
    pub prompt: String,
    /// Response.
    pub response: String,
}

/// Valid samples with a response, in id order.
pub fn samples_to_code(conn: &Connection) -> Result<Vec<SampleToCode>, Error> {
    let mut stmt = conn.prepare(
        "SELECT id, layered_id, cell, condition, idx, prompt, response FROM samples
         WHERE valid = 1 AND response IS NOT NULL ORDER BY id",
    )?;
    let rows = stmt.query_map([], |r| {
        let cell: String = r.get(2)?;
        let condition: String = r.get(3)?;
        let idx: i64 = r.get(4)?;
        let lid: Option<String> = r.get(1)?;
        Ok(SampleToCode {
            id: r.get(0)?,
            layered_id: lid.unwrap_or_else(|| format!("{cell}_{condition}_{idx}")),
            cell,
            condition,
            idx,
            prompt: r.get(5)?,
            response: r.get(6)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// A failure-ledger entry to record.
#[derive(Debug, Clone, PartialEq)]
pub struct NewFailure {
    /// `samples.id`.
    pub sample_id: i64,
    /// `a` / `b`.
    pub layer: String,
    /// Coder key.
    pub coder: String,
    /// Rubric hash.
    pub rubric_hash: String,
    /// `call_failed` | `parse_failed` | `unclean`.
    pub kind: String,
    /// Reason.
    pub error: String,
    /// Reply text, if any.
    pub raw_text: Option<String>,
    /// Attempt number (1 = first ask, 2 = re-ask).
    pub attempt: i64,
    /// When.
    pub failed_at: String,
}

/// Append a ledger line.
pub fn record_failure(conn: &Connection, f: &NewFailure) -> Result<(), Error> {
    conn.execute(
        "INSERT INTO coder_failures (sample_id, layer, coder, rubric_hash, kind, error, raw_text, attempt, failed_at)
         VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9)",
        params![
            f.sample_id,
            f.layer,
            f.coder,
            f.rubric_hash,
            f.kind,
            f.error,
            f.raw_text,
            f.attempt,
            f.failed_at
        ],
    )?;
    Ok(())
}

/// Mark the open ledger lines of (sample, layer, coder, rubric) resolved (a code landed).
pub fn resolve_failures(
    conn: &Connection,
    sample_id: i64,
    layer: &str,
    coder: &str,
    rubric_hash: &str,
) -> Result<usize, Error> {
    Ok(conn.execute(
        "UPDATE coder_failures SET resolved = 1
         WHERE sample_id=?1 AND layer=?2 AND coder=?3 AND rubric_hash=?4 AND resolved = 0",
        params![sample_id, layer, coder, rubric_hash],
    )?)
}

/// A ledger line.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredFailure {
    /// `samples.id`.
    pub sample_id: i64,
    /// Layer.
    pub layer: String,
    /// Coder.
    pub coder: String,
    /// Kind.
    pub kind: String,
    /// Reason.
    pub error: String,
    /// Reply text.
    pub raw_text: Option<String>,
    /// Attempt.
    pub attempt: i64,
    /// Resolved.
    pub resolved: bool,
}

/// Every ledger line, in order.
pub fn failures(conn: &Connection) -> Result<Vec<StoredFailure>, Error> {
    let mut stmt = conn.prepare(
        "SELECT sample_id, layer, coder, kind, error, raw_text, attempt, resolved FROM coder_failures ORDER BY id",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(StoredFailure {
            sample_id: r.get(0)?,
            layer: r.get(1)?,
            coder: r.get(2)?,
            kind: r.get(3)?,
            error: r.get(4)?,
            raw_text: r.get(5)?,
            attempt: r.get(6)?,
            resolved: r.get(7)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Outstanding failures: distinct (sample, layer, coder) with an open ledger line whose
/// call or parse failed (no code stored). `vuf status` shows this.
pub fn outstanding_failures(conn: &Connection) -> Result<i64, Error> {
    Ok(conn.query_row(
        "SELECT COUNT(*) FROM (SELECT DISTINCT sample_id, layer, coder FROM coder_failures
           WHERE resolved = 0 AND kind IN ('call_failed', 'parse_failed'))",
        [],
        |r| r.get(0),
    )?)
}

/// Outstanding failures per coder key (samples x layers), by key.
pub fn outstanding_failures_by_coder(conn: &Connection) -> Result<Vec<(String, i64)>, Error> {
    let mut stmt = conn.prepare(
        "SELECT coder, COUNT(*) FROM (SELECT DISTINCT sample_id, layer, coder FROM coder_failures
           WHERE resolved = 0 AND kind IN ('call_failed', 'parse_failed'))
         GROUP BY coder ORDER BY coder",
    )?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// A distinct cause of outstanding coder failures: what `vuf code` prints so a researcher
/// sees why calls failed without reading the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailureCause {
    /// `a` or `b`.
    pub layer: String,
    /// Coder key.
    pub coder: String,
    /// `call_failed` or `parse_failed`.
    pub kind: String,
    /// The error as recorded.
    pub error: String,
    /// The start of the coder's reply (parse failures), else empty.
    pub reply: String,
    /// Samples failing so.
    pub samples: u64,
}

/// Outstanding failures grouped by (layer, coder, kind, error), most samples first, the
/// latest attempt of each sample only.
pub fn outstanding_failure_causes(conn: &Connection) -> Result<Vec<FailureCause>, Error> {
    let mut stmt = conn.prepare(
        "SELECT layer, coder, kind, error, substr(COALESCE(MAX(raw_text), ''), 1, 300), COUNT(DISTINCT sample_id)
         FROM coder_failures f
         WHERE resolved = 0 AND kind IN ('call_failed', 'parse_failed')
           AND id = (SELECT MAX(id) FROM coder_failures g
                     WHERE g.sample_id = f.sample_id AND g.layer = f.layer AND g.coder = f.coder
                       AND g.resolved = 0 AND g.kind IN ('call_failed', 'parse_failed'))
         GROUP BY layer, coder, kind, error
         ORDER BY layer, coder, COUNT(DISTINCT sample_id) DESC, kind, error",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(FailureCause {
            layer: r.get(0)?,
            coder: r.get(1)?,
            kind: r.get(2)?,
            error: r.get(3)?,
            reply: r.get(4)?,
            samples: r.get::<_, i64>(5)?.max(0) as u64,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Cached reply for a request key.
pub fn cache_get(conn: &Connection, key: &str) -> Result<Option<String>, Error> {
    Ok(conn
        .query_row(
            "SELECT reply_json FROM code_cache WHERE key = ?1",
            params![key],
            |r| r.get(0),
        )
        .optional()?)
}

/// Store a reply under a request key (replacing an older one: a re-sent request is one
/// whose earlier reply was unusable).
pub fn cache_put(
    conn: &Connection,
    key: &str,
    reply_json: &str,
    created_at: &str,
) -> Result<(), Error> {
    conn.execute(
        "INSERT OR REPLACE INTO code_cache (key, reply_json, created_at) VALUES (?1, ?2, ?3)",
        params![key, reply_json, created_at],
    )?;
    Ok(())
}

/// Number of cache entries.
pub fn cache_len(conn: &Connection) -> Result<i64, Error> {
    Ok(conn.query_row("SELECT COUNT(*) FROM code_cache", [], |r| r.get(0))?)
}

/// Record that `coder` was not asked for this sample and layer by design (sequential
/// majority). Idempotent.
pub fn record_skip(
    conn: &Connection,
    sample_id: i64,
    layer: &str,
    coder: &str,
    rubric_hash: &str,
    origin: &str,
    skipped_at: &str,
) -> Result<(), Error> {
    conn.execute(
        "INSERT OR IGNORE INTO coder_skips (sample_id, layer, coder, rubric_hash, reason, origin, skipped_at)
         VALUES (?1, ?2, ?3, ?4, 'sequential_majority', ?5, ?6)",
        params![sample_id, layer, coder, rubric_hash, origin, skipped_at],
    )?;
    Ok(())
}

/// Coders skipped by design per sample for a layer (any rubric), sorted; a coder that
/// has a code anyway is the caller's to drop.
pub fn skipped_coders(
    conn: &Connection,
    layer: &str,
) -> Result<std::collections::HashMap<i64, Vec<String>>, Error> {
    let mut stmt = conn.prepare(
        "SELECT DISTINCT sample_id, coder FROM coder_skips WHERE layer = ?1 ORDER BY sample_id, coder",
    )?;
    let rows = stmt.query_map(params![layer], |r| {
        Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
    })?;
    let mut out: std::collections::HashMap<i64, Vec<String>> = Default::default();
    for row in rows {
        let (id, coder) = row?;
        out.entry(id).or_default().push(coder);
    }
    Ok(out)
}

/// Layer A consensus topic keys per sample, preferring vuf's own (`models`) consensus
/// over the imported (`published`) one; shown to Layer B coders (PROTOCOL 5.3).
pub fn consensus_topic_keys(
    conn: &Connection,
) -> Result<std::collections::HashMap<i64, Vec<String>>, Error> {
    let mut out = std::collections::HashMap::new();
    let mut stmt = conn.prepare(
        "SELECT sample_id, topics_json FROM consensus WHERE layer = 'a' AND source IN ('published', 'models')
         ORDER BY CASE source WHEN 'published' THEN 0 ELSE 1 END",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok((r.get::<_, i64>(0)?, r.get::<_, Option<String>>(1)?))
    })?;
    for row in rows {
        let (id, tj) = row?;
        let topics: Vec<serde_json::Value> = tj
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default();
        let keys = topics
            .iter()
            .filter_map(|t| {
                t.get("topic_key")
                    .and_then(serde_json::Value::as_str)
                    .map(str::to_string)
            })
            .collect();
        out.insert(id, keys); // later rows (models) overwrite earlier (published)
    }
    Ok(out)
}

/// (sample, coder) pairs with an open parse failure for a layer and rubric: their cached
/// replies were unusable, so the runner sends those requests again.
pub fn open_parse_failures(
    conn: &Connection,
    layer: &str,
    rubric_hash: &str,
) -> Result<std::collections::HashSet<(i64, String)>, Error> {
    let mut stmt = conn.prepare(
        "SELECT DISTINCT sample_id, coder FROM coder_failures
         WHERE resolved = 0 AND kind = 'parse_failed' AND layer = ?1 AND rubric_hash = ?2",
    )?;
    let rows = stmt.query_map(params![layer, rubric_hash], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}
