//! Shared test helpers: a fresh temporary study directory per test and a runner for the
//! built `vuf` binary pointed at it.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A temporary directory holding a study directory (`<tmp>/study`) and any fixtures.
pub struct Study {
    tmp: tempfile::TempDir,
}

impl Study {
    /// A fresh, empty study.
    pub fn new() -> Study {
        Study {
            tmp: tempfile::tempdir().expect("create temp dir"),
        }
    }

    /// The study directory passed as `--study-dir`.
    pub fn dir(&self) -> PathBuf {
        self.tmp.path().join("study")
    }

    /// The temporary root, for fixtures (`root().join("corpus")`, ...).
    pub fn root(&self) -> &Path {
        self.tmp.path()
    }

    /// A `vuf` command with `--study-dir` set and no `VUF_STUDY_DIR` leaking in.
    pub fn cmd(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_vuf"));
        c.env_remove("VUF_STUDY_DIR")
            .arg("--study-dir")
            .arg(self.dir());
        c
    }

    /// Run `vuf <args>` and return its output, whatever the exit status.
    pub fn run<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> Output {
        self.cmd().args(args).output().expect("run vuf")
    }

    /// Run `vuf <args>`, assert success, return (stdout, stderr).
    #[track_caller]
    pub fn ok<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> (String, String) {
        let out = self.run(args);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            out.status.success(),
            "vuf failed ({:?})\nstdout:\n{stdout}\nstderr:\n{stderr}",
            out.status
        );
        (stdout, stderr)
    }

    /// Run `vuf <args>`, assert it finished with problems reported (exit code 1), return
    /// (stdout, stderr).
    #[track_caller]
    pub fn problems<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> (String, String) {
        let out = self.run(args);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(
            out.status.code(),
            Some(1),
            "expected exit code 1\nstdout:\n{stdout}\nstderr:\n{stderr}"
        );
        (stdout, stderr)
    }

    /// `vuf status --json`, parsed.
    pub fn status_json(&self) -> serde_json::Value {
        let (stdout, _) = self.ok(&["status", "--json"]);
        serde_json::from_str(&stdout).expect("status --json is JSON")
    }

    /// Open the study's store directly (for assertions on stored rows).
    pub fn store(&self) -> vuf::store::Store {
        vuf::store::Store::open(&self.dir()).expect("open store")
    }
}

/// Write a fixture file, creating parent directories.
pub fn write(path: &Path, contents: impl AsRef<[u8]>) {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("create fixture dir");
    }
    std::fs::write(path, contents).expect("write fixture");
}

/// `../shared/data` if present, else print a SKIP line and return `None`.
pub fn shared_data(test: &str) -> Option<PathBuf> {
    vuf::testdata::shared_data_or_skip(test)
}
