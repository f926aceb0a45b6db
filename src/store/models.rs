//! Model metadata (`models` table): display name, lab, family, release date per
//! canonical model (PROTOCOL 7.2, Appendix A).
//!
//! A fresh store is seeded with the paper's table from [`crate::protocol::models`], so
//! lab assignment works with no metadata file; an imported `models.json` then overrides
//! entries model by model (its `origin` says where each row came from).

use rusqlite::{params, Connection, OptionalExtension, Transaction};

use super::Error;
use crate::protocol::models::paper_metadata;

/// `origin` of the embedded paper rows.
pub const PAPER_ORIGIN: &str = "paper";

/// One metadata row; `None` fields are unknown.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ModelRow {
    /// Canonical model key.
    pub model: String,
    /// Display name.
    pub display_name: Option<String>,
    /// Lab as recorded (may be `Unknown`; lab rules apply on top).
    pub lab: Option<String>,
    /// Website family.
    pub family: Option<String>,
    /// ISO release date.
    pub release_date: Option<String>,
    /// Provenance (`paper`, `models.json:<path>`).
    pub origin: String,
}

/// Seed the paper metadata when the table is empty (first open).
pub fn seed_if_empty(conn: &Connection) -> Result<(), Error> {
    let n: i64 = conn.query_row("SELECT COUNT(*) FROM models", [], |r| r.get(0))?;
    if n > 0 {
        return Ok(());
    }
    conn.execute_batch("BEGIN")?;
    let res = (|| -> Result<(), Error> {
        let mut stmt = conn.prepare(
            "INSERT INTO models (model, display_name, lab, family, release_date, origin) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        for m in paper_metadata() {
            let date = (!m.release_date.is_empty()).then_some(m.release_date);
            stmt.execute(params![
                m.model,
                m.display_name,
                m.lab,
                m.family,
                date,
                PAPER_ORIGIN
            ])?;
        }
        Ok(())
    })();
    match res {
        Ok(()) => conn.execute_batch("COMMIT")?,
        Err(e) => {
            conn.execute_batch("ROLLBACK")?;
            return Err(e);
        }
    }
    Ok(())
}

/// What [`upsert_model`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upsert {
    /// A new row (or the first file row over the built-in seed of the paper's models).
    Inserted,
    /// A row from an earlier import or run, now different.
    Replaced,
    /// The same row was already stored.
    Unchanged,
}

/// Write one row (replacing any row of that model), and say which it was.
pub fn upsert_model(tx: &Transaction, m: &ModelRow) -> Result<Upsert, Error> {
    let current = get_model_tx(tx, &m.model)?;
    let outcome = match &current {
        Some(c) if c == m => return Ok(Upsert::Unchanged),
        Some(c) if c.origin != PAPER_ORIGIN => Upsert::Replaced,
        _ => Upsert::Inserted,
    };
    tx.prepare_cached(
        "INSERT INTO models (model, display_name, lab, family, release_date, origin) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT(model) DO UPDATE SET display_name = ?2, lab = ?3, family = ?4, release_date = ?5, origin = ?6",
    )?
    .execute(params![m.model, m.display_name, m.lab, m.family, m.release_date, m.origin])?;
    Ok(outcome)
}

fn get_model_tx(conn: &Connection, model: &str) -> Result<Option<ModelRow>, Error> {
    Ok(conn
        .prepare_cached("SELECT model, display_name, lab, family, release_date, origin FROM models WHERE model = ?1")?
        .query_row([model], row)
        .optional()?)
}

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ModelRow> {
    Ok(ModelRow {
        model: r.get(0)?,
        display_name: r.get(1)?,
        lab: r.get(2)?,
        family: r.get(3)?,
        release_date: r.get(4)?,
        origin: r.get(5)?,
    })
}

/// Metadata of one canonical model.
pub fn get_model(conn: &Connection, model: &str) -> Result<Option<ModelRow>, Error> {
    get_model_tx(conn, model)
}

/// Every metadata row, by model key.
pub fn all_models(conn: &Connection) -> Result<Vec<ModelRow>, Error> {
    let mut stmt = conn.prepare(
        "SELECT model, display_name, lab, family, release_date, origin FROM models ORDER BY model",
    )?;
    let rows = stmt.query_map([], row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    #[test]
    fn seeded_and_overridden() {
        let mut st = Store::open_in_memory().unwrap();
        let all = all_models(st.conn()).unwrap();
        assert_eq!(
            all.len(),
            crate::protocol::models::PAPER_MODEL_METADATA.len()
        );
        let glm = get_model(st.conn(), "glm-5-1").unwrap().unwrap();
        assert_eq!(glm.lab.as_deref(), Some("Z.ai"));
        assert_eq!(glm.origin, PAPER_ORIGIN);
        let new = ModelRow {
            model: "glm-5-1".into(),
            display_name: Some("GLM 5.1".into()),
            lab: Some("Z.ai".into()),
            family: Some("glm".into()),
            release_date: None,
            origin: "models.json:x".into(),
        };
        // Over the built-in seed: the first file row counts as inserted.
        assert_eq!(
            st.transaction(|tx| upsert_model(tx, &new)).unwrap(),
            Upsert::Inserted
        );
        assert_eq!(
            st.transaction(|tx| upsert_model(tx, &new)).unwrap(),
            Upsert::Unchanged
        );
        assert_eq!(get_model(st.conn(), "glm-5-1").unwrap().unwrap(), new);
        // A changed row from a file replaces the earlier file's.
        let newer = ModelRow {
            display_name: Some("GLM-5.1".into()),
            ..new.clone()
        };
        assert_eq!(
            st.transaction(|tx| upsert_model(tx, &newer)).unwrap(),
            Upsert::Replaced
        );
        seed_if_empty(st.conn()).unwrap();
        assert_eq!(get_model(st.conn(), "glm-5-1").unwrap().unwrap(), newer);
    }
}
