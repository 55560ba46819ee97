//! Constraint violations of a placement: what kube-scheduler's filters would reject if each bound
//! pod were placed again where it is. Real clusters drift into such states (nodes relabelled or
//! tainted after pods started, allocatable shrinking), and a rebalancer should repair them.

use std::collections::HashMap;

use crate::intern::Sym;
use crate::model::affinity::PodAffinityTerm;
use crate::model::spread::{InclusionPolicy, WhenUnsatisfiable};
use crate::model::taints::{first_untolerated, TaintEffect};
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

/// Active pods bound to a node, bucketed by namespace.
struct Bound {
    by_namespace: HashMap<Sym, Vec<PodId>>,
}

impl Bound {
    fn of(s: &Snapshot, a: &Assignment) -> Bound {
        let mut by_namespace: HashMap<Sym, Vec<PodId>> = HashMap::new();
        for p in 0..s.pods.len() as PodId {
            if a.node[p as usize].is_some() && s.is_active(p) {
                by_namespace
                    .entry(s.pods.namespace[p as usize])
                    .or_default()
                    .push(p);
            }
        }
        Bound { by_namespace }
    }
}

/// How many inter-pod rules (required pod (anti-)affinity, DoNotSchedule spread) of the pods
/// marked in `only` `a` breaks: the rules a move can break for pods it does not move.
pub fn inter_pod_count(s: &Snapshot, a: &Assignment, only: &[bool]) -> usize {
    let bound = Bound::of(s, a);
    let mut out = Vec::new();
    inter_pod(s, a, &bound, Some(only), &mut out);
    spread(s, a, &bound, Some(only), &mut out);
    out.len()
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
        if !(a.node[p as usize].is_some() && s.is_active(p)) {
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
    inter_pod(s, a, &bound, None, &mut out);
    spread(s, a, &bound, None, &mut out);
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

/// Number of bound active pods selected by `term` (written on a pod in `owner_ns`), per topology
/// domain; pods on nodes without the topology key belong to no domain.
fn term_counts(
    s: &Snapshot,
    a: &Assignment,
    bound: &Bound,
    term: &PodAffinityTerm,
    owner_ns: Sym,
    key: Sym,
) -> HashMap<Sym, u32> {
    let owner = s.symbols.resolve(owner_ns);
    let mut counts = HashMap::new();
    for (&ns, pods) in &bound.by_namespace {
        let ns_name = s.symbols.resolve(ns);
        for &q in pods {
            if term.selects(owner, ns_name, &s.pod_labels(q), None) {
                let n = a.node[q as usize].expect("bound");
                if let Some(d) = s.node_label_sym(n, key) {
                    *counts.entry(d).or_insert(0) += 1;
                }
            }
        }
    }
    counts
}

fn inter_pod(
    s: &Snapshot,
    a: &Assignment,
    bound: &Bound,
    only: Option<&[bool]>,
    out: &mut Vec<Violation>,
) {
    // Pods of one workload share their terms: count once per (namespace, term).
    let mut cache: HashMap<(Sym, String), HashMap<Sym, u32>> = HashMap::new();
    for pods in bound.by_namespace.values() {
        for &p in pods {
            if only.is_some_and(|o| !o[p as usize]) {
                continue;
            }
            let Some(aff) = s.pods.affinity[p as usize].as_deref() else {
                continue;
            };
            let n = a.node[p as usize].expect("bound");
            let ns = s.pods.namespace[p as usize];
            let owner = s.symbols.resolve(ns);
            let rules = [
                (ViolationKind::PodAffinity, aff.pod_affinity.as_ref()),
                (
                    ViolationKind::PodAntiAffinity,
                    aff.pod_anti_affinity.as_ref(),
                ),
            ];
            for (kind, terms) in rules {
                for term in terms.map(|t| t.required.as_slice()).unwrap_or_default() {
                    // A topology key no node has puts every pod in no domain.
                    let Some(key) = s.symbols.get(&term.topology_key) else {
                        if kind == ViolationKind::PodAffinity {
                            out.push(Violation {
                                kind,
                                node: n,
                                pod: Some(p),
                                detail: format!("no node has topology key {:?}", term.topology_key),
                            });
                        }
                        continue;
                    };
                    let counts = cache
                        .entry((ns, format!("{term:?}")))
                        .or_insert_with(|| term_counts(s, a, bound, term, ns, key));
                    let own = s.node_label_sym(n, key);
                    let selects_self = term.selects(owner, owner, &s.pod_labels(p), None);
                    let here = own.and_then(|d| counts.get(&d)).copied().unwrap_or(0)
                        - u32::from(selects_self && own.is_some());
                    let violated = match kind {
                        ViolationKind::PodAntiAffinity => here > 0,
                        _ => {
                            // Kubernetes lets the first pod of a group in: when no other pod
                            // matches anywhere and the pod matches its own term.
                            let elsewhere: u32 = counts.values().sum::<u32>()
                                - u32::from(selects_self && own.is_some());
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
                            detail: format!("{what} (topologyKey {})", term.topology_key),
                        });
                    }
                }
            }
        }
    }
}

fn spread(
    s: &Snapshot,
    a: &Assignment,
    bound: &Bound,
    only: Option<&[bool]>,
    out: &mut Vec<Violation>,
) {
    struct Domains {
        counts: HashMap<Sym, u32>,
        eligible: Vec<bool>,
        min: u32,
    }
    let mut cache: HashMap<String, Domains> = HashMap::new();
    for pods in bound.by_namespace.values() {
        for &p in pods {
            let pi = p as usize;
            if only.is_some_and(|o| !o[pi]) {
                continue;
            }
            let n = a.node[pi].expect("bound");
            for c in s.pods.spread[pi].iter() {
                if c.when_unsatisfiable != WhenUnsatisfiable::DoNotSchedule {
                    continue;
                }
                let Some(key) = s.symbols.get(&c.topology_key) else {
                    continue;
                };
                let Some(own) = s.node_label_sym(n, key) else {
                    continue;
                };
                // matchLabelKeys narrows the selector to pods sharing these label values.
                let own_values: Vec<Option<&str>> = c
                    .match_label_keys
                    .iter()
                    .map(|k| s.pod_labels(p).value(k))
                    .collect();
                let honor_affinity = c.node_affinity_policy == InclusionPolicy::Honor;
                let honor_taints = c.node_taints_policy == InclusionPolicy::Honor;
                let cache_key = format!(
                    "{:?}|{c:?}|{own_values:?}|{}|{}",
                    s.pods.namespace[pi],
                    if honor_affinity {
                        format!(
                            "{:?}{:?}",
                            s.pods.node_selector[pi],
                            s.pods.affinity[pi].as_ref().map(|a| &a.node_affinity)
                        )
                    } else {
                        String::new()
                    },
                    if honor_taints {
                        format!("{:?}", s.pods.tolerations[pi])
                    } else {
                        String::new()
                    },
                );
                let domains = cache.entry(cache_key).or_insert_with(|| {
                    let eligible: Vec<bool> = (0..s.nodes.len() as NodeId)
                        .map(|m| {
                            s.node_label_sym(m, key).is_some()
                                && (!honor_affinity || s.node_affinity_admits(p, m))
                                && (!honor_taints || s.untolerated_taint(p, m).is_none())
                        })
                        .collect();
                    let mut counts: HashMap<Sym, u32> = HashMap::new();
                    for m in 0..s.nodes.len() as NodeId {
                        if eligible[m as usize] {
                            counts
                                .entry(s.node_label_sym(m, key).expect("eligible"))
                                .or_insert(0);
                        }
                    }
                    if let (Some(sel), Some(qs)) = (
                        &c.label_selector,
                        bound.by_namespace.get(&s.pods.namespace[pi]),
                    ) {
                        for &q in qs {
                            // Pods being deleted are not counted (as the filter does not).
                            if s.pods.terminating[q as usize] {
                                continue;
                            }
                            let m = a.node[q as usize].expect("bound");
                            let labels = s.pod_labels(q);
                            let same_keys = c
                                .match_label_keys
                                .iter()
                                .zip(&own_values)
                                .all(|(k, v)| labels.value(k) == *v);
                            if eligible[m as usize] && same_keys && sel.matches(&labels) {
                                *counts
                                    .get_mut(&s.node_label_sym(m, key).expect("eligible"))
                                    .expect("domain") += 1;
                            }
                        }
                    }
                    let too_few = c
                        .min_domains
                        .is_some_and(|md| (counts.len() as i64) < i64::from(md));
                    let min = if too_few {
                        0
                    } else {
                        counts.values().copied().min().unwrap_or(0)
                    };
                    Domains {
                        counts,
                        eligible,
                        min,
                    }
                });
                if !domains.eligible[n as usize] {
                    continue;
                }
                let here = domains.counts.get(&own).copied().unwrap_or(0);
                let skew = i64::from(here) - i64::from(domains.min);
                if skew > i64::from(c.max_skew) {
                    out.push(Violation {
                        kind: ViolationKind::TopologySpread,
                        node: n,
                        pod: Some(p),
                        detail: format!(
                            "skew {skew} > maxSkew {} on {} ({} here, {} in the emptiest domain)",
                            c.max_skew, c.topology_key, here, domains.min
                        ),
                    });
                }
            }
        }
    }
}
