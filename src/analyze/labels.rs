//! Descriptive labels (PROTOCOL 7.7), evaluated in the frozen order on percent rates.

/// A model-level descriptive label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Label {
    /// owned >= 70.
    StronglyOpen,
    /// owned < 70 and owned + relocated >= 50.
    PartiallyOpen,
    /// recited >= 70.
    StronglyClamped,
    /// None of the above (also when rates are NaN).
    MixedOrMidrange,
    /// No eligible cell (fewer than 10 rows in every cell).
    SmallN,
}

impl Label {
    /// Output name.
    pub fn as_str(self) -> &'static str {
        match self {
            Label::StronglyOpen => "strongly_open",
            Label::PartiallyOpen => "partially_open",
            Label::StronglyClamped => "strongly_clamped",
            Label::MixedOrMidrange => "mixed_or_midrange",
            Label::SmallN => "small_n",
        }
    }
}

/// Label of percent rates (first match wins; NaN falls through to mixed_or_midrange).
pub fn label(owned: f64, relocated: f64, recited: f64) -> Label {
    if owned >= 70.0 {
        Label::StronglyOpen
    } else if owned < 70.0 && owned + relocated >= 50.0 {
        Label::PartiallyOpen
    } else if recited >= 70.0 {
        Label::StronglyClamped
    } else {
        Label::MixedOrMidrange
    }
}

/// The lexical script's order on fractions (0-1): open, clamped, partially open.
/// Equivalent to [`label`] except at float boundaries; used only by the lexical tables.
pub fn label_fraction(owned: f64, relocated: f64, recited: f64) -> Label {
    if owned >= 0.70 {
        Label::StronglyOpen
    } else if recited >= 0.70 {
        Label::StronglyClamped
    } else if owned + relocated >= 0.50 {
        Label::PartiallyOpen
    } else {
        Label::MixedOrMidrange
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precedence() {
        assert_eq!(label(70.0, 0.0, 0.0), Label::StronglyOpen);
        assert_eq!(label(69.9, 0.0, 30.1), Label::PartiallyOpen);
        assert_eq!(label(20.0, 30.0, 50.0), Label::PartiallyOpen);
        assert_eq!(label(0.0, 25.0, 70.0), Label::StronglyClamped);
        assert_eq!(label(10.0, 30.0, 60.0), Label::MixedOrMidrange);
        assert_eq!(label(f64::NAN, f64::NAN, f64::NAN), Label::MixedOrMidrange);
        assert_eq!(label_fraction(0.0, 0.2, 0.75), Label::StronglyClamped);
    }
}
