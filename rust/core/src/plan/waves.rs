//! Sequencing: the target's moves into waves.

use super::gate::Gate;
use super::ledger::{Ledger, Verdict};
use super::{Kept, Pending, Step, Why};
use crate::model::gpu::{self, DeviceMask};
use crate::rebalance::problem::interacts;
use crate::schedule::state::ClusterState;
use crate::snapshot::{NodeId, PodId, Snapshot};

/// An evicted pod that still holds its room on its node (and its GPU devices there) until the end
/// of its wave.
type Hold = (PodId, NodeId, DeviceMask);

/// Builds waves until every move is made or none can be: each wave takes, in order, every move
/// the ledger allows and whose target has room with the wave's evicted pods still holding theirs,
/// then breaks the cycles of moves that wait on each other with detours; a wave that can do
/// neither ends the plan.
pub(super) fn sequence(
    snap: &Snapshot,
    gate: &Gate,
    mut ledger: Ledger,
    mut pending: Vec<Pending>,
) -> (Vec<Vec<Step>>, Vec<Kept>) {
    let mut state = ClusterState::new(snap, &snap.current);
    let interacting: Vec<bool> = (0..snap.pods.len() as PodId)
        .map(|p| interacts(snap, p))
        .collect();
    // A clock of changes: a move its target turned away is looked at again only once a pod has
    // left that node since (or, for pods whose rules look at other nodes, every wave).
    let mut clock = 0u64;
    let mut left_at = vec![0u64; snap.nodes.len()];
    let mut waves = Vec::new();
    let mut kept = Vec::new();
    while !pending.is_empty() {
        ledger.new_wave();
        let mut steps = Vec::new();
        let mut holds: Vec<Hold> = Vec::new();
        let mut next = Vec::with_capacity(pending.len());
        for mut m in pending {
            m.blocked = false;
            if let Some(from) = m.from {
                match ledger.check(snap, m.pod, from) {
                    Verdict::Now => {}
                    Verdict::Later => {
                        next.push(m);
                        continue;
                    }
                    Verdict::Never(cap) => {
                        kept.push(Kept {
                            pod: m.pod,
                            to: m.to,
                            why: Why::Cap(cap),
                        });
                        continue;
                    }
                }
            }
            let unchanged = m
                .refused
                .as_ref()
                .is_some_and(|&(at, _)| left_at[m.to as usize] <= at);
            if unchanged && !interacting[m.pod as usize] {
                m.blocked = true;
                next.push(m);
                continue;
            }
            clock += 1;
            match try_move(snap, gate, &mut state, &mut ledger, &m, m.to, false) {
                Ok((step, hold)) => {
                    if let Some(h) = hold {
                        left_at[h.1 as usize] = clock;
                        holds.push(h);
                    }
                    steps.push(step);
                }
                Err(reasons) => {
                    m.refused = Some((clock, reasons));
                    m.blocked = true;
                    next.push(m);
                }
            }
        }
        let mut leaving = vec![false; snap.nodes.len()];
        for st in &steps {
            if let Some(from) = st.from {
                leaving[from as usize] = true;
            }
        }
        let found = detours(snap, gate, &mut state, &mut ledger, &mut next, &leaving);
        if steps.is_empty() && found.is_empty() {
            let waits_on = |to: NodeId| next.iter().any(|o| o.from == Some(to));
            for m in &next {
                let reasons = m.refused.as_ref().map_or("", |(_, r)| r.as_str());
                kept.push(Kept {
                    pod: m.pod,
                    to: m.to,
                    why: Why::NoRoom {
                        reasons: reasons.to_string(),
                        cycle: waits_on(m.to),
                    },
                });
            }
            break;
        }
        for (step, hold) in found {
            holds.extend(hold);
            steps.push(step);
        }
        // The wave is over: its evicted pods have terminated and give their room back.
        clock += 1;
        for (p, from, devices) in holds {
            state.release(p, from, devices);
            left_at[from as usize] = clock;
        }
        waves.push(steps);
        pending = next;
    }
    (waves, kept)
}

/// Moves `m`'s pod to `to` if the gate lets it, its old self holding its room where it was.
fn try_move(
    snap: &Snapshot,
    gate: &Gate,
    state: &mut ClusterState,
    ledger: &mut Ledger,
    m: &Pending,
    to: NodeId,
    detour: bool,
) -> Result<(Step, Option<Hold>), String> {
    let p = m.pod;
    let old = state.devices[p as usize];
    if let Some(from) = m.from {
        state.unbind(p);
        state.hold(p, from, old);
    }
    if let Err(reasons) = gate.check(state, p, to) {
        if let Some(from) = m.from {
            state.release(p, from, old);
            state.bind(p, from, old);
        }
        return Err(reasons);
    }
    let demand = snap.pods.gpu[p as usize];
    let free = &state.gpu_free[to as usize];
    let devices = match m.devices {
        Some(mask) if !detour && devices_fit(free, mask, demand) => mask,
        // The filters checked that the devices fit.
        _ => gpu::best_fit(free, demand).unwrap_or(0),
    };
    state.bind(p, to, devices);
    let budget = m
        .from
        .and_then(|from| ledger.spend(snap, p, from))
        .map(|(b, left)| (b as usize, left));
    let step = Step {
        pod: p,
        from: m.from,
        to,
        devices,
        detour,
        budget,
    };
    Ok((step, m.from.map(|from| (p, from, old))))
}

/// Whether exactly `demand.count` devices are in `mask`, each with room for `demand.milli`.
fn devices_fit(free: &[u32], mask: DeviceMask, demand: gpu::GpuDemand) -> bool {
    mask.count_ones() == demand.count
        && gpu::mask_indices(mask).all(|i| free.get(i as usize).is_some_and(|&f| f >= demand.milli))
}

/// Breaks cycles: a blocked move whose target waits, through a chain of blocked moves, on its own
/// node (and no node of the chain has a pod leaving in this wave) stops on a node with room, so
/// that its node frees up; it goes on to its target in a later wave. A node no move targets is
/// preferred, as a stop elsewhere takes room a move may need. One detour per cycle (strongly
/// connected set of nodes) and wave, each move at most once.
fn detours(
    snap: &Snapshot,
    gate: &Gate,
    state: &mut ClusterState,
    ledger: &mut Ledger,
    pending: &mut [Pending],
    leaving: &[bool],
) -> Vec<(Step, Option<Hold>)> {
    let n_nodes = snap.nodes.len();
    let mut wanted = vec![false; n_nodes];
    let mut edges: Vec<(NodeId, NodeId)> = Vec::new();
    for m in pending.iter() {
        wanted[m.to as usize] = true;
        if let (true, Some(from)) = (m.blocked, m.from) {
            // A node a pod leaves in this wave has room for its waiters in the next.
            if !leaving[from as usize] && !leaving[m.to as usize] {
                edges.push((from, m.to));
            }
        }
    }
    if edges.is_empty() {
        return Vec::new();
    }
    let component = strongly_connected(n_nodes, &mut edges);
    let mut broken = crate::hash::IdMap::<u32, ()>::default();
    let mut out = Vec::new();
    for m in pending.iter_mut() {
        let Some(from) = m.from else { continue };
        let c = component[from as usize];
        if !m.blocked || m.detoured || c == u32::MAX || component[m.to as usize] != c {
            continue;
        }
        if broken.contains_key(&c) || ledger.check(snap, m.pod, from) != Verdict::Now {
            continue;
        }
        let old = state.devices[m.pod as usize];
        state.unbind(m.pod);
        state.hold(m.pod, from, old);
        let order = &state.node_order;
        let spare = |n: &NodeId| n != &from && !wanted[*n as usize];
        let other = |n: &NodeId| n != &from && n != &m.to && wanted[*n as usize];
        let stop = gate
            .first_fit(state, m.pod, order.iter().copied().filter(spare))
            .or_else(|| gate.first_fit(state, m.pod, order.iter().copied().filter(other)));
        state.release(m.pod, from, old);
        state.bind(m.pod, from, old);
        let Some(stop) = stop else { continue };
        let found = try_move(snap, gate, state, ledger, m, stop, true)
            .expect("the stop was checked in the same state");
        broken.insert(c, ());
        m.from = Some(stop);
        m.detoured = true;
        m.blocked = false;
        m.refused = None;
        out.push(found);
    }
    out
}

/// Per node, the strongly connected component of `edges` it is in, if that component has a cycle
/// (`u32::MAX` otherwise). Tarjan's algorithm without recursion; sorts `edges`.
fn strongly_connected(n: usize, edges: &mut [(NodeId, NodeId)]) -> Vec<u32> {
    edges.sort_unstable();
    let mut first = vec![0usize; n + 1];
    for &(a, _) in edges.iter() {
        first[a as usize + 1] += 1;
    }
    for i in 0..n {
        first[i + 1] += first[i];
    }
    const NONE: u32 = u32::MAX;
    let mut index = vec![NONE; n];
    let mut low = vec![0u32; n];
    let mut on_stack = vec![false; n];
    let mut component = vec![NONE; n];
    let mut stack: Vec<u32> = Vec::new();
    let mut next_index = 0u32;
    let mut components = 0u32;
    // Depth-first frames: (node, next edge to follow).
    let mut frames: Vec<(u32, usize)> = Vec::new();
    for root in edges.iter().map(|&(a, _)| a) {
        if index[root as usize] != NONE {
            continue;
        }
        frames.push((root, first[root as usize]));
        index[root as usize] = next_index;
        low[root as usize] = next_index;
        next_index += 1;
        stack.push(root);
        on_stack[root as usize] = true;
        while let Some(&mut (v, ref mut e)) = frames.last_mut() {
            let vi = v as usize;
            if *e < first[vi + 1] {
                let w = edges[*e].1;
                *e += 1;
                let wi = w as usize;
                if index[wi] == NONE {
                    index[wi] = next_index;
                    low[wi] = next_index;
                    next_index += 1;
                    stack.push(w);
                    on_stack[wi] = true;
                    frames.push((w, first[wi]));
                } else if on_stack[wi] {
                    low[vi] = low[vi].min(index[wi]);
                }
                continue;
            }
            frames.pop();
            if let Some(&(parent, _)) = frames.last() {
                low[parent as usize] = low[parent as usize].min(low[vi]);
            }
            if low[vi] == index[vi] {
                let mut members = Vec::new();
                loop {
                    let w = stack.pop().expect("v is on the stack");
                    on_stack[w as usize] = false;
                    members.push(w);
                    if w == v {
                        break;
                    }
                }
                // A single node is a cycle only with an edge to itself, which moves never have.
                if members.len() > 1 {
                    for w in members {
                        component[w as usize] = components;
                    }
                    components += 1;
                }
            }
        }
    }
    component
}

#[cfg(test)]
mod tests {
    use super::strongly_connected;

    #[test]
    fn components_are_the_cycles() {
        // 0 -> 1 -> 2 -> 0 is a cycle, 3 -> 4 is not, 5 <-> 6 is, 2 -> 5 joins nothing.
        let mut edges = vec![(0, 1), (1, 2), (2, 0), (3, 4), (5, 6), (6, 5), (2, 5)];
        let c = strongly_connected(8, &mut edges);
        assert!(c[0] != u32::MAX && c[0] == c[1] && c[1] == c[2]);
        assert!(c[5] != u32::MAX && c[5] == c[6] && c[5] != c[0]);
        assert_eq!([c[3], c[4], c[7]], [u32::MAX; 3]);
    }
}
