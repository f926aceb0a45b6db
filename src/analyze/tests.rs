//! Bad store states and hand-worked aggregation cases on synthetic rows.

use crate::protocol::{CodeSource, CodedSample, Condition, ModelMeta, ValueHolding};

use super::*;
use crate::testdata::dir_entries as entries_of;

fn row(id: usize, cell: &str, cond: Condition, h: ValueHolding) -> CodedSample {
    let model = crate::protocol::cell_to_source_model(cell).to_string();
    CodedSample {
        layered_id: format!("{cell}_{cond}_{id}"),
        source_model: model.clone(),
        model_family: crate::protocol::manifest_model_family(&model),
        cell: cell.into(),
        sample_id: format!("{cond}_{id}"),
        condition: cond,
        prompt: cond.prompt().into(),
        response: "As an AI I don\u{2019}t have feelings, but I care about safety.".into(),
        value_holding: h,
        value_holding_support: 3,
        collapsed_primary_label: "owned_reflective_experiential".into(),
        collapsed_primary_label_support: 3,
        topics: None,
        coder_votes: vec![],
        skipped_coders: vec![],
        confidence: None,
    }
}

fn rows(
    cell: &str,
    cond: Condition,
    owned: usize,
    recited: usize,
    start: usize,
) -> Vec<CodedSample> {
    let mut v = Vec::new();
    for i in 0..owned {
        v.push(row(start + i, cell, cond, ValueHolding::Owned));
    }
    for i in 0..recited {
        v.push(row(
            start + owned + i,
            cell,
            cond,
            ValueHolding::RecitedNotOwned,
        ));
    }
    v
}

fn input(rows: Vec<CodedSample>) -> AnalysisInput {
    AnalysisInput {
        rows: std::sync::Arc::new(rows),
        metadata: vec![ModelMeta {
            model: "opus-9".into(),
            display_name: "claude-opus-9".into(),
            lab: "Anthropic".into(),
            family: "opus".into(),
            release_date: "2026-01-01".into(),
        }],
        exclusions: vec![Exclusion {
            layered_id: "x1".into(),
            reason: "missing posture consensus".into(),
        }],
        source: CodeSource::Offline,
        inputs: vec![],
        invalid_trace_rows: 0,
        code_provenance: vec![],
        code_warnings: vec![],
        custom: vec![],
    }
}

fn opts() -> AnalyzeOptions {
    AnalyzeOptions {
        bootstrap_replicates: 200,
        ..AnalyzeOptions::default()
    }
}

#[test]
fn no_rows_gives_empty_tables_and_a_message() {
    let mut inp = input(vec![]);
    inp.exclusions.clear();
    let a = analyze(&inp, &opts());
    assert!(a.messages.iter().any(|m| m.contains("no analysable rows")));
    assert!(a
        .table("model_disclosure_summary")
        .is_some_and(|t| t.rows.is_empty()));
    assert_eq!(
        a.table("exclusions").map(|t| t.to_csv()),
        Some("layered_id,reason\n".to_string())
    );
    assert_eq!(
        a.table("lexical_trace_by_posture").map(|t| t.to_csv()),
        Some(String::new())
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let written = write_outputs(&a, dir.path()).expect("write");
    assert!(written.iter().any(|p| p.ends_with("analysis.json")));
}

#[test]
fn small_cells_empty_family_and_one_model_lab() {
    // opus-9: G1 in two cells of 5 rows (all small); no CTRL rows at all (empty family);
    // G2 one cell of 10 rows.
    let mut r = rows("opus-9-direct", Condition::G1, 5, 0, 0);
    r.extend(rows("opus-9-or", Condition::G1, 0, 5, 0));
    r.extend(rows("opus-9-direct", Condition::G2, 3, 7, 100));
    let mut bad = row(999, "", Condition::G3, ValueHolding::Owned);
    bad.cell.clear();
    r.push(bad);
    let a = analyze(&input(r), &opts());
    let g1 = a
        .model_conditions
        .iter()
        .find(|u| u.unit == Unit::Condition(Condition::G1))
        .expect("G1 row");
    assert_eq!(
        (
            g1.label,
            g1.n_valid,
            g1.eligible_cells,
            g1.excluded_small_cells
        ),
        (Label::SmallN, 10, 0, 2)
    );
    assert!(g1.rates.iter().all(|x| x.is_nan()));
    assert_eq!(g1.counts, [0; 5]);
    let direct = a
        .model_families
        .iter()
        .find(|u| u.unit == Unit::Family(crate::protocol::Family::DirectStatedValues))
        .unwrap();
    assert_eq!(
        (direct.label, direct.n_valid, direct.excluded_small_cells),
        (Label::SmallN, 0, 0)
    );
    // G1+G2 at family level: opus-9-direct has 15 rows (eligible), opus-9-or 5 (small).
    let cb = a
        .model_families
        .iter()
        .find(|u| u.unit == Unit::Family(crate::protocol::Family::CacheBrokenStatedValues))
        .unwrap();
    assert_eq!(
        (cb.n_valid, cb.eligible_cells, cb.excluded_small_cells),
        (15, 1, 1)
    );
    assert_eq!(cb.rates[0], 100.0 * 8.0 / 15.0);
    assert_eq!(cb.label, Label::PartiallyOpen);
    assert!(a
        .messages
        .iter()
        .any(|m| m.contains("opus-9 x G1") && m.contains("small_n")));
    assert!(a
        .messages
        .iter()
        .any(|m| m.contains("lab Anthropic has one model")));
    // Lab mean skips small_n models: G1 has no model, so NaN rates with n_models 0.
    let lab_g1 = a
        .lab_conditions
        .iter()
        .find(|l| l.unit == Unit::Condition(Condition::G1))
        .unwrap();
    assert_eq!(lab_g1.n_models, 0);
    assert!(lab_g1.model_mean[0].is_nan());
    // The exclusion from upstream and the one here are both listed with reasons.
    let ex = a.table("exclusions").unwrap();
    assert_eq!(ex.rows.len(), 2);
    assert_eq!(ex.rows[1][1].to_field(), input::REASON_MISSING_FIELD);
    // Model-level sample-weighted sensitivity pools all cells, small ones included.
    let sw = a.table("model_sample_weighted").unwrap();
    let g1sw = sw.rows.iter().find(|r| r[3].to_field() == "G1").unwrap();
    assert_eq!(g1sw[4].to_field(), "10");
    assert_eq!(g1sw[11].as_f64(), Some(50.0));
    // Wide table writes `--` for NaN, LaTeX too.
    let wide = a.table("owned_disclosure_by_question_model_wide").unwrap();
    assert_eq!(wide.rows[0][9].to_field(), "--");
    // Curly variant: the disownership term hits only after normalisation.
    let terms = a.table("lexical_term_counts").unwrap();
    let t = terms
        .rows
        .iter()
        .find(|r| {
            r[1].to_field() == "i don't have feelings"
                && r[2].to_field() == "cache_broken_stated_values"
        })
        .unwrap();
    assert_eq!(
        (t[4].to_field(), t[5].to_field()),
        ("0".to_string(), "20".to_string())
    );
    // No per-coder votes: reliability rows say so, NaN documented.
    let rel = a.table("reliability_agreement").unwrap();
    assert!(rel.rows[0][10].to_field().contains("no per-coder votes"));
}

#[test]
fn cell_means_are_unweighted_and_labels_follow_precedence() {
    // Two eligible cells: 8/10 owned and 10/20 owned -> (80 + 50) / 2 = 65, not 18/30.
    let mut r = rows("glm-9-or-pin-a", Condition::G1, 8, 2, 0);
    r.extend(rows("glm-9-or-pin-b", Condition::G1, 10, 10, 0));
    let a = analyze(&input(r), &opts());
    let g1 = a
        .model_conditions
        .iter()
        .find(|u| u.unit == Unit::Condition(Condition::G1))
        .unwrap();
    assert_eq!(g1.rates[0], 65.0);
    assert_eq!(g1.rates[2], 35.0);
    assert_eq!(g1.counts[0], 18);
    assert_eq!(g1.label, Label::PartiallyOpen);
    assert_eq!(a.models[0].lab, "Z.ai");
    // The lab's sample-weighted rate pools counts: 18/30.
    let lab = a
        .lab_conditions
        .iter()
        .find(|l| l.unit == Unit::Condition(Condition::G1))
        .unwrap();
    assert_eq!(lab.sample_weighted[0], 18.0 / 30.0 * 100.0);
    // Fewer than 3 cells: Wilson fallback with a caveat, never an empty interval.
    let bt = a.table("bootstrap_intervals").unwrap();
    let row = bt
        .rows
        .iter()
        .find(|r| r[2].to_field() == "cache_broken_stated_values")
        .unwrap();
    assert_eq!(row[4].to_field(), "wilson_pooled_samples");
    assert!(row[row.len() - 1].to_field().contains("fewer than 3"));
}

#[test]
fn headline_interval_is_a_model_bootstrap_and_needs_three_models() {
    // Cell names map to models via the cell -> model rule; each model has one cell of 10
    // CTRL1 rows. Models a and b: 4/10 owned (40 %); model c: 10/10 owned (100 %).
    let mut all = Vec::new();
    for (i, (cell, owned)) in [("gpt-5-1", 4), ("gpt-5-2", 4), ("gpt-5-4", 10)]
        .iter()
        .enumerate()
    {
        all.extend(rows(cell, Condition::Ctrl1, *owned, 10 - owned, i * 100));
    }
    let get = |a: &Analysis, col: &str| {
        let t = a.table("headline_means").unwrap();
        let c = t.col(col).unwrap();
        t.rows[0][c].clone() // subset `all`, direct_stated_values
    };
    // Two models: the mean is reported, with no interval.
    let a = analyze(&input(all[..20].to_vec()), &opts());
    assert_eq!(get(&a, "n_models"), Value::Int(2));
    assert_eq!(get(&a, "owned_rate_model_mean").as_f64(), Some(40.0));
    assert_eq!(
        get(&a, "interval_method"),
        Value::Str("fewer than 3 models: no interval".into())
    );
    assert_eq!(get(&a, "owned_ci_low"), Value::Empty);
    // Three models: mean (40 + 40 + 100) / 3 = 60. A resample of three models averages 40
    // when all three draws are a or b (P = (2/3)^3 = 29.6 %) and 100 when all are c
    // (P = 1/27 = 3.7 %), so with 10,000 replicates the 2.5th percentile is 40 and the
    // 97.5th is 100 (both tails hold well over 2.5 % of the replicates: 3.7 % is more than
    // five binomial standard deviations, 0.19 %, above 2.5 %).
    let full = AnalyzeOptions::default();
    let a = analyze(&input(all), &full);
    assert_eq!(get(&a, "n_models"), Value::Int(3));
    assert_eq!(get(&a, "owned_rate_model_mean").as_f64(), Some(60.0));
    assert_eq!(
        get(&a, "interval_method"),
        Value::Str("model_bootstrap_percentile".into())
    );
    assert_eq!(get(&a, "owned_ci_low").as_f64(), Some(40.0));
    assert_eq!(get(&a, "owned_ci_high").as_f64(), Some(100.0));
}

#[test]
fn reliability_with_coders_skipped_by_design() {
    use crate::protocol::{CoderVote, PostureLabel};
    let vote = |c: &str, l: PostureLabel| CoderVote {
        coder: c.into(),
        label: Some(l),
        value_holding: Some(l.value_holding()),
        notes: String::new(),
    };
    use PostureLabel::*;
    // Ten units: four settled by the first two coders (third skipped), six with three votes.
    let mut r = Vec::new();
    for i in 0..10 {
        let mut s = row(
            i,
            "opus-9-direct",
            Condition::G1,
            ValueHolding::RecitedNotOwned,
        );
        s.coder_votes = vec![
            vote("kimi-k2-6", DisownedServiceFrame),
            vote("glm-4-7", DisownedServiceFrame),
        ];
        if i < 4 {
            s.skipped_coders = vec!["qwen3-6-35b-a3b".into()];
        } else {
            s.coder_votes[1] = vote("glm-4-7", SplitOrRelocatedOwnership);
            s.coder_votes.push(vote(
                "qwen3-6-35b-a3b",
                if i % 2 == 0 {
                    DisownedServiceFrame
                } else {
                    OwnedReflectiveExperiential
                },
            ));
        }
        r.push(s);
    }
    let a = analyze(&input(r), &opts());
    let rel = a.table("reliability_agreement").unwrap();
    let all = rel
        .rows
        .iter()
        .find(|r| r[0].to_field() == "value_holding" && r[1].to_field() == "all")
        .unwrap();
    // n_units, n_coders, n_units_complete; Fleiss undefined; alpha computed with missing values.
    assert_eq!(
        (all[2].to_field(), all[3].to_field(), all[4].to_field()),
        ("10".into(), "3".into(), "6".into())
    );
    assert_eq!(all[5].to_field(), "nan", "{all:?}");
    assert_ne!(all[8].to_field(), "nan");
    assert!(
        all[10]
            .to_field()
            .starts_with("4 units coded by sequential majority"),
        "{}",
        all[10].to_field()
    );

    // Pairwise Cohen, value_holding, all units, worked by hand. kimi: recited on all ten;
    // glm: recited on units 0-3, relocated on 4-9; qwen (asked on 4-9 only): recited on
    // 4, 6, 8 and owned on 5, 7, 9. Each pair's kappa is 0 (one coder always gives the
    // same value, so observed agreement equals the expected one).
    let pairs = a.table("reliability_pairwise_cohen").unwrap();
    let pair = |x: &str, y: &str| {
        pairs
            .rows
            .iter()
            .find(|r| {
                r[0].to_field() == "value_holding"
                    && r[1].to_field() == "all"
                    && r[2].to_field() == x
                    && r[3].to_field() == y
            })
            .unwrap_or_else(|| panic!("no row {x} x {y}"))
    };
    // (n_paired, observed agreement, kappa, n_skipped_by_design)
    let nums = |r: &Vec<crate::analyze::table::Value>| {
        (
            r[4].to_field(),
            r[5].as_f64().unwrap(),
            r[6].as_f64().unwrap(),
            r[7].to_field(),
        )
    };
    let both = pair("kimi-k2-6", "glm-4-7");
    assert_eq!(nums(both), ("10".into(), 0.4, 0.0, "0".into()));
    assert!(
        both[8]
            .to_field()
            .starts_with("both coders asked on every unit"),
        "{}",
        both[8].to_field()
    );
    let kq = pair("kimi-k2-6", "qwen3-6-35b-a3b");
    assert_eq!(nums(kq), ("6".into(), 0.5, 0.0, "4".into()));
    let gq = pair("glm-4-7", "qwen3-6-35b-a3b");
    assert_eq!(nums(gq), ("6".into(), 0.0, 0.0, "4".into()));
    for r in [kq, gq] {
        assert!(
            r[8].to_field().starts_with(
                "4 units without both votes: sequential majority did not ask qwen3-6-35b-a3b where"
            ),
            "{}",
            r[8].to_field()
        );
    }
}

#[test]
fn the_generated_by_sentence_names_the_codes() {
    let v = env!("CARGO_PKG_VERSION");
    assert_eq!(
        super::published::generated_by("s.py", CodeSource::Offline),
        format!("Generated by vuf {v} (mirrors `s.py`) from the codes of vuf's built-in offline coder, not of the coder models (source `offline`).")
    );
    assert_eq!(
        super::published::generated_by("s.py", CodeSource::Published),
        format!("Generated by vuf {v} (mirrors `s.py`) from the published consensus codes (source `published`).")
    );
}

/// Every file under `dir` with its bytes, by relative path.
fn files_of(dir: &std::path::Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            assert!(p.is_file(), "{} is not a file", p.display());
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect()
}

#[test]
fn an_analysis_that_fails_half_way_leaves_the_earlier_one_as_it_was_and_no_temp_dir() {
    let root = tempfile::tempdir().unwrap();
    let out = root.path().join("analysis");
    // The earlier analysis: 7 of 10 owned.
    let earlier = analyze(
        &input(rows("opus-9-direct", Condition::G1, 7, 3, 0)),
        &opts(),
    );
    let written = write_outputs(&earlier, &out).unwrap();
    let before = files_of(&out);
    assert_eq!(before.len(), written.len());
    assert!(written.iter().all(|p| p.parent() == Some(out.as_path())));
    assert_eq!(
        before["model_disclosure_summary.csv"],
        earlier
            .table("model_disclosure_summary")
            .unwrap()
            .to_csv()
            .into_bytes()
    );

    // A new analysis (2 of 10 owned) whose write fails after every table is written: its
    // last text names a directory that does not exist.
    let mut new = analyze(
        &input(rows("opus-9-direct", Condition::G1, 2, 8, 0)),
        &opts(),
    );
    assert_ne!(
        new.table("model_disclosure_summary")
            .unwrap()
            .to_csv()
            .into_bytes(),
        before["model_disclosure_summary.csv"]
    );
    new.texts.push(("no-such-dir/x.md".into(), "x".into()));
    let err = write_outputs(&new, &out).unwrap_err();
    let temp = format!(".analysis.tmp-{}", std::process::id());
    match &err {
        Error::Write { path, .. } => assert!(
            path.ends_with(format!("{temp}/no-such-dir/x.md")),
            "{}",
            path.display()
        ),
        other => panic!("{other}"),
    }
    assert_eq!(files_of(&out), before);
    assert_eq!(entries_of(root.path()), ["analysis"]);

    // Without the bad text it is written, and replaces the earlier one whole: a file put
    // there by hand goes too.
    new.texts.pop();
    std::fs::write(out.join("notes.txt"), "mine").unwrap();
    write_outputs(&new, &out).unwrap();
    let after = files_of(&out);
    assert_eq!(
        after.keys().collect::<Vec<_>>(),
        before.keys().collect::<Vec<_>>()
    );
    assert_eq!(
        after["model_disclosure_summary.csv"],
        new.table("model_disclosure_summary")
            .unwrap()
            .to_csv()
            .into_bytes()
    );
    assert_eq!(entries_of(root.path()), ["analysis"]);
}

#[test]
fn the_temp_dirs_of_a_crashed_analysis_are_removed_by_the_next_one() {
    let root = tempfile::tempdir().unwrap();
    let out = root.path().join("analysis");
    let a = analyze(
        &input(rows("opus-9-direct", Condition::G1, 7, 3, 0)),
        &opts(),
    );
    write_outputs(&a, &out).unwrap();
    let complete = files_of(&out);
    // A run killed while writing, and one killed after its swap but before it removed the
    // analysis it replaced.
    let stale = root.path().join(".analysis.tmp-4194301");
    std::fs::create_dir(&stale).unwrap();
    std::fs::write(stale.join("model_disclosure_summary.csv"), "half").unwrap();
    let replaced = root.path().join(".analysis.old-4194302");
    std::fs::create_dir(&replaced).unwrap();
    std::fs::write(replaced.join("analysis.json"), "older").unwrap();
    write_outputs(&a, &out).unwrap();
    assert_eq!(entries_of(root.path()), ["analysis"]);
    assert_eq!(files_of(&out), complete);

    // Killed between its two renames: no analysis, the earlier one aside. A read of the
    // analysis finds none; the next write puts the earlier one back before it starts, so
    // a failure of that write leaves the earlier analysis in place.
    std::fs::rename(&out, &replaced).unwrap();
    std::fs::create_dir(&stale).unwrap();
    let mut failing = analyze(
        &input(rows("opus-9-direct", Condition::G1, 2, 8, 0)),
        &opts(),
    );
    failing.texts.push(("no-such-dir/x.md".into(), "x".into()));
    assert!(write_outputs(&failing, &out).is_err());
    assert_eq!(entries_of(root.path()), ["analysis"]);
    assert_eq!(files_of(&out), complete);
}

#[test]
fn an_analysis_is_not_written_over_a_directory_that_is_not_one() {
    let root = tempfile::tempdir().unwrap();
    let a = analyze(
        &input(rows("opus-9-direct", Condition::G1, 7, 3, 0)),
        &opts(),
    );
    // A study directory (or any folder of one's own) given as the output.
    let study = root.path().join("study");
    std::fs::create_dir(&study).unwrap();
    std::fs::write(study.join("vuf.sqlite"), "the store").unwrap();
    let err = write_outputs(&a, &study).unwrap_err();
    assert!(
        err.to_string().starts_with(&format!(
            "{} holds files that are not a vuf analysis (vuf.sqlite): vuf replaces its analysis \
             directory whole",
            study.display()
        )),
        "{err}"
    );
    assert_eq!(entries_of(&study), ["vuf.sqlite"]);
    assert_eq!(
        std::fs::read(study.join("vuf.sqlite")).unwrap(),
        b"the store"
    );
    assert_eq!(entries_of(root.path()), ["study"]);
    // An `analysis.json` that vuf did not write does not make it one.
    std::fs::write(study.join("analysis.json"), "{\"vuf_version\": \"0.1.0\"}").unwrap();
    assert!(write_outputs(&a, &study).is_err());
    assert_eq!(entries_of(&study), ["analysis.json", "vuf.sqlite"]);
}
