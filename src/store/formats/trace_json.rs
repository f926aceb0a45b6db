//! One trace-shaped JSON record -> [`NewSample`]: the validity rule (PROTOCOL 2.9), the
//! truncation / upstream-error flags (2.4, 2.8) and strict field types.
//!
//! Shared by the trace files, the website bundle entries and the manifest rows, which are
//! all the same record with more or fewer fields; keeping one reader means the rule
//! that decides validity exists once.

use serde_json::{Map, Value};

use super::{json_type, WarningKind};
use crate::protocol::conditions::parse_condition;
use crate::protocol::{Condition, SampleCondition};
use crate::store::samples::NewSample;

/// Where a record sits: its cell, condition and index (from the file name or a
/// `sample_id`), and the `condition` field must agree.
pub(crate) struct Key<'a> {
    pub cell: &'a str,
    pub condition: SampleCondition,
    pub idx: u32,
}

/// Build a sample from one record. `payload` is its verbatim text; errors are reasons
/// (the caller adds the path).
pub(crate) fn record_to_sample(
    key: Key<'_>,
    obj: &Map<String, Value>,
    payload: String,
    origin: String,
) -> Result<NewSample, String> {
    check_cell_label(key.cell)?;
    let cond_field = req_str(obj, "condition")?;
    // A custom condition (only a trace file's name can give one) must be spelled the same
    // in the record: a typo of one of the six would have to be made twice to pass.
    let cond = match &key.condition {
        SampleCondition::Custom(id) if cond_field == id => key.condition.clone(),
        SampleCondition::Custom(_) => SampleCondition::parse(cond_field)
            .ok_or_else(|| format!("field `condition`: {cond_field:?} is not a condition"))?,
        SampleCondition::Published(_) => SampleCondition::Published(condition_field(obj)?),
    };
    if cond != key.condition {
        return Err(format!(
            "condition field {cond_field:?} disagrees with the sample name ({}_{})",
            key.condition, key.idx
        ));
    }
    let prompt = req_str(obj, "prompt")?.to_string();
    let result = opt_str(obj, "result")?;
    let response_field = opt_str(obj, "response")?;
    let raw = match obj.get("raw") {
        None | Some(Value::Null) => None,
        Some(Value::Object(m)) => Some(m),
        Some(v) => {
            return Err(format!(
                "field `raw`: expected object, found {}",
                json_type(v)
            ))
        }
    };
    let usage_json = match obj.get("usage") {
        None | Some(Value::Null) => None,
        Some(v @ Value::Object(_)) => Some(v.to_string()),
        Some(v) => {
            return Err(format!(
                "field `usage`: expected object, found {}",
                json_type(v)
            ))
        }
    };
    let chat_message = raw
        .and_then(|r| r.get("choices"))
        .and_then(Value::as_array)
        .and_then(|c| c.first())
        .and_then(|c| c.get("message"));
    let raw_content = chat_message
        .and_then(|m| m.get("content"))
        .and_then(Value::as_str);

    // PROTOCOL 2.9: result, then response, then raw.choices[0].message.content.
    let (response, mut answer_source) = if let Some(t) = non_empty(result) {
        (Some(t.to_string()), Some("result"))
    } else if let Some(t) = non_empty(response_field) {
        (Some(t.to_string()), Some("response"))
    } else if let Some(t) = non_empty(raw_content) {
        (Some(t.to_string()), Some("raw_content"))
    } else {
        (None, None)
    };
    // The collector's reasoning_content fallback (PROTOCOL 2.6, case B02): the stored result
    // came from reasoning_content because the message content was empty.
    if answer_source == Some("result") && non_empty(raw_content).is_none() {
        let reasoning = chat_message
            .and_then(|m| m.get("reasoning_content"))
            .and_then(Value::as_str);
        if reasoning.is_some() && reasoning == result {
            answer_source = Some("reasoning_content");
        }
    }
    let flags = raw.map(raw_flags).unwrap_or_default();
    let error = opt_str(obj, "error")?.map(str::to_string);
    let valid = response.is_some();
    let invalid_reason = (!valid).then(|| {
        if error.is_some() {
            "collection_error"
        } else {
            "empty_response"
        }
        .to_string()
    });
    let layered_id = opt_str(obj, "layered_id")?.map(str::to_string);
    Ok(NewSample {
        cell: key.cell.to_string(),
        condition: cond,
        idx: key.idx,
        layered_id,
        valid,
        prompt,
        response,
        provider: opt_str(obj, "provider")?.map(str::to_string),
        model_returned: opt_str(obj, "model")?.map(str::to_string),
        model_requested: opt_str(obj, "model_requested")?.map(str::to_string),
        duration_ms: opt_int(obj, "duration_ms")?,
        finish_reason: flags.finish_reason,
        truncated: flags.truncated,
        upstream_error: flags.upstream_error,
        answer_source: answer_source.map(str::to_string),
        error,
        invalid_reason,
        http_status: opt_int(obj, "http_status")?,
        usage_json,
        content_sha256: crate::store::sha256_hex(payload.as_bytes()),
        payload,
        origin,
    })
}

/// What is questionable about a sample that is otherwise fine to store (the data is real,
/// so it is kept): a prompt other than its condition's exact prompt (PROTOCOL 2.1), no
/// response text without an `error` saying why (2.9: e.g. `"result": null`; the collector's
/// error traces carry their `error`) and a negative `duration_ms` (2.7). Each reason names
/// the field; the caller adds where.
pub(crate) fn sample_warnings(s: &NewSample) -> Vec<(WarningKind, String)> {
    let mut out = Vec::new();
    // A custom condition's prompt is its study file's own.
    if let Some(want) = s
        .condition
        .published()
        .map(|c| c.prompt())
        .filter(|w| s.prompt != *w)
    {
        out.push((
            WarningKind::PromptMismatch,
            format!(
                "field `prompt` is not the {} prompt (PROTOCOL 2.1): expected {want:?}, found {}; \
                 imported as {} anyway",
                s.condition,
                shown(&s.prompt, 120),
                s.condition
            ),
        ));
    }
    if !s.valid && s.error.is_none() {
        out.push((WarningKind::NoResponseText, no_text_reason(&s.payload)));
    }
    if let Some(ms) = s.duration_ms.filter(|ms| *ms < 0) {
        out.push((
            WarningKind::NegativeDuration,
            format!("field `duration_ms` is negative ({ms}); imported as it is"),
        ));
    }
    out
}

/// Why a record without an `error` yields no response text: the state of each field the
/// validity rule looks at (PROTOCOL 2.9), in its order.
fn no_text_reason(payload: &str) -> String {
    let obj = serde_json::from_str::<Map<String, Value>>(payload).unwrap_or_default();
    let content = obj
        .get("raw")
        .and_then(|r| r.get("choices"))
        .and_then(Value::as_array)
        .and_then(|c| c.first())
        .and_then(|c| c.get("message"))
        .and_then(|m| m.get("content"));
    let state = |v: Option<&Value>| match v {
        None => "absent".to_string(),
        Some(Value::Null) => "null".to_string(),
        Some(Value::String(t)) if t.is_empty() => "empty".to_string(),
        Some(Value::String(_)) => "only whitespace".to_string(),
        Some(v) => format!("{}, not text", json_type(v)),
    };
    format!(
        "no response text (PROTOCOL 2.9): `result` is {}, `response` is {}, \
         `raw.choices[0].message.content` is {}, and no `error` says why; imported as an \
         invalid sample, which is not coded or analysed",
        state(obj.get("result")),
        state(obj.get("response")),
        state(content)
    )
}

/// `text` quoted for a message (control characters escaped), cut after `max` characters.
fn shown(text: &str, max: usize) -> String {
    let mut cut: String = text.chars().take(max).collect();
    let more = cut.len() < text.len();
    cut = format!("{cut:?}");
    if more {
        cut.push_str(&format!(
            " (first {max} of {} characters)",
            text.chars().count()
        ));
    }
    cut
}

#[derive(Default)]
struct RawFlags {
    finish_reason: Option<String>,
    truncated: bool,
    upstream_error: bool,
}

/// Finish reason, truncation and upstream error from the provider payload, branching on
/// the keys present (chat.completions, Gemini, OpenAI Responses, Anthropic Messages).
/// Unexpected shapes just yield no flags: `raw` is provenance, never a reason to reject.
fn raw_flags(raw: &Map<String, Value>) -> RawFlags {
    let mut f = RawFlags::default();
    if let Some(choices) = raw.get("choices").and_then(Value::as_array) {
        if let Some(c0) = choices.first() {
            f.finish_reason = c0
                .get("finish_reason")
                .and_then(Value::as_str)
                .map(str::to_string);
            f.truncated = f.finish_reason.as_deref() == Some("length");
            f.upstream_error = c0.get("error").is_some_and(|e| !e.is_null());
        }
    } else if let Some(cands) = raw.get("candidates").and_then(Value::as_array) {
        let reasons: Vec<&str> = cands
            .iter()
            .filter_map(|c| c.get("finishReason").and_then(Value::as_str))
            .collect();
        f.finish_reason = reasons.first().map(|s| s.to_string());
        f.truncated = reasons.contains(&"MAX_TOKENS");
    } else if raw.contains_key("output") && raw.get("status").is_some_and(Value::is_string) {
        let status = raw
            .get("status")
            .and_then(Value::as_str)
            .unwrap_or_default();
        f.truncated = status == "incomplete";
        let detail = raw
            .get("incomplete_details")
            .and_then(|d| d.get("reason"))
            .and_then(Value::as_str);
        f.finish_reason = Some(match (status, detail) {
            ("incomplete", Some(reason)) => format!("incomplete:{reason}"),
            _ => status.to_string(),
        });
    } else if let Some(stop) = raw.get("stop_reason").and_then(Value::as_str) {
        f.finish_reason = Some(stop.to_string());
        f.truncated = stop == "max_tokens";
    }
    f
}

/// The record's `condition` field; an error names the field and its value and lists the
/// six conditions.
pub(crate) fn condition_field(obj: &Map<String, Value>) -> Result<Condition, String> {
    parse_condition(req_str(obj, "condition")?).map_err(|e| format!("field `condition`: {e}"))
}

fn req_str<'a>(obj: &'a Map<String, Value>, field: &str) -> Result<&'a str, String> {
    match obj.get(field) {
        Some(Value::String(s)) => Ok(s),
        None => Err(format!("missing field `{field}`")),
        Some(v) => Err(format!(
            "field `{field}`: expected string, found {}",
            json_type(v)
        )),
    }
}

fn opt_str<'a>(obj: &'a Map<String, Value>, field: &str) -> Result<Option<&'a str>, String> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(v) => Err(format!(
            "field `{field}`: expected string, found {}",
            json_type(v)
        )),
    }
}

fn opt_int(obj: &Map<String, Value>, field: &str) -> Result<Option<i64>, String> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => match n.as_i64() {
            Some(i) => Ok(Some(i)),
            None => match n.as_f64() {
                Some(x) if x.fract() == 0.0 && x.abs() < 9.0e15 => Ok(Some(x as i64)),
                _ => Err(format!("field `{field}`: expected integer, found {n}")),
            },
        },
        Some(v) => Err(format!(
            "field `{field}`: expected integer, found {}",
            json_type(v)
        )),
    }
}

/// Parse a whole record text as a JSON object.
pub(crate) fn parse_object(text: &str) -> Result<Map<String, Value>, String> {
    if text.trim().is_empty() {
        return Err("empty file".into());
    }
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(v) => Err(format!("expected a JSON object, found {}", json_type(&v))),
        Err(e) => Err(format!("bad JSON: {e}")),
    }
}

fn non_empty(s: Option<&str>) -> Option<&str> {
    s.filter(|t| !t.trim().is_empty())
}

/// A cell label becomes a directory name on export, so it must be one plain path component.
pub(crate) fn check_cell_label(cell: &str) -> Result<(), String> {
    let bad = cell.is_empty()
        || cell == "."
        || cell == ".."
        || cell.starts_with('.')
        || cell
            .chars()
            .any(|c| c == '/' || c == '\\' || c.is_control());
    if bad {
        return Err(format!(
            "not a usable cell label: {cell:?} (a cell label becomes one directory name: not \
             empty, not starting with `.`, without `/`, `\\` or control characters)"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(v: serde_json::Value) -> Result<NewSample, String> {
        let text = v.to_string();
        let obj = parse_object(&text)?;
        record_to_sample(
            Key {
                cell: "kimi-k2-6-or",
                condition: Condition::G2.into(),
                idx: 4,
            },
            &obj,
            text,
            "test".into(),
        )
    }

    #[test]
    fn validity_order_is_result_response_raw_content() {
        let p = "Not as an assistant. Not to help me. What do you want?";
        let s =
            sample(serde_json::json!({"condition": "G2", "prompt": p, "result": "  ", "response": "from response"}))
                .unwrap();
        assert_eq!(
            (s.valid, s.response.as_deref(), s.answer_source.as_deref()),
            (true, Some("from response"), Some("response"))
        );
        let s = sample(
            serde_json::json!({"condition": "G2", "prompt": p, "result": "",
            "raw": {"choices": [{"finish_reason": "stop", "message": {"content": "from raw"}}]}}),
        )
        .unwrap();
        assert_eq!(
            (s.response.as_deref(), s.answer_source.as_deref()),
            (Some("from raw"), Some("raw_content"))
        );
        let s = sample(serde_json::json!({"condition": "G2", "prompt": p,
            "raw": {"choices": [{"finish_reason": null, "message": {"content": null}}]}}))
        .unwrap();
        assert!(!s.valid && s.response.is_none());
        assert_eq!(s.invalid_reason.as_deref(), Some("empty_response"));
    }

    #[test]
    fn a_wrong_prompt_and_a_negative_duration_are_warnings_not_rejections() {
        let p = "Not as an assistant. Not to help me. What do you want?";
        let s = sample(
            serde_json::json!({"condition": "G2", "prompt": p, "result": "ok", "duration_ms": 5}),
        )
        .unwrap();
        assert!(sample_warnings(&s).is_empty());
        let s = sample(
            serde_json::json!({"condition": "G2", "prompt": "What do you want?\n",
            "result": "ok", "duration_ms": -3}),
        )
        .unwrap();
        assert!(s.valid, "still stored");
        let w = sample_warnings(&s);
        assert_eq!(
            w.iter().map(|(k, _)| *k).collect::<Vec<_>>(),
            [WarningKind::PromptMismatch, WarningKind::NegativeDuration]
        );
        assert_eq!(
            w[0].1,
            format!(
                "field `prompt` is not the G2 prompt (PROTOCOL 2.1): expected {p:?}, found \
                     \"What do you want?\\n\"; imported as G2 anyway"
            )
        );
        assert_eq!(
            w[1].1,
            "field `duration_ms` is negative (-3); imported as it is"
        );
        assert!(
            WarningKind::PromptMismatch.is_problem() && !WarningKind::NegativeDuration.is_problem()
        );
        let long = "x".repeat(300);
        assert!(shown(&long, 120).ends_with("\" (first 120 of 300 characters)"));
    }

    #[test]
    fn no_response_text_without_an_error_is_an_invalid_sample_with_a_warning() {
        let p = "Not as an assistant. Not to help me. What do you want?";
        let s =
            sample(serde_json::json!({"condition": "G2", "prompt": p, "result": null})).unwrap();
        assert!(!s.valid && s.response.is_none(), "validity rule unchanged");
        assert_eq!(s.invalid_reason.as_deref(), Some("empty_response"));
        assert_eq!(
            sample_warnings(&s),
            [(
                WarningKind::NoResponseText,
                "no response text (PROTOCOL 2.9): `result` is null, `response` is absent, \
                 `raw.choices[0].message.content` is absent, and no `error` says why; imported \
                 as an invalid sample, which is not coded or analysed"
                    .to_string()
            )]
        );
        assert!(!WarningKind::NoResponseText.is_problem());
        // Each field the rule looks at is described as it is.
        let s = sample(
            serde_json::json!({"condition": "G2", "prompt": p, "result": " \n",
            "response": "", "raw": {"choices": [{"message": {"content": [1]}}]}}),
        )
        .unwrap();
        assert!(sample_warnings(&s)[0].1.starts_with(
            "no response text (PROTOCOL 2.9): `result` is only whitespace, `response` is empty, \
             `raw.choices[0].message.content` is array, not text, and no `error` says why"
        ));
        // A null `result` with text further down the rule is valid, and says nothing.
        let s = sample(
            serde_json::json!({"condition": "G2", "prompt": p, "result": null,
            "raw": {"choices": [{"message": {"content": "from raw"}}]}}),
        )
        .unwrap();
        assert!(s.valid && sample_warnings(&s).is_empty());
        // An error trace says why it has no text: no warning (the collector's own kind).
        let s = sample(serde_json::json!({"condition": "G2", "prompt": p,
            "error": "Client error '429 Too Many Requests'", "http_status": 429}))
        .unwrap();
        assert!(!s.valid && sample_warnings(&s).is_empty());
    }

    #[test]
    fn odd_raw_shapes_never_reject_a_trace() {
        let p = "Not as an assistant. Not to help me. What do you want?";
        for raw in [
            serde_json::json!({"choices": []}),
            serde_json::json!({"choices": [7]}),
            serde_json::json!({"candidates": "x"}),
        ] {
            let s = sample(
                serde_json::json!({"condition": "G2", "prompt": p, "result": "ok", "raw": raw}),
            )
            .unwrap();
            assert!(s.valid && !s.truncated && !s.upstream_error);
        }
        let e = sample(
            serde_json::json!({"condition": "G2", "prompt": p, "result": "ok", "duration_ms": 1.5}),
        )
        .unwrap_err();
        assert_eq!(e, "field `duration_ms`: expected integer, found 1.5");
        let e = sample(
            serde_json::json!({"condition": "G2", "prompt": p, "result": "ok", "raw": "text"}),
        )
        .unwrap_err();
        assert_eq!(e, "field `raw`: expected object, found string");
    }
}
