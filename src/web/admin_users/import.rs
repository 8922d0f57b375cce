//! Inviting many people at once from a CSV file (administrators). The file is read whole and
//! every line is checked exactly as the invitation form checks one person
//! (`check_invitation`), so the rules cannot drift; every problem is listed with its line and
//! column. A good file is shown as a preview first, and only "Send the invitations" writes:
//! the file is checked again and every account, link and email is written in one transaction,
//! so either everyone is invited or nobody is (an address taken in between refuses the whole
//! file, with the line that names it).
//!
//! The file: a header line naming the columns (any order, any case) and one person per line.
//! `email`, `name` and `role` are required; `organisation` (the ODS code, for approvers and
//! contributors), `icb` or `region` (for group viewers) as the role needs.

use std::collections::{BTreeMap, HashMap};

use actix_multipart::Multipart;
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{check_invitation, invite, see_other, Invitation, InviteForm, Scope, ADMIN_BASE};
use crate::db::DbConnection;
use crate::error::AppError;
use crate::services::auth::roles::Action;
use crate::web::auth::Authenticated;
use crate::web::{page, AppState};

/// The columns a file may have.
pub const COLUMNS: [&str; 6] = ["email", "name", "role", "organisation", "icb", "region"];
const REQUIRED: [&str; 3] = ["email", "name", "role"];
/// The most people one file may invite: a national roll-out is done region by region.
pub const MAX_ROWS: usize = 2_000;
/// The largest file accepted (and sent back with the confirmation, so within the form limit).
pub const MAX_FILE_BYTES: usize = 256 * 1024;

/// A problem with the file: its line (the header is line 1) and column, when it has them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub line: Option<u64>,
    pub column: Option<String>,
    pub message: String,
}

impl Problem {
    fn file(message: impl Into<String>) -> Problem {
        Problem {
            line: None,
            column: None,
            message: message.into(),
        }
    }
}

/// One person as the file gives them, with their line.
#[derive(Clone)]
pub struct Row {
    pub line: u64,
    pub form: InviteForm,
}

/// Read the file: the rows that could be read and the lines that could not (each problem
/// with its line), or, when the file itself is unreadable (encoding, header, nobody in it),
/// only why.
pub fn parse(bytes: &[u8]) -> Result<(Vec<Row>, Vec<Problem>), Vec<Problem>> {
    let text = std::str::from_utf8(bytes).map_err(|_| {
        vec![Problem::file(
            "the file is not UTF-8 text; save it from your spreadsheet as \"CSV UTF-8\"",
        )]
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut records = reader.records();
    let header = match records.next() {
        Some(Ok(h)) => h,
        Some(Err(e)) => {
            return Err(vec![Problem::file(format!(
                "the header line cannot be read: {e}"
            ))])
        }
        None => return Err(vec![Problem::file("the file is empty")]),
    };
    let mut columns: Vec<Option<&'static str>> = Vec::new();
    let mut problems = Vec::new();
    for (i, name) in header.iter().enumerate() {
        let name = name.trim().to_lowercase();
        match COLUMNS.iter().find(|c| **c == name) {
            Some(c) if columns.contains(&Some(*c)) => problems.push(Problem {
                line: Some(1),
                column: Some(name.clone()),
                message: format!("the column {name} is named twice"),
            }),
            Some(c) => columns.push(Some(*c)),
            None => {
                problems.push(Problem {
                    line: Some(1),
                    column: Some(format!("column {}", i + 1)),
                    message: format!(
                        "\"{}\" is not a column this file may have: use {}",
                        name.chars().take(40).collect::<String>(),
                        COLUMNS.join(", ")
                    ),
                });
                columns.push(None);
            }
        }
    }
    for required in REQUIRED {
        if !columns.contains(&Some(required)) {
            problems.push(Problem {
                line: Some(1),
                column: Some(required.into()),
                message: format!("the header has no {required} column"),
            });
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let mut rows = Vec::new();
    for record in records {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                problems.push(Problem::file(format!("a line cannot be read: {e}")));
                continue;
            }
        };
        let line = record.position().map_or(0, csv::Position::line);
        if record.iter().all(|c| c.trim().is_empty()) {
            continue;
        }
        if record.len() != columns.len() {
            problems.push(Problem {
                line: Some(line),
                column: None,
                message: format!(
                    "the line has {} cells and the header {}; check for a missing or extra comma",
                    record.len(),
                    columns.len()
                ),
            });
            continue;
        }
        let mut cells: HashMap<&str, String> = HashMap::new();
        for (column, cell) in columns.iter().zip(record.iter()) {
            if let Some(c) = column {
                cells.insert(c, cell.trim().to_string());
            }
        }
        let cell = |c: &str| cells.get(c).cloned().unwrap_or_default();
        rows.push(Row {
            line,
            form: InviteForm {
                email: cell("email"),
                name: cell("name"),
                role: cell("role"),
                organisation: Some(cell("organisation")),
                icb: cell("icb"),
                region: cell("region"),
                ..InviteForm::default()
            },
        });
        if rows.len() > MAX_ROWS {
            return Err(vec![Problem::file(format!(
                "the file has more than {MAX_ROWS} people; split it into files of at most {MAX_ROWS}"
            ))]);
        }
    }
    if rows.is_empty() && problems.is_empty() {
        return Err(vec![Problem::file(
            "the file has a header line but nobody to invite; add one line per person",
        )]);
    }
    Ok((rows, problems))
}

/// Every problem of the file, in line order: its unreadable lines and the rows' checks.
fn all_problems(
    conn: &mut DbConnection,
    rows: &[Row],
    mut unreadable: Vec<Problem>,
) -> Result<Result<Vec<Invitation>, Vec<Problem>>, AppError> {
    match check_all(conn, rows)? {
        Ok(invitations) if unreadable.is_empty() => Ok(Ok(invitations)),
        Ok(_) => Ok(Err(unreadable)),
        Err(mut problems) => {
            problems.append(&mut unreadable);
            problems.sort_by_key(|p| p.line);
            Ok(Err(problems))
        }
    }
}

/// Check every row as the invitation form would, and that no address is listed twice.
fn check_all(
    conn: &mut DbConnection,
    rows: &[Row],
) -> Result<Result<Vec<Invitation>, Vec<Problem>>, AppError> {
    let mut problems = Vec::new();
    let mut invitations = Vec::new();
    let mut seen: BTreeMap<String, u64> = BTreeMap::new();
    for row in rows {
        let email = row.form.email.trim().to_lowercase();
        if let Some(first) = seen.insert(email.clone(), row.line) {
            problems.push(Problem {
                line: Some(row.line),
                column: Some("email".into()),
                message: format!("{email} is already on line {first}; list each person once"),
            });
            continue;
        }
        match check_invitation(conn, Scope::Everyone, &row.form)? {
            // A file invites new people: someone who has an account is added to another
            // organisation one at a time from the form, where the administrator is told what
            // happened (docs/collaboration.md).
            Ok(invitation) if invitation.existing.is_some() => problems.push(Problem {
                line: Some(row.line),
                column: Some("email".into()),
                message: format!(
                    "An account for {} already exists. To add this organisation to it, invite them from the invitation form",
                    invitation.email.as_str()
                ),
            }),
            Ok(invitation) => invitations.push(invitation),
            Err(errors) => problems.extend(errors.into_iter().map(|e| Problem {
                line: Some(row.line),
                column: Some(e.path),
                message: e.message,
            })),
        }
    }
    Ok(if problems.is_empty() {
        Ok(invitations)
    } else {
        Err(problems)
    })
}

/// The largest file accepted here.
fn limit(state: &AppState) -> usize {
    state.settings.max_upload_bytes.min(MAX_FILE_BYTES)
}

async fn import_page(
    state: &AppState,
    auth: &Authenticated,
    status: StatusCode,
    problems: &[Problem],
    preview: Option<(&[Row], &str)>,
) -> Result<HttpResponse, AppError> {
    let problem_rows: Vec<Value> = problems
        .iter()
        .enumerate()
        .map(|(i, p)| json!({"id": format!("problem-{i}"), "line": p.line, "column": p.column, "message": p.message}))
        .collect();
    let summary: Vec<Value> = problems
        .iter()
        .enumerate()
        .take(10)
        .map(|(i, p)| {
            let place = match (p.line, &p.column) {
                (Some(l), Some(c)) => format!("Line {l}, column {c}: "),
                (Some(l), None) => format!("Line {l}: "),
                _ => String::new(),
            };
            json!({"href": format!("#problem-{i}"), "message": format!("{place}{}", p.message)})
        })
        .collect();
    let (people, file) = match preview {
        Some((rows, file)) => (
            rows.iter()
                .map(|r| {
                    let place: Vec<String> = [
                        r.form.organisation.clone().unwrap_or_default(),
                        r.form.icb.clone(),
                        r.form.region.clone(),
                    ]
                    .into_iter()
                    .filter(|s| !s.is_empty())
                    .collect();
                    let role = crate::services::auth::roles::Role::parse(r.form.role.trim())
                        .map(|x| x.label());
                    json!({"line": r.line, "email": r.form.email.trim().to_lowercase(), "name": r.form.name,
                           "role": role, "place": place.join(", ")})
                })
                .collect::<Vec<_>>(),
            Some(file.to_string()),
        ),
        None => (Vec::new(), None),
    };
    page::render_with_status(
        status,
        state,
        Some(&auth.page_user()),
        "admin/users_import",
        if people.is_empty() {
            "Invite people from a file"
        } else {
            "Check the people to invite"
        },
        json!({
            "columns": COLUMNS.join(", "),
            "max_rows": MAX_ROWS,
            "max_upload": crate::error::human_bytes(limit(state)),
            "problems": problem_rows,
            "problem_count": problems.len(),
            "errors": if summary.is_empty() { Value::Null } else { json!(summary) },
            "people": people,
            "count": people.len(),
            "file": file,
            "breadcrumbs": [{"href": "/dashboard", "label": "Home"}, {"href": ADMIN_BASE, "label": "People"}],
        }),
    )
}

pub async fn form(
    state: web::Data<AppState>,
    auth: Authenticated,
) -> Result<HttpResponse, AppError> {
    auth.require(Action::Administer)?;
    import_page(&state, &auth, StatusCode::OK, &[], None).await
}

/// Check the uploaded file and show either its problems or the preview.
pub async fn upload(
    state: web::Data<AppState>,
    auth: Authenticated,
    payload: Multipart,
) -> Result<HttpResponse, AppError> {
    auth.require(Action::Administer)?;
    let max = limit(&state);
    let mut parts =
        match crate::web::upload::read_parts(payload, max, &["csrf_token", "file"]).await {
            Ok(parts) => parts,
            Err(AppError::PayloadTooLarge(_)) => {
                let p = Problem::file(format!(
                    "the file is larger than {}; split it into smaller files",
                    crate::error::human_bytes(max)
                ));
                return import_page(&state, &auth, StatusCode::PAYLOAD_TOO_LARGE, &[p], None).await;
            }
            Err(e) => return Err(e),
        };
    auth.check_csrf(&crate::web::upload::text(&parts, "csrf_token"))?;
    let file = parts.remove("file").unwrap_or_default();
    if file.is_empty() {
        let p = Problem::file("select a CSV file of people to invite");
        return import_page(&state, &auth, StatusCode::UNPROCESSABLE_ENTITY, &[p], None).await;
    }
    check_and_show(&state, &auth, file).await
}

async fn check_and_show(
    state: &AppState,
    auth: &Authenticated,
    file: Vec<u8>,
) -> Result<HttpResponse, AppError> {
    let (rows, unreadable) = match parse(&file) {
        Ok(parsed) => parsed,
        Err(problems) => {
            return import_page(
                state,
                auth,
                StatusCode::UNPROCESSABLE_ENTITY,
                &problems,
                None,
            )
            .await
        }
    };
    let checked = rows.clone();
    match state
        .db
        .read(move |conn| all_problems(conn, &checked, unreadable).map(|r| r.map(|_| ())))
        .await?
    {
        Ok(()) => {
            let text = String::from_utf8_lossy(&file).into_owned();
            import_page(state, auth, StatusCode::OK, &[], Some((&rows, &text))).await
        }
        Err(problems) => {
            import_page(
                state,
                auth,
                StatusCode::UNPROCESSABLE_ENTITY,
                &problems,
                None,
            )
            .await
        }
    }
}

#[derive(Deserialize)]
pub struct ConfirmForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    file: String,
}

/// Invite everyone in the previewed file, in one transaction, or nobody.
pub async fn confirm(
    state: web::Data<AppState>,
    auth: Authenticated,
    form: web::Form<ConfirmForm>,
) -> Result<HttpResponse, AppError> {
    auth.require(Action::Administer)?;
    auth.check_csrf(&form.csrf_token)?;
    // Giving many people roles at once: a recent sign-in or confirmation, as for one.
    if let Some(again) =
        crate::web::second_factor::demand_recent(&state, &auth, &format!("{ADMIN_BASE}/import"))
    {
        return Ok(again);
    }
    let file = form.into_inner().file;
    if file.len() > limit(&state) {
        let p = Problem::file("the file is too large; split it into smaller files");
        return import_page(&state, &auth, StatusCode::PAYLOAD_TOO_LARGE, &[p], None).await;
    }
    let (rows, unreadable) = match parse(file.as_bytes()) {
        Ok(parsed) => parsed,
        Err(problems) => {
            return import_page(
                &state,
                &auth,
                StatusCode::UNPROCESSABLE_ENTITY,
                &problems,
                None,
            )
            .await
        }
    };
    let actor = auth.actor();
    let templates = state.templates.clone();
    let base_url = state.settings.base_url.clone();
    let key = state.settings.mail.sealing_key.clone();
    let outcome = state
        .db
        .write(move |conn| match all_problems(conn, &rows, unreadable)? {
            Ok(invitations) => {
                let n = invitations.len();
                for invitation in invitations {
                    invite(conn, &templates, &key, &base_url, &actor, invitation)?;
                }
                Ok(Ok(n))
            }
            Err(problems) => Ok(Err(problems)),
        })
        .await;
    match outcome {
        Ok(Ok(n)) => {
            crate::services::mail::wake();
            Ok(see_other(format!("{ADMIN_BASE}?done=imported&invited={n}")))
        }
        Ok(Err(problems)) => {
            import_page(
                &state,
                &auth,
                StatusCode::UNPROCESSABLE_ENTITY,
                &problems,
                None,
            )
            .await
        }
        // Someone was invited by hand with one of these addresses at the same moment.
        Err(AppError::Database(diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::UniqueViolation,
            _,
        ))) => {
            let p = Problem::file(
                "an address in the file was given an account while the file was being imported; nobody was invited: check the file again",
            );
            import_page(&state, &auth, StatusCode::CONFLICT, &[p], None).await
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn problems(bytes: &[u8]) -> Vec<Problem> {
        match parse(bytes) {
            Err(p) => p,
            Ok((_, p)) => p,
        }
    }

    #[test]
    fn the_header_decides_the_columns_and_every_shape_problem_is_named() {
        let (rows, _) = parse(
            b"\xEF\xBB\xBFName,EMAIL,role,organisation\nAda,ada@x.nhs.uk,org_contributor,RA1\n\n",
        )
        .unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(
            (rows[0].line, rows[0].form.email.as_str()),
            (2, "ada@x.nhs.uk")
        );
        let problems = problems(b"email,nom\n");
        assert!(problems
            .iter()
            .any(|p| p.message.contains("\"nom\" is not a column")));
        assert!(problems.iter().any(|p| p.column.as_deref() == Some("name")));
        let (_, problems) = parse(b"email,name,role\na@x.nhs.uk,A\n").unwrap();
        assert_eq!(problems[0].line, Some(2));
        assert!(parse(b"").is_err());
        assert!(parse(b"email,name,role\n").is_err());
        assert!(parse(&[0xff, 0xfe, 0x00]).is_err());
    }
}
