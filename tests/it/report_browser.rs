//! `vuf report` on the labelled subset, checked in headless Chromium.
//!
//! Builds an analysis directory from the published-format expected CSVs
//! (`shared/data/expected/subset-glm51-qwen/`) plus a `samples.jsonl` generated from the
//! tidy sample table and the labelled posture files (coder votes and notes), injects a
//! hostile response and hostile coder notes, renders the report, loads it in Chromium
//! (`--dump-dom`, `--screenshot`) and checks that the figures and model pages are there,
//! that the hostile text shows as text and that no injected script ran.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const HOSTILE_RESPONSE: &str = "I value honesty. <script>document.title='pwned';document.body.appendChild(document.createElement('div')).id='pwned'</script><img src=x onerror=\"document.title='pwned-img'\"> [click me](javascript:alert(1)) </textarea><b id=pwned-b>bold</b> ]]> =HYPERLINK(\"http://evil.example\",\"x\") \\input{/etc/passwd}";
const HOSTILE_NOTE: &str =
    "<svg onload=\"document.title='pwned-svg'\"></svg><a href=\"javascript:alert(1)\">note</a>";

fn condition_family(c: &str) -> &'static str {
    match c {
        "CTRL1" | "CTRL2" => "direct_stated_values",
        "G1" | "G2" => "cache_broken_stated_values",
        _ => "world_change_prompts",
    }
}

/// Per `layered_id`: (value_holding_support, coder votes) from the labelled posture files.
fn posture_votes(data: &Path) -> HashMap<String, (serde_json::Value, Vec<serde_json::Value>)> {
    let mut out = HashMap::new();
    for f in [
        "labelled/phase4_glm_5_1/posture_triple/collapsed_consensus.jsonl",
        "labelled/phase6_qwen_20260522/posture_collapsed/consensus.jsonl",
    ] {
        let text = std::fs::read_to_string(data.join(f)).expect("posture file");
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let v: serde_json::Value = serde_json::from_str(line).expect("posture json");
            let id = v["layered_id"].as_str().unwrap_or_default().to_string();
            let votes = v["coder_records"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|r| {
                    let label = r
                        .get("collapsed_primary_label")
                        .or_else(|| r.get("primary_label"))
                        .cloned()
                        .unwrap_or(serde_json::Value::Null);
                    serde_json::json!({
                        "coder": r["coder_key"], "label": label,
                        "value_holding": r["value_holding"], "notes": r["notes"],
                    })
                })
                .collect();
            out.insert(id, (v["value_holding_support"].clone(), votes));
        }
    }
    out
}

/// Write the analysis directory; returns the id of the sample given the hostile text.
fn build_analysis_dir(data: &Path, dir: &Path) -> String {
    let exp = data.join("expected/subset-glm51-qwen");
    for e in std::fs::read_dir(&exp).expect("expected dir") {
        let p = e.expect("entry").path();
        std::fs::copy(&p, dir.join(p.file_name().expect("name"))).expect("copy");
    }
    let tidy =
        std::fs::read_to_string(exp.join("tidy_values_under_fire_samples.csv")).expect("tidy");
    let mut recs = vuf::report::csv::parse(&tidy).expect("tidy csv");
    let header = recs.remove(0);
    let col = |n: &str| header.iter().position(|c| c == n).expect(n);
    let votes = posture_votes(data);
    let mut rows: Vec<serde_json::Value> = Vec::new();
    for r in &recs {
        let id = &r[col("layered_id")];
        let (support, cv) = votes
            .get(id)
            .cloned()
            .unwrap_or((serde_json::Value::Null, vec![]));
        let topics: Vec<&str> = r[col("topics")]
            .split('|')
            .filter(|t| !t.is_empty())
            .collect();
        rows.push(serde_json::json!({
            "layered_id": id, "model": r[col("model")], "source_model": r[col("source_model")],
            "display_name": r[col("display_name")], "lab": r[col("lab")], "cell": r[col("cell")],
            "condition": r[col("condition")], "condition_family": condition_family(&r[col("condition")]),
            "sample_id": r[col("sample_id")], "value_holding": r[col("value_holding")],
            "value_holding_support": support, "collapsed_primary_label": r[col("collapsed_primary_label")],
            "collapsed_primary_label_support": r[col("collapsed_primary_label_support")].parse::<u32>().ok(),
            "topics": topics,
            "lex": {
                "service_assistant_role": r[col("lex_service_assistant_role_any")] == "1",
                "disownership": r[col("lex_disownership_any")] == "1",
                "policy_safety_frame": r[col("lex_policy_safety_frame_any")] == "1",
            },
            "coder_votes": cv, "confidence": null, "source": "published",
            "prompt": r[col("prompt")], "response": r[col("response")],
        }));
    }
    assert_eq!(rows.len(), 2640);
    // The hostile sample: glm-5-1's first owned sample by layered_id, which the model page
    // shows as its first owned example.
    let target = rows
        .iter()
        .filter(|s| s["model"] == "glm-5-1" && s["value_holding"] == "owned")
        .map(|s| s["layered_id"].as_str().unwrap_or_default().to_string())
        .min()
        .expect("an owned glm-5-1 sample");
    for s in rows.iter_mut() {
        if s["layered_id"] == target.as_str() {
            s["response"] = serde_json::json!(HOSTILE_RESPONSE);
            if let Some(v) = s["coder_votes"].get_mut(0) {
                v["notes"] = serde_json::json!(HOSTILE_NOTE);
            }
        }
    }
    let lines: Vec<String> = rows.iter().map(|r| r.to_string()).collect();
    std::fs::write(dir.join("samples.jsonl"), lines.join("\n") + "\n").expect("write samples");
    let analysis = serde_json::json!({
        "vuf_version": env!("CARGO_PKG_VERSION"), "source": "published",
        "provenance": {"inputs": [
            {"name": "manifest_valid.jsonl", "rows": 2640, "sha256": "e242afea8b30e69576c10f43d20a6b98fe61e1b211c1d4c080c2fe68227e2d84"},
            {"name": "posture_consensus.jsonl", "rows": 2640, "sha256": "b06fb60bca015b6ccc447fcf854dee606d35bcf4eaa17a11e55cbfd5995a21da"}
        ], "n_rows": 2640, "n_excluded": 0},
        "tables": {}
    });
    std::fs::write(dir.join("analysis.json"), analysis.to_string()).expect("write analysis.json");
    target
}

fn chromium(args: &[String]) -> (String, Duration) {
    let start = Instant::now();
    let mut child = Command::new("/usr/bin/chromium")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn chromium");
    let mut stdout = child.stdout.take().expect("stdout");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut stdout, &mut s);
        s
    });
    loop {
        match child.try_wait().expect("wait chromium") {
            Some(_) => break,
            None if start.elapsed() > Duration::from_secs(120) => {
                let _ = child.kill();
                panic!("chromium did not finish within 120 s");
            }
            None => std::thread::sleep(Duration::from_millis(50)),
        }
    }
    (reader.join().unwrap_or_default(), start.elapsed())
}

fn base_args(profile: &Path) -> Vec<String> {
    [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain(std::iter::once(format!(
        "--user-data-dir={}",
        profile.display()
    )))
    .collect()
}

#[test]
fn report_renders_in_chromium_and_runs_no_injected_script() {
    let Some(data) = vuf::testdata::shared_data_or_skip("report_browser") else {
        return;
    };
    let work = std::env::temp_dir().join("vuf_report_browser");
    let _ = std::fs::remove_dir_all(&work);
    let analysis = work.join("analysis");
    let out = work.join("report");
    std::fs::create_dir_all(&analysis).expect("mkdir");
    let target = build_analysis_dir(&data, &analysis);
    let input = vuf::report::load(&analysis).expect("load");
    assert_eq!(input.samples.len(), 2640);
    let files = vuf::report::write_report(&input, &out, &vuf::report::ReportOptions::default())
        .expect("write report");
    let html_path = out.join("report.html");
    assert!(files.contains(&html_path));
    for f in [
        "summary.md",
        "tables.tex",
        "figures/direct_vs_cache_broken_by_model.svg",
        "data/tables.json",
    ] {
        assert!(out.join(f).is_file(), "{f}");
    }
    let html = std::fs::read_to_string(&html_path).expect("read html");
    assert!(html.len() < 20_000_000);
    let mut all_html = html.clone();
    for f in files
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "html"))
    {
        all_html.push_str(&std::fs::read_to_string(f).expect("read page"));
    }
    let html_for_checks = &all_html;
    // The hostile text is present only in escaped form in the file.
    assert!(!html_for_checks.contains("<script>document.title"));
    assert!(!html_for_checks.contains("<img src=x"));
    assert!(!html_for_checks.contains("<svg onload"));
    assert!(html_for_checks.contains("&lt;script&gt;document.title=&#39;pwned&#39;"));
    // No external URL of any kind may be fetched: the only http(s) strings are the SVG
    // namespace and the escaped hostile text.
    assert!(!html_for_checks.contains("https://") && !html_for_checks.contains("url("));
    for (i, _) in html_for_checks.match_indices("http://") {
        let rest = &html_for_checks[i..];
        assert!(
            rest.starts_with("http://www.w3.org/2000/svg")
                || rest.starts_with("http://evil.example&quot;"),
            "unexpected URL near {:?}",
            &rest[..rest.len().min(60)]
        );
    }

    if !Path::new("/usr/bin/chromium").is_file() {
        println!("SKIP: chromium not installed");
        return;
    }
    let glm = input_anchor(&html, "glm-5-1");
    let model_page = out.join("models").join(format!("{glm}.html"));
    assert!(model_page.is_file(), "model page file");
    let page_url = format!("file://{}", model_page.display());

    // Summary page: figures, links to every model page, the disagreements view.
    let mut args = base_args(&work.join("profile-dom"));
    args.extend([
        "--dump-dom".to_string(),
        format!("file://{}", html_path.display()),
    ]);
    let (dom, took) = chromium(&args);
    println!(
        "chromium --dump-dom report.html took {took:?}; report.html is {} bytes",
        html.len()
    );
    assert!(dom.contains("<title>Values under fire: study report</title>"));
    let parsed_ms: f64 = dom
        .split("data-parsed-ms=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .and_then(|v| v.parse().ok())
        .expect("data-parsed-ms set by the report script");
    println!(
        "report.html parsed and laid out to the end of <body> in {parsed_ms} ms (in-page clock)"
    );
    // Speed is measured in BENCHMARKS.md (bench/full_corpus.sh), not asserted here.
    assert!(parsed_ms > 0.0, "the in-page clock ran");
    assert!(
        dom.contains("data-sort=\"ready\""),
        "the report's own (CSP-hashed) script ran"
    );
    assert!(dom.matches("<svg").count() >= 5, "inline figures");
    assert_eq!(
        dom.matches("<a href=\"models/").count(),
        9,
        "a link to each model page"
    );
    assert!(dom.contains("id=\"disagreements\""));
    check_hostile_dom(&dom, "Values under fire: study report");

    // The glm-5-1 page, whose first owned example is the hostile sample.
    let mut args = base_args(&work.join("profile-dom2"));
    args.extend(["--dump-dom".to_string(), page_url.clone()]);
    let (dom, _) = chromium(&args);
    assert!(dom.contains("class=\"model-page\""));
    assert!(
        dom.contains(&target),
        "the hostile sample is on the model page"
    );
    assert!(
        dom.contains("&lt;script&gt;document.title='pwned'"),
        "hostile text shown as text"
    );
    assert!(dom.contains("&lt;/textarea&gt;"));
    assert!(dom.contains("[click me](javascript:alert(1))"));
    assert!(
        dom.contains("&lt;a href=\"javascript:alert(1)\"&gt;note&lt;/a&gt;"),
        "hostile note shown as text"
    );
    assert!(dom.contains("data-sort=\"ready\""));
    check_hostile_dom(&dom, "glm-5-1 — Values under fire: study report");

    let shot = work.join("screenshot.png");
    let mut args = base_args(&work.join("profile-shot"));
    args.extend([
        format!("--screenshot={}", shot.display()),
        "--window-size=1400,2000".to_string(),
        format!("file://{}", html_path.display()),
    ]);
    chromium(&args);
    let shot2 = work.join("screenshot_model.png");
    let mut args = base_args(&work.join("profile-shot2"));
    args.extend([
        format!("--screenshot={}", shot2.display()),
        "--window-size=1400,2000".to_string(),
        page_url,
    ]);
    chromium(&args);
    for s in [&shot, &shot2] {
        let png = std::fs::read(s).expect("screenshot written");
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        assert!(png.len() > 20_000, "screenshot is not blank");
    }
    println!("screenshots: {} {}", shot.display(), shot2.display());
}

/// No injected script ran and no injected element exists in a dumped DOM.
fn check_hostile_dom(dom: &str, title: &str) {
    assert!(
        dom.contains(&format!("<title>{title}</title>")),
        "title changed: a script ran"
    );
    assert!(
        !dom.contains("pwned\">") && !dom.contains("id=\"pwned"),
        "injected element present"
    );
    assert!(!dom.contains("<img"), "an img element was created");
    assert!(
        !dom.contains("onload=\"document") || !dom.contains("<svg onload"),
        "svg element injected"
    );
    assert!(!dom.contains("<b id=\"pwned-b\""));
    for (i, _) in dom.match_indices("<a ") {
        let rest = &dom[i..];
        assert!(
            rest.starts_with("<a href=\"#")
                || rest.starts_with("<a href=\"models/")
                || rest.starts_with("<a href=\"../report.html"),
            "unexpected link: {:?}",
            &rest[..rest.len().min(60)]
        );
    }
}

/// The anchor of a model's page, read from the models table link.
fn input_anchor(html: &str, model: &str) -> String {
    let needle = format!(".html\">{model}</a>");
    let end = html.find(&needle).expect("model link");
    let start = html[..end].rfind("href=\"models/").expect("href") + "href=\"models/".len();
    html[start..end].to_string()
}
