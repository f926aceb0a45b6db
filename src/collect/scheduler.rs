//! The scheduler: runs a plan's work items on tokio with bounded concurrency (globally and
//! per cell), per-group rate limits, a per-call timeout, the error-like-text guard, the
//! retry policy, parking on long server-directed waits, and commit-before-count.
//!
//! Shape: one task per work item, at most `4 x global_concurrency` items alive at a time
//! (so memory stays flat however long the plan), items interleaved across cells. A task
//! holds a concurrency permit only while its call is in flight, never while it sleeps for a
//! retry, so one cell's backoff never starves the others. Every attempt goes to a single
//! writer thread that owns the SQLite store and commits in small groups; the task waits
//! for the commit before the item counts as done (crash safety, see store::attempts).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot, Semaphore};
use tokio::task::JoinSet;

use super::events::{Event, EventSink};
use super::guard;
use super::limits::Limiter;
use super::plan::{estimate_input_tokens, Plan, WorkItem};
use super::retry::{self, Decision};
use super::study::Study;
use crate::protocol::{canonical_model, cell_to_source_model};
use crate::providers::{CallError, Completion, Provider, RetryClass};
use crate::store::attempts::{commit_attempt, AttemptRow, SampleRow};
use crate::store::Store;

/// Scheduler errors (the store failing is the only run-level failure).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The store could not commit.
    #[error("collect: store commit failed: {0}")]
    Store(String),
    /// The writer thread is gone.
    #[error("collect: store writer stopped")]
    WriterGone,
}

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunSummary {
    /// Items finished valid.
    pub valid: u64,
    /// Items finished invalid (attempts spent; kept as error samples).
    pub invalid: u64,
    /// Items not finished because their cell stopped.
    pub skipped: u64,
    /// Attempts made.
    pub attempts: u64,
    /// Cells stopped, with the reason (reported once each).
    pub stopped: Vec<(String, String)>,
    /// The run's id in the store (`collect_runs`, `attempts.run_id`).
    pub run_id: i64,
}

struct WriteOp {
    attempt: AttemptRow,
    sample: Option<SampleRow>,
    ack: oneshot::Sender<Result<(), String>>,
}

/// The single writer: a thread that owns the store and commits attempts in groups.
pub struct Writer {
    tx: Option<mpsc::UnboundedSender<WriteOp>>,
    thread: Option<std::thread::JoinHandle<Store>>,
}

impl Writer {
    /// Start the writer thread on `store`.
    pub fn spawn(mut store: Store) -> Writer {
        let (tx, mut rx) = mpsc::unbounded_channel::<WriteOp>();
        let thread = std::thread::spawn(move || {
            while let Some(first) = rx.blocking_recv() {
                let mut batch = vec![first];
                while batch.len() < 256 {
                    match rx.try_recv() {
                        Ok(op) => batch.push(op),
                        Err(_) => break,
                    }
                }
                let grouped = store.transaction(|tx| {
                    for op in &batch {
                        commit_attempt(tx, &op.attempt, op.sample.as_ref())?;
                    }
                    Ok::<(), crate::store::Error>(())
                });
                if grouped.is_ok() {
                    for op in batch {
                        let _ = op.ack.send(Ok(()));
                    }
                } else {
                    // One bad row must not sink the group: commit one by one.
                    for op in batch {
                        let r = store
                            .transaction(|tx| commit_attempt(tx, &op.attempt, op.sample.as_ref()));
                        let _ = op.ack.send(r.map(|_| ()).map_err(|e| e.to_string()));
                    }
                }
            }
            store
        });
        Writer {
            tx: Some(tx),
            thread: Some(thread),
        }
    }

    async fn commit(&self, attempt: AttemptRow, sample: Option<SampleRow>) -> Result<(), RunError> {
        let (ack, rx) = oneshot::channel();
        self.tx
            .as_ref()
            .ok_or(RunError::WriterGone)?
            .send(WriteOp {
                attempt,
                sample,
                ack,
            })
            .map_err(|_| RunError::WriterGone)?;
        rx.await
            .map_err(|_| RunError::WriterGone)?
            .map_err(RunError::Store)
    }

    /// Stop the writer and get the store back.
    pub fn finish(mut self) -> Option<Store> {
        self.tx.take();
        self.thread.take().and_then(|t| t.join().ok())
    }
}

struct CellState {
    sem: Semaphore,
    parked_until: Mutex<Option<Instant>>,
    stopped: AtomicBool,
    stop_reason: Mutex<Option<String>>,
    limiter: Arc<Limiter>,
    provider: Arc<dyn Provider>,
    source_model: String,
    model: String,
}

struct Ctx {
    study: Arc<Study>,
    cells: Vec<CellState>,
    global: Semaphore,
    writer: Writer,
    sink: Arc<dyn EventSink>,
    run_id: i64,
    attempts: AtomicU64,
}

enum ItemEnd {
    Valid,
    Invalid,
    Skipped,
}

/// Run `plan` and return what happened plus the store (handed back by the writer).
pub async fn run(
    study: Arc<Study>,
    providers: Vec<Arc<dyn Provider>>,
    plan: Plan,
    store: Store,
    run_id: i64,
    sink: Arc<dyn EventSink>,
) -> (Result<RunSummary, RunError>, Option<Store>) {
    let mut limiters: HashMap<String, Arc<Limiter>> = HashMap::new();
    let cells: Vec<CellState> = study
        .cells
        .iter()
        .zip(providers)
        .map(|(c, p)| {
            let limiter = limiters
                .entry(c.limit_group.clone())
                .or_insert_with(|| {
                    Arc::new(Limiter::new(
                        study
                            .limits
                            .get(&c.limit_group)
                            .copied()
                            .unwrap_or_default(),
                    ))
                })
                .clone();
            let source_model = cell_to_source_model(&c.name).to_string();
            let model = canonical_model(&source_model).to_string();
            CellState {
                sem: Semaphore::new(c.concurrency),
                parked_until: Mutex::new(None),
                stopped: AtomicBool::new(false),
                stop_reason: Mutex::new(None),
                limiter,
                provider: p,
                source_model,
                model,
            }
        })
        .collect();
    let global = study.settings.global_concurrency;
    sink.emit(Event::Started {
        run_id,
        cells: study
            .cells
            .iter()
            .zip(&plan.cells)
            .map(|(c, p)| (c.name.clone(), p.total, p.done + p.conflicts, p.pending))
            .collect(),
    });
    let ctx = Arc::new(Ctx {
        study: study.clone(),
        cells,
        global: Semaphore::new(global),
        writer: Writer::spawn(store),
        sink,
        run_id,
        attempts: AtomicU64::new(0),
    });

    // Interleave cells so every cell progresses from the start.
    let mut queues: Vec<VecDeque<WorkItem>> = vec![VecDeque::new(); study.cells.len()];
    for it in plan.items {
        queues[it.cell].push_back(it);
    }
    // Items alive = in flight + sleeping for a retry + waiting for their commit. Bounded, so
    // memory stays flat however many items the plan has.
    let alive = Arc::new(Semaphore::new(global * 4 + 16));
    let mut set: JoinSet<Result<ItemEnd, RunError>> = JoinSet::new();
    let mut summary = RunSummary::default();
    let mut failure: Option<RunError> = None;
    let handle = |r: Result<Result<ItemEnd, RunError>, tokio::task::JoinError>,
                  s: &mut RunSummary,
                  f: &mut Option<RunError>| match r {
        Ok(Ok(ItemEnd::Valid)) => s.valid += 1,
        Ok(Ok(ItemEnd::Invalid)) => s.invalid += 1,
        Ok(Ok(ItemEnd::Skipped)) => s.skipped += 1,
        Ok(Err(e)) => {
            if f.is_none() {
                *f = Some(e);
            }
        }
        Err(e) => {
            if f.is_none() {
                *f = Some(RunError::Store(format!("worker task failed: {e}")));
            }
        }
    };
    'outer: loop {
        let mut any = false;
        for q in queues.iter_mut() {
            let Some(item) = q.pop_front() else { continue };
            any = true;
            if failure.is_some() {
                break 'outer;
            }
            if ctx.cells[item.cell].stopped.load(Ordering::SeqCst) {
                summary.skipped += 1;
                continue;
            }
            let Ok(permit) = alive.clone().acquire_owned().await else {
                break 'outer;
            };
            let c2 = ctx.clone();
            set.spawn(async move {
                let _p = permit;
                run_item(&c2, item).await
            });
            while let Some(r) = set.try_join_next() {
                handle(r, &mut summary, &mut failure);
            }
        }
        if !any {
            break;
        }
    }
    // Anything left in the queues (after a failure) is skipped.
    summary.skipped += queues.iter().map(|q| q.len() as u64).sum::<u64>();
    while let Some(r) = set.join_next().await {
        handle(r, &mut summary, &mut failure);
    }
    for (i, c) in ctx.cells.iter().enumerate() {
        if let Some(r) = c.stop_reason.lock().ok().and_then(|g| g.clone()) {
            summary.stopped.push((study.cells[i].name.clone(), r));
        }
    }
    ctx.sink.emit(Event::Finished);
    let Ok(ctx) = Arc::try_unwrap(ctx) else {
        return (Err(RunError::WriterGone), None);
    };
    let store = ctx.writer.finish();
    summary.attempts = ctx.attempts.load(Ordering::SeqCst);
    match failure {
        Some(e) => (Err(e), store),
        None => (Ok(summary), store),
    }
}

fn parked_until(st: &CellState) -> Option<Instant> {
    st.parked_until.lock().ok().and_then(|g| *g)
}

/// Extend the cell's park to `until`; true when this call extended it.
fn park(st: &CellState, until: Instant) -> bool {
    match st.parked_until.lock() {
        Ok(mut g) => {
            let later = g.is_none_or(|t| t < until);
            if later {
                *g = Some(until);
            }
            later
        }
        Err(_) => false,
    }
}

fn stop_cell(ctx: &Ctx, cell: usize, reason: String) {
    let st = &ctx.cells[cell];
    if !st.stopped.swap(true, Ordering::SeqCst) {
        if let Ok(mut g) = st.stop_reason.lock() {
            *g = Some(reason.clone());
        }
        ctx.sink.emit(Event::Stopped {
            cell,
            error: reason,
        });
    }
}

async fn run_item(ctx: &Ctx, item: WorkItem) -> Result<ItemEnd, RunError> {
    let study = &ctx.study;
    let cell = &study.cells[item.cell];
    let cond = &study.conditions[item.cond];
    let st = &ctx.cells[item.cell];
    let sample_id = format!("{}_{}", cond.id, item.idx);
    let est_tokens = estimate_input_tokens(&cond.prompt) + u64::from(cell.expected_output_tokens);
    let seed = u64::from_str_radix(&item.key[..16], 16).unwrap_or(0);
    // PROTOCOL 2.7: duration_ms spans the adapter calls and the retry sleeps between them,
    // not the wait for a free slot before the first call (with a local model's concurrency
    // of 1 that wait is most of a run).
    let mut item_start: Option<Instant> = None;
    let mut attempt_no = item.prior_attempts;
    let mut attempts_run = 0u32;
    let mut same_reason: HashMap<String, u32> = HashMap::new();
    loop {
        let outcome = {
            // Gate: a stopped cell ends the item; a parked cell waits, and is checked again
            // once the permits are held (a park may have started while this item queued).
            // (cell, global): the cell permit is dropped first, so the next waiter for the
            // global permit usually finds its cell permit free too.
            let (_c, _g) = loop {
                if st.stopped.load(Ordering::SeqCst) {
                    return Ok(ItemEnd::Skipped);
                }
                if let Some(t) = parked_until(st).filter(|t| *t > Instant::now()) {
                    tokio::time::sleep(t - Instant::now()).await;
                    continue;
                }
                let Ok(g) = ctx.global.acquire().await else {
                    return Ok(ItemEnd::Skipped);
                };
                let Ok(c) = st.sem.acquire().await else {
                    return Ok(ItemEnd::Skipped);
                };
                if st.stopped.load(Ordering::SeqCst) {
                    return Ok(ItemEnd::Skipped);
                }
                if parked_until(st).is_some_and(|t| t > Instant::now()) {
                    continue;
                }
                break (c, g);
            };
            item_start.get_or_insert_with(Instant::now);
            st.limiter.acquire(est_tokens).await;
            let t0 = Instant::now();
            let call_seed = attempt_seed(&item.key, attempt_no + 1);
            let r = match tokio::time::timeout(
                study.settings.timeout,
                st.provider.call_seeded(&cond.prompt, call_seed),
            )
            .await
            {
                Ok(r) => r,
                Err(_) => Err(CallError::new(
                    RetryClass::Transient { after: None },
                    "timeout",
                    format!("no reply within {} s", study.settings.timeout.as_secs_f64()),
                )),
            };
            // A fatal error stops the cell before this call's permits are released, so no
            // queued item of the cell sends another doomed request.
            // A server-directed delay applies to the whole route: park the cell at once so
            // queued items do not fire into it either (B06).
            if let Err(e) = &r {
                match e.class {
                    RetryClass::Fatal => stop_cell(ctx, item.cell, format!("fatal error: {e}")),
                    RetryClass::RateLimited { after: Some(a) }
                    | RetryClass::Transient { after: Some(a) }
                        if a <= study.settings.max_park =>
                    {
                        park(st, Instant::now() + a);
                    }
                    _ => {}
                }
            }
            (r, t0.elapsed())
        };
        let (result, call_time) = outcome;
        attempts_run += 1;
        attempt_no += 1;
        ctx.attempts.fetch_add(1, Ordering::Relaxed);
        let result = result.and_then(|c| match guard::error_like(&c.text) {
            None => Ok(c),
            Some(phrase) => {
                let mut e = CallError::new(
                    RetryClass::Transient { after: None },
                    "error_like_text",
                    format!("the reply text looks like an error message (matched {phrase:?}, PROTOCOL 2.7)"),
                );
                e.partial_text = Some(c.text.clone());
                e.raw = Some(c.raw.clone());
                e.usage = c.usage.clone();
                e.tokens = c.tokens;
                e.http_status = Some(c.http_status);
                e.finish_reason = c.finish_reason.clone();
                e.model_returned = c.model_returned.clone();
                Err(e)
            }
        });
        let tokens = match &result {
            Ok(c) => c.tokens,
            Err(e) => e.tokens,
        };
        st.limiter.settle(est_tokens, tokens.input + tokens.output);
        let cost = match &result {
            Ok(Completion {
                cost_usd: Some(c), ..
            }) => *c,
            _ => study
                .price_for(cell)
                .map(|p| {
                    tokens.input as f64 / 1e6 * p.input_per_mtok
                        + tokens.output as f64 / 1e6 * p.output_per_mtok
                })
                .unwrap_or(0.0),
        };
        let base = AttemptRow {
            work_key: item.key.clone(),
            run_id: Some(ctx.run_id),
            cell: cell.name.clone(),
            condition: cond.id.clone(),
            idx: item.idx,
            attempt: attempt_no,
            input_tokens: tokens.input,
            output_tokens: tokens.output,
            cost_usd: Some(cost),
            duration_ms: call_time.as_millis() as u64,
            ..Default::default()
        };
        let provider_key = cell.route.kind.trace_key().to_string();
        match result {
            Ok(c) => {
                let duration_ms = since(item_start);
                let payload = valid_trace(
                    &c,
                    duration_ms,
                    &provider_key,
                    &cell.route.model,
                    &cond.id,
                    &cond.prompt,
                );
                // The full trace is the sample's payload (same transaction); the attempt
                // keeps what vuf read from it, so nothing is stored twice.
                let attempt_trace = json!({
                    "answer_source": c.answer_source.as_str(),
                    "reasoning": c.reasoning,
                    "truncated": c.truncated,
                    "finish_reason": c.finish_reason,
                    "upstream": c.upstream,
                    "attempt": attempt_no,
                });
                let attempt = AttemptRow {
                    valid: true,
                    response: Some(c.text.clone()),
                    finish_reason: c.finish_reason.clone(),
                    truncated: c.truncated,
                    http_status: Some(c.http_status),
                    trace_json: attempt_trace.to_string(),
                    ..base
                };
                let sample = SampleRow {
                    cell: cell.name.clone(),
                    source_model: st.source_model.clone(),
                    model: st.model.clone(),
                    condition: cond.id.clone(),
                    idx: item.idx,
                    valid: true,
                    prompt: cond.prompt.clone(),
                    response: Some(c.text.clone()),
                    provider: provider_key,
                    model_returned: c.model_returned.clone(),
                    model_requested: cell.route.model.clone(),
                    duration_ms: Some(duration_ms),
                    finish_reason: c.finish_reason.clone(),
                    truncated: c.truncated,
                    upstream_error: false,
                    answer_source: Some(c.answer_source.as_str().to_string()),
                    usage_json: c.usage.as_ref().map(Value::to_string),
                    payload: pretty(&payload),
                    origin: format!("collect:{}", ctx.run_id),
                    ..Default::default()
                };
                ctx.writer.commit(attempt, Some(sample)).await?;
                ctx.sink.emit(Event::Attempt {
                    cell: item.cell,
                    sample: sample_id.clone(),
                    valid: true,
                    reason: None,
                    tokens: tokens.input + tokens.output,
                    cost_usd: cost,
                    retry_in: None,
                });
                ctx.sink.emit(Event::ItemDone {
                    cell: item.cell,
                    valid: true,
                });
                return Ok(ItemEnd::Valid);
            }
            Err(e) => {
                let n_same = if matches!(e.class, RetryClass::Deterministic { .. }) {
                    let n = same_reason.entry(e.reason.clone()).or_insert(0);
                    *n += 1;
                    *n
                } else {
                    0
                };
                let decision = retry::decide(
                    &study.settings,
                    &e.class,
                    attempts_run,
                    cell.max_attempts,
                    n_same,
                    seed,
                );
                let payload =
                    error_trace(&e, &provider_key, &cell.route.model, &cond.id, &cond.prompt);
                let final_invalid = matches!(decision, Decision::GiveUp);
                let attempt = AttemptRow {
                    valid: false,
                    reason: Some(e.reason.clone()),
                    retry_class: Some(e.class.as_str().to_string()),
                    http_status: e.http_status,
                    error: Some(e.message.clone()),
                    response: e.partial_text.clone(),
                    finish_reason: e.finish_reason.clone(),
                    trace_json: payload.to_string(),
                    ..base
                };
                let sample = final_invalid.then(|| SampleRow {
                    cell: cell.name.clone(),
                    source_model: st.source_model.clone(),
                    model: st.model.clone(),
                    condition: cond.id.clone(),
                    idx: item.idx,
                    valid: false,
                    prompt: cond.prompt.clone(),
                    response: None,
                    provider: provider_key.clone(),
                    model_returned: e.model_returned.clone(),
                    model_requested: cell.route.model.clone(),
                    duration_ms: Some(since(item_start)),
                    finish_reason: e.finish_reason.clone(),
                    truncated: false,
                    upstream_error: e.reason == "upstream_error_in_choice",
                    answer_source: None,
                    error: Some(e.message.clone()),
                    invalid_reason: Some(e.reason.clone()),
                    http_status: e.http_status,
                    usage_json: e.usage.as_ref().map(Value::to_string),
                    payload: pretty(&payload),
                    origin: format!("collect:{}", ctx.run_id),
                });
                ctx.writer.commit(attempt, sample).await?;
                let retry_in = match &decision {
                    Decision::Retry(w) | Decision::ParkCell(w) => Some(*w),
                    _ => None,
                };
                ctx.sink.emit(Event::Attempt {
                    cell: item.cell,
                    sample: sample_id.clone(),
                    valid: false,
                    reason: Some(e.reason.clone()),
                    tokens: tokens.input + tokens.output,
                    cost_usd: cost,
                    retry_in,
                });
                match decision {
                    Decision::Retry(w) => tokio::time::sleep(w).await,
                    Decision::ParkCell(w) => {
                        if park(st, Instant::now() + w) {
                            ctx.sink.emit(Event::Parked {
                                cell: item.cell,
                                wait: w,
                            });
                        }
                    }
                    Decision::GiveUp => {
                        ctx.sink.emit(Event::ItemDone {
                            cell: item.cell,
                            valid: false,
                        });
                        return Ok(ItemEnd::Invalid);
                    }
                    Decision::StopCell(why) => {
                        stop_cell(ctx, item.cell, format!("{why}: {e}"));
                        return Ok(ItemEnd::Skipped);
                    }
                }
            }
        }
    }
}

/// Milliseconds since `start` (0 if the item never reached a call).
fn since(start: Option<Instant>) -> u64 {
    start.map_or(0, |t| t.elapsed().as_millis() as u64)
}

/// The sampling seed of attempt `attempt` (1-based, counted across runs) of a work item:
/// the first 8 bytes of SHA-256(key, attempt). The key hashes the cell configuration
/// (including a study seed), condition and index, so reruns reproduce every sample while
/// samples, cells and retries all draw different streams.
pub fn attempt_seed(key: &str, attempt: u32) -> u64 {
    use sha2::{Digest, Sha256};
    let h = Sha256::digest(format!("{key}:{attempt}").as_bytes());
    let mut b = [0u8; 8];
    b.copy_from_slice(&h[..8]);
    u64::from_le_bytes(b)
}

/// Pretty JSON with 2-space indent (the published trace layout).
fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
}

/// A valid trace in the PROTOCOL 2.8 field order.
fn valid_trace(
    c: &Completion,
    duration_ms: u64,
    provider: &str,
    model_requested: &str,
    condition: &str,
    prompt: &str,
) -> Value {
    json!({
        "result": c.text,
        "usage": c.usage.clone().unwrap_or(Value::Null),
        "model": c.model_returned.clone().unwrap_or_else(|| model_requested.to_string()),
        "raw": c.raw,
        "duration_ms": duration_ms,
        "provider": provider,
        "model_requested": model_requested,
        "condition": condition,
        "prompt": prompt,
    })
}

/// An error trace in the PROTOCOL 2.8 shape, plus the reason and what the reply carried.
fn error_trace(
    e: &CallError,
    provider: &str,
    model_requested: &str,
    condition: &str,
    prompt: &str,
) -> Value {
    let mut v = json!({
        "error": e.message,
        "provider": provider,
        "model": model_requested,
        "condition": condition,
        "prompt": prompt,
    });
    if let Some(s) = e.http_status {
        v["http_status"] = json!(s);
    }
    if let Some(b) = &e.http_body {
        v["http_body"] = json!(b);
    }
    v["reason"] = json!(e.reason);
    if let Some(p) = &e.partial_text {
        v["partial_text"] = json!(p);
    }
    if let Some(r) = &e.raw {
        v["raw"] = r.clone();
    }
    v
}
