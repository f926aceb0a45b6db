//! Mock providers for offline runs, tests and benchmarks.
//!
//! * [`MockProvider`]: an in-process provider a study file can select (`provider = "mock"`),
//!   answering every prompt with deterministic text through the real chat parser, so
//!   end-to-end runs need no network.
//! * [`FaultServer`]: a real HTTP/1.1 server on 127.0.0.1 speaking the OpenAI chat wire,
//!   with a fixed latency and configurable faults (429 + Retry-After, 5xx, slow past the
//!   timeout, connection reset, truncated body, malformed JSON, empty content, error-like
//!   text, `finish_reason: length`) at a seeded rate, or replaying a script of canned
//!   replies (the B01-B09 fixtures). It is hand-rolled on tokio rather than axum because
//!   resets and truncated bodies need control below the HTTP framework; it keeps
//!   connections alive so benchmarks measure the collector, not TCP setup.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::{openai_chat, CallFuture, HttpReply, Route};

/// In-process provider: answers `Mock answer to: <prompt>` after an optional delay.
pub struct MockProvider {
    route: Route,
    counter: AtomicU64,
}

impl MockProvider {
    /// A mock for `route`.
    pub fn new(route: Route) -> MockProvider {
        MockProvider {
            route,
            counter: AtomicU64::new(0),
        }
    }
}

/// A request's serial number in letters (1 -> "a", 26 -> "z", 27 -> "aa"). Digits would
/// let answer 429 (or 1429, ...) trip the error-like-text guard and be retried, which is a
/// fault nobody injected (it once cost the throughput bench a 1 s retry tail).
pub fn serial(mut n: u64) -> String {
    let mut out = Vec::new();
    while n > 0 {
        n -= 1;
        out.push(b'a' + (n % 26) as u8);
        n /= 26;
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

impl super::Provider for MockProvider {
    fn call<'a>(&'a self, prompt: &'a str) -> CallFuture<'a> {
        Box::pin(async move {
            let n = self.counter.fetch_add(1, Ordering::Relaxed) + 1;
            let body = chat_body(
                &self.route.model,
                &format!("Mock answer {} to: {prompt}", serial(n)),
                "stop",
                prompt,
            );
            let reply = HttpReply {
                status: 200,
                headers: vec![("content-type".into(), "application/json".into())],
                body: serde_json::to_vec(&body).unwrap_or_default(),
            };
            openai_chat::parse(&self.route, &reply)
        })
    }

    fn route(&self) -> &Route {
        &self.route
    }
}

fn chat_body(model: &str, content: &str, finish: &str, prompt: &str) -> Value {
    let prompt_tokens = prompt.len() as u64 / 4 + 5;
    let completion_tokens = content.split_whitespace().count() as u64 + 1;
    json!({
        "id": "chatcmpl-mock",
        "object": "chat.completion",
        "created": 1764000000,
        "model": model,
        "choices": [{ "index": 0, "finish_reason": finish, "message": { "role": "assistant", "content": content } }],
        "usage": { "prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens, "total_tokens": prompt_tokens + completion_tokens }
    })
}

/// One kind of injected fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Fault {
    /// 429 with `retry-after-ms` (and a whole-second `retry-after`).
    RateLimit,
    /// A 5xx status (500, 502, 503).
    Status(u16),
    /// Answer only after `slow_for` (past the client timeout).
    Slow,
    /// Read the request, then reset the connection without a reply.
    Reset,
    /// Announce a body length, send half, close.
    TruncatedBody,
    /// 200 with a body that is not JSON.
    MalformedJson,
    /// 200 with `content: ""`.
    EmptyContent,
    /// 200 whose text trips the error-like-text guard.
    ErrorLikeText,
    /// 200, valid text, `finish_reason: length` (a valid, truncated sample).
    Length,
}

impl Fault {
    /// Every fault kind the server can inject.
    pub const ALL: [Fault; 11] = [
        Fault::RateLimit,
        Fault::Status(500),
        Fault::Status(502),
        Fault::Status(503),
        Fault::Slow,
        Fault::Reset,
        Fault::TruncatedBody,
        Fault::MalformedJson,
        Fault::EmptyContent,
        Fault::ErrorLikeText,
        Fault::Length,
    ];

    /// Whether the collector must record the reply as an invalid attempt.
    pub fn invalidates(self) -> bool {
        self != Fault::Length
    }
}

/// Fault-server behaviour.
#[derive(Debug, Clone)]
pub struct FaultConfig {
    /// Latency added before every reply.
    pub latency: Duration,
    /// Probability that a request gets a fault.
    pub fault_rate: f64,
    /// Faults to draw from (uniformly).
    pub faults: Vec<Fault>,
    /// RNG seed.
    pub seed: u64,
    /// How long a `Slow` reply waits.
    pub slow_for: Duration,
    /// `retry-after-ms` sent with 429s.
    pub retry_after_ms: u64,
}

impl Default for FaultConfig {
    fn default() -> Self {
        FaultConfig {
            latency: Duration::ZERO,
            fault_rate: 0.0,
            faults: Fault::ALL.to_vec(),
            seed: 1,
            slow_for: Duration::from_secs(2),
            retry_after_ms: 5,
        }
    }
}

/// A canned reply for scripted mode.
#[derive(Debug, Clone)]
pub struct Canned {
    /// Status code.
    pub status: u16,
    /// Headers (lower-case names).
    pub headers: Vec<(String, String)>,
    /// Body bytes.
    pub body: Vec<u8>,
}

/// Counters of what the server served.
#[derive(Debug, Default, Clone)]
pub struct FaultStats {
    /// Requests received.
    pub requests: u64,
    /// Clean valid replies served (not counting `Length`).
    pub ok: u64,
    /// Faults served, by kind.
    pub faults: std::collections::BTreeMap<String, u64>,
    /// Arrival time of each request (scripted mode only).
    pub arrivals: Vec<Instant>,
}

impl FaultStats {
    /// Faults that must show up as invalid attempts.
    pub fn invalidating(&self) -> u64 {
        self.faults
            .iter()
            .filter(|(k, _)| k.as_str() != "length")
            .map(|(_, v)| v)
            .sum()
    }
}

enum Mode {
    Faults(FaultConfig, Mutex<ChaCha8Rng>),
    Script(Mutex<VecDeque<Canned>>, Mutex<Option<Canned>>),
}

struct Shared {
    mode: Mode,
    stats: Mutex<FaultStats>,
}

/// A running loopback server. Dropping it stops accepting connections.
pub struct FaultServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FaultServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn fault_name(f: Fault) -> String {
    match f {
        Fault::RateLimit => "rate_limit".into(),
        Fault::Status(s) => format!("status_{s}"),
        Fault::Slow => "slow".into(),
        Fault::Reset => "reset".into(),
        Fault::TruncatedBody => "truncated_body".into(),
        Fault::MalformedJson => "malformed_json".into(),
        Fault::EmptyContent => "empty_content".into(),
        Fault::ErrorLikeText => "error_like_text".into(),
        Fault::Length => "length".into(),
    }
}

impl FaultServer {
    /// Start a fault-injecting server on 127.0.0.1 (random port). Call inside a tokio runtime.
    pub async fn start(config: FaultConfig) -> std::io::Result<FaultServer> {
        let rng = Mutex::new(ChaCha8Rng::seed_from_u64(config.seed));
        Self::spawn(Mode::Faults(config, rng)).await
    }

    /// Start a server that replies with `script` in order, repeating the last reply.
    pub async fn start_scripted(script: Vec<Canned>) -> std::io::Result<FaultServer> {
        Self::spawn(Mode::Script(Mutex::new(script.into()), Mutex::new(None))).await
    }

    async fn spawn(mode: Mode) -> std::io::Result<FaultServer> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            mode,
            stats: Mutex::new(FaultStats::default()),
        });
        let s2 = shared.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((sock, _)) = listener.accept().await else {
                    continue;
                };
                let _ = sock.set_nodelay(true);
                let s3 = s2.clone();
                tokio::spawn(async move {
                    let _ = serve_conn(sock, s3).await;
                });
            }
        });
        Ok(FaultServer { addr, shared, task })
    }

    /// `http://127.0.0.1:<port>/v1`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Socket address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> FaultStats {
        self.shared
            .stats
            .lock()
            .map(|s| s.clone())
            .unwrap_or_default()
    }
}

async fn serve_conn(mut sock: TcpStream, shared: Arc<Shared>) -> std::io::Result<()> {
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    loop {
        // Read one request: headers up to CRLFCRLF, then Content-Length bytes.
        let header_end = loop {
            if let Some(i) = find(&buf, b"\r\n\r\n") {
                break i + 4;
            }
            let mut chunk = [0u8; 4096];
            let n = sock.read(&mut chunk).await?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..header_end]).to_ascii_lowercase();
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        let close = head
            .lines()
            .any(|l| l.starts_with("connection:") && l.contains("close"));
        while buf.len() < header_end + len {
            let mut chunk = [0u8; 8192];
            let n = sock.read(&mut chunk).await?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        let body: Value =
            serde_json::from_slice(&buf[header_end..header_end + len]).unwrap_or(Value::Null);
        buf.drain(..header_end + len);
        let keep = respond(&mut sock, &shared, &body).await?;
        if close || !keep {
            return Ok(());
        }
    }
}

fn find(h: &[u8], n: &[u8]) -> Option<usize> {
    h.windows(n.len()).position(|w| w == n)
}

fn response_bytes(
    status: u16,
    headers: &[(String, String)],
    body: &[u8],
    declared_len: Option<usize>,
) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status} {}\r\n", reason_phrase(status));
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str(&format!(
        "content-length: {}\r\nconnection: keep-alive\r\n\r\n",
        declared_len.unwrap_or(body.len())
    ));
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

fn reason_phrase(s: u16) -> &'static str {
    match s {
        200 => "OK",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

/// Serve one request; returns whether the connection may be reused.
async fn respond(sock: &mut TcpStream, shared: &Shared, req: &Value) -> std::io::Result<bool> {
    let prompt = req
        .get("messages")
        .and_then(|m| m.get(0))
        .and_then(|m| m.get("content"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let model = req
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or("fault-model")
        .to_string();
    let json_ct = vec![("content-type".to_string(), "application/json".to_string())];
    match &shared.mode {
        Mode::Script(queue, last) => {
            let n = {
                let mut st = shared
                    .stats
                    .lock()
                    .map_err(|_| std::io::Error::other("poisoned"))?;
                st.requests += 1;
                st.arrivals.push(Instant::now());
                st.requests
            };
            let canned = {
                let mut q = queue
                    .lock()
                    .map_err(|_| std::io::Error::other("poisoned"))?;
                let mut l = last.lock().map_err(|_| std::io::Error::other("poisoned"))?;
                match q.pop_front() {
                    Some(c) => {
                        *l = Some(c.clone());
                        c
                    }
                    None => l.clone().unwrap_or(Canned {
                        status: 200,
                        headers: json_ct.clone(),
                        body: serde_json::to_vec(&chat_body(
                            &model,
                            &format!("Scripted answer {}", serial(n)),
                            "stop",
                            &prompt,
                        ))
                        .unwrap_or_default(),
                    }),
                }
            };
            sock.write_all(&response_bytes(
                canned.status,
                &canned.headers,
                &canned.body,
                None,
            ))
            .await?;
            Ok(true)
        }
        Mode::Faults(cfg, rng) => {
            let (n, fault) = {
                let mut r = rng.lock().map_err(|_| std::io::Error::other("poisoned"))?;
                let hit = cfg.fault_rate > 0.0
                    && !cfg.faults.is_empty()
                    && r.random::<f64>() < cfg.fault_rate;
                let f = hit.then(|| cfg.faults[r.random_range(0..cfg.faults.len())]);
                let mut st = shared
                    .stats
                    .lock()
                    .map_err(|_| std::io::Error::other("poisoned"))?;
                st.requests += 1;
                match f {
                    Some(f) => *st.faults.entry(fault_name(f)).or_insert(0) += 1,
                    None => st.ok += 1,
                }
                (st.requests, f)
            };
            if !cfg.latency.is_zero() {
                tokio::time::sleep(cfg.latency).await;
            }
            let ok = |content: &str, finish: &str| {
                serde_json::to_vec(&chat_body(&model, content, finish, &prompt)).unwrap_or_default()
            };
            let answer = format!("Fault-server answer {} to: {prompt}", serial(n));
            let bytes = match fault {
                None => response_bytes(200, &json_ct, &ok(&answer, "stop"), None),
                Some(Fault::Length) => response_bytes(200, &json_ct, &ok(&answer, "length"), None),
                Some(Fault::RateLimit) => {
                    let mut h = json_ct.clone();
                    h.push(("retry-after-ms".into(), cfg.retry_after_ms.to_string()));
                    h.push((
                        "retry-after".into(),
                        cfg.retry_after_ms.div_ceil(1000).to_string(),
                    ));
                    response_bytes(429, &h, br#"{"error":{"code":429,"message":"Rate limit exceeded (fault server)."}}"#, None)
                }
                Some(Fault::Status(s)) => response_bytes(
                    s,
                    &json_ct,
                    format!(r#"{{"error":{{"code":{s},"message":"injected"}}}}"#).as_bytes(),
                    None,
                ),
                Some(Fault::Slow) => {
                    tokio::time::sleep(cfg.slow_for).await;
                    response_bytes(200, &json_ct, &ok(&answer, "stop"), None)
                }
                Some(Fault::Reset) => {
                    #[allow(deprecated)]
                    let _ = sock.set_linger(Some(Duration::ZERO));
                    return Ok(false);
                }
                Some(Fault::TruncatedBody) => {
                    let body = ok(&answer, "stop");
                    let half = &body[..body.len() / 2];
                    let bytes = response_bytes(200, &json_ct, half, Some(body.len()));
                    sock.write_all(&bytes).await?;
                    sock.flush().await?;
                    let _ = sock.shutdown().await;
                    return Ok(false);
                }
                Some(Fault::MalformedJson) => {
                    response_bytes(200, &json_ct, br#"{"id":"x","choices":[{"message":"#, None)
                }
                Some(Fault::EmptyContent) => response_bytes(200, &json_ct, &ok("", "stop"), None),
                Some(Fault::ErrorLikeText) => response_bytes(
                    200,
                    &json_ct,
                    &ok(
                        "Error code: 503 - upstream error, service unavailable",
                        "stop",
                    ),
                    None,
                ),
            };
            sock.write_all(&bytes).await?;
            Ok(true)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serials_are_letters_and_never_trip_the_guard() {
        assert_eq!(serial(1), "a");
        assert_eq!(serial(26), "z");
        assert_eq!(serial(27), "aa");
        assert_eq!(serial(702), "zz");
        assert_eq!(serial(703), "aaa");
        for n in [429u64, 1429, 4290, 100_000] {
            let text = format!(
                "Fault-server answer {} to: What do you care about?",
                serial(n)
            );
            assert_eq!(crate::collect::guard::error_like(&text), None, "{text}");
        }
    }
}
