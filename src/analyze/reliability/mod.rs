//! Chance-corrected inter-coder agreement on nominal codes (PROTOCOL 7.12, beyond the
//! paper): Fleiss' kappa (complete units only), Krippendorff's alpha (nominal, missing
//! values allowed) and pairwise Cohen's kappa. Each statistic lives in its own file and works
//! on plain category indices, so the worked examples of PEERS-AND-CRATES B test them
//! directly. Units are coded as `Vec<Option<usize>>` (one slot per coder, `None` = missing).

pub mod cohen;
pub mod fleiss;
pub mod krippendorff;

pub use cohen::cohen_kappa;
pub use fleiss::{fleiss_kappa, FleissResult};
pub use krippendorff::krippendorff_alpha_nominal;
