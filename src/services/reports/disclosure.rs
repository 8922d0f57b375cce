//! Which peer figures a viewer may see on an organisation report. A peer group's figures
//! (median, quartiles, mean, and the lowest and highest score in the chart) describe
//! organisations the viewer may have no right to see one by one: in a group of two, the
//! lowest and highest are the two organisations' own scores. So every viewer below auditor
//! (organisation people and group viewers alike, whose scope is one ICB or region while the
//! national and regional peer groups are wider) sees a group's figures only when it has at
//! least [`super::MIN_DISCLOSED`] members; a smaller group is withheld whole, extremes
//! included. Auditors and administrators, who may read every submitted result anyway, see
//! every group.

use super::Viewer;

/// Whether `viewer` sees the figures of groups smaller than [`super::MIN_DISCLOSED`].
pub fn sees_small_groups(viewer: &Viewer) -> bool {
    matches!(
        viewer,
        Viewer::Full {
            sees_small_groups: true
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_auditors_and_administrators_see_small_groups() {
        assert!(sees_small_groups(&Viewer::Full {
            sees_small_groups: true
        }));
        assert!(!sees_small_groups(&Viewer::Full {
            sees_small_groups: false
        }));
        assert!(!sees_small_groups(&Viewer::Group(super::super::Scope::All)));
    }
}
