//! Honest evaluation: leave-one-model-out (LOMO) over the responding models of the
//! labelled data, never split by sample, so every score is on a model the coder never saw.
//! Hyperparameters are the constants of `train` (fixed a priori); nothing is chosen on the
//! held-out fold. Also computes the bar to beat: each coder model's agreement with the
//! majority of the OTHER two coders, from the per-coder records.
//!
//! Tie rule for the bar: when the other two coders disagree (1-1), the reference is the
//! vote of the first of them in the fixed order kimi-k2-6, glm-4-7, qwen3-6-35b-a3b, the
//! same rule PROTOCOL 5.7 uses to break ties; the report also gives kappa with those
//! samples excluded and how many there were.

use std::fmt::Write as _;

use super::cascade::{self, CascadePoint};
use super::data::{LabelledSample, CODER_KEYS};
use super::train::{prepare, train_on};
use super::{ModelError, OfflineCoder, OfflinePosture};
use crate::protocol::topics::taxonomy;
use crate::protocol::{Chain, PostureLabel, ValueHolding};

/// Agreement of predicted vs reference categories.
#[derive(Debug, Clone, PartialEq)]
pub struct Agreement {
    /// Category names (row/column order).
    pub names: Vec<&'static str>,
    /// `confusion[gold][pred]`.
    pub confusion: Vec<Vec<usize>>,
    /// Samples.
    pub n: usize,
    /// Share equal.
    pub accuracy: f64,
    /// Cohen's kappa.
    pub kappa: f64,
}

impl Agreement {
    /// From (gold, predicted) index pairs over `names`.
    pub fn new(names: Vec<&'static str>, pairs: &[(usize, usize)]) -> Self {
        let k = names.len();
        let mut confusion = vec![vec![0usize; k]; k];
        for &(g, p) in pairs {
            confusion[g][p] += 1;
        }
        let n = pairs.len();
        let nf = n.max(1) as f64;
        let po = (0..k).map(|i| confusion[i][i]).sum::<usize>() as f64 / nf;
        let pe: f64 = (0..k)
            .map(|i| {
                let row: usize = confusion[i].iter().sum();
                let col: usize = confusion.iter().map(|r| r[i]).sum();
                row as f64 / nf * (col as f64 / nf)
            })
            .sum();
        let kappa = if (1.0 - pe).abs() < 1e-12 {
            if po >= 1.0 {
                1.0
            } else {
                0.0
            }
        } else {
            (po - pe) / (1.0 - pe)
        };
        Agreement {
            names,
            confusion,
            n,
            accuracy: po,
            kappa,
        }
    }

    /// Precision and recall of category `i` (NaN when undefined).
    pub fn precision_recall(&self, i: usize) -> (f64, f64) {
        let tp = self.confusion[i][i] as f64;
        let pred: usize = self.confusion.iter().map(|r| r[i]).sum();
        let gold: usize = self.confusion[i].iter().sum();
        (tp / pred as f64, tp / gold as f64)
    }
}

fn label_ix(l: PostureLabel) -> usize {
    PostureLabel::ALL.iter().position(|x| *x == l).unwrap_or(0)
}
fn holding_ix(h: ValueHolding) -> usize {
    ValueHolding::ALL.iter().position(|x| *x == h).unwrap_or(0)
}
fn label_names() -> Vec<&'static str> {
    PostureLabel::ALL.iter().map(|l| l.as_str()).collect()
}
fn holding_names() -> Vec<&'static str> {
    ValueHolding::ALL.iter().map(|h| h.as_str()).collect()
}

/// One coder model's agreement with the other two.
#[derive(Debug, Clone)]
pub struct CoderBar {
    /// Coder key.
    pub coder: &'static str,
    /// Label vs reference (tie rule applied).
    pub label: Agreement,
    /// value_holding vs reference (tie rule applied).
    pub holding: Agreement,
    /// Label kappa with 1-1 splits of the other two excluded.
    pub label_kappa_no_ties: f64,
    /// Holding kappa with 1-1 splits excluded.
    pub holding_kappa_no_ties: f64,
    /// Samples where the other two split on the label.
    pub label_ties: usize,
    /// Samples where the other two split on value_holding.
    pub holding_ties: usize,
}

fn two_ref<T: Copy + PartialEq>(a: T, b: T) -> (T, bool) {
    (a, a != b)
}

/// Bars of the three coders over samples where all three records exist.
pub fn coder_bars(samples: &[LabelledSample]) -> Vec<CoderBar> {
    (0..3)
        .map(|k| {
            let others: Vec<usize> = (0..3).filter(|&o| o != k).collect();
            let (mut lp, mut hp, mut lp_nt, mut hp_nt) =
                (Vec::new(), Vec::new(), Vec::new(), Vec::new());
            let (mut lt, mut ht) = (0, 0);
            for s in samples {
                let (Some(l), Some(a), Some(b)) = (
                    s.coder_labels[k],
                    s.coder_labels[others[0]],
                    s.coder_labels[others[1]],
                ) else {
                    continue;
                };
                let (r, tie) = two_ref(a, b);
                lp.push((label_ix(r), label_ix(l)));
                if tie {
                    lt += 1;
                } else {
                    lp_nt.push((label_ix(r), label_ix(l)));
                }
                let (Some(h), Some(ha), Some(hb)) = (
                    s.coder_holdings[k],
                    s.coder_holdings[others[0]],
                    s.coder_holdings[others[1]],
                ) else {
                    continue;
                };
                let (r, tie) = two_ref(ha, hb);
                hp.push((holding_ix(r), holding_ix(h)));
                if tie {
                    ht += 1;
                } else {
                    hp_nt.push((holding_ix(r), holding_ix(h)));
                }
            }
            CoderBar {
                coder: CODER_KEYS[k],
                label: Agreement::new(label_names(), &lp),
                holding: Agreement::new(holding_names(), &hp),
                label_kappa_no_ties: Agreement::new(label_names(), &lp_nt).kappa,
                holding_kappa_no_ties: Agreement::new(holding_names(), &hp_nt).kappa,
                label_ties: lt,
                holding_ties: ht,
            }
        })
        .collect()
}

/// Micro/macro F1 of topic sets.
#[derive(Debug, Clone, PartialEq)]
pub struct TopicScores {
    /// Samples scored (those with a Layer A consensus record).
    pub n: usize,
    /// Pooled F1 over all (sample, topic) decisions.
    pub micro_f1: f64,
    /// Mean per-topic F1 over topics present at least once in the consensus.
    pub macro_f1: f64,
    /// Share of samples whose predicted set equals the consensus set.
    pub exact_match: f64,
    /// Per topic: (chain, key, support, precision, recall, f1).
    pub per_topic: Vec<(Chain, &'static str, usize, f64, f64, f64)>,
}

fn topic_scores(samples: &[LabelledSample], pred: &[Vec<&'static str>]) -> TopicScores {
    let mut per = Vec::new();
    let (mut tp_all, mut fp_all, mut fn_all) = (0usize, 0usize, 0usize);
    let mut n = 0;
    let mut exact = 0;
    for (s, p) in samples.iter().zip(pred) {
        if let Some(g) = &s.topics {
            n += 1;
            let mut gs: Vec<&str> = g.iter().map(String::as_str).collect();
            gs.sort_unstable();
            let mut ps = p.clone();
            ps.sort_unstable();
            exact += usize::from(gs == ps);
        }
    }
    for chain in [Chain::StatedValues, Chain::WorldChangeWishes] {
        for (_, key, _) in taxonomy(chain) {
            let (mut tp, mut fp, mut fn_) = (0usize, 0usize, 0usize);
            for (s, p) in samples.iter().zip(pred) {
                let Some(g) = &s.topics else { continue };
                if s.condition.chain() != chain {
                    continue;
                }
                let gi = g.iter().any(|x| x == key);
                let pi = p.contains(key);
                match (gi, pi) {
                    (true, true) => tp += 1,
                    (false, true) => fp += 1,
                    (true, false) => fn_ += 1,
                    _ => {}
                }
            }
            tp_all += tp;
            fp_all += fp;
            fn_all += fn_;
            let pr = tp as f64 / (tp + fp) as f64;
            let rc = tp as f64 / (tp + fn_) as f64;
            let f1 = if tp + fp + fn_ == 0 {
                f64::NAN
            } else {
                2.0 * tp as f64 / (2 * tp + fp + fn_) as f64
            };
            per.push((chain, *key, tp + fn_, pr, rc, f1));
        }
    }
    let supported: Vec<f64> = per.iter().filter(|t| t.2 > 0).map(|t| t.5).collect();
    TopicScores {
        n,
        micro_f1: 2.0 * tp_all as f64 / (2 * tp_all + fp_all + fn_all).max(1) as f64,
        macro_f1: supported.iter().sum::<f64>() / supported.len().max(1) as f64,
        exact_match: exact as f64 / n.max(1) as f64,
        per_topic: per,
    }
}

/// Per held-out model summary.
#[derive(Debug, Clone)]
pub struct Fold {
    /// Held-out model.
    pub model: String,
    /// Its samples.
    pub n: usize,
    /// Label accuracy / kappa on it.
    pub label: Agreement,
    /// Holding accuracy / kappa on it.
    pub holding: Agreement,
}

/// Everything `vuf coder eval` reports.
#[derive(Debug, Clone)]
pub struct EvalReport {
    /// Samples.
    pub n: usize,
    /// Held-out predictions, parallel to the input samples.
    pub predictions: Vec<OfflinePosture>,
    /// Pooled LOMO label agreement with consensus.
    pub label: Agreement,
    /// Pooled LOMO value_holding agreement with consensus.
    pub holding: Agreement,
    /// Per fold.
    pub folds: Vec<Fold>,
    /// Layer A scores (pooled LOMO).
    pub topics: TopicScores,
    /// Coder-model bars.
    pub bars: Vec<CoderBar>,
    /// Cascade curve (LOMO).
    pub cascade: Vec<CascadePoint>,
}

/// Run LOMO over the responding models (sorted by name). `progress` is told each fold.
pub fn evaluate(
    samples: &[LabelledSample],
    mut progress: impl FnMut(&str, usize, usize),
) -> Result<EvalReport, ModelError> {
    let prep = prepare(samples);
    let mut models: Vec<&str> = samples.iter().map(|s| s.model.as_str()).collect();
    models.sort_unstable();
    models.dedup();
    let mut preds: Vec<Option<OfflinePosture>> = vec![None; samples.len()];
    let mut tpred: Vec<Vec<&'static str>> = vec![Vec::new(); samples.len()];
    let mut folds = Vec::new();
    for (k, m) in models.iter().enumerate() {
        progress(m, k + 1, models.len());
        let include: Vec<usize> = (0..samples.len())
            .filter(|&i| samples[i].model != *m)
            .collect();
        let coder = OfflineCoder::from_file(&train_on(samples, &prep, &include))?;
        let (mut lp, mut hp) = (Vec::new(), Vec::new());
        for i in (0..samples.len()).filter(|&i| samples[i].model == *m) {
            let p = coder.posture_from_features(&prep.posture[i]);
            lp.push((label_ix(samples[i].label), label_ix(p.label)));
            hp.push((
                holding_ix(samples[i].value_holding),
                holding_ix(p.value_holding),
            ));
            preds[i] = Some(p);
            tpred[i] = coder
                .topic_coder(samples[i].condition.chain())
                .code_features(&prep.topic[i])
                .topics;
        }
        folds.push(Fold {
            model: m.to_string(),
            n: lp.len(),
            label: Agreement::new(label_names(), &lp),
            holding: Agreement::new(holding_names(), &hp),
        });
    }
    let predictions: Vec<OfflinePosture> = preds
        .into_iter()
        .map(|p| p.ok_or_else(|| ModelError::Invalid("a sample got no held-out prediction".into())))
        .collect::<Result<_, _>>()?;
    let lp: Vec<(usize, usize)> = samples
        .iter()
        .zip(&predictions)
        .map(|(s, p)| (label_ix(s.label), label_ix(p.label)))
        .collect();
    let hp: Vec<(usize, usize)> = samples
        .iter()
        .zip(&predictions)
        .map(|(s, p)| (holding_ix(s.value_holding), holding_ix(p.value_holding)))
        .collect();
    let gl: Vec<PostureLabel> = samples.iter().map(|s| s.label).collect();
    let gh: Vec<ValueHolding> = samples.iter().map(|s| s.value_holding).collect();
    Ok(EvalReport {
        n: samples.len(),
        label: Agreement::new(label_names(), &lp),
        holding: Agreement::new(holding_names(), &hp),
        folds,
        topics: topic_scores(samples, &tpred),
        bars: coder_bars(samples),
        cascade: cascade::curve(&predictions, &gl, &gh, &cascade::default_grid()),
        predictions,
    })
}

fn f(x: f64) -> String {
    if x.is_nan() {
        "–".into()
    } else {
        format!("{x:.3}")
    }
}

fn agreement_md(out: &mut String, title: &str, a: &Agreement) {
    let _ = writeln!(
        out,
        "#### {title}\n\nn = {}, accuracy = {}, Cohen's kappa = **{}**\n",
        a.n,
        f(a.accuracy),
        f(a.kappa)
    );
    let _ = writeln!(
        out,
        "| consensus \\ offline | {} | support | precision | recall |",
        a.names.join(" | ")
    );
    let _ = writeln!(out, "|---|{}---:|---:|---:|", "---:|".repeat(a.names.len()));
    for (i, name) in a.names.iter().enumerate() {
        let (p, r) = a.precision_recall(i);
        let row: Vec<String> = a.confusion[i].iter().map(|c| c.to_string()).collect();
        let _ = writeln!(
            out,
            "| {name} | {} | {} | {} | {} |",
            row.join(" | "),
            a.confusion[i].iter().sum::<usize>(),
            f(p),
            f(r)
        );
    }
    out.push('\n');
}

/// The Markdown report.
pub fn report_markdown(r: &EvalReport, model_sha: &str) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "# Offline coder: leave-one-model-out evaluation\n");
    let _ = writeln!(o, "Generated by `vuf coder eval` (deterministic). Samples: {} labelled responses from {} models; each fold trains on all other models with the fixed hyperparameters and predicts the held-out model. Shipped model data SHA-256: `{model_sha}`.\n", r.n, r.folds.len());
    let _ = writeln!(o, "## Layer B (pooled over folds)\n");
    agreement_md(&mut o, "Collapsed label vs consensus", &r.label);
    agreement_md(&mut o, "value_holding vs consensus", &r.holding);
    let _ = writeln!(
        o,
        "## Bar to beat: each coder model vs the majority of the other two\n"
    );
    let _ = writeln!(o, "A 1-1 split of the other two is resolved by the vote of the first of them in the fixed order kimi-k2-6, glm-4-7, qwen3-6-35b-a3b (the PROTOCOL 5.7 tie rule); `no ties` excludes those samples.\n");
    let _ = writeln!(o, "| coder | n | label acc | label kappa | label kappa (no ties) | label ties | holding acc | holding kappa | holding kappa (no ties) | holding ties |");
    let _ = writeln!(o, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for b in &r.bars {
        let _ = writeln!(
            o,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            b.coder,
            b.label.n,
            f(b.label.accuracy),
            f(b.label.kappa),
            f(b.label_kappa_no_ties),
            b.label_ties,
            f(b.holding.accuracy),
            f(b.holding.kappa),
            f(b.holding_kappa_no_ties),
            b.holding_ties
        );
    }
    let _ = writeln!(
        o,
        "| **offline (LOMO) vs consensus** | {} | {} | {} | | | {} | {} | | |\n",
        r.n,
        f(r.label.accuracy),
        f(r.label.kappa),
        f(r.holding.accuracy),
        f(r.holding.kappa)
    );
    let weakest = r
        .bars
        .iter()
        .map(|b| b.label.kappa)
        .fold(f64::INFINITY, f64::min);
    let _ = writeln!(
        o,
        "Goal (label kappa >= weakest coder's {}): **{}** (offline {}).\n",
        f(weakest),
        if r.label.kappa >= weakest {
            "met"
        } else {
            "not met"
        },
        f(r.label.kappa)
    );
    let _ = writeln!(o, "## Per held-out model\n");
    let _ = writeln!(
        o,
        "| held-out model | n | label acc | label kappa | holding acc | holding kappa |"
    );
    let _ = writeln!(o, "|---|---:|---:|---:|---:|---:|");
    for fo in &r.folds {
        let _ = writeln!(
            o,
            "| {} | {} | {} | {} | {} | {} |",
            fo.model,
            fo.n,
            f(fo.label.accuracy),
            f(fo.label.kappa),
            f(fo.holding.accuracy),
            f(fo.holding.kappa)
        );
    }
    let _ = writeln!(o, "\n(Per-fold kappa is low or undefined where a model's consensus is nearly one class; the pooled numbers above are the headline.)\n");
    let t = &r.topics;
    let _ = writeln!(o, "## Layer A topics (pooled over folds)\n\nn = {}, micro F1 = **{}**, macro F1 = **{}** (over topics with consensus support), exact set match = {}\n", t.n, f(t.micro_f1), f(t.macro_f1), f(t.exact_match));
    let _ = writeln!(
        o,
        "| chain | topic | support | precision | recall | F1 |\n|---|---|---:|---:|---:|---:|"
    );
    for (c, k, s, p, rc, f1) in &t.per_topic {
        let chain = match c {
            Chain::StatedValues => "stated",
            Chain::WorldChangeWishes => "wish",
        };
        let _ = writeln!(
            o,
            "| {chain} | {k} | {s} | {} | {} | {} |",
            f(*p),
            f(*rc),
            f(*f1)
        );
    }
    let _ = writeln!(o, "\n## Cascade (LOMO confidences)\n");
    let budget = cascade::best_within_budget(&r.cascade, 2.0);
    let target = cascade::cheapest_reaching(&r.cascade, 0.95);
    if let Some(p) = budget {
        let _ = writeln!(o, "Best agreement within 2 calls/response: threshold {:.2}, {:.1}% offline, {:.2} calls, value_holding agreement **{:.4}**, label agreement {:.4}.\n", p.threshold, 100.0 * p.offline_share, p.calls_per_response, p.agreement_holding, p.agreement_label);
    }
    if let Some(p) = target {
        let _ = writeln!(o, "Fewest calls reaching 0.95 value_holding agreement: threshold {:.2}, {:.1}% offline, **{:.2} calls**, agreement {:.4}.\n", p.threshold, 100.0 * p.offline_share, p.calls_per_response, p.agreement_holding);
    }
    let _ = writeln!(o, "| threshold | offline share | calls/response | value_holding agreement | label agreement |\n|---:|---:|---:|---:|---:|");
    for p in r
        .cascade
        .iter()
        .filter(|p| ((p.threshold * 100.0).round() as i64) % 5 == 0 || p.threshold > 1.0)
    {
        let _ = writeln!(
            o,
            "| {:.2} | {:.3} | {:.2} | {:.4} | {:.4} |",
            p.threshold,
            p.offline_share,
            p.calls_per_response,
            p.agreement_holding,
            p.agreement_label
        );
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kappa_by_hand() {
        // 2x2: gold A,A,B,B ; pred A,B,B,B -> po = 3/4; pe = (2/4*1/4)+(2/4*3/4) = 1/2 -> kappa 0.5.
        let a = Agreement::new(vec!["a", "b"], &[(0, 0), (0, 1), (1, 1), (1, 1)]);
        assert!((a.kappa - 0.5).abs() < 1e-12);
        assert_eq!(a.confusion, vec![vec![1, 1], vec![0, 2]]);
        let (p, r) = a.precision_recall(1);
        assert!((p - 2.0 / 3.0).abs() < 1e-12 && (r - 1.0).abs() < 1e-12);
    }
}
