//! `vuf disagreements`: samples where coders split, with each coder's vote and note.

use vuf::code::audit::{self, Filter};
use vuf::code::Layer;
use vuf::protocol::CodeSource;

use super::Global;

/// Arguments of `vuf disagreements`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Layer (`a` topics, `b` posture).
    #[arg(long, default_value = "b", value_parser = ["a", "b"])]
    pub layer: String,
    /// Consensus source (`models`, `published`, `offline`, `cascade`; a single offline
    /// coder never disagrees with itself, so `offline` lists none).
    #[arg(long, default_value = "models")]
    pub source: String,
    /// Only this source model.
    #[arg(long)]
    pub model: Option<String>,
    /// Only this condition.
    #[arg(long)]
    pub condition: Option<String>,
    /// Only samples where the consensus or a coder chose this label / topic.
    #[arg(long)]
    pub label: Option<String>,
}

/// Run it.
pub fn run(global: &Global, args: &Args) -> anyhow::Result<()> {
    let store = global.existing_store()?;
    let layer =
        Layer::parse(&args.layer).ok_or_else(|| anyhow::anyhow!("--layer must be a or b"))?;
    let source = CodeSource::parse(&args.source)
        .ok_or_else(|| anyhow::anyhow!("unknown --source {}", args.source))?;
    let filter = Filter {
        model: args.model.clone(),
        condition: args.condition.clone(),
        label: args.label.clone(),
    };
    // No consensus of that source at all is not "0 disagreements".
    let available = vuf::store::coded::available_sources(store.conn())?;
    if layer == Layer::B && !available.contains(&source) {
        let names: Vec<&str> = available.iter().map(|s| s.as_str()).collect();
        anyhow::bail!(
            "no `{}` consensus in this study (available: {}); pass --source, or code first (`vuf code`)",
            source.as_str(),
            if names.is_empty() { "none".to_string() } else { names.join(", ") }
        );
    }
    let rows = audit::disagreements(&store, layer, source, &filter)?;
    let t = vuf::report::escape::terminal;
    for d in &rows {
        let support = d
            .support
            .map(|s| format!(" (support {s})"))
            .unwrap_or_default();
        // Ids, labels and notes come from the data: shown, never acting on the terminal.
        println!(
            "{}  {}  {}  -> {}{}",
            t(&d.layered_id),
            t(&d.model),
            t(&d.condition),
            t(&d.consensus),
            support
        );
        for c in &d.coders {
            println!(
                "    {:<16} {:<30} {}",
                t(&c.coder),
                t(&c.vote),
                t(&c.notes.replace('\n', " "))
            );
        }
    }
    println!(
        "{} with disagreement",
        vuf::text::count(rows.len(), "sample")
    );
    // Sequential majority settles a sample when the coders asked agree, so such a sample
    // never shows up above: say how many there are, and that the count is a floor.
    let (settled, not_asked) = audit::settled_with_skips(&store, layer, source, &filter)?;
    if settled > 0 {
        println!(
            "note: {settled} more {} {} settled by sequential majority: the votes cast agreed, and {} {} \
             skipped by design; whether {} would have split is unknown, so asking every coder \
             (`vuf code --cascade T --all-coders`, or `vuf code`) may find more disagreements",
            vuf::text::plural(settled, "sample"),
            vuf::text::verb(settled, "was", "were"),
            t(&not_asked.join(", ")),
            vuf::text::verb(not_asked.len(), "was", "were"),
            if not_asked.len() == 1 { "it" } else { "they" }
        );
    }
    Ok(())
}
