//! The coder call: a minimal `CoderClient` trait and one OpenAI-compatible Chat
//! Completions client over HTTP (blocking, `ureq`).
//!
//! TO BE REPLACED: this is a stop-gap so coding works before the provider layer
//! (`src/providers/`, collection issue) lands. When it does, implement `CoderClient` for
//! the provider's OpenAI-chat route and delete `HttpClient`; nothing else in `code`
//! depends on HTTP. The client names failures but never retries (the runner does).
//! API keys are read from the environment at call time and never stored or logged.

use std::time::Duration;

use serde_json::Value;

/// Where a coder is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Base URL up to and excluding `/chat/completions` (e.g. `https://openrouter.ai/api/v1`).
    pub base_url: String,
    /// Environment variable holding the API key (`None`: no auth, e.g. a local server).
    pub api_key_env: Option<String>,
}

/// A failed call.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CallError {
    /// Non-2xx HTTP status. `body` is at most 1,000 characters (HTML is never parsed).
    #[error("HTTP {status}: {body}")]
    Status {
        /// Status code.
        status: u16,
        /// Start of the body.
        body: String,
        /// Server-requested wait (`retry-after-ms` or `retry-after` seconds).
        retry_after: Option<Duration>,
    },
    /// Network / timeout.
    #[error("transport: {0}")]
    Transport(String),
    /// 2xx with a body that is not JSON.
    #[error("bad response body: {0}")]
    BadBody(String),
    /// Configuration error (missing API key, bad URL): stop this coder, report once.
    #[error("configuration: {0}")]
    Config(String),
}

impl CallError {
    /// Whether retrying cannot help (stop calling this coder).
    pub fn is_fatal(&self) -> bool {
        matches!(self, CallError::Config(_))
            || matches!(
                self,
                CallError::Status {
                    status: 401 | 403,
                    ..
                }
            )
    }
}

/// Sends one Chat Completions request and returns the response body.
pub trait CoderClient: Send + Sync {
    /// POST `body` to the endpoint; the parsed JSON response body on 2xx.
    fn complete(
        &self,
        endpoint: &Endpoint,
        body: &Value,
        timeout: Duration,
    ) -> Result<Value, CallError>;
}

/// OpenAI-compatible Chat Completions over HTTP(S) (stop-gap, see module doc).
pub struct HttpClient {
    agent: ureq::Agent,
}

impl Default for HttpClient {
    fn default() -> Self {
        HttpClient {
            agent: ureq::AgentBuilder::new().build(),
        }
    }
}

fn truncate(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

/// `retry-after-ms` (preferred) or `retry-after` in (possibly fractional) seconds.
pub fn retry_after(ms: Option<&str>, secs: Option<&str>) -> Option<Duration> {
    if let Some(ms) = ms
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|v| v.is_finite() && *v >= 0.0)
    {
        return Some(Duration::from_secs_f64(ms / 1000.0));
    }
    secs.and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|v| v.is_finite() && *v >= 0.0)
        .map(Duration::from_secs_f64)
}

impl CoderClient for HttpClient {
    fn complete(
        &self,
        endpoint: &Endpoint,
        body: &Value,
        timeout: Duration,
    ) -> Result<Value, CallError> {
        let url = format!(
            "{}/chat/completions",
            endpoint.base_url.trim_end_matches('/')
        );
        let mut req = self
            .agent
            .post(&url)
            .timeout(timeout)
            .set("Content-Type", "application/json");
        let mut key: Option<crate::providers::ApiKey> = None;
        if let Some(var) = &endpoint.api_key_env {
            let k = crate::providers::ApiKey::from_env(var).ok_or_else(|| {
                CallError::Config(format!("environment variable {var} is not set"))
            })?;
            req = req.set("Authorization", &format!("Bearer {}", k.expose()));
            key = Some(k);
        }
        // A server may echo the key back: scrub it from every reply text before it can
        // reach a stored code, the failure ledger or a message.
        let scrub = |t: String| match &key {
            Some(k) => k.redact(&t),
            None => t,
        };
        match req.send_string(&body.to_string()) {
            Ok(resp) => {
                let text = scrub(
                    resp.into_string()
                        .map_err(|e| CallError::Transport(scrub(e.to_string())))?,
                );
                serde_json::from_str(&text)
                    .map_err(|e| CallError::BadBody(format!("{e}: {}", truncate(&text, 200))))
            }
            Err(ureq::Error::Status(status, resp)) => {
                let ra = retry_after(resp.header("retry-after-ms"), resp.header("retry-after"));
                let text = scrub(resp.into_string().unwrap_or_default());
                Err(CallError::Status {
                    status,
                    body: truncate(&text, 1000),
                    retry_after: ra,
                })
            }
            Err(ureq::Error::Transport(t)) => Err(CallError::Transport(scrub(t.to_string()))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_forms() {
        assert_eq!(retry_after(None, Some("30")), Some(Duration::from_secs(30)));
        assert_eq!(
            retry_after(Some("1500"), Some("30")),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(
            retry_after(None, Some("1.5")),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(retry_after(None, Some("soon")), None);
        assert!(CallError::Status {
            status: 401,
            body: String::new(),
            retry_after: None
        }
        .is_fatal());
        assert!(!CallError::Status {
            status: 429,
            body: String::new(),
            retry_after: None
        }
        .is_fatal());
    }
}
