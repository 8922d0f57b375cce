//! The reports: the national and group view (`/reports`), one organisation's report
//! (`/reports/organisations/{id}`), year on year (`/reports/trends`) and the streamed exports
//! (`/reports/export/...`, CSV, JSON or XLSX). Figures come from [`crate::services::reports`]; this
//! module arranges them.
//!
//! Authorisation: auditors and administrators see everything; group viewers see the
//! organisations of their ICB or region, cycle by cycle ([`Scope`]); organisation people see
//! their own organisation's report only; everyone else gets 403. A filter value that is not
//! understood is a 400 page that says which and why.
//!
//! Exports stream: the response body is fed through a bounded channel by a task that reads
//! the database one page of assessments at a time (by id, on the blocking pool), so memory
//! stays bounded whatever the size of the export. An XLSX export's rows go to a
//! constant-memory worksheet on disk as they are read, and the finished file is streamed
//! from there. The columns are in docs/exports.md.

use actix_web::http::header;
use actix_web::web::Bytes;
use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::domain::comparability::VersionDiff;
use crate::domain::scoring;
use crate::domain::stats::{self, GroupStats};
use crate::error::AppError;
use crate::services::audit::{self, Entry};
use crate::services::auth::roles::Action;
use crate::services::reports::{
    self, ExportFormat, ExportKind, Filters, GroupBy, National, OrganisationReport, RawFilters,
    ReportStatus, Scope, SortKey, Trend, Viewer,
};
use crate::web::auth::Authenticated;
use crate::web::charts::{self, BoxRow, Join};
use crate::web::listing::{self, PAGE_SIZE};
use crate::web::{page, AppState};

const BASE: &str = "/reports";

pub(super) fn scope_of(auth: &Authenticated) -> Result<Scope, AppError> {
    Scope::of(&auth.user).ok_or(AppError::Forbidden)
}

fn num(x: f64, decimals: u8) -> String {
    scoring::round_display(x, decimals)
}

/// A signed difference for display: `+0.3`, `-1.2`, `0.0`.
fn signed(x: f64, decimals: u8) -> String {
    let s = num(x, decimals);
    if x > 0.0 && s.bytes().any(|b| b.is_ascii_digit() && b != b'0') {
        format!("+{s}")
    } else {
        s
    }
}

/// A group's figures for a table row; every field present so templates never miss one.
fn stats_json(s: Option<&GroupStats>, decimals: u8) -> Value {
    match s {
        Some(s) => json!({
            "present": true, "count": s.count,
            "mean": num(s.mean, decimals), "mean_full": s.mean,
            "median": num(s.median, decimals), "q1": num(s.q1, decimals), "q3": num(s.q3, decimals),
            "min": num(s.min, decimals), "max": num(s.max, decimals),
        }),
        None => json!({
            "present": false, "count": 0, "mean": "", "mean_full": Value::Null,
            "median": "", "q1": "", "q3": "", "min": "", "max": "",
        }),
    }
}

/// A query string of the pairs (empty values left out), starting with `?` or empty.
pub(super) fn query(pairs: &[(&str, String)]) -> String {
    let borrowed: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    listing::query_string(&borrowed)
}

fn slug_id(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect()
}

/// What a scope covers, in a sentence for the top of a group view.
pub(super) fn describe_scope(
    conn: &mut crate::db::DbConnection,
    scope: &Scope,
) -> Result<String, AppError> {
    let icb = match scope {
        Scope::Group {
            icb_id: Some(i), ..
        } => reports::icbs_by_id(conn, [*i])?.remove(i),
        _ => None,
    };
    let icb_name = icb.as_ref().map(|i| i.name.as_str());
    Ok(match scope {
        Scope::All => "All organisations in England.".into(),
        Scope::Group { icb_id, region } => {
            let mut parts = Vec::new();
            if icb_id.is_some() {
                parts.push(format!("the ICB {}", icb_name.unwrap_or("you look after")));
            }
            if let Some(r) = region {
                parts.push(format!("the {r} region"));
            }
            format!(
                "Organisations in {} only, placed in the ICB and region they belonged to in each cycle.",
                parts.join(" or ")
            )
        }
    })
}

fn select_options<'a>(
    items: impl IntoIterator<Item = (String, String)> + 'a,
    selected: Option<&str>,
) -> Vec<Value> {
    items
        .into_iter()
        .map(|(value, label)| {
            let is = selected == Some(value.as_str());
            json!({"value": value, "label": label, "selected": is})
        })
        .collect()
}

pub(super) fn filter_form(
    options: &reports::Options,
    filters: &Filters,
    by: Option<GroupBy>,
    sort: &str,
) -> Value {
    json!({
        "cycles": select_options(options.cycles.iter().map(|c| (c.id.to_string(), c.label.clone())), filters.cycle.as_ref().map(|c| c.id.to_string()).as_deref()),
        "settings": select_options(options.settings.iter().map(|s| (s.clone(), s.clone())), filters.setting.as_deref()),
        "regions": select_options(options.regions.iter().map(|r| (r.clone(), r.clone())), filters.region.as_deref()),
        "icbs": select_options(options.icbs.iter().map(|i| (i.ods_code.clone(), format!("{} ({})", i.name, i.ods_code))), filters.icb.as_ref().map(|i| i.ods_code.as_str())),
        "statuses": select_options(ReportStatus::ALL.iter().map(|s| (s.as_str().to_string(), s.label().to_string())), filters.status.map(|s| s.as_str())),
        "groupings": select_options([GroupBy::Setting, GroupBy::Region, GroupBy::Icb].iter().map(|g| (g.as_str().to_string(), format!("By {}", g.label()))), by.map(|g| g.as_str())),
        "q": filters.q.clone().unwrap_or_default(),
        "sort": sort,
    })
}

// ---------------------------------------------------------------------------------------
// National and group view
// ---------------------------------------------------------------------------------------

fn sort_headers(pairs: &[(&str, String)], key: SortKey, descending: bool) -> Vec<Value> {
    let columns = [
        (SortKey::Name, "Organisation", false),
        (SortKey::Code, "ODS code", false),
        (SortKey::Setting, "Care setting", false),
        (SortKey::Icb, "ICB in the cycle", false),
        (SortKey::Region, "Region in the cycle", false),
        (SortKey::Status, "Status", false),
        (SortKey::Submitted, "Submitted", false),
        (SortKey::Overall, "Overall score", true),
    ];
    columns
        .iter()
        .map(|(k, label, numeric)| {
            let current = *k == key;
            let next = if current && !descending {
                format!("-{}", k.as_str())
            } else {
                k.as_str().to_string()
            };
            let mut all = pairs.to_vec();
            all.push(("sort", next));
            json!({
                "label": label, "numeric": numeric,
                "href": format!("{BASE}{}", query(&all)),
                "aria_sort": if current { if descending { "descending" } else { "ascending" } } else { "none" },
            })
        })
        .collect()
}

fn national_blocks(view: &National, by: Option<GroupBy>) -> Vec<Value> {
    view.blocks
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let q = &b.version.questionnaire;
            let d = q.decimals;
            let rows: Vec<BoxRow> = b
                .domains
                .iter()
                .map(|(_, title, s)| BoxRow {
                    label: title.clone(),
                    stats: s.clone(),
                    marker: None,
                })
                .collect();
            let chart = charts::box_plot(
                &format!("distribution-{i}"),
                &format!("Distribution of domain scores, {} {}", q.key, q.version),
                &rows,
                q.scale.min,
                q.scale.max,
                "",
            );
            let domains: Vec<Value> = b
                .domains
                .iter()
                .map(|(key, title, s)| json!({"key": key, "title": title, "stats": stats_json(s.as_ref(), d)}))
                .collect();
            let breakdown: Vec<Value> = match by {
                None => Vec::new(),
                Some(by) => b
                    .domains
                    .iter()
                    .enumerate()
                    .map(|(j, (key, title, _))| {
                        let groups = b.breakdown.get(key).cloned().unwrap_or_default();
                        let rows: Vec<BoxRow> = groups
                            .iter()
                            .map(|(g, s)| BoxRow {
                                label: g.clone(),
                                stats: Some(s.clone()),
                                marker: None,
                            })
                            .collect();
                        json!({
                            "title": title,
                            "chart": charts::box_plot(&format!("breakdown-{i}-{j}"), &format!("{title} by {}", by.label()), &rows, q.scale.min, q.scale.max, ""),
                            "groups": groups.iter().map(|(g, s)| json!({"group": g, "stats": stats_json(Some(s), d)})).collect::<Vec<_>>(),
                        })
                    })
                    .collect(),
            };
            json!({
                "title": q.title, "key": q.key, "version": q.version,
                "members": b.members, "submitted": b.submitted,
                "reviewed": b.reviewed,
                "reviewed_percent": percent(b.reviewed, b.submitted),
                "sections_accepted": b.sections_accepted, "sections": b.sections,
                "sections_percent": percent(b.sections_accepted, b.sections),
                "scale_min": format!("{}", q.scale.min), "scale_max": format!("{}", q.scale.max),
                "chart": chart, "domains": domains,
                "overall": stats_json(b.overall.as_ref(), d),
                "breakdown": breakdown,
                "by_label": by.map(|g| g.label()).unwrap_or(""),
            })
        })
        .collect()
}

pub async fn national(
    state: web::Data<AppState>,
    auth: Authenticated,
    raw: web::Query<RawFilters>,
) -> Result<HttpResponse, AppError> {
    let scope = scope_of(&auth)?;
    let raw = raw.into_inner();
    let page_no = reports::parse_page(&raw.page)?;
    let (sort, descending) = reports::parse_sort(&raw.sort)?;
    let by = reports::parse_group_by(&raw.by)?;
    let sort_raw = raw.sort.trim().to_string();
    let s = scope.clone();
    let filters = state
        .db
        .read(move |conn| reports::resolve_view_filters(conn, &raw))
        .await?;
    // The figures and the rest of the page on two connections at once: each is a few
    // queries over every organisation in the filters, and neither needs the other.
    let (f, s2) = (filters.clone(), s.clone());
    let figures = state
        .db
        .read_cancellable(move |conn| reports::national(conn, &f, &s2, by));
    let f = filters.clone();
    let rest = state.db.read_cancellable(move |conn| {
        let options = reports::options(conn, &s)?;
        let listing = reports::list(
            conn,
            &f,
            &s,
            (sort, descending),
            listing::offset(page_no),
            PAGE_SIZE,
        )?;
        let scope_text = describe_scope(conn, &s)?;
        Ok((options, listing, scope_text))
    });
    let (view, (options, listing, scope_text)) =
        futures_util::future::try_join(figures, rest).await?;

    let mut pairs = filters.pairs();
    if let Some(b) = by {
        pairs.push(("by", b.as_str().to_string()));
    }
    let counts: Vec<Value> = ReportStatus::ALL
        .iter()
        .map(|s| {
            let mut p: Vec<(&str, String)> = pairs
                .iter()
                .filter(|(k, _)| *k != "status")
                .cloned()
                .collect();
            p.push(("status", s.as_str().to_string()));
            json!({"label": s.label(), "colour": s.colour(), "key": s.as_str(),
                   "count": view.counts.get(s).copied().unwrap_or(0),
                   "href": format!("{BASE}{}", query(&p))})
        })
        .collect();
    let total: usize = view.counts.values().sum();
    let blocks = national_blocks(&view, by);

    let listed = view.listed as i64;
    let rows: Vec<Value> = listing
        .members
        .iter()
        .map(|m| {
            let decimals = view
                .blocks
                .iter()
                .find(|b| b.version.summary.id == m.version_id)
                .map_or(1, |b| b.version.questionnaire.decimals);
            let icb = m.icb_id.and_then(|i| listing.icbs.get(&i));
            json!({
                "name": m.name, "ods_code": m.ods_code, "setting": m.setting,
                "href": format!("{BASE}/organisations/{}?cycle={}&setting={}", m.organisation_id, m.cycle_id, m.setting),
                "icb": icb.map(|i| i.name.clone()).unwrap_or_default(),
                "region": m.region.clone().unwrap_or_default(),
                "status_label": m.report_status.label(), "status_colour": m.report_status.colour(),
                "submitted": m.submitted_at.map(|t| t.format("%-d %b %Y").to_string()).unwrap_or_default(),
                "overall": m.overall.map(|x| num(x, decimals)).unwrap_or_default(),
                "band": m.overall_band.clone().unwrap_or_default(),
            })
        })
        .collect();
    let mut list_pairs = pairs.clone();
    if !sort_raw.is_empty() {
        list_pairs.push(("sort", sort_raw.clone()));
    }
    let borrowed: Vec<(&str, &str)> = list_pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let pagination = listing::pagination(BASE, &borrowed, page_no, listed);
    let export_query = query(&filters.pairs());
    let trend_pairs: Vec<(&str, String)> = filters
        .pairs()
        .into_iter()
        .filter(|(k, _)| matches!(*k, "setting" | "region" | "icb"))
        .collect();
    let heading = match &filters.cycle {
        Some(c) => format!("Digital maturity results {}", c.label),
        None => "Digital maturity results".to_string(),
    };
    let filtered = filters.setting.is_some()
        || filters.region.is_some()
        || filters.icb.is_some()
        || filters.status.is_some()
        || filters.q.is_some()
        || by.is_some();
    let data = json!({
        "heading": heading,
        "scope": scope_text,
        "form": filter_form(&options, &filters, by, &sort_raw),
        "filtered": filtered,
        "counts": counts, "total": total,
        "blocks": blocks,
        "method": stats::METHOD,
        "headers": sort_headers(&pairs, sort, descending),
        "organisations": rows,
        "pagination": pagination,
        "exports": [
            {"label": "Scores (CSV)", "href": format!("{BASE}/export/scores.csv{export_query}")},
            {"label": "Scores (JSON)", "href": format!("{BASE}/export/scores.json{export_query}")},
            {"label": "Scores (Excel, XLSX)", "href": format!("{BASE}/export/scores.xlsx{export_query}")},
            {"label": "Answers (CSV)", "href": format!("{BASE}/export/answers.csv{export_query}")},
            {"label": "Answers (JSON)", "href": format!("{BASE}/export/answers.json{export_query}")},
            {"label": "Answers (Excel, XLSX)", "href": format!("{BASE}/export/answers.xlsx{export_query}")},
        ],
        "trends_href": format!("{BASE}/trends{}", query(&trend_pairs)),
        "progress_href": format!("{BASE}/progress{export_query}"),
        "breadcrumbs": [{"href": "/dashboard", "label": "Home"}],
    });
    page::render(
        &state,
        Some(&auth.page_user()),
        "reports/national",
        "Reports",
        data,
    )
}

// ---------------------------------------------------------------------------------------
// Organisation report
// ---------------------------------------------------------------------------------------

#[derive(Debug, Default, Deserialize)]
pub struct OrganisationQuery {
    #[serde(default)]
    cycle: String,
    #[serde(default)]
    setting: String,
}

fn organisation_data(r: &OrganisationReport) -> Value {
    let q = &r.version.questionnaire;
    let d = q.decimals;
    let m = &r.member;
    let fmt = |x: Option<f64>| x.map(|x| num(x, d)).unwrap_or_default();
    let choices: Vec<Value> = r
        .choices
        .iter()
        .map(|c| {
            json!({
                "label": format!("{} {}", c.cycle_label, c.setting),
                "href": format!("{BASE}/organisations/{}?cycle={}&setting={}", r.organisation_id, c.cycle_id, c.setting),
                "current": c.assessment_id == m.assessment_id,
            })
        })
        .collect();
    let mut data = json!({
        "organisation": r.name, "ods_code": r.ods_code,
        "cycle": m.cycle_label, "setting": m.setting,
        "set_title": q.title, "set_version": q.version,
        "status_label": m.report_status.label(), "status_colour": m.report_status.colour(),
        "icb": r.icb.as_ref().map(|i| format!("{} ({})", i.name, i.ods_code)).unwrap_or_default(),
        "region": m.region.clone().unwrap_or_default(),
        "choices": choices, "several": r.choices.len() > 1,
        "scale_min": format!("{}", q.scale.min), "scale_max": format!("{}", q.scale.max),
        "method": stats::METHOD,
        "min_disclosed": reports::MIN_DISCLOSED,
        "result": Value::Null,
    });
    let Some(result) = &r.result else {
        return data;
    };
    let report = &result.report;
    let titles: Vec<String> = q.domains.iter().map(|x| x.title.clone()).collect();
    let values: Vec<Option<f64>> = q
        .domains
        .iter()
        .map(|x| {
            report
                .domains
                .iter()
                .find(|s| s.key == x.key)
                .and_then(|s| s.score)
        })
        .collect();
    let radar = charts::radar(
        &format!("Domain scores for {}", r.name),
        &titles,
        &values,
        q.scale.min,
        q.scale.max,
    );
    let domains: Vec<Value> = q
        .domains
        .iter()
        .map(|x| {
            let s = report.domains.iter().find(|s| s.key == x.key);
            json!({"title": x.title, "score": fmt(s.and_then(|s| s.score)), "band": s.and_then(|s| s.band.clone()).unwrap_or_default(), "counted": s.map_or(0, |s| s.counted)})
        })
        .collect();
    let pillars: Vec<Value> = report
        .pillars
        .iter()
        .map(|(k, s)| json!({"title": q.pillars.iter().find(|p| &p.key == k).map_or(k.as_str(), |p| p.title.as_str()), "score": fmt(s.score), "band": s.band.clone().unwrap_or_default()}))
        .collect();

    // Peers.
    let national = r.peers.iter().find(|p| p.kind == "setting");
    let rows: Vec<BoxRow> = q
        .domains
        .iter()
        .zip(&values)
        .map(|(x, v)| BoxRow {
            label: x.title.clone(),
            stats: national.and_then(|p| p.domains.get(&x.key).cloned()),
            marker: *v,
        })
        .collect();
    let peer_chart = charts::box_plot(
        "peers",
        &format!(
            "{} against {}",
            r.name,
            national.map_or("its peers", |p| p.label.as_str())
        ),
        &rows,
        q.scale.min,
        q.scale.max,
        &r.name,
    );
    let peer_headers: Vec<Value> = r
        .peers
        .iter()
        .map(|p| json!({"label": p.label, "members": p.members, "withheld": p.withheld}))
        .collect();
    let peer_rows: Vec<Value> = q
        .domains
        .iter()
        .zip(&values)
        .map(|(x, v)| {
            json!({
                "title": x.title, "score": fmt(*v),
                "cells": r.peers.iter().map(|p| json!({"withheld": p.withheld, "stats": stats_json(p.domains.get(&x.key), d)})).collect::<Vec<_>>(),
            })
        })
        .collect();

    // Previous cycles.
    let history = history_data(r);

    // All answers.
    let answers: Vec<Value> = q
        .domains
        .iter()
        .map(|x| {
            let explained = report.domains.iter().find(|s| s.key == x.key);
            let questions: Vec<Value> = x
                .questions
                .iter()
                .map(|question| {
                    let c = explained.and_then(|e| e.explanation.iter().find(|c| c.key == question.key));
                    let answer = result.answers.get(&question.key).and_then(|v| {
                        crate::domain::answers::parse_value(question, v).ok().flatten()
                    });
                    json!({
                        "key": question.key, "text": question.text,
                        "answer": answer.as_ref().map(|a| reports::describe_answer(question, a)).unwrap_or_else(|| "Not answered".into()),
                        "counted": c.is_some_and(|c| c.counted),
                        "reason": c.map(|c| c.reason.describe()).unwrap_or(""),
                    })
                })
                .collect();
            json!({"title": x.title, "questions": questions})
        })
        .collect();

    data["result"] = json!({
        "reference": result.reference,
        "submitted_at": result.submitted_at.format("%-d %B %Y").to_string(),
        "late": result.late,
        "overall": fmt(report.overall.score), "overall_band": report.overall.band.clone().unwrap_or_default(),
        "radar": radar, "domains": domains, "pillars": pillars,
        "peer_chart": peer_chart, "peer_headers": peer_headers, "peer_rows": peer_rows,
        "history": history,
        "answers": answers,
    });
    data
}

/// Whether `diff` scores the domain `key` (or, for `None`, the overall score) the same way
/// in both versions (format section 5), and if not, why.
fn comparability(diff: &VersionDiff, key: Option<&str>) -> (bool, String) {
    match key {
        Some(k) => diff.domains.iter().find(|c| c.key == k).map_or(
            (false, "the domain is not in both versions".to_string()),
            |c| (c.comparable, c.reasons.join("; ")),
        ),
        None => (
            diff.overall_comparable,
            "a domain, or the weights of domains or pillars, changed".to_string(),
        ),
    }
}

/// The previous-cycles table: a column per cycle (oldest first), a row per domain and the
/// overall score, each later cell with its change from the cycle before and, where the
/// versions do not score that domain the same way, the "not comparable" mark.
fn history_data(r: &OrganisationReport) -> Value {
    let points = &r.history;
    if points.len() < 2 {
        return json!({"present": false, "columns": [], "rows": [], "notes": []});
    }
    let d = r.version.questionnaire.decimals;
    let mut keys: Vec<(String, String)> = Vec::new();
    for p in points.iter().rev() {
        for x in &p.version.questionnaire.domains {
            if !keys.iter().any(|(k, _)| *k == x.key) {
                keys.push((x.key.clone(), x.title.clone()));
            }
        }
    }
    let columns: Vec<Value> = points
        .iter()
        .map(|p| json!({"label": p.member.cycle_label, "version": p.version.questionnaire.version}))
        .collect();
    let mut notes: Vec<Value> = Vec::new();
    let mut cell = |key: Option<&str>, i: usize| -> Value {
        let p = &points[i];
        let score = |pt: &reports::HistoryPoint| match key {
            Some(k) => pt
                .report
                .domains
                .iter()
                .find(|s| s.key == k)
                .and_then(|s| s.score),
            None => pt.report.overall.score,
        };
        let now = score(p);
        let (delta, comparable, reasons) =
            match (i.checked_sub(1).map(|j| &points[j]), &p.diff_from_previous) {
                (Some(prev), Some(diff)) => {
                    let (comparable, reasons) = comparability(diff, key);
                    (
                        now.zip(score(prev)).map(|(a, b)| a - b),
                        comparable,
                        reasons,
                    )
                }
                _ => (None, true, String::new()),
            };
        if !comparable && delta.is_some() {
            notes.push(json!({
                "what": format!("{} {}", key.and_then(|k| keys_title(points, k)).unwrap_or_else(|| "Overall".into()), p.member.cycle_label),
                "reasons": reasons,
            }));
        }
        json!({
            "score": now.map(|x| num(x, d)).unwrap_or_default(),
            "has_delta": delta.is_some(),
            "delta": delta.map(|x| signed(x, d)).unwrap_or_default(),
            "delta_full": delta,
            "comparable": comparable,
        })
    };
    let mut rows: Vec<Value> = Vec::new();
    for (k, title) in &keys {
        let cells: Vec<Value> = (0..points.len()).map(|i| cell(Some(k), i)).collect();
        rows.push(json!({"title": title, "cells": cells}));
    }
    let cells: Vec<Value> = (0..points.len()).map(|i| cell(None, i)).collect();
    rows.push(json!({"title": "Overall", "cells": cells}));
    json!({"present": true, "columns": columns, "rows": rows, "notes": notes})
}

fn keys_title(points: &[reports::HistoryPoint], key: &str) -> Option<String> {
    points.iter().rev().find_map(|p| {
        p.version
            .questionnaire
            .domains
            .iter()
            .find(|d| d.key == key)
            .map(|d| d.title.clone())
    })
}

pub async fn organisation(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<i64>,
    raw: web::Query<OrganisationQuery>,
) -> Result<HttpResponse, AppError> {
    let org = path.into_inner();
    let viewer = match Scope::of(&auth.user) {
        Some(Scope::All) => Viewer::Full {
            sees_small_groups: true,
        },
        _ if auth.may(Action::ReadOrganisation(org)) => Viewer::Full {
            sees_small_groups: false,
        },
        Some(group) => Viewer::Group(group),
        None => return Err(AppError::Forbidden),
    };
    let raw = raw.into_inner();
    let outcome = state
        .db
        .read_cancellable(move |conn| {
            // The same checks as the list's filters: a cycle by id or label, a known setting.
            let filters = reports::resolve_filters(
                conn,
                &RawFilters {
                    cycle: raw.cycle,
                    setting: raw.setting,
                    ..RawFilters::default()
                },
            )?;
            reports::organisation_report(
                conn,
                org,
                &viewer,
                filters.cycle.map(|c| c.id),
                filters.setting.as_deref(),
            )
        })
        .await?;
    let mut crumbs = vec![json!({"href": "/dashboard", "label": "Home"})];
    if Scope::of(&auth.user).is_some() {
        crumbs.push(json!({"href": BASE, "label": "Reports"}));
    }
    let report = match outcome {
        reports::Outcome::Report(report) => report,
        reports::Outcome::NoAssessments { ods_code, name } => {
            return page::render(
                &state,
                Some(&auth.page_user()),
                "reports/empty",
                &format!("{name} report"),
                json!({"organisation": name, "ods_code": ods_code, "breadcrumbs": crumbs}),
            );
        }
    };
    let mut data = organisation_data(&report);
    data["breadcrumbs"] = json!(crumbs);
    // Whoever may read the submitted assessment itself (auditors, administrators, its own
    // people) is led to its answers, evidence and shared notes; group viewers read results only.
    if report.result.is_some() && auth.may(Action::ReadOrganisation(report.organisation_id)) {
        data["assessment_href"] = json!(format!(
            "/assessments/{}/review",
            report.member.assessment_id
        ));
    }
    data["plans"] = plan_rows(&state, &report).await?;
    page::render(
        &state,
        Some(&auth.page_user()),
        "reports/organisation",
        &format!("{} report", report.name),
        data,
    )
}

/// Improvement plan actions per cycle of a trend (issue 23), for the row beside the change.
fn plan_columns(t: &Trend, plans: &std::collections::BTreeMap<i64, reports::PlanCounts>) -> Value {
    let any = t.points.iter().any(|p| plans.contains_key(&p.cycle.id));
    if !any {
        return Value::Null;
    }
    json!(t
        .points
        .iter()
        .map(|p| {
            let c = plans.get(&p.cycle.id).cloned().unwrap_or_default();
            let n = |s: &str| c.by_status.get(s).copied().unwrap_or(0);
            json!({
                "label": p.cycle.label,
                "total": c.by_status.values().sum::<usize>(),
                "carried": c.carried,
                "planned": n("planned"), "in_progress": n("in_progress"),
                "done": n("done"), "dropped": n("dropped"),
            })
        })
        .collect::<Vec<_>>())
}

/// `part` of `whole` as a whole percentage (0 of nothing).
fn percent(part: usize, whole: usize) -> usize {
    (part * 100).checked_div(whole).unwrap_or(0)
}

/// The improvement plan actions of each cycle shown (issue 23), oldest first: what was
/// promised, beside the table of what moved.
async fn plan_rows(
    state: &AppState,
    report: &reports::OrganisationReport,
) -> Result<Value, AppError> {
    let mut cycles: Vec<(
        i64,
        String,
        std::sync::Arc<crate::services::questionnaires::StoredVersion>,
    )> = report
        .history
        .iter()
        .map(|p| {
            (
                p.member.assessment_id,
                p.member.cycle_label.clone(),
                p.version.clone(),
            )
        })
        .collect();
    if !cycles.iter().any(|c| c.0 == report.member.assessment_id) {
        cycles.push((
            report.member.assessment_id,
            report.member.cycle_label.clone(),
            report.version.clone(),
        ));
    }
    let ids: Vec<i64> = cycles.iter().map(|c| c.0).collect();
    let actions = state
        .db
        .read(move |conn| {
            ids.iter()
                .map(|id| crate::services::plans::actions(conn, *id))
                .collect::<Result<Vec<_>, _>>()
        })
        .await?;
    let rows: Vec<Value> = cycles
        .iter()
        .zip(actions)
        .flat_map(|((_, label, version), list)| {
            list.into_iter().map(move |a| {
                let domain = version
                    .questionnaire
                    .domains
                    .iter()
                    .find(|d| d.key == a.domain_key)
                    .map_or(a.domain_key.clone(), |d| d.title.clone());
                json!({
                    "cycle": label, "domain": domain, "title": a.title, "owner": a.owner,
                    "due_on": a.due_on.map(|d| d.format("%-d %B %Y").to_string()),
                    "status_label": a.status.label(), "status_colour": a.status.colour(),
                    "carried_from_cycle": a.carried_from_cycle,
                })
            })
        })
        .collect();
    Ok(json!(rows))
}

// ---------------------------------------------------------------------------------------
// Year on year
// ---------------------------------------------------------------------------------------

fn trend_data(t: &Trend, comparable_only: bool) -> Value {
    let d = t
        .points
        .last()
        .map_or(1, |p| p.version.questionnaire.decimals);
    let columns: Vec<Value> = t
        .points
        .iter()
        .enumerate()
        .map(|(i, p)| {
            json!({"label": p.cycle.label, "version": p.version.questionnaire.version,
                   "submitted": p.submitted, "first": i == 0})
        })
        .collect();
    let mut notes: Vec<Value> = Vec::new();
    let mut row = |key: Option<&str>, title: &str| -> Value {
        let mut cells = Vec::new();
        for (i, p) in t.points.iter().enumerate() {
            let figure = match key {
                Some(k) => p.domains.get(k),
                None => p.overall.as_ref(),
            };
            if i > 0 {
                let prev = &t.points[i - 1];
                let before = match key {
                    Some(k) => prev.domains.get(k),
                    None => prev.overall.as_ref(),
                };
                let step = &t.steps[i - 1];
                let (comparable, reasons) = comparability(&step.diff, key);
                let delta = figure.zip(before).map(|(a, b)| a.mean - b.mean);
                let hidden = comparable_only && !comparable;
                if !comparable && delta.is_some() && !hidden {
                    notes.push(json!({"what": format!("{title}, {} to {}", prev.cycle.label, p.cycle.label), "reasons": reasons}));
                }
                cells.push(json!({
                    "is_delta": true,
                    "id": format!("delta-{}-{}", key.unwrap_or("overall"), slug_id(&p.cycle.label)),
                    "has_delta": delta.is_some() && !hidden,
                    "hidden": hidden && delta.is_some(),
                    "delta": delta.map(|x| signed(x, d)).unwrap_or_default(),
                    "delta_full": delta,
                    "comparable": comparable,
                }));
            }
            cells.push(json!({"is_delta": false, "id": "", "stats": stats_json(figure, d)}));
        }
        json!({"title": title, "cells": cells})
    };
    let mut rows: Vec<Value> = t
        .domain_keys()
        .iter()
        .map(|(k, title)| row(Some(k), title))
        .collect();
    rows.push(row(None, "Overall"));

    // A small chart per domain and overall: the same means, each change drawn solid when
    // comparable, dashed when not, and left out when comparable figures only are asked for.
    let scale = t
        .points
        .last()
        .map(|p| p.version.questionnaire.scale)
        .unwrap_or(crate::domain::questionnaire::Scale { min: 0.0, max: 1.0 });
    let mut lines: Vec<(Option<String>, String)> = t
        .domain_keys()
        .into_iter()
        .map(|(k, title)| (Some(k), title))
        .collect();
    lines.push((None, "Overall".to_string()));
    let charts: Vec<Value> = lines
        .iter()
        .map(|(key, title)| {
            let points: Vec<charts::TrendPoint> = t
                .points
                .iter()
                .map(|p| charts::TrendPoint {
                    label: p.cycle.label.clone(),
                    stats: match key {
                        Some(k) => p.domains.get(k).cloned(),
                        None => p.overall.clone(),
                    },
                })
                .collect();
            let joins: Vec<Join> = t
                .steps
                .iter()
                .map(|step| match comparability(&step.diff, key.as_deref()) {
                    (true, _) => Join::Comparable,
                    (false, _) if comparable_only => Join::Hidden,
                    (false, _) => Join::NotComparable,
                })
                .collect();
            let id = format!("trend-{}-{}", t.key, key.as_deref().unwrap_or("overall"));
            json!({
                "title": title,
                "chart": charts::trend_line(&id, &format!("{title}: mean score by cycle"), &points, &joins, scale.min, scale.max),
            })
        })
        .collect();

    let mut like_for_like: Vec<Value> = Vec::new();
    for (i, step) in t.steps.iter().enumerate() {
        let (before, after) = (&t.points[i], &t.points[i + 1]);
        for l in &step.like_for_like {
            let title = keys_title_trend(t, &l.domain);
            let delta = l
                .after
                .as_ref()
                .zip(l.before.as_ref())
                .map(|(a, b)| a.mean - b.mean);
            like_for_like.push(json!({
                "title": title,
                "from": before.cycle.label, "to": after.cycle.label,
                "questions": l.questions.join(", "),
                "none": l.questions.is_empty(),
                "before": stats_json(l.before.as_ref(), d),
                "after": stats_json(l.after.as_ref(), d),
                "id": format!("lfl-{}-{}", l.domain, slug_id(&after.cycle.label)),
                "has_delta": delta.is_some(),
                "delta": delta.map(|x| signed(x, d)).unwrap_or_default(),
                "delta_full": delta,
            }));
        }
    }
    json!({
        "title": t.title, "key": t.key,
        "columns": columns, "rows": rows, "notes": notes, "charts": charts,
        "like_for_like": like_for_like,
    })
}

fn keys_title_trend(t: &Trend, key: &str) -> String {
    t.domain_keys()
        .into_iter()
        .find(|(k, _)| k == key)
        .map_or_else(|| key.to_string(), |(_, title)| title)
}

pub async fn trends(
    state: web::Data<AppState>,
    auth: Authenticated,
    raw: web::Query<RawFilters>,
) -> Result<HttpResponse, AppError> {
    let scope = scope_of(&auth)?;
    let raw = raw.into_inner();
    let comparable_only = reports::parse_comparable(&raw.comparable)?;
    let s = scope.clone();
    let (filters, options, (trends, plans), scope_text) = state
        .db
        .read_cancellable(move |conn| {
            let filters = reports::resolve_filters(conn, &raw)?;
            let options = reports::options(conn, &s)?;
            let trends = reports::trends(conn, &filters, &s, comparable_only)?;
            let plans = reports::plan_counts(conn, &filters, &s)?;
            let scope_text = describe_scope(conn, &s)?;
            Ok((filters, options, (trends, plans), scope_text))
        })
        .await?;
    let pairs: Vec<(&str, String)> = filters
        .pairs()
        .into_iter()
        .filter(|(k, _)| matches!(*k, "setting" | "region" | "icb" | "q"))
        .collect();
    let mut on = pairs.clone();
    on.push(("comparable", "1".into()));
    let data = json!({
        "scope": scope_text,
        "form": filter_form(&options, &filters, None, ""),
        "comparable_only": comparable_only,
        "toggle_on": format!("{BASE}/trends{}", query(&on)),
        "toggle_off": format!("{BASE}/trends{}", query(&pairs)),
        "trends": trends.iter().map(|t| {
            let mut data = trend_data(t, comparable_only);
            data["plans"] = plan_columns(t, &plans);
            data
        }).collect::<Vec<_>>(),
        "method": stats::METHOD,
        "breadcrumbs": [{"href": "/dashboard", "label": "Home"}, {"href": BASE, "label": "Reports"}],
    });
    page::render(
        &state,
        Some(&auth.page_user()),
        "reports/trends",
        "Year on year",
        data,
    )
}

// ---------------------------------------------------------------------------------------
// Exports
// ---------------------------------------------------------------------------------------

/// The most a body chunk holds, so one page of an export goes out in pieces.
const CHUNK_BYTES: usize = 64 * 1024;

type BodyChunk = Result<Bytes, actix_web::Error>;

/// Send `bytes` in pieces; false when the client has gone away.
async fn send_all(tx: &tokio::sync::mpsc::Sender<BodyChunk>, bytes: Vec<u8>) -> bool {
    let mut bytes = Bytes::from(bytes);
    while !bytes.is_empty() {
        let piece = bytes.split_to(bytes.len().min(CHUNK_BYTES));
        if tx.send(Ok(piece)).await.is_err() {
            return false;
        }
    }
    true
}

/// Read the rows page by page, write them in the format and send what is written; a
/// finished XLSX file is then read back in pieces. All file and database work is on the
/// blocking pool. Stops when the client goes away; a failure part-way is logged and cuts
/// the response short.
async fn run_export(
    db: crate::db::Db,
    filters: Filters,
    scope: Scope,
    kind: ExportKind,
    format: ExportFormat,
    tx: tokio::sync::mpsc::Sender<BodyChunk>,
) -> Result<(), AppError> {
    let (mut writer, first) =
        web::block(move || reports::ExportWriter::start(kind, format)).await??;
    if !send_all(&tx, first).await {
        return Ok(());
    }
    // Three stages at once, each on its own thread: while one page's rows are written in the
    // format, the next page's rows are made (parsing its stored reports and answers) and the
    // page after that is read (a database connection). The export takes about the longest of
    // the three rather than their sum; at most three pages are held.
    let fetch = |cursor: reports::ExportCursor| {
        let (f, s) = (filters.clone(), scope.clone());
        db.read(move |conn| {
            let mut cursor = cursor;
            let page = reports::next_page(conn, &f, &s, kind, &mut cursor)?;
            Ok((cursor, page))
        })
    };
    let (cursor, first_page) = fetch(reports::ExportCursor::default()).await?;
    // Where the next read starts; none once the last page has been read.
    let mut next = (!cursor.finished).then_some(cursor);
    let mut to_build = Some(first_page);
    let mut to_write: Option<Vec<Vec<reports::Cell>>> = None;
    while to_build.is_some() || to_write.is_some() {
        let (page, rows, from) = (to_build.take(), to_write.take(), next.take());
        let write = async move {
            match rows {
                Some(rows) => {
                    web::block(move || {
                        let bytes = writer.rows(&rows)?;
                        Ok::<_, AppError>((writer, Some(bytes)))
                    })
                    .await?
                }
                None => Ok((writer, None)),
            }
        };
        let build = async move {
            match page {
                Some(page) => Ok::<_, AppError>(Some(web::block(move || page.rows()).await??)),
                None => Ok(None),
            }
        };
        let read = async {
            match from {
                Some(cursor) => Ok::<_, AppError>(Some(fetch(cursor).await?)),
                None => Ok(None),
            }
        };
        let ((w, written), built, read) =
            futures_util::future::try_join3(write, build, read).await?;
        writer = w;
        to_write = built;
        if let Some((cursor, page)) = read {
            next = (!cursor.finished).then_some(cursor);
            to_build = Some(page);
        }
        if let Some(bytes) = written {
            if !send_all(&tx, bytes).await {
                return Ok(());
            }
        }
    }
    match web::block(move || writer.finish()).await?? {
        reports::Finished::Bytes(bytes) => {
            send_all(&tx, bytes).await;
        }
        reports::Finished::File(mut file) => loop {
            let (f, piece) = web::block(move || {
                use std::io::Read;
                let mut piece = vec![0; CHUNK_BYTES];
                let n = file
                    .read(&mut piece)
                    .map_err(|e| AppError::Internal(e.into()))?;
                piece.truncate(n);
                Ok::<_, AppError>((file, piece))
            })
            .await??;
            file = f;
            if piece.is_empty() || !send_all(&tx, piece).await {
                break;
            }
        },
    }
    Ok(())
}

async fn export(
    state: web::Data<AppState>,
    auth: Authenticated,
    raw: RawFilters,
    kind: ExportKind,
    format: ExportFormat,
) -> Result<HttpResponse, AppError> {
    stream_export(&state, scope_of(&auth)?, auth.actor(), raw, kind, format).await
}

/// Stream an export within `scope`, audit logged under `actor` (the pages and the API).
pub async fn stream_export(
    state: &AppState,
    scope: Scope,
    actor: crate::services::audit::Actor,
    raw: RawFilters,
    kind: ExportKind,
    format: ExportFormat,
) -> Result<HttpResponse, AppError> {
    let audited = format!("{}.{}", kind.name(), format.extension());
    let filters = state
        .db
        .write(move |conn| {
            let filters = reports::resolve_filters(conn, &raw)?;
            let described: Vec<(String, String)> = filters
                .pairs()
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect();
            audit::record(
                conn,
                &actor,
                Entry::new("report.export", "export", audited).after(json!({"filters": described})),
            )?;
            Ok(filters)
        })
        .await?;
    let file_name = reports::export_file_name(kind, format, &filters);
    let (tx, rx) = tokio::sync::mpsc::channel::<BodyChunk>(4);
    let db = state.db.clone();
    actix_web::rt::spawn(async move {
        let failed = tx.clone();
        if let Err(e) = run_export(db, filters, scope, kind, format, tx).await {
            tracing::error!(error = %crate::error::error_chain(&e), "export failed part-way; the response is cut short");
            let _ = failed
                .send(Err(actix_web::error::ErrorInternalServerError(
                    "export failed",
                )))
                .await;
        }
    });
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    Ok(HttpResponse::Ok()
        .content_type(format.content_type())
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{file_name}\""),
        ))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .streaming(body))
}

/// `route` serving one export: every export is the same handler with its kind and format.
/// (The route is passed in so that each registration below names its method, which the
/// route-by-role test counts.)
fn exporting(route: actix_web::Route, kind: ExportKind, format: ExportFormat) -> actix_web::Route {
    route.to(
        move |state: web::Data<AppState>, auth: Authenticated, raw: web::Query<RawFilters>| {
            export(state, auth, raw.into_inner(), kind, format)
        },
    )
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    use ExportFormat::{Csv, Json, Xlsx};
    use ExportKind::{Answers, Scores};
    cfg.service(
        web::scope(BASE)
            .route("", web::get().to(national))
            .route("/organisations/{id}", web::get().to(organisation))
            .route("/trends", web::get().to(trends))
            .route("/progress", web::get().to(super::progress_pages::progress))
            .route("/export/scores.csv", exporting(web::get(), Scores, Csv))
            .route("/export/scores.json", exporting(web::get(), Scores, Json))
            .route("/export/scores.xlsx", exporting(web::get(), Scores, Xlsx))
            .route("/export/answers.csv", exporting(web::get(), Answers, Csv))
            .route("/export/answers.json", exporting(web::get(), Answers, Json))
            .route("/export/answers.xlsx", exporting(web::get(), Answers, Xlsx)),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_differences() {
        assert_eq!(signed(0.25, 1), "+0.3");
        assert_eq!(signed(-1.25, 1), "-1.3");
        assert_eq!(signed(0.0, 1), "0.0");
        assert_eq!(signed(0.01, 1), "0.0");
    }
}
