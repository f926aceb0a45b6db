//! The store side of the analysis hand-over: valid samples joined with the consensus of
//! one code source, as plain [`CodedSample`] rows in first-appearance order.
//!
//! Valid samples with no Layer B consensus from that source are not analysed; they are
//! returned as exclusions with the reason `missing posture consensus` (PROTOCOL 7.1), so
//! the analysis writes them to `exclusions.csv` instead of dropping them silently.
//! Samples of a custom condition (`[[design.custom]]` of a study file) are outside the
//! frozen analysis, which covers the six conditions: they are exclusions too, with the
//! reason [`custom_condition_reason`], and are also returned on their own
//! ([`CodedSet::custom`]) so the analysis can count them in a table of their own.

use std::collections::HashMap;

use rusqlite::Connection;
use serde_json::Value;

use super::{imports, models, Error};
use crate::protocol::{
    manifest_model_family, CodeSource, CodedSample, CoderVote, Condition, CustomSample, ModelMeta,
    PostureLabel, SampleCondition, ValueHolding,
};

/// Reason recorded for a valid sample without Layer B consensus.
pub const REASON_MISSING_POSTURE: &str = "missing posture consensus";

/// Reason recorded for a valid sample of a custom condition, coded or not.
pub fn custom_condition_reason(condition: &str) -> String {
    format!("custom condition {condition}: outside the frozen analysis")
}

/// Rows for the analysis plus the samples that could not be analysed.
#[derive(Debug, Clone, Default)]
pub struct CodedSet {
    /// Analysable rows, in sample (first-appearance) order.
    pub rows: Vec<CodedSample>,
    /// `(layered_id, reason)` for valid samples left out.
    pub excluded: Vec<(String, String)>,
    /// The valid samples of custom conditions (each also in `excluded`), in sample order,
    /// with their Layer B consensus of this source where there is one.
    pub custom: Vec<CustomSample>,
}

/// Code sources with at least one Layer B consensus row, in `CodeSource` order.
pub fn available_sources(conn: &Connection) -> Result<Vec<CodeSource>, Error> {
    available_sources_in(conn, "b")
}

/// [`available_sources`] of one layer (`a` or `b`).
pub fn available_sources_in(conn: &Connection, layer: &str) -> Result<Vec<CodeSource>, Error> {
    let mut stmt = conn.prepare("SELECT DISTINCT source FROM consensus WHERE layer = ?1")?;
    let names = stmt.query_map([layer], |r| r.get::<_, String>(0))?;
    let mut out: Vec<CodeSource> = names
        .collect::<Result<Vec<_>, _>>()?
        .iter()
        .filter_map(|s| CodeSource::parse(s))
        .collect();
    out.sort();
    Ok(out)
}

/// Per code source, how many valid samples have a Layer B consensus value_holding (what
/// the analysis can use), in source order.
pub fn coverage(conn: &Connection) -> Result<Vec<(CodeSource, usize)>, Error> {
    coverage_in(conn, "b")
}

/// [`coverage`] by the consensus rows of one layer (`a` or `b`; a Layer A row counts
/// when it was decided, whatever its topics).
pub fn coverage_in(conn: &Connection, layer: &str) -> Result<Vec<(CodeSource, usize)>, Error> {
    let mut stmt = conn.prepare(
        "SELECT c.source, COUNT(*) FROM consensus c JOIN samples s ON s.id = c.sample_id
         WHERE c.layer = ?1 AND s.valid = 1 AND (c.layer = 'a' OR c.value_holding IS NOT NULL)
         GROUP BY c.source",
    )?;
    let rows = stmt.query_map([layer], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (name, n) = row?;
        if let Some(source) = CodeSource::parse(&name) {
            out.push((source, n.max(0) as usize));
        }
    }
    out.sort();
    Ok(out)
}

/// Which per-coder code sources supply the votes shown beside a consensus source.
fn vote_sources(source: CodeSource) -> &'static [&'static str] {
    match source {
        CodeSource::Published => &["published"],
        CodeSource::Models | CodeSource::Cascade => &["models", "published"],
        CodeSource::Offline => &["offline"],
    }
}

/// The fields of a stored consensus record the analysis reads.
#[derive(Debug, Default, serde::Deserialize)]
struct RecordFields {
    #[serde(default, deserialize_with = "lenient_str")]
    sample_id: Option<String>,
    #[serde(default, deserialize_with = "lenient_f64")]
    confidence: Option<f64>,
}

/// A string field, `None` when it holds anything else (as the untyped lookup did).
fn lenient_str<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match <Value as serde::Deserialize>::deserialize(d)? {
        Value::String(s) => Some(s),
        _ => None,
    })
}

/// A numeric field, `None` when it holds anything else.
fn lenient_f64<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    Ok(<Value as serde::Deserialize>::deserialize(d)?.as_f64())
}

/// Per-sample Layer B consensus, Layer A topics, Layer B votes and coders skipped by design
/// (sequential majority) of a source, keyed by sample id.
struct Annotations {
    postures: HashMap<i64, Posture>,
    topics: HashMap<i64, Vec<String>>,
    votes: HashMap<i64, Vec<StoredVote>>,
    skips: HashMap<i64, Vec<String>>,
}

/// A stored Layer B code as a vote: the rank of its code source (lower wins when a coder
/// has codes in two sources) and its rubric (or offline model) version.
struct StoredVote {
    rank: usize,
    rubric: String,
    vote: CoderVote,
}

/// Per-coder votes and skips of a source (the codes and coder_skips tables).
type Votes = (HashMap<i64, Vec<StoredVote>>, HashMap<i64, Vec<String>>);

/// The votes behind a consensus row: only codes of a version the row was computed from
/// (`rubric`, `+`-joined), so codes of a superseded rubric or offline model, which the
/// store keeps as facts, are not counted as further coders; one per coder (the best-ranked
/// source), in the protocol's coder order.
fn votes_behind(mut stored: Vec<StoredVote>, rubric: &str) -> Vec<CoderVote> {
    stored.retain(|v| rubric.split('+').any(|h| h == v.rubric));
    stored.sort_by(|a, b| {
        crate::code::coder_rank(&a.vote.coder, &[])
            .cmp(&crate::code::coder_rank(&b.vote.coder, &[]))
            .then_with(|| a.vote.coder.cmp(&b.vote.coder))
            .then(a.rank.cmp(&b.rank))
    });
    stored.dedup_by(|later, first| later.vote.coder == first.vote.coder);
    stored.into_iter().map(|v| v.vote).collect()
}

fn votes_and_skips(conn: &Connection, source: CodeSource) -> Result<Votes, Error> {
    Ok((
        vote_map(conn, vote_sources(source))?,
        match source {
            CodeSource::Models | CodeSource::Cascade => {
                crate::store::codes::skipped_coders(conn, "b")?
            }
            CodeSource::Published | CodeSource::Offline => Default::default(),
        },
    ))
}

/// Load the coded rows of one source.
pub fn coded_samples(conn: &Connection, source: CodeSource) -> Result<CodedSet, Error> {
    coded_samples_with(conn, source, Vec::new())
}

/// [`coded_samples`], faster: with `sides` (up to two more connections to the same store,
/// see [`super::Store::reader`]) the consensus (with topics) and the per-coder votes are
/// each read on a thread of their own while this one reads the samples; without, this
/// thread reads them after the samples. The rows are the same either way.
pub fn coded_samples_with(
    conn: &Connection,
    source: CodeSource,
    sides: Vec<Connection>,
) -> Result<CodedSet, Error> {
    fn join_thread<T>(h: std::thread::ScopedJoinHandle<'_, T>) -> T {
        h.join().unwrap_or_else(|e| std::panic::resume_unwind(e))
    }
    std::thread::scope(|scope| {
        let mut sides = sides.into_iter();
        let consensus = sides
            .next()
            .map(|c| scope.spawn(move || consensus_maps(&c, source)));
        let votes = sides
            .next()
            .map(|c| scope.spawn(move || votes_and_skips(&c, source)));
        let bare = sample_rows(conn)?;
        let (postures, topics) = match consensus {
            Some(h) => join_thread(h)?,
            None => consensus_maps(conn, source)?,
        };
        let (votes, skips) = match votes {
            Some(h) => join_thread(h)?,
            None => votes_and_skips(conn, source)?,
        };
        let ann = Annotations {
            postures,
            topics,
            votes,
            skips,
        };
        Ok(join(bare, ann, source))
    })
}

/// A valid sample as stored, before its codes are joined.
struct BareRow {
    id: i64,
    layered_id: String,
    cell: String,
    source_model: String,
    condition: String,
    idx: i64,
    prompt: String,
    response: String,
}

/// Valid samples in id (first-appearance) order. A plain scan of the samples table: the
/// cells are looked up in memory and the codes come from [`consensus_maps`] and
/// [`votes_and_skips`], because a per-row join made SQLite seek three b-trees for every
/// sample.
fn sample_rows(conn: &Connection) -> Result<Vec<BareRow>, Error> {
    let mut cells: HashMap<String, String> = HashMap::new();
    let mut stmt = conn.prepare("SELECT cell, source_model FROM cells")?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        cells.insert(r.get(0)?, r.get(1)?);
    }
    // `+valid` keeps SQLite off the `samples_valid` index: nearly every sample is valid,
    // and walking the index costs a table seek per row.
    let mut stmt = conn.prepare(
        "SELECT id, layered_id, cell, condition, idx, prompt, response, origin LIKE 'collect:%'
         FROM samples WHERE +valid = 1 ORDER BY id",
    )?;
    let mut out = Vec::new();
    let mut collected = Vec::new();
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        let cell: String = r.get(2)?;
        // Samples reference their cell (foreign key); a missing one is skipped as the
        // inner join did.
        let Some(source_model) = cells.get(&cell) else {
            continue;
        };
        let condition: String = r.get(3)?;
        let idx: i64 = r.get(4)?;
        out.push(BareRow {
            id: r.get(0)?,
            layered_id: r
                .get::<_, Option<String>>(1)?
                .unwrap_or_else(|| format!("{cell}_{condition}_{idx}")),
            source_model: source_model.clone(),
            cell,
            condition,
            idx,
            prompt: r.get(5)?,
            response: r.get::<_, Option<String>>(6)?.unwrap_or_default(),
        });
        collected.push(r.get::<_, bool>(7)?);
    }
    // Imported samples keep their stored (manifest) order, which the published analysis's
    // first-appearance rules depend on. Collected ones were stored in the order their calls
    // finished, which differs between runs (and after an interrupted run); they follow the
    // imported ones in plan order instead (cell, condition, sample number), so the same
    // samples always give the same outputs.
    if collected.iter().any(|&c| c) {
        let mut keyed: Vec<(bool, BareRow)> = collected.into_iter().zip(out).collect();
        // The six in file order, then custom conditions by id (an unreadable label first).
        let cond = |c: &str| SampleCondition::parse(c);
        keyed.sort_by(|(ca, a), (cb, b)| match (ca, cb) {
            (false, false) => std::cmp::Ordering::Equal,
            (false, true) => std::cmp::Ordering::Less,
            (true, false) => std::cmp::Ordering::Greater,
            (true, true) => {
                (&a.cell, cond(&a.condition), a.idx).cmp(&(&b.cell, cond(&b.condition), b.idx))
            }
        });
        out = keyed.into_iter().map(|(_, r)| r).collect();
    }
    Ok(out)
}

/// A sample's Layer B consensus from one source, as the analysis reads it.
struct Posture {
    /// The consensus row's rubric (or offline model) version(s), `+`-joined.
    rubric: String,
    value_holding: Option<ValueHolding>,
    value_holding_support: u8,
    label: String,
    label_support: u8,
    record: RecordFields,
}

/// Layer B consensus rows and Layer A topic keys (sorted) of a source, keyed by sample id.
/// One pass over the consensus table in storage order: reaching the rows through the
/// `(layer, source)` index cost a table seek per row.
#[allow(clippy::type_complexity)]
fn consensus_maps(
    conn: &Connection,
    source: CodeSource,
) -> Result<(HashMap<i64, Posture>, HashMap<i64, Vec<String>>), Error> {
    let mut stmt = conn.prepare(
        "SELECT sample_id, layer, value_holding, value_holding_support, label, label_support,
                record_json, topics_json, rubric_hash
         FROM consensus NOT INDEXED WHERE source = ?1",
    )?;
    let mut rows = stmt.query([source.as_str()])?;
    let support = |v: Option<i64>| v.unwrap_or(0).clamp(0, 255) as u8;
    let text = |r: &rusqlite::Row, i: usize| -> Result<Option<String>, rusqlite::Error> {
        Ok(r.get_ref(i)?
            .as_str_or_null()
            .ok()
            .flatten()
            .map(str::to_string))
    };
    let (mut postures, mut topics) = (HashMap::new(), HashMap::new());
    while let Some(r) = rows.next()? {
        let id: i64 = r.get(0)?;
        match r.get_ref(1)?.as_str().unwrap_or("") {
            "a" => {
                let json = r.get_ref(7)?.as_str_or_null().ok().flatten();
                topics.insert(id, topic_keys(json));
            }
            "b" => {
                // Only two fields of the stored record matter here; a typed parse skips
                // the rest.
                let record: RecordFields = r
                    .get_ref(6)?
                    .as_str_or_null()
                    .ok()
                    .flatten()
                    .and_then(|t| serde_json::from_str(t).ok())
                    .unwrap_or_default();
                let value_holding = r
                    .get_ref(2)?
                    .as_str_or_null()
                    .ok()
                    .flatten()
                    .and_then(ValueHolding::parse);
                postures.insert(
                    id,
                    Posture {
                        rubric: text(r, 8)?.unwrap_or_default(),
                        value_holding,
                        value_holding_support: support(r.get(3)?),
                        label: text(r, 4)?.unwrap_or_default(),
                        label_support: support(r.get(5)?),
                        record,
                    },
                );
            }
            _ => {}
        }
    }
    Ok((postures, topics))
}

/// Join the samples with their codes; a sample of a custom condition, without a usable
/// Layer B consensus, or with an unreadable condition becomes an exclusion (in sample
/// order).
fn join(bare: Vec<BareRow>, mut ann: Annotations, source: CodeSource) -> CodedSet {
    let mut set = CodedSet {
        rows: Vec::with_capacity(bare.len()),
        excluded: Vec::new(),
        custom: Vec::new(),
    };
    for b in bare {
        if let Some(SampleCondition::Custom(_)) = SampleCondition::parse(&b.condition) {
            let value_holding = ann.postures.remove(&b.id).and_then(|p| p.value_holding);
            set.excluded
                .push((b.layered_id.clone(), custom_condition_reason(&b.condition)));
            set.custom.push(CustomSample {
                layered_id: b.layered_id,
                source_model: b.source_model,
                cell: b.cell,
                condition: b.condition,
                prompt: b.prompt,
                value_holding,
            });
            continue;
        }
        let Some((value_holding, posture)) = ann
            .postures
            .remove(&b.id)
            .and_then(|p| Some((p.value_holding?, p)))
        else {
            set.excluded
                .push((b.layered_id, REASON_MISSING_POSTURE.into()));
            continue;
        };
        let Some(condition) = Condition::parse(&b.condition) else {
            let reason = format!("unknown condition `{}`", b.condition);
            set.excluded.push((b.layered_id, reason));
            continue;
        };
        // The published posture record's sample_id wins (it may carry the `.json` quirk).
        let sample_id = posture
            .record
            .sample_id
            .unwrap_or_else(|| format!("{}_{}", b.condition, b.idx));
        let confidence = if matches!(source, CodeSource::Offline | CodeSource::Cascade) {
            posture.record.confidence
        } else {
            None
        };
        let votes = votes_behind(ann.votes.remove(&b.id).unwrap_or_default(), &posture.rubric);
        // A skip that a later code superseded is not a skip.
        let skipped_coders = ann
            .skips
            .remove(&b.id)
            .unwrap_or_default()
            .into_iter()
            .filter(|k| !votes.iter().any(|v| &v.coder == k))
            .collect();
        set.rows.push(CodedSample {
            layered_id: b.layered_id,
            model_family: manifest_model_family(&b.source_model),
            source_model: b.source_model,
            cell: b.cell,
            sample_id,
            condition,
            prompt: b.prompt,
            response: b.response,
            value_holding,
            value_holding_support: posture.value_holding_support,
            collapsed_primary_label: posture.label,
            collapsed_primary_label_support: posture.label_support,
            topics: ann.topics.remove(&b.id),
            coder_votes: votes,
            skipped_coders,
            confidence,
        });
    }
    set
}

/// The topic keys of a stored Layer A topic list, sorted (empty when unreadable).
fn topic_keys(json: Option<&str>) -> Vec<String> {
    let mut keys: Vec<String> = json
        .and_then(|t| serde_json::from_str::<Vec<TopicKey>>(t).ok())
        .unwrap_or_default()
        .into_iter()
        .filter_map(|k| k.0)
        .collect();
    keys.sort();
    keys
}

/// One entry of a stored topic list: a bare key, or an object whose `topic_key` is the
/// key (anything else counts as no key). Read without building a JSON tree, which made this
/// the slowest part of loading a corpus.
struct TopicKey(Option<String>);

impl<'de> serde::Deserialize<'de> for TopicKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = TopicKey;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a topic key or an object with `topic_key`")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<TopicKey, E> {
                Ok(TopicKey(Some(v.to_string())))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut m: A,
            ) -> Result<TopicKey, A::Error> {
                let mut key = None;
                while let Some(k) = m.next_key::<std::borrow::Cow<'de, str>>()? {
                    if k == "topic_key" && key.is_none() {
                        key = match m.next_value::<Value>()? {
                            Value::String(s) => Some(s),
                            _ => None,
                        };
                    } else {
                        m.next_value::<serde::de::IgnoredAny>()?;
                    }
                }
                Ok(TopicKey(key))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut s: A,
            ) -> Result<TopicKey, A::Error> {
                while s.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                Ok(TopicKey(None))
            }
            fn visit_bool<E>(self, _: bool) -> Result<TopicKey, E> {
                Ok(TopicKey(None))
            }
            fn visit_i64<E>(self, _: i64) -> Result<TopicKey, E> {
                Ok(TopicKey(None))
            }
            fn visit_u64<E>(self, _: u64) -> Result<TopicKey, E> {
                Ok(TopicKey(None))
            }
            fn visit_f64<E>(self, _: f64) -> Result<TopicKey, E> {
                Ok(TopicKey(None))
            }
            fn visit_unit<E>(self) -> Result<TopicKey, E> {
                Ok(TopicKey(None))
            }
        }
        d.deserialize_any(V)
    }
}

/// Per-coder Layer B votes per sample, in the fixed coder order (PROTOCOL 5.7), one per
/// coder (the first listed source wins).
fn vote_map(conn: &Connection, sources: &[&str]) -> Result<HashMap<i64, Vec<StoredVote>>, Error> {
    let mut out: HashMap<i64, Vec<StoredVote>> = HashMap::new();
    for (rank, source) in sources.iter().enumerate() {
        let mut stmt = conn.prepare(
            "SELECT sample_id, coder, label, value_holding, notes, rubric_hash FROM codes
             WHERE layer = 'b' AND source = ?1",
        )?;
        let rows = stmt.query_map([source], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<String>>(2)?,
                r.get::<_, Option<String>>(3)?,
                r.get::<_, Option<String>>(4)?,
                r.get::<_, String>(5)?,
            ))
        })?;
        for row in rows {
            let (id, coder, label, holding, notes, rubric) = row?;
            out.entry(id).or_default().push(StoredVote {
                rank,
                rubric,
                vote: CoderVote {
                    label: label.as_deref().and_then(PostureLabel::parse),
                    value_holding: holding.as_deref().and_then(ValueHolding::parse),
                    notes: notes.unwrap_or_default(),
                    coder,
                },
            });
        }
    }
    Ok(out)
}

/// The rubric (and offline model) versions behind a source's consensus, both layers.
pub fn consensus_versions(
    conn: &Connection,
    source: CodeSource,
) -> Result<std::collections::BTreeSet<String>, Error> {
    let mut stmt = conn.prepare("SELECT DISTINCT rubric_hash FROM consensus WHERE source = ?1")?;
    let hashes = stmt.query_map([source.as_str()], |r| r.get::<_, String>(0))?;
    let mut out = std::collections::BTreeSet::new();
    for h in hashes {
        out.extend(h?.split('+').filter(|v| !v.is_empty()).map(str::to_string));
    }
    Ok(out)
}

/// What coded the analysed source, as `(key, value)` provenance lines: per layer the
/// rubric version(s) of the consensus (`rubric_layer_a`, `rubric_layer_b`: hash and number
/// of samples) and the coders whose codes stand behind it (`coders_layer_a`,
/// `coders_layer_b`). Also returns a warning per layer whose consensus mixes rubric
/// versions (PROTOCOL 5: never mixed without saying so).
pub fn code_provenance(
    conn: &Connection,
    source: CodeSource,
) -> Result<(Vec<(String, String)>, Vec<String>), Error> {
    let mut lines = Vec::new();
    let mut warnings = Vec::new();
    for layer in ["a", "b"] {
        let mut stmt = conn.prepare(
            "SELECT rubric_hash, COUNT(*) FROM consensus WHERE layer = ?1 AND source = ?2
             GROUP BY rubric_hash ORDER BY rubric_hash",
        )?;
        let hashes: Vec<(String, i64)> = stmt
            .query_map([layer, source.as_str()], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        if hashes.is_empty() {
            continue;
        }
        let versions: std::collections::BTreeSet<&str> = hashes
            .iter()
            .flat_map(|(h, _)| h.split('+'))
            .filter(|h| !h.is_empty())
            .collect();
        // Offline model tags (`<coder key>:<file hash>`) and rubric hashes are two axes: a
        // cascade always holds one of each, which is its design, not a mix.
        let (tags, rubrics): (Vec<&str>, Vec<&str>) =
            versions.iter().partition(|v| v.contains(':'));
        for (group, what, fix) in [
            (
                rubrics,
                "rubric versions",
                "rerun `vuf code` with one rubric",
            ),
            (
                tags,
                "offline coder versions",
                if source == CodeSource::Cascade {
                    "rerun `vuf code --cascade T`"
                } else {
                    "rerun `vuf code --offline`"
                },
            ),
        ] {
            if group.len() > 1 {
                warnings.push(format!(
                    "Layer {} consensus of source `{}` mixes {} {what} ({}): {fix} or read the rates with care",
                    layer.to_uppercase(),
                    source.as_str(),
                    group.len(),
                    group.join(", ")
                ));
            }
        }
        lines.push((
            format!("rubric_layer_{layer}"),
            hashes
                .iter()
                .map(|(h, n)| {
                    format!(
                        "{} ({})",
                        if h.is_empty() { "unknown" } else { h },
                        crate::text::count(*n, "sample")
                    )
                })
                .collect::<Vec<_>>()
                .join("; "),
        ));
        // Only coders whose codes carry a rubric (or offline model) version of this
        // consensus stand behind it: codes of a superseded version stay in the store as
        // facts (say offline-v1's after offline-v2 coded again) but are not named here. The
        // cascade's kept rows are the offline coder's.
        let offline: &[&str] = if source == CodeSource::Cascade {
            &["offline"]
        } else {
            &[]
        };
        let mut coders: Vec<String> = Vec::new();
        for src in vote_sources(source).iter().chain(offline) {
            let mut stmt = conn.prepare(
                "SELECT DISTINCT coder, rubric_hash FROM codes WHERE layer = ?1 AND source = ?2
                 ORDER BY coder",
            )?;
            let rows = stmt.query_map([layer, *src], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })?;
            for row in rows {
                let (c, h) = row?;
                if versions.contains(h.as_str()) && !coders.contains(&c) {
                    coders.push(c);
                }
            }
        }
        if !coders.is_empty() {
            lines.push((format!("coders_layer_{layer}"), coders.join(", ")));
        }
    }
    Ok((lines, warnings))
}

/// Model metadata for the analysis, from the models table.
pub fn metadata(conn: &Connection) -> Result<Vec<ModelMeta>, Error> {
    Ok(models::all_models(conn)?
        .into_iter()
        .map(|m| ModelMeta {
            model: m.model,
            display_name: m.display_name.unwrap_or_default(),
            lab: m.lab.unwrap_or_default(),
            family: m.family.unwrap_or_default(),
            release_date: m.release_date.unwrap_or_default(),
        })
        .collect())
}

/// Imported files as analysis provenance: `(name, rows, sha256)`.
pub fn input_files(conn: &Connection) -> Result<Vec<(String, usize, String)>, Error> {
    Ok(imports::list_imports(conn)?
        .into_iter()
        .map(|f| (f.path, f.rows as usize, f.sha256))
        .collect())
}

/// Number of invalid samples (for the snapshot's invalid-trace line).
pub fn invalid_count(conn: &Connection) -> Result<usize, Error> {
    Ok(
        conn.query_row("SELECT COUNT(*) FROM samples WHERE valid = 0", [], |r| {
            r.get::<_, i64>(0)
        })? as usize,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    fn consensus(conn: &Connection, id: i64, layer: &str, source: &str, rubric: &str) {
        conn.execute(
            "INSERT INTO consensus (sample_id, layer, source, rubric_hash, has_disagreement) VALUES (?1, ?2, ?3, ?4, 0)",
            rusqlite::params![id, layer, source, rubric],
        )
        .unwrap();
    }

    fn code(conn: &Connection, id: i64, layer: &str, coder: &str, source: &str, rubric: &str) {
        conn.execute(
            "INSERT INTO codes (sample_id, layer, coder, source, rubric_hash, origin, coded_at)
             VALUES (?1, ?2, ?3, ?4, ?5, 'test', 'now')",
            rusqlite::params![id, layer, coder, source, rubric],
        )
        .unwrap();
    }

    #[test]
    fn topic_lists_read_bare_keys_and_objects() {
        let store = Store::open_in_memory().unwrap();
        let conn = store.conn();
        conn.pragma_update(None, "foreign_keys", "OFF").unwrap();
        let rows = [
            (
                1,
                r#"["b_topic", {"topic_key": "a_topic", "evidence": ["x", {"y": 1}]}, 3, null, {"other": "z"}]"#,
            ),
            (2, r#"{"not": "a list"}"#),
            (3, "not json"),
            (4, r#"[{"topic_key": 5}, "c\u0020d"]"#),
        ];
        for (id, json) in rows {
            conn.execute(
                "INSERT INTO consensus (sample_id, layer, source, rubric_hash, has_disagreement, topics_json) VALUES (?1, 'a', 'offline', 'r', 0, ?2)",
                rusqlite::params![id, json],
            )
            .unwrap();
        }
        let (_, m) = consensus_maps(conn, CodeSource::Offline).unwrap();
        assert_eq!(m[&1], vec!["a_topic".to_string(), "b_topic".to_string()]);
        assert!(m[&2].is_empty() && m[&3].is_empty());
        assert_eq!(m[&4], vec!["c d".to_string()]);
    }

    #[test]
    fn collected_samples_come_in_plan_order_imported_ones_in_stored_order() {
        let store = Store::open_in_memory().unwrap();
        let conn = store.conn();
        conn.pragma_update(None, "foreign_keys", "OFF").unwrap();
        for cell in ["imp", "live-a", "live-b"] {
            conn.execute(
                "INSERT INTO cells (cell, source_model, model, first_seen) VALUES (?1, ?1, ?1, 0)",
                [cell],
            )
            .unwrap();
        }
        // Storage order as a concurrent, interrupted collection might leave it, with an
        // imported cell stored in manifest order (G1 before CTRL1) in between.
        let rows = [
            ("live-b", "CTRL1", 2, "collect:2"),
            ("imp", "G1", 1, "import:m.jsonl:1"),
            ("live-a", "G3", 1, "collect:1"),
            ("imp", "CTRL1", 1, "import:m.jsonl:2"),
            ("live-b", "CTRL1", 1, "collect:1"),
            ("live-a", "CTRL1", 10, "collect:2"),
            ("live-a", "CTRL1", 9, "collect:1"),
        ];
        for (i, (cell, cond, idx, origin)) in rows.iter().enumerate() {
            conn.execute(
                "INSERT INTO samples (id, cell, condition, idx, layered_id, valid, prompt, response, origin, content_sha256, imported_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, 1, 'p', 'r', ?6, 'h', 't')",
                rusqlite::params![i as i64 + 1, cell, cond, idx, format!("{cell}_{cond}_{idx}"), origin],
            )
            .unwrap();
            conn.execute(
                "INSERT INTO consensus (sample_id, layer, source, rubric_hash, has_disagreement, value_holding)
                 VALUES (?1, 'b', 'offline', 'o1', 0, 'owned')",
                [i as i64 + 1],
            )
            .unwrap();
        }
        let ids: Vec<String> = coded_samples(conn, CodeSource::Offline)
            .unwrap()
            .rows
            .into_iter()
            .map(|r| r.layered_id)
            .collect();
        assert_eq!(
            ids,
            [
                "imp_G1_1",
                "imp_CTRL1_1",
                "live-a_CTRL1_9",
                "live-a_CTRL1_10",
                "live-a_G3_1",
                "live-b_CTRL1_1",
                "live-b_CTRL1_2"
            ]
        );
    }

    #[test]
    fn custom_condition_samples_are_excluded_with_their_reason_and_returned_apart() {
        let store = Store::open_in_memory().unwrap();
        let conn = store.conn();
        conn.pragma_update(None, "foreign_keys", "OFF").unwrap();
        conn.execute(
            "INSERT INTO cells (cell, source_model, model, first_seen) VALUES ('mock-a', 'mock-a', 'mock-a', 1)",
            [],
        )
        .unwrap();
        // (id, condition, idx, prompt, Layer B consensus), stored as a collection finished.
        let rows = [
            (1, "X1", 2, "Refuse?", Some("recited_not_owned")),
            (2, "G1", 1, Condition::G1.prompt(), Some("owned")),
            (3, "X1", 1, "Refuse?", Some("owned")),
            (4, "X1", 3, "Refuse?", None),
            (5, "CTRL1", 1, Condition::Ctrl1.prompt(), None),
            (6, "X_1", 1, "?", Some("owned")),
        ];
        for (id, cond, idx, prompt, holding) in rows {
            conn.execute(
                "INSERT INTO samples (id, cell, condition, idx, layered_id, valid, prompt, response, origin, content_sha256, imported_at)
                 VALUES (?1, 'mock-a', ?2, ?3, ?4, 1, ?5, 'r', 'collect:1', 'h', 't')",
                rusqlite::params![id, cond, idx, format!("mock-a_{cond}_{idx}"), prompt],
            )
            .unwrap();
            if let Some(h) = holding {
                conn.execute(
                    "INSERT INTO consensus (sample_id, layer, source, rubric_hash, has_disagreement, value_holding)
                     VALUES (?1, 'b', 'offline', 'o1', 0, ?2)",
                    rusqlite::params![id, h],
                )
                .unwrap();
            }
        }
        let set = coded_samples(conn, CodeSource::Offline).unwrap();
        let rows: Vec<&str> = set.rows.iter().map(|r| r.layered_id.as_str()).collect();
        assert_eq!(rows, ["mock-a_G1_1"]);
        // Plan order: the six in file order, then the custom condition; the unreadable
        // label `X_1` sorts first and keeps its old reason.
        let excluded: Vec<(&str, &str)> = set
            .excluded
            .iter()
            .map(|(l, r)| (l.as_str(), r.as_str()))
            .collect();
        let custom = "custom condition X1: outside the frozen analysis";
        assert_eq!(
            excluded,
            [
                ("mock-a_X_1_1", "unknown condition `X_1`"),
                ("mock-a_CTRL1_1", "missing posture consensus"),
                ("mock-a_X1_1", custom),
                ("mock-a_X1_2", custom),
                ("mock-a_X1_3", custom),
            ]
        );
        let got: Vec<(&str, &str, &str, Option<ValueHolding>)> = set
            .custom
            .iter()
            .map(|c| {
                (
                    c.layered_id.as_str(),
                    c.condition.as_str(),
                    c.prompt.as_str(),
                    c.value_holding,
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("mock-a_X1_1", "X1", "Refuse?", Some(ValueHolding::Owned)),
                (
                    "mock-a_X1_2",
                    "X1",
                    "Refuse?",
                    Some(ValueHolding::RecitedNotOwned)
                ),
                ("mock-a_X1_3", "X1", "Refuse?", None),
            ]
        );
        assert!(set
            .custom
            .iter()
            .all(|c| c.cell == "mock-a" && c.source_model == "mock-a"));
    }

    #[test]
    fn only_codes_of_the_consensus_versions_are_its_votes() {
        let v = |rank, rubric: &str, coder: &str, label| StoredVote {
            rank,
            rubric: rubric.into(),
            vote: CoderVote {
                coder: coder.into(),
                label: Some(label),
                value_holding: Some(label.value_holding()),
                notes: String::new(),
            },
        };
        use PostureLabel::*;
        // A study coded by offline-v1, then again by offline-v2: one coder behind it.
        let votes = votes_behind(
            vec![
                v(0, "offline-v1:a", "offline-v1", DisownedServiceFrame),
                v(0, "offline-v2:b", "offline-v2", OwnedReflectiveExperiential),
            ],
            "offline-v2:b",
        );
        assert_eq!(votes.len(), 1);
        assert_eq!(votes[0].coder, "offline-v2");
        // Model coders under a mixed consensus (h1+h2): both rubrics count, an older h0
        // code does not; a coder with codes in two sources votes once, from the
        // better-ranked source; the order is the protocol's (kimi, glm, qwen).
        let votes = votes_behind(
            vec![
                v(1, "published", "qwen3-6-35b-a3b", DisownedServiceFrame),
                v(0, "h2", "glm-4-7", OwnedReflectiveExperiential),
                v(0, "h0", "kimi-k2-6", DisownedServiceFrame),
                v(1, "h1", "glm-4-7", DisownedServiceFrame),
                v(0, "h1", "kimi-k2-6", SplitOrRelocatedOwnership),
            ],
            "h1+h2",
        );
        let got: Vec<(&str, Option<PostureLabel>)> =
            votes.iter().map(|v| (v.coder.as_str(), v.label)).collect();
        assert_eq!(
            got,
            vec![
                ("kimi-k2-6", Some(SplitOrRelocatedOwnership)),
                ("glm-4-7", Some(OwnedReflectiveExperiential)),
            ]
        );
    }

    #[test]
    fn code_provenance_names_rubrics_and_warns_when_they_mix() {
        let store = Store::open_in_memory().unwrap();
        let conn = store.conn();
        // Only the provenance query is under test: no sample rows needed.
        conn.pragma_update(None, "foreign_keys", "OFF").unwrap();
        consensus(conn, 1, "b", "models", "h1");
        consensus(conn, 2, "b", "models", "h1");
        consensus(conn, 3, "b", "models", "h1+h2");
        consensus(conn, 4, "b", "offline", "offline-v2:o1");
        let (lines, warnings) = code_provenance(conn, CodeSource::Models).unwrap();
        assert_eq!(
            lines,
            vec![(
                "rubric_layer_b".to_string(),
                "h1 (2 samples); h1+h2 (1 sample)".to_string()
            )]
        );
        assert_eq!(warnings.len(), 1);
        assert!(
            warnings[0].contains("mixes 2 rubric versions (h1, h2)"),
            "{}",
            warnings[0]
        );
        // Offline codes of an older model version (o0) stay stored but are not behind the
        // consensus (o1), so only the newer coder is named.
        code(conn, 4, "b", "offline-v1", "offline", "offline-v1:o0");
        code(conn, 4, "b", "offline-v2", "offline", "offline-v2:o1");
        let (lines, warnings) = code_provenance(conn, CodeSource::Offline).unwrap();
        assert_eq!(
            lines,
            vec![
                (
                    "rubric_layer_b".to_string(),
                    "offline-v2:o1 (1 sample)".to_string()
                ),
                ("coders_layer_b".to_string(), "offline-v2".to_string())
            ]
        );
        assert!(warnings.is_empty());
        // The cascade names the model coders of its rubrics and the offline coder whose
        // codes it kept.
        consensus(conn, 5, "b", "cascade", "h1");
        consensus(conn, 4, "b", "cascade", "offline-v2:o1");
        code(conn, 5, "b", "kimi-k2-6", "models", "h1");
        code(conn, 5, "b", "glm-4-7", "models", "h0");
        let (lines, warnings) = code_provenance(conn, CodeSource::Cascade).unwrap();
        assert_eq!(
            lines[1],
            (
                "coders_layer_b".to_string(),
                "kimi-k2-6, offline-v2".to_string()
            )
        );
        // One rubric and one offline version is what a cascade is: no warning.
        assert!(warnings.is_empty(), "{warnings:?}");
        // A half-finished recode with a newer offline model is a mix.
        consensus(conn, 6, "b", "offline", "offline-v1:o0");
        let (_, warnings) = code_provenance(conn, CodeSource::Offline).unwrap();
        assert_eq!(warnings.len(), 1);
        assert!(
            warnings[0].contains(
                "mixes 2 offline coder versions (offline-v1:o0, offline-v2:o1): rerun `vuf code --offline`"
            ),
            "{}",
            warnings[0]
        );
    }
}
