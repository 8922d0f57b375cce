//! The schema on both backends: migrations reversible, and the rules the database itself
//! enforces (published versions immutable, audit log append-only).

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use dma::db::schema::{audit_log, organisations, questionnaire_versions, questionnaires};

use crate::helpers::{backends, TestDb};

#[test]
fn migrations_run_up_down_up() {
    for backend in backends() {
        let db = TestDb::new(backend);
        let mut conn = db.connect();
        let applied = dma::db::run_migrations(&mut conn).unwrap();
        assert!(
            !applied.is_empty(),
            "[{backend}] nothing applied on a new database"
        );
        assert!(
            dma::db::run_migrations(&mut conn).unwrap().is_empty(),
            "[{backend}] not idempotent"
        );
        let reverted = dma::db::revert_all_migrations(&mut conn).unwrap();
        assert_eq!(reverted.len(), applied.len(), "[{backend}]");
        assert!(
            organisations::table
                .count()
                .get_result::<i64>(&mut conn)
                .is_err(),
            "[{backend}] tables survive the down migration"
        );
        let again = dma::db::run_migrations(&mut conn).unwrap();
        assert_eq!(again, applied, "[{backend}]");
        let n: i64 = organisations::table.count().get_result(&mut conn).unwrap();
        assert_eq!(n, 0);
    }
}

fn seed_version(conn: &mut dma::db::DbConnection, status: &str) -> i64 {
    let now = chrono::Utc::now().naive_utc();
    let qid: i64 = diesel::insert_into(questionnaires::table)
        .values((
            questionnaires::key.eq(format!("q-{status}")),
            questionnaires::title.eq("T"),
            questionnaires::created_at.eq(now),
        ))
        .returning(questionnaires::id)
        .get_result(conn)
        .unwrap();
    diesel::insert_into(questionnaire_versions::table)
        .values((
            questionnaire_versions::questionnaire_id.eq(qid),
            questionnaire_versions::version.eq("1"),
            questionnaire_versions::title.eq("T"),
            questionnaire_versions::status.eq(status),
            questionnaire_versions::definition.eq("{}"),
            questionnaire_versions::source.eq("{}"),
            questionnaire_versions::checksum.eq("x"),
            questionnaire_versions::created_at.eq(now),
        ))
        .returning(questionnaire_versions::id)
        .get_result(conn)
        .unwrap()
}

#[test]
fn the_database_refuses_changes_to_a_published_version() {
    for backend in backends() {
        let db = TestDb::new(backend);
        let mut conn = db.connect();
        dma::db::run_migrations(&mut conn).unwrap();
        let draft = seed_version(&mut conn, "draft");
        let published = seed_version(&mut conn, "published");
        let v = questionnaire_versions::table;

        diesel::update(v.find(draft))
            .set(questionnaire_versions::title.eq("Renamed draft"))
            .execute(&mut conn)
            .unwrap_or_else(|e| panic!("[{backend}] a draft must stay editable: {e}"));
        let err = diesel::update(v.find(published))
            .set(questionnaire_versions::definition.eq("{\"changed\": true}"))
            .execute(&mut conn)
            .expect_err("published version changed");
        assert!(err.to_string().contains("published"), "[{backend}] {err}");
        assert!(
            diesel::delete(v.find(published))
                .execute(&mut conn)
                .is_err(),
            "[{backend}] deleted"
        );
        let definition: String = v
            .find(published)
            .select(questionnaire_versions::definition)
            .first(&mut conn)
            .unwrap();
        assert_eq!(definition, "{}", "[{backend}] stored data altered");
        // Publishing a draft is the one allowed change of status.
        diesel::update(v.find(draft))
            .set(questionnaire_versions::status.eq("published"))
            .execute(&mut conn)
            .unwrap();
        assert!(diesel::delete(v.find(draft)).execute(&mut conn).is_err());
    }
}

#[test]
fn the_audit_log_is_append_only() {
    for backend in backends() {
        let db = TestDb::new(backend);
        let mut conn = db.connect();
        dma::db::run_migrations(&mut conn).unwrap();
        let now = chrono::Utc::now().naive_utc();
        diesel::insert_into(audit_log::table)
            .values((
                audit_log::at.eq(now),
                audit_log::actor_label.eq("system"),
                audit_log::action.eq("test"),
                audit_log::entity_type.eq("nothing"),
            ))
            .execute(&mut conn)
            .unwrap();
        assert!(diesel::update(audit_log::table)
            .set(audit_log::action.eq("rewritten"))
            .execute(&mut conn)
            .is_err());
        assert!(diesel::delete(audit_log::table).execute(&mut conn).is_err());
        assert!(
            conn.batch_execute("DELETE FROM audit_log").is_err(),
            "[{backend}] raw delete"
        );
        let n: i64 = audit_log::table.count().get_result(&mut conn).unwrap();
        assert_eq!(n, 1, "[{backend}]");
    }
}
