//! Reports: peer benchmarks (the national and group figures of `/reports`), year on year
//! (`/reports/trends`) and the streamed exports, for whoever the pages show them to
//! ([`Scope`]: auditors and administrators everything, group viewers their ICB or region).
//! Figures come from [`crate::services::reports`]; exports stream through the pages' own exporter.

use std::collections::BTreeMap;

use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::domain::stats::{self, GroupStats};
use crate::error::AppError;
use crate::services::reports::{self, ExportFormat, ExportKind, RawFilters, Scope};
use crate::web::api::extract::{utc, Page, PageParams};
use crate::web::auth::ApiUser;
use crate::web::report_pages;
use crate::web::AppState;

fn scope_of(api: &ApiUser) -> Result<Scope, AppError> {
    Scope::of(&api.user).ok_or(AppError::Forbidden)
}

/// Which assessments a report covers. Every filter is optional; one that names nothing
/// that exists is a 400 saying which.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReportFilters {
    /// A cycle, by id or label (like 2025/26). Benchmarks default to the latest.
    pub cycle: Option<String>,
    /// A care setting, like acute.
    pub setting: Option<String>,
    /// A region, as snapshotted when the cycle opened.
    pub region: Option<String>,
    /// An ICB's ODS code.
    pub icb: Option<String>,
    /// not_started, in_progress, submitted, late or not_submitted (its cycle closed first).
    pub status: Option<String>,
    /// Part of an organisation's name, or the start of its ODS code.
    pub q: Option<String>,
}

impl ReportFilters {
    fn raw(&self) -> RawFilters {
        let text = |v: &Option<String>| v.clone().unwrap_or_default();
        RawFilters {
            cycle: text(&self.cycle),
            setting: text(&self.setting),
            region: text(&self.region),
            icb: text(&self.icb),
            status: text(&self.status),
            q: text(&self.q),
            ..RawFilters::default()
        }
    }
}

/// Summary figures of a group of scores.
#[derive(Debug, Serialize, ToSchema)]
pub struct Stats {
    /// Organisations with a score.
    pub count: usize,
    pub mean: f64,
    pub median: f64,
    pub q1: f64,
    pub q3: f64,
    pub min: f64,
    pub max: f64,
}

impl From<&GroupStats> for Stats {
    fn from(s: &GroupStats) -> Self {
        Stats {
            count: s.count,
            mean: s.mean,
            median: s.median,
            q1: s.q1,
            q3: s.q3,
            min: s.min,
            max: s.max,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DomainFigures {
    pub key: String,
    pub title: String,
    /// Null when no organisation has a score.
    pub stats: Option<Stats>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GroupFigures {
    /// The group's label (a setting, a region, or an ICB's name and code).
    pub group: String,
    pub stats: Stats,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Breakdown {
    pub domain: String,
    pub groups: Vec<GroupFigures>,
}

/// Figures for one question set version (figures never mix versions).
#[derive(Debug, Serialize, ToSchema)]
pub struct VersionFigures {
    pub key: String,
    pub version: String,
    pub title: String,
    /// Assessments of this version, and those submitted (whose scores count).
    pub members: usize,
    pub submitted: usize,
    pub domains: Vec<DomainFigures>,
    pub overall: Option<Stats>,
    /// With `by`: each domain's figures per group.
    pub breakdown: Vec<Breakdown>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CycleRef {
    pub id: i64,
    pub label: String,
}

/// Peer benchmarks.
#[derive(Debug, Serialize, ToSchema)]
pub struct Benchmarks {
    pub cycle: Option<CycleRef>,
    /// Assessments by reporting status (the status filter aside).
    pub counts: BTreeMap<String, usize>,
    /// How the figures are worked out.
    pub method: String,
    pub versions: Vec<VersionFigures>,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ByParam {
    /// Break each domain down by setting, region or icb.
    pub by: Option<String>,
}

/// Distributions of every domain's scores among the organisations in the filters and the
/// caller's scope (auditors, administrators, group viewers).
#[utoipa::path(operation_id = "reports_benchmarks", get, path = "/api/v1/reports/benchmarks", tag = "reports",
    params(ReportFilters, ByParam),
    responses((status = 200, description = "The figures", body = Benchmarks)))]
pub async fn benchmarks(
    state: web::Data<AppState>,
    api: ApiUser,
    filters: web::Query<ReportFilters>,
    by: web::Query<ByParam>,
) -> Result<web::Json<Benchmarks>, AppError> {
    let scope = scope_of(&api)?;
    let by = reports::parse_group_by(by.by.as_deref().unwrap_or(""))?;
    let raw = filters.raw();
    let (cycle, view) = state
        .db
        .read_cancellable(move |conn| {
            let filters = reports::resolve_view_filters(conn, &raw)?;
            let view = reports::national(conn, &filters, &scope, by)?;
            Ok((filters.cycle, view))
        })
        .await?;
    let versions = view
        .blocks
        .iter()
        .map(|b| {
            let s = &b.version.summary;
            VersionFigures {
                key: s.key.clone(),
                version: s.version.clone(),
                title: s.title.clone(),
                members: b.members,
                submitted: b.submitted,
                domains: b
                    .domains
                    .iter()
                    .map(|(key, title, st)| DomainFigures {
                        key: key.clone(),
                        title: title.clone(),
                        stats: st.as_ref().map(Stats::from),
                    })
                    .collect(),
                overall: b.overall.as_ref().map(Stats::from),
                breakdown: b
                    .breakdown
                    .iter()
                    .map(|(domain, groups)| Breakdown {
                        domain: domain.clone(),
                        groups: groups
                            .iter()
                            .map(|(g, st)| GroupFigures {
                                group: g.clone(),
                                stats: st.into(),
                            })
                            .collect(),
                    })
                    .collect(),
            }
        })
        .collect();
    Ok(web::Json(Benchmarks {
        cycle: cycle.map(|c| CycleRef {
            id: c.id,
            label: c.label,
        }),
        counts: view
            .counts
            .iter()
            .map(|(s, n)| (s.as_str().to_string(), *n))
            .collect(),
        method: stats::METHOD.to_string(),
        versions,
    }))
}

/// How far one organisation has got with the cycle's assessment (no answers, no scores).
#[derive(Debug, Serialize, ToSchema)]
pub struct ProgressRow {
    pub assessment_id: i64,
    pub organisation_id: i64,
    pub ods_code: String,
    pub organisation_name: String,
    pub setting: String,
    /// not_started, in_progress, submitted or late.
    pub report_status: String,
    pub deadline: chrono::NaiveDate,
    /// Questions answered, of those shown.
    pub answered: usize,
    pub visible: usize,
    /// Sections by hand-over status: not_started, in_progress, ready_for_review, returned,
    /// reviewed (every status, zeros included).
    pub sections: BTreeMap<String, usize>,
    /// Who holds which sections (by title).
    pub holders: Vec<ProgressHolder>,
    /// Sections nobody holds.
    pub unassigned: usize,
    /// When an answer last changed.
    pub last_activity: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProgressHolder {
    pub name: String,
    pub sections: Vec<String>,
}

/// The support view: how far each organisation in the filters and the caller's scope has got
/// (auditors, administrators, group viewers), by name, a page at a time. Answers and scores
/// are not included.
#[utoipa::path(operation_id = "reports_progress", get, path = "/api/v1/reports/progress", tag = "reports",
    params(ReportFilters, PageParams),
    responses((status = 200, description = "A page of organisations' progress", body = Page<ProgressRow>)))]
pub async fn progress(
    state: web::Data<AppState>,
    api: ApiUser,
    filters: web::Query<ReportFilters>,
    paging: web::Query<PageParams>,
) -> Result<web::Json<Page<ProgressRow>>, AppError> {
    let scope = scope_of(&api)?;
    let (page, per_page) = paging.checked()?;
    let raw = filters.raw();
    let (checked, total, rows) = state
        .db
        .read_cancellable(move |conn| {
            let checked = reports::resolve_view_filters(conn, &raw)?;
            let total = reports::count_members(conn, &checked, &scope)?;
            let listing = reports::list(
                conn,
                &checked,
                &scope,
                (reports::SortKey::Name, false),
                crate::web::listing::offset_by(page, per_page),
                per_page,
            )?;
            let rows = reports::progress(conn, &listing.members)?;
            Ok((checked, total, rows))
        })
        .await?;
    let items = rows
        .into_iter()
        .map(|p| ProgressRow {
            assessment_id: p.assessment_id,
            organisation_id: p.organisation_id,
            ods_code: p.ods_code,
            organisation_name: p.name,
            setting: p.setting,
            report_status: p.status.as_str().to_string(),
            deadline: p.deadline,
            answered: p.answered,
            visible: p.visible,
            sections: p
                .sections
                .into_iter()
                .map(|(k, n)| (k.to_string(), n))
                .collect(),
            holders: p
                .holders
                .into_iter()
                .map(|h| ProgressHolder {
                    name: h.name,
                    sections: h.sections,
                })
                .collect(),
            unassigned: p.unassigned,
            last_activity: p.last_activity.map(utc),
        })
        .collect();
    let pairs = checked.pairs();
    let borrowed: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    Ok(web::Json(Page::new(
        items,
        (page, per_page),
        total,
        "/api/v1/reports/progress",
        &borrowed,
    )))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TrendFilters {
    pub setting: Option<String>,
    pub region: Option<String>,
    /// An ICB's ODS code.
    pub icb: Option<String>,
    pub q: Option<String>,
    /// 1: add like-for-like figures where a domain is not comparable between versions.
    pub comparable: Option<String>,
}

/// One cycle of a trend.
#[derive(Debug, Serialize, ToSchema)]
pub struct TrendPoint {
    pub cycle: CycleRef,
    pub version: String,
    /// Submitted assessments counted.
    pub submitted: usize,
    /// Domain key -> figures.
    pub domains: BTreeMap<String, Stats>,
    pub overall: Option<Stats>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DomainComparability {
    pub key: String,
    pub comparable: bool,
    pub reasons: Vec<String>,
}

/// A domain's figure over only the questions both versions share unchanged.
#[derive(Debug, Serialize, ToSchema)]
pub struct LikeForLike {
    pub domain: String,
    pub questions: Vec<String>,
    pub before: Option<Stats>,
    pub after: Option<Stats>,
}

/// From one point to the next.
#[derive(Debug, Serialize, ToSchema)]
pub struct TrendStep {
    pub from: String,
    pub to: String,
    pub overall_comparable: bool,
    pub domains: Vec<DomainComparability>,
    pub like_for_like: Vec<LikeForLike>,
}

/// A question set family across cycles.
#[derive(Debug, Serialize, ToSchema)]
pub struct Trend {
    pub key: String,
    pub title: String,
    pub points: Vec<TrendPoint>,
    pub steps: Vec<TrendStep>,
}

/// Year-on-year figures per question set family, with what is comparable between versions
/// (auditors, administrators, group viewers).
#[utoipa::path(operation_id = "reports_trends", get, path = "/api/v1/reports/trends", tag = "reports",
    params(TrendFilters),
    responses((status = 200, description = "The trends", body = Vec<Trend>)))]
pub async fn trends(
    state: web::Data<AppState>,
    api: ApiUser,
    filters: web::Query<TrendFilters>,
) -> Result<web::Json<Vec<Trend>>, AppError> {
    let scope = scope_of(&api)?;
    let f = filters.into_inner();
    let comparable = reports::parse_comparable(f.comparable.as_deref().unwrap_or(""))?;
    let raw = RawFilters {
        setting: f.setting.unwrap_or_default(),
        region: f.region.unwrap_or_default(),
        icb: f.icb.unwrap_or_default(),
        q: f.q.unwrap_or_default(),
        ..RawFilters::default()
    };
    let trends = state
        .db
        .read(move |conn| {
            let filters = reports::resolve_filters(conn, &raw)?;
            reports::trends(conn, &filters, &scope, comparable)
        })
        .await?;
    let cycle = |c: &reports::CycleRef| CycleRef {
        id: c.id,
        label: c.label.clone(),
    };
    Ok(web::Json(
        trends
            .iter()
            .map(|t| Trend {
                key: t.key.clone(),
                title: t.title.clone(),
                points: t
                    .points
                    .iter()
                    .map(|p| TrendPoint {
                        cycle: cycle(&p.cycle),
                        version: p.version.summary.version.clone(),
                        submitted: p.submitted,
                        domains: p
                            .domains
                            .iter()
                            .map(|(k, s)| (k.clone(), s.into()))
                            .collect(),
                        overall: p.overall.as_ref().map(Stats::from),
                    })
                    .collect(),
                steps: t
                    .steps
                    .iter()
                    .zip(t.points.windows(2))
                    .map(|(s, pair)| TrendStep {
                        from: pair[0].cycle.label.clone(),
                        to: pair[1].cycle.label.clone(),
                        overall_comparable: s.diff.overall_comparable,
                        domains: s
                            .diff
                            .domains
                            .iter()
                            .map(|d| DomainComparability {
                                key: d.key.clone(),
                                comparable: d.comparable,
                                reasons: d.reasons.clone(),
                            })
                            .collect(),
                        like_for_like: s
                            .like_for_like
                            .iter()
                            .map(|l| LikeForLike {
                                domain: l.domain.clone(),
                                questions: l.questions.clone(),
                                before: l.before.as_ref().map(Stats::from),
                                after: l.after.as_ref().map(Stats::from),
                            })
                            .collect(),
                    })
                    .collect(),
            })
            .collect(),
    ))
}

/// What an export holds: a row per domain, or per question.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ExportName {
    Scores,
    Answers,
}

/// The export's format.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ExportFileFormat {
    Csv,
    Json,
    Xlsx,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportParams {
    /// csv (the default), json or xlsx.
    pub format: Option<ExportFileFormat>,
}

/// Stream every submitted assessment in the filters and the caller's scope, a row per
/// domain (`scores`) or per question (`answers`); columns in docs/exports.md.
#[utoipa::path(operation_id = "reports_export", get, path = "/api/v1/exports/{kind}", tag = "reports",
    params(("kind" = ExportName, Path, description = "scores or answers"), ExportParams, ReportFilters),
    responses((status = 200, description = "The export, streamed",
        content((String = "text/csv"), (Vec<Object> = "application/json"),
            (String = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")))))]
pub async fn export(
    state: web::Data<AppState>,
    api: ApiUser,
    path: web::Path<ExportName>,
    params: web::Query<ExportParams>,
    filters: web::Query<ReportFilters>,
) -> Result<HttpResponse, AppError> {
    let scope = scope_of(&api)?;
    let kind = match path.into_inner() {
        ExportName::Scores => ExportKind::Scores,
        ExportName::Answers => ExportKind::Answers,
    };
    let format = match params.format {
        Some(ExportFileFormat::Csv) | None => ExportFormat::Csv,
        Some(ExportFileFormat::Json) => ExportFormat::Json,
        Some(ExportFileFormat::Xlsx) => ExportFormat::Xlsx,
    };
    report_pages::stream_export(&state, scope, api.actor(), filters.raw(), kind, format).await
}
