//! Improvement plans (issue 23): for each domain whose score is below a chosen band, the
//! organisation records actions (a title, an owner, a due date, a status). docs/review.md has
//! the decisions; in short:
//!
//! - **The band is the organisation's choice, per assessment.** The questionnaire format has
//!   no field for it and its specification is not changed for this; without a choice the
//!   middle band of the question set is used (the third of five), which is "below the usual
//!   expectation" in every set we carry.
//! - **Scores are the submitted ones** (the stored current score set) once submitted, else
//!   the live provisional ones, like the results page.
//! - **The database holds the rules.** A domain does not hold two actions with one title
//!   (unique key); an update names the revision it saw and is a conditional write; a carried
//!   action is carried once (`UNIQUE (assessment_id, carried_from)`).
//! - **Carried into the next cycle.** When a cycle opens, every unfinished action (planned or
//!   in progress) of an organisation's earlier assessments that was not carried already is
//!   copied to its new assessment for the same setting, naming the action it continues, so
//!   the chain from promise to outcome can be followed year on year.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{NaiveDate, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;
use serde_json::json;

use crate::db::schema::{assessments, cycles, improvement_actions, improvement_thresholds, users};
use crate::db::DbConnection;
use crate::domain::{scoring, FieldError, Questionnaire};
use crate::error::AppError;
use crate::services::assessments::Loaded;
use crate::services::audit::{self, Actor, Entry};
use crate::services::auth::roles::Action;
use crate::services::auth::users::User;
use crate::services::digest;
use crate::services::mail::OutgoingEmail;
use crate::services::notifications::Notifier;

pub const MAX_TITLE_CHARS: usize = 200;

/// `text` cut to fit an action's title: at a word boundary, with an ellipsis, when longer.
pub fn shortened(text: &str) -> String {
    if text.chars().count() <= MAX_TITLE_CHARS {
        return text.to_string();
    }
    let head: String = text.chars().take(MAX_TITLE_CHARS - 1).collect();
    let cut = head.rfind(' ').unwrap_or(head.len());
    format!("{}…", head[..cut].trim_end_matches([' ', ';', ':', ',']))
}

/// Where an action is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionStatus {
    Planned,
    InProgress,
    Done,
    Dropped,
}

impl ActionStatus {
    pub const ALL: [ActionStatus; 4] = [
        ActionStatus::Planned,
        ActionStatus::InProgress,
        ActionStatus::Done,
        ActionStatus::Dropped,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            ActionStatus::Planned => "planned",
            ActionStatus::InProgress => "in_progress",
            ActionStatus::Done => "done",
            ActionStatus::Dropped => "dropped",
        }
    }
    pub fn parse(s: &str) -> Option<ActionStatus> {
        ActionStatus::ALL.into_iter().find(|x| x.as_str() == s)
    }
    pub fn label(self) -> &'static str {
        match self {
            ActionStatus::Planned => "Planned",
            ActionStatus::InProgress => "In progress",
            ActionStatus::Done => "Done",
            ActionStatus::Dropped => "Dropped",
        }
    }
    pub fn colour(self) -> &'static str {
        match self {
            ActionStatus::Planned => "grey",
            ActionStatus::InProgress => "blue",
            ActionStatus::Done => "green",
            ActionStatus::Dropped => "red",
        }
    }
    /// Still to do: carried into the next cycle.
    pub fn is_unfinished(self) -> bool {
        matches!(self, ActionStatus::Planned | ActionStatus::InProgress)
    }
}

/// One action of a plan.
#[derive(Debug, Clone, Serialize)]
pub struct PlanAction {
    pub id: i64,
    pub domain_key: String,
    pub title: String,
    pub owner_user_id: Option<i64>,
    pub owner_text: Option<String>,
    /// The owner in words: the person's name, or the text given.
    pub owner: String,
    pub due_on: Option<NaiveDate>,
    pub status: ActionStatus,
    pub revision: i64,
    /// The action of an earlier cycle this one continues.
    pub carried_from: Option<i64>,
    /// That earlier action's cycle.
    pub carried_from_cycle: Option<String>,
    pub updated_at: NaiveDateTime,
}

/// A domain of the plan: its score and band, whether it is below the chosen band, its actions.
#[derive(Debug, Clone, Serialize)]
pub struct DomainPlan {
    pub key: String,
    pub title: String,
    pub score: Option<f64>,
    pub band: Option<String>,
    pub below: bool,
    pub actions: Vec<PlanAction>,
}

/// An assessment's improvement plan.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    /// The band below which a domain needs actions, and where it starts.
    pub threshold: String,
    pub threshold_min: f64,
    /// Chosen by the organisation (else the default).
    pub chosen: bool,
    /// The question set's bands, lowest first.
    pub bands: Vec<String>,
    pub domains: Vec<DomainPlan>,
    /// Carried actions whose domain is not in this assessment's question set.
    pub other: Vec<PlanAction>,
}

/// The default band: the middle one of the question set's bands.
pub fn default_band(q: &Questionnaire) -> Option<&crate::domain::questionnaire::Band> {
    q.bands.get(q.bands.len() / 2)
}

type ActionRow = (
    i64,
    String,
    String,
    Option<i64>,
    Option<String>,
    Option<NaiveDate>,
    String,
    i64,
    Option<i64>,
    NaiveDateTime,
);

fn action_rows(
    conn: &mut DbConnection,
    filter_assessment: Option<i64>,
    filter_ids: Option<&[i64]>,
) -> Result<Vec<PlanAction>, AppError> {
    let mut query = improvement_actions::table
        .select((
            improvement_actions::id,
            improvement_actions::domain_key,
            improvement_actions::title,
            improvement_actions::owner_user_id,
            improvement_actions::owner_text,
            improvement_actions::due_on,
            improvement_actions::status,
            improvement_actions::revision,
            improvement_actions::carried_from,
            improvement_actions::updated_at,
        ))
        .order(improvement_actions::id)
        .into_boxed();
    if let Some(a) = filter_assessment {
        query = query.filter(improvement_actions::assessment_id.eq(a));
    }
    if let Some(ids) = filter_ids {
        query = query.filter(improvement_actions::id.eq_any(ids.to_vec()));
    }
    let rows: Vec<ActionRow> = query.load(conn)?;
    let owners: BTreeSet<i64> = rows.iter().filter_map(|r| r.3).collect();
    let names: BTreeMap<i64, String> = users::table
        .filter(users::id.eq_any(owners))
        .select((users::id, users::name))
        .load::<(i64, String)>(conn)?
        .into_iter()
        .collect();
    let earlier: Vec<i64> = rows.iter().filter_map(|r| r.8).collect();
    let cycles_of: BTreeMap<i64, String> = improvement_actions::table
        .inner_join(assessments::table)
        .inner_join(cycles::table.on(cycles::id.eq(assessments::cycle_id)))
        .filter(improvement_actions::id.eq_any(earlier))
        .select((improvement_actions::id, cycles::label))
        .load::<(i64, String)>(conn)?
        .into_iter()
        .collect();
    Ok(rows
        .into_iter()
        .map(|r| PlanAction {
            owner: r
                .3
                .and_then(|id| names.get(&id).cloned())
                .or_else(|| r.4.clone())
                .unwrap_or_default(),
            id: r.0,
            domain_key: r.1,
            title: r.2,
            owner_user_id: r.3,
            owner_text: r.4,
            due_on: r.5,
            status: ActionStatus::parse(&r.6).unwrap_or(ActionStatus::Planned),
            revision: r.7,
            carried_from_cycle: r.8.and_then(|id| cycles_of.get(&id).cloned()),
            carried_from: r.8,
            updated_at: r.9,
        })
        .collect())
}

/// The scores a plan is measured against: submitted, else provisional.
fn scores_of(conn: &mut DbConnection, loaded: &Loaded) -> Result<scoring::Assessment, AppError> {
    Ok(
        match crate::services::assessments::current_scores(conn, loaded.row.id)? {
            Some((_, _, report)) => report,
            None => scoring::score(loaded.questionnaire(), &loaded.answers()),
        },
    )
}

/// The improvement plan of a loaded assessment.
pub fn plan(conn: &mut DbConnection, loaded: &Loaded) -> Result<Plan, AppError> {
    let q = loaded.questionnaire();
    let chosen: Option<String> = improvement_thresholds::table
        .find(loaded.row.id)
        .select(improvement_thresholds::band)
        .first(conn)
        .optional()?;
    let band = chosen
        .as_deref()
        .and_then(|label| q.bands.iter().find(|b| b.label == label))
        .or_else(|| default_band(q));
    let (threshold, threshold_min) = band.map_or((String::new(), f64::NEG_INFINITY), |b| {
        (b.label.clone(), b.min)
    });
    let report = scores_of(conn, loaded)?;
    let mut actions: BTreeMap<String, Vec<PlanAction>> = BTreeMap::new();
    for a in action_rows(conn, Some(loaded.row.id), None)? {
        actions.entry(a.domain_key.clone()).or_default().push(a);
    }
    let domains = q
        .domains
        .iter()
        .zip(&report.domains)
        .map(|(d, s)| DomainPlan {
            key: d.key.clone(),
            title: d.title.clone(),
            score: s.score,
            band: s.band.clone(),
            below: s.score.is_none_or(|x| x < threshold_min),
            actions: actions.remove(&d.key).unwrap_or_default(),
        })
        .collect();
    Ok(Plan {
        threshold,
        threshold_min,
        chosen: chosen.is_some(),
        bands: q.bands.iter().map(|b| b.label.clone()).collect(),
        domains,
        other: actions.into_values().flatten().collect(),
    })
}

/// What a person gives for an action.
#[derive(Debug, Clone)]
pub struct ActionInput {
    pub domain_key: String,
    pub title: String,
    pub owner_user_id: Option<i64>,
    pub owner_text: String,
    pub due_on: Option<NaiveDate>,
    pub status: ActionStatus,
}

fn validate(
    conn: &mut DbConnection,
    loaded: &Loaded,
    input: &ActionInput,
) -> Result<(String, Option<String>), AppError> {
    let mut errors = Vec::new();
    if !loaded
        .questionnaire()
        .domains
        .iter()
        .any(|d| d.key == input.domain_key)
    {
        errors.push(FieldError::new(
            "domain",
            "Choose a domain of this assessment",
        ));
    }
    let title = input.title.trim().to_string();
    if title.is_empty() {
        errors.push(FieldError::new("title", "Say what will be done"));
    } else if title.chars().count() > MAX_TITLE_CHARS {
        errors.push(FieldError::new(
            "title",
            format!("The action must be {MAX_TITLE_CHARS} characters or fewer"),
        ));
    }
    let owner_text = Some(input.owner_text.trim().to_string()).filter(|t| !t.is_empty());
    match input.owner_user_id {
        Some(id) => {
            let ok = crate::services::sections::people(conn, loaded.row.organisation_id)?
                .iter()
                .any(|p| p.id == id);
            if !ok {
                errors.push(FieldError::new(
                    "owner",
                    "Choose a person from your organisation, or name the owner",
                ));
            }
        }
        None if owner_text.is_none() => errors.push(FieldError::new(
            "owner",
            "Choose a person from your organisation, or name the owner",
        )),
        None => {}
    }
    if owner_text
        .as_ref()
        .is_some_and(|t| t.chars().count() > MAX_TITLE_CHARS)
    {
        errors.push(FieldError::new(
            "owner_text",
            format!("The owner must be {MAX_TITLE_CHARS} characters or fewer"),
        ));
    }
    if errors.is_empty() {
        Ok((title, owner_text.filter(|_| input.owner_user_id.is_none())))
    } else {
        Err(AppError::Validation(errors))
    }
}

fn duplicate(e: diesel::result::Error) -> AppError {
    match e {
        diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::UniqueViolation,
            _,
        ) => AppError::Conflict(
            "This domain already has an action with that title: change that one instead.".into(),
        ),
        other => other.into(),
    }
}

/// Add an action (the organisation's people, `Answer`). Refused: an unknown domain, an empty
/// title, no owner or one from elsewhere (422); a title the domain already has (409).
pub fn add(
    conn: &mut DbConnection,
    notifier: &Notifier,
    actor: &Actor,
    who: &User,
    loaded: &Loaded,
    input: &ActionInput,
) -> Result<PlanAction, AppError> {
    who.require(Action::Answer(loaded.row.organisation_id))?;
    let (title, owner_text) = validate(conn, loaded, input)?;
    let now = Utc::now().naive_utc();
    let id: i64 = diesel::insert_into(improvement_actions::table)
        .values((
            improvement_actions::assessment_id.eq(loaded.row.id),
            improvement_actions::domain_key.eq(&input.domain_key),
            improvement_actions::title.eq(&title),
            improvement_actions::owner_user_id.eq(input.owner_user_id),
            improvement_actions::owner_text.eq(&owner_text),
            improvement_actions::due_on.eq(input.due_on),
            improvement_actions::status.eq(input.status.as_str()),
            improvement_actions::revision.eq(1),
            improvement_actions::created_by.eq(Some(who.id)),
            improvement_actions::created_at.eq(now),
            improvement_actions::updated_by.eq(Some(who.id)),
            improvement_actions::updated_at.eq(now),
        ))
        .returning(improvement_actions::id)
        .get_result(conn)
        .map_err(duplicate)?;
    audit::record(
        conn,
        actor,
        Entry::new("plan.action_added", "improvement_action", id)
            .organisation(Some(loaded.row.organisation_id))
            .after(json!({
                "assessment": loaded.row.id, "domain": input.domain_key, "title": title,
                "owner_user_id": input.owner_user_id, "owner_text": owner_text,
                "due_on": input.due_on, "status": input.status.as_str(),
            })),
    )?;
    let added = one(conn, loaded, id)?;
    tell_owner(conn, notifier, actor, who, loaded, &added)?;
    Ok(added)
}

/// Email the action's owner that it is theirs, in the change's transaction (or hold it for
/// their digest): when a named person of the organisation becomes its owner, unless they made
/// the change themselves. Once per action and revision (the outbox's dedupe key).
fn tell_owner(
    conn: &mut DbConnection,
    notifier: &Notifier,
    actor: &Actor,
    who: &User,
    loaded: &Loaded,
    action: &PlanAction,
) -> Result<(), AppError> {
    let Some(owner) = action.owner_user_id.filter(|o| *o != who.id) else {
        return Ok(());
    };
    let Some((name, email)) = users::table
        .find(owner)
        .filter(users::active.eq(true))
        .select((users::name, users::email))
        .first::<(String, String)>(conn)
        .optional()?
    else {
        return Ok(());
    };
    let domain = loaded
        .questionnaire()
        .domains
        .iter()
        .find(|d| d.key == action.domain_key)
        .map_or(action.domain_key.as_str(), |d| d.title.as_str());
    let given_by = crate::services::sections::actor_name(conn, actor)?;
    digest::enqueue(
        conn,
        notifier,
        OutgoingEmail {
            kind: "plan_action_assigned",
            to: &email,
            template: "plan_action_assigned",
            data: json!({
                "name": name,
                "organisation": loaded.organisation_name,
                "cycle_label": loaded.cycle_label,
                "action": action.title,
                "domain": domain,
                "given_by": given_by,
                "due_on": action.due_on.map(|d| d.format("%-d %B %Y").to_string()),
                "link": notifier.absolute(&format!("/assessments/{}/plan", loaded.row.id)),
            }),
            dedupe_key: Some(format!(
                "plan_action_assigned:{}:{}",
                action.id, action.revision
            )),
        },
    )?;
    Ok(())
}

fn one(conn: &mut DbConnection, loaded: &Loaded, id: i64) -> Result<PlanAction, AppError> {
    action_rows(conn, Some(loaded.row.id), Some(&[id]))?
        .into_iter()
        .next()
        .ok_or(AppError::NotFound)
}

/// Change action `action_id`, naming the revision seen (409 when it changed since).
pub fn update(
    conn: &mut DbConnection,
    notifier: &Notifier,
    (actor, who): (&Actor, &User),
    loaded: &Loaded,
    (action_id, seen_revision): (i64, i64),
    input: &ActionInput,
) -> Result<PlanAction, AppError> {
    who.require(Action::Answer(loaded.row.organisation_id))?;
    let before = one(conn, loaded, action_id)?;
    let (title, owner_text) = validate(conn, loaded, input)?;
    if seen_revision != before.revision {
        return Err(AppError::Conflict(
            "This action was changed by someone else while you were looking at it. Nothing was changed: check it as it is now and try again.".into(),
        ));
    }
    let now = Utc::now().naive_utc();
    let written = diesel::update(
        improvement_actions::table
            .filter(improvement_actions::id.eq(action_id))
            .filter(improvement_actions::assessment_id.eq(loaded.row.id))
            .filter(improvement_actions::revision.eq(seen_revision)),
    )
    .set((
        improvement_actions::domain_key.eq(&input.domain_key),
        improvement_actions::title.eq(&title),
        improvement_actions::owner_user_id.eq(input.owner_user_id),
        improvement_actions::owner_text.eq(&owner_text),
        improvement_actions::due_on.eq(input.due_on),
        improvement_actions::status.eq(input.status.as_str()),
        improvement_actions::revision.eq(seen_revision + 1),
        improvement_actions::updated_by.eq(Some(who.id)),
        improvement_actions::updated_at.eq(now),
    ))
    .execute(conn)
    .map_err(duplicate)?;
    if written == 0 {
        return Err(AppError::Conflict(
            "This action was changed by someone else while you were looking at it. Nothing was changed: check it as it is now and try again.".into(),
        ));
    }
    audit::record(
        conn,
        actor,
        Entry::new("plan.action_changed", "improvement_action", action_id)
            .organisation(Some(loaded.row.organisation_id))
            .before(json!({
                "domain": before.domain_key, "title": before.title, "owner": before.owner,
                "due_on": before.due_on, "status": before.status.as_str(), "revision": before.revision,
            }))
            .after(json!({
                "domain": input.domain_key, "title": title, "owner_user_id": input.owner_user_id,
                "owner_text": owner_text, "due_on": input.due_on, "status": input.status.as_str(),
                "revision": seen_revision + 1,
            })),
    )?;
    let changed = one(conn, loaded, action_id)?;
    if changed.owner_user_id != before.owner_user_id {
        tell_owner(conn, notifier, actor, who, loaded, &changed)?;
    }
    Ok(changed)
}

/// Choose the band below which domains need actions (`Answer`): one of the question set's.
pub fn set_threshold(
    conn: &mut DbConnection,
    actor: &Actor,
    who: &User,
    loaded: &Loaded,
    band: &str,
) -> Result<(), AppError> {
    who.require(Action::Answer(loaded.row.organisation_id))?;
    let q = loaded.questionnaire();
    let Some(b) = q.bands.iter().find(|b| b.label == band.trim()) else {
        return Err(AppError::Validation(vec![FieldError::new(
            "band",
            "Choose one of the question set's bands",
        )]));
    };
    let now = Utc::now().naive_utc();
    crate::db::with_concrete_connection!(conn, c => {
        diesel::insert_into(improvement_thresholds::table)
            .values((
                improvement_thresholds::assessment_id.eq(loaded.row.id),
                improvement_thresholds::band.eq(&b.label),
                improvement_thresholds::changed_by.eq(Some(who.id)),
                improvement_thresholds::changed_at.eq(now),
            ))
            .on_conflict(improvement_thresholds::assessment_id)
            .do_update()
            .set((
                improvement_thresholds::band.eq(&b.label),
                improvement_thresholds::changed_by.eq(Some(who.id)),
                improvement_thresholds::changed_at.eq(now),
            ))
            .execute(c)?
    });
    audit::record(
        conn,
        actor,
        Entry::new("plan.threshold", "assessment", loaded.row.id)
            .organisation(Some(loaded.row.organisation_id))
            .after(json!({"band": b.label})),
    )?;
    Ok(())
}

/// Copy every unfinished action not carried already from organisations' earlier assessments
/// into their assessment of the cycle `cycle_id` for the same setting (called by
/// `cycles::open` in its transaction). Returns how many were copied.
pub fn carry_forward(
    conn: &mut DbConnection,
    actor: &Actor,
    cycle_id: i64,
    now: NaiveDateTime,
) -> Result<usize, AppError> {
    let unfinished: Vec<&str> = ActionStatus::ALL
        .into_iter()
        .filter(|s| s.is_unfinished())
        .map(ActionStatus::as_str)
        .collect();
    let carried: BTreeSet<i64> = improvement_actions::table
        .filter(improvement_actions::carried_from.is_not_null())
        .select(improvement_actions::carried_from)
        .load::<Option<i64>>(conn)?
        .into_iter()
        .flatten()
        .collect();
    type Candidate = (
        i64,
        String,
        String,
        Option<i64>,
        Option<String>,
        Option<NaiveDate>,
        String,
        i64,
        String,
    );
    let candidates: Vec<Candidate> = improvement_actions::table
        .inner_join(assessments::table)
        .filter(assessments::cycle_id.ne(cycle_id))
        .filter(improvement_actions::status.eq_any(&unfinished))
        .order(improvement_actions::id)
        .select((
            improvement_actions::id,
            improvement_actions::domain_key,
            improvement_actions::title,
            improvement_actions::owner_user_id,
            improvement_actions::owner_text,
            improvement_actions::due_on,
            improvement_actions::status,
            assessments::organisation_id,
            assessments::setting,
        ))
        .load(conn)?;
    let candidates: Vec<Candidate> = candidates
        .into_iter()
        .filter(|c| !carried.contains(&c.0))
        .collect();
    if candidates.is_empty() {
        return Ok(0);
    }
    let new: BTreeMap<(i64, String), i64> = assessments::table
        .filter(assessments::cycle_id.eq(cycle_id))
        .select((
            assessments::organisation_id,
            assessments::setting,
            assessments::id,
        ))
        .load::<(i64, String, i64)>(conn)?
        .into_iter()
        .map(|(o, s, id)| ((o, s), id))
        .collect();
    let mut copied = 0;
    for c in candidates {
        let Some(target) = new.get(&(c.7, c.8.clone())) else {
            continue;
        };
        // Two earlier actions of one title (made in different cycles) become one.
        copied += crate::db::with_concrete_connection!(conn, conn => {
            diesel::insert_into(improvement_actions::table)
            .values((
                improvement_actions::assessment_id.eq(target),
                improvement_actions::domain_key.eq(&c.1),
                improvement_actions::title.eq(&c.2),
                improvement_actions::owner_user_id.eq(c.3),
                improvement_actions::owner_text.eq(&c.4),
                improvement_actions::due_on.eq(c.5),
                improvement_actions::status.eq(&c.6),
                improvement_actions::revision.eq(1),
                improvement_actions::carried_from.eq(Some(c.0)),
                improvement_actions::created_at.eq(now),
                improvement_actions::updated_at.eq(now),
            ))
            .on_conflict_do_nothing()
            .execute(conn)?
        });
    }
    if copied > 0 {
        audit::record(
            conn,
            actor,
            Entry::new("plan.carry_forward", "cycle", cycle_id).after(json!({"actions": copied})),
        )?;
    }
    Ok(copied)
}

/// The actions of an assessment (for reports: what was promised beside what moved).
pub fn actions(conn: &mut DbConnection, assessment_id: i64) -> Result<Vec<PlanAction>, AppError> {
    action_rows(conn, Some(assessment_id), None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_suggestion_is_cut_at_a_word_and_fits() {
        let long = "word ".repeat(100);
        let cut = shortened(&long);
        assert!(cut.chars().count() <= MAX_TITLE_CHARS);
        assert!(cut.ends_with("word…"));
        assert_eq!(shortened("short"), "short");
    }

    #[test]
    fn only_planned_and_in_progress_actions_are_unfinished() {
        let unfinished: Vec<_> = ActionStatus::ALL
            .into_iter()
            .filter(|s| s.is_unfinished())
            .collect();
        assert_eq!(
            unfinished,
            [ActionStatus::Planned, ActionStatus::InProgress]
        );
        for s in ActionStatus::ALL {
            assert_eq!(ActionStatus::parse(s.as_str()), Some(s));
        }
    }
}
