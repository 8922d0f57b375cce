//! The promises docs/security.md makes, each shown against a real server on every backend:
//! where sign-in may send people, what may be cached, how cookies travel, how links and
//! tokens end, how guessing is throttled, and what the outside world may store.

use diesel::prelude::*;
use dma::services::auth::roles::Role;
use reqwest::StatusCode;

use crate::browser::{Browser, PASSWORD};
use crate::helpers::{backends, csrf_from, TestApp};

/// A signed-in person's `next` is parsed as a path on this site: anything a browser would
/// rewrite into another site (a tab or newline dropped, a backslash read as `/`) goes to the
/// dashboard instead, and CR/LF is refused rather than breaking the response.
#[tokio::test]
async fn sign_in_only_ever_redirects_to_this_site() {
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        app.create_user("ann@example.nhs.uk", Role::Administrator, None, PASSWORD)
            .await;
        let res = app.sign_in("ann@example.nhs.uk", PASSWORD).await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "[{backend}]");
        for (next, expected) in [
            ("%2F%09%2Fevil.example%2F", "/dashboard"),
            ("%2F%0D%0ASet-Cookie:%20x=1", "/dashboard"),
            ("%2F%0A%2Fevil.example", "/dashboard"),
            ("%2F%5Cevil.example", "/dashboard"),
            ("//evil.example", "/dashboard"),
            ("https://evil.example/", "/dashboard"),
            ("%20/admin", "/dashboard"),
            ("/admin/users?q=a", "/admin/users?q=a"),
        ] {
            let res = app.get(&format!("/login?next={next}")).await;
            assert_eq!(res.status(), StatusCode::SEE_OTHER, "[{backend}] {next}");
            assert_eq!(res.headers()["location"], expected, "[{backend}] {next}");
        }
    }
}

/// Signed-in pages, API answers and error pages are never kept by a cache; assets still are.
#[tokio::test]
async fn authenticated_responses_are_not_cached() {
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        app.create_user("ann@example.nhs.uk", Role::Administrator, None, PASSWORD)
            .await;
        app.sign_in("ann@example.nhs.uk", PASSWORD).await;
        for path in [
            "/dashboard",
            "/admin/users",
            "/admin/audit",
            "/reports",
            "/admin/cycles",
            "/no-such-page",
        ] {
            let res = app.get(path).await;
            assert_eq!(
                res.headers()
                    .get("cache-control")
                    .map(|v| v.to_str().unwrap()),
                Some("no-store"),
                "[{backend}] {path}"
            );
        }
        let api = app
            .client
            .get(app.url("/api/v1/me"))
            .bearer_auth("dma_nonsense")
            .send()
            .await
            .unwrap();
        assert_eq!(api.headers()["cache-control"], "no-store", "[{backend}]");
        let home = app.get("/").await.text().await.unwrap();
        let css = home
            .split('"')
            .find(|s| s.starts_with("/assets/") && s.contains(".css"))
            .expect("stylesheet link")
            .to_string();
        let asset = app.get(&css).await;
        assert!(
            asset.headers()["cache-control"]
                .to_str()
                .unwrap()
                .starts_with("public"),
            "[{backend}] {css}"
        );
    }
}

/// Under an https base URL the signed-out CSRF cookie is `Secure`, like the session cookie.
#[tokio::test]
async fn the_csrf_cookie_is_secure_under_https() {
    for backend in backends() {
        let app = TestApp::spawn_with(backend, &[("DMA_BASE_URL", "https://dma.example")]).await;
        let res = app.get("/login").await;
        let cookie = res
            .cookies()
            .find(|c| c.name() == "dma_csrf")
            .expect("csrf cookie");
        assert!(cookie.secure(), "[{backend}] dma_csrf without Secure");
        assert!(cookie.http_only());
    }
}

/// Issue a link token for `user_id` straight through the library.
async fn link_token(app: &TestApp, user_id: i64, purpose: &'static str) -> String {
    app.db
        .write(move |conn| dma::services::auth::users::issue_link_token(conn, user_id, purpose))
        .await
        .unwrap()
}

/// Choose a password through a set-password link, signed out, in a fresh browser.
async fn set_password_with(app: &TestApp, token: &str, password: &str) -> reqwest::Response {
    let b = Browser::new(app);
    let page = b.get(&format!("/account/set-password?token={token}")).await;
    if page.status() != StatusCode::OK {
        return page;
    }
    let csrf = csrf_from(&page.text().await.unwrap());
    b.post(
        "/account/set-password",
        &[
            ("token", token),
            ("password", password),
            ("confirm", password),
            ("csrf_token", &csrf),
        ],
    )
    .await
}

/// A password chosen through one link ends every other reset and invitation link.
#[tokio::test]
async fn a_password_change_ends_every_outstanding_link() {
    use dma::services::auth::users::{INVITATION, PASSWORD_RESET};
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        let id = app
            .create_user("ann@example.nhs.uk", Role::Auditor, None, PASSWORD)
            .await;
        let older = link_token(&app, id, PASSWORD_RESET).await;
        let invitation = link_token(&app, id, INVITATION).await;
        let newer = link_token(&app, id, PASSWORD_RESET).await;
        let res = set_password_with(&app, &newer, "plum tractor velvet orbit").await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "[{backend}]");
        for token in [&older, &invitation, &newer] {
            let res = app
                .get(&format!("/account/set-password?token={token}"))
                .await;
            assert_eq!(
                res.status(),
                StatusCode::GONE,
                "[{backend}] a link still works"
            );
            let res = set_password_with(&app, token, "another fine passphrase").await;
            assert_eq!(res.status(), StatusCode::GONE, "[{backend}]");
        }
    }
}

/// Making a token needs a recent sign-in (or a confirmation) and a lifetime of at most 90
/// days; a token stops working when it expires and when the owner's password changes.
#[tokio::test]
async fn api_tokens_need_a_recent_sign_in_expire_and_end_with_a_password_change() {
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        let id = app
            .create_user("ann@example.nhs.uk", Role::Auditor, None, PASSWORD)
            .await;
        let b = Browser::new(&app);
        b.sign_in("ann@example.nhs.uk", PASSWORD).await;
        let csrf = csrf_from(&b.text("/account/tokens").await);
        let make = |password: &'static str, days: &'static str| {
            let b = &b;
            let csrf = csrf.clone();
            async move {
                b.post(
                    "/account/tokens",
                    &[
                        ("csrf_token", csrf.as_str()),
                        ("name", "script"),
                        ("expires_days", days),
                        ("password", password),
                    ],
                )
                .await
            }
        };
        // A sign-in older than DMA_REAUTH_MINUTES: sent to confirm, no token made.
        app.db
            .write(|conn| {
                use dma::db::schema::sessions as s;
                diesel::update(s::table)
                    .set(s::authenticated_at.eq(Some(
                        chrono::Utc::now().naive_utc() - chrono::Duration::minutes(30),
                    )))
                    .execute(conn)?;
                Ok(())
            })
            .await
            .unwrap();
        let res = make(PASSWORD, "30").await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "[{backend}]");
        assert_eq!(
            res.headers()["location"],
            "/account/confirm?next=/account/tokens"
        );
        let res = b
            .post(
                "/account/confirm",
                &[
                    ("csrf_token", csrf.as_str()),
                    ("password", PASSWORD),
                    ("next", "/account/tokens"),
                ],
            )
            .await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "[{backend}]");
        let res = make(PASSWORD, "365").await;
        assert_eq!(
            res.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "[{backend}]"
        );
        assert!(res.text().await.unwrap().contains("between 1 and 90 days"));

        let res = make(PASSWORD, "7").await;
        assert_eq!(res.status(), StatusCode::OK, "[{backend}]");
        let html = res.text().await.unwrap();
        let token = token_in(&html);
        assert_eq!(me(&app, &token).await.status(), StatusCode::OK);
        let expires: Option<chrono::NaiveDateTime> = app
            .db
            .read(|conn| {
                use dma::db::schema::api_tokens as t;
                Ok(t::table.select(t::expires_at).first(conn)?)
            })
            .await
            .unwrap();
        let days = (expires.unwrap() - chrono::Utc::now().naive_utc()).num_hours();
        assert!(
            (7 * 24 - 1..=7 * 24).contains(&days),
            "[{backend}] {days} hours"
        );

        // Past its expiry it is refused.
        app.db
            .write(|conn| {
                use dma::db::schema::api_tokens as t;
                diesel::update(t::table)
                    .set(t::expires_at.eq(Some(
                        chrono::Utc::now().naive_utc() - chrono::Duration::minutes(1),
                    )))
                    .execute(conn)?;
                Ok(())
            })
            .await
            .unwrap();
        assert_eq!(me(&app, &token).await.status(), StatusCode::UNAUTHORIZED);

        // A live token ends when the password changes (here through a reset link).
        let csrf = csrf_from(&b.text("/account/tokens").await);
        let res = b
            .post(
                "/account/tokens",
                &[
                    ("csrf_token", csrf.as_str()),
                    ("name", "second"),
                    ("password", PASSWORD),
                ],
            )
            .await;
        let second = token_in(&res.text().await.unwrap());
        assert_eq!(me(&app, &second).await.status(), StatusCode::OK);
        let reset = link_token(&app, id, dma::services::auth::users::PASSWORD_RESET).await;
        let res = set_password_with(&app, &reset, "plum tractor velvet orbit").await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "[{backend}]");
        assert_eq!(
            me(&app, &second).await.status(),
            StatusCode::UNAUTHORIZED,
            "[{backend}] a token outlived a password change"
        );
    }
}

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

/// A client whose requests come from `ip` (any 127.0.0.0/8 address reaches the test server).
fn client_from(ip: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .local_address(ip.parse::<std::net::IpAddr>().unwrap())
        .build()
        .unwrap()
}

async fn sign_in_from(app: &TestApp, ip: &str, email: &str, password: &str) -> StatusCode {
    let client = client_from(ip);
    let form = client
        .get(app.url("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = csrf_from(&form);
    client
        .post(app.url("/login"))
        .form(&[
            ("email", email),
            ("password", password),
            ("csrf_token", csrf.as_str()),
        ])
        .send()
        .await
        .unwrap()
        .status()
}

/// Guesses from strangers do not lock the owner out: one address is held to five failures at
/// an account, guesses spread over many addresses to a slower limit per account, and that
/// limit spares an address the owner has signed in from.
#[tokio::test]
async fn strangers_cannot_lock_the_owner_out() {
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        let email = "ann@example.nhs.uk";
        app.create_user(email, Role::Auditor, None, PASSWORD).await;
        let owner = "127.0.0.1";
        assert_eq!(
            sign_in_from(&app, owner, email, PASSWORD).await,
            StatusCode::SEE_OTHER
        );
        for i in 0..5 {
            let status = sign_in_from(&app, "127.0.0.2", email, &format!("guess {i}")).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "[{backend}] guess {i}");
        }
        assert_eq!(
            sign_in_from(&app, "127.0.0.2", email, PASSWORD).await,
            StatusCode::TOO_MANY_REQUESTS,
            "[{backend}] one address is not held to its limit"
        );
        assert_eq!(
            sign_in_from(&app, owner, email, PASSWORD).await,
            StatusCode::SEE_OTHER,
            "[{backend}] a stranger's guesses locked the owner out"
        );
        // Spread over more addresses, the account's slower limit is reached...
        let mut failures = 5;
        for host in 3..20 {
            for i in 0..5 {
                if failures >= dma::services::auth::session::MAX_FAILURES_PER_ACCOUNT {
                    break;
                }
                let ip = format!("127.0.0.{host}");
                sign_in_from(&app, &ip, email, &format!("guess {host}.{i}")).await;
                failures += 1;
            }
        }
        assert_eq!(
            sign_in_from(&app, "127.0.0.50", email, PASSWORD).await,
            StatusCode::TOO_MANY_REQUESTS,
            "[{backend}] guesses spread over addresses are not limited"
        );
        // ...but not for the address the owner signs in from.
        assert_eq!(
            sign_in_from(&app, owner, email, PASSWORD).await,
            StatusCode::SEE_OTHER,
            "[{backend}] the owner's address is locked out"
        );
    }
}

async fn longest_audit_label(app: &TestApp) -> i64 {
    let labels: Vec<String> = app
        .db
        .read(|conn| {
            use dma::db::schema::audit_log as a;
            Ok(a::table.select(a::actor_label).load(conn)?)
        })
        .await
        .unwrap();
    labels
        .iter()
        .map(|l| l.chars().count() as i64)
        .max()
        .unwrap_or(0)
}

/// What a signed-out stranger types is bounded before it is counted or logged: an over-long
/// address is a form error, and any label the log keeps is cut to its limit.
#[tokio::test]
async fn fields_from_the_outside_world_are_bounded() {
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        let huge = format!("{}@example.nhs.uk", "a".repeat(100_000));
        let res = app.sign_in(&huge, "whatever password").await;
        assert_eq!(
            res.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "[{backend}]"
        );
        assert!(res
            .text()
            .await
            .unwrap()
            .contains("254 characters or fewer"));
        // A failed sign-in under the limit is logged, its label within the log's bound and
        // with a hidden character shown, not kept.
        let sneaky = format!("{}\u{202E}@example.nhs.uk", "b".repeat(200));
        let res = app.sign_in(&sneaky, "whatever password").await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "[{backend}]");
        let longest = longest_audit_label(&app).await;
        assert!(longest > 200 && longest <= 300, "[{backend}] {longest}");
        let actor = dma::services::audit::Actor {
            user_id: None,
            label: "x".repeat(10_000),
            ip: Some("y".repeat(10_000)),
        };
        app.db
            .write(move |conn| {
                dma::services::audit::record(
                    conn,
                    &actor,
                    dma::services::audit::Entry::new("test", "test", "z".repeat(10_000)),
                )
            })
            .await
            .unwrap();
        assert_eq!(longest_audit_label(&app).await, 300, "[{backend}]");
        let labels: Vec<(String, Option<String>, Option<String>)> = app
            .db
            .read(|conn| {
                use dma::db::schema::audit_log as a;
                Ok(a::table
                    .select((a::actor_label, a::entity_id, a::ip))
                    .load(conn)?)
            })
            .await
            .unwrap();
        assert!(labels.iter().all(|(l, e, ip)| !l.contains('\u{202E}')
            && e.as_deref().is_none_or(|e| e.chars().count() <= 200)
            && ip.as_deref().is_none_or(|ip| ip.chars().count() <= 64)));
    }
}

/// Names with bidi overrides or invisible characters are refused by the invite form and the
/// registry import, and one already stored is shown with the character replaced.
#[tokio::test]
async fn names_with_hidden_characters_are_refused_and_never_shown_raw() {
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        app.create_user("admin@example.nhs.uk", Role::Administrator, None, PASSWORD)
            .await;
        let b = Browser::new(&app);
        b.sign_in("admin@example.nhs.uk", PASSWORD).await;
        let csrf = csrf_from(&b.text("/admin/users/invite").await);
        let res = b
            .post(
                "/admin/users/invite",
                &[
                    ("csrf_token", csrf.as_str()),
                    ("email", "eve@example.nhs.uk"),
                    ("name", "Eve\u{202E}naidutsuC"),
                    ("role", "auditor"),
                ],
            )
            .await;
        assert_eq!(
            res.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "[{backend}]"
        );
        assert!(res.text().await.unwrap().contains("U+202E"));

        let csrf = csrf_from(&b.text("/admin/organisations").await);
        let csv = "ods_code,name,settings,region,parent_icb,parent_from,opened_on,closed_on\n\
                   RA1,Alpha\u{200B} Hospitals NHS Trust,acute,London,,,2000-04-01,\n";
        let res = b
            .post_multipart(
                "/admin/organisations/import",
                &csrf,
                csv.as_bytes().to_vec(),
                "registry.csv",
            )
            .await;
        assert_eq!(
            res.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "[{backend}]"
        );
        assert!(res.text().await.unwrap().contains("U+200B"));

        // Stored before these checks (straight into the table): shown replaced.
        app.db
            .write(|conn| {
                use dma::db::schema::users as u;
                diesel::update(u::table)
                    .set(u::name.eq("Mallory\u{202E}nimdA"))
                    .execute(conn)?;
                Ok(())
            })
            .await
            .unwrap();
        let page = b.text("/admin/users").await;
        assert!(!page.contains('\u{202E}'), "[{backend}] shown raw");
        assert!(page.contains("Mallory\u{FFFD}nimdA"), "[{backend}]");
    }
}

/// An upload form is limited in total, not only per part: many parts each under the limit
/// are refused as one oversized upload, and so are endless small parts.
#[tokio::test]
async fn upload_forms_have_a_total_size_cap() {
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        app.create_user("admin@example.nhs.uk", Role::Administrator, None, PASSWORD)
            .await;
        let b = Browser::new(&app);
        b.sign_in("admin@example.nhs.uk", PASSWORD).await;
        let csrf = csrf_from(&b.text("/admin/organisations").await);
        let limit = 2 * 1024 * 1024;
        let mut form = reqwest::multipart::Form::new().text("csrf_token", csrf.clone());
        for i in 0..3 {
            form = form.part(
                format!("padding{i}"),
                reqwest::multipart::Part::bytes(vec![b'x'; limit - 1]),
            );
        }
        form = form.part(
            "file",
            reqwest::multipart::Part::bytes(b"ods_code,name\n".to_vec()).file_name("r.csv"),
        );
        let res = b
            .client
            .post(b.url("/admin/organisations/import"))
            .multipart(form)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE, "[{backend}]");

        let mut form = reqwest::multipart::Form::new().text("csrf_token", csrf);
        for i in 0..100 {
            form = form.text(format!("field{i}"), "x");
        }
        let res = b
            .client
            .post(b.url("/admin/organisations/import"))
            .multipart(form)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "[{backend}]");
    }
}

/// Password strength is zxcvbn's estimate with its dictionaries: `Qwerty12345` is refused
/// with the reason, and a passphrase is accepted.
#[tokio::test]
async fn weak_passwords_are_refused_with_a_reason() {
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        let id = app
            .create_user("ann@example.nhs.uk", Role::Auditor, None, PASSWORD)
            .await;
        let token = link_token(&app, id, dma::services::auth::users::PASSWORD_RESET).await;
        let res = set_password_with(&app, &token, "Qwerty12345").await;
        assert_eq!(
            res.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "[{backend}]"
        );
        let html = res.text().await.unwrap();
        assert!(
            html.contains("This password would be too easy to guess"),
            "[{backend}] {html}"
        );
        let res = set_password_with(&app, &token, "plum tractor velvet orbit").await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "[{backend}]");
    }
}

/// An approver's invite form answers the same whether or not the address has an account,
/// and whether or not that account already belongs to the organisation: an existing account
/// gains a membership (its holder is emailed) or, already belonging, is told someone tried;
/// its own organisation never changes.
#[tokio::test]
async fn the_invite_form_does_not_reveal_who_has_an_account() {
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        let world = crate::browser::World::seed(&app).await;
        let approver = Browser::new(&app);
        approver.sign_in("approver@a.nhs.uk", PASSWORD).await;
        let mut answers = Vec::new();
        for email in [
            "contributor@b.nhs.uk",
            "brand.new@a.nhs.uk",
            "contributor@a.nhs.uk",
        ] {
            let csrf = csrf_from(&approver.text("/organisation/users").await);
            let res = approver
                .post(
                    "/organisation/users/invite",
                    &[
                        ("csrf_token", csrf.as_str()),
                        ("email", email),
                        ("name", "Some One"),
                        ("role", "org_contributor"),
                    ],
                )
                .await;
            answers.push((res.status(), res.headers().get("location").cloned()));
        }
        assert_eq!(answers[0], answers[1], "[{backend}] the answers differ");
        assert_eq!(answers[0], answers[2], "[{backend}] the answers differ");
        assert_eq!(answers[0].0, StatusCode::SEE_OTHER, "[{backend}]");
        let mail = crate::browser::outbox(&app).await;
        let kinds: Vec<(&str, &str)> = mail
            .iter()
            .map(|(k, to, _)| (k.as_str(), to.as_str()))
            .collect();
        assert!(
            kinds.contains(&("membership_added", "contributor@b.nhs.uk")),
            "[{backend}] {kinds:?}"
        );
        assert!(
            kinds.contains(&("already_registered", "contributor@a.nhs.uk")),
            "[{backend}] {kinds:?}"
        );
        assert!(kinds.contains(&("invitation", "brand.new@a.nhs.uk")));
        let org: Option<i64> = app
            .db
            .read(move |conn| {
                use dma::db::schema::users as u;
                Ok(u::table
                    .find(world.contributor_b)
                    .select(u::organisation_id)
                    .first(conn)?)
            })
            .await
            .unwrap();
        assert_ne!(org, Some(world.org_a), "[{backend}] the account was moved");
    }
}

/// A reset link waits in the outbox sealed (no link in the stored body), is opened only to be
/// sent, and the body is emptied once delivered; the emptied message cannot be resent.
#[tokio::test]
async fn secret_links_are_sealed_in_the_outbox_and_purged_once_sent() {
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        app.create_user("ann@example.nhs.uk", Role::Auditor, None, PASSWORD)
            .await;
        let b = Browser::new(&app);
        let csrf = csrf_from(&b.text("/account/reset-password").await);
        let res = b
            .post(
                "/account/reset-password",
                &[
                    ("csrf_token", csrf.as_str()),
                    ("email", "ann@example.nhs.uk"),
                ],
            )
            .await;
        assert_eq!(res.status(), StatusCode::OK, "[{backend}]");
        // The app's own worker delivers it (to files, in the test's data folder).
        let mut row = (String::new(), String::new(), String::new(), 0i64);
        for _ in 0..100 {
            row = app
                .db
                .read(|conn| {
                    use dma::db::schema::email_outbox as e;
                    Ok(e::table
                        .filter(e::kind.eq("password_reset"))
                        .select((e::status, e::body_text, e::body_html, e::id))
                        .first(conn)?)
                })
                .await
                .unwrap();
            if row.0 == "sent" {
                break;
            }
            assert!(
                dma::crypto::is_sealed(&row.1) && dma::crypto::is_sealed(&row.2),
                "[{backend}] stored in clear: {}",
                row.1
            );
            assert!(!row.1.contains("token="), "[{backend}]");
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert_eq!(row.0, "sent", "[{backend}] not delivered");
        assert_eq!(
            (row.1.as_str(), row.2.as_str()),
            ("", ""),
            "[{backend}] kept"
        );

        app.create_user("admin@example.nhs.uk", Role::Administrator, None, PASSWORD)
            .await;
        let admin = Browser::new(&app);
        admin.sign_in("admin@example.nhs.uk", PASSWORD).await;
        let csrf = csrf_from(&admin.text("/admin/outbox").await);
        let res = admin
            .post(
                &format!("/admin/outbox/{}/resend", row.3),
                &[("csrf_token", csrf.as_str())],
            )
            .await;
        assert_eq!(res.status(), StatusCode::CONFLICT, "[{backend}]");
    }
}

#[tokio::test]
async fn a_signed_out_autosave_is_told_in_json_and_a_signed_out_form_returns_to_its_page() {
    let app = TestApp::spawn(dma::db::Backend::Sqlite).await;
    let w = crate::browser::World::seed(&app).await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    // The page's script (autosave) is answered 401 in JSON, never a redirect it would follow
    // to the sign-in page and read as "saved".
    let res = client
        .post(app.url(&format!("/assessments/{}/autosave", w.assessment_a)))
        .header("X-Requested-With", "fetch")
        .form(&[("csrf_token", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let body: serde_json::Value = res.json().await.unwrap();
    assert!(
        body["message"].as_str().unwrap().contains("not saved"),
        "{body}"
    );
    // A form posted to an address with no page of its own comes back to the page it was on.
    let page = app.url(&format!(
        "/assessments/{}/sections/strategy",
        w.assessment_a
    ));
    let res = client
        .post(format!("{page}/status"))
        .header("Referer", &page)
        .form(&[("csrf_token", "x"), ("status", "ready_for_review")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let location = res.headers()["location"].to_str().unwrap();
    assert_eq!(
        location,
        format!(
            "/login?next={}",
            dma::web::errors::urlencode(&format!(
                "/assessments/{}/sections/strategy",
                w.assessment_a
            ))
        )
    );
    // From another site's page: the dashboard, never the other site.
    let res = client
        .post(format!("{page}/status"))
        .header("Referer", "https://elsewhere.example/x")
        .form(&[("csrf_token", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.headers()["location"].to_str().unwrap(),
        format!("/login?next={}", dma::web::errors::urlencode("/dashboard"))
    );
}
