//! One person's page for administrators (issue 20): changing their role (a recent sign-in
//! required, their open sessions read the new role at once, the last administrator cannot be
//! demoted, a stale page is refused) and sending an invitation again (a new single-use link
//! through the outbox, the old one revoked). Two administrators demoting each other at once
//! cannot leave the service without one.

use std::sync::Arc;

use diesel::prelude::*;
use reqwest::StatusCode;
use tokio::sync::Barrier;

use crate::browser::{link_in, outbox, snapshot, Browser, World, PASSWORD};
use crate::helpers::{backends, TestApp};

async fn role_of(app: &TestApp, id: i64) -> String {
    app.db
        .read(move |conn| {
            use dma::db::schema::users as u;
            Ok(u::table.find(id).select(u::role).first(conn)?)
        })
        .await
        .unwrap()
}

async fn audited(app: &TestApp, action: &'static str) -> i64 {
    app.db
        .read(move |conn| {
            use dma::db::schema::audit_log as a;
            Ok(a::table
                .filter(a::action.eq(action))
                .count()
                .get_result(conn)?)
        })
        .await
        .unwrap()
}

#[tokio::test]
async fn an_administrator_changes_a_role_and_sends_an_invitation_again() {
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        let world = World::seed(&app).await;
        let admin = Browser::new(&app);
        admin.sign_in("admin@example.nhs.uk", PASSWORD).await;
        let csrf = admin.csrf().await;
        let contributor = Browser::new(&app);
        contributor.sign_in("contributor@a.nhs.uk", PASSWORD).await;
        assert_eq!(
            contributor.get("/organisation/users").await.status(),
            StatusCode::FORBIDDEN
        );

        let list = admin.text("/admin/users").await;
        let person = format!("/admin/users/{}", world.contributor_a);
        assert!(list.contains(&format!("href=\"{person}\"")), "[{backend}]");
        let page = admin.text(&person).await;
        assert!(page.contains("Change role"), "[{backend}]");
        assert!(
            !page.contains("Send a new invitation"),
            "[{backend}] they accepted theirs"
        );

        // Bad input: each problem beside its field, nothing changed.
        let before = snapshot(&app).await;
        let role = format!("{person}/role");
        for (fields, field) in [
            (vec![("role", "")], "role-error"),
            (
                vec![("role", "org_approver"), ("organisation", "ZZZ99")],
                "organisation-error",
            ),
            (vec![("role", "group_viewer")], "icb-error"),
            (vec![("role", "pope")], "role-error"),
        ] {
            let mut f = fields.clone();
            f.push(("csrf_token", &csrf));
            f.push(("seen_role", "org_contributor"));
            let res = admin.post(&role, &f).await;
            assert_eq!(
                res.status(),
                StatusCode::UNPROCESSABLE_ENTITY,
                "[{backend}] {fields:?}"
            );
            let said = res.text().await.unwrap();
            assert!(
                said.contains(&format!("id=\"{field}\"")),
                "[{backend}] {fields:?}: {said}"
            );
            assert!(said.contains("dma-error-summary"));
        }
        assert_eq!(
            snapshot(&app).await,
            before,
            "[{backend}] a refused change stored something"
        );

        // A contributor becomes an approver; their open session reads it on the next page.
        let res = admin
            .post(
                &role,
                &[
                    ("csrf_token", csrf.as_str()),
                    ("seen_role", "org_contributor"),
                    ("role", "org_approver"),
                    ("organisation", "RA1"),
                ],
            )
            .await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "[{backend}]");
        assert_eq!(role_of(&app, world.contributor_a).await, "org_approver");
        assert_eq!(
            contributor.get("/organisation/users").await.status(),
            StatusCode::OK,
            "[{backend}] the session did not read the new role"
        );
        assert_eq!(audited(&app, "user.role_change").await, 1);
        let page = admin.text(&format!("{person}?done=role")).await;
        assert!(page.contains("The role was changed"), "[{backend}]");

        // The page that was open before is stale now.
        let res = admin
            .post(
                &role,
                &[
                    ("csrf_token", csrf.as_str()),
                    ("seen_role", "org_contributor"),
                    ("role", "auditor"),
                ],
            )
            .await;
        assert_eq!(res.status(), StatusCode::CONFLICT, "[{backend}]");
        assert!(res.text().await.unwrap().contains("Someone else changed"));
        assert_eq!(role_of(&app, world.contributor_a).await, "org_approver");

        // The last administrator cannot be demoted, not even by themselves.
        let res = admin
            .post(
                &format!("/admin/users/{}/role", world.admin),
                &[
                    ("csrf_token", csrf.as_str()),
                    ("seen_role", "administrator"),
                    ("role", "auditor"),
                ],
            )
            .await;
        assert_eq!(res.status(), StatusCode::CONFLICT, "[{backend}]");
        assert!(res.text().await.unwrap().contains("last administrator"));
        assert_eq!(role_of(&app, world.admin).await, "administrator");

        // Someone invited who lost the email: a new link, the old one revoked.
        let res = admin
            .post(
                "/admin/users/invite",
                &[
                    ("csrf_token", csrf.as_str()),
                    ("email", "late@a.nhs.uk"),
                    ("name", "Lee Late"),
                    ("role", "org_contributor"),
                    ("organisation", "RA1"),
                ],
            )
            .await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "[{backend}]");
        let id = app
            .db
            .read(|conn| {
                Ok(
                    dma::services::auth::users::find_by_email(conn, "late@a.nhs.uk")?
                        .unwrap()
                        .id,
                )
            })
            .await
            .unwrap();
        let invitations = |mail: Vec<(String, String, String)>| -> Vec<String> {
            mail.into_iter()
                .filter(|(k, to, _)| k == "invitation" && to == "late@a.nhs.uk")
                .map(|(_, _, body)| link_in(&body))
                .collect()
        };
        let first = invitations(outbox(&app).await);
        assert_eq!(first.len(), 1);
        let page = admin.text(&format!("/admin/users/{id}")).await;
        assert!(page.contains("Send a new invitation"), "[{backend}]");
        let res = admin
            .post(
                &format!("/admin/users/{id}/resend-invitation"),
                &[("csrf_token", csrf.as_str())],
            )
            .await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "[{backend}]");
        let links = invitations(outbox(&app).await);
        assert_eq!(
            links.len(),
            2,
            "[{backend}] the new invitation is in the outbox"
        );
        let lee = Browser::new(&app);
        assert_eq!(
            lee.get(&links[0]).await.status(),
            StatusCode::GONE,
            "[{backend}] old link"
        );
        let form = lee.text(&links[1]).await;
        assert!(form.contains("late@a.nhs.uk"), "[{backend}] new link works");
        assert_eq!(audited(&app, "user.invite_again").await, 1);

        // Not for someone who has chosen a password already.
        let res = admin
            .post(
                &format!("/admin/users/{}/resend-invitation", world.approver_a),
                &[("csrf_token", csrf.as_str())],
            )
            .await;
        assert_eq!(res.status(), StatusCode::CONFLICT, "[{backend}]");
        assert!(res.text().await.unwrap().contains("already accepted"));
    }
}

/// Two administrators, the only two, demote each other at the same moment, over several
/// trials: one change is made and the other refused, so one administrator always remains.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_administrators_demoting_each_other_at_once_leave_one() {
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        let world = World::seed(&app).await;
        let second_id = app
            .create_user(
                "second.admin@example.nhs.uk",
                dma::services::auth::roles::Role::Administrator,
                None,
                PASSWORD,
            )
            .await;
        for trial in 0..5 {
            // Both administrators again, each signed in afresh.
            app.db
                .write(move |conn| {
                    use dma::db::schema::users as u;
                    diesel::update(u::table.filter(u::email.like("%admin@example.nhs.uk")))
                        .set(u::role.eq("administrator"))
                        .execute(conn)?;
                    Ok(())
                })
                .await
                .unwrap();
            let first = Browser::new(&app);
            first.sign_in("admin@example.nhs.uk", PASSWORD).await;
            let second = Browser::new(&app);
            second
                .sign_in("second.admin@example.nhs.uk", PASSWORD)
                .await;
            let barrier = Arc::new(Barrier::new(2));
            let mut tasks = Vec::new();
            for (who, target) in [(&first, second_id), (&second, world.admin)] {
                let fields = vec![
                    ("csrf_token".to_string(), who.csrf().await),
                    ("seen_role".to_string(), "administrator".to_string()),
                    ("role".to_string(), "auditor".to_string()),
                ];
                let client = who.client.clone();
                let url = who.url(&format!("/admin/users/{target}/role"));
                let barrier = barrier.clone();
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
            // The loser is refused by the last-administrator rule (409), or, if it came after
            // the winner's commit, as the auditor it now is (403).
            assert!(
                statuses == [303, 409] || statuses == [303, 403],
                "[{backend}] trial {trial}: {statuses:?}"
            );
            let admins = [
                role_of(&app, world.admin).await,
                role_of(&app, second_id).await,
            ];
            assert_eq!(
                admins.iter().filter(|r| *r == "administrator").count(),
                1,
                "[{backend}] trial {trial}: {admins:?}"
            );
        }
    }
}

/// The value of the input `name` in a page, with the entities a template writes undone.
fn input_value(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let at = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in {html}"))
        + marker.len();
    let end = html[at..].find('"').unwrap();
    html[at..at + end]
        .replace("&#x3D;", "=")
        .replace("&#x27;", "'")
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

#[tokio::test]
async fn people_are_invited_from_a_csv_file_all_or_nothing_after_a_preview() {
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        let _world = World::seed(&app).await;
        let admin = Browser::new(&app);
        admin.sign_in("admin@example.nhs.uk", PASSWORD).await;
        let page = admin.text("/admin/users/import").await;
        assert!(page.contains("Invite people from a file"), "[{backend}]");
        let csrf = admin.csrf().await;
        let upload =
            |file: Vec<u8>| admin.post_multipart("/admin/users/import", &csrf, file, "people.csv");

        // Every problem, each with its line and column; nothing written.
        let before = snapshot(&app).await;
        let bad = "email,name,role,organisation\n\
                   ok@a.nhs.uk,Olu Okay,org_contributor,RA1\n\
                   not-an-address,No Email,org_contributor,RA1\n\
                   boss@a.nhs.uk,Big Boss,emperor,RA1\n\
                   lost@a.nhs.uk,Lost Person,org_approver,\n\
                   ok@a.nhs.uk,Olu Again,org_contributor,RA1\n\
                   approver@a.nhs.uk,Already Here,org_approver,RA1\n\
                   short@a.nhs.uk,Short Line\n";
        let res = upload(bad.as_bytes().to_vec()).await;
        assert_eq!(
            res.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "[{backend}]"
        );
        let said = res.text().await.unwrap();
        for (line, column, words) in [
            (3, Some("email"), ""),
            (4, Some("role"), "Choose a role"),
            (5, Some("organisation"), "ODS code"),
            (6, Some("email"), "already on line 2"),
            (7, Some("email"), "already exists"),
            (8, None, "cells"),
        ] {
            let row = format!("dma-table__cell--numeric\">{line}</td>");
            assert!(
                said.contains(&row),
                "[{backend}] no problem on line {line}: {said}"
            );
            if let Some(column) = column {
                assert!(
                    said.contains(&format!("{row}<td class=\"dma-table__cell\"><code class=\"dma-code\">{column}</code>")),
                    "[{backend}] line {line} not at column {column}"
                );
            }
            assert!(said.contains(words), "[{backend}] {words}");
        }
        assert!(said.contains("Nobody was invited"), "[{backend}]");
        assert!(said.contains("dma-error-summary"));
        for (file, status) in [
            (vec![0xff, 0xfe, 0x41], StatusCode::UNPROCESSABLE_ENTITY),
            (b"who,what\n".to_vec(), StatusCode::UNPROCESSABLE_ENTITY),
            (Vec::new(), StatusCode::UNPROCESSABLE_ENTITY),
            (vec![b'a'; 300 * 1024], StatusCode::PAYLOAD_TOO_LARGE),
        ] {
            let res = upload(file).await;
            assert_eq!(res.status(), status, "[{backend}]");
            assert!(res.text().await.unwrap().contains("dma-error-summary"));
        }
        assert_eq!(
            snapshot(&app).await,
            before,
            "[{backend}] a refused file stored something"
        );

        // A good file: a preview first, nothing written; then everyone at once.
        let good = "Email,Name,Role,Organisation,ICB,Region\n\
                    ada@a.nhs.uk,Ada Lovelace,org_contributor,RA1,,\n\
                    \"grace@example.nhs.uk\",\"Hopper, Grace\",group_viewer,,QZ1,\n";
        let res = upload(good.as_bytes().to_vec()).await;
        assert_eq!(res.status(), StatusCode::OK, "[{backend}]");
        let preview = res.text().await.unwrap();
        assert!(
            preview.contains("Send 2 invitations"),
            "[{backend}] {preview}"
        );
        assert!(preview.contains("Hopper, Grace") && preview.contains("QZ1"));
        assert_eq!(
            snapshot(&app).await,
            before,
            "[{backend}] the preview stored something"
        );
        let file = input_value(&preview, "file");
        assert_eq!(file, good, "[{backend}] the file did not come back whole");
        let res = admin
            .post(
                "/admin/users/import/confirm",
                &[("csrf_token", csrf.as_str()), ("file", file.as_str())],
            )
            .await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "[{backend}]");
        assert_eq!(
            res.headers()["location"],
            "/admin/users?done=imported&invited=2"
        );
        let mail = outbox(&app).await;
        let invited: Vec<&str> = mail
            .iter()
            .filter(|(k, _, _)| k == "invitation")
            .map(|(_, to, _)| to.as_str())
            .collect();
        assert_eq!(
            invited,
            ["ada@a.nhs.uk", "grace@example.nhs.uk"],
            "[{backend}]"
        );
        assert_eq!(audited(&app, "user.invite").await, 2);

        // The same file again: both have accounts now; nobody more is invited.
        let before = snapshot(&app).await;
        let res = admin
            .post(
                "/admin/users/import/confirm",
                &[("csrf_token", csrf.as_str()), ("file", file.as_str())],
            )
            .await;
        assert_eq!(
            res.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "[{backend}]"
        );
        assert!(res.text().await.unwrap().contains("already exists"));
        assert_eq!(snapshot(&app).await, before, "[{backend}]");
    }
}
