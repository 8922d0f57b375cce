//! Who may read which group views ([`Scope`]): kept apart from the queries so that the
//! pages, the API and the exports ask the same question about a person.

use crate::services::auth::roles::{can, Action, Role};
use crate::services::auth::users::User;

/// Which assessments a person may see in group views.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Auditors and administrators.
    All,
    /// A group viewer: assessments whose snapshot ICB is `icb_id` or whose snapshot region is
    /// `region` (at least one is set).
    Group {
        icb_id: Option<i64>,
        region: Option<String>,
    },
}

impl Scope {
    /// The group views a person may read, or `None` when they may read none.
    pub fn of(user: &User) -> Option<Scope> {
        if !user.active {
            return None;
        }
        if can(user.subject(), Action::ReadAllResults) {
            return Some(Scope::All);
        }
        if user.role() == Role::GroupViewer {
            let region = user.group_region.clone().filter(|r| !r.trim().is_empty());
            if user.group_organisation_id.is_some() || region.is_some() {
                return Some(Scope::Group {
                    icb_id: user.group_organisation_id,
                    region,
                });
            }
        }
        None
    }

    /// Whether an assessment with this snapshot ICB and region is in scope.
    pub fn includes(&self, icb_id: Option<i64>, region: Option<&str>) -> bool {
        match self {
            Scope::All => true,
            Scope::Group {
                icb_id: group_icb,
                region: group_region,
            } => {
                (group_icb.is_some() && *group_icb == icb_id)
                    || (group_region.is_some() && group_region.as_deref() == region)
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn group_scope_matches_icb_or_region() {
        let s = Scope::Group {
            icb_id: Some(7),
            region: None,
        };
        assert!(s.includes(Some(7), Some("London")));
        assert!(!s.includes(Some(8), Some("London")));
        assert!(!s.includes(None, None));
        let r = Scope::Group {
            icb_id: None,
            region: Some("London".into()),
        };
        assert!(r.includes(Some(8), Some("London")));
        assert!(!r.includes(Some(8), Some("North West")));
    }
}
