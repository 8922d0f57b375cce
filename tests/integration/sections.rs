//! Working together on an assessment (issue 22): sections given to people, handed over,
//! reviewed or returned, on the pages and through the API, on both backends; and the write
//! paths under parallel conflicting requests on PostgreSQL (a status change against a status
//! someone else has just changed is a 409, never a silent overwrite).

use std::sync::Arc;

use diesel::prelude::*;
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::sync::Barrier;

use crate::browser::{outbox, Browser, World, PASSWORD};
use crate::helpers::{backends, TestApp};

const SECTION: &str = "strategy";

async fn signed_in(app: &TestApp, email: &str) -> (Browser, String) {
    let b = Browser::new(app);
    b.sign_in(email, PASSWORD).await;
    let csrf = b.csrf().await;
    (b, csrf)
}

fn section_path(w: &World) -> String {
    format!("/assessments/{}/sections/{SECTION}", w.assessment_a)
}

/// Answer every question of `domain` shown by the complete example answers (so the section
/// may go for review: every required question it shows is answered).
pub(crate) async fn answer_section(app: &TestApp, assessment: i64, domain: &'static str) {
    let all = crate::assessment_flow::answers_of("answers-wgll-acute-complete.yaml");
    app.db
        .write(move |conn| {
            let loaded = dma::services::assessments::load(conn, assessment)?;
            let q = loaded.questionnaire();
            let keys: Vec<String> = q
                .domains
                .iter()
                .filter(|d| d.key == domain)
                .flat_map(|d| d.questions.iter().map(|x| x.key.clone()))
                .collect();
            let mine = all
                .into_iter()
                .filter(|(k, _)| keys.contains(k))
                .collect::<std::collections::BTreeMap<_, _>>();
            let given = dma::domain::answers::validate(q, &mine).unwrap();
            let changes: Vec<dma::services::assessments::Change> = given
                .into_iter()
                .map(|(key, answer)| dma::services::assessments::Change {
                    seen_revision: loaded.answers.get(&key).map_or(0, |a| a.revision),
                    key,
                    answer: Some(answer),
                })
                .collect();
            dma::services::assessments::save(
                conn,
                &dma::services::audit::Actor::system("test"),
                assessment,
                &changes,
            )?;
            Ok(())
        })
        .await
        .unwrap();
}

async fn assignment_rows(app: &TestApp) -> i64 {
    app.db
        .read(|conn| {
            use dma::db::schema::section_assignments as s;
            Ok(s::table.count().get_result(conn)?)
        })
        .await
        .unwrap()
}

async fn status_row(app: &TestApp, assessment: i64) -> Option<(String, i64, Option<String>)> {
    app.db
        .read(move |conn| {
            use dma::db::schema::section_statuses as s;
            Ok(s::table
                .filter(s::assessment_id.eq(assessment))
                .filter(s::domain_key.eq(SECTION))
                .select((s::status, s::revision, s::message))
                .first(conn)
                .optional()?)
        })
        .await
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

async fn post_status(
    b: &Browser,
    w: &World,
    csrf: &str,
    to: &str,
    rev: i64,
    message: &str,
) -> reqwest::Response {
    b.post(
        &format!("{}/status", section_path(w)),
        &[
            ("csrf_token", csrf),
            ("status", to),
            ("revision", &rev.to_string()),
            ("message", message),
        ],
    )
    .await
}

#[tokio::test]
async fn an_approver_shares_out_a_section_which_is_handed_over_returned_and_reviewed() {
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        let w = World::seed(&app).await;
        answer_section(&app, w.assessment_a, SECTION).await;
        let (approver, a_csrf) = signed_in(&app, "approver@a.nhs.uk").await;
        let (contributor, c_csrf) = signed_in(&app, "contributor@a.nhs.uk").await;
        let path = section_path(&w);

        // Before: nobody has it, and the overview says so.
        let overview = approver
            .text(&format!("/assessments/{}", w.assessment_a))
            .await;
        assert!(
            overview.contains("Nobody has this section yet"),
            "[{backend}]"
        );
        assert!(overview.contains("0 of "), "[{backend}]");

        // The approver gives it to the contributor with a due date.
        let due = (chrono::Utc::now().date_naive() + chrono::Duration::days(10))
            .format("%Y-%m-%d")
            .to_string();
        let person = w.contributor_a.to_string();
        let res = approver
            .post(
                &format!("{path}/assignees"),
                &[
                    ("csrf_token", &a_csrf),
                    ("person", &person),
                    ("due_on", &due),
                ],
            )
            .await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "[{backend}]");
        let page = approver.text(&path).await;
        assert!(page.contains("contributor@a.nhs.uk"), "[{backend}] {page}");
        // Assigning the same person again is refused, in words, and changes nothing.
        let again = approver
            .post(
                &format!("{path}/assignees"),
                &[("csrf_token", &a_csrf), ("person", &person), ("due_on", "")],
            )
            .await;
        assert_eq!(again.status(), StatusCode::CONFLICT, "[{backend}]");
        assert!(again
            .text()
            .await
            .unwrap()
            .contains("already has the section"));
        assert_eq!(assignment_rows(&app).await, 1, "[{backend}]");
        // A date that is not one, and someone outside the organisation: 422, nothing stored.
        let bad = approver
            .post(
                &format!("{path}/assignees"),
                &[
                    ("csrf_token", &a_csrf),
                    ("person", &w.approver_a.to_string()),
                    ("due_on", "next week"),
                ],
            )
            .await;
        assert_eq!(
            bad.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "[{backend}]"
        );
        let outsider = approver
            .post(
                &format!("{path}/assignees"),
                &[
                    ("csrf_token", &a_csrf),
                    ("person", &w.contributor_b.to_string()),
                ],
            )
            .await;
        assert_eq!(
            outsider.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "[{backend}]"
        );
        assert_eq!(assignment_rows(&app).await, 1, "[{backend}]");

        // The contributor was emailed, once, with a link to the section.
        let mail = outbox(&app).await;
        let assigned: Vec<_> = mail
            .iter()
            .filter(|(k, _, _)| k == "section_assigned")
            .collect();
        assert_eq!(assigned.len(), 1, "[{backend}] {mail:?}");
        assert_eq!(assigned[0].1, "contributor@a.nhs.uk");
        assert!(
            assigned[0].2.contains(&path),
            "[{backend}] {}",
            assigned[0].2
        );

        // Their dashboard lists it; the overview says who has it.
        let dashboard = contributor.text("/dashboard").await;
        assert!(dashboard.contains("Your sections"), "[{backend}]");
        assert!(dashboard.contains(&path), "[{backend}]");
        let overview = approver
            .text(&format!("/assessments/{}", w.assessment_a))
            .await;
        assert!(overview.contains("With Test Person (due"), "[{backend}]");

        // Hand-over: the contributor marks it ready for review.
        let res = post_status(&contributor, &w, &c_csrf, "ready_for_review", 0, "").await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "[{backend}]");
        assert_eq!(
            status_row(&app, w.assessment_a).await.unwrap().0,
            "ready_for_review"
        );
        // A contributor cannot review it.
        let res = post_status(&contributor, &w, &c_csrf, "reviewed", 1, "").await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "[{backend}]");
        // Returning needs a reason.
        let res = post_status(&approver, &w, &a_csrf, "returned", 1, "  ").await;
        assert_eq!(
            res.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "[{backend}]"
        );
        // The approver returns it, with a message.
        let why = "Say which board paper approved the strategy.";
        let res = post_status(&approver, &w, &a_csrf, "returned", 1, why).await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "[{backend}]");
        // A stale change (the page still showed revision 1) is a 409 naming who changed it.
        let res = post_status(&approver, &w, &a_csrf, "reviewed", 1, "").await;
        assert_eq!(res.status(), StatusCode::CONFLICT, "[{backend}]");
        let body = res.text().await.unwrap();
        assert!(body.contains("changed the section"), "[{backend}] {body}");
        assert!(body.contains("to returned"), "[{backend}]");
        assert_eq!(
            status_row(&app, w.assessment_a).await.unwrap().1,
            2,
            "[{backend}]"
        );

        // The returned section says why at the top of its questions, and the contributor
        // was emailed the message.
        let domain = contributor
            .text(&format!(
                "/assessments/{}/domains/{SECTION}",
                w.assessment_a
            ))
            .await;
        let banner = domain
            .find(why)
            .expect("the reason is on the section's page");
        assert!(
            banner < domain.find("data-question=").unwrap(),
            "[{backend}] the reason is not at the top"
        );
        let mail = outbox(&app).await;
        let returned: Vec<_> = mail
            .iter()
            .filter(|(k, _, _)| k == "section_returned")
            .collect();
        assert_eq!(returned.len(), 1, "[{backend}]");
        assert_eq!(returned[0].1, "contributor@a.nhs.uk");
        assert!(returned[0].2.contains(why));

        // Handed over again, then reviewed.
        let res = post_status(&contributor, &w, &c_csrf, "ready_for_review", 2, "").await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "[{backend}]");
        // Sign-off lists the sections not yet reviewed, this one among them.
        let submit = approver
            .text(&format!("/assessments/{}/submit", w.assessment_a))
            .await;
        assert!(submit.contains("Sections not yet reviewed"), "[{backend}]");
        assert!(
            submit.contains(&format!("{path}\">Digital strategy")),
            "[{backend}]"
        );
        let res = post_status(&approver, &w, &a_csrf, "reviewed", 3, "").await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "[{backend}]");
        let submit = approver
            .text(&format!("/assessments/{}/submit", w.assessment_a))
            .await;
        assert!(
            !submit.contains(&format!("{path}\">Digital strategy")),
            "[{backend}] reviewed yet listed"
        );
        let overview = approver
            .text(&format!("/assessments/{}", w.assessment_a))
            .await;
        assert!(overview.contains("1 of "), "[{backend}]");
        assert!(overview.contains(">Reviewed<"), "[{backend}]");

        // An answer in the section changes after the review: the review lapses, the section
        // is back in progress and says why, and it can be handed over again.
        let id = w.assessment_a;
        app.db
            .write(move |conn| {
                let loaded = dma::services::assessments::load(conn, id)?;
                let seen = loaded.answers.get("wl-strategy").map_or(0, |a| a.revision);
                dma::services::assessments::save(
                    conn,
                    &dma::services::audit::Actor::system("test"),
                    id,
                    &[dma::services::assessments::Change {
                        key: "wl-strategy".into(),
                        answer: Some(dma::domain::Answer::Scale(2)),
                        seen_revision: seen,
                    }],
                )?;
                Ok(())
            })
            .await
            .unwrap();
        let page = approver.text(&path).await;
        assert!(
            page.contains("changed after it was marked reviewed"),
            "[{backend}] a stale review still stands"
        );
        assert!(page.contains(">In progress<"), "[{backend}]");
        let submit = approver
            .text(&format!("/assessments/{}/submit", w.assessment_a))
            .await;
        assert!(
            submit.contains(&format!("{path}\">Digital strategy")),
            "[{backend}] a lapsed review is not listed at sign-off"
        );
        let res = post_status(&contributor, &w, &c_csrf, "ready_for_review", 4, "").await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "[{backend}]");
        let res = post_status(&approver, &w, &a_csrf, "reviewed", 5, "").await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "[{backend}]");
        assert!(!approver
            .text(&path)
            .await
            .contains("changed after it was marked"));

        // Every step is in the audit log.
        assert_eq!(
            audit_actions(&app, "section.").await,
            [
                "section.assign",
                "section.status",
                "section.status",
                "section.status",
                "section.status",
                "section.status",
                "section.status"
            ],
            "[{backend}]"
        );

        // Taking it away: once; a second time is a 409.
        let remove = format!("{path}/assignees/{}/remove", w.contributor_a);
        let res = approver.post(&remove, &[("csrf_token", &a_csrf)]).await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "[{backend}]");
        let res = approver.post(&remove, &[("csrf_token", &a_csrf)]).await;
        assert_eq!(res.status(), StatusCode::CONFLICT, "[{backend}]");
        assert_eq!(assignment_rows(&app).await, 0, "[{backend}]");
    }
}

#[tokio::test]
async fn only_an_assignee_or_an_approver_hands_a_section_over() {
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        let w = World::seed(&app).await;
        answer_section(&app, w.assessment_a, SECTION).await;
        let (contributor, c_csrf) = signed_in(&app, "contributor@a.nhs.uk").await;
        // Not theirs: refused, nothing stored.
        let res = post_status(&contributor, &w, &c_csrf, "ready_for_review", 0, "").await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "[{backend}]");
        assert!(status_row(&app, w.assessment_a).await.is_none());
        // The page offers no button to them either.
        let page = contributor.text(&section_path(&w)).await;
        assert!(!page.contains("Mark as ready for review"), "[{backend}]");
        // An approver may hand over a section nobody has.
        let (approver, a_csrf) = signed_in(&app, "approver@a.nhs.uk").await;
        let page = approver.text(&section_path(&w)).await;
        assert!(page.contains("Mark as ready for review"), "[{backend}]");
        let res = post_status(&approver, &w, &a_csrf, "ready_for_review", 0, "").await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "[{backend}]");
        // A step the status does not allow is a 409 in words.
        let res = post_status(&approver, &w, &a_csrf, "ready_for_review", 1, "").await;
        assert_eq!(res.status(), StatusCode::CONFLICT, "[{backend}]");
        assert!(res.text().await.unwrap().contains("cannot be marked"));
    }
}

async fn token_for(app: &TestApp, user_id: i64) -> String {
    app.db
        .write(move |conn| {
            let actor = dma::services::audit::Actor::system("test");
            let (_, token) =
                dma::services::auth::api_token::create(conn, &actor, user_id, "t", 30)?;
            Ok(token)
        })
        .await
        .unwrap()
}

async fn call(
    app: &TestApp,
    token: &str,
    method: reqwest::Method,
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

#[tokio::test]
async fn the_api_shares_out_and_hands_over_sections_with_the_pages_rules() {
    use reqwest::Method;
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        let w = World::seed(&app).await;
        answer_section(&app, w.assessment_a, SECTION).await;
        let approver = token_for(&app, w.approver_a).await;
        let contributor = token_for(&app, w.contributor_a).await;
        let other = token_for(&app, w.approver_b).await;
        let base = format!("/api/v1/assessments/{}/sections", w.assessment_a);

        let (status, list) = call(&app, &contributor, Method::GET, &base, None).await;
        assert_eq!(status, 200, "[{backend}] {list}");
        let first = &list[0];
        assert_eq!(first["key"], SECTION);
        assert_eq!(first["status"], "in_progress");
        assert_eq!(first["revision"], 0);
        // Another organisation's approver reads nothing and assigns nothing.
        let (status, _) = call(&app, &other, Method::GET, &base, None).await;
        assert_eq!(status, 403, "[{backend}]");
        let assign = format!("{base}/{SECTION}/assignees");
        let body = json!({"user_id": w.contributor_a});
        let (status, _) = call(&app, &other, Method::POST, &assign, Some(body.clone())).await;
        assert_eq!(status, 403, "[{backend}]");
        let (status, _) = call(
            &app,
            &contributor,
            Method::POST,
            &assign,
            Some(body.clone()),
        )
        .await;
        assert_eq!(status, 403, "[{backend}]");

        let (status, section) =
            call(&app, &approver, Method::POST, &assign, Some(body.clone())).await;
        assert_eq!(status, 201, "[{backend}] {section}");
        assert_eq!(section["assignees"][0]["email"], "contributor@a.nhs.uk");
        let (status, problem) = call(&app, &approver, Method::POST, &assign, Some(body)).await;
        assert_eq!(status, 409, "[{backend}]");
        assert_eq!(problem["type"], "https://dma.example/problems/conflict");

        let (status, mine) =
            call(&app, &contributor, Method::GET, "/api/v1/me/sections", None).await;
        assert_eq!(status, 200);
        assert_eq!(mine.as_array().unwrap().len(), 1, "[{backend}] {mine}");
        assert_eq!(mine[0]["section"]["key"], SECTION);

        let status_url = format!("{base}/{SECTION}/status");
        let (status, s) = call(
            &app,
            &contributor,
            Method::POST,
            &status_url,
            Some(json!({"status": "ready_for_review", "revision": 0})),
        )
        .await;
        assert_eq!(status, 200, "[{backend}] {s}");
        assert_eq!(s["status"], "ready_for_review");
        assert_eq!(s["revision"], 1);
        let (status, p) = call(
            &app,
            &approver,
            Method::POST,
            &status_url,
            Some(json!({"status": "returned", "revision": 1})),
        )
        .await;
        assert_eq!(status, 422, "[{backend}] {p}");
        let (status, s) = call(
            &app,
            &approver,
            Method::POST,
            &status_url,
            Some(json!({"status": "returned", "revision": 1, "message": "More detail"})),
        )
        .await;
        assert_eq!(status, 200, "[{backend}] {s}");
        assert_eq!(s["message"], "More detail");
        let (status, p) = call(
            &app,
            &approver,
            Method::POST,
            &status_url,
            Some(json!({"status": "reviewed", "revision": 1})),
        )
        .await;
        assert_eq!(status, 409, "[{backend}] {p}");
        assert!(
            p["detail"]
                .as_str()
                .unwrap()
                .contains("changed the section"),
            "{p}"
        );

        let remove = format!("{base}/{SECTION}/assignees/{}", w.contributor_a);
        let (status, _) = call(&app, &approver, Method::DELETE, &remove, None).await;
        assert_eq!(status, 204, "[{backend}]");
        let (status, _) = call(&app, &approver, Method::DELETE, &remove, None).await;
        assert_eq!(status, 409, "[{backend}]");
    }
}

/// Send each form at once, one per signed-in browser (released together by a barrier); the
/// statuses.
async fn at_once(
    browsers: &[(Browser, String)],
    path: &str,
    forms: Vec<Vec<(String, String)>>,
) -> Vec<StatusCode> {
    let barrier = Arc::new(Barrier::new(forms.len()));
    let mut tasks = Vec::new();
    for ((b, csrf), form) in browsers.iter().zip(forms) {
        let barrier = barrier.clone();
        let client = b.client.clone();
        let url = b.url(path);
        let mut fields = vec![("csrf_token".to_string(), csrf.clone())];
        fields.extend(form);
        tasks.push(tokio::spawn(async move {
            let req = client.post(url).form(&fields);
            barrier.wait().await;
            req.send().await.unwrap().status()
        }));
    }
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

/// How many were accepted (303) and how many refused as conflicts (409).
fn tally(statuses: &[StatusCode]) -> (usize, usize) {
    let count = |want: StatusCode| statuses.iter().filter(|s| **s == want).count();
    (count(StatusCode::SEE_OTHER), count(StatusCode::CONFLICT))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_conflicting_section_changes_on_postgres_are_decided_once() {
    if !backends().contains(&dma::db::Backend::Postgres) {
        return;
    }
    let app = TestApp::spawn(dma::db::Backend::Postgres).await;
    let w = World::seed(&app).await;
    answer_section(&app, w.assessment_a, SECTION).await;
    let path = section_path(&w);
    let person = w.contributor_a.to_string();
    let mut browsers = Vec::new();
    for _ in 0..8 {
        browsers.push(signed_in(&app, "approver@a.nhs.uk").await);
    }

    for trial in 0..5 {
        // Eight approvers' browsers give the same person the same section at once.
        let forms = vec![vec![("person".to_string(), person.clone())]; 8];
        let statuses = at_once(&browsers, &format!("{path}/assignees"), forms).await;
        assert_eq!(tally(&statuses), (1, 7), "trial {trial}: {statuses:?}");
        assert_eq!(assignment_rows(&app).await, 1, "trial {trial}");
        let assigned = outbox(&app)
            .await
            .into_iter()
            .filter(|(k, _, _)| k == "section_assigned")
            .count();
        assert_eq!(
            assigned,
            trial + 1,
            "trial {trial}: one email per assignment"
        );

        // Eight status changes at once from the same revision: half "reviewed", half
        // "returned" after it is ready. Exactly one wins; the rest are 409.
        let rev = status_row(&app, w.assessment_a).await.map_or(0, |r| r.1);
        let (b, csrf) = &browsers[0];
        let res = post_status(b, &w, csrf, "ready_for_review", rev, "").await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "trial {trial}");
        let rev = rev + 1;
        let audits_before = audit_actions(&app, "section.status").await.len();
        let forms: Vec<Vec<(String, String)>> = (0..8)
            .map(|i| {
                let (to, message) = if i % 2 == 0 {
                    ("reviewed", "")
                } else {
                    ("returned", "Not yet")
                };
                vec![
                    ("status".to_string(), to.to_string()),
                    ("revision".to_string(), rev.to_string()),
                    ("message".to_string(), message.to_string()),
                ]
            })
            .collect();
        let statuses = at_once(&browsers, &format!("{path}/status"), forms).await;
        assert_eq!(tally(&statuses), (1, 7), "trial {trial}: {statuses:?}");
        let (status, revision, _) = status_row(&app, w.assessment_a).await.unwrap();
        assert_eq!(revision, rev + 1, "trial {trial}: one change stored");
        assert!(status == "reviewed" || status == "returned");
        assert_eq!(
            audit_actions(&app, "section.status").await.len(),
            audits_before + 1
        );

        // Eight removals at once: one.
        let statuses = at_once(
            &browsers,
            &format!("{path}/assignees/{}/remove", w.contributor_a),
            vec![vec![]; 8],
        )
        .await;
        assert_eq!(tally(&statuses), (1, 7), "trial {trial}: {statuses:?}");
        assert_eq!(assignment_rows(&app).await, 0, "trial {trial}");
        // Back to a state the next trial can hand over from.
        if status == "reviewed" {
            let res = post_status(b, &w, csrf, "returned", rev + 1, "again").await;
            assert_eq!(res.status(), StatusCode::SEE_OTHER, "trial {trial}");
        }
    }
}

#[tokio::test]
async fn a_section_goes_for_review_only_answered_and_its_approvers_are_told() {
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        let w = World::seed(&app).await;
        let (approver, a_csrf) = signed_in(&app, "approver@a.nhs.uk").await;
        let (contributor, c_csrf) = signed_in(&app, "contributor@a.nhs.uk").await;
        let path = section_path(&w);
        let person = w.contributor_a.to_string();
        let res = approver
            .post(
                &format!("{path}/assignees"),
                &[("csrf_token", &a_csrf), ("person", &person)],
            )
            .await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "[{backend}]");

        // Nothing answered: refused with the questions named, nothing stored or sent.
        let before = crate::browser::snapshot(&app).await;
        let res = post_status(&contributor, &w, &c_csrf, "ready_for_review", 0, "").await;
        assert_eq!(
            res.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "[{backend}]"
        );
        let page = res.text().await.unwrap();
        assert!(
            page.contains("required questions")
                && page.contains("before marking the section ready for review"),
            "[{backend}] {page}"
        );
        assert!(
            page.contains("href=\"#status\""),
            "[{backend}] no link to the status"
        );
        assert_eq!(crate::browser::snapshot(&app).await, before, "[{backend}]");
        assert!(status_row(&app, w.assessment_a).await.is_none());

        // Answered: it goes, and the approver (not the person handing over) is emailed once,
        // with a link to the section.
        answer_section(&app, w.assessment_a, SECTION).await;
        let res = post_status(&contributor, &w, &c_csrf, "ready_for_review", 0, "").await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "[{backend}]");
        let ready: Vec<_> = outbox(&app)
            .await
            .into_iter()
            .filter(|(k, _, _)| k == "section_ready")
            .collect();
        assert_eq!(ready.len(), 1, "[{backend}] {ready:?}");
        assert_eq!(ready[0].1, "approver@a.nhs.uk");
        assert!(ready[0].2.contains(&path), "[{backend}] {}", ready[0].2);

        // Returned, then handed over again by the approver: nobody else to tell.
        let res = post_status(&approver, &w, &a_csrf, "returned", 1, "More detail").await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "[{backend}]");
        let res = post_status(&approver, &w, &a_csrf, "ready_for_review", 2, "").await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "[{backend}]");
        let ready = outbox(&app)
            .await
            .into_iter()
            .filter(|(k, _, _)| k == "section_ready")
            .count();
        assert_eq!(
            ready, 1,
            "[{backend}] the approver was told of their own change"
        );
    }
}

/// The section reminders one scheduler pass queued at `now`, by recipient.
async fn section_reminders_at(app: &TestApp, now: chrono::NaiveDateTime) -> usize {
    dma::services::notifications::run_pass(&app.db, &app.notifier, now)
        .await
        .unwrap()
        .section_reminders
}

#[tokio::test]
async fn people_holding_a_section_not_ready_are_reminded_before_it_is_due_once_each() {
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        let w = World::seed(&app).await;
        let (approver, a_csrf) = signed_in(&app, "approver@a.nhs.uk").await;
        let today = chrono::Utc::now().date_naive();
        let day = |n: i64| {
            (today + chrono::Duration::days(n))
                .and_hms_opt(9, 0, 0)
                .unwrap()
        };
        let due = (today + chrono::Duration::days(10))
            .format("%Y-%m-%d")
            .to_string();
        let person = w.contributor_a.to_string();
        // Strategy is due in 10 days; governance has no due date, so the deadline (30 days)
        // counts; infrastructure is due in 10 days too but will be ready by then.
        for (section, due_on) in [
            ("strategy", due.as_str()),
            ("governance", ""),
            ("infrastructure", due.as_str()),
        ] {
            let res = approver
                .post(
                    &format!(
                        "/assessments/{}/sections/{section}/assignees",
                        w.assessment_a
                    ),
                    &[
                        ("csrf_token", &a_csrf),
                        ("person", &person),
                        ("due_on", due_on),
                    ],
                )
                .await;
            assert_eq!(res.status(), StatusCode::SEE_OTHER, "[{backend}] {section}");
        }
        answer_section(&app, w.assessment_a, "infrastructure").await;
        let (contributor, c_csrf) = signed_in(&app, "contributor@a.nhs.uk").await;
        let res = contributor
            .post(
                &format!(
                    "/assessments/{}/sections/infrastructure/status",
                    w.assessment_a
                ),
                &[
                    ("csrf_token", c_csrf.as_str()),
                    ("status", "ready_for_review"),
                    ("revision", "0"),
                ],
            )
            .await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "[{backend}]");

        // Ten days out: nothing yet. Seven days before: strategy's first reminder, once
        // however often (and however concurrently) the pass runs.
        assert_eq!(section_reminders_at(&app, day(0)).await, 0, "[{backend}]");
        let passes = tokio::join!(
            section_reminders_at(&app, day(3)),
            section_reminders_at(&app, day(3)),
            section_reminders_at(&app, day(3)),
            section_reminders_at(&app, day(3)),
        );
        let total = passes.0 + passes.1 + passes.2 + passes.3;
        assert_eq!(total, 1, "[{backend}] {passes:?}");
        assert_eq!(section_reminders_at(&app, day(4)).await, 0, "[{backend}]");
        // Two days before; then the deadline's own (governance, 23 and 28 days on).
        assert_eq!(section_reminders_at(&app, day(8)).await, 1, "[{backend}]");
        assert_eq!(section_reminders_at(&app, day(9)).await, 0, "[{backend}]");
        assert_eq!(section_reminders_at(&app, day(23)).await, 1, "[{backend}]");
        assert_eq!(section_reminders_at(&app, day(28)).await, 1, "[{backend}]");
        assert_eq!(section_reminders_at(&app, day(29)).await, 0, "[{backend}]");

        let sent: Vec<_> = outbox(&app)
            .await
            .into_iter()
            .filter(|(k, _, _)| k == "section_reminder")
            .collect();
        assert_eq!(sent.len(), 4, "[{backend}] {sent:?}");
        assert!(sent.iter().all(|(_, to, _)| to == "contributor@a.nhs.uk"));
        assert!(
            !sent
                .iter()
                .any(|(_, _, body)| body.contains("sections/infrastructure")),
            "[{backend}] a section ready for review was chased"
        );
        assert!(
            sent[0].2.contains("sections/strategy") && sent[0].2.contains("in 7 days"),
            "[{backend}] {}",
            sent[0].2
        );
    }
}

#[tokio::test]
async fn an_icb_sees_how_far_its_organisations_have_got_without_their_answers() {
    use reqwest::Method;
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        let w = World::seed(&app).await;
        let (approver, a_csrf) = signed_in(&app, "approver@a.nhs.uk").await;
        let person = w.contributor_a.to_string();
        let res = approver
            .post(
                &format!("{}/assignees", section_path(&w)),
                &[("csrf_token", &a_csrf), ("person", &person)],
            )
            .await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "[{backend}]");
        answer_section(&app, w.assessment_a, SECTION).await;
        let (contributor, c_csrf) = signed_in(&app, "contributor@a.nhs.uk").await;
        let res = post_status(&contributor, &w, &c_csrf, "ready_for_review", 0, "").await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "[{backend}]");

        // The group viewer looks after the London region: Alpha, not Beta (North West).
        let viewer_id: i64 = app
            .db
            .write(|conn| {
                use dma::db::schema::users as u;
                diesel::update(u::table.filter(u::email.eq("viewer@example.nhs.uk")))
                    .set(u::group_region.eq(Some("London")))
                    .execute(conn)?;
                Ok(u::table
                    .filter(u::email.eq("viewer@example.nhs.uk"))
                    .select(u::id)
                    .first(conn)?)
            })
            .await
            .unwrap();
        let (viewer, _) = signed_in(&app, "viewer@example.nhs.uk").await;
        let res = viewer.get("/reports/progress").await;
        assert_eq!(res.status(), StatusCode::OK, "[{backend}]");
        let page = res.text().await.unwrap();
        assert!(page.contains("Alpha Hospitals NHS Trust"), "[{backend}]");
        assert!(!page.contains("Beta Hospitals NHS Trust"), "[{backend}]");
        assert!(page.contains("Ready for review"), "[{backend}]");
        assert!(
            page.contains("Test Person: "),
            "[{backend}] holders not shown"
        );
        assert!(page.contains("held by nobody"), "[{backend}]");

        let token = token_for(&app, viewer_id).await;
        let (status, body) =
            call(&app, &token, Method::GET, "/api/v1/reports/progress", None).await;
        assert_eq!(status, 200, "[{backend}] {body}");
        assert_eq!(body["total"], 1, "[{backend}] {body}");
        let row = &body["items"][0];
        assert_eq!(row["ods_code"], "RA1");
        assert_eq!(row["sections"]["ready_for_review"], 1, "[{backend}] {row}");
        assert!(row["answered"].as_u64().unwrap() > 0, "[{backend}] {row}");
        assert!(row["last_activity"].is_string(), "[{backend}] {row}");
        assert!(
            row["holders"][0]["sections"][0]
                .as_str()
                .unwrap()
                .starts_with("Digital strategy"),
            "[{backend}] {row}"
        );
        // Counts, names and dates only: no answer and no score in the row.
        let keys: Vec<&str> = row
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.as_str())
            .collect();
        assert!(
            !keys
                .iter()
                .any(|k| k.contains("answers") || k.contains("overall") || k.contains("score")),
            "[{backend}] {keys:?}"
        );

        // The organisation's own people get no support view.
        let res = contributor.get("/reports/progress").await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "[{backend}]");
    }
}

/// The outbox's (kind, recipient, status) rows of these kinds, in order.
async fn outbox_states(
    app: &TestApp,
    kinds: &'static [&'static str],
) -> Vec<(String, String, String)> {
    app.db
        .read(move |conn| {
            use dma::db::schema::email_outbox as e;
            Ok(e::table
                .filter(e::kind.eq_any(kinds))
                .order(e::id)
                .select((e::kind, e::recipient, e::status))
                .load(conn)?)
        })
        .await
        .unwrap()
}

#[tokio::test]
async fn a_person_who_chose_the_daily_digest_gets_one_email_a_day_listing_the_updates() {
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        let w = World::seed(&app).await;
        let (approver, a_csrf) = signed_in(&app, "approver@a.nhs.uk").await;
        let (contributor, c_csrf) = signed_in(&app, "contributor@a.nhs.uk").await;
        let res = contributor
            .post(
                "/account/email",
                &[("csrf_token", &c_csrf), ("delivery", "daily")],
            )
            .await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "[{backend}]");
        let page = contributor.text("/account/email?done=saved").await;
        assert!(page.contains("one email a day"), "[{backend}]");
        assert!(
            page.contains("value=\"daily\" aria-describedby=\"delivery-daily-hint\" checked"),
            "[{backend}] the choice is not shown"
        );
        let res = contributor
            .post(
                "/account/email",
                &[("csrf_token", &c_csrf), ("delivery", "weekly")],
            )
            .await;
        assert_eq!(
            res.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "[{backend}]"
        );

        // Two sections given to the contributor: both held, none sent on its own.
        let person = w.contributor_a.to_string();
        for section in ["strategy", "governance"] {
            let res = approver
                .post(
                    &format!(
                        "/assessments/{}/sections/{section}/assignees",
                        w.assessment_a
                    ),
                    &[("csrf_token", &a_csrf), ("person", &person)],
                )
                .await;
            assert_eq!(res.status(), StatusCode::SEE_OTHER, "[{backend}]");
        }
        // The approver did not choose the digest: the hand-over reaches them at once.
        answer_section(&app, w.assessment_a, SECTION).await;
        let res = post_status(&contributor, &w, &c_csrf, "ready_for_review", 0, "").await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "[{backend}]");
        const KINDS: &[&str] = &["section_assigned", "section_ready", "digest"];
        let states = outbox_states(&app, KINDS).await;
        let held: Vec<_> = states.iter().filter(|s| s.2 == "held").collect();
        assert_eq!(held.len(), 2, "[{backend}] {states:?}");
        assert!(held.iter().all(|s| s.1 == "contributor@a.nhs.uk"));
        assert!(
            states
                .iter()
                .any(|s| s.0 == "section_ready" && s.1 == "approver@a.nhs.uk" && s.2 != "held"),
            "[{backend}] {states:?}"
        );

        // Before the hour, no digest; from it, one, however many passes run at once.
        let tomorrow = chrono::Utc::now().date_naive() + chrono::Duration::days(1);
        let at = |h| tomorrow.and_hms_opt(h, 0, 0).unwrap();
        let pass = |now| dma::services::notifications::run_pass(&app.db, &app.notifier, now);
        assert_eq!(pass(at(6)).await.unwrap().digests, 0, "[{backend}]");
        let (one, two, three) = tokio::join!(pass(at(8)), pass(at(8)), pass(at(8)));
        let sent = one.unwrap().digests + two.unwrap().digests + three.unwrap().digests;
        assert_eq!(sent, 1, "[{backend}]");
        assert_eq!(pass(at(9)).await.unwrap().digests, 0, "[{backend}]");
        let states = outbox_states(&app, KINDS).await;
        assert_eq!(
            states.iter().filter(|s| s.2 == "digested").count(),
            2,
            "[{backend}] {states:?}"
        );
        let digest: Vec<_> = outbox(&app)
            .await
            .into_iter()
            .filter(|(k, _, _)| k == "digest")
            .collect();
        assert_eq!(digest.len(), 1, "[{backend}]");
        assert_eq!(digest[0].1, "contributor@a.nhs.uk");
        assert!(
            digest[0].2.contains("These are the 2 updates")
                && digest[0].2.contains("Digital strategy")
                && digest[0].2.contains("/dashboard"),
            "[{backend}] {}",
            digest[0].2
        );

        // Back to single messages: the next one is queued at once.
        let res = contributor
            .post(
                "/account/email",
                &[("csrf_token", &c_csrf), ("delivery", "each")],
            )
            .await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "[{backend}]");
        let res = approver
            .post(
                &format!(
                    "/assessments/{}/sections/infrastructure/assignees",
                    w.assessment_a
                ),
                &[("csrf_token", &a_csrf), ("person", &person)],
            )
            .await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "[{backend}]");
        let last = outbox_states(&app, &["section_assigned"]).await;
        assert_ne!(last.last().unwrap().2, "held", "[{backend}] {last:?}");
        assert_eq!(
            audit_actions(&app, "email.").await,
            ["email.preferences", "email.preferences"],
            "[{backend}]"
        );
    }
}

#[tokio::test]
async fn a_section_cannot_be_due_after_the_assessments_deadline() {
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        let w = World::seed(&app).await;
        let (approver, a_csrf) = signed_in(&app, "approver@a.nhs.uk").await;
        // The world's deadline is 30 days away.
        let late = (chrono::Utc::now().date_naive() + chrono::Duration::days(31))
            .format("%Y-%m-%d")
            .to_string();
        let person = w.contributor_a.to_string();
        let res = approver
            .post(
                &format!("{}/assignees", section_path(&w)),
                &[
                    ("csrf_token", &a_csrf),
                    ("person", &person),
                    ("due_on", &late),
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
            .contains("on or before the assessment&#x27;s deadline"));
        assert_eq!(assignment_rows(&app).await, 0, "[{backend}]");
    }
}
