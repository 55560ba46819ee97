//! The scheduling framework, arranged like kube-scheduler's: per pod a cycle runs PreFilter, then
//! Filter over nodes until enough feasible ones are found, then PreScore, Score and NormalizeScore
//! over those, a weighted sum, and a seeded random choice among the best (selectHost).
//!
//! Plugins are small and named; per-cycle data a plugin computes once lives in the cycle, and the
//! hot per-node calls read it. A filter rejects with a plugin-specific code; reasons are rendered
//! as text only for pods that end up unschedulable.

use std::any::Any;
use std::collections::BTreeMap;
use std::sync::Arc;

use super::cached_walk::{self, Totals, REJECTED};
pub use super::divider::Divider;
use super::state::{ClusterState, UNBOUND};
use crate::hash::{IdHasher, IdMap};
use crate::model::gpu::GpuDemand;
use crate::snapshot::{NodeId, PodId, Snapshot};

/// Highest score a plugin gives a node (`framework.MaxNodeScore`).
pub const MAX_NODE_SCORE: i64 = 100;

/// What one cycle knows about the pod being placed.
pub struct Cycle<'a> {
    pub snap: &'a Snapshot,
    pub state: &'a ClusterState<'a>,
    pub pod: PodId,
    /// Effective request row (resource ids as columns).
    pub request: &'a [i64],
    pub gpu: GpuDemand,
}

impl<'a> Cycle<'a> {
    /// The cycle of pod `pod` against `state`.
    pub fn new(state: &'a ClusterState<'a>, pod: PodId) -> Self {
        let snap = state.snap;
        Cycle {
            snap,
            state,
            pod,
            request: snap.pods.requests.row(pod as usize),
            gpu: snap.pods.gpu[pod as usize],
        }
    }

    pub fn p(&self) -> usize {
        self.pod as usize
    }
}

/// Data a plugin computed for this cycle.
/// Shared, so what a node-local plugin computed for a demand serves every cycle of that demand.
pub type CycleData = Option<Arc<dyn Any + Send + Sync>>;

/// One reason a filter gives for rejecting a node (`Insufficient cpu`); most are fixed texts.
pub type Reason = std::borrow::Cow<'static, str>;

/// Outcome of PreFilter.
#[derive(Clone)]
pub enum PreFilter {
    /// Run the filter, with this plugin's cycle data.
    Run(CycleData),
    /// The plugin has nothing to check for this pod.
    Skip,
    /// No node can take the pod; the message says why.
    Reject(String),
}

pub trait FilterPlugin: Send + Sync {
    fn name(&self) -> &'static str;

    /// The result depends only on the pod's node constraints (nodeSelector, node affinity,
    /// tolerations) and the node's fixed attributes (labels, taints, cordon): the framework then
    /// evaluates it once per group of pods sharing those constraints, not once per pod. A static
    /// plugin's `filter` is called with no cycle data.
    fn is_static(&self) -> bool {
        false
    }

    /// The verdict at a node depends only on the pod's resource demand (effective requests,
    /// scoring requests, GPU demand) and on what the node has given out so far: the framework keeps
    /// it per node for pods with the same demand and recomputes it only on nodes bound to since.
    /// `pre_filter` must then depend on the demand alone, and a node rejected must stay rejected
    /// when more pods are bound to it (as a node with less room left fits no more).
    fn node_local(&self) -> bool {
        false
    }

    fn pre_filter(&self, _cx: &Cycle) -> PreFilter {
        PreFilter::Run(None)
    }

    /// `Err(code)` rejects the node; `code` is the plugin's own, turned into text by `reasons`.
    fn filter(&self, cx: &Cycle, data: &CycleData, node: NodeId) -> Result<(), u32>;

    /// Clears `fits[i]` where `nodes[i]` is rejected (plugins override this for speed: node-local
    /// ones are run over every node that changed since their demand's last cycle).
    fn filter_all(&self, cx: &Cycle, data: &CycleData, nodes: &[NodeId], fits: &mut [bool]) {
        for (ok, &n) in fits.iter_mut().zip(nodes) {
            *ok = *ok && self.filter(cx, data, n).is_ok();
        }
    }

    /// The kube-scheduler-style reasons why `node` was rejected with `code` in this cycle (e.g.
    /// `Insufficient cpu`).
    fn reasons(&self, cx: &Cycle, data: &CycleData, node: NodeId, code: u32, out: &mut Vec<Reason>);

    /// Whether, with this cycle's data, `reasons` depends on `code` alone and not on the node:
    /// a FitError then counts codes over the nodes and asks for reasons once per code.
    fn reasons_by_code(&self, _data: &CycleData) -> bool {
        false
    }
}

/// Outcome of PreScore.
pub enum PreScore {
    Run(CycleData),
    /// The plugin does not score this pod (all nodes get 0 from it).
    Skip,
}

pub trait ScorePlugin: Send + Sync {
    fn name(&self) -> &'static str;

    /// As for filters: the raw score depends only on the pod's node constraints and the node's fixed
    /// attributes, so it is computed once per group of pods (normalisation still runs per cycle).
    fn is_static(&self) -> bool {
        false
    }

    /// As for filters: the score depends only on the pod's resource demand and what the node has
    /// given out, and NormalizeScore leaves it as it is, so the framework keeps the weighted score
    /// per node for pods with the same demand. `pre_score` must then depend on the demand alone
    /// (it is called without nodes).
    fn node_local(&self) -> bool {
        false
    }

    fn pre_score(&self, _cx: &Cycle, _nodes: &[NodeId]) -> PreScore {
        PreScore::Run(None)
    }

    /// A score for one feasible node.
    fn score(&self, cx: &Cycle, data: &CycleData, node: NodeId) -> i64;

    /// Scores for all feasible nodes at once (plugins override this for speed).
    fn score_all(&self, cx: &Cycle, data: &CycleData, nodes: &[NodeId], out: &mut [i64]) {
        for (o, &n) in out.iter_mut().zip(nodes) {
            *o = self.score(cx, data, n);
        }
    }

    /// Rescales the scores of all feasible nodes into [0, MAX_NODE_SCORE] (NormalizeScore).
    fn normalize(&self, _cx: &Cycle, _data: &CycleData, _scores: &mut [i64]) {}

    /// Adds `weight ×` the normalised score of each of `nodes` (the feasible nodes `pre_score`
    /// was given) to `totals`: [`add_weighted_scores`], through `buf`. Plugins whose scores take
    /// few distinct values override it to normalise each value once.
    #[allow(clippy::too_many_arguments)]
    fn add_weighted(
        &self,
        cx: &Cycle,
        data: &CycleData,
        nodes: &[NodeId],
        weight: i64,
        totals: &mut [i64],
        buf: &mut Vec<i64>,
    ) {
        add_weighted_scores(self, cx, data, nodes, weight, totals, buf);
    }

    /// Which GPU devices of the chosen node the pod gets (Reserve), for policies that care (FGD
    /// picks the device that fragments least). `None`: the default, best fit.
    fn choose_devices(&self, _cx: &Cycle, _node: NodeId) -> Option<crate::model::gpu::DeviceMask> {
        None
    }
}

/// `score_all`, `normalize`, then `totals[i] += weight × score[i]` (scores in `buf`).
#[allow(clippy::too_many_arguments)]
pub fn add_weighted_scores<P: ScorePlugin + ?Sized>(
    plugin: &P,
    cx: &Cycle,
    data: &CycleData,
    nodes: &[NodeId],
    weight: i64,
    totals: &mut [i64],
    buf: &mut Vec<i64>,
) {
    buf.clear();
    buf.resize(nodes.len(), 0);
    plugin.score_all(cx, data, nodes, buf);
    plugin.normalize(cx, data, buf);
    for (t, s) in totals.iter_mut().zip(buf.iter()) {
        *t += s * weight;
    }
}

/// `helper.DefaultNormalizeScore`: scale so the highest becomes `MAX_NODE_SCORE` (reversed:
/// the highest becomes 0). All-zero scores stay 0 (or all become 100 when reversed).
pub fn default_normalize(scores: &mut [i64], reverse: bool) {
    let max = scores.iter().copied().max().unwrap_or(0);
    if max == 0 {
        if reverse {
            scores.iter_mut().for_each(|s| *s = MAX_NODE_SCORE);
        }
        return;
    }
    let max = Divider::new(max);
    for s in scores.iter_mut() {
        *s = max.div(MAX_NODE_SCORE * *s);
        if reverse {
            *s = MAX_NODE_SCORE - *s;
        }
    }
}

/// A scheduling profile: filter plugins in order, score plugins with weights.
pub struct Profile {
    pub name: String,
    pub filters: Vec<Box<dyn FilterPlugin>>,
    pub scores: Vec<(Box<dyn ScorePlugin>, i64)>,
    /// kube-scheduler's `percentageOfNodesToScore`: `None` is its adaptive default, 100 scores
    /// every feasible node.
    pub percentage_of_nodes_to_score: Option<u32>,
}

impl Profile {
    /// Whether some plugin's results depend only on the pod's node constraints.
    pub fn has_statics(&self) -> bool {
        self.filters.iter().any(|f| f.is_static()) || self.scores.iter().any(|(s, _)| s.is_static())
    }
}

/// Why a pod could not be placed: reasons counted over nodes, rendered like kube-scheduler's
/// FitError (`0/5000 nodes are available: 4200 Insufficient cpu, 800 node(s) had untolerated
/// taint {gpu: true}.`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FitError {
    pub nodes: usize,
    pub pre_filter: Option<String>,
    pub reasons: BTreeMap<String, usize>,
}

impl std::fmt::Display for FitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "0/{} nodes are available:", self.nodes)?;
        if let Some(msg) = &self.pre_filter {
            write!(f, " {msg}")?;
        }
        // Upstream sorts the "count reason" strings as strings.
        let mut parts: Vec<String> = self
            .reasons
            .iter()
            .map(|(r, n)| format!("{n} {r}"))
            .collect();
        parts.sort();
        if !parts.is_empty() {
            write!(f, " {}", parts.join(", "))?;
        }
        f.write_str(".")
    }
}

/// How many feasible nodes to find before scoring (`numFeasibleNodesToFind`).
pub fn feasible_nodes_to_find(all: usize, percentage: Option<u32>) -> usize {
    const MIN_FEASIBLE: usize = 100;
    if all < MIN_FEASIBLE {
        return all;
    }
    let pct = match percentage {
        Some(p) if p >= 100 => return all,
        Some(p) if p > 0 => p as usize,
        // Adaptive: 50% for small clusters, shrinking by 1% per 125 nodes, never below 5%.
        _ => (50usize.saturating_sub(all / 125)).max(5),
    };
    (all * pct / 100).max(MIN_FEASIBLE)
}

/// A small, fast, seedable generator (SplitMix64) — placement must be reproducible.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in 0..n.
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// selectHost's pick among `n` tied nodes, by index in walk order: one draw when there is a
    /// choice, none for a single node.
    pub fn pick_tie(&mut self, n: u64) -> u64 {
        if n > 1 {
            self.below(n)
        } else {
            0
        }
    }
}

/// Results of the static plugins for one group of pods that share node constraints: per plugin
/// (in profile order) and node, `0` for a pass or `code + 1` for a rejection; per static score
/// plugin, raw scores per node (`None`: the plugin skips these pods, or scores every node alike).
struct Statics {
    filters: Vec<Option<Vec<u32>>>,
    scores: Vec<Option<Option<Vec<i64>>>>,
    /// Positions (in the scheduler's node order) of the nodes every static filter passes.
    passing: Vec<u32>,
    /// FitError reasons counted over the nodes a static filter rejects (made on first use).
    rejected: Option<Vec<(Reason, usize)>>,
}

impl Statics {
    fn compute(profile: &Profile, cx: &Cycle, threads: usize) -> Statics {
        use rayon::prelude::*;
        let n_nodes = cx.snap.nodes.len() as NodeId;
        let none: CycleData = None;
        let verdict =
            |f: &dyn FilterPlugin, n| f.filter(cx, &none, n).map_or_else(|code| code + 1, |_| 0);
        let filters: Vec<Option<Vec<u32>>> = profile
            .filters
            .iter()
            .map(|f| {
                f.is_static().then(|| {
                    if parallel(threads, n_nodes as usize) {
                        (0..n_nodes)
                            .into_par_iter()
                            .map(|n| verdict(f.as_ref(), n))
                            .collect()
                    } else {
                        (0..n_nodes).map(|n| verdict(f.as_ref(), n)).collect()
                    }
                })
            })
            .collect();
        let all: Vec<NodeId> = (0..n_nodes).collect();
        // Positions in the scheduler's node order (see `ClusterState::node_order`).
        let passing = (0..n_nodes)
            .filter(|&pos| {
                let n = cx.state.node_order[pos as usize];
                filters
                    .iter()
                    .flatten()
                    .all(|v: &Vec<u32>| v[n as usize] == 0)
            })
            .collect();
        let scores = profile
            .scores
            .iter()
            .map(|(s, _)| {
                s.is_static().then(|| match s.pre_score(cx, &all) {
                    PreScore::Skip => None,
                    PreScore::Run(data) => {
                        let mut out = vec![0; all.len()];
                        s.score_all(cx, &data, &all, &mut out);
                        // The same raw score on every node normalises to the same score on every
                        // node, which moves all totals alike and never changes the choice.
                        (!out.windows(2).all(|w| w[0] == w[1])).then_some(out)
                    }
                })
            })
            .collect();
        Statics {
            filters,
            scores,
            passing,
            rejected: None,
        }
    }
}

/// How the scheduler chooses among the nodes with the highest total.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum TieBreak {
    /// Uniformly at random among the tied nodes (with the odds of selectHost's reservoir sampling).
    #[default]
    Random,
    /// The node with the lowest `rank[node]`. The FGD paper's simulator runs a kube-scheduler fork
    /// whose selectHost takes the smallest node name, names prefixed with a seeded permutation:
    /// a fixed random node order, which packs where random tie-breaking spreads.
    Rank(Vec<u32>),
}

/// What a pod asks of a node's resources: pods with equal demand get equal answers from the
/// node-local plugins (see [`FilterPlugin::node_local`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Demand {
    request: Vec<i64>,
    nonzero: [i64; 2],
    gpu: GpuDemand,
}

impl Demand {
    fn of(cx: &Cycle) -> Demand {
        Demand {
            request: cx.request.to_vec(),
            nonzero: cx.snap.pods.nonzero[cx.p()],
            gpu: cx.gpu,
        }
    }
}

/// A hash of a demand, cheap enough for every cycle.
fn fingerprint(request: &[i64], nonzero: [i64; 2], gpu: GpuDemand) -> u64 {
    use std::hash::Hasher;
    let mut h = IdHasher::default();
    for &v in request.iter().chain(&nonzero) {
        h.write_u64(v as u64);
    }
    h.write_u64(u64::from(gpu.count) << 32 | u64::from(gpu.milli));
    h.finish()
}

/// Memory for node-local results: a queue interleaves the replicas of many workloads, but they
/// ask for few distinct demands (145 among the 100,400 pods of the benchmark cluster).
const DEMAND_CACHE_BYTES: usize = 64 << 20;
const DEMANDS_KEPT_AT_LEAST: usize = 8;

/// The node-local plugins' results for one demand, per node position, up to date with the first
/// `seen` entries of the cluster's change log (see [`ClusterState::changes`]).
struct DemandCache {
    demand: Demand,
    key: u64,
    last_used: u64,
    /// `None`: nothing computed yet.
    seen: Option<usize>,
    /// PreFilter of the node-local filters, by filter index (`None` for the others), and PreScore
    /// of the node-local score plugins that score the demand: they depend on the demand alone, so
    /// they run once per demand, not once per cycle.
    pre_filters: Vec<Option<PreFilter>>,
    pre_scores: Vec<(usize, CycleData)>,
    /// Weighted sum of the node-local scores, or [`REJECTED`]. Node-local scores are final
    /// (0..=100, weights 1..=100), so a few of them add up to far less than `i32::MAX`; half the
    /// width of a score, the walk reads half the memory.
    total: Totals,
}

impl DemandCache {
    /// Brings the results up to date: recomputes the nodes changed since the last cycle of this
    /// demand, or every node when the cache is new or more changes were logged since than there
    /// are nodes. Up to date, the walk only reads them.
    fn refresh(&mut self, profile: &Profile, cx: &Cycle, scratch: &mut Refresh) {
        let log = &cx.state.changes;
        let order = &cx.state.node_order[..];
        let Refresh {
            positions,
            nodes,
            fits,
            scores,
        } = scratch;
        positions.clear();
        match self.seen {
            Some(seen) if log.len() - seen < order.len() => {
                // A node-local filter that rejected a node rejects it still after more pods were
                // bound there (see `FilterPlugin::node_local`): only a node a pod left, or one
                // not rejected, can have a new result.
                // Written unconditionally and kept by advancing the length: whether a node was
                // rejected is a coin toss to the branch predictor.
                let kept = self.total.as_slice();
                let entries = &log[seen..];
                positions.extend(entries.iter().map(|&entry| entry & !UNBOUND));
                // The loops run over slices: stores into a vector's buffer would otherwise make
                // the compiler reload every vector's length and address at every step.
                let buf = &mut positions[..];
                let mut len = 0;
                for (k, &entry) in entries.iter().enumerate() {
                    let pos = buf[k];
                    buf[len] = pos;
                    len += usize::from(entry & UNBOUND != 0 || kept[pos as usize] != REJECTED);
                }
                positions.truncate(len);
            }
            _ => positions.extend(0..order.len() as u32),
        }
        self.seen = Some(log.len());
        if positions.is_empty() {
            return;
        }
        nodes.clear();
        nodes.extend(positions.iter().map(|&pos| order[pos as usize]));
        fits.clear();
        fits.resize(nodes.len(), true);
        for (i, pre) in self.pre_filters.iter().enumerate() {
            if let Some(PreFilter::Run(data)) = pre {
                profile.filters[i].filter_all(cx, data, nodes, fits);
            }
        }
        // Score only the nodes that passed, packed to the front (without branches: nearly all
        // pass, but which do not is unpredictable).
        let (nodes, fits) = (&mut nodes[..], &fits[..]);
        let mut passed = 0;
        for k in 0..nodes.len() {
            nodes[passed] = nodes[k];
            passed += usize::from(fits[k]);
        }
        // Buffers of at least `passed` entries, not cleared: every entry read is written first.
        let totals = at_least(&mut scores.0, passed);
        let one = at_least(&mut scores.1, passed);
        if self.pre_scores.is_empty() {
            totals.fill(0);
        }
        for (k, (j, data)) in self.pre_scores.iter().enumerate() {
            let (plugin, weight) = &profile.scores[*j];
            // A copy: stores into `totals` could otherwise change it, to the compiler.
            let weight = *weight;
            plugin.score_all(cx, data, &nodes[..passed], one);
            if k == 0 {
                for (t, s) in totals.iter_mut().zip(one.iter()) {
                    *t = weight * s;
                }
            } else {
                for (t, s) in totals.iter_mut().zip(one.iter()) {
                    *t += weight * s;
                }
            }
        }
        self.total.set_all(positions, fits, totals);
    }
}

/// The first `len` entries of `buf`, grown to hold them.
fn at_least(buf: &mut Vec<i64>, len: usize) -> &mut [i64] {
    if buf.len() < len {
        buf.resize(len, 0);
    }
    &mut buf[..len]
}

/// Buffers [`DemandCache::refresh`] reuses from cycle to cycle.
#[derive(Default)]
struct Refresh {
    /// The positions to recompute, and their nodes.
    positions: Vec<u32>,
    nodes: Vec<NodeId>,
    fits: Vec<bool>,
    /// Weighted totals, and one plugin's scores.
    scores: (Vec<i64>, Vec<i64>),
}

/// Places pods one cycle at a time with one profile, keeping kube-scheduler's state between cycles
/// (the rotating start of the node search, the tie-breaking generator) and the static plugins'
/// results per group of pods.
pub struct Scheduler<'p> {
    pub profile: &'p Profile,
    pub rng: Rng,
    /// How equal totals are broken (default: at random, as selectHost).
    pub tie_break: TieBreak,
    /// Threads the work over all nodes is split over (1: none): the static plugins of each new
    /// group of pods, and the FitError reasons of an unschedulable pod. A cycle's own walk and
    /// scoring stay on one thread: a few microseconds of work do not pay for a hand-off. Run inside
    /// a rayon pool of that size; the result does not depend on it.
    pub threads: usize,
    /// Whether a FitError counts the reasons over every node (default); off, it carries none —
    /// for replays that only need to know that a pod did not fit.
    pub explain: bool,
    /// By group: groups are numbered densely from 0 (see [`crate::place::constraint_groups`]).
    statics: Vec<Option<Statics>>,
    demands: Vec<DemandCache>,
    /// The dynamic filters that run at each node walked (kept to reuse its memory).
    other: Vec<usize>,
    refresh: Refresh,
    stretches: Vec<cached_walk::Stretch>,
    /// Demand caches by [`fingerprint`].
    demand_index: IdMap<u64, usize>,
    cycles: u64,
    /// The [`ClusterState::id`] the kept results belong to.
    state: Option<u64>,
}

impl<'p> Scheduler<'p> {
    pub fn new(profile: &'p Profile, seed: u64) -> Self {
        Scheduler {
            profile,
            rng: Rng::new(seed),
            tie_break: TieBreak::Random,
            explain: true,
            threads: 1,
            statics: Default::default(),
            demands: Vec::new(),
            other: Vec::new(),
            refresh: Refresh::default(),
            stretches: Vec::new(),
            demand_index: Default::default(),
            cycles: 0,
            state: None,
        }
    }

    /// The cache for the cycle's demand, made (or recycled from the least recently used) if new.
    fn demand_cache(&mut self, cx: &Cycle) -> usize {
        self.cycles += 1;
        let nonzero = cx.snap.pods.nonzero[cx.p()];
        let key = fingerprint(cx.request, nonzero, cx.gpu);
        let same = |d: &Demand| d.request == cx.request && d.nonzero == nonzero && d.gpu == cx.gpu;
        let at = match self.demand_index.get(&key).copied() {
            Some(at) if same(&self.demands[at].demand) => at,
            found => {
                // A new demand takes a fresh cache while memory allows, else the least recently
                // used one (or that of another demand with the same fingerprint).
                let n = cx.snap.nodes.len();
                let keep = (DEMAND_CACHE_BYTES / (8 * n.max(1))).max(DEMANDS_KEPT_AT_LEAST);
                let at = match found {
                    Some(at) => at,
                    None if self.demands.len() < keep => {
                        self.demands.push(DemandCache {
                            demand: Demand::default(),
                            key,
                            last_used: 0,
                            seen: None,
                            pre_filters: Vec::new(),
                            pre_scores: Vec::new(),
                            total: Totals::new(n),
                        });
                        self.demands.len() - 1
                    }
                    None => (0..self.demands.len())
                        .min_by_key(|&i| self.demands[i].last_used)
                        .expect("caches are kept"),
                };
                let d = &mut self.demands[at];
                if self.demand_index.get(&d.key) == Some(&at) {
                    self.demand_index.remove(&d.key);
                }
                d.key = key;
                d.demand = Demand::of(cx);
                d.seen = None;
                let profile = self.profile;
                d.pre_filters = profile
                    .filters
                    .iter()
                    .map(|f| (f.node_local() && !f.is_static()).then(|| f.pre_filter(cx)))
                    .collect();
                d.pre_scores = local_pre_scores(profile, cx);
                self.demand_index.insert(key, at);
                at
            }
        };
        self.demands[at].last_used = self.cycles;
        at
    }

    /// Filters, scores and selects a node for `cx.pod`; `group` identifies the pods that share its
    /// node constraints (see [`FilterPlugin::is_static`]), numbered densely from 0 as
    /// [`crate::place::constraint_groups`] numbers them.
    ///
    /// `next_start` is where the search for feasible nodes starts (upstream's
    /// `nextStartNodeIndex`, one per scheduler, shared by its profiles); the cycle advances it.
    pub fn place(
        &mut self,
        cx: &Cycle,
        group: u32,
        next_start: &mut usize,
    ) -> Result<NodeId, FitError> {
        let n_nodes = cx.snap.nodes.len();
        let profile = self.profile;
        if self.state != Some(cx.state.id) {
            // Another cluster (or snapshot, numbered in other groups): nothing kept applies.
            self.state = Some(cx.state.id);
            self.statics.clear();
            self.demands.clear();
            self.demand_index.clear();
        }
        let cache = self.demand_cache(cx);
        let mut filter_data = Vec::with_capacity(profile.filters.len());
        for (i, f) in profile.filters.iter().enumerate() {
            if f.is_static() {
                filter_data.push(Some(None));
                continue;
            }
            let pre = match &self.demands[cache].pre_filters[i] {
                Some(pre) => pre.clone(),
                None => f.pre_filter(cx),
            };
            match pre {
                PreFilter::Run(d) => filter_data.push(Some(d)),
                PreFilter::Skip => filter_data.push(None),
                PreFilter::Reject(msg) => {
                    return Err(FitError {
                        nodes: n_nodes,
                        pre_filter: Some(msg),
                        reasons: BTreeMap::new(),
                    })
                }
            }
        }
        let threads = self.threads;
        let g = group as usize;
        if self.statics.len() <= g {
            self.statics.resize_with(g + 1, || None);
        }
        let statics = self.statics[g].get_or_insert_with(|| Statics::compute(profile, cx, threads));
        // Without score plugins there is nothing to compare: upstream takes the first feasible node.
        let want = if profile.scores.is_empty() {
            1
        } else {
            feasible_nodes_to_find(n_nodes, profile.percentage_of_nodes_to_score)
        };
        // The dynamic filters that run on every node walked (node-local ones run through the
        // demand's cache).
        let mut other = std::mem::take(&mut self.other);
        other.clear();
        other.extend((0..profile.filters.len()).filter(|&i| {
            statics.filters[i].is_none()
                && filter_data[i].is_some()
                && !profile.filters[i].node_local()
        }));
        let data = |i: usize| {
            filter_data[i]
                .as_ref()
                .expect("dynamic filters that run have data")
        };
        // When every score this group gets is node-local, a node's total is final once walked, and
        // selectHost runs over the walked list as it is, with no scores to add.
        let totals_final = profile.scores.iter().enumerate().all(|(j, (s, _))| {
            is_local_score(s.as_ref()) || matches!(statics.scores[j], Some(None))
        });
        let cache = &mut self.demands[cache];
        cache.refresh(profile, cx, &mut self.refresh);
        // Walk only the nodes every static filter passes, from the rotating start. A node counts
        // as processed whichever filter rejected it, so `processed` is the distance walked in node
        // order, as upstream counts it. Caches are indexed by position: the walk streams.
        let passing = &statics.passing;
        let order = &cx.state.node_order[..];
        // Nothing to do at a node but read its total: the cached walk, which keeps no list.
        let cached = totals_final && other.is_empty() && passing.len() == n_nodes;
        let keep = if cached { 0 } else { want.min(passing.len()) };
        let mut feasible: Vec<NodeId> = Vec::with_capacity(keep);
        let mut totals: Vec<i64> = Vec::with_capacity(keep);
        let mut found = 0;
        let mut last = None;
        let mut chosen = None;
        if cached {
            let stretches = std::mem::take(&mut self.stretches);
            let walk = cached_walk::walk(&mut cache.total, *next_start, want, stretches);
            (found, last) = (walk.found, walk.last);
            if found > 0 {
                let pos = walk.choose(&cache.total, order, &mut self.rng, &self.tie_break);
                chosen = Some(order[pos]);
            }
            self.stretches = walk.into_stretches();
        } else {
            let kept = cache.total.as_slice();
            let first = passing.partition_point(|&pos| (pos as usize) < *next_start);
            let (head, tail) = passing.split_at(first);
            'walk: for part in [tail, head] {
                for &pos in part {
                    let p = pos as usize;
                    let total = kept[p];
                    if total == REJECTED {
                        continue;
                    }
                    let total = i64::from(total);
                    let n = order[p];
                    if !other
                        .iter()
                        .all(|&i| profile.filters[i].filter(cx, data(i), n).is_ok())
                    {
                        continue;
                    }
                    found += 1;
                    feasible.push(n);
                    totals.push(total);
                    if found == want {
                        last = Some(p);
                        break 'walk;
                    }
                }
            }
        }
        self.other = other;
        if found == 0 {
            if !self.explain {
                return Err(FitError {
                    nodes: n_nodes,
                    pre_filter: None,
                    reasons: BTreeMap::new(),
                });
            }
            return Err(self.diagnose(cx, &filter_data, group));
        }
        let processed = match last {
            Some(pos) => (pos + n_nodes - *next_start) % n_nodes + 1,
            None => n_nodes,
        };
        *next_start = (*next_start + processed) % n_nodes;
        if let Some(n) = chosen {
            return Ok(n);
        }
        if feasible.len() == 1 {
            return Ok(feasible[0]);
        }
        if totals_final {
            return Ok(select_host(
                &feasible,
                &totals,
                &mut self.rng,
                &self.tie_break,
            ));
        }
        let statics = self.statics[group as usize]
            .as_ref()
            .expect("place computed the group's statics");
        add_scores(
            profile,
            cx,
            &feasible,
            Some(&statics.scores),
            true,
            &mut totals,
        );
        Ok(select_host(
            &feasible,
            &totals,
            &mut self.rng,
            &self.tie_break,
        ))
    }

    /// Why no node fits: every node's first failing filter, in profile order, gives its reasons,
    /// counted over all nodes (kube-scheduler's FitError). Only unschedulable pods come here.
    fn diagnose(&mut self, cx: &Cycle, filter_data: &[Option<CycleData>], group: u32) -> FitError {
        let n_nodes = cx.snap.nodes.len();
        let profile = self.profile;
        let threads = self.threads;
        let statics = self.statics[group as usize]
            .as_mut()
            .expect("place computed the group's statics");
        let runs = |i: usize| statics.filters[i].is_some() || filter_data[i].is_some();
        let last_static = (0..profile.filters.len()).rfind(|&i| statics.filters[i].is_some());
        let first_dynamic =
            (0..profile.filters.len()).find(|&i| statics.filters[i].is_none() && runs(i));
        let mut counts: IdMap<Reason, usize> = IdMap::default();
        let nodes: Vec<NodeId> = match (last_static, first_dynamic) {
            // When the static filters come first, a node one of them rejects gives the same reasons
            // to every pod of the group: count those once, and walk only the other nodes.
            (Some(s), Some(d)) if s < d => {
                let filters = &statics.filters;
                let rejected = statics.rejected.get_or_insert_with(|| {
                    let all: Vec<NodeId> = (0..n_nodes as NodeId)
                        .filter(|&n| filters.iter().flatten().any(|v| v[n as usize] != 0))
                        .collect();
                    count_reasons(profile, cx, filters, filter_data, &all, threads)
                        .into_iter()
                        .collect()
                });
                counts.extend(rejected.iter().cloned());
                let order = &cx.state.node_order;
                statics
                    .passing
                    .iter()
                    .map(|&pos| order[pos as usize])
                    .collect()
            }
            _ => (0..n_nodes as NodeId).collect(),
        };
        for (r, k) in count_reasons(profile, cx, &statics.filters, filter_data, &nodes, threads) {
            *counts.entry(r).or_insert(0) += k;
        }
        FitError {
            nodes: n_nodes,
            pre_filter: None,
            reasons: counts
                .into_iter()
                .map(|(r, k)| (r.into_owned(), k))
                .collect(),
        }
    }

    /// Weighted sum of normalised plugin scores for each of `feasible` (no cached statics).
    pub fn score(&self, cx: &Cycle, feasible: &[NodeId]) -> Vec<i64> {
        let mut totals = vec![0; feasible.len()];
        add_scores(self.profile, cx, feasible, None, false, &mut totals);
        totals
    }
}

/// selectHost over the feasible nodes and their totals: the highest total; among equal ones, by
/// [`TieBreak`]. Upstream samples a reservoir, one draw per tie; one draw over all the tied nodes
/// chooses with the same odds. In passes without branches: the highest total, how many have it,
/// then the chosen one among those.
fn select_host(nodes: &[NodeId], totals: &[i64], rng: &mut Rng, tie_break: &TieBreak) -> NodeId {
    let best = *totals
        .iter()
        .max()
        .expect("selectHost needs a feasible node");
    let ties = totals
        .iter()
        .fold(0usize, |k, &t| k.wrapping_add(usize::from(t == best)));
    let mut tied = nodes
        .iter()
        .zip(totals)
        .filter(|&(_, &t)| t == best)
        .map(|(&n, _)| n);
    let chosen = match tie_break {
        _ if ties == 1 => tied.next(),
        TieBreak::Random => tied.nth(rng.pick_tie(ties as u64) as usize),
        TieBreak::Rank(rank) => tied.min_by_key(|&n| rank[n as usize]),
    };
    chosen.expect("the best total is among the totals")
}

/// The reasons of each of `nodes`' first failing filter (cached verdicts for static filters),
/// counted.
fn count_reasons(
    profile: &Profile,
    cx: &Cycle,
    statics: &[Option<Vec<u32>>],
    filter_data: &[Option<CycleData>],
    nodes: &[NodeId],
    threads: usize,
) -> IdMap<Reason, usize> {
    let by_code: Vec<bool> = profile
        .filters
        .iter()
        .zip(filter_data)
        .map(|(f, data)| data.as_ref().is_some_and(|d| f.reasons_by_code(d)))
        .collect();
    let count = |nodes: &[NodeId]| {
        let mut counts = Tally::default();
        // (filter, code) → (a node rejected so, how many).
        let mut codes: IdMap<(usize, u32), (NodeId, usize)> = IdMap::default();
        let mut buf = Vec::new();
        for &node in nodes {
            for (i, f) in profile.filters.iter().enumerate() {
                let verdict = match (&statics[i], &filter_data[i]) {
                    (Some(cached), _) => match cached[node as usize] {
                        0 => Ok(()),
                        code => Err(code - 1),
                    },
                    (None, Some(data)) => f.filter(cx, data, node),
                    (None, None) => Ok(()),
                };
                if let Err(code) = verdict {
                    if by_code[i] {
                        codes.entry((i, code)).or_insert((node, 0)).1 += 1;
                    } else {
                        let data = filter_data[i].as_ref().expect("a plugin that rejected ran");
                        f.reasons(cx, data, node, code, &mut buf);
                        for r in buf.drain(..) {
                            counts.add(r, 1);
                        }
                    }
                    break;
                }
            }
        }
        for ((i, code), (node, k)) in codes {
            let data = filter_data[i].as_ref().expect("a plugin that rejected ran");
            profile.filters[i].reasons(cx, data, node, code, &mut buf);
            for r in buf.drain(..) {
                counts.add(r, k);
            }
        }
        counts.into_map()
    };
    if !parallel(threads, nodes.len()) {
        return count(nodes);
    }
    use rayon::prelude::*;
    nodes
        .par_chunks(CHUNK)
        .map(count)
        .reduce(IdMap::default, |mut a, b| {
            for (r, k) in b {
                *a.entry(r).or_insert(0) += k;
            }
            a
        })
}

/// Reasons counted: the few a filter gives over and over are looked up in a short list, by
/// comparing the texts, before hashing one into the map.
#[derive(Default)]
struct Tally {
    recent: Vec<(Reason, usize)>,
    counts: IdMap<Reason, usize>,
}

impl Tally {
    const RECENT: usize = 8;

    fn add(&mut self, r: Reason, n: usize) {
        // Fixed texts are mostly the same `&'static str`: the address settles it first.
        let same =
            |seen: &Reason| (seen.as_ptr() == r.as_ptr() && seen.len() == r.len()) || *seen == r;
        if let Some((_, k)) = self.recent.iter_mut().find(|(seen, _)| same(seen)) {
            *k += n;
            return;
        }
        if self.recent.len() == Self::RECENT {
            self.flush();
        }
        self.recent.push((r, n));
    }

    fn flush(&mut self) {
        for (r, k) in self.recent.drain(..) {
            *self.counts.entry(r).or_insert(0) += k;
        }
    }

    fn into_map(mut self) -> IdMap<Reason, usize> {
        self.flush();
        self.counts
    }
}

/// PreScore of the node-local score plugins that score this pod: (plugin index, data).
fn local_pre_scores(profile: &Profile, cx: &Cycle) -> Vec<(usize, CycleData)> {
    profile
        .scores
        .iter()
        .enumerate()
        .filter(|(_, (s, _))| is_local_score(s.as_ref()))
        .filter_map(|(j, (s, _))| match s.pre_score(cx, &[]) {
            PreScore::Run(d) => Some((j, d)),
            PreScore::Skip => None,
        })
        .collect()
}

fn is_local_score(s: &dyn ScorePlugin) -> bool {
    !s.is_static() && s.node_local()
}

/// Nodes per parallel task: enough work to be worth a thread hand-off.
const CHUNK: usize = 128;

/// Whether to split work over `n` nodes across the current thread pool.
fn parallel(threads: usize, n: usize) -> bool {
    threads > 1 && n >= 2 * CHUNK
}

/// Adds the weighted, normalised score of every plugin to `totals` (one per feasible node),
/// reading static plugins' raw scores from `statics` when given, and leaving out node-local
/// plugins when `skip_local` (their totals are already in).
fn add_scores(
    profile: &Profile,
    cx: &Cycle,
    feasible: &[NodeId],
    statics: Option<&Vec<Option<Option<Vec<i64>>>>>,
    skip_local: bool,
    totals: &mut [i64],
) {
    let mut scores = Vec::new();
    for (j, (plugin, weight)) in profile.scores.iter().enumerate() {
        if skip_local && is_local_score(plugin.as_ref()) {
            continue;
        }
        match statics.and_then(|s| s[j].as_ref()) {
            Some(None) => {}
            Some(Some(raw)) => {
                scores.clear();
                scores.extend(feasible.iter().map(|&n| raw[n as usize]));
                plugin.normalize(cx, &None, &mut scores);
                for (t, s) in totals.iter_mut().zip(&scores) {
                    *t += s * weight;
                }
            }
            None => {
                if let PreScore::Run(d) = plugin.pre_score(cx, feasible) {
                    plugin.add_weighted(cx, &d, feasible, *weight, totals, &mut scores);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// selectHost over nodes offered one at a time, as the walk chose before it kept a list: the
    /// oracle `select_host` must agree with.
    struct Chooser<'a> {
        best_total: i64,
        ties: &'a mut Vec<NodeId>,
    }

    impl<'a> Chooser<'a> {
        fn new(ties: &'a mut Vec<NodeId>) -> Self {
            ties.clear();
            Chooser {
                best_total: i64::MIN,
                ties,
            }
        }

        fn offer(&mut self, node: NodeId, total: i64) {
            if total > self.best_total {
                self.best_total = total;
                self.ties.clear();
                self.ties.push(node);
            } else if total == self.best_total {
                self.ties.push(node);
            }
        }

        /// The chosen node; at least one must have been offered. Draws from `rng` only for a tie.
        fn choose(&self, rng: &mut Rng, tie_break: &TieBreak) -> NodeId {
            match (self.ties.as_slice(), tie_break) {
                ([], _) => panic!("selectHost needs a feasible node"),
                ([only], _) => *only,
                (ties, TieBreak::Random) => ties[rng.pick_tie(ties.len() as u64) as usize],
                (ties, TieBreak::Rank(rank)) => *ties
                    .iter()
                    .min_by_key(|&&n| rank[n as usize])
                    .expect("ties are not empty"),
            }
        }
    }

    #[test]
    fn select_host_chooses_as_the_chooser_does() {
        let mut rng = Rng::new(5);
        for case in 0..300u64 {
            let len = 1 + rng.below(40) as usize;
            let nodes: Vec<NodeId> = (0..len as NodeId).map(|n| n * 3 + 1).collect();
            let totals: Vec<i64> = (0..len).map(|_| rng.below(1 + case % 4) as i64).collect();
            let rank: Vec<u32> = (0..200).map(|_| rng.below(50) as u32).collect();
            for tie_break in [TieBreak::Random, TieBreak::Rank(rank)] {
                let mut ties = Vec::new();
                let mut chooser = Chooser::new(&mut ties);
                for (&n, &t) in nodes.iter().zip(&totals) {
                    chooser.offer(n, t);
                }
                let (mut a, mut b) = (Rng::new(case), Rng::new(case));
                let offered = chooser.choose(&mut a, &tie_break);
                let listed = select_host(&nodes, &totals, &mut b, &tie_break);
                assert_eq!(listed, offered, "case {case}");
                assert_eq!(
                    a.below(1 << 40),
                    b.below(1 << 40),
                    "the same draws, case {case}"
                );
            }
        }
    }

    #[test]
    fn adaptive_percentage_of_nodes_to_score() {
        assert_eq!(feasible_nodes_to_find(50, None), 50);
        assert_eq!(feasible_nodes_to_find(1000, None), 420); // 50 - 8 = 42%
        assert_eq!(feasible_nodes_to_find(5000, None), 500); // 50 - 40 = 10%
        assert_eq!(feasible_nodes_to_find(6000, None), 300); // floor at 5%
        assert_eq!(feasible_nodes_to_find(150, None), 100); // at least 100
        assert_eq!(feasible_nodes_to_find(5000, Some(100)), 5000);
        assert_eq!(feasible_nodes_to_find(5000, Some(30)), 1500);
    }

    #[test]
    fn normalize() {
        let mut s = [0, 5, 10];
        default_normalize(&mut s, false);
        assert_eq!(s, [0, 50, 100]);
        let mut s = [0, 5, 10];
        default_normalize(&mut s, true);
        assert_eq!(s, [100, 50, 0]);
        let mut s = [0, 0];
        default_normalize(&mut s, true);
        assert_eq!(s, [100, 100]);
    }

    #[test]
    fn fit_error_message_like_kube_scheduler() {
        let e = FitError {
            nodes: 1213,
            pre_filter: None,
            reasons: [
                ("Insufficient nvidia.com/gpu".to_string(), 900),
                (
                    "node(s) didn't match Pod's node affinity/selector".to_string(),
                    313,
                ),
            ]
            .into_iter()
            .collect(),
        };
        assert_eq!(
            e.to_string(),
            "0/1213 nodes are available: 313 node(s) didn't match Pod's node affinity/selector, \
             900 Insufficient nvidia.com/gpu."
        );
    }

    #[test]
    fn rng_is_uniformish_and_seeded() {
        let mut a = Rng::new(7);
        let mut b = Rng::new(7);
        assert_eq!(a.next_u64(), b.next_u64());
        let mut counts = [0; 4];
        for _ in 0..4000 {
            counts[a.below(4) as usize] += 1;
        }
        assert!(
            counts.iter().all(|&c| (900..1100).contains(&c)),
            "{counts:?}"
        );
    }
}
