//! Roles and the one place that decides who may do what. Every route asks [`can`]; nothing
//! else compares roles, so the route-by-role test exercises the whole policy.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Role {
    /// Authors question sets, opens cycles, keeps the registry and accounts.
    Administrator,
    /// Reads every submitted assessment nationally.
    Auditor,
    /// Reads the submitted results of the organisations in one ICB or region.
    GroupViewer,
    /// Signs off and submits for one organisation and manages its users.
    OrgApprover,
    /// Answers questions for one organisation.
    OrgContributor,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::Administrator,
        Role::Auditor,
        Role::GroupViewer,
        Role::OrgApprover,
        Role::OrgContributor,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Administrator => "administrator",
            Role::Auditor => "auditor",
            Role::GroupViewer => "group_viewer",
            Role::OrgApprover => "org_approver",
            Role::OrgContributor => "org_contributor",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Role::Administrator => "Administrator",
            Role::Auditor => "Auditor",
            Role::GroupViewer => "Group viewer",
            Role::OrgApprover => "Approver",
            Role::OrgContributor => "Contributor",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// Roles that belong to one organisation.
    pub fn is_organisation_role(self) -> bool {
        matches!(self, Role::OrgApprover | Role::OrgContributor)
    }
}

/// Something a person might try to do. Organisation-scoped actions carry the organisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Author, publish and preview question sets; open cycles; manage accounts and registry.
    Administer,
    /// Read the audit log.
    ReadAuditLog,
    /// Read every organisation's submitted results and national reports.
    ReadAllResults,
    /// Read one organisation's assessments and answers.
    ReadOrganisation(i64),
    /// Change answers of one organisation's assessment.
    Answer(i64),
    /// Sign off and submit for one organisation; manage its users.
    Approve(i64),
}

/// What the policy needs to know about a person.
#[derive(Debug, Clone, Copy)]
pub struct Subject {
    pub role: Role,
    pub organisation_id: Option<i64>,
}

pub fn can(subject: Subject, action: Action) -> bool {
    let own = |org: i64| subject.organisation_id == Some(org);
    match (subject.role, action) {
        (Role::Administrator, _) => true,
        (Role::Auditor, Action::ReadAuditLog | Action::ReadAllResults) => true,
        (Role::Auditor, Action::ReadOrganisation(_)) => true,
        (
            Role::OrgApprover,
            Action::ReadOrganisation(o) | Action::Answer(o) | Action::Approve(o),
        ) => own(o),
        (Role::OrgContributor, Action::ReadOrganisation(o) | Action::Answer(o)) => own(o),
        // Group viewers' reach depends on ICB membership in a cycle, which needs the
        // database: `reports` checks it with `group_scope`; here they get nothing directly.
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subject(role: Role, org: Option<i64>) -> Subject {
        Subject {
            role,
            organisation_id: org,
        }
    }

    #[test]
    fn organisation_roles_reach_only_their_organisation() {
        let approver = subject(Role::OrgApprover, Some(1));
        let contributor = subject(Role::OrgContributor, Some(1));
        assert!(can(approver, Action::Approve(1)));
        assert!(!can(approver, Action::Approve(2)));
        assert!(!can(approver, Action::ReadOrganisation(2)));
        assert!(can(contributor, Action::Answer(1)));
        assert!(!can(contributor, Action::Approve(1)));
        assert!(!can(contributor, Action::Answer(2)));
        for r in [approver, contributor] {
            assert!(!can(r, Action::Administer));
            assert!(!can(r, Action::ReadAllResults));
            assert!(!can(r, Action::ReadAuditLog));
        }
        // An organisation role without an organisation reaches nothing.
        assert!(!can(subject(Role::OrgApprover, None), Action::Answer(1)));
    }

    #[test]
    fn auditors_read_but_never_change() {
        let auditor = subject(Role::Auditor, None);
        assert!(can(auditor, Action::ReadAllResults));
        assert!(can(auditor, Action::ReadOrganisation(7)));
        assert!(!can(auditor, Action::Answer(7)));
        assert!(!can(auditor, Action::Approve(7)));
        assert!(!can(auditor, Action::Administer));
    }

    #[test]
    fn roles_round_trip_through_text() {
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
        assert_eq!(Role::parse("root"), None);
    }
}
