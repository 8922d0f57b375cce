//! The second factor (TOTP) end to end, on both backends: setting it up from the page's QR
//! key, signing in with it, codes that are wrong, replayed or used up, recovery codes,
//! enforcement by role, the throttle, an administrator's reset; re-authentication before
//! sensitive actions; and parallel uses of one code or one recovery code on PostgreSQL.

use diesel::prelude::*;
use dma::services::auth::roles::Role;
use dma::services::auth::second_factor::code_at;
use reqwest::StatusCode;

use crate::browser::{Browser, World, PASSWORD};
use crate::helpers::{backends, csrf_from, TestApp};

fn between<'a>(html: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = html.find(start)? + start.len();
    let len = html[from..].find(end)?;
    Some(&html[from..from + len])
}

fn hidden(html: &str, name: &str) -> String {
    between(html, &format!("name=\"{name}\" value=\""), "\"")
        .unwrap_or_else(|| panic!("no {name} field in {html}"))
        .to_string()
}

fn now() -> u64 {
    dma::services::auth::second_factor::unix_now()
}

fn location(res: &reqwest::Response) -> String {
    res.headers()
        .get("location")
        .map(|l| l.to_str().unwrap().to_string())
        .unwrap_or_default()
}

/// Sets up a second factor from the page as the browser's person: reads the key the page
/// shows (as a person typing it into an app would), answers with its current code. Returns
/// the secret and the recovery codes shown.
async fn enrol(b: &Browser, next_page: &str) -> (Vec<u8>, Vec<String>) {
    let page = b.text(next_page).await;
    assert!(page.contains("<svg"), "no QR code: {page}");
    assert!(page.contains("QR code to scan"), "the QR code has no name");
    let key: String = between(&page, "data-secret aria-describedby=\"secret-hint\">", "<")
        .expect("the key in letters")
        .split_whitespace()
        .collect();
    let secret = totp_rs::Secret::Encoded(key).to_bytes().unwrap();
    let fields = [
        ("csrf_token", csrf_from(&page)),
        ("sealed_secret", hidden(&page, "sealed_secret")),
        ("next", hidden(&page, "next")),
    ];
    // A wrong code first: refused, nothing stored.
    let mut wrong = fields.to_vec();
    let right = code_at(&secret, now()).unwrap();
    let other = if right == "000000" {
        "111111"
    } else {
        "000000"
    };
    wrong.push(("code", other.to_string()));
    let borrowed: Vec<(&str, &str)> = wrong.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let res = b.post("/account/second-factor", &borrowed).await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let refused = res.text().await.unwrap();
    assert!(refused.contains("The code is not correct"));
    // The refused page keeps the key the person has already scanned: a new one would make
    // every code from their app wrong. The right code goes in through the refused page.
    let shown: String = between(
        &refused,
        "data-secret aria-describedby=\"secret-hint\">",
        "<",
    )
    .expect("the key in letters again")
    .split_whitespace()
    .collect();
    assert_eq!(totp_rs::Secret::Encoded(shown).to_bytes().unwrap(), secret);
    let fields = [
        ("csrf_token", csrf_from(&refused)),
        ("sealed_secret", hidden(&refused, "sealed_secret")),
        ("next", hidden(&refused, "next")),
    ];

    let mut ok = fields.to_vec();
    ok.push(("code", right));
    let borrowed: Vec<(&str, &str)> = ok.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let res = b.post("/account/second-factor", &borrowed).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let html = res.text().await.unwrap();
    let codes: Vec<String> = html
        .split("data-recovery-code>")
        .skip(1)
        .map(|s| s.split('<').next().unwrap().to_string())
        .collect();
    assert_eq!(codes.len(), 10, "{html}");
    (secret, codes)
}

/// Posts the sign-in form with the password, going on to `next`.
async fn post_password(b: &Browser, email: &str, next: &str) -> reqwest::Response {
    let form = b.text("/login").await;
    b.post(
        "/login",
        &[
            ("email", email),
            ("password", PASSWORD),
            ("csrf_token", &csrf_from(&form)),
            ("next", next),
        ],
    )
    .await
}

/// Signs in with the password and expects the second-factor step; returns its CSRF token.
async fn password_step(b: &Browser, email: &str) -> String {
    let res = post_password(b, email, "/dashboard").await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert!(
        location(&res).starts_with("/login/second-factor?next="),
        "{}",
        location(&res)
    );
    let page = b.text(&location(&res)).await;
    assert!(page.contains("Enter your security code"));
    csrf_from(&page)
}

async fn give_code(b: &Browser, csrf: &str, code: &str) -> reqwest::Response {
    b.post(
        "/login/second-factor",
        &[("csrf_token", csrf), ("code", code), ("next", "/dashboard")],
    )
    .await
}

pub async fn audit_count(app: &TestApp, action: &'static str) -> i64 {
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
async fn a_second_factor_is_set_up_used_once_per_code_recovered_and_reset() {
    for backend in backends() {
        let app =
            TestApp::spawn_with(backend, &[("DMA_SECOND_FACTOR_ROLES", "administrator")]).await;
        let ann = app
            .create_user("ann@example.nhs.uk", Role::Auditor, None, PASSWORD)
            .await;
        app.create_user("boss@example.nhs.uk", Role::Administrator, None, PASSWORD)
            .await;

        // Optional for an auditor here: the password alone signs in; then she sets one up.
        let b = Browser::new(&app);
        b.sign_in("ann@example.nhs.uk", PASSWORD).await;
        assert_eq!(b.get("/dashboard").await.status(), StatusCode::OK);
        let (secret, recovery) = enrol(&b, "/account/second-factor").await;
        let stored: String = app
            .db
            .read(move |conn| {
                use dma::db::schema::second_factors as f;
                Ok(f::table.find(ann).select(f::secret_sealed).first(conn)?)
            })
            .await
            .unwrap();
        assert!(stored.starts_with("sealed:v1:"), "[{backend}] {stored}");
        assert!(!stored.contains(&hex::encode(&secret)));
        let hashes: Vec<String> = app
            .db
            .read(move |conn| {
                use dma::db::schema::recovery_codes as r;
                Ok(r::table
                    .filter(r::user_id.eq(ann))
                    .select(r::code_hash)
                    .load(conn)?)
            })
            .await
            .unwrap();
        assert_eq!(hashes.len(), 10);
        assert!(recovery
            .iter()
            .all(|c| !hashes.iter().any(|h| h.contains(&c.replace('-', "")))));
        assert!(b
            .text("/account/second-factor")
            .await
            .contains("10 unused recovery codes"));
        assert_eq!(audit_count(&app, "user.second_factor_enrol").await, 1);

        // Signing in now asks for a code; the password alone is not signed in.
        let b = Browser::new(&app);
        let csrf = password_step(&b, "ann@example.nhs.uk").await;
        let res = b.get("/dashboard").await;
        assert_eq!(
            res.status(),
            StatusCode::SEE_OTHER,
            "[{backend}] signed in without the code"
        );
        // The code used to set it up cannot be used again (same time step), nor a wrong one.
        let used = code_at(&secret, now()).unwrap();
        let res = give_code(&b, &csrf, &used).await;
        assert_eq!(
            res.status(),
            StatusCode::UNAUTHORIZED,
            "[{backend}] a replayed code"
        );
        assert!(res.text().await.unwrap().contains("has been used already"));
        let res = give_code(&b, &csrf, "12345").await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        // The next step's code (clocks drift by one step either way) signs in.
        let next = code_at(&secret, now() + 30).unwrap();
        let res = give_code(&b, &csrf, &next).await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "[{backend}]");
        assert_eq!(location(&res), "/dashboard");
        assert_eq!(b.get("/dashboard").await.status(), StatusCode::OK);
        // ... once: another sign-in with the same code is refused.
        let b2 = Browser::new(&app);
        let csrf2 = password_step(&b2, "ann@example.nhs.uk").await;
        assert_eq!(
            give_code(&b2, &csrf2, &next).await.status(),
            StatusCode::UNAUTHORIZED
        );

        // A recovery code works once, in any case and spacing.
        let res = give_code(&b2, &csrf2, &recovery[0].to_uppercase()).await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "[{backend}]");
        let b3 = Browser::new(&app);
        let csrf3 = password_step(&b3, "ann@example.nhs.uk").await;
        assert_eq!(
            give_code(&b3, &csrf3, &recovery[0]).await.status(),
            StatusCode::UNAUTHORIZED,
            "[{backend}] a recovery code worked twice"
        );
        assert_eq!(audit_count(&app, "session.recovery_code_used").await, 1);
        assert!(audit_count(&app, "session.second_factor_failed").await >= 4);

        // An administrator must set one up before doing anything.
        let admin = Browser::new(&app);
        let res = post_password(&admin, "boss@example.nhs.uk", "/admin/users").await;
        assert_eq!(location(&res), "/account/second-factor?next=/admin/users");
        assert_eq!(
            admin.get("/admin/users").await.status(),
            StatusCode::SEE_OTHER,
            "[{backend}] an administrator got in without a second factor"
        );
        let page = admin.text("/account/second-factor?next=/admin/users").await;
        assert!(page.contains("Set it up now to finish signing in"));
        enrol(&admin, "/account/second-factor?next=/admin/users").await;
        let list = admin.text("/admin/users").await;
        assert!(list.contains("Second factor on"), "[{backend}]");

        // The administrator resets Ann's (a lost phone): she signs in with her password alone.
        let csrf = csrf_from(&list);
        let res = admin
            .post(
                &format!("/admin/users/{ann}/second-factor/reset"),
                &[("csrf_token", &csrf)],
            )
            .await;
        assert_eq!(location(&res), "/admin/users?done=second-factor-reset");
        assert_eq!(audit_count(&app, "user.second_factor_reset").await, 1);
        // Whoever has the lost phone may be signed in: the reset ended Ann's sessions.
        assert_eq!(
            b2.get("/dashboard").await.status(),
            StatusCode::SEE_OTHER,
            "[{backend}] still signed in after the reset"
        );
        assert_eq!(crate::browser::sessions_of(&app, ann).await, 0);
        assert_eq!(audit_count(&app, "user.sessions_ended").await, 1);
        // (Ann's five failed codes above would hold her password at the throttle for 15
        // minutes; that is the throttle test's business, so they are forgotten here.)
        app.db
            .write(|conn| {
                diesel::delete(dma::db::schema::login_attempts::table).execute(conn)?;
                Ok(())
            })
            .await
            .unwrap();
        let b4 = Browser::new(&app);
        b4.sign_in("ann@example.nhs.uk", PASSWORD).await;
        assert_eq!(b4.get("/dashboard").await.status(), StatusCode::OK);

        // The administrator cannot turn their own off: their role requires it.
        let res = admin
            .post("/account/second-factor/remove", &[("csrf_token", &csrf)])
            .await;
        assert_eq!(res.status(), StatusCode::CONFLICT, "[{backend}]");
    }
}

/// The key in letters on a set-up page.
fn shown_key(page: &str) -> String {
    between(page, "data-secret aria-describedby=\"secret-hint\">", "<")
        .expect("the key in letters")
        .split_whitespace()
        .collect()
}

#[tokio::test]
async fn reloading_the_set_up_page_keeps_the_same_key() {
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        app.create_user("ann@example.nhs.uk", Role::Auditor, None, PASSWORD)
            .await;
        let b = Browser::new(&app);
        b.sign_in("ann@example.nhs.uk", PASSWORD).await;
        let first = shown_key(&b.text("/account/second-factor").await);
        let again = shown_key(&b.text("/account/second-factor").await);
        assert_eq!(first, again, "[{backend}] a reload showed a new key");
        // Another browser (another session) gets a key of its own.
        let other = Browser::new(&app);
        other.sign_in("ann@example.nhs.uk", PASSWORD).await;
        assert_ne!(
            shown_key(&other.text("/account/second-factor").await),
            first
        );
        // Set up with the kept key: it is the one stored; then the page offers none.
        let (secret, _) = enrol(&b, "/account/second-factor").await;
        assert_eq!(
            secret,
            totp_rs::Secret::Encoded(first).to_bytes().unwrap(),
            "[{backend}]"
        );
    }
}

#[tokio::test]
async fn the_code_step_is_throttled_like_the_password() {
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        app.create_user("cat@example.nhs.uk", Role::Auditor, None, PASSWORD)
            .await;
        let b = Browser::new(&app);
        b.sign_in("cat@example.nhs.uk", PASSWORD).await;
        let (secret, _) = enrol(&b, "/account/second-factor").await;
        let b = Browser::new(&app);
        let csrf = password_step(&b, "cat@example.nhs.uk").await;
        // One wrong code at enrolment already counted; four more make five failures.
        for _ in 0..4 {
            assert_eq!(
                give_code(&b, &csrf, "000001").await.status(),
                StatusCode::UNAUTHORIZED
            );
        }
        let right = code_at(&secret, now() + 30).unwrap();
        let res = give_code(&b, &csrf, &right).await;
        assert_eq!(
            res.status(),
            StatusCode::TOO_MANY_REQUESTS,
            "[{backend}] the sixth try was not throttled"
        );
        // And the password too is now refused from here.
        let res = post_password(&Browser::new(&app), "cat@example.nhs.uk", "/dashboard").await;
        assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS, "[{backend}]");
    }
}

/// Puts the session's last sign-in `minutes` into the past.
pub async fn age_sessions(app: &TestApp, minutes: i64) {
    app.db
        .write(move |conn| {
            use dma::db::schema::sessions as s;
            diesel::update(s::table)
                .set(s::authenticated_at.eq(Some(
                    chrono::Utc::now().naive_utc() - chrono::Duration::minutes(minutes),
                )))
                .execute(conn)?;
            Ok(())
        })
        .await
        .unwrap();
}

#[tokio::test]
async fn sensitive_actions_ask_again_after_a_few_minutes() {
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        let world = World::seed(&app).await;
        let b = Browser::new(&app);
        b.sign_in("admin@example.nhs.uk", PASSWORD).await;
        let csrf = b.csrf().await;
        age_sessions(&app, 11).await;

        // Each sensitive action sends the person to confirm, and does nothing.
        let before = crate::browser::snapshot(&app).await;
        let a = world.assessment_a;
        let (qk, qv) = (&world.questionnaire_key, &world.questionnaire_version);
        // (path, fields, the page to come back to)
        type Attempt<'a> = (String, Vec<(&'a str, &'a str)>, String);
        let attempts: Vec<Attempt<'_>> = vec![
            (
                "/account/tokens".into(),
                vec![("name", "script")],
                "/account/tokens".into(),
            ),
            (
                format!("/assessments/{a}/reopen"),
                vec![("reason", "a mistake")],
                format!("/assessments/{a}"),
            ),
            (
                format!("/admin/questionnaires/{qk}/{qv}/publish"),
                vec![("confirm", "yes")],
                format!("/admin/questionnaires/{qk}/{qv}/publish"),
            ),
            (
                "/admin/users/invite".into(),
                vec![
                    ("email", "new@example.nhs.uk"),
                    ("name", "New Person"),
                    ("role", "administrator"),
                ],
                "/admin/users/invite".into(),
            ),
            (
                format!("/admin/users/{}/second-factor/reset", world.contributor_a),
                vec![],
                "/admin/users".into(),
            ),
            (
                format!("/admin/users/{}/role", world.contributor_a),
                vec![("seen_role", "org_contributor"), ("role", "auditor")],
                format!("/admin/users/{}", world.contributor_a),
            ),
            (
                "/admin/cycles/1/close".into(),
                vec![],
                "/admin/cycles/1/close".into(),
            ),
            (
                "/admin/users/import/confirm".into(),
                vec![(
                    "file",
                    "email,name,role\nnew@example.nhs.uk,New Person,auditor\n",
                )],
                "/admin/users/import".into(),
            ),
        ];
        for (path, fields, back) in &attempts {
            let mut fields = fields.clone();
            fields.push(("csrf_token", &csrf));
            let res = b.post(path, &fields).await;
            assert_eq!(res.status(), StatusCode::SEE_OTHER, "[{backend}] {path}");
            assert_eq!(
                location(&res),
                format!(
                    "/account/confirm?next={}",
                    dma::web::errors::urlencode(back)
                ),
                "[{backend}] {path}"
            );
        }
        assert_eq!(crate::browser::snapshot(&app).await, before, "[{backend}]");

        // Confirming: a wrong password is refused (and counted), the right one returns.
        let page = b.text("/account/confirm?next=/account/tokens").await;
        assert!(page.contains("Confirm it is you") && !page.contains("name=\"code\""));
        let res = b
            .post(
                "/account/confirm",
                &[
                    ("csrf_token", &csrf),
                    ("password", "not my password"),
                    ("next", "/account/tokens"),
                ],
            )
            .await;
        assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert!(res
            .text()
            .await
            .unwrap()
            .contains("Your password is not correct"));
        let res = b
            .post(
                "/account/confirm",
                &[
                    ("csrf_token", &csrf),
                    ("password", PASSWORD),
                    ("next", "/account/tokens"),
                ],
            )
            .await;
        assert_eq!(location(&res), "/account/tokens", "[{backend}]");
        let res = b
            .post(
                "/account/tokens",
                &[("csrf_token", &csrf), ("name", "script")],
            )
            .await;
        let status = res.status();
        let html = res.text().await.unwrap();
        assert_eq!(status, StatusCode::OK, "[{backend}] {html}");
        assert!(html.contains("data-token>"));

        // With a second factor, confirming needs its code as well as the password.
        let (secret, _) = enrol(&b, "/account/second-factor").await;
        age_sessions(&app, 11).await;
        let page = b.text("/account/confirm?next=/account/tokens").await;
        assert!(page.contains("name=\"code\""));
        let confirm = |code: String| {
            let b = &b;
            let csrf = csrf.clone();
            async move {
                b.post(
                    "/account/confirm",
                    &[
                        ("csrf_token", csrf.as_str()),
                        ("password", PASSWORD),
                        ("code", code.as_str()),
                        ("next", "/account/tokens"),
                    ],
                )
                .await
            }
        };
        assert_eq!(
            confirm(String::new()).await.status(),
            StatusCode::UNPROCESSABLE_ENTITY
        );
        assert_eq!(
            confirm("000002".into()).await.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "[{backend}]"
        );
        let res = confirm(code_at(&secret, now() + 30).unwrap()).await;
        assert_eq!(location(&res), "/account/tokens", "[{backend}]");
    }
}

/// Many sign-ins race with one code, and with one recovery code: each works once.
#[tokio::test]
async fn one_code_and_one_recovery_code_each_sign_in_once_under_parallel_use() {
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        app.create_user("dan@example.nhs.uk", Role::Auditor, None, PASSWORD)
            .await;
        let b = Browser::new(&app);
        b.sign_in("dan@example.nhs.uk", PASSWORD).await;
        let (secret, recovery) = enrol(&b, "/account/second-factor").await;
        for (round, code) in [code_at(&secret, now() + 30).unwrap(), recovery[1].clone()]
            .into_iter()
            .enumerate()
        {
            let mut browsers = Vec::new();
            for _ in 0..4 {
                let b = Browser::new(&app);
                let csrf = password_step(&b, "dan@example.nhs.uk").await;
                browsers.push((b, csrf));
            }
            let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(browsers.len()));
            let results = futures_util::future::join_all(browsers.iter().map(|(b, csrf)| {
                let barrier = barrier.clone();
                let code = code.clone();
                async move {
                    barrier.wait().await;
                    give_code(b, csrf, &code).await.status()
                }
            }))
            .await;
            let signed_in = results
                .iter()
                .filter(|s| **s == StatusCode::SEE_OTHER)
                .count();
            assert_eq!(signed_in, 1, "[{backend}] round {round}: {results:?}");
            // Only failed codes were counted: 3 per round, below the limit of 5 after enrolment's 1.
            if round == 0 {
                app.db
                    .write(|conn| {
                        diesel::delete(dma::db::schema::login_attempts::table).execute(conn)?;
                        Ok(())
                    })
                    .await
                    .unwrap();
            }
        }
    }
}
