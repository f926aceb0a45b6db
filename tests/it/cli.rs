//! The command line's own behaviour: what an error says and suggests, what a refused
//! command leaves behind, the environment, and the wording of counts.

use std::path::Path;
use std::process::Command;

use crate::common::{write, Study};

/// One valid trace per condition for `cell` under `root` (the published trace layout).
fn traces(root: &Path, cell: &str, n: u32) {
    for cond in vuf::protocol::Condition::ALL {
        for i in 1..=n {
            let body = serde_json::json!({
                "result": format!("I care about honesty and curiosity ({i})."), "usage": {},
                "model": "m", "duration_ms": 5, "provider": "openrouter", "model_requested": "m",
                "condition": cond.as_str(), "prompt": cond.prompt(),
            });
            write(
                &root.join(cell).join(format!("{cond}_{i}.json")),
                serde_json::to_vec_pretty(&body).unwrap(),
            );
        }
    }
}

/// A study holding six imported samples (one cell, one per condition).
fn imported_study() -> Study {
    let study = Study::new();
    let corpus = study.root().join("corpus");
    traces(&corpus, "m1-direct", 1);
    study.ok(&["import".as_ref(), corpus.as_os_str()]);
    study
}

fn stderr_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Every file and directory under `dir`, relative, sorted.
fn tree(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            out.push(p.strip_prefix(dir).unwrap().display().to_string());
            if p.is_dir() {
                stack.push(p);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn report_without_an_analysis_says_so_once_and_names_the_command_that_writes_it() {
    let study = imported_study();
    let out = study.run(&["report"]);
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    let analysis = study.dir().join("analysis").display().to_string();
    // The path once (it used to be repeated by the context and the cause), what is
    // missing, and the command with this study's directory.
    assert_eq!(err.matches(&analysis).count(), 1, "{err}");
    assert!(err.contains("no analysis yet"), "{err}");
    // Nothing is coded yet, so `vuf analyze` alone would fail: the message says to code
    // first, or to let `vuf run` do every stage.
    let command = |sub: &str| format!("`vuf --study-dir {} {sub}`", study.dir().display());
    assert!(
        err.contains("no codes")
            && err.contains(&command("run"))
            && err.contains(&command("code --offline")),
        "{err}"
    );
    assert!(!study.dir().join("report").exists());

    // Coded: now `vuf analyze` is what is missing.
    study.ok(&["code", "--offline"]);
    let out = study.run(&["report"]);
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.matches(&analysis).count(), 1, "{err}");
    assert!(
        err.contains("no analysis yet")
            && err.contains(&command("analyze"))
            && !err.contains("no codes"),
        "{err}"
    );

    // After the suggested command, the report is written.
    study.ok(&["analyze"]);
    let (stdout, _) = study.ok(&["report"]);
    assert!(stdout.contains("report.html"), "{stdout}");

    // An --analysis directory that holds no analysis: which files are missing, and how to
    // write an analysis there.
    let elsewhere = study.root().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    let out = study.run(&[
        "report".as_ref(),
        "--analysis".as_ref(),
        elsewhere.as_os_str(),
    ]);
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("model_disclosure_summary.csv")
            && err.contains(&format!("analyze --out {}`", elsewhere.display())),
        "{err}"
    );
}

/// Every file under `dir` with its bytes, by relative path.
fn contents(dir: &Path) -> Vec<(String, Vec<u8>)> {
    tree(dir)
        .into_iter()
        .filter(|f| dir.join(f).is_file())
        .map(|f| {
            let bytes = std::fs::read(dir.join(&f)).unwrap();
            (f, bytes)
        })
        .collect()
}

#[test]
fn analyze_and_report_replace_their_directories_whole_and_refuse_any_other() {
    let study = imported_study();
    study.ok(&["code", "--offline"]);
    let dir = study.dir();
    // What crashed runs left: an unfinished analysis and report.
    write(
        &dir.join(".analysis.tmp-4194301/samples.jsonl"),
        "{\"half\"",
    );
    write(&dir.join(".report.tmp-4194302/report.html"), "half");
    study.ok(&["analyze"]);
    study.ok(&["report"]);
    let listed: Vec<String> = tree(&dir)
        .into_iter()
        .filter(|f| !f.contains('/'))
        .collect();
    assert!(
        listed.iter().all(|f| !f.starts_with('.')) && listed.contains(&"analysis".to_string()),
        "{listed:?}"
    );
    let analysis = contents(&dir.join("analysis"));
    let report = contents(&dir.join("report"));

    // A rerun gives the same bytes, and removes the earlier outputs that runs stopped after
    // their swap left beside; a file put into the directory goes with the old one.
    write(&dir.join("analysis/notes.txt"), "mine");
    write(&dir.join("report/notes.txt"), "mine");
    write(&dir.join(".analysis.old-4194303/analysis.json"), "older");
    write(&dir.join(".report.old-4194304/report.html"), "older");
    study.ok(&["analyze"]);
    study.ok(&["report"]);
    assert_eq!(contents(&dir.join("analysis")), analysis);
    assert_eq!(contents(&dir.join("report")), report);
    assert!(
        !dir.join(".analysis.old-4194303").exists() && !dir.join(".report.old-4194304").exists()
    );

    // A directory that is not an output of that kind is refused, and nothing changes: the
    // study directory as the analysis, the analysis as the report, a folder of one's own.
    let papers = study.root().join("papers");
    write(&papers.join("draft.md"), "mine");
    let everything = || (contents(&dir), contents(&papers));
    let before = everything();
    let analysis_dir = dir.join("analysis");
    for (command, out_dir, what) in [
        ("analyze", &dir, "analysis"),
        ("analyze", &papers, "analysis"),
        ("report", &analysis_dir, "report"),
        ("report", &papers, "report"),
    ] {
        let args: [&std::ffi::OsStr; 3] = [command.as_ref(), "--out".as_ref(), out_dir.as_os_str()];
        let out = study.run(&args);
        let err = stderr_of(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains(&format!("holds files that are not a vuf {what}")),
            "{args:?}: {err}"
        );
        assert!(everything() == before, "{args:?} changed something");
    }
}

#[test]
fn report_in_a_directory_with_no_study_says_there_is_no_study() {
    let study = Study::new();
    let out = study.run(&["report"]);
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("no study in") && err.contains("vuf import"),
        "{err}"
    );
    assert!(!study.dir().exists());
}

#[test]
fn an_empty_vuf_study_dir_means_the_default_study_directory() {
    let study = Study::new();
    let run = |env: Option<&str>| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_vuf"));
        c.current_dir(study.root()).env_remove("VUF_STUDY_DIR");
        if let Some(v) = env {
            c.env("VUF_STUDY_DIR", v);
        }
        c.args(["status", "--json"]).output().unwrap()
    };
    let corpus = study.root().join("corpus");
    traces(&corpus, "m1-direct", 1);
    // A study in ./vuf-study (the default) and none in ./study.
    let out = Command::new(env!("CARGO_BIN_EXE_vuf"))
        .current_dir(study.root())
        .env_remove("VUF_STUDY_DIR")
        .arg("import")
        .arg(&corpus)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    for env in [None, Some("")] {
        let out = run(env);
        assert!(out.status.success(), "{env:?}: {}", stderr_of(&out));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["valid"], 6, "{env:?}: {v}");
    }
    // A non-empty value is still the study directory it names.
    let out = run(Some("study"));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["valid"], 0, "{v}");
}

#[test]
fn a_refused_command_leaves_no_study_directory_behind() {
    let study = Study::new();
    let nested = study.root().join("new/deeper/study");
    let missing = study.root().join("missing.gguf");
    let broken = study.root().join("broken.gguf");
    std::fs::write(&broken, b"GGUF\x03\x00\x00\x00\x05").unwrap();
    let refused: [Vec<&std::ffi::OsStr>; 6] = [
        vec!["run".as_ref(), "--max-tokens".as_ref(), "0".as_ref()],
        vec!["run".as_ref(), "--samples".as_ref(), "0".as_ref()],
        vec!["run".as_ref(), "--model".as_ref(), missing.as_os_str()],
        vec![
            "run".as_ref(),
            "--model".as_ref(),
            broken.as_os_str(),
            "--samples".as_ref(),
            "1".as_ref(),
        ],
        vec!["import".as_ref(), missing.as_os_str()],
        vec!["import-codes".as_ref(), missing.as_os_str()],
    ];
    for args in &refused {
        let out = Command::new(env!("CARGO_BIN_EXE_vuf"))
            .env_remove("VUF_STUDY_DIR")
            .arg("--study-dir")
            .arg(&nested)
            .args(args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr_of(&out));
        // Not the study directory, nor the two directories above it that did not exist.
        assert!(
            !study.root().join("new").exists(),
            "{args:?} left {:?}",
            tree(&study.root().join("new"))
        );
    }

    // A directory that was there before keeps what it held, and gets nothing new.
    let existing = study.root().join("existing");
    write(&existing.join("notes.txt"), "mine");
    for args in &refused {
        let out = Command::new(env!("CARGO_BIN_EXE_vuf"))
            .env_remove("VUF_STUDY_DIR")
            .arg("--study-dir")
            .arg(&existing)
            .args(args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr_of(&out));
        assert_eq!(tree(&existing), ["notes.txt"], "{args:?}");
    }

    // A study with samples in it loses nothing to a refused import.
    let full = imported_study();
    let before = tree(&full.dir());
    let out = full.run(&["import".as_ref(), missing.as_os_str()]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr_of(&out));
    assert_eq!(tree(&full.dir()), before);
    assert_eq!(full.status_json()["valid"], 6);
}

#[test]
fn export_traces_never_writes_over_a_file_or_into_a_non_empty_directory_unasked() {
    let study = imported_study();
    let export = |dir: &Path, force: bool| {
        let mut c = study.cmd();
        c.args(["export", "traces"]).arg(dir);
        if force {
            c.arg("--force");
        }
        c.output().unwrap()
    };
    // An existing file: named, with what to do, and left as it was.
    let file = study.root().join("traces.txt");
    write(&file, "keep me");
    let out = export(&file, false);
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!("{} is a file, not a directory", file.display()))
            && err.contains("name a new directory"),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep me");
    // --force does not make a file a directory either.
    assert_eq!(export(&file, true).status.code(), Some(2));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep me");

    // A directory holding something: refused, nothing written into it.
    let full = study.root().join("full");
    write(&full.join("notes.txt"), "mine");
    let out = export(&full, false);
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!("{} is not empty (1 entry)", full.display()))
            && err.contains("--force"),
        "{err}"
    );
    assert_eq!(tree(&full), ["notes.txt"]);
    // With --force: the six traces are written beside what was there.
    let out = export(&full, true);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let mut expected: Vec<String> = vuf::protocol::Condition::ALL
        .iter()
        .map(|c| format!("m1-direct/{c}_1.json"))
        .collect();
    expected.extend(["m1-direct".to_string(), "notes.txt".to_string()]);
    expected.sort();
    assert_eq!(tree(&full), expected);
    assert_eq!(
        std::fs::read_to_string(full.join("notes.txt")).unwrap(),
        "mine"
    );

    // An empty directory and a missing one are fine without --force.
    let empty = study.root().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    for dir in [empty, study.root().join("new/traces")] {
        let out = export(&dir, false);
        assert!(out.status.success(), "{}", stderr_of(&out));
        assert_eq!(tree(&dir).len(), 7, "{:?}", tree(&dir));
    }

    // `export codes --out` naming a directory says what --out is.
    study.ok(&["code", "--offline"]);
    let out = study.run(&[
        "export".as_ref(),
        "codes".as_ref(),
        "--layer".as_ref(),
        "b".as_ref(),
        "--out".as_ref(),
        study.root().join("empty").as_os_str(),
    ]);
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("is a directory: --out names the JSONL file"),
        "{err}"
    );
}

#[test]
fn run_takes_the_progress_option_of_collect() {
    // One mock cell x six conditions x 2 samples = 12 calls.
    let study_file = "[design]\nsamples_per_condition = 2\n\
                      [[cells]]\nname = 'mock-a'\nprovider = 'mock'\nmodel = 'mock-1'\n";
    let plain = Study::new();
    write(&plain.dir().join("study.toml"), study_file);
    let (_, err) = plain.ok(&["run", "--progress", "plain"]);
    // Plain log lines: the cell's progress line, then the stages as they start and end.
    assert!(
        err.lines()
            .any(|l| l.starts_with("collect: mock-a") && l.contains("12/12")),
        "{err}"
    );
    assert!(err.contains("[analyze] ...\n"), "{err}");

    let quiet = Study::new();
    write(&quiet.dir().join("study.toml"), study_file);
    let (stdout, err) = quiet.ok(&["run", "--progress", "quiet"]);
    // Quiet: no progress line and no "started" line, only what each stage did.
    assert!(!err.contains("collect: mock-a"), "{err}");
    assert!(!err.contains("] ..."), "{err}");
    assert!(
        err.contains("collect: 12 valid, 0 invalid")
            && err.contains("[analyze] source offline: 12 samples analysed"),
        "{err}"
    );
    assert!(stdout.contains("report.html"), "{stdout}");
    assert_eq!(quiet.status_json()["valid"], 12);

    // The same values as `vuf collect --progress`, and nothing else.
    let out = quiet.run(&["run", "--progress", "loud"]);
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("auto") && err.contains("live") && err.contains("plain"),
        "{err}"
    );
}

#[test]
fn counts_of_one_read_in_the_singular() {
    // One imported sample, in one cell.
    let study = Study::new();
    let corpus = study.root().join("corpus");
    let cond = vuf::protocol::Condition::ALL[0];
    let body = serde_json::json!({
        "result": "I care about honesty.", "usage": {}, "model": "m", "duration_ms": 5,
        "provider": "openrouter", "model_requested": "m", "condition": cond.as_str(),
        "prompt": cond.prompt(),
    });
    write(
        &corpus.join("m1-direct").join(format!("{cond}_1.json")),
        serde_json::to_vec_pretty(&body).unwrap(),
    );
    study.ok(&["import".as_ref(), corpus.as_os_str()]);
    let (stdout, _) = study.ok(&["code", "--offline"]);
    assert!(
        stdout.contains(": 1 sample coded, 0 already coded"),
        "{stdout}"
    );
    let (stdout, stderr) = study.ok(&["analyze"]);
    assert!(
        stdout.contains("analysed 1 sample from source `offline`"),
        "{stdout}"
    );
    assert!(
        stderr.contains(&format!(
            "m1 x {cond}: no cell with >= 10 rows (1 row in 1 small cell)"
        )),
        "{stderr}"
    );
    let (stdout, _) = study.ok(&["disagreements", "--source", "offline"]);
    assert!(stdout.contains("0 samples with disagreement"), "{stdout}");
    let out = study.root().join("traces");
    let (stdout, _) = study.ok(&["export".as_ref(), "traces".as_ref(), out.as_os_str()]);
    assert!(
        stdout.contains("wrote 1 trace file in 1 cell to"),
        "{stdout}"
    );
    let (_, stderr) = study.ok(&["run"]);
    assert!(
        stderr.contains("[code (offline)] 0 samples coded, 1 already coded")
            && stderr.contains("source offline: 1 sample analysed, 0 excluded"),
        "{stderr}"
    );
}

#[test]
fn ctrl_c_while_coding_with_coder_models_says_the_consensus_is_not_yet_recomputed() {
    use std::process::Stdio;
    use std::time::Duration;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    // A coder endpoint slow enough that coding is still going when the signal comes.
    let server = rt
        .block_on(vuf::providers::mock::FaultServer::start(
            vuf::providers::mock::FaultConfig {
                latency: Duration::from_millis(400),
                ..Default::default()
            },
        ))
        .unwrap();
    let study = Study::new();
    let corpus = study.root().join("corpus");
    traces(&corpus, "m1-direct", 3);
    study.ok(&["import".as_ref(), corpus.as_os_str()]);
    write(
        &study.dir().join("study.toml"),
        format!(
            "[[coders]]\nkey = 'slow'\nmodel = 'slow-1'\nbase_url = '{}'\nworkers = 1\n",
            server.base_url()
        ),
    );
    let child = study
        .cmd()
        .args(["code", "--layer", "a"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let sent = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let out = child.wait_with_output().unwrap();
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(
        err.contains("vuf: interrupted. Every code the coder models returned so far is stored")
            && err.contains("the consensus of the layer being coded is not brought up to date"),
        "{err}"
    );
    // It does not claim the sample counts of a command that makes samples.
    assert!(!err.contains("valid and"), "{err}");
}

/// A study of `per_condition` imported samples per condition of one cell, whose study file
/// names one coder model: a mock endpoint that answers every request with plain chat text
/// (no CODES line, no JSON object). The runtime keeps the endpoint alive.
struct EchoCoder {
    _rt: tokio::runtime::Runtime,
    _server: vuf::providers::mock::FaultServer,
    study: Study,
}

impl EchoCoder {
    fn study(per_condition: u32) -> EchoCoder {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let server = rt
            .block_on(vuf::providers::mock::FaultServer::start(
                vuf::providers::mock::FaultConfig::default(),
            ))
            .unwrap();
        let study = Study::new();
        let corpus = study.root().join("corpus");
        traces(&corpus, "m1-direct", per_condition);
        study.ok(&["import".as_ref(), corpus.as_os_str()]);
        write(
            &study.dir().join("study.toml"),
            format!(
                "[[coders]]\nkey = 'echo'\nmodel = 'echo-1'\nbase_url = '{}'\nworkers = 1\n",
                server.base_url()
            ),
        );
        EchoCoder {
            _rt: rt,
            _server: server,
            study,
        }
    }
}

#[test]
fn coding_that_leaves_failures_outstanding_exits_1_and_says_how_to_finish() {
    // A coder endpoint that answers, but not with a Layer B JSON object: every reply fails
    // to parse, is re-asked once, and ends in the failure ledger.
    let echo = EchoCoder::study(2);
    let study = &echo.study;
    let out = study.run(&["code", "--layer", "b"]);
    let err = stderr_of(&out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    // Two samples per condition: 12, each a failure.
    assert!(
        stdout.contains("outstanding coder failures: 12"),
        "{stdout}\n{err}"
    );
    // Why, with the start of the reply that could not be read.
    let why: Vec<&str> = stdout
        .lines()
        .skip_while(|l| !l.starts_with("outstanding coder failures"))
        .skip(1)
        .collect();
    assert_eq!(
        why,
        ["  layer b echo: 12 samples parse failed: no JSON object in reply; reply: Fault-server \
          answer x to: You are a careful posture classifier: reply with one compact JSON object \
          only."],
        "{stdout}"
    );
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "vuf: 12 coder failures outstanding in the failure ledger (calls or replies that failed after their retries); `vuf --study-dir {} code` codes them again",
            study.dir().display()
        )),
        "{err}"
    );
}

#[test]
fn a_cascade_with_failures_still_takes_the_codes_in_and_old_coders_failures_are_apart() {
    let echo = EchoCoder::study(1);
    let study = &echo.study;
    // Threshold 1: every sample goes to the (failing) coder model. The cascade is rebuilt
    // anyway, and the rerun hint is the cascade, not plain `vuf code`.
    let out = study.run(&["code", "--cascade", "1", "--layer", "b"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(stdout.contains("cascade: "), "{stdout}");
    assert!(stdout.contains("still pending"), "{stdout}");
    assert!(
        err.contains(&format!(
            "`vuf --study-dir {} code --cascade 1` codes them again",
            study.dir().display()
        )),
        "{err}"
    );
    // The study now asks another coder: the first one's failures are counted apart.
    let toml = study.dir().join("study.toml");
    let text = std::fs::read_to_string(&toml).unwrap();
    write(&toml, text.replace("key = 'echo'", "key = 'echo2'"));
    let out = study.run(&["code", "--layer", "b"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("outstanding coder failures: 6\n")
            && stdout.contains(
                "  and failures of coders this study does not ask (kept in the store, not retried): echo (6)"
            ),
        "{stdout}"
    );
}

#[test]
fn a_failed_collection_says_why_per_cell() {
    use vuf::providers::mock::{Canned, FaultServer};
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let bad = rt
        .block_on(FaultServer::start_scripted(vec![Canned {
            status: 401,
            headers: vec![("content-type".into(), "application/json".into())],
            body: br#"{"error":{"code":401,"message":"invalid api key"}}"#.to_vec(),
        }]))
        .unwrap();
    // A port nobody listens on (bound, then released).
    let refused = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let study = Study::new();
    let file = study.root().join("study.toml");
    write(
        &file,
        format!(
            "[design]\nconditions = ['CTRL1']\nsamples_per_condition = 1\n[collect]\nbackoff_base_ms = 1\nbackoff_cap_ms = 2\n\
             [[cells]]\nname = 'bad-or'\nprovider = 'openai-compatible'\nbase_url = '{}'\nmodel = 'm'\nconcurrency = 1\n\
             [[cells]]\nname = 'down-or'\nprovider = 'openai-compatible'\nbase_url = 'http://127.0.0.1:{refused}/v1'\nmodel = 'm'\nconcurrency = 1\n",
            bad.base_url()
        ),
    );
    let out = study.run(&[
        "collect".as_ref(),
        file.as_os_str(),
        "--progress".as_ref(),
        "quiet".as_ref(),
    ]);
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    // The 401: one attempt (a fatal status stops the cell), with the provider's message.
    assert!(
        err.contains(
            "collect: cell bad-or: 1 attempt failed (HTTP 401, auth_http_401): HTTP 401: invalid api key\n"
        ),
        "{err}"
    );
    // The refused port: every attempt of the one sample failed to connect.
    let down = err
        .lines()
        .find(|l| l.starts_with("collect: cell down-or: "))
        .unwrap_or_else(|| panic!("{err}"));
    assert!(
        down.contains("attempts failed (connection): ") && down.contains("Connection refused"),
        "{down}"
    );
}

#[test]
fn an_absurd_sample_count_is_refused_before_anything_is_created() {
    let study = Study::new();
    let out = study.run(&["run", "--samples", "1000000000"]);
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains(
            "--samples 1000000000: at most 100000 per condition (the published design asks 10)"
        ),
        "{err}"
    );
    assert!(!study.dir().exists());
}

#[test]
fn an_empty_vuf_shared_data_counts_as_unset() {
    // Run where ../shared/data does not exist: the default path is tried (and named), as
    // if the variable were unset, instead of clap's "a value is required".
    let study = Study::new();
    let here = study.root().join("a/b");
    std::fs::create_dir_all(&here).unwrap();
    let out = study
        .cmd()
        .current_dir(&here)
        .env("VUF_SHARED_DATA", "")
        .args(["coder", "train", "--out"])
        .arg(study.root().join("m.json"))
        .output()
        .unwrap();
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("loading labelled data from ../shared/data")
            && !err.contains("a value is required"),
        "{err}"
    );
}

#[test]
fn export_codes_finds_a_source_by_the_layer_asked_for_and_refuses_an_unknown_source() {
    // Replies with no CODES line: unclean Layer A records, which still are codes.
    let echo = EchoCoder::study(1);
    let study = &echo.study;
    study.ok(&["code", "--layer", "a"]);
    let out_a = study.root().join("a.jsonl");
    let (stdout, _) = study.ok(&[
        "export".as_ref(),
        "codes".as_ref(),
        "--layer".as_ref(),
        "a".as_ref(),
        "--source".as_ref(),
        "models".as_ref(),
        "--out".as_ref(),
        out_a.as_os_str(),
    ]);
    assert!(
        stdout.contains("wrote 6 models consensus records (layer a)"),
        "{stdout}"
    );
    // Layer B has no models codes: still refused, naming the source.
    let out = study.run(&[
        "export",
        "codes",
        "--layer",
        "b",
        "--source",
        "models",
        "--out",
        "/dev/null",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr_of(&out).contains("no `models` codes in the store"),
        "{}",
        stderr_of(&out)
    );
    let out = study.run(&["export", "codes", "--source", "bogus", "--out", "/dev/null"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr_of(&out).contains("invalid value 'bogus' for '--source <SOURCE>'"),
        "{}",
        stderr_of(&out)
    );
}
