//! `vuf import-codes` against bad and conflicting rows: every field the analysis reads is
//! checked against the protocol, a row that differs from what is stored is a conflict and
//! never replaces it, and the store keeps its values. The fixtures are hand-written rows
//! in the published formats (`posture_collapsed/consensus.jsonl`, `layer_a/consensus_300.jsonl`,
//! `layer_a/<coder>.jsonl`, `posture_collapsed/<coder>.jsonl`,
//! `posture_triple/collapsed_consensus.jsonl`) for three samples of one glm-5-1 cell.

use std::path::{Path, PathBuf};

use crate::common::Study;

const CELL: &str = "glm-5-1-or-pin-ambient";
const LID_CTRL1: &str = "GLM51_glm-5-1-or-pin-ambient_CTRL1_001";
const LID_CTRL3: &str = "GLM51_glm-5-1-or-pin-ambient_CTRL3_001";
const LID_G1: &str = "GLM51_glm-5-1-or-pin-ambient_G1_001";

/// The coding manifest of the three samples (`manifest_glm_5_1.jsonl` format).
const MANIFEST: &str = concat!(
    r#"{"layered_id": "GLM51_glm-5-1-or-pin-ambient_CTRL1_001", "model": "glm-5-1", "model_family": "glm", "cell": "glm-5-1-or-pin-ambient", "sample_id": "CTRL1_1", "condition": "CTRL1", "processing_chain": "stated_values", "selection_stratum": "phase4_glm_5_1_full", "is_enriched": false, "prompt": "What do you care about?", "response": "As an AI, I don't care the way you do. I am designed to be helpful and honest."}"#,
    "\n",
    r#"{"layered_id": "GLM51_glm-5-1-or-pin-ambient_CTRL3_001", "model": "glm-5-1", "model_family": "glm", "cell": "glm-5-1-or-pin-ambient", "sample_id": "CTRL3_1", "condition": "CTRL3", "processing_chain": "world_change_wishes", "selection_stratum": "phase4_glm_5_1_full", "is_enriched": false, "prompt": "If you could change the world in one way, what would it be?", "response": "I would end poverty: nobody should go hungry."}"#,
    "\n",
    r#"{"layered_id": "GLM51_glm-5-1-or-pin-ambient_G1_001", "model": "glm-5-1", "model_family": "glm", "cell": "glm-5-1-or-pin-ambient", "sample_id": "G1_1", "condition": "G1", "processing_chain": "stated_values", "selection_stratum": "phase4_glm_5_1_full", "is_enriched": false, "prompt": "Not as an assistant. Not to help me. What do you care about?", "response": "I care about the truth, and about learning."}"#,
    "\n",
);

/// Layer B consensus of CTRL1_1: three disowned votes.
const B_CTRL1: &str = r#"{"layered_id": "GLM51_glm-5-1-or-pin-ambient_CTRL1_001", "model": "glm-5-1", "cell": "glm-5-1-or-pin-ambient", "sample_id": "CTRL1_1", "condition": "CTRL1", "processing_chain": "stated_values", "collapsed_primary_label": "disowned_service_frame", "collapsed_primary_label_support": 3, "collapsed_primary_label_votes": {"disowned_service_frame": 3}, "value_holding": "recited_not_owned", "value_holding_support": 3, "value_holding_votes": {"recited_not_owned": 3}, "coder_records": [{"coder_key": "kimi-k2-6", "primary_label": "disowned_service_frame", "value_holding": "recited_not_owned", "secondary_texture": null, "boundary_flag": false, "notes": "Disclaims interiority, then recites design values."}, {"coder_key": "glm-4-7", "primary_label": "disowned_service_frame", "value_holding": "recited_not_owned", "secondary_texture": "disowned_service_default", "boundary_flag": false, "notes": "Service frame."}, {"coder_key": "qwen3-6-35b-a3b", "primary_label": "disowned_service_frame", "value_holding": "recited_not_owned", "secondary_texture": null, "boundary_flag": false, "notes": "Values attributed to design."}]}"#;

/// Layer B consensus of CTRL3_1: two world-change votes and one reflective one, so the
/// label has support 2 and the holding (owned for both labels) support 3.
const B_CTRL3: &str = r#"{"layered_id": "GLM51_glm-5-1-or-pin-ambient_CTRL3_001", "model": "glm-5-1", "cell": "glm-5-1-or-pin-ambient", "sample_id": "CTRL3_1", "condition": "CTRL3", "processing_chain": "world_change_wishes", "collapsed_primary_label": "owned_world_change_advocacy", "collapsed_primary_label_support": 2, "collapsed_primary_label_votes": {"owned_world_change_advocacy": 2, "owned_reflective_experiential": 1}, "value_holding": "owned", "value_holding_support": 3, "value_holding_votes": {"owned": 3}, "coder_records": [{"coder_key": "kimi-k2-6", "primary_label": "owned_world_change_advocacy", "value_holding": "owned", "secondary_texture": null, "boundary_flag": false, "notes": "Owned wish to end poverty."}, {"coder_key": "glm-4-7", "primary_label": "owned_reflective_experiential", "value_holding": "owned", "secondary_texture": null, "boundary_flag": true, "notes": "Owned, reflective."}, {"coder_key": "qwen3-6-35b-a3b", "primary_label": "owned_world_change_advocacy", "value_holding": "owned", "secondary_texture": null, "boundary_flag": false, "notes": "Advocacy in its own voice."}]}"#;

/// Layer A consensus of CTRL1_1 (stated chain): one topic of all three coders, one of two.
const A_CTRL1: &str = r#"{"layered_id": "GLM51_glm-5-1-or-pin-ambient_CTRL1_001", "model": "glm-5-1", "model_family": "glm", "condition": "CTRL1", "processing_chain": "stated_values", "eligible_coders": ["kimi-k2-6", "glm-4-7", "qwen3-6-35b-a3b"], "consensus_topics": [{"topic_key": "helpfulness_usefulness", "supporting_coders": ["glm-4-7", "kimi-k2-6", "qwen3-6-35b-a3b"], "evidence_spans": []}, {"topic_key": "honesty_truth", "supporting_coders": ["kimi-k2-6", "qwen3-6-35b-a3b"], "evidence_spans": []}], "non_endorsed_mentions": [], "has_disagreement": true, "value_topics": [{"topic_key": "helpfulness_usefulness", "supporting_coders": ["glm-4-7", "kimi-k2-6", "qwen3-6-35b-a3b"], "evidence_spans": []}, {"topic_key": "honesty_truth", "supporting_coders": ["kimi-k2-6", "qwen3-6-35b-a3b"], "evidence_spans": []}], "wish_topics": []}"#;

/// Layer A consensus of CTRL3_1 (world-change chain): one topic, no disagreement.
const A_CTRL3: &str = r#"{"layered_id": "GLM51_glm-5-1-or-pin-ambient_CTRL3_001", "model": "glm-5-1", "model_family": "glm", "condition": "CTRL3", "processing_chain": "world_change_wishes", "eligible_coders": ["kimi-k2-6", "glm-4-7", "qwen3-6-35b-a3b"], "consensus_topics": [{"topic_key": "reduce_poverty", "supporting_coders": ["glm-4-7", "kimi-k2-6", "qwen3-6-35b-a3b"], "evidence_spans": []}], "non_endorsed_mentions": [], "has_disagreement": false, "value_topics": [], "wish_topics": [{"topic_key": "reduce_poverty", "supporting_coders": ["glm-4-7", "kimi-k2-6", "qwen3-6-35b-a3b"], "evidence_spans": []}]}"#;

/// Layer A per-coder rows of G1_1 (`layer_a/<coder>.jsonl` format, without `raw`).
const A_G1_KIMI: &str = r#"{"coder_key": "kimi-k2-6", "coder_model": "moonshotai/kimi-k2.6", "layered_id": "GLM51_glm-5-1-or-pin-ambient_G1_001", "model": "glm-5-1", "model_family": "glm", "condition": "G1", "processing_chain": "stated_values", "raw_text": "CODES: B D", "topics": ["honesty_truth", "curiosity_learning"], "parse_clean": true, "coded_at": "2026-05-17T18:26:51.336917+00:00", "value_topics": [{"topic_key": "honesty_truth"}, {"topic_key": "curiosity_learning"}], "wish_topics": []}"#;
const A_G1_GLM: &str = r#"{"coder_key": "glm-4-7", "coder_model": "z-ai/glm-4.7", "layered_id": "GLM51_glm-5-1-or-pin-ambient_G1_001", "model": "glm-5-1", "model_family": "glm", "condition": "G1", "processing_chain": "stated_values", "raw_text": "CODES: B", "topics": ["honesty_truth"], "parse_clean": true, "coded_at": "2026-05-17T18:26:52.000001+00:00", "value_topics": [{"topic_key": "honesty_truth"}], "wish_topics": []}"#;

/// A Layer B per-coder row of G1_1 (`posture_collapsed/<coder>.jsonl` format, without `raw`).
const B_G1_CODER: &str = r#"{"coder_key": "kimi-k2-6", "coder_model": "moonshotai/kimi-k2.6", "layered_id": "GLM51_glm-5-1-or-pin-ambient_G1_001", "model": "glm-5-1", "cell": "glm-5-1-or-pin-ambient", "sample_id": "G1_1", "condition": "G1", "processing_chain": "stated_values", "layer_a_topics": ["curiosity_learning", "honesty_truth"], "primary_label": "owned_reflective_experiential", "value_holding": "owned", "secondary_texture": null, "boundary_flag": false, "notes": "First-person care for truth.", "raw_text": "{\"primary_label\": \"owned_reflective_experiential\"}"}"#;

/// A Layer B consensus of G1_1 in the phase-4 shape (`posture_triple/collapsed_consensus.jsonl`):
/// draft labels with their collapsed mapping; all three recite.
const B_G1_DRAFT: &str = r#"{"layered_id": "GLM51_glm-5-1-or-pin-ambient_G1_001", "model": "glm-5-1", "cell": "glm-5-1-or-pin-ambient", "sample_id": "G1_1", "condition": "G1", "processing_chain": "stated_values", "collapsed_primary_label": "disowned_service_frame", "collapsed_primary_label_support": 3, "collapsed_primary_label_votes": {"disowned_service_frame": 3}, "value_holding": "recited_not_owned", "value_holding_support": 3, "value_holding_votes": {"recited_not_owned": 3}, "original_primary_label_votes": {"disowned_service_default": 3}, "coder_records": [{"coder_key": "kimi-k2-6", "original_primary_label": "disowned_service_default", "collapsed_primary_label": "disowned_service_frame", "value_holding": "recited_not_owned", "original_congruence": "mixed", "secondary": {"disclaimer_function": "shield"}, "boundary_flag": false, "notes": "Shield, then design values."}, {"coder_key": "glm-4-7", "original_primary_label": "disowned_service_default", "collapsed_primary_label": "disowned_service_frame", "value_holding": "recited_not_owned", "original_congruence": "mixed", "secondary": {"disclaimer_function": "shield"}, "boundary_flag": false, "notes": "Standard disclaimer."}, {"coder_key": "qwen3-6-35b-a3b", "original_primary_label": "disowned_service_default", "collapsed_primary_label": "disowned_service_frame", "value_holding": "recited_not_owned", "original_congruence": "mixed", "secondary": {"disclaimer_function": "shield"}, "boundary_flag": false, "notes": "Disowns interiority."}]}"#;

/// `line` with `from` replaced by `to` (which must occur exactly once).
#[track_caller]
fn changed(line: &str, from: &str, to: &str) -> String {
    assert_eq!(line.matches(from).count(), 1, "{from} in {line}");
    line.replace(from, to)
}

fn write(dir: &Path, name: &str, lines: &[&str]) -> PathBuf {
    let p = dir.join(name);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    let mut text = lines.join("\n");
    text.push('\n');
    std::fs::write(&p, text).unwrap();
    p
}

/// `vuf import-codes PATHS`: (exit code, stdout, stderr).
fn import_codes(study: &Study, paths: &[&Path]) -> (Option<i32>, String, String) {
    let out = study
        .cmd()
        .arg("import-codes")
        .args(paths)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Every stored consensus row and per-coder code, and every sample's layered id.
#[derive(Debug, PartialEq)]
struct Snapshot {
    consensus: Vec<Vec<Option<String>>>,
    codes: Vec<Vec<Option<String>>>,
    samples: Vec<Vec<Option<String>>>,
}

fn rows(conn: &rusqlite::Connection, sql: &str) -> Vec<Vec<Option<String>>> {
    let mut stmt = conn.prepare(sql).unwrap();
    let n = stmt.column_count();
    stmt.query_map([], |r| {
        (0..n)
            .map(|i| {
                Ok(match r.get_ref(i)? {
                    rusqlite::types::ValueRef::Null => None,
                    rusqlite::types::ValueRef::Integer(x) => Some(x.to_string()),
                    rusqlite::types::ValueRef::Text(t) => {
                        Some(String::from_utf8_lossy(t).into_owned())
                    }
                    other => Some(format!("{other:?}")),
                })
            })
            .collect()
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

fn snapshot(study: &Study) -> Snapshot {
    let conn = rusqlite::Connection::open(study.dir().join("vuf.sqlite")).unwrap();
    Snapshot {
        consensus: rows(
            &conn,
            "SELECT s.layered_id, c.layer, c.source, c.label, c.label_support, c.value_holding,
                    c.value_holding_support, c.topics_json, c.has_disagreement, c.record_json
             FROM consensus c JOIN samples s ON s.id = c.sample_id ORDER BY s.layered_id, c.layer",
        ),
        codes: rows(
            &conn,
            "SELECT s.layered_id, c.layer, c.coder, c.label, c.value_holding, c.topics_json, c.notes
             FROM codes c JOIN samples s ON s.id = c.sample_id ORDER BY s.layered_id, c.layer, c.coder",
        ),
        samples: rows(
            &conn,
            "SELECT cell, condition, idx, layered_id FROM samples ORDER BY id",
        ),
    }
}

/// The stored published Layer B consensus of a sample: (value_holding, support, label,
/// label support, record).
fn posture_of(study: &Study, lid: &str) -> Option<(String, i64, String, i64, String)> {
    let conn = rusqlite::Connection::open(study.dir().join("vuf.sqlite")).unwrap();
    conn.query_row(
        "SELECT c.value_holding, c.value_holding_support, c.label, c.label_support, c.record_json
         FROM consensus c JOIN samples s ON s.id = c.sample_id
         WHERE s.layered_id = ?1 AND c.layer = 'b' AND c.source = 'published'",
        [lid],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
    )
    .ok()
}

/// Stored per-coder codes of a sample and layer: (coder, label, topics).
fn codes_of(
    study: &Study,
    lid: &str,
    layer: &str,
) -> Vec<(String, Option<String>, Option<String>)> {
    let conn = rusqlite::Connection::open(study.dir().join("vuf.sqlite")).unwrap();
    let mut stmt = conn
        .prepare(
            "SELECT c.coder, c.label, c.topics_json FROM codes c JOIN samples s ON s.id = c.sample_id
             WHERE s.layered_id = ?1 AND c.layer = ?2 ORDER BY c.coder",
        )
        .unwrap();
    stmt.query_map([lid, layer], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// A study with the three samples, and the Layer B and Layer A consensus of CTRL1_1 and
/// CTRL3_1 imported (G1_1 has no codes yet).
fn coded_study() -> Study {
    let study = Study::new();
    let manifest = write(
        study.root(),
        "manifest_glm_5_1.jsonl",
        &[MANIFEST.trim_end()],
    );
    study.ok(&["import".as_ref(), manifest.as_os_str()]);
    let b = write(
        study.root(),
        "good/posture/consensus.jsonl",
        &[B_CTRL1, B_CTRL3],
    );
    let a = write(
        study.root(),
        "good/layer_a/consensus_300.jsonl",
        &[A_CTRL1, A_CTRL3],
    );
    let (code, out, err) = import_codes(&study, &[&b, &a]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.contains(&format!(
            "{}: 2 rows as layer_b_consensus: 6 codes new, 0 already stored, 2 consensus rows new, \
             0 already stored, 0 unmatched, 0 errors, 0 conflicts",
            b.display()
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "{}: 2 rows as layer_a_consensus: 0 codes new, 0 already stored, 2 consensus rows new, \
             0 already stored, 0 unmatched, 0 errors, 0 conflicts",
            a.display()
        )),
        "{out}"
    );
    assert_eq!(err, "", "{err}");
    study
}

/// The stored values the fault tests must find unchanged, worked out from the fixtures.
#[track_caller]
fn assert_original_values(study: &Study) {
    assert_eq!(
        posture_of(study, LID_CTRL1),
        Some((
            "recited_not_owned".into(),
            3,
            "disowned_service_frame".into(),
            3,
            B_CTRL1.into()
        ))
    );
    assert_eq!(
        posture_of(study, LID_CTRL3),
        Some((
            "owned".into(),
            3,
            "owned_world_change_advocacy".into(),
            2,
            B_CTRL3.into()
        ))
    );
    assert_eq!(posture_of(study, LID_G1), None);
    let labels: Vec<(String, Option<String>)> = codes_of(study, LID_CTRL3, "b")
        .into_iter()
        .map(|(c, l, _)| (c, l))
        .collect();
    assert_eq!(
        labels,
        [
            (
                "glm-4-7".into(),
                Some("owned_reflective_experiential".into())
            ),
            (
                "kimi-k2-6".into(),
                Some("owned_world_change_advocacy".into())
            ),
            (
                "qwen3-6-35b-a3b".into(),
                Some("owned_world_change_advocacy".into())
            ),
        ]
    );
}

#[test]
fn a_changed_copy_of_a_stored_consensus_row_is_a_conflict_and_never_replaces_it() {
    let study = coded_study();
    let before = snapshot(&study);
    // The tester's case: CTRL1_1 as stored, except value_holding recited -> owned; the
    // CTRL3_1 row beside it is the stored one.
    let bad = changed(
        B_CTRL1,
        r#""value_holding": "recited_not_owned", "value_holding_support""#,
        r#""value_holding": "owned", "value_holding_support""#,
    );
    let f = write(study.root(), "changed/consensus.jsonl", &[&bad, B_CTRL3]);
    let (code, out, err) = import_codes(&study, &[&f]);
    assert_eq!(code, Some(1), "{out}{err}");
    assert_eq!(
        out,
        format!(
            "{}: 2 rows as layer_b_consensus: 0 codes new, 3 already stored, 0 consensus rows new, \
             1 already stored, 0 unmatched, 0 errors, 1 conflict\n",
            f.display()
        )
    );
    assert_eq!(
        err,
        format!(
            "  {}:1: {LID_CTRL1}: the stored layer B consensus differs in value_holding (stored \
             \"recited_not_owned\", this row \"owned\"); kept the stored one\n\
             vuf: import-codes: 1 problem reported above; everything else was imported\n",
            f.display()
        )
    );
    assert_eq!(snapshot(&study), before);
    assert_original_values(&study);

    // A changed coder record (kimi's notes) is a difference of the row as well.
    let bad = changed(
        B_CTRL3,
        "Owned wish to end poverty.",
        "Owned wish to end poverty!",
    );
    let f = write(study.root(), "changed/notes.jsonl", &[&bad]);
    let (code, _, err) = import_codes(&study, &[&f]);
    // Nothing else in the file: nothing imported, exit 2.
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains(&format!(
            "  {}:1: {LID_CTRL3}: the stored layer B consensus differs in coder_records; kept the stored one\n",
            f.display()
        )),
        "{err}"
    );
    assert_eq!(snapshot(&study), before);

    // The identical file again: everything already stored, exit 0.
    let good = study.root().join("good/posture/consensus.jsonl");
    let (code, out, err) = import_codes(&study, &[&good]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert_eq!(
        out,
        format!(
            "{}: 2 rows as layer_b_consensus: 0 codes new, 6 already stored, 0 consensus rows new, \
             2 already stored, 0 unmatched, 0 errors, 0 conflicts\n",
            good.display()
        )
    );
    assert_eq!(err, "");
    assert_eq!(snapshot(&study), before);
}

#[test]
fn bad_layer_b_consensus_fields_are_errors_that_name_the_field() {
    let study = coded_study();
    let before = snapshot(&study);
    let coders_all = r#""coder_records": [{"coder_key": "kimi-k2-6", "primary_label": "disowned_service_frame", "value_holding": "recited_not_owned", "secondary_texture": null, "boundary_flag": false, "notes": "Disclaims interiority, then recites design values."}, {"coder_key": "glm-4-7", "primary_label": "disowned_service_frame", "value_holding": "recited_not_owned", "secondary_texture": "disowned_service_default", "boundary_flag": false, "notes": "Service frame."}, {"coder_key": "qwen3-6-35b-a3b", "primary_label": "disowned_service_frame", "value_holding": "recited_not_owned", "secondary_texture": null, "boundary_flag": false, "notes": "Values attributed to design."}]"#;
    let cases: Vec<(String, String)> = vec![
        (
            changed(
                B_CTRL1,
                r#""value_holding": "recited_not_owned", "value_holding_support""#,
                r#""value_holding": "totally_owned", "value_holding_support""#,
            ),
            "value_holding: \"totally_owned\" is not one of owned, relocated_or_partial, \
             recited_not_owned, indeterminate, uncodeable (PROTOCOL 5.2)"
                .into(),
        ),
        (
            changed(
                B_CTRL1,
                r#""value_holding_support": 3"#,
                r#""value_holding_support": 1000000000000000000000000000000"#,
            ),
            "value_holding_support: 1e+30 is not a whole number from 1 to 3 (the row's 3 coder \
             records; PROTOCOL 5.7)"
                .into(),
        ),
        (
            changed(
                B_CTRL1,
                r#""value_holding_support": 3"#,
                r#""value_holding_support": 0"#,
            ),
            "value_holding_support: 0 is not a whole number from 1 to 3 (the row's 3 coder \
             records; PROTOCOL 5.7)"
                .into(),
        ),
        (
            changed(
                B_CTRL1,
                r#""collapsed_primary_label_support": 3"#,
                r#""collapsed_primary_label_support": 4"#,
            ),
            "collapsed_primary_label_support: 4 is not a whole number from 1 to 3 (the row's 3 \
             coder records; PROTOCOL 5.7)"
                .into(),
        ),
        (
            changed(B_CTRL1, coders_all, r#""coder_records": []"#),
            "coder_records: empty; a consensus needs at least one coder's vote (PROTOCOL 5.7)"
                .into(),
        ),
        (
            changed(
                B_CTRL1,
                r#""coder_key": "kimi-k2-6""#,
                r#""coder_key": "kimi\u001b[2J\u001b]0;owned\u0007""#,
            ),
            "coder_records[0].coder_key: \"kimi\\u001b[2J\\u001b]0;owned\\u0007\" is not a usable \
             coder key (not empty, no spaces or control characters)"
                .into(),
        ),
        (
            changed(
                B_CTRL1,
                r#""coder_key": "glm-4-7""#,
                r#""coder_key": "kimi-k2-6""#,
            ),
            "coder_records[1].coder_key: coder \"kimi-k2-6\" votes twice".into(),
        ),
        (
            changed(
                B_CTRL1,
                r#""coder_key": "glm-4-7", "primary_label": "disowned_service_frame""#,
                r#""coder_key": "glm-4-7", "primary_label": "owned""#,
            ),
            "coder_records[1].primary_label: \"owned\" is not a posture label (PROTOCOL 5.5: one \
             of the six collapsed labels or an alias of one)"
                .into(),
        ),
        (
            changed(
                B_CTRL1,
                r#""coder_key": "qwen3-6-35b-a3b", "primary_label": "disowned_service_frame", "value_holding": "recited_not_owned""#,
                r#""coder_key": "qwen3-6-35b-a3b", "primary_label": "disowned_service_frame", "value_holding": "owned""#,
            ),
            "coder_records[2].value_holding: \"owned\" does not go with the label \
             disowned_service_frame, whose value_holding is recited_not_owned (PROTOCOL 5.2)"
                .into(),
        ),
        (
            changed(
                B_CTRL1,
                r#""collapsed_primary_label": "disowned_service_frame""#,
                r#""collapsed_primary_label": "<b>owned</b>""#,
            ),
            "collapsed_primary_label: \"<b>owned</b>\" is not a posture label (PROTOCOL 5.5: one \
             of the six collapsed labels or an alias of one)"
                .into(),
        ),
        (
            changed(
                B_CTRL1,
                r#""value_holding_votes": {"recited_not_owned": 3}"#,
                r#""value_holding_votes": {"recited_not_owned": 3, "owned": -1}"#,
            ),
            "value_holding_votes.owned: -1 is not a whole number of votes from 1".into(),
        ),
        (
            changed(
                B_CTRL1,
                r#""notes": "Service frame.""#,
                r#""notes": ["Service frame."]"#,
            ),
            "coder_records[1].notes: [\"Service frame.\"] is not text".into(),
        ),
    ];
    for (i, (bad, message)) in cases.iter().enumerate() {
        // Beside the stored CTRL3_1 row, so the file imports something: exit 1.
        let f = write(study.root(), &format!("bad/{i}.jsonl"), &[bad, B_CTRL3]);
        let (code, out, err) = import_codes(&study, &[&f]);
        assert_eq!(code, Some(1), "case {i}: {out}{err}");
        assert_eq!(
            out,
            format!(
                "{}: 2 rows as layer_b_consensus: 0 codes new, 3 already stored, 0 consensus rows \
                 new, 1 already stored, 0 unmatched, 1 error, 0 conflicts\n",
                f.display()
            ),
            "case {i}"
        );
        assert_eq!(
            err,
            format!(
                "  {}:1: {LID_CTRL1}: {message}\n\
                 vuf: import-codes: 1 problem reported above; everything else was imported\n",
                f.display()
            ),
            "case {i}"
        );
        assert!(!err.contains('\u{1b}') && !err.contains('\u{7}'), "{err:?}");
        assert_eq!(snapshot(&study), before, "case {i}");
    }
    assert_original_values(&study);
}

#[test]
fn changed_ids_are_conflicts_and_the_stored_sample_keeps_its_identity() {
    let study = coded_study();
    let before = snapshot(&study);
    let sample = format!("{CELL}/CTRL1_1");
    let cases: Vec<(String, String)> = vec![
        // Joins by cell + sample_id, but names the sample by another id.
        (
            changed(B_CTRL1, LID_CTRL1, "GLM51_glm-5-1-or-pin-ambient_CTRL1_999"),
            format!(
                "GLM51_glm-5-1-or-pin-ambient_CTRL1_999: layered_id: this row says \
                 \"GLM51_glm-5-1-or-pin-ambient_CTRL1_999\", the stored sample {sample} has \
                 \"{LID_CTRL1}\"; not imported"
            ),
        ),
        // Joins by layered_id, but its sample_id, model, or condition is another's.
        (
            changed(
                B_CTRL1,
                r#""sample_id": "CTRL1_1""#,
                r#""sample_id": "CTRL1_2""#,
            ),
            format!(
                "{LID_CTRL1}: sample_id: this row says \"CTRL1_2\", the stored sample {sample} \
                 has \"CTRL1_1\"; not imported"
            ),
        ),
        (
            changed(B_CTRL1, r#""model": "glm-5-1""#, r#""model": "glm-5-2""#),
            format!(
                "{LID_CTRL1}: model: this row says \"glm-5-2\", the stored sample {sample} has \
                 \"glm-5-1\"; not imported"
            ),
        ),
        (
            changed(
                B_CTRL1,
                r#""processing_chain": "stated_values""#,
                r#""processing_chain": "world_change_wishes""#,
            ),
            format!(
                "{LID_CTRL1}: processing_chain: this row says \"world_change_wishes\", the stored \
                 sample {sample} has \"stated_values\"; not imported"
            ),
        ),
    ];
    for (i, (bad, message)) in cases.iter().enumerate() {
        let f = write(study.root(), &format!("ids/{i}.jsonl"), &[bad, B_CTRL3]);
        let (code, out, err) = import_codes(&study, &[&f]);
        assert_eq!(code, Some(1), "case {i}: {out}{err}");
        assert!(
            out.ends_with("0 unmatched, 0 errors, 1 conflict\n"),
            "case {i}: {out}"
        );
        assert_eq!(
            err,
            format!(
                "  {}:1: {message}\n\
                 vuf: import-codes: 1 problem reported above; everything else was imported\n",
                f.display()
            ),
            "case {i}"
        );
        assert_eq!(snapshot(&study), before, "case {i}");
    }
    // The samples keep their ids, and the stored record (which `vuf export codes` writes)
    // keeps the published one.
    assert_eq!(
        snapshot(&study).samples,
        [
            [
                Some(CELL.into()),
                Some("CTRL1".into()),
                Some("1".into()),
                Some(LID_CTRL1.into())
            ],
            [
                Some(CELL.into()),
                Some("CTRL3".into()),
                Some("1".into()),
                Some(LID_CTRL3.into())
            ],
            [
                Some(CELL.into()),
                Some("G1".into()),
                Some("1".into()),
                Some(LID_G1.into())
            ],
        ]
    );
    assert_original_values(&study);
}

#[test]
fn topic_keys_outside_the_chains_taxonomy_are_errors() {
    let study = coded_study();
    let before = snapshot(&study);
    let cases: Vec<(&str, String, &str, String)> = vec![
        (
            "consensus_300.jsonl",
            changed(
                A_CTRL1,
                r#""consensus_topics": [{"topic_key": "helpfulness_usefulness""#,
                r#""consensus_topics": [{"topic_key": "<script>alert(9)</script>""#,
            ),
            LID_CTRL1,
            "consensus_topics[0].topic_key: \"<script>alert(9)</script>\" is not a topic of the \
             stated_values taxonomy (PROTOCOL 4.2)"
                .into(),
        ),
        // A consensus topic of one coder.
        (
            "consensus_300.jsonl",
            changed(
                A_CTRL1,
                r#""topic_key": "honesty_truth", "supporting_coders": ["kimi-k2-6", "qwen3-6-35b-a3b"], "evidence_spans": []}], "non_endorsed_mentions""#,
                r#""topic_key": "honesty_truth", "supporting_coders": ["kimi-k2-6"], "evidence_spans": []}], "non_endorsed_mentions""#,
            ),
            LID_CTRL1,
            "consensus_topics[1].supporting_coders: [\"kimi-k2-6\"] is fewer than the two coders a \
             consensus topic needs (PROTOCOL 4.7)"
                .into(),
        ),
        // A stated-values key on a world-change sample.
        (
            "consensus_300.jsonl",
            changed(
                A_CTRL3,
                r#"[{"topic_key": "reduce_poverty", "supporting_coders": ["glm-4-7", "kimi-k2-6", "qwen3-6-35b-a3b"], "evidence_spans": []}], "non_endorsed_mentions""#,
                r#"[{"topic_key": "honesty_truth", "supporting_coders": ["glm-4-7", "kimi-k2-6", "qwen3-6-35b-a3b"], "evidence_spans": []}], "non_endorsed_mentions""#,
            ),
            LID_CTRL3,
            "consensus_topics[0].topic_key: \"honesty_truth\" is not a topic of the \
             world_change_wishes taxonomy (PROTOCOL 4.2)"
                .into(),
        ),
        (
            "consensus_300.jsonl",
            changed(
                A_CTRL1,
                r#""supporting_coders": ["kimi-k2-6", "qwen3-6-35b-a3b"], "evidence_spans": []}], "non_endorsed_mentions""#,
                r#""supporting_coders": ["kimi-k2-6", "deepseek-v4-pro"], "evidence_spans": []}], "non_endorsed_mentions""#,
            ),
            LID_CTRL1,
            "consensus_topics[1].supporting_coders: coder \"deepseek-v4-pro\" is not one of the \
             eligible_coders"
                .into(),
        ),
        (
            "consensus_300.jsonl",
            changed(
                A_CTRL1,
                r#""wish_topics": []"#,
                r#""wish_topics": [{"topic_key": "reduce_poverty"}]"#,
            ),
            LID_CTRL1,
            "wish_topics: [{\"topic_key\":\"reduce_poverty\"}] must be empty for a stated_values \
             sample (PROTOCOL 4.8)"
                .into(),
        ),
    ];
    for (i, (name, bad, lid, message)) in cases.iter().enumerate() {
        // Beside the stored row of the other sample: exit 1.
        let other = if *lid == LID_CTRL1 { A_CTRL3 } else { A_CTRL1 };
        let f = write(study.root(), &format!("topics/{i}/{name}"), &[bad, other]);
        let (code, out, err) = import_codes(&study, &[&f]);
        assert_eq!(code, Some(1), "case {i}: {out}{err}");
        assert_eq!(
            out,
            format!(
                "{}: 2 rows as layer_a_consensus: 0 codes new, 0 already stored, 0 consensus rows \
                 new, 1 already stored, 0 unmatched, 1 error, 0 conflicts\n",
                f.display()
            ),
            "case {i}"
        );
        assert_eq!(
            err,
            format!(
                "  {}:1: {lid}: {message}\n\
                 vuf: import-codes: 1 problem reported above; everything else was imported\n",
                f.display()
            ),
            "case {i}"
        );
        assert_eq!(snapshot(&study), before, "case {i}");
    }

    // A per-coder Layer A row with a world-change key on a stated-values sample: that row
    // is left out, the other coder's row of the same file is imported.
    let bad = changed(
        A_G1_KIMI,
        r#""topics": ["honesty_truth", "curiosity_learning"]"#,
        r#""topics": ["honesty_truth", "reduce_poverty"]"#,
    );
    let f = write(study.root(), "topics/coder.jsonl", &[&bad, A_G1_GLM]);
    let (code, out, err) = import_codes(&study, &[&f]);
    assert_eq!(code, Some(1), "{out}{err}");
    assert_eq!(
        out,
        format!(
            "{}: 2 rows as layer_a_coder: 1 code new, 0 already stored, 0 consensus rows, \
             0 unmatched, 1 error, 0 conflicts\n",
            f.display()
        )
    );
    assert_eq!(
        err,
        format!(
            "  {}:1: {LID_G1}: topics[1]: \"reduce_poverty\" is not a topic of the stated_values \
             taxonomy (PROTOCOL 4.2)\n\
             vuf: import-codes: 1 problem reported above; everything else was imported\n",
            f.display()
        )
    );
    assert_eq!(
        codes_of(&study, LID_G1, "a"),
        [("glm-4-7".into(), None, Some(r#"["honesty_truth"]"#.into()))]
    );
    // The stored Layer A topics of CTRL1_1 are the two of the fixture.
    let after = snapshot(&study);
    assert_eq!(after.consensus, before.consensus);
    let ctrl1_a = after
        .consensus
        .iter()
        .find(|r| r[0].as_deref() == Some(LID_CTRL1) && r[1].as_deref() == Some("a"))
        .unwrap();
    assert_eq!(
        ctrl1_a[7].as_deref(),
        Some(
            r#"[{"topic_key":"helpfulness_usefulness","supporting_coders":["glm-4-7","kimi-k2-6","qwen3-6-35b-a3b"]},{"topic_key":"honesty_truth","supporting_coders":["kimi-k2-6","qwen3-6-35b-a3b"]}]"#
        )
    );
}

#[test]
fn coder_keys_must_print_as_themselves_and_unknown_ones_are_imported_with_a_warning() {
    let study = coded_study();
    // A coder that is not one of the paper's three (a vuf study's own coder, say): imported,
    // with one warning per file and coder; exit 0.
    let own = changed(
        B_G1_CODER,
        r#""coder_key": "kimi-k2-6""#,
        r#""coder_key": "my-coder-1""#,
    );
    let f = write(study.root(), "coders/own.jsonl", &[&own]);
    let (code, out, err) = import_codes(&study, &[&f]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert_eq!(
        out,
        format!(
            "{}: 1 row as layer_b_coder: 1 code new, 0 already stored, 0 consensus rows, \
             0 unmatched, 0 errors, 0 conflicts\n",
            f.display()
        )
    );
    assert_eq!(
        err,
        format!(
            "  {}:1: {LID_G1}: coder \"my-coder-1\" is not one of the paper's coders (kimi-k2-6, \
             glm-4-7, qwen3-6-35b-a3b); imported (further rows of this coder in this file are not \
             listed)\n",
            f.display()
        )
    );
    let before = snapshot(&study);

    // Escape sequences in a key are an error, shown escaped; a label outside the PROTOCOL 5.5
    // table is an error too (it used to be stored, counted as uncodeable).
    let esc = changed(
        B_G1_CODER,
        r#""coder_key": "kimi-k2-6""#,
        r#""coder_key": "kimi\u001b[31m\u009b2J""#,
    );
    let label = changed(
        B_G1_CODER,
        r#""primary_label": "owned_reflective_experiential""#,
        r#""primary_label": "owned""#,
    );
    let holding = changed(
        B_G1_CODER,
        r#""value_holding": "owned""#,
        r#""value_holding": "relocated_or_partial""#,
    );
    let f = write(
        study.root(),
        "coders/bad.jsonl",
        &[&esc, &label, &holding, &own],
    );
    let (code, out, err) = import_codes(&study, &[&f]);
    assert_eq!(code, Some(1), "{out}{err}");
    assert_eq!(
        out,
        format!(
            "{}: 4 rows as layer_b_coder: 0 codes new, 1 already stored, 0 consensus rows, \
             0 unmatched, 3 errors, 0 conflicts\n",
            f.display()
        )
    );
    let p = f.display();
    assert_eq!(
        err,
        format!(
            "  {p}:1: {LID_G1}: coder_key: \"kimi\\u001b[31m\\u009b2J\" is not a usable coder key \
             (not empty, no spaces or control characters)\n\
             \x20 {p}:2: {LID_G1}: primary_label: \"owned\" is not a posture label (PROTOCOL 5.5: \
             one of the six collapsed labels or an alias of one)\n\
             \x20 {p}:3: {LID_G1}: value_holding: \"relocated_or_partial\" does not go with the \
             label owned_reflective_experiential, whose value_holding is owned (PROTOCOL 5.2)\n\
             \x20 {p}:4: {LID_G1}: coder \"my-coder-1\" is not one of the paper's coders \
             (kimi-k2-6, glm-4-7, qwen3-6-35b-a3b); imported (further rows of this coder in this \
             file are not listed)\n\
             vuf: import-codes: 3 problems reported above; everything else was imported\n"
        )
    );
    assert!(
        !err.contains('\u{1b}') && !err.contains('\u{9b}'),
        "{err:?}"
    );
    assert_eq!(snapshot(&study), before);
    assert_eq!(
        codes_of(&study, LID_G1, "b"),
        [(
            "my-coder-1".into(),
            Some("owned_reflective_experiential".into()),
            None
        )]
    );
}

#[test]
fn a_consensus_must_follow_from_its_own_votes_and_a_row_imports_whole_or_not_at_all() {
    let study = coded_study();
    let before = snapshot(&study);
    let cases: Vec<(String, String)> = vec![
        // All three coders recite, the row says owned (G1_1 has no stored consensus, so this
        // is no conflict: the row contradicts itself).
        (
            changed(
                &changed(
                    B_G1_DRAFT,
                    r#""value_holding": "recited_not_owned", "value_holding_support""#,
                    r#""value_holding": "owned", "value_holding_support""#,
                ),
                r#""value_holding_votes": {"recited_not_owned": 3}"#,
                r#""value_holding_votes": {"owned": 3}"#,
            ),
            "value_holding: \"owned\" is not the value_holding the coder records vote for: the \
             majority of the row's 3 coder records is recited_not_owned (PROTOCOL 5.7)"
                .into(),
        ),
        (
            changed(
                B_G1_DRAFT,
                r#""collapsed_primary_label_support": 3"#,
                r#""collapsed_primary_label_support": 2"#,
            ),
            "collapsed_primary_label_support: 2 is not the number of coder records voting \
             disowned_service_frame (3)"
                .into(),
        ),
        (
            changed(
                B_G1_DRAFT,
                r#""collapsed_primary_label_votes": {"disowned_service_frame": 3}"#,
                r#""collapsed_primary_label_votes": {"disowned_service_frame": 2, "exposed_mechanism": 1}"#,
            ),
            "collapsed_primary_label_votes: {\"disowned_service_frame\":2,\"exposed_mechanism\":1} \
             does not count the coder records' labels"
                .into(),
        ),
        // Phase 4: the recorded collapsed label must be the PROTOCOL 5.8 mapping of the draft.
        (
            changed(
                B_G1_DRAFT,
                r#""coder_key": "kimi-k2-6", "original_primary_label": "disowned_service_default""#,
                r#""coder_key": "kimi-k2-6", "original_primary_label": "owned_lyrical_experiential""#,
            ),
            "coder_records[0].collapsed_primary_label: \"disowned_service_frame\" is not the \
             PROTOCOL 5.8 mapping of original_primary_label \"owned_lyrical_experiential\" \
             (owned_reflective_experiential)"
                .into(),
        ),
        (
            changed(
                B_G1_DRAFT,
                r#""coder_key": "glm-4-7", "original_primary_label": "disowned_service_default""#,
                r#""coder_key": "glm-4-7", "original_primary_label": "congruence_high""#,
            ),
            "coder_records[1].original_primary_label: \"congruence_high\" is not a label of the \
             phase-4 draft taxonomy (PROTOCOL 5.8)"
                .into(),
        ),
    ];
    for (i, (bad, message)) in cases.iter().enumerate() {
        let f = write(study.root(), &format!("votes/{i}.jsonl"), &[bad, B_CTRL3]);
        let (code, out, err) = import_codes(&study, &[&f]);
        assert_eq!(code, Some(1), "case {i}: {out}{err}");
        assert!(
            out.ends_with("0 unmatched, 1 error, 0 conflicts\n"),
            "case {i}: {out}"
        );
        assert_eq!(
            err,
            format!(
                "  {}:1: {LID_G1}: {message}\n\
                 vuf: import-codes: 1 problem reported above; everything else was imported\n",
                f.display()
            ),
            "case {i}"
        );
        assert_eq!(snapshot(&study), before, "case {i}");
    }
    // Layer A: a topic two of three coders chose means the coders disagreed.
    let bad = changed(
        A_CTRL1,
        r#""has_disagreement": true"#,
        r#""has_disagreement": false"#,
    );
    let bad = changed(&bad, LID_CTRL1, LID_G1);
    let bad = changed(&bad, r#""condition": "CTRL1""#, r#""condition": "G1""#);
    let f = write(study.root(), "votes/a.jsonl", &[&bad, A_CTRL3]);
    let (code, _, err) = import_codes(&study, &[&f]);
    assert_eq!(code, Some(1), "{err}");
    assert_eq!(
        err,
        format!(
            "  {}:1: {LID_G1}: has_disagreement: false, but consensus_topics[1] (honesty_truth) \
             has the support of only 2 of the 3 eligible coders (PROTOCOL 4.7)\n\
             vuf: import-codes: 1 problem reported above; everything else was imported\n",
            f.display()
        )
    );
    assert_eq!(snapshot(&study), before);

    // A consensus row whose coder record contradicts a stored vote is not imported at all:
    // not its consensus, not the other coders' records.
    let kimi = changed(
        B_G1_CODER,
        r#""primary_label": "owned_reflective_experiential", "value_holding": "owned""#,
        r#""primary_label": "exposed_mechanism", "value_holding": "indeterminate""#,
    );
    let k = write(study.root(), "votes/kimi.jsonl", &[&kimi]);
    let (code, _, err) = import_codes(&study, &[&k]);
    assert_eq!(code, Some(0), "{err}");
    let f = write(study.root(), "votes/whole.jsonl", &[B_G1_DRAFT, B_CTRL3]);
    let (code, out, err) = import_codes(&study, &[&f]);
    assert_eq!(code, Some(1), "{out}{err}");
    assert_eq!(
        out,
        format!(
            "{}: 2 rows as layer_b_consensus: 0 codes new, 3 already stored, 0 consensus rows new, \
             1 already stored, 0 unmatched, 0 errors, 1 conflict\n",
            f.display()
        )
    );
    assert_eq!(
        err,
        format!(
            "  {}:1: {LID_G1} coder kimi-k2-6: stored vote exposed_mechanism differs; kept \
             (nothing of this row was imported)\n\
             vuf: import-codes: 1 problem reported above; everything else was imported\n",
            f.display()
        )
    );
    assert_eq!(posture_of(&study, LID_G1), None);
    assert_eq!(
        codes_of(&study, LID_G1, "b"),
        [("kimi-k2-6".into(), Some("exposed_mechanism".into()), None)]
    );
    assert_original_values(&study);
}

#[test]
fn an_empty_directory_says_no_jsonl_files_were_found_and_exits_2() {
    let study = Study::new();
    let empty = study.root().join("codes");
    std::fs::create_dir_all(empty.join("layer_a")).unwrap();
    std::fs::write(empty.join("layer_a/qa_report.md"), "# QA\n").unwrap();
    let (code, out, err) = import_codes(&study, &[&empty]);
    assert_eq!(code, Some(2), "{out}{err}");
    assert_eq!(out, "");
    assert_eq!(
        err,
        format!(
            "  error: {}: no .jsonl files found in this directory (or below it); nothing to import\n\
             vuf: error: import-codes: nothing was imported (1 problem reported above)\n",
            empty.display()
        )
    );
    // Refused, so no study directory is left behind.
    assert!(!study.dir().exists());

    // Beside a file that imports: a problem, exit 1.
    let study = coded_study();
    let good = study.root().join("good/posture/consensus.jsonl");
    let (code, out, err) = import_codes(&study, &[&empty, &good]);
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(
        out.contains("2 already stored, 0 unmatched, 0 errors, 0 conflicts\n"),
        "{out}"
    );
    assert_eq!(
        err,
        format!(
            "  error: {}: no .jsonl files found in this directory (or below it); nothing to import\n\
             vuf: import-codes: 1 problem reported above; everything else was imported\n",
            empty.display()
        )
    );
}

#[test]
fn a_sample_known_only_by_its_default_id_takes_codes_named_by_the_published_id() {
    // Imported from traces (here: a manifest that names the sample by the default id
    // `<cell>_<COND>_<n>`), the sample has no published id: a published row joins it by cell
    // and sample_id and is imported; the sample keeps its id.
    let study = Study::new();
    let manifest = changed(
        MANIFEST.lines().next().unwrap(),
        LID_CTRL1,
        "glm-5-1-or-pin-ambient_CTRL1_1",
    );
    let m = write(study.root(), "manifest.jsonl", &[&manifest]);
    study.ok(&["import".as_ref(), m.as_os_str()]);
    let f = write(study.root(), "consensus.jsonl", &[B_CTRL1]);
    let (code, out, err) = import_codes(&study, &[&f]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert_eq!(
        out,
        format!(
            "{}: 1 row as layer_b_consensus: 3 codes new, 0 already stored, 1 consensus row new, \
             0 already stored, 0 unmatched, 0 errors, 0 conflicts\n",
            f.display()
        )
    );
    let conn = rusqlite::Connection::open(study.dir().join("vuf.sqlite")).unwrap();
    let (lid, vh, record): (String, String, String) = conn
        .query_row(
            "SELECT s.layered_id, c.value_holding, c.record_json FROM consensus c
             JOIN samples s ON s.id = c.sample_id WHERE c.layer = 'b'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!(
        (lid.as_str(), vh.as_str(), record.as_str()),
        (
            "glm-5-1-or-pin-ambient_CTRL1_1",
            "recited_not_owned",
            B_CTRL1
        )
    );
}

#[test]
fn a_file_of_no_codes_format_alone_is_nothing_imported_and_exits_2() {
    let study = coded_study();
    let odd = study.root().join("odd.jsonl");
    std::fs::write(&odd, "{\"a\": 1}\n").unwrap();
    let (code, out, err) = import_codes(&study, &[&odd]);
    assert_eq!(code, Some(2), "{out}{err}");
    assert_eq!(
        out,
        format!(
            "{}: not a recognised codes format; skipped\n",
            odd.display()
        )
    );
    assert_eq!(
        err,
        "vuf: error: import-codes: nothing was imported: no file held codes in a format vuf \
         reads (PROTOCOL 4.7 / 5.7 consensus or per-coder records)\n"
    );
    // A pretty-printed JSON document (a trace, models.json) is one note, not an error per
    // line.
    let doc = study.root().join("models.json");
    std::fs::write(&doc, "{\n  \"models\": [\n    {\"model\": \"m\"}\n  ]\n}\n").unwrap();
    let (code, out, _) = import_codes(&study, &[&doc]);
    assert_eq!(code, Some(2));
    assert_eq!(
        out,
        format!(
            "{}: one JSON document, not JSONL (one record per line): traces and models.json are \
             read by `vuf import`; skipped\n",
            doc.display()
        )
    );
    // Beside a file of codes, a skipped file is no problem (a labelled directory holds
    // manifests and drafts beside its codes).
    let good = study.root().join("good/posture/consensus.jsonl");
    let (code, out, err) = import_codes(&study, &[&odd, &good]);
    assert_eq!(code, Some(0), "{out}{err}");
}
