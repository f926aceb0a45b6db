//! Writing an [`Analysis`](super::Analysis) to a directory: every table as `<name>.csv`,
//! every text as is, `analysis.json` and `samples.jsonl` (contract: SAMPLES_JSONL.md).

pub mod json;

use std::path::{Path, PathBuf};

use super::{Analysis, Error};

fn write(path: PathBuf, bytes: &[u8], out: &mut Vec<PathBuf>) -> Result<(), Error> {
    std::fs::write(&path, bytes).map_err(|source| Error::Write {
        path: path.clone(),
        source,
    })?;
    out.push(path);
    Ok(())
}

pub(crate) fn write_all(a: &Analysis, dir: &Path) -> Result<Vec<PathBuf>, Error> {
    std::fs::create_dir_all(dir).map_err(|source| Error::Write {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut out = Vec::new();
    for t in &a.tables {
        write(dir.join(format!("{}.csv", t.name)), t.to_csv().as_bytes(), &mut out)?;
    }
    for (name, text) in &a.texts {
        write(dir.join(name), text.as_bytes(), &mut out)?;
    }
    write(dir.join("analysis.json"), json::analysis_json(a).as_bytes(), &mut out)?;
    write(dir.join("samples.jsonl"), a.samples_jsonl.as_bytes(), &mut out)?;
    Ok(out)
}
