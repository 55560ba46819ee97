//! Online replay: pods arrive one at a time in a given order and each is placed as it arrives, on
//! the cluster as the earlier ones left it, and never moved or deleted — how a scheduler meets a
//! stream of pods. The result is the allocation curve: GPU allocated against GPU arrived.
//!
//! [`fgd_arrivals`] and [`fgd_replay`] are the protocol of the FGD paper (Weng et al., USENIX
//! ATC '23), as its simulator (`hkust-adsl/kubernetes-scheduler-simulator`) runs it:
//! 1. the pod list is shuffled;
//! 2. if its GPU request is below `load` × the cluster's GPUs (1.3 in the paper), pods drawn
//!    uniformly *with replacement* from the list are appended until the next draw would pass the
//!    target (`TunePodsByNodeTotalResource`; like the simulator, "pass" compares the draw's
//!    per-device milli, not its total, so a multi-GPU draw may overshoot); a list above the
//!    target instead loses pods drawn at random until it is met;
//! 3. the pods are placed in that order with one policy: kube-scheduler's default filters, the
//!    policy as the only score plugin, every feasible node scored.
//!
//! Ties: the simulator runs a kube-scheduler fork whose selectHost gives equal totals to the node
//! with the smallest name, and it names nodes with a random prefix (a permutation drawn from the
//! seed). So among equally scored nodes the protocol takes the first in a random node order fixed
//! for the whole run ([`TieBreak::Rank`] with [`node_order`]) — which packs, where kube-scheduler's
//! own uniform draw per cycle would spread pods. [`replay`] takes either.
//!
//! Determinism: everything random comes from the seed — the shuffle and the draws (one generator),
//! the node order (another), a uniform tie-break (the scheduler's generator), and a policy's own
//! draws (Random's, from its `seed` arg). The same snapshot, arrivals, policy, tie-break and seed
//! give the same replay.

use rayon::prelude::*;
use serde_json::json;

use crate::error::{ArgumentError, ConfigError, Error};
use crate::model::gpu::DeviceMask;
use crate::schedule::framework::{Cycle, Profile, Rng, Scheduler, TieBreak};
use crate::schedule::profile::{
    build_profile, PluginConfig, PluginRef, PluginSet, Plugins, ProfileConfig,
};
use crate::schedule::state::ClusterState;
use crate::schedule::{choose_devices, constraint_groups};
use crate::snapshot::{NodeId, PodId, Snapshot};

/// What happened to each arrival, in arrival order, and the running totals after it.
#[derive(Clone, Debug, PartialEq)]
pub struct Replay {
    /// GPU devices in the cluster.
    pub gpus: u64,
    /// Per arrival: the node it went to (`None`: no node could take it) and the devices it holds.
    pub node: Vec<Option<NodeId>>,
    pub devices: Vec<DeviceMask>,
    /// Per arrival: GPU milli it asks for.
    pub gpu_milli: Vec<u64>,
    /// After each arrival: GPU milli arrived so far, and GPU milli allocated in the cluster
    /// (pods bound before the replay included).
    pub arrived_milli: Vec<u64>,
    pub allocated_milli: Vec<u64>,
}

impl Replay {
    pub fn failed(&self) -> usize {
        self.node.iter().filter(|n| n.is_none()).count()
    }

    /// GPU allocation (% of the cluster's GPUs) at each arrived load 0, 1, … `max_pct` % — the
    /// FGD authors' analysis (`merge_alloc_discrete`): every arrival is an event at its arrived
    /// load rounded to a whole percent (half to even); a point is the mean allocation of its
    /// events (each rounded to 0.01 %), or of the events within ±1 % when it has none; `None`
    /// when those are missing too. Rounded to 0.01 %.
    pub fn allocation_curve(&self, max_pct: u32) -> Vec<Option<f64>> {
        let per_pct = self.gpus as f64 * 10.0;
        let events: Vec<(f64, f64)> = self
            .arrived_milli
            .iter()
            .zip(&self.allocated_milli)
            .map(|(&a, &u)| {
                (
                    (a as f64 / per_pct).round_ties_even(),
                    round2(u as f64 / per_pct),
                )
            })
            .collect();
        let mean = |lo: f64, hi: f64| {
            let (sum, n) = events
                .iter()
                .filter(|(a, _)| (lo..=hi).contains(a))
                .fold((0.0, 0usize), |(s, n), (_, u)| (s + u, n + 1));
            (n > 0).then(|| round2(sum / n as f64))
        };
        (0..=max_pct)
            .map(|x| {
                let x = f64::from(x);
                mean(x, x).or_else(|| mean(x - 1.0, x + 1.0))
            })
            .collect()
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round_ties_even() / 100.0
}

/// A uniformly random order of `n` nodes drawn from `seed`: `rank[node]`, 0 first.
pub fn node_order(n: usize, seed: u64) -> Vec<u32> {
    let mut rng = Rng::new(seed ^ 0x6E6F_6465_6F72_6472);
    let mut rank: Vec<u32> = (0..n as u32).collect();
    for i in (1..n).rev() {
        rank.swap(i, rng.below(i as u64 + 1) as usize);
    }
    rank
}

/// Places `arrivals` (pods of `snap`, in order, repeats allowed: a repeat is another pod like it)
/// one at a time with `profile`, on the cluster as `snap` has it (its bound pods stay); equal
/// totals broken by `tie_break`. An error when the arrivals together request more than a
/// snapshot may (see [`Snapshot::with_arrivals`]).
pub fn replay(
    snap: &Snapshot,
    arrivals: &[PodId],
    profile: &Profile,
    seed: u64,
    tie_break: TieBreak,
) -> Result<Replay, Error> {
    let (s, ids) = snap.with_arrivals(arrivals)?;
    let mut state = ClusterState::new(&s, &s.current);
    let mut scheduler = Scheduler::new(profile, seed);
    scheduler.tie_break = tie_break;
    // Only whether an arrival fits matters here, not why not.
    scheduler.explain = false;
    let groups = constraint_groups(&s, &ids, std::slice::from_ref(profile));
    let mut allocated: u64 = (0..s.pods.len())
        .filter(|&p| s.current.node[p].is_some() && s.is_active(p as PodId))
        .map(|p| s.pods.gpu[p].total_milli())
        .sum();
    let mut arrived = 0u64;
    let mut next_start = 0;
    let n = ids.len();
    let mut out = Replay {
        gpus: s.total_gpu_devices(),
        node: Vec::with_capacity(n),
        devices: Vec::with_capacity(n),
        gpu_milli: Vec::with_capacity(n),
        arrived_milli: Vec::with_capacity(n),
        allocated_milli: Vec::with_capacity(n),
    };
    for (&p, &group) in ids.iter().zip(&groups) {
        let milli = s.pods.gpu[p as usize].total_milli();
        let placed = {
            let cx = Cycle::new(&state, p);
            scheduler
                .place(&cx, group, &mut next_start)
                .ok()
                .map(|node| (node, choose_devices(profile, &cx, node)))
        };
        arrived += milli;
        match placed {
            Some((node, devices)) => {
                state.bind(p, node, devices);
                allocated += milli;
                out.node.push(Some(node));
                out.devices.push(devices);
            }
            None => {
                out.node.push(None);
                out.devices.push(0);
            }
        }
        out.gpu_milli.push(milli);
        out.arrived_milli.push(arrived);
        out.allocated_milli.push(allocated);
    }
    Ok(out)
}

/// The most arrivals [`fgd_arrivals`] makes: a load far past the protocol's (it tops a cluster up
/// to 130 % of its GPUs) must not fill memory with draws.
pub const MAX_ARRIVALS: usize = 10_000_000;

/// The FGD protocol's arrivals from the pod list `pods`: shuffled, then topped up by draws with
/// replacement (or thinned by random removals) to `load` × the cluster's GPUs (see the module
/// doc). Draws stop short of the target when no pod asks for a GPU.
pub fn fgd_arrivals(
    snap: &Snapshot,
    pods: &[PodId],
    load: f64,
    seed: u64,
) -> Result<Vec<PodId>, Error> {
    if !(load.is_finite() && load > 0.0) {
        let message = format!("load must be positive, got {load}");
        return Err(ArgumentError::invalid("load", message).into());
    }
    let mut rng = Rng::new(seed);
    let mut list = pods.to_vec();
    for i in (1..list.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        list.swap(i, j);
    }
    let gpu = |p: PodId| snap.pods.gpu[p as usize];
    let target = load * snap.total_gpu_devices() as f64 * 1000.0;
    let mut total: u64 = list.iter().map(|&p| gpu(p).total_milli()).sum();
    let draws_grow = pods.iter().any(|&p| gpu(p).milli > 0);
    if (total as f64) < target && draws_grow {
        // May overshoot by a multi-GPU draw (the check is per device); nothing is removed then.
        loop {
            let p = pods[rng.below(pods.len() as u64) as usize];
            if (total + u64::from(gpu(p).milli)) as f64 > target {
                break;
            }
            if list.len() == MAX_ARRIVALS {
                let message = format!(
                    "load {load} asks for more than {MAX_ARRIVALS} arrivals on {} GPUs",
                    snap.total_gpu_devices()
                );
                return Err(ArgumentError::invalid("load", message).into());
            }
            total += gpu(p).total_milli();
            list.push(p);
        }
    } else {
        while total as f64 > target && !list.is_empty() {
            let i = rng.below(list.len() as u64) as usize;
            total -= gpu(list.remove(i)).total_milli();
        }
    }
    Ok(list)
}

/// The profile the FGD protocol places with: kube-scheduler's default filters, `policy` (any
/// score plugin) as the only score plugin, every feasible node scored. A policy with its own
/// draws (Random) gets `seed`.
pub fn policy_profile(policy: &str, seed: u64) -> Result<Profile, Error> {
    let one = |name: &str| PluginRef {
        name: name.to_string(),
        weight: None,
    };
    let cfg = ProfileConfig {
        scheduler_name: Some(format!("online-{policy}")),
        percentage_of_nodes_to_score: Some(100),
        plugins: Some(Plugins {
            score: PluginSet {
                enabled: vec![one(policy)],
                disabled: vec![one("*")],
            },
            ..Plugins::default()
        }),
        plugin_config: if policy == "Random" {
            vec![PluginConfig {
                name: policy.to_string(),
                args: Some(json!({ "seed": seed })),
            }]
        } else {
            Vec::new()
        },
    };
    let profile = build_profile(&cfg, None)?;
    if profile.scores.is_empty() {
        let e = ConfigError::new(format!("{policy:?} is not a score plugin"));
        return Err(e.of_plugin(policy).into());
    }
    Ok(profile)
}

/// The FGD protocol on `snap`: its unbound active pods (in snapshot order) are the pod list,
/// [`fgd_arrivals`] with `seed`, placed with [`policy_profile`], ties to the first node in the
/// seed's [`node_order`].
pub fn fgd_replay(snap: &Snapshot, policy: &str, load: f64, seed: u64) -> Result<Replay, Error> {
    let profile = policy_profile(policy, seed)?;
    let pods: Vec<PodId> = (0..snap.pods.len() as PodId)
        .filter(|&p| snap.current.node[p as usize].is_none() && snap.is_active(p))
        .collect();
    let arrivals = fgd_arrivals(snap, &pods, load, seed)?;
    let ties = TieBreak::Rank(node_order(snap.nodes.len(), seed));
    replay(snap, &arrivals, &profile, seed, ties)
}

/// [`fgd_replay`] for every policy × seed, in parallel; results policy-major (all seeds of the
/// first policy, then the next).
pub fn fgd_sweep(
    snap: &Snapshot,
    policies: &[String],
    seeds: &[u64],
    load: f64,
) -> Result<Vec<Replay>, Error> {
    for p in policies {
        policy_profile(p, 0)?;
    }
    let runs: Vec<(&str, u64)> = policies
        .iter()
        .flat_map(|p| seeds.iter().map(move |&s| (p.as_str(), s)))
        .collect();
    runs.par_iter()
        .map(|&(policy, seed)| fgd_replay(snap, policy, load, seed))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::gpu::GpuDemand;
    use crate::schedule::plugins::packing::testing::{cluster, node};

    fn shares_cluster() -> Snapshot {
        // 4 nodes × 2 GPUs; pending: ten 0.6-GPU shares and two 1-GPU pods (8.0 GPUs of 8).
        let mut pods = vec![(1000, GpuDemand::share(600)); 10];
        pods.extend([(1000, GpuDemand::whole(1)); 2]);
        let nodes: Vec<_> = (0..4).map(|_| node(16_000, 2)).collect();
        cluster(&nodes, &[], &pods)
    }

    #[test]
    fn arrivals_are_topped_up_with_replacement_and_thinned() {
        let snap = shares_cluster();
        let pods: Vec<PodId> = (0..12).collect();
        // 8 GPUs, load 1.3: target 10400 milli; the list has 8000, so draws are appended.
        let a = fgd_arrivals(&snap, &pods, 1.3, 1).unwrap();
        let total: u64 = a
            .iter()
            .map(|&p| snap.pods.gpu[p as usize].total_milli())
            .sum();
        assert!(
            a.len() > 12 && total <= 10_400 && total + 1000 > 10_400,
            "{total}"
        );
        let mut first: Vec<PodId> = a[..12].to_vec();
        first.sort_unstable();
        assert_eq!(first, pods, "the whole list first, shuffled");
        assert_eq!(a, fgd_arrivals(&snap, &pods, 1.3, 1).unwrap());
        assert_ne!(a, fgd_arrivals(&snap, &pods, 1.3, 2).unwrap());
        // Load 0.5: 4000 milli, pods removed at random.
        let b = fgd_arrivals(&snap, &pods, 0.5, 1).unwrap();
        let total: u64 = b
            .iter()
            .map(|&p| snap.pods.gpu[p as usize].total_milli())
            .sum();
        assert!(total <= 4000 && b.len() < 12);
        // A load far past the protocol's is refused, not drawn until memory runs out; pods
        // without GPUs are only shuffled, as no draw of theirs nears the target.
        let e = fgd_arrivals(&snap, &pods, 1e12, 1).unwrap_err();
        assert!(e.to_string().contains("more than 10000000 arrivals"), "{e}");
        let cpu_only: Vec<PodId> = (0..snap.pods.len() as PodId)
            .filter(|&p| snap.pods.gpu[p as usize].milli == 0)
            .collect();
        if !cpu_only.is_empty() {
            assert_eq!(
                fgd_arrivals(&snap, &cpu_only, 1.3, 1).unwrap().len(),
                cpu_only.len()
            );
        }
    }

    #[test]
    fn replay_places_in_order_and_never_over_commits() {
        let snap = shares_cluster();
        for policy in crate::schedule::plugins::packing::POLICIES {
            let r = fgd_replay(&snap, policy, 1.3, 3).unwrap();
            assert_eq!(r.gpus, 8);
            assert_eq!(r, fgd_replay(&snap, policy, 1.3, 3).unwrap(), "{policy}");
            let last = *r.allocated_milli.last().unwrap();
            assert!(last <= 8000);
            // Shares of 600 cannot pair on a device: at most 8 of them or fewer whole GPUs.
            let mut used = [[0u64; 2]; 4];
            for (i, n) in r.node.iter().enumerate() {
                if let Some(n) = n {
                    for d in crate::model::gpu::mask_indices(r.devices[i]) {
                        used[*n as usize][d as usize] += r.gpu_milli[i];
                    }
                }
            }
            assert!(
                used.iter().flatten().all(|&u| u <= 1000),
                "{policy}: {used:?}"
            );
            assert!(r.failed() > 0, "{policy}: 130 % cannot all fit");
            let curve = r.allocation_curve(130);
            assert_eq!(curve.len(), 131);
            assert!(curve.iter().flatten().all(|&c| c <= 100.0));
        }
        let names: Vec<String> = ["FGD", "BestFit"].map(String::from).to_vec();
        let sweep = fgd_sweep(&snap, &names, &[3, 4], 1.3).unwrap();
        assert_eq!(sweep.len(), 4);
        assert_eq!(sweep[0], fgd_replay(&snap, "FGD", 1.3, 3).unwrap());
        assert_eq!(sweep[3], fgd_replay(&snap, "BestFit", 1.3, 4).unwrap());
        assert!(fgd_sweep(&snap, &["Nope".into()], &[1], 1.3).is_err());
        assert!(policy_profile("NodeAffinity", 0).is_ok());
        assert!(policy_profile("NodeName", 0)
            .err()
            .unwrap()
            .to_string()
            .contains("not a score plugin"));
        assert!(policy_profile("Nope", 0).is_err());
    }

    #[test]
    fn curve_like_the_authors_analysis() {
        // 10 GPUs: 1 % is 100 milli. Events at 0.4 %, 1.0 %, 1.5 %, 3.0 % arrived.
        let r = Replay {
            gpus: 10,
            node: vec![Some(0); 4],
            devices: vec![0; 4],
            gpu_milli: vec![40, 60, 50, 150],
            arrived_milli: vec![40, 100, 150, 300],
            allocated_milli: vec![40, 100, 150, 250],
        };
        let c = r.allocation_curve(4);
        // 0: the 0.4 % event; 1: the 1.0 % event; 2: 1.5 % rounds (half to even) to 2;
        // 3: 2.5 %; 4: none at 4, the ±1 window has the 3 % event.
        assert_eq!(c, [Some(0.4), Some(1.0), Some(1.5), Some(2.5), Some(2.5)]);
    }
}
