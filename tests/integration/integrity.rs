//! Integrity under concurrency and outages (issue 18): races reproduced with real parallel
//! requests against a real server, released together by a barrier and repeated over many
//! trials, on each backend. PostgreSQL is where the races can happen (SQLite's one writer
//! serialises them); the same assertions hold on both. Each test states the invariant the
//! database must keep, not the order the requests happened to run in.

use std::sync::Arc;

use diesel::prelude::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::sync::Barrier;

use crate::assessment_flow::answers_of;
use crate::browser::World;
use crate::helpers::{backends, TestApp};

const PROBLEM: &str = "https://dma.example/problems/";

/// A reply, read whole.
#[derive(Debug)]
struct Reply {
    status: StatusCode,
    retry_after: Option<String>,
    body: Value,
}

/// Send one API request with a bearer token.
async fn api(app: &TestApp, token: &str, method: Method, path: &str, body: Option<Value>) -> Reply {
    let request = (token.to_string(), method, path.to_string(), body);
    all_at_once(app, vec![request]).await.remove(0)
}

/// Send every request at once: each task waits at a barrier, then sends.
async fn all_at_once(
    app: &TestApp,
    requests: Vec<(String, Method, String, Option<Value>)>,
) -> Vec<Reply> {
    let barrier = Arc::new(Barrier::new(requests.len()));
    let mut tasks = Vec::new();
    for (token, method, path, body) in requests {
        let barrier = barrier.clone();
        let client = app.client.clone();
        let url = app.url(&path);
        tasks.push(tokio::spawn(async move {
            let mut req = client.request(method, url).bearer_auth(token);
            if let Some(body) = body {
                req = req.json(&body);
            }
            barrier.wait().await;
            let res = req.send().await.unwrap();
            let status = res.status();
            let retry_after = res
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let text = res.text().await.unwrap();
            Reply {
                status,
                retry_after,
                body: serde_json::from_str(&text).unwrap_or(Value::String(text)),
            }
        }));
    }
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

/// The seeded world with API tokens for organisation A's approver and contributor.
struct Setup {
    world: World,
    approver: String,
    contributor: String,
}

impl Setup {
    async fn new(app: &TestApp) -> Setup {
        let world = World::seed(app).await;
        let (approver, contributor) = app
            .db
            .write(|conn| {
                let actor = dma::services::audit::Actor::system("test");
                let mut token = |email: &str| {
                    let user = dma::services::auth::users::find_by_email(conn, email)?.unwrap();
                    dma::services::auth::api_token::create(conn, &actor, user.id, "test", 30)
                        .map(|(_, t)| t)
                };
                Ok((token("approver@a.nhs.uk")?, token("contributor@a.nhs.uk")?))
            })
            .await
            .unwrap();
        Setup {
            world,
            approver,
            contributor,
        }
    }

    fn answers_path(&self) -> String {
        format!("/api/v1/assessments/{}/answers", self.world.assessment_a)
    }

    /// The stored revision of one answer (0 when there is none).
    async fn revision(&self, app: &TestApp, key: &str) -> i64 {
        let sheet = api(app, &self.approver, Method::GET, &self.answers_path(), None).await;
        assert_eq!(sheet.status, 200, "{:?}", sheet.body);
        sheet.body["questions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|q| q["key"] == key)
            .unwrap()["revision"]
            .as_i64()
            .unwrap()
    }

    /// The approver and the contributor change `key` at the same moment, both from
    /// `revision`. Exactly one must win: returns the winner's value and the loser's reply.
    async fn race(
        &self,
        app: &TestApp,
        key: &str,
        revision: i64,
        approver_value: &Value,
        contributor_value: &Value,
        what: &str,
    ) -> (Value, Reply) {
        let body =
            |v: &Value| Some(json!({"answers": [{"key": key, "value": v, "revision": revision}]}));
        let path = self.answers_path();
        let mut replies = all_at_once(
            app,
            vec![
                (
                    self.approver.clone(),
                    Method::PATCH,
                    path.clone(),
                    body(approver_value),
                ),
                (
                    self.contributor.clone(),
                    Method::PATCH,
                    path,
                    body(contributor_value),
                ),
            ],
        )
        .await;
        let statuses: Vec<u16> = replies.iter().map(|r| r.status.as_u16()).collect();
        match statuses.as_slice() {
            [200, 409] => (approver_value.clone(), replies.remove(1)),
            [409, 200] => (contributor_value.clone(), replies.remove(0)),
            _ => panic!("{what}: both or neither applied: {replies:?}"),
        }
    }

    /// Every answer of the complete fixture, stored by the contributor.
    async fn answer_everything(&self, app: &TestApp) {
        let all = answers_of("answers-wgll-acute-complete.yaml");
        let patch = json!({"answers": all.iter().map(|(k, v)| json!({"key": k, "value": v, "revision": 0})).collect::<Vec<_>>()});
        let r = api(
            app,
            &self.contributor,
            Method::PATCH,
            &self.answers_path(),
            Some(patch),
        )
        .await;
        assert_eq!(r.status, 200, "{:?}", r.body);
    }

    /// Set (or clear, with `null`) one answer, sequentially; returns its new revision.
    async fn set(&self, app: &TestApp, key: &str, value: Value) -> i64 {
        let revision = self.revision(app, key).await;
        let r = api(
            app,
            &self.approver,
            Method::PATCH,
            &self.answers_path(),
            Some(json!({"answers": [{"key": key, "value": value, "revision": revision}]})),
        )
        .await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        self.revision(app, key).await
    }
}

/// Rows counted straight from the database.
async fn count(app: &TestApp, sql: String) -> i64 {
    #[derive(QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    app.db
        .read(move |conn| Ok(diesel::sql_query(sql).get_result::<N>(conn)?.n))
        .await
        .unwrap()
}

fn assert_stale_revision(reply: &Reply, key: &str, stored: &Value, what: &str) {
    assert_eq!(reply.status, 409, "{what}: {:?}", reply.body);
    assert_eq!(
        reply.body["type"],
        format!("{PROBLEM}stale-revision"),
        "{what}: {:?}",
        reply.body
    );
    let conflicts = reply.body["conflicts"].as_array().unwrap_or_else(|| {
        panic!(
            "{what}: a stale-revision problem without `conflicts`: {:?}",
            reply.body
        )
    });
    assert_eq!(conflicts.len(), 1, "{what}: {:?}", reply.body);
    assert_eq!(conflicts[0]["key"], key, "{what}");
    assert_eq!(
        &conflicts[0]["value"], stored,
        "{what}: the conflict must carry the value stored now"
    );
}

/// Issue 18, item 1: parallel submits after a reopen. Exactly one succeeds; the assessment has
/// one open submission and one current score set, whatever the interleaving.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_submits_store_one_submission_and_one_current_score_set() {
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        let s = Setup::new(&app).await;
        let id = s.world.assessment_a;
        s.answer_everything(&app).await;
        let submit_path = format!("/api/v1/assessments/{id}/submit");
        let signoff = json!({"name": "Dana Approver", "job_title": "CIO", "declaration": true});
        for trial in 0..4 {
            if trial > 0 {
                app.db
                    .write(move |conn| {
                        let admin = dma::services::audit::Actor::system("test");
                        dma::services::assessments::reopen(conn, &admin, id, "trial")
                    })
                    .await
                    .unwrap();
            }
            let requests = (0..8)
                .map(|_| {
                    let body = Some(signoff.clone());
                    (s.approver.clone(), Method::POST, submit_path.clone(), body)
                })
                .collect();
            let replies = all_at_once(&app, requests).await;
            let created = replies.iter().filter(|r| r.status == 201).count();
            for r in replies.iter().filter(|r| r.status != 201) {
                assert_eq!(r.status, 409, "[{backend}] trial {trial}: {:?}", r.body);
                assert_eq!(r.body["type"], format!("{PROBLEM}conflict"), "{:?}", r.body);
            }
            assert_eq!(created, 1, "[{backend}] trial {trial}: {replies:?}");
            let rows = |filter: &str| count(&app, format!("SELECT COUNT(*) AS n FROM {filter}"));
            let current = rows(&format!(
                "score_sets WHERE assessment_id = {id} AND is_current"
            ))
            .await;
            assert_eq!(current, 1, "[{backend}] trial {trial}: current score sets");
            let open = rows(&format!(
                "submissions WHERE assessment_id = {id} AND reopened_at IS NULL"
            ))
            .await;
            assert_eq!(open, 1, "[{backend}] trial {trial}: open submissions");
            let sets = rows(&format!("score_sets WHERE assessment_id = {id}")).await;
            assert_eq!(
                sets,
                trial + 1,
                "[{backend}] one score set per accepted submit"
            );
        }
    }
}

/// The schema itself allows one current score set per assessment, whatever the code does.
#[tokio::test]
async fn the_database_refuses_a_second_current_score_set() {
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        let s = Setup::new(&app).await;
        let id = s.world.assessment_a;
        s.answer_everything(&app).await;
        let r = api(
            &app,
            &s.approver,
            Method::POST,
            &format!("/api/v1/assessments/{id}/submit"),
            Some(json!({"name": "Dana", "job_title": "CIO", "declaration": true})),
        )
        .await;
        assert_eq!(r.status, 201, "{:?}", r.body);
        let duplicated = app
            .db
            .write(move |conn| {
                Ok(diesel::sql_query(format!(
                    "INSERT INTO score_sets (assessment_id, submission_id, questionnaire_version_id, \
                     overall_score, overall_band, report, answers_snapshot, is_current, scored_at) \
                     SELECT assessment_id, submission_id, questionnaire_version_id, overall_score, \
                     overall_band, report, answers_snapshot, is_current, scored_at \
                     FROM score_sets WHERE assessment_id = {id}"
                ))
                .execute(conn))
            })
            .await
            .unwrap();
        assert!(
            matches!(
                duplicated,
                Err(diesel::result::Error::DatabaseError(
                    diesel::result::DatabaseErrorKind::UniqueViolation,
                    _
                ))
            ),
            "[{backend}] {duplicated:?}"
        );
    }
}

/// Issue 18, item 2: two first answers to the same question at once. One is stored; the other
/// is refused as a stale revision carrying the stored value (never a 500), over many trials.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_first_answers_at_once_one_is_stored_and_the_other_is_a_stale_revision() {
    let key = "sf-epr-notes";
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        let s = Setup::new(&app).await;
        for trial in 0..12 {
            if s.revision(&app, key).await != 0 {
                s.set(&app, key, Value::Null).await;
            }
            let what = format!("[{backend}] trial {trial}");
            let mine = json!(format!("approver's note {trial}"));
            let theirs = json!(format!("contributor's note {trial}"));
            let (winner, loser) = s.race(&app, key, 0, &mine, &theirs, &what).await;
            assert_stale_revision(&loser, key, &winner, &what);
            assert_eq!(loser.body["conflicts"][0]["revision"], 1);
        }
    }
}

/// Issue 18, item 3: clearing an answer while someone else sets it. Exactly one change
/// happens; the other is a stale revision with `conflicts`; the history and the audit log
/// record only the change that happened.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_clear_racing_a_set_applies_one_and_records_only_that_one() {
    let key = "sf-epr-notes";
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        let s = Setup::new(&app).await;
        let id = s.world.assessment_a;
        let history = || {
            count(
                &app,
                format!("SELECT COUNT(*) AS n FROM answer_history WHERE assessment_id = {id} AND question_key = '{key}'"),
            )
        };
        let audit = || {
            count(
                &app,
                "SELECT COUNT(*) AS n FROM audit_log WHERE action = 'assessment.answers_saved'"
                    .into(),
            )
        };
        for trial in 0..12 {
            let what = format!("[{backend}] trial {trial}");
            let revision = s.set(&app, key, json!(format!("base {trial}"))).await;
            let (history_before, audit_before) = (history().await, audit().await);
            let set_to = json!(format!("set {trial}"));
            // Even trials race a clear against a set; odd ones two sets (the update path).
            let other = if trial % 2 == 0 {
                Value::Null
            } else {
                json!(format!("other {trial}"))
            };
            let (winner, loser) = s.race(&app, key, revision, &set_to, &other, &what).await;
            assert_stale_revision(&loser, key, &winner, &what);
            let sheet = api(&app, &s.approver, Method::GET, &s.answers_path(), None).await;
            let stored = sheet.body["questions"]
                .as_array()
                .unwrap()
                .iter()
                .find(|q| q["key"] == key)
                .unwrap()["value"]
                .clone();
            assert_eq!(stored, winner, "{what}: the stored value is the winner's");
            assert_eq!(
                history().await - history_before,
                1,
                "{what}: one history row per change made"
            );
            assert_eq!(
                audit().await - audit_before,
                1,
                "{what}: one audit entry per change made"
            );
        }
    }
}

/// Issue 18, item 8, by construction: on SQLite a read connection cannot write, so a write
/// that bypasses the one writer fails at once in tests instead of failing under load with
/// "database is locked". (PostgreSQL has no single writer; its reads are not restricted.)
#[tokio::test]
async fn on_sqlite_a_read_connection_refuses_to_write() {
    let app = TestApp::spawn(dma::db::Backend::Sqlite).await;
    World::seed(&app).await;
    let stray = app
        .db
        .read(|conn| {
            Ok(diesel::sql_query("UPDATE sessions SET last_seen_at = last_seen_at").execute(conn))
        })
        .await
        .unwrap();
    let error = stray.expect_err("a write on a read connection must fail on SQLite");
    assert!(error.to_string().contains("readonly"), "{error}");
    let through_writer = app
        .db
        .write(|conn| {
            Ok(
                diesel::sql_query("UPDATE sessions SET last_seen_at = last_seen_at")
                    .execute(conn)?,
            )
        })
        .await;
    assert!(through_writer.is_ok(), "{through_writer:?}");
}

/// Issue 18, item 8: a session due for its once-a-minute refresh, used by many autosaves at
/// once, is refreshed (through the writer) and no save fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn autosaves_of_a_session_due_for_its_refresh_all_succeed_and_refresh_it() {
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        let world = World::seed(&app).await;
        let browser = Arc::new(crate::browser::Browser::new(&app));
        browser
            .sign_in("contributor@a.nhs.uk", crate::browser::PASSWORD)
            .await;
        let csrf = browser.csrf().await;
        let path = format!("/assessments/{}/autosave", world.assessment_a);
        // Sessions refreshed in the last minute (the literal compares as a timestamp on
        // PostgreSQL and as text in the same format on SQLite).
        let last_seen = || {
            let since = chrono::Utc::now().naive_utc() - chrono::Duration::minutes(1);
            count(
                &app,
                format!(
                    "SELECT COUNT(*) AS n FROM sessions WHERE last_seen_at > '{}'",
                    since.format("%Y-%m-%d %H:%M:%S")
                ),
            )
        };
        for round in 0..5 {
            let old = chrono::Utc::now().naive_utc() - chrono::Duration::minutes(2);
            let sql = format!(
                "UPDATE sessions SET last_seen_at = '{}'",
                old.format("%Y-%m-%d %H:%M:%S")
            );
            app.db
                .write(move |conn| Ok(diesel::sql_query(sql).execute(conn)?))
                .await
                .unwrap();
            assert_eq!(last_seen().await, 0);
            let barrier = Arc::new(Barrier::new(16));
            let mut tasks = Vec::new();
            for i in 0..16 {
                let (browser, barrier) = (browser.clone(), barrier.clone());
                let (path, csrf) = (path.clone(), csrf.clone());
                tasks.push(tokio::spawn(async move {
                    let value = format!("note {round}.{i}");
                    let fields = [
                        ("csrf_token", csrf.as_str()),
                        ("present.sf-epr-notes", "1"),
                        ("q.sf-epr-notes", value.as_str()),
                    ];
                    barrier.wait().await;
                    browser.post(&path, &fields).await.status()
                }));
            }
            for t in tasks {
                let status = t.await.unwrap();
                // 409: another of these saves changed the note first; never a 5xx.
                assert!(
                    status == 200 || status == 409,
                    "[{backend}] round {round}: autosave answered {status}"
                );
            }
            assert_eq!(
                last_seen().await,
                1,
                "[{backend}] the session was refreshed"
            );
        }
    }
}

/// A 503 outage problem: type `unavailable`, with `Retry-After`.
fn assert_outage(reply: &Reply, what: &str) {
    assert_eq!(reply.status, 503, "{what}: {:?}", reply.body);
    assert_eq!(
        reply.body["type"],
        format!("{PROBLEM}unavailable"),
        "{what}: {:?}",
        reply.body
    );
    let wait: u32 = reply
        .retry_after
        .as_deref()
        .unwrap_or_else(|| panic!("{what}: a 503 without Retry-After"))
        .parse()
        .unwrap();
    assert!(wait > 0, "{what}");
}

/// Issue 18, item 7: SQLite cannot grow the file (a full disk, here `max_page_count` on the
/// writer's connection). A save is answered 503 "cannot store your answer now" with
/// `Retry-After`, and nothing of it is stored: no answer, no history row, no audit entry.
/// When there is room again, the same save succeeds.
#[tokio::test]
async fn on_a_full_sqlite_disk_a_save_is_a_503_and_stores_nothing() {
    let app = TestApp::spawn(dma::db::Backend::Sqlite).await;
    let s = Setup::new(&app).await;
    let rows = || {
        count(
            &app,
            "SELECT (SELECT COUNT(*) FROM answers) + (SELECT COUNT(*) FROM answer_history) \
             + (SELECT COUNT(*) FROM audit_log) AS n"
                .into(),
        )
    };
    // The writer is one connection, so a pragma set through it holds for every write: cap
    // the file at its size now, then fill what room is left.
    let limit = |sql: &'static str| {
        app.db.write(move |conn| {
            use diesel::connection::SimpleConnection;
            conn.batch_execute(sql)?;
            Ok(())
        })
    };
    limit("CREATE TABLE filler (x BLOB)").await.unwrap();
    app.db
        .write(|conn| {
            #[derive(QueryableByName)]
            struct Pages {
                #[diesel(sql_type = diesel::sql_types::BigInt)]
                page_count: i64,
            }
            let pages: Pages = diesel::sql_query("PRAGMA page_count").get_result(conn)?;
            diesel::sql_query(format!("PRAGMA max_page_count = {}", pages.page_count))
                .execute(conn)?;
            Ok(())
        })
        .await
        .unwrap();
    let filled = loop {
        if let Err(e) = limit("INSERT INTO filler VALUES (randomblob(1000))").await {
            break e;
        }
    };
    assert!(
        matches!(filled, dma::error::AppError::StorageFull(_)),
        "{filled:?}"
    );
    let before = rows().await;
    let note = "x".repeat(4_900);
    let patch = json!({"answers": [
        {"key": "wl-strategy", "value": 4, "revision": 0},
        {"key": "sf-epr-notes", "value": note, "revision": 0},
    ]});
    let full = api(
        &app,
        &s.contributor,
        Method::PATCH,
        &s.answers_path(),
        Some(patch.clone()),
    )
    .await;
    assert_outage(&full, "a full disk");
    assert!(
        full.body["detail"]
            .as_str()
            .unwrap()
            .contains("cannot store your answer now"),
        "{:?}",
        full.body
    );
    assert_eq!(rows().await, before, "a refused save stored something");
    assert_eq!(s.revision(&app, "wl-strategy").await, 0);
    limit("PRAGMA max_page_count = 1073741823").await.unwrap();
    let roomy = api(
        &app,
        &s.contributor,
        Method::PATCH,
        &s.answers_path(),
        Some(patch),
    )
    .await;
    assert_eq!(roomy.status, 200, "{:?}", roomy.body);
}

/// A PostgreSQL cluster of its own, for a test that stops its server (never the shared one):
/// created on a free port with trust authentication, dropped when the test ends.
struct ThrowawayCluster {
    name: String,
    port: u16,
}

impl ThrowawayCluster {
    fn create() -> ThrowawayCluster {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let name = format!("dma_it_{port}");
        let cluster = ThrowawayCluster { name, port };
        cluster.run(
            "pg_createcluster",
            &[
                "15",
                &cluster.name,
                "--port",
                &port.to_string(),
                "--",
                "--auth=trust",
            ],
        );
        cluster.ctl("start");
        cluster
    }

    fn run(&self, program: &str, args: &[&str]) {
        let out = std::process::Command::new(program)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("{program}: {e}"));
        assert!(
            out.status.success(),
            "{program} {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn ctl(&self, action: &str) {
        let mut args = vec!["15", self.name.as_str(), action];
        if action == "stop" {
            // Fast shutdown: sessions in flight are terminated, as in an outage.
            args.extend(["-m", "fast"]);
        }
        self.run("pg_ctlcluster", &args);
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for ThrowawayCluster {
    fn drop(&mut self) {
        let _ = std::process::Command::new("pg_dropcluster")
            .args(["--stop", "15", &self.name])
            .output();
    }
}

/// Issue 18, item 6: the database stops while the service is serving. Requests in flight and
/// after are answered 503 with `Retry-After` (a problem document for the API, a page for the
/// pages), never 500; connection errors name their real cause; when the database is back,
/// so is the service. Runs on a throwaway PostgreSQL cluster (needs `pg_createcluster`, so
/// only where `TEST_DATABASE_URL` says PostgreSQL is available).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stopped_database_is_a_503_with_retry_after_and_the_service_recovers() {
    if !backends().contains(&dma::db::Backend::Postgres) {
        return;
    }
    // The real cause of a failed connection, for a database that does not exist.
    let shared = std::env::var("TEST_DATABASE_URL").unwrap();
    let missing = match shared.rsplit_once('/') {
        Some((server, _)) => format!("{server}/dma_no_such_database"),
        None => unreachable!("TEST_DATABASE_URL has a database name"),
    };
    let error = dma::db::establish(&dma::db::DatabaseUrl::parse(&missing).unwrap())
        .err()
        .expect("no such database");
    let logged = dma::error::error_chain(&error);
    assert!(logged.contains("does not exist"), "{logged}");
    assert!(!logged.contains("multiconnection"), "{logged}");

    let cluster = ThrowawayCluster::create();
    let app = TestApp::spawn_on(crate::helpers::TestDb::on_postgres(&cluster.url())).await;
    let s = Setup::new(&app).await;
    let browser = crate::browser::Browser::new(&app);
    browser
        .sign_in("contributor@a.nhs.uk", crate::browser::PASSWORD)
        .await;
    let sheet = s.answers_path();
    let read = || api(&app, &s.contributor, Method::GET, &sheet, None);
    assert_eq!(read().await.status, 200);

    // Requests running while the server stops, then requests against a stopped server.
    let in_flight: Vec<_> = (0..4)
        .map(|i| {
            let body = json!({"answers": [{"key": "sf-epr-notes", "value": format!("note {i}"), "revision": 0}]});
            (s.contributor.clone(), Method::PATCH, sheet.clone(), Some(body))
        })
        .collect();
    let (replies, ()) = tokio::join!(all_at_once(&app, in_flight), async { cluster.ctl("stop") });
    for r in &replies {
        assert!(
            [200, 409, 503].contains(&r.status.as_u16()),
            "in flight as the database stopped: {r:?}"
        );
        if r.status == 503 {
            assert_outage(r, "in flight");
        }
    }
    assert_outage(&read().await, "API read, database stopped");
    let page = browser.get("/dashboard").await;
    assert_eq!(page.status(), 503);
    assert!(page.headers().contains_key("retry-after"));
    assert!(page
        .headers()
        .get("content-type")
        .is_some_and(|v| v.to_str().unwrap().starts_with("text/html")));
    let error = dma::db::establish(&dma::db::DatabaseUrl::parse(&cluster.url()).unwrap())
        .err()
        .expect("the server is stopped");
    let logged = dma::error::error_chain(&error);
    assert!(
        logged.contains("Connection refused") || logged.contains("connection to server"),
        "{logged}"
    );

    cluster.ctl("start");
    assert_eq!(
        read().await.status,
        200,
        "the service recovers with its database"
    );
}

/// Each message's recipient, as many times as it arrived (every test message has its own).
fn arrivals(server: &crate::mail::SmtpServer) -> std::collections::BTreeMap<String, usize> {
    let mut seen = std::collections::BTreeMap::new();
    for m in server.messages() {
        for to in m.rcpt_to {
            *seen.entry(to).or_insert(0) += 1;
        }
    }
    seen
}

/// Issue 18, item 4: two instances on one database, and an SMTP server slow enough that one
/// pass outlasts the claim's lease (12 messages at 1.5 s each against a 15 s lease). The
/// instance holding the batch keeps its claims renewed; the other, polling all the while,
/// sends none of them again: every message arrives once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_and_a_slow_smtp_server_deliver_each_message_once() {
    use dma::services::mail;
    let slow = std::time::Duration::from_millis(1500);
    for backend in backends() {
        let w = crate::mail::world(backend).await;
        let server = crate::mail::SmtpServer::start_slow(0, Arc::default(), slow).await;
        let settings = crate::mail::smtp_settings(&w.settings.mail, server.port());
        let transport = mail::Transport::from_settings(&settings).unwrap();
        let emails = (0..12)
            .map(|i| crate::mail::reset(&format!("person{i}@example.nhs.uk"), "http://dma.test/r"))
            .collect();
        w.enqueue(emails).await;
        assert!(
            slow * 12 > mail::worker::LEASE,
            "the pass must outlast one lease"
        );
        let url = w.settings.database().unwrap();
        let (a, b) = (
            dma::db::Db::connect(&url, 2).unwrap(),
            dma::db::Db::connect(&url, 2).unwrap(),
        );
        let done = std::sync::atomic::AtomicBool::new(false);
        let (first, others) = tokio::join!(
            async {
                let report = mail::send_pending(&a, &transport, &settings).await;
                done.store(true, std::sync::atomic::Ordering::SeqCst);
                report
            },
            async {
                let mut sent = 0;
                while !done.load(std::sync::atomic::Ordering::SeqCst) {
                    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
                    sent += mail::send_pending(&b, &transport, &settings)
                        .await
                        .unwrap()
                        .sent;
                }
                sent
            }
        );
        let first = first.unwrap();
        assert_eq!(first.sent + others, 12, "[{backend}] {first:?} + {others}");
        let seen = arrivals(&server);
        assert_eq!(seen.len(), 12, "[{backend}] {seen:?}");
        assert!(
            seen.values().all(|n| *n == 1),
            "[{backend}] a message was delivered twice: {seen:?}"
        );
        server.stop().await;
    }
}

/// Issue 18, item 5: an instance dies (its worker task is killed, nothing released) while
/// delivering a batch to a slow server. Another instance (or the same one restarted) takes
/// its claims within seconds, not after a five-minute lease: every message arrives, and only
/// the one in hand when it died may arrive twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_crashed_instance_s_claims_are_delivered_by_another_within_seconds() {
    use dma::services::mail;
    let slow = std::time::Duration::from_millis(1000);
    for backend in backends() {
        let w = crate::mail::world(backend).await;
        let server = crate::mail::SmtpServer::start_slow(0, Arc::default(), slow).await;
        let settings = crate::mail::smtp_settings(&w.settings.mail, server.port());
        let emails = (0..6)
            .map(|i| crate::mail::reset(&format!("person{i}@example.nhs.uk"), "http://dma.test/r"))
            .collect();
        w.enqueue(emails).await;
        let url = w.settings.database().unwrap();
        let crashing =
            mail::spawn_worker(dma::db::Db::connect(&url, 2).unwrap(), settings.clone()).unwrap();
        // Let it claim the batch and hand over a message or two, then kill it mid-delivery.
        while server.messages().len() < 2 {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        tokio::time::sleep(slow / 2).await;
        crashing.abort();
        let crashed_at = std::time::Instant::now();
        let survivor =
            mail::spawn_worker(dma::db::Db::connect(&url, 2).unwrap(), settings.clone()).unwrap();
        let limit = std::time::Duration::from_secs(40);
        while arrivals(&server).len() < 6 && crashed_at.elapsed() < limit {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        let took = crashed_at.elapsed();
        survivor.stop(std::time::Duration::from_secs(5)).await;
        let seen = arrivals(&server);
        assert_eq!(
            seen.len(),
            6,
            "[{backend}] not all delivered {took:?} after the crash: {seen:?}"
        );
        assert!(
            took < std::time::Duration::from_secs(40),
            "[{backend}] {took:?}"
        );
        let twice = seen.values().filter(|n| **n > 1).count();
        assert!(
            twice <= 1 && seen.values().all(|n| *n <= 2),
            "[{backend}] more than the in-flight message repeated: {seen:?}"
        );
        server.stop().await;
    }
}
