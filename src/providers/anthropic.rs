//! Anthropic Messages (`POST {base}/messages`, `anthropic-version: 2023-06-01`), also
//! Moonshot Kimi's Anthropic-style endpoint (PROTOCOL 2.6). The result is the
//! concatenation of all `text` content blocks.
//!
//! `stop_reason` is read before the text (case B03): `refusal` is invalid whether or not
//! partial text came (`refusal` / `refusal_after_partial_text`, category kept) and is
//! re-asked at most once, never retried like a 5xx; `max_tokens` is a valid truncated
//! sample. A 200 with `type: error` is classified by its error type (`overloaded_error`
//! is transient, `rate_limit_error` rate limited, auth/permission fatal).

use serde_json::{json, Map, Value};

use super::{
    json_body, normalise_usage, str_field, AnswerSource, CallError, Completion, HttpReply,
    HttpRequest, RetryClass, Route,
};

/// Build the request.
pub fn build(route: &Route, prompt: &str) -> HttpRequest {
    let mut body = Map::new();
    body.insert("model".into(), json!(route.model));
    body.insert("max_tokens".into(), json!(route.max_tokens));
    body.insert(
        "messages".into(),
        json!([{ "role": "user", "content": prompt }]),
    );
    if let Some(t) = route.temperature {
        body.insert("temperature".into(), json!(t));
    }
    if let Some(r) = &route.reasoning {
        body.insert("thinking".into(), r.clone());
    }
    for (k, v) in &route.extra_body {
        body.insert(k.clone(), v.clone());
    }
    let mut headers = vec![("anthropic-version".to_string(), "2023-06-01".to_string())];
    if let Some(k) = &route.api_key {
        headers.push(("x-api-key".to_string(), k.expose().to_string()));
    }
    headers.extend(route.extra_headers.iter().cloned());
    HttpRequest {
        url: format!("{}/messages", route.base_url.trim_end_matches('/')),
        headers,
        body: Value::Object(body),
    }
}

/// Parse a 2xx reply.
pub fn parse(_route: &Route, reply: &HttpReply) -> Result<Completion, CallError> {
    let raw = json_body(reply)?;
    parse_value(reply.status, &raw).map_err(|e| e.with_http(reply))
}

/// Parse a decoded Messages payload.
pub fn parse_value(status: u16, raw: &Value) -> Result<Completion, CallError> {
    let usage = raw.get("usage").filter(|u| u.is_object()).cloned();
    let tokens = usage.as_ref().map(normalise_usage).unwrap_or_default();
    let model_returned = str_field(raw, "model").map(str::to_string);
    let stop_reason = str_field(raw, "stop_reason").map(str::to_string);
    let text: String = raw
        .get("content")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|b| str_field(b, "type") == Some("text"))
        .filter_map(|b| str_field(b, "text"))
        .collect();
    let fail = |class: RetryClass, reason: &str, msg: String| {
        let mut e = CallError::new(class, reason, msg).with_raw(raw);
        e.usage = usage.clone();
        e.tokens = tokens;
        e.model_returned = model_returned.clone();
        e.finish_reason = stop_reason.clone();
        e.partial_text = (!text.is_empty()).then(|| text.clone());
        e.http_status = Some(status);
        e
    };
    if str_field(raw, "type") == Some("error") || raw.get("error").is_some_and(Value::is_object) {
        let err = raw.get("error").cloned().unwrap_or(Value::Null);
        let kind = str_field(&err, "type").unwrap_or("error");
        let class = match kind {
            "rate_limit_error" => RetryClass::RateLimited { after: None },
            "authentication_error"
            | "permission_error"
            | "invalid_request_error"
            | "not_found_error"
            | "billing_error" => RetryClass::Fatal,
            _ => RetryClass::Transient { after: None },
        };
        return Err(fail(
            class,
            "error_in_body",
            format!("{kind}: {}", str_field(&err, "message").unwrap_or("")),
        ));
    }
    if stop_reason.as_deref() == Some("refusal") {
        let category = raw
            .get("stop_details")
            .and_then(|d| str_field(d, "category"))
            .unwrap_or("unspecified");
        let reason = if text.trim().is_empty() {
            "refusal"
        } else {
            "refusal_after_partial_text"
        };
        return Err(fail(
            RetryClass::Deterministic { reasks: 1 },
            reason,
            format!("stop_reason refusal (category {category})"),
        ));
    }
    if text.trim().is_empty() {
        if stop_reason.as_deref() == Some("max_tokens") {
            return Err(fail(
                RetryClass::Deterministic { reasks: 0 },
                "reasoning_only_truncated",
                "the token budget was used up before any text block".into(),
            ));
        }
        return Err(fail(
            RetryClass::Transient { after: None },
            "empty_content",
            "no text content block".into(),
        ));
    }
    let truncated = stop_reason.as_deref() == Some("max_tokens");
    Ok(Completion {
        text,
        answer_source: AnswerSource::Content,
        reasoning: None,
        finish_reason: stop_reason,
        truncated,
        model_returned,
        upstream: None,
        usage,
        tokens,
        cost_usd: None,
        raw: raw.clone(),
        http_status: status,
    })
}
