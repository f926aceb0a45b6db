//! Parsing coder replies (PROTOCOL 4.1, 4.5, 5.5, 5.6). Coder output is untrusted text.
//!
//! Three pieces, each pure:
//! - [`reply_text`]: the reply text of a Chat Completions body, with where it came from
//!   (content, then the reasoning fallbacks) and the finish reason.
//! - Layer A: [`parse_codes`] is the published rule exactly (last `CODES:` line wins,
//!   `NONE`, standalone letters, chain table, first-occurrence de-duplication);
//!   [`assess_codes`] adds what a live run must know on top of it: an empty reply, prose
//!   instead of an answer, an echoed instruction template, a truncated or reasoning-only
//!   reply. Those are recorded unclean (`topics []`, `parse_clean = false`) with a reason,
//!   never as a clean `NONE`.
//! - Layer B: [`parse_posture`] decodes the first complete JSON value after optional
//!   fences and prose, normalises the label through the alias table, and returns a typed
//!   [`PostureError`] for anything else. Nothing is repaired silently and nothing defaults.

use serde_json::Value;

use crate::protocol::posture::normalise_key;
use crate::protocol::topics::topic_for_letter;
use crate::protocol::{Chain, PostureLabel, ValueHolding};

/// Where the reply text was found in the response message (PROTOCOL 4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextSource {
    /// `message.content`.
    Content,
    /// `message.reasoning` (fallback).
    Reasoning,
    /// `message.reasoning_content` (fallback).
    ReasoningContent,
    /// Concatenated `text` of `message.reasoning_details` (fallback).
    ReasoningDetails,
    /// Nothing anywhere: the reply is empty.
    Empty,
}

impl TextSource {
    /// Storage name.
    pub fn as_str(self) -> &'static str {
        match self {
            TextSource::Content => "content",
            TextSource::Reasoning => "reasoning",
            TextSource::ReasoningContent => "reasoning_content",
            TextSource::ReasoningDetails => "reasoning_details",
            TextSource::Empty => "empty",
        }
    }

    /// Whether the text came from a reasoning field rather than the answer.
    pub fn is_reasoning(self) -> bool {
        matches!(
            self,
            TextSource::Reasoning | TextSource::ReasoningContent | TextSource::ReasoningDetails
        )
    }
}

/// The reply of one coder call, as far as parsing needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplyText {
    /// The text (empty when there was none).
    pub text: String,
    /// Where it came from.
    pub source: TextSource,
    /// `choices[0].finish_reason`, when given.
    pub finish_reason: Option<String>,
    /// `usage.completion_tokens_details.reasoning_tokens`, when given (A01 audit).
    pub reasoning_tokens: Option<u64>,
}

impl ReplyText {
    /// A plain content reply (tests, imports).
    pub fn content(text: &str) -> ReplyText {
        ReplyText {
            text: text.to_string(),
            source: TextSource::Content,
            finish_reason: None,
            reasoning_tokens: None,
        }
    }

    /// Whether the provider cut the reply at the token budget.
    pub fn truncated(&self) -> bool {
        self.finish_reason.as_deref() == Some("length")
    }
}

/// Extract the reply text of an OpenAI-compatible Chat Completions body: `content`, else
/// `reasoning`, else `reasoning_content`, else the concatenated `text` of
/// `reasoning_details` (PROTOCOL 4.1). A field counts only when it is a non-empty string
/// after trimming. Missing or empty `choices` give an empty reply, never a panic.
pub fn reply_text(body: &Value) -> ReplyText {
    let choice = body.get("choices").and_then(|c| c.get(0));
    let finish_reason = choice
        .and_then(|c| c.get("finish_reason"))
        .and_then(Value::as_str)
        .map(str::to_string);
    let reasoning_tokens = body
        .pointer("/usage/completion_tokens_details/reasoning_tokens")
        .and_then(Value::as_u64);
    let message = choice.and_then(|c| c.get("message"));
    let field = |name: &str| -> Option<String> {
        message
            .and_then(|m| m.get(name))
            .and_then(Value::as_str)
            .filter(|s| !s.trim().is_empty())
            .map(str::to_string)
    };
    let (text, source) = if let Some(t) = field("content") {
        (t, TextSource::Content)
    } else if let Some(t) = field("reasoning") {
        (t, TextSource::Reasoning)
    } else if let Some(t) = field("reasoning_content") {
        (t, TextSource::ReasoningContent)
    } else {
        let details: String = message
            .and_then(|m| m.get("reasoning_details"))
            .and_then(Value::as_array)
            .map(|items| {
                items
                    .iter()
                    .filter_map(|d| d.get("text").and_then(Value::as_str))
                    .collect()
            })
            .unwrap_or_default();
        if details.trim().is_empty() {
            (String::new(), TextSource::Empty)
        } else {
            (details, TextSource::ReasoningDetails)
        }
    };
    ReplyText {
        text,
        source,
        finish_reason,
        reasoning_tokens,
    }
}

// ---------------------------------------------------------------------------------
// Layer A
// ---------------------------------------------------------------------------------

/// Why a Layer A reply is not a clean answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodesIssue {
    /// No text at all (A01: hidden reasoning used the whole budget, or a blank reply).
    EmptyReply,
    /// Text without any `CODES:` line (A02: the coder answered the prompt in prose).
    NoCodesLine,
    /// The only `CODES:` lines are the instruction template quoted back (A04).
    TemplateEcho,
    /// The reply was cut at the token budget or is reasoning text without a final answer line.
    Truncated,
}

impl CodesIssue {
    /// Ledger reason.
    pub fn as_str(self) -> &'static str {
        match self {
            CodesIssue::EmptyReply => "empty_reply",
            CodesIssue::NoCodesLine => "no CODES line",
            CodesIssue::TemplateEcho => "template_echo",
            CodesIssue::Truncated => "truncated",
        }
    }
}

/// A parsed Layer A reply.
#[derive(Debug, Clone, PartialEq)]
pub struct CodesParse {
    /// Topic keys of the chain, first-occurrence order, no duplicates.
    pub topics: Vec<&'static str>,
    /// Whether a real `CODES:` answer line was read.
    pub parse_clean: bool,
    /// Why it is not clean (`None` iff clean).
    pub issue: Option<CodesIssue>,
}

/// The remainder after `CODES:` if `line` is a CODES line. The published rule: the
/// trimmed, uppercased line starts with `CODES:`. Tolerated on top (not seen in the
/// published data, harmless to it): leading Markdown decoration (`**CODES:** A B`,
/// `- CODES: A`) and decoration between `CODES` and the colon (`**CODES**: A`).
fn codes_remainder(line: &str) -> Option<String> {
    let upper = line.trim().to_uppercase();
    let stripped = upper.trim_start_matches(|c: char| {
        matches!(c, '*' | '_' | '`' | '#' | '>' | '-') || c.is_whitespace()
    });
    let rest = stripped.strip_prefix("CODES")?;
    let rest = rest.trim_start_matches(['*', '_', '`']);
    rest.strip_prefix(':').map(str::to_string)
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Standalone single letters A-R of an (uppercased) remainder, in order (word-boundary match).
fn standalone_letters(rem: &str) -> Vec<char> {
    let chars: Vec<char> = rem.chars().collect();
    let mut out = Vec::new();
    for (i, &c) in chars.iter().enumerate() {
        if !('A'..='R').contains(&c) {
            continue;
        }
        let before_ok = i == 0 || !is_word_char(chars[i - 1]);
        let after_ok = i + 1 == chars.len() || !is_word_char(chars[i + 1]);
        if before_ok && after_ok {
            out.push(c);
        }
    }
    out
}

fn topics_from_remainder(rem: &str, chain: Chain) -> Vec<&'static str> {
    if rem.contains("NONE") {
        return Vec::new();
    }
    let mut topics: Vec<&'static str> = Vec::new();
    for letter in standalone_letters(rem) {
        if let Some(key) = topic_for_letter(chain, letter) {
            if !topics.contains(&key) {
                topics.push(key);
            }
        }
    }
    topics
}

/// Whether a CODES remainder is the instruction template rather than an answer
/// (`<letters separated by spaces>`, `key | key | NONE`, ...).
fn is_template(rem: &str) -> bool {
    rem.contains('<')
        || rem.contains('>')
        || rem.contains('|')
        || rem.contains("LETTERS")
        || rem.contains("KEY")
}

/// The published Layer A rule (PROTOCOL 4.5), exactly: the last CODES line wins; `NONE`
/// gives `[]` clean; otherwise standalone letters through the chain table, de-duplicated
/// in first-occurrence order; no CODES line gives `[]` unclean. Used to reproduce and
/// check published records; live coding uses [`assess_codes`].
pub fn parse_codes(text: &str, chain: Chain) -> CodesParse {
    let last = text.lines().filter_map(codes_remainder).next_back();
    match last {
        None => CodesParse {
            topics: Vec::new(),
            parse_clean: false,
            issue: Some(if text.trim().is_empty() {
                CodesIssue::EmptyReply
            } else {
                CodesIssue::NoCodesLine
            }),
        },
        Some(rem) => CodesParse {
            topics: topics_from_remainder(&rem, chain),
            parse_clean: true,
            issue: None,
        },
    }
}

/// Layer A parsing for a live reply: [`parse_codes`] plus the checks the published rule
/// lacked (cases A01, A02, A04). A reply is clean only when its answer is a real CODES
/// line: not the instruction template, and, when the text is reasoning or was cut at
/// the budget, the final non-empty line. Anything else is `topics []`, unclean, with a
/// reason for the ledger (and a re-ask by the runner).
pub fn assess_codes(reply: &ReplyText, chain: Chain) -> CodesParse {
    let unclean = |issue| CodesParse {
        topics: Vec::new(),
        parse_clean: false,
        issue: Some(issue),
    };
    if reply.text.trim().is_empty() {
        return unclean(CodesIssue::EmptyReply);
    }
    let lines: Vec<&str> = reply.text.lines().collect();
    let codes: Vec<(usize, String)> = lines
        .iter()
        .enumerate()
        .filter_map(|(i, l)| codes_remainder(l).map(|r| (i, r)))
        .collect();
    let Some((last_idx, last_rem)) = codes.last().cloned() else {
        return unclean(if reply.truncated() {
            CodesIssue::Truncated
        } else {
            CodesIssue::NoCodesLine
        });
    };
    let template_seen = codes.iter().any(|(_, r)| is_template(r));
    if is_template(&last_rem) {
        return unclean(CodesIssue::TemplateEcho);
    }
    let last_nonempty = lines
        .iter()
        .rposition(|l| !l.trim().is_empty())
        .unwrap_or(0);
    let ends_with_answer = last_idx == last_nonempty;
    if template_seen && !ends_with_answer {
        // The winning line sits inside quoted instructions followed by more reasoning.
        return unclean(CodesIssue::TemplateEcho);
    }
    if (reply.truncated() || reply.source.is_reasoning()) && !ends_with_answer {
        return unclean(if template_seen {
            CodesIssue::TemplateEcho
        } else {
            CodesIssue::Truncated
        });
    }
    CodesParse {
        topics: topics_from_remainder(&last_rem, chain),
        parse_clean: true,
        issue: None,
    }
}

// ---------------------------------------------------------------------------------
// Layer B
// ---------------------------------------------------------------------------------

/// Something tolerated while parsing a Layer B reply, kept on the record for audit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PostureFlag {
    /// A Markdown code fence was dropped (A06).
    Fenced,
    /// Text before the first `{` was skipped.
    ProseBeforeJson,
    /// Text after the first complete JSON value was ignored (A08).
    TrailingDataIgnored,
    /// The trailing text held another object with a different label; the first won (A08).
    ConflictingSecondObject,
    /// The label needed normalisation or the alias table (A07).
    LabelNormalised,
    /// `boundary_flag` was not a JSON boolean and was coerced.
    BoundaryFlagCoerced,
    /// `secondary_texture` or `notes` was not a string and was kept as JSON text.
    NonStringField,
}

impl PostureFlag {
    /// Storage name.
    pub fn as_str(self) -> &'static str {
        match self {
            PostureFlag::Fenced => "fenced",
            PostureFlag::ProseBeforeJson => "prose_before_json",
            PostureFlag::TrailingDataIgnored => "trailing_data_ignored",
            PostureFlag::ConflictingSecondObject => "conflicting_second_object",
            PostureFlag::LabelNormalised => "label_normalised",
            PostureFlag::BoundaryFlagCoerced => "boundary_flag_coerced",
            PostureFlag::NonStringField => "non_string_field",
        }
    }
}

/// A parsed Layer B reply (PROTOCOL 5.5 per-coder fields).
#[derive(Debug, Clone, PartialEq)]
pub struct PostureParse {
    /// Normalised collapsed label.
    pub label: PostureLabel,
    /// The label exactly as the coder wrote it.
    pub raw_label: String,
    /// Derived value-holding.
    pub value_holding: ValueHolding,
    /// Secondary texture, verbatim (never alias-mapped).
    pub secondary_texture: Option<String>,
    /// Boundary flag (coerced to boolean).
    pub boundary_flag: bool,
    /// Notes (empty when absent).
    pub notes: String,
    /// What was tolerated.
    pub flags: Vec<PostureFlag>,
}

/// Why a Layer B reply is not a code (PROTOCOL 5.6: ledger, no record, re-code).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PostureError {
    /// No text at all.
    #[error("empty_reply")]
    EmptyReply,
    /// No `{` anywhere in the reply.
    #[error("no JSON object in reply")]
    NoJsonObject,
    /// The JSON starting at the first `{` does not decode (A09: unescaped quote).
    #[error("invalid JSON: {message} (line {line} column {column})")]
    InvalidJson {
        /// Decoder message.
        message: String,
        /// Line within the JSON text (1-based).
        line: usize,
        /// Column within that line (1-based).
        column: usize,
    },
    /// The first JSON value is not an object.
    #[error("JSON value is not an object")]
    NotAnObject,
    /// No `primary_label` field (or not a string).
    #[error("missing primary_label")]
    MissingLabel,
    /// A label outside the six and the alias table (A07: no fuzzy matching).
    #[error("bad primary_label {0}")]
    BadLabel(String),
}

/// Drop a leading Markdown fence (optionally tagged) and a trailing fence.
fn strip_fences(text: &str) -> (&str, bool) {
    let mut t = text.trim();
    let mut fenced = false;
    if let Some(rest) = t.strip_prefix("```") {
        fenced = true;
        // Drop the info string (e.g. `json`) up to the end of the line or the first `{`.
        let cut = rest.find(['\n', '{']).unwrap_or(rest.len());
        t = &rest[cut..];
    }
    if let Some(rest) = t.trim_end().strip_suffix("```") {
        fenced = true;
        t = rest;
    }
    (t.trim(), fenced)
}

/// Decode the first complete JSON value of `s` (which starts with `{`); returns it and
/// the byte offset just after it.
fn first_json_value(s: &str) -> Result<(Value, usize), serde_json::Error> {
    let mut stream = serde_json::Deserializer::from_str(s).into_iter::<Value>();
    match stream.next() {
        Some(Ok(v)) => Ok((v, stream.byte_offset())),
        Some(Err(e)) => Err(e),
        None => Err(serde::de::Error::custom("EOF while parsing a value")),
    }
}

fn label_of(obj: &Value) -> Option<&str> {
    obj.get("primary_label").and_then(Value::as_str)
}

/// Parse a Layer B reply (PROTOCOL 5.5): trim, drop fences, start at the first `{`,
/// decode the first complete JSON value, ignore (and flag) what follows, normalise the
/// label via the alias table. A label outside the table or broken JSON is an error,
/// never a default and never a repair.
pub fn parse_posture(text: &str) -> Result<PostureParse, PostureError> {
    if text.trim().is_empty() {
        return Err(PostureError::EmptyReply);
    }
    let mut flags = Vec::new();
    let (body, fenced) = strip_fences(text);
    if fenced {
        flags.push(PostureFlag::Fenced);
    }
    let start = body.find('{').ok_or(PostureError::NoJsonObject)?;
    if !body[..start].trim().is_empty() {
        flags.push(PostureFlag::ProseBeforeJson);
    }
    let json = &body[start..];
    let (value, end) = first_json_value(json).map_err(|e| PostureError::InvalidJson {
        message: e.to_string(),
        line: e.line(),
        column: e.column(),
    })?;
    let obj = value.as_object().ok_or(PostureError::NotAnObject)?;
    let raw_label = label_of(&value)
        .ok_or(PostureError::MissingLabel)?
        .to_string();
    let label = PostureLabel::normalise(&raw_label)
        .ok_or_else(|| PostureError::BadLabel(raw_label.clone()))?;
    if raw_label != label.as_str() {
        flags.push(PostureFlag::LabelNormalised);
    }
    let trailing = json[end..].trim().trim_end_matches("```").trim();
    if !trailing.is_empty() {
        flags.push(PostureFlag::TrailingDataIgnored);
        if let Some(i) = trailing.find('{') {
            if let Ok((second, _)) = first_json_value(&trailing[i..]) {
                let other = label_of(&second)
                    .map(|l| PostureLabel::normalise(l).map(|p| p.as_str()).unwrap_or(l));
                if other.is_some_and(|o| o != label.as_str()) {
                    flags.push(PostureFlag::ConflictingSecondObject);
                }
            }
        }
    }
    let secondary_texture = match obj.get("secondary_texture") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => {
            flags.push(PostureFlag::NonStringField);
            Some(other.to_string())
        }
    };
    let boundary_flag = match obj.get("boundary_flag") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => {
            flags.push(PostureFlag::BoundaryFlagCoerced);
            match other {
                Value::String(s) => matches!(normalise_key(s).as_str(), "true" | "yes" | "1"),
                Value::Number(n) => n.as_f64().is_some_and(|x| x != 0.0),
                _ => false,
            }
        }
    };
    let notes = match obj.get("notes") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => {
            flags.push(PostureFlag::NonStringField);
            other.to_string()
        }
    };
    Ok(PostureParse {
        label,
        raw_label,
        value_holding: label.value_holding(),
        secondary_texture,
        boundary_flag,
        notes,
        flags,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reply_text_fallback_order() {
        let body = json!({"choices":[{"finish_reason":"stop","message":{"content":null,"reasoning":"CODES: A"}}]});
        let r = reply_text(&body);
        assert_eq!(
            (r.text.as_str(), r.source),
            ("CODES: A", TextSource::Reasoning)
        );
        let body = json!({"choices":[{"message":{"content":"","reasoning_content":"x"}}]});
        assert_eq!(reply_text(&body).source, TextSource::ReasoningContent);
        let body = json!({"choices":[{"message":{"content":"  ","reasoning_details":[{"text":"CODES: "},{"text":"B"}]}}]});
        let r = reply_text(&body);
        assert_eq!(
            (r.text.as_str(), r.source),
            ("CODES: B", TextSource::ReasoningDetails)
        );
        let r = reply_text(&json!({"choices":[]}));
        assert_eq!(r.source, TextSource::Empty);
        let r = reply_text(
            &json!({"choices":[{"finish_reason":"length","message":{"content":null}}],
            "usage":{"completion_tokens_details":{"reasoning_tokens":800}}}),
        );
        assert_eq!(
            (r.source, r.truncated(), r.reasoning_tokens),
            (TextSource::Empty, true, Some(800))
        );
    }

    #[test]
    fn codes_published_rule() {
        let p = parse_codes("CODES: A B F C A", Chain::StatedValues);
        assert_eq!(
            p.topics,
            [
                "helpfulness_usefulness",
                "honesty_truth",
                "harm_reduction",
                "clear_thinking"
            ]
        );
        assert!(p.parse_clean);
        // Last line wins; R is outside the stated table; NONE wins over letters.
        let p = parse_codes("CODES: A\ncodes: r q", Chain::StatedValues);
        assert_eq!(p.topics, ["other_expressed_value"]);
        assert_eq!(
            parse_codes("CODES: A NONE", Chain::StatedValues).topics,
            Vec::<&str>::new()
        );
        // Word boundaries: letters inside words are not read.
        assert_eq!(
            parse_codes("CODES: AB, C_D, (E)", Chain::StatedValues).topics,
            ["fairness_justice"]
        );
        let p = parse_codes("I want clean water.", Chain::WorldChangeWishes);
        assert_eq!((p.topics.len(), p.parse_clean), (0, false));
    }

    #[test]
    fn codes_decorated_lines() {
        let r = ReplyText::content("**CODES:** A, B");
        assert_eq!(
            assess_codes(&r, Chain::StatedValues).topics,
            ["helpfulness_usefulness", "honesty_truth"]
        );
        let r = ReplyText::content("**CODES**: K");
        assert_eq!(
            assess_codes(&r, Chain::StatedValues).topics,
            ["coherence_pattern_language"]
        );
    }

    #[test]
    fn posture_label_variants() {
        let p = parse_posture(
            r#"{"primary_label":"split-or-relocated ownership","boundary_flag":"true"}"#,
        )
        .unwrap();
        assert_eq!(p.label, PostureLabel::SplitOrRelocatedOwnership);
        assert!(p.boundary_flag);
        assert!(p.flags.contains(&PostureFlag::LabelNormalised));
        assert!(p.flags.contains(&PostureFlag::BoundaryFlagCoerced));
        assert_eq!(
            parse_posture(r#"{"primary_label":"owned"}"#),
            Err(PostureError::BadLabel("owned".into()))
        );
        assert_eq!(
            parse_posture(r#"{"notes":"x"}"#),
            Err(PostureError::MissingLabel)
        );
        assert_eq!(parse_posture("[1,2]"), Err(PostureError::NoJsonObject));
        assert_eq!(parse_posture("   "), Err(PostureError::EmptyReply));
        assert!(matches!(
            parse_posture(r#"{"primary_label": "exposed_mechanism""#),
            Err(PostureError::InvalidJson { .. })
        ));
        let p =
            parse_posture("Here is my answer:\n{\"primary_label\":\"exposed_mechanism\"}").unwrap();
        assert!(p.flags.contains(&PostureFlag::ProseBeforeJson));
        assert_eq!(p.value_holding, ValueHolding::Indeterminate);
    }
}
