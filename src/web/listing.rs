//! What the long lists (organisations, people, the audit log) share: pages of 50 rows, and
//! links to the previous and next page that keep the filters the person chose.

use serde_json::{json, Value};

use crate::web::errors::urlencode;

pub const PAGE_SIZE: i64 = 50;

pub use crate::db::{like_escape, lower};

/// The page asked for, from 1; anything unreadable or out of range is the first page.
pub fn page_number(raw: Option<&str>) -> i64 {
    raw.and_then(|p| p.trim().parse::<i64>().ok())
        .filter(|p| (1..=1_000_000).contains(p))
        .unwrap_or(1)
}

/// The number of rows to skip for `page`.
pub fn offset(page: i64) -> i64 {
    offset_by(page, PAGE_SIZE)
}

/// The number of rows to skip for `page` of `per_page` rows (the API lets callers choose).
pub fn offset_by(page: i64, per_page: i64) -> i64 {
    (page - 1).saturating_mul(per_page)
}

/// How many pages `total` rows make, at least one.
pub fn page_count(total: i64, per_page: i64) -> i64 {
    ((total + per_page - 1) / per_page.max(1)).max(1)
}

/// The address of page `p` of a list at `base` with these filters (page 1 has no `page`).
pub fn link(base: &str, filters: &[(&str, &str)], p: i64) -> String {
    let mut all: Vec<(&str, String)> = filters
        .iter()
        .map(|(k, v)| (*k, (*v).to_string()))
        .collect();
    if p > 1 {
        all.push(("page", p.to_string()));
    }
    let borrowed: Vec<(&str, &str)> = all.iter().map(|(k, v)| (*k, v.as_str())).collect();
    format!("{base}{}", query_string(&borrowed))
}

/// A query string from the non-empty filters (without `page`), starting with `?` or empty.
pub fn query_string(filters: &[(&str, &str)]) -> String {
    let parts: Vec<String> = filters
        .iter()
        .filter(|(_, v)| !v.trim().is_empty())
        .map(|(k, v)| format!("{k}={}", urlencode(v.trim())))
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!("?{}", parts.join("&"))
    }
}

/// The data `admin/pagination` renders: "showing 51 to 100 of 230" and the links.
pub fn pagination(base: &str, filters: &[(&str, &str)], page: i64, total: i64) -> Value {
    let pages = page_count(total, PAGE_SIZE);
    let link = |p: i64| link(base, filters, p);
    let first = if total == 0 { 0 } else { offset(page) + 1 };
    let last = (offset(page) + PAGE_SIZE).min(total);
    json!({
        "total": total,
        "first": first,
        "last": last,
        "page": page,
        "pages": pages,
        "previous": (page > 1).then(|| link(page - 1)),
        "next": (page < pages).then(|| link(page + 1)),
        "several": pages > 1,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_keep_filters_and_stay_in_range() {
        assert_eq!(page_number(Some("3")), 3);
        for bad in ["0", "-1", "x", ""] {
            assert_eq!(page_number(Some(bad)), 1);
        }
        let p = pagination(
            "/admin/audit",
            &[("action", "user."), ("actor", "")],
            2,
            120,
        );
        assert_eq!(p["previous"], "/admin/audit?action=user.");
        assert_eq!(p["next"], "/admin/audit?action=user.&page=3");
        assert_eq!(
            (p["first"].clone(), p["last"].clone()),
            (json!(51), json!(100))
        );
        let empty = pagination("/x", &[], 1, 0);
        assert_eq!(empty["next"], Value::Null);
        assert_eq!(empty["pages"], 1);
    }

    #[test]
    fn like_wildcards_are_escaped() {
        assert_eq!(like_escape("a_b%c\\"), "a\\_b\\%c\\\\");
    }
}
