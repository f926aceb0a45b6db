//! Import provenance (`import_files`): one row per distinct imported content (path,
//! format, SHA-256), so re-importing the same file adds nothing.

use rusqlite::{params, Connection, Transaction};

use super::Error;

/// One provenance row.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ImportFile {
    /// Path as given (file or directory).
    pub path: String,
    /// Format name (`traces`, `website`, `manifest`, `models`).
    pub format: String,
    /// SHA-256 of the content (for a directory: of its files' hashes in import order).
    pub sha256: String,
    /// Rows/files read successfully.
    pub rows: u64,
    /// Entries skipped on purpose (e.g. freeflow samples).
    pub skipped: u64,
    /// Malformed entries reported.
    pub errors: u64,
    /// When first imported.
    pub imported_at: String,
}

/// Record an import unless the same (path, format, sha256) is already recorded.
/// Returns whether a row was added.
pub fn record_import(tx: &Transaction, f: &ImportFile) -> Result<bool, Error> {
    let n = tx
        .prepare_cached(
            "INSERT INTO import_files (path, format, sha256, rows, skipped, errors, imported_at)
             SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7
             WHERE NOT EXISTS (SELECT 1 FROM import_files WHERE path = ?1 AND format = ?2 AND sha256 = ?3)",
        )?
        .execute(params![
            f.path,
            f.format,
            f.sha256,
            f.rows as i64,
            f.skipped as i64,
            f.errors as i64,
            f.imported_at
        ])?;
    Ok(n > 0)
}

/// Every provenance row, oldest first.
pub fn list_imports(conn: &Connection) -> Result<Vec<ImportFile>, Error> {
    let mut stmt =
        conn.prepare("SELECT path, format, sha256, rows, skipped, errors, imported_at FROM import_files ORDER BY id")?;
    let rows = stmt.query_map([], |r| {
        Ok(ImportFile {
            path: r.get(0)?,
            format: r.get(1)?,
            sha256: r.get(2)?,
            rows: r.get::<_, i64>(3)? as u64,
            skipped: r.get::<_, i64>(4)? as u64,
            errors: r.get::<_, i64>(5)? as u64,
            imported_at: r.get(6)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}
