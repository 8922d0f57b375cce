//! Notes on questions (issue 22): a thread per question among the organisation's people, kept
//! out of answers, shown to auditors only when shared with a submission; on both backends, and
//! the write paths under parallel requests on PostgreSQL.

use std::sync::Arc;

use diesel::prelude::*;
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::sync::Barrier;

use crate::browser::{Browser, World, PASSWORD};
use crate::helpers::{backends, TestApp};

async fn signed_in(app: &TestApp, email: &str) -> (Browser, String) {
    let b = Browser::new(app);
    b.sign_in(email, PASSWORD).await;
    let csrf = b.csrf().await;
    (b, csrf)
}

fn notes_path(w: &World) -> String {
    format!(
        "/assessments/{}/questions/{}/notes",
        w.assessment_a, w.question_key
    )
}

async fn note_ids(app: &TestApp) -> Vec<(i64, bool, i64)> {
    app.db
        .read(|conn| {
            use dma::db::schema::question_notes as n;
            Ok(n::table
                .order(n::id)
                .select((n::id, n::shared, n::revision))
                .load(conn)?)
        })
        .await
        .unwrap()
}

async fn token_for(app: &TestApp, email: &str) -> String {
    let email = email.to_string();
    app.db
        .write(move |conn| {
            let actor = dma::services::audit::Actor::system("test");
            let user = dma::services::auth::users::find_by_email(conn, &email)?.unwrap();
            let (_, token) =
                dma::services::auth::api_token::create(conn, &actor, user.id, "t", 30)?;
            Ok(token)
        })
        .await
        .unwrap()
}

async fn api_get(app: &TestApp, token: &str, path: &str) -> (StatusCode, Value) {
    let res = app
        .client
        .get(app.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn people_discuss_a_question_and_auditors_see_only_what_was_shared() {
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        let w = World::seed(&app).await;
        let (contributor, c_csrf) = signed_in(&app, "contributor@a.nhs.uk").await;
        let (approver, a_csrf) = signed_in(&app, "approver@a.nhs.uk").await;
        let path = notes_path(&w);

        let res = contributor
            .post(
                &path,
                &[
                    ("csrf_token", &c_csrf),
                    ("note", "The strategy went to the board in March."),
                ],
            )
            .await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "[{backend}]");
        let res = approver
            .post(
                &path,
                &[
                    ("csrf_token", &a_csrf),
                    ("note", "Private: the board paper is still a draft."),
                ],
            )
            .await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "[{backend}]");
        let res = approver
            .post(&path, &[("csrf_token", &a_csrf), ("note", "   ")])
            .await;
        assert_eq!(
            res.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "[{backend}]"
        );
        let page = contributor.text(&path).await;
        let first = page.find("went to the board").unwrap();
        let second = page.find("still a draft").unwrap();
        assert!(first < second, "[{backend}] oldest first");
        assert!(
            page.contains("Test Person</strong>"),
            "[{backend}] who wrote it"
        );
        // The question's page links to its thread with the count.
        let domain = contributor
            .text(&format!(
                "/assessments/{}/domains/{}",
                w.assessment_a, w.domain_key
            ))
            .await;
        assert!(domain.contains("Notes (2)"), "[{backend}]");

        // Notes are not answers.
        let token = token_for(&app, "contributor@a.nhs.uk").await;
        let (status, answers) = api_get(
            &app,
            &token,
            &format!("/api/v1/assessments/{}/answers", w.assessment_a),
        )
        .await;
        assert_eq!(status, 200);
        assert!(
            !answers.to_string().contains("went to the board"),
            "[{backend}]"
        );
        let (status, notes) = api_get(
            &app,
            &token,
            &format!(
                "/api/v1/assessments/{}/questions/{}/notes",
                w.assessment_a, w.question_key
            ),
        )
        .await;
        assert_eq!(status, 200, "[{backend}]");
        assert_eq!(notes.as_array().unwrap().len(), 2);

        // The approver shares the first note; a contributor may not; a stale change is a 409.
        let ids = note_ids(&app).await;
        let share = format!("/assessments/{}/notes/{}/share", w.assessment_a, ids[0].0);
        let res = contributor
            .post(
                &share,
                &[
                    ("csrf_token", &c_csrf),
                    ("shared", "yes"),
                    ("revision", "1"),
                ],
            )
            .await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "[{backend}]");
        let res = approver
            .post(
                &share,
                &[
                    ("csrf_token", &a_csrf),
                    ("shared", "yes"),
                    ("revision", "1"),
                ],
            )
            .await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "[{backend}]");
        let res = approver
            .post(
                &share,
                &[("csrf_token", &a_csrf), ("shared", "no"), ("revision", "1")],
            )
            .await;
        assert_eq!(res.status(), StatusCode::CONFLICT, "[{backend}]");
        assert!(res
            .text()
            .await
            .unwrap()
            .contains("Someone changed whether this note is shared"));
        assert_eq!(note_ids(&app).await[0], (ids[0].0, true, 2), "[{backend}]");

        // Before submission an auditor sees nothing of it.
        let (auditor, _) = signed_in(&app, "auditor@example.nhs.uk").await;
        assert_eq!(
            auditor.get(&path).await.status(),
            StatusCode::FORBIDDEN,
            "[{backend}]"
        );
        // Once submitted: the shared note only, on the page and through the API.
        let id = w.assessment_a;
        app.db
            .write(move |conn| {
                use dma::db::schema::assessments as a;
                diesel::update(a::table.find(id))
                    .set(a::status.eq("submitted"))
                    .execute(conn)?;
                Ok(())
            })
            .await
            .unwrap();
        let page = auditor.text(&path).await;
        assert!(page.contains("went to the board"), "[{backend}]");
        assert!(
            !page.contains("still a draft"),
            "[{backend}] an unshared note reached an auditor"
        );
        let auditor_token = token_for(&app, "auditor@example.nhs.uk").await;
        let (status, notes) = api_get(
            &app,
            &auditor_token,
            &format!(
                "/api/v1/assessments/{}/questions/{}/notes",
                w.assessment_a, w.question_key
            ),
        )
        .await;
        assert_eq!(status, 200, "[{backend}]");
        assert_eq!(notes.as_array().unwrap().len(), 1, "[{backend}] {notes}");
        // A group viewer sees none.
        let viewer_token = token_for(&app, "viewer@example.nhs.uk").await;
        let (status, _) = api_get(
            &app,
            &viewer_token,
            &format!(
                "/api/v1/assessments/{}/questions/{}/notes",
                w.assessment_a, w.question_key
            ),
        )
        .await;
        assert_eq!(status, 403, "[{backend}]");
        // After submission nothing is added or re-shared.
        let res = contributor
            .post(&path, &[("csrf_token", &c_csrf), ("note", "Late")])
            .await;
        assert_eq!(res.status(), StatusCode::CONFLICT, "[{backend}]");
    }
}

/// POST each body to `path` at once (released together by a barrier); the statuses.
async fn all_at_once(
    app: &TestApp,
    token: &str,
    path: &str,
    bodies: Vec<Value>,
) -> Vec<StatusCode> {
    let barrier = Arc::new(Barrier::new(bodies.len()));
    let mut tasks = Vec::new();
    for body in bodies {
        let req = app
            .client
            .post(app.url(path))
            .bearer_auth(token)
            .json(&body);
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_notes_are_all_kept_and_parallel_sharing_is_decided_once_on_postgres() {
    if !backends().contains(&dma::db::Backend::Postgres) {
        return;
    }
    let app = TestApp::spawn(dma::db::Backend::Postgres).await;
    let w = World::seed(&app).await;
    let token = token_for(&app, "approver@a.nhs.uk").await;
    let notes_api = format!(
        "/api/v1/assessments/{}/questions/{}/notes",
        w.assessment_a, w.question_key
    );
    for trial in 0..5 {
        // Eight notes at once: all eight kept.
        let before = note_ids(&app).await.len();
        let bodies = (0..8)
            .map(|i| json!({"body": format!("note {i}")}))
            .collect();
        let statuses = all_at_once(&app, &token, &notes_api, bodies).await;
        assert!(
            statuses.iter().all(|s| *s == StatusCode::CREATED),
            "trial {trial}: {statuses:?}"
        );
        let ids = note_ids(&app).await;
        assert_eq!(ids.len(), before + 8, "trial {trial}: a note was lost");

        // Eight share changes of one note at once, from the same revision: one wins.
        let (note, _, revision) = *ids.last().unwrap();
        let share = format!("/api/v1/assessments/{}/notes/{note}/share", w.assessment_a);
        let bodies = (0..8)
            .map(|i| json!({"shared": i % 2 == 0, "revision": revision}))
            .collect();
        let statuses = all_at_once(&app, &token, &share, bodies).await;
        let won = statuses.iter().filter(|s| **s == StatusCode::OK).count();
        let refused = statuses
            .iter()
            .filter(|s| **s == StatusCode::CONFLICT)
            .count();
        assert_eq!((won, refused), (1, 7), "trial {trial}: {statuses:?}");
        let after = note_ids(&app).await;
        assert_eq!(after.last().unwrap().2, revision + 1, "trial {trial}");
    }
}

#[tokio::test]
async fn only_its_author_corrects_or_deletes_a_note_and_a_stale_change_is_refused() {
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        let w = World::seed(&app).await;
        let (contributor, c_csrf) = signed_in(&app, "contributor@a.nhs.uk").await;
        let (approver, a_csrf) = signed_in(&app, "approver@a.nhs.uk").await;
        let path = notes_path(&w);
        let res = contributor
            .post(
                &path,
                &[("csrf_token", &c_csrf), ("note", "Board in Mrach.")],
            )
            .await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "[{backend}]");
        let (note, _, revision) = note_ids(&app).await[0];
        let base = format!("/assessments/{}/notes/{note}", w.assessment_a);

        // The author sees Edit and Delete; the approver (not the author) does not, and is
        // refused if they try.
        let page = contributor.text(&path).await;
        assert!(page.contains(&format!("?edit={note}")), "[{backend}]");
        assert!(!approver
            .text(&path)
            .await
            .contains(&format!("?edit={note}")));
        let before = crate::browser::snapshot(&app).await;
        let res = approver
            .post(
                &format!("{base}/edit"),
                &[
                    ("csrf_token", &a_csrf),
                    ("note", "Not mine"),
                    ("revision", &revision.to_string()),
                ],
            )
            .await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "[{backend}]");
        let res = approver
            .post(
                &format!("{base}/delete"),
                &[("csrf_token", &a_csrf), ("revision", &revision.to_string())],
            )
            .await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "[{backend}]");
        assert_eq!(crate::browser::snapshot(&app).await, before, "[{backend}]");

        // The edit form opens by a link, keeps the text, refuses an empty note.
        let form = contributor.text(&format!("{path}?edit={note}")).await;
        assert!(form.contains("Change your note") && form.contains("Board in Mrach."));
        let res = contributor
            .post(
                &format!("{base}/edit"),
                &[
                    ("csrf_token", &c_csrf),
                    ("note", "  "),
                    ("revision", &revision.to_string()),
                ],
            )
            .await;
        assert_eq!(
            res.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "[{backend}]"
        );
        assert!(res.text().await.unwrap().contains("Write the note"));
        let res = contributor
            .post(
                &format!("{base}/edit"),
                &[
                    ("csrf_token", &c_csrf),
                    ("note", "Board in March."),
                    ("revision", &revision.to_string()),
                ],
            )
            .await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "[{backend}]");
        let page = contributor.text(&path).await;
        assert!(
            page.contains("Board in March.") && page.contains("(edited "),
            "[{backend}]"
        );
        // A change against the revision before the edit is refused, and deletes nothing.
        let res = contributor
            .post(
                &format!("{base}/delete"),
                &[("csrf_token", &c_csrf), ("revision", &revision.to_string())],
            )
            .await;
        assert_eq!(res.status(), StatusCode::CONFLICT, "[{backend}]");
        assert_eq!(note_ids(&app).await.len(), 1, "[{backend}]");

        // Through the API: edit, then delete with the current revision.
        let token = token_for(&app, "contributor@a.nhs.uk").await;
        let api = format!("/api/v1/assessments/{}/notes/{note}", w.assessment_a);
        let res = app
            .client
            .patch(app.url(&api))
            .bearer_auth(&token)
            .json(&json!({"body": "Board on 4 March.", "revision": revision + 1}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK, "[{backend}]");
        let edited: Value = res.json().await.unwrap();
        assert_eq!(edited["body"], "Board on 4 March.");
        assert!(edited["edited_at"].is_string());
        let res = app
            .client
            .delete(app.url(&format!("{api}?revision={}", revision + 2)))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::NO_CONTENT, "[{backend}]");
        assert!(note_ids(&app).await.is_empty(), "[{backend}]");
        let page = contributor.text(&format!("{path}?done=deleted")).await;
        assert!(page.contains("Your note has been deleted"), "[{backend}]");

        // The log says what happened, not what the note said.
        let log: Vec<(String, Option<String>, Option<String>)> = app
            .db
            .read(|conn| {
                use dma::db::schema::audit_log as a;
                Ok(a::table
                    .filter(a::action.like("note.%"))
                    .order(a::id)
                    .select((a::action, a::before_value, a::after_value))
                    .load(conn)?)
            })
            .await
            .unwrap();
        let actions: Vec<&str> = log.iter().map(|(a, _, _)| a.as_str()).collect();
        assert_eq!(
            actions,
            ["note.add", "note.edit", "note.edit", "note.delete"],
            "[{backend}]"
        );
        assert!(
            !log.iter().any(|(_, before, after)| {
                [before, after].iter().any(|v| {
                    v.as_deref()
                        .is_some_and(|t| t.contains("March") || t.contains("Mrach"))
                })
            }),
            "[{backend}] the note's text is in the log"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_edits_of_one_note_on_postgres_are_decided_once() {
    if !backends().contains(&dma::db::Backend::Postgres) {
        return;
    }
    let app = TestApp::spawn(dma::db::Backend::Postgres).await;
    let w = World::seed(&app).await;
    let token = token_for(&app, "approver@a.nhs.uk").await;
    let notes_api = format!(
        "/api/v1/assessments/{}/questions/{}/notes",
        w.assessment_a, w.question_key
    );
    let statuses = all_at_once(&app, &token, &notes_api, vec![json!({"body": "first"})]).await;
    assert_eq!(statuses, [StatusCode::CREATED]);
    for trial in 0..5 {
        let (note, _, revision) = note_ids(&app).await[0];
        let api = format!("/api/v1/assessments/{}/notes/{note}", w.assessment_a);
        let barrier = Arc::new(Barrier::new(8));
        let mut tasks = Vec::new();
        for i in 0..8 {
            let req = app
                .client
                .patch(app.url(&api))
                .bearer_auth(&token)
                .json(&json!({"body": format!("edit {trial}.{i}"), "revision": revision}));
            let barrier = barrier.clone();
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                req.send().await.unwrap().status()
            }));
        }
        let mut statuses = Vec::new();
        for t in tasks {
            statuses.push(t.await.unwrap());
        }
        let won = statuses.iter().filter(|s| **s == StatusCode::OK).count();
        let refused = statuses
            .iter()
            .filter(|s| **s == StatusCode::CONFLICT)
            .count();
        assert_eq!((won, refused), (1, 7), "trial {trial}: {statuses:?}");
        assert_eq!(note_ids(&app).await[0].2, revision + 1, "trial {trial}");
    }
}
