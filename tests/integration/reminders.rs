//! Lifecycle and scheduled email: "cycle opened", reminders at each offset before the deadline,
//! the overdue notice, the submission receipt and the score report. Passes run at chosen
//! moments (as `dma reminders run --now` does), messages are delivered over real SMTP to the
//! loopback server of `mail.rs`, and every kind goes out at most once per organisation and
//! cycle however often, and however concurrently, the scheduler runs.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use dma::db::schema::email_outbox;
use dma::services::auth::roles::Role;
use dma::services::mail::{self, Transport};
use dma::services::notifications::{self, Notifier, PassReport};

use crate::assessment_flow::answers_of;
use crate::helpers::backends;
use crate::mail::{read_message, smtp_settings, world, MailWorld, SmtpServer};

fn at(text: &str) -> NaiveDateTime {
    notifications::parse_now(text).unwrap()
}

fn date(text: &str) -> NaiveDate {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
}

/// Two trusts, an approver and a contributor each (plus a deactivated approver who must get
/// nothing), the example question set and a cycle from 1 April to 30 June 2030.
struct Scene {
    notifier: Notifier,
    cycle: i64,
    /// Organisation code -> assessment id.
    assessments: BTreeMap<&'static str, i64>,
}

async fn scene(w: &MailWorld) -> Scene {
    dma::services::registry::import_file(&w.db, crate::browser::REGISTRY.as_bytes().to_vec(), None)
        .await
        .unwrap();
    let notifier = Notifier::new(&w.templates, &w.settings);
    let n = notifier.clone();
    let (cycle, assessments) =
        w.db.write(move |conn| {
            use dma::db::schema::assessments as a;
            let actor = dma::services::audit::Actor::system("test");
            let people = [
                ("ada@alpha.nhs.uk", Role::OrgApprover, "RA1", true),
                ("cy@alpha.nhs.uk", Role::OrgContributor, "RA1", true),
                ("gone@alpha.nhs.uk", Role::OrgApprover, "RA1", false),
                ("bea@beta.nhs.uk", Role::OrgApprover, "RB1", true),
                ("dee@beta.nhs.uk", Role::OrgContributor, "RB1", true),
            ];
            for (email, role, code, active) in people {
                let org = crate::browser::organisation_id(conn, code);
                let email = dma::services::auth::users::EmailAddress::parse(email).unwrap();
                let user = dma::services::auth::users::create(
                    conn,
                    &actor,
                    dma::services::auth::users::NewUser {
                        email: &email,
                        name: "Person",
                        role,
                        organisation_id: Some(org),
                        group_organisation_id: None,
                        group_region: None,
                    },
                )?;
                if !active {
                    diesel::update(dma::db::schema::users::table.find(user.id))
                        .set(dma::db::schema::users::active.eq(false))
                        .execute(conn)?;
                }
            }
            let source = crate::assessment_flow::fixture("wgll-acute-2025.yaml");
            let version =
                dma::services::questionnaires::import(conn, &actor, source.as_bytes(), true)
                    .map_err(dma::error::AppError::from)?;
            let opened = dma::services::cycles::open(
                conn,
                &actor,
                &dma::services::cycles::NewCycle {
                    label: "2030/31".into(),
                    opens_on: date("2030-04-01"),
                    deadline: date("2030-06-30"),
                    versions: [("acute".to_string(), version.id)].into(),
                },
                &n,
            )?;
            let mut ids = BTreeMap::new();
            for code in ["RA1", "RB1"] {
                let org = crate::browser::organisation_id(conn, code);
                let id: i64 = a::table
                    .filter(a::cycle_id.eq(opened.id))
                    .filter(a::organisation_id.eq(org))
                    .select(a::id)
                    .first(conn)?;
                ids.insert(code, id);
            }
            Ok((opened.id, ids))
        })
        .await
        .unwrap();
    Scene {
        notifier,
        cycle,
        assessments,
    }
}

async fn pass(w: &MailWorld, s: &Scene, now: &str) -> PassReport {
    notifications::run_pass(&w.db, &s.notifier, at(now))
        .await
        .unwrap()
}

/// Complete and submit an assessment as its approver, queueing the receipt.
async fn submit(w: &MailWorld, s: &Scene, code: &'static str) {
    let id = s.assessments[code];
    let notifier = s.notifier.clone();
    let raw = answers_of("answers-wgll-acute-complete.yaml");
    w.db.write(move |conn| {
        let approver: i64 = dma::db::schema::users::table
            .filter(dma::db::schema::users::email.eq("bea@beta.nhs.uk"))
            .select(dma::db::schema::users::id)
            .first(conn)?;
        let actor = dma::services::audit::Actor {
            user_id: Some(approver),
            label: "approver".into(),
            ip: None,
        };
        let loaded = dma::services::assessments::load(conn, id)?;
        let given = dma::domain::answers::validate(loaded.questionnaire(), &raw).unwrap();
        let changes: Vec<_> = given
            .into_iter()
            .map(|(key, answer)| dma::services::assessments::Change {
                key,
                answer: Some(answer),
                seen_revision: 0,
            })
            .collect();
        dma::services::assessments::save(conn, &actor, id, &changes)?;
        dma::services::assessments::submit(
            conn,
            &actor,
            id,
            &dma::services::assessments::SignOff {
                name: "Bea Approver".into(),
                job_title: "Chief Information Officer".into(),
                declaration: true,
            },
            &notifier,
        )?;
        Ok(())
    })
    .await
    .unwrap();
}

/// (kind, recipient, dedupe key) of every queued message, in order.
async fn queued(w: &MailWorld) -> Vec<(String, String, String)> {
    w.db.read(|conn| {
        Ok(email_outbox::table
            .order(email_outbox::id)
            .select((
                email_outbox::kind,
                email_outbox::recipient,
                email_outbox::dedupe_key,
            ))
            .load::<(String, String, Option<String>)>(conn)?
            .into_iter()
            .map(|(k, r, d)| (k, r, d.unwrap_or_default()))
            .collect())
    })
    .await
    .unwrap()
}

fn report(cycle_opened: usize, reminders: usize, overdue: usize, scores: usize) -> PassReport {
    PassReport {
        cycle_opened,
        reminders,
        overdue,
        score_reports: scores,
        section_reminders: 0,
        digests: 0,
    }
}

#[tokio::test]
async fn each_reminder_goes_out_once_only_to_organisations_that_have_not_submitted() {
    for backend in backends() {
        let w = world(backend).await;
        let s = scene(&w).await;
        assert!(
            queued(&w).await.is_empty(),
            "[{backend}] a cycle opening in the future is announced on its opening day"
        );
        assert_eq!(pass(&w, &s, "2030-03-31").await, PassReport::default());
        // Opening day: each organisation's active approver hears, nobody else.
        assert_eq!(pass(&w, &s, "2030-04-01T06:00").await, report(2, 0, 0, 0));
        assert_eq!(
            pass(&w, &s, "2030-04-01T06:15").await,
            PassReport::default()
        );
        // 28 days before: approvers and contributors of both trusts.
        assert_eq!(pass(&w, &s, "2030-06-02").await, report(0, 4, 0, 0));
        assert_eq!(pass(&w, &s, "2030-06-03").await, PassReport::default());

        submit(&w, &s, "RB1").await;
        let receipts: Vec<_> = queued(&w)
            .await
            .into_iter()
            .filter(|(k, _, _)| k == "submission_receipt")
            .collect();
        assert_eq!(receipts.len(), 1, "[{backend}] {receipts:?}");
        assert_eq!(receipts[0].1, "bea@beta.nhs.uk");

        // 14 days before: only the trust that has not submitted.
        assert_eq!(pass(&w, &s, "2030-06-16").await, report(0, 2, 0, 0));
        // The scheduler was down for the 7-day date: only the latest reminder goes out.
        assert_eq!(pass(&w, &s, "2030-06-29T12:00").await, report(0, 2, 0, 0));
        // After the deadline: the overdue notice to Alpha, the score report to Beta, and
        // two instances running the same pass at once queue each message once.
        let (x, y) = tokio::join!(
            pass(&w, &s, "2030-07-01T08:00"),
            pass(&w, &s, "2030-07-01T08:00")
        );
        assert_eq!(
            (x.overdue + y.overdue, x.score_reports + y.score_reports),
            (2, 1),
            "[{backend}] {x:?} {y:?}"
        );
        assert_eq!(pass(&w, &s, "2030-07-02").await, PassReport::default());

        let rows = queued(&w).await;
        let keys_for = |who: &str| -> Vec<String> {
            rows.iter()
                .filter(|(_, r, _)| r == who)
                .map(|(_, _, k)| k.rsplit(':').next().unwrap_or_default().to_string())
                .collect()
        };
        let cycle = s.cycle;
        assert!(
            rows.iter().all(|(_, r, _)| r != "gone@alpha.nhs.uk"),
            "[{backend}] a deactivated account gets nothing"
        );
        assert!(rows.iter().any(|(k, r, d)| k == "cycle_opened"
            && r == "ada@alpha.nhs.uk"
            && d.starts_with(&format!("cycle_opened:{cycle}:"))));
        let ada: Vec<String> = rows
            .iter()
            .filter(|(k, r, _)| k == "reminder" && r == "ada@alpha.nhs.uk")
            .map(|(_, _, d)| d.rsplit(':').next().unwrap_or_default().to_string())
            .collect();
        assert_eq!(ada, ["28", "14", "2", "overdue"], "[{backend}]");
        assert_eq!(keys_for("cy@alpha.nhs.uk"), ["28", "14", "2", "overdue"]);
        assert_eq!(
            rows.iter()
                .filter(|(_, r, _)| r == "dee@beta.nhs.uk")
                .count(),
            1,
            "[{backend}] Beta's contributor had the 28-day reminder only"
        );
        let bea: Vec<&str> = rows
            .iter()
            .filter(|(_, r, _)| r == "bea@beta.nhs.uk")
            .map(|(k, _, _)| k.as_str())
            .collect();
        assert_eq!(
            bea,
            [
                "cycle_opened",
                "reminder",
                "submission_receipt",
                "score_report"
            ],
            "[{backend}]"
        );

        // Deliver everything over SMTP and read what arrived.
        let server = SmtpServer::start(0, Arc::default()).await;
        let settings = smtp_settings(&w.settings.mail, server.port());
        let transport = Transport::from_settings(&settings).unwrap();
        let sent = mail::send_pending_at(&w.db, &transport, &settings, at("2030-07-02T09:00"))
            .await
            .unwrap();
        assert_eq!(sent.sent as usize, rows.len(), "[{backend}] {sent:?}");
        let delivered = server.messages();
        assert_eq!(delivered.len(), rows.len());
        let find = |to: &str, subject_has: &str| {
            delivered
                .iter()
                .map(|m| (m, read_message(&m.data)))
                .find(|(m, (head, _, _))| {
                    m.rcpt_to.iter().any(|r| r.contains(to))
                        && head.header("subject").contains(subject_has)
                })
                .map(|(_, parts)| parts)
                .unwrap_or_else(|| {
                    let seen: Vec<_> = delivered
                        .iter()
                        .map(|m| {
                            (
                                &m.rcpt_to,
                                read_message(&m.data).0.header("subject").to_string(),
                            )
                        })
                        .collect();
                    panic!("[{backend}] no message to {to} about {subject_has}: {seen:#?}")
                })
        };
        let alpha = s.assessments["RA1"];
        let beta = s.assessments["RB1"];
        // The 2-day reminder went out a day late (the scheduler was down): it says 1 day.
        let (_, text, html) = find("ada@alpha.nhs.uk", "due in 1 day");
        assert!(text.contains("due on 30 June 2030, in 1 day."), "{text}");
        assert!(text.contains(&format!("/assessments/{alpha}")), "{text}");
        assert!(html.contains(&format!("/assessments/{alpha}\"")), "{html}");
        let (_, text, _) = find("cy@alpha.nhs.uk", "Overdue");
        assert!(text.contains("was due on 30 June 2030"), "{text}");
        let (_, text, html) = find("bea@beta.nhs.uk", "Submitted");
        assert!(text.contains("Signed off by: Bea Approver, Chief Information Officer"));
        assert!(text.contains("Scores: overall "), "{text}");
        assert!(html.contains("Overall score:"), "{html}");
        let (_, text, _) = find("bea@beta.nhs.uk", "scores");
        assert!(text.contains("Overall: "), "{text}");
        assert!(
            text.contains(&format!("/assessments/{beta}/results")),
            "{text}"
        );
        server.stop().await;
    }
}

#[tokio::test]
async fn the_scheduler_in_serve_queues_due_reminders_at_start() {
    for backend in backends() {
        let w = world(backend).await;
        dma::services::registry::import_file(
            &w.db,
            crate::browser::REGISTRY.as_bytes().to_vec(),
            None,
        )
        .await
        .unwrap();
        let notifier = Notifier::new(&w.templates, &w.settings);
        let today = chrono::Utc::now().date_naive();
        w.db.write(move |conn| {
            let actor = dma::services::audit::Actor::system("test");
            let org = crate::browser::organisation_id(conn, "RA1");
            let email =
                dma::services::auth::users::EmailAddress::parse("ada@alpha.nhs.uk").unwrap();
            dma::services::auth::users::create(
                conn,
                &actor,
                dma::services::auth::users::NewUser {
                    email: &email,
                    name: "Ada",
                    role: Role::OrgContributor,
                    organisation_id: Some(org),
                    group_organisation_id: None,
                    group_region: None,
                },
            )?;
            let source = crate::assessment_flow::fixture("wgll-acute-2025.yaml");
            let version =
                dma::services::questionnaires::import(conn, &actor, source.as_bytes(), true)
                    .map_err(dma::error::AppError::from)?;
            dma::services::cycles::open(
                conn,
                &actor,
                &dma::services::cycles::NewCycle {
                    label: "2030/31".into(),
                    opens_on: today - chrono::Duration::days(60),
                    deadline: today + chrono::Duration::days(5),
                    versions: [("acute".to_string(), version.id)].into(),
                },
                &notifier,
            )?;
            Ok(())
        })
        .await
        .unwrap();
        assert!(queued(&w).await.is_empty());
        let app = dma::web::Application::build_with_db(w.settings.clone(), w.db.clone())
            .await
            .unwrap();
        let running = tokio::spawn(app.run_until_stopped());
        let mut rows = Vec::new();
        for _ in 0..100 {
            rows = queued(&w).await;
            if !rows.is_empty() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        running.abort();
        assert_eq!(rows.len(), 1, "[{backend}] {rows:?}");
        assert_eq!(rows[0].0, "reminder");
        assert!(rows[0].2.ends_with(":7"), "[{backend}] {rows:?}");
    }
}

/// At scale: a seeded cycle of 500 trusts (more messages of each kind than one batch holds),
/// two instances running the pass at once and then a third pass. Every approver of an
/// organisation that has not submitted has "cycle opened" exactly once, and every approver and
/// contributor the reminder due exactly once; the passes' counts add up to the rows.
#[tokio::test]
async fn passes_over_many_organisations_queue_each_message_exactly_once() {
    use dma::db::schema::{assessments, cycles, users};
    for backend in backends() {
        let test_db = crate::helpers::TestDb::new(backend);
        let dir = tempfile::tempdir().unwrap();
        let out = crate::seed::run_seed(&test_db, dir.path(), &["--orgs", "500", "--cycles", "1"]);
        assert!(
            out.status.success(),
            "[{backend}] {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let settings = crate::helpers::test_settings(&test_db, dir.path());
        let db = settings.open_database().await.unwrap();
        let templates = dma::templates::Templates::load(None).unwrap();
        let notifier = Notifier::new(&templates, &settings);

        // What is due, worked out here from the rows: the day before the cycle's deadline.
        let mut conn = test_db.connect();
        let (cycle, opens_on, deadline): (i64, NaiveDate, NaiveDate) = cycles::table
            .filter(cycles::status.eq("open"))
            .select((cycles::id, cycles::opens_on, cycles::deadline))
            .first(&mut conn)
            .unwrap();
        let now = (deadline - chrono::Days::new(1))
            .and_hms_opt(9, 0, 0)
            .unwrap();
        let open: Vec<(i64, String, Option<NaiveDate>)> = assessments::table
            .filter(assessments::cycle_id.eq(cycle))
            .select((
                assessments::organisation_id,
                assessments::status,
                assessments::deadline_override,
            ))
            .load(&mut conn)
            .unwrap();
        let people: Vec<(Option<i64>, String, String)> = users::table
            .filter(users::active.eq(true))
            .select((users::organisation_id, users::email, users::role))
            .load(&mut conn)
            .unwrap();
        let mut expected = Vec::new();
        for (org, status, over) in &open {
            if status == "submitted" {
                continue;
            }
            let due = notifications::due_reminder(
                opens_on,
                over.unwrap_or(deadline),
                now.date(),
                &settings.mail.reminder_days,
            );
            for (_, email, role) in people.iter().filter(|p| p.0 == Some(*org)) {
                if role == "org_approver" {
                    expected.push(("cycle_opened".to_string(), *org, email.clone(), None));
                }
                if let (Some(due), true) =
                    (due, role == "org_approver" || role == "org_contributor")
                {
                    let part = match due {
                        notifications::Reminder::DaysBefore(d) => d.to_string(),
                        notifications::Reminder::Overdue => "overdue".to_string(),
                    };
                    expected.push(("reminder".to_string(), *org, email.clone(), Some(part)));
                }
            }
        }
        expected.sort();
        let reminders = expected.iter().filter(|e| e.0 == "reminder").count();
        assert!(
            reminders > mail::BATCH,
            "[{backend}] {reminders} reminders do not span batches"
        );

        let (x, y) = tokio::join!(
            notifications::run_pass(&db, &notifier, now),
            notifications::run_pass(&db, &notifier, now)
        );
        let (x, y) = (x.unwrap(), y.unwrap());
        let again = notifications::run_pass(&db, &notifier, now).await.unwrap();
        assert_eq!(again, PassReport::default(), "[{backend}]");

        let rows: Vec<(String, String, Option<String>)> = email_outbox::table
            .select((
                email_outbox::kind,
                email_outbox::recipient,
                email_outbox::dedupe_key,
            ))
            .load(&mut conn)
            .unwrap();
        assert_eq!(x.total() + y.total(), rows.len(), "[{backend}] {x:?} {y:?}");
        let mut got: Vec<(String, i64, String, Option<String>)> = rows
            .into_iter()
            .map(|(kind, to, key)| {
                let key = key.unwrap();
                let parts: Vec<&str> = key.split(':').collect();
                assert_eq!(parts[1], cycle.to_string(), "[{backend}] {key}");
                let org: i64 = parts[2].parse().unwrap();
                let part = (kind == "reminder").then(|| parts[4].to_string());
                (kind, org, to, part)
            })
            .collect();
        got.sort();
        assert_eq!(got.len(), expected.len(), "[{backend}]");
        assert!(
            got == expected,
            "[{backend}] the messages differ from those due"
        );
    }
}
