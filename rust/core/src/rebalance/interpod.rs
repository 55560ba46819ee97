//! The inter-pod rules a rebalance must keep, as counting data for the optimisation model: the
//! rules whose outcome depends on where movable pods go (required pod affinity and anti-affinity,
//! `DoNotSchedule` topology spread, host ports), each with the nodes' topology domains, the pods
//! that carry it and the pods it counts — classes for movable pods, counts per domain for pinned
//! ones. The matching is the placement plugins' own (their selectors, namespaces, eligible
//! domains); the model in Python only adds up pods per domain.
//!
//! What a rule asks of a placement, for every domain `d` with a pod that carries it (the
//! carriers' count `O(d)`, the counted pods' count `M(d)`, both over pods on nodes of the domain):
//! - anti-affinity and host ports: `M(d) <= s`, where `s` is 1 when the carriers count
//!   themselves (they match their own term; every user of a port counts itself);
//! - affinity: `M(d) >= 1 + s`, unless `s` and no other pod matches anywhere (upstream lets the
//!   first pod of a group in);
//! - spread: `M(d) - min <= maxSkew`, `min` the fewest counted pods in an eligible domain, or 0
//!   with fewer eligible domains than `minDomains`. Carriers on ineligible nodes are not held to
//!   it.
//!
//! Anti-affinity needs no separate symmetric rule: a pinned pod's term is a rule of its own,
//! carried by that pod, and counts the movable pods it selects.

use std::sync::{Arc, Mutex};

use rayon::prelude::*;

use super::pins::Pin;
use super::problem::Class;
use crate::hash::IdMap;
use crate::intern::Sym;
use crate::model::pod::{HostPort, Protocol};
use crate::schedule::framework::Cycle;
use crate::schedule::plugins::pod_topology_spread::{HardSpread, PodTopologySpread};
use crate::schedule::pod_index::{AffinityTerm, PodIndex};
use crate::schedule::state::ClusterState;
use crate::snapshot::{NodeId, PodId, Snapshot};

/// What a rule asks (see the module's documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RuleKind {
    Affinity,
    AntiAffinity,
    Spread,
    HostPort,
}

impl RuleKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RuleKind::Affinity => "affinity",
            RuleKind::AntiAffinity => "anti-affinity",
            RuleKind::Spread => "spread",
            RuleKind::HostPort => "host-port",
        }
    }
}

/// The nodes' domains of a rule: per node its domain, numbered densely from 0, or -1 where the
/// node is in none (it lacks the key, or is not eligible for a spread constraint).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Domains {
    pub domain: Vec<i32>,
    /// How many domains there are.
    pub count: u32,
}

/// One rule, for every pod that carries it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub kind: RuleKind,
    /// Index into [`InterPod::domains`].
    pub domains: usize,
    /// Classes whose pods carry the rule, ascending.
    pub owners: Vec<u32>,
    /// Pinned pods that carry it, as (domain, how many), by domain.
    pub fixed_owners: Vec<(u32, u32)>,
    /// Classes whose pods it counts, ascending.
    pub counted: Vec<u32>,
    /// Pinned pods it counts, as (domain, how many), by domain.
    pub fixed_counted: Vec<(u32, u32)>,
    /// The carriers are among the pods counted (so a pod does not clash with itself).
    pub counts_itself: bool,
    /// Spread: `maxSkew` and `minDomains`; 0 otherwise.
    pub max_skew: u32,
    pub min_domains: u32,
    /// What it is, for messages: the topology key, selector or port.
    pub name: String,
}

/// The rules of a rebalance problem, with the distinct domain arrays they use.
#[derive(Clone, Debug, Default)]
pub struct InterPod {
    pub domains: Vec<Domains>,
    pub rules: Vec<Rule>,
}

/// Who a bound pod is to the model.
struct Who<'a> {
    snap: &'a Snapshot,
    /// Per pod, its class, or `u32::MAX` for pods in none (pinned, unbound, inactive).
    class_of: Vec<u32>,
    pinned: Vec<bool>,
}

impl Who<'_> {
    fn node(&self, q: PodId) -> Option<NodeId> {
        self.snap.current.node[q as usize]
    }

    /// Adds up `matching` candidates: their classes, and the pinned ones per domain.
    fn count<'l>(
        &self,
        lists: impl IntoIterator<Item = &'l [PodId]>,
        domain: &[i32],
        matching: impl Fn(PodId) -> bool,
    ) -> (Vec<u32>, Vec<(u32, u32)>) {
        let mut classes = Vec::new();
        let mut fixed: IdMap<u32, u32> = IdMap::default();
        for &q in lists.into_iter().flatten() {
            let c = self.class_of[q as usize];
            if (c == u32::MAX && !self.pinned[q as usize]) || !matching(q) {
                continue;
            }
            if c != u32::MAX {
                classes.push(c);
            } else if let Some(d) = self.node(q).map(|n| domain[n as usize]) {
                if d >= 0 {
                    *fixed.entry(d as u32).or_insert(0) += 1;
                }
            }
        }
        classes.sort_unstable();
        classes.dedup();
        (classes, sorted(fixed))
    }
}

fn sorted(counts: IdMap<u32, u32>) -> Vec<(u32, u32)> {
    let mut out: Vec<(u32, u32)> = counts.into_iter().collect();
    out.sort_unstable();
    out
}

/// Pods that carry the same rules: a movable class, or pinned pods alike in every field that
/// makes pods interchangeable.
#[derive(Clone)]
enum Carriers {
    Class(u32),
    Pinned(Vec<PodId>),
}

/// A rule before its counted pods are looked up.
struct Draft {
    kind: RuleKind,
    domains: Arc<Domains>,
    carriers: Vec<Carriers>,
    counts_itself: bool,
    max_skew: u32,
    min_domains: u32,
    name: String,
    counter: Counter,
}

/// What a rule counts.
enum Counter {
    Term(AffinityTerm),
    Spread(HardSpread),
    /// Pods using this port of the protocol on this address, or on every address (`0.0.0.0`).
    Port(Protocol, i32, String),
}

/// Per node its domain under `domain(n)`, renumbered densely in node order. The values are small
/// (topology numbers, node ids), so the renumbering is an array, not a map: this runs once per
/// rule over every node.
fn number(nodes: usize, domain: impl Fn(NodeId) -> Option<u32>) -> Domains {
    let mut numbers: Vec<i32> = Vec::new();
    let mut count = 0;
    let domain = (0..nodes as NodeId)
        .map(|n| match domain(n) {
            None => -1,
            Some(d) => {
                let d = d as usize;
                if d >= numbers.len() {
                    numbers.resize(d + 1, -1);
                }
                if numbers[d] < 0 {
                    numbers[d] = count;
                    count += 1;
                }
                numbers[d]
            }
        })
        .collect();
    Domains {
        domain,
        count: count as u32,
    }
}

/// Which nodes' domains: those of a topology key, or each node its own (host ports).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Of {
    Key(Option<Sym>),
    Node,
}

/// The domain arrays of the drafts, each kept once: thousands of rules use a few topology keys,
/// and every array is as long as the cluster.
#[derive(Default)]
struct SharedDomains {
    by_key: Mutex<IdMap<Of, Arc<Domains>>>,
    by_value: Mutex<IdMap<Arc<Domains>, ()>>,
}

impl SharedDomains {
    fn of(&self, of: Of, build: impl FnOnce() -> Domains) -> Arc<Domains> {
        let lock = || self.by_key.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(hit) = lock().get(&of) {
            return hit.clone();
        }
        let built = self.intern(build());
        lock().entry(of).or_insert(built).clone()
    }

    fn intern(&self, domains: Domains) -> Arc<Domains> {
        let mut seen = self.by_value.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((hit, _)) = seen.get_key_value(&domains) {
            return hit.clone();
        }
        let domains = Arc::new(domains);
        seen.insert(domains.clone(), ());
        domains
    }
}

fn clashes(used: &HostPort, protocol: Protocol, port: i32, ip: &str) -> bool {
    used.protocol == protocol && used.port == port && (used.ip == ip || used.ip == "0.0.0.0")
}

/// The rules of the pods carrying any (`carriers`: the movable classes by index, pinned pods by
/// group), drafted from a representative of each.
fn drafts(
    snap: &Snapshot,
    state: &ClusterState,
    index: &PodIndex,
    shared: &SharedDomains,
    rep: PodId,
    carriers: Carriers,
) -> Vec<Draft> {
    let p = rep as usize;
    let nodes = snap.nodes.len();
    let mut out: Vec<Draft> = Vec::new();
    let draft = |kind, domains, counts_itself, counter, name: String| Draft {
        kind,
        domains,
        carriers: vec![carriers.clone()],
        counts_itself,
        max_skew: 0,
        min_domains: 0,
        name,
        counter,
    };
    if let Some(a) = snap.pods.affinity[p].as_deref() {
        for (kind, which) in [
            (RuleKind::Affinity, &a.pod_affinity),
            (RuleKind::AntiAffinity, &a.pod_anti_affinity),
        ] {
            for t in which.iter().flat_map(|t| &t.required) {
                let term = AffinityTerm::new(snap, rep, t);
                let domains = shared.of(Of::Key(term.key()), || {
                    let topology = index.topology(snap, term.key());
                    number(nodes, |n| topology.domain(n))
                });
                let itself = term.matches(snap, rep);
                let name = format!("{} on {}", kind.as_str(), t.topology_key);
                out.push(draft(kind, domains, itself, Counter::Term(term), name));
            }
        }
    }
    let cx = Cycle::new(state, rep);
    for hs in PodTopologySpread::default().hard_constraints(&cx) {
        let domains = shared.intern(number(nodes, |n| hs.domain[n as usize]));
        let (max_skew, min_domains) = (hs.max_skew as u32, hs.min_domains.max(0) as u32);
        let itself = hs.counts(snap, rep);
        let mut d = draft(
            RuleKind::Spread,
            domains,
            itself,
            Counter::Spread(hs),
            "spread".into(),
        );
        (d.max_skew, d.min_domains) = (max_skew, min_domains);
        out.push(d);
    }
    for hp in &snap.pods.host_ports[p] {
        let name = format!("host port {}/{:?} on {}", hp.port, hp.protocol, hp.ip);
        let counter = Counter::Port(hp.protocol, hp.port, hp.ip.clone());
        out.push(draft(
            RuleKind::HostPort,
            shared.of(Of::Node, || number(nodes, Some)),
            true,
            counter,
            name,
        ));
    }
    out
}

/// The inter-pod rules of the problem with `classes` and `pinned` pods; `state` holds the pinned
/// pods.
pub fn inter_pod(
    snap: &Snapshot,
    state: &ClusterState,
    classes: &[Class],
    pinned: &[(PodId, Pin)],
) -> InterPod {
    let index = state.pod_index();
    let mut who = Who {
        snap,
        class_of: vec![u32::MAX; snap.pods.len()],
        pinned: vec![false; snap.pods.len()],
    };
    for (c, class) in classes.iter().enumerate() {
        for &p in &class.pods {
            who.class_of[p as usize] = c as u32;
        }
    }
    for &(p, _) in pinned {
        who.pinned[p as usize] = true;
    }
    // Pinned carriers, grouped as the classes group movable pods.
    let mut groups: IdMap<super::problem::ClassKey, Vec<PodId>> = IdMap::default();
    let mut order = Vec::new();
    for &(p, _) in pinned {
        if super::problem::interacts(snap, p) {
            let key = super::problem::class_key(snap, p);
            let members = groups.entry(key).or_insert_with(|| {
                order.push(p);
                Vec::new()
            });
            members.push(p);
        }
    }
    let mut work: Vec<(PodId, Carriers)> = classes
        .iter()
        .enumerate()
        .filter(|(_, c)| c.interacts)
        .map(|(c, class)| (class.pods[0], Carriers::Class(c as u32)))
        .collect();
    for rep in order {
        let key = super::problem::class_key(snap, rep);
        let members = groups.remove(&key).expect("grouped above");
        work.push((rep, Carriers::Pinned(members)));
    }
    let shared = SharedDomains::default();
    let drafted: Vec<Vec<Draft>> = work
        .into_par_iter()
        .map(|(rep, carriers)| drafts(snap, state, &index, &shared, rep, carriers))
        .collect();
    // Carriers of one affinity term (the same selector, namespaces and key) or of one host port
    // share its rule; spread constraints stay one rule per carrier group.
    let mut merged: Vec<Draft> = Vec::new();
    #[derive(PartialEq, Eq, Hash)]
    enum Same {
        Term(RuleKind, AffinityTerm, bool),
        Port(Protocol, i32, String),
    }
    let mut seen: IdMap<Same, usize> = IdMap::default();
    for d in drafted.into_iter().flatten() {
        let same = match &d.counter {
            Counter::Term(term) => Some(Same::Term(d.kind, term.clone(), d.counts_itself)),
            Counter::Port(protocol, port, ip) => Some(Same::Port(*protocol, *port, ip.clone())),
            Counter::Spread(_) => None,
        };
        if let Some(same) = same {
            if let Some(&at) = seen.get(&same) {
                merged[at].carriers.extend(d.carriers);
                continue;
            }
            seen.insert(same, merged.len());
        }
        merged.push(d);
    }
    let ported: Vec<(PodId, &HostPort)> = (0..snap.pods.len() as PodId)
        .filter(|&q| who.class_of[q as usize] != u32::MAX || who.pinned[q as usize])
        .flat_map(|q| snap.pods.host_ports[q as usize].iter().map(move |h| (q, h)))
        .collect();
    let built: Vec<(Arc<Domains>, Rule)> = merged
        .into_par_iter()
        .map(|d| {
            let domain = &d.domains.domain;
            let (counted, fixed_counted) = match &d.counter {
                Counter::Term(term) => who.count(index.term_candidates(term), domain, |q| {
                    term.matches(snap, q)
                }),
                Counter::Spread(hs) => {
                    who.count(hs.candidates(&index), domain, |q| hs.counts(snap, q))
                }
                Counter::Port(protocol, port, ip) => {
                    let mut users: Vec<PodId> = ported
                        .iter()
                        .filter(|(_, h)| clashes(h, *protocol, *port, ip))
                        .map(|&(q, _)| q)
                        .collect();
                    users.dedup();
                    who.count([users.as_slice()], domain, |_| true)
                }
            };
            let mut owners = Vec::new();
            let mut fixed: IdMap<u32, u32> = IdMap::default();
            for c in &d.carriers {
                match c {
                    Carriers::Class(c) => owners.push(*c),
                    Carriers::Pinned(ps) => {
                        for &q in ps {
                            let n = who.node(q).expect("pinned pods are bound");
                            if domain[n as usize] >= 0 {
                                *fixed.entry(domain[n as usize] as u32).or_insert(0) += 1;
                            }
                        }
                    }
                }
            }
            owners.sort_unstable();
            owners.dedup();
            let rule = Rule {
                kind: d.kind,
                domains: 0,
                owners,
                fixed_owners: sorted(fixed),
                counted,
                fixed_counted,
                counts_itself: d.counts_itself,
                max_skew: d.max_skew,
                min_domains: d.min_domains,
                name: d.name,
            };
            (d.domains, rule)
        })
        .collect();
    // Rules no movable pod takes part in hold or not whatever the plan: left out.
    let mut out = InterPod::default();
    // Equal arrays are one shared array (see `SharedDomains`): numbered by address.
    let mut numbered: IdMap<*const Domains, usize> = IdMap::default();
    for (domains, mut rule) in built {
        if rule.owners.is_empty() && rule.counted.is_empty() {
            continue;
        }
        let next = out.domains.len();
        rule.domains = *numbered.entry(Arc::as_ptr(&domains)).or_insert_with(|| {
            out.domains.push(Domains::clone(&domains));
            next
        });
        out.rules.push(rule);
    }
    out
}
