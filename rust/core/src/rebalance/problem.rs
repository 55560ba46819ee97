//! The rebalancer's decision space: the movable pods in classes of interchangeable pods, the
//! nodes each class may go to, and what the pinned pods leave free.

use rayon::prelude::*;

use super::budgets::{budgets, Budget};
use super::interpod::{inter_pod, InterPod};
use super::pins::{pin, Pin, PinOptions};
use crate::hash::IdMap;
use crate::intern::Sym;
use crate::model::affinity::Affinity;
use crate::model::gpu::GpuDemand;
use crate::model::meta::Labels;
use crate::model::pod::HostPort;
use crate::model::spread::{TopologySpreadConstraint, WhenUnsatisfiable};
use crate::model::taints::Toleration;
use crate::resources::ResourceMatrix;
use crate::schedule::framework::{Cycle, PreFilter, Profile};
use crate::schedule::state::ClusterState;
use crate::snapshot::{Assignment, NodeId, PodId, Snapshot};

/// Movable pods that are interchangeable: same namespace, controller, labels, requests and
/// constraints, so a model can count them per node instead of placing each.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Class {
    /// Its pods, in snapshot order.
    pub pods: Vec<PodId>,
    /// Where a pod of the class may run, ascending: every filter of the profile passes with only
    /// the pinned pods in place (NodeName aside: a moved pod is a new pod its controller makes,
    /// without `spec.nodeName`). A pod's current node may be missing, when it only fits there by
    /// an over-commitment or a rule broken already. For a class that [`Class::interacts`], the
    /// inter-pod filters (InterPodAffinity, PodTopologySpread, NodePorts) are left to the model,
    /// which has their rules as [`Problem::inter_pod`]; of them, only that the node has every
    /// topology key of the pod's required affinity terms and `DoNotSchedule` constraints holds.
    pub candidates: Vec<NodeId>,
    /// Where the class may go also depends on where the other movable pods go: it has required
    /// pod (anti-)affinity, DoNotSchedule spread constraints or host ports.
    pub interacts: bool,
}

/// What a rebalance works with.
#[derive(Clone, Debug)]
pub struct Problem {
    /// Bound, active pods that stay, with why.
    pub pinned: Vec<(PodId, Pin)>,
    pub classes: Vec<Class>,
    /// Per node and resource: allocatable less the pinned pods' effective requests (negative
    /// where pinned pods over-commit the node).
    pub free: ResourceMatrix,
    /// Per node and GPU device: milli left by the pinned pods.
    pub gpu_free: Vec<Vec<u32>>,
    pub budgets: Vec<Budget>,
    /// The inter-pod rules that depend on where movable pods go.
    pub inter_pod: InterPod,
}

/// The fields that make pods interchangeable for placement.
#[derive(PartialEq, Eq, Hash)]
pub(super) struct ClassKey<'a> {
    namespace: Sym,
    controller: Option<&'a str>,
    scheduler: Sym,
    requests: &'a [i64],
    nonzero: [i64; 2],
    gpu: GpuDemand,
    labels: &'a [(Sym, Sym)],
    node_selector: &'a Labels,
    affinity: Option<&'a Affinity>,
    tolerations: &'a [Toleration],
    spread: &'a [TopologySpreadConstraint],
    host_ports: &'a [HostPort],
}

pub(super) fn class_key(snap: &Snapshot, p: PodId) -> ClassKey<'_> {
    let (i, pods) = (p as usize, &snap.pods);
    ClassKey {
        namespace: pods.namespace[i],
        controller: pods.owner[i].as_ref().map(|o| o.uid.as_str()),
        scheduler: pods.scheduler_name[i],
        requests: pods.requests.row(i),
        nonzero: pods.nonzero[i],
        gpu: pods.gpu[i],
        labels: &pods.labels[i],
        node_selector: &pods.node_selector[i],
        affinity: pods.affinity[i].as_deref(),
        tolerations: &pods.tolerations[i],
        spread: &pods.spread[i],
        host_ports: &pods.host_ports[i],
    }
}

/// Whether pod `p` has rules whose outcome depends on where other pods go: required pod
/// (anti-)affinity, `DoNotSchedule` spread constraints, host ports.
pub(crate) fn interacts(snap: &Snapshot, p: PodId) -> bool {
    let i = p as usize;
    let pods = &snap.pods;
    let required = |a: &Option<crate::model::affinity::PodAffinity>| {
        a.as_ref().is_some_and(|a| !a.required.is_empty())
    };
    pods.affinity[i]
        .as_ref()
        .is_some_and(|a| required(&a.pod_affinity) || required(&a.pod_anti_affinity))
        || pods.spread[i]
            .iter()
            .any(|c| c.when_unsatisfiable == WhenUnsatisfiable::DoNotSchedule)
        || !pods.host_ports[i].is_empty()
}

/// The rebalance problem of the snapshot's current placement under `profile`'s filters.
pub fn problem(snap: &Snapshot, profile: &Profile, opts: &PinOptions) -> Problem {
    let mut pinned = Vec::new();
    let mut kept = Assignment {
        node: vec![None; snap.pods.len()],
        gpu_devices: vec![0; snap.pods.len()],
    };
    let mut index: IdMap<ClassKey, usize> = IdMap::default();
    let mut members: Vec<Vec<PodId>> = Vec::new();
    for p in 0..snap.pods.len() as PodId {
        let Some(node) = snap.current.node[p as usize] else {
            continue;
        };
        if !snap.is_active(p) {
            continue;
        }
        match pin(snap, p, opts) {
            Some(why) => {
                pinned.push((p, why));
                kept.node[p as usize] = Some(node);
                kept.gpu_devices[p as usize] = snap.current.gpu_devices[p as usize];
            }
            None => {
                let next = members.len();
                let at = *index.entry(class_key(snap, p)).or_insert(next);
                if at == next {
                    members.push(Vec::new());
                }
                members[at].push(p);
            }
        }
    }
    let state = ClusterState::new(snap, &kept);
    let fitting = fitting_nodes(profile, &state, members.iter().map(|pods| pods[0]));
    let classes: Vec<Class> = members
        .into_par_iter()
        .map(|pods| {
            let rep = pods[0];
            let interacts = interacts(snap, rep);
            let fit = &fitting[&Fitting::of(snap, rep)];
            Class {
                candidates: candidates(profile, &state, rep, opts, interacts, fit),
                interacts,
                pods,
            }
        })
        .collect();
    let inter_pod = inter_pod(snap, &state, &classes, &pinned);
    let mut free = snap.nodes.allocatable.clone();
    for n in 0..snap.nodes.len() {
        for (f, &used) in free.row_mut(n).iter_mut().zip(state.requested.row(n)) {
            *f -= used;
        }
    }
    Problem {
        pinned,
        classes,
        free,
        gpu_free: state.gpu_free.clone(),
        budgets: budgets(snap),
        inter_pod,
    }
}

/// Filters whose outcome depends on where other pods are: for pods with such rules
/// ([`interacts`]) the model keeps them instead.
const INTER_POD_FILTERS: [&str; 3] = ["InterPodAffinity", "PodTopologySpread", "NodePorts"];

/// What the static and node-local filters answer alike for: pods of one constraint class (static
/// filters, see [`crate::schedule::framework::FilterPlugin::is_static`]) and one demand
/// (node-local ones, see [`crate::schedule::framework::FilterPlugin::node_local`]). A large
/// cluster has thousands of classes of movable pods but far fewer of these.
#[derive(PartialEq, Eq, Hash)]
struct Fitting<'a> {
    constraints: u32,
    requests: &'a [i64],
    nonzero: [i64; 2],
    gpu: GpuDemand,
}

impl<'a> Fitting<'a> {
    fn of(snap: &'a Snapshot, p: PodId) -> Self {
        let i = p as usize;
        Fitting {
            constraints: snap.constraint_classes().of[i],
            requests: snap.pods.requests.row(i),
            nonzero: snap.pods.nonzero[i],
            gpu: snap.pods.gpu[i],
        }
    }
}

/// For each [`Fitting`] of the `pods`: the nodes where every static and node-local filter of
/// `profile` passes (a pre-filter rejection: none).
fn fitting_nodes<'a>(
    profile: &Profile,
    state: &ClusterState<'a>,
    pods: impl Iterator<Item = PodId>,
) -> IdMap<Fitting<'a>, Vec<NodeId>> {
    let snap = state.snap;
    let mut first: IdMap<u32, IdMap<Fitting<'a>, PodId>> = IdMap::default();
    for p in pods {
        let key = Fitting::of(snap, p);
        first
            .entry(key.constraints)
            .or_default()
            .entry(key)
            .or_insert(p);
    }
    let statics: Vec<_> = profile.filters.iter().filter(|f| f.is_static()).collect();
    let locals: Vec<_> = profile
        .filters
        .iter()
        .filter(|f| !f.is_static() && f.node_local())
        .collect();
    first
        .into_par_iter()
        .flat_map_iter(|(_, demands)| {
            let (_, &p) = demands
                .iter()
                .next()
                .expect("a constraint class has a demand");
            let cx = Cycle::new(state, p);
            // A static filter's PreFilter depends on the node constraints alone (NodeAffinity's
            // rejects names that conflict).
            let rejected = statics
                .iter()
                .any(|f| matches!(f.pre_filter(&cx), PreFilter::Reject(_)));
            let passing: Vec<NodeId> = if rejected {
                Vec::new()
            } else {
                (0..snap.nodes.len() as NodeId)
                    .filter(|&n| statics.iter().all(|f| f.filter(&cx, &None, n).is_ok()))
                    .collect()
            };
            let locals = &locals;
            demands.into_iter().map(move |(key, p)| {
                let cx = Cycle::new(state, p);
                let mut run = Vec::new();
                for f in locals {
                    match f.pre_filter(&cx) {
                        PreFilter::Run(data) => run.push((f, data)),
                        PreFilter::Skip => {}
                        PreFilter::Reject(_) => return (key, Vec::new()),
                    }
                }
                let fit = passing
                    .iter()
                    .copied()
                    .filter(|&n| run.iter().all(|(f, data)| f.filter(&cx, data, n).is_ok()))
                    .collect();
                (key, fit)
            })
        })
        .collect()
}

/// The nodes not excluded where every filter of `profile` but NodeName (and with `inter_pod_left`
/// the inter-pod filters, but for their topology keys) passes for `pod` against `state`; `fit`:
/// the nodes where its static and node-local filters pass (see [`fitting_nodes`]).
fn candidates(
    profile: &Profile,
    state: &ClusterState,
    pod: PodId,
    opts: &PinOptions,
    inter_pod_left: bool,
    fit: &[NodeId],
) -> Vec<NodeId> {
    let cx = Cycle::new(state, pod);
    let snap = state.snap;
    let mut run = Vec::new();
    let skipped =
        |name: &str| name == "NodeName" || inter_pod_left && INTER_POD_FILTERS.contains(&name);
    for f in profile
        .filters
        .iter()
        .filter(|f| !f.is_static() && !f.node_local() && !skipped(f.name()))
    {
        match f.pre_filter(&cx) {
            PreFilter::Run(data) => run.push((f, data)),
            PreFilter::Skip => {}
            PreFilter::Reject(_) => return Vec::new(),
        }
    }
    // The keys the skipped filters require of a node all the same.
    let mut keys: Vec<Option<Sym>> = Vec::new();
    if inter_pod_left {
        let p = pod as usize;
        let affinity = snap.pods.affinity[p]
            .as_ref()
            .and_then(|a| a.pod_affinity.as_ref());
        let spread = snap.pods.spread[p]
            .iter()
            .filter(|c| c.when_unsatisfiable == WhenUnsatisfiable::DoNotSchedule);
        keys.extend(
            affinity
                .iter()
                .flat_map(|a| &a.required)
                .map(|t| snap.symbols.get(&t.topology_key)),
        );
        keys.extend(spread.map(|c| snap.symbols.get(&c.topology_key)));
    }
    fit.iter()
        .copied()
        .filter(|&n| {
            !opts.excluded(n)
                && keys
                    .iter()
                    .all(|k| k.is_some_and(|k| snap.node_label_sym(n, k).is_some()))
                && run.iter().all(|(f, data)| f.filter(&cx, data, n).is_ok())
        })
        .collect()
}
