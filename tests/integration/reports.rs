//! The reports: two cycles (2024/25 on version 2025.1 of the example question set, 2025/26 on
//! 2026.1, which weighs one cyber security question differently, so that domain is not
//! comparable), six acute trusts in two ICBs of one region and one elsewhere, each answering
//! differently. The figures on the pages and in the exports are checked against sums done
//! here from the raw answers; who may see what is checked for pages and exports alike.

use std::collections::BTreeMap;

use diesel::prelude::*;
use dma::domain::answers::{parse_value, Answers};
use dma::domain::Questionnaire;
use dma::services::auth::roles::Role;
use reqwest::StatusCode;
use serde_json::Value;

use crate::browser::{organisation_id, Browser, PASSWORD};
use crate::helpers::{backends, TestApp};

const REGION: &str = "North East and Yorkshire";
const REGION_Q: &str = "North%20East%20and%20Yorkshire";

const REGISTRY: &str = "ods_code,name,settings,region,parent_icb,parent_from,opened_on,closed_on
QA1,Alpha Integrated Care Board,,North East and Yorkshire,,,2022-07-01,
QB1,Beta Integrated Care Board,,North East and Yorkshire,,,2022-07-01,
QC1,Gamma Integrated Care Board,,London,,,2022-07-01,
RA1,Aardvark Hospitals NHS Trust,acute,North East and Yorkshire,QA1,,2000-04-01,
RA2,Albatross Hospitals NHS Trust,acute,North East and Yorkshire,QA1,,2000-04-01,
RA3,Anteater Hospitals NHS Trust,acute,North East and Yorkshire,QA1,,2000-04-01,
RB1,Badger Hospitals NHS Trust,acute,North East and Yorkshire,QB1,,2000-04-01,
RB2,Bison Hospitals NHS Trust,acute,North East and Yorkshire,QB1,,2000-04-01,
RC1,Cheetah Hospitals NHS Trust,acute,London,QC1,,2000-04-01,
";

const TRUSTS: [&str; 6] = ["RA1", "RA2", "RA3", "RB1", "RB2", "RC1"];

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// Version 2026.1: the same as 2025.1 except that offline backups weigh 3, not 2.
fn second_version() -> String {
    let first = fixture("wgll-acute-2025.yaml");
    let second = first
        .replace("version: \"2025.1\"", "version: \"2026.1\"")
        .replace(
        "text: Are immutable or offline backups tested at least every quarter?\n        weight: 2",
        "text: Are immutable or offline backups tested at least every quarter?\n        weight: 3",
    );
    assert!(second.contains("weight: 3") && second.contains("2026.1"));
    second
}

const DSPT: [&str; 4] = ["not-met", "approaching", "met", "exceeded"];

/// Trust `i`'s answers in cycle `c` (0 or 1): the complete example, varied.
fn answers_for(i: usize, c: usize) -> BTreeMap<String, Value> {
    let file: serde_yaml::Value =
        serde_yaml::from_str(&fixture("answers-wgll-acute-complete.yaml")).unwrap();
    let mut a: BTreeMap<String, Value> =
        serde_json::from_value(serde_json::to_value(&file["answers"]).unwrap()).unwrap();
    a.insert("wl-strategy".into(), Value::from(1 + (i + 2 * c) % 5));
    a.insert("sp-mfa".into(), Value::Bool((i + c) % 2 == 0));
    a.insert("sp-dspt".into(), Value::from(DSPT[(i + 3 * c) % 4]));
    a.insert(
        "sp-offline-backups".into(),
        Value::Bool((i * 7 + c) % 3 != 0),
    );
    a.insert(
        "ic-remote-monitoring".into(),
        Value::from(1 + (2 * i + c) % 5),
    );
    a
}

fn parsed(q: &Questionnaire, raw: &BTreeMap<String, Value>) -> Answers {
    raw.iter()
        .map(|(k, v)| {
            (
                k.clone(),
                parse_value(q.question(k).unwrap(), v).unwrap().unwrap(),
            )
        })
        .collect()
}

/// The domain score the pure core gives these answers.
fn scored(q: &Questionnaire, raw: &BTreeMap<String, Value>, domain: &str) -> f64 {
    dma::domain::scoring::score(q, &parsed(q, raw))
        .domains
        .iter()
        .find(|d| d.key == domain)
        .unwrap()
        .score
        .unwrap()
}

/// Cyber security worked out by hand from the raw answers (format section 4): MFA (yes/no,
/// weight 1), DSPT (single, scores 0..3, weight 1), offline backups (yes/no, weight `w`).
fn cyber_by_hand(raw: &BTreeMap<String, Value>, backups_weight: f64) -> f64 {
    let mfa = if raw["sp-mfa"] == Value::Bool(true) {
        1.0
    } else {
        0.0
    };
    let dspt = DSPT.iter().position(|k| raw["sp-dspt"] == *k).unwrap() as f64 / 3.0;
    let backups = if raw["sp-offline-backups"] == Value::Bool(true) {
        1.0
    } else {
        0.0
    };
    1.0 + 4.0 * (mfa + dspt + backups_weight * backups) / (2.0 + backups_weight)
}

/// Cyber security over the questions scored the same way in both versions (MFA and DSPT).
fn cyber_like_for_like(raw: &BTreeMap<String, Value>) -> f64 {
    cyber_by_hand(raw, 0.0)
}

fn mean(xs: &[f64]) -> f64 {
    let mut sorted = xs.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.iter().sum::<f64>() / sorted.len() as f64
}

fn close(a: f64, b: f64, what: &str) {
    assert!((a - b).abs() < 1e-9, "{what}: {a} != {b}");
}

/// The number in the first `data-value="..."` after `marker`.
fn value_after(html: &str, marker: &str) -> f64 {
    let start = html
        .find(marker)
        .unwrap_or_else(|| panic!("{marker} is not on the page"));
    let rest = &html[start..];
    let at = rest.find("data-value=\"").unwrap() + "data-value=\"".len();
    rest[at..]
        .chars()
        .take_while(|c| *c != '"')
        .collect::<String>()
        .parse()
        .unwrap()
}

/// Every row of an XLSX export's worksheets, header rows included, with each cell in the
/// text the CSV export gives it: numbers in their shortest form, `true`/`false`, empty for
/// no value, and the CSV's leading `'` before text a spreadsheet would run as a formula
/// (XLSX cells are typed, so they need none).
fn xlsx_rows(bytes: Vec<u8>) -> Vec<(String, Vec<String>)> {
    use calamine::{Data, Reader, Xlsx};
    let mut book: Xlsx<_> = calamine::open_workbook_from_rs(std::io::Cursor::new(bytes)).unwrap();
    let mut out = Vec::new();
    for name in book.sheet_names() {
        let range = book.worksheet_range(&name).unwrap();
        assert_eq!(range.start(), Some((0, 0)), "{name} does not start at A1");
        for row in range.rows() {
            let cells = row
                .iter()
                .map(|c| match c {
                    Data::Empty => String::new(),
                    Data::Float(x) => format!("{x}"),
                    Data::Int(i) => i.to_string(),
                    Data::Bool(b) => b.to_string(),
                    Data::String(s) if s.starts_with(['=', '+', '-', '@', '\t', '\r']) => {
                        format!("'{s}")
                    }
                    Data::String(s) => s.clone(),
                    // A date-time cell (`submitted_at`) as the CSV writes it.
                    Data::DateTime(t) => {
                        let (y, mo, d, h, mi, s, _) = t.to_ymd_hms_milli();
                        format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
                    }
                    other => panic!("unexpected cell {other:?}"),
                })
                .collect();
            out.push((name.clone(), cells));
        }
    }
    out
}

/// A CSV export's text after the UTF-8 byte-order mark it starts with (for Excel).
fn without_bom(text: &str) -> &str {
    text.strip_prefix('\u{feff}')
        .expect("a CSV export starts with the UTF-8 byte-order mark")
}

/// Every line of a CSV export, header included.
fn csv_rows(text: &str) -> Vec<Vec<String>> {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(text.as_bytes())
        .records()
        .map(|r| r.unwrap().iter().map(String::from).collect())
        .collect()
}

/// The SVG chart labelled `id` on the page.
fn chart<'a>(html: &'a str, id: &str) -> &'a str {
    let start = html
        .find(&format!("aria-labelledby=\"{id}-title\""))
        .unwrap_or_else(|| panic!("no chart {id}"));
    let end = start + html[start..].find("</svg>").unwrap();
    &html[start..end]
}

struct World {
    v1: Questionnaire,
    v2: Questionnaire,
    orgs: BTreeMap<&'static str, i64>,
    /// (cycle index, trust code) -> answers submitted (or saved, for RA3 in 2025/26).
    answers: BTreeMap<(usize, &'static str), BTreeMap<String, Value>>,
}

async fn create_user(
    app: &TestApp,
    email: &str,
    role: Role,
    organisation_id: Option<i64>,
    group_organisation_id: Option<i64>,
) -> i64 {
    let hash = dma::services::auth::password::hash(PASSWORD).unwrap();
    let email = dma::services::auth::users::EmailAddress::parse(email).unwrap();
    app.db
        .write(move |conn| {
            let actor = dma::services::audit::Actor::system("test");
            let user = dma::services::auth::users::create(
                conn,
                &actor,
                dma::services::auth::users::NewUser {
                    email: &email,
                    name: "Report Reader",
                    role,
                    organisation_id,
                    group_organisation_id,
                    group_region: None,
                },
            )?;
            dma::services::auth::users::set_password_hash(conn, &actor, user.id, &hash)?;
            Ok(user.id)
        })
        .await
        .unwrap()
}

async fn answer(
    app: &TestApp,
    cycle: i64,
    org: i64,
    raw: BTreeMap<String, Value>,
    submit: bool,
    by: i64,
) {
    let notifier = app.notifier.clone();
    app.db
        .write(move |conn| {
            use dma::db::schema::assessments as a;
            let id: i64 = a::table
                .filter(a::cycle_id.eq(cycle))
                .filter(a::organisation_id.eq(org))
                .select(a::id)
                .first(conn)?;
            let loaded = dma::services::assessments::load(conn, id)?;
            let changes: Vec<dma::services::assessments::Change> = raw
                .iter()
                .map(|(k, v)| dma::services::assessments::Change {
                    key: k.clone(),
                    answer: parse_value(loaded.questionnaire().question(k).unwrap(), v).unwrap(),
                    seen_revision: loaded.answers.get(k).map_or(0, |s| s.revision),
                })
                .collect();
            let actor = dma::services::audit::Actor {
                user_id: Some(by),
                label: "approver".into(),
                ip: None,
            };
            let outcome = dma::services::assessments::save(conn, &actor, id, &changes)?;
            assert!(outcome.conflicts.is_empty());
            if submit {
                dma::services::assessments::submit(
                    conn,
                    &actor,
                    id,
                    &dma::services::assessments::SignOff {
                        name: "Sam Approver".into(),
                        job_title: "Chief Information Officer".into(),
                        declaration: true,
                    },
                    &notifier,
                )?;
            }
            Ok(())
        })
        .await
        .unwrap();
}

async fn open_cycle(
    app: &TestApp,
    label: &str,
    opens_on: chrono::NaiveDate,
    deadline: chrono::NaiveDate,
    version: i64,
) -> i64 {
    let label = label.to_string();
    let notifier = app.notifier.clone();
    app.db
        .write(move |conn| {
            Ok(dma::services::cycles::open(
                conn,
                &dma::services::audit::Actor::system("test"),
                &dma::services::cycles::NewCycle {
                    label,
                    opens_on,
                    deadline,
                    versions: [("acute".to_string(), version)].into_iter().collect(),
                },
                &notifier,
            )?
            .id)
        })
        .await
        .unwrap()
}

async fn seed(app: &TestApp) -> World {
    dma::services::registry::import_file(&app.db, REGISTRY.as_bytes().to_vec(), None)
        .await
        .unwrap();
    let orgs: BTreeMap<&'static str, i64> = app
        .db
        .read(|conn| {
            Ok(["QA1", "QB1", "QC1"]
                .into_iter()
                .chain(TRUSTS)
                .map(|code| (code, organisation_id(conn, code)))
                .collect())
        })
        .await
        .unwrap();
    let (v1_id, v2_id) = app
        .db
        .write(|conn| {
            let actor = dma::services::audit::Actor::system("test");
            let import = |conn: &mut dma::db::DbConnection, source: String| {
                dma::services::questionnaires::import(conn, &actor, source.as_bytes(), true)
                    .map(|o| o.id)
                    .map_err(|_| dma::error::AppError::BadRequest("fixture".into()))
            };
            Ok((
                import(conn, fixture("wgll-acute-2025.yaml"))?,
                import(conn, second_version())?,
            ))
        })
        .await
        .unwrap();
    let v1 = dma::domain::questionnaire::load(fixture("wgll-acute-2025.yaml").as_bytes()).unwrap();
    let v2 = dma::domain::questionnaire::load(second_version().as_bytes()).unwrap();

    create_user(app, "auditor@example.nhs.uk", Role::Auditor, None, None).await;
    create_user(
        app,
        "viewer.a@example.nhs.uk",
        Role::GroupViewer,
        None,
        Some(orgs["QA1"]),
    )
    .await;
    let approver = create_user(
        app,
        "approver@ra1.example.nhs.uk",
        Role::OrgApprover,
        Some(orgs["RA1"]),
        None,
    )
    .await;
    create_user(
        app,
        "contributor@rb1.example.nhs.uk",
        Role::OrgContributor,
        Some(orgs["RB1"]),
        None,
    )
    .await;

    let d = |y, m, day| chrono::NaiveDate::from_ymd_opt(y, m, day).unwrap();
    let today = chrono::Utc::now().date_naive();
    let first = open_cycle(app, "2024/25", d(2024, 4, 1), d(2024, 6, 30), v1_id).await;
    let mut answers = BTreeMap::new();
    for (i, code) in TRUSTS.iter().enumerate() {
        let raw = answers_for(i, 0);
        answer(app, first, orgs[code], raw.clone(), true, approver).await;
        answers.insert((0, *code), raw);
    }
    let second = open_cycle(
        app,
        "2025/26",
        today - chrono::Duration::days(10),
        today + chrono::Duration::days(30),
        v2_id,
    )
    .await;
    for (i, code) in TRUSTS.iter().enumerate() {
        let raw = answers_for(i, 1);
        // Anteater is still working on 2025/26.
        let submit = *code != "RA3";
        answer(app, second, orgs[code], raw.clone(), submit, approver).await;
        answers.insert((1, *code), raw);
    }
    World {
        v1,
        v2,
        orgs,
        answers,
    }
}

async fn signed_in(app: &TestApp, email: &str) -> Browser {
    let b = Browser::new(app);
    b.sign_in(email, PASSWORD).await;
    b
}

async fn ok_text(b: &Browser, path: &str) -> String {
    let res = b.get(path).await;
    let status = res.status();
    let text = res.text().await.unwrap();
    assert_eq!(status, StatusCode::OK, "GET {path}: {text}");
    text
}

#[tokio::test]
async fn group_figures_and_year_on_year_match_sums_from_the_raw_answers() {
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        let w = seed(&app).await;
        let region_2025: Vec<&str> = vec!["RA1", "RA2", "RB1", "RB2"];
        let region_2024: Vec<&str> = vec!["RA1", "RA2", "RA3", "RB1", "RB2"];

        // The library's group figures equal summaries of scores computed here.
        let (view, _) = app
            .db
            .read(|conn| {
                let filters = dma::services::reports::resolve_filters(
                    conn,
                    &dma::services::reports::RawFilters {
                        cycle: "2025/26".into(),
                        setting: "acute".into(),
                        region: REGION.into(),
                        ..Default::default()
                    },
                )?;
                Ok((
                    dma::services::reports::national(
                        conn,
                        &filters,
                        &dma::services::reports::Scope::All,
                        None,
                    )?,
                    (),
                ))
            })
            .await
            .unwrap();
        assert_eq!(view.blocks.len(), 1, "[{backend}] one version in 2025/26");
        let block = &view.blocks[0];
        assert_eq!((block.members, block.submitted), (5, 4), "[{backend}]");
        for (key, _, figures) in &block.domains {
            let values: Vec<f64> = region_2025
                .iter()
                .map(|c| scored(&w.v2, &w.answers[&(1, *c)], key))
                .collect();
            let expected = dma::domain::stats::summarise(&values);
            assert_eq!(figures.as_ref().unwrap().count, 4, "[{backend}] {key}");
            crate::national::same_stats(
                figures.as_ref(),
                expected.as_ref(),
                &format!("[{backend}] {key}"),
            );
        }
        let cyber_2025: Vec<f64> = region_2025
            .iter()
            .map(|c| cyber_by_hand(&w.answers[&(1, *c)], 3.0))
            .collect();
        let cyber_2024: Vec<f64> = region_2024
            .iter()
            .map(|c| cyber_by_hand(&w.answers[&(0, *c)], 2.0))
            .collect();
        let cyber = block.domains.iter().find(|d| d.0 == "cyber").unwrap();
        close(
            cyber.2.as_ref().unwrap().mean,
            mean(&cyber_2025),
            "cyber mean by hand",
        );

        // The same figures on the auditor's page, with counts by status.
        let auditor = signed_in(&app, "auditor@example.nhs.uk").await;
        let page = ok_text(
            &auditor,
            &format!("/reports?cycle=2025/26&setting=acute&region={REGION_Q}"),
        )
        .await;
        close(
            value_after(&page, "id=\"stats-cyber\""),
            mean(&cyber_2025),
            "cyber mean on the page",
        );
        assert!(page.contains("id=\"count-submitted\">4<"), "[{backend}]");
        assert!(page.contains("id=\"count-in_progress\">1<"), "[{backend}]");
        assert!(page.contains(dma::domain::stats::METHOD), "method shown");
        assert!(page.contains("<svg class=\"dma-chart"), "a chart");
        assert!(
            !page.contains("Cheetah"),
            "London trust listed for the region"
        );
        let grouped = ok_text(
            &auditor,
            "/reports?cycle=2025/26&setting=acute&by=icb&sort=-overall",
        )
        .await;
        assert!(grouped.contains("By ICB</h3>"), "[{backend}] no breakdown");
        assert!(grouped.contains("Cyber security by ICB"));
        let last_year = ok_text(
            &auditor,
            &format!("/reports?cycle=2024/25&region={REGION_Q}"),
        )
        .await;
        assert!(
            last_year.contains("id=\"count-late\">5<"),
            "[{backend}] submitted after the deadline"
        );

        // Year on year: every change, the cyber one marked as not comparable.
        let trends = ok_text(
            &auditor,
            &format!("/reports/trends?setting=acute&region={REGION_Q}"),
        )
        .await;
        close(
            value_after(&trends, "id=\"delta-cyber-2025-26\""),
            mean(&cyber_2025) - mean(&cyber_2024),
            "cyber change",
        );
        assert!(trends.contains("Not comparable"));
        // The charts: cyber's change is drawn dashed (not comparable), strategy's solid.
        let cyber_chart = chart(&trends, "trend-wgll-acute-cyber");
        assert_eq!(
            cyber_chart
                .matches("<line class=\"dma-chart__peer\"")
                .count(),
            1
        );
        assert_eq!(cyber_chart.matches("dma-chart__marker").count(), 2);
        let strategy_chart = chart(&trends, "trend-wgll-acute-strategy");
        assert_eq!(
            strategy_chart
                .matches("<line class=\"dma-chart__series\"")
                .count(),
            1,
            "[{backend}]"
        );
        assert!(trends
            .replace("&quot;", "\"")
            .contains("question \"sp-offline-backups\" is scored differently"));
        let strategy: Vec<f64> = region_2025
            .iter()
            .map(|c| scored(&w.v2, &w.answers[&(1, *c)], "strategy"))
            .collect();
        let strategy_before: Vec<f64> = region_2024
            .iter()
            .map(|c| scored(&w.v1, &w.answers[&(0, *c)], "strategy"))
            .collect();
        close(
            value_after(&trends, "id=\"delta-strategy-2025-26\""),
            mean(&strategy) - mean(&strategy_before),
            "strategy change",
        );

        // Comparable figures only: the cyber change is hidden, the like-for-like one shown.
        let comparable = ok_text(
            &auditor,
            &format!("/reports/trends?setting=acute&region={REGION_Q}&comparable=1"),
        )
        .await;
        assert!(
            !comparable.contains("id=\"delta-cyber-2025-26\""),
            "[{backend}] the non-comparable change is still shown"
        );
        assert!(comparable.contains("id=\"delta-strategy-2025-26\""));
        let cyber_chart = chart(&comparable, "trend-wgll-acute-cyber");
        assert!(
            !cyber_chart.contains("<line class=\"dma-chart__peer\"")
                && !cyber_chart.contains("<line class=\"dma-chart__series\""),
            "[{backend}] the non-comparable change is still drawn"
        );
        assert!(chart(&comparable, "trend-wgll-acute-strategy")
            .contains("<line class=\"dma-chart__series\""));
        let lfl_after: Vec<f64> = region_2025
            .iter()
            .map(|c| cyber_like_for_like(&w.answers[&(1, *c)]))
            .collect();
        let lfl_before: Vec<f64> = region_2024
            .iter()
            .map(|c| cyber_like_for_like(&w.answers[&(0, *c)]))
            .collect();
        close(
            value_after(&comparable, "id=\"lfl-cyber-2025-26\""),
            mean(&lfl_after) - mean(&lfl_before),
            "like-for-like cyber change",
        );
        assert!(comparable.contains("sp-dspt, sp-mfa"));

        // An organisation's report: peers, previous cycles with the mark, all answers.
        let report = ok_text(
            &auditor,
            &format!("/reports/organisations/{}", w.orgs["RA1"]),
        )
        .await;
        assert!(report.contains("Aardvark Hospitals NHS Trust") && report.contains("2025/26"));
        assert!(report.contains("id=\"history\"") && report.contains("Not comparable"));
        assert!(
            report.contains("id=\"answer-sp-dspt\""),
            "all answers listed"
        );
        assert!(!report.contains("Not shown"), "auditors see every group");
        let before = ok_text(
            &auditor,
            &format!("/reports/organisations/{}?cycle=2024/25", w.orgs["RA1"]),
        )
        .await;
        assert!(before.contains("2024/25 &middot; acute"), "[{backend}]");
        assert!(before.contains("There is no earlier submitted assessment"));
    }
}

#[tokio::test]
async fn exports_have_the_documented_columns_and_agree_with_the_answers() {
    let docs =
        std::fs::read_to_string(format!("{}/docs/exports.md", env!("CARGO_MANIFEST_DIR"))).unwrap();
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        let w = seed(&app).await;
        let auditor = signed_in(&app, "auditor@example.nhs.uk").await;

        // Scores: the documented header, one row per submitted organisation and domain.
        let res = auditor
            .get("/reports/export/scores.csv?cycle=2025/26")
            .await;
        assert_eq!(res.status(), StatusCode::OK);
        assert!(res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv"));
        assert_eq!(
            res.headers()["content-disposition"],
            "attachment; filename=\"dma-scores-2025-26.csv\"",
            "[{backend}] the file name names the cycle"
        );
        let bytes = res.bytes().await.unwrap();
        let csv_text = bytes
            .strip_prefix(dma::services::reports::UTF8_BOM)
            .map(|rest| String::from_utf8(rest.to_vec()).unwrap())
            .expect("a CSV export starts with the UTF-8 byte-order mark, for Excel");
        let header = csv_text.lines().next().unwrap();
        assert!(
            docs.contains(&format!("```\n{header}\n```")),
            "[{backend}] the header is not the documented one: {header}"
        );
        assert_eq!(header, dma::services::reports::SCORES_COLUMNS.join(","));
        let mut reader = csv::Reader::from_reader(csv_text.as_bytes());
        let columns: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
        let col = |name: &str| columns.iter().position(|c| c == name).unwrap();
        let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
        assert_eq!(rows.len(), 5 * w.v2.domains.len(), "[{backend}]");
        let mut domain_scores: BTreeMap<(String, String), f64> = BTreeMap::new();
        for r in &rows {
            let code = &r[col("organisation_ods_code")];
            let trust = TRUSTS.iter().find(|t| **t == code).unwrap();
            let domain = &r[col("domain_key")];
            let score: f64 = r[col("domain_score")].parse().unwrap();
            close(
                score,
                scored(&w.v2, &w.answers[&(1, *trust)], domain),
                &format!("[{backend}] {code} {domain}"),
            );
            if domain == "cyber" {
                close(
                    score,
                    cyber_by_hand(&w.answers[&(1, *trust)], 3.0),
                    "cyber by hand",
                );
            }
            assert_eq!(&r[col("cycle")], "2025/26");
            domain_scores.insert(
                (r[col("assessment_id")].to_string(), domain.to_string()),
                score,
            );
        }

        // Answers: one row per organisation and question; the domain scores can be worked
        // out again from its rows.
        let answers_csv = auditor
            .get("/reports/export/answers.csv?cycle=2025/26")
            .await
            .text()
            .await
            .unwrap();
        let answers_csv = without_bom(&answers_csv).to_string();
        let header = answers_csv.lines().next().unwrap();
        assert!(docs.contains(&format!("```\n{header}\n```")), "{header}");
        let mut reader = csv::Reader::from_reader(answers_csv.as_bytes());
        let columns: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
        let col = |name: &str| columns.iter().position(|c| c == name).unwrap();
        let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
        let questions = w.v2.questions().count();
        assert_eq!(rows.len(), 5 * questions, "[{backend}]");
        let mut sums: BTreeMap<(String, String), (f64, f64)> = BTreeMap::new();
        for r in &rows {
            if &r[col("counted")] == "true" {
                let n: f64 = r[col("normalised_score")].parse().unwrap();
                let weight: f64 = r[col("weight")].parse().unwrap();
                let e = sums
                    .entry((
                        r[col("assessment_id")].to_string(),
                        r[col("domain_key")].to_string(),
                    ))
                    .or_default();
                e.0 += weight * n;
                e.1 += weight;
            }
        }
        for (key, (wn, w_sum)) in &sums {
            close(
                1.0 + 4.0 * wn / w_sum,
                domain_scores[key],
                &format!("{key:?} from answers"),
            );
        }
        assert!(
            answers_csv.contains("Not applicable"),
            "N/A answers in words"
        );
        // The answer column holds plain values, never the format's JSON text.
        let answers: Vec<&str> = rows.iter().map(|r| &r[col("answer")]).collect();
        assert!(
            answers
                .iter()
                .all(|a| !a.starts_with(['"', '[', '{']) && !a.ends_with(".0")),
            "[{backend}] {answers:?}"
        );
        assert!(
            answers.contains(&"na"),
            "[{backend}] N/A as na: {answers:?}"
        );

        // XLSX: the same cells as the CSV, in a worksheet named after the export, with the
        // documented header row.
        for (name, csv_text) in [("scores", &csv_text), ("answers", &answers_csv)] {
            let res = auditor
                .get(&format!("/reports/export/{name}.xlsx?cycle=2025/26"))
                .await;
            assert_eq!(res.status(), StatusCode::OK, "[{backend}] {name}.xlsx");
            assert_eq!(
                res.headers()["content-type"],
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
            );
            assert!(res.headers()["content-disposition"]
                .to_str()
                .unwrap()
                .contains(&format!("dma-{name}-2025-26.xlsx")));
            let sheet = xlsx_rows(res.bytes().await.unwrap().to_vec());
            assert!(
                sheet.iter().all(|(n, _)| n == name),
                "[{backend}] one sheet"
            );
            let cells: Vec<Vec<String>> = sheet.into_iter().map(|(_, r)| r).collect();
            let expected = csv_rows(csv_text);
            assert_eq!(cells.len(), expected.len(), "[{backend}] {name} rows");
            for (i, (got, want)) in cells.iter().zip(&expected).enumerate() {
                assert_eq!(got, want, "[{backend}] {name}.xlsx row {i}");
            }
        }

        // JSON: both parse, with the same rows and the documented keys.
        let scores: Value = auditor
            .get("/reports/export/scores.json?cycle=2025/26")
            .await
            .json()
            .await
            .unwrap();
        let list = scores.as_array().unwrap();
        assert_eq!(list.len(), 5 * w.v2.domains.len());
        let keys: Vec<&String> = list[0].as_object().unwrap().keys().collect();
        assert_eq!(keys.len(), dma::services::reports::SCORES_COLUMNS.len());
        let answers: Value = auditor
            .get("/reports/export/answers.json")
            .await
            .json()
            .await
            .unwrap();
        // Both cycles: six trusts in 2024/25, five in 2025/26.
        assert_eq!(
            answers.as_array().unwrap().len(),
            11 * questions,
            "[{backend}]"
        );
        let empty: Value = auditor
            .get("/reports/export/scores.json?status=not_started")
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(empty, serde_json::json!([]));
    }
}

#[tokio::test]
async fn people_see_only_what_is_theirs_in_pages_and_exports() {
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        let w = seed(&app).await;

        // A group viewer of ICB A sees A's trusts only.
        let viewer = signed_in(&app, "viewer.a@example.nhs.uk").await;
        let page = ok_text(&viewer, "/reports").await;
        assert!(page.contains("Aardvark Hospitals NHS Trust"), "[{backend}]");
        for other in ["Badger", "Bison", "Cheetah"] {
            assert!(
                !page.contains(other),
                "[{backend}] viewer of A sees {other}"
            );
        }
        let asked_for_b = ok_text(&viewer, "/reports?icb=QB1").await;
        assert!(
            !asked_for_b.contains("Badger"),
            "[{backend}] filter widened the scope"
        );
        assert_eq!(
            viewer
                .get(&format!("/reports/organisations/{}", w.orgs["RB1"]))
                .await
                .status(),
            StatusCode::FORBIDDEN,
            "[{backend}]"
        );
        let own = ok_text(
            &viewer,
            &format!("/reports/organisations/{}", w.orgs["RA1"]),
        )
        .await;
        assert!(own.contains("Aardvark"));
        for path in [
            "/reports/export/scores.csv",
            "/reports/export/scores.json",
            "/reports/export/answers.csv",
            "/reports/export/answers.json",
            "/reports/export/scores.csv?icb=QB1",
        ] {
            let body = viewer.get(path).await.text().await.unwrap();
            assert!(
                !body.contains("RB1") && !body.contains("RB2") && !body.contains("RC1"),
                "[{backend}] {path}"
            );
            if !path.contains("QB1") {
                assert!(body.contains("RA1"), "[{backend}] {path} lacks A's trusts");
            }
        }
        let book = viewer
            .get("/reports/export/scores.xlsx")
            .await
            .bytes()
            .await
            .unwrap();
        let codes: std::collections::BTreeSet<String> = xlsx_rows(book.to_vec())
            .into_iter()
            .skip(1)
            .map(|(_, r)| r[2].clone())
            .collect();
        assert_eq!(
            codes.into_iter().collect::<Vec<_>>(),
            ["RA1", "RA2", "RA3"],
            "[{backend}] scores.xlsx for the viewer of A"
        );
        let trends = ok_text(&viewer, "/reports/trends").await;
        assert!(trends.contains("Year on year"));
        // Peer groups under five are withheld from group viewers too (docs/security.md): their
        // lowest and highest would be other organisations' own scores.
        let report = ok_text(
            &viewer,
            &format!("/reports/organisations/{}", w.orgs["RA1"]),
        )
        .await;
        assert!(
            report.contains("Not shown"),
            "[{backend}] a group viewer sees a small peer group"
        );

        // Organisation people: their own report only, and no group views or exports.
        let approver = signed_in(&app, "approver@ra1.example.nhs.uk").await;
        let mine = ok_text(
            &approver,
            &format!("/reports/organisations/{}", w.orgs["RA1"]),
        )
        .await;
        assert!(mine.contains("All answers"));
        assert!(
            mine.contains("Not shown"),
            "[{backend}] small peer groups are withheld"
        );
        let contributor = signed_in(&app, "contributor@rb1.example.nhs.uk").await;
        for (who, path) in [
            (
                &approver,
                format!("/reports/organisations/{}", w.orgs["RB1"]),
            ),
            (
                &contributor,
                format!("/reports/organisations/{}", w.orgs["RA1"]),
            ),
            (&approver, "/reports".to_string()),
            (&approver, "/reports/trends".to_string()),
            (&approver, "/reports/export/scores.csv".to_string()),
            (&contributor, "/reports/export/answers.json".to_string()),
            (&contributor, "/reports/export/answers.xlsx".to_string()),
        ] {
            assert_eq!(
                who.get(&path).await.status(),
                StatusCode::FORBIDDEN,
                "[{backend}] {path}"
            );
        }
        // The dashboard offers the reports to those who may read them.
        assert!(ok_text(&viewer, "/dashboard")
            .await
            .contains("href=\"/reports\""));
        assert!(ok_text(&approver, "/dashboard").await.contains(&format!(
            "href=\"/reports/organisations/{}\"",
            w.orgs["RA1"]
        )));
    }
}

#[tokio::test]
async fn a_filter_that_is_not_understood_is_a_clear_400() {
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        let w = seed(&app).await;
        let auditor = signed_in(&app, "auditor@example.nhs.uk").await;
        for (path, says) in [
            ("/reports?cycle=abc", "There is no cycle \"abc\""),
            ("/reports?status=bogus", "\"bogus\" is not a status"),
            ("/reports?page=-1", "is not a page number"),
            ("/reports?sort=rank", "is not a way to sort"),
            ("/reports?by=trust", "is not a way to group"),
            ("/reports?setting=Acute%20Care", "There is no care setting"),
            ("/reports?icb=ZZZ", "There is no ICB with the ODS code"),
            ("/reports?region=Atlantis", "There is no region"),
            (
                "/reports/trends?comparable=maybe",
                "is not a value for comparable",
            ),
            (
                "/reports/export/scores.csv?cycle=1999/00",
                "There is no cycle",
            ),
            (
                "/reports/export/answers.json?status=done",
                "is not a status",
            ),
        ] {
            let res = auditor.get(path).await;
            assert_eq!(res.status(), StatusCode::BAD_REQUEST, "[{backend}] {path}");
            let html = res.text().await.unwrap().replace("&quot;", "\"");
            assert!(html.contains(says), "[{backend}] {path}: {html}");
            assert!(html.contains("<html"), "an HTML page");
        }
        let res = auditor
            .get(&format!("/reports/organisations/{}?cycle=x", w.orgs["RA1"]))
            .await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "[{backend}]");
    }
}

/// The report routes as the route-by-role table in `authorisation.rs` sees them: signed out,
/// sent to sign in; group views and exports for administrators and auditors (the sample group
/// viewer has no group, so sees nothing); organisation A's report for them and A's people.
#[tokio::test]
async fn every_report_route_refuses_whoever_may_not_use_it() {
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        let world = crate::browser::World::seed(&app).await;
        let report_a = format!("/reports/organisations/{}", world.org_a);
        let group_views = [
            "/reports",
            "/reports/trends",
            "/reports/export/scores.csv",
            "/reports/export/scores.json",
            "/reports/export/answers.csv",
            "/reports/export/answers.json",
            "/reports/export/scores.xlsx",
            "/reports/export/answers.xlsx",
        ];
        let anonymous = Browser::new(&app);
        for path in group_views.iter().copied().chain([report_a.as_str()]) {
            let res = anonymous.get(path).await;
            assert_eq!(res.status(), StatusCode::SEE_OTHER, "[{backend}] {path}");
            assert!(res.headers()["location"]
                .to_str()
                .unwrap()
                .starts_with("/login?next="));
        }
        // An organisation with no assessment yet has a page that says so.
        let admin = signed_in(&app, "admin@example.nhs.uk").await;
        let icb = app
            .db
            .read(|conn| Ok(organisation_id(conn, "QZ1")))
            .await
            .unwrap();
        let empty = ok_text(&admin, &format!("/reports/organisations/{icb}")).await;
        assert!(
            empty.contains("has no assessment in any cycle yet"),
            "[{backend}]"
        );
        for (email, groups, a) in [
            ("admin@example.nhs.uk", true, true),
            ("auditor@example.nhs.uk", true, true),
            ("viewer@example.nhs.uk", false, false),
            ("approver@a.nhs.uk", false, true),
            ("contributor@a.nhs.uk", false, true),
            ("approver@b.nhs.uk", false, false),
            ("contributor@b.nhs.uk", false, false),
        ] {
            let b = signed_in(&app, email).await;
            for (path, allowed) in group_views
                .iter()
                .map(|p| (*p, groups))
                .chain([(report_a.as_str(), a)])
            {
                let status = b.get(path).await.status();
                let expected = if allowed {
                    StatusCode::OK
                } else {
                    StatusCode::FORBIDDEN
                };
                assert_eq!(status, expected, "[{backend}] {email} {path}");
            }
        }
    }
}
