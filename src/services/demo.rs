//! Demo data for trying the service on the embedded database: the demo registry (with an ICB
//! merger), the example question set published, an open 2025/26 cycle for acute trusts, and one
//! account per role. Loaded only on
//! request (`dma serve --demo` or `dma demo load`) and only into a database with no accounts,
//! so it can never mix with real data. The accounts share a documented password (README).

use diesel::prelude::*;
use serde::Serialize;

use crate::config::Settings;
use crate::db::schema::{organisations, users as users_table};
use crate::db::Db;
use crate::error::AppError;
use crate::services::audit::Actor;
use crate::services::auth::roles::Role;
use crate::services::auth::{password, users};
use crate::services::notifications::Notifier;
use crate::templates::Templates;

pub const DEMO_PASSWORD: &str = "demo passphrase not for production";
const QUESTION_SET: &[u8] = include_bytes!("../../demo/wgll-acute-2025.yaml");

/// (email, name, role, organisation ODS code)
const ACCOUNTS: &[(&str, &str, Role, Option<&str>)] = &[
    ("admin@dma.example", "Alex Admin", Role::Administrator, None),
    ("auditor@dma.example", "Ade Auditor", Role::Auditor, None),
    (
        "approver@northfield.dma.example",
        "Priya Approver",
        Role::OrgApprover,
        Some("RZ1"),
    ),
    (
        "contributor@northfield.dma.example",
        "Chris Contributor",
        Role::OrgContributor,
        Some("RZ1"),
    ),
    // With the two above, a trust of five people, to share the sections out among
    // (docs/collaboration.md).
    (
        "infrastructure@northfield.dma.example",
        "Sam Okafor",
        Role::OrgContributor,
        Some("RZ1"),
    ),
    (
        "cyber@northfield.dma.example",
        "Jo Lindqvist",
        Role::OrgContributor,
        Some("RZ1"),
    ),
    (
        "clinical@northfield.dma.example",
        "Mo Haddad",
        Role::OrgContributor,
        Some("RZ1"),
    ),
    // A CIO covering two trusts: approver at Thameside, and (below) at Dales Valley too.
    (
        "cio@thameside.dma.example",
        "Robin Achebe",
        Role::OrgApprover,
        Some("RZ6"),
    ),
];

/// Memberships of a second organisation (email, ODS code, role there), for the switcher
/// (docs/collaboration.md, "People in several organisations").
const MEMBERSHIPS: &[(&str, &str, Role)] =
    &[("cio@thameside.dma.example", "RZ4", Role::OrgApprover)];

#[derive(Debug, Serialize)]
pub struct DemoSummary {
    pub loaded: bool,
    pub accounts: Vec<&'static str>,
}

/// Load the demo data unless the database already has accounts.
pub async fn load_if_empty(db: &Db, settings: &Settings) -> Result<DemoSummary, anyhow::Error> {
    let templates = Templates::load(settings.mail.templates_dir.as_deref())?;
    let notifier = Notifier::new(&templates, settings);
    let existing: i64 = db
        .read(|conn| Ok(users_table::table.count().get_result(conn)?))
        .await?;
    if existing > 0 {
        return Ok(DemoSummary {
            loaded: false,
            accounts: Vec::new(),
        });
    }
    crate::services::registry::import_demo(db)
        .await
        .map_err(|e| anyhow::anyhow!("demo registry: {e:?}"))?;
    let hash = password::hash_bounded(DEMO_PASSWORD.to_string()).await?;
    db.write(move |conn| {
        let actor = Actor::system("demo");
        let version = crate::services::questionnaires::import(conn, &actor, QUESTION_SET, true)
            .map_err(AppError::from)?;
        // An open cycle, so the demo respondents have an assessment to complete.
        let today = chrono::Utc::now().date_naive();
        crate::services::cycles::open(
            conn,
            &actor,
            &crate::services::cycles::NewCycle {
                label: "2025/26".into(),
                opens_on: today - chrono::Duration::days(14),
                deadline: today + chrono::Duration::days(60),
                versions: [("acute".to_string(), version.id)].into_iter().collect(),
            },
            &notifier,
        )?;
        for (email, name, role, ods) in ACCOUNTS {
            let organisation_id = match ods {
                Some(code) => Some(
                    organisations::table
                        .filter(organisations::ods_code.eq(*code))
                        .select(organisations::id)
                        .first::<i64>(conn)?,
                ),
                None => None,
            };
            let email = users::EmailAddress::parse(email).map_err(AppError::BadRequest)?;
            let user = users::create(
                conn,
                &actor,
                users::NewUser {
                    email: &email,
                    name,
                    role: *role,
                    organisation_id,
                    group_organisation_id: None,
                    group_region: None,
                },
            )?;
            users::set_password_hash(conn, &actor, user.id, &hash)?;
        }
        for (email, code, role) in MEMBERSHIPS {
            let user = users::find_by_email(conn, email)?
                .ok_or_else(|| AppError::BadRequest(format!("no demo account {email}")))?;
            let organisation: i64 = organisations::table
                .filter(organisations::ods_code.eq(*code))
                .select(organisations::id)
                .first(conn)?;
            crate::services::memberships::add(conn, &actor, &user, organisation, *role)?;
        }
        Ok(())
    })
    .await?;
    Ok(DemoSummary {
        loaded: true,
        accounts: ACCOUNTS.iter().map(|a| a.0).collect(),
    })
}
