//! Evidence per answer (issue 23): files and links added on the pages and through the API,
//! listed, downloaded with safe headers, removed; bad input refused with a message and
//! nothing half-stored; parallel uploads of the same file stored once; last year's evidence
//! kept when a carried-forward answer is confirmed. On both backends; the races on PostgreSQL
//! too.

use std::sync::Arc;

use diesel::prelude::*;
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::sync::Barrier;

use crate::browser::{Browser, World, PASSWORD};
use crate::helpers::{backends, TestApp};

/// A PDF of about `size` bytes whose content differs by `n`.
fn pdf(n: usize, size: usize) -> Vec<u8> {
    let mut out = format!("%PDF-1.4\n% evidence {n}\n").into_bytes();
    while out.len() + 6 < size {
        out.extend_from_slice(b"% pad\n");
    }
    out.extend_from_slice(b"%%EOF\n");
    out
}

const PNG: &[u8] = &[
    0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 0x0D, b'I', b'H', b'D', b'R', 0, 0, 0,
    1, 0, 0, 0, 1, 8, 6, 0, 0, 0, 0x1F, 0x15, 0xC4, 0x89,
];

async fn signed_in(app: &TestApp, email: &str) -> (Browser, String) {
    let b = Browser::new(app);
    b.sign_in(email, PASSWORD).await;
    let csrf = b.csrf().await;
    (b, csrf)
}

fn evidence_path(w: &World) -> String {
    format!(
        "/assessments/{}/questions/{}/evidence",
        w.assessment_a, w.question_key
    )
}

/// Post the page's "Add a file" form.
async fn add_file(
    b: &Browser,
    path: &str,
    csrf: &str,
    title: &str,
    bytes: Vec<u8>,
    name: &str,
) -> reqwest::Response {
    let form = reqwest::multipart::Form::new()
        .text("csrf_token", csrf.to_string())
        .text("kind", "file")
        .text("return", "page")
        .text("title", title.to_string())
        .part(
            "file",
            reqwest::multipart::Part::bytes(bytes).file_name(name.to_string()),
        );
    b.client
        .post(b.url(path))
        .multipart(form)
        .send()
        .await
        .unwrap()
}

async fn add_link(
    b: &Browser,
    path: &str,
    csrf: &str,
    title: &str,
    url: &str,
) -> reqwest::Response {
    let form = reqwest::multipart::Form::new()
        .text("csrf_token", csrf.to_string())
        .text("kind", "link")
        .text("return", "domain")
        .text("title", title.to_string())
        .text("url", url.to_string());
    b.client
        .post(b.url(path))
        .multipart(form)
        .send()
        .await
        .unwrap()
}

/// (evidence rows, blobs, chunks): what a refusal must leave as it was.
async fn stored(app: &TestApp) -> (i64, i64, i64) {
    app.db
        .read(|conn| {
            use dma::db::schema::{evidence, evidence_blob_chunks, evidence_blobs};
            Ok((
                evidence::table.count().get_result(conn)?,
                evidence_blobs::table.count().get_result(conn)?,
                evidence_blob_chunks::table.count().get_result(conn)?,
            ))
        })
        .await
        .unwrap()
}

async fn evidence_ids(app: &TestApp) -> Vec<(i64, String, Option<String>)> {
    app.db
        .read(|conn| {
            use dma::db::schema::evidence as e;
            Ok(e::table
                .order(e::id)
                .select((e::id, e::title, e::file_name))
                .load(conn)?)
        })
        .await
        .unwrap()
}

async fn audit_actions(app: &TestApp) -> Vec<String> {
    app.db
        .read(|conn| {
            use dma::db::schema::audit_log as l;
            Ok(l::table
                .filter(l::action.like("evidence.%"))
                .order(l::id)
                .select(l::action)
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

async fn set_status(app: &TestApp, id: i64, status: &'static str) {
    app.db
        .write(move |conn| {
            use dma::db::schema::assessments as a;
            diesel::update(a::table.find(id))
                .set(a::status.eq(status))
                .execute(conn)?;
            Ok(())
        })
        .await
        .unwrap();
}

#[tokio::test]
async fn files_and_links_are_added_listed_downloaded_and_removed() {
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        let w = World::seed(&app).await;
        let (contributor, csrf) = signed_in(&app, "contributor@a.nhs.uk").await;
        let path = evidence_path(&w);
        let file = pdf(1, 3 * 1024 * 1024 + 17);

        let res = add_file(
            &contributor,
            &path,
            &csrf,
            "Board minutes",
            file.clone(),
            "minutes.pdf",
        )
        .await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "[{backend}]");
        let res = add_link(
            &contributor,
            &path,
            &csrf,
            "Intranet policy",
            "https://intranet.example.nhs.uk/policy",
        )
        .await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "[{backend}]");
        assert_eq!(
            res.headers()["location"].to_str().unwrap(),
            format!(
                "/assessments/{}/domains/{}#q-{}-evidence",
                w.assessment_a, w.domain_key, w.question_key
            )
        );
        // Stored once, in 1 MiB chunks.
        assert_eq!(stored(&app).await, (2, 1, 4), "[{backend}]");

        // Listed on the question's domain page, with its download and remove button.
        let page = contributor
            .text(&format!(
                "/assessments/{}/domains/{}",
                w.assessment_a, w.domain_key
            ))
            .await;
        assert!(page.contains("Board minutes"), "[{backend}]");
        assert!(page.contains("Intranet policy"), "[{backend}]");
        assert!(
            page.contains("https://intranet.example.nhs.uk/policy"),
            "[{backend}]"
        );
        assert!(page.contains("PDF, 3.0 MB"), "[{backend}]");
        let ids = evidence_ids(&app).await;
        let file_id = ids[0].0;
        assert!(
            page.contains(&format!("evidence-remove-{file_id}")),
            "[{backend}]"
        );

        // The download: the bytes, as an attachment with the checked type and safe headers.
        let res = contributor
            .get(&format!(
                "/assessments/{}/evidence/{file_id}/download",
                w.assessment_a
            ))
            .await;
        assert_eq!(res.status(), 200, "[{backend}]");
        let h = res.headers().clone();
        assert_eq!(h["content-type"], "application/pdf");
        let disposition = h["content-disposition"].to_str().unwrap();
        assert!(disposition.starts_with("attachment"), "{disposition}");
        assert!(
            disposition.contains("filename=\"minutes.pdf\""),
            "{disposition}"
        );
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert!(h["content-security-policy"]
            .to_str()
            .unwrap()
            .starts_with("sandbox"));
        assert_eq!(h["content-length"], file.len().to_string().as_str());
        assert_eq!(res.bytes().await.unwrap().to_vec(), file, "[{backend}]");

        // The API lists the same items; people of another organisation reach nothing.
        let token = token_for(&app, "contributor@a.nhs.uk").await;
        let res = app
            .client
            .get(app.url(&format!("/api/v1{path}")))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let listed: Value = res.json().await.unwrap();
        assert_eq!(listed.as_array().unwrap().len(), 2, "[{backend}] {listed}");
        assert_eq!(listed[0]["kind"], "file");
        assert_eq!(listed[0]["size"], file.len());
        assert_eq!(listed[1]["url"], "https://intranet.example.nhs.uk/policy");
        let (other, _) = signed_in(&app, "contributor@b.nhs.uk").await;
        let res = other
            .get(&format!(
                "/assessments/{}/evidence/{file_id}/download",
                w.assessment_a
            ))
            .await;
        assert_eq!(res.status(), 403, "[{backend}]");

        // Auditors: nothing while it is being written, the files once it is submitted.
        let (auditor, _) = signed_in(&app, "auditor@example.nhs.uk").await;
        let download = format!(
            "/assessments/{}/evidence/{file_id}/download",
            w.assessment_a
        );
        assert_eq!(auditor.get(&download).await.status(), 403, "[{backend}]");
        set_status(&app, w.assessment_a, "submitted").await;
        assert_eq!(auditor.get(&download).await.status(), 200, "[{backend}]");
        let review = auditor
            .text(&format!("/assessments/{}/review", w.assessment_a))
            .await;
        assert!(
            review.contains("Board minutes"),
            "[{backend}] the review lists evidence"
        );
        // Submitted: no more changes.
        let res = contributor
            .post(
                &format!("/assessments/{}/evidence/{file_id}/remove", w.assessment_a),
                &[("csrf_token", &csrf), ("return", "page")],
            )
            .await;
        assert_eq!(res.status(), StatusCode::CONFLICT, "[{backend}]");
        set_status(&app, w.assessment_a, "in_progress").await;

        // Removing the file removes its bytes (nothing else names them).
        let res = contributor
            .post(
                &format!("/assessments/{}/evidence/{file_id}/remove", w.assessment_a),
                &[("csrf_token", &csrf), ("return", "page")],
            )
            .await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "[{backend}]");
        assert_eq!(stored(&app).await, (1, 0, 0), "[{backend}]");
        assert_eq!(contributor.get(&download).await.status(), 404);
        assert_eq!(
            audit_actions(&app).await,
            ["evidence.add", "evidence.add", "evidence.remove"],
            "[{backend}]"
        );
    }
}

#[tokio::test]
async fn bad_evidence_is_refused_with_a_message_and_nothing_is_stored() {
    for backend in backends() {
        let app = TestApp::spawn_with(
            backend,
            &[
                ("DMA_EVIDENCE_MAX_FILE_BYTES", "4096"),
                ("DMA_EVIDENCE_MAX_ASSESSMENT_BYTES", "9000"),
            ],
        )
        .await;
        let w = World::seed(&app).await;
        let (b, csrf) = signed_in(&app, "contributor@a.nhs.uk").await;
        let path = evidence_path(&w);
        let nothing = stored(&app).await;

        let cases: Vec<(&str, Vec<u8>, &str, StatusCode, &str)> = vec![
            (
                "Too big",
                pdf(2, 5000),
                "big.pdf",
                StatusCode::PAYLOAD_TOO_LARGE,
                "larger than 4 KB",
            ),
            (
                "Script",
                b"#!/bin/sh\nrm -rf /\n".to_vec(),
                "script.pdf",
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "not accepted as evidence",
            ),
            (
                "Misnamed",
                PNG.to_vec(),
                "chart.pdf",
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "content is a PNG image, but its name ends in .pdf",
            ),
            (
                "Empty",
                Vec::new(),
                "empty.pdf",
                StatusCode::UNPROCESSABLE_ENTITY,
                "The selected file is empty",
            ),
            (
                "",
                pdf(3, 1000),
                "untitled.pdf",
                StatusCode::UNPROCESSABLE_ENTITY,
                "Enter a title for the evidence",
            ),
        ];
        for (title, bytes, name, status, message) in cases {
            let res = add_file(&b, &path, &csrf, title, bytes, name).await;
            assert_eq!(res.status(), status, "[{backend}] {name}");
            let page = res.text().await.unwrap();
            assert!(page.contains("There is a problem"), "[{backend}] {name}");
            assert!(page.contains(message), "[{backend}] {name}: {message}");
            assert_eq!(
                stored(&app).await,
                nothing,
                "[{backend}] {name} stored something"
            );
        }
        for (url, message) in [
            ("javascript:alert(1)", "must start with https://"),
            ("intranet/policy", "Enter a full web address"),
            (
                "https://user:secret@example.nhs.uk/",
                "must not contain a user name or password",
            ),
        ] {
            let res = add_link(&b, &path, &csrf, "A link", url).await;
            assert_eq!(
                res.status(),
                StatusCode::UNPROCESSABLE_ENTITY,
                "[{backend}] {url}"
            );
            assert!(
                res.text().await.unwrap().contains(message),
                "[{backend}] {url}"
            );
        }
        assert_eq!(stored(&app).await, nothing, "[{backend}]");

        // A hostile name is stored and served as a plain one.
        let res = add_file(&b, &path, &csrf, "Hostile", pdf(4, 3000), "../../x").await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "[{backend}]");
        let ids = evidence_ids(&app).await;
        assert_eq!(ids[0].2.as_deref(), Some("x.pdf"), "[{backend}]");
        let res = b
            .get(&format!(
                "/assessments/{}/evidence/{}/download",
                w.assessment_a, ids[0].0
            ))
            .await;
        assert!(res.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains("filename=\"x.pdf\""));

        // The assessment's total: 3000 + 3000 fit under 9000, a third does not.
        let res = add_file(&b, &path, &csrf, "Second", pdf(5, 3000), "b.pdf").await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "[{backend}]");
        let before = stored(&app).await;
        let res = add_file(&b, &path, &csrf, "Third", pdf(6, 3500), "c.pdf").await;
        assert_eq!(
            res.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "[{backend}]"
        );
        assert!(
            res.text().await.unwrap().contains("past its limit"),
            "[{backend}]"
        );
        assert_eq!(
            stored(&app).await,
            before,
            "[{backend}] the refused file left rows"
        );

        // Too many items on one answer.
        for n in 0..18 {
            let res = add_link(
                &b,
                &path,
                &csrf,
                &format!("Link {n}"),
                "https://example.nhs.uk/",
            )
            .await;
            assert_eq!(res.status(), StatusCode::SEE_OTHER, "[{backend}] link {n}");
        }
        let res = add_link(&b, &path, &csrf, "One too many", "https://example.nhs.uk/").await;
        assert_eq!(
            res.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "[{backend}]"
        );
        assert!(
            res.text().await.unwrap().contains("already has 20 items"),
            "[{backend}]"
        );

        // The API says the same in problem documents.
        let token = token_for(&app, "contributor@a.nhs.uk").await;
        let other_key = format!(
            "/api/v1/assessments/{}/questions/wl-board-digital-lead/evidence",
            w.assessment_a
        );
        let before = stored(&app).await;
        let api_cases: Vec<(&str, Vec<u8>, &str, u16)> = vec![
            ("Too big", pdf(7, 5000), "big.pdf", 413),
            ("Script", b"MZ\x90\x00binary".to_vec(), "tool.pdf", 415),
            ("Empty", Vec::new(), "e.pdf", 422),
            ("", pdf(8, 100), "t.pdf", 422),
        ];
        for (title, bytes, name, status) in api_cases {
            let form = reqwest::multipart::Form::new()
                .text("title", title.to_string())
                .part(
                    "file",
                    reqwest::multipart::Part::bytes(bytes).file_name(name.to_string()),
                );
            let res = app
                .client
                .post(app.url(&other_key))
                .bearer_auth(&token)
                .multipart(form)
                .send()
                .await
                .unwrap();
            assert_eq!(res.status().as_u16(), status, "[{backend}] API {name}");
            let problem: Value = res.json().await.unwrap();
            assert_eq!(problem["status"], status, "[{backend}] {problem}");
            assert!(!problem["detail"].as_str().unwrap().is_empty());
        }
        let res = app
            .client
            .post(app.url(&other_key))
            .bearer_auth(&token)
            .json(&json!({"title": "x", "url": "ftp://example.nhs.uk/"}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 422, "[{backend}]");
        assert_eq!(
            stored(&app).await,
            before,
            "[{backend}] the API stored something"
        );
    }
}

#[tokio::test]
async fn parallel_uploads_of_the_same_file_store_it_once() {
    for backend in backends() {
        let app = Arc::new(TestApp::spawn(backend).await);
        let w = World::seed(&app).await;
        let token = token_for(&app, "contributor@a.nhs.uk").await;
        let url = app.url(&format!("/api/v1{}", evidence_path(&w)));
        let file = pdf(9, 2 * 1024 * 1024 + 5);
        let upload = |title: String| {
            let (app, url, token, file) = (app.clone(), url.clone(), token.clone(), file.clone());
            async move {
                let form = reqwest::multipart::Form::new().text("title", title).part(
                    "file",
                    reqwest::multipart::Part::bytes(file).file_name("same.pdf"),
                );
                let res = app
                    .client
                    .post(url)
                    .bearer_auth(token)
                    .multipart(form)
                    .send()
                    .await
                    .unwrap();
                let status = res.status();
                (status, res.json::<Value>().await.unwrap_or(Value::Null))
            }
        };
        let n = 8;
        let barrier = Arc::new(Barrier::new(n));
        let mut tasks = Vec::new();
        for i in 0..n {
            let (barrier, go) = (barrier.clone(), upload(format!("Copy {i}")));
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                go.await
            }));
        }
        for t in tasks {
            let (status, body) = t.await.unwrap();
            assert_eq!(status, StatusCode::CREATED, "[{backend}] {body}");
        }
        assert_eq!(stored(&app).await, (n as i64, 1, 3), "[{backend}]");

        // Removing copies while more copies arrive: no fault, and the bytes stay exactly as
        // long as some evidence names them.
        let ids: Vec<i64> = evidence_ids(&app).await.into_iter().map(|r| r.0).collect();
        let barrier = Arc::new(Barrier::new(ids.len() + 4));
        let mut tasks = Vec::new();
        for id in ids {
            let (app, token, barrier) = (app.clone(), token.clone(), barrier.clone());
            let a = w.assessment_a;
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                let res = app
                    .client
                    .delete(app.url(&format!("/api/v1/assessments/{a}/evidence/{id}")))
                    .bearer_auth(token)
                    .send()
                    .await
                    .unwrap();
                (res.status(), Value::Null)
            }));
        }
        for i in 0..4 {
            let (barrier, go) = (barrier.clone(), upload(format!("Again {i}")));
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                go.await
            }));
        }
        for t in tasks {
            let (status, body) = t.await.unwrap();
            assert!(
                status == StatusCode::CREATED || status == StatusCode::NO_CONTENT,
                "[{backend}] {status} {body}"
            );
        }
        assert_eq!(stored(&app).await, (4, 1, 3), "[{backend}]");
        let res = app
            .client
            .get(app.url(&format!(
                "/api/v1/assessments/{}/evidence/{}/download",
                w.assessment_a,
                evidence_ids(&app).await[0].0
            )))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.bytes().await.unwrap().to_vec(), file, "[{backend}]");
    }
}

#[tokio::test]
async fn confirming_a_carried_forward_answer_keeps_last_years_evidence() {
    use dma::services::assessments::{self, Change, SignOff};
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        let w = World::seed(&app).await;
        let (b, csrf) = signed_in(&app, "approver@a.nhs.uk").await;
        let path = evidence_path(&w);
        let res = add_file(
            &b,
            &path,
            &csrf,
            "Strategy 2025",
            pdf(10, 2000),
            "strategy.pdf",
        )
        .await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        let res = add_link(
            &b,
            &path,
            &csrf,
            "Strategy page",
            "https://example.nhs.uk/s",
        )
        .await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER);

        // Submit this year, open next year with the same question set.
        let raw = crate::assessment_flow::answers_of("answers-wgll-acute-complete.yaml");
        let (a, org, approver, notifier) =
            (w.assessment_a, w.org_a, w.approver_a, app.notifier.clone());
        let next = app
            .db
            .write(move |conn| {
                use dma::db::schema::assessments as t;
                let actor = dma::services::audit::Actor {
                    user_id: Some(approver),
                    label: "approver".into(),
                    ip: None,
                };
                let loaded = assessments::load(conn, a)?;
                let given = dma::domain::answers::validate(loaded.questionnaire(), &raw).unwrap();
                let changes: Vec<Change> = given
                    .into_iter()
                    .map(|(key, answer)| {
                        let seen_revision = loaded.answers.get(&key).map_or(0, |s| s.revision);
                        Change {
                            key,
                            answer: Some(answer),
                            seen_revision,
                        }
                    })
                    .collect();
                assessments::save(conn, &actor, a, &changes)?;
                assessments::submit(
                    conn,
                    &actor,
                    a,
                    &SignOff {
                        name: "P".into(),
                        job_title: "CIO".into(),
                        declaration: true,
                    },
                    &notifier,
                )?;
                let today = chrono::Utc::now().date_naive();
                let opened = dma::services::cycles::open(
                    conn,
                    &dma::services::audit::Actor::system("test"),
                    &dma::services::cycles::NewCycle {
                        label: "2026/27".into(),
                        opens_on: today,
                        deadline: today + chrono::Duration::days(60),
                        versions: [("acute".to_string(), loaded.row.questionnaire_version_id)]
                            .into(),
                    },
                    &notifier,
                )?;
                Ok(t::table
                    .filter(t::organisation_id.eq(org))
                    .filter(t::cycle_id.eq(opened.id))
                    .select(t::id)
                    .first::<i64>(conn)?)
            })
            .await
            .unwrap();
        // The submitted answers' export lists each answer's evidence for an auditor.
        let (auditor, _) = signed_in(&app, "auditor@example.nhs.uk").await;
        let csv = auditor
            .text(&format!(
                "/reports/export/answers.csv?cycle={}",
                dma::web::errors::urlencode("2025/26")
            ))
            .await;
        let csv = csv.strip_prefix('\u{feff}').expect("a byte-order mark");
        let mut reader = csv::Reader::from_reader(csv.as_bytes());
        let columns: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
        let col = |name: &str| columns.iter().position(|c| c == name).unwrap();
        let row = reader
            .records()
            .map(Result::unwrap)
            .find(|r| &r[col("question_key")] == w.question_key.as_str())
            .expect("the question's row");
        assert_eq!(&row[col("evidence_count")], "2", "[{backend}]");
        assert_eq!(
            &row[col("evidence")],
            "Strategy 2025 (file: strategy.pdf); Strategy page (link: https://example.nhs.uk/s)",
            "[{backend}]"
        );

        let next_items = || async {
            app.db
                .read(move |conn| {
                    use dma::db::schema::evidence as e;
                    Ok(e::table
                        .filter(e::assessment_id.eq(next))
                        .order(e::id)
                        .select((e::title, e::carried_from.is_not_null()))
                        .load::<(String, bool)>(conn)?)
                })
                .await
                .unwrap()
        };

        // The carried answer arrives without evidence; its page offers last year's.
        assert!(next_items().await.is_empty(), "[{backend}]");
        let page = b
            .text(&format!("/assessments/{next}/domains/{}", w.domain_key))
            .await;
        assert!(
            page.contains("From last year, confirm the answer to keep"),
            "[{backend}]"
        );
        assert!(page.contains("Strategy 2025"), "[{backend}]");

        // Confirming the answer (saving it unchanged) keeps it, once.
        for _ in 0..2 {
            let actor = dma::services::audit::Actor {
                user_id: Some(approver),
                label: "approver".into(),
                ip: None,
            };
            let key = w.question_key.clone();
            app.db
                .write(move |conn| {
                    let loaded = assessments::load(conn, next)?;
                    let keep = loaded.answers[&key].clone();
                    assessments::save(
                        conn,
                        &actor,
                        next,
                        &[Change {
                            key,
                            answer: Some(keep.answer),
                            seen_revision: keep.revision,
                        }],
                    )
                })
                .await
                .unwrap();
        }
        assert_eq!(
            next_items().await,
            [
                ("Strategy 2025".to_string(), true),
                ("Strategy page".to_string(), true)
            ],
            "[{backend}]"
        );
        // Shared bytes: still one blob.
        assert_eq!(stored(&app).await.1, 1, "[{backend}]");
        let page = b
            .text(&format!("/assessments/{next}/domains/{}", w.domain_key))
            .await;
        assert!(!page.contains("From last year, confirm"), "[{backend}]");
        assert!(page.contains("kept from last year"), "[{backend}]");
        assert!(audit_actions(&app)
            .await
            .contains(&"evidence.carry".to_string()));
    }
}
