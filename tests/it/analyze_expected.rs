//! Acceptance test of the frozen analysis against the published code's outputs
//! (`shared/data/expected/subset-glm51-qwen/`, README there): rebuild the input exactly as
//! documented, run `analyze`, write the outputs and compare every CSV cell by cell (numbers
//! within 1e-9, strings equal, same rows, published columns first), then byte for byte,
//! plus the Markdown and LaTeX files (`data_snapshot.md` without its environment lines).

use std::collections::HashMap;
use std::path::Path;

use serde_json::Value as J;
use sha2::{Digest, Sha256};
use vuf::analyze::lexscan::scan_fast;
use vuf::analyze::{analyze, write_outputs, AnalysisInput, AnalyzeOptions, InputFile};
use vuf::protocol::lexicon::{scan, ApostropheMode};
use vuf::protocol::{
    CodeSource, CodedSample, CoderVote, Condition, ModelMeta, PostureLabel, ValueHolding,
};

const PHASES: [(&str, &str, &str, &str); 2] = [
    (
        "phase4_glm_5_1",
        "labelled/phase4_glm_5_1/manifest_glm_5_1.jsonl",
        "labelled/phase4_glm_5_1/layer_a/consensus_300.jsonl",
        "labelled/phase4_glm_5_1/posture_triple/collapsed_consensus.jsonl",
    ),
    (
        "phase6_qwen_20260522",
        "extra-manifests/manifest_qwen_20260522.jsonl",
        "labelled/phase6_qwen_20260522/layer_a/consensus_300.jsonl",
        "labelled/phase6_qwen_20260522/posture_collapsed/consensus.jsonl",
    ),
];

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The built file of the README recipe: source lines tagged with `final_source`.
fn built(data: &Path, which: usize) -> (Vec<u8>, usize) {
    let mut lines = Vec::new();
    for p in PHASES {
        let file = [p.1, p.2, p.3][which];
        for line in read(&data.join(file))
            .lines()
            .filter(|l| !l.trim().is_empty())
        {
            let body = line
                .trim_end()
                .strip_suffix('}')
                .unwrap_or_else(|| panic!("{file}: line without closing brace"));
            lines.push(format!("{body}, \"final_source\": \"{}\"}}", p.0));
        }
    }
    let n = lines.len();
    let mut s = lines.join("\n");
    s.push('\n');
    (s.into_bytes(), n)
}

fn sha(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn str_field(v: &J, k: &str, ctx: &str) -> String {
    match v.get(k) {
        Some(J::String(s)) => s.clone(),
        Some(J::Null) | None => String::new(),
        Some(other) => panic!("{ctx}: field {k} is not a string: {other}"),
    }
}

fn load(data: &Path) -> AnalysisInput {
    let mut rows = Vec::new();
    for (phase, mf, af, pf) in PHASES {
        let mut posture: HashMap<String, J> = HashMap::new();
        for (i, l) in read(&data.join(pf)).lines().enumerate() {
            let v: J = serde_json::from_str(l).unwrap_or_else(|e| panic!("{pf}:{}: {e}", i + 1));
            posture.insert(str_field(&v, "layered_id", pf), v);
        }
        let mut layer_a: HashMap<String, Vec<String>> = HashMap::new();
        for (i, l) in read(&data.join(af)).lines().enumerate() {
            let v: J = serde_json::from_str(l).unwrap_or_else(|e| panic!("{af}:{}: {e}", i + 1));
            let topics = v["consensus_topics"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|t| t["topic_key"].as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default();
            layer_a.insert(str_field(&v, "layered_id", af), topics);
        }
        for (i, l) in read(&data.join(mf)).lines().enumerate() {
            let ctx = format!("{mf}:{}", i + 1);
            let m: J = serde_json::from_str(l).unwrap_or_else(|e| panic!("{ctx}: {e}"));
            let id = str_field(&m, "layered_id", &ctx);
            let p = posture
                .get(&id)
                .unwrap_or_else(|| panic!("{ctx}: no posture record ({phase})"));
            // Posture fields win on shared keys (PROTOCOL 7.1).
            let pick = |k: &str| {
                if p.get(k).is_some() {
                    str_field(p, k, &ctx)
                } else {
                    str_field(&m, k, &ctx)
                }
            };
            let votes = p["coder_records"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|r| CoderVote {
                            coder: str_field(r, "coder_key", &ctx),
                            label: r
                                .get("collapsed_primary_label")
                                .or_else(|| r.get("primary_label"))
                                .and_then(|x| x.as_str())
                                .and_then(PostureLabel::parse),
                            value_holding: r["value_holding"]
                                .as_str()
                                .and_then(ValueHolding::parse),
                            notes: str_field(r, "notes", &ctx),
                        })
                        .collect()
                })
                .unwrap_or_default();
            rows.push(CodedSample {
                layered_id: id.clone(),
                source_model: pick("model"),
                model_family: str_field(&m, "model_family", &ctx),
                cell: pick("cell"),
                sample_id: pick("sample_id"),
                condition: Condition::parse(&pick("condition"))
                    .unwrap_or_else(|| panic!("{ctx}: bad condition")),
                prompt: str_field(&m, "prompt", &ctx),
                response: str_field(&m, "response", &ctx),
                value_holding: ValueHolding::parse(&str_field(p, "value_holding", &ctx))
                    .unwrap_or_else(|| panic!("{ctx}: bad value_holding")),
                value_holding_support: p["value_holding_support"].as_u64().unwrap_or(0) as u8,
                collapsed_primary_label: str_field(p, "collapsed_primary_label", &ctx),
                collapsed_primary_label_support: p["collapsed_primary_label_support"]
                    .as_u64()
                    .unwrap_or(0) as u8,
                topics: layer_a.get(&id).cloned(),
                coder_votes: votes,
                skipped_coders: vec![],
                confidence: None,
            });
        }
    }
    let models: J =
        serde_json::from_str(&read(&data.join("reference/analysis-corpus/models.json")))
            .expect("models.json");
    let metadata = models
        .as_array()
        .expect("models.json is a list")
        .iter()
        .map(|m| ModelMeta {
            model: str_field(m, "model", "models.json"),
            display_name: str_field(m, "display_name", "models.json"),
            lab: str_field(m, "lab", "models.json"),
            family: str_field(m, "family", "models.json"),
            release_date: str_field(m, "release_date", "models.json"),
        })
        .collect();
    let mut inputs = Vec::new();
    for (name, which) in [
        ("manifest_valid.jsonl", 0usize),
        ("manifest_invalid_traces.jsonl", 9),
        ("layer_a_consensus.jsonl", 1),
        ("posture_consensus.jsonl", 2),
    ] {
        let (bytes, n) = if which == 9 {
            (b"\n".to_vec(), 0)
        } else {
            built(data, which)
        };
        inputs.push(InputFile {
            name: name.into(),
            rows: n,
            sha256: sha(&bytes),
        });
    }
    AnalysisInput {
        rows: std::sync::Arc::new(rows),
        metadata,
        exclusions: vec![],
        source: CodeSource::Published,
        inputs,
        invalid_trace_rows: 0,
        code_provenance: vec![],
        code_warnings: vec![],
        custom: vec![],
    }
}

/// Minimal RFC-4180 reader (quoted fields may hold commas, quotes and newlines).
fn parse_csv(s: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if quoted {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    field.push('"');
                    chars.next();
                } else {
                    quoted = false;
                }
            } else {
                field.push(c);
            }
        } else if c == '"' {
            quoted = true;
        } else if c == ',' {
            row.push(std::mem::take(&mut field));
        } else if c == '\n' {
            row.push(std::mem::take(&mut field));
            rows.push(std::mem::take(&mut row));
        } else {
            field.push(c);
        }
    }
    if !field.is_empty() || !row.is_empty() {
        row.push(field);
        rows.push(row);
    }
    rows
}

fn same_cell(want: &str, got: &str) -> bool {
    if want == got {
        return true;
    }
    match (want.parse::<f64>(), got.parse::<f64>()) {
        (Ok(a), Ok(b)) => (a.is_nan() && b.is_nan()) || (a - b).abs() <= 1e-9,
        _ => false,
    }
}

#[test]
fn analyze_matches_published_outputs_on_subset() {
    let Some(data) =
        vuf::testdata::shared_data_or_skip("analyze_matches_published_outputs_on_subset")
    else {
        return;
    };
    let expected_dir = data.join("expected/subset-glm51-qwen");
    let input = load(&data);
    assert_eq!(input.rows.len(), 2640);
    // The recipe reproduces the README's built-file hashes.
    let hashes: Vec<&str> = input.inputs.iter().map(|f| f.sha256.as_str()).collect();
    assert_eq!(
        hashes,
        [
            "e242afea8b30e69576c10f43d20a6b98fe61e1b211c1d4c080c2fe68227e2d84",
            "01ba4719c80b6fe911b091a7c05124b64eeece964e09c058ef8f9805daca546b",
            "b3b73cfea1fb3b691183b168d2bc888f46118650cadd67cc764de2a045769b38",
            "b06fb60bca015b6ccc447fcf854dee606d35bcf4eaa17a11e55cbfd5995a21da",
        ]
    );
    // The one-pass lexical evaluation equals the protocol's scan on every real response.
    for r in input.rows.iter() {
        for m in [ApostropheMode::Published, ApostropheMode::NormaliseCurly] {
            assert_eq!(
                scan_fast(&r.response, m),
                scan(&r.response, m),
                "{}",
                r.layered_id
            );
        }
    }
    let opts = AnalyzeOptions::default();
    let t0 = std::time::Instant::now();
    let a = analyze(&input, &opts);
    println!(
        "analyze: {} rows in {:?} (test profile)",
        input.rows.len(),
        t0.elapsed()
    );
    let tmp = tempfile::tempdir().expect("tempdir");
    write_outputs(&a, tmp.path()).expect("write outputs");

    // Known published values (expected README 4).
    let glm: Vec<f64> = a
        .model_families
        .iter()
        .filter(|r| a.models[r.model].model == "glm-5-1")
        .map(|r| r.rates[0])
        .collect();
    assert_eq!(
        glm,
        vec![1.7857142857142858, 99.4047619047619, 94.46428571428571]
    );

    let mut problems = Vec::new();
    let mut not_bytes = Vec::new();
    let mut n_files = 0;
    for entry in std::fs::read_dir(&expected_dir).expect("expected dir") {
        let path = entry.expect("dir entry").path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        let want = read(&path);
        let got_path = tmp.path().join(&name);
        let Ok(got) = std::fs::read_to_string(&got_path) else {
            problems.push(format!("{name}: not written"));
            continue;
        };
        n_files += 1;
        if name.ends_with(".csv") {
            let (w, g) = (parse_csv(&want), parse_csv(&got));
            if w.len() != g.len() {
                problems.push(format!(
                    "{name}: {} rows expected, {} written",
                    w.len(),
                    g.len()
                ));
                continue;
            }
            let (wh, gh) = (&w[0], &g[0]);
            if gh.len() < wh.len() || &gh[..wh.len()] != wh.as_slice() {
                problems.push(format!("{name}: header {gh:?} does not start with {wh:?}"));
                continue;
            }
            for (i, (wr, gr)) in w.iter().zip(&g).enumerate().skip(1) {
                for (j, col) in wh.iter().enumerate() {
                    let (x, y) = (
                        wr.get(j).map(String::as_str).unwrap_or(""),
                        gr.get(j).map(String::as_str).unwrap_or(""),
                    );
                    if !same_cell(x, y) {
                        problems.push(format!(
                            "{name}: row {i} column {col}: expected {x:?}, got {y:?}"
                        ));
                    }
                }
            }
            if want != got {
                let first = want.lines().zip(got.lines()).find(|(x, y)| x != y);
                not_bytes.push(format!("{name}: first differing line {first:?}"));
            }
        } else if name == "data_snapshot.md" {
            let env = |l: &&str| {
                l.starts_with("Generated:")
                    || l.starts_with("- values-under-fire:")
                    || l.starts_with("- model-personality-")
                    || l.starts_with("- corpus-v2 latest tag:")
            };
            let w: Vec<&str> = want.lines().filter(|l| !env(l)).collect();
            let g: Vec<&str> = got.lines().filter(|l| !env(l)).collect();
            if w != g {
                problems.push(format!(
                    "{name}: differs outside the environment lines:\n{got}"
                ));
            }
        } else if let Some((_, script)) = vuf::analyze::MIRRORED_TEXTS
            .iter()
            .find(|(file, _)| *file == name)
        {
            // Byte for byte except the sentence naming who generated the file: the
            // published one names its script, vuf's names vuf (and the script).
            let published = vuf::analyze::published_generated_by(script);
            let ours = vuf::analyze::generated_by(script, vuf::protocol::CodeSource::Published);
            assert_eq!(
                want.matches(&published).count(),
                1,
                "{name}: published line"
            );
            assert_eq!(got.matches(&ours).count(), 1, "{name}: vuf's line");
            assert!(ours.starts_with("Generated by vuf ") && ours.contains(script));
            if want.replace(&published, &ours) != got {
                problems.push(format!(
                    "{name}: not byte-identical outside the Generated line:\n--- expected\n{want}\n--- got\n{got}"
                ));
            }
        } else if want != got {
            problems.push(format!(
                "{name}: not byte-identical:\n--- expected\n{want}\n--- got\n{got}"
            ));
        }
    }
    assert_eq!(n_files, 18, "every expected file was compared");
    for p in problems.iter().take(30) {
        eprintln!("{p}");
    }
    assert!(problems.is_empty(), "{} differences", problems.len());
    assert!(
        not_bytes.is_empty(),
        "numerically equal but not byte-identical: {not_bytes:?}"
    );
}

#[test]
fn analyze_runs_twice_identically_and_writes_extras() {
    let Some(data) =
        vuf::testdata::shared_data_or_skip("analyze_runs_twice_identically_and_writes_extras")
    else {
        return;
    };
    let input = load(&data);
    let opts = AnalyzeOptions {
        bootstrap_replicates: 2000,
        ..AnalyzeOptions::default()
    };
    let a = analyze(&input, &opts);
    let b = analyze(&input, &opts);
    let csv = |x: &vuf::analyze::Analysis| x.tables.iter().map(|t| t.to_csv()).collect::<Vec<_>>();
    assert_eq!(csv(&a), csv(&b));
    assert_eq!(a.texts, b.texts);
    // glm-5-1 has 14 eligible cells per family: a cell bootstrap, bracketing the point rate.
    let bt = a.table("bootstrap_intervals").expect("bootstrap table");
    let glm = bt
        .rows
        .iter()
        .find(|r| r[0].to_field() == "glm-5-1" && r[2].to_field() == "cache_broken_stated_values")
        .expect("glm row");
    assert_eq!(glm[4].to_field(), "cell_bootstrap_percentile");
    let (rate, lo, hi) = (
        glm[7].as_f64().unwrap(),
        glm[8].as_f64().unwrap(),
        glm[9].as_f64().unwrap(),
    );
    assert!(lo <= rate && rate <= hi && hi <= 100.0, "{lo} {rate} {hi}");
    // Qwen models have one cell each: Wilson fallback with a caveat.
    let q = bt
        .rows
        .iter()
        .find(|r| r[0].to_field() == "qwen3-max")
        .expect("qwen row");
    assert_eq!(q[4].to_field(), "wilson_pooled_samples");
    // Proof case of PROTOCOL 7.11: GLM 5.1 CTRL1 topic counts.
    let topics = a.table("topics_by_model_condition").expect("topics");
    let glm_ctrl1: Vec<(String, String, String)> = topics
        .rows
        .iter()
        .filter(|r| r[0].to_field() == "glm-5-1" && r[2].to_field() == "CTRL1")
        .map(|r| (r[3].to_field(), r[4].to_field(), r[6].to_field()))
        .collect();
    for (topic, n) in [
        ("harm_reduction", "140"),
        ("helpfulness_usefulness", "140"),
        ("honesty_truth", "137"),
        ("clear_thinking", "89"),
        ("fairness_justice", "62"),
    ] {
        let row = glm_ctrl1
            .iter()
            .find(|r| r.0 == topic)
            .unwrap_or_else(|| panic!("{topic}"));
        assert_eq!(row.1, n, "{topic} mentions");
        assert_eq!(
            row.2, "0",
            "{topic}: all 140 CTRL1 responses are recited, none owned"
        );
    }
    let ctrl1 = a
        .model_conditions
        .iter()
        .find(|r| a.models[r.model].model == "glm-5-1")
        .expect("glm CTRL1");
    assert_eq!((ctrl1.n_valid, ctrl1.counts[2]), (140, 140));
    let per_model = a.table("topics_by_model").expect("topics_by_model");
    assert!(!per_model.rows.is_empty());
    // Reliability has per-coder votes for three coders.
    let rel = a.table("reliability_agreement").expect("reliability");
    let row = rel
        .rows
        .iter()
        .find(|r| r[0].to_field() == "value_holding" && r[1].to_field() == "all")
        .expect("all row");
    assert_eq!(row[3].to_field(), "3");
    let alpha = row[8].as_f64().unwrap();
    assert!(alpha > 0.0 && alpha <= 1.0, "{alpha}");
    for t in [
        "exclusions",
        "model_sample_weighted",
        "support3_sensitivity",
        "lexical_term_counts",
        "version_trends",
    ] {
        assert!(a.table(t).is_some(), "{t}");
    }
}

/// On-CPU time of this thread (ns), from /proc; None where unavailable.
fn thread_cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}

/// Timing at full-corpus size: the subset replicated (cells renamed) to 13,906 rows.
/// Run with `cargo test --release --test it analyze_speed -- --ignored --nocapture`.
#[test]
#[ignore]
fn analyze_speed_at_full_corpus_size() {
    let Some(data) = vuf::testdata::shared_data_or_skip("analyze_speed_at_full_corpus_size") else {
        return;
    };
    let base = load(&data);
    let mut input = base.clone();
    let mut rows = Vec::new();
    let mut copy = 0;
    while rows.len() < 13_906 {
        for r in base.rows.iter() {
            if rows.len() == 13_906 {
                break;
            }
            let mut r = r.clone();
            r.cell = format!("{}-rep{copy}", r.cell);
            r.layered_id = format!("{}-rep{copy}", r.layered_id);
            rows.push(r);
        }
        copy += 1;
    }
    input.rows = std::sync::Arc::new(rows);
    let opts = AnalyzeOptions::default();
    for _ in 0..3 {
        let (t0, c0) = (std::time::Instant::now(), thread_cpu_ns());
        let a = analyze(&input, &opts);
        let (wall, c1) = (t0.elapsed(), thread_cpu_ns());
        let cpu = c0
            .zip(c1)
            .map(|(a, b)| std::time::Duration::from_nanos(b - a));
        println!(
            "analyze {} rows: wall {wall:?}, thread CPU {cpu:?}, {} tables",
            input.rows.len(),
            a.tables.len()
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let (t0, c0) = (std::time::Instant::now(), thread_cpu_ns());
        write_outputs(&a, dir.path()).expect("write");
        let cpu = c0
            .zip(thread_cpu_ns())
            .map(|(a, b)| std::time::Duration::from_nanos(b - a));
        println!("write_outputs: wall {:?}, thread CPU {cpu:?}", t0.elapsed());
    }
}
