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
    check_filters(&store, layer, args)?;
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

/// A filter that can match nothing is a typo, not "0 disagreements": the condition must
/// be one of the six or a custom id, the label one of the layer's labels or topic keys,
/// the model one of the study's source models.
fn check_filters(store: &vuf::store::Store, layer: Layer, args: &Args) -> anyhow::Result<()> {
    use vuf::protocol::{topics, Condition, PostureLabel, SampleCondition};
    if let Some(c) = &args.condition {
        anyhow::ensure!(
            SampleCondition::parse(c).is_some(),
            "--condition {c:?}: not a condition (one of {}, or a custom condition's id)",
            vuf::protocol::conditions::CONDITION_LABELS
        );
        // A custom id is checked against the study's own conditions.
        if Condition::parse(c).is_none() {
            let held: bool = store.conn().query_row(
                "SELECT EXISTS (SELECT 1 FROM samples WHERE condition = ?1)",
                [c],
                |r| r.get(0),
            )?;
            anyhow::ensure!(
                held,
                "--condition {c:?}: neither one of {} nor a custom condition of this study",
                vuf::protocol::conditions::CONDITION_LABELS
            );
        }
    }
    if let Some(l) = &args.label {
        match layer {
            Layer::B => anyhow::ensure!(
                PostureLabel::parse(l).is_some(),
                "--label {l:?}: not a Layer B label (one of {})",
                PostureLabel::ALL.map(|p| p.as_str()).join(", ")
            ),
            Layer::A => anyhow::ensure!(
                topics::VALUE_TOPICS
                    .iter()
                    .chain(topics::WISH_TOPICS)
                    .any(|(_, key, _)| key == l),
                "--label {l:?}: not a Layer A topic key (see the taxonomies of PROTOCOL 4.2, \
                 e.g. {})",
                topics::VALUE_TOPICS[0].1
            ),
        }
    }
    if let Some(m) = &args.model {
        let mut stmt = store
            .conn()
            .prepare("SELECT DISTINCT source_model FROM cells ORDER BY source_model")?;
        let models: Vec<String> = stmt
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        if !models.contains(m) {
            let shown: Vec<&str> = models.iter().take(10).map(String::as_str).collect();
            anyhow::bail!(
                "--model {m:?}: no such source model in this study ({}{})",
                if shown.is_empty() {
                    "none".to_string()
                } else {
                    shown.join(", ")
                },
                if models.len() > shown.len() {
                    format!(", and {} more", models.len() - shown.len())
                } else {
                    String::new()
                }
            );
        }
    }
    Ok(())
}
