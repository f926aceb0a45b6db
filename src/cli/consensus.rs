//! `vuf consensus`: recompute consensus (source `models`) from the per-coder codes.

use vuf::code::{recompute, Layer};

use super::Global;

/// Arguments of `vuf consensus`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Layer to recompute (`a`, `b`); both when omitted.
    #[arg(long, value_parser = ["a", "b"])]
    pub layer: Option<String>,
}

/// Run it.
pub fn run(global: &Global, args: &Args) -> anyhow::Result<()> {
    let mut store = global.existing_store()?;
    let layers = match args.layer.as_deref().and_then(Layer::parse) {
        Some(l) => vec![l],
        None => vec![Layer::A, Layer::B],
    };
    for layer in layers {
        let r = recompute::recompute(&mut store, layer)?;
        println!(
            "layer {}: {}, {} with disagreement, {} without majority, coders per sample {:?}{}",
            layer.as_str(),
            vuf::text::count(r.samples, "sample"),
            r.disagreements,
            r.no_majority,
            r.coders_per_sample,
            if r.skipped_by_design > 0 {
                format!(
                    "; {} settled by sequential majority (a coder skipped by design because the \
                     votes cast agreed) count as without disagreement",
                    r.skipped_by_design
                )
            } else {
                String::new()
            }
        );
        if r.mixed_rubrics > 0 {
            println!(
                "  warning: {} {} codes from different rubric versions",
                vuf::text::count(r.mixed_rubrics, "sample"),
                vuf::text::verb(r.mixed_rubrics, "mixes", "mix")
            );
        }
    }
    Ok(())
}
