//! The plan: study + store state -> the work items still to do, keyed by content hash.
//!
//! A work item is one sample slot (cell, condition, index). Its key is the SHA-256 of
//! everything that shapes the answer: the cell label, route kind, wire, base URL, model,
//! pin, token cap, temperature, reasoning and extra body, the condition label, its exact
//! prompt and the index (docs/design/collect.md says why a hash and not a position).
//! Settings that do not change the answer (concurrency, timeouts, limits, headers, key
//! variable) are left out, so they can be tuned between runs without losing work.
//!
//! A slot is done when a valid attempt with its key is committed. A slot holding a valid
//! sample under another key (the cell config changed, or the cell was imported) is a
//! *conflict*: collecting it again would mix two configurations in one cell.

use serde_json::json;
use sha2::{Digest, Sha256};

use super::study::{CellSpec, CondSpec, Study};
use crate::providers::Wire;
use crate::store::attempts::CollectState;

/// One sample slot to collect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkItem {
    /// Index into `Study::cells`.
    pub cell: usize,
    /// Index into `Study::conditions`.
    pub cond: usize,
    /// 1-based sample index.
    pub idx: u32,
    /// Content-hash key.
    pub key: String,
    /// Attempts already stored for this key (earlier runs).
    pub prior_attempts: u32,
}

/// Per-cell summary of a plan.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CellPlan {
    /// Slots in the design.
    pub total: u64,
    /// Done under this configuration.
    pub done: u64,
    /// Still to collect.
    pub pending: u64,
    /// Valid samples collected under another configuration or imported.
    pub conflicts: u64,
    /// The conditions of those samples, in design order.
    pub conflict_conditions: Vec<String>,
    /// Estimated input tokens of the pending calls.
    pub input_tokens: u64,
    /// Expected output tokens of the pending calls.
    pub expected_output_tokens: u64,
    /// Upper bound on output tokens (pending x max_tokens).
    pub max_output_tokens: u64,
    /// Estimated cost (expected tokens x price), USD, when priced.
    pub expected_cost_usd: Option<f64>,
    /// Upper-bound cost, USD, when priced.
    pub max_cost_usd: Option<f64>,
}

/// The plan of a run.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// Pending items in (cell, condition, index) order.
    pub items: Vec<WorkItem>,
    /// Per cell, same order as the study.
    pub cells: Vec<CellPlan>,
}

/// The work-item key of a slot.
pub fn work_key(cell: &CellSpec, cond: &CondSpec, idx: u32) -> String {
    let r = &cell.route;
    let wire = match r.wire {
        Wire::OpenAiChat => "chat",
        Wire::OpenAiResponses => "responses",
        Wire::Anthropic => "anthropic",
        Wire::Gemini => "gemini",
        Wire::Mock => "mock",
        Wire::Local => "local",
    };
    // serde_json with preserve_order keeps this key order; the canonical text is hashed.
    let canon = json!({
        "v": 1,
        "cell": cell.name,
        "provider": r.kind.as_str(),
        "wire": wire,
        "base_url": r.base_url,
        "model": r.model,
        "pin": r.pin,
        "max_tokens": r.max_tokens,
        "temperature": r.temperature,
        "reasoning": r.reasoning,
        "extra_body": r.extra_body,
        "stream": r.stream,
        "condition": cond.id,
        "prompt": cond.prompt,
        "index": idx,
    });
    let text = canon.to_string();
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Rough input-token estimate of a prompt (4 characters per token plus chat framing).
pub fn estimate_input_tokens(prompt: &str) -> u64 {
    prompt.chars().count() as u64 / 4 + 8
}

/// Build the plan against what the store holds.
pub fn build(study: &Study, state: &CollectState) -> Plan {
    let mut plan = Plan::default();
    for (ci, cell) in study.cells.iter().enumerate() {
        let mut cp = CellPlan::default();
        for (ki, cond) in study.conditions.iter().enumerate() {
            for idx in 1..=cond.samples {
                cp.total += 1;
                let key = work_key(cell, cond, idx);
                if state.done_keys.contains(&key) {
                    cp.done += 1;
                    continue;
                }
                if state
                    .valid_slots
                    .contains(&(cell.name.clone(), cond.id.clone(), idx))
                {
                    cp.conflicts += 1;
                    if !cp.conflict_conditions.contains(&cond.id) {
                        cp.conflict_conditions.push(cond.id.clone());
                    }
                    continue;
                }
                cp.pending += 1;
                cp.input_tokens += estimate_input_tokens(&cond.prompt);
                cp.expected_output_tokens += u64::from(cell.expected_output_tokens);
                cp.max_output_tokens += u64::from(cell.route.max_tokens);
                let prior_attempts = state.attempts.get(&key).copied().unwrap_or(0);
                plan.items.push(WorkItem {
                    cell: ci,
                    cond: ki,
                    idx,
                    key,
                    prior_attempts,
                });
            }
        }
        if let Some(p) = study.price_for(cell) {
            let cost = |inp: u64, out: u64| {
                inp as f64 / 1e6 * p.input_per_mtok + out as f64 / 1e6 * p.output_per_mtok
            };
            cp.expected_cost_usd = Some(cost(cp.input_tokens, cp.expected_output_tokens));
            cp.max_cost_usd = Some(cost(cp.input_tokens, cp.max_output_tokens));
        }
        plan.cells.push(cp);
    }
    plan
}

/// Render the plan as a table (`--dry-run`).
pub fn render(study: &Study, plan: &Plan) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "study {:?}: {} x {} ({} per cell)\n",
        study.name,
        crate::text::count(study.cells.len(), "cell"),
        crate::text::count(study.conditions.len(), "condition"),
        crate::text::count(
            study
                .conditions
                .iter()
                .map(|c| u64::from(c.samples))
                .sum::<u64>(),
            "sample"
        )
    ));
    out.push_str(&format!(
        "{:<32} {:<18} {:>6} {:>6} {:>7} {:>9} {:>10} {:>10} {:>10} {:>10}\n",
        "cell",
        "provider",
        "total",
        "done",
        "calls",
        "conflicts",
        "in_tok",
        "out_tok",
        "est_$",
        "max_$"
    ));
    let money = |v: Option<f64>| v.map(|x| format!("{x:.4}")).unwrap_or_else(|| "n/a".into());
    let mut tot = CellPlan::default();
    let mut priced_all = true;
    for (c, p) in study.cells.iter().zip(&plan.cells) {
        out.push_str(&format!(
            "{:<32} {:<18} {:>6} {:>6} {:>7} {:>9} {:>10} {:>10} {:>10} {:>10}\n",
            c.name,
            c.route.kind.as_str(),
            p.total,
            p.done,
            p.pending,
            p.conflicts,
            p.input_tokens,
            p.expected_output_tokens,
            money(p.expected_cost_usd),
            money(p.max_cost_usd)
        ));
        tot.total += p.total;
        tot.done += p.done;
        tot.pending += p.pending;
        tot.conflicts += p.conflicts;
        tot.input_tokens += p.input_tokens;
        tot.expected_output_tokens += p.expected_output_tokens;
        tot.max_output_tokens += p.max_output_tokens;
        match (p.expected_cost_usd, p.max_cost_usd) {
            (Some(e), Some(m)) => {
                tot.expected_cost_usd = Some(tot.expected_cost_usd.unwrap_or(0.0) + e);
                tot.max_cost_usd = Some(tot.max_cost_usd.unwrap_or(0.0) + m);
            }
            _ => priced_all = false,
        }
    }
    out.push_str(&format!(
        "{:<32} {:<18} {:>6} {:>6} {:>7} {:>9} {:>10} {:>10} {:>10} {:>10}\n",
        "TOTAL",
        "",
        tot.total,
        tot.done,
        tot.pending,
        tot.conflicts,
        tot.input_tokens,
        tot.expected_output_tokens,
        money(tot.expected_cost_usd),
        money(tot.max_cost_usd)
    ));
    out.push_str(&format!(
        "output tokens: expected {} (expected_output_tokens per cell), at most {} (max_tokens per cell)\n",
        tot.expected_output_tokens, tot.max_output_tokens
    ));
    if !priced_all {
        out.push_str("cost: cells marked n/a have no entry in [prices] (keyed by cell name or model id); edit the study file to add one\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn study(extra: &str) -> Study {
        Study::parse(
            &format!("[design]\nsamples_per_condition=2\n[prices.'x/m']\ninput_per_mtok=1.0\noutput_per_mtok=2.0\n[[cells]]\nname='m-or'\nprovider='openrouter'\nmodel='x/m'\n{extra}"),
            Path::new("s.toml"),
        )
        .unwrap()
    }

    #[test]
    fn keys_change_with_what_shapes_the_answer_only() {
        let a = study("");
        let b = study("max_tokens=100\n");
        let c = study("concurrency=3\n");
        let k = |s: &Study| work_key(&s.cells[0], &s.conditions[0], 1);
        assert_ne!(k(&a), k(&b));
        assert_eq!(k(&a), k(&c));
        assert_ne!(
            work_key(&a.cells[0], &a.conditions[0], 1),
            work_key(&a.cells[0], &a.conditions[0], 2)
        );
        assert_eq!(k(&a).len(), 64);
    }

    #[test]
    fn plan_counts_and_costs() {
        let s = study("");
        let mut st = CollectState::default();
        st.done_keys
            .insert(work_key(&s.cells[0], &s.conditions[0], 1));
        st.valid_slots.insert(("m-or".into(), "CTRL1".into(), 2));
        let p = build(&s, &st);
        assert_eq!(p.cells[0].total, 12);
        assert_eq!(p.cells[0].done, 1);
        assert_eq!(p.cells[0].conflicts, 1);
        assert_eq!(p.cells[0].pending, 10);
        assert_eq!(p.items.len(), 10);
        // 10 calls x 500 expected output tokens x $2/M = $0.01 plus input.
        let inp = p.cells[0].input_tokens as f64 / 1e6;
        assert!((p.cells[0].expected_cost_usd.unwrap() - (inp + 0.01)).abs() < 1e-12);
        assert!(render(&s, &p).contains("TOTAL"));
    }
}
