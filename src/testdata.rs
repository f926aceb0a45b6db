//! Locating the public corpus (`shared/data`) for tests and benchmarks.
//!
//! Tests that need the real data run when it exists and print a SKIP line otherwise.

use std::path::{Path, PathBuf};

/// The `shared/data` directory: `$VUF_SHARED_DATA` if set, else the first `shared/data`
/// found beside the crate root or one of its ancestors (`../shared/data` in CI).
pub fn shared_data_dir() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("VUF_SHARED_DATA") {
        let p = PathBuf::from(p);
        return p.is_dir().then_some(p);
    }
    let mut dir: Option<&Path> = Some(Path::new(env!("CARGO_MANIFEST_DIR")));
    while let Some(d) = dir {
        let candidate = d.join("shared").join("data");
        if candidate.join("README.md").is_file() {
            return Some(candidate);
        }
        dir = d.parent();
    }
    None
}

/// `shared_data_dir()`, or print `SKIP: <test>: ...` and return `None`.
pub fn shared_data_or_skip(test: &str) -> Option<PathBuf> {
    let d = shared_data_dir();
    if d.is_none() {
        println!("SKIP: {test}: ../shared/data not found (set VUF_SHARED_DATA to run it)");
    }
    d
}

/// The names of the entries of `dir`, sorted (tests compare output directories by them).
/// Panics when `dir` cannot be read: for tests only.
pub fn dir_entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}
