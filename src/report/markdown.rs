//! `summary.md`: the study in Markdown for a paper's supplement or a README.
//!
//! Every data string goes through [`escape::markdown_cell`], so no link, image, emphasis,
//! raw HTML or table break can come from a model name or any other data value.

use std::fmt::Write as _;

use super::escape::markdown_cell as m;
use super::view::Study;
use super::ReportInput;

fn pct(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.1}")).unwrap_or_else(|| "—".into())
}

/// Render the Markdown summary.
pub fn render(input: &ReportInput, study: &Study<'_>, png_note: Option<&str>) -> String {
    let mut o = String::new();
    o.push_str("# Values under fire: study summary\n\n");
    let _ = writeln!(o, "Code source: **{}**\n", m(&study.source_description()));
    if study.is_offline() {
        o.push_str("> **Offline codes.** Postures come from vuf's offline coder, not from coder models; treat rates as provisional.\n\n");
    }
    let n_rows = input
        .provenance
        .as_ref()
        .and_then(|p| p.n_rows)
        .unwrap_or(input.samples.len() as u64);
    let _ = writeln!(
        o,
        "- Analysed samples: {n_rows}\n- Models: {}\n",
        study.models.len()
    );
    o.push_str("## Headline owned rates (unweighted mean over models)\n\n| family | mean owned % | interval | models |\n|---|---:|---|---:|\n");
    for hl in &study.headline {
        let ci = hl
            .ci
            .as_ref()
            .map(|(l, h, s)| format!("[{l:.1}, {h:.1}] ({})", m(s)))
            .unwrap_or_else(|| "—".into());
        let _ = writeln!(
            o,
            "| {} | {} | {} | {} |",
            m(hl.label),
            pct(hl.mean_owned),
            ci,
            hl.n_models
        );
    }
    o.push_str("\nSource: `model_disclosure_summary.csv` (rows with eligible_cells > 0).\n\n## G1+G2 labels\n\n| label | models |\n|---|---:|\n");
    for (l, n) in &study.g1g2_labels {
        let _ = writeln!(o, "| {} | {n} |", m(l));
    }
    o.push_str("\n## Per model\n\n| model | lab | CTRL1/2 owned % | G1/2 owned % | CTRL3/G3 owned % | G1/2 label |\n|---|---|---:|---:|---:|---|\n");
    for md in &study.models {
        let f = |k: &str| md.fam(k).and_then(|r| r.owned());
        let _ = writeln!(
            o,
            "| {} | {} | {} | {} | {} | {} |",
            m(&md.model),
            m(&md.lab),
            pct(f("direct_stated_values")),
            pct(f("cache_broken_stated_values")),
            pct(f("world_change_prompts")),
            m(md.fam("cache_broken_stated_values")
                .map(|r| r.label.as_str())
                .unwrap_or("—"))
        );
    }
    o.push_str("\n## Provenance\n\n");
    match &input.provenance {
        Some(p) => {
            let _ = writeln!(o, "- vuf version: {}", m(&p.vuf_version));
            for i in &p.inputs {
                let _ = writeln!(
                    o,
                    "- input {}: {}, sha256 {}",
                    m(&i.name),
                    i.rows
                        .map(|r| crate::text::count(r, "row"))
                        .unwrap_or_else(|| "? rows".into()),
                    m(&i.sha256)
                );
            }
            for (k, v) in &p.other {
                let _ = writeln!(o, "- {}: {}", m(k), m(v));
            }
        }
        None => o.push_str("- analysis.json missing: no hashes or version known\n"),
    }
    if !input.missing.is_empty() || png_note.is_some() {
        o.push_str("\n## Missing\n\n");
        for f in &input.missing {
            let _ = writeln!(o, "- {} not in the analysis directory", m(f));
        }
        if let Some(n) = png_note {
            let _ = writeln!(o, "- {}", m(n));
        }
    }
    o
}
