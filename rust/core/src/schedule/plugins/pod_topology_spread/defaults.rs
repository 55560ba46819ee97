//! Default constraints: upstream's system defaults, and which pods get defaults at all.

use crate::model::spread::{InclusionPolicy, TopologySpreadConstraint, WhenUnsatisfiable};
use crate::snapshot::{PodId, Snapshot};

pub(super) const HOSTNAME: &str = "kubernetes.io/hostname";
pub(super) const ZONE: &str = "topology.kubernetes.io/zone";

pub(super) fn system_default(max_skew: i32, key: &str) -> TopologySpreadConstraint {
    TopologySpreadConstraint {
        max_skew,
        topology_key: key.into(),
        when_unsatisfiable: WhenUnsatisfiable::ScheduleAnyway,
        label_selector: None,
        min_domains: None,
        node_affinity_policy: InclusionPolicy::Honor,
        node_taints_policy: InclusionPolicy::Ignore,
        match_label_keys: Vec::new(),
    }
}

/// Controllers whose pods get default constraints (the ones upstream reads selectors from).
pub(super) fn spread_by_default(snap: &Snapshot, p: PodId) -> bool {
    snap.pods.owner[p as usize].as_ref().is_some_and(|o| {
        matches!(
            snap.symbols.resolve(o.kind),
            "ReplicaSet" | "StatefulSet" | "ReplicationController"
        )
    })
}
