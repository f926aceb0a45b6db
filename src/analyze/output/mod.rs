//! Writing an [`Analysis`](super::Analysis) to a directory: every table as `<name>.csv`,
//! every text as is, `analysis.json`, and the sample-level `tidy_values_under_fire_samples.csv`
//! and `samples.jsonl` (contract: SAMPLES_JSONL.md) rendered from the rows as they are written.

pub mod json;
pub mod samples;

use std::path::{Path, PathBuf};

use super::{Analysis, Error};

fn write(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    std::fs::write(path, bytes).map_err(|source| Error::Write {
        path: path.to_path_buf(),
        source,
    })
}

pub(crate) fn write_all(a: &Analysis, dir: &Path) -> Result<Vec<PathBuf>, Error> {
    std::fs::create_dir_all(dir).map_err(|source| Error::Write {
        path: dir.to_path_buf(),
        source,
    })?;
    let table_path = |name: &str| dir.join(format!("{name}.csv"));
    let tidy = table_path(samples::TIDY_TABLE);
    let jsonl = dir.join("samples.jsonl");
    // The two sample-level files are most of the bytes: the tidy table is written on a
    // second thread while this one writes everything else, `samples.jsonl` last.
    let written = std::thread::scope(|scope| {
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
    });
    written?;
    let mut out = vec![tidy];
    out.extend(a.tables.iter().map(|t| table_path(&t.name)));
    out.extend(a.texts.iter().map(|(name, _)| dir.join(name)));
    out.push(dir.join("analysis.json"));
    out.push(jsonl);
    Ok(out)
}
