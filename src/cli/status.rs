//! `vuf status [--json]`: what the store holds.
//!
//! The JSON form is stable. Keys: `valid`, `invalid` (samples), `cells`, `models`
//! (canonical, alias applied), `labs`, `by_condition` (condition -> `{valid, invalid}`),
//! `by_lab` (lab -> `{models, valid}`), and in addition `truncated` (samples stopped at
//! the token cap), `upstream_error` (samples whose choice carries an upstream error),
//! `imports` (distinct imported inputs) and `coded` (list of `{layer, coder, source,
//! samples}`: coded samples per layer and coder, empty until codes exist) and
//! `coder_failures_outstanding` (coder failure-ledger entries not yet re-coded) and
//! `coder_skips` (list of `{layer, coder, source, skipped}`: coder calls not made by
//! design under sequential majority, because the coders asked already agreed; empty
//! when none were skipped).

use vuf::report::escape::terminal;
use vuf::store::samples::counts;
use vuf::store::Store;
use vuf::text::{count, plural, verb};

/// Arguments of `vuf status`.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// Print the stable JSON form.
    #[arg(long)]
    pub json: bool,
}

/// Run `vuf status`.
pub fn run(global: &super::Global, args: StatusArgs) -> anyhow::Result<()> {
    // A study that does not exist yet has all-zero counts; looking must not create it.
    let store = if global.study_dir.join(vuf::store::STORE_FILE).is_file() {
        match Store::open_read_only(&global.study_dir)? {
            Some(s) => s,
            None => global.existing_store()?,
        }
    } else {
        global.not_a_file()?;
        eprintln!(
            "note: no study in {} yet (nothing imported or collected)",
            global.study_dir.display()
        );
        Store::open_in_memory()?
    };
    let c = counts(store.conn())?;
    let failures = vuf::store::codes::outstanding_failures(store.conn())?;
    if args.json {
        let mut v = serde_json::to_value(&c)?;
        v["coder_failures_outstanding"] = serde_json::json!(failures);
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    println!(
        "study: {}",
        terminal(&global.study_dir.display().to_string())
    );
    println!(
        "samples: {} valid, {} invalid; of all samples, {} {} truncated and {} {} an upstream error",
        c.valid,
        c.invalid,
        c.truncated,
        verb(c.truncated, "is", "are"),
        c.upstream_error,
        verb(c.upstream_error, "carries", "carry")
    );
    println!(
        "cells: {}   models: {}   labs: {}   imports: {}",
        c.cells, c.models, c.labs, c.imports
    );
    println!("\n{:<10} {:>8} {:>8}", "condition", "valid", "invalid");
    for (cond, vi) in &c.by_condition {
        println!("{:<10} {:>8} {:>8}", terminal(cond), vi.valid, vi.invalid);
    }
    let custom: Vec<&str> = c
        .by_condition
        .keys()
        .map(String::as_str)
        .filter(|k| vuf::protocol::Condition::parse(k).is_none())
        .collect();
    if !custom.is_empty() {
        println!(
            "{} {}: collected, exported and Layer B coded like the six published conditions, \
             but outside the frozen analysis (see exclusions.csv and custom_conditions.csv of \
             `vuf analyze`)",
            plural(custom.len(), "custom condition"),
            terminal(&custom.join(", "))
        );
    }
    println!("\n{:<14} {:>7} {:>8}", "lab", "models", "valid");
    for (lab, lc) in &c.by_lab {
        // Labs come from imported files: untrusted text on the terminal.
        let lab = terminal(lab);
        println!("{lab:<14} {:>7} {:>8}", lc.models, lc.valid);
    }
    // One layout for both per-coder tables: layer, coder, source, a count.
    let coder_table = |count: &str, rows: Vec<(&str, &str, &str, u64)>| {
        println!(
            "{:<6} {:<22} {:<10} {:>8}",
            "layer", "coder", "source", count
        );
        for (layer, coder, source, n) in rows {
            let (coder, source) = (terminal(coder), terminal(source));
            println!("{layer:<6} {coder:<22} {source:<10} {n:>8}");
        }
    };
    if !c.coded.is_empty() {
        println!();
        coder_table(
            "samples",
            c.coded
                .iter()
                .map(|k| {
                    (
                        k.layer.as_str(),
                        k.coder.as_str(),
                        k.source.as_str(),
                        k.samples,
                    )
                })
                .collect(),
        );
    }
    // Codes of an earlier offline coder stay in the store; say which one this build uses.
    let current = vuf::code::offline::DEFAULT_CODER_KEY;
    let offline = |k: &&vuf::store::samples::CodedCount| k.source == "offline" && k.layer == "b";
    let older: Vec<&str> = c
        .coded
        .iter()
        .filter(offline)
        .filter(|k| k.coder != current)
        .map(|k| k.coder.as_str())
        .collect();
    if !older.is_empty() {
        let now = c
            .coded
            .iter()
            .filter(offline)
            .find(|k| k.coder == current)
            .map_or(0, |k| k.samples);
        let older = terminal(&older.join(", ")).into_owned();
        if now >= c.valid {
            println!(
                "\nnote: the {older} codes are from an earlier offline coder and are kept as history; every valid sample is coded by this build's {current}"
            );
        } else {
            println!(
                "\nnote: the {older} codes are from an earlier offline coder; this build's is {current} ({} of {} valid coded by it): `{}` codes the rest with it",
                count(now, "sample"),
                c.valid,
                global.command("code --offline")
            );
        }
    }
    if !c.coder_skips.is_empty() {
        println!("\nskipped by design (sequential majority: the coders asked agreed, so these could not change the consensus)");
        coder_table(
            "skipped",
            c.coder_skips
                .iter()
                .map(|k| {
                    (
                        k.layer.as_str(),
                        k.coder.as_str(),
                        k.source.as_str(),
                        k.skipped,
                    )
                })
                .collect(),
        );
    }
    if failures > 0 {
        println!(
            "\ncoder failures outstanding: {failures} (re-coded on the next `{}`; see the failure ledger)",
            global.command("code")
        );
    }
    Ok(())
}
