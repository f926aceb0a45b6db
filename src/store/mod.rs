//! The study store: one embedded SQLite file per study directory (`vuf.sqlite`).
//!
//! Owns every SQL statement in vuf, the numbered migrations and the transactions.
//! Everything collected or imported is kept here, valid or not, with its original
//! payload, so nothing is ever lost and every later stage can be recomputed. Must not
//! know about providers, HTTP, statistics or rendering.

pub mod attempts;
pub mod coded;
pub mod codes;
pub mod formats;
pub mod imports;
mod migrate;
pub mod models;
pub mod runs;
pub mod samples;

use std::path::{Path, PathBuf};

use rusqlite::Connection;

pub use migrate::MIGRATIONS;

/// File name of the store inside a study directory.
pub const STORE_FILE: &str = "vuf.sqlite";

/// Store errors. Each names what it was doing.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// SQLite failed.
    #[error("store: {0}")]
    Sql(#[from] rusqlite::Error),
    /// File-system failure around the store.
    #[error("store: {path}: {source}")]
    Io {
        /// Path involved.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// A stored value breaks an invariant the schema cannot express.
    #[error("store: corrupt row: {0}")]
    Corrupt(String),
    /// The store was written by a newer vuf.
    #[error(
        "store schema version {found} is newer than this vuf supports ({supported}); upgrade vuf"
    )]
    SchemaTooNew {
        /// Version found in the file.
        found: i64,
        /// Latest version this build knows.
        supported: i64,
    },
}

/// A read-only connection to a store file; it never writes, not even a pragma.
fn read_only(path: &Path) -> Result<Connection, Error> {
    let conn = Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(std::time::Duration::from_secs(30))?;
    Ok(conn)
}

/// An open study store.
pub struct Store {
    conn: Connection,
    path: Option<PathBuf>,
}

impl Store {
    /// Open (creating if needed) the store of a study directory and migrate it.
    pub fn open(study_dir: &Path) -> Result<Store, Error> {
        std::fs::create_dir_all(study_dir).map_err(|source| Error::Io {
            path: study_dir.to_path_buf(),
            source,
        })?;
        let path = study_dir.join(STORE_FILE);
        let mut conn = Connection::open(&path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(30))?;
        migrate::migrate(&mut conn)?;
        models::seed_if_empty(&conn)?;
        Ok(Store {
            conn,
            path: Some(path),
        })
    }

    /// Open an existing store for reading only: no pragma that writes, no migration, so
    /// looking (`vuf status`, the interrupt report) works on a read-only file and never
    /// changes it. `None` when the store needs a migration first (any writing command
    /// does that) or cannot be opened this way.
    pub fn open_read_only(study_dir: &Path) -> Result<Option<Store>, Error> {
        let path = study_dir.join(STORE_FILE);
        let Ok(conn) = read_only(&path) else {
            return Ok(None);
        };
        let Ok(version) = conn.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0)) else {
            return Ok(None);
        };
        let latest = migrate::MIGRATIONS.len() as i64;
        if version > latest {
            return Err(Error::SchemaTooNew {
                found: version,
                supported: latest,
            });
        }
        Ok((version == latest).then_some(Store {
            conn,
            path: Some(path),
        }))
    }

    /// A throw-away in-memory store (tests).
    pub fn open_in_memory() -> Result<Store, Error> {
        let mut conn = Connection::open_in_memory()?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        migrate::migrate(&mut conn)?;
        models::seed_if_empty(&conn)?;
        Ok(Store { conn, path: None })
    }

    /// Path of the database file (`None` in memory).
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// A second, read-only connection to the same file, for reading on another thread
    /// (`None` for an in-memory store). It sees what was committed when it reads.
    pub fn reader(&self) -> Result<Option<Connection>, Error> {
        let Some(path) = &self.path else {
            return Ok(None);
        };
        Ok(Some(read_only(path)?))
    }

    /// The connection, for the typed query modules of this crate.
    pub fn conn(&self) -> &Connection {
        &self.conn
    }

    /// Whether the store holds nothing but what opening a new store writes (the schema
    /// and the paper's model table): no sample, attempt, run, import, code or metadata row
    /// of anyone's. Only such a store may be removed by a command that created it and then
    /// failed.
    pub fn holds_nothing(&self) -> Result<bool, Error> {
        let tables: Vec<String> = self
            .conn
            .prepare(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
            )?
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        for table in tables {
            let sql = if table == "models" {
                format!(
                    "SELECT EXISTS (SELECT 1 FROM models WHERE origin <> '{}')",
                    models::PAPER_ORIGIN
                )
            } else {
                format!(
                    "SELECT EXISTS (SELECT 1 FROM \"{}\")",
                    table.replace('"', "\"\"")
                )
            };
            let any: bool = self.conn.query_row(&sql, [], |r| r.get(0))?;
            if any {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Run `f` in one transaction: all of it lands, or none of it.
    pub fn transaction<T, E>(
        &mut self,
        f: impl FnOnce(&rusqlite::Transaction) -> Result<T, E>,
    ) -> Result<T, E>
    where
        E: From<rusqlite::Error>,
    {
        let tx = self.conn.transaction()?;
        let out = f(&tx)?;
        tx.commit()?;
        Ok(out)
    }
}

/// Current UTC time as `YYYY-MM-DDTHH:MM:SSZ` (no time-zone crate needed for a timestamp).
pub fn now_utc() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    format_utc(secs)
}

/// Format seconds since the Unix epoch as an ISO 8601 UTC timestamp.
fn format_utc(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil-from-days (proleptic Gregorian), after H. Hinnant's public-domain algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Lower-case hex SHA-256 of some bytes (content hashes and provenance).
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(bytes);
    let mut out = String::with_capacity(64);
    for b in digest {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_format() {
        assert_eq!(format_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(format_utc(1_779_000_000), "2026-05-17T06:40:00Z");
    }

    #[test]
    fn sha() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
