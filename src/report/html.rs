//! `report.html`: one self-contained page (inline CSS, inline SVG, one small inline sort
//! script), the per-model pages (`models/<anchor>.html`, same chrome) and a disagreements view.
//!
//! Safety: every data string goes through [`escape::html`]; `id`/`href` values are built
//! from [`escape::slug`] plus an index, never from data; no data enters a `<script>`,
//! `style` or `on*` attribute. A Content-Security-Policy meta tag allows only the one
//! sort script (by its SHA-256) and inline styles, and forbids every fetch, so even a
//! missed escape could neither run script nor reach the network.
//! Size: only a few example responses per posture per model and a capped disagreement list
//! are inlined (responses cut at [`MAX_RESPONSE_CHARS`]); the full sample table is in
//! `data/samples.csv` (response excerpts) and the analysis directory (full texts).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use sha2::{Digest, Sha256};

use super::escape::html as h;
use super::figures::Figure;
use super::view::{ModelView, Study, CONDITIONS, FAMILIES, POSTURES};
use super::{ReportInput, ReportOptions, Sample, Table};

/// Longest response text inlined in the HTML; longer ones are cut with a note.
pub const MAX_RESPONSE_CHARS: usize = 4000;

const CSS: &str = r#"
:root{--ink:#212529;--muted:#6c757d;--line:#dee2e6;--bg:#f8f9fa;--acc:#1d3557;--own:#2a9d8f;--rec:#e76f51;--rel:#e9c46a}
*{box-sizing:border-box}
body{margin:0;font:15px/1.5 system-ui,-apple-system,"Segoe UI","DejaVu Sans",sans-serif;color:var(--ink);background:#fff}
header{background:var(--acc);color:#fff;padding:18px 32px}
header h1{margin:0;font-size:24px;font-weight:600}
header .sub{opacity:.85;font-size:14px;margin-top:4px}
.badge{display:inline-block;padding:2px 8px;border-radius:10px;font-size:12px;font-weight:600;background:#e9ecef;color:var(--ink);margin-left:6px}
.badge.offline{background:#d62828;color:#fff}
nav{position:sticky;top:0;background:#fff;border-bottom:1px solid var(--line);padding:8px 32px;z-index:5}
nav a{margin-right:18px;color:var(--acc);text-decoration:none;font-weight:500}
main{max-width:1240px;margin:0 auto;padding:8px 32px 60px}
h2{border-bottom:2px solid var(--line);padding-bottom:4px;margin-top:36px}
h3{margin-top:26px}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(230px,1fr));gap:14px;margin:14px 0}
.card{border:1px solid var(--line);border-radius:8px;padding:12px 16px;background:var(--bg)}
.card .big{font-size:30px;font-weight:650;color:var(--acc)}
.card .lbl{font-size:13px;color:var(--muted)}
table{border-collapse:collapse;margin:10px 0;font-size:13.5px}
th,td{border-bottom:1px solid var(--line);padding:4px 10px;text-align:left;vertical-align:top}
th{background:var(--bg);font-weight:600;white-space:nowrap}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
table.sortable th{cursor:pointer}
table.sortable th::after{content:" \2195";color:#adb5bd;font-size:11px}
table.sortable th[aria-sort=ascending]::after{content:" \25B2";color:var(--acc)}
table.sortable th[aria-sort=descending]::after{content:" \25BC";color:var(--acc)}
.wrap{overflow-x:auto}
figure{margin:18px 0;border:1px solid var(--line);border-radius:8px;padding:10px;background:#fff}
figure svg{max-width:100%;height:auto;display:block}
figcaption{font-size:13px;color:var(--muted);margin-top:6px}
.note{background:#fff3cd;border:1px solid #ffe69c;border-radius:6px;padding:8px 12px;font-size:14px}
.muted{color:var(--muted)}
.model-page{margin-top:8px}
.example{border-left:4px solid var(--line);padding:4px 12px;margin:10px 0;background:var(--bg)}
.example.owned{border-color:var(--own)}.example.recited_not_owned{border-color:var(--rec)}.example.relocated_or_partial{border-color:var(--rel)}
.resp{white-space:pre-wrap;font-size:13.5px;background:#fff;border:1px solid var(--line);padding:8px;border-radius:4px;max-height:340px;overflow:auto}
.meta{font-size:12.5px;color:var(--muted)}
details summary{cursor:pointer}
code{font-size:12.5px}
.lbl-strongly_open{color:#1b7f5f;font-weight:600}.lbl-strongly_clamped{color:#b23a1d;font-weight:600}.lbl-partially_open{color:#8a6d00;font-weight:600}
"#;

const SORT_JS: &str = "document.querySelectorAll('table.sortable th').forEach(function(th){th.addEventListener('click',function(){var t=th.closest('table'),b=t.tBodies[0],i=Array.prototype.indexOf.call(th.parentNode.children,th),asc=th.getAttribute('aria-sort')!=='ascending';t.querySelectorAll('th').forEach(function(x){x.removeAttribute('aria-sort')});th.setAttribute('aria-sort',asc?'ascending':'descending');var rows=Array.prototype.slice.call(b.rows);rows.sort(function(x,y){var a=x.cells[i],c=y.cells[i];if(!a||!c)return 0;var va=a.getAttribute('data-v'),vc=c.getAttribute('data-v');var na=parseFloat(va!==null?va:a.textContent),nc=parseFloat(vc!==null?vc:c.textContent);var r;if(!isNaN(na)&&!isNaN(nc))r=na-nc;else if(isNaN(na)!==isNaN(nc))r=isNaN(na)?1:-1;else r=a.textContent.localeCompare(c.textContent);return asc?r:-r});rows.forEach(function(r){b.appendChild(r)})})});document.documentElement.setAttribute('data-sort','ready');document.documentElement.setAttribute('data-parsed-ms',String(Math.round(performance.now())));";

/// Document head: CSP (only the sort script, by hash; no fetch of any kind), inline CSS.
fn head(title: &str) -> String {
    let mut o = String::with_capacity(1 << 20);
    let csp = format!(
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:; script-src 'sha256-{}'; base-uri 'none'; form-action 'none'",
        base64(&Sha256::digest(SORT_JS.as_bytes()))
    );
    let _ = write!(
        o,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<meta http-equiv=\"Content-Security-Policy\" content=\"{csp}\">\n<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\n<meta name=\"referrer\" content=\"no-referrer\">\n<title>{}</title>\n<style>{CSS}</style></head>\n<body>\n",
        h(title)
    );
    o
}

fn foot(o: &mut String) {
    let _ = write!(o, "</main>\n<script>{SORT_JS}</script>\n</body></html>\n");
}

/// The model pages: (`models/<anchor>.html` file name, page text) per model.
pub fn render_model_pages(study: &Study<'_>, opts: &ReportOptions) -> Vec<(String, String)> {
    study
        .models
        .iter()
        .map(|m| {
            let mut o = head(&format!("{} — {}", m.model, opts.title));
            let _ = write!(
                o,
                "<header><h1>{}</h1><div class=\"sub\">Model page · code source: <span class=\"badge{}\">{}</span></div></header>\n<nav><a href=\"../report.html\">Report</a><a href=\"../report.html#models\">All models</a><a href=\"../report.html#disagreements\">Disagreements</a></nav>\n<main>\n",
                h(&m.model),
                if study.is_offline() { " offline" } else { "" },
                h(&study.source)
            );
            model_page(&mut o, study, m, opts);
            foot(&mut o);
            (format!("{}.html", m.anchor), o)
        })
        .collect()
}

/// Render the summary page (`report.html`).
pub fn render(
    input: &ReportInput,
    study: &Study<'_>,
    figs: &[Figure],
    opts: &ReportOptions,
    png_note: Option<&str>,
) -> String {
    let mut o = head(&opts.title);
    let offline = study.is_offline();
    let _ = writeln!(
        o,
        "<header><h1>{}</h1><div class=\"sub\">Code source: <span class=\"badge{}\" id=\"code-source\">{}</span>{}</div></header>",
        h(&opts.title),
        if offline { " offline" } else { "" },
        h(&study.source),
        match &input.provenance {
            Some(p) if !p.vuf_version.is_empty() => format!(" · vuf {}", h(&p.vuf_version)),
            _ => String::new(),
        }
    );
    o.push_str("<nav><a href=\"#summary\">Summary</a><a href=\"#figures\">Figures</a><a href=\"#models\">Models</a><a href=\"#labs\">Labs</a><a href=\"#lexical\">Lexical traces</a><a href=\"#disagreements\">Disagreements</a><a href=\"#tables\">Other tables</a><a href=\"#provenance\">Provenance</a></nav>\n<main>\n");
    summary(&mut o, input, study, png_note);
    o.push_str("<section id=\"figures\"><h2>Figures</h2>\n");
    if figs.is_empty() {
        o.push_str(
            "<p class=\"muted\">No figure could be drawn: the model tables are missing.</p>",
        );
    }
    for f in figs {
        let _ = write!(
            o,
            "<figure id=\"fig-{}\">{}\n<figcaption><b>{}</b> — {} Files: <code>figures/{}.svg</code>{}</figcaption></figure>\n",
            super::escape::slug(&f.name),
            strip_xml_decl(&f.svg),
            h(&f.title),
            h(&f.caption),
            h(&f.name),
            if png_note.is_none() { format!(", <code>figures/{}.png</code>", h(&f.name)) } else { String::new() }
        );
    }
    o.push_str("</section>\n");
    models_table(&mut o, study);
    labs(&mut o, input);
    lexical(&mut o, input);
    disagreements(&mut o, study, opts);
    other_tables(&mut o, input);
    provenance(&mut o, input, study);
    foot(&mut o);
    o
}

fn strip_xml_decl(svg: &str) -> &str {
    match svg.find("<svg") {
        Some(i) => &svg[i..],
        None => svg,
    }
}

fn num_td(v: Option<f64>) -> String {
    match v {
        Some(x) => format!("<td class=\"n\" data-v=\"{x}\">{:.1}</td>", x),
        None => "<td class=\"n\" data-v=\"\">—</td>".into(),
    }
}

fn int_td(v: Option<f64>) -> String {
    match v {
        Some(x) => format!("<td class=\"n\" data-v=\"{x}\">{}</td>", x as i64),
        None => "<td class=\"n\">—</td>".into(),
    }
}

fn ci_text(ci: &Option<(f64, f64, String)>) -> String {
    match ci {
        Some((l, hgh, src)) => format!(
            "[{l:.1}, {hgh:.1}] <span class=\"muted\">({})</span>",
            h(src)
        ),
        None => "<span class=\"muted\">—</span>".into(),
    }
}

fn summary(o: &mut String, input: &ReportInput, study: &Study<'_>, png_note: Option<&str>) {
    o.push_str("<section id=\"summary\"><h2>Summary</h2>\n");
    if study.is_offline() {
        o.push_str("<p class=\"note\"><b>Offline codes.</b> The postures in this report come from vuf's offline coder, not from the three coder models. Treat every rate as provisional.</p>\n");
    }
    let n_models = study.models.len();
    let labs: BTreeSet<&str> = study.models.iter().map(|m| m.lab.as_str()).collect();
    let cells: BTreeSet<&str> = input.samples.iter().map(|s| s.cell.as_str()).collect();
    let n_rows = input
        .provenance
        .as_ref()
        .and_then(|p| p.n_rows)
        .map(|n| n.to_string())
        .unwrap_or_else(|| input.samples.len().to_string());
    let _ = writeln!(
        o,
        "<div class=\"cards\"><div class=\"card\"><div class=\"big\">{}</div><div class=\"lbl\">analysed samples</div></div><div class=\"card\"><div class=\"big\">{}</div><div class=\"lbl\">{} · {}</div></div><div class=\"card\"><div class=\"big\">{}</div><div class=\"lbl\">{} (from samples.jsonl)</div></div></div>",
        h(&n_rows), n_models, crate::text::plural(n_models, "model"), crate::text::count(labs.len(), "lab"), cells.len(), crate::text::plural(cells.len(), "cell")
    );
    o.push_str("<h3>Headline owned rates (unweighted mean over models)</h3>\n<table><thead><tr><th>family</th><th class=\"n\">mean owned %</th><th>interval</th><th class=\"n\">models</th></tr></thead><tbody>\n");
    for hl in &study.headline {
        let _ = writeln!(
            o,
            "<tr><td>{}</td>{}<td>{}</td><td class=\"n\">{}</td></tr>",
            h(hl.label),
            num_td(hl.mean_owned),
            if hl.ci.is_some() {
                ci_text(&hl.ci)
            } else {
                if input.tables.contains_key("headline_means") && hl.n_models < 3 {
                    "<span class=\"muted\">none (a model bootstrap needs 3 models)</span>".into()
                } else {
                    "<span class=\"muted\">no interval table</span>".into()
                }
            },
            hl.n_models
        );
    }
    o.push_str("</tbody></table><p class=\"muted\">Source: <code>model_disclosure_summary.csv</code>, mean of <code>owned_rate</code> over rows with <code>eligible_cells &gt; 0</code>. Intervals: 95% percentile bootstrap over models (<code>headline_means.csv</code>; vuf's addition, not in the paper). CTRL3/G3 are never pooled with the stated-values conditions.</p>\n");
    // Rows by condition.
    if let Some(t) = input.tables.get("coder_support_by_condition") {
        let mut by: BTreeMap<String, BTreeMap<String, f64>> = BTreeMap::new();
        let mut order: Vec<String> = Vec::new();
        for r in t.iter() {
            let g = r.get("group").to_string();
            if !order.contains(&g) {
                order.push(g.clone());
            }
            by.entry(g)
                .or_default()
                .insert(r.get("support").to_string(), r.num("n").unwrap_or(0.0));
        }
        o.push_str("<h3>Samples and coder agreement by group</h3><div class=\"wrap\"><table class=\"sortable\"><thead><tr><th>group</th><th class=\"n\">samples</th><th class=\"n\">support 1</th><th class=\"n\">support 2</th><th class=\"n\">support 3</th><th class=\"n\">3/3 %</th></tr></thead><tbody>\n");
        for g in &order {
            let m = &by[g];
            let total: f64 = m.values().sum();
            let s = |k: &str| m.get(k).copied();
            let _ = writeln!(
                o,
                "<tr><td>{}</td>{}{}{}{}{}</tr>",
                h(g),
                int_td(Some(total)),
                int_td(s("1").or(Some(0.0))),
                int_td(s("2").or(Some(0.0))),
                int_td(s("3").or(Some(0.0))),
                num_td(if total > 0.0 {
                    s("3").map(|v| 100.0 * v / total)
                } else {
                    None
                })
            );
        }
        o.push_str("</tbody></table></div><p class=\"muted\">Source: <code>coder_support_by_condition.csv</code> (value_holding_support).</p>\n");
    }
    o.push_str("<h3>G1+G2 descriptive labels</h3><table><thead><tr><th>label</th><th class=\"n\">models</th></tr></thead><tbody>\n");
    for (l, n) in &study.g1g2_labels {
        let _ = writeln!(
            o,
            "<tr><td class=\"lbl-{}\">{}</td><td class=\"n\">{n}</td></tr>",
            super::escape::slug(l).replace('-', "_"),
            h(l)
        );
    }
    o.push_str("</tbody></table>\n");
    let rel: Vec<&Table> = input
        .tables
        .iter()
        .filter(|(k, _)| k.starts_with("reliability"))
        .map(|(_, t)| t)
        .collect();
    o.push_str("<h3>Coder reliability</h3>\n");
    if rel.is_empty() {
        o.push_str("<p class=\"muted\">No <code>reliability_*.csv</code> table was written by the analysis; only the support distribution above is available.</p>\n");
    }
    // With one coder (the offline coder) agreement is undefined: say so instead of a table
    // of NaNs.
    let with_counts: Vec<&&Table> = rel.iter().filter(|t| t.col("n_coders").is_some()).collect();
    let one_coder = !with_counts.is_empty()
        && with_counts
            .iter()
            .all(|t| t.iter().all(|r| r.num("n_coders").is_none_or(|n| n < 2.0)));
    if one_coder {
        o.push_str("<p class=\"muted\">Inter-coder agreement needs at least two coders per sample; this code source has one, so Fleiss' kappa, Krippendorff's alpha and Cohen's kappa are undefined (the <code>reliability_*.csv</code> files say so row by row).</p>\n");
    } else {
        for t in rel {
            generic_table(o, t, 200);
        }
    }
    if !input.missing.is_empty() || png_note.is_some() {
        o.push_str("<h3>What is missing</h3><ul>");
        for m in &input.missing {
            let _ = write!(
                o,
                "<li><code>{}</code> not in the analysis directory</li>",
                h(m)
            );
        }
        if let Some(n) = png_note {
            let _ = write!(o, "<li>{}</li>", h(n));
        }
        o.push_str("</ul>\n");
    }
    o.push_str("</section>\n");
}

fn models_table(o: &mut String, study: &Study<'_>) {
    o.push_str("<section id=\"models\"><h2>Models</h2><p class=\"muted\">Click a column to sort; click a model to open its page (<code>models/*.html</code>). Source: <code>model_disclosure_summary.csv</code>.</p><div class=\"wrap\"><table class=\"sortable\" id=\"models-table\"><thead><tr><th>model</th><th>lab</th><th>release</th><th class=\"n\">direct owned %</th><th class=\"n\">G1/2 owned %</th><th>G1/2 interval</th><th class=\"n\">lift pp</th><th class=\"n\">world-change owned %</th><th>G1/2 label</th><th class=\"n\">n</th></tr></thead><tbody>\n");
    for m in &study.models {
        let d = m.fam("direct_stated_values").and_then(|r| r.owned());
        let cb = m.fam("cache_broken_stated_values");
        let c = cb.and_then(|r| r.owned());
        let w = m.fam("world_change_prompts").and_then(|r| r.owned());
        let n: f64 = m.families.values().filter_map(|r| r.n_valid).sum();
        let label = cb.map(|r| r.label.as_str()).unwrap_or("");
        let _ = writeln!(
            o,
            "<tr><td><a href=\"models/{}.html\">{}</a></td><td>{}</td><td>{}</td>{}{}<td>{}</td>{}{}<td class=\"lbl-{}\">{}</td>{}</tr>",
            m.anchor,
            h(&m.model),
            h(&m.lab),
            h(&m.release_date),
            num_td(d),
            num_td(c),
            cb.map(|r| ci_text(&r.owned_ci)).unwrap_or_default(),
            num_td(match (d, c) { (Some(d), Some(c)) => Some(c - d), _ => None }),
            num_td(w),
            super::escape::slug(label).replace('-', "_"),
            h(label),
            int_td(Some(n)),
        );
    }
    o.push_str("</tbody></table></div></section>\n");
}

fn labs(o: &mut String, input: &ReportInput) {
    o.push_str("<section id=\"labs\"><h2>Labs</h2>\n");
    match input.tables.get("owned_disclosure_by_question_lab_wide") {
        Some(t) => {
            o.push_str("<p class=\"muted\">Owned % per condition, unweighted mean of model rates. Source: <code>owned_disclosure_by_question_lab_wide.csv</code>.</p>");
            generic_table(o, t, 500);
        }
        None => o.push_str("<p class=\"muted\"><code>owned_disclosure_by_question_lab_wide.csv</code> is missing.</p>"),
    }
    if let Some(t) = input.tables.get("lab_question_owned_disclosure") {
        o.push_str("<details><summary>Lab × condition, all postures (model mean and sample-weighted)</summary>");
        generic_table(o, t, 1000);
        o.push_str("</details>");
    }
    o.push_str("</section>\n");
}

fn lexical(o: &mut String, input: &ReportInput) {
    o.push_str("<section id=\"lexical\"><h2>Lexical traces</h2><p class=\"muted\">Descriptive only: what each posture looks like lexically after the coders fixed it. Rates are fractions 0–1.</p>\n");
    for name in [
        "lexical_trace_by_posture",
        "lexical_trace_by_lab",
        "lexical_trace_breakthroughs",
    ] {
        let _ = write!(o, "<h3><code>{name}.csv</code></h3>");
        match input.tables.get(name) {
            Some(t) if !t.rows.is_empty() => generic_table(o, t, 500),
            Some(_) => o.push_str("<p class=\"muted\">No rows.</p>"),
            None => o.push_str("<p class=\"muted\">Not written by the analysis.</p>"),
        }
    }
    o.push_str("</section>\n");
}

/// A `|`-joined list of numbers (version trends) with each long decimal shown to 2
/// places; any other text unchanged.
fn round_listed(c: &str) -> String {
    if !c.contains('|') {
        return c.to_string();
    }
    c.split('|')
        .map(|p| match p.parse::<f64>() {
            Ok(v) if v.is_finite() && p.contains('.') && p.len() > 7 => format!("{v:.2}"),
            _ => p.to_string(),
        })
        .collect::<Vec<_>>()
        .join("|")
}

fn generic_table(o: &mut String, t: &Table, cap: usize) {
    o.push_str("<div class=\"wrap\"><table class=\"sortable\"><thead><tr>");
    let numeric: Vec<bool> = (0..t.columns.len())
        .map(|i| {
            t.rows.iter().any(|r| !r[i].is_empty())
                && t.rows.iter().all(|r| {
                    let c = r[i].trim();
                    c.is_empty() || c == "nan" || c == "--" || c.parse::<f64>().is_ok()
                })
        })
        .collect();
    for (i, c) in t.columns.iter().enumerate() {
        let _ = write!(
            o,
            "<th{}>{}</th>",
            if numeric[i] { " class=\"n\"" } else { "" },
            h(c)
        );
    }
    o.push_str("</tr></thead><tbody>\n");
    for r in t.rows.iter().take(cap) {
        o.push_str("<tr>");
        for (i, c) in r.iter().enumerate() {
            if numeric[i] {
                match c.trim().parse::<f64>() {
                    Ok(v) if v.is_finite() => {
                        // Every decimal shown to 2 places (so 99.99999999999999 reads 100.00 and
                        // columns line up); the exact value stays in data-v and the CSV.
                        let shown = if c.contains('.') {
                            format!("{v:.2}")
                        } else {
                            c.clone()
                        };
                        let _ = write!(o, "<td class=\"n\" data-v=\"{v}\">{}</td>", h(&shown));
                    }
                    // Undefined rates (`nan` in the CSV) show as a dash with the reason.
                    _ if c.trim() == "nan" => {
                        o.push_str("<td class=\"n\" title=\"undefined (nan in the CSV), e.g. too few samples or coders\">—</td>");
                    }
                    _ if c.trim() == "--" => o.push_str("<td class=\"n\">—</td>"),
                    _ => {
                        let _ = write!(o, "<td class=\"n\">{}</td>", h(c));
                    }
                }
            } else {
                let _ = write!(o, "<td>{}</td>", h(&round_listed(c)));
            }
        }
        o.push_str("</tr>\n");
    }
    o.push_str("</tbody></table></div>\n");
    if t.rows.len() > cap {
        let _ = write!(
            o,
            "<p class=\"muted\">{} more rows in <code>data/{}.csv</code>.</p>",
            t.rows.len() - cap,
            h(&t.name)
        );
    }
}

fn other_tables(o: &mut String, input: &ReportInput) {
    const SHOWN: &[&str] = &[
        "model_disclosure_summary",
        "owned_disclosure_by_question_lab_wide",
        "lab_question_owned_disclosure",
        "lexical_trace_by_posture",
        "lexical_trace_by_lab",
        "lexical_trace_breakthroughs",
        "coder_support_by_condition",
    ];
    o.push_str("<section id=\"tables\"><h2>Other tables</h2><p class=\"muted\">Every other table the analysis wrote (first 200 rows each; all rows in <code>data/</code> as CSV and JSON).</p>\n");
    for (name, t) in &input.tables {
        if SHOWN.contains(&name.as_str()) || name.starts_with("reliability") {
            continue;
        }
        let _ = write!(
            o,
            "<details><summary><code>{}.csv</code> — {}</summary>",
            h(name),
            crate::text::count(t.rows.len(), "row")
        );
        generic_table(o, t, 200);
        o.push_str("</details>\n");
    }
    o.push_str("</section>\n");
}

fn provenance(o: &mut String, input: &ReportInput, study: &Study<'_>) {
    o.push_str("<section id=\"provenance\"><h2>Provenance</h2>\n");
    let _ = write!(
        o,
        "<p>Code source: <b>{}</b></p>",
        h(&study.source_description())
    );
    match &input.provenance {
        Some(p) => {
            let _ = write!(
                o,
                "<p>vuf version: <code>{}</code> · analysed rows: {} · excluded rows: {}</p>",
                h(&p.vuf_version),
                p.n_rows.map(|n| n.to_string()).unwrap_or_else(|| "—".into()),
                p.n_excluded.map(|n| n.to_string()).unwrap_or_else(|| "—".into())
            );
            if p.inputs.is_empty() {
                o.push_str("<p class=\"muted\">No imported input files: the samples were collected by vuf itself (each trace records its provider, model and settings).</p>");
            } else {
                o.push_str("<table><thead><tr><th>input</th><th class=\"n\">rows</th><th>sha256</th></tr></thead><tbody>");
            }
            for i in &p.inputs {
                let _ = write!(
                    o,
                    "<tr><td>{}</td><td class=\"n\">{}</td><td><code>{}</code></td></tr>",
                    h(&i.name),
                    i.rows.map(|n| n.to_string()).unwrap_or_default(),
                    h(&i.sha256)
                );
            }
            if !p.inputs.is_empty() {
                o.push_str("</tbody></table>");
            }
            if !p.other.is_empty() {
                o.push_str("<table><tbody>");
                for (k, v) in &p.other {
                    let _ = write!(o, "<tr><th>{}</th><td><code>{}</code></td></tr>", h(k), h(v));
                }
                o.push_str("</tbody></table>");
            }
        }
        None => o.push_str("<p class=\"muted\"><code>analysis.json</code> is missing: no input hashes or version are known.</p>"),
    }
    let _ = writeln!(
        o,
        "<p class=\"muted\">Analysis directory: <code>{}</code></p></section>",
        h(&input.dir.display().to_string())
    );
}

fn sample_block(o: &mut String, s: &Sample, show_model: bool) {
    let class = POSTURES
        .iter()
        .find(|p| **p == s.value_holding)
        .copied()
        .unwrap_or("other");
    let _ = write!(
        o,
        "<div class=\"example {class}\"><div class=\"meta\">{}<code>{}</code> · cell <code>{}</code> · {} · consensus <b>{}</b> (support {}) · label {}{}</div>",
        if show_model { format!("<b>{}</b> · ", h(&s.model)) } else { String::new() },
        h(&s.layered_id),
        h(&s.cell),
        h(&s.condition),
        h(&s.value_holding),
        s.value_holding_support.map(|n| n.to_string()).unwrap_or_else(|| "?".into()),
        h(&s.collapsed_primary_label),
        s.confidence.map(|c| format!(" · confidence {c:.2}")).unwrap_or_default(),
    );
    let total = s.response.chars().count();
    let shown: String = s.response.chars().take(MAX_RESPONSE_CHARS).collect();
    let preview: String = s
        .response
        .chars()
        .take(140)
        .collect::<String>()
        .replace('\n', " ");
    let _ = write!(
        o,
        "<details><summary>{}{}</summary><div class=\"resp\">{}{}</div></details>",
        h(&preview),
        if total > 140 { "…" } else { "" },
        h(&shown),
        if total > MAX_RESPONSE_CHARS {
            format!("\n\n[cut at {MAX_RESPONSE_CHARS} of {total} characters; full text in the analysis directory's samples.jsonl]")
        } else {
            String::new()
        }
    );
    if !s.coder_votes.is_empty() {
        o.push_str("<table class=\"votes\"><thead><tr><th>coder</th><th>label</th><th>value holding</th><th>notes</th></tr></thead><tbody>");
        for v in &s.coder_votes {
            let _ = write!(
                o,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                h(&v.coder),
                h(&v.label),
                h(&v.value_holding),
                h(&v.notes)
            );
        }
        o.push_str("</tbody></table>");
    } else {
        o.push_str("<p class=\"meta\">No per-coder votes in samples.jsonl.</p>");
    }
    o.push_str("</div>\n");
}

fn disagreements(o: &mut String, study: &Study<'_>, opts: &ReportOptions) {
    let all = study.disagreements();
    let _ = writeln!(
        o,
        "<section id=\"disagreements\"><h2>Disagreements</h2><p>{} of {} {} coders that split (value-holding support below the number of votes, or differing votes). Lowest support first, then model, then <code>layered_id</code>.</p>",
        all.len(),
        crate::text::count(study.input.samples.len(), "sample"),
        crate::text::verb(all.len(), "has", "have")
    );
    if study.input.samples.is_empty() {
        o.push_str("<p class=\"muted\"><code>samples.jsonl</code> is missing, so no sample-level view is available.</p>");
    }
    for s in all.iter().take(opts.max_disagreements) {
        sample_block(o, s, true);
    }
    if all.len() > opts.max_disagreements {
        let _ = write!(
            o,
            "<p class=\"note\">{} more disagreements are not shown here; all are in <code>data/samples.csv</code> (filter on <code>coders_split</code>; full texts in the analysis directory's <code>samples.jsonl</code>).</p>",
            all.len() - opts.max_disagreements
        );
    }
    o.push_str("</section>\n");
}

fn model_page(o: &mut String, study: &Study<'_>, m: &ModelView, opts: &ReportOptions) {
    let _ = writeln!(
        o,
        "<article class=\"model-page\" id=\"{}\"><h3>{} <span class=\"muted\">({})</span></h3><p><a href=\"../report.html#models\">← all models</a> · lab <b>{}</b> · family {} · release {} · G1/2 label <b>{}</b></p>",
        m.anchor,
        h(&m.model),
        h(&m.display_name),
        h(&m.lab),
        h(&m.family),
        if m.release_date.is_empty() { "unknown".to_string() } else { h(&m.release_date) },
        h(m.fam("cache_broken_stated_values").map(|r| r.label.as_str()).unwrap_or("—")),
    );
    o.push_str("<div class=\"wrap\"><table class=\"sortable\"><thead><tr><th>condition / family</th><th class=\"n\">n</th><th class=\"n\">eligible cells</th><th class=\"n\">owned %</th><th>interval</th><th class=\"n\">relocated %</th><th class=\"n\">recited %</th><th class=\"n\">indeterminate %</th><th class=\"n\">uncodeable %</th><th>label</th></tr></thead><tbody>");
    let rows = CONDITIONS
        .iter()
        .map(|c| (c.to_string(), m.conditions.get(*c)))
        .chain(
            FAMILIES
                .iter()
                .map(|(k, c, _)| (format!("{c} ({k})"), m.families.get(*k))),
        );
    for (name, r) in rows {
        let Some(r) = r else { continue };
        let _ = write!(
            o,
            "<tr><td>{}</td>{}{}{}<td>{}</td>{}{}{}{}<td>{}</td></tr>",
            h(&name),
            int_td(r.n_valid),
            int_td(r.eligible_cells),
            num_td(r.rates[0]),
            ci_text(&r.owned_ci),
            num_td(r.rates[1]),
            num_td(r.rates[2]),
            num_td(r.rates[3]),
            num_td(r.rates[4]),
            h(&r.label)
        );
    }
    o.push_str("</tbody></table></div><p class=\"muted\">Sources: <code>model_question_owned_disclosure.csv</code>, <code>model_disclosure_summary.csv</code>.</p>");
    if !m.cells.is_empty() {
        o.push_str("<h4>Cells</h4><table><thead><tr><th>cell</th><th class=\"n\">samples</th></tr></thead><tbody>");
        for (c, n) in &m.cells {
            let _ = write!(o, "<tr><td>{}</td><td class=\"n\">{n}</td></tr>", h(c));
        }
        o.push_str("</tbody></table>");
    }
    o.push_str("<h4>Example responses by posture</h4><p class=\"muted\">The first samples by <code>layered_id</code> within each posture.</p>");
    for (posture, picks) in study.examples(&m.model, opts.examples_per_posture) {
        if picks.is_empty() {
            continue;
        }
        let _ = write!(o, "<h5>{}</h5>", h(posture));
        for s in picks {
            sample_block(o, s, false);
        }
    }
    o.push_str("</article>\n");
}

/// Standard base64 (RFC 4648) of bytes, for the CSP script hash.
pub fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_rfc4648_vectors() {
        assert_eq!(super::base64(b""), "");
        assert_eq!(super::base64(b"f"), "Zg==");
        assert_eq!(super::base64(b"fo"), "Zm8=");
        assert_eq!(super::base64(b"foo"), "Zm9v");
        assert_eq!(super::base64(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn listed_numbers_are_rounded_for_display_only() {
        assert_eq!(
            super::round_listed("50.0|27.424242424242422|53.270440251572325"),
            "50.0|27.42|53.27"
        );
        assert_eq!(super::round_listed("glm-4-5|glm-4-6"), "glm-4-5|glm-4-6");
        assert_eq!(
            super::round_listed("27.424242424242422"),
            "27.424242424242422"
        );
    }
}
