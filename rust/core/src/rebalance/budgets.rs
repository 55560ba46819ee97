//! How many pods each PodDisruptionBudget lets a rebalance evict.

use crate::model::pdb::PodDisruptionBudget;
use crate::model::pod::PodPhase;
use crate::snapshot::{PodId, Snapshot};

/// One PodDisruptionBudget as a limit on moves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Budget {
    /// Index into `Snapshot::pdbs`.
    pub pdb: usize,
    /// The active pods it covers: its namespace's pods its selector matches.
    pub pods: Vec<PodId>,
    /// Evictions it allows now: `status.disruptionsAllowed` when the snapshot carries a status,
    /// else worked out from the spec (see [`allowed_by_spec`]).
    pub allowed: u32,
}

/// Every PodDisruptionBudget of the snapshot, in snapshot order.
pub fn budgets(snap: &Snapshot) -> Vec<Budget> {
    snap.pdbs
        .iter()
        .enumerate()
        .map(|(i, pdb)| {
            let ns = pdb.metadata.namespace.as_deref().unwrap_or("default");
            let pods: Vec<PodId> = match &pdb.selector {
                // policy/v1: a null selector selects nothing, an empty one the whole namespace.
                None => Vec::new(),
                Some(sel) => (0..snap.pods.len() as PodId)
                    .filter(|&p| {
                        snap.is_active(p)
                            && snap.symbols.resolve(snap.pods.namespace[p as usize]) == ns
                            && sel.matches(&snap.pod_labels(p))
                    })
                    .collect(),
            };
            let allowed = match &pdb.status {
                Some(status) => status.disruptions_allowed.max(0) as u32,
                None => allowed_by_spec(snap, pdb, &pods),
            };
            Budget {
                pdb: i,
                pods,
                allowed,
            }
        })
        .collect()
}

/// The disruption controller's rule, with the covered pods standing in for the controllers'
/// scale and running pods for healthy ones: allowed = healthy − desired, where desired is
/// `minAvailable`, or expected − `maxUnavailable` (percentages of expected, rounded up). With
/// neither set nothing may go: a tool that evicts errs on the side of keeping.
pub fn allowed_by_spec(snap: &Snapshot, pdb: &PodDisruptionBudget, pods: &[PodId]) -> u32 {
    let expected = pods.len() as i32;
    let healthy = pods
        .iter()
        .filter(|&&p| snap.pods.phase[p as usize] == PodPhase::Running)
        .count() as i32;
    let desired = match (pdb.min_available, pdb.max_unavailable) {
        (Some(min), _) => min.resolve(expected),
        (None, Some(max)) => expected - max.resolve(expected),
        (None, None) => return 0,
    };
    (healthy - desired).max(0) as u32
}
