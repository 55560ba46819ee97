//! How many pods each PodDisruptionBudget lets a rebalance evict.

use crate::hash::IdMap;
use crate::intern::Sym;
use crate::model::pdb::{PdbStatus, PodDisruptionBudget};
use crate::model::pod::PodPhase;
use crate::model::selector::{LabelSelector, SelectorOperator};
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
    let index = CoverIndex::new(snap);
    snap.pdbs
        .iter()
        .enumerate()
        .map(|(i, pdb)| {
            let ns = pdb.metadata.namespace.as_deref().unwrap_or("default");
            let pods: Vec<PodId> = match &pdb.selector {
                // policy/v1: a null selector selects nothing, an empty one the whole namespace.
                None => Vec::new(),
                Some(sel) => index
                    .candidates(snap, ns, sel)
                    .iter()
                    .copied()
                    .filter(|&p| sel.matches(&snap.pod_labels(p)))
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
    status_by_spec(snap, pdb, pods).disruptions_allowed as u32
}

/// The status [`allowed_by_spec`] works out: what the disruption controller would report if the
/// covered pods were all its controllers expect. With neither `minAvailable` nor
/// `maxUnavailable`, every expected pod is desired.
pub fn status_by_spec(snap: &Snapshot, pdb: &PodDisruptionBudget, pods: &[PodId]) -> PdbStatus {
    let expected = pods.len() as i32;
    let healthy = pods
        .iter()
        .filter(|&&p| snap.pods.phase[p as usize] == PodPhase::Running)
        .count() as i32;
    let desired = match (pdb.min_available, pdb.max_unavailable) {
        (Some(min), _) => min.resolve(expected),
        (None, Some(max)) => (expected - max.resolve(expected)).max(0),
        (None, None) => expected,
    };
    PdbStatus {
        disruptions_allowed: (healthy - desired).max(0),
        current_healthy: healthy,
        desired_healthy: desired,
        expected_pods: expected,
    }
}

/// Active pods by namespace and by namespace and label, so that a budget tests only the pods that
/// could match it: thousands of budgets over a hundred thousand pods would otherwise cost a
/// selector match per budget and pod.
struct CoverIndex {
    by_namespace: IdMap<Sym, Vec<PodId>>,
    by_label: IdMap<(Sym, Sym, Sym), Vec<PodId>>,
}

impl CoverIndex {
    fn new(snap: &Snapshot) -> Self {
        let mut index = CoverIndex {
            by_namespace: IdMap::default(),
            by_label: IdMap::default(),
        };
        if snap.pdbs.is_empty() {
            return index;
        }
        for p in 0..snap.pods.len() as PodId {
            if !snap.is_active(p) {
                continue;
            }
            let ns = snap.pods.namespace[p as usize];
            index.by_namespace.entry(ns).or_default().push(p);
            for &(k, v) in snap.pods.labels[p as usize].iter() {
                index.by_label.entry((ns, k, v)).or_default().push(p);
            }
        }
        index
    }

    /// A superset of the active pods of namespace `ns` that `sel` matches, ascending: those with
    /// the label of its first single-valued `In` requirement, else the whole namespace.
    fn candidates(&self, snap: &Snapshot, ns: &str, sel: &LabelSelector) -> &[PodId] {
        let Some(ns) = snap.symbols.get(ns) else {
            return &[];
        };
        let pinned = sel
            .requirements
            .iter()
            .find(|r| r.operator == SelectorOperator::In && r.values.len() == 1);
        let list = match pinned {
            Some(r) => {
                // A key or value never interned is on no pod.
                let (Some(k), Some(v)) = (snap.symbols.get(&r.key), snap.symbols.get(&r.values[0]))
                else {
                    return &[];
                };
                self.by_label.get(&(ns, k, v))
            }
            None => self.by_namespace.get(&ns),
        };
        list.map_or(&[], Vec::as_slice)
    }
}
