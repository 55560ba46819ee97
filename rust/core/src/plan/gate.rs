//! Whether a node takes a pod at a given moment of a plan: the profile's filters, as the
//! scheduler runs them, plus the nodes the plan empties.

use std::cell::RefCell;

use crate::hash::IdMap;
use crate::schedule::framework::{Cycle, CycleData, FilterPlugin, PreFilter, Profile, Reason};
use crate::schedule::state::ClusterState;
use crate::snapshot::{NodeId, PodId, Snapshot};

pub(super) struct Gate<'p> {
    /// The profile's filters but NodeName: a moved pod's replacement is a new pod, made by its
    /// controller without `spec.nodeName`.
    filters: Vec<&'p dyn FilterPlugin>,
    /// Nodes the plan cordons before its first wave.
    pub(super) closed: Vec<bool>,
    /// Per constraint class (see `Snapshot::constraint_classes`), the nodes its static filters
    /// admit (the plan's cordons aside), worked out when a search first needs them.
    admitted: RefCell<IdMap<u32, Vec<bool>>>,
}

impl<'p> Gate<'p> {
    pub(super) fn new(profile: &'p Profile, closed: Vec<bool>) -> Self {
        Gate {
            filters: profile
                .filters
                .iter()
                .map(|f| f.as_ref())
                .filter(|f| f.name() != "NodeName")
                .collect(),
            closed,
            admitted: RefCell::default(),
        }
    }

    /// `Ok` when `node` takes pod `p` in `state`, else the reasons, as kube-scheduler words
    /// them.
    pub(super) fn check(&self, state: &ClusterState, p: PodId, node: NodeId) -> Result<(), String> {
        if self.closed[node as usize] {
            return Err("node(s) are being emptied by this plan".into());
        }
        let cx = Cycle::new(state, p);
        let data = self.pre_filter(&cx)?;
        for (f, data) in self.filters.iter().zip(&data) {
            let Some(data) = data else { continue };
            if let Err(code) = f.filter(&cx, data, node) {
                let mut reasons: Vec<Reason> = Vec::new();
                f.reasons(&cx, data, node, code, &mut reasons);
                return Err(reasons.join(", "));
            }
        }
        Ok(())
    }

    /// The first of `nodes` (in order) that takes pod `p` in `state`. Only whether a node fits
    /// matters here, not which filter says no: the static filters' verdicts are kept per
    /// constraint class, and of the others the cheap node-local ones (room) go first, as most
    /// nodes a search passes have none.
    pub(super) fn first_fit(
        &self,
        state: &ClusterState,
        p: PodId,
        nodes: impl IntoIterator<Item = NodeId>,
    ) -> Option<NodeId> {
        let cx = Cycle::new(state, p);
        let data = self.pre_filter(&cx).ok()?;
        let class = state.snap.constraint_classes().of[p as usize];
        let mut admitted = self.admitted.borrow_mut();
        let admitted = admitted
            .entry(class)
            .or_insert_with(|| self.admitted_nodes(state.snap, &cx, &data));
        let mut dynamic: Vec<(&dyn FilterPlugin, &CycleData)> = self
            .filters
            .iter()
            .zip(&data)
            .filter(|(f, _)| !f.is_static())
            .filter_map(|(f, d)| d.as_ref().map(|d| (*f, d)))
            .collect();
        dynamic.sort_by_key(|(f, _)| !f.node_local());
        nodes.into_iter().find(|&n| {
            admitted[n as usize]
                && !self.closed[n as usize]
                && dynamic.iter().all(|(f, d)| f.filter(&cx, d, n).is_ok())
        })
    }

    /// Per node, whether every static filter admits the cycle's pod.
    fn admitted_nodes(&self, snap: &Snapshot, cx: &Cycle, data: &[Option<CycleData>]) -> Vec<bool> {
        let statics: Vec<_> = self
            .filters
            .iter()
            .zip(data)
            .filter(|(f, _)| f.is_static())
            .filter_map(|(f, d)| d.as_ref().map(|d| (*f, d)))
            .collect();
        (0..snap.nodes.len() as NodeId)
            .map(|n| statics.iter().all(|(f, d)| f.filter(cx, d, n).is_ok()))
            .collect()
    }

    /// Each filter's cycle data (`None`: it skips the pod), or the message of one that rejects it
    /// everywhere.
    fn pre_filter(&self, cx: &Cycle) -> Result<Vec<Option<CycleData>>, String> {
        self.filters
            .iter()
            .map(|f| match f.pre_filter(cx) {
                PreFilter::Run(data) => Ok(Some(data)),
                PreFilter::Skip => Ok(None),
                PreFilter::Reject(message) => Err(message),
            })
            .collect()
    }
}
