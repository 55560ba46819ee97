//! Constraint violations of a placement: what kube-scheduler's filters would reject if each bound
//! pod were placed again where it is. Real clusters drift into such states (nodes relabelled or
//! tainted after pods started, allocatable shrinking), and a rebalancer should repair them.

use std::cell::OnceCell;
use std::collections::HashMap;
use std::sync::Arc;

use crate::hash::IdMap;
use crate::intern::Sym;
use crate::model::affinity::{Affinity, PodAffinityTerm};
use crate::model::selector::InternedSelector;
use crate::model::spread::{InclusionPolicy, TopologySpreadConstraint, WhenUnsatisfiable};
use crate::model::taints::{first_untolerated, TaintEffect, Toleration};
use crate::schedule::pod_index::{AffinityTerm, PodLists, Topology};
use crate::snapshot::{Assignment, NodeId, PodId, Snapshot};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ViolationKind {
    /// A node's pods request more than its allocatable of some resource.
    Capacity,
    /// A GPU device is over-committed, or a pod holds the wrong number of devices.
    GpuDevices,
    /// `nodeSelector` / required node affinity no longer match.
    NodeAffinity,
    /// An untolerated NoExecute taint (the taint manager would evict the pod).
    Taint,
    PodAffinity,
    PodAntiAffinity,
    /// A DoNotSchedule spread constraint's skew exceeds maxSkew.
    TopologySpread,
    /// Two pods on a node use the same host port.
    HostPort,
}

impl ViolationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ViolationKind::Capacity => "capacity",
            ViolationKind::GpuDevices => "gpu-devices",
            ViolationKind::NodeAffinity => "node-affinity",
            ViolationKind::Taint => "taint",
            ViolationKind::PodAffinity => "pod-affinity",
            ViolationKind::PodAntiAffinity => "pod-anti-affinity",
            ViolationKind::TopologySpread => "topology-spread",
            ViolationKind::HostPort => "host-port",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    pub kind: ViolationKind,
    pub node: NodeId,
    /// The pod concerned; `None` for node-level violations (capacity, device over-commit).
    pub pod: Option<PodId>,
    pub detail: String,
}

/// The active pods `a` binds, looked up by namespace and label (built on first use: only
/// inter-pod rules read them).
struct Bound<'s> {
    snap: &'s Snapshot,
    a: &'s Assignment,
    lists: OnceCell<PodLists>,
    /// Lists made already for another assignment that binds the same pods.
    shared: Option<&'s PodLists>,
}

impl<'s> Bound<'s> {
    fn of(snap: &'s Snapshot, a: &'s Assignment) -> Bound<'s> {
        Bound {
            snap,
            a,
            lists: OnceCell::new(),
            shared: None,
        }
    }

    fn lists(&self) -> &PodLists {
        if let Some(lists) = self.shared {
            return lists;
        }
        self.lists
            .get_or_init(|| PodLists::build(self.snap, bound_pods(self.snap, self.a)))
    }

    fn is_bound(&self, p: PodId) -> bool {
        self.a.node[p as usize].is_some() && self.snap.is_active(p)
    }

    fn node(&self, p: PodId) -> NodeId {
        self.a.node[p as usize].expect("bound")
    }
}

fn bound_pods(s: &Snapshot, a: &Assignment) -> Vec<PodId> {
    (0..s.pods.len() as PodId)
        .filter(|&p| a.node[p as usize].is_some() && s.is_active(p))
        .collect()
}

/// How many inter-pod rules (required pod (anti-)affinity, DoNotSchedule spread) of the pods
/// marked in `only` `a` breaks: the rules a move can break for pods it does not move.
pub fn inter_pod_count(s: &Snapshot, a: &Assignment, only: &[bool]) -> usize {
    count_in(Bound::of(s, a), only)
}

fn count_in(bound: Bound, only: &[bool]) -> usize {
    let mut out = Vec::new();
    inter_pod(&bound, Some(only), &mut out);
    spread(&bound, Some(only), &mut out);
    out.len()
}

/// [`inter_pod_count`] for many assignments that bind the same pods, as a drain's do (it moves
/// pods; it binds no more and no fewer): the pods' lists by namespace and label are made once.
pub struct InterPodCounter<'s> {
    snap: &'s Snapshot,
    pods: Vec<PodId>,
    lists: PodLists,
}

impl<'s> InterPodCounter<'s> {
    /// For assignments that bind the pods `a` binds.
    pub fn new(snap: &'s Snapshot, a: &Assignment) -> Self {
        let pods = bound_pods(snap, a);
        let lists = PodLists::build(snap, pods.clone());
        InterPodCounter { snap, pods, lists }
    }

    /// [`inter_pod_count`] of `a`; an `a` that binds other pods gets lists of its own.
    pub fn count(&self, a: &Assignment, only: &[bool]) -> usize {
        let mut bound = Bound::of(self.snap, a);
        if bound_pods(self.snap, a) == self.pods {
            bound.shared = Some(&self.lists);
        }
        count_in(bound, only)
    }
}

pub(super) fn find(
    s: &Snapshot,
    a: &Assignment,
    requested: &crate::resources::ResourceMatrix,
    device_used: &[Vec<u32>],
) -> Vec<Violation> {
    let mut out = Vec::new();
    // Node-level: capacity and devices.
    for n in 0..s.nodes.len() {
        let alloc = s.nodes.allocatable.row(n);
        for (r, (&req, &cap)) in requested.row(n).iter().zip(alloc).enumerate() {
            if req > cap {
                out.push(Violation {
                    kind: ViolationKind::Capacity,
                    node: n as NodeId,
                    pod: None,
                    detail: format!(
                        "{} requested {req} > allocatable {cap}",
                        s.resources.name(r)
                    ),
                });
            }
        }
        for (d, &used) in device_used[n].iter().enumerate() {
            if used > crate::model::gpu::DEVICE_MILLI {
                out.push(Violation {
                    kind: ViolationKind::GpuDevices,
                    node: n as NodeId,
                    pod: None,
                    detail: format!("GPU device {d} holds {used} milli > 1000"),
                });
            }
        }
    }

    let bound = Bound::of(s, a);

    // Pod-level rules that need only the pod and its node, in pod order (so which of two pods
    // clashing on a host port is reported does not depend on hashing).
    let mut ports: HashMap<NodeId, Vec<(PodId, usize)>> = HashMap::new();
    for p in 0..s.pods.len() as PodId {
        if !bound.is_bound(p) {
            continue;
        }
        {
            let n = a.node[p as usize].expect("bound");
            let pi = p as usize;
            let mut push = |kind, detail: String| {
                out.push(Violation {
                    kind,
                    node: n,
                    pod: Some(p),
                    detail,
                })
            };
            let demand = s.pods.gpu[pi];
            if a.gpu_devices[pi].count_ones() != demand.count {
                push(
                    ViolationKind::GpuDevices,
                    format!(
                        "holds {} GPU device(s), needs {}",
                        a.gpu_devices[pi].count_ones(),
                        demand.count
                    ),
                );
            }
            if !s.node_affinity_admits(p, n) {
                push(
                    ViolationKind::NodeAffinity,
                    "node(s) didn't match Pod's node affinity/selector".into(),
                );
            }
            // A bound pod is only evicted by NoExecute taints; NoSchedule taints (a cordon, a
            // dedication added later) keep new pods away but leave running ones alone.
            let no_execute = first_untolerated(
                &s.nodes.taints[n as usize],
                &s.pods.tolerations[pi],
                &[TaintEffect::NoExecute],
            );
            if let Some(t) = no_execute {
                push(
                    ViolationKind::Taint,
                    format!(
                        "untolerated taint {{{}: {}}} ({:?})",
                        t.key, t.value, t.effect
                    ),
                );
            }
            for i in 0..s.pods.host_ports[pi].len() {
                ports.entry(n).or_default().push((p, i));
            }
        }
    }
    host_port_conflicts(s, &ports, &mut out);
    inter_pod(&bound, None, &mut out);
    spread(&bound, None, &mut out);
    out.sort_by_key(|v| (v.kind, v.node, v.pod));
    out
}

fn host_port_conflicts(
    s: &Snapshot,
    ports: &HashMap<NodeId, Vec<(PodId, usize)>>,
    out: &mut Vec<Violation>,
) {
    for (&n, list) in ports {
        for (i, &(p, pi)) in list.iter().enumerate() {
            let a = &s.pods.host_ports[p as usize][pi];
            let clash = list[..i].iter().any(|&(q, qi)| {
                let b = &s.pods.host_ports[q as usize][qi];
                q != p
                    && a.port == b.port
                    && a.protocol == b.protocol
                    && (a.ip == b.ip || a.ip == "0.0.0.0" || b.ip == "0.0.0.0")
            });
            if clash {
                out.push(Violation {
                    kind: ViolationKind::HostPort,
                    node: n,
                    pod: Some(p),
                    detail: format!("host port {}/{:?} already in use", a.port, a.protocol),
                });
            }
        }
    }
}

/// The nodes' domains per topology key, numbered on first use.
#[derive(Default)]
struct Topologies(IdMap<Sym, Topology>);

impl Topologies {
    fn of(&mut self, s: &Snapshot, key: Sym) -> &Topology {
        self.0
            .entry(key)
            .or_insert_with(|| Topology::build(s, Some(key)))
    }
}

/// A required pod (anti-)affinity term and the bound pods it selects, per domain of its
/// topology key.
struct TermCounts {
    term: AffinityTerm,
    counts: IdMap<u32, u32>,
    total: u32,
}

impl TermCounts {
    fn of(bound: &Bound, topology: &Topology, term: AffinityTerm) -> TermCounts {
        let mut counts: IdMap<u32, u32> = IdMap::default();
        let mut total = 0;
        for &q in bound.lists().term_candidates(&term).into_iter().flatten() {
            if !term.matches(bound.snap, q) {
                continue;
            }
            // Pods on nodes without the topology key belong to no domain.
            if let Some(d) = topology.domain(bound.node(q)) {
                *counts.entry(d).or_insert(0) += 1;
                total += 1;
            }
        }
        TermCounts {
            term,
            counts,
            total,
        }
    }
}

fn inter_pod(bound: &Bound, only: Option<&[bool]>, out: &mut Vec<Violation>) {
    let s = bound.snap;
    let mut topologies = Topologies::default();
    // Pods of one workload share their terms: count once per (namespace, term). Replicas share
    // their affinity's allocation, which finds its terms' entries without reading them again.
    let mut entries: Vec<TermCounts> = Vec::new();
    let mut by_term: IdMap<(Sym, &PodAffinityTerm), usize> = IdMap::default();
    let mut by_affinity: IdMap<(Sym, *const Affinity), Vec<usize>> = IdMap::default();
    for p in 0..s.pods.len() as PodId {
        let pi = p as usize;
        if !bound.is_bound(p) || only.is_some_and(|o| !o[pi]) {
            continue;
        }
        let Some(aff) = s.pods.affinity[pi].as_ref() else {
            continue;
        };
        let rules = [
            (ViolationKind::PodAffinity, aff.pod_affinity.as_ref()),
            (
                ViolationKind::PodAntiAffinity,
                aff.pod_anti_affinity.as_ref(),
            ),
        ];
        let terms = || {
            rules.iter().flat_map(|&(kind, terms)| {
                let list = terms.map(|t| t.required.as_slice()).unwrap_or_default();
                list.iter().map(move |t| (kind, t))
            })
        };
        if terms().next().is_none() {
            continue;
        }
        let n = bound.node(p);
        let ns = s.pods.namespace[pi];
        let ids = by_affinity
            .entry((ns, Arc::as_ptr(aff)))
            .or_insert_with(|| {
                terms()
                    .map(|(_, t)| {
                        *by_term.entry((ns, t)).or_insert_with(|| {
                            // The label selector alone: unlike the InterPodAffinity filter, this
                            // check has never merged matchLabelKeys / mismatchLabelKeys in.
                            let term = AffinityTerm::without_label_keys(s, ns, t);
                            let counts = match term.key() {
                                Some(key) => TermCounts::of(bound, topologies.of(s, key), term),
                                None => TermCounts {
                                    term,
                                    counts: IdMap::default(),
                                    total: 0,
                                },
                            };
                            entries.push(counts);
                            entries.len() - 1
                        })
                    })
                    .collect()
            });
        for ((kind, t), &id) in terms().zip(ids.iter()) {
            let entry = &entries[id];
            // A topology key no node has puts every pod in no domain.
            let Some(key) = entry.term.key() else {
                if kind == ViolationKind::PodAffinity {
                    out.push(Violation {
                        kind,
                        node: n,
                        pod: Some(p),
                        detail: format!("no node has topology key {:?}", t.topology_key),
                    });
                }
                continue;
            };
            let own = topologies.of(s, key).domain(n);
            let selects_self = entry.term.matches(s, p);
            let counted_self = u32::from(selects_self && own.is_some());
            let here = own.and_then(|d| entry.counts.get(&d)).copied().unwrap_or(0) - counted_self;
            let violated = match kind {
                ViolationKind::PodAntiAffinity => here > 0,
                _ => {
                    // Kubernetes lets the first pod of a group in: when no other pod
                    // matches anywhere and the pod matches its own term.
                    let elsewhere = entry.total - counted_self;
                    here == 0 && !(elsewhere == 0 && selects_self)
                }
            };
            if violated {
                let what = if kind == ViolationKind::PodAntiAffinity {
                    "didn't satisfy existing pods anti-affinity rules"
                } else {
                    "didn't match pod affinity rules"
                };
                out.push(Violation {
                    kind,
                    node: n,
                    pod: Some(p),
                    detail: format!("{what} (topologyKey {})", t.topology_key),
                });
            }
        }
    }
}

/// What makes a node eligible for a spread constraint: its topology key, and the pod's node
/// constraints (their number, see [`Snapshot::node_constraints`]) and tolerations where the
/// constraint honours them.
type EligibleKey = (Sym, Option<Option<u32>>, Option<*const [Toleration]>);

/// The nodes a spread constraint counts, and how many domains they form.
struct Eligible {
    node: Vec<bool>,
    domains: usize,
}

/// A spread constraint's counts per eligible domain, and the emptiest domain's count.
struct SpreadCounts {
    counts: IdMap<u32, u32>,
    min: u32,
}

/// The key of the pods whose spread constraint counts alike: their namespace, the constraint
/// (its list's allocation and place in it), their values of its `matchLabelKeys`, and what
/// makes nodes eligible.
type SpreadKey = (
    Sym,
    *const [TopologySpreadConstraint],
    usize,
    Vec<Option<Sym>>,
    EligibleKey,
);

fn spread(bound: &Bound, only: Option<&[bool]>, out: &mut Vec<Violation>) {
    let s = bound.snap;
    let mut topologies = Topologies::default();
    let mut admitted: IdMap<u32, Vec<bool>> = IdMap::default();
    let mut eligible: Vec<Eligible> = Vec::new();
    let mut eligible_ids: IdMap<EligibleKey, usize> = IdMap::default();
    let mut cache: IdMap<SpreadKey, SpreadCounts> = IdMap::default();
    for p in 0..s.pods.len() as PodId {
        let pi = p as usize;
        if !bound.is_bound(p) || only.is_some_and(|o| !o[pi]) {
            continue;
        }
        let n = bound.node(p);
        for (i, c) in s.pods.spread[pi].iter().enumerate() {
            if c.when_unsatisfiable != WhenUnsatisfiable::DoNotSchedule {
                continue;
            }
            let Some(key) = s.symbols.get(&c.topology_key) else {
                continue;
            };
            let Some(own) = topologies.of(s, key).domain(n) else {
                continue;
            };
            // matchLabelKeys narrows the selector to pods sharing these label values.
            let own_values: Vec<Option<Sym>> = c
                .match_label_keys
                .iter()
                .map(|k| label_sym(s, p, k))
                .collect();
            let honor_affinity = c.node_affinity_policy == InclusionPolicy::Honor;
            let honor_taints = c.node_taints_policy == InclusionPolicy::Honor;
            let constraints = honor_affinity.then(|| s.node_constraints(p));
            let tolerations = honor_taints.then(|| Arc::as_ptr(&s.pods.tolerations[pi]));
            let ekey = (key, constraints, tolerations);
            let e = *eligible_ids.entry(ekey).or_insert_with(|| {
                let topology = topologies.of(s, key);
                let admits = constraints.flatten().map(|c| {
                    admitted.entry(c).or_insert_with(|| {
                        (0..s.nodes.len() as NodeId)
                            .map(|m| s.node_affinity_admits(p, m))
                            .collect()
                    })
                });
                let node: Vec<bool> = (0..s.nodes.len() as NodeId)
                    .map(|m| {
                        topology.domain(m).is_some()
                            && admits.as_ref().is_none_or(|a| a[m as usize])
                            && (!honor_taints || s.untolerated_taint(p, m).is_none())
                    })
                    .collect();
                let mut domains = vec![false; topology.domains()];
                for m in 0..s.nodes.len() as NodeId {
                    if node[m as usize] {
                        domains[topology.domain(m).expect("eligible") as usize] = true;
                    }
                }
                let domains = domains.iter().filter(|&&d| d).count();
                eligible.push(Eligible { node, domains });
                eligible.len() - 1
            });
            let ptr = Arc::as_ptr(&s.pods.spread[pi]);
            let counted = cache
                .entry((s.pods.namespace[pi], ptr, i, own_values, ekey))
                .or_insert_with_key(|(ns, _, _, own_values, _)| {
                    spread_counts(
                        bound,
                        c,
                        *ns,
                        own_values,
                        topologies.of(s, key),
                        &eligible[e],
                    )
                });
            if !eligible[e].node[n as usize] {
                continue;
            }
            let here = counted.counts.get(&own).copied().unwrap_or(0);
            let skew = i64::from(here) - i64::from(counted.min);
            if skew > i64::from(c.max_skew) {
                out.push(Violation {
                    kind: ViolationKind::TopologySpread,
                    node: n,
                    pod: Some(p),
                    detail: format!(
                        "skew {skew} > maxSkew {} on {} ({} here, {} in the emptiest domain)",
                        c.max_skew, c.topology_key, here, counted.min
                    ),
                });
            }
        }
    }
}

/// The value of label `key` of pod `p`, interned.
fn label_sym(s: &Snapshot, p: PodId, key: &str) -> Option<Sym> {
    let key = s.symbols.get(key)?;
    let labels = &s.pods.labels[p as usize];
    labels
        .binary_search_by_key(&key, |&(k, _)| k)
        .ok()
        .map(|i| labels[i].1)
}

/// The bound pods of namespace `ns` constraint `c` counts: on eligible nodes, not being deleted
/// (the filter does not count those), with `own_values` of its `matchLabelKeys`, selected.
fn spread_counts(
    bound: &Bound,
    c: &TopologySpreadConstraint,
    ns: Sym,
    own_values: &[Option<Sym>],
    topology: &Topology,
    eligible: &Eligible,
) -> SpreadCounts {
    let s = bound.snap;
    let mut counts: IdMap<u32, u32> = IdMap::default();
    if let Some(sel) = &c.label_selector {
        let sel = InternedSelector::new(sel, &s.symbols);
        for &q in bound
            .lists()
            .candidates(&sel, Some(&[ns]))
            .into_iter()
            .flatten()
        {
            let qi = q as usize;
            if s.pods.namespace[qi] != ns || s.pods.terminating[qi] {
                continue;
            }
            let m = bound.node(q);
            let same_keys = c
                .match_label_keys
                .iter()
                .zip(own_values)
                .all(|(k, v)| label_sym(s, q, k) == *v);
            if eligible.node[m as usize] && same_keys && sel.matches(&s.pods.labels[qi]) {
                *counts
                    .entry(topology.domain(m).expect("eligible"))
                    .or_insert(0) += 1;
            }
        }
    }
    let too_few = c
        .min_domains
        .is_some_and(|md| (eligible.domains as i64) < i64::from(md));
    // Every eligible domain counts, the empty ones too: with fewer domains holding pods than
    // there are eligible domains, one of them holds none.
    let min = if too_few || counts.len() < eligible.domains {
        0
    } else {
        counts.values().copied().min().unwrap_or(0)
    };
    SpreadCounts { counts, min }
}
