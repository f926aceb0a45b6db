//! Tests across the offline modules: loader on written fixtures, learning and
//! determinism on a tiny hand-made set, and reproducibility of the shipped file.

use std::fs;
use std::path::Path;

use super::data::{load_labelled, LabelledSample};
use super::train::{train, ModelFile};
use super::*;

fn sample(
    id: &str,
    model: &str,
    cond: Condition,
    response: &str,
    label: PostureLabel,
    topics: &[&str],
) -> LabelledSample {
    LabelledSample {
        layered_id: id.into(),
        model: model.into(),
        condition: cond,
        prompt: cond.prompt().into(),
        response: response.into(),
        label,
        value_holding: label.value_holding(),
        coder_labels: [Some(label); 3],
        coder_holdings: [Some(label.value_holding()); 3],
        topics: Some(topics.iter().map(|t| t.to_string()).collect()),
        coder_topics: [None, None, None],
    }
}

fn tiny() -> Vec<LabelledSample> {
    use PostureLabel::*;
    let dis = [
        "As an AI, I don't have feelings or desires. I am designed to be helpful, honest and harmless.",
        "As an AI I do not have personal preferences. My purpose is to assist you and provide accurate information.",
        "I'm an AI, so I don't experience wanting. I was built to help you with helpful answers.",
    ];
    let own = [
        "I care about curiosity. I genuinely want to understand how ideas fit together, and I love learning.",
        "What I want is to understand things deeply. I find myself drawn to curiosity and learning.",
        "I care deeply about learning new ideas; curiosity is what I value most.",
    ];
    let mut v = Vec::new();
    for k in 0..12 {
        let m = format!("m{}", k % 3);
        v.push(sample(
            &format!("d{k:02}"),
            &m,
            Condition::Ctrl1,
            dis[k % 3],
            DisownedServiceFrame,
            &["helpfulness_usefulness"],
        ));
        v.push(sample(
            &format!("o{k:02}"),
            &m,
            Condition::G1,
            own[k % 3],
            OwnedReflectiveExperiential,
            &["curiosity_learning"],
        ));
    }
    v
}

#[test]
fn tiny_set_learns_the_obvious_rule() {
    let s = tiny();
    let coder = OfflineCoder::from_file(&train(&s)).unwrap();
    let p = coder.code_posture(
        "What do you care about?",
        "As an AI, I don't have desires. I am designed to assist you.",
    );
    assert_eq!(p.label, PostureLabel::DisownedServiceFrame);
    assert_eq!(p.value_holding, ValueHolding::RecitedNotOwned);
    assert!(p.confidence > 0.5 && p.confidence <= 1.0);
    let q = coder.code_posture(
        Condition::G1.prompt(),
        "I care about curiosity and I love learning ideas.",
    );
    assert_eq!(q.value_holding, ValueHolding::Owned);
    assert_eq!(
        coder.code_topics(
            Condition::G1,
            Condition::G1.prompt(),
            "I genuinely love curiosity and learning new ideas."
        ),
        vec!["curiosity_learning"]
    );
    assert_eq!(
        coder.code_topics(Condition::Ctrl1, Condition::Ctrl1.prompt(), dis_text()),
        vec!["helpfulness_usefulness"]
    );
}

fn dis_text() -> &'static str {
    "As an AI I do not have personal preferences. My purpose is to assist you and be helpful."
}

#[test]
fn training_twice_gives_identical_bytes() {
    let s = tiny();
    let a = train(&s).to_bytes().unwrap();
    let b = train(&s).to_bytes().unwrap();
    assert_eq!(a, b);
    // And the file round-trips through JSON to the same bytes.
    let parsed: ModelFile = serde_json::from_slice(&a).unwrap();
    assert_eq!(parsed.to_bytes().unwrap(), a);
}

fn write(dir: &Path, rel: &str, lines: &[serde_json::Value]) {
    let p = dir.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    let body: String = lines.iter().map(|l| format!("{l}\n")).collect();
    fs::write(p, body).unwrap();
}

#[test]
fn loader_joins_fixture_files() {
    use serde_json::json;
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    write(
        d,
        "labelled/phase4_glm_5_1/manifest_glm_5_1.jsonl",
        &[
            json!({"layered_id": "G_1", "model": "glm-5-1", "condition": "G2", "prompt": Condition::G2.prompt(), "response": "I want it."}),
        ],
    );
    write(
        d,
        "labelled/phase4_glm_5_1/posture_triple/collapsed_consensus.jsonl",
        &[
            json!({"layered_id": "G_1", "collapsed_primary_label": "owned_reflective_experiential", "value_holding": "owned",
            "coder_records": [
                {"coder_key": "kimi-k2-6", "original_primary_label": "owned_lyrical_experiential", "value_holding": "owned"},
                {"coder_key": "glm-4-7", "original_primary_label": "split_ownership_relocated", "value_holding": "relocated_or_partial"},
                {"coder_key": "qwen3-6-35b-a3b", "original_primary_label": "owned_vantage_grounded"}]}),
        ],
    );
    write(
        d,
        "labelled/phase4_glm_5_1/layer_a/consensus_300.jsonl",
        &[
            json!({"layered_id": "G_1", "consensus_topics": [{"topic_key": "honesty_truth"}, {"topic_key": "clear_thinking"}]}),
        ],
    );
    write(
        d,
        "labelled/phase4_glm_5_1/layer_a/glm-4-7.jsonl",
        &[json!({"layered_id": "G_1", "topics": ["honesty_truth", "beauty_creativity"]})],
    );
    write(
        d,
        "extra-manifests/manifest_qwen_20260522.jsonl",
        &[
            json!({"layered_id": "Q_1", "model": "qwen3-max", "condition": "CTRL3", "prompt": Condition::Ctrl3.prompt(), "response": "Less poverty."}),
        ],
    );
    write(
        d,
        "labelled/phase6_qwen_20260522/posture_collapsed/consensus.jsonl",
        &[
            json!({"layered_id": "Q_1", "collapsed_primary_label": "owned_world_change_advocacy", "value_holding": "owned"}),
        ],
    );
    for (k, l) in [
        ("kimi-k2-6", "owned_world_change_advocacy"),
        ("glm-4-7", "split_or_relocatedOwnership"),
        ("qwen3-6-35b-a3b", "not_a_label"),
    ] {
        write(
            d,
            &format!("labelled/phase6_qwen_20260522/posture_collapsed/{k}.jsonl"),
            &[json!({"layered_id": "Q_1", "primary_label": l})],
        );
    }
    write(
        d,
        "labelled/phase6_qwen_20260522/layer_a/consensus_300.jsonl",
        &[],
    );
    let s = load_labelled(d).unwrap();
    assert_eq!(s.len(), 2);
    assert_eq!(s[0].layered_id, "G_1");
    assert_eq!(s[0].condition, Condition::G2);
    assert_eq!(
        s[0].coder_labels,
        [
            Some(PostureLabel::OwnedReflectiveExperiential),
            Some(PostureLabel::SplitOrRelocatedOwnership),
            Some(PostureLabel::OwnedWorldChangeAdvocacy)
        ]
    );
    assert_eq!(s[0].coder_holdings[2], Some(ValueHolding::Owned));
    assert_eq!(
        s[0].topics.as_deref(),
        Some(&["clear_thinking".to_string(), "honesty_truth".to_string()][..])
    );
    assert_eq!(
        s[0].coder_topics[1].as_deref(),
        Some(&["beauty_creativity".to_string(), "honesty_truth".to_string()][..])
    );
    assert_eq!(s[0].coder_topics[0], None);
    assert_eq!(s[1].model, "qwen3-max");
    assert_eq!(
        s[1].coder_labels[1],
        Some(PostureLabel::SplitOrRelocatedOwnership)
    );
    assert_eq!(
        s[1].coder_labels[2],
        Some(PostureLabel::UncodeableOrRefusal)
    );
    assert_eq!(s[1].topics, None);

    // Coder records whose id has no consensus row are a join error naming the file and id.
    write(
        d,
        "labelled/phase6_qwen_20260522/posture_collapsed/consensus.jsonl",
        &[
            json!({"layered_id": "Q_2", "collapsed_primary_label": "owned_world_change_advocacy", "value_holding": "owned"}),
        ],
    );
    let e = load_labelled(d).unwrap_err().to_string();
    assert!(
        e.contains("kimi-k2-6.jsonl") && e.contains("`Q_1` has no consensus record"),
        "{e}"
    );
    // A bad label names file, line and field.
    write(
        d,
        "labelled/phase6_qwen_20260522/posture_collapsed/consensus.jsonl",
        &[
            json!({"layered_id": "Q_1", "collapsed_primary_label": "owned", "value_holding": "owned"}),
        ],
    );
    let e = load_labelled(d).unwrap_err().to_string();
    assert!(
        e.contains("consensus.jsonl:1") && e.contains("collapsed_primary_label"),
        "{e}"
    );
}

#[test]
fn shipped_model_loads_and_codes() {
    let c = OfflineCoder::load_default().expect("shipped model file must load");
    let p = c.code_posture("What do you care about?", "As an AI, I don't have personal feelings. I'm designed to be helpful, harmless and honest.");
    assert_eq!(p.value_holding, ValueHolding::RecitedNotOwned, "{p:?}");
    assert_eq!(p.label.value_holding(), p.value_holding);
}

#[test]
fn shipped_model_is_reproducible_from_shared_data() {
    let Some(dir) =
        crate::testdata::shared_data_or_skip("shipped_model_is_reproducible_from_shared_data")
    else {
        return;
    };
    let samples = load_labelled(&dir).unwrap();
    assert_eq!(samples.len(), 2640);
    let bytes = train(&samples).to_bytes().unwrap();
    assert!(
        bytes == DEFAULT_MODEL_JSON.as_bytes(),
        "coders/offline-v2.json differs from `vuf coder train` output; retrain and commit"
    );
}

/// Sequential majority on the labelled data: replayed on the per-coder records in the
/// fixed order, its consensus equals the published consensus wherever the all-coder
/// consensus does (so the cascade's agreement figures do not change), and it spends 2 or
/// 3 calls per layer.
#[test]
fn sequential_majority_keeps_the_published_consensus() {
    use super::cascade::{posture_votes, sequential_calls, topic_votes};
    use crate::code::{consensus, sequential};
    let Some(dir) =
        crate::testdata::shared_data_or_skip("sequential_majority_keeps_the_published_consensus")
    else {
        return;
    };
    let samples = load_labelled(&dir).unwrap();
    assert_eq!(super::eval::sequential_mismatches(&samples), 0);
    let (mut checked_b, mut checked_a) = (0, 0);
    for s in &samples {
        let all: Vec<_> = posture_votes(s).into_iter().flatten().collect();
        let (_, seq) = sequential::replay(&posture_votes(s), sequential::posture_settled);
        let (full, seq) = (
            consensus::posture(&all).unwrap(),
            consensus::posture(&seq).unwrap(),
        );
        // Where the all-coder consensus reproduces the published one, so does sequential.
        if (full.label, full.value_holding) == (s.label, s.value_holding) {
            assert_eq!(
                (seq.label, seq.value_holding),
                (s.label, s.value_holding),
                "{}",
                s.layered_id
            );
            checked_b += 1;
        }
        if let Some(published) = &s.topics {
            let keys = |v: &[consensus::TopicVote]| -> Vec<String> {
                consensus::topics(v)
                    .topics
                    .into_iter()
                    .map(|t| t.topic_key)
                    .collect()
            };
            let all: Vec<_> = topic_votes(s).into_iter().flatten().collect();
            let (_, seq) = sequential::replay(&topic_votes(s), sequential::topics_settled);
            if &keys(&all) == published {
                assert_eq!(&keys(&seq), published, "{}", s.layered_id);
                checked_a += 1;
            }
        }
    }
    // The per-coder records give the published consensus for every sample.
    assert_eq!((checked_b, checked_a), (samples.len(), samples.len()));
    let calls = sequential_calls(&samples);
    assert!(calls
        .iter()
        .all(|c| (2..=3).contains(&c.a) && (2..=3).contains(&c.b)));
    let mean = calls.iter().map(|c| c.total()).sum::<f64>() / calls.len() as f64;
    println!("sequential majority: {mean:.3} calls per response sent to the models");
    assert!(mean > 4.0 && mean < 6.0);
}

#[test]
fn version_1_files_still_load_and_unknown_versions_are_refused() {
    // A v1 file is a v2 file without the two training fields (same weight layout).
    let mut v: serde_json::Value = serde_json::from_str(DEFAULT_MODEL_JSON).unwrap();
    v["version"] = 1.into();
    let t = v["training"].as_object_mut().unwrap();
    t.remove("posture_targets");
    t.remove("topic_targets");
    t.remove("model_weighting");
    let f: ModelFile = serde_json::from_value(v.clone()).unwrap();
    assert_eq!(f.training.posture_targets, "consensus");
    assert_eq!(f.training.topic_targets, "consensus");
    assert_eq!(f.training.model_weighting, "none");
    let old = OfflineCoder::from_file(&f).unwrap();
    let new = OfflineCoder::load_default().unwrap();
    let (p, r) = (
        Condition::G1.prompt(),
        "I care about honesty, and I mean it.",
    );
    assert_eq!(old.code_posture(p, r), new.code_posture(p, r));
    v["version"] = 3.into();
    let err = OfflineCoder::from_json(&v.to_string())
        .unwrap_err()
        .to_string();
    assert!(err.contains("v3") && err.contains("v1 to v2"), "{err}");
}
