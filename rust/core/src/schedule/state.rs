//! The cluster as a scheduling cycle sees it: what every node has given out so far, updated as
//! pods are bound (kube-scheduler's NodeInfo snapshot plus its assume cache, in columns).

use std::sync::{Arc, OnceLock};

use super::pod_index::PodIndex;
use crate::model::gpu::{self, DeviceMask};
use crate::resources::{ResourceMatrix, CPU, EPHEMERAL_STORAGE, MEMORY, PODS, STANDARD};
use crate::snapshot::{Assignment, NodeId, PodId, Snapshot};

/// Marks an entry of [`ClusterState::changes`] as a pod taken off its node.
pub const UNBOUND: u32 = 1 << 31;

pub struct ClusterState<'s> {
    pub snap: &'s Snapshot,
    /// Unique per state made, so a scheduler can tell that results it kept belong to another.
    pub id: u64,
    /// Node and GPU devices of every pod (the snapshot's pods; `None`: not placed).
    pub node: Vec<Option<NodeId>>,
    pub devices: Vec<DeviceMask>,
    /// Per node: effective requests of the active pods on it.
    pub requested: ResourceMatrix,
    /// Per node: what the resource plugins read for nearly every pod, in one cache line.
    pub room: Vec<Room>,
    /// Per node, per device: free GPU milli (may go negative only through an over-committed input).
    pub gpu_free: Vec<Vec<u32>>,
    /// Per node: the active pods on it, in binding order.
    pub pods_on: Vec<Vec<PodId>>,
    /// The positions (in `node_order`) of the nodes a pod was bound to or, marked with
    /// [`UNBOUND`], taken off, in order: a result computed from a node's state stays valid until
    /// the node appears in the log after it, so a scheduler brings what it kept up to date by
    /// reading the log from where it left off.
    pub changes: Vec<u32>,
    /// The order in which the scheduler walks nodes: zone by zone, round robin, as kube-scheduler's
    /// node tree lists them (zones in order of first appearance, nodes in snapshot order within a
    /// zone), so a search that stops early still spreads over zones.
    pub node_order: Vec<NodeId>,
    /// Per node: its position in `node_order`.
    pub position: Vec<u32>,
    /// What the inter-pod plugins look pods up by; built from the snapshot on first use.
    pod_index: OnceLock<Arc<PodIndex>>,
}

/// A node's room in the standard resources, kept as pods are bound: the resource plugins read
/// it for every node they look at, and one cache line with fixed indices is cheaper to read than
/// rows of the resource matrices.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(align(64))]
pub struct Room {
    /// Allocatable cpu and memory.
    pub allocatable: [i64; 2],
    /// Requested cpu and memory.
    pub requested: [i64; 2],
    /// Requested cpu and memory with the scoring defaults (NodeResourcesFit scores with these).
    pub nonzero: [i64; 2],
    /// Allocatable minus requested pods and ephemeral-storage (saturating).
    free_pods_storage: [i64; 2],
}

impl Room {
    /// Allocatable minus requested of the standard resources (cpu, memory, pods,
    /// ephemeral-storage): what NodeResourcesFit checks nearly every pod against.
    #[inline]
    pub fn free(&self) -> [i64; STANDARD.len()] {
        let [a0, a1] = self.allocatable;
        let [u0, u1] = self.requested;
        let [pods, storage] = self.free_pods_storage;
        // Both amounts are never negative, so the differences cannot overflow.
        [a0.wrapping_sub(u0), a1.wrapping_sub(u1), pods, storage]
    }
}

impl<'s> ClusterState<'s> {
    /// The state with the pods of `a` placed (terminal pods hold nothing).
    pub fn new(snap: &'s Snapshot, a: &Assignment) -> Self {
        let n = snap.nodes.len();
        static STATES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let mut st = ClusterState {
            snap,
            id: STATES.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            node: vec![None; snap.pods.len()],
            devices: vec![0; snap.pods.len()],
            requested: ResourceMatrix::zeros(snap.resources.len(), n),
            room: (0..n)
                .map(|node| {
                    let have = snap.nodes.allocatable.row(node);
                    Room {
                        allocatable: [have[CPU], have[MEMORY]],
                        free_pods_storage: [have[PODS], have[EPHEMERAL_STORAGE]],
                        ..Room::default()
                    }
                })
                .collect(),
            gpu_free: snap
                .nodes
                .gpu_devices
                .iter()
                .map(|&d| vec![gpu::DEVICE_MILLI; d as usize])
                .collect(),
            pods_on: vec![Vec::new(); n],
            changes: Vec::new(),
            pod_index: OnceLock::new(),
            node_order: Vec::new(),
            position: vec![0; n],
        };
        st.node_order = node_tree_order(snap);
        for (pos, &node) in st.node_order.iter().enumerate() {
            st.position[node as usize] = pos as u32;
        }
        for p in 0..snap.pods.len() {
            if let Some(node) = a.node[p] {
                if snap.is_active(p as PodId) {
                    st.bind(p as PodId, node, a.gpu_devices[p]);
                } else {
                    st.node[p] = Some(node);
                }
            }
        }
        st
    }

    /// Records `p` on `n` holding `devices` (the Reserve step).
    pub fn bind(&mut self, p: PodId, n: NodeId, devices: DeviceMask) {
        let (pi, ni) = (p as usize, n as usize);
        self.count(pi, ni, 1);
        gpu::take(&mut self.gpu_free[ni], devices, self.snap.pods.gpu[pi]);
        self.node[pi] = Some(n);
        self.devices[pi] = devices;
        self.pods_on[ni].push(p);
        self.changes.push(self.position[ni]);
    }

    /// Takes bound pod `p` off its node (a pod's eviction), the inverse of [`ClusterState::bind`].
    pub fn unbind(&mut self, p: PodId) {
        let pi = p as usize;
        let n = self.node[pi].take().expect("unbind takes a bound pod");
        let ni = n as usize;
        self.count(pi, ni, -1);
        gpu::give(
            &mut self.gpu_free[ni],
            self.devices[pi],
            self.snap.pods.gpu[pi],
        );
        self.devices[pi] = 0;
        self.pods_on[ni].retain(|&q| q != p);
        self.changes.push(self.position[ni] | UNBOUND);
    }

    /// Keeps pod `p`'s requests and `devices` counted on node `n` although `p` is recorded
    /// elsewhere (or nowhere): an evicted pod holds its room on its node until it has
    /// terminated, while its replacement is already being placed.
    pub fn hold(&mut self, p: PodId, n: NodeId, devices: DeviceMask) {
        let (pi, ni) = (p as usize, n as usize);
        self.count(pi, ni, 1);
        gpu::take(&mut self.gpu_free[ni], devices, self.snap.pods.gpu[pi]);
        self.changes.push(self.position[ni]);
    }

    /// Gives back what [`ClusterState::hold`] kept on `n` (the evicted pod has terminated).
    pub fn release(&mut self, p: PodId, n: NodeId, devices: DeviceMask) {
        let (pi, ni) = (p as usize, n as usize);
        self.count(pi, ni, -1);
        gpu::give(&mut self.gpu_free[ni], devices, self.snap.pods.gpu[pi]);
        self.changes.push(self.position[ni] | UNBOUND);
    }

    /// Adds (`sign` 1) or takes away (-1) pod `pi`'s requests in node `ni`'s totals.
    fn count(&mut self, pi: usize, ni: usize, sign: i64) {
        let s = self.snap;
        for (acc, &r) in self
            .requested
            .row_mut(ni)
            .iter_mut()
            .zip(s.pods.requests.row(pi))
        {
            *acc = acc.saturating_add(sign * r);
        }
        let nz = s.pods.nonzero[pi];
        let (have, used) = (s.nodes.allocatable.row(ni), self.requested.row(ni));
        let room = &mut self.room[ni];
        room.nonzero[0] = room.nonzero[0].saturating_add(sign * nz[0]);
        room.nonzero[1] = room.nonzero[1].saturating_add(sign * nz[1]);
        room.requested = [used[CPU], used[MEMORY]];
        room.free_pods_storage = [PODS, EPHEMERAL_STORAGE].map(|r| have[r].saturating_sub(used[r]));
    }

    /// Free amount of resource `r` on node `n`.
    pub fn free(&self, n: NodeId, r: usize) -> i64 {
        self.snap.nodes.allocatable.get(n as usize, r) - self.requested.get(n as usize, r)
    }

    /// The pod index of this state's snapshot (see [`PodIndex`]).
    pub(crate) fn pod_index(&self) -> Arc<PodIndex> {
        self.pod_index
            .get_or_init(|| Arc::new(PodIndex::build(self.snap)))
            .clone()
    }

    /// The placement as it stands.
    pub fn assignment(&self) -> Assignment {
        Assignment {
            node: self.node.clone(),
            gpu_devices: self.devices.clone(),
        }
    }

    /// [`ClusterState::assignment`], without copying.
    pub fn into_assignment(self) -> Assignment {
        Assignment {
            node: self.node,
            gpu_devices: self.devices,
        }
    }
}

/// kube-scheduler's `nodeTree.list()`: nodes grouped by zone (region and zone labels, the beta
/// labels as fallback; nodes without either share one zone), zones in order of their first node,
/// then one node from each zone in turn.
pub fn node_tree_order(snap: &Snapshot) -> Vec<NodeId> {
    let label = |n: NodeId, keys: [&str; 2]| -> String {
        let labels = snap.node_labels(n);
        keys.iter()
            .find_map(|k| labels.value(k))
            .unwrap_or("")
            .to_string()
    };
    let mut zones: Vec<(String, Vec<NodeId>)> = Vec::new();
    for n in 0..snap.nodes.len() as NodeId {
        let zone = label(
            n,
            [
                "topology.kubernetes.io/zone",
                "failure-domain.beta.kubernetes.io/zone",
            ],
        );
        let region = label(
            n,
            [
                "topology.kubernetes.io/region",
                "failure-domain.beta.kubernetes.io/region",
            ],
        );
        let key = if zone.is_empty() && region.is_empty() {
            String::new()
        } else {
            format!("{region}:\0:{zone}")
        };
        match zones.iter_mut().find(|(k, _)| *k == key) {
            Some((_, nodes)) => nodes.push(n),
            None => zones.push((key, vec![n])),
        }
    }
    let mut order = Vec::with_capacity(snap.nodes.len());
    for i in 0.. {
        let before = order.len();
        order.extend(zones.iter().filter_map(|(_, nodes)| nodes.get(i)));
        if order.len() == before {
            break;
        }
    }
    order
}
