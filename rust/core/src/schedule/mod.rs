//! Placement: kube-scheduler's framework and plugins, and batch scheduling of pending pods.

mod cached_walk;
mod config_json;
mod divider;
pub mod framework;
pub mod order;
pub mod plugins;
pub(crate) mod pod_index;
pub mod profile;
pub mod state;

use crate::error::{ArgumentError, Error};
use crate::model::gpu::{self, DeviceMask};
use crate::snapshot::{Assignment, ConstraintClasses, NodeId, PodId, Snapshot};
use framework::{Cycle, Explanation, FitError, Profile, Scheduler};
pub use order::Order;
use state::ClusterState;

/// The result of placing a batch of pods.
#[derive(Clone, Debug)]
pub struct Placement {
    /// Pods placed, in placement order, with node and GPU devices.
    pub placed: Vec<(PodId, NodeId, DeviceMask)>,
    /// Pods no node could take, with why.
    pub unschedulable: Vec<(PodId, FitError)>,
    /// Pods whose `schedulerName` names none of the profiles: not this scheduler's to place.
    pub skipped: Vec<PodId>,
    /// The whole cluster's placement afterwards (every pod of the snapshot).
    pub assignment: Assignment,
}

/// Numbers the pods by their node constraints (nodeSelector, node affinity, tolerations): pods of
/// one group get the same answers from static plugins (one group when no profile has any).
pub(crate) fn constraint_groups(snap: &Snapshot, pods: &[PodId], profiles: &[Profile]) -> Vec<u32> {
    if !profiles.iter().any(Profile::has_statics) {
        return vec![0; pods.len()];
    }
    // The snapshot's classes cost a pass over every pod, which a small batch need not pay.
    let classes = match snap.constraint_classes_if_computed() {
        Some(classes) => classes,
        None if pods.len() * 4 < snap.pods.len() => {
            return pod_index::number_pods(snap, pods.iter().map(|&q| q as usize), |q| {
                Some(ConstraintClasses::key(&snap.pods, q))
            });
        }
        None => snap.constraint_classes(),
    };
    // A class is exactly a group's key: number the classes densely, in the batch's order.
    let mut group_of = vec![pod_index::UNNUMBERED; classes.len()];
    let mut groups = 0;
    pods.iter()
        .map(|&q| {
            let g = &mut group_of[classes.of[q as usize] as usize];
            if *g == pod_index::UNNUMBERED {
                *g = groups;
                groups += 1;
            }
            *g
        })
        .collect()
}

/// GPU devices for the pod on `node`: the first score plugin with an opinion, else best fit.
pub fn choose_devices(profile: &Profile, cx: &Cycle, node: NodeId) -> DeviceMask {
    if cx.gpu.is_none() {
        return 0;
    }
    profile
        .scores
        .iter()
        .find_map(|(s, _)| s.choose_devices(cx, node))
        .or_else(|| gpu::best_fit(&cx.state.gpu_free[node as usize], cx.gpu))
        .expect("the fit filter checked the devices")
}

/// [`schedule`] on `threads` worker threads, which share the work that spans every node (see
/// [`Scheduler::threads`]); the result is the same as with one thread. No more threads start
/// than the machine runs at once: more would only wait (and a caller's `2**40` would try to
/// start them all).
pub fn schedule_on_threads(
    snap: &Snapshot,
    pods: Option<&[PodId]>,
    profiles: &[Profile],
    order: Order,
    seed: u64,
    threads: usize,
) -> Result<Placement, Error> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = threads.min(cores);
    if threads <= 1 {
        return schedule(snap, pods, profiles, order, seed);
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| {
            ArgumentError::invalid("threads", format!("cannot start {threads} threads: {e}"))
        })?;
    pool.install(|| schedule_with(snap, pods, profiles, order, seed, threads))
}

/// Places `pods` (by default every active pending pod) one at a time in `order`, each with the
/// profile named by its `schedulerName` (pods naming no profile are skipped), updating the cluster
/// as it goes — what kube-scheduler does with a queue of pods.
pub fn schedule(
    snap: &Snapshot,
    pods: Option<&[PodId]>,
    profiles: &[Profile],
    order: Order,
    seed: u64,
) -> Result<Placement, Error> {
    schedule_with(snap, pods, profiles, order, seed, 1)
}

fn schedule_with(
    snap: &Snapshot,
    pods: Option<&[PodId]>,
    profiles: &[Profile],
    order: Order,
    seed: u64,
    threads: usize,
) -> Result<Placement, Error> {
    let queue: Vec<PodId> = match pods {
        Some(list) => {
            for &p in list {
                pending(snap, p, "pods", "schedule places pending pods")?;
            }
            list.to_vec()
        }
        None => (0..snap.pods.len() as PodId)
            .filter(|&p| snap.current.node[p as usize].is_none() && snap.is_active(p))
            .collect(),
    };
    let queue = order.sort(snap, queue, seed);
    let groups = constraint_groups(snap, &queue, profiles);
    let mut state = ClusterState::new(snap, &snap.current);
    // Room for what the batch adds (most pods are placed): growing by copies costs more.
    state.changes.reserve(queue.len());
    let mut schedulers: Vec<Scheduler> = profiles
        .iter()
        .map(|p| {
            let mut scheduler = Scheduler::new(p, seed);
            scheduler.threads = threads;
            scheduler
        })
        .collect();
    // Profile names as the snapshot interned them (`None`: no pod names the profile).
    let names: Vec<_> = profiles.iter().map(|p| snap.symbols.get(&p.name)).collect();
    let mut next_start = 0;
    let mut skipped = Vec::new();
    let mut placed = Vec::with_capacity(queue.len());
    let mut unschedulable = Vec::new();
    for (p, group) in queue.into_iter().zip(groups) {
        // Like kube-scheduler, a profile only takes the pods that name it.
        let scheduler_name = Some(snap.pods.scheduler_name[p as usize]);
        let Some(which) = names.iter().position(|&name| name == scheduler_name) else {
            skipped.push(p);
            continue;
        };
        let result = {
            let cx = Cycle::new(&state, p);
            schedulers[which]
                .place(&cx, group, &mut next_start)
                .map(|n| (n, choose_devices(&profiles[which], &cx, n)))
        };
        match result {
            Ok((n, devices)) => {
                state.bind(p, n, devices);
                placed.push((p, n, devices));
            }
            Err(e) => unschedulable.push((p, e)),
        }
    }
    Ok(Placement {
        placed,
        unschedulable,
        skipped,
        assignment: state.into_assignment(),
    })
}

/// The first cycle `schedule` would run for pending pod `pod`, with every node filtered and every
/// feasible node scored ([`Scheduler::explain`]), under the profile its `schedulerName` names.
/// Also returns the index of that profile.
pub fn explain(
    snap: &Snapshot,
    pod: PodId,
    profiles: &[Profile],
) -> Result<(Explanation, usize), Error> {
    pending(snap, pod, "pod", "explain takes a pending pod")?;
    let scheduler_name = snap.symbols.resolve(snap.pods.scheduler_name[pod as usize]);
    let Some(which) = profiles.iter().position(|p| p.name == scheduler_name) else {
        let message = format!(
            "pod {} names schedulerName {scheduler_name:?}, which no profile has",
            snap.pod_key(pod)
        );
        return Err(ArgumentError::invalid("pod", message).into());
    };
    let profile = &profiles[which];
    let group = constraint_groups(snap, &[pod], std::slice::from_ref(profile))[0];
    let state = ClusterState::new(snap, &snap.current);
    let cx = Cycle::new(&state, pod);
    Ok((Scheduler::new(profile, 0).explain(&cx, group), which))
}

/// An error naming `argument` when pod `p` is bound: `what` says what the call takes.
fn pending(snap: &Snapshot, p: PodId, argument: &str, what: &str) -> Result<(), Error> {
    match snap.current.node[p as usize] {
        None => Ok(()),
        Some(n) => {
            let message = format!(
                "pod {} is bound to node {}; {what}",
                snap.pod_key(p),
                snap.nodes.name[n as usize]
            );
            Err(ArgumentError::invalid(argument, message).into())
        }
    }
}
