//! InterPodAffinity: required pod affinity and anti-affinity filter a node; preferred terms score
//! it. Both sides count: the incoming pod's terms over the pods already placed, and the placed
//! pods' terms over the incoming pod (symmetry), as kube-scheduler's `interpodaffinity` plugin.
//!
//! Filter, in upstream's order:
//! 1. Affinity: the node must have every required term's topology key, and each term's domain
//!    (the node's value of the key) must hold a placed pod that matches *all* the required terms.
//!    The first pod of a group that wants to be near its own kind may go anywhere with the keys:
//!    when no placed pod matches the terms at all and the pod matches them itself.
//! 2. Anti-affinity: no placed pod selected by a required anti-affinity term in the node's domain.
//! 3. Symmetry: a placed pod whose required anti-affinity term selects the incoming pod forbids its
//!    own domain of that term's key.
//!
//! Score: for each placed pod, the weights of the incoming pod's preferred affinity terms it
//! matches (minus those of preferred anti-affinity terms), plus the weights of the placed pod's
//! preferred terms that select the incoming pod (affinity adds, anti-affinity subtracts), plus
//! `hardPodAffinityWeight` for each of its required affinity terms that does — credited to every
//! node in the placed pod's domain, then min–max scaled to 0..100 over the feasible nodes.
//!
//! A cycle does not scan the placed pods: it reads the snapshot's [`pod_index`] for the
//! candidates of the pod's own terms and for the distinct terms of other pods that can select it,
//! and asks the cluster state which of their pods are placed.
//!
//! Namespaces: a term selects pods in its `namespaces`, or in its own pod's namespace when that
//! list is empty and `namespaceSelector` is null. The snapshot has no Namespace objects, so an
//! empty `namespaceSelector` (`{}`) selects every namespace and a non-empty one selects none
//! beyond `namespaces` (upstream would resolve it against the namespaces' labels).
//!
//! `matchLabelKeys` / `mismatchLabelKeys` are merged into the selector with the owning pod's label
//! values (`key In (v)` / `key NotIn (v)`), which is what the API server does when the pod is
//! created; for pods read from a cluster the selector already holds them and merging again
//! changes nothing.

use serde::Deserialize;

use crate::error::ConfigError;
use crate::intern::Sym;
use crate::model::affinity::PodAffinity;
use crate::schedule::framework::{
    Cycle, CycleData, FilterPlugin, PreFilter, PreScore, Reason, ScorePlugin, MAX_NODE_SCORE,
};
use std::cell::RefCell;
use std::sync::Arc;

use crate::schedule::pod_index::{placed, AffinityTerm, PodIndex, TermUse, Topology};
use crate::snapshot::NodeId;

/// `InterPodAffinityArgs`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct InterPodAffinityArgs {
    pub kind: Option<String>,
    pub api_version: Option<String>,
    /// Score weight of an existing pod's *required* affinity term that selects the incoming pod
    /// (0..100, default 1).
    pub hard_pod_affinity_weight: i32,
    /// Skip scoring pods without preferred terms, instead of scoring them by the existing pods'
    /// terms.
    pub ignore_preferred_terms_of_existing_pods: bool,
}

impl Default for InterPodAffinityArgs {
    fn default() -> Self {
        InterPodAffinityArgs {
            kind: None,
            api_version: None,
            hard_pod_affinity_weight: 1,
            ignore_preferred_terms_of_existing_pods: false,
        }
    }
}

pub struct InterPodAffinity {
    hard_weight: i64,
    ignore_existing_preferred: bool,
}

impl InterPodAffinity {
    pub fn new(args: InterPodAffinityArgs) -> Result<Self, ConfigError> {
        let w = args.hard_pod_affinity_weight;
        if !(0..=100).contains(&w) {
            return Err(ConfigError::at(
                "hardPodAffinityWeight",
                format!("Invalid value: {w}: not in valid range [0, 100]"),
            ));
        }
        Ok(InterPodAffinity {
            hard_weight: i64::from(w),
            ignore_existing_preferred: args.ignore_preferred_terms_of_existing_pods,
        })
    }
}

impl Default for InterPodAffinity {
    fn default() -> Self {
        InterPodAffinity::new(InterPodAffinityArgs::default()).expect("valid defaults")
    }
}

fn required(a: Option<&PodAffinity>) -> &[crate::model::affinity::PodAffinityTerm] {
    a.map_or(&[], |a| a.required.as_slice())
}

// ---------------------------------------------------------------------------------------------
// Filter

const AFFINITY: u32 = 0;
const ANTI_AFFINITY: u32 = 1;
const EXISTING_ANTI_AFFINITY: u32 = 2;

/// Values per topology domain for the keys a cycle's terms name, in arrays indexed by each key's
/// domain numbers ([`Topology`]) so a node's value is two loads, not a label search and a hash.
struct DomainMap {
    by_key: Vec<(Sym, Arc<Topology>, DomainValues)>,
}

impl DomainMap {
    fn new() -> Self {
        DomainMap { by_key: Vec::new() }
    }

    /// Adds `v` to node `n`'s domain of `t`'s key; nothing if `n` lacks the key (a key appears in
    /// the map only once something was added under it).
    fn add(&mut self, cx: &Cycle, index: &PodIndex, t: &AffinityTerm, n: NodeId, v: i64) {
        let Some(key) = t.key() else { return };
        let i = match self.by_key.iter().position(|(k, _, _)| *k == key) {
            Some(i) => i,
            None => {
                let topology = index.topology(cx.snap, Some(key));
                if topology.domain(n).is_none() {
                    return;
                }
                let values = DomainValues::zeroed(topology.domains());
                self.by_key.push((key, topology, values));
                self.by_key.len() - 1
            }
        };
        let (_, topology, values) = &mut self.by_key[i];
        if let Some(d) = topology.domain(n) {
            values.add(d, v);
        }
    }

    /// Node `n`'s value under `key` (0 if nothing was added there).
    fn get(&self, key: Option<Sym>, n: NodeId) -> i64 {
        key.and_then(|key| self.by_key.iter().find(|(k, _, _)| *k == key))
            .and_then(|(_, topology, values)| topology.domain(n).map(|d| values.get(d)))
            .unwrap_or_default()
    }

    fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }
}

/// One key's values per domain. A hostname key has as many domains as there are nodes and a cycle
/// writes a few of them: the arrays are kept per thread for later cycles, and only the entries
/// written are cleared, not the whole array zeroed anew.
struct DomainValues {
    values: Vec<i64>,
    /// The domains written (some maybe more than once).
    written: Vec<u32>,
}

thread_local! {
    /// Arrays given back, all 0, with their (empty) lists of written domains.
    static SPARE: RefCell<Vec<(Vec<i64>, Vec<u32>)>> = const { RefCell::new(Vec::new()) };
}

impl DomainValues {
    /// Arrays kept per thread: a cycle uses a few keys.
    const SPARES: usize = 8;

    fn zeroed(domains: usize) -> Self {
        let (mut values, written) = SPARE
            .with_borrow_mut(|spare| spare.pop())
            .unwrap_or_default();
        // Every entry is 0: cleared when given back, or new.
        values.resize(domains, 0);
        DomainValues { values, written }
    }

    fn add(&mut self, d: u32, v: i64) {
        let value = &mut self.values[d as usize];
        if *value == 0 {
            self.written.push(d);
        }
        *value += v;
    }

    fn get(&self, d: u32) -> i64 {
        self.values[d as usize]
    }
}

impl Drop for DomainValues {
    fn drop(&mut self) {
        for &d in &self.written {
            self.values[d as usize] = 0;
        }
        self.written.clear();
        let arrays = (
            std::mem::take(&mut self.values),
            std::mem::take(&mut self.written),
        );
        // (Dropped instead while the thread's storage is torn down.)
        let _ = SPARE.try_with(|spare| {
            if let Ok(mut spare) = spare.try_borrow_mut() {
                if spare.len() < Self::SPARES {
                    spare.push(arrays);
                }
            }
        });
    }
}

struct FilterState {
    affinity: Vec<AffinityTerm>,
    /// The nodes' domains of each required affinity term's key.
    affinity_topologies: Vec<Arc<Topology>>,
    anti_affinity: Vec<AffinityTerm>,
    /// Per domain: placed pods matching all of the required affinity terms.
    affinity_counts: DomainMap,
    /// The pod matches all its own required affinity terms.
    affinity_self: bool,
    /// Per domain: placed pods selected by a required anti-affinity term.
    anti_domains: DomainMap,
    /// Per domain: placed pods whose required anti-affinity selects the incoming pod.
    existing_domains: DomainMap,
}

impl FilterPlugin for InterPodAffinity {
    fn name(&self) -> &'static str {
        "InterPodAffinity"
    }

    fn pre_filter(&self, cx: &Cycle) -> PreFilter {
        let snap = cx.snap;
        let p = cx.pod;
        let aff = snap.pods.affinity[cx.p()].as_deref();
        let terms = |which: Option<&PodAffinity>| -> Vec<AffinityTerm> {
            required(which)
                .iter()
                .map(|t| AffinityTerm::new(snap, p, t))
                .collect()
        };
        let affinity = terms(aff.and_then(|a| a.pod_affinity.as_ref()));
        let anti_affinity = terms(aff.and_then(|a| a.pod_anti_affinity.as_ref()));
        let index = cx.state.pod_index();

        // Symmetry: the distinct required anti-affinity terms that select this pod, and where
        // their placed carriers are.
        let mut existing_domains = DomainMap::new();
        for (term, (), owners) in index.required_anti_affinity.selecting(snap, p) {
            if !term.matches(snap, p) {
                continue;
            }
            for &q in owners {
                if let Some(n) = placed(cx, q) {
                    existing_domains.add(cx, &index, term, n, 1);
                }
            }
        }
        if existing_domains.is_empty() && affinity.is_empty() && anti_affinity.is_empty() {
            return PreFilter::Skip;
        }

        // Affinity counts pods that match every term: take the candidates of the most selective.
        let mut affinity_counts = DomainMap::new();
        if let Some(lists) = affinity
            .iter()
            .map(|t| index.term_candidates(t))
            .min_by_key(|lists| lists.iter().map(|l| l.len()).sum::<usize>())
        {
            for &q in lists.iter().copied().flatten() {
                let Some(n) = placed(cx, q) else { continue };
                if affinity.iter().all(|t| t.matches(snap, q)) {
                    for t in &affinity {
                        affinity_counts.add(cx, &index, t, n, 1);
                    }
                }
            }
        }
        let mut anti_domains = DomainMap::new();
        for t in &anti_affinity {
            for &q in index.term_candidates(t).into_iter().flatten() {
                if let Some(n) = placed(cx, q) {
                    if anti_domains.get(t.key(), n) == 0 && t.matches(snap, q) {
                        anti_domains.add(cx, &index, t, n, 1);
                    }
                }
            }
        }
        let affinity_self = !affinity.is_empty() && affinity.iter().all(|t| t.matches(snap, p));
        let affinity_topologies = affinity
            .iter()
            .map(|t| index.topology(snap, t.key()))
            .collect();
        PreFilter::Run(Some(Arc::new(FilterState {
            affinity,
            affinity_topologies,
            anti_affinity,
            affinity_counts,
            affinity_self,
            anti_domains,
            existing_domains,
        })))
    }

    fn filter(&self, _: &Cycle, data: &CycleData, node: NodeId) -> Result<(), u32> {
        let s = data
            .as_ref()
            .and_then(|d| d.downcast_ref::<FilterState>())
            .expect("pre_filter");
        let mut pods_exist = true;
        for (t, topology) in s.affinity.iter().zip(&s.affinity_topologies) {
            // Every topology key must be on the node.
            if topology.domain(node).is_none() {
                return Err(AFFINITY);
            }
            if s.affinity_counts.get(t.key(), node) == 0 {
                pods_exist = false;
            }
        }
        // The first pod of a group that wants its own kind nearby: nobody matches yet.
        let first_of_group = s.affinity_counts.is_empty() && s.affinity_self;
        if !(pods_exist || first_of_group) {
            return Err(AFFINITY);
        }
        if !s.anti_domains.is_empty()
            && s.anti_affinity
                .iter()
                .any(|t| s.anti_domains.get(t.key(), node) > 0)
        {
            return Err(ANTI_AFFINITY);
        }
        if s.existing_domains
            .by_key
            .iter()
            .any(|(_, topology, counts)| topology.domain(node).is_some_and(|d| counts.get(d) > 0))
        {
            return Err(EXISTING_ANTI_AFFINITY);
        }
        Ok(())
    }

    fn reasons(&self, _: &Cycle, _: &CycleData, _: NodeId, code: u32, out: &mut Vec<Reason>) {
        out.push(
            match code {
                AFFINITY => "node(s) didn't match pod affinity rules",
                ANTI_AFFINITY => "node(s) didn't match pod anti-affinity rules",
                _ => "node(s) didn't satisfy existing pods anti-affinity rules",
            }
            .into(),
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Score

impl ScorePlugin for InterPodAffinity {
    fn name(&self) -> &'static str {
        "InterPodAffinity"
    }

    fn pre_score(&self, cx: &Cycle, _: &[NodeId]) -> PreScore {
        let snap = cx.snap;
        let p = cx.pod;
        let aff = snap.pods.affinity[cx.p()].as_deref();
        let weighted = |which: Option<&PodAffinity>, sign: i64| -> Vec<(AffinityTerm, i64)> {
            which.map_or(Vec::new(), |a| {
                a.preferred
                    .iter()
                    .map(|w| {
                        let t = AffinityTerm::new(snap, p, &w.pod_affinity_term);
                        (t, sign * i64::from(w.weight))
                    })
                    .collect()
            })
        };
        let mut preferred = weighted(aff.and_then(|a| a.pod_affinity.as_ref()), 1);
        preferred.extend(weighted(aff.and_then(|a| a.pod_anti_affinity.as_ref()), -1));
        if self.ignore_existing_preferred && preferred.is_empty() {
            return PreScore::Skip;
        }
        let index = cx.state.pod_index();
        // Per domain: the summed weights credited to it.
        let mut state = DomainMap::new();
        // The incoming pod's preferences: +weight (affinity) or −weight (anti-affinity) to the
        // domain of every placed pod a term selects.
        for (t, weight) in &preferred {
            for &q in index.term_candidates(t).into_iter().flatten() {
                if let Some(n) = placed(cx, q) {
                    if t.matches(snap, q) {
                        state.add(cx, &index, t, n, *weight);
                    }
                }
            }
        }
        // Symmetry: placed pods' terms that select the incoming pod credit their own domains.
        for (t, how, owners) in index.scoring.selecting(snap, p) {
            let weight = match how {
                TermUse::Required if self.hard_weight > 0 => self.hard_weight,
                TermUse::Required => continue,
                TermUse::Preferred(w) => i64::from(w),
                TermUse::PreferredAnti(w) => -i64::from(w),
            };
            if !t.matches(snap, p) {
                continue;
            }
            for &q in owners {
                if let Some(n) = placed(cx, q) {
                    state.add(cx, &index, t, n, weight);
                }
            }
        }
        if state.is_empty() {
            return PreScore::Skip;
        }
        PreScore::Run(Some(Arc::new(state)))
    }

    fn score(&self, _: &Cycle, data: &CycleData, node: NodeId) -> i64 {
        score_state(data).score(node)
    }

    fn score_all(&self, _: &Cycle, data: &CycleData, nodes: &[NodeId], out: &mut [i64]) {
        let s = score_state(data);
        for (o, &n) in out.iter_mut().zip(nodes) {
            *o = s.score(n);
        }
    }

    fn normalize(&self, _: &Cycle, _: &CycleData, scores: &mut [i64]) {
        normalize_min_max(scores);
    }
}

fn score_state(data: &CycleData) -> &DomainMap {
    data.as_ref()
        .and_then(|d| d.downcast_ref::<DomainMap>())
        .expect("pre_score")
}

impl DomainMap {
    /// A node's score: the weights credited to its domains of every key.
    fn score(&self, n: NodeId) -> i64 {
        self.by_key
            .iter()
            .filter_map(|(_, topology, weights)| topology.domain(n).map(|d| weights.get(d)))
            .sum()
    }
}

/// Upstream's InterPodAffinity NormalizeScore: `100 * (s - min) / (max - min)` in floating point,
/// truncated; all scores equal → all 0.
pub fn normalize_min_max(scores: &mut [i64]) {
    let (Some(&min), Some(&max)) = (scores.iter().min(), scores.iter().max()) else {
        return;
    };
    let diff = max - min;
    for s in scores.iter_mut() {
        // Most nodes are in no domain a term credits, so at one end: the ends need no division
        // (`diff / diff` is exactly 1 in floating point too).
        *s = if diff == 0 || *s == min {
            0
        } else if *s == max {
            MAX_NODE_SCORE
        } else {
            (MAX_NODE_SCORE as f64 * ((*s - min) as f64 / diff as f64)) as i64
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn min_max_normalisation_like_upstream() {
        let mut s = [-3, 0, 7];
        normalize_min_max(&mut s);
        // 100 * 3/10 = 30, 100 * 10/10 = 100.
        assert_eq!(s, [0, 30, 100]);
        let mut s = [5, 5];
        normalize_min_max(&mut s);
        assert_eq!(s, [0, 0]);
        let mut s = [0, 1, 3];
        normalize_min_max(&mut s);
        // 33.33 truncates to 33.
        assert_eq!(s, [0, 33, 100]);
    }

    #[test]
    fn args() {
        let a: InterPodAffinityArgs = serde_json::from_str("{}").unwrap();
        assert_eq!(a.hard_pod_affinity_weight, 1);
        let a: InterPodAffinityArgs = serde_json::from_str(
            r#"{"kind":"InterPodAffinityArgs","hardPodAffinityWeight":0,"ignorePreferredTermsOfExistingPods":true}"#,
        )
        .unwrap();
        assert!(InterPodAffinity::new(a).is_ok());
        let e = serde_json::from_str::<InterPodAffinityArgs>(r#"{"hardPodAffinityWeigth":2}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field `hardPodAffinityWeigth`"), "{e}");
        let a: InterPodAffinityArgs =
            serde_json::from_str(r#"{"hardPodAffinityWeight":101}"#).unwrap();
        let e = InterPodAffinity::new(a).err().unwrap().to_string();
        assert!(e.contains("not in valid range [0, 100]"), "{e}");
    }
}
