//! Writing an [`Analysis`](super::Analysis) to a directory: every table as `<name>.csv`,
//! every text as is, `analysis.json` and `samples.jsonl` (contract: SAMPLES_JSONL.md).

pub mod json;

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
    let table_path = |t: &super::table::Table| dir.join(format!("{}.csv", t.name));
    // The sample-level table is about half of the rendering work: it is written on a
    // second thread while this one writes everything else.
    let big = a
        .tables
        .iter()
        .position(|t| t.name == json::SAMPLE_LEVEL_TABLE);
    let written = std::thread::scope(|scope| {
        let side = big.map(|i| {
            let t = &a.tables[i];
            scope.spawn(move || write(&table_path(t), t.to_csv().as_bytes()))
        });
        let main = (|| {
            for (i, t) in a.tables.iter().enumerate() {
                if Some(i) != big {
                    write(&table_path(t), t.to_csv().as_bytes())?;
                }
            }
            for (name, text) in &a.texts {
                write(&dir.join(name), text.as_bytes())?;
            }
            write(
                &dir.join("analysis.json"),
                json::analysis_json(a).as_bytes(),
            )?;
            write(&dir.join("samples.jsonl"), a.samples_jsonl.as_bytes())
        })();
        let side = side.map_or(Ok(()), |h| {
            h.join().unwrap_or_else(|e| std::panic::resume_unwind(e))
        });
        main.and(side)
    });
    written?;
    let mut out: Vec<PathBuf> = a.tables.iter().map(table_path).collect();
    out.extend(a.texts.iter().map(|(name, _)| dir.join(name)));
    out.push(dir.join("analysis.json"));
    out.push(dir.join("samples.jsonl"));
    Ok(out)
}
