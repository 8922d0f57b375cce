//! People: invitations by administrators and by approvers (with the email written to the
//! outbox in the same transaction), validation next to the fields, deactivation that signs
//! the person out, and password reset without revealing who has an account.

use diesel::prelude::*;
use reqwest::StatusCode;

use crate::browser::{link_in, outbox, sessions_of, snapshot, Browser, World, PASSWORD};
use crate::helpers::{backends, csrf_from, TestApp};

async fn invite_as_admin(b: &Browser, fields: &[(&str, &str)]) -> reqwest::Response {
    let csrf = csrf_from(&b.text("/admin/users/invite").await);
    let mut all = vec![("csrf_token", csrf.as_str())];
    all.extend_from_slice(fields);
    b.post("/admin/users/invite", &all).await
}

async fn user_row(app: &TestApp, email: &str) -> Option<(i64, String, Option<i64>, bool, bool)> {
    let email = email.to_string();
    app.db
        .read(move |conn| {
            use dma::db::schema::users as u;
            Ok(u::table
                .filter(u::email.eq(email))
                .select((
                    u::id,
                    u::role,
                    u::organisation_id,
                    u::active,
                    u::password_hash.is_not_null(),
                ))
                .first(conn)
                .optional()?)
        })
        .await
        .unwrap()
}

#[tokio::test]
async fn an_administrator_invites_and_the_link_sets_a_password() {
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        let world = World::seed(&app).await;
        let admin = Browser::new(&app);
        admin.sign_in("admin@example.nhs.uk", PASSWORD).await;

        let res = invite_as_admin(
            &admin,
            &[
                ("email", " Nia.Patel@A.nhs.uk "),
                ("name", "Nia Patel"),
                ("role", "org_approver"),
                ("organisation", "ra1"),
            ],
        )
        .await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "[{backend}]");
        assert_eq!(res.headers()["location"], "/admin/users?done=invited");
        let list = admin.text("/admin/users?done=invited").await;
        assert!(list.contains("The invitation has been sent"));
        assert!(list.contains("nia.patel@a.nhs.uk") && list.contains("Invited"));

        let (id, role, org, active, has_password) =
            user_row(&app, "nia.patel@a.nhs.uk").await.expect("account");
        assert_eq!(
            (role.as_str(), org, active, has_password),
            ("org_approver", Some(world.org_a), true, false)
        );
        let mail = outbox(&app).await;
        assert_eq!(mail.len(), 1, "[{backend}]");
        let (kind, to, body) = &mail[0];
        assert_eq!(
            (kind.as_str(), to.as_str()),
            ("invitation", "nia.patel@a.nhs.uk")
        );
        assert!(
            body.contains("Alpha Hospitals NHS Trust"),
            "[{backend}] {body}"
        );
        let link = link_in(body);

        // The invitation is audit logged with the account's creation.
        let actions: Vec<String> = app
            .db
            .read(move |conn| {
                use dma::db::schema::audit_log as a;
                Ok(a::table
                    .filter(a::entity_type.eq("user"))
                    .filter(a::entity_id.eq(id.to_string()))
                    .order(a::id)
                    .select(a::action)
                    .load(conn)?)
            })
            .await
            .unwrap();
        assert_eq!(actions, ["user.create", "user.invite"]);

        // The link works once and signs the new person in.
        let nia = Browser::new(&app);
        let form = nia.text(&link).await;
        assert!(form.contains("nia.patel@a.nhs.uk"), "[{backend}]");
        let res = nia
            .post(
                "/account/set-password",
                &[
                    ("token", link.split("token=").nth(1).unwrap()),
                    ("password", "four ripe pears in june"),
                    ("confirm", "four ripe pears in june"),
                    ("csrf_token", &csrf_from(&form)),
                ],
            )
            .await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "[{backend}]");
        let dashboard = nia.text("/dashboard").await;
        assert!(
            dashboard.contains("/organisation/users"),
            "approver has no link to their people"
        );
        assert_eq!(nia.get(&link).await.status(), StatusCode::GONE);

        // Filters: by role and by organisation.
        let approvers = admin.text("/admin/users?role=org_approver").await;
        assert!(approvers.contains("approver@a.nhs.uk") && approvers.contains("approver@b.nhs.uk"));
        assert!(!approvers.contains("contributor@a.nhs.uk"));
        let of_b = admin.text("/admin/users?organisation=RB1").await;
        assert!(
            of_b.contains("approver@b.nhs.uk") && !of_b.contains("approver@a.nhs.uk"),
            "[{backend}]"
        );
        let unknown = admin.text("/admin/users?organisation=RZZ").await;
        assert!(unknown.contains("Nobody matches these filters"));
    }
}

#[tokio::test]
async fn invitations_are_checked_field_by_field_and_nothing_is_written_when_wrong() {
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        let _world = World::seed(&app).await;
        let admin = Browser::new(&app);
        admin.sign_in("admin@example.nhs.uk", PASSWORD).await;
        let before = snapshot(&app).await;
        let cases: &[(&[(&str, &str)], &str)] = &[
            (
                &[
                    ("email", "not-an-email"),
                    ("name", "A"),
                    ("role", "auditor"),
                ],
                "Enter an email address in the correct format",
            ),
            (
                &[
                    ("email", "Approver@A.nhs.uk"),
                    ("name", "A"),
                    ("role", "auditor"),
                ],
                "An account for approver@a.nhs.uk already exists",
            ),
            (
                &[
                    ("email", "x@a.nhs.uk"),
                    ("name", "A"),
                    ("role", "org_contributor"),
                ],
                "Enter the ODS code of the organisation this contributor works for",
            ),
            (
                &[
                    ("email", "x@a.nhs.uk"),
                    ("name", "A"),
                    ("role", "org_contributor"),
                    ("organisation", "RZ9"),
                ],
                "There is no organisation with ODS code RZ9 in the registry",
            ),
            (
                &[
                    ("email", "x@a.nhs.uk"),
                    ("name", "A"),
                    ("role", "org_contributor"),
                    ("organisation", "R-1"),
                ],
                "is not an ODS code",
            ),
            (
                &[("email", "x@a.nhs.uk"), ("name", ""), ("role", "auditor")],
                "Enter the person&#x27;s full name",
            ),
            (
                &[("email", "x@a.nhs.uk"), ("name", "A"), ("role", "root")],
                "Choose a role",
            ),
            (
                &[
                    ("email", "x@a.nhs.uk"),
                    ("name", "A"),
                    ("role", "group_viewer"),
                ],
                "Enter the ODS code of the ICB, or choose a region",
            ),
            (
                &[
                    ("email", "x@a.nhs.uk"),
                    ("name", "A"),
                    ("role", "group_viewer"),
                    ("icb", "RA1"),
                ],
                "RA1 is not an ICB",
            ),
            (
                &[
                    ("email", "x@a.nhs.uk"),
                    ("name", "A"),
                    ("role", "group_viewer"),
                    ("region", "Atlantis"),
                ],
                "Choose a region from the list",
            ),
        ];
        for (fields, message) in cases {
            let res = invite_as_admin(&admin, fields).await;
            assert_eq!(
                res.status(),
                StatusCode::UNPROCESSABLE_ENTITY,
                "[{backend}] {fields:?}"
            );
            let page = res.text().await.unwrap();
            assert!(
                page.contains(message),
                "[{backend}] {fields:?}: {message} missing"
            );
            // Next to the field as well as in the summary.
            assert!(page.contains("dma-error-message"));
            assert!(page.contains("There is a problem"));
        }
        assert_eq!(
            snapshot(&app).await,
            before,
            "[{backend}] a refused invitation wrote something"
        );

        // Group viewers by ICB and by region are accepted.
        for (email, field, value) in [
            ("icb@x.nhs.uk", "icb", "qz1"),
            ("region@x.nhs.uk", "region", "London"),
        ] {
            let res = invite_as_admin(
                &admin,
                &[
                    ("email", email),
                    ("name", "Gus Viewer"),
                    ("role", "group_viewer"),
                    (field, value),
                ],
            )
            .await;
            assert_eq!(res.status(), StatusCode::SEE_OTHER, "[{backend}] {field}");
        }
        assert_eq!(outbox(&app).await.len(), 2);
    }
}

#[tokio::test]
async fn an_approver_invites_and_deactivates_in_their_own_organisation() {
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        let world = World::seed(&app).await;
        let approver = Browser::new(&app);
        approver.sign_in("approver@a.nhs.uk", PASSWORD).await;
        let page = approver.text("/organisation/users").await;
        assert!(
            page.contains("Alpha Hospitals NHS Trust") && page.contains("contributor@a.nhs.uk")
        );
        assert!(!page.contains("contributor@b.nhs.uk"), "[{backend}]");
        let csrf = csrf_from(&page);

        let res = approver
            .post(
                "/organisation/users/invite",
                &[
                    ("csrf_token", &csrf),
                    ("email", "new@a.nhs.uk"),
                    ("name", "New Contributor"),
                    ("role", "org_contributor"),
                ],
            )
            .await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "[{backend}]");
        let (_, role, org, _, _) = user_row(&app, "new@a.nhs.uk").await.unwrap();
        assert_eq!((role.as_str(), org), ("org_contributor", Some(world.org_a)));
        assert_eq!(outbox(&app).await[0].1, "new@a.nhs.uk");

        // Their own ODS code in the field is fine; a duplicate gets the usual answer.
        let res = approver
            .post(
                "/organisation/users/invite",
                &[
                    ("csrf_token", &csrf),
                    ("email", "new@a.nhs.uk"),
                    ("name", "Again"),
                    ("role", "org_contributor"),
                    ("organisation", "RA1"),
                ],
            )
            .await;
        // An approver is not told the address has an account: the same answer as a new
        // invitation (docs/security.md; tests/integration/security.rs holds the details).
        assert_eq!(res.status(), StatusCode::SEE_OTHER);

        // Deactivating a contributor signs them out everywhere and stops their sign-in.
        let contributor = Browser::new(&app);
        contributor.sign_in("contributor@a.nhs.uk", PASSWORD).await;
        assert_eq!(sessions_of(&app, world.contributor_a).await, 1);
        let res = approver
            .post(
                &format!("/organisation/users/{}/deactivate", world.contributor_a),
                &[("csrf_token", &csrf)],
            )
            .await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "[{backend}]");
        assert_eq!(
            sessions_of(&app, world.contributor_a).await,
            0,
            "[{backend}] still signed in"
        );
        assert_eq!(
            contributor.get("/dashboard").await.status(),
            StatusCode::SEE_OTHER
        );
        let again = Browser::new(&app);
        let form = again.text("/login").await;
        let res = again
            .post(
                "/login",
                &[
                    ("email", "contributor@a.nhs.uk"),
                    ("password", PASSWORD),
                    ("csrf_token", &csrf_from(&form)),
                ],
            )
            .await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        let page = approver.text("/organisation/users?done=deactivated").await;
        assert!(page.contains("Deactivated") && page.contains("signed out everywhere"));

        // Not themselves.
        let res = approver
            .post(
                &format!("/organisation/users/{}/deactivate", world.approver_a),
                &[("csrf_token", &csrf)],
            )
            .await;
        assert_eq!(res.status(), StatusCode::CONFLICT, "[{backend}]");
        assert!(user_row(&app, "approver@a.nhs.uk").await.unwrap().3);

        // Contributors do not manage people.
        let b = Browser::new(&app);
        b.sign_in("contributor@b.nhs.uk", PASSWORD).await;
        assert_eq!(
            b.get("/organisation/users").await.status(),
            StatusCode::FORBIDDEN
        );

        // An administrator deactivates anyone, from the administrators' page.
        let admin = Browser::new(&app);
        admin.sign_in("admin@example.nhs.uk", PASSWORD).await;
        assert_eq!(
            admin.get("/organisation/users").await.headers()["location"],
            "/admin/users"
        );
        let csrf = admin.csrf().await;
        let res = admin
            .post(
                &format!("/admin/users/{}/deactivate", world.approver_b),
                &[("csrf_token", &csrf)],
            )
            .await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        assert!(!user_row(&app, "approver@b.nhs.uk").await.unwrap().3);
        let res = admin
            .post(
                &format!("/admin/users/{}/deactivate", world.admin),
                &[("csrf_token", &csrf)],
            )
            .await;
        assert_eq!(res.status(), StatusCode::CONFLICT);
        let res = admin
            .post("/admin/users/999999/deactivate", &[("csrf_token", &csrf)])
            .await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND);
    }
}

async fn request_reset(b: &Browser, email: &str) -> reqwest::Response {
    let form = b.text("/account/reset-password").await;
    b.post(
        "/account/reset-password",
        &[("email", email), ("csrf_token", &csrf_from(&form))],
    )
    .await
}

#[tokio::test]
async fn password_reset_answers_alike_for_everyone_and_mails_only_real_accounts() {
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        let world = World::seed(&app).await;
        let login = Browser::new(&app).text("/login").await;
        assert!(
            login.contains("href=\"/account/reset-password\""),
            "no link from sign-in"
        );

        let b = Browser::new(&app);
        let known = request_reset(&b, "Contributor@A.nhs.uk").await;
        let unknown = request_reset(&b, "nobody@a.nhs.uk").await;
        assert_eq!(known.status(), StatusCode::OK, "[{backend}]");
        assert_eq!(unknown.status(), StatusCode::OK);
        let (known, unknown) = (known.text().await.unwrap(), unknown.text().await.unwrap());
        assert!(known.contains("If an account exists for that address, we have sent a link"));
        assert_eq!(
            known.replace("contributor@a.nhs.uk", "X"),
            unknown.replace("nobody@a.nhs.uk", "X"),
            "[{backend}] the pages differ"
        );
        let mail = outbox(&app).await;
        assert_eq!(mail.len(), 1, "[{backend}]");
        assert_eq!(
            (mail[0].0.as_str(), mail[0].1.as_str()),
            ("password_reset", "contributor@a.nhs.uk")
        );

        // The link sets a new password and ends the old sessions.
        let signed_in = Browser::new(&app);
        signed_in.sign_in("contributor@a.nhs.uk", PASSWORD).await;
        let link = link_in(&mail[0].2);
        let form = b.text(&link).await;
        let res = b
            .post(
                "/account/set-password",
                &[
                    ("token", link.split("token=").nth(1).unwrap()),
                    ("password", "seven quiet owls at dusk"),
                    ("confirm", "seven quiet owls at dusk"),
                    ("csrf_token", &csrf_from(&form)),
                ],
            )
            .await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "[{backend}]");
        assert_eq!(
            signed_in.get("/dashboard").await.status(),
            StatusCode::SEE_OTHER
        );
        assert_eq!(
            sessions_of(&app, world.contributor_a).await,
            1,
            "only the new session"
        );

        // Throttled per address: the answer is unchanged but nothing more is sent.
        for _ in 0..4 {
            let res = request_reset(&b, "approver@b.nhs.uk").await;
            assert!(res.text().await.unwrap().contains("we have sent a link"));
        }
        let to_b = outbox(&app)
            .await
            .iter()
            .filter(|m| m.1 == "approver@b.nhs.uk")
            .count();
        assert_eq!(
            to_b,
            dma::web::password_reset::MAX_PER_ADDRESS as usize,
            "[{backend}]"
        );

        // A deactivated account gets nothing.
        app.db
            .write(move |conn| {
                use dma::db::schema::users as u;
                diesel::update(u::table.find(world.contributor_b))
                    .set(u::active.eq(false))
                    .execute(conn)?;
                Ok(())
            })
            .await
            .unwrap();
        let before = outbox(&app).await.len();
        request_reset(&b, "contributor@b.nhs.uk").await;
        assert_eq!(outbox(&app).await.len(), before);

        // A malformed address is a field error; a forged form is refused.
        let res = request_reset(&b, "not an address").await;
        assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert!(res.text().await.unwrap().contains("correct format"));
        let res = b
            .post(
                "/account/reset-password",
                &[("email", "approver@a.nhs.uk"), ("csrf_token", "x")],
            )
            .await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST);
        assert_eq!(outbox(&app).await.len(), before);
    }
}

/// A NUL character (which PostgreSQL cannot store in text) in a form field or a report filter
/// is the sender's mistake: a 400 page, nothing stored, on either backend; never a 500.
#[tokio::test]
async fn nul_characters_in_forms_and_filters_are_refused_and_store_nothing() {
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        World::seed(&app).await;
        let admin = Browser::new(&app);
        admin.sign_in("admin@example.nhs.uk", PASSWORD).await;
        let before = snapshot(&app).await;
        let res = invite_as_admin(
            &admin,
            &[
                ("email", "nul@a.nhs.uk"),
                ("name", "Nia\0Patel"),
                ("role", "org_approver"),
                ("organisation", "RA1"),
            ],
        )
        .await;
        let status = res.status();
        let html = res.text().await.unwrap();
        assert!(
            status == StatusCode::BAD_REQUEST || status == StatusCode::UNPROCESSABLE_ENTITY,
            "[{backend}] {status}: {html}"
        );
        assert_eq!(
            snapshot(&app).await,
            before,
            "[{backend}] something was stored"
        );
        for path in ["/reports?region=North%00West", "/admin/users?q=%00"] {
            let res = admin.get(path).await;
            assert!(
                !res.status().is_server_error(),
                "[{backend}] {path}: {}",
                res.status()
            );
        }
    }
}
