//! Accounts and sessions through the pages, as people use them.

use dma::services::auth::roles::Role;
use reqwest::StatusCode;

use crate::helpers::{backends, csrf_from, TestApp};

const PASSWORD: &str = "correct horse battery staple";

#[tokio::test]
async fn sign_in_and_out_with_a_revocable_session() {
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        app.create_user("admin@example.nhs.uk", Role::Administrator, None, PASSWORD)
            .await;

        let res = app.get("/dashboard").await;
        assert_eq!(
            res.status(),
            StatusCode::SEE_OTHER,
            "[{backend}] anonymous dashboard"
        );
        assert_eq!(res.headers()["location"], "/login?next=/dashboard");

        let res = app.sign_in("Admin@Example.nhs.uk", PASSWORD).await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "[{backend}]");
        assert_eq!(res.headers()["location"], "/dashboard");
        let cookie = res
            .cookies()
            .find(|c| c.name() == "dma_session")
            .expect("session cookie");
        assert!(cookie.http_only());
        let token = cookie.value().to_string();

        let page = app.get("/dashboard").await;
        assert_eq!(page.status(), 200);
        let html = page.text().await.unwrap();
        assert!(
            html.contains("Test Person") && html.contains("Administrator"),
            "{html}"
        );
        assert!(html.contains("/admin/questionnaires"));

        // Signing out without the form's token is refused and keeps the session.
        let res = app
            .client
            .post(app.url("/logout"))
            .form(&[("csrf_token", "forged")])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400);
        assert_eq!(app.get("/dashboard").await.status(), 200);

        let csrf = csrf_from(&html);
        let res = app
            .client
            .post(app.url("/logout"))
            .form(&[("csrf_token", csrf.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        // The old cookie value no longer opens anything: the session is gone server-side.
        let replay = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let res = replay
            .get(app.url("/dashboard"))
            .header("cookie", format!("dma_session={token}"))
            .send()
            .await
            .unwrap();
        assert_eq!(
            res.status(),
            StatusCode::SEE_OTHER,
            "[{backend}] revoked session still works"
        );
    }
}

#[tokio::test]
async fn unknown_email_and_wrong_password_look_the_same_and_attempts_are_throttled() {
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        app.create_user(
            "approver@example.nhs.uk",
            Role::Administrator,
            None,
            PASSWORD,
        )
        .await;

        let wrong = app
            .sign_in("approver@example.nhs.uk", "not the password")
            .await;
        let unknown = app
            .sign_in("nobody@example.nhs.uk", "not the password")
            .await;
        assert_eq!(wrong.status(), unknown.status(), "[{backend}]");
        assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
        let strip = |html: String| {
            html.replace("approver@example.nhs.uk", "")
                .replace("nobody@example.nhs.uk", "")
        };
        let (a, b) = (
            strip(wrong.text().await.unwrap()),
            strip(unknown.text().await.unwrap()),
        );
        assert!(a.contains("Enter a correct email address and password"));
        assert_eq!(
            a.replace(&csrf_from(&a), ""),
            b.replace(&csrf_from(&b), ""),
            "pages differ"
        );

        for _ in 0..4 {
            app.sign_in("approver@example.nhs.uk", "still wrong").await;
        }
        let res = app.sign_in("approver@example.nhs.uk", PASSWORD).await;
        assert_eq!(
            res.status(),
            StatusCode::TOO_MANY_REQUESTS,
            "[{backend}] not throttled"
        );
        assert!(res
            .text()
            .await
            .unwrap()
            .contains("too many sign-in attempts"));

        // A burst of parallel guesses at another account is held to the same limit: each
        // attempt is recorded before its password is checked.
        app.create_user("burst@example.nhs.uk", Role::Administrator, None, PASSWORD)
            .await;
        let csrf = csrf_from(&app.get("/login").await.text().await.unwrap());
        let guesses = (0..12).map(|i| {
            let guess = format!("guess number {i}");
            let request = app.client.post(app.url("/login")).form(&[
                ("email", "burst@example.nhs.uk"),
                ("password", guess.as_str()),
                ("csrf_token", csrf.as_str()),
            ]);
            async move { request.send().await.unwrap().status() }
        });
        let statuses = futures_util::future::join_all(guesses).await;
        let checked = statuses
            .iter()
            .filter(|s| **s == StatusCode::UNAUTHORIZED)
            .count();
        let throttled = statuses
            .iter()
            .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
            .count();
        assert_eq!((checked, throttled), (5, 7), "[{backend}] {statuses:?}");
    }
}

#[tokio::test]
async fn sign_in_needs_the_forms_csrf_token() {
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        app.create_user("a@example.nhs.uk", Role::Auditor, None, PASSWORD)
            .await;
        let res = app
            .client
            .post(app.url("/login"))
            .form(&[
                ("email", "a@example.nhs.uk"),
                ("password", PASSWORD),
                ("csrf_token", "x"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400, "[{backend}]");
        assert!(res.cookies().all(|c| c.name() != "dma_session"));
        assert!(res.text().await.unwrap().contains("This form has expired"));
    }
}

#[tokio::test]
async fn an_invitation_link_sets_a_password_once_and_signs_in() {
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        let email =
            dma::services::auth::users::EmailAddress::parse("new.approver@example.nhs.uk").unwrap();
        let token = app
            .db
            .write(move |conn| {
                let actor = dma::services::audit::Actor::system("test");
                let user = dma::services::auth::users::create(
                    conn,
                    &actor,
                    dma::services::auth::users::NewUser {
                        email: &email,
                        name: "Nia Patel",
                        role: Role::Administrator,
                        organisation_id: None,
                        group_organisation_id: None,
                        group_region: None,
                    },
                )?;
                dma::services::auth::users::issue_link_token(
                    conn,
                    user.id,
                    dma::services::auth::users::INVITATION,
                )
            })
            .await
            .unwrap();
        // Without a password the account cannot sign in.
        assert_eq!(
            app.sign_in("new.approver@example.nhs.uk", "")
                .await
                .status(),
            422
        );

        let link = format!("/account/set-password?token={token}");
        let form = app.get(&link).await;
        assert_eq!(form.status(), 200, "[{backend}]");
        let html = form.text().await.unwrap();
        assert!(html.contains("new.approver@example.nhs.uk"));
        let csrf = csrf_from(&html);
        let post = |password: &'static str, confirm: &'static str| {
            app.client
                .post(app.url("/account/set-password"))
                .form(&[
                    ("token", token.as_str()),
                    ("password", password),
                    ("confirm", confirm),
                    ("csrf_token", csrf.as_str()),
                ])
                .send()
        };
        let res = post("password123", "password123").await.unwrap();
        assert_eq!(res.status(), 422);
        assert!(res.text().await.unwrap().contains("too easy to guess"));
        let res = post("nine ripe plums in a bowl", "nine ripe plums in a bowel")
            .await
            .unwrap();
        assert_eq!(res.status(), 422);
        assert!(res.text().await.unwrap().contains("do not match"));
        let res = post("nine ripe plums in a bowl", "nine ripe plums in a bowl")
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "[{backend}]");
        assert_eq!(
            app.get("/dashboard").await.status(),
            200,
            "not signed in after setting password"
        );

        assert_eq!(
            app.get(&link).await.status(),
            StatusCode::GONE,
            "[{backend}] link reusable"
        );
        assert_eq!(
            post("another good passphrase", "another good passphrase")
                .await
                .unwrap()
                .status(),
            StatusCode::GONE
        );
        let csrf = app.session_csrf().await;
        app.client
            .post(app.url("/logout"))
            .form(&[("csrf_token", csrf.as_str())])
            .send()
            .await
            .unwrap();
        let res = app
            .sign_in("new.approver@example.nhs.uk", "nine ripe plums in a bowl")
            .await;
        assert_eq!(
            res.status(),
            StatusCode::SEE_OTHER,
            "[{backend}] new password refused"
        );
    }
}

#[tokio::test]
async fn idle_sessions_expire() {
    use diesel::prelude::*;
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        app.create_user("a@example.nhs.uk", Role::Auditor, None, PASSWORD)
            .await;
        app.sign_in("a@example.nhs.uk", PASSWORD).await;
        assert_eq!(app.get("/dashboard").await.status(), 200);
        app.db
            .write(|conn| {
                use dma::db::schema::sessions;
                let old = chrono::Utc::now().naive_utc() - chrono::Duration::hours(2);
                diesel::update(sessions::table)
                    .set(sessions::last_seen_at.eq(old))
                    .execute(conn)?;
                Ok(())
            })
            .await
            .unwrap();
        assert_eq!(
            app.get("/dashboard").await.status(),
            StatusCode::SEE_OTHER,
            "[{backend}] idle session alive"
        );
    }
}
