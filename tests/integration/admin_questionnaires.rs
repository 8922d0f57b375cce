//! The administrator's question-set pages: upload with errors on the page, preview with live
//! conditions and scores, publication behind a confirmation, and immutability by every route.

use dma::services::auth::roles::Role;
use reqwest::StatusCode;

use crate::helpers::{backends, csrf_from, TestApp};

const PASSWORD: &str = "correct horse battery staple";

fn example() -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/wgll-acute-2025.yaml",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

async fn upload(app: &TestApp, bytes: Vec<u8>, publish: bool) -> reqwest::Response {
    let page = app.get("/admin/questionnaires").await.text().await.unwrap();
    let mut form = reqwest::multipart::Form::new()
        .text("csrf_token", csrf_from(&page))
        .part(
            "file",
            reqwest::multipart::Part::bytes(bytes).file_name("set.yaml"),
        );
    if publish {
        form = form.text("publish", "yes");
    }
    app.client
        .post(app.url("/admin/questionnaires"))
        .multipart(form)
        .send()
        .await
        .unwrap()
}

async fn admin_app(backend: dma::db::Backend) -> TestApp {
    let app = TestApp::spawn(backend).await;
    app.create_user("admin@example.nhs.uk", Role::Administrator, None, PASSWORD)
        .await;
    assert_eq!(
        app.sign_in("admin@example.nhs.uk", PASSWORD).await.status(),
        StatusCode::SEE_OTHER
    );
    app
}

#[tokio::test]
async fn an_invalid_upload_lists_every_problem_and_saves_nothing() {
    for backend in backends() {
        let app = admin_app(backend).await;
        let bad = example()
            .iter()
            .map(|b| *b as char)
            .collect::<String>()
            .replace("type: yes_no", "type: yesno")
            .replace("key: cyber", "key: Cyber Security");
        let res = upload(&app, bad.into_bytes(), false).await;
        assert_eq!(
            res.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "[{backend}]"
        );
        let html = res.text().await.unwrap();
        assert!(html.contains("There is a problem"), "no error summary");
        assert!(
            html.contains("href=\"#problem-0\""),
            "summary does not link to the problems"
        );
        assert!(html.contains("domains[3].key"), "{html}");
        assert!(html.contains("yesno"), "unknown type not reported");
        let list = app
            .db
            .read(dma::services::questionnaires::list)
            .await
            .unwrap();
        assert!(list.is_empty(), "[{backend}] something was saved");

        let res = upload(&app, vec![0, 1, 2, 0xff], false).await;
        assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let res = upload(&app, vec![b'#'; 3 * 1024 * 1024], false).await;
        assert_eq!(
            res.status(),
            StatusCode::PAYLOAD_TOO_LARGE,
            "[{backend}] oversized upload"
        );
        assert!(res.text().await.unwrap().contains("larger than"));
    }
}

#[tokio::test]
async fn upload_preview_publish_and_nothing_changes_a_published_version() {
    for backend in backends() {
        let app = admin_app(backend).await;
        let res = upload(&app, example(), false).await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "[{backend}]");
        let location = res.headers()["location"].to_str().unwrap().to_string();
        assert_eq!(
            location,
            "/admin/questionnaires/wgll-acute/2025.1?done=imported"
        );
        let page = app.get(&location).await.text().await.unwrap();
        assert!(page.contains("Draft") && page.contains("Infrastructure and records"));

        // Preview: the uptime question is hidden until the EPR answer makes it relevant, and
        // the preview scores what is typed into it.
        let base = "/admin/questionnaires/wgll-acute/2025.1";
        let html = app
            .get(&format!("{base}/preview"))
            .await
            .text()
            .await
            .unwrap();
        assert!(
            html.contains("Hidden question:"),
            "no hidden question shown as such"
        );
        assert!(
            html.contains("Shown when \u{201c}Which best describes your electronic patient record?\u{201d} is one of \u{201c}An EPR in some departments\u{201d}, \u{201c}One EPR across the whole trust\u{201d}"),
            "{html}"
        );
        // A blank printed copy of the version, numbered, conditions in words, no controls.
        let version_page = app.get(base).await.text().await.unwrap();
        assert!(version_page.contains(&format!("href=\"{base}/print\"")));
        let printed = app.get(&format!("{base}/print")).await;
        assert_eq!(printed.status(), StatusCode::OK);
        let printed = printed.text().await.unwrap();
        assert!(printed.contains("wgll-acute version 2025.1"), "{printed}");
        assert!(printed.contains("The questions, to draft answers offline."));
        assert!(printed.contains("1. How mature is the board-approved digital strategy?"));
        assert!(printed.contains("2. Does the board include a named executive lead for digital?"));
        assert!(printed.contains("Asked only when</strong> \u{201c}Which best describes"));
        assert!(!printed.contains("type=\"radio\"") && !printed.contains("Chosen:"));
        assert!(printed.contains("Back to the question set"));
        let html = app
            .get(&format!("{base}/preview?q.sf-epr=full&q.sf-uptime=99.95&q.sp-mfa=yes&q.sp-dspt=met&q.sp-offline-backups=no"))
            .await
            .text()
            .await
            .unwrap();
        assert!(html.contains("name=\"q.sf-uptime\" type=\"text\" inputmode=\"decimal\" spellcheck=\"false\" value=\"99.95\""), "uptime not shown after EPR answered");
        // Cyber: mfa yes (1), dspt met (2/3), backups no (0, weight 2): 1 + 4*(1+0.6667)/4 = 2.7
        assert!(
            html.contains("2.7<br><span class=\"dma-body-s\">Developing</span>"),
            "cyber score missing from preview"
        );
        let html = app
            .get(&format!("{base}/preview?q.sf-uptime=lots"))
            .await
            .text()
            .await
            .unwrap();
        assert!(
            html.contains("There is a problem"),
            "bad number not reported"
        );

        // Publishing needs the confirmation box and the form token.
        let csrf = csrf_from(
            &app.get(&format!("{base}/publish"))
                .await
                .text()
                .await
                .unwrap(),
        );
        let res = app
            .client
            .post(app.url(&format!("{base}/publish")))
            .form(&[("csrf_token", csrf.as_str())])
            .send()
            .await
            .unwrap();
        // Without the tick: the confirmation again, with an error summary linked to the box.
        assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let html = res.text().await.unwrap();
        assert!(
            html.contains("There is a problem")
                && html.contains("href=\"#confirm\">Tick the box")
                && html.contains("name=\"confirm\""),
            "{html}"
        );
        let res = app
            .client
            .post(app.url(&format!("{base}/publish")))
            .form(&[("csrf_token", "forged"), ("confirm", "yes")])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400);
        let res = app
            .client
            .post(app.url(&format!("{base}/publish")))
            .form(&[("csrf_token", csrf.as_str()), ("confirm", "yes")])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "[{backend}]");

        // Every route that could change it now refuses.
        let res = upload(&app, example(), false).await;
        assert_eq!(
            res.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "[{backend}] re-upload replaced a published version"
        );
        assert!(res
            .text()
            .await
            .unwrap()
            .contains("is published and cannot be changed"));
        let res = app
            .client
            .post(app.url(&format!("{base}/delete")))
            .form(&[("csrf_token", csrf.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::CONFLICT);
        let res = app
            .client
            .post(app.url(&format!("{base}/publish")))
            .form(&[("csrf_token", csrf.as_str()), ("confirm", "yes")])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::CONFLICT);

        // Downloads re-import to the same model.
        for format in ["yaml", "json"] {
            let res = app.get(&format!("{base}/download?format={format}")).await;
            assert_eq!(res.status(), 200);
            assert!(res.headers()["content-disposition"]
                .to_str()
                .unwrap()
                .contains(&format!("wgll-acute-2025.1.{format}")));
            let model = dma::domain::questionnaire::load(&res.bytes().await.unwrap()).unwrap();
            assert_eq!(
                model,
                dma::domain::questionnaire::load(&example()).unwrap(),
                "[{backend}] {format}"
            );
        }
    }
}

#[tokio::test]
async fn the_diff_page_marks_rescored_domains_as_not_comparable() {
    for backend in backends() {
        let app = admin_app(backend).await;
        upload(&app, example(), true).await;
        let next = String::from_utf8(example())
            .unwrap()
            .replace("version: \"2025.1\"", "version: \"2026.1\"")
            .replace("weight: 2\n", "weight: 3\n")
            .replace(
                "Is multi-factor authentication enforced for all remote access?",
                "Is MFA enforced for all remote access?",
            );
        assert_eq!(
            upload(&app, next.into_bytes(), false).await.status(),
            StatusCode::SEE_OTHER
        );
        let res = app
            .get("/admin/questionnaires/wgll-acute/diff?a=2025.1&b=2026.1")
            .await;
        assert_eq!(res.status(), 200, "[{backend}]");
        let html = res.text().await.unwrap();
        let rescored = html.split("Rescored (not comparable)").nth(1).unwrap();
        assert!(
            rescored
                .split("</div>")
                .next()
                .unwrap()
                .contains("sp-offline-backups"),
            "{html}"
        );
        let reworded = html.split("Reworded").nth(1).unwrap();
        assert!(reworded.split("</div>").next().unwrap().contains("sp-mfa"));
        assert!(html.contains("Not comparable"));
        // A draft can be deleted, after a confirmation: the first press only asks.
        let csrf = csrf_from(&html);
        let res = app
            .client
            .post(app.url("/admin/questionnaires/wgll-acute/2026.1/delete"))
            .form(&[("csrf_token", csrf.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let asked = res.text().await.unwrap();
        assert!(
            asked.contains("Delete draft 2026.1 of wgll-acute?"),
            "{asked}"
        );
        assert!(asked.contains("name=\"confirm\" value=\"yes\""));
        assert_eq!(
            app.get("/admin/questionnaires/wgll-acute/2026.1")
                .await
                .status(),
            StatusCode::OK,
            "deleted without confirmation"
        );
        let res = app
            .client
            .post(app.url("/admin/questionnaires/wgll-acute/2026.1/delete"))
            .form(&[("csrf_token", csrf.as_str()), ("confirm", "yes")])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        assert_eq!(
            app.get("/admin/questionnaires/wgll-acute/2026.1")
                .await
                .status(),
            404
        );
    }
}

#[tokio::test]
async fn only_administrators_reach_question_set_pages() {
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        let res = app.get("/admin/questionnaires").await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "[{backend}] anonymous");
        for (i, role) in [
            Role::Auditor,
            Role::GroupViewer,
            Role::OrgApprover,
            Role::OrgContributor,
        ]
        .into_iter()
        .enumerate()
        {
            let email = format!("person{i}@example.nhs.uk");
            let org = role.is_organisation_role().then_some(1);
            if org.is_some() {
                seed_org(&app).await;
            }
            app.create_user(&email, role, org, PASSWORD).await;
            let client = reqwest::Client::builder()
                .cookie_store(true)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap();
            let form = client
                .get(app.url("/login"))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            let res = client
                .post(app.url("/login"))
                .form(&[
                    ("email", email.as_str()),
                    ("password", PASSWORD),
                    ("csrf_token", &csrf_from(&form)),
                ])
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), StatusCode::SEE_OTHER);
            for path in [
                "/admin/questionnaires",
                "/admin/questionnaires/wgll-acute/2025.1/preview",
            ] {
                let res = client.get(app.url(path)).send().await.unwrap();
                assert_eq!(
                    res.status(),
                    StatusCode::FORBIDDEN,
                    "[{backend}] {role:?} reached {path}"
                );
            }
        }
    }
}

async fn seed_org(app: &TestApp) {
    use diesel::prelude::*;
    app.db
        .write(|conn| {
            use dma::db::schema::organisations as o;
            let exists: i64 = o::table.filter(o::id.eq(1)).count().get_result(conn)?;
            if exists == 0 {
                let now = chrono::Utc::now().naive_utc();
                diesel::insert_into(o::table)
                    .values((
                        o::id.eq(1),
                        o::ods_code.eq("RX1"),
                        o::name.eq("Test Trust"),
                        o::kind.eq("trust"),
                        o::created_at.eq(now),
                        o::updated_at.eq(now),
                    ))
                    .execute(conn)?;
            }
            Ok(())
        })
        .await
        .unwrap();
}
