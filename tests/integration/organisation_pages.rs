//! An organisation's own page (issue 20): changing its name, care settings, region and ICB by
//! the registry's rules (the ICB history is kept), closing it after a confirmation (left out
//! of later cycles, results kept), every refusal on the form with nothing stored, and two
//! administrators editing at once: one change wins, the other is told.

use std::sync::Arc;

use diesel::prelude::*;
use reqwest::StatusCode;
use tokio::sync::Barrier;

use crate::browser::{snapshot, Browser, World, PASSWORD};
use crate::helpers::{backends, TestApp};

/// The value of the hidden or text input `name` in a page.
fn input_value(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\"");
    let at = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in {html}"));
    let rest = &html[at..];
    let value = rest.find("value=\"").unwrap() + 7;
    let end = rest[value..].find('"').unwrap();
    rest[value..value + end].to_string()
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

async fn second_icb(app: &TestApp) {
    dma::services::registry::import_file(
        &app.db,
        b"ods_code,name,region,opened_on\nQY1,Other Integrated Care Board,London,2022-07-01\n"
            .to_vec(),
        None,
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn an_administrator_changes_and_closes_an_organisation_by_the_registry_rules() {
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        let world = World::seed(&app).await;
        second_icb(&app).await;
        let a = world.org_a;
        let admin = Browser::new(&app);
        admin.sign_in("admin@example.nhs.uk", PASSWORD).await;
        let list = admin.text("/admin/organisations").await;
        assert!(
            list.contains(&format!("href=\"/admin/organisations/{a}\"")),
            "[{backend}]"
        );
        let page = admin.text(&format!("/admin/organisations/{a}")).await;
        assert!(page.contains("Alpha Hospitals NHS Trust"), "[{backend}]");
        assert!(
            page.contains("Test Integrated Care Board (QZ1)"),
            "[{backend}] history"
        );
        assert!(
            page.contains("2025/26"),
            "[{backend}] its assessments are listed"
        );
        let csrf = input_value(&page, "csrf_token");
        let seen = input_value(&page, "seen");

        // Every problem at once, beside its field; nothing stored.
        let before = snapshot(&app).await;
        let path = format!("/admin/organisations/{a}");
        let res = admin
            .post(
                &path,
                &[
                    ("csrf_token", csrf.as_str()),
                    ("seen", seen.as_str()),
                    ("name", ""),
                    ("settings", "Acute Care"),
                    ("region", "London"),
                    ("parent_icb", "QY1"),
                    ("parent_from", "2027-02-30"),
                ],
            )
            .await;
        assert_eq!(
            res.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "[{backend}]"
        );
        let said = res.text().await.unwrap();
        assert!(said.contains("dma-error-summary"), "[{backend}] {said}");
        assert!(said.contains("id=\"settings-error\""), "[{backend}] {said}");
        assert!(
            said.contains("id=\"parent_from-error\""),
            "[{backend}] {said}"
        );
        assert!(
            said.contains("value=\"Acute Care\""),
            "[{backend}] what was typed is kept"
        );
        assert_eq!(
            snapshot(&app).await,
            before,
            "[{backend}] a refused edit stored something"
        );

        // A good change: renamed, a second setting, a new ICB from today.
        let res = admin
            .post(
                &path,
                &[
                    ("csrf_token", csrf.as_str()),
                    ("seen", seen.as_str()),
                    ("name", "Alpha and Omega NHS Trust"),
                    ("settings", "acute;community"),
                    ("region", "London"),
                    ("parent_icb", "QY1"),
                    ("parent_from", ""),
                ],
            )
            .await;
        assert_eq!(
            res.status(),
            StatusCode::SEE_OTHER,
            "[{backend}] {:?}",
            res.text().await
        );
        let page = admin.text(&format!("{path}?done=saved")).await;
        assert!(page.contains("The organisation was saved."), "[{backend}]");
        assert!(page.contains("Alpha and Omega NHS Trust"));
        assert!(page.contains("acute, community"), "[{backend}]");
        let today = chrono::Utc::now()
            .date_naive()
            .format("%Y-%m-%d")
            .to_string();
        assert_eq!(
            count(
                &app,
                format!(
                    "SELECT COUNT(*) AS n FROM organisation_parents WHERE organisation_id = {a}"
                )
            )
            .await,
            2,
            "[{backend}] the ICB history keeps the old membership"
        );
        assert_eq!(
            count(&app, format!("SELECT COUNT(*) AS n FROM organisation_parents WHERE organisation_id = {a} AND valid_to IS NULL AND valid_from = '{today}'")).await,
            1,
            "[{backend}] the new ICB applies from today"
        );
        assert_eq!(
            count(&app, format!("SELECT COUNT(*) AS n FROM audit_log WHERE action = 'organisation.update' AND organisation_id = {a}")).await,
            1
        );

        // The page that was open before is stale now: refused, nothing changed.
        let before = snapshot(&app).await;
        let res = admin
            .post(
                &path,
                &[
                    ("csrf_token", csrf.as_str()),
                    ("seen", seen.as_str()),
                    ("name", "Stale Name"),
                    ("settings", "acute"),
                    ("region", "London"),
                    ("parent_icb", ""),
                    ("parent_from", ""),
                ],
            )
            .await;
        assert_eq!(res.status(), StatusCode::CONFLICT, "[{backend}]");
        assert!(res
            .text()
            .await
            .unwrap()
            .contains("Someone else changed this organisation"));
        assert_eq!(snapshot(&app).await, before, "[{backend}]");

        // Closing: confirmed, with a date; then left out of the next cycle, results kept.
        let close = admin.text(&format!("{path}/close")).await;
        assert!(
            close.contains("Close Alpha and Omega NHS Trust?"),
            "[{backend}]"
        );
        let seen = input_value(&close, "seen");
        let res = admin
            .post(
                &format!("{path}/close"),
                &[
                    ("csrf_token", csrf.as_str()),
                    ("seen", seen.as_str()),
                    ("closed_on", ""),
                ],
            )
            .await;
        assert_eq!(
            res.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "[{backend}]"
        );
        let res = admin
            .post(
                &format!("{path}/close"),
                &[
                    ("csrf_token", csrf.as_str()),
                    ("seen", seen.as_str()),
                    ("closed_on", "1999-01-01"),
                ],
            )
            .await;
        assert_eq!(
            res.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "[{backend}] closed before it opened"
        );
        assert!(res.text().await.unwrap().contains("id=\"closed_on-error\""));
        let res = admin
            .post(
                &format!("{path}/close"),
                &[
                    ("csrf_token", csrf.as_str()),
                    ("seen", seen.as_str()),
                    ("closed_on", today.as_str()),
                ],
            )
            .await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "[{backend}]");
        let page = admin.text(&format!("{path}?done=closed")).await;
        assert!(page.contains("Closed on"), "[{backend}]");
        assert!(
            !page.contains(&format!("href=\"{path}/close\"")),
            "[{backend}]"
        );
        let notifier = app.notifier.clone();
        let b = app
            .db
            .write(move |conn| {
                let version: i64 = dma::db::schema::questionnaire_versions::table
                    .select(dma::db::schema::questionnaire_versions::id)
                    .first(conn)?;
                let tomorrow = chrono::Utc::now().date_naive() + chrono::Duration::days(1);
                dma::services::cycles::open(
                    conn,
                    &dma::services::audit::Actor::system("test"),
                    &dma::services::cycles::NewCycle {
                        label: "2026/27".into(),
                        opens_on: tomorrow,
                        deadline: tomorrow + chrono::Duration::days(60),
                        versions: [("acute".to_string(), version)].into_iter().collect(),
                    },
                    &notifier,
                )
            })
            .await
            .unwrap();
        assert_eq!(
            b.assessments, 1,
            "[{backend}] only B is invited to the next cycle"
        );
        assert_eq!(
            count(
                &app,
                format!("SELECT COUNT(*) AS n FROM assessments WHERE organisation_id = {a}")
            )
            .await,
            1,
            "[{backend}] A keeps its assessment of the earlier cycle"
        );
    }
}

/// Two administrators change the same organisation from the same page at once: one change is
/// stored, the other is refused with a 409, and one audit entry is written, in every trial.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_administrators_editing_one_organisation_at_once_cannot_both_win() {
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
        let path = format!("/admin/organisations/{}", world.org_a);
        let first = Browser::new(&app);
        first.sign_in("admin@example.nhs.uk", PASSWORD).await;
        let second = Browser::new(&app);
        second
            .sign_in("second.admin@example.nhs.uk", PASSWORD)
            .await;
        for trial in 0..5 {
            let page_1 = first.text(&path).await;
            let page_2 = second.text(&path).await;
            let audit = "SELECT COUNT(*) AS n FROM audit_log WHERE action = 'organisation.update'";
            let audited = count(&app, audit.into()).await;
            let barrier = Arc::new(Barrier::new(2));
            let mut tasks = Vec::new();
            for (n, (who, page)) in [(&first, page_1), (&second, page_2)]
                .into_iter()
                .enumerate()
            {
                let client = who.client.clone();
                let url = who.url(&path);
                let barrier = barrier.clone();
                let fields = vec![
                    ("csrf_token".to_string(), input_value(&page, "csrf_token")),
                    ("seen".to_string(), input_value(&page, "seen")),
                    (
                        "name".to_string(),
                        format!("Trial {trial} by administrator {n}"),
                    ),
                    ("settings".to_string(), "acute".to_string()),
                    ("region".to_string(), "London".to_string()),
                ];
                tasks.push(tokio::spawn(async move {
                    let req = client.post(url).form(&fields);
                    barrier.wait().await;
                    req.send().await.unwrap().status().as_u16()
                }));
            }
            let mut statuses = Vec::new();
            for t in tasks {
                statuses.push(t.await.unwrap());
            }
            statuses.sort_unstable();
            assert_eq!(statuses, [303, 409], "[{backend}] trial {trial}");
            assert_eq!(
                count(&app, audit.into()).await,
                audited + 1,
                "[{backend}] trial {trial}: one change, one audit entry"
            );
        }
    }
}
