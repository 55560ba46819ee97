//! What the pods of each class ask for, and where they may go.

use super::BALANCED;
use crate::hash::IdMap;
use crate::rebalance::{Class, Problem};
use crate::resources::{ResourceId, PODS};
use crate::snapshot::{NodeId, Snapshot};

/// Nodes as a bit set.
struct NodeSet(Vec<u64>);

impl NodeSet {
    fn of(nodes: &[NodeId], n_nodes: usize) -> Self {
        let mut bits = vec![0u64; n_nodes.div_ceil(64)];
        for &n in nodes {
            bits[n as usize / 64] |= 1 << (n % 64);
        }
        NodeSet(bits)
    }

    fn contains(&self, n: NodeId) -> bool {
        self.0[n as usize / 64] >> (n % 64) & 1 == 1
    }
}

pub(super) struct Classes {
    /// The resources a pod must fit in: those some class requests, and the pod count. A
    /// request of 0 is checked too: nothing fits where pinned pods over-commit.
    pub resources: Vec<ResourceId>,
    /// Per class and resource of `resources`: its request (at least one pod).
    demand: Vec<i64>,
    /// Per class: its requests of the balanced resources.
    pub balanced: Vec<[i64; 2]>,
    /// Per class: GPU milli per device and devices.
    pub milli: Vec<i64>,
    pub count: Vec<u32>,
    /// Per class: its set of candidate nodes, as an index into `sets`.
    pub set_of_class: Vec<usize>,
    /// The distinct candidate sets, ascending.
    pub sets: Vec<Vec<NodeId>>,
    members: Vec<NodeSet>,
}

impl Classes {
    pub fn new(snap: &Snapshot, problem: &Problem) -> Self {
        let classes = &problem.classes;
        let row = |c: &Class| snap.pods.requests.row(c.pods[0] as usize);
        let resources: Vec<ResourceId> = (0..snap.resources.len())
            .filter(|&r| r == PODS || classes.iter().any(|c| row(c)[r] != 0))
            .collect();
        let mut out = Classes {
            demand: Vec::with_capacity(classes.len() * resources.len()),
            resources,
            balanced: Vec::with_capacity(classes.len()),
            milli: Vec::with_capacity(classes.len()),
            count: Vec::with_capacity(classes.len()),
            set_of_class: Vec::with_capacity(classes.len()),
            sets: Vec::new(),
            members: Vec::new(),
        };
        for c in classes {
            let row = row(c);
            out.demand.extend(out.resources.iter().map(|&r| {
                if r == PODS {
                    row[r].max(1)
                } else {
                    row[r]
                }
            }));
            out.balanced.push(BALANCED.map(|r| row[r]));
            let gpu = snap.pods.gpu[c.pods[0] as usize];
            out.milli.push(i64::from(gpu.milli));
            out.count.push(gpu.count);
        }
        let mut index: IdMap<&[NodeId], usize> = IdMap::default();
        for c in classes {
            let next = out.sets.len();
            let at = *index.entry(&c.candidates).or_insert(next);
            if at == next {
                out.sets.push(c.candidates.clone());
                out.members
                    .push(NodeSet::of(&c.candidates, snap.nodes.len()));
            }
            out.set_of_class.push(at);
        }
        out
    }

    /// Class `c`'s requests of `resources`.
    pub fn demand(&self, c: usize) -> &[i64] {
        let w = self.resources.len();
        &self.demand[c * w..(c + 1) * w]
    }

    /// `n` is a candidate node of class `c`.
    pub fn candidate(&self, c: usize, n: NodeId) -> bool {
        self.members[self.set_of_class[c]].contains(n)
    }
}
