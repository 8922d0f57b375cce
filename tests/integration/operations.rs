//! Running the service: metrics, request ids and logs, data retention, backups (issue 25).
//! The several-instances test behind HAProxy is in `multi_instance`.

use std::collections::BTreeSet;
use std::path::Path;

use chrono::{Duration, Utc};
use diesel::prelude::*;
use dma::db::schema::{
    answer_history, assessments, audit_log, email_outbox, login_attempts, one_time_tokens,
    score_sets, scores, sessions, submissions,
};
use dma::db::{Backend, DbConnection};
use dma::services::auth::roles::Role;
use reqwest::StatusCode;

use crate::cli::dma;
use crate::helpers::{backends, TestApp, TestDb};
use crate::seed::run_seed;

const METRICS_TOKEN: &str = "metrics-token-for-the-tests";
/// The kinds `dma retention run` reports.
const PURGED_KINDS: [&str; 5] = [
    "sessions",
    "sign_in_attempts",
    "links",
    "mail_bodies",
    "answer_history",
];
const PASSWORD: &str = "correct horse battery staple";

async fn scrape(app: &TestApp, token: Option<&str>) -> reqwest::Response {
    let port = app.metrics_port.expect("metrics port");
    let mut req = reqwest::Client::new().get(format!("http://127.0.0.1:{port}/metrics"));
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    req.send().await.unwrap()
}

/// The value of an unlabelled metric line (`name value`).
fn value_of(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse().ok())
}

#[tokio::test]
async fn metrics_count_requests_by_route_pattern_behind_a_token() {
    for backend in backends() {
        let app = TestApp::spawn_configured(TestDb::new(backend), |s| {
            s.ops.metrics_bind = Some("127.0.0.1:0".parse().unwrap());
            s.ops.metrics_token = Some(dma::config::Secret::new(METRICS_TOKEN));
            s.ops.instance_name = Some("test-a".into());
        })
        .await;
        assert_eq!(scrape(&app, None).await.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            scrape(&app, Some("not-the-token-at-all")).await.status(),
            StatusCode::UNAUTHORIZED
        );
        // Not on the application's own address: the public balancer never exposes it.
        assert_eq!(app.get("/metrics").await.status(), StatusCode::NOT_FOUND);

        app.create_user("admin@example.nhs.uk", Role::Administrator, None, PASSWORD)
            .await;
        let refused = app.sign_in("admin@example.nhs.uk", "wrong password").await;
        assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
        let res = app.sign_in("admin@example.nhs.uk", PASSWORD).await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "[{backend}]");
        let res = app.get("/assessments/987654").await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "[{backend}]");
        assert_eq!(res.headers()["x-dma-instance"], "test-a");

        let res = scrape(&app, Some(METRICS_TOKEN)).await;
        assert_eq!(res.status(), StatusCode::OK);
        assert!(res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4"));
        let text = res.text().await.unwrap();
        assert!(
            text.contains(
                "dma_http_requests_total{method=\"GET\",route=\"/assessments/{id}\",status=\"404\"}"
            ),
            "[{backend}] no request count by route pattern:\n{text}"
        );
        assert!(text.contains(
            "dma_http_request_duration_seconds_bucket{method=\"POST\",route=\"/login\",status=\"303\""
        ));
        assert!(!text.contains("987654"), "a raw path became a label");
        // The registry is per process and the suite runs in parallel: at least ours.
        assert!(value_of(&text, "dma_sign_in_failures_total").unwrap() >= 1.0);
        // Service-wide figures come from this test's own database, so they are exact.
        assert_eq!(
            value_of(&text, "dma_sessions_active"),
            Some(1.0),
            "[{backend}]"
        );
        assert!(text.contains("dma_outbox_messages{status=\"queued\"} 0"));
        assert!(text.contains("dma_outbox_messages{status=\"failed\"} 0"));
        assert_eq!(
            value_of(&text, "dma_outbox_oldest_unsent_age_seconds"),
            Some(0.0)
        );
        for name in [
            "dma_db_pool_connections_in_use",
            "dma_db_pool_max_connections",
            "dma_db_pool_wait_seconds_count",
            "dma_db_pool_timeouts_total",
            "dma_outbox_retrying_messages",
            "dma_outbox_failed_attempts",
        ] {
            assert!(value_of(&text, name).is_some(), "[{backend}] no {name}");
        }
        assert!(text.contains("# TYPE dma_scheduler_passes_total counter"));

        // A message waiting for a day shows as the oldest unsent one.
        let day_ago = Utc::now().naive_utc() - Duration::days(1);
        app.db
            .write(move |conn| {
                insert_message(conn, "queued", day_ago, None)?;
                Ok(())
            })
            .await
            .unwrap();
        let text = scrape(&app, Some(METRICS_TOKEN))
            .await
            .text()
            .await
            .unwrap();
        assert!(text.contains("dma_outbox_messages{status=\"queued\"} 1"));
        let age = value_of(&text, "dma_outbox_oldest_unsent_age_seconds").unwrap();
        assert!((86_000.0..90_000.0).contains(&age), "[{backend}] age {age}");
    }
}

#[tokio::test]
async fn every_response_names_its_request_and_error_pages_show_it() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let res = app.get("/no-such-page").await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let id = res.headers()["x-request-id"].to_str().unwrap().to_string();
    assert_eq!(id.len(), 36, "{id}");
    let html = res.text().await.unwrap();
    assert!(html.contains(&format!(
        "Request ID: <code class=\"dma-request-id\">{id}</code>"
    )));
    let other = app.get("/healthz").await;
    assert_ne!(other.headers()["x-request-id"].to_str().unwrap(), id);
    // An API problem carries it too, for a program's error report.
    let res = app.get("/api/v1/me").await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let id = res.headers()["x-request-id"].to_str().unwrap().to_string();
    let problem: serde_json::Value = res.json().await.unwrap();
    assert_eq!(problem["request_id"], id.as_str(), "{problem}");
}

#[test]
fn json_logs_have_one_object_a_line_with_the_request_and_no_secrets() {
    use std::io::Read;
    use std::io::Write;
    use std::process::Stdio;
    const ADMIN_PASSWORD: &str = "a long passphrase for the log test";
    let dir = tempfile::tempdir().unwrap();
    let mut create = dma()
        .current_dir(dir.path())
        .args(["admin", "create", "--email", "admin@example.nhs.uk"])
        .args(["--name", "Ada Admin", "--password-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(create.stdin.take().unwrap(), "{ADMIN_PASSWORD}").unwrap();
    let created = json_of(create.wait_with_output().unwrap());
    let port = crate::cli::free_port();
    let mut child = dma()
        .current_dir(dir.path())
        .env("DMA_LOG_FORMAT", "json")
        // The administrator signs in with a password alone here.
        .env("DMA_SECOND_FACTOR_ROLES", "none")
        .env("RUST_LOG", "info")
        .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    assert!(crate::cli::wait_for_health(port, &mut child));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (link_id, login_id, dashboard_id) = runtime.block_on(async {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .cookie_store(true)
            .build()
            .unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let res = client
            .get(format!(
                "{base}/account/set-password?token=secret-link-token-0001"
            ))
            .send()
            .await
            .unwrap();
        let link_id = res.headers()["x-request-id"].to_str().unwrap().to_string();
        let form = client.get(format!("{base}/login")).send().await.unwrap();
        let csrf = crate::helpers::csrf_from(&form.text().await.unwrap());
        let res = client
            .post(format!("{base}/login"))
            .form(&[
                ("email", "nobody@example.nhs.uk"),
                ("password", "secret-password-0002"),
                ("csrf_token", &csrf),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        let login_id = res.headers()["x-request-id"].to_str().unwrap().to_string();
        let res = client
            .post(format!("{base}/login"))
            .form(&[
                ("email", "admin@example.nhs.uk"),
                ("password", ADMIN_PASSWORD),
                ("csrf_token", &csrf),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        let res = client
            .get(format!("{base}/dashboard"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let dashboard_id = res.headers()["x-request-id"].to_str().unwrap().to_string();
        (link_id, login_id, dashboard_id)
    });
    std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let mut log = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    assert!(child.wait().unwrap().success());

    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(lines.len() > 3, "{log}");
    let request_line = |id: &str| {
        lines
            .iter()
            .find(|l| l["message"] == "request" && l["span"]["request_id"] == id)
            .unwrap_or_else(|| panic!("no request line for {id}:\n{log}"))
            .clone()
    };
    let link = request_line(&link_id);
    assert_eq!(link["span"]["route"], "/account/set-password");
    assert_eq!(link["span"]["method"], "GET");
    assert!(
        link["status"].is_u64() && link["latency_ms"].is_f64(),
        "{link}"
    );
    let login = request_line(&login_id);
    assert_eq!(login["span"]["route"], "/login");
    assert_eq!(login["status"], 401);
    assert!(
        login.get("user_id").is_none(),
        "a refused sign-in has no user"
    );
    let dashboard = request_line(&dashboard_id);
    assert_eq!(dashboard["span"]["route"], "/dashboard");
    assert_eq!(dashboard["user_id"], created["id"], "{dashboard}");
    for secret in [
        "secret-link-token-0001",
        "secret-password-0002",
        ADMIN_PASSWORD,
    ] {
        assert!(!log.contains(secret), "{secret} reached the log");
    }
}

fn insert_message(
    conn: &mut DbConnection,
    status: &str,
    at: chrono::NaiveDateTime,
    sent_at: Option<chrono::NaiveDateTime>,
) -> Result<i64, dma::error::AppError> {
    Ok(diesel::insert_into(email_outbox::table)
        .values((
            email_outbox::kind.eq("reminder"),
            email_outbox::recipient.eq("someone@example.nhs.uk"),
            email_outbox::subject.eq("A reminder"),
            email_outbox::body_text.eq("Dear someone, the text"),
            email_outbox::body_html.eq("<p>Dear someone</p>"),
            email_outbox::dedupe_key.eq(format!("test-{}", dma::crypto::random_token())),
            email_outbox::status.eq(status),
            email_outbox::attempts.eq(i32::from(sent_at.is_some())),
            email_outbox::next_attempt_at.eq(at),
            email_outbox::created_at.eq(at),
            email_outbox::sent_at.eq(sent_at),
        ))
        .returning(email_outbox::id)
        .get_result(conn)?)
}

/// Submissions and score sets (id, reference or report), then the counts of scores and audit
/// entries.
type Kept = (Vec<(i64, String)>, Vec<(i64, String)>, i64, i64);

/// What must survive any purge: every submission, score set, score and audit entry.
fn kept_records(conn: &mut DbConnection) -> Kept {
    (
        submissions::table
            .select((submissions::id, submissions::reference))
            .order(submissions::id)
            .load(conn)
            .unwrap(),
        score_sets::table
            .select((score_sets::id, score_sets::report))
            .order(score_sets::id)
            .load(conn)
            .unwrap(),
        scores::table.count().get_result(conn).unwrap(),
        audit_log::table.count().get_result(conn).unwrap(),
    )
}

#[test]
fn retention_purges_old_personal_data_and_never_results_or_the_audit_log() {
    for backend in backends() {
        let db = TestDb::new(backend);
        let dir = tempfile::tempdir().unwrap();
        json_of(run_seed(&db, dir.path(), &["--orgs", "4", "--cycles", "2"]));
        let mut conn = db.connect();
        let now = Utc::now().naive_utc();
        let long_ago = now - Duration::days(400);
        let user_id: i64 = dma::db::schema::users::table
            .select(dma::db::schema::users::id)
            .first(&mut conn)
            .unwrap();
        let assessment_id: i64 = assessments::table
            .select(assessments::id)
            .first(&mut conn)
            .unwrap();
        // Old and current records of each purged kind.
        dma::services::auth::session::create(&mut conn, user_id, 12, None, None).unwrap();
        dma::services::auth::session::create(&mut conn, user_id, 12, None, None).unwrap();
        let old_session: i64 = sessions::table
            .select(sessions::id)
            .order(sessions::id)
            .first(&mut conn)
            .unwrap();
        diesel::update(sessions::table.find(old_session))
            .set((
                sessions::expires_at.eq(long_ago),
                sessions::last_seen_at.eq(long_ago),
            ))
            .execute(&mut conn)
            .unwrap();
        for at in [long_ago, now] {
            diesel::insert_into(login_attempts::table)
                .values((
                    login_attempts::subject.eq("email:someone@example.nhs.uk"),
                    login_attempts::attempted_at.eq(at),
                    login_attempts::succeeded.eq(false),
                ))
                .execute(&mut conn)
                .unwrap();
        }
        use dma::services::auth::users;
        users::issue_link_token(&mut conn, user_id, users::INVITATION).unwrap();
        users::issue_link_token(&mut conn, user_id, users::INVITATION).unwrap();
        let old_link: i64 = one_time_tokens::table
            .select(one_time_tokens::id)
            .order(one_time_tokens::id.desc())
            .first(&mut conn)
            .unwrap();
        diesel::update(one_time_tokens::table.find(old_link))
            .set(one_time_tokens::used_at.eq(Some(long_ago)))
            .execute(&mut conn)
            .unwrap();
        let old_mail = insert_message(&mut conn, "sent", long_ago, Some(long_ago)).unwrap();
        let new_mail = insert_message(&mut conn, "sent", now, Some(now)).unwrap();
        let unsent = insert_message(&mut conn, "failed", long_ago, None).unwrap();
        for at in [now - Duration::days(3 * 365), now] {
            diesel::insert_into(answer_history::table)
                .values((
                    answer_history::assessment_id.eq(assessment_id),
                    answer_history::question_key.eq("q"),
                    answer_history::old_value.eq(None::<String>),
                    answer_history::new_value.eq(Some("\"yes\"")),
                    answer_history::changed_by.eq(Some(user_id)),
                    answer_history::changed_at.eq(at),
                ))
                .execute(&mut conn)
                .unwrap();
        }
        let before = kept_records(&mut conn);
        assert!(
            !before.0.is_empty() && !before.1.is_empty(),
            "the seed submitted nothing"
        );

        let url = db.url_string();
        let run = || {
            json_of(run_dma(
                dir.path(),
                &url,
                &[("DMA_RETENTION_ANSWER_HISTORY_YEARS", "2")],
                &["retention", "run"],
            ))
        };
        let purged = run();
        for kind in PURGED_KINDS {
            assert!(
                purged[kind].as_u64().unwrap() >= 1,
                "[{backend}] {kind}: {purged}"
            );
        }
        let left: Vec<i64> = sessions::table
            .select(sessions::id)
            .load(&mut conn)
            .unwrap();
        assert_eq!(left.len(), 1, "[{backend}] sessions left: {left:?}");
        assert!(
            !left.contains(&old_session),
            "[{backend}] the ended session stayed"
        );
        let attempts: Vec<chrono::NaiveDateTime> = login_attempts::table
            .select(login_attempts::attempted_at)
            .load(&mut conn)
            .unwrap();
        assert!(!attempts.is_empty() && attempts.iter().all(|t| *t > now - Duration::days(1)));
        let links: Vec<i64> = one_time_tokens::table
            .select(one_time_tokens::id)
            .load(&mut conn)
            .unwrap();
        assert!(
            !links.is_empty() && !links.contains(&old_link),
            "[{backend}] {links:?}"
        );
        let bodies = |conn: &mut DbConnection, id: i64| -> (String, String, Option<String>) {
            email_outbox::table
                .find(id)
                .select((
                    email_outbox::body_text,
                    email_outbox::body_html,
                    email_outbox::dedupe_key,
                ))
                .first(conn)
                .unwrap()
        };
        let (text, html, key) = bodies(&mut conn, old_mail);
        assert!(
            text.is_empty() && html.is_empty(),
            "[{backend}] old body kept"
        );
        assert!(key.is_some(), "the row and its once-only key stay");
        assert!(
            !bodies(&mut conn, new_mail).0.is_empty(),
            "a recent body went"
        );
        assert!(
            !bodies(&mut conn, unsent).0.is_empty(),
            "an unsent body went"
        );
        let history: Vec<chrono::NaiveDateTime> = answer_history::table
            .select(answer_history::changed_at)
            .load(&mut conn)
            .unwrap();
        assert!(
            history.iter().all(|t| *t > now - Duration::days(2 * 365)),
            "[{backend}]"
        );
        assert!(!history.is_empty());
        assert_eq!(
            kept_records(&mut conn),
            before,
            "[{backend}] results or audit changed"
        );

        // Idempotent: a second pass finds nothing more.
        let again = run();
        for kind in PURGED_KINDS {
            assert_eq!(again[kind], 0, "[{backend}] {kind}: {again}");
        }
    }
}

/// Run a `dma` command on a database and data folder, with extra environment.
#[tokio::test]
async fn the_servers_scheduler_pass_runs_the_retention_purge() {
    for backend in backends() {
        let db = TestDb::new(backend);
        let pool = dma::db::Db::open(&db.url, 2).await.unwrap();
        let user = crate::helpers::create_user(
            &pool,
            "someone@example.nhs.uk",
            Role::Administrator,
            None,
            PASSWORD,
        )
        .await;
        let ended = Utc::now().naive_utc() - Duration::days(45);
        pool.write(move |conn| {
            dma::services::auth::session::create(conn, user, 12, None, None)?;
            diesel::update(sessions::table)
                .set((
                    sessions::expires_at.eq(ended),
                    sessions::last_seen_at.eq(ended),
                ))
                .execute(conn)?;
            Ok(())
        })
        .await
        .unwrap();
        let app = TestApp::spawn_on(db).await;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let left: i64 = app
                .db
                .read(|conn| Ok(sessions::table.count().get_result(conn)?))
                .await
                .unwrap();
            if left == 0 {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "[{backend}] the scheduler never purged the ended session"
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }
}

#[test]
fn backup_of_postgresql_points_to_its_own_tools() {
    if !backends().contains(&Backend::Postgres) {
        return;
    }
    let db = TestDb::new(Backend::Postgres);
    let dir = tempfile::tempdir().unwrap();
    for command in ["backup", "restore"] {
        let out = run_dma(
            dir.path(),
            &db.url_string(),
            &[],
            &[command, "copy.sqlite3"],
        );
        assert_eq!(out.status.code(), Some(2), "{command}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("pg_dump"));
    }
    assert!(!dir.path().join("copy.sqlite3").exists());
}

pub(crate) fn run_dma(
    dir: &Path,
    db_url: &str,
    env: &[(&str, &str)],
    args: &[&str],
) -> std::process::Output {
    dma()
        .current_dir(dir)
        .env("DATABASE_URL", db_url)
        .env("DMA_DATA_DIR", dir)
        .envs(env.iter().copied())
        .args(args)
        .output()
        .unwrap()
}

/// A command's JSON output, after checking that it succeeded.
pub(crate) fn json_of(out: std::process::Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

type Results = (
    Vec<(i64, i64, String, chrono::NaiveDateTime)>,
    Vec<(i64, i64, Option<f64>, String, bool)>,
    BTreeSet<(i64, String, String, Option<String>)>,
);

/// Every submission, score set and score, to compare a restored database with its source.
fn results(conn: &mut DbConnection) -> Results {
    let subs = submissions::table
        .select((
            submissions::id,
            submissions::assessment_id,
            submissions::reference,
            submissions::submitted_at,
        ))
        .order(submissions::id)
        .load(conn)
        .unwrap();
    let sets = score_sets::table
        .select((
            score_sets::id,
            score_sets::submission_id,
            score_sets::overall_score,
            score_sets::report,
            score_sets::is_current,
        ))
        .order(score_sets::id)
        .load(conn)
        .unwrap();
    let rows: Vec<(i64, String, String, Option<f64>)> = scores::table
        .select((
            scores::score_set_id,
            scores::level,
            scores::item_key,
            scores::score,
        ))
        .load(conn)
        .unwrap();
    let rows = rows
        .into_iter()
        .map(|(id, level, key, score)| (id, level, key, score.map(|s| format!("{s:.6}"))))
        .collect();
    (subs, sets, rows)
}

#[tokio::test]
async fn an_online_backup_restores_with_every_submission_and_score() {
    let db = TestDb::new(Backend::Sqlite);
    let seed_dir = tempfile::tempdir().unwrap();
    json_of(run_seed(
        &db,
        seed_dir.path(),
        &["--orgs", "12", "--cycles", "2"],
    ));
    let url = db.url_string();
    let source = results(&mut db.connect());
    assert!(
        source.0.len() >= 10 && !source.2.is_empty(),
        "too little seeded"
    );
    let app = TestApp::spawn_on(db).await;

    // The server keeps writing (sign-in attempts and their audit entries) during the backup.
    let writer = {
        let client = app.client.clone();
        let base = app.address.clone();
        tokio::spawn(async move {
            for i in 0..40 {
                let _ = client
                    .post(format!("{base}/login"))
                    .form(&[
                        ("email", format!("nobody{i}@example.nhs.uk")),
                        ("password", "x".into()),
                    ])
                    .send()
                    .await;
            }
        })
    };
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("dma-backup.sqlite3");
    let file_arg = file.display().to_string();
    let (url2, dir2) = (url.clone(), work.path().to_path_buf());
    let args = ["backup".to_string(), file_arg.clone()];
    let out = tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run_dma(&dir2, &url2, &[], &args)
    })
    .await
    .unwrap();
    writer.await.unwrap();
    let summary = json_of(out);
    assert_eq!(summary["submissions"], source.0.len());
    assert_eq!(summary["score_sets"], source.1.len());

    // Never over an existing file.
    let out = run_dma(work.path(), &url, &[], &["backup", &file_arg]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("already exists"));

    // Not over the running server's database, nor any database that holds data.
    let out = run_dma(work.path(), &url, &[], &["restore", &file_arg]);
    assert!(!out.status.success());
    let why = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        why.contains("restore refused") && why.contains("--force"),
        "{why}"
    );
    let live = app.db.read(|conn| Ok(results(conn))).await.unwrap();
    assert_eq!(
        live, source,
        "the refused restore changed the live database"
    );

    // Into a new data folder: every submission and score is there, the schema current.
    let restored_dir = tempfile::tempdir().unwrap();
    let target = restored_dir.path().join("dma.sqlite3");
    let target_url = format!("sqlite://{}", target.display());
    json_of(run_dma(
        restored_dir.path(),
        &target_url,
        &[],
        &["restore", &file_arg],
    ));
    let restored =
        results(&mut dma::db::establish(&dma::db::DatabaseUrl::Sqlite(target.clone())).unwrap());
    assert_eq!(restored, source, "the restored results differ");
    let migrated = json_of(run_dma(restored_dir.path(), &target_url, &[], &["migrate"]));
    assert_eq!(
        migrated["applied"],
        serde_json::json!([]),
        "the schema was not current"
    );

    // A second restore over it needs --force; a damaged backup is refused whatever.
    let out = run_dma(
        restored_dir.path(),
        &target_url,
        &[],
        &["restore", &file_arg],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("holds data"));
    json_of(run_dma(
        restored_dir.path(),
        &target_url,
        &[],
        &["restore", "--force", &file_arg],
    ));
    let damaged = work.path().join("damaged.sqlite3");
    let mut bytes = std::fs::read(&file).unwrap();
    let middle = bytes.len() / 2;
    for b in &mut bytes[middle..middle + 8192] {
        *b = 0xA5;
    }
    std::fs::write(&damaged, bytes).unwrap();
    let out = run_dma(
        restored_dir.path(),
        &target_url,
        &[],
        &["restore", "--force", &damaged.display().to_string()],
    );
    assert!(!out.status.success(), "a damaged backup was restored");
    let restored_again =
        results(&mut dma::db::establish(&dma::db::DatabaseUrl::Sqlite(target)).unwrap());
    assert_eq!(
        restored_again, source,
        "a refused restore changed the database"
    );
}
