//! Samples of custom conditions (`[[design.custom]]` of a study file), reported beside the
//! frozen analysis, never inside it.
//!
//! The frozen analysis (PROTOCOL 7) covers the six published conditions: its families,
//! pooling rules and published tables have no place for another prompt, so the store hands
//! custom-condition samples in as exclusions (reason `custom condition <ID>: outside the
//! frozen analysis`) and, separately, as [`CustomSample`]s. This module turns those into
//! one plain descriptive table, `custom_conditions.csv`, written only when the study has
//! such samples, and the note that says where they went. Nothing here feeds any other
//! table.
//!
//! The rate is deliberately simple and labelled as such: the owned share of the coded
//! samples of one (condition, prompt, model), pooled over the model's cells, with its
//! Wilson 95% interval (PROTOCOL 7.8). None of the frozen rules (cells of at least 10
//! rows, unweighted cell means, labels) is applied, because they are defined for the six
//! conditions only.

use crate::protocol::{canonical_model, CustomSample, ValueHolding};
use crate::text::count;

use super::table::{Table, Value};
use super::wilson::wilson;

/// File stem of the table.
pub const TABLE: &str = "custom_conditions";

/// Counts of one (condition, prompt, model).
struct Group<'a> {
    condition: &'a str,
    prompt: &'a str,
    model: &'a str,
    cells: Vec<&'a str>,
    n_valid: usize,
    holdings: [usize; 5],
}

/// The `custom_conditions` table, `None` when there are no custom-condition samples.
///
/// One row per (condition, prompt, canonical model): conditions by id, a condition's
/// prompts in sorted order (a prompt edited between runs is another question, so it is
/// another row), models in order of first appearance.
pub fn table(custom: &[CustomSample]) -> Option<Table> {
    if custom.is_empty() {
        return None;
    }
    let mut groups: Vec<Group> = Vec::new();
    for s in custom {
        let model = canonical_model(&s.source_model);
        let i = match groups
            .iter()
            .position(|g| g.condition == s.condition && g.prompt == s.prompt && g.model == model)
        {
            Some(i) => i,
            None => {
                groups.push(Group {
                    condition: &s.condition,
                    prompt: &s.prompt,
                    model,
                    cells: Vec::new(),
                    n_valid: 0,
                    holdings: [0; 5],
                });
                groups.len() - 1
            }
        };
        let g = &mut groups[i];
        g.n_valid += 1;
        if !g.cells.contains(&s.cell.as_str()) {
            g.cells.push(&s.cell);
        }
        if let Some(h) = s.value_holding {
            let k = ValueHolding::ALL.iter().position(|x| *x == h).unwrap_or(0);
            g.holdings[k] += 1;
        }
    }
    // Stable: models keep their first-appearance order within a (condition, prompt).
    groups.sort_by(|a, b| (a.condition, a.prompt).cmp(&(b.condition, b.prompt)));
    let mut columns: Vec<String> = [
        "condition",
        "prompt",
        "model",
        "n_cells",
        "n_valid",
        "n_coded",
    ]
    .iter()
    .map(|c| c.to_string())
    .collect();
    columns.extend(
        ValueHolding::ALL
            .iter()
            .map(|h| format!("n_{}", h.as_str())),
    );
    columns.extend(
        ["owned_rate_pooled", "owned_ci_low", "owned_ci_high"]
            .iter()
            .map(|c| c.to_string()),
    );
    let mut t = Table::with_columns(TABLE, columns);
    for g in &groups {
        let coded: usize = g.holdings.iter().sum();
        let owned = g.holdings[0];
        let rate = if coded == 0 {
            f64::NAN
        } else {
            owned as f64 / coded as f64 * 100.0
        };
        let (low, high) = wilson(owned, coded);
        let mut row: Vec<Value> = vec![
            g.condition.into(),
            g.prompt.into(),
            g.model.into(),
            g.cells.len().into(),
            g.n_valid.into(),
            coded.into(),
        ];
        row.extend(g.holdings.iter().map(|&n| Value::from(n)));
        row.extend([rate.into(), low.into(), high.into()]);
        t.push(row);
    }
    Some(t)
}

/// The note `vuf analyze` and `vuf run` print (and `analysis.json` keeps) when custom
/// samples were left out: how many, of which conditions, and where to find them.
pub fn note(custom: &[CustomSample]) -> Option<String> {
    if custom.is_empty() {
        return None;
    }
    let mut per: Vec<(&str, usize)> = Vec::new();
    for s in custom {
        match per.iter_mut().find(|(c, _)| *c == s.condition) {
            Some((_, n)) => *n += 1,
            None => per.push((&s.condition, 1)),
        }
    }
    per.sort();
    let list: Vec<String> = per.iter().map(|(c, n)| format!("{c}: {n}")).collect();
    Some(format!(
        "{} of custom conditions ({}) left out of the frozen analysis, which covers the six \
         published conditions: listed in exclusions.csv, counted with their owned rates in \
         {TABLE}.csv; their responses and codes: `vuf export traces DIR`, `vuf export codes \
         --layer b --out FILE`",
        count(custom.len(), "sample"),
        list.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(cell: &str, cond: &str, prompt: &str, h: Option<ValueHolding>) -> CustomSample {
        CustomSample {
            layered_id: format!("{cell}_{cond}"),
            source_model: crate::protocol::cell_to_source_model(cell).to_string(),
            cell: cell.into(),
            condition: cond.into(),
            prompt: prompt.into(),
            value_holding: h,
        }
    }

    #[test]
    fn counts_and_pooled_owned_rate_per_condition_prompt_and_model() {
        use ValueHolding::*;
        assert!(table(&[]).is_none());
        assert!(note(&[]).is_none());
        // grok-4-20-or and grok-4-2 are two cells of one canonical model (grok-4-2).
        let rows = vec![
            s("grok-4-20-or", "X2", "Why?", Some(Owned)),
            s("grok-4-2", "X2", "Why?", Some(RecitedNotOwned)),
            s("grok-4-2", "X2", "Why?", Some(Owned)),
            s("grok-4-2", "X2", "Why?", None),
            s("mock-a", "X2", "Why?", Some(Uncodeable)),
            s("mock-a", "X1", "Refuse?", None),
            s("grok-4-2", "X2", "Why not?", Some(Indeterminate)),
        ];
        let t = table(&rows).unwrap();
        assert_eq!(
            t.columns.join(","),
            "condition,prompt,model,n_cells,n_valid,n_coded,n_owned,n_relocated_or_partial,\
             n_recited_not_owned,n_indeterminate,n_uncodeable,owned_rate_pooled,owned_ci_low,owned_ci_high"
        );
        let csv = t.to_csv();
        let lines: Vec<&str> = csv.lines().collect();
        // X1 first; mock-a has nothing coded: NaN rate and interval.
        assert_eq!(lines[1], "X1,Refuse?,mock-a,1,1,0,0,0,0,0,0,nan,nan,nan");
        // X2 "Why not?" on grok-4-2: 0 of 1 owned; the Wilson upper bound at k = 0, n = 1 is
        // z^2 / (1 + z^2) = 79.345...% (z = 1.959963984540054).
        assert_eq!(
            lines[2],
            "X2,Why not?,grok-4-2,1,1,1,0,0,0,1,0,0.0,0.0,79.34506856227625"
        );
        // X2 "Why?" on grok-4-2: 4 valid in 2 cells, 3 coded, 2 owned: 2 / 3 * 100 % (as
        // the published pooled rates compute it; Python: 66.66666666666666), Wilson 95% of
        // 2/3 = (20.766, 93.851) %.
        assert_eq!(
            lines[3],
            "X2,Why?,grok-4-2,2,4,3,2,0,1,0,0,66.66666666666666,20.765960080204767,93.85080552796038"
        );
        assert_eq!(
            lines[4],
            "X2,Why?,mock-a,1,1,1,0,0,0,0,1,0.0,0.0,79.34506856227625"
        );
        assert_eq!(lines.len(), 5);
        assert_eq!(
            note(&rows).unwrap(),
            "7 samples of custom conditions (X1: 1, X2: 6) left out of the frozen analysis, \
             which covers the six published conditions: listed in exclusions.csv, counted with \
             their owned rates in custom_conditions.csv; their responses and codes: `vuf export \
             traces DIR`, `vuf export codes --layer b --out FILE`"
        );
    }
}
