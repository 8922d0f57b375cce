//! Every route, as every kind of person: signed out, each role, and people of another
//! organisation. The table below has one line per route in `dma::web::ROUTES`, which in turn
//! must list every route the source registers, so adding a route without deciding who may use
//! it fails this test.
//!
//! For each route and person the test asserts: signed out, pages redirect to sign-in and the
//! API answers 401; a person without permission gets 403 (or 404 for another person's
//! token); a person with permission is let through. Refused requests carry a valid CSRF token
//! and plausible fields, so the refusal is the policy's, and afterwards the database is
//! compared with a snapshot from before: nothing changed. Then every POST is sent by a person
//! who may use it, with a forged CSRF token: 400, and again nothing changed.

use std::collections::BTreeSet;

use reqwest::StatusCode;

use crate::browser::{snapshot, Browser, World, PASSWORD};
use crate::helpers::{backends, csrf_from, TestApp};

/// Who may use a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rule {
    /// Anyone, signed in or not.
    Public,
    /// Anyone signed in.
    SignedIn,
    /// Administrators.
    Administer,
    /// Administrators and auditors.
    AuditLog,
    /// Those who may read organisation A (its people, administrators, auditors).
    ReadA,
    /// Those who may read organisation A's assessment while it is in progress, as the sample
    /// is (its people and administrators; auditors read submitted assessments only).
    ReadInProgressA,
    /// Those who may answer for organisation A.
    AnswerA,
    /// Those who may sign off for organisation A.
    ApproveA,
    /// Any organisation's approver, for their own organisation (administrators are sent to
    /// the administrators' page when they look).
    Approvers,
    /// Organisation A's approvers only (the sample is one of A's people).
    ApproverOfA,
    /// The owner of the sample API token (contributor A); for anyone else it does not exist.
    TokenOwnerA,
    /// Auditors and administrators (`Action::Review`): the sample is in progress, so only
    /// administrators get past reading it, and auditors are refused it as a reader would be.
    Review,
    /// The JSON API: a bearer token, never a session cookie.
    Api,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    Anonymous,
    Admin,
    Auditor,
    GroupViewer,
    ApproverA,
    ContributorA,
    ApproverB,
    ContributorB,
}

const PEOPLE: [Who; 8] = [
    Who::Anonymous,
    Who::Admin,
    Who::Auditor,
    Who::GroupViewer,
    Who::ApproverA,
    Who::ContributorA,
    Who::ApproverB,
    Who::ContributorB,
];

impl Who {
    fn email(self) -> Option<&'static str> {
        match self {
            Who::Anonymous => None,
            Who::Admin => Some("admin@example.nhs.uk"),
            Who::Auditor => Some("auditor@example.nhs.uk"),
            Who::GroupViewer => Some("viewer@example.nhs.uk"),
            Who::ApproverA => Some("approver@a.nhs.uk"),
            Who::ContributorA => Some("contributor@a.nhs.uk"),
            Who::ApproverB => Some("approver@b.nhs.uk"),
            Who::ContributorB => Some("contributor@b.nhs.uk"),
        }
    }
}

fn allowed(rule: Rule, who: Who) -> bool {
    use Who::*;
    match rule {
        Rule::Public => true,
        Rule::SignedIn => who != Anonymous,
        Rule::Administer => who == Admin,
        Rule::AuditLog => matches!(who, Admin | Auditor),
        Rule::ReadA => matches!(who, Admin | Auditor | ApproverA | ContributorA),
        Rule::ReadInProgressA => matches!(who, Admin | ApproverA | ContributorA),
        Rule::AnswerA => matches!(who, Admin | ApproverA | ContributorA),
        Rule::ApproveA => matches!(who, Admin | ApproverA),
        Rule::Approvers => matches!(who, Admin | ApproverA | ApproverB),
        Rule::ApproverOfA => who == ApproverA,
        Rule::TokenOwnerA => who == ContributorA,
        Rule::Review => matches!(who, Admin | Auditor),
        // Checked separately with tokens: no browser gets in with cookies.
        Rule::Api => false,
    }
}

/// Who may use a route, for the forged-CSRF check.
fn permitted_person(rule: Rule) -> Who {
    match rule {
        Rule::Public => Who::Anonymous,
        Rule::Administer | Rule::AuditLog | Rule::Review => Who::Admin,
        Rule::ApproveA | Rule::Approvers | Rule::ApproverOfA => Who::ApproverA,
        Rule::SignedIn
        | Rule::ReadA
        | Rule::ReadInProgressA
        | Rule::AnswerA
        | Rule::TokenOwnerA => Who::ContributorA,
        Rule::Api => Who::Admin,
    }
}

struct Case {
    method: &'static str,
    pattern: &'static str,
    path: String,
    rule: Rule,
}

fn cases(w: &World, token_id: i64) -> Vec<Case> {
    let a = w.assessment_a;
    let (qk, qv) = (&w.questionnaire_key, &w.questionnaire_version);
    let c = |method, pattern, path: String, rule| Case {
        method,
        pattern,
        path,
        rule,
    };
    vec![
        c("GET", "/healthz", "/healthz".into(), Rule::Public),
        c("GET", "/readyz", "/readyz".into(), Rule::Public),
        c(
            "GET",
            "/assets/{path:.*}",
            "/assets/css/dma.css".into(),
            Rule::Public,
        ),
        c("GET", "/", "/".into(), Rule::Public),
        c(
            "GET",
            "/accessibility",
            "/accessibility".into(),
            Rule::Public,
        ),
        c("GET", "/privacy", "/privacy".into(), Rule::Public),
        c("GET", "/login", "/login".into(), Rule::Public),
        c("POST", "/login", "/login".into(), Rule::Public),
        c("POST", "/logout", "/logout".into(), Rule::SignedIn),
        c(
            "GET",
            "/account/set-password",
            "/account/set-password?token=unknown".into(),
            Rule::Public,
        ),
        c(
            "POST",
            "/account/set-password",
            "/account/set-password".into(),
            Rule::Public,
        ),
        c("GET", "/dashboard", "/dashboard".into(), Rule::SignedIn),
        c(
            "GET",
            "/assessments/{id}",
            format!("/assessments/{a}"),
            Rule::ReadInProgressA,
        ),
        c(
            "GET",
            "/assessments/{id}/domains/{key}",
            format!("/assessments/{a}/domains/{}", w.domain_key),
            Rule::ReadInProgressA,
        ),
        c(
            "POST",
            "/assessments/{id}/domains/{key}",
            format!("/assessments/{a}/domains/{}", w.domain_key),
            Rule::AnswerA,
        ),
        c(
            "POST",
            "/assessments/{id}/autosave",
            format!("/assessments/{a}/autosave"),
            Rule::AnswerA,
        ),
        c(
            "GET",
            "/assessments/{id}/review",
            format!("/assessments/{a}/review"),
            Rule::ReadInProgressA,
        ),
        c(
            "GET",
            "/assessments/{id}/print",
            format!("/assessments/{a}/print"),
            Rule::ReadInProgressA,
        ),
        c(
            "GET",
            "/assessments/{id}/submit",
            format!("/assessments/{a}/submit"),
            Rule::ApproveA,
        ),
        c(
            "POST",
            "/assessments/{id}/submit",
            format!("/assessments/{a}/submit"),
            Rule::ApproveA,
        ),
        c(
            "GET",
            "/assessments/{id}/confirmation",
            format!("/assessments/{a}/confirmation"),
            Rule::ReadInProgressA,
        ),
        c(
            "GET",
            "/assessments/{id}/results",
            format!("/assessments/{a}/results"),
            Rule::ReadInProgressA,
        ),
        c(
            "GET",
            "/assessments/{id}/questions/{key}/history",
            format!("/assessments/{a}/questions/{}/history", w.question_key),
            Rule::ReadInProgressA,
        ),
        c(
            "POST",
            "/assessments/{id}/reopen",
            format!("/assessments/{a}/reopen"),
            Rule::Administer,
        ),
        c(
            "POST",
            "/assessments/{id}/deadline",
            format!("/assessments/{a}/deadline"),
            Rule::Administer,
        ),
        c(
            "GET",
            "/assessments/{id}/sections/{key}",
            format!("/assessments/{a}/sections/{}", w.domain_key),
            Rule::ReadInProgressA,
        ),
        c(
            "POST",
            "/assessments/{id}/sections/{key}/assignees",
            format!("/assessments/{a}/sections/{}/assignees", w.domain_key),
            Rule::ApproveA,
        ),
        c(
            "POST",
            "/assessments/{id}/sections/{key}/assignees/{user}/remove",
            format!(
                "/assessments/{a}/sections/{}/assignees/{}/remove",
                w.domain_key, w.contributor_a
            ),
            Rule::ApproveA,
        ),
        c(
            "POST",
            "/assessments/{id}/sections/{key}/status",
            format!("/assessments/{a}/sections/{}/status", w.domain_key),
            Rule::AnswerA,
        ),
        c(
            "GET",
            "/api/v1/assessments/{id}/sections",
            format!("/api/v1/assessments/{a}/sections"),
            Rule::Api,
        ),
        c(
            "POST",
            "/api/v1/assessments/{id}/sections/{key}/assignees",
            format!(
                "/api/v1/assessments/{a}/sections/{}/assignees",
                w.domain_key
            ),
            Rule::Api,
        ),
        c(
            "DELETE",
            "/api/v1/assessments/{id}/sections/{key}/assignees/{user}",
            format!(
                "/api/v1/assessments/{a}/sections/{}/assignees/{}",
                w.domain_key, w.contributor_a
            ),
            Rule::Api,
        ),
        c(
            "POST",
            "/api/v1/assessments/{id}/sections/{key}/status",
            format!("/api/v1/assessments/{a}/sections/{}/status", w.domain_key),
            Rule::Api,
        ),
        c(
            "GET",
            "/api/v1/me/sections",
            "/api/v1/me/sections".into(),
            Rule::Api,
        ),
        c(
            "GET",
            "/assessments/{id}/questions/{key}/notes",
            format!("/assessments/{a}/questions/{}/notes", w.question_key),
            Rule::ReadInProgressA,
        ),
        c(
            "POST",
            "/assessments/{id}/questions/{key}/notes",
            format!("/assessments/{a}/questions/{}/notes", w.question_key),
            Rule::AnswerA,
        ),
        c(
            "POST",
            "/assessments/{id}/notes/{note}/share",
            format!("/assessments/{a}/notes/1/share"),
            Rule::ApproveA,
        ),
        c(
            "POST",
            "/assessments/{id}/notes/{note}/edit",
            format!("/assessments/{a}/notes/1/edit"),
            Rule::AnswerA,
        ),
        c(
            "POST",
            "/assessments/{id}/notes/{note}/delete",
            format!("/assessments/{a}/notes/1/delete"),
            Rule::AnswerA,
        ),
        c(
            "GET",
            "/api/v1/assessments/{id}/questions/{key}/notes",
            format!("/api/v1/assessments/{a}/questions/{}/notes", w.question_key),
            Rule::Api,
        ),
        c(
            "POST",
            "/api/v1/assessments/{id}/questions/{key}/notes",
            format!("/api/v1/assessments/{a}/questions/{}/notes", w.question_key),
            Rule::Api,
        ),
        c(
            "POST",
            "/api/v1/assessments/{id}/notes/{note}/share",
            format!("/api/v1/assessments/{a}/notes/1/share"),
            Rule::Api,
        ),
        // Evidence (issue 23): changed by whoever may answer, read by whoever may read the
        // assessment (the sample is in progress, so not auditors); item 1 does not exist, so
        // a permitted download is 404, never a refusal.
        c(
            "GET",
            "/assessments/{id}/questions/{key}/evidence",
            format!("/assessments/{a}/questions/{}/evidence", w.question_key),
            Rule::ReadInProgressA,
        ),
        c(
            "POST",
            "/assessments/{id}/questions/{key}/evidence",
            format!("/assessments/{a}/questions/{}/evidence", w.question_key),
            Rule::AnswerA,
        ),
        c(
            "POST",
            "/assessments/{id}/evidence/{evidence}/remove",
            format!("/assessments/{a}/evidence/1/remove"),
            Rule::AnswerA,
        ),
        c(
            "GET",
            "/assessments/{id}/evidence/{evidence}/download",
            format!("/assessments/{a}/evidence/1/download"),
            Rule::ReadInProgressA,
        ),
        c(
            "GET",
            "/api/v1/assessments/{id}/questions/{key}/evidence",
            format!(
                "/api/v1/assessments/{a}/questions/{}/evidence",
                w.question_key
            ),
            Rule::Api,
        ),
        c(
            "POST",
            "/api/v1/assessments/{id}/questions/{key}/evidence",
            format!(
                "/api/v1/assessments/{a}/questions/{}/evidence",
                w.question_key
            ),
            Rule::Api,
        ),
        c(
            "GET",
            "/api/v1/assessments/{id}/evidence/{evidence}/download",
            format!("/api/v1/assessments/{a}/evidence/1/download"),
            Rule::Api,
        ),
        c(
            "DELETE",
            "/api/v1/assessments/{id}/evidence/{evidence}",
            format!("/api/v1/assessments/{a}/evidence/1"),
            Rule::Api,
        ),
        c(
            "PATCH",
            "/api/v1/assessments/{id}/notes/{note}",
            format!("/api/v1/assessments/{a}/notes/1"),
            Rule::Api,
        ),
        c(
            "DELETE",
            "/api/v1/assessments/{id}/notes/{note}",
            format!("/api/v1/assessments/{a}/notes/1?revision=1"),
            Rule::Api,
        ),
        c(
            "GET",
            "/admin/cycles",
            "/admin/cycles".into(),
            Rule::Administer,
        ),
        c(
            "POST",
            "/admin/cycles",
            "/admin/cycles".into(),
            Rule::Administer,
        ),
        c(
            "GET",
            "/admin/cycles/{id}",
            "/admin/cycles/1".into(),
            Rule::Administer,
        ),
        c(
            "GET",
            "/admin/cycles/{id}/close",
            "/admin/cycles/1/close".into(),
            Rule::Administer,
        ),
        c(
            "POST",
            "/admin/cycles/{id}/close",
            "/admin/cycles/1/close".into(),
            Rule::Administer,
        ),
        c(
            "GET",
            "/admin/organisations",
            "/admin/organisations".into(),
            Rule::Administer,
        ),
        c(
            "POST",
            "/admin/organisations/import",
            "/admin/organisations/import".into(),
            Rule::Administer,
        ),
        c(
            "GET",
            "/admin/organisations/{id}",
            format!("/admin/organisations/{}", w.org_a),
            Rule::Administer,
        ),
        c(
            "POST",
            "/admin/organisations/{id}",
            format!("/admin/organisations/{}", w.org_a),
            Rule::Administer,
        ),
        c(
            "GET",
            "/admin/organisations/{id}/close",
            format!("/admin/organisations/{}/close", w.org_a),
            Rule::Administer,
        ),
        c(
            "POST",
            "/admin/organisations/{id}/close",
            format!("/admin/organisations/{}/close", w.org_a),
            Rule::Administer,
        ),
        c(
            "GET",
            "/admin/users",
            "/admin/users".into(),
            Rule::Administer,
        ),
        c(
            "GET",
            "/admin/users/import",
            "/admin/users/import".into(),
            Rule::Administer,
        ),
        c(
            "POST",
            "/admin/users/import",
            "/admin/users/import".into(),
            Rule::Administer,
        ),
        c(
            "POST",
            "/admin/users/import/confirm",
            "/admin/users/import/confirm".into(),
            Rule::Administer,
        ),
        c(
            "GET",
            "/admin/users/invite",
            "/admin/users/invite".into(),
            Rule::Administer,
        ),
        c(
            "POST",
            "/admin/users/invite",
            "/admin/users/invite".into(),
            Rule::Administer,
        ),
        c(
            "POST",
            "/admin/users/{id}/deactivate",
            format!("/admin/users/{}/deactivate", w.contributor_a),
            Rule::Administer,
        ),
        c(
            "GET",
            "/admin/users/{id}",
            format!("/admin/users/{}", w.contributor_a),
            Rule::Administer,
        ),
        c(
            "POST",
            "/admin/users/{id}/role",
            format!("/admin/users/{}/role", w.contributor_a),
            Rule::Administer,
        ),
        c(
            "POST",
            "/admin/users/{id}/resend-invitation",
            format!("/admin/users/{}/resend-invitation", w.contributor_a),
            Rule::Administer,
        ),
        c(
            "GET",
            "/organisation/users",
            "/organisation/users".into(),
            Rule::Approvers,
        ),
        c(
            "POST",
            "/organisation/users/invite",
            "/organisation/users/invite".into(),
            Rule::Approvers,
        ),
        c(
            "POST",
            "/organisation/users/{id}/deactivate",
            format!("/organisation/users/{}/deactivate", w.contributor_a),
            Rule::ApproverOfA,
        ),
        c(
            "GET",
            "/account/reset-password",
            "/account/reset-password".into(),
            Rule::Public,
        ),
        c(
            "POST",
            "/account/reset-password",
            "/account/reset-password".into(),
            Rule::Public,
        ),
        // People in several organisations (issue 22): an approver removes members of their
        // own organisation (the sample's own organisation is A, so A's approver is told to
        // deactivate instead: 409); everyone signed in has the switcher; administrators remove
        // any membership (the sample has none: a permitted 404).
        c(
            "POST",
            "/organisation/users/{id}/remove",
            format!("/organisation/users/{}/remove", w.contributor_a),
            Rule::ApproverOfA,
        ),
        c(
            "POST",
            "/admin/users/{id}/memberships/{organisation}/remove",
            format!(
                "/admin/users/{}/memberships/{}/remove",
                w.contributor_a, w.org_a
            ),
            Rule::Administer,
        ),
        // Unlinking sign-on identities (issue 24): the sample account has none, so a
        // permitted request is a 404, never a refusal.
        c(
            "GET",
            "/account/sign-in",
            "/account/sign-in".into(),
            Rule::SignedIn,
        ),
        c(
            "POST",
            "/account/sign-in/{provider}/unlink",
            "/account/sign-in/peer/unlink".into(),
            Rule::SignedIn,
        ),
        c(
            "POST",
            "/admin/users/{id}/sso/{provider}/unlink",
            format!("/admin/users/{}/sso/peer/unlink", w.contributor_a),
            Rule::Administer,
        ),
        c(
            "GET",
            "/account/organisations",
            "/account/organisations".into(),
            Rule::SignedIn,
        ),
        c(
            "POST",
            "/account/organisations",
            "/account/organisations".into(),
            Rule::SignedIn,
        ),
        c(
            "GET",
            "/account/email",
            "/account/email".into(),
            Rule::SignedIn,
        ),
        c(
            "POST",
            "/account/email",
            "/account/email".into(),
            Rule::SignedIn,
        ),
        c(
            "GET",
            "/account/tokens",
            "/account/tokens".into(),
            Rule::SignedIn,
        ),
        c(
            "POST",
            "/account/tokens",
            "/account/tokens".into(),
            Rule::SignedIn,
        ),
        c(
            "POST",
            "/account/tokens/{id}/revoke",
            format!("/account/tokens/{token_id}/revoke"),
            Rule::TokenOwnerA,
        ),
        c(
            "GET",
            "/login/second-factor",
            "/login/second-factor".into(),
            Rule::Public,
        ),
        c(
            "POST",
            "/login/second-factor",
            "/login/second-factor".into(),
            Rule::Public,
        ),
        c(
            "GET",
            "/account/second-factor",
            "/account/second-factor".into(),
            Rule::SignedIn,
        ),
        c(
            "POST",
            "/account/second-factor",
            "/account/second-factor".into(),
            Rule::SignedIn,
        ),
        c(
            "POST",
            "/account/second-factor/remove",
            "/account/second-factor/remove".into(),
            Rule::SignedIn,
        ),
        c(
            "GET",
            "/account/confirm",
            "/account/confirm?next=/account/tokens".into(),
            Rule::SignedIn,
        ),
        c(
            "POST",
            "/account/confirm",
            "/account/confirm".into(),
            Rule::SignedIn,
        ),
        c(
            "POST",
            "/admin/users/{id}/second-factor/reset",
            format!("/admin/users/{}/second-factor/reset", w.contributor_a),
            Rule::Administer,
        ),
        c(
            "GET",
            "/login/sso/{provider}",
            "/login/sso/peer?next=/dashboard".into(),
            Rule::Public,
        ),
        c(
            "GET",
            "/login/sso/{provider}/callback",
            "/login/sso/peer/callback?code=x&state=y".into(),
            Rule::Public,
        ),
        c("GET", "/signed-out", "/signed-out".into(), Rule::Public),
        c("GET", "/admin/sso", "/admin/sso".into(), Rule::Administer),
        c(
            "POST",
            "/admin/sso/domains",
            "/admin/sso/domains".into(),
            Rule::Administer,
        ),
        c(
            "POST",
            "/admin/sso/domains/{id}/remove",
            "/admin/sso/domains/1/remove".into(),
            Rule::Administer,
        ),
        c(
            "POST",
            "/admin/sso/providers/{provider}/accounts",
            "/admin/sso/providers/peer/accounts".into(),
            Rule::Administer,
        ),
        c("GET", "/admin/audit", "/admin/audit".into(), Rule::AuditLog),
        c(
            "GET",
            "/admin/outbox",
            "/admin/outbox".into(),
            Rule::Administer,
        ),
        c(
            "POST",
            "/admin/outbox/{id}/resend",
            "/admin/outbox/1/resend".into(),
            Rule::Administer,
        ),
        c("GET", "/reports", "/reports".into(), Rule::AuditLog),
        c(
            "GET",
            "/reports/organisations/{id}",
            format!("/reports/organisations/{}", w.org_a),
            Rule::ReadA,
        ),
        c(
            "GET",
            "/reports/trends",
            "/reports/trends".into(),
            Rule::AuditLog,
        ),
        c(
            "GET",
            "/reports/progress",
            "/reports/progress".into(),
            Rule::AuditLog,
        ),
        c(
            "GET",
            "/reports/export/scores.csv",
            "/reports/export/scores.csv".into(),
            Rule::AuditLog,
        ),
        c(
            "GET",
            "/reports/export/scores.json",
            "/reports/export/scores.json".into(),
            Rule::AuditLog,
        ),
        c(
            "GET",
            "/reports/export/answers.csv",
            "/reports/export/answers.csv".into(),
            Rule::AuditLog,
        ),
        c(
            "GET",
            "/reports/export/answers.json",
            "/reports/export/answers.json".into(),
            Rule::AuditLog,
        ),
        c(
            "GET",
            "/reports/export/scores.xlsx",
            "/reports/export/scores.xlsx".into(),
            Rule::AuditLog,
        ),
        c(
            "GET",
            "/reports/export/answers.xlsx",
            "/reports/export/answers.xlsx".into(),
            Rule::AuditLog,
        ),
        c("GET", "/api/v1/me", "/api/v1/me".into(), Rule::Api),
        c(
            "GET",
            "/api/openapi.json",
            "/api/openapi.json".into(),
            Rule::Public,
        ),
        c("GET", "/api/docs", "/api/docs".into(), Rule::Public),
        c(
            "GET",
            "/api/v1/organisations",
            "/api/v1/organisations".into(),
            Rule::Api,
        ),
        c(
            "POST",
            "/api/v1/organisations/import",
            "/api/v1/organisations/import".into(),
            Rule::Api,
        ),
        c(
            "GET",
            "/api/v1/organisations/{id}",
            format!("/api/v1/organisations/{}", w.org_a),
            Rule::Api,
        ),
        c(
            "GET",
            "/api/v1/questionnaires",
            "/api/v1/questionnaires".into(),
            Rule::Api,
        ),
        c(
            "POST",
            "/api/v1/questionnaires",
            "/api/v1/questionnaires".into(),
            Rule::Api,
        ),
        c(
            "POST",
            "/api/v1/questionnaires/check",
            "/api/v1/questionnaires/check".into(),
            Rule::Api,
        ),
        c(
            "GET",
            "/api/v1/questionnaires/{key}/diff",
            format!("/api/v1/questionnaires/{qk}/diff?a={qv}&b={qv}"),
            Rule::Api,
        ),
        c(
            "GET",
            "/api/v1/questionnaires/{key}/{version}",
            format!("/api/v1/questionnaires/{qk}/{qv}"),
            Rule::Api,
        ),
        c(
            "GET",
            "/api/v1/questionnaires/{key}/{version}/definition",
            format!("/api/v1/questionnaires/{qk}/{qv}/definition"),
            Rule::Api,
        ),
        c(
            "POST",
            "/api/v1/questionnaires/{key}/{version}/publish",
            format!("/api/v1/questionnaires/{qk}/{qv}/publish"),
            Rule::Api,
        ),
        c(
            "GET",
            "/api/v1/questionnaires/{key}/{version}/draft",
            format!("/api/v1/questionnaires/{qk}/{qv}/draft"),
            Rule::Api,
        ),
        c(
            "PUT",
            "/api/v1/questionnaires/{key}/{version}/draft",
            format!("/api/v1/questionnaires/{qk}/{qv}/draft"),
            Rule::Api,
        ),
        c(
            "PATCH",
            "/api/v1/questionnaires/{key}/{version}/draft",
            format!("/api/v1/questionnaires/{qk}/{qv}/draft"),
            Rule::Api,
        ),
        c(
            "POST",
            "/api/v1/questionnaires/{key}/{version}/next",
            format!("/api/v1/questionnaires/{qk}/{qv}/next"),
            Rule::Api,
        ),
        c("GET", "/api/v1/cycles", "/api/v1/cycles".into(), Rule::Api),
        c("POST", "/api/v1/cycles", "/api/v1/cycles".into(), Rule::Api),
        c(
            "POST",
            "/api/v1/cycles/{id}/close",
            "/api/v1/cycles/1/close".into(),
            Rule::Api,
        ),
        c(
            "GET",
            "/api/v1/assessments",
            "/api/v1/assessments".into(),
            Rule::Api,
        ),
        c(
            "GET",
            "/api/v1/assessments/{id}",
            format!("/api/v1/assessments/{a}"),
            Rule::Api,
        ),
        c(
            "GET",
            "/api/v1/assessments/{id}/answers",
            format!("/api/v1/assessments/{a}/answers"),
            Rule::Api,
        ),
        c(
            "PATCH",
            "/api/v1/assessments/{id}/answers",
            format!("/api/v1/assessments/{a}/answers"),
            Rule::Api,
        ),
        c(
            "POST",
            "/api/v1/assessments/{id}/submit",
            format!("/api/v1/assessments/{a}/submit"),
            Rule::Api,
        ),
        c(
            "GET",
            "/api/v1/assessments/{id}/scores",
            format!("/api/v1/assessments/{a}/scores"),
            Rule::Api,
        ),
        c(
            "GET",
            "/api/v1/reports/benchmarks",
            "/api/v1/reports/benchmarks".into(),
            Rule::Api,
        ),
        c(
            "GET",
            "/api/v1/reports/trends",
            "/api/v1/reports/trends".into(),
            Rule::Api,
        ),
        c(
            "GET",
            "/api/v1/reports/progress",
            "/api/v1/reports/progress".into(),
            Rule::Api,
        ),
        c(
            "GET",
            "/api/v1/exports/{kind}",
            "/api/v1/exports/scores".into(),
            Rule::Api,
        ),
        c(
            "GET",
            "/assessments/{id}/audit",
            format!("/assessments/{a}/audit"),
            Rule::ReadInProgressA,
        ),
        c(
            "POST",
            "/assessments/{id}/audit/sections/{key}/accept",
            format!("/assessments/{a}/audit/sections/{}/accept", w.domain_key),
            Rule::Review,
        ),
        c(
            "POST",
            "/assessments/{id}/audit/queries",
            format!("/assessments/{a}/audit/queries"),
            Rule::Review,
        ),
        c(
            "GET",
            "/assessments/{id}/audit/queries/{query}",
            format!("/assessments/{a}/audit/queries/1"),
            Rule::ReadInProgressA,
        ),
        c(
            "POST",
            "/assessments/{id}/audit/queries/{query}/answer",
            format!("/assessments/{a}/audit/queries/1/answer"),
            Rule::AnswerA,
        ),
        c(
            "POST",
            "/assessments/{id}/audit/queries/{query}/close",
            format!("/assessments/{a}/audit/queries/1/close"),
            Rule::Review,
        ),
        c(
            "GET",
            "/assessments/{id}/plan",
            format!("/assessments/{a}/plan"),
            Rule::ReadInProgressA,
        ),
        c(
            "POST",
            "/assessments/{id}/plan/threshold",
            format!("/assessments/{a}/plan/threshold"),
            Rule::AnswerA,
        ),
        c(
            "POST",
            "/assessments/{id}/plan/actions",
            format!("/assessments/{a}/plan/actions"),
            Rule::AnswerA,
        ),
        c(
            "POST",
            "/assessments/{id}/plan/actions/{action}",
            format!("/assessments/{a}/plan/actions/1"),
            Rule::AnswerA,
        ),
        c(
            "GET",
            "/api/v1/assessments/{id}/review",
            format!("/api/v1/assessments/{a}/review"),
            Rule::Api,
        ),
        c(
            "POST",
            "/api/v1/assessments/{id}/review/sections/{key}/accept",
            format!(
                "/api/v1/assessments/{a}/review/sections/{}/accept",
                w.domain_key
            ),
            Rule::Api,
        ),
        c(
            "POST",
            "/api/v1/assessments/{id}/review/queries",
            format!("/api/v1/assessments/{a}/review/queries"),
            Rule::Api,
        ),
        c(
            "POST",
            "/api/v1/assessments/{id}/review/queries/{query}/answer",
            format!("/api/v1/assessments/{a}/review/queries/1/answer"),
            Rule::Api,
        ),
        c(
            "POST",
            "/api/v1/assessments/{id}/review/queries/{query}/close",
            format!("/api/v1/assessments/{a}/review/queries/1/close"),
            Rule::Api,
        ),
        c(
            "GET",
            "/api/v1/assessments/{id}/plan",
            format!("/api/v1/assessments/{a}/plan"),
            Rule::Api,
        ),
        c(
            "POST",
            "/api/v1/assessments/{id}/plan/actions",
            format!("/api/v1/assessments/{a}/plan/actions"),
            Rule::Api,
        ),
        c(
            "PATCH",
            "/api/v1/assessments/{id}/plan/actions/{action}",
            format!("/api/v1/assessments/{a}/plan/actions/1"),
            Rule::Api,
        ),
        c(
            "GET",
            "/admin/questionnaires",
            "/admin/questionnaires".into(),
            Rule::Administer,
        ),
        c(
            "POST",
            "/admin/questionnaires",
            "/admin/questionnaires".into(),
            Rule::Administer,
        ),
        c(
            "GET",
            "/admin/questionnaires/{key}/diff",
            format!("/admin/questionnaires/{qk}/diff?a={qv}&b={qv}"),
            Rule::Administer,
        ),
        c(
            "GET",
            "/admin/questionnaires/{key}/{version}",
            format!("/admin/questionnaires/{qk}/{qv}"),
            Rule::Administer,
        ),
        c(
            "GET",
            "/admin/questionnaires/{key}/{version}/preview",
            format!("/admin/questionnaires/{qk}/{qv}/preview"),
            Rule::Administer,
        ),
        c(
            "GET",
            "/admin/questionnaires/{key}/{version}/print",
            format!("/admin/questionnaires/{qk}/{qv}/print"),
            Rule::Administer,
        ),
        c(
            "GET",
            "/admin/questionnaires/{key}/{version}/publish",
            format!("/admin/questionnaires/{qk}/{qv}/publish"),
            Rule::Administer,
        ),
        c(
            "POST",
            "/admin/questionnaires/{key}/{version}/publish",
            format!("/admin/questionnaires/{qk}/{qv}/publish"),
            Rule::Administer,
        ),
        c(
            "POST",
            "/admin/questionnaires/{key}/{version}/delete",
            format!("/admin/questionnaires/{qk}/{qv}/delete"),
            Rule::Administer,
        ),
        c(
            "GET",
            "/admin/questionnaires/{key}/{version}/download",
            format!("/admin/questionnaires/{qk}/{qv}/download"),
            Rule::Administer,
        ),
        c(
            "GET",
            "/admin/questionnaires/new",
            "/admin/questionnaires/new".into(),
            Rule::Administer,
        ),
        c(
            "POST",
            "/admin/questionnaires/new",
            "/admin/questionnaires/new".into(),
            Rule::Administer,
        ),
        c(
            "POST",
            "/admin/questionnaires/{key}/{version}/next",
            format!("/admin/questionnaires/{qk}/{qv}/next"),
            Rule::Administer,
        ),
        c(
            "GET",
            "/admin/questionnaires/{key}/{version}/edit",
            format!("/admin/questionnaires/{qk}/{qv}/edit"),
            Rule::Administer,
        ),
        c(
            "POST",
            "/admin/questionnaires/{key}/{version}/edit",
            format!("/admin/questionnaires/{qk}/{qv}/edit"),
            Rule::Administer,
        ),
        c(
            "GET",
            "/admin/questionnaires/{key}/{version}/edit/{domain}/{question}",
            format!("/admin/questionnaires/{qk}/{qv}/edit/0/0"),
            Rule::Administer,
        ),
    ]
}

/// Routes registered in the source: every `web::get()`-style route constructor and every
/// routing attribute under `src/`. Counted from the text because actix-web cannot list the
/// routes of an application.
fn routes_in_source() -> usize {
    fn walk(dir: &std::path::Path, total: &mut usize) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, total);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                for method in ["get", "post", "put", "patch", "delete", "head", "route"] {
                    *total += text.matches(&format!("web::{method}()")).count();
                    *total += text.matches(&format!("#[{method}(")).count();
                    *total += text.matches(&format!("#[actix_web::{method}(")).count();
                }
                *total += text.matches("Route::new()").count();
            }
        }
    }
    let mut total = 0;
    walk(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut total,
    );
    total
}

#[test]
fn the_route_list_matches_what_is_registered() {
    let listed: BTreeSet<(&str, &str)> = dma::web::ROUTES.iter().copied().collect();
    assert_eq!(
        listed.len(),
        dma::web::ROUTES.len(),
        "dma::web::ROUTES lists a route twice"
    );
    assert_eq!(
        dma::web::ROUTES.len(),
        routes_in_source(),
        "the source registers a different number of routes than dma::web::ROUTES lists: \
         add the new route to ROUTES and to the table in tests/integration/authorisation.rs"
    );
}

/// Fields for a refused request: a valid CSRF token and enough for the request to do
/// something if the refusal were missing.
fn fields(pattern: &str, csrf: &str) -> Vec<(&'static str, String)> {
    let mut f = vec![("csrf_token", csrf.to_string())];
    let more: &[(&str, &str)] = match pattern {
        "/admin/users/invite" => &[
            ("email", "new.person@example.nhs.uk"),
            ("name", "New Person"),
            ("role", "org_contributor"),
            ("organisation", "RA1"),
        ],
        "/organisation/users/invite" => &[
            ("email", "new.person@example.nhs.uk"),
            ("name", "New Person"),
            ("role", "org_contributor"),
        ],
        "/account/tokens" => &[("name", "script")],
        "/account/email" => &[("delivery", "daily")],
        "/account/organisations" => &[("place", "home")],
        "/admin/sso/domains" => &[("provider", "peer"), ("domain", "a.nhs.uk")],
        "/admin/sso/providers/{provider}/accounts" => &[("create_accounts", "on")],
        "/login/second-factor" => &[("code", "123456")],
        "/account/second-factor" => &[("code", "123456"), ("sealed_secret", "x")],
        "/account/confirm" => &[("password", PASSWORD), ("code", "123456")],
        "/admin/cycles" => &[
            ("label", "2026/27"),
            ("opens_on", "2026-04-01"),
            ("deadline", "2026-06-30"),
        ],
        "/assessments/{id}/deadline" => &[("deadline", "2030-01-01")],
        "/admin/users/import/confirm" => &[(
            "file",
            "email,name,role,organisation\nnew.person@example.nhs.uk,New Person,org_contributor,RA1\n",
        )],
        "/admin/users/{id}/role" => &[("seen_role", "org_contributor"), ("role", "auditor")],
        "/admin/organisations/{id}" => &[("name", "Renamed"), ("settings", "acute")],
        "/admin/organisations/{id}/close" => &[("closed_on", "2026-01-01")],
        "/admin/questionnaires/new" => &[
            ("key", "new-set"),
            ("version", "1"),
            ("title", "A new set"),
            ("settings", "acute"),
        ],
        "/admin/questionnaires/{key}/{version}/next" => &[("new_version", "2099.1")],
        "/admin/questionnaires/{key}/{version}/edit" => {
            &[("revision", "1"), ("action", "add_domain")]
        }
        "/assessments/{id}/reopen" => &[("reason", "a mistake")],
        "/assessments/{id}/audit/queries" => &[("question", "x"), ("message", "Why?")],
        "/assessments/{id}/audit/sections/{key}/accept"
        | "/assessments/{id}/audit/queries/{query}/close" => &[("revision", "0")],
        "/assessments/{id}/audit/queries/{query}/answer" => {
            &[("revision", "1"), ("response", "Because")]
        }
        "/assessments/{id}/plan/threshold" => &[("band", "Defined")],
        "/assessments/{id}/plan/actions" | "/assessments/{id}/plan/actions/{action}" => &[
            ("domain", "x"),
            ("title", "Do a thing"),
            ("owner_text", "The CIO"),
            ("revision", "1"),
        ],
        "/assessments/{id}/questions/{key}/notes" => &[("note", "A note")],
        "/assessments/{id}/notes/{note}/share" => &[("shared", "yes"), ("revision", "1")],
        "/assessments/{id}/notes/{note}/edit" => &[("note", "Changed"), ("revision", "1")],
        "/assessments/{id}/notes/{note}/delete" => &[("revision", "1")],
        "/assessments/{id}/evidence/{evidence}/remove" => &[("return", "page")],
        "/assessments/{id}/sections/{key}/status" => {
            &[("status", "ready_for_review"), ("revision", "0")]
        }
        "/assessments/{id}/submit" => &[("signoff_name", "A Person"), ("signoff_job_title", "CIO")],
        "/login" => &[("email", "admin@example.nhs.uk"), ("password", PASSWORD)],
        "/account/reset-password" => &[("email", "contributor@a.nhs.uk")],
        "/account/set-password" => &[
            ("token", "unknown"),
            ("password", "a long new passphrase"),
            ("confirm", "a long new passphrase"),
        ],
        _ => &[],
    };
    f.extend(more.iter().map(|(k, v)| (*k, v.to_string())));
    f
}

fn multipart_file(pattern: &str) -> Option<(Vec<u8>, &'static str)> {
    match pattern {
        "/admin/users/import" => Some((
            b"email,name,role,organisation\nnew.person@example.nhs.uk,New Person,org_contributor,RA1\n".to_vec(),
            "people.csv",
        )),
        "/admin/organisations/import" => Some((
            b"ods_code,name\nRA1,Renamed Hospitals NHS Trust\n".to_vec(),
            "registry.csv",
        )),
        "/admin/questionnaires" => Some((
            std::fs::read(format!(
                "{}/tests/fixtures/wgll-acute-2025.yaml",
                env!("CARGO_MANIFEST_DIR")
            ))
            .unwrap()
            .into_iter()
            .map(|b| b as char)
            .collect::<String>()
            .replace("version: \"2025.1\"", "version: \"2026.1\"")
            .into_bytes(),
            "set.yaml",
        )),
        // A real PDF, so only the policy (or the CSRF check) can refuse it.
        "/assessments/{id}/questions/{key}/evidence" => {
            Some((b"%PDF-1.4\n% evidence\n%%EOF\n".to_vec(), "evidence.pdf"))
        }
        _ => None,
    }
}

async fn send(browser: &Browser, case: &Case, csrf: &str) -> reqwest::Response {
    if case.method == "GET" {
        return browser.get(&case.path).await;
    }
    if case.method != "POST" {
        // The API's other methods: a browser's cookies and a JSON body.
        let method = reqwest::Method::from_bytes(case.method.as_bytes()).unwrap();
        return browser
            .client
            .request(method, browser.url(&case.path))
            .json(&serde_json::json!({"answers": [], "csrf_token": csrf}))
            .send()
            .await
            .unwrap();
    }
    match multipart_file(case.pattern) {
        Some((file, name)) => browser.post_multipart(&case.path, csrf, file, name).await,
        None => {
            let f = fields(case.pattern, csrf);
            let borrowed: Vec<(&str, &str)> = f.iter().map(|(k, v)| (*k, v.as_str())).collect();
            browser.post(&case.path, &borrowed).await
        }
    }
}

fn is_sign_in_redirect(res: &reqwest::Response) -> bool {
    res.status() == StatusCode::SEE_OTHER
        && res
            .headers()
            .get("location")
            .and_then(|l| l.to_str().ok())
            .is_some_and(|l| l.starts_with("/login?next="))
}

#[tokio::test]
async fn every_route_refuses_whoever_may_not_use_it_and_changes_nothing() {
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        let world = World::seed(&app).await;
        let contributor_a = world.contributor_a;
        let (token_id, api_tokens) = app
            .db
            .write(move |conn| {
                let actor = dma::services::audit::Actor::system("test");
                let (sample, _) = dma::services::auth::api_token::create(
                    conn,
                    &actor,
                    contributor_a,
                    "sample",
                    30,
                )?;
                let mut tokens = Vec::new();
                for email in PEOPLE.iter().filter_map(|w| w.email()) {
                    let user = dma::services::auth::users::find_by_email(conn, email)?.unwrap();
                    let (_, token) =
                        dma::services::auth::api_token::create(conn, &actor, user.id, "api", 30)?;
                    tokens.push((user.id, user.role, token));
                }
                Ok((sample.id, tokens))
            })
            .await
            .unwrap();
        let table = cases(&world, token_id);

        // The table covers exactly the registered routes.
        let covered: BTreeSet<(&str, &str)> = table.iter().map(|c| (c.method, c.pattern)).collect();
        let registered: BTreeSet<(&str, &str)> = dma::web::ROUTES.iter().copied().collect();
        assert_eq!(covered, registered, "the table and dma::web::ROUTES differ");
        assert_eq!(table.len(), dma::web::ROUTES.len());

        let mut browsers = Vec::new();
        for who in PEOPLE {
            let b = Browser::new(&app);
            match who.email() {
                Some(email) => b.sign_in(email, PASSWORD).await,
                None => {
                    b.get("/login").await;
                }
            }
            let csrf = match who {
                Who::Anonymous => csrf_from(&b.text("/login").await),
                _ => b.csrf().await,
            };
            browsers.push((who, b, csrf));
        }

        // First every refusal, then the database must be as it was.
        let before = snapshot(&app).await;
        for case in &table {
            for (who, browser, csrf) in &browsers {
                if allowed(case.rule, *who) {
                    continue;
                }
                let res = send(browser, case, csrf).await;
                let status = res.status();
                let what = format!("[{backend}] {who:?} {} {}", case.method, case.path);
                if case.rule == Rule::Api {
                    assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}");
                    let body: serde_json::Value = res.json().await.unwrap();
                    assert_eq!(body["status"], 401, "{what}");
                } else if *who == Who::Anonymous {
                    assert!(
                        is_sign_in_redirect(&res),
                        "{what}: {status}, not sent to sign in"
                    );
                } else if case.rule == Rule::TokenOwnerA {
                    assert_eq!(status, StatusCode::NOT_FOUND, "{what}");
                } else {
                    assert_eq!(status, StatusCode::FORBIDDEN, "{what}");
                }
            }
        }
        assert_eq!(
            snapshot(&app).await,
            before,
            "[{backend}] a refused request changed data"
        );

        // Then whoever may use a page gets it. (A permitted POST would change things; the
        // feature tests cover those.)
        for case in table.iter().filter(|c| c.method == "GET") {
            for (who, browser, _) in &browsers {
                if !allowed(case.rule, *who) {
                    continue;
                }
                let res = browser.get(&case.path).await;
                let status = res.status();
                let what = format!("[{backend}] {who:?} GET {}", case.path);
                assert!(status.as_u16() < 500, "{what}: {status}");
                assert!(
                    status != StatusCode::FORBIDDEN
                        && status != StatusCode::UNAUTHORIZED
                        && !is_sign_in_redirect(&res),
                    "{what}: refused ({status}) but should be allowed"
                );
                // A route that exists does not fall through to "page not found".
                if matches!(case.rule, Rule::Public | Rule::SignedIn) {
                    assert_ne!(status, StatusCode::NOT_FOUND, "{what}");
                }
            }
        }

        // The API: each person's token says who they are; without one, 401 for everyone.
        for (user_id, role, token) in &api_tokens {
            let res = app
                .client
                .get(app.url("/api/v1/me"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 200, "[{backend}] {role}");
            let body: serde_json::Value = res.json().await.unwrap();
            assert_eq!(body["id"], *user_id);
            assert_eq!(body["role"], role.as_str());
        }
    }
}

#[tokio::test]
async fn an_approver_cannot_reach_another_organisations_people_even_with_tampered_forms() {
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        let world = World::seed(&app).await;
        let b = Browser::new(&app);
        b.sign_in("approver@b.nhs.uk", PASSWORD).await;
        let csrf = b.csrf().await;

        // The list shows B's people only.
        let page = b.text("/organisation/users").await;
        assert!(page.contains("contributor@b.nhs.uk"), "[{backend}]");
        assert!(
            !page.contains("contributor@a.nhs.uk"),
            "[{backend}] sees A's people"
        );
        assert!(!page.contains("approver@a.nhs.uk"));
        assert!(
            !page.contains("name=\"organisation\""),
            "the form offers a choice of organisation"
        );

        let before = snapshot(&app).await;
        let a_person = world.contributor_a.to_string();
        let attempts: Vec<(String, Vec<(&str, &str)>)> = vec![
            // Inviting into A by naming A's ODS code.
            (
                "/organisation/users/invite".into(),
                vec![
                    ("csrf_token", &csrf),
                    ("email", "mole@example.nhs.uk"),
                    ("name", "Mole"),
                    ("role", "org_approver"),
                    ("organisation", "RA1"),
                ],
            ),
            // A role the form does not offer.
            (
                "/organisation/users/invite".into(),
                vec![
                    ("csrf_token", &csrf),
                    ("email", "mole@example.nhs.uk"),
                    ("name", "Mole"),
                    ("role", "administrator"),
                ],
            ),
            (
                "/organisation/users/invite".into(),
                vec![
                    ("csrf_token", &csrf),
                    ("email", "mole@example.nhs.uk"),
                    ("name", "Mole"),
                    ("role", "auditor"),
                ],
            ),
            // Deactivating one of A's people by id.
            (
                format!("/organisation/users/{a_person}/deactivate"),
                vec![("csrf_token", &csrf)],
            ),
            // The administrators' routes.
            (
                format!("/admin/users/{a_person}/deactivate"),
                vec![("csrf_token", &csrf)],
            ),
            (
                "/admin/users/invite".into(),
                vec![
                    ("csrf_token", &csrf),
                    ("email", "mole@example.nhs.uk"),
                    ("name", "Mole"),
                    ("role", "org_approver"),
                    ("organisation", "RA1"),
                ],
            ),
        ];
        for (path, form) in &attempts {
            let res = b.post(path, form).await;
            assert_eq!(
                res.status(),
                StatusCode::FORBIDDEN,
                "[{backend}] {path} {form:?}"
            );
        }
        assert_eq!(
            snapshot(&app).await,
            before,
            "[{backend}] something changed"
        );

        // A's approver is equally limited to A, and may act there.
        let a = Browser::new(&app);
        a.sign_in("approver@a.nhs.uk", PASSWORD).await;
        let csrf_a = a.csrf().await;
        let b_person = world.contributor_b.to_string();
        let res = a
            .post(
                &format!("/organisation/users/{b_person}/deactivate"),
                &[("csrf_token", &csrf_a)],
            )
            .await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "[{backend}]");
        let res = a
            .post(
                &format!("/organisation/users/{a_person}/deactivate"),
                &[("csrf_token", &csrf_a)],
            )
            .await;
        assert_eq!(
            res.status(),
            StatusCode::SEE_OTHER,
            "[{backend}] own organisation"
        );
    }
}

#[tokio::test]
async fn every_post_without_a_valid_csrf_token_is_refused_and_changes_nothing() {
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        let world = World::seed(&app).await;
        let contributor_a = world.contributor_a;
        let token_id = app
            .db
            .write(move |conn| {
                let actor = dma::services::audit::Actor::system("test");
                Ok(dma::services::auth::api_token::create(
                    conn,
                    &actor,
                    contributor_a,
                    "sample",
                    30,
                )?
                .0
                .id)
            })
            .await
            .unwrap();
        let table = cases(&world, token_id);
        let mut browsers = Vec::new();
        for who in [
            Who::Anonymous,
            Who::Admin,
            Who::ApproverA,
            Who::ContributorA,
        ] {
            let b = Browser::new(&app);
            match who.email() {
                Some(email) => b.sign_in(email, PASSWORD).await,
                None => {
                    // Sets the signed-out CSRF cookie, so only the forged field is wrong.
                    b.get("/login").await;
                }
            }
            browsers.push((who, b));
        }
        let before = snapshot(&app).await;
        let mut posts = 0;
        for case in table.iter().filter(|c| c.method != "GET") {
            let who = permitted_person(case.rule);
            let (_, browser) = browsers.iter().find(|(w, _)| *w == who).unwrap();
            for forged in ["forged", ""] {
                let res = send(browser, case, forged).await;
                // The API takes no cookies at all, so a browser's request is unauthenticated.
                let expected = if case.rule == Rule::Api {
                    StatusCode::UNAUTHORIZED
                } else {
                    StatusCode::BAD_REQUEST
                };
                assert_eq!(
                    res.status(),
                    expected,
                    "[{backend}] {who:?} POST {} with csrf_token={forged:?}",
                    case.path
                );
            }
            posts += 1;
        }
        assert_eq!(
            posts,
            dma::web::ROUTES.iter().filter(|(m, _)| *m != "GET").count()
        );
        assert_eq!(
            snapshot(&app).await,
            before,
            "[{backend}] a forged form changed data"
        );
        // Still signed in: a forged sign-out did not sign anyone out.
        for (who, b) in &browsers {
            if *who != Who::Anonymous {
                assert_eq!(
                    b.get("/dashboard").await.status(),
                    200,
                    "[{backend}] {who:?}"
                );
            }
        }
    }
}
