//! Topic counting (PROTOCOL 7.11): response-topic pairs, owned fraction per mention, unique
//! responses behind each row, and the frozen top-topic display rule (order by owned count,
//! tie-break by owned fraction, then topic key; show >= 5 owned mentions and top 10 for
//! corpus/family tables, >= 3 and top 5 for per-model tables). Only rows that joined
//! Layer A count. Every topic row is written; `top_rank` is empty for rows not displayed.

use std::collections::{BTreeMap, BTreeSet};

use crate::protocol::Family;

use super::input::{Prepared, Sample};
use super::table::{Table, Value};
use super::{Analysis, Part};

#[derive(Default)]
struct TopicCount {
    k: [usize; 5],
    responses: BTreeSet<usize>,
}

fn count<'a>(
    samples: impl Iterator<Item = (usize, &'a Sample<'a>)>,
) -> BTreeMap<&'a str, TopicCount> {
    let mut out: BTreeMap<&str, TopicCount> = BTreeMap::new();
    for (i, s) in samples {
        if let Some(ts) = &s.c.topics {
            for t in ts {
                let e = out.entry(t.as_str()).or_default();
                e.k[s.h] += 1;
                e.responses.insert(i);
            }
        }
    }
    out
}

fn push_rows(
    t: &mut Table,
    lead: Vec<Value>,
    counts: BTreeMap<&str, TopicCount>,
    min_owned: usize,
    top: usize,
) {
    let mut rows: Vec<(&str, TopicCount, f64)> = counts
        .into_iter()
        .map(|(k, c)| {
            let mentioned: usize = c.k.iter().sum();
            let frac = c.k[0] as f64 / mentioned as f64;
            (k, c, frac)
        })
        .collect();
    rows.sort_by(|a, b| {
        b.1.k[0]
            .cmp(&a.1.k[0])
            .then(b.2.total_cmp(&a.2))
            .then(a.0.cmp(b.0))
    });
    let mut rank = 0;
    for (k, c, frac) in rows {
        let shown = c.k[0] >= min_owned && rank < top;
        if shown {
            rank += 1;
        }
        let mut row = lead.clone();
        row.push(k.into());
        row.push(c.k.iter().sum::<usize>().into());
        row.extend(c.k.iter().map(|x| Value::from(*x)));
        row.push(Value::Float(frac));
        row.push(c.responses.len().into());
        row.push(if shown {
            Value::from(rank)
        } else {
            Value::Empty
        });
        t.push(row);
    }
}

const TAIL: [&str; 10] = [
    "topic",
    "topic_mentioned_count",
    "topic_owned_count",
    "topic_relocated_count",
    "topic_recited_count",
    "topic_indeterminate_count",
    "topic_uncodeable_count",
    "owned_fraction_given_topic",
    "unique_responses",
    "top_rank",
];

pub(crate) fn build(a: &Analysis, prep: &Prepared) -> Part {
    let mut cols: Vec<String> = vec!["condition_family".into()];
    cols.extend(TAIL.iter().map(|s| s.to_string()));
    let mut fam = Table::with_columns("topics_by_family", cols);
    let mut cols: Vec<String> = vec!["model".into(), "lab".into(), "condition_family".into()];
    cols.extend(TAIL.iter().map(|s| s.to_string()));
    let mut per_model = Table::with_columns("topics_by_model", cols);
    let mut cols: Vec<String> = vec!["condition".into()];
    cols.extend(TAIL.iter().map(|s| s.to_string()));
    let mut per_cond = Table::with_columns("topics_by_condition", cols);
    for f in Family::ALL {
        let c = count(
            prep.samples
                .iter()
                .enumerate()
                .filter(|(_, s)| s.c.condition.family() == f),
        );
        push_rows(&mut fam, vec![f.as_str().into()], c, 5, 10);
        for cond in f.conditions() {
            let c = count(
                prep.samples
                    .iter()
                    .enumerate()
                    .filter(|(_, s)| s.c.condition == cond),
            );
            push_rows(&mut per_cond, vec![cond.as_str().into()], c, 5, 10);
        }
    }
    // Each model's samples (global index, sample), so the per-model tables do not walk the
    // whole corpus once per model and question.
    let mut by_model: Vec<Vec<(usize, &Sample)>> = vec![Vec::new(); a.models.len()];
    for (i, s) in prep.samples.iter().enumerate() {
        if let Some(v) = by_model.get_mut(s.model) {
            v.push((i, s));
        }
    }
    for (m, rows) in a.models.iter().zip(&by_model) {
        for f in Family::ALL {
            let c = count(
                rows.iter()
                    .copied()
                    .filter(|(_, s)| s.c.condition.family() == f),
            );
            push_rows(
                &mut per_model,
                vec![
                    m.model.as_str().into(),
                    m.lab.as_str().into(),
                    f.as_str().into(),
                ],
                c,
                3,
                5,
            );
        }
    }
    let mut cols: Vec<String> = vec!["model".into(), "lab".into(), "condition".into()];
    cols.extend(TAIL.iter().map(|s| s.to_string()));
    let mut per_model_cond = Table::with_columns("topics_by_model_condition", cols);
    for (m, rows) in a.models.iter().zip(&by_model) {
        for cond in crate::protocol::Condition::REPORT_ORDER {
            let c = count(rows.iter().copied().filter(|(_, s)| s.c.condition == cond));
            push_rows(
                &mut per_model_cond,
                vec![
                    m.model.as_str().into(),
                    m.lab.as_str().into(),
                    cond.as_str().into(),
                ],
                c,
                3,
                5,
            );
        }
    }
    Part::tables(vec![fam, per_cond, per_model, per_model_cond])
}
