//! The packing heuristic: empty nodes one at a time, re-placing their pods with the scheduler
//! itself (every filter, GPU devices included) onto nodes that stay — cluster-autoscaler's
//! scale-down simulation, applied to as many nodes as the move budget and the disruption budgets
//! allow. Cheapest nodes to empty go first; a node whose pods do not all fit elsewhere is left as
//! it was.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use super::budgets::budgets;
use super::pins::{pin, Pin, PinOptions};
use crate::error::Error;
use crate::hash::IdMap;
use crate::intern::Sym;
use crate::metrics;
use crate::model::gpu::DeviceMask;
use crate::model::selector::{InternedSelector, LabelSelector};
use crate::model::spread::WhenUnsatisfiable;
use crate::schedule::framework::{Cycle, CycleData, FilterPlugin, Profile, Reason, Scheduler};
use crate::schedule::profile::profiles_from_json;
use crate::schedule::state::ClusterState;
use crate::schedule::{choose_devices, constraint_groups};
use crate::snapshot::{Assignment, NodeId, PodId, Snapshot};

/// Where the moved pods go: the default profile's filters (NodeName aside — a moved pod is a new
/// pod its controller makes), scored to fill nodes (MostAllocated) rather than to spread them.
const PACKING_PROFILE: &str = r#"{"profiles":[{"schedulerName":"default-scheduler",
  "plugins":{"filter":{"disabled":[{"name":"NodeName"}]},
             "score":{"disabled":[{"name":"NodeResourcesBalancedAllocation"},{"name":"PodTopologySpread"}]}},
  "pluginConfig":[{"name":"NodeResourcesFit","args":{"scoringStrategy":{"type":"MostAllocated",
    "resources":[{"name":"cpu","weight":1},{"name":"memory","weight":1},{"name":"nvidia.com/gpu","weight":1}]}}}]}]}"#;

/// Nodes the plan empties (or that are empty already) take no pods.
struct Closed(Arc<Vec<AtomicBool>>);

impl FilterPlugin for Closed {
    fn name(&self) -> &'static str {
        "KubeEngineDrain"
    }

    fn filter(&self, _: &Cycle, _: &CycleData, node: NodeId) -> Result<(), u32> {
        if self.0[node as usize].load(Ordering::Relaxed) {
            Err(0)
        } else {
            Ok(())
        }
    }

    fn reasons(&self, _: &Cycle, _: &CycleData, _: NodeId, _: u32, out: &mut Vec<Reason>) {
        out.push("node(s) are being emptied".into());
    }
}

/// One pod's move.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Move {
    pub pod: PodId,
    pub from: NodeId,
    pub to: NodeId,
    pub devices: DeviceMask,
}

/// What the heuristic found.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Pods whose node changes, by pod.
    pub moves: Vec<Move>,
    /// Nodes the plan empties (DaemonSet and static pods aside), in the order emptied.
    pub freed: Vec<NodeId>,
    pub assignment: Assignment,
    /// False when the deadline stopped it (with the nodes emptied so far).
    pub complete: bool,
}

#[derive(Clone, Debug, Default)]
pub struct DrainOptions {
    /// At most this many pods move (`None`: no limit).
    pub max_moves: Option<usize>,
    pub pins: PinOptions,
    pub seed: u64,
    /// Stop here, with the nodes emptied so far (`None`: run to the end).
    pub deadline: Option<Instant>,
}

/// Pods that stay with their node and do not keep it in use.
fn rides_along(why: Option<Pin>) -> bool {
    matches!(why, Some(Pin::DaemonSet | Pin::Mirror))
}

/// Empties as many nodes as it can; the plan is checked against the snapshot's rules (no kind
/// of violation may grow) before it is returned.
pub fn drain(snap: &Snapshot, opts: DrainOptions) -> Result<Plan, Error> {
    let mut profile: Profile = profiles_from_json(PACKING_PROFILE)?
        .pop()
        .expect("one profile");
    let n_nodes = snap.nodes.len();
    let closed = Arc::new(
        (0..n_nodes)
            .map(|_| AtomicBool::new(false))
            .collect::<Vec<_>>(),
    );
    profile.filters.push(Box::new(Closed(closed.clone())));

    let mut state = ClusterState::new(snap, &snap.current);
    let active = |p: PodId| snap.current.node[p as usize].is_some() && snap.is_active(p);
    let pins: Vec<Option<Pin>> = (0..snap.pods.len() as PodId)
        .map(|p| {
            if active(p) {
                pin(snap, p, &opts.pins)
            } else {
                None
            }
        })
        .collect();
    // Nodes that can be emptied hold only movable pods (and ones that ride along).
    let drainable: Vec<bool> = (0..n_nodes)
        .map(|n| {
            state.pods_on[n]
                .iter()
                .all(|&p| pins[p as usize].is_none() || rides_along(pins[p as usize]))
        })
        .collect();
    let movable_on = |state: &ClusterState, n: usize| -> Vec<PodId> {
        state.pods_on[n]
            .iter()
            .copied()
            .filter(|&p| pins[p as usize].is_none())
            .collect()
    };
    // Empty nodes stay empty: a pod moved there frees nothing. Excluded nodes take no pods.
    for n in 0..n_nodes {
        let empty = movable_on(&state, n).is_empty() && drainable[n];
        if empty || opts.pins.excluded(n as NodeId) {
            closed[n].store(true, Ordering::Relaxed);
        }
    }
    let total = |r: usize| {
        (0..n_nodes)
            .map(|n| snap.nodes.allocatable.get(n, r))
            .sum::<i64>()
            .max(1) as f64
    };
    let dims: Vec<(usize, f64)> = (0..snap.resources.len()).map(|r| (r, total(r))).collect();
    let gpus = snap
        .nodes
        .gpu_devices
        .iter()
        .map(|&d| f64::from(d) * 1000.0)
        .sum::<f64>()
        .max(1.0);
    let size = |p: PodId| -> f64 {
        let row = snap.pods.requests.row(p as usize);
        dims.iter().map(|&(r, t)| row[r] as f64 / t).sum::<f64>()
            + snap.pods.gpu[p as usize].total_milli() as f64 / gpus
    };
    let mut order: Vec<(usize, f64, usize)> = (0..n_nodes)
        .filter(|&n| drainable[n] && !movable_on(&state, n).is_empty())
        .map(|n| {
            let pods = movable_on(&state, n);
            (pods.len(), pods.iter().map(|&p| size(p)).sum(), n)
        })
        .collect();
    order.sort_by(|a, b| {
        (a.0, a.1)
            .partial_cmp(&(b.0, b.1))
            .expect("finite sizes")
            .then(a.2.cmp(&b.2))
    });

    let movable: Vec<PodId> = (0..snap.pods.len() as PodId)
        .filter(|&p| active(p) && pins[p as usize].is_none())
        .collect();
    let mut group = vec![0u32; snap.pods.len()];
    for (&p, g) in movable.iter().zip(constraint_groups(
        snap,
        &movable,
        std::slice::from_ref(&profile),
    )) {
        group[p as usize] = g;
    }
    let budgets = budgets(snap);
    let mut allowed: Vec<u32> = budgets.iter().map(|b| b.allowed).collect();
    let mut covered_by: Vec<Vec<usize>> = vec![Vec::new(); snap.pods.len()];
    for (i, b) in budgets.iter().enumerate() {
        for &p in &b.pods {
            covered_by[p as usize].push(i);
        }
    }
    let watchers = watchers(snap);
    // Every check below sees the pods bound now, some of them moved.
    let counter = metrics::InterPodCounter::new(snap, &snap.current);
    let mut only = vec![false; snap.pods.len()];
    let mut scheduler = Scheduler::new(&profile, opts.seed);
    scheduler.explain = false;
    let mut next_start = 0;
    let original = &snap.current;
    let mut moved = 0usize;
    let mut freed = Vec::new();
    let mut complete = true;
    for (_, _, n) in order {
        if opts.deadline.is_some_and(|d| Instant::now() >= d) {
            complete = false;
            break;
        }
        let mut pods = movable_on(&state, n);
        // Pods still on their own node would move now; the others moved already.
        let new_moves = pods
            .iter()
            .filter(|&&p| original.node[p as usize] == Some(n as NodeId))
            .count();
        if opts.max_moves.is_some_and(|m| moved + new_moves > m) {
            continue;
        }
        let mut spent = vec![0u32; budgets.len()];
        for &p in pods
            .iter()
            .filter(|&&p| original.node[p as usize] == Some(n as NodeId))
        {
            for &b in &covered_by[p as usize] {
                spent[b] += 1;
            }
        }
        if spent.iter().zip(&allowed).any(|(s, a)| s > a) {
            continue;
        }
        // The rules of pods that stay which these moves could break, and how often they are
        // broken now.
        let watching: Vec<PodId> = pods
            .iter()
            .flat_map(|&p| &watchers[p as usize])
            .copied()
            .collect();
        for &q in &watching {
            only[q as usize] = true;
        }
        let broken_before = if watching.is_empty() {
            0
        } else {
            counter.count(&state.assignment(), &only)
        };
        closed[n].store(true, Ordering::Relaxed);
        let was: Vec<(PodId, DeviceMask)> = pods
            .iter()
            .map(|&p| (p, state.devices[p as usize]))
            .collect();
        for &p in &pods {
            state.unbind(p);
        }
        // Largest first: what fits last is what is small.
        pods.sort_by(|&a, &b| {
            size(b)
                .partial_cmp(&size(a))
                .expect("finite sizes")
                .then(a.cmp(&b))
        });
        let mut placed = Vec::with_capacity(pods.len());
        let mut change = 0isize;
        for &p in &pods {
            let cx = Cycle::new(&state, p);
            let Ok(to) = scheduler.place(&cx, group[p as usize], &mut next_start) else {
                break;
            };
            let devices = choose_devices(&profile, &cx, to);
            state.bind(p, to, devices);
            placed.push(p);
            let home = original.node[p as usize];
            change += isize::from(home != Some(to)) - isize::from(home != Some(n as NodeId));
        }
        // Each pod placed passed the filters, but moving a pod can also break a rule of a pod
        // that stays (another pod's spread constraint counting it, say): such a node stays.
        let breaks_others = placed.len() == pods.len()
            && !watching.is_empty()
            && counter.count(&state.assignment(), &only) > broken_before;
        for &q in &watching {
            only[q as usize] = false;
        }
        if placed.len() < pods.len() || breaks_others {
            for &p in &placed {
                state.unbind(p);
            }
            for &(p, devices) in &was {
                state.bind(p, n as NodeId, devices);
            }
            closed[n].store(opts.pins.excluded(n as NodeId), Ordering::Relaxed);
            continue;
        }
        for (s, a) in spent.iter().zip(allowed.iter_mut()) {
            *a -= s;
        }
        freed.push(n as NodeId);
        moved = moved.saturating_add_signed(change);
    }
    let assignment = state.assignment();
    let moves = (0..snap.pods.len())
        .filter_map(|p| match (original.node[p], assignment.node[p]) {
            (Some(from), Some(to)) if from != to => Some(Move {
                pod: p as PodId,
                from,
                to,
                devices: assignment.gpu_devices[p],
            }),
            _ => None,
        })
        .collect();
    check(snap, &assignment)?;
    Ok(Plan {
        moves,
        freed,
        assignment,
        complete,
    })
}

/// For each pod, the pods that stay whose rules its move can break although the filters do not
/// see it when they place the moved pod: pods of another controller whose DoNotSchedule spread
/// constraint counts it (a pod of the same controller has the constraint itself, and its filter
/// counts both sides of the move), and pods whose required pod affinity it may satisfy. By label
/// selector alone (namespaces and matchLabelKeys ignored): a superset, which only costs checks.
/// A pod's labels and controller's uid.
type LabelsOf<'s> = (&'s [(Sym, Sym)], Option<&'s str>);

fn watchers(snap: &Snapshot) -> Vec<Vec<PodId>> {
    let pods = &snap.pods;
    let controller = |p: usize| pods.owner[p].as_ref().map(|o| o.uid.as_str());
    let mut spread: IdMap<(&LabelSelector, Option<&str>), Vec<PodId>> = IdMap::default();
    let mut affinity: IdMap<&LabelSelector, Vec<PodId>> = IdMap::default();
    for q in 0..pods.len() {
        if snap.current.node[q].is_none() || !snap.is_active(q as PodId) {
            continue;
        }
        for c in pods.spread[q].iter() {
            if let (WhenUnsatisfiable::DoNotSchedule, Some(sel)) =
                (c.when_unsatisfiable, &c.label_selector)
            {
                spread
                    .entry((sel, controller(q)))
                    .or_default()
                    .push(q as PodId);
            }
        }
        let terms = pods.affinity[q]
            .as_ref()
            .and_then(|a| a.pod_affinity.as_ref());
        for t in terms.into_iter().flat_map(|a| &a.required) {
            if let Some(sel) = &t.label_selector {
                affinity.entry(sel).or_default().push(q as PodId);
            }
        }
    }
    // Interned once per selector, and matched once per distinct label set: replicas share
    // theirs, and a large cluster has thousands of selectors.
    let spread: Vec<_> = spread
        .into_iter()
        .map(|((sel, of), qs)| (InternedSelector::new(sel, &snap.symbols), of, qs))
        .collect();
    let affinity: Vec<_> = affinity
        .into_iter()
        .map(|(sel, qs)| (InternedSelector::new(sel, &snap.symbols), qs))
        .collect();
    // Per (label set, controller): the pods watching.
    let mut matched: IdMap<LabelsOf, Vec<PodId>> = IdMap::default();
    (0..pods.len())
        .map(|p| {
            let labels = &pods.labels[p][..];
            let own = controller(p);
            matched
                .entry((labels, own))
                .or_insert_with(|| {
                    let by_spread = spread.iter().filter(|(sel, of, _)| {
                        (*of != own || own.is_none()) && sel.matches(labels)
                    });
                    let by_affinity = affinity.iter().filter(|(sel, _)| sel.matches(labels));
                    by_spread
                        .flat_map(|(_, _, qs)| qs)
                        .chain(by_affinity.flat_map(|(_, qs)| qs))
                        .copied()
                        .collect()
                })
                .clone()
        })
        .collect()
}

/// No kind of violation may be more frequent after the plan than before: every move passed the
/// filters, so this catches a bug, never an input.
fn check(snap: &Snapshot, after: &Assignment) -> Result<(), Error> {
    let count = |a: &Assignment| {
        let mut by_kind = std::collections::BTreeMap::new();
        for v in metrics::evaluate(snap, a).violations {
            *by_kind.entry(v.kind.as_str()).or_insert(0usize) += 1;
        }
        by_kind
    };
    let (before, after) = (count(&snap.current), count(after));
    for (kind, &n) in &after {
        let was = before.get(kind).copied().unwrap_or(0);
        if n > was {
            return Err(Error::Internal(format!(
                "internal error: the plan would add {} {kind} violation(s); not returned",
                n - was
            )));
        }
    }
    Ok(())
}
