//! The report table: saved reports (what was asked, as JSON of `model::reports::ReportSpec`)
//! and, for closed ranges, their computed sections (JSON), written once. Writes go through the
//! writer thread ([`ReportWrite`], answered: creating a report needs its id); reads run on the
//! read connections.

use rusqlite::{params, Connection, OptionalExtension};

use crate::model::reports::{ReportInfo, ReportSpec, Section};

/// Most reports kept; creating one more is refused until one is deleted.
pub const MAX_REPORTS: u64 = 1_000;

/// One change to the report table.
#[derive(Clone, Debug)]
pub enum ReportWrite {
    /// A new report; answers its id (0 when [`MAX_REPORTS`] are kept already), never one a
    /// deleted report had (schema version 8), so what was computed for that one cannot reach it.
    Insert { spec: Box<ReportSpec>, created_ms: u64 },
    /// One computed section of a closed report, merged into its saved sections; answers the
    /// rows changed. The writer applies writes one at a time, so sections of one report saved
    /// at once (the page loads several together) all stay.
    SaveSection { id: u64, section: Box<Section> },
    /// Answers the rows deleted (0: no such report).
    Delete { id: u64 },
}

/// Applies `write` on the writer's connection; what it answers (see [`ReportWrite`]).
pub(super) fn apply(conn: &Connection, write: &ReportWrite) -> rusqlite::Result<u64> {
    match write {
        ReportWrite::Insert { spec, created_ms } => {
            let kept: i64 = conn.query_row("SELECT count(*) FROM report", [], |r| r.get(0))?;
            if kept.max(0) as u64 >= MAX_REPORTS {
                return Ok(0);
            }
            let body = serde_json::to_string(spec).unwrap_or_default();
            conn.execute(
                "INSERT INTO report (name, spec, created_ms) VALUES (?1, ?2, ?3)",
                params![spec.name, body, *created_ms as i64],
            )?;
            Ok(conn.last_insert_rowid().max(0) as u64)
        }
        ReportWrite::SaveSection { id, section } => {
            let id = (*id).min(i64::MAX as u64) as i64;
            let saved: Option<Option<String>> = conn
                .prepare_cached("SELECT sections FROM report WHERE id = ?1")?
                .query_row([id], |r| r.get(0))
                .optional()?;
            let Some(saved) = saved else { return Ok(0) };
            let mut all: Vec<Section> =
                saved.and_then(|s| serde_json::from_str(&s).ok()).unwrap_or_default();
            all.retain(|s| s.id != section.id);
            all.push((**section).clone());
            all.sort_by_key(|s| s.id);
            let Ok(body) = serde_json::to_string(&all) else { return Ok(0) };
            let changed = conn.execute(
                "UPDATE report SET sections = ?2, size_bytes = ?3 WHERE id = ?1",
                params![id, body, body.len() as i64],
            )?;
            Ok(changed as u64)
        }
        ReportWrite::Delete { id } => {
            Ok(conn.execute("DELETE FROM report WHERE id = ?1", [*id as i64])? as u64)
        }
    }
}

fn info_from(row: &rusqlite::Row<'_>) -> rusqlite::Result<Option<ReportInfo>> {
    let (id, spec, created, size): (i64, String, i64, i64) =
        (row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?);
    let Ok(spec) = serde_json::from_str::<ReportSpec>(&spec) else {
        tracing::warn!(id, "A stored report could not be read; it is left out.");
        return Ok(None);
    };
    Ok(Some(ReportInfo {
        id: id.max(0) as u64,
        spec,
        created_ms: created.max(0) as u64,
        size_bytes: size.max(0) as u64,
    }))
}

/// Every saved report, newest first.
pub fn list(conn: &Connection) -> rusqlite::Result<Vec<ReportInfo>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, spec, created_ms, size_bytes FROM report ORDER BY id DESC LIMIT ?1",
    )?;
    let mut rows = stmt.query([MAX_REPORTS as i64])?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.extend(info_from(row)?);
    }
    Ok(out)
}

/// One report, without reading its saved sections.
pub fn info(conn: &Connection, id: u64) -> rusqlite::Result<Option<ReportInfo>> {
    Ok(conn
        .prepare_cached("SELECT id, spec, created_ms, size_bytes FROM report WHERE id = ?1")?
        .query_row([id.min(i64::MAX as u64) as i64], info_from)
        .optional()?
        .flatten())
}

/// One report and its saved sections (closed reports once computed).
pub fn get(conn: &Connection, id: u64) -> rusqlite::Result<Option<(ReportInfo, Vec<Section>)>> {
    let found = conn
        .prepare_cached(
            "SELECT id, spec, created_ms, size_bytes, sections FROM report WHERE id = ?1",
        )?
        .query_row([id.min(i64::MAX as u64) as i64], |row| {
            let sections: Option<String> = row.get(4)?;
            Ok((info_from(row)?, sections))
        })
        .optional()?;
    Ok(found.and_then(|(info, sections)| {
        let sections = sections
            .and_then(|s| serde_json::from_str::<Vec<Section>>(&s).ok())
            .unwrap_or_default();
        info.map(|info| (info, sections))
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::history::Tier;
    use crate::model::reports::{Scope, SectionBody, SectionId};

    /// A database at schema `version` (the latest: `None`).
    fn at_version(version: Option<usize>) -> Connection {
        let sql = super::super::schema::sql();
        let mut conn = Connection::open_in_memory().unwrap();
        let migrations = super::super::schema::migrations(&sql);
        match version {
            Some(v) => migrations.to_version(&mut conn, v).unwrap(),
            None => migrations.to_latest(&mut conn).unwrap(),
        }
        conn
    }

    fn spec(name: &str) -> ReportSpec {
        ReportSpec {
            name: name.into(),
            from_ms: 0,
            to_ms: 1,
            live_ms: None,
            scope: Scope::default(),
            baseline: None,
            apdex_t_ms: 500.0,
        }
    }

    fn insert(name: &str) -> ReportWrite {
        ReportWrite::Insert { spec: Box::new(spec(name)), created_ms: 1 }
    }

    fn save(id: u64, note: &str) -> ReportWrite {
        let section = Section {
            id: SectionId::Summary,
            from_ms: 0,
            to_ms: 1,
            tier: Tier::Minute,
            relative_error: 0.01,
            computed_ms: 2,
            empty: Some(note.into()),
            body: SectionBody::NotAsked,
        };
        ReportWrite::SaveSection { id, section: Box::new(section) }
    }

    /// The notes of the sections saved with report `id`.
    fn saved_notes(conn: &Connection, id: u64) -> Vec<String> {
        let (_, sections) = get(conn, id).unwrap().unwrap();
        sections.into_iter().filter_map(|s| s.empty).collect()
    }

    #[test]
    fn a_new_report_never_gets_the_id_of_a_deleted_one() {
        let conn = at_version(None);
        let a = apply(&conn, &insert("a")).unwrap();
        assert_eq!(apply(&conn, &ReportWrite::Delete { id: a }).unwrap(), 1);
        let b = apply(&conn, &insert("b")).unwrap();
        assert_ne!(b, a, "report b got the id of deleted report a");
        // A section of report a computed after its deletion is saved nowhere.
        assert_eq!(apply(&conn, &save(a, "of a")).unwrap(), 0);
        assert!(saved_notes(&conn, b).is_empty());
        assert_eq!(get(&conn, b).unwrap().unwrap().0.spec.name, "b");
    }

    #[test]
    fn reports_saved_before_version_8_keep_their_ids_and_sections() {
        let mut conn = at_version(Some(7));
        for name in ["one", "two", "three"] {
            apply(&conn, &insert(name)).unwrap();
        }
        assert_eq!(apply(&conn, &save(2, "of two")).unwrap(), 1);
        assert_eq!(apply(&conn, &ReportWrite::Delete { id: 1 }).unwrap(), 1);
        let sql = super::super::schema::sql();
        super::super::schema::migrations(&sql).to_latest(&mut conn).unwrap();
        let kept: Vec<(u64, String)> =
            list(&conn).unwrap().into_iter().map(|r| (r.id, r.spec.name)).collect();
        assert_eq!(kept, [(3, "three".to_string()), (2, "two".to_string())]);
        assert_eq!(saved_notes(&conn, 2), ["of two"]);
        assert!(info(&conn, 2).unwrap().unwrap().size_bytes > 0);
        // Deleting the newest frees no id for the next report.
        assert_eq!(apply(&conn, &ReportWrite::Delete { id: 3 }).unwrap(), 1);
        assert_eq!(apply(&conn, &insert("four")).unwrap(), 4);
    }

    #[test]
    fn one_report_more_than_the_cap_is_refused_and_deleting_makes_room() {
        let conn = at_version(None);
        let spec = spec("r");
        let insert = || ReportWrite::Insert { spec: Box::new(spec.clone()), created_ms: 1 };
        for _ in 0..MAX_REPORTS {
            assert!(apply(&conn, &insert()).unwrap() > 0);
        }
        assert_eq!(apply(&conn, &insert()).unwrap(), 0, "one more than the cap");
        assert_eq!(list(&conn).unwrap().len(), MAX_REPORTS as usize);
        assert_eq!(apply(&conn, &ReportWrite::Delete { id: 1 }).unwrap(), 1);
        assert!(apply(&conn, &insert()).unwrap() > 0);
    }
}
