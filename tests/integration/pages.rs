//! Pages every visitor can reach: the accessibility statement and the privacy notice linked
//! from every footer (a public-sector service must publish the first).

use reqwest::StatusCode;

use crate::helpers::{backends, TestApp};

#[tokio::test]
async fn the_footer_links_lead_to_an_accessibility_statement_and_a_privacy_notice() {
    let Some(backend) = backends().into_iter().next() else {
        return;
    };
    let app = TestApp::spawn(backend).await;
    let home = app.get("/").await.text().await.unwrap();
    for (path, heading, must) in [
        (
            "/accessibility",
            "Accessibility statement",
            "Enforcement procedure",
        ),
        ("/privacy", "Privacy", "dma_session"),
    ] {
        assert!(
            home.contains(&format!("href=\"{path}\"")),
            "no footer link to {path}"
        );
        let res = app.get(path).await;
        assert_eq!(res.status(), StatusCode::OK, "{path}");
        let html = res.text().await.unwrap();
        assert!(
            html.contains(&format!("<h1 class=\"dma-heading-xl\">{heading}</h1>")),
            "{html}"
        );
        assert!(html.contains(must), "{path} lacks {must}");
    }
}

/// Opening a cycle with nothing filled in names every problem at once, each date by its
/// field, instead of the dates first and the rest on the next attempt.
#[tokio::test]
async fn opening_a_cycle_reports_every_problem_at_once() {
    let Some(backend) = backends().into_iter().next() else {
        return;
    };
    let app = TestApp::spawn(backend).await;
    let password = "correct horse battery staple";
    app.create_user(
        "admin@example.nhs.uk",
        dma::services::auth::roles::Role::Administrator,
        None,
        password,
    )
    .await;
    app.sign_in("admin@example.nhs.uk", password).await;
    let csrf = app.session_csrf().await;
    let res = app
        .client
        .post(app.url("/admin/cycles"))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("label", ""),
            ("opens_on", ""),
            ("deadline", "31/01/2027"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = res.text().await.unwrap();
    for expected in [
        "href=\"#label\">Enter the cycle as years",
        "href=\"#opens_on\">Enter the date the cycle opens",
        "href=\"#deadline\">Enter the deadline as a real date",
        "href=\"#versions\">Choose a published question set",
    ] {
        assert!(html.contains(expected), "{expected} missing: {html}");
    }
}

/// Issue 20: at 320 px a wide table scrolls inside its own container instead of widening the
/// page, and a keyboard user can reach that container to scroll it. Every table of every page
/// template (emails aside) sits directly in a `dma-table-container` that is focusable and
/// named as a region.
#[test]
fn every_table_scrolls_in_a_focusable_named_region() {
    fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                if !path.ends_with("email") {
                    walk(&path, out);
                }
            } else if path.extension().is_some_and(|e| e == "hbs") {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("templates"),
        &mut files,
    );
    let mut problems = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for (at, _) in text.match_indices("<table") {
            let before = &text[..at];
            let opened = before.rfind("<div class=\"dma-table-container\"");
            let closed = before.rfind("</table>");
            let container = match opened {
                Some(o) if closed.is_none_or(|c| c < o) => {
                    let end = before[o..].find('>').map_or(before.len(), |e| o + e);
                    &before[o..end]
                }
                _ => {
                    problems.push(format!("{}: a table outside a container", file.display()));
                    continue;
                }
            };
            for wanted in ["tabindex=\"0\"", "role=\"region\"", "aria-label=\""] {
                if !container.contains(wanted) {
                    problems.push(format!("{}: {container} lacks {wanted}", file.display()));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

/// Issue 20: a printable copy of an assessment, with the answers given or blank, every
/// question with its options and the condition under which it is asked, in words.
#[tokio::test]
async fn an_assessment_prints_with_its_answers_or_blank() {
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        let world = crate::browser::World::seed(&app).await;
        let a = world.assessment_a;
        let contributor = crate::browser::Browser::new(&app);
        contributor
            .sign_in("contributor@a.nhs.uk", crate::browser::PASSWORD)
            .await;
        let user = world.contributor_a;
        app.db
            .write(move |conn| {
                let actor = dma::services::audit::Actor {
                    user_id: Some(user),
                    label: "contributor@a.nhs.uk".into(),
                    ip: None,
                };
                let loaded = dma::services::assessments::load(conn, a)?;
                let q = loaded
                    .questionnaire()
                    .question("wl-strategy")
                    .unwrap()
                    .clone();
                let answer = dma::domain::answers::parse_value(&q, &serde_json::json!(4))
                    .unwrap()
                    .unwrap();
                dma::services::assessments::save(
                    conn,
                    &actor,
                    a,
                    &[dma::services::assessments::Change {
                        key: "wl-strategy".into(),
                        answer: Some(answer),
                        seen_revision: 0,
                    }],
                )
            })
            .await
            .unwrap();
        let overview = contributor.text(&format!("/assessments/{a}")).await;
        assert!(
            overview.contains(&format!("href=\"/assessments/{a}/print\"")),
            "[{backend}]"
        );
        let res = contributor.get(&format!("/assessments/{a}/print")).await;
        assert_eq!(res.status(), StatusCode::OK, "[{backend}]");
        let filled = res.text().await.unwrap();
        assert!(filled.contains("How mature is the board-approved digital strategy?"));
        assert!(
            filled.contains(
                "Chosen:</span> <strong>The strategy is approved, resourced and monitored</strong>"
            ),
            "[{backend}] {filled}"
        );
        assert!(
            filled.contains("Asked only when</strong> \u{201c}Which best describes your electronic patient record?\u{201d} is one of \u{201c}An EPR in some departments\u{201d}, \u{201c}One EPR across the whole trust\u{201d}."),
            "[{backend}] conditions in words, by question text and option label"
        );
        assert!(
            !filled.contains("sf-epr is"),
            "[{backend}] no question keys"
        );
        assert!(
            filled.contains("Choose one.") && filled.contains("Tick all that apply."),
            "[{backend}] how to answer each kind of question"
        );
        assert!(filled.contains("Not answered yet."));
        assert!(
            !filled.contains("type=\"radio\"") && !filled.contains("type=\"checkbox\""),
            "[{backend}] the print copy has no form controls"
        );
        let blank = contributor
            .text(&format!("/assessments/{a}/print?blank=yes"))
            .await;
        assert!(blank.contains("How mature is the board-approved digital strategy?"));
        assert!(
            !blank.contains("Chosen:"),
            "[{backend}] the blank copy shows an answer"
        );
        assert!(blank.contains("draft answers offline"));
    }
}
