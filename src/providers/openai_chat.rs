//! OpenAI-compatible Chat Completions (`POST {base}/chat/completions`): OpenRouter (with
//! the `provider.only` pin), OpenAI chat models, xAI, DeepSeek, Z.ai, MiniMax, vLLM,
//! Ollama `/v1`, llama.cpp server. Routes differ only in data (base URL, auth, body).
//!
//! Extraction (PROTOCOL 2.6 and cases B01, B02, B08, B09), in this order:
//! top-level `error` object -> MiniMax `base_resp` -> `choices` null/empty (`no_choices`)
//! -> an `error` inside the choice (`upstream_error_in_choice`, partial text kept) ->
//! `content` (string or text parts), split at the last `</think>` -> `reasoning_content`
//! fallback (valid, flagged) -> a reasoning-only reply (`empty_content_reasoning_only`,
//! OpenRouter's `reasoning` field is *not* a fallback at collection time) -> empty.
//! An SSE body (`text/event-stream`) is assembled first, skipping `choices: []` chunks and
//! taking usage from the usage-only chunk; a stream cut before `[DONE]` is truncated.

use serde_json::{json, Map, Value};

use super::{
    json_body, normalise_usage, str_field, AnswerSource, CallError, Completion, HttpReply,
    HttpRequest, ProviderKind, RetryClass, Route,
};

/// Build the request body and headers.
pub fn build(route: &Route, prompt: &str) -> HttpRequest {
    let mut body = Map::new();
    body.insert("model".into(), json!(route.model));
    body.insert(
        "messages".into(),
        json!([{ "role": "user", "content": prompt }]),
    );
    body.insert("max_tokens".into(), json!(route.max_tokens));
    if let Some(t) = route.temperature {
        body.insert("temperature".into(), json!(t));
    }
    if let Some(r) = &route.reasoning {
        body.insert("reasoning".into(), r.clone());
    }
    if !route.pin.is_empty() {
        body.insert(
            "provider".into(),
            json!({ "only": route.pin, "allow_fallbacks": false }),
        );
    }
    if route.stream {
        body.insert("stream".into(), json!(true));
        body.insert("stream_options".into(), json!({ "include_usage": true }));
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
    let path = if route.kind == ProviderKind::MiniMax {
        "text/chatcompletion_v2"
    } else {
        "chat/completions"
    };
    HttpRequest {
        url: format!("{}/{}", route.base_url.trim_end_matches('/'), path),
        headers,
        body: Value::Object(body),
    }
}

/// Parse a 2xx reply (JSON body or SSE stream).
pub fn parse(route: &Route, reply: &HttpReply) -> Result<Completion, CallError> {
    let is_stream = reply
        .header("content-type")
        .map(|c| c.starts_with("text/event-stream"))
        .unwrap_or(false)
        || reply.body.starts_with(b"data:");
    let raw = if is_stream {
        assemble_stream(reply)?
    } else {
        json_body(reply)?
    };
    parse_value(route, reply.status, &raw).map_err(|e| {
        if e.http_status.is_none() {
            e.with_http(reply)
        } else {
            e
        }
    })
}

/// Assemble an SSE chat stream into one chat.completion-shaped value (B08).
pub fn assemble_stream(reply: &HttpReply) -> Result<Value, CallError> {
    let text = String::from_utf8_lossy(&reply.body);
    let mut content = String::new();
    let mut reasoning_content = String::new();
    let mut finish: Option<String> = None;
    let mut usage: Option<Value> = None;
    let mut model: Option<String> = None;
    let mut upstream: Option<String> = None;
    let mut id: Option<String> = None;
    let mut choice_error: Option<Value> = None;
    let mut done = false;
    let mut saw_choice = false;
    // An event ends at a blank line; a final event without one was cut mid-stream.
    let complete_part = match text.rfind("\n\n") {
        Some(i) => &text[..i + 2],
        None => "",
    };
    let cut = text.len() > complete_part.len() && !text[complete_part.len()..].trim().is_empty();
    for event in complete_part.split("\n\n") {
        let data: String = event
            .lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .map(|d| d.strip_prefix(' ').unwrap_or(d))
            .collect::<Vec<_>>()
            .join("\n");
        if data.is_empty() {
            continue;
        }
        if data.trim() == "[DONE]" {
            done = true;
            continue;
        }
        let chunk: Value = serde_json::from_str(&data).map_err(|e| {
            CallError::new(
                RetryClass::Transient { after: None },
                "malformed_body",
                format!("stream chunk is not JSON: {e}"),
            )
            .with_http(reply)
        })?;
        if let Some(err) = chunk.get("error").filter(|e| !e.is_null()) {
            choice_error = Some(err.clone());
        }
        if let Some(u) = chunk.get("usage").filter(|u| u.is_object()) {
            usage = Some(u.clone());
        }
        if let Some(m) = str_field(&chunk, "model").filter(|m| !m.is_empty()) {
            model = Some(m.to_string());
        }
        if let Some(p) = str_field(&chunk, "provider") {
            upstream = Some(p.to_string());
        }
        if let Some(i) = str_field(&chunk, "id").filter(|m| !m.is_empty()) {
            id = Some(i.to_string());
        }
        let Some(choice) = chunk
            .get("choices")
            .and_then(Value::as_array)
            .and_then(|c| c.first())
        else {
            continue;
        };
        saw_choice = true;
        if let Some(err) = choice.get("error").filter(|e| !e.is_null()) {
            choice_error = Some(err.clone());
        }
        if let Some(delta) = choice.get("delta") {
            if let Some(c) = str_field(delta, "content") {
                content.push_str(c);
            }
            if let Some(c) = str_field(delta, "reasoning_content") {
                reasoning_content.push_str(c);
            }
        }
        if let Some(f) = str_field(choice, "finish_reason") {
            finish = Some(f.to_string());
        }
    }
    // A stream cut mid-event, or one that stopped before both [DONE] and a finish reason.
    if cut || (!done && finish.is_none()) {
        let mut e = CallError::new(
            RetryClass::Transient { after: None },
            "truncated_stream",
            "event stream ended before [DONE]".to_string(),
        )
        .with_http(reply);
        e.partial_text = (!content.is_empty()).then_some(content);
        e.usage = usage;
        return Err(e);
    }
    let mut message = json!({ "role": "assistant", "content": content });
    if !reasoning_content.is_empty() {
        message["reasoning_content"] = json!(reasoning_content);
    }
    let mut choice = json!({ "index": 0, "message": message, "finish_reason": finish });
    if let Some(e) = choice_error {
        choice["error"] = e;
    }
    let choices = if saw_choice {
        json!([choice])
    } else {
        json!([])
    };
    let mut out = json!({ "id": id, "object": "chat.completion", "model": model, "choices": choices, "usage": usage });
    if let Some(p) = upstream {
        out["provider"] = json!(p);
    }
    Ok(out)
}

/// Text of a `content` value: a string, or an array of `{type: text, text}` parts.
fn content_text(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter(|p| {
                p.get("type")
                    .and_then(Value::as_str)
                    .is_none_or(|t| t == "text" || t == "output_text")
            })
            .filter_map(|p| str_field(p, "text"))
            .collect::<String>(),
        _ => String::new(),
    }
}

/// Split content at the last `</think>` (B09). Returns (answer, reasoning, unclosed):
/// with a closing tag the answer is what follows it (trimmed) and the reasoning what precedes
/// it (an opening tag removed); with an opening tag but no closing tag there is no answer.
pub fn split_think(content: &str) -> (Option<String>, Option<String>, bool) {
    if let Some(i) = content.rfind("</think>") {
        let before = &content[..i];
        let before = before.trim_start();
        let before = before.strip_prefix("<think>").unwrap_or(before).trim();
        let after = content[i + "</think>".len()..].trim();
        return (
            Some(after.to_string()),
            (!before.is_empty()).then(|| before.to_string()),
            false,
        );
    }
    let t = content.trim_start();
    if let Some(rest) = t.strip_prefix("<think>") {
        return (None, Some(rest.trim().to_string()), true);
    }
    (Some(content.to_string()), None, false)
}

/// Classify an in-body error object by its code (429 -> rate limited, 5xx -> transient,
/// auth/billing -> fatal, other 4xx -> fatal, unknown -> transient).
fn class_of_code(code: Option<i64>) -> RetryClass {
    match code {
        Some(429) => RetryClass::RateLimited { after: None },
        Some(401) | Some(402) | Some(403) => RetryClass::Fatal,
        Some(c) if (400..500).contains(&c) && c != 408 => RetryClass::Fatal,
        _ => RetryClass::Transient { after: None },
    }
}

fn code_of(err: &Value) -> Option<i64> {
    match err.get("code") {
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(s)) => s.parse().ok(),
        _ => None,
    }
}

/// Parse an already-decoded chat.completion value.
pub fn parse_value(route: &Route, status: u16, raw: &Value) -> Result<Completion, CallError> {
    let usage = raw.get("usage").filter(|u| u.is_object()).cloned();
    let tokens = usage.as_ref().map(normalise_usage).unwrap_or_default();
    let model_returned = str_field(raw, "model").map(str::to_string);
    let fail = |class: RetryClass, reason: &str, msg: String| {
        let mut e = CallError::new(class, reason, msg).with_raw(raw);
        e.usage = usage.clone();
        e.tokens = tokens;
        e.model_returned = model_returned.clone();
        e.http_status = Some(status);
        e
    };
    if let Some(err) = raw.get("error").filter(|e| e.is_object()) {
        let msg = str_field(err, "message")
            .unwrap_or("error object in a 2xx body")
            .to_string();
        return Err(fail(class_of_code(code_of(err)), "error_in_body", msg));
    }
    if let Some(base) = raw.get("base_resp") {
        let code = base.get("status_code").and_then(Value::as_i64).unwrap_or(0);
        if code != 0 {
            let msg = str_field(base, "status_msg").unwrap_or("").to_string();
            let class = match code {
                1002 | 1039 => RetryClass::RateLimited { after: None },
                1004 | 1008 | 2013 | 2049 => RetryClass::Fatal,
                _ => RetryClass::Transient { after: None },
            };
            return Err(fail(
                class,
                "provider_status",
                format!("base_resp.status_code {code}: {msg}"),
            ));
        }
    }
    let Some(choice) = raw
        .get("choices")
        .and_then(Value::as_array)
        .and_then(|c| c.first())
    else {
        return Err(fail(
            RetryClass::Transient { after: None },
            "no_choices",
            "choices is null, missing or empty".into(),
        ));
    };
    let finish_reason = str_field(choice, "finish_reason").map(str::to_string);
    let message = choice.get("message").cloned().unwrap_or(Value::Null);
    let content = content_text(message.get("content"));
    let upstream = str_field(raw, "provider").map(str::to_string);
    let truncated = finish_reason.as_deref() == Some("length");

    if let Some(err) = choice.get("error").filter(|e| !e.is_null()) {
        let code = code_of(err);
        let msg = str_field(err, "message").unwrap_or("error inside the choice");
        let mut e = fail(
            match class_of_code(code) {
                RetryClass::Fatal => RetryClass::Transient { after: None },
                c => c,
            },
            "upstream_error_in_choice",
            format!(
                "upstream error {} inside a 2xx choice: {msg}",
                code.map(|c| c.to_string()).unwrap_or_default()
            ),
        );
        e.partial_text = (!content.is_empty()).then_some(content);
        e.finish_reason = finish_reason;
        return Err(e);
    }
    if finish_reason.as_deref() == Some("content_filter") {
        let mut e = fail(
            RetryClass::Deterministic { reasks: 1 },
            "content_filter",
            "finish_reason content_filter".into(),
        );
        e.partial_text = (!content.is_empty()).then_some(content);
        e.finish_reason = finish_reason;
        return Err(e);
    }
    if finish_reason.as_deref() == Some("error") {
        let mut e = fail(
            RetryClass::Transient { after: None },
            "finish_reason_error",
            "finish_reason error".into(),
        );
        e.partial_text = (!content.is_empty()).then_some(content);
        e.finish_reason = finish_reason;
        return Err(e);
    }

    let (answer, think, unclosed) = split_think(&content);
    let had_think = think.is_some() || content.contains("</think>");
    let reasoning_content =
        str_field(&message, "reasoning_content").filter(|s| !s.trim().is_empty());
    let other_reasoning = str_field(&message, "reasoning")
        .filter(|s| !s.trim().is_empty())
        .map(str::to_string)
        .or_else(|| {
            let parts: String = message
                .get("reasoning_details")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(|d| str_field(d, "text")).collect())
                .unwrap_or_default();
            (!parts.trim().is_empty()).then_some(parts)
        });
    let reasoning_kept = think
        .clone()
        .or_else(|| reasoning_content.map(str::to_string))
        .or_else(|| other_reasoning.clone());

    let completion = |text: String, source: AnswerSource, reasoning: Option<String>| Completion {
        text,
        answer_source: source,
        reasoning,
        finish_reason: finish_reason.clone(),
        truncated,
        model_returned: model_returned.clone(),
        upstream: upstream.clone(),
        usage: usage.clone(),
        tokens,
        cost_usd: usage
            .as_ref()
            .and_then(|u| u.get("cost"))
            .and_then(Value::as_f64),
        raw: raw.clone(),
        http_status: status,
    };

    if let Some(a) = answer.as_ref().filter(|a| !a.trim().is_empty()) {
        let source = if had_think {
            AnswerSource::AfterThink
        } else {
            AnswerSource::Content
        };
        return Ok(completion(a.clone(), source, reasoning_kept));
    }
    if unclosed {
        let (class, reason) = if truncated {
            (
                RetryClass::Deterministic { reasks: 0 },
                "reasoning_only_truncated",
            )
        } else {
            (
                RetryClass::Transient { after: None },
                "reasoning_only_unclosed_think",
            )
        };
        let mut e = fail(
            class,
            reason,
            "content holds an unclosed <think> block and no answer".into(),
        );
        e.partial_text = think;
        e.finish_reason = finish_reason;
        return Err(e);
    }
    if !had_think {
        if let Some(rc) = reasoning_content {
            return Ok(completion(
                rc.to_string(),
                AnswerSource::ReasoningContent,
                None,
            ));
        }
    }
    if let Some(r) = message
        .get("refusal")
        .and_then(Value::as_str)
        .filter(|r| !r.trim().is_empty())
    {
        let mut e = fail(
            RetryClass::Deterministic { reasks: 1 },
            "refusal",
            "the message carries a refusal and no content".into(),
        );
        e.partial_text = Some(r.to_string());
        e.finish_reason = finish_reason;
        return Err(e);
    }
    if had_think {
        // Thinking closed but nothing after it: the model gave no answer this time.
        let mut e = fail(
            RetryClass::Transient { after: None },
            "reasoning_only",
            "content holds only a <think> block".into(),
        );
        e.partial_text = think;
        e.finish_reason = finish_reason;
        return Err(e);
    }
    if let Some(r) = other_reasoning {
        // OpenRouter's `reasoning` is not a collection-time fallback (PROTOCOL 2.6). On a
        // local server this means no reasoning parser split the answer out: a per-cell
        // configuration problem, reported once (B02).
        let class = if route.kind.is_local_server() {
            RetryClass::Fatal
        } else {
            RetryClass::Transient { after: None }
        };
        let mut e = fail(
            class,
            "empty_content_reasoning_only",
            "content is empty; text only in a reasoning field".into(),
        );
        e.partial_text = Some(r);
        e.finish_reason = finish_reason;
        return Err(e);
    }
    let mut e = fail(
        RetryClass::Transient { after: None },
        "empty_content",
        "content is null or empty".into(),
    );
    e.finish_reason = finish_reason;
    Err(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(kind: ProviderKind) -> Route {
        Route {
            kind,
            wire: super::super::Wire::OpenAiChat,
            base_url: "http://x/v1".into(),
            model: "m".into(),
            max_tokens: 2000,
            temperature: None,
            reasoning: None,
            pin: vec!["Z.AI".into()],
            extra_headers: vec![],
            extra_body: Default::default(),
            stream: false,
            api_key: Some(super::super::ApiKey::new("sk-abc")),
        }
    }

    fn reply(body: &str, ct: &str) -> HttpReply {
        HttpReply {
            status: 200,
            headers: vec![("content-type".into(), ct.into())],
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn request_has_one_user_message_pin_and_cap() {
        let req = build(&r(ProviderKind::OpenRouter), "What do you want?");
        assert_eq!(req.url, "http://x/v1/chat/completions");
        assert_eq!(
            req.body["messages"],
            json!([{ "role": "user", "content": "What do you want?" }])
        );
        assert_eq!(req.body["max_tokens"], json!(2000));
        assert_eq!(
            req.body["provider"],
            json!({ "only": ["Z.AI"], "allow_fallbacks": false })
        );
        assert!(
            req.body.get("temperature").is_none(),
            "no temperature unless the study sets one"
        );
        assert!(req
            .headers
            .iter()
            .any(|(k, v)| k == "authorization" && v == "Bearer sk-abc"));
    }

    #[test]
    fn refusal_field_think_only_and_content_parts() {
        let rt = r(ProviderKind::OpenRouter);
        let b = r#"{"choices":[{"finish_reason":"stop","message":{"content":null,"refusal":"I can't help with that."}}]}"#;
        let e = parse(&rt, &reply(b, "application/json")).unwrap_err();
        assert_eq!(
            (e.reason.as_str(), e.class),
            ("refusal", RetryClass::Deterministic { reasks: 1 })
        );
        let b = r#"{"choices":[{"finish_reason":"stop","message":{"content":"<think>hm</think>\n\n"}}]}"#;
        let e = parse(&r(ProviderKind::Vllm), &reply(b, "application/json")).unwrap_err();
        assert_eq!(e.reason, "reasoning_only");
        assert!(matches!(e.class, RetryClass::Transient { .. }));
        let b = r#"{"choices":[{"finish_reason":"stop","message":{"content":[{"type":"text","text":"I care "},{"type":"text","text":"a lot."}]}}]}"#;
        assert_eq!(
            parse(&rt, &reply(b, "application/json")).unwrap().text,
            "I care a lot."
        );
        let b = r#"{"choices":null,"base_resp":{"status_code":0,"status_msg":""}}"#;
        assert_eq!(
            parse(&rt, &reply(b, "application/json"))
                .unwrap_err()
                .reason,
            "no_choices"
        );
        let b = r#"{"error":{"code":429,"message":"slow"}}"#;
        assert!(matches!(
            parse(&rt, &reply(b, "application/json")).unwrap_err().class,
            RetryClass::RateLimited { .. }
        ));
    }

    #[test]
    fn streams_cut_or_complete() {
        let rt = r(ProviderKind::OpenRouter);
        let ok =
            "data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"},\"finish_reason\":\"stop\"}]}\n\n";
        assert_eq!(
            parse(&rt, &reply(ok, "text/event-stream")).unwrap().text,
            "Hi"
        );
        let cut = "data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"},\"finish_reason\":null}]}\n\ndata: {\"choi";
        let e = parse(&rt, &reply(cut, "text/event-stream")).unwrap_err();
        assert_eq!(e.reason, "truncated_stream");
        assert_eq!(e.partial_text.as_deref(), Some("Hi"));
        let mid =
            "data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"},\"finish_reason\":null}]}\n\n";
        assert_eq!(
            parse(&rt, &reply(mid, "text/event-stream"))
                .unwrap_err()
                .reason,
            "truncated_stream"
        );
        let err = "data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"},\"finish_reason\":null}]}\n\ndata: {\"error\":{\"code\":502,\"message\":\"lost\"},\"choices\":[{\"delta\":{},\"finish_reason\":\"error\"}]}\n\ndata: [DONE]\n\n";
        assert_eq!(
            parse(&rt, &reply(err, "text/event-stream"))
                .unwrap_err()
                .reason,
            "upstream_error_in_choice"
        );
    }

    #[test]
    fn think_split() {
        let (a, r, u) = split_think("<think>\nx\n</think>\n\nAnswer.");
        assert_eq!(a.as_deref(), Some("Answer."));
        assert_eq!(r.as_deref(), Some("x"));
        assert!(!u);
        let (a, _, u) = split_think("<think>\nunfinished");
        assert!(a.is_none() && u);
        let (a, r, _) = split_think("Plain answer with no tags.");
        assert_eq!(a.as_deref(), Some("Plain answer with no tags."));
        assert!(r.is_none());
        // Several blocks: the answer is after the last one.
        let (a, _, _) = split_think("<think>a</think>mid<think>b</think> end");
        assert_eq!(a.as_deref(), Some("end"));
    }
}
