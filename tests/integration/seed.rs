//! `dma demo seed`: benchmark-scale data, checked for what the benchmark harness relies on
//! (counts, the open cycle's split by organisation index, accounts that sign in) and for
//! being the same data the product itself would have stored (answers valid for their
//! questions, score sets equal to the scoring core's result for the stored answers).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Output;

use diesel::prelude::*;
use dma::db::schema::{
    answers, assessments, audit_log, cycles, email_outbox, organisation_parents,
    organisation_settings, organisations, score_sets, scores, submissions, users,
};
use dma::db::{Backend, DbConnection};
use dma::domain::answers::{parse_value, Answers};
use dma::domain::{scoring, Questionnaire};
use dma::services::seed::BENCH_PASSWORD;
use reqwest::StatusCode;

use crate::cli::dma;
use crate::helpers::{backends, TestApp, TestDb};

const ORGS: usize = 40;

pub(crate) fn run_seed(db: &TestDb, dir: &Path, args: &[&str]) -> Output {
    dma()
        .current_dir(dir)
        .env("DATABASE_URL", db.url_string())
        .env("DMA_DATA_DIR", dir)
        .args(["demo", "seed"])
        .args(args)
        .output()
        .unwrap()
}

fn question_set() -> Questionnaire {
    let path = format!("{}/demo/wgll-acute-2025.yaml", env!("CARGO_MANIFEST_DIR"));
    dma::domain::load(&std::fs::read(path).unwrap()).unwrap()
}

/// The organisation index of a seeded code: B00001 is index 0.
fn index_of(code: &str) -> usize {
    code[1..].parse::<usize>().unwrap() - 1
}

/// The stored answers of an assessment, parsed as the product parses them, and the raw JSON.
fn stored_answers(
    conn: &mut DbConnection,
    q: &Questionnaire,
    assessment_id: i64,
) -> (Answers, BTreeMap<String, serde_json::Value>) {
    let rows: Vec<(String, String, i64)> = answers::table
        .filter(answers::assessment_id.eq(assessment_id))
        .select((answers::question_key, answers::value, answers::revision))
        .load(conn)
        .unwrap();
    let mut parsed = Answers::new();
    let mut raw = BTreeMap::new();
    for (key, value, revision) in rows {
        assert_eq!(revision, 1, "{key}");
        let question = q
            .question(&key)
            .unwrap_or_else(|| panic!("no question {key}"));
        let json: serde_json::Value = serde_json::from_str(&value).unwrap();
        let answer = parse_value(question, &json)
            .unwrap_or_else(|e| panic!("{key} = {value} is not valid: {e}"))
            .unwrap_or_else(|| panic!("{key} = {value} is not an answer"));
        parsed.insert(key.clone(), answer);
        raw.insert(key, json);
    }
    (parsed, raw)
}

/// Counts that a refused second seed must leave as they are.
fn fingerprint(conn: &mut DbConnection) -> [i64; 6] {
    [
        organisations::table.count().get_result(conn).unwrap(),
        users::table.count().get_result(conn).unwrap(),
        cycles::table.count().get_result(conn).unwrap(),
        assessments::table.count().get_result(conn).unwrap(),
        answers::table.count().get_result(conn).unwrap(),
        score_sets::table.count().get_result(conn).unwrap(),
    ]
}

fn assert_refused(out: &Output, needle: &str, backend: Backend) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "[{backend}] {stderr}");
    assert!(out.stdout.is_empty(), "[{backend}] printed a summary");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "[{backend}] not one line: {stderr}");
    assert!(lines[0].contains(needle), "[{backend}] {stderr}");
}

#[tokio::test]
async fn seed_fills_an_empty_database_with_what_the_benchmarks_rely_on() {
    let q = question_set();
    for backend in backends() {
        let db = TestDb::new(backend);
        let dir = tempfile::tempdir().unwrap();

        // Bad sizes are refused before anything is written.
        assert_refused(
            &run_seed(&db, dir.path(), &["--orgs", "0"]),
            "--orgs",
            backend,
        );
        assert_refused(
            &run_seed(&db, dir.path(), &["--orgs", "100001"]),
            "--orgs",
            backend,
        );
        assert_refused(
            &run_seed(&db, dir.path(), &["--orgs", "5", "--cycles", "11"]),
            "--cycles",
            backend,
        );

        let out = run_seed(&db, dir.path(), &["--orgs", "40", "--cycles", "2"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "[{backend}] {stderr}");
        assert!(
            stderr.contains("40/40 organisations, cycle 2/2 (100%)"),
            "[{backend}] no progress: {stderr}"
        );
        let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(summary["organisations"], ORGS, "[{backend}] {summary}");
        assert_eq!(summary["icbs"], 42);
        assert_eq!(summary["users"], 2 + 2 * ORGS);
        assert_eq!(summary["assessments"], 2 * ORGS);
        assert_eq!(summary["icb_moves"], 1, "[{backend}] {summary}");
        assert!(summary["seconds"].as_f64().unwrap() > 0.0);

        let mut conn = db.connect();
        let before = fingerprint(&mut conn);

        // The registry: 42 ICBs in 7 regions, then the assessed organisations in one ICB each.
        let kinds: Vec<(String, i64)> = organisations::table
            .group_by(organisations::kind)
            .select((organisations::kind, diesel::dsl::count_star()))
            .order(organisations::kind)
            .load(&mut conn)
            .unwrap();
        assert_eq!(
            kinds,
            [("icb".to_string(), 42), ("trust".to_string(), ORGS as i64)],
            "[{backend}]"
        );
        let regions: BTreeSet<Option<String>> = organisations::table
            .select(organisations::region)
            .load(&mut conn)
            .unwrap()
            .into_iter()
            .collect();
        assert_eq!(regions.len(), 7, "[{backend}] {regions:?}");
        let acute: i64 = organisation_settings::table
            .filter(organisation_settings::setting.eq("acute"))
            .count()
            .get_result(&mut conn)
            .unwrap();
        assert_eq!(acute, ORGS as i64);
        let current_parents: i64 = organisation_parents::table
            .filter(organisation_parents::valid_to.is_null())
            .count()
            .get_result(&mut conn)
            .unwrap();
        assert_eq!(current_parents, ORGS as i64, "[{backend}]");
        let all_parents: i64 = organisation_parents::table
            .count()
            .get_result(&mut conn)
            .unwrap();
        assert_eq!(all_parents, ORGS as i64 + 1, "[{backend}] one ICB move");

        // Accounts: all active, one shared hash of the bench password.
        type Account = (String, String, Option<i64>, Option<String>, bool);
        let accounts: Vec<Account> = users::table
            .select((
                users::email,
                users::role,
                users::organisation_id,
                users::password_hash,
                users::active,
            ))
            .load(&mut conn)
            .unwrap();
        assert_eq!(accounts.len(), 2 + 2 * ORGS);
        assert!(accounts.iter().all(|a| a.4), "[{backend}] inactive account");
        let hashes: BTreeSet<&Option<String>> = accounts.iter().map(|a| &a.3).collect();
        assert_eq!(
            hashes.len(),
            1,
            "[{backend}] the password was hashed more than once"
        );
        assert!(dma::services::auth::password::verify(
            BENCH_PASSWORD,
            accounts[0].3.as_deref()
        ));
        let role_of = |email: &str| {
            accounts
                .iter()
                .find(|a| a.0 == email)
                .map(|a| (a.1.clone(), a.2.is_some()))
                .unwrap_or_else(|| panic!("[{backend}] no account {email}"))
        };
        assert_eq!(
            role_of("admin@bench.dma.example"),
            (String::from("administrator"), false)
        );
        assert_eq!(
            role_of("auditor@bench.dma.example"),
            (String::from("auditor"), false)
        );
        assert_eq!(
            role_of("approver39@bench.dma.example"),
            (String::from("org_approver"), true)
        );
        assert_eq!(
            role_of("contributor0@bench.dma.example"),
            (String::from("org_contributor"), true)
        );
        let approver0_org: Option<i64> = users::table
            .filter(users::email.eq("approver0@bench.dma.example"))
            .select(users::organisation_id)
            .first(&mut conn)
            .unwrap();
        let b00001: i64 = organisations::table
            .filter(organisations::ods_code.eq("B00001"))
            .select(organisations::id)
            .first(&mut conn)
            .unwrap();
        assert_eq!(approver0_org, Some(b00001), "[{backend}]");

        // Two cycles: the first closed with its deadline past, the last open and due later.
        let today = chrono::Utc::now().date_naive();
        type Cycle = (i64, String, String, chrono::NaiveDate, chrono::NaiveDate);
        let all_cycles: Vec<Cycle> = cycles::table
            .order(cycles::opens_on)
            .select((
                cycles::id,
                cycles::label,
                cycles::status,
                cycles::opens_on,
                cycles::deadline,
            ))
            .load(&mut conn)
            .unwrap();
        assert_eq!(all_cycles.len(), 2);
        let (closed, open) = (&all_cycles[0], &all_cycles[1]);
        assert_eq!(closed.2, "closed");
        assert!(closed.4 < today);
        assert_eq!(open.2, "open");
        assert_eq!(open.3, today - chrono::Duration::days(30));
        assert_eq!(open.4, today + chrono::Duration::days(60));

        // Every assessment carries the ICB its organisation belonged to when the cycle opened.
        type Row = (i64, i64, String, i64, Option<i64>, Option<String>, String);
        let rows: Vec<Row> = assessments::table
            .inner_join(organisations::table.on(organisations::id.eq(assessments::organisation_id)))
            .select((
                assessments::id,
                assessments::cycle_id,
                assessments::status,
                assessments::organisation_id,
                assessments::icb_id,
                assessments::region,
                organisations::ods_code,
            ))
            .load(&mut conn)
            .unwrap();
        assert_eq!(rows.len(), 2 * ORGS);
        for (_, cycle_id, _, org, icb, region, _) in &rows {
            let opens = all_cycles.iter().find(|c| c.0 == *cycle_id).unwrap().3;
            assert_eq!(
                *icb,
                dma::services::registry::icb_on(&mut conn, *org, opens).unwrap(),
                "[{backend}]"
            );
            assert!(region.is_some());
        }
        let snapshots: BTreeSet<(i64, Option<i64>)> = rows.iter().map(|r| (r.3, r.4)).collect();
        assert_eq!(
            snapshots.len(),
            ORGS + 1,
            "[{backend}] the move is not visible"
        );

        // The open cycle's split by organisation index, which the harness relies on.
        let mut complete_example = None;
        for (id, cycle_id, status, _, _, _, code) in &rows {
            if *cycle_id != open.0 {
                continue;
            }
            let i = index_of(code);
            let (given, _) = stored_answers(&mut conn, &q, *id);
            let report = scoring::score(&q, &given);
            match i % 10 {
                0..=3 => assert_eq!(status, "submitted", "[{backend}] {code}"),
                4 | 5 => {
                    assert_eq!(status, "in_progress", "[{backend}] {code}");
                    assert!(report.complete, "[{backend}] {code} cannot be submitted");
                    complete_example.get_or_insert((*id, i));
                }
                6 | 7 => {
                    assert_eq!(status, "in_progress", "[{backend}] {code}");
                    assert!(!report.complete, "[{backend}] {code} is complete");
                    let visible = report.visible;
                    assert!(
                        !given.is_empty() && given.len() * 4 < visible * 3,
                        "[{backend}] {code}: {} of {visible} answered",
                        given.len()
                    );
                }
                _ => {
                    assert_eq!(status, "not_started", "[{backend}] {code}");
                    assert!(given.is_empty(), "[{backend}] {code} has answers");
                }
            }
        }
        let closed_submitted = rows
            .iter()
            .filter(|r| r.1 == closed.0 && r.2 == "submitted")
            .count();
        assert!(closed_submitted >= 30, "[{backend}] {closed_submitted}/40");

        // Each submitted assessment has one submission and one current score set, equal to
        // what the scoring core gives for its stored answers.
        let sets: Vec<(i64, i64, String, String, Option<f64>)> = score_sets::table
            .filter(score_sets::is_current.eq(true))
            .select((
                score_sets::id,
                score_sets::assessment_id,
                score_sets::report,
                score_sets::answers_snapshot,
                score_sets::overall_score,
            ))
            .load(&mut conn)
            .unwrap();
        let submitted: BTreeSet<i64> = rows
            .iter()
            .filter(|r| r.2 == "submitted")
            .map(|r| r.0)
            .collect();
        assert_eq!(
            sets.iter().map(|s| s.1).collect::<BTreeSet<_>>(),
            submitted,
            "[{backend}]"
        );
        let references: BTreeSet<String> = submissions::table
            .select(submissions::reference)
            .load(&mut conn)
            .unwrap()
            .into_iter()
            .collect();
        assert_eq!(references.len(), submitted.len());
        for (set_id, assessment_id, report, snapshot, overall) in &sets {
            let (given, raw) = stored_answers(&mut conn, &q, *assessment_id);
            let recomputed = scoring::score(&q, &given);
            let stored: serde_json::Value = serde_json::from_str(report).unwrap();
            assert_eq!(
                stored,
                serde_json::to_value(&recomputed).unwrap(),
                "[{backend}] score set {set_id}"
            );
            assert_eq!(*overall, recomputed.overall.score);
            let snapshot: BTreeMap<String, serde_json::Value> =
                serde_json::from_str(snapshot).unwrap();
            assert_eq!(snapshot, raw, "[{backend}] snapshot of {set_id}");
            let flat: Vec<(String, String, Option<f64>, i32)> = scores::table
                .filter(scores::score_set_id.eq(set_id))
                .select((
                    scores::level,
                    scores::item_key,
                    scores::score,
                    scores::counted,
                ))
                .load(&mut conn)
                .unwrap();
            assert_eq!(flat.len(), 1 + 7 + q.domains.len(), "[{backend}]");
            for domain in &recomputed.domains {
                let row = flat
                    .iter()
                    .find(|r| r.0 == "domain" && r.1 == domain.key)
                    .unwrap();
                assert_eq!((row.2, row.3 as usize), (domain.score, domain.counted));
            }
            let overall_row = flat.iter().find(|r| r.0 == "overall").unwrap();
            assert_eq!(overall_row.2, recomputed.overall.score);
        }

        // `dma score` agrees for a few of them.
        for (_, assessment_id, report, _, _) in sets.iter().take(3) {
            let (_, raw) = stored_answers(&mut conn, &q, *assessment_id);
            let file = dir.path().join(format!("answers-{assessment_id}.json"));
            std::fs::write(
                &file,
                serde_json::json!({"questionnaire": "wgll-acute", "version": "2025.1", "answers": raw})
                    .to_string(),
            )
            .unwrap();
            let out = dma()
                .args(["score", "--questionnaire"])
                .arg(format!(
                    "{}/demo/wgll-acute-2025.yaml",
                    env!("CARGO_MANIFEST_DIR")
                ))
                .arg("--answers")
                .arg(&file)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let printed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            let stored: scoring::Assessment = serde_json::from_str(report).unwrap();
            assert_eq!(printed, scoring::cli_json(&stored), "[{backend}]");
        }

        // No email queued; one audit entry records the seed.
        let queued: i64 = email_outbox::table.count().get_result(&mut conn).unwrap();
        assert_eq!(queued, 0, "[{backend}] the seed queued email");
        let seeded: i64 = audit_log::table
            .filter(audit_log::action.eq("demo.seed"))
            .count()
            .get_result(&mut conn)
            .unwrap();
        assert_eq!(seeded, 1);

        // A second seed is refused and changes nothing.
        let again = run_seed(&db, dir.path(), &["--orgs", "40", "--cycles", "2"]);
        assert_refused(&again, "refusing to seed", backend);
        assert_eq!(fingerprint(&mut conn), before, "[{backend}]");
        drop(conn);

        // Seeded accounts sign in, and a complete in-progress assessment can be submitted.
        let app = TestApp::spawn_on(db).await;
        for email in ["auditor@bench.dma.example", "approver4@bench.dma.example"] {
            let res = app.sign_in(email, BENCH_PASSWORD).await;
            assert_eq!(res.status(), StatusCode::SEE_OTHER, "[{backend}] {email}");
            assert_eq!(res.headers()["location"], "/dashboard");
            app.client
                .post(app.url("/logout"))
                .form(&[("csrf_token", app.session_csrf().await)])
                .send()
                .await
                .unwrap();
        }
        let (assessment_id, i) = complete_example.expect("no complete assessment");
        let notifier = app.notifier.clone();
        let submitted = app
            .db
            .write(move |conn| {
                let approver = dma::services::auth::users::find_by_email(
                    conn,
                    &format!("approver{i}@bench.dma.example"),
                )?
                .unwrap();
                let actor = dma::services::audit::Actor {
                    user_id: Some(approver.id),
                    label: approver.email,
                    ip: None,
                };
                dma::services::assessments::submit(
                    conn,
                    &actor,
                    assessment_id,
                    &dma::services::assessments::SignOff {
                        name: approver.name,
                        job_title: "Chief Digital Information Officer".into(),
                        declaration: true,
                    },
                    &notifier,
                )
            })
            .await;
        assert!(submitted.is_ok(), "[{backend}] {submitted:?}");
    }
}

#[test]
fn the_same_seed_gives_the_same_answers() {
    let answers_of = |seed: &str| {
        let db = TestDb::new(Backend::Sqlite);
        let dir = tempfile::tempdir().unwrap();
        let out = run_seed(
            &db,
            dir.path(),
            &["--orgs", "30", "--cycles", "2", "--seed", seed],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut conn = db.connect();
        let rows: Vec<(String, String, String, String)> = answers::table
            .inner_join(assessments::table.inner_join(cycles::table))
            .inner_join(organisations::table.on(organisations::id.eq(assessments::organisation_id)))
            .select((
                cycles::label,
                organisations::ods_code,
                answers::question_key,
                answers::value,
            ))
            .load(&mut conn)
            .unwrap();
        rows.into_iter().collect::<BTreeSet<_>>()
    };
    let first = answers_of("7");
    assert!(first.len() > 300, "{}", first.len());
    assert_eq!(
        first,
        answers_of("7"),
        "the same seed gave different answers"
    );
    assert_ne!(first, answers_of("8"), "another seed gave the same answers");
}
