//! Authoring question sets (issue 26): the editor's forms without JavaScript, every change
//! checked by the upload's loader with errors at the format's paths, revisions that refuse a
//! stale edit (also under parallel requests), published versions that never change, next
//! year's draft with its comparability, and the same through the JSON API.

use std::sync::Arc;

use dma::services::auth::roles::Role;
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::sync::Barrier;

use crate::helpers::{backends, csrf_from, TestApp};

const PASSWORD: &str = "correct horse battery staple";
const ADMIN: &str = "author@example.nhs.uk";
const EDIT: &str = "/admin/questionnaires/care/2026.1/edit";

async fn admin_app(backend: dma::db::Backend) -> TestApp {
    let app = TestApp::spawn(backend).await;
    app.create_user(ADMIN, Role::Administrator, None, PASSWORD)
        .await;
    assert_eq!(
        app.sign_in(ADMIN, PASSWORD).await.status(),
        StatusCode::SEE_OTHER
    );
    app
}

async fn token(app: &TestApp) -> String {
    app.db
        .write(|conn| {
            let actor = dma::services::audit::Actor::system("test");
            let user = dma::services::auth::users::find_by_email(conn, ADMIN)?.unwrap();
            let (_, token) =
                dma::services::auth::api_token::create(conn, &actor, user.id, "t", 30)?;
            Ok(token)
        })
        .await
        .unwrap()
}

/// The revision shown on an editor page.
fn revision_of(html: &str) -> String {
    let at = html
        .find("name=\"revision\" value=\"")
        .expect("a revision field");
    let rest = &html[at + 23..];
    rest[..rest.find('"').unwrap()].to_string()
}

async fn post(app: &TestApp, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
    app.client
        .post(app.url(path))
        .form(fields)
        .send()
        .await
        .unwrap()
}

/// Post an editor action against the revision the editor shows now.
async fn act(app: &TestApp, fields: &[(&str, &str)]) -> reqwest::Response {
    let page = app.get(EDIT).await.text().await.unwrap();
    let (csrf, rev) = (csrf_from(&page), revision_of(&page));
    let mut all = vec![("csrf_token", csrf.as_str()), ("revision", rev.as_str())];
    all.extend_from_slice(fields);
    post(app, EDIT, &all).await
}

async fn definition(app: &TestApp) -> Value {
    let d = app
        .db
        .read(|conn| dma::services::authoring::draft(conn, "care", "2026.1"))
        .await
        .unwrap();
    d.document
}

async fn start_blank(app: &TestApp) {
    let page = app
        .get("/admin/questionnaires/new")
        .await
        .text()
        .await
        .unwrap();
    let res = post(
        app,
        "/admin/questionnaires/new",
        &[
            ("csrf_token", &csrf_from(&page)),
            ("key", "care"),
            ("version", "2026.1"),
            ("title", "Care"),
            ("settings", "acute, community"),
        ],
    )
    .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(res.headers()["location"], format!("{EDIT}?done=created"));
}

#[tokio::test]
async fn a_question_set_is_built_from_nothing_with_forms_alone() {
    for backend in backends() {
        let app = admin_app(backend).await;
        // A key the format refuses: the error is beside the field, with its path.
        let page = app
            .get("/admin/questionnaires/new")
            .await
            .text()
            .await
            .unwrap();
        let res = post(
            &app,
            "/admin/questionnaires/new",
            &[
                ("csrf_token", &csrf_from(&page)),
                ("key", "Care Set"),
                ("version", "1"),
                ("title", "T"),
                ("settings", "acute"),
            ],
        )
        .await;
        assert_eq!(
            res.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "[{backend}]"
        );
        let html = res.text().await.unwrap();
        assert!(
            html.contains("id=\"new-key-error\""),
            "[{backend}] no error beside the key"
        );
        start_blank(&app).await;
        assert_eq!(
            definition(&app).await["settings"],
            json!(["acute", "community"])
        );

        // Every type can be added, and each addition opens the new question.
        for kind in ["single", "multi", "scale", "checklist", "number", "text"] {
            let res = act(
                &app,
                &[
                    ("action", "add_question"),
                    ("at", "/domains/0"),
                    ("new_type", kind),
                ],
            )
            .await;
            assert_eq!(res.status(), StatusCode::SEE_OTHER, "[{backend}] {kind}");
            let location = res.headers()["location"].to_str().unwrap().to_string();
            assert!(location.starts_with(&format!("{EDIT}/0/")), "{location}");
            assert_eq!(
                app.get(&location).await.status(),
                StatusCode::OK,
                "[{backend}] {kind}"
            );
        }
        let doc = definition(&app).await;
        let types: Vec<&str> = doc["domains"][0]["questions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|q| q["type"].as_str().unwrap())
            .collect();
        assert_eq!(
            types,
            [
                "yes_no",
                "single",
                "multi",
                "scale",
                "checklist",
                "number",
                "text"
            ]
        );

        // Edit the single-choice question: reword, add an option in the blank row, remove
        // one, and show it only when the first question is answered Yes (a choice, not code).
        let form = app.get(&format!("{EDIT}/0/1")).await.text().await.unwrap();
        assert!(
            form.contains("question-1|equals|true"),
            "[{backend}] the yes/no's values are not offered"
        );
        let edit = |extra: Vec<(&'static str, &'static str)>| {
            let mut f = vec![
                ("action", "question"),
                ("at", "/domains/0/questions/1"),
                ("key", "records"),
                ("type", "single"),
                ("text", "How are records kept?"),
                ("help", "Think of the main system."),
                ("required", "yes"),
                ("weight", "2"),
                ("options[0].key", "paper"),
                ("options[0].label", "On paper"),
                ("options[0].score", "0"),
                ("options[1].key", "yes"),
                ("options[1].label", "Unused"),
                ("options[1].score", "1"),
                ("options[1].remove", "yes"),
                ("options[2].key", "electronic"),
                ("options[2].label", "Electronically"),
                ("options[2].score", "4"),
                ("options[3].key", "unsure"),
                ("options[3].label", "Not sure"),
                ("options[3].score", ""),
                ("mode", "all"),
                ("show_if_rows[0].test", "question-1|equals|true"),
                ("show_if_rows[0].number", ""),
            ];
            f.extend(extra);
            f
        };
        let res = act(&app, &edit(vec![])).await;
        assert_eq!(
            res.status(),
            StatusCode::SEE_OTHER,
            "[{backend}] {}",
            res.text().await.unwrap()
        );
        let doc = definition(&app).await;
        let q = &doc["domains"][0]["questions"][1];
        assert_eq!(q["key"], "records");
        assert_eq!(q["weight"], 2);
        assert_eq!(q["options"].as_array().unwrap().len(), 3, "{q}");
        assert_eq!(
            q["options"][2]["score"],
            Value::Null,
            "blank score is 'not scored'"
        );
        assert_eq!(
            q["show_if"],
            json!({"question": "question-1", "equals": true})
        );

        // A change the loader refuses: 422, the problem beside its field with its path, and
        // nothing stored.
        let before = definition(&app).await;
        let mut bad = edit(vec![]);
        for f in &mut bad {
            if f.0 == "options[2].key" {
                f.1 = "paper";
            }
        }
        let res = act(&app, &bad).await;
        assert_eq!(
            res.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "[{backend}]"
        );
        let html = res.text().await.unwrap();
        assert!(
            html.contains("domains[0].questions[1].options[1].key"),
            "[{backend}] path missing"
        );
        assert!(
            html.contains("id=\"question-options-1--key-error\""),
            "[{backend}] not beside the field"
        );
        assert!(
            html.matches("value=\"paper\"").count() == 2,
            "[{backend}] the posted values were lost"
        );
        // A condition changed in the same refused change is shown as chosen, not dropped.
        for f in &mut bad {
            if f.0 == "show_if_rows[0].test" {
                f.1 = "question-1|equals|false";
            }
        }
        let html = act(&app, &bad).await.text().await.unwrap();
        assert!(
            html.contains("value=\"question-1|equals|false\" selected"),
            "[{backend}] the condition typed with a refused change was lost"
        );
        assert!(!html.contains("cannot show as choices"), "[{backend}]");
        assert_eq!(
            definition(&app).await,
            before,
            "[{backend}] an invalid change was stored"
        );

        // Reorder and remove.
        // Moving the yes/no after the question whose condition uses it is refused: the
        // condition would name a later question.
        let res = act(
            &app,
            &[("action", "down"), ("at", "/domains/0/questions/0")],
        )
        .await;
        assert_eq!(
            res.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "[{backend}]"
        );
        assert!(
            res.text()
                .await
                .unwrap()
                .contains("domains[0].questions[0].show_if"),
            "[{backend}]"
        );
        let doc = definition(&app).await;
        assert_eq!(
            doc, before,
            "[{backend}] moving a question after the one it depends on was stored"
        );
        let res = act(
            &app,
            &[("action", "down"), ("at", "/domains/0/questions/5")],
        )
        .await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        let doc = definition(&app).await;
        assert_eq!(doc["domains"][0]["questions"][6]["type"], "number");
        let res = act(
            &app,
            &[("action", "remove"), ("at", "/domains/0/questions/6")],
        )
        .await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        assert_eq!(
            definition(&app).await["domains"][0]["questions"]
                .as_array()
                .unwrap()
                .len(),
            6
        );

        // Pillars and domains; bands and scale.
        assert_eq!(
            act(&app, &[("action", "add_domain")]).await.status(),
            StatusCode::SEE_OTHER
        );
        assert_eq!(
            act(&app, &[("action", "add_pillar")]).await.status(),
            StatusCode::SEE_OTHER
        );
        let doc = definition(&app).await;
        assert_eq!(
            doc["domains"][1]["pillar"], "pillar-1",
            "every domain joins the first pillar"
        );
        let res = act(
            &app,
            &[
                ("action", "pillar"),
                ("at", "/pillars/0"),
                ("key", "people"),
                ("title", "People"),
                ("weight", ""),
            ],
        )
        .await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        assert_eq!(
            definition(&app).await["domains"][0]["pillar"],
            "people",
            "renamed in its domains"
        );
        let res = act(
            &app,
            &[
                ("action", "domain"),
                ("at", "/domains/1"),
                ("key", "safety"),
                ("title", "Safety"),
                ("pillar", "people"),
                ("weight", "3"),
            ],
        )
        .await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        let res = act(&app, &[("action", "up"), ("at", "/domains/1")]).await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        let res = act(
            &app,
            &[
                ("action", "settings"),
                ("title", "Care 2026"),
                ("description", ""),
                ("settings", "acute"),
                ("scale.min", "0"),
                ("scale.max", "10"),
                ("decimals", "2"),
                ("bands[0].min", "0"),
                ("bands[0].label", "Early"),
                ("bands[1].min", "5"),
                ("bands[1].label", "Mature"),
                ("bands[2].min", ""),
                ("bands[2].label", ""),
            ],
        )
        .await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        let doc = definition(&app).await;
        assert_eq!(doc["domains"][0]["key"], "safety");
        assert_eq!(doc["domains"][0]["weight"], 3);
        assert_eq!(doc["scale"], json!({"min": 0, "max": 10}));
        assert_eq!(doc["bands"][1], json!({"min": 5, "label": "Mature"}));
        assert_eq!(doc["title"], "Care 2026");

        // The editor page draws it all, and the preview is one click away.
        let html = app.get(EDIT).await.text().await.unwrap();
        assert!(html.contains("href=\"/admin/questionnaires/care/2026.1/preview\""));
        assert_eq!(
            app.get("/admin/questionnaires/care/2026.1/preview?q.records=electronic")
                .await
                .status(),
            StatusCode::OK
        );

        // Published: the editor refuses, and so does the database.
        let page = app
            .get("/admin/questionnaires/care/2026.1/publish")
            .await
            .text()
            .await
            .unwrap();
        let res = post(
            &app,
            "/admin/questionnaires/care/2026.1/publish",
            &[("csrf_token", &csrf_from(&page)), ("confirm", "yes")],
        )
        .await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        let published = definition(&app).await;
        let page = app
            .get("/admin/questionnaires/care/2026.1")
            .await
            .text()
            .await
            .unwrap();
        let res = post(
            &app,
            EDIT,
            &[
                ("csrf_token", &csrf_from(&page)),
                ("revision", "1000"),
                ("action", "add_domain"),
            ],
        )
        .await;
        assert_eq!(res.status(), StatusCode::CONFLICT, "[{backend}]");
        assert_eq!(app.get(EDIT).await.status(), StatusCode::CONFLICT);
        assert_eq!(definition(&app).await, published);
    }
}

#[tokio::test]
async fn a_stale_edit_in_the_browser_is_refused_and_keeps_what_was_typed() {
    for backend in backends() {
        let app = admin_app(backend).await;
        start_blank(&app).await;
        let page = app.get(EDIT).await.text().await.unwrap();
        let (csrf, rev) = (csrf_from(&page), revision_of(&page));
        // Someone else adds a domain.
        assert_eq!(
            act(&app, &[("action", "add_domain")]).await.status(),
            StatusCode::SEE_OTHER
        );
        let before = definition(&app).await;
        let res = post(
            &app,
            EDIT,
            &[
                ("csrf_token", &csrf),
                ("revision", &rev),
                ("action", "question"),
                ("at", "/domains/0/questions/0"),
                ("key", "question-1"),
                ("type", "yes_no"),
                ("text", "My rewording"),
                ("required", "yes"),
                ("mode", "all"),
            ],
        )
        .await;
        assert_eq!(res.status(), StatusCode::CONFLICT, "[{backend}]");
        let html = res.text().await.unwrap();
        assert!(
            html.contains("Someone else changed this draft"),
            "[{backend}]"
        );
        assert!(
            html.contains("My rewording"),
            "[{backend}] the typed text is lost"
        );
        assert_eq!(
            definition(&app).await,
            before,
            "[{backend}] the stale edit was stored"
        );
        // Saving again from that page (it now holds the current revision) keeps the rewording.
        let rev2 = revision_of(&html);
        let res = post(
            &app,
            EDIT,
            &[
                ("csrf_token", &csrf),
                ("revision", &rev2),
                ("action", "question"),
                ("at", "/domains/0/questions/0"),
                ("key", "question-1"),
                ("type", "yes_no"),
                ("text", "My rewording"),
                ("required", "yes"),
                ("mode", "all"),
            ],
        )
        .await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        let doc = definition(&app).await;
        assert_eq!(doc["domains"][0]["questions"][0]["text"], "My rewording");
        assert_eq!(
            doc["domains"].as_array().unwrap().len(),
            2,
            "the other's domain was overwritten"
        );
    }
}

/// Many administrators change one draft at the same moment against the same revision:
/// exactly one change is stored, every other gets a stale-revision 409.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_edits_of_one_draft_store_exactly_one() {
    for backend in backends() {
        let app = admin_app(backend).await;
        start_blank(&app).await;
        let token = token(&app).await;
        for trial in 0..3 {
            let draft: Value = app
                .client
                .get(app.url("/api/v1/questionnaires/care/2026.1/draft"))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let revision = draft["revision"].as_i64().unwrap();
            let n = 8;
            let barrier = Arc::new(Barrier::new(n));
            let mut tasks = Vec::new();
            for i in 0..n {
                let (client, url, token, barrier) = (
                    app.client.clone(),
                    app.url("/api/v1/questionnaires/care/2026.1/draft"),
                    token.clone(),
                    barrier.clone(),
                );
                let body = json!({"revision": revision, "operations": [
                    {"op": "replace", "path": "/title", "value": format!("Title {trial}-{i}")}]});
                tasks.push(tokio::spawn(async move {
                    let req = client.patch(url).bearer_auth(token).json(&body);
                    barrier.wait().await;
                    let res = req.send().await.unwrap();
                    (res.status(), res.json::<Value>().await.unwrap())
                }));
            }
            let mut ok = Vec::new();
            for t in tasks {
                let (status, body) = t.await.unwrap();
                match status {
                    StatusCode::OK => ok.push(body),
                    StatusCode::CONFLICT => {
                        assert_eq!(
                            body["type"], "https://dma.example/problems/stale-revision",
                            "[{backend}] {body}"
                        );
                    }
                    other => panic!("[{backend}] {other}: {body}"),
                }
            }
            assert_eq!(
                ok.len(),
                1,
                "[{backend}] trial {trial}: {} changes stored",
                ok.len()
            );
            let now = definition(&app).await;
            assert_eq!(
                now["title"], ok[0]["definition"]["title"],
                "[{backend}] the stored title is not the winner's"
            );
            assert_eq!(ok[0]["revision"], revision + 1);
        }
    }
}

#[tokio::test]
async fn the_api_creates_changes_validates_and_publishes_a_draft() {
    for backend in backends() {
        let app = admin_app(backend).await;
        let token = token(&app).await;
        let api = |method: reqwest::Method, path: &str| {
            app.client
                .request(method, app.url(path))
                .bearer_auth(&token)
        };
        // Create (the import), then next year's draft from the published version.
        let example = std::fs::read(format!(
            "{}/tests/fixtures/wgll-acute-2025.yaml",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        let res = api(reqwest::Method::POST, "/api/v1/questionnaires?publish=true")
            .header("content-type", "application/yaml")
            .body(example)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::CREATED);
        let res = api(
            reqwest::Method::POST,
            "/api/v1/questionnaires/wgll-acute/2025.1/next",
        )
        .json(&json!({"version": "2026.1"}))
        .send()
        .await
        .unwrap();
        assert_eq!(res.status(), StatusCode::CREATED, "[{backend}]");
        let draft: Value = res.json().await.unwrap();
        assert_eq!(draft["based_on"], "2025.1");
        assert_eq!(draft["overall_comparable"], true);
        let rev = draft["revision"].as_i64().unwrap();
        let domain = draft["definition"]["domains"][0]["key"]
            .as_str()
            .unwrap()
            .to_string();

        // A rewording keeps the domain comparable; a rescoring does not, and says why.
        let q0 = draft["definition"]["domains"][0]["questions"][0].clone();
        let res = api(reqwest::Method::PATCH, "/api/v1/questionnaires/wgll-acute/2026.1/draft")
            .json(&json!({"revision": rev, "operations": [{"op": "replace", "path": "/domains/0/questions/0/text", "value": "Reworded"}]}))
            .send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let d: Value = res.json().await.unwrap();
        assert_eq!(d["domains"][0]["comparable"], true, "{d}");
        let res = api(reqwest::Method::PATCH, "/api/v1/questionnaires/wgll-acute/2026.1/draft")
            .json(&json!({"revision": rev + 1, "operations": [{"op": "add", "path": "/domains/0/questions/0/weight", "value": 5}]}))
            .send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let d: Value = res.json().await.unwrap();
        let c = d["domains"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["key"] == domain.as_str())
            .unwrap()
            .clone();
        assert_eq!(c["comparable"], false, "{d}");
        assert!(
            c["reasons"][0]
                .as_str()
                .unwrap()
                .contains(q0["key"].as_str().unwrap()),
            "{c}"
        );
        // ... and the editor page says so beside the domain.
        let html = app
            .get("/admin/questionnaires/wgll-acute/2026.1/edit")
            .await
            .text()
            .await
            .unwrap();
        assert!(html.contains("Not comparable"), "[{backend}]");
        // A domain's weight: every domain still compares, its success measure and the overall
        // score do not, and the page names the success measure and why at the top.
        let res = api(reqwest::Method::PATCH, "/api/v1/questionnaires/wgll-acute/2026.1/draft")
            .json(&json!({"revision": rev + 2, "operations": [{"op": "add", "path": "/domains/2/weight", "value": 2}]}))
            .send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK, "[{backend}]");
        let html = app
            .get("/admin/questionnaires/wgll-acute/2026.1/edit")
            .await
            .text()
            .await
            .unwrap();
        assert!(
            html.contains("the pillar&#x27;s domains or their weights changed")
                || html.contains("the pillar's domains or their weights changed"),
            "[{backend}] the success measure's reason is not shown: {}",
            &html[html.find("Comparable with").unwrap_or(0)..]
                [..1500.min(html.len() - html.find("Comparable with").unwrap_or(0))]
        );
        assert!(html.contains("The overall score: it is built from every domain"));

        // A stale revision: 409 with the current one.
        let res = api(
            reqwest::Method::PATCH,
            "/api/v1/questionnaires/wgll-acute/2026.1/draft",
        )
        .json(&json!({"revision": rev, "operations": []}))
        .send()
        .await
        .unwrap();
        assert_eq!(res.status(), StatusCode::CONFLICT);
        let p: Value = res.json().await.unwrap();
        assert_eq!(p["conflicts"][0]["revision"], rev + 3);

        // An invalid whole document: 422 with the format's paths; nothing stored.
        let mut doc = d["definition"].clone();
        doc["domains"][0]["questions"][0]["type"] = json!("yesno");
        let res = api(
            reqwest::Method::PUT,
            "/api/v1/questionnaires/wgll-acute/2026.1/draft",
        )
        .json(&json!({"revision": rev + 3, "definition": doc}))
        .send()
        .await
        .unwrap();
        assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let p: Value = res.json().await.unwrap();
        assert!(
            p["errors"][0]["path"]
                .as_str()
                .unwrap()
                .starts_with("domains[0].questions[0]"),
            "{p}"
        );
        // A valid one, then validate and publish.
        let mut doc = d["definition"].clone();
        doc["title"] = json!("Next year");
        let res = api(
            reqwest::Method::PUT,
            "/api/v1/questionnaires/wgll-acute/2026.1/draft",
        )
        .json(&json!({"revision": rev + 3, "definition": doc.clone()}))
        .send()
        .await
        .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let res = api(reqwest::Method::POST, "/api/v1/questionnaires/check")
            .json(&doc)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let res = api(
            reqwest::Method::POST,
            "/api/v1/questionnaires/wgll-acute/2026.1/publish",
        )
        .send()
        .await
        .unwrap();
        assert_eq!(res.status(), StatusCode::OK);

        // Published versions never change: 409 by the service, and the database refuses too.
        for path in [
            "/api/v1/questionnaires/wgll-acute/2026.1/draft",
            "/api/v1/questionnaires/wgll-acute/2025.1/draft",
        ] {
            let current: Value = api(reqwest::Method::GET, path)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let res = api(reqwest::Method::PATCH, path)
                .json(&json!({"revision": current["revision"], "operations": [{"op": "replace", "path": "/title", "value": "Changed"}]}))
                .send().await.unwrap();
            assert_eq!(res.status(), StatusCode::CONFLICT, "[{backend}] {path}");
            let after: Value = api(reqwest::Method::GET, path)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            assert_eq!(after, current, "[{backend}] {path} changed");
        }
        let refused = app
            .db
            .write(|conn| {
                use diesel::prelude::*;
                use dma::db::schema::questionnaire_versions as qv;
                Ok(diesel::update(qv::table.filter(qv::version.eq("2026.1")))
                    .set(qv::revision.eq(qv::revision + 1))
                    .execute(conn))
            })
            .await
            .unwrap();
        assert!(
            refused.is_err(),
            "[{backend}] the database let a published version change"
        );
    }
}

/// Every example question set survives the spreadsheet round trip unchanged:
/// import(export(v)) == v.
#[test]
fn every_example_survives_the_spreadsheet_round_trip() {
    let mut files: Vec<std::path::PathBuf> = Vec::new();
    for dir in [
        "/work/shared/examples",
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures"),
        concat!(env!("CARGO_MANIFEST_DIR"), "/demo"),
    ] {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        files.extend(entries.map(|e| e.unwrap().path()).filter(|p| {
            p.extension().is_some_and(|e| e == "yaml")
                && !p
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("answers")
        }));
    }
    let mut checked = 0;
    for file in files {
        let Ok(q) = dma::domain::questionnaire::load(&std::fs::read(&file).unwrap()) else {
            continue;
        };
        let bytes = dma::services::workbook::export(&q).unwrap();
        assert!(dma::services::workbook::is_workbook(&bytes));
        let back = dma::services::workbook::import(bytes)
            .unwrap_or_else(|e| panic!("{}: {e:?}", file.display()));
        assert_eq!(back, q, "{} changed in the round trip", file.display());
        checked += 1;
    }
    assert!(checked >= 2, "only {checked} examples found");
}

/// A small workbook written by hand, as an author would: its Questions sheet has `rows`.
fn workbook_with(rows: &[[&str; 4]]) -> Vec<u8> {
    use rust_xlsxwriter::Workbook;
    let mut book = Workbook::new();
    let set = book.add_worksheet().set_name("Set").unwrap();
    let fields = [
        ("field", "value"),
        ("key", "sheet-set"),
        ("version", "1"),
        ("title", "From a sheet"),
        ("settings", "acute"),
    ];
    for (i, (f, v)) in fields.iter().enumerate() {
        set.write_string(i as u32, 0, *f).unwrap();
        set.write_string(i as u32, 1, *v).unwrap();
    }
    let domains = book.add_worksheet().set_name("Domains").unwrap();
    domains.write_row(0, 0, ["key", "title"]).unwrap();
    domains.write_row(1, 0, ["records", "Records"]).unwrap();
    let questions = book.add_worksheet().set_name("Questions").unwrap();
    questions
        .write_row(0, 0, ["domain", "key", "type", "text"])
        .unwrap();
    for (i, row) in rows.iter().enumerate() {
        questions.write_row(i as u32 + 1, 0, *row).unwrap();
    }
    book.save_to_buffer().unwrap()
}

/// A workbook's problems are named by sheet, row and column.
#[test]
fn a_workbook_s_problems_are_named_by_sheet_row_and_column() {
    let good = ["records", "epr", "yes_no", "Is there an EPR?"];
    let bad_type = ["records", "paper", "yesno", "Paper?"];
    let lost = ["nowhere", "lost", "yes_no", "Lost?"];
    let errors =
        dma::services::workbook::import(workbook_with(&[good, bad_type, lost])).unwrap_err();
    assert_eq!(
        errors[0].path, "sheet Questions, row 4, column A (domain)",
        "{errors:?}"
    );
    // Without the row naming an unknown domain, the loader's error is placed too.
    let errors = dma::services::workbook::import(workbook_with(&[good, bad_type])).unwrap_err();
    assert!(
        errors
            .iter()
            .any(|e| e.path == "sheet Questions, row 3, column C (type)"
                && e.message.contains("domains[0].questions[1].type")),
        "{errors:?}"
    );
    assert!(dma::services::workbook::import(workbook_with(&[good])).is_ok());
}

#[tokio::test]
async fn a_version_downloads_as_a_spreadsheet_that_uploads_back_as_a_draft() {
    for backend in backends() {
        let app = admin_app(backend).await;
        start_blank(&app).await;
        let res = app
            .get("/admin/questionnaires/care/2026.1/download?format=xlsx")
            .await;
        assert_eq!(res.status(), StatusCode::OK);
        let bytes = res.bytes().await.unwrap().to_vec();
        let before = definition(&app).await;
        // Uploaded back (as the same draft version): stored unchanged.
        let page = app.get("/admin/questionnaires").await.text().await.unwrap();
        let form = reqwest::multipart::Form::new()
            .text("csrf_token", csrf_from(&page))
            .part(
                "file",
                reqwest::multipart::Part::bytes(bytes).file_name("care.xlsx"),
            );
        let res = app
            .client
            .post(app.url("/admin/questionnaires"))
            .multipart(form)
            .send()
            .await
            .unwrap();
        assert_eq!(
            res.status(),
            StatusCode::SEE_OTHER,
            "[{backend}] {}",
            res.text().await.unwrap()
        );
        assert_eq!(definition(&app).await, before, "[{backend}]");
    }
}
