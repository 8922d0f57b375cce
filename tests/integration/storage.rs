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

/// Issue 21: a long read whose request went away (its future dropped, as actix drops a request
/// whose client closed the connection) stops. With a pool of one connection, a second read
/// waiting behind a first is abandoned and never runs, on both backends; on PostgreSQL a read
/// already running (`pg_sleep(30)`) is cancelled within seconds, and its connection serves
/// the next read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abandoned_read_never_starts_and_a_running_one_is_cancelled() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, Instant};
    for backend in backends() {
        let test_db = TestDb::new(backend);
        let db = dma::db::Db::connect(&test_db.url, 1).unwrap();
        db.migrate().await.unwrap();

        // A first read holds the only connection for a second; a second waits behind it and
        // is abandoned after 200 ms.
        let holder = db.clone();
        let first = tokio::spawn(async move {
            holder
                .read_cancellable(|_conn| {
                    std::thread::sleep(Duration::from_secs(1));
                    Ok(())
                })
                .await
        });
        let ran = Arc::new(AtomicBool::new(false));
        let flag = ran.clone();
        let second = db.read_cancellable(move |_conn| {
            flag.store(true, Ordering::SeqCst);
            Ok(())
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        let abandoned = tokio::time::timeout(Duration::from_millis(200), second).await;
        assert!(abandoned.is_err(), "[{backend}] the second read waited");
        first.await.unwrap().unwrap();
        db.read(|_conn| Ok(())).await.unwrap();
        assert!(
            !ran.load(Ordering::SeqCst),
            "[{backend}] an abandoned read that had not started must never run"
        );

        if backend == dma::db::Backend::Postgres {
            let ended = Arc::new(AtomicBool::new(false));
            let flag = ended.clone();
            let sleeping = db.read_cancellable(move |conn| {
                let r = conn.batch_execute("SELECT pg_sleep(30)");
                flag.store(true, Ordering::SeqCst);
                r.map_err(Into::into)
            });
            let started = Instant::now();
            let abandoned = tokio::time::timeout(Duration::from_millis(500), sleeping).await;
            assert!(abandoned.is_err(), "the sleeping read was still running");
            while !ended.load(Ordering::SeqCst) && started.elapsed() < Duration::from_secs(10) {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10) && ended.load(Ordering::SeqCst),
                "the abandoned statement must be cancelled, not left to run its 30 s"
            );
            // The connection is whole: the next read on the pool of one works.
            let answer: i64 = db
                .read(|conn| {
                    #[derive(QueryableByName)]
                    struct One {
                        #[diesel(sql_type = diesel::sql_types::BigInt)]
                        n: i64,
                    }
                    let one: One =
                        diesel::sql_query("SELECT CAST(1 AS BIGINT) AS n").get_result(conn)?;
                    Ok(one.n)
                })
                .await
                .unwrap();
            assert_eq!(answer, 1);
        }
    }
}

/// Audit rows in the SQLite file itself, ignoring the write-ahead log: what has been
/// checkpointed. None while the table itself is only in the log (the migrations' commits
/// are not checkpointed either).
fn checkpointed_audit_rows(path: &std::path::Path) -> Option<i64> {
    let mut file = SqliteConnection::establish(&format!("file:{}?immutable=1", path.display()))
        .expect("open the database file alone");
    audit_log::table.count().get_result(&mut file).ok()
}

/// On SQLite a commit no longer copies the log back into the database file (that held every
/// queued save behind it); the server's checkpointer does, from a thread of its own.
#[tokio::test]
async fn sqlite_checkpoints_off_the_write_path() {
    let test_db = TestDb::new(dma::db::Backend::Sqlite);
    let dma::db::DatabaseUrl::Sqlite(path) = test_db.url.clone() else {
        unreachable!()
    };
    let db = dma::db::Db::open(&test_db.url, 2).await.unwrap();
    let insert = |n: usize| {
        let db = db.clone();
        async move {
            db.write(move |conn| {
                for i in 0..n {
                    let mut entry = dma::services::audit::Entry::new("test.checkpoint", "test", i);
                    entry.after = Some(serde_json::json!({ "padding": "x".repeat(1_000) }));
                    dma::services::audit::record(
                        conn,
                        &dma::services::audit::Actor::system("test"),
                        entry,
                    )?;
                }
                Ok(())
            })
            .await
            .unwrap()
        }
    };
    // Commits of some 2,000 pages (8,000 rows of over 1 KB): over SQLite's default threshold
    // (1,000), under the writer's. Nothing reaches the file until the checkpointer runs.
    let before = checkpointed_audit_rows(&path);
    for _ in 0..40 {
        insert(200).await;
    }
    assert_eq!(
        checkpointed_audit_rows(&path),
        before,
        "a commit checkpointed the log"
    );

    let checkpointer = db.spawn_checkpointer().unwrap().expect("SQLite has one");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let expected = Some(before.unwrap_or(0) + 8_000);
    while checkpointed_audit_rows(&path) != expected {
        assert!(
            std::time::Instant::now() < deadline,
            "the checkpointer did not copy the log back"
        );
        tokio::time::sleep(dma::db::checkpoint::INTERVAL).await;
    }
    // Stopped with its handle (which waits for the thread): later commits stay in the log.
    drop(checkpointer);
    insert(10).await;
    tokio::time::sleep(3 * dma::db::checkpoint::INTERVAL).await;
    assert_eq!(checkpointed_audit_rows(&path), expected);
}
