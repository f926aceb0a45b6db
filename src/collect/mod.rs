//! Collection (`vuf collect`): study file -> plan -> scheduler -> store.
//!
//! Owns the plan (work items keyed by content hash), the scheduler (bounded concurrency per
//! cell and overall, rate limits per provider group, retry policy, timeouts, the
//! error-like-text guard, top-up, commit-before-count) and progress events. Must not know
//! JSON wire shapes (that is `providers`), SQL text (that is `store`) or how a terminal
//! draws (the CLI renders [`events::Event`]s). See docs/design/collect.md.

pub mod events;
pub mod guard;
pub mod limits;
pub mod model_files;
pub mod plan;
pub mod retry;
pub mod scheduler;
pub mod study;

pub use model_files::check_local_model_files;

use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::providers::http::{provider_for, HttpProvider};
use crate::providers::Provider;
use crate::store::{attempts, Store};
pub use events::{Event, EventSink};
pub use plan::Plan;
pub use scheduler::RunSummary;
pub use study::Study;

/// Errors of a collect run.
#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    /// Store failure.
    #[error(transparent)]
    Store(#[from] crate::store::Error),
    /// Scheduler failure.
    #[error(transparent)]
    Run(#[from] scheduler::RunError),
    /// Slots hold valid samples from another configuration.
    #[error("{0}")]
    Conflicts(String),
    /// Setup failed (keys, HTTP client, runtime).
    #[error("collect: {0}")]
    Setup(String),
}

/// Plan a study against a store.
pub fn plan(study: &Study, store: &Store) -> Result<Plan, CollectError> {
    let state = attempts::collect_state(store)?;
    Ok(plan::build(study, &state))
}

/// Refuse to top up cells whose slots hold valid samples collected under another
/// configuration (or imported), unless `allow` is set (they then count as done).
pub fn check_conflicts(study: &Study, plan: &Plan, allow: bool) -> Result<(), CollectError> {
    let bad: Vec<String> = study
        .cells
        .iter()
        .zip(&plan.cells)
        .filter(|(_, p)| p.conflicts > 0)
        .map(|(c, p)| {
            format!(
                "{} ({} of {})",
                c.name,
                crate::text::count(p.conflicts, "sample"),
                p.conflict_conditions.join(", ")
            )
        })
        .collect();
    if bad.is_empty() || allow {
        return Ok(());
    }
    // A custom condition's prompt is part of what was asked: changed, it is a new question.
    let custom_only = plan
        .cells
        .iter()
        .filter(|p| p.conflicts > 0)
        .flat_map(|p| &p.conflict_conditions)
        .all(|id| crate::protocol::Condition::parse(id).is_none());
    let fix = if custom_only {
        "If a custom condition's prompt changed, it is another question: give it a new id \
         (its earlier samples stay as they are); if the cell's route or settings changed, give \
         the cell a new name"
    } else {
        "Give the changed configuration a new cell name"
    };
    Err(CollectError::Conflicts(format!(
        "collect: these cells already hold valid samples collected with a different cell configuration or imported: {}. \
         {fix}, or pass --keep-existing to count those samples as done.",
        bad.join(", ")
    )))
}

/// SHA-256 of the study file text (recorded with each run).
pub fn study_sha256(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Build one provider per cell (keys must already be resolved).
pub fn providers_for(study: &Study) -> Result<Vec<Arc<dyn Provider>>, CollectError> {
    let max_idle = study
        .cells
        .iter()
        .map(|c| c.concurrency)
        .max()
        .unwrap_or(1)
        .max(study.settings.global_concurrency);
    let client = HttpProvider::client(study.settings.timeout, max_idle)
        .map_err(|e| CollectError::Setup(format!("HTTP client: {e}")))?;
    let mut out: Vec<Arc<dyn Provider>> = Vec::with_capacity(study.cells.len());
    #[cfg(feature = "local")]
    let mut loaded: Vec<Arc<crate::providers::local::LocalModel>> = Vec::new();
    for c in &study.cells {
        let Some(local) = &c.local else {
            out.push(provider_for(c.route.clone(), &client));
            continue;
        };
        let path = local.model_path.as_ref().ok_or_else(|| {
            CollectError::Setup(format!(
                "cell {}: no model file (set model_path, or let the CLI find the default model)",
                c.name
            ))
        })?;
        #[cfg(feature = "local")]
        {
            // One load per file, shared by every cell that names it.
            let model = match loaded.iter().find(|m| m.path() == path.as_path()) {
                Some(m) => m.clone(),
                None => {
                    let m = crate::providers::local::load(path, local.threads)
                        .map_err(|e| CollectError::Setup(format!("cell {}: {e}", c.name)))?;
                    loaded.push(m.clone());
                    m
                }
            };
            out.push(Arc::new(crate::providers::local::LocalProvider::new(
                c.route.clone(),
                model,
            )));
        }
        #[cfg(not(feature = "local"))]
        {
            let _ = path;
            return Err(CollectError::Setup(format!(
                "cell {}: {}",
                c.name,
                crate::providers::local::NOT_BUILT
            )));
        }
    }
    Ok(out)
}

/// Run a planned collection to the end on the current tokio runtime. Returns the summary
/// and hands the store back.
pub async fn run(
    study: Arc<Study>,
    providers: Vec<Arc<dyn Provider>>,
    plan: Plan,
    mut store: Store,
    study_sha: &str,
    sink: Arc<dyn EventSink>,
) -> Result<(RunSummary, Store), CollectError> {
    let detail =
        serde_json::json!({ "pending": plan.items.len(), "cells": study.cells.len() }).to_string();
    let run_id = attempts::start_run(&mut store, &study.name, study_sha, &detail)?;
    let (result, store) = scheduler::run(study, providers, plan, store, run_id, sink).await;
    let mut store = store.ok_or(scheduler::RunError::WriterGone)?;
    match result {
        Ok(mut summary) => {
            summary.run_id = run_id;
            let status = if summary.invalid == 0 && summary.skipped == 0 {
                "complete"
            } else {
                "incomplete"
            };
            let detail = serde_json::json!({
                "valid": summary.valid, "invalid": summary.invalid, "skipped": summary.skipped,
                "attempts": summary.attempts,
                "stopped": summary.stopped.iter().map(|(c, r)| serde_json::json!({"cell": c, "reason": r})).collect::<Vec<_>>(),
            })
            .to_string();
            attempts::finish_run(&mut store, run_id, status, &detail)?;
            Ok((summary, store))
        }
        Err(e) => {
            let _ = attempts::finish_run(
                &mut store,
                run_id,
                "failed",
                &serde_json::json!({ "error": e.to_string() }).to_string(),
            );
            Err(e.into())
        }
    }
}
