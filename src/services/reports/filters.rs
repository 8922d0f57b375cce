//! The filters of the national and group views, the list's sort and paging: parsed strictly
//! from what was typed in the address and resolved against the database once, so every query
//! below trusts them.

use chrono::NaiveDate;
use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use crate::db::schema::{assessments, cycle_versions, cycles, organisations};
use crate::db::DbConnection;
use crate::error::AppError;

use super::status::ReportStatus;

/// Filters as typed in the address; every field may be empty.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct RawFilters {
    #[serde(default)]
    pub cycle: String,
    #[serde(default)]
    pub setting: String,
    #[serde(default)]
    pub region: String,
    #[serde(default)]
    pub icb: String,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub q: String,
    #[serde(default)]
    pub sort: String,
    #[serde(default)]
    pub page: String,
    #[serde(default)]
    pub by: String,
    #[serde(default)]
    pub comparable: String,
}

/// An ICB as the reports name it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Icb {
    pub id: i64,
    pub ods_code: String,
    pub name: String,
}

/// A cycle as the reports name it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CycleRef {
    pub id: i64,
    pub label: String,
    pub opens_on: NaiveDate,
}

/// Checked filters.
#[derive(Debug, Clone, Default)]
pub struct Filters {
    pub cycle: Option<CycleRef>,
    pub setting: Option<String>,
    pub region: Option<String>,
    pub icb: Option<Icb>,
    pub status: Option<ReportStatus>,
    pub q: Option<String>,
}

impl Filters {
    /// The filters as query-string pairs, for links that keep them.
    pub fn pairs(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if let Some(c) = &self.cycle {
            out.push(("cycle", c.id.to_string()));
        }
        if let Some(s) = &self.setting {
            out.push(("setting", s.clone()));
        }
        if let Some(r) = &self.region {
            out.push(("region", r.clone()));
        }
        if let Some(i) = &self.icb {
            out.push(("icb", i.ods_code.clone()));
        }
        if let Some(s) = self.status {
            out.push(("status", s.as_str().to_string()));
        }
        if let Some(q) = &self.q {
            out.push(("q", q.clone()));
        }
        out
    }
}

fn is_slug(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && s.len() <= 63
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// Check the filters against what exists, naming every problem in one plain message (the
/// pages show it on a 400 page).
pub fn resolve_filters(conn: &mut DbConnection, raw: &RawFilters) -> Result<Filters, AppError> {
    let mut problems: Vec<String> = Vec::new();
    let mut filters = Filters::default();

    let cycle = raw.cycle.trim();
    if !cycle.is_empty() {
        let found: Option<(i64, String, NaiveDate)> = match cycle.parse::<i64>() {
            Ok(id) => cycles::table
                .find(id)
                .select((cycles::id, cycles::label, cycles::opens_on))
                .first(conn)
                .optional()?,
            Err(_) => cycles::table
                .filter(cycles::label.eq(cycle))
                .select((cycles::id, cycles::label, cycles::opens_on))
                .first(conn)
                .optional()?,
        };
        match found {
            Some((id, label, opens_on)) => {
                filters.cycle = Some(CycleRef {
                    id,
                    label,
                    opens_on,
                })
            }
            None => problems.push(format!(
                "There is no cycle \"{}\": choose a cycle from the list, or give its label, like 2025/26.",
                shorten(cycle)
            )),
        }
    }

    let setting = raw.setting.trim();
    if !setting.is_empty() {
        let known: i64 = if is_slug(setting) {
            cycle_versions::table
                .filter(cycle_versions::setting.eq(setting))
                .count()
                .get_result(conn)?
        } else {
            0
        };
        if known > 0 {
            filters.setting = Some(setting.to_string());
        } else {
            problems.push(format!(
                "There is no care setting \"{}\" in any cycle: choose one from the list, like acute.",
                shorten(setting)
            ));
        }
    }

    let region = raw.region.trim();
    if !region.is_empty() {
        let known: i64 = if region.chars().count() <= 200 {
            assessments::table
                .filter(assessments::region.eq(region))
                .count()
                .get_result(conn)?
        } else {
            0
        };
        if known > 0 {
            filters.region = Some(region.to_string());
        } else {
            problems.push(format!(
                "There is no region \"{}\" in any cycle: choose one from the list.",
                shorten(region)
            ));
        }
    }

    let icb = raw.icb.trim();
    if !icb.is_empty() {
        let code = icb.to_uppercase();
        let found: Option<(i64, String, String)> = if code.len() <= 20 {
            organisations::table
                .filter(organisations::ods_code.eq(&code))
                .filter(organisations::kind.eq("icb"))
                .select((
                    organisations::id,
                    organisations::ods_code,
                    organisations::name,
                ))
                .first(conn)
                .optional()?
        } else {
            None
        };
        match found {
            Some((id, ods_code, name)) => filters.icb = Some(Icb { id, ods_code, name }),
            None => problems.push(format!(
                "There is no ICB with the ODS code \"{}\": choose one from the list.",
                shorten(icb)
            )),
        }
    }

    let status = raw.status.trim();
    if !status.is_empty() {
        match ReportStatus::parse(status) {
            Some(s) => filters.status = Some(s),
            None => problems.push(format!(
                "\"{}\" is not a status: use not_started, in_progress, submitted, late or not_submitted.",
                shorten(status)
            )),
        }
    }

    let q = raw.q.trim();
    if q.chars().count() > 200 {
        problems.push("Search for at most 200 characters of a name or ODS code.".into());
    } else if !q.is_empty() {
        filters.q = Some(q.to_string());
    }

    if problems.is_empty() {
        Ok(filters)
    } else {
        Err(AppError::BadRequest(problems.join(" ")))
    }
}

pub(super) fn capitalised(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// At most 40 characters of what someone typed, for repeating it in a message.
fn shorten(s: &str) -> String {
    let mut out: String = s.chars().take(40).collect();
    if s.chars().count() > 40 {
        out.push_str("...");
    }
    out
}

/// The page number asked for (from 1); anything else is a 400.
pub fn parse_page(raw: &str) -> Result<i64, AppError> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(1);
    }
    raw.parse::<i64>()
        .ok()
        .filter(|p| (1..=1_000_000).contains(p))
        .ok_or_else(|| {
            AppError::BadRequest(format!(
                "\"{}\" is not a page number: use a whole number from 1.",
                shorten(raw)
            ))
        })
}

/// The `comparable` toggle: empty, `0` or `1`.
pub fn parse_comparable(raw: &str) -> Result<bool, AppError> {
    match raw.trim() {
        "" | "0" => Ok(false),
        "1" => Ok(true),
        other => Err(AppError::BadRequest(format!(
            "\"{}\" is not a value for comparable: use 1 to show comparable figures only, or 0.",
            shorten(other)
        ))),
    }
}

/// How the organisation list is ordered. None of these is a rank.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    Name,
    Code,
    Setting,
    Icb,
    Region,
    Status,
    Submitted,
    Overall,
}

impl SortKey {
    pub const ALL: [SortKey; 8] = [
        SortKey::Name,
        SortKey::Code,
        SortKey::Setting,
        SortKey::Icb,
        SortKey::Region,
        SortKey::Status,
        SortKey::Submitted,
        SortKey::Overall,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SortKey::Name => "name",
            SortKey::Code => "code",
            SortKey::Setting => "setting",
            SortKey::Icb => "icb",
            SortKey::Region => "region",
            SortKey::Status => "status",
            SortKey::Submitted => "submitted",
            SortKey::Overall => "overall",
        }
    }
}

/// `sort=KEY` or `sort=-KEY` (descending); empty is by name.
pub fn parse_sort(raw: &str) -> Result<(SortKey, bool), AppError> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok((SortKey::Name, false));
    }
    let (descending, key) = match raw.strip_prefix('-') {
        Some(k) => (true, k),
        None => (false, raw),
    };
    SortKey::ALL
        .into_iter()
        .find(|k| k.as_str() == key)
        .map(|k| (k, descending))
        .ok_or_else(|| {
            AppError::BadRequest(format!(
                "\"{}\" is not a way to sort: use name, code, setting, icb, region, status, submitted or overall, with a leading - for descending.",
                shorten(raw)
            ))
        })
}

/// How group figures are broken down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupBy {
    Setting,
    Region,
    Icb,
}

impl GroupBy {
    pub fn as_str(self) -> &'static str {
        match self {
            GroupBy::Setting => "setting",
            GroupBy::Region => "region",
            GroupBy::Icb => "icb",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            GroupBy::Setting => "care setting",
            GroupBy::Region => "region",
            GroupBy::Icb => "ICB",
        }
    }
}

pub fn parse_group_by(raw: &str) -> Result<Option<GroupBy>, AppError> {
    match raw.trim() {
        "" => Ok(None),
        "setting" => Ok(Some(GroupBy::Setting)),
        "region" => Ok(Some(GroupBy::Region)),
        "icb" => Ok(Some(GroupBy::Icb)),
        other => Err(AppError::BadRequest(format!(
            "\"{}\" is not a way to group: use setting, region or icb.",
            shorten(other)
        ))),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn filters_parse_strictly() {
        assert_eq!(parse_page("").unwrap(), 1);
        assert_eq!(parse_page("3").unwrap(), 3);
        for bad in ["0", "-1", "x", "1.5"] {
            assert!(
                matches!(parse_page(bad), Err(AppError::BadRequest(_))),
                "{bad}"
            );
        }
        assert_eq!(parse_sort("-overall").unwrap(), (SortKey::Overall, true));
        assert!(parse_sort("rank").is_err());
        assert!(parse_comparable("yes").is_err());
        assert!(parse_comparable("1").unwrap());
        assert!(parse_group_by("trust").is_err());
    }
}
