//! Auditor review and improvement plans (issue 23), on both backends: the whole review loop
//! through the API and the pages (submit, query, answer with a changed answer that re-scores
//! and keeps the earlier scores, close, accept every section, reviewed), with its emails and
//! audit entries; bad input; improvement plan actions and their carry-forward into the next
//! cycle; and conflicting auditor actions sent at once on PostgreSQL.

use std::sync::Arc;

use diesel::prelude::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::sync::Barrier;

use crate::assessment_flow::answers_of;
use crate::browser::{outbox, Browser, World, PASSWORD};
use crate::helpers::{backends, TestApp};

const SECTIONS: [&str; 8] = [
    "strategy",
    "governance",
    "infrastructure",
    "cyber",
    "workforce",
    "citizens",
    "clinical-care",
    "population-health",
];

struct Tokens {
    world: World,
    approver: String,
    contributor: String,
    auditor: String,
    auditor2: String,
}

async fn call(
    app: &TestApp,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = app.client.request(method, app.url(path)).bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await.unwrap();
    let status = res.status();
    let text = res.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

impl Tokens {
    async fn new(app: &TestApp) -> Tokens {
        let world = World::seed(app).await;
        app.create_user(
            "auditor2@example.nhs.uk",
            dma::services::auth::roles::Role::Auditor,
            None,
            PASSWORD,
        )
        .await;
        let tokens = app
            .db
            .write(|conn| {
                let actor = dma::services::audit::Actor::system("test");
                let mut token = |email: &str| {
                    let user = dma::services::auth::users::find_by_email(conn, email)?.unwrap();
                    dma::services::auth::api_token::create(conn, &actor, user.id, "test", 30)
                        .map(|(_, t)| t)
                };
                Ok((
                    token("approver@a.nhs.uk")?,
                    token("contributor@a.nhs.uk")?,
                    token("auditor@example.nhs.uk")?,
                    token("auditor2@example.nhs.uk")?,
                ))
            })
            .await
            .unwrap();
        Tokens {
            world,
            approver: tokens.0,
            contributor: tokens.1,
            auditor: tokens.2,
            auditor2: tokens.3,
        }
    }

    fn base(&self) -> String {
        format!("/api/v1/assessments/{}", self.world.assessment_a)
    }

    /// Answer every question and submit.
    async fn submit(&self, app: &TestApp) {
        let all = answers_of("answers-wgll-acute-complete.yaml");
        let patch = json!({"answers": all.iter().map(|(k, v)| json!({"key": k, "value": v, "revision": 0})).collect::<Vec<_>>()});
        let (s, b) = call(
            app,
            &self.contributor,
            Method::PATCH,
            &format!("{}/answers", self.base()),
            Some(patch),
        )
        .await;
        assert_eq!(s, 200, "{b:?}");
        let (s, b) = call(
            app,
            &self.approver,
            Method::POST,
            &format!("{}/submit", self.base()),
            Some(json!({"name": "Dana Approver", "job_title": "CIO", "declaration": true})),
        )
        .await;
        assert_eq!(s, 201, "{b:?}");
    }

    async fn review(&self, app: &TestApp) -> Value {
        let (s, b) = call(
            app,
            &self.auditor,
            Method::GET,
            &format!("{}/review", self.base()),
            None,
        )
        .await;
        assert_eq!(s, 200, "{b:?}");
        b
    }
}

fn section<'a>(review: &'a Value, key: &str) -> &'a Value {
    review["sections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["key"] == key)
        .unwrap()
}

async fn audit_actions(app: &TestApp, prefix: &'static str) -> Vec<String> {
    app.db
        .read(move |conn| {
            use dma::db::schema::audit_log as a;
            Ok(a::table
                .filter(a::action.like(format!("{prefix}%")))
                .order(a::id)
                .select(a::action)
                .load(conn)?)
        })
        .await
        .unwrap()
}

async fn score_sets(app: &TestApp, id: i64) -> Vec<(bool, Option<f64>)> {
    app.db
        .read(move |conn| {
            use dma::db::schema::score_sets as s;
            Ok(s::table
                .filter(s::assessment_id.eq(id))
                .order(s::id)
                .select((s::is_current, s::overall_score))
                .load(conn)?)
        })
        .await
        .unwrap()
}

fn kinds(mail: &[(String, String, String)], kind: &str) -> Vec<String> {
    mail.iter()
        .filter(|(k, _, _)| k == kind)
        .map(|(_, to, _)| to.clone())
        .collect()
}

#[tokio::test]
async fn the_review_loop_queries_answers_rescoring_closes_and_accepts_every_section() {
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        let t = Tokens::new(&app).await;
        let base = t.base();

        // Before submission nothing can be reviewed (409), and auditors cannot even read it.
        let (s, _) = call(
            &app,
            &t.auditor,
            Method::GET,
            &format!("{base}/review"),
            None,
        )
        .await;
        assert_eq!(s, 403, "[{backend}]");
        let (s, b) = call(
            &app,
            &t.approver,
            Method::GET,
            &format!("{base}/review"),
            None,
        )
        .await;
        assert_eq!(
            (s.as_u16(), b["state"].as_str()),
            (200, Some("not_reviewed")),
            "[{backend}]"
        );
        t.submit(&app).await;
        let review = t.review(&app).await;
        assert_eq!(review["state"], "not_reviewed", "[{backend}]");
        assert_eq!(review["sections"].as_array().unwrap().len(), 8);

        // The auditor raises a query on the strategy question.
        let (s, q) = call(
            &app,
            &t.auditor,
            Method::POST,
            &format!("{base}/review/queries"),
            Some(json!({"question": "wl-strategy", "message": "Where is the monitoring report?"})),
        )
        .await;
        assert_eq!(s, 201, "[{backend}] {q:?}");
        assert_eq!(q["status"], "open");
        assert_eq!(q["section"], "strategy");
        let query = q["id"].as_i64().unwrap();
        let review = t.review(&app).await;
        assert_eq!(review["state"], "in_review", "[{backend}]");
        assert_eq!(section(&review, "strategy")["state"], "queried");
        // A second query on the same question while it is unclosed: 409.
        let (s, _) = call(
            &app,
            &t.auditor2,
            Method::POST,
            &format!("{base}/review/queries"),
            Some(json!({"question": "wl-strategy", "message": "And the budget?"})),
        )
        .await;
        assert_eq!(s, 409, "[{backend}]");
        // The section cannot be accepted while it has an unclosed query.
        let rev = section(&review, "strategy")["revision"].as_i64().unwrap();
        let (s, _) = call(
            &app,
            &t.auditor,
            Method::POST,
            &format!("{base}/review/sections/strategy/accept"),
            Some(json!({"revision": rev})),
        )
        .await;
        assert_eq!(s, 409, "[{backend}]");

        // A contributor cannot change the answer (it resubmits): 403, nothing changed.
        let (s, _) = call(
            &app,
            &t.contributor,
            Method::POST,
            &format!("{base}/review/queries/{query}/answer"),
            Some(
                json!({"message": "It is yearly", "revision": 1, "answer": 5, "declaration": true}),
            ),
        )
        .await;
        assert_eq!(s, 403, "[{backend}]");
        // An approver without the declaration: 422.
        let (s, b) = call(
            &app,
            &t.approver,
            Method::POST,
            &format!("{base}/review/queries/{query}/answer"),
            Some(json!({"message": "It is yearly", "revision": 1, "answer": 5})),
        )
        .await;
        assert_eq!(s, 422, "[{backend}] {b:?}");
        assert_eq!(score_sets(&app, t.world.assessment_a).await.len(), 1);

        // The approver answers and changes the answer: reopened, saved, resubmitted and
        // re-scored; the earlier score set is kept, no longer current.
        let before = score_sets(&app, t.world.assessment_a).await;
        let (s, q) = call(
            &app,
            &t.approver,
            Method::POST,
            &format!("{base}/review/queries/{query}/answer"),
            Some(json!({"message": "The strategy is now reviewed yearly; report attached to the board minutes.", "revision": 1, "answer": 5, "declaration": true})),
        )
        .await;
        assert_eq!(s, 200, "[{backend}] {q:?}");
        assert_eq!(q["status"], "answered");
        assert_eq!(q["answer_changed"], true);
        let after = score_sets(&app, t.world.assessment_a).await;
        assert_eq!(after.len(), 2, "[{backend}] a new score set");
        assert_eq!(
            after[0],
            (false, before[0].1),
            "[{backend}] the earlier one is kept"
        );
        assert!(after[1].0, "[{backend}] the new one is current");
        assert_ne!(after[1].1, before[0].1, "[{backend}] re-scored");
        let (s, a) = call(&app, &t.approver, Method::GET, &base, None).await;
        assert_eq!(s, 200);
        assert_eq!(a["status"], "submitted", "[{backend}] {a:?}");
        // Answering again: the query is no longer open.
        let (s, _) = call(
            &app,
            &t.approver,
            Method::POST,
            &format!("{base}/review/queries/{query}/answer"),
            Some(json!({"message": "again", "revision": 2})),
        )
        .await;
        assert_eq!(s, 409, "[{backend}]");

        // The auditor closes it (a stale revision first: 409).
        let (s, _) = call(
            &app,
            &t.auditor,
            Method::POST,
            &format!("{base}/review/queries/{query}/close"),
            Some(json!({"revision": 1})),
        )
        .await;
        assert_eq!(s, 409, "[{backend}]");
        let (s, q) = call(
            &app,
            &t.auditor,
            Method::POST,
            &format!("{base}/review/queries/{query}/close"),
            Some(json!({"revision": 2})),
        )
        .await;
        assert_eq!(s, 200, "[{backend}] {q:?}");
        assert_eq!(q["status"], "closed");

        // Then accepts every section: reviewed.
        let review = t.review(&app).await;
        for key in SECTIONS {
            let rev = section(&review, key)["revision"].as_i64().unwrap();
            let (s, b) = call(
                &app,
                &t.auditor,
                Method::POST,
                &format!("{base}/review/sections/{key}/accept"),
                Some(json!({"revision": rev})),
            )
            .await;
            assert_eq!(s, 200, "[{backend}] {key}: {b:?}");
        }
        let review = t.review(&app).await;
        assert_eq!(review["state"], "reviewed", "[{backend}] {review:?}");
        // Accepting again: 409.
        let (s, _) = call(
            &app,
            &t.auditor,
            Method::POST,
            &format!("{base}/review/sections/cyber/accept"),
            Some(json!({"revision": 1})),
        )
        .await;
        assert_eq!(s, 409, "[{backend}]");

        // Every step emailed through the outbox, to the right people.
        let mail = outbox(&app).await;
        let raised = kinds(&mail, "review_query_raised");
        assert_eq!(
            raised.len(),
            2,
            "[{backend}] approver and contributor: {raised:?}"
        );
        assert!(raised.contains(&"contributor@a.nhs.uk".to_string()));
        assert_eq!(
            kinds(&mail, "review_query_answered"),
            vec!["auditor@example.nhs.uk"]
        );
        assert_eq!(
            kinds(&mail, "review_query_closed"),
            vec!["approver@a.nhs.uk"]
        );
        assert_eq!(
            kinds(&mail, "review_section_accepted").len(),
            8,
            "[{backend}]"
        );
        assert_eq!(kinds(&mail, "review_completed"), vec!["approver@a.nhs.uk"]);
        let answered = mail
            .iter()
            .find(|(k, _, _)| k == "review_query_answered")
            .unwrap();
        assert!(
            answered.2.contains("They changed the answer"),
            "{}",
            answered.2
        );
        // And in the audit log.
        let audit = audit_actions(&app, "review.").await;
        assert_eq!(
            audit.iter().filter(|a| *a == "review.accept").count(),
            8,
            "[{backend}] {audit:?}"
        );
        for action in [
            "review.query_raised",
            "review.query_answered",
            "review.query_closed",
            "review.complete",
        ] {
            assert!(
                audit.iter().any(|a| a == action),
                "[{backend}] {action}: {audit:?}"
            );
        }
        assert!(
            audit_actions(&app, "assessment.reopen").await.len() == 1,
            "[{backend}]"
        );

        // The review state is in the scores export.
        let (s, export) = call(
            &app,
            &t.auditor,
            Method::GET,
            "/api/v1/exports/scores?format=json",
            None,
        )
        .await;
        assert_eq!(s, 200, "[{backend}] {export:?}");
        let text = export.to_string();
        assert!(
            text.contains("\"review_state\":\"reviewed\""),
            "[{backend}] {text}"
        );
        assert!(
            text.contains("\"section_review_state\":\"accepted\""),
            "[{backend}]"
        );
        // And in the national figures: the share of organisations and of domains reviewed.
        let (b, _) = signed_in(&app, "auditor@example.nhs.uk").await;
        let national = b.text("/reports").await;
        assert!(
            national.contains("1 of 1 submitted organisations reviewed (100%), and 8 of 8 of their domains accepted (100%)"),
            "[{backend}] {national}"
        );
    }
}

#[tokio::test]
async fn review_refuses_bad_input_and_the_wrong_people() {
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        let t = Tokens::new(&app).await;
        let base = t.base();
        // Not submitted: an administrator (who may read it) is told why.
        let admin = app
            .db
            .write(|conn| {
                let actor = dma::services::audit::Actor::system("test");
                let user = dma::services::auth::users::find_by_email(conn, "admin@example.nhs.uk")?
                    .unwrap();
                dma::services::auth::api_token::create(conn, &actor, user.id, "test", 30)
                    .map(|(_, t)| t)
            })
            .await
            .unwrap();
        let raise = |m: &str| json!({"question": "wl-strategy", "message": m});
        let (s, _) = call(
            &app,
            &admin,
            Method::POST,
            &format!("{base}/review/queries"),
            Some(raise("Why?")),
        )
        .await;
        assert_eq!(s, 409, "[{backend}] not submitted");
        t.submit(&app).await;
        // An empty message, an unknown question: 422.
        let (s, b) = call(
            &app,
            &t.auditor,
            Method::POST,
            &format!("{base}/review/queries"),
            Some(raise("   ")),
        )
        .await;
        assert_eq!(s, 422, "[{backend}] {b:?}");
        let (s, b) = call(
            &app,
            &t.auditor,
            Method::POST,
            &format!("{base}/review/queries"),
            Some(json!({"question": "no-such-question", "message": "Why?"})),
        )
        .await;
        assert_eq!(s, 422, "[{backend}] {b:?}");
        // The wrong role: organisation people cannot raise, accept or close.
        for token in [&t.approver, &t.contributor] {
            let (s, _) = call(
                &app,
                token,
                Method::POST,
                &format!("{base}/review/queries"),
                Some(raise("Why?")),
            )
            .await;
            assert_eq!(s, 403, "[{backend}]");
            let (s, _) = call(
                &app,
                token,
                Method::POST,
                &format!("{base}/review/sections/strategy/accept"),
                Some(json!({"revision": 0})),
            )
            .await;
            assert_eq!(s, 403, "[{backend}]");
        }
        // An auditor cannot answer a query.
        let (s, q) = call(
            &app,
            &t.auditor,
            Method::POST,
            &format!("{base}/review/queries"),
            Some(raise("Why?")),
        )
        .await;
        assert_eq!(s, 201);
        let id = q["id"].as_i64().unwrap();
        let (s, _) = call(
            &app,
            &t.auditor,
            Method::POST,
            &format!("{base}/review/queries/{id}/answer"),
            Some(json!({"message": "x", "revision": 1})),
        )
        .await;
        assert_eq!(s, 403, "[{backend}]");
        // An empty answer: 422; an answer the question does not accept: 422.
        let (s, _) = call(
            &app,
            &t.approver,
            Method::POST,
            &format!("{base}/review/queries/{id}/answer"),
            Some(json!({"message": "", "revision": 1})),
        )
        .await;
        assert_eq!(s, 422, "[{backend}]");
        let (s, _) = call(
            &app,
            &t.approver,
            Method::POST,
            &format!("{base}/review/queries/{id}/answer"),
            Some(json!({"message": "x", "revision": 1, "answer": "eleven", "declaration": true})),
        )
        .await;
        assert_eq!(s, 422, "[{backend}]");
        // An unknown query: 404.
        let (s, _) = call(
            &app,
            &t.auditor,
            Method::POST,
            &format!("{base}/review/queries/99999/close"),
            Some(json!({"revision": 1})),
        )
        .await;
        assert_eq!(s, 404, "[{backend}]");
        // Nothing half-stored: the query is still open at revision 1, one score set.
        let review = t.review(&app).await;
        let q = &section(&review, "strategy")["queries"][0];
        assert_eq!(
            (q["status"].as_str(), q["revision"].as_i64()),
            (Some("open"), Some(1)),
            "[{backend}]"
        );
        assert_eq!(score_sets(&app, t.world.assessment_a).await.len(), 1);
    }
}

async fn signed_in(app: &TestApp, email: &str) -> (Browser, String) {
    let b = Browser::new(app);
    b.sign_in(email, PASSWORD).await;
    let csrf = b.csrf().await;
    (b, csrf)
}

#[tokio::test]
async fn on_the_pages_an_auditor_queries_and_the_organisation_answers_with_a_changed_answer() {
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        let t = Tokens::new(&app).await;
        t.submit(&app).await;
        let a = t.world.assessment_a;
        let (auditor, au_csrf) = signed_in(&app, "auditor@example.nhs.uk").await;
        let (approver, ap_csrf) = signed_in(&app, "approver@a.nhs.uk").await;
        let page = auditor.text(&format!("/assessments/{a}/audit")).await;
        assert!(
            page.contains("Auditor review") && page.contains("Not reviewed"),
            "[{backend}]"
        );
        // An empty query is refused on the page, with what was chosen kept.
        let res = auditor
            .post(
                &format!("/assessments/{a}/audit/queries"),
                &[
                    ("csrf_token", &au_csrf),
                    ("section", "strategy"),
                    ("question", "wl-strategy"),
                    ("message", ""),
                ],
            )
            .await;
        assert_eq!(
            res.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "[{backend}]"
        );
        assert!(res
            .text()
            .await
            .unwrap()
            .contains("Say what you are asking about"));
        let res = auditor
            .post(
                &format!("/assessments/{a}/audit/queries"),
                &[
                    ("csrf_token", &au_csrf),
                    ("section", "strategy"),
                    ("question", "wl-strategy"),
                    ("message", "Is it resourced?"),
                ],
            )
            .await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "[{backend}]");
        let review = t.review(&app).await;
        let query = section(&review, "strategy")["queries"][0]["id"]
            .as_i64()
            .unwrap();
        // The organisation sees it on the results page's review state and the query page.
        let results = approver.text(&format!("/assessments/{a}/results")).await;
        assert!(results.contains("In review"), "[{backend}]");
        let qpage = approver
            .text(&format!("/assessments/{a}/audit/queries/{query}"))
            .await;
        assert!(
            qpage.contains("Is it resourced?") && qpage.contains("Send the answer"),
            "[{backend}]"
        );
        // The approver changes the answer without the declaration: 422, then with it.
        let path = format!("/assessments/{a}/audit/queries/{query}/answer");
        let res = approver
            .post(
                &path,
                &[
                    ("csrf_token", &ap_csrf),
                    ("revision", "1"),
                    ("response", "Now it is"),
                    ("q.wl-strategy", "5"),
                ],
            )
            .await;
        assert_eq!(
            res.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "[{backend}]"
        );
        let res = approver
            .post(
                &path,
                &[
                    ("csrf_token", &ap_csrf),
                    ("revision", "1"),
                    ("response", "Now it is"),
                    ("q.wl-strategy", "5"),
                    ("declaration", "yes"),
                ],
            )
            .await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "[{backend}]");
        assert_eq!(score_sets(&app, a).await.len(), 2, "[{backend}]");
        let page = auditor.text(&format!("/assessments/{a}/audit")).await;
        assert!(
            page.contains("answer changed and resubmitted"),
            "[{backend}]"
        );
        let res = auditor
            .post(
                &format!("/assessments/{a}/audit/queries/{query}/close"),
                &[("csrf_token", &au_csrf), ("revision", "2")],
            )
            .await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "[{backend}]");
        let res = auditor
            .post(
                &format!("/assessments/{a}/audit/sections/strategy/accept"),
                &[("csrf_token", &au_csrf), ("revision", "1")],
            )
            .await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "[{backend}]");
        let review = t.review(&app).await;
        assert_eq!(
            section(&review, "strategy")["state"],
            "accepted",
            "[{backend}]"
        );
    }
}

#[tokio::test]
async fn improvement_plan_actions_are_kept_changed_and_carried_into_the_next_cycle() {
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        let t = Tokens::new(&app).await;
        t.submit(&app).await;
        let base = t.base();
        let (s, plan) = call(
            &app,
            &t.contributor,
            Method::GET,
            &format!("{base}/plan"),
            None,
        )
        .await;
        assert_eq!(s, 200, "[{backend}] {plan:?}");
        assert_eq!(
            plan["threshold"], "Defined",
            "[{backend}] the middle band by default"
        );
        assert_eq!(plan["chosen"], false);
        // Add: one owned by a person, one by a named role; bad input refused.
        let add = |body: Value| {
            let (app, token, path) = (&app, t.contributor.clone(), format!("{base}/plan/actions"));
            async move { call(app, &token, Method::POST, &path, Some(body)).await }
        };
        let (s, a1) = add(json!({"domain": "strategy", "title": "Resource the strategy", "owner_user_id": t.world.approver_a, "due_on": "2027-03-31"})).await;
        assert_eq!(s, 201, "[{backend}] {a1:?}");
        let (s, a2) = add(json!({"domain": "cyber", "title": "Offline backups", "owner_text": "Head of IT", "status": "in_progress"})).await;
        assert_eq!(s, 201, "[{backend}] {a2:?}");
        let (s, a3) =
            add(json!({"domain": "cyber", "title": "MFA everywhere", "owner_text": "CISO"})).await;
        assert_eq!(s, 201, "[{backend}] {a3:?}");
        let (s, _) =
            add(json!({"domain": "cyber", "title": "Offline backups", "owner_text": "Someone"}))
                .await;
        assert_eq!(s, 409, "[{backend}] the same title twice in a domain");
        let (s, _) = add(json!({"domain": "nowhere", "title": "X", "owner_text": "Y"})).await;
        assert_eq!(s, 422, "[{backend}]");
        let (s, _) = add(json!({"domain": "cyber", "title": " ", "owner_text": "Y"})).await;
        assert_eq!(s, 422, "[{backend}]");
        let (s, _) = add(json!({"domain": "cyber", "title": "No owner"})).await;
        assert_eq!(s, 422, "[{backend}]");
        let (s, _) = add(
            json!({"domain": "cyber", "title": "Outsider", "owner_user_id": t.world.approver_b}),
        )
        .await;
        assert_eq!(s, 422, "[{backend}] an owner from another organisation");
        // An auditor reads the plan but cannot change it.
        let (s, _) = call(&app, &t.auditor, Method::GET, &format!("{base}/plan"), None).await;
        assert_eq!(s, 200, "[{backend}]");
        let (s, _) = call(
            &app,
            &t.auditor,
            Method::POST,
            &format!("{base}/plan/actions"),
            Some(json!({"domain": "cyber", "title": "Z", "owner_text": "Y"})),
        )
        .await;
        assert_eq!(s, 403, "[{backend}]");
        // Change: done; a stale revision is refused.
        let id3 = a3["id"].as_i64().unwrap();
        let (s, b) = call(
            &app,
            &t.approver,
            Method::PATCH,
            &format!("{base}/plan/actions/{id3}"),
            Some(json!({"revision": 1, "status": "done"})),
        )
        .await;
        assert_eq!(s, 200, "[{backend}] {b:?}");
        assert_eq!(b["status"], "done");
        let (s, _) = call(
            &app,
            &t.approver,
            Method::PATCH,
            &format!("{base}/plan/actions/{id3}"),
            Some(json!({"revision": 1, "status": "dropped"})),
        )
        .await;
        assert_eq!(s, 409, "[{backend}]");

        // Owners who are people of the organisation are told, once, unless they gave the
        // action to themselves: a1 (the contributor gave it to the approver) is emailed; a2
        // handed by the approver to the contributor is emailed; a3 taken by the contributor
        // themselves is not, nor are owners named in words.
        let id2 = a2["id"].as_i64().unwrap();
        let (s, b) = call(
            &app,
            &t.approver,
            Method::PATCH,
            &format!("{base}/plan/actions/{id2}"),
            Some(json!({"revision": 1, "owner_user_id": t.world.contributor_a})),
        )
        .await;
        assert_eq!(s, 200, "[{backend}] {b:?}");
        let (s, b) = call(
            &app,
            &t.contributor,
            Method::PATCH,
            &format!("{base}/plan/actions/{id3}"),
            Some(json!({"revision": 2, "owner_user_id": t.world.contributor_a})),
        )
        .await;
        assert_eq!(s, 200, "[{backend}] {b:?}");
        let mail = outbox(&app).await;
        let told: Vec<&(String, String, String)> = mail
            .iter()
            .filter(|(k, _, _)| k == "plan_action_assigned")
            .collect();
        assert_eq!(
            told.iter()
                .map(|(_, to, _)| to.as_str())
                .collect::<Vec<_>>(),
            vec!["approver@a.nhs.uk", "contributor@a.nhs.uk"],
            "[{backend}] {told:?}"
        );
        assert!(told[0].2.contains("Resource the strategy") && told[0].2.contains("31 March 2027"));
        assert!(told[1].2.contains("Offline backups") && told[1].2.contains("/plan"));

        // A new cycle: the two unfinished actions continue, the done one does not.
        let version: i64 = app
            .db
            .read(|conn| {
                use dma::db::schema::questionnaire_versions as v;
                Ok(v::table.select(v::id).first(conn)?)
            })
            .await
            .unwrap();
        let notifier = app.notifier.clone();
        let next = app
            .db
            .write(move |conn| {
                let actor = dma::services::audit::Actor::system("test");
                let today = chrono::Utc::now().date_naive();
                dma::services::cycles::open(
                    conn,
                    &actor,
                    &dma::services::cycles::NewCycle {
                        label: "2026/27".into(),
                        opens_on: today,
                        deadline: today + chrono::Duration::days(60),
                        versions: [("acute".to_string(), version)].into_iter().collect(),
                    },
                    &notifier,
                )
            })
            .await
            .unwrap();
        let org_a = t.world.org_a;
        let next_id: i64 = app
            .db
            .read(move |conn| {
                use dma::db::schema::assessments as a;
                Ok(a::table
                    .filter(a::cycle_id.eq(next.id))
                    .filter(a::organisation_id.eq(org_a))
                    .select(a::id)
                    .first(conn)?)
            })
            .await
            .unwrap();
        let (s, plan) = call(
            &app,
            &t.contributor,
            Method::GET,
            &format!("/api/v1/assessments/{next_id}/plan"),
            None,
        )
        .await;
        assert_eq!(s, 200, "[{backend}] {plan:?}");
        let carried: Vec<&Value> = plan["domains"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|d| d["actions"].as_array().unwrap())
            .collect();
        let mut titles: Vec<&str> = carried
            .iter()
            .map(|a| a["title"].as_str().unwrap())
            .collect();
        titles.sort();
        assert_eq!(
            titles,
            vec!["Offline backups", "Resource the strategy"],
            "[{backend}]"
        );
        for a in &carried {
            assert_eq!(a["carried_from_cycle"], "2025/26", "[{backend}]");
        }
        assert_eq!(audit_actions(&app, "plan.carry_forward").await.len(), 1);
        assert_eq!(audit_actions(&app, "plan.action_added").await.len(), 3);
        // Carried once: opening a cycle again does not copy them again.
        let copied = app
            .db
            .write(move |conn| {
                let actor = dma::services::audit::Actor::system("test");
                dma::services::plans::carry_forward(
                    conn,
                    &actor,
                    next.id,
                    chrono::Utc::now().naive_utc(),
                )
            })
            .await
            .unwrap();
        assert_eq!(copied, 0, "[{backend}]");
        // The organisation report shows what was promised beside what moved.
        let (b, _) = signed_in(&app, "auditor@example.nhs.uk").await;
        let report = b.text(&format!("/reports/organisations/{org_a}")).await;
        assert!(
            report.contains("Improvement plan") && report.contains("Resource the strategy"),
            "[{backend}]"
        );
        // And the year-on-year page counts each cycle's actions beside the change.
        let trends = b.text("/reports/trends").await;
        let table = trends
            .split("id=\"plans-wgll-acute\"")
            .nth(1)
            .unwrap_or_else(|| panic!("[{backend}] no plan table: {trends}"));
        let row = table.split("2025/26").nth(1).unwrap();
        let cells: Vec<&str> = row
            .split("dma-table__cell--numeric\">")
            .skip(1)
            .take(6)
            .map(|c| c.split('<').next().unwrap())
            .collect();
        assert_eq!(cells, ["3", "0", "1", "1", "1", "0"], "[{backend}]");
    }
}

/// Send each request at once (released together by a barrier); the statuses.
async fn at_once(app: &TestApp, requests: Vec<(String, String, Value)>) -> Vec<u16> {
    let barrier = Arc::new(Barrier::new(requests.len()));
    let mut tasks = Vec::new();
    for (token, path, body) in requests {
        let barrier = barrier.clone();
        let req = app
            .client
            .post(app.url(&path))
            .bearer_auth(token)
            .json(&body);
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            req.send().await.unwrap().status().as_u16()
        }));
    }
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_conflicting_auditor_actions_on_postgres_are_decided_once() {
    if !backends().contains(&dma::db::Backend::Postgres) {
        return;
    }
    let app = TestApp::spawn(dma::db::Backend::Postgres).await;
    let t = Tokens::new(&app).await;
    t.submit(&app).await;
    let base = t.base();
    let count = |s: &[u16], want: u16| s.iter().filter(|x| **x == want).count();
    for (trial, key) in SECTIONS.iter().enumerate() {
        let rev = section(&t.review(&app).await, key)["revision"]
            .as_i64()
            .unwrap();
        // Two auditors: four acceptances and four queries on the section at once, all from
        // the same revision. Either one acceptance wins and the queries then withdraw it, or
        // a query wins and every acceptance is refused: never an accepted section with an
        // open query.
        let question = match *key {
            "strategy" => "wl-strategy",
            "governance" => "wl-cio",
            "infrastructure" => "sf-epr",
            "cyber" => "sp-mfa",
            "workforce" => "spp-login-time",
            "citizens" => "ec-nhs-app",
            "clinical-care" => "ic-remote-monitoring",
            _ => "hp-data-sharing",
        };
        let mut requests = Vec::new();
        for i in 0..8 {
            let token = if i % 2 == 0 {
                t.auditor.clone()
            } else {
                t.auditor2.clone()
            };
            if i < 4 {
                requests.push((
                    token,
                    format!("{base}/review/sections/{key}/accept"),
                    json!({"revision": rev}),
                ));
            } else {
                requests.push((
                    token,
                    format!("{base}/review/queries"),
                    json!({"question": question, "message": format!("Query {i}")}),
                ));
            }
        }
        let statuses = at_once(&app, requests).await;
        let accepted = count(&statuses[..4], 200);
        let raised = count(&statuses[4..], 201);
        assert_eq!(
            raised, 1,
            "trial {trial}: one query per question {statuses:?}"
        );
        assert!(accepted <= 1, "trial {trial}: {statuses:?}");
        assert_eq!(
            count(&statuses, 409),
            7 - accepted,
            "trial {trial}: {statuses:?}"
        );
        let review = t.review(&app).await;
        let s = section(&review, key);
        assert_eq!(s["state"], "queried", "trial {trial}: the query stands");
        let q = s["queries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|q| q["status"] == "open")
            .unwrap();
        let id = q["id"].as_i64().unwrap();
        // Eight closes at once: one.
        let requests = (0..8)
            .map(|i| {
                let token = if i % 2 == 0 {
                    t.auditor.clone()
                } else {
                    t.auditor2.clone()
                };
                (
                    token,
                    format!("{base}/review/queries/{id}/close"),
                    json!({"revision": 1}),
                )
            })
            .collect();
        let statuses = at_once(&app, requests).await;
        assert_eq!(
            (count(&statuses, 200), count(&statuses, 409)),
            (1, 7),
            "trial {trial}: {statuses:?}"
        );
        // Eight acceptances at once: one.
        let rev = section(&t.review(&app).await, key)["revision"]
            .as_i64()
            .unwrap();
        let requests = (0..8)
            .map(|i| {
                let token = if i % 2 == 0 {
                    t.auditor.clone()
                } else {
                    t.auditor2.clone()
                };
                (
                    token,
                    format!("{base}/review/sections/{key}/accept"),
                    json!({"revision": rev}),
                )
            })
            .collect();
        let statuses = at_once(&app, requests).await;
        assert_eq!(
            (count(&statuses, 200), count(&statuses, 409)),
            (1, 7),
            "trial {trial}: {statuses:?}"
        );
    }
    assert_eq!(t.review(&app).await["state"], "reviewed");
    let completed = outbox(&app)
        .await
        .into_iter()
        .filter(|(k, _, _)| k == "review_completed")
        .count();
    // One email each time the review became complete (an acceptance that won a race with a
    // query may have completed it for a moment), never two for one completion.
    let completions = audit_actions(&app, "review.complete").await.len();
    assert!(completions >= 1);
    assert_eq!(
        completed, completions,
        "one 'reviewed' email per completion"
    );

    // Improvement plans: eight people add the same action at once (one is stored), then
    // change it from the same revision at once (one change wins).
    let add = (0..8)
        .map(|i| {
            let token = if i % 2 == 0 { t.approver.clone() } else { t.contributor.clone() };
            (token, format!("{base}/plan/actions"), json!({"domain": "cyber", "title": "Test the offline backups", "owner_text": "Head of IT"}))
        })
        .collect();
    let statuses = at_once(&app, add).await;
    assert_eq!(
        (count(&statuses, 201), count(&statuses, 409)),
        (1, 7),
        "{statuses:?}"
    );
    let (_, plan) = call(
        &app,
        &t.approver,
        Method::GET,
        &format!("{base}/plan"),
        None,
    )
    .await;
    let id = plan["domains"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|d| d["actions"].as_array().unwrap())
        .find(|a| a["title"] == "Test the offline backups")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let barrier = Arc::new(Barrier::new(8));
    let mut tasks = Vec::new();
    for i in 0..8 {
        let token = if i % 2 == 0 {
            t.approver.clone()
        } else {
            t.contributor.clone()
        };
        let req = app
            .client
            .patch(app.url(&format!("{base}/plan/actions/{id}")))
            .bearer_auth(token)
            .json(&json!({"revision": 1, "status": if i % 2 == 0 { "done" } else { "dropped" }}));
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            req.send().await.unwrap().status().as_u16()
        }));
    }
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.unwrap());
    }
    assert_eq!(
        (count(&statuses, 200), count(&statuses, 409)),
        (1, 7),
        "{statuses:?}"
    );
}
