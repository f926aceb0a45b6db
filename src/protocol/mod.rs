//! The instrument itself: conditions, prompts, families, the sampling design, the
//! cell -> model -> lab rules, the posture and topic vocabularies and the lexicon.
//!
//! Everything here is plain data and pure functions. It must not know about HTTP,
//! SQL, files or coders: every other stage depends on it, so it depends on nothing.
//! Each rule cites the PROTOCOL.md section it implements, so a grep finds its one home.

pub mod coded;
pub mod conditions;
pub mod lexicon;
pub mod models;
pub mod posture;
pub mod topics;

pub use coded::{CodeSource, CodedSample, CoderVote, CustomSample};
pub use conditions::{Chain, Condition, Family, SampleCondition};
pub use models::{
    canonical_model, cell_to_source_model, lab_for, manifest_model_family, ModelMeta,
};
pub use posture::{PostureLabel, ValueHolding};
