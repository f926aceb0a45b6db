//! Output directories replaced whole: `vuf analyze` and `vuf report` never write into
//! their output directory. They write into a fresh sibling, `.<name>.tmp-<pid>` (same
//! parent, so on one file system), and only when every file is written swap it in:
//!
//! 1. the earlier directory is renamed aside to `.<name>.old-<pid>`,
//! 2. the new one is renamed to `<name>`,
//! 3. the earlier one is removed.
//!
//! What a stop at each point leaves (an error, a panic or a full disk before step 1 also
//! remove the temporary directory; Ctrl-C, a kill or a power cut do not):
//!
//! | stopped | `<name>` | beside it | the next [`Staging::begin`] of `<name>` |
//! |---|---|---|---|
//! | while writing | the earlier output, untouched | `.tmp-<pid>`, unfinished | removes it |
//! | between 1 and 2 | missing | `.old-<pid>` (the earlier output, whole), `.tmp-<pid>` | renames `.old-` back, removes `.tmp-` |
//! | between 2 and 3, or in 3 | the new output, whole | `.old-<pid>`, whole or partly removed | removes it |
//!
//! So `<name>` is always a whole output or absent (only in the instant between 1 and 2,
//! which a Ctrl-C of vuf's own handler waits out: [`hold_swaps`]), never a mix of two
//! runs, and the earlier output is gone only once the new one is in its place.
//!
//! The directory is vuf's: it is replaced whole, so a file put into it by hand goes with
//! it. To keep that from deleting a directory that is not an output (`--out .`, the study
//! directory, a folder of papers), [`Staging::begin`] replaces an existing directory only
//! when it is empty or holds an earlier output of the same kind ([`Kind::is_earlier`]),
//! and refuses otherwise, touching nothing.
//!
//! Two vuf processes writing the same output directory take turns: each holds an OS lock
//! on the parent directory from [`Staging::begin`] until the swap is done (released
//! however the process ends). That lock is what makes removing every stale `.tmp-` and
//! `.old-` sibling safe. A reader takes it shared ([`hold_for_reading`]: `vuf report`
//! reading the analysis), so it never reads half of one analysis and half of the next.
//! On a platform or file system that cannot lock a directory the runs are not serialised,
//! and the rest works the same.
//!
//! Not covered: durability across an OS crash or power cut. The files are not fsynced (it
//! would write the 46 MB of a full-corpus analysis through to disk on every run); after a
//! process stop everything written is in the page cache and the table above holds.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{ErrorKind, Read};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

/// Errors of staging and swapping an output directory.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file system operation failed.
    #[error("{doing} {path}: {source}")]
    Io {
        /// What was being done ("creating", "renaming ... to").
        doing: String,
        /// The path it was done to.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The output path exists and is not a directory.
    #[error("{path} exists and is not a directory: move it away, or write the {what} elsewhere")]
    NotADirectory {
        /// The path given.
        path: PathBuf,
        /// What would have been written ("analysis", "report").
        what: &'static str,
    },
    /// The output path names no directory entry that could be replaced (`/`).
    #[error("{path} cannot be an output directory: it has no parent directory to write beside")]
    NoParent {
        /// The path given.
        path: PathBuf,
    },
    /// The output directory holds something other than an earlier output of this kind.
    #[error(
        "{path} holds files that are not a vuf {what} ({listed}): vuf replaces its {what} \
         directory whole, so it writes only into a new or empty directory or over an earlier \
         vuf {what}; write it elsewhere, or move those files away"
    )]
    Foreign {
        /// The directory.
        path: PathBuf,
        /// What would have been written ("analysis", "report").
        what: &'static str,
        /// The first few entries, and how many there are.
        listed: String,
    },
}

/// What kind of output a directory holds.
#[derive(Debug, Clone, Copy)]
pub struct Kind {
    /// The output, for messages: "analysis", "report".
    pub what: &'static str,
    /// Whether a non-empty existing directory holds an earlier output of this kind, and may
    /// therefore be replaced whole.
    pub is_earlier: fn(&Path) -> bool,
}

/// Held from [`Staging::commit`]'s first rename to its second; see [`hold_swaps`].
static SWAP: Mutex<()> = Mutex::new(());

/// Wait until no output directory of this process is between the two renames of its swap,
/// and keep any other from starting while the guard lives. The Ctrl-C handler takes it
/// before it exits, so an interrupt never lands between "earlier output renamed aside" and
/// "new output renamed in".
pub fn hold_swaps() -> MutexGuard<'static, ()> {
    SWAP.lock().unwrap_or_else(|e| e.into_inner())
}

/// The name of the temporary directory this process writes `target` into
/// (`.<name>.tmp-<pid>`), for messages; `None` when `target` has no file name.
pub fn temp_name(target: &Path) -> Option<OsString> {
    target
        .file_name()
        .map(|name| sibling(name, TMP, std::process::id()))
}

const TMP: &str = "tmp";
const OLD: &str = "old";

fn sibling(name: &OsStr, tag: &str, pid: u32) -> OsString {
    let mut s = OsString::from(".");
    s.push(name);
    s.push(format!(".{tag}-{pid}"));
    s
}

/// Whether `entry` is `.<name>.<tag>-<digits>`.
fn is_sibling(entry: &OsStr, name: &OsStr, tag: &str) -> bool {
    let (Some(entry), Some(name)) = (entry.to_str(), name.to_str()) else {
        return false;
    };
    entry
        .strip_prefix('.')
        .and_then(|e| e.strip_prefix(name))
        .and_then(|e| e.strip_prefix('.'))
        .and_then(|e| e.strip_prefix(tag))
        .and_then(|e| e.strip_prefix('-'))
        .is_some_and(|pid| !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()))
}

fn io(doing: impl Into<String>, path: &Path) -> impl FnOnce(std::io::Error) -> Error {
    let (doing, path) = (doing.into(), path.to_path_buf());
    move |source| Error::Io {
        doing,
        path,
        source,
    }
}

fn exists(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok()
}

fn remove_dir(path: &Path) -> Result<(), Error> {
    match std::fs::remove_dir_all(path) {
        Err(e) if e.kind() != ErrorKind::NotFound => Err(io("removing", path)(e)),
        _ => Ok(()),
    }
}

/// An output directory being written: write into [`dir`](Self::dir), then
/// [`commit`](Self::commit). Dropped without a commit (an error, a panic), it removes what
/// was written and leaves the earlier output as it was.
#[derive(Debug)]
pub struct Staging {
    /// The output directory with symbolic links resolved: the one that is replaced.
    real: PathBuf,
    tmp: PathBuf,
    /// Where the earlier output goes during the swap.
    old: PathBuf,
    committed: bool,
    /// The lock on the parent directory (none where it cannot be taken).
    _lock: Option<File>,
}

impl Staging {
    /// Prepare to replace `target` with a new output of `kind`: create the parents of
    /// `target` if missing, take the lock on its parent, tidy up after an earlier run that
    /// was stopped (see the module doc), check that `target` is absent, empty or an earlier
    /// output of `kind`, and create the empty temporary directory to write into.
    pub fn begin(target: &Path, kind: Kind) -> Result<Staging, Error> {
        let real = match std::fs::metadata(target) {
            Ok(m) if m.is_dir() => {
                std::fs::canonicalize(target).map_err(io("resolving", target))?
            }
            Ok(_) => {
                return Err(Error::NotADirectory {
                    path: target.to_path_buf(),
                    what: kind.what,
                })
            }
            // A link to nothing: replacing it with a directory is not what it asked for.
            Err(_) if exists(target) => {
                return Err(Error::NotADirectory {
                    path: target.to_path_buf(),
                    what: kind.what,
                })
            }
            Err(e) if e.kind() == ErrorKind::NotFound => {
                let name = target.file_name().ok_or_else(|| Error::NoParent {
                    path: target.to_path_buf(),
                })?;
                let parent = match target.parent() {
                    Some(p) if !p.as_os_str().is_empty() => p,
                    _ => Path::new("."),
                };
                std::fs::create_dir_all(parent).map_err(io("creating", parent))?;
                std::fs::canonicalize(parent)
                    .map_err(io("resolving", parent))?
                    .join(name)
            }
            Err(e) => return Err(io("reading", target)(e)),
        };
        let (Some(parent), Some(name)) = (real.parent(), real.file_name()) else {
            return Err(Error::NoParent {
                path: target.to_path_buf(),
            });
        };
        let lock = File::open(parent).ok().filter(|f| f.lock().is_ok());
        tidy(parent, name, &real)?;
        if real.is_dir() {
            let mut entries: Vec<String> = std::fs::read_dir(&real)
                .map_err(io("reading", &real))?
                .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
                .collect::<Result<_, _>>()
                .map_err(io("reading", &real))?;
            if !entries.is_empty() && !(kind.is_earlier)(&real) {
                entries.sort();
                let total = entries.len();
                entries.truncate(3);
                let mut listed = entries.join(", ");
                if total > entries.len() {
                    listed.push_str(&format!(", ... ({total} entries)"));
                }
                return Err(Error::Foreign {
                    path: target.to_path_buf(),
                    what: kind.what,
                    listed,
                });
            }
        }
        let pid = std::process::id();
        let (tmp, old) = (
            parent.join(sibling(name, TMP, pid)),
            parent.join(sibling(name, OLD, pid)),
        );
        std::fs::create_dir(&tmp).map_err(io("creating", &tmp))?;
        Ok(Staging {
            real,
            tmp,
            old,
            committed: false,
            _lock: lock,
        })
    }

    /// The temporary directory to write every file into.
    pub fn dir(&self) -> &Path {
        &self.tmp
    }

    /// Swap the written directory in place of the earlier one (steps 1-3 of the module
    /// doc). Call only once every file is written and closed. On an error the earlier
    /// output is back where it was and the new one is removed.
    pub fn commit(mut self) -> Result<(), Error> {
        let old = self.old.clone();
        {
            let _swapping = hold_swaps();
            let aside = exists(&self.real);
            if aside {
                std::fs::rename(&self.real, &old).map_err(io(
                    format!("renaming the earlier output {} to", self.real.display()),
                    &old,
                ))?;
            }
            if let Err(e) = std::fs::rename(&self.tmp, &self.real) {
                if aside {
                    let _ = std::fs::rename(&old, &self.real);
                }
                return Err(io(
                    format!("renaming the new output {} to", self.tmp.display()),
                    &self.real,
                )(e));
            }
            self.committed = true;
            if !aside {
                return Ok(());
            }
        }
        // The new output is in place: a failure to remove the earlier one only leaves it
        // beside it, and the next run removes it.
        let _ = std::fs::remove_dir_all(&old);
        Ok(())
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_dir_all(&self.tmp);
        }
    }
}

/// Tidy up after earlier runs stopped mid-way (caller holds the lock, so none of them is
/// still running): an earlier output renamed aside while `real` is missing is put back,
/// every other `.old-` and every `.tmp-` sibling of `name` is removed.
fn tidy(parent: &Path, name: &OsStr, real: &Path) -> Result<(), Error> {
    let mut olds = Vec::new();
    let mut tmps = Vec::new();
    for entry in std::fs::read_dir(parent).map_err(io("reading", parent))? {
        let entry = entry.map_err(io("reading", parent))?.file_name();
        if is_sibling(&entry, name, OLD) {
            olds.push(parent.join(entry));
        } else if is_sibling(&entry, name, TMP) {
            tmps.push(parent.join(entry));
        }
    }
    if !exists(real) {
        match olds.len() {
            0 => {}
            1 => {
                let old = olds.remove(0);
                std::fs::rename(&old, real).map_err(io(
                    format!("putting back the earlier output {} as", old.display()),
                    real,
                ))?;
            }
            // Never seen under the lock; which one is the latest is unknown, so all stay.
            _ => olds.clear(),
        }
    }
    for dir in olds.iter().chain(&tmps) {
        remove_dir(dir)?;
    }
    Ok(())
}

/// Hold off every [`Staging`] of a sibling of `dir` (the lock, shared, on its parent
/// directory) while the guard lives, so that reading the files of the output directory
/// `dir` never straddles a swap and sees files of two runs. `None` where the lock cannot
/// be taken (see the module doc). Take it only around the reading itself: a [`Staging`]
/// of the same parent in the same thread would wait for it forever.
pub fn hold_for_reading(dir: &Path) -> Option<File> {
    let real = std::fs::canonicalize(dir).ok()?;
    File::open(real.parent()?)
        .ok()
        .filter(|f| f.lock_shared().is_ok())
}

/// Whether `path` is a file whose first bytes are `prefix`.
pub fn starts_with(path: &Path, prefix: &[u8]) -> bool {
    let mut head = vec![0; prefix.len()];
    File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok_and(|()| head == prefix)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdata::dir_entries as names;

    const KIND: Kind = Kind {
        what: "thing",
        is_earlier: |dir| dir.join("thing.txt").is_file(),
    };

    fn write(path: &Path, text: &str) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    /// Every entry under `dir` with its bytes (directories as `None`), sorted.
    fn tree(dir: &Path) -> Vec<(String, Option<Vec<u8>>)> {
        let mut out = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                let rel = p.strip_prefix(dir).unwrap().display().to_string();
                if p.is_dir() {
                    out.push((rel, None));
                    stack.push(p);
                } else {
                    out.push((rel, Some(std::fs::read(&p).unwrap())));
                }
            }
        }
        out.sort();
        out
    }

    fn entry(path: &str, text: &str) -> (String, Option<Vec<u8>>) {
        (path.to_string(), Some(text.as_bytes().to_vec()))
    }

    #[test]
    fn a_commit_replaces_the_directory_whole_and_leaves_nothing_beside_it() {
        let root = tempfile::tempdir().unwrap();
        let out = root.path().join("out");
        write(&out.join("thing.txt"), "earlier");
        write(&out.join("only-earlier.txt"), "stale");
        let s = Staging::begin(&out, KIND).unwrap();
        assert_eq!(
            s.dir(),
            root.path()
                .canonicalize()
                .unwrap()
                .join(format!(".out.tmp-{}", std::process::id()))
        );
        write(&s.dir().join("thing.txt"), "new");
        write(&s.dir().join("sub/x.txt"), "x");
        // Until the commit, the earlier output is untouched.
        assert_eq!(
            tree(&out),
            [
                entry("only-earlier.txt", "stale"),
                entry("thing.txt", "earlier")
            ]
        );
        s.commit().unwrap();
        assert_eq!(
            tree(&out),
            [
                ("sub".to_string(), None),
                entry("sub/x.txt", "x"),
                entry("thing.txt", "new")
            ]
        );
        assert_eq!(names(root.path()), ["out"]);
    }

    #[test]
    fn a_missing_directory_and_its_parents_are_created_and_an_empty_one_is_replaced() {
        let root = tempfile::tempdir().unwrap();
        let out = root.path().join("a/b/out");
        let s = Staging::begin(&out, KIND).unwrap();
        write(&s.dir().join("thing.txt"), "1");
        s.commit().unwrap();
        assert_eq!(tree(&out), [entry("thing.txt", "1")]);
        assert_eq!(names(&root.path().join("a/b")), ["out"]);

        let empty = root.path().join("empty");
        std::fs::create_dir(&empty).unwrap();
        let s = Staging::begin(&empty, KIND).unwrap();
        write(&s.dir().join("thing.txt"), "2");
        s.commit().unwrap();
        assert_eq!(tree(&empty), [entry("thing.txt", "2")]);
    }

    #[test]
    fn dropped_without_a_commit_the_earlier_output_is_as_it_was_and_nothing_is_left() {
        let root = tempfile::tempdir().unwrap();
        let out = root.path().join("out");
        write(&out.join("thing.txt"), "earlier");
        let before = tree(&out);
        // An error half-way.
        let s = Staging::begin(&out, KIND).unwrap();
        write(&s.dir().join("thing.txt"), "half");
        drop(s);
        assert_eq!(tree(&out), before);
        assert_eq!(names(root.path()), ["out"]);
        // A panic half-way.
        let caught = std::panic::catch_unwind(|| {
            let s = Staging::begin(&out, KIND).unwrap();
            write(&s.dir().join("thing.txt"), "half");
            panic!("half-way");
        });
        assert!(caught.is_err());
        assert_eq!(tree(&out), before);
        assert_eq!(names(root.path()), ["out"]);
        // With no earlier output, none is left either.
        let fresh = root.path().join("fresh");
        drop(Staging::begin(&fresh, KIND).unwrap());
        assert_eq!(names(root.path()), ["out"]);
    }

    #[test]
    fn what_an_earlier_stopped_run_left_is_tidied_by_the_next_one() {
        let root = tempfile::tempdir().unwrap();
        let out = root.path().join("out");
        // Stopped while writing: an unfinished temporary directory (another pid).
        write(&out.join("thing.txt"), "earlier");
        write(&root.path().join(".out.tmp-12345/thing.txt"), "unfinished");
        // Stopped after the swap: the earlier output not yet removed.
        write(&root.path().join(".out.old-23456/thing.txt"), "older");
        // Look-alikes that are not vuf's stay.
        write(&root.path().join(".out.tmp-notes/a.txt"), "mine");
        write(&root.path().join(".other.tmp-1/a.txt"), "mine");
        let s = Staging::begin(&out, KIND).unwrap();
        let mut left = vec![
            ".other.tmp-1".to_string(),
            ".out.tmp-notes".into(),
            format!(".out.tmp-{}", std::process::id()),
            "out".into(),
        ];
        left.sort();
        assert_eq!(names(root.path()), left);
        write(&s.dir().join("thing.txt"), "new");
        s.commit().unwrap();
        assert_eq!(tree(&out), [entry("thing.txt", "new")]);
        assert_eq!(
            names(root.path()),
            [".other.tmp-1", ".out.tmp-notes", "out"]
        );
    }

    #[test]
    fn an_earlier_output_renamed_aside_by_a_stopped_swap_is_put_back() {
        let root = tempfile::tempdir().unwrap();
        let out = root.path().join("out");
        // Stopped between the two renames: no `out`, the earlier one aside, the new one
        // still in its temporary directory.
        write(&root.path().join(".out.old-777/thing.txt"), "earlier");
        write(&root.path().join(".out.tmp-777/thing.txt"), "new, whole");
        let s = Staging::begin(&out, KIND).unwrap();
        assert_eq!(tree(&out), [entry("thing.txt", "earlier")]);
        // An error now leaves the earlier output in place, and nothing beside it.
        drop(s);
        assert_eq!(tree(&out), [entry("thing.txt", "earlier")]);
        assert_eq!(names(root.path()), ["out"]);
    }

    #[test]
    fn a_directory_that_is_not_an_earlier_output_is_refused_and_left_alone() {
        let root = tempfile::tempdir().unwrap();
        let papers = root.path().join("papers");
        for f in ["a.md", "b.md", "c.md", "d.md"] {
            write(&papers.join(f), f);
        }
        let before = tree(&papers);
        let e = Staging::begin(&papers, KIND).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "{} holds files that are not a vuf thing (a.md, b.md, c.md, ... (4 entries)): \
                 vuf replaces its thing directory whole, so it writes only into a new or empty \
                 directory or over an earlier vuf thing; write it elsewhere, or move those files away",
                papers.display()
            )
        );
        assert_eq!(tree(&papers), before);
        assert_eq!(names(root.path()), ["papers"]);

        let file = root.path().join("file");
        write(&file, "x");
        let e = Staging::begin(&file, KIND).unwrap_err();
        assert!(matches!(e, Error::NotADirectory { .. }), "{e}");
        assert_eq!(std::fs::read(&file).unwrap(), b"x");

        let e = Staging::begin(Path::new("/"), KIND).unwrap_err();
        assert!(matches!(e, Error::NoParent { .. }), "{e}");
    }

    #[cfg(unix)]
    #[test]
    fn a_linked_output_directory_is_replaced_where_the_link_points() {
        let root = tempfile::tempdir().unwrap();
        let real = root.path().join("disk/out");
        write(&real.join("thing.txt"), "earlier");
        let link = root.path().join("out");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let s = Staging::begin(&link, KIND).unwrap();
        write(&s.dir().join("thing.txt"), "new");
        s.commit().unwrap();
        assert!(std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(tree(&real), [entry("thing.txt", "new")]);
        assert_eq!(names(&root.path().join("disk")), ["out"]);
    }

    #[test]
    fn a_second_writer_of_the_same_directory_waits_for_the_first() {
        let root = tempfile::tempdir().unwrap();
        let out = root.path().join("out");
        let first = Staging::begin(&out, KIND).unwrap();
        write(&first.dir().join("thing.txt"), "first");
        let (tx, rx) = std::sync::mpsc::channel();
        let waiter = {
            let out = out.clone();
            std::thread::spawn(move || {
                let second = Staging::begin(&out, KIND).unwrap();
                tx.send(()).unwrap();
                write(&second.dir().join("thing.txt"), "second");
                second.commit().unwrap();
            })
        };
        // The second has not started while the first holds the directory (had it, its
        // tidying would have removed the first's temporary directory).
        assert!(rx
            .recv_timeout(std::time::Duration::from_millis(300))
            .is_err());
        assert!(first.dir().join("thing.txt").is_file());
        first.commit().unwrap();
        waiter.join().unwrap();
        assert_eq!(tree(&out), [entry("thing.txt", "second")]);
        assert_eq!(names(root.path()), ["out"]);
    }

    #[test]
    fn a_reader_of_the_directory_waits_for_a_swap_and_sees_one_run_whole() {
        let root = tempfile::tempdir().unwrap();
        let out = root.path().join("out");
        write(&out.join("thing.txt"), "1");
        write(&out.join("other.txt"), "1");
        let writer = Staging::begin(&out, KIND).unwrap();
        write(&writer.dir().join("thing.txt"), "2");
        let (tx, rx) = std::sync::mpsc::channel();
        let reader = {
            let out = out.clone();
            std::thread::spawn(move || {
                let _reading = hold_for_reading(&out).expect("lock");
                tx.send(()).unwrap();
                let a = std::fs::read_to_string(out.join("thing.txt")).unwrap();
                std::thread::sleep(std::time::Duration::from_millis(100));
                let b = std::fs::read_to_string(out.join("other.txt")).unwrap_or_default();
                (a, b)
            })
        };
        assert!(rx
            .recv_timeout(std::time::Duration::from_millis(300))
            .is_err());
        writer.commit().unwrap();
        rx.recv().unwrap();
        // The new run only: `other.txt` went with the earlier one.
        assert_eq!(reader.join().unwrap(), ("2".to_string(), String::new()));
        // While a reader holds it, a writer waits.
        let _reading = hold_for_reading(&out).expect("lock");
        let writer = std::thread::spawn(move || {
            let s = Staging::begin(&out, KIND).unwrap();
            write(&s.dir().join("thing.txt"), "3");
            s.commit().unwrap();
            std::fs::read_to_string(out.join("thing.txt")).unwrap()
        });
        std::thread::sleep(std::time::Duration::from_millis(200));
        assert!(!writer.is_finished());
        drop(_reading);
        assert_eq!(writer.join().unwrap(), "3");
    }

    #[test]
    fn sibling_names_match_only_a_tag_and_a_pid() {
        let n = OsStr::new("analysis");
        assert!(is_sibling(OsStr::new(".analysis.tmp-42"), n, TMP));
        assert!(is_sibling(OsStr::new(".analysis.old-7"), n, OLD));
        for other in [
            ".analysis.tmp-",
            ".analysis.tmp-4x",
            ".analysis.tmp42",
            "analysis.tmp-42",
            ".analysis2.tmp-42",
            ".analysis.old-42",
        ] {
            assert!(!is_sibling(OsStr::new(other), n, TMP), "{other}");
        }
        assert_eq!(
            temp_name(Path::new("s/analysis")).unwrap(),
            OsString::from(format!(".analysis.tmp-{}", std::process::id()))
        );
    }
}
