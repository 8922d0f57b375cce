//! Several people at once against one test app: each [`Browser`] has its own cookie jar, and
//! [`World`] seeds two organisations in one ICB, one account per role (with organisation
//! roles in both organisations) and an open assessment, for tests of who may do what.

use diesel::prelude::*;
use dma::db::DbConnection;
use dma::services::auth::roles::Role;
use reqwest::StatusCode;

use crate::helpers::{csrf_from, TestApp};

pub const PASSWORD: &str = "correct horse battery staple";

pub const REGISTRY: &str =
    "ods_code,name,settings,region,parent_icb,parent_from,opened_on,closed_on
QZ1,Test Integrated Care Board,,London,,,2022-07-01,
RA1,Alpha Hospitals NHS Trust,acute,London,QZ1,,2000-04-01,
RB1,Beta Hospitals NHS Trust,acute,North West,QZ1,,2000-04-01,
";

/// A person's browser: its own cookies, no automatic redirects.
pub struct Browser {
    pub client: reqwest::Client,
    pub base: String,
}

impl Browser {
    pub fn new(app: &TestApp) -> Browser {
        Browser {
            client: reqwest::Client::builder()
                .cookie_store(true)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: app.address.clone(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }

    pub async fn text(&self, path: &str) -> String {
        self.get(path).await.text().await.unwrap()
    }

    pub async fn post(&self, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .form(fields)
            .send()
            .await
            .unwrap()
    }

    pub async fn post_multipart(
        &self,
        path: &str,
        csrf: &str,
        file: Vec<u8>,
        file_name: &str,
    ) -> reqwest::Response {
        let form = reqwest::multipart::Form::new()
            .text("csrf_token", csrf.to_string())
            .part(
                "file",
                reqwest::multipart::Part::bytes(file).file_name(file_name.to_string()),
            );
        self.client
            .post(self.url(path))
            .multipart(form)
            .send()
            .await
            .unwrap()
    }

    /// Sign in through the form; panics if refused.
    pub async fn sign_in(&self, email: &str, password: &str) {
        let form = self.text("/login").await;
        let res = self
            .post(
                "/login",
                &[
                    ("email", email),
                    ("password", password),
                    ("csrf_token", &csrf_from(&form)),
                ],
            )
            .await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "sign in as {email}");
    }

    /// The session's CSRF token (from the dashboard's sign-out form).
    pub async fn csrf(&self) -> String {
        csrf_from(&self.text("/dashboard").await)
    }
}

/// Two trusts (A and B) in one ICB, an account per role, and an open assessment for each trust.
pub struct World {
    pub org_a: i64,
    pub admin: i64,
    pub approver_a: i64,
    pub contributor_a: i64,
    pub approver_b: i64,
    pub contributor_b: i64,
    pub assessment_a: i64,
    pub domain_key: String,
    pub question_key: String,
    pub questionnaire_key: String,
    pub questionnaire_version: String,
}

pub fn organisation_id(conn: &mut DbConnection, code: &str) -> i64 {
    use dma::db::schema::organisations as o;
    o::table
        .filter(o::ods_code.eq(code))
        .select(o::id)
        .first(conn)
        .unwrap()
}

pub async fn seed_registry(app: &TestApp) {
    dma::services::registry::import_file(&app.db, REGISTRY.as_bytes().to_vec(), None)
        .await
        .unwrap();
}

impl World {
    pub async fn seed(app: &TestApp) -> World {
        seed_registry(app).await;
        let (org_a, org_b) = app
            .db
            .read(|conn| Ok((organisation_id(conn, "RA1"), organisation_id(conn, "RB1"))))
            .await
            .unwrap();
        let admin = app
            .create_user("admin@example.nhs.uk", Role::Administrator, None, PASSWORD)
            .await;
        app.create_user("auditor@example.nhs.uk", Role::Auditor, None, PASSWORD)
            .await;
        app.create_user("viewer@example.nhs.uk", Role::GroupViewer, None, PASSWORD)
            .await;
        let approver_a = app
            .create_user(
                "approver@a.nhs.uk",
                Role::OrgApprover,
                Some(org_a),
                PASSWORD,
            )
            .await;
        let contributor_a = app
            .create_user(
                "contributor@a.nhs.uk",
                Role::OrgContributor,
                Some(org_a),
                PASSWORD,
            )
            .await;
        let approver_b = app
            .create_user(
                "approver@b.nhs.uk",
                Role::OrgApprover,
                Some(org_b),
                PASSWORD,
            )
            .await;
        let contributor_b = app
            .create_user(
                "contributor@b.nhs.uk",
                Role::OrgContributor,
                Some(org_b),
                PASSWORD,
            )
            .await;
        let source = std::fs::read(format!(
            "{}/tests/fixtures/wgll-acute-2025.yaml",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        let notifier = app.notifier.clone();
        let (assessment_a, key, version) = app
            .db
            .write(move |conn| {
                use dma::db::schema::assessments as a;
                let actor = dma::services::audit::Actor::system("test");
                let imported = dma::services::questionnaires::import(conn, &actor, &source, true)
                    .map_err(|_| dma::error::AppError::BadRequest("fixture".into()))?;
                let today = chrono::Utc::now().date_naive();
                dma::services::cycles::open(
                    conn,
                    &actor,
                    &dma::services::cycles::NewCycle {
                        label: "2025/26".into(),
                        opens_on: today - chrono::Duration::days(1),
                        deadline: today + chrono::Duration::days(30),
                        versions: [("acute".to_string(), imported.id)].into_iter().collect(),
                    },
                    &notifier,
                )?;
                let id: i64 = a::table
                    .filter(a::organisation_id.eq(org_a))
                    .select(a::id)
                    .first(conn)?;
                Ok((id, imported.key, imported.version))
            })
            .await
            .unwrap();
        World {
            org_a,
            admin,
            approver_a,
            contributor_a,
            approver_b,
            contributor_b,
            assessment_a,
            domain_key: "strategy".into(),
            question_key: "wl-strategy".into(),
            questionnaire_key: key,
            questionnaire_version: version,
        }
    }
}

/// Everything a refused request must leave alone, as text to compare before and after:
/// every row of the tables people change through the pages (sessions and sign-in attempts
/// aside, which signing in itself writes).
pub async fn snapshot(app: &TestApp) -> String {
    app.db
        .read(|conn| {
            use dma::db::schema::*;
            let mut out = String::new();
            let users: Vec<(i64, String, String, Option<i64>, bool, bool)> = users::table
                .order(users::id)
                .select((
                    users::id,
                    users::email,
                    users::role,
                    users::organisation_id,
                    users::active,
                    users::password_hash.is_not_null(),
                ))
                .load(conn)?;
            out.push_str(&format!("users {users:?}\n"));
            type Org = (
                i64,
                String,
                String,
                String,
                Option<String>,
                Option<chrono::NaiveDate>,
            );
            let orgs: Vec<Org> = organisations::table
                .order(organisations::id)
                .select((
                    organisations::id,
                    organisations::ods_code,
                    organisations::name,
                    organisations::kind,
                    organisations::region,
                    organisations::closed_on,
                ))
                .load(conn)?;
            out.push_str(&format!("organisations {orgs:?}\n"));
            let tokens: Vec<(i64, bool)> = api_tokens::table
                .order(api_tokens::id)
                .select((api_tokens::id, api_tokens::revoked_at.is_not_null()))
                .load(conn)?;
            out.push_str(&format!("api_tokens {tokens:?}\n"));
            let assessments: Vec<(i64, String, i64, Option<chrono::NaiveDate>)> =
                assessments::table
                    .order(assessments::id)
                    .select((
                        assessments::id,
                        assessments::status,
                        assessments::revision,
                        assessments::deadline_override,
                    ))
                    .load(conn)?;
            out.push_str(&format!("assessments {assessments:?}\n"));
            let versions: Vec<(i64, String)> = questionnaire_versions::table
                .order(questionnaire_versions::id)
                .select((questionnaire_versions::id, questionnaire_versions::status))
                .load(conn)?;
            out.push_str(&format!("versions {versions:?}\n"));
            let cycles: Vec<(i64, String, bool)> = cycles::table
                .order(cycles::id)
                .select((cycles::id, cycles::status, cycles::closed_at.is_not_null()))
                .load(conn)?;
            out.push_str(&format!("cycles {cycles:?}\n"));
            for (name, n) in [
                ("answers", answers::table.count().get_result::<i64>(conn)?),
                (
                    "submissions",
                    submissions::table.count().get_result::<i64>(conn)?,
                ),
                (
                    "one_time_tokens",
                    one_time_tokens::table.count().get_result::<i64>(conn)?,
                ),
                (
                    "email_outbox",
                    email_outbox::table.count().get_result::<i64>(conn)?,
                ),
                (
                    "audit_log",
                    audit_log::table.count().get_result::<i64>(conn)?,
                ),
                (
                    "section_assignments",
                    section_assignments::table.count().get_result::<i64>(conn)?,
                ),
                (
                    "question_notes",
                    question_notes::table.count().get_result::<i64>(conn)?,
                ),
                (
                    "section_statuses",
                    section_statuses::table.count().get_result::<i64>(conn)?,
                ),
                ("evidence", evidence::table.count().get_result::<i64>(conn)?),
                (
                    "evidence_blob_chunks",
                    evidence_blob_chunks::table
                        .count()
                        .get_result::<i64>(conn)?,
                ),
                (
                    "review_sections",
                    review_sections::table.count().get_result::<i64>(conn)?,
                ),
                (
                    "review_queries",
                    review_queries::table.count().get_result::<i64>(conn)?,
                ),
                (
                    "improvement_actions",
                    improvement_actions::table.count().get_result::<i64>(conn)?,
                ),
                (
                    "improvement_thresholds",
                    improvement_thresholds::table
                        .count()
                        .get_result::<i64>(conn)?,
                ),
                (
                    "organisation_parents",
                    organisation_parents::table
                        .count()
                        .get_result::<i64>(conn)?,
                ),
            ] {
                out.push_str(&format!("{name} {n}\n"));
            }
            Ok(out)
        })
        .await
        .unwrap()
}

/// The number of sessions an account has.
pub async fn sessions_of(app: &TestApp, user_id: i64) -> i64 {
    app.db
        .read(move |conn| {
            use dma::db::schema::sessions as s;
            Ok(s::table
                .filter(s::user_id.eq(user_id))
                .count()
                .get_result(conn)?)
        })
        .await
        .unwrap()
}

/// The emails in the outbox as (kind, recipient, text body), oldest first, leaving out the
/// "cycle opened" messages that opening the seeded cycle queues for its approvers.
/// The outbox's messages (kind, recipient, text body), bodies that carry a link opened with
/// the app's key as the worker would. Such a body is emptied once the app's worker has
/// delivered it; its text is then read from the delivered `.eml` files, the recipient's in
/// the order they were written.
pub async fn outbox(app: &TestApp) -> Vec<(String, String, String)> {
    // Rows first: a body emptied by then was written to its file before it was emptied, so a
    // file still being written belongs to a row read with its body, and is skipped here.
    let rows = sealed_outbox(app).await;
    let mut delivered: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    let mut files: Vec<(std::time::SystemTime, String)> = std::fs::read_dir(&app.mail_dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let modified = e.metadata().ok()?.modified().ok()?;
            Some((modified, std::fs::read_to_string(e.path()).ok()?))
        })
        .filter(|(_, raw)| crate::mail::is_whole_message(raw))
        .collect();
    files.sort_by_key(|(t, _)| *t);
    for (_, raw) in files {
        let (head, text, _) = crate::mail::read_message(&raw);
        delivered
            .entry(head.header("to").trim_matches(['<', '>']).to_string())
            .or_default()
            .push(text);
    }
    let mut taken: std::collections::BTreeMap<String, usize> = Default::default();
    rows.into_iter()
        .map(|(kind, to, body)| {
            if !body.is_empty() {
                return (kind, to, body);
            }
            let n = taken.entry(to.clone()).or_default();
            let text = delivered
                .get(&to)
                .and_then(|texts| texts.get(*n))
                .cloned()
                .unwrap_or_default();
            *n += 1;
            (kind, to, text)
        })
        .collect()
}

async fn sealed_outbox(app: &TestApp) -> Vec<(String, String, String)> {
    let rows: Vec<(String, String, String)> = app
        .db
        .read(|conn| {
            use dma::db::schema::email_outbox as e;
            Ok(e::table
                .filter(e::kind.ne("cycle_opened"))
                .order(e::id)
                .select((e::kind, e::recipient, e::body_text))
                .load(conn)?)
        })
        .await
        .unwrap();
    rows.into_iter()
        .map(|(kind, to, body)| {
            let body = app.sealing_key.open(&body, &to).expect("sealed body opens");
            (kind, to, body)
        })
        .collect()
}

/// The set-password link in an email body, as a path.
pub fn link_in(body: &str) -> String {
    let start = body
        .find("/account/set-password?token=")
        .expect("no set-password link in the email");
    body[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || "/-?=_".contains(*c))
        .collect()
}
