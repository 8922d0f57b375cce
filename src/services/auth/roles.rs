//! Roles and the one place that decides who may do what. Every route asks [`can`]; nothing
//! else compares roles, so the route-by-role test exercises the whole policy.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Role {
    /// Authors question sets, opens cycles, keeps the registry and accounts.
    Administrator,
    /// Reads every submitted assessment nationally, and the audit log. Not answers while they
    /// are being written: an organisation's draft is its own until it signs it off, and what an
    /// auditor examines is what was submitted (docs/security.md).
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
    /// Read one organisation's assessments and answers (for an assessment not yet submitted,
    /// [`Action::ReadInProgress`] as well).
    ReadOrganisation(i64),
    /// Read one organisation's assessment while it is not submitted: its answers as they are
    /// being written.
    ReadInProgress(i64),
    /// Change answers of one organisation's assessment.
    Answer(i64),
    /// Sign off and submit for one organisation; manage its users.
    Approve(i64),
    /// Add or remove evidence on one organisation's answers: whoever may change the answers
    /// (the assessment being open is the service's check, as for answers).
    ChangeEvidence(i64),
    /// Download one organisation's evidence files: whoever may read its assessments (for one
    /// not yet submitted, [`Action::ReadInProgress`] as well, as for its answers).
    ReadEvidence(i64),
    /// Review a submitted assessment as an auditor: accept its sections, raise and close
    /// queries (docs/review.md). National, like reading every result: no ICB or regional
    /// reviewer role exists, because group viewers read results but do not assure them.
    Review,
}

/// What the policy needs to know about a person.
#[derive(Debug, Clone, Copy)]
pub struct Subject {
    pub role: Role,
    pub organisation_id: Option<i64>,
}

pub fn can(subject: Subject, action: Action) -> bool {
    let own = |org: i64| subject.organisation_id == Some(org);
    // Evidence goes with the answers: changing it is changing an answer, reading it is
    // reading the assessment. Said once here so the two cannot drift apart.
    let action = match action {
        Action::ChangeEvidence(o) => Action::Answer(o),
        Action::ReadEvidence(o) => Action::ReadOrganisation(o),
        other => other,
    };
    match (subject.role, action) {
        (Role::Administrator, _) => true,
        (Role::Auditor, Action::ReadAuditLog | Action::ReadAllResults) => true,
        (Role::Auditor, Action::ReadOrganisation(_)) => true,
        (Role::Auditor, Action::Review) => true,
        (
            Role::OrgApprover,
            Action::ReadOrganisation(o)
            | Action::ReadInProgress(o)
            | Action::Answer(o)
            | Action::Approve(o),
        ) => own(o),
        (
            Role::OrgContributor,
            Action::ReadOrganisation(o) | Action::ReadInProgress(o) | Action::Answer(o),
        ) => own(o),
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
        assert!(!can(auditor, Action::ReadInProgress(7)));
        assert!(can(
            subject(Role::OrgContributor, Some(7)),
            Action::ReadInProgress(7)
        ));
        assert!(!can(auditor, Action::Answer(7)));
        assert!(!can(auditor, Action::Approve(7)));
        assert!(!can(auditor, Action::Administer));
        assert!(can(auditor, Action::Review));
        for r in [
            subject(Role::OrgApprover, Some(7)),
            subject(Role::OrgContributor, Some(7)),
            subject(Role::GroupViewer, None),
        ] {
            assert!(!can(r, Action::Review));
        }
    }

    #[test]
    fn evidence_follows_the_answers() {
        let everyone = [
            subject(Role::Administrator, None),
            subject(Role::Auditor, None),
            subject(Role::GroupViewer, None),
            subject(Role::OrgApprover, Some(1)),
            subject(Role::OrgContributor, Some(1)),
            subject(Role::OrgApprover, Some(2)),
            subject(Role::OrgContributor, Some(2)),
        ];
        for s in everyone {
            assert_eq!(can(s, Action::ChangeEvidence(1)), can(s, Action::Answer(1)));
            assert_eq!(
                can(s, Action::ReadEvidence(1)),
                can(s, Action::ReadOrganisation(1))
            );
        }
        assert!(!can(
            subject(Role::Auditor, None),
            Action::ChangeEvidence(1)
        ));
        assert!(can(subject(Role::Auditor, None), Action::ReadEvidence(1)));
    }

    #[test]
    fn roles_round_trip_through_text() {
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
        assert_eq!(Role::parse("root"), None);
    }
}

#[cfg(test)]
mod role_names_tests {
    use super::Role;

    /// The configuration names roles (`DMA_SECOND_FACTOR_ROLES`) below this layer; its list
    /// must be this one.
    #[test]
    fn the_configuration_knows_every_role() {
        let names: Vec<&str> = Role::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(names, crate::config::ROLE_NAMES);
    }
}
