//! The two UPDATE statements of every answer save, written with fixed text so the database
//! prepares each once per connection. Diesel prepares and caches its SELECT and INSERT
//! statements, but never an UPDATE (a changeset's text can vary with its values), so through
//! the query builder PostgreSQL parsed and planned autosave's two updates on every save
//! (issue 21: pgbench with every statement unprepared runs at about a third of its prepared
//! rate). Each struct here is one statement: its SQL never changes, its values are bound.

use chrono::NaiveDateTime;
use diesel::query_builder::{AstPass, QueryFragment, QueryId};
use diesel::sql_types::{BigInt, Nullable, Text, Timestamp};
use diesel::{QueryResult, RunQueryDsl};

use crate::db::MultiBackend;

/// `UPDATE answers SET value, revision, carried_forward = false, updated_by, updated_at WHERE
/// assessment_id AND question_key AND revision = seen`: a change to a stored answer, only if
/// it is still at the revision the page saw (0 rows otherwise: a conflict).
#[derive(Debug, Clone, Copy)]
pub struct ChangeAnswer<'a> {
    pub assessment_id: i64,
    pub question_key: &'a str,
    pub seen_revision: i64,
    pub value: &'a str,
    pub updated_by: Option<i64>,
    pub updated_at: NaiveDateTime,
}

impl QueryId for ChangeAnswer<'_> {
    type QueryId = ChangeAnswer<'static>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl QueryFragment<MultiBackend> for ChangeAnswer<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, MultiBackend>) -> QueryResult<()> {
        out.push_sql("UPDATE answers SET value = ");
        out.push_bind_param::<Text, _>(self.value)?;
        out.push_sql(", revision = revision + 1, carried_forward = FALSE, updated_by = ");
        out.push_bind_param::<Nullable<BigInt>, _>(&self.updated_by)?;
        out.push_sql(", updated_at = ");
        out.push_bind_param::<Timestamp, _>(&self.updated_at)?;
        out.push_sql(" WHERE assessment_id = ");
        out.push_bind_param::<BigInt, _>(&self.assessment_id)?;
        out.push_sql(" AND question_key = ");
        out.push_bind_param::<Text, _>(self.question_key)?;
        out.push_sql(" AND revision = ");
        out.push_bind_param::<BigInt, _>(&self.seen_revision)?;
        Ok(())
    }
}

impl<Conn> RunQueryDsl<Conn> for ChangeAnswer<'_> {}

/// `UPDATE assessments SET revision = revision + 1, updated_at, status = in progress if it was
/// not started WHERE id AND still open`: after a save, in one statement. 0 rows means the
/// assessment was submitted or closed since it was loaded.
#[derive(Debug, Clone, Copy, QueryId)]
pub struct TouchOpenAssessment {
    pub assessment_id: i64,
    pub updated_at: NaiveDateTime,
}

impl QueryFragment<MultiBackend> for TouchOpenAssessment {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, MultiBackend>) -> QueryResult<()> {
        out.push_sql(
            "UPDATE assessments SET revision = revision + 1, \
             status = CASE WHEN status = 'not_started' THEN 'in_progress' ELSE status END, \
             updated_at = ",
        );
        out.push_bind_param::<Timestamp, _>(&self.updated_at)?;
        out.push_sql(" WHERE id = ");
        out.push_bind_param::<BigInt, _>(&self.assessment_id)?;
        out.push_sql(
            " AND status IN ('not_started', 'in_progress', 'reopened') AND closed_at IS NULL",
        );
        Ok(())
    }
}

impl<Conn> RunQueryDsl<Conn> for TouchOpenAssessment {}
