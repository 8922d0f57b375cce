//! The audit log page: newest first, filters, pages, values before and after.

use dma::auth::roles::Role;
use reqwest::StatusCode;

use crate::browser::{Browser, PASSWORD};
use crate::helpers::{backends, TestApp};

async fn record(app: &TestApp, n: usize, action: &'static str, actor: &'static str) {
    app.db
        .write(move |conn| {
            for i in 0..n {
                dma::audit::record(
                    conn,
                    &dma::audit::Actor::system(actor),
                    dma::audit::Entry::new(action, "widget", i)
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
