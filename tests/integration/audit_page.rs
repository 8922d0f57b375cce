//! The audit log page: newest first, filters, pages, values before and after.

use dma::services::auth::roles::Role;
use reqwest::StatusCode;

use crate::browser::{Browser, PASSWORD};
use crate::helpers::{backends, TestApp};

async fn record(app: &TestApp, n: usize, action: &'static str, actor: &'static str) {
    app.db
        .write(move |conn| {
            for i in 0..n {
                dma::services::audit::record(
                    conn,
                    &dma::services::audit::Actor::system(actor),
                    dma::services::audit::Entry::new(action, "widget", i)
                        .before(serde_json::json!({"colour": "red", "i": i}))
                        .after(serde_json::json!({"colour": "<blue>", "i": i})),
                )?;
            }
            Ok(())
        })
        .await
        .unwrap();
}

#[tokio::test]
async fn administrators_and_auditors_read_the_log_with_filters() {
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        app.create_user("admin@example.nhs.uk", Role::Administrator, None, PASSWORD)
            .await;
        app.create_user("auditor@example.nhs.uk", Role::Auditor, None, PASSWORD)
            .await;
        app.create_user("viewer@example.nhs.uk", Role::GroupViewer, None, PASSWORD)
            .await;
        record(&app, 55, "widget.paint", "painter").await;
        record(&app, 1, "widget_x.polish", "polisher").await;

        let auditor = Browser::new(&app);
        auditor.sign_in("auditor@example.nhs.uk", PASSWORD).await;
        let page = auditor.text("/admin/audit").await;
        // Newest first: the last entry written opens the page.
        let polish = page.find("widget_x.polish").expect("newest entry");
        let paint = page.find("widget.paint").expect("older entries");
        assert!(polish < paint, "[{backend}] not newest first");
        assert!(page.contains("<details class=\"dma-details"));
        // JSON is shown, escaped.
        assert!(
            page.contains("&quot;colour&quot;: &quot;&lt;blue&gt;&quot;"),
            "[{backend}]"
        );
        assert!(page.contains("Showing 1 to 50 of"));

        // An action prefix; `_` is a literal, not a wildcard.
        let painted = auditor.text("/admin/audit?action=widget.").await;
        assert!(
            painted.contains("Showing 1 to 50 of 55 entries"),
            "[{backend}]"
        );
        assert!(!painted.contains("widget_x.polish"));
        let page2 = auditor.text("/admin/audit?action=widget.&page=2").await;
        assert!(
            page2.contains("Showing 51 to 55 of 55 entries"),
            "[{backend}]"
        );
        let literal = auditor.text("/admin/audit?action=widget_").await;
        assert!(literal.contains("of 1 entries"), "[{backend}]");

        let by_actor = auditor.text("/admin/audit?actor=POLISHER").await;
        assert!(by_actor.contains("of 1 entries"), "[{backend}]");
        let users = auditor.text("/admin/audit?entity=user").await;
        assert!(users.contains("user.create") && !users.contains("widget.paint"));

        let today = chrono::Utc::now().date_naive();
        let tomorrow = today + chrono::Duration::days(1);
        let today_only = auditor
            .text(&format!(
                "/admin/audit?action=widget&from={today}&to={today}"
            ))
            .await;
        assert!(today_only.contains("of 56 entries"), "[{backend}]");
        let future = auditor.text(&format!("/admin/audit?from={tomorrow}")).await;
        assert!(future.contains("No entries match these filters"));
        let bad = auditor.text("/admin/audit?from=yesterday").await;
        assert!(bad.contains("Enter a real date") && bad.contains("There is a problem"));

        let admin = Browser::new(&app);
        admin.sign_in("admin@example.nhs.uk", PASSWORD).await;
        assert_eq!(admin.get("/admin/audit").await.status(), StatusCode::OK);
        assert!(admin.text("/dashboard").await.contains("/admin/audit"));

        let viewer = Browser::new(&app);
        viewer.sign_in("viewer@example.nhs.uk", PASSWORD).await;
        assert_eq!(
            viewer.get("/admin/audit").await.status(),
            StatusCode::FORBIDDEN
        );
        assert!(!viewer.text("/dashboard").await.contains("/admin/audit"));
    }
}

#[tokio::test]
async fn a_saved_answer_is_logged_with_its_value_before_and_after_and_links_to_its_assessment() {
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        let w = crate::browser::World::seed(&app).await;
        let id = w.assessment_a;
        for value in [3, 5] {
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
                            answer: Some(dma::domain::Answer::Scale(value)),
                            seen_revision: seen,
                        }],
                    )?;
                    Ok(())
                })
                .await
                .unwrap();
        }
        let admin = Browser::new(&app);
        admin.sign_in("admin@example.nhs.uk", PASSWORD).await;
        let page = admin
            .text("/admin/audit?action=assessment.answers_saved")
            .await;
        assert!(
            page.contains("&quot;wl-strategy&quot;: 3")
                && page.contains("&quot;wl-strategy&quot;: 5"),
            "[{backend}] the values are not in the log"
        );
        assert!(
            page.contains(&format!("href=\"/assessments/{id}\">assessment {id}</a>")),
            "[{backend}] no link to the assessment"
        );
    }
}
