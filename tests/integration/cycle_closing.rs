//! Closing a cycle (issue 20): after the administrator confirms, nothing in the cycle
//! changes, respondents are told why, what was not submitted reads as "not submitted" for
//! good, submissions are final (score reports queued) and the change is audited. Two
//! administrators closing at once, and saves, submissions and extensions racing the close,
//! are sent in parallel against a real server: every request either happened before the close
//! or is refused with a 409 that says so, and nothing is half-stored.

use std::sync::Arc;

use diesel::prelude::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::sync::Barrier;

use crate::assessment_flow::answers_of;
use crate::browser::{Browser, World, PASSWORD};
use crate::helpers::{backends, TestApp};

const PROBLEM: &str = "https://dma.example/problems/";

/// An API token for the account with `email`.
async fn token(app: &TestApp, email: &str) -> String {
    let email = email.to_string();
    app.db
        .write(move |conn| {
            let actor = dma::services::audit::Actor::system("test");
            let user = dma::services::auth::users::find_by_email(conn, &email)?.unwrap();
            dma::services::auth::api_token::create(conn, &actor, user.id, "test", 30)
                .map(|(_, t)| t)
        })
        .await
        .unwrap()
}

/// One request, with a bearer token or a browser's cookies, as a future that sends it when
/// the barrier opens and returns the status and the body.
enum Request {
    Api(String, Method, String, Option<Value>),
    Form(reqwest::Client, String, Vec<(String, String)>),
}

async fn all_at_once(app: &TestApp, requests: Vec<Request>) -> Vec<(StatusCode, String)> {
    let barrier = Arc::new(Barrier::new(requests.len()));
    let mut tasks = Vec::new();
    for request in requests {
        let barrier = barrier.clone();
        let client = app.client.clone();
        let base = app.address.clone();
        tasks.push(tokio::spawn(async move {
            let req = match request {
                Request::Api(token, method, path, body) => {
                    let mut req = client
                        .request(method, format!("{base}{path}"))
                        .bearer_auth(token);
                    if let Some(body) = body {
                        req = req.json(&body);
                    }
                    req
                }
                Request::Form(browser, path, fields) => {
                    browser.post(format!("{base}{path}")).form(&fields)
                }
            };
            barrier.wait().await;
            let res = req.send().await.unwrap();
            let status = res.status();
            (status, res.text().await.unwrap())
        }));
    }
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

async fn api(
    app: &TestApp,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let (status, text) = all_at_once(
        app,
        vec![Request::Api(
            token.to_string(),
            method,
            path.to_string(),
            body,
        )],
    )
    .await
    .remove(0);
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// Every answer of the complete fixture for `assessment`, by `token`'s owner.
async fn answer_everything(app: &TestApp, token: &str, assessment: i64) {
    let all = answers_of("answers-wgll-acute-complete.yaml");
    let patch = json!({"answers": all.iter().map(|(k, v)| json!({"key": k, "value": v, "revision": 0})).collect::<Vec<_>>()});
    let (status, body) = api(
        app,
        token,
        Method::PATCH,
        &format!("/api/v1/assessments/{assessment}/answers"),
        Some(patch),
    )
    .await;
    assert_eq!(status, 200, "{body:?}");
}

/// Open another cycle for acute trusts with the world's published version; its id and the
/// assessments of RA1 and RB1 in it.
async fn open_cycle(app: &TestApp, label: &str) -> (i64, i64, i64) {
    let label = label.to_string();
    let notifier = app.notifier.clone();
    app.db
        .write(move |conn| {
            use dma::db::schema::{
                assessments as a, organisations as o, questionnaire_versions as v,
            };
            let actor = dma::services::audit::Actor::system("test");
            let version: i64 = v::table.select(v::id).first(conn)?;
            let today = chrono::Utc::now().date_naive();
            let opened = dma::services::cycles::open(
                conn,
                &actor,
                &dma::services::cycles::NewCycle {
                    label,
                    opens_on: today - chrono::Duration::days(1),
                    deadline: today + chrono::Duration::days(30),
                    versions: [("acute".to_string(), version)].into_iter().collect(),
                },
                &notifier,
            )?;
            let of = |conn: &mut dma::db::DbConnection,
                      code: &str|
             -> Result<i64, dma::error::AppError> {
                Ok(a::table
                    .inner_join(o::table.on(o::id.eq(a::organisation_id)))
                    .filter(a::cycle_id.eq(opened.id))
                    .filter(o::ods_code.eq(code))
                    .select(a::id)
                    .first(conn)?)
            };
            Ok((opened.id, of(conn, "RA1")?, of(conn, "RB1")?))
        })
        .await
        .unwrap()
}

/// (status, closed_at is set, deadline_override is set) of an assessment.
async fn assessment_state(app: &TestApp, id: i64) -> (String, bool, bool) {
    app.db
        .read(move |conn| {
            use dma::db::schema::assessments as a;
            Ok(a::table
                .find(id)
                .select((
                    a::status,
                    a::closed_at.is_not_null(),
                    a::deadline_override.is_not_null(),
                ))
                .first(conn)?)
        })
        .await
        .unwrap()
}

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

#[tokio::test]
async fn closing_a_cycle_ends_it_for_respondents_and_administrators_alike() {
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        let world = World::seed(&app).await;
        let a = world.assessment_a;
        let approver = token(&app, "approver@a.nhs.uk").await;
        answer_everything(&app, &approver, a).await;
        let (status, body) = api(
            &app,
            &approver,
            Method::POST,
            &format!("/api/v1/assessments/{a}/submit"),
            Some(json!({"name": "Dana Approver", "job_title": "CIO", "declaration": true})),
        )
        .await;
        assert_eq!(status, 201, "{body:?}");
        let b_id: i64 = count(
            &app,
            format!("SELECT id AS n FROM assessments WHERE id <> {a} ORDER BY id LIMIT 1"),
        )
        .await;

        // B's contributor has started: one answer saved.
        let contributor_b = Browser::new(&app);
        contributor_b
            .sign_in("contributor@b.nhs.uk", PASSWORD)
            .await;
        let csrf_b = contributor_b.csrf().await;
        let domain = format!("/assessments/{b_id}/domains/{}", world.domain_key);
        let page = contributor_b.text(&domain).await;
        assert!(
            page.contains("data-autosave-url"),
            "[{backend}] B can answer"
        );

        // The confirmation says what will happen, to how many.
        let admin = Browser::new(&app);
        admin.sign_in("admin@example.nhs.uk", PASSWORD).await;
        let csrf = admin.csrf().await;
        let cycle = admin.text("/admin/cycles/1").await;
        assert!(
            cycle.contains("href=\"/admin/cycles/1/close\""),
            "[{backend}]"
        );
        let confirm = admin.text("/admin/cycles/1/close").await;
        assert!(
            confirm.contains("Close this cycle?"),
            "[{backend}] {confirm}"
        );
        assert!(
            confirm.contains("<strong>1</strong> assessment that has not been submitted"),
            "[{backend}] {confirm}"
        );
        assert!(
            confirm.contains("<strong>1</strong> submitted assessment is final"),
            "[{backend}]"
        );
        // Looking at it changed nothing.
        assert!(!assessment_state(&app, b_id).await.1);

        // Without the CSRF token, nothing happens.
        let forged = admin
            .post("/admin/cycles/1/close", &[("csrf_token", "forged")])
            .await;
        assert_eq!(forged.status(), StatusCode::BAD_REQUEST, "[{backend}]");
        assert!(!assessment_state(&app, b_id).await.1);

        let res = admin
            .post("/admin/cycles/1/close", &[("csrf_token", &csrf)])
            .await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "[{backend}]");
        assert_eq!(
            res.headers()["location"].to_str().unwrap(),
            "/admin/cycles/1?done=closed"
        );
        let cycle = admin.text("/admin/cycles/1?done=closed").await;
        assert!(cycle.contains("The cycle is closed."), "[{backend}]");
        assert!(
            cycle.contains("Not submitted"),
            "[{backend}] B's status on the cycle page"
        );
        assert!(
            !cycle.contains("href=\"/admin/cycles/1/close\""),
            "[{backend}]"
        );
        let list = admin.text("/admin/cycles").await;
        assert!(list.contains("Closed"), "[{backend}]");

        // Stored: the cycle, every assessment, the audit entry, the score report.
        assert_eq!(
            count(&app, "SELECT COUNT(*) AS n FROM cycles WHERE status = 'closed' AND closed_at IS NOT NULL".into()).await,
            1
        );
        assert_eq!(
            count(
                &app,
                "SELECT COUNT(*) AS n FROM assessments WHERE closed_at IS NULL".into()
            )
            .await,
            0,
            "[{backend}] every assessment of the cycle is closed"
        );
        assert_eq!(
            count(&app, "SELECT COUNT(*) AS n FROM audit_log WHERE action = 'cycle.close' AND entity_id = '1'".into()).await,
            1
        );
        assert_eq!(
            count(
                &app,
                "SELECT COUNT(*) AS n FROM email_outbox WHERE kind = 'score_report'".into()
            )
            .await,
            1,
            "[{backend}] A's approver is sent the final score report"
        );

        // Respondents: told, and refused.
        let overview = contributor_b.text(&format!("/assessments/{b_id}")).await;
        assert!(overview.contains("Not submitted"), "[{backend}]");
        assert!(
            overview.contains("cycle closed on"),
            "[{backend}] {overview}"
        );
        assert!(!overview.contains("Sign off and submit"));
        let page = contributor_b.text(&domain).await;
        assert!(
            !page.contains("data-autosave-url"),
            "[{backend}] no autosave after closing"
        );
        assert!(page.contains("recorded as not submitted"), "[{backend}]");
        let save = contributor_b
            .post(
                &domain,
                &[
                    ("csrf_token", csrf_b.as_str()),
                    (&format!("present.{}", world.question_key), "1"),
                    (&format!("rev.{}", world.question_key), "0"),
                    (&format!("q.{}", world.question_key), "3"),
                ],
            )
            .await;
        assert!(
            save.status().is_client_error(),
            "[{backend}] {}",
            save.status()
        );
        let said = save.text().await.unwrap();
        assert!(said.contains("closed"), "[{backend}] {said}");
        let contributor_b_token = token(&app, "contributor@b.nhs.uk").await;
        let (status, body) = api(
            &app,
            &contributor_b_token,
            Method::PATCH,
            &format!("/api/v1/assessments/{b_id}/answers"),
            Some(json!({"answers": [{"key": world.question_key, "value": 3, "revision": 0}]})),
        )
        .await;
        assert_eq!(status, 409, "[{backend}] {body:?}");
        assert_eq!(body["type"], format!("{PROBLEM}conflict"));
        assert!(
            body["detail"].as_str().unwrap().contains("closed"),
            "{body:?}"
        );
        assert_eq!(
            count(
                &app,
                format!("SELECT COUNT(*) AS n FROM answers WHERE assessment_id = {b_id}")
            )
            .await,
            0,
            "[{backend}] nothing saved after the close"
        );

        // Administrators: no reopening, no extension, no second close.
        let reopen = admin
            .post(
                &format!("/assessments/{a}/reopen"),
                &[("csrf_token", &csrf), ("reason", "late fix")],
            )
            .await;
        assert_eq!(reopen.status(), StatusCode::CONFLICT, "[{backend}]");
        assert_eq!(assessment_state(&app, a).await.0, "submitted");
        let extend = admin
            .post(
                &format!("/assessments/{b_id}/deadline"),
                &[("csrf_token", &csrf), ("deadline", "2099-01-01")],
            )
            .await;
        assert_eq!(extend.status(), StatusCode::CONFLICT, "[{backend}]");
        assert!(extend.text().await.unwrap().contains("was closed on"));
        assert!(!assessment_state(&app, b_id).await.2);
        let again = admin
            .post("/admin/cycles/1/close", &[("csrf_token", &csrf)])
            .await;
        assert_eq!(again.status(), StatusCode::CONFLICT, "[{backend}]");
        let said = again.text().await.unwrap();
        assert!(
            said.contains("was closed on") && said.contains("dma-error-summary"),
            "[{backend}] {said}"
        );
        let admin_token = token(&app, "admin@example.nhs.uk").await;
        let (status, body) = api(
            &app,
            &admin_token,
            Method::POST,
            "/api/v1/cycles/1/close",
            None,
        )
        .await;
        assert_eq!(status, 409, "{body:?}");
        assert_eq!(body["type"], format!("{PROBLEM}conflict"));
        let (status, _) = api(
            &app,
            &admin_token,
            Method::POST,
            "/api/v1/cycles/999/close",
            None,
        )
        .await;
        assert_eq!(status, 404);
        assert_eq!(
            count(
                &app,
                "SELECT COUNT(*) AS n FROM audit_log WHERE action = 'cycle.close'".into()
            )
            .await,
            1,
            "[{backend}] refused closes are not audited as closes"
        );

        // Reports: B is not submitted, for good; the list of cycles says closed.
        let report = admin.text("/reports?status=not_submitted").await;
        assert!(report.contains("Not submitted"), "[{backend}]");
        let (status, body) = api(&app, &admin_token, Method::GET, "/api/v1/cycles", None).await;
        assert_eq!(status, 200);
        assert_eq!(body["items"][0]["status"], "closed", "{body:?}");
        assert!(body["items"][0]["closed_at"].is_string(), "{body:?}");
        let (status, body) = api(
            &app,
            &admin_token,
            Method::GET,
            &format!("/api/v1/assessments/{b_id}"),
            None,
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(
            (&body["closed"], &body["open"]),
            (&json!(true), &json!(false)),
            "{body:?}"
        );
        let (status, body) = api(
            &app,
            &admin_token,
            Method::GET,
            "/api/v1/assessments?status=not_submitted",
            None,
        )
        .await;
        assert_eq!(status, 200, "{body:?}");
        assert_eq!(body["items"].as_array().unwrap().len(), 1, "{body:?}");
        assert_eq!(body["items"][0]["id"], b_id, "{body:?}");
    }
}

/// Two administrators close the same cycle while an approver submits, a contributor saves and
/// an administrator extends a deadline, all at once, over several trials: one close wins and
/// the other is told; every other request either happened before the close (and is kept) or
/// is refused whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn closing_races_with_a_second_close_a_submission_a_save_and_an_extension() {
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        let world = World::seed(&app).await;
        app.create_user(
            "second.admin@example.nhs.uk",
            dma::services::auth::roles::Role::Administrator,
            None,
            PASSWORD,
        )
        .await;
        let admin_1 = token(&app, "admin@example.nhs.uk").await;
        let admin_2 = token(&app, "second.admin@example.nhs.uk").await;
        let approver = token(&app, "approver@a.nhs.uk").await;
        let contributor_b = token(&app, "contributor@b.nhs.uk").await;
        let admin = Browser::new(&app);
        admin.sign_in("admin@example.nhs.uk", PASSWORD).await;
        let csrf = admin.csrf().await;
        for trial in 0..5 {
            let label = format!("{}/{}", 2030 + trial, 31 + trial);
            let (cycle, a, b) = open_cycle(&app, &label).await;
            answer_everything(&app, &approver, a).await;
            let close = format!("/api/v1/cycles/{cycle}/close");
            let replies = all_at_once(
                &app,
                vec![
                    Request::Api(admin_1.clone(), Method::POST, close.clone(), None),
                    Request::Api(admin_2.clone(), Method::POST, close.clone(), None),
                    Request::Api(
                        approver.clone(),
                        Method::POST,
                        format!("/api/v1/assessments/{a}/submit"),
                        Some(json!({"name": "Dana", "job_title": "CIO", "declaration": true})),
                    ),
                    Request::Api(
                        contributor_b.clone(),
                        Method::PATCH,
                        format!("/api/v1/assessments/{b}/answers"),
                        Some(json!({"answers": [{"key": world.question_key, "value": 3, "revision": 0}]})),
                    ),
                    Request::Form(
                        admin.client.clone(),
                        format!("/assessments/{b}/deadline"),
                        vec![
                            ("csrf_token".into(), csrf.clone()),
                            ("deadline".into(), "2099-01-01".into()),
                        ],
                    ),
                ],
            )
            .await;
            let what = format!("[{backend}] trial {trial}: {replies:?}");
            let statuses: Vec<u16> = replies.iter().map(|r| r.0.as_u16()).collect();
            // One close, one refusal naming the close.
            let mut closes = [statuses[0], statuses[1]];
            closes.sort_unstable();
            assert_eq!(closes, [200, 409], "{what}");
            let refused = if statuses[0] == 409 {
                &replies[0].1
            } else {
                &replies[1].1
            };
            assert!(refused.contains("was closed on"), "{what}");
            // Nothing else is a server fault, and each outcome is all or nothing.
            let (a_status, a_closed, _) = assessment_state(&app, a).await;
            let submissions = count(
                &app,
                format!("SELECT COUNT(*) AS n FROM submissions WHERE assessment_id = {a}"),
            )
            .await;
            match statuses[2] {
                201 => {
                    assert_eq!(a_status, "submitted", "{what}");
                    assert_eq!(submissions, 1, "{what}");
                }
                409 => {
                    assert_ne!(a_status, "submitted", "{what}");
                    assert_eq!(submissions, 0, "{what}");
                    assert!(replies[2].1.contains("closed"), "{what}");
                }
                other => panic!("submit answered {other}: {what}"),
            }
            let saved = count(
                &app,
                format!("SELECT COUNT(*) AS n FROM answers WHERE assessment_id = {b}"),
            )
            .await;
            match statuses[3] {
                200 => assert_eq!(saved, 1, "{what}"),
                409 => {
                    assert_eq!(saved, 0, "{what}");
                    assert!(replies[3].1.contains("closed"), "{what}");
                }
                other => panic!("save answered {other}: {what}"),
            }
            let (_, b_closed, extended) = assessment_state(&app, b).await;
            match statuses[4] {
                303 => assert!(extended, "{what}"),
                409 => assert!(!extended, "{what}"),
                other => panic!("extension answered {other}: {what}"),
            }
            assert!(a_closed && b_closed, "{what}");
            assert_eq!(
                count(&app, format!("SELECT COUNT(*) AS n FROM audit_log WHERE action = 'cycle.close' AND entity_id = '{cycle}'")).await,
                1,
                "{what}"
            );
        }
    }
}
