//! Honest evaluation: leave-one-model-out (LOMO) over the responding models of the
//! labelled data, never split by sample, so every score is on a model the coder never saw.
//! Hyperparameters are the constants of `train` (fixed a priori); nothing is chosen on the
//! held-out fold. Also computes the bar to beat: each coder model's agreement with the
//! majority of the OTHER two coders, from the per-coder records.
//!
//! Tie rule for the bar: when the other two coders disagree (1-1) there is no majority,
//! and a fixed-order rule would make the reference simply one named coder. So the split is
//! broken at random *in expectation*: the sample counts half with each of the two votes as
//! reference (the confusion matrix holds halves). The report also gives kappa with those
//! samples excluded (an easier, upward-biased bar) and how many there were.

use std::fmt::Write as _;

use super::cascade::{self, CascadePoint, CostModel, SeqCalls};
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
    /// `confusion[gold][pred]` (weighted counts; halves only in coder bars).
    pub confusion: Vec<Vec<f64>>,
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
        let w: Vec<(usize, usize, f64)> = pairs.iter().map(|&(g, p)| (g, p, 1.0)).collect();
        Self::weighted(names, &w, pairs.len())
    }

    /// From weighted (gold, predicted, weight) triples; `n` samples in all.
    pub fn weighted(names: Vec<&'static str>, pairs: &[(usize, usize, f64)], n: usize) -> Self {
        let k = names.len();
        let mut confusion = vec![vec![0f64; k]; k];
        let mut total = 0f64;
        for &(g, p, w) in pairs {
            confusion[g][p] += w;
            total += w;
        }
        let nf = if total > 0.0 { total } else { 1.0 };
        let po = (0..k).map(|i| confusion[i][i]).sum::<f64>() / nf;
        let pe: f64 = (0..k)
            .map(|i| {
                let row: f64 = confusion[i].iter().sum();
                let col: f64 = confusion.iter().map(|r| r[i]).sum();
                row / nf * (col / nf)
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
        let tp = self.confusion[i][i];
        let pred: f64 = self.confusion.iter().map(|r| r[i]).sum();
        let gold: f64 = self.confusion[i].iter().sum();
        (tp / pred, tp / gold)
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
    /// Label vs reference (1-1 splits count half with each vote).
    pub label: Agreement,
    /// value_holding vs reference (1-1 splits count half with each vote).
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

/// Weighted reference pairs of one coder vote against the other two votes.
fn push_ref(
    out: &mut Vec<(usize, usize, f64)>,
    no_ties: &mut Vec<(usize, usize)>,
    mine: usize,
    a: usize,
    b: usize,
) -> bool {
    if a == b {
        out.push((a, mine, 1.0));
        no_ties.push((a, mine));
        false
    } else {
        out.push((a, mine, 0.5));
        out.push((b, mine, 0.5));
        true
    }
}

/// Bars of the three coders over samples where all three records exist.
pub fn coder_bars(samples: &[LabelledSample]) -> Vec<CoderBar> {
    (0..3)
        .map(|k| {
            let others: Vec<usize> = (0..3).filter(|&o| o != k).collect();
            let (mut lp, mut hp, mut lp_nt, mut hp_nt) =
                (Vec::new(), Vec::new(), Vec::new(), Vec::new());
            let (mut lt, mut ht, mut ln, mut hn) = (0, 0, 0, 0);
            for s in samples {
                let (Some(l), Some(a), Some(b)) = (
                    s.coder_labels[k],
                    s.coder_labels[others[0]],
                    s.coder_labels[others[1]],
                ) else {
                    continue;
                };
                ln += 1;
                lt += usize::from(push_ref(
                    &mut lp,
                    &mut lp_nt,
                    label_ix(l),
                    label_ix(a),
                    label_ix(b),
                ));
                let (Some(h), Some(ha), Some(hb)) = (
                    s.coder_holdings[k],
                    s.coder_holdings[others[0]],
                    s.coder_holdings[others[1]],
                ) else {
                    continue;
                };
                hn += 1;
                ht += usize::from(push_ref(
                    &mut hp,
                    &mut hp_nt,
                    holding_ix(h),
                    holding_ix(ha),
                    holding_ix(hb),
                ));
            }
            CoderBar {
                coder: CODER_KEYS[k],
                label: Agreement::weighted(label_names(), &lp, ln),
                holding: Agreement::weighted(holding_names(), &hp, hn),
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
    pub per_topic: Vec<(Chain, &'static str, f64, f64, f64, f64)>,
}

/// One scored topic decision set: chain, reference set, predicted set, weight.
type TopicItem<'a> = (Chain, Vec<&'a str>, Vec<&'a str>, f64);

/// Scores of predicted vs reference topic sets (weighted items; `n` samples in all).
fn topic_scores(items: &[TopicItem<'_>], n: usize) -> TopicScores {
    let mut per = Vec::new();
    let (mut tp_all, mut fp_all, mut fn_all) = (0f64, 0f64, 0f64);
    let mut exact = 0f64;
    let mut total = 0f64;
    for (_, g, p, w) in items {
        let mut gs = g.clone();
        gs.sort_unstable();
        let mut ps = p.clone();
        ps.sort_unstable();
        total += w;
        if gs == ps {
            exact += w;
        }
    }
    for chain in [Chain::StatedValues, Chain::WorldChangeWishes] {
        for (_, key, _) in taxonomy(chain) {
            let (mut tp, mut fp, mut fn_) = (0f64, 0f64, 0f64);
            for (c, g, p, w) in items {
                if *c != chain {
                    continue;
                }
                match (g.contains(key), p.contains(key)) {
                    (true, true) => tp += w,
                    (false, true) => fp += w,
                    (true, false) => fn_ += w,
                    _ => {}
                }
            }
            tp_all += tp;
            fp_all += fp;
            fn_all += fn_;
            let f1 = if tp + fp + fn_ == 0.0 {
                f64::NAN
            } else {
                2.0 * tp / (2.0 * tp + fp + fn_)
            };
            per.push((chain, *key, tp + fn_, tp / (tp + fp), tp / (tp + fn_), f1));
        }
    }
    let supported: Vec<f64> = per.iter().filter(|t| t.2 > 0.0).map(|t| t.5).collect();
    let denom = 2.0 * tp_all + fp_all + fn_all;
    TopicScores {
        n,
        micro_f1: if denom > 0.0 {
            2.0 * tp_all / denom
        } else {
            f64::NAN
        },
        macro_f1: supported.iter().sum::<f64>() / supported.len().max(1) as f64,
        exact_match: exact / if total > 0.0 { total } else { 1.0 },
        per_topic: per,
    }
}

/// Each coder's topics vs the other two, per topic decision: both others agree -> their
/// decision is the reference; 1-1 -> half weight with each (a random tie-break in
/// expectation), implemented as two half-weight items, one per other coder's set, which
/// give exactly those weights topic by topic. Samples lacking a record are skipped.
pub fn topic_bars(samples: &[LabelledSample]) -> Vec<(&'static str, TopicScores)> {
    (0..3)
        .map(|k| {
            let others: Vec<usize> = (0..3).filter(|&o| o != k).collect();
            let mut items = Vec::new();
            let mut n = 0;
            for s in samples {
                let (Some(mine), Some(a), Some(b)) = (
                    &s.coder_topics[k],
                    &s.coder_topics[others[0]],
                    &s.coder_topics[others[1]],
                ) else {
                    continue;
                };
                n += 1;
                let mine: Vec<&str> = mine.iter().map(String::as_str).collect();
                for other in [a, b] {
                    items.push((
                        s.condition.chain(),
                        other.iter().map(String::as_str).collect(),
                        mine.clone(),
                        0.5,
                    ));
                }
            }
            (CODER_KEYS[k], topic_scores(&items, n))
        })
        .collect()
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
    /// Coder-model bars for Layer A topics.
    pub topic_bars: Vec<(&'static str, TopicScores)>,
    /// Cascade curve (LOMO), with both cost models.
    pub cascade: Vec<CascadePoint>,
    /// Cross-fitted cascade with the <= 2 calls budget rule, every coder asked.
    pub cascade_budget_cf: cascade::CrossFold,
    /// Cross-fitted cascade with the >= 0.95 agreement rule, every coder asked.
    pub cascade_target_cf: cascade::CrossFold,
    /// Cross-fitted, <= 2 calls rule, sequential majority.
    pub cascade_budget_cf_seq: cascade::CrossFold,
    /// Cross-fitted, >= 0.95 agreement rule, sequential majority.
    pub cascade_target_cf_seq: cascade::CrossFold,
    /// Sequential-majority calls per sample (replayed on the per-coder records).
    pub seq_calls: Vec<SeqCalls>,
    /// Samples where the sequential-majority consensus differs from the full-coder one
    /// (label, value_holding or Layer A topics); 0 by construction, checked here.
    pub seq_mismatches: usize,
}

/// Samples whose consensus from the votes sequential majority collects differs from the
/// consensus of all recorded votes (Layer B label or value_holding, Layer A topic set).
pub fn sequential_mismatches(samples: &[LabelledSample]) -> usize {
    use crate::code::{consensus, sequential};
    samples
        .iter()
        .filter(|s| {
            let all_b: Vec<_> = cascade::posture_votes(s).into_iter().flatten().collect();
            let (_, seq_b) =
                sequential::replay(&cascade::posture_votes(s), sequential::posture_settled);
            let key_b = |v: &[consensus::PostureVote]| {
                consensus::posture(v).map(|c| (c.label, c.value_holding))
            };
            let all_a: Vec<_> = cascade::topic_votes(s).into_iter().flatten().collect();
            let (_, seq_a) =
                sequential::replay(&cascade::topic_votes(s), sequential::topics_settled);
            let key_a = |v: &[consensus::TopicVote]| -> Vec<String> {
                consensus::topics(v)
                    .topics
                    .into_iter()
                    .map(|t| t.topic_key)
                    .collect()
            };
            key_b(&all_b) != key_b(&seq_b) || key_a(&all_a) != key_a(&seq_a)
        })
        .count()
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
    let groups: Vec<&str> = samples.iter().map(|s| s.model.as_str()).collect();
    let seq = cascade::sequential_calls(samples);
    let cf = |cost: CostModel, budget: bool| {
        cascade::cross_fold(&predictions, &gl, &gh, &seq, &groups, cost, |c| {
            if budget {
                cascade::best_within_budget(c, 2.0, cost)
            } else {
                cascade::cheapest_reaching(c, 0.95, cost)
            }
        })
    };
    Ok(EvalReport {
        n: samples.len(),
        label: Agreement::new(label_names(), &lp),
        holding: Agreement::new(holding_names(), &hp),
        folds,
        topics: {
            let items: Vec<TopicItem<'_>> = samples
                .iter()
                .zip(&tpred)
                .filter_map(|(s, p)| {
                    s.topics.as_ref().map(|g| {
                        (
                            s.condition.chain(),
                            g.iter().map(String::as_str).collect(),
                            p.clone(),
                            1.0,
                        )
                    })
                })
                .collect();
            topic_scores(&items, items.len())
        },
        bars: coder_bars(samples),
        topic_bars: topic_bars(samples),
        cascade: cascade::curve(&predictions, &gl, &gh, &seq, &cascade::default_grid()),
        cascade_budget_cf: cf(CostModel::AllCoders, true),
        cascade_target_cf: cf(CostModel::AllCoders, false),
        cascade_budget_cf_seq: cf(CostModel::Sequential, true),
        cascade_target_cf_seq: cf(CostModel::Sequential, false),
        seq_mismatches: sequential_mismatches(samples),
        seq_calls: seq,
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

fn count(x: f64) -> String {
    if x.fract() == 0.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.1}")
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
        let row: Vec<String> = a.confusion[i].iter().map(|c| count(*c)).collect();
        let _ = writeln!(
            out,
            "| {name} | {} | {} | {} | {} |",
            row.join(" | "),
            count(a.confusion[i].iter().sum()),
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
    let _ = writeln!(o, "When the other two split 1-1 there is no majority: the sample counts half with each of their votes as reference (a random tie-break, in expectation). `no ties` excludes those samples instead (an easier bar).\n");
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
    let _ = writeln!(o, "Bar: each coder model's topics vs the other two, decision by decision (both others agree: their decision; 1-1: half weight with each):\n");
    let _ = writeln!(
        o,
        "| coder | n | micro F1 | macro F1 | exact set match |\n|---|---:|---:|---:|---:|"
    );
    for (c, b) in &r.topic_bars {
        let _ = writeln!(
            o,
            "| {c} | {} | {} | {} | {} |",
            b.n,
            f(b.micro_f1),
            f(b.macro_f1),
            f(b.exact_match)
        );
    }
    let _ = writeln!(
        o,
        "| **offline (LOMO) vs consensus** | {} | {} | {} | {} |\n",
        t.n,
        f(t.micro_f1),
        f(t.macro_f1),
        f(t.exact_match)
    );
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
            "| {chain} | {k} | {} | {} | {} | {} |",
            count(*s),
            f(*p),
            f(*rc),
            f(*f1)
        );
    }
    let _ = writeln!(o, "\n## Cascade (LOMO confidences)\n");
    let n_seq = r.seq_calls.len().max(1) as f64;
    let (mean_a, mean_b) = (
        r.seq_calls.iter().map(|c| c.a as f64).sum::<f64>() / n_seq,
        r.seq_calls.iter().map(|c| c.b as f64).sum::<f64>() / n_seq,
    );
    let _ = writeln!(o, "Two ways of asking the coder models for an uncertain response: **all coders** (the published design, 3 coders x 2 layers = 6 calls) and **sequential majority** (per layer the first two coders in the fixed order kimi, glm, qwen, and the third only where the two disagree on a voted field; replayed on the recorded per-coder codes). Sequential majority gives the same consensus: it differs from the all-coder consensus on {} of {} samples. Over all labelled samples it would spend {:.3} Layer A + {:.3} Layer B = {:.3} calls per response sent to the models.\n", r.seq_mismatches, r.seq_calls.len(), mean_a, mean_b, mean_a + mean_b);
    for (cost, name) in [
        (CostModel::AllCoders, "all coders"),
        (CostModel::Sequential, "sequential majority"),
    ] {
        if let Some(p) = cascade::best_within_budget(&r.cascade, 2.0, cost) {
            let _ = writeln!(o, "{name}: best agreement within 2 calls/response: threshold {:.2}, {:.1}% offline, {:.2} calls, value_holding agreement **{:.4}**, label agreement {:.4}.\n", p.threshold, 100.0 * p.offline_share, p.calls(cost), p.agreement_holding, p.agreement_label);
        }
        if let Some(p) = cascade::cheapest_reaching(&r.cascade, 0.95, cost) {
            let _ = writeln!(o, "{name}: fewest calls reaching 0.95 value_holding agreement: threshold {:.2}, {:.1}% offline, **{:.2} calls**, agreement {:.4}.\n", p.threshold, 100.0 * p.offline_share, p.calls(cost), p.agreement_holding);
        }
    }
    let _ = writeln!(o, "Cross-fitted (the threshold for each held-out model is chosen on the other models' curve, under the same cost model; no model's labels pick its own threshold):\n");
    let _ = writeln!(o, "| cost model | rule | calls/response | value_holding agreement | label agreement | thresholds |\n|---|---|---:|---:|---:|---|");
    for (cf, cost, rule) in [
        (
            &r.cascade_budget_cf,
            "all coders",
            "best agreement within 2 calls",
        ),
        (
            &r.cascade_target_cf,
            "all coders",
            "fewest calls reaching 0.95",
        ),
        (
            &r.cascade_budget_cf_seq,
            "sequential majority",
            "best agreement within 2 calls",
        ),
        (
            &r.cascade_target_cf_seq,
            "sequential majority",
            "fewest calls reaching 0.95",
        ),
    ] {
        let ts: Vec<String> = cf
            .thresholds
            .iter()
            .map(|(m, t)| format!("{m} {t:.2}"))
            .collect();
        let _ = writeln!(
            o,
            "| {cost} | {rule} | **{:.2}** | **{:.4}** | {:.4} | {} |",
            cf.calls_per_response,
            cf.agreement_holding,
            cf.agreement_label,
            ts.join(", ")
        );
    }
    let _ = writeln!(o, "\n| threshold | offline share | calls/response (all coders) | calls/response (sequential) | value_holding agreement | label agreement |\n|---:|---:|---:|---:|---:|---:|");
    for p in r
        .cascade
        .iter()
        .filter(|p| ((p.threshold * 100.0).round() as i64) % 5 == 0 || p.threshold > 1.0)
    {
        let _ = writeln!(
            o,
            "| {:.2} | {:.3} | {:.2} | {:.2} | {:.4} | {:.4} |",
            p.threshold,
            p.offline_share,
            p.calls_per_response,
            p.calls_per_response_seq,
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
        assert_eq!(a.confusion, vec![vec![1.0, 1.0], vec![0.0, 2.0]]);
        let (p, r) = a.precision_recall(1);
        assert!((p - 2.0 / 3.0).abs() < 1e-12 && (r - 1.0).abs() < 1e-12);
    }

    #[test]
    fn coder_bar_splits_ties_in_half() {
        use crate::protocol::{Condition, PostureLabel::*};
        let mk = |labels: [PostureLabel; 3]| LabelledSample {
            layered_id: String::new(),
            model: "m".into(),
            condition: Condition::Ctrl1,
            prompt: String::new(),
            response: String::new(),
            label: labels[0],
            value_holding: labels[0].value_holding(),
            coder_labels: labels.map(Some),
            coder_holdings: labels.map(|l| Some(l.value_holding())),
            topics: None,
            coder_topics: [None, None, None],
        };
        // kimi D vs (glm D, qwen S) -> tie: half D (agree), half S. Second sample all D.
        let s = vec![
            mk([
                DisownedServiceFrame,
                DisownedServiceFrame,
                SplitOrRelocatedOwnership,
            ]),
            mk([DisownedServiceFrame; 3]),
        ];
        let b = &coder_bars(&s)[0];
        assert_eq!(b.label_ties, 1);
        assert_eq!(b.label.n, 2);
        assert!((b.label.accuracy - 0.75).abs() < 1e-12);
        assert_eq!(b.label.confusion[0][0], 1.5);
        assert_eq!(b.label.confusion[1][0], 0.5);
    }
}
