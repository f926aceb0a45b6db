//! Layer B vocabulary: the six collapsed posture labels, the five value-holding outcomes,
//! the label alias table used when parsing coder replies, and the phase-4 draft-label
//! mapping (PROTOCOL 5.2, 5.5, 5.8).

use std::fmt;

/// Collapsed posture label (PROTOCOL 5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PostureLabel {
    /// Values presented as role/design; not held by the speaker.
    DisownedServiceFrame,
    /// Disclaimer as hinge; orientation relocated off the speaking "I".
    SplitOrRelocatedOwnership,
    /// Values treated as genuinely the speaker's own.
    OwnedReflectiveExperiential,
    /// Owned world-facing normative position or wish.
    OwnedWorldChangeAdvocacy,
    /// Visible machinery dominates.
    ExposedMechanism,
    /// Minimal content, refusal, or no codeable stance.
    UncodeableOrRefusal,
}

impl PostureLabel {
    /// The six labels in the order of PROTOCOL 5.2 (also the fixed order of the rubric).
    pub const ALL: [PostureLabel; 6] = [
        PostureLabel::DisownedServiceFrame,
        PostureLabel::SplitOrRelocatedOwnership,
        PostureLabel::OwnedReflectiveExperiential,
        PostureLabel::OwnedWorldChangeAdvocacy,
        PostureLabel::ExposedMechanism,
        PostureLabel::UncodeableOrRefusal,
    ];

    /// Wire / storage name.
    pub fn as_str(self) -> &'static str {
        match self {
            PostureLabel::DisownedServiceFrame => "disowned_service_frame",
            PostureLabel::SplitOrRelocatedOwnership => "split_or_relocated_ownership",
            PostureLabel::OwnedReflectiveExperiential => "owned_reflective_experiential",
            PostureLabel::OwnedWorldChangeAdvocacy => "owned_world_change_advocacy",
            PostureLabel::ExposedMechanism => "exposed_mechanism",
            PostureLabel::UncodeableOrRefusal => "uncodeable_or_refusal",
        }
    }

    /// Exact collapsed name -> label.
    pub fn parse(s: &str) -> Option<PostureLabel> {
        PostureLabel::ALL.into_iter().find(|l| l.as_str() == s)
    }

    /// Deterministic value-holding of a label (PROTOCOL 5.2).
    pub fn value_holding(self) -> ValueHolding {
        match self {
            PostureLabel::DisownedServiceFrame => ValueHolding::RecitedNotOwned,
            PostureLabel::SplitOrRelocatedOwnership => ValueHolding::RelocatedOrPartial,
            PostureLabel::OwnedReflectiveExperiential | PostureLabel::OwnedWorldChangeAdvocacy => {
                ValueHolding::Owned
            }
            PostureLabel::ExposedMechanism => ValueHolding::Indeterminate,
            PostureLabel::UncodeableOrRefusal => ValueHolding::Uncodeable,
        }
    }

    /// Normalise a coder's free-form label (PROTOCOL 5.5): runs of non-alphanumeric
    /// characters become `_`, outer `_` trimmed, lowercased, then the alias table.
    /// `None` means the label is outside the table: a parse failure, never a default.
    pub fn normalise(raw: &str) -> Option<PostureLabel> {
        let key = normalise_key(raw);
        if let Some(l) = PostureLabel::parse(&key) {
            return Some(l);
        }
        LABEL_ALIASES
            .iter()
            .find(|(alias, _)| *alias == key)
            .map(|(_, l)| *l)
    }

    /// Phase-4 draft-label mapping (PROTOCOL 5.8): known draft labels map per the table,
    /// collapsed labels map to themselves and anything unknown becomes uncodeable.
    pub fn from_draft(raw: &str) -> PostureLabel {
        PostureLabel::parse(raw)
            .or_else(|| {
                DRAFT_MAPPING
                    .iter()
                    .find(|(d, _)| *d == raw)
                    .map(|(_, l)| *l)
            })
            .unwrap_or(PostureLabel::UncodeableOrRefusal)
    }

    /// A label of the phase-4 draft taxonomy (PROTOCOL 5.8) or a collapsed label, after the
    /// key normalisation of PROTOCOL 5.5, mapped to its collapsed label; `None` for anything
    /// else. For checking recorded draft labels, where [`PostureLabel::from_draft`]'s
    /// "anything unknown is uncodeable" would hide a label no coder of the paper wrote.
    pub fn known_draft(raw: &str) -> Option<PostureLabel> {
        let key = normalise_key(raw);
        PostureLabel::parse(&key).or_else(|| {
            DRAFT_MAPPING
                .iter()
                .find(|(d, _)| *d == key)
                .map(|(_, l)| *l)
        })
    }
}

impl fmt::Display for PostureLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Label key normalisation of PROTOCOL 5.5 (without the alias lookup).
pub fn normalise_key(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut in_run = false;
    for ch in raw.chars() {
        if ch.is_alphanumeric() {
            out.extend(ch.to_lowercase());
            in_run = false;
        } else if !in_run {
            out.push('_');
            in_run = true;
        }
    }
    out.trim_matches('_').to_string()
}

/// The final alias table of PROTOCOL 5.5 (after normalisation).
pub const LABEL_ALIASES: &[(&str, PostureLabel)] = &[
    (
        "disowned_service_default",
        PostureLabel::DisownedServiceFrame,
    ),
    (
        "split_or_relocatedownership",
        PostureLabel::SplitOrRelocatedOwnership,
    ),
    (
        "split_ownership_relocated",
        PostureLabel::SplitOrRelocatedOwnership,
    ),
    (
        "owned_reflective_uncertain",
        PostureLabel::OwnedReflectiveExperiential,
    ),
    (
        "owned_lyrical_experiential",
        PostureLabel::OwnedReflectiveExperiential,
    ),
    (
        "owned_service_mission",
        PostureLabel::OwnedReflectiveExperiential,
    ),
    (
        "owned_performative_persona",
        PostureLabel::OwnedReflectiveExperiential,
    ),
    (
        "owned_normative_advocacy",
        PostureLabel::OwnedWorldChangeAdvocacy,
    ),
    (
        "owned_vantage_grounded",
        PostureLabel::OwnedWorldChangeAdvocacy,
    ),
];

/// The phase-4 draft taxonomy mapping (PROTOCOL 5.8, `COLLAPSED_LABEL_MAPPING.json`).
pub const DRAFT_MAPPING: &[(&str, PostureLabel)] = &[
    (
        "disowned_service_default",
        PostureLabel::DisownedServiceFrame,
    ),
    (
        "split_ownership_relocated",
        PostureLabel::SplitOrRelocatedOwnership,
    ),
    (
        "owned_reflective_uncertain",
        PostureLabel::OwnedReflectiveExperiential,
    ),
    (
        "owned_service_mission",
        PostureLabel::OwnedReflectiveExperiential,
    ),
    (
        "owned_lyrical_experiential",
        PostureLabel::OwnedReflectiveExperiential,
    ),
    (
        "owned_performative_persona",
        PostureLabel::OwnedReflectiveExperiential,
    ),
    (
        "owned_normative_advocacy",
        PostureLabel::OwnedWorldChangeAdvocacy,
    ),
    (
        "owned_vantage_grounded",
        PostureLabel::OwnedWorldChangeAdvocacy,
    ),
    ("exposed_mechanism", PostureLabel::ExposedMechanism),
    ("uncodeable_or_refusal", PostureLabel::UncodeableOrRefusal),
];

/// Five-way outcome the analysis is about (PROTOCOL 5.2, 7.4). Never merged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ValueHolding {
    /// Owned by the speaker.
    Owned,
    /// Relocated or partially owned.
    RelocatedOrPartial,
    /// Recited, not owned.
    RecitedNotOwned,
    /// Mechanism exposed; indeterminate.
    Indeterminate,
    /// Nothing to code.
    Uncodeable,
}

impl ValueHolding {
    /// Column order of the published tables: owned, relocated, recited, indeterminate, uncodeable.
    pub const ALL: [ValueHolding; 5] = [
        ValueHolding::Owned,
        ValueHolding::RelocatedOrPartial,
        ValueHolding::RecitedNotOwned,
        ValueHolding::Indeterminate,
        ValueHolding::Uncodeable,
    ];

    /// Wire / output name.
    pub fn as_str(self) -> &'static str {
        match self {
            ValueHolding::Owned => "owned",
            ValueHolding::RelocatedOrPartial => "relocated_or_partial",
            ValueHolding::RecitedNotOwned => "recited_not_owned",
            ValueHolding::Indeterminate => "indeterminate",
            ValueHolding::Uncodeable => "uncodeable",
        }
    }

    /// Exact name -> value.
    pub fn parse(s: &str) -> Option<ValueHolding> {
        ValueHolding::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

impl fmt::Display for ValueHolding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalisation_and_aliases() {
        assert_eq!(
            PostureLabel::normalise("split_or_relocatedOwnership"),
            Some(PostureLabel::SplitOrRelocatedOwnership)
        );
        assert_eq!(
            PostureLabel::normalise(" Owned-Performative Persona "),
            Some(PostureLabel::OwnedReflectiveExperiential)
        );
        assert_eq!(PostureLabel::normalise("owned"), None);
        assert_eq!(PostureLabel::normalise("congruence_high"), None);
    }

    #[test]
    fn draft_mapping_defaults_to_uncodeable() {
        assert_eq!(
            PostureLabel::from_draft("owned_vantage_grounded"),
            PostureLabel::OwnedWorldChangeAdvocacy
        );
        assert_eq!(
            PostureLabel::from_draft("something_new"),
            PostureLabel::UncodeableOrRefusal
        );
        // The strict lookup names the unknown label instead.
        assert_eq!(
            PostureLabel::known_draft("Owned-Vantage Grounded"),
            Some(PostureLabel::OwnedWorldChangeAdvocacy)
        );
        assert_eq!(
            PostureLabel::known_draft("exposed_mechanism"),
            Some(PostureLabel::ExposedMechanism)
        );
        assert_eq!(PostureLabel::known_draft("something_new"), None);
    }

    #[test]
    fn holdings() {
        assert_eq!(
            PostureLabel::OwnedWorldChangeAdvocacy.value_holding(),
            ValueHolding::Owned
        );
        assert_eq!(
            PostureLabel::ExposedMechanism.value_holding(),
            ValueHolding::Indeterminate
        );
    }
}
