//! The national and group view computed by the database (`reports::national`, `reports::list`)
//! against the same figures worked out here in memory from every member and score row, the way
//! the view was computed before it moved into SQL: on seeded data (`dma demo seed`) with late
//! submissions, overdue and extended deadlines, for every status filter, text filters, group
//! scopes and breakdowns, on both backends.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use diesel::prelude::*;
use dma::db::schema::{assessments, scores};
use dma::db::DbConnection;
use dma::domain::stats::{self, GroupStats};
use dma::services::reports::{
    self, CycleRef, Filters, GroupBy, Member, ReportStatus, Scope, SortKey, Window,
};

use crate::helpers::{backends, TestDb};
use crate::seed::run_seed;

fn close(a: f64, b: f64, what: &str) {
    assert!((a - b).abs() < 1e-9, "{what}: {a} != {b}");
}

/// The two summaries are both missing, or equal (to 1e-9 in their numbers).
pub(crate) fn same_stats(got: Option<&GroupStats>, expected: Option<&GroupStats>, what: &str) {
    match (got, expected) {
        (None, None) => {}
        (Some(g), Some(e)) => {
            assert_eq!(g.count, e.count, "{what} count");
            for (a, b, name) in [
                (g.mean, e.mean, "mean"),
                (g.median, e.median, "median"),
                (g.q1, e.q1, "q1"),
                (g.q3, e.q3, "q3"),
                (g.min, e.min, "min"),
                (g.max, e.max, "max"),
            ] {
                close(a, b, &format!("{what} {name}"));
            }
        }
        (g, e) => panic!("{what}: {g:?} != {e:?}"),
    }
}

/// Every member in the cycle and scope, the status and text filters applied here.
fn members_in(conn: &mut DbConnection, filters: &Filters, scope: &Scope) -> Vec<Member> {
    let unfiltered = Filters {
        status: None,
        q: None,
        ..filters.clone()
    };
    let (all, _) = reports::load_members(conn, &unfiltered, scope, Window::default()).unwrap();
    all.into_iter()
        .filter(|m| match &filters.q {
            None => true,
            Some(q) => {
                let q = q.to_lowercase();
                m.name.to_lowercase().contains(&q) || m.ods_code.to_lowercase().starts_with(&q)
            }
        })
        .collect()
}

/// One version's figures: members, submitted, domain figures, overall figure, breakdown.
type ExpectedBlock = (
    usize,
    usize,
    BTreeMap<String, GroupStats>,
    Option<GroupStats>,
    BTreeMap<(String, String), GroupStats>,
);

/// The national view worked out in memory.
struct Expected {
    counts: BTreeMap<ReportStatus, usize>,
    blocks: BTreeMap<i64, ExpectedBlock>,
}

fn expected(
    conn: &mut DbConnection,
    filters: &Filters,
    scope: &Scope,
    by: Option<GroupBy>,
) -> Expected {
    let texts = members_in(conn, filters, scope);
    let mut counts: BTreeMap<ReportStatus, usize> =
        ReportStatus::ALL.into_iter().map(|s| (s, 0)).collect();
    for m in &texts {
        *counts.entry(m.report_status).or_default() += 1;
    }
    let members: Vec<Member> = texts
        .into_iter()
        .filter(|m| filters.status.is_none_or(|s| s == m.report_status))
        .collect();
    let scored: HashMap<i64, &Member> = members
        .iter()
        .filter(|m| m.score_set_id.is_some())
        .map(|m| (m.assessment_id, m))
        .collect();
    let icbs = reports::icbs_by_id(conn, members.iter().filter_map(|m| m.icb_id)).unwrap();
    // The stored domain scores of the members whose scores count.
    let sets: Vec<i64> = scored.values().filter_map(|m| m.score_set_id).collect();
    let mut rows: Vec<(i64, String, Option<f64>)> = Vec::new();
    for chunk in sets.chunks(500) {
        rows.extend(
            scores::table
                .filter(scores::score_set_id.eq_any(chunk))
                .filter(scores::level.eq("domain"))
                .select((scores::score_set_id, scores::item_key, scores::score))
                .load::<(i64, String, Option<f64>)>(conn)
                .unwrap(),
        );
    }
    let by_set: HashMap<i64, &Member> = scored
        .values()
        .filter_map(|m| Some((m.score_set_id?, *m)))
        .collect();
    let mut blocks = BTreeMap::new();
    let versions: BTreeSet<i64> = members.iter().map(|m| m.version_id).collect();
    for v in versions {
        let of_version: Vec<&Member> = members.iter().filter(|m| m.version_id == v).collect();
        let mut domains: BTreeMap<String, Vec<f64>> = BTreeMap::new();
        let mut groups: BTreeMap<(String, String), Vec<f64>> = BTreeMap::new();
        for (set, domain_key, score) in &rows {
            let (Some(m), Some(score)) = (by_set.get(set), *score) else {
                continue;
            };
            if m.version_id != v {
                continue;
            }
            domains.entry(domain_key.clone()).or_default().push(score);
            if let Some(by) = by {
                let label = match by {
                    GroupBy::Setting => m.setting.clone(),
                    GroupBy::Region => m.region.clone().unwrap_or_else(|| "(no region)".into()),
                    GroupBy::Icb => m.icb_id.and_then(|i| icbs.get(&i)).map_or_else(
                        || "(no ICB)".into(),
                        |i| format!("{} ({})", i.name, i.ods_code),
                    ),
                };
                groups
                    .entry((domain_key.clone(), label))
                    .or_default()
                    .push(score);
            }
        }
        let overall: Vec<f64> = of_version
            .iter()
            .filter(|m| m.score_set_id.is_some())
            .filter_map(|m| m.overall)
            .collect();
        blocks.insert(
            v,
            (
                of_version.len(),
                of_version
                    .iter()
                    .filter(|m| m.score_set_id.is_some())
                    .count(),
                domains
                    .into_iter()
                    .filter_map(|(k, xs)| Some((k, stats::summarise(&xs)?)))
                    .collect(),
                stats::summarise(&overall),
                groups
                    .into_iter()
                    .filter_map(|(k, xs)| Some((k, stats::summarise(&xs)?)))
                    .collect(),
            ),
        );
    }
    Expected { counts, blocks }
}

fn check_view(
    conn: &mut DbConnection,
    filters: &Filters,
    scope: &Scope,
    by: Option<GroupBy>,
    what: &str,
) {
    let want = expected(conn, filters, scope, by);
    let got = reports::national(conn, filters, scope, by).unwrap();
    assert_eq!(got.counts, want.counts, "{what}: counts");
    let listed: usize = want.blocks.values().map(|b| b.0).sum();
    assert_eq!(got.listed, listed, "{what}: listed");
    let versions: Vec<i64> = got.blocks.iter().map(|b| b.version.summary.id).collect();
    assert_eq!(
        versions,
        want.blocks.keys().copied().collect::<Vec<_>>(),
        "{what}: versions"
    );
    for block in &got.blocks {
        let (members, submitted, domains, overall, groups) =
            &want.blocks[&block.version.summary.id];
        assert_eq!(
            (block.members, block.submitted),
            (*members, *submitted),
            "{what}: members, submitted"
        );
        for (key, _, figures) in &block.domains {
            same_stats(
                figures.as_ref(),
                domains.get(key),
                &format!("{what}: {key}"),
            );
        }
        same_stats(
            block.overall.as_ref(),
            overall.as_ref(),
            &format!("{what}: overall"),
        );
        let got_groups: BTreeMap<(String, String), GroupStats> = block
            .breakdown
            .iter()
            .flat_map(|(d, gs)| {
                gs.iter()
                    .map(move |(g, s)| ((d.clone(), g.clone()), s.clone()))
            })
            .collect();
        assert_eq!(
            got_groups.keys().collect::<Vec<_>>(),
            groups.keys().collect::<Vec<_>>(),
            "{what}: breakdown groups"
        );
        for (k, s) in &got_groups {
            same_stats(Some(s), groups.get(k), &format!("{what}: {k:?}"));
        }
    }
}

/// Year on year: each point's figures equal those worked out here from every member of its
/// cycle and version.
fn check_trends(conn: &mut DbConnection, filters: &Filters, scope: &Scope, what: &str) {
    let trends = reports::trends(conn, filters, scope, false).unwrap();
    let mut points = 0;
    for trend in &trends {
        for point in &trend.points {
            points += 1;
            let cycle = Filters {
                cycle: Some(point.cycle.clone()),
                ..filters.clone()
            };
            let want = expected(conn, &cycle, scope, None);
            let (_, submitted, domains, overall, _) = &want.blocks[&point.version.summary.id];
            let what = format!("{what} {}", point.cycle.label);
            assert_eq!(point.submitted, *submitted, "{what}: submitted");
            assert_eq!(
                point.domains.keys().collect::<Vec<_>>(),
                domains.keys().collect::<Vec<_>>(),
                "{what}: domains"
            );
            for (key, s) in &point.domains {
                same_stats(Some(s), domains.get(key), &format!("{what}: {key}"));
            }
            same_stats(
                point.overall.as_ref(),
                overall.as_ref(),
                &format!("{what}: overall"),
            );
        }
    }
    assert!(points >= 2, "{what}: a point per cycle");
}

/// An organisation report's peer groups (its setting nationally, its ICB, its region) equal
/// the figures worked out here for the same cycle, setting, version and group.
fn check_peers(conn: &mut DbConnection, member: &Member, what: &str) {
    let viewer = reports::Viewer::Full {
        sees_small_groups: true,
    };
    let outcome = reports::organisation_report(
        conn,
        member.organisation_id,
        &viewer,
        Some(member.cycle_id),
        Some(&member.setting),
    )
    .unwrap();
    let reports::Outcome::Report(report) = outcome else {
        panic!("{what}: no report");
    };
    let icb = reports::icbs_by_id(conn, member.icb_id).unwrap();
    let base = Filters {
        cycle: Some(CycleRef {
            id: member.cycle_id,
            label: member.cycle_label.clone(),
            opens_on: chrono::NaiveDate::default(),
        }),
        setting: Some(member.setting.clone()),
        ..Filters::default()
    };
    let groups = [
        ("setting", base.clone()),
        (
            "icb",
            Filters {
                icb: member.icb_id.and_then(|i| icb.get(&i).cloned()),
                ..base.clone()
            },
        ),
        (
            "region",
            Filters {
                region: member.region.clone(),
                ..base.clone()
            },
        ),
    ];
    assert_eq!(report.peers.len(), 3, "{what}: three peer groups");
    for (kind, filters) in groups {
        let peer = report.peers.iter().find(|p| p.kind == kind).unwrap();
        let want = expected(conn, &filters, &Scope::All, None);
        let (_, _, domains, overall, _) = &want.blocks[&member.version_id];
        let what = format!("{what} {kind}");
        assert_eq!(
            peer.members,
            overall.as_ref().map_or(0, |o| o.count),
            "{what}"
        );
        assert!(!peer.withheld, "{what}");
        assert_eq!(
            peer.domains.keys().collect::<Vec<_>>(),
            domains.keys().collect::<Vec<_>>(),
            "{what}: domains"
        );
        for (key, s) in &peer.domains {
            same_stats(Some(s), domains.get(key), &format!("{what}: {key}"));
        }
    }
}

/// The value a list sorts on, as the list shows it (None sorts last either way).
fn sort_value(m: &Member, key: SortKey, icbs: &HashMap<i64, String>) -> Option<String> {
    match key {
        SortKey::Name => Some(m.name.to_lowercase()),
        SortKey::Code => Some(m.ods_code.clone()),
        SortKey::Setting => Some(m.setting.clone()),
        SortKey::Icb => m
            .icb_id
            .and_then(|i| icbs.get(&i))
            .map(|n| n.to_lowercase()),
        SortKey::Region => m.region.clone(),
        SortKey::Status => Some(format!("{:?}", m.report_status as u8)),
        SortKey::Submitted => m.submitted_at.map(|t| t.to_string()),
        // Scores are not negative, so their bits order as they do.
        SortKey::Overall => m.overall.map(|x| {
            assert!(x >= 0.0);
            format!("{:016x}", x.to_bits())
        }),
    }
}

fn check_list(conn: &mut DbConnection, filters: &Filters, scope: &Scope, what: &str) {
    let members = members_in(conn, filters, scope);
    let want: Vec<&Member> = members
        .iter()
        .filter(|m| filters.status.is_none_or(|s| s == m.report_status))
        .collect();
    let icbs: HashMap<i64, String> =
        reports::icbs_by_id(conn, want.iter().filter_map(|m| m.icb_id))
            .unwrap()
            .into_iter()
            .map(|(id, i)| (id, i.name))
            .collect();
    let by_id: HashMap<i64, &&Member> = want.iter().map(|m| (m.assessment_id, m)).collect();
    for key in SortKey::ALL {
        for descending in [false, true] {
            let what = format!("{what}, sorted by {key:?} descending {descending}");
            let mut seen = Vec::new();
            let mut offset = 0;
            loop {
                let page =
                    reports::list(conn, filters, scope, (key, descending), offset, 7).unwrap();
                for m in &page.members {
                    if let Some(i) = m.icb_id {
                        assert!(page.icbs.contains_key(&i), "{what}: ICB of a listed member");
                    }
                }
                seen.extend(page.members.iter().map(|m| m.assessment_id));
                if page.members.len() < 7 {
                    break;
                }
                offset += 7;
            }
            let unique: BTreeSet<i64> = seen.iter().copied().collect();
            assert_eq!(unique.len(), seen.len(), "{what}: a member listed twice");
            assert_eq!(
                unique,
                by_id.keys().copied().collect::<BTreeSet<_>>(),
                "{what}: the pages together are the filtered members"
            );
            // In order: present values first, ascending or descending, then ties by name.
            let keys: Vec<(bool, Option<String>, String)> = seen
                .iter()
                .map(|id| {
                    let m = by_id[id];
                    let v = sort_value(m, key, &icbs);
                    (v.is_none(), v, m.name.to_lowercase())
                })
                .collect();
            for pair in keys.windows(2) {
                let ((a_none, a, a_name), (b_none, b, b_name)) = (&pair[0], &pair[1]);
                assert!(
                    a_none <= b_none,
                    "{what}: a missing value before a present one"
                );
                if a_none == b_none && a == b {
                    assert!(a_name <= b_name, "{what}: ties not by name: {pair:?}");
                } else if a_none == b_none {
                    assert_eq!(a < b, !descending, "{what}: out of order: {pair:?}");
                }
            }
        }
    }
}

#[tokio::test]
async fn the_database_figures_and_list_equal_the_in_memory_method() {
    for backend in backends() {
        let db = TestDb::new(backend);
        let dir = tempfile::tempdir().unwrap();
        let out = run_seed(&db, dir.path(), &["--orgs", "90", "--cycles", "2"]);
        assert!(
            out.status.success(),
            "[{backend}] {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut conn = db.connect();
        let cycles: Vec<(i64, String)> = dma::db::schema::cycles::table
            .order(dma::db::schema::cycles::opens_on.asc())
            .select((dma::db::schema::cycles::id, dma::db::schema::cycles::label))
            .load(&mut conn)
            .unwrap();
        let (old, open) = (cycles[0].clone(), cycles[1].clone());
        // Deadlines moved: three open-cycle assessments not yet submitted are overdue, and
        // three of last cycle's unsubmitted ones were given until far in the future.
        for (cycle, date) in [(open.0, "2001-01-01"), (old.0, "2999-01-01")] {
            let ids: Vec<i64> = assessments::table
                .filter(assessments::cycle_id.eq(cycle))
                .filter(assessments::status.ne("submitted"))
                .order(assessments::id)
                .limit(3)
                .select(assessments::id)
                .load(&mut conn)
                .unwrap();
            assert_eq!(ids.len(), 3, "[{backend}]");
            diesel::update(assessments::table.filter(assessments::id.eq_any(ids)))
                .set(assessments::deadline_override.eq(Some(
                    chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").unwrap(),
                )))
                .execute(&mut conn)
                .unwrap();
        }

        // The status SQL agrees with ReportStatus::of for every assessment of every cycle.
        let all = members_in(&mut conn, &Filters::default(), &Scope::All);
        let mut statuses = BTreeSet::new();
        for status in ReportStatus::ALL {
            let filters = Filters {
                status: Some(status),
                ..Filters::default()
            };
            let (got, _) =
                reports::load_members(&mut conn, &filters, &Scope::All, Window::default()).unwrap();
            let want: Vec<i64> = all
                .iter()
                .filter(|m| m.report_status == status)
                .map(|m| m.assessment_id)
                .collect();
            assert_eq!(
                got.iter().map(|m| m.assessment_id).collect::<Vec<_>>(),
                want,
                "[{backend}] {status:?}"
            );
            if !want.is_empty() {
                statuses.insert(status);
            }
        }
        // Every status, "not submitted" included (the seed's past cycles are closed).
        assert_eq!(
            statuses.len(),
            ReportStatus::ALL.len(),
            "[{backend}] the data has every status"
        );

        let icb = all.iter().find_map(|m| m.icb_id).unwrap();
        let region = all.iter().find_map(|m| m.region.clone()).unwrap();
        let word = all[0]
            .name
            .split_whitespace()
            .next()
            .unwrap()
            .to_uppercase();
        let scopes = [
            Scope::All,
            Scope::Group {
                icb_id: Some(icb),
                region: None,
            },
            Scope::Group {
                icb_id: None,
                region: Some(region.clone()),
            },
        ];
        check_trends(
            &mut conn,
            &Filters::default(),
            &Scope::All,
            &format!("[{backend}]"),
        );
        check_trends(
            &mut conn,
            &Filters {
                region: Some(region.clone()),
                q: Some(word.clone()),
                ..Filters::default()
            },
            &scopes[1],
            &format!("[{backend}] in a group"),
        );
        for m in all.iter().filter(|m| m.score_set_id.is_some()).take(3) {
            check_peers(
                &mut conn,
                m,
                &format!("[{backend}] peers of {}", m.ods_code),
            );
        }
        for (id, label) in [&old, &open] {
            let cycle = Some(CycleRef {
                id: *id,
                label: label.clone(),
                opens_on: chrono::NaiveDate::default(),
            });
            for q in [None, Some("b0000".to_string()), Some(word.clone())] {
                for status in [None].into_iter().chain(ReportStatus::ALL.map(Some)) {
                    let filters = Filters {
                        cycle: cycle.clone(),
                        status,
                        q: q.clone(),
                        ..Filters::default()
                    };
                    for scope in &scopes {
                        let what = format!("[{backend}] {label} q={q:?} {status:?} {scope:?}");
                        check_view(&mut conn, &filters, scope, None, &what);
                    }
                    for by in [GroupBy::Setting, GroupBy::Region, GroupBy::Icb] {
                        let what = format!("[{backend}] {label} q={q:?} {status:?} by {by:?}");
                        check_view(&mut conn, &filters, &Scope::All, Some(by), &what);
                    }
                }
            }
            let filters = Filters {
                cycle: cycle.clone(),
                ..Filters::default()
            };
            check_list(
                &mut conn,
                &filters,
                &Scope::All,
                &format!("[{backend}] {label}"),
            );
            let late = Filters {
                status: Some(ReportStatus::Late),
                region: Some(region.clone()),
                ..filters.clone()
            };
            check_list(
                &mut conn,
                &late,
                &Scope::All,
                &format!("[{backend}] {label} late"),
            );
        }
    }
}

/// The score counts the figures read (`reports::counts`) are kept in the submitting and
/// reopening transactions. Here twelve assessments of one cycle are reopened all at once, each
/// in its own transaction on the server's pool, then submitted again all at once through the
/// API, twice over: after each round the maintained counts equal counts made afresh from the
/// scores, and the national view equals the in-memory method. On PostgreSQL the transactions
/// run in parallel and update the same group rows (the same cycle, setting and ICBs).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn score_counts_stay_exact_under_parallel_submissions_and_reopenings() {
    use dma::db::schema::users;
    use dma::services::reports::counts;
    use std::sync::Arc;
    use tokio::sync::Barrier;
    for backend in backends() {
        let db = TestDb::new(backend);
        let dir = tempfile::tempdir().unwrap();
        let out = run_seed(&db, dir.path(), &["--orgs", "60", "--cycles", "1"]);
        assert!(
            out.status.success(),
            "[{backend}] {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut conn = db.connect();
        let submitted: Vec<(i64, i64, i64)> = assessments::table
            .filter(assessments::status.eq("submitted"))
            .order(assessments::id)
            .limit(12)
            .select((
                assessments::id,
                assessments::organisation_id,
                assessments::cycle_id,
            ))
            .load(&mut conn)
            .unwrap();
        assert_eq!(submitted.len(), 12, "[{backend}] seeded submissions");
        let cycle = submitted[0].2;
        let tokens: Vec<String> = submitted
            .iter()
            .map(|(_, organisation, _)| {
                let approver: i64 = users::table
                    .filter(users::organisation_id.eq(organisation))
                    .filter(users::role.eq("org_approver"))
                    .select(users::id)
                    .first(&mut conn)
                    .unwrap();
                let actor = dma::services::audit::Actor::system("test");
                dma::services::auth::api_token::create(&mut conn, &actor, approver, "t", 30)
                    .unwrap()
                    .1
            })
            .collect();
        let app = crate::helpers::TestApp::spawn_on(db).await;
        let exact = |conn: &mut DbConnection, what: &str| {
            let kept = counts::of_cycle(conn, cycle).unwrap();
            counts::rebuild(conn, cycle).unwrap();
            let fresh = counts::of_cycle(conn, cycle).unwrap();
            assert!(!fresh.is_empty(), "{what}: counts");
            assert_eq!(kept, fresh, "{what}: maintained counts against a recount");
            let filters = Filters {
                cycle: Some(CycleRef {
                    id: cycle,
                    label: String::new(),
                    opens_on: chrono::NaiveDate::default(),
                }),
                ..Filters::default()
            };
            check_view(conn, &filters, &Scope::All, None, what);
            check_view(conn, &filters, &Scope::All, Some(GroupBy::Icb), what);
        };
        for round in 0..2 {
            let barrier = Arc::new(Barrier::new(submitted.len()));
            let reopened: Vec<_> = submitted
                .iter()
                .map(|&(id, _, _)| {
                    let (barrier, pool) = (barrier.clone(), app.db.clone());
                    tokio::spawn(async move {
                        barrier.wait().await;
                        pool.write(move |conn| {
                            let admin = dma::services::audit::Actor::system("test");
                            reports_reopen(conn, &admin, id)
                        })
                        .await
                    })
                })
                .collect();
            for task in reopened {
                task.await.unwrap().unwrap();
            }
            exact(&mut conn, &format!("[{backend}] round {round} reopened"));

            let barrier = Arc::new(Barrier::new(submitted.len()));
            let sent: Vec<_> = submitted
                .iter()
                .zip(&tokens)
                .map(|(&(id, _, _), token)| {
                    let (barrier, client, token) =
                        (barrier.clone(), app.client.clone(), token.clone());
                    let url = app.url(&format!("/api/v1/assessments/{id}/submit"));
                    tokio::spawn(async move {
                        let request = client.post(url).bearer_auth(token).json(
                            &serde_json::json!({"name": "A", "job_title": "CIO", "declaration": true}),
                        );
                        barrier.wait().await;
                        let reply = request.send().await.unwrap();
                        (reply.status().as_u16(), reply.text().await.unwrap())
                    })
                })
                .collect();
            for task in sent {
                let (status, body) = task.await.unwrap();
                assert_eq!(status, 201, "[{backend}] round {round}: {body}");
            }
            exact(&mut conn, &format!("[{backend}] round {round} submitted"));
        }
    }
}

fn reports_reopen(
    conn: &mut DbConnection,
    admin: &dma::services::audit::Actor,
    id: i64,
) -> Result<(), dma::error::AppError> {
    dma::services::assessments::reopen(conn, admin, id, "a trial of the counts")
}

/// `dma reports recount` puts right counts changed behind the application's back (as a hand
/// edit of the database would leave them), says how many it corrected, and leaves correct
/// counts alone.
#[test]
fn the_recount_command_corrects_counts_edited_by_hand() {
    use dma::db::schema::score_counts;
    use dma::services::reports::counts;
    for backend in backends() {
        let db = TestDb::new(backend);
        let dir = tempfile::tempdir().unwrap();
        let out = run_seed(&db, dir.path(), &["--orgs", "40", "--cycles", "2"]);
        assert!(
            out.status.success(),
            "[{backend}] {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut conn = db.connect();
        let cycles: Vec<i64> = dma::db::schema::cycles::table
            .order(dma::db::schema::cycles::id)
            .select(dma::db::schema::cycles::id)
            .load(&mut conn)
            .unwrap();
        let before: Vec<_> = cycles
            .iter()
            .map(|c| counts::of_cycle(&mut conn, *c).unwrap())
            .collect();
        assert!(before.iter().all(|c| !c.is_empty()), "[{backend}] counts");
        // Three wrong counts in the first cycle, one missing in the last.
        let first = cycles[0];
        let last = *cycles.last().unwrap();
        let wrong = diesel::update(
            score_counts::table
                .filter(score_counts::cycle_id.eq(first))
                .filter(score_counts::level.eq("assessment")),
        )
        .set(score_counts::how_many.eq(score_counts::how_many + 5))
        .execute(&mut conn)
        .unwrap();
        assert!(wrong > 0, "[{backend}] counts to spoil");
        let (item, score): (String, f64) = score_counts::table
            .filter(score_counts::cycle_id.eq(last))
            .filter(score_counts::level.eq("domain"))
            .select((score_counts::item_key, score_counts::score))
            .first(&mut conn)
            .unwrap();
        let missing = diesel::delete(
            score_counts::table
                .filter(score_counts::cycle_id.eq(last))
                .filter(score_counts::level.eq("domain"))
                .filter(score_counts::item_key.eq(&item))
                .filter(score_counts::score.eq(score)),
        )
        .execute(&mut conn)
        .unwrap();
        assert!(missing > 0, "[{backend}] a count to lose");

        let recount = || {
            let out = crate::cli::dma()
                .current_dir(dir.path())
                .env("DATABASE_URL", db.url_string())
                .env("DMA_DATA_DIR", dir.path())
                .args(["reports", "recount"])
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "[{backend}] {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            report
                .as_array()
                .unwrap()
                .iter()
                .map(|c| {
                    (
                        c["cycle_id"].as_i64().unwrap(),
                        c["corrected"].as_u64().unwrap() as usize,
                    )
                })
                .collect::<Vec<_>>()
        };
        let corrected = recount();
        let mut want: Vec<(i64, usize)> = cycles.iter().map(|c| (*c, 0)).collect();
        want[0].1 += wrong;
        want.last_mut().unwrap().1 += missing;
        assert_eq!(corrected, want, "[{backend}] corrected per cycle");
        let after: Vec<_> = cycles
            .iter()
            .map(|c| counts::of_cycle(&mut conn, *c).unwrap())
            .collect();
        assert_eq!(
            after, before,
            "[{backend}] the counts as they were maintained"
        );
        assert_eq!(
            recount(),
            cycles.iter().map(|c| (*c, 0)).collect::<Vec<_>>(),
            "[{backend}] nothing left to correct"
        );
    }
}
