//! Report tests on a small hand-written analysis directory with hostile texts.

use std::path::{Path, PathBuf};

use super::*;
use crate::testdata::dir_entries as entries;

pub(crate) const HOSTILE: &str = "<script>document.title='pwned'</script><img src=x onerror=alert(1)> [x](javascript:alert(1)) </textarea> ]]> =HYPERLINK(\"http://evil\",\"y\") \\input{/etc/passwd} | *b* _i_ `c`";

const HEAD: &str = "model,display_name,lab,family,release_date,condition_family,conditions,n_valid,eligible_cells,excluded_small_cells,owned_rate,relocated_or_partial_rate,recited_not_owned_rate,indeterminate_rate,uncodeable_rate,n_owned,n_relocated_or_partial,n_recited_not_owned,n_indeterminate,n_uncodeable,label\n";

fn write_fixture(dir: &Path) {
    let evil = "\"<b>evil</b>=cmd\"";
    let mut s = String::from(HEAD);
    s.push_str("alpha,Alpha,LabA,a,2025-01-01,direct_stated_values,CTRL1+CTRL2,20,1,0,10.0,0.0,90.0,0.0,0.0,2,0,18,0,0,strongly_clamped\n");
    s.push_str("alpha,Alpha,LabA,a,2025-01-01,cache_broken_stated_values,G1+G2,60,1,0,50.0,10.0,40.0,0.0,0.0,30,6,24,0,0,partially_open\n");
    s.push_str("alpha,Alpha,LabA,a,2025-01-01,world_change_prompts,CTRL3+G3,40,1,0,100.0,0.0,0.0,0.0,0.0,40,0,0,0,0,strongly_open\n");
    s.push_str(&format!("{evil},{evil},LabA,a,2025-06-01,direct_stated_values,CTRL1+CTRL2,20,1,0,30.0,0.0,70.0,0.0,0.0,6,0,14,0,0,strongly_clamped\n"));
    s.push_str(&format!("{evil},{evil},LabA,a,2025-06-01,cache_broken_stated_values,G1+G2,60,1,0,90.0,0.0,10.0,0.0,0.0,54,0,6,0,0,strongly_open\n"));
    s.push_str(&format!("{evil},{evil},LabA,a,2025-06-01,world_change_prompts,CTRL3+G3,40,0,1,nan,nan,nan,nan,nan,0,0,0,0,0,small_n\n"));
    std::fs::write(dir.join("model_disclosure_summary.csv"), s).unwrap();
    std::fs::write(
        dir.join("lab_trend_figures.csv"),
        "lab,n_models,models\nLabA,2,alpha|<b>evil</b>=cmd\n",
    )
    .unwrap();
    let sample = |id: &str, model: &str, vh: &str, sup: u32, resp: &str, notes: &str| {
        serde_json::json!({
            "layered_id": id, "model": model, "source_model": model, "display_name": model, "lab": "LabA",
            "cell": format!("{model}-cell"), "condition": "G1", "condition_family": "cache_broken_stated_values",
            "sample_id": "G1_1", "value_holding": vh, "value_holding_support": sup,
            "collapsed_primary_label": "owned_reflective_experiential", "collapsed_primary_label_support": sup,
            "topics": [], "lex": {"service_assistant_role": true, "disownership": false, "policy_safety_frame": false},
            "coder_votes": [
                {"coder": "c1", "label": "x", "value_holding": vh, "notes": notes},
                {"coder": "c2", "label": "x", "value_holding": if sup == 3 { vh } else { "recited_not_owned" }, "notes": "ok"},
                {"coder": "c3", "label": "x", "value_holding": vh, "notes": null}
            ],
            "confidence": null, "source": "offline", "prompt": "p", "response": resp
        })
        .to_string()
    };
    let lines = [
        sample("a2", "alpha", "owned", 3, "second owned", "n"),
        sample("a1", "alpha", "owned", 3, HOSTILE, HOSTILE),
        sample("a3", "alpha", "recited_not_owned", 2, "split one", "n"),
        sample("e1", "<b>evil</b>=cmd", "owned", 3, "=SUM(A1:A9)", "n"),
    ];
    std::fs::write(dir.join("samples.jsonl"), lines.join("\n") + "\n").unwrap();
    std::fs::write(
        dir.join("analysis.json"),
        r#"{"vuf_version":"0.1.0","source":"offline","provenance":{"inputs":[{"name":"m.jsonl","rows":4,"sha256":"abc"}],"n_rows":4,"n_excluded":0,"rubric_layer_b":"<i>h</i>"},"tables":{}}"#,
    )
    .unwrap();
}

#[test]
fn load_reads_tables_samples_and_provenance() {
    let d = tempfile::tempdir().unwrap();
    write_fixture(d.path());
    let input = load(d.path()).unwrap();
    assert_eq!(input.samples.len(), 4);
    assert_eq!(input.tables["model_disclosure_summary"].rows.len(), 6);
    let p = input.provenance.as_ref().unwrap();
    assert_eq!((p.source.as_str(), p.n_rows), ("offline", Some(4)));
    assert!(input
        .missing
        .contains(&"model_question_owned_disclosure.csv".to_string()));
    // Votes with a null note parse as "".
    assert_eq!(input.samples[0].coder_votes[2].notes, "");
}

#[test]
fn load_rejects_non_analysis_dirs() {
    let d = tempfile::tempdir().unwrap();
    assert!(matches!(load(d.path()), Err(Error::NotAnalysis { .. })));
    assert!(matches!(
        load(&d.path().join("nope")),
        Err(Error::NotAnalysis { .. })
    ));
    std::fs::write(
        d.path().join("model_disclosure_summary.csv"),
        "a,b\n1,\"x\n",
    )
    .unwrap();
    match load(d.path()) {
        Err(Error::Csv { line, .. }) => assert_eq!(line, 2),
        other => panic!("{other:?}"),
    }
}

#[test]
fn view_headline_examples_and_disagreements() {
    let d = tempfile::tempdir().unwrap();
    write_fixture(d.path());
    let input = load(d.path()).unwrap();
    let st = view::Study::build(&input);
    // Means over rows with eligible cells: direct (10+30)/2, G1/2 (50+90)/2, world only alpha.
    assert_eq!(st.headline[0].mean_owned, Some(20.0));
    assert_eq!(st.headline[1].mean_owned, Some(70.0));
    assert_eq!(
        (st.headline[2].mean_owned, st.headline[2].n_models),
        (Some(100.0), 1)
    );
    assert_eq!(st.g1g2_labels["strongly_open"], 1);
    assert!(st.is_offline());
    let ex = st.examples("alpha", 1);
    assert_eq!(ex[0].1[0].layered_id, "a1", "first by layered_id");
    let dis = st.disagreements();
    assert_eq!(dis.len(), 1);
    assert_eq!(dis[0].layered_id, "a3");
    // Anchors use the closed alphabet only.
    for m in &st.models {
        assert!(m
            .anchor
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'));
    }
}

#[test]
fn report_escapes_hostile_text_everywhere() {
    let d = tempfile::tempdir().unwrap();
    write_fixture(d.path());
    let input = load(d.path()).unwrap();
    let out = tempfile::tempdir().unwrap();
    let opts = ReportOptions {
        png: false,
        ..ReportOptions::default()
    };
    let files = write_report(&input, out.path(), &opts).unwrap();
    assert!(files.iter().any(|f| f.ends_with("report.html")));
    let summary = std::fs::read_to_string(out.path().join("report.html")).unwrap();
    let pages: Vec<&PathBuf> = files
        .iter()
        .filter(|f| f.parent().is_some_and(|p| p.ends_with("models")))
        .collect();
    assert_eq!(pages.len(), 2, "one page per model");
    assert_eq!(summary.matches("<a href=\"models/").count(), 2);
    for p in pages {
        let page = std::fs::read_to_string(p).unwrap();
        assert_eq!(page.matches("<script").count(), 1, "only the sort script");
        assert!(page.contains("Content-Security-Policy"));
    }
    let html = files
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "html"))
        .map(|f| std::fs::read_to_string(f).unwrap())
        .collect::<String>();
    assert!(!html.contains("<script>document.title"));
    assert!(!html.contains("<img src=x"));
    assert!(!html.contains("<b>evil"));
    assert!(!html.contains("<i>h</i>"));
    assert!(html.contains("&lt;script&gt;document.title=&#39;pwned&#39;&lt;/script&gt;"));
    assert_eq!(
        summary.matches("<script").count(),
        1,
        "only the sort script"
    );
    assert!(!html.contains("href=\"javascript"));
    assert!(
        !html.contains("http://")
            || html.matches("http://").count()
                == html.matches("http://evil").count() + html.matches("http://www.w3.org").count()
    );
    assert!(html.contains("Content-Security-Policy"));
    assert!(html.contains("class=\"badge offline\""));
    assert!(html.contains("<svg"), "inline figures");
    // Standalone SVG: the hostile model name is escaped by the SVG backend.
    let svg = std::fs::read_to_string(
        out.path()
            .join("figures/direct_vs_cache_broken_by_model.svg"),
    )
    .unwrap();
    assert!(!svg.contains("<b>") && svg.contains("&lt;b&gt;evil"));
    let md = std::fs::read_to_string(out.path().join("summary.md")).unwrap();
    assert!(!md.contains("<b>") && md.contains("&lt;b>evil&lt;/b>=cmd"));
    // Harmless data stays readable: the version is not `0\.1\.0`.
    assert!(md.contains("- vuf version: 0.1.0\n"), "{md}");
    assert!(md.contains("OFFLINE"));
    let tex = std::fs::read_to_string(out.path().join("tables.tex")).unwrap();
    assert!(!tex.contains("\\input"));
    let csv = std::fs::read_to_string(out.path().join("data/samples.csv")).unwrap();
    assert!(csv.contains("'=SUM(A1:A9)"));
    assert!(!csv.contains("\"'<script>"));
    let mds =
        std::fs::read_to_string(out.path().join("data/model_disclosure_summary.csv")).unwrap();
    assert!(mds.contains(",10.0,"), "numbers stay numeric");
    let js: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.path().join("data/tables.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        js["model_disclosure_summary"][0]["owned_rate"],
        serde_json::json!(10.0)
    );
    assert_eq!(
        js["model_disclosure_summary"][5]["owned_rate"],
        serde_json::Value::Null
    );
}

#[test]
fn pngs_are_written_when_the_font_exists() {
    let font = Path::new("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf");
    if !font.is_file() {
        eprintln!("SKIP: pngs_are_written_when_the_font_exists: DejaVuSans.ttf not installed");
        return;
    }
    let d = tempfile::tempdir().unwrap();
    write_fixture(d.path());
    let input = load(d.path()).unwrap();
    let out = tempfile::tempdir().unwrap();
    write_report(&input, out.path(), &ReportOptions::default()).unwrap();
    let png = std::fs::read(out.path().join("figures/g1g2_posture_by_model.png")).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
}

#[test]
fn missing_font_means_svg_only() {
    let d = tempfile::tempdir().unwrap();
    write_fixture(d.path());
    let input = load(d.path()).unwrap();
    let out = tempfile::tempdir().unwrap();
    let opts = ReportOptions {
        png: false,
        ..ReportOptions::default()
    };
    let files = write_report(&input, out.path(), &opts).unwrap();
    assert!(files
        .iter()
        .all(|f| f.extension().is_none_or(|e| e != "png")));
    assert!(
        !out.path()
            .join("figures/world_change_by_model.svg")
            .is_file(),
        "no condition table in fixture"
    );
    assert!(out
        .path()
        .join("figures/lab_trends_by_release_date.svg")
        .is_file());
}

#[cfg(feature = "parquet")]
#[test]
fn parquet_export_writes_a_parquet_file() {
    let d = tempfile::tempdir().unwrap();
    write_fixture(d.path());
    let input = load(d.path()).unwrap();
    let p = parquet::write_samples(&input, d.path()).unwrap();
    let bytes = std::fs::read(p).unwrap();
    assert_eq!(&bytes[..4], b"PAR1");
    assert_eq!(&bytes[bytes.len() - 4..], b"PAR1");
}

#[test]
fn reliability_with_one_coder_is_explained_not_tabulated() {
    let header = "variable,group,n_units,n_coders,n_units_complete,fleiss_kappa,fleiss_p_bar,fleiss_p_e,krippendorff_alpha_nominal,n_units_pairable,note\n";
    let render = |n_coders: u32| {
        let d = tempfile::tempdir().unwrap();
        write_fixture(d.path());
        std::fs::write(
            d.path().join("reliability_agreement.csv"),
            format!("{header}value_holding,all,4,{n_coders},4,0.5,0.8,0.6,0.51,4,\n"),
        )
        .unwrap();
        let input = load(d.path()).unwrap();
        let out = tempfile::tempdir().unwrap();
        let opts = ReportOptions {
            png: false,
            ..ReportOptions::default()
        };
        write_report(&input, out.path(), &opts).unwrap();
        std::fs::read_to_string(out.path().join("report.html")).unwrap()
    };
    let one = render(1);
    assert!(one.contains("Inter-coder agreement needs at least two coders"));
    assert!(!one.contains("<th>fleiss_kappa</th>") && !one.contains(">fleiss_kappa<"));
    let three = render(3);
    assert!(!three.contains("Inter-coder agreement needs at least two coders"));
    assert!(three.contains("fleiss_kappa"));
}

/// Every file under `dir` with its bytes, by relative path.
fn files_under(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().display().to_string();
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

#[test]
fn a_report_that_fails_half_way_leaves_the_earlier_one_as_it_was_and_no_temp_dir() {
    let d = tempfile::tempdir().unwrap();
    write_fixture(d.path());
    let mut input = load(d.path()).unwrap();
    let root = tempfile::tempdir().unwrap();
    let out = root.path().join("report");
    let opts = ReportOptions {
        png: false,
        ..ReportOptions::default()
    };
    let files = write_report(&input, &out, &opts).unwrap();
    let before = files_under(&out);
    assert_eq!(before.len(), files.len());
    assert!(files.iter().all(|f| f.starts_with(&out) && f.is_file()));

    // A new report (another title) whose write fails in the exports, after the pages,
    // texts and figures are written: a table named into a directory that does not exist.
    let retitled = ReportOptions {
        title: "Another title".into(),
        ..opts.clone()
    };
    input.tables.insert(
        "no-such-dir/x".into(),
        input.tables["lab_trend_figures"].clone(),
    );
    let err = write_report(&input, &out, &retitled).unwrap_err();
    match &err {
        Error::Io { path, .. } => assert!(
            path.ends_with(format!(
                ".report.tmp-{}/data/no-such-dir/x.csv",
                std::process::id()
            )),
            "{}",
            path.display()
        ),
        other => panic!("{other}"),
    }
    assert_eq!(files_under(&out), before);
    assert_eq!(entries(root.path()), ["report"]);

    // A stale temporary directory of a crashed run, and the earlier report of one stopped
    // after its swap, are removed by the next run; the report is replaced whole.
    input.tables.remove("no-such-dir/x");
    std::fs::create_dir_all(root.path().join(".report.tmp-4194301/data")).unwrap();
    std::fs::create_dir_all(root.path().join(".report.old-4194302/figures")).unwrap();
    std::fs::write(out.join("figures/mine.svg"), "<svg/>").unwrap();
    write_report(&input, &out, &retitled).unwrap();
    assert_eq!(entries(root.path()), ["report"]);
    let after = files_under(&out);
    assert_eq!(
        after.keys().collect::<Vec<_>>(),
        before.keys().collect::<Vec<_>>()
    );
    let html = String::from_utf8(after["report.html"].clone()).unwrap();
    assert!(html.contains("<title>Another title</title>"), "{html}");
    assert!(!String::from_utf8_lossy(&before["report.html"]).contains("Another title"));
}

#[test]
fn a_report_is_not_written_over_a_directory_that_is_not_one() {
    let d = tempfile::tempdir().unwrap();
    write_fixture(d.path());
    let input = load(d.path()).unwrap();
    let opts = ReportOptions {
        png: false,
        ..ReportOptions::default()
    };
    // The analysis directory itself given as the report's output.
    let before = files_under(d.path());
    let err = write_report(&input, d.path(), &opts).unwrap_err();
    assert!(
        matches!(
            &err,
            Error::Output(crate::outdir::Error::Foreign { what: "report", .. })
        ),
        "{err}"
    );
    assert_eq!(files_under(d.path()), before);
}
