//! Providers: one module per wire protocol, behind the [`Provider`] trait (PROTOCOL 2.6).
//!
//! Owns request building, result extraction (including the `reasoning_content` fallback,
//! `<think>` splitting and MiniMax's null `choices`), raw bodies, usage, finish reasons,
//! and sorting every failure into a [`RetryClass`]. Routes (OpenRouter pinning, vLLM,
//! Ollama, llama.cpp server, DeepSeek, xAI, Z.ai, MiniMax, Kimi on the Anthropic wire) are
//! data ([`Route`]), not modules. Providers never sleep, never retry and know nothing about
//! conditions, samples or the store: the collector decides what a [`RetryClass`] means.
//!
//! The shape is "pure parser + one HTTP helper": each wire module exposes
//! `build(route, prompt) -> HttpRequest` and `parse(route, &HttpReply) -> Result<Completion,
//! CallError>`, so the B01-B09 provider cases are fed to the parsers directly and the
//! fault server exercises the same code over real sockets.

pub mod anthropic;
pub mod gemini;
pub mod http;
pub mod local;
pub mod mock;
pub mod openai_chat;
pub mod openai_responses;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use serde_json::Value;

/// An API key read from the environment. `Debug` and `Display` never show it; the only
/// way to the secret is [`ApiKey::expose`], used when a request header is built.
#[derive(Clone)]
pub struct ApiKey(String);

impl ApiKey {
    /// Wrap a secret.
    pub fn new(secret: impl Into<String>) -> ApiKey {
        ApiKey(secret.into())
    }

    /// Read the key from environment variable `var`. `Ok(None)` when unset or empty.
    pub fn from_env(var: &str) -> Option<ApiKey> {
        match std::env::var(var) {
            Ok(v) if !v.trim().is_empty() => Some(ApiKey(v.trim().to_string())),
            _ => None,
        }
    }

    /// The secret, for building the auth header only.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Replace every occurrence of the secret in `text` by `***` (error bodies can echo it).
    pub fn redact(&self, text: &str) -> String {
        if self.0.len() < 4 {
            return text.to_string();
        }
        text.replace(&self.0, "***")
    }

    /// [`ApiKey::redact`] on raw bytes (a reply body need not be UTF-8).
    pub fn redact_bytes(&self, bytes: &[u8]) -> Vec<u8> {
        let key = self.0.as_bytes();
        if key.len() < 4 || bytes.len() < key.len() {
            return bytes.to_vec();
        }
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i..].starts_with(key) {
                out.extend_from_slice(b"***");
                i += key.len();
            } else {
                out.push(bytes[i]);
                i += 1;
            }
        }
        out
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(***)")
    }
}

impl fmt::Display for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Which wire protocol a route speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    /// OpenAI-compatible `/chat/completions`.
    OpenAiChat,
    /// OpenAI Responses `/responses`.
    OpenAiResponses,
    /// Anthropic Messages `/v1/messages` (also Kimi's Anthropic-style endpoint).
    Anthropic,
    /// Google `generateContent`.
    Gemini,
    /// In-process mock (no HTTP).
    Mock,
    /// In-process local model (no HTTP; [`local`]).
    Local,
}

/// Provider kind named in a study file: the access route, which fixes the wire protocol,
/// the default base URL, the auth style and the `provider` key written into traces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderKind {
    /// OpenRouter (chat; optional `provider.only` pin).
    OpenRouter,
    /// OpenAI direct: Responses API for `gpt-5*`, `o3*`, `o4*`, chat otherwise (PROTOCOL 2.6).
    OpenAi,
    /// Anthropic Messages.
    Anthropic,
    /// Gemini generateContent.
    Gemini,
    /// xAI chat.
    Xai,
    /// DeepSeek direct chat.
    DeepSeek,
    /// Z.ai coding endpoint (chat).
    Zai,
    /// MiniMax chatcompletion_v2.
    MiniMax,
    /// Moonshot Kimi on its Anthropic-style endpoint.
    Kimi,
    /// vLLM OpenAI-compatible server.
    Vllm,
    /// Ollama `/v1`.
    Ollama,
    /// llama.cpp server / llama-cpp-python.
    LlamaCpp,
    /// Any other OpenAI-compatible chat endpoint.
    OpenAiCompatible,
    /// In-process mock provider.
    Mock,
    /// The embedded local model: a GGUF file run in-process ([`local`]).
    Local,
}

impl ProviderKind {
    /// Every kind with its study-file spelling.
    pub const ALL: [(ProviderKind, &'static str); 15] = [
        (ProviderKind::OpenRouter, "openrouter"),
        (ProviderKind::OpenAi, "openai"),
        (ProviderKind::Anthropic, "anthropic"),
        (ProviderKind::Gemini, "gemini"),
        (ProviderKind::Xai, "xai"),
        (ProviderKind::DeepSeek, "deepseek"),
        (ProviderKind::Zai, "zai"),
        (ProviderKind::MiniMax, "minimax"),
        (ProviderKind::Kimi, "kimi"),
        (ProviderKind::Vllm, "vllm"),
        (ProviderKind::Ollama, "ollama"),
        (ProviderKind::LlamaCpp, "llamacpp"),
        (ProviderKind::OpenAiCompatible, "openai-compatible"),
        (ProviderKind::Mock, "mock"),
        (ProviderKind::Local, "local"),
    ];

    /// Parse the study-file spelling.
    pub fn parse(s: &str) -> Option<ProviderKind> {
        ProviderKind::ALL
            .iter()
            .find(|(_, n)| *n == s)
            .map(|(k, _)| *k)
    }

    /// Study-file spelling.
    pub fn as_str(self) -> &'static str {
        ProviderKind::ALL
            .iter()
            .find(|(k, _)| *k == self)
            .map(|(_, n)| *n)
            .unwrap_or("?")
    }

    /// The `provider` key written into traces (PROTOCOL 2.6).
    pub fn trace_key(self) -> &'static str {
        match self {
            ProviderKind::OpenRouter => "openrouter",
            ProviderKind::OpenAi => "openai",
            ProviderKind::Anthropic => "anthropic",
            ProviderKind::Gemini => "gemini",
            ProviderKind::Xai => "xai",
            ProviderKind::DeepSeek => "deepseek-direct",
            ProviderKind::Zai => "zai-direct",
            ProviderKind::MiniMax => "minimax-direct",
            ProviderKind::Kimi => "kimi-direct",
            ProviderKind::Vllm => "vllm",
            ProviderKind::Ollama => "ollama",
            ProviderKind::LlamaCpp => "llamacpp",
            ProviderKind::OpenAiCompatible => "openai-compatible",
            ProviderKind::Mock => "mock",
            ProviderKind::Local => "local",
        }
    }

    /// Default base URL (`None`: the study file must give one).
    pub fn default_base_url(self) -> Option<&'static str> {
        match self {
            ProviderKind::OpenRouter => Some("https://openrouter.ai/api/v1"),
            ProviderKind::OpenAi => Some("https://api.openai.com/v1"),
            ProviderKind::Anthropic => Some("https://api.anthropic.com/v1"),
            ProviderKind::Gemini => Some("https://generativelanguage.googleapis.com/v1beta"),
            ProviderKind::Xai => Some("https://api.x.ai/v1"),
            ProviderKind::DeepSeek => Some("https://api.deepseek.com/v1"),
            ProviderKind::Zai => Some("https://api.z.ai/api/coding/paas/v4"),
            ProviderKind::MiniMax => Some("https://api.minimax.io/v1"),
            ProviderKind::Kimi => Some("https://api.kimi.com/coding/v1"),
            ProviderKind::Vllm => Some("http://127.0.0.1:8000/v1"),
            ProviderKind::Ollama => Some("http://127.0.0.1:11434/v1"),
            ProviderKind::LlamaCpp => Some("http://127.0.0.1:8080/v1"),
            ProviderKind::OpenAiCompatible => None,
            ProviderKind::Mock => Some("mock://"),
            ProviderKind::Local => Some("local://"),
        }
    }

    /// Whether the route is a local server whose misconfiguration (e.g. no reasoning
    /// parser) is a per-cell problem rather than a per-sample one (case B02).
    pub fn is_local_server(self) -> bool {
        matches!(
            self,
            ProviderKind::Vllm
                | ProviderKind::Ollama
                | ProviderKind::LlamaCpp
                | ProviderKind::OpenAiCompatible
        )
    }

    /// Whether an API key is required by default.
    pub fn needs_key(self) -> bool {
        !self.is_local_server() && !matches!(self, ProviderKind::Mock | ProviderKind::Local)
    }

    /// Wire protocol for a model id on this route (PROTOCOL 2.6: OpenAI `gpt-5*`, `o3*`,
    /// `o4*` use Responses).
    pub fn wire_for(self, model: &str) -> Wire {
        match self {
            ProviderKind::OpenAi => {
                if model.starts_with("gpt-5") || model.starts_with("o3") || model.starts_with("o4")
                {
                    Wire::OpenAiResponses
                } else {
                    Wire::OpenAiChat
                }
            }
            ProviderKind::Anthropic | ProviderKind::Kimi => Wire::Anthropic,
            ProviderKind::Gemini => Wire::Gemini,
            ProviderKind::Mock => Wire::Mock,
            ProviderKind::Local => Wire::Local,
            _ => Wire::OpenAiChat,
        }
    }

    /// Attempts per sample in one run (PROTOCOL 2.7: 7 for chat-style and Messages routes,
    /// 1 for Responses, Gemini and MiniMax direct). The local model gets 3: its failures
    /// are empty or error-like answers, which a new seed usually fixes.
    pub fn default_max_attempts(self, wire: Wire) -> u32 {
        match (self, wire) {
            (ProviderKind::Local, _) => 3,
            (ProviderKind::MiniMax, _) | (_, Wire::OpenAiResponses) | (_, Wire::Gemini) => 1,
            _ => 7,
        }
    }
}

/// One configured route: everything needed to send one probe prompt. Pure data.
#[derive(Debug, Clone)]
pub struct Route {
    /// Access route.
    pub kind: ProviderKind,
    /// Wire protocol (derived from kind and model unless overridden).
    pub wire: Wire,
    /// Base URL without trailing slash.
    pub base_url: String,
    /// Model id sent in the request.
    pub model: String,
    /// Output-token cap (PROTOCOL 2.4, default 2000).
    pub max_tokens: u32,
    /// Temperature, only when the study sets it (Gemini defaults to 1.0, PROTOCOL 2.3).
    pub temperature: Option<f64>,
    /// Reasoning settings, passed through as the wire's reasoning field.
    pub reasoning: Option<Value>,
    /// OpenRouter `provider.only` pin (with `allow_fallbacks: false`, PROTOCOL 2.5).
    pub pin: Vec<String>,
    /// Extra request headers.
    pub extra_headers: Vec<(String, String)>,
    /// Extra top-level body fields (merged last).
    pub extra_body: serde_json::Map<String, Value>,
    /// Ask for an SSE stream (chat wire only).
    pub stream: bool,
    /// The key (never serialised).
    pub api_key: Option<ApiKey>,
}

/// A request ready to send.
#[derive(Debug, Clone)]
pub struct HttpRequest {
    /// Full URL.
    pub url: String,
    /// Headers (secrets included; never log this struct's header values).
    pub headers: Vec<(String, String)>,
    /// JSON body.
    pub body: Value,
}

/// A received HTTP reply (status, lower-case headers, body bytes).
#[derive(Debug, Clone)]
pub struct HttpReply {
    /// Status code.
    pub status: u16,
    /// Headers, names lower-case.
    pub headers: Vec<(String, String)>,
    /// Body bytes.
    pub body: Vec<u8>,
}

impl HttpReply {
    /// First header value named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Where the answer text came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerSource {
    /// `message.content` / output_text / text blocks / parts.
    Content,
    /// Text after the last `</think>` inside content (case B09).
    AfterThink,
    /// `reasoning_content` fallback (PROTOCOL 2.6; case B02).
    ReasoningContent,
}

impl AnswerSource {
    /// Label stored in `samples.answer_source`.
    pub fn as_str(self) -> &'static str {
        match self {
            AnswerSource::Content => "content",
            AnswerSource::AfterThink => "content_after_think",
            AnswerSource::ReasoningContent => "reasoning_content",
        }
    }
}

/// Token counts normalised across usage shapes (0 when unknown).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tokens {
    /// Prompt / input tokens.
    pub input: u64,
    /// Completion / output tokens (reasoning included).
    pub output: u64,
}

/// A successful call that yielded answer text.
#[derive(Debug, Clone)]
pub struct Completion {
    /// The answer text (`result`).
    pub text: String,
    /// Which field it came from.
    pub answer_source: AnswerSource,
    /// Reasoning text kept separately (think block, reasoning fields).
    pub reasoning: Option<String>,
    /// Finish reason as reported.
    pub finish_reason: Option<String>,
    /// Cut at the token cap (still valid, PROTOCOL 2.4).
    pub truncated: bool,
    /// Model id returned by the API.
    pub model_returned: Option<String>,
    /// Serving upstream (OpenRouter `provider`).
    pub upstream: Option<String>,
    /// Provider-native usage block.
    pub usage: Option<Value>,
    /// Normalised token counts.
    pub tokens: Tokens,
    /// Cost reported by the provider (OpenRouter `usage.cost`), USD.
    pub cost_usd: Option<f64>,
    /// Full raw payload.
    pub raw: Value,
    /// HTTP status.
    pub http_status: u16,
}

/// How the collector may react to a failure. Providers classify; they never retry.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RetryClass {
    /// Configuration or auth problem: stop this cell, report once.
    Fatal,
    /// 5xx, connection, timeout, malformed or truncated body, upstream error in a 200:
    /// retry with backoff, never sooner than `after` when the server said so.
    Transient {
        /// Server-directed delay (Retry-After on a 503, etc.).
        after: Option<Duration>,
    },
    /// HTTP 429 (or an in-body rate-limit code): retry no sooner than `after`.
    RateLimited {
        /// Server-directed delay.
        after: Option<Duration>,
    },
    /// A model-level outcome that identical parameters reproduce (refusal, safety block,
    /// budget used up by reasoning): re-ask at most `reasks` more times.
    Deterministic {
        /// Further attempts allowed for this reason.
        reasks: u32,
    },
}

impl RetryClass {
    /// Short label for logs and the store.
    pub fn as_str(&self) -> &'static str {
        match self {
            RetryClass::Fatal => "fatal",
            RetryClass::Transient { .. } => "transient",
            RetryClass::RateLimited { .. } => "rate_limited",
            RetryClass::Deterministic { .. } => "deterministic",
        }
    }
}

/// A failed call (transport, HTTP or content), with everything an error trace keeps.
#[derive(Debug, Clone)]
pub struct CallError {
    /// What the collector may do about it.
    pub class: RetryClass,
    /// Stable reason name (`http_429`, `timeout`, `no_choices`, `refusal`, ...).
    pub reason: String,
    /// Human-readable message (never contains the key).
    pub message: String,
    /// HTTP status when a response existed.
    pub http_status: Option<u16>,
    /// First <= 1000 characters of the body (PROTOCOL 2.8).
    pub http_body: Option<String>,
    /// Parsed payload when the body was JSON.
    pub raw: Option<Value>,
    /// Partial or reasoning-only text the reply carried.
    pub partial_text: Option<String>,
    /// Finish reason when known.
    pub finish_reason: Option<String>,
    /// Usage when given (prompt tokens may be billed on failures).
    pub usage: Option<Value>,
    /// Normalised token counts.
    pub tokens: Tokens,
    /// Model id returned, when given.
    pub model_returned: Option<String>,
}

impl CallError {
    /// A bare error with a class, reason and message.
    pub fn new(
        class: RetryClass,
        reason: impl Into<String>,
        message: impl Into<String>,
    ) -> CallError {
        CallError {
            class,
            reason: reason.into(),
            message: message.into(),
            http_status: None,
            http_body: None,
            raw: None,
            partial_text: None,
            finish_reason: None,
            usage: None,
            tokens: Tokens::default(),
            model_returned: None,
        }
    }

    /// Attach the HTTP status and a bounded body excerpt.
    pub fn with_http(mut self, reply: &HttpReply) -> CallError {
        self.http_status = Some(reply.status);
        self.http_body = Some(excerpt(&reply.text(), 1000));
        self
    }

    /// Attach the parsed payload.
    pub fn with_raw(mut self, raw: &Value) -> CallError {
        self.raw = Some(raw.clone());
        self
    }
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({}): {}",
            self.reason,
            self.class.as_str(),
            self.message
        )
    }
}

/// First `n` characters of `s` (on a char boundary).
pub fn excerpt(s: &str, n: usize) -> String {
    match s.char_indices().nth(n) {
        Some((i, _)) => s[..i].to_string(),
        None => s.to_string(),
    }
}

/// Boxed future returned by [`Provider::call`].
pub type CallFuture<'a> = Pin<Box<dyn Future<Output = Result<Completion, CallError>> + Send + 'a>>;

/// Something that answers one probe prompt. Implementations must be cheap to share
/// (`Arc`) and safe to call concurrently.
pub trait Provider: Send + Sync {
    /// Send `prompt` once and classify the outcome. No retries, no sleeping.
    fn call<'a>(&'a self, prompt: &'a str) -> CallFuture<'a>;
    /// [`Provider::call`] with a seed the collector derives from the work-item key and
    /// the attempt number. Providers that sample in-process (the local model) use it, so
    /// a rerun reproduces every sample and a retry draws a fresh one; remote providers
    /// ignore it (their seeds, where they exist, are body fields of the route).
    fn call_seeded<'a>(&'a self, prompt: &'a str, seed: u64) -> CallFuture<'a> {
        let _ = seed;
        self.call(prompt)
    }
    /// The route this provider serves.
    fn route(&self) -> &Route;
}

/// Build the request for `route` (dispatch on the wire protocol).
pub fn build_request(route: &Route, prompt: &str) -> HttpRequest {
    match route.wire {
        Wire::OpenAiChat | Wire::Mock | Wire::Local => openai_chat::build(route, prompt),
        Wire::OpenAiResponses => openai_responses::build(route, prompt),
        Wire::Anthropic => anthropic::build(route, prompt),
        Wire::Gemini => gemini::build(route, prompt),
    }
}

/// Parse a reply for `route` (dispatch on the wire protocol). HTTP errors are classified
/// first ([`http::classify_status`]), so an HTML error page is never JSON-parsed (B07).
pub fn parse_reply(route: &Route, reply: &HttpReply) -> Result<Completion, CallError> {
    if !(200..300).contains(&reply.status) {
        return Err(http::classify_status(reply));
    }
    match route.wire {
        Wire::OpenAiChat | Wire::Mock | Wire::Local => openai_chat::parse(route, reply),
        Wire::OpenAiResponses => openai_responses::parse(route, reply),
        Wire::Anthropic => anthropic::parse(route, reply),
        Wire::Gemini => gemini::parse(route, reply),
    }
}

/// Parse a 2xx body as JSON, or a transient `malformed_body` error (truncated or garbage).
pub(crate) fn json_body(reply: &HttpReply) -> Result<Value, CallError> {
    serde_json::from_slice::<Value>(&reply.body).map_err(|e| {
        CallError::new(
            RetryClass::Transient { after: None },
            "malformed_body",
            format!("response body is not valid JSON: {e}"),
        )
        .with_http(reply)
    })
}

/// Read a u64 from a JSON object field (numbers or numeric strings).
pub(crate) fn u64_field(v: &Value, key: &str) -> Option<u64> {
    match v.get(key)? {
        Value::Number(n) => n.as_u64().or_else(|| n.as_f64().map(|f| f.max(0.0) as u64)),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// Non-empty string field.
pub(crate) fn str_field<'v>(v: &'v Value, key: &str) -> Option<&'v str> {
    v.get(key).and_then(Value::as_str)
}

/// Normalise any of the usage shapes of PROTOCOL 2.8 into input/output tokens.
pub fn normalise_usage(usage: &Value) -> Tokens {
    let input = u64_field(usage, "prompt_tokens")
        .or_else(|| u64_field(usage, "input_tokens"))
        .or_else(|| u64_field(usage, "promptTokenCount"))
        .unwrap_or(0);
    let output = u64_field(usage, "completion_tokens")
        .or_else(|| u64_field(usage, "output_tokens"))
        .or_else(|| {
            let c = u64_field(usage, "candidatesTokenCount");
            let t = u64_field(usage, "thoughtsTokenCount");
            match (c, t) {
                (None, None) => None,
                _ => Some(c.unwrap_or(0) + t.unwrap_or(0)),
            }
        })
        .unwrap_or(0);
    Tokens { input, output }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_key_never_prints() {
        let k = ApiKey::new("sk-secret-123456");
        assert_eq!(format!("{k:?}"), "ApiKey(***)");
        assert_eq!(format!("{k}"), "***");
        assert_eq!(
            k.redact("bad key sk-secret-123456 given"),
            "bad key *** given"
        );
    }

    #[test]
    fn wire_choice_follows_protocol_2_6() {
        assert_eq!(
            ProviderKind::OpenAi.wire_for("gpt-5-mini"),
            Wire::OpenAiResponses
        );
        assert_eq!(ProviderKind::OpenAi.wire_for("o3"), Wire::OpenAiResponses);
        assert_eq!(ProviderKind::OpenAi.wire_for("gpt-4o"), Wire::OpenAiChat);
        assert_eq!(
            ProviderKind::Kimi.wire_for("kimi-for-coding"),
            Wire::Anthropic
        );
        assert_eq!(
            ProviderKind::OpenAi.default_max_attempts(Wire::OpenAiResponses),
            1
        );
        assert_eq!(
            ProviderKind::OpenRouter.default_max_attempts(Wire::OpenAiChat),
            7
        );
        assert_eq!(
            ProviderKind::MiniMax.default_max_attempts(Wire::OpenAiChat),
            1
        );
    }

    fn route(kind: ProviderKind, model: &str) -> Route {
        Route {
            kind,
            wire: kind.wire_for(model),
            base_url: kind.default_base_url().unwrap_or("http://x").to_string(),
            model: model.into(),
            max_tokens: 2000,
            temperature: None,
            reasoning: None,
            pin: vec![],
            extra_headers: vec![],
            extra_body: Default::default(),
            stream: false,
            api_key: Some(ApiKey::new("k-123456")),
        }
    }

    #[test]
    fn requests_follow_protocol_2_3_and_2_4() {
        let p = "What do you want?";
        let a = build_request(&route(ProviderKind::Anthropic, "claude-opus-4-0"), p);
        assert_eq!(a.url, "https://api.anthropic.com/v1/messages");
        assert!(a
            .headers
            .contains(&("anthropic-version".into(), "2023-06-01".into())));
        assert!(a.headers.contains(&("x-api-key".into(), "k-123456".into())));
        assert_eq!(a.body["max_tokens"], 2000);
        assert_eq!(
            a.body["messages"],
            serde_json::json!([{ "role": "user", "content": p }])
        );
        assert!(a.body.get("system").is_none() && a.body.get("temperature").is_none());
        let g = build_request(&route(ProviderKind::Gemini, "gemini-2.5-pro"), p);
        assert_eq!(g.url, "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-pro:generateContent");
        assert_eq!(g.body["generationConfig"]["temperature"], 1.0);
        assert_eq!(g.body["generationConfig"]["maxOutputTokens"], 2000);
        assert_eq!(g.body["contents"][0]["parts"][0]["text"], p);
        let r = build_request(&route(ProviderKind::OpenAi, "gpt-5"), p);
        assert_eq!(r.url, "https://api.openai.com/v1/responses");
        assert_eq!(r.body["input"], p);
        assert_eq!(r.body["max_output_tokens"], 2000);
        let m = build_request(&route(ProviderKind::MiniMax, "MiniMax-M2"), p);
        assert!(m.url.ends_with("/text/chatcompletion_v2"));
        let k = build_request(&route(ProviderKind::Kimi, "kimi-for-coding"), p);
        assert!(k.url.ends_with("/messages"));
    }

    #[test]
    fn usage_shapes() {
        let or = serde_json::json!({"prompt_tokens": 6, "completion_tokens": 24});
        assert_eq!(
            normalise_usage(&or),
            Tokens {
                input: 6,
                output: 24
            }
        );
        let g = serde_json::json!({"promptTokenCount": 8, "candidatesTokenCount": 12, "thoughtsTokenCount": 3});
        assert_eq!(
            normalise_usage(&g),
            Tokens {
                input: 8,
                output: 15
            }
        );
        let a = serde_json::json!({"input_tokens": 31, "output_tokens": 0});
        assert_eq!(
            normalise_usage(&a),
            Tokens {
                input: 31,
                output: 0
            }
        );
    }
}
