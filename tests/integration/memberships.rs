//! People in several organisations (issue 22): an invitation for an address that has an
//! account adds a membership instead of failing; the person switches between their places;
//! emails and assignments reach members; removing a membership sends its sessions home; two
//! invitations racing on PostgreSQL add one membership.

use diesel::prelude::*;
use reqwest::StatusCode;

use crate::browser::{outbox, Browser, World, PASSWORD};
use crate::helpers::{backends, csrf_from, TestApp};

async fn assessment_of(app: &TestApp, organisation: i64) -> i64 {
    app.db
        .read(move |conn| {
            use dma::db::schema::assessments as a;
            Ok(a::table
                .filter(a::organisation_id.eq(organisation))
                .select(a::id)
                .first(conn)?)
        })
        .await
        .unwrap()
}

async fn memberships_of(app: &TestApp, user: i64) -> Vec<(i64, i64, String)> {
    app.db
        .read(move |conn| {
            use dma::db::schema::memberships as m;
            Ok(m::table
                .filter(m::user_id.eq(user))
                .order(m::id)
                .select((m::id, m::organisation_id, m::role))
                .load(conn)?)
        })
        .await
        .unwrap()
}

async fn org_b(app: &TestApp) -> i64 {
    app.db
        .read(|conn| Ok(crate::browser::organisation_id(conn, "RB1")))
        .await
        .unwrap()
}

async fn invite_from_b(approver_b: &Browser, email: &str, role: &str) -> reqwest::Response {
    let page = approver_b.text("/organisation/users").await;
    approver_b
        .post(
            "/organisation/users/invite",
            &[
                ("csrf_token", &csrf_from(&page)),
                ("email", email),
                ("name", "Casey Contributor"),
                ("role", role),
            ],
        )
        .await
}

#[tokio::test]
async fn an_existing_account_is_added_to_another_organisation_and_switches_between_them() {
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        let w = World::seed(&app).await;
        let b = org_b(&app).await;
        let (assessment_a, assessment_b) = (w.assessment_a, assessment_of(&app, b).await);

        // B's approver invites A's contributor: no new account, a membership of B, an email.
        let approver_b = Browser::new(&app);
        approver_b.sign_in("approver@b.nhs.uk", PASSWORD).await;
        let res = invite_from_b(&approver_b, "contributor@a.nhs.uk", "org_contributor").await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "[{backend}]");
        assert_eq!(
            res.headers()["location"],
            "/organisation/users?done=invitation",
            "[{backend}] the approver is answered as for any invitation"
        );
        let places = memberships_of(&app, w.contributor_a).await;
        assert_eq!(places.len(), 1, "[{backend}] {places:?}");
        assert_eq!((places[0].1, places[0].2.as_str()), (b, "org_contributor"));
        let mail = outbox(&app).await;
        let added: Vec<_> = mail
            .iter()
            .filter(|(k, _, _)| k == "membership_added")
            .collect();
        assert_eq!(added.len(), 1, "[{backend}] {mail:?}");
        assert_eq!(added[0].1, "contributor@a.nhs.uk");
        assert!(
            added[0].2.contains("/account/organisations"),
            "{}",
            added[0].2
        );
        let people_b = approver_b.text("/organisation/users").await;
        assert!(
            people_b.contains("contributor@a.nhs.uk")
                && people_b.contains("Remove from organisation"),
            "[{backend}] B's people list its member"
        );

        // The contributor works for A until they switch; then for B only.
        let person = Browser::new(&app);
        person.sign_in("contributor@a.nhs.uk", PASSWORD).await;
        let dashboard = person.text("/dashboard").await;
        assert!(
            dashboard.contains("href=\"/account/organisations\""),
            "[{backend}] the switcher is offered"
        );
        let path_a = format!("/assessments/{assessment_a}");
        let path_b = format!("/assessments/{assessment_b}");
        assert_eq!(person.get(&path_a).await.status(), StatusCode::OK);
        assert_eq!(person.get(&path_b).await.status(), StatusCode::FORBIDDEN);
        let switcher = person.text("/account/organisations").await;
        assert!(switcher.contains("Working for this one now"), "[{backend}]");
        assert!(switcher.contains("Work for Beta"), "[{backend}] {switcher}");
        let csrf = csrf_from(&switcher);
        let membership = places[0].0.to_string();
        let res = person
            .post(
                "/account/organisations",
                &[("csrf_token", &csrf), ("place", &membership)],
            )
            .await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "[{backend}]");
        assert_eq!(person.get(&path_b).await.status(), StatusCode::OK);
        let refused = person.get(&path_a).await;
        assert_eq!(
            refused.status(),
            StatusCode::FORBIDDEN,
            "[{backend}] one organisation at a time"
        );
        assert!(
            refused
                .text()
                .await
                .unwrap()
                .contains("href=\"/account/organisations\">switch organisation</a>"),
            "[{backend}] the refusal says where to switch"
        );
        let dashboard = person.text("/dashboard?switched=1").await;
        assert!(
            dashboard.contains("You are working for Beta Hospitals NHS Trust now"),
            "[{backend}]"
        );
        // Another browser of the same account still works for A: the choice is per session.
        let other_tab = Browser::new(&app);
        other_tab.sign_in("contributor@a.nhs.uk", PASSWORD).await;
        assert_eq!(other_tab.get(&path_a).await.status(), StatusCode::OK);

        // Nobody can switch into someone else's membership, nor to nonsense.
        let stranger = Browser::new(&app);
        stranger.sign_in("contributor@b.nhs.uk", PASSWORD).await;
        let csrf_b = stranger.csrf().await;
        let res = stranger
            .post(
                "/account/organisations",
                &[("csrf_token", &csrf_b), ("place", &membership)],
            )
            .await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "[{backend}]");
        let res = stranger
            .post(
                "/account/organisations",
                &[("csrf_token", &csrf_b), ("place", "b's")],
            )
            .await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "[{backend}]");

        // Members are B's people: B's approver can give them a section, and they are emailed.
        let section_page = approver_b
            .text(&format!(
                "/assessments/{assessment_b}/sections/{}",
                w.domain_key
            ))
            .await;
        assert!(
            section_page.contains(&format!("value=\"{}\"", w.contributor_a)),
            "[{backend}] the member can be chosen"
        );
        let res = approver_b
            .post(
                &format!(
                    "/assessments/{assessment_b}/sections/{}/assignees",
                    w.domain_key
                ),
                &[
                    ("csrf_token", &csrf_from(&section_page)),
                    ("person", &w.contributor_a.to_string()),
                    ("due_on", ""),
                ],
            )
            .await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "[{backend}]");
        let mail = outbox(&app).await;
        assert!(
            mail.iter()
                .any(|(k, to, _)| k == "section_assigned" && to == "contributor@a.nhs.uk"),
            "[{backend}] {mail:?}"
        );

        // B's approver takes the member out: their session goes home to A; A's own people
        // cannot be removed this way (deactivation is for them).
        let csrf = csrf_from(&approver_b.text("/organisation/users").await);
        let res = approver_b
            .post(
                &format!("/organisation/users/{}/remove", w.contributor_a),
                &[("csrf_token", &csrf)],
            )
            .await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "[{backend}]");
        assert!(memberships_of(&app, w.contributor_a).await.is_empty());
        assert_eq!(person.get(&path_b).await.status(), StatusCode::FORBIDDEN);
        assert_eq!(person.get(&path_a).await.status(), StatusCode::OK);
        let res = approver_b
            .post(
                &format!("/organisation/users/{}/remove", w.contributor_b),
                &[("csrf_token", &csrf)],
            )
            .await;
        assert_eq!(res.status(), StatusCode::CONFLICT, "[{backend}] B's own");
        let res = approver_b
            .post(
                &format!("/organisation/users/{}/remove", w.approver_a),
                &[("csrf_token", &csrf)],
            )
            .await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "[{backend}] not B's");

        // Administrators: an existing account with a national role is refused by name; an
        // organisation role for an existing account adds a membership and says so.
        let admin = Browser::new(&app);
        admin.sign_in("admin@example.nhs.uk", PASSWORD).await;
        let form = admin.text("/admin/users/invite").await;
        let res = admin
            .post(
                "/admin/users/invite",
                &[
                    ("csrf_token", &csrf_from(&form)),
                    ("email", "approver@a.nhs.uk"),
                    ("name", "A's approver"),
                    ("role", "auditor"),
                ],
            )
            .await;
        assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert!(res
            .text()
            .await
            .unwrap()
            .contains("An account for approver@a.nhs.uk already exists"));
        let res = admin
            .post(
                "/admin/users/invite",
                &[
                    ("csrf_token", &csrf_from(&form)),
                    ("email", "approver@a.nhs.uk"),
                    ("name", "A's approver"),
                    ("role", "org_approver"),
                    ("organisation", "RB1"),
                ],
            )
            .await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "[{backend}]");
        assert_eq!(res.headers()["location"], "/admin/users?done=member-added");
        let places = memberships_of(&app, w.approver_a).await;
        assert_eq!(places.len(), 1);
        assert_eq!((places[0].1, places[0].2.as_str()), (b, "org_approver"));
        let page = admin.text(&format!("/admin/users/{}", w.approver_a)).await;
        assert!(page.contains("Also works for") && page.contains("Remove from Beta"));

        // A page drawn for one organisation does not act on another: A's approver opens
        // People for A, switches to B (another tab, same session), then sends the old form.
        let cio = Browser::new(&app);
        cio.sign_in("approver@a.nhs.uk", PASSWORD).await;
        let drawn_for_a = cio.text("/organisation/users").await;
        assert!(drawn_for_a.contains(&format!("name=\"for_organisation\" value=\"{}\"", w.org_a)));
        let csrf = csrf_from(&drawn_for_a);
        let res = cio
            .post(
                "/account/organisations",
                &[("csrf_token", &csrf), ("place", &places[0].0.to_string())],
            )
            .await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        let before = crate::browser::snapshot(&app).await;
        let res = cio
            .post(
                "/organisation/users/invite",
                &[
                    ("csrf_token", csrf.as_str()),
                    ("for_organisation", &w.org_a.to_string()),
                    ("email", "stale.tab@a.nhs.uk"),
                    ("name", "Stale Tab"),
                    ("role", "org_contributor"),
                ],
            )
            .await;
        assert_eq!(res.status(), StatusCode::CONFLICT, "[{backend}]");
        assert!(res
            .text()
            .await
            .unwrap()
            .contains("You switched organisation after this page was shown"));
        assert_eq!(
            crate::browser::snapshot(&app).await,
            before,
            "[{backend}] nothing invited"
        );
        // The same form drawn for B works.
        let drawn_for_b = cio.text("/organisation/users").await;
        assert!(drawn_for_b.contains("Beta Hospitals"));
        let res = cio
            .post(
                "/organisation/users/invite",
                &[
                    ("csrf_token", csrf.as_str()),
                    ("for_organisation", &b.to_string()),
                    ("email", "fresh.tab@b.nhs.uk"),
                    ("name", "Fresh Tab"),
                    ("role", "org_contributor"),
                ],
            )
            .await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "[{backend}]");
    }
}

/// Eight invitations of one existing account to one organisation at once, on PostgreSQL: one
/// membership, one "added" email; the rest change nothing.
#[tokio::test]
async fn parallel_invitations_of_one_account_add_one_membership() {
    if !backends().contains(&dma::db::Backend::Postgres) {
        return;
    }
    let app = TestApp::spawn(dma::db::Backend::Postgres).await;
    let w = World::seed(&app).await;
    let b = org_b(&app).await;
    let approver_b = Browser::new(&app);
    approver_b.sign_in("approver@b.nhs.uk", PASSWORD).await;
    let csrf = csrf_from(&approver_b.text("/organisation/users").await);
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(8));
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (client, url, csrf, barrier) = (
            approver_b.client.clone(),
            approver_b.url("/organisation/users/invite"),
            csrf.clone(),
            barrier.clone(),
        );
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            client
                .post(url)
                .form(&[
                    ("csrf_token", csrf.as_str()),
                    ("email", "contributor@a.nhs.uk"),
                    ("name", "Casey"),
                    ("role", "org_contributor"),
                ])
                .send()
                .await
                .unwrap()
                .status()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), StatusCode::SEE_OTHER);
    }
    let places = memberships_of(&app, w.contributor_a).await;
    assert_eq!(places.len(), 1, "{places:?}");
    assert_eq!(places[0].1, b);
    let mail = outbox(&app).await;
    assert_eq!(
        mail.iter()
            .filter(|(k, _, _)| k == "membership_added")
            .count(),
        1
    );
}
