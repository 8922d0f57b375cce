//! One organisation changed by an administrator's form: its name, care settings, region and
//! ICB, or its closing. The form is turned into a one-row registry file and goes through the
//! same reading ([`parse_csv`]) and the same checks and writes ([`apply`]) as an import, so the
//! rules cannot drift apart: the ICB history (a new ICB closes the current membership and
//! opens another; the same start date corrects it), the date order, the audit entry. Only
//! the errors are renamed: each is reported against the form field named like its column.
//!
//! The change is conditional on the organisation being as the form saw it (`updated_at`), so
//! of two administrators editing at once the second is told to look again rather than
//! silently undoing the first's change.

use chrono::{NaiveDate, NaiveDateTime, Utc};
use diesel::prelude::*;

use super::apply::apply_or_refuse;
use super::parse::parse_csv;
use super::rows::ImportReport;
use crate::db::schema::organisations;
use crate::db::DbConnection;
use crate::domain::FieldError;
use crate::error::AppError;

/// What the edit form sends; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct OrgEdit {
    pub name: String,
    /// Care settings as the file writes them: `acute;community`.
    pub settings: Option<String>,
    pub region: Option<String>,
    /// The ICB's ODS code; `None` or blank keeps the current one.
    pub parent_icb: Option<String>,
    pub parent_from: Option<String>,
    /// The closing date, when closing.
    pub closed_on: Option<String>,
}

/// The timestamp as the form carries it, exactly (every digit the database keeps).
pub fn seen_stamp(at: NaiveDateTime) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.f").to_string()
}

/// The row of a one-line registry file, from the form's fields.
fn as_file(ods_code: &str, edit: &OrgEdit) -> Result<Vec<u8>, AppError> {
    let mut columns = vec![("ods_code", Some(ods_code.to_string()))];
    columns.push(("name", Some(edit.name.clone())));
    columns.push(("settings", edit.settings.clone()));
    columns.push(("region", edit.region.clone()));
    columns.push(("parent_icb", edit.parent_icb.clone()));
    columns.push(("parent_from", edit.parent_from.clone()));
    columns.push(("closed_on", edit.closed_on.clone()));
    let present: Vec<(&str, String)> = columns
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .collect();
    let mut writer = csv::Writer::from_writer(Vec::new());
    let write = |w: &mut csv::Writer<Vec<u8>>, record: Vec<&str>| {
        w.write_record(record)
            .map_err(|e| AppError::Internal(anyhow::anyhow!("writing a registry row: {e}")))
    };
    write(&mut writer, present.iter().map(|(k, _)| *k).collect())?;
    write(
        &mut writer,
        present.iter().map(|(_, v)| v.as_str()).collect(),
    )?;
    writer
        .into_inner()
        .map_err(|e| AppError::Internal(anyhow::anyhow!("writing a registry row: {e}")))
}

/// Change organisation `id` as `edit` says, in the caller's transaction, if it is still as it
/// was at `seen` (its `updated_at`). Problems come back as field errors named by column.
pub fn edit(
    conn: &mut DbConnection,
    actor: Option<i64>,
    id: i64,
    seen: &str,
    edit: &OrgEdit,
    today: NaiveDate,
) -> Result<ImportReport, AppError> {
    let (ods_code, updated_at): (String, NaiveDateTime) = organisations::table
        .find(id)
        .select((organisations::ods_code, organisations::updated_at))
        .first(conn)
        .optional()?
        .ok_or(AppError::NotFound)?;
    // Take the row first, conditional on what the form saw: on PostgreSQL a second editor
    // waits here for the first to commit, then matches nothing.
    let now = Utc::now().naive_utc();
    let guarded = diesel::update(
        organisations::table
            .find(id)
            .filter(organisations::updated_at.eq(updated_at)),
    )
    .set(organisations::updated_at.eq(now))
    .execute(conn)?;
    if guarded != 1 || seen_stamp(updated_at) != seen {
        return Err(AppError::Conflict(
            "Someone else changed this organisation after you opened the page. Look at it again, then make your change."
                .into(),
        ));
    }
    let file = as_file(&ods_code, edit)?;
    let rows = parse_csv(&file).map_err(to_fields)?;
    apply_or_refuse(conn, &rows, actor, today)?.map_err(to_fields)
}

fn to_fields(errors: Vec<super::RowError>) -> AppError {
    AppError::Validation(
        errors
            .into_iter()
            .map(|e| FieldError::new(e.column.unwrap_or_else(|| "name".into()), e.message))
            .collect(),
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn the_form_becomes_a_file_with_only_its_fields_quoted_as_needed() {
        let edit = OrgEdit {
            name: "Trust, \"North\"".into(),
            settings: Some("acute;community".into()),
            ..OrgEdit::default()
        };
        let file = String::from_utf8(as_file("RA1", &edit).unwrap()).unwrap();
        assert_eq!(
            file,
            "ods_code,name,settings\nRA1,\"Trust, \"\"North\"\"\",acute;community\n"
        );
        let rows = parse_csv(file.as_bytes()).unwrap();
        assert_eq!(rows[0].name, "Trust, \"North\"");
    }
}
