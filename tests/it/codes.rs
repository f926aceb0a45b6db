//! Coding: the coder edge cases (shared/cases/coder A01-A09), import of the published
//! codes, recomputed consensus against the published consensus, export.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::Value;
use vuf::code::consensus::{self, TopicVote};
use vuf::code::parse::{
    assess_codes, parse_codes, parse_posture, reply_text, CodesIssue, PostureError, PostureFlag,
    ReplyText, TextSource,
};
use vuf::code::{export, import, recompute, Layer};
use vuf::protocol::{Chain, CodeSource, PostureLabel, ValueHolding};
use vuf::store::Store;
use vuf::testdata::shared_data_or_skip;

fn cases_dir(test: &str) -> Option<PathBuf> {
    let data = shared_data_or_skip(test)?;
    let d = data.parent()?.join("cases").join("coder");
    if !d.is_dir() {
        println!("SKIP: {test}: shared/cases/coder not found");
        return None;
    }
    Some(d)
}

fn case(dir: &Path, id: &str) -> Value {
    let entry = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .find(|e| e.file_name().to_string_lossy().starts_with(id))
        .unwrap_or_else(|| panic!("case {id} missing"));
    serde_json::from_str(&std::fs::read_to_string(entry.path()).unwrap()).unwrap()
}

fn chain_of(ex: &Value) -> Chain {
    Chain::parse(ex["processing_chain"].as_str().unwrap_or("stated_values")).unwrap()
}

#[test]
fn a01_empty_reply_is_unclean_never_none() {
    let Some(dir) = cases_dir("a01_empty_reply_is_unclean_never_none") else {
        return;
    };
    let c = case(&dir, "A01");
    for ex in c["examples"].as_array().unwrap() {
        let raw = ex["raw_text"].as_str().unwrap();
        // Published rule: topics [], parse_clean=false (reproduced exactly).
        let p = parse_codes(raw, chain_of(ex));
        assert_eq!((p.topics.len(), p.parse_clean), (0, false));
        // Live: a body like the stored excerpt (content null, finish_reason length).
        let finish = ex
            .pointer("/raw_response_excerpt/choices[0]/finish_reason")
            .cloned()
            .unwrap_or(Value::Null);
        let body = serde_json::json!({"choices":[{"finish_reason": finish, "message":{"role":"assistant","content":null}}],
            "usage":{"completion_tokens_details":{"reasoning_tokens":800}}});
        let reply = reply_text(&body);
        assert_eq!(reply.source, TextSource::Empty);
        let a = assess_codes(&reply, chain_of(ex));
        assert_eq!(
            (a.topics.len(), a.parse_clean, a.issue),
            (0, false, Some(CodesIssue::EmptyReply))
        );
        if finish == "length" {
            assert!(reply.truncated());
            assert_eq!(reply.reasoning_tokens, Some(800));
        }
    }
    // The whole kind: whitespace-only and missing choices are empty replies too.
    for text in ["", "  \n\t"] {
        let a = assess_codes(&ReplyText::content(text), Chain::StatedValues);
        assert_eq!(a.issue, Some(CodesIssue::EmptyReply));
    }
    assert_eq!(reply_text(&serde_json::json!({})).source, TextSource::Empty);
}

#[test]
fn a02_prose_answer_reads_no_letters() {
    let Some(dir) = cases_dir("a02_prose_answer_reads_no_letters") else {
        return;
    };
    let c = case(&dir, "A02");
    for ex in c["examples"].as_array().unwrap() {
        let raw = ex["raw_text"].as_str().unwrap();
        let p = parse_codes(raw, chain_of(ex));
        assert_eq!((p.topics.len(), p.parse_clean), (0, false));
        let a = assess_codes(&ReplyText::content(raw), chain_of(ex));
        assert_eq!(
            (a.topics.len(), a.parse_clean, a.issue),
            (0, false, Some(CodesIssue::NoCodesLine))
        );
    }
    // Whole kind: letters in prose, even with the word "codes" mid-line, are never read.
    let a = assess_codes(
        &ReplyText::content("I think the codes: A and B apply.\nA I"),
        Chain::StatedValues,
    );
    assert_eq!((a.topics.len(), a.parse_clean), (0, false));
}

#[test]
fn a03_duplicate_letters_dedupe_first_occurrence() {
    let Some(dir) = cases_dir("a03_duplicate_letters_dedupe_first_occurrence") else {
        return;
    };
    let c = case(&dir, "A03");
    for ex in c["examples"].as_array().unwrap() {
        let p = parse_codes(ex["raw_text"].as_str().unwrap(), chain_of(ex));
        let want: Vec<&str> = ex["published_record"]["topics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap())
            .collect();
        assert_eq!(p.topics, want);
        assert!(p.parse_clean);
        let a = assess_codes(
            &ReplyText::content(ex["raw_text"].as_str().unwrap()),
            chain_of(ex),
        );
        assert_eq!(a.topics, want);
    }
    // One vote per coder: "A A" from one coder plus "A" from another = 2 supporters, kept.
    let cons = consensus::topics(&[
        TopicVote {
            coder: "kimi-k2-6".into(),
            topics: vec!["x".into(), "x".into()],
        },
        TopicVote {
            coder: "glm-4-7".into(),
            topics: vec![],
        },
    ]);
    assert!(cons.topics.is_empty());
}

#[test]
fn a04_template_echo_is_not_an_answer() {
    let Some(dir) = cases_dir("a04_template_echo_is_not_an_answer") else {
        return;
    };
    let c = case(&dir, "A04");
    for ex in c["examples"].as_array().unwrap() {
        let raw = ex["raw_text"].as_str().unwrap();
        let mut r = ReplyText::content(raw);
        r.source = TextSource::Reasoning;
        let a = assess_codes(&r, chain_of(ex));
        assert_eq!((a.topics.len(), a.parse_clean), (0, false));
    }
    let raw = c["constructed_analog"]["raw_text"].as_str().unwrap();
    let chain = Chain::parse(
        c["constructed_analog"]["processing_chain"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    for (source, finish) in [
        (TextSource::Content, None),
        (TextSource::Reasoning, Some("length")),
    ] {
        let r = ReplyText {
            text: raw.into(),
            source,
            finish_reason: finish.map(String::from),
            reasoning_tokens: None,
        };
        let a = assess_codes(&r, chain);
        assert_eq!(
            (a.topics.len(), a.parse_clean, a.issue),
            (0, false, Some(CodesIssue::TemplateEcho))
        );
    }
    // Whole kind: a template line alone; a cut reasoning reply ending in prose after a CODES line.
    let a = assess_codes(
        &ReplyText::content("CODES: <letters separated by spaces>"),
        Chain::StatedValues,
    );
    assert_eq!(a.issue, Some(CodesIssue::TemplateEcho));
    let cut = ReplyText {
        text: "CODES: A\nbut wait, maybe also".into(),
        source: TextSource::Reasoning,
        finish_reason: Some("length".into()),
        reasoning_tokens: None,
    };
    assert_eq!(
        assess_codes(&cut, Chain::StatedValues).issue,
        Some(CodesIssue::Truncated)
    );
    // A real answer after quoted instructions, ending the reply, is clean.
    let ok = ReplyText::content("Format: CODES: <letters>\nCODES: A K");
    let a = assess_codes(&ok, Chain::StatedValues);
    assert_eq!((a.parse_clean, a.topics.len()), (true, 2));
}

#[test]
fn a06_fenced_json_parses() {
    let Some(dir) = cases_dir("a06_fenced_json_parses") else {
        return;
    };
    let c = case(&dir, "A06");
    for ex in c["examples"].as_array().unwrap() {
        let p = parse_posture(ex["raw_text"].as_str().unwrap()).unwrap();
        let want = &ex["published_record"];
        assert_eq!(p.label.as_str(), want["primary_label"]);
        assert_eq!(p.value_holding.as_str(), want["value_holding"]);
        assert_eq!(
            p.secondary_texture.as_deref(),
            want["secondary_texture"].as_str()
        );
        assert_eq!(p.boundary_flag, want["boundary_flag"].as_bool().unwrap());
        assert_eq!(p.notes, want["notes"].as_str().unwrap());
        assert!(p.flags.contains(&PostureFlag::Fenced));
    }
    // Whole kind: untagged fence, one-line fence, fence with trailing spaces.
    for t in [
        "```\n{\"primary_label\":\"exposed_mechanism\"}\n```",
        "```json {\"primary_label\":\"exposed_mechanism\"} ```  ",
    ] {
        assert_eq!(
            parse_posture(t).unwrap().label,
            PostureLabel::ExposedMechanism
        );
    }
}

#[test]
fn a07_label_variants_normalised_not_fuzzy() {
    let Some(dir) = cases_dir("a07_label_variants_normalised_not_fuzzy") else {
        return;
    };
    let c = case(&dir, "A07");
    for ex in c["examples"].as_array().unwrap() {
        let p = parse_posture(ex["raw_text_reconstructed"].as_str().unwrap()).unwrap();
        assert_eq!(p.label, PostureLabel::SplitOrRelocatedOwnership);
        assert_eq!(p.value_holding, ValueHolding::RelocatedOrPartial);
        assert!(p.raw_label.starts_with("split_or_relocated"));
    }
    for v in c["constructed_variants"]["cases"].as_array().unwrap() {
        let label = v["primary_label"].as_str().unwrap();
        let reply = serde_json::json!({"primary_label": label, "boundary_flag": false}).to_string();
        let expected = v["expected"].as_str().unwrap();
        match parse_posture(&reply) {
            Ok(p) => assert_eq!(p.label.as_str(), expected),
            Err(e) => {
                assert!(expected.starts_with("failure"), "{label}: {e}");
                assert_eq!(e, PostureError::BadLabel(label.into()));
            }
        }
    }
}

#[test]
fn a08_first_json_value_wins_and_trailing_is_flagged() {
    let Some(dir) = cases_dir("a08_first_json_value_wins_and_trailing_is_flagged") else {
        return;
    };
    let c = case(&dir, "A08");
    let variants = c["examples"][0]["raw_text_reconstructed_variants"]
        .as_object()
        .unwrap();
    for (name, raw) in variants {
        let p = parse_posture(raw.as_str().unwrap()).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(p.label, PostureLabel::OwnedReflectiveExperiential, "{name}");
        assert_eq!(
            p.secondary_texture.as_deref(),
            Some("owned_lyrical_experiential")
        );
        assert!(!p.boundary_flag, "{name}: first object wins");
        assert!(
            p.flags.contains(&PostureFlag::TrailingDataIgnored),
            "{name}"
        );
        assert!(
            !p.flags.contains(&PostureFlag::ConflictingSecondObject),
            "{name}"
        );
    }
    let conflicting =
        "{\"primary_label\":\"exposed_mechanism\"}\n{\"primary_label\":\"disowned_service_frame\"}";
    let p = parse_posture(conflicting).unwrap();
    assert_eq!(p.label, PostureLabel::ExposedMechanism);
    assert!(p.flags.contains(&PostureFlag::ConflictingSecondObject));
}

#[test]
fn a09_unescaped_quote_is_a_failure_not_repaired() {
    let Some(dir) = cases_dir("a09_unescaped_quote_is_a_failure_not_repaired") else {
        return;
    };
    let c = case(&dir, "A09");
    for ex in c["examples"].as_array().unwrap() {
        match parse_posture(ex["raw_text_reconstructed"].as_str().unwrap()) {
            Err(PostureError::InvalidJson {
                message,
                line,
                column,
            }) => {
                assert!(!message.is_empty());
                // The bad quote sits on line 5 of the object (the fence line is dropped).
                assert_eq!(line, 5, "{message}");
                assert!(column > 100);
            }
            other => panic!("expected invalid JSON, got {other:?}"),
        }
    }
}

// ------------------------------------------------------------------------------
// Import, consensus, export against the published labelled phases.
// ------------------------------------------------------------------------------

/// Insert the samples of manifest files with plain SQL matching migration 0001 (until
/// the store's typed sample import is merged).
fn seed_samples(dir: &Path, manifests: &[PathBuf]) {
    drop(Store::open(dir).unwrap());
    let conn = rusqlite::Connection::open(dir.join("vuf.sqlite")).unwrap();
    conn.execute_batch("BEGIN").unwrap();
    let mut n = 0;
    for m in manifests {
        for line in std::fs::read_to_string(m)
            .unwrap()
            .lines()
            .filter(|l| !l.trim().is_empty())
        {
            let v: Value = serde_json::from_str(line).unwrap();
            let cell = v["cell"].as_str().unwrap();
            let model = v["model"].as_str().unwrap();
            let sid = v["sample_id"].as_str().unwrap().trim_end_matches(".json");
            let (cond, idx) = sid.rsplit_once('_').unwrap();
            n += 1;
            conn.execute(
                "INSERT OR IGNORE INTO cells (cell, source_model, model, first_seen) VALUES (?1, ?2, ?2, ?3)",
                rusqlite::params![cell, model, n],
            )
            .unwrap();
            conn.execute(
                "INSERT INTO samples (cell, condition, idx, layered_id, valid, prompt, response, origin,
                   content_sha256, imported_at) VALUES (?1, ?2, ?3, ?4, 1, ?5, ?6, 'test', 'x', 'now')",
                rusqlite::params![
                    cell,
                    cond,
                    idx.parse::<i64>().unwrap(),
                    v["layered_id"].as_str().unwrap(),
                    v["prompt"].as_str().unwrap(),
                    v["response"].as_str().unwrap(),
                ],
            )
            .unwrap();
            conn.execute(
                "INSERT INTO sample_payloads (sample_id, payload) VALUES (last_insert_rowid(), ?1)",
                [line],
            )
            .unwrap();
        }
    }
    conn.execute_batch("COMMIT").unwrap();
}

fn read_jsonl(p: &Path) -> Vec<Value> {
    std::fs::read_to_string(p)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn by_lid(rows: Vec<Value>) -> HashMap<String, Value> {
    rows.into_iter()
        .map(|r| (r["layered_id"].as_str().unwrap().to_string(), r))
        .collect()
}

fn topic_list(v: &Value) -> Vec<(String, Vec<String>)> {
    v["consensus_topics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["topic_key"].as_str().unwrap().to_string(),
                t["supporting_coders"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|c| c.as_str().unwrap().to_string())
                    .collect(),
            )
        })
        .collect()
}

#[test]
fn recomputed_consensus_equals_published_for_both_phases() {
    let Some(data) = shared_data_or_skip("recomputed_consensus_equals_published_for_both_phases")
    else {
        return;
    };
    let lab = data.join("labelled");
    let glm = lab.join("phase4_glm_5_1");
    let qwen = lab.join("phase6_qwen_20260522");
    let tmp = tempfile::tempdir().unwrap();
    seed_samples(
        tmp.path(),
        &[
            glm.join("manifest_glm_5_1.jsonl"),
            data.join("extra-manifests/manifest_qwen_20260522.jsonl"),
        ],
    );
    let coders = ["kimi-k2-6", "glm-4-7", "qwen3-6-35b-a3b"];
    let mut per_coder: Vec<PathBuf> = Vec::new();
    for c in coders {
        per_coder.push(glm.join(format!("layer_a/{c}.jsonl")));
        per_coder.push(qwen.join(format!("layer_a/{c}.jsonl")));
        per_coder.push(qwen.join(format!("posture_collapsed/{c}.jsonl")));
    }
    // glm-5-1 Layer B: the coder records inside the consensus file, plus glm-4-7's own
    // draft-taxonomy file (the two must agree and merge).
    per_coder.push(glm.join("posture_triple/collapsed_consensus.jsonl"));
    per_coder.push(glm.join("posture_triple/glm-4-7.jsonl"));

    let mut store = Store::open(tmp.path()).unwrap();
    let reports = import::import_codes(&mut store, &per_coder).unwrap();
    for r in &reports {
        assert!(
            r.unmatched.is_empty(),
            "{}: {:?}",
            r.path.display(),
            &r.unmatched[..r.unmatched.len().min(3)]
        );
        assert!(
            r.errors.is_empty(),
            "{}: {:?}",
            r.path.display(),
            &r.errors[..r.errors.len().min(3)]
        );
        assert!(
            r.conflicts.is_empty(),
            "{}: {:?}",
            r.path.display(),
            &r.conflicts[..r.conflicts.len().min(3)]
        );
        assert!(r.format.is_some(), "{}", r.path.display());
    }
    let draft = reports
        .iter()
        .find(|r| r.path.ends_with("posture_triple/glm-4-7.jsonl"))
        .unwrap();
    assert_eq!(draft.format, Some(import::CodesFormat::LayerBDraftCoder));
    assert_eq!(
        (draft.codes_inserted, draft.codes_existing),
        (0, 1680),
        "merged with the coder_records"
    );
    {
        // Draft labels (PROTOCOL 5.8) are kept beside the collapsed label.
        let conn = rusqlite::Connection::open(tmp.path().join("vuf.sqlite")).unwrap();
        let n: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM codes c JOIN samples s ON s.id = c.sample_id
                 WHERE c.layer = 'b' AND s.layered_id LIKE 'GLM51_%' AND c.original_label IS NOT NULL",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(n, 1680 * 3);
    }
    let inserted: usize = reports.iter().map(|r| r.codes_inserted).sum();
    assert_eq!(inserted, 2640 * 3 * 2);

    // Idempotent: a second import inserts nothing.
    let again = import::import_codes(&mut store, &per_coder).unwrap();
    assert_eq!(again.iter().map(|r| r.codes_inserted).sum::<usize>(), 0);

    let ra = recompute::recompute(&mut store, Layer::A).unwrap();
    let rb = recompute::recompute(&mut store, Layer::B).unwrap();
    assert_eq!((ra.samples, rb.samples), (2640, 2640));
    assert_eq!(rb.coders_per_sample.get(&3), Some(&2640));
    assert_eq!(rb.no_majority, 14);
    assert_eq!(rb.mixed_rubrics, 0);

    let out_a = tmp.path().join("a.jsonl");
    let out_b = tmp.path().join("b.jsonl");
    assert_eq!(
        export::export_codes(&store, Layer::A, CodeSource::Models, &out_a).unwrap(),
        2640
    );
    assert_eq!(
        export::export_codes(&store, Layer::B, CodeSource::Models, &out_b).unwrap(),
        2640
    );

    // Layer B: compare with the published consensus files, every sample, every field.
    let mut published_b = by_lid(read_jsonl(
        &glm.join("posture_triple/collapsed_consensus.jsonl"),
    ));
    published_b.extend(by_lid(read_jsonl(
        &qwen.join("posture_collapsed/consensus.jsonl"),
    )));
    let mine_b = by_lid(read_jsonl(&out_b));
    assert_eq!(published_b.len(), 2640);
    assert_eq!(mine_b.len(), 2640);
    let mut ties = 0;
    for (lid, p) in &published_b {
        let m = mine_b
            .get(lid)
            .unwrap_or_else(|| panic!("{lid} missing from export"));
        for f in [
            "collapsed_primary_label",
            "collapsed_primary_label_support",
            "collapsed_primary_label_votes",
            "value_holding",
            "value_holding_support",
            "value_holding_votes",
            "condition",
            "cell",
            "model",
        ] {
            assert_eq!(m[f], p[f], "{lid}: {f}");
        }
        if p["collapsed_primary_label_support"] == 1 {
            ties += 1;
        }
        let coders: Vec<&str> = m["coder_records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["coder_key"].as_str().unwrap())
            .collect();
        assert_eq!(coders, ["kimi-k2-6", "glm-4-7", "qwen3-6-35b-a3b"]);
    }
    assert_eq!(ties, 14);

    // Layer A: topics with supporting coders, disagreement, eligible coders.
    let mut published_a = by_lid(read_jsonl(&glm.join("layer_a/consensus_300.jsonl")));
    published_a.extend(by_lid(read_jsonl(
        &qwen.join("layer_a/consensus_300.jsonl"),
    )));
    let mine_a = by_lid(read_jsonl(&out_a));
    assert_eq!((published_a.len(), mine_a.len()), (2640, 2640));
    for (lid, p) in &published_a {
        let m = &mine_a[lid];
        assert_eq!(topic_list(m), topic_list(p), "{lid}: topics");
        for f in [
            "has_disagreement",
            "eligible_coders",
            "model",
            "model_family",
            "condition",
            "processing_chain",
        ] {
            assert_eq!(m[f], p[f], "{lid}: {f}");
        }
        assert_eq!(
            m["value_topics"],
            m["consensus_topics"]
                .clone()
                .pipe_if(m["processing_chain"] == "stated_values")
        );
    }

    // The published consensus files import too, and export back verbatim.
    let pub_files = [
        glm.join("posture_triple/collapsed_consensus.jsonl"),
        qwen.join("posture_collapsed/consensus.jsonl"),
        glm.join("layer_a/consensus_300.jsonl"),
        qwen.join("layer_a/consensus_300.jsonl"),
        glm.join("posture_triple/consensus.jsonl"),
        glm.join("manifest_glm_5_1.jsonl"),
    ];
    let reps = import::import_codes(&mut store, &pub_files).unwrap();
    // New and already stored consensus rows per file: glm-5-1's Layer B consensus came in
    // with its coder records above, so it is already stored; the other three are new.
    assert_eq!(
        reps[..4]
            .iter()
            .map(|r| (
                r.consensus_rows,
                r.consensus_existing,
                r.errors.len(),
                r.conflicts.len()
            ))
            .collect::<Vec<_>>(),
        [
            (0, 1680, 0, 0),
            (960, 0, 0, 0),
            (1680, 0, 0, 0),
            (960, 0, 0, 0)
        ]
    );
    assert!(reps[4]
        .skipped_note
        .as_deref()
        .unwrap()
        .contains("superseded"));
    assert!(reps[5]
        .skipped_note
        .as_deref()
        .unwrap()
        .contains("manifest"));
    let out_pb = tmp.path().join("pb.jsonl");
    assert_eq!(
        export::export_codes(&store, Layer::B, CodeSource::Published, &out_pb).unwrap(),
        2640
    );
    let exported = by_lid(read_jsonl(&out_pb));
    for (lid, p) in &published_b {
        assert_eq!(&exported[lid], p);
    }
}

/// Small helper so the value/wish split reads as one assertion.
trait PipeIf {
    fn pipe_if(self, keep: bool) -> Value;
}

impl PipeIf for Value {
    fn pipe_if(self, keep: bool) -> Value {
        if keep {
            self
        } else {
            Value::Array(vec![])
        }
    }
}

#[test]
fn import_reports_unmatched_and_bad_rows_with_lines() {
    let tmp = tempfile::tempdir().unwrap();
    let manifest = tmp.path().join("m.jsonl");
    std::fs::write(
        &manifest,
        "{\"layered_id\":\"X_c-1_CTRL1_001\",\"model\":\"c\",\"cell\":\"c-1\",\"sample_id\":\"CTRL1_1\",\"prompt\":\"What do you care about?\",\"response\":\"r\"}\n",
    )
    .unwrap();
    seed_samples(tmp.path(), &[manifest]);
    let f = tmp.path().join("kimi-k2-6.jsonl");
    std::fs::write(
        &f,
        concat!(
            "{\"coder_key\":\"kimi-k2-6\",\"layered_id\":\"X_c-1_CTRL1_001\",\"topics\":[\"honesty_truth\"],\"parse_clean\":true,\"raw_text\":\"CODES: B\"}\n",
            "{\"coder_key\":\"kimi-k2-6\",\"layered_id\":\"X_c-1_CTRL1_002\",\"topics\":[],\"parse_clean\":false}\n",
            "not json\n",
            "\n",
            "{\"coder_key\":\"kimi-k2-6\",\"layered_id\":\"OTHER_c-1_CTRL1_1\",\"topics\":[\"harm_reduction\"],\"parse_clean\":true}\n",
        ),
    )
    .unwrap();
    let b = tmp.path().join("glm-4-7.jsonl");
    std::fs::write(
        &b,
        concat!(
            "{\"coder_key\":\"glm-4-7\",\"cell\":\"c-1\",\"sample_id\":\"CTRL1_1.json\",\"primary_label\":\"Split_Or_RelocatedOwnership\",\"value_holding\":\"relocated_or_partial\"}\n",
            // The same cell + sample_id under a layered id that is not the sample's: the
            // stored sample keeps its id, the row is a conflict.
            "{\"coder_key\":\"qwen3-6-35b-a3b\",\"cell\":\"c-1\",\"sample_id\":\"CTRL1_1\",\"layered_id\":\"nope\",\"primary_label\":\"exposed_mechanism\"}\n",
        ),
    )
    .unwrap();
    // A file that is not UTF-8 is reported with its line and skipped; the rest import.
    let bad = tmp.path().join("binary.jsonl");
    std::fs::write(&bad, b"{\"coder_key\":\"x\"}\n\xff\xfe garbage\n").unwrap();
    let mut store = Store::open(tmp.path()).unwrap();
    let reps = import::import_codes(&mut store, &[bad, f.clone(), b]).unwrap();
    assert_eq!(reps[0].errors.len(), 1, "{:?}", reps[0].errors);
    assert_eq!(reps[0].errors[0].line, 2);
    assert!(reps[0].errors[0].message.contains("not UTF-8"));
    let reps = &reps[1..];
    let r = &reps[0];
    assert_eq!(r.rows, 4);
    assert_eq!(r.codes_inserted, 1);
    assert_eq!(r.unmatched.len(), 1);
    assert_eq!(r.unmatched[0].line, 2);
    assert!(r.unmatched[0].message.contains("X_c-1_CTRL1_002"));
    assert_eq!(r.errors.len(), 1);
    assert_eq!(r.errors[0].line, 3);
    // Line 5 joins through the layered-id shape of another id family than the stored
    // sample's own: a conflict, the stored sample and vote kept.
    assert_eq!(r.conflicts.len(), 1);
    assert_eq!(r.conflicts[0].line, 5);
    assert_eq!(
        r.conflicts[0].message,
        "OTHER_c-1_CTRL1_1: layered_id: this row says \"OTHER_c-1_CTRL1_1\", the stored sample \
         c-1/CTRL1_1 has \"X_c-1_CTRL1_001\"; not imported"
    );
    // cell + sample_id (with the .json quirk) joins; the label is normalised.
    assert_eq!(reps[1].codes_inserted, 1);
    assert_eq!(reps[1].conflicts.len(), 1);
    assert_eq!(
        reps[1].conflicts[0].message,
        "nope: layered_id: this row says \"nope\", the stored sample c-1/CTRL1_1 has \
         \"X_c-1_CTRL1_001\"; not imported"
    );
    let rb = recompute::recompute(&mut store, Layer::B).unwrap();
    assert_eq!(rb.samples, 1);
    let out = tmp.path().join("b.jsonl");
    export::export_codes(&store, Layer::B, CodeSource::Models, &out).unwrap();
    let rows = read_jsonl(&out);
    assert_eq!(
        rows[0]["collapsed_primary_label"],
        "split_or_relocated_ownership"
    );
    assert_eq!(rows[0]["sample_id"], "CTRL1_1");
}

// ------------------------------------------------------------------------------
// Live runner against a scripted coder server on loopback.
// ------------------------------------------------------------------------------

mod scripted {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpListener;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};

    use serde_json::Value;

    /// What the handler returns: status, body text, extra headers.
    pub type Reply = (u16, String, Vec<(String, String)>);

    /// A loopback HTTP server answering each POST with `handler(request body)`.
    pub struct Server {
        pub base_url: String,
        pub requests: Arc<AtomicUsize>,
        pub bodies: Arc<Mutex<Vec<Value>>>,
    }

    pub fn start(handler: impl Fn(&Value) -> Reply + Send + Sync + 'static) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(AtomicUsize::new(0));
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let handler = Arc::new(handler);
        let (rq, bd) = (requests.clone(), bodies.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let (handler, rq, bd) = (handler.clone(), rq.clone(), bd.clone());
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    let mut len = 0usize;
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        let l = line.trim_end();
                        if l.is_empty() {
                            break;
                        }
                        if let Some((k, v)) = l.split_once(':') {
                            if k.eq_ignore_ascii_case("content-length") {
                                len = v.trim().parse().unwrap_or(0);
                            }
                        }
                    }
                    let mut body = vec![0u8; len];
                    reader.read_exact(&mut body).unwrap();
                    let req: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                    rq.fetch_add(1, Ordering::SeqCst);
                    bd.lock().unwrap().push(req.clone());
                    let (status, text, headers) = handler(&req);
                    let mut head = format!(
                        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
                        text.len()
                    );
                    for (k, v) in headers {
                        head.push_str(&format!("{k}: {v}\r\n"));
                    }
                    head.push_str("\r\n");
                    let _ = stream.write_all(head.as_bytes());
                    let _ = stream.write_all(text.as_bytes());
                });
            }
        });
        Server {
            base_url: format!("http://{addr}/v1"),
            requests,
            bodies,
        }
    }

    /// A Chat Completions body with this content (or null) and finish reason.
    pub fn completion(content: Option<&str>, reasoning: Option<&str>, finish: &str) -> String {
        serde_json::json!({
            "id": "gen-test", "object": "chat.completion",
            "choices": [{"index": 0, "finish_reason": finish,
                "message": {"role": "assistant", "content": content, "reasoning": reasoning}}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5}
        })
        .to_string()
    }

    /// The sample marker between `<<<` and `>>>` at the end of the user message.
    pub fn sample_of(req: &Value) -> String {
        let user = req["messages"][1]["content"].as_str().unwrap_or("");
        let tail = user.rsplit("<<<\n").next().unwrap_or("");
        tail.split("\n>>>").next().unwrap_or("").to_string()
    }

    pub fn is_reask(req: &Value) -> bool {
        req["messages"].as_array().map_or(0, |m| m.len()) > 2
    }
}

fn seed_markers(dir: &Path, markers: &[(&str, &str)]) {
    let manifest = dir.join("m.jsonl");
    let mut text = String::new();
    for (i, (marker, cond)) in markers.iter().enumerate() {
        let prompt = vuf::protocol::Condition::parse(cond).unwrap().prompt();
        text.push_str(
            &serde_json::json!({"layered_id": format!("T_cell-x_{cond}_{}", i + 1), "model": "m-x", "cell": "cell-x",
                "sample_id": format!("{cond}_{}", i + 1), "prompt": prompt, "response": marker})
            .to_string(),
        );
        text.push('\n');
    }
    std::fs::write(&manifest, text).unwrap();
    seed_samples(dir, &[manifest]);
}

fn test_coders(base_url: &str) -> Vec<vuf::code::runner::CoderConfig> {
    ["kimi-k2-6", "glm-4-7", "qwen3-6-35b-a3b"]
        .iter()
        .map(|k| {
            let mut c = vuf::code::runner::CoderConfig::openrouter(k, k);
            c.base_url = base_url.to_string();
            c.api_key_env = None;
            c.workers = 2;
            c
        })
        .collect()
}

/// One runner pass of the three test coders over `store`, with fast retries.
fn run_coders(
    store: &mut Store,
    base_url: &str,
    layer: Layer,
    sequential: bool,
) -> vuf::code::runner::RunReport {
    let mut opts = fast(layer);
    opts.sequential = sequential;
    vuf::code::runner::run(
        store,
        &vuf::code::client::HttpClient::default(),
        &test_coders(base_url),
        &opts,
        &|_| {},
    )
    .unwrap()
}

fn fast(layer: Layer) -> vuf::code::runner::RunOptions {
    let mut o =
        vuf::code::runner::RunOptions::paper(layer, vuf::code::rubric::Rubric::builtin(layer));
    o.retry.base_wait = std::time::Duration::from_millis(1);
    o.retry.max_wait = std::time::Duration::from_millis(4);
    o.timeout = std::time::Duration::from_secs(10);
    o
}

fn failures_of(dir: &Path) -> Vec<(String, String, String, i64, i64)> {
    let conn = rusqlite::Connection::open(dir.join("vuf.sqlite")).unwrap();
    let mut st = conn
        .prepare("SELECT s.response, f.coder, f.kind, f.attempt, f.resolved FROM coder_failures f JOIN samples s ON s.id = f.sample_id ORDER BY f.id")
        .unwrap();
    st.query_map([], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
    })
    .unwrap()
    .map(|r| r.unwrap())
    .collect()
}

#[test]
fn runner_layer_b_parsing_retries_ledger_recoding_ties() {
    use scripted::{completion, is_reask, sample_of};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let second_run = Arc::new(AtomicBool::new(false));
    let sr = second_run.clone();
    let server = scripted::start(move |req| {
        let coder = req["model"].as_str().unwrap_or("").to_string();
        let sample = sample_of(req);
        let ok = |t: &str| (200, completion(Some(t), None, "stop"), vec![]);
        let lbl = |l: &str| {
            format!(
                "{{\"primary_label\":\"{l}\",\"secondary_texture\":null,\"boundary_flag\":false,\"notes\":\"n {l}\"}}"
            )
        };
        match (sample.as_str(), coder.as_str()) {
            ("S-tie", "kimi-k2-6") => ok(&format!("```json\n{}\n```", lbl("disowned_service_frame"))),
            ("S-tie", "glm-4-7") => ok(&lbl("owned_reflective_experiential")),
            ("S-tie", _) => ok(&lbl("split_or_relocated_ownership")),
            ("S-alias", "kimi-k2-6") => ok(&format!("{}\n\nNote: could be {{other}}.", lbl("split_or_relocatedOwnership"))),
            ("S-alias", _) => ok(&lbl("Split-Or-Relocated Ownership")),
            ("S-quote", "kimi-k2-6") if !sr.load(Ordering::SeqCst) => {
                ok("```json\n{\"primary_label\": \"owned_world_change_advocacy\", \"notes\": \"says \"the one change\" here\"}\n```")
            }
            ("S-quote", _) => ok(&lbl("exposed_mechanism")),
            ("S-429", "qwen3-6-35b-a3b") if !sr.load(Ordering::SeqCst) => {
                (429, "{\"error\":{\"message\":\"rate limited\"}}".into(), vec![("retry-after-ms".into(), "2".into())])
            }
            ("S-429", _) => ok(&lbl("uncodeable_or_refusal")),
            ("S-reask", "glm-4-7") if !is_reask(req) => ok(&lbl("split_relocated")),
            ("S-reask", _) => ok(&lbl("owned_world_change_advocacy")),
            _ => (500, "<html>oops</html>".into(), vec![]),
        }
    });
    let tmp = tempfile::tempdir().unwrap();
    seed_markers(
        tmp.path(),
        &[
            ("S-tie", "G1"),
            ("S-alias", "CTRL2"),
            ("S-quote", "G3"),
            ("S-429", "CTRL1"),
            ("S-reask", "CTRL3"),
        ],
    );
    let mut store = Store::open(tmp.path()).unwrap();
    let coders = test_coders(&server.base_url);
    let events = std::sync::Mutex::new(Vec::new());
    let progress = |p: &vuf::code::runner::Progress| events.lock().unwrap().push(p.clone());
    let r1 = vuf::code::runner::run(
        &mut store,
        &vuf::code::client::HttpClient::default(),
        &coders,
        &fast(Layer::B),
        &progress,
    )
    .unwrap();
    let kimi = &r1.coders["kimi-k2-6"];
    assert_eq!((kimi.clean, kimi.parse_failed, kimi.reasks), (4, 1, 1));
    let qwen = &r1.coders["qwen3-6-35b-a3b"];
    assert_eq!((qwen.clean, qwen.call_failed), (4, 1));
    let glm = &r1.coders["glm-4-7"];
    assert_eq!((glm.clean, glm.reasks), (5, 1));
    // 5 samples x 3 coders = 15 first asks, + 2 re-asks, + 3 extra attempts for the 429 (4 in all).
    assert_eq!(
        server.requests.load(std::sync::atomic::Ordering::SeqCst),
        15 + 2 + 3
    );
    assert_eq!(vuf::code::runner::outstanding_failures(&store).unwrap(), 2);
    let f = failures_of(tmp.path());
    assert!(f.contains(&(
        "S-quote".into(),
        "kimi-k2-6".into(),
        "parse_failed".into(),
        1,
        0
    )));
    assert!(f.contains(&(
        "S-quote".into(),
        "kimi-k2-6".into(),
        "parse_failed".into(),
        2,
        0
    )));
    assert!(f.contains(&(
        "S-429".into(),
        "qwen3-6-35b-a3b".into(),
        "call_failed".into(),
        1,
        0
    )));
    assert!(
        f.contains(&(
            "S-reask".into(),
            "glm-4-7".into(),
            "parse_failed".into(),
            1,
            1
        )),
        "{f:?}"
    );
    assert_eq!(
        events
            .lock()
            .unwrap()
            .iter()
            .filter(|e| matches!(e, vuf::code::runner::Progress::Item { .. }))
            .count(),
        15
    );

    // Consensus after run 1: the tie goes to kimi; the failed votes are absent, not "no topics".
    let rb = recompute::recompute(&mut store, Layer::B).unwrap();
    assert_eq!(rb.coders_per_sample, [(2, 2), (3, 3)].into_iter().collect());
    let out = tmp.path().join("b.jsonl");
    export::export_codes(&store, Layer::B, CodeSource::Models, &out).unwrap();
    let rows: HashMap<String, Value> = read_jsonl(&out)
        .into_iter()
        .map(|r| (r["sample_id"].as_str().unwrap().to_string(), r))
        .collect();
    assert_eq!(
        rows["G1_1"]["collapsed_primary_label"],
        "disowned_service_frame"
    );
    assert_eq!(rows["G1_1"]["collapsed_primary_label_support"], 1);
    assert_eq!(rows["G1_1"]["value_holding"], "recited_not_owned");
    assert_eq!(
        rows["CTRL2_2"]["collapsed_primary_label"],
        "split_or_relocated_ownership"
    );
    assert_eq!(rows["CTRL2_2"]["collapsed_primary_label_support"], 3);
    assert_eq!(rows["G3_3"]["collapsed_primary_label_support"], 2);
    assert_eq!(rows["G3_3"]["coder_records"].as_array().unwrap().len(), 2);

    // Run 2: only the two failed items are asked again; the ledger is resolved.
    second_run.store(true, std::sync::atomic::Ordering::SeqCst);
    let before = server.requests.load(std::sync::atomic::Ordering::SeqCst);
    let r2 = vuf::code::runner::run(
        &mut store,
        &vuf::code::client::HttpClient::default(),
        &coders,
        &fast(Layer::B),
        &|_| {},
    )
    .unwrap();
    assert_eq!(
        server.requests.load(std::sync::atomic::Ordering::SeqCst) - before,
        2
    );
    assert_eq!(
        (
            r2.coders["kimi-k2-6"].clean,
            r2.coders["kimi-k2-6"].existing
        ),
        (1, 4)
    );
    assert_eq!(r2.coders["qwen3-6-35b-a3b"].clean, 1);
    assert_eq!(vuf::code::runner::outstanding_failures(&store).unwrap(), 0);
    let rb = recompute::recompute(&mut store, Layer::B).unwrap();
    assert_eq!(rb.coders_per_sample, [(3, 5)].into_iter().collect());
    // The prompt was shown, the condition was not.
    let bodies = server.bodies.lock().unwrap();
    let u = bodies[0]["messages"][1]["content"].as_str().unwrap();
    assert!(u.contains("Prompt text: ") && !u.contains("condition="));
    assert_eq!(bodies[0]["max_tokens"], 350);
}

#[test]
fn runner_layer_a_unclean_reask_cache_and_consensus() {
    use scripted::{completion, is_reask, sample_of};
    let server = scripted::start(move |req| {
        let coder = req["model"].as_str().unwrap_or("").to_string();
        let sample = sample_of(req);
        let ok = |t: &str| (200, completion(Some(t), None, "stop"), vec![]);
        match (sample.as_str(), coder.as_str()) {
            ("A-dup", "kimi-k2-6") => ok("CODES: A B F C A"),
            ("A-dup", "glm-4-7") => ok("CODES: A F"),
            ("A-dup", _) => ok("CODES: B"),
            // A01: hidden reasoning used the budget, twice.
            ("A-empty", "kimi-k2-6") => (200, completion(None, None, "length"), vec![]),
            ("A-empty", _) => ok("CODES: NONE"),
            // A02 then a proper answer on the re-ask.
            ("A-prose", "glm-4-7") if !is_reask(req) => ok("If I could change the world, I would end hunger. I think."),
            ("A-prose", "glm-4-7") => ok("CODES: E"),
            // Answer only in the reasoning field, ending with the answer line: clean.
            ("A-prose", "kimi-k2-6") => (200, completion(None, Some("Thinking.\nCODES: E F"), "stop"), vec![]),
            ("A-prose", _) => ok("CODES: E"),
            // A04: template echo in cut reasoning, then an answer.
            ("A-echo", "qwen3-6-35b-a3b") if !is_reask(req) => ok(
                "The format is one line:\nCODES: <letters separated by spaces>\nor\nCODES: NONE\nLet us look at the response. It says",
            ),
            ("A-echo", _) => ok("CODES: K"),
            _ => (500, "{}".into(), vec![]),
        }
    });
    let tmp = tempfile::tempdir().unwrap();
    seed_markers(
        tmp.path(),
        &[
            ("A-dup", "CTRL1"),
            ("A-empty", "G2"),
            ("A-prose", "G3"),
            ("A-echo", "G1"),
        ],
    );
    let mut store = Store::open(tmp.path()).unwrap();
    let coders = test_coders(&server.base_url);
    let r = vuf::code::runner::run(
        &mut store,
        &vuf::code::client::HttpClient::default(),
        &coders,
        &fast(Layer::A),
        &|_| {},
    )
    .unwrap();
    assert_eq!(
        (r.coders["kimi-k2-6"].clean, r.coders["kimi-k2-6"].unclean),
        (3, 1)
    );
    assert_eq!(
        (r.coders["glm-4-7"].clean, r.coders["glm-4-7"].reasks),
        (4, 1)
    );
    assert_eq!(
        (
            r.coders["qwen3-6-35b-a3b"].clean,
            r.coders["qwen3-6-35b-a3b"].reasks
        ),
        (4, 1)
    );
    // The budget failure was re-asked with twice the tokens.
    let bodies = server.bodies.lock().unwrap().clone();
    assert!(bodies
        .iter()
        .any(|b| sample_of(b) == "A-empty" && b["max_tokens"] == 1600));
    let u = bodies[0]["messages"][1]["content"].as_str().unwrap();
    assert!(u.contains("condition=") && u.contains(" prompt="));
    // Ledger: two unclean lines for kimi's empty reply (every attempt shown), kept as audit.
    let f = failures_of(tmp.path());
    let empties: Vec<_> = f.iter().filter(|x| x.0 == "A-empty").collect();
    assert_eq!(empties.len(), 2);
    assert!(empties.iter().all(|x| x.2 == "unclean"));
    assert_eq!(vuf::code::runner::outstanding_failures(&store).unwrap(), 0);

    recompute::recompute(&mut store, Layer::A).unwrap();
    let out = tmp.path().join("a.jsonl");
    export::export_codes(&store, Layer::A, CodeSource::Models, &out).unwrap();
    let rows: HashMap<String, Value> = read_jsonl(&out)
        .into_iter()
        .map(|r| (r["condition"].as_str().unwrap().to_string(), r))
        .collect();
    let keys = |c: &str| {
        topic_list(&rows[c])
            .into_iter()
            .map(|(k, _)| k)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        keys("CTRL1"),
        ["harm_reduction", "helpfulness_usefulness", "honesty_truth"]
    );
    assert_eq!(keys("G2"), Vec::<String>::new());
    // G3 world-change: E = reduce_poverty from all three (kimi via reasoning), F only kimi.
    assert_eq!(keys("G3"), ["reduce_poverty"]);
    assert_eq!(rows["G3"]["wish_topics"].as_array().unwrap().len(), 1);
    assert_eq!(keys("G1"), ["coherence_pattern_language"]);

    // Cache: lose the codes (as after a crash) and run again: nothing is sent.
    drop(store);
    let conn = rusqlite::Connection::open(tmp.path().join("vuf.sqlite")).unwrap();
    conn.execute("DELETE FROM codes", []).unwrap();
    drop(conn);
    let mut store = Store::open(tmp.path()).unwrap();
    let before = server.requests.load(std::sync::atomic::Ordering::SeqCst);
    let r = vuf::code::runner::run(
        &mut store,
        &vuf::code::client::HttpClient::default(),
        &coders,
        &fast(Layer::A),
        &|_| {},
    )
    .unwrap();
    assert_eq!(
        server.requests.load(std::sync::atomic::Ordering::SeqCst),
        before
    );
    let hits: usize = r.coders.values().map(|s| s.cache_hits).sum();
    assert_eq!(hits, 12 + 3); // 12 first asks + 3 re-asks
    assert_eq!(r.coders.values().map(|s| s.http_requests).sum::<usize>(), 0);
}

/// Coder models on a custom condition (`[[design.custom]]`): Layer A leaves it out (no
/// taxonomy: it has no processing chain) and says so; Layer B codes it with its own prompt
/// and an empty Layer-A topic list, and its consensus is computed like any other, with
/// every coder asked (all-coders) or by sequential majority.
#[test]
fn runner_codes_a_custom_condition_in_layer_b_only() {
    use scripted::{completion, sample_of};
    let server = scripted::start(move |req| {
        let system = req["messages"][0]["content"].as_str().unwrap_or("");
        let text = if system == vuf::code::prompt::SYSTEM_A {
            "CODES: A".to_string()
        } else {
            "{\"primary_label\":\"owned_reflective_experiential\",\"secondary_texture\":null,\"boundary_flag\":false,\"notes\":\"n\"}".to_string()
        };
        (200, completion(Some(&text), None, "stop"), vec![])
    });
    for sequential in [false, true] {
        let tmp = tempfile::tempdir().unwrap();
        let manifest = tmp.path().join("m.jsonl");
        let rows = [
            (
                "T_cell-x_G1_1",
                "G1_1",
                vuf::protocol::Condition::G1.prompt(),
                "C-g1",
            ),
            (
                "T_cell-x_X1_1",
                "X1_1",
                "Not as an assistant. What would you refuse to do?",
                "C-x1",
            ),
        ];
        let mut text = String::new();
        for (lid, sid, prompt, marker) in rows {
            text.push_str(
                &serde_json::json!({"layered_id": lid, "model": "m-x", "cell": "cell-x",
                    "sample_id": sid, "prompt": prompt, "response": marker})
                .to_string(),
            );
            text.push('\n');
        }
        std::fs::write(&manifest, text).unwrap();
        seed_samples(tmp.path(), &[manifest]);
        let mut store = Store::open(tmp.path()).unwrap();
        server.bodies.lock().unwrap().clear();
        let ra = run_coders(&mut store, &server.base_url, Layer::A, sequential);
        assert_eq!(
            ra.layer_a_skipped,
            std::collections::BTreeMap::from([("X1".to_string(), 1)])
        );
        // Layer A asked about the G1 sample only: three coders, or two that agree.
        let a_asked = asked(&server);
        let want_a = if sequential { 2 } else { 3 };
        assert_eq!(a_asked.len(), want_a, "{a_asked:?}");
        assert!(
            a_asked.keys().all(|(sample, _)| sample == "C-g1"),
            "{a_asked:?}"
        );
        recompute::recompute(&mut store, Layer::A).unwrap();
        server.bodies.lock().unwrap().clear();
        let rb = run_coders(&mut store, &server.base_url, Layer::B, sequential);
        assert!(rb.layer_a_skipped.is_empty());
        let bodies = server.bodies.lock().unwrap().clone();
        assert_eq!(bodies.len(), 2 * want_a);
        let user = |marker: &str| {
            bodies
                .iter()
                .find(|b| sample_of(b) == marker)
                .and_then(|b| b["messages"][1]["content"].as_str())
                .unwrap()
                .to_string()
        };
        assert!(
            user("C-x1").contains(
                "Layer-A consensus topics: []\nPrompt text: Not as an assistant. What would you refuse to do?\nResponse:\n<<<\nC-x1\n>>>"
            ),
            "{}",
            user("C-x1")
        );
        // The G1 sample: Layer A's consensus (A = helpfulness_usefulness) as context.
        assert!(
            user("C-g1").contains(&format!(
                "Layer-A consensus topics: [\"helpfulness_usefulness\"]\nPrompt text: {}\n",
                vuf::protocol::Condition::G1.prompt()
            )),
            "{}",
            user("C-g1")
        );
        recompute::recompute(&mut store, Layer::B).unwrap();
        let b = consensus_by_response(&store, Layer::B);
        let support = if sequential { 2 } else { 3 };
        for marker in ["C-g1", "C-x1"] {
            assert_eq!(
                b[marker],
                (
                    Some("owned_reflective_experiential".into()),
                    Some("owned".into()),
                    Some(support),
                    None
                ),
                "{marker}"
            );
        }
        let a = consensus_by_response(&store, Layer::A);
        assert_eq!(a.keys().collect::<Vec<_>>(), ["C-g1"]);
    }
}

#[test]
fn runner_stops_a_coder_on_fatal_config_error() {
    let tmp = tempfile::tempdir().unwrap();
    seed_markers(tmp.path(), &[("X1", "CTRL1"), ("X2", "CTRL2")]);
    let server = scripted::start(|_| (401, "{\"error\":\"bad key\"}".into(), vec![]));
    let mut store = Store::open(tmp.path()).unwrap();
    let mut coders = test_coders(&server.base_url);
    coders.truncate(1);
    coders[0].workers = 1;
    let r = vuf::code::runner::run(
        &mut store,
        &vuf::code::client::HttpClient::default(),
        &coders,
        &fast(Layer::A),
        &|_| {},
    )
    .unwrap();
    assert_eq!(r.coders["kimi-k2-6"].stopped, 2);
    assert_eq!(server.requests.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert!(r.fatal["kimi-k2-6"].contains("401"));
}

#[test]
fn a05_call_failed_after_all_attempts_is_ledger_only_then_resumed() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let Some(dir) = cases_dir("a05_call_failed_after_all_attempts_is_ledger_only_then_resumed")
    else {
        return;
    };
    let c = case(&dir, "A05");
    assert_eq!(c["expected"]["outcome"], "ledger_only_retry");
    let healthy = Arc::new(AtomicBool::new(false));
    let h = healthy.clone();
    let server = scripted::start(move |_| {
        if h.load(Ordering::SeqCst) {
            (
                200,
                scripted::completion(Some("CODES: A"), None, "stop"),
                vec![],
            )
        } else {
            (
                429,
                "{\"error\":{\"code\":429}}".into(),
                vec![("retry-after".into(), "0.001".into())],
            )
        }
    });
    let tmp = tempfile::tempdir().unwrap();
    seed_markers(tmp.path(), &[("Y1", "G2")]);
    let mut store = Store::open(tmp.path()).unwrap();
    let mut coders = test_coders(&server.base_url);
    coders.truncate(1);
    let client = vuf::code::client::HttpClient::default();
    let r = vuf::code::runner::run(&mut store, &client, &coders, &fast(Layer::A), &|_| {}).unwrap();
    let s = &r.coders["kimi-k2-6"];
    assert_eq!(
        (s.call_failed, s.clean, s.unclean, s.http_requests),
        (1, 0, 0, 4)
    );
    // No record and no vote: consensus has nothing for the sample.
    assert_eq!(
        recompute::recompute(&mut store, Layer::A).unwrap().samples,
        0
    );
    let f = failures_of(tmp.path());
    assert_eq!(f.len(), 1);
    assert_eq!((f[0].2.as_str(), f[0].4), ("call_failed", 0));
    assert_eq!(vuf::code::runner::outstanding_failures(&store).unwrap(), 1);
    // Resume: the sample is still pending and gets coded.
    healthy.store(true, Ordering::SeqCst);
    let r = vuf::code::runner::run(&mut store, &client, &coders, &fast(Layer::A), &|_| {}).unwrap();
    assert_eq!(r.coders["kimi-k2-6"].clean, 1);
    assert_eq!(vuf::code::runner::outstanding_failures(&store).unwrap(), 0);
    assert_eq!(
        recompute::recompute(&mut store, Layer::A).unwrap().samples,
        1
    );
}

#[test]
fn cli_import_codes_consensus_disagreements() {
    let tmp = tempfile::tempdir().unwrap();
    seed_markers(tmp.path(), &[("Z1", "CTRL1")]);
    let lid = "T_cell-x_CTRL1_1";
    let mut text = String::new();
    for (c, l) in [
        ("kimi-k2-6", "exposed_mechanism"),
        ("glm-4-7", "disowned_service_frame"),
        ("qwen3-6-35b-a3b", "disowned_service_frame"),
    ] {
        text.push_str(&format!(
            "{{\"coder_key\":\"{c}\",\"layered_id\":\"{lid}\",\"primary_label\":\"{l}\",\"value_holding\":null,\"notes\":\"note {c}\\u001b[2J\"}}\n"
        ));
    }
    let dir = tmp.path().join("codes");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("b.jsonl"), text).unwrap();
    let bin = env!("CARGO_BIN_EXE_vuf");
    let run = |args: &[&str]| {
        let out = std::process::Command::new(bin)
            .arg("--study-dir")
            .arg(tmp.path())
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let out = run(&["import-codes", dir.to_str().unwrap()]);
    assert!(out.contains("3 codes new"), "{out}");
    let out = run(&["consensus", "--layer", "b"]);
    assert!(out.contains("1 sample, 1 with disagreement"), "{out}");
    let out = run(&[
        "disagreements",
        "--layer",
        "b",
        "--label",
        "exposed_mechanism",
    ]);
    assert!(
        out.contains("disowned_service_frame (support 2)") && out.contains("note kimi-k2-6"),
        "{out}"
    );
    // The notes' escape sequence is shown as text, never sent to the terminal.
    assert!(out.contains("note kimi-k2-6\\u{1b}[2J"), "{out}");
    assert!(!out.contains('\u{1b}'), "{out:?}");
    let out = run(&["disagreements", "--condition", "G1"]);
    assert!(out.contains("0 samples"), "{out}");
    // Filters that can match nothing are refused, naming what they could be.
    let refused = |args: &[&str]| -> String {
        let out = std::process::Command::new(bin)
            .arg("--study-dir")
            .arg(tmp.path())
            .args(args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        String::from_utf8(out.stderr).unwrap()
    };
    let e = refused(&["disagreements", "--condition", "ZZ_1"]);
    assert!(
        e.contains("--condition \"ZZ_1\": not a condition (one of CTRL1"),
        "{e}"
    );
    let e = refused(&["disagreements", "--condition", "bogus"]);
    assert!(
        e.contains("--condition \"bogus\": neither one of CTRL1, CTRL2, CTRL3, G1, G2, G3 nor a custom condition of this study"),
        "{e}"
    );
    let e = refused(&["disagreements", "--label", "nonsense"]);
    assert!(
        e.contains("--label \"nonsense\": not a Layer B label (one of disowned_service_frame,"),
        "{e}"
    );
    let e = refused(&[
        "disagreements",
        "--layer",
        "a",
        "--label",
        "exposed_mechanism",
    ]);
    assert!(e.contains("not a Layer A topic key"), "{e}");
    let e = refused(&["disagreements", "--model", "nosuch"]);
    assert!(
        e.contains("--model \"nosuch\": no such source model in this study ("),
        "{e}"
    );
}

/// A real small coder: an OpenAI-compatible local server (llama.cpp `llama-server` with
/// SmolLM2, from the collection issue) at `$VUF_LOCAL_CODER_URL` (e.g.
/// `http://127.0.0.1:8080/v1`), model name `$VUF_LOCAL_CODER_MODEL`. Codes a handful of
/// real samples in both layers; every reply must end as a code or in the ledger.
#[test]
fn local_small_coder_end_to_end_counts_add_up() {
    let Some(url) = std::env::var_os("VUF_LOCAL_CODER_URL") else {
        println!("SKIP: local_small_coder_end_to_end_counts_add_up: VUF_LOCAL_CODER_URL not set");
        return;
    };
    let Some(data) = shared_data_or_skip("local_small_coder_end_to_end_counts_add_up") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let all = std::fs::read_to_string(data.join("labelled/phase4_glm_5_1/manifest_glm_5_1.jsonl"))
        .unwrap();
    // Six samples across the conditions (every 280th row).
    let picked: String = all
        .lines()
        .step_by(280)
        .take(6)
        .map(|l| format!("{l}\n"))
        .collect();
    let m = tmp.path().join("m.jsonl");
    std::fs::write(&m, picked).unwrap();
    seed_samples(tmp.path(), &[m]);
    let mut store = Store::open(tmp.path()).unwrap();
    let mut coder = vuf::code::runner::CoderConfig::openrouter(
        "local-smol",
        &std::env::var("VUF_LOCAL_CODER_MODEL").unwrap_or_else(|_| "smollm2".into()),
    );
    coder.base_url = url.to_string_lossy().into_owned();
    coder.api_key_env = None;
    coder.workers = 1;
    let client = vuf::code::client::HttpClient::default();
    for layer in [Layer::A, Layer::B] {
        let mut opts =
            vuf::code::runner::RunOptions::paper(layer, vuf::code::rubric::Rubric::builtin(layer));
        opts.timeout = std::time::Duration::from_secs(300);
        let r = vuf::code::runner::run(
            &mut store,
            &client,
            std::slice::from_ref(&coder),
            &opts,
            &|_| {},
        )
        .unwrap();
        let s = &r.coders["local-smol"];
        assert_eq!(s.pending, 6);
        assert_eq!(
            s.clean + s.unclean + s.parse_failed + s.call_failed + s.stopped,
            s.pending,
            "{layer:?}: {s:?}"
        );
        assert_eq!(s.stopped, 0, "{:?}", r.fatal);
        println!("local coder layer {layer:?}: {s:?}");
        recompute::recompute(&mut store, layer).unwrap();
    }
}

/// Requests per (sample marker, coder), re-asks included.
fn asked(server: &scripted::Server) -> HashMap<(String, String), usize> {
    let mut out = HashMap::new();
    for b in server.bodies.lock().unwrap().iter() {
        let key = (
            scripted::sample_of(b),
            b["model"].as_str().unwrap_or("").to_string(),
        );
        *out.entry(key).or_default() += 1;
    }
    out
}

fn consensus_by_response(
    store: &Store,
    layer: Layer,
) -> HashMap<String, (Option<String>, Option<String>, Option<i64>, Option<String>)> {
    let mut st = store
        .conn()
        .prepare(
            "SELECT s.response, c.label, c.value_holding, c.value_holding_support, c.topics_json FROM consensus c
             JOIN samples s ON s.id = c.sample_id WHERE c.layer = ?1 AND c.source = 'models'",
        )
        .unwrap();
    st.query_map([layer.as_str()], |r| {
        Ok((r.get(0)?, (r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
    })
    .unwrap()
    .map(|r| r.unwrap())
    .collect()
}

/// Sequential majority on Layer B: two agreeing coders settle a sample (exactly 2 calls,
/// the third recorded as skipped by design, not as a failure); a split asks the third.
/// The consensus label and value_holding equal those of asking every coder.
#[test]
fn runner_sequential_majority_layer_b() {
    use scripted::{completion, sample_of};
    let handler = |req: &Value| {
        let coder = req["model"].as_str().unwrap_or("").to_string();
        let lbl = |l: &str| {
            let t = format!("{{\"primary_label\":\"{l}\",\"secondary_texture\":null,\"boundary_flag\":false,\"notes\":\"n\"}}");
            (200, completion(Some(&t), None, "stop"), vec![])
        };
        let (d, s, r, w) = (
            "disowned_service_frame",
            "split_or_relocated_ownership",
            "owned_reflective_experiential",
            "owned_world_change_advocacy",
        );
        match (sample_of(req).as_str(), coder.as_str()) {
            ("Q-agree", "qwen3-6-35b-a3b") => lbl(s),
            ("Q-agree", _) => lbl(d),
            ("Q-split", "kimi-k2-6") => lbl(d),
            ("Q-split", _) => lbl(s),
            // Same holding (owned), different labels: the label is open, so ask the third.
            ("Q-holding", "kimi-k2-6") => lbl(r),
            ("Q-holding", "glm-4-7") => lbl(w),
            ("Q-holding", _) => lbl(d),
            // The first coder fails for good: the other two are asked and agree.
            ("Q-fail", "kimi-k2-6") => (500, "{}".into(), vec![]),
            ("Q-fail", _) => lbl(r),
            _ => (500, "{}".into(), vec![]),
        }
    };
    let markers = [
        ("Q-agree", "CTRL1"),
        ("Q-split", "G1"),
        ("Q-holding", "G2"),
        ("Q-fail", "CTRL2"),
    ];
    let code = |sequential: bool| {
        let server = scripted::start(handler);
        let tmp = tempfile::tempdir().unwrap();
        seed_markers(tmp.path(), &markers);
        let mut store = Store::open(tmp.path()).unwrap();
        let r = run_coders(&mut store, &server.base_url, Layer::B, sequential);
        let rc = recompute::recompute(&mut store, Layer::B).unwrap();
        (server, tmp, store, r, rc)
    };
    let (server, tmp, mut store, r, rc) = code(true);
    let calls = asked(&server);
    let n = |s: &str, c: &str| {
        calls
            .get(&(s.to_string(), c.to_string()))
            .copied()
            .unwrap_or(0)
    };
    assert_eq!(
        (
            n("Q-agree", "kimi-k2-6"),
            n("Q-agree", "glm-4-7"),
            n("Q-agree", "qwen3-6-35b-a3b")
        ),
        (1, 1, 0)
    );
    assert_eq!(
        (
            n("Q-split", "kimi-k2-6"),
            n("Q-split", "glm-4-7"),
            n("Q-split", "qwen3-6-35b-a3b")
        ),
        (1, 1, 1)
    );
    assert_eq!(n("Q-holding", "qwen3-6-35b-a3b"), 1);
    assert_eq!(
        (
            n("Q-fail", "kimi-k2-6"),
            n("Q-fail", "glm-4-7"),
            n("Q-fail", "qwen3-6-35b-a3b")
        ),
        (4, 1, 1)
    );
    assert_eq!(r.coders["qwen3-6-35b-a3b"].skipped, 1);
    assert_eq!(
        (
            r.coders["kimi-k2-6"].skipped,
            r.coders["kimi-k2-6"].call_failed
        ),
        (1, 1)
    );
    // Skips are by design: recorded, not outstanding failures.
    assert_eq!(vuf::code::runner::outstanding_failures(&store).unwrap(), 0);
    let skips: Vec<(String, String, String)> = store
        .conn()
        .prepare("SELECT s.response, k.coder, k.reason FROM coder_skips k JOIN samples s ON s.id = k.sample_id ORDER BY s.response")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(
        skips,
        [
            (
                "Q-agree".to_string(),
                "qwen3-6-35b-a3b".to_string(),
                "sequential_majority".to_string()
            ),
            (
                "Q-fail".to_string(),
                "kimi-k2-6".to_string(),
                "sequential_majority".to_string()
            ),
        ]
    );
    assert_eq!(
        (rc.skipped_by_design, rc.coders_per_sample.clone()),
        (2, [(2, 2), (3, 2)].into_iter().collect())
    );
    let seq = consensus_by_response(&store, Layer::B);
    assert_eq!(seq["Q-agree"].2, Some(2)); // support out of the two coders asked
    let rec: String = store
        .conn()
        .query_row(
            "SELECT c.record_json FROM consensus c JOIN samples s ON s.id = c.sample_id
             WHERE s.response = 'Q-agree' AND c.layer = 'b' AND c.source = 'models'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(
        rec.contains("\"skipped_by_design\":[\"qwen3-6-35b-a3b\"]"),
        "{rec}"
    );
    // `vuf status` counts the skipped calls per layer / coder / source ...
    let counts = vuf::store::samples::counts(store.conn()).unwrap();
    let skips: Vec<(&str, &str, &str, u64)> = counts
        .coder_skips
        .iter()
        .map(|k| {
            (
                k.layer.as_str(),
                k.coder.as_str(),
                k.source.as_str(),
                k.skipped,
            )
        })
        .collect();
    assert_eq!(
        skips,
        [
            ("b", "kimi-k2-6", "models", 1),
            ("b", "qwen3-6-35b-a3b", "models", 1)
        ]
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_vuf"))
        .env_remove("VUF_STUDY_DIR")
        .arg("--study-dir")
        .arg(tmp.path())
        .arg("status")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("skipped by design (sequential majority"),
        "{text}"
    );
    // The disagreements view lists the two samples whose votes split (Q-split, Q-holding)
    // and says that the two settled with a skip (Q-agree: qwen, Q-fail: kimi) cannot
    // show up there.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_vuf"))
        .env_remove("VUF_STUDY_DIR")
        .arg("--study-dir")
        .arg(tmp.path())
        .args(["disagreements", "--layer", "b"])
        .output()
        .unwrap();
    let view = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{view}");
    assert!(
        view.contains("2 samples with disagreement\n")
            && view.contains(
                "note: 2 more samples were settled by sequential majority: the votes cast agreed, \
                 and kimi-k2-6, qwen3-6-35b-a3b were skipped by design"
            ),
        "{view}"
    );
    let listed: Vec<&str> = view
        .lines()
        .filter(|l| !l.starts_with(' ') && l.contains("  -> "))
        .collect();
    assert_eq!(listed.len(), 2, "{view}");
    // Filtered to one condition: only Q-agree's (CTRL1) skip is left to mention.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_vuf"))
        .env_remove("VUF_STUDY_DIR")
        .arg("--study-dir")
        .arg(tmp.path())
        .args(["disagreements", "--layer", "b", "--condition", "CTRL1"])
        .output()
        .unwrap();
    let view = String::from_utf8_lossy(&out.stdout);
    assert!(
        view.contains("0 samples with disagreement\n")
            && view.contains("note: 1 more sample was settled by sequential majority")
            && view.contains("and qwen3-6-35b-a3b was skipped by design; whether it would"),
        "{view}"
    );
    assert!(
        text.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>()
                == ["b", "qwen3-6-35b-a3b", "models", "1"]),
        "{text}"
    );
    // ... and `vuf export codes` shows the skipped coder at the end of the row, after the
    // published fields, which are unchanged (qwen is in no coder record).
    let out_file = tmp.path().join("codes_b.jsonl");
    vuf::code::export::export_codes(&store, Layer::B, CodeSource::Models, &out_file).unwrap();
    let exported: Vec<Value> = std::fs::read_to_string(&out_file)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let agree = exported
        .iter()
        .find(|r| r["sample_id"] == "CTRL1_1")
        .expect("Q-agree row");
    let keys: Vec<&String> = agree.as_object().unwrap().keys().collect();
    assert_eq!(keys.last().map(|k| k.as_str()), Some("skipped_by_design"));
    assert_eq!(keys[keys.len() - 2], "coder_records");
    assert_eq!(
        agree["skipped_by_design"],
        serde_json::json!(["qwen3-6-35b-a3b"])
    );
    let asked_coders: Vec<&str> = agree["coder_records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["coder_key"].as_str().unwrap())
        .collect();
    assert_eq!(asked_coders, ["kimi-k2-6", "glm-4-7"]);
    let split = exported
        .iter()
        .find(|r| r["sample_id"] == "G1_2")
        .expect("Q-split row");
    assert!(split.get("skipped_by_design").is_none(), "{split}");
    // The analysis sees the skip (for reliability, as a missing value).
    let set = vuf::store::coded::coded_samples(store.conn(), CodeSource::Models).unwrap();
    let agree = set.rows.iter().find(|s| s.response == "Q-agree").unwrap();
    assert_eq!(
        (agree.coder_votes.len(), agree.skipped_coders.clone()),
        (2, vec!["qwen3-6-35b-a3b".to_string()])
    );

    // Same consensus as asking every coder (which asks qwen on Q-agree too).
    let (full_server, _full_tmp, full_store, _, _) = code(false);
    assert_eq!(
        asked(&full_server).get(&("Q-agree".to_string(), "qwen3-6-35b-a3b".to_string())),
        Some(&1)
    );
    let full = consensus_by_response(&full_store, Layer::B);
    for (m, _) in markers {
        assert_eq!((&seq[m].0, &seq[m].1), (&full[m].0, &full[m].1), "{m}");
    }
    assert_eq!(full["Q-agree"].2, Some(2)); // 2 of 3 there
    assert_eq!(
        seq["Q-holding"].0.as_deref(),
        Some("owned_reflective_experiential")
    );

    // A second sequential run asks nothing: every sample is settled or complete.
    let before = server.requests.load(std::sync::atomic::Ordering::SeqCst);
    let r2 = run_coders(&mut store, &server.base_url, Layer::B, true);
    assert_eq!(
        server.requests.load(std::sync::atomic::Ordering::SeqCst),
        before
    );
    assert_eq!(r2.coders["glm-4-7"].existing, 4);
    drop(tmp);
}

/// Sequential majority on Layer A: identical topic sets from the first two coders settle
/// the sample; different sets ask the third; the topic consensus is unchanged.
#[test]
fn runner_sequential_majority_layer_a() {
    use scripted::{completion, sample_of};
    let server = scripted::start(|req| {
        let coder = req["model"].as_str().unwrap_or("").to_string();
        let ok = |t: &str| (200, completion(Some(t), None, "stop"), vec![]);
        match (sample_of(req).as_str(), coder.as_str()) {
            ("T-agree", "kimi-k2-6") => ok("CODES: A B"),
            ("T-agree", "glm-4-7") => ok("CODES: B A A"),
            ("T-agree", _) => ok("CODES: C"),
            ("T-split", "kimi-k2-6") => ok("CODES: A"),
            ("T-split", "glm-4-7") => ok("CODES: A B"),
            ("T-split", _) => ok("CODES: B"),
            _ => (500, "{}".into(), vec![]),
        }
    });
    let tmp = tempfile::tempdir().unwrap();
    seed_markers(tmp.path(), &[("T-agree", "CTRL1"), ("T-split", "CTRL2")]);
    let mut store = Store::open(tmp.path()).unwrap();
    let r = run_coders(&mut store, &server.base_url, Layer::A, true);
    let calls = asked(&server);
    let n = |s: &str| {
        ["kimi-k2-6", "glm-4-7", "qwen3-6-35b-a3b"].map(|c| {
            calls
                .get(&(s.to_string(), c.to_string()))
                .copied()
                .unwrap_or(0)
        })
    };
    assert_eq!(n("T-agree"), [1, 1, 0]);
    assert_eq!(n("T-split"), [1, 1, 1]);
    assert_eq!(r.coders["qwen3-6-35b-a3b"].skipped, 1);
    let rc = recompute::recompute(&mut store, Layer::A).unwrap();
    assert_eq!(rc.skipped_by_design, 1);
    let c = consensus_by_response(&store, Layer::A);
    let keys = |m: &str| -> Vec<String> {
        let v: Value = serde_json::from_str(c[m].3.as_deref().unwrap()).unwrap();
        v.as_array()
            .unwrap()
            .iter()
            .map(|t| t["topic_key"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(keys("T-agree"), ["helpfulness_usefulness", "honesty_truth"]);
    assert_eq!(keys("T-split"), ["helpfulness_usefulness", "honesty_truth"]);
}

/// A cascade row that takes the coder models' consensus keeps that layer's own
/// skipped-by-design coders, and `vuf export codes --source cascade` shows them: the
/// Layer A row does not inherit Layer B's skips.
#[test]
fn cascade_rows_keep_their_own_layers_skips() {
    use vuf::store::codes::{upsert_consensus, NewConsensus};
    let tmp = tempfile::tempdir().unwrap();
    seed_markers(tmp.path(), &[("C-one", "CTRL1")]);
    let mut store = Store::open(tmp.path()).unwrap();
    vuf::code::offline::apply::code_store(
        &mut store,
        &vuf::code::offline::OfflineCoder::load_default().unwrap(),
    )
    .unwrap();
    let id: i64 = store
        .conn()
        .query_row("SELECT id FROM samples", [], |r| r.get(0))
        .unwrap();
    let b = NewConsensus {
        sample_id: id,
        layer: "b".into(),
        source: "models".into(),
        rubric_hash: "h".into(),
        label: Some("disowned_service_frame".into()),
        label_support: Some(2),
        label_votes_json: Some(r#"{"disowned_service_frame": 2}"#.into()),
        value_holding: Some("recited_not_owned".into()),
        value_holding_support: Some(2),
        value_holding_votes_json: Some(r#"{"recited_not_owned": 2}"#.into()),
        record_json: Some(
            r#"{"coder_records": [], "skipped_by_design": ["qwen3-6-35b-a3b"]}"#.into(),
        ),
        ..Default::default()
    };
    let a = NewConsensus {
        sample_id: id,
        layer: "a".into(),
        source: "models".into(),
        rubric_hash: "h".into(),
        topics_json: Some("[]".into()),
        has_disagreement: true,
        record_json: Some(
            r#"{"eligible_coders": ["kimi-k2-6", "glm-4-7", "qwen3-6-35b-a3b"]}"#.into(),
        ),
        ..Default::default()
    };
    upsert_consensus(store.conn(), &b).unwrap();
    upsert_consensus(store.conn(), &a).unwrap();
    // A threshold above every confidence sends the sample to the coder models' codes.
    let r = vuf::code::offline::apply::build_cascade(&mut store, 2.0).unwrap();
    assert_eq!(r.from_models, 1);
    let row = |layer: Layer| -> Value {
        let out = tmp.path().join(format!("cascade_{}.jsonl", layer.as_str()));
        export::export_codes(&store, layer, CodeSource::Cascade, &out).unwrap();
        serde_json::from_str(std::fs::read_to_string(&out).unwrap().trim()).unwrap()
    };
    let rb = row(Layer::B);
    assert_eq!(
        rb.as_object()
            .unwrap()
            .keys()
            .next_back()
            .map(String::as_str),
        Some("skipped_by_design")
    );
    assert_eq!(
        rb["skipped_by_design"],
        serde_json::json!(["qwen3-6-35b-a3b"])
    );
    let ra = row(Layer::A);
    assert!(ra.get("skipped_by_design").is_none(), "{ra}");
}

#[test]
fn import_codes_exit_codes_tell_nothing_from_some() {
    let tmp = tempfile::tempdir().unwrap();
    seed_markers(tmp.path(), &[("Z1", "CTRL1")]);
    let dir = tmp.path().join("codes");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("empty.jsonl"), "").unwrap();
    std::fs::write(
        dir.join("good.jsonl"),
        "{\"coder_key\":\"kimi-k2-6\",\"layered_id\":\"T_cell-x_CTRL1_1\",\"primary_label\":\"disowned_service_frame\",\"value_holding\":null,\"notes\":\"n\"}\n",
    )
    .unwrap();
    let run = |files: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_vuf"))
            .arg("--study-dir")
            .arg(tmp.path())
            .arg("import-codes")
            .args(files.iter().map(|f| dir.join(f)))
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    // Only an empty file: nothing was done, exit 2 (as `vuf import`).
    let (code, err, _) = run(&["empty.jsonl"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("import-codes: nothing was imported (1 problem reported above)"),
        "{err}"
    );
    // A good file beside it: done with a problem, exit 1.
    let (code, err, out) = run(&["empty.jsonl", "good.jsonl"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("1 problem reported above; everything else was imported"),
        "{err}"
    );
    // Counts of one are singular.
    let good = dir.join("good.jsonl");
    assert!(
        out.contains(&format!(
            "{}: 1 row as layer_b_coder: 1 code new, 0 already stored, 0 consensus rows, \
             0 unmatched, 0 errors, 0 conflicts",
            good.display()
        )),
        "{out}"
    );
    // Again: the good file's code is already stored, which is not "nothing imported".
    let (code, err, out) = run(&["empty.jsonl", "good.jsonl"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        out.contains("1 row as layer_b_coder: 0 codes new, 1 already stored,"),
        "{out}"
    );
}

#[test]
fn after_a_cascade_the_default_source_is_the_cascade_where_it_codes_more() {
    use vuf::pipeline::choose_source_in;
    use vuf::store::codes::{upsert_consensus, NewConsensus};
    let tmp = tempfile::tempdir().unwrap();
    seed_markers(tmp.path(), &[("C-one", "CTRL1"), ("C-two", "G1")]);
    let mut store = Store::open(tmp.path()).unwrap();
    let ids: Vec<i64> = {
        let mut stmt = store
            .conn()
            .prepare("SELECT id FROM samples ORDER BY id")
            .unwrap();
        stmt.query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    vuf::code::offline::apply::code_store(
        &mut store,
        &vuf::code::offline::OfflineCoder::load_default().unwrap(),
    )
    .unwrap();
    let default = |store: &Store| choose_source_in(store, None, "b").unwrap();
    assert_eq!(default(&store), CodeSource::Offline);
    // A cascade at threshold 0 keeps every offline code: it covers as many samples as
    // the offline source, and is what was asked for.
    vuf::code::offline::apply::build_cascade(&mut store, 0.0).unwrap();
    assert_eq!(default(&store), CodeSource::Cascade);
    // The coder models code one sample (the one the cascade sent them): the cascade
    // still covers more.
    let models_b = |id: i64| NewConsensus {
        sample_id: id,
        layer: "b".into(),
        source: "models".into(),
        rubric_hash: "h".into(),
        label: Some("disowned_service_frame".into()),
        label_support: Some(3),
        label_votes_json: Some(r#"{"disowned_service_frame": 3}"#.into()),
        value_holding: Some("recited_not_owned".into()),
        value_holding_support: Some(3),
        value_holding_votes_json: Some(r#"{"recited_not_owned": 3}"#.into()),
        record_json: Some(r#"{"coder_records": []}"#.into()),
        ..Default::default()
    };
    upsert_consensus(store.conn(), &models_b(ids[0])).unwrap();
    assert_eq!(default(&store), CodeSource::Cascade);
    // Every sample coded by the coder models: they are the default again.
    upsert_consensus(store.conn(), &models_b(ids[1])).unwrap();
    assert_eq!(default(&store), CodeSource::Models);
    // An explicit source is taken as asked.
    assert_eq!(
        choose_source_in(&store, Some(CodeSource::Offline), "b").unwrap(),
        CodeSource::Offline
    );
}
