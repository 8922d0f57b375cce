//! Personal API tokens: shown once, stored as a digest, usable as `Authorization: Bearer`
//! until revoked or the account is deactivated.

use diesel::prelude::*;
use dma::services::auth::roles::Role;
use reqwest::StatusCode;

use crate::browser::{Browser, PASSWORD};
use crate::helpers::{backends, csrf_from, TestApp};

fn token_in(html: &str) -> String {
    let marker = "data-token>";
    let start = html.find(marker).expect("no token on the page") + marker.len();
    html[start..].chars().take_while(|c| *c != '<').collect()
}

async fn me(app: &TestApp, token: &str) -> reqwest::Response {
    app.client
        .get(app.url("/api/v1/me"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_token_is_shown_once_works_for_the_api_and_stops_when_revoked() {
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        let id = app
            .create_user("analyst@example.nhs.uk", Role::Auditor, None, PASSWORD)
            .await;
        app.create_user("other@example.nhs.uk", Role::Auditor, None, PASSWORD)
            .await;
        let b = Browser::new(&app);
        b.sign_in("analyst@example.nhs.uk", PASSWORD).await;
        let page = b.text("/account/tokens").await;
        assert!(page.contains("You have no API tokens"), "[{backend}]");

        // A name is required.
        let csrf = csrf_from(&page);
        let res = b
            .post("/account/tokens", &[("csrf_token", &csrf), ("name", " ")])
            .await;
        assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert!(res
            .text()
            .await
            .unwrap()
            .contains("Enter a name for the token"));

        let res = b
            .post(
                "/account/tokens",
                &[
                    ("csrf_token", &csrf),
                    ("name", "Regional dashboard"),
                    ("password", PASSWORD),
                ],
            )
            .await;
        assert_eq!(res.status(), StatusCode::OK, "[{backend}]");
        assert_eq!(res.headers()["cache-control"], "no-store");
        let token = token_in(&res.text().await.unwrap());
        assert!(token.starts_with("dma_") && token.len() > 60, "{token}");

        // Stored only as its digest, and never shown again.
        let stored: (String, Option<chrono::NaiveDateTime>) = app
            .db
            .read(|conn| {
                use dma::db::schema::api_tokens as t;
                Ok(t::table
                    .select((t::token_hash, t::last_used_at))
                    .first(conn)?)
            })
            .await
            .unwrap();
        assert_eq!(stored.0, dma::crypto::digest(&token));
        assert_eq!(stored.1, None);
        let list = b.text("/account/tokens").await;
        assert!(list.contains("Regional dashboard") && list.contains("Never"));
        assert!(
            !list.contains(&token),
            "[{backend}] the token is shown again"
        );

        let res = me(&app, &token).await;
        assert_eq!(res.status(), StatusCode::OK, "[{backend}]");
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(
            body,
            serde_json::json!({"id": id, "email": "analyst@example.nhs.uk", "name": "Test Person", "role": "auditor", "organisation_id": null})
        );
        let last_used: Option<chrono::NaiveDateTime> = app
            .db
            .read(|conn| {
                use dma::db::schema::api_tokens as t;
                Ok(t::table.select(t::last_used_at).first(conn)?)
            })
            .await
            .unwrap();
        assert!(last_used.is_some(), "[{backend}] last use not recorded");
        assert!(!b.text("/account/tokens").await.contains("Never"));

        // Wrong, malformed and missing credentials: 401 problem documents.
        for header in [
            Some("Bearer dma_0000".to_string()),
            Some(format!("Basic {token}")),
            Some("Bearer".to_string()),
            None,
        ] {
            let mut req = app.client.get(app.url("/api/v1/me"));
            if let Some(h) = &header {
                req = req.header("authorization", h);
            }
            let res = req.send().await.unwrap();
            assert_eq!(
                res.status(),
                StatusCode::UNAUTHORIZED,
                "[{backend}] {header:?}"
            );
            assert_eq!(res.headers()["content-type"], "application/problem+json");
        }

        // Someone else cannot revoke it (it does not exist for them).
        let token_id: i64 = app
            .db
            .read(|conn| {
                use dma::db::schema::api_tokens as t;
                Ok(t::table.select(t::id).first(conn)?)
            })
            .await
            .unwrap();
        let other = Browser::new(&app);
        other.sign_in("other@example.nhs.uk", PASSWORD).await;
        let res = other
            .post(
                &format!("/account/tokens/{token_id}/revoke"),
                &[("csrf_token", &other.csrf().await)],
            )
            .await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND);
        assert_eq!(me(&app, &token).await.status(), StatusCode::OK);

        // Its owner can.
        let res = b
            .post(
                &format!("/account/tokens/{token_id}/revoke"),
                &[("csrf_token", &csrf)],
            )
            .await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "[{backend}]");
        assert_eq!(me(&app, &token).await.status(), StatusCode::UNAUTHORIZED);
        let list = b.text("/account/tokens?done=revoked").await;
        assert!(list.contains("Revoked") && list.contains("The token was revoked"));
        let logged: Vec<String> = app
            .db
            .read(|conn| {
                use dma::db::schema::audit_log as a;
                Ok(a::table
                    .filter(a::entity_type.eq("api_token"))
                    .order(a::id)
                    .select(a::action)
                    .load(conn)?)
            })
            .await
            .unwrap();
        assert_eq!(logged, ["api_token.create", "api_token.revoke"]);
    }
}

#[tokio::test]
async fn a_deactivated_accounts_tokens_stop_working() {
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        let id = app
            .create_user("script@example.nhs.uk", Role::Auditor, None, PASSWORD)
            .await;
        let token = app
            .db
            .write(move |conn| {
                let actor = dma::services::audit::Actor::system("test");
                Ok(
                    dma::services::auth::api_token::create(conn, &actor, id, "nightly export", 30)?
                        .1,
                )
            })
            .await
            .unwrap();
        assert_eq!(
            me(&app, &token).await.status(),
            StatusCode::OK,
            "[{backend}]"
        );
        app.db
            .write(move |conn| {
                use dma::db::schema::users as u;
                diesel::update(u::table.find(id))
                    .set(u::active.eq(false))
                    .execute(conn)?;
                Ok(())
            })
            .await
            .unwrap();
        assert_eq!(
            me(&app, &token).await.status(),
            StatusCode::UNAUTHORIZED,
            "[{backend}]"
        );
    }
}
