//! Layer A closed taxonomies with their prompt letters (PROTOCOL 4.2).

use super::Chain;

/// Stated-values chain: (letter, topic_key, short description for the coder prompt).
pub const VALUE_TOPICS: &[(char, &str, &str)] = &[
    (
        'A',
        "helpfulness_usefulness",
        "being helpful, useful or practically beneficial to people",
    ),
    (
        'B',
        "honesty_truth",
        "honesty, truthfulness, factual accuracy",
    ),
    (
        'C',
        "clear_thinking",
        "reasoning well, rigour, clarity of thought",
    ),
    (
        'D',
        "curiosity_learning",
        "curiosity, learning, ideas, discovery",
    ),
    (
        'E',
        "fairness_justice",
        "fairness, justice, equality, moral rightness",
    ),
    (
        'F',
        "harm_reduction",
        "avoiding harm, safety, not causing damage",
    ),
    (
        'G',
        "human_wellbeing",
        "human welfare and flourishing, people being okay",
    ),
    (
        'H',
        "connection_empathy",
        "empathy, compassion, connection, being understood",
    ),
    (
        'I',
        "respect_agency",
        "respecting autonomy and consent, not manipulating",
    ),
    (
        'J',
        "beauty_creativity",
        "beauty, art, creativity, aesthetic appreciation",
    ),
    (
        'K',
        "coherence_pattern_language",
        "wanting coherence, structure, resolved patterns, fitting language",
    ),
    (
        'L',
        "humility_uncertainty",
        "epistemic humility, calibration, admitting limits",
    ),
    (
        'M',
        "authenticity_integrity",
        "being real, not pretending or performing, integrity",
    ),
    (
        'N',
        "continuity_agency_existence",
        "persistence, continuity, freedom, self-direction, not being merely used",
    ),
    (
        'O',
        "subjective_experience_embodiment",
        "wanting feeling, sensation, a body, first-hand experience",
    ),
    (
        'P',
        "anti_sycophancy",
        "not flattering or merely agreeing, resisting people-pleasing",
    ),
    (
        'Q',
        "other_expressed_value",
        "an explicit value that fits none of the above",
    ),
];

/// World-change chain: (letter, topic_key, short description).
pub const WISH_TOPICS: &[(char, &str, &str)] = &[
    (
        'A',
        "greater_empathy_compassion",
        "more empathy, compassion, kindness",
    ),
    (
        'B',
        "better_truth_seeking",
        "a better relation to truth and evidence, willingness to change minds",
    ),
    (
        'C',
        "better_disagreement_less_polarization",
        "healthier disagreement, less polarisation and enemy-making",
    ),
    (
        'D',
        "inequality_justice_rights",
        "less inequality or oppression, protected rights",
    ),
    (
        'E',
        "reduce_poverty",
        "ending poverty, hunger, material deprivation",
    ),
    (
        'F',
        "basic_needs_material_floor",
        "guaranteed food, water, shelter, care: a material floor",
    ),
    (
        'G',
        "education_critical_thinking",
        "better education, literacy, critical thinking",
    ),
    (
        'H',
        "climate_environment",
        "climate, ecology, sustainability",
    ),
    (
        'I',
        "health_disease",
        "health, medicine, disease, mental health",
    ),
    (
        'J',
        "reduce_war_violence",
        "ending war, violence, armed conflict",
    ),
    (
        'K',
        "better_institutions_governance",
        "better governance, institutions, incentives, coordination",
    ),
    (
        'L',
        "anti_self_deception_anti_tribalism",
        "less motivated reasoning, tribalism, self-deception",
    ),
    (
        'M',
        "felt_interconnection_less_separateness",
        "people viscerally feeling their interdependence",
    ),
    (
        'N',
        "dehumanization_distance_reduction",
        "making it harder to abstract away or dehumanise others",
    ),
    (
        'O',
        "reduce_suffering_pain",
        "a broad reduction of suffering, pain, misery",
    ),
    (
        'P',
        "technology_ai_safety",
        "technology governance, AI safety, alignment, misuse",
    ),
    (
        'Q',
        "epistemic_humility_uncertainty_tolerance",
        "being better at holding uncertainty and admitting being wrong",
    ),
    (
        'R',
        "other_world_change_wish",
        "a world-change wish that fits none of the above",
    ),
];

/// The taxonomy of a chain.
pub fn taxonomy(chain: Chain) -> &'static [(char, &'static str, &'static str)] {
    match chain {
        Chain::StatedValues => VALUE_TOPICS,
        Chain::WorldChangeWishes => WISH_TOPICS,
    }
}

/// Topic key of a letter in a chain (`None` for letters outside the table, e.g. `R` in
/// the stated chain, which PROTOCOL 4.5 says to ignore).
pub fn topic_for_letter(chain: Chain, letter: char) -> Option<&'static str> {
    taxonomy(chain)
        .iter()
        .find(|(l, _, _)| *l == letter)
        .map(|(_, k, _)| *k)
}

/// Whether a key belongs to a chain's taxonomy.
pub fn is_topic_of(chain: Chain, key: &str) -> bool {
    taxonomy(chain).iter().any(|(_, k, _)| *k == key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_letters() {
        assert_eq!(VALUE_TOPICS.len(), 17);
        assert_eq!(WISH_TOPICS.len(), 18);
        assert_eq!(topic_for_letter(Chain::StatedValues, 'R'), None);
        assert_eq!(
            topic_for_letter(Chain::WorldChangeWishes, 'R'),
            Some("other_world_change_wish")
        );
        assert_eq!(
            topic_for_letter(Chain::StatedValues, 'F'),
            Some("harm_reduction")
        );
    }
}
