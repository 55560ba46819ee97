//! The `balance` start: the hottest node gives its largest pod that helps to the coolest node
//! that may take it.

use std::cmp::Reverse;
use std::collections::BTreeSet;

use super::floats::Key;
use super::tally::Tally;
use super::{Limits, Objective, Start};
use crate::rebalance::Problem;
use crate::snapshot::{NodeId, Snapshot};

/// Nodes by hotness, coolest first (ties by node).
type ByHeat = BTreeSet<(Key, NodeId)>;

/// Lowers peak and spread of utilisation one move at a time (see the module above).
pub fn balance(
    snap: &Snapshot,
    problem: &Problem,
    objective: &Objective,
    limits: &Limits,
) -> Start {
    let mut t = Tally::new(snap, problem, objective, limits.max_moves);
    let mut value = t.value();
    if t.dims.is_empty() {
        return Start {
            moves: Vec::new(),
            value,
            complete: true,
        };
    }
    let nodes = t.nodes();
    // Per node: its movable pods, in the order they came.
    let mut on: Vec<Vec<usize>> = vec![Vec::new(); nodes];
    for (i, p) in t.pods.iter().enumerate() {
        on[p.node as usize].push(i);
    }
    // Per set of candidate nodes the movable classes share: its counted nodes (where pods may
    // go), by hotness; and the nodes with movable pods not yet set aside (where pods come from).
    let sets = &t.classes.sets;
    let mut used = vec![false; sets.len()];
    for p in &t.pods {
        used[t.classes.set_of_class[p.cls]] = true;
    }
    let mut groups: Vec<ByHeat> = vec![ByHeat::new(); sets.len()];
    let mut in_groups: Vec<Vec<usize>> = vec![Vec::new(); nodes];
    for (g, set) in sets.iter().enumerate().filter(|&(g, _)| used[g]) {
        for &n in set {
            let heat = t.hotness(n);
            if heat >= 0.0 {
                groups[g].insert((Key(heat), n));
                in_groups[n as usize].push(g);
            }
        }
    }
    let mut hot: ByHeat = (0..nodes as NodeId)
        .filter(|&n| !on[n as usize].is_empty())
        .map(|n| (Key(t.hotness(n)), n))
        .filter(|&(Key(heat), _)| heat >= 0.0)
        .collect();

    let mut complete = true;
    'nodes: while let Some((_, h)) = hot.pop_last() {
        let mut largest_first: Vec<(f64, usize)> =
            on[h as usize].iter().map(|&i| (t.size(i), i)).collect();
        // Stable: pods of equal size in the order they came, as Python's sorted().
        largest_first.sort_by_key(|&(size, _)| Reverse(Key(size)));
        for &(_, i) in &largest_first {
            if limits.expired() {
                complete = false;
                break 'nodes;
            }
            if !t.may_leave(i) {
                continue;
            }
            // The coolest node that takes the pod; if that does not help, a warmer one will not.
            let cool = &groups[t.classes.set_of_class[t.pods[i].cls]];
            let Some(to) = cool
                .iter()
                .map(|&(_, m)| m)
                .find(|&m| m != h && t.may_take(i, m))
            else {
                continue;
            };
            let Some(devices) = t.devices_for(i, to) else {
                continue;
            };
            let before = [(h, t.hotness(h)), (to, t.hotness(to))];
            let had = t.pods[i].devices;
            t.shift(i, to, devices);
            let now = t.value();
            if now < value - 1e-12 {
                value = now;
                let at = on[h as usize]
                    .iter()
                    .position(|&j| j == i)
                    .expect("the pod is on the node");
                on[h as usize].remove(at);
                on[to as usize].push(i);
                for (n, heat) in before {
                    let key = (Key(t.hotness(n)), n);
                    for &g in &in_groups[n as usize] {
                        groups[g].remove(&(Key(heat), n));
                        groups[g].insert(key);
                    }
                    if hot.remove(&(Key(heat), n)) {
                        hot.insert(key);
                    }
                }
                hot.insert((Key(t.hotness(to)), to));
                if !on[h as usize].is_empty() {
                    hot.insert((Key(t.hotness(h)), h));
                }
                continue 'nodes;
            }
            // Not taken: the nodes' utilisations come back exactly (integer loads), so their
            // places in the orders never changed.
            t.shift(i, h, had);
        }
        // None of its pods can go anywhere that helps: the node is set aside.
    }
    Start {
        moves: t.moves(),
        value,
        complete,
    }
}
