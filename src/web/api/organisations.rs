//! Organisations: the registry list (administrators, as on `/admin/organisations`), one
//! organisation (administrators, auditors and the organisation's own people) and the CSV
//! import, which is [`crate::services::registry::import_file`]: all rows or none.

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::NaiveDate;
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::extract::{read_document, Page, PageParams};
use crate::db::schema::organisations;
use crate::error::AppError;
use crate::services::auth::roles::Action;
use crate::web::admin_organisations::{self as pages, ListQuery, OrgRow};
use crate::web::auth::ApiUser;
use crate::web::AppState;

const BASE: &str = "/api/v1/organisations";

/// An ICB, by ODS code and name.
#[derive(Debug, Serialize, ToSchema)]
pub struct IcbRef {
    pub ods_code: String,
    pub name: String,
}

/// An organisation in the registry.
#[derive(Debug, Serialize, ToSchema)]
pub struct Organisation {
    pub id: i64,
    pub ods_code: String,
    pub name: String,
    /// trust, icb, gp_practice, pcn, care_provider, region, ...
    pub kind: String,
    pub region: Option<String>,
    /// The ICB it belongs to today.
    pub icb: Option<IcbRef>,
    /// Care settings it is assessed in.
    pub settings: Vec<String>,
    pub opened_on: Option<NaiveDate>,
    pub closed_on: Option<NaiveDate>,
}

/// Filters of the organisation list.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Filters {
    /// Organisation kind, such as trust or icb.
    pub kind: Option<String>,
    pub region: Option<String>,
    /// Part of the name, or the start of the ODS code.
    pub q: Option<String>,
}

fn organisation(row: OrgRow, dates: Span, details: &pages::Details) -> Organisation {
    let (id, ods_code, name, kind, region) = row;
    Organisation {
        icb: details.icbs.get(&id).map(|(ods_code, name)| IcbRef {
            ods_code: ods_code.clone(),
            name: name.clone(),
        }),
        settings: details.settings.get(&id).cloned().unwrap_or_default(),
        opened_on: dates.0,
        closed_on: dates.1,
        id,
        ods_code,
        name,
        kind,
        region,
    }
}

type Dates = (i64, Option<NaiveDate>, Option<NaiveDate>);
/// Opened and closed.
type Span = (Option<NaiveDate>, Option<NaiveDate>);

/// The registry, in ODS code order (administrators).
#[utoipa::path(operation_id = "organisations_list", get, path = "/api/v1/organisations", tag = "organisations",
    params(Filters, PageParams),
    responses((status = 200, description = "A page of organisations", body = Page<Organisation>)))]
pub async fn list(
    state: web::Data<AppState>,
    api: ApiUser,
    filters: web::Query<Filters>,
    paging: web::Query<PageParams>,
) -> Result<web::Json<Page<Organisation>>, AppError> {
    api.require(Action::Administer)?;
    let paging = paging.checked()?;
    let mut query = ListQuery::default();
    query.kind = filters.kind.clone().unwrap_or_default();
    query.region = filters.region.clone().unwrap_or_default();
    query.q = filters.q.clone().unwrap_or_default();
    let (found, dates, query) = state
        .db
        .read(move |conn| {
            let found = pages::load_listing(conn, &query, paging.0, paging.1)?;
            let ids: Vec<i64> = found.rows.iter().map(|r| r.0).collect();
            let dates: Vec<Dates> = organisations::table
                .filter(organisations::id.eq_any(&ids))
                .select((
                    organisations::id,
                    organisations::opened_on,
                    organisations::closed_on,
                ))
                .load(conn)?;
            Ok((found, dates, query))
        })
        .await?;
    let items = found
        .rows
        .into_iter()
        .map(|row| {
            let d = dates
                .iter()
                .find(|(id, ..)| *id == row.0)
                .map_or((None, None), |(_, o, c)| (*o, *c));
            organisation(row, d, &found.details)
        })
        .collect();
    Ok(web::Json(Page::new(
        items,
        paging,
        found.total,
        BASE,
        &query.filters(),
    )))
}

/// One organisation (administrators, auditors, and its own people).
#[utoipa::path(operation_id = "organisations_get", get, path = "/api/v1/organisations/{id}", tag = "organisations",
    params(("id" = i64, Path, description = "The organisation's id", example = 1)),
    responses((status = 200, description = "The organisation", body = Organisation)))]
pub async fn get(
    state: web::Data<AppState>,
    api: ApiUser,
    path: web::Path<i64>,
) -> Result<web::Json<Organisation>, AppError> {
    let id = path.into_inner();
    api.require(Action::ReadOrganisation(id))?;
    let found = state
        .db
        .read(move |conn| {
            let row: Option<(OrgRow, Span)> = organisations::table
                .find(id)
                .select((
                    (
                        organisations::id,
                        organisations::ods_code,
                        organisations::name,
                        organisations::kind,
                        organisations::region,
                    ),
                    (organisations::opened_on, organisations::closed_on),
                ))
                .first(conn)
                .optional()?;
            let Some((row, dates)) = row else {
                return Err(AppError::NotFound);
            };
            let details = pages::details(conn, &[id])?;
            Ok(organisation(row, dates, &details))
        })
        .await?;
    Ok(web::Json(found))
}

/// What an import did.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImportReport {
    pub created: usize,
    pub updated: usize,
    pub unchanged: usize,
    /// Existing organisations among `updated` whose ICB changed.
    pub parent_changes: usize,
}

/// Import or update the registry from CSV (administrators). Every row is checked first;
/// with any problem, nothing is imported and the 422 lists each with its line and column.
#[utoipa::path(operation_id = "organisations_import", post, path = "/api/v1/organisations/import", tag = "organisations",
    request_body(content = String, content_type = "text/csv",
        description = "The registry file: a header line, then one organisation per line (columns in the README)"),
    responses((status = 200, description = "Imported", body = ImportReport)))]
pub async fn import(
    state: web::Data<AppState>,
    api: ApiUser,
    req: HttpRequest,
    mut payload: web::Payload,
) -> Result<HttpResponse, AppError> {
    api.require(Action::Administer)?;
    let limit = pages::upload_limit(&state);
    let bytes = read_document(&req, &mut payload, &["text/csv", "text/plain"], limit).await?;
    let r = crate::services::registry::import_file(&state.db, bytes, Some(api.user.id))
        .await
        .map_err(AppError::from)?;
    Ok(HttpResponse::Ok().json(ImportReport {
        created: r.created,
        updated: r.updated,
        unchanged: r.unchanged,
        parent_changes: r.parent_changes,
    }))
}
