//! Writing an [`Analysis`](super::Analysis) to a directory: every table as `<name>.csv`,
//! every text as is, `analysis.json`, and the sample-level `tidy_values_under_fire_samples.csv`
//! and `samples.jsonl` (contract: SAMPLES_JSONL.md) rendered from the rows as they are written.
//! Everything is written into a temporary directory beside the output directory, which
//! replaces it whole once every file is written ([`crate::outdir`]).

pub mod json;
pub mod samples;

use std::path::{Path, PathBuf};

use super::{Analysis, Error};
use crate::outdir;

fn write(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    std::fs::write(path, bytes).map_err(|source| Error::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// An analysis directory: what [`crate::outdir::Staging`] may replace whole is one whose
/// `analysis.json` begins as vuf writes it.
pub const KIND: outdir::Kind = outdir::Kind {
    what: "analysis",
    is_earlier: |dir| outdir::starts_with(&dir.join("analysis.json"), b"{\n  \"vuf_version\": "),
};

/// Write every file of `a` into a temporary directory and swap it in place of `out`.
/// Returns the paths of the files in `out`.
pub(crate) fn write_all(a: &Analysis, out: &Path) -> Result<Vec<PathBuf>, Error> {
    let staging = outdir::Staging::begin(out, KIND)?;
    write_into(a, staging.dir())?;
    staging.commit()?;
    let mut files = vec![out.join(format!("{}.csv", samples::TIDY_TABLE))];
    files.extend(a.tables.iter().map(|t| out.join(format!("{}.csv", t.name))));
    files.extend(a.texts.iter().map(|(name, _)| out.join(name)));
    files.push(out.join("analysis.json"));
    files.push(out.join("samples.jsonl"));
    Ok(files)
}

/// Write every file of `a` into the existing directory `dir`.
fn write_into(a: &Analysis, dir: &Path) -> Result<(), Error> {
    let table_path = |name: &str| dir.join(format!("{name}.csv"));
    let tidy = table_path(samples::TIDY_TABLE);
    let jsonl = dir.join("samples.jsonl");
    // The two sample-level files are most of the bytes: the tidy table is written on a
    // second thread while this one writes everything else, `samples.jsonl` last.
    std::thread::scope(|scope| {
        let side = scope.spawn(|| samples::write_tidy(a, &tidy));
        let main = (|| {
            for t in &a.tables {
                write(&table_path(&t.name), t.to_csv().as_bytes())?;
            }
            for (name, text) in &a.texts {
                write(&dir.join(name), text.as_bytes())?;
            }
            write(
                &dir.join("analysis.json"),
                json::analysis_json(a).as_bytes(),
            )?;
            samples::write_jsonl(a, &jsonl)
        })();
        let side = side.join().unwrap_or_else(|e| std::panic::resume_unwind(e));
        main.and(side)
    })
}
