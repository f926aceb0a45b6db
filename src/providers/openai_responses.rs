//! OpenAI Responses API (`POST {base}/responses`), used for `gpt-5*`, `o3*`, `o4*` on
//! the OpenAI direct route (PROTOCOL 2.6). `input` is the prompt, the cap is
//! `max_output_tokens` (PROTOCOL 2.4).
//!
//! The top-level `status` and `incomplete_details` are read before any text (case B05):
//! `incomplete` + `max_output_tokens` with message text is a valid, truncated sample (the
//! item-level status is ignored); with no message text it is `incomplete_max_output_tokens`,
//! which identical parameters reproduce; `content_filter` is invalid whatever text came.
//! The result is the concatenation of `output_text` parts of `message` items.

use serde_json::{json, Map, Value};

use super::{
    json_body, normalise_usage, str_field, AnswerSource, CallError, Completion, HttpReply,
    HttpRequest, RetryClass, Route,
};

/// Build the request.
pub fn build(route: &Route, prompt: &str) -> HttpRequest {
    let mut body = Map::new();
    body.insert("model".into(), json!(route.model));
    body.insert("input".into(), json!(prompt));
    body.insert("max_output_tokens".into(), json!(route.max_tokens));
    if let Some(t) = route.temperature {
        body.insert("temperature".into(), json!(t));
    }
    if let Some(r) = &route.reasoning {
        body.insert("reasoning".into(), r.clone());
    }
    for (k, v) in &route.extra_body {
        body.insert(k.clone(), v.clone());
    }
    let mut headers = Vec::new();
    if let Some(k) = &route.api_key {
        headers.push((
            "authorization".to_string(),
            format!("Bearer {}", k.expose()),
        ));
    }
    headers.extend(route.extra_headers.iter().cloned());
    HttpRequest {
        url: format!("{}/responses", route.base_url.trim_end_matches('/')),
        headers,
        body: Value::Object(body),
    }
}

/// Parse a 2xx reply.
pub fn parse(_route: &Route, reply: &HttpReply) -> Result<Completion, CallError> {
    let raw = json_body(reply)?;
    parse_value(reply.status, &raw).map_err(|e| e.with_http(reply))
}

/// Parse a decoded Responses payload.
pub fn parse_value(status: u16, raw: &Value) -> Result<Completion, CallError> {
    let usage = raw.get("usage").filter(|u| u.is_object()).cloned();
    let tokens = usage.as_ref().map(normalise_usage).unwrap_or_default();
    let model_returned = str_field(raw, "model").map(str::to_string);
    let top_status = str_field(raw, "status").unwrap_or("completed").to_string();
    let incomplete_reason = raw
        .get("incomplete_details")
        .and_then(|d| str_field(d, "reason"))
        .map(str::to_string);
    let mut text = String::new();
    let mut refusal = String::new();
    for item in raw
        .get("output")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if str_field(item, "type") != Some("message") {
            continue;
        }
        for part in item
            .get("content")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            match str_field(part, "type") {
                Some("output_text") => text.push_str(str_field(part, "text").unwrap_or("")),
                Some("refusal") => refusal.push_str(str_field(part, "refusal").unwrap_or("")),
                _ => {}
            }
        }
    }
    let finish = match (&top_status[..], &incomplete_reason) {
        ("incomplete", Some(r)) => Some(format!("incomplete:{r}")),
        (s, _) => Some(s.to_string()),
    };
    let fail = |class: RetryClass, reason: &str, msg: String, partial: &str| {
        let mut e = CallError::new(class, reason, msg).with_raw(raw);
        e.usage = usage.clone();
        e.tokens = tokens;
        e.model_returned = model_returned.clone();
        e.finish_reason = finish.clone();
        e.partial_text = (!partial.is_empty()).then(|| partial.to_string());
        e.http_status = Some(status);
        e
    };
    if let Some(err) = raw.get("error").filter(|e| e.is_object()) {
        let msg = str_field(err, "message")
            .unwrap_or("error object in a 2xx body")
            .to_string();
        let class = match str_field(err, "code") {
            Some("rate_limit_exceeded") => RetryClass::RateLimited { after: None },
            Some("invalid_prompt") => RetryClass::Fatal,
            _ => RetryClass::Transient { after: None },
        };
        return Err(fail(class, "response_failed", msg, &text));
    }
    match (&top_status[..], incomplete_reason.as_deref()) {
        ("failed", _) | ("cancelled", _) => {
            return Err(fail(RetryClass::Transient { after: None }, "response_failed", format!("status {top_status}"), &text))
        }
        ("incomplete", Some("content_filter")) => {
            return Err(fail(RetryClass::Deterministic { reasks: 1 }, "content_filter", "incomplete: content_filter".into(), &text))
        }
        ("incomplete", Some("max_output_tokens")) if text.trim().is_empty() => {
            return Err(fail(
                RetryClass::Deterministic { reasks: 0 },
                "incomplete_max_output_tokens",
                "the output-token budget was used up before any message text (raise max_tokens or lower reasoning effort)".into(),
                &text,
            ))
        }
        _ => {}
    }
    if text.trim().is_empty() {
        if !refusal.is_empty() {
            return Err(fail(
                RetryClass::Deterministic { reasks: 1 },
                "refusal",
                "refusal content part".into(),
                &refusal,
            ));
        }
        return Err(fail(
            RetryClass::Transient { after: None },
            "empty_content",
            "no output_text in any message item".into(),
            "",
        ));
    }
    Ok(Completion {
        text,
        answer_source: AnswerSource::Content,
        reasoning: None,
        finish_reason: finish,
        truncated: top_status == "incomplete",
        model_returned,
        upstream: None,
        usage,
        tokens,
        cost_usd: None,
        raw: raw.clone(),
        http_status: status,
    })
}
