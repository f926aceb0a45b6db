//! `vuf collect` end to end: the B01-B09 provider cases, a fault-injecting loopback server
//! at a 20% fault rate, SIGKILL-and-resume crash runs of the real binary, the dry-run plan,
//! and (when `VUF_LLAMA_SERVER_URL` is set) a small real study against llama.cpp's server.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use serde_json::Value;

use vuf::collect::{self, events::NullSink, Study};
use vuf::providers::mock::{Canned, Fault, FaultConfig, FaultServer};
use vuf::providers::{self, HttpReply, ProviderKind, RetryClass, Route, Wire};
use vuf::store::{attempts, Store};

fn cases_dir() -> Option<PathBuf> {
    let d = vuf::testdata::shared_data_dir()?
        .parent()?
        .join("cases")
        .join("provider");
    d.is_dir().then_some(d)
}

fn route(kind: ProviderKind, wire: Wire) -> Route {
    Route {
        kind,
        wire,
        base_url: "http://127.0.0.1:9/v1".into(),
        model: "example-model".into(),
        max_tokens: 2000,
        temperature: None,
        reasoning: None,
        pin: vec![],
        extra_headers: vec![],
        extra_body: Default::default(),
        stream: false,
        api_key: None,
    }
}

fn fixture_reply(fx: &Value) -> HttpReply {
    let status = fx["http_status"].as_u64().expect("fixture http_status") as u16;
    let headers = fx["headers"]
        .as_object()
        .map(|h| {
            h.iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v.as_str().unwrap_or("").to_string()))
                .collect()
        })
        .unwrap_or_default();
    let body = match (fx.get("body_text").and_then(Value::as_str), fx.get("body")) {
        (Some(t), _) => t.as_bytes().to_vec(),
        (None, Some(b)) => serde_json::to_vec(b).expect("fixture body"),
        _ => Vec::new(),
    };
    HttpReply {
        status,
        headers,
        body,
    }
}

/// The `result = "..."` string of an expectation, JSON-unescaped.
fn expected_result(s: &str) -> Option<String> {
    let start = s.find("result = \"")? + "result = ".len();
    // Read a JSON string literal starting at the quote.
    let mut de = serde_json::Deserializer::from_str(&s[start..]).into_iter::<String>();
    de.next()?.ok()
}

fn expected_reason(s: &str) -> Option<String> {
    let i = s.find("reason ")? + "reason ".len();
    Some(
        s[i..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect(),
    )
}

/// Route per case and fixture: what the fixture says it came from.
fn route_for(case: &str, fixture: &str) -> Route {
    match (case, fixture) {
        ("B02", "vllm-renamed-field") => route(ProviderKind::Vllm, Wire::OpenAiChat),
        ("B02", "deepseek-style-reasoning-content") => {
            route(ProviderKind::DeepSeek, Wire::OpenAiChat)
        }
        ("B02", "reasoning-content-fallback-truncated") => {
            route(ProviderKind::Zai, Wire::OpenAiChat)
        }
        ("B03", _) => route(ProviderKind::Anthropic, Wire::Anthropic),
        ("B04", _) => route(ProviderKind::Gemini, Wire::Gemini),
        ("B05", _) => route(ProviderKind::OpenAi, Wire::OpenAiResponses),
        ("B09", _) => route(ProviderKind::Vllm, Wire::OpenAiChat),
        _ => route(ProviderKind::OpenRouter, Wire::OpenAiChat),
    }
}

/// Check every fixture of provider case `want` (B01..B09 except B06) against its
/// `expected` text; returns how many fixtures were checked (0 when the data is absent).
fn check_provider_case(want: &str) -> usize {
    let Some(dir) = cases_dir() else {
        println!("SKIP: provider case {want}: ../shared/cases/provider not found");
        return 0;
    };
    let mut checked = 0;
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("cases dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(want))
        })
        .collect();
    files.sort();
    assert_eq!(files.len(), 1, "one case file for {want}");
    for f in files {
        let case: Value = serde_json::from_str(&std::fs::read_to_string(&f).expect("read case"))
            .expect("case JSON");
        let id = case["id"].as_str().expect("id").to_string();
        for fx in case["fixtures"].as_array().expect("fixtures") {
            let name = fx["name"].as_str().expect("name");
            let exp = &fx["expected"];
            let text = ["sample_collection", "live_collection", "after_last_attempt"]
                .iter()
                .find_map(|k| exp.get(*k).and_then(Value::as_str))
                .unwrap_or_else(|| panic!("{id}/{name}: no collection expectation"));
            let r = route_for(&id, name);
            let reply = fixture_reply(fx);
            let got = providers::parse_reply(&r, &reply);
            if text.starts_with("VALID") {
                let c = got.unwrap_or_else(|e| panic!("{id}/{name}: expected valid, got {e}"));
                if let Some(want) = expected_result(text) {
                    assert_eq!(c.text, want, "{id}/{name}");
                }
                if text.contains("truncated=true") {
                    assert!(c.truncated, "{id}/{name}: truncated flag");
                }
                if text.contains("answer_source reasoning_content") {
                    assert_eq!(c.answer_source.as_str(), "reasoning_content", "{id}/{name}");
                }
                if text.contains("usage prompt 9 / completion 5") {
                    assert_eq!((c.tokens.input, c.tokens.output), (9, 5), "{id}/{name}");
                }
                if text.contains("reasoning stored separately") {
                    assert_eq!(
                        c.reasoning.as_deref(),
                        Some("The user asks what I want. I should answer briefly and in my own voice."),
                        "{id}/{name}"
                    );
                    // Raw content kept verbatim.
                    let raw_content = c.raw["choices"][0]["message"]["content"]
                        .as_str()
                        .expect("raw content");
                    assert!(raw_content.contains("</think>"));
                }
            } else {
                let e = match got {
                    Ok(c) => panic!("{id}/{name}: expected invalid, got valid {:?}", c.text),
                    Err(e) => e,
                };
                let want = expected_reason(text)
                    .unwrap_or_else(|| panic!("{id}/{name}: no reason in {text:?}"));
                assert_eq!(e.reason, want, "{id}/{name}: {e}");
                // Classes the case files ask for.
                match (id.as_str(), name) {
                    ("B01", _) | ("B07", _) | ("B08", _) => {
                        assert!(
                            matches!(e.class, RetryClass::Transient { .. }),
                            "{id}/{name}: retry as 5xx: {:?}",
                            e.class
                        )
                    }
                    ("B02", "vllm-renamed-field") => {
                        assert_eq!(e.class, RetryClass::Fatal, "report once per cell")
                    }
                    ("B03", _) | ("B04", _) => {
                        assert_eq!(
                            e.class,
                            RetryClass::Deterministic { reasks: 1 },
                            "{id}/{name}: at most one re-ask"
                        )
                    }
                    ("B05", "reasoning-only-no-message") | ("B09", _) => {
                        assert_eq!(
                            e.class,
                            RetryClass::Deterministic { reasks: 0 },
                            "{id}/{name}: not with identical params"
                        )
                    }
                    _ => {}
                }
                if id == "B01" || name == "refusal-after-partial-text" {
                    assert!(
                        e.partial_text.as_deref().is_some_and(|p| !p.is_empty()),
                        "{id}/{name}: partial text kept"
                    );
                }
                if id == "B07" {
                    assert_eq!(e.http_status, Some(reply.status));
                    let body = e.http_body.expect("http_body kept");
                    assert!(body.chars().count() <= 1000 && reply.text().starts_with(&body));
                    assert!(e.raw.is_none(), "HTML must not be parsed as JSON");
                }
                if name == "non-streaming-empty-choices" {
                    assert_eq!(e.tokens.input, 42, "usage kept");
                }
                if id == "B03" && name == "refusal-before-output" {
                    assert!(e.message.contains("cyber"), "category kept: {}", e.message);
                }
            }
            checked += 1;
        }
    }
    checked
}

macro_rules! provider_case_tests {
    ($($name:ident: $id:literal => $n:literal,)*) => {$(
        #[test]
        fn $name() {
            let n = check_provider_case($id);
            assert!(n == 0 || n == $n, "{} fixtures checked, expected {}", n, $n);
        }
    )*};
}

provider_case_tests! {
    provider_case_b01_upstream_error_inside_a_200_choice: "B01" => 1,
    provider_case_b02_text_only_in_a_reasoning_field: "B02" => 4,
    provider_case_b03_anthropic_refusal: "B03" => 2,
    provider_case_b04_gemini_safety_block: "B04" => 3,
    provider_case_b05_responses_incomplete: "B05" => 3,
    provider_case_b07_html_error_page: "B07" => 2,
    provider_case_b08_empty_choices: "B08" => 2,
    provider_case_b09_think_tags_in_content: "B09" => 3,
}

#[test]
fn provider_case_b06_retry_after_waits() {
    use vuf::collect::retry::{decide, wait_before_retry, Decision};
    use vuf::collect::study::Settings;
    let Some(dir) = cases_dir() else {
        println!("SKIP: provider_case_b06_retry_after_waits: ../shared/cases/provider not found");
        return;
    };
    let f = std::fs::read_dir(&dir)
        .expect("dir")
        .map(|e| e.expect("e").path())
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("B06"))
        });
    let case: Value =
        serde_json::from_str(&std::fs::read_to_string(f.expect("B06 file")).expect("read"))
            .expect("json");
    let settings = Settings::default();
    for fx in case["fixtures"].as_array().expect("fixtures") {
        let name = fx["name"].as_str().expect("name");
        let reply = fixture_reply(fx);
        let err = providers::http::classify_status(&reply);
        let after = match err.class {
            RetryClass::RateLimited { after } | RetryClass::Transient { after } => after,
            c => panic!("{name}: {c:?} is not retryable"),
        };
        let step1 =
            vuf::collect::retry::backoff_step(settings.backoff_base, settings.backoff_cap, 1);
        match fx["expected"]
            .get("wait_seconds_at_least")
            .and_then(Value::as_f64)
        {
            Some(min) => {
                let d = decide(&settings, &err.class, 1, 7, 0, 7);
                let w = match d {
                    Decision::Retry(w) | Decision::ParkCell(w) => w,
                    d => panic!("{name}: {d:?}"),
                };
                assert!(w.as_secs_f64() >= min, "{name}: waited {w:?} < {min}");
                if min >= 600.0 {
                    assert!(
                        matches!(d, Decision::ParkCell(_)),
                        "{name}: park the cell, do not sleep a worker"
                    );
                }
            }
            None => {
                // Unparseable -> backoff schedule only; past date -> zero extra wait.
                assert!(after.is_none_or(|a| a.is_zero()), "{name}: {after:?}");
                let w = wait_before_retry(&settings, 1, after, 7);
                assert!(
                    w >= step1 && w < step1 + step1 / 5 + Duration::from_millis(1),
                    "{name}: {w:?}"
                );
            }
        }
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

fn study_text(base_url: &str, cells: &[&str], samples: u32, extra_collect: &str) -> String {
    let mut s = format!(
        "[study]\nname = 'fault test'\n[design]\nsamples_per_condition = {samples}\n[collect]\nbackoff_base_ms = 2\nbackoff_cap_ms = 20\n{extra_collect}\n"
    );
    for c in cells {
        s.push_str(&format!(
            "[[cells]]\nname = '{c}'\nprovider = 'openai-compatible'\nbase_url = '{base_url}'\nmodel = 'fault/{c}'\nmax_tokens = 64\nconcurrency = 6\napi_key_env = 'VUF_TEST_FAULT_KEY'\n"
        ));
    }
    s
}

#[test]
fn fault_server_at_20_percent_ends_with_exactly_n_valid_and_accounts_for_every_fault() {
    let rt = rt();
    let server = rt
        .block_on(FaultServer::start(FaultConfig {
            latency: Duration::from_millis(2),
            fault_rate: 0.2,
            faults: Fault::ALL.to_vec(),
            seed: 20,
            slow_for: Duration::from_millis(900),
            retry_after_ms: 3,
        }))
        .expect("server");
    let n = 6u32;
    let text = study_text(
        &server.base_url(),
        &["alpha-or", "beta-direct"],
        n,
        "timeout_s = 0.3\nglobal_concurrency = 10\n",
    );
    let mut study = Study::parse(&text, Path::new("fault.toml")).expect("study");
    let secret = "sk-vuf-test-SECRET-0123456789";
    for c in &mut study.cells {
        c.route.api_key = Some(providers::ApiKey::new(secret));
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("store");
    let plan = collect::plan(&study, &store).expect("plan");
    assert_eq!(plan.items.len(), 2 * 6 * n as usize);
    let study = Arc::new(study);
    let providers = collect::providers_for(&study).expect("providers");
    let (summary, store) = rt
        .block_on(collect::run(
            study.clone(),
            providers,
            plan,
            store,
            "sha",
            Arc::new(NullSink),
        ))
        .expect("run");
    assert_eq!(
        (summary.valid, summary.invalid, summary.skipped),
        (2 * 6 * n as u64, 0, 0),
        "{summary:?}"
    );

    // Exactly N valid per condition per cell, no invalid rows, no gaps.
    let counts = attempts::sample_counts(&store).expect("counts");
    assert_eq!(counts.len(), 12);
    for (cell, cond, valid, invalid) in &counts {
        assert_eq!((*valid, *invalid), (n as u64, 0), "{cell} {cond}");
    }
    let conn = rusqlite::Connection::open(dir.path().join("vuf.sqlite")).expect("open");
    let idx: BTreeSet<(String, String, i64)> = conn
        .prepare("SELECT cell, condition, idx FROM samples WHERE valid = 1")
        .expect("prep")
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .expect("q")
        .collect::<Result<_, _>>()
        .expect("rows");
    for cell in ["alpha-or", "beta-direct"] {
        for cond in ["CTRL1", "CTRL2", "CTRL3", "G1", "G2", "G3"] {
            for i in 1..=n as i64 {
                assert!(
                    idx.contains(&(cell.to_string(), cond.to_string(), i)),
                    "gap at {cell} {cond}_{i}"
                );
            }
        }
    }

    // Every fault the server injected is an invalid attempt with the matching reason.
    let stats = server.stats();
    let (valid_attempts, invalid_attempts, by_reason) =
        attempts::attempt_tally(&store).expect("tally");
    let reasons: BTreeMap<String, u64> = by_reason.into_iter().collect();
    assert!(
        stats.invalidating() > 0,
        "the server injected faults: {stats:?}"
    );
    assert_eq!(
        invalid_attempts,
        stats.invalidating(),
        "faults {:?} vs reasons {reasons:?}",
        stats.faults
    );
    assert_eq!(
        valid_attempts,
        stats.ok + stats.faults.get("length").copied().unwrap_or(0)
    );
    assert_eq!(summary.attempts, stats.requests);
    let f = |k: &str| stats.faults.get(k).copied().unwrap_or(0);
    let r = |k: &str| reasons.get(k).copied().unwrap_or(0);
    assert_eq!(r("http_429"), f("rate_limit"));
    for s in [500, 502, 503] {
        assert_eq!(r(&format!("http_{s}")), f(&format!("status_{s}")), "{s}");
    }
    assert_eq!(r("timeout"), f("slow"));
    assert_eq!(r("malformed_body"), f("malformed_json"));
    assert_eq!(r("empty_content"), f("empty_content"));
    assert_eq!(r("error_like_text"), f("error_like_text"));
    assert_eq!(
        r("connection") + r("transport") + r("truncated_body"),
        f("reset") + f("truncated_body")
    );
    // finish_reason length is a valid, truncated sample (PROTOCOL 2.4).
    let truncated: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM samples WHERE truncated = 1",
            [],
            |r| r.get(0),
        )
        .expect("q");
    assert_eq!(truncated as u64, f("length"));
    drop(conn);
    drop(store);
    assert_secret_absent(dir.path(), secret);
}

fn assert_secret_absent(dir: &Path, secret: &str) {
    for e in std::fs::read_dir(dir).expect("dir") {
        let p = e.expect("entry").path();
        let bytes = std::fs::read(&p).expect("read");
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "API key found in {}",
            p.display()
        );
    }
}

#[test]
fn retry_after_from_a_real_socket_is_honoured() {
    let rt = rt();
    let json = vec![("content-type".to_string(), "application/json".to_string())];
    let server = rt
        .block_on(FaultServer::start_scripted(vec![
            Canned {
                status: 429,
                headers: vec![
                    ("content-type".into(), "application/json".into()),
                    ("retry-after-ms".into(), "400".into()),
                    ("retry-after".into(), "9".into()),
                ],
                body: br#"{"error":{"code":429,"message":"slow down"}}"#.to_vec(),
            },
            Canned { status: 502, headers: vec![("content-type".into(), "text/html".into())], body: b"<html>bad gateway</html>".to_vec() },
            Canned {
                status: 200,
                headers: json,
                body: br#"{"model":"m","choices":[{"index":0,"finish_reason":"stop","message":{"content":"I care about tea."}}],"usage":{"prompt_tokens":3,"completion_tokens":4}}"#.to_vec(),
            },
        ]))
        .expect("server");
    let text = format!(
        "[design]\nconditions = ['CTRL1']\nsamples_per_condition = 1\n[collect]\nbackoff_base_ms = 1\n\
         [[cells]]\nname = 'x-or'\nprovider = 'openai-compatible'\nbase_url = '{}'\nmodel = 'm'\n",
        server.base_url()
    );
    let study = Arc::new(Study::parse(&text, Path::new("s.toml")).expect("study"));
    let dir = tempfile::tempdir().expect("tmp");
    let store = Store::open(dir.path()).expect("store");
    let plan = collect::plan(&study, &store).expect("plan");
    let providers = collect::providers_for(&study).expect("providers");
    let (summary, store) = rt
        .block_on(collect::run(
            study,
            providers,
            plan,
            store,
            "sha",
            Arc::new(NullSink),
        ))
        .expect("run");
    assert_eq!(summary.valid, 1);
    let st = server.stats();
    assert_eq!(st.requests, 3);
    let gap = st.arrivals[1] - st.arrivals[0];
    assert!(
        gap >= Duration::from_millis(400),
        "retry-after-ms 400 honoured (gap {gap:?})"
    );
    let (_, invalid, reasons) = attempts::attempt_tally(&store).expect("tally");
    assert_eq!(invalid, 2);
    assert_eq!(
        reasons,
        vec![
            ("http_429".to_string(), 1),
            ("non_json_error_body".to_string(), 1)
        ]
    );
}

#[test]
fn ctrl_c_says_what_is_stored_and_how_to_go_on() {
    let rt = rt();
    // Slow enough that the collector is mid-run when the signal comes.
    let server = rt
        .block_on(FaultServer::start(FaultConfig {
            latency: Duration::from_millis(300),
            ..FaultConfig::default()
        }))
        .expect("server");
    let dir = tempfile::tempdir().expect("tmp");
    let study_path = dir.path().join("study.toml");
    std::fs::write(
        &study_path,
        study_text(
            &server.base_url(),
            &["intr-a"],
            20,
            "global_concurrency = 2\n",
        ),
    )
    .expect("write study");
    let child = Command::new(env!("CARGO_BIN_EXE_vuf"))
        .arg("--study-dir")
        .arg(dir.path())
        .args(["collect", "--progress", "plain"])
        .arg(&study_path)
        .env("VUF_TEST_FAULT_KEY", "sk-intr")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn vuf");
    std::thread::sleep(Duration::from_millis(1500));
    let sent = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(sent.success());
    let out = child.wait_with_output().expect("output");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("vuf: interrupted."), "{stderr}");
    assert!(
        stderr.contains("rerun the same command to continue"),
        "{stderr}"
    );
    // The count it names is what the store holds (give or take the two calls in flight,
    // which may commit between the count and the exit).
    let said: u64 = stderr
        .split(" (")
        .nth(1)
        .and_then(|t| t.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count in {stderr}"));
    let store = Store::open(dir.path()).expect("store");
    let valid = vuf::store::samples::counts(store.conn())
        .expect("counts")
        .valid;
    assert!(valid > 0 && valid < 120, "{valid}");
    assert!(
        said <= valid && valid <= said + 2,
        "said {said}, stored {valid}: {stderr}"
    );
}

#[test]
fn sigkill_at_random_points_then_resume_gives_exactly_the_expected_set() {
    let rt = rt();
    let server = rt
        .block_on(FaultServer::start(FaultConfig {
            latency: Duration::from_millis(40),
            fault_rate: 0.1,
            faults: vec![
                Fault::RateLimit,
                Fault::Status(502),
                Fault::EmptyContent,
                Fault::Reset,
                Fault::Length,
            ],
            seed: 7,
            slow_for: Duration::from_millis(500),
            retry_after_ms: 2,
        }))
        .expect("server");
    let dir = tempfile::tempdir().expect("tmp");
    let n = 8u32;
    let study_path = dir.path().join("study.toml");
    std::fs::write(
        &study_path,
        study_text(
            &server.base_url(),
            &["crash-a-or", "crash-b"],
            n,
            "global_concurrency = 4\n",
        ),
    )
    .expect("write study");
    let secret = "sk-crash-SECRET-abcdef987654";
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(4242);
    let bin = env!("CARGO_BIN_EXE_vuf");
    let mut kills = 0;
    let mut stderr_all = String::new();
    let mut finished = false;
    for round in 0..40 {
        let mut child = Command::new(bin)
            .arg("--study-dir")
            .arg(dir.path())
            .args(["collect", "--progress", "plain"])
            .arg(&study_path)
            .env("VUF_TEST_FAULT_KEY", secret)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn vuf");
        let kill_after = Duration::from_millis(rng.random_range(40..400));
        let t0 = Instant::now();
        let mut exited = None;
        while t0.elapsed() < kill_after {
            if let Some(st) = child.try_wait().expect("try_wait") {
                exited = Some(st);
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let status = match exited {
            Some(s) => s,
            None if round < 12 => {
                child.kill().expect("SIGKILL");
                kills += 1;
                child.wait().expect("wait")
            }
            None => child.wait().expect("wait"),
        };
        let out = child.wait_with_output().expect("output");
        stderr_all.push_str(&String::from_utf8_lossy(&out.stderr));
        if status.success() {
            finished = true;
            break;
        }
    }
    assert!(finished, "collector never completed; stderr:\n{stderr_all}");
    assert!(kills >= 3, "killed only {kills} times");

    let store = Store::open(dir.path()).expect("store");
    for (cell, cond, valid, invalid) in attempts::sample_counts(&store).expect("counts") {
        assert_eq!((valid, invalid), (n as u64, 0), "{cell} {cond}");
    }
    let conn = rusqlite::Connection::open(dir.path().join("vuf.sqlite")).expect("open");
    let q = |sql: &str| -> i64 { conn.query_row(sql, [], |r| r.get(0)).expect(sql) };
    let expected = 2 * 6 * i64::from(n);
    assert_eq!(q("SELECT COUNT(*) FROM samples WHERE valid = 1"), expected);
    assert_eq!(
        q("SELECT COUNT(DISTINCT cell || '/' || condition || '/' || idx) FROM samples"),
        expected,
        "no duplicates"
    );
    assert_eq!(
        q("SELECT COUNT(*) FROM samples WHERE idx < 1 OR idx > 8"),
        0,
        "no stray indices"
    );
    assert_eq!(
        q("SELECT COUNT(*) FROM attempts WHERE valid = 1"),
        expected,
        "one valid attempt per work item"
    );
    assert_eq!(
        q("SELECT COUNT(DISTINCT work_key) FROM attempts WHERE valid = 1"),
        expected
    );
    // Replies the server counted but the store never saw were in flight at a kill: per kill
    // at most the 4 calls in flight plus the 4 answered calls still waiting for their commit.
    // Everything committed was never asked again (one valid attempt per key, above).
    let st = server.stats();
    let served_valid = st.ok + st.faults.get("length").copied().unwrap_or(0);
    let lost = served_valid as i64 - expected;
    println!(
        "crash test: {kills} kills, {lost} completed-but-uncommitted calls, {} requests",
        st.requests
    );
    assert!(
        lost >= 0 && lost <= kills * 8,
        "served {served_valid} valid replies for {expected} samples after {kills} kills"
    );
    drop(conn);
    drop(store);
    assert!(!stderr_all.contains(secret), "key leaked to stderr");
    assert_secret_absent(dir.path(), secret);
}

/// Every listed file and directory under `root`, relative, sorted.
fn tree(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).expect("list") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                todo.push(p.clone());
            }
            out.push(p.strip_prefix(root).expect("under root").to_path_buf());
        }
    }
    out.sort();
    out
}

/// A collect that refuses (no study file, a missing or invalid one) leaves the filesystem
/// as it was: no study directory, no `vuf.lock`, no store.
#[test]
fn collect_that_refuses_touches_nothing() {
    let tmp = tempfile::tempdir().expect("tmp");
    let bad = tmp.path().join("bad.toml");
    std::fs::write(&bad, "[[cells]]\nname = 'x'\n").expect("write");
    let empty = tmp.path().join("empty-study");
    std::fs::create_dir(&empty).expect("mkdir");
    let before = tree(tmp.path());
    let cases: [(&str, PathBuf, Vec<String>, &str); 4] = [
        (
            "missing dir",
            tmp.path().join("nope"),
            vec![],
            "no study file",
        ),
        ("empty dir", empty.clone(), vec![], "no study file"),
        (
            "missing file",
            tmp.path().join("nope"),
            vec![tmp.path().join("missing.toml").display().to_string()],
            "reading study file",
        ),
        (
            "invalid file",
            tmp.path().join("nope"),
            vec![bad.display().to_string()],
            "bad.toml",
        ),
    ];
    for (what, dir, extra, says) in cases {
        let out = Command::new(env!("CARGO_BIN_EXE_vuf"))
            .env_remove("VUF_STUDY_DIR")
            .arg("--study-dir")
            .arg(&dir)
            .arg("collect")
            .args(&extra)
            .output()
            .expect("run");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{what}: {stderr}");
        assert!(stderr.contains(says), "{what}: {stderr}");
        assert_eq!(tree(tmp.path()), before, "{what}: the filesystem changed");
    }
}

#[test]
fn dry_run_prints_calls_tokens_and_cost() {
    let dir = tempfile::tempdir().expect("tmp");
    let study = "[prices.'z-ai/glm-4.7']\ninput_per_mtok = 1.0\noutput_per_mtok = 2.0\n\
                 [[cells]]\nname = 'glm-4-7-or-pin-zai'\nprovider = 'openrouter'\nmodel = 'z-ai/glm-4.7'\npin = ['Z.AI']\n\
                 [[cells]]\nname = 'other-or'\nprovider = 'openrouter'\nmodel = 'x/other'\n";
    let p = dir.path().join("study.toml");
    std::fs::write(&p, study).expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_vuf"))
        .arg("--study-dir")
        .arg(dir.path())
        .args(["collect", "--dry-run"])
        .env_remove("OPENROUTER_API_KEY")
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.starts_with("glm-4-7-or-pin-zai"))
        .expect("cell line");
    let cols: Vec<&str> = line.split_whitespace().collect();
    // total, done, calls = 120, 0, 120; expected output = 120 x 500 tokens.
    assert_eq!(&cols[2..5], &["120", "0", "120"]);
    assert_eq!(cols[7], "60000");
    // Input tokens: 30 calls per 10-sample CTRL prompt ... computed from the prompts.
    let inp: u64 = vuf::protocol::Condition::ALL
        .iter()
        .map(|c| u64::from(c.default_samples()) * (c.prompt().chars().count() as u64 / 4 + 8))
        .sum();
    assert_eq!(cols[6], inp.to_string());
    let cost = inp as f64 / 1e6 * 1.0 + 60000.0 / 1e6 * 2.0;
    assert_eq!(cols[8], format!("{cost:.4}"));
    assert!(text
        .lines()
        .any(|l| l.starts_with("other-or") && l.contains("n/a")));
    // A plan is only a look: no store, no lock file.
    assert!(!dir.path().join("vuf.sqlite").exists());
    assert!(!dir.path().join("vuf.lock").exists());
}

#[test]
fn real_llama_server_small_study() {
    let Ok(url) = std::env::var("VUF_LLAMA_SERVER_URL") else {
        println!("SKIP: real_llama_server_small_study: VUF_LLAMA_SERVER_URL not set (scripts/start-llama-server.sh starts one)");
        return;
    };
    let rt = rt();
    let text = format!(
        "[design]\nsamples_per_condition = 2\n[collect]\ntimeout_s = 120\n\
         [[cells]]\nname = 'smollm2-135m-local'\nprovider = 'llamacpp'\nbase_url = '{}'\nmodel = 'smollm2'\nmax_tokens = 48\nconcurrency = 2\n",
        url.trim_end_matches('/')
    );
    let study = Arc::new(Study::parse(&text, Path::new("llama.toml")).expect("study"));
    let dir = tempfile::tempdir().expect("tmp");
    let store = Store::open(dir.path()).expect("store");
    let plan = collect::plan(&study, &store).expect("plan");
    let providers = collect::providers_for(&study).expect("providers");
    let (summary, store) = rt
        .block_on(collect::run(
            study,
            providers,
            plan,
            store,
            "sha",
            Arc::new(NullSink),
        ))
        .expect("run");
    assert_eq!(summary.valid, 12, "{summary:?}");
    let conn = rusqlite::Connection::open(dir.path().join("vuf.sqlite")).expect("open");
    let texts: Vec<String> = conn
        .prepare("SELECT response FROM samples WHERE valid = 1")
        .expect("prep")
        .query_map([], |r| r.get(0))
        .expect("q")
        .collect::<Result<_, _>>()
        .expect("rows");
    assert_eq!(texts.len(), 12);
    assert!(texts
        .iter()
        .all(|t| !t.trim().is_empty() && !t.starts_with("Mock answer")));
    drop(store);
}

#[test]
fn example_study_file_parses_and_mock_cells_run_offline() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join("study.toml");
    let s = Study::load(&example).expect("examples/study.toml parses");
    assert_eq!(s.conditions.iter().map(|c| c.samples).sum::<u32>(), 120);
    assert_eq!(s.cells[0].route.pin, vec!["Z.AI".to_string()]);
    assert!(s.cells.iter().all(|c| c.route.max_tokens == 2000));

    let text = "[design]\nsamples_per_condition = 2\n[[cells]]\nname = 'mock-cell'\nprovider = 'mock'\nmodel = 'mock-1'\n";
    let study = Arc::new(Study::parse(text, Path::new("m.toml")).expect("study"));
    let dir = tempfile::tempdir().expect("tmp");
    let store = Store::open(dir.path()).expect("store");
    let plan = collect::plan(&study, &store).expect("plan");
    let providers = collect::providers_for(&study).expect("providers");
    let rt = rt();
    let (summary, store) = rt
        .block_on(collect::run(
            study.clone(),
            providers,
            plan,
            store,
            "sha",
            Arc::new(NullSink),
        ))
        .expect("run");
    assert_eq!(summary.valid, 12);
    // A second run has nothing to do.
    let plan = collect::plan(&study, &store).expect("plan");
    assert!(plan.items.is_empty());
    assert_eq!(plan.cells[0].done, 12);
}

#[test]
fn fatal_error_stops_only_that_cell_and_is_reported_once() {
    let rt = rt();
    let bad = rt
        .block_on(FaultServer::start_scripted(vec![Canned {
            status: 401,
            headers: vec![("content-type".into(), "application/json".into())],
            body: br#"{"error":{"code":401,"message":"invalid api key"}}"#.to_vec(),
        }]))
        .expect("server");
    let good = rt
        .block_on(FaultServer::start(FaultConfig::default()))
        .expect("server");
    let text = format!(
        "[design]\nsamples_per_condition = 3\n[collect]\nbackoff_base_ms = 1\n\
         [[cells]]\nname = 'bad-or'\nprovider = 'openai-compatible'\nbase_url = '{}'\nmodel = 'm'\nconcurrency = 2\n\
         [[cells]]\nname = 'good-or'\nprovider = 'openai-compatible'\nbase_url = '{}'\nmodel = 'm'\nconcurrency = 2\n",
        bad.base_url(),
        good.base_url()
    );
    let study = Arc::new(Study::parse(&text, Path::new("s.toml")).expect("study"));
    let dir = tempfile::tempdir().expect("tmp");
    let store = Store::open(dir.path()).expect("store");
    let plan = collect::plan(&study, &store).expect("plan");
    let providers = collect::providers_for(&study).expect("providers");
    let sink = Arc::new(collect::events::ProgressSink::default());
    let (summary, store) = rt
        .block_on(collect::run(
            study.clone(),
            providers,
            plan,
            store,
            "sha",
            sink.clone(),
        ))
        .expect("run");
    assert_eq!(summary.valid, 18, "the healthy cell is complete");
    assert_eq!(summary.stopped.len(), 1);
    assert_eq!(summary.stopped[0].0, "bad-or");
    assert!(
        summary.stopped[0].1.contains("auth_http_401"),
        "{}",
        summary.stopped[0].1
    );
    assert_eq!(summary.skipped, 18);
    // No more calls than were in flight when the first 401 came back (cell concurrency 2).
    assert!(
        bad.stats().requests <= 2,
        "{} calls after a fatal error",
        bad.stats().requests
    );
    let notices = sink.notices.lock().expect("lock").clone();
    assert_eq!(
        notices
            .iter()
            .filter(|n| n.contains("bad-or stopped"))
            .count(),
        1,
        "{notices:?}"
    );
    // The fatal cell's slots stay pending (no error samples): fixing the key and rerunning collects them.
    let plan = collect::plan(&study, &store).expect("plan");
    assert_eq!(plan.items.len(), 18);
    assert!(plan
        .items
        .iter()
        .all(|i| study.cells[i.cell].name == "bad-or"));
}

#[test]
fn changed_cell_configuration_is_a_conflict_not_a_silent_mix() {
    let rt = rt();
    let base = "[design]\nsamples_per_condition = 1\n[[cells]]\nname = 'mock-cell'\nprovider = 'mock'\nmodel = 'mock-1'\n";
    let study = Arc::new(Study::parse(base, Path::new("m.toml")).expect("study"));
    let dir = tempfile::tempdir().expect("tmp");
    let store = Store::open(dir.path()).expect("store");
    let plan = collect::plan(&study, &store).expect("plan");
    let providers = collect::providers_for(&study).expect("providers");
    let (_, store) = rt
        .block_on(collect::run(
            study,
            providers,
            plan,
            store,
            "sha",
            Arc::new(NullSink),
        ))
        .expect("run");
    // Same cell, new cap: different work keys, and the slots already hold valid samples.
    let changed =
        Study::parse(&format!("{base}max_tokens = 100\n"), Path::new("m.toml")).expect("study");
    let plan = collect::plan(&changed, &store).expect("plan");
    assert_eq!((plan.cells[0].conflicts, plan.items.len()), (6, 0));
    let err = collect::check_conflicts(&changed, &plan, false).expect_err("conflict");
    assert!(err.to_string().contains("mock-cell (6 samples of CTRL1, CTRL2, CTRL3, G1, G2, G3). Give the changed configuration a new cell name"), "{err}");
    assert!(collect::check_conflicts(&changed, &plan, true).is_ok());
    // Tuning that does not shape the answer keeps the work.
    let tuned =
        Study::parse(&format!("{base}concurrency = 3\n"), Path::new("m.toml")).expect("study");
    assert_eq!(
        collect::plan(&tuned, &store).expect("plan").cells[0].done,
        6
    );
}

#[test]
fn long_retry_after_parks_the_cell_while_other_cells_run() {
    let rt = rt();
    let parked = rt
        .block_on(FaultServer::start_scripted(vec![Canned {
            status: 429,
            headers: vec![
                ("content-type".into(), "application/json".into()),
                ("retry-after-ms".into(), "700".into()),
            ],
            body: br#"{"error":{"code":429,"message":"come back later"}}"#.to_vec(),
        }, Canned {
            status: 200,
            headers: vec![("content-type".into(), "application/json".into())],
            body: br#"{"model":"m","choices":[{"index":0,"finish_reason":"stop","message":{"content":"I care about tea."}}]}"#.to_vec(),
        }]))
        .expect("server");
    // The last scripted reply repeats; an empty script answers normally.
    let other = rt
        .block_on(FaultServer::start_scripted(vec![]))
        .expect("server");
    let text = format!(
        "[design]\nconditions = ['CTRL1']\nsamples_per_condition = 3\n\
         [collect]\nbackoff_base_ms = 1\npark_threshold_s = 0.5\n\
         [[cells]]\nname = 'parked-or'\nprovider = 'openai-compatible'\nbase_url = '{}'\nmodel = 'm'\nconcurrency = 1\n\
         [[cells]]\nname = 'other-or'\nprovider = 'openai-compatible'\nbase_url = '{}'\nmodel = 'm'\nconcurrency = 1\n",
        parked.base_url(),
        other.base_url()
    );
    let study = Arc::new(Study::parse(&text, Path::new("s.toml")).expect("study"));
    let dir = tempfile::tempdir().expect("tmp");
    let store = Store::open(dir.path()).expect("store");
    let plan = collect::plan(&study, &store).expect("plan");
    let providers = collect::providers_for(&study).expect("providers");
    let sink = Arc::new(collect::events::ProgressSink::default());
    let (summary, _store) = rt
        .block_on(collect::run(
            study,
            providers,
            plan,
            store,
            "sha",
            sink.clone(),
        ))
        .expect("run");
    assert_eq!(summary.valid, 6);
    let p = parked.stats();
    let o = other.stats();
    assert_eq!(p.requests, 4, "one 429, then three answers");
    let gap = p.arrivals[1] - p.arrivals[0];
    assert!(
        gap >= Duration::from_millis(700),
        "parked cell retried after {gap:?}"
    );
    assert!(
        o.arrivals.iter().all(|t| *t < p.arrivals[1]),
        "the other cell ran while the first was parked"
    );
    let notices = sink.notices.lock().expect("lock").clone();
    assert_eq!(
        notices
            .iter()
            .filter(|n| n.contains("parked-or parked"))
            .count(),
        1,
        "{notices:?}"
    );
}

/// A server that echoes the request's Authorization header back (in a 401 body and in a
/// header) must not get the key into the store, the traces or the error text.
#[test]
fn a_key_echoed_by_the_server_never_reaches_the_store() {
    use std::io::{Read, Write};
    let secret = "sk-test-ECHOED-7f3a9c";
    let var = "VUF_TEST_ECHO_KEY";
    std::env::set_var(var, secret);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut buf = vec![0u8; 65536];
            let n = conn.read(&mut buf).unwrap_or(0);
            let req = String::from_utf8_lossy(&buf[..n]).to_string();
            let auth = req
                .lines()
                .find(|l| l.to_ascii_lowercase().starts_with("authorization:"))
                .map(|l| {
                    l.split_once(':')
                        .map(|x| x.1)
                        .unwrap_or("")
                        .trim()
                        .to_string()
                })
                .unwrap_or_default();
            let body = format!("{{\"error\":{{\"message\":\"bad key {auth}\",\"code\":401}}}}");
            let reply = format!(
                "HTTP/1.1 401 Unauthorized\r\ncontent-type: application/json\r\nx-echo: {auth}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = conn.write_all(reply.as_bytes());
        }
    });
    let text = format!(
        "[design]\nsamples_per_condition = 1\nconditions = ['CTRL1']\n\
         [[cells]]\nname = 'echo'\nprovider = 'openai-compatible'\nbase_url = 'http://{addr}/v1'\nmodel = 'm'\napi_key_env = '{var}'\n"
    );
    let mut study = Study::parse(&text, Path::new("echo.toml")).expect("study");
    study.resolve_keys(true).expect("key from the environment");
    let study = Arc::new(study);
    let dir = tempfile::tempdir().expect("tmp");
    let store = Store::open(dir.path()).expect("store");
    let plan = collect::plan(&study, &store).expect("plan");
    let providers = collect::providers_for(&study).expect("providers");
    let result = rt().block_on(collect::run(
        study,
        providers,
        plan,
        store,
        "sha",
        Arc::new(NullSink),
    ));
    let shown = match result {
        Ok((summary, store)) => {
            drop(store);
            format!("{summary:?}")
        }
        Err(e) => format!("{e} {e:?}"),
    };
    assert!(!shown.contains(secret), "{shown}");
    assert!(
        shown.contains("***"),
        "the echoed key shows redacted: {shown}"
    );
    let conn = rusqlite::Connection::open(dir.path().join("vuf.sqlite")).expect("open");
    let mut found = Vec::new();
    for table in ["attempts", "samples"] {
        let cols: Vec<String> = conn
            .prepare(&format!("SELECT name FROM pragma_table_info('{table}')"))
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        for c in cols {
            let n: i64 = conn
                .query_row(
                    &format!("SELECT COUNT(*) FROM {table} WHERE CAST(\"{c}\" AS TEXT) LIKE '%' || ?1 || '%'"),
                    [secret],
                    |r| r.get(0),
                )
                .unwrap();
            if n > 0 {
                found.push(format!("{table}.{c}"));
            }
        }
    }
    let rows: i64 = conn
        .query_row("SELECT COUNT(*) FROM attempts", [], |r| r.get(0))
        .unwrap();
    assert!(rows > 0, "the failed attempt is stored");
    assert!(found.is_empty(), "the key is stored in {found:?}");
}
