//! vuf's tables for the frozen criteria the published scripts do not output (PROTOCOL 7.16):
//! Wilson intervals, cell-bootstrap intervals, model-level sample-weighted sensitivity, lab
//! x family means, corpus headline means, the 3/3-support sensitivity and chance-corrected
//! inter-coder agreement (PROTOCOL 7.12).
//!
//! The 3/3 sensitivity keeps only rows with `value_holding_support == 3` and then applies the
//! primary rule unchanged (>= 10-row cells, unweighted cell means), so a cell can drop below
//! the minimum in the subset; `headline_means` holds the corpus means for both subsets.

#![allow(clippy::needless_range_loop)] // five holdings indexed in parallel arrays

use crate::protocol::{Family, PostureLabel, ValueHolding};

use super::bootstrap::cell_bootstrap;
use super::input::{Prepared, Sample};
use super::published::lab_table;
use super::rates::{mean, unit_rate, Counts, Unit, UnitRate};
use super::reliability::{cohen_kappa, fleiss_kappa, krippendorff_alpha_nominal};
use super::table::{Table, Value};
use super::wilson::wilson;
use super::{Analysis, AnalyzeOptions, Part};

const H3: [usize; 3] = [0, 1, 2];

fn unit_cols(t: &[&str]) -> Vec<String> {
    t.iter().map(|s| s.to_string()).collect()
}

pub(crate) fn build(
    a: &Analysis,
    prep: &Prepared,
    by_model: &[Vec<&Sample>],
    opts: &AnalyzeOptions,
) -> Part {
    // 3/3 support sensitivity.
    let mut s3_rates: Vec<UnitRate> = Vec::new();
    for (m, rows) in by_model.iter().enumerate() {
        let rows3: Vec<&Sample> = rows
            .iter()
            .copied()
            .filter(|s| s.c.value_holding_support == 3)
            .collect();
        for f in Family::ALL {
            s3_rates.push(unit_rate(m, Unit::Family(f), &rows3));
        }
    }
    // The model bootstraps of the headline means are a third of this part's work: they
    // run beside the cell bootstraps; the tables keep their order.
    let (head, mut tables) = std::thread::scope(|scope| {
        let head = scope.spawn(|| {
            let mut all = headline(&a.model_families, "all", opts);
            all.rows
                .append(&mut headline(&s3_rates, "support3", opts).rows);
            all
        });
        let tables = vec![
            intervals(a),
            bootstrap(a, opts),
            sample_weighted(a),
            lab_table(&a.lab_families, "lab_family_owned_disclosure", true),
        ];
        (super::join(head), tables)
    });
    tables.push(head);
    let mut s3 = family_rate_table(a, &s3_rates, "support3_sensitivity");
    s3.columns.push("subset".into());
    for r in s3.rows.iter_mut() {
        r.push("value_holding_support == 3".into());
    }
    tables.push(s3);
    tables.extend(reliability(prep));
    Part::tables(tables)
}

/// The method, replicates and seed cells of a bootstrapped row.
fn bootstrap_method(method: &str, opts: &AnalyzeOptions) -> [Value; 3] {
    [
        method.into(),
        opts.bootstrap_replicates.into(),
        Value::Int(opts.seed as i64),
    ]
}

fn intervals(a: &Analysis) -> Table {
    let mut cols = unit_cols(&["model", "lab", "unit_type", "unit", "n", "pooled_over"]);
    for h in ValueHolding::ALL {
        cols.push(format!("n_{h}"));
        cols.push(format!("{h}_rate_pooled"));
        cols.push(format!("{h}_ci_low"));
        cols.push(format!("{h}_ci_high"));
    }
    let mut t = Table::with_columns("model_family_intervals", cols);
    for r in a.model_conditions.iter().chain(&a.model_families) {
        let m = &a.models[r.model];
        // Same rows as the primary rate; with no eligible cell, all rows (small-n caveat).
        let (cnt, over) = if r.eligible_cells > 0 {
            (
                Counts {
                    n: r.n_valid,
                    k: r.counts,
                },
                "eligible_cells",
            )
        } else {
            (r.all, "all_rows_small_n")
        };
        let mut row: Vec<Value> = vec![
            m.model.as_str().into(),
            m.lab.as_str().into(),
            r.unit.kind().into(),
            r.unit.as_str().into(),
            cnt.n.into(),
            over.into(),
        ];
        let rates = cnt.rates();
        for h in 0..5 {
            let (lo, hi) = wilson(cnt.k[h], cnt.n);
            row.extend([
                cnt.k[h].into(),
                Value::Float(rates[h]),
                Value::Float(lo),
                Value::Float(hi),
            ]);
        }
        t.push(row);
    }
    t
}

fn bootstrap(a: &Analysis, opts: &AnalyzeOptions) -> Table {
    let mut cols = unit_cols(&[
        "model",
        "lab",
        "condition_family",
        "eligible_cells",
        "method",
        "replicates",
        "seed",
    ]);
    for h in H3 {
        let h = ValueHolding::ALL[h];
        cols.push(format!("{h}_rate"));
        cols.push(format!("{h}_ci_low"));
        cols.push(format!("{h}_ci_high"));
    }
    cols.push("caveat".into());
    let mut t = Table::with_columns("bootstrap_intervals", cols);
    for r in &a.model_families {
        let m = &a.models[r.model];
        let mut row: Vec<Value> = vec![
            m.model.as_str().into(),
            m.lab.as_str().into(),
            r.unit.as_str().into(),
            r.eligible_cells.into(),
        ];
        match cell_bootstrap(&r.cell_rates, opts.bootstrap_replicates, opts.seed) {
            Some(ci) => {
                row.extend(bootstrap_method("cell_bootstrap_percentile", opts));
                for h in H3 {
                    row.extend([
                        Value::Float(r.rates[h]),
                        Value::Float(ci[h].low),
                        Value::Float(ci[h].high),
                    ]);
                }
                row.push("".into());
            }
            None => {
                let cnt = if r.eligible_cells > 0 {
                    Counts {
                        n: r.n_valid,
                        k: r.counts,
                    }
                } else {
                    r.all
                };
                row.extend(["wilson_pooled_samples".into(), Value::Empty, Value::Empty]);
                for h in H3 {
                    let (lo, hi) = wilson(cnt.k[h], cnt.n);
                    row.extend([Value::Float(r.rates[h]), Value::Float(lo), Value::Float(hi)]);
                }
                row.push(
                    format!(
                        "fewer than 3 eligible cells ({}): no cell bootstrap; Wilson over pooled samples",
                        r.eligible_cells
                    )
                    .into(),
                );
            }
        }
        t.push(row);
    }
    t
}

fn sample_weighted(a: &Analysis) -> Table {
    let mut cols = unit_cols(&["model", "lab", "unit_type", "unit", "n_valid", "n_cells"]);
    for h in ValueHolding::ALL {
        cols.push(format!("n_{h}"));
    }
    for h in ValueHolding::ALL {
        cols.push(format!("{h}_rate_sample_weighted"));
    }
    cols.push("analysis".into());
    let mut t = Table::with_columns("model_sample_weighted", cols);
    for r in a.model_conditions.iter().chain(&a.model_families) {
        let m = &a.models[r.model];
        let mut row: Vec<Value> = vec![
            m.model.as_str().into(),
            m.lab.as_str().into(),
            r.unit.kind().into(),
            r.unit.as_str().into(),
            r.all.n.into(),
            (r.eligible_cells + r.excluded_small_cells).into(),
        ];
        row.extend(r.all.k.iter().map(|k| Value::from(*k)));
        row.extend(r.all.rates().iter().map(|x| Value::Float(*x)));
        row.push("sensitivity: pooled over all valid cells".into());
        t.push(row);
    }
    t
}

fn family_rate_table(a: &Analysis, src: &[UnitRate], name: &str) -> Table {
    let mut cols = unit_cols(&[
        "model",
        "lab",
        "condition_family",
        "n_valid",
        "eligible_cells",
        "excluded_small_cells",
    ]);
    for h in ValueHolding::ALL {
        cols.push(format!("{h}_rate"));
    }
    for h in ValueHolding::ALL {
        cols.push(format!("n_{h}"));
    }
    cols.push("label".into());
    let mut t = Table::with_columns(name, cols);
    for r in src {
        let m = &a.models[r.model];
        let mut row: Vec<Value> = vec![
            m.model.as_str().into(),
            m.lab.as_str().into(),
            r.unit.as_str().into(),
            r.n_valid.into(),
            r.eligible_cells.into(),
            r.excluded_small_cells.into(),
        ];
        row.extend(r.rates.iter().map(|x| Value::Float(*x)));
        row.extend(r.counts.iter().map(|x| Value::from(*x)));
        row.push(r.label.as_str().into());
        t.push(row);
    }
    t
}

/// Corpus-level headline: unweighted mean over models with eligible cells (PROTOCOL 7.4).
/// Corpus headline: the unweighted mean over models with an eligible cell (as published),
/// plus a model bootstrap of that mean (vuf's addition, not in the paper): the same
/// procedure as the cell bootstrap (`bootstrap` module doc) with models as the resampled
/// units, in model-key order, so it treats the models as a sample from a population of
/// models. Needs at least 3 models; the interval columns are empty otherwise.
fn headline(src: &[UnitRate], subset: &str, opts: &AnalyzeOptions) -> Table {
    let mut cols = unit_cols(&["subset", "condition_family", "n_models"]);
    for h in ValueHolding::ALL {
        cols.push(format!("{h}_rate_model_mean"));
    }
    cols.extend(unit_cols(&["interval_method", "replicates", "seed"]));
    for h in H3 {
        cols.push(format!("{}_ci_low", ValueHolding::ALL[h]));
        cols.push(format!("{}_ci_high", ValueHolding::ALL[h]));
    }
    let mut t = Table::with_columns("headline_means", cols);
    for f in Family::ALL {
        let rs: Vec<&UnitRate> = src
            .iter()
            .filter(|r| r.unit == Unit::Family(f) && r.eligible_cells > 0)
            .collect();
        let mut row: Vec<Value> = vec![subset.into(), f.as_str().into(), rs.len().into()];
        for h in 0..5 {
            row.push(Value::Float(mean(rs.iter().map(|r| r.rates[h]))));
        }
        let units: Vec<[f64; 5]> = rs.iter().map(|r| r.rates).collect();
        match cell_bootstrap(&units, opts.bootstrap_replicates, opts.seed) {
            Some(ci) => {
                row.extend(bootstrap_method("model_bootstrap_percentile", opts));
                for h in H3 {
                    row.extend([Value::Float(ci[h].low), Value::Float(ci[h].high)]);
                }
            }
            None => {
                row.extend([
                    "fewer than 3 models: no interval".into(),
                    Value::Empty,
                    Value::Empty,
                ]);
                row.extend(std::iter::repeat_n(Value::Empty, 2 * H3.len()));
            }
        }
        t.push(row);
    }
    t
}

/// Coder keys in first-appearance order over all votes.
fn coders(samples: &[&Sample]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for s in samples {
        for v in &s.c.coder_votes {
            if !out.contains(&v.coder) {
                out.push(v.coder.clone());
            }
        }
    }
    out
}

type Extract = fn(&crate::protocol::CoderVote) -> Option<usize>;

fn vh_index(v: &crate::protocol::CoderVote) -> Option<usize> {
    v.value_holding.map(super::input::holding_index)
}

fn label_index(v: &crate::protocol::CoderVote) -> Option<usize> {
    v.label
        .and_then(|l| PostureLabel::ALL.iter().position(|x| *x == l))
}

fn reliability(prep: &Prepared) -> Vec<Table> {
    let mut agree = Table::new(
        "reliability_agreement",
        &[
            "variable",
            "group",
            "n_units",
            "n_coders",
            "n_units_complete",
            "fleiss_kappa",
            "fleiss_p_bar",
            "fleiss_p_e",
            "krippendorff_alpha_nominal",
            "n_units_pairable",
            "note",
        ],
    );
    let mut pairs = Table::new(
        "reliability_pairwise_cohen",
        &[
            "variable",
            "group",
            "coder_a",
            "coder_b",
            "n_paired",
            "observed_agreement",
            "cohen_kappa",
            "n_skipped_by_design",
            "note",
        ],
    );
    let mut groups: Vec<(String, Vec<&Sample>)> = Family::ALL
        .iter()
        .map(|f| {
            (
                f.as_str().to_string(),
                prep.samples
                    .iter()
                    .filter(|s| s.c.condition.family() == *f)
                    .collect(),
            )
        })
        .collect();
    groups.push(("all".into(), prep.samples.iter().collect()));
    let vars: [(&str, Extract, usize); 2] = [
        ("value_holding", vh_index, 5),
        (
            "collapsed_primary_label",
            label_index,
            PostureLabel::ALL.len(),
        ),
    ];
    for (var, ext, k) in vars {
        for (g, samples) in &groups {
            let cs = coders(samples);
            let units: Vec<Vec<Option<usize>>> = samples
                .iter()
                .map(|s| {
                    cs.iter()
                        .map(|c| s.c.coder_votes.iter().find(|v| &v.coder == c).and_then(ext))
                        .collect()
                })
                .collect();
            let complete: Vec<Vec<usize>> = units
                .iter()
                .filter(|u| !u.is_empty() && u.iter().all(|v| v.is_some()))
                .map(|u| {
                    let mut c = vec![0; k];
                    for v in u.iter().flatten() {
                        c[*v] += 1;
                    }
                    c
                })
                .collect();
            let pairable = units
                .iter()
                .filter(|u| u.iter().flatten().count() >= 2)
                .count();
            // Sequential majority leaves a coder out exactly where the others agreed, so
            // its units are missing not at random: the complete units are the disputed
            // ones, and Fleiss on them would describe those alone. Alpha takes the skips
            // as missing values (its nominal form allows them) and says it is biased.
            let skipped = samples
                .iter()
                .filter(|s| !s.c.skipped_coders.is_empty())
                .count();
            let mut fl = fleiss_kappa(&complete);
            if skipped > 0 {
                fl.kappa = f64::NAN;
                fl.p_bar = f64::NAN;
                fl.p_e = f64::NAN;
            }
            let alpha = krippendorff_alpha_nominal(&units, k);
            let note = if skipped > 0 {
                format!(
                    "{skipped} units coded by sequential majority (a coder skipped by design because the others agreed): \
                     Fleiss undefined (NaN), alpha treats the skips as missing values and is biased toward disagreement, \
                     and only the pair of the two coders always asked is unbiased; code with every coder for reliability"
                )
            } else if cs.is_empty() {
                "no per-coder votes in this source: statistics undefined (NaN)".to_string()
            } else if cs.len() < 2 {
                "fewer than 2 coders: statistics undefined (NaN)".to_string()
            } else {
                "Fleiss on units coded by every coder; alpha with missing votes".to_string()
            };
            agree.push(vec![
                var.into(),
                g.as_str().into(),
                samples.len().into(),
                cs.len().into(),
                complete.len().into(),
                Value::Float(fl.kappa),
                Value::Float(fl.p_bar),
                Value::Float(fl.p_e),
                Value::Float(alpha),
                pairable.into(),
                note.into(),
            ]);
            for i in 0..cs.len() {
                for j in (i + 1)..cs.len() {
                    let a: Vec<Option<usize>> = units.iter().map(|u| u[i]).collect();
                    let b: Vec<Option<usize>> = units.iter().map(|u| u[j]).collect();
                    let (kappa, n) = cohen_kappa(&a, &b, k);
                    let same = a
                        .iter()
                        .zip(&b)
                        .filter(|(x, y)| x.is_some() && x == y)
                        .count();
                    let po = if n == 0 {
                        f64::NAN
                    } else {
                        same as f64 / n as f64
                    };
                    // Units without this pair's two votes because sequential majority
                    // did not ask one of the two coders (the coders asked agreed).
                    let in_pair = |c: &String| *c == cs[i] || *c == cs[j];
                    let skipped_pair = samples
                        .iter()
                        .filter(|s| s.c.skipped_coders.iter().any(in_pair))
                        .count();
                    let not_asked: Vec<&str> = [&cs[i], &cs[j]]
                        .into_iter()
                        .filter(|c| samples.iter().any(|s| s.c.skipped_coders.contains(c)))
                        .map(String::as_str)
                        .collect();
                    let note = if skipped_pair > 0 {
                        format!(
                            "{} without both votes: sequential majority did not ask {} where the \
                             coders asked agreed, so n_paired covers only the units the others \
                             disputed and kappa is not an estimate over all units",
                            crate::text::count(skipped_pair, "unit"),
                            not_asked.join(" or ")
                        )
                    } else if skipped > 0 {
                        "both coders asked on every unit (sequential majority skipped only other \
                         coders): unbiased"
                            .to_string()
                    } else {
                        String::new()
                    };
                    pairs.push(vec![
                        var.into(),
                        g.as_str().into(),
                        cs[i].as_str().into(),
                        cs[j].as_str().into(),
                        n.into(),
                        Value::Float(po),
                        Value::Float(kappa),
                        skipped_pair.into(),
                        note.into(),
                    ]);
                }
            }
        }
    }
    // The support distribution of PROTOCOL 7.12 (2) is the published
    // coder_support_by_condition table.
    vec![agree, pairs]
}
