//! Numbered schema migrations, applied in order, each in its own transaction, with the
//! version kept in `PRAGMA user_version`. A store written by an older vuf is brought
//! forward on open; a store from a newer vuf is refused rather than misread.

use rusqlite::Connection;

use super::Error;

/// Every migration, in order. Index + 1 is the schema version it produces.
pub const MIGRATIONS: &[(&str, &str)] = &[
    ("0001_core", include_str!("migrations/0001_core.sql")),
    ("0002_codes", include_str!("migrations/0002_codes.sql")),
    ("0003_collect", include_str!("migrations/0003_collect.sql")),
    (
        "0004_coder_skips",
        include_str!("migrations/0004_coder_skips.sql"),
    ),
    (
        "0005_payloads",
        include_str!("migrations/0005_payloads.sql"),
    ),
];

/// The schema version in which raw payloads moved to their own table.
const PAYLOADS_MOVED: i64 = 5;

/// Bring the database up to the latest schema.
pub fn migrate(conn: &mut Connection) -> Result<(), Error> {
    let current: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let latest = MIGRATIONS.len() as i64;
    if current > latest {
        return Err(Error::SchemaTooNew {
            found: current,
            supported: latest,
        });
    }
    for (i, (_name, sql)) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
    }
    // 0005 rewrites the samples table without its payload column; the old pages would stay
    // in the file as free pages, doubling a corpus store's size until a VACUUM.
    if (1..PAYLOADS_MOVED).contains(&current) {
        conn.execute_batch("VACUUM")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrates_from_every_older_version() {
        for start in 0..MIGRATIONS.len() {
            let mut conn = Connection::open_in_memory().unwrap();
            for (i, (_, sql)) in MIGRATIONS.iter().enumerate().take(start) {
                conn.execute_batch(sql).unwrap();
                conn.pragma_update(None, "user_version", (i + 1) as i64)
                    .unwrap();
            }
            migrate(&mut conn).unwrap();
            let v: i64 = conn
                .query_row("PRAGMA user_version", [], |r| r.get(0))
                .unwrap();
            assert_eq!(v, MIGRATIONS.len() as i64);
        }
    }

    #[test]
    fn refuses_newer_schema() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "user_version", 999).unwrap();
        assert!(matches!(
            migrate(&mut conn),
            Err(Error::SchemaTooNew { .. })
        ));
    }
}
