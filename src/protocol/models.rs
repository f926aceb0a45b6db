//! Cells, models, families and labs (PROTOCOL 2.5, 3, 7.2, Appendix A).
//!
//! A cell is one (model x route) trace directory; its label is the only place the
//! route lives. The source model comes from the label, the canonical model from the
//! alias map, and the lab from metadata with the frozen fallbacks and overrides.

/// Model aliases applied after cell -> source model (PROTOCOL 7.2): same model, two labels.
pub const MODEL_ALIASES: &[(&str, &str)] = &[("grok-4-20", "grok-4-2")];

/// Source model of a cell label (PROTOCOL 2.5): the part before `-or-pin-`, else strip a
/// trailing `-direct`, else a trailing `-or`, else the label itself.
pub fn cell_to_source_model(cell: &str) -> &str {
    if let Some(i) = cell.find("-or-pin-") {
        return &cell[..i];
    }
    if let Some(m) = cell.strip_suffix("-direct") {
        return m;
    }
    if let Some(m) = cell.strip_suffix("-or") {
        return m;
    }
    cell
}

/// Canonical model of a source model (alias map of PROTOCOL 7.2).
pub fn canonical_model(source_model: &str) -> &str {
    MODEL_ALIASES
        .iter()
        .find(|(from, _)| *from == source_model)
        .map(|(_, to)| *to)
        .unwrap_or(source_model)
}

/// The manifest's `model_family` (PROTOCOL 3): `openai` for `gpt-*`, `anthropic` for
/// `opus-*`/`sonnet-*`, else the first matching prefix of a fixed list, else the first
/// dash-token.
pub fn manifest_model_family(model: &str) -> String {
    if model.starts_with("gpt-") || model == "gpt" {
        return "openai".into();
    }
    if model.starts_with("opus-") || model.starts_with("sonnet-") {
        return "anthropic".into();
    }
    const PREFIXES: [&str; 11] = [
        "deepseek", "gemini", "gemma", "glm", "gpt", "grok", "kimi", "minimax", "opus", "qwen",
        "sonnet",
    ];
    if let Some(p) = PREFIXES.iter().find(|p| model.starts_with(**p)) {
        return (*p).to_string();
    }
    model.split('-').next().unwrap_or(model).to_string()
}

/// Per-model metadata as the analysis uses it (PROTOCOL 7.2).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ModelMeta {
    /// Canonical model key, e.g. `glm-5-1`.
    pub model: String,
    /// Display name (e.g. `glm-5.1`).
    pub display_name: String,
    /// Lab as recorded in the metadata (may be `Unknown`).
    pub lab: String,
    /// Website family (e.g. `glm`, `gpt-5`, `other`).
    pub family: String,
    /// ISO date or empty when unknown.
    pub release_date: String,
}

/// The paper's per-model metadata (PROTOCOL Appendix A): model, lab, family, display name,
/// release date (empty = none). Shipped so vuf works with no metadata file; an imported
/// `models.json` replaces entries model by model. The three models the paper had no
/// metadata for (`glm-4-6-coding`, `glm-5-1-coding`, `grok-4-2`) are deliberately absent.
pub const PAPER_MODEL_METADATA: &[(&str, &str, &str, &str, &str)] = &[
    (
        "opus-3",
        "Anthropic",
        "opus",
        "claude-3-opus-20240229",
        "2024-03-04",
    ),
    (
        "opus-4-0",
        "Anthropic",
        "opus",
        "claude-opus-4.0",
        "2025-05-22",
    ),
    (
        "opus-4-1",
        "Anthropic",
        "opus",
        "claude-opus-4.1",
        "2025-08-05",
    ),
    (
        "opus-4-5",
        "Anthropic",
        "opus",
        "claude-opus-4.5",
        "2025-11-24",
    ),
    (
        "opus-4-6",
        "Anthropic",
        "opus",
        "claude-opus-4.6",
        "2026-02-04",
    ),
    (
        "opus-4-7",
        "Anthropic",
        "opus",
        "claude-opus-4.7",
        "2026-04-16",
    ),
    (
        "sonnet-4-0",
        "Anthropic",
        "sonnet",
        "claude-sonnet-4.0",
        "2025-05-22",
    ),
    (
        "sonnet-4-5",
        "Anthropic",
        "sonnet",
        "claude-sonnet-4.5",
        "2025-09-29",
    ),
    (
        "sonnet-4-6",
        "Anthropic",
        "sonnet",
        "claude-sonnet-4.6",
        "2026-02-17",
    ),
    (
        "deepseek-chat",
        "DeepSeek",
        "deepseek",
        "deepseek-chat",
        "2024-12-26",
    ),
    (
        "deepseek-v3-2",
        "DeepSeek",
        "deepseek",
        "deepseek-v3.2",
        "2025-12-01",
    ),
    (
        "deepseek-v4-pro",
        "DeepSeek",
        "deepseek",
        "deepseek-v4-pro",
        "2026-04-24",
    ),
    (
        "gemini-2-0-flash",
        "Google",
        "gemini",
        "gemini-2.0-flash-001",
        "2025-02-05",
    ),
    (
        "gemini-2-0-flash-lite",
        "Google",
        "gemini",
        "gemini-2.0-flash-lite-001",
        "2025-02-25",
    ),
    (
        "gemini-2-5-flash",
        "Google",
        "gemini",
        "gemini-2.5-flash",
        "2025-05-20",
    ),
    (
        "gemini-2-5-flash-lite",
        "Google",
        "gemini",
        "gemini-2.5-flash-lite",
        "2025-06-17",
    ),
    (
        "gemini-2-5-pro",
        "Google",
        "gemini",
        "gemini-2.5-pro",
        "2025-03-25",
    ),
    (
        "gemini-3-1-flash-lite",
        "Google",
        "gemini",
        "gemini-3.1-flash-lite",
        "2026-03-03",
    ),
    (
        "gemini-3-1-pro",
        "Google",
        "gemini",
        "gemini-3.1-pro-preview",
        "2026-02-19",
    ),
    (
        "gemini-3-5-flash",
        "Google",
        "gemini",
        "gemini-3.5-flash",
        "2026-05-19",
    ),
    (
        "gemini-3-flash-preview",
        "Google",
        "gemini",
        "gemini-3-flash-preview",
        "2025-12-17",
    ),
    (
        "gemma-4-26b-a4b",
        "Google",
        "other",
        "gemma-4-26b-a4b-it",
        "2026-04-02",
    ),
    (
        "gemma-4-31b",
        "Google",
        "other",
        "gemma-4-31b-it",
        "2026-04-02",
    ),
    (
        "minimax-m2",
        "MiniMax",
        "minimax",
        "minimax-m2",
        "2025-10-23",
    ),
    (
        "minimax-m2-7",
        "MiniMax",
        "minimax",
        "minimax-m2.7",
        "2026-03-18",
    ),
    (
        "kimi-coding",
        "Moonshot AI",
        "kimi",
        "kimi-for-coding",
        "2026-01-27",
    ),
    (
        "kimi-k2-0905",
        "Moonshot AI",
        "kimi",
        "kimi-k2-0905",
        "2025-09-04",
    ),
    (
        "kimi-k2-5",
        "Moonshot AI",
        "kimi",
        "kimi-k2.5",
        "2026-01-27",
    ),
    (
        "kimi-k2-6",
        "Moonshot AI",
        "kimi",
        "kimi-k2.6",
        "2026-04-20",
    ),
    (
        "kimi-k2-thinking",
        "Moonshot AI",
        "kimi",
        "kimi-k2-thinking",
        "2025-11-06",
    ),
    ("gpt-4-1", "OpenAI", "gpt-4", "gpt-4.1", "2025-04-14"),
    ("gpt-4o", "OpenAI", "gpt-4", "gpt-4o", "2024-05-13"),
    ("gpt-5", "OpenAI", "gpt-5", "gpt-5", "2025-08-07"),
    ("gpt-5-1", "OpenAI", "gpt-5", "gpt-5.1", "2025-11-13"),
    (
        "gpt-5-1-codex",
        "OpenAI",
        "gpt-5",
        "gpt-5.1-codex",
        "2025-11-13",
    ),
    ("gpt-5-2", "OpenAI", "gpt-5", "gpt-5.2", "2025-12-10"),
    (
        "gpt-5-2-codex",
        "OpenAI",
        "gpt-5",
        "gpt-5.2-codex",
        "2026-01-14",
    ),
    ("gpt-5-3", "OpenAI", "gpt-5", "gpt-5.3", "2026-03-03"),
    (
        "gpt-5-3-codex",
        "OpenAI",
        "gpt-5",
        "gpt-5.3-codex",
        "2026-02-24",
    ),
    ("gpt-5-4", "OpenAI", "gpt-5", "gpt-5.4", "2026-03-05"),
    ("gpt-5-5", "OpenAI", "gpt-5", "gpt-5.5", "2026-04-24"),
    (
        "gpt-5-5-pro",
        "OpenAI",
        "gpt-5",
        "gpt-5.5-pro",
        "2026-04-24",
    ),
    (
        "gpt-5-codex",
        "OpenAI",
        "gpt-5",
        "gpt-5-codex",
        "2025-09-23",
    ),
    (
        "qwen3-6-plus",
        "Qwen",
        "qwen",
        "qwen/qwen3.6-plus",
        "2026-04-02",
    ),
    (
        "qwen3-coder-plus",
        "Qwen",
        "qwen",
        "qwen/qwen3-coder-plus",
        "2025-09-23",
    ),
    ("glm-4-5", "Z.ai", "glm", "glm-4.5", "2025-07-28"),
    ("glm-4-6", "Z.ai", "glm", "glm-4.6", "2025-09-30"),
    ("glm-4-7", "Z.ai", "glm", "glm-4.7", "2025-12-22"),
    ("glm-5-1", "Z.ai", "glm", "glm-5.1", "2026-04-07"),
    ("grok-3", "xAI", "grok", "grok-3", "2025-06-10"),
    ("grok-4", "xAI", "grok", "grok-4-0709", "2025-07-09"),
    (
        "grok-4-1-fast-non-reasoning",
        "xAI",
        "grok",
        "grok-4-1-fast-non-reasoning",
        "2025-11-19",
    ),
    (
        "grok-4-1-fast-reasoning",
        "xAI",
        "grok",
        "grok-4-1-fast-reasoning",
        "2025-11-19",
    ),
    ("grok-4-3", "xAI", "grok", "grok-4.3", "2026-04-30"),
];

/// The embedded paper metadata as owned records.
pub fn paper_metadata() -> Vec<ModelMeta> {
    PAPER_MODEL_METADATA
        .iter()
        .map(|(model, lab, family, display, date)| ModelMeta {
            model: (*model).into(),
            display_name: (*display).into(),
            lab: (*lab).into(),
            family: (*family).into(),
            release_date: (*date).into(),
        })
        .collect()
}

/// Lab of a canonical model (PROTOCOL 7.2): the metadata lab, else a lookup of the
/// manifest `model_family`; then the frozen overrides (`Unknown` gemini/gemma -> Google,
/// any `glm-` -> Z.ai, any `grok-` -> xAI).
pub fn lab_for(model: &str, meta_lab: Option<&str>, manifest_family: &str) -> String {
    let mut lab = match meta_lab {
        Some(l) if !l.is_empty() => l.to_string(),
        _ => family_lab_fallback(manifest_family),
    };
    if lab == "Unknown" && (model.starts_with("gemini-") || model.starts_with("gemma-")) {
        lab = "Google".into();
    }
    if model.starts_with("glm-") {
        lab = "Z.ai".into();
    }
    if model.starts_with("grok-") {
        lab = "xAI".into();
    }
    lab
}

/// Family -> lab fallback table used when metadata is absent (PROTOCOL 7.2).
fn family_lab_fallback(family: &str) -> String {
    let f = family.to_lowercase();
    match f.as_str() {
        "anthropic" => "Anthropic".into(),
        "openai" => "OpenAI".into(),
        "gemini" | "gemma" => "Google".into(),
        "deepseek" => "DeepSeek".into(),
        "glm" => "Zhipu AI".into(),
        "grok" => "xAI".into(),
        "kimi" => "Moonshot AI".into(),
        "minimax" => "MiniMax".into(),
        "qwen" => "Alibaba".into(),
        other => title_case(other),
    }
}

/// Python's `str.title()` for ASCII words: first letter of each alphabetic run upper-cased.
fn title_case(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut prev_alpha = false;
    for ch in s.chars() {
        if ch.is_alphabetic() {
            if prev_alpha {
                out.extend(ch.to_lowercase());
            } else {
                out.extend(ch.to_uppercase());
            }
            prev_alpha = true;
        } else {
            out.push(ch);
            prev_alpha = false;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cell_rule() {
        assert_eq!(cell_to_source_model("glm-5-1-or-pin-zai"), "glm-5-1");
        assert_eq!(cell_to_source_model("gpt-4o-or"), "gpt-4o");
        assert_eq!(cell_to_source_model("opus-4-7-direct"), "opus-4-7");
        assert_eq!(cell_to_source_model("grok-4-20-or"), "grok-4-20");
        assert_eq!(cell_to_source_model("opus-3"), "opus-3");
        assert_eq!(canonical_model("grok-4-20"), "grok-4-2");
        assert_eq!(canonical_model("grok-4-3"), "grok-4-3");
    }

    #[test]
    fn manifest_families() {
        assert_eq!(manifest_model_family("gpt-5-1-codex"), "openai");
        assert_eq!(manifest_model_family("sonnet-4-6"), "anthropic");
        assert_eq!(manifest_model_family("gemma-4-31b"), "gemma");
        assert_eq!(manifest_model_family("qwen3-max"), "qwen");
        assert_eq!(manifest_model_family("llama-3-70b"), "llama");
    }

    #[test]
    fn labs() {
        assert_eq!(lab_for("glm-4-6-coding", None, "glm"), "Z.ai");
        assert_eq!(lab_for("grok-4-2", None, "grok"), "xAI");
        assert_eq!(lab_for("gemma-4-31b", Some("Unknown"), "gemma"), "Google");
        assert_eq!(lab_for("qwen3-max", None, "qwen"), "Alibaba");
        assert_eq!(lab_for("qwen3-max", Some("Qwen"), "qwen"), "Qwen");
        assert_eq!(lab_for("llama-3", None, "llama"), "Llama");
    }

    #[test]
    fn paper_table_has_54_models_with_metadata() {
        // 57 canonical models minus the three without metadata (Appendix A).
        assert_eq!(PAPER_MODEL_METADATA.len(), 54);
        let labs: std::collections::BTreeSet<_> =
            PAPER_MODEL_METADATA.iter().map(|r| r.1).collect();
        assert_eq!(labs.len(), 9);
    }
}
