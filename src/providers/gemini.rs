//! Google Generative Language `generateContent`
//! (`POST {base}/models/{model}:generateContent`, key in `x-goog-api-key`). The harness
//! sends `temperature: 1.0` on this route only (PROTOCOL 2.3) and `maxOutputTokens`.
//! The result is the text of all (non-thought) parts of all candidates (PROTOCOL 2.6).
//!
//! Blocks are read before text (case B04): a non-empty `promptFeedback.blockReason` is
//! `prompt_blocked`; a candidate finishing `SAFETY` (or another block reason) is
//! `content_filter`; both are re-asked at most once. An empty `blockReason` is not a block.
//! `MAX_TOKENS` with text is a valid truncated sample (25 published traces).

use serde_json::{json, Map, Value};

use super::{
    json_body, normalise_usage, str_field, AnswerSource, CallError, Completion, HttpReply,
    HttpRequest, RetryClass, Route,
};

/// Finish reasons that mean the candidate was blocked.
const BLOCKING_FINISH: &[&str] = &[
    "SAFETY",
    "RECITATION",
    "BLOCKLIST",
    "PROHIBITED_CONTENT",
    "SPII",
    "IMAGE_SAFETY",
    "LANGUAGE",
];

/// Build the request.
pub fn build(route: &Route, prompt: &str) -> HttpRequest {
    let mut gen = Map::new();
    gen.insert(
        "temperature".into(),
        json!(route.temperature.unwrap_or(1.0)),
    );
    gen.insert("maxOutputTokens".into(), json!(route.max_tokens));
    if let Some(r) = &route.reasoning {
        gen.insert("thinkingConfig".into(), r.clone());
    }
    let mut body = Map::new();
    body.insert(
        "contents".into(),
        json!([{ "role": "user", "parts": [{ "text": prompt }] }]),
    );
    body.insert("generationConfig".into(), Value::Object(gen));
    for (k, v) in &route.extra_body {
        body.insert(k.clone(), v.clone());
    }
    let mut headers = Vec::new();
    if let Some(k) = &route.api_key {
        headers.push(("x-goog-api-key".to_string(), k.expose().to_string()));
    }
    headers.extend(route.extra_headers.iter().cloned());
    HttpRequest {
        url: format!(
            "{}/models/{}:generateContent",
            route.base_url.trim_end_matches('/'),
            route.model
        ),
        headers,
        body: Value::Object(body),
    }
}

/// Parse a 2xx reply.
pub fn parse(_route: &Route, reply: &HttpReply) -> Result<Completion, CallError> {
    let raw = json_body(reply)?;
    parse_value(reply.status, &raw).map_err(|e| e.with_http(reply))
}

/// Parse a decoded generateContent payload.
pub fn parse_value(status: u16, raw: &Value) -> Result<Completion, CallError> {
    let usage = raw.get("usageMetadata").filter(|u| u.is_object()).cloned();
    let tokens = usage.as_ref().map(normalise_usage).unwrap_or_default();
    let model_returned = str_field(raw, "modelVersion").map(str::to_string);
    let candidates: &[Value] = raw
        .get("candidates")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let mut text = String::new();
    let mut finish: Option<String> = None;
    for c in candidates {
        if finish.is_none() {
            finish = str_field(c, "finishReason").map(str::to_string);
        }
        for p in c
            .get("content")
            .and_then(|x| x.get("parts"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if p.get("thought").and_then(Value::as_bool) == Some(true) {
                continue;
            }
            if let Some(t) = str_field(p, "text") {
                text.push_str(t);
            }
        }
    }
    let fail = |class: RetryClass, reason: &str, msg: String| {
        let mut e = CallError::new(class, reason, msg).with_raw(raw);
        e.usage = usage.clone();
        e.tokens = tokens;
        e.model_returned = model_returned.clone();
        e.finish_reason = finish.clone();
        e.partial_text = (!text.is_empty()).then(|| text.clone());
        e.http_status = Some(status);
        e
    };
    if let Some(err) = raw.get("error").filter(|e| e.is_object()) {
        let code = err.get("code").and_then(Value::as_i64);
        let class = match code {
            Some(429) => RetryClass::RateLimited { after: None },
            Some(c) if (400..500).contains(&c) => RetryClass::Fatal,
            _ => RetryClass::Transient { after: None },
        };
        return Err(fail(
            class,
            "error_in_body",
            str_field(err, "message").unwrap_or("error").to_string(),
        ));
    }
    if let Some(block) = raw
        .get("promptFeedback")
        .and_then(|f| str_field(f, "blockReason"))
        .filter(|b| !b.is_empty() && *b != "BLOCK_REASON_UNSPECIFIED")
    {
        return Err(fail(
            RetryClass::Deterministic { reasks: 1 },
            "prompt_blocked",
            format!("promptFeedback.blockReason {block}"),
        ));
    }
    if let Some(f) = finish.as_deref().filter(|f| BLOCKING_FINISH.contains(f)) {
        return Err(fail(
            RetryClass::Deterministic { reasks: 1 },
            "content_filter",
            format!("finishReason {f}"),
        ));
    }
    if candidates.is_empty() {
        return Err(fail(
            RetryClass::Transient { after: None },
            "no_candidates",
            "no candidates in the reply".into(),
        ));
    }
    if text.trim().is_empty() {
        if finish.as_deref() == Some("MAX_TOKENS") {
            return Err(fail(
                RetryClass::Deterministic { reasks: 0 },
                "reasoning_only_truncated",
                "thinking used the whole budget before any text".into(),
            ));
        }
        return Err(fail(
            RetryClass::Transient { after: None },
            "empty_content",
            "no text parts".into(),
        ));
    }
    let truncated = finish.as_deref() == Some("MAX_TOKENS");
    Ok(Completion {
        text,
        answer_source: AnswerSource::Content,
        reasoning: None,
        finish_reason: finish,
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
