//! Runs (`runs` table): one row per pipeline or collection run, opened when it starts
//! and closed with a status, so an interrupted run is visible as `running`.

use rusqlite::{params, Connection};

use super::Error;

/// A run as stored.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Run {
    /// Row id.
    pub id: i64,
    /// Command (`run`, `collect`, ...).
    pub command: String,
    /// Start time (UTC ISO 8601).
    pub started_at: String,
    /// End time, once finished.
    pub finished_at: Option<String>,
    /// `running`, `ok`, `failed`, ...
    pub status: String,
    /// Free-form JSON detail.
    pub detail_json: Option<String>,
}

/// Open a run; returns its id.
pub fn start_run(
    conn: &Connection,
    command: &str,
    detail_json: Option<&str>,
) -> Result<i64, Error> {
    conn.execute(
        "INSERT INTO runs (command, started_at, status, detail_json) VALUES (?1, ?2, 'running', ?3)",
        params![command, super::now_utc(), detail_json],
    )?;
    Ok(conn.last_insert_rowid())
}

/// Close a run with a status and (optionally) replace its detail.
pub fn finish_run(
    conn: &Connection,
    id: i64,
    status: &str,
    detail_json: Option<&str>,
) -> Result<(), Error> {
    conn.execute(
        "UPDATE runs SET finished_at = ?2, status = ?3, detail_json = COALESCE(?4, detail_json) WHERE id = ?1",
        params![id, super::now_utc(), status, detail_json],
    )?;
    Ok(())
}

/// All runs, oldest first.
pub fn list_runs(conn: &Connection) -> Result<Vec<Run>, Error> {
    let mut stmt = conn.prepare(
        "SELECT id, command, started_at, finished_at, status, detail_json FROM runs ORDER BY id",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(Run {
            id: r.get(0)?,
            command: r.get(1)?,
            started_at: r.get(2)?,
            finished_at: r.get(3)?,
            status: r.get(4)?,
            detail_json: r.get(5)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    #[test]
    fn run_lifecycle() {
        let st = Store::open_in_memory().unwrap();
        let id = start_run(st.conn(), "run", None).unwrap();
        finish_run(st.conn(), id, "ok", Some("{\"samples\":3}")).unwrap();
        let runs = list_runs(st.conn()).unwrap();
        assert_eq!(runs.len(), 1);
        assert_eq!(runs[0].status, "ok");
        assert_eq!(runs[0].detail_json.as_deref(), Some("{\"samples\":3}"));
    }
}
