//! Completing an assessment through the pages, as two colleagues at one trust would.

use std::collections::BTreeMap;

use dma::services::auth::roles::Role;
use reqwest::StatusCode;

use crate::helpers::{backends, csrf_from, Site, TestApp};

pub(crate) const PASSWORD: &str = "correct horse battery staple";

pub(crate) fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// The form values a person would choose for an answer in the spec's JSON form.
pub(crate) fn form_values(value: &serde_json::Value) -> Vec<String> {
    match value {
        serde_json::Value::Bool(true) => vec!["yes".into()],
        serde_json::Value::Bool(false) => vec!["no".into()],
        serde_json::Value::Number(n) => vec![n.to_string()],
        serde_json::Value::String(s) => vec![s.clone()],
        serde_json::Value::Array(items) if items.is_empty() => vec!["__none__".into()],
        serde_json::Value::Array(items) => items
            .iter()
            .filter_map(|i| i.as_str().map(str::to_string))
            .collect(),
        serde_json::Value::Object(_) => vec!["__na__".into()],
        serde_json::Value::Null => vec![],
    }
}

/// `(name, value)` of every hidden input whose name starts with `prefix`, leaving out the
/// disabled ones (a question hidden by its condition), which a browser does not send.
pub(crate) fn hidden_inputs(html: &str, prefix: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let marker = format!("name=\"{prefix}");
    for part in html.split(&marker).skip(1) {
        if part
            .split('>')
            .next()
            .is_some_and(|tag| tag.contains(" disabled"))
        {
            continue;
        }
        let name: String = part.chars().take_while(|c| *c != '"').collect();
        let value = part
            .split("value=\"")
            .nth(1)
            .map(|v| v.chars().take_while(|c| *c != '"').collect())
            .unwrap_or_default();
        out.push((format!("{prefix}{name}"), value));
    }
    out
}

pub(crate) struct Person {
    pub(crate) client: reqwest::Client,
}

impl Person {
    pub(crate) async fn sign_in(app: &impl Site, email: &str) -> Person {
        let client = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let form = client
            .get(app.url("/login"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let res = client
            .post(app.url("/login"))
            .form(&[
                ("email", email),
                ("password", PASSWORD),
                ("csrf_token", &csrf_from(&form)),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(
            res.status(),
            StatusCode::SEE_OTHER,
            "{email} could not sign in"
        );
        Person { client }
    }

    pub(crate) async fn get(&self, app: &impl Site, path: &str) -> reqwest::Response {
        self.client.get(app.url(path)).send().await.unwrap()
    }

    pub(crate) async fn post(
        &self,
        app: &impl Site,
        path: &str,
        fields: &[(String, String)],
    ) -> reqwest::Response {
        self.client
            .post(app.url(path))
            .form(fields)
            .send()
            .await
            .unwrap()
    }

    /// Answer every question shown on a domain page from `answers`, repeating while saving
    /// reveals new questions (as happens with conditions and JavaScript off).
    pub(crate) async fn complete_domain(
        &self,
        app: &impl Site,
        base: &str,
        domain: &str,
        answers: &BTreeMap<String, serde_json::Value>,
    ) {
        for _ in 0..3 {
            let html = self
                .get(app, &format!("{base}/domains/{domain}"))
                .await
                .text()
                .await
                .unwrap();
            let mut fields = vec![
                ("csrf_token".to_string(), csrf_from(&html)),
                ("action".into(), "continue".into()),
            ];
            fields.extend(hidden_inputs(&html, "present."));
            fields.extend(hidden_inputs(&html, "rev."));
            for (name, _) in hidden_inputs(&html, "present.") {
                let key = name.trim_start_matches("present.");
                if let Some(v) = answers.get(key) {
                    fields.extend(form_values(v).into_iter().map(|x| (format!("q.{key}"), x)));
                }
            }
            let res = self
                .post(app, &format!("{base}/domains/{domain}"), &fields)
                .await;
            assert_eq!(
                res.status(),
                StatusCode::SEE_OTHER,
                "saving {domain}: {}",
                res.text().await.unwrap()
            );
            let location = res.headers()["location"].to_str().unwrap().to_string();
            if !location.contains(&format!("/domains/{domain}?saved")) {
                return;
            }
        }
    }
}

async fn organisation_id(app: &TestApp, code: &'static str) -> i64 {
    use diesel::prelude::*;
    app.db
        .read(move |conn| {
            use dma::db::schema::organisations as o;
            Ok(o::table
                .filter(o::ods_code.eq(code))
                .select(o::id)
                .first::<i64>(conn)?)
        })
        .await
        .unwrap()
}

#[tokio::test]
async fn two_colleagues_complete_the_example_and_the_stored_scores_equal_dma_score() {
    let answers_file: serde_yaml::Value =
        serde_yaml::from_str(&fixture("answers-wgll-acute-complete.yaml")).unwrap();
    let answers: BTreeMap<String, serde_json::Value> =
        serde_json::from_value(serde_json::to_value(&answers_file["answers"]).unwrap()).unwrap();
    let expected: serde_json::Value =
        serde_json::from_str(&fixture("answers-wgll-acute-complete.expected.json")).unwrap();
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        dma::services::registry::import_demo(&app.db).await.unwrap();
        let definition = fixture("wgll-acute-2025.yaml").into_bytes();
        let version_id = app
            .db
            .write(move |conn| {
                Ok(dma::services::questionnaires::import(
                    conn,
                    &dma::services::audit::Actor::system("test"),
                    &definition,
                    true,
                )
                .map_err(dma::error::AppError::from)?
                .id)
            })
            .await
            .unwrap();
        let trust = organisation_id(&app, "RZ1").await;
        let other_trust = organisation_id(&app, "RZ2").await;
        app.create_user("admin@example.nhs.uk", Role::Administrator, None, PASSWORD)
            .await;
        app.create_user(
            "contributor@rz1.example.nhs.uk",
            Role::OrgContributor,
            Some(trust),
            PASSWORD,
        )
        .await;
        app.create_user(
            "approver@rz1.example.nhs.uk",
            Role::OrgApprover,
            Some(trust),
            PASSWORD,
        )
        .await;
        app.create_user(
            "approver@rz2.example.nhs.uk",
            Role::OrgApprover,
            Some(other_trust),
            PASSWORD,
        )
        .await;

        // The administrator opens the cycle for acute trusts.
        let admin = Person::sign_in(&app, "admin@example.nhs.uk").await;
        let csrf = csrf_from(&admin.get(&app, "/admin/cycles").await.text().await.unwrap());
        let bad = admin
            .post(
                &app,
                "/admin/cycles",
                &[
                    ("csrf_token".into(), csrf.clone()),
                    ("label".into(), "2025-26".into()),
                    ("opens_on".into(), "2025-10-01".into()),
                    ("deadline".into(), "2025-09-01".into()),
                    ("version-acute".into(), version_id.to_string()),
                ],
            )
            .await;
        assert_eq!(
            bad.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "[{backend}]"
        );
        let html = bad.text().await.unwrap();
        assert!(
            html.contains("like 2025/26") && html.contains("on or after the opening date"),
            "{html}"
        );
        let today = chrono::Utc::now().date_naive();
        let res = admin
            .post(
                &app,
                "/admin/cycles",
                &[
                    ("csrf_token".into(), csrf),
                    ("label".into(), "2025/26".into()),
                    (
                        "opens_on".into(),
                        (today - chrono::Duration::days(30)).to_string(),
                    ),
                    (
                        "deadline".into(),
                        (today + chrono::Duration::days(30)).to_string(),
                    ),
                    ("version-acute".into(), version_id.to_string()),
                ],
            )
            .await;
        assert_eq!(
            res.status(),
            StatusCode::SEE_OTHER,
            "[{backend}] {}",
            res.text().await.unwrap()
        );

        // The contributor finds the assessment on the dashboard.
        let contributor = Person::sign_in(&app, "contributor@rz1.example.nhs.uk").await;
        let dashboard = contributor
            .get(&app, "/dashboard")
            .await
            .text()
            .await
            .unwrap();
        let start = dashboard
            .find("href=\"/assessments/")
            .expect("assessment on dashboard")
            + 6;
        let base: String = dashboard[start..]
            .chars()
            .take_while(|c| *c != '"')
            .collect();
        assert!(dashboard.contains("Not started"));

        // Someone from another trust sees nothing of it.
        let outsider = Person::sign_in(&app, "approver@rz2.example.nhs.uk").await;
        for path in ["", "/domains/strategy", "/review", "/results", "/submit"] {
            assert_eq!(
                outsider.get(&app, &format!("{base}{path}")).await.status(),
                StatusCode::FORBIDDEN,
                "[{backend}] outsider read {path}"
            );
        }

        let approver = Person::sign_in(&app, "approver@rz1.example.nhs.uk").await;
        let domains = [
            "strategy",
            "governance",
            "infrastructure",
            "cyber",
            "workforce",
            "citizens",
            "clinical-care",
            "population-health",
        ];
        for d in &domains[..4] {
            contributor.complete_domain(&app, &base, d, &answers).await;
        }

        // A stale edit: both open the workforce page; the contributor saves first.
        let stale = approver
            .get(&app, &format!("{base}/domains/workforce"))
            .await
            .text()
            .await
            .unwrap();
        contributor
            .complete_domain(&app, &base, "workforce", &answers)
            .await;
        let mut fields = vec![("csrf_token".to_string(), csrf_from(&stale))];
        fields.extend(hidden_inputs(&stale, "present."));
        fields.extend(hidden_inputs(&stale, "rev."));
        fields.push(("q.spp-skills".into(), "2".into()));
        fields.push(("q.spp-login-time".into(), "25".into()));
        let res = approver
            .post(&app, &format!("{base}/domains/workforce"), &fields)
            .await;
        assert_eq!(
            res.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "[{backend}] stale edit accepted"
        );
        let html = res.text().await.unwrap();
        // Both answers in words, with the question's text; the approver keeps theirs.
        assert!(
            html.contains("Test Person changed the answer to &ldquo;")
                && html.contains("Not applicable to our organisation</dd>")
                && html.contains("Keep my answer"),
            "{html}"
        );
        assert!(
            !html.contains("{&quot;na&quot;:true}"),
            "a stored value is shown"
        );
        let mut fields = vec![("csrf_token".to_string(), csrf_from(&html))];
        fields.extend(hidden_inputs(&html, "present."));
        fields.extend(hidden_inputs(&html, "rev."));
        fields.extend(hidden_inputs(&html, "mine."));
        fields.push(("keep".into(), "spp-skills".into()));
        let res = approver
            .post(&app, &format!("{base}/domains/workforce"), &fields)
            .await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "[{backend}] keep mine");
        contributor
            .complete_domain(&app, &base, "workforce", &answers)
            .await;

        // Not complete yet: the approver cannot submit, and the review lists what is missing.
        let review = approver
            .get(&app, &format!("{base}/review"))
            .await
            .text()
            .await
            .unwrap();
        assert!(
            review.contains("Which services can patients use"),
            "missing question not listed"
        );
        for d in &domains[5..] {
            approver.complete_domain(&app, &base, d, &answers).await;
        }
        let review = approver
            .get(&app, &format!("{base}/review"))
            .await
            .text()
            .await
            .unwrap();
        assert!(
            review.contains("Every required question is answered"),
            "{review}"
        );
        // Check your answers lists every question with its answer in words and a change link.
        assert!(
            review.contains(
                "dma-summary-list__key\">Which best describes your electronic patient record?</dt>"
            ) && review.contains("An EPR in some departments</dd>")
                && review.contains("#q-sf-epr-group\">Change"),
            "{review}"
        );

        // Only the approver signs off; the declaration is required.
        assert_eq!(
            contributor
                .get(&app, &format!("{base}/submit"))
                .await
                .status(),
            StatusCode::FORBIDDEN
        );
        let form = approver
            .get(&app, &format!("{base}/submit"))
            .await
            .text()
            .await
            .unwrap();
        assert!(
            form.contains("An EPR in some departments</dd>"),
            "the sign-off page does not show the answers"
        );
        let csrf = csrf_from(&form);
        let res = approver
            .post(
                &app,
                &format!("{base}/submit"),
                &[
                    ("csrf_token".into(), csrf.clone()),
                    ("name".into(), "Priya Shah".into()),
                    ("job_title".into(), "".into()),
                ],
            )
            .await;
        assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let html = res.text().await.unwrap();
        assert!(html.contains("Enter their job title") && html.contains("Confirm the declaration"));
        let res = approver
            .post(
                &app,
                &format!("{base}/submit"),
                &[
                    ("csrf_token".into(), csrf.clone()),
                    ("name".into(), "Priya Shah".into()),
                    ("job_title".into(), "Chief Information Officer".into()),
                    ("declaration".into(), "yes".into()),
                ],
            )
            .await;
        assert_eq!(
            res.status(),
            StatusCode::SEE_OTHER,
            "[{backend}] {}",
            res.text().await.unwrap()
        );
        let confirmation = approver
            .get(&app, &format!("{base}/confirmation"))
            .await
            .text()
            .await
            .unwrap();
        assert!(confirmation.contains("DMA-202526-"), "no reference");

        // The stored scores are exactly what `dma score` gives for the same answers.
        let id: i64 = base.trim_start_matches("/assessments/").parse().unwrap();
        let (_, _, stored) = app
            .db
            .read(move |conn| dma::services::assessments::current_scores(conn, id))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            dma::domain::scoring::cli_json(&stored),
            expected,
            "[{backend}] stored scores differ"
        );
        let results = contributor
            .get(&app, &format!("{base}/results"))
            .await
            .text()
            .await
            .unwrap();
        assert!(
            results.contains("<svg class=\"dma-chart dma-chart--radar\""),
            "no radar chart: {}",
            &results[..results.len().min(3000)]
        );
        assert!(results.contains("Overall: 3.2"), "overall score not shown");
        // The path to the next band: a suggestion for the domains below the top band.
        assert!(
            results.contains("How to reach the next band") && results.contains("To reach <strong>"),
            "no path to the next band"
        );
        // The workings show the answer given and its raw score.
        assert!(
            results.contains("An EPR in some departments</td><td class=\"dma-table__cell dma-table__cell--numeric\">50</td>"),
            "{results}"
        );
        // An error page shows who is signed in, not "Sign in".
        let missing = contributor.get(&app, "/no/such/page").await;
        assert_eq!(missing.status(), StatusCode::NOT_FOUND);
        let missing = missing.text().await.unwrap();
        assert!(missing.contains("Sign out") && !missing.contains(">Sign in</a>"));

        // Submitted means read-only.
        let html = contributor
            .get(&app, &format!("{base}/domains/strategy"))
            .await
            .text()
            .await
            .unwrap();
        assert!(html.contains("read-only"));
        let mut fields = vec![("csrf_token".to_string(), csrf_from(&html))];
        fields.extend(hidden_inputs(&html, "present."));
        let res = contributor
            .post(&app, &format!("{base}/domains/strategy"), &fields)
            .await;
        assert!(
            res.status() == StatusCode::CONFLICT || res.status() == StatusCode::SEE_OTHER,
            "{}",
            res.status()
        );
        let (_, _, still) = app
            .db
            .read(move |conn| dma::services::assessments::current_scores(conn, id))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(still, stored);

        // An administrator reopens it with a reason; resubmission keeps the earlier scores.
        // Without a reason: the overview again with an error summary, not an error page.
        let page = admin.get(&app, &base).await.text().await.unwrap();
        let res = admin
            .post(
                &app,
                &format!("{base}/reopen"),
                &[
                    ("csrf_token".into(), csrf_from(&page)),
                    ("reason".into(), " ".into()),
                ],
            )
            .await;
        assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let refused = res.text().await.unwrap();
        assert!(
            refused.contains("There is a problem")
                && refused.contains("href=\"#reason\">Give the reason for reopening")
                && refused.contains("Reason for reopening")
                && !refused.contains("reason: "),
            "{refused}"
        );
        let res = admin
            .post(
                &app,
                &format!("{base}/reopen"),
                &[
                    ("csrf_token".into(), csrf_from(&page)),
                    ("reason".into(), "Cyber answer corrected".into()),
                ],
            )
            .await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "[{backend}]");
        let res = approver
            .post(
                &app,
                &format!("{base}/submit"),
                &[
                    ("csrf_token".into(), csrf),
                    ("name".into(), "Priya Shah".into()),
                    ("job_title".into(), "CIO".into()),
                    ("declaration".into(), "yes".into()),
                ],
            )
            .await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        let sets: i64 = app
            .db
            .read(move |conn| {
                use diesel::prelude::*;
                use dma::db::schema::score_sets;
                Ok(score_sets::table
                    .filter(score_sets::assessment_id.eq(id))
                    .count()
                    .get_result(conn)?)
            })
            .await
            .unwrap();
        assert_eq!(sets, 2, "[{backend}] earlier scores not kept");
        let history = approver
            .get(&app, &format!("{base}/questions/spp-skills/history"))
            .await
            .text()
            .await
            .unwrap();
        assert!(
            history.contains("Test Person"),
            "answer history lacks who changed it"
        );
        // In words: the level's label and "not applicable", not stored values.
        assert!(
            history.contains("Not applicable to our organisation</td>")
                && history.contains("2: ")
                && !history.contains("{&quot;na&quot;:true}"),
            "{history}"
        );
    }
}

pub(crate) fn answers_of(file: &str) -> BTreeMap<String, serde_json::Value> {
    let doc: serde_yaml::Value = serde_yaml::from_str(&fixture(file)).unwrap();
    serde_json::from_value(serde_json::to_value(&doc["answers"]).unwrap()).unwrap()
}

#[tokio::test]
async fn next_year_carries_forward_unchanged_answers_and_late_submissions_are_marked() {
    use dma::services::assessments::{self, Change, SignOff};
    use dma::services::cycles::{self, NewCycle};
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        dma::services::registry::import_demo(&app.db).await.unwrap();
        let trust = organisation_id(&app, "RZ1").await;
        let approver = app
            .create_user(
                "approver@rz1.example.nhs.uk",
                Role::OrgApprover,
                Some(trust),
                PASSWORD,
            )
            .await;
        let actor = dma::services::audit::Actor {
            user_id: Some(approver),
            label: "approver".into(),
            ip: None,
        };
        let v2025 = fixture("wgll-acute-2025.yaml");
        // The next version rescores one question (the offline backups weight goes from 2 to 3).
        let v2026 = v2025
            .replace("version: \"2025.1\"", "version: \"2026.1\"")
            .replace(
                "        weight: 2\n  - key: workforce",
                "        weight: 3\n  - key: workforce",
            );
        assert!(
            v2026.contains("weight: 3"),
            "the second version must rescore a question"
        );
        let raw = answers_of("answers-wgll-acute-complete.yaml");
        let expected_carried = raw.len() - 1;
        let a = actor.clone();
        let notifier = app.notifier.clone();
        let (first, late_flag) = app
            .db
            .write(move |conn| {
                let system = dma::services::audit::Actor::system("test");
                let id =
                    dma::services::questionnaires::import(conn, &system, v2025.as_bytes(), true)
                        .map_err(dma::error::AppError::from)?
                        .id;
                let date = |s: &str| chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
                cycles::open(
                    conn,
                    &system,
                    &NewCycle {
                        label: "2024/25".into(),
                        opens_on: date("2024-10-01"),
                        deadline: date("2025-01-31"),
                        versions: [("acute".into(), id)].into(),
                    },
                    &notifier,
                )?;
                let assessment: i64 = {
                    use diesel::prelude::*;
                    use dma::db::schema::assessments as t;
                    t::table
                        .filter(t::organisation_id.eq(trust))
                        .select(t::id)
                        .first(conn)?
                };
                let loaded = assessments::load(conn, assessment)?;
                let given = dma::domain::answers::validate(loaded.questionnaire(), &raw).unwrap();
                let changes: Vec<Change> = given
                    .into_iter()
                    .map(|(key, answer)| Change {
                        key,
                        answer: Some(answer),
                        seen_revision: 0,
                    })
                    .collect();
                assessments::save(conn, &a, assessment, &changes)?;
                let done = assessments::submit(
                    conn,
                    &a,
                    assessment,
                    &SignOff {
                        name: "P".into(),
                        job_title: "CIO".into(),
                        declaration: true,
                    },
                    &notifier,
                )?;
                // The deadline passed long ago: an extension cannot be earlier than the cycle's.
                Ok((assessment, done.late))
            })
            .await
            .unwrap();
        assert!(
            late_flag,
            "[{backend}] a submission after the deadline is not marked late"
        );

        let a = actor.clone();
        let notifier = app.notifier.clone();
        let (carried, confirmed_left, extension) = app
            .db
            .write(move |conn| {
                use diesel::prelude::*;
                use dma::db::schema::{answers as ans, assessments as t};
                let system = dma::services::audit::Actor::system("test");
                let id =
                    dma::services::questionnaires::import(conn, &system, v2026.as_bytes(), true)
                        .map_err(dma::error::AppError::from)?
                        .id;
                let today = chrono::Utc::now().date_naive();
                let opened = cycles::open(
                    conn,
                    &system,
                    &NewCycle {
                        label: "2026/27".into(),
                        opens_on: today,
                        deadline: today + chrono::Duration::days(90),
                        versions: [("acute".into(), id)].into(),
                    },
                    &notifier,
                )?;
                let next: i64 = t::table
                    .filter(t::organisation_id.eq(trust))
                    .filter(t::cycle_id.eq(opened.id))
                    .select(t::id)
                    .first(conn)?;
                let loaded = assessments::load(conn, next)?;
                let carried: Vec<String> = loaded
                    .answers
                    .iter()
                    .filter(|(_, s)| s.carried_forward)
                    .map(|(k, _)| k.clone())
                    .collect();
                // Confirming an answer (saving it unchanged) clears the mark.
                let keep = loaded.answers["wl-strategy"].clone();
                assessments::save(
                    conn,
                    &a,
                    next,
                    &[Change {
                        key: "wl-strategy".into(),
                        answer: Some(keep.answer),
                        seen_revision: keep.revision,
                    }],
                )?;
                let left: i64 = ans::table
                    .filter(ans::assessment_id.eq(next))
                    .filter(ans::carried_forward.eq(true))
                    .count()
                    .get_result(conn)?;
                let too_early = assessments::extend_deadline(conn, &system, next, today);
                assessments::extend_deadline(
                    conn,
                    &system,
                    next,
                    today + chrono::Duration::days(120),
                )?;
                let deadline = assessments::load(conn, next)?.deadline;
                Ok((
                    carried,
                    left,
                    (
                        too_early.is_err(),
                        deadline == today + chrono::Duration::days(120),
                    ),
                ))
            })
            .await
            .unwrap();
        let _ = first;
        assert!(
            !carried.contains(&"sp-offline-backups".to_string()),
            "[{backend}] a rescored answer was carried forward"
        );
        assert_eq!(
            carried.len(),
            expected_carried,
            "[{backend}] carried {carried:?}"
        );
        assert_eq!(
            confirmed_left as usize,
            carried.len() - 1,
            "confirmation did not clear the mark"
        );
        assert_eq!(extension, (true, true), "[{backend}] deadline extension");
    }
}
