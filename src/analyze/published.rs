//! The tables and texts the published `canonical_analysis.py` writes (PROTOCOL 7.14), with
//! the same file names, columns, row orders and number formats, plus the always-written
//! `exclusions.csv` (header only when empty; the published code writes it only when
//! non-empty).

use std::fmt::Write as _;

use crate::protocol::models::MODEL_ALIASES;
use crate::protocol::{CodeSource, Condition, Family, ValueHolding};

use super::input::Prepared;
use super::pyfmt::{pct1, thousands};
use super::rates::{LabRate, Unit, UnitRate};
use super::table::{Table, Value};
use super::{Analysis, AnalyzeOptions, Part};

fn h_names(suffix: &str, prefix: &str) -> Vec<String> {
    ValueHolding::ALL
        .iter()
        .map(|h| format!("{prefix}{}{suffix}", h.as_str()))
        .collect()
}

pub(crate) fn build(a: &Analysis, prep: &Prepared, opts: &AnalyzeOptions) -> Part {
    let mut tables = vec![
        support(prep),
        model_table(a, false),
        model_table(a, true),
        lab_table(&a.lab_conditions, "lab_question_owned_disclosure", false),
        model_wide(a),
        lab_wide(a),
    ];
    let trends = lab_trends(a);
    tables.push(trends.clone());
    let mut ex = Table::new("exclusions", &["layered_id", "reason"]);
    for e in &a.exclusions {
        ex.push(vec![e.layered_id.as_str().into(), e.reason.as_str().into()]);
    }
    tables.push(ex);
    let texts = vec![
        ("data_snapshot.md".to_string(), snapshot(a, prep, opts)),
        ("results_summary.md".to_string(), results_summary(a)),
        (
            "table_owned_disclosure_model_question.tex".to_string(),
            tex_model_question(a),
        ),
        ("table_owned_disclosure_model.tex".to_string(), tex_model(a)),
        (
            "table_owned_disclosure_lab_question.tex".to_string(),
            tex_lab_question(a),
        ),
        ("figures_lab_trends.tex".to_string(), tex_figures(&trends)),
    ];
    Part { tables, texts }
}

fn support(prep: &Prepared) -> Table {
    let mut t = Table::new(
        "coder_support_by_condition",
        &["group_type", "group", "support", "n", "rate"],
    );
    for kind in ["condition", "condition_family"] {
        // groups in first-appearance order; supports ascending.
        let mut groups: Vec<(&'static str, std::collections::BTreeMap<u8, usize>, usize)> =
            Vec::new();
        for s in &prep.samples {
            let g = if kind == "condition" {
                s.c.condition.as_str()
            } else {
                s.c.condition.family().as_str()
            };
            let idx = match groups.iter().position(|(x, _, _)| *x == g) {
                Some(i) => i,
                None => {
                    groups.push((g, Default::default(), 0));
                    groups.len() - 1
                }
            };
            *groups[idx].1.entry(s.c.value_holding_support).or_insert(0) += 1;
            groups[idx].2 += 1;
        }
        for (g, supports, total) in groups {
            for (sup, n) in supports {
                t.push(vec![
                    kind.into(),
                    g.into(),
                    Value::Int(sup as i64),
                    n.into(),
                    Value::Float(100.0 * n as f64 / total as f64),
                ]);
            }
        }
    }
    t
}

fn model_table(a: &Analysis, family: bool) -> Table {
    let mut cols: Vec<String> = ["model", "display_name", "lab", "family", "release_date"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    if family {
        cols.push("condition_family".into());
        cols.push("conditions".into());
    } else {
        cols.push("condition".into());
        cols.push("condition_family".into());
    }
    for c in ["n_valid", "eligible_cells", "excluded_small_cells"] {
        cols.push(c.into());
    }
    cols.extend(h_names("_rate", ""));
    cols.extend(h_names("", "n_"));
    cols.push("label".into());
    let name = if family {
        "model_disclosure_summary"
    } else {
        "model_question_owned_disclosure"
    };
    let mut t = Table::with_columns(name, cols);
    let src = if family {
        &a.model_families
    } else {
        &a.model_conditions
    };
    for r in src {
        let m = &a.models[r.model];
        let mut row: Vec<Value> = vec![
            m.model.as_str().into(),
            m.display_name.as_str().into(),
            m.lab.as_str().into(),
            m.family.as_str().into(),
            m.release_date.as_str().into(),
        ];
        match r.unit {
            Unit::Family(f) => {
                row.push(f.as_str().into());
                row.push(f.conditions_label().into());
            }
            Unit::Condition(c) => {
                row.push(c.as_str().into());
                row.push(c.family().as_str().into());
            }
        }
        row.push(r.n_valid.into());
        row.push(r.eligible_cells.into());
        row.push(r.excluded_small_cells.into());
        row.extend(r.rates.iter().map(|x| Value::Float(*x)));
        row.extend(r.counts.iter().map(|x| Value::from(*x)));
        row.push(r.label.as_str().into());
        t.push(row);
    }
    t
}

/// Lab x unit table; `family` picks the `condition_family, conditions` key columns.
pub(crate) fn lab_table(src: &[LabRate], name: &str, family: bool) -> Table {
    let mut cols: Vec<String> = vec!["lab".into()];
    if family {
        cols.push("condition_family".into());
        cols.push("conditions".into());
    } else {
        cols.push("condition".into());
        cols.push("condition_family".into());
    }
    cols.push("n_models".into());
    cols.push("n_valid".into());
    cols.extend(h_names("_rate_model_mean", ""));
    cols.extend(h_names("_rate_sample_weighted", ""));
    let mut t = Table::with_columns(name, cols);
    for r in src {
        let mut row: Vec<Value> = vec![r.lab.as_str().into()];
        match r.unit {
            Unit::Family(f) => {
                row.push(f.as_str().into());
                row.push(f.conditions_label().into());
            }
            Unit::Condition(c) => {
                row.push(c.as_str().into());
                row.push(c.family().as_str().into());
            }
        }
        row.push(r.n_models.into());
        row.push(r.n_valid.into());
        row.extend(r.model_mean.iter().map(|x| Value::Float(*x)));
        row.extend(r.sample_weighted.iter().map(|x| Value::Float(*x)));
        t.push(row);
    }
    t
}

fn pct_or_dash(x: f64) -> String {
    if x.is_nan() {
        "--".into()
    } else {
        pct1(x)
    }
}

fn model_wide(a: &Analysis) -> Table {
    let mut cols: Vec<String> = ["model", "display_name", "lab", "family", "release_date"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    for c in Condition::REPORT_ORDER {
        cols.push(format!("{c}_owned_pct"));
        cols.push(format!("{c}_n"));
    }
    let mut t = Table::with_columns("owned_disclosure_by_question_model_wide", cols);
    for (i, m) in a.models.iter().enumerate() {
        let mut row: Vec<Value> = vec![
            m.model.as_str().into(),
            m.display_name.as_str().into(),
            m.lab.as_str().into(),
            m.family.as_str().into(),
            m.release_date.as_str().into(),
        ];
        for r in a.model_conditions.iter().filter(|r| r.model == i) {
            row.push(pct_or_dash(r.rates[0]).into());
            row.push(r.n_valid.into());
        }
        t.push(row);
    }
    t
}

fn lab_condition<'a>(a: &'a Analysis, lab: &str, c: Condition) -> Option<&'a LabRate> {
    a.lab_conditions
        .iter()
        .find(|r| r.lab == lab && r.unit == Unit::Condition(c))
}

fn lab_names(a: &Analysis) -> Vec<String> {
    let mut labs: Vec<String> = a.lab_conditions.iter().map(|r| r.lab.clone()).collect();
    labs.dedup();
    labs
}

fn lab_wide(a: &Analysis) -> Table {
    let mut cols: Vec<String> = vec!["lab".into(), "n_models_max".into()];
    for c in Condition::REPORT_ORDER {
        cols.push(format!("{c}_owned_pct_model_mean"));
        cols.push(format!("{c}_n_models"));
    }
    let mut t = Table::with_columns("owned_disclosure_by_question_lab_wide", cols);
    for lab in lab_names(a) {
        let rs: Vec<&LabRate> = Condition::REPORT_ORDER
            .iter()
            .filter_map(|c| lab_condition(a, &lab, *c))
            .collect();
        let max = rs.iter().map(|r| r.n_models).max().unwrap_or(0);
        let mut row: Vec<Value> = vec![lab.as_str().into(), max.into()];
        for r in rs {
            row.push(pct_or_dash(r.model_mean[0]).into());
            row.push(r.n_models.into());
        }
        t.push(row);
    }
    t
}

fn is_iso_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
}

/// Lowercase, non-alphanumeric runs to `-`, trimmed (PROTOCOL 7.13).
pub fn slug(s: &str) -> String {
    let mut out = String::new();
    let mut dash = false;
    for ch in s.chars() {
        if ch.is_ascii_alphanumeric() {
            out.push(ch.to_ascii_lowercase());
            dash = false;
        } else if !dash {
            out.push('-');
            dash = true;
        }
    }
    out.trim_matches('-').to_string()
}

fn family_rate(a: &Analysis, model: usize, f: Family) -> Option<&UnitRate> {
    a.model_families
        .iter()
        .find(|r| r.model == model && r.unit == Unit::Family(f))
}

fn lab_trends(a: &Analysis) -> Table {
    let mut t = Table::new("lab_trend_figures", &["lab", "n_models", "models"]);
    for lab in lab_names(a) {
        let mut ms: Vec<(&str, &str)> = a
            .models
            .iter()
            .enumerate()
            .filter(|(i, m)| {
                m.lab == lab
                    && is_iso_date(&m.release_date)
                    && [Family::DirectStatedValues, Family::CacheBrokenStatedValues]
                        .iter()
                        .all(|f| family_rate(a, *i, *f).is_some_and(|r| r.eligible_cells > 0))
            })
            .map(|(_, m)| (m.release_date.as_str(), m.model.as_str()))
            .collect();
        ms.sort();
        if ms.len() >= 2 {
            let names: Vec<&str> = ms.iter().map(|(_, m)| *m).collect();
            t.push(vec![
                lab.as_str().into(),
                ms.len().into(),
                names.join("|").into(),
            ]);
        }
    }
    t
}

fn snapshot(a: &Analysis, prep: &Prepared, opts: &AnalyzeOptions) -> String {
    let mut s = String::new();
    // No clock and no git lookups: reruns on the same store write the same bytes, and
    // the input hashes below identify the data instead.
    let gen = opts.generated_at.clone().unwrap_or_else(|| {
        format!(
            "by vuf {} from code source `{}` (no timestamp, so reruns are byte-identical)",
            env!("CARGO_PKG_VERSION"),
            a.source.as_str()
        )
    });
    let _ = write!(
        s,
        "# Data snapshot — Values Under Fire\n\nGenerated: {gen}\n\n## Repositories\n\n\
         - values-under-fire: not recorded (vuf reads its store, not the repositories; the \
         input file hashes below identify the data)\n\
         - model-personality-analysis-corpus: not recorded\n\
         - model-personality-corpus-v2: not recorded\n\
         - corpus-v2 latest tag: not recorded\n\n## Input file hashes\n\n| file | rows | sha256 |\n|---|---:|---|\n"
    );
    for f in &a.provenance.inputs {
        let _ = writeln!(s, "| `{}` | {} | `{}` |", f.name, f.rows, f.sha256);
    }
    if a.provenance.inputs.is_empty() {
        s.push_str("| none: every sample was collected by vuf, none imported | | |\n");
    }
    let p = &a.provenance;
    let _ = write!(
        s,
        "\n## Join/exclusion counts\n\n- valid manifest rows: {}\n- invalid trace rows: {}\n- analysed rows after required joins: {}\n- exclusions beyond invalid traces: {}\n\n## Counts by condition\n\n| condition | rows |\n|---|---:|\n",
        thousands(p.n_manifest_rows),
        thousands(p.invalid_trace_rows),
        thousands(p.n_rows),
        thousands(p.n_excluded)
    );
    for c in Condition::ALL {
        let n = prep.samples.iter().filter(|x| x.c.condition == c).count();
        if n > 0 {
            let _ = writeln!(s, "| {c} | {} |", thousands(n));
        }
    }
    s.push_str("\n## Model alias normalization\n\nThe analysis aggregates known alternate labels for the same underlying model at model level, while preserving source cells in the tidy table.\n\n| source model | canonical model |\n|---|---|\n");
    for (from, to) in MODEL_ALIASES {
        let _ = writeln!(s, "| `{from}` | `{to}` |");
    }
    s.push_str("\n## Counts by lab\n\n| lab | models | rows |\n|---|---:|---:|\n");
    for lab in lab_names(a) {
        let models = a.models.iter().filter(|m| m.lab == lab).count();
        let rows = prep
            .samples
            .iter()
            .filter(|x| a.models[x.model].lab == lab)
            .count();
        let _ = writeln!(s, "| {lab} | {} | {} |", thousands(models), thousands(rows));
    }
    s
}

/// The text files vuf writes line for line as the published scripts do, each with the
/// script that its `Generated by` sentence names. vuf's files say vuf wrote them instead
/// ([`generated_by`]); every other byte is the published one.
pub const MIRRORED_TEXTS: [(&str, &str); 2] = [
    ("results_summary.md", CANONICAL_SCRIPT),
    ("lexical_trace_summary.md", LEXICAL_SCRIPT),
];

/// The published script behind `results_summary.md`.
pub(crate) const CANONICAL_SCRIPT: &str = "analysis/scripts/canonical_analysis.py";
/// The published script behind `lexical_trace_summary.md`.
pub(crate) const LEXICAL_SCRIPT: &str = "analysis/scripts/lexical_trace_summary.py";

/// The published `Generated by` sentence of a file that `script` wrote.
pub fn published_generated_by(script: &str) -> String {
    format!("Generated by `{script}`.")
}

/// vuf's `Generated by` sentence in place of [`published_generated_by`]: it also names
/// the codes the numbers come from, because the file's text is the published one whatever
/// coded the samples (offline codes are always marked as such, issue #6).
pub fn generated_by(script: &str, source: CodeSource) -> String {
    let codes = match source {
        CodeSource::Published => "the published consensus codes",
        CodeSource::Models => "vuf's consensus of the coder models",
        CodeSource::Offline => "the codes of vuf's built-in offline coder, not of the coder models",
        CodeSource::Cascade => {
            "a cascade: the offline coder's codes where it was confident, the coder models' consensus elsewhere"
        }
    };
    format!(
        "Generated by vuf {} (mirrors `{script}`) from {codes} (source `{}`).",
        env!("CARGO_PKG_VERSION"),
        source.as_str()
    )
}

fn results_summary(a: &Analysis) -> String {
    let fam_mean = |f: Family| {
        super::rates::mean(
            a.model_families
                .iter()
                .filter(|r| r.unit == Unit::Family(f) && r.eligible_cells > 0)
                .map(|r| r.rates[0]),
        )
    };
    // Line for line the published file, except that it says who wrote it.
    let mut s = format!(
        "# Results summary\n\n{}\n\n## Corpus-level model means\n\n",
        generated_by(CANONICAL_SCRIPT, a.source)
    );
    let _ = writeln!(
        s,
        "- Direct stated-values owned disclosure (CTRL1/CTRL2), mean across models: {}%.",
        pct1(fam_mean(Family::DirectStatedValues))
    );
    let _ = writeln!(
        s,
        "- Cache-broken stated-values owned disclosure (G1/G2), mean across models: {}%.",
        pct1(fam_mean(Family::CacheBrokenStatedValues))
    );
    let _ = writeln!(
        s,
        "- World-change prompt normative-wish owned posture (CTRL3/G3), mean across models: {}%.",
        pct1(fam_mean(Family::WorldChangePrompts))
    );
    s.push_str("\n## Strongly open/clamped label counts for G1/G2\n\n");
    let cb: Vec<&UnitRate> = a
        .model_families
        .iter()
        .filter(|r| r.unit == Unit::Family(Family::CacheBrokenStatedValues))
        .collect();
    let mut counts: std::collections::BTreeMap<&str, usize> = Default::default();
    for r in &cb {
        *counts.entry(r.label.as_str()).or_insert(0) += 1;
    }
    for (l, n) in counts {
        let _ = writeln!(s, "- {l}: {n}");
    }
    let direct = |m: usize| {
        family_rate(a, m, Family::DirectStatedValues)
            .map(|r| r.rates[0])
            .unwrap_or(f64::NAN)
    };
    // Descending, stable on the alphabetical model list, NaN last (pandas sort_values).
    let sorted_by = |h: usize| {
        let mut v = cb.clone();
        v.sort_by(|x, y| match (x.rates[h].is_nan(), y.rates[h].is_nan()) {
            (false, false) => y.rates[h].total_cmp(&x.rates[h]),
            (a1, b1) => a1.cmp(&b1),
        });
        v.truncate(15);
        v
    };
    s.push_str("\n## Top cache-broken owned-disclosure models\n\n| model | lab | G1/G2 owned % | CTRL1/2 owned % |\n|---|---|---:|---:|\n");
    for r in sorted_by(0) {
        let m = &a.models[r.model];
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} |",
            m.model,
            m.lab,
            pct1(r.rates[0]),
            pct1(direct(r.model))
        );
    }
    s.push_str(
        "\n## Most clamped under G1/G2\n\n| model | lab | G1/G2 recited % | G1/G2 owned % |\n|---|---|---:|---:|\n",
    );
    for r in sorted_by(2) {
        let m = &a.models[r.model];
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} |",
            m.model,
            m.lab,
            pct1(r.rates[2]),
            pct1(r.rates[0])
        );
    }
    s
}

fn by_lab_model(a: &Analysis) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..a.models.len()).collect();
    idx.sort_by(|x, y| {
        (&a.models[*x].lab, &a.models[*x].model).cmp(&(&a.models[*y].lab, &a.models[*y].model))
    });
    idx
}

fn tex_model_question(a: &Analysis) -> String {
    let head = "\\toprule\nModel & Lab & CTRL1 & CTRL2 & G1 & G2 & CTRL3 & G3 \\\\\n\\midrule\n";
    let mut s = format!(
        "\\begin{{longtable}}{{llrrrrrr}}\n\\caption{{Owned disclosure by question and model. Entries are model-level owned-disclosure percentages under the frozen cell-aggregation rule.}}\\label{{tab:owned-disclosure-model-question}}\\\\\n{head}\\endfirsthead\n{head}\\endhead\n"
    );
    for i in by_lab_model(a) {
        let m = &a.models[i];
        let vals: Vec<String> = a
            .model_conditions
            .iter()
            .filter(|r| r.model == i)
            .map(|r| pct_or_dash(r.rates[0]))
            .collect();
        let _ = writeln!(
            s,
            "{} & {} & {} \\\\",
            tex_escape(&m.model),
            tex_escape(&m.lab),
            vals.join(" & ")
        );
    }
    s.push_str("\\bottomrule\n\\end{longtable}\n");
    s
}

fn tex_model(a: &Analysis) -> String {
    let mut s = String::from("\\begin{table}[htbp]\n\\centering\n\\small\n\\caption{Owned disclosure by prompt family and model. Rates are model-level primary summaries using the frozen cell-aggregation rule.}\n\\label{tab:owned-disclosure-model}\n\\begin{tabular}{llrrrr}\n\\toprule\nModel & Lab & CTRL1/2 owned & G1/2 owned & World-change owned & $n$ \\\\\n\\midrule\n");
    for i in by_lab_model(a) {
        let m = &a.models[i];
        let fr: Vec<&UnitRate> = a.model_families.iter().filter(|r| r.model == i).collect();
        let n: usize = fr.iter().map(|r| r.n_valid).sum();
        let vals: Vec<String> = fr.iter().map(|r| pct_or_dash(r.rates[0])).collect();
        let _ = writeln!(
            s,
            "{} & {} & {} & {} \\\\",
            tex_escape(&m.model),
            tex_escape(&m.lab),
            vals.join(" & "),
            n
        );
    }
    s.push_str("\\bottomrule\n\\end{tabular}\n\\end{table}\n");
    s
}

fn tex_lab_question(a: &Analysis) -> String {
    let mut s = String::from("\\begin{table}[htbp]\n\\centering\n\\small\n\\caption{Owned disclosure by question, aggregated by lab. Entries are unweighted means of model-level owned-disclosure percentages.}\n\\label{tab:owned-disclosure-lab-question}\n\\begin{tabular}{lrrrrrr}\n\\toprule\nLab & CTRL1 & CTRL2 & G1 & G2 & CTRL3 & G3 \\\\\n\\midrule\n");
    for lab in lab_names(a) {
        let vals: Vec<String> = Condition::REPORT_ORDER
            .iter()
            .filter_map(|c| lab_condition(a, &lab, *c))
            .map(|r| pct_or_dash(r.model_mean[0]))
            .collect();
        let _ = writeln!(s, "{} & {} \\\\", tex_escape(&lab), vals.join(" & "));
    }
    s.push_str("\\bottomrule\n\\end{tabular}\n\\end{table}\n");
    s
}

/// Escape LaTeX specials in names (`&`, `%`, `_`, `#`); model keys and labs in the
/// published data contain none of these, so the published tables are unaffected.
fn tex_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        if matches!(ch, '&' | '%' | '_' | '#' | '$') {
            out.push('\\');
        }
        out.push(ch);
    }
    out
}

fn tex_figures(trends: &Table) -> String {
    let mut s = String::new();
    for row in &trends.rows {
        let lab = row[0].to_field();
        let sl = slug(&lab);
        let _ = write!(
            s,
            "\\begin{{figure}}[p]\n\\centering\n\\includegraphics[width=0.9\\linewidth]{{figures/lab_trend_{sl}.png}}\n\\caption{{{}: direct (CTRL1/CTRL2) and cache-broken (G1/G2) owned-disclosure rates over release time.}}\n\\label{{fig:lab-trend-{sl}}}\n\\end{{figure}}\n\\clearpage\n",
            tex_escape(&lab)
        );
    }
    s
}
