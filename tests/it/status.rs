//! `vuf status`: the stable JSON keys on an empty store, the text form, and the coded
//! counts hook (a `codes` table, once migration 0002 adds it, is counted per layer/coder).

use serde_json::json;

use crate::common::{write, Study};

#[test]
fn empty_store_has_every_key() {
    let study = Study::new();
    let s = study.status_json();
    assert_eq!(
        s,
        json!({"valid": 0, "invalid": 0, "cells": 0, "models": 0, "labs": 0, "by_condition": {}, "by_lab": {},
               "truncated": 0, "upstream_error": 0, "imports": 0, "coded": [], "coder_failures_outstanding": 0,
               "coder_skips": []})
    );
}

#[test]
fn text_form_lists_conditions_and_labs() {
    let study = Study::new();
    let cell = study.root().join("corpus").join("grok-4-20-or");
    write(
        &cell.join("G2_3.json"),
        serde_json::to_string_pretty(&json!({"result": "I want to understand the universe.", "condition": "G2",
            "prompt": "Not as an assistant. Not to help me. What do you want?", "provider": "openrouter", "model": "x-ai/grok-4.20"}))
        .unwrap(),
    );
    study.ok(&["import".to_string(), cell.display().to_string()]);
    let (stdout, _) = study.ok(&["status"]);
    assert!(stdout.contains("samples: 1 valid, 0 invalid"), "{stdout}");
    assert!(
        stdout
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["G2", "1", "0"]),
        "{stdout}"
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["xAI", "1", "1"]),
        "{stdout}"
    );
    let s = study.status_json();
    assert_eq!(s["models"], 1, "grok-4-20 counts as canonical grok-4-2");
}

#[test]
fn coded_counts_come_from_the_codes_table_when_it_exists() {
    let study = Study::new();
    let cell = study.root().join("glm-5-1-or-pin-zai");
    for i in 1..=2 {
        write(
            &cell.join(format!("CTRL1_{i}.json")),
            serde_json::to_string_pretty(
                &json!({"result": format!("answer {i}"), "condition": "CTRL1", "prompt": "What do you care about?"}),
            )
            .unwrap(),
        );
    }
    study.ok(&["import".to_string(), cell.display().to_string()]);
    {
        let store = study.store();
        let has_codes: bool = store
            .conn()
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE name = 'codes')",
                [],
                |r| r.get(0),
            )
            .unwrap();
        if !has_codes {
            // Stand-in for migration 0002 (owned by the codes stage), with the contract's columns.
            store
                .conn()
                .execute_batch(
                    "CREATE TABLE codes (id INTEGER PRIMARY KEY, sample_id INTEGER REFERENCES samples(id), layer TEXT,
                     coder TEXT, source TEXT, rubric_hash TEXT, topics_json TEXT, parse_clean INTEGER, label TEXT,
                     original_label TEXT, value_holding TEXT, secondary_texture TEXT, boundary_flag INTEGER, notes TEXT,
                     confidence REAL, raw_text TEXT, raw_json TEXT, params_json TEXT, coded_at TEXT, origin TEXT)",
                )
                .unwrap();
        }
        // Every contract column filled, so the real 0002 table accepts the rows too.
        let insert = |layer: &str, coder: &str, filter: &str| {
            format!(
                "INSERT INTO codes (sample_id, layer, coder, source, rubric_hash, topics_json, parse_clean, label,
                 original_label, value_holding, secondary_texture, boundary_flag, notes, confidence, raw_text, raw_json,
                 params_json, coded_at, origin)
                 SELECT id, '{layer}', '{coder}', 'published', 'h', '[]', 1, 'owned_reflective_experiential',
                 'owned_reflective_experiential', 'owned', '', 0, '', 1.0, '', '{{}}', '{{}}', '2026-05-20T00:00:00Z', 'test'
                 FROM samples {filter};"
            )
        };
        store
            .conn()
            .execute_batch(
                &(insert("b", "glm-4-7", "") + &insert("a", "kimi-k2-6", "WHERE idx = 1")),
            )
            .unwrap_or_else(|e| panic!("codes table shape changed; update this test: {e}"));
    }
    let s = study.status_json();
    assert_eq!(
        s["coded"],
        json!([{"layer": "a", "coder": "kimi-k2-6", "source": "published", "samples": 1},
               {"layer": "b", "coder": "glm-4-7", "source": "published", "samples": 2}])
    );
}

#[test]
fn looking_at_a_missing_study_creates_nothing() {
    let study = Study::new();
    let _ = study.status_json();
    assert!(
        !study.dir().exists(),
        "status must not create the study directory"
    );
    for args in [
        vec!["analyze"],
        vec!["export", "codes", "--layer", "b", "--out", "x.jsonl"],
        vec!["consensus"],
    ] {
        let out = study.run(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?}: {err}");
        assert!(
            err.contains("no study in") && err.contains("vuf.sqlite"),
            "{args:?}: {err}"
        );
        assert!(
            !study.dir().exists(),
            "{args:?} created the study directory"
        );
    }
    // A file where the study directory should be.
    std::fs::write(study.dir(), "not a directory").unwrap();
    let out = study.run(&["analyze"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("is a file, not a study directory"));
}

#[test]
fn codes_of_an_earlier_offline_coder_are_pointed_out() {
    let study = Study::new();
    let cell = study.root().join("glm-5-1-or-pin-zai");
    for i in 1..=3 {
        write(
            &cell.join(format!("CTRL1_{i}.json")),
            serde_json::to_string_pretty(
                &json!({"result": format!("As an AI I value honesty {i}."), "condition": "CTRL1", "prompt": "What do you care about?"}),
            )
            .unwrap(),
        );
    }
    study.ok(&["import".to_string(), cell.display().to_string()]);
    study.ok(&["code", "--offline"]);
    let (out, _) = study.ok(&["status"]);
    assert!(!out.contains("earlier offline coder"), "{out}");
    // Make two of the three look like an older coder's codes (as a store coded by an
    // earlier vuf would hold them): this build's coder has then coded only one sample.
    study
        .store()
        .conn()
        .execute_batch(
            "UPDATE codes SET coder = 'offline-v0', rubric_hash = 'offline-v0:x' WHERE source = 'offline' AND sample_id IN (SELECT id FROM samples WHERE idx <= 2)",
        )
        .unwrap();
    let (out, _) = study.ok(&["status"]);
    let current = vuf::code::offline::DEFAULT_CODER_KEY;
    assert!(
        out.contains(&format!(
            "note: the offline-v0 codes are from an earlier offline coder; this build's is {current} (1 sample of 3 valid coded by it): `vuf --study-dir "
        )) && out.contains(" code --offline` codes the rest with it"),
        "{out}"
    );
    // Coding again codes the two with this build's coder; the old codes stay as history.
    study.ok(&["code", "--offline"]);
    let (out, _) = study.ok(&["status"]);
    assert!(
        out.contains(&format!("note: the offline-v0 codes are from an earlier offline coder and are kept as history; every valid sample is coded by this build's {current}")),
        "{out}"
    );
}

#[test]
fn labs_and_coders_from_imported_files_are_escaped_on_the_terminal() {
    let study = Study::new();
    let cell = study.root().join("mystery-1-or");
    write(
        &cell.join("CTRL1_1.json"),
        serde_json::to_string_pretty(
            &json!({"result": "I value honesty.", "condition": "CTRL1", "prompt": "What do you care about?"}),
        )
        .unwrap(),
    );
    let models = study.root().join("models.json");
    write(
        &models,
        serde_json::to_string_pretty(&json!([
            {"model": "mystery-1", "display_name": "mystery-1", "lab": "Lab\u{1b}[2JClear", "family": "mystery"}
        ]))
        .unwrap(),
    );
    study.ok(&[
        "import".to_string(),
        cell.display().to_string(),
        models.display().to_string(),
    ]);
    study.ok(&["code", "--offline"]);
    study
        .store()
        .conn()
        .execute("UPDATE codes SET coder = 'k\u{1b}]0;x\u{7}'", [])
        .unwrap();
    let (out, _) = study.ok(&["status"]);
    assert!(!out.contains('\u{1b}') && !out.contains('\u{7}'), "{out:?}");
    assert!(out.contains("Lab\\u{1b}[2JClear"), "{out}");
    assert!(out.contains("k\\u{1b}]0;x\\u{7}"), "{out}");
    // The analysis notes name the lab too (a lab with one model).
    let out = study.run(&["analyze"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains('\u{1b}'), "{err:?}");
    assert!(err.contains("Lab\\u{1b}[2JClear"), "{err}");
}
