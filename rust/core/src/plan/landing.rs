//! Where evicted pods will land: their controllers make new pods of the same template, and the
//! scheduler those name places them. This simulates that scheduler (a profile, kube-scheduler's
//! default one unless the caller has another) on each replacement, at its wave's state: the plan's
//! cordons in place, the wave's evicted pods still holding their room, the earlier replacements
//! where they were predicted to land.

use super::{Plan, Step};
use crate::model::gpu::DeviceMask;
use crate::schedule::framework::{Cycle, CycleData, FilterPlugin, Profile, Reason, Scheduler};
use crate::schedule::state::ClusterState;
use crate::schedule::{choose_devices, constraint_groups};
use crate::snapshot::{NodeId, PodId, Snapshot};

/// The nodes a plan cordons take no replacement.
struct Cordoned(Vec<bool>);

impl FilterPlugin for Cordoned {
    fn name(&self) -> &'static str {
        "KubeEngineCordon"
    }

    fn is_static(&self) -> bool {
        true
    }

    fn filter(&self, _: &Cycle, _: &CycleData, node: NodeId) -> Result<(), u32> {
        if self.0[node as usize] {
            Err(0)
        } else {
            Ok(())
        }
    }

    fn reasons(&self, _: &Cycle, _: &CycleData, _: NodeId, _: u32, out: &mut Vec<Reason>) {
        out.push("node(s) were unschedulable".into());
    }
}

/// Per wave and step, the node the step's pod is predicted to land on: for an eviction, where the
/// scheduler places its replacement (`None`: nowhere, it would stay Pending); for a binding, and
/// for a pod whose `schedulerName` is `binding` (its replacement is left to the applier, which
/// binds it to the target), its target. `profile` is used as it is but for NodeName (a
/// replacement has no `spec.nodeName`).
pub fn predict(
    snap: &Snapshot,
    plan: &Plan,
    mut profile: Profile,
    binding: Option<&str>,
    seed: u64,
) -> Vec<Vec<Option<NodeId>>> {
    let binding = binding.and_then(|name| snap.symbols.get(name));
    let mut cordoned = vec![false; snap.nodes.len()];
    for &n in &plan.cordon {
        cordoned[n as usize] = true;
    }
    profile.filters.retain(|f| f.name() != "NodeName");
    profile.filters.push(Box::new(Cordoned(cordoned)));
    let moved: Vec<PodId> = plan.steps().map(|s| s.pod).collect();
    let groups = constraint_groups(snap, &moved, std::slice::from_ref(&profile));
    let mut group_of = crate::hash::IdMap::default();
    for (&p, g) in moved.iter().zip(groups) {
        group_of.insert(p, g);
    }
    let mut state = ClusterState::new(snap, &snap.current);
    let mut scheduler = Scheduler::new(&profile, seed);
    scheduler.explain = false;
    let mut next_start = 0;
    let mut out = Vec::with_capacity(plan.waves.len());
    for wave in &plan.waves {
        let mut holds: Vec<(PodId, NodeId, DeviceMask)> = Vec::new();
        let mut landed = Vec::with_capacity(wave.len());
        for &Step {
            pod: p,
            from,
            to,
            devices,
            ..
        } in wave
        {
            let Some(_) = from else {
                state.bind(p, to, devices);
                landed.push(Some(to));
                continue;
            };
            // A detour's second leg moves the replacement from wherever it was predicted to be.
            let Some(at) = state.node[p as usize] else {
                landed.push(None);
                continue;
            };
            let old = state.devices[p as usize];
            state.unbind(p);
            state.hold(p, at, old);
            holds.push((p, at, old));
            if binding.is_some_and(|b| snap.pods.scheduler_name[p as usize] == b) {
                state.bind(p, to, devices);
                landed.push(Some(to));
                continue;
            }
            let placed = {
                let cx = Cycle::new(&state, p);
                scheduler
                    .place(&cx, group_of[&p], &mut next_start)
                    .ok()
                    .map(|n| (n, choose_devices(&profile, &cx, n)))
            };
            match placed {
                Some((n, d)) => {
                    state.bind(p, n, d);
                    landed.push(Some(n));
                }
                None => landed.push(None),
            }
        }
        for (p, at, old) in holds {
            state.release(p, at, old);
        }
        out.push(landed);
    }
    out
}
