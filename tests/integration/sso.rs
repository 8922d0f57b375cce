//! Single sign-on against a real OpenID provider: `oidc-provider` (npm, certified) run by
//! tests/oidc-peer/server.mjs on loopback, issuing real signed ID tokens from keys it
//! publishes. Every case runs on both backends: signing in (linking on the first time),
//! a wrong audience, an expired token, a replayed or raced callback, a bad state, an unknown
//! subject with no account (and with account creation on), an unverified email, a domain not
//! allowed, the second factor after sign-on, signing out with the provider's logout offered,
//! a provider that is down, and the administrators' page with parallel conflicting adds.
//!
//! The peer is started once for the test binary and ends when the binary does (it exits when
//! its standard input closes). On a fresh clone it first runs `npm ci` in tests/oidc-peer
//! (the package-lock.json pins the provider); without Node.js the tests fail and say so.

use std::io::BufRead;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Mutex, OnceLock};

use diesel::prelude::*;
use dma::services::auth::roles::Role;
use reqwest::StatusCode;

use crate::browser::{Browser, PASSWORD};
use crate::helpers::{backends, csrf_from, TestApp};
use crate::second_factor::audit_count;

struct Peer {
    issuer: String,
    _process: Mutex<(Child, ChildStdin, ChildStdout)>,
}

static PEER: OnceLock<Peer> = OnceLock::new();

/// The shared provider, started on first use: `node tests/oidc-peer/server.mjs --port 0`,
/// which prints the address it listens on once it serves.
fn peer() -> &'static str {
    &PEER
        .get_or_init(|| {
            let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oidc-peer");
            // A fresh clone has no node_modules: install the locked provider once, so that
            // `cargo test` alone sets up what it needs (README).
            if !dir.join("node_modules/oidc-provider").is_dir() {
                let installed = Command::new("npm")
                    .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
                    .current_dir(&dir)
                    .status()
                    .expect("run npm for the OpenID provider (is Node.js with npm installed?)");
                assert!(
                    installed.success() && dir.join("node_modules/oidc-provider").is_dir(),
                    "`npm ci` in tests/oidc-peer failed: the single sign-on tests need the real \
                     OpenID provider it installs"
                );
            }
            let log = std::fs::File::create(std::env::temp_dir().join("dma-oidc-peer.log"))
                .expect("peer log file");
            let mut child = Command::new("node")
                .arg(dir.join("server.mjs"))
                .args(["--port", "0"])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::from(log))
                .spawn()
                .expect("start node for the OpenID provider (is Node.js installed?)");
            let stdin = child.stdin.take().expect("peer stdin");
            let stdout = child.stdout.take().expect("peer stdout");
            let mut reader = std::io::BufReader::new(stdout);
            let mut line = String::new();
            reader.read_line(&mut line).expect("peer output");
            let issuer = line
                .trim()
                .strip_prefix("listening ")
                .unwrap_or_else(|| {
                    panic!("the OpenID provider did not start: {line:?} (see the temp folder's dma-oidc-peer.log)")
                })
                .to_string();
            Peer {
                issuer,
                _process: Mutex::new((child, stdin, reader.into_inner())),
            }
        })
        .issuer
}

/// An address on loopback where nothing listens.
fn closed_port_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

/// A test app offering the peer under four names: `peer` (an ordinary client), `wrongaud`
/// and `expired` (clients for which the peer re-signs the ID token with a wrong audience or a
/// past expiry), and `down` (an issuer where nothing listens).
async fn app_with_providers(backend: dma::db::Backend, extra: &[(&str, &str)]) -> TestApp {
    let issuer = peer().to_string();
    let down = closed_port_url();
    let mut env: Vec<(&str, &str)> = vec![
        ("DMA_OIDC_PROVIDERS", "peer,wrongaud,expired,down"),
        ("DMA_OIDC_PEER_ISSUER", &issuer),
        ("DMA_OIDC_PEER_CLIENT_ID", "dma"),
        ("DMA_OIDC_PEER_CLIENT_SECRET", "peer-secret"),
        ("DMA_OIDC_PEER_LABEL", "Test Peer"),
        ("DMA_OIDC_WRONGAUD_ISSUER", &issuer),
        ("DMA_OIDC_WRONGAUD_CLIENT_ID", "dma-wrong-aud"),
        ("DMA_OIDC_WRONGAUD_CLIENT_SECRET", "peer-secret"),
        ("DMA_OIDC_EXPIRED_ISSUER", &issuer),
        ("DMA_OIDC_EXPIRED_CLIENT_ID", "dma-expired"),
        ("DMA_OIDC_EXPIRED_CLIENT_SECRET", "peer-secret"),
        ("DMA_OIDC_DOWN_ISSUER", &down),
        ("DMA_OIDC_DOWN_CLIENT_ID", "dma"),
        ("DMA_OIDC_DOWN_CLIENT_SECRET", "peer-secret"),
        ("DMA_OIDC_DOWN_LABEL", "Down Provider"),
    ];
    env.extend_from_slice(extra);
    TestApp::spawn_with(backend, &env).await
}

fn location(res: &reqwest::Response) -> String {
    res.headers()
        .get("location")
        .map(|l| l.to_str().unwrap().to_string())
        .unwrap_or_default()
}

/// Start a sign-in with `provider` in `b` and let the peer sign in the account `hint`
/// (`subject:email:verified`); returns the callback address the provider sent the browser
/// back to, not yet visited.
async fn through_provider(b: &Browser, provider: &str, hint: &str) -> String {
    let res = b
        .get(&format!("/login/sso/{provider}?next=/dashboard"))
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER, "start {provider}");
    let mut url = reqwest::Url::parse(&location(&res)).unwrap();
    url.query_pairs_mut().append_pair("login_hint", hint);
    for _ in 0..12 {
        let res = b.client.get(url.clone()).send().await.unwrap();
        assert!(
            res.status().is_redirection(),
            "the provider stopped at {url}: {} {}",
            res.status(),
            res.text().await.unwrap_or_default()
        );
        let next = url.join(&location(&res)).unwrap();
        if next.as_str().starts_with(&b.base) {
            return next.to_string();
        }
        url = next;
    }
    panic!("the provider never sent the browser back");
}

/// The whole sign-in: through the provider and back; the callback's response.
async fn sign_in(b: &Browser, provider: &str, hint: &str) -> reqwest::Response {
    let callback = through_provider(b, provider, hint).await;
    b.client.get(callback).send().await.unwrap()
}

async fn allow(app: &TestApp, provider: &'static str, domain: &'static str) {
    app.db
        .write(move |conn| {
            dma::services::auth::sso::allow_domain(
                conn,
                &dma::services::audit::Actor::system("test"),
                provider,
                domain,
            )
        })
        .await
        .unwrap();
}

async fn identities(app: &TestApp) -> Vec<(String, String, i64)> {
    app.db
        .read(|conn| {
            use dma::db::schema::sso_identities as i;
            Ok(i::table
                .select((i::provider, i::subject, i::user_id))
                .order(i::id)
                .load(conn)?)
        })
        .await
        .unwrap()
}

/// Sends the requests all at once; asserts that exactly one got `winner` and every other
/// `loser`.
async fn exactly_one_wins<F>(
    sends: impl Iterator<Item = F>,
    winner: StatusCode,
    loser: StatusCode,
    what: &str,
) where
    F: std::future::Future<Output = reqwest::Result<reqwest::Response>>,
{
    let statuses: Vec<StatusCode> = futures_util::future::join_all(sends)
        .await
        .into_iter()
        .map(|r| r.unwrap().status())
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == winner).count(),
        1,
        "{what} {statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == winner || *s == loser),
        "{what} {statuses:?}"
    );
}

async fn signed_in(b: &Browser) -> bool {
    b.get("/dashboard").await.status() == StatusCode::OK
}

#[tokio::test]
async fn signing_in_links_on_first_use_then_signs_in_and_out() {
    for backend in backends() {
        let app = app_with_providers(backend, &[]).await;
        let ann = app
            .create_user("ann@example.nhs.uk", Role::Auditor, None, PASSWORD)
            .await;
        allow(&app, "peer", "example.nhs.uk").await;

        // The sign-in page offers the provider as a plain link.
        let login = Browser::new(&app).text("/login").await;
        assert!(
            login.contains("href=\"/login/sso/peer?next=%2Fdashboard\"")
                || login.contains("href=\"/login/sso/peer?next=/dashboard\""),
            "[{backend}] {login}"
        );
        assert!(login.contains("Sign in with Test Peer"));

        let b = Browser::new(&app);
        let res = sign_in(&b, "peer", "ann-sub:ann@example.nhs.uk:1").await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "[{backend}]");
        assert_eq!(location(&res), "/dashboard");
        assert!(signed_in(&b).await, "[{backend}] not signed in");
        assert_eq!(
            identities(&app).await,
            vec![(
                "peer".to_string(),
                "ann-sub:ann@example.nhs.uk:1".to_string(),
                ann
            )]
        );
        assert_eq!(audit_count(&app, "user.sso_linked").await, 1);

        // Again, in another browser: the linked identity signs in; nothing new is linked.
        let b2 = Browser::new(&app);
        let res = sign_in(&b2, "peer", "ann-sub:ann@example.nhs.uk:1").await;
        assert_eq!(location(&res), "/dashboard", "[{backend}]");
        assert!(signed_in(&b2).await);
        assert_eq!(identities(&app).await.len(), 1);
        assert_eq!(audit_count(&app, "user.sso_linked").await, 1);

        // Signing out ends the local session and offers the provider's own sign-out.
        let csrf = b2.csrf().await;
        let res = b2.post("/logout", &[("csrf_token", &csrf)]).await;
        assert_eq!(location(&res), "/signed-out?provider=peer", "[{backend}]");
        assert!(!signed_in(&b2).await);
        let page = b2.text("/signed-out?provider=peer").await;
        let href = page
            .split("href=\"")
            .map(|rest| {
                rest.split('"')
                    .next()
                    .unwrap()
                    .replace("&#x3D;", "=")
                    .replace("&amp;", "&")
            })
            .find(|href| href.contains("/session/end"))
            .unwrap_or_else(|| panic!("[{backend}] no provider logout: {page}"));
        let expected = format!(
            "{}/session/end?client_id=dma&post_logout_redirect_uri=",
            peer()
        );
        assert!(href.starts_with(&expected), "[{backend}] {href}");
        let back = app.address.replace(':', "%3A").replace('/', "%2F");
        assert!(href.ends_with(&format!("{back}%2F")), "[{backend}] {href}");
        // The provider accepts it: its own sign-out page.
        let res = b2.client.get(&href).send().await.unwrap();
        assert_eq!(
            res.status(),
            StatusCode::OK,
            "[{backend}] the provider's logout"
        );
        assert!(page.contains("Sign out of Test Peer"));
        // The first browser is still signed in: only that session ended.
        assert!(signed_in(&b).await);

        // Removing the domain's allowance stops the provider at once, linked or not.
        app.db
            .write(|conn| {
                diesel::delete(dma::db::schema::sso_allowed_domains::table).execute(conn)?;
                Ok(())
            })
            .await
            .unwrap();
        let b3 = Browser::new(&app);
        let res = sign_in(&b3, "peer", "ann-sub:ann@example.nhs.uk:1").await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "[{backend}]");
        assert!(res.text().await.unwrap().contains("no longer allowed"));
        assert!(!signed_in(&b3).await);
    }
}

#[tokio::test]
async fn tokens_for_another_audience_or_expired_are_refused() {
    for backend in backends() {
        let app = app_with_providers(backend, &[]).await;
        app.create_user("ann@example.nhs.uk", Role::Auditor, None, PASSWORD)
            .await;
        allow(&app, "wrongaud", "example.nhs.uk").await;
        allow(&app, "expired", "example.nhs.uk").await;
        for provider in ["wrongaud", "expired"] {
            let b = Browser::new(&app);
            let res = sign_in(&b, provider, "ann-sub:ann@example.nhs.uk:1").await;
            assert_eq!(
                res.status(),
                StatusCode::UNAUTHORIZED,
                "[{backend}] {provider}"
            );
            let page = res.text().await.unwrap();
            assert!(page.contains("could not be checked"), "{page}");
            assert!(!signed_in(&b).await, "[{backend}] {provider} signed in");
        }
        assert!(identities(&app).await.is_empty());
    }
}

#[tokio::test]
async fn a_callback_works_once_only_in_the_browser_that_started_it_with_its_state() {
    for backend in backends() {
        let app = app_with_providers(backend, &[]).await;
        app.create_user("ann@example.nhs.uk", Role::Auditor, None, PASSWORD)
            .await;
        allow(&app, "peer", "example.nhs.uk").await;

        // A state that was never issued, or altered: refused, nothing taken.
        let b = Browser::new(&app);
        let callback = through_provider(&b, "peer", "ann-sub:ann@example.nhs.uk:1").await;
        let mut bad = reqwest::Url::parse(&callback).unwrap();
        let pairs: Vec<(String, String)> = bad
            .query_pairs()
            .map(|(k, v)| {
                let v = if k == "state" {
                    format!("{v}x")
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        bad.query_pairs_mut().clear().extend_pairs(pairs);
        let res = b.client.get(bad).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "[{backend}]");
        assert!(res.text().await.unwrap().contains("has expired"));
        assert!(!signed_in(&b).await);

        // The right callback in another browser (no cookie of the sign-in): refused, and
        // the sign-in is used up.
        let stranger = Browser::new(&app);
        let res = stranger.client.get(&callback).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "[{backend}]");
        let res = b.client.get(&callback).send().await.unwrap();
        assert_eq!(
            res.status(),
            StatusCode::BAD_REQUEST,
            "[{backend}] used twice"
        );
        assert!(!signed_in(&b).await);

        // A good callback signs in once; replayed, it is refused.
        let b = Browser::new(&app);
        let callback = through_provider(&b, "peer", "ann-sub:ann@example.nhs.uk:1").await;
        let res = b.client.get(&callback).send().await.unwrap();
        assert_eq!(location(&res), "/dashboard", "[{backend}]");
        let res = b.client.get(&callback).send().await.unwrap();
        assert_eq!(
            res.status(),
            StatusCode::BAD_REQUEST,
            "[{backend}] replayed"
        );

        // Raced: the same callback sent eight times at once signs in once.
        let b = Browser::new(&app);
        let callback = through_provider(&b, "peer", "ann-sub:ann@example.nhs.uk:1").await;
        let sends = (0..8).map(|_| b.client.get(&callback).send());
        let what = format!("[{backend}] parallel callbacks");
        exactly_one_wins(sends, StatusCode::SEE_OTHER, StatusCode::BAD_REQUEST, &what).await;
        assert_eq!(identities(&app).await.len(), 1);
    }
}

#[tokio::test]
async fn linking_needs_a_verified_email_an_allowed_domain_and_an_account() {
    for backend in backends() {
        let app = app_with_providers(backend, &[]).await;
        app.create_user("ann@example.nhs.uk", Role::Auditor, None, PASSWORD)
            .await;
        app.create_user("bob@elsewhere.nhs.uk", Role::Auditor, None, PASSWORD)
            .await;
        allow(&app, "peer", "example.nhs.uk").await;

        let refused = |hint: &'static str, words: &'static str| {
            let app = &app;
            async move {
                let b = Browser::new(app);
                let res = sign_in(&b, "peer", hint).await;
                assert_eq!(res.status(), StatusCode::FORBIDDEN, "[{backend}] {hint}");
                let page = res.text().await.unwrap();
                assert!(page.contains(words), "[{backend}] {hint}: {page}");
                assert!(!signed_in(&b).await);
            }
        };
        // The provider has not verified the address.
        refused(
            "ann-sub:ann@example.nhs.uk:0",
            "has not confirmed that ann@example.nhs.uk is your email address",
        )
        .await;
        // An account exists, but its domain is not allowed for this provider.
        refused(
            "bob-sub:bob@elsewhere.nhs.uk:1",
            "is not allowed for email addresses ending @elsewhere.nhs.uk",
        )
        .await;
        // An allowed domain, but no account, and the provider may not create them.
        refused(
            "new-sub:new@example.nhs.uk:1",
            "There is no account for new@example.nhs.uk",
        )
        .await;
        assert!(identities(&app).await.is_empty(), "[{backend}]");
        let users: i64 = app
            .db
            .read(|conn| Ok(dma::db::schema::users::table.count().get_result(conn)?))
            .await
            .unwrap();
        assert_eq!(users, 2, "[{backend}] an account was created");

        // With creation turned on, the first sign-in creates an account with the least role.
        app.db
            .write(|conn| {
                dma::services::auth::sso::set_creates_accounts(
                    conn,
                    &dma::services::audit::Actor::system("test"),
                    "peer",
                    true,
                )
            })
            .await
            .unwrap();
        let b = Browser::new(&app);
        let res = sign_in(&b, "peer", "new-sub:new@example.nhs.uk:1").await;
        assert_eq!(location(&res), "/dashboard", "[{backend}]");
        assert!(signed_in(&b).await);
        let created = app
            .db
            .read(|conn| {
                Ok(dma::services::auth::users::find_by_email(conn, "new@example.nhs.uk")?.unwrap())
            })
            .await
            .unwrap();
        assert_eq!(created.role, "org_contributor");
        assert_eq!(created.organisation_id, None);
        assert!(created.password_hash.is_none());
        assert_eq!(created.name, "Peer new-sub");
        assert_eq!(audit_count(&app, "user.sso_created").await, 1);
        // ... but still not with an unverified address or outside the allowed domains.
        refused("other:other@example.nhs.uk:0", "has not confirmed").await;
        refused("x:x@elsewhere.nhs.uk:1", "is not allowed").await;
    }
}

#[tokio::test]
async fn the_second_factor_still_applies_after_sign_on() {
    for backend in backends() {
        let app =
            app_with_providers(backend, &[("DMA_SECOND_FACTOR_ROLES", "administrator")]).await;
        app.create_user("boss@example.nhs.uk", Role::Administrator, None, PASSWORD)
            .await;
        allow(&app, "peer", "example.nhs.uk").await;
        let b = Browser::new(&app);
        let res = sign_in(&b, "peer", "boss-sub:boss@example.nhs.uk:1").await;
        assert_eq!(
            location(&res),
            "/account/second-factor?next=/dashboard",
            "[{backend}]"
        );
        assert!(
            !signed_in(&b).await,
            "[{backend}] signed in without a second factor"
        );
    }
}

#[tokio::test]
async fn a_provider_that_is_down_is_a_clear_503() {
    for backend in backends() {
        let app = app_with_providers(backend, &[]).await;
        let b = Browser::new(&app);
        let res = b.get("/login/sso/down?next=/dashboard").await;
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE, "[{backend}]");
        assert!(res.headers().contains_key("retry-after"));
        let page = res.text().await.unwrap();
        assert!(page.contains("We could not reach Down Provider"), "{page}");
        // A provider no longer configured: back to the sign-in page.
        let res = b.get("/login/sso/gone").await;
        assert_eq!(location(&res), "/login");
    }
}

#[tokio::test]
async fn administrators_allow_domains_once_each_and_turn_on_account_creation() {
    for backend in backends() {
        let app = app_with_providers(backend, &[]).await;
        app.create_user("boss@example.nhs.uk", Role::Administrator, None, PASSWORD)
            .await;
        let admin = Browser::new(&app);
        admin.sign_in("boss@example.nhs.uk", PASSWORD).await;
        let page = admin.text("/admin/sso").await;
        assert!(page.contains("Test Peer") && page.contains("Down Provider"));
        let csrf = csrf_from(&page);

        // A bad domain: the form again, with the error.
        let res = admin
            .post(
                "/admin/sso/domains",
                &[
                    ("csrf_token", &csrf),
                    ("provider", "peer"),
                    ("domain", "not a domain"),
                ],
            )
            .await;
        assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);

        // Eight administrators' pages adding the same domain at once: one is stored.
        let adds = (0..8).map(|_| {
            admin
                .client
                .post(admin.url("/admin/sso/domains"))
                .form(&[
                    ("csrf_token", csrf.as_str()),
                    ("provider", "peer"),
                    ("domain", "@Example.NHS.uk"),
                ])
                .send()
        });
        let what = format!("[{backend}] parallel adds");
        exactly_one_wins(adds, StatusCode::SEE_OTHER, StatusCode::CONFLICT, &what).await;
        let domains = app
            .db
            .read(dma::services::auth::sso::allowed_domains)
            .await
            .unwrap();
        assert_eq!(domains.len(), 1);
        assert_eq!(domains[0].domain, "example.nhs.uk");
        assert!(admin.text("/admin/sso").await.contains("@example.nhs.uk"));

        // Account creation on, then off.
        let res = admin
            .post(
                "/admin/sso/providers/peer/accounts",
                &[("csrf_token", &csrf), ("create_accounts", "on")],
            )
            .await;
        assert_eq!(location(&res), "/admin/sso?done=accounts", "[{backend}]");
        let on = app
            .db
            .read(|conn| dma::services::auth::sso::creates_accounts(conn, "peer"))
            .await
            .unwrap();
        assert!(on);
        assert!(admin
            .text("/admin/sso")
            .await
            .contains("Stop creating accounts"));

        // Removing the domain.
        let id = domains[0].id;
        let res = admin
            .post(
                &format!("/admin/sso/domains/{id}/remove"),
                &[("csrf_token", &csrf)],
            )
            .await;
        assert_eq!(location(&res), "/admin/sso?done=removed");
        assert_eq!(audit_count(&app, "sso.domain_allowed").await, 1);
        assert_eq!(audit_count(&app, "sso.domain_removed").await, 1);
        assert_eq!(audit_count(&app, "sso.create_accounts").await, 1);
    }
}

#[tokio::test]
async fn an_account_without_a_password_confirms_who_it_is_through_its_provider() {
    for backend in backends() {
        let app = app_with_providers(backend, &[]).await;
        allow(&app, "peer", "example.nhs.uk").await;
        app.db
            .write(|conn| {
                dma::services::auth::sso::set_creates_accounts(
                    conn,
                    &dma::services::audit::Actor::system("test"),
                    "peer",
                    true,
                )
            })
            .await
            .unwrap();
        let b = Browser::new(&app);
        let res = sign_in(&b, "peer", "new-sub:new@example.nhs.uk:1").await;
        assert_eq!(location(&res), "/dashboard", "[{backend}]");
        let id = app
            .db
            .read(|conn| {
                Ok(
                    dma::services::auth::users::find_by_email(conn, "new@example.nhs.uk")?
                        .unwrap()
                        .id,
                )
            })
            .await
            .unwrap();

        // Long after signing in, a sensitive action asks again: the page offers the provider,
        // and no password form (the account has none).
        crate::second_factor::age_sessions(&app, 60).await;
        let csrf = b.csrf().await;
        let make = [
            ("csrf_token", csrf.as_str()),
            ("name", "script"),
            ("expires_days", "30"),
        ];
        let res = b.post("/account/tokens", &make).await;
        assert!(
            location(&res).starts_with("/account/confirm?next="),
            "[{backend}] {}",
            location(&res)
        );
        let page = b.text("/account/confirm?next=/account/tokens").await;
        assert!(page.contains("Sign in with Test Peer"), "[{backend}]");
        assert!(!page.contains("name=\"password\""), "[{backend}]");

        // Signing in again through the provider replaces the session with a recent one.
        let res = sign_in(&b, "peer", "new-sub:new@example.nhs.uk:1").await;
        assert_eq!(location(&res), "/dashboard", "[{backend}]");
        assert_eq!(crate::browser::sessions_of(&app, id).await, 1);
        let csrf = b.csrf().await;
        let make = [
            ("csrf_token", csrf.as_str()),
            ("name", "script"),
            ("expires_days", "30"),
        ];
        let res = b.post("/account/tokens", &make).await;
        assert!(
            !location(&res).starts_with("/account/confirm"),
            "[{backend}] still asked to confirm"
        );
        assert!(res.status().as_u16() < 400, "[{backend}] {}", res.status());
    }
}

/// A person unlinks a provider from their account (its sessions through that provider end),
/// but not the only way they sign in; an administrator can unlink anyone's.
#[tokio::test]
async fn identities_are_unlinked_by_their_owner_or_an_administrator() {
    for backend in backends() {
        let app = app_with_providers(backend, &[]).await;
        app.create_user("ann@example.nhs.uk", Role::Auditor, None, PASSWORD)
            .await;
        let bob = app
            .create_user("bob@example.nhs.uk", Role::Auditor, None, PASSWORD)
            .await;
        app.create_user("admin@example.nhs.uk", Role::Administrator, None, PASSWORD)
            .await;
        allow(&app, "peer", "example.nhs.uk").await;

        // Ann links the peer in one browser, then unlinks it from another, signed in with
        // her password: the first browser's session (through the peer) ends.
        let through_peer = Browser::new(&app);
        let res = sign_in(&through_peer, "peer", "ann-sub:ann@example.nhs.uk:1").await;
        assert_eq!(location(&res), "/dashboard", "[{backend}]");
        let ann = Browser::new(&app);
        ann.sign_in("ann@example.nhs.uk", PASSWORD).await;
        let page = ann.text("/account/sign-in").await;
        assert!(
            page.contains("<strong>Test Peer</strong> as ann@example.nhs.uk")
                && page.contains("Unlink Test Peer"),
            "[{backend}] {page}"
        );
        let dashboard = ann.text("/dashboard").await;
        assert!(dashboard.contains("href=\"/account/sign-in\""));
        let res = ann
            .post(
                "/account/sign-in/peer/unlink",
                &[("csrf_token", &csrf_from(&page))],
            )
            .await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "[{backend}]");
        assert_eq!(location(&res), "/account/sign-in?done=unlinked");
        assert!(identities(&app).await.is_empty(), "[{backend}]");
        assert!(
            !signed_in(&through_peer).await,
            "[{backend}] still signed in"
        );
        assert!(
            signed_in(&ann).await,
            "[{backend}] the owner's own session ended"
        );
        assert_eq!(audit_count(&app, "sso.unlink").await, 1);
        let res = ann
            .post(
                "/account/sign-in/peer/unlink",
                &[("csrf_token", &csrf_from(&page))],
            )
            .await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "[{backend}] twice");

        // Bob has no password: the peer is his only way in, so he cannot unlink it...
        app.db
            .write(move |conn| {
                use dma::db::schema::users as u;
                diesel::update(u::table.find(bob))
                    .set(u::password_hash.eq(None::<String>))
                    .execute(conn)?;
                Ok(())
            })
            .await
            .unwrap();
        let b = Browser::new(&app);
        sign_in(&b, "peer", "bob-sub:bob@example.nhs.uk:1").await;
        let page = b.text("/account/sign-in").await;
        assert!(
            page.contains("the only way you can sign in") && !page.contains("Unlink Test Peer"),
            "[{backend}] {page}"
        );
        let res = b
            .post(
                "/account/sign-in/peer/unlink",
                &[("csrf_token", &csrf_from(&page))],
            )
            .await;
        assert_eq!(res.status(), StatusCode::CONFLICT, "[{backend}]");
        assert_eq!(identities(&app).await.len(), 1);

        // ...but an administrator can, from his page.
        let admin = Browser::new(&app);
        admin.sign_in("admin@example.nhs.uk", PASSWORD).await;
        let person = admin.text(&format!("/admin/users/{bob}")).await;
        assert!(person.contains("Unlink peer"), "[{backend}] {person}");
        let res = admin
            .post(
                &format!("/admin/users/{bob}/sso/peer/unlink"),
                &[("csrf_token", &csrf_from(&person))],
            )
            .await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "[{backend}]");
        assert!(identities(&app).await.is_empty(), "[{backend}]");
        assert!(
            !signed_in(&b).await,
            "[{backend}] his session through the peer ended"
        );
    }
}
