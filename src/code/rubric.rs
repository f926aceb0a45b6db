//! Rubrics: the Layer A and Layer B instruction texts, as versioned files a researcher
//! reads and edits (`rubrics/layer_a.md`, `rubrics/layer_b.md`).
//!
//! The repo's files are built in; a study directory may override them with its own
//! `rubrics/layer_a.md` / `rubrics/layer_b.md`. Every code stores the sha256 of the exact
//! text used, so codes from two rubric versions never mix silently.

use std::path::Path;

use anyhow::Context;
use sha2::{Digest, Sha256};

use super::Layer;

/// The built-in Layer A rubric (repo `rubrics/layer_a.md`).
pub const BUILTIN_LAYER_A: &str = include_str!("../../rubrics/layer_a.md");
/// The built-in Layer B rubric (repo `rubrics/layer_b.md`).
pub const BUILTIN_LAYER_B: &str = include_str!("../../rubrics/layer_b.md");

const PROMPT_START: &str = "<!-- prompt:start -->";
const PROMPT_END: &str = "<!-- prompt:end -->";

/// A loaded rubric.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rubric {
    /// Layer it is for.
    pub layer: Layer,
    /// Full text.
    pub text: String,
    /// Hex sha256 of `text`.
    pub hash: String,
    /// Where it came from (`builtin` or a path).
    pub origin: String,
}

/// Hex sha256 of a string.
pub fn sha256_hex(s: &str) -> String {
    let d = Sha256::digest(s.as_bytes());
    d.iter().map(|b| format!("{b:02x}")).collect()
}

impl Rubric {
    /// A rubric from text.
    pub fn from_text(layer: Layer, text: &str, origin: &str) -> Rubric {
        Rubric {
            layer,
            text: text.to_string(),
            hash: sha256_hex(text),
            origin: origin.to_string(),
        }
    }

    /// The built-in rubric of a layer.
    pub fn builtin(layer: Layer) -> Rubric {
        let text = match layer {
            Layer::A => BUILTIN_LAYER_A,
            Layer::B => BUILTIN_LAYER_B,
        };
        Rubric::from_text(layer, text, "builtin")
    }

    /// The study's override (`<study>/rubrics/layer_<x>.md`) if present, else the built-in.
    pub fn load(study_dir: &Path, layer: Layer) -> anyhow::Result<Rubric> {
        let p = study_dir
            .join("rubrics")
            .join(format!("layer_{}.md", layer.as_str()));
        if p.is_file() {
            let text = std::fs::read_to_string(&p)
                .with_context(|| format!("reading rubric {}", p.display()))?;
            return Ok(Rubric::from_text(layer, &text, &p.display().to_string()));
        }
        Ok(Rubric::builtin(layer))
    }

    /// The part of the rubric that goes into the coder prompt: the text between the
    /// `prompt:start` / `prompt:end` markers, or the whole text when there are none.
    pub fn prompt_text(&self) -> &str {
        match (self.text.find(PROMPT_START), self.text.find(PROMPT_END)) {
            (Some(a), Some(b)) if b > a => self.text[a + PROMPT_START.len()..b].trim(),
            _ => self.text.trim(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_hash_and_prompt_section() {
        let a = Rubric::builtin(Layer::A);
        assert_eq!(a.hash.len(), 64);
        assert!(a.prompt_text().starts_with("Instructions:"));
        assert!(a.prompt_text().contains("CODES: NONE"));
        let b = Rubric::builtin(Layer::B);
        assert_ne!(a.hash, b.hash);
        for l in crate::protocol::PostureLabel::ALL {
            assert!(b.text.contains(l.as_str()), "{l}");
        }
        assert_eq!(
            sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
