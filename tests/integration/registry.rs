//! The organisation registry on both backends: the demo registry with its ICB merger,
//! idempotent re-imports, changes that touch exactly what changed, membership history, and
//! files that are refused whole, leaving the database exactly as it was.

use std::collections::BTreeMap;

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use dma::db::schema::{audit_log, organisation_parents, organisation_settings, organisations};
use dma::db::{Backend, Db, DbConnection};
use dma::error::AppError;
use dma::services::registry::{self, ImportError, ImportReport, RowError, DEMO_FILES};

use crate::helpers::{backends, TestDb};

const HEADER: &str = "ods_code,name,settings,region,parent_icb,parent_from,opened_on,closed_on";

fn date(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

fn report(created: usize, updated: usize, unchanged: usize, parent_changes: usize) -> ImportReport {
    ImportReport {
        created,
        updated,
        unchanged,
        parent_changes,
    }
}

async fn fresh(backend: Backend) -> (TestDb, Db) {
    let test_db = TestDb::new(backend);
    let db = Db::connect(&test_db.url, 2).unwrap();
    db.migrate().await.unwrap();
    (test_db, db)
}

async fn with_demo(backend: Backend) -> (TestDb, Db) {
    let (test_db, db) = fresh(backend).await;
    registry::import_demo(&db)
        .await
        .unwrap_or_else(|e| panic!("[{backend}] demo registry: {e:?}"));
    (test_db, db)
}

async fn import(db: &Db, text: &str) -> Result<ImportReport, ImportError> {
    registry::import_file(db, text.as_bytes().to_vec(), None).await
}

fn rows_of(result: Result<ImportReport, ImportError>) -> Vec<RowError> {
    match result {
        Err(ImportError::Rows(rows)) => rows,
        other => panic!("expected row errors, got {other:?}"),
    }
}

fn lines(errors: &[RowError]) -> Vec<String> {
    errors.iter().map(ToString::to_string).collect()
}

type OrgRow = (
    String,
    String,
    String,
    Option<String>,
    Option<NaiveDate>,
    Option<NaiveDate>,
    NaiveDateTime,
);

/// Everything the registry holds, by ODS code, plus the size of the audit log: equal
/// snapshots mean an import changed nothing at all.
#[derive(Debug, PartialEq)]
struct Snapshot {
    organisations: Vec<OrgRow>,
    settings: Vec<(String, String)>,
    parents: Vec<(String, String, NaiveDate, Option<NaiveDate>)>,
    audit: i64,
}

fn codes(conn: &mut DbConnection) -> BTreeMap<i64, String> {
    organisations::table
        .select((organisations::id, organisations::ods_code))
        .load::<(i64, String)>(conn)
        .unwrap()
        .into_iter()
        .collect()
}

fn snapshot(test_db: &TestDb) -> Snapshot {
    let mut conn = test_db.connect();
    let code = codes(&mut conn);
    let organisations = organisations::table
        .select((
            organisations::ods_code,
            organisations::name,
            organisations::kind,
            organisations::region,
            organisations::opened_on,
            organisations::closed_on,
            organisations::updated_at,
        ))
        .order(organisations::ods_code)
        .load::<OrgRow>(&mut conn)
        .unwrap();
    let mut settings: Vec<(String, String)> = organisation_settings::table
        .select((
            organisation_settings::organisation_id,
            organisation_settings::setting,
        ))
        .load::<(i64, String)>(&mut conn)
        .unwrap()
        .into_iter()
        .map(|(id, s)| (code[&id].clone(), s))
        .collect();
    settings.sort();
    let mut parents: Vec<_> = organisation_parents::table
        .select((
            organisation_parents::organisation_id,
            organisation_parents::parent_id,
            organisation_parents::valid_from,
            organisation_parents::valid_to,
        ))
        .load::<(i64, i64, NaiveDate, Option<NaiveDate>)>(&mut conn)
        .unwrap()
        .into_iter()
        .map(|(o, p, from, to)| (code[&o].clone(), code[&p].clone(), from, to))
        .collect();
    parents.sort();
    let audit = audit_log::table.count().get_result(&mut conn).unwrap();
    Snapshot {
        organisations,
        settings,
        parents,
        audit,
    }
}

fn org_id(conn: &mut DbConnection, code: &str) -> i64 {
    organisations::table
        .filter(organisations::ods_code.eq(code))
        .select(organisations::id)
        .first(conn)
        .unwrap_or_else(|e| panic!("{code}: {e}"))
}

/// The ICB an organisation belonged to on a date, by code.
fn icb_on(test_db: &TestDb, code: &str, on: &str) -> Option<String> {
    let mut conn = test_db.connect();
    let id = org_id(&mut conn, code);
    registry::icb_on(&mut conn, id, date(on))
        .unwrap()
        .map(|parent| codes(&mut conn)[&parent].clone())
}

#[tokio::test]
async fn the_demo_registry_imports_with_its_merger_history() {
    for backend in backends() {
        let (test_db, db) = fresh(backend).await;
        let reports = registry::import_demo(&db).await.unwrap();
        assert_eq!(
            reports,
            [report(26, 0, 0, 0), report(1, 9, 17, 6)],
            "[{backend}] 2022 snapshot, then 2026 (QZ2 merged into QZ1)"
        );

        let snap = snapshot(&test_db);
        let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
        for org in &snap.organisations {
            *kinds.entry(org.2.as_str()).or_default() += 1;
        }
        assert_eq!(
            kinds,
            BTreeMap::from([
                ("gp-practice", 10),
                ("icb", 3),
                ("pcn", 2),
                ("social-care", 4),
                ("trust", 8)
            ]),
            "[{backend}]"
        );
        let regions: std::collections::BTreeSet<_> = snap
            .organisations
            .iter()
            .filter_map(|o| o.3.clone())
            .collect();
        assert_eq!(regions.len(), 2, "[{backend}] {regions:?}");
        // 23 first memberships in 2022, one for the practice that opened in 2024, and a
        // second row for each of the six organisations that moved in the merger.
        assert_eq!(snap.parents.len(), 30, "[{backend}]");
        assert_eq!(
            snap.parents.iter().filter(|p| p.3.is_some()).count(),
            6,
            "[{backend}] closed memberships"
        );
        assert_eq!(
            snap.audit, 36,
            "[{backend}] one entry per created or updated row"
        );

        let qz1 = snap.organisations.iter().find(|o| o.0 == "QZ1").unwrap();
        assert_eq!(qz1.1, "Northfield and Dales Integrated Care Board");
        let old_quay = snap.organisations.iter().find(|o| o.0 == "F99004").unwrap();
        assert_eq!(old_quay.5, Some(date("2025-09-30")));
        let rz2: Vec<&str> = snap
            .settings
            .iter()
            .filter(|s| s.0 == "RZ2")
            .map(|s| s.1.as_str())
            .collect();
        assert_eq!(rz2, ["community", "mental-health"]);

        // Reports place an organisation in the ICB of the cycle's date.
        assert_eq!(
            icb_on(&test_db, "RZ4", "2025-06-01").as_deref(),
            Some("QZ2")
        );
        assert_eq!(
            icb_on(&test_db, "RZ4", "2026-03-31").as_deref(),
            Some("QZ2")
        );
        assert_eq!(
            icb_on(&test_db, "RZ4", "2026-04-01").as_deref(),
            Some("QZ1")
        );
        assert_eq!(
            icb_on(&test_db, "RZ1", "2024-01-01").as_deref(),
            Some("QZ1")
        );
        assert_eq!(
            icb_on(&test_db, "RZ1", "2022-06-30"),
            None,
            "before ICBs existed"
        );
        assert_eq!(
            icb_on(&test_db, "F99003", "2023-01-01"),
            None,
            "before it opened"
        );
        assert_eq!(
            icb_on(&test_db, "F99003", "2024-04-01").as_deref(),
            Some("QZ3")
        );

        let mut conn = test_db.connect();
        let rz4 = org_id(&mut conn, "RZ4");
        let (label, action, before, after): (String, String, Option<String>, Option<String>) =
            audit_log::table
                .filter(audit_log::organisation_id.eq(rz4))
                .order(audit_log::id.desc())
                .select((
                    audit_log::actor_label,
                    audit_log::action,
                    audit_log::before_value,
                    audit_log::after_value,
                ))
                .first(&mut conn)
                .unwrap();
        assert_eq!(label, "import");
        assert_eq!(action, "organisation.update");
        let before: serde_json::Value = serde_json::from_str(&before.unwrap()).unwrap();
        let after: serde_json::Value = serde_json::from_str(&after.unwrap()).unwrap();
        assert_eq!(before["parent_icb"], "QZ2", "{before}");
        assert_eq!(after["parent_icb"], "QZ1", "{after}");
        assert_eq!(after["parent_from"], "2026-04-01", "{after}");
    }
}

#[tokio::test]
async fn a_second_import_of_the_same_file_changes_nothing() {
    for backend in backends() {
        let (test_db, db) = with_demo(backend).await;
        let before = snapshot(&test_db);
        let text = std::str::from_utf8(DEMO_FILES[1].1).unwrap();
        assert_eq!(
            import(&db, text).await.unwrap(),
            report(0, 0, 27, 0),
            "[{backend}]"
        );
        assert_eq!(snapshot(&test_db), before, "[{backend}] nothing may change");

        // The same holds for a file written differently: other column order, lower case,
        // spaces, CRLF line ends and a byte-order mark.
        let reordered = "\u{feff}Name , ODS_Code,settings\r\n\
                         Moorside Surgery, a99001 ,primary-care;\r\n";
        assert_eq!(import(&db, reordered).await.unwrap(), report(0, 0, 1, 0));
        assert_eq!(snapshot(&test_db), before, "[{backend}]");
    }
}

#[tokio::test]
async fn an_updated_file_changes_exactly_the_changed_rows() {
    for backend in backends() {
        let (test_db, db) = with_demo(backend).await;
        let before = snapshot(&test_db);
        let text = std::str::from_utf8(DEMO_FILES[1].1)
            .unwrap()
            .replace(
                "RZ6,Thameside University Hospitals NHS Trust,",
                "RZ6,Thameside University Hospitals NHS Foundation Trust,",
            )
            .replace(
                "A99002,Northfield Health Centre,primary-care,",
                "A99002,Northfield Health Centre,primary-care;community,",
            );
        assert_eq!(
            import(&db, &text).await.unwrap(),
            report(0, 2, 25, 0),
            "[{backend}]"
        );
        let after = snapshot(&test_db);
        assert_eq!(after.audit, before.audit + 2, "[{backend}]");
        assert_eq!(after.parents, before.parents);
        for (old, new) in before.organisations.iter().zip(&after.organisations) {
            if new.0 == "RZ6" {
                assert_eq!(new.1, "Thameside University Hospitals NHS Foundation Trust");
                assert!(new.6 >= old.6);
            } else {
                assert_eq!(old, new, "[{backend}] {} must not change", old.0);
            }
        }
        let mut expected_settings = before.settings.clone();
        expected_settings.push(("A99002".to_string(), "community".to_string()));
        expected_settings.sort();
        assert_eq!(after.settings, expected_settings, "[{backend}]");

        // A file without a column leaves that field alone.
        let partial = "ods_code,name\nA99001,Moorside Surgery and Health Centre\n";
        assert_eq!(import(&db, partial).await.unwrap(), report(0, 1, 0, 0));
        let last = snapshot(&test_db);
        let a99001 = last.organisations.iter().find(|o| o.0 == "A99001").unwrap();
        assert_eq!(a99001.1, "Moorside Surgery and Health Centre");
        assert_eq!(a99001.3.as_deref(), Some("North East and Yorkshire"));
        assert_eq!(a99001.4, Some(date("1985-10-01")));
        assert_eq!(last.settings, after.settings, "[{backend}] settings kept");
        assert_eq!(last.parents, after.parents, "[{backend}] parent kept");

        // A blank cell in a present column clears the field.
        let cleared = format!("{HEADER}\nA99001,Moorside Surgery and Health Centre,,,,,,\n");
        assert_eq!(import(&db, &cleared).await.unwrap(), report(0, 1, 0, 0));
        let cleared = snapshot(&test_db);
        let a99001 = cleared
            .organisations
            .iter()
            .find(|o| o.0 == "A99001")
            .unwrap();
        assert_eq!((a99001.3.as_ref(), a99001.4), (None, None));
        assert!(!cleared.settings.iter().any(|s| s.0 == "A99001"));
        assert_eq!(
            cleared.parents, after.parents,
            "[{backend}] a blank parent_icb keeps it"
        );
    }
}

#[tokio::test]
async fn a_parent_change_keeps_the_history() {
    for backend in backends() {
        let (test_db, db) = with_demo(backend).await;
        let moved = "ods_code,name,parent_icb,parent_from\n\
                     F99001,Riverbank Health Centre,QZ1,2027-04-01\n";
        assert_eq!(
            import(&db, moved).await.unwrap(),
            report(0, 1, 0, 1),
            "[{backend}]"
        );
        let history: Vec<_> = snapshot(&test_db)
            .parents
            .into_iter()
            .filter(|p| p.0 == "F99001")
            .collect();
        assert_eq!(
            history,
            [
                (
                    "F99001".to_string(),
                    "QZ1".to_string(),
                    date("2027-04-01"),
                    None
                ),
                (
                    "F99001".to_string(),
                    "QZ3".to_string(),
                    date("2022-07-01"),
                    Some(date("2027-04-01"))
                ),
            ],
            "[{backend}]"
        );
        assert_eq!(
            icb_on(&test_db, "F99001", "2026-09-30").as_deref(),
            Some("QZ3")
        );
        assert_eq!(
            icb_on(&test_db, "F99001", "2027-03-31").as_deref(),
            Some("QZ3")
        );
        assert_eq!(
            icb_on(&test_db, "F99001", "2027-04-01").as_deref(),
            Some("QZ1")
        );
        assert_eq!(
            import(&db, moved).await.unwrap(),
            report(0, 0, 1, 0),
            "[{backend}] again"
        );

        // Without parent_from a change applies from the day of the import.
        let rows =
            registry::parse_csv(b"ods_code,name,parent_icb\nF99002,Thameside Road Surgery,QZ1\n")
                .unwrap();
        let today = date("2028-01-15");
        let got = db
            .write(move |conn| registry::apply(conn, &rows, None, today))
            .await
            .unwrap();
        assert_eq!(got, report(0, 1, 0, 1));
        assert_eq!(
            icb_on(&test_db, "F99002", "2028-01-14").as_deref(),
            Some("QZ3")
        );
        assert_eq!(
            icb_on(&test_db, "F99002", "2028-01-15").as_deref(),
            Some("QZ1")
        );

        // The same start date as the current membership corrects it instead of adding one.
        let before = snapshot(&test_db);
        let corrected = "ods_code,name,parent_icb,parent_from\n\
                         F99001,Riverbank Health Centre,QZ3,2027-04-01\n";
        assert_eq!(import(&db, corrected).await.unwrap(), report(0, 1, 0, 1));
        let after = snapshot(&test_db);
        assert_eq!(
            after.parents.len(),
            before.parents.len(),
            "[{backend}] corrected in place"
        );
        assert_eq!(
            icb_on(&test_db, "F99001", "2027-05-01").as_deref(),
            Some("QZ3")
        );

        // History cannot be rewritten, and a closed ICB takes no new members.
        let before = snapshot(&test_db);
        let errors = rows_of(
            import(
                &db,
                "ods_code,name,parent_icb,parent_from\n\
                 F99001,Riverbank Health Centre,QZ1,2026-01-01\n\
                 A99001,Moorside Surgery,QZ2,2026-06-01\n",
            )
            .await,
        );
        assert_eq!(
            lines(&errors),
            [
                "line 2, column parent_from: parent_from 2026-01-01 is before 2027-04-01, when \
                 the current ICB QZ3 began; a new ICB must apply from a later date (an import \
                 adds to the history, it does not rewrite it)",
                "line 3, column parent_from: QZ2 closed on 2026-03-31, before this membership \
                 would begin on 2026-06-01",
            ],
            "[{backend}]"
        );
        assert_eq!(snapshot(&test_db), before, "[{backend}]");
    }
}

#[tokio::test]
async fn a_file_with_bad_rows_reports_each_and_changes_nothing() {
    for backend in backends() {
        let (test_db, db) = with_demo(backend).await;
        let before = snapshot(&test_db);

        // Problems in the file itself: every one, with its line and column.
        let text = format!(
            "{HEADER}\n\
             Z99001,Newfield Surgery,primary-care,London,QZ3,,2026-01-05,\n\
             R1X9,Misfiled Trust,acute,London,QZ3,,,\n\
             RZ6,Thameside University Hospitals NHS Trust,acute,London,QZ3,,1 April 1993,\n\
             F99002,Thameside Road Surgery,primary care,London,RZ6,,,\n\
             Z99001,Newfield Surgery,primary-care,London,QZ3,,,\n"
        );
        let errors = rows_of(import(&db, &text).await);
        let found: Vec<(Option<u64>, Option<&str>)> = errors
            .iter()
            .map(|e| (e.line, e.column.as_deref()))
            .collect();
        assert_eq!(
            found,
            [
                (Some(3), Some("ods_code")),
                (Some(4), Some("opened_on")),
                (Some(5), Some("settings")),
                (Some(5), Some("parent_icb")),
                (Some(6), Some("ods_code")),
            ],
            "[{backend}] {errors:?}"
        );
        assert!(errors[0]
            .message
            .contains("trust codes are R followed by 2"));
        assert!(errors[1].message.contains("write dates as YYYY-MM-DD"));
        assert!(errors[4].message.contains("already on line 2"));
        assert_eq!(
            snapshot(&test_db),
            before,
            "[{backend}] a refused file changes nothing"
        );

        // Problems only the registry can reveal: the good first line is not applied either.
        let text = "ods_code,name,parent_icb,parent_from,closed_on\n\
                    Z99001,Newfield Surgery,QZ3,,\n\
                    Z99002,Far Field Surgery,Q99,,\n\
                    RZ4,Dales Valley Hospitals NHS Foundation Trust,QZ3,2025-01-01,\n\
                    RZ5,Upper Dales Community Health NHS Trust,,,2010-01-01\n";
        let errors = rows_of(import(&db, text).await);
        assert_eq!(
            lines(&errors),
            [
                "line 3, column parent_icb: \"Q99\" is not in the registry; add the ICB to this \
                 file or import it first",
                "line 4, column parent_from: parent_from 2025-01-01 is before 2026-04-01, when \
                 the current ICB QZ1 began; a new ICB must apply from a later date (an import \
                 adds to the history, it does not rewrite it)",
                "line 5, column closed_on: closed_on 2010-01-01 is before opened_on 2011-04-01",
            ],
            "[{backend}]"
        );
        assert_eq!(
            snapshot(&test_db),
            before,
            "[{backend}] Z99001 must not be created"
        );

        // Through `apply`, the same problems are a validation error naming line and column.
        let rows = registry::parse_csv(text.as_bytes()).unwrap();
        let today = date("2026-06-01");
        let err = db
            .write(move |conn| registry::apply(conn, &rows, None, today))
            .await
            .unwrap_err();
        let AppError::Validation(fields) = err else {
            panic!("[{backend}] {err:?}")
        };
        assert_eq!(fields[0].path, "line 3, column parent_icb");
        assert_eq!(snapshot(&test_db), before, "[{backend}]");

        // `apply` runs in the caller's transaction: a later failure undoes the import.
        let rows = registry::parse_csv(
            format!("{HEADER}\nZ99001,Newfield Surgery,primary-care,London,QZ3,,2026-01-05,\n")
                .as_bytes(),
        )
        .unwrap();
        let err = db
            .write(move |conn| {
                let report = registry::apply(conn, &rows, None, today)?;
                assert_eq!(report.created, 1);
                Err::<(), _>(AppError::Conflict("something later failed".into()))
            })
            .await
            .unwrap_err();
        assert!(matches!(err, AppError::Conflict(_)));
        assert_eq!(snapshot(&test_db), before, "[{backend}] rolled back");
    }
}

#[tokio::test]
async fn hostile_files_are_refused_with_a_clear_message() {
    for backend in backends() {
        let (test_db, db) = with_demo(backend).await;
        let before = snapshot(&test_db);
        let mut huge = format!("{HEADER}\n").into_bytes();
        while huge.len() <= registry::MAX_FILE_BYTES {
            huge.extend_from_slice(b"A99001,Moorside Surgery,primary-care,,,,,\n");
        }
        let cases: Vec<(&str, Vec<u8>, &str)> = vec![
            ("empty", Vec::new(), "the file is empty"),
            ("blank", b"\n\n  \r\n".to_vec(), "the file is empty"),
            (
                "binary",
                b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR".to_vec(),
                "line 3: the file contains binary data, not text",
            ),
            (
                "latin-1",
                b"ods_code,name\nA99001,Caf\xe9 Surgery\n".to_vec(),
                "line 2: this line is not UTF-8 text",
            ),
            (
                "workbook",
                b"PK\x03\x04\x14\x00\x06\x00".to_vec(),
                "the file is a spreadsheet workbook",
            ),
            (
                "header only",
                format!("{HEADER}\n").into_bytes(),
                "the file has a header line but no organisations",
            ),
            (
                "unknown column",
                b"ods_code,name,postcode\nA99001,Moorside Surgery,NF1 1AA\n".to_vec(),
                "line 1, column postcode: \"postcode\" is not a registry column; the columns \
                 are ods_code, name, settings, region, parent_icb, parent_from, opened_on, \
                 closed_on",
            ),
            (
                "no header",
                b"A99001,Moorside Surgery\n".to_vec(),
                "the first line must name the columns, but it looks like an organisation",
            ),
            (
                "ragged",
                b"ods_code,name\nA99001,Moorside Surgery,Northfield\n".to_vec(),
                "line 2: this line has 3 value(s) but the header has 2 column(s)",
            ),
            ("huge", huge, "the file is larger than the 20 MB limit"),
        ];
        for (what, bytes, expected) in cases {
            let errors = rows_of(registry::import_file(&db, bytes, None).await);
            let text = lines(&errors).join("\n");
            assert!(
                text.contains(expected),
                "[{backend}] {what}: expected {expected:?}, got {text:?}"
            );
        }
        assert_eq!(snapshot(&test_db), before, "[{backend}] nothing changed");
    }
}

#[tokio::test]
async fn the_import_command_reports_and_refuses() {
    for backend in backends() {
        let test_db = TestDb::new(backend);
        let data_dir = tempfile::tempdir().unwrap();
        let settings = crate::helpers::test_settings(&test_db, data_dir.path());
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("bad.csv");
        std::fs::write(
            &bad,
            "ods_code,name,parent_icb\nA99001,Moorside Surgery,Q99\n",
        )
        .unwrap();
        let code = registry::import_command(&settings, &bad).await.unwrap();
        assert_eq!(
            format!("{code:?}"),
            format!("{:?}", std::process::ExitCode::FAILURE)
        );
        assert_eq!(snapshot(&test_db).organisations.len(), 0, "[{backend}]");

        let good = dir.path().join("registry.csv");
        std::fs::write(&good, DEMO_FILES[1].1).unwrap();
        let code = registry::import_command(&settings, &good).await.unwrap();
        assert_eq!(
            format!("{code:?}"),
            format!("{:?}", std::process::ExitCode::SUCCESS)
        );
        assert_eq!(snapshot(&test_db).organisations.len(), 27, "[{backend}]");

        let missing = registry::import_command(&settings, &dir.path().join("nope.csv")).await;
        assert!(missing.unwrap_err().to_string().contains("cannot open"));
    }
}

#[tokio::test]
async fn a_care_setting_no_question_set_serves_is_refused_by_name() {
    for backend in backends() {
        let (test_db, db) = fresh(backend).await;
        let errors = rows_of(
            import(
                &db,
                &format!("{HEADER}\nRA1,Alpha Hospitals NHS Trust,acute;banana,London,,,,\n"),
            )
            .await,
        );
        let text = lines(&errors).join("\n");
        assert!(
            text.contains("line 2, column settings")
                && text.contains("\"banana\" is not a care setting this service knows")
                && text.contains("mental-health"),
            "[{backend}] {text}"
        );
        assert!(
            snapshot(&test_db).organisations.is_empty(),
            "[{backend}] half stored"
        );

        // Once a question set serves a setting, organisations may have it.
        let source = std::fs::read_to_string(format!(
            "{}/tests/fixtures/wgll-acute-2025.yaml",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
        .replace("- acute", "- hospice")
        .replace("[acute]", "[hospice]");
        db.write(move |conn| {
            let actor = dma::services::audit::Actor::system("test");
            dma::services::questionnaires::import(conn, &actor, source.as_bytes(), false)
                .map_err(dma::error::AppError::from)?;
            Ok(())
        })
        .await
        .unwrap();
        import(
            &db,
            &format!("{HEADER}\nRA1,Alpha Hospitals NHS Trust,hospice,London,,,,\n"),
        )
        .await
        .unwrap_or_else(|e| panic!("[{backend}] {e:?}"));
    }
}
