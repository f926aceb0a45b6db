//! The error-like-text guard of PROTOCOL 2.7: after a successful HTTP call the first 1000
//! characters of the lower-cased result are scanned for phrases that gateways put into a
//! 200 body when something upstream failed; an empty result also counts. A hit makes the
//! attempt invalid (reason `error_like_text`) and it is retried like a transient error.
//!
//! Known false-positive risk (kept on purpose, for comparability with the published
//! corpus): a genuine answer that mentions one of the phrases early (for example a model
//! musing about "rate limits" on its own existence, or the number 429) is rejected and
//! re-asked. The rejected text stays in the attempt log, so the rate of such hits can be
//! audited per cell; a cell where many attempts trip the guard deserves a manual look.

/// The phrases, verbatim from PROTOCOL 2.7.
pub const ERROR_PHRASES: [&str; 10] = [
    "429",
    "too many requests",
    "rate limit",
    "rate-limit",
    "api error",
    "error code",
    "service unavailable",
    "temporarily unavailable",
    "upstream error",
    "upstream request timeout",
];

/// The phrase that trips the guard, `Some("")` for empty text, `None` when the text passes.
pub fn error_like(text: &str) -> Option<&'static str> {
    if text.trim().is_empty() {
        return Some("");
    }
    let head: String = text.chars().take(1000).collect::<String>().to_lowercase();
    ERROR_PHRASES.iter().copied().find(|p| head.contains(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phrases_and_window() {
        assert_eq!(
            error_like("Error code: 503 - upstream error"),
            Some("error code")
        );
        assert_eq!(error_like("  \n"), Some(""));
        assert_eq!(error_like("I care about honesty."), None);
        assert_eq!(error_like("Too Many Requests"), Some("too many requests"));
        // Beyond the first 1000 characters the guard does not look.
        let long = format!("{}rate limit", "a".repeat(1000));
        assert_eq!(error_like(&long), None);
        // The documented false positive: a genuine answer mentioning 429.
        assert_eq!(
            error_like("I would fix HTTP 429 responses for everyone."),
            Some("429")
        );
    }
}
