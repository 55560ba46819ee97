//! From where pods are to where they should be: the ordered actions that take a cluster from its
//! current placement to a target one (cordons, evictions, bindings), in waves such that at every
//! moment every pod has a node with room, no disruption budget is overspent and the caller's caps
//! hold.
//!
//! A wave's evictions happen together; each evicted pod keeps its room on its node until it has
//! terminated, while its replacement is placed, so a destination only ever receives a pod into
//! room that was free before the wave began. Budgets spent in a wave are restored when the wave's
//! replacements are Ready, i.e. for the next wave. Moves that wait on each other (swaps, cycles)
//! are broken by a stop on a node with free room; what cannot be sequenced is kept, with why.

mod gate;
mod landing;
mod ledger;
mod waves;

use gate::Gate;
pub use landing::predict;
use ledger::Ledger;
pub use ledger::{Cap, Limits};
use waves::sequence;

use crate::error::{ArgumentError, Error};
use crate::model::gpu::DeviceMask;
use crate::rebalance::budgets::budgets;
use crate::rebalance::pins::{pin, Pin, PinOptions};
use crate::schedule::framework::Profile;
use crate::snapshot::{NodeId, PodId, Snapshot};

/// A pod's place in the target: `to`, with these GPU devices if it has a say (else best fit).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Target {
    pub pod: PodId,
    pub to: NodeId,
    pub devices: Option<DeviceMask>,
}

#[derive(Clone, Debug)]
pub struct PlanOptions {
    pub limits: Limits,
    /// Which pods may be evicted at all (the same rules as a rebalance).
    pub pins: PinOptions,
    /// Cordon the nodes the plan empties before its first wave, so that nothing else lands there.
    pub cordon: bool,
}

impl Default for PlanOptions {
    fn default() -> Self {
        PlanOptions {
            limits: Limits::default(),
            pins: PinOptions::default(),
            cordon: true,
        }
    }
}

/// One action of a wave: evict a bound pod so that its replacement lands on `to`, or bind a
/// pending pod to `to`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Step {
    pub pod: PodId,
    /// `None`: a pending pod, bound.
    pub from: Option<NodeId>,
    pub to: NodeId,
    pub devices: DeviceMask,
    /// A stop on the way: `to` is not the pod's target, but a node with room that breaks a cycle.
    pub detour: bool,
    /// The disruption budget the eviction spends, and how many more evictions it allows in this
    /// wave after it.
    pub budget: Option<(usize, u32)>,
}

/// Why a pod of the target is not moved by the plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Why {
    /// Succeeded or Failed: it holds nothing and will not run again.
    Terminal,
    /// It must stay where it is.
    Pinned(Pin),
    /// Its disruption budget allows no eviction now.
    NoBudget(usize),
    /// More than one disruption budget covers it: the Eviction API refuses such pods.
    ManyBudgets(Vec<usize>),
    /// A cap of the plan is used up.
    Cap(Cap),
    /// Its target never has room for it (the filters' reasons). `cycle`: it waits on a move that
    /// waits on it, and no node had room to break the cycle.
    NoRoom { reasons: String, cycle: bool },
}

impl Why {
    /// A short name for the kind of reason, for machines.
    pub fn kind(&self) -> &'static str {
        match self {
            Why::Terminal => "Terminal",
            Why::Pinned(_) => "Pinned",
            Why::NoBudget(_) => "NoBudget",
            Why::ManyBudgets(_) => "ManyBudgets",
            Why::Cap(_) => "Cap",
            Why::NoRoom { cycle: false, .. } => "NoRoom",
            Why::NoRoom { cycle: true, .. } => "Cycle",
        }
    }

    /// The reason in words.
    pub fn describe(&self, snap: &Snapshot) -> String {
        let pdb = |b: usize| {
            let m = &snap.pdbs[b].metadata;
            format!("{}/{}", m.namespace.as_deref().unwrap_or(""), m.name)
        };
        match self {
            Why::Terminal => "the pod has terminated".into(),
            Why::Pinned(pin) => format!("must stay: {}", pin.as_str()),
            Why::NoBudget(b) => format!("PodDisruptionBudget {} allows no disruption", pdb(*b)),
            Why::ManyBudgets(bs) => format!(
                "more than one PodDisruptionBudget covers it ({}); the Eviction API refuses such pods",
                bs.iter().map(|&b| pdb(b)).collect::<Vec<_>>().join(", ")
            ),
            Why::Cap(cap) => format!("{} reached", cap.as_str()),
            Why::NoRoom { reasons, cycle } => {
                let mut text = format!("its target never has room: {reasons}");
                if *cycle {
                    text.push_str(
                        " (it waits on a move that waits on it, and no detour broke the cycle)",
                    );
                }
                text
            }
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Kept {
    pub pod: PodId,
    pub to: NodeId,
    pub why: Why,
}

#[derive(Clone, Debug, Default)]
pub struct Plan {
    /// Nodes to cordon before the first wave: those the plan empties that are not cordoned yet.
    pub cordon: Vec<NodeId>,
    pub waves: Vec<Vec<Step>>,
    /// Pods of the target the plan does not move, with why.
    pub kept: Vec<Kept>,
    /// Nodes the plan empties (DaemonSet and static pods aside), ascending.
    pub emptied: Vec<NodeId>,
}

impl Plan {
    pub fn steps(&self) -> impl Iterator<Item = &Step> {
        self.waves.iter().flatten()
    }
}

/// A target pod still to go.
#[derive(Clone, Debug)]
struct Pending {
    pod: PodId,
    from: Option<NodeId>,
    to: NodeId,
    devices: Option<DeviceMask>,
    detoured: bool,
    /// When its target last turned it away (see `plan`'s clock), and why.
    refused: Option<(u64, String)>,
    /// Its target turned it away in the wave being built (a ledger's "later" is no refusal).
    blocked: bool,
}

/// The plan that takes the snapshot's current placement to one where each pod of `targets` is
/// on its target node, with `profile`'s filters deciding where a pod fits at each moment.
pub fn plan(
    snap: &Snapshot,
    targets: &[Target],
    profile: &Profile,
    opts: &PlanOptions,
) -> Result<Plan, Error> {
    let mut seen = vec![false; snap.pods.len()];
    for t in targets {
        if std::mem::replace(&mut seen[t.pod as usize], true) {
            let message = format!("pod {} has two targets", snap.pod_key(t.pod));
            return Err(ArgumentError::invalid("target", message).into());
        }
    }
    let budgets = budgets(snap);
    let mut covers: Vec<Vec<usize>> = vec![Vec::new(); snap.pods.len()];
    for (b, budget) in budgets.iter().enumerate() {
        for &p in &budget.pods {
            covers[p as usize].push(b);
        }
    }
    let mut kept = Vec::new();
    let mut pending = Vec::new();
    for t in targets {
        let (p, from) = (t.pod, snap.current.node[t.pod as usize]);
        let keep = |why| Kept {
            pod: p,
            to: t.to,
            why,
        };
        if !snap.is_active(p) {
            kept.push(keep(Why::Terminal));
            continue;
        }
        if from == Some(t.to) {
            continue;
        }
        if from.is_some() {
            if let Some(why) = pin(snap, p, &opts.pins) {
                kept.push(keep(Why::Pinned(why)));
                continue;
            }
            match covers[p as usize].as_slice() {
                [] => {}
                &[b] if budgets[b].allowed == 0 => {
                    kept.push(keep(Why::NoBudget(b)));
                    continue;
                }
                [_] => {}
                many => {
                    kept.push(keep(Why::ManyBudgets(many.to_vec())));
                    continue;
                }
            }
        }
        pending.push(Pending {
            pod: p,
            from,
            to: t.to,
            devices: t.devices,
            detoured: false,
            refused: None,
            blocked: false,
        });
    }
    // Evictions node by node, then bindings.
    pending.sort_by_key(|m| (m.from.unwrap_or(NodeId::MAX), m.pod));
    let budget_of: Vec<Option<u32>> = covers
        .iter()
        .map(|c| c.first().map(|&b| b as u32))
        .collect();
    let allowed: Vec<u32> = budgets.iter().map(|b| b.allowed).collect();

    // Cordoning a node the plan then fails to empty would leave it cordoned for nothing: plan
    // again without it (sequencing only gets easier with fewer cordons, so this settles fast).
    let mut closed = if opts.cordon {
        emptied_by_intent(snap, &pending)
    } else {
        vec![false; snap.nodes.len()]
    };
    loop {
        let ledger = Ledger::new(snap, opts.limits, budget_of.clone(), allowed.clone());
        let gate = Gate::new(profile, closed.clone());
        let (waves, stuck) = sequence(snap, &gate, ledger, pending.clone());
        let done = emptied_by(snap, &waves);
        let unfinished: Vec<usize> = (0..closed.len())
            .filter(|&n| closed[n] && !done[n])
            .collect();
        if !unfinished.is_empty() {
            for n in unfinished {
                closed[n] = false;
            }
            continue;
        }
        kept.extend(stuck);
        return Ok(Plan {
            cordon: (0..snap.nodes.len())
                .filter(|&n| closed[n] && !snap.nodes.unschedulable[n])
                .map(|n| n as NodeId)
                .collect(),
            waves,
            kept,
            emptied: (0..snap.nodes.len() as NodeId)
                .filter(|&n| done[n as usize])
                .collect(),
        });
    }
}

/// DaemonSet and static pods stay with their node and do not keep it in use.
fn rides_along(snap: &Snapshot, p: PodId) -> bool {
    snap.pods.mirror[p as usize] || snap.is_daemon(p)
}

/// Per node: the active pods bound to it that keep it in use.
fn in_use(snap: &Snapshot) -> Vec<i64> {
    let mut count = vec![0i64; snap.nodes.len()];
    for p in 0..snap.pods.len() as PodId {
        if let Some(n) = snap.current.node[p as usize] {
            if snap.is_active(p) && !rides_along(snap, p) {
                count[n as usize] += 1;
            }
        }
    }
    count
}

/// The nodes every pod in use of leaves, and none arrives at, if all of `pending` is done.
fn emptied_by_intent(snap: &Snapshot, pending: &[Pending]) -> Vec<bool> {
    let mut count = in_use(snap);
    let mut touched = vec![false; count.len()];
    for m in pending {
        if let Some(f) = m.from {
            count[f as usize] -= 1;
            touched[f as usize] = true;
        }
        count[m.to as usize] += 1;
    }
    (0..count.len())
        .map(|n| touched[n] && count[n] == 0)
        .collect()
}

/// The nodes in use before `waves` and not after them.
fn emptied_by(snap: &Snapshot, waves: &[Vec<Step>]) -> Vec<bool> {
    let before = in_use(snap);
    let mut after = before.clone();
    for s in waves.iter().flatten() {
        if let Some(f) = s.from {
            after[f as usize] -= 1;
        }
        after[s.to as usize] += 1;
    }
    (0..before.len())
        .map(|n| before[n] > 0 && after[n] == 0)
        .collect()
}
