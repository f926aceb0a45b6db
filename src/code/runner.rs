//! `vuf code`: the live coder runner (PROTOCOL 4.1, 4.6, 5.1, 5.6).
//!
//! For one layer: every valid sample x every configured coder that has no code yet under
//! the current rubric hash is a work item. Items run on per-coder worker threads (the
//! HTTP wait happens outside the store lock; store writes are short and serialised by
//! one mutex). Per item: look the exact request up in the cache (an identical request is
//! never sent twice), else call with retries (4 attempts, waits 1, 2, 4 s doubling up to
//! a cap, at least what `Retry-After` asks); parse; an unusable reply is re-asked once.
//! Outcomes:
//! - clean code -> stored (source `models`), open ledger lines resolved;
//! - Layer A still unclean after the re-ask -> stored as the published rule does
//!   (`topics []`, `parse_clean = false`, a vote of no topics) and ledgered `unclean`;
//! - Layer B still unparsable -> ledgered `parse_failed`, no code: re-coded next run;
//! - call failed after all attempts -> ledgered `call_failed`, no code, no vote: next run.
//!
//! A fatal error (missing key, 401/403) stops that coder and is reported once.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{json, Value};

use super::client::{CallError, CoderClient, Endpoint};
use super::parse::{assess_codes, parse_posture, reply_text, CodesIssue, ReplyText, TextSource};
use super::prompt::{self, CallParams};
use super::rubric::Rubric;
use super::sequential;
use super::Layer;
use crate::protocol::Chain;
use crate::store::codes::{self, NewCode, NewFailure, SampleToCode};
use crate::store::Store;

/// One coder as configured in the study file (`[[coders]]`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CoderConfig {
    /// Coder key (e.g. `kimi-k2-6`): stored with every code.
    pub key: String,
    /// Model id at the endpoint.
    pub model: String,
    /// Base URL of an OpenAI-compatible API.
    #[serde(default = "default_base_url")]
    pub base_url: String,
    /// Environment variable with the API key (`""` or absent for no auth).
    #[serde(default)]
    pub api_key_env: Option<String>,
    /// Temperature (default 0).
    #[serde(default)]
    pub temperature: f64,
    /// Layer A token limit (default 800).
    #[serde(default = "default_max_a")]
    pub max_tokens_a: u32,
    /// Layer B token limit (default 350).
    #[serde(default = "default_max_b")]
    pub max_tokens_b: u32,
    /// Ask for reasoning off (default true).
    #[serde(default = "default_true")]
    pub reasoning_off: bool,
    /// Concurrent requests for this coder (default 8).
    #[serde(default = "default_workers")]
    pub workers: usize,
}

fn default_base_url() -> String {
    "https://openrouter.ai/api/v1".into()
}
fn default_max_a() -> u32 {
    800
}
fn default_max_b() -> u32 {
    350
}
fn default_true() -> bool {
    true
}
fn default_workers() -> usize {
    8
}

impl CoderConfig {
    /// A coder on OpenRouter with the paper's parameters.
    pub fn openrouter(key: &str, model: &str) -> CoderConfig {
        CoderConfig {
            key: key.into(),
            model: model.into(),
            base_url: default_base_url(),
            api_key_env: Some("OPENROUTER_API_KEY".into()),
            temperature: 0.0,
            max_tokens_a: 800,
            max_tokens_b: 350,
            reasoning_off: true,
            workers: 8,
        }
    }

    /// The endpoint.
    pub fn endpoint(&self) -> Endpoint {
        Endpoint {
            base_url: self.base_url.clone(),
            api_key_env: self.api_key_env.clone().filter(|v| !v.is_empty()),
        }
    }

    /// Call parameters for a layer.
    pub fn params(&self, layer: Layer) -> CallParams {
        CallParams {
            model: self.model.clone(),
            temperature: self.temperature,
            max_tokens: match layer {
                Layer::A => self.max_tokens_a,
                Layer::B => self.max_tokens_b,
            },
            reasoning_off: self.reasoning_off,
        }
    }
}

/// The paper's three coders via OpenRouter (PROTOCOL 4.1), in the fixed order.
pub fn default_coders() -> Vec<CoderConfig> {
    vec![
        CoderConfig::openrouter("kimi-k2-6", "moonshotai/kimi-k2.6"),
        CoderConfig::openrouter("glm-4-7", "z-ai/glm-4.7"),
        CoderConfig::openrouter("qwen3-6-35b-a3b", "qwen/qwen3.6-35b-a3b"),
    ]
}

/// Read the `[[coders]]` section of a study file; the defaults when it has none.
pub fn coders_from_toml(text: &str) -> anyhow::Result<Vec<CoderConfig>> {
    #[derive(Deserialize)]
    struct Study {
        #[serde(default)]
        coders: Vec<CoderConfig>,
    }
    let table: toml::Table = toml::from_str(text)?;
    let coders = match table.get("coders") {
        None => return Ok(default_coders()),
        Some(v) => {
            Study::deserialize(toml::Value::Table(toml::Table::from_iter([(
                "coders".to_string(),
                v.clone(),
            )])))?
            .coders
        }
    };
    let mut seen = std::collections::HashSet::new();
    for c in &coders {
        // The key is stored with every code and printed in tables: plain visible text.
        let bad = |ch: char| {
            ch.is_whitespace()
                || ch.is_control()
                || matches!(ch, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
        };
        if c.key.is_empty() || c.key.chars().any(bad) {
            anyhow::bail!(
                "coder key {:?}: use visible characters without spaces (it is stored with every code)",
                c.key
            );
        }
        if !seen.insert(c.key.clone()) {
            anyhow::bail!("coder key {} appears twice", c.key);
        }
    }
    Ok(coders)
}

/// Retry policy of coder calls (PROTOCOL 4.6, 5.1).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// HTTP attempts in all (4).
    pub attempts: u32,
    /// First wait (1 s); doubles each time.
    pub base_wait: Duration,
    /// Longest wait (12 s Layer A, 10 s Layer B).
    pub max_wait: Duration,
}

impl RetryPolicy {
    /// The paper's policy for a layer.
    pub fn paper(layer: Layer) -> RetryPolicy {
        RetryPolicy {
            attempts: 4,
            base_wait: Duration::from_secs(1),
            max_wait: Duration::from_secs(match layer {
                Layer::A => 12,
                Layer::B => 10,
            }),
        }
    }

    /// Wait before attempt `n + 1` after failed attempt `n` (1-based).
    pub fn wait(&self, n: u32, retry_after: Option<Duration>) -> Duration {
        let backoff = self
            .base_wait
            .saturating_mul(1u32 << (n - 1).min(16))
            .min(self.max_wait);
        retry_after.map_or(backoff, |r| r.max(backoff))
    }
}

/// Options of one run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Layer to code.
    pub layer: Layer,
    /// Rubric (its hash keys the codes).
    pub rubric: Rubric,
    /// Layer B: hide the prompt (PROTOCOL 5.3).
    pub mask_prompt: bool,
    /// Retries.
    pub retry: RetryPolicy,
    /// Timeout per call (90 s Layer A, 120 s Layer B).
    pub timeout: Duration,
    /// Code at most this many samples (in sample order), for trials.
    pub limit: Option<usize>,
    /// Identifier of this run (stored in `origin`).
    pub run_id: String,
    /// Code only these samples (`samples.id`), e.g. the cascade's uncertain ones.
    pub only: Option<std::collections::HashSet<i64>>,
    /// Sequential majority (`super::sequential`): ask the coders in the fixed order, the
    /// first two first, and a further coder only while the consensus is still open; the
    /// coders not asked are recorded as skipped by design. Off by default: the published
    /// design asks every coder (and reliability statistics need every coder).
    pub sequential: bool,
}

impl RunOptions {
    /// The paper's settings with a rubric.
    pub fn paper(layer: Layer, rubric: Rubric) -> RunOptions {
        RunOptions {
            layer,
            rubric,
            mask_prompt: false,
            retry: RetryPolicy::paper(layer),
            timeout: Duration::from_secs(match layer {
                Layer::A => 90,
                Layer::B => 120,
            }),
            limit: None,
            run_id: super::now_utc_iso(),
            only: None,
            sequential: false,
        }
    }
}

/// Progress events (drawn by the CLI).
#[derive(Debug, Clone, PartialEq)]
pub enum Progress {
    /// Work planned for a coder.
    Planned {
        /// Coder.
        coder: String,
        /// Items to code.
        pending: usize,
        /// Already coded under this rubric.
        existing: usize,
    },
    /// One item finished.
    Item {
        /// Coder.
        coder: String,
        /// Sample.
        layered_id: String,
        /// `clean`, `unclean`, `parse_failed`, `call_failed`, `stopped`.
        outcome: &'static str,
    },
    /// A coder was stopped by a fatal error (reported once).
    CoderStopped {
        /// Coder.
        coder: String,
        /// Why.
        error: String,
    },
}

/// Counts per coder.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CoderStats {
    /// Items planned.
    pub pending: usize,
    /// Already coded before the run.
    pub existing: usize,
    /// Clean codes stored.
    pub clean: usize,
    /// Layer A unclean codes stored (votes of no topics).
    pub unclean: usize,
    /// Layer B replies still unparsable after the re-ask (ledgered, no code).
    pub parse_failed: usize,
    /// Calls failed after all attempts (ledgered, no code).
    pub call_failed: usize,
    /// Items not attempted because the coder was stopped.
    pub stopped: usize,
    /// Samples this coder was not asked by design (sequential majority).
    pub skipped: usize,
    /// Requests answered from the cache.
    pub cache_hits: usize,
    /// HTTP requests sent (including retries).
    pub http_requests: usize,
    /// Re-asks sent after an unusable reply.
    pub reasks: usize,
    /// Prompt tokens reported by the endpoint (sent requests only, not cache hits).
    pub prompt_tokens: u64,
    /// Completion tokens reported by the endpoint.
    pub completion_tokens: u64,
}

/// What a run did, per coder.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunReport {
    /// Stats per coder key.
    pub coders: BTreeMap<String, CoderStats>,
    /// Fatal errors (coder -> message).
    pub fatal: BTreeMap<String, String>,
    /// Layer A only: samples not coded because their condition is not one of the six (a
    /// custom condition has no Layer A taxonomy, [`super::layer_a_chain`]), per condition.
    pub layer_a_skipped: BTreeMap<String, usize>,
}

struct Item {
    coder: usize,
    /// An earlier reply to this item was unusable: do not answer it from the cache.
    bypass_cache: bool,
    sample: SampleToCode,
    /// The chain whose taxonomy a Layer A reply is read against (Layer A items only).
    chain: Option<Chain>,
    body: Value,
}

enum Settled {
    Clean(NewCode),
    Unclean(NewCode),
    ParseFailed,
    CallFailed,
    Stopped,
}

struct Shared<'a> {
    store: Mutex<&'a mut Store>,
    stats: Mutex<RunReport>,
    stopped: Vec<AtomicBool>,
}

/// What every request of a run needs, built once.
struct Plan<'c> {
    coders: &'c [CoderConfig],
    opts: &'c RunOptions,
    topics: std::collections::HashMap<i64, Vec<String>>,
    reparse: std::collections::HashSet<(i64, String)>,
}

impl Plan<'_> {
    /// The request of coder `ci` for sample `s`.
    fn item(&self, ci: usize, s: &SampleToCode) -> anyhow::Result<Item> {
        let coder = &self.coders[ci];
        let params = coder.params(self.opts.layer);
        let condition = crate::protocol::Condition::parse(&s.condition);
        let body = match self.opts.layer {
            Layer::A => {
                // `run` leaves samples outside the six out of Layer A.
                let Some(condition) = condition else {
                    anyhow::bail!(
                        "sample {}: condition {} has no Layer A taxonomy (not one of the six)",
                        s.layered_id,
                        s.condition
                    );
                };
                prompt::layer_a_request(
                    &params,
                    &self.opts.rubric,
                    condition,
                    &s.prompt,
                    &s.response,
                )
            }
            Layer::B => {
                let t = self.topics.get(&s.id).cloned().unwrap_or_default();
                prompt::layer_b_request(
                    &params,
                    &self.opts.rubric,
                    &t,
                    &s.prompt,
                    &s.response,
                    self.opts.mask_prompt,
                )
            }
        };
        Ok(Item {
            coder: ci,
            bypass_cache: self.reparse.contains(&(s.id, coder.key.clone())),
            sample: s.clone(),
            chain: condition.map(crate::protocol::Condition::chain),
            body,
        })
    }
}

/// Run the coders of `coders` over the store's valid samples for one layer: every coder
/// on every sample, or, with `opts.sequential`, sequential majority.
pub fn run(
    store: &mut Store,
    client: &dyn CoderClient,
    coders: &[CoderConfig],
    opts: &RunOptions,
    progress: &(dyn Fn(&Progress) + Sync),
) -> anyhow::Result<RunReport> {
    let layer = opts.layer;
    let mut samples = codes::samples_to_code(store.conn())?;
    if let Some(only) = &opts.only {
        samples.retain(|s| only.contains(&s.id));
    }
    if let Some(n) = opts.limit {
        samples.truncate(n);
    }
    // Layer A codes the six conditions only: a custom condition has no taxonomy.
    let mut layer_a_skipped: BTreeMap<String, usize> = BTreeMap::new();
    if layer == Layer::A {
        samples.retain(|s| {
            let coded = super::layer_a_chain(&s.condition).is_some();
            if !coded {
                *layer_a_skipped.entry(s.condition.clone()).or_default() += 1;
            }
            coded
        });
    }
    let plan = Plan {
        coders,
        opts,
        topics: match layer {
            Layer::B => codes::consensus_topic_keys(store.conn())?,
            Layer::A => Default::default(),
        },
        reparse: codes::open_parse_failures(store.conn(), layer.as_str(), &opts.rubric.hash)?,
    };
    if opts.sequential {
        let mut report = run_sequential(store, client, &plan, &samples, progress)?;
        report.layer_a_skipped = layer_a_skipped;
        return Ok(report);
    }
    let mut report = RunReport {
        layer_a_skipped,
        ..Default::default()
    };
    let mut queues: Vec<Vec<Item>> = coders.iter().map(|_| Vec::new()).collect();
    for (ci, coder) in coders.iter().enumerate() {
        let stats = report.coders.entry(coder.key.clone()).or_default();
        for s in &samples {
            if codes::code_exists(
                store.conn(),
                s.id,
                layer.as_str(),
                &coder.key,
                "models",
                &opts.rubric.hash,
            )? {
                stats.existing += 1;
                continue;
            }
            queues[ci].push(plan.item(ci, s)?);
        }
        stats.pending = queues[ci].len();
        progress(&Progress::Planned {
            coder: coder.key.clone(),
            pending: stats.pending,
            existing: stats.existing,
        });
    }
    execute(store, client, coders, opts, progress, queues, report)
}

/// Sequential majority in rounds: each round asks, per open sample, the next coders in the
/// fixed order (two while fewer than two have voted, else one) that this run has not
/// asked yet; a sample whose consensus is settled gets its remaining coders recorded as
/// skipped. A coder that failed stays open (it is asked again on the next run).
fn run_sequential(
    store: &mut Store,
    client: &dyn CoderClient,
    plan: &Plan,
    samples: &[SampleToCode],
    progress: &(dyn Fn(&Progress) + Sync),
) -> anyhow::Result<RunReport> {
    let (coders, opts) = (plan.coders, plan.opts);
    let layer = opts.layer;
    let keys: Vec<String> = coders.iter().map(|c| c.key.clone()).collect();
    let mut order: Vec<usize> = (0..coders.len()).collect();
    order.sort_by_key(|&i| super::coder_rank(&keys[i], &keys));
    let mut report = RunReport::default();
    for k in &keys {
        report.coders.entry(k.clone()).or_default();
    }
    let mut asked: std::collections::HashSet<(i64, usize)> = Default::default();
    let mut finished: std::collections::HashSet<i64> = Default::default();
    let origin = format!("live:{}", opts.run_id);
    for round in 0.. {
        let mut queues: Vec<Vec<Item>> = coders.iter().map(|_| Vec::new()).collect();
        for s in samples {
            if finished.contains(&s.id) {
                continue;
            }
            let have: Vec<codes::StoredCode> =
                codes::codes_of_sample(store.conn(), s.id, layer.as_str())?
                    .into_iter()
                    .filter(|c| c.source == "models" && c.rubric_hash == opts.rubric.hash)
                    .collect();
            let voted: Vec<&codes::StoredCode> = order
                .iter()
                .filter_map(|&ci| have.iter().find(|c| c.coder == keys[ci]))
                .collect();
            let open: Vec<usize> = order
                .iter()
                .copied()
                .filter(|&ci| !have.iter().any(|c| c.coder == keys[ci]))
                .collect();
            if round == 0 {
                for c in &voted {
                    if let Some(st) = report.coders.get_mut(&c.coder) {
                        st.existing += 1;
                    }
                }
            }
            if open.is_empty() {
                finished.insert(s.id);
                continue;
            }
            let settled = match layer {
                Layer::A => {
                    let v = super::recompute::topic_votes(voted.iter().copied());
                    sequential::topics_settled(&v, open.len())
                }
                Layer::B => {
                    let v = super::recompute::posture_votes(voted.iter().copied());
                    sequential::posture_settled(&v, open.len())
                }
            };
            if settled {
                let now = super::now_utc_iso();
                for &ci in &open {
                    codes::record_skip(
                        store.conn(),
                        s.id,
                        layer.as_str(),
                        &keys[ci],
                        &opts.rubric.hash,
                        &origin,
                        &now,
                    )?;
                    // A coder that failed earlier is no longer needed: not outstanding.
                    codes::resolve_failures(
                        store.conn(),
                        s.id,
                        layer.as_str(),
                        &keys[ci],
                        &opts.rubric.hash,
                    )?;
                    if let Some(st) = report.coders.get_mut(&keys[ci]) {
                        st.skipped += 1;
                    }
                }
                finished.insert(s.id);
                continue;
            }
            let want = 2usize.saturating_sub(voted.len()).max(1);
            let next: Vec<usize> = open
                .into_iter()
                .filter(|&ci| !asked.contains(&(s.id, ci)))
                .take(want)
                .collect();
            for ci in next {
                asked.insert((s.id, ci));
                queues[ci].push(plan.item(ci, s)?);
            }
        }
        if queues.iter().all(Vec::is_empty) {
            break;
        }
        for (ci, q) in queues.iter().enumerate() {
            let st = report.coders.entry(keys[ci].clone()).or_default();
            st.pending += q.len();
            progress(&Progress::Planned {
                coder: keys[ci].clone(),
                pending: q.len(),
                existing: st.existing,
            });
        }
        report = execute(store, client, coders, opts, progress, queues, report)?;
    }
    Ok(report)
}

/// Run the queued items on per-coder worker threads, adding to `report`.
fn execute(
    store: &mut Store,
    client: &dyn CoderClient,
    coders: &[CoderConfig],
    opts: &RunOptions,
    progress: &(dyn Fn(&Progress) + Sync),
    queues: Vec<Vec<Item>>,
    report: RunReport,
) -> anyhow::Result<RunReport> {
    let shared = Shared {
        store: Mutex::new(store),
        stats: Mutex::new(report),
        stopped: coders.iter().map(|_| AtomicBool::new(false)).collect(),
    };
    let queues: Vec<Mutex<std::vec::IntoIter<Item>>> = queues
        .into_iter()
        .map(|q| Mutex::new(q.into_iter()))
        .collect();
    let first_error: Mutex<Option<anyhow::Error>> = Mutex::new(None);
    std::thread::scope(|scope| {
        for (ci, coder) in coders.iter().enumerate() {
            for _ in 0..coder.workers.max(1) {
                let (shared, queues, first_error) = (&shared, &queues, &first_error);
                scope.spawn(move || loop {
                    let next = queues[ci].lock().ok().and_then(|mut q| q.next());
                    let Some(item) = next else { break };
                    if let Err(e) = code_item(shared, client, coders, opts, &item, progress) {
                        if let Ok(mut slot) = first_error.lock() {
                            slot.get_or_insert(e);
                        }
                        break;
                    }
                });
            }
        }
    });
    if let Some(e) = first_error.into_inner().unwrap_or(None) {
        return Err(e);
    }
    Ok(shared.stats.into_inner().unwrap_or_default())
}

fn with_stats(shared: &Shared, coder: &str, f: impl FnOnce(&mut CoderStats)) {
    if let Ok(mut r) = shared.stats.lock() {
        f(r.coders.entry(coder.to_string()).or_default());
    }
}

fn lock_store<'s, 'a>(
    shared: &'s Shared<'a>,
) -> anyhow::Result<std::sync::MutexGuard<'s, &'a mut Store>> {
    shared
        .store
        .lock()
        .map_err(|_| anyhow::anyhow!("store lock poisoned"))
}

/// One request: the cache, else the endpoint with retries. `Ok(None)` = call failed
/// (ledgered by the caller) or coder stopped.
fn call(
    shared: &Shared,
    client: &dyn CoderClient,
    coder: &CoderConfig,
    ci: usize,
    opts: &RunOptions,
    body: &Value,
    use_cache: bool,
) -> anyhow::Result<Result<Value, CallError>> {
    let key = prompt::cache_key(&coder.key, &opts.rubric.hash, body);
    let cached = if use_cache {
        codes::cache_get(lock_store(shared)?.conn(), &key)?
    } else {
        None
    };
    if let Some(cached) = cached {
        if let Ok(v) = serde_json::from_str::<Value>(&cached) {
            with_stats(shared, &coder.key, |s| s.cache_hits += 1);
            return Ok(Ok(v));
        }
    }
    let endpoint = coder.endpoint();
    let mut last = CallError::Transport("no attempt made".into());
    for attempt in 1..=opts.retry.attempts.max(1) {
        if shared.stopped[ci].load(Ordering::Relaxed) {
            return Ok(Err(CallError::Config("coder stopped".into())));
        }
        with_stats(shared, &coder.key, |s| s.http_requests += 1);
        match client.complete(&endpoint, body, opts.timeout) {
            Ok(v) => {
                let usage = |k: &str| {
                    v.pointer(&format!("/usage/{k}"))
                        .and_then(Value::as_u64)
                        .unwrap_or(0)
                };
                let (pt, ct) = (usage("prompt_tokens"), usage("completion_tokens"));
                with_stats(shared, &coder.key, |s| {
                    s.prompt_tokens += pt;
                    s.completion_tokens += ct;
                });
                codes::cache_put(
                    lock_store(shared)?.conn(),
                    &key,
                    &v.to_string(),
                    &super::now_utc_iso(),
                )?;
                return Ok(Ok(v));
            }
            Err(e) if e.is_fatal() => return Ok(Err(e)),
            Err(e) => {
                let ra = match &e {
                    CallError::Status { retry_after, .. } => *retry_after,
                    _ => None,
                };
                last = e;
                if attempt < opts.retry.attempts {
                    std::thread::sleep(opts.retry.wait(attempt, ra));
                }
            }
        }
    }
    Ok(Err(last))
}

fn failure(
    item: &Item,
    coder: &str,
    opts: &RunOptions,
    kind: &str,
    error: String,
    raw: Option<String>,
    attempt: i64,
) -> NewFailure {
    NewFailure {
        sample_id: item.sample.id,
        layer: opts.layer.as_str().into(),
        coder: coder.into(),
        rubric_hash: opts.rubric.hash.clone(),
        kind: kind.into(),
        error,
        raw_text: raw,
        attempt,
        failed_at: super::now_utc_iso(),
    }
}

fn params_json(
    coder: &CoderConfig,
    body: &Value,
    opts: &RunOptions,
    reply: &ReplyText,
    reasked: bool,
) -> String {
    let mut p = json!({
        "coder_model": coder.model,
        "base_url": coder.base_url,
        "temperature": body["temperature"],
        "max_tokens": body["max_tokens"],
        "mask_prompt": opts.mask_prompt,
        "reasked": reasked,
        "text_source": reply.source.as_str(),
        "finish_reason": reply.finish_reason,
        "rubric_origin": opts.rubric.origin,
    });
    if let Some(r) = body.get("reasoning") {
        p["reasoning"] = r.clone();
        p["include_reasoning"] = body["include_reasoning"].clone();
    }
    p.to_string()
}

/// Parse a reply for this item: `Ok(code)` usable, `Err((reason, code_if_any, budget))`.
fn interpret(
    item: &Item,
    coder: &CoderConfig,
    opts: &RunOptions,
    body: &Value,
    raw: &Value,
    reasked: bool,
) -> (Result<NewCode, (String, Option<NewCode>, bool)>, ReplyText) {
    let reply = reply_text(raw);
    let mut code = NewCode {
        sample_id: item.sample.id,
        layer: opts.layer.as_str().into(),
        coder: coder.key.clone(),
        source: "models".into(),
        rubric_hash: opts.rubric.hash.clone(),
        raw_text: Some(reply.text.clone()),
        raw_json: Some(raw.to_string()),
        params_json: Some(params_json(coder, body, opts, &reply, reasked)),
        origin: format!("live:{}", opts.run_id),
        coded_at: super::now_utc_iso(),
        ..Default::default()
    };
    let out = match opts.layer {
        Layer::A => {
            // Every Layer A item has a chain (`Plan::item`); without one there is nothing
            // to read the reply against.
            let Some(chain) = item.chain else {
                let reason = format!(
                    "condition {} has no Layer A taxonomy",
                    item.sample.condition
                );
                return (Err((reason, None, false)), reply);
            };
            let p = assess_codes(&reply, chain);
            code.topics = Some(p.topics.iter().map(|t| t.to_string()).collect());
            code.parse_clean = Some(p.parse_clean);
            match p.issue {
                None => Ok(code),
                Some(issue) => {
                    let budget = reply.truncated()
                        && matches!(issue, CodesIssue::EmptyReply | CodesIssue::Truncated);
                    let mut reason = issue.as_str().to_string();
                    if reply.truncated() {
                        reason.push_str(" (finish_reason=length)");
                    }
                    if reply.source.is_reasoning() {
                        reason.push_str(&format!(" (text from {})", reply.source.as_str()));
                    }
                    code.flags_json = Some(json!({ "unclean": issue.as_str() }).to_string());
                    Err((reason, Some(code), budget))
                }
            }
        }
        Layer::B => match parse_posture(&reply.text) {
            Ok(p) => {
                code.label = Some(p.label.as_str().into());
                code.original_label =
                    (p.raw_label != p.label.as_str()).then(|| p.raw_label.clone());
                code.value_holding = Some(p.value_holding.as_str().into());
                code.secondary_texture = p.secondary_texture.clone();
                code.boundary_flag = Some(p.boundary_flag);
                code.notes = Some(p.notes.clone());
                let mut flags: Vec<&str> = p.flags.iter().map(|f| f.as_str()).collect();
                if reply.source != TextSource::Content {
                    flags.push("text_from_reasoning");
                }
                code.flags_json = (!flags.is_empty()).then(|| json!(flags).to_string());
                Ok(code)
            }
            Err(e) => {
                let budget = reply.truncated() && reply.text.trim().is_empty();
                Err((e.to_string(), None, budget))
            }
        },
    };
    (out, reply)
}

fn code_item(
    shared: &Shared,
    client: &dyn CoderClient,
    coders: &[CoderConfig],
    opts: &RunOptions,
    item: &Item,
    progress: &(dyn Fn(&Progress) + Sync),
) -> anyhow::Result<()> {
    let coder = &coders[item.coder];
    let ci = item.coder;
    let settled = 'settle: {
        if shared.stopped[ci].load(Ordering::Relaxed) {
            break 'settle Settled::Stopped;
        }
        let mut body = item.body.clone();
        let mut reasked = false;
        loop {
            let raw = match call(shared, client, coder, ci, opts, &body, !item.bypass_cache)? {
                Ok(v) => v,
                Err(e) if e.is_fatal() => {
                    if !shared.stopped[ci].swap(true, Ordering::Relaxed) {
                        progress(&Progress::CoderStopped {
                            coder: coder.key.clone(),
                            error: e.to_string(),
                        });
                        if let Ok(mut r) = shared.stats.lock() {
                            r.fatal.insert(coder.key.clone(), e.to_string());
                        }
                    }
                    break 'settle Settled::Stopped;
                }
                Err(e) => {
                    let f = failure(
                        item,
                        &coder.key,
                        opts,
                        "call_failed",
                        e.to_string(),
                        None,
                        1 + reasked as i64,
                    );
                    codes::record_failure(lock_store(shared)?.conn(), &f)?;
                    break 'settle Settled::CallFailed;
                }
            };
            let (result, reply) = interpret(item, coder, opts, &body, &raw, reasked);
            match result {
                Ok(code) => break 'settle Settled::Clean(code),
                Err((reason, code, budget)) => {
                    let kind = if code.is_some() {
                        "unclean"
                    } else {
                        "parse_failed"
                    };
                    let f = failure(
                        item,
                        &coder.key,
                        opts,
                        kind,
                        reason.clone(),
                        Some(reply.text.clone()),
                        1 + reasked as i64,
                    );
                    codes::record_failure(lock_store(shared)?.conn(), &f)?;
                    if reasked {
                        break 'settle match code {
                            Some(c) => Settled::Unclean(c),
                            None => Settled::ParseFailed,
                        };
                    }
                    reasked = true;
                    with_stats(shared, &coder.key, |s| s.reasks += 1);
                    body = prompt::reask_request(&item.body, &reply.text, &reason, budget);
                }
            }
        }
    };
    let outcome = match settled {
        Settled::Clean(code) | Settled::Unclean(code) => {
            let clean = code.parse_clean != Some(false);
            let guard = lock_store(shared)?;
            codes::upsert_code(guard.conn(), &code)?;
            if clean {
                codes::resolve_failures(
                    guard.conn(),
                    item.sample.id,
                    opts.layer.as_str(),
                    &coder.key,
                    &opts.rubric.hash,
                )?;
            }
            drop(guard);
            if clean {
                with_stats(shared, &coder.key, |s| s.clean += 1);
                "clean"
            } else {
                with_stats(shared, &coder.key, |s| s.unclean += 1);
                "unclean"
            }
        }
        Settled::ParseFailed => {
            with_stats(shared, &coder.key, |s| s.parse_failed += 1);
            "parse_failed"
        }
        Settled::CallFailed => {
            with_stats(shared, &coder.key, |s| s.call_failed += 1);
            "call_failed"
        }
        Settled::Stopped => {
            with_stats(shared, &coder.key, |s| s.stopped += 1);
            "stopped"
        }
    };
    progress(&Progress::Item {
        coder: coder.key.clone(),
        layered_id: item.sample.layered_id.clone(),
        outcome,
    });
    Ok(())
}

/// Outstanding coder failures (for `vuf status`): (sample, layer, coder) with an open
/// call or parse failure and no code.
pub fn outstanding_failures(store: &Store) -> anyhow::Result<i64> {
    Ok(codes::outstanding_failures(store.conn())?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_and_cap() {
        let p = RetryPolicy::paper(Layer::A);
        let w: Vec<u64> = (1..=5).map(|n| p.wait(n, None).as_secs()).collect();
        assert_eq!(w, [1, 2, 4, 8, 12]);
        assert_eq!(
            p.wait(1, Some(Duration::from_secs(30))),
            Duration::from_secs(30)
        );
        assert_eq!(
            RetryPolicy::paper(Layer::B).wait(5, None),
            Duration::from_secs(10)
        );
    }

    #[test]
    fn coder_config_from_toml() {
        let c = coders_from_toml("title = 'x'\n").unwrap();
        assert_eq!(
            c.iter().map(|c| c.key.as_str()).collect::<Vec<_>>(),
            crate::code::PAPER_CODERS
        );
        assert_eq!(
            (c[0].max_tokens_a, c[0].max_tokens_b, c[0].temperature),
            (800, 350, 0.0)
        );
        let c = coders_from_toml(
            "[[coders]]\nkey = 'local'\nmodel = 'smol'\nbase_url = 'http://127.0.0.1:8080/v1'\nworkers = 2\n",
        )
        .unwrap();
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].endpoint().api_key_env, None);
        assert!(c[0].reasoning_off);
        assert!(coders_from_toml(
            "[[coders]]\nkey='a'\nmodel='m'\n[[coders]]\nkey='a'\nmodel='n'\n"
        )
        .is_err());
        assert!(coders_from_toml("[[coders]]\nkey='a'\nmodle='m'\n").is_err());
        // A key is stored with every code and printed: no spaces, no control characters.
        for key in ["", "my coder", "k\\u001b[2J"] {
            let e = coders_from_toml(&format!("[[coders]]\nkey=\"{key}\"\nmodel='m'\n"))
                .unwrap_err()
                .to_string();
            assert!(e.contains("use visible characters without spaces"), "{e}");
            assert!(!e.contains('\u{1b}'), "{e:?}");
        }
    }
}
