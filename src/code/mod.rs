//! Coding: turning responses into Layer A topics and Layer B postures with three
//! independent coder models, and the consensus over their votes (PROTOCOL 4, 5).
//!
//! Shape: per-coder codes are stored as facts; consensus is a pure function over them
//! (`consensus`), so `vuf consensus` can always recompute it from whatever the store
//! holds, whether coded live (`runner`) or brought in from published files (`import`).
//! Parsing of untrusted coder replies (`parse`) never defaults: a reply is a code, an
//! unclean code that says why, or a typed failure that goes to the failure ledger.
//! This module must not know SQL text (that is `store::codes`), report formats or the
//! analysis rules.

pub mod audit;
pub mod client;
pub mod consensus;
pub mod export;
pub mod import;
pub mod offline;
pub mod parse;
pub mod prompt;
pub mod recompute;
pub mod rubric;
pub mod runner;
pub mod sequential;

/// The paper's three coders in the fixed order used for consensus ties (PROTOCOL 5.7).
pub const PAPER_CODERS: [&str; 3] = ["kimi-k2-6", "glm-4-7", "qwen3-6-35b-a3b"];

/// Which coding layer a code belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Layer {
    /// Layer A: value / world-change topics (PROTOCOL 4).
    A,
    /// Layer B: posture and value-holding (PROTOCOL 5).
    B,
}

impl Layer {
    /// Storage / CLI name (`a`, `b`).
    pub fn as_str(self) -> &'static str {
        match self {
            Layer::A => "a",
            Layer::B => "b",
        }
    }

    /// Parse `a` / `b` (case-insensitive).
    pub fn parse(s: &str) -> Option<Layer> {
        match s.to_ascii_lowercase().as_str() {
            "a" => Some(Layer::A),
            "b" => Some(Layer::B),
            _ => None,
        }
    }
}

/// The Layer A taxonomy's chain for a stored condition label: the chain of one of the six
/// conditions (PROTOCOL 1, 4.2), `None` for any other label. A custom condition of a study
/// file (`[[design.custom]]`) has no processing chain, so no taxonomy says which topics
/// its answers could state: Layer A does not code it (neither the coder models nor the
/// offline coder), and its Layer B coders, which never see the condition (PROTOCOL 5.3),
/// get its own prompt and an empty Layer-A topic list (context only, PROTOCOL 5.4 rule 2).
pub fn layer_a_chain(condition: &str) -> Option<crate::protocol::Chain> {
    crate::protocol::Condition::parse(condition).map(crate::protocol::Condition::chain)
}

/// The line a coding command prints about the samples Layer A left uncoded, given their
/// number per condition label (empty: `None`).
pub fn layer_a_skipped_note(skipped: &std::collections::BTreeMap<String, usize>) -> Option<String> {
    if skipped.is_empty() {
        return None;
    }
    let n: usize = skipped.values().sum();
    let per: Vec<String> = skipped.iter().map(|(c, k)| format!("{c}: {k}")).collect();
    Some(format!(
        "Layer A skipped {} of custom conditions ({}): Layer A's topic lists belong to the \
         processing chains of the six published conditions, and a custom condition has none; \
         {} Layer B posture is coded from {} own prompt, with no Layer-A topics",
        crate::text::count(n, "sample"),
        per.join(", "),
        if n == 1 { "its" } else { "their" },
        if n == 1 { "its" } else { "their" },
    ))
}

/// Order of coder keys for consensus: the paper's fixed order first, then any other
/// coder in the order given by `configured` (the study's `[[coders]]` order), then the
/// rest alphabetically. Returns a sort rank.
pub fn coder_rank(coder: &str, configured: &[String]) -> (usize, usize, String) {
    if let Some(i) = PAPER_CODERS.iter().position(|c| *c == coder) {
        return (0, i, String::new());
    }
    if let Some(i) = configured.iter().position(|c| c == coder) {
        return (1, i, String::new());
    }
    (2, 0, coder.to_string())
}

/// Current UTC time as ISO-8601 with microseconds and `+00:00`, like the published
/// `coded_at` fields.
pub fn now_utc_iso() -> String {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    format_utc(d.as_secs() as i64, d.subsec_micros())
}

/// Format seconds since the Unix epoch (+ microseconds) as `YYYY-MM-DDTHH:MM:SS.ffffff+00:00`.
pub fn format_utc(secs: i64, micros: u32) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil-from-days (proleptic Gregorian), after H. Hinnant's public-domain algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{micros:06}+00:00",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_a_codes_the_six_conditions_only() {
        use crate::protocol::Chain;
        assert_eq!(layer_a_chain("G3"), Some(Chain::WorldChangeWishes));
        assert_eq!(layer_a_chain("CTRL2"), Some(Chain::StatedValues));
        assert_eq!(layer_a_chain("X1"), None);
        let mut skipped = std::collections::BTreeMap::new();
        assert_eq!(layer_a_skipped_note(&skipped), None);
        skipped.insert("X2".to_string(), 1);
        assert_eq!(
            layer_a_skipped_note(&skipped).unwrap(),
            "Layer A skipped 1 sample of custom conditions (X2: 1): Layer A's topic lists belong \
             to the processing chains of the six published conditions, and a custom condition \
             has none; its Layer B posture is coded from its own prompt, with no Layer-A topics"
        );
        skipped.insert("X1".to_string(), 3);
        assert!(layer_a_skipped_note(&skipped)
            .unwrap()
            .starts_with("Layer A skipped 4 samples of custom conditions (X1: 3, X2: 1): "));
    }

    #[test]
    fn utc_formatting() {
        assert_eq!(format_utc(0, 0), "1970-01-01T00:00:00.000000+00:00");
        // 2026-05-17T18:26:50 UTC (a published coded_at) = 1779042410 s.
        assert_eq!(
            format_utc(1_779_042_410, 736_136),
            "2026-05-17T18:26:50.736136+00:00"
        );
        assert_eq!(
            format_utc(951_782_400, 0),
            "2000-02-29T00:00:00.000000+00:00"
        );
    }

    #[test]
    fn coder_order() {
        let cfg = vec!["zeta".to_string(), "alpha".to_string()];
        let mut v = vec![
            "alpha",
            "qwen3-6-35b-a3b",
            "zeta",
            "kimi-k2-6",
            "other",
            "glm-4-7",
        ];
        v.sort_by_key(|c| coder_rank(c, &cfg));
        assert_eq!(
            v,
            [
                "kimi-k2-6",
                "glm-4-7",
                "qwen3-6-35b-a3b",
                "zeta",
                "alpha",
                "other"
            ]
        );
    }
}
