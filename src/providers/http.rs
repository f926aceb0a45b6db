//! The one HTTP path every wire protocol shares: send a built request with reqwest,
//! read the whole body, classify transport errors and non-2xx statuses, and read the
//! server-directed delay (`Retry-After` in its several forms, case B06).
//!
//! Classification is by status first (B07: a Cloudflare HTML page is a 5xx, never parsed
//! as JSON): 429 -> rate limited; 408, 425 and every 5xx (including 520-529) -> transient;
//! 401/402/403 -> fatal (auth, billing); any other 4xx -> fatal (the request itself is
//! wrong and resending it cannot help).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::{
    build_request, parse_reply, CallError, CallFuture, Completion, HttpReply, Provider, RetryClass,
    Route,
};

/// The server-directed delay of a reply, if any (B06): `retry-after-ms` (milliseconds,
/// preferred), else `retry-after` as (possibly fractional) seconds or as an HTTP-date
/// measured against the reply's `Date` header (local clock when absent). A date in the
/// past gives zero; an unparseable value gives `None` (the backoff schedule applies).
pub fn retry_after(reply: &HttpReply) -> Option<Duration> {
    if let Some(ms) = reply
        .header("retry-after-ms")
        .and_then(|v| v.trim().parse::<f64>().ok())
    {
        if ms.is_finite() && ms >= 0.0 {
            return Some(Duration::from_secs_f64(ms / 1000.0));
        }
    }
    let Some(v) = reply.header("retry-after").map(str::trim) else {
        // No Retry-After: OpenAI-style reset hints ("1s", "6m0s", "250ms") on a 429.
        if reply.status != 429 {
            return None;
        }
        return ["x-ratelimit-reset-requests", "x-ratelimit-reset-tokens"]
            .iter()
            .filter_map(|h| reply.header(h).and_then(parse_go_duration))
            .max();
    };
    if let Ok(secs) = v.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0)
            .then(|| Duration::from_secs_f64(secs.min(86_400.0 * 7.0)));
    }
    let when = httpdate::parse_http_date(v).ok()?;
    let now = reply
        .header("date")
        .and_then(|d| httpdate::parse_http_date(d).ok())
        .unwrap_or_else(SystemTime::now);
    Some(when.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Parse a Go-style duration such as `1s`, `6m0s`, `1h2m3.5s`, `250ms`.
pub fn parse_go_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    let mut total = 0.0f64;
    let mut num = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() || c == '.' {
            num.push(c);
            continue;
        }
        let unit = match (c, chars.peek()) {
            ('m', Some('s')) => {
                chars.next();
                0.001
            }
            ('h', _) => 3600.0,
            ('m', _) => 60.0,
            ('s', _) => 1.0,
            _ => return None,
        };
        let n: f64 = num.parse().ok()?;
        total += n * unit;
        num.clear();
    }
    if !num.is_empty() || !total.is_finite() {
        return None;
    }
    Some(Duration::from_secs_f64(total))
}

/// Classify a non-2xx reply. The body is kept as a <= 1000-character excerpt and parsed
/// as JSON only when it is JSON.
pub fn classify_status(reply: &HttpReply) -> CallError {
    let status = reply.status;
    let is_json = reply
        .header("content-type")
        .map(|c| c.contains("json"))
        .unwrap_or(false)
        || reply.body.first().is_some_and(|b| *b == b'{');
    let raw = if is_json {
        serde_json::from_slice::<serde_json::Value>(&reply.body).ok()
    } else {
        None
    };
    let after = retry_after(reply);
    let (class, reason) = match status {
        429 => (RetryClass::RateLimited { after }, "http_429".to_string()),
        408 | 425 => (RetryClass::Transient { after }, format!("http_{status}")),
        500..=599 => (RetryClass::Transient { after }, format!("http_{status}")),
        401 | 403 => (RetryClass::Fatal, format!("auth_http_{status}")),
        _ => (RetryClass::Fatal, format!("http_{status}")),
    };
    let reason = if raw.is_none() && !reply.body.is_empty() && (500..=599).contains(&status) {
        "non_json_error_body".to_string()
    } else {
        reason
    };
    let detail = raw
        .as_ref()
        .and_then(|r| r.get("error"))
        .and_then(|e| {
            e.get("message")
                .and_then(|m| m.as_str())
                .or_else(|| e.as_str())
        })
        .map(|m| super::excerpt(m, 300))
        .unwrap_or_else(|| {
            format!(
                "{} bytes of {}",
                reply.body.len(),
                reply.header("content-type").unwrap_or("unknown content")
            )
        });
    let mut err =
        CallError::new(class, reason, format!("HTTP {status}: {detail}")).with_http(reply);
    err.raw = raw;
    err
}

/// A provider that speaks HTTP through a shared reqwest client.
pub struct HttpProvider {
    route: Route,
    client: reqwest::Client,
}

impl HttpProvider {
    /// A provider for `route` on `client` (share one client across cells: it pools
    /// connections). The per-call timeout is the client's.
    pub fn new(route: Route, client: reqwest::Client) -> HttpProvider {
        HttpProvider { route, client }
    }

    /// A client with the per-call `timeout`, sized for `max_idle` pooled connections per host.
    pub fn client(timeout: Duration, max_idle: usize) -> reqwest::Result<reqwest::Client> {
        reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(30)))
            .pool_max_idle_per_host(max_idle)
            .user_agent(concat!("vuf/", env!("CARGO_PKG_VERSION")))
            .build()
    }

    async fn send(&self, prompt: &str) -> Result<Completion, CallError> {
        let req = build_request(&self.route, prompt);
        let mut rb = self.client.post(&req.url);
        for (k, v) in &req.headers {
            rb = rb.header(k.as_str(), v.as_str());
        }
        let body = serde_json::to_vec(&req.body)
            .map_err(|e| CallError::new(RetryClass::Fatal, "request_encoding", e.to_string()))?;
        rb = rb.header("content-type", "application/json").body(body);
        let resp = rb
            .send()
            .await
            .map_err(|e| self.transport_error(&e, false))?;
        let status = resp.status().as_u16();
        let headers: Vec<(String, String)> = resp
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_ascii_lowercase(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let body = resp.bytes().await.map_err(|e| {
            let mut err = self.transport_error(&e, true);
            err.http_status = Some(status);
            err
        })?;
        // A server may echo the key (in an error body, a header, even an answer): scrub it
        // from the bytes before anything is parsed, so no derived field (raw payload, text,
        // message, stored trace) can carry it.
        let (headers, body) = match &self.route.api_key {
            Some(k) => (
                headers
                    .into_iter()
                    .map(|(n, v)| (n, k.redact(&v)))
                    .collect(),
                k.redact_bytes(&body),
            ),
            None => (headers, body.to_vec()),
        };
        let reply = HttpReply {
            status,
            headers,
            body,
        };
        parse_reply(&self.route, &reply).map_err(|mut e| {
            e.message = self.redact(&e.message);
            e.http_body = e.http_body.map(|b| self.redact(&b));
            e
        })
    }

    fn redact(&self, s: &str) -> String {
        match &self.route.api_key {
            Some(k) => k.redact(s),
            None => s.to_string(),
        }
    }

    fn transport_error(&self, e: &reqwest::Error, reading_body: bool) -> CallError {
        let reason = if e.is_timeout() {
            "timeout"
        } else if e.is_connect() {
            "connection"
        } else if reading_body {
            "truncated_body"
        } else if e.is_request() {
            "connection"
        } else {
            "transport"
        };
        let mut msg = e.to_string();
        let mut src = std::error::Error::source(e);
        while let Some(s) = src {
            msg.push_str(": ");
            msg.push_str(&s.to_string());
            src = s.source();
        }
        CallError::new(
            RetryClass::Transient { after: None },
            reason,
            self.redact(&msg),
        )
    }
}

impl Provider for HttpProvider {
    fn call<'a>(&'a self, prompt: &'a str) -> CallFuture<'a> {
        Box::pin(self.send(prompt))
    }

    fn route(&self) -> &Route {
        &self.route
    }
}

/// Build the right provider for a route: the in-process mock for `Wire::Mock`, HTTP otherwise.
pub fn provider_for(route: Route, client: &reqwest::Client) -> Arc<dyn Provider> {
    match route.wire {
        super::Wire::Mock => Arc::new(super::mock::MockProvider::new(route)),
        _ => Arc::new(HttpProvider::new(route, client.clone())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(status: u16, headers: &[(&str, &str)], body: &str) -> HttpReply {
        HttpReply {
            status,
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn retry_after_forms() {
        let r = reply(429, &[("retry-after", "30")], "");
        assert_eq!(retry_after(&r), Some(Duration::from_secs(30)));
        let r = reply(429, &[("retry-after", "1.5")], "");
        assert_eq!(retry_after(&r), Some(Duration::from_millis(1500)));
        let r = reply(429, &[("retry-after-ms", "1500"), ("retry-after", "2")], "");
        assert_eq!(retry_after(&r), Some(Duration::from_millis(1500)));
        let r = reply(429, &[("retry-after", "soon")], "");
        assert_eq!(retry_after(&r), None);
        let r = reply(
            503,
            &[
                ("date", "Wed, 02 Dec 2026 10:00:00 GMT"),
                ("retry-after", "Wed, 02 Dec 2026 10:00:45 GMT"),
            ],
            "",
        );
        assert_eq!(retry_after(&r), Some(Duration::from_secs(45)));
        let r = reply(
            503,
            &[
                ("date", "Wed, 02 Dec 2026 10:00:00 GMT"),
                ("retry-after", "Wed, 02 Dec 2026 09:59:00 GMT"),
            ],
            "",
        );
        assert_eq!(retry_after(&r), Some(Duration::ZERO));
        let r = reply(429, &[("retry-after", "-3")], "");
        assert_eq!(retry_after(&r), None);
        let r = reply(
            429,
            &[
                ("x-ratelimit-reset-requests", "1m30s"),
                ("x-ratelimit-reset-tokens", "250ms"),
            ],
            "",
        );
        assert_eq!(retry_after(&r), Some(Duration::from_secs(90)));
        assert_eq!(parse_go_duration("6m0s"), Some(Duration::from_secs(360)));
        assert_eq!(parse_go_duration("soon"), None);
    }

    #[test]
    fn status_classes() {
        assert!(matches!(
            classify_status(&reply(429, &[], "{}")).class,
            RetryClass::RateLimited { after: None }
        ));
        assert!(matches!(
            classify_status(&reply(502, &[], "")).class,
            RetryClass::Transient { .. }
        ));
        assert!(matches!(
            classify_status(&reply(529, &[], "")).class,
            RetryClass::Transient { .. }
        ));
        assert_eq!(
            classify_status(&reply(401, &[], "{}")).class,
            RetryClass::Fatal
        );
        assert_eq!(
            classify_status(&reply(400, &[], "{}")).class,
            RetryClass::Fatal
        );
        assert!(matches!(
            classify_status(&reply(408, &[], "")).class,
            RetryClass::Transient { .. }
        ));
        let html = classify_status(&reply(
            502,
            &[("content-type", "text/html")],
            "<!DOCTYPE html><html></html>",
        ));
        assert_eq!(html.reason, "non_json_error_body");
        assert!(html.raw.is_none());
    }
}
