//! The cycle: what one scheduling cycle knows about the pod being placed, and the data a plugin
//! computes once per cycle (kube-scheduler's `CycleState`).

use std::any::Any;
use std::sync::Arc;

use crate::model::gpu::GpuDemand;
use crate::schedule::state::ClusterState;
use crate::snapshot::{PodId, Snapshot};

/// What one cycle knows about the pod being placed.
pub struct Cycle<'a> {
    pub snap: &'a Snapshot,
    pub state: &'a ClusterState<'a>,
    pub pod: PodId,
    /// Effective request row (resource ids as columns).
    pub request: &'a [i64],
    pub gpu: GpuDemand,
}

impl<'a> Cycle<'a> {
    /// The cycle of pod `pod` against `state`.
    pub fn new(state: &'a ClusterState<'a>, pod: PodId) -> Self {
        let snap = state.snap;
        Cycle {
            snap,
            state,
            pod,
            request: snap.pods.requests.row(pod as usize),
            gpu: snap.pods.gpu[pod as usize],
        }
    }

    pub fn p(&self) -> usize {
        self.pod as usize
    }
}

/// Data a plugin computed for this cycle.
/// Shared, so what a node-local plugin computed for a demand serves every cycle of that demand.
pub type CycleData = Option<Arc<dyn Any + Send + Sync>>;
