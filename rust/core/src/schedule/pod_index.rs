//! What the inter-pod plugins (InterPodAffinity, PodTopologySpread) look pods up by, built once
//! per snapshot: pods per label, namespace and controller, and the distinct pod affinity terms
//! pods carry. A cycle then reads the candidates a selector can match, or the terms that can
//! select the incoming pod, and asks the cluster state only which of those pods are placed —
//! instead of scanning every placed pod, as upstream does once per cycle.
//!
//! The index depends on the snapshot alone (its pods, and for the memos of node constraints its
//! nodes), never on the placement, so it stays valid as a batch binds pods. The cluster state
//! builds it on first use ([`crate::schedule::state::ClusterState::pod_index`]).

use std::any::Any;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

use crate::hash::{IdMap, IdSet};
use crate::intern::Sym;
use crate::model::affinity::{Affinity, PodAffinityTerm};
use crate::model::selector::InternedSelector;
use crate::schedule::framework::Cycle;
use crate::snapshot::{NodeId, PodId, Snapshot};

// ---------------------------------------------------------------------------------------------
// Pod affinity terms.

/// A pod (anti-)affinity term interned, with the namespaces and `matchLabelKeys` of the pod that
/// carries it resolved (upstream's `AffinityTerm` after the namespace selector was merged in).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct AffinityTerm {
    /// `None`: a null label selector, which selects nothing.
    selector: Option<InternedSelector>,
    /// Sorted.
    namespaces: Vec<Sym>,
    /// An empty `namespaceSelector`: every namespace.
    all_namespaces: bool,
    /// `None`: no node has the key.
    key: Option<Sym>,
}

impl AffinityTerm {
    /// `t` as written on pod `owner`.
    pub(crate) fn new(snap: &Snapshot, owner: PodId, t: &PodAffinityTerm) -> AffinityTerm {
        let mut term =
            AffinityTerm::without_label_keys(snap, snap.pods.namespace[owner as usize], t);
        if let Some(s) = &mut term.selector {
            s.merge_label_keys(
                &snap.symbols,
                &snap.pods.labels[owner as usize],
                &t.match_label_keys,
                &t.mismatch_label_keys,
            );
        }
        term
    }

    /// `t` as written on a pod of namespace `owner_ns`, its `matchLabelKeys` and
    /// `mismatchLabelKeys` left out: the label selector alone.
    pub(crate) fn without_label_keys(
        snap: &Snapshot,
        owner_ns: Sym,
        t: &PodAffinityTerm,
    ) -> AffinityTerm {
        let symbols = &snap.symbols;
        let selector = t
            .label_selector
            .as_ref()
            .map(|sel| InternedSelector::new(sel, symbols));
        let mut namespaces: Vec<Sym> = if t.namespaces.is_empty() && t.namespace_selector.is_none()
        {
            vec![owner_ns]
        } else {
            t.namespaces.iter().filter_map(|n| symbols.get(n)).collect()
        };
        namespaces.sort_unstable();
        namespaces.dedup();
        AffinityTerm {
            selector,
            namespaces,
            all_namespaces: t.namespace_selector.as_ref().is_some_and(|s| s.is_empty()),
            key: symbols.get(&t.topology_key),
        }
    }

    /// Whether the term selects pod `q` (upstream `AffinityTerm.Matches`).
    pub(crate) fn matches(&self, snap: &Snapshot, q: PodId) -> bool {
        let Some(selector) = &self.selector else {
            return false;
        };
        let q = q as usize;
        (self.all_namespaces || self.namespaces.contains(&snap.pods.namespace[q]))
            && selector.matches(&snap.pods.labels[q])
    }

    /// The topology key; `None` if no node has it.
    pub(crate) fn key(&self) -> Option<Sym> {
        self.key
    }

    /// The namespaces it selects in: `None` for all.
    fn namespace_scope(&self) -> Option<&[Sym]> {
        (!self.all_namespaces).then_some(self.namespaces.as_slice())
    }
}

/// How a placed pod's term scores the pods it selects (upstream `processExistingPod`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum TermUse {
    /// A required affinity term: `hardPodAffinityWeight`.
    Required,
    Preferred(i32),
    PreferredAnti(i32),
}

/// Distinct terms with the pods that carry them (replicas share theirs), found from the labels of
/// a pod they may select.
pub(crate) struct TermIndex<U> {
    entries: Vec<(AffinityTerm, U, Vec<PodId>)>,
    /// Entries by a label a selected pod must have: one value of one of their `In` requirements.
    by_label: IdMap<(Sym, Sym), Vec<u32>>,
    /// Entries without an `In` requirement: tried for every pod.
    unkeyed: Vec<u32>,
}

/// Collects a [`TermIndex`]'s distinct terms, each with the pods that carry it, in order.
struct TermIndexBuilder<U> {
    ids: IdMap<(AffinityTerm, U), u32>,
    entries: Vec<(AffinityTerm, U, Vec<PodId>)>,
}

impl<U: Copy + Eq + Hash> TermIndexBuilder<U> {
    fn new() -> Self {
        TermIndexBuilder {
            ids: IdMap::default(),
            entries: Vec::new(),
        }
    }

    /// The entry of `term` used as `how`; `None` if the term can select no pod.
    fn entry(&mut self, term: AffinityTerm, how: U) -> Option<u32> {
        let selector = term.selector.as_ref()?;
        // An `In` requirement no label can satisfy: selects nothing either.
        if selector
            .in_requirements()
            .any(|(k, values)| k.is_none() || values.is_empty())
        {
            return None;
        }
        let key = (term, how);
        if let Some(&id) = self.ids.get(&key) {
            return Some(id);
        }
        let id = self.entries.len() as u32;
        self.entries.push((key.0.clone(), how, Vec::new()));
        self.ids.insert(key, id);
        Some(id)
    }

    fn carried_by(&mut self, id: u32, owner: PodId) {
        self.entries[id as usize].2.push(owner);
    }

    fn build(self) -> TermIndex<U> {
        let entries = self.entries;
        let mut by_label: IdMap<(Sym, Sym), Vec<u32>> = IdMap::default();
        let mut unkeyed = Vec::new();
        for (id, (term, _, _)) in entries.iter().enumerate() {
            let selector = term
                .selector
                .as_ref()
                .expect("entry kept only selecting terms");
            // The requirement with the fewest values keeps the lists short.
            match selector.in_requirements().min_by_key(|(_, v)| v.len()) {
                Some((Some(key), values)) => {
                    for &v in values {
                        by_label.entry((key, v)).or_default().push(id as u32);
                    }
                }
                _ => unkeyed.push(id as u32),
            }
        }
        TermIndex {
            entries,
            by_label,
            unkeyed,
        }
    }
}

impl<U: Copy> TermIndex<U> {
    /// The terms that may select pod `p` (each at most once; check with
    /// [`AffinityTerm::matches`]), with their use and carriers.
    pub(crate) fn selecting<'a>(
        &'a self,
        snap: &'a Snapshot,
        p: PodId,
    ) -> impl Iterator<Item = (&'a AffinityTerm, U, &'a [PodId])> + 'a {
        // A pod has one value per key, so each keyed term is reached through one label at most.
        snap.pods.labels[p as usize]
            .iter()
            .filter_map(|kv| self.by_label.get(kv))
            .flatten()
            .chain(&self.unkeyed)
            .map(|&id| {
                let (t, how, owners) = &self.entries[id as usize];
                (t, *how, owners.as_slice())
            })
    }
}

/// The term entries a pod carries, in the order of its terms (repeats kept).
struct Carried {
    anti: Vec<u32>,
    scoring: Vec<u32>,
    /// Whether some term read the pod's labels (`matchLabelKeys`, `mismatchLabelKeys`), so that
    /// the entries are its own.
    reads_labels: bool,
}

impl Carried {
    /// Pod `q`'s terms (from its affinity `a`), entered in the indexes being built.
    fn of(
        snap: &Snapshot,
        q: PodId,
        a: &Affinity,
        anti: &mut TermIndexBuilder<()>,
        scoring: &mut TermIndexBuilder<TermUse>,
    ) -> Carried {
        let mut reads_labels = false;
        let mut term = |t: &PodAffinityTerm| {
            reads_labels |= !t.match_label_keys.is_empty() || !t.mismatch_label_keys.is_empty();
            AffinityTerm::new(snap, q, t)
        };
        let mut anti_ids = Vec::new();
        let mut scoring_ids = Vec::new();
        if let Some(pa) = &a.pod_affinity {
            for t in &pa.required {
                scoring_ids.extend(scoring.entry(term(t), TermUse::Required));
            }
            for w in &pa.preferred {
                let how = TermUse::Preferred(w.weight);
                scoring_ids.extend(scoring.entry(term(&w.pod_affinity_term), how));
            }
        }
        if let Some(pa) = &a.pod_anti_affinity {
            for t in &pa.required {
                anti_ids.extend(anti.entry(term(t), ()));
            }
            for w in &pa.preferred {
                let how = TermUse::PreferredAnti(w.weight);
                scoring_ids.extend(scoring.entry(term(&w.pod_affinity_term), how));
            }
        }
        Carried {
            anti: anti_ids,
            scoring: scoring_ids,
            reads_labels,
        }
    }

    /// Records that pod `q` carries these entries.
    fn carry(
        &self,
        q: PodId,
        anti: &mut TermIndexBuilder<()>,
        scoring: &mut TermIndexBuilder<TermUse>,
    ) {
        for &id in &self.anti {
            anti.carried_by(id, q);
        }
        for &id in &self.scoring {
            scoring.carried_by(id, q);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The index.

/// A value kept per controller, with the pod it was made from.
type Kept = (PodId, Arc<dyn Any + Send + Sync>);

/// What a plugin keeps per controller (see [`PodIndex::per_controller`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum MemoTag {
    /// PodTopologySpread's own constraints, `DoNotSchedule` and `ScheduleAnyway`.
    HardSpread,
    SoftSpread,
    /// PodTopologySpread's system default constraints, `DoNotSchedule` (`hard`) or
    /// `ScheduleAnyway`: the same for every pod that gets them (see [`PodIndex::shared`]).
    SpreadSystemDefaults {
        hard: bool,
    },
}

pub(crate) struct PodIndex {
    /// Every pod of the snapshot.
    lists: PodLists,
    /// Per pod, its controller (an index into `by_controller`), if any.
    controller: Vec<Option<u32>>,
    by_controller: Vec<Vec<PodId>>,
    /// Required anti-affinity terms: where they keep the pods they select away from.
    pub(crate) required_anti_affinity: TermIndex<()>,
    /// Terms through which pods score the pods they select.
    pub(crate) scoring: TermIndex<TermUse>,
    /// Which nodes a pod's nodeSelector and required node affinity admit, per distinct set of
    /// them (the replicas of a workload share theirs), filled as pods ask.
    node_affinity: Mutex<IdMap<u32, Arc<Vec<bool>>>>,
    /// Per set of topology spread constraints (see [`PodIndex::spread_domains`]), the eligible
    /// domains of each.
    spread_domains: Mutex<IdMap<SpreadKey, Arc<Vec<IdSet<Sym>>>>>,
    /// Per topology key, the nodes' domains (see [`PodIndex::topology`]), filled as pods ask.
    topologies: Mutex<IdMap<Option<Sym>, Arc<Topology>>>,
    /// See [`PodIndex::per_controller`].
    per_controller: Mutex<IdMap<(u32, MemoTag), Kept>>,
}

/// Some pods of a snapshot (all of them, or those a placement binds) by namespace and by label, in
/// pod order: the lists a selector's candidates are read from.
pub(crate) struct PodLists {
    all: Vec<PodId>,
    by_namespace: IdMap<Sym, Vec<PodId>>,
    by_label: LabelLists,
}

impl PodLists {
    /// The lists of `pods` (ascending).
    pub(crate) fn build(snap: &Snapshot, pods: Vec<PodId>) -> PodLists {
        let mut by_namespace: IdMap<Sym, Vec<PodId>> = IdMap::default();
        // Per label of each pod in turn, the label's number: the lists are filled once their
        // lengths are known, rather than grown one pod at a time.
        let mut label_ids: IdMap<(Sym, Sym), u32> = IdMap::default();
        let mut pod_labels: Vec<u32> = Vec::new();
        for &q in &pods {
            let qi = q as usize;
            by_namespace
                .entry(snap.pods.namespace[qi])
                .or_default()
                .push(q);
            for &kv in snap.pods.labels[qi].iter() {
                let next = label_ids.len() as u32;
                pod_labels.push(*label_ids.entry(kv).or_insert(next));
            }
        }
        let by_label = LabelLists::new(snap, &pods, label_ids, &pod_labels);
        PodLists {
            all: pods,
            by_namespace,
            by_label,
        }
    }

    /// Lists that hold every pod `selector` can match in `namespaces` (`None`: any): the pods
    /// with one of the values of its most selective `In` requirement, else the namespaces' pods.
    /// They may hold pods it does not match; the lists are disjoint.
    pub(crate) fn candidates(
        &self,
        selector: &InternedSelector,
        namespaces: Option<&[Sym]>,
    ) -> Vec<&[PodId]> {
        let mut best: Option<(usize, Vec<&[PodId]>)> = None;
        for (key, values) in selector.in_requirements() {
            let Some(key) = key else {
                return Vec::new();
            };
            let lists: Vec<&[PodId]> = values
                .iter()
                .filter_map(|&v| self.by_label.get((key, v)))
                .collect();
            let size = lists.iter().map(|l| l.len()).sum();
            if best.as_ref().is_none_or(|(s, _)| size < *s) {
                best = Some((size, lists));
            }
        }
        if let Some((_, lists)) = best {
            return lists;
        }
        match namespaces {
            Some(set) => set
                .iter()
                .filter_map(|ns| self.by_namespace.get(ns))
                .map(Vec::as_slice)
                .collect(),
            None => vec![self.all.as_slice()],
        }
    }

    /// Candidates for a term (see [`PodLists::candidates`]).
    pub(crate) fn term_candidates(&self, term: &AffinityTerm) -> Vec<&[PodId]> {
        match &term.selector {
            None => Vec::new(),
            Some(s) => self.candidates(s, term.namespace_scope()),
        }
    }
}

/// The pods with each label, in pod order.
struct LabelLists {
    /// Per label, its number.
    ids: IdMap<(Sym, Sym), u32>,
    /// Label `i`'s pods are `pods[start[i]..start[i + 1]]`.
    start: Vec<u32>,
    pods: Vec<PodId>,
}

impl LabelLists {
    /// `pod_labels` holds the numbers (in `ids`) of the labels of `of`'s pods, pod after pod.
    fn new(
        snap: &Snapshot,
        of: &[PodId],
        ids: IdMap<(Sym, Sym), u32>,
        pod_labels: &[u32],
    ) -> LabelLists {
        let mut start = vec![0u32; ids.len() + 1];
        for &l in pod_labels {
            start[l as usize + 1] += 1;
        }
        for i in 1..start.len() {
            start[i] += start[i - 1];
        }
        let mut fill = start.clone();
        let mut pods = vec![0; pod_labels.len()];
        let mut next = pod_labels.iter();
        for &q in of {
            let labels = &snap.pods.labels[q as usize];
            for &l in next.by_ref().take(labels.len()) {
                pods[fill[l as usize] as usize] = q;
                fill[l as usize] += 1;
            }
        }
        LabelLists { ids, start, pods }
    }

    fn get(&self, kv: (Sym, Sym)) -> Option<&[PodId]> {
        let i = *self.ids.get(&kv)? as usize;
        Some(&self.pods[self.start[i] as usize..self.start[i + 1] as usize])
    }
}

impl PodIndex {
    pub(crate) fn build(snap: &Snapshot) -> PodIndex {
        let pods = &snap.pods;
        let mut controllers: IdMap<(Sym, &str), u32> = IdMap::default();
        let mut controller = Vec::with_capacity(pods.len());
        let mut by_controller: Vec<Vec<PodId>> = Vec::new();
        let mut anti = TermIndexBuilder::new();
        let mut scoring = TermIndexBuilder::new();
        // The last pod whose terms do not read its labels, with the entries they carry.
        let mut last: Option<(PodId, Carried)> = None;
        for q in 0..pods.len() as PodId {
            let qi = q as usize;
            // One object has one uid; inputs without uids fall back to the name.
            let owner = |q: usize| {
                pods.owner[q].as_ref().map(|o| {
                    (
                        o.kind,
                        if o.uid.is_empty() { &o.name } else { &o.uid }.as_str(),
                    )
                })
            };
            let own = owner(qi);
            // Replicas are mostly listed together: the pod before is likely to share the owner.
            let c = if qi > 0 && own.is_some() && owner(qi - 1) == own {
                controller[qi - 1]
            } else {
                own.map(|key| {
                    *controllers.entry(key).or_insert_with(|| {
                        by_controller.push(Vec::new());
                        (by_controller.len() - 1) as u32
                    })
                })
            };
            controller.push(c);
            if let Some(c) = controller[qi] {
                by_controller[c as usize].push(q);
            }
            let Some(a) = pods.affinity[qi].as_ref() else {
                continue;
            };
            if a.pod_affinity.is_none() && a.pod_anti_affinity.is_none() {
                continue;
            }
            // Replicas are mostly listed together and carry equal terms: comparing with the pod
            // before is cheaper than resolving the terms again.
            let reuse = last.as_ref().is_some_and(|&(r, _)| {
                let ri = r as usize;
                let b = pods.affinity[ri].as_ref().expect("has terms");
                pods.namespace[ri] == pods.namespace[qi]
                    && (Arc::ptr_eq(a, b)
                        || (a.pod_affinity == b.pod_affinity
                            && a.pod_anti_affinity == b.pod_anti_affinity))
            });
            if !reuse {
                let carried = Carried::of(snap, q, a, &mut anti, &mut scoring);
                if carried.reads_labels {
                    last = None;
                    carried.carry(q, &mut anti, &mut scoring);
                    continue;
                }
                last = Some((q, carried));
            }
            let (_, carried) = last.as_ref().expect("set above");
            carried.carry(q, &mut anti, &mut scoring);
        }
        PodIndex {
            lists: PodLists::build(snap, (0..pods.len() as PodId).collect()),
            controller,
            by_controller,
            required_anti_affinity: anti.build(),
            scoring: scoring.build(),
            node_affinity: Mutex::default(),
            spread_domains: Mutex::default(),
            per_controller: Mutex::default(),
            topologies: Mutex::new(IdMap::default()),
        }
    }

    /// The nodes' domains of topology key `key` (`None`: a key no node has), built on first use:
    /// the keys are the few that constraints name.
    pub(crate) fn topology(&self, snap: &Snapshot, key: Option<Sym>) -> Arc<Topology> {
        let lock = || self.topologies.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(hit) = lock().get(&key) {
            return hit.clone();
        }
        let built = Arc::new(Topology::build(snap, key));
        lock().entry(key).or_insert(built).clone()
    }

    /// The eligible domains of a set of spread constraints, `key` naming everything they depend
    /// on (the topology keys and the node constraints honoured); `compute` on first use.
    /// What `compute` makes for pod `p`, kept per controller and `tag` for the next replica:
    /// replicas share a template, so a plugin pays once for what it derives from it. A kept
    /// value made from pod `q` is reused only if `alike(q)` (what `compute` reads is equal).
    pub(crate) fn per_controller<T: Any + Send + Sync>(
        &self,
        p: PodId,
        tag: MemoTag,
        alike: impl Fn(PodId) -> bool,
        compute: impl FnOnce() -> T,
    ) -> Arc<T> {
        let Some(c) = self.controller[p as usize] else {
            return Arc::new(compute());
        };
        let lock = || {
            self.per_controller
                .lock()
                .unwrap_or_else(|e| e.into_inner())
        };
        let kept = lock().get(&(c, tag)).cloned();
        if let Some((q, value)) = kept {
            if let Ok(value) = value.downcast::<T>() {
                if alike(q) {
                    return value;
                }
            }
        }
        let value = Arc::new(compute());
        lock().insert((c, tag), (p, value.clone()));
        value
    }

    /// What `compute` makes, kept under `tag` for every pod: for values that depend on no pod.
    pub(crate) fn shared<T: Any + Send + Sync>(
        &self,
        tag: MemoTag,
        compute: impl FnOnce() -> T,
    ) -> Arc<T> {
        const NO_CONTROLLER: u32 = u32::MAX;
        let lock = || {
            self.per_controller
                .lock()
                .unwrap_or_else(|e| e.into_inner())
        };
        let kept = lock().get(&(NO_CONTROLLER, tag)).cloned();
        if let Some(value) = kept.and_then(|(_, value)| value.downcast::<T>().ok()) {
            return value;
        }
        let value = Arc::new(compute());
        lock().insert((NO_CONTROLLER, tag), (0, value.clone()));
        value
    }

    pub(crate) fn spread_domains(
        &self,
        key: SpreadKey,
        compute: impl FnOnce() -> Vec<IdSet<Sym>>,
    ) -> Arc<Vec<IdSet<Sym>>> {
        memo(&self.spread_domains, key, compute)
    }

    /// Per node, whether pod `p`'s nodeSelector and required node affinity admit it (`None`: the
    /// pod has neither, so every node) — the NodeAffinity filter's rule, evaluated once per
    /// distinct set of constraints.
    pub(crate) fn node_affinity(&self, snap: &Snapshot, p: PodId) -> Option<Arc<Vec<bool>>> {
        let key = snap.node_constraints(p)?;
        Some(memo(&self.node_affinity, key, || {
            snap.node_affinity_admitted(p)
        }))
    }

    /// See [`PodLists::candidates`].
    pub(crate) fn candidates(
        &self,
        selector: &InternedSelector,
        namespaces: Option<&[Sym]>,
    ) -> Vec<&[PodId]> {
        self.lists.candidates(selector, namespaces)
    }

    /// See [`PodLists::term_candidates`].
    pub(crate) fn term_candidates(&self, term: &AffinityTerm) -> Vec<&[PodId]> {
        self.lists.term_candidates(term)
    }

    /// The pods sharing `p`'s controller (`p` included), none if it has no controller.
    pub(crate) fn same_controller(&self, p: PodId) -> &[PodId] {
        self.controller[p as usize].map_or(&[], |c| &self.by_controller[c as usize])
    }
}

/// The nodes grouped by their value of one topology key, each value numbered densely (in order
/// of its first node), so per-cycle counts per domain are arrays indexed by number rather than
/// maps keyed by value.
pub(crate) struct Topology {
    /// Per node, its domain's number; [`Topology::UNLABELED`] if the node lacks the key.
    domain: Vec<u32>,
    /// How many distinct values the nodes have.
    domains: usize,
    /// Whether every node has the key.
    complete: bool,
    /// Where an unlabeled node scores: upstream reads a missing label as "", so with the nodes
    /// valued "" if there are any, else in a domain of its own numbered `domains`.
    scored_unlabeled: u32,
}

impl Topology {
    const UNLABELED: u32 = u32::MAX;

    pub(crate) fn build(snap: &Snapshot, key: Option<Sym>) -> Topology {
        let mut numbers: IdMap<Sym, u32> = IdMap::default();
        let domain: Vec<u32> = (0..snap.nodes.len() as NodeId)
            .map(|n| match key.and_then(|k| snap.node_label_sym(n, k)) {
                None => Topology::UNLABELED,
                Some(v) => {
                    let next = numbers.len() as u32;
                    *numbers.entry(v).or_insert(next)
                }
            })
            .collect();
        let domains = numbers.len();
        let complete = !domain.contains(&Topology::UNLABELED);
        let scored_unlabeled = snap
            .symbols
            .get("")
            .and_then(|empty| numbers.get(&empty).copied())
            .unwrap_or(domains as u32);
        Topology {
            domain,
            domains,
            complete,
            scored_unlabeled,
        }
    }

    /// Node `n`'s domain; `None` if it lacks the key.
    pub(crate) fn domain(&self, n: NodeId) -> Option<u32> {
        let d = self.domain[n as usize];
        (d != Topology::UNLABELED).then_some(d)
    }

    /// Whether every node has the key.
    pub(crate) fn complete(&self) -> bool {
        self.complete
    }

    /// How many domains the nodes with the key form.
    pub(crate) fn domains(&self) -> usize {
        self.domains
    }

    /// Node `n`'s domain for scoring, where a node without the key counts as valued "" (see
    /// `scored_unlabeled`): below [`Topology::scored_domains`].
    pub(crate) fn scored_domain(&self, n: NodeId) -> u32 {
        self.domain(n).unwrap_or(self.scored_unlabeled)
    }

    /// Bound on [`Topology::scored_domain`]: the domains and the one of unlabeled nodes.
    pub(crate) fn scored_domains(&self) -> usize {
        self.domains + 1
    }
}

/// The topology keys of a set of spread constraints with whether each honours node affinity, and
/// the pod's node constraints (see [`PodIndex::node_constraints`]).
pub(crate) type SpreadKey = (Vec<(Option<Sym>, bool)>, Option<u32>);

/// What [`number_pods`] gives pods without a key.
pub(crate) const UNNUMBERED: u32 = u32::MAX;

/// Numbers `pods` by `key`: equal keys, equal numbers (from 0, in order of first appearance);
/// [`UNNUMBERED`] where `key` is `None`.
pub(crate) fn number_pods<'s, K: Hash + Eq>(
    snap: &'s Snapshot,
    pods: impl Iterator<Item = usize>,
    key: impl Fn(usize) -> Option<K>,
) -> Vec<u32> {
    let mut ids: IdMap<K, u32> = IdMap::default();
    // Replicas share their controller's template: comparing with the controller's first pod is
    // cheaper than hashing the key again.
    let mut first_of: IdMap<(Sym, Sym, &'s str), (usize, u32)> = IdMap::default();
    pods.map(|p| {
        let Some(k) = key(p) else {
            return UNNUMBERED;
        };
        let owner = snap.pods.owner[p]
            .as_ref()
            .map(|o| (snap.pods.namespace[p], o.kind, o.name.as_str()));
        if let Some(&(q, id)) = owner.as_ref().and_then(|o| first_of.get(o)) {
            if key(q).as_ref() == Some(&k) {
                return id;
            }
        }
        let next = ids.len() as u32;
        let id = *ids.entry(k).or_insert(next);
        if let Some(o) = owner {
            first_of.entry(o).or_insert((p, id));
        }
        id
    })
    .collect()
}

/// `memo[key]`, computed (outside the lock) on first use. Distinct keys are few — the workloads'
/// constraint sets — and the map is emptied if they are not, to bound the memory.
fn memo<K: Hash + Eq, T>(
    memo: &Mutex<IdMap<K, Arc<T>>>,
    key: K,
    compute: impl FnOnce() -> T,
) -> Arc<T> {
    const KEEP: usize = 4096;
    let lock = || memo.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(hit) = lock().get(&key) {
        return hit.clone();
    }
    let value = Arc::new(compute());
    let mut map = lock();
    if map.len() >= KEEP {
        map.clear();
    }
    map.insert(key, value.clone());
    value
}

/// The node of pod `q` when the cluster state has it placed and active (bound in the snapshot or
/// earlier in this batch) and it is not the pod being scheduled.
pub(crate) fn placed(cx: &Cycle, q: PodId) -> Option<NodeId> {
    let n = cx.state.node[q as usize]?;
    (q != cx.pod && cx.snap.is_active(q)).then_some(n)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A snapshot of `pods`: (namespace/name, labels JSON members, spec members).
    pub(crate) fn snapshot(pods: &[(&str, &str, &str)]) -> Snapshot {
        let items: Vec<String> = pods
            .iter()
            .map(|(key, labels, spec)| {
                let (ns, name) = key.split_once('/').unwrap();
                format!(
                    r#"{{"kind":"Pod","metadata":{{"name":"{name}","namespace":"{ns}","labels":{{{labels}}}}},
                        "spec":{{{spec}"containers":[{{"name":"c"}}]}}}}"#
                )
            })
            .collect();
        let doc = format!(r#"{{"kind":"List","items":[{}]}}"#, items.join(","));
        crate::snapshot::parse_documents(&[doc.as_bytes()]).unwrap()
    }

    #[test]
    fn topology_numbers_values_and_scores_unlabeled_nodes_as_empty() {
        let node = |name: &str, zone: Option<&str>| {
            let labels = zone.map_or(String::new(), |z| format!(r#""zone":"{z}""#));
            format!(r#"{{"kind":"Node","metadata":{{"name":"{name}","labels":{{{labels}}}}}}}"#)
        };
        let snap = |nodes: &[String]| {
            let doc = format!(r#"{{"kind":"List","items":[{}]}}"#, nodes.join(","));
            crate::snapshot::parse_documents(&[doc.as_bytes()]).unwrap()
        };
        let zone = |s: &Snapshot| Topology::build(s, s.symbols.get("zone"));
        let s = snap(&[
            node("a1", Some("a")),
            node("b1", Some("b")),
            node("bare", None),
            node("a2", Some("a")),
        ]);
        let t = zone(&s);
        assert_eq!(
            (0..4).map(|n| t.domain(n)).collect::<Vec<_>>(),
            [Some(0), Some(1), None, Some(0)]
        );
        assert_eq!(t.domains(), 2);
        // Unlabeled nodes score in a domain of their own.
        assert_eq!(t.scored_domain(2), 2);
        assert_eq!(t.scored_domains(), 3);
        // ... unless some node's value is "": upstream reads a missing label as "".
        let s = snap(&[
            node("bare", None),
            node("empty", Some("")),
            node("a", Some("a")),
        ]);
        let t = zone(&s);
        assert_eq!(
            (0..3).map(|n| t.domain(n)).collect::<Vec<_>>(),
            [None, Some(0), Some(1)]
        );
        assert_eq!(t.scored_domain(0), 0);
        // A key no node has: every node unlabeled.
        let t = Topology::build(&s, None);
        assert_eq!((t.domains(), t.scored_domain(2)), (0, 0));
    }

    #[test]
    fn per_controller_values_are_reused_only_for_alike_replicas() {
        let pod = |name: &str, owner: &str| {
            let owner = if owner.is_empty() {
                String::new()
            } else {
                format!(
                    r#","ownerReferences":[{{"apiVersion":"apps/v1","kind":"ReplicaSet","name":"{owner}","uid":"{owner}","controller":true}}]"#
                )
            };
            format!(
                r#"{{"kind":"Pod","metadata":{{"name":"{name}","namespace":"a"{owner}}},"spec":{{"containers":[{{"name":"c"}}]}}}}"#
            )
        };
        let items = [
            pod("p0", "rs"),
            pod("p1", "rs"),
            pod("p2", "rs"),
            pod("bare", ""),
        ];
        let doc = format!(r#"{{"kind":"List","items":[{}]}}"#, items.join(","));
        let snap = crate::snapshot::parse_documents(&[doc.as_bytes()]).unwrap();
        let index = PodIndex::build(&snap);
        let made = std::cell::Cell::new(0);
        let make = |p: PodId| {
            made.set(made.get() + 1);
            p
        };
        let tag = MemoTag::HardSpread;
        assert_eq!(*index.per_controller(0, tag, |_| true, || make(0)), 0);
        // A replica alike the pod the value was made from reuses it.
        assert_eq!(*index.per_controller(1, tag, |q| q == 0, || make(1)), 0);
        assert_eq!(made.get(), 1);
        // One that is not gets its own, which the next replica may reuse.
        assert_eq!(*index.per_controller(2, tag, |_| false, || make(2)), 2);
        assert_eq!(*index.per_controller(1, tag, |q| q == 2, || make(1)), 2);
        assert_eq!(made.get(), 2);
        // Another tag keeps its own; a pod without a controller is never kept.
        assert_eq!(
            *index.per_controller(1, MemoTag::SoftSpread, |_| true, || make(1)),
            1
        );
        assert_eq!(*index.per_controller(3, tag, |_| true, || make(3)), 3);
        assert_eq!(*index.per_controller(3, tag, |_| true, || make(3)), 3);
        assert_eq!(made.get(), 5);
    }

    #[test]
    fn candidates_hold_every_match() {
        let s = snapshot(&[
            ("a/web-1", r#""app":"web","tier":"fe""#, ""),
            ("a/web-2", r#""app":"web""#, ""),
            ("b/web-3", r#""app":"web","tier":"fe""#, ""),
            ("a/db-1", r#""app":"db""#, ""),
            ("a/other", "", ""),
        ]);
        let index = PodIndex::build(&s);
        let selectors = [
            r#"{"matchLabels":{"app":"web","tier":"fe"}}"#,
            r#"{"matchExpressions":[{"key":"app","operator":"In","values":["web","db"]}]}"#,
            r#"{"matchExpressions":[{"key":"app","operator":"NotIn","values":["web"]}]}"#,
            r#"{"matchExpressions":[{"key":"tier","operator":"Exists"}]}"#,
            r#"{"matchExpressions":[{"key":"app","operator":"In","values":["nope"]}]}"#,
            r#"{}"#,
        ];
        let a = s.symbols.get("a").unwrap();
        for json in selectors {
            let sel = InternedSelector::new(&serde_json::from_str(json).unwrap(), &s.symbols);
            for namespaces in [None, Some(&[a][..])] {
                let mut got: Vec<PodId> = index
                    .candidates(&sel, namespaces)
                    .concat()
                    .into_iter()
                    .filter(|&q| {
                        sel.matches(&s.pods.labels[q as usize])
                            && namespaces
                                .is_none_or(|ns| ns.contains(&s.pods.namespace[q as usize]))
                    })
                    .collect();
                got.sort();
                let want: Vec<PodId> = (0..s.pods.len() as PodId)
                    .filter(|&q| {
                        sel.matches(&s.pods.labels[q as usize])
                            && namespaces
                                .is_none_or(|ns| ns.contains(&s.pods.namespace[q as usize]))
                    })
                    .collect();
                assert_eq!(got, want, "{json} in {namespaces:?}");
            }
        }
    }

    #[test]
    fn terms_select_in_their_namespaces() {
        let s = snapshot(&[
            ("prod/db", r#""app":"db""#, ""),
            ("dev/db", r#""app":"db""#, ""),
            ("prod/web", r#""app":"web""#, ""),
        ]);
        let prod = s.symbols.get("prod").unwrap();
        let selected = |json: &str| -> Vec<PodId> {
            let t: PodAffinityTerm = serde_json::from_str(json).unwrap();
            let term = AffinityTerm::without_label_keys(&s, prod, &t);
            (0..3).filter(|&q| term.matches(&s, q)).collect()
        };
        let db = r#""topologyKey":"zone","labelSelector":{"matchLabels":{"app":"db"}}"#;
        // By default, the namespace of the pod that carries the term.
        assert_eq!(selected(&format!("{{{db}}}")), [0]);
        assert_eq!(selected(&format!(r#"{{{db},"namespaces":["dev"]}}"#)), [1]);
        // An empty namespaceSelector: every namespace; another matches no namespace without
        // namespace objects, besides those listed.
        assert_eq!(
            selected(&format!(r#"{{{db},"namespaceSelector":{{}}}}"#)),
            [0, 1]
        );
        let labelled = r#""namespaceSelector":{"matchLabels":{"team":"a"}}"#;
        assert!(selected(&format!("{{{db},{labelled}}}")).is_empty());
        assert_eq!(
            selected(&format!(r#"{{{db},{labelled},"namespaces":["dev"]}}"#)),
            [1]
        );
        // A null label selector selects nothing.
        assert!(selected(r#"{"topologyKey":"zone"}"#).is_empty());
    }

    #[test]
    fn terms_are_shared_by_replicas_and_found_from_the_selected_pods_labels() {
        let anti = r#""affinity":{"podAntiAffinity":{"requiredDuringSchedulingIgnoredDuringExecution":[
            {"topologyKey":"kubernetes.io/hostname","labelSelector":{"matchLabels":{"app":"web"}}}]}},"#;
        let exists = r#""affinity":{"podAntiAffinity":{"requiredDuringSchedulingIgnoredDuringExecution":[
            {"topologyKey":"kubernetes.io/hostname","labelSelector":{"matchExpressions":[{"key":"app","operator":"Exists"}]}}]}},"#;
        let s = snapshot(&[
            ("a/web-1", r#""app":"web""#, anti),
            ("a/web-2", r#""app":"web""#, anti),
            ("b/web-3", r#""app":"web""#, anti),
            ("a/guard", r#""app":"guard""#, exists),
            ("a/db", r#""app":"db""#, ""),
        ]);
        let index = PodIndex::build(&s);
        // web-1 and web-2 carry one term (namespace a), web-3 another (namespace b).
        assert_eq!(index.required_anti_affinity.entries.len(), 3);
        let found = |p: PodId| -> Vec<Vec<PodId>> {
            let mut v: Vec<Vec<PodId>> = index
                .required_anti_affinity
                .selecting(&s, p)
                .filter(|(t, _, _)| t.matches(&s, p))
                .map(|(_, _, owners)| owners.to_vec())
                .collect();
            v.sort();
            v
        };
        assert_eq!(found(0), [vec![0, 1], vec![3]]);
        assert_eq!(found(2), [vec![2]]);
        assert_eq!(found(4), [vec![3]]);
    }

    #[test]
    fn terms_reading_the_carriers_labels_are_resolved_per_pod() {
        let keyed = r#""affinity":{"podAntiAffinity":{"requiredDuringSchedulingIgnoredDuringExecution":[
            {"topologyKey":"kubernetes.io/hostname","labelSelector":{"matchLabels":{"app":"web"}},
             "matchLabelKeys":["version"]}]}},"#;
        let s = snapshot(&[
            ("a/web-1", r#""app":"web","version":"v1""#, keyed),
            ("a/web-2", r#""app":"web","version":"v2""#, keyed),
            ("a/web-3", r#""app":"web","version":"v2""#, keyed),
        ]);
        let index = PodIndex::build(&s);
        let owners: Vec<Vec<PodId>> = index
            .required_anti_affinity
            .entries
            .iter()
            .map(|(_, _, owners)| owners.clone())
            .collect();
        assert_eq!(owners, [vec![0], vec![1, 2]]);
    }
}
