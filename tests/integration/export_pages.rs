//! The exports across their page boundaries. The server reads submitted assessments a page at
//! a time (`SCORES_EXPORT_PAGE`, `ANSWERS_EXPORT_PAGE`) and reads, makes rows and writes in
//! three stages at once (docs/exports.md), so a page dropped, repeated or written out of
//! order would only show on an export longer than a page. Here a seeded database with more
//! submitted assessments than a scores page (and several answers pages) is exported over HTTP
//! and every row is checked against the stored scores and answers, on both backends.

use std::collections::{BTreeMap, BTreeSet};

use diesel::prelude::*;
use dma::db::schema::{answers, assessments, score_sets, scores};
use dma::services::reports::{ANSWERS_EXPORT_PAGE, SCORES_EXPORT_PAGE};
use dma::services::seed::BENCH_PASSWORD;
use reqwest::StatusCode;

use crate::helpers::{backends, TestApp, TestDb};
use crate::seed::run_seed;

/// Organisations seeded: with two cycles, the closed one has every assessment submitted and the
/// open one 4 in 10, so 1,470 submitted assessments: two scores pages and eight answers pages.
const ORGS: usize = 1_050;

/// The rows of a CSV export (byte-order mark and header dropped), with the header.
fn csv_table(body: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let body = body
        .strip_prefix('\u{feff}')
        .expect("a CSV export starts with the byte-order mark");
    let mut reader = csv::Reader::from_reader(body.as_bytes());
    let header = reader.headers().unwrap().iter().map(String::from).collect();
    let rows = reader
        .records()
        .map(|r| r.unwrap().iter().map(String::from).collect())
        .collect();
    (header, rows)
}

fn column(header: &[String], name: &str) -> usize {
    header.iter().position(|h| h == name).unwrap()
}

/// Each assessment's rows are together and the assessments come in id order (the ids never go
/// down): what paging in id order and writing pages in the order they were read give.
fn assert_grouped_in_id_order(ids: &[i64], what: &str) {
    assert!(!ids.is_empty(), "{what}: no rows");
    for pair in ids.windows(2) {
        assert!(pair[0] <= pair[1], "{what}: {} before {}", pair[0], pair[1]);
    }
}

#[tokio::test]
async fn exports_longer_than_a_page_hold_every_row_once_in_order() {
    for backend in backends() {
        let db = TestDb::new(backend);
        let dir = tempfile::tempdir().unwrap();
        let orgs = ORGS.to_string();
        let out = run_seed(&db, dir.path(), &["--orgs", &orgs, "--cycles", "2"]);
        assert!(
            out.status.success(),
            "[{backend}] {}",
            String::from_utf8_lossy(&out.stderr)
        );

        // What the database holds: the current domain scores of submitted assessments, and
        // their stored answers.
        let mut conn = db.connect();
        let stored_scores: BTreeMap<(i64, String), Option<f64>> = scores::table
            .inner_join(score_sets::table.inner_join(assessments::table))
            .filter(score_sets::is_current.eq(true))
            .filter(assessments::status.eq("submitted"))
            .filter(scores::level.eq("domain"))
            .select((assessments::id, scores::item_key, scores::score))
            .load::<(i64, String, Option<f64>)>(&mut conn)
            .unwrap()
            .into_iter()
            .map(|(id, key, score)| ((id, key), score))
            .collect();
        let submitted: BTreeSet<i64> = stored_scores.keys().map(|(id, _)| *id).collect();
        assert!(
            submitted.len() as i64 > SCORES_EXPORT_PAGE,
            "[{backend}] {} submitted: not more than a scores page",
            submitted.len()
        );
        assert!(submitted.len() as i64 > 4 * ANSWERS_EXPORT_PAGE);
        let answered: BTreeSet<(i64, String)> = answers::table
            .inner_join(assessments::table)
            .filter(assessments::status.eq("submitted"))
            .select((answers::assessment_id, answers::question_key))
            .load::<(i64, String)>(&mut conn)
            .unwrap()
            .into_iter()
            .collect();
        drop(conn);

        let app = TestApp::spawn_on(db).await;
        let res = app
            .sign_in("auditor@bench.dma.example", BENCH_PASSWORD)
            .await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "[{backend}] sign-in");
        let download = |path: &'static str| {
            let app = &app;
            async move {
                let res = app.get(path).await;
                assert_eq!(res.status(), StatusCode::OK, "[{backend}] {path}");
                res.text().await.unwrap()
            }
        };

        // scores.csv: one row per submitted assessment and domain, each with its stored score.
        let (header, rows) = csv_table(&download("/reports/export/scores.csv").await);
        let (id_at, key_at, score_at) = (
            column(&header, "assessment_id"),
            column(&header, "domain_key"),
            column(&header, "domain_score"),
        );
        let ids: Vec<i64> = rows.iter().map(|r| r[id_at].parse().unwrap()).collect();
        assert_grouped_in_id_order(&ids, &format!("[{backend}] scores.csv"));
        let exported: BTreeMap<(i64, String), Option<f64>> = rows
            .iter()
            .map(|r| {
                let score = (!r[score_at].is_empty()).then(|| r[score_at].parse().unwrap());
                ((r[id_at].parse().unwrap(), r[key_at].clone()), score)
            })
            .collect();
        assert_eq!(
            rows.len(),
            exported.len(),
            "[{backend}] scores.csv repeats a row"
        );
        let differing: Vec<_> = exported
            .iter()
            .filter(|(k, v)| stored_scores.get(*k) != Some(*v))
            .take(5)
            .collect();
        assert!(
            differing.is_empty() && exported.len() == stored_scores.len(),
            "[{backend}] scores.csv against the stored scores: {} rows for {}, differing {differing:?}",
            exported.len(),
            stored_scores.len()
        );

        // answers.csv: one row per submitted assessment and question, the answered ones among
        // them, and the same number of rows for every assessment of a question set version.
        let (header, rows) = csv_table(&download("/reports/export/answers.csv").await);
        let (id_at, key_at, version_at) = (
            column(&header, "assessment_id"),
            column(&header, "question_key"),
            column(&header, "questionnaire_version"),
        );
        // An empty checklist (nothing ticked) has an empty `answer` cell and its level in
        // `answer_text`.
        let (answer_at, text_at) = (column(&header, "answer"), column(&header, "answer_text"));
        let ids: Vec<i64> = rows.iter().map(|r| r[id_at].parse().unwrap()).collect();
        assert_grouped_in_id_order(&ids, &format!("[{backend}] answers.csv"));
        let pairs: BTreeSet<(i64, String)> = rows
            .iter()
            .map(|r| (r[id_at].parse().unwrap(), r[key_at].clone()))
            .collect();
        assert_eq!(
            rows.len(),
            pairs.len(),
            "[{backend}] answers.csv repeats a row"
        );
        let exported_ids: BTreeSet<i64> = pairs.iter().map(|(id, _)| *id).collect();
        assert!(
            exported_ids == submitted,
            "[{backend}] answers.csv has {} assessments, {} submitted",
            exported_ids.len(),
            submitted.len()
        );
        let with_answer: BTreeSet<(i64, String)> = rows
            .iter()
            .filter(|r| !r[answer_at].is_empty() || !r[text_at].is_empty())
            .map(|r| (r[id_at].parse().unwrap(), r[key_at].clone()))
            .collect();
        let missing: Vec<_> = answered.difference(&with_answer).take(5).collect();
        let extra: Vec<_> = with_answer.difference(&answered).take(5).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "[{backend}] answers.csv against the stored answers: missing {missing:?}, extra {extra:?}"
        );
        let mut per_version: BTreeMap<&str, BTreeSet<usize>> = BTreeMap::new();
        let mut per_assessment: BTreeMap<i64, (usize, &str)> = BTreeMap::new();
        for r in &rows {
            let entry = per_assessment
                .entry(r[id_at].parse().unwrap())
                .or_insert((0, r[version_at].as_str()));
            entry.0 += 1;
        }
        for (count, version) in per_assessment.values() {
            per_version.entry(version).or_default().insert(*count);
        }
        for (version, counts) in per_version {
            assert_eq!(
                counts.len(),
                1,
                "[{backend}] answers.csv: assessments of version {version} have {counts:?} rows"
            );
        }
    }
}
