//! The study store: one embedded SQLite file per study directory (`vuf.sqlite`).
//!
//! Owns every SQL statement in vuf, the numbered migrations and the transactions.
//! Everything collected or imported is kept here, valid or not, with its original
//! payload, so nothing is ever lost and every later stage can be recomputed. Must not
//! know about providers, HTTP, statistics or rendering.

pub mod attempts;
mod migrate;

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
    /// The store was written by a newer vuf.
    #[error("store schema version {found} is newer than this vuf supports ({supported}); upgrade vuf")]
    SchemaTooNew {
        /// Version found in the file.
        found: i64,
        /// Latest version this build knows.
        supported: i64,
    },
}

/// An open study store.
pub struct Store {
    conn: Connection,
    path: Option<PathBuf>,
}

impl Store {
    /// Open (creating if needed) the store of a study directory and migrate it.
    pub fn open(study_dir: &Path) -> Result<Store, Error> {
        std::fs::create_dir_all(study_dir).map_err(|source| Error::Io { path: study_dir.to_path_buf(), source })?;
        let path = study_dir.join(STORE_FILE);
        let mut conn = Connection::open(&path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(30))?;
        migrate::migrate(&mut conn)?;
        Ok(Store { conn, path: Some(path) })
    }

    /// A throw-away in-memory store (tests).
    pub fn open_in_memory() -> Result<Store, Error> {
        let mut conn = Connection::open_in_memory()?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        migrate::migrate(&mut conn)?;
        Ok(Store { conn, path: None })
    }

    /// Path of the database file (`None` in memory).
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The connection, for the typed query modules of this crate.
    pub(crate) fn conn(&self) -> &Connection {
        &self.conn
    }

    /// Run `f` in one transaction: all of it lands, or none of it.
    pub fn transaction<T, E>(&mut self, f: impl FnOnce(&rusqlite::Transaction) -> Result<T, E>) -> Result<T, E>
    where
        E: From<rusqlite::Error>,
    {
        let tx = self.conn.transaction()?;
        let out = f(&tx)?;
        tx.commit()?;
        Ok(out)
    }
}
